"""Spaces: sampling stays inside, `contains` rejects outside, bad construction errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs.spaces import Box, Discrete, MultiDiscrete


def test_discrete():
    d = Discrete(3)
    xs = jax.vmap(d.sample)(jax.random.split(jax.random.PRNGKey(0), 200))
    assert set(np.asarray(xs).tolist()) == {0, 1, 2}
    assert bool(d.contains(2)) and not bool(d.contains(3)) and not bool(d.contains(-1))
    assert not bool(d.contains(1.5))
    with pytest.raises(ValueError, match="n >= 1"):
        Discrete(0)


def test_box_bounded_and_unbounded():
    b = Box(-1.0, 2.0, (3,))
    xs = jax.vmap(b.sample)(jax.random.split(jax.random.PRNGKey(0), 100))
    assert xs.shape == (100, 3) and float(xs.min()) >= -1 and float(xs.max()) <= 2
    assert bool(b.contains(jnp.zeros(3))) and not bool(b.contains(jnp.full(3, 3.0)))
    assert not bool(b.contains(jnp.zeros(2)))
    inf = Box(-np.inf, np.inf, (2,))
    assert np.all(np.isfinite(np.asarray(inf.sample(jax.random.PRNGKey(1)))))
    ints = Box(0, 4, (5,), jnp.int32)
    s = np.asarray(ints.sample(jax.random.PRNGKey(2)))
    assert s.dtype == np.int32 and s.min() >= 0 and s.max() <= 4
    with pytest.raises(ValueError, match="low <= high"):
        Box(1.0, 0.0, (1,))


def test_multidiscrete():
    m = MultiDiscrete([2, 5])
    xs = np.asarray(jax.vmap(m.sample)(jax.random.split(jax.random.PRNGKey(0), 300)))
    assert xs[:, 0].max() == 1 and xs[:, 1].max() == 4 and xs.min() == 0
    assert bool(m.contains(jnp.array([1, 4]))) and not bool(m.contains(jnp.array([2, 0])))
    with pytest.raises(ValueError, match="positive sizes"):
        MultiDiscrete([2, 0])


def test_box_samples_stay_inside_any_bounds():
    # `sample` swapped an infinite bound for +-1 and drew uniform(low, high): CartPole's
    # observation space (bounds at float32's largest value) gave inf, Box(-inf, -5) always
    # -1.0 (outside), and an int32 box up to its largest value always 0 (high + 1 wrapped).
    from bellmax.envs import make

    env, params = make("CartPole-v1")
    boxes = [
        env.observation_space(params),
        Box(-np.inf, -5.0, (3,)),
        Box(5.0, np.inf, (3,)),
        Box(-np.inf, np.inf, (3,)),
        Box(0, np.iinfo(np.int32).max, (4,), jnp.int32),
    ]
    keys = jax.random.split(jax.random.key(0), 500)
    for box in boxes:
        xs = np.asarray(jax.vmap(box.sample)(keys))
        assert np.isfinite(xs).all() and bool(jax.vmap(box.contains)(xs).all()), box
        assert len(np.unique(xs)) > 100, box  # not one value clamped to a bound
    # A bounded box draws exactly what it drew before (learning runs keep their numbers).
    box, key = Box(-2.0, 2.0, (2,)), jax.random.key(5)
    np.testing.assert_array_equal(
        box.sample(key), jax.random.uniform(key, (2,), minval=-2, maxval=2)
    )
    # A Discrete space's contains is one boolean, also for a 1-element array.
    assert Discrete(3).contains(jnp.array([1])).shape == ()
