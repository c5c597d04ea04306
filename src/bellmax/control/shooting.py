"""Single shooting: optimise the control sequence directly through the rolled-out dynamics.

The decision variables are the controls `U = (u_0 .. u_{T-1})`; the states follow by
rolling out `x_{t+1} = dynamics(x_t, u_t, t, params)` from `x0`, and the total cost

    J(U) = sum_t cost(x_t, u_t, t, params) + terminal_cost(x_T, params)

is minimised by a first-order or quasi-Newton method from optax, with the gradient by
reverse-mode differentiation through the rollout (the adjoint method; Betts 2010, Practical
Methods for Optimal Control, section 3.2; Nocedal & Wright 2006, chapter 7 for L-BFGS).
Control bounds are kept by one of

- `"tanh"`: `u = mid + half * tanh(w)`, optimising the unconstrained `w` (smooth; the bounds
  are never reached exactly);
- `"clip"`: `u = clip(w, lower, upper)` in the rollout (zero gradient once saturated);
- `"project"`: projected gradient, `w <- clip(w - step, lower, upper)` after each update
  (sound for gradient descent and Adam; with L-BFGS the projection spoils its curvature
  pairs, so it may stall short of the optimum: the status then says `stalled`).

Shooting cannot impose a terminal state; put the goal in `terminal_cost`. The whole solve is
one `jax.lax.while_loop` under `jax.jit`, stopped when the gradient norm with respect to the
optimised variables (`w`: with `"tanh"` that is `dJ/dU * (1 - u^2)` in normalised units, small
for a control pressed against its bound whatever `dJ/dU`) or the relative change of the cost
falls below its tolerance.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from bellmax.control.problems import Problem, check_functions, zero_terminal_cost
from bellmax.core.caches import jit_per_static
from bellmax.core.checks import check_choice, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields

__all__ = [
    "BOUND_METHODS",
    "OPTIMIZERS",
    "ShootingResult",
    "rollout",
    "shooting",
    "shooting_from_problem",
]

OPTIMIZERS = ("lbfgs", "adam", "sgd")
"""Optimisers `shooting` knows (optax.lbfgs, optax.adam, optax.sgd)."""
BOUND_METHODS = ("tanh", "clip", "project")
"""How `shooting` keeps the controls inside their bounds."""


@struct.dataclass
class ShootingResult(StatusFields):
    """What `shooting` returns."""

    __repr__ = summary_repr

    X: jax.Array
    """States `[T + 1, n]` of the rollout under `U`."""
    U: jax.Array
    """Controls `[T, m]` (inside the bounds)."""
    cost: jax.Array
    """Total cost `J(U)`."""
    iterations: jax.Array
    """Optimiser steps taken."""
    status: jax.Array
    """A `Status` code: converged (gradient norm <= gtol), stalled (relative cost change
    <= rtol with a larger gradient), max_iterations or diverged."""
    grad_norm: jax.Array
    """Norm of the (projected, for `"project"`) gradient of `J` with respect to the optimised
    variables at the returned controls."""


def rollout(
    dynamics: Callable[..., jax.Array], x0: jax.Array, U: jax.Array, params: Any = None
) -> jax.Array:
    """States `[T + 1, n]` from `x0` under controls `U` `[T, m]`.

    Args:
      dynamics: `dynamics(x, u, t, params) -> x_next`.
      x0: initial state `[n]`.
      U: controls `[T, m]`.
      params: model parameters.

    Returns:
      `X` with `X[0] = x0`.
    """

    x0 = jnp.asarray(x0)

    def step(x, tu):
        t, u = tu
        x_next = jnp.asarray(dynamics(x, u, t, params)).astype(x.dtype)
        return x_next, x_next

    _, X = jax.lax.scan(step, x0, (jnp.arange(U.shape[0]), U))
    return jnp.concatenate([x0[None], X], axis=0)


def _controls(W, lo, hi, bound: str):
    if bound == "tanh":
        mid = jnp.where(jnp.isfinite(lo) & jnp.isfinite(hi), 0.5 * (lo + hi), 0.0)
        half = jnp.where(jnp.isfinite(lo) & jnp.isfinite(hi), 0.5 * (hi - lo), 1.0)
        return jnp.where(jnp.isfinite(lo) & jnp.isfinite(hi), mid + half * jnp.tanh(W), W)
    return jnp.clip(W, lo, hi)


def _to_latent(U, lo, hi, bound: str):
    if bound == "tanh":
        both = jnp.isfinite(lo) & jnp.isfinite(hi)
        mid = jnp.where(both, 0.5 * (lo + hi), 0.0)
        half = jnp.where(both, 0.5 * (hi - lo), 1.0)
        r = jnp.clip((U - mid) / half, -1 + 1e-6, 1 - 1e-6)
        return jnp.where(both, jnp.arctanh(r), U)
    return jnp.clip(U, lo, hi)


class _Knobs(NamedTuple):
    """The numeric settings (traced, so new values reuse the compilation)."""

    learning_rate: jax.Array
    max_iterations: jax.Array
    gtol: jax.Array
    rtol: jax.Array


class _Carry(NamedTuple):
    """The optimiser's loop state."""

    W: jax.Array  # the optimised variables (latent controls)
    opt_state: Any
    value: jax.Array  # J at W
    it: jax.Array
    status: jax.Array
    gnorm: jax.Array  # the stationarity measure at W


@functools.partial(jit_per_static, static_argnums=(0, 1, 2, 3, 4))
def _solve(dynamics, cost, terminal_cost, optimizer, bound, x0, U0, lo, hi, params, knobs: _Knobs):
    learning_rate, max_iterations, gtol, rtol = (
        knobs.learning_rate,
        knobs.max_iterations,
        knobs.gtol,
        knobs.rtol,
    )

    def J_of_U(U):
        X = rollout(dynamics, x0, U, params)
        t = jnp.arange(U.shape[0])
        run = jax.vmap(cost, in_axes=(0, 0, 0, None))(X[:-1], U, t, params)
        # NaN where a state is not finite, though the costs may not see it (X[-1] with no
        # terminal cost): L-BFGS's line search shortens such a step; any other ends the
        # solve as DIVERGED at the last finite iterate.
        return jnp.where(
            jnp.all(jnp.isfinite(X)), jnp.sum(run) + terminal_cost(X[-1], params), jnp.nan
        )

    def J(W):
        return J_of_U(_controls(W, lo, hi, bound))

    if optimizer == "lbfgs":
        opt = optax.lbfgs()
    elif optimizer == "adam":
        opt = optax.adam(learning_rate)
    else:
        opt = optax.sgd(learning_rate)
    opt = optax.with_extra_args_support(opt)
    if optimizer == "lbfgs":  # reuses the value and gradient of its line search
        value_and_grad = optax.value_and_grad_from_state(J)
    else:

        def value_and_grad(W, state):
            return jax.value_and_grad(J)(W)

    def measure_grad(W, g):
        if bound == "project":  # projected-gradient stationarity: ||W - P(W - g)||
            return jnp.linalg.norm(W - jnp.clip(W - g, lo, hi))
        return jnp.linalg.norm(g)

    W0 = _to_latent(U0, lo, hi, bound)
    v0, g0 = jax.value_and_grad(J)(W0)

    def body(s: _Carry) -> _Carry:
        W, opt_state, v, it, gnorm = s.W, s.opt_state, s.value, s.it, s.gnorm
        value, grad = value_and_grad(W, state=opt_state)
        updates, opt_state = opt.update(grad, opt_state, W, value=value, grad=grad, value_fn=J)
        W_new = optax.apply_updates(W, updates)
        if bound == "project":
            W_new = jnp.clip(W_new, lo, hi)
        v_new, g_new = jax.value_and_grad(J)(W_new)
        gn = measure_grad(W_new, g_new)
        finite = jnp.isfinite(v_new) & jnp.all(jnp.isfinite(W_new))
        # Converged: gradient small. Stalled: the cost no longer changes but the gradient is
        # not small (e.g. projected L-BFGS steps cut back by the bounds).
        small = gn <= gtol
        flat = jnp.abs(v - v_new) <= rtol * jnp.maximum(1.0, jnp.abs(v_new))
        it = it + 1
        status = jnp.where(
            ~finite,
            Status.DIVERGED,
            jnp.where(
                small,
                Status.CONVERGED,
                jnp.where(
                    flat,
                    Status.STALLED,
                    jnp.where(it >= max_iterations, Status.MAX_ITERATIONS, Status.RUNNING),
                ),
            ),
        ).astype(jnp.int32)
        W_new = jnp.where(finite, W_new, W)
        v_new = jnp.where(finite, v_new, v)
        gn = jnp.where(finite, gn, gnorm)
        return _Carry(W_new, opt_state, v_new, it, status, gn)

    gn0 = measure_grad(W0, g0)
    status0 = jnp.where(
        ~jnp.isfinite(v0), Status.DIVERGED, jnp.where(gn0 <= gtol, Status.CONVERGED, Status.RUNNING)
    ).astype(jnp.int32)
    init = _Carry(W0, opt.init(W0), v0, jnp.asarray(0), status0, gn0)
    out = jax.lax.while_loop(lambda s: s.status == Status.RUNNING, body, init)
    U = _controls(out.W, lo, hi, bound)
    X = rollout(dynamics, x0, U, params)
    return ShootingResult(
        X=X, U=U, cost=out.value, iterations=out.it, status=out.status, grad_norm=out.gnorm
    )


def _bound(name: str, value: Any, m: int, fill: float) -> np.ndarray:
    a = np.asarray(fill if value is None else value, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(m, float(a))
    if a.shape != (m,):
        raise ValueError(
            f"{name} must be a scalar or an [m] = [{m}] vector (U0 has m = {m}), got shape "
            f"{a.shape}."
        )
    return a


def shooting(
    dynamics: Callable[..., jax.Array],
    cost: Callable[..., jax.Array],
    x0: Any,
    U0: Any,
    *,
    params: Any = None,
    terminal_cost: Callable[..., jax.Array] | None = None,
    u_lower: Any = None,
    u_upper: Any = None,
    optimizer: str = "lbfgs",
    bound: str = "tanh",
    learning_rate: float | None = None,
    max_iterations: int = 500,
    gtol: float = 1e-6,
    rtol: float = 1e-10,
    dtype: Any = jnp.float64,
) -> ShootingResult:
    """Minimise `J(U)` over the controls by single shooting (see the module docstring).

    Betts 2010, section 3.2 (shooting); Nocedal & Wright 2006, section 7.2 (L-BFGS).

    Args:
      dynamics: discrete dynamics `dynamics(x, u, t, params) -> x_next`.
      cost: running cost `cost(x, u, t, params) -> scalar`.
      x0: initial state `[n]`.
      U0: initial controls `[T, m]` (clipped into the bounds).
      params: model parameters passed to every function.
      terminal_cost: `terminal_cost(x, params) -> scalar`; default zero.
      u_lower, u_upper: control bounds `[m]` (scalars broadcast; infinite allowed).
      optimizer: `"lbfgs"` (optax.lbfgs with its zoom line search), `"adam"` or `"sgd"`.
      bound: `"tanh"`, `"clip"` or `"project"` (how the bounds are kept).
      learning_rate: step size for adam (default 0.1) and sgd (default 0.01); L-BFGS
        chooses its own by line search (must be None).
      max_iterations: optimiser steps at most.
      gtol: converged when the gradient norm is at most this.
      rtol: stalled when `|J_k - J_{k+1}| <= rtol max(1, |J_{k+1}|)` (and the gradient is not
        small).
      dtype: float64 (default; computed inside `jax.enable_x64(True)`) or float32.

    Returns:
      A `ShootingResult`.

    Raises:
      ValueError: unknown optimizer/bound method, bad shapes, crossed or NaN bounds,
        non-finite `x0`/`U0`, a non-finite cost or state at `U0`, bad tolerances.
      TypeError: a function is not callable.
    """
    check_functions({"dynamics": dynamics, "cost": cost}, terminal_cost)
    check_choice(optimizer, "optimizer", OPTIMIZERS, owner="shooting")
    check_choice(bound, "bound", BOUND_METHODS, owner="shooting")
    if optimizer == "lbfgs" and learning_rate is not None:
        raise ValueError(
            "optimizer='lbfgs' picks its step by line search; leave learning_rate=None."
        )
    if learning_rate is None:
        learning_rate = 0.1 if optimizer == "adam" else 0.01
    check_number(learning_rate, "learning_rate", owner="shooting", low=0, low_open=True)
    check_int(max_iterations, "max_iterations", owner="shooting", low=1)
    check_number(gtol, "gtol", owner="shooting", low=0)
    check_number(rtol, "rtol", owner="shooting", low=0)
    x0a = np.asarray(x0, dtype=np.float64)
    U0a = np.asarray(U0, dtype=np.float64)
    if x0a.ndim != 1:
        raise ValueError(f"x0 must be a state vector [n], got shape {x0a.shape}.")
    if U0a.ndim != 2 or U0a.shape[0] < 1:
        raise ValueError(f"U0 must be a [T, m] control sequence, got shape {U0a.shape}.")
    if not (np.isfinite(x0a).all() and np.isfinite(U0a).all()):
        raise ValueError("x0 and U0 must be finite; pass a finite initial state and guess.")
    m = U0a.shape[1]
    lo = _bound("u_lower", u_lower, m, -np.inf)
    hi = _bound("u_upper", u_upper, m, np.inf)
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("u_lower/u_upper contain NaN; use -inf/+inf for a missing bound.")
    bad = np.nonzero(lo > hi)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"u_lower > u_upper at index {i} ({lo[i]} > {hi[i]}); swap them.")
    term = zero_terminal_cost if terminal_cost is None else terminal_cost
    use64 = np.dtype(dtype) == np.float64
    ctx = jax.enable_x64(True) if use64 else jax.enable_x64(jax.config.jax_enable_x64)
    with ctx:
        dt = jnp.float64 if use64 else jnp.float32
        x0j = jnp.asarray(x0a, dt)
        U0j = jnp.clip(jnp.asarray(U0a, dt), lo, hi)
        X = rollout(dynamics, x0j, U0j, params)
        if X.shape[1:] != x0j.shape:
            raise ValueError(
                f"dynamics returned states of shape {X.shape[1:]}, expected {x0j.shape}."
            )
        run = jax.vmap(cost, in_axes=(0, 0, 0, None))(X[:-1], U0j, jnp.arange(U0j.shape[0]), params)
        if run.shape != (U0j.shape[0],):
            raise ValueError(f"cost must return a scalar per step, got shape {run.shape[1:]}.")
        J0 = float(jnp.sum(run) + term(X[-1], params))
        if not np.isfinite(J0):
            raise ValueError(
                f"the cost is non-finite ({J0}) at the initial controls; check x0, U0, params "
                "and the cost functions."
            )
        if not bool(jnp.all(jnp.isfinite(X))):
            step = int(np.argmax(~np.isfinite(np.asarray(X)).all(axis=1)))
            raise ValueError(
                f"the dynamics give a non-finite state (step {step} of {X.shape[0] - 1}) from "
                "the initial controls; check x0, U0, params and the dynamics."
            )
        knobs = _Knobs(
            learning_rate=jnp.asarray(learning_rate, dt),
            max_iterations=jnp.asarray(max_iterations),
            gtol=jnp.asarray(gtol, dt),
            rtol=jnp.asarray(rtol, dt),
        )
        return _solve(
            dynamics,
            cost,
            term,
            optimizer,
            bound,
            x0j,
            U0j,
            jnp.asarray(lo, dt),
            jnp.asarray(hi, dt),
            params,
            knobs,
        )


def shooting_from_problem(problem: Problem, U0: Any = None, **kwargs: Any) -> ShootingResult:
    """`shooting` on a `Problem` (its dynamics, costs, start, control bounds and params).

    Args:
      problem: the `Problem`.
      U0: initial controls `[T, m]`; default zeros.
      **kwargs: passed on to `shooting` (`optimizer`, `bound`, `max_iterations`, ...).

    Returns:
      A `ShootingResult`.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a bellmax.control.Problem, got {type(problem).__name__}.")
    if U0 is None:
        U0 = np.zeros((problem.horizon, problem.control_dim))
    return shooting(
        problem.dynamics,
        problem.cost,
        np.asarray(problem.x0),
        U0,
        params=problem.params,
        terminal_cost=problem.terminal_cost,
        u_lower=np.asarray(problem.u_lower),
        u_upper=np.asarray(problem.u_upper),
        **kwargs,
    )
