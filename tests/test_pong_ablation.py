"""benchmarks/pong_ablation.py's reading of a run: the steps at which the trailing mean of 20
training episodes first reaches each level, from an episodes.csv written by hand."""
import csv

from benchmarks.pong_ablation import WINDOW, curve


def test_levels_are_first_reached_where_the_trailing_mean_gets_there(tmp_path):
    run = tmp_path / "default" / "summary" / "breakout" / "a3c" / "2026-11-30_10-00-00"
    run.mkdir(parents=True)
    # 20 episodes of 2, then 20 of 8, one every 1,000 steps, written out of step order (two
    # actors): the mean of the last 20 is 2 at the 20th episode and rises by 0.3 per episode.
    returns = [2.0] * 20 + [8.0] * 20
    rows = [(k % 2, 1000 * (k + 1), 0.0, r, 100, 0) for k, r in enumerate(returns)]
    with open(run / "episodes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actor", "global_step", "wall_time", "return", "length", "env"])
        writer.writerows(rows[1::2] + rows[0::2])
    result = curve("default", str(tmp_path), (2, 3, 5, 8, 9))
    assert WINDOW == 20
    # 2: at the 20th episode (not before: a mean needs 20 episodes); 3: 2 + 0.3 k >= 3 first
    # at k = 4 (episode 24); 5: k = 10 (episode 30); 8: k = 20 (episode 40); 9: never
    assert result["reached"] == {"2": 20_000, "3": 24_000, "5": 30_000, "8": 40_000, "9": None}
    assert result["last_step"] == 40_000 and result["last_mean"] == 8.0
    assert result["episodes"] == 40 and result["run_dir"] == str(run)
