"""n-step returns and advantages: pure numpy functions, tested against hand-computed values."""
from __future__ import annotations

import numpy as np


def n_step_returns(rewards: np.ndarray, terminals: np.ndarray, bootstrap: float,
                   gamma: float) -> np.ndarray:
    """Forward-view n-step returns of one segment, computed backwards.

    ``R_t = r_t + gamma * R_{t+1}`` with ``R_T = bootstrap`` (the value of the state after the
    segment), and the sum cut at terminal states: where ``terminals[t]`` is true, step ``t`` ended
    the episode, so ``R_t = r_t``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    terminals = np.asarray(terminals, dtype=bool)
    returns = np.empty(len(rewards), dtype=np.float32)
    running = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        if terminals[t]:
            running = 0.0
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def advantages(returns: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A(s_t, a_t) = R_t - V(s_t)."""
    return np.asarray(returns, np.float32) - np.asarray(values, np.float32)


class RewardTransform:
    """The paper clips rewards to [-1, 1]; ``rescale`` divides by the largest |reward| seen so far.

    Rescaling keeps the relative sizes of rewards within a game that clipping erases, and
    bounds them by 1 all the same.
    """

    def __init__(self, rescale: bool):
        self.rescale = rescale
        self.max_abs = 0.0

    def __call__(self, reward: float) -> float:
        if not self.rescale:
            return min(1.0, max(-1.0, reward))
        magnitude = abs(reward)
        if magnitude > self.max_abs:
            self.max_abs = magnitude
        return reward / self.max_abs if self.max_abs > 0 else 0.0
