"""The test process: beside the actor-learners, it plays the latest shared parameters and says
how good the policy is now (``--eval_interval``), as pytorch-a3c's test process and
stable-baselines3's ``EvalCallback`` do.

Every ``--eval_interval`` global steps it copies the shared store (everything a checkpoint
holds, one consistent-enough snapshot in the Hogwild sense), plays one episode with those
parameters (greedy for A3C, epsilon-greedy with ``--eval_epsilon`` for the value-based methods;
Atari episodes start with up to 30 random no-ops; a game with no reward for ``STALL_STEPS``
agent steps ends there, since a greedy policy that never serves the ball in Breakout would
otherwise play to the 108,000-frame limit), and sends the score to the supervisor
(``messages.Evaluation``), which writes it to ``evals.csv`` and TensorBoard. A score above the
best so far must hold: the same snapshot plays ``CONFIRM_GAMES`` more games, and if the mean of
all of them still beats the best, the snapshot is written as ``best.npz`` beside the
checkpoints (which ``--mode eval`` and ``--resume --checkpoint`` accept) with that mean as its
score. One lucky game does not make a best: a greedy Pong policy can win one game 21-1 and
lose the next 20-21, each point of which repeats the same hole.

It costs the learners little: it runs at a lower priority (``nice`` 10), plays one episode at a
time, and waits at least ``PACE`` times as long as the episode took of its CPU before the next
one, so it takes at most a tenth of one core.
"""
from __future__ import annotations

import os
import time

import numpy as np

from . import checkpoint
from .files import is_locked, lock_holder, moved_folder
from .messages import Evaluation

PACE = 9.0          # seconds of waiting per second of playing, at least
POLL_SECONDS = 0.5  # how often it looks at the global step, the stop flag and its lifeline
STALL_STEPS = 5_000  # agent steps without a reward that end a test game (20,000 frames on Atari)
CONFIRM_GAMES = 2    # more games a snapshot plays when its first game beats the best
BEST = "best.npz"


def best_path(checkpoint_dir: str, trainer_pid: int = 0) -> str:
    """Where the best parameters go: beside the run's checkpoints, in the folder the trainer
    (process ``trainer_pid``) writes them to now, which is another one if --checkpoint_dir was
    removed under the run and claimed by another run (``files.moved_folder``)."""
    if trainer_pid and lock_holder(checkpoint_dir) != trainer_pid:
        moved = moved_folder(checkpoint_dir, trainer_pid)
        if lock_holder(moved) == trainer_pid and is_locked(moved):
            return os.path.join(moved, BEST)
    return os.path.join(checkpoint_dir, BEST)


class TestProcess:
    """One test process; ``run()`` until the run stops or its parent is gone."""

    def __init__(self, spec, runtime, messages):
        from .agents import make_agent
        from .environments import atari_frames, make_environment
        from .store import FrozenStore, ReadOnlyStore

        config = spec.config
        self.spec, self.runtime, self.messages, self.config = spec, runtime, messages, config
        self.shared = ReadOnlyStore(spec.store)
        self.env = make_environment(config.env, config.game, config.rom_path, spec.seed,
                                    frames=atari_frames(config.arch, config.lstm,
                                                        config.screen_size, config.crop,
                                                        config.resample),
                                    fire_reset=config.fire_reset)
        self._frozen = FrozenStore
        params = np.array(self.shared.vectors["params"])
        self.agent = make_agent(config, spec.layout, spec.env_spec, FrozenStore(params),
                                np.random.default_rng(spec.seed), final_epsilon=config.eval_epsilon,
                                num_envs=1)
        if config.alg_type == "a3c":
            self.agent.greedy = True
        # Tracing the network's functions takes seconds of CPU once: done here, so that the
        # first game's pace (PACE times the CPU it took) is that of a game.
        self.agent.sync(0)
        self.agent.start_episode()
        self.agent.act(self.env.reset()[None])
        self.path = best_path(config.checkpoint_dir, spec.trainer_pid)
        self.best = self._saved_best()

    def _saved_best(self) -> float:
        """The score of the best.npz this run's folder already holds (a resumed run keeps
        it unless it is beaten), else -inf. One written before bests were confirmed (a single
        game's score, no ``eval_games``) is replaced by the first confirmed best."""
        if not os.path.isfile(self.path):
            return -np.inf
        try:
            meta = checkpoint.load(self.path).meta
            if "eval_games" not in meta:
                return -np.inf
            return float(meta.get("eval_score", -np.inf))
        except Exception:   # noqa: BLE001 - an unreadable best is replaced by the next one
            return -np.inf

    def _stopping(self) -> bool:
        runtime = self.runtime
        return runtime.stop.is_set() or (runtime.lifeline is not None
                                         and runtime.lifeline.poll())

    def _wait(self, until_step: int, until_time: float) -> bool:
        """Until the global step and the clock both pass their marks; False if stopping."""
        while not self._stopping():
            if self.runtime.steps.total() >= until_step and time.monotonic() >= until_time:
                return True
            time.sleep(POLL_SECONDS)
        return False

    def run(self) -> None:
        interval = self.config.eval_interval
        next_step = (self.runtime.steps.total() // interval + 1) * interval
        next_time = 0.0
        while self._wait(next_step, next_time):
            step = self.runtime.steps.total()
            if step >= self.config.max_global_steps:
                return
            arrays = self.shared.snapshot(self.runtime.steps)
            started = time.process_time()   # its own CPU: what it takes from the learners
            scores: list[float] = []
            while len(scores) < 1 + CONFIRM_GAMES:
                score, length = self._play(arrays, step)
                if score is None:
                    return   # stopped in the middle of the episode
                scores.append(score)
                confirming = scores[0] > self.best and len(scores) <= CONFIRM_GAMES
                mean = float(np.mean(scores))
                best = None
                if not confirming and scores[0] > self.best and mean > self.best:
                    self.best = best = mean
                    self._save_best(arrays, step, mean)
                self.messages.send(Evaluation(self.spec.actor_id, step, time.time(), score,
                                              length, best))
                if not confirming:
                    break
            took = time.process_time() - started
            next_step, next_time = step + interval, time.monotonic() + PACE * took

    def _play(self, arrays: dict[str, np.ndarray], step: int) -> tuple[float | None, int]:
        agent, env = self.agent, self.env
        params = arrays["params"].astype(np.float32)
        agent.store = self._frozen(params, arrays.get("target", params).astype(np.float32))
        agent.sync(step)
        if self.config.alg_type != "a3c":
            agent.epsilon = self.config.eval_epsilon
        return play_game(agent, env, self._stopping)

    def _save_best(self, arrays: dict[str, np.ndarray], step: int, score: float) -> None:
        meta = dict(self.spec.meta or {}, eval_score=score, eval_step=step,
                    eval_games=1 + CONFIRM_GAMES)
        arrays = dict(arrays, final_epsilons=np.array(self.spec.final_epsilons, np.float64))
        self.path = best_path(self.config.checkpoint_dir, self.spec.trainer_pid)
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            checkpoint.save_as(self.path, int(arrays["steps"].sum()), arrays, meta)
        except OSError as err:   # a full disk: the score is still reported
            from .messages import Alert
            self.messages.send(Alert(self.spec.actor_id, f"the best parameters could not be "
                                     f"written to {self.path} ({err.strerror or err})"))

    def close(self) -> None:
        self.env.close()
        self.shared.close()


def play_game(agent, env, stopping, stall_steps: int = STALL_STEPS
              ) -> tuple[float | None, int]:
    """One test game: (score, agent steps); the score is None if ``stopping()`` turned true
    during it. A game with no reward for ``stall_steps`` steps ends there."""
    agent.start_episode()
    state = env.reset()
    score, length, done, rewarded = 0.0, 0, False, 0
    while not done and length - rewarded < stall_steps:
        if length % 256 == 0 and stopping():
            return None, length
        state, reward, done, _ = env.step(agent.act(state[None])[0])
        score += reward
        length += 1
        if reward:
            rewarded = length
    return score, length


def run_tester(spec, runtime, messages) -> None:
    os.nice(10)   # the learners first
    tester = TestProcess(spec, runtime, messages)
    try:
        tester.run()
    finally:
        tester.close()
