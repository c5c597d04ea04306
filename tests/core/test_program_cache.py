"""The disk cache of lowered programs (`bellmax.core.program_cache`): a kept program read
back computes what the function traced anew computes, bit for bit; anything that decides
the program is in the key; damaged files and programs that cannot be exported cost only
time; the cache is off with the compile cache."""

import dataclasses
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from bellmax.core import program_cache as pc
from bellmax.core.compile_cache import compile_cache_dir


@struct.dataclass
class _State:
    w: jax.Array
    key: jax.Array
    step: jax.Array


def _update(state, hp):
    key, sub = jax.random.split(state.key)
    noise = jax.random.normal(sub, state.w.shape)
    w = state.w - hp["lr"] * (jnp.tanh(state.w @ state.w.T) @ state.w + noise)
    return state.replace(w=w, key=key, step=state.step + 1), {"norm": jnp.linalg.norm(w)}


def _args():
    state = _State(jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), jax.random.key(3), jnp.int32(0))
    return state, {"lr": np.float32(0.1)}


def _leaves(tree):
    return [
        np.asarray(
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        )
        for x in jax.tree.leaves(tree)
    ]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BELLMAX_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BELLMAX_COMPILE_CACHE", raising=False)
    monkeypatch.delenv("BELLMAX_PROGRAM_CACHE", raising=False)  # (off for the suite)
    return tmp_path / "programs"


def test_a_kept_program_read_back_computes_the_same_bit_for_bit(cache):
    args = _args()
    kept = pc.keep_program(("t", 1), _update, args)
    assert kept is not None and [p.suffix for p in cache.iterdir()] == [".program"]
    read = pc.read_program(("t", 1))
    assert read is not None and read is not kept  # from the file
    assert read.fits(*args)
    call = read.wrap(read.lower().compile())
    ours, plain = args, args
    for _ in range(3):  # the state's tree (a flax dataclass, a typed key) goes round
        ours, m1 = call(*ours)
        plain, m2 = jax.jit(_update)(*plain)
        ours, plain = (ours, args[1]), (plain, args[1])
    assert jax.tree.structure(ours) == jax.tree.structure(plain)
    for a, b in zip(_leaves((ours, m1)), _leaves((plain, m2)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_whatever_decides_the_program_is_in_the_key(cache, monkeypatch):
    args = _args()
    pc.keep_program(("t", 1), _update, args)
    assert pc.read_program(("t", 1)) is not None
    assert pc.read_program(("t", 2)) is None  # the caller's parts
    with monkeypatch.context() as m:
        m.setattr(pc, "_code", lambda: "another bellmax")
        assert pc.read_program(("t", 1)) is None  # bellmax's source
    with monkeypatch.context() as m:
        m.setattr(pc, "_libraries", lambda: (("flax", "another install"),))
        assert pc.read_program(("t", 1)) is None  # the traced libraries
    with jax.numpy_rank_promotion("raise"):  # a JAX setting
        assert pc.read_program(("t", 1)) is None
    assert pc.read_program(("t", 1)) is not None


def test_fits_names_the_inputs_a_program_was_made_for(cache):
    state, hp = _args()
    kept = pc.keep_program(("t",), _update, (state, hp))
    assert kept.fits(state, hp)
    assert not kept.fits(state.replace(w=jnp.zeros((4, 4))), hp)  # another shape
    assert not kept.fits(state.replace(w=state.w.astype(jnp.float16)), hp)  # another dtype
    assert not kept.fits(state, {"lr": hp["lr"], "momentum": hp["lr"]})  # another tree
    # made from shapes alone (what a caller without the state yet passes)
    shapes = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), (state, hp))
    assert pc.export_program(_update, shapes).fits(state, hp)


def test_a_damaged_file_is_dropped_and_the_program_traced_anew(cache):
    args = _args()
    pc.keep_program(("t",), _update, args)
    (path,) = cache.iterdir()
    path.write_bytes(path.read_bytes()[:100])  # cut short (a full disk, a killed writer)
    assert pc.read_program(("t",)) is None and not path.exists()
    calls = []
    program = pc.load_or_export(("t",), _update, lambda: calls.append(1) or args)
    assert calls == [1] and program.fits(*args) and path.exists()
    unchecked = pc.load_or_export(("t",), _update, lambda: calls.append(1) or args, check=False)
    assert unchecked is not None and calls == [1]  # read back: the inputs were not asked for


def test_damage_inside_the_program_is_caught_by_its_checksum(cache):
    """The program's module is parsed only when it is lowered: a file whose module bytes
    were damaged still unpickles and deserialises, and would fail the run at its lowering.
    Its checksum catches it on reading: the file is dropped and the program exported anew."""
    args = _args()
    pc.keep_program(("t",), _update, args)
    (path,) = cache.iterdir()
    fmt, digest, blob, in_tree, out_tree = pickle.loads(path.read_bytes())
    exported = jax.export.deserialize(bytearray(blob))
    module = bytearray(exported.mlir_module_serialized)
    module[len(module) // 2 : len(module) // 2 + 64] = b"\xff" * 64
    damaged = dataclasses.replace(exported, mlir_module_serialized=bytes(module))
    blob = bytes(damaged.serialize())
    jax.export.deserialize(bytearray(blob))  # (it deserialises)
    with pytest.raises(Exception):  # noqa: B017 (whatever MLIR's parser raises)
        pc.Program(damaged, in_tree, out_tree).lower()
    path.write_bytes(pickle.dumps((fmt, digest, blob, in_tree, out_tree)))
    assert pc.read_program(("t",)) is None and not path.exists()
    program = pc.load_or_export(("t",), _update, lambda: args)
    assert program.fits(*args) and pc.read_program(("t",)) is not None


def test_a_kept_program_that_does_not_fit_is_replaced(cache):
    """A file under the key whose program was made for other inputs (the shapes are not in
    the key) is exported anew and replaced, so later processes read one that fits."""
    args = _args()
    pc.keep_program(("t",), lambda x: x + 1, (np.zeros(3, np.float32),))
    assert not pc.read_program(("t",)).fits(*args)
    assert not pc.load_or_export(("t",), _update, lambda: args, check=False).fits(*args)
    program = pc.load_or_export(("t",), _update, lambda: args)
    assert program.fits(*args)
    assert pc.read_program(("t",)).fits(*args)  # the file now holds it


def test_a_program_that_cannot_be_exported_is_left_to_plain_tracing(cache):
    def with_callback(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    assert pc.keep_program(("cb",), with_callback, (jnp.ones(3),)) is None
    assert not cache.exists() or not list(cache.iterdir())


def test_off_with_the_compile_cache(cache, monkeypatch):
    monkeypatch.setenv("BELLMAX_COMPILE_CACHE", "0")
    assert pc.program_cache_dir() is None
    assert pc.keep_program(("t",), _update, _args()) is not None  # exported all the same
    assert not cache.exists() and pc.read_program(("t",)) is None


def test_the_folder_is_the_compile_caches_sibling(tmp_path):
    env = {"BELLMAX_CACHE_DIR": str(tmp_path)}
    assert pc.program_cache_dir(env) == tmp_path / "programs"
    assert pc.program_cache_dir({**env, "BELLMAX_COMPILE_CACHE": "off"}) is None
    off = {**env, "BELLMAX_PROGRAM_CACHE": "0"}  # this cache alone
    assert pc.program_cache_dir(off) is None and compile_cache_dir(off) == tmp_path / "xla"


def test_a_folder_that_cannot_be_written_only_costs_time(cache):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the folder would be")
    assert pc.keep_program(("t",), _update, _args()) is not None  # exported, not kept
    assert pc.read_program(("t",)) is None


def test_a_file_others_may_write_is_not_read(cache):
    """The files are pickles: one that any user could have written is not unpickled; they
    are written for their owner alone."""
    pc.keep_program(("t",), _update, _args())
    (path,) = cache.iterdir()
    assert path.stat().st_mode & 0o077 == 0  # 0o600, whatever the umask
    path.chmod(0o602)  # writable by everyone
    assert pc.read_program(("t",)) is None
    path.chmod(0o600)
    mode = cache.stat().st_mode
    cache.chmod(mode | 0o002)  # a folder everyone may write into
    assert pc.read_program(("t",)) is None
    cache.chmod(mode)
    assert pc.read_program(("t",)) is not None


def test_a_damaged_file_that_cannot_be_deleted_only_costs_time(cache, monkeypatch):
    """A read-only cache folder (a damaged file stays): traced anew each time, no error."""
    pc.keep_program(("t",), _update, _args())
    (path,) = cache.iterdir()
    path.write_bytes(b"damaged")

    def refuse(self, missing_ok=False):
        raise PermissionError(1, "Operation not permitted", str(self))

    monkeypatch.setattr(type(path), "unlink", refuse)
    assert pc.read_program(("t",)) is None and path.exists()
    assert pc.load_or_export(("t",), _update, _args) is not None
