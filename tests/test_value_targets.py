"""Targets of one-step Q, one-step Sarsa, n-step Q and n-step Sarsa, by hand."""
import numpy as np

from algorithms.returns import one_step_targets, value_targets

GAMMA = 0.5
REWARDS = np.array([1.0, 0.0, -1.0, 2.0], np.float32)
# Step 1 is terminal (a lost life with --single_life_episodes, say): nothing flows past it.
TERMINALS = np.array([False, True, False, False])
# Target-network Q-values of s_1 .. s_4 (3 actions), for one-step methods.
Q_NEXT = np.array([[1.0, 4.0, 2.0],
                   [8.0, 0.0, 0.0],    # Q(s_2): step 1 is terminal, so never used
                   [0.0, -2.0, 6.0],
                   [3.0, 5.0, -1.0]], np.float32)
NEXT_ACTIONS = np.array([2, 0, 1, 0])   # a_1 .. a_4, the actions really taken next


def test_one_step_q_learning():
    y = value_targets(REWARDS, TERMINALS, Q_NEXT, NEXT_ACTIONS, GAMMA, sarsa=False, one_step=True)
    # y_0 = 1 + 0.5 * 4; y_1 = 0 (terminal); y_2 = -1 + 0.5 * 6; y_3 = 2 + 0.5 * 5
    np.testing.assert_allclose(y, [3.0, 0.0, 2.0, 4.5])


def test_one_step_sarsa():
    y = value_targets(REWARDS, TERMINALS, Q_NEXT, NEXT_ACTIONS, GAMMA, sarsa=True, one_step=True)
    # y_0 = 1 + 0.5 * Q(s_1, 2) = 2; y_1 = 0; y_2 = -1 + 0.5 * Q(s_3, 1) = -2; y_3 = 2 + 0.5 * 3
    np.testing.assert_allclose(y, [2.0, 0.0, -2.0, 3.5])


def test_n_step_q_learning():
    q_n = np.array([[3.0, 5.0, -1.0]], np.float32)   # Q_target(s_4, .)
    y = value_targets(REWARDS, TERMINALS, q_n, np.array([0]), GAMMA, sarsa=False, one_step=False)
    # R_4 = max = 5; R_3 = 2 + 2.5 = 4.5; R_2 = -1 + 2.25 = 1.25; R_1 = 0 (terminal);
    # R_0 = 1 + 0.5 * 0 = 1
    np.testing.assert_allclose(y, [1.0, 0.0, 1.25, 4.5])


def test_n_step_sarsa():
    q_n = np.array([[3.0, 5.0, -1.0]], np.float32)
    y = value_targets(REWARDS, TERMINALS, q_n, np.array([2]), GAMMA, sarsa=True, one_step=False)
    # R_4 = Q(s_4, 2) = -1; R_3 = 2 - 0.5 = 1.5; R_2 = -1 + 0.75 = -0.25; R_1 = 0; R_0 = 1
    np.testing.assert_allclose(y, [1.0, 0.0, -0.25, 1.5])


def test_n_step_terminal_end_has_no_bootstrap():
    terminals = np.array([False, False, False, True])
    for sarsa in (False, True):
        y = value_targets(REWARDS, terminals, None, np.array([0]), GAMMA, sarsa=sarsa,
                          one_step=False)
        # R_3 = 2; R_2 = -1 + 1 = 0; R_1 = 0; R_0 = 1
        np.testing.assert_allclose(y, [1.0, 0.0, 0.0, 2.0])


def test_one_step_targets_directly():
    y = one_step_targets([1.0, 1.0], [False, True], [10.0, 10.0], 0.9)
    np.testing.assert_allclose(y, [10.0, 1.0])
