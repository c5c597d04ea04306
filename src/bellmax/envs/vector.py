"""Vector environments: `N` copies of one environment behind one `reset`/`step`, for learners.

Learning algorithms see only this interface, so the same compiled training loop runs on

- a bellmax environment, a `gymnax:` id (gymnax's own environment) or any gymnax-API
  environment object, wrapped or not (`JaxVectorEnv`: `vmap`ped, auto-reset, episode
  statistics, everything inside `jit`; gymnax's spaces become bellmax's), and
- any Gymnasium id through the host bridge (`HostCallbackVectorEnv`: the environments step
  on the host, called from inside the jitted loop by `jax.experimental.io_callback`; the
  learning step stays compiled).

Both auto-reset on the same step (the returned observation starts the next episode; the
true last observation is `final_obs`), so a learner bootstraps from `final_obs` unless
`terminated`, exactly as for Gymnasium's vector envs in same-step mode.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.experimental import io_callback

from bellmax.core.checks import check_int
from bellmax.core.display import summary_repr
from bellmax.envs import registry, spaces
from bellmax.envs._checks import check_params_type
from bellmax.envs.environment import Environment, EnvParams


@struct.dataclass
class VecState:
    """What changes between steps of a vector environment."""

    __repr__ = summary_repr

    env_state: Any
    """The `N` environments' states (batched); a step counter for host environments."""
    episode_return: jax.Array
    """`[N]` undiscounted return of each running episode so far."""
    episode_length: jax.Array
    """`[N]` steps of each running episode so far."""


@struct.dataclass
class VecStep:
    """One step of `N` environments."""

    __repr__ = summary_repr

    obs: jax.Array
    """`[N, ...]` observations to act on next (the first of a new episode where one ended)."""
    state: VecState
    """The new vector state."""
    reward: jax.Array
    """`[N]` float32 rewards."""
    terminated: jax.Array
    """`[N]` true where the episode reached a terminal state (do not bootstrap)."""
    truncated: jax.Array
    """`[N]` true where the episode was cut by a time limit (bootstrap from `final_obs`)."""
    final_obs: jax.Array
    """`[N, ...]` the true next observation of every environment, reset or not."""
    episode_return: jax.Array
    """`[N]` return of the episode that ended on this step (valid where `done`)."""
    episode_length: jax.Array
    """`[N]` length of the episode that ended on this step (valid where `done`)."""

    @property
    def done(self) -> jax.Array:
        """`[N]` true where an episode ended (terminated or truncated)."""
        return self.terminated | self.truncated


def _one_env_step(env: Any, **outputs: Any) -> None:
    """At trace time: one environment's step gave a scalar reward and flags (a reward of
    shape `[1]` would otherwise broadcast against the `[N]` episode returns to `[N, N]` and
    fail far from its cause)."""
    for name, x in outputs.items():
        if jnp.shape(x) != ():
            raise ValueError(
                f"{env!r}: one environment's step returned a {name} of shape "
                f"{jnp.shape(x)}; it must be a scalar (the vector environment stacks the "
                f"environments' steps). Return `{name}.squeeze()` (or `{name}[0]`) from step."
            )


def _vec_step(
    state: VecState,
    env_state: Any,
    *,
    obs: jax.Array,
    reward: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    final_obs: jax.Array,
) -> VecStep:
    """The `VecStep` of one step: every episode's counts grow by this step, and restart
    (with `env_state`, already reset there) where one ended."""
    done = terminated | truncated
    ep_return = state.episode_return + reward
    ep_length = state.episode_length + 1
    new_state = VecState(env_state, jnp.where(done, 0.0, ep_return), jnp.where(done, 0, ep_length))
    return VecStep(
        obs=obs,
        state=new_state,
        reward=reward,
        terminated=terminated,
        truncated=truncated,
        final_obs=final_obs,
        episode_return=ep_return,
        episode_length=ep_length,
    )


class VectorEnv(abc.ABC):
    """`N` environments stepped together. Pure functions of explicit state and keys."""

    num_envs: int
    """Number of environments `N`."""
    observation_space: spaces.Space
    """One environment's observation space."""
    action_space: spaces.Space
    """One environment's action space."""
    is_host: bool = False
    """True when the environments live on the host (no `vmap` over seeds)."""
    env_id: str = "?"
    """A readable name for messages."""
    num_players: int = 1
    """Players taking turns (`Environment.num_players`): 2 for a two-player game."""
    slots: int = 1
    """Sets of environments held, one per seed it can train (host envs: see
    `HostCallbackVectorEnv`; a pure env holds no state and serves any number of seeds)."""

    @contextlib.contextmanager
    def slot(self, index: int) -> Iterator[None]:
        """Run the block on environment set `index` (a no-op for one set)."""
        if index != 0:
            raise ValueError(
                f"{self!r} holds one set of environments, so slot {index} does not exist."
            )
        yield

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> tuple[jax.Array, VecState]:
        """Start `N` episodes. Returns `(obs [N, ...], state)`."""

    @abc.abstractmethod
    def step(self, key: jax.Array, state: VecState, action: jax.Array) -> VecStep:
        """Step all `N` environments with `action [N, ...]`; auto-reset where one ends."""


def _is_bellmax_env(env: Any) -> bool:
    return isinstance(env, Environment)


def _steps_like_gymnax_1(env: Any, params: Any) -> bool:
    """Whether `env` has gymnax 1.x's public API: `reset(key, params) -> obs, state` and an
    auto-resetting `step(key, state, action, params) -> obs, state, reward, terminated,
    truncated, info` (found by tracing one reset and step abstractly, at no run-time cost)."""
    if not (callable(getattr(env, "step", None)) and callable(getattr(env, "reset", None))):
        return False
    space = env.action_space(params)

    def one_step(key):
        _, state = env.reset(key, params)
        return env.step(key, state, space.sample(key), params)

    out = jax.eval_shape(one_step, jax.random.key(0))
    return isinstance(out, tuple) and len(out) == 6


class JaxVectorEnv(VectorEnv):
    """`N` copies of a pure-JAX environment (bellmax, or any object with gymnax's API).

    bellmax environments step raw (`terminated`/`truncated` apart) and are reset here.
    gymnax 1.x environments and wrappers (anything whose public `step` returns gymnax 1.x's
    `(obs, state, reward, terminated, truncated, info)`: `gymnax.make(...)[0]`,
    `LogWrapper(...)`) are stepped through that `step`, which applies the time limit and
    auto-resets by itself; the true last observation is `info["final_observation"]`. Older
    gymnax-API objects are stepped through their raw `step_env`/`reset_env`; their single
    `done` counts as truncated where the episode reached `params.max_steps_in_episode` and
    as terminated otherwise. Spaces are converted to bellmax's (`spaces.from_gymnax`).
    """

    def __init__(self, env: Any, env_params: Any = None, *, num_envs: int = 1):
        num_envs = check_int(num_envs, "num_envs", owner="JaxVectorEnv", low=1)
        if not _is_bellmax_env(env) and not (
            hasattr(env, "step_env") and hasattr(env, "reset_env")
        ):
            if isinstance(env, tuple) and len(env) == 2 and _is_bellmax_env(env[0]):
                raise TypeError(
                    "got the (env, params) pair bellmax.make returns; pass the env id string, "
                    "or the environment and its params apart (env, env_params=params)."
                )
            raise TypeError(
                f"{env!r} is neither a bellmax Environment nor a gymnax-API environment "
                "(with reset_env/step_env); pass an env id string or an environment object."
            )
        self.env = env
        self.env_params = env.default_params if env_params is None else env_params
        if env_params is not None:
            name = str(getattr(env, "name", type(env).__name__))
            check_params_type(env_params, type(env.default_params), name)
        self.num_envs = int(num_envs)
        self.observation_space = spaces.from_gymnax(env.observation_space(self.env_params))
        self.action_space = spaces.from_gymnax(env.action_space(self.env_params))
        self.env_id = getattr(env, "name", type(env).__name__)
        self.num_players = int(getattr(env, "num_players", 1))
        self._gymnax = not _is_bellmax_env(env)
        # gymnax 1.x objects and bellmax envs under `AutoReset` step through their own
        # auto-resetting `step`; the last observation is then the info's `final_observation`.
        if self._gymnax:
            self._auto_resets = _steps_like_gymnax_1(env, self.env_params)
        else:
            self._auto_resets = bool(env.auto_resets)

    def __repr__(self) -> str:
        return f"JaxVectorEnv({self.env_id!r}, num_envs={self.num_envs})"

    # Hash/eq by value so jitted functions closing over an equal env are shared.
    def _key(self) -> tuple:
        return (self.env, self.num_envs, jax.tree.structure(self.env_params))

    def __hash__(self) -> int:
        try:
            return hash(self._key())
        except TypeError:
            return id(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JaxVectorEnv):
            return NotImplemented
        if self._key() != other._key():
            return False
        a, b = jax.tree.leaves(self.env_params), jax.tree.leaves(other.env_params)
        try:
            return all(
                bool(np.all(np.asarray(x) == np.asarray(y))) for x, y in zip(a, b, strict=True)
            )
        except Exception:
            return False

    def _reset1(self, key: jax.Array) -> tuple[jax.Array, Any]:
        if self._auto_resets:  # a gymnax 1.x object: its public reset (wrappers' state too)
            return self.env.reset(key, self.env_params)
        if self._gymnax:
            return self.env.reset_env(key, self.env_params)
        return self.env.reset(key, self.env_params)

    def _step1(self, key: jax.Array, state: Any, action: jax.Array):
        if self._gymnax:
            obs, nstate, reward, done, _ = self.env.step_env(key, state, action, self.env_params)
            _one_env_step(self.env, reward=reward, done=done)
            limit = getattr(self.env_params, "max_steps_in_episode", None)
            if limit is not None and hasattr(nstate, "time"):
                truncated = done & (nstate.time >= limit)
            else:
                truncated = jnp.zeros((), bool)
            return obs, nstate, reward, done & ~truncated, truncated
        obs, nstate, reward, terminated, truncated, _ = self.env.step(
            key, state, action, self.env_params
        )
        _one_env_step(self.env, reward=reward, terminated=terminated, truncated=truncated)
        return obs, nstate, reward, terminated, truncated

    def _auto_step1(self, key: jax.Array, state: Any, action: jax.Array):
        """One step of a gymnax 1.x object or a bellmax env under `AutoReset`, reset by itself
        where the episode ended."""
        obs, nstate, reward, terminated, truncated, info = self.env.step(
            key, state, action, self.env_params
        )
        _one_env_step(self.env, reward=reward, terminated=terminated, truncated=truncated)
        if not self._gymnax and not (isinstance(info, dict) and "final_observation" in info):
            raise ValueError(
                f"{self.env!r} resets by itself but its step's info has no "
                "'final_observation', the last observation of an episode that a learner "
                "bootstraps from at a time limit: a wrapper above AutoReset dropped it. Keep "
                "info's entries in that wrapper, or pass the environment without AutoReset "
                "(the vector environment resets it)."
            )
        final_obs = info.get("final_observation", obs) if isinstance(info, dict) else obs
        return obs, nstate, reward, terminated, truncated, final_obs

    def reset(self, key: jax.Array) -> tuple[jax.Array, VecState]:
        keys = jax.random.split(key, self.num_envs)
        obs, env_state = jax.vmap(self._reset1)(keys)
        zeros = jnp.zeros(self.num_envs, jnp.float32)
        return obs, VecState(env_state, zeros, jnp.zeros(self.num_envs, jnp.int32))

    def step(self, key: jax.Array, state: VecState, action: jax.Array) -> VecStep:
        k_step, k_reset = jax.random.split(key)
        if self._auto_resets:
            obs, st, reward, terminated, truncated, final_obs = jax.vmap(self._auto_step1)(
                jax.random.split(k_step, self.num_envs), state.env_state, action
            )
            return _vec_step(
                state,
                st,
                obs=obs,
                reward=jnp.asarray(reward, jnp.float32),
                terminated=jnp.asarray(terminated, bool),
                truncated=jnp.asarray(truncated, bool),
                final_obs=final_obs,
            )
        obs_st, st, reward, terminated, truncated = jax.vmap(self._step1)(
            jax.random.split(k_step, self.num_envs), state.env_state, action
        )
        obs_re, st_re = jax.vmap(self._reset1)(jax.random.split(k_reset, self.num_envs))
        terminated = jnp.asarray(terminated, bool)
        truncated = jnp.asarray(truncated, bool)
        done = terminated | truncated
        reward = jnp.asarray(reward, jnp.float32)

        def pick(a, b):
            d = done.reshape(done.shape + (1,) * (a.ndim - 1))
            return jnp.where(d, a, b)

        return _vec_step(
            state,
            jax.tree.map(pick, st_re, st),
            obs=pick(obs_re, obs_st),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=obs_st,
        )


class HostCallbackVectorEnv(VectorEnv):
    """A host vector environment (`bellmax.envs.gymnasium.HostVectorEnv`) callable from `jit`.

    Each `reset`/`step` is an ordered `io_callback` into the host environment, so a learner's
    jitted loop drives Gymnasium environments step by step while its learning step stays
    compiled. Host environments hold their own state: a jitted loop over them cannot be
    `vmap`ped over seeds, and resuming from a checkpoint restarts the host episodes (their
    state is not in the checkpoint).

    Several seeds run one after another, each on host environments of its own: `add_slot`
    adds a set, and the callbacks of a program run inside `with venv.slot(i):` go to set `i`
    (the caller waits for the program's results before it leaves the block). One compiled
    program serves every slot.
    """

    is_host = True

    def __init__(self, host_env: Any):
        self._hosts = [host_env]
        self._slot = 0
        self.num_envs = int(host_env.num_envs)
        self.observation_space = host_env.observation_space
        self.action_space = host_env.action_space
        self.env_id = getattr(host_env, "env_id", repr(host_env))
        obs_shape = (self.num_envs, *self.observation_space.shape)
        self._obs_struct = jax.ShapeDtypeStruct(obs_shape, jnp.dtype(self.observation_space.dtype))
        n = self.num_envs
        self._step_struct = (
            self._obs_struct,
            jax.ShapeDtypeStruct((n,), jnp.float32),
            jax.ShapeDtypeStruct((n,), jnp.bool_),
            jax.ShapeDtypeStruct((n,), jnp.bool_),
            self._obs_struct,
            jax.ShapeDtypeStruct((n,), jnp.float32),
            jax.ShapeDtypeStruct((n,), jnp.int32),
        )

    def __repr__(self) -> str:
        return f"HostCallbackVectorEnv({self.env_id!r}, num_envs={self.num_envs})"

    @property
    def host_env(self) -> Any:
        """The host environments the callbacks drive now (slot `i` inside `slot(i)`)."""
        return self._hosts[self._slot]

    @property
    def slots(self) -> int:
        """How many sets of host environments this holds (one per seed it can train)."""
        return len(self._hosts)

    def add_slot(self, host_env: Any) -> int:
        """Add a set of host environments like the first (same count and spaces); its index."""
        if (
            int(host_env.num_envs) != self.num_envs
            or repr(host_env.observation_space) != repr(self.observation_space)
            or repr(host_env.action_space) != repr(self.action_space)
        ):
            raise ValueError(
                f"add_slot needs host environments like {self!r}'s (num_envs, observation and "
                f"action spaces); got {host_env!r}."
            )
        self._hosts.append(host_env)
        return len(self._hosts) - 1

    @contextlib.contextmanager
    def slot(self, index: int) -> Iterator[None]:
        """Send the callbacks to host environment set `index` inside the block."""
        index = check_int(index, "slot", owner="HostCallbackVectorEnv", low=0)
        if index >= len(self._hosts):
            raise ValueError(
                f"{self!r} holds {len(self._hosts)} set(s) of host environments, so slot "
                f"{index} does not exist; add_slot adds one per seed."
            )
        previous, self._slot = self._slot, index
        try:
            yield
        finally:
            self._slot = previous

    def _host_reset(self, seed: np.ndarray) -> np.ndarray:
        obs = self.host_env.reset(seed=int(seed))
        return np.asarray(obs, self._obs_struct.dtype)

    def _host_step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self.host_env.step(np.asarray(action))
        dt = self._obs_struct.dtype
        return (
            np.asarray(obs, dt),
            np.asarray(reward, np.float32),
            np.asarray(terminated, bool),
            np.asarray(truncated, bool),
            np.asarray(info["final_observation"], dt),
            np.asarray(info["episode_return"], np.float32),
            np.asarray(info["episode_length"], np.int32),
        )

    def reset(self, key: jax.Array) -> tuple[jax.Array, VecState]:
        seed = jax.random.randint(key, (), 0, 2**31 - 1, jnp.int32)
        obs = io_callback(self._host_reset, self._obs_struct, seed, ordered=True)
        zeros = jnp.zeros(self.num_envs, jnp.float32)
        counter = jnp.zeros((), jnp.int32)
        return obs, VecState(counter, zeros, jnp.zeros(self.num_envs, jnp.int32))

    def step(self, key: jax.Array, state: VecState, action: jax.Array) -> VecStep:
        del key  # the host environments draw their own randomness (seeded at reset)
        obs, reward, terminated, truncated, final_obs, ep_ret, ep_len = io_callback(
            self._host_step, self._step_struct, action, ordered=True
        )
        step = _vec_step(
            state,
            state.env_state + 1,
            obs=obs,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=final_obs,
        )
        # An ended episode's totals are the ones the host environments counted.
        return step.replace(
            episode_return=jnp.where(step.done, ep_ret, step.episode_return),
            episode_length=jnp.where(step.done, ep_len, step.episode_length),
        )


def make_vector_env(
    env: Any,
    *,
    num_envs: int = 1,
    env_params: EnvParams | None = None,
    seed: int = 0,
    **param_overrides: Any,
) -> VectorEnv:
    """A vector environment from an env id or an environment object.

    Args:
      env: a bellmax id (`"CartPole-v1"`), a gymnax id (`"gymnax:CartPole-v1"`: gymnax's own
        environment, inside `jit`), any Gymnasium id (`"gymnasium:CartPole-v1"`,
        `"module:EnvName-v0"`; stepped on the host), a bellmax `Environment`, or a
        gymnax-API environment object (gymnax's wrappers included).
      num_envs: environments stepped in parallel.
      env_params: parameters for an environment object (default: its `default_params`).
      seed: seed of the host environments' first reset (Gymnasium ids only).
      **param_overrides: bellmax and gymnax ids only: override `EnvParams` fields
        (`tau=0.01`).

    Returns:
      A `JaxVectorEnv` or a `HostCallbackVectorEnv`.
    """
    if isinstance(env, VectorEnv):
        return env
    if isinstance(env, str):
        if registry.is_registered(env):
            e, p = registry.make(env, **param_overrides)
            return JaxVectorEnv(e, p if env_params is None else env_params, num_envs=num_envs)
        if param_overrides:
            raise ValueError(
                f"parameter overrides {sorted(param_overrides)} apply only to bellmax ids "
                f"(and gymnax: ids), not to the Gymnasium id {env!r}."
            )
        if env_params is not None:  # it was dropped: the run used Gymnasium's own physics
            raise ValueError(
                f"env_params apply only to bellmax (and gymnax:) environments, not to the "
                f"Gymnasium id {env!r}: give its settings to gymnasium.make, or use a "
                "bellmax id (e.g. CartPole-v1) whose params these are."
            )
        return HostCallbackVectorEnv(registry.resolve_env(env, num_envs=num_envs, seed=seed).host)
    if param_overrides:
        raise ValueError("parameter overrides need an env id; pass env_params= instead.")
    return JaxVectorEnv(env, env_params, num_envs=num_envs)
