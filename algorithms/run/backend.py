"""The contract between the supervisor and a backend: where the actor-learners run and where
their parameters live.

Two backends keep it: ``local.py`` (processes of this machine, forked by a fork server, over
POSIX shared memory) and ``ray.py`` (Ray actors over a parameter server). ``training.py`` is
the one place that chooses between them; the supervisor and the run record know only the
protocols below.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import numpy as np

from ..interrupts import STOP_SIGNALS  # noqa: F401 - what stops a run as Ctrl-C does
from ..messages import Alert, Episode, Error, Evaluation, Fault, Info, Ready, Timing

Message = Ready | Episode | Alert | Info | Timing | Error | Fault | Evaluation


class BackendLost(Exception):
    """The backend itself is gone (the fork server killed, the Ray cluster lost): what it
    says is one line that names it."""


@dataclass(frozen=True)
class Deadlines:
    """How long the supervisor waits, in seconds."""
    join: float = 10.0     # after a stop request, for the learners to finish their segment
    finish: float = 60.0   # after the budget: closing under a heavy load may take a while
    kill: float = 2.0      # after SIGTERM, before SIGKILL (a stopped process holds SIGTERM)
    poll: float = 0.5      # the longest pass of the supervisor's loop without a message
    startup: float = 60.0  # beyond --stall_timeout, for a learner to become ready


DEADLINES = Deadlines()
JOIN_SECONDS = DEADLINES.join
KILL_SECONDS = DEADLINES.kill


class Counts(Protocol):
    """Agent steps per actor-learner (``shared.StepCounters``, ``store.Counters``)."""
    slots: np.ndarray

    def total(self) -> int: ...

    def __getitem__(self, actor: int) -> int: ...


class StopRequest(Protocol):
    """Asks every learner to stop at its next segment."""

    def set(self) -> None: ...


class ParameterStore(Protocol):
    """The supervisor's side of the parameters, optimizer statistics, target network and step
    counters. ``handle`` is picklable; a learner turns it into its own store with
    ``handle.connect(actor, config)``."""
    handle: Any

    def initialise(self, values: np.ndarray) -> None: ...

    def restore(self, arrays: dict[str, np.ndarray]) -> None: ...

    def state(self) -> dict[str, np.ndarray]:
        """Copies of everything a checkpoint holds, the per-actor ``steps`` included."""
        ...

    def finite(self) -> bool: ...

    def close(self) -> None: ...


class Workers(Protocol):
    """The actor-learners of one run, as the supervisor sees them."""
    description: str   # for "started 2 <description>"
    steps: Counts      # as of the last receive()
    stop: StopRequest

    def start(self, spec) -> None:
        """Start (or restart) actor-learner ``spec.actor_id``; UserError at the machine's
        limits, BackendLost if the backend is gone."""

    def wait(self, actors: Iterable[int], timeout: float) -> None:
        """Until one of ``actors`` sends a message or ends, or ``timeout`` seconds."""

    def receive(self) -> list[Message]:
        """Every message sent since the last call, oldest first."""
        ...

    def lost(self) -> str | None:
        """Why the backend itself is gone (and the run must stop), else None."""
        ...

    def alive(self, actor: int) -> bool: ...

    def exit_reason(self, actor: int) -> str | None:
        """For a learner that has ended: None if cleanly, else why not."""
        ...

    def terminate(self, actor: int) -> None: ...

    def kill(self, actor: int) -> None: ...

    def stop_all(self) -> None:
        """Ask, wait, then end them by force: no learner outlives this call."""


class Backend(Protocol):
    """Where a run's learners and parameters live. Entered before anything of the run is
    written (a cluster is joined there), left after everything is closed."""

    def __enter__(self) -> "Backend": ...

    def __exit__(self, *exc) -> None: ...

    def create_store(self, num_parameters: int) -> ParameterStore: ...

    def workers(self, store: ParameterStore) -> Workers: ...

    def close(self) -> None:
        """After the learners are gone, before the store is closed."""
