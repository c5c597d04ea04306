"""Tests of the self-play learners: naive Monte Carlo (the notes' experiment), TD(0), Q-learning."""

import numpy as np
import pytest

from bellmax.games.selfplay import (
    NaiveMCConfig,
    QLearningConfig,
    TDConfig,
    train_naive_mc,
    train_q_learning,
    train_td,
)
from bellmax.games.solver import outcome_probabilities, positions, solve, uniform_policy, worst_case

RANDOM_X = 0.5849  # random-vs-random X win rate (checked in test_solver)
RANDOM_O = 0.2881


def _greedy(scores):
    pos = positions()
    s = np.where(pos.legal, scores, -np.inf)
    return pos.legal & (s >= s.max(-1, keepdims=True) - 1e-9)


@pytest.fixture(scope="module")
def perfect():
    return uniform_policy(solve().optimal)


@pytest.fixture(scope="module")
def naive():
    return train_naive_mc(NaiveMCConfig(games=20_000), seed=0)


@pytest.fixture(scope="module")
def td():
    return train_td(TDConfig(), seed=0)


@pytest.fixture(scope="module")
def q():
    return train_q_learning(QLearningConfig(), seed=0)


def test_naive_mc_keeps_only_winners_moves(naive):
    pos = positions()
    counts = np.nan_to_num(naive.scores)
    assert np.all(counts >= 0) and np.all(counts == np.round(counts))
    assert np.all(np.isnan(naive.scores[~pos.legal]))
    # X wins about as often as in exact random play (binomial sd ~ 0.0035 at 20,000 games)
    assert naive.x_wins / naive.games == pytest.approx(RANDOM_X, abs=0.02)
    assert naive.o_wins / naive.games == pytest.approx(RANDOM_O, abs=0.02)
    # counts sit only on the winner's turns: X's kept moves at X-to-move rows, and so on
    x_rows = pos.mover == 1
    kept_x, kept_o = counts[x_rows].sum(), counts[~x_rows].sum()
    assert kept_x >= 3 * naive.x_wins and kept_o >= 3 * naive.o_wins
    assert kept_x <= 5 * naive.x_wins and kept_o <= 4 * naive.o_wins


def test_naive_mc_beats_random_but_not_perfect(naive, perfect):
    pol = uniform_policy(_greedy(naive.scores))
    as_x = outcome_probabilities(pol, None)
    as_o = outcome_probabilities(None, pol)
    assert as_x["x_wins"] > RANDOM_X + 0.2
    assert as_o["o_wins"] > RANDOM_O + 0.3
    # "worked kind of": it has never seen refutations, so perfect play beats it
    vs_perfect_x = outcome_probabilities(pol, perfect)
    vs_perfect_o = outcome_probabilities(perfect, pol)
    assert vs_perfect_x["x_wins"] == 0.0 and vs_perfect_o["o_wins"] == 0.0
    assert vs_perfect_x["o_wins"] + vs_perfect_o["x_wins"] > 0.05


@pytest.mark.parametrize("name", ["td", "q"])
def test_self_play_learners_beat_random_and_hold_perfect(name, request, perfect):
    result = request.getfixturevalue(name)
    support = _greedy(result.scores)
    pol = uniform_policy(support)
    as_x = outcome_probabilities(pol, None)
    as_o = outcome_probabilities(None, pol)
    assert as_x["x_wins"] + as_x["draw"] >= 0.9
    assert as_o["o_wins"] + as_o["draw"] >= 0.9
    assert as_x["x_wins"] > RANDOM_X + 0.3
    # never better than perfect against perfect; at this budget and seed it never loses as X
    assert outcome_probabilities(pol, perfect)["x_wins"] == 0.0
    assert outcome_probabilities(perfect, pol)["o_wins"] == 0.0
    assert worst_case(support, 1) == 0
    assert result.visited > 3000


def test_q_learning_approaches_the_solution(q):
    sol, pos = solve(), positions()
    start = pos.start
    assert np.nanmax(np.abs(q.scores[start] - sol.move_value[start])) < 0.25
    live = ~pos.terminal
    agree = (_greedy(q.scores)[live] <= sol.optimal[live]).all(-1).mean()
    assert agree > 0.8  # greedy moves are optimal at most positions


def test_training_is_seeded():
    a = train_td(TDConfig(episodes=300), seed=3)
    b = train_td(TDConfig(episodes=300), seed=3)
    c = train_td(TDConfig(episodes=300), seed=4)
    assert np.array_equal(a.scores, b.scores, equal_nan=True)
    assert not np.array_equal(a.scores, c.scores, equal_nan=True)
    d = train_q_learning(QLearningConfig(episodes=300), seed=3)
    e = train_q_learning(QLearningConfig(episodes=300), seed=3)
    assert np.array_equal(d.scores, e.scores, equal_nan=True)


@pytest.mark.parametrize(
    "make, match, error",
    [
        (lambda: NaiveMCConfig(games=0), "games", ValueError),
        (lambda: NaiveMCConfig(games=True), "games", TypeError),
        (lambda: TDConfig(episodes=-1), "episodes", ValueError),
        (lambda: TDConfig(alpha=0.0), "alpha", ValueError),
        (lambda: TDConfig(epsilon=1.5), "epsilon", ValueError),
        (lambda: QLearningConfig(alpha="big"), "alpha", TypeError),
        (lambda: QLearningConfig(epsilon=-0.1), "epsilon", ValueError),
    ],
)
def test_config_errors(make, match, error):
    with pytest.raises(error, match=match):
        make()
