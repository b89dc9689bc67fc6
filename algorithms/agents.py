"""The per-algorithm pieces of the actor-learner: what to do with one segment of experience.

An agent owns the local TensorFlow functions of its algorithm and answers four questions of the
shared loop in ``actor_learner.py``:

* ``sync(global_step)``: snapshot the parameters (and target parameters) of the store
  (``store.py``) into local tensors;
* ``act(state)``: the action to take;
* ``learn(segment)``: the flat gradient of the segment's loss (and scalars to log);
* ``episode_scalars()``: per-episode scalars, at the end of an episode.

An agent reads the parameters from the store and never writes them: applying the gradient is the
loop's business (``store.push``).

``ActorCritic`` is A3C. ``ValueLearner`` is one-step Q-learning, one-step Sarsa, n-step
Q-learning and n-step Sarsa: with ``--max_local_steps 1`` it makes one-step targets and applies
the gradient accumulated over ``--grads_update_steps`` steps; with ``--max_local_steps N > 1`` it
makes forward-view n-step targets over segments of N steps. Targets bootstrap from the shared
*target* network (max over actions for Q-learning, the action actually taken next for Sarsa).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config
from .environments import EnvSpec
from .exploration import epsilon as epsilon_schedule
from .networks import Layout


@dataclass
class Segment:
    """Views of the loop's buffers for the steps of one segment."""
    states: np.ndarray       # s_0 .. s_{n-1}
    actions: np.ndarray      # a_0 .. a_{n-1}
    rewards: np.ndarray      # clipped or rescaled r_0 .. r_{n-1}
    terminals: np.ndarray    # step t ended the episode for learning (no bootstrap past it)
    next_state: np.ndarray   # s_n
    done: bool               # the episode ended at step n-1 (s_n is its last observation)
    truncated: bool          # ... by a time limit, so s_n still has a value


def sample(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF sampling of a categorical distribution with one uniform draw ``u``."""
    cdf = np.cumsum(probs)
    return min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(probs) - 1)


def _signatures(tf, layout: Layout, env_spec: EnvSpec):
    obs_dtype = tf.uint8 if env_spec.kind == "atari" else tf.float32
    params = [tf.TensorSpec(spec.shape, tf.float32) for spec in layout.specs]
    observations = tf.TensorSpec((None,) + tuple(env_spec.observation_shape), obs_dtype)
    return params, observations


def _flatten(tf, grads):
    return tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)


class _Agent:
    """What every agent shares: the local snapshot of the shared parameters."""

    def __init__(self, layout: Layout, store, rng: np.random.Generator):
        import tensorflow as tf
        self._tf = tf
        self.layout = layout
        self.store = store
        self.rng = rng
        self.params: list = []

    def snapshot(self, flat: np.ndarray) -> list:
        """Copy a (shared) flat vector into local tensors, one per parameter."""
        constant = self._tf.constant
        return [constant(view) for view in self.layout.split(flat)]

    def sync(self, global_step: int) -> None:
        self.params = self.snapshot(self.store.pull())

    def start_episode(self) -> None:
        """Called before the first step of every episode (recurrent agents reset their state)."""

    def episode_scalars(self) -> dict[str, float]:
        return {}


class ActorCritic(_Agent):
    """A3C: n-step advantage actor-critic with an entropy bonus.

    Feed-forward or LSTM (``--lstm``), over discrete actions (softmax policy) or continuous ones
    (Gaussian policy: a mean and a variance per action dimension; actions are sampled unclipped,
    learned from as sampled, and clipped to the action space by the environment).

    The LSTM's state is carried from step to step and across the segments of an episode, and
    reset to zeros when an episode starts. ``learn`` re-runs the segment from the state the
    segment started with, so gradients are truncated at segment boundaries.
    """

    def __init__(self, layout: Layout, store, rng: np.random.Generator, env_spec: EnvSpec,
                 config: Config):
        super().__init__(layout, store, rng)
        tf = self._tf
        from .losses import actor_critic_loss, clip_gradients, gaussian_actor_critic_loss
        from .networks import actor_critic_forward, recurrent_state_shape

        beta = config.entropy
        clip_norm, clip_type = config.clip_norm, config.clip_norm_type
        self.gamma = config.gamma
        self.segment_length = config.max_local_steps
        self.continuous = env_spec.continuous
        self.dims = env_spec.num_actions
        self.state_shape = recurrent_state_shape(layout)
        recurrent, continuous = self.state_shape is not None, self.continuous
        param_sig, obs_sig = _signatures(tf, layout, env_spec)
        action_sig = (tf.TensorSpec([None, self.dims], tf.float32) if continuous
                      else tf.TensorSpec([None], tf.int32))
        state_sig = [tf.TensorSpec(self.state_shape, tf.float32)] if recurrent else []

        def forward(params, observations, state):
            out = actor_critic_forward(layout, params, observations,
                                       state[0] if recurrent else None)
            return out if recurrent else (*out, None)

        @tf.function(input_signature=[param_sig, obs_sig] + state_sig)
        def policy(params, observations, *state):
            head, values, new_state = forward(params, observations, state)
            parts = list(head) if continuous else [tf.nn.softmax(head)]
            out = tf.concat([p[0] for p in parts] + [values[:1]], axis=0)
            return (out, new_state) if recurrent else out

        @tf.function(input_signature=[param_sig, obs_sig, action_sig,
                                      tf.TensorSpec([None], tf.float32)] + state_sig)
        def gradient(params, observations, actions, returns, *state):
            with tf.GradientTape() as tape:
                tape.watch(params)
                head, values, _ = forward(params, observations, state)
                if continuous:
                    loss = gaussian_actor_critic_loss(*head, values, actions, returns, beta)
                else:
                    loss = actor_critic_loss(head, values, actions, returns, beta)
            grads, norm = clip_gradients(tape.gradient(loss.total, params), clip_norm, clip_type)
            return _flatten(tf, grads), tf.stack([loss.policy, loss.value, loss.entropy, norm])

        # Calling the concrete functions skips tf.function's per-call argument matching, which
        # costs more than the forward pass itself on a single Atari frame.
        self._policy = policy.get_concrete_function()
        self._gradient = gradient.get_concrete_function()
        self._cached: tuple | None = None   # (policy output, state after it) for the next act
        self.greedy = False   # evaluation's --greedy: the most probable action (or the mean)
        self.state = self._zero_state()
        self.segment_state = self.state

    def _zero_state(self):
        return None if self.state_shape is None else np.zeros(self.state_shape, np.float32)

    def start_episode(self) -> None:
        self.state = self.segment_state = self._zero_state()
        self._cached = None

    def sync(self, global_step: int) -> None:
        super().sync(global_step)
        self.segment_state = self.state   # the state before the segment's first step

    def policy(self, params: list, observation: np.ndarray, state=None):
        """(policy output, V(s), state after s) of one observation; the output is the action
        probabilities, or the means then variances."""
        args = [params, self._tf.constant(observation[None])]
        if self.state_shape is None:
            out, new_state = self._policy(*args), None
        else:
            out, new_state = self._policy(*args, self._tf.constant(state))
            new_state = new_state.numpy()
        out = out.numpy()
        return out[:-1], float(out[-1]), new_state

    def act(self, state: np.ndarray):
        cached, self._cached = self._cached, None
        if cached is None:
            out, _, self.state = self.policy(self.params, state, self.state)
        else:
            out, self.state = cached
        if self.continuous:
            mean, variance = out[:self.dims], out[self.dims:]
            if self.greedy:
                return mean.astype(np.float32)
            return (mean + np.sqrt(variance) * self.rng.standard_normal(self.dims)).astype(
                np.float32)
        if self.greedy:
            return int(np.argmax(out))
        return sample(out, self.rng.random())

    def learn(self, seg: Segment) -> tuple[np.ndarray, dict[str, float]]:
        from .returns import n_step_returns
        if seg.done and not seg.truncated:
            bootstrap = 0.0
        else:
            # V(s_n). Its policy also picks the next segment's first action: that action then
            # comes from parameters one update older, no staler than Hogwild makes every action,
            # and it saves one forward pass per segment. (The recurrent state stays the one
            # before s_n until that action is taken.)
            out, bootstrap, after = self.policy(self.params, seg.next_state, self.state)
            self._cached = None if seg.done else (out, after)
        returns = n_step_returns(seg.rewards, seg.terminals, bootstrap, self.gamma)
        constant = self._tf.constant
        args = [self.params, constant(seg.states), constant(seg.actions), constant(returns)]
        if self.state_shape is not None:
            args.append(constant(self.segment_state))
        flat, stats = self._gradient(*args)
        stats = stats.numpy()
        return flat.numpy(), {"loss/policy": stats[0], "loss/value": stats[1],
                              "policy/entropy": stats[2], "train/grad_norm": stats[3]}


class ValueLearner(_Agent):
    """Asynchronous one-step / n-step Q-learning and Sarsa with a shared target network."""

    def __init__(self, layout: Layout, store, rng: np.random.Generator, env_spec: EnvSpec,
                 config: Config, final_epsilon: float):
        super().__init__(layout, store, rng)
        tf = self._tf
        from .losses import clip_gradients, td_loss
        from .networks import q_forward

        clip_delta = config.clip_loss
        clip_norm, clip_type = config.clip_norm, config.clip_norm_type
        self.sarsa = config.alg_type == "sarsa"
        self.gamma = config.gamma
        self.one_step = config.max_local_steps == 1
        self.segment_length = (config.grads_update_steps if self.one_step
                               else config.max_local_steps)
        self.final_epsilon = final_epsilon
        self.annealing_steps = config.epsilon_annealing_steps
        self.num_actions = env_spec.num_actions
        self._target_seen = -1
        self.target: list = []
        param_sig, obs_sig = _signatures(tf, layout, env_spec)

        @tf.function(input_signature=[param_sig, obs_sig])
        def q_values(params, observations):
            return q_forward(layout, params, observations)

        @tf.function(input_signature=[param_sig, obs_sig, tf.TensorSpec([None], tf.int32),
                                      tf.TensorSpec([None], tf.float32)])
        def gradient(params, observations, actions, targets):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = td_loss(q_forward(layout, params, observations), actions, targets,
                               clip_delta)
            grads, norm = clip_gradients(tape.gradient(loss.total, params), clip_norm, clip_type)
            return _flatten(tf, grads), loss.total, tf.reduce_sum(loss.max_q), norm

        self._q = q_values.get_concrete_function()
        self._gradient = gradient.get_concrete_function()
        self._next_action: int | None = None
        self.epsilon = 1.0
        self._max_q_sum, self._max_q_count = 0.0, 0

    def sync(self, global_step: int) -> None:
        super().sync(global_step)
        version = self.store.target_version()
        if version != self._target_seen:   # the target changes once per refresh interval
            self._target_seen = version
            self.target = self.snapshot(self.store.pull_target())
        self.epsilon = epsilon_schedule(global_step, self.final_epsilon, self.annealing_steps)

    def q(self, params: list, observations: np.ndarray) -> np.ndarray:
        return self._q(params, self._tf.constant(observations)).numpy()

    def choose(self, state: np.ndarray) -> int:
        """Epsilon-greedy; the network is evaluated only for greedy choices."""
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.num_actions))
        return int(np.argmax(self.q(self.params, state[None])[0]))

    def act(self, state: np.ndarray) -> int:
        action, self._next_action = self._next_action, None
        return self.choose(state) if action is None else action

    def learn(self, seg: Segment) -> tuple[np.ndarray, dict[str, float]]:
        from .returns import value_targets
        bootstrap_alive = not seg.done or seg.truncated
        next_action = self.choose(seg.next_state) if (self.sarsa and bootstrap_alive) else 0
        if self.sarsa and not seg.done:
            self._next_action = next_action   # Sarsa's a_n is the action really taken next
        if self.one_step:
            # a terminal last step (done, not truncated) is already marked in seg.terminals
            q_next = self.q(self.target, np.concatenate([seg.states[1:], seg.next_state[None]]))
            next_actions = np.append(seg.actions[1:], next_action)
        else:
            q_next = self.q(self.target, seg.next_state[None]) if bootstrap_alive else None
            next_actions = np.array([next_action])
        targets = value_targets(seg.rewards, seg.terminals, q_next, next_actions, self.gamma,
                                self.sarsa, self.one_step)
        n = len(seg.actions)
        constant = self._tf.constant
        flat, loss, max_q_sum, norm = self._gradient(
            self.params, constant(seg.states), constant(seg.actions), constant(targets))
        self._max_q_sum += float(max_q_sum)
        self._max_q_count += n
        return flat.numpy(), {"loss/td": float(loss), "explore/epsilon": self.epsilon,
                              "train/grad_norm": float(norm)}

    def episode_scalars(self) -> dict[str, float]:
        mean = self._max_q_sum / max(self._max_q_count, 1)
        self._max_q_sum, self._max_q_count = 0.0, 0
        return {"q/max_mean": mean, "explore/epsilon": self.epsilon}


def make_agent(config: Config, layout: Layout, env_spec: EnvSpec, store,
               rng: np.random.Generator, final_epsilon: float):
    """The agent of ``config.alg_type``, reading its parameters from ``store``."""
    if config.alg_type == "a3c":
        return ActorCritic(layout, store, rng, env_spec, config)
    return ValueLearner(layout, store, rng, env_spec, config, final_epsilon)
