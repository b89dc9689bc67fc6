"""Evaluation of a checkpoint: ``python main.py pong --mode eval [--checkpoint PATH]``.

The paper's protocol: every episode starts with up to 30 random no-ops (Atari), scores are the
unclipped game scores, and the agent acts as it would in training except for exploration: A3C
samples from its policy (``--greedy`` takes the most probable action), value-based methods act
epsilon-greedily with ``--eval_epsilon`` (0.05). Recurrent agents carry their state through an
episode and reset it only when a new one starts.

Evaluation runs in this one process, reads the checkpoint and never writes to it; it prints the
mean, standard deviation, minimum and maximum score and writes them, with every episode's score,
to a JSON file (``--eval_file``, default ``eval-<step>.json`` beside the checkpoint).
``--record_video DIR`` saves episodes as MP4 files of the raw game screen (OpenCV's writer).
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import numpy as np

from .checkpoint import Checkpoint
from .config import Config
from .display import Window
from .environments import EnvSpec
from .files import write_atomically

VIDEO_SCALE = 2   # Atari screens (160x210) are small: videos are scaled up, pixels kept sharp


class VideoWriter:
    """An MP4 file of RGB frames, written with OpenCV (``mp4v``)."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps
        self._writer = None
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        import cv2
        if rgb.shape[0] < 300:
            rgb = cv2.resize(rgb, None, fx=VIDEO_SCALE, fy=VIDEO_SCALE,
                             interpolation=cv2.INTER_NEAREST)
        if self._writer is None:
            height, width = rgb.shape[:2]
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (width, height))
            if not self._writer.isOpened():
                raise OSError(f"OpenCV cannot write {self.path}")
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def play(agent, env, video: VideoWriter | None, window: Window | None = None
         ) -> tuple[float, int]:
    """One episode, recorded to ``video`` and shown in ``window`` when given; returns
    (unclipped score, agent steps)."""
    agent.start_episode()
    state = env.reset()
    score, steps, done = 0.0, 0, False
    while True:
        if video is not None or window is not None:
            screen = env.screen()
            if video is not None:
                video.add(screen)
            if window is not None:
                window.show(screen)
        if done:
            return score, steps
        state, reward, done, _ = env.step(agent.act(state[None])[0])
        score += reward
        steps += 1


def evaluate(args: Config, env_spec: EnvSpec, ckpt: Checkpoint) -> int:
    """Play ``args.eval_episodes`` episodes with the checkpoint's parameters; returns 0."""
    from .tfsetup import configure_tensorflow
    configure_tensorflow()
    from .agents import make_agent
    from .environments import atari_frames, make_environment
    from .networks import layout_for
    from .store import FrozenStore

    layout = layout_for(args, env_spec)
    params = ckpt.arrays["params"].astype(np.float32)
    target = ckpt.arrays.get("target", params).astype(np.float32)
    seed = int(args.seed or 0) + 1_000_003
    rng = np.random.default_rng(seed)
    agent = make_agent(args, layout, env_spec, FrozenStore(params, target), rng,
                       final_epsilon=args.eval_epsilon)
    agent.sync(ckpt.step)
    value_based = args.alg_type != "a3c"
    if value_based:
        agent.epsilon = args.eval_epsilon
        policy = f"epsilon-greedy, epsilon {args.eval_epsilon:g}"
    else:
        agent.greedy = args.greedy
        policy = ("greedy (the mean action)" if env_spec.continuous else "greedy") \
            if args.greedy else "sampled from the policy"
    record = args.record_video is not None
    to_record = args.eval_episodes if args.video_episodes is None else args.video_episodes
    env = make_environment(args.env, args.game, args.rom_path, seed,
                           render=record or bool(args.visualize),
                           frames=atari_frames(args.arch, args.lstm),
                           fire_reset=args.fire_reset)
    fps = 60.0 / env_spec.frames_per_step if env_spec.kind == "atari" else 50.0
    window = Window(f"{args.game} - evaluation", fps=fps, realtime=True) \
        if args.visualize else None
    if record:
        os.makedirs(args.record_video, exist_ok=True)

    print(f"evaluating {ckpt.path} (step {ckpt.step:,}) on {args.game}: {args.eval_episodes} "
          f"episodes, actions {policy}", flush=True)
    scores, lengths, videos = [], [], []
    start = time.monotonic()
    try:
        for episode in range(args.eval_episodes):
            video = None
            if record and episode < to_record:
                name = f"{os.path.basename(args.game).replace('/', '-')}-step{ckpt.step}-" \
                       f"episode{episode:03d}.mp4"
                video = VideoWriter(os.path.join(args.record_video, name), fps)
            try:
                score, steps = play(agent, env, video, window)
            finally:
                if video is not None:
                    video.close()
            if video is not None:
                videos.append({"path": os.path.abspath(video.path), "frames": video.frames})
            scores.append(score)
            lengths.append(steps)
            print(f"episode {episode + 1}/{args.eval_episodes}: score {score:g}, {steps} steps "
                  f"(mean so far {np.mean(scores):.2f}, elapsed {time.monotonic() - start:.0f} s)",
                  flush=True)
    finally:
        env.close()
        if window is not None:
            window.close()

    result: dict[str, Any] = {
        "checkpoint": os.path.abspath(ckpt.path), "global_step": ckpt.step, "game": args.game,
        "env": args.env, "alg_type": args.alg_type, "policy": policy,
        "episodes": len(scores), "mean": float(np.mean(scores)), "std": float(np.std(scores)),
        "min": float(np.min(scores)), "max": float(np.max(scores)),
        "scores": scores, "lengths": lengths, "videos": videos, "seed": seed,
        "noop_max": 30 if env_spec.kind == "atari" else 0,
    }
    path = args.eval_file or os.path.join(os.path.dirname(os.path.abspath(ckpt.path)),
                                          f"eval-{ckpt.step}.json")
    write_atomically(path, json.dumps(result, indent=2) + "\n")
    print(f"score over {len(scores)} episodes: mean {result['mean']:.2f} ± {result['std']:.2f} "
          f"(min {result['min']:g}, max {result['max']:g}); written to {path}", flush=True)
    if videos:
        print(f"{len(videos)} video(s) in {os.path.abspath(args.record_video)}", flush=True)
    return 0
