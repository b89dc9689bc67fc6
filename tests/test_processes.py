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
