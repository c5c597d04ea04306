"""`bellmax mbrl`: learn a neural model of an environment and control it with MPC, trial by trial.

bellmax mbrl --env Pendulum-v1 --planner ilqr --trials 3
bellmax mbrl --env gymnasium:Pendulum-v1 --planner cem --trials 5 --json
bellmax mbrl --env CartPoleSwingUp-v0 --planner cem --trials 10 --out runs/swingup
bellmax mbrl --env CartPoleSwingUp-v0 --expert mpc --trials 4      # the first trial an expert's
bellmax mbrl --env Pendulum-v1 --planner ilqr --trials 3 --distil-labels 600 --out runs/pend
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Annotated, Any, Literal, NoReturn

import tyro

from bellmax.cli.main import out_dir_option
from bellmax.core.checks import check_int, check_number, check_seed
from bellmax.core.io import (
    EXPLOITATION_PNG,
    GUARD_PNG,
    POLICY_MSGPACK,
    RESULT_JSON,
    RETURNS_PNG,
    ROLLOUTS_PNG,
)

# Imports inside functions are lazy on purpose: they keep `bellmax --help` fast and importing
# the CLI free of JAX programs.

__all__ = ["MbrlArgs", "run_mbrl", "write_plots"]

#: Largest --trials, --trial-steps, --horizon, --samples, --rounds (beyond them a run takes
#: days on a laptop).
MAX_TRIALS = 10_000
MAX_TRIAL_STEPS = 1_000_000
MAX_HORIZON = 10_000
MAX_SAMPLES = 1_000_000
MAX_ROUNDS = 1_000


@dataclasses.dataclass(frozen=True)
class MbrlArgs:
    """Model-based RL: random trials, then fit a neural model and run MPC through it.

    Each trial after the random ones refits the model (an ensemble, a single MLP, or the
    parametric physics plus a neural residual) to all data so far, then runs MPC on the
    real environment, re-planning every step with iLQR or DDP (derivatives through the
    network), CEM or MPPI; the trial's transitions join the data. Bellmax's Pendulum-v1 and
    CartPoleSwingUp-v0 plan with their own reward; other environments (Gymnasium's, through
    the bridge) with a learned reward head. Prints each trial's return and the model's
    prediction errors; --out DIR writes result.json and the plots returns.png (return
    against trials), rollouts.png (predicted against real rollouts) and exploitation.png
    (at each step, the return over the horizon the planner's model promised against the
    return the world gave: the planner exploits the model where the first is far above the
    second). --compare-guard adds the same trials with the guard off (guard.png). A run
    that diverges (a model prediction, a fit's loss or the environment's data NaN or inf)
    stops with an error (exit status 2); --out keeps the trials that finished before it
    (result.json with "status": "diverged", diverged_at_trial and the error; a finished
    run's reads "finished").
    """

    env: str = "Pendulum-v1"
    """The real system: a bellmax id with continuous actions or a Gymnasium one
    (gymnasium:Pendulum-v1, module:EnvName-v0)."""
    planner: Literal["ilqr", "ddp", "cem", "mppi"] = "cem"
    """MPC's optimiser: iLQR or DDP through the network, or the sampling planners CEM and MPPI."""
    model: Literal["ensemble", "mlp", "hybrid"] = "ensemble"
    """Probabilistic ensemble, one deterministic MLP, or parametric physics + neural residual."""
    trials: int = 5
    """Trials in all, the random ones included."""
    trial_steps: int = 200
    """Environment steps per trial."""
    random_trials: int = 1
    """Trials before the first fit: random actions, or --expert's."""
    expert: Annotated[
        str | None,
        tyro.conf.arg(metavar="EXPERT", help_behavior_hint="(default: none, random actions)"),
    ] = None
    """Act in those first trials with an expert instead of random actions (as `bellmax
    imitate --expert`): mpc or lqr (bellmax.control on the env's true physics; cart-pole and
    pendulum envs), checkpoint:DIR (a trained policy), module:function (your obs -> action)."""
    horizon: int = 25
    """Planning horizon in steps."""
    samples: int = 200
    """CEM/MPPI samples per round."""
    rounds: int = 4
    """CEM/MPPI rounds (iLQR/DDP: iterations) per control step."""
    ensemble_size: int = 5
    """Ensemble members K (ensemble and hybrid)."""
    updates: int = 1000
    """Adam updates per fit."""
    learning_rate: float = 2e-3
    """Adam's learning rate in each fit (lower it if a fit or a prediction goes NaN)."""
    trajectory_sampling: Annotated[
        bool, tyro.conf.arg(help_behavior_hint="(default: trajectory sampling on)")
    ] = True
    """Guard: plan on TS-inf particles of the ensemble (--no-trajectory-sampling: the mean)."""
    disagreement_penalty: float = 0.0
    """Guard: cost per unit of ensemble disagreement along the plan (0: off)."""
    eval_episodes: int = 0
    """Episodes after the last trial with the final model, from other starts (no data added)."""
    compare_guard: bool = False
    """Also run the same trials with the guard off (one deterministic MLP planned on
    directly: no ensemble, no trajectory sampling, no penalty) and plot both runs' predicted
    against real returns (guard.png with --out; guard_off in --json)."""
    learned_reward: bool = False
    """Plan with a learned reward even where the reward is known."""
    distil_labels: int = 0
    """After the trials, distil iLQR-MPC through the final model (--horizon, and --rounds
    iLQR iterations per step) into a policy network by DAgger with this many labels (rounds
    of up to 100), so that the result acts without online planning; --out writes it to
    policy.msgpack (bellmax.load_policy, bellmax evaluate). 0: no distillation."""
    seed: int = 0
    """Seed of the data, the model and the planners. Trial k resets the environment with
    SEED + k - 1, so runs of neighbouring seeds share trials (SEED 1's first is SEED 0's
    second): for independent replicates space the seeds by more than --trials plus
    --eval-episodes (e.g. 0, 1000, 2000)."""
    out: Annotated[str | None, out_dir_option()] = None
    """Directory for result.json and the plots returns.png, rollouts.png and exploitation.png
    (guard.png with --compare-guard); a directory of an earlier mbrl run is refused."""
    overwrite: bool = False
    """Replace the results of an earlier mbrl run in --out."""
    json: bool = False
    """Print one JSON object."""


def _a(kind: str) -> str:
    """A model kind with its article: `"an ensemble"`, `"an mlp"`, `"a hybrid"`."""
    return f"an {kind}" if kind.startswith(tuple("aeiou")) or kind == "mlp" else f"a {kind}"


def _check(args: MbrlArgs) -> None:
    check_int(args.trials, "--trials", low=2, high=MAX_TRIALS)
    check_int(args.trial_steps, "--trial-steps", low=1, high=MAX_TRIAL_STEPS)
    check_int(args.random_trials, "--random-trials", low=1, high=MAX_TRIALS)
    check_int(args.horizon, "--horizon", low=1, high=MAX_HORIZON)
    check_int(args.samples, "--samples", low=1, high=MAX_SAMPLES)
    check_int(args.rounds, "--rounds", low=1, high=MAX_ROUNDS)
    check_int(args.ensemble_size, "--ensemble-size", low=1, high=1000)
    check_int(args.updates, "--updates", low=1, high=10_000_000)
    check_number(args.learning_rate, "--learning-rate", low=0, low_open=True)
    check_number(args.disagreement_penalty, "--disagreement-penalty", low=0)
    check_int(args.eval_episodes, "--eval-episodes", low=0, high=MAX_TRIALS)
    check_int(args.distil_labels, "--distil-labels", low=0, high=10_000_000)
    check_seed(args.seed)
    if args.random_trials >= args.trials:
        raise ValueError(
            f"--trials ({args.trials}) must exceed --random-trials ({args.random_trials}) so "
            "that at least one trial plans with the model."
        )
    if not args.env.strip():
        raise ValueError("--env is empty: give an environment id, e.g. --env Pendulum-v1.")
    if args.env.strip().startswith("gymnax:") and (args.expert is not None or args.distil_labels):
        raise ValueError(
            f"--expert and --distil-labels run through bellmax.imitation, which takes bellmax "
            f"and Gymnasium ids, not gymnax ones ({args.env}); use the bellmax id (e.g. "
            "--env Pendulum-v1)."
        )
    from bellmax.envs import gymnasium as gym_bridge

    gym_bridge.check_env_id(args.env)
    from bellmax.core.io import check_output_path, check_run_dir

    if args.out is not None:
        check_output_path(args.out, kind="dir")
    check_run_dir(args.out, "mbrl", overwrite=args.overwrite)


def _expert(args: MbrlArgs) -> Any:
    """`--expert`: `bellmax imitate`'s experts, less those that are not controllers."""
    from bellmax.cli.imitate import ImitateArgs, make_expert
    from bellmax.imitation.loop import make_rollout_env

    spec = args.expert.strip()
    if spec in ("human", "perfect"):
        raise ValueError(
            f"--expert {spec} is not a controller for model-based RL; use mpc, lqr, "
            "checkpoint:DIR or module:function."
        )
    venv = make_rollout_env(args.env, num_envs=1, seed=args.seed)
    try:
        space = venv.action_space
    finally:
        venv.close()
    return make_expert(
        spec, args.env, space, ImitateArgs("bc", env=args.env, expert=spec, seed=args.seed)
    )


def _num(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _promise(t: Any) -> dict[str, float | None]:
    """A planned trial's mean predicted and real return over the horizon (the windows that
    fit) and mean disagreement at the states it visited."""
    import numpy as np

    fits = np.isfinite(t.real_returns)
    if not fits.any():
        return {"predicted_return": None, "real_return": None, "disagreement": None}
    return {
        "predicted_return": _num(np.mean(t.predicted_returns[fits])),
        "real_return": _num(np.mean(t.real_returns[fits])),
        "disagreement": None if t.disagreement is None else _num(np.mean(t.disagreement)),
    }


def _summary(args: MbrlArgs, res: Any) -> dict[str, Any]:
    errors = []
    for t in res.trials:
        if t.fit is None:
            errors.append(None)
            continue
        errors.append(
            {
                "transitions": t.num_transitions,
                "trained_on": t.fit.num_train,
                "heldout": t.fit.num_heldout,
                "heldout_rmse": [_num(v) for v in t.fit.heldout_rmse],
                "heldout_reward_rmse": _num(t.fit.heldout_reward_rmse),
                "heldout_z2": _num(t.fit.heldout_z2),
                "onpolicy_rmse": [_num(v) for v in t.onpolicy_rmse],
                "open_loop_rmse": [_num(v) for v in t.open_loop_rmse],
                "optimism": None if t.optimism is None else _num(t.optimism),
                **_promise(t),
            }
        )
    return {
        "env": args.env,
        "planner": args.planner,
        "model": args.model,
        "learned_reward": res.learned_reward,
        "trajectory_sampling": args.trajectory_sampling,
        "disagreement_penalty": args.disagreement_penalty,
        "trial_returns": [round(r, 4) for r in res.trial_returns],
        "trial_kinds": [t.kind for t in res.trials],
        "expert": args.expert,
        "final_return": round(res.trial_returns[-1], 4),
        "env_steps": res.env_steps,
        "eval_returns": [round(r, 4) for r in res.eval_returns],
        "eval_mean_return": round(sum(res.eval_returns) / len(res.eval_returns), 4)
        if res.eval_returns
        else None,
        "seconds": round(res.seconds, 3),
        "trial_seconds": [round(t.seconds, 3) for t in res.trials],
        "state_names": list(res.state_names),
        "prediction_errors": errors,
        "open_loop_horizon": args.horizon,
    }


def write_plots(res: Any, out_dir: Any) -> list[str]:
    """`returns.png` (return against trials), and when a trial planned, `rollouts.png` (each
    planned trial's first `horizon` real states against the model's open-loop prediction) and
    `exploitation.png` (`_exploitation_plot`) in `out_dir`; returns their paths."""
    import numpy as np
    from matplotlib.figure import Figure

    from bellmax.train.io import atomic_savefig

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    idx = [t.index for t in res.trials]
    ax.plot(idx, res.trial_returns, "o-")
    for t in res.trials:
        if t.kind in ("random", "expert"):  # before the first fit
            ax.plot([t.index], [t.total_reward], "s", color="grey")
    if res.eval_returns:
        k = len(idx) + 1
        ax.plot([k] * len(res.eval_returns), res.eval_returns, "x", color="C1",
                label="final model, evaluation episodes")  # fmt: skip
        ax.legend(fontsize=8)
    ax.set_xticks(range(1, len(idx) + 1 + bool(res.eval_returns)))
    ax.set_xlabel("trial")
    ax.set_ylabel("return")
    ax.set_title(f"{res.env_id} (grey: random trials)", fontsize=10)
    fig.tight_layout()
    paths = [str(atomic_savefig(fig, out_dir / RETURNS_PNG))]

    planned = [t for t in res.trials if t.predicted is not None]
    if not planned:  # (a run that diverged in its first planned trial)
        return paths
    n = len(res.state_names)
    fig = Figure(figsize=(4 * len(planned), 2.2 * n))
    axes = np.asarray(fig.subplots(n, len(planned), squeeze=False))
    angles = set(res.model.angle_dims)

    def show(v, i):  # angles wrapped to [-pi, pi), as the errors are
        return (v + np.pi) % (2 * np.pi) - np.pi if i in angles else v

    for j, t in enumerate(planned):
        H = t.predicted.shape[0]
        for i in range(n):
            a = axes[i, j]
            a.plot(show(t.states[:H, i], i), "k-", label="real")
            a.plot(show(t.predicted[:, i], i), "r--", label="model, open loop")
            if i == 0:
                a.set_title(f"trial {t.index}")
            if j == 0:
                a.set_ylabel(res.state_names[i])
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    paths.append(str(atomic_savefig(fig, out_dir / ROLLOUTS_PNG)))
    paths.append(str(_exploitation_plot(res, planned, out_dir)))
    return paths


def _exploitation_plot(res: Any, planned: list[Any], out_dir: Any) -> Any:
    """`exploitation.png`: per planned trial and step, the model's promised return over the
    horizon against the world's, and the ensemble's disagreement where it has one."""
    from matplotlib.figure import Figure

    from bellmax.train.io import atomic_savefig

    fig = Figure(figsize=(4 * len(planned), 3.2))
    axes = fig.subplots(1, len(planned), squeeze=False)[0]
    for a, t in zip(axes, planned, strict=True):
        a.plot(t.predicted_returns, "r-", lw=1, label="promised by the model")
        a.plot(t.real_returns, "k-", lw=1, label="real")
        a.set_title(f"trial {t.index} ({t.kind}): optimism {t.optimism or 0:.2g}", fontsize=9)
        a.set_xlabel("step")
        if t.disagreement is not None:
            b = a.twinx()
            b.plot(t.disagreement, "b:", lw=1)
            b.set_ylabel("ensemble disagreement (dotted)", color="b", fontsize=8)
    axes[0].set_ylabel("return over the horizon")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{res.env_id}: {res.model.kind} model", fontsize=10)
    fig.tight_layout()
    return atomic_savefig(fig, out_dir / EXPLOITATION_PNG)


def write_guard_plot(on: Any, off: Any, out_dir: Any) -> str:
    """`guard.png`: per trial, the mean return over the horizon promised by the model
    (dashed) and given by the world (solid), with the guard on and off."""
    from matplotlib.figure import Figure

    from bellmax.train.io import atomic_savefig

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for res, name, color in ((on, "guard on", "C0"), (off, "guard off", "C3")):
        rows = [(t.index, _promise(t)) for t in res.trials if t.predicted_returns is not None]
        idx = [i for i, _ in rows]
        ax.plot(idx, [p["real_return"] for _, p in rows], "o-", color=color,
                label=f"{name} ({res.model.kind}): real")  # fmt: skip
        ax.plot(idx, [p["predicted_return"] for _, p in rows], "s--", color=color,
                label=f"{name}: promised by the model")  # fmt: skip
    ax.set_xticks([t.index for t in on.trials if t.predicted_returns is not None])
    ax.set_xlabel("trial")
    ax.set_ylabel("mean return over the planning horizon")
    ax.set_title(f"{on.env_id}: the model's promise against the world", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return str(atomic_savefig(fig, out_dir / GUARD_PNG))


def _guard_off(args: MbrlArgs, off: Any) -> dict[str, Any]:
    """`guard_off` of the summary: the unguarded run's trials."""
    rows = _summary(dataclasses.replace(args, model="mlp"), off)
    keep = ("trial_returns", "prediction_errors", "seconds")
    return {"model": "mlp", **{k: rows[k] for k in keep}}


def _diverged(args: MbrlArgs, res: Any, so_far: dict[str, Any], error: Exception) -> NoReturn:
    """Keep the trials that finished before a divergence, then stop.

    As `bellmax train` records a divergence in its run.json: with --out, result.json (written
    atomically, with the plots) holds the finished trials, `"status": "diverged"`,
    `diverged_at_trial` and the `error`; the `DivergenceError` raised says what finished and
    where it is kept (the command prints it as one line and exits with status 2).

    Args:
      args: the command's arguments.
      res: the guarded run's `MBRLResult` if it finished (the guard-off run diverged), else
        None (the guarded run did).
      so_far: `"on"` / `"off"`: each run's `MBRLResult` of its trials so far.
      error: the divergence.
    """
    from bellmax.core.errors import DivergenceError

    failed = so_far.get("on" if res is None else "off")  # the diverged run's finished trials
    k = 0 if failed is None else len(failed.trials)
    at = k + 1 if k < args.trials else None  # None: in the final fit or an evaluation episode
    main = failed if res is None else res
    msg = str(error) if res is None else f"guard off (one MLP, --compare-guard): {error}"
    if main is None:  # no trial finished: nothing to keep
        raise DivergenceError(
            msg + (" No trial had finished, so nothing was written." if args.out else "")
        ) from None
    summary = {**_summary(args, main), "status": "diverged", "error": msg}
    returns = ", ".join(f"{r:.1f}" for r in main.trial_returns)
    if res is None:
        summary["diverged_at_trial"] = at
        kept = f"{'Trial 1' if k == 1 else f'Trials 1-{k}'} finished (returns {returns})"
    else:
        rows = _guard_off(args, failed) if failed is not None else {"model": "mlp"}
        summary["guard_off"] = {**rows, "diverged_at_trial": at}
        kept = f"The guarded run finished its {len(res.trials)} trials (returns {returns})"
    if args.out is None:
        raise DivergenceError(
            f"{msg} {kept}; rerun with --out DIR to keep their results (result.json, with "
            'status "diverged", and the plots).'
        ) from None
    from bellmax.train.io import atomic_write_json

    out_dir = _clear(args)
    summary["plots"] = write_plots(main, out_dir)
    if res is not None and failed is not None:
        summary["plots"].append(write_guard_plot(res, failed, out_dir))
    atomic_write_json(out_dir / RESULT_JSON, summary)
    raise DivergenceError(
        f'{msg} {kept}; {out_dir / RESULT_JSON} (status "diverged") and the plots keep '
        "their results."
    ) from None


def _clear(args: MbrlArgs) -> Any:
    """`--out` as a path, emptied of an earlier run's files with --overwrite (a plot this run
    does not draw must not stay beside its result.json); called just before writing."""
    from pathlib import Path

    from bellmax.core.io import clear_outputs

    if args.overwrite:
        clear_outputs(args.out, "mbrl")
    return Path(args.out)


def run_mbrl(args: MbrlArgs) -> int:
    """`bellmax mbrl`."""
    from pathlib import Path

    from bellmax.core.errors import DivergenceError
    from bellmax.models.mbrl import MBRLConfig
    from bellmax.models.mbrl import run_mbrl as loop
    from bellmax.models.neural import NeuralConfig

    _check(args)
    neural = NeuralConfig(
        ensemble_size=args.ensemble_size,
        num_updates=args.updates,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    config = MBRLConfig(
        trials=args.trials,
        trial_steps=args.trial_steps,
        random_trials=args.random_trials,
        planner=args.planner,
        model=args.model,
        horizon=args.horizon,
        samples=args.samples,
        rounds=args.rounds,
        trajectory_sampling=args.trajectory_sampling,
        disagreement_penalty=args.disagreement_penalty,
        learned_reward=True if args.learned_reward else None,
        neural=neural,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
    )
    expert = None if args.expert is None else _expert(args)
    so_far: dict[str, Any] = {}  # each run's trials so far, kept if a later one diverges
    res = off = None
    try:
        res = loop(args.env, config=config, on_trial=lambda r: so_far.update(on=r), expert=expert)
        if args.compare_guard:
            unguarded = dataclasses.replace(
                config, model="mlp", trajectory_sampling=False, disagreement_penalty=0.0
            )
            off = loop(
                args.env, config=unguarded, on_trial=lambda r: so_far.update(off=r), expert=expert
            )
    except DivergenceError as e:
        _diverged(args, res, so_far, e)
    summary = {**_summary(args, res), "status": "finished"}
    if off is not None:
        summary["guard_off"] = _guard_off(args, off)
    out_dir = None
    if args.out is not None:  # the trials' results first: a distillation that fails keeps them
        from bellmax.train.io import atomic_write_json

        out_dir = _clear(args)
        summary["plots"] = write_plots(res, out_dir)
        if off is not None:
            summary["plots"].append(write_guard_plot(res, off, out_dir))
        atomic_write_json(out_dir / RESULT_JSON, summary)
    distilled = None
    if args.distil_labels:
        from bellmax.imitation.experts import ExpertError

        try:
            distilled, bc_config = _distil(args, res)
        except (DivergenceError, ExpertError) as e:
            where = (
                "" if out_dir is None else f"; the trials' results are in {out_dir / RESULT_JSON}"
            )
            raise type(e)(f"distilling the planner into a policy failed: {e}{where}") from e
        summary["distilled"] = {
            "labels": distilled.labels_used,
            "rounds": len(distilled.rounds),
            "eval_returns_per_round": [round(r.eval_return, 4) for r in distilled.rounds],
            "final_eval_return": round(distilled.final_eval_return, 4),
        }
        if out_dir is not None:
            path = _write_distilled(args, distilled, bc_config, out_dir)
            summary["distilled"]["policy"] = str(path)
            atomic_write_json(out_dir / RESULT_JSON, summary)
    if args.json:
        print(json.dumps(summary))
        return 0
    reward = "learned" if res.learned_reward else "known"
    print(
        f"{args.planner} MPC through {_a(res.model.kind)} model of {args.env} ({reward} reward), "
        f"{res.env_steps} env steps in {res.seconds:.1f} s:"
    )
    for t, err in zip(res.trials, summary["prediction_errors"], strict=True):
        line = f"  trial {t.index} ({t.kind}): return {t.total_reward:.1f} in {t.steps} steps"
        if err is not None:
            ol = ", ".join(
                f"{s} {e:.3g}" for s, e in zip(res.state_names, t.open_loop_rmse, strict=True)
            )
            line += f"; open-loop RMSE at {args.horizon} steps: {ol}"
            if t.optimism is not None:
                line += f"; optimism {t.optimism:.3g}"
        print(line)
    if off is not None:
        print("  guard off (one deterministic MLP, planned on directly), the same trials:")
        for t in off.trials:
            line = f"  trial {t.index} ({t.kind}): return {t.total_reward:.1f}"
            if t.optimism is not None:
                line += f"; optimism {t.optimism:.3g}"
            print(line)
    if res.eval_returns:
        print(
            f"  final model, {len(res.eval_returns)} more episodes: mean return "
            f"{summary['eval_mean_return']:.1f} ("
            + ", ".join(f"{r:.1f}" for r in res.eval_returns)
            + ")"
        )
    if distilled is not None:
        d = summary["distilled"]
        print(
            f"  distilled into a policy (DAgger, {d['labels']} labels): evaluation return "
            f"{d['final_eval_return']:.1f}" + (f", {d['policy']}" if "policy" in d else "")
        )
    if args.out is not None:
        print("  wrote " + ", ".join(summary["plots"]) + f" and {Path(args.out) / RESULT_JSON}")
    return 0


def _distil(args: MbrlArgs, res: Any) -> tuple[Any, Any]:
    """`--distil-labels`: DAgger with iLQR-MPC through the final model as the expert; the
    result and the learner's `BCConfig`."""
    from bellmax.imitation import ImitationConfig
    from bellmax.models.mbrl import distil

    n = args.distil_labels
    per = min(n, 100)
    cfg = ImitationConfig(
        algorithm="dagger", labels=n, rounds=-(-n // per), labels_per_round=per,
        steps_per_round=max(per, 1), eval_episodes=3,
    )  # fmt: skip
    return distil(res, cfg, horizon=args.horizon, iterations=args.rounds, seed=args.seed), cfg.bc


def _write_distilled(args: MbrlArgs, distilled: Any, bc_config: Any, out_dir: Any) -> Any:
    from bellmax.imitation.bc import write_policy

    run = {
        "env": args.env,
        "num_envs": 1,
        "updates_done": len(distilled.rounds),
        "labels_used": distilled.labels_used,
        "expert": "mbrl: iLQR-MPC through the learned model",
        "eval_return_per_seed": [distilled.final_eval_return],
    }
    return write_policy(
        out_dir / POLICY_MSGPACK,
        distilled.params,
        bc_config,
        distilled.observation_space,
        distilled.action_space,
        algorithm="dagger",
        seed=args.seed,
        run=run,
    )
