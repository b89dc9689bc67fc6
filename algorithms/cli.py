"""The command line: parse, validate, then train or evaluate.

Reached through ``algorithms/main.py`` (``cd algorithms && python main.py ...``, as in the original
project) or ``python -m algorithms ...``; ``python main.py -h`` lists every flag.

* ``python main.py pong`` trains from scratch (checkpoints in ``checkpoints/pong/a3c/``);
* ``python main.py pong --resume`` continues from the latest checkpoint there;
* ``python main.py pong --mode eval`` evaluates it.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

from . import config
from .config import UserError


def _fail(message: str) -> int:
    print(f"main.py: error: {message}", file=sys.stderr)
    return 2


def find_checkpoint(args: argparse.Namespace, purpose: str):
    """The checkpoint named by --checkpoint, or the latest in --checkpoint_dir."""
    from . import checkpoint
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
    for key, value in {**config.SAVED_BEFORE_DEFAULTS_RESOLVED, **saved}.items():
        if key in merged and key not in explicit and key not in config.INVOCATION_FLAGS:
            merged[key] = value
    return argparse.Namespace(**merged)


def probe(args: argparse.Namespace):
    """The environment's spec (observation shape, actions), from a throw-away instance."""
    from . import environments
    if args.env == "ALE":
        _, notice = environments.resolve_rom(args.game, args.rom_path)
        if notice:
            print(f"notice: {notice}")
    env = environments.make_environment(args.env, args.game, args.rom_path, seed=0)
    spec = env.spec
    env.close()
    return spec


def main(argv: list[str] | None = None) -> int:
    args = config.parse_args(argv)
    explicit = config.explicit_flags(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from . import checkpoint, environments
    from .networks import layout_for

    try:
        ckpt = None
        if args.mode == "eval" or args.resume:
            ckpt = find_checkpoint(args, "evaluate" if args.mode == "eval" else "resume")
            config.check_saved(ckpt.config, f"checkpoint {ckpt.path!r}")
            checkpoint.validate(ckpt)
            args = merge_config(args, ckpt.config, explicit)
            if args.mode == "train":   # the folders may now be the checkpoint's: check them
                config.check_writable(args.summary_dir, "--summary_dir")
                config.check_writable(args.checkpoint_dir, "--checkpoint_dir")
        if args.mode == "train" and os.path.isdir(args.checkpoint_dir):
            # One run per checkpoint folder: claimed before anything in it is changed.
            config.claim_folder(args.checkpoint_dir, "--checkpoint_dir")
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
                                                environments.atari_frames(args.arch, args.lstm))
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
            removed = checkpoint.remove_stale_temporaries(args.checkpoint_dir)
            if removed:
                print(f"notice: removed {len(removed)} incomplete checkpoint file(s) left by an "
                      "interrupted write")
    except UserError as err:
        return _fail(str(err))

    settings = config.Config.from_namespace(args)
    if settings.mode == "eval":
        from .evaluate import evaluate
        # Ctrl-C stops an evaluation even when this process inherited SIGINT ignored (a command
        # started in the background by a non-interactive shell does), which Python keeps.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return evaluate(settings, env_spec, ckpt)
        except KeyboardInterrupt:
            print("interrupted: evaluation stopped, no result written", file=sys.stderr)
            return 130

    from .run import train
    from .shared import resource_problem, space_problem
    from .store import vector_sizes
    sizes = vector_sizes(settings, layout.size)
    problem = space_problem(sizes) or resource_problem(settings.num_actor_learners, len(sizes))
    if problem:
        return _fail(problem)
    try:
        # A checkpoint holds every shared vector (float32) and a little more.
        config.check_room(settings.checkpoint_dir, 2 * (4 * sum(sizes.values()) + 65536),
                          "--checkpoint_dir")
    except UserError as err:
        return _fail(str(err))
    if sampled:
        print(sampled)
    try:
        return train(settings, env_spec, ckpt)
    except UserError as err:   # a folder claimed by another run in the meantime
        return _fail(str(err))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
