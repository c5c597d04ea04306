"""Hyperparameter sweeps: many configurations x seeds, vmapped on one machine or spread over Ray.

A sweep is a list of trials, one per (configuration, seed). The fields each algorithm's Config
lists in `HYPERPARAMETERS` (learning rate, discount, loss weights, ...) are data: the trials
that differ only in them form one *program group*, trained as ONE compiled program, a
`jit(vmap)` of the algorithm's `init` and of a `lax.scan` of its `update` over the group's
trials, each with its own values and seed (`bellmax.deep.loop.with_hyperparameters`). Any
other swept field (a network size, `num_envs`, a batch size, a flag) shapes the program, so
each of its values makes a group of its own.

    result = sweep("ppo", "CartPole-v1", grid={"learning_rate": (1e-3, 3e-3)}, seeds=(0, 1))
    result.best   # the configuration with the highest mean final evaluation return over its seeds

A group runs in chunks of updates, like `bellmax.train.driver.train`: after each chunk every
trial's training return is known, and with `scheduler="asha"` its greedy policy is evaluated
too (`eval_episodes` episodes, the final evaluation's keys); that evaluation return is what
Ray Tune's ASHA scheduler ranks groups on (`on_chunk`). The group's state is committed to one
atomic checkpoint, from which a killed group resumes with the same compiled program and keys
(a resumed trial ends bit-identical to an uninterrupted one). At the end each trial's greedy
policy is evaluated (`eval_episodes` episodes, key `10000 + seed`, as `bellmax train` does).
A trial's numbers match a `bellmax train` run of its config and seed only up to rounding (its
program is batched over the group's trials): its curve and return will not be identical.

Backends: `"local"` runs the groups one after another in this process; `"ray"` makes one
Ray Tune trial per group (`bellmax[ray]`, imported only then), on a local Ray instance or the
cluster at `address`, with a per-node compile cache, restarts of failed trials from their last
chunk, Tune's worker processes reused from group to group (`reuse_actors`) and, with
`scheduler="asha"`, early stopping of weak groups; with `out_dir`, the same sweep run again
after its driver died restores Tune's experiment and resumes every group from its last chunk.
Both run the same group code, so for the same seeds they give the same per-trial results.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import itertools
import json
import math
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.caches import recently_used
from bellmax.core.checks import check_int, check_seeds, whole_number
from bellmax.core.errors import BellmaxError, unknown_name
from bellmax.core.io import (
    CHECKPOINT,
    RESULTS_CSV,
    RESULTS_JSON,
    SWEEP_GROUPS,
    SWEEP_JSON,
    SWEEP_PLOT,
    SWEEP_RAY,
    check_run_dir,
    clear_outputs,
    switch_name,
)
from bellmax.core.program_cache import load_or_export, program_cache_dir
from bellmax.core.xla import NETWORK_UPDATES, RUN_ONCE, cpu_compile_options, jit_lightly
from bellmax.deep import get_algorithm
from bellmax.deep.evaluate import evaluate
from bellmax.deep.loop import mean_episode_return, with_hyperparameters
from bellmax.envs.vector import make_vector_env
from bellmax.train.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from bellmax.train.io import (
    FileLock,
    atomic_savefig,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    lock_output_dir,
)

__all__ = [
    "BACKENDS",
    "SCHEDULERS",
    "SWEEP_ALGORITHMS",
    "GroupResult",
    "Space",
    "SweepResult",
    "parse_grid",
    "parse_space",
    "plan_groups",
    "plan_trials",
    "run_group",
    "sweep",
    "write_results",
]

#: The algorithms a sweep trains (their Configs name their traceable `HYPERPARAMETERS`).
SWEEP_ALGORITHMS = ("ppo", "a2c", "reinforce", "dqn", "sac", "td3")
BACKENDS = ("local", "ray")
SCHEDULERS = ("none", "asha")
SPACE_KINDS = ("loguniform", "uniform")
RAY_EXTRA = "bellmax[ray]"
STAMP = "sweep.sha256"
"""In `<out>/ray/`: the digest of the sweep whose Tune experiment is stored there."""


# ---------------------------------------------------------------------- what to sweep


@dataclasses.dataclass(frozen=True)
class Space:
    """A distribution to draw a numeric field's values from (`--random N`)."""

    field: str
    """The Config field."""
    kind: str
    """loguniform | uniform."""
    low: float
    """Lower bound."""
    high: float
    """Upper bound (> low)."""

    def __post_init__(self) -> None:
        # what parse_space refuses on the command line, refused for a Space built in Python
        # too (an unknown kind was drawn as uniform, reversed bounds failed inside numpy)
        if not isinstance(self.field, str):
            raise TypeError(f"Space.field must be a Config field's name, got {self.field!r}.")
        if self.kind not in SPACE_KINDS:
            raise unknown_name("distribution", self.kind, SPACE_KINDS)
        try:
            low, high = float(self.low), float(self.high)
        except (TypeError, ValueError):
            raise ValueError(
                f"{self}: the bounds must be numbers, e.g. Space('learning_rate', "
                "'loguniform', 1e-4, 1e-2)."
            ) from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"{self}: need finite bounds with LOW < HIGH.")
        if self.kind == "loguniform" and low <= 0:
            raise ValueError(f"{self}: loguniform needs LOW > 0.")

    def sample(self, rng: np.random.Generator) -> float:
        """One value."""
        if self.kind == "loguniform":
            return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        return float(rng.uniform(self.low, self.high))


def _config_fields(config_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def _field_type(config_cls: type, name: str, option: str) -> Any:
    fields = _config_fields(config_cls)
    if name not in fields:
        raise unknown_name(
            "Config field", name, fields, hint=f"{option} takes FIELD=...; FIELD is a Config field."
        )
    return fields[name]


def _optional(kind: Any) -> Any:
    """`float` for `float | None` (a field that may be None), else None."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else None
    return None


def _convert(text: str, kind: Any, name: str, option: str) -> Any:
    """A value written on the command line, as the field's type (`none` for a field that
    may be None)."""
    text = text.strip()
    inner = _optional(kind)
    if inner is not None:
        return None if text.lower() == "none" else _convert(text, inner, name, option)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if kind is int:  # (1e5 too: the command line's one rule for integers)
            return whole_number(text)
        if kind is float:
            return float(text)
        if typing.get_origin(kind) is tuple:
            return tuple(whole_number(x) for x in text.lower().split("x"))
    except ValueError:
        example = {bool: "true", int: "8", float: "0.001"}.get(kind, "64x64")
        raise ValueError(
            f"{option} {name}: {text!r} is not a value of {name} "
            f"({getattr(kind, '__name__', kind)}); write e.g. {name}={example}"
            + (" (widths joined by x)." if example == "64x64" else ".")
        ) from None
    return text


def parse_grid(item: str, config_cls: type, option: str = "--grid") -> tuple[str, tuple[Any, ...]]:
    """`"learning_rate=1e-3,3e-3"` -> `("learning_rate", (0.001, 0.003))`, typed by the field.

    Tuples (`hidden_sizes`) are written with `x`: `hidden_sizes=64x64,32x32`; `none` is None
    for a field that may be None (`target_entropy=none,-1`). `option` names the item in
    errors (`--set` parses its one value the same way).

    Raises:
      ValueError: not FIELD=V1,V2,..., a value of the wrong type, or a value given twice;
        UnknownNameError: FIELD is not a field of `config_cls` (the closest names listed).
    """
    name, sep, values = (p.strip() for p in item.partition("="))
    if not sep or not name or not values:
        form, example = (
            ("FIELD=VALUE", "learning_rate=1e-3")
            if option == "--set"
            else ("FIELD=V1,V2,...", "learning_rate=1e-3,3e-3")
        )
        raise ValueError(f"{option} takes {form}, got {item!r}; e.g. {option} {example}.")
    kind = _field_type(config_cls, name, option)
    out = tuple(_convert(v, kind, name, option) for v in values.split(","))
    if len(set(out)) != len(out):
        raise ValueError(f"{option} {item!r} gives a value twice; give each value once.")
    return name, out


_SPACE = re.compile(r"^\s*(\w+)\s*=\s*(\w+)\s*\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")


def parse_space(item: str, config_cls: type) -> Space:
    """`"learning_rate=loguniform(1e-4,1e-2)"` -> a `Space` (loguniform or uniform).

    Raises:
      ValueError: another form, an unknown distribution, bounds that are not numbers with
        `low < high` (loguniform: `low > 0`), or a field that is not a float;
        UnknownNameError: an unknown field.
    """
    m = _SPACE.match(item)
    example = "--space learning_rate=loguniform(1e-4,1e-2)"
    if m is None:
        raise ValueError(f"--space takes FIELD=KIND(LOW,HIGH), got {item!r}; e.g. {example}.")
    name, kind, low_text, high_text = m.groups()
    if _field_type(config_cls, name, "--space") is not float:
        raise ValueError(
            f"--space {item!r}: {name} is not a float field; sweep it with --grid {name}=V1,V2."
        )
    if kind not in SPACE_KINDS:
        raise unknown_name("distribution", kind, SPACE_KINDS, hint=f"e.g. {example}.")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        raise ValueError(f"--space {item!r}: the bounds must be numbers; e.g. {example}.") from None
    try:
        return Space(name, kind, low, high)
    except ValueError as e:  # the bounds: said of the item as written
        why = str(e).partition(": ")[2].rstrip(".")
        raise ValueError(f"--space {item!r}: {why}; e.g. {example}.") from None


def _say(name: str, value: Any, names: Callable[[str], str] | None) -> str:
    """A parameter set to a value, as the caller wrote it: `scheduler='asha'` in Python,
    `--scheduler asha` on the command line (`names` maps a parameter to its option)."""
    return f"{name}={value!r}" if names is None else f"{names(name)} {shlex.quote(str(value))}"


def plan_trials(
    base: Any,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    space: Sequence[Space] = (),
    num_random: int = 0,
    seeds: Sequence[int] = (0,),
    sample_seed: int = 0,
    names: Callable[[str], str] | None = None,
) -> list[dict[str, Any]]:
    """Every trial of a sweep: `{"index", "config": {field: value}, "seed"}`, the grid's
    product (crossed with `num_random` draws from `space`, if any), each with every seed.

    Each configuration is checked by building its Config (errors name the field and value).
    `names` as for `sweep` (the messages name `grid`, `space` and `num_random` by it).

    Raises:
      ValueError: a field both in the grid and the space, `space` without `num_random` (or
        the reverse), seeds not distinct; the Config's own errors for bad values.
    """
    seeds = check_seeds(seeds)
    if names is None:
        g, sp, n = "grid", "space", "num_random=N"
    else:
        g, sp, n = names("grid"), names("space") + " FIELD=KIND(LOW,HIGH)", names("num_random")
        n += " N"
    grid = _checked_grid(base, grid, g)
    space = _checked_space(base, space, sp.split()[0])
    both = sorted(set(grid) & {s.field for s in space})
    if both:
        raise ValueError(
            f"{both[0]} is in both {g} and {sp.split()[0]}; sweep it with one of them."
        )
    if bool(space) != bool(num_random):
        raise ValueError(
            f"{n} and {sp} go together: N configurations are drawn from the spaces; give both "
            "or neither."
        )
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    if num_random:
        rng = np.random.default_rng(sample_seed)
        draws = [{s.field: s.sample(rng) for s in space} for _ in range(num_random)]
        points = [{**p, **d} for p in points for d in draws]
    trials = []
    for values in points:
        dataclasses.replace(base, **values)  # the Config checks each value
        for seed in seeds:
            trials.append({"index": len(trials), "config": values, "seed": seed})
    return trials


def _checked_grid(base: Any, grid: Any, option: str) -> dict[str, tuple[Any, ...]]:
    """`grid` as `{field: values}`: each a field of `base`'s Config, with a list of values
    (at least one, none twice); `option` names it in errors (`grid`, `--grid`)."""
    if grid is None:
        return {}
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"{option} must be a dict {{field: [values]}}, e.g. "
            f"{{'learning_rate': [1e-3, 3e-3]}}; got {type(grid).__name__}."
        )
    out = {}
    for name, values in grid.items():
        _field_type(type(base), name, option)
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
            raise TypeError(
                f"{option}[{name!r}] must be a list of values, e.g. {{{name!r}: [v1, v2]}}; "
                f"got {type(values).__name__} {values!r}."
            )
        values = tuple(values.tolist() if isinstance(values, np.ndarray) else values)
        if not values:
            raise ValueError(f"{option}[{name!r}] is empty: give it at least one value.")
        shown = [json.dumps(v, sort_keys=True, default=list) for v in values]
        twice = next((v for v, t in zip(values, shown, strict=True) if shown.count(t) > 1), None)
        if len(set(shown)) != len(shown):
            raise ValueError(f"{option}[{name!r}] gives {twice!r} twice; give each value once.")
        out[name] = values
    return out


def _checked_space(base: Any, space: Any, option: str) -> tuple[Space, ...]:
    """`space` as `Space`s: each of a float field of `base`'s Config, one per field."""
    space = tuple(space or ())
    for s in space:
        if not isinstance(s, Space):
            raise TypeError(
                f"{option} takes Space objects, e.g. Space('learning_rate', 'loguniform', "
                f"1e-4, 1e-2); got {type(s).__name__} {s!r}."
            )
        if _field_type(type(base), s.field, option) is not float:
            raise ValueError(
                f"{option} {s.field}: not a float field; sweep it with a grid of its values."
            )
    fields = [s.field for s in space]
    twice = next((f for f in fields if fields.count(f) > 1), None)
    if twice is not None:
        raise ValueError(
            f"{option} gives {twice} twice (one distribution per field; the second replaced "
            "the first); keep one."
        )
    return space


def plan_groups(base: Any, trials: Sequence[dict]) -> list[dict[str, Any]]:
    """The trials split into program groups: those equal in every field that is not one of
    the Config's `HYPERPARAMETERS` share one compiled program. A hyperparameter's value None
    (SAC's `target_entropy`: derived from the action space) is not data: it is structural.

    Returns:
      `[{"group", "config": the group's structural fields, "traced": [swept
      hyperparameters], "trials": [...]}]`, in the order of their first trial.
    """
    traceable = set(type(base).HYPERPARAMETERS)
    groups: dict[str, dict[str, Any]] = {}
    for t in trials:
        structural = {k: v for k, v in t["config"].items() if k not in traceable or v is None}
        key = json.dumps(structural, sort_keys=True, default=list)
        if key not in groups:
            traced = sorted(k for k in t["config"] if k not in structural)
            groups[key] = {"group": len(groups), "config": structural, "traced": traced}
            groups[key]["trials"] = []
        groups[key]["trials"].append(t)
    return list(groups.values())


# ---------------------------------------------------------------------- one program group


@dataclasses.dataclass
class GroupResult:
    """What `run_group` returns for one program group."""

    group: int
    trials: list[dict[str, Any]]
    """Per trial: index, config (its swept fields), seed, final_eval_return (None if stopped
    early or diverged), env_steps, seconds (the training seconds of its group, whose trials
    train together, over every call that trained it: `seconds_total`, or this call's where
    an earlier call's were not kept), chunk_returns (mean training return of each chunk),
    chunk_eval_returns (with ASHA: the evaluation return after each chunk, what ASHA ranked;
    else empty), diverged, stopped (its group stopped early by ASHA), restarted (its
    group's `restarted`)."""
    updates_done: int
    num_updates: int
    compile_seconds: float
    seconds: float
    """Training seconds after compile in this call (all the group's trials at once)."""
    eval_seconds: float
    programs: int
    """Training programs compiled in this call (1 when the chunks are equal)."""
    restarted: bool
    """Whether the group's training resumed part-way from a checkpoint (after a failure or an
    interruption): in this call, or, for a group `finished_before`, in the call that
    finished it (its checkpoint keeps that)."""
    resumed_at_updates: int = 0
    seconds_total: float | None = None
    """Training seconds over every call that trained the group (None: an earlier call's
    were not kept: the checkpoint it resumed from was written by an older bellmax, after a
    restart)."""
    finished_before: bool = False
    """Whether the group's training had ended before this call (its checkpoint was at its
    end: the sweep run again after it finished, or after it was interrupted in its final
    evaluation): nothing was trained in this call, only the final evaluation ran again (on
    Ray, a finished sweep's groups are reported from Tune's records: nothing ran again)."""


class _Program:
    """The compiled init and chunk programs of one group (algorithm, config, env, traced
    fields, number of trials): `jit(vmap)` over the trials' hyperparameters and keys."""

    def __init__(self, algo: Any, config: Any, venv: Any, n_trials: int):
        self.algo, self.config, self.venv, self.n = algo, config, venv, n_trials
        self.chunks: dict[int, Any] = {}
        self.init_fn: Any = None
        self.compiles = 0
        #: What decides the programs beyond bellmax's code, where that is known (the
        #: driver's `program_identity`): then they are kept lowered on disk, as the
        #: driver's are (`core.program_cache`), and a later process (a Ray worker) reads them.
        self.program_id: tuple | None = None

        def act(params, obs, key):  # one object per group: evaluate compiles it once
            return algo.act(params, obs, key, config, venv, deterministic=True)

        self.act = act

    def _init(self, hp: dict, key: jax.Array) -> Any:
        return self.algo.init(key, with_hyperparameters(self.config, hp), self.venv)

    def _kept(self, name: tuple, fn: Any, args: tuple, kind: str) -> Any:
        """`fn` compiled for `args` from the program an earlier process kept on disk (or
        kept now), or None where none is kept (`program_id`, the cache turned off)."""
        if self.program_id is None or program_cache_dir() is None:
            return None
        kept = load_or_export((*self.program_id, *name), fn, lambda: args)
        if kept is None:  # (one that fits: `load_or_export` checks)
            return None
        return kept.compiled(cpu_compile_options(kind))

    def init(self, hp: dict, keys: jax.Array) -> Any:
        if self.init_fn is None:
            fn = jax.vmap(self._init)
            # it runs once: compile it lightly
            self.init_fn = self._kept(("init",), fn, (hp, keys), RUN_ONCE) or jit_lightly(
                fn, RUN_ONCE
            )
        return self.init_fn(hp, keys)

    def template(self, hp: dict, keys: jax.Array) -> Any:
        return jax.eval_shape(jax.vmap(self._init), hp, keys)

    def compiled(self, hp: dict, state: Any, n: int) -> Any:
        """The `n`-update chunk program, compiled on first use."""
        if n not in self.chunks:
            algo, venv = self.algo, self.venv

            def run(h, s):
                cfg = with_hyperparameters(self.config, h)
                return jax.lax.scan(lambda x, _: algo.update(x, cfg, venv), s, None, length=n)

            options = cpu_compile_options(NETWORK_UPDATES)  # as the driver's chunks
            self.chunks[n] = self._kept(
                ("chunk", n), jax.vmap(run), (hp, state), NETWORK_UPDATES
            ) or (jax.jit(jax.vmap(run), compiler_options=options).lower(hp, state).compile())
            self.compiles += 1
        return self.chunks[n]


_PROGRAMS: dict[Any, _Program] = {}


def _program(
    algo: Any, config: Any, venv: Any, n_trials: int, traced: Sequence[str], env: Any = None
) -> _Program:
    """A cached `_Program`: a process that runs the same group again (Ray's reused actors,
    repeated sweeps) compiles nothing. The traced fields are part of what it is: two groups
    of one Config may trace different fields (SAC's `target_entropy=none` makes a group of
    its own, where the field is not traced, beside one that traces it). `env`: what `venv`
    was made from (an id lets the programs be kept on disk)."""
    from bellmax.train.driver import program_identity

    key = (algo.__name__, config, venv, n_trials, tuple(sorted(traced)))
    make = functools.partial(_Program, algo, config, venv, n_trials)
    program = recently_used(_PROGRAMS, key, make, 8)
    identity = program_identity(algo, config, env, venv, n_trials)
    program.program_id = None if identity is None else (*identity, "sweep", key[-1])
    return program


#: `jax.random.key` over a vector of seeds, as one small program.
_SEED_KEYS = jax.jit(jax.vmap(jax.random.key))


def _trial_keys(seeds: list[int]) -> jax.Array:
    """`jax.random.key(seed)` for each seed, stacked: one program for seeds in [0, 2**32)
    (the same keys; key by key, a fresh process compiles the seeding and the stack apart)"""
    if all(0 <= s < 2**32 for s in seeds):
        return _SEED_KEYS(np.asarray(seeds, np.uint32))
    return jnp.stack([jax.random.key(s) for s in seeds])


def _group_config(algo: Any, spec: dict) -> Any:
    """The group's Config: the sweep's base with the group's structural fields."""
    from bellmax.train.driver import config_from_dict

    return config_from_dict(
        algo,
        {**spec["base"], **spec["config"]},
        source="the sweep",
        anew="run the sweep anew (in another output directory, or replacing it)",
    )


def _spec_digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=list).encode()).hexdigest()


def _chunk_returns(metrics: Any) -> np.ndarray:
    """`[trials]` mean return of the episodes that ended in a chunk (NaN where none did)."""
    r = np.asarray(metrics.episode_return_sum).sum(axis=1)
    c = np.asarray(metrics.episode_count).sum(axis=1)
    return mean_episode_return(r, c)


def _nonfinite(metrics: Any, params: Any) -> np.ndarray:
    """`[trials]` true where a loss or a weight is NaN or infinite, or any other metric
    (`[trials, updates]`) infinite, as the driver decides (`driver._first_infinite`: NaN
    elsewhere means "not recorded at that update", an infinity starts a divergence)."""
    bad = ~np.isfinite(np.asarray(metrics.loss)).all(axis=1)
    for leaf in jax.tree.leaves(metrics):
        v = np.asarray(leaf)
        if v.dtype.kind == "f" and v.ndim >= 2:  # [trials, updates, ...]
            bad |= np.isinf(v.reshape(v.shape[0], -1)).any(axis=1)
    for leaf in jax.tree.leaves(params):
        x = np.asarray(leaf)
        if np.issubdtype(x.dtype, np.inexact):
            bad |= ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    return bad


def _dispatch(program: _Program, hp: dict, state: Any, n: int) -> tuple[int, Any, float, float]:
    """Start a chunk of `n` updates (compiled first if new): `(n, (state, metrics), start
    time of the run, seconds spent compiling)`; its outputs are ready when JAX has run it."""
    t = time.perf_counter()
    fn = program.compiled(hp, state, n)
    start = time.perf_counter()
    return n, fn(hp, state), start, start - t


def _evaluate(
    algo: Any, program: Any, state: Any, venv: Any, trials: list, diverged: Any, episodes: int
) -> tuple[list[float | None], list[int | None]]:
    """Each trial's mean return of its greedy policy over `episodes` episodes (key `10000 +
    seed`, as `bellmax train` evaluates), and how many of them the evaluation's step cap cut
    off (their returns so far are in the mean); None for a diverged trial."""
    # On the host: slicing device arrays would compile a program per leaf shape (a fresh
    # Ray worker paid ~14 of them, from the compile cache, for every group).
    params = jax.device_get(algo.policy_params(state))
    out: list[float | None] = [None] * len(trials)
    cut: list[int | None] = [None] * len(trials)
    for i, t in enumerate(trials):
        if diverged[i]:
            continue
        p = jax.tree.map(lambda x, i=i: x[i], params)
        key = jax.random.key(10_000 + int(t["seed"]))
        res = evaluate(program.act, p, venv, key, episodes=episodes, keep_as=program.program_id)
        out[i] = float(np.mean(np.asarray(res.returns)))  # NumPy: no program
        cut[i] = int(np.sum(~np.asarray(res.completed)))
    return out, cut


def run_group(
    spec: dict[str, Any],
    *,
    checkpoint_dir: str | os.PathLike | None = None,
    on_chunk: Callable[[int, int, np.ndarray], Any] | None = None,
) -> GroupResult:
    """Train one program group: all its trials in one compiled program, chunk by chunk.

    Args:
      spec: `{"algo", "env", "base": every field of the sweep's base Config, "chunks",
        "eval_episodes", and a `plan_groups` entry: "group", "config", "traced", "trials"}`
        (JSON-able, so it can travel to a Ray worker); `"chunk_eval_episodes": E` (ASHA)
        evaluates every trial after each chunk too.
      checkpoint_dir: commit the group's state here after every chunk, and resume from it
        when it holds this spec's checkpoint (None: nothing written).
      on_chunk: `on_chunk(updates_done, num_updates, scores [trials])` after each chunk's
        commit, `scores` each trial's evaluation return after the chunk with
        `chunk_eval_episodes`, else the mean training return of its episodes in that chunk
        (NaN for none); a true result stops the group there (its trials get no final
        evaluation).

    Returns:
      A `GroupResult`.
    """
    algo = get_algorithm(spec["algo"])
    config = _group_config(algo, spec)
    trials = spec["trials"]
    venv = make_vector_env(spec["env"], num_envs=config.num_envs, seed=int(trials[0]["seed"]))
    if venv.is_host:
        raise ValueError(
            f"{spec['env']!r} steps on the host (Gymnasium) and cannot be vmapped over a "
            "sweep's trials; sweep a bellmax/gymnax env id (e.g. CartPole-v1)."
        )
    config.validate(venv)
    program = _program(algo, config, venv, len(trials), spec["traced"], spec["env"])
    compiles_before = program.compiles
    hp = {k: np.asarray([t["config"][k] for t in trials], np.float32) for k in spec["traced"]}
    keys = _trial_keys([int(t["seed"]) for t in trials])
    num_updates = int(config.num_updates)
    from bellmax.train.driver import plan_chunks

    chunk = plan_chunks(num_updates, int(spec["chunks"]))
    digest = _spec_digest(spec)
    ck = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    done, returns, diverged, restarted = 0, [], np.zeros(len(trials), bool), False
    chunk_eval, chunk_evals = int(spec.get("chunk_eval_episodes", 0)), []
    chunk_cuts: list = []  # per chunk evaluation: each trial's episodes cut off
    finished_before = False
    earlier: float | None = 0.0  # the training seconds of earlier calls (None: not kept)
    t0 = time.perf_counter()
    state = None
    if ck is not None and ck.exists() and read_checkpoint_metadata(ck).get("spec") == digest:
        state, meta = load_checkpoint(ck, program.template(hp, keys))
        earlier = _earlier_seconds(meta)
        done, returns = int(meta["updates_done"]), meta["chunk_returns"]
        chunk_evals = meta.get("chunk_eval_returns", [])
        chunk_cuts = meta.get("chunk_eval_cut_off", [])
        diverged = np.asarray(meta["diverged"], bool)
        finished_before = done >= num_updates
        # resumed part-way now; a finished group keeps what its training did
        restarted = bool(meta.get("restarted", False)) if finished_before else True
    if state is None:
        state = program.init(hp, keys)
        jax.block_until_ready(state)
    resumed_at = done
    compile_seconds = time.perf_counter() - t0
    seconds = eval_seconds = 0.0
    stopped = False
    # The next chunk is dispatched (JAX runs it asynchronously) before this one is committed
    # and reported, so the checkpoint's write and the report (Ray Tune's round trip to its
    # driver) overlap training instead of adding to it. The next chunk only reads this one's
    # state: the results are the same as one chunk after the other.
    pending = (
        _dispatch(program, hp, state, min(chunk, num_updates - done))
        if done < num_updates
        else None
    )
    while pending is not None and not stopped:
        n, (state, metrics), t, compiling = pending
        jax.block_until_ready(state)
        compile_seconds += compiling
        seconds += time.perf_counter() - t  # from the run's start: a commit that outlasts it counts
        done += n
        pending = None
        if done < num_updates:
            pending = _dispatch(program, hp, state, min(chunk, num_updates - done))
        diverged |= _nonfinite(metrics, algo.policy_params(state))
        r = _chunk_returns(metrics)
        returns.append([None if math.isnan(x) else float(x) for x in r])
        scores = r
        if chunk_eval:  # (the next chunk runs meanwhile: it only reads this state)
            t_eval = time.perf_counter()
            means, cut = _evaluate(algo, program, state, venv, trials, diverged, chunk_eval)
            chunk_evals.append(means)
            chunk_cuts.append(cut)
            eval_seconds += time.perf_counter() - t_eval
            scores = np.asarray([np.nan if x is None else x for x in chunk_evals[-1]])
        if ck is not None:
            meta = {
                "spec": digest,
                "updates_done": done,
                "chunk_returns": returns,
                "chunk_eval_returns": chunk_evals,
                "chunk_eval_cut_off": chunk_cuts,
                "diverged": diverged.tolist(),
                "restarted": restarted,
                "seconds_total": None if earlier is None else round(earlier + seconds, 4),
                # this call's work so far: what a group ASHA stops here reports
                "call": {"compile_seconds": round(compile_seconds, 4),
                         "seconds": round(seconds, 4), "eval_seconds": round(eval_seconds, 4),
                         "programs": program.compiles - compiles_before},
            }  # fmt: skip
            save_checkpoint(ck, state, metadata=meta)
        if on_chunk is not None:
            stopped = bool(on_chunk(done, num_updates, scores))
    t_eval = time.perf_counter()
    evals: list[float | None] = [None] * len(trials)
    cuts: list[int | None] = [None] * len(trials)
    episodes = int(spec["eval_episodes"])
    if done == num_updates and episodes:
        last = len(chunk_evals) == len(returns) and len(chunk_cuts) == len(returns)
        if chunk_eval == episodes and last:
            # the last chunk's: the same state, keys, episodes
            evals, cuts = list(chunk_evals[-1]), list(chunk_cuts[-1])
        else:
            evals, cuts = _evaluate(algo, program, state, venv, trials, diverged, episodes)
    eval_seconds += time.perf_counter() - t_eval
    total = None if earlier is None else round(earlier + seconds, 4)
    out = []
    for i, t in enumerate(trials):
        out.append(
            {
                "index": int(t["index"]),
                "group": int(spec["group"]),
                "config": dict(t["config"]),
                "seed": int(t["seed"]),
                "final_eval_return": evals[i],
                "eval_episodes_cut_off": cuts[i],
                "env_steps": done * int(config.steps_per_update),
                "seconds": round(seconds, 4) if total is None else total,
                "chunk_returns": [row[i] for row in returns],
                "chunk_eval_returns": [row[i] for row in chunk_evals],
                "diverged": bool(diverged[i]),
                "stopped": False,
                "restarted": restarted,
            }
        )
    return GroupResult(
        group=int(spec["group"]),
        trials=out,
        updates_done=done,
        num_updates=num_updates,
        compile_seconds=round(compile_seconds, 4),
        seconds=round(seconds, 4),
        eval_seconds=round(eval_seconds, 4),
        programs=program.compiles - compiles_before,
        restarted=restarted,
        resumed_at_updates=resumed_at,
        seconds_total=total,
        finished_before=finished_before,
    )


def _earlier_seconds(meta: dict) -> float | None:
    """The training seconds a group's checkpoint holds (None where they were not kept): its
    `seconds_total`; for a checkpoint written before that was kept, its last call's, which
    is the whole training when the group never restarted."""
    if "seconds_total" in meta:
        total = meta["seconds_total"]
        return float(total) if isinstance(total, int | float) else None
    call = meta.get("call") or {}
    if not meta.get("restarted") and isinstance(call.get("seconds"), int | float):
        return float(call["seconds"])
    return None


# ---------------------------------------------------------------------- the sweep


@dataclasses.dataclass
class SweepResult:
    """What `sweep` returns."""

    algo: str
    env_id: str
    backend: str
    trials: list[dict[str, Any]]
    """One per trial, in trial order (see `GroupResult.trials`)."""
    groups: list[dict[str, Any]]
    """Per group: group, trials, programs, compile_seconds, seconds, restarted, ..."""
    seconds: float
    """Wall time of the whole sweep."""
    swept: list[str]
    """The swept fields."""
    already_complete: bool = False
    """Whether `out_dir` held this same sweep's results when the call began: it had finished
    before, and its trials are reported again (from the groups' checkpoints or Ray Tune's
    records; `overwrite=True` trains it afresh)."""

    @property
    def best(self) -> dict[str, Any] | None:
        """The configuration with the highest mean final evaluation return over its seeds
        (its trials and that mean), or None if no trial was evaluated. The first in trial
        order wins a tie; a non-finite mean never wins."""
        by_config: dict[str, list[dict]] = {}
        for t in self.trials:
            by_config.setdefault(json.dumps(t["config"], sort_keys=True), []).append(t)
        best = None
        for ts in by_config.values():
            if any(t["final_eval_return"] is None for t in ts):
                continue
            mean = float(np.mean([t["final_eval_return"] for t in ts]))
            if not math.isfinite(mean):
                continue
            if best is None or mean > best["mean_final_eval_return"]:
                best = {
                    "config": ts[0]["config"],
                    "mean_final_eval_return": mean,
                    "trials": [t["index"] for t in ts],
                }
        return best

    def summary(self) -> dict[str, Any]:
        """The `bellmax sweep --json` object."""
        keep = ("index", "group", "config", "seed", "final_eval_return", "env_steps", "seconds")
        return {
            "algo": self.algo,
            "env": self.env_id,
            "backend": self.backend,
            "swept": self.swept,
            "trials": [
                {
                    **{k: t[k] for k in keep},
                    "eval_episodes_cut_off": t.get("eval_episodes_cut_off"),
                    "diverged": t["diverged"],
                    "stopped": t.get("stopped", False),
                    "restarted": t["restarted"],
                }
                for t in self.trials
            ],
            "best": self.best,
            "groups": self.groups,
            "programs": sum(g["programs"] for g in self.groups),
            "seconds": round(self.seconds, 4),
            "already_complete": self.already_complete,
        }


def sweep(
    algo: str,
    env: str,
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    space: Sequence[Space] = (),
    num_random: int = 0,
    seeds: Sequence[int] = (0,),
    base: Any = None,
    chunks: int = 10,
    eval_episodes: int = 10,
    backend: str = "local",
    address: str | None = None,
    scheduler: str = "none",
    out_dir: str | os.PathLike | None = None,
    sample_seed: int = 0,
    ray_options: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    names: Callable[[str], str] | None = None,
) -> SweepResult:
    """Train every (configuration, seed) trial of a sweep.

    Args:
      algo: `ppo`, `a2c`, `reinforce`, `dqn`, `sac` or `td3`.
      env: a bellmax or gymnax env id (the trials are vmapped: no Gymnasium ids).
      grid: `{field: values}`; the sweep trains their product.
      space: `Space`s to draw `num_random` configurations from (crossed with the grid).
      num_random: how many random configurations.
      seeds: every configuration is trained with each seed (`jax.random.key(seed)`).
      base: the Config the swept fields change (default: the algorithm's `Config()`).
      chunks: about how many chunks each group's run is split into (checkpoints, ASHA rungs).
      eval_episodes: final evaluation episodes per trial (0: none).
      backend: `local` (groups one after another in this process) or `ray` (one Ray Tune
        trial per group; needs `bellmax[ray]`).
      address: with `ray`, the cluster to join (`ray start --head` prints it); None joins
        the one `RAY_ADDRESS` names, else starts a local Ray instance (`ray_address`), or
        uses the one this process already runs.
      scheduler: `none`, or `asha` (with `ray`: Ray Tune's ASHA stops weak groups at chunk
        boundaries, on their best trial's evaluation return after the chunk, over
        `eval_episodes` episodes; on its training return with `eval_episodes=0`).
      out_dir: `results.csv`, `results.json`, one plot per swept field and, per group, its
        checkpoint (`groups/<g>/`, with `ray` `groups/ray-<g>/`; a rerun with the same
        settings resumes it); with `ray` also Tune's own records (`ray/`, restored by a rerun
        of the same sweep). None: nothing written (a temporary directory holds
        Ray's records).
      sample_seed: seed of the random configurations' draws.
      ray_options: more `ray.tune.TuneConfig` settings (e.g. `{"max_concurrent_trials": 4}`;
        `reuse_actors` is True unless given: a group after the first runs in a worker that
        has imported bellmax and jax already, the largest part of a group's overhead),
        `max_failures` (restarts of a failed group, default 3) and, for fault tests,
        `kill_after_updates=(UPDATES, MARKER)`: the worker of the first group past UPDATES
        kills itself (SIGKILL) once, at the end of its next chunk, writing MARKER first.
      overwrite: replace the sweep `out_dir` holds (its results, plots, checkpoints and Ray
        records) and train this one afresh; without it a directory of another sweep is
        refused (the message names the settings that differ), and the same sweep run again
        resumes there (one that had finished is reported again: `already_complete`). A
        directory that holds another command's run (`bellmax train`, ...) is always refused.
      names: how messages name this function's parameters and the Config's fields
        (`bellmax sweep` passes its options: `--out`, `--scheduler asha`, `--total-steps`);
        None: by their own names (`out_dir`, `scheduler='asha'`, `total_timesteps`).

    Raises:
      ValueError: bad options or values (named); BellmaxError: `ray` without `bellmax[ray]`.
    """
    if algo not in SWEEP_ALGORITHMS:
        raise unknown_name("algorithm", str(algo), SWEEP_ALGORITHMS)
    if backend not in BACKENDS:
        raise unknown_name("backend", str(backend), BACKENDS)
    if scheduler not in SCHEDULERS:
        raise unknown_name("scheduler", str(scheduler), SCHEDULERS)
    ray_backend = _say("backend", "ray", names)
    if scheduler != "none" and backend != "ray":
        raise ValueError(
            f"{_say('scheduler', scheduler, names)} runs in Ray Tune; add {ray_backend}."
        )
    if address is not None and backend != "ray":
        raise ValueError(
            f"{_say('address', address, names)} names a Ray cluster; add {ray_backend}."
        )
    chunks = check_int(chunks, "chunks", owner="sweep", low=1)
    eval_episodes = check_int(eval_episodes, "eval_episodes", owner="sweep", low=0)
    num_random = check_int(num_random, "num_random", owner="sweep", low=0)
    module = get_algorithm(algo)
    base = module.Config() if base is None else base
    if not isinstance(base, module.Config):
        raise TypeError(f"base must be a {algo}.Config, got {type(base).__name__}.")
    if backend == "ray":
        _import_ray(names)  # the missing extra is named before any work
    trials = plan_trials(
        base, grid=grid, space=space, num_random=num_random, seeds=seeds,
        sample_seed=sample_seed, names=names,
    )  # fmt: skip
    groups = plan_groups(base, trials)
    base_dict = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    # ASHA ranks groups on an evaluation after every chunk (its rungs)
    ranked = {"chunk_eval_episodes": eval_episodes} if scheduler == "asha" else {}
    specs = [
        {"algo": algo, "env": env, "base": base_dict, "chunks": chunks,
         "eval_episodes": eval_episodes, **ranked, **g}
        for g in groups
    ]  # fmt: skip
    specs = json.loads(json.dumps(specs))  # JSON-able (tuples become lists), as Ray sends them
    venvs: dict[int, Any] = {}
    for s in specs:  # the env and each trial's run are checked before any training
        cfg = _group_config(module, s)
        if cfg.num_envs not in venvs:
            venvs[cfg.num_envs] = make_vector_env(env, num_envs=cfg.num_envs, seed=0)
        for tr in s["trials"]:
            values = {k: tr["config"][k] for k in s["traced"]}
            dataclasses.replace(cfg, **values).validate(venvs[cfg.num_envs])
    out = Path(os.path.expanduser(out_dir)) if out_dir is not None else None  # as its checks
    settings = _settings(algo, env, base_dict, trials, chunks, eval_episodes, scheduler)
    refuse = functools.partial(
        _check_out_dir, out, specs, overwrite=bool(overwrite), settings=settings, names=names
    )
    lock = _lock_out_dir(out, refuse, names) if out is not None else None
    try:
        return _sweep_locked(
            algo, env, specs, trials, out, settings, scheduler, backend, address,
            ray_options, overwrite, names,
        )  # fmt: skip
    finally:
        if lock is not None:
            lock.release()


def _lock_out_dir(
    out: Path, refuse: Callable[[], Any], names: Callable[[str], str] | None
) -> FileLock:
    """Take the sweep folder's lock (one writer at a time: a second sweep there, even with
    `overwrite`, is refused while one runs). What `refuse` refuses (another command's run,
    another sweep) is refused before the lock file is made: such a folder is left as it was."""
    lock = lock_output_dir(out, refuse, option=names("out_dir") if names is not None else "out_dir")
    lock.write_owner()  # (`_claim_out_dir` checks again, under the lock)
    return lock


def _sweep_locked(
    algo: str, env: str, specs: list[dict], trials: list[dict], out: Path | None,
    settings: dict, scheduler: str, backend: str, address: str | None,
    ray_options: dict | None, overwrite: bool, names: Callable[[str], str] | None,
) -> SweepResult:  # fmt: skip
    """The rest of `sweep`, its folder (if any) locked; `settings` as `_settings`'."""
    already_complete = False
    if out is not None:  # (checked again, under the lock)
        already_complete = _claim_out_dir(
            out, specs, overwrite=bool(overwrite), settings=settings, names=names
        )
    t = time.perf_counter()
    if backend == "local":
        results = [
            run_group(
                s, checkpoint_dir=None if out is None else out / SWEEP_GROUPS / str(s["group"])
            )
            for s in specs
        ]
    else:
        results = _ray_sweep(
            specs, address=address, scheduler=scheduler, out=out,
            options=dict(ray_options or {}), already_complete=already_complete,
        )  # fmt: skip
    # held and reported again, not trained: a sweep finished on the local backend and run
    # again on Ray trains there (its group checkpoints are Ray's own, groups/ray-<g>)
    already_complete = already_complete and all(r.finished_before for r in results)
    swept = sorted({k for tr in trials for k in tr["config"]})
    all_trials = sorted((tr for r in results for tr in r.trials), key=lambda tr: tr["index"])
    result = SweepResult(
        algo=algo,
        env_id=env,
        backend=backend,
        trials=all_trials,
        groups=[_group_summary(r) for r in results],
        seconds=time.perf_counter() - t,
        swept=swept,
        already_complete=already_complete,
    )
    if out is not None:
        write_results(out, result)
    return result


def _settings(
    algo: str,
    env: str,
    base: dict[str, Any],
    trials: list[dict],
    chunks: int,
    eval_episodes: int,
    scheduler: str = "none",
) -> dict[str, Any]:
    """What a sweep's `SWEEP_JSON` records of its settings, in the form of a train run's (the
    keys `bellmax.train.driver.settings_differences` compares, and the scheduler, which
    `_claim_out_dir` compares itself): each swept field's `config` value is the list of its
    values, in trial order."""
    config = dict(base)
    swept: dict[str, list[Any]] = {}
    for t in trials:
        for k, v in t["config"].items():
            if v not in swept.setdefault(k, []):
                swept[k].append(v)
    config.update(swept)
    seeds = list(dict.fromkeys(int(t["seed"]) for t in trials))
    settings = {"algo": algo, "env": env, "seeds": seeds, "config": config, "chunks": chunks,
                "eval_episodes": eval_episodes, "scheduler": scheduler}  # fmt: skip
    return json.loads(json.dumps(settings, default=list))


def _claim_out_dir(
    out: Path,
    specs: list[dict[str, Any]],
    *,
    overwrite: bool,
    settings: dict[str, Any] | None = None,
    names: Callable[[str], str] | None = None,
) -> bool:
    """Refuse an `out_dir` that holds another command's run or another sweep (unless
    `overwrite`: then the sweep there goes, even this same one), and mark it as this sweep's
    (`SWEEP_JSON`, with its `settings`). `names` as for `sweep`.

    Returns:
      Whether it held this same sweep's results (it had finished; not with `overwrite`).
    """
    held, digest = _check_out_dir(out, specs, overwrite=overwrite, settings=settings, names=names)
    if overwrite:  # its results, plots, checkpoints and Ray records
        clear_outputs(out, "sweep")
    complete = held == digest and not overwrite and (out / RESULTS_JSON).exists()
    marker = {"digest": digest, "algo": specs[0]["algo"], "env": specs[0]["env"],
              "groups": len(specs)}  # fmt: skip
    if settings is not None:
        marker["settings"] = settings
    atomic_write_json(out / SWEEP_JSON, marker)
    return complete


def _check_out_dir(
    out: Path,
    specs: list[dict[str, Any]],
    *,
    overwrite: bool,
    settings: dict[str, Any] | None = None,
    names: Callable[[str], str] | None = None,
) -> tuple[str | None, str]:
    """`_claim_out_dir`'s refusals, with nothing written: `(what the folder holds: a
    sweep's digest, "unreadable", "unmarked" or None; this sweep's digest)`."""
    option = names("out_dir") if names is not None else "out_dir"
    # another command's run (train, imitate, ...); a sweep here is this function's to judge
    check_run_dir(out, "sweep", option=option, resume=True)
    for inner in (Path(SWEEP_GROUPS), Path(SWEEP_RAY), Path(SWEEP_RAY) / "sweep"):
        if (out / inner).is_symlink():  # (a folder from elsewhere: its records get deleted)
            raise BellmaxError(
                f"{str(out / inner)!r} is a symbolic link; a sweep keeps its records inside its "
                f"folder, and replaces or deletes them, never through a link: remove the link "
                f"or choose another {option}."
            )
    digest = _spec_digest({"specs": specs})
    held, stored = None, None
    if (out / SWEEP_JSON).exists():
        try:
            marker = json.loads((out / SWEEP_JSON).read_text())
            held, stored = marker.get("digest"), marker.get("settings")
        except (OSError, ValueError, AttributeError, RecursionError):
            held = "unreadable"
    elif (out / RESULTS_JSON).exists():
        held = "unmarked"  # the results of a sweep written before the marker existed
    if held is not None and held != digest and not overwrite:
        from bellmax.train.driver import settings_differences

        diffs = settings_differences(stored, settings, names=names) if stored and settings else []
        # ASHA evaluates after every chunk: its groups' checkpoints are not the others'
        which = names("scheduler") if names is not None else "scheduler"
        given = (settings or {}).get("scheduler", "none")
        if settings and stored and "scheduler" not in stored and given != "none":
            # a sweep marked before the scheduler was recorded (before ASHA evaluated after
            # each chunk): what it ran under is unknown, and its checkpoints differ
            diffs.append(
                f"{which}: not recorded in the run (written by an earlier bellmax, before "
                f"ASHA's groups kept other checkpoints), {given} given"
            )
        elif settings and stored and stored.get("scheduler", "none") != given:
            diffs.append(f"{which}: {stored.get('scheduler', 'none')} in the run, {given} given")
        what = "; ".join(diffs) or "another algorithm, env, swept values, seeds, budget or chunks"
        raise ValueError(
            f"{option} {str(out)!r} holds the results of another sweep ({what}): give another "
            f"{option}, or {switch_name('overwrite', option)} to replace them."
        )
    return held, digest


def _group_summary(r: GroupResult) -> dict[str, Any]:
    return {
        "group": r.group,
        "trials": [t["index"] for t in r.trials],
        "updates_done": r.updates_done,
        "num_updates": r.num_updates,
        "programs": r.programs,
        "compile_seconds": r.compile_seconds,
        "seconds": r.seconds,
        "seconds_total": r.seconds_total,
        "eval_seconds": r.eval_seconds,
        "restarted": r.restarted,
        "resumed_at_updates": r.resumed_at_updates,
        "finished_before": r.finished_before,
    }


# ---------------------------------------------------------------------- results on disk


def write_results(out: str | os.PathLike, result: SweepResult) -> None:
    """`results.csv` (one row per trial), `results.json` (`summary()`) and
    `return_vs_<field>.png` for each swept field, each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    cols = ["trial", "group", *result.swept, "seed", "final_eval_return",
            "eval_episodes_cut_off", "env_steps", "seconds", "diverged", "stopped",
            "restarted"]  # fmt: skip
    writer.writerow(cols)
    for t in result.trials:
        cfg = t["config"]
        writer.writerow(
            [t["index"], t["group"]]
            + [_cell(cfg.get(k)) for k in result.swept]
            + [
                t["seed"],
                _cell(t["final_eval_return"]),
                _cell(t.get("eval_episodes_cut_off")),
                t["env_steps"],
                t["seconds"],
                t["diverged"],
                t.get("stopped", False),
                t["restarted"],
            ]
        )
    atomic_write_text(out / RESULTS_CSV, buf.getvalue())
    atomic_write_json(out / RESULTS_JSON, result.summary())
    for field in result.swept:
        _plot_field(out / SWEEP_PLOT.format(field=field), result, field)


def _cell(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, tuple | list):
        return "x".join(str(v) for v in x)
    return repr(x) if isinstance(x, float) else str(x)


def _plot_field(path: Path, result: SweepResult, field: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.6, 3.8))
    ax = fig.subplots()
    values = [t["config"].get(field) for t in result.trials]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    labels = sorted({_cell(v) for v in values}, key=lambda s: (len(s), s))
    xs = [v if numeric else labels.index(_cell(v)) for v in values]
    ys = [
        np.nan if t["final_eval_return"] is None else t["final_eval_return"] for t in result.trials
    ]
    ax.scatter(xs, ys, s=18, alpha=0.7, label="trial (seed)")
    means: dict[Any, list[float]] = {}
    for x, y in zip(xs, ys, strict=True):
        means.setdefault(x, []).append(y)
    mx = sorted(means)
    with np.errstate(all="ignore"):
        ax.plot(mx, [np.nanmean(means[x]) if not np.isnan(means[x]).all() else np.nan for x in mx],
                "k-o", lw=1.5, ms=4, label="mean over seeds")  # fmt: skip
    if numeric and min(xs) > 0 and max(xs) / min(xs) > 2.5:  # rates spread by factors
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel(field)
    ax.set_ylabel("final evaluation return")
    ax.set_title(f"{result.algo} on {result.env_id}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)


# ---------------------------------------------------------------------- Ray Tune


def _import_ray(names: Callable[[str], str] | None = None) -> Any:
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise BellmaxError(
            f"{_say('backend', 'ray', names)} needs Ray Tune, the optional extra {RAY_EXTRA}: "
            f"pip install '{RAY_EXTRA}' (or: pip install 'ray[tune]')."
        ) from None
    return ray


def ray_address(address: str | None) -> str:
    """The cluster `sweep(backend="ray")` joins: `address` if given, else the one the
    `RAY_ADDRESS` environment variable names (Ray's convention; `ray job submit` sets it for
    its drivers), else `"local"`: a new Ray instance of this process's own.

    Never Ray's own default (`ray.init(address=None)`), which with no `RAY_ADDRESS` joins
    whatever cluster `ray start` last left running on this machine (another user's, or a
    stale one), where the README promises a local instance.
    """
    return address or os.environ.get("RAY_ADDRESS") or "local"


def _compile_cache() -> None:
    """A persistent XLA compile cache per node, so a Ray worker process loads the programs an
    earlier one compiled: bellmax's own (`bellmax.core.compile_cache`, in the user's cache
    directory; the driver, the local backend and every worker of a node share it), unless the
    user chose another cache directory for JAX or turned it off (`BELLMAX_COMPILE_CACHE=0`)."""
    from bellmax.core.compile_cache import enable_compile_cache

    enable_compile_cache()


def _tune_group(config: dict[str, Any]) -> None:
    """The Ray Tune trainable: one program group, reporting after every chunk, resuming from
    its last chunk after a failure: Tune's checkpoint, or the group's own checkpoint in the
    sweep's `--out` (`groups/<g>/`, written at every chunk) where that one is further on."""
    from ray import tune

    spec = config["spec"]
    _compile_cache()
    keep = spec.get("_checkpoint_dir")
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bellmax-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            _take_if_further(Path(d) / CHECKPOINT, work / CHECKPOINT)
    kill_after = spec.get("_kill_after_updates")
    marker = Path(kill_after[1]) if kill_after else None

    def report(done: int, total: int, returns: np.ndarray) -> None:
        # the group's checkpoint, saved just before this call, holds every chunk's returns
        # (those before a resume too) and whether it restarted: kept if ASHA stops it here
        meta = read_checkpoint_metadata(work / CHECKPOINT)
        finite = returns[np.isfinite(returns)]
        score = float(finite.max()) if finite.size else float("nan")
        if marker is not None and done > kill_after[0] and not marker.exists():
            # fault injection: die once, the chunk after UPDATES (that one Tune has)
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        tune.report(
            {"score": score, "updates_done": done, "done_fraction": done / total,
             "chunk_returns": json.dumps(meta.get("chunk_returns", [])),
             "chunk_eval_returns": json.dumps(meta.get("chunk_eval_returns", [])),
             "diverged": json.dumps(meta.get("diverged", [])),
             "restarted": bool(meta.get("restarted", False)),
             "seconds_total": json.dumps(meta.get("seconds_total")),
             "call": json.dumps(meta.get("call", {}))},
            checkpoint=tune.Checkpoint.from_directory(str(work)),
        )  # fmt: skip

    try:
        result = run_group(spec, checkpoint_dir=work, on_chunk=report)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    tune.report(
        {"score": _best_eval(result), "group_result": json.dumps(dataclasses.asdict(result))}
    )


def _take_if_further(source: Path, target: Path) -> None:
    """Copy the checkpoint `source` to `target` unless `target` holds the same group's state
    at least as far on."""
    if target.exists():
        have, new = read_checkpoint_metadata(target), read_checkpoint_metadata(source)
        if have.get("spec") == new.get("spec") and have.get("updates_done", 0) >= new.get(
            "updates_done", 0
        ):
            return
    atomic_write_bytes(target, source.read_bytes())


#: Environment variables Ray Tune gives every trial actor as a runtime environment, that
#: bellmax's trainable does not need: `PL_DISABLE_FORK`, for PyTorch Lightning (ray#28197).
TUNE_ENV_VARS_NOT_NEEDED = ("PL_DISABLE_FORK",)


@contextmanager
def _trials_on_started_workers() -> typing.Iterator[None]:
    """Ray Tune's trial actors without the runtime environment Tune adds for PyTorch Lightning.

    Ray takes an idle worker process for an actor only where their runtime environments
    match, and a node's idle workers (those Ray starts with it, one per CPU) have none: an
    actor with `{"env_vars": {"PL_DISABLE_FORK": "1"}}` makes Ray start a new worker through
    its runtime-environment agent: 1.0-1.1 s against 0.2 s for an idle worker (0.02 s once it
    is up) and 0.6 s for a new plain one (`bench/sweep.py --only-overhead`, 2-core EPYC).
    bellmax's trainable never imports Lightning, so while the sweep's Tune run registers its
    trial actors, Tune's default variables (`ray.tune.execution.class_cache.DEFAULT_ENV_VARS`,
    a Ray internal) lack it; they are restored after. A Ray without that internal is left as
    it is."""
    try:
        from ray.tune.execution import class_cache

        defaults = class_cache.DEFAULT_ENV_VARS
        saved = dict(defaults)
    except (ImportError, AttributeError, TypeError):
        yield
        return
    for name in TUNE_ENV_VARS_NOT_NEEDED:
        defaults.pop(name, None)
    try:
        yield
    finally:
        defaults.clear()
        defaults.update(saved)


def _best_eval(result: GroupResult) -> float:
    vals = [t["final_eval_return"] for t in result.trials if t["final_eval_return"] is not None]
    return float(max(vals)) if vals else float("nan")


def _trial_name(trial: Any) -> str:
    return f"group_{trial.config['spec']['group']}"


def _ray_sweep(
    specs: list[dict],
    *,
    address: str | None,
    scheduler: str,
    out: Path | None,
    options: dict,
    already_complete: bool = False,
) -> list[GroupResult]:
    """Every group as a Ray Tune trial. `already_complete`: `out` held this sweep's results
    (`_claim_out_dir`), so a restored experiment's groups had all ended and Tune runs none
    again: their results, from the call that finished them, are reported as finished before
    this one (`_finished_before`), as the local backend reports them."""
    ray = _import_ray()
    from ray import tune

    max_failures = int(options.pop("max_failures", 3))
    options.setdefault("reuse_actors", True)
    digest = _spec_digest({"specs": specs, "scheduler": scheduler})
    kill = options.pop("kill_after_updates", None)
    if kill is not None:
        specs = [{**s, "_kill_after_updates": [int(kill[0]), str(kill[1])]} for s in specs]
    if out is not None:  # each group commits every chunk there too (Tune's copy may lag)
        groups = (out / SWEEP_GROUPS).resolve()
        specs = [{**s, "_checkpoint_dir": str(groups / f"ray-{s['group']}")} for s in specs]
    started = not ray.is_initialized()
    if started:
        ray.init(address=ray_address(address), include_dashboard=False, log_to_driver=False)
    storage, restored = None, False
    try:  # (the cluster and the temporary records go even if Tune fails to start)
        storage = (
            out / SWEEP_RAY if out is not None else Path(tempfile.mkdtemp(prefix="bellmax-ray-"))
        )
        trainable = tune.with_resources(_tune_group, {"cpu": 1})
        experiment, stamp = (storage / "sweep").resolve(), storage / STAMP
        if (
            out is not None
            and stamp.exists()
            and stamp.read_text() == digest
            and tune.Tuner.can_restore(str(experiment))
        ):  # the same sweep was interrupted (its driver died, or a group failed for good)
            tuner = tune.Tuner.restore(
                str(experiment), trainable, resume_unfinished=True, resume_errored=True
            )
            restored = True
        else:
            shutil.rmtree(experiment, ignore_errors=True)  # Tune's records of other settings
            storage.mkdir(parents=True, exist_ok=True)
            atomic_write_text(stamp, digest)
            tuner = _new_tuner(tune, trainable, specs, scheduler, storage, options, max_failures)
        # Tune prints its tables on stdout, which is `--json`'s (one object): to stderr.
        with _trials_on_started_workers(), contextlib.redirect_stdout(sys.stderr):
            grid = tuner.fit()
        results = _ray_results(grid, out)
        if restored and already_complete:
            results = [_finished_before(r) for r in results]
        return results
    finally:
        if started:
            ray.shutdown()
        if out is None and storage is not None:  # Tune's records of a sweep that keeps nothing
            shutil.rmtree(storage, ignore_errors=True)


def _ray_results(grid: Any, out: Path | None) -> list[GroupResult]:
    """Each group's `GroupResult` from Tune's results (raises for a failed group)."""
    results: list[GroupResult] = []
    for r in grid:
        spec = r.config["spec"]
        done = r.metrics.get("group_result") if r.metrics else None
        if done:
            group = GroupResult(**json.loads(done))
            for t in group.trials:  # a result Tune recorded before trials had the keys
                t.setdefault("stopped", False)
                t.setdefault("chunk_eval_returns", [])
            results.append(group)
            continue
        if r.error is not None:
            raise BellmaxError(
                f"Ray Tune trial of group {spec['group']} failed: {r.error}"
                + (" (the same sweep again resumes it from its last chunk)" if out else "")
            )
        results.append(_stopped_group(spec, r.metrics or {}))
    return sorted(results, key=lambda g: g.group)


def _finished_before(r: GroupResult) -> GroupResult:
    """A group of a finished sweep Tune restored, as the local backend reports a group whose
    checkpoint was at its end: nothing compiled, trained or evaluated in this call (Tune
    returns the result of the call that finished it). A group that ran in this call (Tune
    had not recorded its end) or that ASHA stopped is kept as it is."""
    if r.finished_before or r.updates_done < r.num_updates:
        return r
    # (the trials keep their training seconds: it is this call that trained nothing)
    return dataclasses.replace(
        r, compile_seconds=0.0, seconds=0.0, eval_seconds=0.0, programs=0,
        resumed_at_updates=r.updates_done, finished_before=True,
    )  # fmt: skip


def _new_tuner(
    tune: Any, trainable: Any, specs: list[dict], scheduler: str, storage: Path, options: dict,
    max_failures: int,
) -> Any:  # fmt: skip
    from ray.tune.schedulers import ASHAScheduler

    sched = None
    if scheduler == "asha":
        sched = ASHAScheduler(
            time_attr="training_iteration", max_t=_asha_max_t(specs),
            grace_period=1, reduction_factor=2,
        )  # fmt: skip
    return tune.Tuner(
        trainable,
        param_space={"spec": tune.grid_search(specs)},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            scheduler=sched,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
            **options,
        ),
        run_config=tune.RunConfig(
            name="sweep",
            storage_path=str(storage.resolve()),
            failure_config=tune.FailureConfig(max_failures=max_failures),
            verbose=0,
        ),
    )


def _asha_max_t(specs: list[dict]) -> int:
    """ASHA's `max_t`: the most reports a group makes, one per chunk and its final one.

    `--chunks` is a target: `plan_chunks` picks a chunk length that divides the updates, so
    a group may run more chunks (the defaults give reinforce 12 for 10). Ray stops any trial
    whose report reaches `max_t`, so a `max_t` below a group's reports stopped it before its
    final result, whatever its score."""
    from bellmax.train.driver import plan_chunks

    most = 1
    for spec in specs:
        n = int(_group_config(get_algorithm(spec["algo"]), spec).num_updates)
        most = max(most, -(-n // plan_chunks(n, int(spec["chunks"]))))
    return most + 1


def _stopped_group(spec: dict, metrics: dict) -> GroupResult:
    """A group ASHA stopped: its trials are listed without a final evaluation, with the
    training and evaluation returns of every chunk they ran (before a resume too), whether
    the group restarted, and what its last call compiled and ran up to the stop."""
    done = int(metrics.get("updates_done", 0))
    cfg = _group_config(get_algorithm(spec["algo"]), spec)
    history = json.loads(metrics.get("chunk_returns") or "[]")
    evals = json.loads(metrics.get("chunk_eval_returns") or "[]")
    restarted = bool(metrics.get("restarted", False))
    diverged = json.loads(metrics.get("diverged") or "[]")
    diverged = diverged if len(diverged) == len(spec["trials"]) else [False] * len(spec["trials"])
    call = json.loads(metrics.get("call") or "{}")
    seconds = float(call.get("seconds", 0.0))
    total = json.loads(metrics.get("seconds_total") or "null")
    total = float(total) if isinstance(total, int | float) else None
    trials = [
        {"index": t["index"], "group": spec["group"], "config": t["config"], "seed": t["seed"],
         "final_eval_return": None, "eval_episodes_cut_off": None,
         "env_steps": done * cfg.steps_per_update,
         "seconds": seconds if total is None else total,
         "chunk_returns": [row[i] for row in history],
         "chunk_eval_returns": [row[i] for row in evals], "diverged": bool(diverged[i]),
         "stopped": True,
         "restarted": restarted}
        for i, t in enumerate(spec["trials"])
    ]  # fmt: skip
    return GroupResult(
        group=spec["group"], trials=trials, updates_done=done, num_updates=cfg.num_updates,
        compile_seconds=float(call.get("compile_seconds", 0.0)), seconds=seconds,
        eval_seconds=float(call.get("eval_seconds", 0.0)), programs=int(call.get("programs", 0)),
        restarted=restarted, seconds_total=total,
    )  # fmt: skip
