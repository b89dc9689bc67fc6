"""The parent's writes failing under a real run: a checkpoint folder that turns into a file, a run
folder removed, an unexpected error in the parent. Training goes on, or ends with one line;
nothing saved is lost."""
import contextlib
import csv
import glob
import hashlib
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from algorithms import checkpoint, cli
from algorithms.record import RunRecord
from conftest import shm_segments
from runs import remove_under_a_writer, running, wait_for_steps

pytestmark = pytest.mark.slow


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_failing_checkpoint_writes_and_a_removed_run_folder_do_not_end_training(tmp_path):
    """After the first checkpoint, the checkpoint folder is moved away and a file takes its
    name (every later write there fails), and the run folder is deleted. Training goes on to
    its budget: each failed checkpoint is one warning, the final one goes to the run folder,
    the run folder is made again with config.json and every episode, and the checkpoint
    written before the faults is untouched."""
    folder = tmp_path / "ck"
    (tmp_path / "s").mkdir()
    with running(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "3",
                   "--max_global_steps", "12000", "--checkpoint_interval", "2000",
                   "--checkpoint_dir", str(folder)], tmp_path / "s") as (proc, _):
        first = _wait_for(lambda: checkpoint.list_checkpoints(str(folder)), 150,
                          "the first checkpoint")[0]
        moved = tmp_path / "moved"
        folder.rename(moved)
        folder.write_text("not a folder\n")
        kept = moved / os.path.basename(first)
        digest = _digest(str(kept))
        run_dir = glob.glob(str(tmp_path / "s" / "CartPole-v1" / "a3c" / "*"))[0]
        with open(os.path.join(run_dir, "episodes.csv"), newline="") as f:
            before = list(csv.reader(f))[1:]
        remove_under_a_writer(run_dir)
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    failed = re.findall(r"warning: the checkpoint at step [\d,]+ could not be written to "
                        rf"{re.escape(str(folder))} \(", err)
    assert len(failed) >= 3   # steps 4,000, 6,000, ... up to 10,000, one line each
    assert "warning: the final checkpoint could not be written" in err
    final = os.path.join(run_dir, "checkpoints")
    assert f"saved it to {final} instead" in err
    saved = checkpoint.list_checkpoints(final)
    assert len(saved) == 1 and checkpoint.load(saved[0]).step >= 12000
    assert _digest(str(kept)) == digest and checkpoint.load(str(kept)).step >= 2000
    assert [n for n in os.listdir(moved) if n.endswith(".tmp")] == []
    # the run folder again, whole: config.json, every episode (those before the removal
    # first), and TensorBoard events written after it
    assert f"the run folder {run_dir} was removed during the run; made it again" in err
    with open(os.path.join(run_dir, "episodes.csv"), newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert rows[:len(before)] == before and len(before) > 0
    total = int(re.findall(r"\(last \d+ of (\d+)\)", out)[-1])
    assert len(rows) == total
    assert os.path.isfile(os.path.join(run_dir, "config.json"))
    assert glob.glob(os.path.join(run_dir, "actor_0", "events.out.tfevents.*"))


def test_files_removed_from_the_run_folder_are_written_again_and_named(tmp_path):
    """config.json removed alone, then episodes.csv and evals.csv: each is written again at
    the next flush, with every row so far, and the warning names what was removed (not "the
    run folder")."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "4",
                  "--max_global_steps", "30000"], tmp_path) as (proc, _):
        run_dir = _wait_for(lambda: glob.glob(str(tmp_path / "CartPole-v1" / "a3c" / "*")), 150,
                            "the run folder")[0]
        config, episodes = (os.path.join(run_dir, name) for name in ("config.json",
                                                                        "episodes.csv"))
        # the run folder exists before Record.open() writes episodes.csv into it
        _wait_for(lambda: os.path.isfile(episodes) and len(open(episodes).readlines()) > 3, 150,
                  "episodes")
        saved = open(config).read()
        os.remove(config)
        _wait_for(lambda: os.path.isfile(config), 60, "config.json written again")
        assert open(config).read() == saved
        with open(episodes, newline="") as f:
            before = list(csv.reader(f))[1:]
        os.remove(episodes)
        os.remove(os.path.join(run_dir, "evals.csv"))
        _wait_for(lambda: os.path.isfile(episodes), 60, "episodes.csv written again")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert f"warning: config.json removed from {run_dir} during the run; written again" in err
    # one warning naming both, or two if a flush came between the two removals
    named = re.findall(rf"warning: ([\w., ]+) removed from {re.escape(run_dir)} during the run; "
                       "written again", err)
    assert {"episodes.csv", "evals.csv"} <= {name for line in named[1:]
                                             for name in line.split(", ")}
    assert "the run folder" not in err
    with open(episodes, newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert rows[:len(before)] == before
    assert len(rows) == int(re.findall(r"\(last \d+ of (\d+)\)", out)[-1])
    assert os.path.isfile(os.path.join(run_dir, "evals.csv"))


def test_a_run_folder_replaced_by_a_file_moves_the_record_beside_it(tmp_path):
    """The run folder is replaced by a file mid-run: the file is left alone, and the run's
    records go on in <run folder>-<pid> beside it, with config.json as written at the start,
    every episode (those before the swap first), the actor-learner's TensorBoard scalars and
    the final checkpoint's note of where the run is (which a --resume continues)."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "5",
                  "--max_global_steps", "30000"], tmp_path) as (proc, _):
        run_dir = _wait_for(lambda: glob.glob(str(tmp_path / "CartPole-v1" / "a3c" / "*")), 150,
                            "the run folder")[0]
        episodes = os.path.join(run_dir, "episodes.csv")
        _wait_for(lambda: os.path.isfile(episodes) and len(open(episodes).readlines()) > 3, 150,
                  "episodes")
        with open(os.path.join(run_dir, "config.json")) as f:
            config = f.read()
        swap = tmp_path / "swap"
        swap.write_text("a file where the run folder was\n")
        os.rename(run_dir, str(tmp_path / "away"))
        os.rename(swap, run_dir)   # at once: a writer that came between would make a folder
        with open(tmp_path / "away" / "episodes.csv", newline="") as f:
            before = list(csv.reader(f))[1:]
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    moved = f"{run_dir}-{proc.pid}"
    assert (f"warning: the run folder {run_dir} was replaced by something that is not a "
            f"folder during the run; left as it is: the run goes on in {moved}") in err
    assert "cannot be written" not in err   # the actor-learner's writer went there too
    with open(run_dir) as f:
        assert f.read() == "a file where the run folder was\n"
    with open(os.path.join(moved, "config.json")) as f:
        assert f.read() == config
    with open(os.path.join(moved, "episodes.csv"), newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert rows[:len(before)] == before and len(before) > 0
    assert len(rows) == int(re.findall(r"\(last \d+ of (\d+)\)", out)[-1])
    assert glob.glob(os.path.join(moved, "actor_0", "events.out.tfevents.*"))
    assert f"results in {moved}" in out
    final = checkpoint.list_checkpoints(str(tmp_path / "checkpoints" / "CartPole-v1" / "a3c"))[-1]
    assert checkpoint.load(final).meta["run_dir"] == moved


def test_an_unexpected_error_in_the_parent_ends_with_one_line(tmp_path, capsys, monkeypatch):
    """A bug in the parent (here: the --stop_return check raising) stops the workers, removes
    the shared memory, writes the traceback to error.log in the run folder and prints one
    line that names the last good checkpoint; exit code 1."""
    real = RunRecord.check_solved

    def broken(self, step):
        if step > 1500:   # after the checkpoints at 500 and 1,000 steps
            raise RuntimeError("injected fault in the parent")
        return real(self, step)

    monkeypatch.setattr(RunRecord, "check_solved", broken)
    monkeypatch.delenv("A3C_DEBUG", raising=False)
    code = cli.main(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "5", "--quiet",
                     "--checkpoint_interval", "500", "--summary_dir", str(tmp_path / "s"),
                     "--checkpoint_dir", str(tmp_path / "ck")])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "RuntimeError: injected fault in the parent" in lines[0]
    assert "Traceback" not in err
    last = checkpoint.latest(str(tmp_path / "ck"))
    assert last is not None and f"the last good checkpoint is {last}" in lines[0]
    checkpoint.load(last)
    run_dir = glob.glob(str(tmp_path / "s" / "CartPole-v1" / "a3c" / "*"))[0]
    log = os.path.join(run_dir, "error.log")
    assert f"details: {log}" in lines[0]
    with open(log) as f:
        text = f.read()
    assert "Traceback" in text and "injected fault in the parent" in text
    assert multiprocessing.active_children() == []
    assert shm_segments(os.getpid()) == []


def test_a_full_summary_disk_mid_run_drops_tensorboard_scalars_and_training_goes_on(
        tmp_path, tiny_tmpfs):
    """--summary_dir on a 1 MB tmpfs that a filler file fills up mid-run: each learner's
    TensorBoard writer fails, says so once, and training goes on to its budget with its
    checkpoints (in another folder). Without the right to mount, each event folder is replaced
    by a file instead: the same failed write, another cause."""
    summary = tiny_tmpfs if tiny_tmpfs is not None else tmp_path / "s"
    folder = tmp_path / "ck"
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "3",
                   "--max_global_steps", "40000", "--checkpoint_dir", str(folder)],
                  summary) as (proc, _):
        wait_for_steps(proc)
        run_dir = glob.glob(os.path.join(str(summary), "CartPole-v1", "a3c", "*"))[0]
        if tiny_tmpfs is not None:
            with open(os.path.join(str(summary), "filler"), "wb", buffering=0) as f, \
                    contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 4096)
        else:   # each event folder replaced by a file: no new event file can be made there
            for actor in ("actor_0", "actor_1"):
                folder_path = os.path.join(run_dir, actor)
                os.rename(folder_path, folder_path + ".moved")
                with open(folder_path, "w") as f:
                    f.write("not a folder\n")
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    warned = re.findall(r"warning: actor-learner (\d): TensorBoard's event file in \S+ cannot be "
                        r"written \(([^)]*)\); scalars are dropped", err)
    assert sorted(actor for actor, _ in warned) == ["0", "1"]   # once each
    if tiny_tmpfs is not None:
        assert {why for _, why in warned} == {"No space left on device"}
    saved = checkpoint.list_checkpoints(str(folder))
    assert saved and checkpoint.load(saved[-1]).step >= 40000
    assert "Traceback" not in err and "restarting" not in out + err


def test_a_removed_run_folder_that_an_actor_made_again_is_held_again(tmp_path, capsys):
    """The run folder removed, then made again by an actor-learner's TensorBoard writer before
    the parent's next flush: the parent still sees the folder as removed (its lock is gone), and
    holds it again, with config.json and every episode; no other run can take it."""
    from algorithms import config
    from algorithms.files import LOCK_NAME, holds
    args = config.parse_args(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "3",
                              "--summary_dir", str(tmp_path / "s"),
                              "--checkpoint_dir", str(tmp_path / "ck")])
    config.resolve_defaults(args, continuous=False, atari=False)
    settings = config.Config.from_namespace(args)
    record = RunRecord(settings, 1, None, 0)
    record.open(settings.to_dict(), None)
    record.start_progress(0)
    try:
        record.episode(0, 0, 100, time.time(), 12.0, 12)
        record.flush()
        shutil.rmtree(record.run_dir)
        os.makedirs(os.path.join(record.run_dir, "actor_0"))   # the actor's writer, first
        assert not holds(record.run_dir)
        record.flush()
        err = capsys.readouterr().err
        assert f"the run folder {record.run_dir} was removed during the run" in err
        assert holds(record.run_dir)
        taken = subprocess.run(   # another process cannot lock it
            [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\n"
             "try: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
             "except BlockingIOError: sys.exit(3)",
             os.path.join(record.run_dir, LOCK_NAME)])
        assert taken.returncode == 3
        with open(os.path.join(record.run_dir, "episodes.csv"), newline="") as f:
            assert [row[3] for row in csv.reader(f)][1:] == ["12"]
        assert os.path.isfile(os.path.join(record.run_dir, "config.json"))
    finally:
        record.close()
