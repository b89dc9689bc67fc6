"""What each torso sees of each game: one row per game, one column per ``--arch``, the newest
frame of the observation after ``--steps`` random actions, enlarged without smoothing.

Reproduce with:

    python -m benchmarks.frames_seen beam_rider boxing --archs UNIVERSE_DENSE,NATURE \\
        -o help/images/beam_rider_boxing_seen.png

UNIVERSE torsos read 42x42 frames of the playing field (rows 34-193), NIPS and NATURE 84x84
frames of the whole screen: a game whose ball, shots or score the crop or the scale would lose
shows it here.
"""
from __future__ import annotations

import argparse

import numpy as np

CELL = 336   # pixels per frame in the picture
GAP = 8


def seen(game: str, arch: str, steps: int, seed: int) -> np.ndarray:
    """The newest frame of the observation of ``game`` as ``arch`` reads it, CELL pixels square."""
    import cv2

    from algorithms.environments import atari_frames, make_environment
    env = make_environment("ALE", game, None, seed, frames=atari_frames(arch, lstm=False))
    rng = np.random.default_rng(seed)
    observation = env.reset()
    for _ in range(steps):
        observation, _, done, _ = env.step(int(rng.integers(env.num_actions)))
        if done:
            observation = env.reset()
    env.close()
    return cv2.resize(np.asarray(observation)[..., -1], (CELL, CELL),
                      interpolation=cv2.INTER_NEAREST)


def main() -> None:
    import cv2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("games", nargs="+")
    parser.add_argument("--archs", default="UNIVERSE_DENSE,NATURE")
    parser.add_argument("--steps", type=int, default=300, help="random actions before the picture")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("-o", "--output", default="frames_seen.png")
    args = parser.parse_args()
    archs = args.archs.split(",")
    rows = []
    for game in args.games:
        cells = [seen(game, arch, args.steps, args.seed) for arch in archs]
        gaps = [np.full((CELL, GAP), 255, np.uint8)] * len(cells)
        rows.append(np.hstack([part for pair in zip(cells, gaps) for part in pair][:-1]))
    width = rows[0].shape[1]
    grid = [part for row in rows for part in (row, np.full((GAP, width), 255, np.uint8))][:-1]
    cv2.imwrite(args.output, np.vstack(grid))
    print(f"wrote {args.output}: rows {', '.join(args.games)}; columns {', '.join(archs)}")
    print(f"reproduce: python -m benchmarks.frames_seen {' '.join(args.games)} --archs "
          f"{args.archs} --steps {args.steps} --seed {args.seed} -o {args.output}")


if __name__ == "__main__":
    main()
