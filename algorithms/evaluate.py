"""Evaluation of a checkpoint: ``python main.py pong --mode eval [--checkpoint PATH]``.

The paper's protocol: every episode starts with up to 30 random no-ops (Atari), scores are the
unclipped game scores, and the agent acts as it would in training except for exploration: A3C
samples from its policy (``--greedy`` takes the most probable action), value-based methods act
epsilon-greedily with ``--eval_epsilon`` (0.05; ``--greedy``: 0). Recurrent agents carry their
state through an episode and reset it only when a new one starts.

Evaluation runs in this one process, reads the checkpoint and never writes to it; it prints the
mean, standard deviation, minimum and maximum score and writes them, with every episode's score,
to a JSON file (``--eval_file``, default ``eval-<step>.json`` beside the checkpoint).
``--record_video DIR`` saves episodes as MP4 files of the raw game screen (OpenCV's writer).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import time
from typing import Any

import numpy as np

from . import interrupts
from .checkpoint import Checkpoint
from .console import say
from .config import Config
from .display import Window, is_rgb
from .environments import EnvSpec
from .files import write_atomically

VIDEO_SCALE = 2   # Atari screens (160x210) are small: videos are scaled up, pixels kept sharp
# OpenCV's writer drops frames silently on a full disk (a warning line each): recording stops
# once the video's file system has less than this free, checked every VIDEO_CHECK_FRAMES.
VIDEO_MIN_FREE = 1 << 20
VIDEO_CHECK_FRAMES = 16


def describe(value) -> str:
    return f"an array of {value.dtype} of shape {value.shape}" \
        if isinstance(value, np.ndarray) else \
        type(value).__name__ if value is not None else "None"


class VideoWriter:
    """An MP4 file of RGB frames, written with OpenCV (``mp4v``)."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, fps
        self._writer = None
        self.frames = 0
        self.failed: OSError | None = None   # once set, frames are dropped

    def add(self, rgb: np.ndarray | None) -> None:
        import cv2
        if self.failed is not None:
            return
        if not is_rgb(rgb):
            self.failed = OSError(f"the environment's render() gave {describe(rgb)}, not an RGB "
                                  "image of uint8: a video needs one (render_mode "
                                  "'rgb_array')")
            return
        if self.frames % VIDEO_CHECK_FRAMES == 0 and not self._room():
            return
        if rgb.shape[0] < 300:
            rgb = cv2.resize(rgb, None, fx=VIDEO_SCALE, fy=VIDEO_SCALE,
                             interpolation=cv2.INTER_NEAREST)
        if self._writer is None:
            height, width = rgb.shape[:2]
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)   # no line a frame
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps,
                                           (width, height))
            if not self._writer.isOpened():
                self.failed = OSError(f"OpenCV cannot write {self.path}")
                return
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def _room(self) -> bool:
        """Whether the video's file system has room left; if not, the video has failed."""
        info = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        if info.f_bavail * info.f_frsize >= VIDEO_MIN_FREE:
            return True
        self.failed = OSError(errno.ENOSPC, f"no space left for {self.path}")
        return False

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._room()   # a video closed on a full disk is truncated


def play(agent, env, video: VideoWriter | None, window: Window | None = None,
         max_steps: int | None = None) -> tuple[float, int, bool]:
    """One episode, recorded to ``video`` and shown in ``window`` when given, cut after
    ``max_steps`` agent steps; returns (unclipped score, agent steps, whether it was cut)."""
    agent.start_episode()
    state = env.reset()
    score, steps, done = 0.0, 0, False
    while True:
        if video is not None or window is not None:
            screen = env.screen()
            if video is not None:
                video.add(screen)
            if window is not None and not window.closed:
                if is_rgb(screen):
                    window.show(screen)
                else:   # nothing to show: said once, and the window goes
                    say(f"warning: the environment's render() gave {describe(screen)}, not an "
                        "RGB image of uint8: nothing to show (-v); the evaluation goes on",
                        file=sys.stderr)
                    window.close()
        if done or steps == max_steps:
            return score, steps, not done
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

    stop_on_signals()   # TensorFlow loaded: a signal stops the evaluation from here on
    if (signum := interrupts.take()) is not None:
        raise Stopped(signum)

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
        agent.epsilon = 0.0 if args.greedy else args.eval_epsilon
        policy = "greedy" if args.greedy else f"epsilon-greedy, epsilon {args.eval_epsilon:g}"
    else:
        agent.greedy = args.greedy
        policy = ("greedy (the mean action)" if env_spec.continuous else "greedy") \
            if args.greedy else "sampled from the policy"
    record = args.record_video is not None
    to_record = args.eval_episodes if args.video_episodes is None else args.video_episodes
    env = make_environment(args.env, args.game, args.rom_path, seed,
                           render=record or bool(args.visualize),
                           frames=atari_frames(args.arch, args.lstm, args.screen_size, args.crop,
                                              args.resample),
                           fire_reset=args.fire_reset)
    fps = 60.0 / env_spec.frames_per_step if env_spec.kind == "atari" else 50.0
    window = Window(f"{args.game} - evaluation", fps=fps, realtime=True,
                    warn=lambda text: say(f"warning: {text}", file=sys.stderr)) \
        if args.visualize else None
    path = result_path(args, ckpt)

    say(f"evaluating {ckpt.path} (step {ckpt.step:,}) on {args.game}: {args.eval_episodes} "
          f"episodes, actions {policy}")
    scores, lengths, videos = [], [], []
    result: dict[str, Any] = {
        "checkpoint": os.path.abspath(ckpt.path), "global_step": ckpt.step, "game": args.game,
        "env": args.env, "alg_type": args.alg_type, "policy": policy, "seed": seed,
        "noop_max": 30 if env_spec.kind == "atari" else 0}
    start = time.monotonic()
    try:
        for episode in range(args.eval_episodes):
            video = None
            if record and episode < to_record:
                video = _open_video(args, ckpt, episode, fps)
                record = video is not None
            try:
                score, steps, cut = play(agent, env, video, window, args.eval_max_steps)
            finally:
                if video is not None and not _close_video(video):
                    record = False
            if video is not None and record:
                videos.append({"path": os.path.abspath(video.path), "frames": video.frames})
            scores.append(score)
            lengths.append(steps)
            if cut:
                result["cut_episodes"] = result.get("cut_episodes", 0) + 1
            say(f"episode {episode + 1}/{args.eval_episodes}: score {score:g}, {steps} steps"
                f"{' (cut: --eval_max_steps)' if cut else ''} (mean so far "
                f"{np.mean(scores):.2f}, elapsed {time.monotonic() - start:.0f} s)")
    except (Exception, KeyboardInterrupt) as err:
        # Interrupted (Ctrl-C) or failed: the episodes played so far are kept, marked partial.
        interrupted = isinstance(err, KeyboardInterrupt)
        signum = getattr(err, "signum", signal.SIGINT)
        why = ("interrupted" if signum == signal.SIGINT else f"stopped by "
               f"{signal.Signals(signum).name}") if interrupted else \
            f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
        kept = "no episode ended: nothing written"
        if scores:
            result.update(partial=True, stopped_by=why)
            kept = "the scores so far are kept" if _write(
                path, result, scores, lengths, videos, args.eval_episodes) else \
                "the scores so far are printed above"
        if not interrupted and os.environ.get("A3C_DEBUG"):
            raise
        say(f"{why if interrupted else 'error: ' + why}: evaluation stopped after "
            f"{len(scores)} of {args.eval_episodes} episodes; {kept}", file=sys.stderr)
        return 128 + signum if interrupted else 1
    finally:
        env.close()
        if window is not None:
            window.close()
    if not _write(path, result, scores, lengths, videos, args.eval_episodes):
        return 1
    if videos:
        say(f"{len(videos)} video(s) in {os.path.abspath(args.record_video)}")
    return 0


class Stopped(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT during an evaluation: stops it as Ctrl-C does, scores kept."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def stop_on_signals() -> None:
    """Ctrl-C, SIGTERM, SIGHUP and SIGQUIT stop an evaluation at once, its scores kept
    (``Stopped``); Ctrl-C even when this process inherited SIGINT ignored (a command started in
    the background by a non-interactive shell does), which Python keeps."""
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def stop(signum, _frame):
        raise Stopped(signum)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, stop)


def result_path(args: Config, ckpt: Checkpoint) -> str:
    """Where the scores go: ``--eval_file``, or ``eval-<step>.json`` beside the checkpoint."""
    return args.eval_file or os.path.join(os.path.dirname(os.path.abspath(ckpt.path)),
                                          f"eval-{ckpt.step}.json")


def _write(path: str, result: dict[str, Any], scores: list[float], lengths: list[int],
           videos: list[dict], planned: int) -> bool:
    """The scores as JSON (the folder made if need be), and the summary line; False (and the
    scores on the console instead) if the file cannot be written (a full disk)."""
    result.update(episodes=len(scores), planned_episodes=planned,
                  mean=float(np.mean(scores)), std=float(np.std(scores)),
                  min=float(np.min(scores)), max=float(np.max(scores)),
                  scores=scores, lengths=lengths, videos=videos)
    result.setdefault("cut_episodes", 0)
    what = f"score over {len(scores)} episodes" + \
        (f" (partial: {result['stopped_by']}, of {planned})" if result.get("partial") else "") + \
        (f" ({result['cut_episodes']} cut at --eval_max_steps)" if result["cut_episodes"] else "")
    summary = (f"{what}: mean {result['mean']:.2f} ± {result['std']:.2f} "
               f"(min {result['min']:g}, max {result['max']:g})")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_atomically(path, json.dumps(result, indent=2) + "\n")
    except OSError as err:
        say(f"{summary}; scores: {' '.join(f'{s:g}' for s in scores)}")
        say(f"error: the scores could not be written to {path} ({err.strerror or err}); "
              "they are printed above", file=sys.stderr)
        return False
    say(f"{summary}; written to {path}")
    return True


def _open_video(args: Config, ckpt: Checkpoint, episode: int, fps: float):
    """A VideoWriter for ``episode``, or None (with one warning) when the video folder cannot
    be written: recording stops, the evaluation goes on."""
    name = f"{os.path.basename(args.game).replace('/', '-')}-step{ckpt.step}-" \
           f"episode{episode:03d}.mp4"
    try:
        os.makedirs(args.record_video, exist_ok=True)
        path, n = os.path.join(args.record_video, name), 1
        while os.path.lexists(path):   # never over an earlier evaluation's video
            n += 1
            path = os.path.join(args.record_video, f"{name[:-4]}-{n}.mp4")
        return VideoWriter(path, fps)
    except OSError as err:
        _video_warning(err)
        return None


def _close_video(video: VideoWriter) -> bool:
    """Close ``video``; False (with one warning, the file removed) if it could not be written
    whole."""
    try:
        video.close()
        if video.failed is not None:
            raise video.failed
        if video.frames and os.path.getsize(video.path) == 0:
            raise OSError(f"{video.path} is empty: the disk may be full")
        return True
    except OSError as err:
        _video_warning(err)
        with contextlib.suppress(OSError):
            os.unlink(video.path)
        return False


def _video_warning(err: OSError) -> None:
    say(f"warning: recording stopped ({err.strerror or err}); the evaluation goes on, its "
          "scores are kept", file=sys.stderr)
