"""Tests for bellmax.core.display: short reprs, arrays as dtype-shape, never their values."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.display import plural, summarize, summary_repr
from bellmax.core.status import StatusFields


@struct.dataclass
class _Result(StatusFields):
    """A flax.struct result with the summary repr."""

    __repr__ = summary_repr

    values: Any
    params: Any = None
    status: Any = 0
    fn: Any = struct.field(pytree_node=False, default=None)


@dataclasses.dataclass(frozen=True)
class _Frozen:
    """A frozen dataclass with the summary repr and a field left out of it."""

    __repr__ = summary_repr

    x: Any
    name: str = ""
    secret: Any = dataclasses.field(default=None, repr=False)


class _Opaque:
    """Array-like whose values must not be read: `__array__` and `__repr__` raise."""

    shape = (1000, 1000)
    ndim = 2
    dtype = np.dtype(np.float32)

    def __array__(self, *args, **kwargs):
        raise AssertionError("the values were read")

    def __repr__(self):
        raise AssertionError("the array's own repr was called")


def _params(widths=(64, 64, 2)):
    """An MLP's params: {'params': {'Dense_i': {'kernel', 'bias'}}} (6 arrays)."""
    sizes = zip((4, *widths[:-1]), widths, strict=True)
    return {
        "params": {
            f"Dense_{i}": {"kernel": jnp.zeros((a, b)), "bias": jnp.zeros(b)}
            for i, (a, b) in enumerate(sizes)
        }
    }


def test_arrays_show_dtype_and_shape():
    assert summarize(np.zeros((25, 4))) == "f64[25,4]"
    assert summarize(jnp.zeros((25, 4))) == "f32[25,4]"
    assert summarize(jnp.zeros((3,), jnp.int32)) == "i32[3]"
    assert summarize(np.zeros((2, 0), np.uint8)) == "u8[2,0]"
    assert summarize(np.zeros(3, bool)) == "bool[3]"
    assert summarize(jnp.zeros(2, jnp.bfloat16)) == "bf16[2]"
    assert summarize(jnp.zeros(2, jnp.complex64)) == "c64[2]"
    assert summarize(jax.random.split(jax.random.key(0), 4)) == "key<fry>[4]"
    assert summarize(jax.ShapeDtypeStruct((5, 2), jnp.float32)) == "f32[5,2]"
    assert summarize(_Opaque()) == "f32[1000,1000]"  # no values read, no repr called


def test_spaces_are_not_arrays():
    from bellmax.envs import spaces

    # a shape and a dtype (here a class, or a numpy dtype) do not make an array: no `f32[4]`
    assert summarize(spaces.Box(-1.0, 1.0, (4,))) == "Box(shape=(4,), dtype=float32)"
    assert (
        summarize(spaces.Box(0, 1, (2,), np.dtype(np.float64))) == "Box(shape=(2,), dtype=float64)"
    )
    assert summarize(spaces.Discrete(3)) == "Discrete(3)"
    assert summarize(spaces.MultiDiscrete([2, 3])).startswith("MultiDiscrete(")


def test_concrete_scalars_show_their_value():
    assert summarize(jnp.float32(0.9)) == "0.9"
    assert summarize(np.float64(0.25)) == "0.25"  # a numpy scalar, not 'np.float64(0.25)'
    assert summarize(np.asarray(3)) == "3"
    assert summarize(jnp.asarray(True)) == "True"
    assert summarize(jax.random.key(0)) == "key<fry>[]"  # not a number
    deleted = jnp.float32(1.0)
    deleted.delete()
    assert summarize(deleted) == "f32[]"  # a donated or deleted array does not raise


def test_tracers_under_jit_vmap_and_eval_shape():
    seen = []

    def f(x, s):
        seen.append(repr(_Result(x, status=s)))
        return x

    jax.jit(f)(jnp.ones((3, 4)), jnp.int32(0))
    jax.vmap(f, in_axes=(0, None))(jnp.ones((5, 3)), jnp.int32(2))
    assert seen == [
        "_Result(values=f32[3,4], params=None, status=i32[], fn=None)",
        "_Result(values=f32[3], params=None, status=2 (diverged), fn=None)",
    ]
    shapes = jax.eval_shape(lambda: _Result(jnp.ones((2, 2)), status=jnp.int32(0)))
    assert repr(shapes) == "_Result(values=f32[2,2], params=None, status=i32[], fn=None)"


def test_nested_pytrees_are_listed_when_small_else_counted():
    params = _params()
    assert summarize(params, _depth=1) == "{...: 6 arrays, 4610 values}"
    small = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}
    assert summarize(small, _depth=1) == "{'w': f32[2,3], 'b': f32[3]}"
    text = repr(_Result(jnp.zeros(3), params=params, fn=np.sum))
    assert text == (
        "_Result(values=f32[3], params={...: 6 arrays, 4610 values}, status=0 (converged), "
        "fn=<function sum>)"
    )
    records = [_Result(jnp.zeros(10)) for _ in range(10)]
    assert summarize(records, _depth=1) == "[...: 10 items, 10 arrays, 100 values]"
    assert summarize((jnp.zeros(2), 1.5), _depth=1) == "(f32[2], 1.5)"


def test_plural_is_the_one_pluralizer():
    from bellmax.cli import main as cli

    assert plural(1, "seed") == "1 seed" and plural(0, "seed") == "0 seeds"
    assert plural(2, "seed") == "2 seeds" and plural(1, "value", at_least=True) == "1+ values"
    assert cli.plural is plural  # the commands' summary lines use the same one


def test_long_sequences_strings_and_other_values():
    assert summarize(tuple(range(100))) == "(0, 1, 2, 3, 4, 5, ..., 94 more)"
    assert summarize([0.5, 0.25]) == "[0.5, 0.25]"
    assert summarize((1,)) == "(1,)" and summarize(()) == "()"
    names = tuple(f"s{i:06d}" for i in range(257))  # nested: as many items as fit 80 characters
    assert summarize(names, _depth=1) == (
        "('s000000', 's000001', 's000002', 's000003', 's000004', ..., 252 more)"
    )
    assert summarize(["x" * 100], _depth=1) == "[...: 1 item]"
    assert summarize(None) == "None" and summarize("grid") == "'grid'"
    long = summarize("x" * 500)
    assert len(long) == 80 and long.endswith("...")
    assert summarize(len) == "<function len>"
    assert " at 0x" not in summarize(lambda x: x)

    class Broken:
        def __repr__(self):
            raise RuntimeError("boom")

    assert summarize(Broken()) == "<Broken: repr failed with RuntimeError>"


def test_dataclass_generation_keeps_the_repr_and_equality():
    frozen = _Frozen(np.ones((100, 100)), name="a", secret="s")
    assert repr(frozen) == "_Frozen(x=f64[100,100], name='a')"  # repr=False fields stay out
    assert _Frozen.__repr__ is summary_repr and _Result.__repr__ is summary_repr
    assert _Frozen(1, "a") == _Frozen(1, "a") and hash(_Frozen(1, "a")) == hash(_Frozen(1, "a"))
    assert _Result(1) == _Result(1) and _Result(1) != _Result(2)


def test_long_reprs_put_one_field_per_line():
    wide = _Result(jnp.zeros(3), params="p" * 70, status=1)
    assert repr(wide) == (
        "_Result(\n"
        "  values=f32[3],\n"
        f"  params='{'p' * 70}',\n"
        "  status=1 (max_iterations),\n"
        "  fn=None,\n"
        ")"
    )
