"""Alternatives for the actor-learner's hot path, each measured against what the trainer does.

Three comparisons, each in one process, timed in CPU seconds of the whole process
(``time.process_time``: TensorFlow runs its kernels on a pool thread, and a busy machine
stretches wall time but not CPU time, so the figures hold up while other work runs):

* **optimizer**: the trainer's shared RMSProp (``optimizers.RMSProp``: nine in-place numpy passes
  over the vectors) against one fused pass compiled with numba (only if numba is installed:
  ``pip install numba``; it is not a requirement) and against the numpy passes over
  cache-sized chunks;
* **gradient**: one segment of A3C (t_max forward passes at batch K to act, then one gradient
  over the K x t_max states, which recomputes the forward pass) against the same segment
  recorded on a gradient tape while acting, whose gradient reuses the acting pass's
  activations;
* **kernels** (``--kernels``): the trainer's segment (acting at batch K, then the gradient) with
  TensorFlow's Eigen kernels against its oneDNN ones (``TF_ENABLE_ONEDNN_OPTS``, read when
  TensorFlow loads, so each in a process of its own), for each network and K the choice
  depends on; the actor-learners choose by it (``tfsetup.configure_tensorflow``);
* **calls** (``--calls``): what one actor-learner pays around the network at K = 1, each the
  trainer's way against the plain TensorFlow way: calling the policy through its inference
  function (``agents.flat_calls``) against ``ConcreteFunction.__call__``; refreshing the local
  parameters in place (``agents.LocalCopy``) against ten ``tf.constant`` copies of the shared
  vector; reading the gradient through a view (``agents.tensor_view``) against ``.numpy()``;
* **environment**: K of the trainer's Atari environments (``environments.AtariEnvironment``)
  stepped one after the other, against ale-py's ``AtariVectorEnv`` with K games in one C++
  object (one thread).

Reproduce with:

    python -m benchmarks.update_path                 # NIPS network, K = 8
    python -m benchmarks.update_path --envs 1 --arch NIPS
    python -m benchmarks.update_path --kernels       # Eigen against oneDNN, K = 1 and 8
    python -m benchmarks.update_path --calls         # the calls around the network, K = 1
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np

from algorithms.config import ARCHITECTURES
from algorithms.tfsetup import ONEDNN   # imports no TensorFlow

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault(ONEDNN, "0")   # Eigen, as at K = 1 (see --kernels)


def cpu_ms(function, calls: int, per: int = 1) -> float:
    """Milliseconds of process CPU time per call of ``function``, divided by ``per``."""
    function()   # warm up (tracing, compiling, caches)
    start = time.process_time()
    for _ in range(calls):
        function()
    return 1e3 * (time.process_time() - start) / calls / per


def optimizer(rounds: int) -> dict[str, float]:
    from algorithms.optimizers import RMSProp
    n = 677_943   # the NIPS network's parameters
    rng = np.random.default_rng(0)
    grad = rng.standard_normal(n).astype(np.float32)
    params, g = rng.standard_normal(n).astype(np.float32), np.zeros(n, np.float32)
    trainer = RMSProp(params, g)
    chunk = 16_384
    chunks = [(RMSProp(params[i:i + chunk], g[i:i + chunk]), grad[i:i + chunk])
              for i in range(0, n, chunk)]
    variants = {"numpy, nine passes (trainer)": lambda: trainer.apply(grad, 1e-4),
                f"numpy over {chunk:,}-float chunks": lambda: [o.apply(x, 1e-4) for o, x in chunks]}
    try:
        import numba
    except ImportError:
        print("numba is not installed: the fused variant is left out (pip install numba)")
    else:
        @numba.njit(fastmath=True)
        def fused(params, g, grad, lr, alpha, eps):
            for i in range(params.size):
                gi = grad[i]
                gg = alpha * g[i] + (1 - alpha) * gi * gi
                g[i] = gg
                params[i] -= lr * gi / np.sqrt(gg + eps)
        args = (np.float32(1e-4), np.float32(0.99), np.float32(0.1))
        variants["numba, one fused pass"] = lambda: fused(params, g, grad, *args)
    return {name: min(cpu_ms(f, 50) for _ in range(rounds)) for name, f in variants.items()}


def gradient(arch: str, envs: int, steps: int, rounds: int,
             taped_too: bool = True) -> dict[str, float]:
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from algorithms.environments import atari_frames
    from algorithms.losses import actor_critic_loss
    from algorithms.networks import actor_critic_forward, actor_critic_layout
    frames = atari_frames(arch, False)
    shape = (frames.size, frames.size, frames.history)
    layout = actor_critic_layout(arch, shape, 6, False, False)
    rng = np.random.default_rng(0)
    params = [tf.constant(rng.standard_normal(s.shape).astype(np.float32) * 0.01)
              for s in layout.specs]
    param_sig = [tf.TensorSpec(s.shape, tf.float32) for s in layout.specs]
    obs_sig = tf.TensorSpec((None,) + shape, tf.uint8)
    int_sig, float_sig = tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32)

    @tf.function(input_signature=[param_sig, obs_sig])
    def policy(params, observations):
        head, values = actor_critic_forward(layout, params, observations)[:2]
        return head, values

    @tf.function(input_signature=[param_sig, obs_sig, int_sig, float_sig])
    def recompute(params, observations, actions, returns):
        with tf.GradientTape() as tape:
            tape.watch(params)
            head, values = actor_critic_forward(layout, params, observations)[:2]
            loss = actor_critic_loss(head, values, actions, returns, 0.01).total
        return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, params)], 0)

    @tf.function(input_signature=[tf.TensorSpec([None, 6]), float_sig, int_sig, float_sig])
    def loss_of(head, values, actions, returns):
        return actor_critic_loss(head, values, actions, returns, 0.01).total

    act, grad_fn, loss_fn = (policy.get_concrete_function(), recompute.get_concrete_function(),
                             loss_of.get_concrete_function())
    observations = [tf.constant(rng.integers(0, 255, (envs,) + shape, dtype=np.uint8))
                    for _ in range(steps)]
    stacked = tf.concat(observations, 0)
    actions = tf.constant(rng.integers(0, 6, steps * envs).astype(np.int32))
    returns = tf.constant(rng.standard_normal(steps * envs).astype(np.float32))

    def trainer():
        for obs in observations:
            tf.nn.softmax(act(params, obs)[0]).numpy()
        return grad_fn(params, stacked, actions, returns).numpy()

    def taped():
        with tf.GradientTape() as tape:
            tape.watch(params)
            heads, values = [], []
            for obs in observations:
                head, value = act(params, obs)
                tf.nn.softmax(head).numpy()
                heads.append(head)
                values.append(value)
            loss = loss_fn(tf.concat(heads, 0), tf.concat(values, 0), actions, returns)
        grads = tape.gradient(loss, params)
        return tf.concat([tf.reshape(g, [-1]) for g in grads], 0).numpy()

    per = steps * envs
    variants = {"act, then recompute (trainer)": trainer}
    if taped_too:
        difference = np.abs(trainer() - taped()).max()
        print(f"gradient: the two ways differ by at most {difference:.2g}")
        variants["tape while acting"] = taped
    return {name: min(cpu_ms(f, 10, per) for _ in range(rounds)) for name, f in variants.items()}


def environment(arch: str, envs: int, steps: int, rounds: int) -> dict[str, float]:
    from ale_py.vector_env import AtariVectorEnv

    from algorithms.environments import atari_frames, make_environment
    frames = atari_frames(arch, False)
    rng = np.random.default_rng(0)
    ours = [make_environment("ALE", "pong", None, k, frames=frames) for k in range(envs)]
    for env in ours:
        env.reset()
    # Its resize has no crop: the same work as ours for NIPS and NATURE (84x84), a little more
    # for UNIVERSE (ours crops the score rows first).
    vector = AtariVectorEnv("pong", envs, num_threads=1, img_height=frames.size,
                            img_width=frames.size, stack_num=frames.history,
                            use_fire_reset=False, reward_clipping=False)
    vector.reset(seed=0)

    def step_ours():
        for _ in range(steps):
            for env in ours:
                if env.step(int(rng.integers(6)))[2]:
                    env.reset()

    def step_vector():
        for _ in range(steps):
            vector.step(rng.integers(6, size=envs))

    per = steps * envs
    variants = {"K environments in turn (trainer)": step_ours,
                "AtariVectorEnv, one thread": step_vector}
    return {name: min(cpu_ms(f, 5, per) for _ in range(rounds)) for name, f in variants.items()}


def calls(arch: str, rounds: int) -> dict[str, dict[str, float]]:
    from multiprocessing import shared_memory

    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from algorithms.agents import LocalCopy, flat_calls, tensor_view
    from algorithms.environments import atari_frames
    from algorithms.networks import actor_critic_forward, actor_critic_layout
    frames = atari_frames(arch, False)
    shape = (frames.size, frames.size, frames.history)
    layout = actor_critic_layout(arch, shape, 6, False, False)
    memory = shared_memory.SharedMemory(create=True, size=4 * layout.size)
    try:
        shared = np.ndarray((layout.size,), np.float32, buffer=memory.buf)
        shared[:] = layout.initial_values(np.random.default_rng(0))
        local = LocalCopy(tf, layout)
        params = local.load(shared)
        param_sig = [tf.TensorSpec(s.shape, tf.float32) for s in layout.specs]

        @tf.function(input_signature=[param_sig, tf.TensorSpec((None,) + shape, tf.uint8)],
                     autograph=False)
        def policy(params, observations):
            head, values = actor_critic_forward(layout, params, observations)[:2]
            return tf.concat([tf.nn.softmax(head), values[:, None]], axis=1)

        concrete, flat = policy.get_concrete_function(), flat_calls(policy)
        frame = tf.constant(
            np.random.default_rng(1).integers(0, 255, (1,) + shape, dtype=np.uint8))
        gradient = tf.constant(shared)   # a tensor of the gradient's size
        sections = {
            f"policy, {arch}, batch 1 (ms per call)": {
                "ConcreteFunction.__call__": lambda: concrete(params, frame).numpy(),
                "inference function (trainer)": lambda: flat(*params, frame)[0].numpy(),
            },
            f"sync, {layout.size:,} shared floats (ms per sync)": {
                "ten tf.constant": lambda: [tf.constant(v) for v in layout.split(shared)],
                "LocalCopy.load (trainer)": lambda: local.load(shared),
            },
            "the gradient into numpy (ms per segment)": {
                ".numpy()": lambda: gradient.numpy(),
                "tensor_view (trainer)": lambda: tensor_view(gradient),
            },
        }
        return {section: {name: min(cpu_ms(f, 200) for _ in range(rounds))
                          for name, f in variants.items()}
                for section, variants in sections.items()}
    finally:
        memory.close()
        memory.unlink()


# (network, K, t_max): the paper's network and the defaults' (UNIVERSE, t_max 20), one
# environment and eight per actor-learner.
KERNEL_CASES = (("NIPS", 1, 5), ("NIPS", 8, 5), ("UNIVERSE", 1, 20), ("UNIVERSE", 8, 20))
KERNELS = {"Eigen": "0", "oneDNN": "1"}


def kernels(rounds: int) -> dict[str, float]:
    """The trainer's segment cost per agent step under each kernel library, each case and
    library in a fresh process (the libraries alternate, so drift affects both alike)."""
    results = {}
    for arch, envs, steps in KERNEL_CASES:
        for name, flag in KERNELS.items():
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.update_path", "--segment", "--arch", arch,
                 "--envs", str(envs), "--steps", str(steps), "--rounds", str(rounds)],
                env={**os.environ, ONEDNN: flag}, capture_output=True,
                text=True, check=True, cwd=os.path.dirname(os.path.dirname(__file__)) or ".")
            results[f"{arch}, K = {envs}, t_max {steps}, {name}"] = float(
                child.stdout.split()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="NIPS", choices=ARCHITECTURES)
    parser.add_argument("--envs", type=int, default=8, help="environments per actor-learner")
    parser.add_argument("--steps", type=int, default=5, help="t_max")
    parser.add_argument("--rounds", type=int, default=3, help="the best of this many")
    parser.add_argument("--kernels", action="store_true",
                        help="only compare Eigen and oneDNN kernels on the trainer's segment")
    parser.add_argument("--calls", action="store_true",
                        help="only compare the calls around the network at K = 1")
    parser.add_argument("--segment", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.segment:   # a child of --kernels: one figure on stdout
        print(gradient(args.arch, args.envs, args.steps, args.rounds, taped_too=False)[
            "act, then recompute (trainer)"])
        return
    if args.kernels:
        print_kernels(kernels(args.rounds))
        print("\nreproduce: python -m benchmarks.update_path --kernels --rounds "
              f"{args.rounds}")
        return
    if args.calls:
        print_sections(calls(args.arch, args.rounds))
        print(f"\nreproduce: python -m benchmarks.update_path --calls --arch {args.arch} "
              f"--rounds {args.rounds}")
        return
    results = {
        "optimizer (ms per update)": optimizer(args.rounds),
        f"gradient (ms per agent step, {args.arch}, K = {args.envs}, t_max {args.steps})":
            gradient(args.arch, args.envs, args.steps, args.rounds),
        f"environment (ms per agent step, Pong, {args.arch} frames)":
            environment(args.arch, args.envs, 50, args.rounds),
    }
    print_sections(results)
    print("\nreproduce: python -m benchmarks.update_path " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items()))


def print_sections(results: dict[str, dict[str, float]]) -> None:
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; CPU time of the whole process")
    for section, figures in results.items():
        print(f"\n{section}")
        baseline = next(iter(figures.values()))
        for name, value in figures.items():
            print(f"  {name:<36} {value:8.3f}   {value / baseline:5.2f} x")


def print_kernels(results: dict[str, float]) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; CPU time of the whole process, ms per agent step of "
          "a segment (act at batch K, then the gradient)")
    names = list(KERNELS)
    for arch, envs, steps in KERNEL_CASES:
        case = f"{arch}, K = {envs}, t_max {steps}"
        eigen, onednn = (results[f"{case}, {name}"] for name in names)
        print(f"  {case:<28} Eigen {eigen:7.3f}   oneDNN {onednn:7.3f}   "
              f"oneDNN / Eigen {onednn / eigen:5.2f}")


if __name__ == "__main__":
    main()
