"""Tests of the exact tic-tac-toe solver (negamax over the reachable positions)."""

import functools

import numpy as np
import pytest

from bellmax.envs.tictactoe import random_play_outcome_probabilities, reachable_positions
from bellmax.games.solver import (
    board_code,
    check_player,
    check_table,
    outcome_probabilities,
    positions,
    solve,
    uniform_policy,
    worst_case,
)

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def _line(cells):
    for a, b, c in LINES:
        if cells[a] != 0 and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return 0


@functools.cache
def _negamax(cells):
    """Plain recursive negamax, independent of the solver's tables."""
    if _line(cells):
        return -1
    if 0 not in cells:
        return 0
    p = 1 if sum(cells) == 0 else -1
    return max(-_negamax((*cells[:i], p, *cells[i + 1 :])) for i in range(9) if cells[i] == 0)


def test_positions_tables_are_consistent():
    pos = positions()
    assert pos.count == 5478 == len(reachable_positions())
    assert {tuple(b) for b in pos.boards.tolist()} == set(reachable_positions())
    assert not pos.boards[pos.start].any()
    assert np.array_equal(pos.lookup[board_code(pos.boards)], np.arange(pos.count))
    s, a = np.nonzero(pos.legal)
    expected = pos.boards[s].astype(np.int64)
    expected[np.arange(s.size), a] = pos.mover[s]
    assert np.array_equal(pos.boards[pos.child[s, a]], expected)
    assert np.all(pos.child[~pos.legal] == -1)
    assert pos.index([1, 1, 1, 1, 0, 0, 0, 0, 0]) == -1  # unreachable
    with pytest.raises(ValueError):
        pos.boards[0, 0] = 1  # read-only


def test_game_value_is_a_draw_and_values_match_plain_negamax():
    sol = solve()
    assert sol.game_value == 0.0
    pos = positions()
    plain = np.array([_negamax(tuple(b)) for b in pos.boards.tolist()], float)
    assert np.array_equal(sol.value, plain)
    # every first move draws; optimal moves reach the value, others fall short
    assert sol.optimal[pos.start].all()
    live = ~pos.terminal
    assert np.all(sol.optimal[live].any(-1))
    assert np.all(np.where(pos.legal, sol.move_value, -9) <= sol.value[:, None] + 1e-12)


def test_hand_positions():
    sol, pos = solve(), positions()
    # X: 0, 1; O: 3, 4. X to move wins by 2; only that move wins.
    s = pos.index([1, 1, 0, -1, -1, 0, 0, 0, 0])
    assert sol.value[s] == 1
    assert np.flatnonzero(sol.optimal[s]).tolist() == [2]
    # X: 0, 1, 5; O: 3, 4. O to move: X threatens 2, O threatens 5 (taken) -> must block 2.
    s = pos.index([1, 1, 0, -1, -1, 1, 0, 0, 0])
    assert np.flatnonzero(sol.optimal[s]).tolist() == [2]


def test_random_play_outcome_probabilities_exact():
    got = outcome_probabilities()
    env = random_play_outcome_probabilities()
    for k in ("x_wins", "draw", "o_wins"):
        assert got[k] == pytest.approx(env[k], abs=1e-12)
    assert got["x_wins"] == pytest.approx(0.5849, abs=5e-5)
    assert got["draw"] == pytest.approx(0.1270, abs=5e-5)
    assert got["o_wins"] == pytest.approx(0.2881, abs=5e-5)
    assert sum(got.values()) == pytest.approx(1.0)


def test_perfect_play_draws_and_beats_random_exactly():
    perfect = uniform_policy(solve().optimal)
    both = outcome_probabilities(perfect, perfect)
    assert both["draw"] == pytest.approx(1.0)
    assert outcome_probabilities(perfect, None)["o_wins"] == 0.0
    assert outcome_probabilities(None, perfect)["x_wins"] == 0.0


def test_worst_case():
    sol, pos = solve(), positions()
    assert worst_case(sol.optimal, 1) == 0
    assert worst_case(sol.optimal, -1) == 0
    assert worst_case(pos.legal, 1) == -1  # a random player can lose
    first_empty = np.zeros_like(pos.legal)
    live = np.flatnonzero(~pos.terminal)
    first_empty[live, pos.legal[live].argmax(-1)] = True
    assert worst_case(first_empty, -1) == -1


def test_errors():
    pos = positions()
    with pytest.raises(ValueError, match="as_player"):
        worst_case(pos.legal, 0)
    with pytest.raises(ValueError, match="shape"):
        worst_case(np.ones((3, 9), bool), 1)
    with pytest.raises(ValueError, match="at least one legal move"):
        worst_case(np.zeros_like(pos.legal), 1)
    with pytest.raises(ValueError, match="shape"):
        outcome_probabilities(np.zeros((9,)))
    bad = uniform_policy(np.ones_like(pos.legal))
    with pytest.raises(ValueError, match="illegal"):
        outcome_probabilities(bad)
    with pytest.raises(ValueError, match="sum to 1"):
        outcome_probabilities(None, 0.5 * uniform_policy(pos.legal))


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (2, ValueError), (True, TypeError), (1.0, TypeError), ("X", TypeError)],
)
def test_check_player(value, error):
    assert check_player(np.int64(-1)) == -1 and type(check_player(np.int64(1))) is int
    with pytest.raises(error, match="as_player"):
        check_player(value, "as_player")


def test_check_table():
    n = positions().count
    assert check_table(np.zeros((n, 9), int), "t", "scores").dtype == np.float64
    assert check_table(np.zeros((n, 9)), "t", "moves", dtype=bool).dtype == bool
    with pytest.raises(ValueError, match=r"t must be a \[5478, 9\] table of scores"):
        check_table(np.zeros((n, 8)), "t", "scores")
