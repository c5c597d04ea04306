"""Jittable spaces in the gymnax style: `sample(key)` and `contains(x)`.

A `Box` may be built inside `jit` from traced bounds (an environment's `observation_space`
of traced params); `from_gymnax` turns gymnax's own spaces (or any object shaped like them)
into these, without importing gymnax.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class Space:
    """A set of valid actions or observations."""

    shape: tuple[int, ...] = ()
    dtype: Any = jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniformly random element."""
        raise NotImplementedError

    def contains(self, x: Any) -> jax.Array:
        """Whether `x` is an element (a jax bool, usable under jit)."""
        raise NotImplementedError


class Discrete(Space):
    """The integers `0 .. n-1`."""

    def __init__(self, n: int, *, dtype: Any = jnp.int32):
        if int(n) < 1:
            raise ValueError(f"Discrete(n) needs n >= 1, got n={n}.")
        self.n = int(n)
        self.shape = ()
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"Discrete({self.n})"

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x: Any) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != ():
            return jnp.asarray(False)
        return (x >= 0) & (x < self.n) & (jnp.floor(x) == x)


class Box(Space):
    """A box `low <= x <= high` of a given shape (bounds may be infinite)."""

    def __init__(
        self, low: Any, high: Any, shape: tuple[int, ...] | None = None, dtype: Any = jnp.float32
    ):
        if isinstance(low, jax.core.Tracer) or isinstance(high, jax.core.Tracer):
            # Bounds computed from traced params (inside jit): jax arrays, checked by nobody.
            low_j, high_j = jnp.asarray(low), jnp.asarray(high)
            if shape is None:
                shape = jnp.broadcast_shapes(low_j.shape, high_j.shape)
            self.shape = tuple(int(s) for s in shape)
            self.low = jnp.broadcast_to(low_j, self.shape).astype(dtype)
            self.high = jnp.broadcast_to(high_j, self.shape).astype(dtype)
            self.dtype = dtype
            return
        low_a, high_a = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if shape is None:
            shape = np.broadcast_shapes(low_a.shape, high_a.shape)
        self.shape = tuple(int(s) for s in shape)
        self.low = np.broadcast_to(low_a, self.shape).astype(np.dtype(dtype))
        self.high = np.broadcast_to(high_a, self.shape).astype(np.dtype(dtype))
        if np.any(self.low > self.high):
            raise ValueError(f"Box needs low <= high everywhere, got low={low} high={high}.")
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"Box(shape={self.shape}, dtype={np.dtype(self.dtype).name})"

    def sample(self, key: jax.Array) -> jax.Array:
        """A random element, as Gymnasium's `Box.sample` draws one: uniform where both
        bounds are finite, `low + Exp(1)` or `high - Exp(1)` where one is, `N(0, 1)` where
        neither is. (An integer box whose top is its dtype's largest value never draws
        that value.)"""
        if jnp.issubdtype(self.dtype, jnp.integer):
            top = np.iinfo(np.dtype(self.dtype)).max
            high = self.high if isinstance(self.high, jax.Array) else np.asarray(self.high)
            stop = jnp.where(high < top, high + 1, high)  # high + 1 would wrap around
            return jax.random.randint(key, self.shape, self.low, stop, dtype=self.dtype)
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        lo_ok, hi_ok = jnp.isfinite(low), jnp.isfinite(high)
        x = jax.random.uniform(
            key, self.shape, self.dtype, jnp.where(lo_ok, low, -1.0), jnp.where(hi_ok, high, 1.0)
        )
        if not isinstance(self.low, jax.Array) and not isinstance(self.high, jax.Array):
            with np.errstate(over="ignore"):
                width = np.asarray(self.high) - np.asarray(self.low)  # in the box's dtype
            if np.isfinite(width).all():
                return x  # a bounded box (every action space): one draw, no other
        # Finite bounds whose width overflows (CartPole's observations: +-float32 max).
        t = jax.random.uniform(jax.random.fold_in(key, 1), self.shape, self.dtype)
        wide = jnp.clip((1 - t) * low + t * high, low, high)
        x = jnp.where(lo_ok & hi_ok & ~jnp.isfinite(high - low), wide, x)
        e = jax.random.exponential(jax.random.fold_in(key, 2), self.shape, self.dtype)
        x = jnp.where(lo_ok & ~hi_ok, low + e, x)
        x = jnp.where(~lo_ok & hi_ok, high - e, x)
        z = jax.random.normal(jax.random.fold_in(key, 3), self.shape, self.dtype)
        return jnp.where(~lo_ok & ~hi_ok, z, x)

    def contains(self, x: Any) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= self.low) & (x <= self.high))


class MultiDiscrete(Space):
    """A vector of integers, entry `i` in `0 .. nvec[i]-1`."""

    def __init__(self, nvec: Any, *, dtype: Any = jnp.int32):
        self.nvec = np.asarray(nvec, dtype=np.int64)
        if self.nvec.ndim != 1 or np.any(self.nvec < 1):
            raise ValueError(f"MultiDiscrete needs a 1-D vector of positive sizes, got {nvec!r}.")
        self.shape = self.nvec.shape
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"MultiDiscrete({self.nvec.tolist()})"

    def sample(self, key: jax.Array) -> jax.Array:
        u = jax.random.uniform(key, self.shape, jnp.float32)
        return jnp.floor(u * self.nvec).astype(self.dtype)

    def contains(self, x: Any) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= 0) & (x < self.nvec))


def from_gymnax(space: Any) -> Space:
    """The bellmax space equal to a gymnax space (`gymnax.environments.spaces`).

    Duck-typed, so gymnax is not imported: an object whose class is named `Discrete` (with
    `n`), `Box` (with `low`, `high`, `shape`, `dtype`) or `MultiDiscrete` (with `nvec`).
    bellmax spaces are returned as they are. Bounds may be traced (inside `jit`).

    Args:
      space: a gymnax `Discrete` or `Box`, or a bellmax space.

    Returns:
      A bellmax `Discrete`, `Box` or `MultiDiscrete`.

    Raises:
      TypeError: any other space (gymnax's `Dict` and `Tuple` have no bellmax equivalent).
    """
    if isinstance(space, Space):
        return space
    kind = type(space).__name__
    if kind == "Discrete" and hasattr(space, "n"):
        return Discrete(int(space.n), dtype=getattr(space, "dtype", jnp.int32))
    if kind == "Box" and all(hasattr(space, a) for a in ("low", "high", "shape")):
        shape = space.shape if isinstance(space.shape, tuple) else tuple(space.shape)
        return Box(space.low, space.high, shape, getattr(space, "dtype", jnp.float32))
    if kind == "MultiDiscrete" and hasattr(space, "nvec"):
        return MultiDiscrete(space.nvec, dtype=getattr(space, "dtype", jnp.int32))
    raise TypeError(
        f"no bellmax space equals {space!r} ({type(space).__module__}.{kind}); bellmax "
        "learners take Discrete, Box and MultiDiscrete spaces (flatten Dict/Tuple spaces with "
        "a wrapper first)."
    )
