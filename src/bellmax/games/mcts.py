"""Monte Carlo tree search for tic-tac-toe: UCT with random rollouts, batched and jitted (mctx).

The search runs on `mctx.muzero_policy` (Schrittwieser et al. 2020; its PUCT rule with a
uniform prior over the legal moves is UCT, Kocsis and Szepesvari 2006; Browne et al. 2012,
section 3.3) with a `recurrent_fn` that steps the game itself, so no model is learned:

- **Canonical boards.** A search node holds the board from the point of view of the player to
  move (+1 the mover's marks, -1 the opponent's; the env's observation `board * player`).
  After a move the board is negated, so one rule plays both sides.
- **Two-player signs** (mctx issue 24). mctx backs up `Q(s, a) = r + discount * v(s')`. The
  reward of a move is for the player who made it (+1 a win); the value of a node is for the
  player to move there; so the discount is -1 at every ply that does not end the game.
- **Terminal states.** A move that ends the game gets reward +1 (win) or 0 (draw) and
  discount 0, so nothing below a terminal node counts; expanding a terminal node again returns
  reward 0, discount 0, value 0. A move onto an occupied cell (which mctx may try below the
  root, where only the root's invalid actions are masked) is a loss for the mover, reward -1,
  discount 0, as in the env; the Q transform below also never prefers it to a legal move.
- **Leaf values** are the mean outcome of `num_rollouts` uniformly random playouts from the
  leaf, for the player to move there. With `solve_leaves=True` (the default) a leaf decided
  within two plies is valued exactly instead: +1 when the mover can complete a line at once,
  -1 when it cannot and the opponent has a fork (two threats); `solve_leaves=False` is plain
  UCT with random rollouts.
- **Selection**: `Q01 + c * P * sqrt(N) / (1 + n)` with `Q01 = (Q + 1) / 2` from
  `mctx.qtransform_by_min_max` (unvisited moves score 0) and `P` uniform over the legal moves
  (`c` is `uct_c`). The agent plays the most-visited root move, ties broken at random.

`search(boards, key, config)` searches a batch of positions at once (vmapped inside mctx);
`MCTSAgent.act_batch` pads batches to a few fixed sizes so that only a handful of programs
are ever compiled. `frozen_agent` plays one seed's choices of a stochastic agent at every
position its opponent's lines reach, searching each layer of the game tree as one batch, so
the exhaustive `lines_of_play` check costs a few batched searches instead of ~1,500 calls.

Strength (exhaustive, every line of the opponent's play): at 200 simulations the agent never
lost as X (seeds 0-2); as O it lost 1-11 of ~500 lines per seed at 100-400 simulations (1-8
rollouts), like OpenSpiel's MCTS, which loses 5.5% of its games as O at 1000. Cost on CPU
grows faster than linearly in `num_simulations` (one search of 64 boards: 0.3 s at 250
simulations, 9 s at 1000), so budgets above a few hundred are slow to check.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import mctx
import numpy as np
from flax import struct

from bellmax.envs.tictactoe import LINES
from bellmax.games.tictactoe import check_position

__all__ = [
    "FrozenAgent",
    "MCTSAgent",
    "MCTSConfig",
    "Node",
    "frozen_agent",
    "make_mcts_agent",
    "random_rollout",
    "search",
    "solved_value",
    "step_canonical",
]

_NEG = -1e9  # a logit for illegal moves (not -inf: an all-illegal row must stay finite)


# ---------------------------------------------------------------------- the game, canonical
@struct.dataclass
class Node:
    """A search node: the board from the mover's view and whether the game is over."""

    board: jax.Array
    """int8 [..., 9]: +1 the mover's marks, -1 the opponent's, 0 empty."""
    done: jax.Array
    """bool [...]: the game ended before this node's mover could move."""


def _has_line(board: jax.Array) -> jax.Array:
    """Whether +1 has three in a row on canonical boards [..., 9]."""
    return jnp.any(jnp.sum(board.astype(jnp.int32)[..., LINES], axis=-1) == 3, axis=-1)


def step_canonical(node: Node, action: jax.Array) -> tuple[Node, jax.Array, jax.Array]:
    """Play `action` for the mover of one canonical node.

    Args:
      node: `Node` with board int8 [9] and done bool [].
      action: int cell 0-8.

    Returns:
      `(next_node, reward, done)`: the next node (board negated, for the next mover), the
      reward for the player who moved (+1 win, 0 draw or not over, -1 illegal move; 0 if the
      game was already over) and whether the game is over after the move.
    """
    legal = (node.board[action] == 0) & ~node.done
    placed = node.board.at[action].set(1)
    won = legal & _has_line(placed)
    full = jnp.all(placed != 0)
    reward = jnp.where(node.done, 0.0, jnp.where(~legal, -1.0, jnp.where(won, 1.0, 0.0)))
    done = node.done | ~legal | won | full
    board = jnp.where(legal, -placed, node.board).astype(jnp.int8)
    return Node(board=board, done=done), reward.astype(jnp.float32), done


def _uniform_legal(key: jax.Array, board: jax.Array) -> jax.Array:
    return jax.random.categorical(key, jnp.where(board == 0, 0.0, _NEG))


def random_rollout(key: jax.Array, node: Node) -> jax.Array:
    """The outcome of one uniformly random playout, for the player to move at `node`.

    Args:
      key: PRNG key.
      node: one canonical `Node` (board [9]).

    Returns:
      float32 []: +1 the mover wins, -1 loses, 0 a draw (0 if `node.done`).
    """

    def body(i, carry):
        nd, sign, outcome = carry
        a = _uniform_legal(jax.random.fold_in(key, i), nd.board)
        nxt, reward, _ = step_canonical(nd, a)
        outcome = outcome + sign * reward  # reward is 0 unless this move ended the game
        return nxt, -sign, outcome

    _, _, outcome = jax.lax.fori_loop(0, 9, body, (node, 1.0, jnp.float32(0.0)))
    return outcome


_LINE_CELLS = np.zeros((8, 9), bool)
_LINE_CELLS[np.arange(8)[:, None], LINES] = True


def solved_value(board: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The exact value of a canonical position [9] when it is decided within two plies.

    +1 when the mover can complete a line now; -1 when it cannot and the opponent threatens
    to complete lines at two different cells (a fork: only one can be blocked).

    Returns:
      `(solved, value)`: bool [] and float32 [] (value 0 where not solved).
    """
    sums = jnp.sum(board.astype(jnp.int32)[LINES], axis=-1)  # [8]
    empty = board == 0
    win_now = jnp.any((sums == 2) & jnp.any(_LINE_CELLS & empty, axis=-1))
    threat_cells = jnp.any(_LINE_CELLS & (sums == -2)[:, None] & empty[None, :], axis=0)
    fork = jnp.sum(threat_cells) >= 2
    value = jnp.where(win_now, 1.0, jnp.where(fork, -1.0, 0.0)).astype(jnp.float32)
    return win_now | fork, value


# ---------------------------------------------------------------------- the search
@dataclasses.dataclass(frozen=True)
class MCTSConfig:
    """UCT with random rollouts (Browne et al. 2012, section 3.3), on mctx."""

    num_simulations: int = 400
    """Simulations (tree expansions) per move: the search budget."""
    uct_c: float = 2.0
    """Exploration constant `c` of `Q01 + c * P * sqrt(N) / (1 + n)`, P uniform."""
    num_rollouts: int = 1
    """Random playouts averaged for each leaf value."""
    solve_leaves: bool = True
    """Value a leaf exactly, instead of rolling out, when it is decided within two plies
    (`solved_value`: the mover wins at once, or faces a fork it cannot block)."""

    def __post_init__(self) -> None:
        for name in ("num_simulations", "num_rollouts"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"MCTSConfig.{name} must be a positive integer, got {v!r}.")
        c = self.uct_c
        if isinstance(c, bool) or not isinstance(c, int | float) or not c > 0:
            raise ValueError(f"MCTSConfig.uct_c must be a number > 0, got {c!r}; e.g. 2.0.")
        if not isinstance(self.solve_leaves, bool):
            raise TypeError(f"MCTSConfig.solve_leaves must be a bool, got {self.solve_leaves!r}.")


def _leaf_value(key: jax.Array, node: Node, config: MCTSConfig) -> jax.Array:
    keys = jax.random.split(key, config.num_rollouts)
    value = jnp.mean(jax.vmap(random_rollout, in_axes=(0, None))(keys, node))
    if config.solve_leaves:
        solved, exact = solved_value(node.board)
        value = jnp.where(solved, exact, value)
    return jnp.where(node.done, 0.0, value)


def _prior_logits(board: jax.Array) -> jax.Array:
    return jnp.where(board == 0, 0.0, _NEG)


def _make_recurrent_fn(config: MCTSConfig):
    def recurrent_fn(params, key, action, embedding: Node):
        del params
        nxt, reward, done = jax.vmap(step_canonical)(embedding, action)
        keys = jax.random.split(key, action.shape[0])
        value = jax.vmap(_leaf_value, in_axes=(0, 0, None))(keys, nxt, config)
        out = mctx.RecurrentFnOutput(
            reward=reward,
            discount=jnp.where(done, 0.0, -1.0).astype(jnp.float32),
            prior_logits=_prior_logits(nxt.board),
            value=value,
        )
        return out, nxt

    return recurrent_fn


@functools.partial(jax.jit, static_argnames="config")
def search(boards: jax.Array, key: jax.Array, config: MCTSConfig) -> jax.Array:
    """UCT search from a batch of positions; returns the root visit counts.

    Args:
      boards: int [B, 9] canonical boards (the mover's marks +1), none finished.
      key: PRNG key.
      config: an `MCTSConfig` (static).

    Returns:
      int32 [B, 9]: the visit count of each root move (0 for illegal moves).
    """
    boards = jnp.asarray(boards, jnp.int8)
    batch = boards.shape[0]
    root_key, search_key = jax.random.split(key)
    node = Node(board=boards, done=jnp.zeros((batch,), bool))
    value = jax.vmap(_leaf_value, in_axes=(0, 0, None))(
        jax.random.split(root_key, batch), node, config
    )
    root = mctx.RootFnOutput(prior_logits=_prior_logits(boards), value=value, embedding=node)
    out = mctx.muzero_policy(
        params=(),
        rng_key=search_key,
        root=root,
        recurrent_fn=_make_recurrent_fn(config),
        num_simulations=config.num_simulations,
        invalid_actions=boards != 0,
        qtransform=functools.partial(mctx.qtransform_by_min_max, min_value=-1.0, max_value=1.0),
        dirichlet_fraction=0.0,
        pb_c_init=float(config.uct_c),
    )
    return out.search_tree.summary().visit_counts


@jax.jit
def _most_visited(visits: jax.Array, boards: jax.Array, key: jax.Array) -> jax.Array:
    """Argmax of the visit counts over the legal moves, ties broken uniformly at random."""
    noise = jax.random.uniform(key, visits.shape, minval=0.0, maxval=0.5)
    score = jnp.where(boards == 0, visits.astype(jnp.float32) + noise, -jnp.inf)
    return jnp.argmax(score, axis=-1)


def _choose(boards: jax.Array, key: jax.Array, config: MCTSConfig) -> jax.Array:
    # not one jit around both: `search` keeps a single compiled program per config and shape
    search_key, tie_key = jax.random.split(key)
    return _most_visited(search(boards, search_key, config), boards, tie_key)


# ---------------------------------------------------------------------- the agent
_BUCKETS = (1, 64)


def _key_from(rng: np.random.Generator) -> jax.Array:
    return jax.random.key(int(rng.integers(2**31)))


class MCTSAgent:
    """A tic-tac-toe agent that plays the most-visited move of a UCT search (see the module).

    Attributes:
      kind: "mcts".
      config: the `MCTSConfig`.
      seed: seeds the agent's own generator (used when `act` gets no `rng`).
    """

    kind = "mcts"

    def __init__(self, config: MCTSConfig | None = None, *, seed: int = 0) -> None:
        if config is None:
            config = MCTSConfig()
        if not isinstance(config, MCTSConfig):
            raise TypeError(f"config must be an MCTSConfig, got {type(config).__name__}.")
        self.config = config
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"MCTSAgent({self.config}, seed={self.seed})"

    def _choose(self, boards: jax.Array, key: jax.Array) -> jax.Array:
        return _choose(boards, key, self.config)

    def act_batch(
        self, boards: Any, players: Any, *, key: jax.Array, _single: bool = False
    ) -> np.ndarray:
        """Search many positions at once and return a move for each.

        Args:
          boards: int [B, 9] boards (0 empty, 1 X, -1 O), each checked like `act`'s.
          players: int [B], the player to move on each board.
          key: PRNG key for the searches (batches are padded to 64 boards: one compiled
            program per config; `act` searches a single board).

        Returns:
          int64 [B]: the cell chosen on each board.
        """
        b = np.asarray(boards)
        p = np.asarray(players)
        if b.ndim != 2 or b.shape[-1] != 9 or p.shape != b.shape[:1]:
            raise ValueError(
                f"act_batch needs boards [B, 9] and players [B], got shapes {b.shape} and "
                f"{p.shape}; use act(board, player) for one position."
            )
        for board, player in zip(b, p, strict=True):
            check_position(board, int(player))
        canon = (b * p[:, None]).astype(np.int8)
        out = np.empty(len(canon), np.int64)
        step = _BUCKETS[-1]
        sizes = _BUCKETS if len(canon) == 1 and _single else _BUCKETS[1:]
        for start in range(0, len(canon), step):
            chunk = canon[start : start + step]
            size = next(s for s in sizes if s >= len(chunk))
            padded = np.zeros((size, 9), np.int8)  # padding: empty boards, discarded
            padded[: len(chunk)] = chunk
            key, sub = jax.random.split(key)
            moves = np.asarray(self._choose(jnp.asarray(padded), sub))
            out[start : start + len(chunk)] = moves[: len(chunk)]
        return out

    def act(self, board: Any, player: int, *, rng: np.random.Generator | None = None) -> int:
        """The most-visited move of a search from `board` for `player`.

        Args:
          board: 9 cells, 0 empty, 1 X, -1 O, row by row (checked by `check_position`).
          player: 1 (X) or -1 (O), the player to move.
          rng: where to draw the search's key from (default: the agent's own generator).

        Returns:
          A cell 0-8 that is empty on `board`.
        """
        cells = check_position(board, player)
        if cells.count(0) == 1:
            return cells.index(0)
        key = _key_from(rng if rng is not None else self._rng)
        return int(self.act_batch([cells], [player], key=key, _single=True)[0])


def make_mcts_agent(
    *,
    seed: int = 0,
    num_simulations: int = MCTSConfig.num_simulations,
    uct_c: float = MCTSConfig.uct_c,
    num_rollouts: int = MCTSConfig.num_rollouts,
    solve_leaves: bool = MCTSConfig.solve_leaves,
) -> MCTSAgent:
    """`make_agent("mcts", ...)`: a UCT agent with random rollouts; see `MCTSConfig`."""
    config = MCTSConfig(
        num_simulations=num_simulations,
        uct_c=uct_c,
        num_rollouts=num_rollouts,
        solve_leaves=solve_leaves,
    )
    return MCTSAgent(config, seed=seed)


# ---------------------------------------------------------------------- exhaustive checks
class FrozenAgent:
    """One sample of a stochastic agent's choices: a move per position, played back."""

    def __init__(self, kind: str, moves: dict[tuple[int, ...], int]) -> None:
        self.kind = kind
        self.moves = moves
        """board (9-tuple) -> the chosen cell."""

    def act(self, board: Any, player: int, *, rng: np.random.Generator | None = None) -> int:
        """The stored move for `board` (KeyError if this sample never reached it)."""
        cells = check_position(board, player)
        return self.moves[tuple(cells)]


def _winner(cells: tuple[int, ...]) -> int:
    for a, b, c in LINES:
        s = cells[a] + cells[b] + cells[c]
        if s in (3, -3):
            return s // 3
    return 0


def frozen_agent(agent: Any, as_player: int, *, seed: int = 0) -> FrozenAgent:
    """Sample an agent's choice at every position its opponent's lines of play reach.

    Walks the game tree layer by layer: at the agent's turns one move per position (all the
    positions of a layer searched as one batch by `agent.act_batch`), at the opponent's every
    legal move. `lines_of_play(frozen_agent(agent, p, seed=s), p)` is then the exhaustive
    check of the agent for that seed.

    Args:
      agent: has `act_batch(boards, players, *, key)` (an `MCTSAgent` or `AlphaZeroAgent`).
      as_player: 1 (the agent plays X) or -1 (O).
      seed: seeds the searches.

    Returns:
      A `FrozenAgent` with one move for every position the agent can face.
    """
    if isinstance(as_player, bool) or as_player not in (1, -1):
        raise ValueError(f"as_player must be 1 (X) or -1 (O), got {as_player!r}.")
    key = jax.random.key(seed)
    moves: dict[tuple[int, ...], int] = {}
    layer = {(0,) * 9}
    player = 1
    for _ in range(9):
        live = sorted(c for c in layer if not _winner(c) and 0 in c)
        if not live:
            break
        if player == as_player:
            key, sub = jax.random.split(key)
            chosen = agent.act_batch(np.array(live), np.full(len(live), player), key=sub)
            moves.update({c: int(m) for c, m in zip(live, chosen, strict=True)})
            nxt = {(*c[:m], player, *c[m + 1 :]) for c, m in zip(live, chosen, strict=True)}
        else:
            nxt = {(*c[:i], player, *c[i + 1 :]) for c in live for i in range(9) if c[i] == 0}
        layer, player = nxt, -player
    return FrozenAgent(getattr(agent, "kind", "frozen"), moves)
