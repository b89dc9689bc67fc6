"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

The bytes go to a hidden temporary file in the same folder, which is flushed, ``fsync``-ed and
renamed over the final name, and the folder is ``fsync``-ed so that the rename survives a power
cut. A crash or ``kill -9`` at any point leaves the previous file untouched; a failed write
removes its temporary file and raises.
"""
from __future__ import annotations

import os

TEMPORARY_SUFFIX = ".tmp"


def temporary_name(path: str) -> str:
    """The hidden temporary file a write of ``path`` by this process goes through."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}{TEMPORARY_SUFFIX}")


def write_atomically(path: str, data: bytes | str) -> str:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one step; returns ``path``."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_folder(os.path.dirname(path) or os.curdir)
    return path


def fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


LOCK_NAME = ".lock"
_held: dict[str, int] = {}   # folder -> descriptor of its lock file, for this process's life


def lock_folder(folder: str) -> int | None:
    """Hold an exclusive lock on ``folder`` (created if missing) for the rest of this process's
    life: ``fcntl.flock`` on ``<folder>/.lock``, which the system releases whenever the process
    ends, ``kill -9`` included, so no lock is ever left stale. Returns None when this process
    holds it now, or the pid of the live process that holds it (nothing is then changed)."""
    import fcntl
    folder = os.path.abspath(folder)
    if folder in _held:
        return None
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = int(os.pread(fd, 32, 0).decode().strip() or 0)
        except ValueError:
            holder = 0
        os.close(fd)
        return holder or -1
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[folder] = fd
    return None


def lock_holder(folder: str) -> int | None:
    """The pid written in ``folder``'s lock file by the process that locked it last, without
    locking it; None if there is none (the holder may have ended since: see
    :func:`lock_folder` to know)."""
    try:
        with open(os.path.join(folder, LOCK_NAME), "rb") as f:
            return int(f.read(32).decode().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def is_locked(folder: str) -> bool:
    """Whether a live process holds ``folder``'s lock now (its lock file exists and cannot be
    locked): a lock file outlives the process that wrote its pid."""
    import fcntl
    try:
        fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def moved_folder(folder: str, pid: int) -> str:
    """Where a run of process ``pid`` writes its checkpoints once ``folder`` was removed under
    it and another run claimed it (``checkpoint.Checkpointer``)."""
    return f"{os.path.abspath(folder).rstrip(os.sep)}-{pid}"


def holds(folder: str) -> bool:
    """Whether this process still holds ``folder``: its lock file is the one this process
    locked (a folder removed and made again, by anyone, has a new one). Another failure to
    look (a folder made unreadable) is raised: the lock is not given up for it."""
    fd = _held.get(os.path.abspath(folder))
    if fd is None:
        return False
    try:
        now, held = os.stat(os.path.join(folder, LOCK_NAME)), os.fstat(fd)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)


def release_folder(folder: str) -> None:
    """Give up this process's lock on ``folder`` (when its lock file went with the folder, so
    that it can be claimed again)."""
    fd = _held.pop(os.path.abspath(folder), None)
    if fd is not None:
        os.close(fd)


_claims: dict[str, object] = {}   # claimed name (folder resolved) -> its socket, for life


def claim_path(path: str) -> bool:
    """Claim the name ``path`` for the rest of this process's life, without writing a file: an
    abstract Unix socket named after the path, with its folder's symbolic links resolved (the
    name itself is what an atomic write replaces, a link included), which the system releases
    whenever the process ends. False when another live process claims it now. Abstract sockets
    belong to a network namespace: processes in two containers see each other's claims only
    when they share the network. Where there are none (not Linux), every claim succeeds."""
    import errno
    import hashlib
    import socket
    absolute = os.path.abspath(path)
    key = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    if key in _claims:
        return True
    digest = hashlib.sha256(os.fsencode(key)).hexdigest()
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except OSError:
        return True
    try:
        sock.bind(f"\0a3c-claim-{digest}")
    except OSError as err:
        sock.close()
        return err.errno != errno.EADDRINUSE
    _claims[key] = sock
    return True
