"""`replay_sample_after_add` draws what `replay_sample(replay_add(...))` draws, exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep.replay import replay_add, replay_init, replay_sample, replay_sample_after_add


@pytest.mark.parametrize("capacity", [5, 7, 64])
def test_equals_sampling_the_buffer_after_the_add(capacity):
    example = {"x": jnp.zeros((2,), jnp.float32), "d": jnp.zeros((), bool)}
    buffer = replay_init(example, capacity)
    key = jax.random.key(0)
    for step in range(12):  # fills, then wraps around (3 transitions per add)
        batch = {
            "x": jnp.arange(6, dtype=jnp.float32).reshape(3, 2) + 10 * step,
            "d": jnp.array([step % 2 == 0, True, False]),
        }
        key, k = jax.random.split(key)
        after = replay_add(buffer, batch)
        want = replay_sample(after, k, 32)
        got = replay_sample_after_add(buffer, batch, k, 32)
        for name in want:
            np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(want[name]))
        buffer = after
    assert int(buffer.size) == min(36, capacity)


def test_refuses_what_replay_add_refuses():
    buffer = replay_init({"x": jnp.zeros((2,), jnp.float32)}, 4)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="does not fit a buffer of capacity 4"):
        replay_sample_after_add(buffer, {"x": jnp.zeros((5, 2))}, key, 8)
    with pytest.raises(ValueError, match="does not match stored transitions"):
        replay_sample_after_add(buffer, {"x": jnp.zeros((2, 3))}, key, 8)
    with pytest.raises(ValueError, match="structure"):
        replay_sample_after_add(buffer, {"y": jnp.zeros((2, 2))}, key, 8)
