"""How the supervisor reads the state of processes it cannot join: the fork server's end, read
without reaping it (multiprocessing reaps it later), and a worker told from a later process
that reuses its pid. Real processes, a fraction of a second each."""
import os
import signal
import subprocess
import sys
import time

from algorithms.run.procs import child_end, process_start


def _until(probe, timeout=5.0):
    deadline = time.monotonic() + timeout
    while (value := probe()) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def test_a_childs_end_is_read_without_reaping_it():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child_end(child.pid) is None   # running
        os.kill(child.pid, signal.SIGKILL)
        assert _until(lambda: child_end(child.pid)) == (
            "was killed by SIGKILL (the out-of-memory killer, or a kill from outside)")
        assert child_end(child.pid).startswith("was killed by SIGKILL")   # read again
    finally:
        child.kill()
    assert child.wait(5) == -signal.SIGKILL   # still there to be reaped by its owner
    assert child_end(child.pid) == "ended"   # reaped: no longer ours to read


def test_a_childs_exit_code_and_a_signal_without_a_name():
    exits = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    killed = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(killed.pid, signal.SIGRTMIN + 6)   # default action: terminate
        assert _until(lambda: child_end(exits.pid)) == "exited with code 3"
        assert _until(lambda: child_end(killed.pid)) == \
            f"was killed by signal {int(signal.SIGRTMIN) + 6}"
    finally:
        killed.kill()
        exits.wait(5)
        killed.wait(5)


def test_a_process_start_tells_a_process_from_a_zombie_and_from_none():
    child = subprocess.Popen(["sleep", "30"])
    try:
        started = process_start(child.pid)
        assert started and started.isdigit()
        assert process_start(child.pid) == started   # the same process, the same time
        assert process_start(os.getpid()) != started   # another process, another time
        os.kill(child.pid, signal.SIGKILL)
        # a zombie (ended, not reaped yet) is no longer running
        assert _until(lambda: "ended" if process_start(child.pid) is None else None)
        assert os.path.exists(f"/proc/{child.pid}")
    finally:
        child.kill()
        child.wait(5)
    assert process_start(child.pid) is None
    assert process_start(None) is None


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_segments_of_a_gone_run_are_removed_and_those_in_use_are_kept():
    """What a run finds in /dev/shm when it starts: a segment whose creator is gone is removed;
    one whose pid is alive, or whose creator still holds its lock (a run in another PID
    namespace sharing this /dev/shm), is kept until that holder ends. Real files in the real
    /dev/shm (a POSIX shared-memory segment is one)."""
    from algorithms.shared import PREFIX, SHM_FOLDER, SharedVectors, remove_orphans

    dead = _dead_pid()
    orphan, locked = (os.path.join(SHM_FOLDER, f"{PREFIX}_{dead}_{tag}_params")
                      for tag in ("aaaaaa", "bbbbbb"))
    for path in (orphan, locked):
        with open(path, "wb") as f:
            f.write(bytes(4096))
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
        "fcntl.flock(fd, fcntl.LOCK_SH); print('held', flush=True); sys.stdin.read()"), locked],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    live = SharedVectors.create({"params": 10, "target": 10})   # this process: alive, locked
    try:
        assert holder.stdout.readline() == "held\n"
        removed, freed = remove_orphans()
        assert removed >= 1 and freed >= 4096
        assert not os.path.exists(orphan)
        assert os.path.exists(locked)
        assert all(os.path.exists(os.path.join(SHM_FOLDER, name.lstrip("/")))
                   for name, _ in live.handles.values())
        holder.stdin.close()
        holder.wait(10)
        remove_orphans()                     # its holder gone, it goes too
        assert not os.path.exists(locked)
    finally:
        if holder.poll() is None:
            holder.kill()
        live.unlink()
        for path in (orphan, locked):
            if os.path.exists(path):
                os.unlink(path)
