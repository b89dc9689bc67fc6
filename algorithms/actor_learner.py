"""The actor-learner: the one loop every algorithm shares, run in each worker process.

One iteration (a *segment*, the paper's Algorithms S2 and S3):

1. sync: snapshot the store's parameters into local tensors (one copy; ``store.py``);
2. act: up to the agent's segment length (t_max, or I_AsyncUpdate for one-step methods) steps,
   stopping early at the end of an episode;
3. learn: the agent (``agents.py``) makes its targets and returns the segment's summed-loss
   gradient as one flat, clipped vector;
4. apply: ``store.push`` applies it to the *shared* parameters in place, lock-free (Hogwild);
   ``store.after_update`` then refreshes the value-based methods' target network when a refresh
   interval has been crossed.

Concurrency: a worker takes no lock in its loop (its step and update counts have slots of their
own; the value-based target refresh takes one once per refresh interval). A worker ignores SIGINT
(the parent coordinates stopping through the stop event), and exits by itself when the parent
process is gone.
"""
from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .config import Config
from .display import Window
from .environments import EnvSpec
from .networks import Layout
from .store import StoreHandle

SUMMARY_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, picklable (no runtime handles: see Runtime)."""
    actor_id: int
    seed: int
    config: Config
    env_spec: EnvSpec
    layout: Layout
    store: StoreHandle
    run_dir: str
    final_epsilon: float = 1.0   # value-based methods: this learner's final exploration rate
    incarnation: int = 0         # how many times this actor-learner was restarted before


class Runtime(NamedTuple):
    """The supervisor's process-shared handles, created with the ``spawn`` context."""
    steps: Any           # shared.StepCounters: agent steps per actor; the sum is the global step
    stop: Any            # multiprocessing.Event
    parent_pid: int


def learning_rate(initial_lr: float, global_step: int, annealing_steps: int) -> float:
    """Linear annealing from ``initial_lr`` to 0 over ``annealing_steps`` global steps."""
    return initial_lr * max(0.0, 1.0 - global_step / annealing_steps)


class Timer:
    """Seconds spent per phase of the loop, for the throughput benchmark's breakdown."""

    def __init__(self):
        self.totals: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        self.totals[phase] = self.totals.get(phase, 0.0) + seconds


class ActorLearner:
    """One actor-learner process's state and loop."""

    def __init__(self, spec: WorkerSpec, runtime: Runtime, messages):
        from .agents import make_agent
        from .environments import make_environment
        from .returns import RewardTransform
        from .summaries import ScalarWriter

        config = spec.config
        self.spec, self.runtime, self.config = spec, runtime, config
        self.messages = messages   # this worker's own pipe to the parent
        self.actor_id = spec.actor_id
        rng = np.random.default_rng(spec.seed)
        visualize = config.visualize == 1 or (config.visualize == 2 and spec.actor_id == 0)
        self.env = make_environment(config.env, config.game, config.rom_path, spec.seed,
                                    single_life=config.single_life_episodes, render=visualize)
        self.window = Window(f"{config.game} - actor {spec.actor_id}", slot=spec.actor_id) \
            if visualize else None
        self.store = spec.store.connect(spec.actor_id, config)
        self.agent = make_agent(config, spec.layout, spec.env_spec, self.store, rng,
                                spec.final_epsilon)
        self.rewards = RewardTransform(config.rescale_rewards)
        self.writer = ScalarWriter(spec.run_dir, spec.actor_id)
        self.timer = Timer()
        length = self.agent.segment_length
        obs_dtype = np.uint8 if spec.env_spec.kind == "atari" else np.float32
        self._states = np.zeros((length,) + tuple(spec.env_spec.observation_shape), obs_dtype)
        self._actions = (np.zeros((length, spec.env_spec.num_actions), np.float32)
                         if spec.env_spec.continuous else np.zeros(length, np.int32))
        self._rewards = np.zeros(length, np.float32)
        self._terminals = np.zeros(length, bool)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        from .agents import Segment

        config, runtime, agent, env, timer = (self.config, self.runtime, self.agent, self.env,
                                              self.timer)
        store = self.store
        clock = time.perf_counter
        length = agent.segment_length
        max_steps, single_life = config.max_global_steps, config.single_life_episodes
        states, actions, rewards, terminals = (self._states, self._actions, self._rewards,
                                               self._terminals)
        episode_return, episode_length, local_steps, updates, skipped = 0.0, 0, 0, 0, 0
        summary_time, summary_steps = clock(), 0
        actor, messages = self.actor_id, self.messages
        global_step = runtime.steps.total()
        agent.start_episode()
        state = env.reset()
        messages.send(("ready", actor))
        loop_start = clock()

        while global_step < max_steps and not runtime.stop.is_set():
            if os.getppid() != runtime.parent_pid:
                return  # the parent is gone: nobody will read what we produce
            t0 = clock()
            agent.sync(global_step)
            timer.add("sync", clock() - t0)
            n, done, truncated = 0, False, False
            while n < length:
                t0 = clock()
                action = agent.act(state)
                t1 = clock()
                next_state, reward, done, info = env.step(action)
                t2 = clock()
                timer.add("forward", t1 - t0)
                timer.add("environment", t2 - t1)
                if self.window is not None and self.window.due():
                    self.window.show(env.screen())
                truncated = info["truncated"]
                states[n], actions[n] = state, action
                rewards[n] = self.rewards(reward)
                terminals[n] = (done and not truncated) or (single_life and info["life_lost"])
                episode_return += reward
                episode_length += 1
                n += 1
                state = next_state
                if done:
                    break

            t0 = clock()
            grad, stats = agent.learn(Segment(states[:n], actions[:n], rewards[:n],
                                              terminals[:n], state, done, truncated))
            t1 = clock()
            global_step = runtime.steps.add(actor, n)
            lr = learning_rate(config.initial_lr, global_step, config.lr_schedule_steps)
            if np.isfinite(stats["train/grad_norm"]):
                store.push(grad, lr)
            else:
                # A NaN or inf anywhere in the gradient makes its norm non-finite. Applying it
                # would poison the parameters every learner shares: skip it and count it.
                skipped += 1
                if skipped == 1:
                    messages.send(("warning", actor,
                                          "non-finite gradient: update skipped (further ones are "
                                          "counted in train/skipped_updates)"))
            store.after_update(global_step)
            t2 = clock()
            timer.add("learn", t1 - t0)
            timer.add("optimizer", t2 - t1)
            local_steps += n
            updates += 1

            if done:
                self._end_episode(global_step, episode_return, episode_length)
                episode_return, episode_length = 0.0, 0
                t0 = clock()
                agent.start_episode()
                state = env.reset()
                timer.add("environment", clock() - t0)

            now = clock()
            if updates == 1 or now - summary_time >= SUMMARY_SECONDS:
                stats["train/learning_rate"] = lr
                stats["train/skipped_updates"] = skipped
                stats["train/steps_per_second"] = \
                    (local_steps - summary_steps) / (now - summary_time)
                self.writer.scalars(global_step, stats)
                summary_time, summary_steps = now, local_steps

        messages.send(("timing", actor, dict(timer.totals, steps=local_steps,
                                                             updates=updates, skipped=skipped,
                                                             total=clock() - loop_start)))

    def _end_episode(self, global_step: int, episode_return: float, length: int) -> None:
        self.messages.send(("episode", self.actor_id, global_step, time.time(),
                            episode_return, length))
        self.writer.scalars(global_step, {"episode/return": episode_return,
                                          "episode/length": length,
                                          **self.agent.episode_scalars()})

    def close(self) -> None:
        self.writer.close()
        self.env.close()
        if self.window is not None:
            self.window.close()
        self.store.close()


def _configure_tensorflow() -> None:
    """One intra-op and one inter-op thread: the process is the unit of parallelism.

    TensorFlow's native start-up chatter (CUDA probing, absl's "log messages before
    InitializeLog") ignores TF_CPP_MIN_LOG_LEVEL, so stderr is silenced while it imports.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    # Eigen's kernels beat oneDNN's on these small single-threaded convolutions (measured:
    # gradient of a 5-state NIPS batch 7.3 ms against 8.5 ms, forward 0.7 against 0.9 ms).
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.constant(0.0)  # initialises the runtime (and its logging) while stderr is silent
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def worker_main(spec: WorkerSpec, runtime: Runtime, messages) -> None:
    """Entry point of an actor-learner process (started with the ``spawn`` method).

    ``messages`` is the sending end of this worker's own pipe to the parent: one pipe per worker,
    so a worker killed in the middle of a message damages no one else's channel.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    learner = None
    try:
        _configure_tensorflow()
        learner = ActorLearner(spec, runtime, messages)
        learner.run()
    except BaseException:
        try:
            messages.send(("error", spec.actor_id, traceback.format_exc()))
        except OSError:
            pass  # the parent is gone
        raise SystemExit(1) from None
    finally:
        if learner is not None:
            learner.close()
