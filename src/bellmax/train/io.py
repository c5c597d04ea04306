"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Each writer writes to a temporary file in the target's directory, flushes and fsyncs it,
then renames it over the target with `os.replace` (atomic on POSIX and Windows within one
file system). If writing fails part-way, the temporary file is removed and the target is
left exactly as it was. New files get the usual permissions (`0o666` less the umask).

JSON is strict: `atomic_write_json` refuses NaN and infinities (which `json.dumps` would
otherwise write as the invalid tokens `NaN`/`Infinity`) and raises a `ValueError` naming
where the bad number is, before anything is written. Encode such values yourself (e.g. as
`None` or a string) if you mean to store them. NumPy and JAX scalars and arrays are
converted to Python numbers and lists.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bellmax.core.io import atomic_open

__all__ = [
    "atomic_open",
    "atomic_savefig",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "to_jsonable",
    "to_strict_json",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically.

    Args:
      path: destination file; parent directories are created.
      data: the bytes to write.

    Returns:
      The path written, as a `Path`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            f"atomic_write_bytes needs bytes, got {type(data).__name__}; "
            "use atomic_write_text for str."
        )
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write the string `text` to `path` atomically (UTF-8 by default, newlines as given).

    Returns:
      The path written, as a `Path`.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"atomic_write_text needs str, got {type(text).__name__}; "
            "use atomic_write_bytes for bytes."
        )
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays (anything with `tolist`) to Python values."""
    if isinstance(obj, Mapping):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, str | bytes):
        return to_jsonable(obj.tolist())
    return obj


def _find_nonfinite(obj: Any, where: str) -> str | None:
    """The location (`summary["a"][0]`) of the first NaN or infinity in `obj`, if any."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"{where} = {obj!r}"
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _find_nonfinite(v, f"{where}[{k!r}]")
            if found:
                return found
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = _find_nonfinite(v, f"{where}[{i}]")
            if found:
                return found
    return None


def to_strict_json(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """`obj` as strict JSON text: NumPy/JAX values converted, NaN and infinities refused.

    Args:
      obj: a JSON-serialisable value (dicts, lists, strings, numbers, booleans, None,
        NumPy/JAX scalars and arrays).
      indent: indentation passed to `json.dumps` (None for one line).
      sort_keys: sort object keys.

    Returns:
      The JSON text.

    Raises:
      ValueError: a NaN or infinity, named by its location (e.g. `value['loss'][3]`).
      TypeError: a value JSON cannot represent.
    """
    value = to_jsonable(obj)
    bad = _find_nonfinite(value, "value")
    if bad is not None:
        raise ValueError(
            f"{bad} is not a finite number and strict JSON has no NaN/Infinity; "
            "replace it with None (or a string) first."
        )
    try:
        return json.dumps(value, indent=indent, sort_keys=sort_keys, allow_nan=False)
    except TypeError as e:
        raise TypeError(
            f"{e}; convert the value to numbers, strings, lists and dicts first."
        ) from None


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> Path:
    """Write `obj` as strict JSON to `path` atomically.

    NumPy/JAX numbers and arrays are converted to Python values first. NaN and infinities
    are refused (strict JSON has no such numbers): nothing is written and a `ValueError`
    names the offending entry.

    Args:
      path: destination file.
      obj: a JSON-serialisable value.
      indent: indentation passed to `json.dumps` (None for one line).
      sort_keys: sort object keys.

    Returns:
      The path written, as a `Path`.
    """
    try:
        text = to_strict_json(obj, indent=indent, sort_keys=sort_keys)
    except (ValueError, TypeError) as e:
        raise type(e)(f"cannot write {os.fspath(path)!r} as JSON: {e}") from None
    return atomic_write_text(path, text + "\n")


def atomic_savefig(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """Save a Matplotlib figure to `path` atomically.

    The format comes from the file suffix (e.g. `.png`) unless `format=` is given; the
    other keyword arguments go to `Figure.savefig`. The figure is not closed.

    Returns:
      The path written, as a `Path`.
    """
    if not hasattr(fig, "savefig"):
        raise TypeError(
            f"atomic_savefig needs a matplotlib Figure, got {type(fig).__name__}; "
            "pass `fig` from `fig, ax = plt.subplots()`."
        )
    target = Path(path)
    fmt = savefig_kwargs.pop("format", None) or target.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(
            f"cannot tell the image format of {str(target)!r}: give it a suffix such as "
            "'.png' or pass format='png'."
        )
    with atomic_open(target, "wb") as f:
        fig.savefig(f, format=fmt, **savefig_kwargs)
    return target
