"""Which of TensorFlow's CPU kernels an actor-learner runs: oneDNN's for convolutions over K > 1
environments, Eigen's otherwise (measured in help/BENCHMARKS.md), unless the user chose."""
import os
import subprocess
import sys

import pytest

from algorithms import config
from algorithms.actor_learner import onednn_kernels
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


def kernels_in_a_fresh_process(onednn: bool, user_choice: str | None) -> bool:
    """What TensorFlow runs after ``_configure_tensorflow(onednn)`` in a new process."""
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if user_choice is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = user_choice
    code = ("from algorithms.actor_learner import _configure_tensorflow\n"
            f"_configure_tensorflow({onednn})\n"
            "from tensorflow.python.util import _pywrap_util_port\n"
            "print(_pywrap_util_port.IsMklEnabled())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    return {"True": True, "False": False}[out.split()[-1]]


@pytest.mark.parametrize("onednn, user_choice, expected", [
    (True, None, True),      # the trainer's choice, for a batched Atari learner
    (True, "0", False),      # the user's TF_ENABLE_ONEDNN_OPTS wins
])
def test_tensorflow_runs_the_chosen_kernels(onednn, user_choice, expected):
    assert kernels_in_a_fresh_process(onednn, user_choice) is expected
