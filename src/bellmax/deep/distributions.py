"""Action distributions for policy-gradient methods: categorical and diagonal Gaussian.

Both are pytrees (`flax.struct` dataclasses), so a network can return one and `jit`/`vmap`
pass it through. Each has `sample(key)`, `mode()`, `log_prob(action)` and `entropy()`, batched
over any leading axes. A Gaussian policy's samples are unbounded; `clip_to_space` clips
them to a `Box` before they reach the environment, while the learner keeps the unclipped
sample for `log_prob` (Huang et al. 2022, "The 37 implementation details of PPO", continuous
detail 5; Sutton & Barto 2018, section 13.7).

`action_space_kind` checks an environment's action space once, with the error message every
deep algorithm uses.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.display import summary_repr
from bellmax.envs import spaces

_LOG_2PI = math.log(2.0 * math.pi)


@struct.dataclass
class Categorical:
    """A categorical distribution over `n` actions given unnormalised `logits [..., n]`."""

    __repr__ = summary_repr

    logits: jax.Array

    def log_probs(self) -> jax.Array:
        """`[..., n]` normalised log-probabilities."""
        return jax.nn.log_softmax(self.logits, axis=-1)

    def sample(self, key: jax.Array) -> jax.Array:
        """`[...]` int32 actions drawn from the distribution."""
        return jax.random.categorical(key, self.logits, axis=-1).astype(jnp.int32)

    def mode(self) -> jax.Array:
        """`[...]` int32 most likely actions."""
        return jnp.argmax(self.logits, axis=-1).astype(jnp.int32)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """`[...]` log-probability of integer `action [...]`."""
        logp = self.log_probs()
        a = jnp.asarray(action, jnp.int32)[..., None]
        return jnp.take_along_axis(logp, a, axis=-1)[..., 0]

    def entropy(self) -> jax.Array:
        """`[...]` entropy in nats."""
        logp = self.log_probs()
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)


@struct.dataclass
class DiagGaussian:
    """A Gaussian with diagonal covariance: `mean [..., d]`, `log_std` broadcastable to it."""

    __repr__ = summary_repr

    mean: jax.Array
    log_std: jax.Array

    def sample(self, key: jax.Array) -> jax.Array:
        """`[..., d]` unbounded samples `mean + std * eps`."""
        std = jnp.exp(jnp.broadcast_to(self.log_std, self.mean.shape))
        return self.mean + std * jax.random.normal(key, self.mean.shape, self.mean.dtype)

    def mode(self) -> jax.Array:
        """`[..., d]` the mean."""
        return self.mean

    def log_prob(self, action: jax.Array) -> jax.Array:
        """`[...]` log-density of `action [..., d]` (summed over the action dimensions)."""
        log_std = jnp.broadcast_to(self.log_std, self.mean.shape)
        z = (action - self.mean) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)

    def entropy(self) -> jax.Array:
        """`[...]` differential entropy in nats (summed over the action dimensions)."""
        log_std = jnp.broadcast_to(self.log_std, self.mean.shape)
        return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


Distribution = Categorical | DiagGaussian


def action_space_kind(space: Any, *, algorithm: str, allow_box: bool = True) -> tuple[bool, int]:
    """Check an action space and return `(discrete, size)`.

    Args:
      space: the environment's (single) action space.
      algorithm: name used in the error message (`"PPO"`).
      allow_box: whether the algorithm supports continuous `Box` actions.

    Returns:
      `(True, n)` for `Discrete(n)`, `(False, d)` for a float `Box` with `d` elements.

    Raises:
      TypeError: any other space (or a `Box` when `allow_box` is false).
    """
    supported = "Discrete and Box" if allow_box else "Discrete"
    either = "Discrete or Box" if allow_box else "Discrete"
    if isinstance(space, spaces.Discrete):
        return True, int(space.n)
    if allow_box and isinstance(space, spaces.Box) and jnp.issubdtype(space.dtype, jnp.floating):
        return False, int(np.prod(space.shape, dtype=np.int64))
    raise TypeError(
        f"{algorithm} supports {supported} action spaces; got {space!r}. "
        f"Pick an environment whose action space is {either}"
        + ("" if allow_box else " (for continuous actions use PPO)")
        + "."
    )


def clip_to_space(action: jax.Array, space: Any) -> jax.Array:
    """Clip a batch of flat actions `[..., d]` to a `Box` and reshape to `[..., *space.shape]`.

    Discrete actions pass through unchanged. Infinite bounds do not clip.
    """
    if isinstance(space, spaces.Discrete):
        return action
    low = jnp.asarray(space.low, jnp.float32).reshape(-1)
    high = jnp.asarray(space.high, jnp.float32).reshape(-1)
    clipped = jnp.clip(action, low, high).astype(space.dtype)
    return clipped.reshape(action.shape[:-1] + tuple(space.shape))
