"""Stop and resume with the real CLI: training goes on from the saved step with the saved
schedules and exploration rates; bad resumes are refused with one line and change nothing."""
import json
import os
import shutil

import numpy as np
import pytest

from algorithms import checkpoint
from runs import assert_nothing_left, read_episodes, read_scalars

LR, LR_STEPS, EPS_STEPS = 3e-3, 20_000, 10_000


# Each test here trains or runs real processes for many seconds.
pytestmark = pytest.mark.slow


def _base(tmp_path):
    return ["CartPole-v1", "--env", "GYM", "-n", "2", "--alg_type", "q", "--seed", "5",
            "--quiet", "-lra", str(LR_STEPS), "-ea", str(EPS_STEPS), "--q_target_update_steps",
            "500", "--summary_dir", str(tmp_path / "logs"), "--checkpoint_interval", "2000"]


def test_resume_continues_where_training_stopped(run_cli, tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    first = run_cli(_base(tmp_path) + ["--max_global_steps", "6000", "--checkpoint_dir",
                                       str(ckpt_dir)], timeout=200)
    assert first.returncode == 0, first.stderr
    saved = checkpoint.load(checkpoint.latest(str(ckpt_dir)))
    assert first.checkpoints()[-1] == saved.path and "final checkpoint" in first.stdout
    assert len(checkpoint.list_checkpoints(str(ckpt_dir))) == 3   # 2000, 4000, final; keep 3
    step = saved.step
    assert 6000 <= step < 6000 + 2 * 5
    assert int(saved.arrays["steps"].sum()) == step
    run_dir = first.run_dir()
    episodes_before = len(read_episodes(run_dir))
    before = sorted(os.listdir(ckpt_dir))

    # Without --resume, an occupied checkpoint folder is refused and left as it was.
    again = run_cli(_base(tmp_path) + ["--max_global_steps", "6000", "--checkpoint_dir",
                                       str(ckpt_dir)], timeout=60)
    assert again.returncode == 2 and "--resume" in again.stderr
    assert again.stderr.count("\n") == 1
    assert sorted(os.listdir(ckpt_dir)) == before

    resumed = run_cli(["CartPole-v1", "--env", "GYM", "--resume", "--checkpoint_dir",
                       str(ckpt_dir), "--max_global_steps", "12000"], timeout=200)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {saved.path} at step {step:,} (same run directory)" in resumed.stdout
    assert resumed.run_dir() == run_dir
    # the saved hyperparameters and exploration rates, except what the command line changed
    record = json.load(open(os.path.join(run_dir, "config.json")))
    assert record["config"]["seed"] == 5 and record["config"]["alg_type"] == "q"
    assert record["config"]["max_global_steps"] == 12000
    assert record["config"]["final_epsilons"] == list(saved.arrays["final_epsilons"])
    assert record["resumed"][0]["global_step"] == step

    # Training went on from the saved step: every new episode ends after it...
    episodes = read_episodes(run_dir)
    new = episodes[episodes_before:]
    assert new and all(int(e["global_step"]) > step for e in new)
    # ... with the learning rate and epsilon where their schedules were at that step.
    for actor in (0, 1):
        scalars = read_scalars(os.path.join(run_dir, f"actor_{actor}"))
        later = [(s, v) for s, v in scalars["train/learning_rate"] if s > step]
        assert later, "no learning-rate summary after the resume"
        s, lr = later[0]
        assert lr == pytest.approx(LR * (1 - s / LR_STEPS), rel=1e-4)
        final = saved.arrays["final_epsilons"][actor]
        eps = [(s, v) for s, v in scalars["explore/epsilon"] if s > step]
        s, value = eps[0]
        # epsilon is set when a segment starts and logged after its update, by which time the
        # other actor-learner may have moved the global step on: it is the schedule's value at
        # some step between the resume and s (and far from a restart's 1.0)
        latest, earliest = (1 - (1 - final) * min(1.0, at / EPS_STEPS) for at in (s, step))
        assert latest - 2e-3 <= value <= earliest + 2e-3
    latest = checkpoint.load(checkpoint.latest(str(ckpt_dir)))
    assert latest.step >= 12000 and latest.meta["resumes"] == 1
    assert np.array_equal(latest.arrays["final_epsilons"], saved.arrays["final_epsilons"])
    assert_nothing_left(resumed)

    # Evaluation of the value-based checkpoint: epsilon-greedy with 0.05, a JSON of the scores.
    evaluated = run_cli(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint",
                         latest.path, "--eval_episodes", "3"], timeout=120)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.load(open(os.path.join(ckpt_dir, f"eval-{latest.step}.json")))
    assert result["policy"] == "epsilon-greedy, epsilon 0.05" and result["episodes"] == 3
    assert result["global_step"] == latest.step and len(result["scores"]) == 3
    assert checkpoint.load(latest.path).arrays["params"].tobytes() \
        == latest.arrays["params"].tobytes(), "evaluation must not change the checkpoint"
    greedy = run_cli(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint",
                      latest.path, "--eval_episodes", "1", "--greedy", "--eval_file",
                      str(tmp_path / "greedy.json")], timeout=120)   # --greedy: epsilon 0
    assert greedy.returncode == 0, greedy.stderr
    assert json.load(open(tmp_path / "greedy.json"))["policy"] == "greedy"

    _bad_resumes(run_cli, tmp_path, latest)


def _bad_resumes(run_cli, tmp_path, good):
    """Every refused resume: one line naming the problem, exit code 2, nothing created."""
    logs = tmp_path / "logs"
    runs_before = sorted(p for p in logs.rglob("*") if p.is_dir())
    corrupt_dir = tmp_path / "corrupt"
    corrupt_dir.mkdir()
    data = open(good.path, "rb").read()
    truncated = corrupt_dir / os.path.basename(good.path)
    truncated.write_bytes(data[: len(data) // 3])
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--alg_type", "sarsa", "--resume", "--checkpoint", good.path],
         "trained with alg_type 'q', not 'sarsa'"),
        (["--resume", "--checkpoint_dir", str(corrupt_dir)], f"{truncated}' is corrupt"),
        (["--resume", "--checkpoint_dir", str(empty)], "no checkpoint in"),
        (["--resume", "--checkpoint", good.path, "--max_global_steps", "100"],
         "raise --max_global_steps"),
        (["--checkpoint", good.path], "--checkpoint: only used with --resume"),
        (["--mode", "eval", "--checkpoint", str(tmp_path / "missing.npz")], "does not exist"),
    ]
    for args, message in cases:
        run = run_cli(["CartPole-v1", "--env", "GYM", "--summary_dir", str(logs), *args],
                      timeout=60)

        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert message in run.stderr and run.stderr.count("\n") == 1, (args, run.stderr)
        assert "Traceback" not in run.stderr
    assert sorted(p for p in logs.rglob("*") if p.is_dir()) == runs_before
    assert os.listdir(corrupt_dir) == [truncated.name] and os.listdir(empty) == []
    shutil.rmtree(corrupt_dir)
