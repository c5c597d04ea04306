"""Checkpoints round-trip bit for bit (keys included) and refuse mismatched or corrupt files."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.train.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)


def _state():
    return {
        "params": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.array([1e-30, -0.0])},
        "step": jnp.array(7, jnp.int32),
        "key": jax.random.key(3),
        "keys": jax.random.split(jax.random.key(1), 4),
        "flag": jnp.array([True, False]),
    }


def test_round_trip_is_exact(tmp_path):
    state = _state()
    path = save_checkpoint(tmp_path / "c.msgpack", state, metadata={"updates_done": 3, "a": [1]})
    assert read_checkpoint_metadata(path) == {"updates_done": 3, "a": [1]}
    back, meta = load_checkpoint(path, jax.eval_shape(lambda: state))
    assert meta["updates_done"] == 3
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(back), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Keys come back usable and give the same draws.
    assert jax.random.normal(back["key"]) == jax.random.normal(state["key"])
    assert not list(tmp_path.glob("*.tmp*"))  # atomic write leaves no temporary file


def test_mismatches_and_corruption_are_clear(tmp_path):
    path = save_checkpoint(tmp_path / "c.msgpack", _state())
    other = {**_state(), "extra": jnp.zeros(2)}
    with pytest.raises(CheckpointError, match="different state structure"):
        load_checkpoint(path, other)
    wrong_shape = {**_state(), "step": jnp.zeros(3, jnp.int32)}
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(path, wrong_shape)
    (tmp_path / "bad.msgpack").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="not"):
        load_checkpoint(tmp_path / "bad.msgpack", _state())
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_checkpoint_metadata(tmp_path / "missing.msgpack")
