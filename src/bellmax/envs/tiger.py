"""The tiger problem (Kaelbling, Littman & Cassandra 1998, section 3.4) as a sampled environment.

A tiger hides behind the left or the right door, each with probability 1/2. Listening costs
1 (`listen_reward`) and reports the tiger's side correctly with probability `accuracy`
(0.85); opening the tiger's door costs 100 (`tiger_reward`), the other door pays 10
(`treasure_reward`), and either opening hides the tiger again, uniformly at random: the
problem goes on (as Cassandra's `tiger.95.POMDP` writes it), so an episode never
terminates; it is truncated after `max_steps_in_episode` steps.

Actions (the file's order): 0 listen, 1 open-left, 2 open-right. Observations (int32,
`Discrete(3)`): 0 tiger heard left, 1 tiger heard right, as in the file (after opening a
door they are uniform, carrying no information); 2 is "nothing heard yet", the observation
of `reset` only. State: the tiger's side (0 left, 1 right), never observed.

The same problem as an exact `TabularPOMDP` is `bellmax.pomdp.problems.tiger` (its `accuracy`
and `gamma` are this environment's defaults); `gamma` is kept here for discounted returns.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.envs import spaces
from bellmax.envs._checks import between, bounded, discount, episode_limit, finite
from bellmax.envs.environment import Environment, EnvParams, EnvState

__all__ = [
    "HEARD_LEFT",
    "HEARD_RIGHT",
    "LISTEN",
    "NOTHING_HEARD",
    "OPEN_LEFT",
    "OPEN_RIGHT",
    "Tiger",
    "TigerParams",
    "TigerState",
]

#: Actions.
LISTEN, OPEN_LEFT, OPEN_RIGHT = 0, 1, 2
#: Observations.
HEARD_LEFT, HEARD_RIGHT, NOTHING_HEARD = 0, 1, 2


@struct.dataclass
class TigerState(EnvState):
    """The tiger's side (0 left, 1 right) and the step count."""

    tiger: jax.Array
    time: jax.Array


@struct.dataclass
class TigerParams(EnvParams):
    """The listening accuracy, the three rewards, the discount and the episode limit."""

    accuracy: float = bounded(0.85, between(0.0, 1.0, meaning="a probability; 0.85 in the paper"))
    """Probability that listening reports the tiger's side correctly."""
    listen_reward: float = bounded(-1.0, finite("the reward of listening"))
    """Reward of listening."""
    tiger_reward: float = bounded(-100.0, finite("the reward of opening the tiger's door"))
    """Reward of opening the tiger's door."""
    treasure_reward: float = bounded(10.0, finite("the reward of opening the other door"))
    """Reward of opening the other door."""
    gamma: float = bounded(0.95, discount("the discount of the POMDP"))
    """Discount of the POMDP (for discounted returns; the environment does not use it)."""
    max_steps_in_episode: int = episode_limit(100)
    """Steps until truncation (the problem itself never ends)."""


class Tiger(Environment[TigerState, TigerParams]):
    """The tiger problem: listen (0), open the left (1) or the right door (2).

    Outside `jit` an action other than 0, 1 or 2 raises; inside `jit` it is not checked and
    every action other than 0 and 1 opens the right door.
    """

    params_type = TigerParams
    env_id = "Tiger-v0"

    def reset_env(self, key: jax.Array, params: TigerParams) -> tuple[jax.Array, TigerState]:
        tiger = jax.random.bernoulli(key).astype(jnp.int32)
        state = TigerState(tiger=tiger, time=jnp.asarray(0, jnp.int32))
        return jnp.asarray(NOTHING_HEARD, jnp.int32), state

    def step_env(self, key: jax.Array, state: TigerState, action: Any, params: TigerParams):
        a = jnp.asarray(action, jnp.int32)
        k_hear, k_hide, k_obs = jax.random.split(key, 3)
        listen = a == LISTEN
        opened = jnp.where(a == OPEN_LEFT, 0, 1)  # the side of the opened door
        reward = jnp.where(
            listen,
            params.listen_reward,
            jnp.where(opened == state.tiger, params.tiger_reward, params.treasure_reward),
        ).astype(jnp.float32)
        tiger = jnp.where(listen, state.tiger, jax.random.bernoulli(k_hide).astype(jnp.int32))
        correct = jax.random.bernoulli(k_hear, jnp.asarray(params.accuracy, jnp.float32))
        heard = jnp.where(correct, tiger, 1 - tiger)
        obs = jnp.where(listen, heard, jax.random.bernoulli(k_obs).astype(jnp.int32))
        state = TigerState(tiger=tiger, time=state.time + 1)
        return obs.astype(jnp.int32), state, reward, jnp.asarray(False), {}

    def action_space(self, params: TigerParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(3)

    def observation_space(self, params: TigerParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(3)
