"""A uniform experience-replay buffer as one pytree (Lin 1992; Mnih et al. 2015, "Methods").

The buffer holds any pytree of transitions (for DQN a `bellmax.core.types.Transition`) in
fixed-size arrays with a leading `[capacity]` axis, a write position and a fill count. It is
a ring: once full, new transitions overwrite the oldest. Every function is pure and jittable,
and a buffer `vmap`s over seeds like any other pytree.

    buffer = replay_init(example_transition, capacity=100_000)
    buffer = replay_add(buffer, batch_of_n_transitions)      # leaves [N, ...]
    batch = replay_sample(buffer, key, batch_size=64)         # leaves [64, ...]

`replay_sample_after_add(buffer, batch, key, n)` draws what sampling right after `replay_add`
draws, reading the buffer before the add (so that XLA can then write it in place).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.core.checks import check_int
from bellmax.core.display import summary_repr
from bellmax.core.types import Transition
from bellmax.deep.loop import nonfinite_steps


@struct.dataclass
class ReplayBuffer:
    """A ring buffer of transitions; `data`'s leaves have a leading `[capacity]` axis."""

    __repr__ = summary_repr

    data: Any
    """The stored transitions: a pytree whose leaves are `[capacity, ...]` arrays."""
    position: jax.Array
    """int32 scalar: the slot the next transition is written to."""
    size: jax.Array
    """int32 scalar: how many slots hold transitions (`<= capacity`)."""

    @property
    def capacity(self) -> int:
        """Number of slots (static, from the arrays' shapes; seed axes of a stacked buffer skipped)."""
        return int(jax.tree.leaves(self.data)[0].shape[jnp.ndim(self.size)])


def replay_init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer with room for `capacity` transitions shaped like `example`.

    Args:
      example: one transition (a pytree of arrays without a batch axis); only its leaves'
        shapes and dtypes are used.
      capacity: number of slots.

    Returns:
      A `ReplayBuffer` with zero-filled storage, `position = size = 0`.
    """
    capacity = check_int(capacity, "capacity", low=1)
    leaves = jax.tree.leaves(example)
    if not leaves:
        raise ValueError(
            "example has no array leaves; pass one transition, e.g. a Transition of arrays."
        )
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    zero = jnp.zeros((), jnp.int32)
    return ReplayBuffer(data=data, position=zero, size=zero)


def replay_add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Write `N` transitions at the write position, wrapping around (oldest overwritten).

    Args:
      buffer: the buffer.
      batch: a pytree with the buffer's structure whose leaves have a leading `[N]` axis,
        `1 <= N <= capacity`.

    Returns:
      The new buffer: slots `position .. position + N - 1 (mod capacity)` hold `batch`.
    """
    _check_batch(buffer, batch)
    return _add(buffer, batch)


def _check_batch(buffer: ReplayBuffer, batch: Any) -> None:
    """`batch` fits `buffer`: its structure, one leading `[N]` axis with `1 <= N <= capacity`,
    and the stored shapes behind it."""
    if jax.tree.structure(batch) != jax.tree.structure(buffer.data):
        raise ValueError(
            f"batch has structure {jax.tree.structure(batch)} but the buffer stores "
            f"{jax.tree.structure(buffer.data)}; add transitions of the same type."
        )
    capacity = jax.tree.leaves(buffer.data)[0].shape[0]
    sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(batch)}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(
            "every leaf of batch needs the same leading batch axis [N, ...]; got leading "
            f"sizes {sorted(s for s in sizes if s is not None)}{' and scalars' * (None in sizes)}."
        )
    (n,) = sizes
    # the shapes first: one transition passed without its [1, ...] axis reads as a batch
    for stored, new in zip(jax.tree.leaves(buffer.data), jax.tree.leaves(batch), strict=True):
        if tuple(stored.shape[1:]) != tuple(jnp.shape(new)[1:]):
            raise ValueError(
                f"a batch leaf of shape {jnp.shape(new)} does not match stored transitions "
                f"of shape {tuple(stored.shape[1:])}; add [N, {', '.join(map(str, stored.shape[1:]))}]."
            )
    if n < 1 or n > capacity:
        raise ValueError(
            f"a batch of {n} transitions does not fit a buffer of capacity {capacity}; "
            "add at most `capacity` transitions at a time (or make the buffer larger)."
        )


@jax.jit
def _add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    capacity = jax.tree.leaves(buffer.data)[0].shape[0]
    n = jax.tree.leaves(batch)[0].shape[0]
    idx = (buffer.position + jnp.arange(n, dtype=jnp.int32)) % capacity
    data = jax.tree.map(
        lambda stored, new: stored.at[idx].set(jnp.asarray(new, stored.dtype)),
        buffer.data,
        batch,
    )
    return ReplayBuffer(
        data=data,
        position=(buffer.position + n) % capacity,
        size=jnp.minimum(buffer.size + n, capacity).astype(jnp.int32),
    )


def replay_sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """Draw `batch_size` stored transitions uniformly, with replacement, from filled slots.

    Sampling an empty buffer returns slot 0 (zeros): callers wait until
    `size >= batch_size` (DQN's `learning_starts`).

    Args:
      buffer: the buffer.
      key: a PRNG key, consumed.
      batch_size: number of transitions to draw.

    Returns:
      A pytree like the stored transitions with leaves `[batch_size, ...]`.
    """
    return _sample(buffer, key, check_int(batch_size, "batch_size", low=1))


@jax.jit(static_argnums=2)
def _sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1), jnp.int32)
    return jax.tree.map(lambda x: x[idx], buffer.data)


def replay_sample_after_add(
    buffer: ReplayBuffer, batch: Any, key: jax.Array, batch_size: int
) -> Any:
    """`replay_sample(replay_add(buffer, batch), key, batch_size)`, read from `buffer` as it
    was before the add and from `batch`: the same slots drawn, the same values returned.

    Why: inside a `lax.scan`, sampling the buffer just written lets XLA fold the write into
    the gather (recomputing the written slots from the old buffer), and the old buffer must
    then outlive the in-place write: under `vmap` (seeds) XLA copied the whole buffer every
    update, a cost that grows with the capacity (SAC on Pendulum-v1, one vmapped seed,
    3000 updates: 1,250 updates/s of CPU time with 4,000 slots, 760 with 200,000). Reading
    the old buffer before the write needs no copy.

    Args:
      buffer: the buffer before the add.
      batch: the transitions added (leaves `[N, ...]`, checked as `replay_add` checks them).
      key: a PRNG key, consumed as `replay_sample` would.
      batch_size: number of transitions to draw.
    """
    _check_batch(buffer, batch)
    return _sample_after_add(buffer, batch, key, check_int(batch_size, "batch_size", low=1))


@jax.jit(static_argnums=3)
def _sample_after_add(buffer: ReplayBuffer, batch: Any, key: jax.Array, batch_size: int) -> Any:
    capacity = jax.tree.leaves(buffer.data)[0].shape[0]
    n = jax.tree.leaves(batch)[0].shape[0]
    size = jnp.minimum(buffer.size + n, capacity).astype(jnp.int32)
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(size, 1), jnp.int32)
    offset = (idx - buffer.position) % capacity  # < n: slot written by this add
    fresh = offset < n
    j = jnp.minimum(offset, n - 1)

    def pick(stored, new):
        new = jnp.asarray(new, stored.dtype)
        mask = fresh.reshape(fresh.shape + (1,) * (stored.ndim - 1))
        return jnp.where(mask, new[j], stored[idx])

    return jax.tree.map(pick, buffer.data, batch)


def check_replay_sizes(
    owner: str, batch_size: int, buffer_size: int, learning_starts: int, steps_per_update: int
) -> None:
    """Refuse replay sizes that cannot work together (checked ints), naming the fix.

    Raises:
      ValueError: a minibatch larger than the buffer; learning that starts before a
        minibatch's worth of transitions is stored; one update storing more than the buffer
        holds.
    """
    if batch_size > buffer_size:
        raise ValueError(
            f"{owner}.batch_size={batch_size} is larger than buffer_size={buffer_size}; lower "
            "batch_size or raise buffer_size."
        )
    if learning_starts < batch_size:
        raise ValueError(
            f"{owner}.learning_starts={learning_starts} is smaller than batch_size={batch_size}: "
            "the first minibatch would come from a buffer holding fewer transitions; set "
            f"learning_starts >= {batch_size}."
        )
    if steps_per_update > buffer_size:
        raise ValueError(
            f"{owner}: one update stores train_frequency * num_envs = {steps_per_update} "
            f"transitions, more than buffer_size={buffer_size}; lower train_frequency or "
            "num_envs, or raise buffer_size."
        )


@struct.dataclass
class Collect:
    """What an off-policy learner carries between env steps while it fills its buffer."""

    __repr__ = summary_repr

    vec_state: Any
    obs: jax.Array
    env_steps: jax.Array
    """Env steps taken (all envs)."""
    return_sum: jax.Array
    """Sum of the returns of the episodes finished so far in this update."""
    count: jax.Array
    """Episodes finished so far in this update."""
    nonfinite: jax.Array
    """Env steps so far in this update whose reward or next observation was not finite."""


def record_step(carry: Collect, step: Any, action: jax.Array, num_envs: int):
    """`(carry after the vector env's `step` taken with `action`, its `Transition`)`.

    The transition's next observation is the true one (`step.final_obs`, before an
    auto-reset); the carry continues from the reset observation and counts finished episodes.
    """
    transition = Transition(
        obs_tm1=carry.obs,
        action_tm1=action,
        reward_t=step.reward,
        obs_t=step.final_obs,
        terminated_t=step.terminated,
        truncated_t=step.truncated,
    )
    done = step.done
    new = Collect(
        vec_state=step.state,
        obs=step.obs,
        env_steps=carry.env_steps + num_envs,
        return_sum=carry.return_sum + jnp.sum(jnp.where(done, step.episode_return, 0.0)),
        count=carry.count + jnp.sum(done).astype(jnp.int32),
        nonfinite=carry.nonfinite + nonfinite_steps(step.reward, step.final_obs),
    )
    return new, transition
