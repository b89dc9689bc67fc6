"""Probes of processes by pid, through ``/proc`` and ``waitid``, that never reap or block."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

# What a terminal sends to the whole foreground process group: Ctrl-C, a closed terminal, Ctrl-\\;
# and SIGUSR1, which a batch scheduler sends to every process of a job ahead of its time limit
# (Slurm's --signal=USR1@<seconds>) and which asks the run for a checkpoint. The workers, the
# fork server and the resource tracker ignore them; the supervisor alone decides how a run stops
# and when it writes a checkpoint.
GROUP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1)


@contextlib.contextmanager
def children_hold_group_signals() -> Iterator[None]:
    """Processes started within start with GROUP_SIGNALS blocked: the kernel holds one that comes
    for them and never acts on it, until the child calls :func:`ignore_group_signals` (which
    drops what was held) or lifts the block itself. A mask is kept across fork and exec, where a
    Python handler is not.

    In this process only the calling thread blocks them, and their handlers stay as they are:
    one that arrives meanwhile is taken by another thread or held until the block ends, and
    reaches this process's handlers either way. (Setting them to SIG_IGN here, so that the
    children inherit them ignored, dropped a Ctrl-C sent while the fork server started.)"""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def ignore_group_signals() -> None:
    """Ignore GROUP_SIGNALS from now on, dropping any that a block (see
    :func:`children_hold_group_signals`) held for this process; then lift the block."""
    for signum in GROUP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, GROUP_SIGNALS)


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


def process_state(pid: int | None) -> str | None:
    """The state letter of process ``pid`` (field 3 of ``/proc/<pid>/stat``: R, S, D, T for
    stopped, t for stopped by a tracer, Z...), or None if there is no such process or no
    ``/proc``."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0].decode()
    except (OSError, IndexError):
        return None


def continue_if_stopped(pid: int | None) -> bool:
    """Send SIGCONT to process ``pid`` if it is stopped (SIGSTOP, SIGTSTP, a frozen job);
    True if it was. One stopped by a tracer (state t, a debugger) is left to its tracer: a
    SIGCONT would not resume it."""
    if process_state(pid) != "T":
        return False
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return False
    return True


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, however it dies (Linux's
    PR_SET_PDEATHSIG; nothing elsewhere). SIGKILL ends a stopped process too."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return


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


def processes_with_env(name: str, value: str) -> list[int]:
    """PIDs of live processes whose environment holds ``name=value`` (a trainer started with a
    marker there, and every process it started)."""
    found, needle = [], f"{name}={value}".encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (forked by its main thread)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def forkserver_pid(trainer: int) -> int | None:
    """A trainer's fork server (the local backend's): the child that forks its actor-learners."""
    for pid in children(trainer):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"multiprocessing.forkserver" in f.read():
                    return pid
        except OSError:
            continue
    return None


def actor_learner_pids(trainer: int) -> list[int]:
    """The actor-learner processes of a trainer (the children of its fork server)."""
    server = forkserver_pid(trainer)
    return [] if server is None else children(server)
