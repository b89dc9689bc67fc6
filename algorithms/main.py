"""Command-line entry point: ``python main.py pong`` trains A3C on Pong with the paper's settings.

Run it as ``cd algorithms && python main.py ...``, ``python algorithms/main.py ...`` or
``python -m algorithms ...``; ``python main.py -h`` lists every flag.
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # the modules import each other by plain name

import numpy as np  # noqa: E402

import config  # noqa: E402
from config import UserError  # noqa: E402


def _fail(message: str) -> int:
    print(f"main.py: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = config.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import environments
    from launcher import train

    try:
        if args.env == "ALE":
            _, notice = environments.resolve_rom(args.game, args.rom_path)
            if notice:
                print(f"notice: {notice}")
        probe = environments.make_environment(args.env, args.game, args.rom_path, seed=0)
        env_spec = probe.spec
        probe.close()
    except UserError as err:
        return _fail(str(err))

    if args.seed is None:
        args.seed = int(np.random.SeedSequence().entropy % (2**31 - 1 - args.num_actor_learners))
    if args.initial_lr is None:
        args.initial_lr = config.ATARI_LR if env_spec.kind == "atari" else config.VECTOR_LR
    elif args.initial_lr == 0:
        rng = np.random.default_rng(args.seed)
        args.initial_lr = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-2))))
        print(f"initial learning rate sampled from LogUniform(1e-4, 1e-2): {args.initial_lr:.6g}")
    try:
        return train(config.to_dict(args), env_spec)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
