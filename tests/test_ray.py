"""``--cluster ray``: actor-learners as Ray actors on a real Ray cluster of two nodes (a head and
a second node, both started with ``ray start`` on this machine), and on a Ray instance started by
the run itself. No mocks: real Ray processes, real kills and signals."""
import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, processes_with_token, run_dir_in
from runs import RAY, read_episodes, read_until, running, start_run, trailing_means

pytestmark = pytest.mark.slow
def ray_actor_pids() -> list[int]:
    """Live processes of this project's Ray actors (any run's)."""
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if command.startswith((b"ray::Learner", b"ray::ParameterServer")):
            found.append(pid)
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A head node (1 CPU) and a second node (2 CPUs) on this machine; stopped afterwards."""
    port = _free_port()
    # Without token authentication (Ray turns it on by itself once a token file exists in
    # ~/.ray, which a local instance started by a run creates): the same cluster every time.
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=180,
                 env=env)
    head = subprocess.run([RAY, "start", "--head", "--port", str(port), "--num-cpus", "1",
                           "--include-dashboard", "false", "--disable-usage-stats"], **quiet)
    assert head.returncode == 0, head.stderr
    try:
        node = subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--num-cpus",
                               "2", "--disable-usage-stats"], **quiet)
        assert node.returncode == 0, node.stderr
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)





def test_a_run_across_two_nodes_learns_and_replaces_a_killed_learner(cluster, tmp_path):
    """A3C on CartPole-v1 with one learner on each node: a learner killed with kill -9 is
    replaced (Ray does not restart it: the supervisor does, as it does processes), and the run
    still reaches a mean of 400 over the last 20 episodes within 300,000 steps (--stop_return
    ends it there). Measured: about 30,000 steps, as with --cluster local."""
    args = ["CartPole-v1", "--env", "GYM", "-n", "2", "--cluster", "ray", "--ray_address",
            cluster, "--max_global_steps", "300000", "--stop_return", "400", "--seed", "7",
            "--checkpoint_dir", str(tmp_path / "ck"), "--checkpoint_interval", "10000"]
    seen: list[str] = []
    with running(args, tmp_path) as (proc, _):
        nodes = {}
        for _ in range(2):
            match = read_until(proc, r"actor-learner (\d) runs on node (\w+) .*pid (\d+)", 240,
                                seen)
            nodes[int(match[1])] = (match[2], int(match[3]))
        assert len({node for node, _ in nodes.values()}) == 2, nodes   # one per node
        read_until(proc, r"^\[.*step [1-9]", 240, seen)
        # the learners are seen where the end of the test looks for leftovers
        assert {pid for _, pid in nodes.values()} <= set(ray_actor_pids())
        os.kill(nodes[1][1], signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    out = "".join(seen) + out
    assert proc.returncode == 0, out + err
    assert re.search(r"actor-learner-1 died \(.*\); restarting it \(1 of --max_restarts 3\)",
                     out), out
    assert "reached --stop_return 400 at step" in out
    run_dir = run_dir_in(out)
    episodes = read_episodes(run_dir)
    returns = np.array([float(e["return"]) for e in episodes])
    assert trailing_means(returns).max() >= 400 and returns[:20].mean() < 100
    assert int(episodes[-1]["global_step"]) < 300_000
    assert {e["actor"] for e in episodes[-40:]} == {"0", "1"}   # the replacement learned on
    assert os.path.isdir(os.path.join(run_dir, "actor_1"))      # TensorBoard, per actor
    assert list((tmp_path / "ck").glob("checkpoint-*.npz"))
    assert ray_actor_pids() == []


def test_sigterm_stops_a_ray_run_and_a_local_run_resumes_it(cluster, tmp_path):
    """SIGTERM: the learners stop, a final checkpoint is written from the parameter server,
    exit 143, and no Ray actor of the run is left on the cluster (which keeps running). The
    checkpoint resumes with --cluster local: both backends hold the same vectors."""
    checkpoints = tmp_path / "ck"
    args = ["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "3", "--checkpoint_dir",
            str(checkpoints)]
    seen: list[str] = []
    with running(args + ["--cluster", "ray", "--ray_address", cluster], tmp_path) as (proc, _):
        read_until(proc, r"^\[.*step [1-9]", 240, seen)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, "".join(seen) + out + err
    assert "stopped by SIGTERM" in out and "final checkpoint: " in out
    assert ray_actor_pids() == []
    status = subprocess.run([RAY, "status", "--address", cluster], capture_output=True,
                            text=True, timeout=60)
    assert status.returncode == 0, status.stderr   # a cluster the run joined is left running
    (saved,) = checkpoints.glob("checkpoint-*.npz")
    step = int(saved.name[len("checkpoint-"):-len(".npz")])
    resumed = subprocess.run([sys.executable, "-m", "algorithms", *args, "--resume", "--quiet",
                              "--summary_dir", str(tmp_path), "--max_global_steps",
                              str(step + 2000)], cwd=ROOT, capture_output=True, text=True,
                             timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from {saved} at step {step:,}" in resumed.stdout


def test_a_ray_instance_started_by_the_run_survives_a_ctrl_c_and_is_stopped_at_its_end(
        tmp_path):
    """Without --ray_address the run starts a Ray instance of its own. SIGUSR1 and then a
    Ctrl-C to the whole process group, as a scheduler and a terminal send them, reach the
    driver alone: the instance's processes
    start with the group signals held, so the driver stops the learners and writes the final
    checkpoint from the parameter server, and nothing of the instance (head processes, workers,
    actors) outlives the run."""
    proc, token = start_run(["CartPole-v1", "--env", "GYM", "-n", "1", "--cluster", "ray",
                             "--seed", "1", "--checkpoint_dir", str(tmp_path / "ck")],
                            tmp_path, new_session=True)
    seen: list[str] = []
    try:
        read_until(proc, r"^\[.*step [1-9]", 240, seen)
        # SIGUSR1 first, as a batch scheduler sends it: a checkpoint, and no process of the
        # instance ends by it (its default action would end one that did not hold it)
        os.killpg(proc.pid, signal.SIGUSR1)
        read_until(proc, r"^SIGUSR1: writing a checkpoint at step", 120, seen)
        read_until(proc, r"^\[.*step [1-9]", 120, seen)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "stopped by SIGINT" in out and "final checkpoint: " in out, "".join(seen) + out
    assert list((tmp_path / "ck").glob("checkpoint-*.npz"))
    assert processes_with_token(token) == []
    with open(next(tmp_path.rglob("config.json"))) as f:
        assert json.load(f)["config"]["cluster"] == "ray"


def test_an_unreachable_address_is_one_line(run_cli, tmp_path):
    port = _free_port()   # nothing listens there
    run = run_cli(["CartPole-v1", "--env", "GYM", "--cluster", "ray", "--ray_address",
                   f"127.0.0.1:{port}", "--summary_dir", str(tmp_path / "logs")], timeout=120)
    assert run.returncode == 2
    (line,) = run.stderr.strip().splitlines()
    assert f"nothing answers at 127.0.0.1:{port}" in line and "ray start --head" in line
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").rglob("*.csv"))


def test_fewer_cpus_than_learners_is_one_line(cluster, run_cli, tmp_path):
    run = run_cli(["CartPole-v1", "--env", "GYM", "-n", "4", "--cluster", "ray",
                   "--ray_address", cluster, "--summary_dir", str(tmp_path / "logs")],
                  timeout=180)
    assert run.returncode == 2, run.stdout + run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "the Ray cluster has 3 CPUs" in line and "use -n 3 or fewer" in line
    assert not any((tmp_path / "logs").rglob("episodes.csv"))
    assert ray_actor_pids() == []


def test_ray_flags_are_checked_before_anything_starts(run_cli, tmp_path):
    run = run_cli(["CartPole-v1", "--env", "GYM", "--ray_address", "auto"], timeout=60)
    assert run.returncode == 2 and "--ray_address: only used with --cluster ray" in run.stderr
    run = run_cli(["CartPole-v1", "--env", "GYM", "--cluster", "slurm"], timeout=60)
    assert run.returncode == 2 and "--cluster" in run.stderr and "ray" in run.stderr
