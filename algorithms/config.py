"""Every hyperparameter once: name, default, where the default comes from, help text, validation.

The flag names and meanings are those of the original project (``python main.py -h``); the
defaults are the paper's (Mnih et al., 2016, arXiv 1602.01783) or its authors' replies, except
where a comment says otherwise.

Parsing and validation never touch TensorFlow, the emulator or the file system beyond checks:
a user mistake ends here with one line and exit code 2, before anything is started.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import socket
import sys
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NoReturn, Sequence

ALGORITHMS = ("a3c", "q", "sarsa")
ARCHITECTURES = ("NIPS", "NATURE", "UNIVERSE")
ENVIRONMENTS = ("ALE", "GYM")
OPTIMIZERS = ("rmsprop", "momentum", "adam")
OPT_MODES = ("shared", "local")
CLIP_NORM_TYPES = ("ignore", "local", "global")
MODES = ("train", "eval")
CLUSTERS = ("local", "ray")

# An Atari environment holds about 0.8 MB (measured, ale-py 0.12); the cap keeps a segment's
# buffers and batched activations well inside an ordinary machine's memory.
MAX_ENVS_PER_ACTOR = 256
ATARI_LR = 7e-4
ENTROPY = 0.01             # discrete actions (paper)
CONTINUOUS_ENTROPY = 1e-4  # Gaussian policies (paper, continuous control)
VECTOR_LR = 3e-3
PRESETS = ("tuned", "paper")
PAPER_THREADS = 16   # the paper's actor-learner threads per machine
# --preset: the values of the flags left unset. "paper" is the paper's (with ATARI_LR, or
# VECTOR_LR for vector tasks); "tuned" is what learned Pong fastest per step here (A3C on Atari
# only; the measurements are in help/HYPERPARAMETERS.md).
PAPER_VALUES = {"arch": "NIPS", "opt_type": "rmsprop", "max_local_steps": 5, "clip_norm": 40.0}
TUNED_ATARI_A3C = {"arch": "UNIVERSE", "opt_type": "adam", "initial_lr": 1e-4,
                   "max_local_steps": 20, "clip_norm": 50.0}
OPTIMIZER_EPS = {"rmsprop": 0.1, "momentum": 0.1, "adam": 1e-8}
# The value-based methods' exploration and target refresh: the paper's on Atari (epsilon annealed
# over 4 M frames, the target refreshed every 40,000 frames); on vector observations, whose tasks
# are learned in tens of thousands of steps, both scaled down to what learns CartPole-v1 here
# (measured: help/HYPERPARAMETERS.md). Neither depends on --preset: the paper has no vector tasks.
ATARI_VALUE_BASED = {"epsilon_annealing_steps": 1_000_000, "q_target_update_steps": 10_000}
VECTOR_VALUE_BASED = {"epsilon_annealing_steps": 30_000, "q_target_update_steps": 500}

_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit code 2, nothing started."""


def claim_folder(folder: str, flag: str) -> None:
    """Hold ``folder`` for this run (``files.lock_folder``); UserError if another run holds it."""
    from .files import lock_folder
    holder = lock_folder(folder)
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        raise UserError(f"argument {flag}: {folder!r} is in use by another run ({who}); wait "
                        f"for it to end, or choose another {flag}")


def bool_arg(text: str) -> bool:
    """Parse true/false/1/0/yes/no in any case."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (use true/false, 1/0 or yes/no)")


def _choice(choices: Sequence[str], normalise=str.lower):
    """A case-insensitive choice: the value is normalised (upper or lower case) before checking."""
    def parse(text: str) -> str:
        value = normalise(text.strip())
        if value not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(choices)})")
        return value
    return parse


def _number(kind, name: str, low: float | None = None, high: float | None = None,
            low_open: bool = False, high_open: bool = False):
    """A numeric type for argparse that checks its range and names what is allowed."""
    def describe() -> str:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        what = "an integer" if kind is int else "a number"
        return f"{what} {' and '.join(parts)}" if parts else what

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = _integral_float(text) if kind is int else None
            if value is None:
                raise argparse.ArgumentTypeError(
                    f"invalid value {text!r} (expected {describe()})") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected {describe()})")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} (expected {describe()})")
        return value
    parse.__name__ = name
    return parse


def _integral_float(text: str) -> int | None:
    """Accept integers written as floats ("8e7", "1e6"), which step counts often are."""
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the flag, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> OneLineParser:
    cores = os.cpu_count() or 1
    p = OneLineParser(
        prog="main.py",
        description="Asynchronous actor-learners (Mnih et al., 2016) on Atari and Gymnasium.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("game", help="Atari game (e.g. pong, breakout, space_invaders) with --env ALE; "
                                "a Gymnasium id (e.g. CartPole-v1, ALE/Pong-v5) with --env GYM")
    p.add_argument("--env", default="ALE", type=_choice(ENVIRONMENTS, str.upper),
                   help="ALE: the Arcade Learning Environment directly; GYM: any Gymnasium id")
    p.add_argument("--rom_path", default=None,
                   help="folder of <game>.bin ROMs; when the game's ROM is not there, the ROM "
                        "bundled with ale-py is used instead (with a notice). "
                        "Default: bundled ROMs")
    p.add_argument("-v", "--visualize", default=0, type=_number(int, "visualize", 0, 2),
                   help="0: no window; 1: one window per actor-learner; 2: one window, "
                        "actor 0 only")
    # Optimizer (paper, Section 4 and supplementary S3).
    p.add_argument("--preset", default="tuned", type=_choice(PRESETS),
                   help="defaults of the flags left unset: tuned (A3C on Atari: the settings "
                        "measured to learn Pong fastest per step here, see "
                        "help/HYPERPARAMETERS.md: --arch UNIVERSE --opt_type adam -lr 1e-4 "
                        "--max_local_steps 20 --clip_norm 50) or paper (the paper's: --arch NIPS "
                        f"--opt_type rmsprop --e 0.1 -lr {ATARI_LR:g} --max_local_steps 5 "
                        "--clip_norm 40). Other algorithms and vector tasks get the paper's "
                        "either way")
    p.add_argument("--opt_type", default=None, type=_choice(OPTIMIZERS),
                   help="optimizer applied to the shared parameters. Default: from --preset")
    p.add_argument("--opt_mode", default="shared", type=_choice(OPT_MODES),
                   help="shared: one set of optimizer statistics for all actor-learners (the "
                        "paper's most robust choice); local: statistics per actor-learner")
    p.add_argument("--b1", default=0.9, type=_number(float, "b1", 0, 1, high_open=True),
                   help="Adam's beta1")
    p.add_argument("--b2", default=0.999, type=_number(float, "b2", 0, 1, high_open=True),
                   help="Adam's beta2")
    p.add_argument("--e", default=None, type=_number(float, "e", 0, low_open=True),
                   help="epsilon of RMSProp (inside the square root) and Adam. Default: 0.1 "
                        "for RMSProp (paper), 1e-8 for Adam")
    p.add_argument("--alpha", default=0.99, type=_number(float, "alpha", 0, 1, high_open=True),
                   help="decay of RMSProp's squared-gradient average and of momentum (paper: 0.99)")
    p.add_argument("-lr", "--initial_lr", default=None, type=_number(float, "initial_lr", 0),
                   help="initial learning rate, annealed linearly to 0; 0 samples it from "
                        "LogUniform(1e-4, 1e-2) as the paper did, and prints it. Default: "
                        "1e-4 x --envs_per_actor for A3C on Atari with --preset tuned; else "
                        f"{ATARI_LR:g} for Atari (the usual choice within the paper's range), "
                        f"{VECTOR_LR:g} for vector observations (ours: CartPole learns in about "
                        "40,000 steps with 2 actor-learners)")
    p.add_argument("-lra", "--lr_annealing_steps", default=None,
                   type=_number(int, "lr_annealing_steps", 1),
                   help="global agent steps over which the learning rate falls linearly to 0 "
                        "(and stays there). Default: --max_global_steps, as in the paper, which "
                        "anneals over the whole run")
    p.add_argument("--clip_loss", default=0.0, type=_number(float, "clip_loss", 0),
                   help="if > 0, the TD error of the value-based methods is clipped at "
                        "+/- this value (Huber loss)")
    p.add_argument("--entropy", default=None, type=_number(float, "entropy", 0),
                   help="entropy regularisation weight beta of A3C. Default (paper): 0.01 for "
                        "discrete actions, 1e-4 for continuous ones")
    p.add_argument("--lstm", default=False, type=bool_arg,
                   help="A3C LSTM: 256 LSTM cells after the torso's last dense layer (the "
                        "paper's strongest agent); its state is carried through an episode and "
                        "its gradient truncated at segments of --max_local_steps")
    p.add_argument("--clip_norm", default=None,
                   type=_number(float, "clip_norm", 0, low_open=True),
                   help="gradient norm above which gradients are rescaled. Default: from "
                        "--preset (paper: 40)")
    p.add_argument("--clip_norm_type", default=None, type=_choice(CLIP_NORM_TYPES),
                   help="ignore: no clipping; local: clip each tensor's gradient norm; "
                        "global: clip the norm of the whole gradient. Default: global for "
                        "Atari's convolutional networks, local for the MLPs of vector "
                        "observations (ours: CartPole learns 2-3x faster, InvertedPendulum "
                        "reliably)")
    p.add_argument("--alg_type", default="a3c", type=_choice(ALGORITHMS),
                   help="a3c: advantage actor-critic; q: one-step / n-step Q-learning; "
                        "sarsa: one-step / n-step Sarsa")
    p.add_argument("-n", "--num_actor_learners", default=cores,
                   type=_number(int, "num_actor_learners", 1, 1024),
                   help="actor-learner processes (the paper used 16 threads; the default is "
                        "this machine's CPU count)")
    p.add_argument("--gamma", default=0.99, type=_number(float, "gamma", 0, 1),
                   help="discount factor")
    p.add_argument("--q_target_update_steps", default=None,
                   type=_number(int, "q_target_update_steps", 1),
                   help="global agent steps between target-network refreshes (default: the "
                        "paper's 40,000 frames = 10,000 agent steps on Atari, 500 on vector "
                        "observations)")
    p.add_argument("--grads_update_steps", default=5, type=_number(int, "grads_update_steps", 1),
                   help="steps of accumulated gradient per update for one-step methods "
                        "(paper's I_AsyncUpdate: 5)")
    p.add_argument("--max_global_steps", default=80_000_000,
                   type=_number(int, "max_global_steps", 1),
                   help="total agent steps over all actor-learners (paper's '1 day': 80 M)")
    p.add_argument("--stop_return", default=None, type=_number(float, "stop_return"),
                   metavar="R",
                   help="also stop, as at the step budget, once the mean return of the last 20 "
                        "episodes reaches R (default: train for the whole budget)")
    p.add_argument("-ea", "--epsilon_annealing_steps", default=None,
                   type=_number(int, "epsilon_annealing_steps", 1),
                   help="global agent steps over which epsilon anneals from 1 to its final value "
                        "(value-based methods; default: the paper's 1,000,000 on Atari, 30,000 "
                        "on vector observations)")
    p.add_argument("--envs_per_actor", default=None,
                   type=_number(int, "envs_per_actor", 1, MAX_ENVS_PER_ACTOR),
                   help="environments per actor-learner, stepped together: one batched forward "
                        "pass chooses their actions, one gradient over all their steps makes one "
                        "update (PAAC's batched actor-learner within the paper's asynchronous "
                        "scheme). 1 is the paper's algorithm. Steps count per environment. "
                        f"Default: for A3C on Atari with --preset tuned, {PAPER_THREADS} // -n "
                        f"(at least 1: the paper's {PAPER_THREADS} streams of experience on "
                        "fewer cores, e.g. 8 with -n 2); else 1")
    p.add_argument("--max_local_steps", default=None,
                   type=_number(int, "max_local_steps", 1, 10_000),
                   help="t_max: steps per actor-learner segment before an update. Default: "
                        "from --preset (paper: 5)")
    p.add_argument("--rescale_rewards", default=None, type=bool_arg,
                   help="true: divide rewards by the largest absolute reward seen so far; "
                        "false: clip rewards to [-1, 1] (paper). Default: clip for discrete "
                        "actions, rescale for continuous ones, whose rewards clipping flattens")
    p.add_argument("--arch", default=None, type=_choice(ARCHITECTURES, str.upper),
                   help="convolutional torso for Atari: NIPS (2013, the paper's), NATURE (2015) "
                        "or UNIVERSE (4 ELU convs on 42x42 frames, one frame with --lstm); "
                        "vector observations always use an MLP. Default: from --preset")
    p.add_argument("--single_life_episodes", default=False, type=bool_arg,
                   help="true: a lost life is a terminal state for learning (the game goes on "
                        "until it is over)")
    p.add_argument("--fire_reset", default=False, type=bool_arg,
                   help="true: press FIRE for one step after a reset and after a lost life, in "
                        "Atari games that have it (Breakout's serve)")
    p.add_argument("--seed", default=None, type=_number(int, "seed", 0, 2**31 - 1),
                   help="random seed (actor i uses seed + i); default: drawn at random and "
                        "recorded in config.json")
    p.add_argument("--summary_dir", default="/tmp/summary_logs",
                   help="run directories are made under <summary_dir>/<game>/<alg_type>/")
    p.add_argument("--max_restarts", default=3, type=_number(int, "max_restarts", 0),
                   help="actor-learners that die or stall are restarted, up to this many times "
                        "in all; past that training stops")
    p.add_argument("--stall_timeout", default=300.0,
                   type=_number(float, "stall_timeout", 0, low_open=True),
                   help="seconds without a step after which an actor-learner is treated as dead")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    # Where the actor-learners run (ours).
    p.add_argument("--cluster", default="local", type=_choice(CLUSTERS),
                   help="local: actor-learner processes of this machine, parameters in its "
                        "shared memory; ray: actor-learners as Ray actors on a Ray cluster, "
                        "parameters on a parameter-server actor (help/SCALING.md)")
    p.add_argument("--ray_address", default=None, metavar="ADDRESS",
                   help="with --cluster ray: 'auto' (the cluster this machine belongs to), "
                        "host:port or ray://host:port; default: a Ray instance started for this "
                        "run on this machine, and stopped at its end")
    # Checkpoints (ours; the original saved to checkpoints/<game>/<alg_type>/ as well).
    p.add_argument("--checkpoint_dir", default=None,
                   help="folder of this run's checkpoints. Default: checkpoints/<game>/<alg_type>/ "
                        "under the current folder")
    p.add_argument("--checkpoint_interval", default=500_000,
                   type=_number(int, "checkpoint_interval", 1),
                   help="global agent steps between checkpoints; one is also written when "
                        "training ends or is stopped by a signal")
    p.add_argument("--keep_checkpoints", default=3, type=_number(int, "keep_checkpoints", 1),
                   help="how many of the newest checkpoints to keep")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoint in --checkpoint_dir (or from "
                        "--checkpoint), with its hyperparameters except those given on this "
                        "command line. Without it, a --checkpoint_dir that already holds "
                        "checkpoints is an error, so nothing is overwritten")
    p.add_argument("--checkpoint", default=None,
                   help="a checkpoint file to resume from (with --resume) or to evaluate "
                        "(--mode eval); default: the latest in --checkpoint_dir")
    # Evaluation (the paper's protocol: up to 30 no-op starts, unclipped scores).
    p.add_argument("--mode", default="train", type=_choice(MODES),
                   help="train, or eval: play --eval_episodes episodes with a checkpoint's "
                        "network and report the scores")
    p.add_argument("--eval_episodes", default=30, type=_number(int, "eval_episodes", 1),
                   help="episodes to play in --mode eval")
    p.add_argument("--greedy", action="store_true",
                   help="--mode eval with A3C: take the most probable action instead of "
                        "sampling from the policy")
    p.add_argument("--eval_epsilon", default=0.05, type=_number(float, "eval_epsilon", 0, 1),
                   help="--mode eval with value-based methods: probability of a random action")
    p.add_argument("--eval_file", default=None,
                   help="--mode eval: JSON file for the scores. Default: eval-<step>.json "
                        "beside the checkpoint")
    p.add_argument("--record_video", default=None, metavar="DIR",
                   help="--mode eval: save evaluated episodes as MP4 files of the game screen "
                        "in DIR")
    p.add_argument("--video_episodes", default=None, type=_number(int, "video_episodes", 1),
                   help="--mode eval with --record_video: record only the first K episodes "
                        "(default: all)")
    return p


# What a configuration saved before a flag existed meant by its absence, for the flags whose
# parser default (None) is resolved later: one environment per actor-learner.
SAVED_BEFORE_DEFAULTS_RESOLVED = {"envs_per_actor": 1}
# Flags that belong to one invocation, never taken from a checkpoint's saved config.
INVOCATION_FLAGS = ("resume", "checkpoint", "mode", "eval_episodes", "greedy", "eval_epsilon",
                    "eval_file", "record_video", "video_episodes", "quiet", "visualize",
                    "stop_return", "cluster", "ray_address")


def explicit_flags(argv: Sequence[str] | None = None) -> set[str]:
    """The destinations of the flags given on the command line (not left at their default)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    namespace, _ = parser.parse_known_args(argv)
    return set(vars(namespace))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse and validate the command line; exits with code 2 on any invalid value."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        validate(args)
    except UserError as err:
        parser.error(str(err))
    return args


def validate(args: argparse.Namespace) -> None:
    """Checks that need more than one flag, or the machine. Raises UserError."""
    if args.rom_path is not None:
        if args.env != "ALE":
            raise UserError("argument --rom_path: only used with --env ALE")
        if not os.path.isdir(args.rom_path):
            raise UserError(f"argument --rom_path: folder {args.rom_path!r} does not exist "
                            "(give a folder of <game>.bin files, or leave it out to use the "
                            "ROMs bundled with ale-py)")
    if args.visualize:
        _check_display(os.environ.get("DISPLAY", ""))
    if args.ray_address is not None and args.cluster != "ray":
        raise UserError("argument --ray_address: only used with --cluster ray")
    if args.cluster == "ray" and args.visualize:
        raise UserError("argument -v/--visualize: actor-learners on a Ray cluster draw no "
                        "windows; use -v 0, or --cluster local")
    if args.lstm and args.alg_type != "a3c":
        raise UserError(f"argument --lstm: only A3C has an LSTM variant, not --alg_type "
                        f"{args.alg_type} (use --alg_type a3c, or --lstm false)")
    if args.checkpoint_dir is None:
        args.checkpoint_dir = os.path.join("checkpoints", args.game.replace("/", "-"),
                                           args.alg_type)
    if args.checkpoint is not None and not (args.resume or args.mode == "eval"):
        raise UserError("argument --checkpoint: only used with --resume or --mode eval")
    if args.mode == "eval":
        if args.resume:
            raise UserError("argument --resume: only used in --mode train")
        if args.eval_file is not None and os.path.isdir(args.eval_file):
            raise UserError(f"argument --eval_file: {args.eval_file!r} is a folder; give a file "
                            "name (e.g. eval.json)")
        for flag in ("record_video", "eval_file"):
            if getattr(args, flag) is not None:
                check_writable(getattr(args, flag) if flag == "record_video"
                                else os.path.dirname(os.path.abspath(args.eval_file)),
                                f"--{flag}")
        if args.video_episodes is not None and args.record_video is None:
            raise UserError("argument --video_episodes: only used with --record_video DIR")
        return
    for flag in ("record_video", "eval_file", "video_episodes"):
        if getattr(args, flag) is not None:
            raise UserError(f"argument --{flag}: only used with --mode eval")
    check_writable(args.summary_dir, "--summary_dir")
    check_writable(args.checkpoint_dir, "--checkpoint_dir")


def _check_display(display: str) -> None:
    """An X display that accepts connections: its socket, or TCP port 6000 + N for host:N."""
    if not display:
        raise UserError("argument -v/--visualize: no display (DISPLAY is not set); use -v 0, "
                        "or forward an X display")
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        raise UserError(f"argument -v/--visualize: DISPLAY={display!r} is not an X display "
                        "(expected host:N or :N); fix DISPLAY, or use -v 0")
    if host in ("", "unix"):
        family, address = socket.AF_UNIX, f"/tmp/.X11-unix/X{number}"
        if sys.platform.startswith("linux") and not os.path.exists(address):
            address = "\0" + address   # the abstract socket an X server also listens on
    else:
        family, address = socket.AF_INET, (host, 6000 + int(number))
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(address)
    except OSError as error:
        raise UserError(f"argument -v/--visualize: cannot reach the X display {display!r} "
                        f"({error.strerror or error}); start or forward an X server (see README, "
                        "Docker), or use -v 0") from None


# A generous bound on the longest path the trainer writes below a folder it is given: a
# checkpoint's temporary file, or a TensorBoard event file,
# "<game>/<alg>/<timestamp>_N/actor_<i>/events.out.tfevents.<time>.<host>.<pid>.<n>.v2".
LONGEST_NAME = 200


def existing_ancestor(path: str) -> str:
    """``path`` itself if it exists, else the nearest folder above it that does."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing


def check_writable(path: str, flag: str) -> None:
    """``path`` is a writable folder, or could be created as one: a real write succeeds in the
    nearest existing folder (root ignores mode bits, a read-only file system does not), and the
    names to create fit the file system's limits. Nothing is left behind."""
    import tempfile
    absolute = os.path.abspath(path)
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        raise UserError(f"argument {flag}: {path!r} is a file, not a folder "
                        "(choose a folder you can write to)")
    existing = existing_ancestor(absolute)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"argument {flag}: {path!r} is not writable "
                        "(choose a folder you can write to)")
    name_max = os.pathconf(existing, "PC_NAME_MAX")
    path_max = os.pathconf(existing, "PC_PATH_MAX")
    to_create = os.path.relpath(absolute, existing).split(os.sep) if absolute != existing else []
    too_long = [name for name in to_create if len(name.encode()) > name_max]
    if too_long or len(absolute.encode()) + LONGEST_NAME + 1 > path_max:
        what = (f"the name {too_long[0][:40]!r}... has {len(too_long[0].encode())} bytes, "
                f"the file system allows {name_max}" if too_long else
                f"the path is too long for the files written in it ({path_max} bytes at most)")
        raise UserError(f"argument {flag}: {path!r} cannot be used: {what} (choose a shorter "
                        "name)")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".asyncrl-write-test-")
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        raise UserError(f"argument {flag}: {path!r} cannot be written "
                        f"({err.strerror or err}); choose a folder you can write to") from None


def check_room(folder: str, needed_bytes: int, flag: str) -> None:
    """The file system of ``folder`` has ``needed_bytes`` free (two checkpoints, say)."""
    info = os.statvfs(existing_ancestor(folder))
    free = info.f_bavail * info.f_frsize
    if free < needed_bytes:
        mb = 1024 * 1024
        raise UserError(f"argument {flag}: {folder!r} has {free / mb:.1f} MB free, and two "
                        f"checkpoints of this run need {needed_bytes / mb:.1f} MB (free some "
                        "space, or choose another folder)")


def resolve_defaults(args: argparse.Namespace, continuous: bool, atari: bool) -> str | None:
    """Fill the defaults that depend on the environment and on ``--preset`` (entropy weight,
    reward handling, gradient clipping, network, optimizer, t_max, learning rate, exploration
    and target refresh of the value-based methods) and a random
    seed; returns a line to print when the learning rate was sampled (``-lr 0``, as the paper
    did). A resumed or evaluated run has these from its checkpoint, so a checkpoint written
    before a default changed goes on with the values it was trained with."""
    if args.seed is None:
        args.seed = int(random.SystemRandom().randrange(2**31 - 1 - args.num_actor_learners))
    if args.entropy is None:
        args.entropy = CONTINUOUS_ENTROPY if continuous else ENTROPY
    if args.rescale_rewards is None:
        args.rescale_rewards = continuous
    if args.clip_norm_type is None:
        args.clip_norm_type = "global" if atari else "local"
    tuned = args.preset == "tuned" and atari and args.alg_type == "a3c"
    # With K environments an update averages K segments: K times fewer updates per step, each
    # as large as one segment's. Adam's steps do not grow with the gradient, so the tuned
    # learning rate grows with K instead (PAAC's rule; measured on Pong, HYPERPARAMETERS.md).
    scale_lr = tuned and args.initial_lr is None
    if args.envs_per_actor is None:
        args.envs_per_actor = max(1, PAPER_THREADS // args.num_actor_learners) if tuned else 1
    for key, value in {**PAPER_VALUES, **(TUNED_ATARI_A3C if tuned else {}),
                       **(ATARI_VALUE_BASED if atari else VECTOR_VALUE_BASED)}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.e is None:
        args.e = OPTIMIZER_EPS[args.opt_type]
    if scale_lr:
        args.initial_lr *= args.envs_per_actor
    if args.initial_lr is None:
        args.initial_lr = ATARI_LR if atari else VECTOR_LR
    elif args.initial_lr == 0:
        rng = random.Random(args.seed)
        args.initial_lr = math.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))
        return f"initial learning rate sampled from LogUniform(1e-4, 1e-2): {args.initial_lr:.6g}"
    return None


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of one run, resolved, typed and frozen.

    Built once by :func:`from_namespace` after parsing, validation and
    :func:`resolve_defaults`; travels to every process and into every checkpoint. Field names are
    the flags' names (``--max_local_steps`` is ``config.max_local_steps``). ``config.json`` and
    checkpoints hold :meth:`to_dict`; :meth:`from_dict` reads them back, from any version:
    unknown keys are dropped and keys that an older version did not write take today's
    defaults.
    """
    # environment
    game: str
    env: str
    rom_path: str | None
    single_life_episodes: bool
    fire_reset: bool
    # algorithm and network
    preset: str
    alg_type: str
    arch: str
    lstm: bool
    num_actor_learners: int
    envs_per_actor: int
    max_local_steps: int
    grads_update_steps: int
    gamma: float
    entropy: float
    rescale_rewards: bool
    clip_loss: float
    q_target_update_steps: int
    epsilon_annealing_steps: int
    # optimizer
    opt_type: str
    opt_mode: str
    initial_lr: float
    lr_annealing_steps: int | None   # None: over max_global_steps (see lr_schedule_steps)
    alpha: float
    e: float
    b1: float
    b2: float
    clip_norm: float
    clip_norm_type: str
    # the run
    seed: int
    max_global_steps: int
    stop_return: float | None
    summary_dir: str
    checkpoint_dir: str
    checkpoint_interval: int
    keep_checkpoints: int
    max_restarts: int
    stall_timeout: float
    visualize: int
    quiet: bool
    # this invocation
    cluster: str
    ray_address: str | None
    mode: str
    resume: bool
    checkpoint: str | None
    eval_episodes: int
    greedy: bool
    eval_epsilon: float
    eval_file: str | None
    record_video: str | None
    video_episodes: int | None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> "Config":
        return cls.from_dict(vars(args))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Config":
        """A configuration from saved values; missing keys take the parser's defaults."""
        known = {f.name for f in fields(cls)}
        merged = {**parser_defaults(), **{k: v for k, v in values.items() if k in known}}
        for key, value in SAVED_BEFORE_DEFAULTS_RESOLVED.items():
            if merged[key] is None:
                merged[key] = value
        return cls(**merged)

    def to_dict(self) -> dict[str, Any]:
        """The hyperparameters as a JSON-ready dict, sorted by name."""
        return dict(sorted(asdict(self).items()))

    def replace(self, **changes: Any) -> "Config":
        return replace(self, **changes)

    @property
    def value_based(self) -> bool:
        return self.alg_type != "a3c"

    @property
    def lr_schedule_steps(self) -> int:
        """Global steps over which the learning rate falls to 0: ``--lr_annealing_steps``, or
        the run's whole budget (also after a resume that raised ``--max_global_steps``)."""
        return self.lr_annealing_steps or self.max_global_steps


def check_saved(saved: Any, source: str) -> None:
    """A configuration read from a checkpoint passes the command line's own checks (each value
    through its flag's type and range); UserError naming ``source`` and the first bad value."""
    if not isinstance(saved, dict):
        raise UserError(f"{source}: its saved configuration is a {type(saved).__name__}, not a "
                        "mapping; pass another checkpoint")
    for action in build_parser()._actions:
        if action.dest not in saved or action.type is None:
            continue
        value = saved[action.dest]
        if value is None and action.default is None:
            continue
        bad = isinstance(value, (dict, list)) or (isinstance(value, bool)
                                                  and action.type is not bool_arg)
        if not bad:
            try:
                action.type(str(value))
            except (argparse.ArgumentTypeError, ValueError, TypeError):
                bad = True
        if bad:
            raise UserError(f"{source}: its saved configuration has {action.dest} {value!r}, "
                            f"which the command line refuses; pass another checkpoint")


def parser_defaults() -> dict[str, Any]:
    """Every flag's default, as the parser gives it (before :func:`resolve_defaults`)."""
    return {action.dest: action.default for action in build_parser()._actions
            if action.dest != "help"}


if __name__ == "__main__":  # pragma: no cover - convenience for `python config.py -h`
    print(vars(parse_args(sys.argv[1:])))
