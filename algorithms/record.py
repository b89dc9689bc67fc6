"""The run's record, kept by the parent: run folder, ``config.json``, ``episodes.csv``, the
progress line and ``--stop_return``.

It knows nothing of processes or of where the parameters live: the supervisor tells it that an
actor-learner is ready and that an episode ended, and asks it whether the run is solved.
"""
from __future__ import annotations

import collections
import datetime as _dt
import json
import os
import sys
import time
import uuid
from typing import Any

import numpy as np

from .checks import claim_folder
from .config import Config
from .console import say as log  # the run's lines: one printer with the evaluation's
from .errors import UserError
from .files import holds, moved_folder, release_folder, write_atomically
from .summaries import EpisodeLog, EvalLog, RunEvents, game_folder, make_run_dir, write_config

PROGRESS_SECONDS = 5.0
FIRST_PROGRESS_SECONDS = 1.0   # the first figures, once every actor-learner is stepping
RECENT_EPISODES = 20


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds) or seconds > 1e9:   # beyond 30 years: timedelta's range
        return "?"
    return str(_dt.timedelta(seconds=int(seconds)))


class Progress:
    """The console progress line, printed every few seconds."""

    def __init__(self, max_steps: int, frames_per_step: int, quiet: bool, workers: int,
                 first_step: int = 0):
        self.max_steps, self.frames_per_step, self.quiet = max_steps, frames_per_step, quiet
        self.workers = workers
        self.ready: set[int] = set()   # actors that have started their loop
        self.started: float | None = None   # when the last actor-learner became ready
        self.started_step = first_step   # and the global step then (a resumed run's at first)
        self.start = time.monotonic()
        self.last_time, self.last_step = self.start, first_step
        self.due = self.start + PROGRESS_SECONDS   # when the next line is printed
        self.returns: collections.deque[float] = collections.deque(maxlen=RECENT_EPISODES)
        self.episodes = 0

    def episode(self, ret: float) -> None:
        self.returns.append(ret)
        self.episodes += 1

    def mark_ready(self, actor: int, step: int) -> None:
        """``actor`` has started its loop, the global step being ``step``: rates count from the
        moment (and the step) the last one did, not the steps the first ones took meanwhile."""
        self.ready.add(actor)
        if len(self.ready) == self.workers and self.started is None:
            self.started = self.last_time = time.monotonic()
            self.started_step = self.last_step = step
            self.due = self.started + FIRST_PROGRESS_SECONDS

    def maybe_print(self, step: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now < self.due):
            return
        self.due = now + PROGRESS_SECONDS
        if len(self.ready) < self.workers:   # starting, or one restarting
            self.last_time, self.last_step = now, step
            if force:
                return
            log(f"starting the actor-learners: {len(self.ready)}/{self.workers} ready "
                f"(elapsed {_duration(now - self.start)})")
            return
        elapsed = now - self.start
        if force:   # the closing line: averages over the whole run
            rate = (step - self.started_step) / max(now - (self.started or self.start), 1e-9)
        else:
            rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        remaining = max(0, self.max_steps - step) / rate if rate > 0 else float("inf")
        mean = (f"{np.mean(self.returns):.1f} (last {len(self.returns)} of {self.episodes})"
                if self.returns else "- (no episode finished yet)")
        log(f"[{100.0 * step / self.max_steps:5.1f}%] step {step:,}/{self.max_steps:,} | "
            f"{rate:,.0f} steps/s | {rate * self.frames_per_step:,.0f} frames/s | "
            f"return {mean} | elapsed {_duration(elapsed)} | ETA {_duration(remaining)}")


def continues(run_dir: str, meta: dict, checkpoint_path: str | None, config: Config) -> str | None:
    """None when a resume from the checkpoint (``meta``, at ``checkpoint_path``) may go on in its
    recorded ``run_dir``; else why not. It may only when nothing outside this run is touched:
    the folder is under this invocation's ``--summary_dir``, the checkpoint comes from this
    invocation's ``--checkpoint_dir`` (a branch into a new checkpoint folder never changes the
    run it came from), and the folder's own config.json says it is the checkpoint's run."""
    parent = os.path.join(os.path.abspath(config.summary_dir), game_folder(config.game),
                          config.alg_type)
    if os.path.dirname(os.path.abspath(run_dir)) != parent:
        return "it is not under this --summary_dir"
    if checkpoint_path is not None and os.path.dirname(os.path.realpath(checkpoint_path)) != \
            os.path.realpath(config.checkpoint_dir):
        return "the checkpoint comes from another --checkpoint_dir"
    if not os.path.isdir(run_dir) or not os.access(run_dir, os.W_OK):
        return "it is gone or cannot be written"
    try:
        with open(os.path.join(run_dir, "config.json")) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return "it has no readable config.json"
    if not isinstance(record, dict):
        return "its config.json is not a run's"
    recorded = (record.get("config") or {}).get("checkpoint_dir") \
        if isinstance(record.get("config"), dict) else None
    if checkpoint_path is not None and isinstance(recorded, str) and \
            os.path.realpath(recorded) != os.path.realpath(config.checkpoint_dir):
        return "its checkpoints are in another folder (the checkpoint was copied from there)"
    if meta.get("run_id") is not None:
        same = record.get("run_id") == meta["run_id"]
    else:   # a checkpoint written before runs had an id: the same game, algorithm and seed
        saved, here = meta.get("config") or {}, record.get("config") or {}
        same = isinstance(here, dict) and all(
            here.get(key) == saved.get(key) for key in ("game", "alg_type", "seed"))
    return None if same else "its config.json belongs to another run"


class RunRecord:
    """The run folder and what goes into it, and the console's view of the run."""

    def __init__(self, config: Config, frames_per_step: int, resume_meta: dict | None,
                 resume_step: int, resume_path: str | None = None):
        self.config = config
        self.frames_per_step = frames_per_step
        self.resume_step = resume_step
        saved = None if resume_meta is None else resume_meta.get("run_dir")
        # A resumed run goes on in its own run directory (TensorBoard then shows one continuous
        # curve) only when that is this run's: see continues(). If another run is writing
        # there, it is refused.
        why_not = None if saved is None else \
            continues(saved, resume_meta, resume_path, config)
        self.continued = saved is not None and why_not is None
        if self.continued:
            claim_folder(saved, "--summary_dir")
            self.run_dir = saved
            self.run_id = resume_meta.get("run_id") or uuid.uuid4().hex
        else:
            try:
                self.run_dir = make_run_dir(config.summary_dir, config.game, config.alg_type)
            except OSError as err:   # a file where a folder should be, a link to nothing
                raise UserError(f"argument --summary_dir: no run folder can be made under "
                                f"{config.summary_dir!r} ({err.strerror or err}: "
                                f"{err.filename or ''}); choose another --summary_dir") \
                    from None
            claim_folder(self.run_dir, "--summary_dir")
            self.run_id = uuid.uuid4().hex
            if why_not:
                log(f"notice: not continuing in {saved} ({why_not}): this run is written to a "
                    "new run folder")
        self.episodes: EpisodeLog | None = None
        self.progress: Progress | None = None
        self.solved: str | None = None   # why --stop_return ended training
        self._config_text = ""   # config.json as written at the start, to write it again
        self._failing = False   # the last write of episodes.csv failed (reported once)
        self._events_warned = False
        self._moved = False   # the run folder was replaced under the run: its records moved
        self.evals: EvalLog | None = None
        self.events: RunEvents | None = None
        self.best_eval: float | None = None   # the score of best.npz: a mean over its games

    def open(self, values: dict[str, Any], resumed: dict[str, Any] | None) -> None:
        """Write ``config.json`` (``values``: the configuration and what the run adds to it)
        and open ``episodes.csv``."""
        try:
            path = write_config(self.run_dir, values, resumed=resumed, run_id=self.run_id)
            with open(path) as f:
                self._config_text = f.read()
            resume_step = self.resume_step if self.continued else None
            self.episodes = EpisodeLog(self.run_dir, resume_step=resume_step)
            self.evals = EvalLog(self.run_dir, resume_step=resume_step)
        except OSError as err:   # a full disk, say: nothing has started yet
            raise UserError(f"argument --summary_dir: the run folder {self.run_dir!r} cannot be "
                            f"written ({err.strerror or err}); free some space, or choose "
                            "another --summary_dir") from None
        self.events = RunEvents(self.run_dir)
        self._hparams = dict(values.get("config", values), run_id=self.run_id)
        self.events.hparams(self._hparams)

    def start_progress(self, first_step: int) -> None:
        config = self.config
        self.progress = Progress(config.max_global_steps, self.frames_per_step, config.quiet,
                                 config.num_actor_learners, first_step=first_step)

    def ready(self, actor: int, step: int) -> None:
        self.progress.mark_ready(actor, step)

    def not_ready(self, actor: int) -> None:
        self.progress.ready.discard(actor)

    def is_ready(self, actor: int) -> bool:
        return actor in self.progress.ready

    def episode(self, actor: int, env: int, step: int, wall: float, ret: float,
                length: int) -> None:
        self.episodes.write(actor, env, step, wall, ret, length)
        self.progress.episode(ret)
        self.events.scalar("run/mean_return", float(np.mean(self.progress.returns)), step, wall)

    def evaluation(self, step: int, wall: float, score: float, length: int,
                   best: float | None) -> None:
        """A test-process episode: evals.csv, TensorBoard, and a line. ``best``: the mean score
        of the games of these parameters, when it made them the best so far (best.npz)."""
        self.evals.add(step, wall, score, length, best is not None)
        if best is not None:
            self.best_eval = best
        self.events.scalar("eval/return", score, step, wall)
        if self.best_eval is not None:
            self.events.scalar("eval/best", self.best_eval, step, wall)
        if not self.config.quiet:
            kept = f"; their mean {best:g} is the best so far, kept as best.npz" \
                if best is not None else \
                (f"; best {self.best_eval:g}" if self.best_eval is not None else "")
            log(f"test at step {step:,}: score {score:g} in {length:,} steps{kept}")

    def flush(self) -> None:
        """Write the new episodes. A run folder removed under the run is made again (with its
        config.json and every episode so far), and so is a file removed from it; a write that
        fails (a full disk) is reported
        once and retried at the next flush: training goes on either way."""
        if self.episodes is None:
            return
        try:
            gone = self._gone()
            if gone:
                self._recreate(gone)
            self.episodes.flush()
            self.evals.flush()
        except OSError as err:
            if not self._failing:
                log(f"warning: could not write {self.episodes.path} "
                    f"({err.strerror or err}); the episodes are kept and written as soon as "
                    "the disk allows; training goes on", file=sys.stderr)
            self._failing = True
        else:
            if self._failing:
                log(f"notice: {self.episodes.path} is written again, nothing lost")
            self._failing = False
        self.events.flush()
        if self.events.failure is not None and not self._events_warned:
            self._events_warned = True
            log(f"warning: the run's TensorBoard events in {self.run_dir} cannot be written "
                f"({self.events.failure}); they are dropped until they can be, training goes on",
                file=sys.stderr)

    def _gone(self) -> list[str]:
        """What of the run folder was removed (or replaced) under the run: ["the run folder"],
        or the names of its files that are gone; [] when all is in place. A folder whose lock
        is no longer this run's was removed, even if an actor-learner's TensorBoard writer has
        made it again already."""
        if not os.path.isdir(self.run_dir) or not holds(self.run_dir):
            return ["the run folder"]
        files = (self.episodes, self.evals)
        return [log.name for log in files if log.missing()] + \
            ["config.json"] * (not os.path.isfile(os.path.join(self.run_dir, "config.json")))

    def _recreate(self, gone: list[str]) -> None:
        """Make again what ``gone`` names: the folder with everything in it, or the files. A
        run folder replaced by something that is not a folder (a file, a dangling link) is left
        as it is: the run's records go on in a folder of their own beside it
        (``files.moved_folder``, where the actor-learners' TensorBoard writers look too)."""
        folder = gone == ["the run folder"]
        replaced = self.run_dir
        if folder and not self._moved and os.path.lexists(replaced) \
                and not os.path.isdir(replaced):
            self._moved = True
            self.run_dir = moved_folder(replaced, os.getpid())
            log(f"warning: the run folder {replaced} was replaced by something that is not a "
                f"folder during the run; left as it is: the run goes on in {self.run_dir}, "
                "with config.json and every episode so far (TensorBoard's events from before "
                "are lost)", file=sys.stderr)
            release_folder(replaced)
            self.episodes.path = os.path.join(self.run_dir, self.episodes.name)
            self.evals.path = os.path.join(self.run_dir, self.evals.name)
            self.events.close()
            self.events.run_dir = self.run_dir
            self.events.hparams(self._hparams)
        if folder:
            os.makedirs(self.run_dir, exist_ok=True)
            release_folder(self.run_dir)
            claim_folder(self.run_dir, "--summary_dir")
        if folder or "config.json" in gone:   # as it was: its start time and resumes
            try:
                write_atomically(os.path.join(self.run_dir, "config.json"), self._config_text)
            except OSError as err:   # the episodes are still written below
                log(f"warning: could not write config.json again in {self.run_dir} "
                    f"({err.strerror or err}); training goes on", file=sys.stderr)
        if folder or self.episodes.name in gone:
            self.episodes.restore()
        if folder or self.evals.name in gone:
            self.evals.restore()
        if folder and replaced == self.run_dir:
            log(f"warning: the run folder {self.run_dir} was removed during the run; made it "
                "again with config.json and every episode so far (TensorBoard's events from "
                "before are lost)", file=sys.stderr)
        elif not folder:
            log(f"warning: {', '.join(gone)} removed from {self.run_dir} during the run; "
                "written again, with every row so far", file=sys.stderr)

    def check_solved(self, step: int) -> bool:
        """--stop_return: True once the last RECENT_EPISODES episodes average R."""
        target = self.config.stop_return
        returns = self.progress.returns
        if self.solved is None and target is not None and len(returns) >= RECENT_EPISODES:
            mean = float(np.mean(returns))
            if mean >= target:
                self.solved = (f"the mean return of the last {RECENT_EPISODES} episodes, "
                               f"{mean:g}, reached --stop_return {target:g}")
                log(f"{self.solved} at step {step:,}; stopping")
        return self.solved is not None

    def show(self, step: int, force: bool = False) -> None:
        self.progress.maybe_print(step, force)

    def close(self) -> None:
        if self.episodes is not None:
            self.episodes.close()
            self.evals.close()
            self.events.close()
