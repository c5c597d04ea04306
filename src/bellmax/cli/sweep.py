"""`bellmax sweep`: train many configurations x seeds, as few compiled programs as possible.

    bellmax sweep ppo --env CartPole-v1 --grid learning_rate=3e-4,1e-3,3e-3,1e-2 --seeds 2
    bellmax sweep ppo --random 16 --space 'learning_rate=loguniform(1e-4,1e-2)' --seeds 2 --json
    bellmax sweep a2c --grid gamma=0.95,0.99 --grid hidden_sizes=64x64,32x32 --out runs/sweep
    bellmax sweep dqn --grid learning_rate=1e-3,3e-3 --set num_envs=4 --set batch_size=128
    bellmax sweep sac --grid tau=0.005,0.02 --grid init_temperature=0.1,1 --seeds 2
    bellmax sweep td3 --grid exploration_noise=0.1,0.3 --grid hidden_sizes=64x64,32x32
    bellmax sweep ppo --grid clip_eps=0.1,0.2,0.3 --backend ray --scheduler asha
    bellmax sweep ppo --grid ent_coef=0,0.01 --backend ray --address HEAD_IP:6379

Numeric hyperparameters (each Config's `HYPERPARAMETERS`: learning rate, discount, loss
weights, ...) are vmapped: their configurations and seeds train as one compiled program.
Other fields (network sizes, num_envs, batch sizes) split the sweep into program groups.
`--backend ray` runs one Ray Tune trial per group (`pip install 'bellmax[ray]'`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Annotated, Literal

import tyro
from tyro.conf import Positional

from bellmax.cli.main import option_for, out_dir_option, plural

__all__ = ["SweepArgs", "run_sweep"]


@dataclasses.dataclass(frozen=True)
class SweepArgs:
    """Sweep a deep RL algorithm's hyperparameters: configurations x seeds, vmapped.

    Every configuration of --grid (and --random draws from --space) with every seed, one
    compiled program per group of configurations that differ only in numeric
    hyperparameters. Prints a table of the trials (the return of a trial whose loss or
    weights went non-finite, or a metric infinite, reads `diverged`; one whose group ASHA
    stopped early, `stopped`; --json: one object with
    `trials` and `best`);
    --out DIR also gets results.csv, results.json and a plot of return against each swept
    field, and each group's checkpoint (the same command resumes an interrupted sweep, also
    on Ray after its driver died, and shows a finished one's results again; --overwrite
    trains it afresh)."""

    algo: Annotated[
        Positional[Literal["ppo", "a2c", "reinforce", "dqn", "sac", "td3"]],
        tyro.conf.arg(metavar="ALGO"),
    ]
    """The algorithm: ppo, a2c, reinforce, dqn, sac or td3."""
    env: Annotated[
        str | None,
        tyro.conf.arg(
            metavar="ENV_ID", help_behavior_hint="(default: CartPole-v1; sac, td3: Pendulum-v1)"
        ),
    ] = None
    """A bellmax or gymnax env id (trials are vmapped, so no Gymnasium ids)."""
    grid: Annotated[
        tuple[str, ...],
        tyro.conf.arg(
            metavar="FIELD=VALUES [FIELD=VALUES ...]", help_behavior_hint="(default: none)"
        ),
    ] = ()
    """Config fields' values, comma-separated; the sweep trains their product
    (e.g. --grid learning_rate=3e-4,1e-3 gamma=0.95,0.99)."""
    random: int = 0
    """Draw this many configurations from the --space distributions (crossed with --grid)."""
    space: Annotated[
        tuple[str, ...],
        tyro.conf.arg(metavar="FIELD=DIST [FIELD=DIST ...]", help_behavior_hint="(default: none)"),
    ] = ()
    """Distributions to draw --random from: loguniform(LOW,HIGH) or uniform(LOW,HIGH)
    (e.g. --space 'learning_rate=loguniform(1e-4,1e-2)', quoted for the shell)."""
    set: Annotated[
        tuple[str, ...],
        tyro.conf.arg(
            metavar="FIELD=VALUE [FIELD=VALUE ...]",
            help_behavior_hint="(default: none, the Config's values)",
        ),
    ] = ()
    """Config fields fixed for every trial (e.g. --set num_envs=16)."""
    seeds: int = 1
    """Seeds per configuration (seed, seed+1, ...)."""
    seed: int = 0
    """The first seed (also seeds the --random draws)."""
    total_steps: Annotated[
        int | None,
        tyro.conf.arg(metavar="INT", help_behavior_hint="(default: the algorithm's Config's)"),
    ] = None
    """Environment steps per trial, rounded down to whole updates (the table's env_steps
    says how many)."""
    chunks: int = 10
    """About how many chunks each group's run is split into (checkpoints, ASHA rungs)."""
    eval_episodes: int = 10
    """Final evaluation episodes per trial."""
    backend: Literal["local", "ray"] = "local"
    """local: groups one after another in this process; ray: one Ray Tune trial per group."""
    address: Annotated[
        str | None,
        tyro.conf.arg(
            metavar="ADDRESS",
            help_behavior_hint="(default: $RAY_ADDRESS if set, else a new local Ray instance)",
        ),
    ] = None
    """With --backend ray: the Ray cluster to join (ray start --head prints it)."""
    scheduler: Literal["none", "asha"] = "none"
    """With --backend ray: asha stops weak groups early (Ray Tune's ASHA, at chunk ends, on
    the evaluation return of --eval-episodes episodes after each chunk; with --eval-episodes
    0, on the chunk's training return)."""
    reuse_actors: Annotated[bool, tyro.conf.arg(help_behavior_hint="(default: actors reused)")] = (
        True
    )
    """With --backend ray: run the groups one after another in the same warm Ray Tune worker
    processes (--no-reuse-actors: a fresh process per group, Tune's default)."""
    out: Annotated[str | None, out_dir_option()] = None
    """Directory for results.csv, results.json, plots and the groups' checkpoints (the same
    sweep run again resumes there; a directory of another sweep is refused). With --backend
    ray, its ray/ folder holds Ray Tune's records, which a resume reads back with pickle:
    resume only sweeps you ran."""
    overwrite: bool = False
    """Replace the results and checkpoints of a sweep in --out (another sweep's, or this
    one's to train it afresh)."""
    json: bool = False
    """Print one JSON object."""


def run_sweep(args: SweepArgs) -> int | None:
    """Run `bellmax sweep` (see `SweepArgs`)."""
    from bellmax.core.checks import check_int, check_seed_range
    from bellmax.core.io import check_output_path, check_run_dir
    from bellmax.deep import get_algorithm
    from bellmax.train.sweep import parse_grid, parse_space, sweep

    check_seed_range(args.seed, args.seeds)  # as every command's --seed
    check_int(args.chunks, "--chunks", low=1)
    check_int(args.random, "--random", low=0)
    check_int(args.eval_episodes, "--eval-episodes", low=0)
    if args.out is not None:
        check_output_path(args.out, kind="dir", option="--out")
    # another command's run (a sweep there resumes, or is refused by `sweep`, named)
    check_run_dir(args.out, "sweep", overwrite=args.overwrite, resume=True)
    algo = get_algorithm(args.algo)
    grid: dict = {}
    for item in args.grid:
        name, values = parse_grid(item, algo.Config)
        if name in grid:
            raise ValueError(f"--grid names {name} twice; give all its values in one --grid.")
        grid[name] = values
    space = [parse_space(item, algo.Config) for item in args.space]
    if not grid and not space:
        raise ValueError(
            "nothing to sweep: give --grid FIELD=V1,V2,... and/or --random N with --space "
            "FIELD=loguniform(LOW,HIGH)."
        )
    fixed: dict = {}
    for item in args.set:
        name, values = parse_grid(item, algo.Config, "--set")
        if len(values) != 1 or name in fixed or name in grid:
            raise ValueError(
                f"--set {item!r}: give one value per field, and a field in --set or --grid, "
                "not both (--grid sweeps several values)."
            )
        fixed[name] = values[0]
    if args.total_steps is not None:
        if "total_timesteps" in fixed or "total_timesteps" in grid:
            where = "--set" if "total_timesteps" in fixed else "--grid"
            raise ValueError(
                f"--total-steps and {where} total_timesteps=... both set the steps per trial; "
                "give one of them."
            )
        fixed["total_timesteps"] = args.total_steps
    if not args.reuse_actors and args.backend != "ray":
        raise ValueError("--no-reuse-actors is a Ray Tune option; add --backend ray or drop it.")
    base = algo.Config(**fixed)
    env = args.env if args.env is not None else getattr(algo, "DEFAULT_ENV", "CartPole-v1")
    shape = {"num_envs", "num_steps", "train_frequency"} & ({*grid} | {s.field for s in space})
    if args.total_steps is not None and not shape:  # as `bellmax train` says it
        from bellmax.cli.train import rounding_note

        note = rounding_note(base, True)
        if note is not None:
            print(f"bellmax: {note.replace(' per seed', ' per trial')}", file=sys.stderr)
    result = sweep(
        args.algo,
        env,
        grid=grid,
        space=space,
        num_random=args.random,
        seeds=range(args.seed, args.seed + args.seeds),
        base=base,
        chunks=args.chunks,
        eval_episodes=args.eval_episodes,
        backend=args.backend,
        address=args.address,
        scheduler=args.scheduler,
        out_dir=args.out,
        sample_seed=args.seed,
        ray_options={"reuse_actors": args.reuse_actors},
        overwrite=args.overwrite,
        names=_option_name,
    )
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    print(_table(summary))
    if result.already_complete:
        print(
            f"--out {args.out} already held this finished sweep: the table shows its results "
            "again. To train it afresh, add --overwrite or give another --out."
        )
    return 0


def _option_name(name: str) -> str:
    """How `bellmax sweep`'s messages name a parameter of `bellmax.train.sweep.sweep` or a
    Config field: by this command's option that sets it (`--out`, `--scheduler`,
    `--total-steps`); any other field, set with --grid or --set FIELD=..., by itself."""
    if name in _SWEEP_OPTIONS:
        return _SWEEP_OPTIONS[name]
    return option_for(name) if name == "total_timesteps" else name


#: `bellmax.train.sweep.sweep`'s parameters that this command sets under another name.
_SWEEP_OPTIONS = {
    "out_dir": "--out",
    "num_random": "--random",
    **{p: f"--{p}" for p in ("grid", "space", "scheduler", "address", "backend")},
}


def _table(summary: dict) -> str:
    swept = summary["swept"]
    head = ["trial", "group", *swept, "seed", "return", "env_steps", "restarted"]
    rows = []
    for t in summary["trials"]:
        ret = t["final_eval_return"]
        shown = (
            "diverged"
            if t["diverged"]
            else "stopped"
            if t.get("stopped")
            else "-"
            if ret is None
            else f"{ret:.1f}"
        )
        rows.append(
            [str(t["index"]), str(t["group"])]
            + [_fmt(t["config"].get(k)) for k in swept]
            + [str(t["seed"]), shown, str(t["env_steps"])]
            + ["yes" if t["restarted"] else "no"]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    best = summary["best"]
    if best is not None:
        cfg = " ".join(f"{k}={_fmt(v)}" for k, v in best["config"].items())
        lines.append(f"best: {cfg}: mean final return {best['mean_final_eval_return']:.1f}")
    programs, groups = summary["programs"], len(summary["groups"])
    lines.append(f"{plural(len(rows), 'trial')}, {plural(groups, 'group')}, "
                 f"{plural(programs, 'program')} compiled, {summary['seconds']:.1f} s")  # fmt: skip
    diverged = sum(bool(t["diverged"]) for t in summary["trials"])
    if diverged:
        lines.append(
            f"{plural(diverged, 'trial')} diverged (a non-finite loss or weight, or an "
            "infinite metric; not evaluated): lower learning_rate."
        )
    cut = [t["index"] for t in summary["trials"] if t.get("eval_episodes_cut_off")]
    if cut:
        from bellmax.deep.evaluate import MAX_STEPS

        lines.append(
            f"{plural(len(cut), 'trial')} ({', '.join(map(str, cut))}) had evaluation episodes "
            f"that had not ended after {MAX_STEPS:,} steps (the evaluation's cap): their "
            "returns so far are in the mean (eval_episodes_cut_off)."
        )
    stopped = sum(bool(t.get("stopped")) for t in summary["trials"])
    if stopped:
        lines.append(
            f"{plural(stopped, 'trial')} stopped early by ASHA (a group whose best return at a "
            "chunk's end fell below that rung's cutoff; no final evaluation)."
        )
    return "\n".join(lines)


def _fmt(x: object) -> str:
    if isinstance(x, list | tuple):
        return "x".join(str(v) for v in x)
    return f"{x:g}" if isinstance(x, float) else str(x)
