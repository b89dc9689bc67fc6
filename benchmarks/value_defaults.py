"""The value-based methods on CartPole-v1 with their default flags: the four commands that the
README's algorithm table names, at the full budget, one after another.

Each run is exactly ``python -m algorithms CartPole-v1 --env GYM --alg_type ALG
--max_local_steps T -n 2 --max_global_steps STEPS --seed SEED`` (plus the folders it writes to
and ``--quiet``), so the defaults that it measures are the ones a user gets. Printed and written
to ``--out``/results.json and results.md: the mean of the last 20 episodes when the budget ends,
the best such mean, the global step at which it first reached 300, the final epsilons drawn and
the wall time.

Reproduce with:

    python -m benchmarks.value_defaults                        # 400,000 steps, seed 1
    python -m benchmarks.value_defaults --seed 2 --variants one-step-q,n-step-q
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

from algorithms.plot import smooth

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOW = 20
GOAL = 300
VARIANTS = {"one-step-q": ("q", 1), "one-step-sarsa": ("sarsa", 1), "n-step-q": ("q", 5),
            "n-step-sarsa": ("sarsa", 5)}


def command(alg: str, t_max: int, steps: int, seed: int) -> list[str]:
    """The README's command for one variant (without the folders)."""
    return ["CartPole-v1", "--env", "GYM", "--alg_type", alg, "--max_local_steps", str(t_max),
            "-n", "2", "--max_global_steps", str(steps), "--seed", str(seed)]


def run(name: str, steps: int, seed: int, out: str) -> dict:
    alg, t_max = VARIANTS[name]
    folder = os.path.join(out, name)
    shutil.rmtree(folder, ignore_errors=True)
    args = command(alg, t_max, steps, seed)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "algorithms", *args, "--quiet",
                           "--summary_dir", os.path.join(folder, "summary"),
                           "--checkpoint_dir", os.path.join(folder, "checkpoints")],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: exit code {done.returncode}\n{done.stderr}")
    (path,) = glob.glob(os.path.join(folder, "summary", "*", "*", "*", "episodes.csv"))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    steps_at = np.array([int(r["global_step"]) for r in rows])
    order = np.argsort(steps_at, kind="stable")
    returns = np.array([float(r["return"]) for r in rows])[order]
    means = smooth(returns, WINDOW)[WINDOW - 1:]   # over full windows only
    reached = np.flatnonzero(means >= GOAL)
    with open(os.path.join(os.path.dirname(path), "config.json")) as f:
        final_epsilons = json.load(f)["config"].get("final_epsilons")
    return {"command": "python main.py " + " ".join(args), "episodes": len(rows),
            "last_mean": float(means[-1]), "best_mean": float(means.max()),
            "first_reached": int(steps_at[order][reached[0] + WINDOW - 1]) if reached.size
            else None, "final_epsilons": final_epsilons, "seconds": round(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400_000, help="global steps per run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--out", default="/tmp/value_defaults", help="folder for everything")
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    os.makedirs(args.out, exist_ok=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    results = {}
    lines = [f"CartPole-v1, default flags, {args.steps:,} global steps, seed {args.seed}; "
             f"{machine}, {time.strftime('%Y-%m-%d')}", "",
             f"| variant | last {WINDOW} episodes, mean at the end | best mean | first >= {GOAL} "
             "| final epsilons | wall time |", "| --- | --- | --- | --- | --- | --- |"]
    for name in names:
        r = results[name] = run(name, args.steps, args.seed, args.out)
        first = "-" if r["first_reached"] is None else f"{r['first_reached']:,}"
        lines.append(f"| `{name}` | {r['last_mean']:.1f} | {r['best_mean']:.1f} | {first} | "
                     f"{r['final_epsilons']} | {r['seconds']} s |")
        print(lines[-1], flush=True)
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in results.values()]
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"machine": machine, "date": time.strftime("%Y-%m-%d"), "steps": args.steps,
                   "seed": args.seed, "variants": results}, f, indent=2)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
