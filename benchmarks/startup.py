"""What an actor-learner costs before its first step: loading TensorFlow and building its agent.

Every run of the trainer pays this once per actor-learner (16 times with the paper's 16
threads, again for each restarted one), and every evaluation once. Two measurements, each in
fresh processes (TensorFlow loads once per process), in CPU seconds of the whole process
(``time.process_time``, which a busy machine does not stretch):

* **load**: ``tfsetup.configure_tensorflow`` as the trainer runs it, without the Keras
  that ``import tensorflow`` brings for nothing (``tfsetup.KERAS_AT_IMPORT``), against
  the same with Keras loaded;
* **build**: ``agents.make_agent`` as an actor-learner of ``-n 2`` builds it (8 games for Pong,
  with the kernels the trainer chooses), tracing its policy and gradient functions with
  ``tf.function`` without AutoGraph (``agents._graph``), against the same with AutoGraph.

Reproduce with:

    python -m benchmarks.startup               # CartPole's MLP and Pong's UNIVERSE network
    python -m benchmarks.startup --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

from algorithms import tfsetup   # imports no TensorFlow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One measurement in a fresh process: prints {"load": s, "build": s} in CPU seconds.
PROBE = """
import json, sys, time
import numpy as np
from algorithms import agents, config, tfsetup
from algorithms.environments import EnvSpec
from algorithms.networks import make_layout
from algorithms.store import FrozenStore
keras, autograph, game = sys.argv[1] == "1", sys.argv[2] == "1", sys.argv[3]
if keras:
    tfsetup.KERAS_AT_IMPORT = ()
atari = game == "pong"
args = config.parse_args(([game] if atari else [game, "--env", "GYM"]) + ["-n", "2"])
config.resolve_defaults(args, continuous=False, atari=atari)
settings = config.Config.from_namespace(args)
spec = EnvSpec("atari", (42, 42, 4), 6, 4) if atari else EnvSpec("vector", (4,), 2, 1)
start = time.process_time()
tfsetup.configure_tensorflow(tfsetup.onednn_kernels(settings, spec))
loaded = time.process_time()
import tensorflow as tf
if autograph:
    agents._graph = lambda tf, signature: tf.function(input_signature=signature)
layout = make_layout("a3c", settings.arch, spec.observation_shape, spec.num_actions, False, False)
params = layout.initial_values(np.random.default_rng(0)).astype(np.float32)
before = time.process_time()
agents.make_agent(settings, layout, spec, FrozenStore(params, params),
                  np.random.default_rng(0), final_epsilon=0.0, num_envs=settings.envs_per_actor)
print(json.dumps({"load": loaded - start, "build": time.process_time() - before}))
"""


def probe(keras: bool, autograph: bool, game: str) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != tfsetup.ONEDNN}   # as trained
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", PROBE, str(int(keras)), str(int(autograph)),
                          game], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"the {game} probe failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh processes per case; the median is shown (default 3)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; CPU seconds per "
          f"process, median of {args.repeats}")
    cases = [("as trained", False, False), ("with Keras", True, False),
             ("with AutoGraph", False, True)]
    for game in ("CartPole-v1", "pong"):
        runs = {name: [probe(keras, autograph, game) for _ in range(args.repeats)]
                for name, keras, autograph in cases}
        load = {name: statistics.median(r["load"] for r in rs) for name, rs in runs.items()}
        build = {name: statistics.median(r["build"] for r in rs) for name, rs in runs.items()}
        print(f"{game}: load TensorFlow {load['as trained']:.2f} s (with Keras "
              f"{load['with Keras']:.2f} s, {load['as trained'] / load['with Keras']:.2f} of "
              f"it); build the agent {build['as trained']:.2f} s (with AutoGraph "
              f"{build['with AutoGraph']:.2f} s, "
              f"{build['as trained'] / build['with AutoGraph']:.2f} of it)")
    print("reproduce: python -m benchmarks.startup --repeats", args.repeats)


if __name__ == "__main__":
    main()
