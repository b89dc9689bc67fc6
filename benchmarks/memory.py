"""Memory of a training run: unique (USS) and proportional (PSS) memory per actor-learner.

Starts ``python -m algorithms pong -n N`` for each N, lets it train for ``--seconds`` after every
actor-learner has started, reads ``/proc/<pid>/smaps_rollup`` of the parent, of the fork server
that forked the workers and of each worker, then stops the run with SIGINT. USS (private clean +
private dirty) is what a process alone holds; PSS shares each shared page among the processes
that map it, so the PSS of all the run's processes adds up to the run's real footprint.
Reproduce with:

    python -m benchmarks.memory --workers 2,16 --seconds 60
    python -m benchmarks.memory --workers 64 --seconds 60 --envs_per_actor 1
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

from algorithms.run.procs import actor_learner_pids, forkserver_pid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rollup(pid: int) -> dict[str, int]:
    """Fields of /proc/<pid>/smaps_rollup, in kB."""
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields


def mem_available_mb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(workers: int, seconds: float, envs: int) -> dict:
    scratch = tempfile.mkdtemp(prefix="memory_benchmark_")
    before = mem_available_mb()
    proc = subprocess.Popen(
        [sys.executable, "-m", "algorithms", "pong", "-n", str(workers), "--envs_per_actor",
         str(envs), "--max_global_steps", "1000000000", "--summary_dir", scratch,
         "--checkpoint_dir", os.path.join(scratch, "ck"), "--checkpoint_interval", "1000000000",
         "--stall_timeout", "3600"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = None
    try:
        for line in proc.stdout:   # the progress line appears once every worker is ready
            if line.startswith("["):
                started = time.monotonic()
                break
        if started is None:
            raise SystemExit(f"the run with -n {workers} ended before training")
        time.sleep(seconds)
        pids = actor_learner_pids(proc.pid)
        per_worker = [rollup(p) for p in pids]
        parent = rollup(proc.pid)
        server = rollup(forkserver_pid(proc.pid))
        during = mem_available_mb()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
    uss = [w.get("Private_Clean", 0) + w.get("Private_Dirty", 0) for w in per_worker]
    pss = [w.get("Pss", 0) for w in per_worker]
    return {"workers": len(pids), "uss_mb": sum(uss) / len(uss) / 1024,
            "pss_mb": sum(pss) / len(pss) / 1024, "rss_mb": sum(w["Rss"] for w in per_worker)
            / len(per_worker) / 1024, "parent_pss_mb": parent["Pss"] / 1024,
            "server_pss_mb": server["Pss"] / 1024,
            "total_pss_mb": (sum(pss) + parent["Pss"] + server["Pss"]) / 1024,
            "used_mb": before - during}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="2,16", help="comma-separated numbers of workers")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="training time before the measurement")
    parser.add_argument("--envs_per_actor", type=int, default=1)
    args = parser.parse_args()
    rows = [(n, measure(n, args.seconds, args.envs_per_actor))
            for n in (int(w) for w in args.workers.split(","))]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB; Pong, "
          f"A3C with the default settings (UNIVERSE_BGSTD network), --envs_per_actor "
          f"{args.envs_per_actor}, after {args.seconds:.0f} s")
    print(f"{'-n':>4} {'USS/worker':>11} {'PSS/worker':>11} {'RSS/worker':>11} "
          f"{'parent PSS':>11} {'server PSS':>11} {'total PSS':>10} {'MemAvailable drop':>18}"
          "  (MB)")
    for n, r in rows:
        print(f"{n:>4} {r['uss_mb']:11.0f} {r['pss_mb']:11.0f} {r['rss_mb']:11.0f} "
              f"{r['parent_pss_mb']:11.0f} {r['server_pss_mb']:11.0f} {r['total_pss_mb']:10.0f}"
              f" {r['used_mb']:18.0f}")
    print("\nreproduce: python -m benchmarks.memory " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
