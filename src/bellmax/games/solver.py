"""Tic-tac-toe solved exactly: every reachable position, its negamax value and optimal moves.

The game has 5,478 positions reachable from the empty board by legal play (terminal ones
included; `bellmax.envs.tictactoe.reachable_positions`). They are few enough to hold as tables:
`positions()` indexes them once (host-side numpy) and gives each one its board, the player to
move, whether it is terminal, its winner and its children (`child[s, a]`, the position after
the mover marks cell `a`). Everything else is backward induction over these tables, layer by
layer from the full boards back to the empty one, which is negamax with memoisation
(every position is evaluated once; Knuth and Moore 1975; Russell and Norvig section 5.2):

    value(s) = -1                          if the previous mover has three in a row
             = 0                           if the board is full
             = max_a -value(child(s, a))   otherwise (the mover's best move)

Values are from the point of view of the player to move: +1 a forced win, 0 a draw, -1 a
forced loss. The empty board's value is 0: tic-tac-toe is a draw with perfect play.

The same tables give exact outcome probabilities for any pair of stochastic policies
(`outcome_probabilities`; uniform random play gives X 58.49%, draw 12.70%, O 28.81%) and the
worst outcome a policy can be driven to over every line of its opponent's play
(`worst_case`), the exhaustive "never loses" check.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from bellmax.core.checks import check_int
from bellmax.core.display import summary_repr
from bellmax.envs.tictactoe import LINES, reachable_positions

__all__ = [
    "Positions",
    "Solution",
    "board_code",
    "check_player",
    "check_table",
    "outcome_probabilities",
    "positions",
    "solve",
    "uniform_policy",
    "worst_case",
]

_POW3 = 3 ** np.arange(9, dtype=np.int64)


def board_code(boards: Any) -> np.ndarray:
    """The base-3 code of boards: `sum((cell + 1) * 3**i)`, in 0..3**9-1.

    Args:
      boards: int [..., 9] of -1/0/1 (not checked; callers check user input).

    Returns:
      int64 [...].
    """
    return (np.asarray(boards, np.int64) + 1) @ _POW3


def check_player(value: Any, name: str = "player") -> int:
    """A player: 1 (X) or -1 (O).

    Raises:
      TypeError: not an int (bools included).
      ValueError: an int other than 1 and -1.
    """
    value = check_int(value, name)
    if value not in (1, -1):
        raise ValueError(f"{name} must be 1 (X) or -1 (O), got {value!r}.")
    return value


@dataclasses.dataclass(frozen=True)
class Positions:
    """The reachable positions of tic-tac-toe as tables (host-side numpy, read-only).

    Index `s` runs over the positions sorted by `board_code`; `s = start` is the empty board.
    """

    __repr__ = summary_repr

    boards: np.ndarray
    """int8 [N, 9]: the board of each position (N = 5,478)."""
    mover: np.ndarray
    """int8 [N]: the player to move, 1 (X) or -1 (O) (the mover's turn even if terminal)."""
    winner: np.ndarray
    """int8 [N]: 1 or -1 if that player has three in a row, else 0."""
    terminal: np.ndarray
    """bool [N]: won or full."""
    filled: np.ndarray
    """int8 [N]: the number of marks."""
    child: np.ndarray
    """int32 [N, 9]: the position after the mover marks the cell; -1 if illegal or terminal."""
    legal: np.ndarray
    """bool [N, 9]: the legal moves (empty cells of a non-terminal position)."""
    lookup: np.ndarray
    """int32 [3**9]: position index of each board code, -1 for unreachable boards."""
    start: int
    """The index of the empty board."""

    @property
    def count(self) -> int:
        """The number of positions (5,478)."""
        return int(self.boards.shape[0])

    def index(self, board: Any) -> int:
        """The index of one reachable board (9 cells); -1 if the board is not reachable."""
        return int(self.lookup[int(board_code(board))])


@functools.lru_cache(maxsize=1)
def positions() -> Positions:
    """Index the 5,478 reachable positions once (cached) and build their tables.

    Returns:
      A `Positions` whose arrays are read-only.
    """
    boards = np.array(sorted(reachable_positions(), key=lambda b: int(board_code(b))), np.int8)
    n = boards.shape[0]
    codes = board_code(boards)
    lookup = np.full(3**9, -1, np.int32)
    lookup[codes] = np.arange(n, dtype=np.int32)
    sums = boards.astype(np.int32)[:, LINES].sum(-1)  # [N, 8]
    winner = np.where((sums == 3).any(-1), 1, np.where((sums == -3).any(-1), -1, 0))
    filled = (boards != 0).sum(-1)
    terminal = (winner != 0) | (filled == 9)
    mover = np.where(boards.sum(-1) == 0, 1, -1)
    legal = (boards == 0) & ~terminal[:, None]
    # the code of the child adds (mover + 1) - 1 = mover at cell a: delta = mover * 3**a
    child_codes = codes[:, None] + mover[:, None].astype(np.int64) * _POW3[None, :]
    child = np.where(legal, lookup[np.where(legal, child_codes, 0)], -1).astype(np.int32)
    start = int(lookup[int(board_code(np.zeros(9)))])
    arrays = dict(
        boards=boards,
        mover=mover.astype(np.int8),
        winner=winner.astype(np.int8),
        terminal=terminal,
        filled=filled.astype(np.int8),
        child=child,
        legal=legal,
        lookup=lookup,
    )
    for a in arrays.values():
        a.setflags(write=False)
    return Positions(**arrays, start=start)


@dataclasses.dataclass(frozen=True)
class Solution:
    """The exact solution: values and optimal moves of every reachable position."""

    __repr__ = summary_repr

    value: np.ndarray
    """float64 [N]: negamax value for the player to move (+1 win, 0 draw, -1 loss)."""
    move_value: np.ndarray
    """float64 [N, 9]: value of each legal move for the mover (`-value(child)`), NaN if illegal."""
    optimal: np.ndarray
    """bool [N, 9]: the legal moves that reach `value` (all False at terminal positions)."""

    @property
    def game_value(self) -> float:
        """The value of the empty board for X: 0, a draw."""
        return float(self.value[positions().start])


def _layers(pos: Positions) -> list[np.ndarray]:
    """Non-terminal position indices grouped by number of marks, fullest first."""
    return [np.flatnonzero((pos.filled == k) & ~pos.terminal) for k in range(8, -1, -1)]


@functools.lru_cache(maxsize=1)
def solve() -> Solution:
    """Solve tic-tac-toe by negamax with memoisation (backward induction over the positions).

    Russell and Norvig, Artificial Intelligence, section 5.2 (minimax); Sutton and Barto
    section 1.5 (tic-tac-toe). Cached: the arrays are read-only.

    Returns:
      A `Solution`; `solve().game_value == 0`.
    """
    pos = positions()
    value = np.where(pos.winner != 0, -1.0, 0.0)  # terminal: the previous mover won, or a draw
    move_value = np.full((pos.count, 9), np.nan)
    for layer in _layers(pos):
        legal = pos.legal[layer]
        mv = np.where(legal, 0.0 - value[np.maximum(pos.child[layer], 0)], np.nan)
        move_value[layer] = mv
        value[layer] = np.nanmax(mv, axis=1)
    optimal = np.zeros((pos.count, 9), bool)
    live = ~pos.terminal
    optimal[live] = pos.legal[live] & (move_value[live] == value[live, None])
    for a in (value, move_value, optimal):
        a.setflags(write=False)
    return Solution(value=value, move_value=move_value, optimal=optimal)


def uniform_policy(mask: np.ndarray) -> np.ndarray:
    """Uniform distributions over the True cells of each row (all-zero rows stay zero).

    Args:
      mask: bool [N, 9].

    Returns:
      float64 [N, 9], rows summing to 1 where the mask has a True cell.
    """
    mask = np.asarray(mask, bool)
    n = mask.sum(-1, keepdims=True)
    return np.where(mask, 1.0 / np.maximum(n, 1), 0.0)


def check_table(table: Any, name: str, what: str, *, dtype: Any = np.float64) -> np.ndarray:
    """`table` as a `dtype` [N, 9] array: a row per reachable position, a column per cell.

    Args:
      table: array-like, rows indexed like `positions()`.
      name: the argument's name, for the message.
      what: what the entries are (e.g. "move probabilities"), for the message.
      dtype: the dtype to convert to.

    Raises:
      ValueError: the shape is not [N, 9] (N = 5,478).
    """
    count = positions().count
    out = np.asarray(table, dtype)
    if out.shape != (count, 9):
        raise ValueError(
            f"{name} must be a [{count}, 9] table of {what} (a row per reachable position, "
            f"indexed like positions()), got shape {out.shape}."
        )
    return out


def _check_policy(policy: Any, name: str) -> np.ndarray:
    pos = positions()
    p = check_table(policy, name, "move probabilities")
    live = ~pos.terminal
    if np.any(p[~pos.legal] > 0):
        raise ValueError(f"{name} puts probability on illegal moves; zero them out.")
    if not np.allclose(p[live].sum(-1), 1.0, atol=1e-6):
        raise ValueError(
            f"{name}'s rows must sum to 1 at every non-terminal position; normalise them."
        )
    return p


def outcome_probabilities(
    x_policy: Any | None = None, o_policy: Any | None = None
) -> dict[str, float]:
    """Exact outcome probabilities of a game between two stochastic policies.

    Backward induction over the positions: the outcome distribution of a position is the
    policy-weighted mix of its children's (the tree recursion, memoised).

    Args:
      x_policy: float [N, 9] move probabilities of X at each position (rows indexed like
        `positions()`; only rows where X moves are read); None for uniform random play.
      o_policy: the same for O.

    Returns:
      `{"x_wins", "draw", "o_wins"}` from the empty board. Uniform random play for both
      gives 0.5849, 0.1270, 0.2881.
    """
    pos = positions()
    rand = uniform_policy(pos.legal)
    px = rand if x_policy is None else _check_policy(x_policy, "x_policy")
    po = rand if o_policy is None else _check_policy(o_policy, "o_policy")
    policy = np.where((pos.mover == 1)[:, None], px, po)
    out = np.zeros((pos.count, 3))  # P(X wins), P(draw), P(O wins)
    out[:, 0] = pos.winner == 1
    out[:, 2] = pos.winner == -1
    out[:, 1] = pos.terminal & (pos.winner == 0)
    for layer in _layers(pos):
        kids = out[np.maximum(pos.child[layer], 0)]  # [L, 9, 3]
        out[layer] = np.einsum("la,lak->lk", policy[layer], kids)
    x, d, o = out[pos.start].tolist()
    return {"x_wins": x, "draw": d, "o_wins": o}


def worst_case(support: Any, as_player: int) -> int:
    """The worst result a policy can be driven to, over every line of its opponent's play.

    Exhaustive: at the policy's turns every move it may choose (`support`) is followed, at the
    opponent's turns every legal move. A stochastic agent never loses, whatever its random
    choices and whatever its opponent does, exactly when this is >= 0.

    Args:
      support: bool [N, 9], the moves the policy may play at each position (rows indexed like
        `positions()`; at least one legal move where `as_player` moves).
      as_player: 1 (the policy plays X) or -1 (O).

    Returns:
      1 (wins every line), 0 (at worst a draw) or -1 (some line loses), for the policy.
    """
    as_player = check_player(as_player, "as_player")
    pos = positions()
    sup = check_table(support, "support", "allowed moves", dtype=bool)
    mine = (pos.mover == as_player) & ~pos.terminal
    sup = sup & pos.legal
    if np.any(~sup[mine].any(-1)):
        raise ValueError(
            "support has no legal move at some position where the policy moves; "
            "give every such row at least one legal move."
        )
    result = (pos.winner * as_player).astype(np.int64)  # terminal: +1 we won, -1 we lost
    for layer in _layers(pos):
        kids = result[np.maximum(pos.child[layer], 0)]  # [L, 9]
        allowed = np.where(mine[layer, None], sup[layer], pos.legal[layer])
        result[layer] = np.where(allowed, kids, 2).min(-1)
    return int(result[pos.start])
