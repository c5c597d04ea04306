"""Benchmark: model-based RL with a learned ensemble (bellmax mbrl) on pendulum and cart-pole swing-up.

- `--task pendulum` (default): Gymnasium's own Pendulum-v1 through the bridge, reward learned
  by the model's reward head; 1 random trial + 4 trials of CEM-MPC (TS-inf over a 5-member
  probabilistic ensemble of 2 x 64 units; horizon 25, 200 samples x 4 rounds), 200 steps
  each. Reported (`ours`, `peer`): wall seconds up to and including the first trial whose
  return reaches -200, every trial's return and seconds (the fit before it included; the
  first planned trial also compiles), and optionally evaluation episodes of the final model.
  Ours runs in a fresh process on the benchmark's own compile cache (`bench/.cache/mbrl/`),
  emptied first (`cache: cold`: what a first run pays), then again on the cache that run
  filled (`cache: warm`); one record each, against the same peer run. Until 2026-12-06 it ran
  in this process on the user's default cache, whose state decided the record.
- `--task swingup`: bellmax's CartPoleSwingUp-v0 from scratch, known reward: trials of
  CEM-MPC through the ensemble, against the same planner with the true physics from the same
  starts (`true_model_return`); and the same loop with the guard off (no trajectory
  sampling: the planner follows the members' mean). `bellmax mbrl --compare-guard` is the
  sharper demonstration of exploitation (one deterministic MLP against the guarded ensemble;
  bench/results/mbrl_swingup/guard).
- `--task guards`: each guard switched off on its own, on the swing-up (4 trials, horizon 30,
  seeds 0 and 1): the default (TS-inf over the ensemble), the members' mean (TS off), the mean
  with the disagreement penalty, TS-inf with the penalty, and one deterministic MLP (all
  off). Reported per configuration (`bench/results/mbrl_guards.jsonl`): `optimism` per trial
  (the model's promised return over the horizon minus the world's, mean over the trial's
  steps: what exploiting the model looks like) and the returns; `ours` is the mean
  optimism over the planned trials and seeds.

Peer: mbrl-lib 0.2.0's PETS (facebookresearch/mbrl-lib) in its own venv,
bench/.venv-peers/mbrl (install command: PEER_INSTALL below; it pins hydra-core 1.0.3 and
omegaconf 2.0, which no longer install with current pip, so it goes in with --no-deps beside
hydra-core 1.3 / omegaconf 2.3, and gymnasium 0.26.3 with numpy < 2). Its example notebook's
loop (random trial, then per trial: fit, 200 steps of CEM-MPC replanning every step) on
Gymnasium 0.26.3's Pendulum-v1 with a learned reward and the same reset seeds, so every trial
starts where ours does. Two settings: `matched` (our planner budget and network sizes, run
for up to --peer-budget seconds) and `notebook` (its notebook's sizes: 3 x 200 units, CEM
500 x 5, horizon 15, 20 particles; run for --notebook-budget seconds to measure its time per
step, as a full trial takes ~10 minutes on this machine). torch uses 1 thread.

    python bench/mbrl.py                      # pendulum, full
    python bench/mbrl.py --task swingup --out bench/results/mbrl_swingup
    python bench/mbrl.py --task guards        # each guard off on its own (~5 min)
    python bench/mbrl.py --smoke              # tiny sizes (what a test would run)
"""

from __future__ import annotations

import _harness as H

H.fair_threads()

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = "mbrl"
TARGET = -200.0
#: The pendulum case's own persistent compile cache (emptied for its cold run).
CACHE = H.BENCH_DIR / ".cache" / BENCH
PEER_VENV = H.BENCH_DIR / ".venv-peers" / "mbrl"
PEER_INSTALL = (
    "python3 -m venv bench/.venv-peers/mbrl && bench/.venv-peers/mbrl/bin/pip install "
    "torch==2.13.0 && bench/.venv-peers/mbrl/bin/pip install --no-deps mbrl==0.2.0 && "
    "bench/.venv-peers/mbrl/bin/pip install gymnasium==0.26.3 'numpy<2' omegaconf==2.3.0 "
    "hydra-core==1.3.2 termcolor tqdm matplotlib imageio"
)
# The planner and networks of both sides in the matched comparison (ours: MBRLConfig's and
# NeuralConfig's defaults): horizon 25, CEM 200 samples x 4 rounds, elites 10%, momentum
# 0.1, TS-inf with one particle per member of a 5-member probabilistic ensemble of
# 2 x 64 hidden units.
MATCHED = {"horizon": 25, "iters": 4, "population": 200, "particles": 5, "layers": 2,
           "hidden": 64}  # fmt: skip
# mbrl-lib's PETS example notebook (notebooks/pets_example.ipynb): 5 GaussianMLPs of 3 x 200
# (LeakyReLU), CEM 500 x 5 iterations, horizon 15, 20 particles (fixed_model = TS-inf).
NOTEBOOK = {"horizon": 15, "iters": 5, "population": 500, "particles": 20, "layers": 3,
            "hidden": 200}  # fmt: skip


def peer_main(spec: dict) -> None:
    """Runs in mbrl-lib's venv: PETS on Gymnasium's Pendulum-v1 (learned reward), one JSON line.

    The loop of mbrl-lib's PETS example notebook: one random trial, then per trial a fit of
    the ensemble to all data (50 epochs, batch 32, 5% validation, Adam 1e-3, weight decay
    5e-5) and `trial_steps` steps of CEM-MPC (`TrajectoryOptimizerAgent`, replanning every
    step). Trial `k` resets with seed `seed + k`, as bellmax's loop does. Stops early when
    `budget_s` is spent (the trials run so far are reported).
    """
    import json as _json
    import sys as _sys

    # This file is bench/mbrl.py: drop its folder from the path so that `import mbrl` finds
    # the peer package, not this script.
    _sys.path[:] = [p for p in _sys.path if Path(p or ".").resolve() != H.BENCH_DIR.resolve()]
    t0 = time.perf_counter()
    import gymnasium as gym
    import numpy as np
    import omegaconf
    import torch

    torch.set_num_threads(1)
    import mbrl.env.termination_fns as termination_fns
    import mbrl.models as models
    import mbrl.planning as planning
    import mbrl.util.common as common

    import mbrl

    seed, trials, T, K = spec["seed"], spec["trials"], spec["trial_steps"], 5
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    torch.manual_seed(seed)
    obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
    cfg = omegaconf.OmegaConf.create({
        "dynamics_model": {
            # hydra >= 1.1 instantiates nested configs unless told not to; GaussianMLP
            # instantiates its activation itself (hydra 1.0.3, which mbrl 0.2 pins, did not)
            "_target_": "mbrl.models.GaussianMLP", "_recursive_": False, "device": "cpu",
            "num_layers": spec["layers"], "ensemble_size": K, "hid_size": spec["hidden"],
            "in_size": "???", "out_size": "???", "deterministic": False,
            "propagation_method": "fixed_model",
            "activation_fn_cfg": {"_target_": "torch.nn.LeakyReLU", "negative_slope": 0.01},
        },
        "algorithm": {"learned_rewards": True, "target_is_delta": True, "normalize": True},
        "overrides": {"trial_length": T, "num_steps": trials * T, "model_batch_size": 32,
                      "validation_ratio": 0.05},
    })  # fmt: skip
    dynamics = common.create_one_dim_tr_model(cfg, obs_shape, act_shape)
    model_env = models.ModelEnv(env, dynamics, termination_fns.no_termination, None, generator=gen)
    buffer = common.create_replay_buffer(cfg, obs_shape, act_shape, rng=rng)
    agent_cfg = omegaconf.OmegaConf.create({
        "_target_": "mbrl.planning.TrajectoryOptimizerAgent", "_recursive_": False,
        "planning_horizon": spec["horizon"], "replan_freq": 1, "verbose": False,
        "action_lb": "???", "action_ub": "???",
        "optimizer_cfg": {
            "_target_": "mbrl.planning.CEMOptimizer", "num_iterations": spec["iters"],
            "elite_ratio": 0.1, "population_size": spec["population"], "alpha": 0.1,
            "device": "cpu", "lower_bound": "???", "upper_bound": "???",
            "return_mean_elites": True, "clipped_normal": False,
        },
    })  # fmt: skip
    agent = planning.create_trajectory_optim_agent_for_model(
        model_env, agent_cfg, num_particles=spec["particles"]
    )
    trainer = models.ModelTrainer(dynamics, optim_lr=1e-3, weight_decay=5e-5)
    setup_s = time.perf_counter() - t0
    returns, seconds, starts, step_s, partial = [], [], [], [], None
    for i in range(trials):
        t_trial = time.perf_counter()
        obs, _ = env.reset(seed=seed + i)
        starts.append(float(np.arctan2(obs[1], obs[0])))
        agent.reset()
        actor = planning.RandomAgent(env) if i == 0 else agent
        if i > 0:
            dynamics.update_normalizer(buffer.get_all())
            train, val = common.get_basic_buffer_iterators(
                buffer, batch_size=32, val_ratio=0.05, ensemble_size=K,
                shuffle_each_epoch=True, bootstrap_permutes=False,
            )  # fmt: skip
            trainer.train(train, dataset_val=val, num_epochs=50, patience=50, silent=True)
        total, steps, t_steps = 0.0, 0, time.perf_counter()
        for _ in range(T):
            obs, r, _, _, _ = common.step_env_and_add_to_buffer(env, obs, actor, {}, buffer)
            total, steps = total + float(r), steps + 1
            if time.perf_counter() - t0 > spec["budget_s"]:
                break
        step_s.append((time.perf_counter() - t_steps) / steps)
        seconds.append(time.perf_counter() - t_trial)
        if steps < T:  # out of budget inside a trial: its return is partial, left out
            partial = {"steps": steps, "return_so_far": total, "seconds": seconds.pop()}
            break
        returns.append(total)
        print(f"[peer] trial {i + 1}: return {total:.1f} in {seconds[-1]:.1f} s", file=_sys.stderr)
        if time.perf_counter() - t0 > spec["budget_s"]:
            break
    versions = {"mbrl": mbrl.__version__, "torch": torch.__version__, "gymnasium": gym.__version__}
    print(_json.dumps({"returns": returns, "trial_seconds": seconds, "starts": starts,
                       "seconds_per_step": step_s, "partial_trial": partial,
                       "setup_s": setup_s, "total_s": time.perf_counter() - t0,
                       "versions": versions}))  # fmt: skip


def _peer(spec: dict | None = None) -> dict:
    """PETS through `peer_main` in mbrl-lib's venv, or a `skipped` marker saying how to install."""
    if not (PEER_VENV / "bin" / "python").exists():
        return H.skipped(f"mbrl-lib's venv {PEER_VENV} is missing; install it with: {PEER_INSTALL}")
    if spec is None:
        return H.skipped(
            "mbrl-lib's PETS is run on Pendulum-v1 only (bench/mbrl.py --task pendulum)"
        )
    import json

    return H.run_in_peer_venv(
        __file__,
        ["--peer", json.dumps(spec)],
        group="mbrl (not in setup_peers.sh)",
        modules=["mbrl", "torch", "hydra", "gymnasium"],
        venv=PEER_VENV,
        timeout=spec["budget_s"] + 900,
    )


def trials_to(returns: list[float], target: float = TARGET) -> int | None:
    """The first trial (from 1) whose return reaches `target`, None if none did."""
    return next((i + 1 for i, r in enumerate(returns) if r >= target), None)


@dataclasses.dataclass(frozen=True)
class _TrueObjective:
    """The planner's objective on the true physics: minus the known reward until termination."""

    dynamics: object
    reward: object
    terminated: object

    def __call__(self, x0, U, key, params):
        import jax
        import jax.numpy as jnp

        def step(carry, u):
            x, alive = carry
            xn = self.dynamics(x, u, 0, params)
            c = jnp.where(alive, -self.reward(x, u, xn), 0.0)
            return (xn, alive & ~self.terminated(xn)), c

        _, c = jax.lax.scan(step, (x0, jnp.asarray(True)), U)
        return jnp.sum(c)


def _true_model_returns(env_id: str, config, seeds: list[int]) -> list[float]:
    """Returns of the same sampling planner with the true physics, one episode per seed."""
    import jax
    import numpy as np

    from bellmax.control.mpc import closed_loop
    from bellmax.control.sampling import SamplingConfig, make_sampling_mpc
    from bellmax.envs.registry import make
    from bellmax.models.mbrl import known_reward
    from bellmax.models.parametric import model_for_env

    env, params = make(env_id)
    phys = model_for_env(env_id)
    theta = phys.theta_from({n: float(getattr(params, n)) for n in phys.param_names})
    reward, terminated = known_reward(env_id)
    space = env.action_space(params)
    lo = np.asarray(space.low, np.float64).reshape(-1)
    hi = np.asarray(space.high, np.float64).reshape(-1)
    cfg = SamplingConfig(
        method=config.planner,
        num_samples=config.samples,
        iterations=config.rounds,
        init_std=0.25,
        seed=config.seed,
    )
    mpc = make_sampling_mpc(
        _TrueObjective(phys.dynamics, reward, terminated),
        horizon=config.horizon,
        u_lower=lo,
        u_upper=hi,
        config=cfg,
    )
    out = []
    for s in seeds:
        res = closed_loop(
            env, params, mpc, jax.random.key(s), config.trial_steps, model_params=theta
        )
        out.append(float(res.total_reward))
    return out


def child_pendulum(spec: dict) -> None:
    """Runs in a fresh process on `spec["cache_dir"]`'s compile cache: the pendulum loop;
    prints one JSON line."""
    H.use_compile_cache(spec["cache_dir"])  # before bellmax's import
    from bellmax.models.mbrl import MBRLConfig, run_mbrl
    from bellmax.models.neural import NeuralConfig

    small = spec["small"]
    cfg = MBRLConfig(
        trials=3 if small else 5,
        trial_steps=20 if small else 200,
        planner="cem",
        horizon=5 if small else MATCHED["horizon"],
        samples=16 if small else MATCHED["population"],
        rounds=1 if small else MATCHED["iters"],
        neural=NeuralConfig(num_updates=50 if small else 1000),
        eval_episodes=spec["eval_episodes"],
        seed=spec["seed"],
    )
    t = time.perf_counter()
    res = run_mbrl("gymnasium:Pendulum-v1", config=cfg)
    H.print_json(
        {
            "trial_returns": [float(r) for r in res.trial_returns],
            "trial_seconds": [tr.seconds for tr in res.trials],
            "eval_returns": [float(r) for r in res.eval_returns],
            "run_s": time.perf_counter() - t,
            "trials": cfg.trials,
            "trial_steps": cfg.trial_steps,
            "seed": cfg.seed,
        }
    )


def _run_pendulum(args, cold: bool) -> dict:
    """Our pendulum loop in a fresh process on the benchmark's cache (emptied if `cold`)."""
    import json
    import shutil
    import subprocess
    import sys

    if cold:
        shutil.rmtree(CACHE, ignore_errors=True)
    spec = {"small": bool(args.smoke or args.quick), "eval_episodes": 1 if args.smoke or args.quick
            else args.eval_episodes, "seed": args.seed, "cache_dir": str(CACHE)}  # fmt: skip
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-pendulum", json.dumps(spec)]
    proc = subprocess.run(cmd, cwd=H.REPO_ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"bellmax child failed (exit {proc.returncode}): {' '.join(cmd)}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["cache"] = "cold" if cold else "warm"
    H.log(f"{BENCH}: ours ({out['cache']} cache): trial seconds {out['trial_seconds']}")
    return out


def _pendulum(args) -> None:
    # ours, cold then warm (--smoke: cold only), each in a fresh process; the peer once
    runs = [_run_pendulum(args, cold=True)]
    if not args.smoke:
        runs.append(_run_pendulum(args, cold=False))
    seed, trials, trial_steps = runs[0]["seed"], runs[0]["trials"], runs[0]["trial_steps"]
    peers: dict = {}
    if args.smoke or args.no_venv_peers:
        peers["matched"] = H.skipped("--smoke or --no-venv-peers")
    else:
        for name, sizes in (("matched", MATCHED), ("notebook", NOTEBOOK)):
            budget = args.peer_budget if name == "matched" else args.notebook_budget
            spec = {"seed": seed, "trials": trials, "trial_steps": trial_steps,
                    "budget_s": budget, **sizes}  # fmt: skip
            peers[name] = _peer(spec)
            if H.is_skipped(peers[name]):
                break
    matched = peers["matched"]
    extra: dict = {}
    peer_reach_s = None
    if not H.is_skipped(matched):
        reach = trials_to(matched["returns"])
        peer_reach_s = None if reach is None else sum(matched["trial_seconds"][:reach])
        extra = {
            "peer_trial_returns": matched["returns"],
            "peer_trial_seconds": matched["trial_seconds"],
            "peer_trials_to_minus_200": reach,
            "peer_seconds_to_minus_200": peer_reach_s,
            "peer_total_s": matched["total_s"],
            "peer_setup_s": matched["setup_s"],
            "peer_seconds_per_step": matched["seconds_per_step"],
            "peer_partial_trial": matched["partial_trial"],
            "peer_versions": matched["versions"],
            "trial_start_angles": matched["starts"],
        }
        nb = peers.get("notebook", {})
        if nb and not H.is_skipped(nb):
            extra["peer_notebook_config"] = {
                **NOTEBOOK,
                "trial_returns": nb["returns"],
                "trial_seconds": nb["trial_seconds"],
                "seconds_per_step": nb["seconds_per_step"],
                "partial_trial": nb["partial_trial"],
                "budget_s": args.notebook_budget,
            }
    else:
        extra["peer_skipped"] = matched.get("reason")
    for run in runs:
        ours_reach = trials_to(run["trial_returns"])
        ours_reach_s = None if ours_reach is None else sum(run["trial_seconds"][:ours_reach])
        evals = run["eval_returns"]
        mean_eval = sum(evals) / len(evals) if evals else None
        rec = H.result(
            BENCH,
            ours=ours_reach_s,
            peer=peer_reach_s,
            unit="s",
            case="gymnasium:Pendulum-v1, learned reward, CEM TS-inf, 5-member ensemble: wall "
            "seconds to the first trial with return >= -200 (same starts, same planner "
            f"budget); ours in a fresh process, {run['cache']} compile cache",
            cache=run["cache"],
            trial_returns=run["trial_returns"],
            trial_seconds=run["trial_seconds"],
            trials_to_minus_200=ours_reach,
            seed=seed,
            trials=trials,
            trial_steps=trial_steps,
            ours_run_s=run["run_s"],
            matched_settings=MATCHED,
            eval_returns=evals,
            eval_mean_return=mean_eval,
            reached_minus_200=None if mean_eval is None else mean_eval >= TARGET,
            peer_name="mbrl-lib 0.2.0 PETS",
            load_avg=list(os.getloadavg()),
            **extra,
        )
        H.emit(rec, args.results_dir)


def _swingup_config(args, *, trials: int, horizon: int, rounds: int, small_trials: int):
    """The swing-up tasks' `MBRLConfig`: CEM, 200 steps per trial, 200 samples (tiny sizes
    with --smoke or --quick)."""
    from bellmax.models.mbrl import MBRLConfig
    from bellmax.models.neural import NeuralConfig

    small = args.smoke or args.quick
    return MBRLConfig(
        trials=small_trials if small else trials,
        trial_steps=20 if small else 200,
        planner="cem",
        horizon=5 if small else horizon,
        samples=16 if small else 200,
        rounds=1 if small else rounds,
        neural=NeuralConfig(num_updates=50 if small else 1000),
        seed=0,
    )


def _swingup(args) -> None:
    import numpy as np

    from bellmax.models.mbrl import run_mbrl

    small = args.smoke or args.quick
    base = _swingup_config(args, trials=args.trials, horizon=args.horizon, rounds=3, small_trials=3)
    out = {}
    runs = [("guard_on", base)]
    if args.guard_off:
        trials = 3 if small else args.guard_off_trials
        runs.append(
            ("guard_off", dataclasses.replace(base, trajectory_sampling=False, trials=trials))
        )
    for name, cfg in runs:
        t = time.perf_counter()
        res = run_mbrl("CartPoleSwingUp-v0", config=cfg)
        out[name] = (res, time.perf_counter() - t)
        H.log(f"{BENCH}: {name} trial returns {[round(r, 1) for r in res.trial_returns]}")
        if args.out is not None:
            from bellmax.cli.mbrl import write_plots

            d = Path(args.out) / name
            write_plots(res, d)
            H.log(f"{BENCH}: wrote {d}/returns.png and rollouts.png")
    res, seconds = out["guard_on"]
    seeds = [base.seed + i for i in range(base.trials)]
    truth = _true_model_returns("CartPoleSwingUp-v0", base, seeds[-1:])
    last = res.trial_returns[-1]
    extra = {}
    if "guard_off" in out:
        off = out["guard_off"][0]
        extra = {
            "guard_off_trial_returns": off.trial_returns,
            "guard_off_optimism": [t.optimism for t in off.trials],
            "guard_off_open_loop_rmse": [
                None if t.open_loop_rmse is None else list(t.open_loop_rmse) for t in off.trials
            ],
        }
    rec = H.result(
        BENCH + "_swingup",
        ours=seconds,
        peer=None,
        unit="s",
        case="CartPoleSwingUp-v0 from scratch, known reward, CEM TS-inf, 5-member ensemble",
        trial_returns=res.trial_returns,
        open_loop_rmse=[
            None if t.open_loop_rmse is None else list(t.open_loop_rmse) for t in res.trials
        ],
        optimism=[t.optimism for t in res.trials],
        true_model_return=truth[0],
        last_over_true=last / truth[0] if truth[0] else None,
        reached_80_percent=bool(last >= 0.8 * truth[0]),
        final_upright=bool(
            np.abs((res.trials[-1].states[-20:, 2] + np.pi) % (2 * np.pi) - np.pi).max() < 0.3
        ),
        horizon=base.horizon,
        peer_name="mbrl-lib PETS",
        peer_skipped=_peer().get("reason"),
        **extra,
    )
    H.emit(rec, args.results_dir)


#: `--task guards`: (name, MBRLConfig overrides) of each configuration; the penalty weight
#: is `--penalty`.
GUARD_CASES = (
    ("ensemble, TS-inf (default)", {}),
    ("ensemble mean (TS off)", {"trajectory_sampling": False}),
    ("ensemble mean + penalty", {"trajectory_sampling": False, "disagreement_penalty": None}),
    ("ensemble, TS-inf + penalty", {"disagreement_penalty": None}),
    ("one MLP (all off)", {"model": "mlp", "trajectory_sampling": False}),
)


def _guards(args) -> None:
    import numpy as np

    from bellmax.models.mbrl import run_mbrl

    small = args.smoke or args.quick
    base = _swingup_config(args, trials=args.guard_trials, horizon=30, rounds=4, small_trials=2)
    seeds = [0] if small else args.guard_seeds
    for name, overrides in GUARD_CASES:
        over = {k: (args.penalty if v is None else v) for k, v in overrides.items()}
        runs, t0 = [], time.perf_counter()
        for seed in seeds:
            res = run_mbrl(
                "CartPoleSwingUp-v0", config=dataclasses.replace(base, seed=seed, **over)
            )
            runs.append(res)
            H.log(
                f"{BENCH}: {name}, seed {seed}: returns "
                f"{[round(r, 1) for r in res.trial_returns]}, optimism "
                f"{[None if t.optimism is None else round(t.optimism, 2) for t in res.trials]}"
            )
        planned = [t.optimism for r in runs for t in r.trials if t.optimism is not None]
        rec = H.result(
            BENCH + "_guards",
            ours=float(np.mean(planned)),
            peer=None,
            unit="optimism",
            better="lower",
            case=f"CartPoleSwingUp-v0, {name}: mean optimism of the planned trials",
            overrides=over,
            seeds=seeds,
            trial_returns=[r.trial_returns for r in runs],
            optimism=[[t.optimism for t in r.trials] for r in runs],
            seconds=time.perf_counter() - t0,
            horizon=base.horizon,
            peer_skipped="no peer: a comparison of bellmax's own guards",
        )
        H.emit(rec, args.results_dir)


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--task", choices=["pendulum", "swingup", "guards"], default="pendulum")
    p.add_argument("--guard-trials", type=int, default=4, help="guards: trials per run")
    p.add_argument("--guard-seeds", type=int, nargs="+", default=[0, 1], help="guards: seeds")
    p.add_argument("--penalty", type=float, default=1.0, help="guards: disagreement penalty")
    p.add_argument("--trials", type=int, default=10, help="swing-up trials (random one included)")
    p.add_argument("--horizon", type=int, default=50, help="swing-up planning horizon")
    p.add_argument("--guard-off", action="store_true", help="swing-up: also run without TS-inf")
    p.add_argument("--guard-off-trials", type=int, default=4, help="swing-up: trials guard off")
    p.add_argument("--out", default=None, help="swing-up: folder for the plots")
    p.add_argument("--eval-episodes", type=int, default=0, help="pendulum: final-model episodes")
    p.add_argument(
        "--seed", type=int, default=0, help="pendulum: seed (trial k resets with seed + k)"
    )
    p.add_argument("--peer-budget", type=float, default=300.0, help="PETS (matched) seconds")
    p.add_argument("--notebook-budget", type=float, default=40.0,
                   help="PETS with its notebook's sizes: seconds (per-step time)")  # fmt: skip
    p.add_argument("--peer", default=None, help=argparse.SUPPRESS)
    p.add_argument("--child-pendulum", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.peer is not None:
        import json

        peer_main(json.loads(args.peer))
        return 0
    if args.child_pendulum is not None:
        import json

        child_pendulum(json.loads(args.child_pendulum))
        return 0
    if args.task == "pendulum":
        _pendulum(args)
    elif args.task == "guards":
        _guards(args)
    else:
        _swingup(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
