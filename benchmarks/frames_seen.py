"""What each torso sees of each game: one row per game, one column per ``--arch``, the newest
frame of the observation after ``--steps`` random actions, enlarged without smoothing.

Reproduce with:

    python -m benchmarks.frames_seen beam_rider boxing --archs UNIVERSE_DENSE,NATURE \\
        -o help/images/beam_rider_boxing_seen.png

UNIVERSE torsos read 42x42 frames of the playing field (rows 34-193), NIPS and NATURE 84x84
frames of the whole screen: a game whose ball, shots or score the crop or the scale would lose
shows it here.

``--contrast`` prints instead, per game and torso, how far the objects stand from the field in
the units the first layer reads: the background (each observation's most common value), the
pixels that differ from it, and their mean distance from it divided by 255 (NIPS, NATURE,
UNIVERSE_PLAIN) or by the observation's standard deviation (UNIVERSE, UNIVERSE_BGSTD):

    python -m benchmarks.frames_seen pong breakout beam_rider boxing --contrast

An arch given as ``ARCH+salient`` reads its frames resized with ``--resample salient``:

    python -m benchmarks.frames_seen beam_rider --archs \
        UNIVERSE_BGSTD,UNIVERSE_BGSTD+salient,UNIVERSE_BGSTD_POOL4 --contrast
"""
from __future__ import annotations

import argparse

import numpy as np

CELL = 336   # pixels per frame in the picture
GAP = 8


def frames_of(arch: str):
    """The frames ``arch`` reads; ``ARCH+salient``: resized with ``--resample salient``."""
    from algorithms.environments import atari_frames
    arch, _, resample = arch.partition("+")
    return atari_frames(arch, lstm=False, resample=resample or None)


def observation_after(game: str, arch: str, steps: int, seed: int) -> np.ndarray:
    """The observation of ``game`` as ``arch`` reads it after ``steps`` random actions."""
    from algorithms.environments import make_environment
    env = make_environment("ALE", game, None, seed, frames=frames_of(arch))
    rng = np.random.default_rng(seed)
    observation = env.reset()
    for _ in range(steps):
        observation, _, done, _ = env.step(int(rng.integers(env.num_actions)))
        if done:
            observation = env.reset()
    env.close()
    return np.asarray(observation)


def seen(game: str, arch: str, steps: int, seed: int) -> np.ndarray:
    """The newest frame of the observation of ``game`` as ``arch`` reads it, CELL pixels square."""
    import cv2
    return cv2.resize(observation_after(game, arch, steps, seed)[..., -1], (CELL, CELL),
                      interpolation=cv2.INTER_NEAREST)


def contrast(observation: np.ndarray) -> dict[str, float]:
    """The background (most common value) of one observation, the share of its pixels that
    differ from it, and their mean distance from it in pixel values, / 255 and / the
    observation's standard deviation."""
    values = observation.astype(np.float64)
    background = float(np.bincount(observation.ravel().astype(np.int64), minlength=256).argmax())
    differ = values != background
    distance = float(np.abs(values[differ] - background).mean()) if differ.any() else 0.0
    spread = float(np.sqrt(values.var() + 1e-2))
    return {"background": background, "objects": float(differ.mean()), "distance": distance,
            "scaled": distance / 255.0, "standardised": distance / spread, "spread": spread}


def main() -> None:
    import cv2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("games", nargs="+")
    parser.add_argument("--archs", default="UNIVERSE_BGSTD,NATURE")
    parser.add_argument("--steps", type=int, default=300, help="random actions before the picture")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("-o", "--output", default="frames_seen.png")
    parser.add_argument("--contrast", action="store_true",
                        help="print how far the objects stand from the field, no picture")
    args = parser.parse_args()
    archs = args.archs.split(",")
    if args.contrast:
        print("| game | frames | background | pixels off it | their distance from it | "
              "/ 255 | / the spread (std) |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for game in args.games:
            for arch in archs:
                c = contrast(observation_after(game, arch, args.steps, args.seed))
                seen_frames = frames_of(arch)
                frames = (f"{seen_frames.size}x{seen_frames.size} "
                          f"{'field' if seen_frames.crop else 'screen'}"
                          f"{', salient' if seen_frames.resample == 'salient' else ''}")
                print(f"| {game} | {frames} | {c['background']:.0f} | {c['objects']:.1%} | "
                      f"{c['distance']:.1f} | {c['scaled']:.2f} | {c['standardised']:.2f} "
                      f"(std {c['spread']:.1f}) |")
        print(f"reproduce: python -m benchmarks.frames_seen {' '.join(args.games)} --archs "
              f"{args.archs} --steps {args.steps} --seed {args.seed} --contrast")
        return
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
