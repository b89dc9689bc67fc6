"""A checkpoint is input from outside: every array, counter, metadata entry and saved setting is
checked before anything starts or is written, and a bad one is one line naming the file and
what is wrong (exit code 2), for evaluation and for --resume alike."""
import io
import json
import os

import numpy as np
import pytest

from algorithms import checkpoint, cli, config
from algorithms.networks import make_layout
from runs import valid_checkpoint





def _rewrite(path: str, arrays: dict | None = None, meta: dict | None = None,
             drop: str | None = None) -> None:
    """Change some arrays or metadata entries of the checkpoint at ``path``, in place."""
    with np.load(path, allow_pickle=False) as data:
        saved = {name: data[name] for name in data.files}
    old_meta = json.loads(str(saved.pop("meta")))
    saved.update(arrays or {})
    if drop:
        saved.pop(drop)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(dict(old_meta, **(meta or {})))), **saved)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def _eval(path: str, capsys) -> tuple[int, str]:
    code = cli.main(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint", path,
                     "--eval_episodes", "1"])
    return code, capsys.readouterr().err


def test_a_valid_checkpoint_evaluates(tmp_path, capsys):
    code, err = _eval(valid_checkpoint(tmp_path), capsys)
    assert code == 0, err


SIZE = make_layout("a3c", "NIPS", (4,), 2).size


@pytest.mark.parametrize("arrays, meta, message", [
    ({"params": np.full(SIZE, np.nan, np.float32)}, None,
     "array 'params' holds NaN or infinite values"),
    ({"opt_g": np.zeros(7, np.float32)}, None,
     f"array 'opt_g' is float32 of shape (7,), not float32 of shape ({SIZE},)"),
    ({"params": np.zeros(SIZE, np.int32)}, None, "array 'params' is int32"),
    ({"steps": np.array([1600.5, 1399.5])}, None, "counter 'steps' is float64"),
    ({"steps": np.array([4000, -1000])}, None, "counter 'steps' holds negative counts"),
    ({"updates": np.array(600)}, None, "counter 'updates' is int64 of shape ()"),
    ({"steps": np.array([1600, 1300])}, None,
     "its global step 3,000 is not the total of its step counters (2,900)"),
    ({"final_epsilons": np.array([1.0, 7.0])}, None, "not a list of exploration rates"),
    ({"target_version": np.array([1, 2])}, None, "'target_version' is not a non-negative"),
    ({"extra": np.zeros(3)}, None, "unknown array 'extra'"),
    (None, {"observation_shape": 4}, "its metadata has observation_shape 4, not a list"),
    (None, {"resumes": -2}, "its metadata holds a negative count"),
    (None, {"run_dir": 17}, "its metadata has run_dir 17, not a name"),
])
def test_bad_arrays_counters_and_metadata_are_one_line(tmp_path, capsys, arrays, meta,
                                                      message):
    path = valid_checkpoint(tmp_path)
    _rewrite(path, arrays, meta)
    code, err = _eval(path, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"checkpoint {path!r}: " in err and message in err


@pytest.mark.parametrize("key, value", [
    ("initial_lr", -0.5), ("num_actor_learners", 10**9), ("gamma", "high"),
    ("max_local_steps", [5]), ("opt_type", "sgd"), ("lstm", "maybe"),
])
def test_saved_settings_the_command_line_would_refuse_are_one_line(tmp_path, capsys, key,
                                                                   value):
    path = valid_checkpoint(tmp_path)
    with np.load(path, allow_pickle=False) as data:
        saved_config = json.loads(str(data["meta"]))["config"]
    _rewrite(path, meta={"config": dict(saved_config, **{key: value})})
    before = sorted(os.listdir(tmp_path / "ck"))
    code = cli.main(["CartPole-v1", "--env", "GYM", "--resume", "--checkpoint_dir",
                     str(tmp_path / "ck"), "--summary_dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"its saved configuration has {key} {value!r}, which the command line refuses" in err
    assert sorted(os.listdir(tmp_path / "ck")) == before and not (tmp_path / "s").exists()


def _source_run(tmp_path) -> tuple[str, str, dict]:
    """Run A: a checkpoint at step 3,000 in A/ck whose recorded run folder A/s/... holds
    config.json (with the run's id) and episodes.csv (with episodes after step 3,000 too)."""
    path = valid_checkpoint(tmp_path / "A")
    run_dir = tmp_path / "A" / "s" / "CartPole-v1" / "a3c" / "2026-01-01_00-00-00"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"run_id": "run-a", "config": {}}))
    (run_dir / "episodes.csv").write_text(
        "actor,global_step,wall_time,return,length,env\n0,2000,1.0,20,20,0\n"
        "0,5000,2.0,30,30,0\n")
    _rewrite(path, meta={"run_dir": str(run_dir), "run_id": "run-a"})
    files = {name: (run_dir / name).read_bytes() for name in ("config.json", "episodes.csv")}
    return path, str(run_dir), files


def _resume(args: list[str]) -> int:
    return cli.main(["CartPole-v1", "--env", "GYM", "--resume", "--max_global_steps", "3100",
                     "--quiet", *args])


@pytest.mark.slow
def test_a_branch_into_other_folders_never_changes_the_source_run(tmp_path, capsys):
    """The situation of the issue: resuming run A's checkpoint with B's checkpoint and summary
    folders writes to B only; with B's checkpoint folder alone (the summary folder then comes
    from the checkpoint) a new run folder is made beside A's. A's files are untouched; the run
    that owns A's folder goes on in it."""
    path, run_dir, files = _source_run(tmp_path)
    code = _resume(["--checkpoint", path, "--checkpoint_dir", str(tmp_path / "B" / "ck"),
                    "--summary_dir", str(tmp_path / "B" / "s")])
    out = capsys.readouterr().out
    assert code == 0
    assert "not continuing in" in out and "it is not under this --summary_dir" in out
    assert len(os.listdir(tmp_path / "B" / "s" / "CartPole-v1" / "a3c")) == 1
    code = _resume(["--checkpoint", path, "--checkpoint_dir", str(tmp_path / "C" / "ck")])
    out = capsys.readouterr().out
    assert code == 0 and "the checkpoint comes from another --checkpoint_dir" in out
    assert len(os.listdir(os.path.dirname(run_dir))) == 2   # A's folder and a new one
    assert all(open(os.path.join(run_dir, n), "rb").read() == data for n, data in files.items())
    # A itself, resumed from its own folder, goes on in its run folder (its later episodes,
    # lost with the process, are cut)
    code = _resume(["--checkpoint_dir", str(tmp_path / "A" / "ck")])
    out = capsys.readouterr().out
    assert code == 0 and "(same run directory)" in out
    assert "0,5000," not in open(os.path.join(run_dir, "episodes.csv")).read()
    assert json.load(open(os.path.join(run_dir, "config.json")))["run_id"] == "run-a"


def test_a_folder_whose_config_names_another_run_is_not_continued(tmp_path):
    from algorithms.record import continues
    path, run_dir, _ = _source_run(tmp_path)
    ckpt = checkpoint.load(path)
    settings = config.Config.from_dict(ckpt.config)
    assert continues(run_dir, ckpt.meta, path, settings) is None
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump({"run_id": "run-b", "config": {}}, f)
    assert continues(run_dir, ckpt.meta, path, settings) == \
        "its config.json belongs to another run"


def _replace_meta(path: str, text: str) -> None:
    with np.load(path, allow_pickle=False) as data:
        saved = {name: data[name] for name in data.files if name != "meta"}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(text), **saved)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


@pytest.mark.parametrize("text, what", [
    ("[1, 2, 3]", "its metadata is a list, not a mapping"),
    ('"a string"', "its metadata is a str, not a mapping"),
])
def test_metadata_that_is_not_a_mapping_is_one_line(tmp_path, capsys, text, what):
    path = valid_checkpoint(tmp_path)
    _replace_meta(path, text)
    code, err = _eval(path, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"checkpoint {path!r} is corrupt or truncated ({what})" in err


def test_a_newer_format_is_named_and_the_file_kept(tmp_path, capsys):
    """Never "delete it" for a good checkpoint that a newer version wrote."""
    path = valid_checkpoint(tmp_path)
    _rewrite(path, meta={"format": checkpoint.FORMAT + 1})
    before = open(path, "rb").read()
    code, err = _eval(path, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"checkpoint {path!r} was written by a newer version of this trainer (checkpoint " \
           f"format {checkpoint.FORMAT + 1}; this version reads format {checkpoint.FORMAT}): " \
           "update the trainer (git pull) to use it; the file is fine, keep it" in err
    assert "delete" not in err and open(path, "rb").read() == before


def test_a_resume_into_a_folder_with_later_checkpoints_is_refused(tmp_path, capsys):
    """Two lines of training in one folder would prune each other's checkpoints: a resume from
    an older checkpoint there is refused, and nothing in the folder changes."""
    path = valid_checkpoint(tmp_path)
    later = tmp_path / "ck" / checkpoint.file_name(5000)
    later.write_bytes(open(path, "rb").read())
    before = sorted(os.listdir(tmp_path / "ck"))
    code = cli.main(["CartPole-v1", "--env", "GYM", "--resume", "--checkpoint", path,
                     "--summary_dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{str(tmp_path / 'ck')!r} holds checkpoints beyond step 3,000 (the latest " \
           f"{later.name}): resuming there would mix two lines of training" in err
    assert sorted(set(os.listdir(tmp_path / "ck")) - {".lock"}) == before
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("make", ["dangling link", "lock is a folder", "empty name"])
def test_a_checkpoint_folder_that_is_not_a_plain_folder_is_one_line(tmp_path, capsys, make):
    folder = tmp_path / "ck"
    if make == "dangling link":
        folder.symlink_to(tmp_path / "nowhere" / "x")
    elif make == "lock is a folder":
        (folder / ".lock").mkdir(parents=True)
    with pytest.raises(SystemExit) as stopped:   # refused while the flags are parsed, or after
        raise SystemExit(cli.main(["CartPole-v1", "--env", "GYM", "--checkpoint_dir",
                                   "" if make == "empty name" else str(folder), "--summary_dir",
                                   str(tmp_path / "s")]))
    code = stopped.value.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("main.py: error: argument --checkpoint_dir: ")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("make, what", [
    (lambda p: os.mkfifo(p), "is not a regular file (a FIFO, a device or a socket)"),
    (lambda p: open(p, "w").write('{"params": [1, 2]}'),
     "is not a checkpoint (not an .npz archive: it starts with b'{\"pa'"),
    (lambda p: open(p, "wb").write(b"\x80\x04\x95pickled"),
     "is not a checkpoint (not an .npz archive: it starts with b'\\x80\\x04\\x95p'"),
])
def test_a_checkpoint_that_is_not_one_is_named_for_what_it_is(tmp_path, capsys, make, what):
    """A FIFO (opening it would wait for a writer for ever), JSON or a pickle: one line that
    says what it is, never "does not exist" or NumPy's advice about pickles."""
    path = str(tmp_path / "checkpoint-000000001000.npz")
    make(path)
    code, err = _eval(path, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"checkpoint {path!r} {what}" in err and "pickle" not in err


@pytest.mark.parametrize("flag", ["--eval_file", "--record_video"])
def test_an_empty_output_name_is_refused(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as exit_info:   # a usage error, as argparse's own
        cli.main(["CartPole-v1", "--env", "GYM", "--mode", "eval", flag, ""])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert f"argument {flag}: the name is empty" in err
