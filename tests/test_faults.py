"""Faults with real processes and signals: poisoned gradients, a parent killed with SIGKILL."""
import os
import signal
import time

import numpy as np

from conftest import processes_with_token, shm_segments
from test_end_to_end import _start, _wait_for_steps, read_scalars


def test_poisoned_gradients_never_reach_the_shared_parameters(run_cli, tmp_path):
    """Actor 0 produces only NaN gradients (test hook); they are skipped and counted, actor 1
    trains on, and the parent's final check finds the shared parameters finite (exit code 0)."""
    run = run_cli(["CartPole-v1", "--env", "GYM", "-n", "2", "--max_global_steps", "20000",
                   "--seed", "4", "--quiet", "--summary_dir", str(tmp_path)], timeout=200,
                   env={"ASYNCRL_TEST_POISON_ACTOR": "0"})
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("non-finite gradient: update skipped") == 1  # warned once
    run_dir = run.run_dir()
    poisoned = read_scalars(os.path.join(run_dir, "actor_0"))
    healthy = read_scalars(os.path.join(run_dir, "actor_1"))
    skipped = [v for _, v in poisoned["train/skipped_updates"]]
    assert skipped[0] >= 1 and skipped[-1] > skipped[0]
    assert all(v == 0 for _, v in healthy["train/skipped_updates"])
    assert all(np.isnan(v) for _, v in poisoned["loss/value"])
    assert all(np.isfinite(v) for _, v in healthy["loss/value"])


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    proc, token = _start(["CartPole-v1", "--env", "GYM", "-n", "2"], tmp_path)
    try:
        _wait_for_steps(proc)
        assert len(processes_with_token(token)) >= 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while processes_with_token(token) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with_token(token) == [], "workers outlived their parent"
        # the resource tracker removes the segments the dead parent could not unlink
        deadline = time.monotonic() + 10
        while shm_segments(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shm_segments(proc.pid) == []
    finally:
        for pid in processes_with_token(token):
            os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()
