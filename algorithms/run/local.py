"""The local backend: actor-learners as processes of this machine, parameters in POSIX shared
memory (``store.SharedParameterStore``).

The processes are forked by multiprocessing's fork server, a fresh process that loaded
TensorFlow once before any runtime started (:func:`start_forkserver`): 16 actor-learners on 2
cores are ready in seconds, where 16 imports of TensorFlow took most of a minute. The parent
never imports TensorFlow (it is not fork-safe, and the parent does not need it).

Each worker talks to the parent through a pipe of its own, and counts its steps in a slot of its
own (``shared.StepCounters``): no lock or channel is shared between workers, so a worker killed at
any instant cannot block or corrupt the others. Workers are daemonic, joined with a deadline,
then terminated and killed if need be, and each one also exits by itself when it sees that the
parent is gone (``Runtime.lifeline``).
"""
from __future__ import annotations

import contextlib
import errno
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import wait
from typing import Any

from ..actor_learner import Runtime, WorkerSpec, worker_main
from ..tfsetup import ONEDNN
from ..config import Config
from ..errors import UserError
from ..record import log
from ..shared import StepCounters, StopFlag
from ..store import SharedParameterStore
from .backend import JOIN_SECONDS, KILL_SECONDS, BackendLost, Message
from .procs import (child_end, children_hold_group_signals, continue_if_stopped, process_start,
                    reason)

LOST_CONNECTION = 255   # a forkserver Popen's exit code once its connection to the server ended


class LocalBackend:
    """Processes of this machine over shared memory (``backend.Backend``)."""

    def __init__(self, config: Config, onednn: bool):
        self.config, self.onednn = config, onednn
        self.ctx = mp.get_context("forkserver")
        self.server: int | None = None

    def __enter__(self) -> "LocalBackend":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def create_store(self, num_parameters: int) -> SharedParameterStore:
        start_resource_tracker()
        try:
            self.server = start_forkserver(self.ctx, self.onednn)
            return SharedParameterStore(self.config, num_parameters, self.ctx)
        except BaseException:
            stop_forkserver()
            raise

    def workers(self, store: SharedParameterStore) -> "ProcessWorkers":
        return ProcessWorkers(store.steps, self.ctx, self.server)

    def close(self) -> None:
        stop_forkserver()


class ProcessWorkers:
    """The actor-learners as processes of this machine (forked by the fork server), each with a
    pipe of its own and a slot of its own in the shared step counters: the Supervisor's view of
    them.

    The calls of ``backend.Workers``, as ``ray.RayWorkers`` offers them for Ray actors."""

    description = "actor-learner processes"

    def __init__(self, steps: StepCounters, ctx, server: int | None = None):
        self.ctx = ctx
        self.steps = steps
        self.server = server   # the fork server's pid (start_forkserver), our child
        self._lost: str | None = None
        self._warn_lock = threading.Lock()
        self._server_continued = False   # warned of a stopped server once
        self.stop = StopFlag(ctx)
        # Only this process holds the sending end, and nothing is ever sent: the workers' end
        # reads as ended when this process is gone, however it ended.
        lifeline, self._lifeline = ctx.Pipe(duplex=False)
        self.runtime = Runtime(steps=steps, stop=self.stop, lifeline=lifeline)
        self.processes: dict[int, mp.process.BaseProcess] = {}
        self._started: dict[int, bytes | None] = {}   # each worker's start time (process_start)
        self.pipes: dict[int, Any] = {}

    def start(self, spec: WorkerSpec) -> None:
        """Start (or restart) actor-learner ``spec.actor_id``; UserError at the machine's
        limits, BackendLost if the fork server was killed."""
        actor = spec.actor_id
        reader, writer = self.ctx.Pipe(duplex=False)
        worker = self.ctx.Process(target=worker_main, args=(spec, self.runtime, writer),
                                  name="test-process" if spec.role == "tester" else
                                  f"actor-learner-{actor}", daemon=True)
        # A worker starts with GROUP_SIGNALS ignored, as the fork server it is forked from
        # (start_forkserver): a Ctrl-C or a closed terminal while it starts must not kill it.
        try:
            with self._server_watched():
                worker.start()
        except (OSError, EOFError) as err:
            # EOFError: the fork server ended instead of answering, which it does when the
            # system refuses it a process or the memory for one, and when it is killed
            reader.close()
            writer.close()
            # A server that the system refused a process or a file exits (code 1): a limit; one
            # killed by a signal (the out-of-memory killer, a stray kill) is named as such.
            lost = self.lost(timeout=2.0)
            if lost is not None and "killed by" in lost:
                raise BackendLost(f"could not start actor-learner {actor}: {lost}") from None
            if lost is None and isinstance(err, OSError) and \
                    err.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.EAGAIN):
                raise
            why = reason(err) if isinstance(err, OSError) else "the fork server ended"
            raise UserError(f"could not start actor-learner {actor} ({why}): the "
                            "machine's limits are reached; raise `ulimit -n` (open files) or "
                            "`ulimit -u` (processes), or use a smaller -n") from None
        writer.close()   # the worker holds the only sending end: its death closes the pipe
        if actor in self.pipes:
            self.pipes[actor].close()
        self.processes[actor] = worker
        self._started[actor] = process_start(worker.pid)
        self.pipes[actor] = reader

    def wait(self, actors, timeout: float) -> None:
        """Until one of ``actors`` sends a message or exits, or ``timeout`` seconds."""
        # without the fork server the sentinels are ended for good, and would never wait
        sentinels = [] if self.lost() else [self.processes[a].sentinel for a in actors]
        pipes = [self.pipes[a] for a in actors if not self.pipes[a].closed]
        if sentinels or pipes:
            wait(sentinels + pipes, timeout=timeout)
        else:
            time.sleep(timeout)

    def receive(self) -> list[Message]:
        """Every message the workers have sent so far."""
        received = []
        for pipe in list(self.pipes.values()):
            while True:
                try:
                    if pipe.closed or not pipe.poll():
                        break
                    received.append(pipe.recv())
                except (EOFError, OSError, pickle.UnpicklingError):
                    pipe.close()   # the worker is gone (possibly in the middle of a message)
                    break
        return received

    def lost(self, timeout: float = 0.0) -> str | None:
        """Why the fork server has ended, if it has (the out-of-memory killer, a stray kill),
        else None: a line that names it. ``timeout``: seconds to wait for it to have ended.

        The server is the actor-learners' parent: multiprocessing learns their ends from it,
        and without it reports every one of them as exited with :data:`LOST_CONNECTION`,
        running or not, and would start a new server (without the run's settings) for a
        restart. So once it is gone the run must stop; its actor-learners are then watched,
        and stopped, through their pids (:meth:`alive`, :meth:`stop_all`)."""
        self._continue_server()
        deadline = time.monotonic() + timeout
        while self._lost is None and self.server is not None:
            end = child_end(self.server)
            if end is not None:
                self._lost = f"the fork server of the actor-learners (pid {self.server}) {end}"
            elif time.monotonic() >= deadline:
                break
            else:
                time.sleep(0.01)
        return self._lost

    def _continue_server(self) -> None:
        """A stopped fork server (SIGSTOP, a frozen job) answers nothing: every start, end and
        join of a worker would wait for it forever. It is continued, with one warning (the
        watcher thread and the supervisor's loop may both find it stopped)."""
        if continue_if_stopped(self.server):
            with self._warn_lock:
                warned, self._server_continued = self._server_continued, True
            if not warned:
                log(f"warning: the fork server of the actor-learners (pid {self.server}) was "
                    "stopped; it was continued (SIGCONT)", file=sys.stderr)

    @contextlib.contextmanager
    def _server_watched(self):
        """While the body blocks on the fork server (a start, the joins of a stop), a thread
        continues the server whenever it is found stopped."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.2):
                self._continue_server()
        watcher = threading.Thread(target=watch, name="fork-server-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

    def alive(self, actor: int) -> bool:
        worker = self.processes[actor]
        if self.lost() is None:
            if worker.is_alive():
                return True
            # A server that dies closes its connections a moment before it can be seen to
            # have ended: a LOST_CONNECTION may be that, and then says nothing of the worker.
            if worker.exitcode != LOST_CONNECTION or self.lost(timeout=2.0) is None:
                return False
        return self._running(actor)

    def _running(self, actor: int) -> bool:
        """Whether the worker runs, by its pid (and start time, so that a reused pid is
        never taken for it)."""
        pid, started = self.processes[actor].pid, self._started.get(actor)
        return pid is not None and started is not None and process_start(pid) == started

    def exit_reason(self, actor: int) -> str | None:
        """For an actor-learner that has ended: None if it ended cleanly, else why not. Once
        the fork server is gone (:meth:`lost`), an end is only known to have happened, and is
        reported as clean: the loss itself stops the run."""
        worker = self.processes[actor]
        worker.join()
        if worker.exitcode == 0 or self.lost() is not None:
            return None
        return f"{worker.name} exited with code {worker.exitcode}"

    def _signal(self, actor: int, signum: int) -> None:
        if self._running(actor):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.processes[actor].pid, signum)

    def terminate(self, actor: int) -> None:
        if self.lost() is None:
            self.processes[actor].terminate()
        else:
            self._signal(actor, signal.SIGTERM)

    def kill(self, actor: int) -> None:
        if self.lost() is None:
            self.processes[actor].kill()
        else:
            self._signal(actor, signal.SIGKILL)

    def stop_all(self) -> None:
        """Ask, then wait, then terminate, then kill: no worker survives this call."""
        self.stop.set()
        with self._server_watched():
            self._stop_all()
        for pipe in [*self.pipes.values(), self._lifeline, self.runtime.lifeline]:
            pipe.close()

    def _stop_all(self) -> None:
        if self.lost() is None:
            deadline = time.monotonic() + JOIN_SECONDS
            workers = list(self.processes.values())
            for worker in workers:
                worker.join(max(0.0, deadline - time.monotonic()))
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                    worker.join(2.0)
                if worker.is_alive():
                    worker.kill()
                    worker.join()
            if any(worker.exitcode == LOST_CONNECTION for worker in workers):
                self.lost(timeout=2.0)   # the server may have died meanwhile
        if self.lost() is not None:
            self._stop_orphans()

    def _stop_orphans(self) -> None:
        """stop_all for actor-learners whose fork server is gone: they are nobody's children
        here, so they are polled by pid instead of joined."""
        actors = list(self.processes)
        for signum, grace in ((None, JOIN_SECONDS), (signal.SIGTERM, KILL_SECONDS),
                              (signal.SIGKILL, KILL_SECONDS)):
            if signum is not None:
                for actor in actors:
                    self._signal(actor, signum)
            deadline = time.monotonic() + grace
            while actors and time.monotonic() < deadline:
                actors = [a for a in actors if self._running(a)]
                time.sleep(0.05)
            if not actors:
                return


# The fork server listens on a Unix socket, <temporary folder>/pymp-XXXXXXXX/listener-XXXXXXXX,
# and Linux takes socket paths of at most 107 bytes.
SOCKET_PATH_MAX = 107
SOCKET_SUFFIX = len("/pymp-XXXXXXXX/listener-XXXXXXXX")
SHORT_TMP = "/tmp"


@contextlib.contextmanager
def socket_fits_tmpdir():
    """Within it, multiprocessing makes its temporary folder (where the fork server's socket
    goes) in /tmp if the temporary folder TMPDIR names is too long to hold the socket's path,
    and says so; elsewhere as usual. multiprocessing keeps the folder it made for the rest of
    the process."""
    import tempfile
    folder = tempfile.gettempdir()
    made = mp.current_process()._config.get("tempdir")   # multiprocessing's, once it made one
    if made is not None or len(os.fsencode(folder)) + SOCKET_SUFFIX <= SOCKET_PATH_MAX:
        yield
        return
    log(f"notice: the temporary folder {folder!r} is too long a path for the fork server's "
        f"socket (a Unix socket's path takes at most {SOCKET_PATH_MAX} bytes): it goes in "
        f"{SHORT_TMP}")
    saved, tempfile.tempdir = tempfile.tempdir, SHORT_TMP
    try:
        yield
    finally:
        tempfile.tempdir = saved


def start_forkserver(ctx, onednn: bool) -> int:
    """Start the fork server that forks the actor-learners, with TensorFlow loaded in it
    (``preload.py``) and the run's kernels (:func:`tfsetup.onednn_kernels`, unless the user
    set ``TF_ENABLE_ONEDNN_OPTS``), deaf to GROUP_SIGNALS, as its children are: it starts with
    them held, and ``preload`` ignores them before it loads TensorFlow.

    The server is a fresh interpreter (never a fork of this one), which has loaded TensorFlow
    but started no runtime and no thread pool when it forks: each actor-learner configures its
    own. Its ``sys.path`` does not come from this process, hence ``PYTHONPATH`` for the
    package. It lives until :func:`stop_forkserver`. Returns its pid.
    """
    from multiprocessing import forkserver
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", ONEDNN)}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (root, saved["PYTHONPATH"])))
    if saved[ONEDNN] is None:
        os.environ[ONEDNN] = "1" if onednn else "0"
    try:
        with children_hold_group_signals(), socket_fits_tmpdir():   # signals: until preload
            ctx.set_forkserver_preload([f"{__package__.rpartition('.')[0]}.preload"])
            forkserver.ensure_running()
            return forkserver._forkserver._forkserver_pid
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def stop_forkserver() -> None:
    """Stop the fork server, so that a run leaves no process behind and a later run in this
    process gets a server with its own settings. It is killed: the actor-learners are gone by
    now, and it holds nothing that needs a clean exit, while waiting for it to leave by itself
    could wait forever (it leaves once every holder of its "alive" pipe has closed it, anything a
    worker started included). multiprocessing offers no public call for this: ``_stop``, which
    then closes this process's end and reaps it, is what its own tests use."""
    from multiprocessing import forkserver
    server = forkserver._forkserver
    if server._forkserver_pid is not None:   # our child, not yet reaped: the pid is its own
        with contextlib.suppress(ProcessLookupError):
            os.kill(server._forkserver_pid, signal.SIGKILL)
    server._stop()


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (which unlinks the shared memory if this process
    is killed) deaf to GROUP_SIGNALS, as the workers are: a Ctrl-C, a closed terminal, a Ctrl-\\
    or a scheduler's warning signals the whole process group, and the tracker must outlive the
    stop. It starts with them held (:func:`procs.children_hold_group_signals`); it ignores SIGINT
    itself and lifts that block, and the others stay held there, never acted on."""
    from multiprocessing import resource_tracker
    with children_hold_group_signals():
        resource_tracker.ensure_running()
