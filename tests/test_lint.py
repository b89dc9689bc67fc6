"""The code passes ruff (configuration in pyproject.toml): no unused names, no undefined ones, no
likely bugs, no line over 100 columns."""
import os
import subprocess
import sys

from conftest import ROOT


def test_ruff_passes():
    ruff = os.path.join(os.path.dirname(sys.executable), "ruff")
    result = subprocess.run([ruff, "check", "--no-cache", "algorithms", "tests", "benchmarks"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
