"""Stop signals that arrive while the program starts: recorded, then acted upon by whoever
stops the work once it is ready (the supervisor of a training, an evaluation).

A Ctrl-C raised as ``KeyboardInterrupt`` in the middle of an import (argument checks, Gymnasium,
TensorFlow) leaves modules half made: a traceback, and once a segmentation fault of TensorFlow
as the interpreter ended. Deferred, the same Ctrl-C stops the run at its first safe point with
the usual exit code. A second signal is not deferred: it interrupts at once, so that a start-up
that hangs can still be stopped. Once the work has taken the pending signal (:func:`take`),
nothing more is deferred: a signal that reaches these handlers afterwards (while a finished
run closes its backend) interrupts at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Asks a training for a checkpoint now, training going on (a batch scheduler's warning ahead of
# its time limit). Kept while the program starts; an evaluation has nothing to save: ignored.
CHECKPOINT_SIGNAL = signal.SIGUSR1

_pending: int | None = None
_taken = False   # the work has started: nothing is deferred any more
_checkpoint_asked = False
_finishing = False  # the work is done (finishing): a first stop signal no longer interrupts
_exit_signals = 0   # stop signals received once the work was done


class Interrupted(KeyboardInterrupt):
    """A second stop signal during start-up, or one after it."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _record(signum, _frame) -> None:
    global _pending
    if _finishing and _first_after_the_work(signum):
        return
    if _pending is not None or _taken:
        raise Interrupted(signum)
    _pending = signum


def _ask_checkpoint(_signum, _frame) -> None:
    global _checkpoint_asked
    _checkpoint_asked = True


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: the first stop signal is recorded (:func:`pending`), a second one raises
    :class:`Interrupted`; CHECKPOINT_SIGNAL is recorded (:func:`take_checkpoint_request`). The
    handlers found are restored on the way out."""
    global _pending, _taken, _checkpoint_asked, _finishing, _exit_signals
    _pending, _taken, _checkpoint_asked, _finishing, _exit_signals = None, False, False, False, 0
    previous = {s: signal.signal(s, _record) for s in STOP_SIGNALS}
    previous[CHECKPOINT_SIGNAL] = signal.signal(CHECKPOINT_SIGNAL, _ask_checkpoint)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def pending() -> int | None:
    """The stop signal received while deferred and not yet acted upon, or None."""
    return _pending


def take() -> int | None:
    """The stop signal received while deferred, or None: whoever calls this acts upon it, and
    from now on a signal is not deferred."""
    global _pending, _taken
    signum, _pending, _taken = _pending, None, True
    return signum


def started() -> bool:
    """Whether the work took over (:func:`take`)."""
    return _taken


def take_checkpoint_request() -> bool:
    """Whether CHECKPOINT_SIGNAL came while the program started (and not yet acted upon)."""
    global _checkpoint_asked
    asked, _checkpoint_asked = _checkpoint_asked, False
    return asked


def finishing() -> None:
    """The work is done and its results are written (a training's "done:"): from now on a
    first stop signal is said and otherwise ignored, so that the run closes its backend and its
    shared memory as usual and the exit code stays the work's; a second one interrupts at once
    (:class:`Interrupted`)."""
    global _finishing
    _finishing = True


def _first_after_the_work(signum: int) -> bool:
    """Count a stop signal that came once the work was done; True, and said, for the first."""
    global _exit_signals
    _exit_signals += 1
    if _exit_signals > 1:
        return False
    with contextlib.suppress(OSError):   # unbuffered: a closed terminal fails this write alone
        os.write(2, f"{signal.Signals(signum).name}: the work is done, exiting (send it again "
                    "to end at once)\n".encode())
    return True


def hold_while_exiting(code: int) -> None:
    """From here to the end of the process (the interpreter's teardown, where multiprocessing
    removes its ``/tmp/pymp-*`` folder), after work that ended with exit code ``code``: a
    first stop signal is said and otherwise ignored, and the exit code stays; a second one (the
    first, if the work was itself stopped by a signal: ``code`` above 128) ends the process at
    once, by that signal. Before, a SIGTERM just after a run's "done:" killed it there and could
    leave that folder behind."""
    global _exit_signals
    if code > 128:
        _exit_signals = max(_exit_signals, 1)

    def _exiting(signum, _frame) -> None:
        if _first_after_the_work(signum):
            return
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for s in STOP_SIGNALS:
        signal.signal(s, _exiting)
