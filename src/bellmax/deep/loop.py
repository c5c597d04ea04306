"""The training loop every deep RL algorithm shares: `make_train`'s environment and `lax.scan`.

`EpisodeMetrics` holds the episode statistics every algorithm's `Metrics` starts with;
`vector_env(config, env, env_params)` builds (or checks) the vector environment and checks the
config against it (`config.validate(venv)`; the configs check their own fields on
construction); `scan_train(config, venv, init, update)` returns `train(key)`: `init` then
`config.num_updates` of `update` in one `lax.scan`, so `jax.jit(train)` is the whole run and
`jax.jit(jax.vmap(train))(keys)` one run per seed (for JAX environments; a Gymnasium id steps
on the host and `train` refuses to be vmapped). `scheduled_learning_rate(lr, opt_state)` is the
step size an optax optimiser's next update takes (for the algorithms' `learning_rate` metric).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from bellmax.envs.vector import VectorEnv, make_vector_env

__all__ = ["EpisodeMetrics", "is_vmapped", "scan_train", "scheduled_learning_rate", "vector_env"]


@struct.dataclass
class EpisodeMetrics:
    """The first fields of every algorithm's per-update `Metrics` (one scalar each)."""

    env_steps: jax.Array
    """Cumulative environment steps after this update (all environments)."""
    episode_return_sum: jax.Array
    """Sum of returns of the episodes that ended during this update."""
    episode_count: jax.Array
    """Number of such episodes."""


def scheduled_learning_rate(learning_rate: float | optax.Schedule, opt_state: Any) -> jax.Array:
    """The step size the next `tx.update(grads, opt_state)` takes, as a float32 scalar.

    Args:
      learning_rate: what the optimiser was built with: a number, or an optax schedule
        `count -> step size` (then `opt_state` holds exactly one `ScaleByScheduleState`,
        whose `count` is the number of updates taken so far; optax evaluates the schedule at
        it before incrementing it).
      opt_state: the optimiser's state before the update.

    Raises:
      ValueError: a schedule, but `opt_state` has no single `ScaleByScheduleState`.
    """
    if not callable(learning_rate):
        return jnp.asarray(learning_rate, jnp.float32)
    is_schedule = lambda x: isinstance(x, optax.ScaleByScheduleState)  # noqa: E731
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=is_schedule) if is_schedule(s)]
    if len(found) != 1:
        raise ValueError(
            f"the optimiser state holds {len(found)} schedule states, not 1; pass the "
            "state of the optimiser built with this learning-rate schedule."
        )
    return jnp.asarray(learning_rate(found[0].count), jnp.float32)


def is_vmapped(x: Any) -> bool:
    """Whether `x` is being traced by `jax.vmap`.

    jax exports no predicate for it; its batching tracer's class name has been stable.
    """
    return type(x).__name__ == "BatchTracer"


def vector_env(config: Any, env: Any, env_params: Any = None) -> VectorEnv:
    """The vector environment for `config`, which `config.validate(venv)` checks it against.

    `config.validate()` runs first, before any environment is built (a no-op for the deep RL
    configs, whose fields are checked on construction; other configs may check them here).

    Args:
      config: an algorithm's Config (with `num_envs` and `validate(venv=None)`).
      env: an env id (bellmax, or a Gymnasium id such as `"gymnasium:CartPole-v1"`), an
        `Environment`, a gymnax-API environment or a `VectorEnv` (its `num_envs` must equal
        `config.num_envs`).
      env_params: parameters for an environment object (default: its own).

    Returns:
      The `VectorEnv`.
    """
    if isinstance(env, VectorEnv):
        venv = env
    else:
        config.validate()  # cheap errors before building environments
        venv = make_vector_env(env, num_envs=config.num_envs, env_params=env_params)
    config.validate(venv)
    return venv


def scan_train(
    config: Any,
    venv: VectorEnv,
    init_fn: Callable[[jax.Array, Any, VectorEnv], Any],
    update_fn: Callable[[Any, Any, VectorEnv], tuple[Any, Any]],
) -> Callable[[jax.Array], tuple[Any, Any]]:
    """`train(key) -> (state, metrics stacked over num_updates)`: `init_fn(key, config, venv)`
    then `config.num_updates` of `update_fn(state, config, venv)` in one `lax.scan`.

    The function carries the environment as `train.venv`. For host (Gymnasium) environments it
    refuses to be `vmap`ped, with a message that says what to do instead.
    """

    def train(key: jax.Array):
        if venv.is_host and is_vmapped(key):
            raise ValueError(
                f"{venv.env_id!r} steps on the host (Gymnasium) and cannot be vmapped over "
                "seeds; run the seeds one after another, or use a bellmax/gymnax env id."
            )
        state = init_fn(key, config, venv)
        return jax.lax.scan(
            lambda s, _: update_fn(s, config, venv), state, None, length=config.num_updates
        )

    train.venv = venv  # type: ignore[attr-defined]
    return train
