"""Throughput of the trainer against the environment alone, measured in one run.

(a) environment only: N processes step Pong with random actions through the same preprocessing
    (action repeat 4, max-pool, grayscale, 84x84, 4-frame stack) as training;
(b) each trainer with N actor-learners on the same game, with the paper's settings
    (``--preset paper``: the figures compare with those measured before the tuned defaults):
    A3C (with 1, 4, 8 and 16 environments per actor-learner, ``a3c-k<K>``), A3C LSTM,
    one-step Q-learning, one-step Sarsa and n-step Q-learning (the value-based ones with
    epsilon already at its final value, ``-ea 1``, so that they act greedily as often as they
    do in the long run); A3C with today's defaults (``a3c-tuned``: the UNIVERSE_BGSTD network
    on 42x42 frames made by salient 2x2 blocks, Adam, t_max 20, 16 // N environments per
    actor-learner; ``a3c-tuned-k1``
    with one; ``a3c-tuned-udense`` with UNIVERSE_DENSE, the default before 2026-12-05, which
    does not look for each frame's background; ``a3c-tuned-universe`` with the UNIVERSE
    network, no dense layer;
    ``a3c-tuned-84``, UNIVERSE_DENSE on 84x84 frames of the field; ``a3c-tuned-nature`` with
    NATURE; ``a3c-tuned-bgstd-84``, ``a3c-tuned-s4-84`` and ``a3c-tuned-pool-84`` (``-pool4-84``),
    UNIVERSE_BGSTD, UNIVERSE_BGSTD_S4 and UNIVERSE_BGSTD_POOL (POOL4) on 84x84 frames;
    ``a3c-tuned-shallow``, UNIVERSE_BGSTD_SHALLOW on 42x42 frames (salient since 2026-12-06,
    area before); ``a3c-tuned-salient``, the
    defaults with ``--resample salient`` given; ``a3c-tuned-area``, with ``--resample area``,
    the default before 2026-12-06; ``a3c-tuned-lstm``, A3C LSTM with today's defaults);
    ``a3c-k8-eigen`` and ``a3c-tuned-eigen``, as ``a3c-k8`` and ``a3c-tuned`` but
    with TensorFlow's Eigen kernels forced (the trainer takes oneDNN's for batched Atari
    learners, Eigen's for one environment); and A3Cs with their actor-learners as Ray actors
    and the parameters on a parameter server (``a3c-ray``, ``a3c-tuned-ray``,
    ``a3c-tuned-k1-ray``; a Ray instance started on this machine).

Prints both rates (agent steps/s, summed over processes), their ratio, and where an
actor-learner's time goes. With ``--gymnasium`` the environment is also measured through
Gymnasium's ``AtariPreprocessing`` (the baseline the throughput targets were first set
against; the trainer's own environment class does the same work faster), and the ratios to
that rate are printed too. Reproduce with:

    python -m benchmarks.throughput                  # N = CPU cores, Pong, NIPS network
    python -m benchmarks.throughput -n 2 --seconds 20 --algorithms a3c,a3c-k4,a3c-k8,a3c-k16
    python -m benchmarks.throughput -n 16 --seconds 60 --arch NATURE --algorithms a3c
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from unittest import mock

from algorithms import config, environments
from algorithms.tfsetup import ONEDNN

PHASES = ("environment", "forward", "learn", "optimizer", "sync")


def _env_worker(env_type: str, game: str, seed: int, seconds: float, out) -> None:
    import numpy as np
    env = environments.make_environment(env_type, game, None, seed)
    rng = np.random.default_rng(seed)
    env.reset()
    if env_type == "GYM":   # Gymnasium's wrappers alone, without the trainer's conversion
        wrapped = env.env

        def step(action: int) -> bool:
            return any(wrapped.step(action)[2:4])
    else:
        def step(action: int) -> bool:
            return env.step(action)[2]
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        steps += 1
        if step(int(rng.integers(env.num_actions))):
            env.reset()
    out.put(steps / (time.perf_counter() - start))


def gymnasium_id(game: str) -> str:
    """ALE's name of a game in Gymnasium: space_invaders -> ALE/SpaceInvaders-v5."""
    return "ALE/" + "".join(word.title()
                            for word in environments.normalise_game(game).split("_")) + "-v5"


def environment_rate(game: str, workers: int, seconds: float, env_type: str = "ALE") -> float:
    """Agent steps/s of ``workers`` processes stepping the game with random actions: through
    the trainer's own ``AtariEnvironment`` (``ALE``), or through Gymnasium's
    ``AtariPreprocessing`` and ``FrameStackObservation`` (``GYM``), the same preprocessing."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    game = gymnasium_id(game) if env_type == "GYM" else game
    procs = [ctx.Process(target=_env_worker, args=(env_type, game, i, seconds, out))
             for i in range(workers)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


# today's defaults: the UNIVERSE_BGSTD network, Adam, t_max 20, 16 // N environments per
# actor-learner, a lost life terminal; a3c-tuned-udense: the UNIVERSE_DENSE network of the
# defaults before 2026-12-05; a3c-tuned-universe: the UNIVERSE network of those before
# 2026-12-04 (no dense layer)
TUNED = ["--alg_type", "a3c", "--preset", "tuned", "--arch", "UNIVERSE_BGSTD"]
VALUE_TUNED = ["--preset", "tuned", "--arch", "UNIVERSE_BGSTD", "-ea", "1"]
VARIANTS = {
    "a3c": ["--alg_type", "a3c"],
    "a3c-lstm": ["--alg_type", "a3c", "--lstm", "true"],
    "a3c-k4": ["--alg_type", "a3c", "--envs_per_actor", "4"],
    "a3c-k8": ["--alg_type", "a3c", "--envs_per_actor", "8"],
    "a3c-k16": ["--alg_type", "a3c", "--envs_per_actor", "16"],
    "one-step-q": ["--alg_type", "q", "--max_local_steps", "1", "-ea", "1"],
    "one-step-sarsa": ["--alg_type", "sarsa", "--max_local_steps", "1", "-ea", "1"],
    "n-step-q": ["--alg_type", "q", "--max_local_steps", "5", "-ea", "1"],
    "a3c-tuned": TUNED,
    "a3c-tuned-k1": TUNED + ["--envs_per_actor", "1"],
    # the defaults before 2026-12-05 and 2026-12-04, on the area-resized frames they read
    "a3c-tuned-udense": TUNED + ["--arch", "UNIVERSE_DENSE", "--resample", "area"],
    "a3c-tuned-universe": ["--alg_type", "a3c", "--preset", "tuned", "--arch", "UNIVERSE",
                           "--resample", "area"],
    # the torsos measured on Pong and Breakout (help/RESULTS.md): UNIVERSE_DENSE on 84x84
    # frames of the field, and NATURE
    "a3c-tuned-84": TUNED + ["--arch", "UNIVERSE_DENSE", "--screen_size", "84"],
    "a3c-tuned-nature": TUNED + ["--arch", "NATURE"],
    # UNIVERSE_BGSTD on 84x84 frames, and UNIVERSE_BGSTD_S4 (4x4 patches first) on them
    "a3c-tuned-bgstd-84": TUNED + ["--screen_size", "84"],
    "a3c-tuned-s4-84": TUNED + ["--arch", "UNIVERSE_BGSTD_S4", "--screen_size", "84"],
    # a max-pool after the first of them (84 -> 42 -> 21), and three convs on 42x42 frames
    "a3c-tuned-pool-84": TUNED + ["--arch", "UNIVERSE_BGSTD_POOL", "--screen_size", "84"],
    "a3c-tuned-pool4-84": TUNED + ["--arch", "UNIVERSE_BGSTD_POOL4", "--screen_size", "84"],
    "a3c-tuned-shallow": TUNED + ["--arch", "UNIVERSE_BGSTD_SHALLOW"],
    # 42x42 frames resampled by salient 2x2 blocks of the 84x84 frame (today's default, named),
    # and resized by area (the default before 2026-12-06)
    "a3c-tuned-salient": TUNED + ["--resample", "salient"],
    "a3c-tuned-area": TUNED + ["--resample", "area"],
    # A3C LSTM with today's defaults: one salient frame a step, 256 cells after the dense layer
    "a3c-tuned-lstm": TUNED + ["--lstm", "true"],
    "a3c-k8-eigen": ["--alg_type", "a3c", "--envs_per_actor", "8"],
    "a3c-tuned-eigen": TUNED,
    "a3c-ray": ["--alg_type", "a3c", "--cluster", "ray"],
    "a3c-tuned-ray": TUNED + ["--cluster", "ray"],
    "a3c-tuned-k1-ray": TUNED + ["--envs_per_actor", "1", "--cluster", "ray"],
    # the test process's cost: a3c-tuned without it, and with a game every 20,000 steps (five
    # times as often as the default --eval_interval, so that a short measurement holds games)
    "a3c-tuned-no-test": TUNED + ["--eval_interval", "0"],
    "a3c-tuned-test-20k": TUNED + ["--eval_interval", "20000"],
    # the value-based methods with today's defaults (batched, UNIVERSE, Adam), epsilon at its
    # final value as in the long run
    "n-step-q-tuned": VALUE_TUNED + ["--alg_type", "q", "--max_local_steps", "5"],
    "one-step-q-tuned": VALUE_TUNED + ["--alg_type", "q", "--max_local_steps", "1"],
    "one-step-sarsa-tuned": VALUE_TUNED + ["--alg_type", "sarsa", "--max_local_steps", "1"],
}
# Variants that force TensorFlow's kernel library (TF_ENABLE_ONEDNN_OPTS) where the trainer would
# choose by K (oneDNN for batched Atari learners, Eigen otherwise): "0" is Eigen.
FORCED_KERNELS = {"a3c-k8-eigen": "0", "a3c-tuned-eigen": "0"}
# The Ray backend's share of *sync* and *optimizer*: waiting for the parameters, sending the
# gradient, waiting for gradients in flight (algorithms/run/ray.py).
RAY_PHASES = ("fetch", "push", "wait")


def trainer_rate(game: str, workers: int, steps: int, arch: str, flags: list[str]):
    from algorithms.run.training import Training
    scratch = tempfile.mkdtemp(prefix="throughput_benchmark_")
    args = config.parse_args([game, "-n", str(workers), "--max_global_steps", str(steps),
                              "--preset", "paper", "--arch", arch, "--quiet", "--seed", "1",
                              "--summary_dir", scratch, "--checkpoint_dir",
                              os.path.join(scratch, "checkpoints"), *flags])
    probe = environments.make_environment(args.env, args.game, None, 0)
    config.resolve_defaults(args, probe.spec.continuous, atari=True)
    frames = environments.atari_frames(args.arch, args.lstm, args.screen_size, args.crop,
                                       args.resample)
    spec = environments.with_frames(probe.spec, frames)
    training = Training(config.Config.from_namespace(args), spec)
    code = training.run()
    timings = training.supervisor.timings
    if code != 0 or len(timings) != workers:
        raise SystemExit(f"trainer failed (exit code {code})")
    shutil.rmtree(scratch, ignore_errors=True)
    rate = sum(t["steps"] / t["total"] for t in timings.values())
    total_steps = sum(t["steps"] for t in timings.values())
    breakdown = {phase: 1e3 * sum(t.get(phase, 0.0) for t in timings.values()) / total_steps
                 for phase in PHASES + RAY_PHASES}
    breakdown["total"] = 1e3 * sum(t["total"] for t in timings.values()) / total_steps
    return rate, breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--workers", type=int, default=os.cpu_count())
    parser.add_argument("--game", default="pong")
    parser.add_argument("--arch", default="NIPS")
    parser.add_argument("--algorithms", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}; one named twice is "
                             "measured twice, in the order given (alternate two to compare "
                             "them on a noisy machine)")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="duration of the environment-only measurement; each trainer runs "
                             "for about as long")
    parser.add_argument("--gymnasium", action="store_true",
                        help="also measure the environment through Gymnasium's wrappers and "
                             "give the ratios to that rate as well")
    args = parser.parse_args()
    variants = args.algorithms.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown algorithm(s) {', '.join(sorted(unknown))}")

    env_rate = environment_rate(args.game, args.workers, args.seconds)
    gym_rate = environment_rate(args.game, args.workers, args.seconds, "GYM") \
        if args.gymnasium else None
    results = {}
    for index, name in enumerate(variants):
        guess = {"a3c": 0.3, "a3c-lstm": 0.15}.get(name, 0.5)   # of the environment's rate
        steps = int(env_rate * guess * args.seconds)
        forced = {ONEDNN: FORCED_KERNELS[name]} if name in FORCED_KERNELS else {}
        with mock.patch.dict(os.environ, forced):   # the workers inherit it; restored after
            repeat = variants[:index].count(name) + 1
            label = name if variants.count(name) == 1 else f"{name}#{repeat}"
            results[label] = trainer_rate(args.game, args.workers, steps, args.arch,
                                          VARIANTS[name])

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.game}, {args.workers} processes, {args.arch}")
    gym_column = f" {'ratio to Gymnasium':>19}" if gym_rate else ""
    print(f"{'':<16} {'steps/s':>9} {'frames/s':>9} {'ratio':>7}{gym_column}")
    print(f"{'environment':<16} {env_rate:9.0f} {4 * env_rate:9.0f} {1:7.3f}"
          + (f" {env_rate / gym_rate:19.3f}" if gym_rate else ""))
    if gym_rate:
        print(f"{'env (Gymnasium)':<16} {gym_rate:9.0f} {4 * gym_rate:9.0f} "
              f"{gym_rate / env_rate:7.3f} {1:19.3f}")
    for name, (rate, _) in results.items():
        print(f"{name:<16} {rate:9.0f} {4 * rate:9.0f} {rate / env_rate:7.3f}"
              + (f" {rate / gym_rate:19.3f}" if gym_rate else ""))
    print("\nper agent step, per actor-learner (ms):")
    print(f"{'':<16}" + "".join(f"{phase:>12}" for phase in PHASES + ("total",)))
    for name, (_, breakdown) in results.items():
        print(f"{name:<16}" + "".join(f"{breakdown[p]:12.3f}" for p in PHASES + ("total",)))
    on_ray = [name for name in results if "--cluster" in VARIANTS[name.partition("#")[0]]]
    if on_ray:
        print("\nof which the Ray backend's (ms): fetch (in sync), push and wait (in optimizer)")
        for name in on_ray:
            print(f"{name:<16}" + "".join(f"{results[name][1][p]:12.3f}" for p in RAY_PHASES))
    print("\nreproduce: python -m benchmarks.throughput " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
