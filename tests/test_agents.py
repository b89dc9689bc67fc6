"""The glue between the pure pieces, through the real agents: which value is bootstrapped at the
end of a segment, the action Sarsa carries into the next segment, and action sampling."""
import numpy as np
import pytest

from algorithms.agents import ActorCritic, Segment, ValueLearner, sample
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


def _segment(rng, done: bool, truncated: bool, terminal_at: int | None = None) -> Segment:
    states = rng.normal(size=(3, 4)).astype(np.float32)
    terminals = np.zeros(3, bool)
    if terminal_at is not None:
        terminals[terminal_at] = True
    return Segment(states, np.array([0, 2, 1], np.int32), np.array([1.0, -0.5, 2.0], np.float32),
                   terminals, rng.normal(size=4).astype(np.float32), done, truncated)


def _actor_critic():
    layout = make_layout("a3c", "NIPS", (4,), 3)
    params = layout.initial_values(np.random.default_rng(0))
    agent = ActorCritic(layout, FrozenStore(params), np.random.default_rng(1), SPEC, _config())
    agent.start_episode()
    agent.sync(0)
    return agent


def _value_loss_by_hand(agent, seg: Segment, bootstrap: float) -> float:
    """0.5 * sum (R_t - V(s_t))^2 with R_t computed backwards here, from ``bootstrap``."""
    values = [agent.policy(agent.params, s)[1] for s in seg.states]
    returns, running = [], bootstrap
    for t in range(2, -1, -1):
        running = seg.rewards[t] + GAMMA * (0.0 if seg.terminals[t] else running)
        returns.append(running)
    returns = returns[::-1]
    return 0.5 * sum((r - v) ** 2 for r, v in zip(returns, values))


@pytest.mark.parametrize("done, truncated, bootstraps", [
    (False, False, True),    # the segment ended mid-episode: V(s_n)
    (True, True, True),      # a time limit ended the episode: s_n still has a value
    (True, False, False),    # the game ended: nothing after it
])
def test_a3c_bootstraps_from_the_value_of_the_next_state_unless_the_game_ended(
        done, truncated, bootstraps):
    agent = _actor_critic()
    seg = _segment(np.random.default_rng(2), done, truncated,
                   terminal_at=2 if done and not truncated else None)
    v_next = agent.policy(agent.params, seg.next_state)[1]
    assert abs(v_next) > 1e-3   # so that bootstrapping or not makes a difference
    expected = _value_loss_by_hand(agent, seg, v_next if bootstraps else 0.0)
    _, stats = agent.learn(seg)
    assert stats["loss/value"] == pytest.approx(expected, rel=1e-5)
    if bootstraps:   # and the test can tell: without the bootstrap the loss differs
        assert abs(expected - _value_loss_by_hand(agent, seg, 0.0)) > 1e-3


def test_a3c_reuses_the_bootstrap_pass_for_the_next_action_only_within_an_episode():
    agent = _actor_critic()
    seg = _segment(np.random.default_rng(3), done=False, truncated=False)
    agent.learn(seg)
    assert agent._cached is not None   # the policy at s_n, computed for V(s_n)
    agent.act(seg.next_state)
    assert agent._cached is None
    agent.learn(_segment(np.random.default_rng(4), done=True, truncated=True))
    assert agent._cached is None       # s_n ends the episode: the next act is on a new one


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
    q = agent.q(agent.params, seg.states)
    running, loss = bootstrap, 0.0
    for t in range(2, -1, -1):
        running = seg.rewards[t] + GAMMA * (0.0 if seg.terminals[t] else running)
        loss += 0.5 * (running - q[t, seg.actions[t]]) ** 2
    return loss


@pytest.mark.parametrize("seed", range(4))
def test_sarsa_bootstraps_from_the_action_it_then_takes(seed):
    """n-step Sarsa's target uses Q_target(s_n, a_n) for the a_n that the next segment starts
    with; with epsilon 0.5 that action is often not the greedy one."""
    agent = _value_learner(sarsa=True, epsilon=0.5)
    agent.rng = np.random.default_rng(seed)
    seg = _segment(np.random.default_rng(8), done=False, truncated=False)
    _, stats = agent.learn(seg)
    carried = agent.act(seg.next_state)   # the carried action, not a new draw
    q_target = agent.q(agent.target, seg.next_state[None])[0]
    assert stats["loss/td"] == pytest.approx(
        _td_loss_by_hand(agent, seg, q_target[carried]), rel=1e-5)
    # the action after it is drawn anew
    assert agent._next_action is None


def test_sarsa_carries_nothing_across_the_end_of_an_episode():
    agent = _value_learner(sarsa=True, epsilon=0.5)
    seg = _segment(np.random.default_rng(9), done=True, truncated=False, terminal_at=2)
    _, stats = agent.learn(seg)
    assert agent._next_action is None
    assert stats["loss/td"] == pytest.approx(_td_loss_by_hand(agent, seg, 0.0), rel=1e-5)


def test_q_learning_bootstraps_from_the_target_networks_best_action():
    agent = _value_learner(sarsa=False, epsilon=0.5)
    seg = _segment(np.random.default_rng(10), done=True, truncated=True)
    _, stats = agent.learn(seg)
    assert agent._next_action is None   # Q-learning carries no action
    best = agent.q(agent.target, seg.next_state[None])[0].max()
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
