"""Joining (or starting) the Ray cluster of a ``--cluster ray`` run, and leaving it."""
from __future__ import annotations

import os
import socket
from typing import Any

from ..config import Config
from ..errors import UserError
from .procs import children_hold_group_signals
from .ray import PACKAGE, import_ray

class RayCluster:
    """Joins the cluster at ``--ray_address`` (or starts a Ray instance for this run) on
    entering, and leaves it (stopping the instance it started) on leaving."""

    def __init__(self, config: Config):
        self.config = config

    def __enter__(self) -> "RayCluster":
        ray = import_ray()
        address = self.config.ray_address
        if address not in (None, "auto"):
            _check_reachable(address)
        from ..tfsetup import ONEDNN
        env_vars = {"TF_CPP_MIN_LOG_LEVEL": "3"}
        if ONEDNN in os.environ:   # the user's kernel choice, on every node
            env_vars[ONEDNN] = os.environ[ONEDNN]
        options: dict[str, Any] = dict(
            logging_level="ERROR", log_to_driver=False, configure_logging=True,
            runtime_env={"py_modules": [PACKAGE], "env_vars": env_vars})
        if address is None:
            options.update(num_cpus=max(os.cpu_count() or 1, self.config.num_actor_learners),
                           include_dashboard=False)
            # the workers of the instance started here run at the normal priority
            os.environ.setdefault("RAY_worker_niceness", "0")
        # The instance that ray.init starts inherits GROUP_SIGNALS held (blocked; none of its
        # processes lifts the block): a Ctrl-C or a closed terminal, sent to the whole process
        # group, reaches the driver alone, which then stops the learners itself and writes the
        # final checkpoint. One sent while ray.init runs reaches the driver afterwards.
        try:
            with children_hold_group_signals():
                # "local": a new instance, even when a cluster already runs on this machine
                ray.init(address=address or "local", **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"argument --ray_address: cannot join the Ray cluster at "
                            f"{address!r} ({reason}); start it with `ray start --head`, or "
                            "leave --ray_address out to start one here") from None
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < self.config.num_actor_learners:
            self.__exit__(None, None, None)
            raise UserError(f"argument -n/--num_actor_learners: the Ray cluster has {cpus} CPUs "
                            f"and each of the {self.config.num_actor_learners} actor-learners "
                            f"needs one; use -n {cpus} or fewer, or add nodes")
        return self

    def __exit__(self, *_) -> None:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()   # stops the instance only if this run started it


def _check_reachable(address: str) -> None:
    """A host:port (or ray://host:port) that accepts connections, else UserError at once
    (Ray itself retries for a minute before it gives up)."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"argument --ray_address: {address!r} is not an address (give 'auto', "
                        "host:port or ray://host:port)")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as err:
        raise UserError(f"argument --ray_address: nothing answers at {host}:{port} "
                        f"({err.strerror or err}); start the cluster's head with `ray start "
                        f"--head --port {port}` there, or correct the address") from None
