"""The book's experiments that run in seconds, checked against the book's numbers.

The learning experiments (bandits, Monte Carlo, TD) reuse functions whose own tests check the
book's figures (tests/bandits, tests/tabular); here we check the exact DP reproductions end to
end and that every experiment is registered with a source and a description.
"""

import numpy as np
import pytest

from bellmax.experiments import run_experiment
from bellmax.experiments.sutton_barto import EXPERIMENTS


def test_the_issue_list_is_registered():
    assert set(EXPERIMENTS) >= {
        "ten-armed-testbed",
        "optimistic-initial-values",
        "ucb",
        "gradient-bandit",
        "gridworld-5x5",
        "gridworld-4x4",
        "jacks-car-rental",
        "gamblers-problem",
        "blackjack-mc",
        "blackjack-optimal",
        "blackjack-importance-sampling",
        "random-walk",
        "windy-gridworld",
        "cliff-walking",
        "maximization-bias",
    }
    for e in EXPERIMENTS.values():
        assert e.source and e.description


def test_gridworld_5x5_matches_figures_3_2_and_3_5(tmp_path):
    d = run_experiment(EXPERIMENTS, "gridworld-5x5", tmp_path)["data"]
    assert d["v_star_A"] == pytest.approx(24.4194, abs=1e-4)
    assert d["random_policy_values"][0] == pytest.approx(
        [3.3090, 8.7893, 4.4276, 5.3224, 1.4922], abs=1e-4
    )
    assert (tmp_path / "figure-3-2-3-5.png").exists()


def test_gridworld_4x4_iterates_match_figure_4_1(tmp_path):
    d = run_experiment(EXPERIMENTS, "gridworld-4x4", tmp_path)["data"]
    assert d["k = 2"][0][1] == pytest.approx(-1.75) and d["k = 2"][0][2] == pytest.approx(-2.0)
    assert d["k = 3"][0][1:] == pytest.approx([-2.4375, -2.9375, -3.0])
    assert d["k = inf"][0] == pytest.approx([0, -14, -20, -22], abs=0.01)
    assert d["sweeps_to_delta_1e-4"] == pytest.approx(173, abs=1)


def test_gamblers_problem_matches_figure_4_3(tmp_path):
    d = run_experiment(EXPERIMENTS, "gamblers-problem", tmp_path)["data"]
    assert d["v_star_50"] == pytest.approx(0.4, abs=1e-6)
    assert d["v_star_25"] == pytest.approx(0.16, abs=1e-6)
    assert d["v_star_99"] == pytest.approx(0.964333, abs=1e-6)
    assert d["policy_smallest_optimal_stake"][49] == 50  # all in at 50
    # The book's sweeps are in place: the first already rises above 50 (at 99: 0.953; the
    # two-array sweep it drew before gave a flat 0.4 there).
    sweeps = d["sweeps_at_25_50_75_99"]
    assert sweeps["1"] == pytest.approx([0.0, 0.4, 0.64, 0.953], abs=1e-3)
    assert sweeps["2"][0] == pytest.approx(0.16, abs=1e-6)


def test_jacks_car_rental_matches_figure_4_2(tmp_path):
    d = run_experiment(EXPERIMENTS, "jacks-car-rental", tmp_path)["data"]
    assert d["improvements"] == 4
    assert d["value_at_0_0"] == pytest.approx(421.41, abs=0.01)
    assert d["value_at_20_20"] == pytest.approx(636.99, abs=0.01)
    moves = np.asarray(d["final_policy_moves"])
    # only feasible moves (it showed "move 5 cars" from an empty first lot, at (4, 0))
    cars = np.arange(21)
    assert (moves <= cars[:, None]).all() and (-moves <= cars[None, :]).all()
    assert moves[4, 0] == 0
