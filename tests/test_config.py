"""CLI parsing and every validation error: one line naming the flag, exit code 2."""
import os

import pytest

from algorithms import config
from algorithms import cli, startup


def parse(*argv):
    return config.parse_args(list(argv))


def error_of(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, f"expected one line, got:\n{err}"
    return err


def test_defaults_are_the_papers_with_preset_paper():
    args = parse("pong", "--preset", "paper")
    assert config.resolve_defaults(args, continuous=False, atari=True) is None
    assert args.env == "ALE" and args.alg_type == "a3c" and args.arch == "NIPS"
    assert args.opt_type == "rmsprop" and args.opt_mode == "shared"
    assert args.alpha == 0.99 and args.e == 0.1 and args.gamma == 0.99
    assert args.entropy == 0.01 and args.max_local_steps == 5 and args.initial_lr == 7e-4
    assert config.ENTROPY == 0.01 and config.CONTINUOUS_ENTROPY == 1e-4
    assert args.lstm is False and args.mode == "train" and args.resume is False
    assert args.checkpoint_dir == os.path.join("checkpoints", "pong", "a3c")
    assert args.checkpoint_interval == 500_000 and args.keep_checkpoints == 3
    assert args.eval_episodes == 30 and args.eval_epsilon == 0.05
    assert args.max_global_steps == 80_000_000 and args.lr_annealing_steps is None
    assert config.Config.from_dict(dict(vars(args), max_global_steps=3000)).lr_schedule_steps \
        == 3000   # the paper anneals over the whole run
    assert args.q_target_update_steps == 10_000 and args.grads_update_steps == 5
    assert args.epsilon_annealing_steps == 1_000_000
    assert args.clip_norm == 40.0 and args.clip_norm_type == "global"
    assert args.rescale_rewards is False and args.single_life_episodes is False
    assert args.num_actor_learners == os.cpu_count()
    assert args.summary_dir == "/tmp/summary_logs" and args.visualize == 0


def test_the_tuned_preset_is_for_atari_and_flags_given_win():
    tuned = parse("pong", "-n", "16")
    config.resolve_defaults(tuned, continuous=False, atari=True)
    assert (tuned.preset, tuned.arch, tuned.opt_type, tuned.e, tuned.initial_lr,
            tuned.max_local_steps, tuned.clip_norm, tuned.envs_per_actor,
            tuned.single_life_episodes, tuned.resample) == \
        ("tuned", "UNIVERSE_BGSTD", "adam", 1e-8, 1e-4, 20, 50.0, 1, True, "salient")
    for alg in ("q", "sarsa"):   # batched as A3C, at their own rate (TUNED_ATARI_VALUE)
        other = parse("pong", "--alg_type", alg, "-n", "2")
        config.resolve_defaults(other, continuous=False, atari=True)
        assert (other.arch, other.opt_type, other.e, other.initial_lr, other.max_local_steps,
                other.clip_norm, other.envs_per_actor, other.epsilon_annealing_steps) == \
            ("UNIVERSE_BGSTD", "adam", 1e-8, pytest.approx(5e-4), 5, 50.0, 8, 250_000)
        assert other.final_epsilon == 0.01 and other.single_life_episodes is False
        assert other.resample == "area"   # salient frames were measured with A3C alone
        paper = parse("pong", "--alg_type", alg, "-n", "2", "--preset", "paper")
        config.resolve_defaults(paper, continuous=False, atari=True)
        assert (paper.arch, paper.opt_type, paper.e, paper.initial_lr, paper.max_local_steps,
                paper.envs_per_actor, paper.final_epsilon) == \
            ("NIPS", "rmsprop", 0.1, 7e-4, 5, 1, "paper")
        assert paper.resample == "area"
    vector = parse("CartPole-v1", "--env", "GYM")
    config.resolve_defaults(vector, continuous=False, atari=False)
    assert (vector.opt_type, vector.e, vector.initial_lr, vector.max_local_steps,
            vector.clip_norm, vector.resample) == ("rmsprop", 0.1, 3e-3, 5, 40.0, None)
    given = parse("pong", "--arch", "NATURE", "--opt_type", "rmsprop", "--max_local_steps", "5",
                  "--envs_per_actor", "1")
    config.resolve_defaults(given, continuous=False, atari=True)
    assert (given.arch, given.opt_type, given.e, given.max_local_steps, given.initial_lr,
            given.clip_norm, given.resample) == ("NATURE", "rmsprop", 0.1, 5, 1e-4, 50.0, "area")


@pytest.mark.parametrize("flags, resample", [
    ([], "salient"),                                   # 42x42 frames from 84x84 ones
    (["--screen_size", "80"], "salient"),              # the largest salient frames
    (["--screen_size", "84"], "area"),                 # twice 84 is wider than the screen
    (["--arch", "UNIVERSE_BGSTD_POOL4"], "area"),      # a torso of 84x84 frames
    (["--arch", "NATURE"], "area"),
    (["--lstm", "true"], "salient"),
    (["--preset", "paper"], "area"),
    (["--resample", "area"], "area"),                  # given: kept
    (["--resample", "salient", "--arch", "NATURE"], "salient"),   # kept, and refused later
])
def test_the_tuned_preset_resamples_a3c_frames_by_salient_blocks_where_they_fit(flags, resample):
    args = parse("pong", "-n", "2", *flags)
    config.resolve_defaults(args, continuous=False, atari=True)
    assert args.resample == resample


def test_defaults_that_depend_on_the_environment():
    atari = parse("pong", "-n", "16")
    assert config.resolve_defaults(atari, continuous=False, atari=True) is None
    assert (atari.entropy, atari.rescale_rewards, atari.initial_lr) == (0.01, False, 1e-4)
    assert atari.clip_norm_type == "global"
    assert 0 <= atari.seed < 2**31 - 1
    pendulum = parse("Pendulum-v1", "--env", "GYM")
    config.resolve_defaults(pendulum, continuous=True, atari=False)
    assert (pendulum.entropy, pendulum.rescale_rewards, pendulum.initial_lr) == (1e-4, True, 3e-3)
    assert pendulum.clip_norm_type == "local"
    # flags given on the command line are kept
    given = parse("Pendulum-v1", "--env", "GYM", "--entropy", "0.5", "--rescale_rewards", "false",
                  "-lr", "0.02", "--seed", "4", "--clip_norm_type", "global")
    config.resolve_defaults(given, continuous=True, atari=False)
    assert (given.entropy, given.rescale_rewards, given.initial_lr, given.seed,
            given.clip_norm_type) == (0.5, False, 0.02, 4, "global")
    # -lr 0: sampled from LogUniform(1e-4, 1e-2) as the paper did, reproducibly from the seed
    rates = []
    for seed in (1, 1, 2):
        args = parse("pong", "-lr", "0", "--seed", str(seed))
        line = config.resolve_defaults(args, continuous=False, atari=True)
        assert 1e-4 <= args.initial_lr <= 1e-2 and f"{args.initial_lr:.6g}" in line
        rates.append(args.initial_lr)
    assert rates[0] == rates[1] != rates[2]


def test_value_based_defaults_depend_on_the_observations():
    """Epsilon annealing and the target refresh: the paper's on Atari (annealing over 250,000
    steps with --preset tuned), scaled down for vector observations, with either preset; a
    value given on the command line is kept."""
    for preset, annealing in (("paper", 1_000_000), ("tuned", 250_000)):
        atari = parse("pong", "--alg_type", "q", "--preset", preset, "--seed", "1")
        config.resolve_defaults(atari, continuous=False, atari=True)
        assert (atari.epsilon_annealing_steps, atari.q_target_update_steps) == \
            (annealing, 10_000)
        vector = parse("CartPole-v1", "--env", "GYM", "--alg_type", "q", "--preset", preset,
                       "--seed", "1")
        config.resolve_defaults(vector, continuous=False, atari=False)
        assert (vector.epsilon_annealing_steps, vector.q_target_update_steps) == (30_000, 500)
    given = parse("CartPole-v1", "--env", "GYM", "-ea", "7", "--q_target_update_steps", "9",
                  "--seed", "1")
    config.resolve_defaults(given, continuous=False, atari=False)
    assert (given.epsilon_annealing_steps, given.q_target_update_steps) == (7, 9)


def test_tuned_atari_a3c_gathers_the_papers_16_streams_on_fewer_cores():
    """A3C on Atari with --preset tuned: 16 // -n environments per actor-learner (at least
    one), and 1e-4 of learning rate per environment (6.25e-5 for the value-based methods);
    the paper's preset and vector tasks keep one environment and their rate; given flags
    win."""
    def resolved(*flags, atari=True):
        args = parse(*flags, "--seed", "1")
        config.resolve_defaults(args, continuous=False, atari=atari)
        return args.envs_per_actor, pytest.approx(args.initial_lr)

    for n, envs in ((1, 16), (2, 8), (3, 5), (4, 4), (16, 1), (32, 1)):
        assert resolved("pong", "-n", str(n)) == (envs, 1e-4 * envs)
    assert resolved("pong", "-n", "2", "--envs_per_actor", "3") == (3, 3e-4)
    assert resolved("pong", "-n", "2", "-lr", "2e-4") == (8, 2e-4)
    assert resolved("pong", "-n", "2", "--preset", "paper") == (1, 7e-4)
    assert resolved("pong", "-n", "2", "--alg_type", "q") == (8, 5e-4)   # 6.25e-5 a game
    assert resolved("pong", "-n", "2", "--alg_type", "q", "--preset", "paper") == (1, 7e-4)
    assert resolved("CartPole-v1", "--env", "GYM", "-n", "2", atari=False) == (1, 3e-3)
    # a K given on the command line scales the tuned rate alone
    assert resolved("pong", "--envs_per_actor", "1") == (1, 1e-4)
    assert resolved("pong", "--envs_per_actor", "8") == (8, 8e-4)
    assert resolved("pong", "--envs_per_actor", "8", "-lr", "3e-4") == (8, 3e-4)
    assert resolved("pong", "--envs_per_actor", "8", "--preset", "paper") == (8, 7e-4)
    assert resolved("pong", "--envs_per_actor", "8", "--alg_type", "q") == (8, 5e-4)
    assert resolved("CartPole-v1", "--env", "GYM", "--envs_per_actor", "8",
                    atari=False) == (8, 3e-3)


def test_a_checkpoint_from_before_envs_per_actor_resumes_with_one_environment():
    """An Atari A3C checkpoint saved before --envs_per_actor existed (no such key) goes on with
    one game per actor-learner and its own learning rate, not today's 16 // -n and 1e-4 x K;
    the flag given on the command line still wins."""
    saved = dict(vars(parse("pong", "-n", "2", "--seed", "4")), initial_lr=1e-4)
    saved.pop("envs_per_actor")
    for argv, envs in (([], 1), (["--envs_per_actor", "4"], 4)):
        command = ["pong", "-n", "2", "--resume", *argv]
        args = startup.merge_config(parse(*command), saved, config.explicit_flags(command))
        config.resolve_defaults(args, continuous=False, atari=True)
        assert (args.envs_per_actor, args.initial_lr, args.seed) == (envs, 1e-4, 4)


def test_a_checkpoint_saved_before_salient_became_the_default_resumes_on_area_frames():
    """An Atari A3C checkpoint whose --resample was saved unset (None: the default was area
    then) or not saved at all (before the flag) goes on with area-resized frames, not the
    tuned preset's salient ones; one saved with salient keeps it, and a flag given wins."""
    for saved_resample, argv, expected in ((None, [], "area"), ("absent", [], "area"),
                                           ("salient", [], "salient"), ("area", [], "area"),
                                           (None, ["--resample", "salient"], "salient")):
        saved = dict(vars(parse("pong", "-n", "2", "--seed", "4")), arch="UNIVERSE_BGSTD",
                     resample=saved_resample)
        if saved_resample == "absent":
            saved.pop("resample")
        command = ["pong", "-n", "2", "--resume", *argv]
        args = startup.merge_config(parse(*command), saved, config.explicit_flags(command))
        config.resolve_defaults(args, continuous=False, atari=True)
        assert args.resample == expected, (saved_resample, argv)


def test_original_short_flags():
    args = parse("breakout", "-n", "3", "-lr", "0.001", "-lra", "1e6", "-ea", "500", "-v", "0")
    assert (args.num_actor_learners, args.initial_lr, args.lr_annealing_steps,
            args.epsilon_annealing_steps) == (3, 0.001, 1_000_000, 500)


@pytest.mark.parametrize("text, value", [("true", True), ("FALSE", False), ("1", True),
                                         ("0", False), ("Yes", True), ("no", False)])
def test_booleans(text, value):
    assert parse("pong", "--rescale_rewards", text).rescale_rewards is value
    assert parse("pong", "--single_life_episodes", text).single_life_episodes is value


def test_case_insensitive_choices():
    args = parse("pong", "--arch", "nature", "--env", "ale", "--opt_type", "Adam")
    assert (args.arch, args.env, args.opt_type) == ("NATURE", "ALE", "adam")


@pytest.mark.parametrize("argv, flag, allowed", [
    (["-lr", "-0.1"], "-lr/--initial_lr", ">= 0"),
    (["-n", "0"], "-n/--num_actor_learners", ">= 1"),
    (["--arch", "ALEXNET"], "--arch", "NIPS, NATURE"),
    (["--env", "MUJOCO"], "--env", "ALE, GYM"),
    (["--opt_type", "sgd"], "--opt_type", "rmsprop, momentum, adam"),
    (["--opt_mode", "global"], "--opt_mode", "shared, local"),
    (["--clip_norm_type", "max"], "--clip_norm_type", "ignore, local, global"),
    (["--alg_type", "ppo"], "--alg_type", "a3c, q, sarsa"),
    (["--gamma", "1.5"], "--gamma", "<= 1"),
    (["--alpha", "1"], "--alpha", "< 1"),
    (["--e", "0"], "--e", "> 0"),
    (["--clip_norm", "-1"], "--clip_norm", "> 0"),
    (["--max_local_steps", "0"], "--max_local_steps", ">= 1"),
    (["--max_global_steps", "ten"], "--max_global_steps", "an integer"),
    (["--rescale_rewards", "maybe"], "--rescale_rewards", "true/false"),
    (["-v", "3"], "-v/--visualize", "<= 2"),
    (["--entropy", "nan"], "--entropy", ">= 0"),
    (["--seed", "-4"], "--seed", ">= 0"),
    (["--stall_timeout", "1e-9"], "--stall_timeout", ">= 1"),
])
def test_invalid_values(capsys, argv, flag, allowed):
    err = error_of(capsys, "pong", *argv)
    assert flag in err and allowed in err


def test_missing_rom_folder(capsys, tmp_path):
    err = error_of(capsys, "pong", "--rom_path", str(tmp_path / "nowhere"))
    assert "--rom_path" in err and "does not exist" in err


def test_visualize_needs_a_display(capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    err = error_of(capsys, "pong", "-v", "1")
    assert "--visualize" in err and "DISPLAY" in err


def test_visualize_needs_a_reachable_display(capsys, monkeypatch):
    free = next(n for n in range(300, 400) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    monkeypatch.setenv("DISPLAY", f":{free}")
    err = error_of(capsys, "pong", "-v", "2")
    assert f"cannot reach the X display ':{free}'" in err and "-v 0" in err
    monkeypatch.setenv("DISPLAY", "screen-one")
    err = error_of(capsys, "pong", "-v", "1")
    assert "'screen-one' is not an X display" in err


def test_summary_dir_that_is_a_file(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = error_of(capsys, "pong", "--summary_dir", str(blocker / "runs"))
    assert "--summary_dir" in err and "not writable" in err


def test_unknown_atari_game_lists_close_matches(capsys, tmp_path):
    assert cli.main(["pongg", "--summary_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown Atari game 'pongg'" in err and "pong" in err
    assert not list(tmp_path.iterdir()), "nothing may be created for a bad game name"


def test_unknown_gym_id_lists_close_matches(capsys, tmp_path):
    assert cli.main(["CartPole-v9", "--env", "GYM", "--summary_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "CartPole-v1" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("alg", ["a3c", "q", "sarsa"])
def test_every_algorithm_parses(alg):
    assert parse("pong", "--alg_type", alg).alg_type == alg


@pytest.mark.parametrize("alg", ["q", "sarsa"])
def test_value_methods_refuse_continuous_actions(capsys, tmp_path, alg):
    assert cli.main(["Pendulum-v1", "--env", "GYM", "--alg_type", alg,
                      "--summary_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs discrete actions" in err and "a3c" in err
    assert not list(tmp_path.iterdir())


def test_lstm_is_for_a3c_only(capsys):
    assert "only A3C has an LSTM variant" in error_of(capsys, "pong", "--lstm", "true",
                                                       "--alg_type", "q")


def test_checkpoint_dir_that_is_a_file(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    err = error_of(capsys, "pong", "--checkpoint_dir", str(blocker / "ckpt"))
    assert "--checkpoint_dir" in err and "not writable" in err
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("argv, message", [
    (["--record_video", "v"], "--record_video: only used with --mode eval"),
    (["--mode", "eval", "--video_episodes", "2"], "--video_episodes: only used with"),
    (["--mode", "eval", "--resume"], "--resume: only used in --mode train"),
    (["--mode", "test"], "train, eval"),
])
def test_evaluation_flags_out_of_place(capsys, argv, message):
    assert message in error_of(capsys, "pong", *argv)


def test_shared_memory_too_small_for_the_run():
    """Measured against the real /dev/shm: a run that would not fit is refused up front (a
    segment larger than the space left would kill the parent with SIGBUS when filled)."""
    from algorithms import shared
    info = os.statvfs(shared.SHM_FOLDER)
    floats = info.f_bavail * info.f_frsize // 4 + 2**20
    message = shared.space_problem({"params": floats // 2, "opt_g": floats - floats // 2})
    assert message is not None and f"needs {floats * 4 / 2**20:.0f} MB in /dev/shm" in message
    assert "--shm-size" in message
    assert shared.space_problem({"params": 681_027, "opt_g": 681_027}) is None


def test_a_read_only_shared_memory_folder_is_refused_up_front(tiny_tmpfs, tmp_path,
                                                             monkeypatch):
    """A /dev/shm mounted read-only (a container run with --read-only) used to fail at the
    first segment, after the run folder was made, with a bare OSError: now it is one line
    before anything is made. A real read-only tmpfs where this process may mount one, else
    the flag a read-only mount reports, given to the real folder's statvfs."""
    import subprocess
    from algorithms import shared
    if tiny_tmpfs is not None:
        folder = tiny_tmpfs
        done = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True)
        assert done.returncode == 0, done.stderr
        with pytest.raises(OSError):
            (folder / "segment").write_bytes(b"x")
    else:   # no privilege to mount
        folder = tmp_path
        real_statvfs = os.statvfs

        class ReadOnly:
            def __init__(self, info):
                self.info = info

            def __getattr__(self, name):
                value = getattr(self.info, name)
                return value | os.ST_RDONLY if name == "f_flag" else value
        monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly(real_statvfs(path)))
    message = shared.read_only_problem(str(folder))
    assert message is not None and f"{folder} is read-only here" in message
    assert "--tmpfs" in message and "\n" not in message
    if tiny_tmpfs is not None:
        subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
    else:
        monkeypatch.undo()
    assert shared.read_only_problem(str(folder)) is None


def test_a_file_size_limit_below_a_checkpoint_is_refused_before_anything_is_made(tmp_path):
    """Under `ulimit -f 8` (8 KB) a run used to stop at its first shared vector with "OSError:
    [Errno 27] File too large" and a traceback of multiprocessing's resource tracker, after its
    run folder was made. Now: one line that names the limit, exit 2, nothing made."""
    import resource
    import subprocess
    import sys

    from conftest import ALGORITHMS

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, os.path.join(ALGORITHMS, "main.py"), "CartPole-v1",
                           "--env", "GYM", "-n", "1", "--summary_dir", str(tmp_path / "s")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "the file size limit (`ulimit -f`) is 8 KB" in lines[0], lines
    assert "`ulimit -f unlimited`" in lines[0]
    assert sorted(os.listdir(tmp_path)) == []


def test_stop_return_is_not_taken_from_a_checkpoint():
    """A resumed run takes the checkpoint's hyperparameters, but --stop_return belongs to the
    invocation: a run that stopped at its target trains on when resumed without one."""
    argv = ["CartPole-v1", "--env", "GYM", "--resume"]
    saved = {"stop_return": 400.0, "gamma": 0.9}
    merged = startup.merge_config(parse(*argv), saved, config.explicit_flags(argv))
    assert merged.stop_return is None and merged.gamma == 0.9
    argv += ["--stop_return", "450"]
    merged = startup.merge_config(parse(*argv), saved, config.explicit_flags(argv))
    assert merged.stop_return == 450.0


def test_a_read_only_file_system_is_refused_before_anything_is_created(capsys, tiny_tmpfs,
                                                                        monkeypatch, tmp_path):
    import subprocess
    import tempfile
    if tiny_tmpfs is not None:
        subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
        folder = tiny_tmpfs / "ck"
    else:   # no privilege to mount: the same error, raised where the real write happens
        def read_only(*args, **kwargs):
            raise OSError(30, "Read-only file system")
        monkeypatch.setattr(tempfile, "mkstemp", read_only)
        folder = tmp_path / "ck"
    err = error_of(capsys, "pong", "--checkpoint_dir", str(folder))
    assert "--checkpoint_dir" in err
    assert "is not writable" in err or "cannot be written (Read-only file system)" in err
    assert len(err.strip().splitlines()) == 1 and not folder.exists()


def test_names_longer_than_the_file_system_allows_are_refused(capsys, tmp_path):
    err = error_of(capsys, "pong", "--checkpoint_dir", str(tmp_path / ("c" * 300)))
    assert "--checkpoint_dir" in err and "has 300 bytes, the file system allows 255" in err
    err = error_of(capsys, "pong", "--summary_dir", str(tmp_path / "/".join(["d" * 250] * 17)))
    assert "--summary_dir" in err and "path is too long" in err
    assert os.listdir(tmp_path) == []


def test_too_little_room_for_two_checkpoints_is_refused(capsys, tiny_tmpfs, monkeypatch,
                                                        tmp_path):
    """Pong's NIPS network with shared RMSProp: two checkpoints of 5.4 MB each; 1 MB free."""
    if tiny_tmpfs is not None:
        folder = tiny_tmpfs / "ck"
    else:
        real = os.statvfs

        class Tiny:
            f_bavail, f_frsize = 256, 4096   # 1 MB

        monkeypatch.setattr(os, "statvfs",
                            lambda p: Tiny if str(p).startswith(str(tmp_path)) else real(p))
        folder = tmp_path / "ck"
    code = cli.main(["pong", "--preset", "paper", "--checkpoint_dir", str(folder),
                     "--summary_dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2 and "--checkpoint_dir" in err and "MB free, and two checkpoints" in err
    assert not folder.exists() and not (tmp_path / "s").exists()


def test_an_eval_file_that_is_a_folder_is_refused_before_any_episode(capsys, tmp_path):
    err = error_of(capsys, "pong", "--mode", "eval", "--eval_file", str(tmp_path))
    assert f"argument --eval_file: {str(tmp_path)!r} is a folder" in err


def test_too_few_file_descriptors_is_one_line_before_anything_is_created(tmp_path):
    """A real limit: the command runs under `ulimit -n 40`, too few for 8 actor-learners."""
    import subprocess
    import sys
    command = (f"ulimit -n 40 && exec {sys.executable} -m algorithms CartPole-v1 --env GYM "
               f"-n 8 --summary_dir {tmp_path / 's'} --checkpoint_dir {tmp_path / 'ck'}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "too few file descriptors for 8 actor-learners" in done.stderr
    assert "`ulimit -n` allows 40" in done.stderr
    assert os.listdir(tmp_path) == []


def test_a_run_saved_before_final_epsilon_existed_keeps_the_papers_draw():
    """A value-based Atari run saved before --final_epsilon (and its tuned 0.01) existed
    resumes with each actor-learner's drawn rate: its saved configuration has no such key,
    and its absence means the paper's draw, not today's default."""
    from algorithms.startup import merge_config
    saved = {"game": "pong", "alg_type": "q", "preset": "tuned", "arch": "UNIVERSE",
             "envs_per_actor": 8, "initial_lr": 5e-4}
    argv = ["pong", "--alg_type", "q", "--resume"]
    resumed = merge_config(parse(*argv), saved, config.explicit_flags(argv))
    config.resolve_defaults(resumed, continuous=False, atari=True)
    assert resumed.final_epsilon == "paper"
    assert resumed.arch == "UNIVERSE"   # its own torso, not today's default
    argv = ["pong", "--alg_type", "q", "--resume", "--final_epsilon", "0.05"]   # unless given
    given = merge_config(parse(*argv), saved, config.explicit_flags(argv))
    config.resolve_defaults(given, continuous=False, atari=True)
    assert given.final_epsilon == 0.05


@pytest.mark.parametrize("flag, name", [("--summary_dir", "runs\nnext"),
                                        ("--checkpoint_dir", "ck\tpoints"),
                                        ("--eval_file", "scores\n.json"),
                                        ("--checkpoint", "ck/checkpoint-1\r.npz"),
                                        ("--record_video", "videos\u2028b")])
def test_a_path_with_a_line_break_is_refused_before_anything_is_made(capsys, tmp_path, flag,
                                                                     name):
    """The program's lines name paths as they are: a line break in one would split them."""
    path = str(tmp_path / name)
    mode = ["--mode", "eval"] if flag in ("--eval_file", "--checkpoint", "--record_video") \
        else []
    err = error_of(capsys, "CartPole-v1", "--env", "GYM", *mode, flag, path)
    assert err.count("\n") == 1
    assert f"argument {flag}: {path!r} holds a line break or another control character" in err
    assert os.listdir(tmp_path) == []


def test_non_ascii_paths_are_accepted(tmp_path):
    """Letters, a no-break space, a zero-width joiner and a name that is not UTF-8 (a lone
    surrogate, as Python reads such bytes) are not line breaks."""
    for name in ("été", "a\u00a0b", "\u0645\u200c\u06cc", "x\udcff"):
        args = parse("CartPole-v1", "--env", "GYM", "--summary_dir", str(tmp_path / name))
        assert args.summary_dir.endswith(name)
