"""Flat float32 vectors in POSIX shared memory (``multiprocessing.shared_memory``).

Ownership rule: the parent process *creates* every segment (:meth:`SharedVectors.create`), hands
the picklable :attr:`SharedVectors.handles` to the workers, which *attach* to them
(:meth:`SharedVectors.attach`), and the parent alone *unlinks* them (:meth:`SharedVectors.unlink`)
on every exit path. Segment names start with :data:`PREFIX` and the parent's pid, so leftovers
are easy to find (``ls /dev/shm``). The workers (forked by the fork server the parent started)
share the parent's resource tracker, which also removes the segments if the parent is killed
with SIGKILL. Should the tracker be killed too, the next run removes what is left
(:func:`remove_orphans`): the parent holds a shared ``flock`` on each of its segments for as
long as it lives, so a segment whose creator is gone is told from one in use by a live run,
even one in another PID namespace that shares this ``/dev/shm``.

What lives here, one vector each: the parameters, every optimizer statistic in
``--opt_mode shared``, and (value-based methods) the target parameters. Reads and writes of these
vectors are not locked; see ``optimizers.py`` for why.
"""
from __future__ import annotations

import fcntl
import os
import secrets
from multiprocessing import shared_memory
from multiprocessing.shared_memory import _posixshmem

import numpy as np

from .run.procs import process_start

PREFIX = "asyncrl"
SHM_FOLDER = "/dev/shm"   # where Linux keeps POSIX shared memory (a tmpfs)


def read_only_problem(folder: str = SHM_FOLDER) -> str | None:
    """Why this process could not make shared-memory segments in ``folder`` (a /dev/shm
    mounted read-only, as a container run with --read-only has), or None."""
    if not os.path.isdir(folder):
        return None   # not Linux
    if os.statvfs(folder).f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK | os.X_OK):
        return (f"shared memory: {folder} is read-only here, and the actor-learners share "
                "their parameters there; mount it writable (in Docker, drop --read-only or add "
                f"--tmpfs {folder})")
    return None


def space_problem(sizes: dict[str, int], folder: str = SHM_FOLDER) -> str | None:
    """Why vectors of these lengths would not fit in shared memory, or None.

    Segments are sparse until written: one larger than what the tmpfs has left is created
    without complaint and then kills the process that fills it with SIGBUS. Docker gives a
    container 64 MB there unless told otherwise (``--shm-size``).
    """
    if not os.path.isdir(folder):
        return None   # not Linux: the system sizes shared memory itself
    needed = sum(max(1, n) * 4 for n in sizes.values())
    info = os.statvfs(folder)
    free = info.f_bavail * info.f_frsize
    if needed <= free:
        return None
    mb = 1024 * 1024
    return (f"shared memory: this run needs {needed / mb:.0f} MB in {folder} and "
            f"{free / mb:.0f} MB are free (in Docker, give the container more with "
            f"--shm-size=1g; or use fewer actor-learners, or --opt_mode shared)")


# What one actor-learner process costs, measured: about 265 MB of its own memory (USS, with
# TensorFlow and an Atari game: help/BENCHMARKS.md, "Memory"), and 3 of the parent's file
# descriptors (its pipe and its sentinel; the parent held 27 with 4 actor-learners, each
# actor-learner 14 of its own).
WORKER_MEMORY = 250 * 1024 * 1024
WORKER_FILES = 4
BASE_FILES = 32


def resource_problem(workers: int, segments: int) -> str | None:
    """Why this machine's limits would not start ``workers`` actor-learners, each attached to
    ``segments`` shared vectors, or None: the open file limit (``ulimit -n``, per process) and
    the memory available (``MemAvailable``)."""
    import resource
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = BASE_FILES + max(workers * WORKER_FILES, segments)
    if soft != resource.RLIM_INFINITY and needed > soft:
        return (f"too few file descriptors for {workers} actor-learners: about {needed} are "
                f"needed and `ulimit -n` allows {soft}; raise it (e.g. `ulimit -n 4096`) or use "
                "a smaller -n")
    available = _available_memory()
    if available is not None and workers * WORKER_MEMORY > available:
        gb = 1024 ** 3
        return (f"too little memory for {workers} actor-learners: about "
                f"{workers * WORKER_MEMORY / gb:.1f} GB are needed (some 250 MB each) and "
                f"{available / gb:.1f} GB are available; use a smaller -n, or more "
                "--envs_per_actor with fewer actor-learners")
    return None


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def remove_orphans(folder: str = SHM_FOLDER) -> tuple[int, int]:
    """Remove the segments of runs whose creator is gone (its pid is not alive here and nothing
    holds the segment's lock); returns how many were removed and their bytes."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(PREFIX + "_")]
    except OSError:
        return 0, 0
    removed = freed = 0
    for name in names:
        try:
            pid = int(name.split("_")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and process_start(pid) is not None:   # a restarted container
            continue                                                  # can reuse a dead pid
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue   # gone already, or another user's
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)   # fails while a creator holds it
            size = os.fstat(fd).st_size
            os.unlink(path)
            removed, freed = removed + 1, freed + size
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed, freed


def _resource_tracker_alive() -> bool:
    """Whether multiprocessing's resource tracker, with which every segment this process
    made was registered, still reads its pipe (it is gone if it was killed: ``kill -9``, or the
    out-of-memory killer)."""
    from multiprocessing import resource_tracker
    try:   # private to multiprocessing: where it differs, tell the tracker as usual
        tracker = resource_tracker._resource_tracker
        return tracker._fd is not None and tracker._check_alive()
    except Exception:
        return True


def _hold(name: str) -> int | None:
    """A descriptor holding a shared lock on segment ``name`` for this process's lifetime (the
    kernel drops it when the process ends, however it ends); None where shared memory is not a
    folder of files (not Linux)."""
    if not os.path.isdir(SHM_FOLDER):
        return None
    fd = os.open(os.path.join(SHM_FOLDER, name), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


class SharedVectors:
    """Named float32 vectors, each in its own shared-memory segment."""

    def __init__(self, segments: dict[str, shared_memory.SharedMemory], sizes: dict[str, int],
                 owner: bool):
        self._segments = segments
        self.sizes = sizes
        self.owner = owner
        self._locks: list[int] = []
        self.arrays = {name: np.ndarray((sizes[name],), dtype=np.float32, buffer=seg.buf)
                       for name, seg in segments.items()}

    @classmethod
    def create(cls, sizes: dict[str, int]) -> "SharedVectors":
        """Create zero-filled segments (parent only)."""
        tag = f"{PREFIX}_{os.getpid()}_{secrets.token_hex(3)}"
        segments: dict[str, shared_memory.SharedMemory] = {}
        locks: list[int] = []
        try:
            for name, size in sizes.items():
                segments[name] = shared_memory.SharedMemory(
                    name=f"{tag}_{name}", create=True, size=max(1, size) * 4)
                fd = _hold(segments[name].name.lstrip("/"))   # at once: another run's cleaner
                if fd is not None:                             # must never take it for left
                    locks.append(fd)
        except BaseException:
            for fd in locks:
                os.close(fd)
            for seg in segments.values():
                seg.close()
                seg.unlink()
            raise
        vectors = cls(segments, dict(sizes), owner=True)
        vectors._locks = locks
        for array in vectors.arrays.values():
            array.fill(0.0)
        return vectors

    @property
    def handles(self) -> dict[str, tuple[str, int]]:
        """What a worker needs to attach: {vector: (segment name, length)}."""
        return {name: (seg.name, self.sizes[name]) for name, seg in self._segments.items()}

    @classmethod
    def attach(cls, handles: dict[str, tuple[str, int]]) -> "SharedVectors":
        """Attach to segments the parent created (workers)."""
        segments = {name: shared_memory.SharedMemory(name=seg_name)
                    for name, (seg_name, _) in handles.items()}
        return cls(segments, {name: size for name, (_, size) in handles.items()}, owner=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def close(self) -> None:
        self.arrays = {}
        for seg in self._segments.values():
            try:
                seg.close()
            except BufferError:
                pass  # a numpy view still exists somewhere; the mapping goes with the process

    def unlink(self) -> None:
        """Close and remove every segment (the owner's job; safe to call twice). Where the
        resource tracker they were registered with was killed, they are removed without telling
        a tracker: ``SharedMemory.unlink`` would start a new one, which did not register them
        and prints a ``KeyError`` traceback for each."""
        self.close()
        if not self.owner:
            return
        tracked = self._segments and _resource_tracker_alive()
        for seg in self._segments.values():
            try:
                if tracked:
                    seg.unlink()
                else:
                    _posixshmem.shm_unlink(seg._name)
            except FileNotFoundError:
                pass
        self._segments = {}
        for fd in self._locks:
            os.close(fd)
        self._locks = []


class StepCounters:
    """One int64 counter per actor-learner in shared memory; their sum is the global count.

    Each slot has a single writer, its actor-learner, so no lock is needed to add to it, and a
    worker killed at any instant (SIGKILL, out of memory) cannot leave a lock held that the others
    would wait on forever. Readers sum the slots; a sum taken while another slot is being written
    is at most one segment behind.
    """

    def __init__(self, ctx, count: int):
        self._raw = ctx.RawArray("q", count)
        self._view: np.ndarray | None = None

    def __getstate__(self):
        return {"_raw": self._raw}

    def __setstate__(self, state):
        self._raw = state["_raw"]
        self._view = None

    @property
    def slots(self) -> np.ndarray:
        if self._view is None:
            self._view = np.frombuffer(self._raw, dtype=np.int64)
        return self._view

    def add(self, actor: int, amount: int) -> int:
        """Add to this actor's slot; returns the new total over all actors."""
        slots = self.slots
        slots[actor] += amount
        return int(slots.sum())

    def total(self) -> int:
        return int(self.slots.sum())

    def __getitem__(self, actor: int) -> int:
        return int(self.slots[actor])


class StopFlag:
    """The parent's request that the actor-learners stop: one byte of shared memory, set by the
    parent and read by every worker at each segment, without a lock (a multiprocessing.Event
    takes one even to be read, and a worker stopped or killed while holding it would block
    every other worker, and the parent, forever)."""

    def __init__(self, ctx):
        self._raw = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._raw.value = 1

    def is_set(self) -> bool:
        return bool(self._raw.value)
