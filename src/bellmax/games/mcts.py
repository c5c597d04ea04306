"""Monte Carlo tree search for tic-tac-toe: UCT with random rollouts and MCTS-Solver, batched.

A search tree lives in flat arrays (`Tree`, one node added per simulation, Browne et al. 2012,
section 3.1); a batch of trees runs in lock-step inside one `while_loop` (selection and
evaluation written for the batch, the tree updates vmapped), so a whole layer of positions is
searched by one compiled program. A simulation's backup is one scatter along the path it
selected, and the solver's proof step is a short scalar recurrence up that path, on counts
kept per node (`Tree.tally`). Leaf evaluation runs with the boards' axis last, cell by cell:
XLA:CPU vectorises along an array's last axis only.

- **Canonical boards.** A node holds the board from the point of view of the player to move
  (+1 the mover's marks, -1 the opponent's; the env's observation `board * player`). After a
  move the board is negated, so one rule plays both sides.
- **Two-player signs.** Each node keeps, per move, the visit count and the summed outcome for
  *its own* mover, so selection at every node maximises its mover's value; the backed-up
  outcome changes sign at every ply (the care that mctx issue 24 asks for).
- **Selection** is UCB1 (Kocsis and Szepesvari 2006): `Q + c * sqrt(ln N / n)` with Q the mean
  outcome in [-1, 1]; every legal move is tried once (in random order) before any is chosen
  twice.
- **Leaf values** are the mean outcome of `num_rollouts` uniformly random playouts. A playout
  needs no loop: filling the empty cells in the order of i.i.d. uniforms is a uniformly random
  game, and the first line completed decides it (`playout_outcome`). With `solve_leaves` a leaf
  decided within two plies is valued exactly instead (`solved_value`: the mover wins at once,
  or faces a fork).
- **MCTS-Solver** (Winands, Bjornsson and Saito 2008; `solver=True`, the default): terminal
  and exactly valued leaves are *proven*; a node is proven a win when one of its moves is a
  proven win, and proven to its best value when all its moves are proven. Selection skips
  proven moves (their value is known), the search stops once every root is proven, and the
  agent plays a proven win at once and never a proven loss while another move remains;
  otherwise the most-visited move (ties at random).

Why not mctx here (the AlphaZero-style agent does use it): mctx's trees carry no proven
values, so MCTS-Solver cannot be written on top of it, and with random-rollout UCT on mctx the
agent still lost 1-11 of ~500 opponent lines as O at 100-400 simulations.

`search(boards, key, config)` searches a batch of positions at once; `MCTSAgent.act_batch` pads
batches to a few fixed sizes so that only a handful of programs are ever compiled.
`frozen_agent` samples one seed's choices of a stochastic agent at every position its
opponent's lines reach, searching each layer of the game tree as one batch, so the exhaustive
`lines_of_play` check costs a few batched searches.

Strength (exhaustive: every line of the opponent's play, tests/games/test_mcts.py): at the
default budget of 1000 simulations, and at 500, the agent never loses as X or as O (seeds 0-9
checked). At 300 simulations it loses 3-19 of ~700 lines as O at five seeds in ten; plain UCT
(`solver=False`) loses 2-10 of ~500 at eight seeds in ten there (none at 1000, seeds 0-9). For
scale, OpenSpiel's C++ MCTS (with its solver) loses 5.5% of its games as O to a perfect player
at 1000 simulations (../shared/PEERS.md).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_bool, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.envs.tictactoe import LINES
from bellmax.games.solver import check_player
from bellmax.games.tictactoe import check_position, check_positions, winner_of

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


# the channels of `Tree.edges` (one row [9, 4] per node: what selection reads, in one gather)
_N, _W, _PROVEN, _CHILD = 0, 1, 2, 3
# the channels of `Tree.tally`
_OPEN, _BEST = 0, 1
# sentinels in the child channel of `Tree.edges` (stored as float32) and in a simulation's path
_UNTRIED = -1  # `Tree.edges` child: a legal move not tried yet
_NOT_A_MOVE = -2  # `Tree.edges` child: an occupied cell, or any cell once the game is over
_NO_NODE = -1  # a path's node slot below the node selection stopped at
_NO_MOVE = -1  # a path's move slot from that node down
_NEVER = 99  # `playout_outcome`: the ply of a line never completed (a game has 9 at most)
_MARKED = -1  # `playout_outcome`: the ply of a cell marked before the playout


# ---------------------------------------------------------------------- the game, canonical
@struct.dataclass
class Node:
    """A search node: the board from the mover's view and whether the game is over."""

    __repr__ = summary_repr

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


def playout_outcome(board: jax.Array, u: jax.Array) -> jax.Array:
    """The outcome of the random playout that fills the empty cells in the order of `u`.

    Filling the empty cells in the order of i.i.d. uniforms `u` (the smallest first, the
    players alternating, the mover first) is a uniformly random playout, and it needs no loop:
    each line is completed at the latest ply among its cells, by the player owning all three,
    and the first line completed decides the game.

    Args:
      board: int8 [9] canonical board, game not over.
      u: float32 [9] uniforms (entries for occupied cells are ignored).

    Returns:
      float32 []: +1 the mover wins, -1 loses, 0 a draw.
    """
    return _playout_cells_first(board, u)


def _playout_cells_first(board: jax.Array, u: jax.Array) -> jax.Array:
    """`playout_outcome` with the cells on the first axis of `board` [9, ...] and `u`
    [9, ...] (broadcast together), for the playouts of many boards at once.

    Written cell by cell and line by line over rows [...] (the boards' axes last): XLA:CPU
    vectorises a kernel along its last axis only, so the [B, 9, 9] comparisons of a vmapped
    playout, reduced over their last axis, run as scalar code, while these rows run B at a
    time."""
    empty = [board[c] == 0 for c in range(9)]
    # the ply of each cell: the empty cells with a smaller uniform come first, and of two equal
    # uniforms (1 in 65536 for the search's 16-bit ones) the lower cell, so the plies stay
    # 0, 1, 2, ... and the game legal
    rank = [
        sum(
            (empty[j] & ((u[j] < u[i]) | ((u[j] == u[i]) & (j < i)))).astype(jnp.int32)
            for j in range(9)
            if j != i
        )
        for i in range(9)
    ]
    mine = [jnp.where(empty[c], rank[c] % 2 == 0, board[c] > 0) for c in range(9)]
    theirs = [jnp.where(empty[c], rank[c] % 2 == 1, board[c] < 0) for c in range(9)]
    never = jnp.int32(_NEVER)
    wins, losses = [], []
    for line in LINES:  # the ply at which each line is full, and whose it is then
        ply = functools.reduce(jnp.maximum, [jnp.where(empty[c], rank[c], _MARKED) for c in line])
        wins.append(
            jnp.where(functools.reduce(jnp.logical_and, [mine[c] for c in line]), ply, never)
        )
        losses.append(
            jnp.where(functools.reduce(jnp.logical_and, [theirs[c] for c in line]), ply, never)
        )
    first_win, first_loss = jnp.min(jnp.stack(wins), axis=0), jnp.min(jnp.stack(losses), axis=0)
    return jnp.sign(first_loss - first_win).astype(jnp.float32)


def random_rollout(key: jax.Array, node: Node) -> jax.Array:
    """The outcome of one uniformly random playout, for the player to move at `node`.

    Args:
      key: PRNG key.
      node: one canonical `Node` (board [9]).

    Returns:
      float32 []: +1 the mover wins, -1 loses, 0 a draw (0 if `node.done`).
    """
    outcome = playout_outcome(node.board, jax.random.uniform(key, (9,), jnp.float32))
    return jnp.where(node.done, 0.0, outcome)


def solved_value(board: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The exact value of a canonical position [9] when it is decided within two plies.

    +1 when the mover can complete a line now; -1 when it cannot and the opponent threatens
    to complete lines at two different cells (a fork: only one can be blocked).

    Returns:
      `(solved, value)`: bool [] and float32 [] (value 0 where not solved).
    """
    return _solved_cells_first(board)


def _solved_cells_first(board: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`solved_value` of boards [9, ...] with the cells first, written cell by cell and line
    by line over rows (see `_playout_cells_first`)."""
    empty = [board[c] == 0 for c in range(9)]
    cell = [board[c].astype(jnp.int32) for c in range(9)]
    win_now = jnp.bool_(False)
    threat = [jnp.bool_(False)] * 9  # the opponent completes a line by marking the cell
    for line in LINES:
        total = cell[line[0]] + cell[line[1]] + cell[line[2]]
        has_empty = empty[line[0]] | empty[line[1]] | empty[line[2]]
        win_now = win_now | ((total == 2) & has_empty)
        for c in line:
            threat[c] = threat[c] | ((total == -2) & empty[c])
    fork = sum(t.astype(jnp.int32) for t in threat) >= 2
    value = jnp.where(win_now, 1.0, jnp.where(fork, -1.0, 0.0)).astype(jnp.float32)
    return win_now | fork, value


# ---------------------------------------------------------------------- the search
@dataclasses.dataclass(frozen=True)
class MCTSConfig:
    """UCT with random rollouts and MCTS-Solver backups (Browne et al. 2012, 3.3 and 5.4.1)."""

    num_simulations: int = 1000
    """Simulations (tree expansions) per move: the search budget."""
    uct_c: float = 2.0
    """Exploration constant `c` of UCB1, `Q + c * sqrt(ln N / n)` (outcomes Q in [-1, 1])."""
    num_rollouts: int = 1
    """Random playouts averaged for each leaf value."""
    solve_leaves: bool = True
    """Value a leaf exactly, instead of rolling out, when it is decided within two plies
    (`solved_value`: the mover wins at once, or faces a fork it cannot block)."""
    solver: bool = True
    """MCTS-Solver (Winands, Bjornsson and Saito 2008): prove values up the tree (a node is won
    when one move wins, decided when all its moves are), select only unproven moves, stop when
    the root is proven, and never play a proven loss while another move remains. False: plain
    UCT (exact leaf values, if `solve_leaves`, are then only backed up like rollouts)."""

    def __post_init__(self) -> None:
        owner = "MCTSConfig"
        checked = {
            "num_simulations": check_int(  # node indices are stored as float32: exact below 2**24
                self.num_simulations, "num_simulations", owner=owner, low=1, high=2**24 - 2
            ),
            "num_rollouts": check_int(self.num_rollouts, "num_rollouts", owner=owner, low=1),
            "uct_c": check_number(self.uct_c, "uct_c", owner=owner, low=0, low_open=True),
            "solve_leaves": check_bool(self.solve_leaves, "solve_leaves", owner=owner),
            "solver": check_bool(self.solver, "solver", owner=owner),
        }
        for name, value in checked.items():  # plain Python values: the config is a jit key
            object.__setattr__(self, name, value)


@struct.dataclass
class Tree:
    """One search tree in flat arrays: node 0 is the root, simulation i adds node i + 1.

    Move statistics live with the parent (row = node, column = move) in one array, so each
    level of selection reads one row [9, 4] in one gather: on XLA:CPU a batched gather costs
    about the same for 9 values as for 36, so one array is several times cheaper to walk than
    one array per statistic. Values are for the player to move at the row's node.
    """

    __repr__ = summary_repr

    board: jax.Array
    """int8 [N, 9]: each node's canonical board (the mover's marks +1)."""
    edges: jax.Array
    """float32 [N, 9, 4]: per move, in the channels `_N, _W, _PROVEN, _CHILD`: its visit
    count; its summed outcome for the node's mover; its proven value for the node's mover
    (NaN while unproven); the node it leads to (a float, exact below 2**24), `_UNTRIED` (-1)
    for a legal move not tried yet, `_NOT_A_MOVE` (-2) for an occupied cell, or any cell once
    the game is over."""
    exact: jax.Array
    """float32 [N]: the exact value for the node's mover of a finished game or a solved leaf,
    set when the node is added; NaN at the root. (Rows of nodes not added in this search hold
    whatever an earlier search left there: see `_plant`. The solver's proofs go to `edges`,
    `tally` and `root_exact`: reading this array in the simulation loop makes XLA copy it each
    time.)"""
    root_exact: jax.Array
    """float32 []: the root's proven value for its mover (NaN while unproven)."""
    tally: jax.Array
    """float32 [N, 2]: what the solver's proof step reads of each node, in the channels
    `_OPEN, _BEST`: how many of its legal moves are not proven yet, and the best proven value
    of its moves for its mover (-1 while none is). Kept up to date by `_prove` so that a proof
    reads two numbers per node on the path, not the node's whole row."""


@struct.dataclass
class SearchResult:
    """What a batch of searches found about the root moves ([B, 9] per move, [B] per root)."""

    __repr__ = summary_repr

    visits: jax.Array
    """int32: visit count of each root move (0 for illegal moves)."""
    q: jax.Array
    """float32: mean outcome of each root move for the root's mover (0 where unvisited)."""
    proven: jax.Array
    """bool: the move's exact value is proven."""
    proven_value: jax.Array
    """float32: that value for the root's mover (+1 wins, 0 draws, -1 loses) where `proven`."""
    root_solved: jax.Array
    """bool [B]: the root position's value is proven."""
    root_value: jax.Array
    """float32 [B]: that value, for the player to move, where `root_solved`."""
    simulations: jax.Array
    """int32 [B]: simulations run (fewer than the budget once the root is proven)."""


_BLOCK = 32  # simulations whose uniforms `_search` draws at once


def _uniforms(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniforms in (0, 1) with 16 bits each, two from every 32 random bits.

    Drawn flat (XLA:CPU generates threefry's bits for a 1-D shape about 3x faster than for
    the same number in 4-D) and half as many bits as `jax.random.uniform` would use: the
    search compares them only to break ties and to order moves, where a tie between two
    16-bit values (1 in 65536) is harmless."""
    size = int(np.prod(shape))
    bits = jax.random.bits(key, (-(-size // 2),), jnp.uint32)
    halves = jnp.concatenate([bits >> 16, bits & 0xFFFF])[:size]
    return ((halves.astype(jnp.float32) + 0.5) * (1.0 / 65536.0)).reshape(shape)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _empty_trees(batch: int, num_nodes: int) -> Tree:
    """Buffers for `batch` trees of `num_nodes` nodes (their contents do not matter)."""
    return Tree(
        board=jnp.zeros((batch, num_nodes, 9), jnp.int8),
        edges=jnp.zeros((batch, num_nodes, 9, 4), jnp.float32),
        exact=jnp.zeros((batch, num_nodes), jnp.float32),
        root_exact=jnp.zeros((batch,), jnp.float32),
        tally=jnp.zeros((batch, num_nodes, 2), jnp.float32),
    )


def _plant(tree: Tree, board: jax.Array) -> Tree:
    """Start a tree at `board` in `tree`'s buffers: only the root's rows are written. Every
    other row is written whole when its node is added (`_add_node`) and never read before,
    so whatever an earlier search left there is harmless."""
    nan = jnp.float32(jnp.nan)
    kids = jnp.where(board == 0, _UNTRIED, _NOT_A_MOVE).astype(jnp.float32)
    return Tree(
        board=tree.board.at[0].set(board),
        edges=tree.edges.at[0].set(_fresh_row(kids)),
        exact=tree.exact.at[0].set(nan),
        root_exact=nan,
        tally=tree.tally.at[0].set(_fresh_tally(kids)),
    )


def _fresh_tally(kids: jax.Array) -> jax.Array:
    """A new node's `Tree.tally` row [2]: its legal moves all open, none proven."""
    return jnp.stack([jnp.sum(kids == _UNTRIED).astype(jnp.float32), jnp.float32(-1.0)])


def _fresh_row(kids: jax.Array) -> jax.Array:
    """A new node's `Tree.edges` row [9, 4]: no visits, nothing proven, child slots `kids`."""
    zeros = jnp.zeros_like(kids)
    return jnp.stack([zeros, zeros, jnp.full_like(kids, jnp.nan), kids], axis=-1)


_DEPTH = 10  # nodes on a path: the root and at most 9 moves


class _Path(NamedTuple):
    """Where selection went: the selection loop's carry, and what the later phases read."""

    depth: jax.Array
    """int32 []: the depth of `node` (the root is at depth 0)."""
    node: jax.Array
    """int32 []: the node selection stopped at."""
    nodes: jax.Array
    """int32 [_DEPTH]: the node at each depth, `_NO_NODE` below `node`."""
    moves: jax.Array
    """int32 [_DEPTH]: the move played at each depth, `_NO_MOVE` from `node`'s depth down."""
    row: jax.Array
    """float32 [9, 4]: `node`'s row of `Tree.edges` (read once, when selection enters it)."""
    more: jax.Array
    """bool []: selection goes below `node` (see `_selectable`)."""


class _Expansion(NamedTuple):
    """The node an expansion adds (or would add: see `expanded`)."""

    expanded: jax.Array
    """bool []: a node is added (False at a finished game or a proven root)."""
    action: jax.Array
    """int32 []: the untried move played from the selected node."""
    child: Node
    """The position after `action`, from its own mover's view."""
    reward: jax.Array
    """float32 []: the reward of `action` for the player who made it."""


class _Evaluation(NamedTuple):
    """The new node's value, for its mover."""

    known: jax.Array
    """bool []: the value is exact (a finished game, or a solved leaf with `solve_leaves`)."""
    exact: jax.Array
    """float32 []: that exact value (meaningful where `known`)."""
    value: jax.Array
    """float32 []: the exact value where known, else the mean rollout outcome."""


def _root_open(tree: Tree, config: MCTSConfig) -> jax.Array:
    """Whether the root is still unproven (always, without the solver)."""
    return jnp.isnan(tree.root_exact) if config.solver else jnp.bool_(True)


def _selectable(
    row: jax.Array, node: jax.Array, root_open: jax.Array, config: MCTSConfig
) -> tuple[jax.Array, jax.Array]:
    """`(descend, selectable)` at `node` (its `Tree.edges` row): whether selection goes below
    it, and the moves it may take.

    Selection descends while every legal move has been tried and some move is selectable
    (with the solver: unproven; a proven root is not descended from)."""
    kids = row[:, _CHILD]
    selectable = kids >= 0
    if config.solver:  # below the root, selection never enters a proven node
        selectable = selectable & jnp.isnan(row[:, _PROVEN])
    descend = ~jnp.any(kids == _UNTRIED) & jnp.any(selectable) & (root_open | (node != 0))
    return descend, selectable


def _select(
    trees: Tree, noise: jax.Array, root_open: jax.Array, config: MCTSConfig, uct_c: jax.Array
) -> _Path:
    """Selection in a batch of trees: descend by UCB1 from each root (`noise` [B, 9] breaks
    ties; `root_open` [B]). Returns a batched `_Path` ([B] and [B, ...] fields).

    Written for the batch, not vmapped: under vmap, a while loop selects every carried value
    of every lane after each level (a finished lane must not move), a kernel per value. Here
    a finished lane's level leaves it as it was by construction (its depth stays, its node
    stays, so it reads its own row again), so the masks fuse into the values' own kernels.
    Each level reads the tree once: the row of the node it enters, carried to the next level
    (which chooses a move from it) and on to the expansion."""
    lanes = jnp.arange(noise.shape[0])
    depths = jnp.arange(_DEPTH)
    selectable_at = jax.vmap(_selectable, in_axes=(0, 0, 0, None))

    def enter(depth: jax.Array, node: jax.Array) -> tuple[jax.Array, jax.Array]:
        row = trees.edges[lanes, node]  # [B, 9, 4]
        return row, (depth < _DEPTH - 1) & selectable_at(row, node, root_open, config)[0]

    def descend(path: _Path) -> _Path:
        row, more = path.row, path.more
        _, selectable = selectable_at(row, path.node, root_open, config)
        n, w = row[..., _N], row[..., _W]
        log_n = jnp.log(jnp.maximum(jnp.sum(n, axis=-1, keepdims=True), 1.0))
        ucb = w / jnp.maximum(n, 1.0) + uct_c * jnp.sqrt(log_n / jnp.maximum(n, 1.0))
        move = jnp.argmax(jnp.where(selectable, ucb + 1e-6 * noise, -jnp.inf), axis=-1)
        move = move.astype(jnp.int32)
        picked = jnp.arange(9) == move[:, None]
        child = jnp.sum(jnp.where(picked, row[..., _CHILD], 0.0), axis=-1).astype(jnp.int32)
        node = jnp.where(more, child, path.node)
        depth = path.depth + more
        row, more_below = enter(depth, node)
        return _Path(
            depth=depth,
            node=node,
            nodes=jnp.where(more[:, None] & (depths == depth[:, None]), child[:, None], path.nodes),
            moves=jnp.where(
                more[:, None] & (depths == path.depth[:, None]), move[:, None], path.moves
            ),
            row=row,
            more=more & more_below,
        )

    zeros = jnp.zeros_like(lanes, dtype=jnp.int32)
    row, more = enter(zeros, zeros)
    start = _Path(
        depth=zeros,
        node=zeros,
        nodes=jnp.where(depths == 0, 0, _NO_NODE).astype(jnp.int32) + zeros[:, None],
        moves=jnp.full((lanes.shape[0], _DEPTH), _NO_MOVE, jnp.int32),
        row=row,
        more=more,
    )
    return jax.lax.while_loop(lambda path: jnp.any(path.more), descend, start)


def _expand(
    tree: Tree, path: _Path, noise: jax.Array, root_open: jax.Array, config: MCTSConfig
) -> _Expansion:
    """Expansion: play one untried move of the selected node, chosen by `noise` [9] (none at
    a finished game or a proven root)."""
    untried = path.row[:, _CHILD] == _UNTRIED
    expanded = jnp.any(untried)
    if config.solver:
        expanded = expanded & (root_open | (path.node != 0))
    action = jnp.argmax(jnp.where(untried, noise, -1.0)).astype(jnp.int32)
    node = Node(board=tree.board[path.node], done=jnp.bool_(False))
    child, reward, _ = step_canonical(node, action)
    return _Expansion(expanded=expanded, action=action, child=child, reward=reward)


def _evaluate(child: Node, reward: jax.Array, orders: jax.Array, config: MCTSConfig) -> _Evaluation:
    """Evaluation of a batch of new nodes (`child` boards [B, 9], `reward` [B]): the exact
    value of a finished game (or, with `solve_leaves`, of a leaf decided within two plies),
    else the mean outcome of one random playout per row of `orders` [B, num_rollouts, 9].

    Not vmapped: the boards are turned cells first ([9, B]) so that XLA:CPU vectorises the
    arithmetic over the batch (`_playout_cells_first`)."""
    board = child.board.T  # [9, B]
    done = child.done
    known, exact = done, -reward  # the mover into the child won (+1) or drew: -1 / 0 for it
    if config.solve_leaves:
        leaf_known, leaf_value = _solved_cells_first(board)
        known, exact = known | leaf_known, jnp.where(done, exact, leaf_value)

    def rolled_out() -> jax.Array:
        rollouts = _playout_cells_first(board[:, None], jnp.transpose(orders, (2, 1, 0)))
        return jnp.where(known, exact, jnp.mean(rollouts, axis=0))  # rollouts [R, B]

    # The playouts in a branch of their own (skipped when every leaf is known): XLA fuses a
    # chain of cheap elementwise ops into each consumer and recomputes it there, and the
    # backup's update [B, 10, 2] would recompute every playout 20 times (measured: 1.6x the
    # whole search's time). XLA does not fuse across a conditional.
    value = jax.lax.cond(jnp.all(known), lambda: exact, rolled_out)
    return _Evaluation(known=known, exact=exact, value=value)


def _add_node(
    tree: Tree, i: jax.Array, node: jax.Array, leaf: _Expansion, evaluation: _Evaluation
) -> Tree:
    """Write simulation `i`'s new node as node `i + 1`, a child of `node` (nothing if not
    `leaf.expanded`): its board, its whole row (`_fresh_row`) and its parent's child slot."""
    size = tree.board.shape[0]  # an index that `mode="drop"` discards
    new = jnp.where(leaf.expanded, i + 1, size)
    parent = jnp.where(leaf.expanded, node, size)
    board = leaf.child.board
    kids = jnp.where(leaf.child.done | (board != 0), _NOT_A_MOVE, _UNTRIED).astype(jnp.float32)
    return tree.replace(
        board=tree.board.at[new].set(board, mode="drop"),
        edges=tree.edges.at[new]
        .set(_fresh_row(kids), mode="drop")
        .at[parent, leaf.action, _CHILD]
        .set((i + 1).astype(jnp.float32), mode="drop"),
        exact=tree.exact.at[new].set(
            jnp.where(evaluation.known, evaluation.exact, jnp.nan), mode="drop"
        ),
        tally=tree.tally.at[new].set(_fresh_tally(kids), mode="drop"),
    )


def _backup(
    tree: Tree, nodes: jax.Array, moves: jax.Array, leaf: jax.Array, value: jax.Array
) -> Tree:
    """Backup: every move above depth `leaf` gets a visit and `value` (for the mover at the
    leaf) signed for the player who made it, in one scatter."""
    size = tree.board.shape[0]
    depths = jnp.arange(_DEPTH)
    on_path = depths < leaf
    sign = jnp.where((leaf - depths) % 2 == 1, -1.0, 1.0)  # the leaf's mover: +1, above: -1..
    rows = jnp.where(on_path, nodes, size)
    update = jnp.stack([jnp.ones(_DEPTH), sign * value], axis=-1).astype(tree.edges.dtype)
    return tree.replace(edges=tree.edges.at[rows, moves, _N : _W + 1].add(update, mode="drop"))


def _prove(
    tree: Tree,
    nodes: jax.Array,
    moves: jax.Array,
    leaf: jax.Array,
    proven: jax.Array,
    value: jax.Array,
) -> Tree:
    """MCTS-Solver's proof step, up the path from the evaluated node at depth `leaf` (proven
    with `value` for its mover where `proven`): a node on the path is proven when its path
    move is a proven win, or when its path move is proven and all its other legal moves
    already are."""
    size = tree.board.shape[0]
    # the path moves are not proven yet (selection takes unproven moves only; the last one
    # was untried), so the other moves of a node on the path are all proven when one move is
    # open, and `_BEST` is the best of theirs
    tally = tree.tally[jnp.maximum(nodes, 0)]  # [D, 2]
    others_proven = tally[:, _OPEN] == 1.0
    others_best = tally[:, _BEST]
    child_proven, child_value = proven, value  # the status of the node below depth k
    move_set, move_val, node_set, node_val = [], [], [], []
    for k in range(_DEPTH - 2, -1, -1):  # bottom-up, on scalars only, so XLA fuses it
        below = k < leaf  # else the carry passes through to the level above
        active = below & child_proven
        e = -child_value  # the path move's value for the mover at depth k
        proven_k = active & ((e == 1.0) | others_proven[k])
        value_k = jnp.where(e == 1.0, 1.0, jnp.maximum(e, others_best[k]))
        move_set.append(active)
        move_val.append(e)
        node_set.append(proven_k)
        node_val.append(value_k)
        child_proven = jnp.where(below, proven_k, child_proven)
        child_value = jnp.where(below, value_k, child_value)
    rows = nodes[: _DEPTH - 1][::-1]
    move_set, node_set = jnp.stack(move_set), jnp.stack(node_set)
    move_val, node_val = jnp.stack(move_val), jnp.stack(node_val)
    moves_up = moves[: _DEPTH - 1][::-1]
    rows = jnp.where(move_set, rows, size)
    tally_up = tally[: _DEPTH - 1][::-1]
    tally_up = jnp.stack(
        [tally_up[:, _OPEN] - 1.0, jnp.maximum(tally_up[:, _BEST], move_val)], axis=-1
    )
    return tree.replace(
        edges=tree.edges.at[rows, moves_up, _PROVEN].set(move_val, mode="drop"),
        tally=tree.tally.at[rows].set(tally_up, mode="drop"),
        root_exact=jnp.where(node_set[-1], node_val[-1], tree.root_exact),
    )


def _simulate(
    trees: Tree, path: _Path, root_open: jax.Array, i: jax.Array, u: jax.Array, config: MCTSConfig
) -> Tree:
    """Simulation `i` of a batch of trees after selection (`path`, from `_select`): expand one
    untried move, evaluate it, back up, prove.

    `u` holds the simulation's uniforms, float32 [B, 2 + num_rollouts, 9]: tie-breaking noise
    for selection (used by `_select`), the choice of the untried move, and one playout order
    per rollout.
    """
    leaf = jax.vmap(_expand, in_axes=(0, 0, 0, 0, None))(trees, path, u[:, 1], root_open, config)
    evaluation = _evaluate(leaf.child, leaf.reward, u[:, 2:], config)
    record = jax.vmap(_record, in_axes=(0, 0, None, 0, 0, None))
    return record(trees, path, i, leaf, evaluation, config)


def _record(
    tree: Tree,
    path: _Path,
    i: jax.Array,
    leaf: _Expansion,
    evaluation: _Evaluation,
    config: MCTSConfig,
) -> Tree:
    """Add the evaluated node to one tree, back its value up the path and prove."""
    if config.solver:  # a node left unexpanded is the proven root: proven nodes aren't entered
        node_exact = tree.root_exact
    else:  # or a finished game, entered again
        node_exact = tree.exact[path.node]
    tree = _add_node(tree, i, path.node, leaf, evaluation)
    # nothing to expand (a finished game, or a proven root): back its exact value up again
    value = jnp.where(leaf.expanded, evaluation.value, node_exact)
    moves = jnp.where(leaf.expanded, path.moves.at[path.depth].set(leaf.action), path.moves)
    depth = jnp.where(leaf.expanded, path.depth + 1, path.depth)  # of the evaluated node
    tree = _backup(tree, path.nodes, moves, depth, value)
    if config.solver:
        proven = leaf.expanded & evaluation.known
        tree = _prove(tree, path.nodes, moves, depth, proven, evaluation.exact)
    return tree


def _root_solved(trees: Tree) -> jax.Array:
    return ~jnp.isnan(trees.root_exact)


def _summary(tree: Tree, sims: jax.Array) -> SearchResult:
    n, w = tree.edges[0, :, _N], tree.edges[0, :, _W]
    proven = ~jnp.isnan(tree.edges[0, :, _PROVEN])
    return SearchResult(
        visits=n.astype(jnp.int32),
        q=jnp.where(n > 0, w / jnp.maximum(n, 1.0), 0.0),
        proven=proven,
        proven_value=jnp.where(proven, tree.edges[0, :, _PROVEN], 0.0),
        root_solved=_root_solved(tree),
        root_value=jnp.nan_to_num(tree.root_exact),
        simulations=sims,
    )


def search(boards: jax.Array, key: jax.Array, config: MCTSConfig) -> SearchResult:
    """UCT (with MCTS-Solver, by default) from a batch of positions.

    The batch runs in lock-step: simulation i of every tree, then i + 1, until the budget is
    spent or every root is proven (a proven root's further simulations change nothing). The
    uniforms of every 32 simulations are drawn at once from `key` (`_uniforms`), so a seed
    fixes the whole search.

    Args:
      boards: int [B, 9] canonical boards (the mover's marks +1), none finished.
      key: PRNG key.
      config: an `MCTSConfig` (its fields but `uct_c` shape the compiled program; `uct_c`
        is data to it, so another value compiles nothing).

    Returns:
      A `SearchResult` of [B, 9] per-move and [B] per-root arrays.
    """
    return _search_fresh(jnp.asarray(boards, jnp.int8), key, *_program_config(config))


def _program_config(config: MCTSConfig) -> tuple[MCTSConfig, jax.Array]:
    """`(config with the default uct_c: the static part, its uct_c as data)`."""
    return dataclasses.replace(config, uct_c=MCTSConfig.uct_c), jnp.float32(config.uct_c)


@functools.partial(jax.jit, static_argnames="config")
def _search_fresh(boards: jax.Array, key: jax.Array, config: MCTSConfig, uct_c: jax.Array):
    """`search`'s program: `_search` in buffers of its own, one program per static config."""
    scratch = _empty_trees(boards.shape[0], config.num_simulations + 1)
    return _search(boards, key, config, scratch, uct_c)[0]


def _search(
    boards: jax.Array, key: jax.Array, config: MCTSConfig, scratch: Tree, uct_c: jax.Array
) -> tuple[SearchResult, Tree]:
    """`search` in the buffers `scratch` (see `_plant`), which come back with the trees;
    `config.uct_c` is not read (`uct_c` is)."""
    batch = boards.shape[0]
    trees = jax.vmap(_plant)(scratch, boards)
    root_open_at = jax.vmap(_root_open, in_axes=(0, None))
    n = config.num_simulations
    block = min(_BLOCK, n)  # simulations per draw of uniforms
    block_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(-(-n // block)))

    def open_(i, trees):
        return (i < n) & ~jnp.all(_root_solved(trees))

    def step(u, i, trees, sims):
        open_before = ~_root_solved(trees)
        root_open = root_open_at(trees, config)
        path = _select(trees, u[:, 0], root_open, config, uct_c)
        return _simulate(trees, path, root_open, i, u, config), sims + open_before

    def cond(carry):
        i, trees, _ = carry
        return open_(i, trees)

    def body(carry):
        # a block of simulations, their uniforms drawn at once: on XLA:CPU jax.random's
        # threefry is a small loop of its own, whose steps cost as much as its arithmetic
        # for one simulation's few thousand numbers
        i, trees, sims = carry
        u = _uniforms(block_keys[i // block], (block, batch, 2 + config.num_rollouts, 9))

        def more(inner):
            j, i, trees, _ = inner
            return (j < block) & open_(i, trees)

        def one(inner):
            j, i, trees, sims = inner
            trees, sims = step(u[j], i, trees, sims)
            return j + 1, i + 1, trees, sims

        _, i, trees, sims = jax.lax.while_loop(more, one, (jnp.int32(0), i, trees, sims))
        return i, trees, sims

    init = (jnp.int32(0), trees, jnp.zeros((batch,), jnp.int32))
    _, trees, sims = jax.lax.while_loop(cond, body, init)
    return jax.vmap(_summary)(trees, sims), trees


# The agent's search: `_search` in donated buffers (from `_empty_trees` or the agent's last
# search of the same shapes), handed back to the next search. At 256 trees of 1001 nodes
# (40 MB, over glibc's 32 MB mmap threshold) new buffers are mapped afresh, page by page,
# on every call: about 15 ms a search on the Intel Xeon here, where a search takes 1-350 ms.
# (`search` keeps its own program: a caller who does not hand the buffers back would pay
# for them outside the program and again for freeing them.)
_search_into = jax.jit(_search, static_argnames="config", donate_argnames="scratch")


@jax.jit
def choose_move(result: SearchResult, boards: jax.Array, key: jax.Array) -> jax.Array:
    """The move to play after `search`: the most-visited legal move, except that a proven
    win is always played and a proven loss never while another move remains (ties at random).

    Args:
      result: `search`'s `SearchResult` for `boards`.
      boards: int [B, 9] the searched canonical boards.
      key: PRNG key for breaking ties.

    Returns:
      int32 [B]: the chosen cell of each board.
    """
    legal = boards == 0
    best = jnp.where(
        result.root_solved[:, None],
        result.proven & (result.proven_value == result.root_value[:, None]),
        ~(result.proven & (result.proven_value == -1.0)),
    )
    candidates = legal & best
    candidates = jnp.where(jnp.any(candidates, -1, keepdims=True), candidates, legal)
    noise = jax.random.uniform(key, boards.shape, jnp.float32, minval=0.0, maxval=0.5)
    return jnp.argmax(jnp.where(candidates, result.visits + noise, -jnp.inf), axis=-1).astype(
        jnp.int32
    )


def _choose(
    boards: jax.Array, key: jax.Array, config: MCTSConfig, scratch: Tree | None = None
) -> tuple[jax.Array, Tree]:
    """The moves for `boards` and the search's buffers (to hand to the next search)."""
    # not one jit around both: the search keeps a single compiled program per config and shape
    search_key, tie_key = jax.random.split(key)
    if scratch is None:
        scratch = _empty_trees(boards.shape[0], config.num_simulations + 1)
    static, uct_c = _program_config(config)
    result, scratch = _search_into(boards, search_key, static, scratch, uct_c)
    return choose_move(result, boards, tie_key), scratch


# ---------------------------------------------------------------------- the agent
_BUCKETS = (1, 64, 256)
_PAD = np.array([1, 1, 0, -1, -1, 1, -1, 1, -1], np.int8)  # one move left, and it wins


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
        # the last search's buffers per batch size, reused by the next search of that size
        # (`_search_into`): at most one per bucket, 40 MB for 256 boards at 1000 simulations
        self._scratch: dict[tuple[int, MCTSConfig], Tree] = {}

    def __repr__(self) -> str:
        return f"MCTSAgent({self.config}, seed={self.seed})"

    def _choose(self, boards: jax.Array, key: jax.Array) -> jax.Array:
        # keyed by the config too: `config` may be replaced between searches, and buffers of
        # another budget have another number of nodes
        slot = (boards.shape[0], self.config)
        if any(config != self.config for _, config in self._scratch):
            self._scratch = {k: v for k, v in self._scratch.items() if k[1] == self.config}
        # popped first (the search takes them), kept again only once its moves are fetched:
        # the buffers of a search that failed are not handed to the next one
        moves, scratch = _choose(boards, key, self.config, self._scratch.pop(slot, None))
        moves = np.asarray(moves)
        self._scratch[slot] = scratch
        return moves

    def act_batch(
        self, boards: Any, players: Any, *, key: jax.Array, _single: bool = False
    ) -> np.ndarray:
        """Search many positions at once and return a move for each.

        Args:
          boards: int [B, 9] boards (0 empty, 1 X, -1 O), each checked like `act`'s.
          players: int [B], the player to move on each board.
          key: PRNG key for the searches (batches are cut into chunks of up to 256 boards
            and padded to 64 or 256: a few compiled programs per config; `act` searches a
            single board).

        Returns:
          int64 [B]: the cell chosen on each board.
        """
        b, p = check_positions(boards, players)
        canon = (b * p[:, None]).astype(np.int8)
        out = np.empty(len(canon), np.int64)
        step = _BUCKETS[-1]
        sizes = _BUCKETS if len(canon) == 1 and _single else _BUCKETS[1:]
        for start in range(0, len(canon), step):
            chunk = canon[start : start + step]
            size = next(s for s in sizes if s >= len(chunk))
            padded = np.tile(_PAD, (size, 1))  # proven in one simulation; discarded
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
    solver: bool = MCTSConfig.solver,
) -> MCTSAgent:
    """`make_agent("mcts", ...)`: UCT with random rollouts and MCTS-Solver; see `MCTSConfig`."""
    config = MCTSConfig(
        num_simulations=num_simulations,
        uct_c=uct_c,
        num_rollouts=num_rollouts,
        solve_leaves=solve_leaves,
        solver=solver,
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
    as_player = check_player(as_player, "as_player")
    key = jax.random.key(seed)
    moves: dict[tuple[int, ...], int] = {}
    layer = {(0,) * 9}
    player = 1
    for _ in range(9):
        live = sorted(c for c in layer if not winner_of(c) and 0 in c)
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
