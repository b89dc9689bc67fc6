"""Every optimizer and statistics mode trains, through the real CLI, for both kinds of agent."""
import multiprocessing as mp
import os

import numpy as np
import pytest

from algorithms.optimizers import SharedCounter
from algorithms.shared import StepCounters
from runs import assert_nothing_left, read_scalars


def _count(counters, actor, times):
    step = SharedCounter(counters, actor)
    for _ in range(times):
        step()


def test_shared_adam_step_counter_across_processes():
    """Per-learner slots, no lock: the total is exact however the processes interleave."""
    ctx = mp.get_context("spawn")
    counters = StepCounters(ctx, 3)
    procs = [ctx.Process(target=_count, args=(counters, i, 5000)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert counters.total() == 15000
    assert [counters[i] for i in range(3)] == [5000, 5000, 5000]


@pytest.mark.slow
@pytest.mark.parametrize("alg, opt_type, opt_mode", [
    ("a3c", "adam", "shared"), ("a3c", "momentum", "local"),
    ("q", "rmsprop", "local"), ("sarsa", "adam", "local"), ("q", "momentum", "shared"),
])
def test_optimizer_choices_train(run_cli, tmp_path, alg, opt_type, opt_mode):
    run = run_cli(["CartPole-v1", "--env", "GYM", "-n", "2", "--alg_type", alg,
                   "--opt_type", opt_type, "--opt_mode", opt_mode, "--e", "1e-3",
                   "--max_global_steps", "3000", "--seed", "2", "--quiet",
                   "--summary_dir", str(tmp_path)], timeout=120)
    assert run.returncode == 0, run.stderr
    scalars = read_scalars(os.path.join(run.run_dir(), "actor_0"))
    norms = [v for _, v in scalars["train/grad_norm"]]
    assert norms and all(np.isfinite(norms)) and max(norms) > 0
    assert_nothing_left(run)
