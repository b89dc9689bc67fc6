"""Imported by the fork server that forks the actor-learner processes
(``launcher.start_forkserver``): TensorFlow is loaded here once, and every actor-learner starts
with it loaded, instead of importing it anew (about 4 s of CPU each, ``benchmarks/startup.py``).

The kernels (``actor_learner.onednn_kernels``) are read from ``TF_ENABLE_ONEDNN_OPTS``, which the
launcher sets for the run before it starts the server. No runtime is started: each actor-learner
configures its own after the fork.
"""
import os

from .actor_learner import ONEDNN, _configure_tensorflow

_configure_tensorflow(os.environ.get(ONEDNN) == "1", initialise=False)
