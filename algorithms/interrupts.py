"""Stop signals that arrive while the program starts: recorded, then acted upon by whoever
stops the work once it is ready (the supervisor of a training, an evaluation).

A Ctrl-C raised as ``KeyboardInterrupt`` in the middle of an import (argument checks, Gymnasium,
TensorFlow) leaves modules half made: a traceback, and once a segmentation fault of TensorFlow
as the interpreter ended. Deferred, the same Ctrl-C stops the run at its first safe point with
the usual exit code. A second signal is not deferred: it interrupts at once, so that a start-up
that hangs can still be stopped.
"""
from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

_pending: int | None = None


class Interrupted(KeyboardInterrupt):
    """A second stop signal during start-up."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _record(signum, _frame) -> None:
    global _pending
    if _pending is not None:
        raise Interrupted(signum)
    _pending = signum


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within: the first stop signal is recorded (:func:`pending`), a second one raises
    :class:`Interrupted`. The handlers found are restored on the way out."""
    global _pending
    _pending = None
    previous = {s: signal.signal(s, _record) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def pending() -> int | None:
    """The stop signal received while deferred and not yet acted upon, or None."""
    return _pending


def take() -> int | None:
    """The pending stop signal, now being acted upon (it is no longer pending)."""
    global _pending
    signum, _pending = _pending, None
    return signum
