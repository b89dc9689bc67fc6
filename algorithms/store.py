"""Where the parameters live: the one object the actor-learner loop and the supervisor ask.

The actor-learner loop knows the parameters through four calls of a :class:`LearnerStore`:

* ``pull()``: the current shared parameters, as one flat vector (the paper's θ' ← θ);
* ``pull_target()``: the target network, for the value-based methods, with its version, so that
  a learner copies it once per refresh;
* ``push(grad, lr)``: apply a flat gradient to the shared parameters with the optimizer;
* ``after_update(global_step)``: the target refresh, once per ``--q_target_update_steps``.

The supervisor knows them through a :class:`SharedParameterStore`: create and initialise,
``state()`` for checkpoints, ``restore()``, ``finite()``, ``close()``, and a picklable
``handle`` that a worker turns into its :class:`LearnerStore` with ``connect``.

Here they live in POSIX shared memory (``shared.py``): the parameters, every optimizer statistic
and the target are flat float32 vectors that every actor-learner updates in place, without a
lock (Hogwild; see ``optimizers.py``). A store on another transport (a parameter server) offers
the same calls; nothing in the loop or the agents changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Config
from .optimizers import SLOTS, ActorCounter, SharedCounter, make_optimizer
from .shared import SharedVectors, StepCounters

def vector_sizes(config: Config, num_parameters: int) -> dict[str, int]:
    """Every vector training needs, all in shared memory so the parent can checkpoint them:
    in ``--opt_mode local`` each actor-learner's statistics are vectors of their own."""
    sizes = {"params": num_parameters}
    if config.value_based:
        sizes["target"] = num_parameters
    for slot in SLOTS[config.opt_type]:
        if config.opt_mode == "shared":
            sizes[f"opt_{slot}"] = num_parameters
        else:
            for actor in range(config.num_actor_learners):
                sizes[f"opt_{slot}_{actor}"] = num_parameters
    return sizes


def target_due(global_step: int, interval: int) -> int:
    """The index of the last target-refresh interval that ``global_step`` has crossed: the
    target is copied from the parameters whenever this grows (every ``interval`` steps)."""
    return global_step // interval


def refresh_target(global_step: int, interval: int, version, params: np.ndarray,
                   target: np.ndarray) -> bool:
    """Copy ``params`` into ``target`` once per ``interval`` global steps.

    ``version`` (a ``multiprocessing.RawValue``) holds the index of the last interval whose
    refresh was done. The first worker to see a new interval copies, then records the index; the
    others find it taken. There is no lock, as for every shared vector: two workers that cross
    the boundary in the same instant both copy, which is harmless, where a lock could be left
    held by a worker killed in the copy, and its named semaphore left behind by a killed run.
    Returns True when this worker copied.
    """
    due = target_due(global_step, interval)
    if due <= version.value:
        return False
    np.copyto(target, params)
    if due > version.value:   # a slower copier of an earlier interval never sets it back
        version.value = due
    return True


def optimizer_for(config: Config, vectors, updates, actor: int):
    """Actor-learner ``actor``'s optimizer over ``vectors`` (the names of ``vector_sizes``):
    the shared statistics in ``--opt_mode shared``, its own in ``local``; Adam's step count
    from ``updates`` (per-actor counters: their total is t for shared statistics)."""
    names = SLOTS[config.opt_type]
    if config.opt_mode == "shared":
        slots = {name: vectors[f"opt_{name}"] for name in names}
        next_step = SharedCounter(updates, actor)
    else:
        slots = {name: vectors[f"opt_{name}_{actor}"] for name in names}
        next_step = ActorCounter(updates, actor)
    return make_optimizer(config.opt_type, vectors["params"], slots, alpha=config.alpha,
                          eps=config.e, b1=config.b1, b2=config.b2, next_step=next_step)


class Counters:
    """Per-actor counters in one process's memory (a parameter server's), with the calls of
    ``shared.StepCounters``."""

    def __init__(self, count: int):
        self.slots = np.zeros(count, np.int64)

    def add(self, actor: int, amount: int) -> int:
        self.slots[actor] += amount
        return int(self.slots.sum())

    def total(self) -> int:
        return int(self.slots.sum())

    def __getitem__(self, actor: int) -> int:
        return int(self.slots[actor])


@dataclass(frozen=True)
class StoreHandle:
    """What a worker needs to reach the store: picklable, sent to each worker as it starts."""
    vectors: dict[str, tuple[str, int]]   # SharedVectors.handles
    updates: StepCounters                 # updates per actor; the total is Adam's shared t
    target_version: Any                   # multiprocessing.RawValue('q'): last target refresh

    def connect(self, actor: int, config: Config) -> "LearnerStore":
        return LearnerStore(self, actor, config)


class VectorState:
    """What a store holds, in whatever memory: ``vectors`` (name -> flat float32 array, the names
    of ``vector_sizes``), the per-actor ``updates`` and ``steps`` counters and the target's
    version. Both backends initialise, checkpoint and restore it with these methods, so their
    checkpoints are the same files."""
    vectors: Any
    names: list[str]
    updates: Any
    steps: Any

    def _version(self) -> int:
        raise NotImplementedError

    def _set_version(self, value: int) -> None:
        raise NotImplementedError

    def initialise(self, values: np.ndarray) -> None:
        self.vectors["params"][:] = values
        if "target" in self.names:
            self.vectors["target"][:] = values

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the vectors, the update and step counters and the target version: what a
        checkpoint holds of the store (its global step is the sum of ``steps``)."""
        arrays = {name: np.array(self.vectors[name]) for name in self.names}
        arrays["updates"] = self.updates.slots.copy()
        arrays["steps"] = self.steps.slots.copy()
        arrays["target_version"] = np.array(self._version(), np.int64)
        return arrays

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Load a checkpoint's arrays. With another number of actor-learners than were saved,
        the totals of the counters (Adam's t, the global step) go to the first slot, and in
        ``--opt_mode local`` actor-learners beyond the saved ones start with zero statistics."""
        for name in self.names:
            if name in arrays:
                np.copyto(self.vectors[name], arrays[name])
        restore_counters(self.updates, arrays["updates"])
        restore_counters(self.steps, arrays["steps"])
        self._set_version(int(arrays.get("target_version", 0)))

    def finite(self) -> bool:
        return bool(np.isfinite(self.vectors["params"]).all())


class SharedParameterStore(VectorState):
    """The supervisor's side: owns the shared memory (creates it, unlinks it on close)."""

    def __init__(self, config: Config, num_parameters: int, ctx):
        self.config = config
        self.vectors = SharedVectors.create(vector_sizes(config, num_parameters))
        self.names = list(self.vectors.sizes)
        self.updates = StepCounters(ctx, config.num_actor_learners)
        self.steps = StepCounters(ctx, config.num_actor_learners)   # agent steps per actor
        self.target_version = ctx.RawValue("q", 0)
        self.handle = StoreHandle(self.vectors.handles, self.updates, self.target_version)

    def _version(self) -> int:
        return self.target_version.value

    def _set_version(self, value: int) -> None:
        self.target_version.value = value

    def close(self) -> None:
        self.vectors.unlink()


def restore_counters(counters: StepCounters, saved: np.ndarray) -> None:
    """Per-actor counts as saved; with another number of actors, the total in the first slot."""
    slots = counters.slots
    if len(saved) == len(slots):
        slots[:] = saved
    else:
        slots[:] = 0
        slots[0] = int(np.sum(saved))


class LearnerStore:
    """One actor-learner's side: reads the shared vectors and applies its gradients to them."""

    def __init__(self, handle: StoreHandle, actor: int, config: Config):
        self.vectors = SharedVectors.attach(handle.vectors)
        self._version = handle.target_version
        self._interval = config.q_target_update_steps
        # Local statistics live in shared memory too (a vector per actor-learner, used by it
        # alone), so that the parent can checkpoint them.
        self.optimizer = optimizer_for(config, self.vectors, handle.updates, actor)

    def pull(self) -> np.ndarray:
        return self.vectors["params"]

    def target_version(self) -> int:
        return self._version.value

    def pull_target(self) -> np.ndarray:
        return self.vectors["target"]

    def push(self, grad: np.ndarray, lr: float) -> None:
        self.optimizer.apply(grad, lr)

    def after_update(self, global_step: int) -> None:
        if "target" in self.vectors:
            refresh_target(global_step, self._interval, self._version,
                           self.vectors["params"], self.vectors["target"])

    def close(self) -> None:
        self.vectors.close()


class ReadOnlyStore:
    """The test process's side: reads the shared vectors, never writes them; ``snapshot`` copies
    everything a checkpoint holds (as ``VectorState.state`` does in the parent)."""

    def __init__(self, handle: StoreHandle):
        self.vectors = SharedVectors.attach(handle.vectors)
        self._updates = handle.updates
        self._version = handle.target_version

    def snapshot(self, steps: StepCounters) -> dict[str, np.ndarray]:
        arrays = {name: np.array(self.vectors[name]) for name in self.vectors.sizes}
        arrays["updates"] = self._updates.slots.copy()
        arrays["steps"] = steps.slots.copy()
        arrays["target_version"] = np.array(self._version.value, np.int64)
        return arrays

    def close(self) -> None:
        self.vectors.close()


class FrozenStore:
    """Parameters read from a checkpoint, for evaluation: pulled, never pushed."""

    def __init__(self, params: np.ndarray, target: np.ndarray | None = None):
        self._params = params
        self._target = params if target is None else target

    def pull(self) -> np.ndarray:
        return self._params

    def target_version(self) -> int:
        return 0

    def pull_target(self) -> np.ndarray:
        return self._target
