"""The glue between the pure pieces, through the real agents: which value is bootstrapped at the
end of a segment, the action Sarsa carries into the next segment, and action sampling."""
import numpy as np
import pytest

from algorithms.agents import ALIGNMENT, ActorCritic, Segment, ValueLearner, sample
from algorithms.config import Config
from algorithms.environments import EnvSpec
from algorithms.networks import make_layout
from algorithms.store import FrozenStore

GAMMA = 0.9
SPEC = EnvSpec("vector", (4,), 3, 1)


def _config(**values) -> Config:
    return Config.from_dict(dict(dict(game="CartPole-v1", env="GYM", entropy=0.01,
                                      clip_norm=40.0, clip_norm_type="ignore", gamma=GAMMA,
                                      max_local_steps=3, epsilon_annealing_steps=1, seed=0),
                                 **values))


def _segment(rng, done: bool, truncated: bool, terminal_at: int | None = None,
             final_value: float = 0.0) -> Segment:
    """Three steps of one environment; the episode ends at the last step when ``done``."""
    states = rng.normal(size=(3, 1, 4)).astype(np.float32)
    cuts, ended, cut_values = np.zeros((3, 1), bool), np.zeros((3, 1), bool), np.zeros((3, 1))
    if terminal_at is not None:
        cuts[terminal_at] = True
    if done:
        cuts[2] = ended[2] = True
        cut_values[2] = final_value if truncated else 0.0
    return Segment(states, np.array([[0], [2], [1]], np.int32),
                   np.array([[1.0], [-0.5], [2.0]], np.float32), cuts,
                   cut_values.astype(np.float32), ended, rng.normal(size=(1, 4)).astype(np.float32))


def _actor_critic():
    layout = make_layout("a3c", "NIPS", (4,), 3)
    params = layout.initial_values(np.random.default_rng(0))
    agent = ActorCritic(layout, FrozenStore(params), np.random.default_rng(1), SPEC, _config())
    agent.start_episode()
    agent.sync(0)
    return agent


def _value_loss_by_hand(agent, seg: Segment, bootstrap: float) -> float:
    """0.5 * sum (R_t - V(s_t))^2 with R_t computed backwards here, from ``bootstrap``."""
    values = agent.policy(agent.params, seg.states[:, 0])[1]
    returns, running = [], bootstrap
    for t in range(2, -1, -1):
        following = seg.cut_values[t, 0] if seg.cuts[t, 0] else running
        running = seg.rewards[t, 0] + GAMMA * following
        returns.append(running)
    returns = returns[::-1]
    return 0.5 * sum((r - v) ** 2 for r, v in zip(returns, values))


@pytest.mark.parametrize("done, truncated, bootstrap", [
    (False, False, "next"),     # the segment ended mid-episode: V(s_T)
    (True, True, "final"),      # a time limit ended the episode: its last observation's value
    (True, False, "nothing"),   # the game ended: nothing after it
])
def test_a3c_bootstraps_from_the_value_of_the_next_state_unless_the_game_ended(
        done, truncated, bootstrap):
    agent = _actor_critic()
    rng = np.random.default_rng(2)
    final = rng.normal(size=4).astype(np.float32)   # the truncated episode's last observation
    v_final = agent.final_value(final, 0)
    seg = _segment(rng, done, truncated, final_value=v_final)
    v_next = float(agent.policy(agent.params, seg.next_states)[1][0])
    assert min(abs(v_next), abs(v_final), abs(v_next - v_final)) > 1e-3   # they differ
    expected = _value_loss_by_hand(
        agent, seg, {"next": v_next, "final": v_final, "nothing": 0.0}[bootstrap])
    _, stats = agent.learn(seg)
    assert stats["loss/value"] == pytest.approx(expected, rel=1e-5)
    if bootstrap != "nothing":   # and the test can tell: without the bootstrap the loss differs
        seg.cut_values[:] = 0.0
        assert abs(expected - _value_loss_by_hand(agent, seg, 0.0)) > 1e-3


def test_a3c_reuses_the_bootstrap_pass_for_the_next_actions():
    agent = _actor_critic()
    seg = _segment(np.random.default_rng(3), done=False, truncated=False)
    agent.learn(seg)
    assert agent._cached is not None   # the policy at s_T, computed for V(s_T)
    cached = agent._cached[0].copy()
    np.testing.assert_allclose(cached, agent.policy(agent.params, seg.next_states)[0])
    agent.act(seg.next_states)
    assert agent._cached is None
    agent.start_episode(0)              # a new episode in the environment: nothing cached
    assert agent._cached is None


def _value_learner(sarsa: bool, epsilon: float, max_local_steps: int = 3):
    layout = make_layout("q", "NIPS", (4,), 3)
    params = layout.initial_values(np.random.default_rng(5))
    target = layout.initial_values(np.random.default_rng(6))   # a target unlike the online net
    config = _config(alg_type="sarsa" if sarsa else "q", max_local_steps=max_local_steps,
                     grads_update_steps=3)
    agent = ValueLearner(layout, FrozenStore(params, target), np.random.default_rng(7), SPEC,
                         config, final_epsilon=epsilon)
    agent.sync(10)   # past the annealing: epsilon is the final one
    assert agent.epsilon == epsilon
    return agent


def _td_loss_by_hand(agent, seg: Segment, bootstrap: float) -> float:
    q = agent.q(agent.params, seg.states[:, 0])
    running, loss = bootstrap, 0.0
    for t in range(2, -1, -1):
        following = seg.cut_values[t, 0] if seg.cuts[t, 0] else running
        running = seg.rewards[t, 0] + GAMMA * following
        loss += 0.5 * (running - q[t, seg.actions[t, 0]]) ** 2
    return loss


@pytest.mark.parametrize("seed", range(4))
def test_sarsa_bootstraps_from_the_action_it_then_takes(seed):
    """n-step Sarsa's target uses Q_target(s_n, a_n) for the a_n that the next segment starts
    with; with epsilon 0.5 that action is often not the greedy one."""
    agent = _value_learner(sarsa=True, epsilon=0.5)
    agent.rng = np.random.default_rng(seed)
    seg = _segment(np.random.default_rng(8), done=False, truncated=False)
    _, stats = agent.learn(seg)
    carried = agent.act(seg.next_states)[0]   # the carried action, not a new draw
    q_target = agent.q(agent.target, seg.next_states)[0]
    assert stats["loss/td"] == pytest.approx(
        _td_loss_by_hand(agent, seg, q_target[carried]), rel=1e-5)
    # the action after it is drawn anew
    assert agent._next_actions is None


def test_sarsa_does_not_bootstrap_across_the_end_of_an_episode():
    """The carried action is the first of the next episode (s_T is its first observation),
    and the target of the last step is r: nothing after the game over."""
    agent = _value_learner(sarsa=True, epsilon=0.5)
    seg = _segment(np.random.default_rng(9), done=True, truncated=False)
    _, stats = agent.learn(seg)
    assert stats["loss/td"] == pytest.approx(_td_loss_by_hand(agent, seg, 0.0), rel=1e-5)


def test_q_learning_bootstraps_from_the_target_networks_best_action():
    agent = _value_learner(sarsa=False, epsilon=0.5)
    seg = _segment(np.random.default_rng(10), done=False, truncated=False)
    _, stats = agent.learn(seg)
    assert agent._next_actions is None   # Q-learning carries no action
    best = agent.q(agent.target, seg.next_states)[0].max()
    assert stats["loss/td"] == pytest.approx(_td_loss_by_hand(agent, seg, best), rel=1e-5)


def test_sample_inverts_the_cumulative_distribution():
    probs = np.array([0.2, 0.5, 0.3])
    # cdf = 0.2, 0.7, 1.0: u in [0, 0.2) -> 0, [0.2, 0.7) -> 1, [0.7, 1] -> 2
    for u, expected in ((0.0, 0), (0.199, 0), (0.2, 1), (0.699, 1), (0.7, 2), (0.999, 2),
                        (1.0, 2)):
        assert sample(probs, u) == expected, u
    assert sample(probs * 7, 0.5) == 1                        # unnormalised weights
    assert sample(np.array([0.5, 0.0, 0.5]), 0.5) == 2          # never an impossible action
    assert sample(np.array([0.0, 0.0, 1.0]), 0.0) == 2


def test_sample_frequencies_match_the_probabilities():
    probs = np.array([0.1, 0.6, 0.3], np.float32)
    rng = np.random.default_rng(11)
    counts = np.bincount([sample(probs, u) for u in rng.random(60_000)], minlength=3)
    np.testing.assert_allclose(counts / counts.sum(), probs, atol=0.01)


def _two_env_segment(rng, recurrent_state_from=None) -> Segment:
    """Three steps of two environments: environment 0's game ends at step 0 (step 1 starts a
    new episode), environment 1's episode is cut by a time limit at step 1 (value 0.7)."""
    return Segment(rng.normal(size=(3, 2, 4)).astype(np.float32),
                   np.array([[0, 1], [2, 0], [1, 1]], np.int32),
                   np.array([[1.0, 0.0], [0.5, -1.0], [0.0, 2.0]], np.float32),
                   np.array([[True, False], [False, True], [False, False]]),
                   np.array([[0.0, 0.0], [0.0, 0.7], [0.0, 0.0]], np.float32),
                   np.array([[True, False], [False, True], [False, False]]),
                   rng.normal(size=(2, 4)).astype(np.float32))


def test_a3c_over_two_environments_averages_their_losses():
    """One update over K environments: the loss summed over steps, averaged over environments
    (so that the step size does not grow with K); each environment's returns on its own."""
    layout = make_layout("a3c", "NIPS", (4,), 3)
    params = layout.initial_values(np.random.default_rng(0))
    agent = ActorCritic(layout, FrozenStore(params), np.random.default_rng(1), SPEC, _config(),
                        num_envs=2)
    agent.start_episode()
    agent.sync(0)
    seg = _two_env_segment(np.random.default_rng(12))
    values = agent.policy(agent.params, seg.states.reshape(6, 4))[1].reshape(3, 2)
    bootstrap = agent.policy(agent.params, seg.next_states)[1]
    by_hand = 0.0
    for k in range(2):
        running = bootstrap[k]
        for t in (2, 1, 0):
            following = seg.cut_values[t, k] if seg.cuts[t, k] else running
            running = seg.rewards[t, k] + GAMMA * following
            by_hand += 0.5 * (running - values[t, k]) ** 2
    _, stats = agent.learn(seg)
    assert stats["loss/value"] == pytest.approx(by_hand / 2, rel=1e-5)


def test_lstm_states_are_per_environment_and_reset_at_each_ones_episode_start():
    """K = 2: the sequence pass of ``learn`` resets environment 0's state where its episode
    ended inside the segment, and only its own; it gives the values that stepping each
    environment alone gives."""
    layout = make_layout("a3c", "NIPS", (4,), 3, lstm=True)
    params = layout.initial_values(np.random.default_rng(0))
    config = _config(lstm=True)
    agent = ActorCritic(layout, FrozenStore(params), np.random.default_rng(1), SPEC, config,
                        num_envs=2)
    agent.start_episode()
    agent.sync(0)
    seg = _two_env_segment(np.random.default_rng(13))
    seg.cuts[1, 1] = seg.ended[1, 1] = False   # only environment 0 starts a new episode
    seg.cut_values[:] = 0.0
    for t in range(3):
        agent.act(seg.states[t])
        if seg.ended[t, 0]:
            agent.start_episode(0)
    assert agent.state.shape == (2, 4, 64)
    # stepping each environment alone, from zeros, resetting environment 0 after step 0
    values = np.zeros((3, 2))
    for k in range(2):
        state = np.zeros((1, 4, 64), np.float32)
        for t in range(3):
            if k == 0 and t == 1:
                state = np.zeros_like(state)
            _, value, state = agent.policy(agent.params, seg.states[t, k][None], state)
            values[t, k] = value[0]
        np.testing.assert_allclose(agent.state[k], state[0], atol=1e-5)
    bootstrap = agent.policy(agent.params, seg.next_states, agent.state)[1]
    by_hand = 0.0
    for k in range(2):
        running = bootstrap[k]
        for t in (2, 1, 0):
            running = seg.rewards[t, k] + GAMMA * (0.0 if seg.cuts[t, k] else running)
            by_hand += 0.5 * (running - values[t, k]) ** 2
    _, stats = agent.learn(seg)
    assert stats["loss/value"] == pytest.approx(by_hand / 2, rel=1e-4)


def test_value_learner_acts_for_every_environment_in_one_pass():
    agent = _value_learner(sarsa=False, epsilon=0.0)
    states = np.random.default_rng(14).normal(size=(5, 4)).astype(np.float32)
    actions = agent.act(states)
    np.testing.assert_array_equal(actions, np.argmax(agent.q(agent.params, states), axis=1))
    agent.epsilon = 1.0
    drawn = np.concatenate([agent.act(states) for _ in range(200)])
    assert set(drawn.tolist()) == {0, 1, 2}


def test_sync_copies_the_stores_current_parameters_into_the_same_aligned_tensors():
    """The local tensors share aligned buffers with numpy: a sync refreshes them in place, and
    the network then computes with the store's new values, not the old ones."""
    layout = make_layout("a3c", "NIPS", (4,), 3)
    shared = layout.initial_values(np.random.default_rng(0))
    agent = ActorCritic(layout, FrozenStore(shared), np.random.default_rng(1), SPEC, _config())
    agent.start_episode()
    agent.sync(0)
    tensors = agent.params
    for tensor, view in zip(tensors, layout.split(shared)):
        np.testing.assert_array_equal(tensor.numpy(), view)
    assert all(array.ctypes.data % ALIGNMENT == 0 for array in agent._local.arrays)
    state = np.ones((1, 4), np.float32)
    before = agent.policy(agent.params, state)[1][0]
    value_bias = layout.split(shared)[[s.name for s in layout.specs].index("value/b")]
    value_bias += 2.5   # what a push does: the shared vector changes in place
    assert agent.policy(agent.params, state)[1][0] == before   # θ' stays until the next sync
    agent.sync(1)
    assert all(a is b for a, b in zip(agent.params, tensors))
    assert agent.policy(agent.params, state)[1][0] == pytest.approx(before + 2.5, abs=1e-5)
