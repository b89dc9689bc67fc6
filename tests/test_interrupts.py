"""Signals while the program starts (``interrupts.deferred``), sent for real to this process."""
import os
import signal
import time

import pytest

from algorithms import interrupts


def test_a_stop_signal_while_starting_is_kept_for_the_work_and_a_second_one_interrupts():
    with interrupts.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        assert interrupts.pending() == signal.SIGTERM
        with pytest.raises(interrupts.Interrupted) as second:
            os.kill(os.getpid(), signal.SIGINT)
        assert second.value.signum == signal.SIGINT


def test_a_checkpoint_request_while_starting_is_kept_once_and_never_stops_the_start():
    """SIGUSR1 (a scheduler's warning before its time limit) during the start: recorded for the
    supervisor, taken once; it is no stop signal, and the handler found is restored after."""
    before = signal.getsignal(signal.SIGUSR1)
    with interrupts.deferred():
        assert interrupts.take_checkpoint_request() is False
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR1)
        assert interrupts.pending() is None
        assert interrupts.take_checkpoint_request() is True
        assert interrupts.take_checkpoint_request() is False
    assert signal.getsignal(signal.SIGUSR1) == before


def _mask(pid: int, field: str) -> int:
    """A signal set of process ``pid`` from /proc (``SigBlk``, ``SigIgn``, ``SigPnd``...)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1], 16) for line in f if line.startswith(field + ":"))


def _has(mask: int, signum: int) -> bool:
    return bool(mask & (1 << (signum - 1)))


def test_a_group_signal_while_a_helper_starts_reaches_this_process_and_never_the_helper():
    """While the fork server or the resource tracker starts (``children_hold_group_signals``),
    a Ctrl-C sent to this process is handled here, not lost (it was, while the group signals
    were set to SIG_IGN meanwhile). The helper starts with them blocked: one sent
    to it before it calls ``ignore_group_signals`` is held, then dropped, and never kills it."""
    import subprocess
    import sys

    from algorithms.run.procs import GROUP_SIGNALS, children_hold_group_signals
    child_code = ("import sys\n"
                  "print('started', flush=True)\n"
                  "sys.stdin.readline()\n"
                  "from algorithms.run.procs import ignore_group_signals\n"
                  "ignore_group_signals()\n"
                  "print('deaf', flush=True)\n"
                  "sys.stdin.readline()\n")
    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: seen.append(signum))
    try:
        with children_hold_group_signals():
            os.kill(os.getpid(), signal.SIGINT)
            child = subprocess.Popen([sys.executable, "-c", child_code], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     cwd=os.path.dirname(os.path.dirname(__file__)))
        # Held until the block ends, or taken by another thread where this process has one
        # (TensorFlow's): handled by this process's own handler either way, never dropped
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen == [signal.SIGINT]
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) & set(GROUP_SIGNALS) == set()
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert child.stdout.readline() == "started\n"
        assert all(_has(_mask(child.pid, "SigBlk"), s) for s in GROUP_SIGNALS)
        # Before it ignores them: held for it, not acted on (SIGINT would raise
        # KeyboardInterrupt in the child, SIGHUP and SIGQUIT would kill it)
        for signum in GROUP_SIGNALS:
            child.send_signal(signum)
        assert all(_has(_mask(child.pid, "SigPnd") | _mask(child.pid, "ShdPnd"), s)
                   for s in GROUP_SIGNALS)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "deaf\n"
        ignored, blocked = _mask(child.pid, "SigIgn"), _mask(child.pid, "SigBlk")
        assert all(_has(ignored, s) and not _has(blocked, s) for s in GROUP_SIGNALS)
        for signum in GROUP_SIGNALS:   # and after: ignored
            child.send_signal(signum)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


EXITING = """
import atexit, sys, time
from algorithms import interrupts
def teardown():   # as multiprocessing's removal of its temporary folder at the exit
    print("tearing down", flush=True)
    time.sleep(3)
    open(sys.argv[1], "w").write("finished")
atexit.register(teardown)
code = int(sys.argv[2])
interrupts.hold_while_exiting(code)
sys.exit(code)
"""


@pytest.mark.parametrize("code, signals, ends", [(3, 1, False), (3, 2, True), (130, 1, True)])
def test_a_stop_signal_while_the_process_exits_lets_it_finish_and_a_second_ends_it(
        tmp_path, code, signals, ends):
    """Once the work is done (``hold_while_exiting``, which the entry points call after main):
    one SIGTERM during the interpreter's teardown is said and ignored, the teardown finishes and
    the exit code stays the work's; a second one ends the process at once, by SIGTERM; and so
    does the first, after work that a signal stopped (exit code 130: that was the first)."""
    import subprocess
    import sys
    from conftest import ROOT
    marker = tmp_path / "finished"
    proc = subprocess.Popen([sys.executable, "-c", EXITING, str(marker), str(code)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "tearing down\n"
    said = "SIGTERM: the work is done, exiting (send it again to end at once)\n"
    for sent in range(signals):
        proc.send_signal(signal.SIGTERM)
        if sent == 0 and code < 128:
            assert proc.stderr.readline() == said   # handled before the next is sent
    out, err = proc.communicate(timeout=30)
    if ends:
        assert proc.returncode == -signal.SIGTERM, err
        assert not marker.exists()
    else:
        assert proc.returncode == code, err
        assert marker.read_text() == "finished"


def test_a_stop_signal_once_the_work_is_done_is_said_and_a_second_interrupts():
    """``finishing`` (a training's "done:"): the deferred handler no longer raises at the first
    stop signal, so the run closes its backend and its shared memory; the second raises."""
    with interrupts.deferred():
        interrupts.take()
        interrupts.finishing()
        os.kill(os.getpid(), signal.SIGTERM)   # said on stderr, nothing raised
        with pytest.raises(interrupts.Interrupted) as second:
            os.kill(os.getpid(), signal.SIGINT)
        assert second.value.signum == signal.SIGINT
    with interrupts.deferred():   # a new start forgets it
        interrupts.take()
        with pytest.raises(interrupts.Interrupted):
            os.kill(os.getpid(), signal.SIGTERM)
