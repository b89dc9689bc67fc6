"""Every hyperparameter once: name, default, where the default comes from, help text, validation.

Each one is a field of :class:`Config`, declared with its flag (names, default, type, help
text): the command line is made from these declarations. The flag names and meanings are those
of the original project (``python main.py -h``); the defaults are the paper's (Mnih et al.,
2016, arXiv 1602.01783) or its authors' replies, except where a comment says otherwise.

Parsing and validation never touch TensorFlow or the emulator: a user mistake ends here with one
line and exit code 2, before anything is started. The checks of the machine (folders, display)
are in ``checks.py``.
"""
from __future__ import annotations

import argparse
import math
import os
import random
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Sequence

from .argtypes import OneLineParser, boolean, choice, number, number_or
from .checks import check_display, check_printable, check_writable
from .errors import UserError

ALGORITHMS = ("a3c", "q", "sarsa")
ARCHITECTURES = ("NIPS", "NATURE", "UNIVERSE", "NATURE_STD", "UNIVERSE_DENSE", "NATURE_ELU",
                 "UNIVERSE_RELU", "UNIVERSE_RAW", "NATURE_CENTRED", "UNIVERSE_WIDE",
                 "UNIVERSE_SHALLOW", "UNIVERSE_D512", "NATURE_LEAKY", "UNIVERSE_PLAIN",
                 "UNIVERSE_BG", "UNIVERSE_BGSTD", "UNIVERSE_BGSTD_S4",
                 "UNIVERSE_BGSTD_SHALLOW", "UNIVERSE_BGSTD_POOL", "UNIVERSE_BGSTD_POOL4")
ENVIRONMENTS = ("ALE", "GYM")
OPTIMIZERS = ("rmsprop", "momentum", "adam")
OPT_MODES = ("shared", "local")
CLIP_NORM_TYPES = ("ignore", "local", "global")
MODES = ("train", "eval")
CROPS = ("field", "none")
# How Atari screens are brought to their size (environments.shrink): the mean of the pixels each
# covers, or by 2x2 blocks' pixels farthest from the background (small objects keep contrast).
RESAMPLES = ("area", "salient")
# The largest --screen_size that --resample salient makes: twice it fits the screen's width.
SALIENT_MAX = 80
ATARI_SCREEN = 84   # the paper's frames, 84x84
# UNIVERSE torsos made for 84x84 frames of the field (their first layer strides 4, or is
# followed by a pool).
FULL_SIZE_UNIVERSE = ("UNIVERSE_BGSTD_S4", "UNIVERSE_BGSTD_POOL", "UNIVERSE_BGSTD_POOL4")
CLUSTERS = ("local", "ray")

# An Atari environment holds about 0.8 MB (measured, ale-py 0.12); the cap keeps a segment's
# buffers and batched activations well inside an ordinary machine's memory.
MAX_ENVS_PER_ACTOR = 256
ATARI_LR = 7e-4
ENTROPY = 0.01             # discrete actions (paper)
CONTINUOUS_ENTROPY = 1e-4  # Gaussian policies (paper, continuous control)
VECTOR_LR = 3e-3
PRESETS = ("tuned", "paper")
EVAL_INTERVAL = 100_000   # the test process's default on Atari: a game every ~50 s here
PAPER_THREADS = 16   # the paper's actor-learner threads per machine
# --preset: the values of the flags left unset. "paper" is the paper's (with ATARI_LR, or
# VECTOR_LR for vector tasks); "tuned" is what learned both Pong and Breakout fastest per step
# here: UNIVERSE's convs and a dense layer, with ReLU units, on frames less their background and
# divided by their spread (UNIVERSE_BGSTD, since 2026-12-05: Pong +18 at 0.54-0.61 M steps;
# Breakout 61 at 2 M where UNIVERSE_DENSE, the default before it, made 7), and a lost life
# terminal for learning (Breakout: 10.6 against 6.6 at 2 M; Pong and Boxing have no lives), and
# since 2026-12-06 42x42 frames made by salient 2x2 blocks of 84x84 ones, where frames of that
# size fit (frame_size <= SALIENT_MAX; area otherwise): Beam Rider 3,583 over 30 games at 10 M
# steps where area frames made 1,091 at best by 4.5 M; Pong +18 at 0.92-0.95 M.
# A3C on Atari only; the measurements are in help/HYPERPARAMETERS.md and help/RESULTS.md.
PAPER_VALUES = {"arch": "NIPS", "opt_type": "rmsprop", "max_local_steps": 5, "clip_norm": 40.0}
TUNED_ATARI_A3C = {"arch": "UNIVERSE_BGSTD", "opt_type": "adam", "initial_lr": 1e-4,
                   "max_local_steps": 20, "clip_norm": 50.0, "single_life_episodes": True,
                   "resample": "salient"}
# The value-based methods batched as A3C is (--preset tuned on Atari), measured with n-step Q
# on Pong (help/HYPERPARAMETERS.md): 5e-4 at K = 8 games per actor-learner; A3C's torso since
# 2026-12-05 (n-step Q +5 at 0.41 M steps where UNIVERSE took 0.74-1.63 M; one-step Sarsa -5 at
# 1.81 M where it never passed -14 in 5 M).
TUNED_ATARI_VALUE = {"arch": "UNIVERSE_BGSTD", "opt_type": "adam", "initial_lr": 6.25e-5,
                     "clip_norm": 50.0, "epsilon_annealing_steps": 250_000, "final_epsilon": 0.01}
MIN_STALL_TIMEOUT = 1.0   # seconds; --stall_timeout below it would kill learners at work
PAPER_DRAW = "paper"   # --final_epsilon: each actor-learner draws its own (exploration.py)
OPTIMIZER_EPS = {"rmsprop": 0.1, "momentum": 0.1, "adam": 1e-8}
# The value-based methods' exploration and target refresh: the paper's on Atari (epsilon annealed
# over 4 M frames, the target refreshed every 40,000 frames); on vector observations, whose tasks
# are learned in tens of thousands of steps, both scaled down to what learns CartPole-v1 here
# (measured: help/HYPERPARAMETERS.md). Neither depends on --preset: the paper has no vector tasks.
ATARI_VALUE_BASED = {"epsilon_annealing_steps": 1_000_000, "q_target_update_steps": 10_000}
VECTOR_VALUE_BASED = {"epsilon_annealing_steps": 30_000, "q_target_update_steps": 500}

# --------------------------------------------------------------------------- the flags
def _flag(group: str, *names: str, help: str, default: Any = None, type=None,
          metavar: str | None = None, action: str | None = None, invocation: bool = False):
    """A ``Config`` field declared with its flag: its names (none for a positional argument),
    default, type, help text, the help section it is listed in, and whether it belongs to one
    invocation alone (never taken from a checkpoint's saved configuration)."""
    return field(metadata={"names": names, "help": help, "default": default, "type": type,
                           "metavar": metavar, "action": action, "group": group,
                           "invocation": invocation})


def _section(group: str):
    return lambda *names, **kwargs: _flag(group, *names, **kwargs)


ENVIRONMENT = _section("environment")
ALGORITHM = _section("algorithm and network")
OPTIMIZER = _section("optimizer (paper, Section 4 and supplementary S3)")
RUN = _section("the run")
PLACE = _section("where the actor-learners run")
CHECKPOINTS = _section("checkpoints")
EVALUATION = _section("evaluation (the paper's protocol: up to 30 no-op starts, unclipped scores)")
CPU_COUNT = os.cpu_count() or 1


@dataclass(frozen=True)
class Config:
    """Every hyperparameter of one run, resolved, typed and frozen; each field declared once,
    with its flag (:func:`build_parser` makes the command line from these declarations).

    Built once by :func:`from_namespace` after parsing, validation and
    :func:`resolve_defaults`; travels to every process and into every checkpoint. Field names are
    the flags' names (``--max_local_steps`` is ``config.max_local_steps``). ``config.json`` and
    checkpoints hold :meth:`to_dict`; :meth:`from_dict` reads them back, from any version:
    unknown keys are dropped and keys that an older version did not write take today's
    defaults.
    """
    game: str = ENVIRONMENT(
        help="Atari game (e.g. pong, breakout, space_invaders) with --env ALE; a Gymnasium id "
             "(e.g. CartPole-v1, ALE/Pong-v5) with --env GYM")
    env: str = ENVIRONMENT(
        "--env", default="ALE", type=choice(ENVIRONMENTS, str.upper),
        help="ALE: the Arcade Learning Environment directly; GYM: any Gymnasium id")
    rom_path: str | None = ENVIRONMENT(
        "--rom_path",
        help="folder of <game>.bin ROMs; when the game's ROM is not there, the ROM bundled with "
             "ale-py is used instead (with a notice). Default: bundled ROMs")
    single_life_episodes: bool = ENVIRONMENT(
        "--single_life_episodes", type=boolean,
        help="true: a lost life is a terminal state for learning (the game goes on until it is "
             "over; the returns shown are whole games'). Default: true for A3C on Atari under "
             "--preset tuned, else false")
    fire_reset: bool = ENVIRONMENT(
        "--fire_reset", default=False, type=boolean,
        help="true: press FIRE for one step after a reset and after a lost life, in Atari games "
             "that have it (Breakout's serve)")
    # algorithm and network
    preset: str = ALGORITHM(
        "--preset", default="tuned", type=choice(PRESETS),
        help="defaults of the flags left unset: tuned (A3C on Atari: the settings measured to "
             "learn Pong and Breakout fastest per step here, see help/HYPERPARAMETERS.md: --arch "
             "UNIVERSE_BGSTD --opt_type adam -lr 1e-4 --max_local_steps 20 --clip_norm 50 "
             f"--single_life_episodes true --resample salient (frames of {SALIENT_MAX} pixels "
             "or fewer)) or paper (the "
             f"paper's: --arch NIPS --opt_type rmsprop --e 0.1 -lr {ATARI_LR:g} "
             "--max_local_steps 5 --clip_norm 40). The value-based methods on Atari, tuned: "
             "--arch UNIVERSE_BGSTD --opt_type adam, 6.25e-5 x --envs_per_actor, --clip_norm 50, "
             "-ea 250000; vector tasks get the paper's either way")
    alg_type: str = ALGORITHM(
        "--alg_type", default="a3c", type=choice(ALGORITHMS),
        help="a3c: advantage actor-critic; q: one-step / n-step Q-learning; sarsa: one-step / "
             "n-step Sarsa")
    arch: str = ALGORITHM(
        "--arch", type=choice(ARCHITECTURES, str.upper),
        help="convolutional torso for Atari: NIPS (2013, the paper's), NATURE (2015), "
             "UNIVERSE (4 ELU convs on 42x42 frames, one frame with --lstm, each observation "
             "standardised), UNIVERSE_DENSE (UNIVERSE and a dense layer of 256), NATURE_STD "
             "(NATURE on standardised observations), NATURE_ELU (NATURE with ELU units, whose "
             "gradient is never exactly zero as a dead ReLU unit's is), UNIVERSE_RELU "
             "(UNIVERSE_DENSE with ReLU units), UNIVERSE_RAW (UNIVERSE_DENSE on frames / 255, "
             "not standardised), NATURE_CENTRED (NATURE on frames / 255 less each "
             "observation's mean), UNIVERSE_WIDE (UNIVERSE_DENSE with 64 filters a layer), "
             "UNIVERSE_SHALLOW (UNIVERSE_DENSE with three convs), UNIVERSE_D512 "
             "(UNIVERSE_DENSE with a dense layer of 512), NATURE_LEAKY (NATURE with leaky "
             "ReLU units), UNIVERSE_PLAIN (UNIVERSE_DENSE on frames / 255 with ReLU units), "
             "UNIVERSE_BG (UNIVERSE_PLAIN on frames less their most common value), "
             "UNIVERSE_BGSTD (UNIVERSE_BG divided by each observation's spread), "
             "UNIVERSE_BGSTD_S4 (UNIVERSE_BGSTD with a first layer of 4x4 patches, stride 4, "
             "for 84x84 frames), UNIVERSE_BGSTD_SHALLOW (UNIVERSE_BGSTD with three convs) or "
             "UNIVERSE_BGSTD_POOL (84x84 frames: UNIVERSE_BGSTD's first layer, a 2x2 max-pool, "
             "two convs), UNIVERSE_BGSTD_POOL4 (the same with three convs after the pool, "
             "UNIVERSE_BGSTD's); "
             "vector observations "
             "always use an MLP. Default: from --preset")
    screen_size: int | None = ALGORITHM(
        "--screen_size", type=number(int, "screen_size", 36, 210),
        help="Atari frames are resized to this many pixels square. Default: 42 with --arch "
             "UNIVERSE* (the UNIVERSE torsos) but UNIVERSE_BGSTD_S4 and UNIVERSE_BGSTD_POOL*, 84 "
             "with the others")
    crop: str | None = ALGORITHM(
        "--crop", type=choice(CROPS, str.lower),
        help="field: Atari screens keep rows 34-193 of 210 (the playing field, without the score "
             "above it) before they are resized; none: the whole screen. Default: field with "
             "the UNIVERSE torsos (--arch UNIVERSE*), none with the others")
    resample: str | None = ALGORITHM(
        "--resample", type=choice(RESAMPLES, str.lower),
        help="How Atari screens are brought to --screen_size: area (each pixel the mean of "
             "those it covers) or salient (twice the size by area, then of each 2x2 block the "
             "pixel farthest from the frame's background, the most common value of every third "
             "pixel: objects a pixel or two wide keep their contrast). Default: salient for A3C "
             f"under --preset tuned on frames of {SALIENT_MAX} pixels or fewer, area otherwise")
    lstm: bool = ALGORITHM(
        "--lstm", default=False, type=boolean,
        help="A3C LSTM: 256 LSTM cells after the torso's last dense layer (the paper's strongest "
             "agent); its state is carried through an episode and its gradient truncated at "
             "segments of --max_local_steps")
    num_actor_learners: int = ALGORITHM(
        "-n", "--num_actor_learners", default=CPU_COUNT,
        type=number(int, "num_actor_learners", 1, 1024),
        help="actor-learner processes (the paper used 16 threads; the default is this machine's "
             "CPU count)")
    envs_per_actor: int = ALGORITHM(
        "--envs_per_actor", type=number(int, "envs_per_actor", 1, MAX_ENVS_PER_ACTOR),
        help="environments per actor-learner, stepped together: one batched forward pass "
             "chooses their actions, one gradient over all their steps makes one update (PAAC's "
             "batched actor-learner within the paper's asynchronous scheme). 1 is the paper's "
             "algorithm. Steps count per environment. Default: on Atari with --preset "
             f"tuned, {PAPER_THREADS} // -n (at least 1: the paper's {PAPER_THREADS} streams of "
             "experience on fewer cores, e.g. 8 with -n 2); else 1")
    max_local_steps: int = ALGORITHM(
        "--max_local_steps", type=number(int, "max_local_steps", 1, 10_000),
        help="t_max: steps per actor-learner segment before an update. Default: from --preset "
             "(paper: 5)")
    grads_update_steps: int = ALGORITHM(
        "--grads_update_steps", default=5, type=number(int, "grads_update_steps", 1),
        help="steps of accumulated gradient per update for one-step methods (paper's "
             "I_AsyncUpdate: 5)")
    gamma: float = ALGORITHM("--gamma", default=0.99, type=number(float, "gamma", 0, 1),
                             help="discount factor")
    entropy: float = ALGORITHM(
        "--entropy", type=number(float, "entropy", 0),
        help="entropy regularisation weight beta of A3C. Default (paper): 0.01 for discrete "
             "actions, 1e-4 for continuous ones")
    rescale_rewards: bool = ALGORITHM(
        "--rescale_rewards", type=boolean,
        help="true: divide rewards by the largest absolute reward seen so far; false: clip "
             "rewards to [-1, 1] (paper). Default: clip for discrete actions, rescale for "
             "continuous ones, whose rewards clipping flattens")
    clip_loss: float = ALGORITHM(
        "--clip_loss", default=0.0, type=number(float, "clip_loss", 0),
        help="if > 0, the TD error of the value-based methods is clipped at +/- this value "
             "(Huber loss)")
    q_target_update_steps: int = ALGORITHM(
        "--q_target_update_steps", type=number(int, "q_target_update_steps", 1),
        help="global agent steps between target-network refreshes (default: the paper's 40,000 "
             "frames = 10,000 agent steps on Atari, 500 on vector observations)")
    epsilon_annealing_steps: int = ALGORITHM(
        "-ea", "--epsilon_annealing_steps", type=number(int, "epsilon_annealing_steps", 1),
        help="global agent steps over which epsilon anneals from 1 to its final value "
             "(value-based methods; default: the paper's 1,000,000 on Atari, 30,000 on vector "
             "observations)")
    final_epsilon: float | str | None = ALGORITHM(
        "--final_epsilon", type=number_or(PAPER_DRAW, float, "final_epsilon", 0, 1),
        help="value-based methods: every actor-learner's final exploration rate, or 'paper': "
             "each actor-learner draws its own from {0.1, 0.01, 0.5} with probabilities "
             "{0.4, 0.3, 0.3}. Default: from --preset (tuned, on Atari: 0.01)")
    # optimizer
    opt_type: str = OPTIMIZER(
        "--opt_type", type=choice(OPTIMIZERS),
        help="optimizer applied to the shared parameters. Default: from --preset")
    opt_mode: str = OPTIMIZER(
        "--opt_mode", default="shared", type=choice(OPT_MODES),
        help="shared: one set of optimizer statistics for all actor-learners (the paper's most "
             "robust choice); local: statistics per actor-learner")
    initial_lr: float = OPTIMIZER(
        "-lr", "--initial_lr", type=number(float, "initial_lr", 0),
        help="initial learning rate, annealed linearly to 0; 0 samples it from "
             "LogUniform(1e-4, 1e-2) as the paper did, and prints it. Default: 1e-4 x "
             "--envs_per_actor for A3C on Atari with --preset tuned (6.25e-5 x for the "
             "value-based methods); else "
             f"{ATARI_LR:g} for Atari (the usual choice within the paper's range), "
             f"{VECTOR_LR:g} for vector observations (ours: CartPole learns in about 40,000 "
             "steps with 2 actor-learners)")
    lr_annealing_steps: int | None = OPTIMIZER(   # None: over max_global_steps
        "-lra", "--lr_annealing_steps", type=number(int, "lr_annealing_steps", 1),
        help="global agent steps over which the learning rate falls linearly to 0 (and stays "
             "there). Default: --max_global_steps, as in the paper, which anneals over the "
             "whole run")
    alpha: float = OPTIMIZER(
        "--alpha", default=0.99, type=number(float, "alpha", 0, 1, high_open=True),
        help="decay of RMSProp's squared-gradient average and of momentum (paper: 0.99)")
    e: float = OPTIMIZER(
        "--e", type=number(float, "e", 0, low_open=True),
        help="epsilon of RMSProp (inside the square root) and Adam. Default: 0.1 for RMSProp "
             "(paper), 1e-8 for Adam")
    b1: float = OPTIMIZER("--b1", default=0.9, type=number(float, "b1", 0, 1, high_open=True),
                          help="Adam's beta1")
    b2: float = OPTIMIZER("--b2", default=0.999,
                          type=number(float, "b2", 0, 1, high_open=True), help="Adam's beta2")
    clip_norm: float = OPTIMIZER(
        "--clip_norm", type=number(float, "clip_norm", 0, low_open=True),
        help="gradient norm above which gradients are rescaled. Default: from --preset (paper: "
             "40)")
    clip_norm_type: str = OPTIMIZER(
        "--clip_norm_type", type=choice(CLIP_NORM_TYPES),
        help="ignore: no clipping; local: clip each tensor's gradient norm; global: clip the "
             "norm of the whole gradient. Default: global for Atari's convolutional networks, "
             "local for the MLPs of vector observations (ours: CartPole learns 2-3x faster, "
             "InvertedPendulum reliably)")
    # the run
    seed: int = RUN(
        "--seed", type=number(int, "seed", 0, 2**31 - 1),
        help="random seed (actor i uses seed + i); default: drawn at random and recorded in "
             "config.json")
    max_global_steps: int = RUN(
        "--max_global_steps", default=80_000_000, type=number(int, "max_global_steps", 1),
        help="total agent steps over all actor-learners (paper's '1 day': 80 M)")
    stop_return: float | None = RUN(
        "--stop_return", type=number(float, "stop_return"), metavar="R", invocation=True,
        help="also stop, as at the step budget, once the mean return of the last 20 episodes "
             "reaches R (default: train for the whole budget)")
    summary_dir: str = RUN(
        "--summary_dir", default="/tmp/summary_logs",
        help="run directories are made under <summary_dir>/<game>/<alg_type>/")
    max_restarts: int = RUN(
        "--max_restarts", default=3, type=number(int, "max_restarts", 0),
        help="actor-learners that die or stall are restarted, up to this many times in all; "
             "past that training stops")
    stall_timeout: float = RUN(
        "--stall_timeout", default=300.0, type=number(float, "stall_timeout", 0, low_open=True),
        help="seconds without a step after which an actor-learner is treated as dead (one "
             "that has not started its loop: this plus 60 s from its start); at least 1, since "
             "a working learner can pause that long on a busy machine")
    visualize: int = RUN(
        "-v", "--visualize", default=0, type=number(int, "visualize", 0, 2), invocation=True,
        help="0: no window; 1: one window per actor-learner; 2: one window, actor 0 only")
    quiet: bool = RUN("--quiet", default=False, action="store_true", invocation=True,
                      help="no progress line")
    # the test process (ours)
    eval_interval: int = RUN(
        "--eval_interval", type=number(int, "eval_interval", 0),
        help="global steps between the test process's greedy games (evals.csv, TensorBoard's "
             "eval/return, the best kept as best.npz); 0: none. Default: 100,000 on Atari with "
             "--cluster local, else 0")
    # where the actor-learners run (ours)
    cluster: str = PLACE(
        "--cluster", default="local", type=choice(CLUSTERS), invocation=True,
        help="local: actor-learner processes of this machine, parameters in its shared memory; "
             "ray: actor-learners as Ray actors on a Ray cluster, parameters on a "
             "parameter-server actor (help/SCALING.md)")
    ray_address: str | None = PLACE(
        "--ray_address", metavar="ADDRESS", invocation=True,
        help="with --cluster ray: 'auto' (the cluster this machine belongs to), host:port or "
             "ray://host:port; default: a Ray instance started for this run on this machine, "
             "and stopped at its end")
    # checkpoints (ours; the original saved to checkpoints/<game>/<alg_type>/ as well)
    checkpoint_dir: str = CHECKPOINTS(
        "--checkpoint_dir",
        help="folder of this run's checkpoints. Default: checkpoints/<game>/<alg_type>/ under "
             "the current folder")
    checkpoint_interval: int = CHECKPOINTS(
        "--checkpoint_interval", default=500_000, type=number(int, "checkpoint_interval", 1),
        help="global agent steps between checkpoints; one is also written when training ends "
             "or is stopped by a signal")
    keep_checkpoints: int = CHECKPOINTS(
        "--keep_checkpoints", default=3, type=number(int, "keep_checkpoints", 1),
        help="how many of the newest checkpoints to keep")
    resume: bool = CHECKPOINTS(
        "--resume", default=False, action="store_true", invocation=True,
        help="continue from the latest checkpoint in --checkpoint_dir (or from --checkpoint), "
             "with its hyperparameters except those given on this command line. Without it, a "
             "--checkpoint_dir that already holds checkpoints is an error, so nothing is "
             "overwritten")
    checkpoint: str | None = CHECKPOINTS(
        "--checkpoint", invocation=True,
        help="a checkpoint file to resume from (with --resume) or to evaluate (--mode eval); "
             "default: the latest in --checkpoint_dir")
    # evaluation
    mode: str = EVALUATION(
        "--mode", default="train", type=choice(MODES), invocation=True,
        help="train, or eval: play --eval_episodes episodes with a checkpoint's network and "
             "report the scores")
    eval_episodes: int = EVALUATION(
        "--eval_episodes", default=30, type=number(int, "eval_episodes", 1), invocation=True,
        help="episodes to play in --mode eval")
    eval_max_steps: int = EVALUATION(
        "--eval_max_steps", default=100_000, type=number(int, "eval_max_steps", 1),
        invocation=True,
        help="--mode eval: an episode still going after this many agent steps is cut there and "
             "scored as it stands (an environment with no time limit would otherwise play for "
             "ever; Atari games end by 27,000)")
    greedy: bool = EVALUATION(
        "--greedy", default=False, action="store_true", invocation=True,
        help="--mode eval: take the most probable action (A3C) instead of sampling from the "
             "policy, or the best one always (value-based methods: no --eval_epsilon)")
    eval_epsilon: float = EVALUATION(
        "--eval_epsilon", default=0.05, type=number(float, "eval_epsilon", 0, 1),
        invocation=True,
        help="--mode eval with value-based methods: probability of a random action")
    eval_file: str | None = EVALUATION(
        "--eval_file", invocation=True,
        help="--mode eval: JSON file for the scores. Default: eval-<step>.json beside the "
             "checkpoint")
    record_video: str | None = EVALUATION(
        "--record_video", metavar="DIR", invocation=True,
        help="--mode eval: save evaluated episodes as MP4 files of the game screen in DIR")
    video_episodes: int | None = EVALUATION(
        "--video_episodes", type=number(int, "video_episodes", 1), invocation=True,
        help="--mode eval with --record_video: record only the first K episodes (default: all)")

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


def build_parser() -> OneLineParser:
    """The command line, made from the ``Config`` fields' declarations."""
    p = OneLineParser(
        prog="main.py",
        description="Asynchronous actor-learners (Mnih et al., 2016) on Atari and Gymnasium.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in fields(Config):
        meta = f.metadata
        group = groups.get(meta["group"]) or groups.setdefault(
            meta["group"], p.add_argument_group(meta["group"]))
        if not meta["names"]:
            group.add_argument(f.name, help=meta["help"])
            continue
        options = {key: meta[key] for key in ("type", "metavar", "action") if meta[key]}
        group.add_argument(*meta["names"], dest=f.name, default=meta["default"],
                           help=meta["help"], **options)
    return p


# What a configuration saved before a flag existed meant by its absence (or by None, saved
# before the flag's default was resolved), for the flags whose parser default (None) is resolved
# later: one environment per actor-learner, the paper's draw of final exploration rates, a
# whole game per episode, area-resized frames.
SAVED_BEFORE_DEFAULTS_RESOLVED = {"envs_per_actor": 1, "final_epsilon": PAPER_DRAW,
                                  "single_life_episodes": False, "resample": "area"}
# Flags that belong to one invocation, never taken from a checkpoint's saved config.
INVOCATION_FLAGS = tuple(f.name for f in fields(Config) if f.metadata["invocation"])


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


def parser_defaults() -> dict[str, Any]:
    """Every flag's default, as the parser gives it (before :func:`resolve_defaults`)."""
    return {f.name: f.metadata["default"] for f in fields(Config)}


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
        check_display(os.environ.get("DISPLAY", ""))
    if args.ray_address is not None and args.cluster != "ray":
        raise UserError("argument --ray_address: only used with --cluster ray")
    # A floor for the command line only: a checkpoint saved with less (before the floor)
    # still resumes and evaluates.
    if args.stall_timeout < MIN_STALL_TIMEOUT:
        raise UserError(f"argument --stall_timeout: invalid value {args.stall_timeout:g} "
                        f"(expected a number >= {MIN_STALL_TIMEOUT:g}: a working learner can "
                        "pause that long on a busy machine)")
    if args.cluster == "ray" and args.visualize:
        raise UserError("argument -v/--visualize: actor-learners on a Ray cluster draw no "
                        "windows; use -v 0, or --cluster local")
    if args.cluster == "ray" and args.eval_interval:
        raise UserError("argument --eval_interval: the test process runs with --cluster local "
                        "only; use --eval_interval 0, or evaluate checkpoints with --mode eval")
    if args.lstm and args.alg_type != "a3c":
        raise UserError(f"argument --lstm: only A3C has an LSTM variant, not --alg_type "
                        f"{args.alg_type} (use --alg_type a3c, or --lstm false)")
    if args.checkpoint_dir is None:
        args.checkpoint_dir = os.path.join("checkpoints", args.game.replace("/", "-"),
                                           args.alg_type)
    if args.checkpoint is not None and not (args.resume or args.mode == "eval"):
        raise UserError("argument --checkpoint: only used with --resume or --mode eval")
    for flag in ("checkpoint", "eval_file", "record_video", "summary_dir", "checkpoint_dir"):
        if getattr(args, flag):   # as given (a checkpoint's saved folders are not checked)
            check_printable(getattr(args, flag), f"--{flag}")
    for flag in ("eval_file", "record_video"):
        if getattr(args, flag) == "":
            raise UserError(f"argument --{flag}: the name is empty (give a "
                            f"{'file' if flag == 'eval_file' else 'folder'} name)")
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


def frame_size(arch: str | None, screen_size: int | None) -> int:
    """The side of the Atari frames a network of ``arch`` reads: ``--screen_size``, else 42
    for the UNIVERSE torsos but those of FULL_SIZE_UNIVERSE, 84 for the others."""
    universe = (arch or "").startswith("UNIVERSE")
    return screen_size or (42 if universe and arch not in FULL_SIZE_UNIVERSE else ATARI_SCREEN)


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
    if args.eval_interval is None or args.cluster == "ray":   # the test process: local only
        args.eval_interval = EVAL_INTERVAL if atari and args.cluster == "local" else 0
    tuned = args.preset == "tuned" and atari
    tuned_values = (TUNED_ATARI_A3C if args.alg_type == "a3c" else TUNED_ATARI_VALUE) \
        if tuned else {}
    # With K environments an update averages K segments: K times fewer updates per step, each
    # as large as one segment's. Adam's steps do not grow with the gradient, so the tuned
    # learning rate grows with K instead (PAAC's rule; measured on Pong, HYPERPARAMETERS.md).
    scale_lr = tuned and args.initial_lr is None
    resample_given = args.resample is not None
    if args.envs_per_actor is None:
        args.envs_per_actor = max(1, PAPER_THREADS // args.num_actor_learners) if tuned else 1
    for key, value in {**PAPER_VALUES, **(ATARI_VALUE_BASED if atari else VECTOR_VALUE_BASED),
                       **tuned_values}.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.e is None:
        args.e = OPTIMIZER_EPS[args.opt_type]
    if args.single_life_episodes is None:
        args.single_life_episodes = False
    if not resample_given and args.resample == "salient" and \
            frame_size(args.arch, args.screen_size) > SALIENT_MAX:
        args.resample = "area"   # the preset's salient frames stop at SALIENT_MAX pixels
    if atari and args.resample is None:
        args.resample = "area"
    if args.final_epsilon is None:
        args.final_epsilon = PAPER_DRAW
    if scale_lr:
        args.initial_lr *= args.envs_per_actor
    if args.initial_lr is None:
        args.initial_lr = ATARI_LR if atari else VECTOR_LR
    elif args.initial_lr == 0:
        rng = random.Random(args.seed)
        args.initial_lr = math.exp(rng.uniform(math.log(1e-4), math.log(1e-2)))
        return f"initial learning rate sampled from LogUniform(1e-4, 1e-2): {args.initial_lr:.6g}"
    return None
