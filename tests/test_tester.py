"""The test process and the run's own TensorBoard curve, on real runs: evals.csv, eval/return,
best.npz, run/mean_return and the hparams entry, read back with TensorBoard's reader; a test
process killed mid-run is restarted and training goes on."""
import csv
import os
import signal
import time

import numpy as np
import pytest

from algorithms import checkpoint
from conftest import actor_learner_pids, processes_with_token, shm_segments
from runs import read_until, running, wait_for_steps

pytestmark = pytest.mark.slow


def run_events(run_dir: str):
    """The run folder's own event file (not the actor folders'), with TensorBoard's reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_the_test_process_logs_scores_keeps_the_best_and_the_run_has_one_curve(run_cli,
                                                                                tmp_path):
    # The first test beats no best yet, so its parameters play two more games: three rows at
    # one step. The test process runs at nice 10 beside two learners that keep both cores busy,
    # so how many steps pass between its tests depends on the machine: the run has a budget it
    # never reaches and is stopped with Ctrl-C once three snapshots have been tested, which
    # takes seconds on a slow machine and on a fast one alike.
    ck = tmp_path / "ck"
    with running(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "3",
                  "--max_global_steps", "10000000", "--eval_interval", "5000",
                  "--checkpoint_dir", str(ck)], tmp_path) as (proc, _):
        seen: list[str] = []
        run_dir = read_until(proc, r"^run directory: (\S+)", 120, seen).group(1)
        tested = set()
        while len(tested) < 3:
            tested.add(read_until(proc, r"^test at step ([\d,]+): ", 240, seen).group(1))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    out = "".join(seen) + out
    assert proc.returncode == 130, out + err
    with open(os.path.join(run_dir, "evals.csv"), newline="") as f:
        evals = list(csv.DictReader(f))
    assert len(evals) >= 5, evals   # three games of the first snapshot, one of each later one
    steps = [int(row["global_step"]) for row in evals]
    assert steps == sorted(steps) and all(step > 0 for step in steps)
    assert steps[0] == steps[2]
    tests = sorted(set(steps))
    assert all(b - a >= 5000 for a, b in zip(tests, tests[1:]))   # --eval_interval apart
    scores = [float(row["return"]) for row in evals]
    by_step = {step: [score for s, score in zip(steps, scores) if s == step] for step in tests}
    # one game, or three for a snapshot that beat the best (the last test may be cut short
    # by the end of the run)
    assert all(len(by_step[step]) in (1, 3) for step in tests[:-1])
    assert len(by_step[tests[-1]]) in (1, 2, 3)
    bests = [row for row in evals if row["best"] == "1"]
    assert bests[0] is evals[2]   # the first three games' mean is the first best
    means = [sum(by_step[int(b["global_step"])]) / 3 for b in bests]   # a best has its three
    assert means == sorted(set(means))   # each best beat the one before
    for step, games in by_step.items():  # a snapshot whose first game beat the best confirms
        earlier = [m for b, m in zip(bests, means) if int(b["global_step"]) < step]
        if len(games) == 1 and earlier:
            assert games[0] <= max(earlier)
    assert f"test at step {steps[0]:,}: score {scores[0]:g}" in out
    assert f"their mean {means[0]:g} is the best so far, kept as best.npz" in out
    # best.npz: the parameters of the best mean, which a checkpoint evaluation and --resume take
    best = checkpoint.load(str(ck / "best.npz"))
    assert best.meta["eval_score"] == pytest.approx(means[-1])
    assert best.meta["eval_step"] == int(bests[-1]["global_step"])
    assert best.meta["eval_games"] == 3
    evaluated = run_cli(["CartPole-v1", "--env", "GYM", "--mode", "eval", "--checkpoint",
                         str(ck / "best.npz"), "--eval_episodes", "2", "--eval_file",
                         str(tmp_path / "best-eval.json")], timeout=200)
    assert evaluated.returncode == 0, evaluated.stderr
    # the run's own curve and its scores against the global step, and its settings
    acc = run_events(run_dir)
    tags = acc.Tags()["scalars"]
    assert {"run/mean_return", "eval/return", "eval/best"} <= set(tags)
    assert [e.step for e in acc.Scalars("eval/return")] == steps
    assert [e.value for e in acc.Scalars("eval/return")] == pytest.approx(scores)
    assert acc.Scalars("eval/best")[-1].value == pytest.approx(means[-1])
    curve = acc.Scalars("run/mean_return")
    with open(os.path.join(run_dir, "episodes.csv"), newline="") as f:
        episodes = list(csv.DictReader(f))
    assert len(curve) == len(episodes) and curve[-1].step == int(episodes[-1]["global_step"])
    last20 = [float(row["return"]) for row in episodes[-20:]]
    assert curve[-1].value == pytest.approx(sum(last20) / 20, rel=1e-5)
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams
    content = hparams["_hparams_/session_start_info"].decode("latin-1")
    assert "eval_interval" in content and "CartPole-v1" in content


def _nice(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rpartition(b")")[2].split()[16])


def test_a_killed_test_process_is_restarted_and_training_goes_on(tmp_path):
    """The restarted test process tests a snapshot taken after its restart; the learners never
    noticed (--max_restarts 0: a learner's death would have stopped the run with exit 1, not
    the Ctrl-C's 130 that ends it here, at a budget it never reaches)."""
    with running(["CartPole-v1", "--env", "GYM", "-n", "1", "--seed", "4",
                   "--max_global_steps", "10000000", "--eval_interval", "2000", "--max_restarts",
                   "0"], tmp_path) as (proc, token):
        seen = wait_for_steps(proc)
        deadline = time.monotonic() + 60
        testers = []
        while not testers and time.monotonic() < deadline:
            testers = [pid for pid in actor_learner_pids(proc.pid) if _nice(pid) == 10]
            time.sleep(0.2)
        assert len(testers) == 1, "the test process (nice 10) was not found"
        os.kill(testers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        restarted = []
        while not restarted and time.monotonic() < deadline:
            restarted = [pid for pid in actor_learner_pids(proc.pid)
                         if pid != testers[0] and _nice(pid) == 10]
            time.sleep(0.2)
        assert restarted, "no new test process"
        after = int(read_until(proc, r"^\[.*\] step ([\d,]+)/", 60, seen)
                    .group(1).replace(",", ""))
        while int(read_until(proc, r"^test at step ([\d,]+): ", 120, seen)
                  .group(1).replace(",", "")) < after:
            pass
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "warning: the test process failed (test-process exited with code -9); restarting " \
           "it (1 of 3); training goes on" in err
    assert processes_with_token(token) == [] and shm_segments(proc.pid) == []


def test_a_test_game_without_rewards_ends_and_one_with_rewards_plays_on():
    """A greedy policy that never serves the ball (Breakout, the network's every output zero:
    always NOOP) ends after ``stall_steps`` steps without a reward instead of playing to the
    frame limit; in Pong, whose opponent scores without the agent's help, the same policy plays
    the whole game, to -21. Real ALE games, a real network."""
    from algorithms import config as flags
    from algorithms.agents import make_agent
    from algorithms.config import Config
    from algorithms.environments import atari_frames, make_environment, with_frames
    from algorithms.networks import layout_for
    from algorithms.startup import probe
    from algorithms.store import FrozenStore
    from algorithms.tester import play_game

    for game, expected in (("breakout", (0.0, 300)), ("pong", (-21.0, None))):
        args = flags.parse_args([game, "--arch", "UNIVERSE"])
        flags.resolve_defaults(args, continuous=False, atari=True)
        config = Config.from_namespace(args)
        frames = atari_frames(config.arch, config.lstm, config.screen_size, config.crop,
                              config.resample)
        env_spec = with_frames(probe(config), frames)
        layout = layout_for(config, env_spec)
        agent = make_agent(config, layout, env_spec, FrozenStore(np.zeros(layout.size,
                                                                           np.float32)),
                           np.random.default_rng(0), final_epsilon=0.0)
        agent.greedy = True
        agent.sync(0)
        env = make_environment("ALE", game, None, 0, frames=frames)
        try:
            score, length = play_game(agent, env, lambda: False, stall_steps=300)
        finally:
            env.close()
        assert score == expected[0], game
        if expected[1] is not None:
            assert length == expected[1]
        else:
            assert length > 300   # points came every few hundred steps: never cut


def test_the_best_goes_where_the_trainers_checkpoints_go(tmp_path):
    """best.npz lies beside the run's checkpoints: in --checkpoint_dir, and in the folder of the
    trainer's own pid once the run moved there (its --checkpoint_dir removed under it and
    claimed by another run); never in a moved folder of another process."""
    from algorithms import files
    from algorithms.tester import BEST, best_path
    folder = tmp_path / "ck"
    folder.mkdir()
    me = os.getpid()
    assert best_path(str(folder), me) == str(folder / BEST)
    moved = files.moved_folder(str(folder), me)
    assert moved == f"{folder}-{me}"
    assert files.lock_folder(moved) is None
    try:
        assert best_path(str(folder), me) == os.path.join(moved, BEST)
        assert best_path(str(folder), me + 1) == str(folder / BEST)   # another trainer's
        assert best_path(str(folder), 0) == str(folder / BEST)        # no trainer known
    finally:
        files.release_folder(moved)
    # a folder named for a pid whose lock file names another process is not the trainer's
    other = tmp_path / f"ck-{me + 2}"
    other.mkdir()
    (other / files.LOCK_NAME).write_text(f"{me + 3}\n")
    assert best_path(str(folder), me + 2) == str(folder / BEST)
    # nor one whose lock file names it but that nobody holds (an earlier run of the same pid)
    assert not files.is_locked(moved)
    assert files.lock_holder(moved) == me
    assert best_path(str(folder), me) == str(folder / BEST)
    # and while the trainer holds --checkpoint_dir itself, the best goes there
    assert files.lock_folder(moved) is None and files.lock_folder(str(folder)) is None
    try:
        assert best_path(str(folder), me) == str(folder / BEST)
    finally:
        files.release_folder(moved)
        files.release_folder(str(folder))
