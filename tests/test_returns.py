import numpy as np
import pytest

from algorithms.returns import RewardTransform, n_step_returns


def test_bootstrapped_returns_by_hand():
    # R_2 = 3 + 0.9 * 10 = 12; R_1 = 2 + 0.9 * 12 = 12.8; R_0 = 1 + 0.9 * 12.8 = 12.52
    returns = n_step_returns([1.0, 2.0, 3.0], [False, False, False], bootstrap=10.0, gamma=0.9)
    np.testing.assert_allclose(returns, [12.52, 12.8, 12.0], rtol=1e-6)


def test_terminal_at_end_ignores_bootstrap():
    returns = n_step_returns([1.0, 2.0, 3.0], [False, False, True], bootstrap=10.0, gamma=0.9)
    # R_2 = 3; R_1 = 2 + 2.7 = 4.7; R_0 = 1 + 0.9 * 4.7 = 5.23
    np.testing.assert_allclose(returns, [5.23, 4.7, 3.0], rtol=1e-6)


def test_terminal_mid_segment_cuts_the_sum():
    # Step 1 ends an episode (e.g. a lost life with --single_life_episodes): R_1 = r_1 only,
    # and R_0 sees nothing after it; steps 2..3 bootstrap from 5.
    returns = n_step_returns([1.0, -1.0, 0.0, 2.0], [False, True, False, False],
                             bootstrap=5.0, gamma=0.5)
    # R_3 = 2 + 2.5 = 4.5; R_2 = 0 + 2.25 = 2.25; R_1 = -1; R_0 = 1 - 0.5 = 0.5
    np.testing.assert_allclose(returns, [0.5, -1.0, 2.25, 4.5], rtol=1e-6)


def test_reward_clipping_and_rescaling():
    clip = RewardTransform(rescale=False)
    assert [clip(r) for r in (-7.0, -0.5, 0.0, 3.0)] == [-1.0, -0.5, 0.0, 1.0]
    rescale = RewardTransform(rescale=True)
    assert rescale(0.0) == 0.0
    assert rescale(4.0) == 1.0
    assert rescale(2.0) == pytest.approx(0.5)
    assert rescale(-10.0) == -1.0
    assert rescale(4.0) == pytest.approx(0.4)


def test_batched_returns_with_episodes_ending_at_different_steps():
    """Two environments in one segment of 3 steps, gamma 0.5. Environment 0's game ends at
    step 0 (a new episode starts at step 1); environment 1's episode is cut by a time limit at
    step 1, the value of its last observation being 8; both bootstrap from s_3 (4 and -2)."""
    rewards = [[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]
    cuts = [[True, False], [False, True], [False, False]]
    cut_values = [[0.0, 0.0], [0.0, 8.0], [0.0, 0.0]]
    returns = n_step_returns(rewards, cuts, np.array([4.0, -2.0]), 0.5, cut_values)
    # env 0: R_2 = 0 + 2 = 2; R_1 = 2 + 1 = 3; R_0 = 1 (terminal)
    # env 1: R_2 = 3 - 1 = 2; R_1 = 1 + 0.5 * 8 = 5; R_0 = 0 + 2.5 = 2.5
    np.testing.assert_allclose(returns, [[1.0, 2.5], [3.0, 5.0], [2.0, 2.0]])
    # each column is what one environment alone gives
    alone = n_step_returns([0.0, 1.0, 3.0], [False, True, False], -2.0, 0.5, [0.0, 8.0, 0.0])
    np.testing.assert_allclose(returns[:, 1], alone)
