"""Our OpenCV Atari preprocessing against a scikit-image reference, on real frames.

The original project preprocessed Atari screens with scikit-image: ``rgb2gray`` of the RGB screen,
then ``resize`` to 84x84. Our fast path (``AtariEnvironment._observe``) takes ALE's own grayscale
screens, the pixel-wise max of the last two raw frames of an action repeat, and shrinks that with
``cv2.resize(..., interpolation=cv2.INTER_AREA)``; the newest result is the last channel of the
stack. Here real games (Pong, and Breakout for finer detail) are played with seeded random actions
through ``AtariEnvironment.step``; a thin wrapper around ``env.ale`` records the RGB and grayscale
screens of every raw frame, so the reference is computed from the very two frames that went into
the observation's newest channel: ``resize(max(rgb2gray(prev), rgb2gray(last)), (84, 84),
anti_aliasing=True) * 255`` (order 1, i.e. bilinear, after a Gaussian pre-filter; anti-aliasing is
what ``resize`` does by default when it shrinks, written out here).

The two paths are not expected to agree exactly, for two reasons, which the tests separate:

* Luminance. ALE's grayscale is the luminance of the NTSC palette colour (a table in the emulator);
  ``rgb2gray`` is 0.2125 R + 0.7154 G + 0.0721 B of the RGB screen. At full resolution the two
  differ by up to 12 grey levels (of 255) per pixel, and by 1-3 on average: Pong's large brown
  field alone moves its mean by about 3 (``test_ale_grayscale_is_the_luminance_of_the_rgb_screen``).
* Interpolation. ``INTER_AREA`` averages whole source pixels over each target pixel (a box
  filter); scikit-image blurs with a Gaussian and samples bilinearly. On the same grayscale input
  they differ by under 1 grey level on average, but by up to ~20 on single pixels at sharp edges
  (``test_resize_matches_scikit_image``).

``test_observation_matches_the_scikit_image_reference`` compares the whole path (luminance and
interpolation together), so its tolerance is the sum of both effects plus margin; the resize-only
test is much tighter and is the one that catches the subtler mistakes (bilinear instead of area
interpolation, a lost contrast factor). Each test also shows that plausible mistakes (a
transposed or flipped screen, a one-pixel shift, the wrong end of the frame stack, no max-pooling,
nearest-neighbour or bilinear interpolation, a [0, 1] scale, swapped colour channels) break its
tolerance, so a pass means something. The numbers in the comments were measured on these seeded
frames (ale-py 0.12.1, opencv-python 5.0.0.93, scikit-image 0.26.0); the tolerances leave margin
above them and stay below every mistake's numbers.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.transform import resize

from algorithms.environments import ATARI_SCREEN, AtariEnvironment, resolve_rom

GAMES = ("pong", "breakout")
STEPS = 400          # agent steps per game (1,600 raw frames)
EVERY = 40           # compare every 40th observation: 10 frames a game


@dataclass(frozen=True)
class Tolerance:
    mad: float       # mean absolute difference, grey levels of 255
    max_abs: float   # largest difference at any one pixel
    corr: float      # Pearson correlation, at least


@dataclass(frozen=True)
class Frame:
    observation: np.ndarray   # (84, 84, 4) uint8, what AtariEnvironment.step returned
    rgb: tuple                # RGB screens of the last two raw frames, (210, 160, 3) uint8
    gray: tuple               # ALE grayscale screens of the same two frames, (210, 160) uint8


class RecordingALE:
    """``env.ale`` as it was, but remembering the screens of the last two raw frames."""

    def __init__(self, ale):
        self._ale = ale
        self.rgb = collections.deque(maxlen=2)
        self.gray = collections.deque(maxlen=2)

    def act(self, action):
        reward = self._ale.act(action)
        self.rgb.append(self._ale.getScreenRGB())
        self.gray.append(self._ale.getScreenGrayscale())
        return reward

    def __getattr__(self, name):
        return getattr(self._ale, name)


@pytest.fixture(scope="module", params=GAMES)
def frames(request) -> list[Frame]:
    rom, _ = resolve_rom(request.param, None)
    env = AtariEnvironment(rom, seed=0)
    env.ale = recorder = RecordingALE(env.ale)
    rng = np.random.default_rng(0)
    env.reset()
    found = []
    for step in range(1, STEPS + 1):
        observation, _, done, _ = env.step(int(rng.integers(env.num_actions)))
        if done:
            env.reset()
        elif step % EVERY == 0:
            found.append(Frame(observation, tuple(recorder.rgb), tuple(recorder.gray)))
    assert len(found) >= 8
    return found


def scikit_image_reference(rgb_screens) -> np.ndarray:
    """The scikit-image path: grayscale each raw frame, max-pool the two, resize to 84x84."""
    grey = np.maximum(*(rgb2gray(screen) for screen in rgb_screens))
    return resize(grey, (ATARI_SCREEN, ATARI_SCREEN), anti_aliasing=True) * 255.0


def scikit_image_resize(gray_screens) -> np.ndarray:
    """scikit-image's resize alone, of the same max-pooled ALE grayscale our path shrinks."""
    grey = np.maximum(*gray_screens) / 255.0
    return resize(grey, (ATARI_SCREEN, ATARI_SCREEN), anti_aliasing=True) * 255.0


def cv2_resize(gray_screens, interpolation) -> np.ndarray:
    return cv2.resize(np.maximum(*gray_screens), (ATARI_SCREEN, ATARI_SCREEN),
                      interpolation=interpolation)


def differences(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    ours = np.asarray(ours, dtype=np.float64)
    assert ours.shape == reference.shape
    diff = np.abs(ours - reference)
    return float(diff.mean()), float(diff.max()), \
        float(np.corrcoef(ours.ravel(), reference.ravel())[0, 1])


def within(ours: np.ndarray, reference: np.ndarray, tol: Tolerance) -> bool:
    mad, max_abs, corr = differences(ours, reference)
    return mad <= tol.mad and max_abs <= tol.max_abs and corr >= tol.corr


def assert_all_within(pairs, tol: Tolerance) -> None:
    for i, (ours, reference) in enumerate(pairs):
        mad, max_abs, corr = differences(ours, reference)
        assert within(ours, reference, tol), \
            f"frame {i}: mean |diff| {mad:.3f}, max |diff| {max_abs:.1f}, correlation " \
            f"{corr:.5f}; tolerance {tol}"


def assert_caught(pairs, tol: Tolerance, mistake: str, everywhere: bool = True) -> None:
    """A mistake must break the tolerance on every frame, or, for one that only shows where
    something moved between two raw frames (``everywhere=False``), on at least one."""
    passed = [within(ours, reference, tol) for ours, reference in pairs]
    caught = not any(passed) if everywhere else not all(passed)
    assert caught, f"{mistake} passes the tolerance {tol} on {sum(passed)} of {len(passed)} " \
        "frames: the test could not tell"


# Whole path: our observation's newest channel vs rgb2gray -> max -> resize of the same frames.
# Measured: Pong mean |diff| 3.41-3.47, max 18.7, correlation >= 0.99931 (most of it is the
# palette's luminance, see below); Breakout 1.62-1.67, max 22.5, >= 0.99787.
END_TO_END = Tolerance(mad=4.5, max_abs=32.0, corr=0.995)


def test_observation_matches_the_scikit_image_reference(frames):
    newest = [f.observation[..., -1] for f in frames]
    references = [scikit_image_reference(f.rgb) for f in frames]
    assert_all_within(zip(newest, references), END_TO_END)

    def caught(mutants, mistake, everywhere=True):
        assert_caught(list(zip(mutants, references)), END_TO_END, mistake, everywhere)

    # the oldest channel (a stack kept newest-first): max |diff| 72-149
    caught([f.observation[..., 0] for f in frames], "the oldest frame of the stack")
    # the last raw frame alone, no max-pooling: max |diff| 98-108 on frames where the ball moved
    caught([cv2_resize((f.gray[-1],) * 2, cv2.INTER_AREA) for f in frames], "no max-pooling",
           everywhere=False)
    caught([o.T for o in newest], "a transposed screen")                  # mad 36-64
    caught([o[::-1] for o in newest], "an upside-down screen")            # mad 39-59
    caught([np.roll(o, 1, axis=1) for o in newest],
           "a one-pixel shift")                           # max |diff| >= 68, corr <= 0.994
    caught([cv2_resize(f.gray, cv2.INTER_NEAREST) for f in frames],
           "nearest-neighbour interpolation")             # max |diff| >= 81, corr <= 0.973
    caught([o / 255.0 for o in newest], "pixels scaled to [0, 1]")        # mad 40-103


# Interpolation alone: both libraries shrink the same max-pooled ALE grayscale.
# Measured: Pong mean |diff| 0.27-0.30, max 24.0, correlation >= 0.99966; Breakout 0.70-0.75,
# max 19.8, >= 0.99898. Bilinear (INTER_LINEAR) instead: Pong 0.71-0.75, max 35.8, 0.99734;
# Breakout 1.62-1.73, max 42.7, 0.99590.
RESIZE_ONLY = Tolerance(mad=1.0, max_abs=30.0, corr=0.9985)


def test_resize_matches_scikit_image(frames):
    newest = [f.observation[..., -1] for f in frames]
    references = [scikit_image_resize(f.gray) for f in frames]
    assert_all_within(zip(newest, references), RESIZE_ONLY)

    def caught(mutants, mistake):
        assert_caught(list(zip(mutants, references)), RESIZE_ONLY, mistake)

    caught([cv2_resize(f.gray, cv2.INTER_LINEAR) for f in frames],
           "bilinear interpolation")                                      # corr <= 0.99748
    caught([cv2_resize(f.gray, cv2.INTER_CUBIC) for f in frames],
           "bicubic interpolation")                                       # corr <= 0.99640
    caught([o * 0.9 for o in newest], "a 10% loss of contrast")           # mad 4.3-10.6
    caught([np.roll(o, 1, axis=1) for o in newest], "a one-pixel shift")  # corr <= 0.995
    caught([cv2_resize(tuple(g[:200] for g in f.gray), cv2.INTER_AREA) for f in frames],
           "the bottom 10 rows cropped")                                  # mad 7.5-9.3


# Luminance alone, at full resolution (210x160): ALE's palette grayscale vs rgb2gray of the RGB
# screen of the same raw frame. Measured: Pong mean |diff| 3.24-3.28, max 12.2, correlation
# >= 0.99968; Breakout 1.06-1.07, max 11.0, >= 0.99884.
LUMINANCE = Tolerance(mad=4.0, max_abs=16.0, corr=0.998)


def test_ale_grayscale_is_the_luminance_of_the_rgb_screen(frames):
    pairs = [(f.gray[-1], rgb2gray(f.rgb[-1]) * 255.0) for f in frames]
    assert_all_within(pairs, LUMINANCE)
    # the grayscale of the raw frame before: max |diff| 110-153 on frames where something moved
    assert_caught([(f.gray[0], ref) for f, (_, ref) in zip(frames, pairs)], LUMINANCE,
                  "the previous raw frame", everywhere=False)
    # BGR read as RGB: mean |diff| 2.9-18.8, max 24-29
    assert_caught([(f.gray[-1], rgb2gray(f.rgb[-1][..., ::-1]) * 255.0) for f in frames],
                  LUMINANCE, "swapped colour channels")
