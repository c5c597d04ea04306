"""The training driver: one algorithm, many seeds, chunks of compiled updates.

An algorithm module (`bellmax.deep.ppo`, `dqn`, `a2c`, `reinforce`) provides `Config`,
`init(key, config, venv)`, `update(state, config, venv) -> (state, metrics)`,
`act(...)` and `policy_params(state)`. The driver

- builds the vector environment and validates the config,
- `vmap`s `init` and a `lax.scan` of `update` over seeds (host environments, which live
  outside JAX, run their seeds one after another) and compiles it once, timing the compile
  apart (ahead-of-time `lower().compile()`),
- runs the updates in equal chunks; after each chunk it checks the losses (a non-finite loss
  stops the run and names the update), calls `on_chunk` (progress bars), and writes an
  atomic checkpoint of the whole training state plus `run.json`,
- resumes from that checkpoint so that the result is bit-identical to an uninterrupted run
  (same chunks, same compiled program, same keys),
- writes `metrics.csv`, `metrics.json` and `learning_curve.png`, and evaluates the final
  policy of every seed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.errors import BellmaxError, DivergenceError
from bellmax.train.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from bellmax.train.io import atomic_savefig, atomic_write_json, atomic_write_text

__all__ = [
    "ChunkInfo",
    "TrainResult",
    "evaluate_checkpoint",
    "load_run",
    "plan_chunks",
    "train",
]

CHECKPOINT = "checkpoint.msgpack"
RUN_JSON = "run.json"


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


@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

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
    """Training time after compile (this process only)."""
    compile_seconds: float
    eval_returns: np.ndarray | None = None
    """`[seeds, episodes]` evaluation returns of the final policies (None if not evaluated)."""
    solved_at_steps: list[int | None] | None = None
    """With `stop_return`: env steps per seed at the first evaluation reaching it (or None)."""
    solved_seconds: list[float | None] | None = None
    """With `stop_return`: training seconds (compile and evaluation excluded) until then."""
    eval_seconds: float = 0.0
    """Time spent in evaluations during training (with `stop_return`)."""

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
            last = float(ret[:, -tail:].sum() / c) if c > 0 else None
        out = {
            "algo": self.algo,
            "env": self.env_id,
            "seeds": list(self.seeds),
            "final_eval_return": self.final_eval_return,
            "eval_return_per_seed": None
            if self.eval_returns is None
            else [float(x) for x in self.eval_returns.mean(axis=1)],
            "eval_episodes": None if self.eval_returns is None else int(self.eval_returns.shape[1]),
            "train_return_last_10pct": last,
            "env_steps": int(self.env_steps),
            "env_steps_all_seeds": int(self.env_steps * len(self.seeds)),
            "updates": int(self.updates_done),
            "seconds": round(self.seconds, 4),
            "compile_seconds": round(self.compile_seconds, 4),
        }
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


class _Runner:
    """Compiled init and chunk functions for one (algorithm, config, env, seeds)."""

    def __init__(self, algo: Any, config: Any, venv: Any, n_seeds: int):
        self.algo, self.config, self.venv = algo, config, venv
        self.batched = not venv.is_host
        self.n_seeds = n_seeds
        self._chunks: dict[int, Any] = {}
        self._init = None
        self.compile_seconds = 0.0

    def _scan(self, n: int) -> Callable:
        algo, config, venv = self.algo, self.config, self.venv

        def run(state):
            return jax.lax.scan(lambda s, _: algo.update(s, config, venv), state, None, length=n)

        return jax.vmap(run) if self.batched else run

    def init(self, keys: list[jax.Array]) -> Any:
        def one(k):
            return self.algo.init(k, self.config, self.venv)

        t = time.perf_counter()
        if self._init is None:
            self._init = jax.jit(jax.vmap(one) if self.batched else one)
        if self.batched:
            state = self._init(jnp.stack(keys))
        else:
            state = _stack([self._init(k) for k in keys])
        jax.block_until_ready(state)
        self.compile_seconds += time.perf_counter() - t
        return state

    def template(self, keys: list[jax.Array]) -> Any:
        """The state's shapes without running anything."""

        def one(k):
            return self.algo.init(k, self.config, self.venv)

        if self.batched:
            return jax.eval_shape(jax.vmap(one), jnp.stack(keys))
        return _stack_shapes(jax.eval_shape(one, keys[0]), len(keys))

    def chunk(self, state: Any, n: int) -> tuple[Any, Any]:
        if n not in self._chunks:
            t = time.perf_counter()
            fn = self._scan(n)
            if self.batched:
                compiled = jax.jit(fn).lower(state).compile()
            else:
                one = jax.tree.map(lambda x: x[0], state)
                compiled = jax.jit(fn).lower(one).compile()
            self.compile_seconds += time.perf_counter() - t
            self._chunks[n] = compiled
        compiled = self._chunks[n]
        if self.batched:
            return compiled(state)
        outs = [compiled(jax.tree.map(lambda x, i=i: x[i], state)) for i in range(self.n_seeds)]
        return _stack([o[0] for o in outs]), _stack([o[1] for o in outs])


_RUNNERS: dict[Any, _Runner] = {}


def _runner(algo: Any, config: Any, venv: Any, n_seeds: int) -> _Runner:
    """A cached `_Runner`, so repeated runs in one process compile once."""
    if venv.is_host:
        return _Runner(algo, config, venv, n_seeds)
    try:
        key = (algo, config, venv, n_seeds)
        hash(key)
    except TypeError:
        return _Runner(algo, config, venv, n_seeds)
    if key not in _RUNNERS:
        if len(_RUNNERS) >= 16:
            _RUNNERS.pop(next(iter(_RUNNERS)))
        _RUNNERS[key] = _Runner(algo, config, venv, n_seeds)
    runner = _RUNNERS[key]
    runner.compile_seconds = 0.0
    return runner


def _stack_shapes(tree: Any, n: int) -> Any:
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct((n, *s.shape), s.dtype), tree)


def _first_nonfinite(metrics: dict[str, np.ndarray]) -> tuple[int, int] | None:
    loss = metrics.get("loss")
    if loss is None:
        return None
    bad = ~np.isfinite(loss)
    if not bad.any():
        return None
    seed_idx, upd = np.argwhere(bad)[np.argmin(np.argwhere(bad)[:, 1])]
    return int(seed_idx), int(upd)


def _write_outputs(out: Path, result: TrainResult) -> None:
    m = result.metrics
    n = result.updates_done
    names = sorted(m)
    ret, cnt = m.get("episode_return_sum"), m.get("episode_count")
    lines = ["update,seed," + ",".join(names) + ",mean_episode_return"]
    for s, seed in enumerate(result.seeds):
        for u in range(n):
            row = [str(u + 1), str(seed)] + [repr(float(m[k][s, u])) for k in names]
            mean = (
                float(ret[s, u] / cnt[s, u])
                if ret is not None and cnt is not None and cnt[s, u]
                else float("nan")
            )
            row.append("" if math.isnan(mean) else repr(mean))
            lines.append(",".join(row))
    atomic_write_text(out / "metrics.csv", "\n".join(lines) + "\n")
    if ret is not None and cnt is not None and n:
        _plot_curve(out / "learning_curve.png", result)


def _plot_curve(path: Path, result: TrainResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = result.metrics
    steps = m["env_steps"][0] if "env_steps" in m else np.arange(result.updates_done)
    ret, cnt = m["episode_return_sum"], m["episode_count"]
    window = max(1, result.updates_done // 50)
    fig, ax = plt.subplots(figsize=(6.4, 4))
    means = []
    for s, seed in enumerate(result.seeds):
        r = np.convolve(ret[s], np.ones(window), "valid")
        c = np.convolve(cnt[s], np.ones(window), "valid")
        curve = np.where(c > 0, r / np.maximum(c, 1), np.nan)
        means.append(curve)
        ax.plot(steps[window - 1 :], curve, lw=0.8, alpha=0.5, label=f"seed {seed}")
    if len(means) > 1:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(np.stack(means), axis=0)
        ax.plot(steps[window - 1 :], mean, "k", lw=2, label="mean")
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("episode return (training)")
    ax.set_title(f"{result.algo} on {result.env_id}")
    if len(result.seeds) <= 8:
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=110)
    plt.close(fig)


def train(
    algo: Any,
    config: Any,
    env: Any,
    *,
    seeds: Sequence[int] = (0,),
    out_dir: str | os.PathLike | None = None,
    resume: bool = False,
    chunks: int = 20,
    stop_after: int | None = None,
    eval_episodes: int = 10,
    on_chunk: Callable[[ChunkInfo], None] | None = None,
    algo_name: str | None = None,
    stop_return: float | None = None,
) -> TrainResult:
    """Train `algo` with `config` on `env` for every seed.

    Args:
      algo: an algorithm module (or any object with `Config`, `init`, `update`, `act`,
        `policy_params`), or its name (`"ppo"`).
      config: the algorithm's `Config`.
      env: an env id (bellmax or Gymnasium) or environment object (see `make_vector_env`).
      seeds: one run per seed; JAX environments run them all in one `vmap`.
      out_dir: where checkpoints, metrics and the curve go (None: nothing written).
      resume: continue from `out_dir`'s checkpoint (the config, env and seeds must match).
      chunks: about how many chunks (checkpoints, progress updates) to split the run into.
      stop_after: stop after this many updates in total (for tests of resuming).
      eval_episodes: evaluation episodes per seed at the end (0: skip).
      on_chunk: called after each chunk with a `ChunkInfo`.
      stop_return: evaluate every seed's policy (`eval_episodes` episodes) after each chunk
        and stop once every seed's mean evaluation return has reached this value (like SB3's
        `StopTrainingOnRewardThreshold`); the steps and seconds to reach it are recorded.

    Returns:
      A `TrainResult`.

    Raises:
      DivergenceError: a loss became NaN or infinite (the message names the update and
        seed; the last checkpoint is the last good state).
      ValueError: a bad config (from the algorithm's `validate`) or resume mismatch.
    """
    from bellmax.envs.vector import make_vector_env

    if isinstance(algo, str):
        from bellmax.deep import get_algorithm

        algo_name = algo_name or algo
        algo = get_algorithm(algo)
    name = algo_name or getattr(algo, "NAME", getattr(algo, "__name__", "algo")).split(".")[-1]
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers, at least one; got {seeds!r}.")
    venv = make_vector_env(env, num_envs=config.num_envs, seed=seeds[0])
    config.validate(venv)
    env_id = env if isinstance(env, str) else venv.env_id
    num_updates = int(config.num_updates)
    chunk = plan_chunks(num_updates, chunks)
    runner = _runner(algo, config, venv, len(seeds))
    keys = [jax.random.key(s) for s in seeds]
    out = Path(out_dir) if out_dir is not None else None
    meta = {
        "algo": name,
        "env": env_id,
        "seeds": list(seeds),
        "config": _config_dict(config),
        "num_updates": num_updates,
        "chunk": chunk,
    }
    history: dict[str, np.ndarray] | None = None
    done = 0
    if resume:
        if out is None:
            raise ValueError("resume=True needs out_dir (the run to resume).")
        saved = read_checkpoint_metadata(out / CHECKPOINT)
        for k in ("algo", "env", "seeds", "config", "num_updates", "chunk"):
            if _jsonish(saved.get(k)) != _jsonish(meta[k]):
                raise ValueError(
                    f"cannot resume {str(out)!r}: its {k} is {saved.get(k)!r}, this run's is "
                    f"{meta[k]!r}; use the same settings or a new --out."
                )
        state, saved = load_checkpoint(out / CHECKPOINT, runner.template(keys))
        done = int(saved["updates_done"])
        history = _load_history(out, len(seeds), done)
    else:
        state = runner.init(keys)
    seconds = 0.0
    target = num_updates if stop_after is None else min(num_updates, int(stop_after))
    solved_at: list[int | None] = [None] * len(seeds)
    solved_s: list[float | None] = [None] * len(seeds)
    eval_seconds = 0.0
    if stop_return is not None and eval_episodes < 1:
        raise ValueError("stop_return needs eval_episodes >= 1 (the evaluations decide).")
    while done < target:
        n = min(chunk, num_updates - done)
        compile_before = runner.compile_seconds
        t = time.perf_counter()
        new_state, metrics = runner.chunk(state, n)
        jax.block_until_ready(new_state)
        seconds += time.perf_counter() - t - (runner.compile_seconds - compile_before)
        m = _metrics_to_host(metrics)
        bad = _first_nonfinite(m)
        if bad is not None:
            s, u = bad
            raise DivergenceError(
                f"{name} on {env_id}: the loss became {m['loss'][s, u]} at update {done + u + 1} "
                f"of {num_updates} (seed {seeds[s]}); training stopped. Lower the learning rate "
                "or clip gradients (max_grad_norm)."
                + (f" The last good state is in {str(out / CHECKPOINT)!r}." if out else "")
            )
        state = new_state
        done += n
        history = m if history is None else {k: np.concatenate([history[k], m[k]], 1) for k in m}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            save_checkpoint(out / CHECKPOINT, state, metadata={**meta, "updates_done": done})
            atomic_write_json(out / "metrics.json", {k: v.tolist() for k, v in history.items()})
        if on_chunk is not None:
            r, c = m.get("episode_return_sum"), m.get("episode_count")
            mean = (
                float(r.sum() / c.sum())
                if r is not None and c is not None and c.sum()
                else math.nan
            )
            on_chunk(ChunkInfo(done, num_updates, done * config.steps_per_update, mean, seconds))
        if stop_return is not None:
            t_eval = time.perf_counter()
            rets = _evaluate(algo, config, venv, state, seeds, eval_episodes).mean(axis=1)
            eval_seconds += time.perf_counter() - t_eval
            for i, r in enumerate(rets):
                if solved_at[i] is None and r >= stop_return:
                    solved_at[i] = done * int(config.steps_per_update)
                    solved_s[i] = round(seconds, 4)
            if all(x is not None for x in solved_at):
                break
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
    )
    if stop_return is not None:
        result.solved_at_steps, result.solved_seconds = solved_at, solved_s
        result.eval_seconds = eval_seconds
    if eval_episodes and (done == num_updates or stop_return is not None):
        result.eval_returns = _evaluate(algo, config, venv, state, seeds, eval_episodes)
    if out is not None:
        _write_outputs(out, result)
        atomic_write_json(out / RUN_JSON, {**meta, "updates_done": done, **result.summary()})
    return result


def _jsonish(x: Any) -> Any:
    import json

    return json.loads(json.dumps(x, default=str))


def _load_history(out: Path, n_seeds: int, done: int) -> dict[str, np.ndarray] | None:
    import json

    p = out / "metrics.json"
    if not p.is_file():
        return None
    data = {k: np.asarray(v) for k, v in json.loads(p.read_text()).items()}
    return {k: v[:, :done] for k, v in data.items()}


def _evaluate(algo, config, venv, state, seeds, episodes: int) -> np.ndarray:
    from bellmax.deep.evaluate import evaluate

    params = algo.policy_params(state)
    act = _eval_act(algo, config, venv)
    out = []
    for i, seed in enumerate(seeds):
        p = jax.tree.map(lambda x, i=i: x[i], params)
        res = evaluate(act, p, venv, jax.random.key(10_000 + seed), episodes=episodes)
        out.append(np.asarray(res.returns))
    return np.stack(out)


@functools.lru_cache(maxsize=16)
def _eval_act(algo: Any, config: Any, venv: Any) -> Callable:
    """One `act_fn` object per (algorithm, config, env): `evaluate` compiles it once."""

    def act(params, obs, key):
        return algo.act(params, obs, key, config, venv, deterministic=True)

    return act


def load_run(run_dir: str | os.PathLike) -> tuple[Any, Any, dict]:
    """Rebuild `(algo_module, config, metadata)` of a run directory written by `train`."""
    from bellmax.deep import get_algorithm

    out = Path(run_dir)
    if not (out / CHECKPOINT).is_file():
        raise BellmaxError(
            f"{str(out)!r} has no {CHECKPOINT}; pass the --out DIR of a `bellmax train` run."
        )
    meta = read_checkpoint_metadata(out / CHECKPOINT)
    algo = get_algorithm(meta["algo"])
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["config"].items()}
    config = algo.Config(**values)
    return algo, config, meta


def evaluate_checkpoint(
    run_dir: str | os.PathLike, *, episodes: int = 10, env: str | None = None
) -> dict[str, Any]:
    """Reload a run's checkpoint and evaluate every seed's policy for `episodes` episodes."""
    from bellmax.envs.vector import make_vector_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}.")
    algo, config, meta = load_run(run_dir)
    env_id = env or meta["env"]
    seeds = tuple(meta["seeds"])
    venv = make_vector_env(env_id, num_envs=config.num_envs, seed=seeds[0])
    runner = _runner(algo, config, venv, len(seeds))
    keys = [jax.random.key(s) for s in seeds]
    state, meta = load_checkpoint(Path(run_dir) / CHECKPOINT, runner.template(keys))
    t = time.perf_counter()
    returns = _evaluate(algo, config, venv, state, seeds, episodes)
    return {
        "algo": meta["algo"],
        "env": env_id,
        "seeds": list(seeds),
        "updates_done": meta["updates_done"],
        "episodes": episodes,
        "mean_return": float(returns.mean()),
        "return_per_seed": [float(x) for x in returns.mean(axis=1)],
        "std_return": float(returns.std()),
        "seconds": round(time.perf_counter() - t, 4),
    }
