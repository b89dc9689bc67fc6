"""The trained agents shipped under help/agents/ still play as they did: a change to the
preprocessing, the networks or the checkpoint format that breaks a trained agent fails here."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ALGORITHMS, ROOT

pytestmark = pytest.mark.slow   # each plays whole games in a process of its own

AGENTS = os.path.join(ROOT, "help", "agents")


def _scores(game: str, agent_file: str, tmp_path, *flags: str) -> list[float]:
    """The scores of ``main.py GAME --mode eval`` of a shipped agent, as the README plays it."""
    agent = os.path.join(AGENTS, agent_file)
    assert os.path.getsize(agent) < 1 << 20   # weights only: well under 1 MB
    result = tmp_path / "eval.json"
    done = subprocess.run([sys.executable, os.path.join(ALGORITHMS, "main.py"), game,
                           "--mode", "eval", "--checkpoint", agent, "--eval_file", str(result),
                           *flags],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    scores = json.loads(result.read_text())["scores"]
    print(done.stdout)   # shown when an assertion on the scores fails
    return scores


def test_the_shipped_pong_agent_wins_a_greedy_game(tmp_path):
    """One greedy game of the shipped Pong agent, as the README's command plays it: +15 or
    more (21 points to the opponent's 6 or fewer)."""
    scores = _scores("pong", "pong_a3c.npz", tmp_path, "--greedy", "--eval_episodes", "1")
    assert len(scores) == 1 and scores[0] >= 15


def test_the_shipped_breakout_agent_clears_bricks(tmp_path):
    """Three games of the shipped Breakout agent, its actions sampled from its policy as the
    README's command plays them (a greedy Breakout policy can wait forever to serve): a mean
    of 100 or more (a random policy scores about 1.7; the agent about 300)."""
    scores = _scores("breakout", "breakout_a3c.npz", tmp_path, "--eval_episodes", "3")
    assert len(scores) == 3 and sum(scores) / 3 >= 100


def test_the_shipped_beam_rider_agent_clears_sectors(tmp_path):
    """Two games of the shipped Beam Rider agent, its actions sampled from its policy, on the
    salient 42×42 frames it was trained on: a mean of 1,000 or more (random play scores 363.9
    in Mnih et al. 2015; the agent 3,583.5 ± 1,506.1 over 30 games, none under 1,092). With the
    Boxing agent, one of the two shipped agents on salient frames: a change to them fails
    here."""
    scores = _scores("beam_rider", "beam_rider_a3c.npz", tmp_path, "--eval_episodes", "2")
    assert len(scores) == 2 and sum(scores) / 2 >= 1000


def test_the_shipped_boxing_agent_wins_its_bouts(tmp_path):
    """Two games of the shipped Boxing agent, its actions sampled from its policy: a mean of 60
    or more (random play scores 0.1 in Mnih et al. 2015; the agent 97.7 ± 3.4 over 30 games,
    none under 87, 20 of them knockouts: 100 points end the bout)."""
    scores = _scores("boxing", "boxing_a3c.npz", tmp_path, "--eval_episodes", "2")
    assert len(scores) == 2 and sum(scores) / 2 >= 60
