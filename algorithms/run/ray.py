"""Actor-learners across a Ray cluster (``--cluster ray``).

The paper's asynchronous scheme, with the shared memory of one machine replaced by a parameter
server:

* a **parameter-server** Ray actor (:class:`ParameterServer`) holds the parameter vector, the
  optimizer statistics (shared RMSProp, or Adam, as in ``--opt_mode``), the value-based methods'
  target network and the step counters, in the same flat vectors as ``store.py`` (a checkpoint
  of either backend resumes on the other). It applies each gradient when it arrives, one at a
  time: there is no barrier between learners, and no learner waits for another's update;
* each **actor-learner** is a Ray actor (:class:`Learner`, one CPU) that runs the same loop as
  a local process (``actor_learner.py``). Its :class:`LearnerLink` is its store, its step
  counters, its stop flag and its message channel at once: ``push`` sends the segment's gradient
  with its steps and messages (episodes, warnings) without waiting for it to be applied (at most
  ``MAX_IN_FLIGHT`` unanswered), and asks at once for the parameters that the next segment will
  pull. The server runs one caller's calls in the order they were sent, so a learner's pull
  always sees its own gradient applied;
* the **driver** (this process, ``supervisor.Supervisor`` with :class:`RayWorkers`) starts,
  watches, restarts and stops the learners, and every half second drains the server's messages
  and step counts into ``episodes.csv``, the progress line, ``--stop_return`` and the stall
  checks; checkpoints are the server's state.

Vectors travel through Ray's object store (numpy arrays, zero-copy on the node that holds them),
never as pickled lists. Ray is imported only here, so a ``--cluster local`` run does not pay for
it. A Ray instance that this run started is shut down at its end; one it joined is left running,
with none of this run's actors on it.
"""
from __future__ import annotations

import collections
import contextlib
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..config import Config
from ..errors import UserError
from ..messages import URGENT, Info, Timing
from ..store import Counters, VectorState, optimizer_for, target_due, vector_sizes
from .backend import JOIN_SECONDS, BackendLost, Message

MAX_IN_FLIGHT = 2      # gradients a learner has sent and not yet seen applied
CALL_SECONDS = 60.0    # the driver's longest wait for the parameter server
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError("argument --cluster ray: Ray is not installed; pip install -r "
                        "requirements.txt, or use --cluster local") from None
    return ray


def _normal_priority() -> None:
    """Ray starts its workers at niceness 15, below every other process of the node: a learner
    (or the server) takes the normal priority back where it may (as root, or with
    CAP_SYS_NICE), so that it competes for the CPU as a ``--cluster local`` process does."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass


# ---------------------------------------------------------------------------- the server
class ParameterServer(VectorState):
    """The parameters, optimizer statistics, target network and step counters of one run, in
    the memory of one Ray actor (``ray.remote`` is applied in :func:`start_server`)."""

    def __init__(self, config: Config, num_parameters: int):
        _normal_priority()
        self.config = config
        self.vectors = {name: np.zeros(size, np.float32)
                        for name, size in vector_sizes(config, num_parameters).items()}
        self.names = list(self.vectors)
        self.steps = Counters(config.num_actor_learners)
        self.updates = Counters(config.num_actor_learners)
        self.target_version = 0
        self.optimizers = [optimizer_for(config, self.vectors, self.updates, actor)
                           for actor in range(config.num_actor_learners)]
        self.outbox: list[Message] = []
        self.stop = False

    def _version(self) -> int:
        return self.target_version

    def _set_version(self, value: int) -> None:
        self.target_version = value

    def pull(self) -> tuple[np.ndarray, int, bool, int]:
        """The parameters, the global step, the stop request and the target's version."""
        return self.vectors["params"], self.steps.total(), self.stop, self.target_version

    def pull_target(self) -> np.ndarray:
        return self.vectors["target"]

    def push(self, actor: int, grad: np.ndarray | None, lr: float, steps: int,
             messages: list[Message]) -> None:
        """A learner's segment: its steps, its gradient (None when it skipped a non-finite one)
        applied with the optimizer, the target refreshed when an interval is crossed, and its
        messages kept for the driver."""
        total = self.steps.add(actor, steps)
        if grad is not None:
            self.optimizers[actor].apply(grad, lr)
        if "target" in self.vectors:
            due = target_due(total, self.config.q_target_update_steps)
            if due > self.target_version:
                np.copyto(self.vectors["target"], self.vectors["params"])
                self.target_version = due
        self.outbox.extend(messages)

    def drain(self) -> tuple[list[Message], np.ndarray]:
        """The messages since the last drain, and the step counters."""
        messages, self.outbox = self.outbox, []
        return messages, self.steps.slots.copy()

    def set_stop(self) -> None:
        self.stop = True


# ---------------------------------------------------------------------------- a learner
@dataclass(frozen=True)
class ServerHandle:
    """What a learner needs to reach the server: picklable (an actor handle)."""
    server: Any

    def connect(self, actor: int, config: Config) -> "LearnerLink":
        return LearnerLink(self.server, actor)


class LearnerLink:
    """One actor-learner's side of the parameter server. It is the loop's store (``pull``,
    ``push``, ``target_version``, ``pull_target``, ``after_update``), its step counters
    (``add``, ``total``), its stop flag (``is_set``) and its message channel (``send``): the
    calls of ``store.LearnerStore``, ``shared.StepCounters``, ``shared.StopFlag`` and a pipe."""

    def __init__(self, server, actor: int):
        self.ray = import_ray()
        self.server, self.actor = server, actor
        self._known = 0           # the global step at the last pull
        self._since = 0           # this learner's steps since then
        self._unsent = 0          # steps not yet sent to the server
        self._stop = False
        self._version = 0
        self._gradient: tuple[np.ndarray | None, float] = (None, 0.0)
        self._outbox: list[Message] = []
        self._in_flight: collections.deque = collections.deque()
        self._next_pull = None
        self._closed = False
        # seconds waiting for parameters, sending gradients, waiting for gradients in flight
        self.times = {"fetch": 0.0, "push": 0.0, "wait": 0.0}
        self._take(self.ray.get(server.pull.remote()))

    def _take(self, answer) -> np.ndarray:
        params, self._known, self._stop, self._version = answer
        self._since = 0
        return params

    # the store
    def pull(self) -> np.ndarray:
        start = time.perf_counter()
        ref, self._next_pull = self._next_pull or self.server.pull.remote(), None
        params = self._take(self.ray.get(ref))
        self.times["fetch"] += time.perf_counter() - start
        return params

    def target_version(self) -> int:
        return self._version

    def pull_target(self) -> np.ndarray:
        return self.ray.get(self.server.pull_target.remote())

    def push(self, grad: np.ndarray, lr: float) -> None:
        self._gradient = (grad, lr)   # sent by after_update, with the segment's steps

    def after_update(self, global_step: int) -> None:
        self._send()
        self._next_pull = self.server.pull.remote()

    def _send(self) -> None:
        start = time.perf_counter()
        (grad, lr), self._gradient = self._gradient, (None, 0.0)
        self._in_flight.append(self.server.push.remote(self.actor, grad, lr, self._unsent,
                                                       self._outbox))
        self._unsent, self._outbox = 0, []
        sent = time.perf_counter()
        while len(self._in_flight) > MAX_IN_FLIGHT:
            self.ray.get(self._in_flight.popleft())
        self.times["push"] += sent - start
        self.times["wait"] += time.perf_counter() - sent

    def flush(self) -> None:
        """Send what is waiting and wait until the server has it all."""
        if self._unsent or self._outbox:
            self._send()
        self.ray.get(list(self._in_flight))
        self._in_flight.clear()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.flush()

    # the step counters
    def add(self, actor: int, amount: int) -> int:
        self._unsent += amount
        self._since += amount
        return self._known + self._since

    def total(self) -> int:
        return self._known + self._since

    # the stop flag
    def is_set(self) -> bool:
        return self._stop

    # the message channel
    def send(self, message: Message) -> None:
        if isinstance(message, Timing):   # the loop's phases, and this link's share of them
            message = replace(message, totals=dict(message.totals, **self.times))
        self._outbox.append(message)
        if isinstance(message, URGENT):   # all but episodes: at once
            self.flush()


class Learner:
    """A Ray actor that runs one actor-learner (``ray.remote`` is applied in
    :class:`RayWorkers`)."""

    def __init__(self, spec):
        self.spec = spec
        _normal_priority()

    def run(self) -> None:
        from ..actor_learner import Runtime, run_learner
        link = self.spec.store.connect(self.spec.actor_id, self.spec.config)
        context = link.ray.get_runtime_context()
        link.send(Info(self.spec.actor_id, f"runs on node {context.get_node_id()[:8]} "
                   f"({link.ray.util.get_node_ip_address()}), pid {os.getpid()}"))
        runtime = Runtime(steps=link, stop=link, lifeline=None)
        ok = run_learner(self.spec, runtime, link, store=link)
        link.close()
        if not ok:
            raise RuntimeError(f"actor-learner {self.spec.actor_id} failed (its traceback "
                               "was reported)")


# ---------------------------------------------------------------------------- the driver
class RayParameterStore:
    """The driver's side of the server, with the calls of ``store.SharedParameterStore``."""

    def __init__(self, server):
        self.ray = import_ray()
        self.server = server
        self.handle = ServerHandle(server)

    def initialise(self, values: np.ndarray) -> None:
        self.ray.get(self.server.initialise.remote(values))

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.ray.get(self.server.restore.remote(arrays))

    def _get(self, ref):
        """``ray.get`` of a call to the server; BackendLost if the cluster no longer answers."""
        try:
            return self.ray.get(ref, timeout=CALL_SECONDS)
        except self.ray.exceptions.RayError as err:
            raise BackendLost(cluster_lost(err)) from None

    def state(self) -> dict[str, np.ndarray]:
        return {name: np.array(value)
                for name, value in self._get(self.server.state.remote()).items()}

    def finite(self) -> bool:
        return self._get(self.server.finite.remote())

    def close(self) -> None:
        with contextlib.suppress(self.ray.exceptions.RayError):
            self.ray.kill(self.server)


class ServerStop:
    def __init__(self, server):
        self.server = server
        self.asked = False

    def set(self) -> None:
        if not self.asked:
            self.asked = True
            with contextlib.suppress(Exception):   # a lost cluster: nobody to ask
                self.server.set_stop.remote()


class RayWorkers:
    """The actor-learners as Ray actors, one CPU each: the calls of ``backend.Workers``.
    Ray does not restart them by itself (``max_restarts=0``): the Supervisor does, as it does
    processes, up to ``--max_restarts`` in all."""

    description = "actor-learners as Ray actors"

    def __init__(self, server, count: int):
        self.ray = import_ray()
        self.server = server
        self.steps = Counters(count)   # the server's, as of the last drain
        self._lost: str | None = None
        self.receive()
        self.stop = ServerStop(server)
        self.actors: dict[int, Any] = {}
        self.runs: dict[int, Any] = {}
        # spread over the nodes: a lost node costs the fewest learners
        self._remote = self.ray.remote(num_cpus=1, max_restarts=0,
                                       scheduling_strategy="SPREAD")(Learner)

    def start(self, spec) -> None:
        actor = self._remote.remote(spec)
        self.actors[spec.actor_id] = actor
        self.runs[spec.actor_id] = actor.run.remote()

    def wait(self, actors, timeout: float) -> None:
        refs = [self.runs[a] for a in actors]
        if refs and self._lost is None:
            try:
                self.ray.wait(refs, num_returns=1, timeout=timeout)
            except self.ray.exceptions.RayError as err:
                self._lost = cluster_lost(err)
        else:
            time.sleep(timeout)

    def receive(self) -> list[Message]:
        if self._lost is not None:
            return []
        try:
            messages, slots = self.ray.get(self.server.drain.remote(), timeout=CALL_SECONDS)
        except self.ray.exceptions.RayError as err:
            self._lost = cluster_lost(err)
            return []
        self.steps.slots[:] = slots
        return messages

    def lost(self) -> str | None:
        """Why the parameter server (the cluster's head, with it) no longer answers, else None.
        A learner's end is known to Ray itself."""
        return self._lost

    def alive(self, actor: int) -> bool:
        if self._lost is not None:
            return False   # nothing more can be known of it; the loss stops the run
        try:
            ready, _ = self.ray.wait([self.runs[actor]], timeout=0)
        except self.ray.exceptions.RayError as err:
            self._lost = cluster_lost(err)
            return False
        return not ready

    def exit_reason(self, actor: int) -> str | None:
        from ray.exceptions import RayActorError, RayTaskError
        if self._lost is not None:
            return None   # reported as the cluster's loss
        try:
            self.ray.get(self.runs[actor])
            return None
        except RayTaskError:
            return f"actor-learner-{actor} failed"
        except RayActorError as err:
            cause = str(err).strip().splitlines()
            return f"actor-learner-{actor} died ({cause[0] if cause else 'its Ray actor ended'})"

    def terminate(self, actor: int) -> None:
        with contextlib.suppress(self.ray.exceptions.RayError):
            self.ray.kill(self.actors[actor], no_restart=True)

    kill = terminate

    def stop_all(self) -> None:
        """Ask, wait up to JOIN_SECONDS, then kill: no learner of this run outlives this call
        (on a lost cluster, none can be reached: Ray ends them with it)."""
        self.stop.set()
        pending = list(self.runs.values())
        if pending and self._lost is None:
            with contextlib.suppress(self.ray.exceptions.RayError):
                self.ray.wait(pending, num_returns=len(pending), timeout=JOIN_SECONDS)
        for actor in self.actors.values():
            with contextlib.suppress(self.ray.exceptions.RayError):
                self.ray.kill(actor, no_restart=True)


def cluster_lost(err: Exception) -> str:
    """One line for a Ray error that means the cluster (its head, the parameter server) is
    gone."""
    lines = str(err).strip().splitlines()
    first = lines[0].split(": ")[0][:120] if lines else "no message"
    return f"the Ray cluster no longer answers ({type(err).__name__}: {first}); its " \
           "parameter server is lost"


def start_server(config: Config, num_parameters: int):
    """The run's parameter-server actor, on this node (its checkpoints and drains stay local)."""
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    here = ray.get_runtime_context().get_node_id()
    remote = ray.remote(num_cpus=0, max_restarts=0)(ParameterServer)
    server = remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        here, soft=True)).remote(config, num_parameters)
    return RayParameterStore(server)


# ---------------------------------------------------------------------------- the backend
class RayBackend:
    """Ray actors over a parameter server (``backend.Backend``): entering joins the cluster
    (:class:`RayCluster`)."""

    def __init__(self, config: Config):
        from .ray_cluster import RayCluster
        self.config = config
        self.cluster = RayCluster(config)

    def __enter__(self) -> "RayBackend":
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.cluster.__exit__(*exc)

    def create_store(self, num_parameters: int) -> RayParameterStore:
        return start_server(self.config, num_parameters)

    def workers(self, store: RayParameterStore) -> RayWorkers:
        return RayWorkers(store.server, self.config.num_actor_learners)

    def close(self) -> None:
        pass   # the server goes with the store, the cluster on leaving
