"""Alpha-vector policies on disk: bellmax's `.npz` and pomdp-solve's `.alpha` text format.

`.npz` holds `alphas [K, S]`, `actions [K]` and, when known, `action_names`. The `.alpha`
format of pomdp-solve (Cassandra) is one vector per block: the action index on one line, the
`S` values on the next, blocks separated by a blank line. Both are written atomically.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from bellmax.core.io import atomic_open
from bellmax.pomdp.belief import AlphaVectors, solver_result_hint, x64

__all__ = ["load_alpha", "load_policy", "save_alpha", "save_policy"]


def _finite_alphas(path: str | os.PathLike, vectors: AlphaVectors, what: str) -> np.ndarray:
    """The vectors as float64, or a ValueError when any value is NaN or infinite."""
    if not isinstance(vectors, AlphaVectors):
        raise TypeError(
            f"{what} writes AlphaVectors, got {type(vectors).__name__}."
            f"{solver_result_hint(vectors, what + '(path, {})')}"
        )
    alphas = np.asarray(vectors.alphas, np.float64)
    bad = np.argwhere(~np.isfinite(alphas))
    if bad.size:
        k, s = bad[0]
        raise ValueError(
            f"not writing {str(path)!r}: alpha vector {k} holds {alphas[k, s]} (state {s}); a "
            "policy needs finite values. The solve that made it diverged: check its status, "
            "and rescale rewards so large that their discounted sums overflow."
        )
    return alphas


def save_policy(path: str | os.PathLike, vectors: AlphaVectors, *, action_names=None) -> Path:
    """Write an alpha-vector policy as `.npz` (atomically); returns the path.

    Raises:
      ValueError: a NaN or infinite value in the vectors (nothing is written).
    """
    arrays = {
        "alphas": _finite_alphas(path, vectors, "save_policy"),
        "actions": np.asarray(vectors.actions, np.int64),
    }
    if action_names is not None:
        arrays["action_names"] = np.asarray(list(action_names), dtype=str)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_open(path, "wb") as f:
        f.write(buf.getvalue())
    return Path(path)


def _check(
    alphas: np.ndarray, actions: np.ndarray, where: str, num_states, num_actions
) -> AlphaVectors:
    if alphas.ndim != 2 or actions.shape != (alphas.shape[0],) or alphas.shape[0] == 0:
        raise ValueError(
            f"{where}: expected alphas (K, S) with K >= 1 and actions (K,), got shapes "
            f"{alphas.shape} and {actions.shape}."
        )
    if num_states is not None and alphas.shape[1] != num_states:
        raise ValueError(
            f"{where}: the vectors have {alphas.shape[1]} entries but the POMDP has {num_states} "
            "states; use the policy saved for this problem."
        )
    if not np.all(np.isfinite(alphas)):
        raise ValueError(f"{where}: the alpha vectors hold non-finite values.")
    if np.any(actions < 0) or (num_actions is not None and np.any(actions >= num_actions)):
        allowed = f"in [0, {num_actions})" if num_actions is not None else ">= 0"
        raise ValueError(
            f"{where}: action indices must be {allowed}, got {actions.min()}..{actions.max()}."
        )
    with x64():
        return AlphaVectors(alphas=jnp.asarray(alphas), actions=jnp.asarray(actions))


def _not_a_folder(p: Path) -> None:
    if p.is_dir():
        raise ValueError(
            f"{str(p)!r} is a directory, not a policy file: give the .npz (or .alpha) file that "
            "bellmax pomdp solve FILE --out POLICY.npz wrote."
        )


def load_policy(path: str | os.PathLike, *, num_states=None, num_actions=None) -> AlphaVectors:
    """Read a `.npz` policy written by `save_policy`, checked against the problem's sizes.

    Raises:
      ValueError: missing or unreadable file, missing arrays, sizes that do not match.
    """
    p = Path(path)
    _not_a_folder(p)
    if not p.is_file():
        raise ValueError(
            f"no policy file {str(p)!r}; write one with bellmax pomdp solve FILE --out {p.name}."
        )
    try:
        z = np.load(p, allow_pickle=False)
        single = not isinstance(z, np.lib.npyio.NpzFile)  # a bare .npy array
        if not single:
            with z:
                arrays = {k: np.asarray(z[k]) for k in ("alphas", "actions") if k in z.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        # (NumPy reads a file that is neither .npz nor .npy as a pickle and, with pickles
        # refused, says so: the advice to unpickle it is not for a policy file. A damaged
        # .npz is a zip error.)
        raise ValueError(
            f"{p}: not a readable .npz policy ({type(e).__name__}); give the .npz that "
            "bellmax pomdp solve FILE --out POLICY.npz wrote (or an .alpha file)."
        ) from None
    if single:
        raise ValueError(
            f"{p}: one NumPy array (.npy), not an .npz policy with 'alphas' and 'actions'; give "
            "the .npz that bellmax pomdp solve FILE --out POLICY.npz wrote (or an .alpha file)."
        )
    if len(arrays) != 2:
        raise ValueError(f"{p}: not an alpha-vector policy (needs arrays 'alphas' and 'actions').")
    alphas, actions = arrays["alphas"], arrays["actions"]
    if alphas.dtype.kind not in "iuf":
        raise ValueError(f"{p}: 'alphas' must hold numbers, got an array of {alphas.dtype}.")
    integral = actions.dtype.kind in "iu" or (
        actions.dtype.kind == "f" and np.all(np.isfinite(actions) & (actions == np.round(actions)))
    )
    if not integral:
        raise ValueError(
            f"{p}: 'actions' must hold integer action indices, got an array of {actions.dtype}."
        )
    return _check(
        alphas.astype(np.float64), actions.astype(np.int64), str(p), num_states, num_actions
    )


def save_alpha(path: str | os.PathLike, vectors: AlphaVectors) -> Path:
    """Write pomdp-solve's `.alpha` format (atomically); returns the path.

    Raises:
      ValueError: a NaN or infinite value in the vectors (nothing is written).
    """
    alphas = _finite_alphas(path, vectors, "save_alpha")
    actions = np.asarray(vectors.actions)
    with atomic_open(path, "w") as f:
        for a, v in zip(actions, alphas, strict=True):
            f.write(f"{int(a)}\n{' '.join(repr(float(x)) for x in v)}\n\n")
    return Path(path)


def load_alpha(path: str | os.PathLike, *, num_states=None, num_actions=None) -> AlphaVectors:
    """Read pomdp-solve's `.alpha` format (an action line, then a line of values, per vector).

    Raises:
      ValueError: a malformed file (with its line number) or sizes that do not match.
    """
    p = Path(path)
    _not_a_folder(p)
    if not p.is_file():
        raise ValueError(f"no alpha file {str(p)!r}.")
    text = p.read_text(encoding="utf-8-sig")  # (a BOM, as Windows editors may write)
    lines = [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]
    if len(lines) % 2:
        raise ValueError(f"{p}, line {lines[-1][0]}: an action line without its vector.")
    acts, vecs = [], []
    for (i, a), (j, v) in zip(lines[::2], lines[1::2], strict=True):
        try:
            acts.append(int(a))
        except ValueError:
            raise ValueError(f"{p}, line {i}: expected an action index, found {a!r}.") from None
        try:
            vecs.append([float(x) for x in v.split()])
        except ValueError:
            raise ValueError(
                f"{p}, line {j}: expected the vector's numbers, found {v!r}."
            ) from None
        if len(vecs[-1]) != len(vecs[0]):
            raise ValueError(
                f"{p}, line {j}: {len(vecs[-1])} numbers where the first vector had {len(vecs[0])}."
            )
    if not vecs:
        raise ValueError(f"{p}: no vectors in the file.")
    return _check(np.asarray(vecs), np.asarray(acts, np.int64), str(p), num_states, num_actions)
