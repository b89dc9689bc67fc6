"""Probes of processes by pid, through ``/proc`` and ``waitid``, that never reap or block."""
from __future__ import annotations

import os
import signal


def process_start(pid: int | None) -> bytes | None:
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


def child_end(pid: int) -> str | None:
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


def reason(err: OSError) -> str:
    """The words of an OSError, for a one-line message."""
    return err.strerror or str(err) or type(err).__name__
