"""The experiment contract: a named function that draws figures and returns JSON data."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from bellmax.core.errors import unknown_name
from bellmax.train.io import atomic_savefig, atomic_write_json


@dataclasses.dataclass
class ExperimentContext:
    """Where an experiment writes, and how big it should be."""

    out_dir: Path
    """Folder for the figures and the JSON file."""
    seed: int = 0
    """Random seed."""
    quick: bool = False
    """Smaller budgets (for tests); the published settings otherwise."""
    figures: list[str] = dataclasses.field(default_factory=list)
    """PNG files written so far (names relative to `out_dir`)."""

    def save(self, fig: Any, name: str) -> Path:
        """Write a Matplotlib figure as `out_dir/name.png`, atomically."""
        path = self.out_dir / f"{name}.png"
        atomic_savefig(fig, path, dpi=110, bbox_inches="tight")
        self.figures.append(path.name)
        return path


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One reproducible experiment."""

    name: str
    """What the user types, e.g. `cliff-walking`."""
    source: str
    """Where it is published, e.g. `Sutton & Barto (2018), Example 6.6`."""
    description: str
    """One line: what it shows."""
    run: Callable[[ExperimentContext], dict[str, Any]]
    """Draws into the context and returns the data (JSON-able)."""


def figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] = (7.0, 4.5), **kw: Any):
    """A Matplotlib figure without pyplot's global state, and its axes."""
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def run_experiment(
    experiments: dict[str, Experiment],
    name: str,
    out_dir: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
) -> dict[str, Any]:
    """Run `experiments[name]`, writing its PNGs and `NAME.json` into `out_dir`.

    Returns the JSON record (data, figures, seconds).
    """
    if name not in experiments:
        raise unknown_name("experiment", name, experiments, hint="`--list` names them.")
    exp = experiments[name]
    out = Path(os.path.expanduser(out_dir))
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder to write the figures into.")
    out.mkdir(parents=True, exist_ok=True)
    ctx = ExperimentContext(out_dir=out, seed=seed, quick=quick)
    t0 = time.perf_counter()
    data = exp.run(ctx)
    record = {
        "experiment": exp.name,
        "source": exp.source,
        "description": exp.description,
        "seed": seed,
        "quick": quick,
        "seconds": round(time.perf_counter() - t0, 3),
        "figures": list(ctx.figures),
        "data": data,
    }
    atomic_write_json(out / f"{exp.name}.json", record)
    return record
