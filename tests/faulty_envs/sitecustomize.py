"""Gymnasium environments with real faults, for tests/test_faults.py.

A test puts this folder on ``PYTHONPATH``; Python then imports this module at the start of every
process it runs (the trainer and each actor-learner), so the ids below are registered wherever
the trainer looks them up. Nothing in the trainer knows about them.

Environments that break their own spaces, which the trainer must refuse at the boundary:
``ShrunkCartPole-v1`` (observations of shape (1,) where its space declares (4,)),
``InfiniteRewardCartPole-v1`` (a reward of inf at the 10th step) and ``NaNObservationCartPole-v1``
(a NaN observation at the 10th step).
"""
import gymnasium as gym
import numpy as np


class BrokenAtStep(gym.Wrapper):
    """Breaks its spaces' promise: ``how`` is "shape" (every observation), "inf_reward" or
    "nan_observation" (at the 10th step of every episode)."""

    def __init__(self, env, how):
        super().__init__(env)
        self.how, self.steps = how, 0

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.steps = 0
        return (obs[:1] if self.how == "shape" else obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        if self.how == "shape":
            obs = obs[:1]
        elif self.steps == 10 and self.how == "inf_reward":
            reward = float("inf")
        elif self.steps == 10 and self.how == "nan_observation":
            obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


def _broken(how):
    def make(**kwargs):
        from gymnasium.envs.classic_control import CartPoleEnv
        return BrokenAtStep(CartPoleEnv(**kwargs), how)
    return make


for name, how in (("ShrunkCartPole-v1", "shape"), ("InfiniteRewardCartPole-v1", "inf_reward"),
                  ("NaNObservationCartPole-v1", "nan_observation")):
    if name not in gym.envs.registry:
        gym.register(name, entry_point=_broken(how), max_episode_steps=500)
