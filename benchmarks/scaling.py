"""Scaling: agent steps/s of A3C on Pong with 1, 2, 4, 8, 16 actor-learners, and the speedup
over one.

Each count trains for about ``--seconds`` (``benchmarks.throughput``'s trainer measurement:
steps over each actor-learner's own loop time, summed), with the paper's settings and the NIPS
network unless told otherwise. Counts beyond the machine's cores share them, so only counts up to
the number of cores say anything about scaling; the script says which. The paper's A3C reached a
12.5x speedup at 16 threads.

Reproduce with:

    python -m benchmarks.scaling                         # 1, 2, 4, 8, 16
    python -m benchmarks.scaling --workers 1,2 --seconds 20
    python -m benchmarks.scaling --envs_per_actor 8      # batched actor-learners
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

from benchmarks.throughput import VARIANTS, environment_rate, trainer_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4,8,16", help="comma-separated counts")
    parser.add_argument("--game", default="pong")
    parser.add_argument("--arch", default="NIPS")
    parser.add_argument("--algorithm", default="a3c", choices=sorted(VARIANTS))
    parser.add_argument("--envs_per_actor", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1
    flags = VARIANTS[args.algorithm] + ["--envs_per_actor", str(args.envs_per_actor)]
    single = environment_rate(args.game, 1, min(args.seconds, 10.0))
    rates = {}
    for n in counts:
        steps = int(single * min(n, cores) * 0.3 * args.seconds)
        rates[n], _ = trainer_rate(args.game, n, max(steps, 2000), args.arch, flags)
        print(f"-n {n}: {rates[n]:,.0f} steps/s", flush=True)
    base = rates.get(1)
    print(f"\nmachine: {platform.machine()}, {cores} cores, Python {platform.python_version()}; "
          f"{args.game}, {args.algorithm}, {args.arch}, {args.envs_per_actor} environment(s) "
          "per actor-learner")
    print(f"{'-n':>4} {'steps/s':>9} {'speedup':>8}")
    for n, rate in rates.items():
        speedup = f"{rate / base:8.2f}" if base else f"{'-':>8}"
        note = "" if n <= cores else f"   ({n} processes share {cores} cores)"
        print(f"{n:>4} {rate:9.0f} {speedup}{note}")
    print("\nreproduce: python -m benchmarks.scaling " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
