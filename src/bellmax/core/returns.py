"""Discounted returns, lambda-returns and generalised advantage estimation over `[T, N]`.

All functions take time-major arrays (`[T]` or `[T, N, ...]`; the math is elementwise over
everything after the time axis) of a rollout collected from auto-resetting vector
environments, and handle episode ends the same way:

- `terminated[t]`: step `t` reached a terminal state. Nothing is bootstrapped after it.
- `truncated[t]` (and not terminated): a time limit cut the episode. The return is
  bootstrapped from `next_values[t]`, the value of the true last observation (`final_obs`).
- Neither: the episode goes on; the recursion continues with step `t + 1`.
- The last step `T - 1` always bootstraps from `next_values[T - 1]` (unless terminated),
  because the rollout ends there.

`next_values[t]` is the value of the observation that followed step `t` (for auto-reset
vector envs: `V(final_obs[t])`), so it need not be shifted `values`.

Every function is pure `jnp`, jittable and `vmap`pable (Sutton & Barto 2018, sections 3.3,
12.1; Schulman et al. 2016, "High-dimensional continuous control using generalized advantage
estimation", eq. 16).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.core.display import summary_repr


@struct.dataclass
class Advantages:
    """The result of `gae`."""

    __repr__ = summary_repr

    advantages: jax.Array
    """`[T, N]` generalised advantage estimates `A_t`."""
    returns: jax.Array
    """`[T, N]` value targets `A_t + V(s_t)` (the lambda-returns of the same values)."""


def _check(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    if not (low <= float(value) <= high):
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}; pass a value in range.")


def _shapes(rewards: jax.Array, **others: jax.Array) -> None:
    for name, x in others.items():
        if jnp.shape(x) != jnp.shape(rewards):
            raise ValueError(
                f"{name} has shape {jnp.shape(x)} but rewards has shape {jnp.shape(rewards)}; "
                "pass time-major arrays of the same shape [T, ...]."
            )
    if jnp.ndim(rewards) < 1 or jnp.shape(rewards)[0] < 1:
        raise ValueError(f"rewards needs a leading time axis of length >= 1, got {rewards.shape}.")


def lambda_returns(
    rewards: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    *,
    gamma: float,
    lambda_: float = 1.0,
) -> jax.Array:
    """Lambda-returns `G^lambda_t` of a rollout (Sutton & Barto 2018, section 12.1).

    `G_t = r_t + gamma (1 - term_t) [(1 - lambda) v'_t + lambda G_{t+1}]` inside an episode,
    and `G_t = r_t + gamma (1 - term_t) v'_t` where the episode ended (truncated) or the
    rollout ends. `lambda_ = 1` gives the discounted Monte-Carlo returns (bootstrapped only at
    truncations and at the rollout's end), `lambda_ = 0` the one-step TD targets.

    Args:
      rewards: `[T, ...]` rewards `r_t`.
      next_values: `[T, ...]` value of the observation after step `t` (`V(final_obs_t)`).
      terminated: `[T, ...]` bool, episode reached a terminal state at step `t`.
      truncated: `[T, ...]` bool, episode was cut by a time limit at step `t`.
      gamma: discount factor in [0, 1].
      lambda_: trace parameter in [0, 1].

    Returns:
      `[T, ...]` float32 lambda-returns.
    """
    _check("gamma", gamma, 0.0, 1.0)
    _check("lambda_", lambda_, 0.0, 1.0)
    _shapes(rewards, next_values=next_values, terminated=terminated, truncated=truncated)
    rewards = jnp.asarray(rewards, jnp.float32)
    next_values = jnp.asarray(next_values, jnp.float32)
    not_term = 1.0 - jnp.asarray(terminated, jnp.float32)
    # Where an episode ended (or the rollout ends) the tail is the bootstrap value alone.
    cont = 1.0 - (jnp.asarray(terminated, bool) | jnp.asarray(truncated, bool)).astype(jnp.float32)
    cont = cont.at[-1].set(0.0)

    def backward(g_tp1, xs):
        r_t, v_t, nt_t, c_t = xs
        tail = (1.0 - lambda_ * c_t) * v_t + lambda_ * c_t * g_tp1
        g_t = r_t + gamma * nt_t * tail
        return g_t, g_t

    _, g = jax.lax.scan(
        backward, jnp.zeros_like(rewards[0]), (rewards, next_values, not_term, cont), reverse=True
    )
    return g


def discounted_returns(
    rewards: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    *,
    gamma: float,
    next_values: jax.Array | None = None,
) -> jax.Array:
    """Discounted returns `G_t = r_t + gamma G_{t+1}` within episodes (S&B 2018, section 3.3).

    Args:
      rewards: `[T, ...]` rewards.
      terminated: `[T, ...]` bool terminal flags (no bootstrap).
      truncated: `[T, ...]` bool time-limit flags (bootstrap from `next_values`).
      gamma: discount factor in [0, 1].
      next_values: `[T, ...]` bootstrap values after each step; `None` means zeros (pure
        Monte-Carlo returns that treat truncations and the rollout's end as terminal).

    Returns:
      `[T, ...]` float32 returns.
    """
    if next_values is None:
        next_values = jnp.zeros(jnp.shape(rewards), jnp.float32)
    return lambda_returns(rewards, next_values, terminated, truncated, gamma=gamma, lambda_=1.0)


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    *,
    gamma: float,
    gae_lambda: float,
) -> Advantages:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16).

    `delta_t = r_t + gamma (1 - term_t) v'_t - V(s_t)` and
    `A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}` with `done_t = term_t | trunc_t`;
    the last step of the rollout has no successor (`A_T = 0`).

    Args:
      rewards: `[T, ...]` rewards.
      values: `[T, ...]` `V(s_t)` of the observations acted on.
      next_values: `[T, ...]` value of the observation after each step (`V(final_obs_t)`).
      terminated: `[T, ...]` bool terminal flags.
      truncated: `[T, ...]` bool time-limit flags.
      gamma: discount factor in [0, 1].
      gae_lambda: GAE's lambda in [0, 1].

    Returns:
      `Advantages(advantages, returns)`, both `[T, ...]` float32, `returns = advantages + values`.
    """
    _check("gamma", gamma, 0.0, 1.0)
    _check("gae_lambda", gae_lambda, 0.0, 1.0)
    _shapes(
        rewards,
        values=values,
        next_values=next_values,
        terminated=terminated,
        truncated=truncated,
    )
    rewards = jnp.asarray(rewards, jnp.float32)
    values = jnp.asarray(values, jnp.float32)
    next_values = jnp.asarray(next_values, jnp.float32)
    term = jnp.asarray(terminated, bool)
    done = term | jnp.asarray(truncated, bool)
    delta = rewards + gamma * (1.0 - term.astype(jnp.float32)) * next_values - values
    cont = 1.0 - done.astype(jnp.float32)

    def backward(a_tp1, xs):
        d_t, c_t = xs
        a_t = d_t + gamma * gae_lambda * c_t * a_tp1
        return a_t, a_t

    _, adv = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, cont), reverse=True)
    return Advantages(advantages=adv, returns=adv + values)
