"""Environments that are also exact finite MDPs.

A `TabularEnvironment` is a sampled environment (the gymnax API, states numbered
`0 .. S-1`) that can also hand out its exact model as a `TabularMDP`, so the same world
serves Monte Carlo and TD learners (by sampling) and dynamic programming (exactly).
"""

from __future__ import annotations

from typing import Any

import jax

from bellmax.core.mdp import TabularMDP
from bellmax.envs.environment import Environment


class TabularEnvironment(Environment):
    """A sampled environment whose states are numbered and whose exact model is known.

    Subclasses implement `tabular_mdp(params)` and `state_index(state)`; worlds drawn on a
    grid also set `grid_shape` (rows, cols) and implement `cell_of(s) -> (row, col)`.
    """

    #: (rows, cols) for grid worlds, else None.
    grid_shape: tuple[int, int] | None = None

    def tabular_mdp(self, params: Any = None) -> TabularMDP:
        """The exact model: `P[s, a, s']`, expected `R[s, a]`, the discount, terminal states."""
        raise NotImplementedError

    def state_index(self, state: Any) -> jax.Array:
        """The integer index `0 .. S-1` of an environment state (jittable)."""
        raise NotImplementedError

    def state_from_index(self, s: jax.Array) -> Any:
        """An environment state whose `state_index` is `s`, at time 0 (jittable; used for
        exploring starts and for sampling the model from every state)."""
        raise NotImplementedError

    def cell_of(self, s: int) -> tuple[int, int]:
        """Grid cell `(row, col)` of state index `s` (grid worlds only)."""
        raise NotImplementedError(f"{self.name} is not drawn on a grid.")
