"""The grid worlds of Sutton & Barto (2nd ed.), sampled and exact.

All four share one transition rule (`bellmax.envs._grid.grid_transition`), so each is both a
jittable, vmappable environment and an exact `TabularMDP` (`env.tabular_mdp(params)`).

Conventions, for every grid here:
- cells are numbered row-major, `s = row * cols + col`, row 0 at the top;
  `env.cell_of(s)` and `env.index_of((row, col))` convert;
- the observation is the cell index (int32 scalar, `Discrete(rows * cols)`);
- actions are 0 up, 1 right, 2 down, 3 left (Gymnasium's CliffWalking order);
- a move that would leave the grid leaves the agent on the edge;
- terminal cells are absorbing with reward 0 in the exact MDP (`mdp.terminal` marks them).

Frames (48 pixels a cell; the agent a red disc, goals green, cliffs grey, teleports blue)
come from `bellmax.envs.render.render_frame(env, state, params)`, or
`render_mode="rgb_array"` through the Gymnasium bridge.
"""

from __future__ import annotations

import numpy as np

from bellmax.core.checks import check_bool
from bellmax.envs._grid import (
    COMPASS_MOVES,
    DIAGONAL_MOVES,
    STAY_MOVE,
    GridParams,
    GridState,
    GridWorld,
    grid_params,
)

__all__ = [
    "CliffWalking",
    "GridParams",
    "GridState",
    "GridWorld",
    "GridWorld4x4",
    "GridWorld5x5",
    "WindyGridworld",
    "grid_params",
]


class GridWorld4x4(GridWorld):
    """Example 4.1: a 4x4 grid, terminal corners (0, 0) and (3, 3), reward -1 per step.

    Undiscounted (`gamma = 1`) and episodic; episodes start uniformly on the 14
    non-terminal cells. The equiprobable random policy has values 0, -14, -20, -22, ...
    (Figure 4.1).
    """

    grid_shape = (4, 4)
    env_id = "GridWorld4x4-v0"

    @property
    def default_params(self) -> GridParams:
        return grid_params(
            self.grid_shape,
            terminals=[(0, 0), (3, 3)],
            step_reward=-1.0,
            off_grid_reward=-1.0,
            gamma=1.0,
            max_steps_in_episode=1000,
        )


class GridWorld5x5(GridWorld):
    """Example 3.5: a 5x5 continuing grid with two teleports (Figure 3.2).

    From A = (0, 1) every action jumps to A' = (4, 1) with reward +10; from B = (0, 3) to
    B' = (2, 3) with +5. A move off the grid keeps the agent in place with reward -1, any
    other move earns 0. `gamma = 0.9`. There is no terminal state: the sampled env starts
    uniformly on all 25 cells and is truncated after `max_steps_in_episode` (100) steps.
    """

    grid_shape = (5, 5)
    env_id = "GridWorld5x5-v0"

    @property
    def default_params(self) -> GridParams:
        return grid_params(
            self.grid_shape,
            teleports={(0, 1): ((4, 1), 10.0), (0, 3): ((2, 3), 5.0)},
            step_reward=0.0,
            off_grid_reward=-1.0,
            gamma=0.9,
            max_steps_in_episode=100,
        )


class CliffWalking(GridWorld):
    """Example 6.6: a 4x12 grid from S = (3, 0) to the terminal goal G = (3, 11).

    Reward -1 per step; stepping into the cliff (3, 1..10) gives -100 and sends the agent
    back to S (the episode goes on), as in Gymnasium's CliffWalking-v1. Undiscounted and
    episodic; `max_steps_in_episode` (100 000) is only a guard.
    """

    grid_shape = (4, 12)
    env_id = "CliffWalking-v0"

    @property
    def default_params(self) -> GridParams:
        return grid_params(
            self.grid_shape,
            terminals=[(3, 11)],
            start=(3, 0),
            cliffs=[(3, c) for c in range(1, 11)],
            cliff_reward=-100.0,
            step_reward=-1.0,
            off_grid_reward=-1.0,
            gamma=1.0,
        )


class WindyGridworld(GridWorld):
    """Example 6.5: a 7x10 grid from S = (3, 0) to the goal G = (3, 7) against an upward wind.

    The wind of the column the agent leaves (strengths 0 0 0 1 1 1 2 2 1 0) is added to its
    move before clipping to the grid. Reward -1 per step, undiscounted, episodic; the
    shortest path takes 15 steps. `max_steps_in_episode` (100 000) is only a guard.

    Args:
      king_moves: add the four diagonal moves as actions 4 up-right, 5 down-right,
        6 down-left, 7 up-left (Exercise 6.9).
      stay: add a last action that does not move (only the wind acts; Exercise 6.9).
    """

    grid_shape = (7, 10)
    env_id = "WindyGridworld-v0"

    def __init__(self, king_moves: bool = False, stay: bool = False):
        self.king_moves = check_bool(king_moves, "king_moves", owner="WindyGridworld")
        self.stay = check_bool(stay, "stay", owner="WindyGridworld")
        parts = [COMPASS_MOVES]
        if self.king_moves:
            parts.append(DIAGONAL_MOVES)
        if self.stay:
            parts.append(STAY_MOVE)
        self.moves = np.concatenate(parts)

    @property
    def default_params(self) -> GridParams:
        return grid_params(
            self.grid_shape,
            terminals=[(3, 7)],
            start=(3, 0),
            wind=(0, 0, 0, 1, 1, 1, 2, 2, 1, 0),
            step_reward=-1.0,
            off_grid_reward=-1.0,
            gamma=1.0,
        )

    def __repr__(self) -> str:
        return f"WindyGridworld(king_moves={self.king_moves}, stay={self.stay})"
