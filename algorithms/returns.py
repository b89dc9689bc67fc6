"""n-step returns, value targets and reward clipping: pure numpy, tested against hand-computed
values."""
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


def one_step_targets(rewards: np.ndarray, terminals: np.ndarray, next_values: np.ndarray,
                     gamma: float) -> np.ndarray:
    """One-step targets ``y_t = r_t + gamma * v(s_{t+1})``, or ``r_t`` where step t was terminal.

    ``next_values`` is max_a Q_target(s_{t+1}, a) for Q-learning and Q_target(s_{t+1}, a_{t+1})
    for Sarsa.
    """
    rewards = np.asarray(rewards, np.float32)
    alive = ~np.asarray(terminals, bool)
    return (rewards + np.float32(gamma) * alive * np.asarray(next_values, np.float32)).astype(
        np.float32)


def value_targets(rewards: np.ndarray, terminals: np.ndarray, q_next: np.ndarray | None,
                  next_actions: np.ndarray, gamma: float, sarsa: bool,
                  one_step: bool) -> np.ndarray:
    """Targets of the four value-based methods for one segment of n steps.

    ``q_next`` holds target-network Q-values: for one-step methods one row per step,
    Q_target(s_{t+1}, .), with ``next_actions[t]`` = a_{t+1}; for n-step methods one row,
    Q_target(s_n, .), with ``next_actions[0]`` = a_n, or None when s_n is terminal. Q-learning
    bootstraps from the max over actions, Sarsa from the action actually taken next.
    """
    def bootstrap_values(q: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return q[np.arange(len(q)), actions] if sarsa else q.max(axis=1)

    if one_step:
        return one_step_targets(rewards, terminals, bootstrap_values(q_next, next_actions), gamma)
    bootstrap = 0.0 if q_next is None else float(bootstrap_values(q_next, next_actions)[0])
    return n_step_returns(rewards, terminals, bootstrap, gamma)


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
