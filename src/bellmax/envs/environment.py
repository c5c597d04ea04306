"""The functional environment API, shaped like gymnax's (`reset_env`/`step_env`, `EnvParams`
pytrees); gymnax's full contract (auto-reset, its spaces and `info`) is
`bellmax.envs.to_gymnax(env)`.

An environment is a stateless object; everything that changes lives in an `EnvState`
pytree and every physical constant in an `EnvParams` pytree (so both can be vmapped,
differentiated and fitted):

    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

Unlike gymnax, `step` returns the raw transition and never resets by itself: planners and
system identification need the true next state. Auto-reset is the `AutoReset` wrapper.
`truncated` is true once `state.time >= params.max_steps_in_episode` (Gymnasium's
`TimeLimit` semantics: it may be true together with `terminated`).

Inputs are checked at this boundary (DESIGN.md rule 9), but only when they are concrete:
`reset` and `step` run `check_params` on `params` (its class and the bounds declared with
its fields) and `step` runs `check_action` (the action against `action_space`) before the jitted
code. Inside `jit`, `vmap` or `scan` the inputs are tracers and nothing is checked, at no
run-time cost; each environment's docstring says what an invalid action does there, and
`bellmax.envs.checked(env)` checks traced inputs and the outputs as well.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar, Generic, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_prng_key
from bellmax.envs import spaces
from bellmax.envs._checks import (
    check_action,
    check_action_type,
    check_discrete_action,
    check_param_fields,
    check_params_type,
    concrete_or_none,
    episode_limit,
    is_traced,
)

__all__ = [
    "EnvParams",
    "EnvState",
    "Environment",
    "Wrapper",
    "check_action_type",
    "check_discrete_action",
    "concrete_or_none",
]


@struct.dataclass
class EnvState:
    """Base of every environment state: the step count within the episode."""

    time: jax.Array


@struct.dataclass
class EnvParams:
    """Base of every environment's constants.

    Subclasses declare each numeric field with its valid values, `bounded(default, bounds)`
    (`episode_limit(default)` for `max_steps_in_episode`), so that `Environment.check_params`
    (and `checked` under `jit`) can check them; `_checks.field_bounds_of` lists them.
    """

    max_steps_in_episode: int = episode_limit(500)
    """Episode length at which `truncated` becomes true."""


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
    `reset_env(key, params) -> obs, state`; this base adds truncation, jit and the input
    checks of concrete values (see the module docstring): `check_params` (the class
    `params_type` and the bounds declared with the fields) and `check_action` (discrete actions must
    be one integer in range, continuous ones the space's shape and finite; out-of-bounds
    continuous actions are clipped by the environments, as Gymnasium's do).
    """

    #: Set by wrappers that reset by themselves when an episode ends.
    auto_resets: bool = False
    #: The `EnvParams` class this environment takes (checked by `check_params`); its
    #: defaults are `default_params` unless a subclass overrides that.
    params_type: ClassVar[type] = EnvParams
    #: The registered id, e.g. "CartPole-v1" (`name`; the class name where empty).
    env_id: ClassVar[str] = ""
    #: Players taking turns: 1 for a single agent's environment, 2 for a two-player game
    #: (`TicTacToe-v0`: each step's reward is the mover's, the next observation the
    #: opponent's), which single-agent learners refuse.
    num_players: ClassVar[int] = 1

    # Two environments of the same class built with the same arguments are equal, so jitted
    # functions that take the environment as a static argument compile once for all of them.
    def _identity(self) -> tuple:
        return (type(self), _freeze(vars(self)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Environment) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def check_params(self, params: TParams) -> None:
        """Raise `TypeError`/`ValueError` for concrete `params` that are invalid.

        Called by `bellmax.make`, `reset` and `step`. `params` must be a `params_type` and
        every field declared with `bounded` inside its bounds; a `TypeError`
        or `ValueError` names the field, its value and the valid range. Traced fields are
        skipped. Environments with more structure (grid layouts) extend this.
        """
        check_params_type(params, self.params_type, self.name)
        check_param_fields(params)

    def check_action(self, action: Any, params: TParams | None = None) -> None:
        """Raise `TypeError`/`ValueError` for a concrete action `action_space` does not take.

        A discrete action must be one integer (Python, numpy or jax; not a float or a bool)
        in `0 .. n-1`; a continuous one a number array of the space's shape (a scalar for a
        one-dimensional `Box`) with finite entries. Continuous actions outside the bounds
        are clipped by the environments (Gymnasium's convention), so they pass. Traced
        actions are not checked (see the environment's docstring for what they do).
        """
        if is_traced(action):
            return
        with jax.ensure_compile_time_eval():  # a space built with jnp, even while tracing
            space = self.action_space(None if params is None or is_traced(params) else params)
        check_action(action, space, f"{self.name}.step")

    # ------------------------------------------------------------------ API
    @property
    def default_params(self) -> TParams:
        """The environment's standard constants: `params_type()` unless overridden."""
        return self.params_type()

    def reset(self, key: jax.Array, params: TParams | None = None) -> tuple[Any, TState]:
        """Start an episode. Returns `(obs, state)`.

        Concrete `params` are checked first (`check_params`); `None` means the defaults.
        """
        check_prng_key(key, f"{self.name}.reset")
        if params is not None:
            self.check_params(params)
        return self._reset(key, params)

    def step(
        self, key: jax.Array, state: TState, action: Any, params: TParams | None = None
    ) -> tuple[Any, TState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """Advance one step, raw. Returns `(obs, state, reward, terminated, truncated, info)`.

        `step` never resets, not even after the episode ends, and returns the true next
        state (planners and system identification need it); `truncated` is
        `state.time >= params.max_steps_in_episode`. For gymnax's auto-resetting contract
        use `bellmax.envs.to_gymnax(env)`; for auto-reset inside bellmax, the `AutoReset`
        wrapper or a `JaxVectorEnv`.

        Concrete `params` and `action` are checked first (`check_params`, `check_action`);
        an action given as a (nested) list is taken as an array.
        """
        check_prng_key(key, f"{self.name}.step")
        if params is not None:
            self.check_params(params)
        self.check_action(action, params)
        if isinstance(action, list | tuple) and not is_traced(action):
            action = np.asarray(action)
        return self._step(key, state, action, params)

    @partial(jax.jit, static_argnums=0)
    def _reset(self, key: jax.Array, params: TParams | None) -> tuple[Any, TState]:
        """The jitted reset (wrappers override this one; `reset` checks, then calls it)."""
        if params is None:
            params = self.default_params
        return self.reset_env(key, params)

    @partial(jax.jit, static_argnums=0)
    def _step(
        self, key: jax.Array, state: TState, action: Any, params: TParams | None
    ) -> tuple[Any, TState, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """The jitted step (wrappers override this one; `step` checks, then calls it)."""
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
        """Registered id (`env_id`, or the class name where that is empty)."""
        return self.env_id or type(self).__name__

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
    """Base of environment wrappers: delegates everything it does not override.

    A wrapper overrides the jitted `_reset`/`_step` (calling the inner env's public
    `reset`/`step`); the inherited `reset`/`step` check concrete inputs against the inner
    environment first, so a bad action is refused before any wrapper runs.
    """

    def __init__(self, env: Environment):
        if not isinstance(env, Environment):  # (it failed later, as an AttributeError)
            pair = isinstance(env, tuple) and len(env) == 2 and isinstance(env[0], Environment)
            hint = (
                "unpack the pair bellmax.make returns: env, params = bellmax.make(ID), then "
                f"{type(self).__name__}(env)"
                if pair
                else "pass an environment object, e.g. bellmax.make('CartPole-v1')[0]"
            )
            raise TypeError(
                f"{type(self).__name__} wraps a bellmax Environment, got "
                f"{type(env).__name__}; {hint}."
            )
        self._env = env

    def __getattr__(self, name: str) -> Any:
        if name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    @property
    def default_params(self):
        return self._env.default_params

    @property
    def params_type(self) -> type:  # type: ignore[override]
        return self._env.params_type

    def check_params(self, params):
        self._env.check_params(params)

    def check_action(self, action, params=None):
        self._env.check_action(action, params)

    @property
    def name(self) -> str:
        return self._env.name

    # The base class's class attributes would be found before `__getattr__` delegates, so
    # the wrapped environment's are passed on explicitly (`AutoReset` sets its own).
    @property
    def auto_resets(self) -> bool:  # type: ignore[override]
        return bool(self._env.auto_resets)

    @property
    def num_players(self) -> int:  # type: ignore[override]
        return int(self._env.num_players)

    @property
    def unwrapped(self) -> Environment:
        return self._env.unwrapped

    def action_space(self, params=None):
        return self._env.action_space(params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"
