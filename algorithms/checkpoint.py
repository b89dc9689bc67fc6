"""Checkpoints: everything training needs to continue as if it had never stopped.

One checkpoint is one file, ``<checkpoint_dir>/checkpoint-<global step>.npz``, holding

* arrays: the shared parameters (``params``), the target network (``target``, value-based
  methods), every optimizer statistic (``opt_<slot>`` in ``--opt_mode shared``,
  ``opt_<slot>_<actor>`` in ``local``), the per-actor step and update counters (``steps``,
  ``updates``; their sums are the global step and Adam's shared t), each actor-learner's final
  exploration rate (``final_epsilons``) and the index of the last target refresh
  (``target_version``);
* ``meta``: a JSON document (stored as a numpy string, so no pickle is needed) with the format
  version, the global step, the full config, the parameter layout, the package versions, the run
  directory and how many times the run was resumed. The learning-rate and epsilon schedules are
  functions of the global step and the config, so they resume where they were.

Writes are atomic (``files.write_atomically``): a crash or ``kill -9`` at any point leaves either
the complete new file or none, and the previous checkpoints untouched. Loading uses
``allow_pickle=False``: a checkpoint is data, never code. Only the newest ``keep`` are kept.

:class:`Checkpointer` is the parent's side of it: when a checkpoint is due, and what goes into
one (the parameter store's arrays, the supervisor's counters, the configuration and layout).
"""
from __future__ import annotations

import io
import json
import os
import re
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import Config
from .environments import resolved_crop
from .errors import UserError
from .files import TEMPORARY_SUFFIX, write_atomically

FORMAT = 1
_NAME = re.compile(r"^checkpoint-(\d+)\.npz$")
# Config entries that fix the shape or meaning of the saved arrays: resuming with another value
# cannot work.
MAX_STEPS_AHEAD = 256 * 10_000   # a learner's longest segment: --envs_per_actor x t_max
REQUIRED_ARRAYS = ("params", "steps", "updates", "final_epsilons")
STRUCTURAL = ("game", "env", "alg_type", "arch", "lstm", "opt_type", "opt_mode")


@dataclass
class Checkpoint:
    path: str
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["global_step"])

    @property
    def config(self) -> dict[str, Any]:
        return self.meta["config"]


def file_name(step: int) -> str:
    return f"checkpoint-{step:012d}.npz"


def step_of(path: str) -> int:
    """The global step in a checkpoint's file name (``checkpoint-<step>.npz``)."""
    return int(os.path.basename(path)[len("checkpoint-"):-len(".npz")])


def list_checkpoints(directory: str) -> list[str]:
    """Complete checkpoints in ``directory``, oldest first. Only regular files named as
    checkpoints count: temporary files, folders and broken links with such names are ignored."""
    if not os.path.isdir(directory):
        return []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = sorted((int(m.group(1)), name) for name in names
                   if (m := _NAME.match(name)) and os.path.isfile(os.path.join(directory, name)))
    return [os.path.join(directory, name) for _, name in found]


def latest(directory: str) -> str | None:
    paths = list_checkpoints(directory)
    return paths[-1] if paths else None


def save(directory: str, step: int, arrays: dict[str, np.ndarray], meta: dict[str, Any],
         keep: int) -> str:
    """Write a checkpoint atomically and prune all but the newest ``keep``; returns its path."""
    os.makedirs(directory, exist_ok=True)
    path = save_as(os.path.join(directory, file_name(step)), step, arrays, meta)
    for old in list_checkpoints(directory)[:-keep]:
        try:
            os.unlink(old)
        except OSError:
            pass   # already gone, or the folder turned read-only: the new one is written
    return path


def save_as(path: str, step: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> str:
    """Write a checkpoint to ``path``, atomically (the test process's ``best.npz`` too)."""
    meta = dict(meta, format=FORMAT, global_step=int(step),
                saved=time.strftime("%Y-%m-%dT%H:%M:%S"))
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta, sort_keys=True, default=str)), **arrays)
    write_atomically(path, buffer.getvalue())
    return path


def remove_stale_temporaries(directory: str) -> list[str]:
    """Delete temporary files left by a writer that was killed mid-write; returns them."""
    if not os.path.isdir(directory):
        return []
    stale = [os.path.join(directory, n) for n in os.listdir(directory)
             if n.startswith(".checkpoint-") and n.endswith(TEMPORARY_SUFFIX)]
    for path in stale:
        os.unlink(path)
    return stale


class NewerFormat(Exception):
    """A checkpoint of a format this version does not know yet."""


def load(path: str) -> Checkpoint:
    """Read a checkpoint (never executing anything from it). Raises UserError if it is missing,
    truncated or corrupt."""
    if os.path.isdir(path):
        raise UserError(f"checkpoint {path!r} is a folder (pass it as --checkpoint_dir, or give "
                        "a checkpoint-*.npz file to --checkpoint)")
    if os.path.exists(path) and not os.path.isfile(path):
        raise UserError(f"checkpoint {path!r} is not a regular file (a FIFO, a device or a "
                        "socket); give a checkpoint-*.npz file")
    if not os.path.isfile(path):
        raise UserError(f"checkpoint {path!r} does not exist (give a checkpoint-*.npz file, "
                        "or a --checkpoint_dir that holds one)")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise UserError(f"checkpoint {path!r} cannot be read ({err.strerror or err})") from None
    if head and head != b"PK\x03\x04":   # an .npz is a zip archive
        raise UserError(f"checkpoint {path!r} is not a checkpoint (not an .npz archive: it "
                        f"starts with {head!r}); give a checkpoint-*.npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict):
            raise ValueError(f"its metadata is a {type(meta).__name__}, not a mapping")
        written = meta.get("format")
        if isinstance(written, int) and not isinstance(written, bool) and written > FORMAT:
            raise NewerFormat(written)
        if written != FORMAT:
            raise ValueError(f"format {written!r}, expected {FORMAT}")
        if "compact" in meta:
            expand(arrays, meta)
        missing = [key for key in ("global_step", "config", "layout") if key not in meta] + \
                  [name for name in REQUIRED_ARRAYS if name not in arrays]
        if missing:
            raise KeyError(f"missing {', '.join(missing)}")
        meta["global_step"] = int(meta["global_step"])
    except NewerFormat as newer:
        raise UserError(f"checkpoint {path!r} was written by a newer version of this trainer "
                        f"(checkpoint format {newer.args[0]}; this version reads format "
                        f"{FORMAT}): update the trainer (git pull) to use it; the file is "
                        "fine, keep it") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError,
            zipfile.BadZipFile) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"checkpoint {path!r} is corrupt or truncated ({reason}); delete it, or "
                        "pass an earlier one with --checkpoint") from None
    return Checkpoint(path, arrays, meta)


# A compact agent (``export_agent.py --half --rank R``) stores each vector (the parameters, and
# the target network's) as float16, with some matrices as two low-rank factors; loading expands
# it back into the float32 vector every other part of the trainer reads.
COMPACT_VECTORS = ("params", "target")
MAX_PARAMETERS = 100_000_000   # a layout beyond this is not a network of this trainer


def compact(vector: np.ndarray, layout: list, rank: int | None, half: bool,
            prefix: str, int8: bool = False) -> tuple[dict[str, np.ndarray], list[list]]:
    """``vector`` (in ``layout``'s order, [[name, shape], ...]) as compact arrays: every dense
    layer's weight matrix (``*dense/w``) of more than ``rank`` rows and columns as factors U
    (rows x rank) and V (rank x columns) of its truncated SVD, the rest as one vector; float16
    if ``half``; with ``int8``, each U as int8 with a scale per column (``<prefix>_s<i>``).
    Returns the arrays (named ``<prefix>...``) and the factored [name, rank]s."""
    dtype = np.float16 if half else np.float32
    arrays, factored, rest, offset = {}, [], [], 0
    for name, shape in layout:
        size = int(np.prod(shape))
        tensor = vector[offset:offset + size].reshape(shape)
        offset += size
        if rank is not None and name.endswith("dense/w") and min(shape) > rank:
            u, singular, vt = np.linalg.svd(tensor.astype(np.float64), full_matrices=False)
            u = u[:, :rank] * singular[:rank]
            index = len(factored)
            if int8:
                scale = np.maximum(np.abs(u).max(axis=0), 1e-30) / 127.0
                arrays[f"{prefix}_u{index}"] = np.round(u / scale).astype(np.int8)
                arrays[f"{prefix}_s{index}"] = scale.astype(np.float32)
            else:
                arrays[f"{prefix}_u{index}"] = u.astype(dtype)
            arrays[f"{prefix}_v{index}"] = vt[:rank].astype(dtype)
            factored.append([name, rank])
        else:
            rest.append(tensor.ravel())
    arrays[f"{prefix}_rest"] = np.concatenate(rest).astype(dtype)
    return arrays, factored


def expand(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """A compact agent's arrays back into float32 vectors, in place (ValueError, KeyError or
    TypeError if they do not fit its layout)."""
    factored = {name for name, _ in meta["compact"]["factored"]}
    sizes = [int(np.prod(shape)) for _, shape in meta["layout"]]
    if sum(sizes) > MAX_PARAMETERS:
        raise ValueError(f"its layout holds {sum(sizes):,} parameters, more than any network "
                         f"here ({MAX_PARAMETERS:,})")
    for prefix in COMPACT_VECTORS:
        if f"{prefix}_rest" not in arrays:
            continue
        rest = arrays.pop(f"{prefix}_rest").astype(np.float32)
        if rest.ndim != 1:
            raise ValueError(f"{prefix}_rest is of shape {rest.shape}, not a vector")
        parts, offset, index = [], 0, 0
        for (name, shape), size in zip(meta["layout"], sizes):
            if name in factored:
                u = arrays.pop(f"{prefix}_u{index}").astype(np.float32)
                scale = arrays.pop(f"{prefix}_s{index}", None)
                if scale is not None:   # int8 with a scale per column
                    u = u * scale.astype(np.float32).reshape(1, -1)
                v = arrays.pop(f"{prefix}_v{index}").astype(np.float32)
                index += 1
                if u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[0] \
                        or (u.shape[0], v.shape[1]) != tuple(shape):
                    raise ValueError(f"the factors of {name} ({u.shape} and {v.shape}) do not "
                                     f"make its shape {shape}")
                parts.append((u @ v).ravel())
            else:
                parts.append(rest[offset:offset + size])
                offset += size
        if offset != rest.size:
            raise ValueError(f"{prefix} holds {rest.size} values outside its factors, its "
                             f"layout {offset}")
        arrays[prefix] = np.concatenate(parts).astype(np.float32)


_VECTOR = re.compile(r"^(params|target|opt_[a-z]+(_\d+)?)$")


def validate(ckpt: Checkpoint, num_parameters: int | None = None) -> None:
    """A checkpoint is input from outside: its metadata, and (given the network's
    ``num_parameters``) every array and counter, must be what training writes. Raises
    UserError naming the file and the first thing wrong."""
    def fail(what: str) -> None:
        raise UserError(f"checkpoint {ckpt.path!r}: {what}; delete it, or pass another one "
                        "with --checkpoint")

    arrays, meta = ckpt.arrays, ckpt.meta
    shapes = {"layout": list, "observation_shape": list, "num_actions": int, "resumes": int}
    for key, kind in shapes.items():
        if key in meta and (not isinstance(meta[key], kind) or isinstance(meta[key], bool)):
            fail(f"its metadata has {key} {meta[key]!r}, not a {kind.__name__}")
    if meta.get("resumes", 0) < 0 or ckpt.step < 0:
        fail("its metadata holds a negative count")
    for key in ("run_dir", "run_id"):
        if key in meta and not isinstance(meta[key], (str, type(None))):
            fail(f"its metadata has {key} {meta[key]!r}, not a name")
    if num_parameters is None:
        return
    for name, array in arrays.items():
        if _VECTOR.match(name):
            if array.dtype.kind != "f" or array.shape != (num_parameters,):
                fail(f"array {name!r} is {array.dtype} of shape {array.shape}, not float32 of "
                     f"shape ({num_parameters},)")
            if not np.isfinite(array).all():
                fail(f"array {name!r} holds NaN or infinite values")
        elif name not in ("steps", "updates", "final_epsilons", "target_version"):
            fail(f"unknown array {name!r}")
    for name in ("steps", "updates"):
        counts = arrays[name]
        if counts.ndim != 1 or counts.size == 0 or counts.dtype.kind not in "iu":
            fail(f"counter {name!r} is {counts.dtype} of shape {counts.shape}, not a list of "
                 "integers")
        if (counts < 0).any():
            fail(f"counter {name!r} holds negative counts")
    # Versions before 2026-12-04 read the global step a moment before copying the counters, so
    # a checkpoint of theirs may count a few steps more than its name: never more than one
    # segment of every learner, and never fewer.
    total = int(arrays["steps"].sum())
    if not ckpt.step <= total <= ckpt.step + MAX_STEPS_AHEAD * max(1, arrays["steps"].size):
        fail(f"its global step {ckpt.step:,} is not the total of its step counters "
             f"({int(arrays['steps'].sum()):,})")
    rates = arrays["final_epsilons"]
    if rates.ndim != 1 or rates.dtype.kind != "f" or not ((rates >= 0) & (rates <= 1)).all():
        fail("array 'final_epsilons' is not a list of exploration rates in [0, 1]")
    version = arrays.get("target_version")
    if version is not None and (version.shape != () or version.dtype.kind not in "iu"
                                or int(version) < 0):
        fail("counter 'target_version' is not a non-negative integer")


def layout_record(layout) -> list[list]:
    """A ``networks.Layout`` as checkpoints and compatibility checks hold it: [name, shape] per
    tensor."""
    return [[spec.name, list(spec.shape)] for spec in layout.specs]


def check_compatible(ckpt: Checkpoint, config: dict[str, Any], layout_names: list[list],
                     observation_shape: tuple[int, ...], num_actions: int) -> None:
    """Raise UserError naming the first difference that makes ``ckpt`` unusable here."""
    saved = ckpt.config
    for key in STRUCTURAL:
        if (saved.get(key) or None) != (config.get(key) or None):   # absent = False = None
            raise UserError(
                f"checkpoint {ckpt.path!r} was trained with {key} {saved.get(key)!r}, not "
                f"{config.get(key)!r}; use the same {key}, or another --checkpoint_dir to start "
                "a new run")
    if len(observation_shape) == 3:   # Atari frames: the same shape may hold other frames
        # (an evaluation has no other way out than the same flag)
        branch = "" if config.get("mode") == "eval" else \
            ", or another --checkpoint_dir to start a new run"
        crops = [resolved_crop(c.get("arch"), c.get("crop")) for c in (saved, config)]
        if crops[0] != crops[1]:
            raise UserError(f"checkpoint {ckpt.path!r} was trained on frames with --crop "
                            f"{crops[0]}, not {crops[1]}; use the same --crop{branch}")
        resamples = [c.get("resample") or "area" for c in (saved, config)]
        if resamples[0] != resamples[1]:
            raise UserError(f"checkpoint {ckpt.path!r} was trained on frames with --resample "
                            f"{resamples[0]}, not {resamples[1]}; use the same "
                            f"--resample{branch}")
    if list(ckpt.meta.get("observation_shape", [])) != list(observation_shape):
        raise UserError(f"checkpoint {ckpt.path!r} has observations of shape "
                        f"{tuple(ckpt.meta.get('observation_shape', []))}, this environment "
                        f"{tuple(observation_shape)}; resume on the same environment")
    if ckpt.meta.get("num_actions") != num_actions:
        raise UserError(f"checkpoint {ckpt.path!r} has {ckpt.meta.get('num_actions')} actions, "
                        f"this environment {num_actions}; resume on the same environment "
                        "(and the same ROM)")
    if ckpt.meta["layout"] != layout_names:
        raise UserError(f"checkpoint {ckpt.path!r} holds another network (parameter layout "
                        "differs); resume with the flags it was trained with")


class Checkpointer:
    """Writes the checkpoints of one training run: every ``--checkpoint_interval`` global
    steps, and a final one when training ends."""

    def __init__(self, config: Config, meta: dict[str, Any], first_step: int):
        self.config = config
        self.meta = meta   # the run's constant part: config, layout, run folder, versions...
        self.next_step = self._next(first_step)
        self.last_path: str | None = None
        self.directory = config.checkpoint_dir   # held by this run (startup.prepare locked it)
        self.notice: str | None = None   # why the checkpoints now go elsewhere, once

    def _held_directory(self) -> str:
        """The folder to write into, still held by this run. One removed under the run is made
        and locked again; one that another run has meanwhile claimed (a --resume into the
        folder made again) is left to it, and this run's checkpoints go to a folder of its own
        beside it: two runs never prune each other's checkpoints."""
        from .files import holds, lock_folder, moved_folder, release_folder
        folder = self.directory
        if holds(folder):
            return folder
        release_folder(folder)
        holder = lock_folder(folder)   # makes it again if it is gone; OSError if it cannot
        if holder is None:
            return folder
        moved = moved_folder(folder, os.getpid())
        if lock_folder(moved) is not None:
            raise OSError(f"{moved} is held by another run too")
        who = f"process {holder}" if holder > 0 else "another process"
        self.notice = (f"{os.path.abspath(folder)} was removed under this run, and another run "
                       f"({who}) holds it now: this run's checkpoints go to {moved}")
        self.directory = moved
        return moved

    def _next(self, step: int) -> int:
        interval = self.config.checkpoint_interval
        return (step // interval + 1) * interval

    def due(self, step: int) -> bool:
        return self.next_step <= step < self.config.max_global_steps

    def schedule_after(self, step: int) -> None:
        """The next checkpoint is due one interval after ``step``."""
        self.next_step = self._next(step)

    def save(self, step: int, arrays: dict[str, np.ndarray]) -> str:
        self.schedule_after(step)
        self.last_path = save(self._held_directory(), step, arrays, self.meta,
                              self.config.keep_checkpoints)
        return self.last_path


class BackgroundWrite:
    """One checkpoint written by a thread of its own, so that a slow disk (an fsync of tens of
    seconds on a loaded machine) never holds up the supervisor's loop: messages, restarts,
    stall checks and signals go on meanwhile. ``done`` once the thread has ended; then ``path``
    is the checkpoint written, or ``error`` says why none was."""

    def __init__(self, checkpointer: Checkpointer, step: int, arrays: dict[str, np.ndarray]):
        self.step = step
        self.started = time.monotonic()
        self.seconds = 0.0
        self.path: str | None = None
        self.error: BaseException | None = None
        checkpointer.schedule_after(step)
        self._thread = threading.Thread(target=self._write, args=(checkpointer, arrays),
                                        name=f"checkpoint-{step}", daemon=True)
        self._thread.start()

    def _write(self, checkpointer: Checkpointer, arrays: dict[str, np.ndarray]) -> None:
        try:
            self.path = checkpointer.save(self.step, arrays)
        except BaseException as err:   # reported by the loop; a thread's error is lost else
            self.error = err
        self.seconds = time.monotonic() - self.started

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the write to end; True once it has."""
        self._thread.join(timeout)
        return self.done
