"""algorithms/plot.py on a hand-written run: --ylim sets the return axis, a bad one is one line."""
import csv
import os

import pytest

from algorithms import plot


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "episodes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actor", "global_step", "wall_time", "return", "length", "env"])
        writer.writerows((k % 2, 100 * k, 1000.0 + k, 374.0 if k == 7 else k % 5, 50, 0)
                         for k in range(1, 41))
    return str(run)


def test_ylim_sets_the_return_axis(run_dir, tmp_path, monkeypatch):
    import matplotlib.figure
    limits = []
    savefig = matplotlib.figure.Figure.savefig

    def record(fig, *args, **kwargs):   # the real savefig, after noting each axis's range
        limits.extend(ax.get_ylim() for ax in fig.axes)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    png = tmp_path / "curve.png"
    assert plot.main([run_dir, "-o", str(png), "--ylim", "0,40"]) == 0
    assert os.path.getsize(png) > 0 and limits == [(0.0, 40.0), (0.0, 40.0)]
    limits.clear()
    assert plot.main([run_dir, "-o", str(png)]) == 0
    assert all(high >= 374 for _, high in limits)   # by default the outlier is in view


@pytest.mark.parametrize("value", ["40,0", "0", "a,b", "1,2,3"])
def test_a_bad_ylim_is_one_line(run_dir, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        plot.main([run_dir, "-o", str(tmp_path / "x.png"), "--ylim", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"plot.py: error: argument --ylim: {value!r} is not LOW,HIGH with LOW < HIGH " \
                  "(e.g. 0,40)"
    assert not os.path.exists(tmp_path / "x.png")


def test_max_step_keeps_the_episodes_up_to_it(run_dir, tmp_path, capsys):
    """--max_step 2000: the 20 episodes that ended by step 2,000 of the 40 (one every 100);
    a budget before the first episode is one line."""
    png = tmp_path / "curve.png"
    assert plot.main([run_dir, "-o", str(png), "--max_step", "2000"]) == 0
    assert "(1 run, 20 episodes)" in capsys.readouterr().out
    run = plot.up_to(plot.read_run(run_dir), 2000)
    assert run["step"].max() == 2000 and len(run["elapsed"]) == 20
    assert plot.main([run_dir, "-o", str(png), "--max_step", "50"]) == 2
    assert "has no episode by step 50" in capsys.readouterr().err
