"""Shared test helpers: running the real CLI, finding its processes, a virtual screen.

The package is importable as ``algorithms`` through pytest's ``pythonpath`` setting
(``pyproject.toml``); nothing here edits ``sys.path``."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from algorithms.run.procs import (actor_learner_pids, children, forkserver_pid,  # noqa: F401
                                  processes_with_env)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALGORITHMS = os.path.join(ROOT, "algorithms")


def processes_with_token(token: str) -> list[int]:
    """PIDs of live processes started by a test with RUN_TOKEN=token in their environment."""
    return processes_with_env("RUN_TOKEN", token)


def readme_commands(algorithm: str) -> list[list[str]]:
    """The commands of the README's algorithm-table row ``algorithm``, as the arguments after
    ``python main.py``. The learning tests run them as written, adding only a seed, ``--quiet``
    and their own folders, so that the table's claims are what the tests see."""
    with open(os.path.join(ROOT, "README.md")) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[0] == algorithm:
                commands = re.findall(r"`python main\.py ([^`]+)`", cells[1])
                assert commands, f"README.md: the row {algorithm!r} names no command"
                return [command.split() for command in commands]
    raise AssertionError(f"README.md's algorithm table has no row {algorithm!r}")


def flag_value(args: list[str], flag: str) -> str:
    """The value given to ``flag`` in an argument list."""
    return args[args.index(flag) + 1]


def shm_segments(pid: int) -> list[str]:
    return [name for name in os.listdir("/dev/shm") if name.startswith(f"asyncrl_{pid}_")]


class CliRun:
    """A finished run of ``python algorithms/main.py ...`` in a real process."""

    def __init__(self, args: list[str], timeout: float, cwd: str | None = None,
                 env: dict[str, str] | None = None):
        self.cwd = cwd = cwd or ROOT
        self.token = uuid.uuid4().hex
        env = dict(os.environ, **(env or {}), RUN_TOKEN=self.token, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, os.path.join(ALGORITHMS, "main.py"), *args],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            raise AssertionError(
                f"timed out after {timeout}s:\n{self.stdout}\n{self.stderr}") from None
        self.returncode = self.proc.returncode

    def checkpoints(self) -> list[str]:
        """Checkpoint files named in the output (``checkpoint: PATH``), in order."""
        return [line.split("checkpoint: ", 1)[1].split(" (")[0]
                for line in self.stdout.splitlines() if "checkpoint: " in line]

    def run_dir(self) -> str:
        return run_dir_in(self.stdout, self.stderr)



def run_dir_in(out: str, err: str = "") -> str:
    """The run folder a run's output names (``run directory: PATH``)."""
    for line in out.splitlines():
        if line.startswith("run directory: "):
            return line.split(": ", 1)[1].strip()
    raise AssertionError(f"no run directory printed:\n{out}\n{err}")

@pytest.fixture
def run_cli(tmp_path_factory):
    """Run the CLI; by default in a fresh folder of its own, so that the default checkpoint
    folder (``checkpoints/<game>/<alg_type>/``, relative to it) belongs to this run."""
    def run(args: list[str], timeout: float, cwd: str | None = None,
            env: dict[str, str] | None = None) -> CliRun:
        return CliRun(args, timeout, cwd or str(tmp_path_factory.mktemp("cwd")), env)
    return run


def start_x_server() -> tuple[subprocess.Popen, str]:
    """A virtual X screen (Xvfb) of 1280x1024 on a display number nobody uses: (the server,
    its DISPLAY)."""
    missing = [tool for tool in ("Xvfb", "xwd", "xwininfo") if shutil.which(tool) is None]
    assert not missing, f"{missing} not installed: apt-get install xvfb x11-apps x11-utils " \
                        "(.ci/run does)"
    number = next(n for n in range(90, 200) if not os.path.exists(f"/tmp/.X11-unix/X{n}")
                  and not os.path.exists(f"/tmp/.X{n}-lock"))
    server = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x1024x24",
                               "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.exists(f"/tmp/.X11-unix/X{number}"):
        assert server.poll() is None, f"Xvfb failed: {server.stderr.read().decode()}"
        assert time.monotonic() < deadline, "Xvfb did not start within 20 s"
        time.sleep(0.1)
    return server, f":{number}"


@pytest.fixture(scope="session")
def display():
    """A virtual X screen shared by the tests that draw windows; its DISPLAY."""
    server, name = start_x_server()
    yield name
    server.terminate()
    server.wait(10)


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MB tmpfs mounted on a fresh folder, when this process may mount one (root); else
    None, and the test injects the same failure in-process."""
    import subprocess
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
