"""The shared target network is refreshed once per interval, by real processes, without a lock."""
import multiprocessing as mp

import numpy as np

from algorithms.store import refresh_target
from algorithms.shared import SharedVectors

INTERVAL = 100


def _hammer(handles, counter, version, refreshes, barrier, steps):
    """Each process advances the global step in small increments, as workers do, and tries to
    refresh the target after each update."""
    shared = SharedVectors.attach(handles)
    params, target = shared["params"], shared["target"]
    barrier.wait()
    mine = 0
    for _ in range(steps):
        with counter.get_lock():
            counter.value += 5
            step = counter.value
        params[:] = step                  # the "parameters" are the step that wrote them
        if refresh_target(step, INTERVAL, version, params, target):
            mine += 1
    with refreshes.get_lock():
        refreshes.value += mine
    shared.close()


def test_refresh_once_per_interval_with_concurrent_workers():
    ctx = mp.get_context("spawn")
    shared = SharedVectors.create({"params": 1000, "target": 1000})
    try:
        counter, refreshes = ctx.Value("q", 0), ctx.Value("q", 0)
        version = ctx.RawValue("q", 0)   # as the store holds it
        workers, steps = 4, 2000
        barrier = ctx.Barrier(workers)
        procs = [ctx.Process(target=_hammer, args=(shared.handles, counter, version, refreshes,
                                                   barrier, steps)) for _ in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert all(p.exitcode == 0 for p in procs)
        total = workers * steps * 5
        assert counter.value == total
        intervals = total // INTERVAL
        print(f"{refreshes.value} copies for {intervals} intervals")
        # Once per interval, give or take: workers that cross a boundary while the first copier
        # is still copying copy too (a clean-clone CI run of 2026-12-05 saw 519 copies for 400
        # intervals, four workers on two cores), and one that finds a later interval already
        # recorded does not. A refresh at every update would make 8,000.
        assert 0.8 * intervals <= refreshes.value <= 2 * intervals
        # the last interval, or (a copier of the one before finishing last) the one before it
        assert version.value in (intervals - 1, intervals)
        assert np.all(shared["target"] > 0)               # it was really copied
    finally:
        shared.unlink()


def test_refresh_copies_and_skips():
    ctx = mp.get_context("spawn")
    version = ctx.RawValue("q", 0)
    params, target = np.arange(4, dtype=np.float32), np.zeros(4, np.float32)
    assert not refresh_target(99, 100, version, params, target)
    assert not target.any()
    assert refresh_target(100, 100, version, params, target)
    np.testing.assert_array_equal(target, params)
    params += 1
    assert not refresh_target(150, 100, version, params, target)   # same interval
    assert refresh_target(420, 100, version, params, target)       # jumped two intervals: once
    assert version.value == 4
    np.testing.assert_array_equal(target, params)
