"""Benchmark: an 8-trial PPO sweep on CartPole-v1 (4 learning rates x 2 seeds), wall time.

- bellmax local: `bellmax.train.sweep.sweep(backend="local")`: the 8 trials as ONE compiled
  program (`jit(vmap)` over learning rates and seeds), in a fresh process (imports, compile,
  training and the final evaluations all count).
- bellmax ray: the same sweep with `backend="ray"` on a local Ray cluster (one Tune trial for
  the one program group), twice: cold (the worker compiles) and warm (a fresh worker finds
  the per-node compile cache). Its *overhead* is the wall time less the work the group did
  inside the worker (compile + train + evaluation): Tune's scheduling, the worker's start and
  imports, reporting and checkpoint copies.
- Ray Tune, one trial per (learning rate, seed), each a plain `bellmax.train.driver.train`
  run (the learning rate is a Python constant, so each trial compiles its own program):
  Tune's defaults (a new worker process per trial), and `reuse_actors=True`.
- RLlib PPO (peer venv `bench/.venv-peers/ray`: `pip install "ray[rllib]==2.60.0"
  torch==2.13.0 pillow`): the same 4 learning rates x 2 seeds through Tune, the same env
  steps per trial, 0 env runners (one CPU per trial, like ours), its CartPole defaults
  otherwise.

All Ray clusters here are local, started on their own loopback address and stopped by
`ray.shutdown()` (never `ray stop`). Each record carries the load average: on a busy
2-core machine numbers move a lot. A last record sketches, from these measured numbers, the
wall time of a 16-group sweep on 1-16 nodes (simulated, not measured on a cluster).

    python bench/sweep.py                  # full bench (several minutes with RLlib)
    python bench/sweep.py --smoke          # tiny budget, no peer venv (checks it runs)
    python bench/sweep.py --only-overhead  # the Ray backend's overhead per group (1 and 4)
    python bench/sweep.py --only-phases    # where a one-group Ray sweep's time goes
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness as H

H.fair_threads()

BENCH = "sweep"
ENV_ID = "CartPole-v1"
LRS = (3e-4, 1e-3, 3e-3, 1e-2)
SEEDS = (0, 1)
HOST = "127.0.0.2"
HOST_CLI = "127.0.0.3"  # a fresh process's own cluster, beside the overhead driver's
CHILDREN = ("local", "ray", "tune", "tune-reuse", "overhead", "phases", "local-fresh", "ray-fresh")
PEER_VENV = H.BENCH_DIR / ".venv-peers" / "ray"
# pillow: RLlib 2.60 imports PIL (via dreamerv3's summaries) when its algorithms load, and
# its rllib extra does not pull it in
RLLIB_INSTALL = f'{PEER_VENV}/bin/pip install "ray[rllib]==2.60.0" torch==2.13.0 pillow'


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return []


def _ray_init(host: str) -> float:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token written to ~/.ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    t = time.perf_counter()
    ray.init(_node_ip_address=host, num_cpus=2, include_dashboard=False, log_to_driver=False)
    node = ray.nodes()[0]["NodeManagerAddress"]
    if not node.startswith("127."):
        ray.shutdown()
        raise RuntimeError(f"Ray bound {node}, not the loopback address {host}")
    return time.perf_counter() - t


# --------------------------------------------------------------------------- children
def child_ours(backend: str, total: int, chunks: int, eval_episodes: int) -> None:
    """A fresh process: bellmax's sweep on one backend; prints one JSON line."""
    t_main = time.time()
    from bellmax.deep import ppo
    from bellmax.train.sweep import sweep

    t_imports = time.time()
    kw = {
        "grid": {"learning_rate": LRS},
        "seeds": SEEDS,
        "base": ppo.Config(total_timesteps=total),
        "chunks": chunks,
        "eval_episodes": eval_episodes,
        "backend": backend,
    }
    runs = []
    init_s = None
    if backend == "ray":
        init_s = _ray_init(HOST)
    for _ in range(2 if backend == "ray" else 1):
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            res = sweep("ppo", ENV_ID, out_dir=out if backend == "ray" else None, **kw)
            wall = time.perf_counter() - t
        g = res.groups[0]
        work = g["compile_seconds"] + g["seconds"] + g["eval_seconds"]
        runs.append(
            {
                "wall_s": wall,
                "compile_s": g["compile_seconds"],
                "train_s": g["seconds"],
                "eval_s": g["eval_seconds"],
                "overhead_s": wall - work,
                "best": res.best["mean_final_eval_return"] if res.best else None,
                "returns": [t["final_eval_return"] for t in res.trials],
            }
        )
    if backend == "ray":
        import ray

        ray.shutdown()
    H.print_json(
        {
            "import_s": t_imports - t_main,
            "ray_init_s": init_s,
            "runs": runs,
            "e2e_s": time.time() - t_main,
            "load": _load(),
        }
    )


def child_overhead(
    total: int, groups_many: int, eval_episodes: int, chunks: int, repeats: int
) -> None:
    """A fresh process: the Ray backend's overhead per program group, as (Ray wall - local
    wall) for the same sweep, with the cluster start shown apart.

    One driver process starts a local Ray cluster (timed alone), turns on the per-node compile
    cache that Ray's workers use, and runs each sweep once on Ray to fill that cache. Then, for
    1 group (the 8-trial learning-rate sweep) and for `groups_many` groups (hidden sizes x 2
    learning rates, 1 seed): the Ray backend with Tune's defaults (`reuse_actors=False`), with
    `reuse_actors=True` (bellmax's default), and the local backend in this process, its
    compiles also served by the cache (so both do the same work: tracing, cache loads,
    training, evaluation). Ray runs one trial at a time (`max_concurrent_trials=1`): the
    difference is Ray's overhead, not two CPUs' parallelism. Per group = difference / groups.
    The reuse_actors and local runs are repeated back to back `repeats` times (on a shared
    machine one pair can be hit by another process's burst): the record is the pair with the
    median difference, all differences listed.

    The local run in this process is a warm one: after the first round JAX's tracing caches
    (flax modules, jnp wrappers) hold what the sweep's program needs, which a new Ray worker
    never has; and this driver's cluster has given its idle workers away (`_overhead_parts`).
    The command line runs one sweep in a new process, and without `--address` on a cluster
    of its own. So each round also times both backends that way (`child_fresh`: a new
    process, imports apart, the Ray one starting its own cluster, timed apart):
    `overhead_per_group_command_line_s` is Ray's overhead as the command line sees it.
    """
    t_main = time.time()
    from bellmax.train import sweep as sw

    init_s = _ray_init(HOST)
    sw._compile_cache()  # the cache Ray's workers use: the local run loads the same programs
    cases = _overhead_cases(total, groups_many, eval_episodes, chunks)
    out = {"ray_init_s": init_s, "cases": [], "parts": _overhead_parts()}
    for groups, kw in cases.items():

        def run(backend: str, reuse: bool | None, kw=kw, groups=groups) -> dict:
            opts = {"reuse_actors": reuse, "max_concurrent_trials": 1} if backend == "ray" else None
            t = time.perf_counter()
            res = sw.sweep("ppo", ENV_ID, backend=backend, ray_options=opts, **kw)
            wall = time.perf_counter() - t
            assert len(res.groups) == groups
            return {"wall_s": wall, "returns": [t["final_eval_return"] for t in res.trials],
                    "work_s": sum(g["compile_seconds"] + g["seconds"] + g["eval_seconds"]
                                  for g in res.groups)}  # fmt: skip

        fill = run("ray", True)  # fills the compile cache (cold)
        default = run("ray", False)
        pairs = []  # (ray with reuse_actors, local) back to back, `repeats` times
        fresh = []  # (ray, local) as `bellmax sweep --backend ray|local` runs them
        for _ in range(repeats):
            sw._PROGRAMS.clear()  # the local run compiles (from the cache) like a fresh worker
            pairs.append((run("ray", True), run("local", None)))
            fresh.append(tuple(_child([
                "--child", f"{backend}-fresh", "--overhead-steps", str(total), "--groups",
                str(groups_many), "--case", str(groups), "--chunks", str(chunks),
                "--eval-episodes", str(eval_episodes),
            ]) for backend in ("ray", "local")))  # fmt: skip
        diffs = [(r["wall_s"] - lo["wall_s"]) / groups for r, lo in pairs]
        reuse, local = pairs[diffs.index(statistics.median_low(diffs))]
        cli_diffs = [(r["wall_s"] - lo["wall_s"]) / groups for r, lo in fresh]
        same = all(
            default["returns"] == r["returns"] == lo["returns"] == fill["returns"]
            == fr["returns"] == fl["returns"]
            for (r, lo), (fr, fl) in zip(pairs, fresh, strict=True)
        )  # fmt: skip
        out["cases"].append(
            {
                "groups": groups,
                "trials": len(local["returns"]),
                "cold_wall_s": fill["wall_s"],
                "ray_defaults_wall_s": default["wall_s"],
                "ray_reuse_wall_s": reuse["wall_s"],
                "local_wall_s": local["wall_s"],
                "overhead_per_group_defaults_s": (default["wall_s"] - local["wall_s"]) / groups,
                "overhead_per_group_reuse_s": (reuse["wall_s"] - local["wall_s"]) / groups,
                "overhead_per_group_reuse_all_s": [round(d, 3) for d in diffs],
                "overhead_per_group_command_line_s": statistics.median(cli_diffs),
                "overhead_per_group_command_line_all_s": [round(d, 3) for d in cli_diffs],
                "fresh_ray_wall_s": [round(r["wall_s"], 3) for r, _ in fresh],
                "fresh_ray_init_s": [round(r["ray_init_s"], 3) for r, _ in fresh],
                "fresh_local_wall_s": [round(lo["wall_s"], 3) for _, lo in fresh],
                "work_s": {
                    "ray_defaults": default["work_s"],
                    "ray_reuse": reuse["work_s"],
                    "local": local["work_s"],
                },
                "identical_per_trial_results": same,
            }
        )
    import ray

    ray.shutdown()
    out.update({"e2e_s": time.time() - t_main, "load": _load()})
    H.print_json(out)


def _overhead_cases(total: int, groups_many: int, eval_episodes: int, chunks: int) -> dict:
    """`{groups: sweep keywords}`: the 8-trial learning-rate sweep (1 group) and `groups_many`
    groups (hidden sizes x 2 learning rates, 1 seed)."""
    from bellmax.deep import ppo

    sizes = [(32,), (48,), (64,), (32, 32), (64, 64), (16,), (24,), (96,)][:groups_many]
    cases = {
        1: {"grid": {"learning_rate": LRS}, "seeds": SEEDS},
        groups_many: {"grid": {"learning_rate": LRS[1:3], "hidden_sizes": sizes}, "seeds": (0,)},
    }
    common = {"base": ppo.Config(total_timesteps=total), "chunks": chunks,
              "eval_episodes": eval_episodes}  # fmt: skip
    return {g: {**kw, **common} for g, kw in cases.items()}


def child_fresh(
    backend: str, total: int, groups_many: int, case: int, eval_episodes: int, chunks: int
) -> None:
    """A fresh process, as `bellmax sweep --backend local|ray` runs: imports (not timed), for
    Ray a local cluster of its own (on `HOST_CLI`, the driver's stays up; timed apart, as
    `ray_init_s`), then one sweep of `child_overhead`'s case `case` (its compiles served by
    the same persistent cache, JAX's tracing caches empty as in a new Ray worker; Ray with
    reuse_actors, one trial at a time); prints its wall. Ray Tune's import is in the wall."""
    from bellmax.train import sweep as sw

    init_s = _ray_init(HOST_CLI) if backend == "ray" else None
    sw._compile_cache()
    kw = _overhead_cases(total, groups_many, eval_episodes, chunks)[case]
    opts = {"reuse_actors": True, "max_concurrent_trials": 1} if backend == "ray" else None
    t = time.perf_counter()
    res = sw.sweep("ppo", ENV_ID, backend=backend, ray_options=opts, **kw)
    wall = time.perf_counter() - t
    if backend == "ray":
        import ray

        ray.shutdown()
    H.print_json({"wall_s": wall, "ray_init_s": init_s,
                  "returns": [t["final_eval_return"] for t in res.trials]})  # fmt: skip


TRACE_ENV = "BELLMAX_BENCH_SWEEP_TRACE"


def _trace(event: str, at: float | None = None, **kw) -> None:
    with open(os.environ[TRACE_ENV], "a") as f:
        f.write(json.dumps({"ev": event, "t": time.time() if at is None else at, **kw}) + "\n")


def _traced_group(config: dict) -> None:
    """bellmax's Tune trainable (`_tune_group`), with the worker's phases written to the
    trace file: its process start, bellmax's import (jax, flax, optax), the group's run."""
    ticks = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19])
    age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    _trace("process_start", time.time() - age)
    _trace("trainable_start", imported=sorted(m for m in ("jax", "bellmax") if m in sys.modules))
    from bellmax.train import sweep as sw

    _trace("bellmax_imported")
    run_group = sw.run_group

    def traced(*args, **kwargs):
        _trace("group_start")
        res = run_group(*args, **kwargs)
        _trace("group_end", work=[res.compile_seconds, res.seconds, res.eval_seconds])
        return res

    sw.run_group = traced
    try:
        sw._tune_group(config)
    finally:
        sw.run_group = run_group


def child_phases(total: int, eval_episodes: int, chunks: int, repeats: int) -> None:
    """A fresh process: where the Ray backend's time goes for the one-group sweep (8 trials),
    each phase timed from a trace the driver and the Tune worker write (`repeats` rounds of
    a Ray run and a local run; the median of each phase)."""
    import statistics

    from ray import tune

    from bellmax.deep import ppo
    from bellmax.train import sweep as sw

    trace = Path(tempfile.mkdtemp(prefix="bellmax-bench-")) / "trace.jsonl"
    os.environ[TRACE_ENV] = str(trace)  # before the cluster starts: its workers inherit it
    init_s = _ray_init(HOST)
    sw._compile_cache()
    sw._tune_group = _traced_group  # the driver sends the traced trainable to Tune
    fit = tune.Tuner.fit

    def traced_fit(self):
        _trace("fit_start")
        grid = fit(self)
        _trace("fit_end")
        return grid

    tune.Tuner.fit = traced_fit
    kw = {"grid": {"learning_rate": LRS}, "seeds": SEEDS, "base": ppo.Config(total_timesteps=total),
          "chunks": chunks, "eval_episodes": eval_episodes}  # fmt: skip
    sw.sweep("ppo", ENV_ID, backend="ray", **kw)  # fills the compile cache
    rounds = []
    for _ in range(repeats):
        trace.write_text("")
        sw._PROGRAMS.clear()
        t = time.time()
        sw.sweep("ppo", ENV_ID, backend="ray", **kw)
        ray_end = time.time()
        sw._PROGRAMS.clear()
        sw.sweep("ppo", ENV_ID, backend="local", **kw)
        local_s = time.time() - ray_end
        ev = {}
        for line in trace.read_text().splitlines():
            e = json.loads(line)
            ev.setdefault(e["ev"], e)
        at = {k: e["t"] for k, e in ev.items()}
        c, s, e = ev["group_end"]["work"]
        group_s = at["group_end"] - at["group_start"]
        began = max(at["process_start"], at["fit_start"])  # an idle worker: before the fit
        rounds.append({
            "driver_to_tune_fit": at["fit_start"] - t,
            "worker_process_start": began - at["fit_start"],
            "idle_worker": at["process_start"] < at["fit_start"],
            "worker_boot_and_ray_tune_import": at["trainable_start"] - began,
            "worker_bellmax_jax_import": at["bellmax_imported"] - at["trainable_start"],
            "group_setup": at["group_start"] - at["bellmax_imported"],
            "group_compile_from_cache": c, "group_train": s, "group_eval": e,
            "group_rest": group_s - c - s - e,
            "result_to_fit_end": at["fit_end"] - at["group_end"],
            "fit_end_to_sweep_end": ray_end - at["fit_end"],
            "ray_wall": ray_end - t, "local_wall": local_s, "overhead": ray_end - t - local_s,
        })  # fmt: skip
    import ray

    ray.shutdown()
    shutil.rmtree(trace.parent, ignore_errors=True)
    phases = {k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0]
              if k != "idle_worker"}  # fmt: skip
    H.print_json({"ray_init_s": init_s, "phases": phases, "rounds": rounds, "load": _load()})


def _trivial_trial(config: dict) -> None:
    from ray import tune

    for i in range(config["chunks"]):
        tune.report({"score": i})


class _Probe:
    def pid(self) -> int:
        return os.getpid()


def _actor_starts() -> dict:
    """Seconds from creating a 1-CPU actor to its first answer: on one of the idle workers
    Ray starts with a node (`idle_worker_s`); with the runtime environment Ray Tune gives its
    trial actors by default (`tune_runtime_env_s`: a new worker, through Ray's
    runtime-environment agent); plain once the idle workers are taken (`new_worker_s`). The
    sweep's trial actors go without Tune's environment (`sweep._trials_on_started_workers`)."""
    import ray
    from ray.tune.execution.class_cache import DEFAULT_ENV_VARS

    def start(runtime_env: dict | None) -> float:
        opts = {"num_cpus": 1} | ({"runtime_env": runtime_env} if runtime_env else {})
        t = time.perf_counter()
        actor = ray.remote(**opts)(_Probe).remote()
        ray.get(actor.pid.remote())
        took = time.perf_counter() - t
        ray.kill(actor)
        return took

    tune_env = {"env_vars": dict(DEFAULT_ENV_VARS)}  # (a Ray internal)
    idle = [start(None) for _ in range(2)]  # the 2-CPU cluster starts 2 idle workers
    return {"idle_worker_s": idle, "tune_runtime_env_s": start(tune_env),
            "new_worker_s": start(None)}  # fmt: skip


def _overhead_parts() -> dict:
    """What a first group's overhead is made of, measured apart (the cluster is up):
    `actor_start` (`_actor_starts`); `tune_trial_s`, a 1-trial Tune fit, Tune's defaults, of
    a trainable that imports nothing and reports 10 times (Tune's scheduling, the trial
    actor's process start, its `ray.tune` import); `worker_imports_s`, a fresh Python
    importing `bellmax.train.sweep` (jax, flax, optax, bellmax) and starting jax's CPU
    backend, as a new worker does before its first group. The idle workers are taken here:
    the overhead cases after this start a new worker for each sweep (the command line's one
    sweep per cluster finds an idle one)."""
    from ray import tune

    parts = {"actor_start": _actor_starts()}
    with tempfile.TemporaryDirectory() as storage:
        t = time.perf_counter()
        tune.Tuner(
            tune.with_resources(_trivial_trial, {"cpu": 1}),
            param_space={"chunks": 10},
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        ).fit()
        parts["tune_trial_s"] = time.perf_counter() - t
    code = (
        "import time; t = time.perf_counter(); import bellmax.train.sweep, jax; jax.devices(); "
        "print(time.perf_counter() - t)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    parts["worker_imports_s"] = float(run.stdout.strip().splitlines()[-1])
    return parts


def _classic_trial(config: dict) -> None:
    """A Tune trial: one (learning rate, seed) trained by `bellmax.train.driver.train`."""
    from ray import tune

    from bellmax.deep import ppo
    from bellmax.train.driver import train

    cfg = ppo.Config(total_timesteps=config["total"], learning_rate=config["lr"])
    res = train(
        "ppo",
        cfg,
        ENV_ID,
        seeds=(config["seed"],),
        chunks=config["chunks"],
        eval_episodes=config["eval_episodes"],
    )
    tune.report({"final_eval_return": res.final_eval_return, "compile_s": res.compile_seconds})


def child_tune(reuse: bool, total: int, chunks: int, eval_episodes: int) -> None:
    """A fresh process: Ray Tune with one trial per (learning rate, seed)."""
    t_main = time.time()
    from ray import tune

    init_s = _ray_init(HOST)
    space = {
        "lr": tune.grid_search(list(LRS)),
        "seed": tune.grid_search(list(SEEDS)),
        "total": total,
        "chunks": chunks,
        "eval_episodes": eval_episodes,
    }
    with tempfile.TemporaryDirectory() as storage:
        t = time.perf_counter()
        grid = tune.Tuner(
            tune.with_resources(_classic_trial, {"cpu": 1}),
            param_space=space,
            tune_config=tune.TuneConfig(reuse_actors=reuse),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        ).fit()
        wall = time.perf_counter() - t
    rets = [r.metrics.get("final_eval_return") for r in grid]
    compiles = [r.metrics.get("compile_s") for r in grid]
    import ray

    ray.shutdown()
    H.print_json(
        {
            "ray_init_s": init_s,
            "wall_s": wall,
            "returns": rets,
            "compile_s_per_trial": compiles,
            "e2e_s": time.time() - t_main,
            "load": _load(),
        }
    )


def peer_rllib(total: int) -> None:
    """Runs in the peer venv: RLlib PPO, the same 8 trials through Tune."""
    t_main = time.time()
    import ray
    from ray import tune
    from ray.rllib.algorithms.ppo import PPOConfig

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t = time.perf_counter()
    ray.init(_node_ip_address="127.0.0.3", num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t
    config = (
        PPOConfig()
        .environment(ENV_ID)
        .env_runners(num_env_runners=0)
        .training(lr=tune.grid_search(list(LRS)))
        .debugging(seed=tune.grid_search(list(SEEDS)))
    )
    with tempfile.TemporaryDirectory() as storage:
        t = time.perf_counter()
        grid = tune.Tuner(
            "PPO",
            param_space=config,
            run_config=tune.RunConfig(
                storage_path=storage, stop={"num_env_steps_sampled_lifetime": total}, verbose=0
            ),
        ).fit()
        wall = time.perf_counter() - t
    rets = []
    for r in grid:
        m = r.metrics or {}
        rets.append((m.get("env_runners") or {}).get("episode_return_mean"))
    ray.shutdown()
    H.print_json(
        {
            "ray_init_s": init_s,
            "wall_s": wall,
            "train_return_mean": rets,
            "e2e_s": time.time() - t_main,
            "load": _load(),
        }
    )


def _child(args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=H.REPO_ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"child failed (exit {proc.returncode}): {' '.join(cmd)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = time.time() - t0
    return out


def _rllib(args, ours: float, total: int, common: dict, out) -> None:
    if args.smoke or args.no_venv_peers or args.no_rllib:
        peer = H.skipped("RLlib skipped (--smoke / --no-venv-peers / --no-rllib)")
    else:
        peer = H.run_in_peer_venv(
            __file__, ["--peer-rllib", "--total-steps", str(total)], group="ray",
            modules=["ray.rllib", "torch"], venv=PEER_VENV, threads=1, timeout=3600,
        )  # fmt: skip
        if H.is_skipped(peer):
            peer["install"] = RLLIB_INSTALL
    H.emit(
        H.result(
            BENCH, ours, None if H.is_skipped(peer) else peer["e2e_s"], "s",
            peer_name="RLlib 2.60 PPO (0 env runners, torch 1 thread) through Tune",
            case="8-trial sweep, process start to results", peer_detail=peer, **common,
        ),
        out,
    )  # fmt: skip


def _overhead(args, common: dict, out) -> None:
    steps = 2_048 if args.smoke else args.overhead_steps
    run = _child(["--child", "overhead", "--overhead-steps", str(steps), "--groups",
                  str(args.groups), "--repeats", str(1 if args.smoke else args.repeats)]
                 + (["--smoke"] if args.smoke else []))  # fmt: skip
    for case in run["cases"]:
        H.log(f"{BENCH}: overhead, {case['groups']} group(s): {case}")
        views = (  # (value, how it was measured, fields of that record only)
            (
                case["overhead_per_group_reuse_s"],
                ": (ray wall - local wall) / groups, reuse_actors (bellmax's default), one trial "
                "at a time, warm compile cache, cluster start apart",
                {"overhead_per_group_tune_defaults_s": case["overhead_per_group_defaults_s"],
                 "parts": run["parts"]},
            ),
            (
                case["overhead_per_group_command_line_s"],
                ", as the command line sees it: (ray wall - local wall) / groups, each in a fresh "
                "process, imports apart, Ray on a cluster of its own (its start apart), "
                "reuse_actors, one trial at a time, warm compile cache",
                {},
            ),
        )  # fmt: skip
        for value, how, own in views:
            H.emit(
                H.result(
                    BENCH, value, 2.0, "s", peer_name="goal: <= 2 s per program group",
                    case=f"ray backend overhead per group, {case['groups']} group(s){how}",
                    ray_init_s=run["ray_init_s"], load=run["load"], **own,
                    **{**common, "total_steps": steps, "trials": case["trials"]},
                    **{k: v for k, v in case.items() if k != "trials"},
                ),
                out,
            )  # fmt: skip


def _phases(args, common: dict, out) -> None:
    steps = 2_048 if args.smoke else args.overhead_steps
    run = _child(["--child", "phases", "--overhead-steps", str(steps), "--repeats",
                  str(1 if args.smoke else args.repeats)] + (["--smoke"] if args.smoke else []))  # fmt: skip
    H.log(f"{BENCH}: phases (median of {len(run['rounds'])}): {run['phases']}")
    H.emit(
        H.result(
            BENCH, run["phases"]["overhead"], 2.0, "s", peer_name="goal: <= 2 s per program group",
            case="ray backend phases, 1 group (8 trials): median of (ray wall - local wall) and "
            "of each phase, from the driver's and the Tune worker's trace; cluster start apart",
            ray_init_s=run["ray_init_s"], phases=run["phases"], rounds=run["rounds"],
            load=run["load"], **{**common, "total_steps": steps},
        ),
        out,
    )  # fmt: skip


# --------------------------------------------------------------------------- main
def main() -> None:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--total-steps", type=int, default=30_000, help="env steps per trial")
    p.add_argument(
        "--child",
        choices=CHILDREN,
        default=None,
    )
    p.add_argument(
        "--only-overhead", action="store_true",
        help="only the Ray backend's overhead per group (1 and --groups groups)",
    )  # fmt: skip
    p.add_argument("--groups", type=int, default=4, help="groups of the several-group case")
    p.add_argument(
        "--overhead-steps", type=int, default=8_192,
        help="env steps per trial of the overhead runs (the overhead is per run, not per step)",
    )  # fmt: skip
    p.add_argument(
        "--repeats", type=int, default=3,
        help="(ray reuse_actors, local) pairs per overhead case; the median is recorded",
    )  # fmt: skip
    p.add_argument(
        "--only-phases", action="store_true",
        help="only where the Ray backend's time goes, phase by phase (1 group)",
    )  # fmt: skip
    p.add_argument("--peer-rllib", action="store_true", help="(internal) the RLlib run")
    p.add_argument("--case", type=int, default=1, help="(internal) local/ray-fresh: groups")
    p.add_argument("--chunks", type=int, help="(internal) local/ray-fresh: chunks per group")
    p.add_argument("--eval-episodes", type=int, help="(internal) local/ray-fresh: episodes")
    p.add_argument("--no-rllib", action="store_true", help="skip RLlib (it takes minutes)")
    p.add_argument("--only-rllib", action="store_true", help="bellmax local and RLlib only")
    args = p.parse_args()
    total = 2_048 if args.smoke else (10_000 if args.quick else args.total_steps)
    chunks, episodes = (2, 2) if args.smoke else (10, 10)
    if args.peer_rllib:
        return peer_rllib(total)
    if args.child == "overhead":
        return child_overhead(args.overhead_steps, args.groups, episodes, chunks, args.repeats)
    if args.child in ("local-fresh", "ray-fresh"):
        return child_fresh(
            args.child.removesuffix("-fresh"), args.overhead_steps, args.groups, args.case,
            args.eval_episodes, args.chunks,
        )  # fmt: skip
    if args.child == "phases":
        return child_phases(args.overhead_steps, episodes, chunks, args.repeats)
    if args.child in ("local", "ray"):
        return child_ours(args.child, total, chunks, episodes)
    if args.child is not None:
        return child_tune(args.child == "tune-reuse", total, chunks, episodes)

    common = {"total_steps": total, "trials": len(LRS) * len(SEEDS), "env": ENV_ID}
    budget = ["--total-steps", str(total)] + (["--smoke"] if args.smoke else [])
    budget += ["--quick"] if args.quick else []
    out = args.results_dir
    if args.only_overhead:
        return _overhead(args, common, out)
    if args.only_phases:
        return _phases(args, common, out)
    local = _child(["--child", "local", *budget])
    H.log(f"{BENCH}: local {local['process_s']:.1f} s (process), {local['runs'][0]}")
    if args.only_rllib:
        return _rllib(args, local["process_s"], total, common, out)
    ray_run = _child(["--child", "ray", *budget])
    cold, warm = ray_run["runs"]
    H.log(f"{BENCH}: ray init {ray_run['ray_init_s']:.1f} s, cold {cold}, warm {warm}")
    ours = local["process_s"]
    same = cold["returns"] == local["runs"][0]["returns"] == warm["returns"]
    H.emit(
        H.result(
            BENCH, warm["overhead_s"], 2.0, "s", peer_name="goal: <= 2 s per program group",
            case="ray backend overhead per group (warm compile cache)",
            cold_overhead_s=cold["overhead_s"], ray_init_s=ray_run["ray_init_s"],
            ray_wall_warm_s=warm["wall_s"], ray_wall_cold_s=cold["wall_s"],
            identical_per_trial_results=same, load=ray_run["load"], **common,
        ),
        out,
    )  # fmt: skip
    for child, name in (("tune", "Ray Tune defaults"), ("tune-reuse", "Ray Tune reuse_actors")):
        if args.smoke:  # the peers' side (a Tune trial per configuration) takes 40-90 s
            H.emit(
                H.result(
                    BENCH, ours, None, "s", peer_name=name,
                    case="8-trial sweep, process start to results",
                    peer_skipped="Tune baselines skipped (--smoke)", **common,
                ),
                out,
            )  # fmt: skip
            continue
        tune_run = _child(["--child", child, *budget])
        H.log(
            f"{BENCH}: {name}: {tune_run['process_s']:.1f} s (process), wall {tune_run['wall_s']:.1f} s"
        )
        H.emit(
            H.result(
                BENCH, ours, tune_run["process_s"], "s",
                peer_name=f"{name}, one trial per (lr, seed), bellmax.train.driver.train each",
                case="8-trial sweep, process start to results", ours_detail=local["runs"][0],
                ours_compile_s=local["runs"][0]["compile_s"], peer_wall_s=tune_run["wall_s"],
                peer_ray_init_s=tune_run["ray_init_s"], peer_returns=tune_run["returns"],
                peer_compile_s_per_trial=tune_run["compile_s_per_trial"],
                goal="ours <= 1/3 of Ray Tune defaults" if child == "tune" else None,
                load=tune_run["load"], **common,
            ),
            out,
        )  # fmt: skip
    _rllib(args, ours, total, common, out)
    # A sketch, not a measurement: G program groups over N nodes of one trial slot each,
    # every group costing what the warm Ray run measured (its work plus its overhead).
    per_group = warm["wall_s"]
    groups = 16
    sketch = {
        n: round(ray_run["ray_init_s"] + math.ceil(groups / n) * per_group, 1)
        for n in (1, 2, 4, 8, 16)
    }
    H.emit(
        H.result(
            BENCH, sketch[16], sketch[1], "s", peer_name="the same 16 groups on 1 node",
            case="simulated: 16 program groups on 1-16 nodes (wall s by nodes)",
            wall_by_nodes=sketch, per_group_s=per_group, **common,
        ),
        out,
    )  # fmt: skip


if __name__ == "__main__":
    main()
