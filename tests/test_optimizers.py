import numpy as np
import pytest

from algorithms.optimizers import Adam, LocalCounter, Momentum, RMSProp, make_optimizer

GRADS = [np.array([0.5, -2.0, 0.0, 3.0]), np.array([-1.0, 1.0, 0.25, 0.0]),
         np.array([2.0, 0.5, -0.5, 1.0])]
THETA0 = np.array([1.0, -1.0, 0.5, 0.0])
LRS = [0.1, 0.05, 0.02]


def rmsprop_reference(grads, lrs, alpha=0.99, eps=0.1):
    theta, g = THETA0.copy(), np.zeros(4)
    for grad, lr in zip(grads, lrs):
        g = alpha * g + (1 - alpha) * grad ** 2
        theta = theta - lr * grad / np.sqrt(g + eps)
    return theta, g


def f32(x):
    return np.array(x, dtype=np.float32)


def test_rmsprop_matches_the_paper_update():
    theta, g = f32(THETA0), np.zeros(4, np.float32)
    opt = RMSProp(theta, g, alpha=0.99, eps=0.1)
    for grad, lr in zip(GRADS, LRS):
        opt.apply(f32(grad), lr)
    ref_theta, ref_g = rmsprop_reference(GRADS, LRS)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-6)
    np.testing.assert_allclose(g, ref_g, rtol=1e-6)


def test_first_rmsprop_step_by_hand():
    theta, g = f32([0.0]), f32([0.0])
    RMSProp(theta, g, alpha=0.9, eps=0.1).apply(f32([2.0]), 0.5)
    # g = 0.1 * 4 = 0.4; theta = -0.5 * 2 / sqrt(0.5)
    assert g[0] == pytest.approx(0.4)
    assert theta[0] == pytest.approx(-1.0 / np.sqrt(0.5), rel=1e-6)


def test_shared_statistics_are_one_sequence_of_updates():
    """Two learners on the same parameters and the same g == one learner seeing both grads."""
    theta, g = f32(THETA0), np.zeros(4, np.float32)
    a, b = RMSProp(theta, g), RMSProp(theta, g)
    a.apply(f32(GRADS[0]), LRS[0])
    b.apply(f32(GRADS[1]), LRS[1])
    a.apply(f32(GRADS[2]), LRS[2])
    ref_theta, ref_g = rmsprop_reference(GRADS, LRS)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-6)
    np.testing.assert_allclose(g, ref_g, rtol=1e-6)


def test_local_statistics_are_per_learner():
    theta, ga, gb = f32(THETA0), np.zeros(4, np.float32), np.zeros(4, np.float32)
    a, b = RMSProp(theta, ga), RMSProp(theta, gb)
    a.apply(f32(GRADS[0]), 0.1)
    b.apply(f32(GRADS[1]), 0.1)
    np.testing.assert_allclose(ga, 0.01 * GRADS[0] ** 2, rtol=1e-6)
    np.testing.assert_allclose(gb, 0.01 * GRADS[1] ** 2, rtol=1e-6)
    expected = (THETA0 - 0.1 * GRADS[0] / np.sqrt(0.01 * GRADS[0] ** 2 + 0.1)
                - 0.1 * GRADS[1] / np.sqrt(0.01 * GRADS[1] ** 2 + 0.1))
    np.testing.assert_allclose(theta, expected, rtol=1e-6)


def test_momentum_matches_reference():
    theta, m = f32(THETA0), np.zeros(4, np.float32)
    opt = Momentum(theta, m, alpha=0.9)
    ref_theta, ref_m = THETA0.copy(), np.zeros(4)
    for grad, lr in zip(GRADS, LRS):
        opt.apply(f32(grad), lr)
        ref_m = 0.9 * ref_m + 0.1 * grad
        ref_theta = ref_theta - lr * ref_m
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-6)
    np.testing.assert_allclose(m, ref_m, rtol=1e-6)


def test_adam_matches_reference_with_bias_correction():
    theta, m, v = f32(THETA0), np.zeros(4, np.float32), np.zeros(4, np.float32)
    opt = Adam(theta, m, v, LocalCounter(), b1=0.9, b2=0.999, eps=1e-3)
    ref_theta, ref_m, ref_v = THETA0.copy(), np.zeros(4), np.zeros(4)
    for t, (grad, lr) in enumerate(zip(GRADS, LRS), start=1):
        opt.apply(f32(grad), lr)
        ref_m = 0.9 * ref_m + 0.1 * grad
        ref_v = 0.999 * ref_v + 0.001 * grad ** 2
        m_hat, v_hat = ref_m / (1 - 0.9 ** t), ref_v / (1 - 0.999 ** t)
        ref_theta = ref_theta - lr * m_hat / (np.sqrt(v_hat) + 1e-3)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(m, ref_m, rtol=1e-6)
    np.testing.assert_allclose(v, ref_v, rtol=1e-5)


def test_adam_first_step_is_about_lr_times_sign():
    theta, m, v = f32([0.0, 0.0]), f32([0, 0]), f32([0, 0])
    Adam(theta, m, v, LocalCounter(), eps=1e-8).apply(f32([3.0, -0.01]), 0.1)
    np.testing.assert_allclose(theta, [-0.1, 0.1], rtol=1e-4)


def test_adam_shared_step_counter():
    calls = []

    def shared_step():
        calls.append(len(calls) + 1)
        return calls[-1]

    theta = f32(THETA0)
    m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
    a = Adam(theta, m, v, shared_step)
    b = Adam(theta, m, v, shared_step)
    a.apply(f32(GRADS[0]), 0.1)
    b.apply(f32(GRADS[1]), 0.1)
    assert calls == [1, 2]


@pytest.mark.parametrize("opt_type, slots", [("rmsprop", ["g"]), ("momentum", ["m"]),
                                             ("adam", ["m", "v"])])
def test_make_optimizer(opt_type, slots):
    theta = f32(THETA0)
    opt = make_optimizer(opt_type, theta, {s: np.zeros(4, np.float32) for s in slots},
                         alpha=0.99, eps=0.1, b1=0.9, b2=0.999)
    opt.apply(f32(GRADS[0]), 0.1)
    assert not np.allclose(theta, THETA0)
    with pytest.raises(ValueError):
        make_optimizer("sgd", theta, {}, 0.99, 0.1, 0.9, 0.999)
