"""Learning curves from run directories: ``python algorithms/plot.py RUN_DIR [RUN_DIR ...]``.

Reads each run's ``episodes.csv`` and draws the unclipped episode return against the global step
and against wall-clock training time (pauses between a stop and a resume left out): every
actor-learner's episodes as a thin line, their mean smoothed over a sliding window as a thick
one. Each run gets a row of two panels, or with ``--overlay``
all runs share the two panels (one colour per run, for comparisons). Writes a PNG
(``-o``, default ``learning_curves.png`` in the first run directory).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np


class PlotError(Exception):
    pass


def read_run(run_dir: str) -> dict:
    """Episodes of one run, as arrays sorted by global step, plus a label."""
    path = os.path.join(run_dir, "episodes.csv")
    if not os.path.isfile(path):
        raise PlotError(f"{run_dir!r} has no episodes.csv (give a run directory made by main.py, "
                        "e.g. /tmp/summary_logs/pong/a3c/<timestamp>)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        actor = np.array([int(r["actor"]) for r in rows], dtype=int)
        step = np.array([int(r["global_step"]) for r in rows], dtype=np.int64)
        wall = np.array([float(r["wall_time"]) for r in rows])
        ret = np.array([float(r["return"]) for r in rows])
    except (KeyError, ValueError, TypeError) as err:
        raise PlotError(f"{path} is not an episodes.csv written by main.py ({err})") from None
    if len(rows) == 0:
        raise PlotError(f"{path} has no finished episode yet; plot it later")
    order = np.argsort(step, kind="stable")
    label = os.path.basename(os.path.normpath(run_dir))
    resumed_at: list[int] = []
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            record = json.load(f)
        cfg = record["config"]
        alg = cfg["alg_type"] + (" LSTM" if cfg.get("lstm") else "")
        games = cfg.get("envs_per_actor") or 1
        label = (f"{cfg['game']} {alg} n={cfg['num_actor_learners']}"
                 f"{f' x {games} games' if games > 1 else ''}, seed {cfg.get('seed')} ({label})")
        resumed_at = [int(r["global_step"]) for r in record.get("resumed", [])]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    run = {"actor": actor[order], "step": step[order], "wall": wall[order],
           "return": ret[order], "label": label}
    run["elapsed"] = training_time(run["wall"], run["step"], resumed_at)
    return run


def up_to(run: dict, max_step: int) -> dict:
    """The episodes of ``run`` that ended by global step ``max_step``."""
    keep = run["step"] <= max_step
    if not keep.any():
        raise PlotError(f"{run['label']} has no episode by step {max_step:,}")
    return {key: (value[keep] if isinstance(value, np.ndarray) else value)
            for key, value in run.items()}


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start)."""
    cumulative = np.cumsum(np.insert(values.astype(float), 0, 0.0))
    index = np.arange(1, len(values) + 1)
    start = np.maximum(index - window, 0)
    return (cumulative[index] - cumulative[start]) / (index - start)


PAUSE_SECONDS = 600.0   # a longer gap between consecutive episodes is a stop before a resume


def training_time(wall: np.ndarray, step: np.ndarray | None = None,
                  resumed_at: list[int] = ()) -> np.ndarray:
    """Seconds of training at each episode (in step order), without the pauses of a run that was
    stopped and resumed: the gap across each resume (``config.json`` records their steps), and
    any gap over PAUSE_SECONDS between consecutive episodes, count as 0."""
    gaps = np.diff(wall, prepend=wall[0])
    gaps[(gaps < 0) | (gaps > PAUSE_SECONDS)] = 0.0
    if step is not None:
        for resume_step in resumed_at:
            first_after = np.searchsorted(step, resume_step, side="right")
            if first_after < len(gaps):
                gaps[first_after] = 0.0
    return np.cumsum(gaps)


def time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 3600.0, "hours"
    if seconds >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def draw(runs: list[dict], output: str, overlay: bool, window: int,
         ylim: tuple[float, float] | None = None) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 if overlay else len(runs)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 3.6 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    unit, unit_name = time_unit(max(r["elapsed"][-1] for r in runs))
    for i, run in enumerate(runs):
        ax_step, ax_time = axes[0 if overlay else i]
        colour = colours[i % len(colours)]
        for x, ax in ((run["step"], ax_step), (run["elapsed"] / unit, ax_time)):
            if not overlay:
                for actor in np.unique(run["actor"]):
                    mine = run["actor"] == actor
                    ax.plot(x[mine], run["return"][mine], lw=0.6, alpha=0.35, color=colour)
            ax.plot(x, smooth(run["return"], window), lw=2.2, color=colour,
                    label=f"{run['label']}" if overlay else f"mean of last {window} episodes")
        if not overlay:
            ax_step.set_title(run["label"], fontsize=10)
    for ax_step, ax_time in axes:
        ax_step.set_xlabel("global step")
        ax_time.set_xlabel(f"wall-clock {unit_name} of training")
        for ax in (ax_step, ax_time):
            ax.set_ylabel("episode return")
            ax.grid(alpha=0.3)
            if ylim is not None:
                ax.set_ylim(*ylim)
        ax_step.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def axis_range(text: str) -> tuple[float, float]:
    """``--ylim``'s LOW,HIGH."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        low = high = 0.0
    if not low < high:
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW,HIGH with LOW < HIGH (e.g. 0,40)")
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plot.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("-o", "--output", default=None,
                        help="PNG to write (default: learning_curves.png in the first RUN_DIR)")
    parser.add_argument("--overlay", action="store_true",
                        help="all runs in the same two panels, for comparison")
    parser.add_argument("--window", type=int, default=20,
                        help="episodes in the smoothing window of the thick line")
    parser.add_argument("--labels", default=None, metavar="A,B,...",
                        help="names for the runs, in order (default: game, algorithm, seed "
                             "and folder)")
    parser.add_argument("--ylim", default=None, metavar="LOW,HIGH", type=axis_range,
                        help="the return axis's range, e.g. 0,40 (default: every episode "
                             "shown; rare outliers then flatten the curve)")
    parser.add_argument("--max_step", type=int, default=None, metavar="STEPS",
                        help="only the episodes up to this global step (runs of different "
                             "lengths compared over a common budget)")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error("argument --window: must be at least 1")
    if args.max_step is not None and args.max_step < 1:
        parser.error("argument --max_step: must be at least 1")
    output = args.output or os.path.join(args.run_dirs[0], "learning_curves.png")
    try:
        runs = [read_run(d) for d in args.run_dirs]
        if args.max_step is not None:
            runs = [up_to(run, args.max_step) for run in runs]
        if args.labels is not None:
            labels = args.labels.split(",")
            if len(labels) != len(runs):
                raise PlotError(f"--labels names {len(labels)} runs, and {len(runs)} are given")
            for run, label in zip(runs, labels):
                run["label"] = label
        if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
            raise PlotError(f"the folder of {output!r} does not exist (create it or choose "
                            "another -o)")
        draw(runs, output, args.overlay, args.window, args.ylim)
    except PlotError as err:
        print(f"plot.py: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {output} ({len(runs)} run{'s' if len(runs) > 1 else ''}, "
          f"{sum(len(r['step']) for r in runs)} episodes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
