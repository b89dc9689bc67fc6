"""Throughput of the trainer against the environment alone, measured in one run.

(a) environment only: N processes step Pong with random actions through the same preprocessing
    (action repeat 4, max-pool, grayscale, 84x84, 4-frame stack) as training;
(b) the A3C trainer with N actor-learners on the same game.

Prints both rates (agent steps/s, summed over processes), their ratio, and where an
actor-learner's time goes. Reproduce with:

    python benchmarks/throughput.py                  # N = CPU cores, Pong, NIPS network
    python benchmarks/throughput.py -n 16 --seconds 60 --arch NATURE
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "algorithms"))

import config  # noqa: E402
import environments  # noqa: E402

PHASES = ("environment", "forward", "learn", "optimizer", "sync")


def _env_worker(game: str, seed: int, seconds: float, out) -> None:
    import numpy as np
    env = environments.make_environment("ALE", game, None, seed)
    rng = np.random.default_rng(seed)
    env.reset()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, done, _ = env.step(int(rng.integers(env.num_actions)))
        steps += 1
        if done:
            env.reset()
    out.put(steps / (time.perf_counter() - start))


def environment_rate(game: str, workers: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_env_worker, args=(game, i, seconds, out)) for i in range(workers)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def trainer_rate(game: str, workers: int, steps: int, arch: str, alg: str, extra: list[str]):
    from launcher import Trainer
    args = config.parse_args([game, "-n", str(workers), "--max_global_steps", str(steps),
                              "--arch", arch, "--alg_type", alg, "--quiet", "--seed", "1",
                              "--summary_dir", "/tmp/throughput_benchmark", *extra])
    probe = environments.make_environment(args.env, args.game, None, 0)
    args.initial_lr = args.initial_lr or config.ATARI_LR
    trainer = Trainer(config.to_dict(args), probe.spec)
    code = trainer.run()
    if code != 0 or len(trainer.timings) != workers:
        raise SystemExit(f"trainer failed (exit code {code})")
    rate = sum(t["steps"] / t["total"] for t in trainer.timings.values())
    total_steps = sum(t["steps"] for t in trainer.timings.values())
    breakdown = {phase: 1e3 * sum(t.get(phase, 0.0) for t in trainer.timings.values()) / total_steps
                 for phase in PHASES}
    breakdown["total"] = 1e3 * sum(t["total"] for t in trainer.timings.values()) / total_steps
    return rate, breakdown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--workers", type=int, default=os.cpu_count())
    parser.add_argument("--game", default="pong")
    parser.add_argument("--arch", default="NIPS")
    parser.add_argument("--alg_type", default="a3c")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="duration of the environment-only measurement")
    parser.add_argument("--steps", type=int, default=0,
                        help="trainer steps (default: about --seconds of training)")
    args, extra = parser.parse_known_args()

    env_rate = environment_rate(args.game, args.workers, args.seconds)
    steps = args.steps or int(env_rate * 0.3 * args.seconds)
    rate, breakdown = trainer_rate(args.game, args.workers, steps, args.arch, args.alg_type, extra)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; {args.game}, {args.workers} processes, {args.arch}")
    print(f"environment only : {env_rate:8.0f} agent steps/s ({4 * env_rate:,.0f} frames/s)")
    print(f"{args.alg_type} trainer      : {rate:8.0f} agent steps/s ({4 * rate:,.0f} frames/s)")
    print(f"ratio            : {rate / env_rate:8.3f}")
    print("per agent step, per actor-learner (ms):")
    for phase, ms in breakdown.items():
        print(f"  {phase:<12} {ms:7.3f}")
    print("reproduce: python benchmarks/throughput.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
