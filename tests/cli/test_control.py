"""`bellmax sysid` / `bellmax control`: JSON output, identified control, clear errors.

The heavy claims (1% identification from 500 transitions, MPC on 20 Gymnasium episodes) are
in tests/models and tests/control; these check the commands' plumbing on small runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bellmax.cli.main import main

BELLMAX = Path(sys.executable).parent / "bellmax"


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
    # the text report's first line is a sentence (it read "model cartpole with identified
    # from ..."); the programs above are reused, so this costs a few 0.1 s
    argv = ["control", "--controller", "lqr", "--sysid-steps", "200", "--max-steps", "10"]
    assert main([*argv, "--episodes", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "lqr on gymnasium:CartPole-v1 (balance), model cartpole with parameters identified "
        "from 200 random transitions:"
    )


def test_help_shows_what_unset_options_default_to(capsys):
    assert main(["control", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: )" not in out and "(default: None)" not in out and "{None}" not in out
    assert "--fix NAME=VALUE [NAME=VALUE ...]" in out and "g=10 max_torque=2" in out
    assert main(["sysid", "--help"]) == 0
    out = capsys.readouterr().out
    assert "(default: )" not in out and "(default: none)" in out


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
        (["control", "--horizon", "0"], "--horizon"),
        (["control", "--max-steps", "0"], "--max-steps"),
        (["control", "--fix", "masscart=1", "--sysid-steps", "20", "--fix", "masscart=2"], "twice"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


# ---------------------------------------------------------------------- --max-steps
def _real_control_json(*argv: str) -> dict:
    """`bellmax control ... --json` through the installed command, in a subprocess."""
    if not BELLMAX.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(BELLMAX), "control", *argv, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_max_steps_caps_every_gymnasium_episode_and_each_is_reported():
    """Issue 11: through the Gymnasium bridge --max-steps was a total budget (3 episodes of
    300 steps reported one 500-step episode; 50 steps reported none)."""
    out = _real_control_json(
        "--env", "gymnasium:CartPole-v1", "--episodes", "3", "--max-steps", "300"
    )
    assert len(out["episode_returns"]) == 3 and len(out["episode_lengths"]) == 3
    assert all(n <= 300 for n in out["episode_lengths"])
    assert out["episode_lengths"] == [300, 300, 300]  # MPC balances; each is truncated
    out = _real_control_json(
        "--env", "gymnasium:CartPole-v1", "--controller", "lqr", "--episodes", "2",
        "--max-steps", "50",
    )  # fmt: skip
    assert out["episode_lengths"] == [50, 50] and out["episode_returns"] == [50.0, 50.0]


@pytest.mark.parametrize("env_id", ["gymnasium:Pendulum-v1", "Pendulum-v1"])
def test_max_steps_means_steps_per_episode_for_every_kind_of_env(capsys, env_id):
    """The pendulum never terminates: every episode ends at --max-steps exactly, whether it
    runs through the Gymnasium bridge or as a bellmax env."""
    code = main(["control", "--env", env_id, "--controller", "lqr", "--episodes", "3",
                 "--max-steps", "7", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    out = json.loads(captured.out)
    assert out["episode_lengths"] == [7, 7, 7] and len(out["episode_returns"]) == 3
    # LQR on a swing-up task: a note says where it holds (it ran silently)
    assert "--controller lqr holds the upright with one feedback gain" in captured.err


# ---------------------------------------------------------------------- strict JSON
def test_json_refuses_a_nan_instead_of_printing_invalid_json(monkeypatch, capsys):
    # No training: the controller and the episodes are stand-ins whose return is NaN.
    from types import SimpleNamespace

    import bellmax.control.mpc as mpc

    episodes = SimpleNamespace(
        episode_returns=[float("nan")], episode_lengths=[3], ms_per_step=1.0, diverged_steps=0
    )
    monkeypatch.setattr(mpc, "make_mpc", lambda *a, **k: None)
    monkeypatch.setattr(mpc, "closed_loop_host", lambda *a, **k: episodes)
    assert main(["control", "--episodes", "1", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "value['episode_returns'][0] = nan is not a finite number" in captured.err
    assert "strict JSON has no NaN" in captured.err
    # sysid's --json likewise (a fit stand-in with a NaN parameter).
    import bellmax.cli.control as control

    fit = SimpleNamespace(
        status_name="converged", params={"g": float("nan")}, stderr={}, fixed=(), rank=1,
        free=("g",), identifiable=("g",), unidentifiable=(), null_directions=(),
        suggested_gauge=(), combinations={}, combination_stderr={},
    )  # fmt: skip
    model = SimpleNamespace(name="pendulum", state_names=("theta",))
    monkeypatch.setattr(control, "_identify", lambda *a: (model, fit, [0.1], 20, 0.0))
    assert main(["sysid", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "value['params']['g'] = nan is not a finite" in captured.err


def test_steps_whose_plan_diverged_are_reported(monkeypatch, capsys):
    # No training: stand-ins for the controller and the episodes, 3 steps of which diverged
    # (MPC fell back to its previous plan there; the command said nothing of it).
    from types import SimpleNamespace

    import bellmax.control.mpc as mpc

    episodes = SimpleNamespace(
        episode_returns=[1.0], episode_lengths=[3], ms_per_step=1.0, diverged_steps=3
    )
    monkeypatch.setattr(mpc, "make_mpc", lambda *a, **k: None)
    monkeypatch.setattr(mpc, "closed_loop_host", lambda *a, **k: episodes)
    assert main(["control", "--episodes", "1", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["diverged_steps"] == 3
    assert "3 of the control steps planned a non-finite trajectory" in captured.err
