"""Tic-tac-toe: DAgger with the perfect expert learns a network that never loses.

Learning test (self-verifying): each round's evaluation is the exhaustive worst outcome of the
network's greedy moves over every line of the opponent's play, as X and as O
(`worst_outcome`, built on `bellmax.games.solver.worst_case`); DAgger runs until it is 0 (it
never loses), capped at 15 rounds and 3,000 labels. The opponent of the rollouts is uniformly
random, so every position the learner's own policy can meet is visited with positive
probability. The exact checks of `worst_outcome` itself come first.
"""

from __future__ import annotations

import numpy as np
import pytest

from bellmax.envs import spaces
from bellmax.imitation import (
    BCConfig,
    ImitationConfig,
    TicTacToeVsRandom,
    act,
    imitate,
    make_tictactoe_env,
    perfect_expert,
    worst_outcome,
)

OBS, ACT = spaces.Box(-1.0, 1.0, (9,), np.float32), spaces.Discrete(9)


def test_worst_outcome_is_exact_on_known_policies():
    assert worst_outcome(perfect_expert()) == 0  # perfect play draws at worst

    def first_empty(obs):
        return np.argmax(obs == 0, axis=-1)

    assert worst_outcome(first_empty) == -1  # O wins by taking the diagonal

    def occupied(obs):
        return np.argmax(obs != 0, axis=-1)  # X's first move is on an empty board: cell 0

    assert worst_outcome(occupied) == -1  # then it marks an occupied cell: a loss


def test_the_random_opponent_environment():
    env = TicTacToeVsRandom(2, seed=0)
    obs = env.reset(seed=0)
    assert obs[0].tolist() == [0.0] * 9  # game 0: the learner is X, nothing played
    assert np.abs(obs[1]).sum() == 1 and obs[1].sum() == -1  # game 1: O, after X's move
    cell = int(np.flatnonzero(obs[1] != 0)[0])
    _, reward, term, _, info = env.step(np.array([4, cell]))
    assert reward[1] == -1.0 and term[1] and info["returned_episode"][1]  # occupied: a loss
    assert not term[0] and (info["final_observation"][0] != 0).sum() == 2


def test_dagger_with_the_perfect_expert_never_loses():
    config = ImitationConfig(
        algorithm="dagger",
        labels=3000,
        rounds=15,
        labels_per_round=200,
        steps_per_round=2000,
        target_return=0.0,
        bc=BCConfig(hidden_sizes=(128, 128), steps=2000),
    )

    def score(params):
        return worst_outcome(lambda o: act(params, o, config.bc, OBS, ACT))

    res = imitate(
        "TicTacToe-v0",
        perfect_expert(),
        config,
        seed=0,
        make_env=make_tictactoe_env,
        evaluate_fn=score,
    )
    assert res.final_eval_return == 0.0, [r.eval_return for r in res.rounds]
    assert score(res.params) == 0  # the exhaustive check, as X and as O
    assert res.labels_used <= 3000
    assert len(np.unique(res.dataset.obs, axis=0)) == res.labels_used  # each state asked once


@pytest.mark.parametrize("side", [0, 1])
def test_every_label_is_the_first_optimal_move(side):
    from bellmax.games.solver import positions, solve

    pos, sol = positions(), solve()
    live = np.flatnonzero(~pos.terminal & (pos.mover == (1, -1)[side]))
    obs = (pos.boards[live] * pos.mover[live, None]).astype(np.float32)
    moves = perfect_expert()(obs)
    assert sol.optimal[live, moves].all()
