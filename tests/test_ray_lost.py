"""The Ray cluster lost under a run (its head stopped): one line that names the loss and the
last good checkpoint, exit code 1, no traceback. A file of its own: stopping Ray stops every
Ray process of this machine, so it runs after test_ray.py's shared cluster is gone."""
import os
import re
import socket
import subprocess
import sys

import pytest

from algorithms.checkpoint import step_of as checkpoint_step
from conftest import ROOT
from runs import RAY, read_until, running

pytestmark = pytest.mark.slow


def test_a_lost_ray_head_stops_the_run_in_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    head = subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "2",
                           "--include-dashboard", "false", "--disable-usage-stats"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=180, env=env)
    assert head.returncode == 0, head.stderr
    try:
        seen: list[str] = []
        with running(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "2", "--cluster",
                       "ray", "--ray_address", f"127.0.0.1:{port}", "--checkpoint_interval",
                       "2000", "--checkpoint_dir", str(tmp_path / "ck")], tmp_path) as (proc, _):
            saved = read_until(proc, r"^checkpoint: (\S+)", 300, seen).group(1)
            subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
            out, err = proc.communicate(timeout=180)
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)
    out = "".join(seen) + out
    assert proc.returncode == 1, out + err
    errors = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out
    named = re.match(r"error: the Ray cluster no longer answers \(\w+: .+\); its parameter "
                     r"server is lost; the actor-learners were stopped \(--resume continues\); "
                     r"the last good checkpoint is (\S+); training stopped at step ", errors[0])
    assert named, errors[0]
    written = [line.split("checkpoint: ")[1].split(" (")[0] for line in out.splitlines()
               if line.startswith("checkpoint: ")]
    assert saved in written and named.group(1) == written[-1]   # the last one written
    saved = named.group(1)
    assert "Traceback" not in out + err
    resumed = subprocess.run([sys.executable, "-m", "algorithms",
                              "CartPole-v1", "--env", "GYM", "-n", "1", "--resume",
                              "--checkpoint", saved, "--checkpoint_dir", str(tmp_path / "ck2"),
                              "--max_global_steps", str(checkpoint_step(saved) + 2000),
                              "--quiet", "--summary_dir",
                              str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stderr
