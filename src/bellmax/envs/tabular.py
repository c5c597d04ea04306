"""Environments that are also exact finite MDPs.

A `TabularEnvironment` is a sampled environment (the gymnax API, states numbered
`0 .. S-1`) that can also hand out its exact model as a `TabularMDP`, so the same world
serves Monte Carlo and TD learners (by sampling) and dynamic programming (exactly).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from bellmax.core.mdp import TabularMDP
from bellmax.envs._tabular_tools import require_concrete
from bellmax.envs.environment import Environment


class TabularEnvironment(Environment):
    """A sampled environment whose states are numbered and whose exact model is known.

    Subclasses implement `tabular_mdp(params)`, and `state_index(state)` and
    `state_from_index(s)` unless their state is one integer field beside `time` (then they
    set `state_type` and `index_field` instead); worlds drawn on a grid also set
    `grid_shape` (rows, cols) and implement `cell_of(s) -> (row, col)`.
    """

    #: (rows, cols) for grid worlds, else None.
    grid_shape: tuple[int, int] | None = None
    #: The state class, where the state is one integer field (`index_field`) and `time`.
    state_type: ClassVar[type | None] = None
    #: The field of `state_type` that holds the state index.
    index_field: ClassVar[str] = "pos"

    def host_params(self, params: Any, what: str) -> Any:
        """`params` (the defaults for None), concrete and checked, for host-side model code.

        Raises:
          TypeError: `params` holds traced values (`what`, e.g. "tabular_mdp", builds numpy
            arrays on the host), or is not this environment's params class.
          ValueError: a field is outside its bounds.
        """
        params = self.default_params if params is None else params
        require_concrete(params, f"{self.name}.{what}")
        self.check_params(params)
        return params

    def tabular_mdp(self, params: Any = None) -> TabularMDP:
        """The exact model: `P[s, a, s']`, expected `R[s, a]`, the discount, terminal states."""
        raise NotImplementedError

    def state_index(self, state: Any) -> jax.Array:
        """The integer index `0 .. S-1` of an environment state (jittable)."""
        if self.state_type is None:
            raise NotImplementedError
        return jnp.asarray(getattr(state, self.index_field), jnp.int32)

    def state_from_index(self, s: jax.Array) -> Any:
        """An environment state whose `state_index` is `s`, at time 0 (jittable; used for
        exploring starts and for sampling the model from every state)."""
        if self.state_type is None:
            raise NotImplementedError
        s = jnp.asarray(s, jnp.int32)
        return self.state_type(**{self.index_field: s, "time": jnp.zeros_like(s)})

    def cell_of(self, s: int) -> tuple[int, int]:
        """Grid cell `(row, col)` of state index `s` (grid worlds only)."""
        raise NotImplementedError(f"{self.name} is not drawn on a grid.")
