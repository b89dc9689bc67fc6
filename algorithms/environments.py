"""The Arcade Learning Environment and Gymnasium behind one small interface.

Both kinds give the learner the same thing: ``reset() -> observation`` and
``step(action) -> (observation, reward, done, info)`` where ``reward`` is the *unclipped* game
reward (clipping or rescaling is the learner's business, so episode returns are game scores),
``done`` means the episode is over (game over or time limit) and ``info`` says whether the episode
was ``truncated`` by a time limit (the learner then bootstraps) and whether a ``life_lost``.

Atari observations are the paper's (Mnih et al., 2015 preprocessing): action repeat 4, pixel-wise
max of the last two raw frames, luminance, 84x84 (area interpolation), a stack of the last 4, as a
``uint8`` array of shape (84, 84, 4); episodes start with up to 30 random no-ops; sticky actions
are off (``repeat_action_probability=0``), and the minimal action set is used. The UNIVERSE torso
reads smaller ones (``Frames``): the playing field only, 42x42, one frame with an LSTM.
"""
from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import ATARI_SCREEN, RESAMPLES, SALIENT_MAX, frame_size
from .display import draw_offscreen
from .errors import UserError

ATARI_FRAME_SKIP = 4
ATARI_HISTORY = 4
NOOP_MAX = 30
# The standard limit of 30 minutes of play at 60 frames per second (108,000 frames).
MAX_EPISODE_FRAMES = 108_000


@dataclass(frozen=True)
class Frames:
    """How Atari screens become observations: square frames of ``size`` pixels, the last
    ``history`` of them stacked, after keeping only the screen rows ``crop`` (top, bottom),
    resized by ``resample``: "area", each pixel the mean of the screen pixels it covers
    (OpenCV's INTER_AREA), or "salient" (``salient_halve``)."""
    size: int = ATARI_SCREEN
    history: int = ATARI_HISTORY
    crop: tuple[int, int] | None = None
    resample: str = "area"

    def __post_init__(self):
        if self.resample not in RESAMPLES:
            raise ValueError(f"resample {self.resample!r} is not one of {RESAMPLES}")
        if self.resample == "salient" and self.size > SALIENT_MAX:
            raise UserError(f"argument --resample: salient halves frames of twice --screen_size, "
                            f"and the screen's 160 columns hold that up to {SALIENT_MAX} pixels, "
                            f"not {self.size}; give --screen_size {SALIENT_MAX} or less, or "
                            "--resample area")


PAPER_FRAMES = Frames()
# --crop field: the playing field only (rows 34-193 of 210, without the score); the UNIVERSE
# torsos' default, on 42x42 frames, one frame when an LSTM remembers the motion.
SMALL_CROP = (34, 194)


def atari_frames(arch: str, lstm: bool, size: int | None = None,
                 crop: str | None = None, resample: str | None = None) -> Frames:
    """The observations an Atari network of ``arch`` (``--arch``) reads, ``size`` pixels square
    (``--screen_size``; default 42 for the UNIVERSE torsos, every ``UNIVERSE*`` but those of
    FULL_SIZE_UNIVERSE, 84 for the others), of the playing field or of the whole screen
    (``--crop`` "field" or "none"; default the field for the UNIVERSE torsos, the whole screen
    for the others), resized by ``resample`` (``--resample``; default "area")."""
    universe = arch.startswith("UNIVERSE")
    return Frames(frame_size(arch, size), 1 if universe and lstm else ATARI_HISTORY,
                  SMALL_CROP if resolved_crop(arch, crop) == "field" else None,
                  resample or "area")


def resolved_crop(arch: str | None, crop: str | None) -> str:
    """``--crop`` as a run uses it: as given, else "field" for the UNIVERSE torsos and "none"
    for the others."""
    return crop or ("field" if (arch or "").startswith("UNIVERSE") else "none")


@dataclass(frozen=True)
class EnvSpec:
    """What the parent must know about an environment before it sizes the shared memory."""
    kind: str                      # "atari" or "vector"
    observation_shape: tuple[int, ...]
    num_actions: int
    frames_per_step: int           # raw frames per agent step (for frames/s)
    continuous: bool = False       # a Box action space: num_actions is then its dimension


def with_frames(spec: EnvSpec, frames: Frames) -> EnvSpec:
    """An Atari spec whose observations are ``frames``."""
    from dataclasses import replace
    return replace(spec, observation_shape=(frames.size, frames.size, frames.history))


# --------------------------------------------------------------------------- game names

def atari_games() -> list[str]:
    from ale_py import roms
    return sorted(roms.get_all_rom_ids())


def normalise_game(name: str) -> str:
    """'Pong', 'SpaceInvaders', 'space-invaders' -> ale-py's ids ('pong', 'space_invaders')."""
    name = name.strip()
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return snake.replace("-", "_").replace(" ", "_")


def resolve_rom(game: str, rom_path: str | None) -> tuple[str, str | None]:
    """Return (ROM file, notice or None) for an Atari game; raise UserError if unknown.

    A ROM in ``rom_path`` (``<game>.bin``) wins; when it is not there, the ROM bundled with ale-py
    is used and a notice says so.
    """
    from ale_py import roms
    games = atari_games()
    rom_id = normalise_game(game)
    if rom_id not in games:
        close = difflib.get_close_matches(rom_id, games, n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else \
            ("run `python -c \"from ale_py import roms; print(roms.get_all_rom_ids())\"` "
             "for the list")
        raise UserError(f"argument game: unknown Atari game {game!r} ({hint})")
    if rom_path is not None:
        for candidate in (f"{game}.bin", f"{rom_id}.bin"):
            path = os.path.join(rom_path, candidate)
            if os.path.isfile(path):
                from ale_py import ALEInterface
                if ALEInterface.isSupportedROM(path) is None:
                    raise UserError(f"argument --rom_path: {path} is not a supported Atari ROM "
                                    "(its checksum matches no game ale-py knows; remove it to "
                                    "use the bundled ROM)")
                return path, None
    bundled = str(roms.get_rom_path(rom_id))
    notice = None
    if rom_path is not None:
        notice = (f"no {rom_id}.bin in {rom_path}: using the ROM bundled with ale-py ({bundled})")
    return bundled, notice


def gym_ids() -> list[str]:
    import gymnasium as gym
    _register_ale()
    return sorted(gym.envs.registry.keys())


MEMORY_TASK = "CartPoleNoVelocity-v1"


def _register_ale() -> None:
    """Register ale-py's Atari ids and ours: CartPoleNoVelocity-v1, CartPole-v1 with the two
    velocities removed from the observation (cart position and pole angle only), a task that
    needs memory: a feed-forward policy cannot tell which way the pole is moving."""
    import ale_py
    import gymnasium as gym
    gym.register_envs(ale_py)
    if MEMORY_TASK not in gym.envs.registry:
        gym.register(MEMORY_TASK, entry_point=cartpole_no_velocity, max_episode_steps=500)


def cartpole_no_velocity(**kwargs):
    import gymnasium as gym
    from gymnasium.envs.classic_control import CartPoleEnv
    env = CartPoleEnv(**kwargs)
    low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
    return gym.wrappers.TransformObservation(
        env, lambda obs: obs[[0, 2]], gym.spaces.Box(low, high, dtype=np.float32))


def is_atari_gym_id(env_id: str) -> bool:
    import gymnasium as gym
    _register_ale()
    spec = gym.spec(env_id)
    entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
    return entry.startswith("ale_py")


def import_env_module(env_id: str) -> str:
    """Gymnasium's ``module:Env-v0`` ids: import the module (which registers its environments)
    and return the id without it. Raises UserError when the module cannot be imported."""
    if ":" not in env_id:
        return env_id
    module, _, name = env_id.partition(":")
    import importlib
    try:
        importlib.import_module(module)
    except Exception as err:   # noqa: BLE001 - any failure of foreign code is the user's to fix
        raise UserError(f"argument game: could not import module {module!r} for {env_id!r} "
                        f"({type(err).__name__}: {_first_line(err)}); is it installed, or on "
                        "PYTHONPATH?") from None
    except SystemExit as exit_:   # a module that ends the program when imported
        raise UserError(f"argument game: importing module {module!r} for {env_id!r} called "
                        f"sys.exit({exit_.code!r}); it must only define and register its "
                        "environments when imported") from None
    return name


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no message"


def check_gym_id(env_id: str) -> None:
    env_id = import_env_module(env_id)
    ids = gym_ids()
    if env_id not in ids:
        close = difflib.get_close_matches(env_id, ids, n=5, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "see gymnasium.envs.registry"
        raise UserError(f"argument game: unknown Gymnasium id {env_id!r} ({hint})")


# --------------------------------------------------------------------------- environments

class AtariEnvironment:
    """An Atari game through ``ale_py.ALEInterface`` with the paper's preprocessing."""

    def __init__(self, rom: str, seed: int, single_life: bool = False, noop_max: int = NOOP_MAX,
                 frame_skip: int = ATARI_FRAME_SKIP, render: bool = False,
                 frames: Frames = PAPER_FRAMES, fire_reset: bool = False):
        import cv2
        from ale_py import ALEInterface, LoggerMode
        self._cv2 = cv2
        ALEInterface.setLoggerMode(LoggerMode.Error)
        ale = ALEInterface()
        ale.setInt("random_seed", int(seed) % (2**31))
        ale.setFloat("repeat_action_probability", 0.0)
        ale.setInt("frame_skip", 1)
        ale.setInt("max_num_frames_per_episode", MAX_EPISODE_FRAMES)
        ale.loadROM(rom)
        self.ale = ale
        self.actions = ale.getMinimalActionSet()
        self.num_actions = len(self.actions)
        # --fire_reset: FIRE (the serve, in Breakout) for one agent step after a reset and
        # after a lost life, in games whose minimal action set has it.
        from ale_py import Action
        self._fire = Action.FIRE if fire_reset and Action.FIRE in self.actions else None
        self.frame_skip = frame_skip
        self.noop_max = noop_max
        self.single_life = single_life
        self.rng = np.random.default_rng(seed)
        height, width = ale.getScreenDims()
        self._raw = np.zeros((2, height, width), dtype=np.uint8)
        self.frames = frames
        self._stack = np.zeros((frames.size, frames.size, frames.history), dtype=np.uint8)
        self._flat = self._stack.reshape(-1)   # a view of the same bytes
        self._lives = 0
        self.render = render

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec("atari", self._stack.shape, self.num_actions, self.frame_skip)

    def _observe(self) -> None:
        """Push max(last two raw frames), cropped and resized (84x84), onto the frame stack."""
        frame = np.maximum(self._raw[0], self._raw[1])
        small = shrink(self._cv2, frame, self.frames)
        # Each frame moves one place back in the history: shifting all the bytes by one is
        # that, plus one byte per pixel carried over from the next pixel, which the new frame
        # then overwrites. One contiguous move, where `stack[..., :-1] = stack[..., 1:]`
        # copies three bytes at a time (4 against 124 us of CPU per step at 84x84x4).
        if self.frames.history > 1:
            self._flat[:-1] = self._flat[1:]
        self._stack[..., -1] = small

    def reset(self) -> np.ndarray:
        ale = self.ale
        ale.reset_game()
        noop = self.actions[0]
        for _ in range(int(self.rng.integers(0, self.noop_max + 1))):
            ale.act(noop)
            if ale.game_over():
                ale.reset_game()
        ale.getScreenGrayscale(self._raw[0])
        self._raw[1] = self._raw[0]
        if self._fire is not None:
            self._repeat(self._fire)
        self._observe()
        self._stack[..., :-1] = self._stack[..., -1:]
        self._lives = ale.lives()
        return self._stack.copy()

    def _repeat(self, native) -> float:
        """Play ``native`` for ``frame_skip`` frames (fewer if the game ends); keep the last two
        screens in ``_raw``; return the summed reward."""
        ale = self.ale
        reward = 0.0
        skip = self.frame_skip
        for i in range(skip):
            reward += ale.act(native)
            if i >= skip - 2:
                ale.getScreenGrayscale(self._raw[i - skip + 2])
            if ale.game_over():
                if i < skip - 1:
                    ale.getScreenGrayscale(self._raw[0])
                    self._raw[1] = self._raw[0]
                break
        return reward

    def step(self, action: int) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        ale = self.ale
        reward = self._repeat(self.actions[action])
        lives = ale.lives()
        life_lost = lives < self._lives
        if life_lost and self._fire is not None and not ale.game_over():
            reward += self._repeat(self._fire)
            lives = ale.lives()
        self._observe()
        self._lives = lives
        done = ale.game_over()
        truncated = done and ale.game_truncated()
        return self._stack.copy(), reward, done, {"truncated": truncated, "life_lost": life_lost}

    def screen(self) -> np.ndarray:
        """The raw RGB screen, for windows and videos."""
        return self.ale.getScreenRGB()

    def close(self) -> None:
        pass


def shrink(cv2, frame: np.ndarray, frames: Frames) -> np.ndarray:
    """A greyscale screen, cropped to ``frames.crop`` and resized to ``frames.size`` square by
    ``frames.resample``."""
    if frames.crop is not None:
        frame = frame[frames.crop[0]:frames.crop[1]]
    if frames.resample == "salient":
        return salient_halve(cv2.resize(frame, (2 * frames.size, 2 * frames.size),
                                        interpolation=cv2.INTER_AREA))
    return cv2.resize(frame, (frames.size, frames.size), interpolation=cv2.INTER_AREA)


def salient_halve(frame: np.ndarray) -> np.ndarray:
    """A uint8 frame of even sides at half its size: of each 2x2 block, the pixel farthest from
    the frame's background, the most common value of every third pixel of every third row (the
    brighter pixel on a tie)."""
    if frame.shape[0] % 2 or frame.shape[1] % 2:
        raise ValueError(f"salient_halve needs a frame of even sides, not {frame.shape}")
    # A field fills most of a screen: the histogram of a ninth of its pixels finds it for less
    # (the same background as the whole frame's in real frames of Pong, Breakout, Beam Rider
    # and Boxing: tests/test_environments.py).
    background = int(np.bincount(frame[::3, ::3].ravel(), minlength=256).argmax())
    corners = (frame[0::2, 0::2], frame[0::2, 1::2], frame[1::2, 0::2], frame[1::2, 1::2])
    high = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    low = np.minimum(np.minimum(corners[0], corners[1]), np.minimum(corners[2], corners[3]))
    # high - background >= background - low, in sums that cannot wrap
    return np.where(high.astype(np.uint16) + low >= 2 * background, high, low)


class GymEnvironment:
    """Any Gymnasium id. Atari ids get the paper's preprocessing through Gymnasium's wrappers."""

    def __init__(self, env_id: str, seed: int, single_life: bool = False, render: bool = False,
                 frames: Frames = PAPER_FRAMES, fire_reset: bool = False):
        import gymnasium as gym
        _register_ale()
        given, env_id = env_id, import_env_module(env_id)
        self.atari = is_atari_gym_id(env_id)
        render_mode = "rgb_array" if render else None
        if render:   # frames are drawn off-screen (pygame for classic control)
            draw_offscreen()
        try:
            env = self._make(gym, env_id, render_mode, frames)
        except UserError:
            raise
        except Exception as err:   # noqa: BLE001 - a foreign constructor may raise anything
            raise UserError(f"argument game: could not make the Gymnasium environment "
                            f"{given!r} ({type(err).__name__}: {_first_line(err)})") from None
        self.env = env
        self.id = env_id
        self._steps = 0
        self.single_life = single_life
        self._seed = int(seed)
        self._seeded = False
        self._lives = 0
        space = env.action_space
        self.continuous = isinstance(space, gym.spaces.Box)
        if self.continuous and len(space.shape) == 1:
            self.num_actions = int(space.shape[0])
            self._low = np.asarray(space.low, np.float32)
            self._high = np.asarray(space.high, np.float32)
        elif isinstance(space, gym.spaces.Discrete):
            self.num_actions = int(space.n)
            self._first_action = int(space.start)   # actions are start .. start + n - 1
        else:
            raise UserError(
                f"argument game: {env_id!r} has a {type(space).__name__} action space of shape "
                f"{space.shape}; supported are Discrete and one-dimensional Box action spaces")
        obs_space = env.observation_space
        if self.atari:
            shape = (frames.size, frames.size, frames.history)
        elif isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1 and \
                obs_space.shape[0] > 0:
            shape = tuple(obs_space.shape)
        else:
            raise UserError(
                f"argument game: {env_id!r} has a {type(obs_space).__name__} observation space "
                f"of shape {obs_space.shape}; supported are Atari screens and flat vectors of "
                "at least one number")
        self._shape = shape
        meanings = env.unwrapped.get_action_meanings() \
            if self.atari and hasattr(env.unwrapped, "get_action_meanings") else []
        self._fire = meanings.index("FIRE") if fire_reset and "FIRE" in meanings else None

    def _make(self, gym, env_id: str, render_mode, frames: Frames):
        """The Gymnasium environment, with the paper's preprocessing for Atari ids."""
        if not self.atari:   # render_mode only when drawing: not every class accepts it
            return gym.make(env_id, **({"render_mode": render_mode} if render_mode else {}))
        from gymnasium.wrappers import AtariPreprocessing, FrameStackObservation
        env = gym.make(env_id, frameskip=1, repeat_action_probability=0.0,
                       max_num_frames_per_episode=MAX_EPISODE_FRAMES, render_mode=render_mode)
        # cropped, or resampled otherwise than by area: resized by shrink, below
        cropped = frames.crop is not None or frames.resample != "area"
        env = AtariPreprocessing(env, noop_max=NOOP_MAX, frame_skip=ATARI_FRAME_SKIP,
                                 screen_size=(160, 210) if cropped else frames.size,
                                 grayscale_obs=True, terminal_on_life_loss=False,
                                 scale_obs=False)
        if cropped:
            import cv2
            small = gym.spaces.Box(0, 255, (frames.size, frames.size), np.uint8)
            env = gym.wrappers.TransformObservation(
                env, lambda obs: shrink(cv2, obs, frames), small)
        return FrameStackObservation(env, frames.history)

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec("atari" if self.atari else "vector", self._shape, self.num_actions,
                       ATARI_FRAME_SKIP if self.atari else 1, self.continuous)

    def _convert(self, obs) -> np.ndarray:
        """The observation as the network reads it, checked against the declared space: a
        wrong shape, a value that is not a number, or one that is not finite is an
        :class:`EnvironmentFault`, never broadcast or learned."""
        if self.atari:
            return np.ascontiguousarray(np.moveaxis(obs, 0, -1))
        try:
            converted = np.asarray(obs, dtype=np.float32)
        except (TypeError, ValueError):
            raise self._fault(f"an observation that is not numbers ({_shown(obs)})") from None
        if converted.shape != self._shape:
            raise self._fault(f"an observation of shape {converted.shape}; its observation space "
                              f"declares {self._shape}")
        if not np.isfinite(converted).all():
            raise self._fault(f"a non-finite observation ({_shown(obs)})")
        return converted

    def _number(self, reward):
        """A reward of another type than the usual ones, if it is one number (a 0-d array, a
        NumPy scalar); never a string that merely reads as one."""
        value = None if isinstance(reward, (str, bytes, list, tuple)) else np.asarray(reward)
        if value is None or value.ndim != 0 or value.dtype.kind not in "biuf":
            raise self._fault(f"a reward that is not a number ({_shown(reward)})")
        return value.item()

    def _flag(self, value, name: str) -> bool:
        """``terminated`` or ``truncated`` of another type than bool: a 0-d boolean array, or
        0 and 1; never a string, which would be true whatever it says."""
        if type(value) is not str and np.ndim(value) == 0 and \
                np.asarray(value).dtype.kind in "bui" and value in (0, 1):
            return bool(value)
        raise self._fault(f"a {name} flag that is not a boolean ({_shown(value)})")

    def _fault(self, what: str) -> "EnvironmentFault":
        return EnvironmentFault(f"the environment {self.id} returned {what} at step "
                                f"{self._steps} of its episode; fix the environment, or wrap "
                                "it to give what its spaces declare")

    def reset(self) -> np.ndarray:
        if self._seeded:
            obs, info = self.env.reset()
        else:
            obs, info = self.env.reset(seed=self._seed)
            self.env.action_space.seed(self._seed)
            self._seeded = True
        if self._fire is not None:
            obs, _, terminated, truncated, info = self.env.step(self._fire)
            if terminated or truncated:   # a game over at its first step: start again
                obs, info = self.env.reset()
        self._lives = info.get("lives", 0)
        self._steps = 0
        return self._convert(obs)

    def step(self, action) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        """``action``: an index, or for a Box space a vector, clipped here to the bounds."""
        if self.continuous:
            action = np.clip(action, self._low, self._high)
        else:
            action = int(action) + self._first_action
        obs, reward, terminated, truncated, info = self.env.step(action)
        lives = info.get("lives", 0)
        life_lost = lives < self._lives
        if life_lost and self._fire is not None and not (terminated or truncated):
            obs, more, terminated, truncated, info = self.env.step(self._fire)
            reward += more
            lives = info.get("lives", 0)
        self._lives = lives
        self._steps += 1
        if type(terminated) not in FLAGS or type(truncated) not in FLAGS:
            terminated, truncated = self._flag(terminated, "terminated"), \
                self._flag(truncated, "truncated")
        done = terminated or truncated
        if type(reward) not in NUMBERS:
            reward = self._number(reward)
        reward = float(reward)
        if not math.isfinite(reward):
            raise self._fault(f"a non-finite reward ({reward})")
        return self._convert(obs), reward, done, \
            {"truncated": bool(truncated and not terminated), "life_lost": life_lost}

    def screen(self) -> np.ndarray:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


NUMBERS = (float, int, np.float64, np.float32, np.int64, np.int32)   # rewards taken as they are
FLAGS = (bool, np.bool_)


class EnvironmentFault(Exception):
    """An environment gave what its spaces do not allow: a failure that would recur, so the
    run stops (one line, no restart) instead of learning from it."""


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def make_environment(env_type: str, game: str, rom_path: str | None, seed: int,
                     single_life: bool = False, render: bool = False,
                     frames: Frames = PAPER_FRAMES, fire_reset: bool = False):
    """Build the environment the flags describe (Atari screens as ``frames`` says; FIRE after a
    reset and a lost life with ``fire_reset``). Raises UserError on a bad name."""
    if env_type == "ALE":
        rom, _ = resolve_rom(game, rom_path)
        return AtariEnvironment(rom, seed, single_life=single_life, render=render, frames=frames,
                                fire_reset=fire_reset)
    check_gym_id(game)
    return GymEnvironment(game, seed, single_life=single_life, render=render, frames=frames,
                          fire_reset=fire_reset)
