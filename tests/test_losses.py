import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from algorithms.losses import actor_critic_loss, clip_gradients, td_loss  # noqa: E402


def reference(logits, values, actions, returns, beta):
    """numpy A3C loss and its analytic gradients with respect to logits and values."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs = np.exp(log_probs)
    entropy = -(probs * log_probs).sum(axis=1)
    adv = returns - values
    chosen = log_probs[np.arange(len(actions)), actions]
    policy = -(chosen * adv).sum() - beta * entropy.sum()
    value = 0.5 * ((returns - values) ** 2).sum()
    onehot = np.eye(logits.shape[1])[actions]
    d_logits = -adv[:, None] * (onehot - probs) + beta * probs * (log_probs + entropy[:, None])
    d_values = -(returns - values)
    return policy, value, entropy.mean(), d_logits, d_values


def test_actor_critic_loss_and_gradient_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 4))
    values = rng.normal(size=5)
    actions = np.array([0, 3, 1, 1, 2])
    returns = rng.normal(size=5)
    beta = 0.01
    L, V = tf.constant(logits, tf.float64), tf.constant(values, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch([L, V])
        loss = actor_critic_loss(L, V, tf.constant(actions), tf.constant(returns, tf.float64),
                                 beta)
    d_logits, d_values = tape.gradient(loss.total, [L, V])
    policy, value, entropy, ref_dl, ref_dv = reference(logits, values, actions, returns, beta)
    assert loss.policy.numpy() == pytest.approx(policy, rel=1e-10)
    assert loss.value.numpy() == pytest.approx(value, rel=1e-10)
    assert loss.entropy.numpy() == pytest.approx(entropy, rel=1e-10)
    assert loss.total.numpy() == pytest.approx(policy + value, rel=1e-10)
    np.testing.assert_allclose(d_logits.numpy(), ref_dl, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(d_values.numpy(), ref_dv, rtol=1e-9, atol=1e-12)


def test_hand_computed_two_action_case():
    # logits (0, 0): pi = (0.5, 0.5), H = ln 2; action 0, R = 1, V = 0.25 -> A = 0.75
    loss = actor_critic_loss(tf.constant([[0.0, 0.0]]), tf.constant([0.25]), tf.constant([0]),
                             tf.constant([1.0]), 0.1)
    assert loss.policy.numpy() == pytest.approx(-np.log(0.5) * 0.75 - 0.1 * np.log(2), rel=1e-6)
    assert loss.value.numpy() == pytest.approx(0.5 * 0.75 ** 2, rel=1e-6)


def test_no_nan_when_a_probability_underflows():
    logits = tf.constant([[0.0, -1000.0], [500.0, -500.0]])
    values = tf.constant([0.0, 0.0])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = actor_critic_loss(logits, values, tf.constant([1, 1]), tf.constant([1.0, -1.0]),
                                 0.01)
    grad = tape.gradient(loss.total, logits)
    assert np.isfinite(loss.total.numpy())
    assert np.isfinite(loss.entropy.numpy())
    assert np.all(np.isfinite(grad.numpy()))


def test_gradient_clipping():
    grads = [tf.constant([3.0, 0.0]), tf.constant([0.0, 4.0])]          # global norm 5
    clipped, norm = clip_gradients(grads, 1.0, "global")
    assert norm.numpy() == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([g.numpy() for g in clipped]), [0.6, 0, 0, 0.8],
                               rtol=1e-6)
    local, _ = clip_gradients(grads, 1.0, "local")
    np.testing.assert_allclose(np.concatenate([g.numpy() for g in local]), [1, 0, 0, 1], rtol=1e-6)
    untouched, _ = clip_gradients(grads, 1.0, "ignore")
    np.testing.assert_allclose(np.concatenate([g.numpy() for g in untouched]), [3, 0, 0, 4])
    small, _ = clip_gradients(grads, 10.0, "global")
    np.testing.assert_allclose(np.concatenate([g.numpy() for g in small]), [3, 0, 0, 4],
                               rtol=1e-6)


def test_td_loss_squared_and_huber():
    q = tf.constant([[1.0, 2.0], [0.0, -1.0], [5.0, 3.0]])
    actions = tf.constant([1, 0, 1])
    targets = tf.constant([2.5, 4.0, 3.0])           # errors y - Q(s, a): 0.5, 4.0, 0.0
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(q)
        plain = td_loss(q, actions, targets, 0.0)
        huber = td_loss(q, actions, targets, 1.0)
    assert plain.total.numpy() == pytest.approx(0.5 * (0.25 + 16.0))
    # Huber with delta 1: 0.5 * 0.5^2 for the small error, 1 * (4 - 0.5) for the large one
    assert huber.total.numpy() == pytest.approx(0.125 + 3.5)
    np.testing.assert_allclose(plain.max_q.numpy(), [2.0, 0.0, 5.0])
    # gradient with respect to Q(s, a) is -(y - Q), clipped to [-delta, delta] for Huber
    np.testing.assert_allclose(tape.gradient(plain.total, q).numpy(),
                               [[0, -0.5], [-4.0, 0], [0, 0]])
    np.testing.assert_allclose(tape.gradient(huber.total, q).numpy(),
                               [[0, -0.5], [-1.0, 0], [0, 0]])


def test_td_targets_get_no_gradient():
    q = tf.constant([[1.0]])
    targets = tf.constant([3.0])
    with tf.GradientTape() as tape:
        tape.watch(targets)
        loss = td_loss(q, tf.constant([0]), targets, 0.0)
    assert tape.gradient(loss.total, targets) is None
