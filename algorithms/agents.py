"""The per-algorithm pieces of the actor-learner: what to do with one segment of experience.

An agent owns the local TensorFlow functions of its algorithm and answers four questions of the
shared loop in ``actor_learner.py``:

* ``sync(global_step)``: snapshot the parameters (and target parameters) of the store
  (``store.py``) into local tensors;
* ``act(states)``: the actions to take, one per environment (an agent serves K environments,
  ``--envs_per_actor``, with one batched forward pass);
* ``final_value(observation, env)``: the value of the last observation of an episode cut by a
  time limit (what the returns bootstrap from there);
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
    """Views of the loop's buffers for one segment: T steps of K environments.

    A step ``t`` of environment ``k`` *cuts* the returns when nothing after it may be
    bootstrapped through the buffer: a game over, a lost life with ``--single_life_episodes``,
    or the end of an episode by a time limit. ``cut_values[t, k]`` stands in for what follows
    a cut: 0 after a terminal state, the value of the episode's last observation after a time
    limit (computed when it was seen). ``ended[t, k]``: the episode ended at step t, so step t + 1
    starts a new one (recurrent states are reset there).
    """
    states: np.ndarray       # (T, K, ...): s_0 .. s_{T-1}
    actions: np.ndarray      # (T, K) or (T, K, dims)
    rewards: np.ndarray      # (T, K): clipped or rescaled
    cuts: np.ndarray         # (T, K) bool
    cut_values: np.ndarray   # (T, K)
    ended: np.ndarray        # (T, K) bool
    next_states: np.ndarray  # (K, ...): s_T, what each environment shows next

    @property
    def steps(self) -> int:
        return len(self.rewards)


def sample(probs: np.ndarray, u: float) -> int:
    """Inverse-CDF sampling of a categorical distribution with one uniform draw ``u``."""
    cdf = np.cumsum(probs)
    return min(int(np.searchsorted(cdf, u * cdf[-1], side="right")), len(probs) - 1)


def _signatures(tf, layout: Layout, env_spec: EnvSpec):
    obs_dtype = tf.uint8 if env_spec.kind == "atari" else tf.float32
    params = [tf.TensorSpec(spec.shape, tf.float32) for spec in layout.specs]
    observations = tf.TensorSpec((None,) + tuple(env_spec.observation_shape), obs_dtype)
    return params, observations


def _graph(tf, signature: list):
    """``tf.function`` over ``signature`` without AutoGraph: the traced code branches on Python
    values only, and AutoGraph's source conversion would cost a learner four times the rest of
    building its agent (``benchmarks/startup.py``)."""
    return tf.function(input_signature=signature, autograph=False)


def flat_calls(function):
    """The traced graph of ``function`` as a callable on flat tensor inputs (the parameters
    spread first, in layout order), which returns the list of its flat outputs.

    ``ConcreteFunction.__call__`` binds and checks its structured arguments on every call: about
    0.4 ms of CPU with a network's ten parameter tensors, more than the kernels of a batch-1
    forward pass of the NIPS network take. Its inference function runs the same graph without
    that (``benchmarks/update_path.py --calls``). The functions here capture nothing (the
    parameters are passed in), so their flat inputs are all their inputs.
    """
    concrete = function.get_concrete_function()
    if concrete.captured_inputs:
        raise RuntimeError(f"{concrete.name} captures tensors; pass them in as arguments")
    return concrete.inference_fn.call_flat


def tensor_view(tensor) -> np.ndarray:
    """A read-only numpy view of a CPU tensor's buffer: ``.numpy()`` would copy it (2.7 MB for
    the NIPS network's gradient)."""
    return np.asarray(memoryview(tensor))


def _flatten(tf, grads):
    return tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)


ALIGNMENT = 64   # bytes: what TensorFlow's CPU kernels assume of a tensor's buffer


def aligned_array(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array whose buffer starts on an :data:`ALIGNMENT` boundary."""
    size = int(np.prod(shape))
    raw = np.empty(size + ALIGNMENT // 4, np.float32)
    start = (-raw.ctypes.data % ALIGNMENT) // 4
    return raw[start:start + size].reshape(shape)


class LocalCopy:
    """A local copy of a flat parameter vector as TensorFlow tensors, one per parameter, which
    ``load`` refreshes in place.

    The tensors are made once, over aligned numpy buffers that they share through DLPack
    (no copy), so a refresh is one ``np.copyto`` per parameter. Ten ``tf.constant`` calls
    instead, which allocate and copy, cost the NIPS network's learners about 1.5 ms per segment
    (``benchmarks/update_path.py --calls``). TensorFlow runs eagerly and synchronously here, so
    a refresh between calls never changes a tensor while a kernel reads it.
    """

    def __init__(self, tf, layout: Layout):
        self.layout = layout
        self.arrays = [aligned_array(spec.shape) for spec in layout.specs]
        self.tensors = [tf.experimental.dlpack.from_dlpack(array.__dlpack__())
                        for array in self.arrays]

    def load(self, flat: np.ndarray) -> list:
        """Copy ``flat`` (the store's vector, shared memory in training) in; the tensors."""
        for array, view in zip(self.arrays, self.layout.split(flat)):
            np.copyto(array, view)
        return self.tensors


class _Agent:
    """What every agent shares: the local snapshot of the shared parameters."""

    def __init__(self, layout: Layout, store, rng: np.random.Generator):
        import tensorflow as tf
        self._tf = tf
        self.layout = layout
        self.store = store
        self.rng = rng
        self._local = LocalCopy(tf, layout)
        self.params: list = []

    def sync(self, global_step: int) -> None:
        """θ' ← θ: the paper's per-segment copy of the shared parameters."""
        self.params = self._local.load(self.store.pull())

    def start_episode(self, env: int | None = None) -> None:
        """Called before the first step of every episode of environment ``env`` (of all of them
        when None): recurrent agents reset its state."""

    def episode_scalars(self) -> dict[str, float]:
        return {}


class ActorCritic(_Agent):
    """A3C: n-step advantage actor-critic with an entropy bonus, over K environments at once.

    Feed-forward or LSTM (``--lstm``), over discrete actions (softmax policy) or continuous ones
    (Gaussian policy: a mean and a variance per action dimension; actions are sampled unclipped,
    learned from as sampled, and clipped to the action space by the environment).

    The LSTM's state (one per environment) is carried from step to step and across the segments
    of an episode, and reset to zeros when that environment's episode starts. ``learn`` re-runs
    the segment from the states the segment started with, resetting each environment's state
    where its episode ended inside the segment, so gradients are truncated at segment
    boundaries.

    The loss is summed over the steps of a segment (the paper's Algorithm S3) and averaged over
    the K environments: one update of K environments is as large as the paper's update of one,
    and the learning rate means the same at every K.
    """

    def __init__(self, layout: Layout, store, rng: np.random.Generator, env_spec: EnvSpec,
                 config: Config, num_envs: int = 1):
        super().__init__(layout, store, rng)
        tf = self._tf
        from .losses import actor_critic_loss, clip_gradients, gaussian_actor_critic_loss
        from .networks import actor_critic_forward, recurrent_state_shape

        beta = config.entropy
        clip_norm, clip_type = config.clip_norm, config.clip_norm_type
        self.gamma = config.gamma
        self.segment_length = config.max_local_steps
        self.num_envs = num_envs
        self.continuous = env_spec.continuous
        self.dims = env_spec.num_actions
        shape = recurrent_state_shape(layout)
        self.state_shape = None if shape is None else (num_envs,) + shape
        recurrent, continuous = self.state_shape is not None, self.continuous
        param_sig, obs_sig = _signatures(tf, layout, env_spec)
        action_sig = (tf.TensorSpec([None, self.dims], tf.float32) if continuous
                      else tf.TensorSpec([None], tf.int32))
        state_sig = ([tf.TensorSpec([None] + list(shape), tf.float32),
                      tf.TensorSpec([None, None], tf.float32)] if recurrent else [])

        def forward(params, observations, recurrent_args):
            if not recurrent:
                return (*actor_critic_forward(layout, params, observations), None)
            state, keep = recurrent_args
            return actor_critic_forward(layout, params, observations, state, keep)

        @_graph(tf, [param_sig, obs_sig] + state_sig)
        def policy(params, observations, *recurrent_args):
            head, values, new_state = forward(params, observations, recurrent_args)
            parts = list(head) if continuous else [tf.nn.softmax(head)]
            out = tf.concat(parts + [values[:, None]], axis=1)
            return (out, new_state) if recurrent else out

        @_graph(tf, [param_sig, obs_sig, action_sig, tf.TensorSpec([None], tf.float32),
                     tf.TensorSpec([], tf.float32)] + state_sig)
        def gradient(params, observations, actions, returns, envs, *recurrent_args):
            with tf.GradientTape() as tape:
                tape.watch(params)
                head, values, _ = forward(params, observations, recurrent_args)
                if continuous:
                    loss = gaussian_actor_critic_loss(*head, values, actions, returns, beta)
                else:
                    loss = actor_critic_loss(head, values, actions, returns, beta)
                total = loss.total / envs
            grads, norm = clip_gradients(tape.gradient(total, params), clip_norm, clip_type)
            return _flatten(tf, grads), tf.stack([loss.policy / envs, loss.value / envs,
                                                  loss.entropy, norm])

        self._policy = flat_calls(policy)
        self._gradient = flat_calls(gradient)
        self._cached: tuple | None = None   # (policy outputs, states after them) for next act
        self.greedy = False   # evaluation's --greedy: the most probable action (or the mean)
        self.state = self._zero_state()
        self.segment_state = self.state
        self._keep_one = np.ones((1, num_envs), np.float32)

    def _zero_state(self):
        return None if self.state_shape is None else np.zeros(self.state_shape, np.float32)

    def start_episode(self, env: int | None = None) -> None:
        """A new episode in environment ``env`` (all of them when None): its recurrent state
        goes back to zeros."""
        if env is None:
            self.state = self.segment_state = self._zero_state()
        elif self.state is not None:
            self.state = self.state.copy()
            self.state[env] = 0.0
        self._cached = None

    def sync(self, global_step: int) -> None:
        super().sync(global_step)
        self.segment_state = self.state   # the states before the segment's first step

    def policy(self, params: list, observations: np.ndarray, state=None):
        """(policy outputs, V(s), states after s) of a batch of observations, one per
        environment; the outputs are the action probabilities, or the means then variances."""
        args = [*params, self._tf.constant(observations)]
        if self.state_shape is None:
            (out,), new_state = self._policy(*args), None
        else:
            keep = self._keep_one if len(observations) == self.num_envs else \
                np.ones((1, len(observations)), np.float32)
            out, new_state = self._policy(*args, self._tf.constant(state),
                                          self._tf.constant(keep))
            new_state = new_state.numpy()
        out = out.numpy()
        return out[:, :-1], out[:, -1], new_state

    def final_value(self, observation: np.ndarray, env: int) -> float:
        """V of the last observation of an episode cut by a time limit, from environment
        ``env``'s current recurrent state."""
        state = None if self.state is None else self.state[env:env + 1]
        return float(self.policy(self.params, observation[None], state)[1][0])

    def act(self, states: np.ndarray) -> np.ndarray:
        """One action per environment: (K,) indices, or (K, dims) for continuous actions."""
        cached, self._cached = self._cached, None
        if cached is None:
            out, _, self.state = self.policy(self.params, states, self.state)
        else:
            out, self.state = cached
        if self.continuous:
            mean, variance = out[:, :self.dims], out[:, self.dims:]
            if self.greedy:
                return mean.astype(np.float32)
            noise = self.rng.standard_normal(mean.shape)
            return (mean + np.sqrt(variance) * noise).astype(np.float32)
        if self.greedy:
            return np.argmax(out, axis=1).astype(np.int32)
        return np.array([sample(p, u) for p, u in zip(out, self.rng.random(len(out)))],
                        np.int32)

    def learn(self, seg: Segment) -> tuple[np.ndarray, dict[str, float]]:
        from .returns import n_step_returns
        # V(s_T) for every environment. Its policy also picks the next segment's first actions:
        # they then come from parameters one update older, no staler than Hogwild makes every
        # action, and it saves one forward pass per segment. (The recurrent states stay the ones
        # before s_T until those actions are taken.)
        out, bootstrap, after = self.policy(self.params, seg.next_states, self.state)
        self._cached = (out, after)
        returns = n_step_returns(seg.rewards, seg.cuts, bootstrap, self.gamma, seg.cut_values)
        constant = self._tf.constant
        steps, envs = seg.rewards.shape
        flat_actions = seg.actions.reshape((steps * envs,) + seg.actions.shape[2:])
        args = [*self.params, constant(seg.states.reshape((-1,) + seg.states.shape[2:])),
                constant(flat_actions), constant(returns.reshape(-1)), constant(float(envs))]
        if self.state_shape is not None:
            keep = np.ones((steps, envs), np.float32)
            keep[1:] = ~seg.ended[:-1]   # a new episode starts after each end
            args += [constant(self.segment_state), constant(keep)]
        flat, stats = self._gradient(*args)
        stats = stats.numpy()
        return tensor_view(flat), {"loss/policy": stats[0], "loss/value": stats[1],
                                   "policy/entropy": stats[2], "train/grad_norm": stats[3]}


class ValueLearner(_Agent):
    """Asynchronous one-step / n-step Q-learning and Sarsa with a shared target network, over
    K environments at once (the loss summed over steps, averaged over environments, as A3C's).
    """

    def __init__(self, layout: Layout, store, rng: np.random.Generator, env_spec: EnvSpec,
                 config: Config, final_epsilon: float, num_envs: int = 1):
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
        self.num_envs = num_envs
        self._target_seen = -1
        self._local_target = LocalCopy(tf, layout)
        self.target: list = []
        param_sig, obs_sig = _signatures(tf, layout, env_spec)

        @_graph(tf, [param_sig, obs_sig])
        def q_values(params, observations):
            return q_forward(layout, params, observations)

        @_graph(tf, [param_sig, obs_sig, tf.TensorSpec([None], tf.int32),
                     tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.float32)])
        def gradient(params, observations, actions, targets, envs):
            with tf.GradientTape() as tape:
                tape.watch(params)
                loss = td_loss(q_forward(layout, params, observations), actions, targets,
                               clip_delta)
                total = loss.total / envs
            grads, norm = clip_gradients(tape.gradient(total, params), clip_norm, clip_type)
            return _flatten(tf, grads), total, tf.reduce_sum(loss.max_q), norm

        self._q = flat_calls(q_values)
        self._gradient = flat_calls(gradient)
        self._next_actions: np.ndarray | None = None   # Sarsa: a_T, carried to the next segment
        self.epsilon = 1.0
        self._max_q_sum, self._max_q_count = 0.0, 0

    def sync(self, global_step: int) -> None:
        super().sync(global_step)
        version = self.store.target_version()
        if version != self._target_seen:   # the target changes once per refresh interval
            self._target_seen = version
            self.target = self._local_target.load(self.store.pull_target())
        self.epsilon = epsilon_schedule(global_step, self.final_epsilon, self.annealing_steps)

    def start_episode(self, env: int | None = None) -> None:
        if env is None:
            self._next_actions = None

    def q(self, params: list, observations: np.ndarray) -> np.ndarray:
        return self._q(*params, self._tf.constant(observations))[0].numpy()

    def choose(self, states: np.ndarray) -> np.ndarray:
        """Epsilon-greedy, one action per state; the network is evaluated only when some
        choice is greedy."""
        count = len(states)
        explore = self.rng.random(count) < self.epsilon
        actions = self.rng.integers(self.num_actions, size=count)
        if not explore.all():
            greedy = np.argmax(self.q(self.params, states[~explore]), axis=1)
            actions[~explore] = greedy
        return actions.astype(np.int32)

    def act(self, states: np.ndarray) -> np.ndarray:
        actions, self._next_actions = self._next_actions, None
        return self.choose(states) if actions is None else actions

    def final_value(self, observation: np.ndarray, env: int) -> float:
        """The target network's value of the last observation of an episode cut by a time
        limit: max over actions, or (Sarsa) the action the policy would take there."""
        q = self.q(self.target, observation[None])[0]
        return float(q[self.choose(observation[None])[0]] if self.sarsa else q.max())

    def learn(self, seg: Segment) -> tuple[np.ndarray, dict[str, float]]:
        from .returns import value_targets
        steps, envs = seg.rewards.shape
        # Sarsa's a_T is the action each environment really takes next: chosen here, carried.
        next_actions = self.choose(seg.next_states) if self.sarsa else \
            np.zeros(envs, np.int32)
        if self.sarsa:
            self._next_actions = next_actions
        if self.one_step:
            following = np.concatenate([seg.states[1:], seg.next_states[None]])
            q_next = self.q(self.target, following.reshape((-1,) + following.shape[2:]))
            q_next = q_next.reshape(steps, envs, -1)
            next_actions = np.concatenate([seg.actions[1:], next_actions[None]])
        else:
            q_next = self.q(self.target, seg.next_states)
        targets = value_targets(seg.rewards, seg.cuts, q_next, next_actions, self.gamma,
                                self.sarsa, self.one_step, seg.cut_values)
        constant = self._tf.constant
        flat, loss, max_q_sum, norm = self._gradient(
            *self.params, constant(seg.states.reshape((-1,) + seg.states.shape[2:])),
            constant(seg.actions.reshape(-1)), constant(targets.reshape(-1)),
            constant(float(envs)))
        self._max_q_sum += float(max_q_sum)
        self._max_q_count += steps * envs
        return tensor_view(flat), {"loss/td": float(loss), "explore/epsilon": self.epsilon,
                                   "train/grad_norm": float(norm)}

    def episode_scalars(self) -> dict[str, float]:
        mean = self._max_q_sum / max(self._max_q_count, 1)
        self._max_q_sum, self._max_q_count = 0.0, 0
        return {"q/max_mean": mean, "explore/epsilon": self.epsilon}


def make_agent(config: Config, layout: Layout, env_spec: EnvSpec, store,
               rng: np.random.Generator, final_epsilon: float, num_envs: int = 1):
    """The agent of ``config.alg_type`` for ``num_envs`` environments, reading its parameters
    from ``store``."""
    if config.alg_type == "a3c":
        return ActorCritic(layout, store, rng, env_spec, config, num_envs)
    return ValueLearner(layout, store, rng, env_spec, config, final_epsilon, num_envs)
