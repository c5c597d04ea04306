"""Checkpoints: any pytree of arrays (a whole `TrainState`) to one file, safely and exactly.

The format is msgpack through `flax.serialization` (no pickle: loading a checkpoint never
runs code). Leaves are stored in tree order as raw arrays, bit for bit; typed PRNG keys are
stored as their key data with the key implementation's name. Loading needs a template with
the same tree structure (the state `init` returns, or `jax.eval_shape(init, ...)` of it), so
a checkpoint can never be poured into a differently shaped state unnoticed.

A file is an envelope `{format, bellmax_version, sha256, body}` whose body holds the leaves
and the metadata; the SHA-256 of the body is checked on every read, so a file damaged after
it was written (truncated, bytes changed) is refused with a message naming it, as is a file
in another format version, never loaded half-right. Files are written atomically: a crash
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

from bellmax import __version__
from bellmax.core.errors import BellmaxError
from bellmax.train.io import atomic_write_bytes

__all__ = [
    "CheckpointError",
    "checkpoint_digest",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
]

FORMAT = "bellmax-checkpoint/2"
_FAMILY = "bellmax-checkpoint/"


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
    body = serialization.msgpack_serialize(
        {
            "treedef": str(treedef),
            "num_leaves": len(leaves),
            "leaves": stored,
            "key_leaves": json.dumps(keys),
            "metadata": json.dumps(metadata or {}),
        }
    )
    envelope = {
        "format": FORMAT,
        "bellmax_version": __version__,
        "sha256": hashlib.sha256(body).hexdigest(),
        "body": body,
    }
    return atomic_write_bytes(path, serialization.msgpack_serialize(envelope))


def _envelope(path: str | os.PathLike) -> tuple[dict, str, str]:
    """`(envelope, damaged, fix)` of a checkpoint whose format and checksum are right."""
    p = Path(path)
    if not p.is_file():
        if p.exists():
            raise CheckpointError(f"{str(p)!r} is not a file; pass a checkpoint file or run DIR.")
        raise CheckpointError(f"no checkpoint at {str(p)!r}; train first or pass the run's DIR.")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {str(p)!r}: {e.strerror or e}.") from None
    if not data:
        raise CheckpointError(
            f"checkpoint {str(p)!r} is empty (0 bytes): it was damaged after it was written; "
            "delete it to start the run again."
        )
    damaged = (
        f"checkpoint {str(p)!r} is damaged ({len(data)} bytes: truncated or overwritten) or "
        "not a bellmax checkpoint"
    )
    fix = "delete it to start the run again, or restore it from a copy"
    try:
        envelope = serialization.msgpack_restore(data)
    except Exception as exc:  # msgpack raises several types on garbage and truncation
        raise CheckpointError(f"{damaged}: it cannot be decoded ({_short(exc)}); {fix}.") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("format"), str):
        raise CheckpointError(f"{damaged}: it has no format tag; {fix}.")
    fmt = envelope["format"]
    if fmt != FORMAT:
        written = envelope.get("bellmax_version")
        by = f"bellmax {written}" if isinstance(written, str) else "another bellmax version"
        if fmt.startswith(_FAMILY):
            raise CheckpointError(
                f"checkpoint {str(p)!r} was written by {by} in format {fmt!r}; this bellmax "
                f"({__version__}) reads {FORMAT!r} only: evaluate it with the bellmax that wrote "
                "it, or train the run anew (--overwrite)."
            )
        raise CheckpointError(f"{str(p)!r} is not a bellmax checkpoint (format {fmt!r}).")
    body = envelope.get("body")
    if not isinstance(body, bytes) or envelope.get("sha256") != hashlib.sha256(body).hexdigest():
        raise CheckpointError(
            f"checkpoint {str(p)!r} is damaged: its contents do not match the checksum stored "
            "with them (bytes changed after it was written); delete it to start the run again."
        )
    return envelope, damaged, fix


def _read(path: str | os.PathLike) -> dict:
    """The decoded body of a checkpoint, after checking its format and checksum."""
    envelope, damaged, fix = _envelope(path)
    body = envelope["body"]
    try:
        payload = serialization.msgpack_restore(body)
        int(payload["num_leaves"]), str(payload["treedef"]), payload["leaves"]
        json.loads(payload["key_leaves"]), json.loads(payload["metadata"])
    except Exception as exc:
        raise CheckpointError(
            f"{damaged}: its body is unreadable ({_short(exc)}); {fix}."
        ) from None
    payload["bellmax_version"] = envelope.get("bellmax_version")
    return payload


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def checkpoint_digest(path: str | os.PathLike) -> str:
    """The SHA-256 (hex) of a checkpoint's contents, checked against them: it names one
    committed state (a policy file records the checkpoint it was written with).

    Raises:
      CheckpointError: a missing, damaged or other-format file.
    """
    return _envelope(path)[0]["sha256"]


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
    written = payload.get("bellmax_version")
    other = (
        f" (it was written by bellmax {written}, this is {__version__})"
        if written and written != __version__
        else ""
    )
    if payload["num_leaves"] != len(t_leaves) or payload["treedef"] != str(treedef):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a different state structure "
            f"({payload['num_leaves']} leaves vs {len(t_leaves)} expected): it was written by "
            f"another algorithm, configuration or bellmax version{other}."
        )
    keys = json.loads(payload["key_leaves"])
    out = []
    for i, t in enumerate(t_leaves):
        if str(i) not in payload["leaves"]:
            raise CheckpointError(f"checkpoint {str(path)!r} is damaged: leaf {i} is missing.")
        a = np.asarray(payload["leaves"][str(i)])
        if str(i) in keys:
            if not _is_key(t):
                raise CheckpointError(f"leaf {i} of {str(path)!r} is a PRNG key; template is not.")
            try:
                leaf = jax.random.wrap_key_data(a, impl=keys[str(i)])
            except Exception as exc:
                raise CheckpointError(
                    f"leaf {i} of {str(path)!r} is a PRNG key this jax cannot rebuild "
                    f"({_short(exc)})."
                ) from None
        else:
            leaf = jax.numpy.asarray(a)
        t_shape, t_dtype = tuple(np.shape(t)), getattr(t, "dtype", None)
        widths = {
            np.dtype(np.float32),
            np.dtype(np.float64),
            np.dtype(np.int32),
            np.dtype(np.int64),
        }
        if (
            str(i) not in keys
            and tuple(np.shape(a)) == t_shape
            and t_dtype is not None
            and {np.dtype(a.dtype), np.dtype(t_dtype)} <= widths
            and np.dtype(a.dtype).kind == np.dtype(t_dtype).kind
            and np.dtype(a.dtype) != np.dtype(t_dtype)
        ):
            mode = "on" if np.dtype(a.dtype).itemsize == 8 else "off"
            raise CheckpointError(
                f"leaf {i} of {str(path)!r} is {a.dtype} where this process makes "
                f"{t_dtype}: the checkpoint was saved with JAX's 64-bit mode {mode} "
                f"(jax_enable_x64, JAX_ENABLE_X64), this process has it "
                f"{'off' if mode == 'on' else 'on'}. Resume it with the mode it was saved in."
            )
        if tuple(leaf.shape) != t_shape or (t_dtype is not None and leaf.dtype != t_dtype):
            raise CheckpointError(
                f"leaf {i} of {str(path)!r} has shape {tuple(leaf.shape)} {leaf.dtype}, the "
                f"state expects {t_shape} {t_dtype}: the configuration changed since it was "
                f"saved{other}."
            )
        out.append(leaf)
    return jax.tree.unflatten(treedef, out), json.loads(payload["metadata"])
