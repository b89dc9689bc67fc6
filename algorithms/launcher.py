"""The parent process: shared memory, worker processes, supervision, signals and progress.

The parent never imports TensorFlow (it is not fork-safe, and the parent does not need it):
it initialises the parameters with numpy, creates the shared memory, starts the actor-learners
with the ``spawn`` method, and then only listens. It owns:

* the shared-memory segments: created here, unlinked here on every exit path;
* the global step counter and the stop event;
* ``episodes.csv`` and the console progress line;
* supervision: a worker that dies (exception, SIGKILL, out of memory) or stalls (no step for
  ``--stall_timeout`` seconds) is noticed through its process sentinel or its step counter, its
  traceback is shown, and it is restarted with the same actor id and exploration rate, up to
  ``--max_restarts`` times in all; past that training stops (exit code 1). No worker outlives
  the parent: they are daemonic, joined with a timeout, then terminated and killed if need be,
  and each worker also exits by itself when it sees that its parent is gone.

Each worker talks to the parent through a pipe of its own, and counts its steps in a slot of its
own (``shared.StepCounters``): no lock or channel is shared between workers, so a worker killed at
any instant cannot block or corrupt the others.

Signals: the first SIGINT/SIGTERM asks the workers to stop at their next segment (exit code
130/143); a second one stops them at once.
"""
from __future__ import annotations

import collections
import datetime as _dt
import multiprocessing as mp
import os
import pickle
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
from shared import SharedVectors, StepCounters
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
        self.workers = workers
        self.ready: set[int] = set()   # actors that have started their loop
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
        if len(self.ready) < self.workers:
            self.last_time = now
            if force:
                return
            log(f"starting the actor-learners: {len(self.ready)}/{self.workers} ready "
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
        self.workers: dict[int, mp.process.BaseProcess] = {}
        self.pipes: dict[int, Any] = {}
        self.incarnations: dict[int, int] = {}
        self.last_progress: dict[int, tuple[int | None, float]] = {}
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
            for worker in self.workers.values():
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

    def _start_worker(self, actor: int, incarnation: int) -> None:
        """Start (or restart) one actor-learner with a pipe of its own."""
        cfg = self.config
        reader, writer = self.ctx.Pipe(duplex=False)
        # A restarted learner gets a fresh environment (another seed), the same actor id and
        # the same exploration rate.
        spec = WorkerSpec(actor_id=actor, seed=cfg["seed"] + actor + 10_007 * incarnation,
                          config=cfg, env_spec=self.env_spec, layout=self.layout,
                          shared_handles=self.shared.handles, run_dir=self.run_dir,
                          final_epsilon=self.final_epsilons[actor], incarnation=incarnation)
        worker = self.ctx.Process(target=worker_main, args=(spec, self.runtime, writer),
                                  name=f"actor-learner-{actor}", daemon=True)
        worker.start()
        writer.close()   # the worker holds the only sending end: its death closes the pipe
        if actor in self.pipes:
            self.pipes[actor].close()
        self.workers[actor] = worker
        self.pipes[actor] = reader
        self.incarnations[actor] = incarnation
        self.last_progress[actor] = (None, time.monotonic())

    def _supervise(self, shared: SharedVectors, episodes: EpisodeLog) -> int:
        cfg = self.config
        ctx = self.ctx
        count = cfg["num_actor_learners"]
        runtime = Runtime(steps=StepCounters(ctx, count), updates=StepCounters(ctx, count),
                          stop=ctx.Event(), target_version=ctx.Value("q", 0),
                          parent_pid=os.getpid())
        self.runtime, self.shared = runtime, shared
        # Workers are started with SIGINT ignored, a disposition they inherit through exec, so a
        # Ctrl-C in the terminal (sent to the whole process group) never interrupts them, not
        # even while they import; the parent alone decides how they stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for actor in range(count):
            self._start_worker(actor, 0)
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        progress = Progress(cfg["max_global_steps"], self.env_spec.frames_per_step, cfg["quiet"],
                            count)
        self.progress = progress
        log(f"started {count} actor-learner processes")

        restarts = 0
        next_check = time.monotonic() + PROGRESS_SECONDS
        running = set(range(count))
        while running:
            sentinels = {self.workers[a].sentinel: a for a in running}
            wait(list(sentinels) + [self.pipes[a] for a in running if not self.pipes[a].closed],
                 timeout=0.5)
            self._drain(episodes, progress)
            for actor in [a for a in running if not self.workers[a].is_alive()]:
                worker = self.workers[actor]
                worker.join()
                self._drain(episodes, progress)
                running.discard(actor)
                if worker.exitcode == 0 or self.stopping:
                    continue
                reason = f"{worker.name} exited with code {worker.exitcode}"
                if restarts < cfg["max_restarts"] and runtime.steps.total() < cfg["max_global_steps"]:
                    restarts += 1
                    log(f"warning: {reason}; restarting it ({restarts} of --max_restarts "
                        f"{cfg['max_restarts']})")
                    progress.ready.discard(actor)
                    self._start_worker(actor, self.incarnations[actor] + 1)
                    running.add(actor)
                elif self.failure is None:
                    self.failure = (f"{reason}, and --max_restarts {cfg['max_restarts']} "
                                    "restarts are used up")
            self._check_stalls(running, progress)
            if time.monotonic() >= next_check:
                self._check_parameters(shared)
                next_check = time.monotonic() + PROGRESS_SECONDS
            if self.stopping:
                runtime.stop.set()
            progress.maybe_print(runtime.steps.total())
        self._drain(episodes, progress)
        self._check_parameters(shared)
        episodes.flush()
        step = runtime.steps.total()
        progress.maybe_print(step, force=True)

        if self.signal_number is not None:
            log(f"stopped by {signal.Signals(self.signal_number).name} at step {step:,}")
            return 128 + self.signal_number
        if self.failure is not None:
            log(f"error: {self.failure}; training stopped at step {step:,}")
            return 1
        log(f"done: {step:,} steps; results in {self.run_dir}")
        return 0

    @property
    def stopping(self) -> bool:
        return self.failure is not None or self.signal_count > 0

    def _check_stalls(self, running: set[int], progress: "Progress") -> None:
        """A ready worker whose step count has not moved for --stall_timeout seconds is killed
        (and then restarted, or reported, like any dead worker)."""
        now = time.monotonic()
        for actor in running:
            steps = self.runtime.steps[actor]
            seen, since = self.last_progress[actor]
            if actor not in progress.ready or steps != seen:
                self.last_progress[actor] = (steps, now)
            elif now - since > self.config["stall_timeout"] and self.workers[actor].is_alive():
                log(f"warning: actor-learner {actor} made no progress for "
                    f"{now - since:.0f} s (--stall_timeout); treating it as dead")
                self.workers[actor].kill()

    def _check_parameters(self, shared: SharedVectors) -> None:
        """Workers never apply non-finite gradients; if the shared parameters still become
        non-finite (overflow), training cannot recover: stop with an error."""
        if self.failure is None and not np.isfinite(shared["params"]).all():
            self.failure = ("the shared parameters became non-finite (NaN or inf); lower the "
                            "learning rate (-lr) or clip gradients (--clip_norm)")

    def _drain(self, episodes: EpisodeLog, progress: "Progress") -> None:
        """Handle every message the workers have sent so far."""
        wrote = False
        for actor, pipe in list(self.pipes.items()):
            while True:
                try:
                    if pipe.closed or not pipe.poll():
                        break
                    message = pipe.recv()
                except (EOFError, OSError, pickle.UnpicklingError):
                    pipe.close()   # the worker is gone (possibly in the middle of a message)
                    break
                kind = message[0]
                if kind == "episode":
                    _, _, step, wall, ret, length = message
                    episodes.write(actor, step, wall, ret, length)
                    progress.episode(ret)
                    wrote = True
                elif kind == "ready":
                    progress.ready.add(actor)
                    if len(progress.ready) == progress.workers and progress.started is None:
                        progress.started = progress.last_time = time.monotonic()
                elif kind == "warning":
                    print(f"warning: actor-learner {actor}: {message[2]}", file=sys.stderr,
                          flush=True)
                elif kind == "timing":
                    self.timings[actor] = message[2]
                elif kind == "error":
                    print(f"actor-learner {actor} failed:\n{message[2]}", file=sys.stderr,
                          flush=True)
        if wrote:
            episodes.flush()

    def _stop_workers(self) -> None:
        """Ask, then wait, then terminate, then kill: no worker survives this call."""
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            runtime.stop.set()
        deadline = time.monotonic() + JOIN_SECONDS
        workers = list(self.workers.values())
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join(2.0)
            if worker.is_alive():
                worker.kill()
                worker.join()
        for pipe in self.pipes.values():
            pipe.close()


def train(config: dict[str, Any], env_spec: EnvSpec) -> int:
    """Train with ``config`` (validated hyperparameters); returns the process exit code."""
    return Trainer(config, env_spec).run()
