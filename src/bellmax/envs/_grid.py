"""Deterministic grid worlds: one transition function for the sampled env and the exact MDP.

Every grid world of Sutton & Barto (Examples 3.5, 4.1, 6.5, 6.6) is an instance of one
layout, `GridParams`: terminal cells, a start distribution, an upward wind per column,
teleport cells (leaving them by any action jumps elsewhere with a bonus) and cliff cells
(entering them sends you back with a penalty). `grid_transition` is the single jittable rule
`(s, a) -> (s', r)`; `GridWorld.step_env` calls it once per step and `GridWorld.tabular_mdp`
calls it vmapped over every `(s, a)`, so the sampled world and the exact model cannot
disagree.

Cells are numbered row-major, `s = row * cols + col`, row 0 at the top. Actions are
0 up, 1 right, 2 down, 3 left; worlds with king's moves add 4 up-right, 5 down-right,
6 down-left, 7 up-left, and a "stay" action comes last when enabled (Exercise 6.9).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.mdp import TabularMDP
from bellmax.envs import spaces
from bellmax.envs._checks import (
    bounded,
    check_param_fields,
    discount,
    episode_limit,
    finite,
    is_traced,
)
from bellmax.envs._tabular_tools import host_array
from bellmax.envs.environment import EnvParams, EnvState
from bellmax.envs.tabular import TabularEnvironment

Cell = tuple[int, int]

#: (d_row, d_col) of actions 0 up, 1 right, 2 down, 3 left.
COMPASS_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int32)
#: The four diagonal king's moves that follow them: up-right, down-right, down-left, up-left.
DIAGONAL_MOVES = np.array([[-1, 1], [1, 1], [1, -1], [-1, -1]], dtype=np.int32)
#: The "stay" move (only the wind acts).
STAY_MOVE = np.array([[0, 0]], dtype=np.int32)


@struct.dataclass
class GridState(EnvState):
    """The agent's cell index `row * cols + col` and the step count."""

    pos: jax.Array
    time: jax.Array


@struct.dataclass
class GridParams(EnvParams):
    """The layout and rewards of a deterministic grid world (per-cell arrays are `[S]`).

    Build one with `grid_params`, which takes cells as `(row, col)` and validates.
    """

    terminal: Any = None
    """Bool `[S]`: absorbing terminal cells (0 reward once there)."""
    start: Any = None
    """Float `[S]`: the start-cell distribution of `reset`."""
    wind: Any = None
    """Int `[cols]`: cells the wind pushes the agent up when it leaves that column."""
    teleport_to: Any = None
    """Int `[S]`: leaving this cell by any action jumps to `teleport_to[s]` (-1: no teleport)."""
    teleport_reward: Any = None
    """Float `[S]`: reward of that jump."""
    cliff_to: Any = None
    """Int `[S]`: entering this cell sends the agent to `cliff_to[s]` instead (-1: not a cliff)."""
    cliff_reward: float = bounded(-100.0, finite("the reward of stepping into a cliff"))
    """Reward of stepping into a cliff cell."""
    step_reward: float = bounded(-1.0, finite("the reward of an ordinary move"))
    """Reward of an ordinary move."""
    off_grid_reward: float = bounded(-1.0, finite("the reward of a move off the grid"))
    """Reward of a move that would leave the grid (the agent stays on its edge)."""
    gamma: float = bounded(1.0, discount())
    """Discount of the exact MDP."""
    max_steps_in_episode: int = episode_limit(100_000)
    """Steps until truncation."""


def grid_params(
    shape: tuple[int, int],
    *,
    terminals: Iterable[Cell] = (),
    start: Cell | None = None,
    wind: Iterable[int] | None = None,
    teleports: Mapping[Cell, tuple[Cell, float]] | None = None,
    cliffs: Iterable[Cell] = (),
    cliff_to: Cell | None = None,
    cliff_reward: float = -100.0,
    step_reward: float = -1.0,
    off_grid_reward: float = -1.0,
    gamma: float = 1.0,
    max_steps_in_episode: int = 100_000,
) -> GridParams:
    """Build and validate a `GridParams` from cells given as `(row, col)`.

    Args:
      shape: `(rows, cols)`.
      terminals: absorbing terminal cells.
      start: the start cell; `None` starts uniformly on the non-terminal, non-cliff cells.
      wind: upward push per column (length `cols`); `None` means no wind.
      teleports: `{cell: (destination, reward)}`; leaving `cell` by any action jumps.
      cliffs: cliff cells; entering one costs `cliff_reward` and sends the agent to `cliff_to`.
      cliff_to: where cliffs send the agent (default: `start`).
      cliff_reward, step_reward, off_grid_reward, gamma, max_steps_in_episode: see `GridParams`.

    Returns:
      The validated `GridParams` (numpy arrays, so it can be vmapped or changed with `replace`).
    """
    rows, cols = _check_shape(shape)
    S = rows * cols

    def index(cell: Cell, what: str) -> int:
        try:
            r, c = (int(v) for v in cell)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be a (row, col) pair, got {cell!r}.") from None
        if not (0 <= r < rows and 0 <= c < cols):
            raise ValueError(
                f"{what} {cell!r} is outside the {rows}x{cols} grid; rows are 0..{rows - 1} "
                f"and columns 0..{cols - 1}."
            )
        return r * cols + c

    terminal = np.zeros(S, dtype=bool)
    for cell in terminals:
        terminal[index(cell, "terminal cell")] = True
    cliff_mask = np.zeros(S, dtype=bool)
    for cell in cliffs:
        cliff_mask[index(cell, "cliff cell")] = True
    if start is None:
        allowed = ~terminal & ~cliff_mask
        if not allowed.any():
            raise ValueError(
                "every cell is terminal or a cliff; leave at least one cell to start in."
            )
        start_dist = allowed / allowed.sum()
    else:
        start_dist = np.zeros(S)
        start_dist[index(start, "start cell")] = 1.0
    cliff_dest = -np.ones(S, dtype=np.int32)
    if cliff_mask.any():
        if cliff_to is None and start is None:
            raise ValueError(
                "cliffs need somewhere to send the agent: pass cliff_to=(row, col) or start."
            )
        cliff_dest[cliff_mask] = index(cliff_to if cliff_to is not None else start, "cliff_to")
    tele_dest = -np.ones(S, dtype=np.int32)
    tele_reward = np.zeros(S, dtype=np.float32)
    for cell, target in (teleports or {}).items():
        try:
            dest, reward = target
        except (TypeError, ValueError):
            raise TypeError(
                f"teleports[{cell!r}] must be (destination_cell, reward), got {target!r}."
            ) from None
        i = index(cell, "teleport cell")
        tele_dest[i] = index(dest, f"teleport destination of {cell!r}")
        tele_reward[i] = float(reward)
    wind_arr = np.zeros(cols, dtype=np.int32) if wind is None else np.asarray(list(wind))
    params = GridParams(
        terminal=terminal,
        start=start_dist.astype(np.float32),
        wind=wind_arr,
        teleport_to=tele_dest,
        teleport_reward=tele_reward,
        cliff_to=cliff_dest,
        cliff_reward=float(cliff_reward),
        step_reward=float(step_reward),
        off_grid_reward=float(off_grid_reward),
        gamma=float(gamma),
        max_steps_in_episode=int(max_steps_in_episode),
    )
    check_grid_params(params, (rows, cols))
    return params.replace(wind=np.asarray(wind_arr, dtype=np.int32))


def _check_shape(shape: Any) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be (rows, cols), got {shape!r}.") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"shape must have rows >= 1 and cols >= 1, got {shape!r}.")
    return rows, cols


def check_grid_params(params: GridParams, shape: tuple[int, int]) -> None:
    """Raise `ValueError`/`TypeError` naming the first inconsistent field of `params`.

    Host-side: `params` must hold concrete arrays (not tracers).
    """
    rows, cols = _check_shape(shape)
    S = rows * cols

    def per_cell(name: str, length: int = S, kind: str = "cell") -> np.ndarray:
        arr = host_array(getattr(params, name), name)
        if arr.shape != (length,):
            raise ValueError(
                f"{name} must have one entry per {kind}, shape ({length},), got {arr.shape}."
            )
        return arr

    terminal = per_cell("terminal").astype(bool)
    start = per_cell("start").astype(np.float64)
    if not np.all(np.isfinite(start)) or np.any(start < 0) or abs(start.sum() - 1.0) > 1e-5:
        raise ValueError(
            f"start must be a probability vector over the {S} cells (>= 0, summing to 1); "
            f"it sums to {start.sum():.6g}."
        )
    if np.any(start[terminal] > 0):
        bad = int(np.flatnonzero(terminal & (start > 0))[0])
        raise ValueError(
            f"start gives probability to terminal cell {divmod(bad, cols)}; start only in "
            "non-terminal cells."
        )
    wind = per_cell("wind", cols, "column")
    if not np.all(np.mod(wind, 1) == 0):
        raise ValueError(f"wind must hold whole numbers of cells, got {wind.tolist()}.")
    if np.any(wind < 0):
        raise ValueError(
            f"wind strengths must be >= 0 (the wind pushes up), got {wind.tolist()}; "
            "use 0 for calm columns."
        )
    for name in ("teleport_to", "cliff_to"):
        dest = per_cell(name)
        if not np.all(np.mod(dest, 1) == 0) or np.any((dest < -1) | (dest >= S)):
            raise ValueError(f"{name} entries must be cell indices in [0, {S}) or -1 for none.")
    cliff_to = host_array(params.cliff_to, "cliff_to").astype(np.int64)
    falls = cliff_to[cliff_to >= 0]
    if np.any(cliff_to[falls] >= 0):
        raise ValueError(
            "a cliff sends the agent onto another cliff cell; cliff_to must be a safe cell."
        )
    tele_reward = per_cell("teleport_reward")
    if not np.all(np.isfinite(tele_reward)):
        raise ValueError("teleport_reward must be finite.")
    check_param_fields(params)  # the scalar fields, by the bounds declared with them


def grid_transition(
    s: jax.Array, a: jax.Array, params: GridParams, shape: tuple[int, int], moves: np.ndarray
) -> tuple[jax.Array, jax.Array]:
    """The deterministic step of a grid world: next cell and reward (jittable, one example).

    Order of effects: a terminal cell absorbs with reward 0; a teleport cell jumps whatever
    the action; otherwise the move and the wind of the current column are added and the
    result is clipped to the grid (a move that would leave the grid earns
    `off_grid_reward` instead of `step_reward`); a cliff cell reached this way sends the
    agent to `cliff_to` with `cliff_reward`.

    Args:
      s: current cell index, int scalar.
      a: action index, int scalar (clipped to the valid range).
      params: the layout.
      shape: `(rows, cols)`.
      moves: `[A, 2]` array of `(d_row, d_col)` per action.

    Returns:
      `(next_cell, reward)`: int32 and float32 scalars.
    """
    rows, cols = shape
    s = jnp.asarray(s, jnp.int32)
    a = jnp.clip(jnp.asarray(a, jnp.int32), 0, moves.shape[0] - 1)
    row, col = s // cols, s % cols
    move = jnp.asarray(moves, jnp.int32)[a]
    to_row, to_col = row + move[0], col + move[1]
    off_grid = (to_row < 0) | (to_row >= rows) | (to_col < 0) | (to_col >= cols)
    wind = jnp.asarray(params.wind, jnp.int32)[col]
    nxt = jnp.clip(to_row - wind, 0, rows - 1) * cols + jnp.clip(to_col, 0, cols - 1)
    reward = jnp.where(off_grid, params.off_grid_reward, params.step_reward)

    cliff = jnp.asarray(params.cliff_to, jnp.int32)[nxt]
    reward = jnp.where(cliff >= 0, params.cliff_reward, reward)
    nxt = jnp.where(cliff >= 0, cliff, nxt)

    tele = jnp.asarray(params.teleport_to, jnp.int32)[s]
    reward = jnp.where(tele >= 0, jnp.asarray(params.teleport_reward)[s], reward)
    nxt = jnp.where(tele >= 0, tele, nxt)

    done = jnp.asarray(params.terminal, bool)[s]
    return jnp.where(done, s, nxt).astype(jnp.int32), jnp.where(done, 0.0, reward).astype(
        jnp.float32
    )


@partial(jax.jit, static_argnums=(1, 2))
def _transition_table(
    params: GridParams, shape: tuple[int, int], moves: tuple[tuple[int, int], ...]
) -> tuple[jax.Array, jax.Array]:
    """`grid_transition` on every `(s, a)`: next cells and rewards, `[S, A]` each."""
    moves_arr = np.asarray(moves, dtype=np.int32)
    one = lambda s, a: grid_transition(s, a, params, shape, moves_arr)  # noqa: E731
    S = shape[0] * shape[1]
    return jax.vmap(jax.vmap(one, (None, 0)), (0, None))(jnp.arange(S), jnp.arange(len(moves)))


class GridWorld(TabularEnvironment):
    """A deterministic grid world on `GridParams` (abstract: subclasses set the layout).

    Observation: the cell index `row * cols + col` (int32 scalar, `Discrete(rows * cols)`).
    Actions: 0 up, 1 right, 2 down, 3 left (plus king's moves where a subclass enables them).
    `terminated` is true on entering a terminal cell; continuing worlds end only by
    truncation at `max_steps_in_episode`.

    Invalid actions: outside `jit` an action that is not one integer in `0 .. A-1` raises
    (`TypeError` for a float or bool, `ValueError` for a value out of range or a shape
    other than `()`). Inside `jit`/`vmap`/`scan` actions are not checked and
    `grid_transition` clips them to the nearest valid action (-1 acts as 0 "up", 7 on a
    four-action grid as 3 "left"); `bellmax.envs.checked` reports them there.

    Subclasses set `grid_shape`, `moves` and `env_id` and implement `default_params`.
    """

    grid_shape: tuple[int, int] = (1, 1)
    #: `[A, 2]` moves `(d_row, d_col)` per action.
    moves: np.ndarray = COMPASS_MOVES
    state_type = GridState
    params_type = GridParams

    @property
    def num_states(self) -> int:
        """Number of cells."""
        return self.grid_shape[0] * self.grid_shape[1]

    # ------------------------------------------------------------------ dynamics
    def transition(
        self, s: jax.Array, a: jax.Array, params: GridParams
    ) -> tuple[jax.Array, jax.Array]:
        """`grid_transition` on this world's shape and moves: `(next_cell, reward)`."""
        return grid_transition(s, a, params, self.grid_shape, self.moves)

    def reset_env(self, key: jax.Array, params: GridParams) -> tuple[jax.Array, GridState]:
        pos = jax.random.choice(key, self.num_states, p=jnp.asarray(params.start)).astype(jnp.int32)
        state = GridState(pos=pos, time=jnp.asarray(0, jnp.int32))
        return state.pos, state

    def step_env(self, key, state: GridState, action, params: GridParams):
        nxt, reward = self.transition(state.pos, action, params)
        terminated = jnp.asarray(params.terminal, bool)[nxt]
        state = GridState(pos=nxt, time=state.time + 1)
        return state.pos, state, reward, terminated, {}

    # ------------------------------------------------------------------ tabular view
    def check_params(self, params: GridParams) -> None:
        """Raise a clear error if `params` does not describe a valid layout for this grid.

        Called by `bellmax.make`, `reset`, `step` and `tabular_mdp`. The scalar fields are
        checked by their declared bounds where concrete; the layout only when every field is
        concrete (check traced parameters where they are concrete, e.g. `bellmax.make`).
        """
        super().check_params(params)
        if is_traced(params):
            return  # checked where the parameters are concrete (e.g. bellmax.make)
        check_grid_params(params, self.grid_shape)

    def tabular_mdp(self, params: GridParams | None = None) -> TabularMDP:
        """The exact model, built by calling `transition` on every `(s, a)` (host-side).

        Terminal cells are absorbing with reward 0; `initial` is `params.start`.
        """
        params = self.host_params(params, "tabular_mdp")
        S, A = self.num_states, self.moves.shape[0]
        moves = tuple(tuple(int(v) for v in m) for m in self.moves)
        nxt, reward = _transition_table(params, tuple(self.grid_shape), moves)
        P = np.zeros((S, A, S))
        s_idx, a_idx = np.indices((S, A))
        P[s_idx, a_idx, np.asarray(nxt)] = 1.0
        return TabularMDP(
            P=P,
            R=np.asarray(reward, dtype=np.float64),
            gamma=float(params.gamma),
            terminal=np.asarray(params.terminal, dtype=bool),
            initial=np.asarray(params.start, dtype=np.float64) / np.sum(params.start),
            name=self.name,
        )

    def cell_of(self, s: int) -> tuple[int, int]:
        r, c = divmod(int(s), self.grid_shape[1])
        return r, c

    def index_of(self, cell: Cell) -> int:
        """The state index of grid cell `(row, col)`."""
        rows, cols = self.grid_shape
        r, c = (int(v) for v in cell)
        if not (0 <= r < rows and 0 <= c < cols):
            raise ValueError(f"cell {cell!r} is outside the {rows}x{cols} grid of {self.name}.")
        return r * cols + c

    # ------------------------------------------------------------------ spaces
    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.moves.shape[0])

    def observation_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)
