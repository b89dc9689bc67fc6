"""A training run: what the parent process does once the flags are read.

* ``training.py``: puts a run together and chooses its backend (the only place that does);
* ``supervisor.py``: starts, watches, restarts and stops the actor-learners, writes checkpoints;
* ``backend.py``: the protocols a backend keeps (workers, parameter store) and the deadlines;
* ``local.py``: processes of this machine over shared memory, forked by a fork server;
* ``ray.py``: Ray actors over a parameter server (``--cluster ray``); ``ray_cluster.py``: joining
  the cluster;
* ``procs.py``: probes of processes by pid.
"""
from __future__ import annotations


def train(config, env_spec, resume=None) -> int:
    """``training.train``, imported when called: the fork server imports ``run.procs`` alone
    (``preload.py``), without the rest of the package."""
    from .training import train as run
    return run(config, env_spec, resume)
