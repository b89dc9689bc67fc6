"""Parameter layouts and TensorFlow forward passes.

A network here is two things:

* a :class:`Layout`, a list of named parameter shapes, which fixes the order of the one flat
  float32 vector that holds every parameter in shared memory (so the shared layout is always
  derived from the network, never written by hand), and which initialises that vector with numpy
  in the parent process (which never imports TensorFlow);
* pure functions ``forward(layout, params, observations)`` that take the parameters as a list of
  tensors (in layout order), read each by its name, and return the policy outputs and the state
  value (or the Q-values). Passing the parameters in, rather than keeping per-layer
  ``tf.Variable`` objects, makes "sync with the shared vector" one copy per segment and "gradient
  as one flat vector" one ``concat``.

Torsos: NIPS (Mnih et al., 2013; the paper's: conv 16x8x8/4, conv 32x4x4/2, dense 256),
NATURE (Mnih et al., 2015: conv 32x8x8/4, 64x4x4/2, 64x3x3/1, dense 512), UNIVERSE (four conv
32x3x3/2 with ELU and "same" padding on 42x42 frames, each observation standardised to zero mean
and unit variance, no dense layer: the network of OpenAI's universe-starter-agent), NATURE_ELU
(NATURE with ELU units, whose gradient is never exactly zero as a dead ReLU unit's is),
UNIVERSE_BGSTD (A3C's Atari default: UNIVERSE_DENSE's layers with ReLU units, on frames less
each observation's most common value, its background, divided by its standard deviation), the
ablation's other variants (CONV_TORSOS), and for
vector observations two MLPs (two tanh layers of 64 units each), one for the policy and one for the
value. Separate towers matter on tasks like CartPole, whose returns reach the hundreds: a shared
torso lets the large value-loss gradients swamp the policy's features.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

# (filters, kernel, stride) per conv layer, then the dense width (None: no dense layer).
NATURE_CONVS = [(32, 8, 4), (64, 4, 2), (64, 3, 1)]
CONV_TORSOS = {
    "NIPS": ([(16, 8, 4), (32, 4, 2)], 256),
    "NATURE": (NATURE_CONVS, 512),
    "UNIVERSE": ([(32, 3, 2)] * 4, None),
    "NATURE_STD": (NATURE_CONVS, 512),
    "UNIVERSE_DENSE": ([(32, 3, 2)] * 4, 256),
    "NATURE_ELU": (NATURE_CONVS, 512),
    "UNIVERSE_RELU": ([(32, 3, 2)] * 4, 256),
    "UNIVERSE_RAW": ([(32, 3, 2)] * 4, 256),
    "NATURE_CENTRED": (NATURE_CONVS, 512),
    # UNIVERSE_DENSE with one of its layers moved toward NATURE's: twice the filters, three
    # convs (a 6x6 grid into the dense layer instead of 3x3; NATURE's is 7x7), a dense layer
    # of 512.
    "UNIVERSE_WIDE": ([(64, 3, 2)] * 4, 256),
    "UNIVERSE_SHALLOW": ([(32, 3, 2)] * 3, 256),
    "UNIVERSE_D512": ([(32, 3, 2)] * 4, 512),
    # NATURE with leaky ReLU units (slope 0.01 below zero): a unit switched off for every
    # observation still passes a gradient, which Adam scales up, so it can come back.
    "NATURE_LEAKY": (NATURE_CONVS, 512),
    # UNIVERSE_DENSE's layers on NATURE's input and units (frames / 255, ReLU).
    "UNIVERSE_PLAIN": ([(32, 3, 2)] * 4, 256),
    # UNIVERSE_PLAIN on frames less their background (each observation's most common pixel
    # value), which makes a grey field (Pong's) zero as a black one (Breakout's) already is;
    # then as they are (/ 255), or divided by the observation's spread.
    "UNIVERSE_BG": ([(32, 3, 2)] * 4, 256),
    "UNIVERSE_BGSTD": ([(32, 3, 2)] * 4, 256),
    # UNIVERSE_BGSTD for 84x84 frames at about the 42x42 one's cost: a first layer of 4x4
    # patches, stride 4, brings them to 21x21 (as the 42x42 torso's first layer does), where
    # small objects (Beam Rider's enemies) are still whole.
    "UNIVERSE_BGSTD_S4": ([(32, 4, 4)] + [(32, 3, 2)] * 3, 256),
    # UNIVERSE_BGSTD with three convs on 42x42 frames: a 6x6 grid into the dense layer, as the
    # 84x84 frames give UNIVERSE_BGSTD's four (which learned Beam Rider; S4's 3x3 grid on the
    # same frames did not), at about the 42x42 torso's cost.
    "UNIVERSE_BGSTD_SHALLOW": ([(32, 3, 2)] * 3, 256),
    # UNIVERSE_BGSTD's first layer on 84x84 frames (3x3, stride 2: it sees every pixel, as
    # S4's 4x4 patches do not overlap), then a 2x2 max-pool to the 21x21 grid the 42x42 torso
    # has there (a small object's response kept wherever it falls), then two convs to a 6x6 grid:
    # UNIVERSE_BGSTD at 84x84 learned Beam Rider, at 0.46 of the 42x42 torso's steps/s.
    "UNIVERSE_BGSTD_POOL": ([(32, 3, 2)] * 3, 256),
    # The same pool with UNIVERSE_BGSTD's three convs after it (21 -> 11 -> 6 -> 3): the 42x42
    # torso exactly, but for its first layer, which reads the 84x84 frame. POOL's 6x6 grid fed
    # four times the dense weights and learned Pong more slowly than the 42x42 torso.
    "UNIVERSE_BGSTD_POOL4": ([(32, 3, 2)] * 4, 256),
}
# The conv layers' names say how the input is scaled, which activation follows (the dense
# layer's too) and the padding: prefix: (input, activation, padding). The input is "scaled"
# (uint8 screens / 255), "standardised" (each observation to zero mean and unit variance),
# "centred" (scaled, then each observation's mean subtracted), "background" (scaled, less each
# observation's most common value) or "background_standardised" (less that value, divided by
# the observation's standard deviation).
CONV_KINDS = {"conv": ("scaled", "relu", "VALID"), "std_conv": ("standardised", "relu", "VALID"),
              "elu_conv": ("standardised", "elu", "SAME"),
              "raw_elu_conv": ("scaled", "elu", "VALID"),
              "relu_conv": ("standardised", "relu", "SAME"),
              "raw_same_elu_conv": ("scaled", "elu", "SAME"),
              "ctr_conv": ("centred", "relu", "VALID"),
              "leaky_conv": ("scaled", "leaky_relu", "VALID"),
              "plain_same_conv": ("scaled", "relu", "SAME"),
              "bg_conv": ("background", "relu", "SAME"),
              "bgstd_conv": ("background_standardised", "relu", "SAME"),
              "bgstd_pool_conv": ("background_standardised", "relu", "SAME")}
# Kinds whose conv layer of this index is followed by a 2x2 max-pool of stride 2.
POOL_AFTER = {"bgstd_pool_conv": 0}
PREFIXES = {"UNIVERSE": "elu_conv", "UNIVERSE_DENSE": "elu_conv", "NATURE_STD": "std_conv",
            "NATURE_ELU": "raw_elu_conv", "UNIVERSE_RELU": "relu_conv",
            "UNIVERSE_RAW": "raw_same_elu_conv", "NATURE_CENTRED": "ctr_conv",
            "UNIVERSE_WIDE": "elu_conv", "UNIVERSE_SHALLOW": "elu_conv",
            "UNIVERSE_D512": "elu_conv", "NATURE_LEAKY": "leaky_conv",
            "UNIVERSE_PLAIN": "plain_same_conv", "UNIVERSE_BG": "bg_conv",
            "UNIVERSE_BGSTD": "bgstd_conv", "UNIVERSE_BGSTD_S4": "bgstd_conv",
            "UNIVERSE_BGSTD_SHALLOW": "bgstd_conv", "UNIVERSE_BGSTD_POOL": "bgstd_pool_conv",
            "UNIVERSE_BGSTD_POOL4": "bgstd_pool_conv"}
# A conv layer's stride, from its kind and (kernel, filters): the one thing a weight's shape
# does not say.
CONV_STRIDES = {(PREFIXES.get(arch, "conv"), kernel, filters): stride
                for arch, (convs, _) in CONV_TORSOS.items() for filters, kernel, stride in convs}
assert len(CONV_STRIDES) == len({(PREFIXES.get(arch, "conv"), kernel, filters, stride)
                                 for arch, (convs, _) in CONV_TORSOS.items()
                                 for filters, kernel, stride in convs}), \
    "two torsos of one kind have a layer of the same kernel and filters but other strides"
LEAKY_SLOPE = 0.01   # the slope of a leaky ReLU below zero
MLP_HIDDEN = (64, 64)
LSTM_UNITS = 256      # the paper's A3C LSTM: 256 cells after the conv torso's dense layer
MLP_LSTM_UNITS = 64   # ours, after the 64-wide MLP towers of vector tasks (256 ran 4x slower)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor: its name, shape, fan-in and initial scale."""
    name: str
    shape: tuple[int, ...]
    fan_in: int
    init_scale: float = 1.0   # 0: zeros; else uniform(+-scale * sqrt(6 / (fan_in + fan_out)))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Layout:
    """The order and shapes of every parameter inside the flat shared vector."""
    specs: tuple[ParamSpec, ...]
    offsets: tuple[int, ...] = field(init=False)

    def __post_init__(self):
        offsets = np.cumsum([0] + [s.size for s in self.specs])
        object.__setattr__(self, "offsets", tuple(int(o) for o in offsets))

    @property
    def size(self) -> int:
        return self.offsets[-1]

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Views of ``flat`` (no copy), one per parameter, in their shapes."""
        if flat.shape != (self.size,):
            raise ValueError(f"expected a flat vector of {self.size} values, got {flat.shape}")
        return [flat[lo:hi].reshape(spec.shape)
                for spec, lo, hi in zip(self.specs, self.offsets[:-1], self.offsets[1:])]

    def initial_values(self, rng: np.random.Generator) -> np.ndarray:
        """Glorot-uniform weights (scaled per layer), zero biases, as one flat vector."""
        parts = []
        for spec in self.specs:
            if spec.init_scale == 0.0:
                parts.append(np.zeros(spec.size, np.float32))
                continue
            fan_out = spec.shape[-1]
            limit = spec.init_scale * np.sqrt(6.0 / (spec.fan_in + fan_out))
            parts.append(rng.uniform(-limit, limit, spec.size).astype(np.float32))
        return np.concatenate(parts)


def _conv_out(size: int, kernel: int, stride: int, same: bool = False) -> int:
    return -(-size // stride) if same else (size - kernel) // stride + 1


def torso_specs(arch: str, observation_shape: tuple[int, ...]) -> tuple[list[ParamSpec], int]:
    """Parameter specs of the torso for these observations, and the torso's output width."""
    specs: list[ParamSpec] = []
    if len(observation_shape) == 1:
        return mlp_specs("mlp", observation_shape[0]), MLP_HIDDEN[-1]
    height, width_px, channels = observation_shape
    convs, dense = CONV_TORSOS[arch]
    prefix = PREFIXES.get(arch, "conv")
    same = CONV_KINDS[prefix][2] == "SAME"
    for i, (filters, kernel, stride) in enumerate(convs):
        fan_in = kernel * kernel * channels
        specs += [ParamSpec(f"{prefix}{i}/w", (kernel, kernel, channels, filters), fan_in),
                  ParamSpec(f"{prefix}{i}/b", (filters,), fan_in, 0.0)]
        height, width_px, channels = (_conv_out(height, kernel, stride, same),
                                      _conv_out(width_px, kernel, stride, same), filters)
        if POOL_AFTER.get(prefix) == i:
            height, width_px = _conv_out(height, 2, 2, same), _conv_out(width_px, 2, 2, same)
    flat = height * width_px * channels
    if dense is None:
        return specs, flat
    specs += [ParamSpec("dense/w", (flat, dense), flat),
              ParamSpec("dense/b", (dense,), flat, 0.0)]
    return specs, dense


def mlp_specs(prefix: str, width: int) -> list[ParamSpec]:
    specs = []
    for i, hidden in enumerate(MLP_HIDDEN):
        specs += [ParamSpec(f"{prefix}{i}/w", (width, hidden), width),
                  ParamSpec(f"{prefix}{i}/b", (hidden,), width, 0.0)]
        width = hidden
    return specs


def lstm_specs(prefix: str, width: int, units: int) -> list[ParamSpec]:
    """One LSTM layer: input and recurrent kernels stacked, [x, h] @ w + b, gates i, f, g, o."""
    fan_in = width + units
    return [ParamSpec(f"{prefix}lstm/w", (fan_in, 4 * units), fan_in),
            ParamSpec(f"{prefix}lstm/b", (4 * units,), fan_in, 0.0)]


def policy_head_specs(width: int, num_actions: int, continuous: bool) -> list[ParamSpec]:
    """Discrete: one logit per action. Continuous: a mean (linear) and a variance (softplus)
    per action dimension. The head starts small: a near-uniform or near-unit-variance policy."""
    if continuous:
        return [ParamSpec("policy/mean_w", (width, num_actions), width, 0.01),
                ParamSpec("policy/mean_b", (num_actions,), width, 0.0),
                ParamSpec("policy/var_w", (width, num_actions), width, 0.01),
                ParamSpec("policy/var_b", (num_actions,), width, 0.0)]
    return [ParamSpec("policy/w", (width, num_actions), width, 0.01),
            ParamSpec("policy/b", (num_actions,), width, 0.0)]


def actor_critic_layout(arch: str, observation_shape: tuple[int, ...], num_actions: int,
                        lstm: bool = False, continuous: bool = False) -> Layout:
    """Torso (+ LSTM) + policy head + state value.

    Vector observations get two towers: ``pi*`` layers feed the policy, ``v*`` the value (each
    with an LSTM of its own, of MLP_LSTM_UNITS cells, when ``lstm``). ``num_actions`` is the
    action dimension when ``continuous``.
    """
    if len(observation_shape) == 1:
        width = MLP_LSTM_UNITS if lstm else MLP_HIDDEN[-1]
        head = policy_head_specs(width, num_actions, continuous)
        recurrent = (lambda prefix: lstm_specs(prefix, MLP_HIDDEN[-1], MLP_LSTM_UNITS)) \
            if lstm else (lambda prefix: [])
        return Layout(tuple(
            mlp_specs("pi", observation_shape[0]) + recurrent("pi_") + head
            + mlp_specs("v", observation_shape[0]) + recurrent("v_")
            + [ParamSpec("value/w", (width, 1), width, 1.0),
               ParamSpec("value/b", (1,), width, 0.0)]))
    specs, width = torso_specs(arch, observation_shape)
    if lstm:
        specs += lstm_specs("", width, LSTM_UNITS)
        width = LSTM_UNITS
    head = policy_head_specs(width, num_actions, continuous)
    specs += head + [ParamSpec("value/w", (width, 1), width, 1.0),
                     ParamSpec("value/b", (1,), width, 0.0)]
    return Layout(tuple(specs))


def recurrent_state_shape(layout: Layout) -> tuple[int, int] | None:
    """One environment's recurrent state, (2 x number of LSTMs, units): the rows are (c, h) of
    each LSTM; None if feed-forward."""
    kernels = [spec for spec in layout.specs if spec.name.endswith("lstm/w")]
    return (2 * len(kernels), kernels[0].shape[1] // 4) if kernels else None


def q_layout(arch: str, observation_shape: tuple[int, ...], num_actions: int) -> Layout:
    """Torso + one Q-value per action (value-based methods)."""
    if len(observation_shape) == 1:
        specs, width = mlp_specs("q", observation_shape[0]), MLP_HIDDEN[-1]
    else:
        specs, width = torso_specs(arch, observation_shape)
    specs += [ParamSpec("q/w", (width, num_actions), width, 1.0),
              ParamSpec("q/b", (num_actions,), width, 0.0)]
    return Layout(tuple(specs))


def layout_for(settings, env_spec) -> "Layout":
    """The layout of the network that ``settings`` (a ``Config``, or the parsed flags: its
    ``alg_type``, ``arch`` and ``lstm``) describes for an environment of ``env_spec``."""
    return make_layout(settings.alg_type, settings.arch, env_spec.observation_shape,
                       env_spec.num_actions, settings.lstm, env_spec.continuous)


def make_layout(alg_type: str, arch: str, observation_shape: tuple[int, ...],
                num_actions: int, lstm: bool = False, continuous: bool = False) -> Layout:
    """The parameter layout of ``alg_type``'s network."""
    if alg_type == "a3c":
        return actor_critic_layout(arch, observation_shape, num_actions, lstm, continuous)
    return q_layout(arch, observation_shape, num_actions)


# --------------------------------------------------------------------------- TensorFlow
# Every forward pass takes the layout and the parameter tensors in layout order, and reads each
# tensor by its name: the layout alone says which network it is (conv or MLP torso, LSTM or not,
# softmax or Gaussian head), so no argument can disagree with it.

def named(layout: Layout, params: Sequence) -> dict:
    """{parameter name: tensor} for ``params`` in ``layout``'s order."""
    return {spec.name: tensor for spec, tensor in zip(layout.specs, params)}


def background(observations):
    """Each observation's most common pixel value, shaped to broadcast over it: the background
    of a game's field. Screens are uint8; other inputs are rounded and clipped to 0-255 first."""
    import tensorflow as tf
    if observations.dtype != tf.uint8:
        observations = tf.clip_by_value(tf.round(tf.cast(observations, tf.float32)), 0.0, 255.0)
    flat = tf.reshape(tf.cast(observations, tf.int32), [tf.shape(observations)[0], -1])
    counts = tf.math.bincount(flat, minlength=256, maxlength=256, axis=-1)
    return tf.reshape(tf.cast(tf.argmax(counts, axis=-1), tf.float32), [-1, 1, 1, 1])


def conv_torso(p: dict, observations, layers: list | None = None):
    """Conv layers of one kind of CONV_KINDS (how the screens are scaled, the activation, the
    padding), told by their names: ``conv<i>`` (ReLU, "valid" padding, uint8 screens scaled to
    [0, 1]), ``std_conv<i>``, ``elu_conv<i>``...; then, if the layout has one, a ``dense``
    layer with the convs' activation. Each layer's activations are appended to ``layers`` as
    (name, tensor) when it is given."""
    import tensorflow as tf
    h = tf.cast(observations, tf.float32)
    prefix = next((name for name in CONV_KINDS if f"{name}0/w" in p), None)
    if prefix is None:
        raise ValueError(f"no convolution layer of a known kind in {sorted(p)}")
    scaling, activation, padding = CONV_KINDS[prefix]
    activation = {"elu": tf.nn.elu, "relu": tf.nn.relu,
                  "leaky_relu": lambda x: tf.nn.leaky_relu(x, LEAKY_SLOPE)}[activation]
    if scaling == "standardised":
        mean, variance = tf.nn.moments(h, axes=[1, 2, 3], keepdims=True)
        h = (h - mean) * tf.math.rsqrt(variance + 1e-2)
    elif scaling.startswith("background"):
        h = h - background(observations)
        if scaling == "background":
            h = h * (1.0 / 255.0)
        else:
            _, variance = tf.nn.moments(h, axes=[1, 2, 3], keepdims=True)
            h = h * tf.math.rsqrt(variance + 1e-2)
    else:
        h = h * (1.0 / 255.0)
        if scaling == "centred":
            h = h - tf.reduce_mean(h, axis=[1, 2, 3], keepdims=True)
    i = 0
    while f"{prefix}{i}/w" in p:
        w = p[f"{prefix}{i}/w"]
        stride = CONV_STRIDES[(prefix, int(w.shape[0]), int(w.shape[-1]))]
        h = activation(tf.nn.conv2d(h, w, stride, padding) + p[f"{prefix}{i}/b"])
        if POOL_AFTER.get(prefix) == i:
            h = tf.nn.max_pool2d(h, 2, 2, padding)
        if layers is not None:
            layers.append((f"{prefix}{i}", h))
        i += 1
    h = tf.reshape(h, [-1, int(np.prod(h.shape[1:]))])
    if "dense/w" not in p:
        return h
    h = activation(tf.matmul(h, p["dense/w"]) + p["dense/b"])
    if layers is not None:
        layers.append(("dense", h))
    return h


def mlp(p: dict, prefix: str, observations):
    """The tanh layers ``<prefix>0``, ``<prefix>1``, ..."""
    import tensorflow as tf
    h = observations
    for i in range(len(MLP_HIDDEN)):
        h = tf.tanh(tf.matmul(h, p[f"{prefix}{i}/w"]) + p[f"{prefix}{i}/b"])
    return h


def lstm_sequence(w, b, inputs, state, keep):
    """Run one LSTM over the sequences of K environments from their ``state``.

    ``inputs``: (T, K, width), time first; ``state``: (K, 2, units), rows c and h of each
    environment; ``keep``: (T, K), 0 where an environment's new episode starts at step t (its
    state is reset to zeros before that step), else 1. Returns the outputs h_1..h_T,
    (T, K, units), and the final states (K, 2, units). The forget gate gets a bias of +1
    (Jozefowicz et al., 2015). Gradients flow through the T steps and stop at ``state``: the
    truncation at segment boundaries.
    """
    import tensorflow as tf
    width = inputs.shape[-1]
    projected = tf.matmul(inputs, w[:width]) + b          # the input part, for all steps at once
    recurrent = w[width:]

    def step(carry, xs):
        x_t, keep_t = xs
        carry = carry * keep_t[:, None, None]
        c, h = carry[:, 0], carry[:, 1]
        i, f, g, o = tf.split(x_t + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f + 1.0) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.stack([c, tf.sigmoid(o) * tf.tanh(c)], axis=1)

    states = tf.scan(step, (projected, keep), initializer=state)   # (T, K, 2, units)
    return states[:, :, 1], states[-1]


def _policy_head(p: dict, h):
    """Logits, or (mean, variance) when the layout has a Gaussian head."""
    import tensorflow as tf
    if "policy/mean_w" in p:
        mean = tf.matmul(h, p["policy/mean_w"]) + p["policy/mean_b"]
        variance = tf.nn.softplus(tf.matmul(h, p["policy/var_w"]) + p["policy/var_b"]) + 1e-4
        return mean, variance
    return tf.matmul(h, p["policy/w"]) + p["policy/b"]


def _value_head(p: dict, h):
    import tensorflow as tf
    return tf.matmul(h, p["value/w"])[:, 0] + p["value/b"][0]


def actor_critic_forward(layout: Layout, params: Sequence, observations, state=None,
                         keep=None):
    """Policy outputs and state values (batch,) for a batch, or with ``state`` for sequences.

    The policy outputs are logits (batch, actions), or (mean, variance) each (batch, dims) for a
    Gaussian head. With ``state`` (the recurrent states of K environments before their first
    observation, (K, rows, units), see :func:`recurrent_state_shape`) and ``keep`` ((T, K), see
    :func:`lstm_sequence`), the T x K observations are K sequences, time first
    (``observations[t * K + k]``), and the new states are returned too:
    ``(policy, values, state)``.
    """
    import tensorflow as tf
    p = named(layout, params)

    def recur(prefix: str, h, rows: slice):
        envs = tf.shape(state)[0]
        sequence = tf.reshape(h, [-1, envs, h.shape[-1]])
        out, final = lstm_sequence(p[f"{prefix}lstm/w"], p[f"{prefix}lstm/b"], sequence,
                                   state[:, rows], keep)
        return tf.reshape(out, [-1, out.shape[-1]]), final

    if "pi0/w" in p:   # vector observations: a policy tower and a value tower
        h_pi, h_v = mlp(p, "pi", observations), mlp(p, "v", observations)
        if state is None:
            return _policy_head(p, h_pi), _value_head(p, h_v)
        h_pi, s_pi = recur("pi_", h_pi, slice(0, 2))
        h_v, s_v = recur("v_", h_v, slice(2, 4))
        return _policy_head(p, h_pi), _value_head(p, h_v), tf.concat([s_pi, s_v], axis=1)
    h = conv_torso(p, observations)
    if state is None:
        return _policy_head(p, h), _value_head(p, h)
    h, new_state = recur("", h, slice(0, 2))
    return _policy_head(p, h), _value_head(p, h), new_state


def q_forward(layout: Layout, params: Sequence, observations):
    """Q-values (batch, actions)."""
    import tensorflow as tf
    p = named(layout, params)
    h = mlp(p, "q", observations) if "q0/w" in p else conv_torso(p, observations)
    return tf.matmul(h, p["q/w"]) + p["q/b"]
