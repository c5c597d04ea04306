"""`bellmax bandit`: JSON output, plots of several agents, clean errors, the tour section.

Small sizes throughout (RUNS x STEPS), the same as the tour's quick mode, so the command
and the tour section share compiled programs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bellmax.bandits.agents import UCB, EpsilonGreedy
from bellmax.cli.bandit import BanditArgs, resolve_agents, tour_section
from bellmax.cli.main import main

RUNS, STEPS = "200", "300"
SMALL = ["--runs", RUNS, "--steps", STEPS]


def _run_json(capsys, *argv: str) -> dict:
    assert main(["bandit", *argv, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # exactly one JSON object on one line
    return json.loads(out)


def test_one_agent_json(capsys):
    out = _run_json(capsys, "--agent", "eps-greedy", "--epsilon", "0.1", *SMALL, "--seed", "3")
    assert out["runs"] == 200 and out["steps"] == 300 and out["last"] == 100
    assert out["late_steps"] == [201, 300]
    assert out["config"] == {
        "type": "EpsilonGreedy",
        "epsilon": 0.1,
        "alpha": None,
        "initial_value": 0.0,
    }
    reward, optimal = np.array(out["mean_reward"]), np.array(out["optimal_action_rate"])
    assert reward.shape == optimal.shape == (300,)
    assert out["late_mean_reward"] == pytest.approx(reward[-100:].mean(), abs=1e-5)
    assert out["late_optimal_action_rate"] == pytest.approx(optimal[-100:].mean(), abs=1e-5)
    assert 1.0 < out["late_mean_reward"] < 1.55 and 0.55 < out["late_optimal_action_rate"] < 0.9
    assert out["seconds"] > 0 and out["compile_seconds"] >= 0
    assert out["agent"] == "ε-greedy ε=0.1" and out["name"] == "eps-greedy"
    # the same seed gives the same curves
    again = _run_json(capsys, "--agent", "eps-greedy:epsilon=0.1", *SMALL, "--seed", "3")
    assert again["mean_reward"] == out["mean_reward"]


def test_one_run_has_no_standard_error(capsys, monkeypatch):
    # One run: no spread to estimate. --json failed after the run (NaN is not strict JSON);
    # now null, and n/a in the table, whose title counts "1 run".
    out = _run_json(capsys, "--agent", "greedy", "--runs", "1", "--steps", "20")
    assert out["late_mean_reward_stderr"] is None
    assert out["late_optimal_action_rate_stderr"] is None
    assert isinstance(out["late_mean_reward"], float)
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["bandit", "--agent", "greedy", "--runs", "1", "--steps", "20"]) == 0
    text = capsys.readouterr().out
    assert "1 run x 20 steps" in text and "± n/a" in text and "nan" not in text


def test_several_agents_plot_and_table(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # a wide table: pytest's captured output is no terminal
    plot = tmp_path / "figs" / "fig2_2.png"
    argv = ["--agent", "greedy", "eps-greedy:epsilon=0.01", "eps-greedy", *SMALL]
    out = _run_json(capsys, *argv, "--plot", str(plot))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["plot"] == str(plot)
    labels = [a["agent"] for a in out["agents"]]
    assert labels == ["greedy", "ε-greedy ε=0.01", "ε-greedy ε=0.1"]
    late = [a["late_optimal_action_rate"] for a in out["agents"]]
    assert late[0] < late[2]  # Figure 2.2: greedy finds the best arm less often
    assert all(len(a["mean_reward"]) == 300 for a in out["agents"])
    assert out["seconds"] == pytest.approx(sum(a["seconds"] for a in out["agents"]))
    # without --json: a table, and the plot is replaced atomically
    assert main(["bandit", *argv, "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    assert "ε-greedy ε=0.01" in text and "late reward" in text and str(plot) in text
    assert [p.name for p in plot.parent.iterdir()] == ["fig2_2.png"]


def test_options_apply_to_the_agents_that_have_them():
    args = BanditArgs(agent=("greedy", "eps-greedy", "optimistic:alpha=0.2"), alpha=0.1)
    agents = resolve_agents(args)
    assert [c for _, _, c in agents] == [
        EpsilonGreedy(epsilon=0.0, alpha=0.1),
        EpsilonGreedy(epsilon=0.1, alpha=0.1),
        EpsilonGreedy(epsilon=0.0, alpha=0.2, initial_value=5.0),  # the spec wins
    ]
    args = BanditArgs(agent=("ucb", "eps-greedy"), c=1.0, epsilon=0.05)
    assert [c for _, _, c in resolve_agents(args)] == [UCB(c=1.0), EpsilonGreedy(epsilon=0.05)]
    # identical agents get distinct legend labels
    labels = [lab for _, lab, _ in resolve_agents(BanditArgs(agent=("ucb", "ucb:c=2")))]
    assert labels == ["UCB c=2 #1", "UCB c=2 #2"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--agent", "eps-gredy"], "Did you mean: 'eps-greedy'"),
        (["--agent", "eps-greedy", "--epsilon", "1.5"], "epsilon must be >= 0 and <= 1, got 1.5"),
        (["--runs", "0"], "runs must be >= 1, got 0"),
        # the command's options are named, with a value that works
        (["--runs", "0"], "--runs must be >= 1, got 0; pass e.g. --runs 2000."),
        (["--steps", "50", "--last", "80"], "--last 80 is longer than the run (--steps 50); pass "),
        (["--steps", "50", "--last", "80"], "pass --last 50 or less"),
        (["--agent", "eps-greedy", "--c", "2"], "--c does not apply to eps-greedy"),
        (["--agent", "greedy", "--epsilon", "0.1"], "--epsilon does not apply to greedy"),
        (["--agent", "ucb:c"], "not KEY=VALUE"),
        (["--agent", "ucb:bogus=1"], "Options of 'ucb': c, alpha"),
        (["--agent"], "at least one agent"),
        (["--k", "0"], "GaussianBandit"),
        (["--reward-std", "-1"], "reward_std"),
        (["--plot", "curves.txt"], "cannot tell the image format"),
        (["--runs", "many"], "--runs"),
    ],
)
def test_bad_input_is_one_clean_error_line(capsys, argv, needle):
    assert main(["bandit", *argv]) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert needle in text, text
    assert "Traceback" not in text
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bellmax: error: ")


def test_a_run_shorter_than_the_late_window_averages_over_all_of_it(capsys):
    # --last left out is 100, or --steps when fewer (it was refused: "last=100 is longer")
    out = _run_json(capsys, "--runs", "2", "--steps", "50")
    assert out["last"] == 50 and out["late_steps"] == [1, 50]


def test_plot_path_that_is_a_folder_is_refused(capsys, tmp_path):
    folder = tmp_path / "x.png"
    folder.mkdir()
    assert main(["bandit", "--plot", str(folder)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_help_documents_several_agents(capsys):
    assert main(["bandit", "--help"]) == 0
    out = capsys.readouterr().out
    for needle in ("--agent", "NAME:KEY=VALUE", "thompson", "--plot", "--json", "--last"):
        assert needle in out
    # options left unset say what they default to, not "None"
    assert "None" not in out and "(default: each agent's own)" in out
    assert "(default: 100, or --steps if fewer)" in out


def test_tour_section_quick():
    from bellmax.cli.tour import TourContext
    from bellmax.train.report import Report

    ctx = TourContext(report=Report("test"), quick=True, seed=0)
    tour_section(ctx)
    s = ctx.report.summary
    assert s["bandit_runs"] == int(RUNS) and s["bandit_steps"] == int(STEPS)
    assert s["bandit_greedy_optimal_fraction"] < s["bandit_eps0.1_optimal_fraction"]
    assert s["bandit_greedy_late_reward"] < s["bandit_ucb2_late_reward"]
    for key in ("greedy", "eps0.01", "eps0.1", "ucb2"):
        assert 0.0 <= s[f"bandit_{key}_optimal_fraction"] <= 1.0
    html = ctx.report.to_html()
    assert ">Bandits</h2>" in html and "<img" in html
