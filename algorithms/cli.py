"""The command line: parse, validate, then train or evaluate.

Reached through ``algorithms/main.py`` (``cd algorithms && python main.py ...``, as in the original
project) or ``python -m algorithms ...``; ``python main.py -h`` lists every flag.

* ``python main.py pong`` trains from scratch (checkpoints in ``checkpoints/pong/a3c/``);
* ``python main.py pong --resume`` continues from the latest checkpoint there;
* ``python main.py pong --mode eval`` evaluates it.

``startup.prepare`` turns the command line into a checked plan; this module carries it out.
"""
from __future__ import annotations

import os
import signal
import sys

from . import interrupts
from .console import tolerant_streams
from .errors import UserError


def run() -> None:
    """The program: ``main`` with this process's arguments, then the exit with its code, held
    against a stop signal while the interpreter closes (``interrupts.hold_while_exiting``)."""
    code = main()
    interrupts.hold_while_exiting(code)
    sys.exit(code)


def _fail(message: str) -> int:
    print(f"main.py: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    tolerant_streams()
    # A stop signal during the start is acted upon once the supervisor or the evaluation can
    # (interrupts.py); a second one, or one that comes when nothing is left to stop, ends here.
    with interrupts.deferred():
        try:
            return _main(argv)
        except KeyboardInterrupt as stop:
            signum = getattr(stop, "signum", signal.SIGINT)
            when = "" if interrupts.started() else " before the start was complete"
            print(f"interrupted ({signal.Signals(signum).name}){when}", file=sys.stderr)
            return 128 + signum


def _main(argv: list[str] | None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from . import startup
    try:
        plan = startup.prepare(argv)
    except UserError as err:
        return _fail(str(err))

    if (signum := interrupts.pending()) is not None:   # before any folder is made
        raise interrupts.Interrupted(signum)
    settings = plan.config
    if settings.mode == "eval":
        from .console import say
        from .evaluate import evaluate
        try:
            return evaluate(settings, plan.env_spec, plan.checkpoint)
        except KeyboardInterrupt as stop:   # before the first episode started
            signum = getattr(stop, "signum", signal.SIGINT)
            say("interrupted: evaluation stopped, no result written", file=sys.stderr)
            return 128 + signum

    from .run import train
    if plan.announce:
        print(plan.announce)
    try:
        return train(settings, plan.env_spec, plan.checkpoint)
    except UserError as err:   # a folder claimed by another run in the meantime
        return _fail(str(err))


if __name__ == "__main__":
    run()
