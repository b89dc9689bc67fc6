"""How far a value-based checkpoint's Q-values are from what its policy really wins: over
``--games`` games played epsilon-greedily (``--epsilon``, 0.01 as in training), the mean of
Q(s_t, a_t) of the actions taken, by the online and the target network, against the mean of the
discounted returns (clipped rewards, the checkpoint's gamma) that followed them.

Reproduce with:

    python -m benchmarks.value_bias \\
        /work/runs/pong_onestep_sarsa/one-step-sarsa/checkpoints/checkpoint-000003669840.npz \\
        /work/runs/pong_onestep_q/one-step-q/checkpoints/checkpoint-000001250000.npz

A mean Q above the mean return is the optimism of Q-learning's max over nearly equal action
values; below it, the pessimism of Sarsa's target-network value of the online network's choice.
The returns run to the end of the game: for a checkpoint trained with a lost life as a terminal
state (``--single_life_episodes true``), whose values stop at the next lost life, compare games
without lives (Pong).
"""
from __future__ import annotations

import argparse

import numpy as np



def discounted(rewards: list[float], gamma: float) -> np.ndarray:
    """G_t = r_t + gamma G_{t+1}, for every t of one game."""
    returns, following = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


def measure(path: str, games: int, epsilon: float, seed: int) -> dict:
    from algorithms import checkpoint
    from algorithms.agents import make_agent
    from algorithms.config import Config
    from algorithms.environments import atari_frames, make_environment
    from algorithms.networks import layout_for
    from algorithms.store import FrozenStore
    from algorithms.tfsetup import configure_tensorflow
    configure_tensorflow()
    ckpt = checkpoint.load(path)
    config = Config.from_dict(ckpt.config)
    if config.alg_type == "a3c":
        raise SystemExit(f"{path}: an A3C checkpoint has no Q-values; give a value-based one "
                         "(--alg_type q or sarsa)")
    env = make_environment(config.env, config.game, config.rom_path, seed,
                           frames=atari_frames(config.arch, config.lstm, config.screen_size,
                                               config.crop, config.resample))
    params = ckpt.arrays["params"].astype(np.float32)
    target = ckpt.arrays.get("target", params).astype(np.float32)
    agent = make_agent(config, layout_for(config, env.spec), env.spec,
                       FrozenStore(params, target), np.random.default_rng(seed),
                       final_epsilon=epsilon)
    agent.sync(ckpt.step)
    agent.epsilon = epsilon
    online, behind, returns, scores = [], [], [], []
    for _ in range(games):
        state, done, rewards = env.reset(), False, []
        while not done:   # Atari games end by 108,000 frames
            action = agent.choose(state[None])[0]
            online.append(agent.q(agent.params, state[None])[0][action])
            behind.append(agent.q(agent.target, state[None])[0][action])
            state, reward, done, _ = env.step(action)
            rewards.append(max(-1.0, min(1.0, reward)))
        returns.extend(discounted(rewards, config.gamma))
        scores.append(sum(rewards))
    env.close()
    return {"step": ckpt.step, "alg_type": config.alg_type, "steps": len(returns),
            "scores": scores, "q_online": float(np.mean(online)),
            "q_target": float(np.mean(behind)), "return": float(np.mean(returns))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--games", type=int, default=1)
    parser.add_argument("--epsilon", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    for path in args.checkpoints:
        m = measure(path, args.games, args.epsilon, args.seed)
        print(f"{path} ({m['alg_type']}, step {m['step']:,}): {args.games} game(s), "
              f"{m['steps']:,} steps, clipped scores {m['scores']}; mean Q(s, a) online "
              f"{m['q_online']:.2f}, target {m['q_target']:.2f}; mean discounted return "
              f"{m['return']:.2f}", flush=True)


if __name__ == "__main__":
    main()
