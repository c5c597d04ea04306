"""Imitation on tic-tac-toe: the learner plays a random opponent; "never loses", checked exactly.

`TicTacToeVsRandom` is a host vector environment (the `reset`/`step` of
`bellmax.envs.gymnasium.HostVectorEnv`) in which the learner plays X in even episodes and O
in odd ones against a uniformly random opponent; its observation is `TicTacToe-v0`'s (the
board times the player to move: +1 the learner's marks), its action the cell. A move onto
an occupied cell loses. Rollouts against a random opponent reach, with positive probability,
every position the learner's own policy can meet, which is what DAgger needs to label.

`worst_outcome(act)` is the exhaustive check: the learner's greedy move at every position
(as X and as O), followed against every line of the opponent's play
(`bellmax.games.solver.worst_case`); a greedy move onto an occupied cell at a position the
learner can reach counts as a loss. 0 means it never loses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bellmax.envs import spaces

__all__ = ["TicTacToeVsRandom", "make_tictactoe_env", "reachable_under", "worst_outcome"]

_LINES = np.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]]
)


def _winner(board: np.ndarray) -> int:
    s = board[_LINES].sum(-1)
    return 1 if (s == 3).any() else (-1 if (s == -3).any() else 0)


class TicTacToeVsRandom:
    """`num_envs` games of the learner against a uniformly random opponent (host side)."""

    def __init__(self, num_envs: int = 1, seed: int = 0):
        self.num_envs = int(num_envs)
        self.observation_space = spaces.Box(-1.0, 1.0, (9,), np.float32)
        self.action_space = spaces.Discrete(9)
        self._rng = np.random.default_rng(seed)
        self._boards = np.zeros((self.num_envs, 9), np.int64)
        self._me = np.ones(self.num_envs, np.int64)
        self._episodes = np.zeros(self.num_envs, np.int64)
        self.seed = seed

    def __repr__(self) -> str:
        return f"TicTacToeVsRandom(num_envs={self.num_envs})"

    def _opponent_move(self, i: int) -> None:
        empty = np.flatnonzero(self._boards[i] == 0)
        self._boards[i, self._rng.choice(empty)] = -self._me[i]

    def _start(self, i: int) -> None:
        self._boards[i] = 0
        self._me[i] = 1 if self._episodes[i] % 2 == 0 else -1
        if self._me[i] == -1:
            self._opponent_move(i)

    def _obs(self) -> np.ndarray:
        return (self._boards * self._me[:, None]).astype(np.float32)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start every game (the learner is X in game 0). Returns the observations."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._episodes[:] = np.arange(self.num_envs)
        for i in range(self.num_envs):
            self._start(i)
        return self._obs()

    def step(self, actions: Any):
        """The learner marks `actions[i]`, then (if the game goes on) the opponent moves."""
        actions = np.asarray(actions).reshape(self.num_envs)
        reward = np.zeros(self.num_envs, np.float32)
        done = np.zeros(self.num_envs, bool)
        for i, a in enumerate(actions):
            b, me = self._boards[i], self._me[i]
            if not (0 <= a < 9) or b[a] != 0:
                reward[i], done[i] = -1.0, True
                continue
            b[a] = me
            if _winner(b) == me:
                reward[i], done[i] = 1.0, True
                continue
            if (b != 0).all():
                done[i] = True
                continue
            self._opponent_move(i)
            if _winner(b) == -me:
                reward[i], done[i] = -1.0, True
            elif (b != 0).all():
                done[i] = True
        final = self._obs()
        for i in np.flatnonzero(done):
            self._episodes[i] += self.num_envs
            self._start(i)
        info = {
            "final_observation": final,
            "episode_return": reward.copy(),
            "returned_episode": done.copy(),
        }
        return self._obs(), reward, done, np.zeros(self.num_envs, bool), info

    def close(self) -> None:
        """Nothing to release."""


def make_tictactoe_env(*, num_envs: int = 1, seed: int = 0) -> TicTacToeVsRandom:
    """`TicTacToeVsRandom(num_envs, seed)`: `imitate`'s `make_env` for `TicTacToe-v0`."""
    return TicTacToeVsRandom(num_envs, seed)


def _canonical(pos: Any) -> np.ndarray:
    """Every position's board from its mover's point of view (float32 [N, 9])."""
    return (pos.boards.astype(np.int64) * pos.mover.astype(np.int64)[:, None]).astype(np.float32)


def reachable_under(moves: np.ndarray, as_player: int) -> np.ndarray:
    """bool [N]: the positions a player choosing `moves[s]` (one cell per position) can meet,
    over every line of its opponent's play (an illegal move ends the line)."""
    from bellmax.games.solver import positions

    pos = positions()
    reach = np.zeros(pos.count, bool)
    reach[pos.start] = True
    for k in range(9):  # layers by number of marks, emptiest first
        layer = np.flatnonzero((pos.filled == k) & reach & ~pos.terminal)
        for s in layer:
            if pos.mover[s] == as_player:
                c = pos.child[s, moves[s]] if pos.legal[s, moves[s]] else -1
                if c >= 0:
                    reach[c] = True
            else:
                kids = pos.child[s][pos.legal[s]]
                reach[kids] = True
    return reach


def worst_outcome(act: Callable[[np.ndarray], np.ndarray]) -> int:
    """The learner's worst result over every opponent line, as X and as O: 1, 0 or -1.

    Args:
      act: greedy `obs [N, 9] -> cells [N]` on `TicTacToe-v0` observations (called once,
        on every unfinished reachable position).

    Returns:
      min over both sides of `bellmax.games.solver.worst_case`; -1 also when the learner
      would mark an occupied cell at a position it can reach.
    """
    from bellmax.games.solver import positions, worst_case

    pos = positions()
    live = np.flatnonzero(~pos.terminal)
    moves = np.zeros(pos.count, np.int64)  # finished positions have no move to choose
    moves[live] = np.asarray(act(_canonical(pos)[live])).astype(np.int64).reshape(len(live))
    moves = np.clip(moves, 0, 8)
    worst = 1
    for side in (1, -1):
        reach = reachable_under(moves, side)
        mine = (pos.mover == side) & ~pos.terminal
        legal_move = pos.legal[np.arange(pos.count), moves]
        if (mine & reach & ~legal_move).any():
            return -1
        support = np.zeros((pos.count, 9), bool)
        support[np.arange(pos.count), moves] = True
        support = np.where((mine & ~legal_move)[:, None], pos.legal, support)
        worst = min(worst, worst_case(support, side))
    return worst
