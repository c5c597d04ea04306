"""Wrappers: auto-reset, time limit and episode statistics.

Each wrapper keeps the `reset`/`step` signatures, so they compose:
`EpisodeStatistics(AutoReset(env))` is the usual stack for training. A wrapper implements
the jitted `_reset`/`_step`; the public `reset`/`step` it inherits check concrete params and
actions against the innermost environment first (see `bellmax.envs.environment`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.envs.environment import Environment, Wrapper


def _select(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


class AutoReset(Wrapper):
    """Reset as soon as an episode ends (terminated or truncated).

    The returned observation and state are those of the new episode; the last observation
    of the finished one is in `info["final_observation"]`, as in gymnax 1.x.
    """

    auto_resets = True

    @partial(jax.jit, static_argnums=0)
    def _reset(self, key, params=None):
        return self._env.reset(key, params)

    @partial(jax.jit, static_argnums=0)
    def _step(self, key, state, action, params=None):
        key_step, key_reset = jax.random.split(key)
        obs_st, state_st, reward, terminated, truncated, info = self._env.step(
            key_step, state, action, params
        )
        obs_re, state_re = self._env.reset(key_reset, params)
        done = terminated | truncated
        state = _select(done, state_re, state_st)
        obs = _select(done, obs_re, obs_st)
        info = {**info, "final_observation": obs_st}
        return obs, state, reward, terminated, truncated, info


@struct.dataclass
class TimeLimitState:
    env_state: Any
    elapsed: jax.Array


class TimeLimit(Wrapper):
    """Truncate episodes after `max_steps` steps, whatever the env's own limit."""

    def __init__(self, env: Environment, max_steps: int):
        if int(max_steps) < 1:
            raise ValueError(f"TimeLimit needs max_steps >= 1, got {max_steps}.")
        super().__init__(env)
        self.max_steps = int(max_steps)

    @partial(jax.jit, static_argnums=0)
    def _reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        return obs, TimeLimitState(env_state, jnp.asarray(0, jnp.int32))

    @partial(jax.jit, static_argnums=0)
    def _step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, _, info = self._env.step(
            key, state.env_state, action, params
        )
        elapsed = state.elapsed + 1
        truncated = elapsed >= self.max_steps
        return obs, TimeLimitState(env_state, elapsed), reward, terminated, truncated, info


@struct.dataclass
class EpisodeStatisticsState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode_return: jax.Array
    returned_episode_length: jax.Array


class EpisodeStatistics(Wrapper):
    """Track each episode's return and length.

    `info` gains `episode_return` and `episode_length` (of the last finished episode) and
    `returned_episode` (true on the step that finished one).
    """

    @partial(jax.jit, static_argnums=0)
    def _reset(self, key, params=None):
        obs, env_state = self._env.reset(key, params)
        zero_f, zero_i = jnp.asarray(0.0, jnp.float32), jnp.asarray(0, jnp.int32)
        return obs, EpisodeStatisticsState(env_state, zero_f, zero_i, zero_f, zero_i)

    @partial(jax.jit, static_argnums=0)
    def _step(self, key, state, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(
            key, state.env_state, action, params
        )
        done = terminated | truncated
        ep_return = state.episode_return + reward
        ep_length = state.episode_length + 1
        new = EpisodeStatisticsState(
            env_state=env_state,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
            returned_episode_return=jnp.where(done, ep_return, state.returned_episode_return),
            returned_episode_length=jnp.where(done, ep_length, state.returned_episode_length),
        )
        info = {
            **info,
            "episode_return": new.returned_episode_return,
            "episode_length": new.returned_episode_length,
            "returned_episode": done,
        }
        return obs, new, reward, terminated, truncated, info
