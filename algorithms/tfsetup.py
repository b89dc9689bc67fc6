"""TensorFlow's set-up in a process that runs networks: threads, CPU kernels, a quiet import.

The parent of a run never imports TensorFlow; the fork server loads it once (``preload.py``) and
each actor-learner, or an evaluation, configures its own runtime here.
"""
from __future__ import annotations

import os
import sys

from .config import Config
from .environments import EnvSpec

ONEDNN = "TF_ENABLE_ONEDNN_OPTS"   # TensorFlow reads it once, when it first loads
# Imported by ``import tensorflow`` for Keras's optimizers alone (their SavedModel registration),
# and with them Keras and matplotlib: 1.4 s of a 5.6 s import here. Nothing in this project uses
# Keras, and TensorFlow skips this import when it fails.
KERAS_AT_IMPORT = ("keras.src.optimizers", "tf_keras.src.optimizers")


def onednn_kernels(config: Config, env_spec: EnvSpec) -> bool:
    """Whether an actor-learner runs TensorFlow's oneDNN kernels rather than Eigen's: for a
    convolutional network (Atari screens) over K > 1 environments. Measured with A3C in
    process CPU time per agent step (``benchmarks/update_path.py --kernels``, BENCHMARKS.md):
    at K = 1 oneDNN costs as much as Eigen with the NIPS network and 1.6 times as much with
    UNIVERSE's; at K = 8 it costs 0.55-0.85 of Eigen with NIPS and 0.5-0.8 with UNIVERSE, and
    the whole trainer runs 1.2-1.3 times as fast (``benchmarks/throughput.py``, ``a3c-k8``
    against ``a3c-k8-eigen``). The value-based methods, the LSTM and NATURE follow the same
    rule unmeasured: their batches are the same convolutions."""
    return config.envs_per_actor > 1 and env_spec.kind == "atari"


def configure_tensorflow(onednn: bool = False, initialise: bool = True) -> None:
    """One intra-op and one inter-op thread: the process is the unit of parallelism; the CPU
    kernels as :func:`onednn_kernels` chose, unless the user set ``TF_ENABLE_ONEDNN_OPTS``.
    The variable is restored once TensorFlow has read it, so that an evaluation run from
    Python leaves no choice behind for the trainings it may start later.

    TensorFlow's native start-up chatter (CUDA probing, absl's "log messages before
    InitializeLog") ignores TF_CPP_MIN_LOG_LEVEL, so stderr is silenced while it imports; and
    the Keras it imports for nothing (:data:`KERAS_AT_IMPORT`) is skipped.

    Without ``initialise`` TensorFlow is only loaded, and starts no runtime (no thread pools):
    what the fork server does (``preload.py``), before it forks the actor-learners, each of
    which then configures its own runtime.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    users = os.environ.get(ONEDNN)
    if users is None:
        os.environ[ONEDNN] = "1" if onednn else "0"
    try:
        saved = os.dup(2)
    except OSError:   # stderr closed (``2>&-``): nothing to silence, nothing to restore
        saved = None
    devnull = os.open(os.devnull, os.O_WRONLY)
    skipped = [name for name in KERAS_AT_IMPORT
               if "tensorflow" not in sys.modules and name not in sys.modules]
    try:
        if saved is not None:
            os.dup2(devnull, 2)
        for name in skipped:   # a None entry makes the import fail at once
            sys.modules[name] = None
        import tensorflow as tf
        if initialise:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass   # TensorFlow already runs here (an evaluation called from Python)
            tf.constant(0.0)  # initialises the runtime (and its logging) while stderr is silent
    finally:
        for name in skipped:   # Keras can still be imported later, in full
            sys.modules.pop(name, None)
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        os.close(devnull)
        if users is None:
            os.environ.pop(ONEDNN, None)
