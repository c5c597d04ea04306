"""REINFORCE with a learned baseline (Williams 1992; Sutton & Barto 2018, section 13.4).

The policy-gradient theorem's Monte-Carlo estimate: each update collects a rollout of
`num_envs x num_steps` steps with the current stochastic policy, computes the discounted
returns-to-go `G_t` of every step (they restart at every episode end inside the rollout),
and takes one gradient step on

    L = -mean(log pi(a_t | s_t) (G_t - b(s_t))) + vf_coef mean((b(s_t) - G_t)^2)
        - ent_coef mean(H[pi(s_t)])

with a learned state-value baseline `b` (a separate network) regressed on the same returns.
`normalize_advantages` standardises `G_t - b(s_t)` over the rollout (return normalisation).

Where a return cannot be completed inside the fixed-shape rollout, this is what happens:

- **Termination**: nothing after it; `G_t` is the exact Monte-Carlo return.
- **Time-limit truncation**: the episode would have gone on, so treating it as terminal would
  bias every return before it (Pardo et al. 2018, "Time limits in reinforcement learning").
  The return is completed by the baseline's value of the true last observation,
  `G = r + gamma b(final_obs)`.
- **The rollout's end** (the episode goes on into the next update): with
  `bootstrap_cut=True` (default) the return is completed by the baseline's value of the
  next observation, as at a truncation; its weight in `G_t` is `gamma^(T - t)`, so long
  rollouts (`num_steps` of a few hundred) keep almost every return pure Monte Carlo. With
  `bootstrap_cut=False` the steps after the last episode end of each environment's rollout
  are left out of both losses (no bootstrapping at the cut at all; the environments still
  carry on, so those episodes' later steps count in the next update).

This is A2C's update (`bellmax.deep.policy_gradient.pg_update`) with lambda = 1 returns over long
rollouts; the environments keep running across updates, so no steps are wasted.

    config = Config(total_timesteps=100_000)
    state, metrics = jax.jit(make_train(config, "CartPole-v1"))(jax.random.key(0))
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from bellmax.core.checks import check_bool
from bellmax.core.returns import lambda_returns
from bellmax.deep.loop import scan_train, vector_env
from bellmax.deep.policy_gradient import (
    Metrics,
    OnPolicyRun,
    act,
    check_config,
    init_state,
    network,
    pg_update,
    policy_params,
)
from bellmax.deep.rollout import Rollout, TrainState
from bellmax.envs.vector import VectorEnv

ALGORITHM = "REINFORCE"
OWNER = f"{ALGORITHM} Config"

__all__ = [
    "ALGORITHM",
    "Config",
    "Metrics",
    "TrainState",
    "act",
    "cut_mask",
    "init",
    "make_train",
    "monte_carlo_targets",
    "policy_params",
    "update",
]


@dataclasses.dataclass(frozen=True)
class Config(OnPolicyRun):
    """REINFORCE-with-baseline hyperparameters (defaults: tuned for bellmax CartPole-v1)."""

    algorithm: ClassVar[str] = ALGORITHM

    num_steps: int = 256
    """Steps per environment in each rollout (long: returns are Monte Carlo within it)."""
    learning_rate: float = 6e-3
    gamma: float = 0.99
    bootstrap_cut: bool = True
    """Complete returns cut by the rollout's end with the baseline (False: leave them out)."""
    normalize_advantages: bool = True
    """Standardise G_t - b(s_t) to mean 0, std 1 over each rollout."""
    vf_coef: float = 0.5
    """Weight of the baseline's loss (mean squared error to the returns)."""
    max_grad_norm: float = 5.0
    """Clip gradients to this global norm (loose: a tight clip lets the baseline starve the policy)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the policy and of the baseline."""

    def __post_init__(self) -> None:
        check_config(self, OWNER)
        check_bool(self.bootstrap_cut, "bootstrap_cut", owner=OWNER)


def init(key: jax.Array, config: Config, venv: VectorEnv) -> TrainState:
    """A fresh training state: policy and baseline, optimiser and reset environments.

    Args:
      key: PRNG key.
      config: hyperparameters.
      venv: the vector environment (its `num_envs` must equal `config.num_envs`).

    Returns:
      The initial `TrainState`.
    """
    config.validate(venv)
    return init_state(key, config, venv, network(config, venv, algorithm=ALGORITHM))


def cut_mask(terminated: jax.Array, truncated: jax.Array) -> jax.Array:
    """`[T, N]` true where step `t`'s episode ends inside the rollout (at `t` or later).

    The false steps are those after each environment's last episode end: their
    Monte-Carlo returns are cut by the rollout's end.

    Args:
      terminated: `[T, N]` bool terminal flags.
      truncated: `[T, N]` bool time-limit flags.

    Returns:
      `[T, N]` bool.
    """
    done = (jnp.asarray(terminated, bool) | jnp.asarray(truncated, bool)).astype(jnp.int32)
    return jnp.flip(jnp.cumsum(jnp.flip(done, 0), axis=0), 0) > 0


def monte_carlo_targets(
    rollout: Rollout, next_values: jax.Array, *, gamma: float, bootstrap_cut: bool
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Returns-to-go, advantages over the baseline and weights of a rollout's steps.

    Args:
      rollout: `[T, N]` transitions (`reward`, `terminated`, `truncated`, `value` = b(s_t)).
      next_values: `[T, N]` baseline values `b(final_obs_t)`, used only where an episode was
        truncated or (with `bootstrap_cut`) cut by the rollout's end.
      gamma: discount factor.
      bootstrap_cut: complete the returns cut by the rollout's end with `next_values[T-1]`;
        otherwise give those steps weight 0 (see `cut_mask`).

    Returns:
      `(advantage G_t - b(s_t), target G_t, weight)`, each `[T, N]`.
    """
    returns = lambda_returns(
        rollout.reward,
        next_values,
        rollout.terminated,
        rollout.truncated,
        gamma=gamma,
        lambda_=1.0,
    )
    if bootstrap_cut:
        weight = jnp.ones_like(returns)
    else:
        weight = cut_mask(rollout.terminated, rollout.truncated).astype(jnp.float32)
    return returns - rollout.value, returns, weight


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One REINFORCE iteration: a rollout, its returns-to-go, one gradient step.

    Args:
      state: the training state.
      config: hyperparameters.
      venv: the vector environment.

    Returns:
      `(new_state, metrics)`; pure and jittable.
    """

    targets = functools.partial(
        monte_carlo_targets, gamma=config.gamma, bootstrap_cut=config.bootstrap_cut
    )
    return pg_update(state, config, venv, network(config, venv, algorithm=ALGORITHM), targets)


def make_train(config: Config, env: Any, env_params: Any = None):
    """Build `train(key) -> (TrainState, Metrics [num_updates])` for an environment.

    Args:
      config: hyperparameters (validated here).
      env: an env id (bellmax, or a Gymnasium id such as `"gymnasium:CartPole-v1"`), an
        `Environment`, a gymnax-API environment or a `VectorEnv` with `config.num_envs` envs.
      env_params: parameters for an environment object.

    Returns:
      A pure function of a PRNG key; `jax.jit(train)` runs the whole training, and for JAX
      environments `jax.jit(jax.vmap(train))(keys)` trains one seed per key.
    """
    if not isinstance(config, Config):
        raise TypeError(
            f"config must be a reinforce.Config, got {type(config).__module__}.{type(config).__qualname__}."
        )
    return scan_train(config, vector_env(config, env, env_params), init, update)
