"""The Gymnasium bridge, both ways. The only bellmax module that imports gymnasium.

- `to_gymnasium(env)`: any bellmax environment as a `gymnasium.Env` (it passes
  `gymnasium.utils.env_checker.check_env`), for tools that speak Gymnasium.
- `make_host_vector_env(env_id)`: any Gymnasium id, `module:EnvName-v0` included, as a
  host-side vector environment (`HostVectorEnv`) that bellmax learners drive outside jit.
  It resets sub-environments on the step that ends them and keeps the true last observation
  in `info["final_observation"]`, so learners bootstrap from the right state.
- `tabular_mdp_from_gymnasium(env_id)`: a toy-text environment's transition table
  (`unwrapped.P`: FrozenLake, CliffWalking, Taxi) as an exact `TabularMDP`.
- `to_gymnasium_space` / `from_gymnasium_space`: the space conversions underneath.

Importing this module also registers every bellmax environment with Gymnasium under the
`bellmax/` namespace (`register_gymnasium_envs`), so that

    import bellmax.envs.gymnasium  # noqa: F401  (registers the bellmax/ ids)
    env = gymnasium.make("bellmax/CartPole-v1", masspole=0.2, render_mode="rgb_array")

works; `gymnasium.make("bellmax.envs.gymnasium:bellmax/CartPole-v1")` imports it for you.
Keyword arguments other than `render_mode` override fields of the environment's `EnvParams`.
Gymnasium's `TimeLimit` (`max_episode_steps`, the params' `max_steps_in_episode` by default)
ends the episodes of these environments, as it does Gymnasium's own. Gymnasium 1.x has no
plugin entry point that loads third-party ids by itself, hence the import.

The Gymnasium API is that of Towers et al. (2024), "Gymnasium: A Standard Interface for
Reinforcement Learning Environments"; the MDP is Sutton & Barto (2018), section 3.1.
This is one of the two places in bellmax that hold mutable state (DESIGN.md rule 1): the
wrapper keeps the JAX key and the environment state between calls.
"""

from __future__ import annotations

import importlib
import re
from functools import partial
from typing import Any

import gymnasium
import jax
import numpy as np
from flax import struct
from gymnasium import spaces as gym_spaces

from bellmax.core.checks import check_int
from bellmax.core.display import summary_repr
from bellmax.core.errors import BellmaxError, MissingDependencyError
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.core.types import Trajectory
from bellmax.envs import registry, spaces
from bellmax.envs import render as env_render
from bellmax.envs._checks import check_action
from bellmax.envs.environment import Environment, EnvParams

__all__ = [
    "BellmaxGymnasiumEnv",
    "EnvDependencyError",
    "EnvModuleImportError",
    "HostRollout",
    "HostVectorEnv",
    "check_env_id",
    "from_gymnasium_space",
    "make_gymnasium_env",
    "make_host_vector_env",
    "register_gymnasium_envs",
    "rollout_host",
    "tabular_mdp_from_gymnasium",
    "to_gymnasium",
    "to_gymnasium_space",
]

#: Above this many dense entries `S * A * S`, converted tables are stored sparse.
DENSE_LIMIT = 100_000


class EnvModuleImportError(BellmaxError, ImportError, ValueError):
    """The module named in a `module:EnvName-v0` id could not be imported."""


class EnvDependencyError(MissingDependencyError):
    """A Gymnasium environment needs an optional dependency that is not installed."""


# ====================================================================== spaces
def to_gymnasium_space(space: spaces.Space) -> gym_spaces.Space:
    """The Gymnasium space equal to a bellmax space.

    Args:
      space: a bellmax `Discrete`, `Box` or `MultiDiscrete`.

    Returns:
      `gymnasium.spaces.Discrete(n)` (int64), `Box` (same bounds and dtype) or
      `MultiDiscrete(nvec)` (int64).

    Raises:
      TypeError: any other space.
    """
    if isinstance(space, spaces.Discrete):
        return gym_spaces.Discrete(space.n)
    if isinstance(space, spaces.Box):
        return gym_spaces.Box(
            low=np.asarray(space.low),
            high=np.asarray(space.high),
            shape=space.shape,
            dtype=np.dtype(space.dtype),
        )
    if isinstance(space, spaces.MultiDiscrete):
        return gym_spaces.MultiDiscrete(np.asarray(space.nvec), dtype=np.int64)
    raise TypeError(
        f"cannot convert {space!r} ({type(space).__name__}) to a Gymnasium space; only "
        "bellmax.envs.spaces.Discrete, Box and MultiDiscrete are supported. Give the "
        "environment one of these spaces."
    )


def _jax_dtype(dtype: Any) -> np.dtype:
    """The dtype JAX uses for `dtype` with 64-bit mode off (float32 / int32)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return np.dtype(np.float32)
    if np.issubdtype(dtype, np.signedinteger):
        return np.dtype(np.int32)
    if np.issubdtype(dtype, np.unsignedinteger):
        return np.dtype(np.uint32) if dtype.itemsize >= 4 else dtype
    return dtype


class _Codec:
    """How one Gymnasium space maps onto a bellmax space, for single values and batches.

    Discrete values are shifted so that bellmax always counts from 0 (Gymnasium allows a
    `start`); a `Tuple` of `Discrete` becomes a `MultiDiscrete` vector.
    """

    def __init__(self, gym_space: gym_spaces.Space):
        self.gym_space = gym_space
        if isinstance(gym_space, gym_spaces.Discrete):
            self.kind = "discrete"
            self.start = np.int64(gym_space.start)
            self.space: spaces.Space = spaces.Discrete(int(gym_space.n))
        elif isinstance(gym_space, gym_spaces.MultiDiscrete):
            if gym_space.nvec.ndim != 1:
                raise TypeError(
                    f"cannot convert {gym_space} with nvec of shape {gym_space.nvec.shape}: bellmax "
                    "MultiDiscrete is 1-D. Flatten it with gymnasium.wrappers.FlattenObservation."
                )
            self.kind = "multidiscrete"
            self.start = np.asarray(gym_space.start, dtype=np.int64)
            self.space = spaces.MultiDiscrete(gym_space.nvec)
        elif isinstance(gym_space, gym_spaces.Tuple) and all(
            isinstance(s, gym_spaces.Discrete) for s in gym_space.spaces
        ):
            self.kind = "tuple"
            self.start = np.array([s.start for s in gym_space.spaces], dtype=np.int64)
            self.space = spaces.MultiDiscrete([int(s.n) for s in gym_space.spaces])
        elif isinstance(gym_space, gym_spaces.Box):
            self.kind = "box"
            self.start = None
            dtype = _jax_dtype(gym_space.dtype)
            self.space = spaces.Box(gym_space.low, gym_space.high, gym_space.shape, dtype)
        else:
            raise TypeError(
                f"cannot convert the Gymnasium space {gym_space} ({type(gym_space).__name__}) to "
                "a bellmax space; supported are Discrete, Box, MultiDiscrete (1-D) and Tuple of "
                "Discrete. Wrap the environment (e.g. gymnasium.wrappers.FlattenObservation) to "
                "give it one of these."
            )
        self.dtype = np.dtype(self.space.dtype)

    # gym -> bellmax
    def single(self, x: Any) -> np.ndarray:
        """One Gymnasium value as a bellmax numpy value."""
        if self.kind == "tuple":
            x = np.array([int(v) for v in x], dtype=np.int64)
        if self.kind == "box":
            return np.array(x, dtype=self.dtype)
        return (np.asarray(x, dtype=np.int64) - self.start).astype(self.dtype)

    def batch(self, x: Any) -> np.ndarray:
        """A Gymnasium vector-env batch as a bellmax numpy array `[N, ...]`."""
        if self.kind == "tuple":
            x = np.stack([np.asarray(c, dtype=np.int64) for c in x], axis=-1)
        if self.kind == "box":
            return np.array(x, dtype=self.dtype)
        return (np.asarray(x, dtype=np.int64) - self.start).astype(self.dtype)

    # bellmax -> gym
    def to_gym_batch(self, a: Any, num_envs: int) -> Any:
        """A bellmax batch `[N, ...]` in the Gymnasium vector-env layout."""
        a = np.asarray(a)
        want = (num_envs, *self.space.shape)
        if a.shape != want:
            raise ValueError(
                f"actions have shape {a.shape}, expected {want} (num_envs, *action_space.shape) "
                f"for {self.space}; pass one action per sub-environment."
            )
        if self.kind == "box":
            return a.astype(self.gym_space.dtype)
        a = a.astype(np.int64) + self.start
        if self.kind == "tuple":
            return tuple(a[:, i].astype(sub.dtype) for i, sub in enumerate(self.gym_space.spaces))
        return a.astype(self.gym_space.dtype)


def from_gymnasium_space(space: gym_spaces.Space) -> spaces.Space:
    """The bellmax space for a Gymnasium space.

    Discrete values always count from 0 in bellmax: a Gymnasium `start` is subtracted (the
    host vector env shifts observations and actions accordingly).

    Args:
      space: a Gymnasium `Discrete`, `Box`, 1-D `MultiDiscrete`, or `Tuple` of `Discrete`
        (Blackjack's observations), which becomes a `MultiDiscrete`.

    Returns:
      The bellmax `Discrete`, `Box` (float32/int32, as JAX computes) or `MultiDiscrete`.

    Raises:
      TypeError: any other space (Dict, Text, Graph, Tuple of Boxes, ...).
    """
    return _Codec(space).space


# ====================================================================== bellmax -> gymnasium
def _to_host(x: Any) -> Any:
    """Info values as plain Python (0-d) or fresh numpy arrays, recursively."""
    if isinstance(x, dict):
        return {k: _to_host(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_to_host(v) for v in x)
    if isinstance(x, jax.Array | np.ndarray | np.generic):
        a = np.array(x)
        return a.item() if a.ndim == 0 else a
    if dataclass_fields := getattr(x, "__dataclass_fields__", None):
        return {k: _to_host(getattr(x, k)) for k in dataclass_fields}
    return x


@partial(jax.jit, static_argnums=0)
def _jit_reset(env: Environment, key: jax.Array, params: EnvParams):
    key, key_reset = jax.random.split(key)
    obs, state = env.reset(key_reset, params)
    return key, obs, state


@partial(jax.jit, static_argnums=0)
def _jit_step(env: Environment, key: jax.Array, state: Any, action: Any, params: EnvParams):
    key, key_step = jax.random.split(key)
    obs, state, reward, terminated, truncated, info = env.step(key_step, state, action, params)
    return key, obs, state, reward, terminated, truncated, info


class BellmaxGymnasiumEnv(gymnasium.Env):
    """A bellmax environment behind Gymnasium's `Env` interface.

    The JAX key and the environment state live in the object; `reset(seed=s)` seeds
    `np_random`, from which each reset draws its JAX key, so seeded resets are reproducible.
    `reset` and `step` run the environment's jitted functions (compiled once per
    environment object, shared by every wrapper of it). Termination and truncation are the
    environment's own (`params.max_steps_in_episode`). Observations are numpy values of the
    Gymnasium space's dtype; `info` holds Python scalars and numpy arrays.

    Render modes: `"ansi"` (a text line) for every environment, `"rgb_array"` (an
    `[H, W, 3]` uint8 frame from `bellmax.envs.render.render_frame`) for those with frames
    (CartPole-v1, CartPoleSwingUp-v0, Pendulum-v1, the grid worlds). The instance's
    `metadata["render_modes"]` lists its own; `metadata["render_fps"]` is real time.

    Build it with `to_gymnasium`, or `gymnasium.make("bellmax/<id>")`.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 30}  # noqa: RUF012

    def __init__(
        self,
        env: Environment,
        params: EnvParams,
        *,
        seed: int | None = None,
        render_mode: str | None = None,
    ):
        frames = env_render.can_render(env)
        self.metadata = {
            "render_modes": ["ansi", "rgb_array"] if frames else ["ansi"],
            "render_fps": env_render.frame_rate(env, params) if frames else 30,
        }
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            also = (
                ""
                if frames
                else f" ({env.name} has no frames; rgb_array works for "
                f"{', '.join(env_render.renderable())})"
            )
            raise ValueError(
                f"render_mode={render_mode!r} is not supported by {env.name}; use one of "
                f"{self.metadata['render_modes']} or None{also}."
            )
        self.env = env
        self.params = params
        self.render_mode = render_mode
        self._space = env.observation_space(params)
        self._action_space = env.action_space(params)
        self.observation_space = to_gymnasium_space(self._space)
        self.action_space = to_gymnasium_space(self._action_space)
        self._action_dtype = np.dtype(self._action_space.dtype)
        self._pending_seed = seed
        self._key: jax.Array | None = None
        self.state: Any = None
        """The bellmax environment state (None before the first reset)."""
        self._last_obs: Any = None

    def __repr__(self) -> str:
        return f"BellmaxGymnasiumEnv({self.env.name})"

    # -------------------------------------------------------------- conversions
    def _obs(self, obs: Any) -> Any:
        if isinstance(self.observation_space, gym_spaces.Discrete):
            return np.int64(np.asarray(obs))
        return np.array(obs, dtype=self.observation_space.dtype)

    def _action(self, action: Any) -> np.ndarray:
        space = self._action_space
        if isinstance(space, spaces.Discrete | spaces.MultiDiscrete):
            # as strict as the environment's own step (and Gymnasium's `contains`): an index
            # of integer dtype and the space's shape; 1.0, True or [1] are refused
            check_action(action, space, f"{self.env.name}: step")
            return np.asarray(action).astype(self._action_dtype)
        a = np.asarray(action)
        if a.shape != space.shape:
            a_sq = a.reshape(space.shape) if a.size == int(np.prod(space.shape)) else None
            if a_sq is None:
                raise ValueError(
                    f"action {action!r} has shape {a.shape}, expected {space.shape} for "
                    f"{space} in {self.env.name}."
                )
            a = a_sq
        return a.astype(self._action_dtype)

    # -------------------------------------------------------------- gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Start an episode. Returns `(obs, info)` (info is empty)."""
        if seed is None and self._pending_seed is not None:
            seed = self._pending_seed
        self._pending_seed = None
        super().reset(seed=seed)
        key = jax.random.key(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, obs, self.state = _jit_reset(self.env, key, self.params)
        self._last_obs = obs
        return self._obs(obs), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Advance one step. Returns `(obs, reward, terminated, truncated, info)`."""
        if self.state is None:
            raise gymnasium.error.ResetNeeded(f"{self.env.name}: call reset() before step().")
        a = self._action(action)
        self._key, obs, self.state, reward, terminated, truncated, info = _jit_step(
            self.env, self._key, self.state, a, self.params
        )
        self._last_obs = obs
        # one device-to-host transfer for everything the caller gets
        obs, reward, terminated, truncated, info = jax.device_get(
            (obs, reward, terminated, truncated, info)
        )
        return self._obs(obs), float(reward), bool(terminated), bool(truncated), _to_host(info)

    def render(self) -> str | np.ndarray | None:
        """The current state in the `render_mode` given at construction.

        Returns:
          None without a render mode; with `"ansi"` a one-line text of the step count and
          observation; with `"rgb_array"` an `[H, W, 3]` uint8 frame.
        """
        if self.render_mode is None:
            return None
        if self.state is None:
            raise gymnasium.error.ResetNeeded(f"{self.env.name}: call reset() before render().")
        if self.render_mode == "rgb_array":
            return env_render.render_frame(self.env, self.state, self.params)
        obs = np.asarray(self._last_obs)
        time = int(np.asarray(getattr(self.state, "time", -1)))
        return f"{self.env.name} t={time} obs={np.array2string(obs, precision=4)}\n"


_ENV_CACHE: dict[str, Environment] = {}


def _registered_env(env_id: str) -> Environment:
    """One environment object per registered id, so its jitted functions compile once.

    Environments hold no state (it lives in `EnvState`), so sharing the object is safe.
    """
    if env_id not in _ENV_CACHE:
        _ENV_CACHE[env_id] = registry.make(env_id)[0]
    return _ENV_CACHE[env_id]


def to_gymnasium(
    env_or_id: str | Environment,
    params: EnvParams | None = None,
    *,
    seed: int | None = None,
    render_mode: str | None = None,
) -> BellmaxGymnasiumEnv:
    """A bellmax environment as a `gymnasium.Env`.

    Args:
      env_or_id: a registered bellmax id (e.g. `"CartPole-v1"`) or an `Environment`.
      params: the environment's constants; its `default_params` if None.
      seed: seed of the first `reset()` called without one.
      render_mode: None, `"ansi"` (a text line per `render()`) or `"rgb_array"` (an
        `[H, W, 3]` uint8 frame per `render()`, for environments with frames).

    Returns:
      A `BellmaxGymnasiumEnv` that passes `gymnasium.utils.env_checker.check_env`.

    Raises:
      TypeError: `env_or_id` is neither a string nor an `Environment`, or its spaces have no
        Gymnasium equivalent.
      ValueError: the environment resets by itself (`AutoReset`), or a bad `render_mode`.
      UnknownNameError: an unregistered id.
    """
    if isinstance(env_or_id, str):
        env = _registered_env(env_or_id)
        default = env.default_params
    elif isinstance(env_or_id, Environment):
        env, default = env_or_id, env_or_id.default_params
    else:
        raise TypeError(
            f"to_gymnasium expects a bellmax env id (str) or an Environment, got "
            f"{type(env_or_id).__name__} {env_or_id!r}; e.g. to_gymnasium('CartPole-v1')."
        )
    if env.auto_resets:
        raise ValueError(
            f"{env!r} resets by itself; Gymnasium environments must not. Pass the environment "
            "without the AutoReset wrapper (Gymnasium's vector envs reset for you)."
        )
    return BellmaxGymnasiumEnv(
        env, default if params is None else params, seed=seed, render_mode=render_mode
    )


# ====================================================================== gymnasium.make
#: Gymnasium's namespace of the bellmax ids: `bellmax/CartPole-v1`.
NAMESPACE = "bellmax"
_ENTRY_POINT = f"{__name__}:make_gymnasium_env"
#: `max_steps_in_episode` of the environments `gymnasium.make` builds: Gymnasium's
#: `TimeLimit` ends their episodes instead (int32's largest, so the bellmax limit never acts).
_NO_LIMIT = 2**31 - 1


def make_gymnasium_env(
    bellmax_id: str, *, render_mode: str | None = None, **param_overrides: Any
) -> BellmaxGymnasiumEnv:
    """The entry point of `gymnasium.make("bellmax/<id>", **kwargs)`.

    Args:
      bellmax_id: the bellmax id (`CartPole-v1`); `gymnasium.make` fills it in from the
        registered spec.
      render_mode: None, `"ansi"` or `"rgb_array"` (environments with frames).
      **param_overrides: fields of the environment's `EnvParams` (`masspole=0.2`), checked
        as `bellmax.make` checks them.

    Returns:
      A `BellmaxGymnasiumEnv` whose own time limit is off: the `TimeLimit` that
      `gymnasium.make` adds (the registered `max_episode_steps`, or the `max_episode_steps=`
      given to `gymnasium.make`) ends its episodes.

    Raises:
      UnknownNameError: an override that is not a field of the parameters (the message
        lists the fields).
      ValueError: an override outside its valid range; `max_steps_in_episode` (pass
        Gymnasium's `max_episode_steps=` instead); a bad `render_mode`.
      TypeError: an override of the wrong type.
    """
    if "max_steps_in_episode" in param_overrides:
        n = param_overrides["max_steps_in_episode"]
        raise ValueError(
            f"gymnasium.make('{NAMESPACE}/{bellmax_id}', max_steps_in_episode={n!r}): "
            "Gymnasium's TimeLimit sets the episode length of Gymnasium-made bellmax "
            f"environments; pass max_episode_steps={n!r} instead."
        )
    env = _registered_env(bellmax_id)
    params = registry.make(bellmax_id, **param_overrides)[1]
    params = params.replace(max_steps_in_episode=_NO_LIMIT)
    return BellmaxGymnasiumEnv(env, params, render_mode=render_mode)


def register_gymnasium_envs() -> list[str]:
    """Register every bellmax id with Gymnasium as `bellmax/<id>` (idempotent).

    Runs when this module is imported; call it again after `bellmax.envs.register` adds
    environments. Each id's `max_episode_steps` is its default `max_steps_in_episode`.

    Returns:
      The Gymnasium ids registered by this call (those not registered before).
    """
    added = []
    for env_id in registry.registered():
        gym_id = f"{NAMESPACE}/{env_id}"
        if gym_id in gymnasium.registry:
            continue
        limit = int(np.asarray(_registered_env(env_id).default_params.max_steps_in_episode))
        gymnasium.register(
            id=gym_id,
            entry_point=_ENTRY_POINT,
            max_episode_steps=limit,
            kwargs={"bellmax_id": env_id},
        )
        added.append(gym_id)
    return added


# ====================================================================== gymnasium ids
def _import_env_module(module: str, env_id: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as e:
        raise EnvModuleImportError(
            f"cannot import module {module!r} named in env id {env_id!r} ({e}). Install the "
            f"package that provides {module!r}, or drop the '{module}:' prefix if Gymnasium "
            "already knows the id."
        ) from e


def _unknown_env(env_id: str) -> Exception:
    return registry.unknown_env_error(env_id, gymnasium.registry)


def _gym_id(env_id: Any) -> str:
    """Import the module of a `module:EnvName-v0` id and return the id Gymnasium knows."""
    if not isinstance(env_id, str):
        raise TypeError(
            f"env_id must be a string such as 'CartPole-v1' or 'module:EnvName-v0', got "
            f"{type(env_id).__name__} {env_id!r}."
        )
    if ":" in env_id:
        module, _, name = env_id.rpartition(":")
        if not module or not name:
            raise ValueError(
                f"env id {env_id!r} must look like 'EnvName-v0' or 'module:EnvName-v0'."
            )
        _import_env_module(module, env_id)
        return name
    return env_id


#: Gymnasium's environment families whose optional dependency is installed as an extra,
#: by the module of their entry point: (what is missing, the extra to install).
_EXTRAS = {
    "gymnasium.envs.box2d": ("Box2D", "box2d"),
    "gymnasium.envs.mujoco": ("MuJoCo", "mujoco"),
    "gymnasium.envs.toy_text": ("pygame", "toy-text"),
    "gymnasium.envs.classic_control": ("pygame", "classic-control"),
}


def _dependency_error(name: str, exc: Exception) -> EnvDependencyError:
    """A one-line error for `DependencyNotInstalled` that names the extra to install."""
    spec = gymnasium.registry.get(name)
    entry = spec.entry_point if spec is not None and isinstance(spec.entry_point, str) else ""
    known = [pair for module, pair in _EXTRAS.items() if entry.startswith(module)]
    if known:
        what, extra = known[0]
    else:  # an entry point we do not know: the extra Gymnasium's own message names
        found = re.search(r"gymnasium\[([\w-]+)\]", str(exc))
        what, extra = ("a dependency", found.group(1)) if found else (None, None)
    if extra is None:
        return EnvDependencyError(
            f"environment {name!r} needs an optional dependency that is not installed: {exc}"
        )
    swig = " (Box2D builds with swig: `pip install swig` first)" if extra == "box2d" else ""
    return EnvDependencyError(
        f"environment {name!r} needs {what}, which is not installed: run "
        f'`pip install "gymnasium[{extra}]"`{swig}, or pick another environment.'
    )


def _gym_make(name: str, cap: int | None = None, **kwargs: Any) -> gymnasium.Env:
    """`gymnasium.make(name, **kwargs)`, capped at `cap` steps per episode.

    The cap is a `TimeLimit` around the env's own, so an episode ends at whichever limit
    comes first. A missing optional dependency (Box2D, MuJoCo, ...) raises
    `EnvDependencyError`, which names the extra to install.
    """
    try:
        env = gymnasium.make(name, **kwargs)
    except gymnasium.error.DependencyNotInstalled as e:
        raise _dependency_error(name, e) from None
    if cap is not None:
        env = gymnasium.wrappers.TimeLimit(env, int(cap))
    return env


def _capped_bellmax_env(env: Environment, params: EnvParams, cap: int | None) -> gymnasium.Env:
    made = BellmaxGymnasiumEnv(env, params)
    return made if cap is None else gymnasium.wrappers.TimeLimit(made, int(cap))


def check_env_id(env_id: str) -> None:
    """Raise unless bellmax or Gymnasium knows `env_id`, before any work starts.

    Imports the `module` of a `module:EnvName-v0` id (which registers its ids); nothing is
    made.

    Raises:
      UnknownNameError: neither registry has the id (the message lists the close matches).
      EnvModuleImportError: the `module` cannot be imported.
      TypeError: `env_id` is not a string.
    """
    if registry.is_registered(env_id):
        return
    if _gym_id(env_id) not in gymnasium.registry:
        raise _unknown_env(env_id)


def _make_gym_env(env_id: str, **kwargs: Any) -> gymnasium.Env:
    name = _gym_id(env_id)
    if name not in gymnasium.registry:
        raise _unknown_env(env_id)
    return _gym_make(name, **kwargs)


@struct.dataclass
class HostRollout:
    """What `rollout_host` collected."""

    __repr__ = summary_repr

    trajectory: Trajectory
    """Numpy arrays with leading axes `[T, N]`; `next_obs` is the true next observation."""
    episode_returns: np.ndarray
    """Undiscounted returns of the episodes that ended during the rollout."""
    episode_lengths: np.ndarray
    """Lengths of those episodes."""


class HostVectorEnv:
    """`N` copies of an environment stepped on the host, with bellmax spaces and arrays.

    Wraps `gymnasium.vector.SyncVectorEnv` in same-step auto-reset mode: when a
    sub-environment ends, the observation returned for it is already the first of its next
    episode, and the true last observation is in `info["final_observation"]` (an `[N, ...]`
    array equal to the true next observation of every sub-environment, reset or not;
    `info["_final_observation"]` marks the ones that ended). Bootstrap from
    `final_observation` unless `terminated`.

    `info` also carries `episode_return`/`episode_length` (of each sub-environment's last
    finished episode) and `returned_episode` (true on the step that finished one), like
    `bellmax.envs.EpisodeStatistics`. Observations are numpy arrays of the bellmax space's
    dtype (float32 / int32); rewards are float32.

    Build it with `make_host_vector_env`.
    """

    def __init__(self, env_id: str, vector_env: gymnasium.vector.VectorEnv, *, seed: int = 0):
        self.env_id = env_id
        """The id it was made from."""
        self.vector_env = vector_env
        """The underlying Gymnasium vector env."""
        self.num_envs = int(vector_env.num_envs)
        """Number of sub-environments `N`."""
        self.seed = seed
        """Seed of the first reset (sub-environment `i` gets `seed + i`)."""
        self._obs_codec = _Codec(vector_env.single_observation_space)
        self._act_codec = _Codec(vector_env.single_action_space)
        self.observation_space: spaces.Space = self._obs_codec.space
        """One sub-environment's observation space (bellmax)."""
        self.action_space: spaces.Space = self._act_codec.space
        """One sub-environment's action space (bellmax)."""
        self.obs: np.ndarray | None = None
        """The latest observations `[N, ...]` (None before the first reset)."""
        self._started = False
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._ep_length = np.zeros(self.num_envs, np.int64)
        self._last_return = np.zeros(self.num_envs, np.float32)
        self._last_length = np.zeros(self.num_envs, np.int32)

    def __repr__(self) -> str:
        return f"HostVectorEnv({self.env_id!r}, num_envs={self.num_envs})"

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every sub-environment. Returns the observations `[N, ...]`.

        Args:
          seed: sub-environment `i` is seeded `seed + i`; None continues their random
            streams (the first reset uses the constructor's seed).
        """
        if seed is None and not self._started:
            seed = self.seed
        if seed is not None:
            self.vector_env.action_space.seed(int(seed))
        obs, _ = self.vector_env.reset(seed=None if seed is None else int(seed))
        self._started = True
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        self.obs = self._obs_codec.batch(obs)
        return self.obs.copy()

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-environment once.

        Args:
          actions: `[N, *action_space.shape]`, in the bellmax action space.

        Returns:
          `(obs, reward, terminated, truncated, info)`; see the class docstring for `info`.
        """
        if not self._started:
            raise gymnasium.error.ResetNeeded(f"{self!r}: call reset() before step().")
        gym_actions = self._act_codec.to_gym_batch(actions, self.num_envs)
        obs, reward, terminated, truncated, info = self.vector_env.step(gym_actions)
        obs = self._obs_codec.batch(obs)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        done = terminated | truncated
        final = obs.copy()
        final_obs = info.pop("final_obs", None)
        info.pop("_final_obs", None)
        for i in np.flatnonzero(done):
            final[i] = self._obs_codec.single(final_obs[i])
        self._ep_return += reward
        self._ep_length += 1
        self._last_return = np.where(done, self._ep_return, self._last_return).astype(np.float32)
        self._last_length = np.where(done, self._ep_length, self._last_length).astype(np.int32)
        self._ep_return[done] = 0.0
        self._ep_length[done] = 0
        info["final_observation"] = final
        info["_final_observation"] = done.copy()
        info["episode_return"] = self._last_return.copy()
        info["episode_length"] = self._last_length.copy()
        info["returned_episode"] = done.copy()
        self.obs = obs
        return obs.copy(), np.asarray(reward, np.float32), terminated, truncated, info

    def sample_actions(self) -> np.ndarray:
        """Uniformly random actions `[N, ...]` (seeded by `reset(seed)`)."""
        gym_actions = self.vector_env.action_space.sample()
        return self._act_codec.batch(gym_actions)

    def close(self) -> None:
        """Close the sub-environments."""
        self.vector_env.close()


def make_host_vector_env(
    env_id: str,
    *,
    num_envs: int = 1,
    seed: int = 0,
    max_episode_steps: int | None = None,
    **kwargs: Any,
) -> HostVectorEnv:
    """Any Gymnasium environment id as a host-side vector environment.

    Args:
      env_id: a Gymnasium id (`"CartPole-v1"`, `"FrozenLake-v1"`), or `"module:EnvName-v0"`,
        which imports `module` (where the id is registered) first. An id only bellmax
        knows is served by `to_gymnasium`, with `kwargs` as parameter overrides.
      num_envs: number of sub-environments.
      seed: seed of the first reset (sub-environment `i` gets `seed + i`).
      max_episode_steps: cap every episode at this many steps (it is then truncated), on
        top of the environment's own time limit: an episode ends at whichever comes first.
        None keeps the environment's own limit only.
      **kwargs: passed to `gymnasium.make` (e.g. `is_slippery=False`).

    Returns:
      A `HostVectorEnv` (same-step auto-reset, `info["final_observation"]`).

    Raises:
      UnknownNameError: the id is neither Gymnasium's nor bellmax's (the message lists the
        close matches in both registries).
      EnvModuleImportError: the `module` of `module:EnvName-v0` cannot be imported.
      EnvDependencyError: the environment needs an optional dependency that is missing
        (the message names the extra to install, e.g. `gymnasium[box2d]`).
      ValueError: `num_envs < 1` or `max_episode_steps < 1`.
      TypeError: `num_envs` or `max_episode_steps` not an int; spaces with no bellmax
        equivalent.
    """
    num_envs = check_int(num_envs, "num_envs", owner="make_host_vector_env", low=1)
    if max_episode_steps is not None:
        max_episode_steps = check_int(
            max_episode_steps, "max_episode_steps", owner="make_host_vector_env", low=1
        )
    name = _gym_id(env_id)
    if registry.is_gymnax_id(env_id):  # gymnax's environment, never Gymnasium's namesake
        env, params = registry.make(env_id, **kwargs)
        env_fns = [partial(_capped_bellmax_env, env, params, max_episode_steps)] * int(num_envs)
    elif name in gymnasium.registry:
        env_fns = [partial(_gym_make, name, max_episode_steps, **kwargs)] * int(num_envs)
    elif name == env_id and registry.is_registered(env_id):
        env = _registered_env(env_id)
        params = registry.replace_params(env.default_params, **kwargs)
        env_fns = [partial(_capped_bellmax_env, env, params, max_episode_steps)] * int(num_envs)
    else:
        raise _unknown_env(env_id)
    vec = gymnasium.vector.SyncVectorEnv(
        env_fns, autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP
    )
    return HostVectorEnv(env_id, vec, seed=int(seed))


def rollout_host(vec_env: HostVectorEnv, policy_fn: Any, num_steps: int) -> HostRollout:
    """Run `policy_fn` for `num_steps` steps of a host vector env.

    Continues from the env's latest observations (resetting it first if it never was).

    Args:
      vec_env: a `HostVectorEnv`.
      policy_fn: `obs [N, ...] -> actions [N, ...]` (numpy or jax arrays).
      num_steps: steps `T` to take.

    Returns:
      A `HostRollout`: the `Trajectory` (numpy, `[T, N, ...]`; `next_obs` is the true next
      observation, before any auto-reset) and the returns/lengths of finished episodes.
    """
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps!r}.")
    obs = vec_env.reset() if vec_env.obs is None else vec_env.obs.copy()
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("obs", "action", "reward", "terminated", "truncated", "next_obs")
    }
    ep_returns: list[np.ndarray] = []
    ep_lengths: list[np.ndarray] = []
    for _ in range(int(num_steps)):
        action = np.asarray(policy_fn(obs))
        next_obs, reward, terminated, truncated, info = vec_env.step(action)
        for k, v in (
            ("obs", obs),
            ("action", action),
            ("reward", reward),
            ("terminated", terminated),
            ("truncated", truncated),
            ("next_obs", info["final_observation"]),
        ):
            cols[k].append(v)
        done = info["returned_episode"]
        ep_returns.append(info["episode_return"][done])
        ep_lengths.append(info["episode_length"][done])
        obs = next_obs
    traj = Trajectory(**{k: np.stack(v) for k, v in cols.items()})
    return HostRollout(
        trajectory=traj,
        episode_returns=np.concatenate(ep_returns),
        episode_lengths=np.concatenate(ep_lengths),
    )


# ====================================================================== toy-text tables
def tabular_mdp_from_gymnasium(
    env_id_or_env: str | gymnasium.Env,
    *,
    gamma: float = 0.99,
    sparse: bool | None = None,
    **make_kwargs: Any,
) -> TabularMDP:
    """A Gymnasium toy-text environment's transition table as an exact `TabularMDP`.

    The table `unwrapped.P[s][a] = [(prob, next_state, reward, terminated), ...]`
    (FrozenLake, CliffWalking, Taxi) gives `P[s, a, s']` (duplicates summed) and the
    expected reward `R[s, a] = sum prob * reward` (Sutton & Barto, eq. 3.5). A state reached
    by a terminating transition is terminal: it becomes absorbing (a self-loop with reward
    0, whatever its own row in the table says) and is marked in `terminal`. The start
    distribution is the env's `initial_state_distrib` when it has one.

    Args:
      env_id_or_env: a Gymnasium id (`module:EnvName-v0` accepted) or a made env.
      gamma: discount factor of the MDP.
      sparse: store `P` as `SparseTransitions`; by default when `S * A * S` exceeds
        `DENSE_LIMIT` (Taxi).
      **make_kwargs: passed to `gymnasium.make` with an id (e.g. `is_slippery=False`).

    Returns:
      The validated `TabularMDP`, named after the env.

    Raises:
      TypeError: the env has no `unwrapped.P` table, or its spaces are not `Discrete`.
      ValueError: a state that some transitions enter terminating and others not.
      InvalidMDPError: the table's probabilities do not form distributions.
    """
    if isinstance(env_id_or_env, str):
        env = _make_gym_env(env_id_or_env, **make_kwargs)
        name, close = env_id_or_env, True
    elif isinstance(env_id_or_env, gymnasium.Env):
        if make_kwargs:
            raise TypeError(
                f"make_kwargs {sorted(make_kwargs)} only apply to an env id; pass them to "
                "gymnasium.make yourself when giving an env."
            )
        env = env_id_or_env
        name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
        close = False
    else:
        raise TypeError(
            f"expected a Gymnasium env id or gymnasium.Env, got {type(env_id_or_env).__name__} "
            f"{env_id_or_env!r}."
        )
    try:
        return _table_to_mdp(env, name, gamma=gamma, sparse=sparse)
    finally:
        if close:
            env.close()


def _table_to_mdp(env: gymnasium.Env, name: str, *, gamma: float, sparse: bool | None):
    unwrapped = env.unwrapped
    table = getattr(unwrapped, "P", None)
    if not isinstance(table, dict):
        raise TypeError(
            f"{name} has no transition table: only Gymnasium envs whose `unwrapped.P` is a "
            "dict {s: {a: [(prob, next_state, reward, terminated), ...]}} can be converted "
            "(FrozenLake, CliffWalking, Taxi). Learn from samples with make_host_vector_env "
            "instead."
        )
    obs_space, act_space = unwrapped.observation_space, unwrapped.action_space
    if not (
        isinstance(obs_space, gym_spaces.Discrete) and isinstance(act_space, gym_spaces.Discrete)
    ):
        raise TypeError(
            f"{name} has a table but its spaces are {obs_space} and {act_space}; a table "
            "converts only with Discrete observations and actions."
        )
    S, A = int(obs_space.n), int(act_space.n)
    s0, a0 = int(obs_space.start), int(act_space.start)

    rows: list[tuple[int, int, int, float, float, bool]] = []
    for s in range(S):
        row = table.get(s + s0)
        if row is None:
            raise ValueError(f"{name}: P has no entry for state {s + s0}; every state needs one.")
        for a in range(A):
            outcomes = row.get(a + a0)
            if outcomes is None:
                raise ValueError(
                    f"{name}: P[{s + s0}] has no entry for action {a + a0}; every action needs one."
                )
            for prob, s_next, reward, terminated in outcomes:
                if prob == 0:
                    continue
                s_idx = int(s_next) - s0
                if not 0 <= s_idx < S:
                    raise ValueError(
                        f"{name}: P[{s + s0}][{a + a0}] leads to state {s_next}, outside the "
                        f"observation space {obs_space}."
                    )
                rows.append((s, a, s_idx, float(prob), float(reward), bool(terminated)))

    data = np.array([r[:5] for r in rows], dtype=np.float64).reshape(-1, 5)
    term_flag = np.array([r[5] for r in rows], dtype=bool)
    s_col, a_col, n_col = (data[:, i].astype(np.int64) for i in range(3))
    prob, reward = data[:, 3], data[:, 4]

    initial = getattr(unwrapped, "initial_state_distrib", None)
    if initial is not None:
        initial = np.asarray(initial, dtype=np.float64)
        if initial.shape != (S,):
            initial = None
    terminal, conflict = _classify_terminal(s_col, n_col, term_flag, S, initial)
    if conflict is not None:
        raise ValueError(
            f"{name}: state {conflict + s0} is entered by some transitions with "
            "terminated=True and by others with terminated=False; bellmax makes terminal "
            "states absorbing, which needs them to be terminal however they are reached."
        )
    # A terminal state's own row is replaced by a self-loop; only entries from live states count.
    live = ~terminal[s_col]

    R = np.zeros((S, A))
    np.add.at(R, (s_col[live], a_col[live]), prob[live] * reward[live])
    term_states = np.flatnonzero(terminal)
    loops_s = np.repeat(term_states, A)
    loops_a = np.tile(np.arange(A), term_states.size)
    idx = np.concatenate(
        [
            np.stack([s_col[live], a_col[live], n_col[live]], axis=1),
            np.stack([loops_s, loops_a, loops_s], axis=1),
        ]
    )
    vals = np.concatenate([prob[live], np.ones(loops_s.size)])

    P_sparse = SparseTransitions.from_coo(idx, vals, S, A)
    use_sparse = S * A * S > DENSE_LIMIT if sparse is None else bool(sparse)
    P = P_sparse if use_sparse else P_sparse.to_dense(S)

    return TabularMDP(P, R, gamma, terminal=terminal, initial=initial, name=name)


def _classify_terminal(
    s_col: np.ndarray, n_col: np.ndarray, term_flag: np.ndarray, S: int, initial: Any
) -> tuple[np.ndarray, int | None]:
    """Terminal states: those entered by a terminating transition from a reachable state.

    Reachability starts from the start distribution's support (all states without one) and
    does not continue past terminating transitions, so states only a finished episode could
    be in (Taxi's passenger-at-destination states away from the destination) do not count.

    Returns:
      `(terminal mask [S], a state entered both ways from reachable states, or None)`.
    """
    order = np.argsort(s_col, kind="stable")
    starts = np.searchsorted(s_col[order], np.arange(S + 1))
    reached = np.zeros(S, dtype=bool)
    terminal = np.zeros(S, dtype=bool)
    entered_live = np.zeros(S, dtype=bool)
    roots = np.flatnonzero(initial > 0) if initial is not None else np.arange(S)
    reached[roots] = True
    stack = list(roots)
    while stack:
        s = stack.pop()
        rows = order[starts[s] : starts[s + 1]]
        ends, nxt = term_flag[rows], n_col[rows]
        terminal[nxt[ends]] = True
        entered_live[nxt[~ends]] = True
        new = nxt[~ends & ~reached[nxt]]
        reached[new] = True
        stack.extend(np.unique(new).tolist())
    both = np.flatnonzero(terminal & entered_live)
    return terminal, (int(both[0]) if both.size else None)


register_gymnasium_envs()
