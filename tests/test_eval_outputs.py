"""What an evaluation writes never replaces what it reads, a folder it needs is made, and a
full disk under --record_video stops the recording, not the evaluation."""
import hashlib
import json
import os

import numpy as np
import pytest

from algorithms import checkpoint, cli, evaluate
from runs import valid_checkpoint


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _eval(path: str, capsys, *flags) -> tuple[int, str, str]:
    code = cli.main(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint", path,
                     "--eval_episodes", "2", *flags])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_checkpoint_being_evaluated_is_never_the_eval_file(tmp_path, capsys):
    path = valid_checkpoint(tmp_path)
    before = _digest(path)
    code, _, err = _eval(path, capsys, "--eval_file", path)
    assert code == 2
    assert err.strip() == f"main.py: error: argument --eval_file: {path!r} is the checkpoint " \
                          "being evaluated; it would be overwritten (give a new file name, " \
                          "e.g. eval.json)"
    assert _digest(path) == before and checkpoint.load(path).step == 3000


def test_a_file_that_is_not_an_earlier_result_is_never_replaced(tmp_path, capsys):
    """A run's config.json, its episodes.csv, another checkpoint: refused before any episode."""
    path = valid_checkpoint(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"game": "CartPole-v1", "seed": 1}) + "\n")
    (run / "episodes.csv").write_text("actor,global_step,wall_time,return,length,env\n")
    other = tmp_path / "other-checkpoint.npz"
    other.write_bytes(open(path, "rb").read())
    for target in (run / "config.json", run / "episodes.csv", other):
        before = target.read_bytes()
        code, out, err = _eval(path, capsys, "--eval_file", str(target))
        assert code == 2 and "episode 1/" not in out
        what = "would pass for a checkpoint (the scores are JSON)" if target is other else \
            "exists and is not an earlier evaluation's result; it would be overwritten"
        assert f"argument --eval_file: {str(target)!r} {what}" in err
        assert target.read_bytes() == before
    # a checkpoint's name in the checkpoint folder, not there yet: it would block every resume
    future = tmp_path / "ck" / "checkpoint-000000099999.npz"
    code, _, err = _eval(path, capsys, "--eval_file", str(future))
    assert code == 2 and "would pass for a checkpoint" in err and not future.exists()


def test_an_earlier_result_is_replaced_and_a_missing_folder_is_made(tmp_path, capsys):
    path = valid_checkpoint(tmp_path)
    target = tmp_path / "new" / "deeper" / "eval.json"
    code, out, _ = _eval(path, capsys, "--eval_file", str(target))
    assert code == 0 and f"written to {target}" in out
    first = json.loads(target.read_text())
    assert first["episodes"] == 2 and "partial" not in first
    code, _, _ = _eval(path, capsys, "--eval_file", str(target), "--eval_episodes", "3")
    assert code == 0 and json.loads(target.read_text())["episodes"] == 3


def test_a_full_disk_stops_the_recording_and_keeps_the_scores(tmp_path, capsys, tiny_tmpfs,
                                                              monkeypatch):
    """Videos into a 1 MB tmpfs, filled up first to 100 KB from full (OpenCV's writer drops
    frames there without an error, so the trainer watches the free space): recording stops
    with one warning, every episode is still played and scored, and no truncated video is
    kept or listed in the result. Without the right to mount, the same state is made by asking
    for more free space than the temporary folder has."""
    path = valid_checkpoint(tmp_path)
    # recording draws off-screen with SDL's dummy drivers, which an evaluation in this process
    # sets in its environment: restored afterwards, for the tests that open real windows
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    if tiny_tmpfs is None:
        videos = tmp_path / "videos"
        videos.mkdir()
        info = os.statvfs(videos)
        monkeypatch.setattr(evaluate, "VIDEO_MIN_FREE", 2 * info.f_bavail * info.f_frsize + 1)
    else:
        videos = tiny_tmpfs
        info = os.statvfs(videos)
        filler = np.zeros(max(info.f_bavail * info.f_frsize - 100 * 1024, 0), np.uint8)
        with open(os.path.join(videos, "filler"), "wb") as f:
            f.write(filler.tobytes())
    result = tmp_path / "eval.json"
    code, out, err = _eval(path, capsys, "--eval_episodes", "3", "--record_video",
                           str(videos), "--eval_file", str(result))
    assert code == 0, err
    assert err.count("warning: recording stopped (no space left for ") == 1
    assert "the evaluation goes on, its scores are kept" in err
    written = json.loads(result.read_text())
    assert written["episodes"] == 3 and written["videos"] == []
    assert not [name for name in os.listdir(videos) if name.endswith(".mp4")]


def test_an_exported_agent_keeps_what_playing_needs(tmp_path, capsys):
    """export_agent.py: the parameters, counters and settings, no optimizer statistics; the
    agent evaluates like its checkpoint; exporting onto the checkpoint itself is refused."""
    from algorithms import export_agent
    path = valid_checkpoint(tmp_path)
    agent = str(tmp_path / "agents" / "cartpole.npz")
    assert export_agent.main([path, agent, "--note", "made by a test"]) == 0
    exported = checkpoint.load(agent)
    assert "opt_g" not in exported.arrays and "opt_g" in checkpoint.load(path).arrays
    assert (exported.arrays["params"] == checkpoint.load(path).arrays["params"]).all()
    assert exported.step == 3000 and exported.meta["weights_only"] is True
    assert exported.meta["note"] == "made by a test"
    code, out, _ = _eval(agent, capsys, "--eval_file", str(tmp_path / "e.json"))
    assert code == 0 and "score over 2 episodes" in out
    assert export_agent.main([path, path]) == 2
    assert "is the checkpoint being exported" in capsys.readouterr().err
    assert checkpoint.load(path).step == 3000


def test_an_environment_without_a_screen_stops_the_recording_not_the_evaluation(
        tmp_path, capsys, display, monkeypatch):
    """--record_video with an environment whose render() gives None: one warning, no video
    file, every episode scored."""
    import gymnasium as gym
    from gymnasium.envs.classic_control import CartPoleEnv

    class Blind(CartPoleEnv):
        def render(self):
            return None

    if "BlindCartPole-v1" not in gym.envs.registry:
        gym.register("BlindCartPole-v1", entry_point=Blind, max_episode_steps=500)
    path = valid_checkpoint(tmp_path, "BlindCartPole-v1")
    videos, result = tmp_path / "videos", tmp_path / "eval.json"
    code = cli.main(["BlindCartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint", path,
                     "--eval_episodes", "3", "--record_video", str(videos), "--eval_file",
                     str(result)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("warning: recording stopped (the environment's render() gave None, not "
                     "an RGB image") == 1
    written = json.loads(result.read_text())
    assert written["episodes"] == 3 and written["videos"] == []
    assert not list(videos.glob("*.mp4"))
    # shown (-v 1, on a virtual screen): nothing to show, said once; every episode scored
    monkeypatch.setenv("DISPLAY", display)
    code = cli.main(["BlindCartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint", path,
                     "--eval_episodes", "2", "-v", "1", "--eval_file", str(result)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("nothing to show (-v); the evaluation goes on") == 1
    assert json.loads(result.read_text())["episodes"] == 2


def test_a_compact_agent_loads_as_the_network_it_was(tmp_path, capsys):
    """export_agent.py --half --rank R: float16 vectors, each dense layer's weights as rank-R
    factors; loading gives back float32 parameters of the same layout, within float16's
    precision where the matrix has rank R, and the best rank-R approximation (its SVD) where it
    has more. The compact CartPole agent evaluates."""
    from algorithms import export_agent
    from algorithms.networks import make_layout
    layout = make_layout("a3c", "NIPS", (84, 84, 4), 6)
    rng = np.random.default_rng(0)
    params = layout.initial_values(rng)
    names = [spec.name for spec in layout.specs]
    dense = layout.split(params)[names.index("dense/w")]
    dense[...] = (rng.normal(size=(2592, 8)) @ rng.normal(size=(8, 256)) * 0.01)   # rank 8
    meta = {"config": {"game": "pong"}, "layout": checkpoint.layout_record(layout),
            "observation_shape": [84, 84, 4], "num_actions": 6, "run_dir": None, "resumes": 0}
    arrays = {"params": params, "opt_g": np.zeros_like(params), "steps": np.array([50, 50]),
              "updates": np.array([5, 5]), "final_epsilons": np.ones(2)}
    source = checkpoint.save(str(tmp_path / "ck"), 100, arrays, meta, keep=3)
    full = os.path.getsize(export_agent.export(source, str(tmp_path / "full.npz")))
    small = tmp_path / "small.npz"
    assert export_agent.main([source, str(small), "--half", "--rank", "8"]) == 0
    assert os.path.getsize(small) < full / 8
    loaded = checkpoint.load(str(small))
    assert loaded.arrays["params"].dtype == np.float32
    assert loaded.arrays["params"].shape == params.shape
    np.testing.assert_allclose(loaded.arrays["params"], params, rtol=2e-3, atol=2e-4)
    # rank 4 of a rank-8 matrix: the truncated SVD, whose error is the dropped singular values
    assert export_agent.main([source, str(tmp_path / "r4.npz"), "--rank", "4"]) == 0
    r4 = layout.split(checkpoint.load(str(tmp_path / "r4.npz")).arrays["params"])
    singular = np.linalg.svd(dense.astype(np.float64), compute_uv=False)
    error = np.linalg.norm(r4[names.index("dense/w")] - dense)
    assert error == pytest.approx(np.sqrt((singular[4:] ** 2).sum()), rel=1e-3)
    np.testing.assert_array_equal(r4[names.index("conv0/w")],
                                  layout.split(params)[names.index("conv0/w")])
    # --int8: U as int8 with a scale per column, within a 127th of each column's largest value
    assert export_agent.main([source, str(tmp_path / "i8.npz"), "--half", "--rank", "8",
                              "--int8"]) == 0
    assert os.path.getsize(tmp_path / "i8.npz") < os.path.getsize(small)
    i8 = layout.split(checkpoint.load(str(tmp_path / "i8.npz")).arrays["params"])
    assert np.abs(i8[names.index("dense/w")] - dense).max() < 0.02 * np.abs(dense).max()
    # a compact file whose factors do not make the layout's shapes is named, not a traceback
    from algorithms.errors import UserError
    with np.load(small) as data:
        broken = {name: data[name] for name in data.files}
    broken["params_v0"] = broken["params_v0"].ravel()
    np.savez(tmp_path / "broken.npz", **broken)
    with pytest.raises(UserError, match="is corrupt or truncated .the factors of dense/w"):
        checkpoint.load(str(tmp_path / "broken.npz"))
    with pytest.raises(SystemExit) as refused:
        export_agent.main([source, str(tmp_path / "bad.npz"), "--rank", "0"])
    assert refused.value.code == 2 and "--rank: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "bad.npz").exists()
    cartpole = str(tmp_path / "cartpole.npz")
    assert export_agent.main([valid_checkpoint(tmp_path), cartpole, "--half"]) == 0
    code, out, _ = _eval(cartpole, capsys, "--eval_file", str(tmp_path / "e.json"))
    assert code == 0 and "score over 2 episodes" in out


def test_an_episode_that_never_ends_is_cut_at_eval_max_steps(tmp_path, capsys):
    """An environment with no time limit whose episodes never end: each evaluation episode is
    cut after --eval_max_steps agent steps, scored as it stands and said to be cut."""
    import gymnasium as gym
    from gymnasium.envs.classic_control import CartPoleEnv

    class Endless(CartPoleEnv):
        def step(self, action):
            observation, reward, _, truncated, info = super().step(action)
            self.state = np.clip(self.state, -0.05, 0.05)   # the pole never falls
            return observation, reward, False, truncated, info

    if "EndlessCartPole-v1" not in gym.envs.registry:
        gym.register("EndlessCartPole-v1", entry_point=Endless)   # and no time limit
    assert gym.spec("EndlessCartPole-v1").max_episode_steps is None
    path = valid_checkpoint(tmp_path, "EndlessCartPole-v1")
    result = tmp_path / "eval.json"
    code = cli.main(["EndlessCartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint",
                     path, "--eval_episodes", "2", "--eval_max_steps", "700", "--eval_file",
                     str(result)])
    out = capsys.readouterr().out
    assert code == 0
    assert "episode 1/2: score 700, 700 steps (cut: --eval_max_steps)" in out
    assert "episode 2/2: score 700, 700 steps (cut: --eval_max_steps)" in out
    written = json.loads(result.read_text())
    assert written["cut_episodes"] == 2 and written["scores"] == [700.0, 700.0]
    assert "score over 2 episodes (2 cut at --eval_max_steps): mean 700.00" in out
    # CartPole's own episodes end before the cap: none is said to be cut
    plain = valid_checkpoint(tmp_path / "plain")
    code, out, _ = _eval(plain, capsys, "--eval_max_steps", "700", "--eval_file",
                         str(tmp_path / "plain.json"))
    assert code == 0 and "cut" not in out
    assert json.loads((tmp_path / "plain.json").read_text())["cut_episodes"] == 0


@pytest.mark.parametrize("ends_at, cap, expected", [
    (5, 5, (5.0, 5, False)),   # ends on the last step it may take: not cut
    (5, 4, (4.0, 4, True)),    # still going at the cap: cut
    (5, 6, (5.0, 5, False)),
    (5, None, (5.0, 5, False)),
])
def test_play_cuts_only_an_episode_still_going_at_the_cap(ends_at, cap, expected):
    """evaluate.play with an environment whose episode ends after ``ends_at`` steps, a reward of
    1 each."""
    class Steps:
        def reset(self):
            self.t = 0
            return np.zeros(1, np.float32)

        def step(self, action):
            self.t += 1
            return np.zeros(1, np.float32), 1.0, self.t == ends_at, {}

    class Agent:
        def start_episode(self):
            pass

        def act(self, states):
            return [0]

    assert evaluate.play(Agent(), Steps(), None, None, cap) == expected


def test_an_eval_file_that_another_running_evaluation_writes_is_refused(tmp_path, capsys):
    """Two evaluations into one --eval_file at once would lose one result: the second is
    refused before any episode while the first runs (its claim, held by a real process, ends
    with it), and then goes ahead."""
    import subprocess
    import sys
    path = valid_checkpoint(tmp_path)
    target = tmp_path / "scores.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom algorithms.files import claim_path\n"
         f"print(claim_path({str(target)!r}), flush=True)\nsys.stdin.readline()\n"],
        cwd=os.path.dirname(os.path.dirname(__file__)), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "True\n"
        code, out, err = _eval(path, capsys, "--eval_file", str(tmp_path / "." / "scores.json"))
        assert code == 2 and "episode 1/" not in out and not target.exists()
        assert err.strip() == f"main.py: error: argument --eval_file: " \
            f"{str(tmp_path / '.' / 'scores.json')!r} is being written by another evaluation " \
            "that is still running; one of the two results would be lost (give another file " \
            "name, or wait for it to end)"
    finally:
        holder.communicate("\n", timeout=30)
    code, _, err = _eval(path, capsys, "--eval_file", str(target))
    assert code == 0, err
    assert json.loads(target.read_text())["scores"]
