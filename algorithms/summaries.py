"""Run directories, config.json, episodes.csv (parent) and TensorBoard scalars (workers).

Layout of a run: ``<summary_dir>/<game>/<alg_type>/<timestamp>/`` with ``config.json``,
``episodes.csv`` (one row per finished episode, unclipped game score) and one TensorBoard event
folder per actor-learner, ``actor_<i>/``. Tags are namespaced: ``episode/*``, ``loss/*``,
``policy/*``, ``train/*``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import importlib.metadata
import io
import json
import os
import platform
import sys
import time
from typing import Any

from .files import moved_folder, write_atomically

# ``env``: which of the actor-learner's environments (--envs_per_actor) played the episode; the
# last column, so that files written before it existed read the same.
EPISODE_FIELDS = ("actor", "global_step", "wall_time", "return", "length", "env")
PACKAGES = ("tensorflow", "numpy", "gymnasium", "ale-py", "opencv-python", "tensorboard")


def package_versions() -> dict[str, str]:
    """Versions of the packages a run depends on (read from metadata; nothing is imported)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def game_folder(game: str) -> str:
    """A file-system-safe folder name for a game or Gymnasium id
    ('ALE/Pong-v5' -> 'ALE-Pong-v5')."""
    return game.replace("/", "-").replace(os.sep, "-")


def make_run_dir(summary_dir: str, game: str, alg_type: str) -> str:
    """Create and return a new, empty ``<summary_dir>/<game>/<alg_type>/<timestamp>`` folder."""
    parent = os.path.join(os.path.abspath(summary_dir), game_folder(game), alg_type)
    os.makedirs(parent, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    for suffix in [""] + [f"_{i}" for i in range(1, 1000)]:
        path = os.path.join(parent, stamp + suffix)
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {parent}")


def write_config(run_dir: str, values: dict[str, Any],
                 resumed: dict[str, Any] | None = None, run_id: str | None = None) -> str:
    """Write ``config.json``. A resumed run in the same folder keeps the record of its start and
    adds one entry per resume (checkpoint, step, command, time). ``run_id`` names the run: its
    checkpoints hold it too."""
    path = os.path.join(run_dir, "config.json")
    now = _dt.datetime.now().isoformat(timespec="seconds")
    command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:])
    record: dict[str, Any] = {}
    if resumed is not None and os.path.isfile(path):
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            record = {}
    record.setdefault("command", command)
    record.setdefault("started", now)
    record["config"] = values
    if run_id is not None:
        record["run_id"] = run_id
    record["versions"] = package_versions()
    if resumed is not None:
        record.setdefault("resumed", []).append(dict(resumed, command=command, time=now))
    return write_atomically(path, json.dumps(record, indent=2, sort_keys=True, default=str)
                            + "\n")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


class EpisodeLog:
    """``episodes.csv``, written by the parent alone (so rows never interleave).

    Every row is also kept in memory (a few dozen bytes per episode), so that a file removed
    under a run, with its folder, can be written again whole, and a write that fails (a full
    disk) loses nothing: the rows wait for the next flush.
    """

    name, fields = "episodes.csv", EPISODE_FIELDS
    step_column = 1

    def __init__(self, run_dir: str, resume_step: int | None = None):
        """A new file; or, resuming from a checkpoint at ``resume_step`` in the same run folder,
        the existing one without the episodes logged after that step (training from there on
        was lost with the process, and is about to be done again)."""
        self.path = os.path.join(run_dir, self.name)
        kept: list[list[str]] = []
        if resume_step is not None and os.path.isfile(self.path):
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            kept = self._kept(rows[1:], resume_step)
        self._rows: list = [tuple(row) for row in kept]
        self._pending: list = []
        self._file = None
        self._rewrite()

    def _kept(self, rows: list[list[str]], resume_step: int) -> list[list[str]]:
        old = len(self.fields) - 1   # a row written before the env column: environment 0
        return [row + ["0"] * (len(row) == old) for row in rows
                if len(row) in (old, len(self.fields))
                and 0 <= _int(row[self.step_column]) <= resume_step]

    def _rewrite(self) -> None:
        """Write the whole file (header and every row so far) atomically, and append from there."""
        self._close_quietly()
        text = io.StringIO(newline="")
        csv.writer(text).writerows([self.fields, *self._rows])
        write_atomically(self.path, text.getvalue())
        self._pending = []
        self._file = open(self.path, "a", newline="")
        self._writer = csv.writer(self._file)

    def write(self, actor: int, env: int, global_step: int, wall_time: float, ret: float,
              length: int):
        row = (actor, global_step, f"{wall_time:.3f}", f"{ret:g}", length, env)
        self._rows.append(row)
        self._pending.append(row)

    def missing(self) -> bool:
        """The file is gone, or is no longer the file this log appends to (removed with its
        folder, or replaced by something else under the run)."""
        try:
            here = os.stat(self.path)
        except OSError:
            return True
        if self._file is None:
            return False   # the last append failed: the next flush writes it whole anyway
        try:
            return here.st_ino != os.fstat(self._file.fileno()).st_ino
        except (OSError, ValueError):
            return True

    def flush(self) -> None:
        """Append the rows written since the last flush. Raises OSError if the disk refuses
        them; the next flush then writes the whole file again, atomically, so that no row is
        lost or doubled by a half-written append."""
        if self._file is None:   # the last append failed
            self._rewrite()
            return
        if not self._pending:
            return
        try:
            self._writer.writerows(self._pending)
            self._file.flush()
        except OSError:
            self._close_quietly()
            raise
        self._pending = []

    def restore(self) -> None:
        """Write the file again whole, where it was (its folder must exist)."""
        self._rewrite()

    def close(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        """Close the file; a buffer the disk refuses is dropped (it was reported when it failed,
        and the rows are kept for the next whole write)."""
        if self._file is not None and not self._file.closed:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = None


EVAL_FIELDS = ("global_step", "wall_time", "return", "length", "best")


class EvalLog(EpisodeLog):
    """``evals.csv``: the test process's episodes, one row each (``best``: 1 when it beat every
    earlier one), kept and written as ``episodes.csv`` is."""

    name, fields = "evals.csv", EVAL_FIELDS
    step_column = 0

    def _kept(self, rows: list[list[str]], resume_step: int) -> list[list[str]]:
        return [row for row in rows if len(row) == len(self.fields)
                and 0 <= _int(row[0]) <= resume_step]

    def add(self, global_step: int, wall_time: float, ret: float, length: int,
            best: bool) -> None:
        row = (global_step, f"{wall_time:.3f}", f"{ret:g}", length, int(best))
        self._rows.append(row)
        self._pending.append(row)


class RunEvents:
    """The run's own TensorBoard event file, in the run folder beside the actor-learners'
    folders: the mean return of the last episodes of all of them against the global step
    (``run/mean_return``), the test process's scores (``eval/return``, ``eval/best``), and the
    run's settings for TensorBoard's hparams view. Written by the parent without TensorFlow
    (TensorBoard's record writer and protocol buffers), appended as events come; a failed write
    (a full disk) drops events until a new file can be written, and never stops training."""

    RETRY_SECONDS = 30.0

    def __init__(self, run_dir: str):
        self.run_dir = run_dir
        self._file = None
        self._writer = None
        self._failed_at: float | None = None
        self.failure: str | None = None   # set once, for the record to report

    def _open(self) -> bool:
        import socket

        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        if self._failed_at is not None and \
                time.monotonic() - self._failed_at < self.RETRY_SECONDS:
            return False
        try:
            os.makedirs(self.run_dir, exist_ok=True)
            name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                    f"{os.getpid()}.run")
            self._file = open(os.path.join(self.run_dir, name), "ab")
            self._writer = RecordWriter(self._file)
            self._writer.write(event_pb2.Event(wall_time=time.time(),
                                               file_version="brain.Event:2").SerializeToString())
            self._file.flush()
        except OSError as err:
            self._fail(err)
            return False
        return True

    def _fail(self, err: OSError) -> None:
        self._failed_at = time.monotonic()
        if self.failure is None:
            self.failure = str(err.strerror or err)
        self.close()

    def _write(self, event) -> None:
        if self._writer is None and not self._open():
            return
        try:
            self._writer.write(event.SerializeToString())
        except OSError as err:
            self._fail(err)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as err:
                self._fail(err)

    def scalar(self, tag: str, value: float, step: int, wall: float | None = None) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        self._write(event_pb2.Event(
            wall_time=wall or time.time(), step=int(step),
            summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                tag=tag, simple_value=float(value))])))

    def hparams(self, settings: dict[str, Any]) -> None:
        """The run's settings (numbers, strings, booleans) for TensorBoard's hparams view; its
        metrics are the scalars above."""
        from tensorboard.compat.proto import event_pb2
        from tensorboard.plugins.hparams import summary_v2
        values = {k: v for k, v in settings.items()
                  if isinstance(v, (bool, int, float, str)) and v is not None}
        self._write(event_pb2.Event(wall_time=time.time(), step=0,
                                    summary=summary_v2.hparams_pb(values)))

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
        self._file = self._writer = None


def _reason(err: Exception) -> str:
    """The cause of a failed write, without TensorFlow's op names and file paths."""
    text = getattr(err, "strerror", None) or getattr(err, "message", None) or str(err)
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(err).__name__
    return first.split("}}")[-1].split("; ")[-1].strip()


class ScalarWriter:
    """One actor-learner's TensorBoard event file (imports TensorFlow: workers only).

    A write that fails (a full disk, an I/O error, the folder made read-only) never ends
    training: ``warn`` is called once with a line that says so, the scalars are dropped, and
    every ``RETRY_SECONDS`` a new event file is tried, until one can be written again."""

    RETRY_SECONDS = 30.0

    def __init__(self, run_dir: str, actor_id: int, warn=None, trainer_pid: int = 0):
        import tensorflow as tf
        self._tf = tf
        self._run_dir, self._trainer_pid = run_dir, trainer_pid
        self._name = f"actor_{actor_id}"
        self._folder = os.path.join(run_dir, self._name)
        self._warn = warn
        self._writer = None
        self._failed_at: float | None = None
        self._warned = False
        self._guarded(self._open)

    def _open(self) -> None:
        self._folder = os.path.join(self._current_run_dir(), self._name)
        os.makedirs(self._folder, exist_ok=True)
        self._writer = self._tf.summary.create_file_writer(self._folder)

    def _current_run_dir(self) -> str:
        """The run folder, or, once it was replaced under the run by something that is not a
        folder, the folder the trainer (process ``trainer_pid``) moves the run's records to
        (``record.RunRecord``), made here if this writer gets there first."""
        run_dir = self._run_dir
        if self._trainer_pid and os.path.lexists(run_dir) and not os.path.isdir(run_dir):
            return moved_folder(run_dir, self._trainer_pid)
        return run_dir

    def _guarded(self, action) -> bool:
        """Run ``action``; on a failed write, drop the writer and say so once."""
        try:
            action()
            return True
        except (ValueError, OverflowError) as err:   # a value TensorBoard cannot hold
            if not self._warned and self._warn is not None:
                self._warned = True
                self._warn(f"a scalar could not be written to TensorBoard ({_reason(err)}); "
                           "it is dropped, training goes on")
            return False
        except (self._tf.errors.OpError, OSError) as err:
            self._failed_at = time.monotonic()
            self._drop()
            if not self._warned and self._warn is not None:
                self._warned = True
                self._warn(f"TensorBoard's event file in {self._folder} cannot be written "
                           f"({_reason(err)}); scalars are dropped until it can "
                           f"be (tried again every {self.RETRY_SECONDS:.0f} s), training goes on")
            return False

    def _drop(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except (self._tf.errors.OpError, OSError):
                pass

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self._writer is None:
            if self._failed_at is not None and \
                    time.monotonic() - self._failed_at < self.RETRY_SECONDS:
                return
            if not self._guarded(self._open):
                return
        elif not os.path.isdir(self._folder):   # removed under the run: a new event file
            self._drop()
            if not self._guarded(self._open):
                return

        def write() -> None:
            with self._writer.as_default(step=step):
                for tag, value in values.items():
                    self._tf.summary.scalar(tag, float(value))
        self._guarded(write)

    def close(self) -> None:
        if self._writer is not None:
            self._guarded(self._writer.flush)
            self._drop()
