"""Tic-tac-toe as a two-player environment in the gymnax API (Sutton & Barto section 1.5).

Board: an int8 vector of 9 cells, numbered row by row,

     0 | 1 | 2
    ---+---+---
     3 | 4 | 5
    ---+---+---
     6 | 7 | 8

holding 0 (empty), 1 (X) or -1 (O). X moves first. The state also keeps the `player` to move
(1 or -1), the `winner` (1, -1, or 0 for none yet or a draw), `done` and the ply count `time`.

Observation: `board * player` as float32 [9], the board from the mover's point of view
(+1 the mover's marks, -1 the opponent's). One flat array keeps the gymnax/Gymnasium
interface (a `Box` space that wrappers, replay buffers and MLPs take as is), and the flip
lets one network play both sides (the "canonical board" of AlphaZero-style self-play). The
legal-action mask is not packed into the observation, because it is a function of it
(`obs == 0`) and packing would change the shape every consumer sees; it comes from
`legal_action_mask(state)` and `info["legal_mask"]` instead. Under `AutoReset`, `info`
describes the finished game while the returned state is the new one: take the mask from
`legal_action_mask(state)` there.

Action: `Discrete(9)`, the cell to mark. Reward: from the point of view of the player who just
moved: +1 for a winning move, 0 for a draw or a game still going. A move onto an occupied
cell loses on the spot: reward -1 to the mover, the game terminates and the opponent is the
winner (the gymnax/pgx convention, so learners see the rule rather than a silent no-op). A
cell outside 0..8 is refused with `ValueError` (a float or bool cell with `TypeError`) when
the action is concrete, and loses like an occupied cell under `jit`. Stepping a finished game changes nothing: same state, reward 0,
terminated true (the env never resets by itself; use `AutoReset`).

The pure helpers (`winner`, `legal_actions`, `apply_move`, `is_full`) are jittable and
accept any board; the host helpers (`render_text`, `reachable_positions`,
`random_play_outcome_probabilities`) use numpy and Python.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.envs import spaces
from bellmax.envs._checks import check_discrete_action, concrete_or_none, episode_limit
from bellmax.envs.environment import Environment, EnvParams, EnvState

#: The 8 winning lines: 3 rows, 3 columns, 2 diagonals.
LINES = np.array(
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]],
    dtype=np.int32,
)

PLAYER_X, PLAYER_O = 1, -1
"""The marks (and `player` values) of X, who moves first, and O."""


# ---------------------------------------------------------------------- board checks
def _check_board(board: Any, fn: str) -> None:
    """Raise if `board` does not end in 9 cells, or a concrete board holds other than -1/0/1."""
    shape = np.shape(board)
    if len(shape) == 0 or shape[-1] != 9:
        raise ValueError(
            f"{fn} needs a board of 9 cells (shape [..., 9], cells 0-8 row by row), "
            f"got shape {shape}."
        )
    b = concrete_or_none(board)
    if b is not None:
        if not np.issubdtype(b.dtype, np.number):
            raise ValueError(f"{fn} needs a numeric board of -1/0/1, got dtype {b.dtype}.")
        bad = ~np.isin(b, (-1, 0, 1))
        if np.any(bad):
            idx = np.argwhere(bad)[0]
            raise ValueError(
                f"{fn}: board cells must be -1 (O), 0 (empty) or 1 (X), got {b[tuple(idx)]!r} "
                f"at index {tuple(int(i) for i in idx)}."
            )


def _check_player(player: Any, fn: str) -> None:
    p = concrete_or_none(player)
    if p is not None and (p.shape != () or p not in (-1, 1)):
        raise ValueError(f"{fn}: player must be 1 (X) or -1 (O), got {player!r}.")


# ---------------------------------------------------------------------- pure helpers
def winner(board: jax.Array) -> jax.Array:
    """The player with three in a row: 1 (X), -1 (O), or 0 (nobody).

    On impossible boards where both have a line, X is reported.

    Args:
      board: int [..., 9], cells -1/0/1 row by row.

    Returns:
      int32 [...].
    """
    _check_board(board, "winner")
    sums = jnp.sum(jnp.asarray(board, jnp.int32)[..., LINES], axis=-1)  # [..., 8]
    x_wins = jnp.any(sums == 3, axis=-1)
    o_wins = jnp.any(sums == -3, axis=-1)
    return jnp.where(x_wins, PLAYER_X, jnp.where(o_wins, PLAYER_O, 0)).astype(jnp.int32)


def legal_actions(board: jax.Array) -> jax.Array:
    """The mask of empty cells (the legal moves, if the game is not over).

    Args:
      board: int [..., 9].

    Returns:
      bool [..., 9].
    """
    _check_board(board, "legal_actions")
    return jnp.asarray(board) == 0


def is_full(board: jax.Array) -> jax.Array:
    """Whether no cell is empty.

    Args:
      board: int [..., 9].

    Returns:
      bool [...].
    """
    _check_board(board, "is_full")
    return jnp.all(jnp.asarray(board) != 0, axis=-1)


def apply_move(board: jax.Array, cell: jax.Array, player: jax.Array) -> jax.Array:
    """The board with `player`'s mark in `cell` (legality is not checked: see the env).

    Args:
      board: int [9].
      cell: int in 0..8 (concrete values are checked; traced ones outside 0..8 leave the
        board unchanged).
      player: 1 (X) or -1 (O).

    Returns:
      The new board, same dtype as `board`.
    """
    _check_board(board, "apply_move")
    if np.ndim(board) != 1:
        raise ValueError(
            f"apply_move takes one board of shape [9], got shape {np.shape(board)}; "
            "use jax.vmap for a batch."
        )
    check_discrete_action(cell, 9, "apply_move", what="cell")
    _check_player(player, "apply_move")
    board = jnp.asarray(board)
    return board.at[cell].set(jnp.asarray(player, board.dtype), mode="drop")


# ---------------------------------------------------------------------- the environment
@struct.dataclass
class TicTacToeParams(EnvParams):
    """Tic-tac-toe has no physical constants; only the time limit."""

    max_steps_in_episode: int = episode_limit(10)
    """Plies until truncation. A game lasts at most 9, so the default never truncates."""


@struct.dataclass
class TicTacToeState(EnvState):
    """Board int8 [9], the player to move, the winner, whether the game is over, the ply."""

    board: jax.Array
    player: jax.Array
    winner: jax.Array
    done: jax.Array
    time: jax.Array


class TicTacToe(Environment[TicTacToeState, TicTacToeParams]):
    """Two-player tic-tac-toe; see the module docstring for the observation and reward rules.

    `step` returns `(obs, state, reward, terminated, truncated, info)`; `info` has
    `legal_mask` (for the next mover), `winner` and `illegal_move`.
    """

    params_type = TicTacToeParams
    env_id = "TicTacToe-v0"
    num_players = 2

    def reset_env(self, key: jax.Array, params: TicTacToeParams):
        state = TicTacToeState(
            board=jnp.zeros((9,), jnp.int8),
            player=jnp.asarray(PLAYER_X, jnp.int32),
            winner=jnp.asarray(0, jnp.int32),
            done=jnp.asarray(False),
            time=jnp.asarray(0, jnp.int32),
        )
        return self.get_obs(state), state

    def step_env(self, key: jax.Array, state: TicTacToeState, action: Any, params):
        cell = jnp.asarray(action, jnp.int32)
        in_range = (cell >= 0) & (cell < 9)
        empty = jnp.take(state.board, jnp.clip(cell, 0, 8)) == 0
        legal = in_range & empty
        mover = state.player
        board = jnp.where(
            legal, state.board.at[cell].set(mover.astype(jnp.int8), mode="drop"), state.board
        )
        line = winner(board)
        won = line == mover
        terminated = ~legal | won | is_full(board)
        new_winner = jnp.where(legal, line, -mover).astype(jnp.int32)
        reward = jnp.where(legal, jnp.where(won, 1.0, 0.0), -1.0).astype(jnp.float32)
        played = TicTacToeState(
            board=board, player=-mover, winner=new_winner, done=terminated, time=state.time + 1
        )
        # a finished game is left as it is
        over = state.done
        new_state = jax.tree.map(lambda old, new: jnp.where(over, old, new), state, played)
        reward = jnp.where(over, 0.0, reward).astype(jnp.float32)
        info = {
            "legal_mask": self.legal_action_mask(new_state),
            "winner": new_state.winner,
            "illegal_move": ~over & ~legal,
        }
        return self.get_obs(new_state), new_state, reward, new_state.done, info

    def get_obs(self, state: TicTacToeState) -> jax.Array:
        """The board from the mover's point of view: `board * player`, float32 [9]."""
        return (state.board * state.player).astype(jnp.float32)

    def legal_action_mask(self, state: TicTacToeState) -> jax.Array:
        """bool [9]: the empty cells, or all False once the game is over.

        An all-False mask happens only when `state.done`; do not normalise a policy over it.
        """
        return (state.board == 0) & ~state.done

    def action_space(self, params: TicTacToeParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(9)

    def observation_space(self, params: TicTacToeParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (9,), jnp.float32)


# ---------------------------------------------------------------------- host helpers
def _host_board(board: Any, fn: str) -> tuple[int, ...]:
    """`board` as a tuple of 9 Python ints after checking it."""
    b = np.asarray(board)
    if b.shape != (9,):
        raise ValueError(
            f"{fn} needs one board of 9 cells (shape [9], cells 0-8 row by row), "
            f"got shape {b.shape}."
        )
    _check_board(b, fn)
    return tuple(int(v) for v in b)


def render_text(board: Any) -> str:
    """Draw a board as text: X and O for marks, the cell number (= action) for empty cells.

    Args:
      board: 9 cells (-1/0/1), any array-like; host-side only.

    Returns:
      A 5-line string, e.g. ` X | 1 | O` / `---+---+---` / ...
    """
    cells = _host_board(board, "render_text")
    marks = [{PLAYER_X: "X", PLAYER_O: "O"}.get(v, str(i)) for i, v in enumerate(cells)]
    rows = [" " + " | ".join(marks[r * 3 : r * 3 + 3]) for r in range(3)]
    return "\n---+---+---\n".join(rows)


def _host_winner(cells: tuple[int, ...]) -> int:
    for a, b, c in LINES:
        s = cells[a] + cells[b] + cells[c]
        if s == 3:
            return PLAYER_X
        if s == -3:
            return PLAYER_O
    return 0


def _to_move(cells: tuple[int, ...]) -> int:
    """X moves when the counts are equal, O when X has one more."""
    return PLAYER_X if sum(cells) == 0 else PLAYER_O


@functools.lru_cache(maxsize=1)
def reachable_positions() -> frozenset[tuple[int, ...]]:
    """Every position reachable by legal play from the empty board, terminal ones included.

    There are 5,478 (with the empty board); play stops at a win or a full board.

    Returns:
      A frozenset of 9-tuples of -1/0/1 (cells row by row). Computed once, then cached.
    """
    start = (0,) * 9
    seen = {start}
    stack = [start]
    while stack:
        cells = stack.pop()
        if _host_winner(cells) != 0 or 0 not in cells:
            continue
        p = _to_move(cells)
        for i in range(9):
            if cells[i] == 0:
                nxt = (*cells[:i], p, *cells[i + 1 :])
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    return frozenset(seen)


def random_play_outcome_probabilities(board: Any = None) -> dict[str, float]:
    """Exact outcome probabilities when both players pick uniformly among empty cells.

    From the empty board: X wins 0.5849, draw 0.1270, O wins 0.2881 (computed, not tabled).

    Args:
      board: the position to start from (default the empty board); the mover is X when the
        counts of X and O are equal, else O.

    Returns:
      `{"x_wins": ..., "draw": ..., "o_wins": ...}`, summing to 1.
    """
    cells = (0,) * 9 if board is None else _host_board(board, "random_play_outcome_probabilities")
    n_x, n_o = cells.count(PLAYER_X), cells.count(PLAYER_O)
    if n_x - n_o not in (0, 1):
        raise ValueError(
            f"random_play_outcome_probabilities: X moves first, so X must have as many marks as "
            f"O or one more; got {n_x} X and {n_o} O."
        )
    px, pd, po = _outcome_probabilities(cells)
    return {"x_wins": px, "draw": pd, "o_wins": po}


@functools.cache
def _outcome_probabilities(cells: tuple[int, ...]) -> tuple[float, float, float]:
    w = _host_winner(cells)
    if w == PLAYER_X:
        return 1.0, 0.0, 0.0
    if w == PLAYER_O:
        return 0.0, 0.0, 1.0
    empty = [i for i in range(9) if cells[i] == 0]
    if not empty:
        return 0.0, 1.0, 0.0
    p = _to_move(cells)
    total = np.zeros(3)
    for i in empty:
        total += _outcome_probabilities((*cells[:i], p, *cells[i + 1 :]))
    px, pd, po = (total / len(empty)).tolist()
    return px, pd, po
