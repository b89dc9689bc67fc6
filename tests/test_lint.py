"""The code passes ruff (configuration in pyproject.toml): no unused names, no undefined ones, no
likely bugs, no line over 100 columns; and vulture finds no dead code in the package or the
benchmarks."""
import os
import subprocess
import sys

from conftest import ROOT

BIN = os.path.dirname(sys.executable)


def test_ruff_passes():
    result = subprocess.run([os.path.join(BIN, "ruff"), "check", "--no-cache", "algorithms",
                             "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_vulture_finds_no_dead_code():
    result = subprocess.run([os.path.join(BIN, "vulture"), "algorithms", "benchmarks",
                             "--min-confidence", "60"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
