"""An animated GIF of a trained agent playing, for the README: one evaluation episode recorded
with ``--mode eval --record_video`` (greedy unless ``--sampled``), then its frames, every
``--every``-th and at most ``--frames``, written as a GIF with Pillow.

Reproduce with:

    python -m benchmarks.agent_gif pong help/agents/pong_a3c.npz help/images/pong_agent.gif
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def record(game: str, agent: str, folder: str, greedy: bool, seed: int) -> str:
    args = [sys.executable, "-m", "algorithms", game, "--mode", "eval", "--checkpoint", agent,
            "--eval_episodes", "1", "--record_video", folder, "--eval_file",
            os.path.join(folder, "eval.json"), "--seed", str(seed)]
    if greedy:
        args.append("--greedy")
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"agent_gif: the evaluation failed:\n{done.stderr}")
    print(done.stdout.strip().splitlines()[-2])
    return sorted(glob.glob(os.path.join(folder, "*.mp4")))[0]


def to_gif(video: str, output: str, every: int, frames: int, scale: float) -> int:
    import cv2
    from PIL import Image
    capture = cv2.VideoCapture(video)
    images, index = [], 0
    while len(images) < frames:
        ok, frame = capture.read()
        if not ok:
            break
        if index % every == 0:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            if scale != 1:
                rgb = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            images.append(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=32))
        index += 1
    capture.release()
    if not images:
        raise SystemExit(f"agent_gif: no frame in {video}")
    # the video runs at 15 agent steps a second (60 frames / 4): keep that pace
    images[0].save(output, save_all=True, append_images=images[1:], optimize=True, loop=0,
                   duration=int(1000 * every / 15))
    return len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("game")
    parser.add_argument("agent", help="a checkpoint or an exported agent (.npz)")
    parser.add_argument("output", help="the GIF to write")
    parser.add_argument("--sampled", action="store_true", help="sample actions (A3C)")
    parser.add_argument("--every", type=int, default=2, help="keep every N-th frame")
    parser.add_argument("--frames", type=int, default=300, help="at most this many frames")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="of the recorded video (itself twice the screen)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        video = record(args.game, os.path.abspath(args.agent), folder, not args.sampled,
                       args.seed)
        count = to_gif(video, args.output, args.every, args.frames, args.scale)
    print(f"wrote {args.output}: {count} frames, {os.path.getsize(args.output) / 1024:.0f} KB")
    print("reproduce: python -m benchmarks.agent_gif " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
