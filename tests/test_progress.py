"""The console progress line: the first figures a second after every actor-learner is
stepping, then one line every few seconds; rates count from the moment the last learner
started, not the steps the first ones took while the others were still starting."""
import time

from algorithms.record import FIRST_PROGRESS_SECONDS, PROGRESS_SECONDS, Progress


def rate_of(line: str) -> float:
    return float(line.split(" | ")[1].split()[0].replace(",", ""))


def test_the_first_line_comes_a_second_after_all_learners_are_ready(capsys):
    progress = Progress(max_steps=100_000, frames_per_step=4, quiet=False, workers=2)
    progress.mark_ready(0, step=0)
    progress.maybe_print(0)
    assert capsys.readouterr().out == ""   # one learner still starting, and 5 s have not passed
    progress.mark_ready(1, step=20_000)    # the first one took 20,000 steps meanwhile
    progress.maybe_print(20_000)
    assert capsys.readouterr().out == ""   # all stepping, but no second of figures yet
    started = time.monotonic()
    time.sleep(FIRST_PROGRESS_SECONDS + 0.05)
    progress.maybe_print(20_500)
    elapsed = time.monotonic() - started
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("[ 20.5%] step 20,500/100,000 | ")
    # 500 steps over the time since both were ready: not 20,500 over it
    assert 500 / (elapsed + 0.05) < rate_of(line) <= 500 / FIRST_PROGRESS_SECONDS
    progress.episode(21.0)
    progress.maybe_print(21_000)
    assert capsys.readouterr().out == ""   # the next line is PROGRESS_SECONDS later
    time.sleep(0.2)
    progress.maybe_print(21_000, force=True)   # the closing line, at once: the whole run's rate
    [line] = capsys.readouterr().out.splitlines()
    assert "return 21.0 (last 1 of 1)" in line
    assert rate_of(line) < 1_000 / (FIRST_PROGRESS_SECONDS + 0.2)
    assert PROGRESS_SECONDS == 5.0
