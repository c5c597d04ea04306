"""Labelled datasets: observations and the expert's actions, saved as `.npz` (no pickle).

A `Dataset` holds `obs [N, *obs_shape]`, `actions [N, *act_shape]` and, per label, the round
that gathered it and its `source` (0 a visited state, 1 a perturbed copy: the three-cameras
views). `save_dataset` writes atomically (a reader, or a Ctrl-C, sees the old file or the new
one); `load_dataset` reads with `allow_pickle=False`, so a file cannot run code.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from bellmax.core.display import summary_repr
from bellmax.core.errors import BellmaxError
from bellmax.core.io import atomic_open

__all__ = ["DATASET_FORMAT", "Dataset", "DatasetFileError", "load_dataset", "save_dataset"]

DATASET_FORMAT = "bellmax-imitation-dataset/1"
_FIELDS = ("obs", "actions", "rounds", "source")


class DatasetFileError(BellmaxError, ValueError):
    """A dataset file that is missing, damaged or not a bellmax imitation dataset."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Labelled observations (host-side NumPy)."""

    __repr__ = summary_repr

    obs: np.ndarray
    """`[N, *obs_shape]` observations."""
    actions: np.ndarray
    """`[N, *act_shape]` the expert's actions (int32 discrete, float32 continuous)."""
    rounds: np.ndarray
    """`[N]` int32: the round that gathered each label."""
    source: np.ndarray
    """`[N]` int8: 0 a visited state, 1 a perturbed copy (three cameras)."""

    def __post_init__(self):
        n = len(self.obs)
        for name in ("actions", "rounds", "source"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"Dataset.{name} has {len(getattr(self, name))} rows, obs has {n}: "
                    "give one row per label."
                )

    def __len__(self) -> int:
        return len(self.obs)

    @staticmethod
    def empty(obs_shape: tuple[int, ...], act_shape: tuple[int, ...], discrete: bool) -> Dataset:
        """A dataset with no labels yet."""
        return Dataset(
            obs=np.zeros((0, *obs_shape), np.float32),
            actions=np.zeros((0, *act_shape), np.int32 if discrete else np.float32),
            rounds=np.zeros(0, np.int32),
            source=np.zeros(0, np.int8),
        )

    def append(self, obs: Any, actions: Any, *, round_: int, source: int = 0) -> Dataset:
        """A new dataset with these labels added at the end."""
        obs = np.asarray(obs, self.obs.dtype).reshape(-1, *self.obs.shape[1:])
        actions = np.asarray(actions, self.actions.dtype).reshape(-1, *self.actions.shape[1:])
        k = len(obs)
        return Dataset(
            obs=np.concatenate([self.obs, obs]),
            actions=np.concatenate([self.actions, actions]),
            rounds=np.concatenate([self.rounds, np.full(k, round_, np.int32)]),
            source=np.concatenate([self.source, np.full(k, source, np.int8)]),
        )


def save_dataset(path: str | os.PathLike, data: Dataset, **meta: str) -> Path:
    """Write `data` to `path` (`.npz`) atomically; `meta` strings (env, expert) are stored too."""
    arrays = {k: np.asarray(getattr(data, k)) for k in _FIELDS}
    arrays["format"] = np.asarray(DATASET_FORMAT)
    for k, v in meta.items():
        arrays[f"meta_{k}"] = np.asarray(str(v))
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def load_dataset(path: str | os.PathLike) -> tuple[Dataset, dict[str, str]]:
    """Read a dataset written by `save_dataset`: `(dataset, meta)`.

    Raises:
      DatasetFileError: no such file, not an `.npz`, another format, or inconsistent arrays.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetFileError(f"no dataset file at {str(p)!r}; pass a .npz written by bellmax.")
    try:
        with np.load(p, allow_pickle=False) as z:
            fmt = str(z["format"]) if "format" in z.files else None
            if fmt != DATASET_FORMAT:
                raise DatasetFileError(
                    f"{str(p)!r} is not a bellmax imitation dataset (format {fmt!r}, expected "
                    f"{DATASET_FORMAT!r})."
                )
            arrays = {k: np.asarray(z[k]) for k in _FIELDS}
            meta = {k[5:]: str(z[k]) for k in z.files if k.startswith("meta_")}
        return Dataset(**arrays), meta
    except DatasetFileError:
        raise
    except Exception as e:
        raise DatasetFileError(
            f"dataset file {str(p)!r} is damaged or not an .npz ({type(e).__name__}: {e})."
        ) from None
