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
(the parent coordinates stopping through the stop flag), and exits by itself when the parent
process is gone.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .config import Config
from .display import Window
from .environments import EnvironmentFault, EnvSpec
from .messages import Alert, Episode, Error, Fault, Ready, Timing
from .networks import Layout
from .run.procs import ignore_group_signals
from .store import StoreHandle
from .tfsetup import configure_tensorflow, onednn_kernels

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
    role: str = "learner"        # or "tester": the test process (tester.py)
    meta: dict | None = None     # the tester's: the run's checkpoint metadata, for best.npz
    final_epsilons: tuple = ()   # the tester's: every learner's, for best.npz
    trainer_pid: int = 0         # the supervisor's: whose checkpoint and run folders they are


class Runtime(NamedTuple):
    """The supervisor's handles: process-shared ones, made in the fork server's context
    (``run.local.start_forkserver``), or a Ray learner's link to its parameter server
    (``run/ray.py``), which offers the same calls."""
    steps: Any           # shared.StepCounters: agent steps per actor; the sum is the global step
    stop: Any            # shared.StopFlag
    # The reading end of a pipe that nobody writes to and only the supervisor can write to: it
    # reads as ended once the supervisor is gone, killed or not. None on Ray.
    lifeline: Any


def learning_rate(initial_lr: float, global_step: int, annealing_steps: int) -> float:
    """Linear annealing from ``initial_lr`` to 0 over ``annealing_steps`` global steps."""
    return initial_lr * max(0.0, 1.0 - global_step / annealing_steps)


class Laps:
    """Seconds spent per phase of the loop, for the throughput benchmark's breakdown: each
    ``lap(phase)`` charges the time since the previous lap (or ``start``) to ``phase``."""

    def __init__(self):
        self.totals: dict[str, float] = {}
        self.last = time.perf_counter()

    def start(self) -> None:
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.totals[phase] = self.totals.get(phase, 0.0) + now - self.last
        self.last = now


class ActorLearner:
    """One actor-learner process's state and loop, over ``--envs_per_actor`` environments."""

    def __init__(self, spec: WorkerSpec, runtime: Runtime, messages, store=None):
        from .agents import make_agent
        from .environments import atari_frames, make_environment
        from .returns import RewardTransform
        from .summaries import ScalarWriter

        config = spec.config
        self.spec, self.runtime, self.config = spec, runtime, config
        self.messages = messages   # this worker's own pipe to the parent
        self.actor_id = spec.actor_id
        rng = np.random.default_rng(spec.seed)
        count = config.envs_per_actor
        visualize = config.visualize == 1 or (config.visualize == 2 and spec.actor_id == 0)
        # Environment k of actor a is seeded with seed + a + k * N (N actor-learners): distinct
        # across all actors and environments; with one environment, the actor's own seed.
        self.envs = [make_environment(config.env, config.game, config.rom_path,
                                      spec.seed + k * config.num_actor_learners,
                                      single_life=config.single_life_episodes,
                                      fire_reset=config.fire_reset,
                                      render=visualize and k == 0,
                                      frames=atari_frames(config.arch, config.lstm,
                                                          config.screen_size, config.crop,
                                                          config.resample))
                     for k in range(count)]
        self.window = Window(f"{config.game} - actor {spec.actor_id}", slot=spec.actor_id,
                             warn=lambda text: messages.send(Alert(spec.actor_id, text))) \
            if visualize else None
        self.store = store if store is not None else spec.store.connect(spec.actor_id, config)
        self.agent = make_agent(config, spec.layout, spec.env_spec, self.store, rng,
                                spec.final_epsilon, count)
        self.rewards = RewardTransform(config.rescale_rewards)
        self.writer = ScalarWriter(spec.run_dir, spec.actor_id,
                                   warn=lambda text: messages.send(Alert(spec.actor_id, text)),
                                   trainer_pid=spec.trainer_pid)
        self.laps = Laps()
        length = self.agent.segment_length
        obs_dtype = np.uint8 if spec.env_spec.kind == "atari" else np.float32
        shape = (length, count)
        self._states = np.zeros(shape + tuple(spec.env_spec.observation_shape), obs_dtype)
        self._actions = (np.zeros(shape + (spec.env_spec.num_actions,), np.float32)
                         if spec.env_spec.continuous else np.zeros(shape, np.int32))
        self._rewards = np.zeros(shape, np.float32)
        self._cuts = np.zeros(shape, bool)
        self._cut_values = np.zeros(shape, np.float32)
        self._ended = np.zeros(shape, bool)
        self._episode_returns, self._episode_lengths = np.zeros(count), np.zeros(count, np.int64)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Segments until the budget is spent or a stop is asked for."""
        from .agents import Segment

        config, runtime, agent, laps = self.config, self.runtime, self.agent, self.laps
        store, messages, actor, count = self.store, self.messages, self.actor_id, len(self.envs)
        clock = time.perf_counter
        local_steps, updates, skipped = 0, 0, 0
        summary_time, summary_steps = clock(), 0
        global_step = runtime.steps.total()
        agent.start_episode()
        state = np.stack([env.reset() for env in self.envs])
        messages.send(Ready(actor))
        loop_start = clock()

        while global_step < config.max_global_steps and not runtime.stop.is_set():
            if runtime.lifeline is not None and runtime.lifeline.poll():
                return  # the supervisor is gone: nobody will read what we produce
            laps.start()
            agent.sync(global_step)
            laps.lap("sync")
            n, finished = self._act(state)
            grad, stats = agent.learn(Segment(self._states[:n], self._actions[:n],
                                              self._rewards[:n], self._cuts[:n],
                                              self._cut_values[:n], self._ended[:n], state))
            laps.lap("learn")
            global_step = runtime.steps.add(actor, n * count)
            lr = learning_rate(config.initial_lr, global_step, config.lr_schedule_steps)
            if np.isfinite(stats["train/grad_norm"]):
                store.push(grad, lr)
            else:
                # A NaN or inf anywhere in the gradient makes its norm non-finite. Applying it
                # would poison the parameters every learner shares: skip it and count it.
                skipped += 1
                if skipped == 1:
                    messages.send(Alert(actor, "non-finite gradient: update skipped (further "
                                              "ones are counted in train/skipped_updates)"))
            store.after_update(global_step)
            laps.lap("optimizer")
            local_steps += n * count
            updates += 1
            for k, episode_return, episode_length in finished:
                self._end_episode(global_step, k, float(episode_return), int(episode_length))

            now = clock()
            if updates == 1 or now - summary_time >= SUMMARY_SECONDS:
                stats["train/learning_rate"] = lr
                stats["train/skipped_updates"] = skipped
                stats["train/steps_per_second"] = \
                    (local_steps - summary_steps) / (now - summary_time)
                self.writer.scalars(global_step, stats)
                summary_time, summary_steps = now, local_steps

        messages.send(Timing(actor, dict(laps.totals, steps=local_steps, updates=updates,
                                         skipped=skipped, total=clock() - loop_start)))

    def _act(self, state: np.ndarray) -> tuple[int, list[tuple[int, float, int]]]:
        """Up to one segment of steps in every environment, into the segment's buffers;
        ``state`` (one observation per environment) is advanced in place. Returns the steps
        taken per environment and the episodes that ended, as (environment, return, length)."""
        agent, envs, laps = self.agent, self.envs, self.laps
        states, actions, rewards = self._states, self._actions, self._rewards
        cuts, cut_values, ended = self._cuts, self._cut_values, self._ended
        returns, lengths = self._episode_returns, self._episode_lengths
        single_life = self.config.single_life_episodes
        finished = []
        n = 0
        while n < agent.segment_length:
            chosen = agent.act(state)
            laps.lap("forward")
            states[n], actions[n] = state, chosen
            for k, env in enumerate(envs):
                observation, reward, done, info = env.step(chosen[k])
                laps.lap("environment")
                if k == 0 and self.window is not None and self.window.due():
                    self.window.show(env.screen())
                rewards[n, k] = self.rewards(reward)
                life_lost = single_life and info["life_lost"]
                # A time limit is not an end for learning, unless a life was lost with it.
                truncated = done and info["truncated"] and not life_lost
                cuts[n, k] = done or life_lost
                ended[n, k] = done
                # After a time limit the last observation still has a value: the returns
                # bootstrap from it (from this environment's current recurrent state).
                if truncated:
                    cut_values[n, k] = agent.final_value(observation, k)
                    laps.lap("forward")
                else:
                    cut_values[n, k] = 0.0
                returns[k] += reward
                lengths[k] += 1
                if done:
                    finished.append((k, returns[k], lengths[k]))
                    returns[k], lengths[k] = 0.0, 0
                    observation = env.reset()
                    agent.start_episode(k)
                    laps.lap("environment")
                state[k] = observation
            n += 1
            if len(envs) == 1 and ended[n - 1, 0]:
                break   # the paper's segment ends with its episode
        return n, finished

    def _end_episode(self, global_step: int, env: int, episode_return: float,
                     length: int) -> None:
        self.messages.send(Episode(self.actor_id, env, global_step, time.time(),
                                   episode_return, length))
        self.writer.scalars(global_step, {"episode/return": episode_return,
                                          "episode/length": length,
                                          **self.agent.episode_scalars()})

    def close(self) -> None:
        self.writer.close()
        for env in self.envs:
            env.close()
        if self.window is not None:
            self.window.close()
        self.store.close()


def run_learner(spec: WorkerSpec, runtime: Runtime, messages, store=None) -> bool:
    """Build and run one actor-learner (or the test process, ``spec.role``) until its budget or
    a stop; False if it failed, its traceback sent first (``messages.Error``, or
    ``messages.Fault`` for an environment that breaks its spaces)."""
    learner = None
    try:
        configure_tensorflow(onednn_kernels(spec.config, spec.env_spec))
        if spec.role == "tester":
            from .tester import run_tester
            run_tester(spec, runtime, messages)
            return True
        learner = ActorLearner(spec, runtime, messages, store)
        learner.run()
        return True
    except EnvironmentFault as fault:
        try:
            messages.send(Fault(spec.actor_id, str(fault)))
        except OSError:
            pass  # the parent is gone
        return False
    except BaseException:
        try:
            messages.send(Error(spec.actor_id, traceback.format_exc()))
        except OSError:
            pass  # the parent is gone
        return False
    finally:
        if learner is not None:
            learner.close()


def worker_main(spec: WorkerSpec, runtime: Runtime, messages) -> None:
    """Entry point of an actor-learner process (forked by the fork server, see
    ``run.local.start_forkserver``).

    ``messages`` is the sending end of this worker's own pipe to the parent: one pipe per worker,
    so a worker killed in the middle of a message damages no one else's channel.
    """
    ignore_group_signals()   # as the fork server does: the trainer decides how a run stops
    if not run_learner(spec, runtime, messages):
        raise SystemExit(1)
