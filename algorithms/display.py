"""A window that shows a game screen (``-v 1/2``), drawn with SDL through pygame.

SDL draws over any X display, a forwarded one in a container included. OpenCV's Qt window was
tried first and stayed black in 8 of 28 starts under Xvfb (a known fault of the opencv-python
wheels' bundled Qt), so it is not used.
"""
from __future__ import annotations

import os
import time

import numpy as np

SIZE = 640          # a screen is scaled up by a whole factor to about this many pixels
COLUMNS = 4         # -v 1 tiles the actor-learners' windows in rows of this many


class Window:
    """One game's window, titled ``title``, opened at the first screen it is shown; ``slot``
    places it in the tiling of ``-v 1``.

    ``fps`` caps how often it is drawn. While training, frames beyond the cap are skipped, so
    the shown actor-learner loses little speed; with ``realtime`` (evaluation) ``show`` waits
    instead, so that the game plays at its own speed.
    """

    def __init__(self, title: str, slot: int = 0, fps: float = 60.0, realtime: bool = False):
        self.title, self.slot = title, slot
        self.interval = 1.0 / fps
        self.realtime = realtime
        self._last = -float("inf")
        self._pygame = None
        self.closed = False
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        # A plain software framebuffer: with OpenGL, Mesa's llvmpipe binds its LLVM calls to
        # TensorFlow's copy of LLVM in the same process and crashes (SIGSEGV in set_mode).
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")

    def _open(self, height: int, width: int) -> None:
        self.scale = max(1, SIZE // max(height, width))
        self.size = (width * self.scale, height * self.scale)
        os.environ.setdefault("SDL_VIDEO_WINDOW_POS", f"{(self.slot % COLUMNS) * self.size[0]},"
                                                      f"{(self.slot // COLUMNS) * self.size[1]}")
        import pygame
        pygame.display.init()
        self._surface = pygame.display.set_mode(self.size)
        pygame.display.set_caption(self.title)
        self._screen = pygame.Surface((width, height))
        self._pygame = pygame

    def due(self) -> bool:
        """Whether ``show`` would draw now: callers skip fetching a screen it would drop."""
        return not self.closed and (self.realtime
                                    or time.monotonic() - self._last >= self.interval)

    def show(self, rgb: np.ndarray) -> None:
        """Draws an RGB screen (or skips it, see the class)."""
        if not self.due():
            return
        if self._pygame is None:
            self._open(*rgb.shape[:2])
        now = time.monotonic()
        if now - self._last < self.interval:   # realtime: wait for the frame's time
            time.sleep(self.interval - (now - self._last))
            now = time.monotonic()
        self._last = now
        pygame = self._pygame
        if any(event.type == pygame.QUIT for event in pygame.event.get()):
            self.close()   # the user closed the window: the run goes on without it
            return
        pygame.surfarray.blit_array(self._screen, np.swapaxes(rgb, 0, 1))
        pygame.transform.scale(self._screen, self.size, self._surface)
        pygame.display.flip()

    def close(self) -> None:
        self.closed = True
        if self._pygame is not None:
            self._pygame.display.quit()
            self._pygame = None
