"""`bellmax pomdp`: solve a POMDP from a `.pomdp` file, or simulate a policy on it.

    bellmax pomdp solve tiger.pomdp --json                   # HSVI-style bounds at b0
    bellmax pomdp solve tiger.pomdp --method exact --horizon 5
    bellmax pomdp solve tiger.pomdp --method perseus --out tiger-policy.npz
    bellmax pomdp simulate tiger.pomdp --policy tiger-policy.npz --episodes 2000 --json

`solve --json` prints one object with `value` (the lower bound at b0; for `exact` the
`horizon`-step value; for `pomcp` the search's Monte Carlo estimate at b0; null for QMDP and
FIB, which only bound from above), `upper_bound` (null
where the method has none), `gap`, `alpha_vectors` (how many), `seconds`, `status` and the
problem's size; `--out FILE.npz` saves the alpha-vector policy (`--out FILE.alpha` writes
pomdp-solve's format). `simulate` runs the model as the file writes it (a goal whose
transitions return to the start distribution keeps going) for `--steps` steps and prints
`mean_discounted_return` and `stderr`. `--out` replaces an earlier policy file but refuses
any other existing file. Exit status 0, 1 when a solver stopped before its target (time
limit, iteration cap; one line on stderr says which option to raise) or diverged (no
policy is written), 2 for bad input.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import tyro

__all__ = ["METHODS", "PomdpArgs", "run_pomdp", "simulate_pomdp_file", "solve_pomdp_file"]

Method = Literal["hsvi", "qmdp", "fib", "exact", "pbvi", "perseus", "pomcp"]
#: The `--method` choices (`hsvi`, the default, is the anytime one with both bounds).
METHODS = ("hsvi", "qmdp", "fib", "exact", "pbvi", "perseus", "pomcp")


@dataclasses.dataclass(frozen=True)
class PomdpArgs:
    """Solve a POMDP stored in Cassandra's .pomdp format, or simulate a policy on it.

    `solve` uses --method and that method's options (--horizon for exact; --time-limit for
    hsvi, pbvi, perseus and exact; --epsilon for hsvi; --simulations, --max-depth and
    --rollout for pomcp) and --out. `simulate` uses --policy (without it, it first solves
    with --method and that method's options; --method pomcp plans at every step from its own
    particle belief, Silver & Veness's agent, keeping the subtree of what happened unless
    --no-reuse-tree), --episodes and --steps. Both take --seed and --json.
    """

    action: Annotated[Literal["solve", "simulate"], tyro.conf.Positional]
    """solve: compute bounds and a policy; simulate: run a policy on the model."""
    file: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="FILE.pomdp")]
    """The POMDP file (.pomdp)."""
    method: Method = "hsvi"
    """Solver (simulate: used when no --policy is given)."""
    horizon: Annotated[
        int | None,
        tyro.conf.arg(metavar="INT", help_behavior_hint="(required with --method exact)"),
    ] = None
    """Steps of the finite horizon (--method exact only)."""
    time_limit: float = 60.0
    """Seconds for the anytime solvers (hsvi, pbvi, perseus), and for exact (when it runs
    out, exact reports the values of the horizon reached, with status max_iterations)."""
    epsilon: float = 1e-3
    """hsvi: the gap at b0 to reach."""
    out: Annotated[
        str | None, tyro.conf.arg(metavar="FILE.npz", help_behavior_hint="(default: not saved)")
    ] = None
    """solve: save the alpha-vector policy (.npz, or .alpha for pomdp-solve's format)."""
    policy: Annotated[
        str | None,
        tyro.conf.arg(metavar="FILE.npz", help_behavior_hint="(default: solve with --method)"),
    ] = None
    """simulate: the policy to run (.npz or .alpha)."""
    simulations: int = 1000
    """pomcp: simulations per decision."""
    max_depth: int = 100
    """pomcp: deepest step of a simulation (tree walk and rollout)."""
    rollout: Literal["random", "mdp"] = "random"
    """pomcp: actions past the tree: uniformly random, or the MDP policy for the simulated
    state (sees the state: optimistic about information, far better than random on tiger)."""
    reuse_tree: Annotated[bool, tyro.conf.arg(help_behavior_hint="(default: reuse on)")] = True
    """pomcp simulate: start each search from the subtree the last one grew under the real
    action and observation (Silver & Veness); --no-reuse-tree rebuilds it every step."""
    episodes: int = 1000
    """simulate: episodes."""
    steps: Annotated[
        int | None,
        tyro.conf.arg(
            metavar="INT",
            help_behavior_hint="(default: until gamma^t * reward range / (1 - gamma) < 0.01)",
        ),
    ] = None
    """simulate: steps per episode."""
    seed: int = 0
    """Random seed (sampling solvers, simulation)."""
    json: bool = False
    """Print one JSON object instead of a summary."""


def _finite(x: Any) -> Any:
    return None if x is None or not math.isfinite(x) else float(x)


def _load(args: PomdpArgs):
    from bellmax.pomdp import load_pomdp

    if not args.file.strip():
        raise ValueError("FILE.pomdp is empty: give the path of a .pomdp file.")
    try:
        return load_pomdp(args.file)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from None


#: The solvers' options and the methods that use them (--horizon: exact, checked apart).
_METHOD_OPTIONS = {
    "time_limit": ("hsvi", "pbvi", "perseus", "exact"),
    "epsilon": ("hsvi",),
    "simulations": ("pomcp",),
    "max_depth": ("pomcp",),
    "rollout": ("pomcp",),
    "reuse_tree": ("pomcp",),
}


def _words(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _check_used(args: PomdpArgs) -> None:
    """Refuse an option that this run would ignore (they were dropped silently): simulate's
    options given to solve, a solver's options given to another method, and the solver's
    given to `simulate --policy` (which runs that policy without solving)."""
    from bellmax.cli.main import changed_fields

    def option(name: str) -> str:
        if name == "reuse_tree":  # a flag: name the spelling that was given
            return "--reuse-tree" if args.reuse_tree else "--no-reuse-tree"
        return "--" + name.replace("_", "-")

    given = changed_fields(args, ["method", "horizon", *_METHOD_OPTIONS, "episodes", "steps"])
    if args.action == "solve":
        for name in ("episodes", "steps", "reuse_tree"):
            if name in given:
                raise ValueError(
                    f"{option(name)} is for simulate; solve does not run episodes (bellmax "
                    f"pomdp simulate FILE {option(name)} ... runs the policy)."
                )
    if args.action == "simulate" and args.policy is not None:
        solver = [option(n) for n in ("method", "horizon", *_METHOD_OPTIONS) if n in given]
        if solver:
            which = _words(tuple(solver))
            raise ValueError(
                f"{which} {'sets' if len(solver) == 1 else 'set'} up a solver, but simulate "
                f"--policy runs the saved policy without solving; drop {which}, or drop "
                "--policy to solve with --method first."
            )
        return
    for name, methods in _METHOD_OPTIONS.items():
        if name in given and args.method not in methods:
            raise ValueError(
                f"{option(name)} is used by --method {_words(methods)}, not {args.method}; drop it."
            )


def _check(args: PomdpArgs) -> None:
    from bellmax.core.checks import check_int, check_number
    from bellmax.core.io import check_output_path

    _check_used(args)  # first: an ignored option is named as such, not by its value
    if args.method == "exact" and args.horizon is None:
        raise ValueError("--method exact needs --horizon H (the number of steps to plan for).")
    if args.horizon is not None:
        if args.method != "exact":
            raise ValueError(f"--horizon is only used by --method exact, not {args.method}.")
        check_int(args.horizon, "--horizon", low=1)
    check_number(args.time_limit, "--time-limit", low=0, low_open=True)
    check_number(args.epsilon, "--epsilon", low=0, low_open=True)
    check_int(args.episodes, "--episodes", low=2)
    if args.steps is not None:
        check_int(args.steps, "--steps", low=1)
    if args.action == "solve" and args.policy is not None:
        raise ValueError("--policy is for simulate; solve makes a policy (save it with --out).")
    if args.action == "simulate" and args.out is not None:
        raise ValueError("--out is for solve; simulate prints returns only.")
    check_int(args.simulations, "--simulations", low=1)
    check_int(args.max_depth, "--max-depth", low=1)
    if args.method == "pomcp" and args.out is not None:
        raise ValueError(
            "--method pomcp plans online and has no alpha vectors to save; drop --out."
        )
    if args.out is not None:
        if not args.out.endswith((".npz", ".alpha")):
            raise ValueError(f"--out {args.out!r} must end in .npz or .alpha.")
        check_output_path(args.out)
        _check_replace(args.out)


def _check_replace(out: str) -> None:
    """Refuse to replace an existing file that is not an alpha-vector policy (a solve may
    replace its own earlier policy, or an empty file)."""
    from bellmax.pomdp.policyio import load_alpha, load_policy

    p = Path(out).expanduser()
    if not p.is_file() or p.stat().st_size == 0:
        return
    try:
        (load_alpha if out.endswith(".alpha") else load_policy)(p)
    except ValueError:
        kind = ".alpha" if out.endswith(".alpha") else ".npz"
        raise ValueError(
            f"--out {out!r} exists and is not a bellmax POMDP policy ({kind} of alpha vectors); "
            "solve will not replace it: choose another path, or remove the file first."
        ) from None


def _solve(pomdp, args: PomdpArgs) -> tuple[dict[str, Any], Any]:
    from bellmax import pomdp as P

    t0 = time.perf_counter()
    upper = value = None
    status = "converged"
    extra: dict[str, Any] = {}
    if args.method in ("qmdp", "fib"):
        fn = P.qmdp if args.method == "qmdp" else P.fast_informed_bound
        res = fn(pomdp)
        vectors, status = res.vectors, res.status_name
        upper = float(np.max(np.asarray(vectors.alphas) @ np.asarray(pomdp.b0)))
    elif args.method == "exact":
        res = P.exact_value_iteration(pomdp, args.horizon, time_limit=args.time_limit)
        done = len(res.values)
        if done == 0:
            raise ValueError(
                f"--method exact did not finish its first stage in --time-limit "
                f"{args.time_limit:g} s; raise --time-limit (the exact solver is for small "
                "problems: hsvi or pbvi bound larger ones)."
            )
        vectors = res.policy
        value = upper = float(res.values[-1])
        if done < args.horizon:  # the time ran out: the values of the horizon reached
            status = "max_iterations"
        extra = {
            "horizon": args.horizon,
            "horizon_reached": done,
            "values_by_horizon": res.values.tolist(),
        }
    elif args.method in ("pbvi", "perseus"):
        fn = P.pbvi if args.method == "pbvi" else P.perseus
        res = fn(pomdp, time_limit=args.time_limit, seed=args.seed)
        vectors, value, status = res.vectors, res.value, res.status_name
        extra = {"iterations": res.iterations, "beliefs": len(res.beliefs)}
    elif args.method == "pomcp":
        import jax

        from bellmax.pomdp.belief import x64

        with x64():
            tree = jax.jit(_pomcp(pomdp, args).search)(pomdp.b0, jax.random.key(args.seed))
        n = np.asarray(tree.action_visits[0])
        q = np.where(n > 0, np.asarray(tree.q[0]), -np.inf)
        vectors = None
        value = float(q.max())  # a Monte Carlo estimate at b0, not a bound
        extra = {
            "simulations": args.simulations,
            "action": pomdp.actions[int(q.argmax())],
            "tree_nodes": int(tree.num_nodes),
            "rollout": args.rollout,
            # the value is what the tree's returns average to, with the rollouts below it:
            # random ones on Tiger give about -500 at 1000 simulations, against V*(b0) = 19.37
            "value_note": f"POMCP's Monte Carlo estimate at b0 ({args.rollout} rollouts), "
            "not a bound",
        }
    else:
        res = P.hsvi(pomdp, epsilon=args.epsilon, time_limit=args.time_limit)
        vectors, value, upper, status = (
            res.vectors,
            res.lower_bound,
            res.upper_bound,
            res.status_name,
        )
        extra = {
            "trials": res.trials,
            "upper_points": len(res.upper_values),
            "epsilon": args.epsilon,
        }
    out = {
        "file": args.file,
        "method": args.method,
        "num_states": pomdp.num_states,
        "num_actions": pomdp.num_actions,
        "num_observations": pomdp.num_observations,
        "gamma": pomdp.gamma,
        "value": _finite(value),
        "upper_bound": _finite(upper),
        "gap": _finite(upper - value) if value is not None and upper is not None else None,
        "alpha_vectors": 0 if vectors is None else vectors.size,
        "status": status,
        "seconds": time.perf_counter() - t0,
        **extra,
    }
    finite = vectors is None or bool(np.all(np.isfinite(np.asarray(vectors.alphas))))
    if not finite or any(x is not None and not math.isfinite(x) for x in (value, upper)):
        out["status"] = "diverged"  # NaN or infinite values: never converged, never saved
    return out, vectors


def _pomcp(pomdp, args: PomdpArgs):
    from bellmax.pomdp import POMCPConfig, make_pomcp

    return make_pomcp(
        pomdp,
        POMCPConfig(
            num_simulations=args.simulations,
            max_depth=args.max_depth,
            rollout=args.rollout,
            reuse_tree=args.reuse_tree,
        ),
    )


def solve_pomdp_file(args: PomdpArgs) -> dict[str, Any]:
    """`bellmax pomdp solve`: load, solve, save the policy if asked; the JSON-ready summary."""
    from bellmax.pomdp.policyio import save_alpha, save_policy

    _check(args)
    pomdp = _load(args)
    out, vectors = _solve(pomdp, args)
    if args.out is not None and out["status"] != "diverged":
        if args.out.endswith(".alpha"):
            save_alpha(args.out, vectors)
        else:
            save_policy(args.out, vectors, action_names=pomdp.actions)
        out["out"] = args.out
    return out


def _default_steps(pomdp) -> int:
    R = np.asarray(pomdp.R)
    with np.errstate(over="ignore"):  # rewards near float64's limit: refused by the caller
        spread = float(R.max() - R.min()) / max(1e-12, 1.0 - pomdp.gamma)
    if pomdp.gamma >= 1.0 or spread <= 0.01:
        return 100
    if not math.isfinite(spread):
        return 10_000
    return int(min(10_000, max(1, math.ceil(math.log(0.01 / spread) / math.log(pomdp.gamma)))))


def simulate_pomdp_file(args: PomdpArgs) -> dict[str, Any]:
    """`bellmax pomdp simulate`: the policy's discounted returns on the model."""
    import jax

    from bellmax.pomdp import simulate, simulate_pomcp
    from bellmax.pomdp.model import check_reward_scale
    from bellmax.pomdp.policyio import load_alpha, load_policy

    _check(args)
    pomdp = _load(args)
    steps = args.steps if args.steps is not None else _default_steps(pomdp)
    # `simulate` refuses these rewards too; refused here first, before a solve is wasted.
    check_reward_scale(pomdp, "bellmax pomdp simulate", horizon=steps)
    out: dict[str, Any] = {"file": args.file}
    if args.policy is not None:
        loader = load_alpha if args.policy.endswith(".alpha") else load_policy
        vectors = loader(args.policy, num_states=pomdp.num_states, num_actions=pomdp.num_actions)
        out["policy"] = args.policy
    elif args.method == "pomcp":  # POMCP's own agent: its particle belief, not the exact one
        vectors = _pomcp(pomdp, args)
        out |= {
            "method": "pomcp",
            "simulations": args.simulations,
            "belief": "particles",
            "rollout": args.rollout,
            "reuse_tree": args.reuse_tree,
        }
    else:
        solved, vectors = _solve(pomdp, args)
        out |= {
            "method": args.method,
            "value": solved["value"],
            "upper_bound": solved["upper_bound"],
            # a solve that stopped short makes the command exit 1, as `solve` does
            "status": solved["status"],
        }
        if "horizon_reached" in solved:  # exact: how far it got (the message names it)
            out["horizon_reached"] = solved["horizon_reached"]
        if solved["status"] == "diverged":  # NaN or infinite values: nothing to simulate
            return out | {"mean_discounted_return": None, "stderr": None}
    t0 = time.perf_counter()
    key = jax.random.key(args.seed)
    if args.policy is None and args.method == "pomcp":
        res = simulate_pomcp(vectors, key, episodes=args.episodes, steps=steps)
    else:
        res = simulate(pomdp, vectors, key, episodes=args.episodes, steps=steps)
    out |= {
        "episodes": args.episodes,
        "steps": steps,
        "seed": args.seed,
        "mean_discounted_return": float(res.mean_discounted_return),
        "stderr": float(res.stderr),
        "seconds": time.perf_counter() - t0,
    }
    return out


def _summary(out: dict[str, Any], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for k, v in out.items():
        if isinstance(v, list):
            v = ", ".join(f"{x:.6g}" for x in v)
        elif isinstance(v, float):
            v = f"{v:.6g}"
        table.add_row(k.replace("_", " "), "n/a" if v is None else str(v))
    Console(soft_wrap=False).print(table)


def run_pomdp(args: PomdpArgs) -> int:
    """`bellmax pomdp solve|simulate`: print the result; exit 0, or 1 if a solver stopped short."""
    if args.action == "solve":
        out = solve_pomdp_file(args)
    else:
        out = simulate_pomdp_file(args)
    if args.json:
        print(json.dumps(out, allow_nan=False))
    else:
        _summary(out, f"bellmax pomdp {args.action} {args.file}")
    status = out.get("status", "converged")
    if status != "converged":
        print(f"bellmax: {_stopped_short(args, out)}", file=sys.stderr)
    return 0 if status == "converged" else 1


def _stopped_short(args: PomdpArgs, out: dict[str, Any]) -> str:
    """One line: why the solver stopped before converging, and which option to change."""
    m = f"--method {args.method}"
    if out["status"] == "diverged":
        kept = f"; nothing was written to --out {args.out}" if args.out is not None else ""
        return (
            f"{m} diverged: its values became NaN or infinite{kept}. Rescale the rewards if "
            "their discounted sums come near float64's limit, or try another --method."
        )
    if args.method == "exact":
        return (
            f"{m} stopped at --time-limit {args.time_limit:g} s after {out['horizon_reached']} "
            f"of --horizon {args.horizon} steps (the values are those of that horizon); raise "
            "--time-limit or lower --horizon."
        )
    what = "the gap at b0 reached --epsilon" if args.method == "hsvi" else "converging"
    loosen = " or --epsilon" if args.method == "hsvi" else ""
    if args.method in ("hsvi", "pbvi", "perseus") and out["seconds"] >= args.time_limit:
        return (
            f"{m} stopped at --time-limit {args.time_limit:g} s before {what} (the bounds "
            f"reached are still valid); raise --time-limit{loosen}."
        )
    near_one = (
        "; a discount close to 1 needs more iterations than the cap: lower the file's "
        "`discount:` if the problem allows, or use --method hsvi or pbvi"
    )
    hint = {"hsvi": "; raise --epsilon", "qmdp": near_one, "fib": near_one}.get(args.method, "")
    return (
        f"{m} stopped at its iteration cap before {what} (the bounds reached are still "
        f"valid){hint}."
    )


def tour_section(ctx: Any) -> None:
    """The tour's POMDP section: the tiger problem solved exactly, bounded, and simulated."""
    import jax

    from bellmax import pomdp as P

    p = P.tiger()
    exact = P.exact_value_iteration(p, 5)
    res = P.hsvi(p, epsilon=ctx.size(1e-3, 1e-2), time_limit=60.0)
    sim = P.simulate(p, res.vectors, ctx.key("pomdp"), episodes=ctx.size(4000, 500), steps=240)
    jax.block_until_ready(sim.returns)
    ctx.report.section(
        "POMDPs",
        "The tiger problem (Kaelbling, Littman & Cassandra 1998): the tiger is behind one of two "
        "doors; listening costs 1 and is right 85% of the time, opening the tiger's door costs "
        "100, the other pays 10 and starts over; gamma 0.95. Exact value iteration with "
        "incremental pruning gives the finite-horizon values at the uniform belief "
        "(published: -1.0, -1.95, 2.3098, 1.7955, 2.7631); the HSVI-style anytime solver "
        "brackets the infinite-horizon value V* = 19.3714 between a lower bound (alpha vectors) "
        "and a sawtooth upper bound, and simulating its policy earns the lower bound.",
    )
    ctx.report.table(
        ["quantity", "value"],
        [
            *[[f"V_{h}(uniform), exact", v] for h, v in enumerate(exact.values.tolist(), start=1)],
            ["HSVI lower bound", res.lower_bound],
            ["HSVI upper bound", res.upper_bound],
            ["gap", res.gap],
            ["trials / seconds", f"{res.trials} / {res.seconds:.1f}"],
            [
                "simulated return (stderr)",
                f"{float(sim.mean_discounted_return):.3f} ({float(sim.stderr):.3f})",
            ],
        ],
    )
    # the report says every number of it is in summary.json too
    summary = ctx.report.summary
    summary["pomdp_tiger_exact_values_by_horizon"] = [float(v) for v in exact.values.tolist()]
    summary["pomdp_tiger_hsvi_lower_bound"] = float(res.lower_bound)
    summary["pomdp_tiger_hsvi_upper_bound"] = float(res.upper_bound)
    summary["pomdp_tiger_hsvi_gap"] = float(res.gap)
    summary["pomdp_tiger_hsvi_trials"] = int(res.trials)
    summary["pomdp_tiger_simulated_return"] = float(sim.mean_discounted_return)
    summary["pomdp_tiger_simulated_return_stderr"] = float(sim.stderr)
