"""Shared pytrees: one transition and a batch of them laid out in time."""

from __future__ import annotations

import jax
from flax import struct

from bellmax.core.display import summary_repr


@struct.dataclass
class Transition:
    """One step of experience `(s_tm1, a_tm1, r_t, s_t)` with its end flags.

    Every field may carry leading batch or time axes; the names follow rlax's
    `_tm1`/`_t` convention. `terminated` means the episode ended in a true terminal
    state (no bootstrap); `truncated` means it was cut by a time limit (bootstrap from
    `obs_t`).
    """

    __repr__ = summary_repr

    obs_tm1: jax.Array
    """Observation before the action."""
    action_tm1: jax.Array
    """Action taken."""
    reward_t: jax.Array
    """Reward received for the step."""
    obs_t: jax.Array
    """Observation after the action (the true next observation, before any auto-reset)."""
    terminated_t: jax.Array
    """True where the episode reached a terminal state."""
    truncated_t: jax.Array
    """True where a time limit cut the episode."""

    @property
    def done_t(self) -> jax.Array:
        """True where the episode ended for any reason."""
        return self.terminated_t | self.truncated_t

    @property
    def discount_t(self) -> jax.Array:
        """1 where the value of `obs_t` should be bootstrapped, 0 at true terminals."""
        return 1.0 - self.terminated_t.astype(jax.numpy.float32)


@struct.dataclass
class Trajectory:
    """A rollout of `T` steps (time is the leading axis), as an algorithm collects it."""

    __repr__ = summary_repr

    obs: jax.Array
    """Observations `o_0 .. o_{T-1}`, shape `[T, ...]`."""
    action: jax.Array
    """Actions taken, `[T, ...]`."""
    reward: jax.Array
    """Rewards, `[T]`."""
    terminated: jax.Array
    """True terminal flags after each step, `[T]`."""
    truncated: jax.Array
    """Time-limit flags after each step, `[T]`."""
    next_obs: jax.Array
    """Observation after each step before any auto-reset, `[T, ...]`."""

    @property
    def length(self) -> int:
        """Number of steps `T`."""
        return self.reward.shape[0]

    def transitions(self) -> Transition:
        """The same data as a batch of `Transition`s."""
        return Transition(
            obs_tm1=self.obs,
            action_tm1=self.action,
            reward_t=self.reward,
            obs_t=self.next_obs,
            terminated_t=self.terminated,
            truncated_t=self.truncated,
        )
