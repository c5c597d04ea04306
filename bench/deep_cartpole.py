"""Benchmark: time to solve CartPole-v1 with PPO and DQN, process start to solved.

"Solved" is the first evaluation (10 episodes, deterministic policy) with a mean return of at
least 475; evaluations happen every ~3840 environment steps for everyone (`--eval-every`).

- bellmax: `bellmax.train.driver.train(algo, config, "CartPole-v1", seeds=...,
  stop_return=475)` on the same work as SB3's run (`SAME_WORK`): PPO with its default Config
  (rl-zoo's CartPole-v1 PPO settings), DQN with its Config set to rl-zoo's CartPole-v1 DQN as
  SB3 runs it (a [256, 256] network, 1 environment, 256 env steps then 128 gradient steps,
  Huber loss, no Double DQN, a constant learning rate; bellmax's own DQN defaults differ, see
  `bellmax.deep.dqn.Config`), in a FRESH `.venv/bin/python` process each time, so that the
  interpreter start, the imports and the compile all count. One seed at a time for seeds 0, 1, 2 (`--e2e-seeds`), each run with
  an empty and then with a warm JAX persistent compilation cache (`bench/.cache/deep_cartpole/`,
  as the CLI's `BELLMAX_CACHE_DIR` would be) in turn with SB3's run of the same seed; the
  records give the means over those seeds and each seed's numbers. Then 16 seeds in one
  `vmap` (until every seed is solved or the budget ends; cold, then warm cache).
- Stable-Baselines3 2.9 (peer venv, group `sb3`, torch with 1 thread, or N with
  `--peer-threads N`): PPO and DQN with the rl-zoo CartPole-v1 hyperparameters
  (shared/PEERS.md), `EvalCallback` +
  `StopTrainingOnRewardThreshold(475)`, 10 deterministic episodes. Each of those seeds in a
  fresh process (process start to solved), then N seeds one after another in one process (the sum of their
  times plus one interpreter start and import; 16 by default for both algorithms, measured; a
  smaller `--sb3-*-seeds` is extrapolated to 16 and the record says so). SB3's evaluation time
  is measured apart.
- rejax 0.1.3 (peer venv, group `gymnax`): its PPO with the same rl-zoo settings (no learning
  rate / clip annealing, which rejax lacks), trained for the whole budget inside one jit (rejax
  has no early stop), evaluating 10 deterministic episodes every `--eval-every` steps in-graph,
  which tells at which step each seed solved. Its time to solve is then measured: the same
  run again for exactly that many steps (the last seed's), evaluations included, compile
  apart. Its throughput is measured on a third run without the in-graph evaluations (one
  trivial one at the end), as ours is counted without evaluation.

Timestamps are `time.time()` on this machine: the parent takes one just before spawning a
child and the child reports when it started `main`, finished importing, and when training
returned (after the solving evaluation and one final evaluation). Compile, training (compile
and evaluation excluded) and evaluation seconds are reported apart. Every record carries the
load average (`load_avg`): on a busy 2-core machine numbers move a lot.

    python bench/deep_cartpole.py            # full bench (~10-15 min), peers included
    python bench/deep_cartpole.py --quick    # 4 seeds, fewer peer runs
    python bench/deep_cartpole.py --smoke    # tiny budgets, no peer venv, one 1-seed process per
                                             # algorithm in bellmax's default compile cache (the
                                             # test suite runs this; compile dominates)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _harness as H

H.fair_threads()

BENCH = "deep_cartpole"
ENV_ID = "CartPole-v1"
SOLVED = 475.0
CACHE_ROOT = H.BENCH_DIR / ".cache" / BENCH
SB3_TOTAL = {"ppo": 100_000, "dqn": 50_000}
#: bellmax's Config changes that make its run the same work as SB3's (`peer_sb3`): the same
#: network, environments, update schedule and loss. PPO's defaults already are rl-zoo's
#: settings; DQN's defaults are not (MSE, Double DQN, [64, 64], 8 envs, an annealed learning
#: rate), so DQN runs rl-zoo's CartPole-v1 DQN: 1 env, train_freq 256 with 128 gradient steps,
#: Huber loss, a [256, 256] ReLU network, a constant 2.3e-3. The rest of Config's defaults are
#: the zoo's already (batch 64, buffer 1e5, learning_starts 1000, epsilon 1 -> 0.04 over 16%,
#: gradients clipped at norm 10 as SB3's DQN does, and a hard target update once per
#: update: 128 gradient steps, which is what SB3's target_update_interval=10 env steps does
#: with train_freq 256).
SAME_WORK = {
    "ppo": {},
    "dqn": {
        "num_envs": 1,
        "train_frequency": 256,
        "hidden_sizes": [256, 256],
        "loss": "huber",
        "double_dqn": False,
        "anneal_lr": False,
    },
}

#: Tiny configs for --smoke (seconds, not a solve).
SMOKE_CONFIG = {
    "ppo": {
        "total_timesteps": 1024,
        "num_envs": 4,
        "num_steps": 16,
        "num_epochs": 2,
        "minibatch_size": 64,
    },
    "dqn": {
        "total_timesteps": 1024,
        "num_envs": 4,
        "train_frequency": 16,
        "gradient_steps": 4,
        "learning_starts": 128,
        "buffer_size": 2048,
    },
}


def _load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return []


# --------------------------------------------------------------------------- bellmax (child)
def child_ours(
    algo_name: str, n_seeds: int, cache_dir: str, eval_every: int, overrides: dict, first_seed: int
):
    """Runs in a fresh process: import, compile, train until solved; prints one JSON line."""
    t_main = time.time()
    import jax  # noqa: F401  (timed apart: import_jax_s)

    if cache_dir:
        H.use_compile_cache(cache_dir)
    t_jax = time.time()
    import dataclasses

    from bellmax.deep import dqn, ppo
    from bellmax.train.driver import plan_chunks, train

    t_imports = time.time()
    algo = {"ppo": ppo, "dqn": dqn}[algo_name]
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    config = dataclasses.replace(algo.Config(), **fields)
    per_chunk = max(1, round(eval_every / config.steps_per_update))
    chunks = max(1, round(config.num_updates / per_chunk))
    chunk = plan_chunks(config.num_updates, chunks)
    load_before = _load()
    t_train = time.time()
    res = train(
        algo,
        config,
        ENV_ID,
        seeds=tuple(range(first_seed, first_seed + n_seeds)),
        chunks=chunks,
        eval_episodes=10,
        stop_return=SOLVED,
    )
    t_end = time.time()
    solved = [s for s in res.solved_at_steps if s is not None]
    H.print_json(
        {
            "t_main": t_main,
            "t_imports": t_imports,
            "t_end": t_end,
            "import_jax_s": t_jax - t_main,
            "import_s": t_imports - t_main,
            "driver_s": t_end - t_train,
            "compile_s": res.compile_seconds,
            "compile_phases": res.compile_phases,
            "train_s": res.seconds,
            "eval_s": res.eval_seconds,
            "other_s": (t_end - t_train) - res.compile_seconds - res.seconds - res.eval_seconds,
            "solved_at_steps": res.solved_at_steps,
            "solved_seconds": res.solved_seconds,
            "n_solved": len(solved),
            "n_seeds": n_seeds,
            "env_steps": res.env_steps,
            "total_timesteps": config.total_timesteps,
            "eval_every_steps": chunk * config.steps_per_update,
            "final_eval_return": res.final_eval_return,
            "load_before": load_before,
            "load_after": _load(),
        }
    )


def run_ours(
    algo: str,
    n_seeds: int,
    cache_dir: Path | None,
    eval_every: int,
    smoke: bool,
    cold: bool,
    first_seed: int = 0,
) -> dict:
    """Spawn a fresh bellmax process; return its numbers plus process-start-to-solved."""
    if cache_dir is not None and cold:
        shutil.rmtree(cache_dir, ignore_errors=True)
    overrides = {**SAME_WORK[algo], **(SMOKE_CONFIG[algo] if smoke else {})}
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child-ours",
        algo,
        "--seeds",
        str(n_seeds),
        "--cache-dir",
        "" if cache_dir is None else str(cache_dir),
        "--eval-every",
        str(eval_every),
        "--overrides",
        json.dumps(overrides),
        "--first-seed",
        str(first_seed),
    ]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=H.REPO_ROOT, capture_output=True, text=True, timeout=1800)
    t_back = time.time()
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"bellmax child failed (exit {proc.returncode}): {' '.join(cmd)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_start_s"] = out["t_main"] - t0
    out["e2e_s"] = out["t_end"] - t0
    out["wall_s"] = t_back - t0
    out["cache"] = "default" if cache_dir is None else ("cold" if cold else "warm")
    for k in ("t_main", "t_imports", "t_end"):
        out.pop(k)
    H.log(
        f"{BENCH}: bellmax {algo} x{n_seeds} from seed {first_seed} ({out['cache']} cache): e2e {out['e2e_s']:.1f} s, "
        f"compile {out['compile_s']:.1f} s, train {out['train_s']:.1f} s, eval "
        f"{out['eval_s']:.1f} s, solved {out['n_solved']}/{n_seeds} at {out['solved_at_steps']}"
    )
    return out


# --------------------------------------------------------------------------- SB3 (peer venv)
def peer_sb3(algo_name: str, seeds: list[int], eval_every: int, t0: float) -> None:
    """Runs in the peer venv: SB3 with rl-zoo settings, stop at 475; prints one JSON line."""
    t_main = time.time()
    import torch

    torch.set_num_threads(_peer_threads())
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
    from stable_baselines3.common.env_util import make_vec_env

    t_imports = time.time()

    class TimedEval(EvalCallback):
        eval_s = 0.0

        def _on_step(self) -> bool:
            if self.eval_freq > 0 and self.n_calls % self.eval_freq == 0:
                t = time.perf_counter()
                keep_going = super()._on_step()
                self.eval_s += time.perf_counter() - t
                return keep_going
            return super()._on_step()

    runs = []
    for seed in seeds:
        t_run = time.time()
        if algo_name == "ppo":
            env = make_vec_env(ENV_ID, n_envs=8, seed=seed)
            model = PPO(
                "MlpPolicy",
                env,
                n_steps=32,
                batch_size=256,
                gae_lambda=0.8,
                gamma=0.98,
                n_epochs=20,
                ent_coef=0.0,
                learning_rate=lambda p: p * 1e-3,
                clip_range=lambda p: p * 0.2,
                seed=seed,
                device="cpu",
                verbose=0,
            )
        else:
            env = make_vec_env(ENV_ID, n_envs=1, seed=seed)
            model = DQN(
                "MlpPolicy",
                env,
                learning_rate=2.3e-3,
                batch_size=64,
                buffer_size=100_000,
                learning_starts=1000,
                gamma=0.99,
                target_update_interval=10,
                train_freq=256,
                gradient_steps=128,
                exploration_fraction=0.16,
                exploration_final_eps=0.04,
                policy_kwargs={"net_arch": [256, 256]},
                seed=seed,
                device="cpu",
                verbose=0,
            )
        eval_env = make_vec_env(ENV_ID, n_envs=1, seed=10_000 + seed)  # Monitor-wrapped
        cb = TimedEval(
            eval_env,
            callback_on_new_best=StopTrainingOnRewardThreshold(SOLVED, verbose=0),
            eval_freq=max(1, eval_every // env.num_envs),
            n_eval_episodes=10,
            deterministic=True,
            verbose=0,
        )
        t_learn = time.time()
        model.learn(SB3_TOTAL[algo_name], callback=cb)
        t_end = time.time()
        solved = bool(cb.best_mean_reward >= SOLVED)
        runs.append(
            {
                "seed": seed,
                "solved": solved,
                "solved_at_steps": int(model.num_timesteps) if solved else None,
                "env_steps": int(model.num_timesteps),
                "setup_s": t_learn - t_run,
                "learn_s": t_end - t_learn,
                "eval_s": cb.eval_s,
                "train_s": (t_end - t_learn) - cb.eval_s,
                "run_s": t_end - t_run,
                "e2e_s": t_end - t0,
                "best_eval_return": float(cb.best_mean_reward),
            }
        )
        print(f"[bench] sb3 {algo_name} seed {seed}: {runs[-1]}", file=sys.stderr, flush=True)
    H.print_json(
        {
            "process_start_s": t_main - t0,
            "import_s": t_imports - t_main,
            "runs": runs,
            "version": H.package_version("stable-baselines3"),
            "torch_version": H.package_version("torch"),
            "torch_threads": torch.get_num_threads(),
            "load_after": _load(),
        }
    )


def run_sb3(algo: str, seeds: list[int], eval_every: int) -> dict:
    args = ["--peer", "sb3", "--algo", algo, "--seed-list", ",".join(map(str, seeds))]
    args += ["--eval-every", str(eval_every)]
    t0 = time.time()
    # modules=() so the timed child is the only process spawned after t0.
    return H.run_in_peer_venv(
        __file__, [*args, "--t0", repr(t0)], group="sb3", threads=_peer_threads(), timeout=3600
    )


# --------------------------------------------------------------------------- rejax (peer venv)
def peer_rejax(n_seeds_list: list[int], eval_every: int, total: int) -> None:
    """Runs in the peer venv: rejax PPO (rl-zoo settings), compile apart; prints JSON."""
    t_main = time.time()
    import jax
    import jax.numpy as jnp
    import numpy as np
    from rejax import PPO
    from rejax.evaluate import evaluate

    t_imports = time.time()
    kwargs = {
        "env": ENV_ID,
        "num_envs": 8,
        "num_steps": 32,
        "num_epochs": 20,
        "num_minibatches": 1,
        "learning_rate": 1e-3,
        "gamma": 0.98,
        "gae_lambda": 0.8,
        "clip_eps": 0.2,
        "ent_coef": 0.0,
        "vf_coef": 0.5,
        "total_timesteps": total,
        "eval_freq": eval_every,
        "skip_initial_evaluation": True,
        "agent_kwargs": {"activation": "tanh"},
    }
    algo = PPO.create(**kwargs)

    def eval_cb(a, ts, rng):  # 10 deterministic episodes, like ours and SB3's
        def act(obs, rng):
            dist = a.actor.apply(ts.actor_ts.params, jnp.expand_dims(obs, 0), method="_action_dist")
            return jnp.squeeze(dist.mode())

        return evaluate(act, rng, a.env, a.env_params, 10, a.env_params.max_steps_in_episode)

    def run_rejax(a, keys):
        """(compile seconds, run seconds, outputs) of `vmap(a.train)` over `keys`."""
        fn = jax.jit(jax.vmap(a.train))
        t = time.perf_counter()
        compiled = fn.lower(keys).compile()
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        outs = jax.block_until_ready(compiled(keys))
        return compile_s, time.perf_counter() - t, outs

    def no_eval(a, ts, rng):  # the throughput run's one evaluation, at the end: nothing
        return jnp.zeros(())

    algo = algo.replace(eval_callback=eval_cb)
    iters = int(np.ceil(eval_every / (algo.num_envs * algo.num_steps)))
    steps_per_eval = iters * algo.num_envs * algo.num_steps
    out = {"import_s": t_imports - t_main, "steps_per_eval": steps_per_eval, "runs": []}
    for n in n_seeds_list:
        keys = jax.random.split(jax.random.PRNGKey(0), n)
        compile_s, train_s, (_, (_, returns)) = run_rejax(algo, keys)
        means = np.asarray(returns).mean(axis=-1)  # [seeds, evals]
        hit = means >= SOLVED
        solved_at = [int((np.argmax(h) + 1) * steps_per_eval) if h.any() else None for h in hit]
        total_steps = means.shape[1] * steps_per_eval
        done = [s for s in solved_at if s is not None]
        solve_s = None
        if len(done) == n:  # measured: the run again, stopped where the last seed solved
            short = PPO.create(**{**kwargs, "total_timesteps": max(done)}).replace(
                eval_callback=eval_cb
            )
            _, solve_s, _ = run_rejax(short, keys)
        bare = PPO.create(**{**kwargs, "eval_freq": total}).replace(eval_callback=no_eval)
        _, bare_s, _ = run_rejax(bare, keys)
        out["runs"].append(
            {
                "n_seeds": n,
                "compile_s": compile_s,
                "train_s": train_s,
                "total_steps": total_steps,
                "steps_per_s_with_eval": n * total_steps / train_s,
                "steps_per_s": n * total / bare_s,
                "train_s_without_eval": bare_s,
                "solved_at_steps": solved_at,
                "n_solved": len(done),
                "solve_s": solve_s,
                "final_eval_return": float(means[:, -1].mean()),
            }
        )
        print(f"[bench] rejax x{n}: {out['runs'][-1]}", file=sys.stderr, flush=True)
    out["version"] = H.package_version("rejax")
    out["gymnax_version"] = H.package_version("gymnax")
    out["load_after"] = _load()
    H.print_json(out)


# --------------------------------------------------------------------------- records
def _flat(prefix: str, d: dict, skip: tuple[str, ...] = ()) -> dict:
    return {f"{prefix}{k}": v for k, v in d.items() if k not in skip}


def _emit(ours_value, peer_value, peer_name, case, args, quick, extra, peer_skip=None):
    fields = {"peer_skipped": peer_skip} if peer_skip else {}
    rec = H.result(
        BENCH,
        ours_value,
        peer_value,
        "s",
        case=case,
        peer_name=peer_name,
        quick=quick,
        load_avg=_load(),
        **fields,
        **extra,
    )
    H.emit(rec, args.results_dir)


def _sb3_sum(res: dict, n_target: int) -> dict:
    """16 SB3 runs one after another: interpreter start + import once, plus every run."""
    runs = res["runs"]
    n = len(runs)
    per_run = [r["run_s"] for r in runs]
    start = res["process_start_s"] + res["import_s"]
    total = start + sum(per_run) * (n_target / n)
    return {
        "total_s": total,
        "measured_runs": n,
        "extrapolated": n != n_target,
        "run_s": per_run,
        "train_s": [r["train_s"] for r in runs],
        "eval_s": [r["eval_s"] for r in runs],
        "solved_at_steps": [r["solved_at_steps"] for r in runs],
        "n_solved": sum(r["solved"] for r in runs),
        "start_import_s": start,
    }


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=None, help="vmapped bellmax seeds (default 16)")
    p.add_argument("--eval-every", type=int, default=3840, help="env steps between evaluations")
    p.add_argument("--sb3-ppo-seeds", type=int, default=None, help="SB3 PPO runs (default 16)")
    p.add_argument("--sb3-dqn-seeds", type=int, default=None, help="SB3 DQN runs (default 16)")
    p.add_argument(
        "--only-algo", choices=["ppo", "dqn"], default=None,
        help="run one algorithm's cases only (rejax's, which need PPO, go with ppo)",
    )  # fmt: skip
    p.add_argument("--no-warm16", action="store_true", help="run the many-seed case only once")
    p.add_argument(
        "--e2e-seeds",
        type=int,
        default=3,
        help="seeds of the one-seed runs, each run by bellmax (cold, then warm cache) and SB3 "
        "in turn (default 3)",
    )
    p.add_argument(
        "--peer-threads", type=int, default=1,
        help="SB3's torch and BLAS threads (default 1; with --cpus N, N gives both libraries "
        "the same CPUs, each with its own default pool)",
    )  # fmt: skip
    p.add_argument("--first-seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--child-ours", choices=["ppo", "dqn"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", default="", help=argparse.SUPPRESS)
    p.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--peer", choices=["sb3", "rejax"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--algo", choices=["ppo", "dqn"], default="ppo", help=argparse.SUPPRESS)
    p.add_argument("--seed-list", default="0", help=argparse.SUPPRESS)
    p.add_argument("--t0", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--total", type=int, default=100_000, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.eval_every < 1:
        p.error(f"--eval-every must be >= 1, got {args.eval_every}")
    if args.e2e_seeds < 1:
        p.error(f"--e2e-seeds must be >= 1, got {args.e2e_seeds}")
    if args.peer_threads < 1:
        p.error(f"--peer-threads must be >= 1, got {args.peer_threads}")

    if args.child_ours:
        child_ours(
            args.child_ours,
            args.seeds or 1,
            args.cache_dir,
            args.eval_every,
            json.loads(args.overrides),
            args.first_seed,
        )
        return 0
    if args.peer == "sb3":
        seeds = [int(s) for s in args.seed_list.split(",")]
        peer_sb3(args.algo, seeds, args.eval_every, args.t0 or time.time())
        return 0
    if args.peer == "rejax":
        peer_rejax([int(s) for s in args.seed_list.split(",")], args.eval_every, args.total)
        return 0
    # the peers' caps (run_sb3 passes them on), recorded in every record's thread_counts
    os.environ.update(H.thread_env(args.peer_threads))

    quick = args.quick or args.smoke
    n_many = args.seeds or (1 if args.smoke else 4 if quick else 16)
    sb3_n = {
        "ppo": args.sb3_ppo_seeds or (2 if quick else 16),
        "dqn": args.sb3_dqn_seeds or (1 if quick else 16),
    }
    no_peers = args.smoke or args.no_venv_peers

    ours_all: dict[str, dict] = {}
    for algo in ("ppo", "dqn") if args.only_algo is None else (args.only_algo,):
        ours_all[algo] = _bench_algo(algo, args, quick, n_many, sb3_n[algo], no_peers)
    if "ppo" not in ours_all:
        return 0

    # 5. rejax PPO: compile, throughput and measured time to solve, against our PPO
    if no_peers:
        rj = H.skipped(SKIP_REASON)
    else:
        H.log(f"{BENCH}: rejax PPO, 1 and {n_many} seeds")
        rj = H.run_in_peer_venv(
            __file__,
            ["--peer", "rejax", "--seed-list", f"1,{n_many}", "--eval-every", args.eval_every],
            group="gymnax",
            modules=["rejax", "gymnax", "jax"],
        )
    _rejax_records(args, quick, rj, ours_all["ppo"], n_many)
    return 0


SKIP_REASON = "peer-venv peers skipped (--smoke / --no-venv-peers)"


def _peer_threads() -> int:
    """SB3's threads: `--peer-threads`, which `main` puts in the environment's caps
    (`H.thread_env`), which the peer's process inherits."""
    return int(os.environ.get("OMP_NUM_THREADS", "1"))


def _sb3_name() -> str:
    threads = _peer_threads()
    return f"stable-baselines3 2.9 (rl-zoo, torch {threads} thread{'s' if threads > 1 else ''})"


REJAX_NAME = "rejax 0.1.3 (gymnax 0.0.9), rl-zoo PPO settings"


def _bench_algo(algo: str, args, quick: bool, n_many: int, n_sb3: int, no_peers: bool) -> dict:
    """Every bellmax run and SB3 run of one algorithm, and their records."""
    label = f"{algo} (bellmax in SB3's rl-zoo settings)" if SAME_WORK[algo] else algo
    n_e2e = 1 if args.smoke else args.e2e_seeds
    colds, warms, sb3_ones = [], [], []
    if args.smoke:  # one fresh process (--seeds N: N vmapped seeds) stands for every run
        cold = warm = many = run_ours(algo, n_many, None, args.eval_every, True, cold=False)
        colds, warms = [cold], [warm]
    else:
        cache = CACHE_ROOT / algo
        # One seed at a time, interleaved: bellmax with an empty cache, SB3, bellmax again
        # with the cache the first run filled; so slow drifts of the machine hit both.
        for seed in range(n_e2e):
            colds.append(run_ours(algo, 1, cache, args.eval_every, False, True, seed))
            if not no_peers:
                H.log(f"{BENCH}: SB3 {algo}, seed {seed} in a fresh process")
                sb3_ones.append(run_sb3(algo, [seed], args.eval_every))
            warms.append(run_ours(algo, 1, cache, args.eval_every, False, False, seed))
        cold, warm = colds[0], warms[0]
        many = run_ours(algo, n_many, cache, args.eval_every, False, cold=False)
    if not args.smoke and not args.no_warm16:
        many_cold = many
        many = run_ours(algo, n_many, cache, args.eval_every, False, cold=False)
        many["compile_s_first_run"] = many_cold["compile_s"]
        many["e2e_s_first_run"] = many_cold["e2e_s"]

    if no_peers:
        sb3_ones = [H.skipped(SKIP_REASON)]
        sb3_many = H.skipped(SKIP_REASON)
    else:
        H.log(f"{BENCH}: SB3 {algo}, {n_sb3} seeds one after another")
        sb3_many = run_sb3(algo, list(range(n_sb3)), args.eval_every)
    skipped_one = [r for r in sb3_ones if H.is_skipped(r)]
    one_skip = skipped_one[0]["reason"] if skipped_one else None
    many_skip = sb3_many.get("reason") if H.is_skipped(sb3_many) else None
    peer_runs = None if one_skip else [r["runs"][0] for r in sb3_ones]
    seeds = list(range(n_e2e))
    # With --no-warm16 (and --smoke) the many-seed run is the first of its programs: the
    # cache holds the one-seed programs only.
    many_cache = "warm cache" if not args.smoke and not args.no_warm16 else "compiled cold"

    def mean(xs):
        return sum(xs) / len(xs)

    # 1. one seed, process start to solved (cold and warm compile cache), mean over seeds
    for kind, runs in (("cold", colds), ("warm", warms)):
        peer_fields = (
            {}
            if one_skip
            else {
                "peer_e2e_s_per_seed": [r["e2e_s"] for r in peer_runs],
                "peer_solved_at_steps_per_seed": [r["solved_at_steps"] for r in peer_runs],
                "peer_process_start_s": mean([r["process_start_s"] for r in sb3_ones]),
                "peer_import_s": mean([r["import_s"] for r in sb3_ones]),
                **_flat("peer_seed0_", peer_runs[0]),
            }
        )
        _emit(
            mean([r["e2e_s"] for r in runs]),
            None if one_skip else mean([r["e2e_s"] for r in peer_runs]),
            _sb3_name(),
            f"{label} one seed, process start to solved (>= {SOLVED:g}), {kind} compile cache, "
            f"mean of seeds {seeds[0]}-{seeds[-1]} run in turn with SB3's; goal ratio <= "
            f"{0.5 if kind == 'cold' else 0.25}",
            args,
            quick,
            {
                "algo": algo,
                "ours_config_changes": SAME_WORK[algo],
                "metric": "one_seed_e2e",
                "cache": kind,
                "seeds": seeds,
                "goal_ratio": 0.5 if kind == "cold" else 0.25,
                "ours_e2e_s_per_seed": [r["e2e_s"] for r in runs],
                "ours_compile_s_per_seed": [r["compile_s"] for r in runs],
                "ours_eval_s_per_seed": [r["eval_s"] for r in runs],
                "ours_solved_at_steps_per_seed": [r["solved_at_steps"][0] for r in runs],
                **_flat("ours_seed0_", runs[0]),
                **peer_fields,
            },
            one_skip,
        )
    # 2. one seed, training seconds to solved (compile and evaluation excluded), mean over seeds
    ours_train = [
        r["solved_seconds"][0] if r["solved_seconds"][0] is not None else r["train_s"]
        for r in warms
    ]
    _emit(
        mean(ours_train),
        None if one_skip else mean([r["train_s"] for r in peer_runs]),
        _sb3_name(),
        f"{label} one seed, training seconds to solved (compile and evaluation excluded), "
        f"mean of seeds {seeds[0]}-{seeds[-1]}",
        args,
        quick,
        {
            "algo": algo,
            "ours_config_changes": SAME_WORK[algo],
            "metric": "one_seed_train",
            "seeds": seeds,
            "ours_train_s_per_seed": ours_train,
            "ours_solved_at_steps": [r["solved_at_steps"][0] for r in warms],
            "ours_eval_s": [r["eval_s"] for r in warms],
            "peer_train_s_per_seed": None if one_skip else [r["train_s"] for r in peer_runs],
            "peer_solved_at_steps": None if one_skip else [r["solved_at_steps"] for r in peer_runs],
            "peer_eval_s": None if one_skip else [r["eval_s"] for r in peer_runs],
        },
        one_skip,
    )
    # 3. many seeds: one vmapped bellmax process vs SB3 runs one after another
    s = None if many_skip else _sb3_sum(sb3_many, n_many)
    note = (
        "" if s is None or not s["extrapolated"] else f" (extrapolated from {s['measured_runs']})"
    )
    _emit(
        many["e2e_s"],
        None if s is None else s["total_s"],
        _sb3_name(),
        f"{label} {n_many} seeds: one vmapped process ({many_cache}) until all solved vs "
        f"{n_many} SB3 runs one after another{note}; goal ratio <= 0.1",
        args,
        quick,
        {
            "algo": algo,
            "ours_config_changes": SAME_WORK[algo],
            "metric": "many_seeds_e2e",
            "goal_ratio": 0.1,
            **_flat("ours_", many),
            **({} if s is None else _flat("peer_", s)),
        },
        many_skip,
    )
    # 4. warm-cache compile against the goal of 2 s
    _emit(
        warm["compile_s"],
        2.0,
        "goal of issue 5 (2 s)",
        f"{label} one seed, compile seconds with a warm persistent cache (peer = the 2 s goal)",
        args,
        quick,
        {
            "algo": algo,
            "ours_config_changes": SAME_WORK[algo],
            "metric": "warm_compile",
            "ours_cold_compile_s": cold["compile_s"],
            "ours_import_s": warm["import_s"],
            "ours_eval_s": warm["eval_s"],
        },
    )
    return {"cold": cold, "warm": warm, "many": many}


def _rejax_records(args, quick: bool, rj: dict, ours: dict, n_many: int) -> None:
    skip = rj.get("reason") if H.is_skipped(rj) else None
    runs = {} if skip else {r["n_seeds"]: r for r in rj["runs"]}
    for n, run in ((1, ours["warm"]), (n_many, ours["many"])):
        peer = runs.get(n)
        pf = {} if peer is None else _flat("peer_", peer)
        solved = [x for x in run["solved_seconds"] if x is not None]
        ours_solve = (max(solved) if len(solved) == n else run["train_s"]) + run["eval_s"]
        _emit(
            ours_solve,
            None if peer is None else peer["solve_s"],
            REJAX_NAME,
            f"ppo {n} seed(s) vmapped, seconds to all solved after compile (evaluation "
            "included; rejax's measured: its run again, stopped at the step it solved)",
            args,
            quick,
            {
                "algo": "ppo",
                "metric": "rejax_solve",
                "n_seeds": n,
                "ours_solved_at_steps": run["solved_at_steps"],
                "ours_n_solved": run["n_solved"],
                **pf,
            },
            skip,
        )
        ours_rate = run["env_steps"] * n / run["train_s"] if run["train_s"] else None
        if ours_rate:
            rec = H.result(
                BENCH,
                ours_rate,
                None if peer is None else peer["steps_per_s"],
                "steps/s",
                case=f"ppo {n} seed(s) vmapped, training env steps/s after compile (both "
                "without evaluation)",
                peer_name=REJAX_NAME,
                quick=quick,
                load_avg=_load(),
                algo="ppo",
                metric="rejax_throughput",
                n_seeds=n,
                **({"peer_skipped": skip} if skip else {}),
            )
            H.emit(rec, args.results_dir)
    peer1 = runs.get(1)
    _emit(
        ours["cold"]["compile_s"],
        None if peer1 is None else peer1["compile_s"],
        REJAX_NAME,
        "ppo one seed, compile seconds with no persistent cache (cold): ours the training "
        "programs (init and chunk) without the evaluation program's compile (in "
        "ours_cold_eval_s, run and compile together); rejax's one program includes its "
        "evaluation",
        args,
        quick,
        {
            "algo": "ppo",
            "metric": "rejax_compile",
            "ours_warm_compile_s": ours["warm"]["compile_s"],
            "ours_cold_eval_s": ours["cold"]["eval_s"],
            "ours_warm_eval_s": ours["warm"]["eval_s"],
        },
        skip,
    )


if __name__ == "__main__":
    raise SystemExit(main())
