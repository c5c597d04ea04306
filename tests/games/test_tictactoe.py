"""Tests of the tic-tac-toe agent contract, the registry, matches and checkpoints."""

import jax
import numpy as np
import pytest

from bellmax.core.errors import UnknownNameError
from bellmax.games import tictactoe as ttt
from bellmax.games.solver import outcome_probabilities, positions

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def _line(cells):
    for a, b, c in LINES:
        if cells[a] != 0 and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return 0


@pytest.fixture(scope="module")
def agents():
    """One of each built-in kind; small budgets where they train."""
    return {
        "random": ttt.make_agent("random", seed=0),
        "perfect": ttt.make_agent("perfect", seed=0),
        "naive-mc": ttt.make_agent("naive-mc", seed=0, games=5_000),
        "td": ttt.make_agent("td", seed=0, episodes=2_000),
        "q-learning": ttt.make_agent("q-learning", seed=0, episodes=2_000),
    }


def test_kinds_and_act_returns_an_empty_cell(agents):
    assert ttt.agent_kinds()[:5] == ["random", "perfect", "naive-mc", "td", "q-learning"]
    board = [1, 0, -1, 0, 1, 0, 0, 0, -1]
    for kind, agent in agents.items():
        assert agent.kind == kind
        assert isinstance(agent, ttt.Agent)
        for player, b in ((1, board), (-1, [1, 0, 0, 0, 0, 0, 0, 0, 0])):
            move = agent.act(b, player)
            assert isinstance(move, int) and b[move] == 0
    assert agents["td"].meta["config"]["episodes"] == 2_000


def test_perfect_takes_the_win_and_blocks(agents):
    perfect = agents["perfect"]
    for seed in range(5):
        rng = np.random.default_rng(seed)
        assert perfect.act([1, 1, 0, -1, -1, 0, 0, 0, 0], 1, rng=rng) == 2
        assert perfect.act([1, 1, 0, -1, -1, 1, 0, 0, 0], -1, rng=rng) == 2
        # accepts numpy boards of any integer dtype
        assert perfect.act(np.array([-1, -1, 0, 1, 1, 0, 1, 0, 0], np.int8), -1, rng=rng) == 2


def _every_line(support, as_player):
    """Every line: all the agent's possible moves at its turns, all legal moves at the other's."""
    pos = positions()
    results = {1: 0, 0: 0, -1: 0}

    def visit(cells, player):
        w = _line(cells)
        if w or 0 not in cells:
            results[w * as_player] += 1
            return
        if player == as_player:
            moves = np.flatnonzero(support[pos.index(cells)]).tolist()
        else:
            moves = [i for i in range(9) if cells[i] == 0]
        for m in moves:
            visit((*cells[:m], player, *cells[m + 1 :]), -player)

    visit((0,) * 9, 1)
    return results


@pytest.mark.parametrize("as_player", [1, -1])
def test_perfect_never_loses_over_every_line(agents, as_player):
    # exhaustive over the opponent's lines AND over every optimal choice of the perfect player
    results = _every_line(agents["perfect"].support, as_player)
    assert results[-1] == 0
    assert results[1] > 0 and sum(results.values()) > 500
    # the same check can fail: a random player loses some line
    assert _every_line(agents["random"].support, as_player)[-1] > 0
    # the sampled form of the check, for stochastic agents, over several seeds
    for seed in range(3):
        counts = ttt.lines_of_play(agents["perfect"], as_player, seed=seed)
        assert counts["losses"] == 0 and counts["lines"] == counts["wins"] + counts["draws"]
    assert ttt.lines_of_play(agents["random"], as_player, seed=0)["losses"] > 0


def test_play_game_and_arena(agents):
    r, p = agents["random"], agents["perfect"]
    assert ttt.play_game(r, r, seed=7) == ttt.play_game(r, r, seed=7)
    assert {ttt.play_game(r, r, seed=s) for s in range(30)} <= {-1, 0, 1}
    res = ttt.arena(p, p, 20, seed=0)
    assert res == {"games": 20, "wins": 0, "draws": 20, "losses": 0}
    rr = ttt.arena(r, r, 400, seed=1)
    assert rr["wins"] + rr["draws"] + rr["losses"] == 400
    assert rr["wins"] / 400 == pytest.approx(0.5849, abs=0.08)
    assert ttt.arena(r, p, 100, seed=2)["wins"] == 0
    assert ttt.arena(r, r, 50, seed=3) == ttt.arena(r, r, 50, seed=3)


class _FirstEmptyBatch:
    """A batch agent that plays the first empty cell (or a bad move, to test the checks)."""

    def __init__(self, bad=False):
        self.calls, self.bad = [], bad

    def act_batch(self, boards, players, *, key):
        self.calls.append(len(boards))
        moves = np.argmax(np.asarray(boards) == 0, axis=-1)
        return np.full_like(moves, 0) if self.bad else moves

    def act(self, board, player, *, rng=None):
        raise AssertionError("arena must use act_batch")


def test_check_positions_agrees_with_check_position():
    from bellmax.games.solver import positions

    pos = positions()
    live = ~pos.terminal
    b, p = ttt.check_positions(pos.boards[live], pos.mover[live])
    assert b.shape == (int(live.sum()), 9) and b.dtype == np.int64
    # every kind of bad board is caught, and the message names the board's index
    good = [[0] * 9, [1, 0, 0, 0, 0, 0, 0, 0, 0]]
    bad = [
        ([1, 1, 1, -1, -1, 0, 0, 0, 0], -1, "game is over"),
        ([1, 1, 0, 0, 0, 0, 0, 0, 0], -1, "impossible board"),
        ([0, 0, 2, 0, 0, 0, 0, 0, 0], 1, "cell 2 is 2"),
        ([0] * 9, -1, "X's turn"),
        ([1, -1, 1, 1, -1, -1, -1, 1, 1], -1, "game is over"),
    ]
    for board, player, msg in bad:
        with pytest.raises(ValueError, match=f"board 2 of the batch: .*{msg}"):
            ttt.check_positions([*good, board], [1, -1, player])
    with pytest.raises(ValueError, match=r"boards \[B, 9\]"):
        ttt.check_positions(np.zeros((2, 8)), [1, 1])
    # non-integer boards take the one-by-one path and pass when their values are fine
    assert ttt.check_positions(np.zeros((1, 9)), [1])[0].dtype == np.int64


def test_arena_searches_all_live_games_in_one_batch_per_ply(agents):
    x = _FirstEmptyBatch()
    res = ttt.arena(x, agents["perfect"], 12, seed=0)
    assert res["games"] == 12 and res["wins"] == 0  # perfect play never loses
    assert x.calls[0] == 12 and len(x.calls) <= 5  # one call per X ply, not per game
    assert all(a >= b for a, b in zip(x.calls, x.calls[1:], strict=False))
    with pytest.raises(ValueError, match="not all empty cells"):
        ttt.arena(agents["random"], _FirstEmptyBatch(bad=True), 3, seed=0)


def test_table_agents_move_in_batches_as_act_does(agents):
    # `act_batch` (one call per arena ply): every move is one `act` may play (in the table's
    # support), ties are broken uniformly, a key fixes the moves, bad boards are refused
    from bellmax.games.solver import positions

    pos = positions()
    live = np.flatnonzero(~pos.terminal)
    boards, players = pos.boards[live], pos.mover[live]
    for kind in ("random", "perfect", "td"):
        agent = agents[kind]
        moves = agent.act_batch(boards, players, key=jax.random.key(0))
        assert moves.shape == (len(live),) and moves.dtype == np.int64
        assert np.all(agent.support[live, moves]), kind
        again = agent.act_batch(boards, players, key=jax.random.key(0))
        np.testing.assert_array_equal(moves, again)
    # the empty board, random play: each of the 9 cells about equally often
    many = np.tile(pos.boards[pos.start], (9000, 1))
    cells = agents["random"].act_batch(many, np.ones(9000, np.int64), key=jax.random.key(1))
    counts = np.bincount(cells, minlength=9)
    assert counts.min() > 850 and counts.max() < 1150, counts
    with pytest.raises(ValueError, match="board 1 of the batch"):
        agents["perfect"].act_batch(
            [[0] * 9, [1, 1, 1, -1, -1, 0, 0, 0, 0]], [1, -1], key=jax.random.key(0)
        )


def test_exact_outcomes_match_sampled_games(agents):
    mc, r = agents["naive-mc"], agents["random"]
    exact = ttt.exact_outcomes(mc, r)
    assert exact == outcome_probabilities(mc.policy(), r.policy())
    sampled = ttt.arena(mc, r, 400, seed=0)
    assert sampled["wins"] / 400 == pytest.approx(exact["x_wins"], abs=0.07)
    with pytest.raises(TypeError, match="arena"):
        ttt.exact_outcomes(object(), r)


def test_checkpoint_round_trip(agents, tmp_path):
    td = agents["td"]
    path = td.save(tmp_path / "sub" / "td.npz")
    loaded = ttt.make_agent("td", checkpoint=path, seed=0)
    assert np.array_equal(loaded.scores, td.scores)
    assert np.array_equal(loaded.support, td.support)
    assert loaded.meta == td.meta
    board = [0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert loaded.act(board, -1, rng=np.random.default_rng(0)) == td.act(
        board, -1, rng=np.random.default_rng(0)
    )
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["td.npz"]  # no temp files left
    with pytest.raises(ValueError, match="'td' agent, not 'q-learning'"):
        ttt.make_agent("q-learning", checkpoint=path)
    with pytest.raises(FileNotFoundError, match=r"agent\.save"):
        ttt.make_agent("td", checkpoint=tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a tic-tac-toe agent checkpoint"):
        ttt.load_agent(other)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a tic-tac-toe agent checkpoint"):
        ttt.load_agent(pickled)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a tic-tac-toe agent checkpoint"):
        ttt.load_agent(junk)


def test_truncated_empty_and_foreign_checkpoints_get_one_clear_message(tmp_path):
    good = ttt.make_agent("random", seed=0).save(tmp_path / "good.npz").read_bytes()
    object_data = tmp_path / "object.npz"
    np.savez(object_data, format=np.array([{"a": 1}], dtype=object))
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros(3))
    files = {"truncated.npz": good[:100], "empty.npz": b"", "half.npz": good[: len(good) // 2]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for path in [tmp_path / name for name in files] + [object_data, plain]:
        with pytest.raises(ValueError) as e:
            ttt.load_agent(path)
        assert str(e.value) == (
            f"{str(path)!r} is not a tic-tac-toe agent checkpoint (truncated or not an .npz); "
            "write one with agent.save(path)."
        )


@pytest.mark.parametrize(
    "board, player, match",
    [
        ([0] * 8, 1, r"9 cells.*shape \(8,\)"),
        ([[0] * 9], 1, r"shape \(1, 9\)"),
        ([0, [0, 1]] + [0] * 7, 1, "9 cells"),
        ([2] + [0] * 8, 1, "cell 0 is 2"),
        ([0.5] + [0] * 8, 1, "cell 0 is 0.5"),
        (["x"] + [0] * 8, 1, "numbers"),
        ([True] + [False] * 8, 1, "numbers"),
        ([0] * 9, 0, "player must be 1"),
        ([0] * 9, True, "player must be 1"),
        ([1, 1] + [0] * 7, -1, "1 X and 0 O|2 X and 0 O"),
        ([-1] + [0] * 8, 1, "0 X and 1 O"),
        ([1, 0, 0, 0, 0, 0, 0, 0, 0], 1, "O's turn.*pass player=-1"),
        ([1, -1, 0, 0, 0, 0, 0, 0, 0], -1, "X's turn.*pass player=1"),
        ([1, 1, 1, -1, -1, 0, 0, 0, 0], -1, "over: X has three in a row"),
        ([1, -1, 1, 1, -1, -1, -1, 1, 1], -1, "full"),
    ],
)
def test_act_rejects_bad_input(agents, board, player, match):
    with pytest.raises(ValueError, match=match):
        agents["perfect"].act(board, player)
    with pytest.raises(ValueError, match=match):
        ttt.check_position(board, player)


def test_registry(monkeypatch):
    monkeypatch.setattr(ttt, "AGENT_FACTORIES", dict(ttt.AGENT_FACTORIES))

    class FirstEmpty:
        kind = "first-empty"

        def act(self, board, player, *, rng=None):
            return int(ttt.check_position(board, player).index(0))

    ttt.register_agent("first-empty", lambda *, seed=0: FirstEmpty())
    agent = ttt.make_agent("first-empty", seed=3)
    assert agent.act([1, 0, 0, 0, 0, 0, 0, 0, 0], -1) == 1
    assert ttt.lines_of_play(agent, 1)["losses"] > 0
    with pytest.raises(ValueError, match="overwrite=True"):
        ttt.register_agent("first-empty", lambda: FirstEmpty())
    ttt.register_agent("first-empty", lambda **kw: FirstEmpty(), overwrite=True)
    assert ttt.make_agent("first-empty", anything=1).kind == "first-empty"
    with pytest.raises(ValueError, match="non-empty string"):
        ttt.register_agent("", lambda: FirstEmpty())
    with pytest.raises(TypeError, match="callable"):
        ttt.register_agent("x", 3)


@pytest.mark.parametrize(
    ("cells", "winner"),
    [([0] * 9, 0), ([1, 1, 1, -1, -1, 0, 0, 0, 0], 1), ([1, 1, -1, 0, -1, 0, -1, 0, 1], -1)],
)
def test_winner_of(cells, winner):
    assert ttt.winner_of(cells) == winner == ttt.winner_of(tuple(cells))


def test_make_agent_errors():
    with pytest.raises(UnknownNameError, match="perfect"):
        ttt.make_agent("perfekt")
    with pytest.raises(TypeError, match=r"episodes.*takes: seed"):
        ttt.make_agent("random", episodes=3)
    with pytest.raises(ValueError, match="games"):
        ttt.make_agent("naive-mc", games=0)
    with pytest.raises(ValueError, match="shape"):
        ttt.TableAgent("x", np.zeros((3, 9)))
    bad = np.zeros((positions().count, 9))
    bad[positions().start, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ttt.TableAgent("x", bad)


def test_matches_refuse_bad_agents_and_counts(agents):
    class Cheater:
        kind = "cheater"

        def act(self, board, player, *, rng=None):
            return 0

    class OffBoard:
        kind = "off"

        def act(self, board, player, *, rng=None):
            return 9

    with pytest.raises(ValueError, match="not empty"):
        ttt.play_game(Cheater(), Cheater(), seed=0)
    with pytest.raises(ValueError, match="not a cell"):
        ttt.play_game(OffBoard(), agents["random"], seed=0)
    with pytest.raises(ValueError, match="games must be"):
        ttt.arena(agents["random"], agents["random"], 0)
    with pytest.raises(TypeError, match=r"x_agent must be an agent .*make_agent\('random'\)"):
        ttt.arena("random", agents["random"], 2)
    with pytest.raises(ValueError, match="as_player"):
        ttt.lines_of_play(agents["random"], 2)
