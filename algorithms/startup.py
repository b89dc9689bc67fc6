"""From the command line to a plan: the flags parsed, a checkpoint found and checked against
them, the environment probed, the defaults resolved, the network laid out, and the machine
checked (folders, room, limits). Every user mistake ends here as a UserError, before anything is
started; what passes is a frozen :class:`Plan` that ``cli.py`` carries out.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any, Sequence

from . import checkpoint, checks, config, environments, files
from .argtypes import boolean
from .config import Config
from .environments import EnvSpec
from .errors import UserError
from .networks import Layout, layout_for


@dataclass(frozen=True)
class Plan:
    """What to do: train or evaluate (``config.mode``) with these settings, on environments of
    ``env_spec``, with a network of ``layout``, from ``checkpoint`` if there is one.
    ``announce``: a line to print before starting (a sampled learning rate), or None."""
    config: Config
    env_spec: EnvSpec
    layout: Layout
    checkpoint: checkpoint.Checkpoint | None
    announce: str | None


def prepare(argv: Sequence[str] | None = None) -> Plan:
    """The plan of a command line; UserError for any mistake (argparse's own exit with code 2
    for a value that a flag's type refuses)."""
    args = config.parse_args(argv)
    explicit = config.explicit_flags(argv)
    ckpt = None
    if args.mode == "eval" or args.resume:
        ckpt = find_checkpoint(args, "evaluate" if args.mode == "eval" else "resume")
        check_saved(ckpt.config, f"checkpoint {ckpt.path!r}")
        checkpoint.validate(ckpt)
        args = merge_config(args, ckpt.config, explicit)
        if args.mode == "train":   # the folders may now be the checkpoint's: check them
            checks.check_writable(args.summary_dir, "--summary_dir")
            checks.check_writable(args.checkpoint_dir, "--checkpoint_dir")
    if args.mode == "train" and os.path.isdir(args.checkpoint_dir):
        # One run per checkpoint folder: claimed before anything in it is changed.
        checks.claim_folder(args.checkpoint_dir, "--checkpoint_dir")
    if not args.resume and args.mode == "train" and \
            checkpoint.list_checkpoints(args.checkpoint_dir):
        raise UserError(
            f"argument --checkpoint_dir: {args.checkpoint_dir!r} already holds checkpoints "
            f"(latest {os.path.basename(checkpoint.latest(args.checkpoint_dir))}); pass "
            "--resume to continue that run, or another --checkpoint_dir to start a new one")
    env_spec = probe(args)
    if env_spec.continuous and args.alg_type != "a3c":
        raise UserError(f"argument --alg_type: {args.alg_type} needs discrete actions, and "
                        f"{args.game} has continuous ones (use --alg_type a3c, whose "
                        "Gaussian policy handles them)")
    atari = env_spec.kind == "atari"
    sampled = config.resolve_defaults(args, env_spec.continuous, atari)
    if atari:   # the screens as the network reads them
        env_spec = environments.with_frames(env_spec,
                                            environments.atari_frames(args.arch, args.lstm,
                                                                     args.screen_size, args.crop,
                                                                     args.resample))
    layout = layout_for(args, env_spec)
    if ckpt is not None:
        checkpoint.check_compatible(ckpt, vars(args), checkpoint.layout_record(layout),
                                    env_spec.observation_shape, env_spec.num_actions)
        checkpoint.validate(ckpt, layout.size)
    if ckpt is not None and args.mode == "train":
        if ckpt.step >= args.max_global_steps:
            raise UserError(
                f"checkpoint {ckpt.path!r} is at step {ckpt.step:,}, which already reaches "
                f"--max_global_steps {args.max_global_steps:,}; raise --max_global_steps "
                "to train further")
        beyond = [path for path in checkpoint.list_checkpoints(args.checkpoint_dir)
                  if checkpoint.step_of(path) > ckpt.step]
        if beyond:
            raise UserError(
                f"argument --checkpoint_dir: {args.checkpoint_dir!r} holds checkpoints beyond "
                f"step {ckpt.step:,} (the latest {os.path.basename(beyond[-1])}): resuming "
                "there would mix two lines of training and prune one of them; give another "
                "--checkpoint_dir to branch from this checkpoint")
        removed = checkpoint.remove_stale_temporaries(args.checkpoint_dir)
        if removed:
            print(f"notice: removed {len(removed)} incomplete checkpoint file(s) left by an "
                  "interrupted write")
    settings = Config.from_namespace(args)
    if settings.mode == "train":
        check_machine(settings, layout)
    else:
        check_eval_output(settings, ckpt)
    return Plan(settings, env_spec, layout, ckpt, sampled)


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file; False if either is gone (a checkpoint pruned by a
    training beside this evaluation since it was read)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_eval_output(settings: Config, ckpt: checkpoint.Checkpoint) -> None:
    """The scores' file may replace only an earlier evaluation's result: never the checkpoint
    being evaluated, another checkpoint, a run's ``config.json`` or ``episodes.csv``, or any
    other file."""
    import json

    from .evaluate import result_path
    path = result_path(settings, ckpt)
    if _same_file(path, ckpt.path):
        raise UserError(f"argument --eval_file: {path!r} is the checkpoint being evaluated; it "
                        "would be overwritten (give a new file name, e.g. eval.json)")
    if path.endswith(".npz"):
        raise UserError(f"argument --eval_file: {path!r} would pass for a checkpoint (the "
                        "scores are JSON); give a .json name, e.g. eval.json")
    if not files.claim_path(path):
        raise UserError(f"argument --eval_file: {path!r} is being written by another "
                        "evaluation that is still running; one of the two results would be "
                        "lost (give another file name, or wait for it to end)")
    if not os.path.lexists(path):
        return
    previous = None
    if os.path.isfile(path) and os.path.getsize(path) < 16 * 1024 * 1024:
        try:
            with open(path, encoding="utf-8") as f:
                previous = json.load(f)
        except (OSError, ValueError):
            previous = None
    if not (isinstance(previous, dict) and "scores" in previous and "checkpoint" in previous):
        same = _same_file(path, ckpt.path)
        what = "is the checkpoint being evaluated" if same else \
            "exists and is not an earlier evaluation's result"
        raise UserError(f"argument --eval_file: {path!r} {what}; it would be overwritten "
                        "(give a new file name, e.g. eval.json)")


def check_machine(settings: Config, layout: Layout) -> None:
    """Shared memory, open files and processes for the run's vectors and learners, and room
    for its checkpoints."""
    from .record import log
    from .shared import (SHM_FOLDER, read_only_problem, remove_orphans, resource_problem,
                         space_problem)
    from .store import vector_sizes
    local = settings.cluster == "local"
    problem = local and read_only_problem()
    if problem:
        raise UserError(problem)
    if local:   # what a killed run left counts against the room
        removed, freed = remove_orphans()
        if removed:
            log(f"removed {removed} shared-memory segment(s) ({freed / 2**20:.1f} MB) that a "
                f"killed run had left in {SHM_FOLDER}")
    sizes = vector_sizes(settings, layout.size)
    # A checkpoint holds every shared vector (float32) and a little more.
    checkpoint_bytes = 4 * sum(sizes.values()) + 65536
    checks.check_file_size_limit(checkpoint_bytes)
    problem = space_problem(sizes) or resource_problem(settings.num_actor_learners, len(sizes))
    if problem:
        raise UserError(problem)
    checks.check_room(settings.checkpoint_dir, 2 * checkpoint_bytes, "--checkpoint_dir")


def check_saved(saved: Any, source: str) -> None:
    """A configuration read from a checkpoint passes the command line's own checks (each value
    through its flag's type and range); UserError naming ``source`` and the first bad value."""
    if not isinstance(saved, dict):
        raise UserError(f"{source}: its saved configuration is a {type(saved).__name__}, not a "
                        "mapping; pass another checkpoint")
    for action in config.build_parser()._actions:
        if action.dest not in saved or action.type is None:
            continue
        value = saved[action.dest]
        if value is None and action.default is None:
            continue
        bad = isinstance(value, (dict, list)) or (isinstance(value, bool)
                                                  and action.type is not boolean)
        if not bad:
            try:
                action.type(str(value))
            except (argparse.ArgumentTypeError, ValueError, TypeError):
                bad = True
        if bad:
            raise UserError(f"{source}: its saved configuration has {action.dest} {value!r}, "
                            f"which the command line refuses; pass another checkpoint")


def find_checkpoint(args: argparse.Namespace, purpose: str):
    """The checkpoint named by --checkpoint, or the latest in --checkpoint_dir."""
    if args.checkpoint is not None:
        return checkpoint.load(args.checkpoint)
    for attempt in range(5):
        path = checkpoint.latest(args.checkpoint_dir)
        if path is None:
            hint = ("train without --resume to start a new run" if purpose == "resume"
                    else "train first, or pass --checkpoint PATH")
            raise UserError(f"no checkpoint in {args.checkpoint_dir!r} to {purpose} "
                            f"(give --checkpoint_dir or --checkpoint; or {hint})")
        try:
            return checkpoint.load(path)
        except UserError:
            # A training run beside this evaluation may have pruned it since it was listed:
            # take the newest again.
            if os.path.exists(path) or attempt == 4:
                raise
    raise AssertionError("unreachable")


def merge_config(args: argparse.Namespace, saved: dict, explicit: set[str]) -> argparse.Namespace:
    """A resumed or evaluated run's hyperparameters: the checkpoint's, except the flags given on
    this command line and those that belong to this invocation alone."""
    merged = vars(args).copy()
    # A flag saved unset (None) or not saved at all meant what it meant before its default
    # was resolved: --resample's None was area before the preset chose salient.
    before = config.SAVED_BEFORE_DEFAULTS_RESOLVED
    for key, value in {**before, **saved}.items():
        if key in merged and key not in explicit and key not in config.INVOCATION_FLAGS:
            merged[key] = before[key] if value is None and key in before else value
    return argparse.Namespace(**merged)


def probe(args: argparse.Namespace):
    """The environment's spec (observation shape, actions), from a throw-away instance."""
    if args.env == "ALE":
        _, notice = environments.resolve_rom(args.game, args.rom_path)
        if notice:
            print(f"notice: {notice}")
    env = environments.make_environment(args.env, args.game, args.rom_path, seed=0)
    spec = env.spec
    env.close()
    return spec
