"""Checkpoints round-trip bit for bit (keys included) and refuse mismatched or corrupt files."""

import hashlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization

from bellmax.train.checkpoint import (
    FORMAT,
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


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda b: b[: len(b) // 2], r"is damaged \(\d+ bytes: truncated or overwritten\)"),
        (lambda b: b[:7], "is damaged"),
        (lambda b: b"", r"is empty \(0 bytes\)"),
        (lambda b: bytes(range(256)) * 4, "is damaged"),
        (lambda b: b[:9000] + bytes([b[9000] ^ 1]) + b[9001:], "do not match the checksum"),
        (lambda b: b"\x93\x01\x02\x03", "no format tag"),
    ],
)
def test_damaged_files_are_named_never_a_raw_traceback(tmp_path, damage, match):
    state = {**_state(), "big": jnp.arange(4000.0)}  # mostly array bytes: a flip lands in one
    path = save_checkpoint(tmp_path / "c.msgpack", state, metadata={"updates_done": 1})
    path.write_bytes(damage(path.read_bytes()))
    for read in (
        lambda: read_checkpoint_metadata(path),
        lambda: load_checkpoint(path, jax.eval_shape(lambda: state)),
    ):
        with pytest.raises(CheckpointError, match=match) as info:
            read()
        assert "c.msgpack" in str(info.value) and "\n" not in str(info.value)


def test_other_format_versions_are_named(tmp_path):
    path = tmp_path / "c.msgpack"
    body = serialization.msgpack_serialize({"metadata": "{}"})
    old = {"format": "bellmax-checkpoint/1", "leaves": {}, "metadata": "{}"}  # the first format
    path.write_bytes(serialization.msgpack_serialize(old))
    with pytest.raises(CheckpointError, match=r"another bellmax version in format 'bellmax-che"):
        read_checkpoint_metadata(path)
    newer = {
        "format": "bellmax-checkpoint/9",
        "bellmax_version": "9.0",
        "sha256": hashlib.sha256(body).hexdigest(),
        "body": body,
    }
    path.write_bytes(serialization.msgpack_serialize(newer))
    with pytest.raises(CheckpointError, match=rf"bellmax 9.0 in format .*reads '{FORMAT}' only"):
        read_checkpoint_metadata(path)
    path.write_bytes(serialization.msgpack_serialize({**newer, "format": "numpy"}))
    with pytest.raises(CheckpointError, match="not a bellmax checkpoint"):
        read_checkpoint_metadata(path)


def test_a_checkpoint_of_the_other_64_bit_mode_names_it(tmp_path):
    # A run saved with float32 leaves and resumed under JAX_ENABLE_X64 (or the other way) was
    # told "the configuration changed since it was saved", which it had not.
    ck = tmp_path / "c.msgpack"
    save_checkpoint(ck, {"w": jnp.zeros(3, jnp.float32)}, metadata={})
    with jax.enable_x64(True):
        template = {"w": jnp.zeros(3, jnp.float64)}
        with pytest.raises(CheckpointError, match="saved with JAX's 64-bit mode off"):
            load_checkpoint(ck, template)
