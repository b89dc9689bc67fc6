"""What a game window (-v 2) costs the actor-learner it shows, and the others.

Trains A3C on Pong with N actor-learners twice, for the same time: with no window (-v 0) and
with actor 0 shown (-v 2), on a virtual X screen (Xvfb) unless DISPLAY is set. Prints each
actor-learner's agent steps/s (TensorBoard's ``train/steps_per_second``, averaged after a warm-up)
and the ratios measured within the runs. Reproduce with:

    python benchmarks/visualize_cost.py                 # N = 2, 40 s per run
    python benchmarks/visualize_cost.py -n 4 --seconds 60
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # the TensorBoard reader imports TensorFlow

HERE = os.path.dirname(os.path.abspath(__file__))
MAIN = os.path.join(os.path.dirname(HERE), "algorithms", "main.py")


def steps_per_second(run_root: str, actor: int, warmup: int) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util
    [folder] = glob.glob(os.path.join(run_root, "**", f"actor_{actor}"), recursive=True)
    acc = EventAccumulator(folder, size_guidance={"tensors": 0})
    acc.Reload()
    values = [float(tensor_util.make_ndarray(e.tensor_proto))
              for e in acc.Tensors("train/steps_per_second")]
    return float(np.mean(values[warmup:] or values))


def train(visualize: int, workers: int, seconds: float, display: str, scratch: str) -> list[float]:
    root = os.path.join(scratch, f"v{visualize}")
    proc = subprocess.Popen([sys.executable, MAIN, "pong", "-n", str(workers), "-v", str(visualize),
                             "--max_global_steps", "1000000000", "--seed", "1", "--quiet",
                             "--summary_dir", root, "--checkpoint_dir", os.path.join(root, "ck")],
                            env=dict(os.environ, DISPLAY=display), cwd=scratch,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 130:
        raise SystemExit(f"the -v {visualize} run failed ({proc.returncode}):\n{err}")
    return [steps_per_second(root, actor, warmup=2) for actor in range(workers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2, help="actor-learners (default 2)")
    parser.add_argument("--seconds", type=float, default=40.0, help="per run (default 40)")
    args = parser.parse_args()

    server = None
    display = os.environ.get("DISPLAY", "")
    if not display:
        if shutil.which("Xvfb") is None:
            raise SystemExit("no DISPLAY and no Xvfb: install xvfb (bash tests/install_x_tools.sh)")
        number = next(n for n in range(90, 200) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
        server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x1024x24",
                                   "-nolisten", "tcp"], stderr=subprocess.DEVNULL)
        display = f":{number}"
        while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
            time.sleep(0.1)
    scratch = tempfile.mkdtemp(prefix="visualize_cost_")
    try:
        plain = train(0, args.n, args.seconds, display, scratch)
        shown = train(2, args.n, args.seconds, display, scratch)
    finally:
        if server is not None:
            server.terminate()
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"A3C on Pong, {args.n} actor-learners, {args.seconds:g} s per run; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"display {'Xvfb' if server else display}")
    print(f"{'actor':>6} {'-v 0 steps/s':>14} {'-v 2 steps/s':>14} {'ratio':>7}")
    for actor in range(args.n):
        note = "  (shown)" if actor == 0 else ""
        print(f"{actor:>6} {plain[actor]:>14.1f} {shown[actor]:>14.1f} "
              f"{shown[actor] / plain[actor]:>7.3f}{note}")
    others = np.mean(shown[1:]) / np.mean(plain[1:]) if args.n > 1 else float("nan")
    print(f"shown actor: {shown[0] / plain[0]:.3f} of its speed without a window; "
          f"the others: {others:.3f}")
    print(f"reproduce: python benchmarks/visualize_cost.py -n {args.n} --seconds {args.seconds:g}")


if __name__ == "__main__":
    main()
