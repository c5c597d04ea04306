"""Direct collocation: trapezoidal and Hermite-Simpson transcriptions solved by interior point.

The continuous problem

    minimise  integral_0^T L(x, u, t) dt + phi(x(T))
    s.t.      x' = f(x, u, t),  x(0) = x_start,  x(T) = x_goal (optional),
              x_lower <= x <= x_upper,  u_lower <= u <= u_upper

is transcribed on `N` equal intervals of length `h = T / N` (Betts 2010, Practical Methods
for Optimal Control, sections 4.5-4.6; Kelly 2017, SIAM Review 59(4), sections 3-4):

- `"trapezoidal"`: knot variables `(x_k, u_k)`, `k = 0..N`; defects
  `x_{k+1} - x_k - h/2 (f_k + f_{k+1}) = 0`; cost by the trapezoid rule
  `sum_k h/2 (L_k + L_{k+1})`.
- `"hermite_simpson"` (compressed form): knot variables `(x_k, u_k)` plus the midpoint control
  `u_{k+1/2}`; the midpoint state is interpolated,
  `x_{k+1/2} = (x_k + x_{k+1})/2 + h/8 (f_k - f_{k+1})`, and the defects are
  `x_{k+1} - x_k - h/6 (f_k + 4 f_{k+1/2} + f_{k+1}) = 0`; cost by Simpson's rule
  `sum_k h/6 (L_k + 4 L_{k+1/2} + L_{k+1})`.

State bounds hold at the knots, control bounds at knots and midpoints. The boundary states
are fixed variables. The NLP is solved by `bellmax.control.nlp.solve_staged_nlp` (a
primal-dual interior-point method with JAX derivatives compressed by the stage structure and
a block-tridiagonal KKT solve), in float64.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.integrators import step_size
from bellmax.control.nlp import NLPOptions, NLPResult, solve_staged_nlp
from bellmax.control.problems import Problem, check_functions
from bellmax.core.checks import check_choice, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import StatusFields

__all__ = ["METHODS", "CollocationResult", "collocation", "collocation_from_problem"]

METHODS = ("trapezoidal", "hermite_simpson")
"""The transcriptions `collocation` knows."""


@struct.dataclass
class CollocationResult(StatusFields):
    """What `collocation` returns."""

    __repr__ = summary_repr

    X: jax.Array
    """States at the knots `[N + 1, n]`."""
    U: jax.Array
    """Controls at the knots `[N + 1, m]`."""
    U_mid: jax.Array
    """Controls at the interval midpoints `[N, m]` (Hermite-Simpson's variables; the knot
    average for the trapezoidal method)."""
    times: jax.Array
    """Knot times `[N + 1]`."""
    cost: jax.Array
    """The transcribed objective at the solution (quadrature of `L` plus the terminal cost)."""
    iterations: jax.Array
    """Interior-point iterations."""
    status: jax.Array
    """A `Status` code (converged, max_iterations, diverged, stalled)."""
    constraint_violation: jax.Array
    """Largest absolute defect (boundary states are exact: they are fixed variables)."""
    dual_infeasibility: jax.Array
    """Largest absolute gradient of the Lagrangian over the free variables."""
    costates: jax.Array
    """Multipliers of the defects `[N, n]` (discrete costate estimates)."""
    nlp: NLPResult
    """The solver's full result (multipliers, KKT error, barrier parameter)."""


# ----------------------------------------------------------------------------- transcription
class _Knots(NamedTuple):
    """The NLP variables of one transcription, split, with the model at the knots."""

    h: jax.Array  # interval length
    p: Any  # the user's params
    X: jax.Array  # knot states [N + 1, n]
    U: jax.Array  # knot controls [N + 1, m]
    Um: jax.Array  # midpoint controls [N + 1, m] (Hermite-Simpson; the last one unused)
    t: jax.Array  # knot times [N + 1]
    F: jax.Array  # f at the knots [N + 1, n]
    L: jax.Array  # the running cost at the knots [N + 1]


@functools.lru_cache(maxsize=64)
def _transcription(f, running_cost, terminal_cost, method: str, n: int, m: int):
    """`(objective, constraints)` of the NLP in stage form; `params = (h, user_params)`."""

    def vf(X, U, t, p):
        return jax.vmap(f, in_axes=(0, 0, 0, None))(X, U, t, p)

    def vL(X, U, t, p):
        costs = jax.vmap(running_cost, in_axes=(0, 0, 0, None))(X, U, t, p)
        if np.ndim(costs) != 1:  # (at trace time: a vector cost was summed silently)
            raise ValueError(
                f"running_cost(x, u, t, params) must return a scalar, got shape "
                f"{np.shape(costs)[1:]}; sum the terms yourself if that is the cost you mean."
            )
        return costs

    def terminal(x, p):
        if terminal_cost is None:
            return jnp.zeros((), x.dtype)
        cost = terminal_cost(x, p)
        if np.shape(cost) != ():
            raise ValueError(
                f"terminal_cost(x, params) must return a scalar, got shape {np.shape(cost)}."
            )
        return cost

    def knots(Z, params) -> _Knots:
        h, p = params
        X, U, Um = Z[:, :n], Z[:, n : n + m], Z[:, n + m :]
        t = h * jnp.arange(Z.shape[0], dtype=Z.dtype)
        return _Knots(h, p, X, U, Um, t, vf(X, U, t, p), vL(X, U, t, p))

    def midpoint(k: _Knots):
        """Hermite-Simpson's interpolated midpoint states and times."""
        Xc = 0.5 * (k.X[:-1] + k.X[1:]) + k.h / 8.0 * (k.F[:-1] - k.F[1:])
        tc = k.t[:-1] + 0.5 * k.h
        return Xc, tc

    def objective(Z, params):
        k = knots(Z, params)
        if method == "trapezoidal":
            run = 0.5 * k.h * jnp.sum(k.L[:-1] + k.L[1:])
        else:
            Xc, tc = midpoint(k)
            Lc = vL(Xc, k.Um[:-1], tc, k.p)
            run = k.h / 6.0 * jnp.sum(k.L[:-1] + 4.0 * Lc + k.L[1:])
        return run + terminal(k.X[-1], k.p)

    def constraints(Z, params):
        k = knots(Z, params)
        X, F = k.X, k.F
        if method == "trapezoidal":
            d = X[1:] - X[:-1] - 0.5 * k.h * (F[:-1] + F[1:])
        else:
            Xc, tc = midpoint(k)
            Fc = vf(Xc, k.Um[:-1], tc, k.p)
            d = X[1:] - X[:-1] - k.h / 6.0 * (F[:-1] + 4.0 * Fc + F[1:])
        return jnp.concatenate([d, jnp.zeros_like(d[:1])], axis=0)

    return objective, constraints


# ----------------------------------------------------------------------------- validation
def _vec(name: str, value: Any, size: int, fill: float) -> np.ndarray:
    if value is None:
        return np.full(size, fill)
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(size, float(a))
    if a.shape != (size,):
        raise ValueError(f"{name} must have shape [{size}], got shape {a.shape}.")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN: {a}; use -inf/+inf for a missing bound.")
    return a


def _check_box(lo_name: str, lo: np.ndarray, hi_name: str, hi: np.ndarray) -> None:
    bad = np.nonzero(lo > hi)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{lo_name} > {hi_name} at index {i} ({lo[i]} > {hi[i]}); swap them or fix the bound."
        )


def _check_inside(name: str, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    bad = np.nonzero((x < lo) | (x > hi))[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{name}[{i}] = {x[i]} lies outside the state bounds [{lo[i]}, {hi[i]}]: the "
            "problem is infeasible; widen x_lower/x_upper or move the boundary state."
        )


def collocation(
    f: Callable[..., jax.Array],
    running_cost: Callable[..., jax.Array],
    x_start: Any,
    duration: float,
    num_intervals: int,
    *,
    x_goal: Any = None,
    method: str = "trapezoidal",
    params: Any = None,
    terminal_cost: Callable[..., jax.Array] | None = None,
    x_lower: Any = None,
    x_upper: Any = None,
    u_lower: Any = None,
    u_upper: Any = None,
    control_dim: int | None = None,
    X_init: Any = None,
    U_init: Any = None,
    options: NLPOptions | None = None,
) -> CollocationResult:
    """Solve an optimal control problem by direct collocation (see the module docstring).

    Betts 2010, sections 4.5-4.6; Kelly 2017, sections 3-4.

    Args:
      f: continuous dynamics `f(x, u, t, params) -> dx/dt` (`t` in seconds).
      running_cost: `L(x, u, t, params) -> scalar`, integrated over time.
      x_start: initial state `[n]` (fixed).
      duration: the horizon `T` in seconds (> 0).
      num_intervals: `N >= 2` collocation intervals.
      x_goal: final state `[n]` (fixed); None leaves it free (use `terminal_cost`).
      method: `"trapezoidal"` or `"hermite_simpson"`.
      params: pytree passed to `f`, `running_cost` and `terminal_cost`.
      terminal_cost: `phi(x, params) -> scalar`; default zero.
      x_lower, x_upper: state bounds `[n]` (scalars broadcast; infinite allowed).
      u_lower, u_upper: control bounds `[m]`.
      control_dim: `m`, needed only when neither control bound nor `U_init` is given.
      X_init: initial guess for the states `[N + 1, n]`; default the straight line from
        `x_start` to `x_goal` (or `x_start` held).
      U_init: initial guess for the knot controls `[N + 1, m]`; default zeros (clipped).
      options: interior-point `NLPOptions`.

    Returns:
      A `CollocationResult`; check `status_name` ("converged").

    Raises:
      ValueError: unknown method, bad sizes or shapes, crossed bounds, a boundary state
        outside the state bounds, non-finite guesses, non-finite cost or dynamics at the
        initial guess.
      TypeError: a function is not callable.
    """
    check_functions({"f": f, "running_cost": running_cost}, terminal_cost)
    check_choice(method, "method", METHODS, owner="collocation")
    N = check_int(num_intervals, "num_intervals", owner="collocation", low=2)
    T = check_number(duration, "duration", owner="collocation", low=0, low_open=True)
    xs = np.asarray(x_start, dtype=np.float64)
    if xs.ndim != 1:
        raise ValueError(f"x_start must be a vector [n], got shape {xs.shape}.")
    if not np.isfinite(xs).all():
        raise ValueError(f"x_start must be finite, got {xs}.")
    n = xs.shape[0]
    xg = None
    if x_goal is not None:
        xg = np.asarray(x_goal, dtype=np.float64)
        if xg.shape != (n,):
            raise ValueError(f"x_goal must have x_start's shape ({n},), got {xg.shape}.")
        if not np.isfinite(xg).all():
            raise ValueError(f"x_goal must be finite, got {xg}.")
    m = control_dim
    for b in (u_lower, u_upper):
        if m is None and b is not None and np.ndim(b) == 1:
            m = int(np.shape(b)[0])
    if m is None and U_init is not None and np.ndim(U_init) == 2:
        m = int(np.shape(U_init)[1])
    if m is None:
        if u_lower is not None or u_upper is not None:
            m = 1
        else:
            raise ValueError(
                "the control dimension is unknown: pass u_lower/u_upper, U_init or control_dim."
            )
    xlo, xhi = _vec("x_lower", x_lower, n, -np.inf), _vec("x_upper", x_upper, n, np.inf)
    ulo, uhi = _vec("u_lower", u_lower, m, -np.inf), _vec("u_upper", u_upper, m, np.inf)
    _check_box("x_lower", xlo, "x_upper", xhi)
    _check_box("u_lower", ulo, "u_upper", uhi)
    _check_inside("x_start", xs, xlo, xhi)
    if xg is not None:
        _check_inside("x_goal", xg, xlo, xhi)

    # Initial guess.
    s = np.linspace(0.0, 1.0, N + 1)[:, None]
    if X_init is None:
        X0 = xs[None] + s * ((xg if xg is not None else xs) - xs)[None]
    else:
        X0 = np.asarray(X_init, dtype=np.float64)
        if X0.shape != (N + 1, n):
            raise ValueError(f"X_init must have shape [N + 1, n] = [{N + 1}, {n}], got {X0.shape}.")
    if U_init is None:
        U0 = np.zeros((N + 1, m))
    else:
        U0 = np.asarray(U_init, dtype=np.float64)
        if U0.shape != (N + 1, m):
            raise ValueError(f"U_init must have shape [N + 1, m] = [{N + 1}, {m}], got {U0.shape}.")
    if not (np.isfinite(X0).all() and np.isfinite(U0).all()):
        raise ValueError("X_init / U_init contain non-finite values; pass finite guesses.")
    U0 = np.clip(U0, ulo, uhi)
    Um0 = 0.5 * (U0[:-1] + U0[1:])
    Um0 = np.concatenate([Um0, Um0[-1:]], axis=0)

    hs = method == "hermite_simpson"
    Z0 = np.concatenate([X0, U0] + ([Um0] if hs else []), axis=1)
    lower = np.concatenate(
        [np.broadcast_to(xlo, (N + 1, n)), np.broadcast_to(ulo, (N + 1, m))]
        + ([np.broadcast_to(ulo, (N + 1, m))] if hs else []),
        axis=1,
    ).copy()
    upper = np.concatenate(
        [np.broadcast_to(xhi, (N + 1, n)), np.broadcast_to(uhi, (N + 1, m))]
        + ([np.broadcast_to(uhi, (N + 1, m))] if hs else []),
        axis=1,
    ).copy()
    lower[0, :n] = upper[0, :n] = Z0[0, :n] = xs
    if xg is not None:
        lower[-1, :n] = upper[-1, :n] = Z0[-1, :n] = xg
    if hs:  # the last stage's midpoint control is unused: fix it.
        lower[-1, n + m :] = upper[-1, n + m :] = Z0[-1, n + m :]
    mask = np.ones((N + 1, n), dtype=bool)
    mask[-1] = False

    objective, constraints = _transcription(f, running_cost, terminal_cost, method, n, m)
    h = T / N
    with jax.enable_x64(True):
        res = solve_staged_nlp(
            objective,
            constraints,
            Z0,
            lower=lower,
            upper=upper,
            params=(jnp.asarray(h), params),
            constraint_mask=mask,
            options=options,
        )
        Z = res.z
        X, U = Z[:, :n], Z[:, n : n + m]
        U_mid = Z[:-1, n + m :] if hs else 0.5 * (U[:-1] + U[1:])
        times = h * jnp.arange(N + 1, dtype=Z.dtype)
    return CollocationResult(
        X=X,
        U=U,
        U_mid=U_mid,
        times=times,
        cost=res.objective,
        iterations=res.iterations,
        status=res.status,
        constraint_violation=res.constraint_violation,
        dual_infeasibility=res.dual_infeasibility,
        costates=res.y[:-1],
        nlp=res,
    )


@functools.lru_cache(maxsize=64)
def _rate_cost(cost: Callable[..., jax.Array], dt: Any) -> Callable[..., jax.Array]:
    """The per-step cost as a rate, `cost / dt` (cached so the solver compiles once)."""

    def rate(x, u, t, p):
        return cost(x, u, t, p) / step_size(dt, p)

    return rate


def collocation_from_problem(
    problem: Problem,
    *,
    method: str = "trapezoidal",
    num_intervals: int | None = None,
    running_cost: Callable[..., jax.Array] | None = None,
    fix_goal: bool = True,
    **kwargs: Any,
) -> CollocationResult:
    """`collocation` on a `Problem`'s continuous model, bounds, start and goal.

    The horizon is `problem.horizon * dt`. The running cost defaults to the problem's
    per-step cost divided by `dt` (a rate; `t` is passed as the knot time).

    Args:
      problem: a `Problem` with a continuous model (`f` and `dt`).
      method: `"trapezoidal"` or `"hermite_simpson"`.
      num_intervals: `N`; default `problem.horizon`.
      running_cost: `L(x, u, t, params)`; default `problem.cost / dt`.
      fix_goal: impose `x(T) = problem.goal` (otherwise only the terminal cost acts).
      **kwargs: passed on to `collocation` (`X_init`, `U_init`, `options`, ...).

    Returns:
      A `CollocationResult`.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a bellmax.control.Problem, got {type(problem).__name__}.")
    if problem.f is None or problem.dt is None:
        raise ValueError(
            f"problem {problem.name!r} has no continuous model (f/dt); build it with f and dt."
        )
    dt = float(step_size(problem.dt, problem.params))
    L = _rate_cost(problem.cost, problem.dt) if running_cost is None else running_cost

    return collocation(
        problem.f,
        L,
        np.asarray(problem.x0),
        problem.horizon * dt,
        problem.horizon if num_intervals is None else num_intervals,
        x_goal=np.asarray(problem.goal) if fix_goal else None,
        method=method,
        params=problem.params,
        terminal_cost=None if fix_goal else problem.terminal_cost,
        x_lower=np.asarray(problem.x_lower),
        x_upper=np.asarray(problem.x_upper),
        u_lower=np.asarray(problem.u_lower),
        u_upper=np.asarray(problem.u_upper),
        **kwargs,
    )
