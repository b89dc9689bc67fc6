"""One run per folder: a second trainer on a checkpoint folder or run folder in use is refused
before it changes anything; the lock goes with the process that held it, even after kill -9;
an evaluation reads beside a training run that writes and prunes checkpoints."""
import os
import signal
import time

import pytest

from algorithms import checkpoint
from conftest import processes_with_token, shm_segments
from test_end_to_end import _start, _wait_for_steps

pytestmark = pytest.mark.slow


def _args(tmp_path, *more):
    return ["CartPole-v1", "--env", "GYM", "-n", "1", "--checkpoint_dir",
            str(tmp_path / "ck"), "--checkpoint_interval", "300", "--keep_checkpoints", "1",
            *more]


def test_a_second_run_on_a_folder_in_use_is_refused_until_the_first_is_gone(run_cli, tmp_path):
    first, token = _start(_args(tmp_path), tmp_path)
    try:
        _wait_for_steps(first)
        deadline = time.monotonic() + 60
        while not checkpoint.list_checkpoints(str(tmp_path / "ck")):
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.5)
        before = sorted(os.listdir(tmp_path / "ck"))
        for extra in ([], ["--resume"]):
            second = run_cli(_args(tmp_path, "--summary_dir", str(tmp_path), *extra),
                             timeout=120)
            assert second.returncode == 2
            assert f"{str(tmp_path / 'ck')!r} is in use by another run (process {first.pid})" \
                in second.stderr
            assert "Traceback" not in second.stderr and len(second.stderr.splitlines()) == 1
        # an evaluation only reads: it runs beside the training run, which keeps writing and
        # pruning checkpoints (one kept, one every 300 steps) while it looks for the newest
        for _ in range(2):
            evaluated = run_cli(["CartPole-v1", "--env", "GYM", "--mode", "eval",
                                 "--checkpoint_dir", str(tmp_path / "ck"), "--eval_episodes",
                                 "1", "--eval_file", str(tmp_path / "eval.json")], timeout=120)
            assert evaluated.returncode == 0, evaluated.stderr
        assert before != sorted(os.listdir(tmp_path / "ck"))   # it did go on pruning
        os.kill(first.pid, signal.SIGKILL)   # the lock goes with the process
        first.wait(10)
        # Its workers leave once they see the parent gone, and its resource tracker once its
        # pipe closes, unlinking the shared memory the parent could not: killing them sooner
        # would leave that memory in /dev/shm.
        deadline = time.monotonic() + 15
        while processes_with_token(token) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if first.poll() is None:
            first.kill()
        for pid in processes_with_token(token):
            os.kill(pid, signal.SIGKILL)
        first.stdout.close()
        first.stderr.close()
    assert shm_segments(first.pid) == []
    step = checkpoint.load(checkpoint.latest(str(tmp_path / "ck"))).step
    resumed = run_cli(_args(tmp_path, "--summary_dir", str(tmp_path), "--resume",
                            "--max_global_steps", str(step + 1000), "--quiet"), timeout=180)
    assert resumed.returncode == 0, resumed.stderr
