"""`bellmax solve`: solve a tabular MDP stored as `.npz` by dynamic programming.

    bellmax solve mdp.npz --method value-iteration --tol 1e-8 --json
    bellmax solve mdp.npz --method evaluate --policy policy.npy --json

The file format is `bellmax.tabular.io` (dense `P` or sparse `P_indices`/`P_values`, `R`,
optional `gamma`). With `--json` one JSON object is printed: `values`, `policy` (for
`evaluate`: the given one), `iterations`, `residual`, `error_bound` (null when no bound is
known, gamma = 1), `status`, `seconds` and the problem's size. Non-finite numbers are written
as null. The exit status is 0 when the solver converged, 1 when it stopped otherwise
(iteration limit, divergence), 2 for bad input.
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

from bellmax.core.checks import check_int

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = ["METHODS", "SolveArgs", "run_solve", "solve_file"]

Method = Literal[
    "evaluate",
    "value-iteration",
    "policy-iteration",
    "modified-policy-iteration",
    "soft-value-iteration",
]
#: Largest --max-iterations: the solvers count iterations in 32-bit integers.
MAX_ITERATIONS = 2**31 - 1
#: The `--method` choices.
METHODS = (
    "evaluate",
    "value-iteration",
    "policy-iteration",
    "modified-policy-iteration",
    "soft-value-iteration",
)


@dataclasses.dataclass(frozen=True)
class SolveArgs:
    """Solve a tabular MDP stored as .npz (dense P or sparse P_indices/P_values, R, gamma)."""

    file: Annotated[str, tyro.conf.Positional, tyro.conf.arg(metavar="FILE.npz")]
    """The MDP file (.npz)."""
    method: Method = "value-iteration"
    """Solver to run."""
    gamma: Annotated[
        float | None,
        tyro.conf.arg(metavar="FLOAT", help_behavior_hint="(default: the file's gamma)"),
    ] = None
    """Discount in [0, 1]; overrides the file's (required if the file has none)."""
    tol: float = 1e-8
    """Accuracy: value iteration and its variants guarantee ||V - V*|| <= tol for gamma < 1."""
    temperature: float = 1.0
    """Temperature tau > 0 of soft-value-iteration."""
    policy: Annotated[
        str | None,
        tyro.conf.arg(metavar="POLICY.npy", help_behavior_hint="(default: none, solve for V*)"),
    ] = None
    """Policy to evaluate (.npy): (S,) action indices or (S, A) probabilities."""
    evaluation: Literal["auto", "direct", "jacobi", "gauss-seidel", "krylov"] = "auto"
    """How `evaluate` solves the linear system (auto: direct if dense, krylov if sparse)."""
    sweeps: int = 10
    """Evaluation sweeps per round of modified-policy-iteration."""
    max_iterations: int = 100_000
    """Iteration limit."""
    json: bool = False
    """Print one JSON object instead of a summary."""


def _finite_or_none(x: Any) -> Any:
    """Nested lists of floats with NaN/inf replaced by None (strict JSON)."""
    if isinstance(x, list):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _check_input_file(path: str, what: str) -> None:
    """Refuse an empty path or a directory where a file is read."""
    if not path.strip():
        raise ValueError(f"{what} is empty: give the path of a file.")
    if Path(path).is_dir():
        raise ValueError(f"{what} {path!r} is a directory: give the path of a file in it.")


def _no_such_file(path: str, message: str) -> str:
    """The missing-file message: `load_mdp`'s (`message`: how to write an MDP file), with the
    command that exports a tabular environment's exact MDP (the one named, when `path` is such
    an id)."""
    from bellmax.envs import registry  # the registry alone: no JAX, no environment module

    tabular = [i for i in registry.registered() if registry.spec(i).tabular]
    env_id = path if path in tabular else "GridWorld4x4-v0"
    out = f"{env_id.split('-')[0].lower()}.npz" if path in tabular else path
    export = (
        'python -c "import bellmax; from bellmax.tabular import save_mdp; '
        f'env, p = bellmax.make({env_id!r}); save_mdp({out!r}, env.tabular_mdp(p))"'
    )
    if path in tabular:
        return (
            f"{path!r} is a bellmax environment, not a file: bellmax solve reads an MDP "
            f"stored as .npz. Export this one's exact MDP with {export}, then run "
            f"`bellmax solve {out}`."
        )
    return (
        f"{message} From the shell, the tabular environments ({', '.join(tabular)}) export "
        f"theirs, e.g. {export}."
    )


def _load_policy(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise ValueError(
            f"--policy: no such file {path!r}; save one with numpy.save(path, policy)."
        )
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(
            f"--policy: {p.name} is not a readable .npy array ({type(e).__name__}); save the "
            "policy with numpy.save(path, policy)."
        ) from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(
            f"--policy: {p.name} is an .npz archive; give a single .npy array of shape (S,) or (S, A)."
        )
    return arr


def solve_file(args: SolveArgs) -> dict[str, Any]:
    """Load `args.file`, run the chosen solver and return the JSON-ready summary.

    Raises:
      ValueError / InvalidMDPError: bad file, policy, option values.
    """
    from bellmax.tabular import dp
    from bellmax.tabular.io import load_mdp

    if args.method == "evaluate" and args.policy is None:
        raise ValueError("--method evaluate needs --policy POLICY.npy (the policy to evaluate).")
    if args.method != "evaluate" and args.policy is not None:
        raise ValueError(f"--policy is only used by --method evaluate, not {args.method}.")
    if args.method != "evaluate" and args.evaluation != "auto":
        raise ValueError(
            f"--evaluation is only used by --method evaluate, not {args.method}; drop it."
        )
    if args.gamma is not None and not (math.isfinite(args.gamma) and 0.0 <= args.gamma <= 1.0):
        raise ValueError(f"--gamma {args.gamma} must be a number in [0, 1].")
    check_int(args.max_iterations, "--max-iterations", low=1, high=MAX_ITERATIONS)
    if args.method == "modified-policy-iteration":
        check_int(args.sweeps, "--sweeps", low=1)
    _check_input_file(args.file, "FILE.npz")
    if args.policy is not None:
        _check_input_file(args.policy, "--policy")
    try:
        mdp = load_mdp(args.file, gamma=args.gamma)
    except FileNotFoundError as e:  # load_mdp's message says how to write one
        raise ValueError(_no_such_file(args.file, str(e))) from None
    except OSError as e:  # unreadable (permissions, a directory ...)
        raise ValueError(f"cannot read {args.file!r}: {e.strerror or e}.") from None
    common = {"tol": args.tol, "max_iterations": args.max_iterations}
    t0 = time.perf_counter()
    if args.method == "evaluate":
        policy = _load_policy(args.policy)
        result = dp.evaluate_policy(mdp, policy, method=args.evaluation, **common)
    elif args.method == "value-iteration":
        result = dp.value_iteration(mdp, **common)
    elif args.method == "policy-iteration":
        result = dp.policy_iteration(
            mdp, tol=args.tol, max_iterations=min(args.max_iterations, 10_000)
        )
    elif args.method == "modified-policy-iteration":
        result = dp.modified_policy_iteration(mdp, m=args.sweeps, **common)
    else:
        result = dp.soft_value_iteration(mdp, temperature=args.temperature, **common)
    values = np.asarray(result.values, dtype=np.float64)
    seconds = time.perf_counter() - t0
    return {
        "file": str(args.file),
        "method": args.method,
        "num_states": mdp.num_states,
        "num_actions": mdp.num_actions,
        "gamma": float(mdp.gamma),
        "status": result.status_name,
        "iterations": int(result.iterations),
        "residual": _finite_or_none(float(result.residual)),
        "error_bound": _finite_or_none(float(result.error_bound)),
        "seconds": seconds,
        "values": _finite_or_none(values.tolist()),
        "policy": _finite_or_none(np.asarray(result.policy).tolist()),
    }


def _summary(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    def num(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3g}"

    table = Table(title=f"bellmax solve {out['file']}", title_justify="left", show_header=False)
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    vals = [v for v in out["values"] if v is not None]
    status = out["status"]
    colour = "green" if status == "converged" else "red"
    rows = [
        ("method", out["method"]),
        (
            "problem",
            f"{out['num_states']} states x {out['num_actions']} actions, gamma {out['gamma']:g}",
        ),
        ("status", f"[{colour}]{status}[/{colour}]"),
        ("iterations", str(out["iterations"])),
        ("residual", num(out["residual"])),
        ("error bound", num(out["error_bound"])),
        ("seconds", f"{out['seconds']:.3f}"),
        ("values", f"min {min(vals):.6g}, max {max(vals):.6g}" if vals else "non-finite"),
    ]
    head = ", ".join("n/a" if v is None else f"{v:.4g}" for v in out["values"][:8])
    rows.append(("first values", head + (", ..." if len(out["values"]) > 8 else "")))
    for k, v in rows:
        table.add_row(k, v)
    Console(soft_wrap=False).print(table)


def run_solve(args: SolveArgs) -> int:
    """`bellmax solve`: print the result; exit 0 if converged, 1 otherwise, 2 for bad input."""
    out = solve_file(args)
    if args.json:
        print(json.dumps(out, allow_nan=False))
    else:
        _summary(out)
    if out["status"] != "converged" and out["gamma"] >= 1.0:
        print(
            "bellmax: with gamma = 1 the values are finite only if the policies reach an "
            "absorbing zero-reward (terminal) state from every state; make the goal states "
            "absorbing with reward 0, or use a gamma below 1.",
            file=sys.stderr,
        )
    elif out["status"] == "max_iterations":
        print(
            f"bellmax: {args.method} stopped at --max-iterations {args.max_iterations} before "
            f"reaching --tol {args.tol:g} (residual {out['residual']}); raise --max-iterations "
            "or loosen --tol.",
            file=sys.stderr,
        )
    elif out["status"] != "converged":
        print(f"bellmax: {args.method} stopped with status {out['status']}.", file=sys.stderr)
    return 0 if out["status"] == "converged" else 1
