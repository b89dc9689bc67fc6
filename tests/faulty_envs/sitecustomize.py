"""Gymnasium environments with real faults, for tests/test_faults.py.

A test puts this folder on ``PYTHONPATH``; Python then imports this module at the start of every
process it runs (the trainer and each actor-learner), so the ids below are registered wherever
the trainer looks them up. Nothing in the trainer knows about them.

``PoisonedCartPole-v1``: CartPole-v1 whose observations are all NaN when the environment was
seeded with an even seed (actor-learner ``i`` gets ``--seed + i``: with an even ``--seed``,
actor 0 is poisoned and actor 1 is not).
"""
import gymnasium as gym
import numpy as np


class NaNObservationsForEvenSeeds(gym.Wrapper):
    poisoned = False

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.poisoned = seed % 2 == 0
        obs, info = self.env.reset(seed=seed, options=options)
        return self._spoil(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._spoil(obs), reward, terminated, truncated, info

    def _spoil(self, obs):
        return np.full_like(obs, np.nan) if self.poisoned else obs


def _poisoned_cartpole(**kwargs):
    from gymnasium.envs.classic_control import CartPoleEnv
    return NaNObservationsForEvenSeeds(CartPoleEnv(**kwargs))


if "PoisonedCartPole-v1" not in gym.envs.registry:
    gym.register("PoisonedCartPole-v1", entry_point=_poisoned_cartpole, max_episode_steps=500)
