"""What an actor-learner tells the supervisor: one frozen dataclass per kind of message.

A learner sends them through its channel (a pipe of its own, or its Ray link to the parameter
server); the supervisor hands each to the handler registered for its type
(``run.supervisor.Supervisor.handlers``). Every message names its sender (``actor``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ready:
    """The learner has made its environments and network, and starts its loop."""
    actor: int


@dataclass(frozen=True)
class Episode:
    """An episode of environment ``env`` ended at ``step`` (global) and ``wall`` (Unix time),
    with its unclipped ``score`` and ``length`` in agent steps."""
    actor: int
    env: int
    step: int
    wall: float
    score: float
    length: int


@dataclass(frozen=True)
class Alert:
    """A warning: something the user should know; training goes on."""
    actor: int
    text: str


@dataclass(frozen=True)
class Info:
    """A line about the learner (where it runs)."""
    actor: int
    text: str


@dataclass(frozen=True)
class Timing:
    """Seconds spent in each phase of the loop, and the steps and updates they covered."""
    actor: int
    totals: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Error:
    """The learner failed: its traceback."""
    actor: int
    traceback: str


@dataclass(frozen=True)
class Evaluation:
    """The test process played one episode with the shared parameters of global step
    ``step``: its unclipped ``score`` and ``length``. ``best`` is the mean score of the games
    these parameters played (this one the last) when it beat every earlier best, which put them
    in ``best.npz``; else None."""
    actor: int
    step: int
    wall: float
    score: float
    length: int
    best: float | None = None


@dataclass(frozen=True)
class Fault:
    """The learner met a failure that would recur (an environment that breaks its own spaces):
    the run stops, without restarting it. ``text`` is one line."""
    actor: int
    text: str


# Messages sent at once by a learner whose channel batches (the Ray link): all but episodes.
URGENT = (Ready, Alert, Info, Timing, Error, Fault, Evaluation)
