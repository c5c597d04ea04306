"""Short reprs for data and result classes: arrays as `f32[25,4]`, never their values.

`summary_repr(obj)` renders a dataclass (plain, frozen or `flax.struct`) as
`TabularMDP(P=f64[25,4,25], R=f64[25,4], gamma=0.9, terminal=None, name='gridworld')`, the way
equinox, penzai and flax's nnx show their modules, instead of printing every number. A class opts
in with one line in its body::

    __repr__ = summary_repr

`dataclasses.dataclass` (and so `flax.struct.dataclass`) only adds a `__repr__` when the class
body defines none, so the line is kept; a subclass decorated again gets a generated one and needs
its own line. Only `__repr__` changes: `==`, hashing and pickling do not.

Each field is shown by `summarize`:

- an array (numpy, jax, a tracer under `jit`/`vmap`, a `jax.ShapeDtypeStruct`, or any object
  with a numpy `dtype`, a `shape` and a matching `ndim`) as its dtype and shape, `f32[25,4]`;
  a 0-d array as its value (`0.9`) when concrete and numeric, else `f32[]`. A space (a `shape`
  and a `dtype` but no `ndim`) is not an array: it shows its own repr, `Discrete(2)`.
  Only a 0-d value is ever read back from the device, so a repr costs no transfer of an array and
  never fails on a tracer;
- `None`, bools, numbers and enums by `repr`, strings by `repr` clipped to 80 characters;
- a nested dataclass, mapping, list or tuple element by element when short (at most
  4 arrays and 80 characters, e.g. `AlphaVectors(alphas=f64[50,2], actions=i32[50])`),
  else counted: `{...: 6 arrays, 4610 values}`, `[...: 10 items, 50 arrays, 3000 values]`;
  a long sequence or mapping of plain values as its first items, `[0.5, 0.4, ..., 98 more]`;
- anything else by its own `repr`, clipped, without memory addresses (`<function name>`).

A `status` field of a solver result (`StatusFields`) also shows the status name:
`status=0 (converged)`. A repr longer than 100 characters puts one field per line.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import re
import sys
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from bellmax.core.status import Status, StatusFields

__all__ = ["plural", "summarize", "summary_repr"]

WIDTH = 100
"""A repr longer than this puts one field per line."""
_NESTED_WIDTH = 80
"""A nested container whose summary is longer than this is counted instead of listed."""
_NESTED_ARRAYS = 4
"""A nested container holding more arrays than this is counted instead of listed."""
_MAX_ITEMS = 6
"""Items of a mapping or sequence listed before `..., N more`."""
_MAX_DEPTH = 3
"""Containers nested deeper than this are counted, never listed."""
_MAX_NODES = 100_000
"""Nodes visited when counting a container's arrays (beyond, the count ends with `+`)."""
_CLIP = 80
"""Other reprs (strings, objects) are clipped to this many characters."""

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+(?=>)")
_DTYPE = re.compile(r"(bfloat|float|uint|int|complex)(\d+)")
_DTYPE_SHORT = {"bfloat": "bf", "float": "f", "uint": "u", "int": "i", "complex": "c"}
_FUNCTIONS = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.BuiltinMethodType,
)


def summary_repr(obj: Any, /) -> str:
    """A short repr of a dataclass instance: each field by `summarize`, arrays as dtype-shape.

    Use it as a class's `__repr__` (`__repr__ = summary_repr`). Fields declared with
    `repr=False` are left out, as in a dataclass's own repr. A result longer than `WIDTH` (100)
    characters puts one field per line.

    Args:
      obj: a dataclass instance (anything else is passed to `summarize`).

    Returns:
      The repr, e.g. `TabularMDP(P=f64[25,4,25], R=f64[25,4], gamma=0.9, ...)`.
    """
    if not _is_dataclass_instance(obj):
        return summarize(obj)
    name = type(obj).__name__
    parts = []
    for field in dataclasses.fields(obj):
        if not field.repr:
            continue
        value = getattr(obj, field.name, dataclasses.MISSING)
        if value is dataclasses.MISSING:  # a repr while __init__ is still running
            text = "<unset>"
        else:
            text = summarize(value, _depth=1)
            if field.name == "status" and isinstance(obj, StatusFields):
                text += _status_note(text)
        parts.append(f"{field.name}={text}")
    line = f"{name}({', '.join(parts)})"
    if len(line) <= WIDTH or not parts:
        return line
    return f"{name}(\n" + "".join(f"  {part},\n" for part in parts) + ")"


def summarize(value: Any, *, _depth: int = 0) -> str:
    """A short, one-line description of one value: arrays as dtype-shape (`f32[25,4]`).

    Never reads an array's values back from the device (except the one value of a 0-d array)
    and never fails on a tracer.

    Args:
      value: any Python value.

    Returns:
      `f32[25,4]` for an array, `0.9` for a concrete 0-d array, `{...: 6 arrays, 4610 values}`
      for a large nested pytree, the (clipped) `repr` for anything else.
    """
    if _is_array(value):  # before numbers: numpy scalars are floats and ints too
        return _array(value)
    if value is None or isinstance(value, bool | int | float | complex | enum.Enum):
        return _safe_repr(value)
    if isinstance(value, str | bytes):
        return _clip(repr(value))
    if isinstance(value, _FUNCTIONS):
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        return f"<function {name}>"
    if _is_dataclass_instance(value):
        if _has_own_repr(type(value)):
            return _clip(_safe_repr(value))
        return _container(value, _depth)
    if isinstance(value, Mapping | list | tuple):
        return _container(value, _depth)
    return _clip(_ADDRESS.sub("", _safe_repr(value)))


def plural(count: int, noun: str, *, at_least: bool = False) -> str:
    """A count and its noun: `1 seed`, `2 seeds`; with `at_least`, a lower bound (`1+ values`).

    The one pluralizer of bellmax's messages, summary lines and reprs (the CLI re-exports it as
    `bellmax.cli.main.plural`).
    """
    plus = "+" if at_least else ""
    return f"{count}{plus} {noun}{'' if count == 1 and not at_least else 's'}"


# ---------------------------------------------------------------------- arrays
def _is_array(x: Any) -> bool:
    """A numpy or jax array, a tracer, a `ShapeDtypeStruct`, or an array-like with a numpy dtype.

    An object that only has a `shape` and a `dtype` (a space, whose dtype may be a class such as
    `jnp.float32`) is not an array: it is shown by its own repr.
    """
    if isinstance(x, type):
        return False
    if isinstance(x, np.ndarray | np.generic):
        return True
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(x, jax.Array | jax.ShapeDtypeStruct):
        return True  # tracers included; a PRNG key's dtype is not a numpy dtype
    shape = getattr(x, "shape", None)
    return (
        isinstance(shape, tuple)
        and isinstance(getattr(x, "dtype", None), np.dtype)
        and getattr(x, "ndim", None) == len(shape)
    )


def _dtype_name(dtype: Any) -> str:
    name = str(getattr(dtype, "name", dtype))
    if name == "bool":
        return "bool"
    match = _DTYPE.fullmatch(name)
    return _DTYPE_SHORT[match[1]] + match[2] if match else name


def _array(x: Any) -> str:
    shape = tuple(x.shape)
    if shape == ():
        scalar = _concrete_scalar(x)
        if scalar is not None:
            return scalar
    return f"{_dtype_name(x.dtype)}[{','.join(str(d) for d in shape)}]"


def _concrete_scalar(x: Any) -> str | None:
    """The value of a concrete numeric 0-d array as text, or None (tracers, keys, ...)."""
    try:
        if np.dtype(x.dtype).kind not in "biufc":
            return None
    except TypeError:  # jax's extended dtypes: PRNG keys, ...
        return None
    if isinstance(x, np.ndarray | np.generic):
        return str(x[()])
    jax = sys.modules.get("jax")
    if jax is None or not isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer):
        return None
    try:
        return str(np.asarray(x)[()])  # one number; a deleted or donated array raises
    except Exception:
        return None


def _status_note(text: str) -> str:
    """` (converged)` after a status code shown as a number; nothing for `i32[]` or `i32[8]`."""
    try:
        return f" ({Status(int(text)).name.lower()})"
    except ValueError:  # not a number (a tracer, a batch of codes), or not a Status code
        return ""


# ---------------------------------------------------------------------- containers
def _is_dataclass_instance(x: Any) -> bool:
    return dataclasses.is_dataclass(x) and not isinstance(x, type)


def _has_own_repr(cls: type) -> bool:
    """Whether a dataclass's `__repr__` was written by hand (not generated, not ours)."""
    fn = cls.__repr__
    if fn is summary_repr or fn is object.__repr__:
        return False
    code = getattr(inspect.unwrap(fn), "__code__", None)
    return code is not None and code.co_filename != "<string>"  # generated code has no file


def _children(x: Any) -> tuple[str, str, list[tuple[str, Any]]]:
    """Opening and closing brackets and the labelled items of a container."""
    if _is_dataclass_instance(x):
        items = [(f"{f.name}=", getattr(x, f.name, None)) for f in dataclasses.fields(x) if f.repr]
        return f"{type(x).__name__}(", ")", items
    if isinstance(x, Mapping):
        return "{", "}", [(f"{_clip(repr(k))}: ", v) for k, v in x.items()]
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # a NamedTuple
        return (
            f"{type(x).__name__}(",
            ")",
            [(f"{k}=", v) for k, v in zip(x._fields, x, strict=True)],
        )
    if isinstance(x, list):
        return "[", "]", [("", v) for v in x]
    return "(", ")", [("", v) for v in x]


def _values(x: Any) -> list[Any]:
    """The items of a container, unlabelled (no reprs of keys); `[]` for a leaf."""
    if _is_dataclass_instance(x):
        return [getattr(x, f.name, None) for f in dataclasses.fields(x) if f.repr]
    if isinstance(x, Mapping):
        return list(x.values())
    if isinstance(x, list | tuple):
        return list(x)
    return []


def _container(x: Any, depth: int) -> str:
    open_, close, items = _children(x)
    if not items:
        return _safe_repr(x) if isinstance(x, list | tuple | dict) else f"{open_}{close}"
    arrays, values, complete = _count(x)
    sequence = isinstance(x, list | tuple) and not hasattr(x, "_fields")
    listed = sequence or (isinstance(x, Mapping) and not arrays)  # items counted, not named
    counted = _counted(open_, close, len(items) if listed else 0, arrays, values, complete)
    if depth >= _MAX_DEPTH or (depth > 0 and arrays > _NESTED_ARRAYS):
        return counted
    shown = len(items) if _is_dataclass_instance(x) and depth == 0 else _MAX_ITEMS
    parts = [label + summarize(v, _depth=depth + 1) for label, v in items[:shown]]
    trailing = "," if len(items) == 1 and type(x) is tuple else ""
    text = _join(open_, parts, len(items), trailing, close)
    if depth == 0 or len(text) <= _NESTED_WIDTH:
        return text
    if arrays or not listed:  # listing fewer items would hide arrays or fields
        return counted
    while len(parts) > 1 and len(text) > _NESTED_WIDTH:  # fewer plain items
        parts.pop()
        text = _join(open_, parts, len(items), trailing, close)
    return text if len(text) <= _NESTED_WIDTH else counted


def _join(open_: str, parts: list[str], n_items: int, trailing: str, close: str) -> str:
    more = [f"..., {n_items - len(parts)} more"] if len(parts) < n_items else []
    return f"{open_}{', '.join(parts + more)}{trailing}{close}"


def _counted(open_: str, close: str, n_items: int, arrays: int, values: int, complete: bool) -> str:
    counts = [plural(n_items, "item")] if n_items else []
    if arrays:
        more = not complete
        counts += [plural(arrays, "array", at_least=more), plural(values, "value", at_least=more)]
    return f"{open_}...{': ' + ', '.join(counts) if counts else ''}{close}"


def _count(x: Any) -> tuple[int, int, bool]:
    """Arrays and array elements under `x` (visiting at most `_MAX_NODES` nodes)."""
    arrays = values = nodes = 0
    stack = [(x, 0)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > _MAX_NODES:
            return arrays, values, False
        if _is_array(node):
            arrays += 1
            values += math.prod(int(d) for d in node.shape)
        elif depth < 50:
            stack.extend((v, depth + 1) for v in _values(node))
    return arrays, values, True


# ---------------------------------------------------------------------- text
def _safe_repr(x: Any) -> str:
    try:
        return repr(x)
    except Exception as e:  # a repr must not fail because one field's repr does
        return f"<{type(x).__name__}: repr failed with {type(e).__name__}>"


def _clip(text: str) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= _CLIP else text[: _CLIP - 3] + "..."
