"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016), the whole loop in one `jit`.

One `update` collects `num_steps` steps from `num_envs` auto-resetting environments with the
current stochastic policy, computes n-step returns (`gae_lambda = 1`, Mnih et al. 2016,
algorithm S3) or generalised advantages (`gae_lambda < 1`, Schulman et al. 2016), both
bootstrapped from the critic at the end of the rollout and from the true last observation
(`final_obs`) where a time limit cut an episode, and takes ONE gradient step on

    L = -mean(log pi(a_t | s_t) A_t) + vf_coef mean((V(s_t) - G_t)^2) - ent_coef mean(H[pi(s_t)])

(Sutton & Barto 2018, section 13.5, "one-step actor-critic" generalised to n steps and many
environments). Actor and critic are separate networks or share a torso (`shared_torso`);
Discrete actions use a categorical policy, Box actions a Gaussian with a state-independent
log-std whose samples are clipped to the box only in the environment. Mnih et al. used
RMSprop; `optimizer` takes the names `bellmax.deep.optim.make_optimizer` knows (Adam, SGD
with momentum), and the learning rate is annealed linearly to 0 by default, which keeps
A2C's late policy from collapsing on CartPole.

    config = Config(total_timesteps=100_000)
    state, metrics = jax.jit(make_train(config, "CartPole-v1"))(jax.random.key(0))
    jax.jit(jax.vmap(make_train(config, "CartPole-v1")))(jax.random.split(key, 8))  # 8 seeds

The update is `bellmax.deep.policy_gradient.pg_update` with GAE targets;
`bellmax.deep.reinforce` is the same update with Monte-Carlo returns.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from bellmax.core.checks import check_bool, check_probability
from bellmax.deep.loop import check_fields, scan_train, vector_env
from bellmax.deep.policy_gradient import (
    Metrics,
    OnPolicyRun,
    act,
    check_config,
    gae_targets,
    init_state,
    network,
    optimizer,
    pg_loss,
    pg_update,
    policy_params,
    validate_pg_config,
)
from bellmax.deep.rollout import Rollout, TrainState
from bellmax.envs.vector import VectorEnv

ALGORITHM = "A2C"
OWNER = f"{ALGORITHM} Config"

__all__ = [
    "ALGORITHM",
    "Config",
    "Metrics",
    "TrainState",
    "act",
    "init",
    "init_state",
    "make_train",
    "network",
    "optimizer",
    "pg_loss",
    "pg_update",
    "policy_params",
    "update",
    "validate_pg_config",
]


@dataclasses.dataclass(frozen=True)
class Config(OnPolicyRun):
    """A2C hyperparameters (defaults: tuned for bellmax CartPole-v1)."""

    algorithm: ClassVar[str] = ALGORITHM
    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (*OnPolicyRun.HYPERPARAMETERS, "gae_lambda")

    total_timesteps: int = 150_000
    num_envs: int = 16
    num_steps: int = 16
    """Steps per environment in each rollout (the n of the n-step returns)."""
    gae_lambda: float = 1.0
    """GAE's lambda; 1.0 gives Mnih et al.'s n-step returns."""
    shared_torso: bool = False
    """Share one torso between actor and critic (separate by default)."""

    def __post_init__(self) -> None:
        check_config(self, OWNER)
        check_fields(self, ("gae_lambda",), check_probability, owner=OWNER)
        check_bool(self.shared_torso, "shared_torso", owner=OWNER)


def init(key: jax.Array, config: Config, venv: VectorEnv) -> TrainState:
    """A fresh training state: network, optimiser and reset environments.

    Args:
      key: PRNG key.
      config: hyperparameters.
      venv: the vector environment (its `num_envs` must equal `config.num_envs`).

    Returns:
      The initial `TrainState`.
    """
    config.validate(venv)
    return init_state(key, config, venv, network(config, venv, algorithm=ALGORITHM))


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One A2C iteration: a rollout, n-step returns or GAE, one gradient step.

    Args:
      state: the training state.
      config: hyperparameters.
      venv: the vector environment.

    Returns:
      `(new_state, metrics)`; pure and jittable.
    """

    def targets(ro: Rollout, next_values: jax.Array):
        adv = gae_targets(ro, next_values, config)
        return adv.advantages, adv.returns, jnp.ones_like(ro.reward)

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
            f"config must be an a2c.Config, got {type(config).__module__}.{type(config).__qualname__}."
        )
    return scan_train(config, vector_env(config, env, env_params), init, update)
