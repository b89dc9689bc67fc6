"""help/HYPERPARAMETERS.md stays true to the parser: every flag, with the default it really has."""
import argparse
import glob
import itertools
import os
import re

import pytest

from algorithms import config
from conftest import ROOT, readme_commands

DOC = os.path.join(ROOT, "help", "HYPERPARAMETERS.md")


def doc_rows() -> dict[str, str]:
    """Flag name -> the text of its default column, from the tables of the document."""
    rows = {}
    with open(DOC) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and cells[0].startswith("`"):
                for name in cells[0].split(","):
                    rows[name.strip().split()[0].strip("`")] = cells[1]
    return rows


def shown(value) -> str:
    """A default as the document writes it: `80,000,000`, `0.0007`, `40`, `false`."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int):
        return f"`{value:,}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


def parser_actions():
    return [a for a in config.build_parser()._actions if not isinstance(a, argparse._HelpAction)]


def test_every_flag_is_documented():
    rows = doc_rows()
    missing = [a.option_strings or a.dest for a in parser_actions()
               if not any(o in rows for o in (a.option_strings or [a.dest]))]
    assert missing == [], f"flags missing from help/HYPERPARAMETERS.md: {missing}"
    unknown = set(rows) - {o for a in parser_actions() for o in (a.option_strings or [a.dest])}
    assert unknown == set(), f"the document names flags the parser does not have: {unknown}"


@pytest.mark.parametrize("action", [a for a in parser_actions() if a.default is not None
                                    and a.dest not in ("num_actor_learners", "game")],
                         ids=lambda a: a.dest)
def test_documented_default_is_the_real_one(action):
    row = doc_rows()[action.option_strings[-1]]
    assert shown(action.default) in row, f"{action.option_strings[-1]}: the parser says " \
        f"{shown(action.default)}, the document {row!r}"


@pytest.mark.parametrize("continuous,atari", [(False, True), (False, False), (True, False)])
def test_documented_environment_defaults_are_the_resolved_ones(continuous, atari):
    """The defaults that depend on the environment: each resolved value is named in its row."""
    args = config.parse_args(["pong", "--seed", "1", "-n", "2"])
    config.resolve_defaults(args, continuous, atari)
    rows = doc_rows()
    for flag, value in [("--entropy", args.entropy), ("--initial_lr", args.initial_lr),
                        ("--envs_per_actor", args.envs_per_actor),
                        ("--clip_norm_type", args.clip_norm_type),
                        ("--epsilon_annealing_steps", args.epsilon_annealing_steps),
                        ("--q_target_update_steps", args.q_target_update_steps)]:
        assert shown(value) in rows[flag], f"{flag} resolves to {value}, the document says " \
            f"{rows[flag]!r}"
    words = "rescale" if args.rescale_rewards else "clip"
    assert f"{words} on {'continuous' if continuous else 'discrete'}" in rows["--rescale_rewards"]


def test_the_presets_table_is_the_code():
    """Each row of the Presets table names the value each preset resolves its flag to."""
    rows = {}
    with open(DOC) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 3 and cells[0].startswith("`") and "preset" not in cells[0]:
                rows.setdefault(cells[0].split()[0].strip("`"), cells[1:])
    for preset, column in (("tuned", 0), ("paper", 1)):
        args = config.parse_args(["pong", "--preset", preset, "--seed", "1", "-n", "2"])
        config.resolve_defaults(args, continuous=False, atari=True)
        for flag, key in (("--arch", "arch"), ("--opt_type", "opt_type"), ("-lr", "initial_lr"),
                          ("--max_local_steps", "max_local_steps"), ("--clip_norm", "clip_norm"),
                          ("--envs_per_actor", "envs_per_actor"), ("--resample", "resample"),
                          ("--single_life_episodes", "single_life_episodes")):
            value = getattr(args, key)
            text = rows[flag][column]
            assert shown(value) in text, f"{preset}: {flag} is {value}, the table {text!r}"
        assert f"ε {args.e:g}" in rows["--opt_type"][column]


def test_every_command_of_the_readme_table_is_run_by_a_test():
    """Each row of the README's algorithm table names commands (conftest.readme_commands reads
    them) and a test file asks for that row by name."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    table = text[text.index("| algorithm | command |"):]
    rows = [line.split("|")[1].strip() for line in
            itertools.takewhile(lambda line: line.startswith("|"), table.splitlines()[2:])]
    assert len(rows) == 7, rows
    sources = "".join(open(p).read() for p in glob.glob(os.path.join(ROOT, "tests", "test_*.py"))
                      if not p.endswith("test_docs.py"))
    for row in rows:
        commands = readme_commands(row)
        assert all(c[0] in ("CartPole-v1", "CartPoleNoVelocity-v1", "InvertedPendulum-v5")
                   and "--seed" not in c for c in commands), commands
        assert re.search(re.escape(f'"{row}"'), sources), f"no test runs the row {row!r}"
