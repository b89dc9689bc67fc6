"""A window that shows a game screen (``-v 1/2``), drawn with SDL through pygame.

Each window is drawn by a small process of its own (``python -m algorithms.display``, no
TensorFlow in it), fed the screens through a pipe. An X display that hangs up ends that process
alone (Xlib exits the process that loses its connection: "XIO: fatal IO error"); the
actor-learner or the evaluation that fed it says so in one line and goes on without its window.
It also keeps SDL apart from TensorFlow's process.

SDL draws over any X display, a forwarded one in a container included. OpenCV's Qt window was
tried first and stayed black in 8 of 28 starts under Xvfb (a known fault of the opencv-python
wheels' bundled Qt), so it is not used.
"""
from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

SIZE = 640          # a screen is scaled up by a whole factor to about this many pixels
COLUMNS = 4         # -v 1 tiles the actor-learners' windows in rows of this many
ANSWER_TIMEOUT = 10.0   # s an evaluation waits for its window to take a screen
DRAWN, CLOSED = b".", b"x"   # the window's answers: a screen drawn; the user closed the window
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_offscreen = False   # draw_offscreen set SDL's dummy drivers in this process


def draw_offscreen() -> None:
    """SDL's dummy drivers for this process, which draws screens off-screen alone (pygame, for
    Gymnasium's classic control): no X connection to lose (Xlib would end the process when the
    display hangs up) and no sound. A driver the user chose is kept, and windows' processes get
    the user's drivers."""
    global _offscreen
    if "SDL_VIDEODRIVER" not in os.environ:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        _offscreen = True
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


class Window:
    """One game's window, titled ``title``, opened at the first screen it is shown; ``slot``
    places it in the tiling of ``-v 1``.

    ``fps`` caps how often it is drawn. While training, frames beyond the cap, or that come
    while the window still draws the last one, are skipped, so the shown actor-learner loses
    little speed; with ``realtime`` (evaluation) ``show`` waits instead, so that the game plays
    at its own speed. If the window's process ends (the user closed the window, or the X
    display hung up), the window is ``closed``; ``warn`` is told why, unless the user closed it.
    """

    def __init__(self, title: str, slot: int = 0, fps: float = 60.0, realtime: bool = False,
                 warn: Callable[[str], None] = _warn):
        self.title, self.slot = title, slot
        self.interval = 1.0 / fps
        self.realtime = realtime
        self.warn = warn
        self._last = -float("inf")
        self._viewer: subprocess.Popen | None = None
        self._shape: tuple[int, ...] = ()
        self._drawing = False   # a screen was sent and its answer has not come yet
        self._errors = None     # the window process's stderr, a temporary file
        self._code = None       # its exit code, once it has ended
        self.closed = False

    def due(self) -> bool:
        """Whether ``show`` would draw now: callers skip fetching a screen it would drop."""
        if self.closed:
            return False
        if self.realtime:
            return True
        return (not self._drawing or self._answered(0.0)) \
            and time.monotonic() - self._last >= self.interval

    def show(self, rgb: np.ndarray) -> None:
        """Draws an RGB screen (or skips it, see the class)."""
        if not self.due():
            return
        if self._viewer is None:
            self._open(rgb.shape)
        if self._drawing and not self._answered(ANSWER_TIMEOUT):   # realtime: the last one
            if not self.closed:
                self._lost(f"it took no screen for {ANSWER_TIMEOUT:.0f} s")
            return
        if self.closed:
            return
        now = time.monotonic()
        if now - self._last < self.interval:   # realtime: wait for the frame's time
            time.sleep(self.interval - (now - self._last))
            now = time.monotonic()
        self._last = now
        if rgb.shape != self._shape:
            self._lost(f"the screen changed size from {self._shape} to {rgb.shape}")
            return
        try:
            self._viewer.stdin.write(np.ascontiguousarray(rgb, np.uint8).data)
            self._viewer.stdin.flush()
        except (BrokenPipeError, ValueError):   # its process has ended
            self._lost()
            return
        self._drawing = True

    def close(self) -> None:
        """Closes the window and waits for its process (a moment; then it is killed)."""
        errors = self._end()
        if errors is not None:
            errors.close()

    def _end(self):
        """Closes the window; its process's stderr (a file), once it has ended, or None."""
        self.closed = True
        viewer, self._viewer = self._viewer, None
        if viewer is None:
            return None
        for stream in (viewer.stdin, viewer.stdout):
            try:
                stream.close()
            except OSError:   # a pipe whose other end has gone
                pass
        try:
            viewer.wait(5)
        except subprocess.TimeoutExpired:
            viewer.kill()
            viewer.wait()
        self._code = viewer.returncode
        return self._errors

    def _open(self, shape: tuple[int, ...]) -> None:
        self._shape = tuple(shape)
        height, width = shape[:2]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]),
                   SDL_VIDEO_X11_WMCLASS="algorithms")
        if _offscreen:
            del env["SDL_VIDEODRIVER"]
        self._errors = tempfile.TemporaryFile()
        self._viewer = subprocess.Popen(
            [sys.executable, "-m", "algorithms.display", self.title, str(self.slot),
             str(height), str(width)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, env=env,
            cwd=_ROOT)
        try:   # room in the pipe for a whole screen (up to 1 MB, Linux), so a write never waits
            fcntl.fcntl(self._viewer.stdin, fcntl.F_SETPIPE_SZ, 1 << 20)
        except (AttributeError, OSError):
            pass

    def _answered(self, timeout: float) -> bool:
        """Whether the window took the last screen within ``timeout`` s; if its process ended
        meanwhile, the window is closed."""
        ready, _, _ = select.select([self._viewer.stdout], [], [], timeout)
        if not ready:
            return False
        answer = os.read(self._viewer.stdout.fileno(), 1)
        if answer == DRAWN:
            self._drawing = False
            return True
        if answer == CLOSED:   # the user closed it: the run goes on without it
            self.close()
        else:
            self._lost()
        return False

    def _lost(self, reason: str | None = None) -> None:
        """The window's process ended, or is given up: the window is closed, and the reason
        said in one line."""
        errors = self._end()
        if reason is None:
            reason = self._why(errors)
        errors.close()
        self.warn(f"the window {self.title!r} is gone ({reason}); going on without it")

    def _why(self, errors) -> str:
        """Why the window's process ended: a display that no longer answers, or its last line
        on stderr."""
        from .checks import check_display
        from .errors import UserError
        display = os.environ.get("DISPLAY", "")
        try:
            check_display(display)
        except UserError:
            return f"the X display {display!r} hung up"
        errors.seek(0)
        lines = errors.read().decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else f"its process ended with code {self._code}"


def _read(fd: int, count: int) -> bytes:
    """``count`` bytes from ``fd``, or fewer at its end."""
    chunks, left = [], count
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def serve(title: str, slot: int, height: int, width: int) -> int:
    """The window's process: draws each screen read from stdin, answering DRAWN on stdout,
    until stdin ends; CLOSED if the user closes the window."""
    # Its feeder decides when it ends (stdin's end); signals to the process group are theirs.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1):
        signal.signal(signum, signal.SIG_IGN)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    # A plain software framebuffer (with OpenGL, Mesa's llvmpipe bound its LLVM calls to
    # TensorFlow's copy of LLVM in the same process and crashed; cheaper here all the same).
    os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
    scale = max(1, SIZE // max(height, width))
    size = (width * scale, height * scale)
    os.environ.setdefault("SDL_VIDEO_WINDOW_POS",
                          f"{(slot % COLUMNS) * size[0]},{(slot // COLUMNS) * size[1]}")
    import pygame
    try:
        pygame.display.init()
        surface = pygame.display.set_mode(size)
    except pygame.error as error:
        print(f"SDL cannot open a window: {error}", file=sys.stderr)
        return 1
    pygame.display.set_caption(title)
    screen = pygame.Surface((width, height))
    frame_bytes = height * width * 3
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    try:
        while True:
            ready, _, _ = select.select([stdin], [], [], 0.05)
            if any(event.type == pygame.QUIT for event in pygame.event.get()):
                os.write(stdout, CLOSED)
                return 0
            if not ready:
                continue
            data = _read(stdin, frame_bytes)
            if len(data) < frame_bytes:   # the feeder closed the window, or has ended
                return 0
            rgb = np.frombuffer(data, np.uint8).reshape(height, width, 3)
            pygame.surfarray.blit_array(screen, np.swapaxes(rgb, 0, 1))
            pygame.transform.scale(screen, size, surface)
            pygame.display.flip()
            os.write(stdout, DRAWN)
    except BrokenPipeError:   # the feeder has ended
        return 0
    finally:
        pygame.display.quit()


if __name__ == "__main__":
    title, slot, height, width = sys.argv[1:5]
    sys.exit(serve(title, int(slot), int(height), int(width)))
