"""The parent process: shared memory, worker processes, supervision, signals and progress.

The parent never imports TensorFlow (it is not fork-safe, and the parent does not need it):
it initialises the parameters with numpy, creates the shared memory, starts the actor-learners
with the ``spawn`` method, and then only listens. It owns:

* the shared-memory segments: created here, unlinked here on every exit path;
* the global step counter and the stop event;
* ``episodes.csv`` and the console progress line;
* supervision: a worker that dies is noticed through its process sentinel, its traceback is
  shown, and training stops (exit code 1). No worker outlives the parent: they are daemonic,
  joined with a timeout, then terminated and killed if need be, and each worker also exits by
  itself when it sees that its parent is gone.

Signals: the first SIGINT/SIGTERM asks the workers to stop at their next segment (exit code
130/143); a second one stops them at once.
"""
from __future__ import annotations

import collections
import datetime as _dt
import multiprocessing as mp
import os
import signal
import sys
import time
from multiprocessing.connection import wait
from typing import Any

import numpy as np

from actor_learner import Runtime, WorkerSpec, worker_main
from environments import EnvSpec
from exploration import sample_final_epsilons
from networks import make_layout
from optimizers import SLOTS
from shared import SharedVectors
from summaries import EpisodeLog, make_run_dir, write_config

PROGRESS_SECONDS = 5.0
JOIN_SECONDS = 10.0
RECENT_EPISODES = 20


def log(message: str) -> None:
    print(message, flush=True)


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "?"
    return str(_dt.timedelta(seconds=int(seconds)))


class Progress:
    """The console progress line, printed every few seconds."""

    def __init__(self, max_steps: int, frames_per_step: int, quiet: bool, workers: int):
        self.max_steps, self.frames_per_step, self.quiet = max_steps, frames_per_step, quiet
        self.workers, self.ready = workers, 0
        self.started: float | None = None   # when the last actor-learner became ready
        self.start = time.monotonic()
        self.last_time, self.last_step = self.start, 0
        self.returns: collections.deque[float] = collections.deque(maxlen=RECENT_EPISODES)
        self.episodes = 0

    def episode(self, ret: float) -> None:
        self.returns.append(ret)
        self.episodes += 1

    def maybe_print(self, step: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self.last_time < PROGRESS_SECONDS):
            return
        if self.ready < self.workers:
            self.last_time = now
            if force:
                return
            log(f"starting the actor-learners: {self.ready}/{self.workers} ready "
                f"(elapsed {_duration(now - self.start)})")
            return
        elapsed = now - self.start
        if force:   # the closing line: averages over the whole run
            rate = step / max(now - (self.started or self.start), 1e-9)
        else:
            rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        remaining = max(0, self.max_steps - step) / rate if rate > 0 else float("inf")
        mean = (f"{np.mean(self.returns):.1f} (last {len(self.returns)} of {self.episodes})"
                if self.returns else "- (no episode finished yet)")
        log(f"[{100.0 * step / self.max_steps:5.1f}%] step {step:,}/{self.max_steps:,} | "
            f"{rate:,.0f} steps/s | {rate * self.frames_per_step:,.0f} frames/s | "
            f"return {mean} | elapsed {_duration(elapsed)} | ETA {_duration(remaining)}")


class Trainer:
    """Starts and supervises the actor-learners of one training run."""

    def __init__(self, config: dict[str, Any], env_spec: EnvSpec):
        self.config = config
        self.env_spec = env_spec
        self.layout = make_layout(config["alg_type"], config["arch"], env_spec.observation_shape,
                                  env_spec.num_actions)
        self.value_based = config["alg_type"] != "a3c"
        # Drawn here, not in the workers, so that they are recorded with the run and reproducible.
        self.final_epsilons = (
            sample_final_epsilons(np.random.default_rng([config["seed"], 1]),
                                  config["num_actor_learners"])
            if self.value_based else [1.0] * config["num_actor_learners"])
        self.ctx = mp.get_context("spawn")
        self.workers: list[mp.process.BaseProcess] = []
        self.signal_count = 0
        self.signal_number: int | None = None
        self.timings: dict[int, dict[str, float]] = {}
        self.failure: str | None = None
        self.run_dir = ""

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum, _frame) -> None:
        self.signal_count += 1
        self.signal_number = self.signal_number or signum
        if self.signal_count == 1:
            log(f"\n{signal.Signals(signum).name}: stopping the actor-learners "
                "(send it again to stop at once)")
        else:
            for worker in self.workers:
                if worker.is_alive():
                    worker.terminate()

    # ------------------------------------------------------------------ run
    def shared_sizes(self) -> dict[str, int]:
        sizes = {"params": self.layout.size}
        if self.value_based:
            sizes["target"] = self.layout.size
        if self.config["opt_mode"] == "shared":
            for slot in SLOTS[self.config["opt_type"]]:
                sizes[f"opt_{slot}"] = self.layout.size
        return sizes

    def run(self) -> int:
        cfg = self.config
        self.run_dir = make_run_dir(cfg["summary_dir"], cfg["game"], cfg["alg_type"])
        extra = {"final_epsilons": self.final_epsilons} if self.value_based else {}
        write_config(self.run_dir, dict(cfg, observation_shape=list(self.env_spec.observation_shape),
                                        num_actions=self.env_spec.num_actions,
                                        num_parameters=self.layout.size, **extra))
        log(f"run directory: {self.run_dir}")
        log(f"{cfg['alg_type']} on {cfg['game']} ({cfg['env']}): {cfg['num_actor_learners']} "
            f"actor-learners, {self.env_spec.num_actions} actions, {self.layout.size:,} parameters, "
            f"lr {cfg['initial_lr']:.3g}, seed {cfg['seed']}")
        if self.value_based:
            log("final epsilons per actor-learner: "
                + ", ".join(f"{i}: {e:g}" for i, e in enumerate(self.final_epsilons)))
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        shared = SharedVectors.create(self.shared_sizes())
        episodes = EpisodeLog(self.run_dir)
        try:
            shared["params"][:] = self.layout.initial_values(np.random.default_rng(cfg["seed"]))
            if self.value_based:
                shared["target"][:] = shared["params"]
            return self._supervise(shared, episodes)
        finally:
            self._stop_workers()
            episodes.close()
            shared.unlink()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _supervise(self, shared: SharedVectors, episodes: EpisodeLog) -> int:
        cfg = self.config
        ctx = self.ctx
        runtime = Runtime(global_step=ctx.Value("q", 0), stop=ctx.Event(),
                          messages=ctx.Queue(), adam_step=ctx.Value("q", 0),
                          target_version=ctx.Value("q", 0), parent_pid=os.getpid())
        self.runtime = runtime
        # Workers are started with SIGINT ignored, a disposition they inherit through exec, so a
        # Ctrl-C in the terminal (sent to the whole process group) never interrupts them, not
        # even while they import; the parent alone decides how they stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for actor in range(cfg["num_actor_learners"]):
            spec = WorkerSpec(actor_id=actor, seed=cfg["seed"] + actor, config=cfg,
                              env_spec=self.env_spec, layout=self.layout,
                              shared_handles=shared.handles, run_dir=self.run_dir,
                              final_epsilon=self.final_epsilons[actor])
            worker = ctx.Process(target=worker_main, args=(spec, runtime),
                                 name=f"actor-learner-{actor}", daemon=True)
            worker.start()
            self.workers.append(worker)
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        progress = Progress(cfg["max_global_steps"], self.env_spec.frames_per_step, cfg["quiet"],
                            len(self.workers))
        log(f"started {len(self.workers)} actor-learner processes")

        alive = {w.sentinel: w for w in self.workers}
        next_check = time.monotonic() + PROGRESS_SECONDS
        while alive:
            for sentinel in wait(list(alive), timeout=0.5):
                worker = alive.pop(sentinel)
                worker.join()
                self._drain(episodes, progress)
                if worker.exitcode != 0 and self.signal_count == 0 and self.failure is None:
                    self.failure = f"{worker.name} exited with code {worker.exitcode}"
            self._drain(episodes, progress)
            if time.monotonic() >= next_check:
                self._check_parameters(shared)
                next_check = time.monotonic() + PROGRESS_SECONDS
            if self.failure is not None or self.signal_count:
                runtime.stop.set()
            progress.maybe_print(runtime.global_step.value)
        self._drain(episodes, progress)
        self._check_parameters(shared)
        episodes.flush()
        progress.maybe_print(runtime.global_step.value, force=True)

        if self.signal_number is not None:
            log(f"stopped by {signal.Signals(self.signal_number).name} at step "
                f"{runtime.global_step.value:,}")
            return 128 + self.signal_number
        if self.failure is not None:
            log(f"error: {self.failure}; training stopped")
            return 1
        log(f"done: {runtime.global_step.value:,} steps; results in {self.run_dir}")
        return 0

    def _check_parameters(self, shared: SharedVectors) -> None:
        """Workers never apply non-finite gradients; if the shared parameters still become
        non-finite (overflow), training cannot recover: stop with an error."""
        if self.failure is None and not np.isfinite(shared["params"]).all():
            self.failure = ("the shared parameters became non-finite (NaN or inf); lower the "
                            "learning rate (-lr) or clip gradients (--clip_norm)")

    def _drain(self, episodes: EpisodeLog, progress: Progress) -> None:
        """Handle every message the workers have sent so far."""
        import queue as _queue
        wrote = False
        while True:
            try:
                message = self.runtime.messages.get_nowait()
            except (_queue.Empty, OSError, ValueError):
                break
            kind, actor = message[0], message[1]
            if kind == "episode":
                _, _, step, wall, ret, length = message
                episodes.write(actor, step, wall, ret, length)
                progress.episode(ret)
                wrote = True
            elif kind == "ready":
                progress.ready += 1
                if progress.ready == progress.workers:
                    progress.started = progress.last_time = time.monotonic()
            elif kind == "warning":
                print(f"warning: actor-learner {actor}: {message[2]}", file=sys.stderr, flush=True)
            elif kind == "timing":
                self.timings[actor] = message[2]
            elif kind == "error":
                print(f"actor-learner {actor} failed:\n{message[2]}", file=sys.stderr, flush=True)
                self.failure = self.failure or f"actor-learner {actor} raised an exception"
        if wrote:
            episodes.flush()

    def _stop_workers(self) -> None:
        """Ask, then wait, then terminate, then kill: no worker survives this call."""
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            runtime.stop.set()
        deadline = time.monotonic() + JOIN_SECONDS
        for worker in self.workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self.workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(2.0)
            if worker.is_alive():
                worker.kill()
                worker.join()
        if runtime is not None:
            runtime.messages.close()
            runtime.messages.join_thread()


def train(config: dict[str, Any], env_spec: EnvSpec) -> int:
    """Train with ``config`` (validated hyperparameters); returns the process exit code."""
    return Trainer(config, env_spec).run()
