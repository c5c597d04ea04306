"""Checkpoints: any pytree of arrays (a whole `TrainState`) to one file, safely and exactly.

The format is msgpack through `flax.serialization` (no pickle: loading a checkpoint never
runs code). Leaves are stored in tree order as raw arrays, bit for bit; typed PRNG keys are
stored as their key data with the key implementation's name. Loading needs a template with
the same tree structure (the state `init` returns, or `jax.eval_shape(init, ...)` of it), so
a checkpoint can never be poured into a differently shaped state unnoticed. Files are
written atomically: a crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from bellmax.core.errors import BellmaxError
from bellmax.train.io import atomic_write_bytes

__all__ = ["CheckpointError", "load_checkpoint", "read_checkpoint_metadata", "save_checkpoint"]

FORMAT = "bellmax-checkpoint/1"


class CheckpointError(BellmaxError, ValueError):
    """A checkpoint file is missing, corrupt or does not match the state it is loaded into."""


def _is_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _key_impl_name(x: Any) -> str:
    return str(jax.random.key_impl(x))


def save_checkpoint(path: str | os.PathLike, state: Any, *, metadata: dict | None = None) -> Path:
    """Write `state` (any pytree of arrays) and a JSON-able `metadata` dict to `path` atomically.

    Returns:
      The path written.
    """
    leaves, treedef = jax.tree.flatten(state)
    stored, keys = {}, {}
    for i, leaf in enumerate(leaves):
        if _is_key(leaf):
            keys[str(i)] = _key_impl_name(leaf)
            leaf = jax.random.key_data(leaf)
        stored[str(i)] = np.asarray(leaf)
    payload = {
        "format": FORMAT,
        "treedef": str(treedef),
        "num_leaves": len(leaves),
        "leaves": stored,
        "key_leaves": json.dumps(keys),
        "metadata": json.dumps(metadata or {}),
    }
    return atomic_write_bytes(path, serialization.msgpack_serialize(payload))


def _read(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {str(p)!r}; train first or pass the run's DIR.")
    try:
        payload = serialization.msgpack_restore(p.read_bytes())
    except Exception as exc:  # msgpack raises several types on garbage
        raise CheckpointError(f"{str(p)!r} is not a readable bellmax checkpoint ({exc}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{str(p)!r} is not a {FORMAT} file.")
    return payload


def read_checkpoint_metadata(path: str | os.PathLike) -> dict:
    """The metadata dict stored with a checkpoint."""
    return json.loads(_read(path)["metadata"])


def load_checkpoint(path: str | os.PathLike, template: Any) -> tuple[Any, dict]:
    """Read a checkpoint into the structure of `template`.

    Args:
      path: a file written by `save_checkpoint`.
      template: a pytree with the saved state's structure; its leaves may be arrays or
        `jax.ShapeDtypeStruct`s (e.g. from `jax.eval_shape`). Shapes and dtypes must match.

    Returns:
      `(state, metadata)`, the state's leaves as jax arrays.

    Raises:
      CheckpointError: missing or corrupt file, or a structure, shape or dtype mismatch.
    """
    payload = _read(path)
    t_leaves, treedef = jax.tree.flatten(template)
    if payload["num_leaves"] != len(t_leaves) or payload["treedef"] != str(treedef):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a different state structure "
            f"({payload['num_leaves']} leaves vs {len(t_leaves)} expected): it was written by "
            "another algorithm or configuration."
        )
    keys = json.loads(payload["key_leaves"])
    out = []
    for i, t in enumerate(t_leaves):
        a = np.asarray(payload["leaves"][str(i)])
        if str(i) in keys:
            if not _is_key(t):
                raise CheckpointError(f"leaf {i} of {str(path)!r} is a PRNG key; template is not.")
            leaf = jax.random.wrap_key_data(a, impl=keys[str(i)])
        else:
            leaf = jax.numpy.asarray(a)
        t_shape, t_dtype = tuple(np.shape(t)), getattr(t, "dtype", None)
        if tuple(leaf.shape) != t_shape or (t_dtype is not None and leaf.dtype != t_dtype):
            raise CheckpointError(
                f"leaf {i} of {str(path)!r} has shape {tuple(leaf.shape)} {leaf.dtype}, the "
                f"state expects {t_shape} {t_dtype}: the configuration changed since it was saved."
            )
        out.append(leaf)
    return jax.tree.unflatten(treedef, out), json.loads(payload["metadata"])
