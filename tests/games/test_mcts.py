"""MCTS for tic-tac-toe: the canonical game step, playouts, leaf solving, proven values that
match the exact solution, and never losing at the stated budget.

The exhaustive checks and the proof check search with one config (`BUDGET`), so the search
program is compiled once per batch size for the module; `frozen_agent` batches each layer of
the opponent's lines into a few searches, and `lines_of_play` then walks every line per seed.
The tests of the search's buffers, proof tallies and plain UCT search the agent's 64-board
bucket with the configs of `SMALL` and `REPLACED` (each search program costs seconds to
compile: these tests share theirs with each other and with the exhaustive checks).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs.tictactoe import LINES, random_play_outcome_probabilities
from bellmax.games import mcts
from bellmax.games.solver import positions, solve
from bellmax.games.tictactoe import AGENT_FACTORIES, lines_of_play, make_agent

#: The stated budget: the default config, 1000 simulations with MCTS-Solver, 2-ply leaf solving
#: and one random rollout per leaf. It never loses as X or as O over every opponent line for
#: every seed tried (0-9; the tests run 0-4).
BUDGET = {"num_simulations": 1000, "uct_c": 2.0, "solve_leaves": True, "solver": True}
SEEDS = (0, 1, 2, 3, 4)
#: The buffer tests' configs per `solver`, which the proof-tally (solver) and plain-UCT tests
#: search with too, and the configs the agent's is replaced by (each bigger, so buffers of the
#: old size would not do; the solver's is the budget's, compiled for the exhaustive checks).
SMALL = {
    True: mcts.MCTSConfig(num_simulations=300),
    False: mcts.MCTSConfig(num_simulations=200, solver=False),
}
REPLACED = {
    True: mcts.MCTSConfig(**BUDGET),
    False: mcts.MCTSConfig(num_simulations=300, solver=False),
}


#: `playout_outcome` over a batch, jitted once for the two playout tests ([300, 9] int8 boards
#: and float32 uniforms in both: one compiled program).
_playouts = jax.jit(jax.vmap(mcts.playout_outcome))


def _padded(boards) -> jax.Array:
    """`boards` padded to the agent's 64-board bucket with its filler, as `act_batch` does
    (the filler has one empty cell, which wins)."""
    return jnp.asarray(np.tile(mcts._PAD, (64, 1))).at[: len(boards)].set(jnp.int8(boards))


def _node(cells, done=False):
    return mcts.Node(board=jnp.asarray(cells, jnp.int8), done=jnp.asarray(done))


@pytest.mark.parametrize("jit", [False, True])
def test_step_canonical_hand_cases(jit):
    step = jax.jit(mcts.step_canonical) if jit else mcts.step_canonical
    # the mover (+1) completes the top row
    nxt, reward, done = step(_node([1, 1, 0, -1, -1, 0, 0, 0, 0]), 2)
    assert float(reward) == 1.0 and bool(done)
    # a quiet move: the board is negated for the next mover
    nxt, reward, done = step(_node([0] * 9), 4)
    assert float(reward) == 0.0 and not bool(done)
    np.testing.assert_array_equal(np.asarray(nxt.board), [0, 0, 0, 0, -1, 0, 0, 0, 0])
    # an occupied cell loses on the spot and leaves the board as it was
    nxt, reward, done = step(_node([1, 0, 0, 0, -1, 0, 0, 0, 0]), 4)
    assert float(reward) == -1.0 and bool(done)
    np.testing.assert_array_equal(np.asarray(nxt.board), [1, 0, 0, 0, -1, 0, 0, 0, 0])
    # the last cell, no line: a draw
    _, reward, done = step(_node([1, -1, 1, 1, -1, -1, -1, 1, 0]), 8)
    assert float(reward) == 0.0 and bool(done)
    # a finished game does not change
    _, reward, done = step(_node([0] * 9, done=True), 0)
    assert float(reward) == 0.0 and bool(done)


def test_random_rollouts_match_exact_random_play():
    exact = random_play_outcome_probabilities()
    keys = jax.random.split(jax.random.key(0), 4000)
    rollouts = jax.jit(jax.vmap(mcts.random_rollout, in_axes=(0, None)))
    outcomes = rollouts(keys, _node([0] * 9))
    # the empty board's mover is X: mean outcome = P(X wins) - P(O wins) = 0.2968
    assert abs(float(jnp.mean(outcomes)) - (exact["x_wins"] - exact["o_wins"])) < 0.05
    # one empty cell that completes the mover's line: always +1 (every key; the same program)
    one = rollouts(keys, _node([1, 1, 0, -1, -1, 1, -1, 1, -1]))
    np.testing.assert_array_equal(np.asarray(one), np.ones(len(keys)))


def _sequential_playout(cells, u):
    """Play the empty cells in increasing u, the mover (+1) first; +1/-1/0 for the mover."""
    board = list(cells)
    player = 1
    for cell in sorted((i for i in range(9) if board[i] == 0), key=lambda i: u[i]):
        board[cell] = player
        if any(board[a] + board[b] + board[c] == 3 * player for a, b, c in LINES):
            return player
        player = -player
    return 0


def test_playout_outcome_is_the_sequential_random_game():
    # the loop-free playout must agree with playing the same order move by move
    pos = positions()
    rng = np.random.default_rng(0)
    live = np.flatnonzero(~pos.terminal)
    picks = rng.choice(live, 300, replace=False)
    boards = pos.boards[picks] * pos.mover[picks, None]  # canonical: the mover's marks +1
    u = rng.random((300, 9)).astype(np.float32)
    got = np.asarray(_playouts(jnp.asarray(boards), jnp.asarray(u)))
    want = [_sequential_playout(b.tolist(), uu) for b, uu in zip(boards, u, strict=True)]
    np.testing.assert_array_equal(got, want)
    assert len(set(want)) == 3  # wins, losses and draws all occur


@pytest.mark.parametrize(
    ("cells", "solved", "value"),
    [
        ([1, 1, 0, -1, -1, 0, 0, 0, 0], True, 1.0),  # the mover wins now
        ([-1, -1, 0, -1, 0, 0, 0, 1, 1], True, 1.0),  # wins now even against a fork
        ([-1, -1, 0, -1, 0, 0, 1, 1, 0], True, 1.0),  # cell 8 wins the bottom row
        ([-1, -1, 0, -1, 1, 0, 0, 0, 1], True, -1.0),  # the opponent's fork: 2 and 6
        ([-1, -1, 0, 0, 1, 0, 0, 0, 0], False, 0.0),  # one threat: blockable
        ([0] * 9, False, 0.0),
    ],
)
def test_solved_value(cells, solved, value):
    s, v = mcts.solved_value(jnp.asarray(cells, jnp.int8))
    assert bool(s) is solved and float(v) == value


@pytest.fixture(scope="module")
def agent() -> mcts.MCTSAgent:
    return make_agent("mcts", **BUDGET)


@pytest.mark.parametrize("seed", SEEDS)
def test_never_loses_as_x_exhaustively(agent, seed):
    frozen = mcts.frozen_agent(agent, 1, seed=seed)
    result = lines_of_play(frozen, 1)
    assert result["lines"] > 50
    assert result["losses"] == 0, result


@pytest.mark.parametrize("seed", SEEDS)
def test_never_loses_as_o_exhaustively(agent, seed):
    frozen = mcts.frozen_agent(agent, -1, seed=seed)
    result = lines_of_play(frozen, -1)
    assert result["lines"] > 300
    assert result["losses"] == 0, result


def test_proven_values_are_the_exact_values():
    # every value MCTS-Solver proves must be the negamax value, and short games get solved
    pos, sol = positions(), solve()
    rng = np.random.default_rng(1)
    live = np.flatnonzero(~pos.terminal & (pos.filled >= 2))
    picks = np.sort(rng.choice(live, 256, replace=False))
    boards = (pos.boards[picks] * pos.mover[picks, None]).astype(np.int8)
    config = mcts.MCTSConfig(**BUDGET)
    out = jax.device_get(mcts.search(jnp.asarray(boards), jax.random.key(0), config))
    move_value = sol.move_value[picks]
    proven = out.proven & pos.legal[picks]
    assert proven.sum() > 500
    np.testing.assert_array_equal(out.proven_value[proven], move_value[proven])
    solved = out.root_solved
    np.testing.assert_array_equal(out.root_value[solved], sol.value[picks][solved])
    short = pos.filled[picks] >= 5  # at most 4 empty cells: the whole tree fits the budget
    assert solved[short].all()
    assert (out.simulations[short] < config.num_simulations).all()
    assert not out.proven[~pos.legal[picks]].any()
    # a proven root's chosen move reaches the proven value
    moves = np.asarray(mcts.choose_move(out, jnp.asarray(boards), jax.random.key(1)))
    chosen_value = move_value[np.arange(len(picks)), moves]
    np.testing.assert_array_equal(chosen_value[solved], sol.value[picks][solved])


@pytest.mark.parametrize("solver", [True, False])
def test_a_search_in_used_buffers_is_the_search_in_fresh_ones(solver):
    # The agent hands each search the buffers of its last one (`_search_into`): only the
    # roots' rows are reset, on the claim that every other row is written whole before it is
    # read. Junk in every buffer (NaN, bogus child indices, boards, proofs) must not change
    # any result, for both the solver and plain UCT (which reads `exact` at finished games).
    # Three boards, padded to the agent's bucket of 64 as `act_batch` pads them.
    config = SMALL[solver]
    boards = [[0] * 9, [1, 0, 0, 0, -1, 0, 0, 0, 0], [1, 1, 0, -1, -1, 0, 0, 0, 0]]
    padded = _padded(boards)
    fresh = jax.device_get(mcts.search(padded, jax.random.key(3), config))
    for junk in (jnp.nan, 7.0, -1.0):
        scratch = jax.tree.map(
            lambda x, junk=junk: jnp.full_like(x, junk if x.dtype == jnp.float32 else 1),
            mcts._empty_trees(64, config.num_simulations + 1),
        )
        used, _ = mcts._search_into(padded, jax.random.key(3), config, scratch, config.uct_c)
        for name, value in vars(jax.device_get(used)).items():
            np.testing.assert_array_equal(value, getattr(fresh, name), err_msg=name)
    # and the agent's buffers after a real search of other positions
    agent = mcts.MCTSAgent(config, seed=0)
    agent.act_batch(np.zeros((3, 9), np.int64), np.ones(3), key=jax.random.key(1))
    assert (64, config) in agent._scratch  # three boards are padded to the 64 bucket
    scratch = agent._scratch.pop((64, config))
    again, _ = mcts._search_into(padded, jax.random.key(3), config, scratch, config.uct_c)
    for name, value in vars(jax.device_get(again)).items():
        np.testing.assert_array_equal(value, getattr(fresh, name), err_msg=name)
    # a config replaced between searches gets buffers of its own size, the old ones dropped
    agent.act_batch(np.zeros((3, 9), np.int64), np.ones(3), key=jax.random.key(1))
    bigger = REPLACED[solver]
    assert bigger.solver == solver and bigger.num_simulations > config.num_simulations
    agent.config = bigger
    moves = agent._choose(padded, jax.random.key(5))
    np.testing.assert_array_equal(
        moves, np.asarray(mcts._choose(padded, jax.random.key(5), bigger)[0])
    )
    assert list(agent._scratch) == [(64, bigger)]


def _playout_by_hand(board, u):
    """The playout that `playout_outcome` claims: empty cells filled in the order of `u`
    (ties by cell index), the mover first; the first completed line decides."""
    board = np.array(board, np.int64)
    empty = np.flatnonzero(board == 0)
    order = empty[np.lexsort((empty, np.asarray(u)[empty]))]
    player = 1
    for cell in order:
        board[cell] = player
        if any(board[list(line)].tolist() == [player] * 3 for line in LINES):
            return float(player)
        player = -player
    return 0.0


def test_playouts_with_tied_uniforms_are_legal_games():
    # the search draws 16-bit uniforms: two empty cells can tie, and a tie must not give one
    # player two marks at one ply (it is broken by the cell index)
    rng = np.random.default_rng(0)
    pos = positions()
    live = np.flatnonzero(~pos.terminal)
    boards = (pos.boards[live] * pos.mover[live, None]).astype(np.int8)[rng.choice(len(live), 300)]
    u = rng.integers(0, 3, (300, 9)).astype(np.float32) / 3  # many ties
    got = _playouts(jnp.asarray(boards), jnp.asarray(u))
    want = [_playout_by_hand(b, x) for b, x in zip(boards, u, strict=True)]
    np.testing.assert_array_equal(np.asarray(got), want)


def test_the_search_evaluates_boards_cells_first_as_one_at_a_time():
    # the search evaluates its leaves with the boards' axis last ([9, R, B], cell by cell):
    # the same outcomes and solved values as the one-board functions, tied uniforms included
    rng = np.random.default_rng(1)
    pos = positions()
    live = np.flatnonzero(~pos.terminal)
    boards = (pos.boards[live] * pos.mover[live, None]).astype(np.int8)[rng.choice(len(live), 400)]
    u = rng.integers(0, 4, (3, 400, 9)).astype(np.float32) / 4  # 3 rollouts a board, many ties
    # (each side jitted, as the search runs it, rather than dispatched op by op)
    got = jax.jit(mcts._playout_cells_first)(
        jnp.asarray(boards.T)[:, None], jnp.asarray(u.transpose(2, 0, 1))
    )
    one_at_a_time = jax.jit(jax.vmap(jax.vmap(mcts.playout_outcome), in_axes=(None, 0)))
    want = one_at_a_time(boards, jnp.asarray(u))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    solved, value = jax.jit(mcts._solved_cells_first)(jnp.asarray(boards.T))
    want_solved, want_value = jax.jit(jax.vmap(mcts.solved_value))(jnp.asarray(boards))
    np.testing.assert_array_equal(np.asarray(solved), np.asarray(want_solved))
    np.testing.assert_array_equal(np.asarray(value), np.asarray(want_value))


def test_the_proof_tallies_are_the_counts_of_the_rows():
    # `_prove` reads each path node's open moves and best proven value from `Tree.tally`,
    # which it keeps up to date instead of reading the node's row: after a search, every
    # node's tally must equal what its row says (three boards, padded to the agent's bucket:
    # the filler's trees are checked too)
    config = SMALL[True]
    boards = _padded([[0] * 9, [1, 0, 0, 0, -1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0, 0, 0, -1]])
    scratch = mcts._empty_trees(64, config.num_simulations + 1)
    result, trees = jax.device_get(
        mcts._search_into(boards, jax.random.key(2), config, scratch, config.uct_c)
    )
    some_proven = 0
    for b in range(64):
        added = int(result.simulations[b]) + 1
        edges, tally = trees.edges[b, :added], trees.tally[b, :added]
        legal = edges[..., mcts._CHILD] != mcts._NOT_A_MOVE
        proven = legal & ~np.isnan(edges[..., mcts._PROVEN])
        np.testing.assert_array_equal(tally[:, mcts._OPEN], np.sum(legal & ~proven, axis=-1))
        best = np.max(np.where(proven, edges[..., mcts._PROVEN], -1.0), axis=-1)
        np.testing.assert_array_equal(tally[:, mcts._BEST], best)
        if b < 3:
            some_proven += int(proven.sum())
    assert some_proven > 50  # the three boards' trees had proofs, not only fresh nodes


def test_another_exploration_constant_compiles_no_new_search():
    # uct_c is data to the search program (it was part of the static config: every value
    # was a new ~5 s compile); the searches still differ with it.
    boards = _padded([[1, 0, 0, 0, -1, 0, 0, 0, 0]])
    visits, programs = [], []
    for c in (2.0, 0.5):
        config = dataclasses.replace(SMALL[False], uct_c=c)
        visits.append(np.asarray(mcts.search(boards, jax.random.key(0), config).visits[0]))
        programs.append(mcts._search_fresh._cache_size())  # (jax's count of programs compiled)
    assert programs[1] == programs[0]
    assert not np.array_equal(visits[0], visits[1])


def test_plain_uct_proves_nothing():
    # a win now, the empty board, and the agent's filler (one empty cell, which wins)
    config = SMALL[False]
    boards = _padded([[1, 1, 0, -1, -1, 0, 0, 0, 0], [0] * 9])
    out = mcts.search(boards, jax.random.key(0), config)
    assert not bool(jnp.any(out.proven)) and not bool(jnp.any(out.root_solved))
    np.testing.assert_array_equal(np.asarray(out.simulations), [200] * 64)
    np.testing.assert_array_equal(np.asarray(out.visits).sum(-1), [200] * 64)


def _result(visits, proven, proven_value, root_solved=False, root_value=0.0):
    f = jnp.asarray
    return mcts.SearchResult(
        visits=f([visits], jnp.int32),
        q=jnp.zeros((1, 9)),
        proven=f([proven]),
        proven_value=f([proven_value], jnp.float32),
        root_solved=f([root_solved]),
        root_value=f([root_value], jnp.float32),
        simulations=f([sum(visits)], jnp.int32),
    )


def test_choose_move_rules():
    empty = jnp.zeros((1, 9), jnp.int8)
    key = jax.random.key(0)
    no = [False] * 9
    # unproven: the most-visited move
    r = _result([1, 9, 1, 1, 1, 1, 1, 1, 1], no, [0.0] * 9)
    assert int(mcts.choose_move(r, empty, key)[0]) == 1
    # a proven loss is never played while another move remains, however visited
    r = _result([1, 9, 3, 1, 1, 1, 1, 1, 1], [False, True] + [False] * 7, [0, -1.0] + [0] * 7)
    assert int(mcts.choose_move(r, empty, key)[0]) == 2
    # a proven root plays a move with the proven value, not the most visited
    r = _result([1, 9, 3, 1, 1, 1, 1, 1, 1], [True] * 9, [0, 0, 0, 0, 1.0, 0, 0, 0, 0], True, 1.0)
    assert int(mcts.choose_move(r, empty, key)[0]) == 4
    # everything lost: still a legal move (the most visited empty cell)
    board = jnp.asarray([[1, 0, 0, 0, 0, 0, 0, 0, 0]], jnp.int8)
    r = _result([9, 1, 5, 1, 1, 1, 1, 1, 1], [True] * 9, [-1.0] * 9, True, -1.0)
    assert int(mcts.choose_move(r, board, key)[0]) == 2


def test_registered_and_options():
    assert AGENT_FACTORIES["mcts"].load() is mcts.make_mcts_agent
    a = make_agent("mcts", num_simulations=50, uct_c=1.0, num_rollouts=2, seed=3)
    assert a.config == mcts.MCTSConfig(num_simulations=50, uct_c=1.0, num_rollouts=2)
    assert make_agent("mcts", solver=False).config.solver is False
    assert mcts.MCTSConfig().num_simulations == BUDGET["num_simulations"]
    with pytest.raises(TypeError, match="does not take"):
        make_agent("mcts", simulations=10)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("num_simulations", 0, ValueError),
        ("num_rollouts", 1.5, TypeError),
        ("uct_c", -1.0, ValueError),
        ("uct_c", "2", TypeError),
        ("solve_leaves", 1, TypeError),
        ("solver", "yes", TypeError),
    ],
)
def test_config_errors(field, value, error):
    with pytest.raises(error, match=field):
        mcts.MCTSConfig(**{field: value})


def test_agent_needs_a_config():
    with pytest.raises(TypeError, match="MCTSConfig"):
        mcts.MCTSAgent({"num_simulations": 10})


def test_act_checks_the_position_and_draws_its_key(monkeypatch):
    a = mcts.MCTSAgent(mcts.MCTSConfig(num_simulations=10))
    calls = []
    real = mcts.check_position

    def spy(board, player):
        calls.append(player)
        return real(board, player)

    monkeypatch.setattr(mcts, "check_position", spy)
    with pytest.raises(ValueError, match="9 cells"):
        a.act([0] * 10, 1)
    with pytest.raises(ValueError, match="game is over"):
        a.act([1, 1, 1, -1, -1, 0, 0, 0, 0], -1)
    with pytest.raises(ValueError, match="turn"):
        a.act([0] * 9, -1)
    assert len(calls) == 3
    assert a.act([1, -1, 1, 1, -1, -1, -1, 1, 0], 1) == 8  # one empty cell: no search
    seen = []
    monkeypatch.setattr(
        a, "act_batch", lambda b, p, *, key, _single: seen.append(key) or np.array([4])
    )
    assert a.act([0] * 9, 1, rng=np.random.default_rng(0)) == 4
    assert len(seen) == 1
    with pytest.raises(ValueError, match=r"boards \[B, 9\]"):
        mcts.MCTSAgent().act_batch(np.zeros((3, 9)), np.ones(2), key=jax.random.key(0))
    with pytest.raises(ValueError, match="game is over"):
        mcts.MCTSAgent().act_batch([[1, 1, 1, -1, -1, 0, 0, 0, 0]], [-1], key=jax.random.key(0))


def test_frozen_agent_errors():
    with pytest.raises(ValueError, match="as_player"):
        mcts.frozen_agent(mcts.MCTSAgent(), 0)
    frozen = mcts.FrozenAgent("x", {(0,) * 9: 4})
    assert frozen.act([0] * 9, 1) == 4
    with pytest.raises(ValueError, match="9 cells"):
        frozen.act([0] * 3, 1)
