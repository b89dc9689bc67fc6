"""The real emulator and real Gymnasium environments behind the one interface."""
import numpy as np
import pytest

from config import UserError
from environments import (AtariEnvironment, GymEnvironment, make_environment, normalise_game,
                          resolve_rom)


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


def test_gym_truncation_is_reported():
    env = make_environment("GYM", "MountainCar-v0", None, seed=0)
    env.reset()
    for step in range(200):
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
