"""A3C LSTM and the Gaussian policy: the log-density and entropy against hand values, the LSTM
against a numpy reference, the recurrent state's carry-over and reset, gradients into the
recurrent weights."""
import math

import numpy as np
import pytest
import tensorflow as tf

from algorithms.agents import ActorCritic, Segment
from algorithms.config import Config
from algorithms.environments import EnvSpec
from algorithms.losses import gaussian_entropy, gaussian_log_density
from algorithms.networks import (LSTM_UNITS, MLP_LSTM_UNITS, lstm_sequence, make_layout,
                                 recurrent_state_shape)
from algorithms.store import FrozenStore

CFG = Config.from_dict(dict(game="CartPole-v1", env="GYM", entropy=0.01, clip_norm=40.0,
                           clip_norm_type="global", gamma=0.99, max_local_steps=5, lstm=True))


def test_gaussian_log_density_and_entropy_by_hand():
    mean = tf.constant([[0.0, 1.0]])
    variance = tf.constant([[1.0, 4.0]])
    action = tf.constant([[0.5, -1.0]])
    # N(0.5; 0, 1) and N(-1; 1, 4), written out
    by_hand = (-0.5 * 0.25 - 0.5 * math.log(2 * math.pi)) \
        + (-0.5 * 4 / 4 - 0.5 * math.log(8 * math.pi))
    assert float(gaussian_log_density(mean, variance, action)[0]) == pytest.approx(by_hand, 1e-6)
    entropy = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(2 * math.pi * math.e * 4)
    assert float(gaussian_entropy(variance)[0]) == pytest.approx(entropy, 1e-6)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_lstm_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    width, units, steps = 3, LSTM_UNITS, 4
    w = rng.normal(0, 0.1, (width + units, 4 * units)).astype(np.float32)
    b = rng.normal(0, 0.1, 4 * units).astype(np.float32)
    x = rng.normal(size=(steps, width)).astype(np.float32)
    state = rng.normal(size=(2, units)).astype(np.float32)
    c, h = state[0].astype(np.float64), state[1].astype(np.float64)
    outputs = []
    for t in range(steps):
        z = np.concatenate([x[t], h]) @ w + b
        i, f, g, o = np.split(z, 4)
        c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    # one environment: (T, 1, width), state (1, 2, units), nothing reset
    out, final = lstm_sequence(tf.constant(w), tf.constant(b), tf.constant(x[:, None]),
                               tf.constant(state[None]), tf.ones((steps, 1)))
    np.testing.assert_allclose(out.numpy()[:, 0], np.array(outputs), atol=1e-5)
    np.testing.assert_allclose(final.numpy()[0], np.stack([c, h]), atol=1e-5)
    # two environments; the second's episode starts anew at step 2: its state is zeroed there
    other = rng.normal(size=(steps, width)).astype(np.float32)
    keep = np.ones((steps, 2), np.float32)
    keep[2, 1] = 0.0
    out, final = lstm_sequence(tf.constant(w), tf.constant(b), tf.constant(np.stack([x, other], 1)),
                               tf.constant(np.stack([state, state])), tf.constant(keep))
    np.testing.assert_allclose(out.numpy()[:, 0], np.array(outputs), atol=1e-5)
    alone, _ = lstm_sequence(tf.constant(w), tf.constant(b), tf.constant(other[2:, None]),
                             tf.zeros((1, 2, units)), tf.ones((steps - 2, 1)))
    np.testing.assert_allclose(out.numpy()[2:, 1], alone.numpy()[:, 0], atol=1e-5)


def _segment(observations, actions, ended: bool) -> Segment:
    """One environment's segment over all but the last observation, which comes next; rewards
    of 1, and a game over at the last step when ``ended``."""
    steps = len(observations) - 1
    last = np.zeros((steps, 1), bool)
    last[-1] = ended
    return Segment(observations[:-1, None], np.asarray(actions)[:, None],
                   np.ones((steps, 1), np.float32), last.copy(), np.zeros((steps, 1), np.float32),
                   last, observations[-1:])


def _agent(observation_shape=(4,), continuous=False):
    spec = EnvSpec("vector", observation_shape, 2, 1, continuous)
    layout = make_layout("a3c", "NIPS", observation_shape, 2, lstm=True, continuous=continuous)
    params = layout.initial_values(np.random.default_rng(0))
    return ActorCritic(layout, FrozenStore(params), np.random.default_rng(1), spec, CFG), layout


def test_state_is_carried_across_segments_and_reset_at_episode_start():
    agent, layout = _agent()
    assert recurrent_state_shape(layout) == (4, MLP_LSTM_UNITS)   # (c, h) of two towers
    observations = np.random.default_rng(2).normal(size=(10, 4)).astype(np.float32)

    agent.start_episode()
    agent.sync(0)
    assert not agent.segment_state.any()
    actions = np.array([agent.act(o[None])[0] for o in observations[:5]], np.int32)
    after_five = agent.state.copy()
    assert np.abs(after_five).sum() > 0
    seg = _segment(observations[:6], actions, ended=False)
    agent.learn(seg)
    # The next segment starts where this one ended, not from zeros...
    agent.sync(5)
    np.testing.assert_array_equal(agent.segment_state, after_five)
    agent.act(observations[5][None])
    # ... and the state equals running the six observations from zeros in one go.
    _, _, state = agent.policy(agent.params, observations[0][None], np.zeros_like(after_five))
    for o in observations[1:6]:
        _, _, state = agent.policy(agent.params, o[None], state)
    np.testing.assert_allclose(agent.state, state, atol=1e-6)

    agent.start_episode()   # a new episode: zeros again
    agent.sync(6)
    assert not agent.state.any() and not agent.segment_state.any()


def test_gradients_reach_the_recurrent_weights_and_depend_on_the_initial_state():
    agent, layout = _agent(continuous=True)
    observations = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    actions = np.random.default_rng(4).normal(size=(5, 2)).astype(np.float32)
    seg = _segment(np.concatenate([observations, observations[-1:]]), actions, ended=True)
    agent.start_episode()
    agent.sync(0)
    grad_from_zeros, stats = agent.learn(seg)
    parts = dict(zip([spec.name for spec in layout.specs], layout.split(grad_from_zeros)))
    for name in ("pi_lstm/w", "v_lstm/w"):
        recurrent_rows = parts[name][-MLP_LSTM_UNITS:]   # the h -> gates kernel
        assert np.abs(recurrent_rows).sum() > 0, name
    assert stats["policy/entropy"] == pytest.approx(2 * 0.5 * math.log(
        2 * math.pi * math.e * (math.log(2) + 1e-4)), rel=1e-2)
    # the truncated gradient starts from the segment's initial state: another state, another
    # gradient
    agent.segment_state = np.full_like(agent.segment_state, 0.5)
    grad_from_other, _ = agent.learn(seg)
    assert not np.allclose(grad_from_zeros, grad_from_other)


def test_atari_lstm_has_the_papers_256_cells():
    layout = make_layout("a3c", "NIPS", (84, 84, 4), 6, lstm=True)
    assert recurrent_state_shape(layout) == (2, 256)
    shapes = dict((spec.name, spec.shape) for spec in layout.specs)
    assert shapes["lstm/w"] == (256 + 256, 4 * 256) and shapes["policy/w"] == (256, 6)
