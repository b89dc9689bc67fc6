"""The actor-learner: the one loop every algorithm shares, run in each worker process.

One iteration (a *segment*, the paper's Algorithm S3):

1. sync: snapshot the shared parameters into local tensors (one copy);
2. act: up to ``t_max`` steps with the local policy, stopping early at the end of an episode;
3. targets: n-step returns, bootstrapped from V(s_T) unless s_T is terminal;
4. gradients: of the segment's summed loss with respect to the local parameters, as one flat
   vector, clipped;
5. apply: the optimizer updates the *shared* parameters in place, lock-free (Hogwild).

Concurrency: the only locked object a worker touches per segment is the global step counter.
A worker ignores SIGINT (the parent coordinates stopping through the stop event), and exits by
itself when the parent process is gone.
"""
from __future__ import annotations

import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from environments import EnvSpec
from networks import Layout

SUMMARY_SECONDS = 5.0


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, picklable (no runtime handles: see Runtime)."""
    actor_id: int
    seed: int
    config: dict[str, Any]
    env_spec: EnvSpec
    layout: Layout
    shared_handles: dict[str, tuple[str, int]]
    run_dir: str


class Runtime(NamedTuple):
    """Process-shared handles, created by the parent with the ``spawn`` context."""
    global_step: Any     # multiprocessing.Value('q'), locked
    stop: Any            # multiprocessing.Event
    messages: Any        # multiprocessing.Queue: ("ready"|"episode"|"timing"|"error", ...)
    adam_step: Any       # multiprocessing.Value('q'), Adam's shared step
    parent_pid: int


def learning_rate(initial_lr: float, global_step: int, annealing_steps: int) -> float:
    """Linear annealing from ``initial_lr`` to 0 over ``annealing_steps`` global steps."""
    return initial_lr * max(0.0, 1.0 - global_step / annealing_steps)


def sample(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF sampling of a categorical distribution with one uniform draw ``u``."""
    cdf = np.cumsum(probs)
    return min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(probs) - 1)


class ActorCritic:
    """A3C's TensorFlow piece: the policy/value forward and the segment gradient."""

    def __init__(self, layout: Layout, arch: str, env_spec: EnvSpec, entropy_beta: float,
                 clip_norm: float, clip_type: str):
        import tensorflow as tf
        from losses import actor_critic_loss, clip_gradients
        from networks import actor_critic_forward

        self._tf = tf
        self.layout = layout
        obs_dtype = tf.uint8 if env_spec.kind == "atari" else tf.float32
        param_sig = [tf.TensorSpec(spec.shape, tf.float32) for spec in layout.specs]
        obs_sig = tf.TensorSpec((None,) + tuple(env_spec.observation_shape), obs_dtype)

        @tf.function(input_signature=[param_sig, obs_sig])
        def policy(params, observations):
            logits, values = actor_critic_forward(arch, params, observations)
            return tf.concat([tf.nn.softmax(logits), values[:, None]], axis=1)[0]

        @tf.function(input_signature=[param_sig, obs_sig, tf.TensorSpec([None], tf.int32),
                                      tf.TensorSpec([None], tf.float32)])
        def gradient(params, observations, actions, returns):
            with tf.GradientTape() as tape:
                tape.watch(params)
                logits, values = actor_critic_forward(arch, params, observations)
                loss = actor_critic_loss(logits, values, actions, returns, entropy_beta)
            grads, norm = clip_gradients(tape.gradient(loss.total, params), clip_norm, clip_type)
            flat = tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)
            stats = tf.stack([loss.policy, loss.value, loss.entropy, norm])
            return flat, stats

        # Calling the concrete functions skips tf.function's per-call argument matching, which
        # costs more than the forward pass itself on a single Atari frame.
        self._policy = policy.get_concrete_function()
        self._gradient = gradient.get_concrete_function()

    def sync(self, flat: np.ndarray) -> list:
        """Copy the (shared) flat parameters into local tensors."""
        constant = self._tf.constant
        return [constant(view) for view in self.layout.split(flat)]

    def policy(self, params: list, observation: np.ndarray) -> tuple[np.ndarray, float]:
        """(action probabilities, V(s)) of one observation."""
        out = self._policy(params, self._tf.constant(observation[None])).numpy()
        return out[:-1], float(out[-1])

    def gradient(self, params: list, observations: np.ndarray, actions: np.ndarray,
                 returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat clipped gradient, [policy loss, value loss, entropy, gradient norm])."""
        constant = self._tf.constant
        flat, stats = self._gradient(params, constant(observations), constant(actions),
                                     constant(returns))
        return flat.numpy(), stats.numpy()


class Timer:
    """Seconds spent per phase of the loop, for the throughput benchmark's breakdown."""

    def __init__(self):
        self.totals: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        self.totals[phase] = self.totals.get(phase, 0.0) + seconds


class ActorLearner:
    """One actor-learner process's state and loop."""

    def __init__(self, spec: WorkerSpec, runtime: Runtime):
        from environments import make_environment
        from optimizers import SLOTS, SharedCounter, make_optimizer
        from returns import RewardTransform
        from shared import SharedVectors
        from summaries import ScalarWriter

        cfg = spec.config
        self.spec, self.runtime, self.cfg = spec, runtime, cfg
        self.actor_id = spec.actor_id
        self.rng = np.random.default_rng(spec.seed)
        visualize = cfg["visualize"] == 1 or (cfg["visualize"] == 2 and spec.actor_id == 0)
        self.env = make_environment(cfg["env"], cfg["game"], cfg["rom_path"], spec.seed,
                                    single_life=cfg["single_life_episodes"], render=visualize)
        self.window = Window(f"{cfg['game']} - actor {spec.actor_id}") if visualize else None
        self.shared = SharedVectors.attach(spec.shared_handles)
        self.params = self.shared["params"]
        slot_names = SLOTS[cfg["opt_type"]]
        if cfg["opt_mode"] == "shared":
            slots = {name: self.shared[f"opt_{name}"] for name in slot_names}
            next_step = SharedCounter(runtime.adam_step)
        else:
            slots = {name: np.zeros_like(self.params) for name in slot_names}
            next_step = None
        self.optimizer = make_optimizer(cfg["opt_type"], self.params, slots, alpha=cfg["alpha"],
                                        eps=cfg["e"], b1=cfg["b1"], b2=cfg["b2"],
                                        next_step=next_step)
        self.agent = ActorCritic(spec.layout, cfg["arch"], spec.env_spec, cfg["entropy"],
                                 cfg["clip_norm"], cfg["clip_norm_type"])
        self.rewards = RewardTransform(cfg["rescale_rewards"])
        self.writer = ScalarWriter(spec.run_dir, spec.actor_id)
        self.timer = Timer()
        t_max = cfg["max_local_steps"]
        obs_dtype = np.uint8 if spec.env_spec.kind == "atari" else np.float32
        self._states = np.zeros((t_max,) + tuple(spec.env_spec.observation_shape), obs_dtype)
        self._actions = np.zeros(t_max, np.int32)
        self._rewards = np.zeros(t_max, np.float32)
        self._terminals = np.zeros(t_max, bool)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        from returns import n_step_returns

        cfg, runtime, agent, env, timer = self.cfg, self.runtime, self.agent, self.env, self.timer
        clock = time.perf_counter
        t_max, gamma = cfg["max_local_steps"], cfg["gamma"]
        max_steps, single_life = cfg["max_global_steps"], cfg["single_life_episodes"]
        states, actions, rewards, terminals = (self._states, self._actions, self._rewards,
                                               self._terminals)
        episode_return, episode_length, local_steps, updates = 0.0, 0, 0, 0
        summary_time, summary_steps = clock(), 0
        global_step = runtime.global_step.value
        state = env.reset()
        cached_policy = None
        runtime.messages.put(("ready", self.actor_id))
        loop_start = clock()

        while global_step < max_steps and not runtime.stop.is_set():
            if os.getppid() != runtime.parent_pid:
                return  # the parent is gone: nobody will read what we produce
            t0 = clock()
            params = agent.sync(self.params)
            t1 = clock()
            timer.add("sync", t1 - t0)
            n, done, truncated = 0, False, False
            while n < t_max:
                t0 = clock()
                if cached_policy is None:
                    probs, _ = agent.policy(params, state)
                else:
                    probs, cached_policy = cached_policy, None
                action = sample(probs, self.rng.random())
                t1 = clock()
                next_state, reward, done, info = env.step(action)
                t2 = clock()
                timer.add("forward", t1 - t0)
                timer.add("environment", t2 - t1)
                if self.window is not None:
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
            if done and not truncated:
                bootstrap = 0.0
            else:
                # V(s_T). Its policy also picks the next segment's first action: that action
                # then comes from parameters one update older, no more stale than Hogwild makes
                # every action, and it saves one forward pass per segment.
                probs, bootstrap = agent.policy(params, state)
                cached_policy = None if done else probs
            returns = n_step_returns(rewards[:n], terminals[:n], bootstrap, gamma)
            t1 = clock()
            grad, stats = agent.gradient(params, states[:n], actions[:n], returns)
            t2 = clock()
            with runtime.global_step.get_lock():
                runtime.global_step.value += n
                global_step = runtime.global_step.value
            lr = learning_rate(cfg["initial_lr"], global_step, cfg["lr_annealing_steps"])
            self.optimizer.apply(grad, lr)
            t3 = clock()
            timer.add("forward", t1 - t0)
            timer.add("gradient", t2 - t1)
            timer.add("optimizer", t3 - t2)
            local_steps += n
            updates += 1

            if done:
                self._end_episode(global_step, episode_return, episode_length)
                episode_return, episode_length = 0.0, 0
                t0 = clock()
                state = env.reset()
                timer.add("environment", clock() - t0)

            now = clock()
            if updates == 1 or now - summary_time >= SUMMARY_SECONDS:
                self._train_summary(global_step, stats, lr,
                                    (local_steps - summary_steps) / (now - summary_time))
                summary_time, summary_steps = now, local_steps

        runtime.messages.put(("timing", self.actor_id, dict(timer.totals, steps=local_steps,
                                                             updates=updates,
                                                             total=clock() - loop_start)))

    def _train_summary(self, global_step: int, stats: np.ndarray, lr: float,
                       steps_per_second: float) -> None:
        self.writer.scalars(global_step, {
            "loss/policy": stats[0], "loss/value": stats[1], "policy/entropy": stats[2],
            "train/grad_norm": stats[3], "train/learning_rate": lr,
            "train/steps_per_second": steps_per_second})

    def _end_episode(self, global_step: int, episode_return: float, length: int) -> None:
        self.runtime.messages.put(("episode", self.actor_id, global_step, time.time(),
                                   episode_return, length))
        self.writer.scalars(global_step, {"episode/return": episode_return,
                                          "episode/length": length})

    def close(self) -> None:
        self.writer.close()
        self.env.close()
        if self.window is not None:
            self.window.close()
        self.shared.close()


class Window:
    """An OpenCV window showing the raw game screen, scaled up 3x."""

    SCALE = 3

    def __init__(self, title: str):
        import cv2
        self._cv2 = cv2
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)

    def show(self, rgb: np.ndarray) -> None:
        cv2 = self._cv2
        frame = cv2.resize(rgb, None, fx=self.SCALE, fy=self.SCALE,
                           interpolation=cv2.INTER_NEAREST)
        cv2.imshow(self.title, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)

    def close(self) -> None:
        self._cv2.destroyWindow(self.title)


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


def worker_main(spec: WorkerSpec, runtime: Runtime) -> None:
    """Entry point of an actor-learner process (started with the ``spawn`` method)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    learner = None
    try:
        _configure_tensorflow()
        learner = ActorLearner(spec, runtime)
        learner.run()
    except BaseException:
        runtime.messages.put(("error", spec.actor_id, traceback.format_exc()))
        raise SystemExit(1)
    finally:
        if learner is not None:
            learner.close()
