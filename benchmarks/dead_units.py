"""Which units of a trained Atari torso still see anything: per layer, the share of channels
(convolutions) or units (the dense layer) whose activation is the same in every position of
every observation of a few hundred steps of random play. A ReLU unit that is never active has
stopped learning for good ("dead"); a torso whose first layer is all dead is blind, and its
policy and value are the same in every state.

Reproduce with (checkpoints of the runs in help/RESULTS.md):

    python -m benchmarks.dead_units \\
        /work/runs/pong_nature_s1/nature/checkpoints/checkpoint-000003000160.npz \\
        /work/runs/breakout_ablation/nature-single-life/checkpoints/checkpoint-000002000160.npz

It plays the checkpoint's own game with its own frames (``--arch``, ``--screen_size``,
``--crop``), ``--steps`` random actions, and passes every observation through the torso.
"""
from __future__ import annotations

import argparse

import numpy as np


def observations(config, steps: int, seed: int) -> tuple[np.ndarray, object]:
    from algorithms.environments import atari_frames, make_environment
    env = make_environment(config.env, config.game, config.rom_path, seed,
                           frames=atari_frames(config.arch, config.lstm, config.screen_size,
                                               config.crop, config.resample))
    rng = np.random.default_rng(seed)
    seen = [env.reset()]
    for _ in range(steps):
        observation, _, done, _ = env.step(int(rng.integers(env.num_actions)))
        seen.append(env.reset() if done else observation)
    env.close()
    return np.stack(seen), env.spec


def constant_shares(path: str, steps: int, seed: int) -> tuple[int, list[tuple[str, float]]]:
    """(the checkpoint's step, [(layer, share of its channels or units that never vary)])."""
    from algorithms import checkpoint
    from algorithms.config import Config
    from algorithms.networks import conv_torso, layout_for, named
    from algorithms.tfsetup import configure_tensorflow
    configure_tensorflow()
    import tensorflow as tf
    ckpt = checkpoint.load(path)
    config = Config.from_dict(ckpt.config)
    seen, spec = observations(config, steps, seed)
    layout = layout_for(config, spec)
    params = named(layout, [tf.constant(a) for a in
                            layout.split(ckpt.arrays["params"].astype(np.float32))])
    layers: list = []
    conv_torso(params, tf.constant(seen), layers)
    shares = []
    for name, activations in layers:
        a = activations.numpy()
        a = a.reshape(len(a), -1, a.shape[-1]) if a.ndim == 4 else a[:, None, :]
        spread = a.max(axis=(0, 1)) - a.min(axis=(0, 1))
        shares.append((name, float(np.mean(spread <= 1e-6))))
    return ckpt.step, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--steps", type=int, default=600, help="random steps of play")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for path in args.checkpoints:
        step, shares = constant_shares(path, args.steps, args.seed)
        print(f"{path} (step {step:,}): constant " + ", ".join(
            f"{name} {share:.0%}" for name, share in shares), flush=True)


if __name__ == "__main__":
    main()
