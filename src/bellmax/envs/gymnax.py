"""The gymnax bridge, both ways. The only bellmax module that imports gymnax.

- `to_gymnax(env)`: any bellmax environment as a real `gymnax.environments.environment.Environment`
  (`BellmaxGymnaxEnv`), with gymnax's whole contract: `step` auto-resets (gymnax's base class:
  `step_env`, then `reset_env` where the episode ended), returns
  `(obs, state, reward, terminated, truncated, info)` with gymnax's info keys (`"discount"`
  from `step_env`; `"terminated"`, `"truncated"`, `"final_observation"` from `step`), applies
  the time limit `params.max_steps_in_episode`, and its spaces are gymnax's `Discrete`/`Box`
  (buildable inside `jit`). gymnax's wrappers (`LogWrapper`, `FlattenObservationWrapper`,
  `GymnaxToGymWrapper`) and gymnax-based libraries take it as one of gymnax's own.
- `from_gymnax(env)` and `make_gymnax(name)` (what `bellmax.make("gymnax:CartPole-v1")`
  calls): a gymnax environment as a bellmax `Environment` (`GymnaxAsBellmaxEnv`), whose raw
  `step` never resets and reports `terminated`/`truncated` apart, with bellmax spaces, so
  bellmax's vector environments, learners and driver (seeds `vmap`ped) run it inside `jit`.

gymnax is optional: importing `bellmax` or `bellmax.envs` does not import this module;
`bellmax.envs.to_gymnax` and the `gymnax:` ids load it on first use. The contract matched is
that of the installed gymnax (1.x: `step` returns terminated and truncated apart; gymnax
0.0.x-style `step_env`s whose `done` includes the time limit are split by it).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:
    import gymnax
    from gymnax.environments import environment as gymnax_environment
    from gymnax.environments import spaces as gymnax_spaces
except ImportError as err:  # pragma: no cover - exercised in a subprocess by the tests
    if err.name in (None, "gymnax"):
        raise ImportError(
            "gymnax environments need the optional dependency gymnax, which is not installed; "
            "install it with `pip install gymnax`."
        ) from err
    raise ImportError(
        f"gymnax is installed but does not import: {err}. Install what it is missing "
        f"(`pip install {err.name.split('.')[0]}`), or reinstall it with `pip install gymnax`."
    ) from err

from bellmax.envs import registry, spaces
from bellmax.envs._checks import check_params_type
from bellmax.envs.environment import Environment, EnvParams

__all__ = [
    "PREFIX",
    "BellmaxGymnaxEnv",
    "GymnaxAsBellmaxEnv",
    "from_gymnax",
    "gymnax_ids",
    "make_gymnax",
    "to_gymnax",
    "to_gymnax_space",
]

#: The id prefix that names gymnax's own environments: `gymnax:CartPole-v1`.
PREFIX = registry.GYMNAX_PREFIX


# ====================================================================== spaces
def to_gymnax_space(space: spaces.Space) -> Any:
    """The gymnax space equal to a bellmax space.

    Args:
      space: a bellmax `Discrete` or `Box` (bounds may be traced: this works inside `jit`).

    Returns:
      `gymnax.environments.spaces.Discrete(n)` or `Box(low, high, shape, dtype)`, bounds as
      jax arrays.

    Raises:
      TypeError: any other space (gymnax has no `MultiDiscrete`).
    """
    if isinstance(space, spaces.Discrete):
        return gymnax_spaces.Discrete(space.n, dtype=jnp.dtype(space.dtype))
    if isinstance(space, spaces.Box):
        low, high = jnp.asarray(space.low), jnp.asarray(space.high)
        return gymnax_spaces.Box(low, high, tuple(space.shape), space.dtype)
    raise TypeError(
        f"gymnax has no space equal to {space!r}; to_gymnax takes environments whose "
        "spaces are bellmax Discrete or Box."
    )


def _value_key(tree: Any) -> Any:
    """A hashable key of a pytree by value (arrays by their bytes); None if it is traced."""
    leaves, treedef = jax.tree.flatten(tree)
    if any(isinstance(x, jax.core.Tracer) for x in leaves):
        return None
    vals = []
    for x in leaves:
        a = np.asarray(x)
        vals.append((a.shape, a.dtype.str, a.tobytes()))
    return (treedef, tuple(vals))


# ====================================================================== bellmax -> gymnax
class BellmaxGymnaxEnv(gymnax_environment.Environment):
    """A bellmax environment as a gymnax `Environment` (see `to_gymnax`).

    `step_env`/`reset_env` are bellmax's raw `step`/`reset` (so bellmax's checks of concrete
    inputs and its wrappers apply); gymnax's base class adds the auto-reset, the time limit
    (`is_truncated`: `state.time >= params.max_steps_in_episode`) and the info keys
    `"terminated"`, `"truncated"` and `"final_observation"`; `step_env` adds `"discount"`
    (0.0 where the episode terminated, else 1.0) as gymnax's environments do.
    """

    def __init__(self, env: Environment, params: EnvParams | None = None):
        super().__init__()
        if not isinstance(env, Environment):
            raise TypeError(
                f"to_gymnax takes a bellmax Environment, got {env!r} ({type(env).__name__}); "
                "build one with bellmax.make(env_id)."
            )
        if getattr(env, "auto_resets", False):
            raise ValueError(
                f"{env!r} resets by itself; gymnax's step does the auto-reset, so pass the "
                "environment without its AutoReset wrapper."
            )
        if params is not None:
            env.check_params(params)
        self.env = env
        """The bellmax environment."""
        self.params = env.default_params if params is None else params
        """Its parameters (`default_params`)."""

    # Equal by value, so gymnax's jitted methods (static `self`) compile once for equal ones.
    def _key(self) -> Any:
        params_key = _value_key(self.params)
        return (self.env, params_key) if params_key is not None else (self.env, id(self))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BellmaxGymnaxEnv) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"to_gymnax({self.env!r})"

    @property
    def default_params(self) -> EnvParams:
        return self.params

    def step_env(
        self, key: jax.Array, state: Any, action: Any, params: EnvParams
    ) -> tuple[Any, Any, jax.Array, jax.Array, dict[str, Any]]:
        """gymnax's raw step: bellmax's `step` (never resets), its truncation left to gymnax."""
        obs, state, reward, terminated, _, info = self.env.step(key, state, action, params)
        terminated = jnp.asarray(terminated, bool)
        info = {**info, "discount": jnp.where(terminated, 0.0, 1.0).astype(jnp.float32)}
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, info

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[Any, Any]:
        return self.env.reset(key, params)

    def is_truncated(self, state: Any, params: EnvParams) -> jax.Array:
        return self.env.is_truncated(state, params)

    def is_terminated(self, state: Any, params: EnvParams) -> jax.Array:
        inner = getattr(self.env, "is_terminated", None)
        if inner is None:
            raise NotImplementedError(f"{self.env.name} has no is_terminated(state, params).")
        return inner(state, params)

    def get_obs(self, state: Any, params: Any = None, key: Any = None) -> Any:
        inner = getattr(self.env, "get_obs", None)
        if inner is None:
            raise NotImplementedError(f"{self.env.name} has no get_obs(state).")
        return inner(state)

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def action_space(self, params: EnvParams | None = None) -> Any:
        return to_gymnax_space(self.env.action_space(self.params if params is None else params))

    def observation_space(self, params: EnvParams | None = None) -> Any:
        return to_gymnax_space(
            self.env.observation_space(self.params if params is None else params)
        )


def to_gymnax(env: Environment, params: EnvParams | None = None) -> BellmaxGymnaxEnv:
    """A bellmax environment as a gymnax `Environment`, with gymnax's full contract.

    Args:
      env: a bellmax environment (not auto-resetting: gymnax's `step` resets by itself).
      params: its parameters, the gymnax env's `default_params` (default: the env's own).

    Returns:
      A `BellmaxGymnaxEnv`, an instance of `gymnax.environments.environment.Environment`:
      `reset(key, params) -> obs, state`; `step(key, state, action, params) ->
      obs, state, reward, terminated, truncated, info`, reset where the episode ended (the true
      last observation in `info["final_observation"]`).

    Raises:
      TypeError: `env` is not a bellmax `Environment`, or `params` are not its params.
      ValueError: `env` auto-resets, or `params` are out of their bounds.
    """
    return BellmaxGymnaxEnv(env, params)


# ====================================================================== gymnax -> bellmax
def _time_limit_in_done(env: Any) -> bool:
    """Whether `env.step_env`'s `done` includes the time limit (gymnax 0.0.x); gymnax 1.x
    environments have `is_truncated` and leave the time limit to `step`."""
    return not callable(getattr(env, "is_truncated", None))


class GymnaxAsBellmaxEnv(Environment):
    """A gymnax environment as a bellmax `Environment` (see `from_gymnax`).

    `step_env`/`reset_env` are gymnax's raw ones; `step` never resets and returns
    `terminated` and `truncated` apart: truncated is gymnax's `is_truncated`
    (`state.time >= params.max_steps_in_episode`); terminated is `step_env`'s `done` (for a
    gymnax 0.0.x-style environment, whose `done` includes the time limit, `done` where the
    limit is not reached). Spaces are bellmax's (`spaces.from_gymnax`).
    """

    def __init__(self, env: Any, *, env_id: str | None = None):
        if not (
            callable(getattr(env, "step_env", None)) and callable(getattr(env, "reset_env", None))
        ):
            raise TypeError(
                f"from_gymnax takes a gymnax environment (with step_env/reset_env), got {env!r}."
            )
        self.gymnax_env = env
        """The gymnax environment."""
        self.gymnax_id = env_id or PREFIX + str(getattr(env, "name", type(env).__name__))
        """Its id, `gymnax:<name>`."""

    @property
    def name(self) -> str:
        return self.gymnax_id

    @property
    def default_params(self) -> Any:
        return self.gymnax_env.default_params

    @property
    def params_type(self) -> type:  # type: ignore[override]
        return type(self.gymnax_env.default_params)

    def check_params(self, params: Any) -> None:
        check_params_type(params, self.params_type, self.name)

    def reset_env(self, key: jax.Array, params: Any) -> tuple[Any, Any]:
        return self.gymnax_env.reset_env(key, params)

    def step_env(self, key: jax.Array, state: Any, action: Any, params: Any):
        obs, state, reward, done, info = self.gymnax_env.step_env(key, state, action, params)
        terminated = jnp.asarray(done, bool)
        if _time_limit_in_done(self.gymnax_env):
            terminated = terminated & ~self.is_truncated(state, params)
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, info

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        inner = getattr(self.gymnax_env, "is_truncated", None)
        if callable(inner):
            return jnp.asarray(inner(state, params), bool)
        return jnp.asarray(state.time >= params.max_steps_in_episode)

    def action_space(self, params: Any = None) -> spaces.Space:
        p = self.default_params if params is None else params
        return spaces.from_gymnax(self.gymnax_env.action_space(p))

    def observation_space(self, params: Any = None) -> spaces.Space:
        p = self.default_params if params is None else params
        return spaces.from_gymnax(self.gymnax_env.observation_space(p))

    def __repr__(self) -> str:
        return f"from_gymnax({self.gymnax_id!r})"


def from_gymnax(env: Any, *, env_id: str | None = None) -> GymnaxAsBellmaxEnv:
    """A gymnax environment as a bellmax `Environment` (raw `step`, bellmax spaces).

    Args:
      env: a gymnax environment (`gymnax.make(name)[0]`, or any object with gymnax's
        `step_env`/`reset_env`/`default_params`/spaces).
      env_id: its name in messages (default `gymnax:<env.name>`).

    Returns:
      A `GymnaxAsBellmaxEnv`; its `default_params` are the gymnax environment's.

    Raises:
      TypeError: `env` has no `step_env`/`reset_env`.
    """
    return GymnaxAsBellmaxEnv(env, env_id=env_id)


def gymnax_ids() -> list[str]:
    """gymnax's registered environment names (without the `gymnax:` prefix), sorted."""
    return sorted(gymnax.registered_envs)


_ENV_CACHE: dict[str, GymnaxAsBellmaxEnv] = {}


def make_gymnax(name: str, **param_overrides: Any) -> tuple[GymnaxAsBellmaxEnv, Any]:
    """gymnax's own environment `name` (`gymnax.make`) as a bellmax environment, and its params.

    What `bellmax.make("gymnax:<name>")` returns. One environment object per name is kept,
    so jitted functions that take it as a static argument compile once.

    Args:
      name: a gymnax id, with or without the `gymnax:` prefix (`"CartPole-v1"`).
      **param_overrides: fields of gymnax's `EnvParams` to change (`max_steps_in_episode=200`).

    Returns:
      `(env, params)`: a `GymnaxAsBellmaxEnv` and gymnax's params.

    Raises:
      UnknownNameError: gymnax has no environment `name` (the message lists gymnax's ids).
    """
    name = name.removeprefix(PREFIX)
    if name not in gymnax.registered_envs:
        raise registry.unknown_env_error(PREFIX + name, gymnax_ids=gymnax_ids())
    if name not in _ENV_CACHE:
        _ENV_CACHE[name] = from_gymnax(gymnax.make(name)[0], env_id=PREFIX + name)
    env = _ENV_CACHE[name]
    params = registry.replace_params(env.default_params, **param_overrides)
    return env, params
