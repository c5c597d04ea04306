"""Tests of the uniform replay buffer (bellmax.deep.replay)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.types import Transition
from bellmax.deep.replay import ReplayBuffer, replay_add, replay_init, replay_sample


def _example() -> Transition:
    return Transition(
        obs_tm1=jnp.zeros(3, jnp.float32),
        action_tm1=jnp.zeros((), jnp.int32),
        reward_t=jnp.zeros((), jnp.float32),
        obs_t=jnp.zeros(3, jnp.float32),
        terminated_t=jnp.zeros((), bool),
        truncated_t=jnp.zeros((), bool),
    )


def _batch(values) -> Transition:
    """Transitions whose every field encodes its value `v` (so slots can be identified).

    Built with numpy for Python lists (no per-op compiles) and jnp for traced values.
    """
    xp = np if isinstance(values, list) else jnp
    v = xp.asarray(values, xp.float32)
    col = xp.repeat(v[:, None], 3, axis=1)
    return Transition(
        obs_tm1=col,
        action_tm1=v.astype(xp.int32),
        reward_t=v,
        obs_t=-col,
        terminated_t=(v.astype(xp.int32) % 2 == 0),
        truncated_t=xp.zeros(v.shape[0], bool),
    )


def test_init_shapes_dtypes_and_empty():
    # Storage gets a leading [capacity] axis per leaf, keeps dtypes, starts empty.
    buf = replay_init(_example(), 7)
    assert buf.capacity == 7
    assert buf.data.obs_tm1.shape == (7, 3) and buf.data.obs_tm1.dtype == jnp.float32
    assert buf.data.action_tm1.shape == (7,) and buf.data.action_tm1.dtype == jnp.int32
    assert buf.data.terminated_t.dtype == jnp.bool_
    assert int(buf.position) == 0 and int(buf.size) == 0


@pytest.mark.parametrize("jit", [False, True])
def test_add_wraps_around_and_overwrites_oldest(jit):
    # Capacity 5: add 3 then 4 -> slots hold [5, 6, 2, 3, 4] (values 0, 1 overwritten),
    # the write position is 2 and the buffer counts 5 filled slots. Same jitted and not.
    add = jax.jit(replay_add) if jit else replay_add
    buf = replay_init(_example(), 5)
    buf = add(buf, _batch([0, 1, 2]))
    assert int(buf.position) == 3 and int(buf.size) == 3
    np.testing.assert_array_equal(buf.data.reward_t, [0, 1, 2, 0, 0])
    buf = add(buf, _batch([3, 4, 5, 6]))
    assert int(buf.position) == 2 and int(buf.size) == 5
    np.testing.assert_array_equal(buf.data.reward_t, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buf.data.action_tm1, [5, 6, 2, 3, 4])
    np.testing.assert_array_equal(buf.data.obs_t[:, 0], [-5, -6, -2, -3, -4])
    np.testing.assert_array_equal(buf.data.terminated_t, [False, True, True, False, True])


def test_add_a_full_capacity_batch_replaces_everything():
    buf = replay_add(replay_init(_example(), 4), _batch([0, 1]))
    buf = replay_add(buf, _batch([10, 11, 12, 13]))
    # Written from position 2: 10, 11 at slots 2, 3 and 12, 13 at slots 0, 1.
    np.testing.assert_array_equal(buf.data.reward_t, [12, 13, 10, 11])
    assert int(buf.position) == 2 and int(buf.size) == 4


def test_sample_draws_only_filled_slots_uniformly():
    # 3 of 100 slots filled: every sample is one of them, each about a third of the time.
    buf = replay_add(replay_init(_example(), 100), _batch([7, 8, 9]))
    batch = jax.jit(replay_sample, static_argnums=2)(buf, jax.random.key(0), 3000)
    values = np.asarray(batch.reward_t)
    assert set(np.unique(values)) == {7.0, 8.0, 9.0}
    counts = np.array([(values == v).sum() for v in (7, 8, 9)])
    assert np.all(np.abs(counts - 1000) < 150), counts
    # A sampled transition is a whole row (fields stay aligned).
    np.testing.assert_array_equal(batch.obs_tm1[:, 0], values)
    np.testing.assert_array_equal(batch.obs_t[:, 2], -values)


def test_sample_after_wrap_covers_all_slots():
    buf = replay_init(_example(), 4)
    for chunk in ([0, 1, 2], [3, 4, 5]):
        buf = replay_add(buf, _batch(chunk))
    values = np.asarray(replay_sample(buf, jax.random.key(1), 400).reward_t)
    assert set(np.unique(values)) == {2.0, 3.0, 4.0, 5.0}


def test_vmap_over_buffers():
    # One buffer per seed: vmapped init/add/sample equal per-buffer calls.
    def pipeline(values, key):
        buf = replay_add(replay_init(_example(), 6), _batch(values))
        return buf, replay_sample(buf, key, 5)

    values = jnp.array([[1, 2, 3], [4, 5, 6]])
    keys = jax.random.split(jax.random.key(2), 2)
    bufs, out = jax.jit(jax.vmap(pipeline))(values, keys)
    assert isinstance(bufs, ReplayBuffer) and bufs.capacity == 6
    for i in range(2):
        _, ref = pipeline(values[i], keys[i])
        np.testing.assert_array_equal(out.reward_t[i], ref.reward_t)
        assert set(np.asarray(ref.reward_t)) <= set(np.asarray(values[i], np.float32))


def test_bad_input_errors():
    buf = replay_init(_example(), 4)
    with pytest.raises(ValueError, match="capacity must be an int >= 1, got 0"):
        replay_init(_example(), 0)
    with pytest.raises(TypeError, match=r"capacity must be an int, got float 2\.5"):
        replay_init(_example(), 2.5)
    with pytest.raises(ValueError, match="no array leaves"):
        replay_init({}, 4)
    with pytest.raises(ValueError, match="does not fit a buffer of capacity 4"):
        replay_add(buf, _batch([1, 2, 3, 4, 5]))
    with pytest.raises(ValueError, match="same type"):
        replay_add(buf, {"reward": jnp.zeros(2)})
    bad_shape = _batch([1, 2]).replace(obs_tm1=jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match="does not match stored transitions"):
        replay_add(buf, bad_shape)
    # one transition without its [1, ...] axis, wider than the buffer: the shape is named,
    # not the capacity
    one = replay_init(jnp.zeros(3), 4)
    with pytest.raises(ValueError, match=r"shape \(5,\) does not match stored transitions"):
        replay_add(one, jnp.zeros(5))
    ragged = _batch([1, 2]).replace(reward_t=jnp.zeros(3))
    with pytest.raises(ValueError, match="same leading batch axis"):
        replay_add(buf, ragged)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        replay_sample(buf, jax.random.key(0), 0)
