"""The training loop every deep RL algorithm shares: `make_train`'s environment and `lax.scan`.

`EpisodeMetrics` holds the episode statistics every algorithm's `Metrics` starts with, and
`mean_episode_return(return_sum, count)` turns them into the mean return of the episodes that
ended (per update, per chunk, pooled over seeds: for JAX and NumPy arrays alike);
`vector_env(config, env, env_params)` builds (or checks) the vector environment and checks the
config against it (`config.validate(venv)`; the configs check their own fields on
construction); `scan_train(config, venv, init, update)` returns `train(key)`: `init` then
`config.num_updates` of `update` in one `lax.scan`, so `jax.jit(train)` is the whole run and
`jax.jit(jax.vmap(train))(keys)` one run per seed (for JAX environments; a Gymnasium id steps
on the host and `train` refuses to be vmapped). `scheduled_learning_rate(lr, opt_state)` is the
step size an optax optimiser's next update takes (for the algorithms' `learning_rate` metric).

Hyperparameters as data: each Config names in `HYPERPARAMETERS` the numeric fields that may
hold traced values (learning rate, discount, loss weights, ...); `train(key, hyperparameters)`
puts `{field: value}` into the config inside the trace (`with_hyperparameters`), so

    train = make_train(Config(), "CartPole-v1")
    jax.jit(jax.vmap(train))(keys, {"learning_rate": jnp.array([1e-3, 3e-3])})

trains one run per (key, learning rate) pair in ONE compiled program. The other fields
(network sizes, num_envs, batch sizes, run length, flags, names) shape the program and stay
Python values; a config holding a traced value skips its `__post_init__` value checks
(`check_traced_fields`), which run when its values are concrete.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from bellmax.core.checks import check_int, check_prng_key
from bellmax.core.display import summary_repr
from bellmax.envs.vector import VectorEnv, make_vector_env

__all__ = [
    "MAX_TOTAL_TIMESTEPS",
    "EpisodeMetrics",
    "check_fields",
    "check_hyperparameters",
    "check_total_timesteps",
    "check_traced_fields",
    "is_traced",
    "is_vmapped",
    "mean_episode_return",
    "nonfinite_steps",
    "scan_train",
    "scheduled_learning_rate",
    "vector_env",
    "with_hyperparameters",
]


MAX_TOTAL_TIMESTEPS = 2**31 - 1
"""The most env steps one seed's run may take: the training programs count them (and the
updates) in int32, which wraps past it (learning stopped and exploration restarted)."""


def check_total_timesteps(value: Any, owner: str) -> int:
    """`total_timesteps` as an int in `[1, MAX_TOTAL_TIMESTEPS]`.

    Raises:
      TypeError: not an int; ValueError: below 1 or above the int32 limit (named).
    """
    value = check_int(value, "total_timesteps", owner=owner, low=1)
    if value > MAX_TOTAL_TIMESTEPS:
        raise ValueError(
            f"{owner}.total_timesteps must be at most 2**31 - 1 = {MAX_TOTAL_TIMESTEPS:,}, got "
            f"{value:,}: the training programs count env steps in int32; train at most that "
            "many steps per seed in one run."
        )
    return value


@struct.dataclass
class EpisodeMetrics:
    """The first fields of every algorithm's per-update `Metrics` (one scalar each)."""

    __repr__ = summary_repr

    env_steps: jax.Array
    """Cumulative environment steps after this update (all environments)."""
    episode_return_sum: jax.Array
    """Sum of returns of the episodes that ended during this update."""
    episode_count: jax.Array
    """Number of such episodes."""
    nonfinite_steps: jax.Array
    """Environment steps of this update whose reward or next observation was NaN or infinite:
    0 unless the environment is faulty (`nonfinite_steps`). The driver reads it to tell a
    faulty environment from a diverged learner."""

    @property
    def mean_episode_return(self) -> jax.Array:
        """The mean return of the episodes that ended in each update (`episode_return_sum /
        episode_count`), NaN where none did; any shape (e.g. `[seeds, num_updates]` from
        `jax.vmap(train)`)."""
        total = jnp.asarray(self.episode_return_sum, jnp.float32)
        return mean_episode_return(total, jnp.asarray(self.episode_count))


def mean_episode_return(return_sum: Any, count: Any) -> Any:
    """The mean return of the episodes that ended: `return_sum / count` elementwise, NaN where
    `count` is 0 (no episode ended).

    The sums may be over anything: one update (`EpisodeMetrics`), a chunk of updates, a
    moving window, all seeds. JAX arrays (or tracers, under `jit`) give a JAX array; NumPy
    arrays and Python numbers give NumPy (host code runs no JAX program).

    Args:
      return_sum: summed returns of the episodes that ended, any shape.
      count: how many episodes ended, broadcastable against `return_sum`.
    """
    if is_traced(return_sum) or is_traced(count):
        count = jnp.asarray(count)
        return jnp.where(count > 0, return_sum / jnp.maximum(count, 1), jnp.nan)
    count = np.asarray(count)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return np.where(count > 0, np.asarray(return_sum) / np.maximum(count, 1), np.nan)


def nonfinite_steps(reward: jax.Array, next_obs: Any) -> jax.Array:
    """How many of a batch of environment steps returned a NaN or infinite reward or next
    observation, as an int32 scalar.

    Args:
      reward: the steps' rewards, any shape `S` (`[N]` for one step of `N` environments,
        `[T, N]` for a rollout).
      next_obs: their next observations (the true ones, before an auto-reset), an array or a
        pytree of arrays of shape `[*S, ...]`; integer and boolean leaves are always finite.
    """
    bad = ~jnp.isfinite(reward)
    for leaf in jax.tree.leaves(next_obs):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            axes = tuple(range(bad.ndim, leaf.ndim))
            bad = bad | ~jnp.all(jnp.isfinite(leaf), axis=axes)
    return jnp.sum(bad).astype(jnp.int32)


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


def is_traced(x: Any) -> bool:
    """Whether `x` is a JAX array or tracer (a hyperparameter given as data), not a Python value."""
    return isinstance(x, (jax.Array, jax.core.Tracer))


def _traceable(config: Any) -> tuple[str, ...]:
    return tuple(getattr(type(config), "HYPERPARAMETERS", ()))


def check_traced_fields(config: Any, owner: str) -> bool:
    """Whether `config` holds hyperparameters as data (JAX arrays or tracers); raise if such a
    field is not one of `type(config).HYPERPARAMETERS`.

    A config's `__post_init__` calls it first and checks its fields' values only when it
    returns False (a traced value has none to check; `with_hyperparameters` builds such configs
    from a checked one).

    Raises:
      TypeError: a field that shapes the compiled program (a size, a count, a flag) holds an
        array; the message lists the fields that may.
    """
    data = [f.name for f in dataclasses.fields(config) if is_traced(getattr(config, f.name))]
    bad = [name for name in data if name not in _traceable(config)]
    if bad:
        raise TypeError(
            f"{owner}.{bad[0]} holds a JAX array, but it shapes the compiled program and must "
            f"be a Python value; only {', '.join(_traceable(config))} may be arrays (traced, "
            "e.g. vmapped over configurations). Give a separate Config per value of it."
        )
    return bool(data)


def check_fields(
    config: Any, names: tuple[str, ...], check: Callable[..., Any], *, owner: str, **kwargs: Any
) -> None:
    """`check(value, name, owner=owner, **kwargs)` for each named field of `config` whose value
    is concrete (a traced hyperparameter has no value to check yet)."""
    for name in names:
        value = getattr(config, name)
        if not is_traced(value):
            check(value, name, owner=owner, **kwargs)


def _check_traceable(config: Any, names: Any) -> None:
    """Raise for a name that is not one of `config`'s traceable hyperparameters."""
    unknown = sorted(set(names) - set(_traceable(config)))
    if unknown:
        raise ValueError(
            f"{unknown[0]!r} is not a hyperparameter of {type(config).__module__}.Config that can "
            f"be traced; those are: {', '.join(_traceable(config))}. Fields that shape the "
            "program (sizes, counts, flags) need a separate Config per value."
        )


def with_hyperparameters(config: Any, hyperparameters: dict[str, Any] | None) -> Any:
    """`config` with the numeric fields in `hyperparameters` replaced by their (traced) values.

    Args:
      config: an algorithm's Config.
      hyperparameters: `{field: scalar value}` (None or empty: `config` itself), each field one
        of `type(config).HYPERPARAMETERS`; the values may be tracers (under `jit`/`vmap`).

    Raises:
      TypeError: `hyperparameters` is not a dict; ValueError: a field that is not a
        hyperparameter of this Config (the message lists those that are), or a value that
        is not a scalar (an array of values is `vmap`ped over, not passed whole).
    """
    if not hyperparameters:
        return config
    if not isinstance(hyperparameters, dict):
        raise TypeError(
            f"hyperparameters must be a dict {{field: value}}, got {type(hyperparameters).__name__}."
        )
    _check_traceable(config, hyperparameters)
    for name, value in hyperparameters.items():
        shape = jnp.shape(value)
        if shape != ():
            raise ValueError(
                f"hyperparameter {name!r} must be one value per call (shape ()), got shape "
                f"{shape}; to train several values at once, vmap over them, e.g. "
                f"jax.vmap(train)(keys, {{{name!r}: values}}) with one key per value."
            )
    return dataclasses.replace(config, **hyperparameters)


def check_single_agent(venv: Any, algorithm: str) -> None:
    """Raise unless `venv`'s environment has one player (`Environment.num_players`).

    Raises:
      ValueError: a game of turns (`TicTacToe-v0`), naming what learns it instead.
    """
    players = int(getattr(venv, "num_players", 1))
    if players != 1:
        raise ValueError(
            f"{venv.env_id} is a {players}-player game of turns: each step's reward is the "
            f"mover's and the next observation the opponent's, so {algorithm} would learn "
            "every player's moves as one agent's. Learn it by self-play or search (bellmax."
            "games: the exact solver, MCTS, AlphaZero; `bellmax tictactoe`), or against a "
            "fixed opponent (`bellmax imitate --env TicTacToe-v0` plays a random one)."
        )


def check_hyperparameters(config: Any, hyperparameters: dict[str, Any]) -> None:
    """Check values to be traced before they are: each entry of each array, as `config`'s
    own field check would (`train(key, hps)` under `jax.jit(jax.vmap(...))` sees only
    tracers, which have no values to check, so `gamma=2.0` would train). `bellmax sweep`
    checks its configurations likewise, building each one's Config when it plans them.

    Args:
      config: the Config the values go into.
      hyperparameters: `{field: value or array of values}` (any shape: one per run).

    Raises:
      The Config's own error (ValueError, TypeError) for the first bad value, naming the
      field and the entry; ValueError for a field that is not a hyperparameter.
    """
    if not isinstance(hyperparameters, dict):
        raise TypeError(
            f"hyperparameters must be a dict {{field: values}}, got {type(hyperparameters).__name__}."
        )
    _check_traceable(config, hyperparameters)
    for name, values in hyperparameters.items():
        flat = np.asarray(values).reshape(-1)
        for i, v in enumerate(flat.tolist()):
            try:
                dataclasses.replace(config, **{name: v})
            except (TypeError, ValueError) as e:
                where = f" (entry {i} of an array of shape {np.shape(values)})"
                raise type(e)(f"{str(e).rstrip('.')}{where if flat.size > 1 else ''}.") from None


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
    """`train(key, hyperparameters=None) -> (state, metrics stacked over num_updates)`:
    `init_fn(key, config, venv)` then `config.num_updates` of `update_fn(state, config, venv)`
    in one `lax.scan`, with `config` = `with_hyperparameters(config, hyperparameters)`.

    The function carries the environment as `train.venv`. For host (Gymnasium) environments it
    refuses to be `vmap`ped, with a message that says what to do instead.
    """

    def train(key: jax.Array, hyperparameters: dict[str, Any] | None = None):
        """Train from `key`: `(final state, metrics)`, each metric stacked over the
        `config.num_updates` updates (`metrics.mean_episode_return` is the mean return of the
        episodes that ended in each). `hyperparameters` (optional) overrides the config's
        numeric fields with traced values, so `jax.vmap` can sweep them.

        `jax.jit(train)(key)` runs the whole training as one program; for JAX environments
        `jax.jit(jax.vmap(train))(keys)` trains one seed per key. The trained policy of a
        state acts by the algorithm's `act`; e.g. for PPO, ten greedy episodes:

            act = lambda p, obs, k: ppo.act(p, obs, k, config, train.venv)
            bellmax.deep.evaluate(act, ppo.policy_params(state), train.venv, key)

        and for the states of `jax.vmap(train)` (a leading seed axis), every seed at once:

            bellmax.deep.evaluate_batch(act, ppo.policy_params(states), train.venv,
                                        jax.random.split(key, num_seeds))

        (`bellmax.train.driver.train` does this, with checkpoints and a saved policy.)
        """
        check_prng_key(key, "train")
        if venv.is_host and is_vmapped(key):
            raise ValueError(
                f"{venv.env_id!r} steps on the host (Gymnasium) and cannot be vmapped over "
                "seeds; run the seeds one after another, or use a bellmax/gymnax env id."
            )
        cfg = with_hyperparameters(config, hyperparameters)
        state = init_fn(key, cfg, venv)
        return jax.lax.scan(
            lambda s, _: update_fn(s, cfg, venv), state, None, length=config.num_updates
        )

    train.venv = venv  # type: ignore[attr-defined]
    return train
