import numpy as np
import pytest

from algorithms.networks import actor_critic_layout


@pytest.mark.parametrize("arch, shape, actions, expected", [
    # conv 8x8x4x16+16, conv 4x4x16x32+32, dense 2592x256+256, policy 256x6+6, value 256+1
    ("NIPS", (84, 84, 4), 6, 4096 + 16 + 8192 + 32 + 2592 * 256 + 256 + 256 * 6 + 6 + 257),
    # conv 8x8x4x32+32, 4x4x32x64+64, 3x3x64x64+64, dense 3136x512+512, heads
    ("NATURE", (84, 84, 4), 4, 8192 + 32 + 32768 + 64 + 36864 + 64 + 3136 * 512 + 512
     + 512 * 4 + 4 + 513),
    # four conv 3x3x32/2 "same": 42 -> 21 -> 11 -> 6 -> 3, so 3*3*32 = 288 features, no dense
    ("UNIVERSE", (42, 42, 1), 6, 288 + 32 + 3 * (9216 + 32) + 288 * 6 + 6 + 289),
    # UNIVERSE's convs, then a dense layer of 256: 288x256+256, heads on 256
    ("UNIVERSE_DENSE", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # NATURE's parameters, named std_conv<i> (standardised input)
    ("NATURE_STD", (84, 84, 4), 4, 8192 + 32 + 32768 + 64 + 36864 + 64 + 3136 * 512 + 512
     + 512 * 4 + 4 + 513),
    # NATURE's parameters again, named raw_elu_conv<i> (ELU)
    ("NATURE_ELU", (84, 84, 4), 4, 8192 + 32 + 32768 + 64 + 36864 + 64 + 3136 * 512 + 512
     + 512 * 4 + 4 + 513),
    # UNIVERSE_DENSE's parameters, named relu_conv<i> (ReLU)
    ("UNIVERSE_RELU", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # again, named raw_same_elu_conv<i> (frames / 255)
    ("UNIVERSE_RAW", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # NATURE's parameters again, named ctr_conv<i> (frames / 255 less their mean)
    ("NATURE_CENTRED", (84, 84, 4), 4, 8192 + 32 + 32768 + 64 + 36864 + 64 + 3136 * 512 + 512
     + 512 * 4 + 4 + 513),
    # UNIVERSE_DENSE with 64 filters a layer: 3x3x4x64, three 3x3x64x64, 3*3*64 = 576 into 256
    ("UNIVERSE_WIDE", (42, 42, 4), 6, 2304 + 64 + 3 * (36864 + 64) + 576 * 256 + 256
     + 256 * 6 + 6 + 257),
    # three convs: 42 -> 21 -> 11 -> 6, so 6*6*32 = 1152 features into 256
    ("UNIVERSE_SHALLOW", (42, 42, 4), 6, 1152 + 32 + 2 * (9216 + 32) + 1152 * 256 + 256
     + 256 * 6 + 6 + 257),
    # UNIVERSE_DENSE's convs, a dense layer of 512, heads on 512
    ("UNIVERSE_D512", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 512 + 512
     + 512 * 6 + 6 + 513),
    # NATURE's parameters again, named leaky_conv<i> (leaky ReLU)
    ("NATURE_LEAKY", (84, 84, 4), 4, 8192 + 32 + 32768 + 64 + 36864 + 64 + 3136 * 512 + 512
     + 512 * 4 + 4 + 513),
    # UNIVERSE_DENSE's parameters, named plain_same_conv<i> (frames / 255, ReLU)
    ("UNIVERSE_PLAIN", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # UNIVERSE_DENSE's parameters, named bg_conv<i> and bgstd_conv<i> (less the background)
    ("UNIVERSE_BG", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    ("UNIVERSE_BGSTD", (42, 42, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # a first conv of 4x4x4x32 patches, stride 4: 84 -> 21, then as UNIVERSE_BGSTD's
    # 21 -> 11 -> 6 -> 3: the same 288 features into 256
    ("UNIVERSE_BGSTD_S4", (84, 84, 4), 6, 2048 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # three convs 42 -> 21 -> 11 -> 6: 6x6x32 = 1152 features into 256
    ("UNIVERSE_BGSTD_SHALLOW", (42, 42, 4), 6, 1152 + 32 + 2 * (9216 + 32) + 1152 * 256 + 256
     + 256 * 6 + 6 + 257),
    # 84 -> 42 (conv) -> 21 (max-pool) -> 11 -> 6: 6x6x32 = 1152 features into 256
    ("UNIVERSE_BGSTD_POOL", (84, 84, 4), 6, 1152 + 32 + 2 * (9216 + 32) + 1152 * 256 + 256
     + 256 * 6 + 6 + 257),
    # 84 -> 42 (conv) -> 21 (max-pool) -> 11 -> 6 -> 3: UNIVERSE_BGSTD's 288 features
    ("UNIVERSE_BGSTD_POOL4", (84, 84, 4), 6, 1152 + 32 + 3 * (9216 + 32) + 288 * 256 + 256
     + 256 * 6 + 6 + 257),
    # two MLP towers 4->64->64, one with the policy head, one with the value head
    ("NIPS", (4,), 2, 2 * (4 * 64 + 64 + 64 * 64 + 64) + 64 * 2 + 2 + 65),
])
def test_layout_size_and_round_trip(arch, shape, actions, expected):
    layout = actor_critic_layout(arch, shape, actions)
    assert layout.size == expected
    flat = layout.initial_values(np.random.default_rng(0))
    assert flat.dtype == np.float32 and flat.shape == (expected,)
    parts = layout.split(flat)
    assert [p.shape for p in parts] == [s.shape for s in layout.specs]
    # split gives views: writing through one changes the flat vector
    parts[0][...] = 3.0
    assert np.all(flat[:parts[0].size] == 3.0)
    np.testing.assert_array_equal(np.concatenate([p.ravel() for p in parts]), flat)


def test_initialisation_zero_biases_small_policy_head():
    layout = actor_critic_layout("NIPS", (84, 84, 4), 6)
    names = [spec.name for spec in layout.specs]
    params = dict(zip(names, layout.split(layout.initial_values(np.random.default_rng(1)))))
    assert all(not params[n].any() for n in names if n.endswith("/b"))
    assert np.abs(params["policy/w"]).max() < 0.01 * np.abs(params["value/w"]).max() * 2
    assert np.abs(params["conv0/w"]).max() > 0


def test_split_rejects_a_vector_of_another_size():
    layout = actor_critic_layout("NIPS", (4,), 2)
    with pytest.raises(ValueError, match=f"{layout.size} values"):
        layout.split(np.zeros(3, np.float32))


def test_universe_torso_standardises_each_observation():
    """UNIVERSE, UNIVERSE_DENSE, UNIVERSE_RELU and NATURE_STD see each observation as zero mean,
    unit variance, and UNIVERSE_BGSTD less its background and divided by its spread: scaling
    and shifting the pixels of a frame (a brighter or dimmer game) changes no output; the NIPS,
    NATURE, NATURE_ELU, UNIVERSE_RAW, NATURE_CENTRED, NATURE_LEAKY, UNIVERSE_PLAIN and
    UNIVERSE_BG torsos, which divide by 255, do change."""
    import tensorflow as tf
    from algorithms.networks import actor_critic_forward
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 120, (3, 42, 42, 4)).astype(np.float32)
    brighter = 2.0 * frames + 10.0
    for arch, expect_same in (("UNIVERSE", True), ("UNIVERSE_DENSE", True), ("NIPS", False),
                              ("NATURE", False), ("NATURE_STD", True), ("NATURE_ELU", False),
                              ("UNIVERSE_RELU", True), ("UNIVERSE_RAW", False),
                              ("NATURE_CENTRED", False), ("NATURE_LEAKY", False),
                              ("UNIVERSE_PLAIN", False), ("UNIVERSE_BG", False),
                              ("UNIVERSE_BGSTD", True)):
        shape = (42, 42, 4) if arch.startswith("UNIVERSE") else (84, 84, 4)
        layout = actor_critic_layout(arch, shape, 6)
        params = [tf.constant(p) for p in layout.split(layout.initial_values(rng))]
        size = shape[0]
        a, b = (tf.image.resize(x, (size, size)).numpy() if size != 42 else x
                for x in (frames, brighter))
        logits_a, values_a = actor_critic_forward(layout, params, tf.constant(a))
        logits_b, values_b = actor_critic_forward(layout, params, tf.constant(b))
        same = np.allclose(values_a, values_b, atol=1e-4) and \
            np.allclose(logits_a, logits_b, atol=1e-5)
        assert same == expect_same, arch
        assert logits_a.shape == (3, 6) and values_a.shape == (3,)


def test_elu_torsos_have_no_dead_units_where_relu_ones_do():
    """NATURE_ELU is NATURE's layers with ELU: a unit pushed below zero for every input still
    passes a gradient, where a ReLU unit passes none and never comes back. With every conv0 bias
    at -10, NATURE's conv0 gradient is exactly zero and NATURE_ELU's is not; and on the same
    frames NATURE_ELU's first layer computes elu(conv(frames / 255))."""
    import tensorflow as tf
    from algorithms.networks import actor_critic_forward, conv_torso, named
    rng = np.random.default_rng(1)
    frames = tf.constant(rng.integers(0, 256, (2, 84, 84, 4)).astype(np.float32))
    norms = {}
    for arch, prefix in (("NATURE", "conv"), ("NATURE_ELU", "raw_elu_conv")):
        layout = actor_critic_layout(arch, (84, 84, 4), 6)
        params = [tf.Variable(p) for p in layout.split(layout.initial_values(rng))]
        named(layout, params)[f"{prefix}0/b"].assign(np.full(32, -10.0, np.float32))
        with tf.GradientTape() as tape:
            _, values = actor_critic_forward(layout, params, frames)
            loss = tf.reduce_sum(values)
        grad = tape.gradient(loss, named(layout, params)[f"{prefix}0/w"])
        norms[arch] = 0.0 if grad is None else float(tf.norm(grad))
        if arch == "NATURE_ELU":
            layers = []
            conv_torso(named(layout, params), frames, layers)
            p = named(layout, params)
            expected = tf.nn.elu(tf.nn.conv2d(frames / 255.0, p["raw_elu_conv0/w"], 4, "VALID")
                                 + p["raw_elu_conv0/b"])
            assert [name for name, _ in layers] == ["raw_elu_conv0", "raw_elu_conv1",
                                                     "raw_elu_conv2", "dense"]
            np.testing.assert_allclose(layers[0][1].numpy(), expected.numpy(), atol=1e-5)
            assert layers[-1][1].shape == (2, 512)
    assert norms["NATURE"] == 0.0 and norms["NATURE_ELU"] > 0.0


def test_universe_relu_is_universe_dense_with_relu_units():
    """Same parameters and frames as UNIVERSE_DENSE; every layer is relu where that one is elu."""
    import tensorflow as tf
    from algorithms.networks import conv_torso, named
    rng = np.random.default_rng(2)
    frames = tf.constant(rng.integers(0, 256, (2, 42, 42, 4)).astype(np.float32))
    dense_layout = actor_critic_layout("UNIVERSE_DENSE", (42, 42, 4), 6)
    relu_layout = actor_critic_layout("UNIVERSE_RELU", (42, 42, 4), 6)
    flat = dense_layout.initial_values(rng)
    assert relu_layout.size == dense_layout.size
    p = named(relu_layout, [tf.constant(x) for x in relu_layout.split(flat)])
    layers = []
    conv_torso(p, frames, layers)
    mean, variance = tf.nn.moments(frames, axes=[1, 2, 3], keepdims=True)
    h = (frames - mean) * tf.math.rsqrt(variance + 1e-2)
    for i in range(4):
        h = tf.nn.relu(tf.nn.conv2d(h, p[f"relu_conv{i}/w"], 2, "SAME") + p[f"relu_conv{i}/b"])
        np.testing.assert_allclose(layers[i][1].numpy(), h.numpy(), atol=1e-4)
    dense = tf.nn.relu(tf.reshape(h, (2, -1)) @ p["dense/w"] + p["dense/b"])
    np.testing.assert_allclose(layers[-1][1].numpy(), dense.numpy(), atol=1e-4)


def test_nature_centred_reads_frames_less_their_mean():
    """NATURE_CENTRED: a grey level added to every pixel (Pong's background against Breakout's
    black) changes no output, where it changes NATURE's; and its first layer computes
    relu(conv(frames / 255 - mean)) with NATURE's filters."""
    import tensorflow as tf
    from algorithms.networks import actor_critic_forward, conv_torso, named
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 150, (2, 84, 84, 4)).astype(np.float32)
    for arch, expect_same in (("NATURE_CENTRED", True), ("NATURE", False)):
        layout = actor_critic_layout(arch, (84, 84, 4), 6)
        params = [tf.constant(x) for x in layout.split(layout.initial_values(rng))]
        a = actor_critic_forward(layout, params, tf.constant(frames))
        b = actor_critic_forward(layout, params, tf.constant(frames + 87.0))
        same = all(np.allclose(x, y, atol=1e-4) for x, y in zip(a, b))
        assert same == expect_same, arch
        if arch == "NATURE_CENTRED":
            p = named(layout, params)
            layers = []
            conv_torso(p, tf.constant(frames), layers)
            scaled = frames / 255.0
            centred = scaled - scaled.mean(axis=(1, 2, 3), keepdims=True)
            expected = tf.nn.relu(tf.nn.conv2d(centred, p["ctr_conv0/w"], 4, "VALID")
                                  + p["ctr_conv0/b"])
            np.testing.assert_allclose(layers[0][1].numpy(), expected.numpy(), atol=1e-5)


def test_a_conv_layer_takes_the_stride_of_its_own_torso_kind():
    """UNIVERSE_WIDE's 3x3 layers of 64 filters have NATURE's last layer's shape (3x3, 64) but
    stride 2, not 1: each layer's grid halves, 42 -> 21 -> 11 -> 6 -> 3, as in UNIVERSE_DENSE."""
    import tensorflow as tf
    from algorithms.environments import atari_frames
    from algorithms.networks import conv_torso, named
    rng = np.random.default_rng(0)
    frames = tf.constant(rng.integers(0, 255, (2, 42, 42, 4)).astype(np.uint8))
    grids = {}
    screens = tf.constant(rng.integers(0, 255, (2, 84, 84, 4)).astype(np.uint8))
    for arch in ("UNIVERSE_WIDE", "UNIVERSE_SHALLOW", "UNIVERSE_DENSE", "NATURE",
                 "NATURE_LEAKY", "UNIVERSE_BGSTD_S4", "UNIVERSE_BGSTD_SHALLOW",
                 "UNIVERSE_BGSTD_POOL", "UNIVERSE_BGSTD_POOL4"):
        small = atari_frames(arch, lstm=False).size == 42   # each torso's own frames
        layout = actor_critic_layout(arch, (42, 42, 4) if small else (84, 84, 4), 6)
        params = named(layout, [tf.constant(p) for p in
                                layout.split(layout.initial_values(rng))])
        layers = []
        conv_torso(params, frames if small else screens, layers)
        grids[arch] = [tuple(h.shape[1:]) for _, h in layers]
    assert grids["UNIVERSE_WIDE"] == [(21, 21, 64), (11, 11, 64), (6, 6, 64), (3, 3, 64), (256,)]
    assert grids["UNIVERSE_SHALLOW"] == [(21, 21, 32), (11, 11, 32), (6, 6, 32), (256,)]
    assert grids["UNIVERSE_DENSE"] == [(21, 21, 32), (11, 11, 32), (6, 6, 32), (3, 3, 32), (256,)]
    # and NATURE's own 3x3 layer of 64 filters keeps stride 1: 84 -> 20 -> 9 -> 7
    for arch in ("NATURE", "NATURE_LEAKY"):
        assert grids[arch] == [(20, 20, 32), (9, 9, 64), (7, 7, 64), (512,)], arch
    # UNIVERSE_BGSTD_S4's 4x4 patches take 84x84 frames to the 21x21 grid at stride 4
    assert grids["UNIVERSE_BGSTD_S4"] == [(21, 21, 32), (11, 11, 32), (6, 6, 32), (3, 3, 32),
                                          (256,)]
    # UNIVERSE_BGSTD_SHALLOW stops at the 6x6 grid of 42x42 frames
    assert grids["UNIVERSE_BGSTD_SHALLOW"] == [(21, 21, 32), (11, 11, 32), (6, 6, 32), (256,)]
    # UNIVERSE_BGSTD_POOL: 84 -> 42 by its first conv, then to 21 by the max-pool
    assert grids["UNIVERSE_BGSTD_POOL"] == [(21, 21, 32), (11, 11, 32), (6, 6, 32), (256,)]
    # UNIVERSE_BGSTD_POOL4: the same, and on to the 42x42 torso's 3x3 grid
    assert grids["UNIVERSE_BGSTD_POOL4"] == [(21, 21, 32), (11, 11, 32), (6, 6, 32),
                                             (3, 3, 32), (256,)]


def test_the_pooled_torso_keeps_the_largest_first_layer_response_of_each_2x2_block():
    """UNIVERSE_BGSTD_POOL's first layer on 84x84 frames, against the convolution and the 2x2
    maximum computed here from NumPy: each of the 21x21 cells holds the largest of its four
    (ReLU) responses, so a one-pixel object's response survives wherever it falls."""
    import tensorflow as tf
    from algorithms.networks import background, conv_torso, named
    rng = np.random.default_rng(1)
    frames = np.full((1, 84, 84, 4), 40, np.uint8)   # a field of 40 with a few small objects
    for y, x in rng.integers(0, 84, (12, 2)):
        frames[0, y, x] = 200
    layout = actor_critic_layout("UNIVERSE_BGSTD_POOL", (84, 84, 4), 6)
    params = named(layout, [tf.constant(p) for p in layout.split(layout.initial_values(rng))])
    layers = []
    conv_torso(params, tf.constant(frames), layers)
    name, pooled = layers[0]
    assert name == "bgstd_pool_conv0" and tuple(pooled.shape) == (1, 21, 21, 32)
    h = frames.astype(np.float32) - float(background(tf.constant(frames)).numpy().ravel()[0])
    h = h / np.sqrt(h.var() + 1e-2)
    conv = tf.nn.relu(tf.nn.conv2d(h, params["bgstd_pool_conv0/w"], 2, "SAME")
                      + params["bgstd_pool_conv0/b"]).numpy()[0]          # 42x42x32
    expected = conv.reshape(21, 2, 21, 2, 32).max(axis=(1, 3))
    np.testing.assert_allclose(pooled.numpy()[0], expected, rtol=1e-5, atol=1e-6)
    assert expected.max() > 0


def test_a_leaky_torso_passes_a_hundredth_of_what_falls_below_zero():
    """NATURE_LEAKY's first layer on one frame, against the convolution computed here: above
    zero as it is, below zero times 0.01. NATURE's own ReLU layer gives zero there."""
    import tensorflow as tf
    from algorithms.networks import conv_torso, named
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 255, (1, 84, 84, 4)).astype(np.uint8)
    outputs = {}
    for arch in ("NATURE_LEAKY", "NATURE"):
        layout = actor_critic_layout(arch, (84, 84, 4), 4)
        values = layout.split(layout.initial_values(np.random.default_rng(5)))
        values[1][...] = np.linspace(-0.5, 0.5, 32)   # biases of both signs
        params = named(layout, [tf.constant(v) for v in values])
        layers = []
        conv_torso(params, tf.constant(frames), layers)
        outputs[arch] = layers[0][1].numpy()[0]
        w, b = values[0], values[1]
    x = frames[0].astype(np.float64) / 255.0
    # the first conv by hand at output position (2, 3): an 8x8 window at stride 4
    window = x[8:16, 12:20, :]
    pre = np.einsum("ijc,ijcf->f", window, w.astype(np.float64)) + b
    assert (pre < 0).sum() > 5 and (pre > 0).sum() > 5
    np.testing.assert_allclose(outputs["NATURE_LEAKY"][2, 3], np.where(pre > 0, pre, 0.01 * pre),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(outputs["NATURE"][2, 3], np.maximum(pre, 0), rtol=1e-4, atol=1e-6)


def test_the_background_torsos_see_a_grey_field_as_a_black_one():
    """Pong's field is grey (87 of 255 in its 42x42 frames, its paddles and ball 15 and 48
    above), Breakout's black. ``background`` finds each observation's field value, and
    UNIVERSE_BG, which subtracts it, gives the same outputs for the same objects on either
    field; UNIVERSE_PLAIN (frames / 255) does not."""
    import tensorflow as tf
    from algorithms.networks import actor_critic_forward, background
    black = np.zeros((2, 42, 42, 4), np.float32)
    black[0, 10:14, 3:5] = 15.0            # a paddle
    black[0, 20:21, 20:21] = 48.0          # the ball
    black[1, 0:20] = 142.0                 # bricks over less than half the field
    grey = black + np.float32(87.0)
    assert background(tf.constant(black)).numpy().ravel().tolist() == [0.0, 0.0]
    assert background(tf.constant(grey)).numpy().ravel().tolist() == [87.0, 87.0]
    assert background(tf.constant(grey.astype(np.uint8))).numpy().ravel().tolist() == [87.0, 87.0]
    rng = np.random.default_rng(4)
    for arch, expect_same in (("UNIVERSE_BG", True), ("UNIVERSE_BGSTD", True),
                              ("UNIVERSE_PLAIN", False)):
        layout = actor_critic_layout(arch, (42, 42, 4), 6)
        params = [tf.constant(p) for p in layout.split(layout.initial_values(rng))]
        logits_black, values_black = actor_critic_forward(layout, params, tf.constant(black))
        logits_grey, values_grey = actor_critic_forward(layout, params, tf.constant(grey))
        same = np.allclose(values_black, values_grey, atol=1e-5) and \
            np.allclose(logits_black, logits_grey, atol=1e-5)
        assert same == expect_same, arch
