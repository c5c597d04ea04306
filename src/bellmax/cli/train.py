"""`bellmax train` and `bellmax evaluate`: deep RL from the command line.

    bellmax train ppo --env CartPole-v1 --seeds 4 --total-steps 100000 --out runs/ppo --json
    bellmax train dqn --env gymnasium:CartPole-v1 --learning-rate 1e-3 --out runs/dqn
    bellmax train ppo --out runs/ppo --resume          # continue where the checkpoint stopped
    bellmax train ppo --out runs/ppo --overwrite       # replace that run with a new one
    bellmax evaluate runs/ppo --episodes 20 --json

Every field of the algorithm's `Config` is a flag (`--learning-rate`, `--num-envs`, ...);
the help of each comes from the field's docstring.

`--resume` alone continues a run with the settings stored in its `run.json` (algorithm, env,
seeds, total steps, chunks, every Config field); an option set to something other than its
default that differs from the stored value is refused, named (`learning_rate: 0.001 in the
run, 0.003 given`). An option left at its default counts as not given. On a directory that
holds no run yet, `--resume` starts it, so the same command can be rerun after any crash.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import sys
import tempfile
import textwrap
import typing
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Union

import tyro
from tyro.conf import Positional

from bellmax.core.io import check_output_path

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = ["EvaluateArgs", "TrainArgs", "build_train_args", "run_evaluate", "run_train"]


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a deep RL agent (dqn, reinforce, a2c, ppo) on any bellmax or Gymnasium env.

    `bellmax train ALGO --env ENV_ID --seeds N --total-steps T [--CONFIG-FIELD VALUE ...]
    --out DIR [--json] [--resume | --overwrite]`. Writes a checkpoint (msgpack, no pickle),
    metrics.csv, metrics.json, learning_curve.png and run.json into DIR; `--json` prints one
    object with final_eval_return, env_steps, seconds and compile_seconds. A DIR that holds a
    run is refused unless --resume (continue it with its stored settings) or --overwrite.
    """


#: Options every algorithm's train subcommand has (name, type, default, help).
_COMMON: list[tuple[str, Any, Any, str]] = [
    ("env", str, "CartPole-v1", "Environment id: bellmax, Gymnasium, or module:EnvName-v0."),
    ("seeds", int, 1, "Number of seeds trained at once (seed, seed+1, ...)."),
    ("seed", int, 0, "First seed."),
    ("total_steps", int | None, None, "Environment steps per seed (default: the config's)."),
    ("out", str | None, None, "Run directory (default: runs/train-ALGO-ENV)."),
    (
        "resume",
        bool,
        False,
        "Continue the run in --out from its last checkpoint, with its stored settings "
        "(starts it if --out holds no run yet).",
    ),
    ("overwrite", bool, False, "Replace the run --out holds (its checkpoint and outputs)."),
    ("eval_episodes", int, 10, "Evaluation episodes per seed at the end."),
    ("chunks", int, 20, "Checkpoints/progress updates per run (>= 1)."),
    (
        "stop_return",
        float | None,
        None,
        "Evaluate after every chunk; stop once every seed's mean return reaches this.",
    ),
    ("json", bool, False, "Print one JSON object (progress still goes to stderr)."),
]


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for a, b in itertools.pairwise(body):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (`x: int = 1` then `\"\"\"doc\"\"\"`), the
    class's own over those of its bases (a config may take shared fields from a base class)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object:
            docs.update(_own_field_docs(klass))
    return docs


def _algo_args_class(name: str, config_cls: type) -> type:
    fields = []
    taken = set()
    for fname, ftype, default, doc in _COMMON:
        fields.append((fname, Annotated[ftype, tyro.conf.arg(help=doc)], default))
        taken.add(fname)
    docs = _field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if f.name == "total_timesteps" or f.name in taken:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        ftype = hints.get(f.name, f.type)
        fields.append((f.name, Annotated[ftype, tyro.conf.arg(help=docs.get(f.name, ""))], default))
    cls = dataclasses.make_dataclass(
        f"Train{name.upper()}Args",
        [(n, t, dataclasses.field(default=d)) for n, t, d in fields],
        frozen=True,
    )
    cls.__doc__ = f"Train {name} ({(config_cls.__doc__ or '').strip().splitlines()[0]})"
    cls.algo_name = name
    cls.config_cls = config_cls
    return cls


@cache
def build_train_args() -> type:
    """The real `train` options: one subcommand per algorithm, each with its Config's fields."""
    from bellmax.deep import ALGORITHMS, get_algorithm

    members = []
    for name in ALGORITHMS:
        config_cls = get_algorithm(name).Config
        members.append(Annotated[_algo_args_class(name, config_cls), tyro.conf.subcommand(name)])
    algo_type = Union[tuple(members)]  # noqa: UP007 (runtime Union)
    return dataclasses.make_dataclass(
        "TrainCommand", [("algo", algo_type)], frozen=True, bases=(TrainArgs,)
    )


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} updates"),
        TextColumn("return {task.fields[ret]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def _check_options(a: Any) -> None:
    """Refuse nonsense values of the common options, naming the option and the fix."""
    if a.seeds < 1:
        raise ValueError(f"--seeds must be >= 1 (the number of seeds trained), got {a.seeds}.")
    if a.chunks < 1:
        raise ValueError(
            f"--chunks must be >= 1 (how many checkpoints the run is split into), got {a.chunks}."
        )
    if a.eval_episodes < 0:
        raise ValueError(
            f"--eval-episodes must be >= 0 (0 skips the final evaluation), got {a.eval_episodes}."
        )
    if a.total_steps is not None and a.total_steps < 1:
        raise ValueError(f"--total-steps must be >= 1, got {a.total_steps}.")
    if a.resume and a.overwrite:
        raise ValueError(
            "--resume and --overwrite exclude each other: --resume continues the run in --out, "
            "--overwrite replaces it; pick one."
        )


def _settings(a: Any, name: str, *, only_given: bool) -> dict[str, Any]:
    """The run settings the options describe (driver.SETTINGS' keys).

    With `only_given`, just the options set to something other than their default (the
    algorithm, a subcommand, is always given).
    """
    defaults = {f.name: f.default for f in dataclasses.fields(type(a))}

    def given(*names: str) -> bool:
        return not only_given or any(getattr(a, n) != defaults[n] for n in names)

    config_cls = type(a).config_cls
    out: dict[str, Any] = {"algo": name, "config": {}}
    if given("env"):
        out["env"] = a.env
    if given("seed", "seeds"):
        out["seeds"] = list(range(a.seed, a.seed + a.seeds))
    for key in ("chunks", "eval_episodes", "stop_return"):
        if given(key):
            out[key] = getattr(a, key)
    for f in dataclasses.fields(config_cls):
        if f.name == "total_timesteps":
            if a.total_steps is not None:
                out["config"]["total_timesteps"] = a.total_steps
        elif given(f.name):
            out["config"][f.name] = getattr(a, f.name)
    if not only_given and "total_timesteps" not in out["config"]:
        field = next(f for f in dataclasses.fields(config_cls) if f.name == "total_timesteps")
        out["config"]["total_timesteps"] = field.default
    return out


def run_train(args: Any) -> int:
    """`bellmax train ALGO ...`."""
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import config_from_dict, read_run, settings_differences, train

    a = args.algo
    name = type(a).algo_name
    out = a.out or f"runs/train-{name}-{a.env.replace(':', '_').replace('/', '_')}"
    check_output_path(out, kind="dir", option="--out")
    _check_options(a)
    settings = _settings(a, name, only_given=False)
    stored = read_run(out) if a.resume else None
    if stored is not None:
        diffs = settings_differences(stored, _settings(a, name, only_given=True))
        if stored["algo"] != name:
            raise ValueError(
                f"cannot resume {out!r}: {diffs[0]}; resume it as `bellmax train "
                f"{stored['algo']} --out {out} --resume`, or start anew with --overwrite."
            )
        if diffs:
            raise ValueError(
                f"cannot resume {out!r} with other settings: {'; '.join(diffs)}. Leave those "
                "options out (--resume alone continues with the run's settings), or start anew "
                "with --overwrite or another --out."
            )
        settings = {k: stored[k] for k in settings}
    elif a.resume:
        print(f"bellmax: {out!r} holds no run yet; starting it.", file=sys.stderr)
    algo = get_algorithm(name)
    if stored is not None:
        config = config_from_dict(algo, settings["config"], source=repr(out))
    else:
        config = type(a).config_cls(**settings["config"])
    env, seeds = settings["env"], tuple(settings["seeds"])
    with _progress(sys.stderr.isatty()) as progress:
        task = progress.add_task(f"{name} {env}", total=None, ret="-")

        def on_chunk(info):
            ret = "-" if info.mean_return != info.mean_return else f"{info.mean_return:.1f}"
            progress.update(task, completed=info.updates_done, total=info.num_updates, ret=ret)

        result = train(
            name,
            config,
            env,
            seeds=seeds,
            out_dir=out,
            resume=a.resume,
            overwrite=a.overwrite,
            chunks=settings["chunks"],
            eval_episodes=settings["eval_episodes"],
            on_chunk=on_chunk,
            stop_return=settings["stop_return"],
        )
    summary = {**result.summary(), "out": out}
    if a.json:
        print(json.dumps(summary))
    else:
        ev = summary["final_eval_return"]
        print(
            f"{name} on {env}: {summary['env_steps']} steps x {len(seeds)} seeds in "
            f"{summary['seconds']:.1f} s (+{summary['compile_seconds']:.1f} s compile); "
            + (f"final evaluation return {ev:.1f}" if ev is not None else "not evaluated")
            + f"; outputs in {out}/"
        )
    return 0


@dataclasses.dataclass(frozen=True)
class EvaluateArgs:
    """Reload a `bellmax train` run's checkpoint and evaluate its policies.

    `bellmax evaluate DIR --episodes N [--env ENV_ID] [--json]`.
    """

    run_dir: Positional[str]
    """The --out directory of a `bellmax train` run."""
    episodes: int = 10
    """Evaluation episodes per seed."""
    env: str | None = None
    """Evaluate on another env id with the same spaces (default: the training env)."""
    json: bool = False
    """Print one JSON object."""


def run_evaluate(args: EvaluateArgs) -> int:
    """`bellmax evaluate DIR`."""
    from bellmax.train.driver import evaluate_checkpoint

    res = evaluate_checkpoint(args.run_dir, episodes=args.episodes, env=args.env)
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"{res['algo']} on {res['env']}: mean return {res['mean_return']:.1f} "
            f"(+-{res['std_return']:.1f}) over {res['episodes']} episodes x "
            f"{len(res['seeds'])} seeds"
        )
    return 0


def tour_section(ctx: Any) -> None:
    """The tour's deep-RL section: PPO learns CartPole-v1; its learning curve and timings."""
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import train

    algo = get_algorithm("ppo")
    steps = ctx.size(100_000, 8_192)
    config = algo.Config(total_timesteps=steps)
    ctx.report.section(
        "Deep RL",
        f"PPO (clipped objective, GAE, rl-zoo's CartPole settings) trains on CartPole-v1 for "
        f"{steps} environment steps, the whole loop (acting, storing, learning) one jitted "
        "`lax.scan`. `bellmax train {dqn,reinforce,a2c,ppo} --env ENV_ID` does the same for any "
        "bellmax or Gymnasium environment, with checkpoints and exact resuming.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        res = train(
            algo,
            config,
            "CartPole-v1",
            seeds=(ctx.seed,),
            out_dir=tmp,
            chunks=10,
            eval_episodes=ctx.size(10, 2),
            algo_name="ppo",
        )
        ctx.report.image(
            Path(tmp) / "learning_curve.png",
            f"Training episode returns (500 is the maximum). Final evaluation "
            f"(greedy policy): {res.final_eval_return:.1f}.",
        )
    ctx.report.table(
        ["env steps", "training s", "compile s", "final evaluation return"],
        [[res.env_steps, res.seconds, res.compile_seconds, res.final_eval_return]],
    )
    ctx.report.summary["ppo_cartpole_final_eval_return"] = res.final_eval_return
    ctx.report.summary["ppo_cartpole_train_seconds"] = round(res.seconds, 3)
    ctx.report.summary["ppo_cartpole_compile_seconds"] = round(res.compile_seconds, 3)
