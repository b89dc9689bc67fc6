"""One training run, put together: the backend, the parameter store, the run record, the
checkpointer and the supervisor. The one place that chooses a backend (:func:`make_backend`).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .. import checkpoint
from ..checks import claim_folder
from ..config import PAPER_DRAW, Config
from ..errors import UserError
from ..environments import EnvSpec
from ..exploration import sample_final_epsilons
from ..networks import layout_for
from ..record import RunRecord, log
from ..summaries import package_versions
from ..tfsetup import onednn_kernels
from .backend import Backend, ParameterStore, Workers
from .supervisor import Supervisor


def make_backend(config: Config, env_spec: EnvSpec) -> Backend:
    """``--cluster``: Ray actors over a parameter server, or processes of this machine."""
    if config.cluster == "ray":
        from .ray import RayBackend
        return RayBackend(config)
    from .local import LocalBackend
    return LocalBackend(config, onednn_kernels(config, env_spec))


class Training:
    """One training run; ``run()`` returns the process exit code."""

    def __init__(self, config: Config, env_spec: EnvSpec,
                 resume: checkpoint.Checkpoint | None = None):
        self.config, self.env_spec, self.resume = config, env_spec, resume
        self.layout = layout_for(config, env_spec)
        self.resumes = 0 if resume is None else int(resume.meta.get("resumes", 0)) + 1
        count = config.num_actor_learners
        # Drawn here, not in the workers, so that they are recorded with the run and reproducible.
        # A resumed run keeps each actor-learner's saved rate; extra actor-learners draw theirs.
        # A --final_epsilon number is every actor-learner's.
        fixed = config.final_epsilon not in (None, PAPER_DRAW)
        if not config.value_based:
            drawn = [1.0] * count
        elif fixed:
            drawn = [float(config.final_epsilon)] * count
        else:
            drawn = sample_final_epsilons(np.random.default_rng([config.seed, 1 + self.resumes]),
                                          count)
        saved = ([] if resume is None or fixed
                 else [float(e) for e in resume.arrays["final_epsilons"]])
        self.final_epsilons = (saved + drawn[len(saved):])[:count]
        self.supervisor: Supervisor | None = None

    def _announce(self, record: RunRecord) -> None:
        config, resume = self.config, self.resume
        log(f"run directory: {record.run_dir}")
        if resume is not None:
            log(f"resumed from {resume.path} at step {resume.step:,}"
                + (" (same run directory)" if record.continued else ""))
        log(f"checkpoints: {os.path.abspath(config.checkpoint_dir)} (every "
            f"{config.checkpoint_interval:,} steps, keeping the last {config.keep_checkpoints})")
        log(f"{config.alg_type} on {config.game} ({config.env}): {config.num_actor_learners} "
            f"actor-learners, {self.env_spec.num_actions} actions, "
            f"{self.layout.size:,} parameters, lr {config.initial_lr:.3g}, seed {config.seed}")
        if config.value_based:
            log("final epsilons per actor-learner: "
                + ", ".join(f"{i}: {e:g}" for i, e in enumerate(self.final_epsilons)))

    def run(self) -> int:
        """Train; returns the exit code. An unexpected error (a bug, a disk that fails under
        the run) still stops the actor-learners and closes the store (``finally`` blocks
        below); its traceback goes to ``error.log`` in the run folder and the console gets one
        line (the whole traceback too with A3C_DEBUG=1)."""
        config = self.config
        claim_folder(config.checkpoint_dir, "--checkpoint_dir")
        with make_backend(config, self.env_spec) as backend:   # a cluster: joined first
            resume = self.resume
            record = RunRecord(config, self.env_spec.frames_per_step,
                               None if resume is None else resume.meta,
                               0 if resume is None else resume.step,
                               None if resume is None else resume.path)
            try:
                return self._run(record, backend)
            except (Exception, KeyboardInterrupt) as err:
                if isinstance(err, (KeyboardInterrupt, UserError)) or \
                        os.environ.get("A3C_DEBUG"):
                    raise
                where = write_error_log(record.run_dir)
                last = None if self.supervisor is None else \
                    self.supervisor.checkpointer.last_path
                log(f"error: {type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")
                    + "; training stopped"
                    + (f"; the last good checkpoint is {last}" if last else "")
                    + f" (details: {where}; A3C_DEBUG=1 shows them here)", file=sys.stderr)
                return 1

    def _run(self, record: RunRecord, backend: Backend) -> int:
        config, env_spec, resume = self.config, self.env_spec, self.resume
        extra = {"final_epsilons": self.final_epsilons} if config.value_based else {}
        resumed = None if resume is None else {
            "checkpoint": os.path.abspath(resume.path), "global_step": resume.step,
            "resumes": self.resumes}
        record.open(dict(config.to_dict(), observation_shape=list(env_spec.observation_shape),
                         num_actions=env_spec.num_actions, num_parameters=self.layout.size,
                         **extra), resumed)
        self._announce(record)
        initial = None if resume is not None else \
            self.layout.initial_values(np.random.default_rng(config.seed))
        store = backend.create_store(self.layout.size)
        try:
            if resume is None:
                store.initialise(initial)
            else:
                store.restore(resume.arrays)
            return self._supervise(record, store, backend.workers(store))
        finally:
            record.close()
            try:
                backend.close()
            finally:
                store.close()

    def _supervise(self, record: RunRecord, store: ParameterStore, workers: Workers) -> int:
        config, env_spec = self.config, self.env_spec
        meta = {"config": config.to_dict(), "layout": checkpoint.layout_record(self.layout),
                "observation_shape": list(env_spec.observation_shape),
                "num_actions": env_spec.num_actions, "versions": package_versions(),
                "run_dir": record.run_dir, "run_id": record.run_id, "resumes": self.resumes}
        checkpointer = checkpoint.Checkpointer(config, meta, workers.steps.total())
        self.supervisor = Supervisor(config, env_spec, self.layout, store, record, checkpointer,
                                     workers, self.final_epsilons, self.resumes)
        return self.supervisor.run()


def write_error_log(run_dir: str) -> str:
    """The traceback being handled, appended to ``<run_dir>/error.log`` (or, if that cannot be
    written, a file in the system's temporary folder); returns where it went."""
    import tempfile
    import traceback
    text = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')}\n{traceback.format_exc()}"
    for path in (os.path.join(run_dir, "error.log"),
                 os.path.join(tempfile.gettempdir(), f"a3c-error-{os.getpid()}.log")):
        try:
            with open(path, "a") as f:
                f.write(text)
            return path
        except OSError:
            continue
    return "nowhere: no folder could be written"


def train(config: Config, env_spec: EnvSpec, resume: checkpoint.Checkpoint | None = None) -> int:
    """Train with ``config``, from scratch or from ``resume``; returns the process exit code."""
    return Training(config, env_spec, resume).run()
