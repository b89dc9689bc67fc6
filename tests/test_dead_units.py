"""benchmarks/dead_units.py: the share of each layer's channels that never vary over real
observations of the checkpoint's game, for a torso built by hand to be alive or dead."""
import numpy as np

from algorithms import checkpoint, config
from algorithms.networks import make_layout
from benchmarks.dead_units import constant_shares


def _pong_nature(tmp_path, conv0_bias: float | None) -> str:
    args = config.parse_args(["pong", "--arch", "NATURE", "-n", "1", "--seed", "1",
                              "--summary_dir", str(tmp_path / "s"),
                              "--checkpoint_dir", str(tmp_path / "ck")])
    config.resolve_defaults(args, continuous=False, atari=True)
    settings = config.Config.from_namespace(args)
    layout = make_layout("a3c", "NATURE", (84, 84, 4), 6)
    params = layout.initial_values(np.random.default_rng(0))
    if conv0_bias is not None:   # every conv0 ReLU off for any screen in [0, 1]
        parts = layout.split(params)
        names = [spec.name for spec in layout.specs]
        parts[names.index("conv0/b")][:] = conv0_bias
        params = np.concatenate([p.ravel() for p in parts])
    arrays = {"params": params, "opt_g": np.zeros_like(params), "steps": np.array([100]),
              "updates": np.array([5]), "final_epsilons": np.ones(1),
              "target_version": np.array(0, np.int64)}
    meta = {"config": settings.to_dict(), "layout": checkpoint.layout_record(layout),
            "observation_shape": [84, 84, 4], "num_actions": 6, "run_dir": None, "resumes": 0}
    return checkpoint.save(str(tmp_path / "ck"), 100, arrays, meta, keep=3)


def test_a_fresh_torso_varies_and_a_dead_first_layer_makes_it_blind(tmp_path):
    step, alive = constant_shares(_pong_nature(tmp_path / "alive", None), steps=40, seed=1)
    assert step == 100 and [name for name, _ in alive] == ["conv0", "conv1", "conv2", "dense"]
    # freshly initialised, most channels of every layer vary with the screen; about a quarter
    # of conv0's do not: on Pong's grey field (0.34 after /255) a channel whose weights sum
    # below zero is off everywhere but on the ball and paddles, and some of those never light
    shares = dict(alive)
    assert all(0.0 < share < 0.5 for share in shares.values()), shares
    _, dead = constant_shares(_pong_nature(tmp_path / "dead", -1000.0), steps=40, seed=1)
    # conv0 outputs 0 everywhere, so every later layer gets one input: all constant
    assert dead == [("conv0", 1.0), ("conv1", 1.0), ("conv2", 1.0), ("dense", 1.0)]
