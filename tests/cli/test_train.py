"""`bellmax train` / `bellmax evaluate`: outputs, JSON, resume through the CLI, clear errors.

A tiny PPO budget (4 updates of 8 x 32 steps) keeps this about plumbing, not learning: the
learning thresholds are in tests/deep/. Every run uses the same config so the driver's cached
compiled program is shared across tests.
"""

from __future__ import annotations

import json

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


def test_resume_alone_continues_with_the_stored_settings(tmp_path, capsys):
    full = _json(capsys, "train", "ppo", *TINY, "--out", str(tmp_path / "a"), "--json")
    _interrupted_run(tmp_path / "b")
    # A differing option is named, not two 22-field dicts; nothing is written.
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    argv = ["train", "ppo", "--out", str(tmp_path / "b"), "--resume"]
    assert main([*argv, "--learning-rate", "0.003", "--num-epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: cannot resume") and err.count("\n") == 1
    assert "learning_rate: 0.001 in the run, 0.003 given" in err
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
    assert resumed["final_eval_return"] == full["final_eval_return"]
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a == b
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (
        tmp_path / "b" / "metrics.csv"
    ).read_bytes()


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
    ck.unlink()
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
        (["train", "ppo", "--chunks", "0"], "--chunks must be >= 1"),
        (["train", "ppo", "--chunks", "-3"], "--chunks must be >= 1"),
        (["train", "ppo", "--seeds", "0"], "--seeds must be >= 1"),
        (["train", "ppo", "--eval-episodes", "-1"], "--eval-episodes must be >= 0"),
        (["train", "ppo", "--total-steps", "0"], "--total-steps must be >= 1"),
        (["train", "ppo", "--out", "/proc/run"], "is under /proc, a system folder"),
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
