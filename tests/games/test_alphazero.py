"""AlphaZero-style tic-tac-toe: targets, training to perfect play, save/load, bad input.

One network is trained once per module (the default budget, seed 0; about 20-40 s on one
core, mostly compiling the search) and shared by the tests; every search in this file uses
the same config, so the search program is compiled once.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bellmax.envs.tictactoe import LINES
from bellmax.games import alphazero as az
from bellmax.games.mcts import frozen_agent
from bellmax.games.tictactoe import AGENT_FACTORIES, lines_of_play, make_agent

CONFIG = az.AlphaZeroConfig()  # the stated budget: 60 rounds x 128 games x 32 simulations


@pytest.fixture(scope="module")
def trained() -> az.TrainResult:
    return az.train_alphazero(CONFIG, seed=0)


@pytest.fixture(scope="module")
def agent(trained) -> az.AlphaZeroAgent:
    return az.AlphaZeroAgent(trained.params, trained.config)


def test_registered():
    assert AGENT_FACTORIES["alphazero"].load() is az.make_alphazero_agent


def test_selfplay_targets_are_outcomes_for_each_mover(trained):
    import jax

    boards, targets, z, mask = az._selfplay(trained.params, jax.random.key(3), CONFIG)
    assert boards.shape == (9, CONFIG.games_per_iteration, 9)
    live = mask > 0
    assert live.any()
    # policy targets: distributions over the empty cells of the mover's board
    np.testing.assert_allclose(targets[live].sum(-1), 1.0, atol=1e-5)
    assert np.all(targets[live][boards[live] != 0] < 1e-6)
    assert set(np.unique(z[live])) <= {-1.0, 0.0, 1.0}
    for g in range(CONFIG.games_per_iteration):
        plies = np.flatnonzero(live[:, g])
        for t0, t1 in itertools.pairwise(plies):
            assert t1 == t0 + 1
            assert z[t0, g] == -z[t1, g]  # the movers alternate: the outcome flips sign
        # the last recorded mover won exactly when its line is on the next board
        if plies.size and plies[-1] < 8:
            t = plies[-1]
            line = np.any(np.sum(-boards[t + 1, g][LINES], -1) == 3)
            assert (z[t, g] == 1.0) == line


def test_training_loss_falls(trained):
    assert trained.losses[-1] < 0.6 * trained.losses[0]


@pytest.mark.parametrize("as_player", [1, -1])
def test_never_loses_exhaustively(agent, as_player):
    # the play search is noise-free, so one seed covers every choice the agent makes
    frozen = frozen_agent(agent, as_player, seed=0)
    result = lines_of_play(frozen, as_player)
    assert result["lines"] > 50
    assert result["losses"] == 0, result


def test_save_load_round_trip(agent, tmp_path):
    path = agent.save(tmp_path / "az.msgpack")
    loaded = make_agent("alphazero", checkpoint=path)
    boards = np.array([[0] * 9, [1, 0, 0, 0, -1, 0, 0, 0, 0], [1, 1, 0, -1, -1, 0, 0, 0, 0]])
    players = np.array([1, 1, 1])
    np.testing.assert_array_equal(
        loaded.act_batch(boards, players), agent.act_batch(boards, players)
    )
    assert loaded.config == agent.config
    assert loaded.act([1, 1, 0, -1, -1, 0, 0, 0, 0], 1) == 2  # completes the top row


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no AlphaZero checkpoint"):
        az.load_alphazero(tmp_path / "missing.msgpack")
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"\x00not msgpack at all")
    with pytest.raises(ValueError, match="not an AlphaZero checkpoint"):
        az.load_alphazero(bad)


def test_act_checks_the_position(agent, monkeypatch):
    calls = []
    real = az.check_position

    def spy(board, player):
        calls.append(player)
        return real(board, player)

    monkeypatch.setattr(az, "check_position", spy)
    with pytest.raises(ValueError, match="9 cells"):
        agent.act([0] * 8, 1)
    with pytest.raises(ValueError, match="game is over"):
        agent.act([1, 1, 1, -1, -1, 0, 0, 0, 0], -1)
    with pytest.raises(ValueError, match="cell 0"):
        agent.act([2, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    assert len(calls) == 3
    assert agent.act([1, -1, 1, 1, -1, -1, -1, 1, 0], 1) == 8  # one empty cell: no search
    with pytest.raises(ValueError, match=r"boards \[B, 9\]"):
        agent.act_batch(np.zeros((2, 8)), np.ones(2))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iterations", 0),
        ("games_per_iteration", -1),
        ("num_simulations", 1.5),
        ("sgd_steps", True),
        ("learning_rate", 0.0),
        ("weight_decay", -1.0),
        ("random_opening", 9),
        ("hidden_sizes", (0,)),
    ],
)
def test_config_errors(field, value):
    with pytest.raises(ValueError, match=field):
        az.AlphaZeroConfig(**{field: value})


def test_train_needs_a_config():
    with pytest.raises(TypeError, match="AlphaZeroConfig"):
        az.train_alphazero({"iterations": 1})
