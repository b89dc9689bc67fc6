"""How often a training command learns: the command run once per seed, one after another.

For each seed, ``python -m algorithms <command> --seed SEED`` (plus the folders it writes to, in
a temporary directory, and ``--quiet``) is run to its end, and the script reports whether its
``--stop_return`` was reached and at which global step, and the mean return of its last 20
episodes. Then: how many seeds learned, and the median and range of their steps. Give the
command a ``--stop_return``: that is what "learned" means here.

Reproduce with (the README's Gaussian A3C command, seeds 1 to 40, about 15 minutes here):

    python -m benchmarks.seeds --seeds 1-40 -- InvertedPendulum-v5 --env GYM -n 2 \\
        --max_global_steps 60000 --stop_return 800
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REACHED = re.compile(r"reached --stop_return \S+ at step ([\d,]+)")
WINDOW = 20


def seed_range(text: str) -> list[int]:
    """'1-40' or '3,4,5' (or both: '1-3,7')."""
    seeds = []
    try:
        for part in text.split(","):
            low, _, high = part.partition("-")
            seeds += list(range(int(low), int(high or low) + 1))
    except ValueError:
        seeds = []
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} names no seed; write e.g. 1-40 or 3,4,5")
    return seeds


def has_flag(command: list[str], flag: str) -> bool:
    return any(arg == flag or arg.startswith(flag + "=") for arg in command)


def run(command: list[str], seed: int, folder: str) -> dict:
    """One run of ``command`` with ``seed``: the step where it reached --stop_return (None if
    it did not), the mean of its last episodes, its exit code, its wall time. A run that fails
    (exit code 1: e.g. parameters that became non-finite) has not learned, and the sweep goes
    on; one that the trainer refuses (exit code 2: a wrong flag) ends it."""
    args = [sys.executable, "-m", "algorithms", *command, "--seed", str(seed), "--quiet",
            "--summary_dir", os.path.join(folder, "summary"),
            "--checkpoint_dir", os.path.join(folder, "checkpoints")]
    start = time.monotonic()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    run_dir = re.search(r"^run directory: (.+)$", done.stdout, re.M)
    if done.returncode == 2 or run_dir is None:
        raise SystemExit(f"seed {seed}: the trainer refused the command (exit code "
                         f"{done.returncode}):\n{done.stdout}{done.stderr}")
    reached = REACHED.search(done.stdout) if done.returncode == 0 else None
    with open(os.path.join(run_dir.group(1), "episodes.csv"), newline="") as f:
        returns = [float(row["return"]) for row in csv.DictReader(f)]
    return {"seed": seed, "reached": int(reached.group(1).replace(",", "")) if reached else None,
            "last_mean": float(np.mean(returns[-WINDOW:])) if returns else None,
            "episodes": len(returns), "exit_code": done.returncode,
            "seconds": time.monotonic() - start}


def mean_text(result: dict) -> str:
    mean = result["last_mean"]
    text = "-" if mean is None else f"{mean:.1f}"
    return text if result["exit_code"] == 0 else f"{text}, exit code {result['exit_code']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default=seed_range("1-10"), type=seed_range,
                        help="e.g. 1-40, or 3,4,5 (before the command)")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the training command after --: game and flags, no --seed")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or not has_flag(command, "--stop_return") or has_flag(command, "--seed") \
            or has_flag(command, "--seeds"):
        parser.error("give --seeds first, then the training command after --, with a "
                     "--stop_return and no --seed")
    results = []
    with tempfile.TemporaryDirectory(prefix="seeds_") as folder:
        for seed in args.seeds:
            result = run(command, seed, os.path.join(folder, str(seed)))
            results.append(result)
            step = "-" if result["reached"] is None else f"{result['reached']:,}"
            print(f"seed {seed:>3}: reached at step {step:>8} | mean of the last {WINDOW} "
                  f"{mean_text(result):>8} | {result['seconds']:5.0f} s", flush=True)
    learned = [r["reached"] for r in results if r["reached"] is not None]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}")
    print(f"learned: {len(learned)} of {len(results)} seeds", end="")
    if learned:
        print(f"; steps to --stop_return: median {int(np.median(learned)):,}, "
              f"{min(learned):,}-{max(learned):,}", end="")
    failed = [f"{r['seed']} ({mean_text(r)})" for r in results if r["reached"] is None]
    print("\nnot learned (mean of the last episodes): " + (", ".join(failed) or "none"))
    print("\nreproduce: python -m benchmarks.seeds " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
