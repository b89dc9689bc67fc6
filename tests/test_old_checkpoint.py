"""A checkpoint in the form written before the package, typed configuration and parameter store
(commit 13668d4: CartPole-v1, A3C, 2 actor-learners, 2,008 steps) still loads, resumes and
evaluates.

Its metadata is the one that commit wrote, kept as text (``fixtures/...meta.json``: the old
configuration dictionary, without the keys added since, with ``lr_annealing_steps`` 80 M); the
arrays are made here with the names, dtypes and shapes it wrote, as that commit's writer did
(``np.savez`` of the arrays and the metadata as a JSON string), so no binary file is kept."""
import json
import os

import numpy as np
import pytest

from algorithms import checkpoint
from algorithms.config import Config
from algorithms.environments import make_environment
from algorithms.networks import make_layout
from conftest import ROOT

META = os.path.join(ROOT, "tests", "fixtures", "checkpoint-before-package-cartpole-a3c.meta.json")


def old_checkpoint(folder) -> str:
    """Write the old checkpoint into ``folder``; its path."""
    with open(META) as f:
        meta = json.load(f)
    size = sum(int(np.prod(shape)) for _, shape in meta["layout"])
    rng = np.random.default_rng(5)
    arrays = {"params": (0.1 * rng.standard_normal(size)).astype(np.float32),
              "opt_g": rng.random(size).astype(np.float32),
              "steps": np.array([995, 1013], np.int64), "updates": np.zeros(2, np.int64),
              "final_epsilons": np.ones(2), "target_version": np.array(0, np.int64)}
    path = os.path.join(str(folder), "checkpoint-000000002008.npz")
    np.savez(path, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return path


def test_an_old_checkpoint_loads_into_todays_configuration_and_layout(tmp_path):
    ckpt = checkpoint.load(old_checkpoint(tmp_path))
    assert ckpt.step == 2008
    config = Config.from_dict(ckpt.config)
    assert (config.game, config.alg_type, config.num_actor_learners, config.seed) == \
        ("CartPole-v1", "a3c", 2, 5)
    assert config.initial_lr == 3e-3 and config.clip_norm_type == "local"
    assert config.envs_per_actor == 1   # saved before the flag existed: one environment
    env = make_environment("GYM", "CartPole-v1", None, 0)
    spec = env.spec
    env.close()
    layout = make_layout(config.alg_type, config.arch, spec.observation_shape, spec.num_actions)
    checkpoint.check_compatible(ckpt, ckpt.config, checkpoint.layout_record(layout),
                                spec.observation_shape, spec.num_actions)
    assert ckpt.arrays["params"].shape == (layout.size,)
    assert np.isfinite(ckpt.arrays["params"]).all()


@pytest.mark.slow
def test_an_old_checkpoint_resumes_and_evaluates(run_cli, tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    old_checkpoint(folder)
    run = run_cli(["CartPole-v1", "--env", "GYM", "--resume", "--checkpoint_dir", str(folder),
                   "--summary_dir", str(tmp_path / "s"), "--max_global_steps", "3000",
                   "--quiet"], timeout=180)
    assert run.returncode == 0, run.stderr
    assert "resumed from" in run.stdout and "at step 2,008" in run.stdout
    latest = checkpoint.load(checkpoint.latest(str(folder)))
    assert latest.step >= 3000
    assert Config.from_dict(latest.config).seed == 5   # the old run's settings went on
    evaluation = run_cli(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint_dir",
                          str(folder), "--eval_episodes", "2", "--eval_file",
                          str(tmp_path / "eval.json")], timeout=120)
    assert evaluation.returncode == 0, evaluation.stderr
    with open(tmp_path / "eval.json") as f:
        assert json.load(f)["episodes"] == 2
