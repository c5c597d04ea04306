"""The k-armed Gaussian bandit testbed (Sutton & Barto, section 2.3).

Each episode is one bandit problem: `reset` draws the true action values
`q*(a) ~ N(mean_offset, arm_mean_std^2)` for the `k` arms into the state, and every
`step(a)` pays a reward `R ~ N(q*(a), reward_std^2)`. The testbed's "2000 runs of 1000 steps"
is `jax.vmap` over 2000 reset keys of a `jax.lax.scan` of 1000 steps.

Variants, all through `BanditParams` (so they can be vmapped like any other constant):

- the gradient-bandit figure (section 2.8, Figure 2.5): `mean_offset=4.0`;
- the nonstationary testbed of Exercise 2.5: `walk_std > 0` makes every `q*(a)` take an
  independent Gaussian random-walk step of standard deviation `walk_std` after each pull
  (the exercise uses `arm_mean_std=0.0` so all arms start equal, `walk_std=0.01` and
  `max_steps_in_episode=10_000`).

Observation: a constant `zeros(1)` float32 vector. A bandit has no state the agent can
see; the constant keeps the gymnax/Gymnasium interface (a `Box` observation) without
leaking anything, and the step count is already in `state.time`. The episode never
terminates; it is truncated after `max_steps_in_episode` pulls.

`info` carries what the testbed runner needs for the book's two curves:
`optimal_action` (argmax of `q*` before the pull), `is_optimal` (the pulled arm's `q*` equals
the largest, so ties count as optimal) and `regret` (`max q* - q*(a)`, at least 0).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.core.checks import check_int
from bellmax.envs import spaces
from bellmax.envs._checks import bounded, episode_limit, finite, nonnegative
from bellmax.envs.environment import Environment, EnvParams, EnvState


@struct.dataclass
class BanditParams(EnvParams):
    """Constants of the Gaussian testbed (Sutton & Barto 2.3; Exercise 2.5 for `walk_std`)."""

    mean_offset: float = bounded(0.0, finite("the mean of the true arm values"))
    """Mean of the distribution the true arm values are drawn from (+4 in Figure 2.5)."""
    arm_mean_std: float = bounded(1.0, nonnegative("a standard deviation"))
    """Standard deviation of the true arm values around `mean_offset` (0: all arms equal)."""
    reward_std: float = bounded(1.0, nonnegative("a standard deviation"))
    """Standard deviation of a reward around its arm's true value."""
    walk_std: float = bounded(0.0, nonnegative("a standard deviation"))
    """Random-walk step of every arm's true value per pull; 0 is the stationary testbed."""
    max_steps_in_episode: int = episode_limit(1000)
    """Pulls until truncation (the book's runs are 1000 steps)."""


@struct.dataclass
class BanditState(EnvState):
    """The true arm values `q_star[k]` of this run and the number of pulls so far."""

    q_star: jax.Array
    time: jax.Array


class GaussianBandit(Environment[BanditState, BanditParams]):
    """k-armed Gaussian bandit testbed (Sutton & Barto 2.3): arm values drawn per reset.

    Args:
      k: number of arms (static: it fixes the shapes, so it is a constructor argument and
        not an `EnvParams` field).

    Concrete `params` and actions are checked when `reset`/`step` is called outside a trace
    (an arm outside `0 .. k-1` or a bad parameter raises `ValueError`, a float arm
    `TypeError`); under `jit`/`vmap` an out-of-range arm is clipped to `0 .. k-1` by JAX's
    indexing and is not reported (`bellmax.envs.checked` reports it).
    """

    params_type = BanditParams
    env_id = "GaussianBandit-v0"

    def __init__(self, k: int = 10):
        self.k = check_int(k, "k (the number of arms)", owner="GaussianBandit", low=1)

    # Environments with the same k share compiled reset/step (self is a static jit argument).
    def __repr__(self) -> str:
        return f"GaussianBandit(k={self.k})"

    # ------------------------------------------------------------------ dynamics
    def reset_env(self, key: jax.Array, params: BanditParams) -> tuple[jax.Array, BanditState]:
        q_star = params.mean_offset + params.arm_mean_std * jax.random.normal(
            key, (self.k,), jnp.float32
        )
        state = BanditState(q_star=q_star.astype(jnp.float32), time=jnp.asarray(0, jnp.int32))
        return self.get_obs(state), state

    def step_env(self, key: jax.Array, state: BanditState, action: Any, params: BanditParams):
        a = jnp.asarray(action, jnp.int32)
        q_a = jnp.take(state.q_star, a, mode="clip")
        best = jnp.max(state.q_star)
        info = {
            "optimal_action": jnp.argmax(state.q_star).astype(jnp.int32),
            "is_optimal": q_a >= best,
            "regret": (best - q_a).astype(jnp.float32),
        }
        reward = (q_a + params.reward_std * jax.random.normal(key, (), jnp.float32)).astype(
            jnp.float32
        )

        # The k random-walk increments only for the nonstationary testbed: a normal draw costs
        # more than the rest of a testbed step, and the stationary one (walk_std = 0) needs none.
        # With params shared by a vmap (the testbed) this stays a branch, not a select.
        def walk(q: jax.Array) -> jax.Array:
            return q + params.walk_std * jax.random.normal(
                jax.random.fold_in(key, 1), q.shape, q.dtype
            )

        q_star = jax.lax.cond(jnp.any(params.walk_std != 0), walk, lambda q: q, state.q_star)
        state = BanditState(q_star=q_star.astype(jnp.float32), time=state.time + 1)
        return self.get_obs(state), state, reward, jnp.asarray(False), info

    def get_obs(self, state: BanditState) -> jax.Array:
        """The constant observation `zeros(1)` (a bandit has no visible state)."""
        return jnp.zeros((1,), jnp.float32)

    def action_space(self, params: BanditParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.k)

    def observation_space(self, params: BanditParams | None = None) -> spaces.Box:
        return spaces.Box(0.0, 0.0, (1,), jnp.float32)
