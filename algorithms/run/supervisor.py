"""The supervisor: starts, watches, restarts and stops the actor-learners of one run, whatever
backend runs them (``backend.Workers``), and writes the checkpoints.

Each pass of its loop (:meth:`Supervisor._supervise`) is a sequence of named steps: wait for a
message or an end, ``_drain`` the messages to their handlers, ``_check_backend``, ``_reap`` the
learners that ended (restarting them), ``_check_stalls``, ``_check_parameters`` (non-finite
parameters, every few seconds), ``_check_progress`` (``--stop_return``, due checkpoints), and
``_finish`` once the budget is spent or a stop was asked for.

Supervision: a worker that dies (exception, SIGKILL, out of memory) or stalls (no step for
``--stall_timeout`` seconds) is noticed through its end or its step counter, its traceback is
shown, and it is restarted with the same actor id and exploration rate, up to
``--max_restarts`` times in all; past that training stops (exit code 1), as it does if the
backend itself is lost (the fork server of the local backend, ``Workers.lost``).

Signals: the first SIGINT, SIGTERM, SIGHUP (a closed terminal, a dropped SSH session) or SIGQUIT
(Ctrl-\\) asks the workers to stop at their next segment, then a final checkpoint is written
(exit code 130, 143, 129, 131); a second one stops them at once. SIGUSR1 (a batch scheduler's
warning ahead of its time limit) writes a checkpoint at once, and training goes on. Workers
ignore SIGINT, SIGHUP, SIGQUIT and SIGUSR1, which a terminal or a scheduler sends to the whole
process group: the supervisor alone decides how they stop.
"""
from __future__ import annotations

import os
import signal
import sys
import tempfile
import time

import numpy as np

from .. import checkpoint, interrupts
from ..actor_learner import WorkerSpec
from ..config import Config
from ..environments import EnvSpec
from ..messages import Alert, Episode, Error, Evaluation, Fault, Info, Ready, Timing
from ..networks import Layout
from ..record import PROGRESS_SECONDS, RunRecord, log
from .backend import (DEADLINES, STOP_SIGNALS, BackendLost, Deadlines, ParameterStore,
                      Workers)
from .procs import reason


TESTER_RESTARTS = 3
WRITE_GRACE = 120.0   # seconds the checkpoint in flight gets when the loop ends by an error


class Supervisor:
    """Starts, watches, restarts and stops the actor-learners; ``run()`` returns the exit code."""

    def __init__(self, config: Config, env_spec: EnvSpec, layout: Layout, store: ParameterStore,
                 record: RunRecord, checkpointer: checkpoint.Checkpointer, workers: Workers,
                 final_epsilons: list[float], resumes: int, deadlines: Deadlines = DEADLINES):
        self.config, self.env_spec, self.layout = config, env_spec, layout
        self.store, self.record, self.checkpointer = store, record, checkpointer
        self.final_epsilons, self.resumes = final_epsilons, resumes
        self.workers, self.deadlines = workers, deadlines
        self.steps = workers.steps
        self.started: set[int] = set()
        self.running: set[int] = set()
        self.restarts = 0
        self.incarnations: dict[int, int] = {}
        self.last_progress: dict[int, tuple[int | None, float]] = {}
        self.continued = False   # a SIGCONT arrived since the last _clock()
        self.last_clock = time.monotonic()
        self.signal_count = 0
        self.signal_number: int | None = None
        self.checkpoint_asked = False   # SIGUSR1: a checkpoint now (once a step is made)
        self.first_step = 0
        self.timings: dict[int, dict[str, float]] = {}
        self.failure: str | None = None
        self.corrupted = False   # the shared parameters became non-finite
        self.store_lost = False  # the store no longer answers (a lost Ray cluster)
        self.unknown: set[type] = set()   # message types without a handler, warned of once
        self.stop_requested: float | None = None   # when the stop was asked for
        self.terminated: dict[int, float] = {}   # actor: when it was sent SIGTERM
        self.stall_killed: set[int] = set()   # actors killed as stalled, not yet restarted
        self.writing: checkpoint.BackgroundWrite | None = None   # a checkpoint being written
        self.tester = config.num_actor_learners if config.eval_interval else None  # its id
        self.tester_restarts = 0
        self.start_errors: dict[int, str] = {}   # actor: last line of its failure while starting
        self.seen_start_errors: set[str] = set()   # such lines of earlier incarnations
        self.handlers = {Episode: self._on_episode, Ready: self._on_ready,
                         Alert: self._on_alert, Info: self._on_info, Timing: self._on_timing,
                         Error: self._on_error, Fault: self._on_fault,
                         Evaluation: self._on_evaluation}

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

    def _on_checkpoint_signal(self, _signum, _frame) -> None:
        self.checkpoint_asked = True

    def _on_continue(self, _signum, _frame) -> None:
        self.continued = True

    @property
    def stopping(self) -> bool:
        return (self.failure is not None or self.signal_count > 0
                or self.record.solved is not None)

    @property
    def finishing(self) -> bool:
        """Past the budget, or stopping: every worker is finishing. One that is slow to close
        is not stalled, and one that fails while closing has done its work."""
        return self.stopping or self.steps.total() >= self.config.max_global_steps

    # ------------------------------------------------------------------ run
    def run(self) -> int:
        """Supervise until the budget, a stop or a failure; returns the exit code."""
        previous = {s: signal.getsignal(s)
                    for s in (*STOP_SIGNALS, signal.SIGCONT, interrupts.CHECKPOINT_SIGNAL)}
        signal.signal(signal.SIGCONT, self._on_continue)
        signal.signal(interrupts.CHECKPOINT_SIGNAL, self._on_checkpoint_signal)
        if interrupts.take_checkpoint_request():   # received while the run was starting
            self.checkpoint_asked = True
        try:
            code = self._supervise()
            if code == 0:   # done: a stop signal now only hastens the end (interrupts)
                interrupts.finishing()
            return code
        finally:
            self.workers.stop_all()   # no worker survives this
            self._end_write()
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _supervise(self) -> int:
        # Workers never see a Ctrl-C or a closed terminal (sent to the whole process group):
        # the supervisor alone decides how they stop, from the first moment.
        for s in STOP_SIGNALS:
            signal.signal(s, self._on_signal)
        if (signum := interrupts.take()) is not None:   # received while the run was starting
            self._on_signal(signum, None)
        self.first_step = self.steps.total()   # this invocation's first (a resume's)
        self._start_all()
        next_check = time.monotonic() + PROGRESS_SECONDS
        while self.running:
            self.workers.wait(self.running, timeout=self.deadlines.poll)
            self._drain()
            self._check_backend()
            finishing = self.finishing
            self._reap(finishing)
            if not finishing:
                self._check_stalls()
            if time.monotonic() >= next_check:
                self._check_parameters()
                next_check = time.monotonic() + PROGRESS_SECONDS
            self._check_progress()
            if finishing:
                self._finish()
            self.record.show(self.steps.total())
        return self._close()

    def _start_all(self) -> None:
        count = self.config.num_actor_learners
        if self.stopping:   # a signal while the run was starting: no learner is started
            self.record.start_progress(self.first_step)
            return
        for actor in range(count):
            if self.failure is None:
                self._start_worker(actor, 0)
        if self.tester is not None and self.failure is None:
            self._start_worker(self.tester, 0)
        self.record.start_progress(self.first_step)
        if self.failure is None:
            log(f"started {count} {self.workers.description}")

    def _start_worker(self, actor: int, incarnation: int) -> None:
        """Start (or restart) one actor-learner."""
        config = self.config
        # A restarted learner gets a fresh environment (another seed), the same actor id and
        # the same exploration rate.
        seed = config.seed + actor + 10_007 * incarnation + 7_919 * self.resumes
        if actor == self.tester:   # the test process: games of its own, no exploration
            spec = WorkerSpec(actor_id=actor, seed=seed + 1_000_003, config=config,
                              env_spec=self.env_spec, layout=self.layout,
                              store=self.store.handle, run_dir=self.record.run_dir,
                              incarnation=incarnation, role="tester",
                              meta=self.checkpointer.meta,
                              final_epsilons=tuple(self.final_epsilons),
                              trainer_pid=os.getpid())
        else:
            spec = WorkerSpec(actor_id=actor, seed=seed, config=config, env_spec=self.env_spec,
                              layout=self.layout, store=self.store.handle,
                              run_dir=self.record.run_dir,
                              final_epsilon=self.final_epsilons[actor], incarnation=incarnation,
                              trainer_pid=os.getpid())
        try:
            self.workers.start(spec)
        except BackendLost as lost:
            if self.failure is None:
                self.failure = f"{lost}; the actor-learners were stopped (--resume continues)"
            return
        self.started.add(actor)
        self.running.add(actor)
        self.stall_killed.discard(actor)
        self.incarnations[actor] = incarnation
        self.last_progress[actor] = (None, time.monotonic())

    # ------------------------------------------------------------------ the loop's steps
    def _reap(self, finishing: bool) -> None:
        """Learners that ended: a clean end leaves the run; a failure is restarted, up to
        --max_restarts in all, unless the run is finishing or the backend is lost."""
        config = self.config
        for actor in [a for a in self.running if not self.workers.alive(a)]:
            why = self.workers.exit_reason(actor)
            self._drain()
            self.running.discard(actor)
            self._check_backend()   # no restart once the backend is gone
            if why is None or finishing or self.stopping:
                continue
            if actor == self.tester:
                self._restart_tester(why)
                continue
            recurring = self._recurring_start_failure(actor)
            if recurring is not None:
                self.failure = (f"{why}: it failed while starting as a learner did before "
                                f"({recurring}); a failure that recurs is not retried")
            elif self.restarts < config.max_restarts:
                self.restarts += 1
                log(f"warning: {why}; restarting it ({self.restarts} of --max_restarts "
                    f"{config.max_restarts})")
                self.record.not_ready(actor)
                self._start_worker(actor, self.incarnations[actor] + 1)
            elif self.failure is None:
                self.failure = (f"{why}, and --max_restarts {config.max_restarts} "
                                "restarts are used up")

    def _restart_tester(self, why: str) -> None:
        """The test process failed: restarted up to TESTER_RESTARTS times, never counted in
        --max_restarts; past that the run goes on without it. It never stops training."""
        if self.tester_restarts < TESTER_RESTARTS:
            self.tester_restarts += 1
            log(f"warning: the test process failed ({why}); restarting it "
                f"({self.tester_restarts} of {TESTER_RESTARTS}); training goes on",
                file=sys.stderr)
            self._start_worker(self.tester, self.incarnations[self.tester] + 1)
        else:
            log(f"warning: the test process failed again ({why}); training goes on without "
                "it", file=sys.stderr)

    def _recurring_start_failure(self, actor: int) -> str | None:
        """The error of a learner that failed before it became ready, if an earlier learner
        failed the same way while starting (too little memory for TensorFlow, say): restarting
        it again would only fail again."""
        text = self.start_errors.pop(actor, None)
        if text is None:
            return None
        if text in self.seen_start_errors:
            return text
        self.seen_start_errors.add(text)
        return None

    def _check_backend(self) -> None:
        """Stop the run if the backend itself is gone (``Workers.lost``)."""
        lost = self.workers.lost()
        if lost is not None:
            self._backend_lost(lost)

    def _backend_lost(self, lost: str) -> None:
        if self.failure is None:
            self.failure = f"{lost}; the actor-learners were stopped (--resume continues)"

    def _check_stalls(self) -> None:
        """A ready worker whose step count has not moved for --stall_timeout seconds is killed
        (and then restarted, or reported, like any dead worker), and so is one that has not
        become ready within --stall_timeout plus ``deadlines.startup`` seconds of its start (an
        environment whose reset hangs, say); a pause of the whole run does not count
        (:meth:`_clock`)."""
        now = self._clock()
        for actor in self.running - {self.tester}:
            steps = self.steps[actor]
            seen, since = self.last_progress[actor]
            ready = self.record.is_ready(actor)
            if ready and steps != seen:
                self.last_progress[actor] = (steps, now)
                continue
            limit = self.config.stall_timeout + (0.0 if ready else self.deadlines.startup)
            if now - since > limit and self.workers.alive(actor):
                if actor not in self.stall_killed:   # one warning; the kill until it is gone
                    what = (f"made no progress for {now - since:.0f} s (--stall_timeout)"
                            if ready else f"did not start within {now - since:.0f} s "
                            f"(--stall_timeout, and {self.deadlines.startup:.0f} s to start)")
                    log(f"warning: actor-learner {actor} {what}; treating it as dead")
                    self.stall_killed.add(actor)
                self.workers.kill(actor)

    def _check_progress(self) -> None:
        """``--stop_return``, and a checkpoint when one is due."""
        if not self.stopping:
            self.record.check_solved(self.steps.total())
        if self.writing is not None and self.writing.done:
            self._report_write(self.writing)
        if self.stopping or self.writing is not None:
            return   # a stop writes the final checkpoint; an asked one waits for the write
        if self.checkpoint_asked and self.steps.total() > self.first_step:
            # asked before the first step (while the learners start): when there is one to save
            self.checkpoint_asked = False
            log(f"{signal.Signals(interrupts.CHECKPOINT_SIGNAL).name}: writing a checkpoint at "
                f"step {self.steps.total():,}; training goes on")
            self._save_checkpoint()
        elif self.checkpointer.due(self.steps.total()):
            self._save_checkpoint()

    def _check_parameters(self) -> None:
        """Workers never apply non-finite gradients; if the shared parameters still become
        non-finite (overflow), training cannot recover: stop with an error."""
        if self.store_lost:
            return
        try:
            finite = self.corrupted or self.store.finite()
        except BackendLost as lost:
            self.store_lost = True   # no further call to it: each could wait for long
            self._backend_lost(str(lost))
            return
        if not finite:
            self.corrupted = True
            self.failure = ("the shared parameters became non-finite (NaN or inf); lower the "
                            "learning rate (-lr) or clip gradients (--clip_norm)")

    def _finish(self) -> None:
        """Workers get ``deadlines.join`` seconds after a stop request, or ``deadlines.finish``
        after the end of the budget, to finish their segment and close; one that is hung past
        that, or still starting, is terminated, and killed ``deadlines.kill`` seconds later if
        it is still there (a stopped process, SIGSTOP or a debugger, holds SIGTERM pending),
        so a stop never waits forever."""
        self.workers.stop.set()
        deadlines = self.deadlines
        grace = deadlines.join if self.stopping else deadlines.finish
        now = self._clock()
        if self.stop_requested is None:
            self.stop_requested = now
        for actor in self.running:
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
            elif now - self.terminated[actor] > deadlines.kill:
                self.workers.kill(actor)

    def _close(self) -> int:
        """Every learner has ended: the last messages, the final checkpoint, the exit code."""
        record = self.record
        if self.writing is not None:   # the last interval's checkpoint ends first
            self.writing.wait()
            self._report_write(self.writing)
        self._drain()
        self._check_parameters()
        self._flush_record()
        step = self.steps.total()
        record.show(step, force=True)
        before = self.checkpointer.last_path
        if step == self.first_step:
            log("no step was taken: no checkpoint written")
        elif not self.corrupted:
            self._save_checkpoint(final=True)
        elif self.checkpointer.last_path:
            log(f"the last good checkpoint is {self.checkpointer.last_path}")
        last = self.checkpointer.last_path
        if self.failure is not None and last is not None and last == before:
            self.failure += f"; the last good checkpoint is {last}"   # none written now

        if self.signal_number is not None:
            log(f"stopped by {signal.Signals(self.signal_number).name} at step {step:,}")
            return 128 + self.signal_number
        if self.failure is not None:
            log(f"error: {self.failure}; training stopped at step {step:,}")
            return 1
        log(f"done: {step:,} steps; results in {record.run_dir}")
        return 0

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

    # ------------------------------------------------------------------ messages
    def _drain(self) -> None:
        """Hand every message the workers have sent so far to its handler."""
        wrote = False
        for message in self.workers.receive():
            handler = self.handlers.get(type(message))
            if handler is not None:
                wrote |= bool(handler(message))
            elif type(message) not in self.unknown:   # a learner of another version, say
                self.unknown.add(type(message))
                log(f"warning: a message of an unknown kind ({type(message).__name__}) was "
                    "ignored", file=sys.stderr)
        if wrote:
            self._flush_record()

    def _flush_record(self) -> None:
        """Write the new rows; the checkpoints name the run folder the rows are in now (one
        replaced under the run by a file moves them: ``RunRecord._recreate``)."""
        self.record.flush()
        self.checkpointer.meta["run_dir"] = self.record.run_dir

    def _on_episode(self, message: Episode) -> bool:
        self.record.episode(message.actor, message.env, message.step, message.wall,
                            message.score, message.length)
        return True   # episodes.csv has a new row

    def _on_ready(self, message: Ready) -> None:
        self.record.ready(message.actor, self.steps.total())

    def _on_alert(self, message: Alert) -> None:
        log(f"warning: actor-learner {message.actor}: {message.text}", file=sys.stderr)

    def _on_info(self, message: Info) -> None:
        log(f"actor-learner {message.actor} {message.text}")

    def _on_timing(self, message: Timing) -> None:
        self.timings[message.actor] = message.totals

    def _on_error(self, message: Error) -> None:
        lines = message.traceback.strip().splitlines()
        last = lines[-1] if lines else "no traceback"
        if not self.record.is_ready(message.actor):
            if last in self.seen_start_errors:   # its traceback was shown already
                log(f"actor-learner {message.actor} failed while starting, as before: {last}",
                    file=sys.stderr)
                self.start_errors[message.actor] = last
                return
            self.start_errors[message.actor] = last
        log(f"actor-learner {message.actor} failed:\n{message.traceback}", file=sys.stderr)

    def _on_evaluation(self, message: Evaluation) -> None:
        self.record.evaluation(message.step, message.wall, message.score, message.length,
                               message.best)

    def _on_fault(self, message: Fault) -> None:
        if message.actor == self.tester:   # the learners meet it too, or it is the tester's
            log(f"warning: the test process: {message.text}", file=sys.stderr)
            return
        if self.failure is None:   # one that would recur: not restarted, the run stops
            self.failure = f"actor-learner {message.actor}: {message.text}"

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, final: bool = False) -> None:
        """Snapshot the store (its step counters included) into a checkpoint (the supervisor
        is the only writer); never parameters that are not finite: the last good checkpoint
        stays. The snapshot is taken here; the file is written by a thread of its own
        (:class:`checkpoint.BackgroundWrite`), one at a time, so that a slow disk never holds
        up the loop. The final one is written here, after the one in flight (``_close``).

        A write that fails (a full disk, a folder made read-only or removed) never ends
        training: it is reported on one line and tried again at the next interval. A final
        checkpoint that cannot be written goes to a fallback folder, and the line says where.
        """
        self._check_parameters()
        if self.corrupted:
            return
        if self.store_lost:
            return
        try:
            arrays = self.store.state()
        except BackendLost as lost:
            last = self.checkpointer.last_path
            log(f"warning: no checkpoint at step {self.steps.total():,}: {lost}"
                + (f"; the last good checkpoint is {last}" if last else ""), file=sys.stderr)
            self.store_lost = True
            self._backend_lost(str(lost))
            return
        arrays["final_epsilons"] = np.array(self.final_epsilons, np.float64)
        step = int(arrays["steps"].sum())
        if not final:
            self.writing = checkpoint.BackgroundWrite(self.checkpointer, step, arrays)
            return
        start = time.monotonic()
        try:
            path = self.checkpointer.save(step, arrays)
        except OSError as err:
            path = self._save_fallback(step, arrays, os.path.abspath(self.checkpointer.directory),
                                       err)
            if path is None:
                return
        self._show_notice()
        log(f"final checkpoint: {os.path.abspath(path)} ({time.monotonic() - start:.2f} s)")

    def _report_write(self, write: checkpoint.BackgroundWrite) -> None:
        """The outcome of a checkpoint written in the background, on one line."""
        self.writing = None
        self._show_notice()
        if write.error is None:
            if not self.config.quiet:
                log(f"checkpoint: {os.path.abspath(write.path)} ({write.seconds:.2f} s)")
            return
        if not isinstance(write.error, OSError):
            raise write.error   # a defect, not the disk: as loud as in the loop itself
        where = os.path.abspath(self.checkpointer.directory)
        log(f"warning: the checkpoint at step {write.step:,} could not be written to {where} "
            f"({reason(write.error)}); training goes on, and the next interval tries again",
            file=sys.stderr)

    def _end_write(self) -> None:
        """The loop ended by an error: the checkpoint in flight still lands whole (or is
        reported), so that the last good checkpoint named afterwards is the newest."""
        write = self.writing
        if write is None:
            return
        if not write.wait(WRITE_GRACE):
            log(f"warning: the checkpoint at step {write.step:,} was still being written after "
                f"{WRITE_GRACE:.0f} s; it is left unfinished", file=sys.stderr)
            return
        try:
            self._report_write(write)
        except Exception as err:   # noqa: BLE001 - the loop's own error is the one to show
            log(f"warning: the checkpoint at step {write.step:,} failed ({err!r})",
                file=sys.stderr)

    def _show_notice(self) -> None:
        if self.checkpointer.notice:
            log(f"warning: {self.checkpointer.notice}", file=sys.stderr)
            self.checkpointer.notice = None

    def _save_fallback(self, step: int, arrays: dict, where: str, err: OSError) -> str | None:
        """The final checkpoint, when --checkpoint_dir refuses it: into the run folder, else
        the system's temporary folder. Returns its path, or None if nowhere took it."""
        log(f"warning: the final checkpoint could not be written to {where} ({reason(err)})",
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
