"""Experiment tracking: a run's per-chunk scalars in TensorBoard or Weights & Biases.

    tracker = make_tracker("tensorboard", "runs/ppo")   # event files in runs/ppo/tensorboard/
    tracker.log(env_steps, {"episode_return": 187.2, "loss": 0.31, "entropy": 0.58})
    tracker.close()

`bellmax train ALGO --log tensorboard|wandb` does this after every chunk of updates; then
`tensorboard --logdir runs/ppo/tensorboard` shows the curves, or `wandb sync` uploads an
offline W&B run. What is logged per chunk is `chunk_scalars(metrics)`: the chunk's mean
episode return and the mean of each of the algorithm's metrics over the chunk's updates and
all seeds, with the environment steps per seed as the step.

- `Tracker`: the protocol, `log(step, scalars)` and `close()`.
- `TensorBoardTracker(logdir)`: TensorBoard event files, written with `tensorboardX`
  (`pip install tensorboardX`; no TensorFlow or PyTorch).
- `WandbTracker(project, dir)`: a Weights & Biases run, offline by default (it never touches
  the network; `wandb sync DIR/wandb/offline-run-*` uploads it later) (`pip install wandb`).
- `make_tracker(kind, out_dir)`: one of them by name (`None` for no tracking);
  `check_tracker(kind)` raises before a run if it could not be made.
- `read_scalars(logdir)`: the scalars of TensorBoard event files, read back without
  TensorBoard (its TFRecord framing, checksums verified).
"""

from __future__ import annotations

import importlib
import math
import os
import secrets
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bellmax.core.errors import BellmaxError, MissingDependencyError, unknown_name
from bellmax.deep.loop import mean_episode_return

__all__ = [
    "EPISODE_FIELDS",
    "PROGRESS",
    "TRACKERS",
    "TensorBoardTracker",
    "Tracker",
    "WandbTracker",
    "check_tracker",
    "chunk_scalars",
    "make_tracker",
    "progress_text",
    "read_scalars",
]

TRACKERS = ("tensorboard", "wandb")
"""The tracker names `make_tracker` (and `bellmax train --log`) accepts."""

EPISODE_FIELDS = ("env_steps", "episode_return_sum", "episode_count", "nonfinite_steps")
"""The per-update episode counters (`EpisodeMetrics`), which `chunk_scalars` does not
average: it turns the return sums and counts into `episode_return`, and leaves out
`nonfinite_steps` (always 0 in a run that goes on: the driver stops at the first)."""


@runtime_checkable
class Tracker(Protocol):
    """Where a run's scalars go: `log` once per chunk, `close` at the end (also on error)."""

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Record `scalars` (name -> value) at `step` (environment steps per seed)."""

    def close(self) -> None:
        """Flush everything to disk and release the files (idempotent)."""


def chunk_scalars(metrics: Mapping[str, np.ndarray]) -> dict[str, float]:
    """The scalars of one chunk of updates, from its metrics `[seeds, updates]`.

    - `episode_return`: mean return of the episodes that ended in the chunk, all seeds
      pooled (`sum(episode_return_sum) / sum(episode_count)`; NaN if none ended), the
      number the progress bar shows;
    - every other metric (losses, entropy, approx_kl, learning_rate, ...): its mean over
      the chunk's updates and all seeds (a bool such as DQN's `learning`: the fraction true).

    Args:
      metrics: name -> array `[seeds, updates]` (or `[updates]`), as the driver collects them.

    Returns:
      name -> float, `episode_return` first, then the metrics in their order.
    """
    out: dict[str, float] = {}
    ret, cnt = metrics.get("episode_return_sum"), metrics.get("episode_count")
    if ret is not None and cnt is not None:
        out["episode_return"] = float(mean_episode_return(np.sum(ret), np.sum(cnt)))
    for name, value in metrics.items():
        if name in EPISODE_FIELDS:
            continue
        value = np.asarray(value)
        if value.size and (np.issubdtype(value.dtype, np.number) or value.dtype == bool):
            out[name] = float(np.mean(value, dtype=np.float64))
    return out


PROGRESS = ("loss", "entropy", "q_mean", "approx_kl")
"""The scalars a progress line shows, the first two an algorithm has (PPO, A2C, REINFORCE:
loss and entropy; DQN, TD3: loss and mean Q)."""


def progress_text(scalars: Mapping[str, float], *, names: tuple[str, ...] = PROGRESS) -> str:
    """A short line of a chunk's scalars for a progress bar: `"loss 0.0312 entropy 0.681"`.

    Args:
      scalars: a chunk's scalars (`chunk_scalars`).
      names: the candidates, in order; the first two present and finite are shown.
    """
    shown = [
        f"{n} {float(scalars[n]):.3g}" for n in names if math.isfinite(scalars.get(n, math.nan))
    ]
    return " ".join(shown[:2])


def _finite(scalars: Mapping[str, float]) -> dict[str, float]:
    """The finite values of `scalars` as floats (NaN: e.g. no episode ended in the chunk)."""
    out = {}
    for name, value in scalars.items():
        value = float(value)
        if math.isfinite(value):
            out[str(name)] = value
    return out


class TensorBoardTracker:
    """Scalars in a TensorBoard event file (`events.out.tfevents.*`) under `logdir`.

    One scalar series per name (tags are the metric names, as in metrics.csv); a value that
    is not finite (a chunk in which no episode ended has no mean return) is left out of its
    series rather than drawn as a gap. Each `log` is one `Event` written and flushed at once
    (tensorboardX's synchronous `EventsWriter`, not its `SummaryWriter`, whose background
    thread writes later), so `tensorboard --logdir` shows a running job and a crash loses
    nothing logged. A resumed run adds a second event file to the same directory; TensorBoard
    joins them.

    Args:
      logdir: directory of the event files (created if missing).

    Raises:
      ImportError: `tensorboardX` is not installed (the message says how to install it).
    """

    def __init__(self, logdir: str | os.PathLike):
        check_tracker("tensorboard")
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        self._event, self._summary = Event, Summary
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        # The name holds the time in seconds; the suffix keeps two files opened within one
        # second (a quick resume) apart.
        suffix = f".{os.getpid()}.{secrets.token_hex(3)}"
        self._writer = EventsWriter(str(self.logdir / "events"), filename_suffix=suffix)
        self.path = Path(self._writer._file_name)
        """The event file."""

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._writer is None:
            raise BellmaxError(f"TensorBoardTracker({str(self.logdir)!r}) is closed.")
        values = [
            self._summary.Value(tag=name, simple_value=value)
            for name, value in _finite(scalars).items()
        ]
        event = self._event(wall_time=time.time(), step=int(step))
        event.summary.CopyFrom(self._summary(value=values))
        self._writer.write_event(event)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> TensorBoardTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class WandbTracker:
    """Scalars in a Weights & Biases run (`wandb` is imported only here, when asked for).

    Offline by default: the run is written under `dir/wandb/offline-run-*` and nothing
    touches the network; `wandb sync` uploads it later. `mode="online"` logs live (it needs
    a `wandb login`). Values that are not finite are left out, as in `TensorBoardTracker`.

    Args:
      project: the W&B project name.
      dir: the directory the run's files go under (its `wandb/` subdirectory).
      mode: `"offline"` (default), `"online"` or `"disabled"` (wandb's modes).
      name: the run's display name (default: wandb's).
      config: settings stored with the run (e.g. the algorithm's Config fields).

    Raises:
      ImportError: `wandb` is not installed (the message says how to install it).
    """

    def __init__(
        self,
        project: str,
        dir: str | os.PathLike,
        *,
        mode: str = "offline",
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ):
        if mode not in ("offline", "online", "disabled"):
            raise ValueError(
                f"WandbTracker mode={mode!r} is not a wandb mode; pick 'offline' (no network), "
                "'online' or 'disabled'."
            )
        check_tracker("wandb")
        import wandb

        self.dir = Path(dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=project,
            dir=str(self.dir),
            mode=mode,
            name=name,
            config=dict(config) if config is not None else None,
        )

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._run is None:
            raise BellmaxError(f"WandbTracker({str(self.dir)!r}) is closed.")
        self._run.log(_finite(scalars), step=int(step))

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None

    def __enter__(self) -> WandbTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_PACKAGES = {
    "tensorboard": (
        "tensorboardX",
        "TensorBoard logging needs the tensorboardX package (no TensorFlow or PyTorch): "
        "pip install tensorboardX, or pip install 'bellmax[tensorboard]'.",
    ),
    "wandb": (
        "wandb",
        "W&B logging needs the wandb package: pip install wandb, or pip install 'bellmax[wandb]'.",
    ),
}


def check_tracker(kind: str | None) -> None:
    """Raise now, before any training, if `make_tracker(kind, ...)` would fail.

    Creates nothing; imports the tracker's package.

    Raises:
      ValueError: an unknown `kind` (the message lists the known ones); ImportError: the
        tracker's package is not installed (the message says how to install it).
    """
    if kind is None or kind == "none":
        return
    if kind not in _PACKAGES:
        raise unknown_name("tracker", str(kind), (*TRACKERS, "none"))
    package, message = _PACKAGES[kind]
    try:
        importlib.import_module(package)
    except ImportError:
        raise MissingDependencyError(message) from None


def make_tracker(
    kind: str | None,
    out_dir: str | os.PathLike,
    *,
    fresh: bool = False,
    project: str = "bellmax",
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Tracker | None:
    """A tracker for a run directory, by name.

    Args:
      kind: `None` or `"none"` (no tracker), `"tensorboard"` (event files in
        `out_dir/tensorboard/`) or `"wandb"` (a W&B run under `out_dir/wandb/`, in the mode
        the `WANDB_MODE` environment variable names, else offline).
      out_dir: the run directory.
      fresh: the run starts from its first update (not resumed): event files already in
        `out_dir/tensorboard/` (a replaced run's) are deleted, so TensorBoard does not draw
        two runs as one. (W&B keeps every run apart by itself.)
      project: the W&B project (wandb only).
      name: the W&B run name (wandb only).
      config: settings stored with the W&B run (wandb only).

    Returns:
      The `Tracker`, or None.

    Raises:
      ValueError: an unknown `kind` (the message lists the known ones); ImportError: the
        tracker's package is not installed (the message says how to install it).
    """
    check_tracker(kind)
    if kind is None or kind == "none":
        return None
    out = Path(out_dir)
    if kind == "tensorboard":
        if fresh:
            for old in (out / "tensorboard").glob("events.out.tfevents.*"):
                old.unlink()
        return TensorBoardTracker(out / "tensorboard")
    mode = os.environ.get("WANDB_MODE") or "offline"
    return WandbTracker(project, out, mode=mode, name=name, config=config)


def read_scalars(logdir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """The scalar series of the TensorBoard event files in `logdir`, without TensorBoard.

    An event file is a sequence of TFRecords (TensorFlow's documented framing: a uint64
    length, a masked CRC-32C of the length, the data, a masked CRC-32C of the data, all
    little-endian), each the bytes of an `Event` protocol buffer; a scalar is a
    `Summary.Value` with a `simple_value`. The files are read in name order (their names
    start with the time they were opened).

    Args:
      logdir: a directory holding `events.out.tfevents.*` files (or one such file).

    Returns:
      tag -> `[(step, value), ...]` in the order written.

    Raises:
      BellmaxError: no event file, or a damaged one (a bad checksum or a truncated
        record; the message names the file).
      ImportError: `tensorboardX` (whose protocol buffer classes decode the events) is not
        installed.
    """
    try:
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.record_writer import masked_crc32c
    except ImportError:
        raise MissingDependencyError(
            "reading TensorBoard event files needs the tensorboardX package: "
            "pip install tensorboardX."
        ) from None
    path = Path(logdir)
    files = [path] if path.is_file() else sorted(path.glob("events.out.tfevents.*"))
    if not files:
        raise BellmaxError(
            f"{str(path)!r} holds no TensorBoard event file (events.out.tfevents.*)."
        )
    out: dict[str, list[tuple[int, float]]] = {}
    for file in files:
        data = file.read_bytes()
        pos = 0
        while pos < len(data):
            if pos + 12 > len(data):
                raise BellmaxError(f"{str(file)!r} ends inside a record header (truncated).")
            header = data[pos : pos + 8]
            length, header_crc = struct.unpack("<QI", data[pos : pos + 12])
            if header_crc != masked_crc32c(header):
                raise BellmaxError(f"{str(file)!r} has a damaged record header at byte {pos}.")
            end = pos + 12 + length
            if end + 4 > len(data):
                raise BellmaxError(f"{str(file)!r} ends inside a record (truncated).")
            body = data[pos + 12 : end]
            (body_crc,) = struct.unpack("<I", data[end : end + 4])
            if body_crc != masked_crc32c(body):
                raise BellmaxError(f"{str(file)!r} has a record with a bad checksum at byte {pos}.")
            pos = end + 4
            event = Event.FromString(body)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, []).append(
                        (int(event.step), float(value.simple_value))
                    )
    return out
