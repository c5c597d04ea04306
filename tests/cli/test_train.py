"""`bellmax train` / `bellmax evaluate`: outputs, JSON, resume through the CLI, clear errors.

A tiny PPO budget (4 updates of 8 x 32 steps) keeps this about plumbing, not learning: the
learning thresholds are in tests/deep/. Every run uses the same config so the driver's cached
compiled program is shared across tests.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from bellmax.cli.main import main

TINY = ["--total-steps", "1024", "--num-epochs", "2", "--chunks", "2", "--eval-episodes", "2"]


def _json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_train_writes_everything_and_evaluate_reloads(tmp_path, capsys):
    out = tmp_path / "run"
    res = _json(capsys, "train", "ppo", *TINY, "--seeds", "2", "--out", str(out), "--json")
    for key in ("final_eval_return", "env_steps", "seconds", "compile_seconds"):
        assert key in res
    assert res["env_steps"] == 1024 and res["seeds"] == [0, 1] and res["eval_episodes"] == 2
    assert res["compile_seconds"] > 0 and np.isfinite(res["final_eval_return"])
    for name in ("checkpoint.msgpack", "metrics.csv", "metrics.json", "run.json"):
        assert (out / name).is_file(), name
    assert (out / "learning_curve.png").stat().st_size > 1000
    ev = _json(capsys, "evaluate", str(out), "--episodes", "2", "--json")
    assert ev["algo"] == "ppo" and ev["updates_done"] == 4 and len(ev["return_per_seed"]) == 2
    # The same policies, episodes and evaluation keys as at the end of training.
    assert ev["mean_return"] == pytest.approx(res["final_eval_return"])


def _interrupted_run(out):
    """What a `bellmax train ppo TINY` killed after its first chunk leaves behind (the
    driver's stop_after stops it there)."""
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import train

    algo = get_algorithm("ppo")
    cfg = algo.Config(total_timesteps=1024, num_epochs=2)
    train(algo, cfg, "CartPole-v1", out_dir=out, chunks=2, stop_after=2, eval_episodes=2)


def test_resuming_a_run_of_another_version_names_the_commands_options(tmp_path, capsys):
    """The driver's refusal reaches the command line in its options (`--overwrite`, `--out`),
    where a Python caller of `train` reads `overwrite=True` and `out_dir`."""
    out = tmp_path / "old"
    out.mkdir()
    (out / "run.json").write_text('{"format": "bellmax-run/1", "algo": "ppo"}')
    assert main(["train", "ppo", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "was written by another bellmax version (run format bellmax-run/1" in err
    assert err.rstrip().endswith("start it anew with --overwrite or choose another --out.")
    assert "out_dir" not in err and "=True" not in err


def test_resume_alone_continues_with_the_stored_settings(tmp_path, capsys):
    full = _json(capsys, "train", "ppo", *TINY, "--out", str(tmp_path / "a"), "--json")
    _interrupted_run(tmp_path / "b")
    # A differing option is named, not two 22-field dicts; nothing is written.
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    argv = ["train", "ppo", "--out", str(tmp_path / "b"), "--resume"]
    assert main([*argv, "--learning-rate", "0.003", "--num-epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: cannot resume") and err.count("\n") == 1
    assert "--learning-rate: 0.001 in the run, 0.003 given" in err
    assert "num_epochs" not in err and "--overwrite" in err
    assert main(["train", "dqn", "--out", str(tmp_path / "b"), "--resume"]) == 2
    assert 'algo: "ppo" in the run, "dqn" given; resume it as `bellmax train ppo' in (
        capsys.readouterr().err
    )
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    # `--resume` alone: total steps, epochs, chunks and evaluation come from run.json, and
    # the result is exactly the uninterrupted run's.
    resumed = _json(capsys, *argv, "--json")
    assert resumed["env_steps"] == 1024 and resumed["eval_episodes"] == 2
    # The seconds are this process's (512 of the steps); the whole run's are beside them, as
    # in run.json (the summary paired the run's steps with this process's seconds alone).
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert resumed["resumed_at_updates"] == 2 and full["resumed_at_updates"] == 0
    assert resumed["seconds_total"] == record["seconds_total"] > resumed["seconds"]
    assert full["seconds_total"] == full["seconds"]
    assert resumed["final_eval_return"] == full["final_eval_return"]
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a == b
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (
        tmp_path / "b" / "metrics.csv"
    ).read_bytes()
    # --resume once more: the run has ended, and the summary says so (it read "1024 steps x
    # 1 seeds in 0.0 s (+0.0 s compile)")
    assert main(argv) == 0
    out = capsys.readouterr().out
    ended = f"ppo on CartPole-v1: the run in {tmp_path / 'b'} had already ended (1024 steps x 1 "
    assert ended + "seed); nothing to train; final evaluation return" in out
    assert " s compile" not in out
    # A resumed run's line says which steps this process trained, and the run's seconds.
    _interrupted_run(tmp_path / "c")
    assert main(["train", "ppo", "--out", str(tmp_path / "c"), "--resume"]) == 0
    out = capsys.readouterr().out
    assert "1024 steps x 1 seed, resumed: 512 steps in " in out
    assert " s of training over the whole run; final evaluation return" in out


def test_evaluate_refuses_damaged_checkpoints_and_nonfinite_weights(tmp_path, capsys):
    import jax
    import jax.numpy as jnp

    from bellmax.envs.vector import make_vector_env
    from bellmax.train import driver
    from bellmax.train.checkpoint import save_checkpoint

    out = tmp_path / "run"
    _interrupted_run(out)
    ck = out / "checkpoint.msgpack"
    good = ck.read_bytes()
    # NaN weights (a checkpoint written by hand or by an older bellmax): refused, named.
    algo, config, meta = driver.load_run(out)
    venv = make_vector_env("CartPole-v1", num_envs=config.num_envs, seed=0)
    runner = driver._runner(algo, config, venv, 1)
    state, history, ck_meta = driver._load_chunk(ck, runner, [jax.random.key(0)], meta)
    nan = jax.tree.map(
        lambda x: jnp.full_like(x, jnp.nan) if jnp.issubdtype(x.dtype, jnp.floating) else x,
        state,
    )
    save_checkpoint(ck, {"state": nan, "metrics": history}, metadata=ck_meta)
    assert main(["evaluate", str(out)]) == 2
    err = capsys.readouterr().err
    assert "checkpoint.msgpack' holds non-finite policy weights (NaN or inf: seed 0:" in err
    assert err.count("\n") == 1
    # A truncated checkpoint: evaluate and --resume name the file and what is wrong.
    ck.write_bytes(good[:1000])
    for argv in (["evaluate", str(out)], ["train", "ppo", "--out", str(out), "--resume"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "checkpoint.msgpack' is damaged (1000 bytes: truncated" in err, err
        assert "Traceback" not in err and err.count("\n") == 1
    # No run, no directory, a run with no checkpoint yet.
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "holds no bellmax run (no checkpoint.msgpack)" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # The checkpoint gone but the policy file kept: evaluate reads the policies from it.
    ck.unlink()
    assert main(["evaluate", str(out), "--episodes", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
    assert main(["evaluate", str(out), "--episodes", "1"]) == 0
    assert "over 1 episode x 1 seed (policies from" in capsys.readouterr().out
    (out / "policy.msgpack").unlink()
    assert main(["evaluate", str(out)]) == 2
    assert "no checkpoint yet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ppq"], "ppq"),
        (["train", "ppo", "--env", "NoSuchEnv-v9", *TINY], "NoSuchEnv-v9"),
        (["train", "ppo", "--learning-rate", "-0.1", *TINY], "learning_rate"),
        (["train", "dqn", "--batch-size", "512", "--buffer-size", "100"], "buffer"),
        (["train", "dqn", "--env", "Pendulum-v1", "--total-steps", "1024"], "Discrete"),
        (["train", "dqn", "--total-steps", "768"], "learning_starts=1000 is at or beyond"),
        # a Config's error names the options that set the fields it names
        (
            ["train", "dqn", "--total-steps", "768"],
            "(on the command line: learning_starts is --learning-starts, total_timesteps is "
            "--total-steps).",
        ),
        (["train", "ppo", "--num-envs", "0"], "(on the command line: num_envs is --num-envs)."),
        (["train", "ppo", "--chunks", "0"], "--chunks must be >= 1"),
        (["train", "ppo", "--chunks", "-3"], "--chunks must be >= 1"),
        (["train", "ppo", "--seeds", "0"], "--seeds must be >= 1"),
        (["train", "ppo", "--seed", "-1"], "--seed must be an int >= 0 and <= 4294967295"),
        # 32-bit seeds: 2**32 ran seed 0's run again under another name
        (["train", "ppo", "--seed", "4294967296"], "--seed must be an int >= 0 and <= 4294967295"),
        (
            ["train", "ppo", "--seed", "4294967295", "--seeds", "2"],
            "runs seeds up to 4294967296, above 4294967295: seeds are 32-bit",
        ),
        (["train", "ppo", "--eval-episodes", "-1"], "--eval-episodes must be >= 0"),
        (["train", "ppo", "--total-steps", "0"], "--total-steps must be >= 1"),
        (["train", "ppo", "--total-steps", "100"], "total_timesteps=100 is less than one"),
        (["train", "ppo", "--out", "/proc/run"], "is under /proc, a system folder"),
        (["train", "ppo", "--out", ""], "--out is empty"),
        (["train", "ppo", "--out", "/sys/x", "--resume"], "is under /sys, a system folder"),
        (["evaluate", "/nonexistent/run"], "does not exist"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    if argv[1] != "ppq":  # tyro's own usage error is a box; ours are one line
        assert err.startswith("bellmax: error: ") and err.count("\n") == 1


def test_bad_out_dirs_are_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    cases = [
        (["--out", str(tmp_path / "f")], "is a file, not a directory"),
        (["--out", str(tmp_path / "f" / "run")], "is a file, not a directory"),
        (["--out", str(tmp_path / "r"), "--resume", "--overwrite"], "exclude each other"),
    ]
    for extra, message in cases:
        assert main(["train", "ppo", *TINY, *extra]) == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_run_directory_is_refused_before_any_note(tmp_path, capsys):
    # 1000 steps would be rounded down (a note), but the refusal comes first and alone
    (tmp_path / "run.json").write_text("{}")
    assert main(["train", "ppo", "--total-steps", "1000", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: ")
    assert "holds an earlier `bellmax train` run (run.json)" in err and "--resume to" in err
    assert "rounded down" not in err and err.count("\n") == 1


def test_resume_names_the_options_that_differ_not_the_config_fields(tmp_path, capsys):
    # `--resume --total-steps 4096` was refused naming `total_timesteps: 2048 in the run`, a
    # Config field, where the user typed --total-steps; nothing is trained before the refusal
    from bellmax.train.driver import RUN_FORMAT

    run = {"format": RUN_FORMAT, "algo": "ppo", "env": "CartPole-v1", "seeds": [0],
           "config": {"total_timesteps": 2048, "learning_rate": 1e-3}, "chunks": 20,
           "eval_episodes": 10, "stop_return": None, "run_id": "0123456789abcdef"}  # fmt: skip
    (tmp_path / "run.json").write_text(json.dumps(run))
    argv = ["train", "ppo", "--out", str(tmp_path), "--resume", "--total-steps", "4096"]
    assert main([*argv, "--learning-rate", "3e-3"]) == 2
    err = capsys.readouterr().err
    assert "settings: --total-steps: 2048 in the run, 4096 given; --learning-rate: " in err
    assert "total_timesteps" not in err and "learning_rate" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_config_reruns_a_run_json_with_the_same_result(tmp_path, capsys):
    # 1000 is not a whole number of rollouts (8 envs x 32 steps): one line says so.
    argv = ["train", "ppo", "--total-steps", "1000", "--num-epochs", "2", "--chunks", "2"]
    argv += ["--eval-episodes", "2", "--seeds", "2"]
    code = main([*argv, "--out", str(tmp_path / "a"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    first = json.loads(captured.out)
    note = (
        "bellmax: --total-steps 1000 rounded down to 768 env steps per seed: whole rollouts "
        "of num_envs 8 x num_steps 32 = 256 steps (3 updates).\n"
    )
    assert captured.err == note and first["env_steps"] == 768
    # resumed (here: a run that had ended), the run does not start: no note
    assert main(["train", "ppo", "--out", str(tmp_path / "a"), "--resume", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["env_steps"] == 768
    run_json = tmp_path / "a" / "run.json"
    code = main(["train", "ppo", "--config", str(run_json), "--out", str(tmp_path / "b"), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    again = json.loads(captured.out)
    assert "total_timesteps 1000 rounded down to 768" in captured.err
    assert "except as given" not in captured.err  # nothing overridden
    assert again["final_eval_return"] == first["final_eval_return"]
    assert again["seeds"] == [0, 1] and again["eval_episodes"] == 2
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (
        tmp_path / "b" / "metrics.csv"
    ).read_bytes()
    a, b = (json.loads((tmp_path / d / "run.json").read_text()) for d in "ab")
    for key in ("algo", "env", "seeds", "config", "chunks", "eval_episodes", "stop_return"):
        assert a[key] == b[key], key
    # The run directory works too; options given override the file's values, named.
    rerun = ["train", "ppo", "--config", str(tmp_path / "a"), "--out", str(tmp_path / "c")]
    code = main([*rerun, "--seeds", "1", "--seed", "1", "--eval-episodes", "3", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (
        "bellmax: run.json settings, except as given: seeds [1] (run.json: [0, 1]); "
        "eval_episodes 3 (run.json: 2).\n"
    ) in captured.err
    third = json.loads(captured.out)
    assert third["seeds"] == [1] and third["eval_episodes"] == 3
    # Another algorithm than the file's: an error naming both; nothing is written.
    assert main(["train", "dqn", "--config", str(run_json), "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: --config ") and err.count("\n") == 1
    assert "records a ppo run, not dqn" in err and "bellmax train ppo --config" in err
    assert not (tmp_path / "d").exists()
    # The file saved again by a Windows editor (a byte-order mark first): the same record
    # (it was "not JSON (Unexpected UTF-8 BOM ...)").
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + run_json.read_bytes())
    assert main(["train", "dqn", "--config", str(bom), "--out", str(tmp_path / "e")]) == 2
    assert "records a ppo run, not dqn" in capsys.readouterr().err
    # A file naming an env id that imports a module is refused (importing runs its code),
    # unless the user gives the id: nothing is imported or written.
    named = tmp_path / "named.json"
    named.write_text(json.dumps({**json.loads(run_json.read_text()), "env": "payloadmod:Env-v0"}))
    assert main(["train", "ppo", "--config", str(named), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "imports the module 'payloadmod'" in err and "--env payloadmod:Env-v0" in err
    assert not (tmp_path / "f").exists() and "payloadmod" not in sys.modules


def test_config_overrides_are_the_options_given(tmp_path):
    from bellmax.cli.main import _parse
    from bellmax.cli.train import _config_settings, _given_options

    (tmp_path / "run.json").write_text(
        json.dumps(
            {
                "format": "bellmax-run/2",
                "algo": "ppo",
                "env": "CartPole-v1",
                "seeds": [4, 5],
                "config": {**_ppo_config_dict(), "learning_rate": 0.003, "anneal_lr": False},
                "chunks": 5,
                "eval_episodes": 7,
                "stop_return": None,
                "provenance": {"command": ["bellmax", "train", "ppo"]},
            }
        )
    )

    def settings(*options):
        argv = ["train", "ppo", "--config", str(tmp_path), *options]
        a = _parse(argv).algo
        return _config_settings(a, "ppo", _given_options(a, argv), str(tmp_path))[:2]

    s, notes = settings()
    assert notes == [] and s["seeds"] == [4, 5] and s["chunks"] == 5
    assert s["config"]["learning_rate"] == 0.003 and s["config"]["anneal_lr"] is False
    # An option given at its default value still overrides the file's value.
    s, notes = settings("--learning-rate", "0.001", "--anneal-lr", "--seed", "0")
    assert s["config"]["learning_rate"] == 0.001 and s["config"]["anneal_lr"] is True
    assert s["seeds"] == [0, 1]
    assert notes == [
        "seeds [0, 1] (run.json: [4, 5])",
        "learning_rate 0.001 (run.json: 0.003)",
        "anneal_lr true (run.json: false)",
    ]
    s, notes = settings("--no-anneal-lr", "--total-steps", "2048")
    assert s["config"]["anneal_lr"] is False and s["config"]["total_timesteps"] == 2048


def _ppo_config_dict() -> dict:
    import dataclasses

    from bellmax.deep import get_algorithm

    cfg = get_algorithm("ppo").Config()
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist; give the run.json a `bellmax train` run wrote"),
        ("{", "is not a bellmax run.json: not JSON (Expecting property name"),
        ("[1, 2]", "is not a bellmax run.json: it holds a JSON list, not an object"),
        ('{"algo": "ppo"}', 'is not a bellmax run.json: it has no "format": "bellmax-run/2"'),
        ('{"format": "bellmax-run/1"}', "was written by another bellmax version (run format"),
        ('{"format": "bellmax-run/2", "algo": "ppo"}', "it lacks env, seeds, config, chunks"),
        (
            '{"format": "bellmax-run/2", "algo": "ppo", "env": "CartPole-v1", "seeds": [], '
            '"config": {}, "chunks": 2, "eval_episodes": "x", "stop_return": null}',
            "is damaged: seeds is [], not a list of distinct integers; eval_episodes is",
        ),
        (
            '{"format": "bellmax-run/2", "algo": "ppo", "env": "CartPole-v1", "seeds": [0], '
            '"config": {"learning_rate": 0.1}, "chunks": 2, "eval_episodes": 2, '
            '"stop_return": null}',
            "does not fit this bellmax's",
        ),
        pytest.param(
            "[" * 100_000 + "]" * 100_000,  # (a RecursionError's traceback)
            "is not a bellmax run.json: nested too deeply",
            id="nested-100000-deep",
        ),
    ],
)
def test_config_that_is_no_run_json_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "cfg.json"
    if content is not None:
        path.write_text(content)
    assert main(["train", "ppo", "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: ") and err.count("\n") == 1
    assert "cfg.json" in err and message in err, err
    assert not (tmp_path / "o").exists()


def test_a_several_value_option_shows_an_example(capsys):
    assert main(["train", "ppo", "--help"]) == 0
    assert (
        "(e.g. --hidden-sizes 64 64; --hidden-sizes alone: no hidden layer, a linear network)"
        in " ".join(capsys.readouterr().out.split())
    )


@pytest.mark.parametrize("algo", ["dqn", "reinforce", "a2c", "ppo"])
def test_every_bool_option_has_both_forms(algo):
    import dataclasses
    import typing

    from bellmax.cli.main import _parse
    from bellmax.deep import get_algorithm

    config_cls = get_algorithm(algo).Config
    hints = typing.get_type_hints(config_cls)
    bools = [f for f in dataclasses.fields(config_cls) if hints[f.name] is bool]
    assert bools
    for f in bools:
        flag = "--" + f.name.replace("_", "-")
        no_flag = "--no-" + f.name.replace("_", "-")
        assert getattr(_parse(["train", algo, flag]).algo, f.name) is True
        assert getattr(_parse(["train", algo, no_flag]).algo, f.name) is False
        assert getattr(_parse(["train", algo]).algo, f.name) is f.default
    for name in ("resume", "overwrite", "json"):
        assert getattr(_parse(["train", algo, f"--{name}"]).algo, name) is True
        assert getattr(_parse(["train", algo, f"--no-{name}"]).algo, name) is False


def test_anneal_lr_both_forms_reach_the_config(monkeypatch):
    from bellmax.cli import train as train_cli
    from bellmax.cli.main import _parse

    seen = []

    def fake_train(name, config, env, **kwargs):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr("bellmax.train.driver.train", fake_train)
    for flag, expected in (("--anneal-lr", True), ("--no-anneal-lr", False)):
        argv = ["train", "ppo", flag, "--out", "/tmp/unused-bellmax-run"]
        with pytest.raises(SystemExit):
            train_cli.run_train(_parse(argv), argv=argv)
        assert seen[-1].anneal_lr is expected


def test_progress_says_compiling_before_the_first_chunk():
    from bellmax.cli.train import _status
    from bellmax.train.driver import ChunkInfo

    assert _status(None) == "compiling"
    assert _status(ChunkInfo(2, 4, 512, 10.0, 0.1)) == "2/4 updates"


def test_both_forms_of_a_bool_option_are_refused(capsys):
    for argv in (["--anneal-lr", "--no-anneal-lr"], ["--no-json", "--json"]):
        assert main(["train", "ppo", *argv]) == 2
        err = capsys.readouterr().err
        assert err == f"bellmax: error: {argv[0]} and {argv[1]} are both given; give one of them.\n"


def test_continuous_only_algorithms_default_to_pendulum():
    """`bellmax train sac|td3` without --env trains on Pendulum-v1 (their actions are
    continuous; CartPole-v1, the others' default, would only give the continuous-only error)."""
    from bellmax.cli.main import _parse

    for algo, env in [("sac", "Pendulum-v1"), ("td3", "Pendulum-v1"), ("ppo", "CartPole-v1")]:
        assert _parse(["train", algo]).algo.env == env
    assert _parse(["train", "sac", "--env", "gymnasium:Pendulum-v1"]).algo.env == (
        "gymnasium:Pendulum-v1"
    )


def test_train_sac_takes_discrete_envs_and_td3_refuses_them(capsys):
    """`bellmax train sac --env CartPole-v1` is discrete SAC (Christodoulou 2019; trained and
    its policy file loaded in tests/deep/test_sac_discrete.py); `--actions continuous` refuses
    CartPole, naming the option; TD3 stays continuous-only. Both fail before compiling."""
    from bellmax.cli.main import _parse

    args = _parse(["train", "sac", "--env", "CartPole-v1", "--actions", "discrete"]).algo
    assert args.actions == "discrete" and args.target_entropy_scale == 0.5
    tiny = ["--total-steps", "160", "--learning-starts", "64", "--batch-size", "32"]
    assert main(["train", "sac", "--env", "CartPole-v1", "--actions", "continuous", *tiny]) != 0
    assert "actions='continuous'; set actions='auto'" in capsys.readouterr().err
    assert main(["train", "td3", "--env", "CartPole-v1", *tiny]) != 0
    assert "'TD3' supports continuous Box action spaces" in capsys.readouterr().err


def test_binned_returns_pools_episodes_by_the_steps_they_ended_in():
    """The tour's SAC-vs-PPO curve: training episode returns averaged per 1,000 env steps,
    pooled over seeds; bins in which no episode ended are left out."""
    from types import SimpleNamespace

    from bellmax.cli.train import _binned_returns

    metrics = {
        "env_steps": np.array([[500, 1000, 1500, 2000, 2500, 3000, 3200]] * 2),
        "episode_return_sum": np.array(
            [[-10.0, -20.0, 0.0, 0.0, -4.0, 0.0, -1.0], [-30.0, 0.0, 0.0, 0.0, -2.0, 0.0, -3.0]]
        ),
        "episode_count": np.array([[1, 1, 0, 0, 2, 0, 1], [1, 0, 0, 0, 1, 0, 1]]),
    }
    x, y = _binned_returns(SimpleNamespace(metrics=metrics), 1000)
    # (0, 1000]: -60 over 3 episodes; (1000, 2000]: none; (2000, 3000]: -6 over 3; the last
    # bin ends at the run's 3,200 steps: -4 over 2.
    np.testing.assert_array_equal(x, [1000, 3000, 3200])
    np.testing.assert_allclose(y, [-20.0, -2.0, -2.0])
