"""Tabular MDPs as `.npz` files (NumPy's zip of named arrays).

The format (every key but `R` and the transitions is optional):

| key | shape | dtype | meaning |
| --- | --- | --- | --- |
| `P` | `(S, A, S)` | real | dense transition probabilities `P[s, a, s']` |
| `P_indices` | `(nnz, 3)` | integer | sparse rows `(s, a, s')`, 0-based (duplicates are summed) |
| `P_values` | `(nnz,)` | real | the probability of each `P_indices` row |
| `R` | `(S, A)` | real | expected reward of taking `a` in `s` |
| `gamma` | `()` | real | discount in `[0, 1]` |
| `terminal` | `(S,)` | bool | absorbing terminal states |
| `initial` | `(S,)` | real | start-state distribution |

Give either `P` or both `P_indices` and `P_values`, never both forms. Arrays are read with
`allow_pickle=False`: object arrays are refused. Every problem with a file raises
`InvalidMDPError` (a `ValueError`) naming the key and the fix; the arrays' contents are then
checked by `TabularMDP` itself. `save_mdp` writes atomically (a temporary file renamed over
the target), so an interrupted save never leaves half a file.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bellmax.core.errors import InvalidMDPError
from bellmax.core.io import atomic_open
from bellmax.core.mdp import TabularMDP

__all__ = ["NPZ_KEYS", "load_mdp", "mdp_from_arrays", "mdp_to_arrays", "save_mdp"]

#: Every key the format knows.
NPZ_KEYS = ("P", "P_indices", "P_values", "R", "gamma", "terminal", "initial")


def _real(name: str, arr: np.ndarray, where: str) -> np.ndarray:
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise InvalidMDPError(
            f"{where}: {name} must hold real numbers (int or float), got dtype {arr.dtype}."
        )
    return arr.astype(np.float64, copy=False)


def mdp_from_arrays(
    arrays: Mapping[str, Any], *, gamma: float | None = None, where: str = "arrays"
) -> TabularMDP:
    """Build a `TabularMDP` from the arrays of the `.npz` format (see the module docstring).

    Args:
      arrays: a mapping with the format's keys.
      gamma: overrides (or supplies) the discount.
      where: how to name the source in error messages (e.g. the file name).

    Raises:
      InvalidMDPError: unknown or missing keys, both transition forms, wrong dtypes or
        shapes, or arrays that are not a valid MDP.
    """
    keys = set(arrays)
    unknown = sorted(keys - set(NPZ_KEYS))
    if unknown:
        raise InvalidMDPError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; the MDP format knows "
            f"{', '.join(NPZ_KEYS)}."
        )
    if "R" not in keys:
        raise InvalidMDPError(f"{where}: missing 'R', the (S, A) array of expected rewards.")
    dense, sparse = "P" in keys, bool(keys & {"P_indices", "P_values"})
    if dense and sparse:
        raise InvalidMDPError(
            f"{where}: has both dense 'P' and sparse 'P_indices'/'P_values'; keep only one form."
        )
    if not dense and not sparse:
        raise InvalidMDPError(
            f"{where}: missing the transitions: give dense 'P' (S, A, S) or sparse "
            "'P_indices' (nnz, 3) with 'P_values' (nnz,)."
        )
    if sparse and not {"P_indices", "P_values"} <= keys:
        missing = "P_values" if "P_indices" in keys else "P_indices"
        raise InvalidMDPError(
            f"{where}: sparse transitions need both P_indices and P_values; missing {missing!r}."
        )
    R = _real("R", np.asarray(arrays["R"]), where)
    if R.ndim != 2:
        raise InvalidMDPError(f"{where}: R must have shape (S, A), got {R.shape}.")
    if gamma is None:
        if "gamma" not in keys:
            raise InvalidMDPError(
                f"{where}: no 'gamma' stored; pass the discount (e.g. --gamma 0.9)."
            )
        g = _real("gamma", np.asarray(arrays["gamma"]), where)
        if g.size != 1:
            raise InvalidMDPError(f"{where}: gamma must be one number, got shape {g.shape}.")
        gamma = float(g.reshape(()))
    extra: dict[str, Any] = {}
    if "terminal" in keys:
        t = np.asarray(arrays["terminal"])
        if t.dtype != bool and not (
            np.issubdtype(t.dtype, np.integer) and np.all((t == 0) | (t == 1))
        ):
            raise InvalidMDPError(f"{where}: terminal must be a bool mask, got dtype {t.dtype}.")
        extra["terminal"] = t.astype(bool)
    if "initial" in keys:
        extra["initial"] = _real("initial", np.asarray(arrays["initial"]), where)
    if dense:
        P = _real("P", np.asarray(arrays["P"]), where)
        return TabularMDP(P, R, gamma, **extra)
    idx = np.asarray(arrays["P_indices"])
    if not np.issubdtype(idx.dtype, np.integer):
        raise InvalidMDPError(
            f"{where}: P_indices must be an integer array of (s, a, s') rows, got dtype {idx.dtype}."
        )
    values = _real("P_values", np.asarray(arrays["P_values"]), where)
    return TabularMDP.from_coo(idx, values, R, gamma, **extra)


def load_mdp(path: str | os.PathLike, *, gamma: float | None = None) -> TabularMDP:
    """Read a `TabularMDP` from an `.npz` file.

    Args:
      path: the file.
      gamma: overrides (or supplies, when the file has none) the discount.

    Returns:
      The validated MDP (sparse if the file stores `P_indices`).

    Raises:
      FileNotFoundError: no such file.
      InvalidMDPError: not an `.npz` archive, pickled/object arrays, or invalid contents.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"no such MDP file: {str(p)!r}. Write one from a TabularMDP with "
            "bellmax.tabular.save_mdp(path, mdp) (a tabular environment gives its own: "
            "env.tabular_mdp(params)), or with numpy.savez(path, P=..., R=..., gamma=...)."
        )
    where = p.name
    try:
        npz = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InvalidMDPError(
            f"{where} is not a readable .npz archive ({type(e).__name__}); save one with "
            "numpy.savez or bellmax.tabular.io.save_mdp."
        ) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise InvalidMDPError(
            f"{where} holds a single array, not an .npz archive of named arrays (P, R, ...); "
            "save one with numpy.savez(path, P=..., R=..., gamma=...)."
        )
    with npz:
        arrays = {}
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except ValueError as e:
                if "allow_pickle" in str(e):
                    raise InvalidMDPError(
                        f"{where}: array {key!r} is a pickled object array, which is refused "
                        "for safety; store plain numeric arrays."
                    ) from None
                raise InvalidMDPError(f"{where}: array {key!r} is corrupt ({e}).") from None
            except MemoryError:  # (a header that declares more than its data holds, or fits)
                raise InvalidMDPError(
                    f"{where}: array {key!r} declares more data than fits in memory; the file "
                    "is corrupt or too large."
                ) from None
            except (OSError, EOFError, zipfile.BadZipFile) as e:
                raise InvalidMDPError(
                    f"{where}: array {key!r} is corrupt ({type(e).__name__})."
                ) from None
    return mdp_from_arrays(arrays, gamma=gamma, where=where)


def mdp_to_arrays(mdp: TabularMDP, *, sparse: bool | None = None) -> dict[str, np.ndarray]:
    """The `.npz` arrays of an MDP.

    Args:
      mdp: the MDP.
      sparse: write `P_indices`/`P_values` (True) or dense `P` (False); default: as stored.
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"expected a TabularMDP, got {type(mdp).__name__}.")
    sparse = mdp.is_sparse if sparse is None else bool(sparse)
    S, A = mdp.shape
    out: dict[str, np.ndarray] = {}
    if sparse:
        # Every stored non-zero, padded slots and overflow alike (memory follows nnz).
        indices, values = mdp.to_sparse().P.to_coo()
        itype = np.int32 if max(S, A) < 2**31 else np.int64
        out["P_indices"] = indices.astype(itype, copy=False)
        out["P_values"] = values
    else:
        out["P"] = np.asarray(mdp.dense_P(), dtype=np.float64)
    out["R"] = np.asarray(mdp.R, dtype=np.float64)
    out["gamma"] = np.asarray(float(mdp.gamma))
    if mdp.terminal is not None:
        out["terminal"] = np.asarray(mdp.terminal, dtype=bool)
    if mdp.initial is not None:
        out["initial"] = np.asarray(mdp.initial, dtype=np.float64)
    return out


def save_mdp(
    path: str | os.PathLike, mdp: TabularMDP, *, sparse: bool | None = None, compress: bool = True
) -> Path:
    """Write an MDP as an `.npz` file, atomically.

    Args:
      path: destination (used as given; `.npz` is the usual suffix).
      mdp: the MDP.
      sparse: store `P_indices`/`P_values` (True) or dense `P` (False); default: as stored.
      compress: zip-compress the arrays.

    Returns:
      The path written.
    """
    if isinstance(path, TabularMDP) and isinstance(mdp, str | os.PathLike):
        raise TypeError(
            f"save_mdp takes (path, mdp): the file first; write save_mdp({str(mdp)!r}, mdp)."
        )
    arrays = mdp_to_arrays(mdp, sparse=sparse)
    save = np.savez_compressed if compress else np.savez
    with atomic_open(path) as f:
        save(f, **arrays)
    return Path(path)
