"""Faults with real processes and signals: a learner whose gradients are poisoned, environments
that break their own spaces, workers killed or stopped (SIGSTOP), a parent or the fork server
killed with SIGKILL, signals during a stop."""
import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import (ROOT, actor_learner_pids, children, forkserver_pid,
                      processes_with_token, run_dir_in, shm_segments)
from runs import read_episodes, read_until, running, start_run, wait_for_steps
from algorithms.run.procs import process_start

FAULTY_ENVS = os.path.join(ROOT, "tests", "faulty_envs")


# Each test here trains or runs real processes for many seconds.
pytestmark = pytest.mark.slow


POISONED_LEARNER = """
import multiprocessing as mp, sys
import numpy as np
from algorithms import config
from algorithms.actor_learner import Runtime, WorkerSpec, run_learner
from algorithms.environments import EnvSpec
from algorithms.messages import Alert, Timing
from algorithms.networks import layout_for
from algorithms.shared import StepCounters, StopFlag
from algorithms.store import SharedParameterStore
args = config.parse_args(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "4",
                          "--max_global_steps", "400", "--summary_dir", sys.argv[1]])
config.resolve_defaults(args, continuous=False, atari=False)
settings = config.Config.from_namespace(args)
env_spec = EnvSpec("vector", (4,), 2, 1)
layout = layout_for(settings, env_spec)
ctx = mp.get_context("fork")
store = SharedParameterStore(settings, layout.size, ctx)
values = layout.initial_values(np.random.default_rng(0)).astype(np.float32)
# The value head's weights near float32's largest: V(s) overflows to inf, and so does every
# gradient of the value loss; the policy (a network of its own) acts as usual.
start = layout.offsets[[s.name for s in layout.specs].index("value/w")]
values[start:start + 64] = 3e38
store.initialise(values)
messages = []
class Channel:
    def send(self, message):
        messages.append(message)
spec = WorkerSpec(0, 4, settings, env_spec, layout, store.handle, sys.argv[1])
runtime = Runtime(steps=store.steps, stop=StopFlag(ctx), lifeline=None)
try:
    assert run_learner(spec, runtime, Channel()) is True
    alerts = [m.text for m in messages if isinstance(m, Alert)]
    timing = [m.totals for m in messages if isinstance(m, Timing)][0]
    state = store.state()
    print(len(alerts), alerts[0].startswith("non-finite gradient: update skipped"),
          timing["updates"], timing["skipped"],
          int(state["steps"].sum()), int(state["updates"].sum()),
          bool(np.array_equal(state["params"], values)), float(np.abs(state["opt_g"]).max()))
finally:
    store.close()
"""


def test_poisoned_gradients_never_reach_the_shared_parameters(tmp_path):
    """A real actor-learner on CartPole over the real shared store, whose value head is poisoned
    (weights near float32's largest): every gradient is non-finite, so every update is skipped
    and counted, with one warning; after 400 steps the shared parameters are bit for bit those
    it started from and the optimizer's statistics and update counters are untouched."""
    out = subprocess.run([sys.executable, "-c", POISONED_LEARNER, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    alerts, first, updates, skipped, steps, applied, same, opt_g = \
        out.stdout.splitlines()[-1].split()
    assert (alerts, first) == ("1", "True")
    assert int(updates) == int(skipped) >= 400 // 5 and int(steps) >= 400
    assert (applied, same, opt_g) == ("0", "True", "0.0")


@pytest.mark.parametrize("game, what", [
    ("ShrunkCartPole-v1", "an observation of shape (1,); its observation space declares (4,) "
                          "at step 0"),
    ("InfiniteRewardCartPole-v1", "a non-finite reward (inf) at step 10"),
    ("NaNObservationCartPole-v1", "a non-finite observation (array([nan, nan, nan, nan], "
                                  "dtype=float32)) at step 10"),
])
def test_an_environment_that_breaks_its_spaces_stops_the_run_in_one_line(run_cli, tmp_path,
                                                                          game, what):
    """Checked at the boundary: never broadcast into the state, never learned, never counted
    in a mean; a failure that would recur, so nothing is restarted."""
    run = run_cli([game, "--env", "GYM", "-n", "1", "--max_global_steps", "20000", "--seed", "1",
                   "--quiet", "--summary_dir", str(tmp_path)], timeout=300,
                  env={"PYTHONPATH": FAULTY_ENVS})
    assert run.returncode == 1, run.stdout + run.stderr
    line = f"error: actor-learner 0: the environment {game} returned {what} of its episode; " \
           "fix the environment, or wrap it to give what its spaces declare; training stopped"
    assert line in run.stdout, run.stdout
    assert "restarting" not in run.stdout + run.stderr and "Traceback" not in run.stderr
    if game == "ShrunkCartPole-v1":   # refused at its first reset: no step, no checkpoint
        assert "no step was taken: no checkpoint written" in run.stdout
        return
    # the same check in an evaluation of the run's final checkpoint: one line, exit code 1
    evaluated = run_cli([game, "--env", "GYM", "--mode", "eval", "--eval_episodes", "2",
                         "--checkpoint", run.checkpoints()[-1]], timeout=300,
                        env={"PYTHONPATH": FAULTY_ENVS})
    assert evaluated.returncode == 1 and "Traceback" not in evaluated.stderr, evaluated.stderr
    assert f"error: EnvironmentFault: the environment {game} returned {what}" in \
        evaluated.stderr


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    proc, token = start_run(["CartPole-v1", "--env", "GYM", "-n", "2"], tmp_path)
    try:
        wait_for_steps(proc)
        assert len(processes_with_token(token)) >= 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while processes_with_token(token) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_with_token(token) == [], "workers outlived their parent"
        # the resource tracker removes the segments the dead parent could not unlink
        deadline = time.monotonic() + 10
        while shm_segments(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shm_segments(proc.pid) == []
    finally:
        for pid in processes_with_token(token):
            os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
        proc.stderr.close()


def _worker_pids(proc, token):
    pids = actor_learner_pids(proc.pid)
    assert set(pids) <= set(processes_with_token(token))
    return pids


def test_killed_worker_is_restarted_and_training_finishes(tmp_path):
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--max_global_steps",
                   "16000", "--seed", "3"], tmp_path) as (proc, token):
        early = "".join(wait_for_steps(proc))
        victims = _worker_pids(proc, token)
        assert len(victims) == 2
        os.kill(victims[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=180)
        out = early + out
    assert proc.returncode == 0, err
    assert "exited with code -9; restarting it (1 of --max_restarts 3)" in out
    assert "done: " in out
    with open(os.path.join(run_dir_in(out), "episodes.csv")) as f:
        rows = f.read().splitlines()[1:]
    assert max(int(r.split(",")[1]) for r in rows) > 12000   # both actors went on to the end
    assert {r.split(",")[0] for r in rows[-40:]} == {"0", "1"}
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_a_killed_fork_server_stops_the_run_and_its_learners(tmp_path):
    """The fork server is the actor-learners' parent, which multiprocessing learns their ends
    from. Killed (the out-of-memory killer, a stray kill), it leaves them running and
    unwatchable: the run stops with one line that names it, exit code 1 and a final
    checkpoint; no learner is restarted beside the running ones, and none is left."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "6"],
                  tmp_path) as (proc, token):
        early = "".join(wait_for_steps(proc))
        learners = _worker_pids(proc, token)
        assert len(learners) == 2
        server = forkserver_pid(proc.pid)
        os.kill(server, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        out = early + out
    assert proc.returncode == 1, out + err
    assert (f"error: the fork server of the actor-learners (pid {server}) was killed by "
            "SIGKILL (the out-of-memory killer, or a kill from outside); the actor-learners "
            "were stopped (--resume continues); training stopped at step ") in out
    assert "restarting it" not in out and "Traceback" not in out + err
    assert re.search(r"final checkpoint: \S+checkpoint-\d+\.npz", out)
    assert not any(process_start(pid) for pid in learners)   # gone, or zombies
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


SERVER_CONTINUED = "was stopped; it was continued (SIGCONT)"


def test_a_stopped_fork_server_is_continued_and_the_run_goes_on(tmp_path):
    """SIGSTOP to the fork server mid-run (a job-control mistake, a debugger): every join of a
    worker would wait for it forever. It is continued with one warning; the run reaches its
    budget, and a stop then is as quick as ever."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "6",
                   "--max_global_steps", "40000"], tmp_path) as (proc, token):
        wait_for_steps(proc)
        server = forkserver_pid(proc.pid)
        os.kill(server, signal.SIGSTOP)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert f"warning: the fork server of the actor-learners (pid {server}) " \
           f"{SERVER_CONTINUED}" in err
    assert "done: " in out and "Traceback" not in err
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def _first_forkserver(proc) -> int | None:
    """The trainer's fork server as soon as it exists (before it has forked a learner)."""
    deadline = time.monotonic() + 60
    server = None
    while server is None and time.monotonic() < deadline:
        server = forkserver_pid(proc.pid)
        time.sleep(0.01)
    return server


def test_a_fork_server_stopped_while_the_learners_start_is_continued(tmp_path):
    """Stopped before it has forked a learner, the server would leave the trainer blocked in
    a start, deaf to every signal; it is continued and the learners start."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "6",
                   "--max_global_steps", "20000"], tmp_path) as (proc, token):
        server = _first_forkserver(proc)
        assert server is not None and actor_learner_pids(proc.pid) == []
        os.kill(server, signal.SIGSTOP)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert SERVER_CONTINUED in err and "started 2 actor-learner processes" in out
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_a_fork_server_killed_while_the_learners_start_is_named(tmp_path):
    """Not taken for a machine's limit (``ulimit``): one line names the killed server."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "6",
                   "--max_global_steps", "20000"], tmp_path) as (proc, token):
        server = _first_forkserver(proc)
        assert server is not None
        os.kill(server, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert f"the fork server of the actor-learners (pid {server}) was killed by SIGKILL" in out
    assert "ulimit" not in out + err and "Traceback" not in out + err
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_a_killed_trainer_leaves_nothing_even_with_its_fork_server_stopped(tmp_path):
    """kill -9 of the trainer while its fork server is stopped: the server dies with it
    (PR_SET_PDEATHSIG; SIGKILL ends a stopped process), the learners see their lifeline end,
    and the resource tracker removes the shared memory."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "6"],
                  tmp_path) as (proc, token):
        wait_for_steps(proc)
        os.kill(forkserver_pid(proc.pid), signal.SIGSTOP)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 20
    while (processes_with_token(token) or shm_segments(proc.pid)) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_what_a_run_killed_with_its_resource_tracker_leaves_is_removed_by_the_next(tmp_path):
    """kill -9 of the resource tracker, then of the trainer: nothing is left that could unlink
    the shared memory. The next run removes those segments when it starts, and says so."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "7"],
                  tmp_path) as (proc, token):
        wait_for_steps(proc)
        [tracker] = [pid for pid in children(proc.pid)
                     if b"resource_tracker" in open(f"/proc/{pid}/cmdline", "rb").read()]
        os.kill(tracker, signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 20
    while processes_with_token(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = shm_segments(proc.pid)
    assert left, "nothing was left to remove"
    again = subprocess.run([sys.executable, os.path.join(ROOT, "algorithms", "main.py"),
                            "CartPole-v1", "--env", "GYM", "-n", "1", "--max_global_steps", "200",
                            "--summary_dir", str(tmp_path / "again"), "--checkpoint_dir",
                            str(tmp_path / "again-checkpoints"), "--quiet"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert re.search(rf"removed {len(left)} shared-memory segment\(s\) \([0-9.]+ MB\) that a "
                     r"killed run had left in /dev/shm", again.stdout), again.stdout
    assert shm_segments(proc.pid) == []


def test_a_run_whose_resource_tracker_was_killed_ends_cleanly_and_removes_its_memory(tmp_path):
    """kill -9 of the resource tracker alone, mid-run: the run goes on to its budget, removes
    its shared memory itself and ends with exit code 0, without multiprocessing's warning that
    the tracker died or a KeyError traceback for each segment (from the new tracker that
    telling it of the removal would start, which knows none of them)."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "8",
                  "--max_global_steps", "4000"], tmp_path) as (proc, token):
        early = "".join(wait_for_steps(proc))
        [tracker] = [pid for pid in children(proc.pid)
                     if b"resource_tracker" in open(f"/proc/{pid}/cmdline", "rb").read()]
        os.kill(tracker, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
        out = early + out
    assert proc.returncode == 0, out + err
    assert "done: " in out
    assert "Traceback" not in out + err and "KeyError" not in out + err, out + err
    assert "resource_tracker" not in err, err
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def _stop_worker(proc, token) -> int:
    """SIGSTOP one of the run's actor-learners (as a debugger or a frozen machine would);
    returns its pid."""
    victim = max(_worker_pids(proc, token))
    os.kill(victim, signal.SIGSTOP)
    return victim


def test_stalled_worker_is_treated_as_dead(tmp_path):
    """An actor-learner stopped with SIGSTOP makes no progress; after --stall_timeout it is
    killed and restarted, and the new one learns beside the other: its episodes follow the
    restart in episodes.csv. (The budget is one the run never reaches; a Ctrl-C ends it.)"""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--max_global_steps",
                   "10000000", "--stall_timeout", "4", "--seed", "5"], tmp_path) as (proc, token):
        seen = wait_for_steps(proc)
        victim = _stop_worker(proc, token)
        actor = read_until(proc, r"warning: actor-learner (\d) made no progress for \d+ s "
                                 r"\(--stall_timeout\); treating it as dead", 60, seen).group(1)
        read_until(proc, r"exited with code -9; restarting it \(1 of --max_restarts 3\)", 30,
                   seen)
        # the progress lines come back once both learners run again
        restarted_at = int(read_until(proc, r"^\[.*\] step ([\d,]+)/", 120, seen)
                           .group(1).replace(",", ""))
        read_until(proc, r"^\[.*\] step ", 30, seen)
        assert victim not in _worker_pids(proc, token)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        out = "".join(seen) + out
    assert proc.returncode == 130, out + err
    assert out.count("restarting it") == 1 and "Traceback" not in err
    assert any(row["actor"] == actor and int(row["global_step"]) > restarted_at
               for row in read_episodes(run_dir_in(out)))
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_a_run_stopped_and_continued_is_not_taken_for_stalled(tmp_path):
    """Ctrl-Z then `fg` (SIGSTOP, then SIGCONT to the whole process group), for twice
    --stall_timeout: no actor-learner made progress, but none could; the run goes on without
    killing any, and finishes, leaving nothing behind."""
    proc, token = start_run(["CartPole-v1", "--env", "GYM", "-n", "2", "--max_global_steps",
                          "40000", "--stall_timeout", "5", "--seed", "7"], tmp_path,
                         new_session=True)
    try:
        early = "".join(wait_for_steps(proc))
        os.killpg(proc.pid, signal.SIGSTOP)
        time.sleep(10)
        os.killpg(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=200)
        out = early + out
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)   # an assertion above must leave nothing
        proc.wait()
    assert proc.returncode == 0, out + err
    assert "made no progress" not in out and "restarting it" not in out
    assert "done: 40,0" in out
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def _stalled_run(tmp_path):
    """A run with one actor-learner stopped (SIGSTOP) and the stall detector out of the way: the
    stopped worker never looks at the stop flag again, and ignores SIGTERM until killed."""
    proc, token = start_run(["CartPole-v1", "--env", "GYM", "-n", "2", "--stall_timeout", "1000"],
                         tmp_path)
    wait_for_steps(proc)
    _stop_worker(proc, token)
    return proc, token


def test_second_sigint_stops_at_once(tmp_path):
    """The first Ctrl-C asks the workers to stop, but the hung one cannot; a second Ctrl-C stops
    it at once: exit 130, a final checkpoint, no process and no segment left."""
    proc, token = _stalled_run(tmp_path)
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(2.0)
        assert proc.poll() is None, "the hung worker cannot have stopped by itself"
        proc.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert stopped_after < 5, f"the second Ctrl-C took {stopped_after:.1f} s"
    assert "did not stop within" not in out   # it was the second signal, not the grace period
    assert "final checkpoint: " in out and "stopped by SIGINT" in out
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_a_hung_worker_does_not_block_a_stop(tmp_path):
    """After one SIGTERM the healthy worker stops at once; the stopped one is terminated after
    the grace period (and killed, since a stopped process holds SIGTERM pending), and the run
    still ends with 143 and a final checkpoint."""
    proc, token = _stalled_run(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert re.search(r"warning: actor-learner \d did not stop within 10 s; terminating it", out)
    assert "final checkpoint: " in out
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_sixteen_workers_stop_within_15_seconds(tmp_path):
    """SIGINT with 16 actor-learners running: all stop, a final checkpoint is written, everything
    is joined and unlinked within 15 s."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "16"], tmp_path) as (proc, token):
        lines = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:   # wait until all 16 have started their loops
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("[") or not line:
                break
        assert lines[-1].startswith("["), "".join(lines)
        assert len(processes_with_token(token)) >= 17
        proc.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - signalled
    assert proc.returncode == 130, err
    assert stopped_after < 15, f"stopping 16 workers took {stopped_after:.1f} s"
    assert "final checkpoint: " in out
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []
