"""`bellmax sysid` / `bellmax control`: JSON output, identified control, clear errors.

The heavy claims (1% identification from 500 transitions, MPC on 20 Gymnasium episodes) are
in tests/models and tests/control; these check the commands' plumbing on small runs.
"""

from __future__ import annotations

import json

import pytest

from bellmax.cli.main import main


def _json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_sysid_json_reports_parameters_and_identifiability(capsys):
    out = _json(capsys, "sysid", "--env", "gymnasium:CartPole-v1", "--steps", "200", "--json")
    assert out["model"] == "cartpole" and out["transitions"] == 200
    # Without a gauge the masses' overall scale is not determined: rank 5 of 6 and the
    # report names the combinations the data do determine.
    assert out["rank"] == 5 and out["suggested_gauge"]
    assert "force_mag/total_mass" in out["identifiable"]
    assert out["combinations"]["force_mag/total_mass"] == pytest.approx(10 / 1.1, rel=1e-3)
    assert out["params"]["tau"] == pytest.approx(0.02, rel=1e-3)
    assert max(out["heldout_rmse"].values()) < 1e-4


def test_sysid_text_with_a_gauge(capsys):
    code = main(["sysid", "--env", "CartPole-v1", "--steps", "200", "--fix", "masscart=1.0"])
    out = capsys.readouterr().out
    assert code == 0
    assert "(fixed)" in out and "held-out one-step RMSE" in out


def test_control_identifies_then_balances_gymnasium_cartpole(capsys):
    out = _json(
        capsys,
        "control",
        "--env",
        "gymnasium:CartPole-v1",
        "--controller",
        "lqr",
        "--sysid-steps",
        "200",
        "--episodes",
        "2",
        "--json",
    )
    assert out["parameters_from"].startswith("identified")
    assert out["episode_lengths"] == [500, 500] and out["ms_per_step"] > 0
    assert out["params"]["length"] == pytest.approx(0.5, rel=1e-2)


def test_control_mpc_on_a_bellmax_env(capsys):
    out = _json(
        capsys,
        "control",
        "--env",
        "CartPole-v1",
        "--controller",
        "ilqr-mpc",
        "--episodes",
        "1",
        "--max-steps",
        "200",
        "--json",
    )
    assert out["episode_returns"] == [200.0] and out["compile_seconds"] > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sysid", "--model", "cartpol"], "cartpol"),
        (["sysid", "--env", "CartPole-v1", "--steps", "5"], "--steps"),
        (["sysid", "--env", "CartPole-v1", "--fix", "mass=1"], "unknown parameter"),
        (["sysid", "--env", "CartPole-v1", "--fix", "masscart"], "NAME=VALUE"),
        (["control", "--env", "CartPole-v1", "--episodes", "0"], "--episodes"),
        (["control", "--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
