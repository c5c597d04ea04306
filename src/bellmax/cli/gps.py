"""`bellmax gps`: trajectory optimisation with local models under a KL trust region.

bellmax gps --env Pendulum-v1 --iterations 15 --samples 5 --json
bellmax gps --env gymnasium:Pendulum-v1 --kl-step 0.5 --out runs/gps
bellmax gps --env CartPoleSwingUp-v0 --kl-step inf     # no trust region
bellmax gps --env Pendulum-v1 --policy mdgps           # + a neural policy (MD-GPS)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

import tyro

from bellmax.cli.main import out_dir_option
from bellmax.core.checks import check_choice, check_int, check_number, check_seed
from bellmax.core.io import CONTROLLER_NPZ, NEURAL_POLICY_MSGPACK, RESULT_JSON

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = ["GpsArgs", "make_system", "run_gps", "tour_section"]

#: Largest --iterations, --samples and --horizon (local methods need few; more would only
#: make the command run for hours).
MAX_ITERATIONS = 10_000
MAX_SAMPLES = 1_000
MAX_HORIZON = 100_000
#: The --policy choices.
POLICIES = ("linear", "mdgps")


@dataclasses.dataclass(frozen=True)
class GpsArgs:
    """Learn a time-varying linear-Gaussian controller from a few rollouts per iteration
    (LQR-FLM: Levine & Abbeel 2014).

    Each iteration runs --samples rollouts of the current controller, fits linear-Gaussian
    dynamics per time step (with a Gaussian-mixture prior over the last 20 rollouts,
    GPSConfig.prior_rollouts) and a quadratic
    cost (a bellmax env's own reward, differentiated; for a Gymnasium env a local quadratic
    fit of the sampled rewards), then solves the LQR under the trust region
    KL(p_new(tau) || p_old(tau)) <= kl_step * horizon * (an adapted multiplier).

    Local methods start every rollout from ONE FIXED INITIAL STATE: a bellmax env hanging at
    rest (Pendulum-v1, CartPoleSwingUp-v0), a Gymnasium env at its reset state for --seed.
    Cost = minus the return. On Pendulum-v1 (bellmax's or Gymnasium's) the result is compared
    with iLQR on the true model from the same start (ilqr_cost; null elsewhere).

    --policy mdgps (bellmax envs): guided policy search (MD-GPS, Montgomery & Levine 2016):
    the trust region is centred on the linearised neural policy, which is fitted to the
    local controller's actions each iteration; final_return is then the NEURAL POLICY's,
    run alone (policy_costs: after each iteration).
    """

    env: str = "Pendulum-v1"
    """A bellmax id (Pendulum-v1, CartPoleSwingUp-v0) or a Gymnasium one with continuous
    actions (gymnasium:Pendulum-v1 for Gymnasium's own)."""
    iterations: int = 15
    """Iterations (rollouts, fits and one trust-region update each)."""
    samples: int = 5
    """Rollouts per iteration (at least 2: the local dynamics are fitted to them)."""
    kl_step: float = 1.0
    """Base KL bound per time step (inf: no trust region, plain LQR on the local fits)."""
    horizon: int = 100
    """Steps per rollout."""
    seed: int = 0
    """Seed of the action noise (and of a Gymnasium env's fixed start)."""
    out: Annotated[str | None, out_dir_option()] = None
    """Directory for result.json and controller.npz (K, k, cov of the final controller); with
    --policy mdgps also neural_policy.msgpack (the global policy, read by
    bellmax.models.through_model.neural_policy_from_bytes). A directory of an earlier gps run
    is refused."""
    overwrite: bool = False
    """Replace the results of an earlier gps run in --out."""
    json: bool = False
    """Print one JSON object: iteration_costs, kl, kl_bound, final_return, seconds, ..."""
    policy: Annotated[str, tyro.conf.arg(metavar="{" + ",".join(POLICIES) + "}")] = "linear"
    """linear: the local linear-Gaussian controller (LQR-FLM); mdgps: also a neural policy
    supervised by it (MD-GPS; Pendulum-v1, CartPoleSwingUp-v0), whose cost is reported."""


def _check(args: GpsArgs) -> None:
    check_int(args.iterations, "--iterations", low=1, high=MAX_ITERATIONS)
    check_int(args.samples, "--samples", low=1, high=MAX_SAMPLES)
    if args.samples < 2:
        raise ValueError(
            f"--samples {args.samples}: give at least 2 rollouts per iteration (e.g. --samples "
            "5); one rollout cannot fit the local dynamics, so the controller would never change."
        )
    check_int(args.horizon, "--horizon", low=1, high=MAX_HORIZON)
    check_seed(args.seed)
    check_number(args.kl_step, "--kl-step", low=0, low_open=True, finite=False)
    check_choice(args.policy, "--policy", POLICIES)
    if args.policy == "mdgps":
        from bellmax.models.through_model import ANGLE_DIMS

        if args.env not in ANGLE_DIMS:
            raise ValueError(
                f"--policy mdgps needs a bellmax env with a known state layout "
                f"({', '.join(sorted(ANGLE_DIMS))}), got --env {args.env!r}."
            )


def make_system(env_id: str, horizon: int, seed: int) -> Any:
    """The `LocalSystem` for an id: a bellmax env (own reward) or a Gymnasium one (black box)."""
    from bellmax.envs import registry
    from bellmax.models.gps import (
        DEFAULT_STARTS,
        NoDefaultStartError,
        env_system,
        gymnasium_system,
    )

    if registry.is_registered(env_id):
        try:
            return env_system(env_id, horizon=horizon)
        except NoDefaultStartError:  # the command line has no option for a start state
            raise ValueError(
                f"--env {env_id} has no default start state for local methods; the command "
                f"runs the bellmax envs that have one ({', '.join(sorted(DEFAULT_STARTS))}) "
                "and Gymnasium ids; in Python, bellmax.models.gps.env_system(env_id, "
                "horizon, x0=...) takes a start of your own."
            ) from None
    return gymnasium_system(env_id, horizon=horizon, seed=seed)


def _reference(system: Any) -> float | None:
    """iLQR's cost on the true pendulum from the same start (None for other envs)."""
    import numpy as np

    from bellmax.envs import registry
    from bellmax.models.gps import ilqr_reference

    env_id = system.env_id
    x0 = system.x0
    if not registry.is_registered(env_id):
        if env_id.removeprefix("gymnasium:") != "Pendulum-v1":
            return None
        # Gymnasium's Pendulum-v1 is bellmax's exactly: its observation gives the state.
        c, s, thdot = (float(v) for v in x0)
        x0 = np.array([math.atan2(s, c), thdot], np.float32)
        env_id = "Pendulum-v1"
    if env_id != "Pendulum-v1":
        # (CartPoleSwingUp-v0's reward has zero gradient at the hanging start: iLQR from
        # zero controls never leaves it, so its cost, 0, is no yardstick.)
        return None
    return float(ilqr_reference(env_id, x0, system.horizon, max_iterations=200).cost)


def run_gps(args: GpsArgs) -> int | None:
    """`bellmax gps`."""
    import numpy as np

    from bellmax.core.io import check_output_path, check_run_dir, clear_outputs
    from bellmax.models.gps import GPSConfig, run_lqr_flm

    _check(args)
    out = None
    if args.out is not None:
        out = check_output_path(args.out, kind="dir", option="--out")
    check_run_dir(out, "gps", overwrite=args.overwrite)
    system = make_system(args.env, args.horizon, args.seed)
    config = GPSConfig(
        iterations=args.iterations, samples=args.samples, kl_step=args.kl_step, seed=args.seed
    )

    def progress(i: int, d: dict[str, float]) -> None:
        if not args.json:
            print(
                f"iteration {i + 1:3d}  cost {d['cost']:10.3f}  kl {d['kl']:9.3f} "
                f"(bound {d['kl_bound']:.3g})  eta {d['eta']:.3g}"
                + (f"  policy alone {d['policy_cost']:.3f}" if "policy_cost" in d else ""),
                flush=True,
            )

    if args.policy == "mdgps":
        from bellmax.models.mdgps import MDGPSConfig, run_mdgps

        res = run_mdgps(system, MDGPSConfig(gps=config), callback=progress)
        controller = res.controller
        extra = {"policy_costs": [float(v) for v in res.policy_costs]}
    else:
        res = run_lqr_flm(system, config, callback=progress)
        controller = res.policy
        extra = {}
    reference = _reference(system)
    result = {
        "env": args.env,
        "iterations": args.iterations,
        "samples": args.samples,
        "horizon": args.horizon,
        "kl_step": args.kl_step if math.isfinite(args.kl_step) else None,
        "initial_state": [float(v) for v in system.x0],
        "iteration_costs": [float(v) for v in res.iteration_costs],
        "kl": [float(v) for v in res.kl],
        "kl_bound": [float(v) if math.isfinite(v) else None for v in res.kl_bound],
        "eta": [float(v) for v in res.eta],
        "policy": args.policy,
        **extra,
        "final_cost": res.final_cost,
        "final_return": res.final_return,
        "ilqr_cost": reference,
        "seconds": res.seconds,
    }
    if out is not None:  # (the writers create the directory once they have a file for it)
        from bellmax.train.io import atomic_write_bytes, atomic_write_json

        if args.overwrite:  # (--policy linear writes no neural policy: an earlier one goes)
            clear_outputs(out, "gps")
        atomic_write_json(out / RESULT_JSON, result)
        import io

        buf = io.BytesIO()
        pol = controller
        np.savez(buf, K=np.asarray(pol.K), k=np.asarray(pol.k), cov=np.asarray(pol.cov))
        atomic_write_bytes(out / CONTROLLER_NPZ, buf.getvalue())
        if args.policy == "mdgps":  # the global policy too: neural_policy_from_bytes reads it
            from bellmax.models.through_model import neural_policy_to_bytes

            data = neural_policy_to_bytes(res.policy, res.policy_params)
            atomic_write_bytes(out / NEURAL_POLICY_MSGPACK, data)
    if args.json:
        from bellmax.train.io import to_strict_json

        print(to_strict_json(result, indent=None))
    else:
        ref = "" if reference is None else f"  (iLQR on the true model: {reference:.3f})"
        print(f"final cost {res.final_cost:.3f}{ref}  in {res.seconds:.1f} s")
    return 0


def tour_section(ctx: Any) -> None:
    """The tour's local-models section: pendulum swing-up by LQR-FLM, with and without the
    KL trust region, against iLQR on the true model."""
    import numpy as np
    from matplotlib.figure import Figure

    from bellmax.models.gps import (
        DEFAULT_STARTS,
        GPSConfig,
        env_system,
        ilqr_reference,
        run_lqr_flm,
    )

    horizon = ctx.size(100, 20)
    iterations = ctx.size(10, 3)
    ctx.report.section(
        "Learning the model locally: LQR-FLM",
        "A time-varying linear-Gaussian controller learns the pendulum swing-up from 5 "
        "rollouts per iteration, all from hanging at rest: each iteration fits linear-Gaussian "
        "dynamics per time step (a Gaussian-mixture prior over the last 20 rollouts makes 5 samples "
        "enough), expands the environment's own cost, and solves the LQR under a KL trust "
        "region on the trajectory distribution (the dual variable found by bisection; the "
        "bound adapted from predicted against actual improvement; Levine & Abbeel 2014). "
        "Without the trust region (the plain LQR of each fit, the dual variable at its "
        "floor) the first update jumps far from the data and takes the noise out of the "
        "controller, so the later rollouts have little left to learn from and the cost "
        "stalls. On the pendulum both stop in a local optimum costlier than iLQR's on the "
        "true model from the same start. `bellmax gps` does the same from the command line.",
    )
    envs = ("Pendulum-v1",) if ctx.quick else ("Pendulum-v1", "CartPoleSwingUp-v0")
    runs: dict[tuple[str, str], Any] = {}
    for env_id in envs:
        system = env_system(env_id, horizon=horizon)
        for label, kl in (("trust region", 1.0), ("no trust region", math.inf)):
            cfg = GPSConfig(iterations=iterations, samples=5, kl_step=kl, seed=ctx.seed)
            runs[env_id, label] = run_lqr_flm(system, cfg)
    # iLQR's compilation alone would double the quick tour's section: full size only.
    reference = (
        float(ilqr_reference("Pendulum-v1", DEFAULT_STARTS["Pendulum-v1"], horizon).cost)
        if not ctx.quick
        else math.nan
    )
    fig = Figure(figsize=(6.5, 3.6 * len(envs)))
    axes = np.atleast_1d(fig.subplots(len(envs), 1))
    it = np.arange(1, iterations + 1)
    for ax, env_id in zip(axes, envs, strict=True):
        for label in ("trust region", "no trust region"):
            ax.plot(it, runs[env_id, label].iteration_costs, marker="o", label=label)
        if env_id == "Pendulum-v1" and math.isfinite(reference):
            ax.axhline(reference, color="k", lw=0.8, ls="--", label="iLQR, true model")
        ax.set_title(f"{env_id}, {horizon} steps from hanging", fontsize=10)
        ax.set_ylabel("mean cost of the rollouts")
        ax.legend()
    axes[-1].set_xlabel("iteration (5 rollouts each)")
    fig.tight_layout()
    with_tr = runs["Pendulum-v1", "trust region"]
    without = runs["Pendulum-v1", "no trust region"]
    caption = (
        f"Mean cost of each iteration's rollouts (cost = minus the reward). Pendulum-v1's "
        f"final controller: {with_tr.final_cost:.1f} with the trust region, "
        f"{without.final_cost:.1f} without"
    )
    if math.isfinite(reference):
        caption += f"; iLQR on the true model {reference:.1f}"
    if not ctx.quick:
        cp, cp_free = (
            runs["CartPoleSwingUp-v0", "trust region"],
            runs["CartPoleSwingUp-v0", "no trust region"],
        )
        caption += (
            f". CartPoleSwingUp-v0: {cp.final_cost:.1f} with, {cp_free.final_cost:.1f} "
            "without (the plain LQR jumps once and stalls: its controller has no noise left "
            "to learn from)"
        )
        ctx.report.summary["lqr_flm_cartpole_final_cost"] = cp.final_cost
        ctx.report.summary["lqr_flm_cartpole_no_trust_region_final_cost"] = cp_free.final_cost
    ctx.report.image(fig, caption + ".", name="lqr_flm")
    ctx.report.summary["lqr_flm_pendulum_final_cost"] = with_tr.final_cost
    ctx.report.summary["lqr_flm_pendulum_no_trust_region_final_cost"] = without.final_cost
    if math.isfinite(reference):
        ctx.report.summary["lqr_flm_pendulum_ilqr_cost"] = reference
    ctx.report.summary["lqr_flm_pendulum_max_kl_over_bound"] = float(
        np.max(with_tr.kl / with_tr.kl_bound)
    )
