"""The training driver: one algorithm, many seeds, chunks of compiled updates.

An algorithm module (`bellmax.deep.ppo`, `dqn`, `a2c`, `reinforce`) provides `Config`,
`init(key, config, venv)`, `update(state, config, venv) -> (state, metrics)`,
`act(...)` and `policy_params(state)`. The driver

- builds the vector environment and validates the config,
- `vmap`s `init` and a `lax.scan` of `update` over seeds (host environments, which live
  outside JAX, run their seeds one after another; a single seed runs unbatched, so its
  `lax.cond`s stay branches) and compiles it once, timing the compile apart (ahead-of-time
  `lower().compile()`),
- runs the updates in equal chunks; after each chunk it checks the losses and the policy
  weights (a non-finite value stops the run and names the update), calls `on_chunk`
  (progress bars, experiment trackers: `ChunkInfo.scalars`), and commits the chunk: one
  atomic checkpoint holding the whole training state and every metric so far, then
  `metrics.json` and `metrics.csv` rewritten from it,
- resumes from that checkpoint so that the result is bit-identical to an uninterrupted run
  (same chunks, same compiled program, same keys; not on Gymnasium envs, which step on the
  host: their episodes restart at the resume),
- writes `learning_curve.png` and `run.json`, and evaluates the final policy of every seed;
- writes `policy.msgpack` (`bellmax.policy`) after each checkpoint and at the end: every
  seed's policy weights, architecture and spaces, in a format of its own that needs no
  training state (`bellmax.load_policy(DIR)`, `bellmax evaluate DIR --env OTHER`); it
  records the SHA-256 of the checkpoint it was written with, so a policy file one commit
  behind (a kill between the two writes) is recognised, and rewritten when the run resumes.

A run directory never loses a run:

- `run.json` records the run's settings (algorithm, env, seeds, every Config field, chunks,
  evaluation) and a random run id before any training, so a run killed before its first
  checkpoint resumes from the start, and `bellmax train --resume` alone knows the settings;
  its `status` is `running`, then `finished`, `solved`, `stopped` (`stop_after`), `diverged`
  or, after a Ctrl-C, `interrupted` (a killed process leaves `running`);
- one process writes a run at a time: an exclusive lock (`flock` on `DIR/.lock`, released by
  the kernel however the holder dies) makes a second writer stop with a message;
- a directory that holds a run is refused unless the run is resumed (`resume=True`) or
  replaced (`overwrite=True`); a refused call changes nothing in it;
- the checkpoint is the one commit point of a chunk: a `kill -9` at any instant leaves the
  previous chunk's checkpoint (or none), and resuming redoes only what was lost;
- a checkpoint is used only by the run whose id it carries.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import json
import math
import os
import secrets
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax import __version__
from bellmax.core.caches import recently_used
from bellmax.core.checks import check_int, check_number, check_seeds
from bellmax.core.display import summary_repr
from bellmax.core.errors import BellmaxError, DivergenceError
from bellmax.core.io import (
    CHECKPOINT,
    CONTROLLER_NPZ,
    LEARNING_CURVE_PNG,
    METRICS_CSV,
    METRICS_JSON,
    NEURAL_POLICY_MSGPACK,
    RESULT_JSON,
    RUN_JSON,
    RUN_OUTPUTS,
    check_output_path,
    check_run_dir,
    clear_outputs,
    neural_policy_how,
    switch_name,
)
from bellmax.core.program_cache import load_or_export, program_cache_dir
from bellmax.core.provenance import run_provenance
from bellmax.core.xla import NETWORK_UPDATES, RUN_ONCE, cpu_compile_options, gc_paused, jit_lightly
from bellmax.deep import ALGORITHMS, get_algorithm
from bellmax.deep.evaluate import evaluate_batch
from bellmax.deep.loop import mean_episode_return, with_hyperparameters
from bellmax.envs import registry
from bellmax.envs.vector import make_vector_env
from bellmax.policy import (
    POLICY_FILE,
    PolicyFileError,
    load_policies,
    policy_network,
    policy_weights,
    space_mismatch,
    write_policy_file,
)
from bellmax.train.checkpoint import (
    CheckpointError,
    checkpoint_digest,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from bellmax.train.io import (
    FileLock,
    atomic_savefig,
    atomic_write_json,
    atomic_write_text,
    lock_output_dir,
)
from bellmax.train.tracking import chunk_scalars

__all__ = [
    "ChunkInfo",
    "TrainResult",
    "check_recorded_env",
    "config_from_dict",
    "evaluate_checkpoint",
    "learning_curves",
    "load_run",
    "plan_chunks",
    "read_run",
    "settings_differences",
    "split_hyperparameters",
    "train",
]

RUN_FORMAT = "bellmax-run/2"
#: What a resumed run must share with the stored one (everything that shapes its result).
SETTINGS = ("algo", "env", "seeds", "config", "chunks", "eval_episodes", "stop_return")


@dataclasses.dataclass(frozen=True)
class ChunkInfo:
    """What `on_chunk` receives after each chunk of updates."""

    updates_done: int
    num_updates: int
    env_steps: int
    """Environment steps per seed so far."""
    mean_return: float
    """Mean return over seeds of the episodes that ended in this chunk (NaN if none)."""
    seconds: float
    """Training seconds so far (compile excluded)."""
    scalars: dict[str, float] = dataclasses.field(default_factory=dict)
    """This chunk's means (`bellmax.train.tracking.chunk_scalars`): `episode_return`, and
    each metric (losses, entropy, approx_kl, learning_rate, ...) averaged over the chunk's
    updates and all seeds; what `bellmax train --log` sends to TensorBoard or W&B."""


@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    __repr__ = summary_repr

    algo: str
    env_id: str
    seeds: tuple[int, ...]
    config: Any
    state: Any
    """The final training state, stacked over seeds (leading axis = seed)."""
    metrics: dict[str, np.ndarray]
    """Per-update metrics `[seeds, updates]` (name -> array), from the start of the run."""
    updates_done: int
    num_updates: int
    env_steps: int
    """Environment steps per seed."""
    seconds: float
    """Training time after compile (this process only; `seconds_total` for the whole run)."""
    compile_seconds: float
    """Compile time (this process only)."""
    eval_returns: np.ndarray | None = None
    """`[seeds, episodes]` evaluation returns of the final policies (None if not evaluated)."""
    eval_cut_off: int = 0
    """Evaluation episodes (of all seeds) that had not ended when the evaluation's step cap
    (`bellmax.deep.evaluate`'s `max_steps`) ran out: their returns are the return so far."""
    solved_at_steps: list[int | None] | None = None
    """With `stop_return`: env steps per seed at the first evaluation reaching it (or None)."""
    solved_seconds: list[float | None] | None = None
    """With `stop_return`: training seconds (compile and evaluation excluded) until then,
    over every process that trained the run, as `solved_at_steps` counts its steps."""
    eval_seconds: float = 0.0
    """Time spent in evaluations during training (with `stop_return`)."""
    resumed_at_updates: int = 0
    """The updates an earlier process had done when this one resumed the run (0: not a
    resume); `env_steps` and `updates_done` count from the run's start."""
    seconds_total: float | None = None
    """Training time over every process that trained the run (None: an earlier process's
    was not kept)."""
    compile_seconds_total: float | None = None
    """Compile time over every process that trained the run (as `seconds_total`)."""
    compile_phases: dict[str, float] | None = None
    """Where `compile_seconds` went, in this process: `init` (compiling and running the
    state's initialisation, one call) and, summed over the chunk programs compiled,
    `chunk_trace` (JAX tracing the update loop), `chunk_lower` (to StableHLO) and
    `chunk_compile` (XLA, or loading it from the persistent cache). A chunk compiled in a
    background thread (traced and lowered before `init`, in the caller's thread) overlaps
    `init`, so the phases can sum to more than the wait."""

    @property
    def final_eval_return(self) -> float | None:
        """Mean over seeds and episodes of the final evaluation."""
        return None if self.eval_returns is None else float(np.mean(self.eval_returns))

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary (the `bellmax train --json` object)."""
        ret = self.metrics.get("episode_return_sum")
        cnt = self.metrics.get("episode_count")
        last = None
        if ret is not None and cnt is not None and cnt.shape[-1]:
            tail = max(1, cnt.shape[-1] // 10)
            c = cnt[:, -tail:].sum()
            last = float(mean_episode_return(ret[:, -tail:].sum(), c)) if c > 0 else None
        out = {
            "algo": self.algo,
            "env": self.env_id,
            "seeds": list(self.seeds),
            "final_eval_return": self.final_eval_return,
            "eval_return_per_seed": None
            if self.eval_returns is None
            else [float(x) for x in self.eval_returns.mean(axis=1)],
            "eval_episodes": None if self.eval_returns is None else int(self.eval_returns.shape[1]),
            "eval_episodes_cut_off": None if self.eval_returns is None else self.eval_cut_off,
            "train_return_last_10pct": last,
            "env_steps": int(self.env_steps),
            "env_steps_all_seeds": int(self.env_steps * len(self.seeds)),
            "updates": int(self.updates_done),
            "seconds": round(self.seconds, 4),
            "compile_seconds": round(self.compile_seconds, 4),
            "resumed_at_updates": int(self.resumed_at_updates),
            "seconds_total": self.seconds_total,
            "compile_seconds_total": self.compile_seconds_total,
        }
        if self.compile_phases is not None:
            out["compile_phases"] = {k: round(v, 4) for k, v in self.compile_phases.items()}
        if self.solved_at_steps is not None:
            out["solved_at_steps"] = self.solved_at_steps
            out["solved_seconds"] = self.solved_seconds
            out["eval_seconds"] = round(self.eval_seconds, 4)
        return out


def plan_chunks(num_updates: int, target_chunks: int = 20) -> int:
    """A chunk length: a divisor of `num_updates` near `num_updates / target_chunks`.

    Equal chunks mean one compiled program; with no divisor near the target, the last
    chunk is shorter (one more compile).
    """
    if num_updates < 1:
        raise ValueError(f"num_updates must be >= 1, got {num_updates}.")
    ideal = max(1, round(num_updates / max(1, target_chunks)))
    for c in sorted(
        range(max(1, ideal // 2), min(num_updates, 2 * ideal) + 1), key=lambda c: abs(c - ideal)
    ):
        if num_updates % c == 0:
            return c
    return ideal


def _config_dict(config: Any) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _metrics_to_host(metrics: Any) -> dict[str, np.ndarray]:
    if dataclasses.is_dataclass(metrics):
        items = {f.name: getattr(metrics, f.name) for f in dataclasses.fields(metrics)}
    else:
        items = dict(metrics)
    return {k: np.asarray(v) for k, v in items.items()}


def _extend_history(history: dict[str, np.ndarray] | None, m: dict[str, np.ndarray]):
    """The metric history `[seeds, updates]` with a chunk's metrics appended. A metric the
    earlier chunks did not record (a run resumed by a newer bellmax that records more) is
    NaN (0 for counts) over those updates."""
    if history is None:
        return m
    done = next(iter(history.values())).shape[1] if history else 0
    out = {}
    for k, v in m.items():
        old = history.get(k)
        if old is None:
            old = np.full((v.shape[0], done), np.nan if v.dtype.kind == "f" else 0, v.dtype)
        out[k] = np.concatenate([old, v], 1)
    return out


def split_hyperparameters(config: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """`(config with each numeric hyperparameter at its field's default, {name: its value})`.

    The hyperparameters are the float fields a Config lists in `HYPERPARAMETERS` (learning
    rate, discount, loss weights, ...); their values come back as float32 scalars, which is
    what the programs compute with either way. The driver compiles its programs for the
    first and passes them the second as data (`with_hyperparameters`), so runs that differ
    only in those values share the compiled programs: in this process (`_runner`) and in
    the persistent compile cache (`bellmax train ppo --lr 3e-4` after a run at the default).
    A config without them (or one the defaults would not validate) comes back whole.
    """
    names = getattr(type(config), "HYPERPARAMETERS", ())
    if not names or not dataclasses.is_dataclass(config):
        return config, {}
    fields = {f.name: f for f in dataclasses.fields(config)}
    values, defaults = {}, {}
    for name in names:
        f, value = fields.get(name), getattr(config, name, None)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if f is None or not number or type(f.default) is not float:
            continue  # (a None default, e.g. SAC's target_entropy, shapes the program)
        values[name] = np.float32(value)
        defaults[name] = f.default
    if not values:
        return config, {}
    try:
        return dataclasses.replace(config, **defaults), values
    except (TypeError, ValueError):
        return config, {}


class _Runner:
    """Compiled init and chunk functions for one (algorithm, config, env, seeds); `config`
    is `split_hyperparameters`'s first part, and `hp` the values of the run at hand."""

    def __init__(self, algo: Any, config: Any, venv: Any, n_seeds: int):
        self.algo, self.config, self.venv = algo, config, venv
        self.batched = not venv.is_host  # host envs: one seed after another, each on its slot
        self.n_seeds = n_seeds
        self._chunks: dict[int, Any] = {}
        self._pending: dict[int, tuple[Any, concurrent.futures.Future]] = {}
        self._init = None
        self.compile_seconds = 0.0
        self.phases = _no_phases()
        self.hp: dict[str, np.ndarray] = {}
        #: What decides this runner's programs beyond bellmax's code, where that is known
        #: (`program_identity`): then they are kept lowered on disk (`core.program_cache`).
        self.program_id: tuple | None = None

    def _scan(self, n: int) -> Callable:
        algo, base, venv = self.algo, self.config, self.venv
        shared = getattr(algo, "SHARED_ACROSS_SEEDS", ())

        def program(state, hp):
            config = with_hyperparameters(base, hp)

            def run(state):
                return jax.lax.scan(
                    lambda s, _: algo.update(s, config, venv), state, None, length=n
                )

            if self.batched and self.n_seeds > 1 and shared:
                return _vmap_sharing(run, shared)(state)
            return self._over_seeds(run)(state)

        return program

    def _over_seeds(self, fn: Callable) -> Callable:
        """`fn` of one seed's state, made to take every seed's: `vmap` over two or more seeds,
        unbatched for one (`_one_seed`), as it is for host environments (looped in `chunk`)."""
        if not self.batched:
            return fn
        return _one_seed(fn) if self.n_seeds == 1 else jax.vmap(fn)

    def init(self, keys: list[jax.Array]) -> Any:
        algo, base, venv = self.algo, self.config, self.venv

        def program(k, hp):
            config = with_hyperparameters(base, hp)
            return self._over_seeds(lambda key: algo.init(key, config, venv))(k)

        t = time.perf_counter()
        hp = self.hp
        parts = self._program_parts("init")
        if self._init is None and parts is not None:
            with gc_paused():
                stacked = jnp.stack(keys)
                kept = load_or_export(parts, program, lambda: (stacked, hp))
                if kept is not None:  # (one that fits: `load_or_export` checks)
                    self._init = kept.compiled(cpu_compile_options(RUN_ONCE))
        if self._init is None:
            # It runs once: the lightest optimisation compiles it in about half the time.
            self._init = jit_lightly(program, RUN_ONCE)
        with gc_paused():
            if self.batched:
                state = self._init(jnp.stack(keys), hp)
            else:
                state = _stack([self._on_slot(i, self._init, k, hp) for i, k in enumerate(keys)])
        jax.block_until_ready(state)
        self.compile_seconds += time.perf_counter() - t
        self.phases["init"] += time.perf_counter() - t
        return state

    def template(self, keys: list[jax.Array]) -> Any:
        """The state's shapes without running anything."""

        def one(k):
            return self.algo.init(k, self.config, self.venv)

        if self.batched:
            return jax.eval_shape(jax.vmap(one), jnp.stack(keys))
        return _stack_shapes(jax.eval_shape(one, keys[0]), len(keys))

    def prepare(self, keys: list[jax.Array], n: int) -> None:
        """Trace and lower the `n`-update chunk from the state's shapes, then compile it in a
        background thread while `init` compiles and runs (XLA compiles without the GIL: on
        two or more cores the two overlap). `chunk` waits for it. On one CPU
        (`_compile_in_background`) it does nothing, and `chunk` compiles it.

        The tracing and lowering stay in the caller's thread: Python code in two threads
        takes turns on the GIL, so tracing the chunk beside `init` slowed `init` by about
        as much as it saved. PPO on CartPole-v1, one seed, two EPYC cores, the compile cache
        filled: `init` took 0.95-1.22 s with the chunk traced beside it, 0.39-0.49 s after
        it, and the first chunk started 0.02-0.21 s sooner in each of 5 alternated pairs
        (1.02-1.29 s after `train` was called, against 1.13-1.43 s); with the cache empty,
        the same (`train` returned after 4.09-4.43 s against 3.69-4.68 s, 4 pairs).
        """
        if not self.batched or n in self._chunks or n in self._pending:
            return
        if not _compile_in_background():
            return
        t = time.perf_counter()
        lowered, fits, wrap = self._lower_chunk(lambda: self.template(keys), n, check=False)
        self.compile_seconds += time.perf_counter() - t  # in the caller's time, as `init` is
        future = _submit(self._compile, lowered, wrap)
        self._pending[n] = (fits, future)

    def _lower_chunk(
        self, state: Callable[[], Any], n: int, *, check: bool
    ) -> tuple[Any, Callable[[Any], bool], Callable[[Any], Any]]:
        """Trace and lower the `n`-update program for the state `state()` (or its shapes),
        each phase timed apart; with a `program_id`, read lowered from the disk cache instead
        where an earlier process kept it. Returns the lowered program, whether a state fits
        it, and what makes its compiled form a function of `(state, hp)`. `check`: a kept
        program is checked against `state()` and, if it does not fit, traced anew and kept
        in its place (`load_or_export`); without it `state` is not called on a hit (the
        template costs a trace) and the caller checks the real state with `fits`."""
        options = cpu_compile_options(NETWORK_UPDATES)  # YNNPACK's dots (core.xla)
        hp = self.hp
        state = functools.cache(state)  # (the template is traced once)
        parts = self._program_parts("chunk", n)
        with gc_paused():
            t0 = time.perf_counter()
            program = None
            if parts is not None:
                program = load_or_export(parts, self._scan(n), lambda: (state(), hp), check=check)
            if program is not None:
                t1 = time.perf_counter()
                lowered = program.lower(options)
                fits, wrap = (lambda s: program.fits(s, hp)), program.wrap
            else:
                template = state()
                arg = template if self.batched else jax.tree.map(lambda x: x[0], template)
                traced = jax.jit(self._scan(n), compiler_options=options).trace(arg, hp)
                t1 = time.perf_counter()
                lowered = traced.lower()
                avals = _avals(template)
                fits, wrap = (lambda s: _avals(s) == avals), (lambda compiled: compiled)
        t2 = time.perf_counter()  # after the collection the pause deferred
        self.phases["chunk_trace"] += t1 - t0
        self.phases["chunk_lower"] += t2 - t1
        return lowered, fits, wrap

    def _program_parts(self, *name: Any) -> tuple | None:
        """The disk cache's key parts of one of this runner's programs, or None where it
        keeps none (`program_identity`; host environments; the cache turned off)."""
        if self.program_id is None or not self.batched or program_cache_dir() is None:
            return None
        return (*self.program_id, *name)

    def _compile(self, lowered: Any, wrap: Callable[[Any], Any]) -> Any:
        """XLA's compile of a lowered chunk (or its load from the persistent cache), timed,
        made a function of `(state, hp)` by `wrap`."""
        t = time.perf_counter()
        with gc_paused():
            compiled = lowered.compile()
        self.phases["chunk_compile"] += time.perf_counter() - t
        return wrap(compiled)

    def _compile_chunk(self, state: Any, n: int) -> Any:
        """Trace, lower and compile the `n`-update program, each phase timed apart."""
        lowered, _, wrap = self._lower_chunk(lambda: state, n, check=True)
        return self._compile(lowered, wrap)

    def chunk(self, state: Any, n: int) -> tuple[Any, Any]:
        if n not in self._chunks:
            t = time.perf_counter()
            compiled = None
            if n in self._pending:
                fits, future = self._pending.pop(n)
                if fits(state):  # else the template's shapes were wrong: compile anew
                    compiled = future.result()  # its errors are raised here
            if compiled is None:
                compiled = self._compile_chunk(state, n)
            self.compile_seconds += time.perf_counter() - t
            self._chunks[n] = compiled
        compiled, hp = self._chunks[n], self.hp
        if self.batched:
            return compiled(state, hp)
        outs = [
            self._on_slot(i, compiled, jax.tree.map(lambda x, i=i: x[i], state), hp)
            for i in range(self.n_seeds)
        ]
        return _stack([o[0] for o in outs]), _stack([o[1] for o in outs])

    def _on_slot(self, i: int, fn: Callable, *args: Any) -> Any:
        """Host environments: `fn(*args)` on seed `i`'s own environments, waited for (its
        callbacks must run before another seed's slot is chosen)."""
        with self.venv.slot(i):
            return jax.block_until_ready(fn(*args))

    def restart_episodes(
        self, state: Any, keys: list[jax.Array], *, option: str = "out_dir"
    ) -> Any:
        """Host environments after a resume: new episodes for every seed (the environments'
        state is in no checkpoint), the state's observations and episode counters theirs.
        `option` names the run directory in the message (`_out_option`)."""
        if not (hasattr(state, "obs") and hasattr(state, "vec_state")):
            raise BellmaxError(
                f"cannot resume on the host environment {self.venv.env_id!r}: the algorithm's "
                "training state has no `obs` and `vec_state` to restart the episodes in; start "
                f"the run anew ({switch_name('overwrite', option)})."
            )
        fresh = [self._on_slot(i, self.venv.reset, k) for i, k in enumerate(keys)]
        return state.replace(
            obs=_stack([obs for obs, _ in fresh]), vec_state=_stack([vs for _, vs in fresh])
        )


def _avals(tree: Any) -> Any:
    """A pytree's structure and leaf types (shape, dtype, weak type): what a compiled
    program's inputs must match."""
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, [(x.shape, x.dtype, bool(getattr(x, "weak_type", False))) for x in leaves]


def _finish(future: concurrent.futures.Future | None) -> None:
    """Wait for a background job (re-raising its error); None, to be stored back."""
    if future is not None:
        future.result()


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, where the OS keeps one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity masks (macOS, Windows)
        return os.cpu_count() or 1


def _compile_in_background() -> bool:
    """Whether the first chunk and the evaluation program compile in `_background` threads.

    Not on one CPU: there the threads only take turns with `init` and with the first chunk's
    run. A one-seed PPO run on CartPole-v1 from process start to solved took 0.5-0.7 s less
    (~6%) with everything compiled in the foreground, in each of 8 interleaved pairs on one
    EPYC core (8.3-10.3 s against 9.0-10.8 s).
    """
    return _usable_cpus() > 1


@functools.cache
def _background() -> concurrent.futures.ThreadPoolExecutor:
    """The driver's compile threads: the first chunk and the evaluation program compile
    beside `init` (two: more compiles at once would only compete for the cores)."""
    return concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="bellmax-compile")


#: The `_background` jobs not yet known to be done (`_submit`, `_wait_for_background`).
_JOBS: set[concurrent.futures.Future] = set()
_JOBS_LOCK = threading.Lock()


def _submit(fn: Callable, *args: Any) -> concurrent.futures.Future:
    """`_background().submit(fn, *args)`, remembered until `_wait_for_background`."""
    future = _background().submit(fn, *args)
    with _JOBS_LOCK:
        _JOBS.add(future)
    return future


def _wait_for_background() -> None:
    """Wait until every `_submit` job has ended, leaving their errors to whoever asks their
    result. `train` calls it on its way out: a run that stops with an error (a divergence,
    a bad setting found in the first chunk) returned while its evaluation program was still
    compiling and running in a `_background` thread, beside whatever the caller did next."""
    with _JOBS_LOCK:
        jobs = list(_JOBS)
    concurrent.futures.wait(jobs)
    with _JOBS_LOCK:
        _JOBS.difference_update(jobs)


def _vmap_sharing(fn: Callable, names: Sequence[str]) -> Callable:
    """`jax.vmap(fn)` over the seeds of a state whose fields `names` hold the same value for
    every seed (counters: `update_index`, `gradient_step`): they enter and leave the `vmap`
    unbatched, so a `lax.cond` on them (learning starts, a delayed actor update) stays a
    branch instead of a `select` that computes both sides for every seed. `fn(state) ->
    (state, out)`; the state keeps its stacked layout outside. A field that does come to
    depend on the seed fails loudly at trace time (a batched output for `out_axes=None`).
    """

    def run(batch):
        shared = {name: getattr(batch, name)[0] for name in names}
        per_seed = dataclasses.replace(batch, **dict.fromkeys(names))

        def one(state, shared):
            new, out = fn(dataclasses.replace(state, **shared))
            return (
                dataclasses.replace(new, **dict.fromkeys(names)),
                out,
                {name: getattr(new, name) for name in names},
            )

        try:
            new, out, counters = jax.vmap(one, in_axes=(0, None), out_axes=(0, 0, None))(
                per_seed, shared
            )
        except ValueError as e:
            if "out_axes" not in str(e):
                raise
            raise BellmaxError(
                f"the state fields {tuple(names)} are declared equal for every seed "
                "(the algorithm's SHARED_ACROSS_SEEDS), but its update makes them depend on "
                "the seed; remove them from SHARED_ACROSS_SEEDS."
            ) from e
        seeds = jax.tree.leaves(per_seed)[0].shape[0]
        stacked = {k: jnp.broadcast_to(v, (seeds, *jnp.shape(v))) for k, v in counters.items()}
        return dataclasses.replace(new, **stacked), out

    return run


def _one_seed(fn: Callable) -> Callable:
    """`jax.vmap(fn)` for a batch of one, without the vmap.

    Under `vmap` every `lax.cond` whose predicate depends on the state (learning starts, a
    delayed actor update) becomes a `select` that runs both branches, and tracing the batched
    program costs about a third more; a single seed needs neither.
    """

    def run(batch):
        out = fn(jax.tree.map(lambda x: x[0], batch))
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), out)

    return run


_RUNNERS: dict[Any, _Runner] = {}
#: The runners kept, the most recently used: each holds its compiled programs (~50 MB for a
#: small PPO; 16 of them made a notebook's hidden-size sweep pass 1 GB).
_RUNNERS_KEPT = 4


def _runner(algo: Any, config: Any, venv: Any, n_seeds: int, env: Any = None) -> _Runner:
    """A cached `_Runner` set to `config`'s hyperparameter values, so repeated runs in one
    process compile once, also for other values of those (`split_hyperparameters`); `env`
    is what `venv` was made from (an id lets its programs be kept on disk)."""
    base, hp = split_hyperparameters(config)
    key = None if venv.is_host else (algo, base, venv, n_seeds, tuple(hp))
    try:
        hash(key)
    except TypeError:
        key = None
    if key is None:  # (host envs, unhashable configs: programs of their own)
        runner = _Runner(algo, base, venv, n_seeds)
    else:
        make = functools.partial(_Runner, algo, base, venv, n_seeds)
        runner = recently_used(_RUNNERS, key, make, _RUNNERS_KEPT)
        runner.compile_seconds = 0.0
        runner.phases = _no_phases()
    runner.hp = hp
    runner.program_id = program_identity(algo, base, env, venv, n_seeds)
    return runner


def program_identity(algo: Any, base: Any, env: Any, venv: Any, n_seeds: int) -> tuple | None:
    """What, beside bellmax's code, decides the programs of `algo` with the config `base` on
    `venv` (made from `env`) for `n_seeds` seeds: reprs of the algorithm, the config, the
    environment's registry entry and parameters. None where code the program cache cannot
    see takes part (an algorithm, config or environment from outside bellmax, a gymnax or
    Gymnasium environment, an algorithm whose functions were replaced at run time): those
    programs are traced in every process."""
    if venv.is_host or not isinstance(env, str) or not registry.is_registered(env):
        return None
    if registry.is_gymnax_id(env):
        return None
    spec = registry.spec(env)
    functions = (getattr(algo, name, None) for name in ("init", "update", "act"))
    ours = (
        spec.entry_point,
        getattr(algo, "__name__", ""),
        type(base).__module__,
        *(getattr(f, "__module__", None) or "" for f in functions),
    )
    if not all(name.startswith("bellmax.") for name in ours):
        return None
    return (
        "train",
        algo.__name__,
        repr(base),
        repr(spec),
        repr(_env_record(venv)),
        repr(venv),
        n_seeds,
    )


def _no_phases() -> dict[str, float]:
    return {"init": 0.0, "chunk_trace": 0.0, "chunk_lower": 0.0, "chunk_compile": 0.0}


def _stack_shapes(tree: Any, n: int) -> Any:
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct((n, *s.shape), s.dtype), tree)


def _first_nonfinite(metrics: dict[str, np.ndarray], name: str = "loss") -> tuple[int, int] | None:
    """`(seed index, update)` of the earliest NaN or infinite value of metric `name` (the
    loss; or `episode_return_sum`, a sum over the episodes that ended, 0 when none did: never
    NaN unless a reward or an observation was)."""
    values = metrics.get(name)
    if values is None or np.ndim(values) != 2:
        return None
    bad = ~np.isfinite(np.asarray(values, np.float64))
    if not bad.any():
        return None
    seed_idx, upd = np.argwhere(bad)[np.argmin(np.argwhere(bad)[:, 1])]
    return int(seed_idx), int(upd)


def _first_env_fault(metrics: dict[str, np.ndarray]) -> tuple[int, int] | None:
    """`(seed index, update)` of the earliest update whose environment steps returned a NaN or
    infinite reward or observation (`nonfinite_steps` > 0; or, from an algorithm that does
    not count them, a non-finite `episode_return_sum`, which needs the episode to end)."""
    found = [_first_nonfinite(metrics, "episode_return_sum")]
    counts = metrics.get("nonfinite_steps")
    if counts is not None and np.ndim(counts) == 2 and np.any(counts):
        bad = np.argwhere(np.asarray(counts) > 0)
        found.append(tuple(int(x) for x in bad[np.argmin(bad[:, 1])]))
    found = [f for f in found if f is not None]
    return min(found, key=lambda f: f[1]) if found else None


def _first_infinite(metrics: dict[str, np.ndarray]) -> tuple[str, int, int] | None:
    """`(metric, seed index, update)` of the earliest infinite value of any metric.

    NaN in a metric other than the loss means "not recorded at that update" (e.g. before
    learning starts); an infinity never does: a gradient norm or a value estimate that
    overflowed is the start of a divergence, whatever the loss still says."""
    first = None
    for name in sorted(metrics):
        v = np.asarray(metrics[name])
        if v.dtype.kind != "f" or v.ndim != 2:
            continue
        bad = np.isinf(v)
        if bad.any():
            s, u = np.argwhere(bad)[np.argmin(np.argwhere(bad)[:, 1])]
            if first is None or u < first[2]:
                first = (name, int(s), int(u))
    return first


def _nonfinite_weights(params: Any, seeds: Sequence[int]) -> str | None:
    """'seed 1: 12 of 4610 values' for every seed whose floating-point weights are not finite."""
    leaves = [np.asarray(x) for x in jax.tree.leaves(params)]
    parts = []
    for i, seed in enumerate(seeds):
        bad = total = 0
        for x in leaves:
            if np.issubdtype(x.dtype, np.inexact):
                bad += int(np.size(x[i]) - np.count_nonzero(np.isfinite(x[i])))
                total += int(np.size(x[i]))
        if bad:
            parts.append(f"seed {seed}: {bad} of {total} values")
    return "; ".join(parts) or None


def _write_metrics(out: Path, seeds: Sequence[int], history: dict[str, np.ndarray]) -> None:
    """`metrics.json` and `metrics.csv` (one row per seed and update), each atomically."""

    def rows(v: np.ndarray) -> list:  # a metric not recorded then (NaN): null
        if v.dtype.kind != "f" or not np.isnan(v).any():
            return v.tolist()
        return [[None if math.isnan(x) else x for x in row] for row in v.tolist()]

    names = sorted(history)  # one order, however the history was built (a resume loads it)
    atomic_write_json(out / METRICS_JSON, {k: rows(history[k]) for k in names})
    n = next(iter(history.values())).shape[1] if history else 0
    ret, cnt = history.get("episode_return_sum"), history.get("episode_count")
    means = None if ret is None or cnt is None else mean_episode_return(ret, cnt)
    # Counts (episode_count, nonfinite_steps) as integers ("3", not "3.0"), as in metrics.json.
    cells = {k: int if history[k].dtype.kind in "biu" else float for k in names}
    lines = ["update,seed," + ",".join(names) + ",mean_episode_return"]
    for s, seed in enumerate(seeds):
        for u in range(n):
            row = [str(u + 1), str(seed)] + [repr(cells[k](history[k][s, u])) for k in names]
            mean = math.nan if means is None else float(means[s, u])
            row.append("" if math.isnan(mean) else repr(mean))
            lines.append(",".join(row))
    atomic_write_text(out / METRICS_CSV, "\n".join(lines) + "\n")


def learning_curves(
    returns: np.ndarray, counts: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each seed's training return over a moving window of updates, and their mean.

    Args:
      returns, counts: `[seeds, updates]` the summed returns and the number of the episodes
        that ended in each update.
      window: updates per window.

    Returns:
      `(curves [seeds, updates - window + 1], mean [updates - window + 1])`: a window's mean
      episode return; a window in which no episode ended holds the seed's last value (a long
      episode leaves no gap in its curve), NaN only before its first episode. The mean is
      over all seeds, NaN until every seed has ended an episode (it does not jump when a
      late seed joins).
    """
    ones = np.ones(window)
    curves = []
    for r, c in zip(np.asarray(returns, np.float64), np.asarray(counts, np.float64), strict=True):
        rs, cs = np.convolve(r, ones, "valid"), np.convolve(c, ones, "valid")
        curve = mean_episode_return(rs, cs)
        last = np.where(cs > 0, np.arange(curve.size), -1)
        np.maximum.accumulate(last, out=last)
        curves.append(np.where(last >= 0, curve[np.maximum(last, 0)], np.nan))
    curves_arr = np.stack(curves)
    return curves_arr, curves_arr.mean(axis=0)  # NaN wherever a seed has no value yet


def _plot_curve(path: Path, m: dict[str, np.ndarray], seeds: Sequence[int], title: str) -> None:
    """The training returns of `m` (the metrics history, `[seeds, updates]` each) by env step;
    nothing without episode returns."""
    if "episode_return_sum" not in m or "episode_count" not in m:
        return
    # Imported here: matplotlib costs about a second of import, and only runs that write
    # a run directory draw.
    from matplotlib.figure import Figure

    updates_done = m["episode_count"].shape[1]
    steps = m["env_steps"][0] if "env_steps" in m else np.arange(updates_done)
    ret, cnt = m["episode_return_sum"], m["episode_count"]
    window = max(1, updates_done // 50)
    curves, mean = learning_curves(ret, cnt, window)
    fig = Figure(figsize=(6.4, 4))  # no pyplot: no global backend, nothing to close
    ax = fig.subplots()
    for curve, seed in zip(curves, seeds, strict=True):
        ax.plot(steps[window - 1 :], curve, lw=0.8, alpha=0.5, label=f"seed {seed}")
    if len(seeds) > 1:
        ax.plot(steps[window - 1 :], mean, "k", lw=2, label="mean")
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("episode return (training)")
    ax.set_title(title)
    if len(seeds) <= 8:
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)


# ---------------------------------------------------------------------- run directories
def _jsonish(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def _show(x: Any) -> str:
    return json.dumps(_jsonish(x))


def settings_differences(
    stored: dict, given: dict, *, names: Callable[[str], str] | None = None
) -> list[str]:
    """Each setting in `given` that differs from `stored`, as `"name: A in the run, B given"`.

    Only the keys (and Config fields) present in `given` are compared, so a caller can pass
    just the options a user set.

    Args:
      stored, given: settings (`SETTINGS`' keys; `config`: Config field -> value).
      names: how the caller names a Config field or a setting (the command line: its
        option, `bellmax.cli.main.option_for`); None: by itself (`learning_rate`).
    """
    name = names or (lambda field: field)
    missing = object()
    if "algo" in given and stored.get("algo") != given["algo"]:  # the rest would be noise
        return [f"algo: {_show(stored.get('algo'))} in the run, {_show(given['algo'])} given"]
    diffs = []
    for key in SETTINGS:
        if key not in given:
            continue
        if key == "config":
            old, new = stored.get("config") or {}, given["config"]
            for f, value in new.items():
                was = old.get(f, missing)
                if was is missing:
                    diffs.append(f"{name(f)}: not in the run, {_show(value)} given")
                elif _jsonish(was) != _jsonish(value):
                    diffs.append(f"{name(f)}: {_show(was)} in the run, {_show(value)} given")
        elif _jsonish(stored.get(key)) != _jsonish(given[key]):
            diffs.append(
                f"{name(key)}: {_show(stored.get(key))} in the run, {_show(given[key])} given"
            )
    old_env, new_env = stored.get("env_params"), given.get("env_params")
    if old_env and new_env and _jsonish(old_env) != _jsonish(new_env):  # older runs lack it
        if old_env.get("class") != new_env.get("class"):
            diffs.append(
                f"env class: {old_env.get('class')} in the run, {new_env.get('class')} given"
            )
        else:
            was, now = old_env.get("params") or {}, new_env.get("params") or {}
            for f in sorted(set(was) | set(now)):
                if _jsonish(was.get(f)) != _jsonish(now.get(f)):
                    diffs.append(
                        f"env parameter {f.lstrip('.')}: {_show(was.get(f))} in the run, "
                        f"{_show(now.get(f))} given"
                    )
    return diffs


def config_from_dict(
    algo: Any, values: dict, *, source: str = "the run", anew: str = "train anew"
) -> Any:
    """The algorithm's `Config` from a stored dict (lists back to tuples).

    `source` names the dict's origin in the message, `anew` the fix besides using the
    bellmax version that wrote it (`"start anew with --overwrite"` for a command-line resume).

    Raises:
      BellmaxError: the dict has fields the Config does not know, or lacks some it has
        (a run written by another bellmax version).
    """
    fields = {f.name for f in dataclasses.fields(algo.Config)}
    unknown, missing = sorted(set(values) - fields), sorted(fields - set(values))
    if unknown or missing:
        what = "; ".join(
            x
            for x in (
                unknown and f"fields this bellmax does not know: {', '.join(unknown)}",
                missing and f"no value for: {', '.join(missing)}",
            )
            if x
        )
        raise BellmaxError(
            f"the stored configuration of {source} does not fit this bellmax's "
            f"{getattr(algo, 'NAME', 'algorithm')} Config ({what}); it was written by another "
            f"bellmax version: use that version, or {anew}."
        )
    return algo.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _out_option(names: Callable[[str], str] | None) -> str:
    """How messages name the run directory: `train`'s parameter `out_dir`, or the caller's
    name for it (`names("out_dir")`: `--out` on the command line); `switch_name` then names
    the switches (`overwrite=True` or `--overwrite`)."""
    return names("out_dir") if names is not None else "out_dir"


def _check_stored(meta: Any, where: Path, option: str = "out_dir") -> dict:
    replace = switch_name("overwrite", option)
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else None
        raise BellmaxError(
            f"{str(where)!r} was written by another bellmax version (run format "
            f"{fmt or 'unmarked'}; this bellmax writes {RUN_FORMAT}): it cannot be resumed "
            f"here; start it anew with {replace} or choose another {option}."
        )
    absent = [k for k in (*SETTINGS, "run_id") if k not in meta]
    if absent:
        raise BellmaxError(
            f"{str(where)!r} is damaged: it lacks {', '.join(absent)}; start the run anew "
            f"with {replace}."
        )
    return meta


def read_run(
    run_dir: str | os.PathLike, *, names: Callable[[str], str] | None = None
) -> dict | None:
    """The stored settings of the run in `run_dir` (None if it holds no run record).

    Read from `run.json`, or from the checkpoint's metadata if `run.json` is missing or
    unreadable. The dict has `algo`, `env`, `seeds`, `config` (every Config field),
    `chunks`, `eval_episodes`, `stop_return`, `run_id` and `format`. `names` as for `train`
    (how the messages name `out_dir` and `overwrite`).

    Raises:
      BellmaxError: the run was written by another bellmax version, or its record is
        damaged (`CheckpointError` for the checkpoint).
    """
    option = _out_option(names)
    out = Path(run_dir)
    if not out.is_dir():
        return None
    record = out / RUN_JSON
    if record.is_file():
        try:
            meta = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            meta = None  # fall back to the checkpoint's copy
        if meta is not None:
            return _check_stored(meta, record, option)
    ck = out / CHECKPOINT
    if ck.exists():
        return _check_stored(read_checkpoint_metadata(ck), ck, option)
    if record.is_file():
        raise BellmaxError(
            f"{str(record)!r} is unreadable and the run has no checkpoint; start it anew "
            f"with {switch_name('overwrite', option)}."
        )
    return None


def _open_run_dir(out: Path, *, resume: bool, overwrite: bool, option: str) -> FileLock:
    """Take the run's lock and check that this call may write `out` (`option`: how the
    messages name it, `_out_option`).

    A refusal leaves the directory exactly as it was (no file created or changed).
    """
    check_dir = functools.partial(
        check_run_dir, out, "train", option=option, overwrite=overwrite, resume=resume
    )
    lock = lock_output_dir(out, check_dir, option=option)
    try:  # again, under the lock
        check_dir()
    except ValueError:
        lock.release()
        raise
    lock.write_owner()
    for name in RUN_OUTPUTS["train"]:  # temporary files of writers that died mid-write
        for tmp in out.glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)
    return lock


def _load_chunk(ck: Path, runner: Any, keys: list, meta: dict) -> tuple[Any, dict, dict]:
    """`(state, metrics history, checkpoint metadata)` from a run's checkpoint."""
    ck_meta = read_checkpoint_metadata(ck)
    done, dtypes = ck_meta.get("updates_done"), ck_meta.get("metrics")
    if (
        not isinstance(done, int)
        or not 1 <= done <= int(meta.get("num_updates", done))
        or not isinstance(dtypes, dict)
    ):
        raise CheckpointError(
            f"checkpoint {str(ck)!r} is damaged: its record of the updates done and metrics "
            "is missing or out of range; delete it to start the run again."
        )
    try:
        metric_shapes = {
            k: jax.ShapeDtypeStruct((len(keys), done), np.dtype(v)) for k, v in dtypes.items()
        }
    except TypeError:
        raise CheckpointError(
            f"checkpoint {str(ck)!r} is damaged: its metric types are unreadable."
        ) from None
    template = {"state": runner.template(keys), "metrics": metric_shapes}
    tree, _ = load_checkpoint(ck, template)
    history = {k: np.asarray(v) for k, v in tree["metrics"].items()}
    return tree["state"], history, ck_meta


def train(
    algo: Any,
    config: Any,
    env: Any,
    *,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    overwrite: bool = False,
    chunks: int = 20,
    stop_after: int | None = None,
    eval_episodes: int = 10,
    on_chunk: Callable[[ChunkInfo], None] | None = None,
    algo_name: str | None = None,
    stop_return: float | None = None,
    names: Callable[[str], str] | None = None,
) -> TrainResult:
    """Train `algo` with `config` on `env` for every seed.

    Args:
      algo: an algorithm module (or any object with `Config`, `init`, `update`, `act`,
        `policy_params`), or its name (`"ppo"`).
      config: the algorithm's `Config`.
      env: an env id (bellmax or Gymnasium) or environment object (see `make_vector_env`).
      seeds: one run per seed; JAX environments run them all in one `vmap` (a seed's
        numbers are the same in any run of two or more; one seed alone runs unbatched,
        and matches them only up to rounding, which training then amplifies).
      out_dir: the run directory: checkpoint, metrics, curve, `run.json` and, for bellmax's
        algorithms, `policy.msgpack` (`bellmax.load_policy(out_dir)`) (None: nothing
        written). A directory that already holds a run needs `resume` or `overwrite`.
      resume: continue the run in `out_dir` from its last checkpoint (its settings must equal
        these; a run stopped before its first checkpoint starts again), or start it if
        `out_dir` holds no run yet.
      overwrite: replace the run in `out_dir` with this one.
      chunks: about how many chunks (checkpoints, progress updates) to split the run into.
      stop_after: stop after this many updates in total (for tests of resuming).
      eval_episodes: evaluation episodes per seed at the end (0: skip).
      on_chunk: called after each chunk with a `ChunkInfo`.
      stop_return: evaluate every seed's policy (`eval_episodes` episodes) after each chunk
        and stop once every seed's mean evaluation return has reached this value (like SB3's
        `StopTrainingOnRewardThreshold`); the steps and seconds to reach it are recorded.
      names: how messages name this function's parameters and the Config's fields (a
        command line: `out_dir` is `--out`, `overwrite` is `--overwrite`); None: by their own
        names (`out_dir`, `overwrite=True`, `learning_rate`).

    Returns:
      A `TrainResult`.

    Raises:
      DivergenceError: a loss or a policy weight became NaN or infinite (the message names
        the update and seed, and this run's last checkpoint if it has one).
      ValueError: a bad config (from the algorithm's `validate`), bad options, a resume
        whose settings differ from the stored run's (each difference named), or an `out_dir`
        that holds a run (without `resume` or `overwrite`) or another command's output.
      BellmaxError: another process is writing `out_dir`; `CheckpointError` for a damaged
        checkpoint.
    """
    if isinstance(algo, str):
        algo_name = algo_name or algo
        algo = get_algorithm(algo)
    name = algo_name or getattr(algo, "NAME", getattr(algo, "__name__", "algo")).split(".")[-1]
    seeds = check_seeds(seeds)
    chunks = check_int(chunks, "chunks", owner="train", low=1)  # checkpoints per run
    eval_episodes = check_int(eval_episodes, "eval_episodes", owner="train", low=0)  # 0: none
    if stop_return is not None:
        stop_return = check_number(stop_return, "stop_return", owner="train")
        if eval_episodes < 1:
            raise ValueError("stop_return needs eval_episodes >= 1 (the evaluations decide).")
    if resume and overwrite:
        raise ValueError(
            "resume and overwrite exclude each other: resume continues the run in the "
            "directory, overwrite replaces it; pick one."
        )
    out = Path(os.path.expanduser(out_dir)) if out_dir is not None else None  # as its checks
    if out is None and (resume or overwrite):
        raise ValueError("resume and overwrite need out_dir (the run directory).")
    option = _out_option(names)
    if out is not None:
        check_output_path(out, kind="dir", option=option)
        # another command's output (imitate, sweep, ...); a run of train's own is checked
        # under the run's lock (`_open_run_dir`), which names a writer at work
        check_run_dir(out, "train", option=option, resume=True)
    config_class = getattr(algo, "Config", None)
    if isinstance(config_class, type) and not isinstance(config, config_class):
        given = "None" if config is None else f"a {_qualified(type(config))}"
        raise TypeError(
            f"config is {given}; algorithm {name} needs a {_qualified(config_class)}(...)."
        )
    venv = make_vector_env(env, num_envs=config.num_envs, seed=seeds[0])
    config.validate(venv)
    if venv.is_host:
        _add_host_slots(venv, env, seeds, config.num_envs)
        if stop_return is not None and not isinstance(env, str):
            raise ValueError(
                f"stop_return evaluates between chunks, which on the host environment object "
                f"{venv!r} would reset the episodes training is in; pass its id "
                f"({venv.env_id!r}) so that evaluations get environments of their own."
            )
    eval_venv = _evaluation_env(env, venv, config.num_envs, seeds[0]) if eval_episodes else venv
    env_id = env if isinstance(env, str) else venv.env_id
    num_updates = int(config.num_updates)
    chunk = plan_chunks(num_updates, chunks)
    runner = _runner(algo, config, venv, len(seeds), env)
    keys = [jax.random.key(s) for s in seeds]
    meta = {
        "format": RUN_FORMAT,
        "bellmax_version": __version__,
        "algo": name,
        "env": env_id,
        "seeds": list(seeds),
        "config": _config_dict(config),
        "chunks": chunks,
        "eval_episodes": eval_episodes,
        "stop_return": stop_return,
        "env_params": _env_record(venv),
        "num_updates": num_updates,
        "chunk": chunk,
        # versions, command line, git commit, time, platform (not compared on --resume)
        "provenance": run_provenance(),
    }
    lock = (
        _open_run_dir(out, resume=resume, overwrite=overwrite, option=option)
        if out is not None
        else None
    )
    interrupted = False
    try:
        return _train_locked(
            algo, config, venv, eval_venv, runner, keys, meta, out,
            resume=resume, overwrite=overwrite, stop_after=stop_after, on_chunk=on_chunk,
            names=names,
        )  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
        if out is not None:
            _mark_interrupted(out, meta)
        raise
    finally:
        if not interrupted:  # (Ctrl-C: back at once; a background compile ends on its own)
            _wait_for_background()
        if lock is not None:
            lock.release()


def _warn_if_compiled_differently(out: Path, run: dict, now: dict) -> None:
    """A resume compiles anew; under other `XLA_FLAGS` or on another CPU XLA's code differs,
    so the run will not be bit-identical to an uninterrupted one (still a valid run)."""
    was, is_ = run.get("platform") or {}, now.get("platform") or {}
    for key, what in (
        ("xla_flags", "XLA_FLAGS"),
        ("cpu", "CPU"),
        ("jax_backend", "backend"),
        ("jax_enable_x64", "JAX's 64-bit mode (jax_enable_x64)"),
    ):
        if key in was and key in is_ and was[key] != is_[key]:
            warnings.warn(
                f"resuming {str(out)!r} with {what} {is_[key]!r}; the run began with "
                f"{was[key]!r}, so XLA compiles other code and the result will not be "
                "bit-identical to an uninterrupted run (`bellmax train` sets bellmax's XLA "
                "defaults, a Python process does not unless it runs bellmax.core.xla."
                "tune_xla_flags() before JAX starts).",
                stacklevel=4,
            )
            return


def _env_record(venv: Any) -> dict | None:
    """A JAX environment's class and parameters (JSON), so that a resume with other
    parameters under the same id is refused; None for host environments (their id is all
    that is known)."""
    env, params = getattr(venv, "env", None), getattr(venv, "env_params", None)
    if env is None or venv.is_host:
        return None
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {
        "class": _qualified(type(env)),
        "params": {jax.tree_util.keystr(k): np.asarray(v).tolist() for k, v in leaves},
    }


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _add_host_slots(venv: Any, env: Any, seeds: tuple[int, ...], num_envs: int) -> None:
    """Host environments for every seed: each seed trains on its own (its episodes go on
    from one chunk to the next, as a vmapped JAX env's do), all in one compiled program."""
    if venv.slots >= len(seeds):
        return
    if not isinstance(env, str):
        raise ValueError(
            f"the host environment object {venv!r} holds one set of episodes, so it trains one "
            f"seed, not {len(seeds)}: pass its id ({venv.env_id!r}) to train several seeds, or "
            "one seed per call."
        )
    for seed in seeds[venv.slots :]:
        venv.add_slot(make_vector_env(env, num_envs=num_envs, seed=seed).host_env)


def _evaluation_env(env: Any, venv: Any, num_envs: int, seed: int) -> Any:
    """The environments evaluations run on: for host (Gymnasium) envs a second set, so that an
    evaluation between chunks does not step or reset the episodes training is in the middle
    of; a pure (JAX) env holds no state, so it serves both. A host `VectorEnv` object passed
    in (not an id) cannot be copied and serves both too."""
    if not venv.is_host or not isinstance(env, str):
        return venv
    return make_vector_env(env, num_envs=num_envs, seed=seed + 1_000_003)


def _train_locked(
    algo: Any,
    config: Any,
    venv: Any,
    eval_venv: Any,
    runner: _Runner,
    keys: list,
    meta: dict,
    out: Path | None,
    *,
    resume: bool,
    overwrite: bool,
    stop_after: int | None,
    on_chunk: Callable[[ChunkInfo], None] | None,
    names: Callable[[str], str] | None,
) -> TrainResult:
    """`train` once the run directory (if any) is locked and may be written."""
    name, env_id, seeds = meta["algo"], meta["env"], tuple(meta["seeds"])
    num_updates, chunk = meta["num_updates"], meta["chunk"]
    eval_episodes, stop_return = meta["eval_episodes"], meta["stop_return"]
    ck = out / CHECKPOINT if out is not None else None
    policy_algo = _algorithm_key(algo)
    network = None if policy_algo is None else policy_network(policy_algo, config, venv)
    history: dict[str, np.ndarray] | None = None
    done = 0
    solved_at: list[int | None] = [None] * len(seeds)
    solved_s: list[float | None] = [None] * len(seeds)
    has_checkpoint = False  # a checkpoint of *this* run exists
    # Earlier processes' time on this run (None: a checkpoint written before it was kept).
    before: dict[str, float | None] = {"seconds": 0.0, "compile_seconds": 0.0}
    option = _out_option(names)
    stored = read_run(out, names=names) if (out is not None and resume) else None
    if stored is not None:
        diffs = settings_differences(stored, meta, names=names)
        if diffs:
            how = (
                "Pass an environment with the run's parameters"
                if any(d.startswith("env ") for d in diffs)
                else "Pass the run's settings (`read_run(out_dir)` returns them)"
                if names is None
                else "Use the run's settings (`bellmax train --resume` alone does)"
            )
            raise ValueError(
                f"cannot resume {str(out)!r} with other settings: {'; '.join(diffs)}. {how}, "
                f"or start anew with {switch_name('overwrite', option)} or another {option}."
            )
        meta["run_id"] = stored["run_id"]
        if stored.get("provenance"):  # the run's own record stays; this process is added
            meta["resumed_with"] = meta["provenance"]
            meta["provenance"] = stored["provenance"]
        if ck.exists() and read_checkpoint_metadata(ck).get("run_id") == meta["run_id"]:
            state, history, ck_meta = _load_chunk(ck, runner, keys, meta)
            done, has_checkpoint = int(ck_meta["updates_done"]), True
            for k in before:
                v = ck_meta.get(f"{k}_total")
                before[k] = float(v) if isinstance(v, int | float) and v >= 0 else None
            if "resumed_with" in meta:
                _warn_if_compiled_differently(out, meta["provenance"], meta["resumed_with"])
            if venv.is_host:
                state = runner.restart_episodes(
                    state, [jax.random.fold_in(k, done) for k in keys], option=option
                )
            if stop_return is not None and len(ck_meta.get("solved_at_steps") or []) == len(seeds):
                solved_at, solved_s = ck_meta["solved_at_steps"], ck_meta["solved_seconds"]
    else:
        meta["run_id"] = secrets.token_hex(8)
    resumed_at = done
    target = num_updates if stop_after is None else min(num_updates, int(stop_after))
    solved = stop_return is not None and all(x is not None for x in solved_at)
    # A resumed run that had ended and recorded it: its record (timings too) stays as it is.
    ended = (
        has_checkpoint
        and (done >= target or solved)
        and stored.get("status") in ("finished", "solved", "stopped")
    )
    if out is not None and not ended:
        if not has_checkpoint:  # another run's outputs (overwrite) or a stale checkpoint
            clear_outputs(out, "train")
        # The run record comes first: from here on a kill leaves a run that resumes.
        atomic_write_json(out / RUN_JSON, {**meta, "status": "running", "updates_done": done})
    if done < target and not solved:
        runner.prepare(keys, min(chunk, num_updates - done))  # compiles while init runs
    if not has_checkpoint:
        state = runner.init(keys)
    # The evaluation program compiles in the background too (on two or more CPUs), on the
    # first state (its returns are thrown away), while the first chunk compiles and runs.
    will_evaluate = eval_episodes and (stop_return is not None or target == num_updates)
    # the evaluation program is kept on disk with the runner's (a host env's has no id)
    keep = None if runner.program_id is None or eval_venv.is_host else runner.program_id
    warm_eval = (
        _submit(_warm_evaluation, algo, config, eval_venv, state, seeds, eval_episodes, keep)
        if will_evaluate and not eval_venv.is_host and not solved and _compile_in_background()
        else None
    )
    seconds = 0.0
    eval_seconds = 0.0
    while done < target and not solved:
        n = min(chunk, num_updates - done)
        compile_before = runner.compile_seconds
        t = time.perf_counter()
        new_state, metrics = runner.chunk(state, n)
        jax.block_until_ready(new_state)
        seconds += time.perf_counter() - t - (runner.compile_seconds - compile_before)
        m = _metrics_to_host(metrics)
        bad = _first_nonfinite(m)
        inf = None if bad else _first_infinite(m)
        weights = None if bad or inf else _nonfinite_weights(algo.policy_params(new_state), seeds)
        if bad is not None or inf is not None or weights is not None:
            if bad is not None:
                s, u = bad
                what = (
                    f"the loss became {m['loss'][s, u]} at update {done + u + 1} of "
                    f"{num_updates} (seed {seeds[s]})"
                )
            elif inf is not None:
                key, s, u = inf
                what = (
                    f"{key} became {m[key][s, u]} at update {done + u + 1} of "
                    f"{num_updates} (seed {seeds[s]})"
                )
            else:
                u = n - 1  # somewhere in the chunk
                what = (
                    f"the policy weights became non-finite in updates {done + 1}-{done + n} "
                    f"of {num_updates} ({weights})"
                )
            if out is not None and history:  # the committed updates' curve, up to the last good
                _plot_curve(out / LEARNING_CURVE_PNG, history, seeds, f"{name} on {env_id}")
            advice = "Lower the learning rate or clip gradients (max_grad_norm)."
            env_bad = _first_env_fault(m)
            # The environment went bad no later than the learner did: its fault (a diverged
            # policy's NaN actions can make NaN rewards, but only after it diverged).
            if env_bad is not None and env_bad[1] <= u:
                what += (
                    f"; the environment returned a NaN or infinite reward or observation first "
                    f"(at update {done + env_bad[1] + 1}, seed {seeds[env_bad[0]]})"
                )
                advice = (
                    "The environment's rewards or observations are not finite: check the "
                    "environment."
                )
            _diverged(out, meta, done, has_checkpoint, f"{name} on {env_id}: {what}", advice)
        if stop_return is not None:
            t_eval = time.perf_counter()
            warm_eval = _finish(warm_eval)
            rets = _evaluate(algo, config, eval_venv, new_state, seeds, eval_episodes, keep)[0]
            rets = rets.mean(axis=1)
            eval_seconds += time.perf_counter() - t_eval
            for i, r in enumerate(rets):
                if solved_at[i] is None and r >= stop_return:
                    solved_at[i] = (done + n) * int(config.steps_per_update)
                    # over the whole run, as the steps are (None: an earlier process's
                    # time was not kept)
                    earlier = before["seconds"]
                    solved_s[i] = None if earlier is None else round(earlier + seconds, 4)
            solved = all(x is not None for x in solved_at)
        state = new_state
        done += n
        history = _extend_history(history, m)
        if out is not None:
            ck_meta = {
                **meta,
                "updates_done": done,
                **_totals(before, seconds, runner.compile_seconds),
                "metrics": {k: str(v.dtype) for k, v in history.items()},
                "solved_at_steps": solved_at,
                "solved_seconds": solved_s,
            }
            # The chunk's one commit: state and metrics together, atomically.
            save_checkpoint(ck, {"state": state, "metrics": history}, metadata=ck_meta)
            has_checkpoint = True
            # The record follows (what a user watching the run reads; resuming reads the
            # checkpoint's own count).
            atomic_write_json(out / RUN_JSON, {**meta, "status": "running", "updates_done": done})
            _write_metrics(out, seeds, history)
            if network is not None:
                _write_policy(out, algo, policy_algo, network, config, venv, state, meta, done)
        if on_chunk is not None:
            r, c = m.get("episode_return_sum"), m.get("episode_count")
            mean = math.nan
            if r is not None and c is not None:
                mean = float(mean_episode_return(r.sum(), c.sum()))
            steps = done * config.steps_per_update
            on_chunk(ChunkInfo(done, num_updates, steps, mean, seconds, chunk_scalars(m)))
    result = TrainResult(
        algo=name,
        env_id=env_id,
        seeds=seeds,
        config=config,
        state=state,
        metrics=history or {},
        updates_done=done,
        num_updates=num_updates,
        env_steps=done * int(config.steps_per_update),
        seconds=seconds,
        compile_seconds=runner.compile_seconds,
        compile_phases=dict(runner.phases),
        resumed_at_updates=resumed_at,
    )
    totals = _totals(before, seconds, runner.compile_seconds)
    result.seconds_total = totals["seconds_total"]
    result.compile_seconds_total = totals["compile_seconds_total"]
    if stop_return is not None:
        result.solved_at_steps, result.solved_seconds = solved_at, solved_s
        result.eval_seconds = eval_seconds
    warm_eval = _finish(warm_eval)
    if eval_episodes and (done == num_updates or stop_return is not None):
        result.eval_returns, completed = _evaluate(
            algo, config, eval_venv, state, seeds, eval_episodes, keep
        )
        result.eval_cut_off = int(np.sum(~completed))
    if out is not None:
        if network is not None and has_checkpoint:
            returns = None if result.eval_returns is None else result.eval_returns.mean(axis=1)
            _write_policy(out, algo, policy_algo, network, config, venv, state, meta, done, returns)
        if history:
            _write_metrics(out, seeds, history)
            _plot_curve(out / LEARNING_CURVE_PNG, history, seeds, f"{name} on {env_id}")
        status = "finished" if done == num_updates else ("solved" if solved else "stopped")
        if not ended:
            atomic_write_json(
                out / RUN_JSON,
                {**result.summary(), **meta, "status": status, "updates_done": done},
            )
    return result


def _totals(before: dict, seconds: float, compile_seconds: float) -> dict[str, float | None]:
    """`seconds_total` and `compile_seconds_total`: over every process that trained the run
    (`seconds` and `compile_seconds` are this process's); None after a checkpoint that did
    not keep them."""
    now = {"seconds": seconds, "compile_seconds": compile_seconds}
    return {f"{k}_total": None if before[k] is None else round(before[k] + now[k], 4) for k in now}


def _algorithm_key(algo: Any) -> str | None:
    """The registered name of a bellmax algorithm module (None for any other algorithm)."""
    module = getattr(algo, "__name__", None)
    return next((k for k, v in ALGORITHMS.items() if v == module), None)


def _write_policy(
    out: Path,
    algo: Any,
    algorithm: str,
    network: dict,
    config: Any,
    venv: Any,
    state: Any,
    meta: dict,
    done: int,
    eval_returns: np.ndarray | None = None,
) -> None:
    """`policy.msgpack`: every seed's policy as of the checkpoint just committed."""
    run = {
        "env": meta["env"],
        "run_id": meta["run_id"],
        "updates_done": int(done),
        "env_steps": int(done) * int(config.steps_per_update),
        "num_envs": int(config.num_envs),
        "checkpoint_sha256": checkpoint_digest(out / CHECKPOINT),
        "eval_episodes": int(meta["eval_episodes"]),
        "eval_return_per_seed": None if eval_returns is None else [float(x) for x in eval_returns],
    }
    write_policy_file(
        out / POLICY_FILE,
        algorithm=algorithm,
        network=network,
        observation_space=venv.observation_space,
        action_space=venv.action_space,
        weights=policy_weights(algorithm, network, algo.policy_params(state)),
        seeds=meta["seeds"],
        run=run,
    )


def _diverged(
    out: Path | None, meta: dict, done: int, has_checkpoint: bool, what: str, advice: str
) -> None:
    """Record the divergence in run.json and raise the `DivergenceError`."""
    msg = f"{what}; training stopped. {advice}"
    if out is not None and has_checkpoint:
        msg += f" The last good state (update {done}) is in {str(out / CHECKPOINT)!r}."
    elif out is not None:
        msg += " No checkpoint of this run was written (it diverged in its first chunk)."
    if out is not None:
        atomic_write_json(
            out / RUN_JSON, {**meta, "status": "diverged", "updates_done": done, "error": msg}
        )
    raise DivergenceError(msg)


def _mark_interrupted(out: Path, meta: dict) -> None:
    """A Ctrl-C'd run's run.json says "interrupted" (it said "running", as if the process
    still ran), with the updates its checkpoint holds; `--resume` continues it as before.
    Only this run's record is changed, and a failure to write it is left unsaid: the
    interrupt is what the caller gets."""
    record = out / RUN_JSON
    try:
        stored = json.loads(record.read_text(encoding="utf-8"))
        if stored.get("run_id") == meta.get("run_id") and stored.get("status") == "running":
            atomic_write_json(record, {**stored, "status": "interrupted"})
    except (OSError, UnicodeDecodeError, ValueError, RecursionError, AttributeError):
        pass


def _warm_evaluation(algo, config, venv, state, seeds, episodes: int, keep_as=None):
    """`_evaluate` run for its compile (in a `_background` thread, `gc_paused`)."""
    with gc_paused():
        return _evaluate(algo, config, venv, state, seeds, episodes, keep_as)


def _evaluate(
    algo, config, venv, state, seeds, episodes: int, keep_as=None
) -> tuple[np.ndarray, np.ndarray]:
    """`_evaluate_seeds` of the greedy policy; `keep_as`: the runner's `program_id` where
    its programs are kept on disk (the evaluation program then is too)."""
    act = _eval_act(algo, config, venv)
    return _evaluate_seeds(act, algo.policy_params(state), venv, seeds, episodes, keep_as)


def _evaluate_seeds(
    act, params: Any, venv, seeds, episodes: int, keep_as=None
) -> tuple[np.ndarray, np.ndarray]:
    """`[seeds, episodes]` returns of `act` with each seed's `params` (batch axis first; seed
    `s` evaluated with key 10000 + s), every seed in one program (vmapped over two or more
    seeds, `evaluate_batch`), and `[seeds, episodes]` whether each episode ended."""
    keys = jnp.stack([jax.random.key(10_000 + s) for s in seeds])
    res = evaluate_batch(act, params, venv, keys, episodes=episodes, keep_as=keep_as)
    return np.asarray(res.returns), np.asarray(res.completed)


def _eval_act(algo: Any, config: Any, venv: Any) -> Callable:
    """One `act_fn` object per (algorithm, config, env): `evaluate` compiles it once. The
    greedy policy reads no hyperparameter: configs that differ in those share it."""
    return _greedy_act(algo, split_hyperparameters(config)[0], venv)


@functools.lru_cache(maxsize=16)
def _greedy_act(algo: Any, config: Any, venv: Any) -> Callable:
    def act(params, obs, key):
        return algo.act(params, obs, key, config, venv, deterministic=True)

    return act


def load_run(run_dir: str | os.PathLike) -> tuple[Any, Any, dict]:
    """Rebuild `(algo_module, config, metadata)` of a run directory written by `train`.

    Raises:
      BellmaxError: `run_dir` is missing, is no run, has no checkpoint yet, or was written by
        another bellmax version; `CheckpointError` for a damaged checkpoint.
    """
    out = Path(run_dir)
    hint = "pass the --out DIR of a `bellmax train` run"
    if not out.exists():
        raise BellmaxError(f"{str(out)!r} does not exist; {hint}.")
    if not out.is_dir():
        raise BellmaxError(f"{str(out)!r} is a file, not a run directory; {hint}.")
    if not (out / CHECKPOINT).exists():
        if (out / RUN_JSON).exists():
            algo = _algo_of(out / RUN_JSON)
            raise BellmaxError(
                f"{str(out)!r} holds a run with no checkpoint yet (it stopped before its first "
                f"chunk ended); continue it with `bellmax train {algo} --out {out} --resume`."
            )
        if (out / CONTROLLER_NPZ).exists():
            neural = out / NEURAL_POLICY_MSGPACK
            python = f" In Python: {neural_policy_how(neural)}." if neural.exists() else ""
            raise BellmaxError(
                f"{str(out)!r} holds a `bellmax gps` run: its controller "
                f"({CONTROLLER_NPZ}{', and the MD-GPS neural policy' if python else ''}) acts "
                "on the environment's state vector, not its observations, so `bellmax "
                f"evaluate` cannot run it; its costs and returns are in its {RESULT_JSON}."
                f"{python} {hint[0].upper()}{hint[1:]} to evaluate a trained policy."
            )
        raise BellmaxError(f"{str(out)!r} holds no bellmax run (no {CHECKPOINT}); {hint}.")
    meta = _check_stored(read_checkpoint_metadata(out / CHECKPOINT), out / CHECKPOINT)
    algo = get_algorithm(meta["algo"])
    config = config_from_dict(algo, meta["config"], source=repr(str(out)), anew="train it anew")
    return algo, config, meta


def _algo_of(record: Path) -> str:
    try:
        algo = json.loads(record.read_text(encoding="utf-8")).get("algo")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        algo = None
    return algo if isinstance(algo, str) else "ALGO"


def evaluate_checkpoint(
    run_dir: str | os.PathLike, *, episodes: int = 10, env: str | None = None
) -> dict[str, Any]:
    """Evaluate every seed's policy of a run (or of a policy file) for `episodes` episodes.

    The policies come from the run's `policy.msgpack` when it was written with the run's
    current checkpoint (so no training state is loaded, and a library upgrade that changes
    the training state's structure does not matter); otherwise (a run written before policy
    files, or killed between the two writes) from the checkpoint itself.

    Args:
      run_dir: a run directory, or a policy file (then `env` defaults to its run's env).
      episodes: evaluation episodes per seed.
      env: evaluate on this env id instead of the run's; its observation and action spaces
        must match the run's (type and shape; `Discrete`: the same n).

    Raises:
      BellmaxError: no run in `run_dir` (see `load_run`), or its policy weights are NaN or
        infinite; `CheckpointError` for a damaged checkpoint, `PolicyFileError` for a
        damaged policy file given as `run_dir`. ValueError: `env`'s spaces differ from the
        run's (the message names the space and both values).
    """
    episodes = check_int(episodes, "episodes", owner="evaluate_checkpoint", low=1)
    if (
        Path(run_dir).is_dir()
        and not (Path(run_dir) / CHECKPOINT).exists()
        and (Path(run_dir) / POLICY_FILE).is_file()
    ):
        run_dir = Path(run_dir) / POLICY_FILE  # the checkpoint is gone: the policies remain
    if Path(run_dir).is_file():
        policies = load_policies(run_dir)
        run = policies[0].header.get("run") or {}
        return _evaluate_policies(
            policies,
            env or check_recorded_env(run.get("env"), repr(str(run_dir))),
            updates_done=run.get("updates_done"),
            num_envs=_recorded_num_envs(run.get("num_envs"), episodes, run_dir),
            episodes=episodes,
            source=str(run_dir),
        )
    algo, config, meta = load_run(run_dir)
    out = Path(run_dir)
    if env != meta["env"]:  # (the checkpoint's template is made in the run's own env)
        check_recorded_env(meta["env"], repr(str(out / RUN_JSON)))
    ck = out / CHECKPOINT
    digest = checkpoint_digest(ck)
    try:
        policies = load_policies(out)
    except PolicyFileError:
        policies = None  # none yet, or damaged: the checkpoint holds the policy too
    if policies is not None:
        run = policies[0].header.get("run") or {}
        if run.get("run_id") == meta["run_id"] and run.get("checkpoint_sha256") == digest:
            return _evaluate_policies(
                policies,
                env or meta["env"],
                updates_done=meta["updates_done"],
                num_envs=config.num_envs,
                episodes=episodes,
                source=str(out / POLICY_FILE),
            )
    # From the checkpoint: the state's template comes from the run's own env, whatever
    # env the policy is evaluated on.
    env_id = env or meta["env"]
    seeds = tuple(meta["seeds"])
    run_venv = make_vector_env(meta["env"], num_envs=config.num_envs, seed=seeds[0])
    runner = _runner(algo, config, run_venv, len(seeds))
    keys = [jax.random.key(s) for s in seeds]
    state, _, meta = _load_chunk(ck, runner, keys, meta)
    bad = _nonfinite_weights(algo.policy_params(state), seeds)
    if bad is not None:
        raise BellmaxError(
            f"checkpoint {str(ck)!r} holds non-finite policy weights (NaN or inf: {bad}); "
            "there is no policy to evaluate. Train the run anew (`bellmax train ... "
            "--overwrite`, `train(..., overwrite=True)`) with a lower learning rate or "
            "gradient clipping (max_grad_norm)."
        )
    venv = run_venv
    if env_id != meta["env"]:
        venv = make_vector_env(env_id, num_envs=config.num_envs, seed=seeds[0])
        _check_spaces(run_venv, venv, env_id)
    t = time.perf_counter()
    act = _eval_act(algo, config, run_venv)
    returns = _evaluate_seeds(act, algo.policy_params(state), venv, seeds, episodes)
    return _evaluation_summary(
        meta["algo"], env_id, seeds, meta["updates_done"], returns, t, str(ck)
    )


def check_recorded_env(env_id: Any, source: str) -> Any:
    """`env_id` as read from a file (`source`: a run.json, a policy file), refused when making
    it would import a module (`module:EnvName-v0`): a run folder from elsewhere could name
    any module, beside it on the path or installed, and importing runs its code. Given by
    the user (`env=`, `--env`), the same id is theirs to trust.

    Raises:
      BellmaxError: the id names a module to import (named, with the way to trust it).
    """
    module = registry.imported_module(env_id)
    if module is not None:
        raise BellmaxError(
            f"{source} records the env id {env_id!r}, which imports the module {module!r}; "
            "bellmax imports no module that a file names (a run folder from elsewhere could "
            f"run any code). To trust it, give the id yourself: env={env_id!r} (on the "
            f"command line, --env {env_id})."
        )
    return env_id


def _check_spaces(policy: Any, venv: Any, env_id: str) -> None:
    diff = space_mismatch(policy, venv, env_id)
    if diff is not None:
        raise ValueError(
            f"the run's policy cannot act in {env_id}: {diff}. Evaluate it on an env with the "
            "run's spaces (`env=`; `--env` on the command line), or train a policy for this "
            "one."
        )


def _recorded_num_envs(value: Any, episodes: int, file: str | os.PathLike) -> int:
    """A policy file's `run.num_envs` (the run's environments, which its evaluation uses
    too), checked: a positive int; absent (None): one environment per episode."""
    if value is None:
        return episodes
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyFileError(
            f"{str(file)!r} records num_envs={value!r}, not a positive number of environments "
            "(its run's): the file is damaged or was not written by bellmax; evaluate the run "
            "directory that holds its checkpoint instead."
        )
    return value


def _evaluate_policies(
    policies: list, env_id: str | None, *, updates_done, num_envs: int, episodes: int, source: str
) -> dict[str, Any]:
    if not isinstance(env_id, str):
        raise ValueError(
            f"{source!r} does not name its training env; pass env=ENV_ID (`--env ENV_ID` on "
            "the command line)."
        )
    seeds = tuple(p.seed for p in policies)
    venv = make_vector_env(env_id, num_envs=num_envs, seed=seeds[0])
    _check_spaces(policies[0], venv, env_id)
    t = time.perf_counter()
    params = _stack([p.params for p in policies])
    returns = _evaluate_seeds(policies[0].act_fn, params, venv, seeds, episodes)
    algo = policies[0].algorithm
    return _evaluation_summary(algo, env_id, seeds, updates_done, returns, t, source)


def _evaluation_summary(algo, env_id, seeds, updates_done, evaluated, t, source) -> dict[str, Any]:
    returns, completed = evaluated
    return {
        "algo": algo,
        "env": env_id,
        "seeds": list(seeds),
        "updates_done": updates_done,
        "episodes": int(returns.shape[1]),
        "episodes_cut_off": int(np.sum(~completed)),
        "mean_return": float(returns.mean()),
        "return_per_seed": [float(x) for x in returns.mean(axis=1)],
        "std_return": float(returns.std()),
        "seconds": round(time.perf_counter() - t, 4),
        "source": source,
    }
