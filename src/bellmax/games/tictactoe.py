"""Tic-tac-toe agents behind one contract, and the helpers that pit them against each other.

`make_agent(kind, **options)` returns an agent; `agent.act(board, player) -> int` takes the
board as 9 ints (0 empty, 1 X, -1 O; cells 0-8 row by row) and the player to move (1 X, -1 O)
and returns the cell to mark. Kinds:

- `random`: a uniformly random legal move.
- `perfect`: uniformly at random among the optimal moves of the exact solution
  (`bellmax.games.solver.solve`); never loses.
- `naive-mc`: the notes' experiment, random self-play keeping the winners' moves
  (`bellmax.games.selfplay.train_naive_mc`); beats random, loses to perfect play.
- `td`: TD(0) on afterstate values by self-play (Sutton and Barto 1.5).
- `q-learning`: Q-learning self-play with negamax targets.

Trained kinds train on demand with a stated budget (`games=` or `episodes=`, seconds on one
core) or load a table saved by `agent.save(path)` (`checkpoint=path`, a `.npz` of plain
arrays read without pickle). Every kind takes `seed=` for its random choices. More kinds
(MCTS, AlphaZero-style) join with `register_agent(kind, factory)`.

An agent's random choices come from its own seeded generator, or from `rng=` (a
`numpy.random.Generator`) when a caller passes one, as `play_game` and `arena` do so that
a seed fixes a whole match. A new agent kind should accept `rng=` the same way (a JAX agent
can draw its key from it: `jax.random.key(rng.integers(2**31))`).

These helpers are host-side Python: a game is 9 moves at most.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from bellmax.core.checks import check_int
from bellmax.core.errors import unknown_name
from bellmax.core.io import atomic_open
from bellmax.envs.tictactoe import LINES
from bellmax.games.selfplay import (
    NaiveMCConfig,
    QLearningConfig,
    SelfPlayResult,
    TDConfig,
    train_naive_mc,
    train_q_learning,
    train_td,
)
from bellmax.games.solver import (
    board_code,
    check_player,
    check_table,
    outcome_probabilities,
    positions,
    solve,
    uniform_policy,
)

__all__ = [
    "AGENT_FACTORIES",
    "Agent",
    "TableAgent",
    "agent_kinds",
    "arena",
    "check_position",
    "check_positions",
    "exact_outcomes",
    "lines_of_play",
    "load_agent",
    "make_agent",
    "play_game",
    "register_agent",
    "winner_of",
]

_MARK = {1: "X", -1: "O"}


@runtime_checkable
class Agent(Protocol):
    """What every tic-tac-toe agent provides."""

    kind: str
    """The registry name it was made under."""

    def act(self, board: Any, player: int, *, rng: np.random.Generator | None = None) -> int:
        """The cell (0-8) to mark on `board` for `player` (1 X, -1 O)."""
        ...


# ---------------------------------------------------------------------- input checks
def winner_of(cells: Sequence[int]) -> int:
    """The player with three in a row on a board of 9 cells: 1 (X), -1 (O) or 0 (none).

    Host-side Python on plain ints (not checked: callers check user input first).
    """
    for a, b, c in LINES:
        s = cells[a] + cells[b] + cells[c]
        if s in (3, -3):
            return s // 3
    return 0


def check_position(board: Any, player: Any) -> list[int]:
    """Check a position given to `act` and return its cells as Python ints.

    Args:
      board: 9 cells, 0 empty, 1 X, -1 O, row by row.
      player: the player to move, 1 (X) or -1 (O).

    Returns:
      The 9 cells as a list of ints.

    Raises:
      ValueError: the board is not 9 cells of -1/0/1, the player is not 1 or -1, the counts
        of X and O are impossible, the player is not the one to move on this board, or the
        game is already over.
    """
    try:
        arr = np.asarray(board)
    except Exception as e:  # ragged nested lists and the like
        raise ValueError(
            f"board must be 9 cells (0 empty, 1 X, -1 O, row by row), got {board!r}."
        ) from e
    if arr.shape != (9,):
        raise ValueError(
            f"board must be 9 cells (0 empty, 1 X, -1 O, row by row), got shape {arr.shape}; "
            "pass a flat list such as [0, 0, 0, 0, 1, 0, 0, 0, 0]."
        )
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"board cells must be the numbers -1, 0 or 1, got dtype {arr.dtype}.")
    bad = np.flatnonzero((arr != -1) & (arr != 0) & (arr != 1))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"board cell {i} is {arr[i].item()!r}; cells must be 0 (empty), 1 (X) or -1 (O)."
        )
    if isinstance(player, bool | np.bool_) or player not in (1, -1):
        raise ValueError(f"player must be 1 (X) or -1 (O), got {player!r}.")
    cells = [int(v) for v in arr]
    nx, no = cells.count(1), cells.count(-1)
    if nx - no not in (0, 1):
        raise ValueError(
            f"impossible board: X moves first, so X has as many marks as O or one more; "
            f"got {nx} X and {no} O."
        )
    w = winner_of(cells)
    if w:
        raise ValueError(
            f"the game is over: {_MARK[w]} has three in a row; start a new game "
            "(an empty board) instead of asking for a move."
        )
    if nx + no == 9:
        raise ValueError("the game is over: the board is full (a draw); start a new game.")
    to_move = 1 if nx == no else -1
    if int(player) != to_move:
        raise ValueError(
            f"it is {_MARK[to_move]}'s turn on this board ({nx} X, {no} O), got "
            f"player={int(player)}; pass player={to_move}."
        )
    return cells


def check_positions(boards: Any, players: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check a batch of positions for `act_batch` at once: each as `check_position` does.

    Args:
      boards: int [B, 9] boards (0 empty, 1 X, -1 O).
      players: int [B], the player to move on each board.

    Returns:
      `(boards, players)` as int64 arrays.

    Raises:
      ValueError: the shapes are wrong, or a board fails `check_position` (its message, with
        the index of the first bad board).
    """
    b, p = np.asarray(boards), np.asarray(players)
    if b.ndim != 2 or b.shape[-1] != 9 or p.shape != b.shape[:1]:
        raise ValueError(
            f"act_batch needs boards [B, 9] and players [B], got shapes {b.shape} and "
            f"{p.shape}; use act(board, player) for one position."
        )
    ok = np.zeros(len(b), bool)
    if np.issubdtype(b.dtype, np.integer) and np.issubdtype(p.dtype, np.integer):
        nx, no = np.sum(b == 1, -1), np.sum(b == -1, -1)
        lines = b[:, LINES].sum(-1) if len(b) else np.zeros((0, 8), np.int64)
        ok = (
            np.all((b >= -1) & (b <= 1), -1)
            & (p == np.where(nx == no, 1, -1))
            & (nx - no >= 0)
            & (nx - no <= 1)
            & (nx + no < 9)
            & ~np.any(np.abs(lines) == 3, -1)
        )
    for i in np.flatnonzero(~ok):  # the precise message, from the one-position check
        try:
            check_position(b[i], p[i].item())
        except ValueError as e:
            raise ValueError(f"board {i} of the batch: {e}") from None
    return b.astype(np.int64), p.astype(np.int64)


# ---------------------------------------------------------------------- table agents
class TableAgent:
    """An agent that plays the best-scoring legal move of a table, ties uniformly at random.

    `scores [N, 9]` has a row per reachable position (`bellmax.games.solver.positions`).
    Random play is the all-zero table (every legal move ties); perfect play scores each move
    by its exact value; the learners score moves by what they learned.
    """

    def __init__(
        self,
        kind: str,
        scores: Any,
        *,
        seed: int = 0,
        meta: dict[str, Any] | None = None,
    ) -> None:
        pos = positions()
        s = check_table(scores, "scores", "move scores")
        legal = np.where(pos.legal, s, -np.inf)
        if np.any(np.isnan(legal)):
            raise ValueError("scores has NaN on a legal move; give every legal move a number.")
        self.kind = kind
        self.scores = s
        self.meta = dict(meta or {})
        self.seed = seed
        best = legal.max(-1, keepdims=True)
        support = pos.legal & (legal >= best - 1e-9)
        support.setflags(write=False)
        self.support = support
        """bool [N, 9]: the moves the agent may play at each position."""
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"TableAgent(kind={self.kind!r}, seed={self.seed})"

    def policy(self) -> np.ndarray:
        """float64 [N, 9]: the agent's exact move probabilities at each position."""
        return uniform_policy(self.support)

    def act(self, board: Any, player: int, *, rng: np.random.Generator | None = None) -> int:
        """The cell to mark for `player` on `board` (see the module docstring).

        Args:
          board: 9 cells, 0 empty, 1 X, -1 O, row by row.
          player: 1 (X) or -1 (O), the player to move.
          rng: where to draw the tie-break from (default: the agent's own seeded generator).

        Returns:
          A cell 0-8 that is empty on `board`.
        """
        cells = check_position(board, player)
        s = positions().index(cells)
        choices = np.flatnonzero(self.support[s])
        if choices.size == 1:
            return int(choices[0])
        return int((rng if rng is not None else self._rng).choice(choices))

    def act_batch(self, boards: Any, players: Any, *, key: jax.Array) -> np.ndarray:
        """The cells to mark on many positions at once (`arena` plays a ply of all its games
        in one call), each chosen as `act` chooses, the ties broken by draws from `key`.

        Args:
          boards: int [B, 9] boards (0 empty, 1 X, -1 O), each checked like `act`'s.
          players: int [B], the player to move on each board.
          key: PRNG key for the tie-breaks.

        Returns:
          int64 [B]: a cell that is empty on each board.
        """
        b, _ = check_positions(boards, players)
        support = self.support[positions().lookup[board_code(b)]]  # [B, 9]
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
        k = (rng.random(len(b)) * support.sum(-1)).astype(np.int64)  # which tied move
        return np.argmax(np.cumsum(support, -1) > k[:, None], axis=-1).astype(np.int64)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table to a `.npz` file (atomically; plain arrays, no pickle).

        Returns:
          The path written. Load it with `make_agent(kind, checkpoint=path)` or `load_agent`.
        """
        with atomic_open(path, "wb") as f:
            np.savez(
                f,
                format=np.asarray("bellmax-tictactoe-agent-v1"),
                kind=np.asarray(self.kind),
                scores=self.scores,
                meta=np.asarray(json.dumps(self.meta)),
            )
        return Path(path)


def load_agent(path: str | os.PathLike, *, kind: str | None = None, seed: int = 0) -> TableAgent:
    """Load a table agent written by `TableAgent.save`.

    Args:
      path: the `.npz` file.
      kind: if given, the kind the file must hold.
      seed: seeds the agent's tie-breaks.

    Returns:
      A `TableAgent`.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"no agent checkpoint at {str(p)!r}; train one with make_agent(kind) and "
            "agent.save(path), or leave checkpoint out to train on demand."
        )
    not_ours = (
        f"{str(p)!r} is not a tic-tac-toe agent checkpoint (truncated or not an .npz); "
        "write one with agent.save(path)."
    )
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except OSError as e:
        if e.errno is not None:  # the file cannot be read (permissions, I/O)
            raise ValueError(f"cannot read {str(p)!r}: {e.strerror or e}.") from e
        raise ValueError(not_ours) from e
    except Exception as e:  # numpy and zipfile raise several types on truncated, empty and
        # foreign files: EOFError, BadZipFile, a ValueError about allow_pickle, ...
        raise ValueError(not_ours) from e
    if str(arrays.get("format", "")) != "bellmax-tictactoe-agent-v1":
        raise ValueError(
            f"{str(p)!r} is not a tic-tac-toe agent checkpoint (no 'format' "
            "'bellmax-tictactoe-agent-v1'); write it with agent.save(path)."
        )
    if not {"kind", "scores", "meta"} <= set(arrays):
        raise ValueError(not_ours)
    found = str(arrays["kind"])
    if kind is not None and found != kind:
        raise ValueError(
            f"{str(p)!r} holds a {found!r} agent, not {kind!r}; "
            f"use make_agent({found!r}, checkpoint=...)."
        )
    return TableAgent(found, arrays["scores"], seed=seed, meta=json.loads(str(arrays["meta"])))


# ---------------------------------------------------------------------- the registry
def _random_agent(*, seed: int = 0) -> TableAgent:
    return TableAgent("random", np.zeros((positions().count, 9)), seed=seed)


def _perfect_agent(*, seed: int = 0) -> TableAgent:
    return TableAgent("perfect", np.nan_to_num(solve().move_value, nan=0.0), seed=seed)


def _trained(
    kind: str,
    train: Callable[..., SelfPlayResult],
    config: Any,
    seed: int,
    checkpoint: str | os.PathLike | None,
) -> TableAgent:
    if checkpoint is not None:
        return load_agent(checkpoint, kind=kind, seed=seed)
    result = train(config, seed=seed)
    meta = {
        "config": dataclasses.asdict(config),
        "train_seed": seed,
        "games": result.games,
        "x_wins": result.x_wins,
        "o_wins": result.o_wins,
        "visited": result.visited,
    }
    return TableAgent(kind, np.nan_to_num(result.scores, nan=0.0), seed=seed, meta=meta)


def _naive_mc_agent(
    *, seed: int = 0, games: int = NaiveMCConfig.games, checkpoint: str | None = None
) -> TableAgent:
    """The notes' experiment; trains on `games` random games (about 0.1 s) unless loaded."""
    return _trained("naive-mc", train_naive_mc, NaiveMCConfig(games=games), seed, checkpoint)


_SELF_PLAY = {"td": (TDConfig, train_td), "q-learning": (QLearningConfig, train_q_learning)}


def _self_play_agent(
    kind: str,
    *,
    seed: int = 0,
    episodes: int | None = None,
    alpha: float | None = None,
    epsilon: float | None = None,
    checkpoint: str | None = None,
) -> TableAgent:
    """TD(0) afterstate (`td`) or Q-learning (`q-learning`) self-play, unless loaded from
    `checkpoint`; `episodes` games (50,000 by default, about 1.5 s). A knob left None takes
    the default of the kind's config (`TDConfig`, `QLearningConfig`)."""
    config_type, train = _SELF_PLAY[kind]
    knobs = {"episodes": episodes, "alpha": alpha, "epsilon": epsilon}
    config = config_type(**{k: v for k, v in knobs.items() if v is not None})
    return _trained(kind, train, config, seed, checkpoint)


#: kind -> factory(**options) -> agent. Add kinds with `register_agent`.
class _LazyFactory:
    """A factory in a module imported only when used (MCTS and AlphaZero load mctx/optax)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def load(self) -> Callable[..., Agent]:
        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, **options: Any) -> Agent:
        return self.load()(**options)


AGENT_FACTORIES: dict[str, Callable[..., Agent]] = {
    "random": _random_agent,
    "perfect": _perfect_agent,
    "naive-mc": _naive_mc_agent,
    "td": functools.partial(_self_play_agent, "td"),
    "q-learning": functools.partial(_self_play_agent, "q-learning"),
    "mcts": _LazyFactory("bellmax.games.mcts", "make_mcts_agent"),
    "alphazero": _LazyFactory("bellmax.games.alphazero", "make_alphazero_agent"),
}


def register_agent(kind: str, factory: Callable[..., Agent], *, overwrite: bool = False) -> None:
    """Add an agent kind to `make_agent`.

    Args:
      kind: the name, e.g. "mcts".
      factory: called with `make_agent`'s keyword options; returns an agent with
        `act(board, player, *, rng=None) -> int` and a `kind` attribute.
      overwrite: replace an existing kind of that name.
    """
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"agent kind must be a non-empty string, got {kind!r}.")
    if not callable(factory):
        raise TypeError(f"factory for {kind!r} must be callable, got {type(factory).__name__}.")
    if kind in AGENT_FACTORIES and not overwrite:
        raise ValueError(
            f"agent kind {kind!r} is already registered; pass overwrite=True to replace it."
        )
    AGENT_FACTORIES[kind] = factory


def agent_kinds() -> list[str]:
    """The registered agent kinds, in registration order."""
    return list(AGENT_FACTORIES)


def make_agent(kind: str, **options: Any) -> Agent:
    """Make a tic-tac-toe agent by kind.

    Args:
      kind: one of `agent_kinds()`: random, perfect, naive-mc, td, q-learning (and any added
        with `register_agent`).
      **options: the kind's options: `seed` for all; `games` (naive-mc) or `episodes`,
        `alpha`, `epsilon` (td, q-learning) for the training budget; `checkpoint` (a path
        written by `agent.save`) to load instead of training.

    Returns:
      An agent with `act(board, player) -> int`.
    """
    if kind not in AGENT_FACTORIES:
        raise unknown_name("tic-tac-toe agent kind", str(kind), AGENT_FACTORIES)
    factory = AGENT_FACTORIES[kind]
    if isinstance(factory, _LazyFactory):
        factory = factory.load()
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins and the like: let the call decide
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepted = [
            n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise TypeError(
                f"agent kind {kind!r} does not take option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(accepted) or 'none'}."
            )
    return factory(**options)


# ---------------------------------------------------------------------- matches
def _checked_move(agent: Agent, cells: list[int], player: int, rng: np.random.Generator) -> int:
    move = agent.act(list(cells), player, rng=rng)
    if isinstance(move, bool) or not isinstance(move, int | np.integer) or not 0 <= move < 9:
        raise ValueError(f"agent {agent!r} returned {move!r}, not a cell 0-8.")
    if cells[int(move)] != 0:
        raise ValueError(f"agent {agent!r} chose cell {int(move)}, which is not empty.")
    return int(move)


def play_game(x_agent: Agent, o_agent: Agent, *, seed: int = 0) -> int:
    """Play one game, X first.

    Args:
      x_agent: plays X.
      o_agent: plays O.
      seed: seeds both agents' random choices for this game.

    Returns:
      The winner: 1 (X), -1 (O) or 0 (a draw).
    """
    res = arena(x_agent, o_agent, 1, seed=seed)
    return 1 if res["wins"] else -1 if res["losses"] else 0


def _ply_moves(agent: Agent, boards: np.ndarray, player: int, rng: np.random.Generator):
    """One move for each board: one batched call for agents with `act_batch` (the search
    agents), else `act` board by board; every move is checked."""
    batch = getattr(agent, "act_batch", None)
    if batch is None:
        return np.array([_checked_move(agent, list(b), player, rng) for b in boards.tolist()])
    key = jax.random.key(int(rng.integers(2**31)))
    moves = np.asarray(batch(boards, np.full(len(boards), player), key=key)).astype(np.int64)
    ok = (moves.shape == (len(boards),)) and bool(np.all((moves >= 0) & (moves < 9)))
    if not ok or np.any(boards[np.arange(len(boards)), np.clip(moves, 0, 8)] != 0):
        raise ValueError(f"agent {agent!r} returned moves {moves!r} that are not all empty cells.")
    return moves


def arena(x_agent: Agent, o_agent: Agent, games: int, *, seed: int = 0) -> dict[str, int]:
    """Play `games` games between the same two agents and count the results.

    The games are played side by side, one ply of every unfinished game at a time, so an
    agent with `act_batch` (MCTS, AlphaZero-style) searches all of them in one batch.

    Args:
      x_agent: plays X in every game.
      o_agent: plays O in every game.
      games: how many games (>= 1).
      seed: seeds all the games' random choices.

    Returns:
      `{"games", "wins", "draws", "losses"}`, counted for X (`losses` are O's wins).
    """
    games = check_int(games, "games", low=1)
    for side, agent in (("x_agent", x_agent), ("o_agent", o_agent)):
        if not callable(getattr(agent, "act", None)):
            raise TypeError(
                f"{side} must be an agent (with act(cells, player, rng=)), got {agent!r}; "
                "build one with make_agent(kind), e.g. make_agent('random')."
            )
    rng = np.random.default_rng(seed)
    boards = np.zeros((int(games), 9), np.int64)
    winner = np.zeros(int(games), np.int64)
    over = np.zeros(int(games), bool)
    player = 1
    for _ in range(9):
        live = np.flatnonzero(~over)
        if live.size == 0:
            break
        agent = x_agent if player == 1 else o_agent
        boards[live, _ply_moves(agent, boards[live], player, rng)] = player
        lines = boards[live][:, LINES].sum(-1)
        won = np.any(lines == 3 * player, axis=-1)
        winner[live[won]] = player
        over[live] = won | np.all(boards[live] != 0, axis=-1)
        player = -player
    return {
        "games": int(games),
        "wins": int(np.sum(winner == 1)),
        "draws": int(np.sum(winner == 0)),
        "losses": int(np.sum(winner == -1)),
    }


def exact_outcomes(x_agent: TableAgent, o_agent: TableAgent) -> dict[str, float]:
    """The exact outcome probabilities of `x_agent` against `o_agent` (no sampling).

    Both must be `TableAgent`s (their move probabilities are known tables); for other agents
    use `arena`.

    Returns:
      `{"x_wins", "draw", "o_wins"}`.
    """
    for name, a in (("x_agent", x_agent), ("o_agent", o_agent)):
        if not isinstance(a, TableAgent):
            raise TypeError(
                f"exact_outcomes needs table agents, got {type(a).__name__} for {name}; "
                "use arena(...) to sample games instead."
            )
    return outcome_probabilities(x_agent.policy(), o_agent.policy())


def lines_of_play(agent: Agent, as_player: int, *, seed: int = 0) -> dict[str, int]:
    """Play `agent` against every line of play of its opponent, exhaustively.

    At the agent's turns it chooses once (its random choices drawn from `seed`); at the
    opponent's turns every legal move is followed. The agent never loses (for this seed)
    exactly when `losses == 0`.

    Args:
      agent: the agent to check.
      as_player: 1 (the agent plays X) or -1 (O).
      seed: seeds the agent's choices.

    Returns:
      `{"lines", "wins", "draws", "losses"}`, counted over the opponent's lines, for the agent.
    """
    as_player = check_player(as_player, "as_player")
    rng = np.random.default_rng(seed)
    counts = {"lines": 0, "wins": 0, "draws": 0, "losses": 0}

    def visit(cells: list[int], player: int) -> None:
        w = winner_of(cells)
        if w or 0 not in cells:
            counts["lines"] += 1
            key = "draws" if not w else ("wins" if w == as_player else "losses")
            counts[key] += 1
            return
        if player == as_player:
            moves = [_checked_move(agent, cells, player, rng)]
        else:
            moves = [i for i in range(9) if cells[i] == 0]
        for m in moves:
            cells[m] = player
            visit(cells, -player)
            cells[m] = 0

    visit([0] * 9, 1)
    return counts
