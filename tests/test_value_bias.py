"""benchmarks/value_bias.py's returns, computed by hand."""
import numpy as np

from benchmarks.value_bias import discounted


def test_discounted_returns_follow_each_step():
    # G_2 = 1; G_1 = 0 + 0.5 * 1; G_0 = -1 + 0.5 * 0.5
    np.testing.assert_allclose(discounted([-1.0, 0.0, 1.0], 0.5), [-0.75, 0.5, 1.0])
    # a point lost every third step, for ever after: G_0 = -0.9^2 / (1 - 0.9^3) truncated
    rewards = [0.0, 0.0, -1.0] * 200
    assert abs(discounted(rewards, 0.9)[0] + 0.81 / (1 - 0.729)) < 1e-9
