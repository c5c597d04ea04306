"""Tic-tac-toe: rules, helpers, host enumeration and random-play statistics.

Reference values: /work/shared/reference/sutton-barto.md (5,478 reachable positions; random vs
random: X wins 58.49%, draws 12.70%, O wins 28.81%).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.tictactoe import (
    LINES,
    TicTacToe,
    TicTacToeParams,
    apply_move,
    is_full,
    legal_actions,
    random_play_outcome_probabilities,
    reachable_positions,
    render_text,
    winner,
)

ENV = TicTacToe()
KEY = jax.random.PRNGKey(0)
GAMES = 20_000


def _play(env, actions, params=None):
    """Step the given actions from the empty board; returns the per-step outputs."""
    _, state = env.reset(KEY, params)
    out = []
    for a in actions:
        obs, state, r, term, trunc, info = env.step(KEY, state, a, params)
        out.append((obs, state, float(r), bool(term), bool(trunc), info))
    return out


@pytest.fixture(scope="module")
def random_games():
    """GAMES vmapped random-vs-random games, 9 plies each under lax.scan."""

    def game(key):
        _, state = ENV.reset(key)

        def ply(state, key):
            mask = ENV.legal_action_mask(state)
            # uniform over the empty cells; a finished game ignores the action
            a = jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf))
            _, state, r, term, _, info = ENV.step(key, state, a)
            return state, (r, term, info["illegal_move"])

        return jax.lax.scan(ply, state, jax.random.split(key, 9))

    # "rbg" keys: the env takes any key type, and XLA on CPU compiles this vmapped scan
    # several times faster than with the default threefry keys
    keys = jax.random.split(jax.random.key(1, impl="rbg"), GAMES)
    return jax.jit(jax.vmap(game))(keys)


# ---------------------------------------------------------------------- pure helpers
def test_winner_on_every_line_for_both_players():
    boards, expected = [], []
    for line in LINES:
        for p in (1, -1):
            b = np.zeros(9, np.int8)
            b[line] = p
            # one opposing mark off the line, as in a real game
            b[next(c for c in range(9) if c not in line)] = -p
            boards.append(b)
            expected.append(p)
            near = b.copy()
            near[line[1]] = -p  # break the line: nobody has won
            boards.append(near)
            expected.append(0)
    boards = np.stack(boards)
    np.testing.assert_array_equal(np.asarray(jax.jit(winner)(boards)), expected)
    np.testing.assert_array_equal(np.asarray(winner(boards)), expected)  # batched, eager
    assert [int(winner(b)) for b in boards[:4]] == expected[:4]  # one board at a time


def test_winner_agrees_with_enumeration_on_all_reachable_positions():
    positions = np.array(sorted(reachable_positions()), np.int8)
    got = np.asarray(jax.jit(winner)(positions))
    sums = positions[:, LINES].sum(axis=-1)
    want = np.where((sums == 3).any(-1), 1, np.where((sums == -3).any(-1), -1, 0))
    np.testing.assert_array_equal(got, want)
    assert not np.any((sums == 3).any(-1) & (sums == -3).any(-1))  # never two winners


def test_legal_actions_is_full_and_apply_move():
    b = jnp.zeros(9, jnp.int8)
    b = apply_move(b, 4, 1)
    b = apply_move(b, 0, -1)
    assert b.dtype == jnp.int8
    np.testing.assert_array_equal(np.asarray(b), [-1, 0, 0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(np.asarray(legal_actions(b)), np.asarray(b) == 0)
    assert not bool(is_full(b))
    full = jnp.array([1, -1, 1, 1, -1, -1, -1, 1, 1], jnp.int8)
    assert bool(is_full(full)) and not bool(jnp.any(legal_actions(full)))
    assert int(winner(full)) == 0  # the classic draw
    # jittable, with traced cell and player
    jb = jax.jit(apply_move)(jnp.zeros(9, jnp.int8), jnp.asarray(8), jnp.asarray(-1))
    np.testing.assert_array_equal(np.asarray(jb), [0] * 8 + [-1])


# ---------------------------------------------------------------------- the env
def test_reset_spaces_and_registry():
    obs, state = ENV.reset(KEY)
    np.testing.assert_array_equal(np.asarray(obs), np.zeros(9))
    assert obs.dtype == jnp.float32 and bool(ENV.observation_space().contains(obs))
    assert int(state.player) == 1 and int(state.winner) == 0 and not bool(state.done)
    assert state.board.dtype == jnp.int8 and int(state.time) == 0
    assert bool(jnp.all(ENV.legal_action_mask(state)))
    assert ENV.num_actions == 9
    env, params = bellmax.make("TicTacToe-v0")
    assert env == ENV and hash(env) == hash(ENV) and env.name == "TicTacToe-v0"
    assert isinstance(params, TicTacToeParams)


def test_x_wins_a_scripted_game_and_observations_flip():
    steps = _play(ENV, [0, 3, 1, 4, 2])  # X: 0 1 2 (top row); O: 3 4
    rewards = [s[2] for s in steps]
    assert rewards == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert [s[3] for s in steps] == [False] * 4 + [True]
    obs1, state1 = steps[0][0], steps[0][1]
    # after X plays 0 it is O's turn: O sees X's mark as -1
    assert int(state1.player) == -1 and float(obs1[0]) == -1.0
    obs2 = steps[1][0]
    assert float(obs2[0]) == 1.0 and float(obs2[3]) == -1.0  # X to move sees its own mark +1
    final = steps[-1][1]
    assert int(final.winner) == 1 and bool(final.done) and int(final.time) == 5
    info = steps[-1][5]
    assert int(info["winner"]) == 1 and not bool(info["illegal_move"])
    assert not bool(jnp.any(info["legal_mask"]))  # no moves once the game is over
    np.testing.assert_array_equal(
        np.asarray(steps[2][5]["legal_mask"]), np.asarray(steps[2][1].board) == 0
    )


def test_o_wins_and_draw():
    o_wins = _play(ENV, [0, 4, 1, 2, 3, 6])  # O: 4 2 6 (anti-diagonal)
    assert o_wins[-1][2] == 1.0 and o_wins[-1][3] and int(o_wins[-1][1].winner) == -1
    draw = _play(ENV, [0, 1, 2, 4, 3, 5, 7, 6, 8])
    assert [s[2] for s in draw] == [0.0] * 9
    assert [s[3] for s in draw] == [False] * 8 + [True]
    assert int(draw[-1][1].winner) == 0 and not draw[-1][4]  # full board: not truncated


def test_illegal_move_loses_for_the_mover():
    steps = _play(ENV, [4, 4])  # O plays onto X's cell
    _, state, r, term, _, info = steps[-1]
    assert r == -1.0 and term and bool(info["illegal_move"])
    assert int(state.winner) == 1 and bool(state.done)
    assert int(state.board[4]) == 1  # the board is unchanged
    # also when X is the offender
    steps = _play(ENV, [4, 0, 0])
    assert steps[-1][2] == -1.0 and int(steps[-1][1].winner) == -1


def test_jitted_out_of_range_action_loses_like_an_occupied_cell():
    _, state = ENV.reset(KEY)
    step = jax.jit(lambda a: ENV.step(KEY, state, a))
    for a in (9, -1):
        _, s, r, term, _, info = step(a)
        assert float(r) == -1.0 and bool(term) and bool(info["illegal_move"])
        assert int(s.winner) == -1 and not bool(jnp.any(s.board != 0))


def test_stepping_a_finished_game_changes_nothing():
    final = _play(ENV, [0, 3, 1, 4, 2])[-1][1]
    _, state, r, term, _, info = ENV.step(KEY, final, 8)
    assert float(r) == 0.0 and bool(term) and not bool(info["illegal_move"])
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_time_limit_truncates():
    steps = _play(ENV, [0, 1], TicTacToeParams(max_steps_in_episode=2))
    assert [(s[3], s[4]) for s in steps] == [(False, False), (False, True)]


def test_random_vs_random_outcome_frequencies(random_games):
    exact = random_play_outcome_probabilities()
    final, (rewards, term, illegal) = random_games
    w = np.asarray(final.winner)
    assert np.all(np.asarray(final.done)) and not np.any(np.asarray(illegal))
    for name, value in (("x_wins", 1), ("draw", 0), ("o_wins", -1)):
        p = exact[name]
        freq = np.mean(w == value)
        assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / GAMES), (name, freq, p)
    # exactly one terminal step per game, and the only nonzero reward is the winner's +1
    term = np.asarray(term)
    first_done = np.argmax(term, axis=1)
    assert np.all(term[np.arange(GAMES), first_done]) and np.all(term.sum(axis=1) == 9 - first_done)
    rewards = np.asarray(rewards)
    np.testing.assert_array_equal(rewards.sum(axis=1), np.abs(w))
    mover = np.where(first_done % 2 == 0, 1, -1)  # X moves on even plies
    assert np.all((w == 0) | (w == mover))
    # every final board is a reachable position, and its winner is recorded correctly
    boards = np.asarray(final.board)
    reach = reachable_positions()
    assert all(tuple(int(v) for v in b) in reach for b in boards[:2000])
    np.testing.assert_array_equal(np.asarray(winner(boards)), w)


# ---------------------------------------------------------------------- host helpers
def test_reachable_positions_count():
    positions = reachable_positions()
    assert len(positions) == 5478
    assert (0,) * 9 in positions
    counts = np.array([[p.count(1), p.count(-1)] for p in positions])
    assert set(counts[:, 0] - counts[:, 1]) == {0, 1}  # X moves first
    boards = np.array(sorted(positions))
    sums = boards[:, LINES].sum(axis=-1)
    x_won, o_won = (sums == 3).any(-1), (sums == -3).any(-1)
    draws = ~x_won & ~o_won & (boards != 0).all(-1)
    # the known terminal counts: 626 X wins, 316 O wins, 16 full-board draws (958 in all)
    assert (x_won.sum(), o_won.sum(), draws.sum()) == (626, 316, 16)
    assert reachable_positions() is positions  # cached


def test_random_play_probabilities_match_reference():
    exact = random_play_outcome_probabilities()
    assert exact["x_wins"] == pytest.approx(0.5849, abs=5e-5)
    assert exact["draw"] == pytest.approx(0.1270, abs=5e-5)
    assert exact["o_wins"] == pytest.approx(0.2881, abs=5e-5)
    assert sum(exact.values()) == pytest.approx(1.0)
    # from a position where X has already won, X wins surely
    assert random_play_outcome_probabilities([1, 1, 1, -1, -1, 0, 0, 0, 0])["x_wins"] == 1.0


def test_render_text():
    text = render_text(np.array([1, 0, -1, 0, 1, 0, -1, 0, 0]))
    assert text == " X | 1 | O\n---+---+---\n 3 | X | 5\n---+---+---\n O | 7 | 8"
    assert render_text([0] * 9).split("\n")[4] == " 6 | 7 | 8"


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "board, match",
    [
        ([0] * 8, "9 cells"),
        (np.zeros((3, 3)), "9 cells"),
        (5, "9 cells"),
        ([0, 0, 2, 0, 0, 0, 0, 0, 0], "-1 \\(O\\), 0 \\(empty\\) or 1 \\(X\\).*index \\(2,\\)"),
        ([0.5] + [0] * 8, "-1 \\(O\\), 0"),
    ],
)
@pytest.mark.parametrize("fn", [winner, legal_actions, is_full, render_text])
def test_bad_boards_raise(fn, board, match):
    with pytest.raises(ValueError, match=match):
        fn(board)


def test_host_helpers_need_a_single_board():
    with pytest.raises(ValueError, match="shape \\[9\\]"):
        render_text(np.zeros((2, 9)))
    with pytest.raises(ValueError, match=r"use jax\.vmap"):
        apply_move(np.zeros((2, 9), np.int8), 0, 1)


@pytest.mark.parametrize(
    "cell, player, match",
    [
        (9, 1, "cell 9 is out of range"),
        (-1, 1, "out of range"),
        (1.5, 1, "dtype float"),
        (0, 2, "player must be 1 \\(X\\) or -1 \\(O\\)"),
        (0, 0, "player must be"),
    ],
)
def test_apply_move_bad_cell_or_player(cell, player, match):
    with pytest.raises(TypeError if isinstance(cell, float) else ValueError, match=match):
        apply_move(jnp.zeros(9, jnp.int8), cell, player)


def test_random_play_probabilities_bad_position():
    with pytest.raises(ValueError, match="X moves first"):
        random_play_outcome_probabilities([-1, 0, 0, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize(
    "action, error, match",
    [(9, ValueError, "out of range"), (-2, ValueError, "out of range"), (0.5, TypeError, "dtype")],
)
def test_bad_concrete_action_raises(action, error, match):
    _, state = ENV.reset(KEY)
    with pytest.raises(error, match=match):
        ENV.step(KEY, state, action)


def test_bad_params_raise():
    with pytest.raises(ValueError, match="max_steps_in_episode must be a whole number >= 1"):
        ENV.reset(KEY, TicTacToeParams(max_steps_in_episode=0))
    _, state = ENV.reset(KEY)
    with pytest.raises(ValueError, match="max_steps_in_episode must be a whole number >= 1"):
        ENV.step(KEY, state, 0, TicTacToeParams(max_steps_in_episode=0))
