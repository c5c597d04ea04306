"""The functional environment API, compatible with gymnax 1.x.

An environment is a stateless object; everything that changes lives in an `EnvState`
pytree and every physical constant in an `EnvParams` pytree (so both can be vmapped,
differentiated and fitted):

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

Unlike gymnax, `step` returns the raw transition and never resets by itself: planners and
system identification need the true next state. Auto-reset is the `AutoReset` wrapper.
`truncated` is true once `state.time >= params.max_steps_in_episode` (Gymnasium's
`TimeLimit` semantics: it may be true together with `terminated`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.envs import spaces


@struct.dataclass
class EnvState:
    """Base of every environment state: the step count within the episode."""

    time: jax.Array


@struct.dataclass
class EnvParams:
    """Base of every environment's constants."""

    max_steps_in_episode: int = 500
    """Episode length at which `truncated` becomes true."""


def concrete_or_none(x: Any) -> np.ndarray | None:
    """`x` as a host array, or None when any leaf is traced (checks then happen elsewhere)."""
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x)):
        return None
    return np.asarray(x)


def check_discrete_action(action: Any, n: int, what: str = "action") -> None:
    """Raise `ValueError` if a concrete (not traced) `action` is not an integer in `0 .. n-1`.

    Traced actions are not checked (each environment documents what happens then).
    """
    a = concrete_or_none(action)
    if a is None:
        return
    if a.shape != () or not np.issubdtype(a.dtype, np.number) or a != np.floor(a):
        raise ValueError(
            f"{what} must be one integer in 0..{n - 1}, got {action!r}; pass a scalar index."
        )
    if not 0 <= int(a) < n:
        raise ValueError(f"{what} {int(a)} is out of range; valid {what}s are 0..{n - 1}.")


def _freeze(v: Any) -> Any:
    """A hashable stand-in for a constructor argument (arrays by value, else by identity)."""
    if isinstance(v, np.ndarray | jax.Array):
        a = np.asarray(v)
        return (a.shape, a.dtype.str, a.tobytes())
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(_freeze(x) for x in v)
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return v


TState = TypeVar("TState", bound=EnvState)
TParams = TypeVar("TParams", bound=EnvParams)


class Environment(Generic[TState, TParams]):
    """A pure-JAX environment. Subclasses implement `reset_env` and `step_env`.

    `step_env(key, state, action, params) -> obs, state, reward, terminated, info` and
    `reset_env(key, params) -> obs, state`; this base adds truncation and jit.
    """

    #: Set by wrappers that reset by themselves when an episode ends.
    auto_resets: bool = False

    # Two environments of the same class built with the same arguments are equal, so jitted
    # functions that take the environment as a static argument compile once for all of them.
    def _identity(self) -> tuple:
        return (type(self), _freeze(vars(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def check_params(self, params: TParams) -> None:
        """Raise `ValueError`/`TypeError` for concrete `params` that are invalid.

        Called by `bellmax.make`; the base accepts everything. Traced fields are skipped.
        """

    # ------------------------------------------------------------------ API
    @property
    def default_params(self) -> TParams:
        """The environment's standard constants."""
        raise NotImplementedError

    @partial(jax.jit, static_argnums=0)
    def reset(self, key: jax.Array, params: TParams | None = None) -> tuple[Any, TState]:
        """Start an episode. Returns `(obs, state)`."""
        if params is None:
            params = self.default_params
        return self.reset_env(key, params)

    @partial(jax.jit, static_argnums=0)
    def step(
        self, key: jax.Array, state: TState, action: Any, params: TParams | None = None
    ) -> tuple[Any, TState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """Advance one step. Returns `(obs, state, reward, terminated, truncated, info)`."""
        if params is None:
            params = self.default_params
        obs, state, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = self.is_truncated(state, params)
        return obs, state, reward, jnp.asarray(terminated), truncated, info

    def is_truncated(self, state: TState, params: TParams) -> jax.Array:
        """Whether the episode reached its time limit."""
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    # ------------------------------------------------------------------ to implement
    def reset_env(self, key: jax.Array, params: TParams) -> tuple[Any, TState]:
        raise NotImplementedError

    def step_env(
        self, key: jax.Array, state: TState, action: Any, params: TParams
    ) -> tuple[Any, TState, jax.Array, jax.Array, dict[str, Any]]:
        raise NotImplementedError

    def action_space(self, params: TParams | None = None) -> spaces.Space:
        """The valid actions."""
        raise NotImplementedError

    def observation_space(self, params: TParams | None = None) -> spaces.Space:
        """The observations this environment emits."""
        raise NotImplementedError

    # ------------------------------------------------------------------ conveniences
    @property
    def name(self) -> str:
        """Registered id (or class name)."""
        return type(self).__name__

    @property
    def num_actions(self) -> int:
        """Number of discrete actions (or the action dimension for a `Box`)."""
        space = self.action_space(self.default_params)
        if isinstance(space, spaces.Discrete):
            return space.n
        return int(jnp.prod(jnp.asarray(space.shape)))

    @property
    def unwrapped(self) -> Environment:
        """The innermost environment (wrappers override)."""
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Wrapper(Environment):
    """Base of environment wrappers: delegates everything it does not override."""

    def __init__(self, env: Environment):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self):
        return self._env.default_params

    @property
    def name(self) -> str:
        return self._env.name

    @property
    def unwrapped(self) -> Environment:
        return self._env.unwrapped

    def action_space(self, params=None):
        return self._env.action_space(params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"
