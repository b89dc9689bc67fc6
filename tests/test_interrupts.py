"""Signals while the program starts (``interrupts.deferred``), sent for real to this process."""
import os
import signal

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


def test_a_group_signal_while_helpers_start_is_held_for_this_process_not_lost():
    """While the fork server or the resource tracker starts, this process's group signals are
    held, not ignored: a Ctrl-C sent then reaches its own handler once the helper is up, and the
    helper itself starts with the signals ignored."""
    import subprocess
    import sys

    from algorithms.run.procs import GROUP_SIGNALS, children_ignore_group_signals
    seen = []
    previous = {s: signal.signal(s, lambda signum, _frame: seen.append(signum))
                for s in (signal.SIGINT, signal.SIGHUP)}
    try:
        with children_ignore_group_signals():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGHUP)
            child = subprocess.run(
                [sys.executable, "-c", "import signal\n"
                 "print(*(signal.getsignal(s) == signal.SIG_IGN for s in "
                 f"{[int(s) for s in GROUP_SIGNALS]}))"], capture_output=True, text=True)
            assert seen == []   # held meanwhile
        assert sorted(seen) == sorted([signal.SIGINT, signal.SIGHUP])   # then handled here
        assert child.stdout.split() == ["True"] * len(GROUP_SIGNALS)
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) & set(GROUP_SIGNALS) == set()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
