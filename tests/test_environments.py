"""The real emulator and real Gymnasium environments behind the one interface."""
import os

import numpy as np
import pytest

from algorithms.config import UserError
from algorithms.environments import (AtariEnvironment, EnvironmentFault, GymEnvironment,
                                    make_environment, normalise_game, resolve_rom)


def test_game_names_are_normalised():
    assert normalise_game("Pong") == "pong"
    assert normalise_game("SpaceInvaders") == "space_invaders"
    assert normalise_game("space-invaders") == "space_invaders"


def test_rom_path_falls_back_to_the_bundled_rom(tmp_path):
    rom, notice = resolve_rom("pong", str(tmp_path))
    assert rom.endswith("pong.bin") and notice and "bundled" in notice
    own = tmp_path / "pong.bin"
    own.write_bytes(open(rom, "rb").read())
    assert resolve_rom("pong", str(tmp_path)) == (str(own), None)
    with pytest.raises(UserError, match="unknown Atari game"):
        resolve_rom("pongg", None)


def test_a_file_that_is_not_a_rom_is_refused(tmp_path):
    (tmp_path / "pong.bin").write_bytes(b"not a cartridge")
    with pytest.raises(UserError, match="not a supported Atari ROM"):
        resolve_rom("pong", str(tmp_path))


def test_atari_observations_are_the_papers():
    env = make_environment("ALE", "pong", None, seed=3)
    assert isinstance(env, AtariEnvironment)
    assert env.num_actions == 6 and env.spec.frames_per_step == 4
    obs = env.reset()
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8
    # after a reset the stack holds four copies of the first frame
    assert all(np.array_equal(obs[..., 0], obs[..., i]) for i in range(4))
    frames_before = env.ale.getEpisodeFrameNumber()
    obs2, reward, done, info = env.step(0)
    assert env.ale.getEpisodeFrameNumber() - frames_before == 4  # action repeat 4
    # the newest frame moved in at the end; the older ones shifted left
    np.testing.assert_array_equal(obs2[..., :3], obs[..., 1:])
    assert set(info) == {"truncated", "life_lost"} and not done
    # and so at every step, once the four frames differ (the ball and paddles move)
    for _ in range(60):
        obs, obs2 = obs2, env.step(2)[0]
        np.testing.assert_array_equal(obs2[..., :3], obs[..., 1:])
    assert len({obs2[..., i].tobytes() for i in range(4)}) == 4


@pytest.mark.parametrize("lstm, history", [(True, 1), (False, 4)])
def test_universe_frames_are_the_cropped_field_at_42x42(lstm, history):
    """UNIVERSE observations: the pixel-wise max of the last two screens, rows 34-193 (the
    field, without the score), area-resized to 42x42; one frame with an LSTM, four without."""
    import cv2
    from algorithms.environments import atari_frames
    env = make_environment("ALE", "pong", None, seed=2, frames=atari_frames("UNIVERSE", lstm))
    assert env.spec.observation_shape == (42, 42, history)
    obs = env.reset()
    for _ in range(40):
        obs, _, _, _ = env.step(2)
    screens = env._raw   # the last two greyscale screens the step read
    expected = cv2.resize(np.maximum(screens[0], screens[1])[34:194], (42, 42),
                          interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(obs[..., -1], expected)
    assert obs.dtype == np.uint8 and env.ale.getScreenGrayscale().shape == (210, 160)
    gym_env = make_environment("GYM", "ALE/Pong-v5", None, seed=2,
                               frames=atari_frames("UNIVERSE", lstm))
    assert gym_env.reset().shape == (42, 42, history)


@pytest.mark.parametrize("arch, crop, size, rows", [
    ("NATURE", "field", 84, (34, 194)),       # the 2015 torso on the field
    ("UNIVERSE_DENSE", "none", 42, (0, 210)),  # the 42x42 torso on the whole screen
    ("NATURE", None, 84, (0, 210)),           # the defaults: the whole screen for NATURE
    ("UNIVERSE_BGSTD_S4", None, 84, (34, 194)),  # the field, at 84x84 for its 4x4 patches
    ("UNIVERSE_BGSTD_POOL", None, 84, (34, 194)),  # the field, at 84x84 for its max-pool
    ("UNIVERSE_BGSTD_POOL4", None, 84, (34, 194)),
])
def test_crop_chooses_the_field_or_the_whole_screen(arch, crop, size, rows):
    """``--crop`` overrides what the torso reads by default: the observation is the cropped (or
    whole) max of the last two screens, area-resized to the torso's size."""
    import cv2
    from algorithms import config as settings
    from algorithms.environments import atari_frames
    config = settings.parse_args(["pong", "--arch", arch, "--resample", "area"]
                                 + (["--crop", crop] if crop else []))
    settings.resolve_defaults(config, continuous=False, atari=True)
    frames = atari_frames(config.arch, config.lstm, config.screen_size, config.crop,
                          config.resample)
    env = make_environment("ALE", "pong", None, seed=3, frames=frames)
    assert env.spec.observation_shape == (size, size, 4)
    env.reset()
    for _ in range(40):
        obs, _, _, _ = env.step(2)
    screens = env._raw
    expected = cv2.resize(np.maximum(screens[0], screens[1])[rows[0]:rows[1]], (size, size),
                          interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(obs[..., -1], expected)


def test_salient_halving_keeps_each_blocks_pixel_farthest_from_the_background():
    """Of each 2x2 block, the pixel farthest from the frame's most common value: a lone bright
    pixel on a black field keeps its 200 (the block's mean, area resizing, would be 50), a dark
    one on a grey field its 0; a tie goes to the brighter; sums near 255 do not wrap."""
    import cv2
    from algorithms.environments import salient_halve
    black = np.zeros((84, 84), np.uint8)
    black[10, 11] = 200
    small = salient_halve(black)
    assert small.shape == (42, 42) and small.dtype == np.uint8
    assert small[5, 5] == 200 and np.count_nonzero(small) == 1
    assert cv2.resize(black, (42, 42), interpolation=cv2.INTER_AREA)[5, 5] == 50
    grey = np.full((84, 84), 132, np.uint8)
    grey[20, 20], grey[30, 31] = 0, 214            # Boxing: a black and a white boxer
    grey[40, 40], grey[41, 41] = 100, 164           # 32 below and 32 above the field
    small = salient_halve(grey)
    assert (small[10, 10], small[15, 15], small[20, 20]) == (0, 214, 164)
    assert np.count_nonzero(small != 132) == 3
    white = np.full((4, 4), 255, np.uint8)
    white[0, 0] = 0
    np.testing.assert_array_equal(salient_halve(white), [[0, 255], [255, 255]])


def test_salient_frames_above_80_pixels_are_refused_in_one_line():
    """Twice the size must fit the screen's 160 columns: NATURE's default 84x84 frames with
    --resample salient are a user's mistake, named with both ways out."""
    from algorithms.environments import atari_frames
    assert atari_frames("NATURE", False, 80, resample="salient").size == 80
    with pytest.raises(UserError, match=r"not 84; give --screen_size 80 or less, or --resample "
                                        r"area$"):
        atari_frames("NATURE", False, resample="salient")


@pytest.mark.parametrize("env_type, game", [("ALE", "beam_rider"), ("GYM", "ALE/BeamRider-v5")])
def test_resample_salient_halves_the_84x84_field(env_type, game):
    """``--resample salient``: the torso's 42x42 frames are the 84x84 frames of the field
    (area-resized), halved by salient blocks; the flag reaches the frames from the command
    line, and both kinds of environment make them."""
    import cv2
    from algorithms import config as settings
    from algorithms.environments import atari_frames, salient_halve
    config = settings.parse_args(["beam_rider", "--resample", "salient"])
    settings.resolve_defaults(config, continuous=False, atari=True)
    frames = atari_frames(config.arch, config.lstm, config.screen_size, config.crop,
                          config.resample)
    assert (frames.size, frames.resample) == (42, "salient")
    env = make_environment(env_type, game, None, seed=3, frames=frames)
    assert env.spec.observation_shape == (42, 42, 4)
    env.reset()
    for _ in range(60):
        obs, _, _, _ = env.step(1)
    if env_type == "ALE":   # the max of the last two screens, as the paper's
        screen = np.maximum(env._raw[0], env._raw[1])
        field = cv2.resize(screen[34:194], (84, 84), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(obs[..., -1], salient_halve(field))
    assert obs.dtype == np.uint8 and obs.shape == (42, 42, 4)
    # what stands off the black field keeps more contrast than in the area-resized frames
    area = make_environment(env_type, game, None, seed=3,
                            frames=atari_frames(config.arch, config.lstm))
    area.reset()
    for _ in range(60):
        plain, _, _, _ = area.step(1)
    assert obs[..., -1][obs[..., -1] > 0].mean() > plain[..., -1][plain[..., -1] > 0].mean()


def test_atari_rewards_are_unclipped_game_scores():
    env = make_environment("ALE", "pong", None, seed=0)
    env.reset()
    total, rewards = 0.0, set()
    done = False
    while not done:
        _, reward, done, _ = env.step(int(env.rng.integers(env.num_actions)))
        total += reward
        rewards.add(reward)
    # a random Pong player loses 21-0 or close to it; every point is worth exactly 1
    assert -21 <= total <= -15 and rewards <= {-1.0, 0.0, 1.0}


def test_gym_atari_gets_the_same_preprocessing():
    env = make_environment("GYM", "ALE/Pong-v5", None, seed=1)
    assert isinstance(env, GymEnvironment) and env.spec.kind == "atari"
    obs = env.reset()
    assert obs.shape == (84, 84, 4) and obs.dtype == np.uint8 and obs.flags.c_contiguous
    obs, _, _, _ = env.step(1)
    assert obs.shape == (84, 84, 4)
    assert env.spec.frames_per_step == 4


def test_gym_vector_task():
    env = make_environment("GYM", "CartPole-v1", None, seed=1)
    assert env.spec.kind == "vector" and env.spec.observation_shape == (4,)
    obs = env.reset()
    assert obs.dtype == np.float32 and obs.shape == (4,)
    length, done = 0, False
    while not done:
        _, reward, done, info = env.step(0)
        length += 1
    assert reward == 1.0 and not info["truncated"] and 8 <= length <= 20


def test_memory_task_hides_the_velocities():
    """CartPoleNoVelocity-v1 is CartPole-v1 seen through cart position and pole angle only."""
    full = make_environment("GYM", "CartPole-v1", None, seed=3)
    hidden = make_environment("GYM", "CartPoleNoVelocity-v1", None, seed=3)
    assert hidden.spec.observation_shape == (2,) and hidden.spec.num_actions == 2
    a, b = full.reset(), hidden.reset()
    for action in [0, 1, 1, 0, 1, 0, 0, 1, 1, 1]:
        np.testing.assert_array_equal(b, a[[0, 2]])
        (a, ra, da, _), (b, rb, db, _) = full.step(action), hidden.step(action)
        assert (ra, da) == (rb, db)


@pytest.mark.parametrize("env_id,dims,low,high", [("Pendulum-v1", 1, -2.0, 2.0),
                                                  ("InvertedPendulum-v5", 1, -3.0, 3.0),
                                                  ("HalfCheetah-v5", 6, -1.0, 1.0)])
def test_continuous_action_spaces(env_id, dims, low, high):
    """Box action spaces (MuJoCo's through the mujoco package): their size and bounds, and
    actions outside the bounds are clipped to them rather than refused."""
    beyond, at_bound = (make_environment("GYM", env_id, None, seed=0) for _ in range(2))
    assert beyond.spec.continuous and beyond.spec.num_actions == dims
    assert beyond.env.action_space.low.tolist() == [low] * dims
    assert beyond.env.action_space.high.tolist() == [high] * dims
    np.testing.assert_array_equal(beyond.reset(), at_bound.reset())
    for sign in (1, -1, 1):
        a = beyond.step(np.full(dims, sign * 10 * high, dtype=np.float32))
        b = at_bound.step(np.full(dims, high if sign > 0 else low, dtype=np.float32))
        np.testing.assert_array_equal(a[0], b[0])
        assert a[1] == b[1] and np.isfinite(a[1])


def test_gym_truncation_is_reported():
    env = make_environment("GYM", "MountainCar-v0", None, seed=0)
    env.reset()
    for _ in range(200):
        _, _, done, info = env.step(1)
    assert done and info["truncated"]


def test_single_life_detection_on_breakout():
    env = make_environment("ALE", "breakout", None, seed=0, single_life=True)
    env.reset()
    lost = 0
    done = False
    while not done:
        _, _, done, info = env.step(int(env.rng.integers(env.num_actions)))
        lost += info["life_lost"]
    assert lost == 5  # Breakout has five lives


@pytest.mark.parametrize("env_type, game", [("ALE", "breakout"), ("GYM", "ALE/Breakout-v5")])
def test_fire_reset_serves_the_ball(env_type, game):
    """Breakout's ball comes into play only after FIRE. Standing still (NOOP) forever, a game
    never ends without --fire_reset; with it, every life is served, missed, and the game ends
    with all five lives lost."""
    steps = 3000

    def play(fire_reset: bool) -> tuple[int, bool]:
        env = make_environment(env_type, game, None, seed=0, fire_reset=fire_reset)
        env.reset()
        lost, done = 0, False
        for _ in range(steps):
            _, _, done, info = env.step(0)   # NOOP
            lost += info["life_lost"]
            if done:
                break
        env.close()
        return lost, done

    assert play(False) == (0, False)
    assert play(True) == (5, True)


TINY_MODULE = '''
import gymnasium as gym
import numpy as np


class Tiny(gym.Env):
    """Three actions numbered -1, 0, 1; the observation is the last action taken."""
    action_space = gym.spaces.Discrete(3, start=-1)
    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        assert self.action_space.contains(action), action
        return np.array([action], np.float32), float(action), False, False, {}


class Broken(gym.Env):
    def __init__(self, **kwargs):
        raise RuntimeError("the simulator licence has expired")


class Typed(Tiny):
    """Steps whose reward and flags have the types given (`Tiny`'s values otherwise)."""
    def __init__(self, reward=None, terminated=False, truncated=False):
        self.reward, self.terminated, self.truncated = reward, terminated, truncated

    def step(self, action):
        obs, reward = super().step(action)[:2]
        return (obs, reward if self.reward is None else self.reward, self.terminated,
                self.truncated, {})


gym.register("Tiny-v0", entry_point=Tiny)
gym.register("Broken-v0", entry_point=Broken)
gym.register("StringReward-v0", entry_point=lambda: Typed(reward="1.0"))
gym.register("ListReward-v0", entry_point=lambda: Typed(reward=[1.0, 2.0]))
gym.register("OneListReward-v0", entry_point=lambda: Typed(reward=[1.0]))
gym.register("StringTerminated-v0", entry_point=lambda: Typed(terminated="False"))
gym.register("NumPyTypes-v0", entry_point=lambda: Typed(reward=np.array(1.5),
                                                        terminated=np.bool_(False), truncated=1))
'''


@pytest.fixture
def own_module(tmp_path, monkeypatch):
    (tmp_path / "own_envs.py").write_text(TINY_MODULE)
    (tmp_path / "exits_when_imported.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "own_envs"


def test_module_ids_import_the_module_and_use_its_action_space_as_defined(own_module):
    """`module:Env-v0`: the module is imported (registering its environments) first; a
    Discrete space that starts at -1 gets actions -1, 0, 1 for indices 0, 1, 2."""
    env = make_environment("GYM", f"{own_module}:Tiny-v0", None, seed=0)
    assert env.spec.num_actions == 3 and env.spec.observation_shape == (1,)
    env.reset()
    assert [env.step(index)[1] for index in (0, 1, 2)] == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("game, what", [
    ("StringReward-v0", "a reward that is not a number ('1.0')"),
    ("ListReward-v0", "a reward that is not a number ([1.0, 2.0])"),
    ("OneListReward-v0", "a reward that is not a number ([1.0])"),
    ("StringTerminated-v0", "a terminated flag that is not a boolean ('False')"),
])
def test_rewards_and_flags_of_the_wrong_type_are_faults(own_module, game, what):
    """A reward given as a string that reads as a number, or a flag given as a string (true
    whatever it says), is a fault at the boundary, never taken as it reads."""
    env = make_environment("GYM", f"{own_module}:{game}", None, seed=0)
    env.reset()
    with pytest.raises(EnvironmentFault) as fault:
        env.step(1)
    assert f"the environment {game} returned {what} at step 1 of its episode" in \
        str(fault.value)


def test_rewards_and_flags_of_numpy_types_are_taken(own_module):
    """What real environments return besides floats and bools: a 0-d array reward, NumPy's
    bool, the integers 0 and 1."""
    env = make_environment("GYM", f"{own_module}:NumPyTypes-v0", None, seed=0)
    env.reset()
    _, reward, done, info = env.step(1)
    assert (reward, done, info["truncated"]) == (1.5, True, True)
    assert type(reward) is float and type(done) is bool


@pytest.mark.parametrize("game, message", [
    ("exits_when_imported:Tiny-v0", "importing module 'exits_when_imported' for "
                                    "'exits_when_imported:Tiny-v0' called sys.exit(3)"),
    ("no_such_module:Tiny-v0", "could not import module 'no_such_module' for "
                               "'no_such_module:Tiny-v0' (ModuleNotFoundError"),
    ("own_envs:Broken-v0", "could not make the Gymnasium environment 'own_envs:Broken-v0' "
                           "(RuntimeError: the simulator licence has expired)"),
])
def test_an_environment_that_cannot_be_made_is_one_line(own_module, capsys, tmp_path, game,
                                                        message):
    from algorithms import cli
    code = cli.main([game, "--env", "GYM", "--summary_dir", str(tmp_path / "s"),
                     "--checkpoint_dir", str(tmp_path / "ck")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_a_new_run_reads_salient_frames_and_a_shipped_agent_its_own(tmp_path):
    """The plain command's plan reads salient 42x42 frames; a checkpoint saved before that
    default (help/agents/breakout_a3c.npz, no resampling saved) is evaluated on area frames,
    as it was trained."""
    from algorithms import startup
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    plan = startup.prepare(["pong", "-n", "2", "--seed", "1", "--summary_dir", str(tmp_path),
                            "--checkpoint_dir", str(tmp_path / "ck")])
    assert (plan.config.resample, plan.env_spec.observation_shape) == ("salient", (42, 42, 4))
    shipped = startup.prepare(["breakout", "--mode", "eval", "--checkpoint",
                               os.path.join(root, "help", "agents", "breakout_a3c.npz")])
    assert (shipped.config.resample, shipped.config.arch) == ("area", "UNIVERSE_BGSTD")


@pytest.mark.parametrize("game", ["pong", "breakout", "beam_rider", "boxing"])
def test_the_background_of_a_ninth_of_the_pixels_is_the_whole_frames(game):
    """salient_halve's background, the most common value of every third pixel of every third
    row, is the whole 84x84 frame's most common value in real frames of the four games."""
    import cv2
    env = make_environment("ALE", game, None, seed=5)
    env.reset()
    rng = np.random.default_rng(5)
    for step in range(300):
        _, _, done, _ = env.step(int(rng.integers(env.spec.num_actions)))
        if done:
            env.reset()
        if step % 30 == 29:
            screen = np.maximum(env._raw[0], env._raw[1])[34:194]
            field = cv2.resize(screen, (84, 84), interpolation=cv2.INTER_AREA)
            assert np.bincount(field[::3, ::3].ravel(), minlength=256).argmax() == \
                np.bincount(field.ravel(), minlength=256).argmax(), (game, step)
