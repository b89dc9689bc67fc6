"""Chaos soak: one training run under a schedule of faults, and a count of what it survived.

A3C trains (CartPole-v1 by default, Pong with ``--game pong --env ALE``) for ``--minutes``
while, every ``--period`` seconds, the next fault of this cycle hits it:

1. ``kill -9`` of a random actor-learner: the trainer must restart it and go on;
2. ``SIGSTOP`` of a random actor-learner past ``--stall_timeout``: it must be killed, restarted;
3. ``SIGTERM`` of the trainer, then ``--resume``: a final checkpoint, exit 143, and the resumed
   run goes on from it;
4. ``kill -9`` of the trainer, then ``--resume``: its workers exit by themselves, the shared
   memory is removed, and the resumed run goes on from the last checkpoint (steps since it are
   lost: at most one checkpoint interval);
5. the newest checkpoint truncated after a ``SIGTERM``, then ``--resume``: refused with one
   line (exit 2); with the damaged file removed, the resume goes on from the one before;
6. ``SIGSTOP`` of the fork server: it must be found stopped and continued, the run goes on;
7. ``kill -9`` of the test process (``--eval_interval``): restarted, training goes on;
8. the run folder and the checkpoint folder removed (``rm -rf``): both are made again, the
   checkpoint folder locked again, training goes on;
9. ``SIGQUIT`` to the trainer's process group (Ctrl-\\), then ``--resume``: a final checkpoint,
   exit 131, the helpers ignore it;
10. ``kill -9`` of the fork server, then ``--resume``: the run stops with one line naming it
    (exit 1) after a final checkpoint;
11. ``kill -9`` of the resource tracker and then of the trainer, then ``--resume``: nothing is
    left that could unlink the shared memory, and the resumed run removes it.

A fault counts as survived when the trainer (or the resumed one) is making steps again within
``--recovery`` seconds and nothing else went wrong. At the end the run is stopped with SIGTERM
and the soak prints: faults injected and survived, worker restarts, global steps lost to
rollbacks, the episodes of each cleanly ended session against the rows of ``episodes.csv`` in
its time window, duplicate rows, leftover processes and ``/dev/shm`` segments.

Reproduce with:

    python -m benchmarks.chaos --minutes 30                        # CartPole, 2 actor-learners
    python -m benchmarks.chaos --minutes 12 --period 60 --faults stop_forkserver,kill_tester
    python -m benchmarks.chaos --minutes 30 --game pong --env ALE  # the long version
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from algorithms.run.procs import (actor_learner_pids, children, forkserver_pid, process_state,
                                  processes_with_env)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAULTS = ("kill_worker", "stop_worker", "sigterm_resume", "kill_parent_resume",
          "corrupt_checkpoint_resume", "stop_forkserver", "kill_tester", "remove_folders",
          "sigquit_group_resume", "kill_forkserver_resume", "kill_tracker_and_parent_resume")
STEP = re.compile(r"step ([\d,]+)/")
EPISODES = re.compile(r"\(last \d+ of (\d+)\)")


def processes_with_token(token: str) -> list[int]:
    """PIDs of live processes whose environment holds RUN_TOKEN=token (a trainer, its workers;
    the tests use it too)."""
    return processes_with_env("RUN_TOKEN", token)


class Trainer:
    """One trainer process (a session of the run), its output read line by line."""

    def __init__(self, args: list[str], token: str, log_path: str):
        env = dict(os.environ, RUN_TOKEN=token, PYTHONUNBUFFERED="1")
        # a process group of its own, which faults 9 signals as a terminal would
        self.proc = subprocess.Popen([sys.executable, "-m", "algorithms", *args], cwd=ROOT,
                                     env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.started = time.time()
        self.ended: float | None = None
        self.lines: list[str] = []
        self.step = 0
        self.resumed_at: int | None = None
        self.failed_check = False   # a check of the fault that made this session failed
        self._log = open(log_path, "a")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            self._log.write(line)
            self._log.flush()
            found = STEP.search(line)
            if found:
                self.step = int(found.group(1).replace(",", ""))
            resumed = re.search(r"resumed from .* at step ([\d,]+)", line)
            if resumed:
                self.resumed_at = int(resumed.group(1).replace(",", ""))

    def workers(self) -> list[int]:
        """The actor-learner processes (the test process, at nice 10, left out)."""
        return [pid for pid in actor_learner_pids(self.proc.pid) if _nice(pid) != 10]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int | None:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(5)
        self.ended = time.time()
        return code

    def episodes(self) -> int:
        counts = [int(m.group(1)) for line in self.lines if (m := EPISODES.search(line))]
        return counts[-1] if counts else 0

    def restarts(self) -> int:
        return sum("restarting it" in line for line in self.lines)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def tester(self) -> int | None:
        """The test process's pid (the fork server's child at nice 10), or None."""
        found = [pid for pid in actor_learner_pids(self.proc.pid) if _nice(pid) == 10]
        return found[0] if found else None


def stepping(trainer: Trainer, timeout: float) -> bool:
    """The trainer is alive and its progress line shows new steps within ``timeout``."""
    seen, deadline = trainer.step, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not trainer.alive():
            return False
        if trainer.step > seen and trainer.step > 0:
            return True
        time.sleep(0.5)
    return False


def restarted(trainer: Trainer, before: int, timeout: float) -> bool:
    """The trainer has restarted an actor-learner since it had ``before`` restarts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trainer.restarts() > before:
            return True
        time.sleep(0.5)
    return False


def _nice(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[16])
    except (OSError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out = args.out or tempfile.mkdtemp(prefix="chaos-")
        self.token = uuid.uuid4().hex
        self.checkpoints = os.path.join(self.out, "checkpoints")
        self.summary = os.path.join(self.out, "summary")
        self.log = os.path.join(self.out, "trainer.log")
        self.rng = random.Random(args.seed)
        self.sessions: list[Trainer] = []
        self.clean: list[Trainer] = []   # sessions that ended with SIGTERM: complete records
        self.injected: dict[str, int] = {name: 0 for name in FAULTS}
        self.survived: dict[str, int] = {name: 0 for name in FAULTS}
        self.lost_steps: list[int] = []
        self.notes: list[str] = []
        self.pids: set[int] = set()
        self.actions = {"kill_worker": self.kill_worker, "stop_worker": self.stop_worker,
                        "sigterm_resume": self.sigterm_resume,
                        "kill_parent_resume": self.kill_parent_resume,
                        "corrupt_checkpoint_resume": self.corrupt_checkpoint_resume,
                        "stop_forkserver": self.stop_forkserver, "kill_tester": self.kill_tester,
                        "remove_folders": self.remove_folders,
                        "sigquit_group_resume": self.sigquit_group_resume,
                        "kill_forkserver_resume": self.kill_forkserver_resume,
                        "kill_tracker_and_parent_resume": self.kill_tracker_and_parent_resume}

    def flags(self, resume: bool) -> list[str]:
        a = self.args
        flags = [a.game, "--env", a.env, "-n", str(a.workers), "--seed", str(a.seed),
                 "--max_global_steps", "1000000000", "--checkpoint_interval",
                 str(a.checkpoint_interval), "--keep_checkpoints", "5", "--stall_timeout",
                 str(a.stall_timeout), "--max_restarts", "100000", "--checkpoint_dir",
                 self.checkpoints, "--summary_dir", self.summary, "--eval_interval",
                 str(a.eval_interval)]
        return flags + (["--resume"] if resume else [])

    def start(self, resume: bool) -> Trainer:
        trainer = Trainer(self.flags(resume), self.token, self.log)
        self.sessions.append(trainer)
        self.pids.add(trainer.proc.pid)
        return trainer

    def note(self, text: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {text}"
        self.notes.append(line)
        print(line, flush=True)

    # ------------------------------------------------------------------ faults
    def kill_worker(self, trainer: Trainer) -> Trainer:
        workers = trainer.workers()
        if workers:
            os.kill(self.rng.choice(workers), signal.SIGKILL)
        return trainer

    def stop_worker(self, trainer: Trainer) -> Trainer:
        workers = trainer.workers()
        if workers:
            os.kill(self.rng.choice(workers), signal.SIGSTOP)
            time.sleep(self.args.stall_timeout + 2)
        return trainer

    def _stop(self, trainer: Trainer) -> bool:
        trainer.proc.send_signal(signal.SIGTERM)
        code = trainer.wait(60)
        if code != 143:
            self.note(f"SIGTERM ended the trainer with {code}, not 143")
            return False
        self.clean.append(trainer)
        return True

    def _resume(self, before: int) -> Trainer:
        trainer = self.start(resume=True)
        deadline = time.monotonic() + 60
        while trainer.resumed_at is None and trainer.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if trainer.resumed_at is not None:
            self.lost_steps.append(max(0, before - trainer.resumed_at))
        return trainer

    def sigterm_resume(self, trainer: Trainer) -> Trainer:
        before = trainer.step
        if not self._stop(trainer):
            return self.start(resume=True)
        return self._resume(before)

    def kill_parent_resume(self, trainer: Trainer) -> Trainer:
        before = trainer.step
        trainer.proc.kill()
        trainer.wait(10)
        deadline = time.monotonic() + 20   # its workers notice and exit by themselves
        while set(processes_with_token(self.token)) - {os.getpid()} and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        return self._resume(before)

    def corrupt_checkpoint_resume(self, trainer: Trainer) -> Trainer:
        if not self._stop(trainer):
            return self.start(resume=True)
        # the resume below goes back to the checkpoint before this session's last one, so its
        # later episodes are cut from episodes.csv on purpose: not a session to count rows of
        self.clean.remove(trainer)
        before = trainer.step
        newest = sorted(glob.glob(os.path.join(self.checkpoints, "checkpoint-*.npz")))[-1]
        with open(newest, "r+b") as f:
            f.truncate(os.path.getsize(newest) // 2)
        refused = subprocess.run([sys.executable, "-m", "algorithms", *self.flags(True)],
                                 cwd=ROOT, capture_output=True, text=True,
                                 env=dict(os.environ, RUN_TOKEN=self.token))
        one_line = refused.returncode == 2 and refused.stderr.count("\n") == 1 and \
            "corrupt or truncated" in refused.stderr
        if not one_line:
            self.note(f"a truncated checkpoint gave exit {refused.returncode}: "
                      f"{refused.stderr.strip()[:300]}")
        os.unlink(newest)
        resumed = self._resume(before)
        resumed.failed_check = not one_line
        return resumed

    def stop_forkserver(self, trainer: Trainer) -> Trainer:
        server = forkserver_pid(trainer.proc.pid)
        if server is not None:
            os.kill(server, signal.SIGSTOP)
            time.sleep(3)
            if process_state(server) == "T":
                self.note("the fork server is still stopped 3 s later")
                trainer.failed_check = True
        return trainer

    def kill_tester(self, trainer: Trainer) -> Trainer:
        tester = trainer.tester()
        if tester is None:
            self.note("no test process to kill")
            trainer.failed_check = True
        else:
            before = sum("test process" in line and "restart" in line for line in trainer.lines)
            os.kill(tester, signal.SIGKILL)
            deadline = time.monotonic() + self.args.recovery
            while trainer.tester() in (None, tester) and time.monotonic() < deadline:
                time.sleep(0.5)
            if trainer.tester() in (None, tester):
                self.note(f"the test process was not restarted ({before} restarts before)")
                trainer.failed_check = True
        return trainer

    def remove_folders(self, trainer: Trainer) -> Trainer:
        import shutil
        runs = glob.glob(os.path.join(self.summary, "*", "a3c", "*"))
        run_dir = max(runs, key=os.path.getmtime) if runs else None
        for folder in filter(None, (run_dir, self.checkpoints)):
            shutil.rmtree(folder, ignore_errors=True)
        deadline = time.monotonic() + self.args.recovery
        while not (glob.glob(os.path.join(self.checkpoints, "checkpoint-*.npz"))
                   and (run_dir is None or os.path.exists(os.path.join(run_dir,
                                                                       "episodes.csv")))):
            if time.monotonic() > deadline or not trainer.alive():
                self.note("the removed folders were not made again")
                trainer.failed_check = True
                break
            time.sleep(0.5)
        return trainer

    def sigquit_group_resume(self, trainer: Trainer) -> Trainer:
        before = trainer.step
        os.killpg(trainer.proc.pid, signal.SIGQUIT)
        code = trainer.wait(60)
        if code != 131:
            self.note(f"SIGQUIT to the group ended the trainer with {code}, not 131")
            resumed = self.start(resume=True)
            resumed.failed_check = True
            return resumed
        self.clean.append(trainer)
        return self._resume(before)

    def kill_forkserver_resume(self, trainer: Trainer) -> Trainer:
        before = trainer.step
        server = forkserver_pid(trainer.proc.pid)
        if server is not None:
            os.kill(server, signal.SIGKILL)
        code = trainer.wait(120)
        named = trainer.said("the fork server of the actor-learners") and code == 1
        if not named:
            self.note(f"a killed fork server ended the trainer with {code}:\n"
                      + "".join(trainer.lines[-4:]))
        resumed = self._resume(before)
        resumed.failed_check = not named
        return resumed

    def kill_tracker_and_parent_resume(self, trainer: Trainer) -> Trainer:
        before = trainer.step
        trackers = [pid for pid in children(trainer.proc.pid)
                    if b"resource_tracker" in _cmdline(pid)]
        for pid in trackers:
            os.kill(pid, signal.SIGKILL)
        trainer.proc.kill()
        trainer.wait(10)
        deadline = time.monotonic() + 20
        while set(processes_with_token(self.token)) - {os.getpid()} and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        resumed = self._resume(before)
        stepping(resumed, self.args.recovery)
        removed = resumed.said("shared-memory segment(s)")
        if not removed:
            self.note("the resumed run did not remove the killed run's shared memory")
        resumed.failed_check = not removed
        return resumed

    # ------------------------------------------------------------------ run
    def run(self) -> dict:
        a = self.args
        os.makedirs(self.out, exist_ok=True)
        print(f"chaos soak: {a.game}, {a.workers} actor-learners, {a.minutes} min, a fault "
              f"every {a.period} s; output in {self.out}", flush=True)
        trainer = self.start(resume=False)
        if not stepping(trainer, a.recovery):
            raise SystemExit("the trainer never started stepping: " + "".join(trainer.lines[-5:]))
        end = time.monotonic() + 60 * a.minutes
        index = 0
        while time.monotonic() + a.period < end:
            time.sleep(a.period)
            name = a.faults[index % len(a.faults)]
            index += 1
            self.injected[name] += 1
            self.note(f"fault {index}: {name} at step {trainer.step:,}")
            restarts = trainer.restarts()
            trainer.failed_check = False   # a check of an earlier fault is no longer news
            trainer = self.actions[name](trainer)
            ok = stepping(trainer, a.recovery) and not trainer.failed_check
            if name in ("kill_worker", "stop_worker"):   # the victim itself is back
                ok = ok and restarted(trainer, restarts, a.recovery)
            self.survived[name] += ok
            if not ok:
                self.note(f"fault {index}: {name} NOT survived:\n" + "".join(trainer.lines[-8:]))
                if not trainer.alive():
                    trainer = self.start(resume=True)
                    stepping(trainer, a.recovery)
        self._stop(trainer)
        return self.report()

    def report(self) -> dict:
        time.sleep(3)
        leftovers = sorted(set(processes_with_token(self.token)) - {os.getpid()})
        shm = [n for n in os.listdir("/dev/shm")
               if any(n.startswith(f"asyncrl_{pid}_") for pid in self.pids)] \
            if os.path.isdir("/dev/shm") else []
        runs = glob.glob(os.path.join(self.summary, "*", "a3c", "*", "episodes.csv"))
        rows: list[list[str]] = []
        for path in runs:
            with open(path, newline="") as f:
                rows += list(csv.reader(f))[1:]
        keys = [tuple(r) for r in rows]
        duplicates = len(keys) - len(set(keys))
        sessions = []
        for trainer in self.clean:
            window = [r for r in rows if trainer.started <= float(r[2]) <= (trainer.ended or 0)]
            sessions.append({"reported": trainer.episodes(), "in_csv": len(window)})
        mismatched = sum(s["reported"] != s["in_csv"] for s in sessions)
        result = {
            "game": self.args.game, "workers": self.args.workers, "minutes": self.args.minutes,
            "period_s": self.args.period, "checkpoint_interval": self.args.checkpoint_interval,
            "final_step": self.sessions[-1].step, "sessions": len(self.sessions),
            "faults_injected": sum(self.injected.values()),
            "faults_survived": sum(self.survived.values()),
            "by_fault": {name: f"{self.survived[name]}/{self.injected[name]}" for name in FAULTS},
            "worker_restarts": sum(t.restarts() for t in self.sessions),
            "steps_lost_to_rollbacks": self.lost_steps,
            "max_rollback_over_interval": max(self.lost_steps, default=0)
            / self.args.checkpoint_interval,
            "episodes_csv_rows": len(rows), "runs": len(runs), "duplicate_rows": duplicates,
            "clean_sessions_checked": len(sessions), "sessions_with_missing_rows": mismatched,
            "leftover_processes": leftovers, "leftover_shm": shm, "out": self.out,
        }
        with open(os.path.join(self.out, "chaos.json"), "w") as f:
            json.dump(dict(result, notes=self.notes), f, indent=2)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--period", type=float, default=60.0, help="seconds between faults")
    parser.add_argument("--game", default="CartPole-v1")
    parser.add_argument("--env", default="GYM")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint_interval", type=int, default=5000)
    parser.add_argument("--stall_timeout", type=float, default=15.0)
    parser.add_argument("--eval_interval", type=int, default=5000,
                        help="the test process's interval, in global steps")
    parser.add_argument("--recovery", type=float, default=120.0,
                        help="seconds a fault's recovery may take")
    parser.add_argument("--out", default=None, help="folder for the run (default: a new one)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help="the cycle of faults, comma-separated (default: all, in order)")
    args = parser.parse_args()
    args.faults = args.faults.split(",")
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(sorted(unknown))}; known: {', '.join(FAULTS)}")
    result = Soak(args).run()
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print("\nreproduce: python -m benchmarks.chaos " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
