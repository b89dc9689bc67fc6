"""The parent process: starts and supervises the actor-learners of one training run.

``train`` puts a run together from three parts that know nothing of each other:

* the parameter store (``store.py``): where the parameters and optimizer statistics live;
* the run record (``record.py``): run folder, ``config.json``, ``episodes.csv``, progress,
  ``--stop_return``;
* the checkpointer (``checkpoint.py``): when to write a checkpoint and what goes into it;

and hands them to the :class:`Supervisor`, which owns the processes. The parent never imports
TensorFlow (it is not fork-safe, and the parent does not need it): it initialises the parameters
with numpy, starts the actor-learners, and then only listens. They are forked by
multiprocessing's fork server, a fresh process that loaded TensorFlow once before any runtime
started (:func:`start_forkserver`): 16 actor-learners on 2 cores are ready in seconds, where 16
imports of TensorFlow took most of a minute.

Supervision: a worker that dies (exception, SIGKILL, out of memory) or stalls (no step for
``--stall_timeout`` seconds) is noticed through its process sentinel or its step counter, its
traceback is shown, and it is restarted with the same actor id and exploration rate, up to
``--max_restarts`` times in all; past that training stops (exit code 1), as it does if the fork
server, the workers' parent, dies (:meth:`ProcessWorkers.lost`). No worker outlives the
parent: they are daemonic, joined with a timeout, then terminated and killed if need be, and each
worker also exits by itself when it sees that the parent is gone (``Runtime.lifeline``).

Each worker talks to the parent through a pipe of its own, and counts its steps in a slot of its
own (``shared.StepCounters``): no lock or channel is shared between workers, so a worker killed at
any instant cannot block or corrupt the others.

Signals: the first SIGINT, SIGTERM or SIGHUP (a closed terminal, a dropped SSH session) asks the
workers to stop at their next segment, then a final checkpoint is written (exit code 130, 143,
129); a second one stops them at once. Workers ignore SIGINT and SIGHUP, which a terminal sends
to the whole process group: the parent alone decides how they stop.
"""
from __future__ import annotations

import contextlib
import errno
import functools
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
from .actor_learner import ONEDNN, Runtime, WorkerSpec, onednn_kernels, worker_main
from .config import Config, UserError, claim_folder
from .environments import EnvSpec
from .exploration import sample_final_epsilons
from .networks import Layout, make_layout
from .record import PROGRESS_SECONDS, RunRecord, log
from .shared import StepCounters, StopFlag
from .store import SharedParameterStore
from .summaries import package_versions

JOIN_SECONDS = 10.0
FINISH_SECONDS = 60.0   # after the budget: closing under a heavy load may take a while
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILL_SECONDS = 2.0   # after SIGTERM, before SIGKILL: a stopped process holds SIGTERM pending
LOST_CONNECTION = 255   # a forkserver Popen's exit code once its connection to the server ended


class ProcessWorkers:
    """The actor-learners as processes of this machine (forked by the fork server), each with a
    pipe of its own and a slot of its own in the shared step counters: the Supervisor's view of
    them.

    The same calls are offered by ``cluster.RayWorkers`` (actor-learners as Ray actors): start,
    wait, receive, lost, alive, exit_reason, terminate, kill, stop_all, and the ``steps``
    counters and ``stop`` flag."""

    description = "actor-learner processes"

    def __init__(self, steps: StepCounters, ctx, server: int | None = None):
        self.ctx = ctx
        self.steps = steps
        self.server = server   # the fork server's pid (start_forkserver), our child
        self._lost: str | None = None
        self.stop = StopFlag(ctx)
        # Only this process holds the sending end, and nothing is ever sent: the workers' end
        # reads as ended when this process is gone, however it ended.
        lifeline, self._lifeline = ctx.Pipe(duplex=False)
        self.runtime = Runtime(steps=steps, stop=self.stop, lifeline=lifeline)
        self.processes: dict[int, mp.process.BaseProcess] = {}
        self._started: dict[int, bytes | None] = {}   # each worker's start time (_process_start)
        self.pipes: dict[int, Any] = {}

    def start(self, spec: WorkerSpec) -> None:
        """Start (or restart) actor-learner ``spec.actor_id``; UserError at the machine's
        limits."""
        actor = spec.actor_id
        reader, writer = self.ctx.Pipe(duplex=False)
        worker = self.ctx.Process(target=worker_main, args=(spec, self.runtime, writer),
                                  name=f"actor-learner-{actor}", daemon=True)
        # A worker starts with SIGINT and SIGHUP ignored, as the fork server it is forked from
        # (start_forkserver): a Ctrl-C or a closed terminal while it starts must not kill it.
        try:
            worker.start()
        except (OSError, EOFError) as err:
            # EOFError: the fork server ended instead of answering, which it does when the
            # system refuses it a process or the memory for one
            if isinstance(err, OSError) and err.errno not in (errno.EMFILE, errno.ENFILE,
                                                              errno.ENOMEM, errno.EAGAIN):
                raise
            reason = _reason(err) if isinstance(err, OSError) else "the fork server ended"
            reader.close()
            writer.close()
            raise UserError(f"could not start actor-learner {actor} ({reason}): the "
                            "machine's limits are reached; raise `ulimit -n` (open files) or "
                            "`ulimit -u` (processes), or use a smaller -n") from None
        writer.close()   # the worker holds the only sending end: its death closes the pipe
        if actor in self.pipes:
            self.pipes[actor].close()
        self.processes[actor] = worker
        self._started[actor] = _process_start(worker.pid)
        self.pipes[actor] = reader

    def wait(self, actors, timeout: float) -> None:
        """Until one of ``actors`` sends a message or exits, or ``timeout`` seconds."""
        # without the fork server the sentinels are ended for good, and would never wait
        sentinels = [] if self.lost() else [self.processes[a].sentinel for a in actors]
        pipes = [self.pipes[a] for a in actors if not self.pipes[a].closed]
        if sentinels or pipes:
            wait(sentinels + pipes, timeout=timeout)
        else:
            time.sleep(timeout)

    def receive(self) -> list[tuple[int, tuple]]:
        """Every message the workers have sent so far, as (actor, message)."""
        received = []
        for actor, pipe in list(self.pipes.items()):
            while True:
                try:
                    if pipe.closed or not pipe.poll():
                        break
                    received.append((actor, pipe.recv()))
                except (EOFError, OSError, pickle.UnpicklingError):
                    pipe.close()   # the worker is gone (possibly in the middle of a message)
                    break
        return received

    def lost(self, timeout: float = 0.0) -> str | None:
        """Why the fork server has ended, if it has (the out-of-memory killer, a stray kill),
        else None: a line that names it. ``timeout``: seconds to wait for it to have ended.

        The server is the actor-learners' parent: multiprocessing learns their ends from it,
        and without it reports every one of them as exited with :data:`LOST_CONNECTION`,
        running or not, and would start a new server (without the run's settings) for a
        restart. So once it is gone the run must stop; its actor-learners are then watched,
        and stopped, through their pids (:meth:`alive`, :meth:`stop_all`)."""
        deadline = time.monotonic() + timeout
        while self._lost is None and self.server is not None:
            end = _child_end(self.server)
            if end is not None:
                self._lost = f"the fork server of the actor-learners (pid {self.server}) {end}"
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.01)
        return self._lost

    def alive(self, actor: int) -> bool:
        worker = self.processes[actor]
        if self.lost() is None:
            if worker.is_alive():
                return True
            # A server that dies closes its connections a moment before it can be seen to
            # have ended: a LOST_CONNECTION may be that, and then says nothing of the worker.
            if worker.exitcode != LOST_CONNECTION or self.lost(timeout=2.0) is None:
                return False
        return self._running(actor)

    def _running(self, actor: int) -> bool:
        """Whether the worker runs, by its pid (and start time, so that a reused pid is
        never taken for it)."""
        pid, started = self.processes[actor].pid, self._started.get(actor)
        return pid is not None and started is not None and _process_start(pid) == started

    def exit_reason(self, actor: int) -> str | None:
        """For an actor-learner that has ended: None if it ended cleanly, else why not. Once
        the fork server is gone (:meth:`lost`), an end is only known to have happened, and is
        reported as clean: the loss itself stops the run."""
        worker = self.processes[actor]
        worker.join()
        if worker.exitcode == 0 or self.lost() is not None:
            return None
        return f"{worker.name} exited with code {worker.exitcode}"

    def _signal(self, actor: int, signum: int) -> None:
        if self._running(actor):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.processes[actor].pid, signum)

    def terminate(self, actor: int) -> None:
        if self.lost() is None:
            self.processes[actor].terminate()
        else:
            self._signal(actor, signal.SIGTERM)

    def kill(self, actor: int) -> None:
        if self.lost() is None:
            self.processes[actor].kill()
        else:
            self._signal(actor, signal.SIGKILL)

    def stop_all(self) -> None:
        """Ask, then wait, then terminate, then kill: no worker survives this call."""
        self.stop.set()
        if self.lost() is None:
            deadline = time.monotonic() + JOIN_SECONDS
            workers = list(self.processes.values())
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                    worker.join(2.0)
                if worker.is_alive():
                    worker.kill()
                    worker.join()
            if any(worker.exitcode == LOST_CONNECTION for worker in workers):
                self.lost(timeout=2.0)   # the server may have died meanwhile
        if self.lost() is not None:
            self._stop_orphans()
        for pipe in [*self.pipes.values(), self._lifeline, self.runtime.lifeline]:
            pipe.close()

    def _stop_orphans(self) -> None:
        """stop_all for actor-learners whose fork server is gone: they are nobody's children
        here, so they are polled by pid instead of joined."""
        actors = list(self.processes)
        for signum, grace in ((None, JOIN_SECONDS), (signal.SIGTERM, KILL_SECONDS),
                              (signal.SIGKILL, KILL_SECONDS)):
            if signum is not None:
                for actor in actors:
                    self._signal(actor, signum)
            deadline = time.monotonic() + grace
            while actors and time.monotonic() < deadline:
                actors = [a for a in actors if self._running(a)]
                time.sleep(0.05)
            if not actors:
                return


class Supervisor:
    """Starts, watches, restarts and stops the actor-learner processes."""

    def __init__(self, config: Config, env_spec: EnvSpec, layout: Layout, store,
                 record: RunRecord, checkpointer: checkpoint.Checkpointer, workers,
                 final_epsilons: list[float], resumes: int):
        self.config, self.env_spec, self.layout = config, env_spec, layout
        self.store, self.record, self.checkpointer = store, record, checkpointer
        self.final_epsilons, self.resumes = final_epsilons, resumes
        self.workers = workers   # ProcessWorkers, or cluster.RayWorkers
        self.steps = workers.steps
        self.started: set[int] = set()
        self.incarnations: dict[int, int] = {}
        self.last_progress: dict[int, tuple[int | None, float]] = {}
        self.continued = False   # a SIGCONT arrived since the last _clock()
        self.last_clock = time.monotonic()
        self.signal_count = 0
        self.signal_number: int | None = None
        self.timings: dict[int, dict[str, float]] = {}
        self.failure: str | None = None
        self.corrupted = False   # the shared parameters became non-finite
        self.stop_requested: float | None = None   # when the stop was asked for
        self.terminated: dict[int, float] = {}   # actor: when it was sent SIGTERM
        self.stall_killed: set[int] = set()   # actors killed as stalled, not yet restarted

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum, _frame) -> None:
        self.signal_count += 1
        self.signal_number = self.signal_number or signum
        if self.signal_count == 1:
            log(f"\n{signal.Signals(signum).name}: stopping the actor-learners "
                "(send it again to stop at once)")
        else:
            for actor in self.started:
                if self.workers.alive(actor):
                    self.workers.terminate(actor)
                    self.terminated.setdefault(actor, time.monotonic())

    @property
    def stopping(self) -> bool:
        return (self.failure is not None or self.signal_count > 0
                or self.record.solved is not None)

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        """Supervise until the budget, a stop or a failure; returns the exit code."""
        previous = {s: signal.getsignal(s) for s in (*STOP_SIGNALS, signal.SIGCONT)}
        signal.signal(signal.SIGCONT, self._on_continue)
        try:
            return self._supervise()
        finally:
            self._stop_workers()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _start_worker(self, actor: int, incarnation: int) -> None:
        """Start (or restart) one actor-learner."""
        config = self.config
        # A restarted learner gets a fresh environment (another seed), the same actor id and
        # the same exploration rate.
        seed = config.seed + actor + 10_007 * incarnation + 7_919 * self.resumes
        spec = WorkerSpec(actor_id=actor, seed=seed, config=config, env_spec=self.env_spec,
                          layout=self.layout, store=self.store.handle,
                          run_dir=self.record.run_dir, final_epsilon=self.final_epsilons[actor],
                          incarnation=incarnation)
        self.workers.start(spec)
        self.started.add(actor)
        self.stall_killed.discard(actor)
        self.incarnations[actor] = incarnation
        self.last_progress[actor] = (None, time.monotonic())

    def _supervise(self) -> int:
        config, steps, record = self.config, self.steps, self.record
        count = config.num_actor_learners
        # Workers never see a Ctrl-C or a closed terminal (sent to the whole process group):
        # the parent alone decides how they stop (see _start_worker), from the first moment.
        for s in STOP_SIGNALS:
            signal.signal(s, self._on_signal)
        first_step = steps.total()
        for actor in range(count):
            self._start_worker(actor, 0)
        record.start_progress(first_step)
        log(f"started {count} {self.workers.description}")

        restarts = 0
        next_check = time.monotonic() + PROGRESS_SECONDS
        running = set(range(count))
        while running:
            self.workers.wait(running, timeout=0.5)
            self._drain()
            self._check_workers_parent()
            # Past the budget every worker is finishing: one that is slow to close is not
            # stalled, and one that fails while closing has done its work.
            finishing = self.stopping or steps.total() >= config.max_global_steps
            for actor in [a for a in running if not self.workers.alive(a)]:
                reason = self.workers.exit_reason(actor)
                self._drain()
                running.discard(actor)
                self._check_workers_parent()   # no restart once the fork server is gone
                if reason is None or finishing or self.stopping:
                    continue
                if restarts < config.max_restarts:
                    restarts += 1
                    log(f"warning: {reason}; restarting it ({restarts} of --max_restarts "
                        f"{config.max_restarts})")
                    record.not_ready(actor)
                    self._start_worker(actor, self.incarnations[actor] + 1)
                    running.add(actor)
                elif self.failure is None:
                    self.failure = (f"{reason}, and --max_restarts {config.max_restarts} "
                                    "restarts are used up")
            if not finishing:
                self._check_stalls(running)
            if not self.stopping:
                record.check_solved(steps.total())
            if time.monotonic() >= next_check:
                self._check_parameters()
                next_check = time.monotonic() + PROGRESS_SECONDS
            if self.checkpointer.due(steps.total()) and not self.stopping:
                self._save_checkpoint()
            if finishing:
                self.workers.stop.set()
                self._terminate_stragglers(running,
                                           JOIN_SECONDS if self.stopping else FINISH_SECONDS)
            record.show(steps.total())
        self._drain()
        self._check_parameters()
        record.flush()
        step = steps.total()
        record.show(step, force=True)
        if step == first_step:
            log("no step was taken: no checkpoint written")
        elif not self.corrupted:
            self._save_checkpoint(final=True)
        elif self.checkpointer.last_path:
            log(f"the last good checkpoint is {self.checkpointer.last_path}")

        if self.signal_number is not None:
            log(f"stopped by {signal.Signals(self.signal_number).name} at step {step:,}")
            return 128 + self.signal_number
        if self.failure is not None:
            log(f"error: {self.failure}; training stopped at step {step:,}")
            return 1
        log(f"done: {step:,} steps; results in {record.run_dir}")
        return 0

    def _save_checkpoint(self, final: bool = False) -> None:
        """Snapshot the store and the counters into a checkpoint (the parent is the only
        writer); never parameters that are not finite: the last good checkpoint stays.

        A write that fails (a full disk, a folder made read-only or removed) never ends
        training: it is reported on one line and tried again at the next interval. A final
        checkpoint that cannot be written goes to a fallback folder, and the line says where.
        """
        self._check_parameters()
        if self.corrupted:
            return
        step = self.steps.total()
        arrays = self.store.state()
        arrays.update(steps=self.steps.slots.copy(),
                      final_epsilons=np.array(self.final_epsilons, np.float64))
        start = time.monotonic()
        try:
            path = self.checkpointer.save(step, arrays)
        except OSError as err:
            where = os.path.abspath(self.config.checkpoint_dir)
            if not final:
                log(f"warning: the checkpoint at step {step:,} could not be written to {where} "
                    f"({_reason(err)}); training goes on, and the next interval tries again",
                    file=sys.stderr)
                return
            path = self._save_fallback(step, arrays, where, err)
            if path is None:
                return
        if final or not self.config.quiet:
            log(f"{'final ' if final else ''}checkpoint: {os.path.abspath(path)} "
                f"({time.monotonic() - start:.2f} s)")

    def _save_fallback(self, step: int, arrays: dict, where: str, err: OSError) -> str | None:
        """The final checkpoint, when --checkpoint_dir refuses it: into the run folder, else
        the system's temporary folder. Returns its path, or None if nowhere took it."""
        import tempfile
        log(f"warning: the final checkpoint could not be written to {where} ({_reason(err)})",
            file=sys.stderr)
        candidates = [os.path.join(self.record.run_dir, "checkpoints"),
                      os.path.join(tempfile.gettempdir(), f"a3c-checkpoints-{os.getpid()}")]
        for folder in candidates:
            try:
                path = checkpoint.save(folder, step, arrays, self.checkpointer.meta,
                                       self.config.keep_checkpoints)
            except OSError:
                continue
            log(f"saved it to {folder} instead: resume with --resume --checkpoint {path}",
                file=sys.stderr)
            self.checkpointer.last_path = path
            return path
        last = self.checkpointer.last_path
        log("error: no folder took the final checkpoint"
            + (f"; the last good one is {last}" if last else ""), file=sys.stderr)
        if self.failure is None:
            self.failure = "the final checkpoint could not be written"
        return None

    def _terminate_stragglers(self, running: set[int], grace: float) -> None:
        """Workers get ``grace`` seconds after a stop request (JOIN_SECONDS) or the end of the
        budget (FINISH_SECONDS) to finish their segment and close; one that is hung past that,
        or still starting, is terminated, and killed KILL_SECONDS later if it is still there (a
        stopped process, SIGSTOP or a debugger, holds SIGTERM pending), so a stop never waits
        forever."""
        now = self._clock()
        if self.stop_requested is None:
            self.stop_requested = now
        for actor in running:
            if not self.workers.alive(actor):
                continue
            if actor not in self.terminated:
                # one still starting has nothing to finish: it goes at once
                starting = not self.record.is_ready(actor)
                if starting or now - self.stop_requested > grace:
                    if not starting:
                        log(f"warning: actor-learner {actor} did not stop within "
                            f"{grace:.0f} s; terminating it")
                    self.workers.terminate(actor)
                    self.terminated[actor] = now
            elif now - self.terminated[actor] > KILL_SECONDS:
                self.workers.kill(actor)

    def _check_workers_parent(self) -> None:
        """Stop the run if the workers' fork server is gone (``ProcessWorkers.lost``)."""
        lost = self.workers.lost()
        if lost is not None and self.failure is None:
            self.failure = f"{lost}; the actor-learners were stopped (--resume continues)"

    def _on_continue(self, _signum, _frame) -> None:
        self.continued = True

    def _clock(self) -> float:
        """``time.monotonic()`` for the clocks that judge the workers (their progress, their
        stop's grace), which it first moves on by the time this process spent stopped, if a
        SIGCONT says it was: a run stopped as a whole (Ctrl-Z, SIGSTOP to its group) and
        continued later had no one running to make progress or to stop, and stalled no one.
        Called every pass of the supervisor's loop, so the time since the last call is the
        pause (and at most one pass more)."""
        now = time.monotonic()
        if self.continued:
            self.continued = False
            gap = now - self.last_clock
            self.last_progress = {actor: (seen, since + gap)
                                  for actor, (seen, since) in self.last_progress.items()}
            self.terminated = {actor: since + gap for actor, since in self.terminated.items()}
            if self.stop_requested is not None:
                self.stop_requested += gap
        self.last_clock = now
        return now

    def _check_stalls(self, running: set[int]) -> None:
        """A ready worker whose step count has not moved for --stall_timeout seconds is killed
        (and then restarted, or reported, like any dead worker); a pause of the whole run does
        not count (:meth:`_clock`)."""
        now = self._clock()
        for actor in running:
            steps = self.steps[actor]
            seen, since = self.last_progress[actor]
            if not self.record.is_ready(actor) or steps != seen:
                self.last_progress[actor] = (steps, now)
            elif now - since > self.config.stall_timeout and self.workers.alive(actor):
                if actor not in self.stall_killed:   # one warning; the kill until it is gone
                    log(f"warning: actor-learner {actor} made no progress for "
                        f"{now - since:.0f} s (--stall_timeout); treating it as dead")
                    self.stall_killed.add(actor)
                self.workers.kill(actor)

    def _check_parameters(self) -> None:
        """Workers never apply non-finite gradients; if the shared parameters still become
        non-finite (overflow), training cannot recover: stop with an error."""
        if not self.corrupted and not self.store.finite():
            self.corrupted = True
            self.failure = ("the shared parameters became non-finite (NaN or inf); lower the "
                            "learning rate (-lr) or clip gradients (--clip_norm)")

    def _drain(self) -> None:
        """Handle every message the workers have sent so far."""
        wrote = False
        record = self.record
        for actor, message in self.workers.receive():
            kind = message[0]
            if kind == "episode":
                _, _, env, step, wall, ret, length = message
                record.episode(actor, env, step, wall, ret, length)
                wrote = True
            elif kind == "ready":
                record.ready(actor, self.steps.total())
            elif kind == "warning":
                log(f"warning: actor-learner {actor}: {message[2]}", file=sys.stderr)
            elif kind == "info":
                log(f"actor-learner {actor} {message[2]}")
            elif kind == "timing":
                self.timings[actor] = message[2]
            elif kind == "error":
                log(f"actor-learner {actor} failed:\n{message[2]}", file=sys.stderr)
        if wrote:
            record.flush()

    def _stop_workers(self) -> None:
        """No worker survives this call."""
        self.workers.stop_all()


def _process_start(pid: int | None) -> bytes | None:
    """When process ``pid`` started (field 22 of ``/proc/<pid>/stat``), which tells it from a
    later process given the same pid; None if there is no such process, or it has ended (a
    zombie). Without ``/proc``, b"" for any process a signal reaches."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except FileNotFoundError:
        return None
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return b""
    return None if fields[0] in (b"Z", b"X") else fields[19]


def _child_end(pid: int) -> str | None:
    """How child process ``pid`` ended, or None while it runs; it is left unreaped (its owner,
    here multiprocessing, reaps it)."""
    try:
        end = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return "ended"
    if end is None:
        return None
    if end.si_code == os.CLD_EXITED:
        return f"exited with code {end.si_status}"
    try:
        name = signal.Signals(end.si_status).name
    except ValueError:   # a real-time signal has no name
        name = f"signal {end.si_status}"
    return f"was killed by {name}" + (
        " (the out-of-memory killer, or a kill from outside)" if
        end.si_status == signal.SIGKILL else "")


def _reason(err: OSError) -> str:
    return err.strerror or str(err) or type(err).__name__


def layout_record(layout: Layout) -> list[list]:
    """The layout as checkpoints and compatibility checks hold it: [name, shape] per tensor."""
    return [[spec.name, list(spec.shape)] for spec in layout.specs]


class Training:
    """One training run, put together: the store, the record, the checkpointer, the
    supervisor. ``run()`` returns the process exit code."""

    def __init__(self, config: Config, env_spec: EnvSpec,
                 resume: checkpoint.Checkpoint | None = None):
        self.config, self.env_spec, self.resume = config, env_spec, resume
        self.layout = make_layout(config.alg_type, config.arch, env_spec.observation_shape,
                                  env_spec.num_actions, config.lstm, env_spec.continuous)
        self.resumes = 0 if resume is None else int(resume.meta.get("resumes", 0)) + 1
        count = config.num_actor_learners
        # Drawn here, not in the workers, so that they are recorded with the run and reproducible.
        # A resumed run keeps each actor-learner's saved rate; extra actor-learners draw theirs.
        drawn = (sample_final_epsilons(np.random.default_rng([config.seed, 1 + self.resumes]),
                                       count) if config.value_based else [1.0] * count)
        saved = [] if resume is None else [float(e) for e in resume.arrays["final_epsilons"]]
        self.final_epsilons = (saved + drawn[len(saved):])[:count]
        self.supervisor: Supervisor | None = None

    def _announce(self, record: RunRecord) -> None:
        config, resume = self.config, self.resume
        log(f"run directory: {record.run_dir}")
        if resume is not None:
            log(f"resumed from {resume.path} at step {resume.step:,}"
                + (" (same run directory)" if record.continued else ""))
        log(f"checkpoints: {os.path.abspath(config.checkpoint_dir)} (every "
            f"{config.checkpoint_interval:,} steps, keeping the last {config.keep_checkpoints})")
        log(f"{config.alg_type} on {config.game} ({config.env}): {config.num_actor_learners} "
            f"actor-learners, {self.env_spec.num_actions} actions, "
            f"{self.layout.size:,} parameters, lr {config.initial_lr:.3g}, seed {config.seed}")
        if config.value_based:
            log("final epsilons per actor-learner: "
                + ", ".join(f"{i}: {e:g}" for i, e in enumerate(self.final_epsilons)))

    def run(self) -> int:
        """Train; returns the exit code. An unexpected error (a bug, a disk that fails under
        the run) still stops the actor-learners and removes the shared memory (``finally``
        blocks below); its traceback goes to ``error.log`` in the run folder and the console
        gets one line (the whole traceback too with A3C_DEBUG=1)."""
        config = self.config
        claim_folder(config.checkpoint_dir, "--checkpoint_dir")
        if config.cluster == "ray":   # joined (or started) before anything is written
            from .cluster import RayCluster
            cluster = RayCluster(config)
        else:
            cluster = contextlib.nullcontext()
        with cluster:
            resume = self.resume
            record = RunRecord(config, self.env_spec.frames_per_step,
                               None if resume is None else resume.meta,
                               0 if resume is None else resume.step,
                               None if resume is None else resume.path)
            try:
                return self._run(record)
            except (Exception, KeyboardInterrupt) as err:
                if isinstance(err, (KeyboardInterrupt, UserError)) or \
                        os.environ.get("A3C_DEBUG"):
                    raise
                where = write_error_log(record.run_dir)
                last = None if self.supervisor is None else \
                    self.supervisor.checkpointer.last_path
                log(f"error: {type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
                    + "; training stopped"
                    + (f"; the last good checkpoint is {last}" if last else "")
                    + f" (details: {where}; A3C_DEBUG=1 shows them here)", file=sys.stderr)
                return 1

    def _run(self, record: RunRecord) -> int:
        config, env_spec, resume = self.config, self.env_spec, self.resume
        extra = {"final_epsilons": self.final_epsilons} if config.value_based else {}
        resumed = None if resume is None else {
            "checkpoint": os.path.abspath(resume.path), "global_step": resume.step,
            "resumes": self.resumes}
        record.open(dict(config.to_dict(), observation_shape=list(env_spec.observation_shape),
                         num_actions=env_spec.num_actions, num_parameters=self.layout.size,
                         **extra), resumed)
        self._announce(record)
        initial = None if resume is not None else \
            self.layout.initial_values(np.random.default_rng(config.seed))
        if config.cluster == "ray":
            from .cluster import RayWorkers, start_server
            store = start_server(config, self.layout.size)
            workers = functools.partial(RayWorkers, store.server, config.num_actor_learners)
        else:
            ctx = mp.get_context("forkserver")
            _start_resource_tracker()
            try:
                server = start_forkserver(ctx, onednn_kernels(config, env_spec))
                store = SharedParameterStore(config, self.layout.size, ctx)
            except BaseException:
                stop_forkserver()
                raise
            workers = functools.partial(ProcessWorkers, store.steps, ctx, server)
        try:
            if resume is None:
                store.initialise(initial)
            else:
                store.restore(resume.arrays)
            return self._supervise(record, store, workers())
        finally:
            record.close()
            try:
                if config.cluster != "ray":
                    stop_forkserver()
            finally:
                store.close()

    def _supervise(self, record: RunRecord, store, workers) -> int:
        config, env_spec = self.config, self.env_spec
        meta = {"config": config.to_dict(), "layout": layout_record(self.layout),
                "observation_shape": list(env_spec.observation_shape),
                "num_actions": env_spec.num_actions, "versions": package_versions(),
                "run_dir": record.run_dir, "run_id": record.run_id, "resumes": self.resumes}
        checkpointer = checkpoint.Checkpointer(config, meta, workers.steps.total())
        self.supervisor = Supervisor(config, env_spec, self.layout, store, record, checkpointer,
                                     workers, self.final_epsilons, self.resumes)
        return self.supervisor.run()


def write_error_log(run_dir: str) -> str:
    """The traceback being handled, appended to ``<run_dir>/error.log`` (or, if that cannot be
    written, a file in the system's temporary folder); returns where it went."""
    import tempfile
    import traceback
    text = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{traceback.format_exc()}"
    for path in (os.path.join(run_dir, "error.log"),
                 os.path.join(tempfile.gettempdir(), f"a3c-error-{os.getpid()}.log")):
        try:
            with open(path, "a") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return "nowhere: no folder could be written"


def start_forkserver(ctx, onednn: bool) -> int:
    """Start the fork server that forks the actor-learners, with TensorFlow loaded in it
    (``preload.py``) and the run's kernels (:func:`actor_learner.onednn_kernels`, unless the user
    set ``TF_ENABLE_ONEDNN_OPTS``), and with SIGINT and SIGHUP ignored, as its children are.

    The server is a fresh interpreter (never a fork of this one), which has loaded TensorFlow
    but started no runtime and no thread pool when it forks: each actor-learner configures its
    own. Its ``sys.path`` does not come from this process, hence ``PYTHONPATH`` for the
    package. It lives until :func:`stop_forkserver`. Returns its pid.
    """
    from multiprocessing import forkserver
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", ONEDNN)}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (root, saved["PYTHONPATH"])))
    if saved[ONEDNN] is None:
        os.environ[ONEDNN] = "1" if onednn else "0"
    handlers = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGHUP)}
    try:
        ctx.set_forkserver_preload([f"{__package__}.preload"])
        forkserver.ensure_running()
        return forkserver._forkserver._forkserver_pid
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stop_forkserver() -> None:
    """Stop the fork server, so that a run leaves no process behind and a later run in this
    process gets a server with its own settings. It is killed: the actor-learners are gone by
    now, and it holds nothing that needs a clean exit, while waiting for it to leave by itself
    could wait forever (it leaves once every holder of its "alive" pipe has closed it, anything a
    worker started included). multiprocessing offers no public call for this: ``_stop``, which
    then closes this process's end and reaps it, is what its own tests use."""
    from multiprocessing import forkserver
    server = forkserver._forkserver
    if server._forkserver_pid is not None:   # our child, not yet reaped: the pid is its own
        with contextlib.suppress(ProcessLookupError):
            os.kill(server._forkserver_pid, signal.SIGKILL)
    server._stop()


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (which unlinks the shared memory if this process
    is killed) with SIGHUP ignored: a closed terminal signals the whole process group, and the
    tracker, which ignores only SIGINT and SIGTERM by itself, must outlive the stop."""
    from multiprocessing import resource_tracker
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        resource_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


def train(config: Config, env_spec: EnvSpec, resume: checkpoint.Checkpoint | None = None) -> int:
    """Train with ``config``, from scratch or from ``resume``; returns the process exit code."""
    return Training(config, env_spec, resume).run()
