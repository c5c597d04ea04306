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
default that differs from the stored value is refused, named (`--learning-rate: 0.001 in the
run, 0.003 given`). An option left at its default counts as not given. On a directory that
holds no run yet, `--resume` starts it, so the same command can be rerun after any crash.

`--config RUN.json` (or the run's directory) runs a finished run again with the settings it
recorded: on the same machine, the same final evaluation. Options given on the command line
override the file's values, each override named in one line on stderr. Every bool option has
both forms, `--anneal-lr` and `--no-anneal-lr`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import tempfile
import typing
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import tyro
from tyro.conf import Positional

from bellmax.cli.main import changed_fields, field_docs, option_for, plural
from bellmax.core.io import RUN_JSON, check_output_path, check_run_dir

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = [
    "EvaluateArgs",
    "TrainArgs",
    "build_train_args",
    "rounding_note",
    "run_evaluate",
    "run_train",
]


@dataclasses.dataclass(frozen=True)
class TrainArgs:
    """Train a deep RL agent (dqn, reinforce, a2c, ppo, sac, td3) on any bellmax or Gymnasium env.

    `bellmax train ALGO --env ENV_ID --seeds N --total-steps T [--CONFIG-FIELD VALUE ...]
    --out DIR [--json] [--resume | --overwrite] [--log tensorboard|wandb]`. Writes a
    checkpoint (msgpack, no pickle), metrics.csv, metrics.json, learning_curve.png and
    run.json into DIR; `--json` prints one object with final_eval_return, env_steps (from
    the run's start), seconds and compile_seconds (this process's; after a --resume,
    resumed_at_updates says where it took over, and seconds_total and
    compile_seconds_total count the whole run). A DIR that holds a run is refused unless
    --resume (continue it with its stored settings) or --overwrite. `--log` also sends each
    chunk's scalars (mean return, losses, entropy, approximate KL, learning rate, ...) to
    TensorBoard event files in DIR/tensorboard/ or to an offline W&B run in DIR/wandb/.

    `bellmax train ALGO --config DIR/run.json --out DIR2` runs a run again with its recorded
    settings (options given override them).
    """


#: Options every algorithm's train subcommand has (name, type, default, help).
_COMMON: list[tuple[str, Any, Any, str]] = [
    (
        "config",
        str | None,
        None,
        "A run.json written by `bellmax train` (or its run directory): train again with its "
        "settings (env, seeds, every Config field, chunks, evaluation); options given here "
        "override them.",
    ),
    ("env", str, "CartPole-v1", "Environment id: bellmax, Gymnasium, or module:EnvName-v0."),
    (
        "seeds",
        int,
        1,
        "Number of seeds trained at once (seed, seed+1, ...). One seed runs unbatched: its "
        "numbers match that seed's in a run of several only up to rounding, then drift.",
    ),
    ("seed", int, 0, "First seed."),
    (
        "total_steps",
        int | None,
        None,
        "Environment steps per seed, rounded down to whole updates (a note says so).",
    ),
    ("out", str | None, None, "Run directory."),
    (
        "resume",
        bool,
        False,
        "Continue the run in --out from its last checkpoint, with its stored settings "
        "(starts it if --out holds no run yet); the result is the uninterrupted run's, bit "
        "for bit, except on Gymnasium envs (gymnasium:ID), whose episodes restart.",
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
    ("json", bool, False, "Print one JSON object (progress, on a terminal, goes to stderr)."),
    (
        "log",
        Literal["tensorboard", "wandb"] | None,
        None,
        "Also log each chunk's mean return and metric means (losses, entropy, approx_kl, "
        "learning_rate, ...) at its env steps: tensorboard writes OUT/tensorboard/ (needs "
        "tensorboardX), wandb an offline run in OUT/wandb/ (needs wandb; WANDB_MODE=online "
        "logs live).",
    ),
]


#: Metavars of the options that may be left unset (tyro would show `{None}|INT`).
_METAVARS = {
    "config": "RUN.json",
    "total_steps": "INT",
    "out": "DIR",
    "stop_return": "FLOAT",
    "log": "{tensorboard,wandb}",
}
#: What a Config field left at None means, shown as its default (tyro would show `None`).
_NONE_MEANS = {
    "target_entropy": "(default: -act_dim continuous, target_entropy_scale * log n discrete)",
}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _arg(name: str, ftype: Any, default: Any, doc: str, hint: str | None = None) -> Any:
    """A field's type annotated with its help: one paragraph, and for a bool option (which
    has both forms, `--x` and `--no-x`) the default named as the form that gives it."""
    doc = " ".join(doc.split())
    if typing.get_origin(ftype) is tuple and default:  # several values, space-separated
        example = f"e.g. {_option(name)} {' '.join(map(str, default))}"
        if name == "hidden_sizes":  # the option alone parses as (), which trains
            example += f"; {_option(name)} alone: no hidden layer, a linear network"
        doc = f"{doc.rstrip('.')} ({example})."
    if ftype is bool:
        hint = f"(default: {_option(('' if default else 'no_') + name)})"
        doc = doc.replace("(False: ", f"({_option('no_' + name)}: ")
        doc = doc.replace("(True: ", f"({_option(name)}: ")
    metavar = _METAVARS.get(name)
    plain = [t for t in typing.get_args(ftype) if t is not type(None)]
    if metavar is None and default is None and len(plain) == 1 and plain[0] in (int, float, str):
        metavar = plain[0].__name__.upper()  # FLOAT, not tyro's `{None}|FLOAT`
    return Annotated[ftype, tyro.conf.arg(help=doc, metavar=metavar, help_behavior_hint=hint)]


def _algo_args_class(name: str, config_cls: type) -> type:
    config_fields = {f.name: f for f in dataclasses.fields(config_cls)}
    total = config_fields["total_timesteps"].default
    common_hints = {
        "config": "(default: none)",
        "total_steps": f"(default: the config's, {total})",
        "out": f"(default: runs/train-{name}-ENV)",
        "stop_return": "(default: none, train to the end)",
        "log": "(default: none)",
    }
    fields = []
    taken = set()
    # an algorithm module may name its own default env (SAC/TD3: Pendulum-v1)
    env_default = getattr(sys.modules.get(config_cls.__module__), "DEFAULT_ENV", None)
    for fname, ftype, default, doc in _COMMON:
        if fname == "env" and env_default is not None:
            default = env_default
        fields.append((fname, _arg(fname, ftype, default, doc, common_hints.get(fname)), default))
        taken.add(fname)
    docs = field_docs(config_cls)
    hints = typing.get_type_hints(config_cls)
    for f in config_fields.values():
        if f.name == "total_timesteps" or f.name in taken:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        ftype = hints.get(f.name, f.type)
        hint = _NONE_MEANS.get(f.name) if default is None else None
        fields.append((f.name, _arg(f.name, ftype, default, docs.get(f.name, ""), hint), default))
    cls = dataclasses.make_dataclass(
        f"Train{name.upper()}Args",
        [(n, t, dataclasses.field(default=d)) for n, t, d in fields],
        frozen=True,
    )
    cls.__doc__ = _algo_description(name, config_cls)
    cls.algo_name = name
    cls.config_cls = config_cls
    return cls


def _algo_description(name: str, config_cls: type) -> str:
    """`Train PPO on any bellmax or Gymnasium env. Config: PPO hyperparameters (...).`"""
    paragraphs = inspect.cleandoc(config_cls.__doc__ or "").split("\n\n")
    summary = " ".join(paragraphs[0].split())
    text = f"Train {name.upper()} on any bellmax or Gymnasium env."
    return f"{text} Config: {summary}" if summary else text


@cache
def build_train_args() -> type:
    """The real `train` options: one subcommand per algorithm, each with its Config's fields."""
    from bellmax.deep import ALGORITHMS, get_algorithm

    members = []
    for name in ALGORITHMS:
        config_cls = get_algorithm(name).Config
        cls = _algo_args_class(name, config_cls)
        members.append(Annotated[cls, tyro.conf.subcommand(name, description=cls.__doc__)])
    algo_type = Union[tuple(members)]  # noqa: UP007 (runtime Union)
    command = dataclasses.make_dataclass(
        "TrainCommand", [("algo", algo_type)], frozen=True, bases=(TrainArgs,)
    )
    command.__doc__ = TrainArgs.__doc__
    return command


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TextColumn("return {task.fields[ret]}"),
        TextColumn("{task.fields[extra]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def _status(info: Any) -> str:
    """The progress bar's status: `compiling` until the first chunk (compiled, then run)
    has ended, then `updates done/of`."""
    return "compiling" if info is None else f"{info.updates_done}/{info.num_updates} updates"


def _check_options(a: Any) -> None:
    """Refuse nonsense values of the common options, naming the option and the fix."""
    if a.seeds < 1:
        raise ValueError(f"--seeds must be >= 1 (the number of seeds trained), got {a.seeds}.")
    from bellmax.core.checks import check_seed_range

    check_seed_range(a.seed, a.seeds)  # as every command's --seed
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

    def given(*names: str) -> bool:
        return not only_given or bool(changed_fields(a, names))

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


def _given_options(a: Any, argv: Sequence[str] | None) -> set[str]:
    """The fields of `a` whose options the command line gives (`--no-x` gives `x`).

    Without the command line (`run_train` called directly), the fields set to something
    other than their default.
    """
    fields = {f.name: f for f in dataclasses.fields(type(a))}
    if argv is None:
        return {n for n, f in fields.items() if getattr(a, n) != f.default}
    given = set()
    for token in argv:
        if token == "--":
            break
        if not token.startswith("--"):
            continue
        name = token[2:].partition("=")[0].replace("-", "_")
        if name in fields:
            given.add(name)
        elif name.startswith("no_") and name[3:] in fields:
            given.add(name[3:])
    return given


def _read_config_file(path: str, name: str) -> tuple[dict[str, Any], Path]:
    """The settings (driver.SETTINGS' keys) a run.json records, and the file's path.

    Raises:
      ValueError: the file is missing or is not a bellmax run.json (one line naming the file
        and what is wrong), or records another algorithm than `name` (naming both).
    """
    from bellmax.train.driver import RUN_FORMAT, SETTINGS

    file = Path(path)
    if file.is_dir():
        file = file / RUN_JSON
    what = f"--config {str(file)!r}"
    if not file.exists():
        raise ValueError(
            f"{what} does not exist; give the {RUN_JSON} a `bellmax train` run wrote, or its "
            "run directory."
        )
    try:
        record = json.loads(file.read_text(encoding="utf-8-sig"))  # (a BOM: Windows editors)
    except OSError as e:
        raise ValueError(f"{what} cannot be read ({e.strerror or e}).") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not a bellmax {RUN_JSON}: it is not text.") from None
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{what} is not a bellmax {RUN_JSON}: not JSON ({e.msg} at line {e.lineno})."
        ) from None
    except RecursionError:  # (JSON nested thousands deep: no run.json is)
        raise ValueError(f"{what} is not a bellmax {RUN_JSON}: nested too deeply.") from None
    if not isinstance(record, dict):
        raise ValueError(
            f"{what} is not a bellmax {RUN_JSON}: it holds a JSON "
            f"{type(record).__name__}, not an object."
        )
    fmt = record.get("format")
    if not (isinstance(fmt, str) and fmt.startswith("bellmax-run/")):
        raise ValueError(
            f'{what} is not a bellmax {RUN_JSON}: it has no "format": "{RUN_FORMAT}" '
            "entry (the file `bellmax train --out DIR` writes is DIR/run.json)."
        )
    if fmt != RUN_FORMAT:
        raise ValueError(
            f"{what} was written by another bellmax version (run format {fmt}; this bellmax "
            f"reads {RUN_FORMAT}); run it with that version."
        )
    absent = [k for k in SETTINGS if k not in record]
    if absent:
        raise ValueError(
            f"{what} is not a complete bellmax {RUN_JSON}: it lacks {', '.join(absent)}."
        )
    settings = {k: record[k] for k in SETTINGS}
    seeds = settings["seeds"]
    problems = [
        f"{key} is {json.dumps(settings[key])}, not {kind}"
        for key, kind, ok in (
            ("algo", "a name", isinstance(settings["algo"], str)),
            ("env", "an env id", isinstance(settings["env"], str)),
            (
                "seeds",
                "a list of distinct integers",
                isinstance(seeds, list)
                and bool(seeds)
                and all(isinstance(x, int) and not isinstance(x, bool) for x in seeds)
                and len(set(seeds)) == len(seeds),
            ),
            ("config", "an object", isinstance(settings["config"], dict)),
            ("chunks", "an integer", _is_int(settings["chunks"])),
            ("eval_episodes", "an integer", _is_int(settings["eval_episodes"])),
            (
                "stop_return",
                "a number or null",
                settings["stop_return"] is None or _is_number(settings["stop_return"]),
            ),
        )
        if not ok
    ]
    if problems:
        raise ValueError(f"{what} is damaged: {'; '.join(problems)}.")
    if settings["algo"] != name:
        raise ValueError(
            f"{what} records a {settings['algo']} run, not {name}: run it with `bellmax train "
            f"{settings['algo']} --config {file}`."
        )
    return settings, file


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _config_settings(
    a: Any, name: str, given: set[str], path: str
) -> tuple[dict[str, Any], list[str], Path]:
    """The settings of the run.json at `path` with the options given on the command line
    over them; and each override, as `"learning_rate 0.003 (run.json: 0.001)"`."""
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import config_from_dict

    stored, file = _read_config_file(path, name)
    # Every Config field, in this bellmax's types (lists back to tuples), checked here.
    config_from_dict(
        get_algorithm(name), stored["config"], source=repr(str(file)), anew="leave out --config"
    )
    settings = {**stored, "config": dict(stored["config"])}
    options = _settings(a, name, only_given=False)
    if given & {"seed", "seeds"}:
        first = a.seed if "seed" in given else stored["seeds"][0]
        count = a.seeds if "seeds" in given else len(stored["seeds"])
        settings["seeds"] = list(range(first, first + count))
    for key in ("env", "chunks", "eval_episodes", "stop_return"):
        if key in given:
            settings[key] = options[key]
    if "total_steps" in given:
        settings["config"]["total_timesteps"] = a.total_steps
    for f in dataclasses.fields(type(a).config_cls):
        if f.name in given and f.name != "total_timesteps":
            settings["config"][f.name] = options["config"][f.name]
    notes = []
    for key in ("env", "seeds", "chunks", "eval_episodes", "stop_return"):
        if json.dumps(settings[key]) != json.dumps(stored[key]):
            notes.append(f"{key} {_show(settings[key])} ({file.name}: {_show(stored[key])})")
    for key, value in settings["config"].items():
        was = stored["config"].get(key)
        if json.dumps(value) != json.dumps(was):
            notes.append(f"{key} {_show(value)} ({file.name}: {_show(was)})")
    return settings, notes, file


def _show(x: Any) -> str:
    return json.dumps(list(x) if isinstance(x, tuple) else x)


def rounding_note(config: Any, given_total: bool) -> str | None:
    """One line when the run's total steps are not a whole number of updates."""
    total, per_update = int(config.total_timesteps), int(config.steps_per_update)
    updates = total // per_update
    if total % per_update == 0 or updates < 1:  # too few steps: the config's check says so
        return None
    inner = "num_steps" if hasattr(config, "num_steps") else "train_frequency"
    what = "rollouts" if inner == "num_steps" else "updates"
    source = "--total-steps" if given_total else "total_timesteps"
    return (
        f"{source} {total} rounded down to {updates * per_update} env steps per seed: whole "
        f"{what} of num_envs {config.num_envs} x {inner} {getattr(config, inner)} = "
        f"{per_update} steps ({plural(updates, 'update')})."
    )


def _option_name(name: str) -> str:
    """How `bellmax train`'s messages name a parameter of `bellmax.train.driver.train` or a
    Config field: by the option that sets it (`--out`, `--learning-rate`)."""
    return "--out" if name == "out_dir" else option_for(name)


def run_train(args: Any, argv: Sequence[str] | None = None) -> int:
    """`bellmax train ALGO ...`.

    Args:
      args: the parsed options.
      argv: the command line (after `bellmax`); tells options given from those left at
        their default (without it, an option set to its default counts as not given).
    """
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import (
        check_recorded_env,
        config_from_dict,
        plan_chunks,
        read_run,
        settings_differences,
        train,
    )
    from bellmax.train.tracking import check_tracker, make_tracker, progress_text

    a = args.algo
    name = type(a).algo_name
    given = _given_options(a, argv)
    _check_options(a)
    check_tracker(a.log)  # a missing package is named before any training
    if a.config is not None:
        settings, notes, file = _config_settings(a, name, given, a.config)
        if notes:
            print(
                f"bellmax: {file.name} settings, except as given: {'; '.join(notes)}.",
                file=sys.stderr,
            )
    else:
        settings = _settings(a, name, only_given=False)
    env_id = settings["env"]
    default = f"runs/train-{name}-{env_id.replace(':', '_').replace('/', '_')}"
    out = default if a.out is None else a.out  # an empty --out is refused, not defaulted
    check_output_path(out, kind="dir", option="--out")
    # another command's output (imitate, sweep, ...); a train run there: once the options are
    # checked (below)
    check_run_dir(out, "train", resume=True)
    stored = read_run(out, names=_option_name) if a.resume else None
    if stored is not None:
        given_settings = settings if a.config is not None else _settings(a, name, only_given=True)
        diffs = settings_differences(stored, given_settings, names=_option_name)
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
    if "env" not in given and (stored is not None or a.config is not None):
        source = repr(str(Path(out) / RUN_JSON)) if stored is not None else repr(str(file))
        check_recorded_env(settings["env"], source)  # (an id that imports a module: refused)
    algo = get_algorithm(name)
    try:
        if stored is not None or a.config is not None:
            if stored is not None:
                source, anew = repr(out), "start anew with --overwrite"
            else:
                source, anew = repr(a.config), "leave out --config"
            config = config_from_dict(algo, settings["config"], source=source, anew=anew)
        else:
            config = type(a).config_cls(**settings["config"])
        config.validate()  # a budget of less than one update, named (the env is checked later)
    except (ValueError, TypeError) as e:
        raise _with_options(e, type(a).config_cls) from None
    check_run_dir(out, "train", overwrite=a.overwrite, resume=a.resume)  # before any note
    # The note is for a run that starts (a resumed one said it when it started).
    note = rounding_note(config, "total_steps" in given and a.total_steps is not None)
    if note is not None and stored is None:
        print(f"bellmax: {note}", file=sys.stderr)
    env, seeds = settings["env"], tuple(settings["seeds"])
    chunk = plan_chunks(int(config.num_updates), settings["chunks"])
    chunks_run = 0
    tracker = None
    with _progress(sys.stderr.isatty()) as progress:
        task = progress.add_task(
            f"{name} {env}", total=None, ret="-", status=_status(None), extra=""
        )

        def on_chunk(info):
            nonlocal tracker, chunks_run
            chunks_run += 1
            if a.log is not None and tracker is None:
                # Made at the first chunk, once the driver holds the run directory (a run it
                # refuses is left untouched); a run that starts from its first update
                # replaces the event files of the one it overwrote.
                tracker = make_tracker(
                    a.log,
                    out,
                    fresh=info.updates_done <= chunk,
                    name=Path(out).name,
                    config={"algo": name, "env": env, "seeds": list(seeds)}
                    | {f.name: getattr(config, f.name) for f in dataclasses.fields(config)},
                )
            if tracker is not None:
                tracker.log(info.env_steps, info.scalars)
            ret = "-" if info.mean_return != info.mean_return else f"{info.mean_return:.1f}"
            progress.update(
                task,
                completed=info.updates_done,
                total=info.num_updates,
                ret=ret,
                status=_status(info),
                extra=progress_text(info.scalars),
            )

        try:
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
                names=_option_name,
            )
        finally:
            if tracker is not None:
                tracker.close()
    summary = {**result.summary(), "out": out}
    if a.json:
        print(json.dumps(summary))
    else:
        ev = summary["final_eval_return"]
        steps = f"{summary['env_steps']} steps x {plural(len(seeds), 'seed')}"
        if stored is not None and chunks_run == 0:  # --resume of a run that had ended
            done = f"the run in {out} had already ended ({steps}); nothing to train"
        elif summary["resumed_at_updates"]:  # the seconds are this process's, not the run's
            per_update = summary["env_steps"] // max(1, summary["updates"])
            now = summary["env_steps"] - summary["resumed_at_updates"] * per_update
            total = summary["seconds_total"]
            done = (
                f"{steps}, resumed: {now} steps in {summary['seconds']:.1f} s "
                f"(+{summary['compile_seconds']:.1f} s compile)"
                + (f", {total:.1f} s of training over the whole run" if total is not None else "")
            )
        else:
            done = (
                f"{steps} in {summary['seconds']:.1f} s "
                f"(+{summary['compile_seconds']:.1f} s compile)"
            )
        print(
            f"{name} on {env}: {done}; "
            + (f"final evaluation return {ev:.1f}" if ev is not None else "not evaluated")
            + f"; outputs in {out}/"
        )
    _warn_cut_off(summary.get("eval_episodes_cut_off"), summary.get("eval_episodes"), seeds)
    return 0


def _warn_cut_off(cut: int | None, episodes: int | None, seeds: Any) -> None:
    """Say on stderr when evaluation episodes were cut off by the evaluation's step cap."""
    if not cut:
        return
    from bellmax.deep.evaluate import MAX_STEPS

    total = int(episodes or 0) * len(seeds)
    print(
        f"bellmax: warning: {cut} of {total} evaluation episodes had not ended after "
        f"{MAX_STEPS:,} steps (the evaluation's cap); their returns so far are in the mean. The "
        "policy may never reach a terminal state on this environment (a time limit, "
        "TimeLimit or max_steps_in_episode, bounds its episodes).",
        file=sys.stderr,
    )


def _with_options(error: ValueError | TypeError, config_cls: type) -> Exception:
    """A Config's error as a command-line user needs it: the fields it names
    (`learning_starts`, `total_timesteps`) followed by the options that set them."""
    text = str(error)
    named = []
    for f in dataclasses.fields(config_cls):
        found = re.search(rf"\b{f.name}\b", text)
        if "_" in f.name and found:  # (--gamma is gamma)
            named.append((found.start(), f"{f.name} is {option_for(f.name)}"))
    if not named or type(error) not in (ValueError, TypeError):
        return error
    flags = ", ".join(flag for _, flag in sorted(named))
    return type(error)(f"{text.rstrip('.')} (on the command line: {flags}).")


@dataclasses.dataclass(frozen=True)
class EvaluateArgs:
    """Evaluate every seed's policy of a `bellmax train` run, from its policy.msgpack.

    `bellmax evaluate DIR --episodes N [--env ENV_ID] [--json]`. The policy file holds the
    policies alone (not the training state), so `--env` may name any env whose observation
    and action spaces match the run's (`--env gymnasium:CartPole-v1` for a CartPole-v1 run);
    other spaces are refused, named. DIR may also be a policy.msgpack file.
    """

    run_dir: Annotated[Positional[str], tyro.conf.arg(metavar="DIR")]
    """The --out directory of a `bellmax train` run (or its policy.msgpack)."""
    episodes: int = 10
    """Evaluation episodes per seed."""
    env: Annotated[
        str | None,
        tyro.conf.arg(metavar="ENV_ID", help_behavior_hint="(default: the training env)"),
    ] = None
    """Evaluate on this env id; its observation and action spaces must match the run's."""
    json: bool = False
    """Print one JSON object."""
    video: Annotated[
        str | None, tyro.conf.arg(metavar="FILE", help_behavior_hint="(default: no video)")
    ] = None
    """Also write one greedy episode of the best seed's policy as FILE: .gif, or .mp4 (needs
    ffmpeg). Needs an env that draws itself (CartPole, the swing-up, Pendulum, grid worlds)."""


def run_evaluate(args: EvaluateArgs) -> int:
    """`bellmax evaluate DIR`."""
    from bellmax.core.checks import check_int
    from bellmax.train.driver import evaluate_checkpoint

    check_int(args.episodes, "--episodes", low=1)
    if args.video is not None:
        from bellmax.envs.render import VIDEO_SUFFIXES

        if Path(args.video).suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"--video {args.video!r}: the file must end in .gif or .mp4.")
        check_output_path(args.video, option="--video")
    res = evaluate_checkpoint(args.run_dir, episodes=args.episodes, env=args.env)
    if args.video is not None:
        import jax

        from bellmax.envs.render import record_video
        from bellmax.policy import load_policy

        policy = load_policy(args.run_dir)  # the best seed by the run's final evaluation
        episode = record_video(policy.act, res["env"], args.video, jax.random.key(0))
        res["video"] = {
            "path": args.video,
            "steps": int(episode.length),
            "return": float(episode.episode_return),
        }
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"{res['algo']} on {res['env']}: mean return {res['mean_return']:.1f} "
            f"(+-{res['std_return']:.1f}) over {plural(res['episodes'], 'episode')} x "
            f"{plural(len(res['seeds']), 'seed')} (policies from {res['source']})"
        )
        if "video" in res:
            v = res["video"]
            print(f"wrote {v['path']}: {v['steps']} steps, return {v['return']:.1f}")
    _warn_cut_off(res["episodes_cut_off"], res["episodes"], res["seeds"])
    return 0


def tour_section(ctx: Any) -> None:
    """The tour's deep-RL section: PPO learns CartPole-v1; its learning curve and timings.
    Then SAC and PPO on Pendulum-v1 on the same budget (`_pendulum_sac_ppo`)."""
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
    _pendulum_sac_ppo(ctx)


def _binned_returns(res: Any, width: int) -> tuple[Any, Any]:
    """`(env steps at each bin's end, mean return of the training episodes that ended in
    it)` over bins of `width` env steps, pooled over seeds (bins without episodes left out)."""
    import numpy as np

    from bellmax.deep.loop import mean_episode_return

    m = res.metrics
    steps = np.asarray(m["env_steps"][0])  # cumulative, after each update
    bins = (steps - 1) // width
    total = np.bincount(bins, np.asarray(m["episode_return_sum"]).sum(0))
    count = np.bincount(bins, np.asarray(m["episode_count"]).sum(0))
    keep = count > 0
    ends = np.minimum((np.arange(len(count)) + 1) * width, steps[-1])
    return ends[keep], mean_episode_return(total, count)[keep]


def _pendulum_sac_ppo(ctx: Any) -> None:
    """SAC (its Pendulum defaults) and PPO (its Pendulum-v1 preset) train on Pendulum-v1 for
    the same env steps; their training curves in one plot, and each greedy policy's
    evaluation. Off-policy replay against on-policy rollouts: sample efficiency."""
    from matplotlib.figure import Figure

    from bellmax.deep import ppo, sac
    from bellmax.train.driver import train

    steps = ctx.size(10_000, 4_096)  # quick: 4 PPO rollouts, each env's first episode
    configs = {
        "SAC": sac.Config(total_timesteps=steps, learning_starts=min(1_000, steps // 2)),
        "PPO": dataclasses.replace(ppo.PRESETS["Pendulum-v1"], total_timesteps=steps),
    }
    ctx.report.section(
        "Deep RL: SAC and PPO on Pendulum-v1",
        f"The same budget, {steps} environment steps, for SAC (off-policy: every step is "
        "stored and replayed, one gradient step per env step, the temperature tuned towards "
        "a target entropy) and PPO (on-policy: each rollout of 16 x 64 steps is used for 10 "
        "epochs, then dropped: bellmax's Pendulum preset, minibatch 256 and an annealed learning "
        "rate, where rl-zoo's runs 4 x 1024-step rollouts, minibatch 64, a constant rate and "
        "gSDE). A mean return of -200 counts as "
        "solved; PPO's preset needs about 1.5e5 steps for it. `bellmax train sac|td3` trains "
        "SAC and TD3 on any continuous-action env (SAC on discrete ones too).",
    )
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    rows = []
    for name, config in configs.items():
        algo = sac if name == "SAC" else ppo
        res = train(
            algo,
            config,
            "Pendulum-v1",
            seeds=(ctx.seed,),
            chunks=1,
            eval_episodes=ctx.size(10, 2),
            algo_name=name.lower(),
        )
        x, y = _binned_returns(res, 1_000)
        ax.plot(x, y, marker="o", ms=3, label=f"{name} (greedy eval {res.final_eval_return:.0f})")
        rows.append([name, res.env_steps, res.seconds, res.compile_seconds, res.final_eval_return])
        key = f"{name.lower()}_pendulum"
        ctx.report.summary[f"{key}_final_eval_return"] = res.final_eval_return
        ctx.report.summary[f"{key}_train_seconds"] = round(res.seconds, 3)
    ax.axhline(-200.0, color="0.5", ls="--", lw=1, label="solved (-200)")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("training episode return")
    ax.set_xlim(0, steps * 1.03)
    ax.legend(loc="lower right", fontsize=8)
    ctx.report.image(
        fig,
        f"Pendulum-v1, {steps} env steps each: mean return of the training episodes ending in "
        "each 1,000 steps (SAC acts uniformly at random for its first 1,000).",
        name="pendulum_sac_ppo",
    )
    ctx.report.table(
        ["algorithm", "env steps", "training s", "compile s", "final evaluation return"], rows
    )
