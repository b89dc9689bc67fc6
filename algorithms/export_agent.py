"""A trained agent to share: ``python algorithms/export_agent.py CHECKPOINT OUT.npz [--note TEXT]``.

Keeps what playing needs and drops what only training needs: the parameters (and the target
network of the value-based methods), the step counters, the run's settings and where it came
from; no optimizer statistics. The result is a checkpoint like any other (``--mode eval
--checkpoint OUT.npz`` plays it, ``-v 1`` shows it, ``--record_video`` records it; ``--resume
--checkpoint OUT.npz`` trains on from it with fresh optimizer statistics), a few percent of the
checkpoint's size. The agents under ``help/agents/`` were made with it.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

if __package__ in (None, ""):   # run as a script from any folder: the package is beside it
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "algorithms"

from . import checkpoint  # noqa: E402
from .console import tolerant_streams  # noqa: E402
from .errors import UserError  # noqa: E402

KEPT = ("params", "target", "steps", "final_epsilons")


def export(source: str, output: str, note: str | None = None, half: bool = False,
           rank: int | None = None, int8: bool = False) -> str:
    """Write the weights-only agent of checkpoint ``source`` to ``output``; returns its path.
    ``half``: its vectors in float16; ``rank``: each dense layer's weight matrix as factors of
    this rank (its truncated SVD), for networks such as NATURE whose dense layer is most of its
    size. Either way the agent loads as float32 parameters of the same network."""
    ckpt = checkpoint.load(source)
    checkpoint.validate(ckpt)
    if os.path.lexists(output) and os.path.samefile(output, source):
        raise UserError(f"{output!r} is the checkpoint being exported; give another file name")
    arrays = {name: ckpt.arrays[name] for name in KEPT if name in ckpt.arrays}
    arrays["updates"] = ckpt.arrays["updates"]
    meta = {key: value for key, value in ckpt.meta.items()
            if key not in ("format", "global_step", "saved", "compact")}
    if half or rank is not None:
        size = sum(int(np.prod(shape)) for _, shape in meta.get("layout", []))
        checkpoint.validate(ckpt, size)   # vectors of the layout's size, finite
        factored = []
        for name in checkpoint.COMPACT_VECTORS:
            if name in arrays:
                parts, factored = checkpoint.compact(arrays.pop(name), meta["layout"], rank,
                                                     half, name, int8)
                arrays.update(parts)
        meta["compact"] = {"dtype": "float16" if half else "float32", "factored": factored}
        if not all(np.isfinite(array).all() for name, array in arrays.items()
                   if name.startswith(checkpoint.COMPACT_VECTORS)):
            raise UserError(f"checkpoint {source!r} holds parameters beyond float16's range "
                            "(65504); export it without --half")
    meta.update(weights_only=True, exported_from=os.path.basename(source))
    if note:
        meta["note"] = note
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    return checkpoint.save_as(output, ckpt.step, arrays, meta)


def main(argv: list[str] | None = None) -> int:
    tolerant_streams()
    parser = argparse.ArgumentParser(prog="export_agent.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint-*.npz (or best.npz) of a run")
    parser.add_argument("output", help="the agent's file (.npz)")
    parser.add_argument("--note", default=None,
                        help="a line kept in the agent's metadata: the command, the score...")
    parser.add_argument("--half", action="store_true",
                        help="store the parameters as float16 (half the size)")
    parser.add_argument("--rank", type=int, default=None,
                        help="store each dense layer's weights as two factors of this rank "
                             "(NATURE's 3136x512 at rank 64: 7 times smaller); evaluate the "
                             "agent afterwards, a low rank may cost score")
    parser.add_argument("--int8", action="store_true",
                        help="with --rank: the larger factor of each dense layer as int8 with a "
                             "scale per column (about 40 %% smaller again)")
    args = parser.parse_args(argv)
    if args.rank is not None and args.rank < 1:
        parser.error("argument --rank: must be at least 1")
    if args.int8 and args.rank is None:
        parser.error("argument --int8: only with --rank")
    try:
        path = export(args.checkpoint, args.output, args.note, args.half, args.rank,
                      args.int8)
    except UserError as err:
        print(f"export_agent.py: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({os.path.getsize(path) / 1024:.0f} KB, from "
          f"{os.path.getsize(args.checkpoint) / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
