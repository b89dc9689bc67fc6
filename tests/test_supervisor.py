"""The supervisor alone, in this process, over scripted learners: restarts, stalls, a second
SIGINT, a lost backend and the stop's grace, in seconds.

The learners are a fake backend (``FakeWorkers``, the calls of ``run.backend.Workers``) whose
learners step, crash, stall or ignore a stop as each test scripts them; everything else is real:
the configuration from the real parser, the run record and its files, the checkpoints, the
parameter store's state (an in-memory ``store.VectorState``) and the signals, sent to this
process with ``os.kill``. The same situations on real processes are in test_faults.py.
"""
from __future__ import annotations

import os
import re
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from algorithms import checkpoint, config
from algorithms.environments import EnvSpec
from algorithms.messages import Episode, Error, Ready
from algorithms.networks import layout_for
from algorithms.record import RunRecord
from algorithms.run.backend import BackendLost, Deadlines
from algorithms.run.supervisor import Supervisor
from algorithms.store import Counters, VectorState, vector_sizes

SPEC = EnvSpec("vector", (4,), 2, 1)
STEP = 10            # agent steps a healthy learner takes per pass of the fake backend
BUDGET = 2_000


@dataclass
class Script:
    """How one actor-learner behaves (in its first incarnation, unless ``always``)."""
    crash_at: int | None = None    # exits with code 1 after this many of its own steps
    stall_at: int | None = None    # stops stepping (still alive) after this many
    deaf: bool = False             # ignores the stop request
    stubborn: bool = False         # ignores SIGTERM too: only SIGKILL ends it
    hang_start: bool = False       # never becomes ready (an environment's reset that hangs)
    fail_start: bool = False       # fails before it becomes ready (too little memory, say)
    always: bool = False           # the script applies to every incarnation


class Stop:
    def __init__(self):
        self.asked = False

    def set(self) -> None:
        self.asked = True


class FakeWorkers:
    """Scripted learners behind the calls of ``backend.Workers``; ``calls`` records what the
    supervisor did to them, with the time."""
    description = "scripted learners"

    def __init__(self, steps: Counters, scripts: dict[int, Script], lost_at: int | None = None,
                 on_pass=None):
        self.steps, self.scripts, self.lost_at, self.on_pass = steps, scripts, lost_at, on_pass
        self.stop = Stop()
        self.state: dict[int, str] = {}          # running, or ended
        self.reason: dict[int, str | None] = {}
        self.own: dict[int, int] = {}            # steps of the current incarnation
        self.incarnation: dict[int, int] = {}
        self.ready: set[int] = set()
        self.inbox: list = []
        self.calls: list[tuple[str, int, int, float]] = []   # (call, actor, incarnation, time)
        self._lost = False
        self.start_time = time.monotonic()

    def _note(self, call: str, actor: int) -> None:
        self.calls.append((call, actor, self.incarnation.get(actor, -1),
                           time.monotonic() - self.start_time))

    def _end(self, actor: int, why: str | None) -> None:
        self.state[actor], self.reason[actor] = "ended", why

    def _script(self, actor: int) -> Script:
        script = self.scripts.get(actor, Script())
        return script if script.always or self.incarnation[actor] == 0 else Script()

    def start(self, spec) -> None:
        actor = spec.actor_id
        if self.lost_at == 0 and actor == 1:
            self._lost = True
            raise BackendLost("could not start actor-learner 1: the scripted backend vanished")
        self.incarnation[actor] = spec.incarnation
        self._note("start", actor)
        self.state[actor], self.own[actor] = "running", 0
        self.ready.discard(actor)

    def wait(self, actors, timeout: float) -> None:
        time.sleep(min(timeout, 0.005))
        for actor in list(actors):
            if self.state.get(actor) != "running":
                continue
            script = self._script(actor)
            if script.hang_start:
                continue
            if script.fail_start:
                self.inbox.append(Error(actor, "Traceback:\nMemoryError: no room for TensorFlow"))
                self._end(actor, f"actor-learner-{actor} exited with code 1")
                continue
            if actor not in self.ready:
                self.ready.add(actor)
                self.inbox.append(Ready(actor))
            elif self.stop.asked and not script.deaf:
                self._end(actor, None)
            elif script.crash_at is not None and self.own[actor] >= script.crash_at:
                self.inbox.append(Error(actor, "Traceback: scripted crash"))
                self._end(actor, f"actor-learner-{actor} exited with code 1")
            elif self.steps.total() >= BUDGET and not script.deaf:
                self._end(actor, None)
            elif script.stall_at is None or self.own[actor] < script.stall_at:
                self.steps.add(actor, STEP)
                self.own[actor] += STEP
                if self.own[actor] % 100 == 0:
                    self.inbox.append(Episode(actor, 0, self.steps.total(), time.time(),
                                              float(self.own[actor]), 100))
        if self.lost_at is not None and self.steps.total() >= self.lost_at:
            self._lost = True
        if self.on_pass is not None:
            self.on_pass(self)

    def receive(self) -> list:
        messages, self.inbox = self.inbox, []
        return messages

    def lost(self) -> str | None:
        return "the scripted backend vanished" if self._lost else None

    def alive(self, actor: int) -> bool:
        return self.state.get(actor) == "running"

    def exit_reason(self, actor: int) -> str | None:
        return self.reason[actor]

    def terminate(self, actor: int) -> None:
        self._note("terminate", actor)
        if not self._script(actor).stubborn:
            self._end(actor, f"actor-learner-{actor} exited with code -15")

    def kill(self, actor: int) -> None:
        self._note("kill", actor)
        self._end(actor, f"actor-learner-{actor} exited with code -9")

    def stop_all(self) -> None:
        self._note("stop_all", -1)
        for actor, state in self.state.items():
            if state == "running":
                self._end(actor, None)

    def count(self, call: str, actor: int | None = None) -> int:
        return sum(1 for c in self.calls if c[0] == call and actor in (None, c[1]))


class MemoryStore(VectorState):
    """A parameter store in this process's memory, sharing its step counters with the fake
    learners (as the local backend's shared memory does)."""
    handle = None

    def __init__(self, settings: config.Config, num_parameters: int):
        count = settings.num_actor_learners
        self.vectors = {name: np.zeros(size, np.float32)
                        for name, size in vector_sizes(settings, num_parameters).items()}
        self.names = list(self.vectors)
        self.updates, self.steps = Counters(count), Counters(count)

    def _version(self) -> int:
        return 0

    def _set_version(self, value: int) -> None:
        pass

    def close(self) -> None:
        pass


QUICK = Deadlines(join=0.3, finish=0.5, kill=0.2, poll=0.01, startup=0.3)


def supervise(tmp_path, scripts, *flags, lost_at=None, on_pass=None, deadlines=QUICK,
              meta_extra=None, stall_timeout=None):
    """The supervisor over scripted learners. ``stall_timeout`` sets a --stall_timeout below
    the command line's floor of 1 s, which the scripted learners' quick world needs."""
    args = config.parse_args(["CartPole-v1", "--env", "GYM", "-n", "2", "--seed", "3",
                              "--max_global_steps", str(BUDGET), "--checkpoint_interval", "500",
                              "--summary_dir", str(tmp_path / "summaries"), "--checkpoint_dir",
                              str(tmp_path / "checkpoints"), *flags])
    config.resolve_defaults(args, continuous=False, atari=False)
    if stall_timeout is not None:
        args.stall_timeout = stall_timeout
    settings = config.Config.from_namespace(args)
    layout = layout_for(settings, SPEC)
    store = MemoryStore(settings, layout.size)
    store.initialise(layout.initial_values(np.random.default_rng(0)))
    workers = FakeWorkers(store.steps, scripts, lost_at, on_pass)
    record = RunRecord(settings, 1, None, 0)
    record.open(settings.to_dict(), None)
    meta = {"config": settings.to_dict(), "layout": checkpoint.layout_record(layout),
            "observation_shape": list(SPEC.observation_shape), "num_actions": SPEC.num_actions,
            "versions": {}, "run_dir": record.run_dir, "run_id": record.run_id, "resumes": 0,
            **(meta_extra or {})}
    checkpointer = checkpoint.Checkpointer(settings, meta, 0)
    supervisor = Supervisor(settings, SPEC, layout, store, record, checkpointer, workers,
                            [1.0, 1.0], resumes=0, deadlines=deadlines)
    try:
        code = supervisor.run()
    finally:
        record.close()
    return code, workers, supervisor


def final_step(tmp_path) -> int:
    return checkpoint.load(checkpoint.latest(str(tmp_path / "checkpoints"))).step


def test_a_healthy_run_ends_at_its_budget_with_checkpoints_and_episodes(tmp_path, capsys):
    code, workers, _ = supervise(tmp_path, {})
    assert code == 0
    assert workers.count("start") == 2 and workers.count("kill") == 0
    saved = checkpoint.list_checkpoints(str(tmp_path / "checkpoints"))
    # every 500 steps, the final one at the budget, the last 3 kept (--keep_checkpoints)
    assert [os.path.basename(path) for path in saved] == \
        [checkpoint.file_name(step) for step in (1000, 1500, 2000)]
    ckpt = checkpoint.load(saved[-1])
    assert ckpt.step == int(ckpt.arrays["steps"].sum()) >= BUDGET   # the store's own counters
    rows = (next((tmp_path / "summaries").rglob("episodes.csv"))).read_text().splitlines()
    assert len(rows) - 1 == sum(own // 100 for own in workers.own.values())   # one per 100
    assert "done: " in capsys.readouterr().out


class SlowWrite:
    """A value of the checkpoints' metadata whose serialisation waits until ``release`` is set:
    a checkpoint write that lasts as long as the test wants (the 37 s fsync of a loaded disk)."""

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()
        self.released_by_the_loop = []

    def __str__(self) -> str:
        self.entered.set()
        self.released_by_the_loop.append(self.release.wait(5.0))   # False: a held-up loop
        return "slow"


def test_a_slow_checkpoint_write_never_holds_up_the_loop(tmp_path, capsys):
    """While the first checkpoint's write is held, the loop goes on (the learners step, their
    episodes are taken) and starts no second write; once released, the held checkpoint lands
    with the steps of its snapshot, the next ones follow, and the final one is written after
    it."""
    slow = SlowWrite()
    passes_while_held = []

    def hold(workers):
        if slow.entered.is_set() and not slow.release.is_set():
            passes_while_held.append(workers.steps.total())
            if len(passes_while_held) >= 30:
                slow.release.set()

    code, workers, _ = supervise(tmp_path, {}, "--keep_checkpoints", "10", on_pass=hold,
                                 meta_extra={"slow": slow})
    assert code == 0
    assert slow.released_by_the_loop[0], "the loop stopped while the write was held"
    assert len(passes_while_held) >= 30
    assert passes_while_held[-1] - passes_while_held[0] >= 29 * 2 * STEP   # learners stepped
    steps = [checkpoint.step_of(path)
             for path in checkpoint.list_checkpoints(str(tmp_path / "checkpoints"))]
    assert steps[0] == 500 and steps[-1] == BUDGET   # the held snapshot's step, and the final
    assert steps[1] >= passes_while_held[-1]   # no second write began while one was held
    assert len({step // 500 for step in steps}) == len(steps)   # one per interval at most
    assert checkpoint.load(checkpoint.latest(str(tmp_path / "checkpoints"))).meta["slow"] == \
        "slow"
    assert "done: " in capsys.readouterr().out


def test_a_failed_learner_is_restarted_with_its_id_and_a_new_incarnation(tmp_path, capsys):
    code, workers, _ = supervise(tmp_path, {1: Script(crash_at=200)}, "--max_restarts", "1")
    assert code == 0 and final_step(tmp_path) >= BUDGET
    starts = [(actor, incarnation) for call, actor, incarnation, _ in workers.calls
              if call == "start"]
    assert sorted(starts) == [(0, 0), (1, 0), (1, 1)]
    out = capsys.readouterr()
    assert "restarting it (1 of --max_restarts 1)" in out.out
    assert "actor-learner 1 failed:\nTraceback: scripted crash" in out.err


def test_a_failure_past_max_restarts_stops_the_run(tmp_path, capsys):
    code, workers, _ = supervise(tmp_path, {1: Script(crash_at=200, always=True)},
                                 "--max_restarts", "1")
    assert code == 1
    assert workers.count("start", 1) == 2
    out = capsys.readouterr().out
    assert "exited with code 1, and --max_restarts 1 restarts are used up" in out
    assert final_step(tmp_path) < BUDGET   # the final checkpoint of a stopped run


def test_a_failure_while_starting_that_recurs_is_not_retried(tmp_path, capsys):
    """Restarted once; failing while starting the same way again, the run stops (exit 1)
    with --max_restarts 3 unused, and the traceback is shown once."""
    code, workers, _ = supervise(tmp_path, {1: Script(fail_start=True, always=True)},
                                 "--max_restarts", "3")
    assert code == 1
    assert workers.count("start", 1) == 2
    out = capsys.readouterr()
    assert out.err.count("MemoryError: no room for TensorFlow") == 2   # traceback, then a line
    assert "actor-learner 1 failed while starting, as before: MemoryError" in out.err
    assert "it failed while starting as a learner did before (MemoryError: no room for " \
           "TensorFlow); a failure that recurs is not retried" in out.out


def test_a_stalled_learner_is_killed_and_restarted(tmp_path, capsys):
    code, workers, _ = supervise(tmp_path, {0: Script(stall_at=300)}, "--max_restarts", "1",
                                 stall_timeout=0.2)
    assert code == 0 and final_step(tmp_path) >= BUDGET
    assert workers.count("kill", 0) == 1 and workers.count("kill", 1) == 0
    assert workers.count("start", 0) == 2
    assert "actor-learner 0 made no progress for 0 s (--stall_timeout)" in \
        capsys.readouterr().out


def test_a_learner_that_never_becomes_ready_is_treated_as_stalled(tmp_path, capsys):
    """Its clock runs from its start: --stall_timeout plus the start-up allowance."""
    start = time.monotonic()
    code, workers, _ = supervise(tmp_path, {1: Script(hang_start=True)}, "--max_restarts",
                                 "1", stall_timeout=0.2)
    assert code == 0 and final_step(tmp_path) >= BUDGET
    kills = [when for call, actor, _, when in workers.calls if call == "kill" and actor == 1]
    assert len(kills) == 1 and kills[0] >= 0.5   # 0.2 s + 0.3 s to start
    assert workers.count("start", 1) == 2 and workers.count("kill", 0) == 0
    assert time.monotonic() - start < 30
    assert re.search(r"actor-learner 1 did not start within \d+ s \(--stall_timeout, and 0 s "
                     r"to start\); treating it as dead", capsys.readouterr().out)


def test_a_second_sigint_stops_the_learners_at_once(tmp_path, capsys):
    """Deaf learners would finish within the 30 s grace; the second SIGINT terminates them."""
    sent = []

    def interrupt(workers):
        if workers.steps.total() >= 400 and len(sent) < 2:
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    code, workers, _ = supervise(tmp_path, {0: Script(deaf=True), 1: Script(deaf=True)},
                                 on_pass=interrupt,
                                 deadlines=Deadlines(join=30, finish=30, kill=0.2, poll=0.01))
    assert code == 128 + signal.SIGINT
    assert len(sent) == 2
    assert workers.count("terminate", 0) == 1 and workers.count("terminate", 1) == 1
    assert time.monotonic() - sent[1] < 5   # not the 30 s grace
    assert "SIGINT: stopping the actor-learners" in capsys.readouterr().out
    assert 400 <= final_step(tmp_path) < BUDGET


def test_a_lost_backend_stops_the_run_without_restarts(tmp_path, capsys):
    code, workers, _ = supervise(tmp_path, {}, lost_at=600)
    assert code == 1
    assert workers.count("start") == 2 and workers.count("stop_all") == 1
    out = capsys.readouterr().out
    assert "error: the scripted backend vanished; the actor-learners were stopped " \
           "(--resume continues)" in out
    assert 600 <= final_step(tmp_path) < BUDGET


def test_a_backend_lost_while_the_learners_start_stops_the_run(tmp_path, capsys):
    code, workers, _ = supervise(tmp_path, {}, lost_at=0)
    assert code == 1
    assert workers.count("start") == 1 and workers.count("stop_all") == 1
    out = capsys.readouterr().out
    assert "error: could not start actor-learner 1: the scripted backend vanished; the " \
           "actor-learners were stopped (--resume continues); training stopped at step" in out
    assert "started 2" not in out and "restarting" not in out


@pytest.mark.parametrize("stubborn", [False, True])
def test_the_stop_grace_then_sigterm_then_sigkill(tmp_path, capsys, stubborn):
    """After the first SIGINT a learner has ``join`` seconds to finish; then it is sent SIGTERM,
    and one that ignores that too (a stopped process) SIGKILL ``kill`` seconds later."""
    asked = []

    def interrupt(workers):
        if workers.steps.total() >= 300 and not asked:
            asked.append(time.monotonic() - workers.start_time)
            os.kill(os.getpid(), signal.SIGINT)

    code, workers, supervisor = supervise(
        tmp_path, {1: Script(deaf=True, stubborn=stubborn)}, on_pass=interrupt,
        deadlines=Deadlines(join=0.5, finish=30, kill=0.3, poll=0.01))
    assert code == 128 + signal.SIGINT
    times = {call: when for call, actor, _, when in workers.calls if actor == 1}
    assert workers.count("terminate", 0) == 0   # actor 0 stopped when asked
    requested = supervisor.stop_requested - workers.start_time   # the grace's start
    assert requested >= asked[0] - 0.05, (requested, asked, workers.calls)
    assert times["terminate"] - requested >= 0.5, (requested, asked, workers.calls)
    if stubborn:   # the supervisor's clock starts a moment before the fake notes the call
        assert times["kill"] - times["terminate"] >= 0.3 - 0.01
    else:
        assert "kill" not in times
    assert "actor-learner 1 did not stop within 0 s; terminating it" in capsys.readouterr().out
