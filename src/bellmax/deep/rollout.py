"""The on-policy actor-critic pieces PPO, A2C and REINFORCE share: the training state and a
rollout of the current stochastic policy in auto-resetting vector environments.

A rollout keeps each step's observation, action, log-probability and value estimate with the
environment's reward, `terminated` and `truncated` flags and `final_obs` (the true last
observation of an episode cut by a time limit, for bootstrapping; Pardo et al. 2018), so every
learner computes its own targets (GAE, n-step returns, Monte Carlo returns) from one format.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.core.display import summary_repr
from bellmax.deep.distributions import clip_to_space
from bellmax.deep.networks import ActorCritic, flatten_obs
from bellmax.envs.vector import VecState, VectorEnv

__all__ = ["Rollout", "TrainState", "collect_rollout"]


@struct.dataclass
class TrainState:
    """Everything that changes during training: saving it is a full checkpoint."""

    __repr__ = summary_repr

    params: Any
    """Actor-critic parameters."""
    opt_state: Any
    """Optimiser state."""
    vec_state: VecState
    """The vector environment's state."""
    obs: jax.Array
    """`[num_envs, ...]` observations to act on next."""
    key: jax.Array
    """PRNG key for the next update."""
    update_index: jax.Array
    """Number of updates done so far."""


@struct.dataclass
class Rollout:
    """`[T, N]` transitions of one rollout."""

    __repr__ = summary_repr

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    episode_return: jax.Array


def collect_rollout(
    state: TrainState, config: Any, venv: VectorEnv, net: ActorCritic
) -> tuple[TrainState, Rollout]:
    """Step the environments `config.num_steps` times with the current stochastic policy.

    Args:
      state: the training state (its params, environment state, observations and key).
      config: any algorithm config with `num_steps`.
      venv: the vector environment (auto-resetting; `final_obs` kept for bootstrapping).
      net: the actor-critic network that `state.params` belong to.

    Returns:
      `(state, rollout)`: the state with the environments, observations and key advanced,
      and the `[num_steps, num_envs]` transitions (`episode_return` NaN except where an
      episode ended).
    """
    space = venv.observation_space

    def step(carry, _):
        vec_state, obs, key = carry
        key, k_act, k_env = jax.random.split(key, 3)
        dist, value = net.apply(state.params, flatten_obs(obs, space))
        action = dist.sample(k_act)
        out = venv.step(k_env, vec_state, clip_to_space(action, venv.action_space))
        tr = Rollout(
            obs=obs,
            action=action,
            log_prob=dist.log_prob(action),
            value=value,
            reward=out.reward,
            terminated=out.terminated,
            truncated=out.truncated,
            final_obs=out.final_obs,
            episode_return=jnp.where(out.done, out.episode_return, jnp.nan),
        )
        return (out.state, out.obs, key), tr

    (vec_state, obs, key), rollout = jax.lax.scan(
        step, (state.vec_state, state.obs, state.key), None, length=config.num_steps
    )
    return state.replace(vec_state=vec_state, obs=obs, key=key), rollout
