"""One run per folder: a second trainer on a checkpoint folder or run folder in use is refused
before it changes anything; the lock goes with the process that held it, even after kill -9;
an evaluation reads beside a training run that writes and prunes checkpoints."""
import os
import shutil
import signal
import time

import pytest

from algorithms import checkpoint
from algorithms.run.procs import process_state
from conftest import processes_with_token, shm_segments
from runs import remove_under_a_writer, start_run, wait_for_steps

pytestmark = pytest.mark.slow


def _args(tmp_path, *more):
    return ["CartPole-v1", "--env", "GYM", "-n", "1", "--checkpoint_dir",
            str(tmp_path / "ck"), "--checkpoint_interval", "300", "--keep_checkpoints", "1",
            *more]


def test_a_second_run_on_a_folder_in_use_is_refused_until_the_first_is_gone(run_cli, tmp_path):
    first, token = start_run(_args(tmp_path), tmp_path)
    try:
        wait_for_steps(first)
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


def _wait_until_stopped(token: str, timeout: float = 10) -> None:
    """Until every process of the run (``processes_with_token``) is stopped (state T): a
    SIGSTOP sent to a process group takes effect in each member at its own moment."""
    deadline = time.monotonic() + timeout
    while True:
        running = [pid for pid in processes_with_token(token)
                   if process_state(pid) not in (None, "T", "t", "Z")]   # None: gone
        if not running:
            return
        assert time.monotonic() < deadline, f"processes {running} did not stop"
        time.sleep(0.05)


def test_a_folder_removed_under_a_run_is_held_again_and_never_shared(run_cli, tmp_path):
    """The checkpoint folder of a live run removed (rm -rf): the run makes it again and holds
    it, so a later run is refused there. Removed again, and claimed by a second run in the
    meantime: the first leaves it to the second and writes its own checkpoints beside it, so
    that neither prunes the other's."""
    folder = tmp_path / "ck"
    first, token = start_run(_args(tmp_path), tmp_path, new_session=True)
    second = None
    try:
        wait_for_steps(first)
        deadline = time.monotonic() + 60
        while not checkpoint.list_checkpoints(str(folder)):
            assert time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.2)
        remove_under_a_writer(folder)
        while not checkpoint.list_checkpoints(str(folder)):   # made again at the next one
            assert time.monotonic() < deadline, "the folder was not made again"
            time.sleep(0.2)
        refused = run_cli(_args(tmp_path, "--summary_dir", str(tmp_path / "refused")),
                          timeout=120)
        assert refused.returncode == 2
        assert f"is in use by another run (process {first.pid})" in refused.stderr

        # The whole run still while the folder changes hands, and every one of its processes
        # stopped before the removal: one caught in a write would finish it first (ENOTEMPTY).
        os.killpg(first.pid, signal.SIGSTOP)
        _wait_until_stopped(token)
        shutil.rmtree(folder)
        second, token2 = start_run(_args(tmp_path, "--summary_dir", str(tmp_path / "second")),
                                tmp_path)
        wait_for_steps(second)
        os.killpg(first.pid, signal.SIGCONT)
        moved = tmp_path / f"ck-{first.pid}"
        deadline = time.monotonic() + 60
        while not checkpoint.list_checkpoints(str(moved)):
            assert time.monotonic() < deadline, "the first run wrote no checkpoint beside it"
            time.sleep(0.2)
        for proc in (first, second):
            proc.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
        second.communicate(timeout=60)
        assert first.returncode == 130 and second.returncode == 130
        assert f"another run (process {second.pid}) holds it now: this run's checkpoints go " \
               f"to {moved}" in err
        for where in (folder, moved):
            found = checkpoint.list_checkpoints(str(where))
            assert found, where
            assert {checkpoint.load(p).meta["run_id"] for p in found} == \
                {checkpoint.load(found[-1]).meta["run_id"]}   # one run's checkpoints each
        assert checkpoint.load(checkpoint.latest(str(folder))).meta["run_id"] != \
            checkpoint.load(checkpoint.latest(str(moved))).meta["run_id"]
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
        for pid in processes_with_token(token):   # the first run's group, stopped or not
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
