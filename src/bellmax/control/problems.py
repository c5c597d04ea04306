"""Optimal control problems as plain functions, and the standard ones (cart-pole, pendulum).

A `Problem` bundles what every solver in `bellmax.control` needs (DESIGN.md rule 5):

- `dynamics(x, u, t, params) -> x_next`: discrete dynamics, `t` the integer step index;
- `cost(x, u, t, params) -> scalar` for `t = 0 .. horizon-1` and
  `terminal_cost(x, params) -> scalar` at `t = horizon`;
- `x0`, `horizon`, the control box `[u_lower, u_upper]` (entries may be infinite), the
  state box `[x_lower, x_upper]` (infinite by default; only direct methods use it) and the
  model's `params` pytree (physical constants, e.g. `CartPoleParams`);
- for direct methods (shooting, collocation): the continuous vector field
  `f(x, u, t, params) -> dx/dt`, the time step `dt` (a float or a callable `params -> dt`),
  the integrator that turned `f` into `dynamics` (`"euler"` or `"rk4"`; `"custom"` when
  `dynamics` is not an integrated `f`) and the `goal` state.

The total cost of controls `U = (u_0 .. u_{T-1})` from `x0` is
`J = sum_t cost(x_t, u_t, t, params) + terminal_cost(x_T, params)`
(Bertsekas 2017, Dynamic Programming and Optimal Control I, section 1.1).

The standard problems use a quadratic cost around the goal state `g`:
`cost = dt * (0.5 (x - g)' Q (x - g) + 0.5 R u^2)` and
`terminal_cost = 0.5 (x - g)' Q_f (x - g)`, with diagonal `Q`, `Q_f` given by the
constructors' `q` and `q_final` and the scalar `R` by `r`. By default the angle enters
unwrapped, so the goal `theta = 0` is the upright position reached by the shorter swing
from `pi`; `wrap_angle=True` wraps the angle error to `[-pi, pi)` (for MPC on a real
system, whose measured angle may wind up by multiples of 2 pi).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.integrators import INTEGRATORS, discretize, step_size
from bellmax.core.caches import jit_per_static
from bellmax.core.checks import check_choice, check_int
from bellmax.core.status import Status  # re-exported: bellmax.control.problems.Status
from bellmax.envs.cartpole import CartPoleParams, cartpole_derivatives
from bellmax.envs.pendulum import PendulumParams, angle_normalize, pendulum_step

__all__ = [
    "Problem",
    "QuadraticCost",
    "QuadraticTerminalCost",
    "Status",
    "cartpole_balance",
    "cartpole_swingup",
    "env_problem",
    "make_problem",
    "pendulum_swingup",
    "quadratic_cost",
    "total_cost",
]


@struct.dataclass
class Problem:
    """A finite-horizon optimal control problem (see the module docstring).

    Callables, the horizon, `dt` and the names are static (part of the jit cache key);
    `x0`, `goal`, the bounds and `params` are pytree leaves, so a problem can be passed
    through `jax.jit` and `jax.vmap` (e.g. over initial states or physical parameters).
    """

    dynamics: Callable[..., jax.Array] = struct.field(pytree_node=False)
    """Discrete dynamics `dynamics(x, u, t, params) -> x_next`."""
    cost: Callable[..., jax.Array] = struct.field(pytree_node=False)
    """Running cost `cost(x, u, t, params) -> scalar`."""
    terminal_cost: Callable[..., jax.Array] = struct.field(pytree_node=False)
    """Terminal cost `terminal_cost(x, params) -> scalar`."""
    x0: jax.Array
    """Initial state `[n]`."""
    goal: jax.Array
    """Goal state `[n]` (the terminal boundary condition for direct methods)."""
    u_lower: jax.Array
    """Control lower bounds `[m]` (may be `-inf`)."""
    u_upper: jax.Array
    """Control upper bounds `[m]` (may be `inf`)."""
    x_lower: jax.Array
    """State lower bounds `[n]` (may be `-inf`; used by direct methods)."""
    x_upper: jax.Array
    """State upper bounds `[n]` (may be `inf`; used by direct methods)."""
    params: Any
    """Model parameters passed to `dynamics`, `cost`, `terminal_cost` and `f`."""
    horizon: int = struct.field(pytree_node=False, default=100)
    """Number of control steps `T`."""
    f: Callable[..., jax.Array] | None = struct.field(pytree_node=False, default=None)
    """Continuous dynamics `f(x, u, t, params) -> dx/dt` (None when only discrete exists)."""
    dt: Any = struct.field(pytree_node=False, default=None)
    """Time step: a float, a callable `params -> dt`, or None (no continuous model)."""
    integrator: str = struct.field(pytree_node=False, default="custom")
    """How `dynamics` came from `f`: `"euler"`, `"rk4"` or `"custom"`."""
    name: str = struct.field(pytree_node=False, default="problem")
    """A short name for reports."""

    @property
    def state_dim(self) -> int:
        """`n`, the state dimension."""
        return int(self.x0.shape[-1])

    @property
    def control_dim(self) -> int:
        """`m`, the control dimension."""
        return int(self.u_lower.shape[-1])

    def time_step(self, params: Any = None) -> Any:
        """The time step for `params` (default: the problem's own)."""
        if self.dt is None:
            raise ValueError(
                f"problem {self.name!r} has no time step (dt=None); build it with f and dt."
            )
        return step_size(self.dt, self.params if params is None else params)

    def replace_params(self, params: Any) -> Problem:
        """The same problem with other model parameters (e.g. identified ones)."""
        return self.replace(params=params)


def total_cost(problem: Problem, U: jax.Array, x0: jax.Array | None = None) -> jax.Array:
    """`J(U)`: roll the dynamics out from `x0` (default the problem's) and sum the costs.

    Args:
      problem: the problem.
      U: controls `[T, m]`.
      x0: optional initial state `[n]`.

    Returns:
      The scalar total cost.
    """
    x = problem.x0 if x0 is None else x0
    p = problem.params

    def body(x, tu):
        t, u = tu
        return problem.dynamics(x, u, t, p), problem.cost(x, u, t, p)

    xT, c = jax.lax.scan(body, x, (jnp.arange(U.shape[0]), U))
    return jnp.sum(c) + problem.terminal_cost(xT, p)


def float_dtype(value: Any = None) -> np.dtype:
    """The float dtype control computes in: `value`'s where it is a float array, else JAX's
    default float (float32, or float64 under `jax_enable_x64`)."""
    if value is not None:
        dtype = jnp.asarray(value).dtype
        if jnp.issubdtype(dtype, jnp.floating):
            return dtype
    return jax.dtypes.canonicalize_dtype(np.float64)


def _vector(name: str, value: Any, n: int | None, fill: float | None = None) -> jax.Array:
    """A problem's vector in JAX's default float: float32, or float64 where x64 is on when
    the problem is built (so a float64 solver is handed the x0 it was given, not its float32
    rounding: pi as float32 is off by 8.7e-8)."""
    dtype = float_dtype()
    if value is None:
        if fill is None or n is None:
            raise ValueError(f"{name} is required.")
        return jnp.full((n,), fill, dtype)
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0 and n is not None:
        a = np.full((n,), float(a))
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        want = f"[{n}]" if n is not None else "1-D"
        raise ValueError(f"{name} must have shape {want}, got shape {a.shape}; pass a vector.")
    if np.isnan(a).any():
        raise ValueError(f"{name} contains NaN: {a}; pass finite values (or +-inf for bounds).")
    return jnp.asarray(a, dtype)


def _check_dt(dt: Any) -> None:
    """A number given as the time step must be finite and positive (a callable, or None,
    takes it from the parameters)."""
    if isinstance(dt, int | float | np.floating | np.integer) and not isinstance(dt, bool):
        if not (np.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a finite positive time step, got {dt!r}.")


def make_problem(
    dynamics: Callable[..., jax.Array],
    cost: Callable[..., jax.Array],
    x0: Any,
    horizon: int,
    *,
    terminal_cost: Callable[..., jax.Array] | None = None,
    u_lower: Any = None,
    u_upper: Any = None,
    control_dim: int | None = None,
    x_lower: Any = None,
    x_upper: Any = None,
    goal: Any = None,
    params: Any = None,
    f: Callable[..., jax.Array] | None = None,
    dt: Any = None,
    integrator: str = "custom",
    name: str = "problem",
) -> Problem:
    """A validated `Problem` from plain functions.

    Args:
      dynamics: `dynamics(x, u, t, params) -> x_next`.
      cost: `cost(x, u, t, params) -> scalar`.
      x0: initial state `[n]`.
      horizon: number of control steps `T >= 1`.
      terminal_cost: `terminal_cost(x, params)`; default zero.
      u_lower, u_upper: control bounds `[m]` (scalars broadcast); default unbounded.
      control_dim: `m`, needed only when neither bound is given.
      x_lower, x_upper: state bounds `[n]`; default unbounded.
      goal: goal state `[n]`; default zeros.
      params: model parameters.
      f, dt, integrator: the continuous model, for direct methods.
      name: a short name.

    Returns:
      The `Problem`.

    Raises:
      TypeError: a non-callable function.
      ValueError: wrong shapes, `u_lower > u_upper`, a bad horizon, or a non-finite cost
        or next state at `x0`.
    """
    check_functions({"dynamics": dynamics, "cost": cost}, terminal_cost)
    horizon = check_int(horizon, "horizon", owner="make_problem", low=1)
    check_choice(integrator, "integrator", (*INTEGRATORS, "custom"), owner="make_problem")
    x0v = _vector("x0", x0, None)
    if not np.isfinite(np.asarray(x0v)).all():
        raise ValueError(f"x0 must be finite, got {np.asarray(x0v)}.")
    n = x0v.shape[0]
    if goal is not None and np.shape(goal) != (n,):
        raise ValueError(
            f"x0 has {n} entries but the state has {int(np.size(goal))} (the goal's size): "
            "give x0 one entry per state component."
        )
    _check_dt(dt)
    if control_dim is None:
        for b in (u_lower, u_upper):
            if b is not None and np.ndim(b) == 1:
                control_dim = int(np.shape(b)[0])
                break
        else:
            control_dim = 1 if (u_lower is not None or u_upper is not None) else None
    if control_dim is None:
        raise ValueError("give u_lower/u_upper or control_dim so the control dimension is known.")
    lo = _vector("u_lower", u_lower, control_dim, -jnp.inf)
    hi = _vector("u_upper", u_upper, control_dim, jnp.inf)
    check_bounds("u_lower", lo, "u_upper", hi)
    xlo = _vector("x_lower", x_lower, n, -jnp.inf)
    xhi = _vector("x_upper", x_upper, n, jnp.inf)
    check_bounds("x_lower", xlo, "x_upper", xhi)
    g = _vector("goal", goal, n, 0.0)
    term = terminal_cost if terminal_cost is not None else zero_terminal_cost
    problem = Problem(
        dynamics=dynamics,
        cost=cost,
        terminal_cost=term,
        x0=x0v,
        goal=g,
        u_lower=lo,
        u_upper=hi,
        x_lower=xlo,
        x_upper=xhi,
        params=params,
        horizon=horizon,
        f=f,
        dt=dt,
        integrator=integrator,
        name=name,
    )
    check_problem_at_x0(problem)
    return problem


def check_functions(
    functions: dict[str, Any], terminal_cost: Any = None, *, args: str = "x, u, t, params"
) -> None:
    """Raise TypeError unless every function is callable (`terminal_cost` may be None).

    Args:
      functions: name -> function, each called as `name(args)`.
      terminal_cost: the optional `terminal_cost(x, params)`.
      args: the arguments the functions take, for the message.
    """
    for name, fn in functions.items():
        if not callable(fn):
            raise TypeError(f"{name} must be a callable {name}({args}), got {fn!r}.")
    if terminal_cost is not None and not callable(terminal_cost):
        raise TypeError(
            f"terminal_cost must be a callable terminal_cost(x, params) -> scalar, got "
            f"{terminal_cost!r}."
        )


def zero_terminal_cost(x: jax.Array, params: Any) -> jax.Array:
    """The terminal cost of a problem without one: `0` (the default of every solver)."""
    return jnp.zeros((), x.dtype)


def check_bounds(lo_name: str, lo: Any, hi_name: str, hi: Any) -> None:
    """Raise ValueError when some `lo > hi` (host-side check of concrete bounds)."""
    lo_a, hi_a = np.asarray(lo), np.asarray(hi)
    bad = np.nonzero(lo_a > hi_a)[0] if lo_a.ndim else np.nonzero(np.atleast_1d(lo_a > hi_a))[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{lo_name} > {hi_name} at index {i} ({np.atleast_1d(lo_a)[i]} > "
            f"{np.atleast_1d(hi_a)[i]}); each lower bound must be <= its upper bound."
        )


@functools.partial(jit_per_static, static_argnums=(0, 1, 2))
def _probe(dynamics, cost, terminal_cost, x0, u, params):
    return dynamics(x0, u, 0, params), cost(x0, u, 0, params), terminal_cost(x0, params)


def check_problem_at_x0(problem: Problem) -> None:
    """Raise ValueError if the cost or the next state is non-finite at `x0` and a feasible `u`."""
    u = np.clip(np.zeros(problem.u_lower.shape), problem.u_lower, problem.u_upper)
    x1, c, cf = _probe(
        problem.dynamics, problem.cost, problem.terminal_cost, problem.x0, u, problem.params
    )
    x1, c, cf = np.asarray(x1), np.asarray(c), np.asarray(cf)
    if x1.shape != tuple(problem.x0.shape):
        raise ValueError(
            f"dynamics(x0, u, 0, params) has shape {x1.shape}, expected the state's "
            f"{tuple(problem.x0.shape)}; dynamics must return the next state."
        )
    if c.shape != () or cf.shape != ():
        raise ValueError(
            f"cost and terminal_cost must return scalars, got shapes {c.shape} and {cf.shape}."
        )
    if not (np.isfinite(x1).all() and np.isfinite(c) and np.isfinite(cf)):
        raise ValueError(
            f"non-finite value at x0={np.asarray(problem.x0)} with u={np.asarray(u)}: "
            f"next state {x1}, cost {c}, terminal cost {cf}; check x0, params and the cost."
        )


def _error(x: jax.Array, goal: tuple[float, ...], wrap: tuple[int, ...]) -> jax.Array:
    e = x - jnp.asarray(goal, x.dtype)
    if wrap:
        idx = jnp.asarray(wrap)
        e = e.at[idx].set(angle_normalize(e[idx]))
    return e


@dataclasses.dataclass(frozen=True)
class QuadraticCost:
    """`dt (0.5 e'Qe + 0.5 u'Ru)` with `e = x - goal` (diagonal weights, hashable)."""

    goal: tuple[float, ...]
    q: tuple[float, ...]
    r: tuple[float, ...]
    dt: Any
    wrap: tuple[int, ...] = ()
    """Indices of angles whose error is wrapped to `[-pi, pi)` (2 pi-periodic cost)."""

    def __call__(self, x: jax.Array, u: jax.Array, t: Any, params: Any) -> jax.Array:
        e = _error(x, self.goal, self.wrap)
        h = step_size(self.dt, params)
        q, r = jnp.asarray(self.q, x.dtype), jnp.asarray(self.r, x.dtype)
        return h * 0.5 * (jnp.sum(q * e**2) + jnp.sum(r * u**2))


@dataclasses.dataclass(frozen=True)
class QuadraticTerminalCost:
    """`0.5 e'Q_f e` with `e = x - goal` (diagonal weights, hashable)."""

    goal: tuple[float, ...]
    q_final: tuple[float, ...]
    wrap: tuple[int, ...] = ()
    """Indices of angles whose error is wrapped to `[-pi, pi)`."""

    def __call__(self, x: jax.Array, params: Any) -> jax.Array:
        e = _error(x, self.goal, self.wrap)
        return 0.5 * jnp.sum(jnp.asarray(self.q_final, x.dtype) * e**2)


def _floats(name: str, v: Any, n: int) -> tuple[float, ...]:
    a = np.atleast_1d(np.asarray(v, np.float64))
    if a.shape != (n,) or not np.isfinite(a).all() or (a < 0).any():
        raise ValueError(
            f"{name} must be {n} finite non-negative weights, got {v!r}; e.g. {(1.0,) * n}."
        )
    return tuple(float(x) for x in a)


def quadratic_cost(
    goal: Any,
    q: Sequence[float],
    r: Sequence[float] | float,
    q_final: Sequence[float],
    dt: Any,
    wrap: Sequence[int] = (),
) -> tuple[QuadraticCost, QuadraticTerminalCost]:
    """The standard costs: `dt (0.5 e'Qe + 0.5 u'Ru)` and `0.5 e'Q_f e` with `e = x - goal`.

    Args:
      goal: goal state `[n]`.
      q, r, q_final: diagonals of `Q` `[n]`, `R` `[m]` and `Q_f` `[n]`.
      dt: the time step (float or callable `params -> dt`) that weights the running cost.
      wrap: indices of angle coordinates whose error is wrapped to `[-pi, pi)`, making the
        cost 2 pi-periodic in them (as Gymnasium's Pendulum cost; useful for MPC, whose
        measured angle may have wound up).

    Returns:
      `(cost(x, u, t, params), terminal_cost(x, params))`, hashable (jit caches them).
    """
    g = tuple(float(x) for x in np.asarray(goal, np.float64).reshape(-1))
    n = len(g)
    rv = np.atleast_1d(np.asarray(r, np.float64))
    w = tuple(int(i) for i in wrap)
    if any(not 0 <= i < n for i in w):
        raise ValueError(f"wrap indices must be in [0, {n}), got {wrap!r}.")
    return (
        QuadraticCost(g, _floats("q", q, n), _floats("r", rv, rv.shape[0]), dt, w),
        QuadraticTerminalCost(g, _floats("q_final", q_final, n), w),
    )


# ---------------------------------------------------------------------- the standard problems
def _physics(params: Any, cls: type) -> Any:
    """`params`, or the default `cls()` for None; TypeError for another type."""
    p = cls() if params is None else params
    if not isinstance(p, cls):
        raise TypeError(f"params must be a {cls.__name__}, got {type(p).__name__}.")
    return p


def _about_origin(
    dynamics: Callable[..., jax.Array],
    params: Any,
    x0: Any,
    horizon: int,
    step: Any,
    weights: tuple[Any, Any, Any],
    *,
    state_dim: int,
    wrap: tuple[int, ...],
    u_max: float,
    **kwargs: Any,
) -> Problem:
    """A standard problem: the module docstring's quadratic cost about the origin (`weights`
    are `(q, r, q_final)`), controls in `[-u_max, u_max]`; `kwargs` go to `make_problem`."""
    q, r, q_final = weights
    goal = jnp.zeros(state_dim)
    cost, term = quadratic_cost(goal, q, [r], q_final, step, wrap)
    return make_problem(
        dynamics,
        cost,
        x0,
        horizon,
        terminal_cost=term,
        u_lower=[-u_max],
        u_upper=[u_max],
        goal=goal,
        params=params,
        dt=step,
        **kwargs,
    )


# ---------------------------------------------------------------------- cart-pole
def _cartpole_f(x: jax.Array, u: jax.Array, t: Any, params: CartPoleParams) -> jax.Array:
    """Continuous cart-pole dynamics; `u[0]` is the force in newtons."""
    return cartpole_derivatives(x, u[0], params)


def _cartpole_tau(params: CartPoleParams) -> Any:
    return params.tau


def _cartpole(
    params: CartPoleParams | None,
    x0: Any,
    horizon: int,
    dt: float | None,
    method: str,
    q: Sequence[float],
    r: float,
    q_final: Sequence[float],
    x_limit: float | None,
    wrap_angle: bool,
    name: str,
) -> Problem:
    p = _physics(params, CartPoleParams)
    _check_dt(dt)
    step = _cartpole_tau if dt is None else dt
    xl = -x_limit if x_limit is not None else -np.inf
    xu = x_limit if x_limit is not None else np.inf
    return _about_origin(
        discretize(_cartpole_f, step, method),
        p,
        x0,
        horizon,
        step,
        (q, r, q_final),
        state_dim=4,
        wrap=(2,) if wrap_angle else (),
        u_max=float(p.force_mag),
        x_lower=[xl, -np.inf, -np.inf, -np.inf],
        x_upper=[xu, np.inf, np.inf, np.inf],
        f=_cartpole_f,
        integrator=method,
        name=name,
    )


def cartpole_swingup(
    params: CartPoleParams | None = None,
    *,
    horizon: int = 100,
    dt: float | None = 0.03,
    method: str = "euler",
    x0: Any = (0.0, 0.0, np.pi, 0.0),
    q: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
    r: float = 0.01,
    q_final: Sequence[float] = (100.0, 10.0, 100.0, 10.0),
    x_limit: float | None = None,
    wrap_angle: bool = False,
) -> Problem:
    """Cart-pole swing-up: from hanging at rest to upright at rest at the origin.

    Gymnasium's cart-pole physics (`bellmax.envs.cartpole.cartpole_derivatives`), state
    `[x, x_dot, theta, theta_dot]` with `theta = 0` upright, control the force in newtons
    with `|F| <= params.force_mag` (10 N, as in the CasADi setup of bench/swingup.py). The
    defaults (T = 100 at dt = 0.03, 3 s) match that benchmark. Cost: see the module docstring
    (`Q = diag(q)`, `R = r`, `Q_f = diag(q_final)`, goal the origin); the default is the
    minimum-effort swing-up, `sum_t dt 0.005 F_t^2 + 0.5 (x_T - g)'Q_f (x_T - g)`, the penalty
    form of the collocation benchmark's `min int F^2 dt` with `x_T = g` imposed.

    Args:
      params: physical constants; default Gymnasium's.
      horizon: number of steps `T`.
      dt: time step; None uses `params.tau` (so it can be fitted with the physics).
      method: `"euler"` (Gymnasium's) or `"rk4"`.
      x0: initial state (default hanging at rest).
      q, r, q_final: cost weights.
      x_limit: optional bound on `|x|` for direct methods (e.g. 2.4, the track).
      wrap_angle: wrap the angle error to `[-pi, pi)` (2 pi-periodic cost, for MPC).

    Returns:
      The `Problem`.
    """
    return _cartpole(
        params, x0, horizon, dt, method, q, r, q_final, x_limit, wrap_angle, "cartpole_swingup"
    )


def cartpole_balance(
    params: CartPoleParams | None = None,
    *,
    horizon: int = 50,
    dt: float | None = None,
    method: str = "euler",
    x0: Any = (0.0, 0.0, 0.1, 0.0),
    q: Sequence[float] = (1.0, 0.1, 10.0, 0.1),
    r: float = 0.01,
    q_final: Sequence[float] = (10.0, 1.0, 100.0, 1.0),
    x_limit: float | None = None,
    wrap_angle: bool = False,
) -> Problem:
    """Cart-pole balance: bring a tilted pole (default 0.1 rad) upright at the origin.

    Same physics, state and control as `cartpole_swingup`; the default time step is the
    environment's own (`params.tau`, 0.02 s), so the plan matches CartPole-v1 step for step.

    Args:
      params: physical constants; default Gymnasium's.
      horizon: number of steps `T`.
      dt: time step; None (default) uses `params.tau`.
      method: `"euler"` or `"rk4"`.
      x0: initial state.
      q, r, q_final: cost weights.
      x_limit: optional bound on `|x|` for direct methods.
      wrap_angle: wrap the angle error to `[-pi, pi)`.

    Returns:
      The `Problem`.
    """
    return _cartpole(
        params, x0, horizon, dt, method, q, r, q_final, x_limit, wrap_angle, "cartpole_balance"
    )


# ---------------------------------------------------------------------- pendulum
def _pendulum_f(x: jax.Array, u: jax.Array, t: Any, params: PendulumParams) -> jax.Array:
    """Continuous pendulum dynamics (Gymnasium's model): `[theta_dot, theta_ddot]`."""
    th, thdot = x[0], x[1]
    acc = 3.0 * params.g / (2.0 * params.l) * jnp.sin(th) + 3.0 / (params.m * params.l**2) * u[0]
    return jnp.stack([thdot, acc])


def _pendulum_dt(params: PendulumParams) -> Any:
    return params.dt


def _pendulum_gym_dynamics(x: jax.Array, u: jax.Array, t: Any, params: PendulumParams):
    """Gymnasium's own semi-implicit step (with its torque and speed clipping)."""
    return pendulum_step(x, u[0], params)


def pendulum_swingup(
    params: PendulumParams | None = None,
    *,
    horizon: int = 100,
    dt: float | None = None,
    method: str = "gymnasium",
    x0: Any = (np.pi, 0.0),
    q: Sequence[float] = (1.0, 0.1),
    r: float = 0.01,
    q_final: Sequence[float] = (100.0, 10.0),
    wrap_angle: bool = False,
) -> Problem:
    """Pendulum swing-up: from hanging at rest (`theta = pi`) to upright at rest.

    Gymnasium's Pendulum-v1 model, state `[theta, theta_dot]` (`theta = 0` upright),
    torque bounded by `params.max_torque` (2 N m: the pendulum must pump energy).
    `method="gymnasium"` (default) uses Gymnasium's semi-implicit Euler step exactly
    (`bellmax.envs.pendulum.pendulum_step`, which clips the speed at `max_speed`); `"euler"`
    or `"rk4"` integrate the continuous model `f`. Cost: see the module docstring.

    Args:
      params: physical constants; default Gymnasium's.
      horizon: number of steps `T` (default 100, 5 s at dt = 0.05).
      dt: time step; None (default) uses `params.dt`.
      method: `"gymnasium"`, `"euler"` or `"rk4"`.
      x0: initial state.
      q, r, q_final: cost weights.
      wrap_angle: wrap the angle error to `[-pi, pi)` (Gymnasium's cost does).

    Returns:
      The `Problem`.
    """
    _check_dt(dt)
    p = _physics(params, PendulumParams)
    step = _pendulum_dt if dt is None else dt
    if method == "gymnasium":
        if dt is not None:
            p = dataclasses.replace(p, dt=dt)
            step = _pendulum_dt
        dyn, integrator = _pendulum_gym_dynamics, "custom"
    else:
        dyn, integrator = discretize(_pendulum_f, step, method), method
    return _about_origin(
        dyn,
        p,
        x0,
        horizon,
        step,
        (q, r, q_final),
        state_dim=2,
        wrap=(0,) if wrap_angle else (),
        u_max=float(p.max_torque),
        f=_pendulum_f,
        integrator=integrator,
        name="pendulum_swingup",
    )


def env_problem(
    env_id: str, model_name: str, params: Any, *, horizon: int | None = None
) -> tuple[Problem, str]:
    """The control problem `bellmax control` (and the MPC expert of `bellmax imitate`) solves
    for an environment: the task's costs and default horizon (balance 25, cart-pole swing-up
    60, pendulum swing-up 40 steps).

    Args:
      env_id: the environment id (a `SwingUp` id means the cart-pole swing-up).
      model_name: `"cartpole"` or `"pendulum"` (`bellmax.models.parametric`'s names).
      params: the model's physical parameters.
      horizon: planning horizon in steps (default: the task's).

    Returns:
      `(problem, task)`, task `"balance"` or `"swing-up"`.
    """
    if model_name == "pendulum":
        problem = pendulum_swingup(
            params, horizon=40 if horizon is None else horizon, wrap_angle=True
        )
        return problem, "swing-up"
    if "SwingUp" in env_id:
        problem = cartpole_swingup(
            params,
            dt=None,
            horizon=60 if horizon is None else horizon,
            q=(1.0, 0.1, 5.0, 0.1),
            r=0.01,
            q_final=(10.0, 1.0, 50.0, 1.0),
            wrap_angle=True,
        )
        return problem, "swing-up"
    return cartpole_balance(params, horizon=25 if horizon is None else horizon), "balance"
