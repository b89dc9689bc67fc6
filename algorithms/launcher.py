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

from . import checkpoint
from .actor_learner import Runtime, WorkerSpec, worker_main
from .environments import EnvSpec
from .exploration import sample_final_epsilons
from .networks import make_layout
from .optimizers import SLOTS
from .shared import SharedVectors, StepCounters
from .summaries import EpisodeLog, make_run_dir, package_versions, write_config

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

    def __init__(self, max_steps: int, frames_per_step: int, quiet: bool, workers: int,
                 first_step: int = 0):
        self.max_steps, self.frames_per_step, self.quiet = max_steps, frames_per_step, quiet
        self.first_step = first_step   # a resumed run starts at its checkpoint's step
        self.workers = workers
        self.ready: set[int] = set()   # actors that have started their loop
        self.started: float | None = None   # when the last actor-learner became ready
        self.start = time.monotonic()
        self.last_time, self.last_step = self.start, first_step
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
            rate = (step - self.first_step) / max(now - (self.started or self.start), 1e-9)
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

    def __init__(self, config: dict[str, Any], env_spec: EnvSpec,
                 resume: checkpoint.Checkpoint | None = None):
        self.config = config
        self.env_spec = env_spec
        self.layout = make_layout(config["alg_type"], config["arch"], env_spec.observation_shape,
                                  env_spec.num_actions, config["lstm"], env_spec.continuous)
        self.value_based = config["alg_type"] != "a3c"
        self.resume = resume
        self.resumes = 0 if resume is None else int(resume.meta.get("resumes", 0)) + 1
        count = config["num_actor_learners"]
        # Drawn here, not in the workers, so that they are recorded with the run and reproducible.
        # A resumed run keeps each actor-learner's saved rate; extra actor-learners draw theirs.
        drawn = (sample_final_epsilons(np.random.default_rng([config["seed"], 1 + self.resumes]),
                                       count) if self.value_based else [1.0] * count)
        saved = [] if resume is None else [float(e) for e in resume.arrays["final_epsilons"]]
        self.final_epsilons = (saved + drawn[len(saved):])[:count]
        self.ctx = mp.get_context("spawn")
        self.workers: dict[int, mp.process.BaseProcess] = {}
        self.pipes: dict[int, Any] = {}
        self.incarnations: dict[int, int] = {}
        self.last_progress: dict[int, tuple[int | None, float]] = {}
        self.signal_count = 0
        self.signal_number: int | None = None
        self.timings: dict[int, dict[str, float]] = {}
        self.failure: str | None = None
        self.solved: str | None = None   # why --stop_return ended training
        self.run_dir = ""
        self.last_checkpoint: str | None = None
        self.corrupted = False   # the shared parameters became non-finite
        self.stop_requested: float | None = None   # when the stop was asked for
        self.terminated: set[int] = set()

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
        return shared_sizes(self.config, self.layout.size)

    def layout_record(self) -> list[list]:
        return [[spec.name, list(spec.shape)] for spec in self.layout.specs]

    def _open_run_dir(self) -> bool:
        """A resumed run goes on in its own run directory when that still exists (TensorBoard
        then shows one continuous curve); returns True if it does."""
        cfg = self.config
        saved = None if self.resume is None else self.resume.meta.get("run_dir")
        if saved and os.path.isdir(saved) and os.access(saved, os.W_OK):
            self.run_dir = saved
            return True
        self.run_dir = make_run_dir(cfg["summary_dir"], cfg["game"], cfg["alg_type"])
        return False

    def run(self) -> int:
        cfg = self.config
        continued = self._open_run_dir()
        extra = {"final_epsilons": self.final_epsilons} if self.value_based else {}
        resumed = None
        if self.resume is not None:
            resumed = {"checkpoint": os.path.abspath(self.resume.path),
                       "global_step": self.resume.step, "resumes": self.resumes}
        write_config(self.run_dir, dict(cfg,
                                        observation_shape=list(self.env_spec.observation_shape),
                                        num_actions=self.env_spec.num_actions,
                                        num_parameters=self.layout.size, **extra),
                     resumed=resumed)
        log(f"run directory: {self.run_dir}")
        if self.resume is not None:
            log(f"resumed from {self.resume.path} at step {self.resume.step:,}"
                + (" (same run directory)" if continued else ""))
        log(f"checkpoints: {os.path.abspath(cfg['checkpoint_dir'])} (every "
            f"{cfg['checkpoint_interval']:,} steps, keeping the last {cfg['keep_checkpoints']})")
        log(f"{cfg['alg_type']} on {cfg['game']} ({cfg['env']}): {cfg['num_actor_learners']} "
            f"actor-learners, {self.env_spec.num_actions} actions, "
            f"{self.layout.size:,} parameters, "
            f"lr {cfg['initial_lr']:.3g}, seed {cfg['seed']}")
        if self.value_based:
            log("final epsilons per actor-learner: "
                + ", ".join(f"{i}: {e:g}" for i, e in enumerate(self.final_epsilons)))
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        shared = SharedVectors.create(self.shared_sizes())
        episodes = EpisodeLog(self.run_dir,
                              resume_step=self.resume.step if continued else None)
        try:
            if self.resume is None:
                shared["params"][:] = self.layout.initial_values(
                    np.random.default_rng(cfg["seed"]))
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
        seed = cfg["seed"] + actor + 10_007 * incarnation + 7_919 * self.resumes
        spec = WorkerSpec(actor_id=actor, seed=seed,
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
        if self.resume is not None:
            restore(self.resume, shared, runtime)
        interval = cfg["checkpoint_interval"]
        self.next_checkpoint = (runtime.steps.total() // interval + 1) * interval
        # Workers are started with SIGINT ignored, a disposition they inherit through exec, so a
        # Ctrl-C in the terminal (sent to the whole process group) never interrupts them, not
        # even while they import; the parent alone decides how they stop.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for actor in range(count):
            self._start_worker(actor, 0)
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, self._on_signal)
        progress = Progress(cfg["max_global_steps"], self.env_spec.frames_per_step, cfg["quiet"],
                            count, first_step=runtime.steps.total())
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
                budget_left = runtime.steps.total() < cfg["max_global_steps"]
                if restarts < cfg["max_restarts"] and budget_left:
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
            self._check_solved(progress)
            if time.monotonic() >= next_check:
                self._check_parameters(shared)
                next_check = time.monotonic() + PROGRESS_SECONDS
            step = runtime.steps.total()
            if self.next_checkpoint <= step < cfg["max_global_steps"] and not self.stopping:
                self._save_checkpoint()
            if self.stopping:
                runtime.stop.set()
                self._terminate_stragglers(running)
            progress.maybe_print(runtime.steps.total())
        self._drain(episodes, progress)
        self._check_parameters(shared)
        episodes.flush()
        step = runtime.steps.total()
        progress.maybe_print(step, force=True)
        if not self.corrupted:
            self._save_checkpoint(final=True)
        elif self.last_checkpoint:
            log(f"the last good checkpoint is {self.last_checkpoint}")

        if self.signal_number is not None:
            log(f"stopped by {signal.Signals(self.signal_number).name} at step {step:,}")
            return 128 + self.signal_number
        if self.failure is not None:
            log(f"error: {self.failure}; training stopped at step {step:,}")
            return 1
        log(f"done: {step:,} steps; results in {self.run_dir}")
        return 0

    def _save_checkpoint(self, final: bool = False) -> None:
        """Snapshot the shared memory into a checkpoint (the parent is the only writer)."""
        runtime, cfg = self.runtime, self.config
        self._check_parameters(self.shared)
        step = runtime.steps.total()
        interval = cfg["checkpoint_interval"]
        self.next_checkpoint = (step // interval + 1) * interval
        if self.corrupted:
            return   # never save parameters that are not finite: the last good one stays
        arrays = {name: np.array(self.shared[name]) for name in self.shared_sizes()}
        arrays.update(steps=runtime.steps.slots.copy(), updates=runtime.updates.slots.copy(),
                      final_epsilons=np.array(self.final_epsilons, np.float64),
                      target_version=np.array(runtime.target_version.value, np.int64))
        meta = {"config": self.config, "layout": self.layout_record(),
                "observation_shape": list(self.env_spec.observation_shape),
                "num_actions": self.env_spec.num_actions, "versions": package_versions(),
                "run_dir": self.run_dir, "resumes": self.resumes}
        start = time.monotonic()
        path = checkpoint.save(cfg["checkpoint_dir"], step, arrays, meta, cfg["keep_checkpoints"])
        self.last_checkpoint = path
        if final or not cfg["quiet"]:
            log(f"{'final ' if final else ''}checkpoint: {os.path.abspath(path)} "
                f"({time.monotonic() - start:.2f} s)")

    def _terminate_stragglers(self, running: set[int]) -> None:
        """Workers get JOIN_SECONDS after a stop request to finish their segment; one that is
        hung (or still starting) past that is terminated, so a stop never waits forever."""
        now = time.monotonic()
        if self.stop_requested is None:
            self.stop_requested = now
        elif now - self.stop_requested > JOIN_SECONDS:
            for actor in running:
                worker = self.workers[actor]
                if worker.is_alive() and actor not in self.terminated:
                    log(f"warning: actor-learner {actor} did not stop within {JOIN_SECONDS:.0f} "
                        "s; terminating it")
                    worker.terminate()
                    self.terminated.add(actor)

    @property
    def stopping(self) -> bool:
        return self.failure is not None or self.signal_count > 0 or self.solved is not None

    def _check_solved(self, progress: "Progress") -> None:
        """--stop_return: a normal end once the last RECENT_EPISODES episodes average R."""
        target = self.config.get("stop_return")
        if target is None or self.stopping or len(progress.returns) < RECENT_EPISODES:
            return
        mean = float(np.mean(progress.returns))
        if mean >= target:
            self.solved = (f"the mean return of the last {RECENT_EPISODES} episodes, {mean:g}, "
                           f"reached --stop_return {target:g}")
            log(f"{self.solved} at step {self.runtime.steps.total():,}; stopping")

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
        if not self.corrupted and not np.isfinite(shared["params"]).all():
            self.corrupted = True
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


def restore(ckpt: checkpoint.Checkpoint, shared: SharedVectors, runtime: Runtime) -> None:
    """Load a checkpoint into fresh shared memory and counters.

    Vectors are copied exactly. With as many actor-learners as were saved, every per-actor
    counter is restored as it was; with another number, the totals (the global step and Adam's
    t) go to the first slot, and in ``--opt_mode local`` actor-learners beyond the saved ones
    start with zero statistics.
    """
    for name in shared.sizes:
        if name in ckpt.arrays:
            np.copyto(shared[name], ckpt.arrays[name])
    for counters, saved in ((runtime.steps, ckpt.arrays["steps"]),
                            (runtime.updates, ckpt.arrays["updates"])):
        slots = counters.slots
        if len(saved) == len(slots):
            slots[:] = saved
        else:
            slots[:] = 0
            slots[0] = int(saved.sum())
    runtime.target_version.value = int(ckpt.arrays.get("target_version", 0))


def shared_sizes(config: dict[str, Any], num_parameters: int) -> dict[str, int]:
    """Every vector training needs, all in shared memory so the parent can checkpoint them:
    in ``--opt_mode local`` each actor-learner's statistics are vectors of their own."""
    sizes = {"params": num_parameters}
    if config["alg_type"] != "a3c":
        sizes["target"] = num_parameters
    for slot in SLOTS[config["opt_type"]]:
        if config["opt_mode"] == "shared":
            sizes[f"opt_{slot}"] = num_parameters
        else:
            for actor in range(config["num_actor_learners"]):
                sizes[f"opt_{slot}_{actor}"] = num_parameters
    return sizes


def train(config: dict[str, Any], env_spec: EnvSpec,
          resume: checkpoint.Checkpoint | None = None) -> int:
    """Train with ``config`` (validated hyperparameters), from scratch or from ``resume``;
    returns the process exit code."""
    return Trainer(config, env_spec, resume).run()
