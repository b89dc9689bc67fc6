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
