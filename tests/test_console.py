"""Lines for a console that cannot show a character: shown with escapes, never dropped, never a
traceback (a real interpreter under ``PYTHONIOENCODING=ascii``)."""
import os
import subprocess
import sys

from conftest import ROOT


def _ascii_console(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          env=dict(os.environ, PYTHONIOENCODING="ascii"), timeout=60)


def test_the_trainers_lines_with_a_non_ascii_path_are_shown_with_escapes():
    done = _ascii_console("from algorithms.record import log\n"
                          "log('run directory: /tmp/\\u00e9t\\u00e9/run')\n"
                          "log('final checkpoint: /tmp/\\u00e9t\\u00e9/c.npz')\n")
    assert done.returncode == 0 and b"Traceback" not in done.stderr
    assert done.stdout == b"run directory: /tmp/\\xe9t\\xe9/run\n" \
                          b"final checkpoint: /tmp/\\xe9t\\xe9/c.npz\n"


def test_after_tolerant_streams_every_print_and_error_line_survives():
    done = _ascii_console("import sys\n"
                          "from algorithms.console import tolerant_streams\n"
                          "tolerant_streams()\n"
                          "print('notice: /tmp/\\u00e9')\n"
                          "print('main.py: error: /tmp/\\u00e9', file=sys.stderr)\n")
    assert done.returncode == 0
    assert done.stdout == b"notice: /tmp/\\xe9\n"
    assert done.stderr == b"main.py: error: /tmp/\\xe9\n"
