"""The real CLI in real processes: learning, TensorBoard output, clean exits and signals."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from algorithms import checkpoint
from conftest import (ALGORITHMS, ROOT, actor_learner_pids, flag_value, processes_with_token,
                      readme_commands, shm_segments)
from runs import (TRAINED_CARTPOLE_MEAN, TRAIN_TAGS, assert_nothing_left, read_episodes,
                  read_scalars, read_until, running, start_run, trailing_means, train_until,
                  wait_for_steps)

# Each test here trains or runs real processes for many seconds.
pytestmark = pytest.mark.slow


def test_cartpole_learns(run_cli, tmp_path):
    """A3C with 2 actor-learners, the README's command: the mean return of the last 20 episodes
    reaches 400 (a random policy averages about 22), and --stop_return ends training there.
    Measured here: 400 within 19,000-33,000 steps in 4 of 4 seeds (about 30 s a run); the cap
    is 100,000."""
    (args,) = readme_commands("A3C, feed-forward (advantage actor-critic)")
    budget = int(flag_value(args, "--max_global_steps"))
    # The checkpoint taken at the stop may sit in a dip (TRAINED_CARTPOLE_MEAN): one that
    # scores under the bar counts as a run that did not learn, and the other seed goes first.
    dips = []
    for attempt, seeds in enumerate(((7, 11), (11, 7))):
        folder = tmp_path / f"try{attempt}"
        folder.mkdir()
        run, returns = train_until(
            run_cli, folder, args, seeds=seeds,
            good=lambda returns: trailing_means(returns).max() >= 400, timeout=300)
        assert "reached --stop_return 400 at step" in run.stdout
        episodes = read_episodes(run.run_dir())
        assert {e["actor"] for e in episodes} == {"0", "1"}
        assert returns[:20].mean() < 100, "the first episodes should be those of a random policy"
        assert int(episodes[-1]["global_step"]) < budget
        assert_nothing_left(run)
        scores = _evaluate_and_plot(run_cli, run, folder)
        if np.mean(scores) > TRAINED_CARTPOLE_MEAN:
            return
        dips.append(scores)
    pytest.fail(f"no checkpoint taken at --stop_return scored over {TRAINED_CARTPOLE_MEAN} "
                f"(a random policy scores about 22): {dips}")


def _evaluate_and_plot(run_cli, run, tmp_path) -> list[float]:
    """The trained checkpoint, evaluated with the paper's protocol and recorded; its run
    plotted. Returns its evaluation scores."""
    import cv2
    final = run.checkpoints()[-1]
    videos = tmp_path / "videos"
    evaluated = run_cli(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint", final,
                         "--eval_episodes", "10", "--record_video", str(videos),
                         "--video_episodes", "1", "--eval_file", str(tmp_path / "eval.json")],
                        timeout=200)
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.load(open(tmp_path / "eval.json"))
    assert {"mean", "std", "min", "max", "scores", "episodes", "checkpoint"} <= set(result)
    assert result["episodes"] == 10 and result["policy"] == "sampled from the policy"
    assert result["mean"] == pytest.approx(np.mean(result["scores"]))
    assert result["min"] <= result["mean"] <= result["max"]
    assert "mean" in evaluated.stdout and "written to" in evaluated.stdout
    # one video, of the first episode: its first frame plus one per step, and not blank
    [video] = result["videos"]
    assert os.listdir(videos) == [os.path.basename(video["path"])]
    capture = cv2.VideoCapture(video["path"])
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == video["frames"] == result["lengths"][0] + 1
    assert frames[0].shape[0] >= 400 and frames[0].std() > 10

    png = tmp_path / "curves.png"
    out = subprocess.run([sys.executable, os.path.join(ALGORITHMS, "plot.py"), run.run_dir(),
                          "-o", str(png)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    import matplotlib.image
    image = matplotlib.image.imread(str(png))
    assert image.shape[0] > 300 and image.shape[1] > 1000 and image.std() > 0.05
    return result["scores"]


def test_atari_smoke_run(run_cli, tmp_path):
    """The plain command with -n 2: the tuned preset, 8 games per actor-learner (16 // 2) at
    8 x 1e-4; 20,000 steps give each of the 16 games 1,250, more than a Pong episode lasts."""
    run = run_cli(["pong", "-n", "2", "--max_global_steps", "20000", "--seed", "1",
                   "--summary_dir", str(tmp_path)], timeout=300)
    assert run.returncode == 0, run.stderr
    run_dir = run.run_dir()
    assert os.path.dirname(os.path.dirname(run_dir)) == str(tmp_path / "pong")
    assert "step" in run.stdout and "steps/s" in run.stdout and "frames/s" in run.stdout
    record = json.load(open(os.path.join(run_dir, "config.json")))
    assert record["config"]["game"] == "pong"
    assert (record["config"]["arch"], record["config"]["opt_type"],
            record["config"]["max_local_steps"], record["config"]["envs_per_actor"],
            record["config"]["initial_lr"]) == ("UNIVERSE_BGSTD", "adam", 20, 8, 8e-4)   # tuned
    assert record["config"]["single_life_episodes"] is True
    assert record["config"]["observation_shape"] == [42, 42, 4]
    assert record["config"]["num_actions"] == 6
    assert record["versions"]["tensorflow"] == "2.21.0"
    episode_tags = set()
    for actor in (0, 1):
        scalars = read_scalars(os.path.join(run_dir, f"actor_{actor}"))
        assert TRAIN_TAGS <= set(scalars), sorted(scalars)
        assert all(np.isfinite(v) for values in scalars.values() for _, v in values)
        # annealed linearly to 0 over the run's 20,000 steps (the default --lr_annealing_steps)
        for step, lr in scalars["train/learning_rate"]:
            assert lr == pytest.approx(8e-4 * max(0.0, 1 - step / 20000), rel=1e-4, abs=1e-9)
        episode_tags |= set(scalars) & {"episode/return", "episode/length"}
        for _, ret in scalars.get("episode/return", []):
            assert -21 <= ret <= 21
    assert episode_tags == {"episode/return", "episode/length"}
    rows = read_episodes(run_dir)
    assert rows and all(-21 <= float(r["return"]) <= 21 and int(r["length"]) > 100 for r in rows)
    assert len({(r["actor"], r["env"]) for r in rows}) >= 8   # episodes of many of the 16 games
    assert_nothing_left(run)


def test_module_entry_point_from_the_root(tmp_path):
    """`python -m algorithms` from the repository root trains too."""
    out = subprocess.run([sys.executable, "-m", "algorithms", "CartPole-v1", "--env", "GYM",
                          "-n", "1", "--max_global_steps", "300", "--summary_dir",
                          str(tmp_path), "--checkpoint_dir", str(tmp_path / "ckpt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "done: " in out.stdout
    assert len(list((tmp_path / "CartPole-v1" / "a3c").iterdir())) == 1


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly(tmp_path, sig, code):
    with running(["CartPole-v1", "--env", "GYM", "-n", "2"], tmp_path) as (proc, token):
        wait_for_steps(proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "stopped by" in out
    _assert_final_checkpoint(out, tmp_path)
    assert processes_with_token(token) == []
    assert shm_segments(proc.pid) == []


def test_a_signal_before_the_first_step_ends_cleanly_without_a_checkpoint(tmp_path):
    """Ctrl-C while the run is being put together (its folder made, the fork server and the
    shared memory not yet): no learner is started, no checkpoint is written (an empty one would
    block a new run in that folder), exit 130."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "2"], tmp_path) as (proc, token):
        line = proc.stdout.readline()
        while line and not line.startswith("run directory:"):
            line = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "no step was taken: no checkpoint written" in out and "Traceback" not in err
    assert not list(tmp_path.rglob("checkpoint-*.npz"))
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (``SigCgt`` in /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration):
        return False
    return bool(mask & (1 << (signum - 1)))


def _interrupted(args, cwd, delay: float):
    """The CLI sent SIGINT ``delay`` s after the program's own handlers are in place (Python
    catches no SIGQUIT by itself: once it does, ``cli.main`` has started; before that, only the
    interpreter's own start, which no program can guard, would be measured)."""
    proc = subprocess.Popen([sys.executable, os.path.join(ALGORITHMS, "main.py"), *args],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _catches(proc.pid, signal.SIGQUIT) and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def test_ctrl_c_at_any_moment_of_the_start_ends_cleanly(run_cli, tmp_path):
    """Ctrl-C while the program still imports and checks (Gymnasium, TensorFlow): exit 130, one
    line, never a traceback; whichever moment it lands on. A training interrupted before its
    run folder was made leaves none; an evaluation interrupted while it loads TensorFlow writes
    no result."""
    for delay in (0.0, 0.1, 0.6, 1.5):
        code, out, err = _interrupted(["CartPole-v1", "--env", "GYM", "-n", "1", "--summary_dir",
                                       str(tmp_path / f"runs-{delay}"), "--checkpoint_dir",
                                       str(tmp_path / f"ck-{delay}")], tmp_path, delay)
        assert code == 130 and "Traceback" not in err, (delay, out, err)
        early = "interrupted (SIGINT) before the start was complete" in err
        assert early or "stopped by SIGINT at step " in out, (delay, out, err)
        if early:   # stopped before the run folder was made: none is left
            assert not list(tmp_path.glob(f"runs-{delay}/*/*/*")), delay
    trained = run_cli(["CartPole-v1", "--env", "GYM", "-n", "1", "--max_global_steps", "300",
                       "--quiet", "--summary_dir", str(tmp_path)], timeout=120, cwd=str(tmp_path))
    assert trained.returncode == 0, trained.stderr
    for delay in (0.3, 1.0, 2.0):
        code, out, err = _interrupted(["CartPole-v1", "--env", "GYM", "--mode", "eval",
                                       "--eval_episodes", "1000000", "--eval_file",
                                       str(tmp_path / f"eval-{delay}.json")], tmp_path, delay)
        assert code == 130 and "Traceback" not in err, (delay, out, err)
        assert err.strip().splitlines()[-1].startswith("interrupted"), (delay, err)


def test_evaluation_stops_on_sigint_even_when_it_inherited_sigint_ignored(run_cli, tmp_path):
    """A command started in the background by a non-interactive shell inherits SIGINT ignored;
    an evaluation still stops on it, with 130, and the scores of the episodes it played are
    written, marked partial."""
    trained = run_cli(["CartPole-v1", "--env", "GYM", "-n", "1", "--max_global_steps", "300",
                       "--quiet", "--summary_dir", str(tmp_path)], timeout=120, cwd=str(tmp_path))
    assert trained.returncode == 0, trained.stderr
    proc = subprocess.Popen([sys.executable, os.path.join(ALGORITHMS, "main.py"), "CartPole-v1",
                             "--env", "GYM", "--mode", "eval", "--eval_episodes", "1000000"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout.readline().startswith("evaluating ")
        assert proc.stdout.readline().startswith("episode 1/")   # it is playing
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted: evaluation stopped after " in err
    assert "of 1000000 episodes; the scores so far are kept" in err and "Traceback" not in err
    [written] = tmp_path.rglob("eval-*.json")
    result = json.loads(written.read_text())
    assert result["partial"] is True and result["stopped_by"] == "interrupted"
    assert result["planned_episodes"] == 1_000_000
    assert result["episodes"] == len(result["scores"]) >= 1


def test_sigusr1_to_the_group_writes_a_checkpoint_and_training_goes_on(tmp_path):
    """SIGUSR1 to the whole process group, as a batch scheduler sends it ahead of a job's time
    limit (Slurm's --signal=USR1@60): the supervisor writes a checkpoint at once; the workers,
    the fork server and the resource tracker ignore it, and training goes on. A Ctrl-C later
    stops the run as usual, its final checkpoint beside the asked one."""
    proc, token = start_run(["CartPole-v1", "--env", "GYM", "-n", "2",
                             "--checkpoint_interval", "100000000"], tmp_path, new_session=True)
    seen = []
    try:
        wait_for_steps(proc)
        os.killpg(proc.pid, signal.SIGUSR1)
        asked = read_until(proc, r"^SIGUSR1: writing a checkpoint at step ([\d,]+); training "
                                 r"goes on", 60, seen)
        read_until(proc, r"^checkpoint: .*checkpoint-\d+\.npz", 60, seen)
        later = read_until(proc, r"^\[.*\] step ([\d,]+)/", 60, seen)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 130
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    asked_step = int(asked.group(1).replace(",", ""))
    assert int(later.group(1).replace(",", "")) > asked_step
    log = "".join(seen) + out + err
    assert "restarting" not in log and "Traceback" not in log, log
    found = sorted((tmp_path / "checkpoints" / "CartPole-v1" / "a3c").glob("checkpoint-*.npz"))
    assert len(found) == 2, found
    steps = [checkpoint.load(str(path)).step for path in found]
    assert asked_step <= steps[0] < steps[1]
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


@pytest.mark.parametrize("sig, code", [(signal.SIGHUP, 129), (signal.SIGQUIT, 131)])
def test_a_terminals_signal_to_the_group_stops_like_sigterm(tmp_path, sig, code):
    """SIGHUP to the whole process group, as a terminal sends when it closes, after the terminal
    (the output pipe) is gone; or SIGQUIT, as Ctrl-\\ sends: the workers, the fork server and
    the resource tracker ignore it, the parent stops the workers, writes a final checkpoint and
    exits with 128 + the signal, leaving no process or segment behind.

    No interval checkpoint is due within the run (--checkpoint_interval beyond its budget): the
    one checkpoint is the one written at the signal, however long the run trained before it (a
    test process starved of the CPU by the run's own session may read its first line late)."""
    import uuid
    token = uuid.uuid4().hex
    proc = subprocess.Popen([sys.executable, os.path.join(ALGORITHMS, "main.py"), "CartPole-v1",
                             "--env", "GYM", "-n", "2", "--summary_dir", str(tmp_path),
                             "--checkpoint_interval", "100000000"],
                            cwd=tmp_path, env=dict(os.environ, RUN_TOKEN=token,
                                                   PYTHONUNBUFFERED="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for_steps(proc)
        proc.stdout.close()
        proc.stderr.close()
        os.killpg(proc.pid, sig)
        assert proc.wait(60) == code
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    found = list((tmp_path / "checkpoints" / "CartPole-v1" / "a3c").glob("checkpoint-*.npz"))
    assert len(found) == 1
    deadline = time.monotonic() + 10   # the resource tracker leaves once its pipe closes
    while processes_with_token(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: open(f"/proc/{pid}/cmdline", "rb").read() for pid in processes_with_token(token)}
    assert left == {} and shm_segments(proc.pid) == []


def test_dead_worker_past_max_restarts_stops_training(tmp_path):
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--max_restarts", "0"],
                   tmp_path) as (proc, token):
        wait_for_steps(proc)
        children = actor_learner_pids(proc.pid)
        assert len(children) == 2
        os.kill(children[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "exited with code -9, and --max_restarts 0 restarts are used up" in out
    _assert_final_checkpoint(out, tmp_path)
    assert processes_with_token(token) == []
    assert shm_segments(proc.pid) == []


def _assert_final_checkpoint(out, tmp_path):
    """The run's last words include a final checkpoint, at the step training reached."""
    from algorithms import checkpoint
    [line] = [l for l in out.splitlines() if l.startswith("final checkpoint: ")]
    path = line.split(": ", 1)[1].split(" (")[0]
    assert path.startswith(str(tmp_path / "checkpoints" / "CartPole-v1" / "a3c"))
    ckpt = checkpoint.load(path)
    assert ckpt.step > 0 and np.isfinite(ckpt.arrays["params"]).all()
    assert checkpoint.latest(os.path.dirname(path)) == path


ROWS = {("q", 1): "one-step Q-learning", ("q", 5): "n-step Q-learning",
        ("sarsa", 1): "one-step Sarsa", ("sarsa", 5): "n-step Sarsa (not in the paper)"}


@pytest.mark.parametrize("alg, t_max", [("q", 1), ("sarsa", 1), ("q", 5), ("sarsa", 5)],
                         ids=["one-step-q", "one-step-sarsa", "n-step-q", "n-step-sarsa"])
def test_value_based_cartpole_learns(run_cli, tmp_path, alg, t_max):
    """Each value-based method, the README's command with its default flags (epsilon annealed
    over 30,000 steps, the target refreshed every 500 on vector observations), brings the mean
    return of the last 20 episodes to 300, where --stop_return ends training; the caps are
    200,000 and 150,000 steps. Measured: n-step Sarsa
    at 42,000 steps; one-step Q either at about 30,000 steps, or it falls back after its
    first peak and gets there at 140,000-180,000 (5 of 6 runs), so a second run is allowed.

    The episodes are those of the exploring policies. Seeds 1 and 3 (the retry) both draw final
    epsilons 0.1 and 0.01 for the two actor-learners (asserted below); a draw of 0.5 for both,
    which the paper's distribution gives with probability 0.09, makes half the actions random,
    and no learned Q-function then holds the pole for 300 steps on average.
    """
    from algorithms.exploration import epsilon
    (args,) = readme_commands(ROWS[alg, t_max])
    assert (flag_value(args, "--alg_type"), flag_value(args, "--max_local_steps")) == \
        (alg, str(t_max))
    run, returns = train_until(
        run_cli, tmp_path, args, seeds=(1, 3), good=lambda r: trailing_means(r).max() >= 300,
        timeout=400)
    assert "reached --stop_return 300 at step" in run.stdout
    run_dir = run.run_dir()
    record = json.load(open(os.path.join(run_dir, "config.json")))
    assert record["config"]["final_epsilons"] == [0.1, 0.01]
    assert returns[:20].mean() < 100
    scalars = read_scalars(os.path.join(run_dir, "actor_1"))
    assert {"loss/td", "explore/epsilon", "q/max_mean", "episode/return"} <= set(scalars)
    # epsilon fell from 1 along the schedule towards this learner's final value, 0.01. A
    # segment's epsilon comes from the global step when it began, and is logged at the step
    # when it ended: the first segment can span the other learner's first hundreds of steps.
    (first_step, first), (last_step, last) = scalars["explore/epsilon"][0], \
        scalars["explore/epsilon"][-1]
    assert first > 0.8 and last < 0.5
    assert epsilon(first_step, 0.01, 30_000) - 0.01 <= first <= 1.0
    assert last == pytest.approx(epsilon(last_step, 0.01, 30_000), abs=0.01)
    # the greedy values grew as the pole stayed up longer
    max_q = [v for _, v in scalars["q/max_mean"]]
    assert np.mean(max_q[-10:]) > np.mean(max_q[:10]) + 5
    assert_nothing_left(run)


def test_atari_n_step_q_smoke_run(run_cli, tmp_path):
    # 8 games per actor-learner by default: 24,000 steps are 1,500 per game, past a first
    # (random) game of Pong's
    run = run_cli(["pong", "-n", "2", "--alg_type", "q", "--max_local_steps", "5",
                   "--max_global_steps", "24000", "--seed", "3", "--summary_dir", str(tmp_path)],
                  timeout=300)

    assert run.returncode == 0, run.stderr
    assert "final epsilons per actor-learner" in run.stdout
    run_dir = run.run_dir()
    tags = set()
    for actor in (0, 1):
        scalars = read_scalars(os.path.join(run_dir, f"actor_{actor}"))
        assert {"loss/td", "explore/epsilon", "train/learning_rate"} <= set(scalars)
        assert all(np.isfinite(v) for values in scalars.values() for _, v in values)
        tags |= set(scalars)
    assert {"episode/return", "q/max_mean"} <= tags
    assert read_episodes(run_dir)
    assert_nothing_left(run)


def test_a_temporary_folder_too_long_for_the_fork_servers_socket_is_worked_around(run_cli,
                                                                                  tmp_path):
    """A TMPDIR of 110 characters leaves no room for the fork server's socket path (Linux
    takes 107 bytes): training stopped with "OSError: AF_UNIX path too long". Now the socket
    goes in /tmp, one notice says so, and the run trains and writes its checkpoint."""
    long_tmp = tmp_path / ("t" * (110 - len(str(tmp_path)) - 1))
    long_tmp.mkdir()
    assert len(str(long_tmp)) == 110
    run = run_cli(["CartPole-v1", "--env", "GYM", "-n", "1", "--max_global_steps", "1000",
                   "--seed", "1", "--quiet", "--summary_dir", str(tmp_path / "s"),
                   "--checkpoint_dir", str(tmp_path / "c")], timeout=120,
                  env={"TMPDIR": str(long_tmp)})
    assert run.returncode == 0, run.stderr
    assert f"notice: the temporary folder '{long_tmp}' is too long a path for the fork " \
           "server's socket" in run.stdout + run.stderr
    assert "it goes in /tmp" in run.stdout + run.stderr
    assert [name for name in os.listdir(tmp_path / "c") if name.endswith(".npz")]
