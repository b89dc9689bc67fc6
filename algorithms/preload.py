"""Imported by the fork server that forks the actor-learner processes
(``run.local.start_forkserver``): TensorFlow is loaded here once, and every actor-learner starts
with it loaded, instead of importing it anew (about 4 s of CPU each, ``benchmarks/startup.py``).

The kernels (``tfsetup.onednn_kernels``) are read from ``TF_ENABLE_ONEDNN_OPTS``, which the
local backend sets for the run before it starts the server. No runtime is started: each
actor-learner configures its own after the fork.
"""
import os

from .run.procs import die_with_parent, ignore_group_signals

die_with_parent()   # first: a trainer that dies while this loads must not leave the server
# The server starts with the group signals held (run.local.start_forkserver): it and the workers
# it forks ignore them, the trainer alone decides how a run stops.
ignore_group_signals()

from .tfsetup import ONEDNN, configure_tensorflow  # noqa: E402

configure_tensorflow(os.environ.get(ONEDNN) == "1", initialise=False)
