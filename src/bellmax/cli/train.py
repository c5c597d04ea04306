"""`bellmax train` and `bellmax evaluate`: deep RL from the command line.

    bellmax train ppo --env CartPole-v1 --seeds 4 --total-steps 100000 --out runs/ppo --json
    bellmax train dqn --env gymnasium:CartPole-v1 --learning-rate 1e-3 --out runs/dqn
    bellmax train ppo --out runs/ppo --resume          # continue where the checkpoint stopped
    bellmax evaluate runs/ppo --episodes 20 --json

Every field of the algorithm's `Config` is a flag (`--learning-rate`, `--num-envs`, ...);
the help of each comes from the field's docstring.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import sys
import textwrap
from functools import cache
from typing import Annotated, Any, Union

from tyro.conf import Positional

__all__ = ["EvaluateArgs", "TrainArgs", "build_train_args", "run_evaluate", "run_train"]


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a deep RL agent (dqn, reinforce, a2c, ppo) on any bellmax or Gymnasium env.

    `bellmax train ALGO --env ENV_ID --seeds N --total-steps T [--CONFIG-FIELD VALUE ...]
    --out DIR [--json] [--resume]`. Writes a checkpoint (msgpack, no pickle), metrics.csv,
    metrics.json, learning_curve.png and run.json into DIR; `--json` prints one object with
    final_eval_return, env_steps, seconds and compile_seconds.
    """


#: Options every algorithm's train subcommand has (name, type, default, help).
_COMMON: list[tuple[str, Any, Any, str]] = [
    ("env", str, "CartPole-v1", "Environment id: bellmax, Gymnasium, or module:EnvName-v0."),
    ("seeds", int, 1, "Number of seeds trained at once (seed, seed+1, ...)."),
    ("seed", int, 0, "First seed."),
    ("total_steps", int | None, None, "Environment steps per seed (default: the config's)."),
    ("out", str | None, None, "Run directory (default: runs/train-ALGO-ENV)."),
    ("resume", bool, False, "Continue the run in --out from its last checkpoint."),
    ("eval_episodes", int, 10, "Evaluation episodes per seed at the end."),
    ("chunks", int, 20, "Checkpoints/progress updates per run."),
    (
        "stop_return",
        float | None,
        None,
        "Evaluate after every chunk; stop once every seed's mean return reaches this.",
    ),
    ("json", bool, False, "Print one JSON object (progress still goes to stderr)."),
]


def _field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (`x: int = 1` then `\"\"\"doc\"\"\"`)."""
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


def _algo_args_class(name: str, config_cls: type) -> type:
    import tyro

    fields = []
    taken = set()
    for fname, ftype, default, doc in _COMMON:
        fields.append((fname, Annotated[ftype, tyro.conf.arg(help=doc)], default))
        taken.add(fname)
    docs = _field_docs(config_cls)
    hints = inspect.get_annotations(config_cls, eval_str=True)
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
    import tyro

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


def run_train(args: Any) -> int:
    """`bellmax train ALGO ...`."""
    from bellmax.train.driver import train

    a = args.algo
    name = type(a).algo_name
    config_cls = type(a).config_cls
    values = {
        f.name: getattr(a, f.name)
        for f in dataclasses.fields(config_cls)
        if f.name != "total_timesteps"
    }
    if a.total_steps is not None:
        values["total_timesteps"] = a.total_steps
    config = config_cls(**values)
    if a.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {a.seeds}.")
    if a.eval_episodes < 0:
        raise ValueError(f"--eval-episodes must be >= 0, got {a.eval_episodes}.")
    out = a.out or f"runs/train-{name}-{a.env.replace(':', '_').replace('/', '_')}"
    seeds = tuple(range(a.seed, a.seed + a.seeds))
    with _progress(sys.stderr.isatty()) as progress:
        task = progress.add_task(f"{name} {a.env}", total=None, ret="-")

        def on_chunk(info):
            ret = "-" if info.mean_return != info.mean_return else f"{info.mean_return:.1f}"
            progress.update(task, completed=info.updates_done, total=info.num_updates, ret=ret)

        result = train(
            name,
            config,
            a.env,
            seeds=seeds,
            out_dir=out,
            resume=a.resume,
            chunks=a.chunks,
            eval_episodes=a.eval_episodes,
            on_chunk=on_chunk,
            stop_return=a.stop_return,
        )
    summary = {**result.summary(), "out": out}
    if a.json:
        print(json.dumps(summary))
    else:
        ev = summary["final_eval_return"]
        print(
            f"{name} on {a.env}: {summary['env_steps']} steps x {len(seeds)} seeds in "
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
    import tempfile
    from pathlib import Path

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
