"""Checkpoints: exact round trips into real shared memory, atomic writes under SIGKILL, pruning,
and the errors for missing, corrupt, pickled and mismatched files."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from algorithms import checkpoint, files
from algorithms.config import UserError
from conftest import ROOT
from algorithms.config import Config
from algorithms.networks import make_layout
from algorithms.store import SharedParameterStore


def _arrays(rng, size=1000, actors=3):
    return {"params": rng.standard_normal(size).astype(np.float32),
            "target": rng.standard_normal(size).astype(np.float32),
            "opt_g": rng.random(size).astype(np.float32),
            "steps": np.array([1234, 5678, 91011][:actors], np.int64),
            "updates": np.array([250, 1100, 1800][:actors], np.int64),
            "final_epsilons": np.array([0.1, 0.01, 0.5][:actors]),
            "target_version": np.array(7, np.int64)}


META = {"config": {"game": "pong", "env": "ALE", "alg_type": "q", "arch": "NIPS",
                   "opt_type": "rmsprop", "opt_mode": "shared"},
        "layout": [["w", [10, 100]]], "observation_shape": [84, 84, 4], "num_actions": 6}


def test_round_trip_is_exact(tmp_path):
    arrays = _arrays(np.random.default_rng(0))
    path = checkpoint.save(str(tmp_path), 17_923, arrays, META, keep=3)
    assert os.path.basename(path) == "checkpoint-000000017923.npz"
    ckpt = checkpoint.load(path)
    assert ckpt.step == 17_923 and ckpt.config == META["config"]
    assert set(ckpt.arrays) == set(arrays)
    for name, array in arrays.items():
        assert ckpt.arrays[name].dtype == array.dtype
        assert np.array_equal(ckpt.arrays[name], array), name
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []


def test_restore_into_shared_memory_is_bit_for_bit(tmp_path):
    """What the trainer does on --resume: the vectors, the per-actor step and update counters
    (the global step and Adam's t) and the target refresh index come back exactly."""
    arrays = _arrays(np.random.default_rng(1))
    ckpt = checkpoint.load(checkpoint.save(str(tmp_path), 97_923, arrays, META, keep=3))
    ctx = mp.get_context("spawn")
    config = Config.from_dict(dict(META["config"], num_actor_learners=3))
    store = SharedParameterStore(config, 1000, ctx)
    try:
        assert set(store.vectors.sizes) == {"params", "target", "opt_g"}
        store.restore(ckpt.arrays)
        steps = store.steps
        for name in ("params", "target", "opt_g"):
            assert store.vectors[name].tobytes() == arrays[name].tobytes()
        assert list(steps.slots) == [1234, 5678, 91011]
        assert steps.total() == ckpt.step == 97_923
        assert list(store.updates.slots) == [250, 1100, 1800]
        assert store.target_version.value == 7
        state = store.state()   # what the next checkpoint holds: the same
        for name in ("params", "target", "opt_g", "updates", "target_version"):
            assert state[name].tobytes() == arrays[name].tobytes(), name
    finally:
        store.close()

    # another number of actor-learners: the totals are kept
    more = SharedParameterStore(config.replace(num_actor_learners=5), 1000, ctx)
    try:
        more.restore(ckpt.arrays)
        steps = more.steps
        assert steps.total() == 97_923 and more.updates.total() == 3150
    finally:
        more.close()


def test_only_the_newest_are_kept(tmp_path):
    arrays = _arrays(np.random.default_rng(2))
    for step in (100, 2_000, 30_000, 400_000, 5_000_000):
        checkpoint.save(str(tmp_path), step, arrays, META, keep=3)
    names = [os.path.basename(p) for p in checkpoint.list_checkpoints(str(tmp_path))]
    assert names == ["checkpoint-000000030000.npz", "checkpoint-000000400000.npz",
                     "checkpoint-000005000000.npz"]
    assert checkpoint.latest(str(tmp_path)).endswith("checkpoint-000005000000.npz")


def test_sigkill_during_a_write_leaves_the_previous_checkpoint(tmp_path):
    """A real writer process is killed with SIGKILL half-way through its write: the previous
    checkpoint is still the latest and loads; the half-written temporary file is never taken for
    a checkpoint and is removed before a resume. (The writer's script makes the pause: it gives
    ``files.py`` an ``open`` whose files stop half-way through their write.)"""
    arrays = _arrays(np.random.default_rng(3))
    first = checkpoint.save(str(tmp_path), 1000, arrays, META, keep=3)
    script = f"""
import time
import numpy as np
from algorithms import checkpoint, files

class HalfThenPause:
    def __init__(self, path, mode):
        self.path, self.file = path, open(path, mode)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.file.close()
    def write(self, data):
        self.file.write(data[:len(data) // 2])
        self.file.flush()
        print("checkpoint write paused:", self.path, flush=True)
        time.sleep(60)
    def __getattr__(self, name):
        return getattr(self.file, name)

files.open = HalfThenPause
a = {{'params': np.ones(2_000_000, np.float32), 'steps': np.zeros(2, np.int64),
     'updates': np.zeros(2, np.int64), 'final_epsilons': np.ones(2)}}
checkpoint.save({str(tmp_path)!r}, 2000, a, {META!r}, keep=3)
"""
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        line = writer.stdout.readline()
        assert line.startswith("checkpoint write paused: "), line
        tmp = line.split(": ", 1)[1].strip()
        assert os.path.getsize(tmp) > 1_000_000   # half of the new file is on disk
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(10) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.stdout.close()
    assert checkpoint.list_checkpoints(str(tmp_path)) == [first]
    ckpt = checkpoint.load(checkpoint.latest(str(tmp_path)))
    assert ckpt.step == 1000 and np.array_equal(ckpt.arrays["params"], arrays["params"])
    assert checkpoint.remove_stale_temporaries(str(tmp_path)) == [tmp]
    assert os.listdir(tmp_path) == [os.path.basename(first)]


def test_truncated_and_garbage_files_are_reported(tmp_path):
    path = checkpoint.save(str(tmp_path), 1000, _arrays(np.random.default_rng(4)), META, keep=3)
    data = open(path, "rb").read()
    truncated = tmp_path / "checkpoint-000000002000.npz"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "checkpoint-000000003000.npz"
    garbage.write_bytes(os.urandom(5000))
    garbage.write_bytes(b"\x00" + os.urandom(4999))   # not even a zip archive's header
    for bad, what in ((truncated, "corrupt or truncated"), (garbage, "is not a checkpoint")):
        with pytest.raises(UserError, match=what) as err:
            checkpoint.load(str(bad))
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="does not exist"):
        checkpoint.load(str(tmp_path / "nothing.npz"))
    with pytest.raises(UserError, match="is a folder"):
        checkpoint.load(str(tmp_path))


def test_a_file_with_pickled_objects_is_refused(tmp_path):
    """Loading never unpickles: an object array (which would need pickle, and could run code)
    makes the file unusable instead."""
    path = tmp_path / "checkpoint-000000001000.npz"
    arrays = _arrays(np.random.default_rng(5))
    arrays["params"] = np.array([{"evil": True}], dtype=object)
    np.savez(path, meta=np.array('{"format": 1, "global_step": 1000, "config": {}, '
                                 '"layout": []}'), **arrays)
    with pytest.raises(UserError, match="corrupt or truncated.*allow_pickle"):
        checkpoint.load(str(path))


@pytest.mark.parametrize("change, named", [
    ({"alg_type": "a3c"}, "alg_type"), ({"game": "breakout"}, "game"),
    ({"arch": "NATURE"}, "arch"), ({"opt_type": "adam"}, "opt_type"),
])
def test_mismatched_config_is_named(tmp_path, change, named):
    layout = make_layout("q", "NIPS", (84, 84, 4), 6)
    names = [[s.name, list(s.shape)] for s in layout.specs]
    ckpt = checkpoint.load(checkpoint.save(str(tmp_path), 1000, _arrays(np.random.default_rng(6)),
                                           dict(META, layout=names), keep=3))
    checkpoint.check_compatible(ckpt, META["config"], names, (84, 84, 4), 6)   # same: fine
    with pytest.raises(UserError, match=f"trained with {named}"):
        checkpoint.check_compatible(ckpt, dict(META["config"], **change), names, (84, 84, 4), 6)
    with pytest.raises(UserError, match="has 6 actions, this environment 18"):
        checkpoint.check_compatible(ckpt, META["config"], names, (84, 84, 4), 18)


def test_another_crop_of_the_same_shape_is_named(tmp_path):
    """84x84 frames of the field and of the whole screen have one shape: the crop is compared
    as resolved, so an old checkpoint (no crop saved) resumes with today's default or the same
    crop given explicitly, and not with the other."""
    layout = make_layout("q", "NIPS", (84, 84, 4), 6)
    names = [[s.name, list(s.shape)] for s in layout.specs]
    ckpt = checkpoint.load(checkpoint.save(str(tmp_path), 1000, _arrays(np.random.default_rng(6)),
                                           dict(META, layout=names), keep=3))
    for same in (None, "none"):
        checkpoint.check_compatible(ckpt, dict(META["config"], crop=same), names, (84, 84, 4), 6)
    with pytest.raises(UserError, match="trained on frames with --crop none, not field"):
        checkpoint.check_compatible(ckpt, dict(META["config"], crop="field"), names,
                                    (84, 84, 4), 6)
    universe = dict(META["config"], arch="UNIVERSE")   # its default crop is the field
    ckpt.config.update(universe)
    checkpoint.check_compatible(ckpt, dict(universe, crop="field"), names, (84, 84, 4), 6)
    with pytest.raises(UserError, match="--crop field, not none"):
        checkpoint.check_compatible(ckpt, dict(universe, crop="none"), names, (84, 84, 4), 6)


def test_another_resampling_of_the_same_shape_is_named(tmp_path):
    """Frames resized by area and by salient blocks have one shape: a checkpoint saved before
    --resample existed (none saved) was trained on area-resized frames."""
    layout = make_layout("q", "NIPS", (84, 84, 4), 6)
    names = [[s.name, list(s.shape)] for s in layout.specs]
    ckpt = checkpoint.load(checkpoint.save(str(tmp_path), 1000, _arrays(np.random.default_rng(6)),
                                           dict(META, layout=names), keep=3))
    assert "resample" not in ckpt.config
    for same in (None, "area"):
        checkpoint.check_compatible(ckpt, dict(META["config"], resample=same), names,
                                    (84, 84, 4), 6)
    with pytest.raises(UserError, match="trained on frames with --resample area, not salient"):
        checkpoint.check_compatible(ckpt, dict(META["config"], resample="salient"), names,
                                    (84, 84, 4), 6)
    ckpt.config["resample"] = "salient"
    with pytest.raises(UserError, match="--resample salient, not area; use the same --resample, "
                                        "or another --checkpoint_dir to start a new run$"):
        checkpoint.check_compatible(ckpt, META["config"], names, (84, 84, 4), 6)
    with pytest.raises(UserError, match="--resample salient, not area; use the same --resample$"):
        checkpoint.check_compatible(ckpt, dict(META["config"], mode="eval"), names, (84, 84, 4), 6)


def test_things_named_like_checkpoints_that_are_not_files_are_ignored(tmp_path):
    """A folder, a broken link and a temporary file with checkpoint-like names disturb neither
    listing nor pruning."""
    real = checkpoint.save(str(tmp_path), 1000, _arrays(np.random.default_rng(2)),
                           dict(META), keep=1)
    (tmp_path / checkpoint.file_name(5000)).mkdir()
    os.symlink(str(tmp_path / "gone.npz"), str(tmp_path / checkpoint.file_name(6000)))
    (tmp_path / f".{checkpoint.file_name(7000)}.123.tmp").write_bytes(b"half")
    assert checkpoint.list_checkpoints(str(tmp_path)) == [real]
    newer = checkpoint.save(str(tmp_path), 2000, _arrays(np.random.default_rng(3)),
                            dict(META), keep=1)
    assert checkpoint.list_checkpoints(str(tmp_path)) == [newer] and not os.path.exists(real)
    assert (tmp_path / checkpoint.file_name(5000)).is_dir()


def test_a_full_disk_never_damages_the_previous_checkpoint(tiny_tmpfs, tmp_path, monkeypatch):
    """A checkpoint written to a disk that fills up fails with ENOSPC; the previous one still
    loads bit for bit and no temporary file is left (a real 1 MB tmpfs when this process may
    mount one, else the same error raised where the bytes are written)."""
    import errno
    folder = str((tiny_tmpfs or tmp_path) / "ck")
    rng = np.random.default_rng(4)
    first = checkpoint.save(folder, 1000, _arrays(rng, size=50_000), dict(META), keep=3)
    saved = open(first, "rb").read()
    if tiny_tmpfs is not None:
        with open(tiny_tmpfs / "filler", "wb") as f:   # what is left, minus a little
            free = os.statvfs(tiny_tmpfs).f_bavail * os.statvfs(tiny_tmpfs).f_frsize
            f.write(b"\0" * max(0, free - 100_000))
    else:
        real_open = open

        def full(path, mode="r", *args, **kwargs):
            handle = real_open(path, mode, *args, **kwargs)
            if "w" in mode and str(path).endswith(files.TEMPORARY_SUFFIX):
                def write(data):
                    raise OSError(errno.ENOSPC, "No space left on device")
                handle.write = write
            return handle

        monkeypatch.setattr(files, "open", full, raising=False)
    with pytest.raises(OSError) as failure:
        checkpoint.save(folder, 2000, _arrays(rng, size=50_000), dict(META), keep=3)
    assert failure.value.errno == errno.ENOSPC
    assert checkpoint.list_checkpoints(folder) == [first]
    assert open(first, "rb").read() == saved and checkpoint.load(first).step == 1000
    assert [n for n in os.listdir(folder) if n.endswith(files.TEMPORARY_SUFFIX)] == []
