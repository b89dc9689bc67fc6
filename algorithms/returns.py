"""n-step returns, value targets and reward clipping: pure numpy, tested against hand-computed
values."""
from __future__ import annotations

import numpy as np


def n_step_returns(rewards: np.ndarray, cuts: np.ndarray, bootstrap, gamma: float,
                   cut_values: np.ndarray | None = None) -> np.ndarray:
    """Forward-view n-step returns of one segment, computed backwards.

    ``R_t = r_t + gamma * R_{t+1}`` with ``R_T = bootstrap`` (the value of the state after the
    segment), and the sum cut where ``cuts[t]`` is true: there ``R_{t+1}`` is replaced by
    ``cut_values[t]`` (0 by default: step t was terminal, ``R_t = r_t``; the value of the last
    observation of an episode ended by a time limit).

    One environment: arrays of shape (T,) and a scalar bootstrap; K environments at once:
    (T, K) and a bootstrap of shape (K,).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    cuts = np.asarray(cuts, dtype=bool)
    values = np.zeros(rewards.shape) if cut_values is None else np.asarray(cut_values, np.float64)
    returns = np.empty(rewards.shape, dtype=np.float32)
    running = np.broadcast_to(np.asarray(bootstrap, np.float64), rewards.shape[1:])
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * np.where(cuts[t], values[t], running)
        returns[t] = running
    return returns


def one_step_targets(rewards: np.ndarray, cuts: np.ndarray, next_values: np.ndarray,
                     gamma: float, cut_values: np.ndarray | None = None) -> np.ndarray:
    """One-step targets ``y_t = r_t + gamma * v(s_{t+1})``, or ``r_t + gamma * cut_values[t]``
    (0 by default: ``r_t``) where step t cut the episode.

    ``next_values`` is max_a Q_target(s_{t+1}, a) for Q-learning and Q_target(s_{t+1}, a_{t+1})
    for Sarsa.
    """
    rewards = np.asarray(rewards, np.float32)
    cuts = np.asarray(cuts, bool)
    values = np.zeros_like(rewards) if cut_values is None else np.asarray(cut_values, np.float32)
    following = np.where(cuts, values, np.asarray(next_values, np.float32))
    return (rewards + np.float32(gamma) * following).astype(np.float32)


def value_targets(rewards: np.ndarray, cuts: np.ndarray, q_next: np.ndarray | None,
                  next_actions: np.ndarray, gamma: float, sarsa: bool,
                  one_step: bool, cut_values: np.ndarray | None = None) -> np.ndarray:
    """Targets of the four value-based methods for one segment of T steps (of K environments,
    with a trailing K axis on every array).

    ``q_next`` holds target-network Q-values: for one-step methods one row per step,
    Q_target(s_{t+1}, .), with ``next_actions[t]`` = a_{t+1}; for n-step methods one row (per
    environment), Q_target(s_T, .), with ``next_actions`` = a_T, or None when s_T is terminal.
    Q-learning bootstraps from the max over actions, Sarsa from the action actually taken next.
    """
    def bootstrap_values(q: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if sarsa:
            return np.take_along_axis(q, np.asarray(actions)[..., None], axis=-1)[..., 0]
        return q.max(axis=-1)

    if one_step:
        return one_step_targets(rewards, cuts, bootstrap_values(q_next, next_actions), gamma,
                                cut_values)
    if q_next is None:
        bootstrap = 0.0
    else:
        bootstrap = bootstrap_values(q_next, next_actions)
        if np.ndim(rewards) == 1:   # one environment: a single row
            bootstrap = float(bootstrap[0])
    return n_step_returns(rewards, cuts, bootstrap, gamma, cut_values)


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
