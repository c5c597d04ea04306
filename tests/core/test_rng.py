"""bellmax.core.rng.normal: jax.random.normal's numbers, bit for bit, however it is batched."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.rng import normal


def _same(a, b) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a, np.float32), np.asarray(b, np.float32))


@pytest.mark.parametrize("impl", ["threefry2x32", "philox2x32", "rbg"])
@pytest.mark.parametrize("shape", [(), (1,), (7,), (300, 10), (4, 3, 1)])
def test_the_draws_are_jax_random_normals(impl, shape):
    # Shows: the same uniform draws and the same erfinv as jax.random.normal, for each key
    # implementation and for scalars, vectors and arrays whose last axis is short.
    key = jax.random.key(3, impl=impl)
    _same(normal(key, shape), jax.random.normal(key, shape))
    _same(jax.jit(normal, static_argnums=1)(key, shape), jax.random.normal(key, shape))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_each_float_dtype(dtype):
    key = jax.random.key(5)
    _same(normal(key, (64, 2), dtype), jax.random.normal(key, (64, 2), dtype))


def test_under_vmap_nested_vmap_and_a_shared_key():
    # Shows: the batching rule (flattening the mapped axes) changes no number: one vmap over
    # keys, two nested ones under jit, and a key that is not mapped (the same draw for all).
    key = jax.random.key(7)
    keys = jax.random.split(key, 9)
    _same(
        jax.vmap(lambda k: normal(k, (10,)))(keys),
        jax.vmap(lambda k: jax.random.normal(k, (10,)))(keys),
    )
    grid = jax.random.split(key, (4, 5))
    _same(
        jax.jit(jax.vmap(jax.vmap(lambda k: normal(k, (2, 3)))))(grid),
        jax.vmap(jax.vmap(lambda k: jax.random.normal(k, (2, 3))))(grid),
    )
    xs = jnp.arange(4.0)
    _same(
        jax.vmap(lambda x: x + normal(key, (3,)))(xs),
        jax.vmap(lambda x: x + jax.random.normal(key, (3,)))(xs),
    )


def test_inside_a_gradient_and_a_scan():
    # The draws depend on the key only: a gradient through a function that draws is the
    # gradient with the draws held fixed, and a scan that draws each step matches.
    key = jax.random.key(2)
    z = jax.random.normal(key, (5,))
    g = jax.grad(lambda m: jnp.sum((m + normal(key, (5,))) ** 2))(0.5)
    assert float(g) == pytest.approx(float(jnp.sum(2 * (0.5 + z))), rel=1e-6)

    def steps(draw):
        def body(c, t):
            return c, draw(jax.random.fold_in(key, t), (20, 10))

        return jax.lax.scan(body, 0.0, jnp.arange(3))[1]

    _same(jax.jit(lambda: steps(normal))(), steps(jax.random.normal))


def test_empty_shapes_and_bad_dtypes():
    assert normal(jax.random.key(0), (0, 3)).shape == (0, 3)
    with pytest.raises(TypeError, match=r"real floating dtype.*float32"):
        normal(jax.random.key(0), (2,), jnp.int32)
