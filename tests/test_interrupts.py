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
