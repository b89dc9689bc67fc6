"""Exploration of the value-based methods (paper, Section 5.1 and supplementary 8).

Each actor-learner draws its final epsilon once from {0.1, 0.01, 0.5} with probabilities
{0.4, 0.3, 0.3}; epsilon falls linearly from 1 to it over the first ``annealing_steps`` global
agent steps and stays there. Different final values across learners are part of what makes
asynchronous exploration diverse.
"""
from __future__ import annotations

import numpy as np

FINAL_EPSILONS = (0.1, 0.01, 0.5)
FINAL_EPSILON_PROBABILITIES = (0.4, 0.3, 0.3)


def sample_final_epsilons(rng: np.random.Generator, count: int) -> list[float]:
    """One final epsilon per actor-learner."""
    return [float(e) for e in rng.choice(FINAL_EPSILONS, size=count, p=FINAL_EPSILON_PROBABILITIES)]


def epsilon(global_step: int, final: float, annealing_steps: int) -> float:
    """Linear from 1 at step 0 to ``final`` at ``annealing_steps``, constant afterwards."""
    fraction = min(1.0, global_step / annealing_steps)
    return 1.0 + fraction * (final - 1.0)
