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


def test_resume_through_the_cli_matches_an_uninterrupted_run(tmp_path, capsys):
    full = _json(capsys, "train", "ppo", *TINY, "--out", str(tmp_path / "a"), "--json")
    # What an interrupted `bellmax train` leaves behind: the checkpoint after the first chunk
    # (the driver's stop_after); `--resume` must finish it exactly as the uninterrupted run.
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import train

    algo = get_algorithm("ppo")
    cfg = algo.Config(total_timesteps=1024, num_epochs=2)
    train(
        algo,
        cfg,
        "CartPole-v1",
        out_dir=tmp_path / "b",
        chunks=2,
        stop_after=2,
        eval_episodes=2,
        algo_name="ppo",
    )
    resumed = _json(
        capsys, "train", "ppo", *TINY, "--out", str(tmp_path / "b"), "--resume", "--json"
    )
    assert resumed["final_eval_return"] == full["final_eval_return"]
    a = json.loads((tmp_path / "a" / "metrics.json").read_text())
    b = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert a == b


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ppq"], "ppq"),
        (["train", "ppo", "--env", "NoSuchEnv-v9", *TINY], "NoSuchEnv-v9"),
        (["train", "ppo", "--learning-rate", "-0.1", *TINY], "learning_rate"),
        (["train", "dqn", "--batch-size", "512", "--buffer-size", "100"], "buffer"),
        (["train", "dqn", "--env", "Pendulum-v1", "--total-steps", "1024"], "Discrete"),
        (["evaluate", "/nonexistent/run"], "checkpoint"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
