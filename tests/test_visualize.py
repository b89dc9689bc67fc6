"""-v 1/2 for real: training and evaluation draw the game in X windows on a virtual screen
(Xvfb), read back with xwd and xwininfo, the X clients a user's desktop would have."""
import ctypes
import ctypes.util
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ALGORITHMS, ROOT, start_x_server

# Each test here trains or runs real processes for many seconds.
pytestmark = pytest.mark.slow


PONG_BACKGROUND = (144, 72, 17)
WINDOW = re.compile(r'"(?P<title>[^"]+)": \(.*?\)\s+(?P<w>\d+)x(?P<h>\d+)\S*'   # xwininfo -tree
                    r'\s+\+(?P<x>-?\d+)\+(?P<y>-?\d+)')


def read_xwd(data: bytes) -> np.ndarray:
    """An X window dump (``xwd``, ZPixmap, 24 or 32 bits per pixel) as an RGB array."""
    header = struct.unpack(">25I", data[:100])
    header_size, width, height, byte_order = header[0], header[4], header[5], header[7]
    bits_per_pixel, bytes_per_line, colours = header[11], header[12], header[19]
    assert bits_per_pixel in (24, 32), f"unexpected xwd format: {bits_per_pixel} bits per pixel"
    n = bits_per_pixel // 8
    rows = np.frombuffer(data, np.uint8, count=bytes_per_line * height,
                         offset=header_size + 12 * colours).reshape(height, bytes_per_line)
    pixels = rows[:, :width * n].reshape(height, width, n)
    return pixels[..., [2, 1, 0]] if byte_order == 0 else pixels[..., n - 3:]


def window_tree(display: str) -> str:
    """``xwininfo -root -tree``, tried again when a window went while it was read (BadWindow)."""
    for _ in range(20):
        done = subprocess.run(["xwininfo", "-root", "-tree"], capture_output=True, text=True,
                              env=dict(os.environ, DISPLAY=display))
        if done.returncode == 0:
            return done.stdout
        time.sleep(0.1)
    raise AssertionError(f"xwininfo failed: {done.stderr}")


def windows(display: str) -> dict[str, tuple[int, int, int, int]]:
    """Title -> (x, y, width, height) of every named window on the screen."""
    tree = window_tree(display)
    return {m["title"]: (int(m["x"]), int(m["y"]), int(m["w"]), int(m["h"]))
            for m in WINDOW.finditer(tree)}


def close_window(display: str, title: str) -> None:
    """Asks the titled window to close, as a window manager's close button does: an X client
    message WM_DELETE_WINDOW (what SDL turns into its QUIT event)."""
    tree = window_tree(display)
    [window] = re.findall(rf'(0x[0-9a-f]+) "{re.escape(title)}"', tree)

    class ClientMessage(ctypes.Structure):   # XClientMessageEvent, padded to an XEvent
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                    ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                    ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
                    ("pad", ctypes.c_long * 24)]

    xlib = ctypes.CDLL(ctypes.util.find_library("X11"))
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                                ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = xlib.XOpenDisplay(display.encode())
    assert connection, f"cannot open {display}"
    event = ClientMessage(type=33, send_event=1, display=connection, window=int(window, 16),
                          message_type=xlib.XInternAtom(connection, b"WM_PROTOCOLS", 0),
                          format=32)
    event.data[0] = xlib.XInternAtom(connection, b"WM_DELETE_WINDOW", 0)
    assert xlib.XSendEvent(connection, int(window, 16), 0, 0, ctypes.byref(event))
    xlib.XCloseDisplay(connection)   # flushes the request


def screenshot(display: str) -> np.ndarray:
    dump = subprocess.run(["xwd", "-root", "-silent"], env=dict(os.environ, DISPLAY=display),
                          capture_output=True, check=True).stdout
    return read_xwd(dump)


def looks_like_pong(image: np.ndarray) -> bool:
    """Mostly Pong's brown court, with its paddles, ball, walls and score in other colours."""
    background = np.all(image == PONG_BACKGROUND, axis=-1).mean()
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    return background > 0.6 and colours >= 4


def looks_like_cartpole(image: np.ndarray) -> bool:
    """Gymnasium's CartPole drawing: white, a black cart and a tan pole (202, 152, 101)."""
    def share(colour):
        return np.all(image == colour, axis=-1).mean()
    return share((255, 255, 255)) > 0.8 and share((0, 0, 0)) > 0.004 \
        and share((202, 152, 101)) > 0.002


def start(args: list[str], display: str, tmp_path) -> subprocess.Popen:
    # SDL's dummy driver, if an in-process evaluation of another test left it in this
    # process's environment, would draw the windows nowhere
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    return subprocess.Popen([sys.executable, os.path.join(ALGORITHMS, "main.py"), *args],
                            cwd=tmp_path, env=dict(env, DISPLAY=display),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_game(proc, display: str, titles: list[str], timeout: float = 90,
                  looks_right=looks_like_pong):
    """Polls until every titled window shows a Pong screen (or what ``looks_right`` accepts);
    (windows, screenshot)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended first:\n{proc.communicate()}"
        shown = windows(display)
        if all(t in shown for t in titles):
            image = screenshot(display)
            crops = [image[y:y + h, x:x + w] for x, y, w, h in (shown[t] for t in titles)]
            if all(looks_right(c) for c in crops):
                return shown, image
        time.sleep(0.5)
    proc.kill()
    raise AssertionError(f"no game screen in windows {titles} within {timeout} s; "
                         f"windows: {windows(display)}\n{proc.communicate()}")


def interrupt(proc) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    return out, err


@pytest.mark.parametrize("visualize", [1, 2])
def test_training_windows_show_the_game(display, tmp_path, visualize):
    """-v 1: a window per actor-learner, side by side; -v 2: actor 0's only. Each is titled
    with the game and actor, and holds Pong's 160x210 screen scaled 3x to 480x630."""
    proc = start(["pong", "-n", "2", "-v", str(visualize), "--max_global_steps", "1000000",
                  "--summary_dir", str(tmp_path / "runs"), "--quiet"], display, tmp_path)
    titles = ["pong - actor 0", "pong - actor 1"][:3 - visualize]
    shown, image = wait_for_game(proc, display, titles)
    time.sleep(1)   # a window that was going to open has had its time
    assert sorted(t for t in windows(display) if "actor" in t) == titles
    for title in titles:
        assert shown[title][2:] == (480, 630), shown
    if visualize == 1:   # tiled, not stacked
        assert shown["pong - actor 1"][0] - shown["pong - actor 0"][0] == 480
        left, right = (image[0:630, x:x + 480] for x in (0, 480))
        assert not np.array_equal(left, right), "the two actors show the same screen"
    interrupt(proc)
    assert not [t for t in windows(display) if "actor" in t], "a window outlived its run"


def test_gymnasium_task_window(display, tmp_path):
    """-v with a Gymnasium task: the environment's own drawing (CartPole's 600x400 frame). A
    window its user closes goes without a word, and training goes on."""
    proc = start(["CartPole-v1", "--env", "GYM", "-n", "2", "-v", "2", "--max_global_steps",
                  "1000000", "--summary_dir", str(tmp_path / "runs"), "--quiet"], display, tmp_path)
    shown, _ = wait_for_game(proc, display, ["CartPole-v1 - actor 0"],
                             looks_right=looks_like_cartpole)
    assert shown["CartPole-v1 - actor 0"][2:] == (600, 400)
    # closed by its user: the window goes, quietly, and the run goes on
    close_window(display, "CartPole-v1 - actor 0")
    deadline = time.monotonic() + 30
    while "CartPole-v1 - actor 0" in windows(display):
        assert time.monotonic() < deadline, "the closed window stayed"
        time.sleep(0.2)
    time.sleep(2)
    assert proc.poll() is None, proc.communicate()
    _, err = interrupt(proc)
    assert "window" not in err and "Traceback" not in err, err


def test_evaluation_window_shows_the_game(display, tmp_path):
    """--mode eval -v 1 plays in one window at the game's own speed (15 agent steps/s)."""
    trained = subprocess.run([sys.executable, os.path.join(ALGORITHMS, "main.py"), "pong",
                              "-n", "1", "--max_global_steps", "200", "--quiet",
                              "--summary_dir", str(tmp_path / "runs")],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert trained.returncode == 0, trained.stderr
    proc = start(["pong", "--mode", "eval", "-v", "1", "--eval_episodes", "1"], display, tmp_path)
    shown, _ = wait_for_game(proc, display, ["pong - evaluation"])
    assert shown["pong - evaluation"][2:] == (480, 630)
    _, err = interrupt(proc)
    assert "interrupted" in err and "Traceback" not in err
    assert not list((tmp_path / "checkpoints").rglob("eval-*.json")), "an interrupted " \
        "evaluation must not write a result"


def test_an_x_display_that_hangs_up_ends_the_windows_and_the_work_goes_on(tmp_path):
    """The X server ends while -v 1 windows are open, in a training and then in an evaluation.
    Each window's process ends (Xlib ends a process whose display is gone), one line per window
    names the display, and the training and the evaluation go on without windows: no
    actor-learner restarted, the training stopped by Ctrl-C as any other (its checkpoint
    written), the evaluation to its end with every score."""
    def hang_up(args, titles, stop):
        server, display = start_x_server()
        try:
            proc = start(args, display, tmp_path)
            wait_for_game(proc, display, titles, looks_right=looks_like_cartpole)
            server.terminate()
            server.wait(10)
            if stop:
                time.sleep(5)   # the work goes on without its windows
                assert proc.poll() is None, proc.communicate()
                proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=300)
        finally:
            server.kill()
        assert proc.returncode == (130 if stop else 0), err
        assert "Traceback" not in err and "XIO" not in err and "restarting" not in err, err
        gone = sorted(line for line in err.splitlines() if "is gone" in line)
        return gone, display

    gone, display = hang_up(
        ["CartPole-v1", "--env", "GYM", "-n", "2", "-v", "1", "--seed", "3",
         "--max_global_steps", "10000000", "--summary_dir", str(tmp_path / "runs"), "--quiet"],
        ["CartPole-v1 - actor 0", "CartPole-v1 - actor 1"], stop=True)
    assert gone == [f"warning: actor-learner {actor}: the window 'CartPole-v1 - actor {actor}' "
                    f"is gone (the X display '{display}' hung up); going on without it"
                    for actor in (0, 1)]
    [final] = (tmp_path / "checkpoints" / "CartPole-v1" / "a3c").glob("checkpoint-*.npz")

    gone, display = hang_up(["CartPole-v1", "--env", "GYM", "--mode", "eval", "-v", "1",
                             "--eval_episodes", "10"], ["CartPole-v1 - evaluation"], stop=False)
    assert gone == [f"warning: the window 'CartPole-v1 - evaluation' is gone (the X display "
                    f"'{display}' hung up); going on without it"]
    result = json.loads(next(final.parent.glob("eval-*.json")).read_text())
    assert result["episodes"] == 10


def test_window_draws_at_most_fps_times_a_second_and_never_holds_its_feeder(display):
    """Training windows skip frames beyond their rate (so the actor does not fetch screens it
    would drop); evaluation windows wait instead and take every frame. A window whose process
    is stopped holds neither (a screen larger than a pipe's buffer included): training skips
    its frames, an evaluation gives the window up after ANSWER_TIMEOUT. A screen that is not
    RGB closes the window with one line. Run in a process of its own, as the actor-learners
    do."""
    probe = """
import os, signal, time, numpy as np
from algorithms import display
from algorithms.display import Window
said = []
screen = np.zeros((210, 160, 3), np.uint8)
training = Window("rate test", fps=10, warn=said.append)
assert training.due()
shown = time.monotonic()
training.show(screen)
assert not training.due()
while not training.due():   # its process starts, draws the screen and answers
    assert time.monotonic() - shown < 30 and not training.closed
    time.sleep(0.01)
assert time.monotonic() - shown >= 0.1
shown = time.monotonic()
training.show(screen)   # drawn at once: its process is up
while not training.due():
    assert time.monotonic() - shown < 30
    time.sleep(0.001)
assert time.monotonic() - shown >= 0.1
training.close()
assert not training.due()
evaluation = Window("rate test", fps=10, realtime=True, warn=said.append)
start = time.monotonic()
for _ in range(4):
    assert evaluation.due()
    evaluation.show(screen)
assert time.monotonic() - start >= 0.29   # three waits of 0.1 s after the first frame
evaluation.close()
assert said == []

# a window whose process is stopped never holds its feeder, whatever the screen's size
# (1.3 MB here, more than a pipe holds)
big = np.zeros((700, 600, 3), np.uint8)
stalled = Window("stalled", fps=1000, realtime=True, warn=said.append)
stalled.show(big)
stalled.show(big)   # waits for the first to be drawn
display.ANSWER_TIMEOUT = 1.0
os.kill(stalled._viewer.pid, signal.SIGSTOP)
start = time.monotonic()
stalled.show(big)
stalled.show(big)   # no answer to the last: given up after ANSWER_TIMEOUT
assert 1.0 <= time.monotonic() - start < 20 and stalled.closed
assert said == ["the window 'stalled' is gone (it drew nothing for 1 s); going on without it"]
training = Window("stalled", fps=1000, warn=said.append)
training.show(big)
os.kill(training._viewer.pid, signal.SIGSTOP)
start = time.monotonic()
for _ in range(1000):
    training.show(big)   # skipped: the last is not drawn yet
assert time.monotonic() - start < 20 and not training.closed
training.close()   # killed after a moment

# a screen that is not RGB closes the window, said once
gray = Window("gray", warn=said.append)
gray.show(np.zeros((210, 160), np.uint8))
assert gray.closed and said[-1].startswith("the window 'gray' is closed: the screen is not")
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                            text=True, env=dict(env, DISPLAY=display), timeout=120)

    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
