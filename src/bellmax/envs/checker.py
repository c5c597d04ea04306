"""`checked(env)`: an environment that validates everything going in and coming out.

Gymnasium's environment checker, made functional and jittable. A checked environment's
`reset` and `step` validate

- `params`: its class and every field's declared bounds (masses > 0, probabilities in range,
  ...), also after `params.replace(...)`, and, where concrete, the rest of `check_params`
  (e.g. a grid's layout);
- the action: dtype and shape for the action space, finite, inside a `Box`'s bounds (plain
  environments clip out-of-bounds continuous actions silently, as Gymnasium's do; pass
  `allow_out_of_bounds=True` to accept them) and in range for discrete spaces;
- the outputs: the observation has the observation space's shape and dtype, is finite and
  lies in the space; the reward is finite.

How errors surface:

- called outside `jit` (concrete values): at once, as `TypeError` (wrong type or dtype) or
  `ValueError` (wrong value or shape) naming the bad value, what is valid and the fix;
- inside `jit`/`vmap`/`scan`: dtype and shape errors still raise at trace time (they are
  static). Value checks are staged into the computation with `jax.debug.callback` (not
  `checkify`, so nothing needs functionalizing): a `lax.cond` calls the host only when a
  check fails, and the host raises the same `ValueError`. JAX reports it as a
  `jax.errors.JaxRuntimeError` whose message ends with that `ValueError` and its text, when
  the computation runs (with asynchronous dispatch, at the latest when a result is read),
  and logs "jax.debug.callback failed". Under `vmap` the cond becomes a select, so the host
  is called for every element on every step: a checked environment is for finding bugs, not
  for training at full speed.

Bounds that depend on traced `params` (a `Box` built from `max_torque`, `x_threshold`) are
checked only where `params` are concrete, e.g. closed over by the jitted function or passed
outside `jit`; with traced `params` the observation and action bounds are not checked (their
finiteness and the parameters' own bounds still are).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_bool
from bellmax.envs import spaces
from bellmax.envs._checks import (
    Problem,
    action_problems,
    as_array,
    check_action_type,
    enforce,
    finite_problem,
    is_traced,
    observation_problems,
    param_problems,
)
from bellmax.envs.environment import Environment, Wrapper

__all__ = ["CheckedEnv", "checked"]


def _space_or_none(make_space: Any, params: Any) -> Any:
    """`make_space(params)` (evaluated eagerly, also while tracing), or None when it cannot
    be built because `params` are traced."""
    try:
        with jax.ensure_compile_time_eval():
            return make_space(params)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        if not is_traced(params):
            raise
        return None


def _shape_only(space: Any) -> Any:
    """A stand-in with `space`'s shape and kind but no bounds to check (for traced params)."""
    if isinstance(space, spaces.Box):
        return spaces.Box(-float("inf"), float("inf"), space.shape, space.dtype)
    return space


class CheckedEnv(Wrapper):
    """An environment whose `reset`/`step` validate inputs and outputs (see the module).

    Build it with `checked(env)`.
    """

    def __init__(self, env: Environment, *, allow_out_of_bounds: bool = False):
        super().__init__(env)
        self.allow_out_of_bounds = allow_out_of_bounds

    def __repr__(self) -> str:
        return f"checked({self._env!r})"

    # ------------------------------------------------------------------ pieces
    def _params(self, params: Any, who: str) -> tuple[Any, list[Problem]]:
        p = self._env.default_params if params is None else params
        try:
            self._env.check_params(p)  # raises for concrete fields; skips traced ones
        except (TypeError, ValueError) as e:
            raise type(e)(f"{who}: {e}") from None
        return p, param_problems(p, who)

    def _action(self, action: Any, params: Any, who: str) -> list[Problem]:
        space = _space_or_none(self._env.action_space, params)
        within = not self.allow_out_of_bounds
        if space is None:  # bounds built from traced params: check shape and finiteness
            space, within = _shape_only(_space_or_none(self._env.action_space, None)), False
        if is_traced(action):
            a, xp = jnp.asarray(action), jnp
        else:
            a, xp = as_array(action, f"{who}: the action"), np
        check_action_type(action, a.dtype, a.shape, space, who)
        return action_problems(a, space, who, within_bounds=within, xp=xp)

    def _outputs(self, obs: Any, params: Any, who: str) -> list[Problem]:
        space = _space_or_none(self._env.observation_space, params)
        within = space is not None
        if space is None:
            space = _shape_only(_space_or_none(self._env.observation_space, None))
        return observation_problems(obs, space, who, within_space=within)

    # ------------------------------------------------------------------ API
    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        """The inner `reset`, with `params` checked before and the observation after."""
        who = f"checked({self.name}).reset"
        p, problems = self._params(params, who)
        enforce(problems)
        obs, state = self._env.reset(key, p)
        enforce(self._outputs(obs, p, who))
        return obs, state

    def step(self, key: jax.Array, state: Any, action: Any, params: Any = None):
        """The inner `step`, with `params` and the action checked before, the outputs after.

        Returns `(obs, state, reward, terminated, truncated, info)`.
        """
        who = f"checked({self.name}).step"
        p, problems = self._params(params, who)
        enforce(problems + self._action(action, p, who))
        obs, new_state, reward, terminated, truncated, info = self._env.step(key, state, action, p)
        enforce([*self._outputs(obs, p, who), finite_problem(reward, f"{who}: the reward")])
        return obs, new_state, reward, terminated, truncated, info


def checked(env: Environment, *, allow_out_of_bounds: bool = False) -> CheckedEnv:
    """Wrap `env` so that its `reset`/`step` validate params, actions and observations.

    Works outside `jit` (errors raise at once, as `TypeError`/`ValueError`) and inside
    `jit`/`vmap`/`scan` (value errors surface as `jax.errors.JaxRuntimeError` carrying the
    `ValueError` text, via `jax.debug.callback`); see `bellmax.envs.checker` for the details.

    Args:
      env: a bellmax `Environment` (wrapped or not).
      allow_out_of_bounds: accept continuous actions outside the `Box` bounds (the
        environment clips them); by default they are an error.

    Returns:
      The checked environment; it has the same spaces, params and state as `env`.
    """
    if not isinstance(env, Environment):
        raise TypeError(
            f"checked() wraps a bellmax Environment, got {type(env).__name__}; build one with "
            "bellmax.make('CartPole-v1')[0]."
        )
    allow_out_of_bounds = check_bool(allow_out_of_bounds, "allow_out_of_bounds", owner="checked")
    return CheckedEnv(env, allow_out_of_bounds=allow_out_of_bounds)
