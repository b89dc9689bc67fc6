"""Lines for the console, which may be gone or unable to show a character."""
from __future__ import annotations

import sys


def say(*parts, file=None) -> None:
    """print() for a console that may be gone (a closed pipe: ``| head -1``; a terminal closed
    with SIGHUP) or unable to show a character (``PYTHONIOENCODING=ascii`` and a non-ASCII
    path): the line is dropped or shown with escapes, never a traceback, and never stops a run."""
    text = " ".join(str(part) for part in parts)
    stream = file or sys.stdout
    try:
        print(text, file=stream, flush=True)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            print(text.encode(encoding, "backslashreplace").decode(encoding), file=stream,
                  flush=True)
        except (OSError, ValueError):
            pass
    except (OSError, ValueError):
        pass


def tolerant_streams() -> None:
    """Let stdout and stderr show a character their encoding lacks as an escape (``\\xe9``)
    instead of raising: under ``PYTHONIOENCODING=ascii`` a non-ASCII path in a line, argparse's
    errors included, must not cost the line or end the program."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                pass
