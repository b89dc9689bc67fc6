"""A window that shows a game screen (``-v 1/2``), drawn with SDL through pygame.

Each window is drawn by a small process of its own (``python -m algorithms.display``, no
TensorFlow in it). Its feeder (an actor-learner, or the evaluation) writes each screen into
memory both share and sends one byte on a pipe; the window draws it and answers one byte. An X
display that hangs up ends that process alone (Xlib ends the process that loses its display:
"XIO: fatal IO error"); the feeder says so in one line and goes on without its window. Nothing
the feeder does with the window can wait on it for long: a token always fits the pipe, and an
evaluation waits at most ANSWER_TIMEOUT for an answer.

SDL draws over any X display, a forwarded one in a container included. OpenCV's Qt window was
tried first and stayed black in 8 of 28 starts under Xvfb (a known fault of the opencv-python
wheels' bundled Qt), so it is not used.
"""
from __future__ import annotations

import mmap
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
ANSWER_TIMEOUT = 10.0   # s an evaluation waits for its window to draw a screen
# The bytes on the pipes: a screen is ready in the shared memory; it was drawn; the user closed
# the window.
READY, DRAWN, CLOSED = b"s", b".", b"x"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_offscreen = False   # draw_offscreen set SDL's dummy video driver in this process


def draw_offscreen() -> None:
    """SDL's dummy drivers for this process, which draws screens off-screen only (pygame, for
    Gymnasium's classic control and Box2D tasks): no X connection to lose (Xlib would end the
    process when the display hangs up), and no sound. A video driver the user chose is kept,
    and windows' processes get it back. (MuJoCo's renderer is not SDL: with GLFW it still opens
    an X connection of its own.)"""
    global _offscreen
    if "SDL_VIDEODRIVER" not in os.environ:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        _offscreen = True
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def is_rgb(screen) -> bool:
    """Whether ``screen`` is an RGB image: uint8, height x width x 3."""
    return isinstance(screen, np.ndarray) and screen.ndim == 3 and screen.shape[2] == 3 \
        and screen.dtype == np.uint8


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
        self._pixels: np.ndarray | None = None   # the screen in the shared memory
        self._answers = select.poll()
        self._drawing = False   # a screen was sent and its answer has not come yet
        self._errors = None     # the window process's stderr, a temporary file
        self.closed = False

    def due(self) -> bool:
        """Whether ``show`` would draw now: callers skip fetching a screen it would drop."""
        if self.closed:
            return False
        if self.realtime:
            return True
        return time.monotonic() - self._last >= self.interval \
            and (not self._drawing or self._answered(0.0))

    def show(self, rgb: np.ndarray) -> None:
        """Draws an RGB screen (or skips it, see the class)."""
        if not self.due():
            return
        if not is_rgb(rgb):
            self.close()
            self.warn(f"the window {self.title!r} is closed: the screen is not an RGB image "
                      f"of uint8 ({getattr(rgb, 'shape', None)}, {getattr(rgb, 'dtype', None)})")
            return
        if self._viewer is None and not self._open(rgb.shape):
            return
        if self._drawing and not self._answered(ANSWER_TIMEOUT):   # realtime: the last one
            if not self.closed:   # it is hung: no grace
                self._lost(f"it drew nothing for {ANSWER_TIMEOUT:.0f} s", grace=0.0)
            return
        if rgb.shape != self._pixels.shape:
            self._lost(f"the screen changed size from {self._pixels.shape} to {rgb.shape}")
            return
        now = time.monotonic()
        if now - self._last < self.interval:   # realtime: wait for the frame's time
            time.sleep(self.interval - (now - self._last))
            now = time.monotonic()
        self._last = now
        self._pixels[...] = rgb
        try:
            self._viewer.stdin.write(READY)
        except (BrokenPipeError, ValueError):   # its process has ended
            self._lost()
            return
        self._drawing = True

    def close(self) -> None:
        """Closes the window and waits for its process (a moment; then it is killed)."""
        errors = self._end()
        if errors is not None:
            errors.close()

    def _end(self, grace: float = 5.0):
        """Closes the window, killing its process if it has not ended ``grace`` s later; its
        stderr (a file), or None."""
        self.closed = True
        viewer, self._viewer = self._viewer, None
        self._pixels = None
        if viewer is None:
            return None
        for stream in (viewer.stdin, viewer.stdout):
            stream.close()
        try:
            viewer.wait(grace)
        except subprocess.TimeoutExpired:
            viewer.kill()
            viewer.wait()
        return self._errors

    def _open(self, shape: tuple[int, ...]) -> bool:
        """Starts the window's process; False (the window closed, and why said) if it cannot."""
        from .run.procs import children_hold_group_signals
        height, width = shape[:2]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]),
                   SDL_VIDEO_X11_WMCLASS="algorithms")
        if _offscreen:
            env.pop("SDL_VIDEODRIVER", None)
        try:
            frame = os.memfd_create("window") if hasattr(os, "memfd_create") \
                else os.dup(tempfile.TemporaryFile().fileno())
            try:
                os.ftruncate(frame, height * width * 3)
                shared = mmap.mmap(frame, height * width * 3)
                self._errors = tempfile.TemporaryFile()
                # The group's stop signals are held until the window's process ignores them.
                with children_hold_group_signals():
                    self._viewer = subprocess.Popen(
                        [sys.executable, "-m", "algorithms.display", self.title, str(self.slot),
                         str(height), str(width), str(frame), str(os.getpid())],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors,
                        bufsize=0, pass_fds=(frame,), env=env, cwd=_ROOT)
            finally:
                os.close(frame)
        except OSError as error:
            self.closed = True
            if self._errors is not None:
                self._errors.close()
            self.warn(f"the window {self.title!r} cannot open ({error}); going on without it")
            return False
        self._pixels = np.ndarray((height, width, 3), np.uint8, buffer=shared)
        self._answers.register(self._viewer.stdout, select.POLLIN)
        return True

    def _answered(self, timeout: float) -> bool:
        """Whether the window drew the last screen within ``timeout`` s; if the user closed it,
        or its process ended, meanwhile, the window is closed."""
        if not self._answers.poll(timeout * 1000):
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

    def _lost(self, reason: str | None = None, grace: float = 5.0) -> None:
        """The window's process ended, or is given up: the window is closed, and the reason
        said in one line (nothing if the user closed the window)."""
        if reason is None and self._answers.poll(0) \
                and os.read(self._viewer.stdout.fileno(), 1) == CLOSED:
            self.close()
            return
        errors = self._end(grace)
        if reason is None:
            reason = self._why(errors)
        errors.close()
        self.warn(f"the window {self.title!r} is gone ({reason}); going on without it")

    @staticmethod
    def _why(errors) -> str:
        """Why the window's process ended: the display that hung up, or its last line."""
        from .checks import check_display
        from .errors import UserError
        display = os.environ.get("DISPLAY", "")
        errors.seek(0)
        lines = [line.strip() for line in
                 errors.read().decode(errors="replace").strip().splitlines()]
        if any(line.startswith("XIO:") for line in lines):
            return f"the X display {display!r} hung up"
        try:
            check_display(display)
        except UserError:
            return f"the X display {display!r} hung up"
        return lines[-1] if lines else "its process ended"


def serve(title: str, slot: int, height: int, width: int, frame: int, feeder: int) -> int:
    """The window's process: draws the screen in the shared memory ``frame`` each time stdin
    says it is ready, answering DRAWN on stdout, until stdin ends; CLOSED if the user closes the
    window."""
    from .run.procs import die_with_parent, ignore_group_signals
    # Its feeder decides when it ends (stdin's end, or the feeder's death); the stop signals to
    # the process group are the feeder's to act upon.
    die_with_parent()
    if os.getppid() != feeder:
        return 0
    ignore_group_signals()
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.dup(sys.stdout.fileno())   # the answers alone; anything printed goes to stderr
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    pixels = np.ndarray((height, width, 3), np.uint8,
                        buffer=mmap.mmap(frame, height * width * 3, prot=mmap.PROT_READ))
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
    stdin = select.poll()
    stdin.register(sys.stdin.fileno(), select.POLLIN)
    try:
        while True:
            ready = stdin.poll(50)
            if any(event.type == pygame.QUIT for event in pygame.event.get()):
                os.write(answers, CLOSED)
                return 0
            if not ready:
                continue
            if os.read(sys.stdin.fileno(), 1) != READY:   # the feeder closed the window, or ended
                return 0
            pygame.surfarray.blit_array(screen, np.swapaxes(pixels, 0, 1))
            pygame.transform.scale(screen, size, surface)
            pygame.display.flip()
            os.write(answers, DRAWN)
    except BrokenPipeError:   # the feeder has ended
        return 0
    finally:
        pygame.display.quit()


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], *map(int, sys.argv[2:7])))
