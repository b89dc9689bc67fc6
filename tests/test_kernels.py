"""Which of TensorFlow's CPU kernels an actor-learner runs: oneDNN's for convolutions over K > 1
environments, Eigen's otherwise (measured in help/BENCHMARKS.md), unless the user chose."""
import os
import subprocess
import sys

import pytest

from algorithms import config
from algorithms.tfsetup import onednn_kernels
from algorithms.environments import EnvSpec
from conftest import ROOT

ATARI = EnvSpec("atari", (84, 84, 4), 6, 4)
VECTOR = EnvSpec("vector", (4,), 2, 1)


def settings(*flags: str, atari: bool = True) -> config.Config:
    game = ["pong"] if atari else ["CartPole-v1", "--env", "GYM"]
    args = config.parse_args([*game, "--seed", "1", *flags])
    config.resolve_defaults(args, continuous=False, atari=atari)
    return config.Config.from_namespace(args)


def test_onednn_for_batched_convolutions_only():
    assert onednn_kernels(settings("-n", "2"), ATARI)            # the defaults: K = 8
    assert onednn_kernels(settings("--envs_per_actor", "2"), ATARI)
    assert not onednn_kernels(settings("-n", "16"), ATARI)       # K = 1
    assert not onednn_kernels(settings("--preset", "paper"), ATARI)
    assert not onednn_kernels(settings("--envs_per_actor", "8", atari=False), VECTOR)


def kernels_of_a_learner(flags: list[str], user_choice: str | None,
                         keras_after: bool = False) -> tuple[bool, str | None]:
    """What TensorFlow runs in a fresh process after ``run_learner`` configured it for a Pong
    actor-learner with ``flags`` (the learner itself then fails: it is given no runtime), and
    what ``TF_ENABLE_ONEDNN_OPTS`` is left as. TensorFlow must have loaded without Keras (which,
    with ``keras_after``, is then imported in full)."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_choice is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_choice
    code = f"""
import os
from algorithms import config
from algorithms.actor_learner import WorkerSpec, run_learner
from algorithms.environments import EnvSpec
args = config.parse_args(["pong", "--seed", "1", *{flags!r}])
config.resolve_defaults(args, continuous=False, atari=True)
spec = WorkerSpec(0, 1, config.Config.from_namespace(args), EnvSpec("atari", (42, 42, 4), 6, 4),
                  layout=None, store=None, run_dir="")
class Messages:
    def send(self, message):
        pass
assert run_learner(spec, None, Messages()) is False
import sys
assert "keras" not in sys.modules and "matplotlib" not in sys.modules   # KERAS_AT_IMPORT
if {keras_after!r}:
    import keras
    assert keras.optimizers.Adam   # still importable in full afterwards
from tensorflow.python.util import _pywrap_util_port
print(_pywrap_util_port.IsMklEnabled(), os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    return {"True": True, "False": False}[out[-2]], None if out[-1] == "None" else out[-1]


@pytest.mark.parametrize("flags, user_choice, expected", [
    (["-n", "2"], None, True),       # the defaults: 8 games per actor-learner
    (["-n", "16"], None, False),     # one game
    (["-n", "2"], "0", False),       # the user's TF_ENABLE_ONEDNN_OPTS wins
])
def test_a_learner_runs_the_chosen_kernels(flags, user_choice, expected):
    assert kernels_of_a_learner(flags, user_choice, keras_after=user_choice is not None) == \
        (expected, user_choice)
