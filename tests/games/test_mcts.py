"""MCTS for tic-tac-toe: the canonical game step, rollouts, leaf solving, never losing.

The exhaustive check searches with one config (`BUDGET`), so the search program is compiled
once for the module; `frozen_agent` batches each layer of the opponent's lines into a few
searches, and `lines_of_play` then walks every line for each seed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs.tictactoe import random_play_outcome_probabilities
from bellmax.games import mcts
from bellmax.games.tictactoe import AGENT_FACTORIES, lines_of_play, make_agent

#: The stated budget: 200 simulations, 2-ply leaf solving, one random rollout per leaf.
#: As X it never loses (every opponent line, several seeds). As O it is not yet perfect at
#: any budget we could afford to check (200-400 simulations, 1-8 rollouts: 1-11 losing lines
#: out of ~500 per seed; OpenSpiel's MCTS loses 5.5% of games as O at 1000), so the O test
#: bounds the share of losing lines instead; see the report.
BUDGET = {"num_simulations": 200, "uct_c": 2.0, "solve_leaves": True}
SEEDS = (0, 1)


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
    outcomes = jax.jit(jax.vmap(mcts.random_rollout, in_axes=(0, None)))(keys, _node([0] * 9))
    # the empty board's mover is X: mean outcome = P(X wins) - P(O wins) = 0.2968
    assert abs(float(jnp.mean(outcomes)) - (exact["x_wins"] - exact["o_wins"])) < 0.05
    # one empty cell that completes the mover's line: always +1
    one = mcts.random_rollout(jax.random.key(1), _node([1, 1, 0, -1, -1, 1, -1, 1, -1]))
    assert float(one) == 1.0


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


@pytest.mark.parametrize("seed", SEEDS[:1])
def test_rarely_loses_as_o_exhaustively(agent, seed):
    frozen = mcts.frozen_agent(agent, -1, seed=seed)
    result = lines_of_play(frozen, -1)
    assert result["lines"] > 300
    assert result["losses"] <= 0.05 * result["lines"], result


def test_registered_and_options():
    assert AGENT_FACTORIES["mcts"].load() is mcts.make_mcts_agent
    a = make_agent("mcts", num_simulations=50, uct_c=1.0, num_rollouts=2, seed=3)
    assert a.config == mcts.MCTSConfig(num_simulations=50, uct_c=1.0, num_rollouts=2)
    with pytest.raises(TypeError, match="does not take"):
        make_agent("mcts", simulations=10)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("num_simulations", 0, ValueError),
        ("num_rollouts", 1.5, ValueError),
        ("uct_c", -1.0, ValueError),
        ("uct_c", "2", ValueError),
        ("solve_leaves", 1, TypeError),
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
