"""--envs_per_actor K > 1 through the real CLI: learning, episode attribution, resuming with
another K. (The batched pieces are unit-tested by hand in test_agents.py and test_returns.py.)"""
import collections
import os

import numpy as np
import pytest

from algorithms import checkpoint
from runs import assert_nothing_left, read_episodes, trailing_means, train_until

# Each test here trains for many seconds.
pytestmark = pytest.mark.slow


def test_a3c_with_eight_environments_per_actor_learns_cartpole(run_cli, tmp_path):
    """-n 2 --envs_per_actor 8: the mean of the last 20 episodes reaches 400 within 300,000
    global steps (measured: 30,000 and 42,000 steps for seeds 7 and 11, against 19,000-33,000
    with one environment each), with the default learning rate; every environment of every
    actor-learner reports its episodes."""
    budget = 300_000
    run, returns = train_until(
        run_cli, tmp_path, ["CartPole-v1", "--env", "GYM", "-n", "2", "--envs_per_actor", "8",
                            "--max_global_steps", str(budget), "--stop_return", "400"],
        seeds=(7, 11), good=lambda r: trailing_means(r).max() >= 400, timeout=400)
    assert "reached --stop_return 400 at step" in run.stdout
    episodes = read_episodes(run.run_dir())
    played = collections.Counter((e["actor"], e["env"]) for e in episodes)
    assert set(played) == {(str(a), str(k)) for a in range(2) for k in range(8)}
    assert returns[:20].mean() < 100
    assert int(episodes[-1]["global_step"]) < budget
    assert_nothing_left(run)


def test_q_learning_with_eight_environments_per_actor_learns_cartpole(run_cli, tmp_path):
    """The value-based methods learn as with one environment (default flags, as in
    test_value_based_cartpole_learns): one-step Q reached 300 at 38,000 global steps for seed 1
    (n-step Q at 64,000), within the budget of one environment."""
    budget, t_max = 200_000, 1
    run, returns = train_until(
        run_cli, tmp_path, ["CartPole-v1", "--env", "GYM", "-n", "2", "--envs_per_actor", "8",
                            "--alg_type", "q", "--max_local_steps", str(t_max),
                            "--max_global_steps", str(budget), "--stop_return", "300"],
        seeds=(1, 3), good=lambda r: trailing_means(r).max() >= 300, timeout=400)
    assert "reached --stop_return 300 at step" in run.stdout
    assert returns[:20].mean() < 100
    assert_nothing_left(run)


def test_a_run_resumes_with_another_number_of_environments(run_cli, tmp_path):
    """Nothing in a checkpoint depends on K: a run of K = 2 resumes with K = 3, its global step
    going on from the checkpoint's, its episodes.csv keeping the earlier episodes."""
    common = ["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "5", "--quiet",
              "--summary_dir", str(tmp_path), "--checkpoint_dir", str(tmp_path / "ck")]
    first = run_cli(common + ["--envs_per_actor", "2", "--max_global_steps", "2000"],
                    timeout=120)
    assert first.returncode == 0, first.stderr
    second = run_cli(common + ["--envs_per_actor", "3", "--max_global_steps", "5000",
                               "--resume"], timeout=120)
    assert second.returncode == 0, second.stderr
    assert second.run_dir() == first.run_dir()
    latest = checkpoint.load(checkpoint.latest(str(tmp_path / "ck")))
    assert latest.step >= 5000 and latest.config["envs_per_actor"] == 3
    episodes = read_episodes(first.run_dir())
    steps = np.array([int(e["global_step"]) for e in episodes])
    envs = {e["env"] for e in episodes if int(e["global_step"]) > 2100}
    assert (steps <= 2100).any() and (steps > 2100).any()
    assert envs == {"0", "1", "2"}
    assert os.path.isdir(first.run_dir())
