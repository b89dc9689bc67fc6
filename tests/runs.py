"""What the tests of real runs share: starting the CLI as a process, reading its output,
its episodes and its TensorBoard scalars, and checking that nothing of it is left."""
import contextlib
import csv
import errno
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from algorithms import checkpoint, config
from algorithms.networks import make_layout
from conftest import ALGORITHMS, processes_with_token, shm_segments

RAY = os.path.join(os.path.dirname(sys.executable), "ray")


TRAIN_TAGS = {"loss/policy", "loss/value", "policy/entropy", "train/learning_rate",
              "train/steps_per_second"}


def read_scalars(actor_dir: str) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of one event folder, read back with TensorBoard's own reader."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util
    acc = EventAccumulator(actor_dir, size_guidance={"tensors": 0})
    acc.Reload()
    return {tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto)))
                  for e in acc.Tensors(tag)] for tag in acc.Tags()["tensors"]}


def read_episodes(run_dir: str) -> list[dict]:
    with open(os.path.join(run_dir, "episodes.csv")) as f:
        return list(csv.DictReader(f))


def assert_nothing_left(run) -> None:
    assert processes_with_token(run.token) == [], "a process of the run is still alive"
    assert shm_segments(run.proc.pid) == [], "a shared-memory segment was left in /dev/shm"


# A bar for sampled evaluation episodes of a trained CartPole checkpoint. A random policy scores
# 22 +- 12 an episode, so its mean over 10 episodes stays below 40. A3C on CartPole does not
# always hold its peak until the stop, when the checkpoint is taken: 5 sampled episodes of one
# whose last 20 training episodes averaged 400 scored 116 (and of an LSTM one, 197), and in one
# CI run 10 of another scored 39.
TRAINED_CARTPOLE_MEAN = 80


def trailing_means(returns: np.ndarray, window: int = 20) -> np.ndarray:
    """The mean of every ``window`` consecutive episodes."""
    return np.convolve(returns, np.ones(window) / window, mode="valid")


def train_until(run_cli, tmp_path, args: list[str], seeds: tuple[int, ...], good, timeout: float):
    """Train with each seed in turn until ``good(returns)`` holds; (run, returns).

    Hogwild's interleaving of updates is not seeded, so one seed gives another run each time:
    in 13 runs of the A3C CartPole test below (with the gradient clipped globally), 12 reached a
    trailing mean of 400 within 90,000 steps and one peaked at 290 and fell back. A second seed
    makes a learner that works fail a test rarely, while one that does not learn still fails it
    every time. Every attempt is reported.
    """
    attempts = []
    for attempt, seed in enumerate(seeds):
        summary = tmp_path / f"attempt{attempt}"   # run_cli gives each its own checkpoint folder
        run = run_cli(args + ["--seed", str(seed), "--quiet", "--summary_dir", str(summary)],
                      timeout=timeout)
        assert run.returncode == 0, run.stderr
        returns = np.array([float(e["return"]) for e in read_episodes(run.run_dir())])
        attempts.append(f"seed {seed}: best trailing-20 mean {trailing_means(returns).max():.0f}, "
                        f"last 20 {returns[-20:].mean():.0f} over {len(returns)} episodes")
        if good(returns):
            return run, returns
    pytest.fail("no run learned: " + "; ".join(attempts))


def start_run(args, tmp_path, new_session: bool = False):
    """The CLI started with ``args``; with ``new_session``, as the leader of a process group
    of its own, which can then be signalled as a whole."""
    import uuid
    token = uuid.uuid4().hex
    env = dict(os.environ, RUN_TOKEN=token, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, os.path.join(ALGORITHMS, "main.py"), *args,
                             "--summary_dir", str(tmp_path)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=new_session)
    return proc, token


@contextlib.contextmanager
def running(args, tmp_path):
    """A run started with ``start_run``, killed on the way out if it is still going (a failed
    assertion must not leave it behind)."""
    proc, token = start_run(args, tmp_path)
    try:
        yield proc, token
    finally:
        if proc.poll() is None:
            proc.kill()


def wait_for_steps(proc, timeout=120):
    """Read progress lines until training has made steps."""
    deadline = time.monotonic() + timeout
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("[") and " 0/" not in line:
            return lines
    raise AssertionError("no progress:\n" + "".join(lines))


def read_until(proc, pattern: str, timeout: float, seen: list[str]) -> re.Match:
    """Read the run's output lines (kept in ``seen``) until one matches ``pattern``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(seen))


def valid_checkpoint(tmp_path, game: str = "CartPole-v1") -> str:
    """A checkpoint as training writes it: CartPole-v1, A3C, shared RMSProp, 2 actor-learners
    at global step 3,000 (the network untrained, as at the start of a run); or another ``game``
    of CartPole's spaces."""
    args = config.parse_args([game, "--env", "GYM", "-n", "2", "--seed", "1",
                              "--summary_dir", str(tmp_path / "s"),
                              "--checkpoint_dir", str(tmp_path / "ck")])
    config.resolve_defaults(args, continuous=False, atari=False)
    settings = config.Config.from_namespace(args)
    layout = make_layout("a3c", "NIPS", (4,), 2)
    params = layout.initial_values(np.random.default_rng(0))
    arrays = {"params": params, "opt_g": np.zeros_like(params),
              "steps": np.array([1600, 1400], np.int64), "updates": np.array([320, 280]),
              "final_epsilons": np.ones(2), "target_version": np.array(0, np.int64)}
    meta = {"config": settings.to_dict(), "layout": checkpoint.layout_record(layout),
            "observation_shape": [4], "num_actions": 2, "run_dir": None, "resumes": 0}
    return checkpoint.save(str(tmp_path / "ck"), 3000, arrays, meta, keep=3)


def remove_under_a_writer(folder) -> None:
    """``rm -rf`` of a folder a live run writes into: a temporary file renamed while the
    removal runs vanishes under it, or a new one appears before the folder itself is removed
    (ENOTEMPTY), which ``rm -rf`` run again takes in its stride."""
    for attempt in range(20):
        try:
            shutil.rmtree(folder)
            return
        except FileNotFoundError:
            continue
        except OSError as err:
            if err.errno != errno.ENOTEMPTY or attempt == 19:
                raise
    assert not os.path.exists(folder), f"{folder} could not be removed"
