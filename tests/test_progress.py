"""The console progress line: the first figures a second after every actor-learner is
stepping, then one line every few seconds."""
import time

from algorithms.record import FIRST_PROGRESS_SECONDS, PROGRESS_SECONDS, Progress


def test_the_first_line_comes_a_second_after_all_learners_are_ready(capsys):
    progress = Progress(max_steps=10_000, frames_per_step=4, quiet=False, workers=2)
    progress.mark_ready(0)
    progress.maybe_print(0)
    assert capsys.readouterr().out == ""   # one learner still starting, and 5 s have not passed
    progress.mark_ready(1)
    progress.maybe_print(0)
    assert capsys.readouterr().out == ""   # all stepping, but no second of figures yet
    time.sleep(FIRST_PROGRESS_SECONDS + 0.05)
    progress.maybe_print(500)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("[  5.0%] step 500/10,000 | ")
    rate = float(line.split(" | ")[1].split()[0].replace(",", ""))
    assert 100 < rate < 500   # 500 steps over the second (or a little more) since both were ready
    progress.episode(21.0)
    progress.maybe_print(1_000)
    assert capsys.readouterr().out == ""   # the next line is PROGRESS_SECONDS later
    assert PROGRESS_SECONDS > 2 * FIRST_PROGRESS_SECONDS
    progress.maybe_print(1_000, force=True)   # the closing line is printed at once
    assert "return 21.0 (last 1 of 1)" in capsys.readouterr().out
