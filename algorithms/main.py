"""Entry shim: ``cd algorithms && python main.py pong`` trains, as in the original project.

Run as a script, this file's folder is on ``sys.path`` and the package above it is not: the
folder is swapped for the repository root, so that every module is loaded once, as
``algorithms.<module>``. This is the only place in the project that touches ``sys.path``.
``python -m algorithms ...`` from the repository root needs no shim.
"""
import os
import sys

if __package__ in (None, ""):
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]
    sys.path.insert(0, os.path.dirname(_here))

from algorithms.cli import run  # noqa: E402

if __name__ == "__main__":
    run()
