"""What each setting teaches per step: Pong learning curves of a table of settings, one command.

For every setting of the table, trains ``python -m algorithms pong`` (or another ``--game``)
with 2 actor-learners and a fixed seed for ``--steps`` global agent steps (``--parallel`` runs
at a time; a setting whose checkpoint folder already exists is resumed, so an interrupted
ablation continues where it stopped), evaluates its final checkpoint (``--mode eval``, greedy
unless ``--eval sampled``: a greedy Breakout policy may never serve the ball, and its episodes
then last until the frame limit), and writes, under ``--out``:

* ``results.json``: per setting, its flags, the global steps at which the mean of the last 20
  training episodes first reached each level (``--levels``; for Pong -15, -10, -5 and +5), the
  last mean, the evaluation;
* ``results.md``: the same as a Markdown table, with the command of each row;
* ``curves.png``: every setting's training curve against steps and against time.

Reproduce with:

    python -m benchmarks.pong_ablation --steps 1000000                 # every setting
    python -m benchmarks.pong_ablation --steps 1000000 --settings paper,default
    python -m benchmarks.pong_ablation --report-only                   # tables and plot only
    python -m benchmarks.pong_ablation --game breakout --settings default --steps 3000000 \
        --eval sampled --eval_episodes 30

The machine's speed does not matter to the comparison: settings are compared per step.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Levels of the trailing mean whose first crossing the table reports, per game; others get
# DEFAULT_LEVELS unless --levels says.
LEVELS = {"pong": (-15, -10, -5, 5), "breakout": (3, 5, 10, 20)}
DEFAULT_LEVELS = (3, 5, 10, 20)
WINDOW = 20

# name: (flags, what it changes). The first settings start from the paper's values (--preset
# paper: shared RMSProp with eps 0.1, lr 7e-4, t_max 5, clip 40, the NIPS network,
# feed-forward) and change what their description says; "default" is the plain command (today's
# --preset tuned); the rows measured against the defaults before 2026-12-04 (the UNIVERSE torso,
# no lost life terminal: "universe", the "universe-ff" row at K = 16 // -n) pin those
# (BEFORE), and those measured against the defaults of 2026-12-04 to 2026-12-05 pin their
# UNIVERSE_DENSE torso (UDENSE), so that each row still runs what it ran.
PAPER = ["--preset", "paper"]
BEFORE = ["--arch", "UNIVERSE", "--single_life_episodes", "false"]
NO_LIVES = ["--single_life_episodes", "false"]
UDENSE = ["--arch", "UNIVERSE_DENSE"]
VALUE_UNIVERSE = ["--arch", "UNIVERSE"]
NQ = ["--alg_type", "q", "--max_local_steps", "5"]   # n-step Q with today's defaults
NQ_K8 = ["--alg_type", "q", "--max_local_steps", "5", "--envs_per_actor", "8", "--arch",
         "UNIVERSE", "--opt_type", "adam", "--e", "1e-8", "--clip_norm", "50", "-ea", "250000"]
SETTINGS = {
    # (an --out folder that holds a default run of an earlier day resumes it with its saved
    # settings, that day's defaults)
    "default": ([], "nothing: today's defaults (--preset tuned)"),
    "universe": (BEFORE, "the defaults before 2026-12-04 (the former defaults): the UNIVERSE "
                         "torso, no lost life terminal"),
    "paper": (PAPER, "the paper's settings"),
    "n-step-q": (["--alg_type", "q", "--max_local_steps", "5"],
                 "n-step Q-learning (t_max 5) with its defaults: the paper's"),
    "rmsprop-eps1e-5": (PAPER + ["--e", "1e-5"], "RMSProp eps 1e-5"),
    "adam": (PAPER + ["--opt_type", "adam", "-lr", "1e-4", "--e", "1e-8"], "shared Adam, lr 1e-4"),
    "adam-tmax20": (PAPER + ["--opt_type", "adam", "-lr", "1e-4", "--e", "1e-8",
                             "--max_local_steps", "20"], "shared Adam, lr 1e-4, t_max 20"),
    "adam-tmax20-lstm-k8": (PAPER + ["--opt_type", "adam", "-lr", "1e-4", "--e", "1e-8",
                                     "--max_local_steps", "20", "--lstm", "true",
                                     "--envs_per_actor", "8"],
                            "shared Adam, lr 1e-4, t_max 20, LSTM, 8 environments per "
                            "actor-learner"),
    "universe-lstm": (PAPER + ["--arch", "UNIVERSE", "--lstm", "true", "--opt_type", "adam",
                               "-lr", "1e-4", "--e", "1e-8", "--max_local_steps", "20",
                               "--clip_norm", "50"],
                      "UNIVERSE torso (42x42, one frame, standardised, ELU), LSTM, shared Adam "
                      "lr 1e-4, t_max 20, clip 50"),
    "universe-ff": (PAPER + ["--arch", "UNIVERSE", "--opt_type", "adam", "-lr", "1e-4", "--e",
                             "1e-8", "--max_local_steps", "20", "--clip_norm", "50"],
                    "UNIVERSE torso (42x42, four frames, standardised, ELU), feed-forward, "
                    "shared Adam lr 1e-4, t_max 20, clip 50"),
    # Entropy is still 1.64 nats (uniform: 1.79) at 2 M steps with the defaults: the policy
    # moves slowly. Two learners make little staleness, so a larger step may be safe.
    "default-lr2e-4": (BEFORE + ["-lr", "2e-4"], "the former defaults, lr 2e-4"),
    # K = 8 makes one update per 160 steps where K = 1 makes eight, each as large (the loss is
    # averaged over the environments): at the same learning rate 8 times less learning per
    # step. PAAC scales the learning rate with the number of environments, and so does the
    # tuned default (1e-4 x K); these rows measure the rule.
    "k8-lr1e-4": (BEFORE + ["--envs_per_actor", "8", "-lr", "1e-4"],
                  "8 environments per actor-learner, lr 1e-4 (not scaled)"),
    "k8-lr4e-4": (BEFORE + ["--envs_per_actor", "8", "-lr", "4e-4"],
                  "8 environments per actor-learner, lr 4e-4"),
    "default-k8-lr8e-4": (BEFORE + ["--envs_per_actor", "8", "-lr", "8e-4"],
                          "8 environments per actor-learner, lr 8e-4 (= the default at K = 8)"),
    # Breakout (issue 27): each row changes one thing against the former defaults.
    "single-life": (["--arch", "UNIVERSE", "--single_life_episodes", "true"],
                    "the former defaults, a lost life is a terminal state for learning"),
    "nature": (NO_LIVES + ["--arch", "NATURE"],
               "the former defaults with the NATURE torso (84x84, whole screen, four frames)"),
    "default-lr4e-4": (BEFORE + ["-lr", "4e-4"],
                       "the former defaults, lr 4e-4 (half the default at K = 8)"),
    "fire-reset": (BEFORE + ["--fire_reset", "true"],
                   "the former defaults, FIRE after a reset and after a lost life"),
    "nips": (NO_LIVES + ["--arch", "NIPS"],
             "the former defaults with the NIPS torso (84x84, whole screen, four frames)"),
    # The NATURE torso learned Breakout about ten times faster per step than UNIVERSE's 42x42
    # frames (the first Breakout rows, 2026-12-04); these rows change one thing on top of it.
    "universe-84": (BEFORE + ["--screen_size", "84"],
                    "the former defaults (UNIVERSE) on 84x84 frames of the playing field"),
    "nature-single-life": (["--arch", "NATURE", "--single_life_episodes", "true"],
                           "NATURE torso, a lost life terminal for learning"),
    "nature-fire-reset": (NO_LIVES + ["--arch", "NATURE", "--fire_reset", "true"],
                          "NATURE torso, FIRE after a reset and a lost life"),
    # NATURE on Pong at the default lr (8e-4 at K = 8) was still at -20.3 at 0.59 M steps in
    # seeds 1 and 2: a torso of 1.7 M parameters may want a smaller Adam step (PPO's 2.5e-4).
    "nature-lr2.5e-4": (NO_LIVES + ["--arch", "NATURE", "-lr", "2.5e-4"],
                        "the former defaults with the NATURE torso, lr 2.5e-4"),
    "nature-lr4e-4": (NO_LIVES + ["--arch", "NATURE", "-lr", "4e-4"],
                      "the former defaults with the NATURE torso, lr 4e-4"),
    # NATURE's input is the screen / 255: Pong's ball and paddles differ from its grey field by
    # a few hundredths, where UNIVERSE standardises each observation (Breakout's field is black).
    "nature-std": (NO_LIVES + ["--arch", "NATURE_STD"],
                   "the former defaults with the NATURE torso on standardised observations"),
    # t_max 20 with 8 games makes one update per 160 steps of a learner: 6,250 updates a
    # million steps for two learners, where A2C (16 games, t_max 5) makes 12,500 and PPO about
    # 15,600. A torso of 1.7 M parameters may want the updates more than their size.
    "nature-tmax5": (NO_LIVES + ["--arch", "NATURE", "--max_local_steps", "5"],
                     "the former defaults with the NATURE torso, t_max 5"),
    "nature-single-life-tmax5": (["--arch", "NATURE", "--single_life_episodes", "true",
                                  "--max_local_steps", "5"],
                                 "NATURE torso, a lost life terminal for learning, t_max 5"),
    # NIPS and NATURE have a dense layer after their convs, UNIVERSE none: its policy is linear
    # in 288 conv features, and Breakout wants the ball's place set against the paddle's.
    "universe-dense": (NO_LIVES + ["--arch", "UNIVERSE_DENSE"],
                       "the former defaults with a dense layer of 256 ELUs after UNIVERSE's convs"),
    "universe-dense-single-life": (["--arch", "UNIVERSE_DENSE", "--single_life_episodes", "true"],
                                   "UNIVERSE_DENSE, a lost life terminal for learning"),
    # Today's defaults on Breakout serve the ball themselves only once the policy has learned
    # to press FIRE after every lost life (a lost life is terminal for learning, so the first
    # action of every learning episode is a serve or a wait).
    # Which part of the UNIVERSE torsos' input makes Pong fast: the crop to the playing field,
    # the 42x42 scale, or the standardised ELU convolutions. Each row runs on Pong and Breakout.
    "nature-field": (["--arch", "NATURE", "--crop", "field", "--single_life_episodes", "true"],
                     "NATURE on 84x84 frames of the playing field (rows 34-193, no score), a lost "
                     "life terminal"),
    "udense-screen": (UDENSE + ["--crop", "none"],
                      "UNIVERSE_DENSE on 42x42 frames of the whole screen (with the score)"),
    "udense-84": (UDENSE + ["--screen_size", "84"],
                  "UNIVERSE_DENSE on 84x84 frames of the field"),
    # The NATURE torso dies on Pong (benchmarks/dead_units.py: every layer constant by 3 M
    # steps, 81% of conv0 by 50,000): ELU units cannot.
    "nature-elu": (["--arch", "NATURE_ELU"],
                   "NATURE with ELU units (84x84, the whole screen, /255), a lost life "
                   "terminal"),
    # At today's lr (8e-4 with K = 8) NATURE_ELU's policy went deterministic within 10,000
    # steps on Pong and Breakout (entropy 1.79 -> 0.002): Adam moves each of its 1.7 M
    # parameters by about lr per update, and a dense layer over 3,136 inputs moves its outputs
    # about ten times as far as UNIVERSE_DENSE's over 288.
    "nature-elu-lr2.5e-4": (["--arch", "NATURE_ELU", "-lr", "2.5e-4"],
                            "NATURE_ELU, lr 2.5e-4 (PPO's with this network)"),
    "nature-elu-lr1e-4": (["--arch", "NATURE_ELU", "-lr", "1e-4"], "NATURE_ELU, lr 1e-4"),
    "nature-single-life-lr2.5e-4": (["--arch", "NATURE", "--single_life_episodes", "true", "-lr",
                                     "2.5e-4"], "NATURE, a lost life terminal, lr 2.5e-4"),
    # NATURE dies on Pong with Adam at 8e-4 (and 2.5e-4, eps 1e-8): the optimizers that learn
    # Pong with this torso elsewhere, A2C's (RMSProp, eps 1e-5, gradients clipped to 0.5) and
    # PPO's (Adam 2.5e-4, eps 1e-5, clipped to 0.5).
    "nature-rmsprop-a2c": (["--arch", "NATURE", "--opt_type", "rmsprop", "-lr", "7e-4", "--e",
                            "1e-5", "--clip_norm", "0.5"],
                           "NATURE with A2C's optimizer: RMSProp lr 7e-4, eps 1e-5, clip 0.5"),
    "nature-adam-ppo": (["--arch", "NATURE", "-lr", "2.5e-4", "--e", "1e-5", "--clip_norm",
                         "0.5"], "NATURE with PPO's optimizer: Adam lr 2.5e-4, eps 1e-5, clip 0.5"),
    # NATURE_STD kept its convolutions alive on Pong (standardised frames have no grey
    # background to switch a unit off everywhere) but its dense layer died at 8e-4:
    "nature-std-lr2.5e-4": (["--arch", "NATURE_STD", "-lr", "2.5e-4"],
                            "NATURE on standardised frames, lr 2.5e-4"),
    "nature-std-rmsprop-a2c": (["--arch", "NATURE_STD", "--opt_type", "rmsprop", "-lr", "7e-4",
                                "--e", "1e-5", "--clip_norm", "0.5"],
                               "NATURE on standardised frames with A2C's optimizer"),
    # Which of the UNIVERSE torso's differences from NATURE holds Breakout back, one at a time
    # (2026-12-05): its ELU units, the crop of the field, the standardised frames.
    "udense-relu": (["--arch", "UNIVERSE_RELU"], "UNIVERSE_DENSE with ReLU units"),
    "nature-std-single-life": (["--arch", "NATURE_STD", "--single_life_episodes", "true"],
                               "NATURE on standardised frames, a lost life terminal"),
    "udense-raw": (["--arch", "UNIVERSE_RAW"],
                   "UNIVERSE_DENSE on frames / 255 instead of standardised ones"),
    # Today's torso on Breakout keeps a nearly uniform policy (entropy 1.25 of 1.39 at 2 M
    # steps, NATURE's 1.0 by 0.6 M): larger steps, or a weaker pull towards uniform.
    # NATURE dies on Pong's grey background and standardised frames slow it on Breakout: only
    # the background level taken away (each observation's mean), the scale kept.
    "nature-centred": (["--arch", "NATURE_CENTRED"],
                       "NATURE on frames / 255 less each observation's mean, a lost life terminal"),
    # Adam moves every weight by about the learning rate, however small its gradient: a larger
    # epsilon slows the weights whose gradients are tiny (the units about to die) and leaves
    # the others as they were.
    "nature-eps1e-3": (["--arch", "NATURE", "--e", "1e-3"],
                       "NATURE, Adam epsilon 1e-3 (1e-8), a lost life terminal"),
    "nature-eps1e-2": (["--arch", "NATURE", "--e", "1e-2"],
                       "NATURE, Adam epsilon 1e-2 (1e-8), a lost life terminal"),
    "udense-lr2e-3": (UDENSE + ["-lr", "2e-3"], "UNIVERSE_DENSE, lr 2e-3 (8e-4)"),
    "udense-entropy3e-3": (UDENSE + ["--entropy", "0.003"],
                           "UNIVERSE_DENSE, entropy weight 0.003 (0.01)"),
    # Session 39: the layers themselves, one difference from NATURE's at a time.
    "udense-wide": (["--arch", "UNIVERSE_WIDE"],
                    "UNIVERSE_DENSE with 64 filters a conv layer (32)"),
    "udense-shallow": (["--arch", "UNIVERSE_SHALLOW"],
                       "UNIVERSE_DENSE with three convs: a 6x6 grid into the dense layer "
                       "(3x3)"),
    "udense-d512": (["--arch", "UNIVERSE_D512"], "UNIVERSE_DENSE with a dense layer of 512 (256)"),
    "nature-leaky": (["--arch", "NATURE_LEAKY"],
                     "NATURE with leaky ReLU units (slope 0.01), a lost life terminal"),
    "udense-plain": (["--arch", "UNIVERSE_PLAIN"],
                     "UNIVERSE_DENSE's layers on NATURE's input and units (frames / 255, ReLU)"),
    # UNIVERSE_PLAIN learned Breakout as NATURE does, but not Pong; standardised frames learn
    # Pong. Both Breakout's black field and, less its background, Pong's grey one are zero:
    "udense-bg": (["--arch", "UNIVERSE_BG"],
                  "UNIVERSE_PLAIN on frames less their most common value (the background)"),
    # (today's defaults since 2026-12-05)
    "udense-bgstd": (["--arch", "UNIVERSE_BGSTD"],
                     "UNIVERSE_BG divided by each observation's standard deviation"),
    # UNIVERSE_BGSTD learns Beam Rider more slowly than NATURE (472 against 1,040 at 2 M): is
    # it the frame size, or the input's scale?
    "udense-bgstd-84": (["--arch", "UNIVERSE_BGSTD", "--screen_size", "84"],
                        "UNIVERSE_BGSTD on 84x84 frames of the field"),
    # UNIVERSE_BGSTD on 84x84 frames learned Beam Rider faster than NATURE (885 by 1.06 M), at
    # half the steps/s; a first layer of 4x4 patches, stride 4, takes 84x84 frames to the 21x21
    # grid the 42x42 torso's first layer makes, at about its cost:
    "bgstd-s4-84": (["--arch", "UNIVERSE_BGSTD_S4", "--screen_size", "84"],
                    "UNIVERSE_BGSTD_S4 on 84x84 frames of the field"),
    # S4 (a 3x3 grid into the dense layer) did not learn Beam Rider where 84x84 frames through
    # the four 3x3/2 convs (a 6x6 grid) did: the grid, at 42x42 frames' cost.
    "bgstd-shallow": (["--arch", "UNIVERSE_BGSTD_SHALLOW"],
                      "UNIVERSE_BGSTD with three convs: a 6x6 grid into the dense layer (3x3)"),
    # 84x84 frames through UNIVERSE_BGSTD's first layer, then a max-pool to the 42x42 torso's
    # 21x21 grid (at about 1.3 times its conv work, where the four convs on 84x84 do 3.6):
    "bgstd-pool-84": (["--arch", "UNIVERSE_BGSTD_POOL", "--screen_size", "84"],
                      "UNIVERSE_BGSTD_POOL: 84x84 frames, 3x3/2 conv, 2x2 max-pool, two convs"),
    "bgstd-pool4-84": (["--arch", "UNIVERSE_BGSTD_POOL4", "--screen_size", "84"],
                       "UNIVERSE_BGSTD_POOL4: 84x84 frames, 3x3/2 conv, 2x2 max-pool, then the "
                       "42x42 torso's three convs (a 3x3 grid)"),
    # the default torso on 42x42 frames made by keeping, of each 2x2 block of the 84x84 frame,
    # the pixel farthest from the background: small objects at the 84x84 frame's contrast, at
    # the 42x42 torso's cost
    "bgstd-salient": (["--resample", "salient"],
                      "UNIVERSE_BGSTD on 42x42 frames: of each 2x2 block of the 84x84 frame, "
                      "the pixel farthest from the background"),
    # and with three convs: a 6x6 grid into the dense layer, as the full 84x84 torso has
    "bgstd-shallow-salient": (["--arch", "UNIVERSE_BGSTD_SHALLOW", "--resample", "salient"],
                              "UNIVERSE_BGSTD_SHALLOW (three convs, a 6x6 grid) on salient "
                              "42x42 frames"),
    # A3C LSTM, the paper's strongest agent, with today's defaults: one salient 42x42 frame a
    # step (the LSTM remembers the motion the feed-forward torso reads from four)
    "lstm": (["--lstm", "true"], "A3C LSTM with today's defaults (one frame a step)"),
    "default-fire-reset": (UDENSE + ["--fire_reset", "true"],
                           "UNIVERSE_DENSE, FIRE after a reset and after a lost life"),
    # n-step Q-learning batched as A3C is (issue 28): 8 games per actor-learner, the UNIVERSE
    # torso, shared Adam; epsilon annealed over 250,000 steps (the paper: 1 M).
    "nq-k8": (NQ_K8 + ["-lr", "2e-4"],
              "n-step Q (t_max 5), 8 games per actor-learner, UNIVERSE, shared Adam lr 2e-4, "
              "clip 50, epsilon annealed over 250,000 steps"),
    "nq-k8-lr5e-4": (NQ_K8 + ["-lr", "5e-4"], "as nq-k8, lr 5e-4"),
    # At 2 M steps nq-k8-lr5e-4's learner with final epsilon 0.01 averaged +11, the one with 0.1
    # -5: on Pong a tenth of random actions costs more than the policy has learned.
    # The paper's other value-based methods with today's defaults, as the plain commands run
    # them (issue 28): `python main.py pong --alg_type q --max_local_steps 1`, and so on.
    # (measured with the value-based methods' torso before 2026-12-05, UNIVERSE, which these
    # rows pin so that each still runs what it ran)
    "one-step-q": (["--alg_type", "q", "--max_local_steps", "1", *VALUE_UNIVERSE],
                   "one-step Q-learning with the defaults of 2026-12-04 (UNIVERSE)"),
    "one-step-sarsa": (["--alg_type", "sarsa", "--max_local_steps", "1", *VALUE_UNIVERSE],
                       "one-step Sarsa with the defaults of 2026-12-04 (UNIVERSE)"),
    # One-step Sarsa's values fell below any return Pong allows (q/max_mean -6.3 at 3.6 M, where
    # losing every point is worth about -2.3), n-step Sarsa's to -4 before it learned: the
    # target network's value of the online network's choice sits below its max by the gap
    # between the two networks, and one-step targets compound it. Two ways to narrow the gap:
    "one-step-sarsa-target2500": (["--alg_type", "sarsa", "--max_local_steps", "1",
                                   "--q_target_update_steps", "2500", *VALUE_UNIVERSE],
                                  "one-step Sarsa, the target refreshed every 2,500 steps "
                                  "(10,000)"),
    "one-step-sarsa-lr2.5e-4": (["--alg_type", "sarsa", "--max_local_steps", "1", "-lr",
                                 "2.5e-4", *VALUE_UNIVERSE], "one-step Sarsa, lr 2.5e-4 (5e-4)"),
    "one-step-sarsa-target40000": (["--alg_type", "sarsa", "--max_local_steps", "1",
                                    "--q_target_update_steps", "40000", *VALUE_UNIVERSE],
                                   "one-step Sarsa, the target refreshed every 40,000 steps "
                                   "(10,000): 2,500 drove the values down faster"),
    # Neither refresh rate nor half the learning rate helped; A3C learned Pong fastest on
    # frames less their background, divided by their spread (UNIVERSE_BGSTD, with ReLU and a
    # dense layer), and it has been the value-based methods' default since 2026-12-05 (these
    # three rows measured it):
    "one-step-sarsa-bgstd": (["--alg_type", "sarsa", "--max_local_steps", "1", "--arch",
                              "UNIVERSE_BGSTD"], "one-step Sarsa on UNIVERSE_BGSTD (UNIVERSE)"),
    "n-step-q-bgstd": (["--alg_type", "q", "--max_local_steps", "5", "--arch",
                        "UNIVERSE_BGSTD"], "n-step Q on UNIVERSE_BGSTD (UNIVERSE)"),
    "one-step-q-bgstd": (["--alg_type", "q", "--max_local_steps", "1", "--arch",
                          "UNIVERSE_BGSTD"], "one-step Q on UNIVERSE_BGSTD (UNIVERSE)"),
    "n-step-sarsa-bgstd": (["--alg_type", "sarsa", "--max_local_steps", "5", "--arch",
                            "UNIVERSE_BGSTD"], "n-step Sarsa on UNIVERSE_BGSTD (UNIVERSE)"),
    # Issue 28's ablation of n-step Q on today's defaults (n-step-q-bgstd, +18 at 1.04-1.21 M),
    # one change a row: the exploration span, the target refresh, the optimizer, t_max, K and
    # the network.
    "nq-ea1m": (NQ + ["-ea", "1000000"], "n-step Q, epsilon annealed over 1 M steps (250,000)"),
    "nq-target2500": (NQ + ["--q_target_update_steps", "2500"],
                      "n-step Q, the target refreshed every 2,500 steps (10,000)"),
    "nq-target40000": (NQ + ["--q_target_update_steps", "40000"],
                       "n-step Q, the target refreshed every 40,000 steps (10,000)"),
    "nq-rmsprop": (NQ + ["--opt_type", "rmsprop", "-lr", "7e-4", "--e", "0.1"],
                   "n-step Q, the paper's shared RMSProp (lr 7e-4, eps 0.1) for Adam 5e-4"),
    "nq-tmax20": (["--alg_type", "q", "--max_local_steps", "20"],
                  "n-step Q, t_max 20 (5)"),
    "nq-k4": (NQ + ["--envs_per_actor", "4"],
              "n-step Q, 4 games per actor-learner (8; lr 2.5e-4 by the K rule)"),
    "nq-nips": (NQ + ["--arch", "NIPS"], "n-step Q on the paper's NIPS torso (84x84 screens)"),
    "n-step-sarsa": (["--alg_type", "sarsa", "--max_local_steps", "5", *VALUE_UNIVERSE],
                     "n-step Sarsa (t_max 5) with the defaults of 2026-12-04 (UNIVERSE)"),
    "nq-eps0.01": (["--alg_type", "q", "--max_local_steps", "5", "--final_epsilon", "0.01",
                    *VALUE_UNIVERSE],
                   "n-step Q (t_max 5) with the defaults of 2026-12-04 (nq-k8-lr5e-4's "
                   "settings, UNIVERSE), every actor-learner's final epsilon 0.01"),
}
# Every row measured before 2026-12-06 read 42x42 frames resized by area, the default then: they
# pin it (a no-op for the rows of 84x84 frames, the paper's preset and the value-based methods),
# so that each row still runs what it ran; "default" and the rows of salient frames take today's.
SALIENT_ROWS = ("default", "bgstd-salient", "bgstd-shallow-salient", "lstm")
SETTINGS = {name: (flags if name in SALIENT_ROWS or "--resample" in flags
                   else [*flags, "--resample", "area"], change)
            for name, (flags, change) in SETTINGS.items()}
# The learning rate anneals over the default --max_global_steps (80 M), as in the plain command
# `python main.py pong`, not over the ablation's own shorter budget.
ANNEALING_STEPS = 80_000_000


def folders(out: str, name: str) -> tuple[str, str]:
    return os.path.join(out, name, "summary"), os.path.join(out, name, "checkpoints")


def command(name: str, steps: int, out: str, seed: int, workers: int,
            game: str) -> list[str]:
    summary, checkpoints = folders(out, name)
    flags = SETTINGS[name][0]
    args = [sys.executable, "-m", "algorithms", game, "-n", str(workers), "--seed", str(seed),
            "--max_global_steps", str(steps), "--lr_annealing_steps", str(ANNEALING_STEPS),
            "--checkpoint_interval", str(max(steps // 20, 1)),
            "--keep_checkpoints", "20", "--summary_dir", summary, "--checkpoint_dir",
            checkpoints, "--quiet", *flags]
    if glob.glob(os.path.join(checkpoints, "checkpoint-*.npz")):
        args.append("--resume")
    return args


def train(names: list[str], steps: int, out: str, seed: int, workers: int,
          parallel: int, game: str) -> None:
    pending, running = list(names), []
    while pending or running:
        while pending and len(running) < parallel:
            name = pending.pop(0)
            os.makedirs(os.path.join(out, name), exist_ok=True)
            log = open(os.path.join(out, name, "train.log"), "a")
            args = command(name, steps, out, seed, workers, game)
            print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(args[1:])}", flush=True)
            running.append((name, subprocess.Popen(args, cwd=ROOT, stdout=log,
                                                   stderr=subprocess.STDOUT), log))
        time.sleep(5)
        for item in list(running):
            name, proc, log = item
            if proc.poll() is not None:
                log.close()
                running.remove(item)
                print(f"[{time.strftime('%H:%M:%S')}] {name}: exit code {proc.returncode}",
                      flush=True)


def evaluate(name: str, out: str, episodes: int, game: str, mode: str) -> dict | None:
    _, checkpoints = folders(out, name)
    found = sorted(glob.glob(os.path.join(checkpoints, "checkpoint-*.npz")))
    if not found:
        return None
    result = os.path.join(out, name, f"eval-{mode}-{os.path.basename(found[-1])[11:-4]}.json")
    if not os.path.isfile(result):
        subprocess.run([sys.executable, "-m", "algorithms", game, "--mode", "eval",
                        *(["--greedy"] if mode == "greedy" else []),
                        "--checkpoint", found[-1], "--eval_episodes", str(episodes),
                        "--eval_file", result], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    with open(result) as f:
        return json.load(f)


def curve(name: str, out: str, levels: tuple[float, ...]) -> dict | None:
    """The run's episodes, its trailing means and the steps where they first reach each
    level."""
    summary, _ = folders(out, name)
    runs = sorted(glob.glob(os.path.join(summary, "*", "*", "*", "episodes.csv")))
    if not runs:
        return None
    with open(runs[-1], newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return None
    steps = np.array([int(r["global_step"]) for r in rows])
    returns = np.array([float(r["return"]) for r in rows])
    order = np.argsort(steps, kind="stable")
    steps, returns = steps[order], returns[order]
    means = np.array([returns[max(0, i - WINDOW + 1):i + 1].mean() for i in range(len(returns))])
    reached = {f"{t:g}": next((int(s) for s, m, i in zip(steps, means, range(len(means)))
                             if m >= t and i >= WINDOW - 1), None) for t in levels}
    return {"run_dir": os.path.dirname(runs[-1]), "last_step": int(steps[-1]),
            "last_mean": float(means[-1]), "best_mean": float(means[WINDOW - 1:].max())
            if len(means) >= WINDOW else None, "reached": reached, "episodes": len(rows)}


def report(names: list[str], out: str, episodes: int, seed: int, workers: int,
           steps: int, game: str, levels: tuple[float, ...], mode: str) -> None:
    results = {}
    for name in names:
        learned = curve(name, out, levels)
        if learned is None:
            continue
        results[name] = dict(learned, flags=SETTINGS[name][0], change=SETTINGS[name][1],
                             evaluation=evaluate(name, out, episodes, game, mode))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"machine": machine, "date": time.strftime("%Y-%m-%d"), "seed": seed,
                   "workers": workers, "game": game, "levels": list(levels),
                   "evaluation": mode, "settings": results}, f, indent=2)

    def steps_text(value):
        return "-" if value is None else f"{value / 1e6:.2f} M"

    lines = [f"{game}, {workers} actor-learners, seed {seed}; {machine}, "
             f"{time.strftime('%Y-%m-%d')}. Steps at which the mean of the last {WINDOW} "
             "training episodes first reached each level ('-': not within the run).", "",
             "| setting | what changes | steps run | " + " | ".join(
                 f"to {t:+g}" for t in levels) + f" | last mean | {mode} eval |",
             "| --- | --- | --- | " + " | ".join("---" for _ in levels) + " | --- | --- |"]
    for name, r in results.items():
        ev = r["evaluation"]
        ev_text = "-" if ev is None else \
            f"{ev['mean']:.1f} ± {ev['std']:.1f} ({ev['episodes']}, at {ev['global_step']:,})"
        lines.append(f"| `{name}` | {r['change']} | {r['last_step']:,} | "
                     + " | ".join(steps_text(r["reached"][f"{t:g}"]) for t in levels)
                     + f" | {r['last_mean']:.1f} | {ev_text} |")
    lines += ["", "Commands (from the repository root):", ""]
    lines += [f"- `{name}`: `python -m algorithms {game} -n {workers} --seed {seed} "
              f"--max_global_steps {steps} --lr_annealing_steps {ANNEALING_STEPS} "
              f"{' '.join(SETTINGS[name][0])}`".replace("  ", " ")
              for name in results]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if results:
        plot = [sys.executable, os.path.join(ROOT, "algorithms", "plot.py"), "--overlay",
                "-o", os.path.join(out, "curves.png"), "--labels", ",".join(results)]
        subprocess.run(plot + [r["run_dir"] for r in results.values()], check=True)


def levels_list(text: str) -> tuple[float, ...]:
    """``--levels``: comma-separated numbers."""
    try:
        return tuple(float(level) for level in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers "
                                         "(e.g. 3,5,10,20)") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000,
                        help="global agent steps per setting")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--out", default="/tmp/pong_ablation", help="folder for everything")
    parser.add_argument("--game", default="pong", help="the Atari game (any of ALE's)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="actor-learners per run")
    parser.add_argument("--parallel", type=int, default=2, help="runs at the same time")
    parser.add_argument("--eval_episodes", type=int, default=10)
    parser.add_argument("--eval", choices=("greedy", "sampled"), default="greedy",
                        help="evaluate the final checkpoint greedily or sampling its actions")
    parser.add_argument("--levels", default=None, type=levels_list,
                        help="comma-separated levels of the trailing mean to report the first "
                             f"crossing of (default: {LEVELS} by game, else {DEFAULT_LEVELS})")
    parser.add_argument("--report-only", action="store_true",
                        help="no training: tables, evaluations and plot from what is in --out")
    args = parser.parse_args()
    names = args.settings.split(",")
    unknown = set(names) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown setting(s) {', '.join(sorted(unknown))}")
    levels = args.levels or LEVELS.get(args.game, DEFAULT_LEVELS)
    if not args.report_only:
        train(names, args.steps, args.out, args.seed, args.workers, args.parallel, args.game)
    report(names, args.out, args.eval_episodes, args.seed, args.workers, args.steps, args.game,
           levels, args.eval)
    print("\nreproduce: python -m benchmarks.pong_ablation " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
