"""`bellmax reproduce sutton-barto NAME --out DIR`: regenerate a book figure as PNG + JSON."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Literal

import tyro

from bellmax.core.io import check_output_path

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

BOOKS = ("sutton-barto",)


@dataclasses.dataclass(frozen=True)
class ReproduceArgs:
    """Reproduce a published experiment (PNG figures and JSON data); `bellmax reproduce
    sutton-barto --list` names them."""

    book: Annotated[Literal["sutton-barto"], tyro.conf.Positional]
    """Which book: sutton-barto (Reinforcement Learning: An Introduction, 2nd ed.)."""
    name: Annotated[
        str | None,
        tyro.conf.Positional,
        tyro.conf.arg(metavar="[NAME]", help_behavior_hint="(not with --list)"),
    ] = None
    """Experiment to run (see --list); `all` runs every one."""
    out: str = "runs/reproduce"
    """Folder for the figures and data (created if missing)."""
    seed: int = 0
    """Random seed."""
    quick: bool = False
    """Smaller budgets than the book's (a quick look; the numbers are noisier)."""
    list: bool = False
    """List the experiments and exit."""
    json: bool = False
    """Print the result records as one JSON object."""


def _experiments(book: str):
    from bellmax.experiments.sutton_barto import EXPERIMENTS

    return EXPERIMENTS


def run_reproduce(args: ReproduceArgs) -> int:
    from bellmax.core.checks import check_seed
    from bellmax.experiments.base import run_experiment

    experiments = _experiments(args.book)
    if args.list and args.name is not None:
        raise ValueError(
            f"--list lists every experiment; drop {args.name!r} (or drop --list to run it)."
        )
    if args.list:
        if args.json:
            print(
                json.dumps(
                    {
                        n: {"source": e.source, "description": e.description}
                        for n, e in experiments.items()
                    }
                )
            )
        else:
            width = max(len(n) for n in experiments)
            source = max(len(e.source) for e in experiments.values())
            for n, e in experiments.items():
                print(f"{n:<{width}}  {e.source:<{source}}  {e.description}")
        return 0
    if args.name is None:
        raise ValueError(
            "name an experiment (or `all`); `bellmax reproduce sutton-barto --list` lists them."
        )

    check_seed(args.seed)  # as every command's --seed
    check_output_path(args.out, kind="dir", option="--out")
    names = list(experiments) if args.name == "all" else [args.name]
    records = {}
    for name in names:
        record = run_experiment(experiments, name, args.out, seed=args.seed, quick=args.quick)
        records[name] = record
        if not args.json:
            figs = ", ".join(record["figures"])
            print(
                f"{name}: {record['seconds']:.1f} s -> {Path(args.out) / (name + '.json')}, {figs}",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(records if len(records) > 1 else records[names[0]]))
    return 0
