"""`bellmax sysid` and `bellmax control`: learn a system's physics, then control it.

    bellmax sysid --env gymnasium:CartPole-v1 --model cartpole --steps 500 --json
    bellmax sysid --env Pendulum-v1 --model pendulum --steps 500 --fix g=10 max_torque=2
    bellmax control --env gymnasium:CartPole-v1 --model cartpole --controller ilqr-mpc \\
        --sysid-steps 300 --episodes 5
    bellmax control --env CartPoleSwingUp-v0 --model cartpole --controller ddp-mpc --episodes 2
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Annotated, Any, Literal

import jax
import numpy as np
import tyro

from bellmax.cli.main import changed_fields
from bellmax.core.checks import check_int, check_seed
from bellmax.core.errors import UnknownNameError, unknown_name
from bellmax.envs import registry

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = ["ControlArgs", "SysidArgs", "parse_fix", "run_control", "run_sysid"]


#: Largest --steps / --sysid-steps: ten million random transitions (500 already identify
#: the cart-pole to 1%); more would only make the command run for hours.
MAX_TRANSITIONS = 10_000_000
#: Largest --max-steps (steps per episode) and --episodes.
MAX_EPISODE_STEPS = 10_000_000
MAX_EPISODES = 1_000_000
#: Largest --horizon and --iterations (MPC's planning horizon and iterations per step).
MAX_HORIZON = 100_000
MAX_ITERATIONS = 10_000


def parse_fix(items: tuple[str, ...], names: tuple[str, ...]) -> dict[str, float]:
    """`("g=10", "max_torque=2")` -> `{"g": 10.0, "max_torque": 2.0}`, checked against `names`.

    Raises:
      ValueError: an item that is not NAME=VALUE, a value that is not a finite positive
        number (the models' parameters are physical constants), a parameter given twice.
      UnknownNameError: a name not in `names`. Every message lists `names`.
    """
    listing = ", ".join(names)
    out: dict[str, float] = {}
    for item in items:
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            example = name if name in names else names[0]
            raise ValueError(
                f"--fix takes NAME=VALUE, got {item!r}; e.g. --fix {example}=1.0 (the "
                f"parameters: {listing})."
            )
        if name not in names:
            raise unknown_name(
                "parameter", name, names, hint=f"The parameters: {listing}.", listed=True
            )
        if name in out:
            raise ValueError(
                f"--fix gives {name} twice ({out[name]:g} and {value}); give each parameter once."
            )
        try:
            number = float(value)
        except ValueError:
            raise ValueError(
                f"--fix {item!r}: {value!r} is not a number; write e.g. --fix {name}=1.0 "
                f"(the parameters: {listing})."
            ) from None
        if not (math.isfinite(number) and number > 0):
            raise ValueError(
                f"--fix {item!r}: {name} is a physical constant, a finite number > 0; give "
                f"e.g. --fix {name}=1.0."
            )
        out[name] = number
    return out


def _check_env(env_id: str) -> None:
    """Refuse an empty or unknown --env before any work (close matches are named)."""
    if not env_id.strip():
        raise ValueError(
            "--env is empty: give an environment id, e.g. --env gymnasium:CartPole-v1 "
            "(`bellmax envs` lists bellmax's)."
        )
    from bellmax.envs import gymnasium as gym_bridge

    gym_bridge.check_env_id(env_id)


def _model_for(env: str, model_name: str | None) -> Any:
    """The parametric model for --env (or --model), refusing one that does not fit it."""
    from bellmax.models import parametric

    try:
        fitting = parametric.model_for_env(env)
    except UnknownNameError:
        fitting = None
    if model_name is None:
        if fitting is None:
            raise ValueError(
                f"no built-in model fits --env {env!r}: `bellmax sysid` and `bellmax control` "
                "know cart-poles and pendulums; for one under another name, pass --model "
                "cartpole or --model pendulum."
            )
        return fitting
    model = parametric.get_model(model_name)
    if fitting is not None and fitting.name != model.name:
        raise ValueError(
            f"--model {model_name} does not fit --env {env} (a {fitting.name}); pass --model "
            f"{fitting.name} or leave --model out."
        )
    if fitting is None:  # an env the model does not know by name: its observations must fit
        _check_layout(env, model)
    return model


def _check_layout(env: str, model: Any) -> None:
    """Refuse an env whose observations are not one of the model's accepted layouts."""
    from bellmax.envs import spaces
    from bellmax.envs.vector import make_vector_env

    venv = make_vector_env(env, num_envs=1)
    try:
        space = venv.observation_space
    finally:
        close = getattr(venv, "close", None)
        if close is not None:
            close()
    layouts = "; ".join(f"{dim} numbers ({what})" for dim, what, _ in model.obs_to_state)
    dims = {dim for dim, _, _ in model.obs_to_state}
    shape = tuple(getattr(space, "shape", ()) or ())
    if not isinstance(space, spaces.Box) or len(shape) != 1 or shape[0] not in dims:
        got = type(space).__name__ + (f" of shape {shape}" if shape else "")
        raise ValueError(
            f"--env {env}'s observations ({got}) do not fit --model {model.name}, which reads "
            f"{layouts}: give an env that observes the {model.name}'s state."
        )


#: `--model`: a parametric model's name, or None for the one matching --env.
_Model = Annotated[
    Literal["cartpole", "pendulum"] | None,
    tyro.conf.arg(
        metavar="{cartpole,pendulum}", help_behavior_hint="(default: the one matching --env)"
    ),
]
#: `--fix`'s metavar: the values it takes.
_FIX_METAVAR = "NAME=VALUE [NAME=VALUE ...]"


@dataclasses.dataclass(frozen=True)
class SysidArgs:
    """Identify a cart-pole's or pendulum's physical parameters from random-policy transitions.

    Prints the fitted parameters with standard errors, which parameter combinations the data
    determine (and which not, with a gauge to fix), and the one-step prediction error on
    held-out transitions (20%).
    """

    env: str = "gymnasium:CartPole-v1"
    """Where the data come from: a bellmax or Gymnasium id (module:EnvName-v0 too)."""
    model: _Model = None
    """Parametric model to fit."""
    steps: int = 500
    """Random-policy transitions to collect (10 .. 10_000_000)."""
    seed: int = 0
    """Seed of the data and the solver's starting points."""
    fix: Annotated[
        tuple[str, ...], tyro.conf.arg(metavar=_FIX_METAVAR, help_behavior_hint="(default: none)")
    ] = ()
    """Parameters held at known values (the gauge), e.g. --fix masscart=1.0."""
    json: bool = False
    """Print one JSON object."""


def _identify(env: str, model_name: str | None, steps: int, seed: int, fix: tuple[str, ...]):
    from bellmax.models.data import collect_transitions, split_transitions
    from bellmax.models.sysid import SysIdConfig, identify, prediction_error

    check_int(steps, "--steps", low=10, high=MAX_TRANSITIONS)
    check_seed(seed)
    _check_env(env)
    model = _model_for(env, model_name)
    fixed = parse_fix(fix, tuple(model.param_names))
    data = collect_transitions(env, steps, seed=seed)
    train, test = split_transitions(data, 0.2, seed=seed)
    t = time.perf_counter()
    try:
        fit = identify(model, train, fix=fixed, config=SysIdConfig(seed=seed))
    except ValueError as e:
        if not str(e).startswith("too few transitions"):
            raise
        raise ValueError(
            f"--steps {steps}: {str(e).partition('; collect more')[0]} (a fifth of the "
            "transitions is held out); raise --steps (e.g. 300) or fix parameters with --fix."
        ) from None
    seconds = time.perf_counter() - t
    err = np.asarray(prediction_error(model, fit.params, test))
    return model, fit, err, data.num_transitions, seconds


def run_sysid(args: SysidArgs) -> int:
    """`bellmax sysid`."""
    from bellmax.train.io import to_strict_json

    model, fit, err, n, seconds = _identify(args.env, args.model, args.steps, args.seed, args.fix)
    if args.json:
        out = {
            "env": args.env,
            "model": model.name,
            "transitions": n,
            "status": fit.status_name,
            "params": {k: float(v) for k, v in fit.params.items()},
            "stderr": {k: _finite_or_none(v) for k, v in fit.stderr.items()},
            "fixed": list(fit.fixed),
            "rank": int(fit.rank),
            "free": list(fit.free),
            "identifiable": list(fit.identifiable),
            "unidentifiable": list(fit.unidentifiable),
            "null_directions": list(fit.null_directions),
            "suggested_gauge": list(fit.suggested_gauge),
            "combinations": {k: float(v) for k, v in fit.combinations.items()},
            "combination_stderr": {
                k: _finite_or_none(v) for k, v in fit.combination_stderr.items()
            },
            "heldout_rmse": dict(zip(model.state_names, map(float, err), strict=True)),
            "seconds": round(seconds, 4),
        }
        print(to_strict_json(out, indent=None))
        return 0
    print(f"{n} transitions from {args.env}, {fit.num_transitions} used for the fit:")
    print(fit.summary())
    print(
        "  held-out one-step RMSE: "
        + ", ".join(f"{s} {e:.2e}" for s, e in zip(model.state_names, err, strict=True))
    )
    return 0


def _finite_or_none(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


@dataclasses.dataclass(frozen=True)
class ControlArgs:
    """Control a cart-pole or pendulum in closed loop with LQR or MPC (iLQR or DDP inside).

    With --sysid-steps N the model's parameters are first identified from N random-policy
    transitions of --env (the gauge: masscart=1 for the cart-pole, g=10 and max_torque=2 for
    the pendulum, unless --fix says otherwise); otherwise a bellmax env's own parameters are
    used (Gymnasium envs: the model's nominal, i.e. Gymnasium's, constants). Prints each
    episode's return and the mean milliseconds per control step (compile excluded).
    """

    env: str = "gymnasium:CartPole-v1"
    """The system: a bellmax or Gymnasium id (module:EnvName-v0 too)."""
    model: _Model = None
    """Parametric model."""
    controller: Literal["lqr", "ilqr-mpc", "ddp-mpc"] = "ilqr-mpc"
    """LQR about the upright goal, or MPC re-planning with iLQR / DDP every step."""
    sysid_steps: Annotated[
        int | None,
        tyro.conf.arg(metavar="INT", help_behavior_hint="(default: none, no identification)"),
    ] = None
    """Identify the model from this many random-policy transitions first (at least 10)."""
    fix: Annotated[
        tuple[str, ...],
        tyro.conf.arg(
            metavar=_FIX_METAVAR,
            help_behavior_hint="(default: masscart=1 for the cart-pole, g=10 max_torque=2 for "
            "the pendulum)",
        ),
    ] = ()
    """Gauge for --sysid-steps: parameters held at known values."""
    episodes: int = 5
    """Closed-loop episodes (each one is reported)."""
    max_steps: int = 500
    """Steps per episode at most, for every kind of env: an episode is truncated there (or
    earlier, at the environment's own time limit)."""
    horizon: Annotated[
        int | None,
        tyro.conf.arg(
            metavar="INT",
            help_behavior_hint="(default: 25 balance, 60 cart-pole swing-up, 40 pendulum)",
        ),
    ] = None
    """MPC planning horizon in steps."""
    iterations: int = 3
    """iLQR/DDP iterations per control step (MPC's fixed budget)."""
    seed: int = 0
    """Seed of the data and the episodes."""
    json: bool = False
    """Print one JSON object."""


def _default_fix(model_name: str) -> dict[str, float]:
    return {"masscart": 1.0} if model_name == "cartpole" else {"g": 10.0, "max_torque": 2.0}


def run_control(args: ControlArgs) -> int:
    """`bellmax control`."""
    from bellmax.control.mpc import closed_loop, closed_loop_host, make_lqr_controller, make_mpc
    from bellmax.control.problems import env_problem
    from bellmax.models.data import collect_transitions
    from bellmax.models.sysid import SysIdConfig, identify
    from bellmax.train.io import to_strict_json

    _check_control_args(args)
    model = _model_for(args.env, args.model)
    is_bellmax = registry.is_registered(args.env)
    fit = None
    if args.sysid_steps is not None:
        fix = parse_fix(args.fix, tuple(model.param_names)) or _default_fix(model.name)
        data = collect_transitions(args.env, args.sysid_steps, seed=args.seed)
        fit = identify(model, data, fix=fix, config=SysIdConfig(seed=args.seed))
        base = registry.make(args.env)[1] if is_bellmax else None
        params = model.env_params(fit.params, base=base)
        source = f"identified from {args.sysid_steps} random transitions"
    elif is_bellmax:
        params = registry.make(args.env)[1]
        source = "the environment's true parameters"
    else:
        params = model.env_params(model.nominal_params)
        source = "the model's nominal (Gymnasium's) parameters"
    problem, task = env_problem(args.env, model.name, params, horizon=args.horizon)
    if args.controller == "lqr":
        if task == "swing-up":
            print(
                f"bellmax: --controller lqr holds the upright with one feedback gain "
                f"about it; {args.env} is a swing-up task, and from far below the upright, "
                "where that linearisation does not hold, LQR may fail (--controller ilqr-mpc "
                "plans the swing-up).",
                file=sys.stderr,
            )
        ctrl = make_lqr_controller(problem, params)
    else:
        method = "ddp" if args.controller == "ddp-mpc" else "ilqr"
        ctrl = make_mpc(problem, iterations=args.iterations, method=method)
    returns, lengths, diverged = [], [], 0
    t0 = time.perf_counter()
    if is_bellmax:
        env, env_params = registry.make(args.env)
        steps = min(args.max_steps, int(env_params.max_steps_in_episode))
        keys = jax.random.split(jax.random.key(args.seed), args.episodes + 1)
        jax.block_until_ready(
            closed_loop(env, env_params, ctrl, keys[0], steps, model_params=params)
        )
        compile_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        for k in keys[1:]:
            out = closed_loop(env, env_params, ctrl, k, steps, model_params=params)
            returns.append(float(out.total_reward))
            lengths.append(int(out.alive_steps))
            diverged += int(out.diverged_steps)
        ms = 1e3 * (time.perf_counter() - t1) / (steps * args.episodes)
    else:
        # Every episode is capped at --max-steps (truncated, like a bellmax env's), so the
        # run takes at most episodes * max_steps steps and reports every episode.
        res = closed_loop_host(
            args.env,
            ctrl,
            params,
            episodes=args.episodes,
            max_steps=args.max_steps * args.episodes,
            seed=args.seed,
            observe=lambda o: model.state_from_obs(o),
            max_episode_steps=args.max_steps,
        )
        compile_s = None
        returns = [float(r) for r in res.episode_returns]
        lengths = [int(n) for n in res.episode_lengths]
        ms = float(res.ms_per_step)
        diverged = int(res.diverged_steps)
    out = {
        "env": args.env,
        "model": model.name,
        "controller": args.controller,
        "task": task,
        "parameters_from": source,
        "params": {n: float(getattr(params, n)) for n in model.param_names},
        "episode_returns": returns,
        "episode_lengths": lengths,
        "mean_return": float(np.mean(returns)) if returns else None,
        "ms_per_step": round(ms, 4),
        "compile_seconds": None if compile_s is None else round(compile_s, 3),
        "diverged_steps": diverged,
    }
    if fit is not None:
        out["sysid"] = {"status": fit.status_name, "rank": int(fit.rank), "fixed": list(fit.fixed)}
    if diverged:
        print(
            f"bellmax: {diverged} of the control steps planned a non-finite trajectory (the "
            "model or cost gave NaN or inf from the measured state); MPC applied the previous "
            "plan's next control there. Check the observations and the model parameters.",
            file=sys.stderr,
        )
    if args.json:
        print(to_strict_json(out, indent=None))
        return 0
    with_params = f"parameters {source}" if fit is not None else source
    print(f"{args.controller} on {args.env} ({task}), model {model.name} with {with_params}:")
    for i, (r, n) in enumerate(zip(returns, lengths, strict=True)):
        print(f"  episode {i + 1}: return {r:.1f} in {n} steps")
    mean = "n/a" if out["mean_return"] is None else f"{out['mean_return']:.1f}"
    print(f"  mean {mean}; {ms:.3f} ms per control step (compile excluded)")
    return 0


def _check_control_args(args: ControlArgs) -> None:
    """Refuse nonsense `bellmax control` options before any work starts."""
    check_int(args.episodes, "--episodes", low=1, high=MAX_EPISODES)
    check_int(args.max_steps, "--max-steps", low=1, high=MAX_EPISODE_STEPS)
    check_int(args.iterations, "--iterations", low=1, high=MAX_ITERATIONS)
    if args.horizon is not None:
        check_int(args.horizon, "--horizon", low=1, high=MAX_HORIZON)
    if args.controller == "lqr":
        given = [f"--{n}" for n in changed_fields(args, ("horizon", "iterations"))]
        if given:
            raise ValueError(
                f"{' and '.join(given)} set MPC's planning; --controller lqr does not plan "
                "(a fixed feedback gain about the goal): drop them or use --controller ilqr-mpc."
            )
    if args.sysid_steps is not None:
        check_int(args.sysid_steps, "--sysid-steps", low=10, high=MAX_TRANSITIONS)
    elif args.fix:
        raise ValueError(
            "--fix is the gauge of the identification, which only runs with --sysid-steps N; "
            "add e.g. --sysid-steps 300 or drop --fix."
        )
    check_seed(args.seed)
    _check_env(args.env)


def tour_section(ctx: Any) -> None:
    """The tour's control section: identify Gymnasium's CartPole-v1, balance it; swing up."""
    from bellmax.control.mpc import closed_loop, closed_loop_host, make_mpc
    from bellmax.control.problems import env_problem
    from bellmax.models import parametric
    from bellmax.models.data import collect_transitions
    from bellmax.models.sysid import SysIdConfig, identify

    ctx.report.section(
        "Control and system identification",
        "System identification fits the cart-pole's physics to 300 transitions of Gymnasium's "
        "own CartPole-v1 under a random policy (Levenberg-Marquardt with JAX Jacobians, "
        "several starts). The masses only enter as ratios, so the data fix every parameter "
        "but one overall mass scale: the cart's mass is held at 1 kg (the gauge). MPC "
        "(iLQR re-planned every step, warm-started) on the identified model then balances "
        "the real Gymnasium environment, its force quantised to the two allowed pushes. "
        "`bellmax sysid` and `bellmax control` do the same from the command line.",
    )
    model = parametric.get_model("cartpole")
    data = collect_transitions("gymnasium:CartPole-v1", 300, seed=ctx.seed)
    fit = identify(model, data, fix={"masscart": 1.0}, config=SysIdConfig(seed=ctx.seed))
    truth = model.nominal_params
    rows = [
        [n, truth[n], float(fit.params[n]), float(fit.stderr[n]) if n not in fit.fixed else 0.0]
        for n in model.param_names
    ]
    ctx.report.table(["parameter", "Gymnasium's value", "identified", "std. error"], rows)
    params = model.env_params(fit.params)
    problem, _ = env_problem("CartPole-v1", "cartpole", params)
    res = closed_loop_host(
        "gymnasium:CartPole-v1",
        make_mpc(problem, iterations=3),
        params,
        episodes=ctx.size(3, 1),
        max_steps=ctx.size(3, 1) * 500 + 1,
        seed=ctx.seed,
    )
    worst = max(abs(float(fit.params[n]) / truth[n] - 1) for n in model.param_names)
    ctx.report.summary["sysid_cartpole_max_relative_error"] = worst
    ctx.report.summary["mpc_identified_gymnasium_cartpole_returns"] = [
        float(r) for r in res.episode_returns
    ]
    ctx.report.summary["mpc_identified_gymnasium_cartpole_ms_per_step"] = round(
        float(res.ms_per_step), 3
    )

    env, env_params = registry.make("CartPoleSwingUp-v0")
    problem, _ = env_problem("CartPoleSwingUp-v0", "cartpole", env_params)
    mpc = make_mpc(problem, iterations=3)
    steps = ctx.size(400, 250)
    out = closed_loop(env, env_params, mpc, ctx.key("swingup-mpc"), steps)
    X, U = np.asarray(out.states), np.asarray(out.controls)
    t = np.arange(len(X)) * float(env_params.tau)
    theta = (X[:, 2] + np.pi) % (2 * np.pi) - np.pi
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    axes = fig.subplots(3, 1, sharex=True)
    axes[0].plot(t, X[:, 0])
    axes[0].set_ylabel("cart x (m)")
    axes[1].plot(t, theta)
    axes[1].axhline(0, color="k", lw=0.5)
    axes[1].set_ylabel("pole angle (rad)")
    axes[2].plot(t[:-1], U[:, 0])
    axes[2].set_ylabel("force (N)")
    axes[2].set_xlabel("time (s)")
    fig.tight_layout()
    ctx.report.image(
        fig,
        "MPC swings up CartPoleSwingUp-v0 from hanging and holds it upright: iLQR with 3 "
        f"iterations per control step over a 1.2 s horizon. Return {float(out.total_reward):.1f} "
        f"in {steps} steps (reward (1 + cos theta)/2 per step).",
        name="mpc_swingup",
    )
    upright = np.abs(theta[-50:]).max()
    ctx.report.summary["mpc_swingup_return"] = float(out.total_reward)
    ctx.report.summary["mpc_swingup_final_max_abs_angle"] = float(upright)
