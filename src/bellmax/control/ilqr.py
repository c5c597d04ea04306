"""Iterative LQR and differential dynamic programming, box-bounded controls, jitted end to end.

iLQR (Li & Todorov 2004) repeats three steps until the stopping rule holds:

1. linearise the dynamics and take second-order expansions of the costs along the current
   trajectory `(X, U)` (all derivatives by JAX);
2. a backward Riccati-like pass gives the local controller `du_t = k_t + K_t dx_t` from the
   Q-function blocks
       Q_x  = l_x + f_x'V_x'            Q_u  = l_u + f_u'V_x'
       Q_xx = l_xx + f_x'V_xx'f_x       Q_uu = l_uu + f_u'(V_xx' + mu I)f_u
       Q_ux = l_ux + f_u'(V_xx' + mu I)f_x
   with the state-space Levenberg-Marquardt regularisation `mu` and its schedule of Tassa,
   Erez & Todorov (2012), section II.F. With box bounds on `u` the step `k_t` solves the
   box QP `min_k 0.5 k'Q_uu k + Q_u'k` s.t. `u_lower <= u_t + k <= u_upper` by projected
   Newton, and the rows of `K_t` for clamped controls are zero (Tassa, Mansard & Todorov
   2014, "Control-limited differential dynamic programming", section III);
3. a forward pass `u_t = clip(U_t + alpha k_t + K_t (x_t - X_t))` for a set of step sizes
   `alpha` (evaluated in parallel, one vmapped rollout) accepts the largest `alpha` whose
   cost decrease is at least `c1` times the decrease the quadratic model predicts
   (backtracking line search, Tassa et al. 2012, section II.D).

DDP (Mayne 1966; Jacobson & Mayne 1970) differs only in step 2: it adds the second-order
terms of the dynamics contracted with the next value gradient, `V_x' . f_xx`, `V_x' . f_ux`
and `V_x' . f_uu`, to `Q_xx`, `Q_ux` and `Q_uu` (`second_order=True`; `bellmax.control.ddp`).
The contraction is the Hessian of the scalar `V_x' . f(x, u)`, computed inside the backward
pass by forward-over-reverse differentiation, so the third-order tensor `f_xx` is never formed.

Stopping: converged when the gradient norm `max_t |k_t|_inf / (1 + |U_t|_inf)` falls below
`gtol` while the model's predicted gain from that step is below `gtol * max(|cost|, 1)`, or
an accepted step changes the cost by less than `rtol` relative. `k` is the step of the
regularised `Q_uu`, so a large `mu` shrinks it below `gtol` where the optimum's controls are
small in their units; the predicted gain tells such a step from a stationary point (without
it, `x' = x + 1e5 u` stopped at its first iteration, 6x above the optimal cost). (Tassa's
rule, the gradient test only once `mu < 1e-5`, is not used: in float32 the line search fails
at the optimum, `mu` rises, and the solve would end as stalled at a stationary point.) The
default `rtol` stops once the cost has settled, which can leave the controls less settled (a
pendulum swing-up in float64: the cost 1e-7 relative above the optimum, the controls 5e-3
from it); for the controls themselves, solve under x64 with `rtol=0` and a smaller `gtol`. A
non-PD `Q_uu` or a failed line search raises `mu`; `mu > mu_max` stops with STALLED.
Non-finite candidate costs are rejected, so the returned trajectory is always the last finite
iterate; a non-finite start is reported as DIVERGED (and raises ValueError when called
eagerly).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.lqr import matmul_small, matvec_small
from bellmax.control.problems import Problem, check_bounds, check_functions, zero_terminal_cost
from bellmax.core.caches import jit_per_static
from bellmax.core.checks import check_bool, check_choice, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields

__all__ = [
    "ILQRConfig",
    "ILQRProblem",
    "ILQRResult",
    "ilqr",
    "ilqr_problem",
    "rollout",
    "solve",
]


@dataclasses.dataclass(frozen=True)
class ILQRConfig:
    """Tuning knobs of iLQR/DDP (hashable: part of the jit cache key)."""

    max_iterations: int = 100
    """Iterations (backward pass + line search attempts) at most."""
    second_order: bool = False
    """True: DDP, with the dynamics' second derivatives contracted with V_x."""
    rtol: float = 1e-6
    """Converged when an accepted step changes the cost by less than this, relative."""
    gtol: float = 1e-4
    """Converged when max_t |k_t|_inf / (1 + |U_t|_inf) is below this and the model predicts
    a gain below this times max(|cost|, 1) (the module docstring)."""
    mu_init: float = 1.0
    """Initial regularisation (Tassa et al. 2012)."""
    mu_min: float = 1e-6
    """Below this the regularisation is set to zero; a raise lifts it to this at least (> 0)."""
    mu_max: float = 1e10
    """Above this the solve stops as STALLED."""
    mu_factor: float = 1.6
    """Base factor of the regularisation schedule (delta_0)."""
    line_search_steps: int = 10
    """Step sizes tried in turn: 1, 1/2, ..., 2^-(steps-1)."""
    c1: float = 1e-4
    """Armijo constant: accept when the decrease >= c1 * the predicted decrease."""
    box_qp_iterations: int = 8
    """Projected-Newton iterations of the box QP (controls with more than one dimension)."""
    dynamics_hessian: str = "auto"
    """DDP only: "precompute" forms f_zz [T, n, n+m, n+m] once per iteration, vectorised;
    "contract" takes the Hessian of V_x'.f inside the backward pass (never forms f_zz);
    "auto" precomputes when n (n+m)^2 <= 4096."""
    unroll: int = 1
    """Unroll factor of the time scans (larger: faster on CPU, slower to compile)."""

    def __post_init__(self) -> None:
        owner = "ILQRConfig"
        for name in ("max_iterations", "line_search_steps", "box_qp_iterations", "unroll"):
            check_int(getattr(self, name), name, owner=owner, low=1)
        check_bool(self.second_order, "second_order", owner=owner)
        for name in ("rtol", "gtol", "mu_max", "c1"):
            check_number(getattr(self, name), name, owner=owner, low=0)
        # A failed step raises mu to at least mu_min: from mu = 0, a zero mu_min stays at 0.
        check_number(self.mu_min, "mu_min", owner=owner, low=0, low_open=True)
        if self.mu_max < self.mu_min:
            raise ValueError(
                f"{owner}.mu_max={self.mu_max!r} is below mu_min={self.mu_min!r}: the "
                "regularisation rises from mu_min to mu_max (then the solve stalls); raise "
                "mu_max or lower mu_min."
            )
        check_number(self.mu_factor, "mu_factor", owner=owner, low=1, low_open=True)
        check_number(self.mu_init, "mu_init", owner=owner, low=0, high=self.mu_max)
        check_choice(
            self.dynamics_hessian,
            "dynamics_hessian",
            ("auto", "precompute", "contract"),
            owner=owner,
        )


@struct.dataclass
class ILQRResult(StatusFields):
    """What `ilqr` (and `ddp`) return. `T` steps, `n` states, `m` controls."""

    __repr__ = summary_repr

    X: jax.Array
    """States `[T+1, n]` of the final trajectory."""
    U: jax.Array
    """Controls `[T, m]` of the final trajectory."""
    cost: jax.Array
    """Total cost of `(X, U)`."""
    iterations: jax.Array
    """Iterations run (backward pass + line search each)."""
    status: jax.Array
    """A `Status` value (CONVERGED, MAX_ITERATIONS, DIVERGED, STALLED)."""
    K: jax.Array
    """Feedback gains `[T, m, n]` of the last backward pass: `u = U_t + K_t (x - X_t)`."""
    k: jax.Array
    """Feedforward steps `[T, m]` of the last backward pass."""
    gradient_norm: jax.Array
    """`max_t |k_t|_inf / (1 + |U_t|_inf)` at the last backward pass."""
    mu: jax.Array
    """Regularisation at exit."""
    cost_history: jax.Array
    """Cost after each iteration `[max_iterations]` (the final cost repeated after exit)."""
    initial_cost: jax.Array
    """Cost of the initial controls."""


@struct.dataclass
class ILQRProblem:
    """What every iLQR/DDP step needs: the problem's functions, parameters and control box.

    The callables are static (part of the jit cache key); `params` and the bounds are
    pytree leaves, so one compiled solver serves other parameters and bounds.
    """

    dynamics: Callable[..., jax.Array] = struct.field(pytree_node=False)
    """Discrete dynamics `dynamics(x, u, t, params) -> x_next`."""
    cost: Callable[..., jax.Array] = struct.field(pytree_node=False)
    """Running cost `cost(x, u, t, params) -> scalar`."""
    terminal_cost: Callable[..., jax.Array] = struct.field(pytree_node=False)
    """Terminal cost `terminal_cost(x, params) -> scalar`."""
    params: Any
    """Model parameters passed to the three functions."""
    u_lower: jax.Array | None = None
    """Control lower bounds `[m]` (may be `-inf`; None only for open-loop rollouts)."""
    u_upper: jax.Array | None = None
    """Control upper bounds `[m]` (may be `inf`; None only for open-loop rollouts)."""


@struct.dataclass
class _Derivs:
    """Expansions along a trajectory in `z = [x, u]`; `F = [f_x, f_u]`."""

    F: jax.Array  # [T, n, n+m]
    lz: jax.Array  # [T, n+m]
    lzz: jax.Array  # [T, n+m, n+m]
    FuF: jax.Array  # [T, m, n+m]  f_u' F, for the regularisation mu f_u'F
    vx: jax.Array  # [n]
    vxx: jax.Array  # [n, n]
    fzz: jax.Array  # [T, n, n+m, n+m] dynamics Hessians (DDP, small systems), else [T, 0]


@struct.dataclass
class _Carry:
    """The solver's loop state: the trajectory, its expansion, the last gains, `mu`."""

    X: jax.Array
    U: jax.Array
    J: jax.Array
    d: _Derivs
    K: jax.Array
    k: jax.Array
    gnorm: jax.Array
    mu: jax.Array
    delta: jax.Array
    it: jax.Array
    status: jax.Array
    history: jax.Array


class _Gains(NamedTuple):
    """A backward pass: the controller `du = k + K dx` and the model's predicted change."""

    K: jax.Array  # [T, m, n]
    k: jax.Array  # [T, m]
    dV1: jax.Array  # first-order term of the predicted cost change
    dV2: jax.Array  # second-order term
    ok: jax.Array  # every Q_uu positive definite and the value finite


class _Value(NamedTuple):
    """The backward pass's carry: the value expansion at `t + 1` and the running sums."""

    Vx: jax.Array
    Vxx: jax.Array
    dV1: jax.Array
    dV2: jax.Array
    ok: jax.Array


class _Stage(NamedTuple):
    """The backward pass's inputs at step `t`."""

    t: jax.Array
    z: jax.Array
    lo: jax.Array  # u_lower - U_t, the box of the step k_t
    hi: jax.Array
    F: jax.Array
    lz: jax.Array
    lzz: jax.Array
    FuF: jax.Array
    fzz: jax.Array


class _Trial(NamedTuple):
    """A line-search attempt: the step size and the trajectory it gave."""

    i: jax.Array
    alpha: jax.Array
    X: jax.Array
    U: jax.Array
    J: jax.Array
    good: jax.Array


# ---------------------------------------------------------------------- rollouts
def rollout(
    dynamics: Callable[..., jax.Array],
    cost: Callable[..., jax.Array],
    terminal_cost: Callable[..., jax.Array] | None,
    x0: jax.Array,
    U: jax.Array,
    params: Any = None,
) -> tuple[jax.Array, jax.Array]:
    """Open-loop rollout of `U` from `x0`: states `[T+1, n]` and the total cost.

    Args:
      dynamics, cost, terminal_cost: the problem's functions (`terminal_cost` may be None).
      x0: initial state `[n]`.
      U: controls `[T, m]`.
      params: model parameters.

    Returns:
      `(X, J)`.
    """
    term = terminal_cost if terminal_cost is not None else zero_terminal_cost
    return _rollout(ILQRProblem(dynamics, cost, term, params), x0, U, 1)


def _rollout(problem: ILQRProblem, x0, U, unroll):
    p = problem.params

    def body(x, tu):
        t, u = tu
        return problem.dynamics(x, u, t, p), (x, problem.cost(x, u, t, p))

    T = U.shape[0]
    xT, (X, c) = jax.lax.scan(body, x0, (jnp.arange(T), U), unroll=unroll)
    J = jnp.sum(c) + problem.terminal_cost(xT, p)
    return jnp.concatenate([X, xT[None]], axis=0), J


def _forward(problem: ILQRProblem, X, U, gains: _Gains, alpha, unroll):
    """Closed-loop rollout `u_t = clip(U_t + alpha k_t + K_t (x_t - X_t))`."""
    p, lo, hi = problem.params, problem.u_lower, problem.u_upper

    def body(x, inp):
        t, x_ref, u_ref, K_t, k_t = inp
        u = jnp.clip(u_ref + alpha * k_t + matvec_small(K_t, x - x_ref), lo, hi)
        return problem.dynamics(x, u, t, p), (x, u, problem.cost(x, u, t, p))

    T = U.shape[0]
    inputs = (jnp.arange(T), X[:-1], U, gains.K, gains.k)
    xT, (Xn, Un, c) = jax.lax.scan(body, X[0], inputs, unroll=unroll)
    J = jnp.sum(c) + problem.terminal_cost(xT, p)
    return jnp.concatenate([Xn, xT[None]], axis=0), Un, J


# ---------------------------------------------------------------------- derivatives
def _on_z(fn, n):
    """`fn(x, u, t, params)` as a function of `z = [x, u]`."""

    def g(z, t, params):
        return fn(z[:n], z[n:], t, params)

    return g


def _precompute_fzz(n: int, m: int, cfg: ILQRConfig) -> bool:
    """DDP on small systems: form `f_zz` once, vectorised over time (fast on CPU)."""
    if not cfg.second_order:
        return False
    if cfg.dynamics_hessian == "auto":
        return n * (n + m) ** 2 <= 4096
    return cfg.dynamics_hessian == "precompute"


def _derivatives(problem: ILQRProblem, X, U, cfg: ILQRConfig) -> _Derivs:
    dynamics, params = problem.dynamics, problem.params
    T, n = U.shape[0], X.shape[1]
    t = jnp.arange(T)
    Z = jnp.concatenate([X[:-1], U], axis=1)
    F = jax.vmap(jax.jacfwd(_on_z(dynamics, n)), in_axes=(0, 0, None))(Z, t, params)
    cz = _on_z(problem.cost, n)
    lz = jax.vmap(jax.grad(cz), in_axes=(0, 0, None))(Z, t, params)
    lzz = jax.vmap(jax.hessian(cz), in_axes=(0, 0, None))(Z, t, params)
    FuF = jnp.einsum("tiu,tiz->tuz", F[:, :, n:], F)
    vx = jax.grad(problem.terminal_cost)(X[-1], params)
    vxx = jax.hessian(problem.terminal_cost)(X[-1], params)
    if _precompute_fzz(n, U.shape[1], cfg):
        fzz = jax.vmap(jax.hessian(_on_z(dynamics, n)), in_axes=(0, 0, None))(Z, t, params)
    else:
        fzz = jnp.zeros((T, 0), X.dtype)
    lzz = 0.5 * (lzz + jnp.swapaxes(lzz, 1, 2))
    return _Derivs(F=F, lz=lz, lzz=lzz, FuF=FuF, vx=vx, vxx=vxx, fzz=fzz)


# ---------------------------------------------------------------------- box QP
def _box_qp(H, g, lo, hi, iterations):
    """`min_k 0.5 k'Hk + g'k` s.t. `lo <= k <= hi` (Tassa et al. 2014, Algorithm 1).

    Returns `(k, free, H_free_inverse_applier_ok)`: the step, a mask of the free (not clamped)
    controls, and whether the free block of `H` is positive definite.
    """
    m = g.shape[0]
    if m == 1:
        h = H[0, 0]
        ok = h > 0
        k_unc = -g / jnp.where(ok, h, 1.0)
        k = jnp.clip(k_unc, lo, hi)
        free = (k_unc > lo) & (k_unc < hi)
        return k, free, ok
    eye = jnp.eye(m, dtype=H.dtype)

    def objective(k):
        return 0.5 * k @ H @ k + g @ k

    def free_mask(k, grad):
        clamped = ((k <= lo) & (grad > 0)) | ((k >= hi) & (grad < 0))
        return ~clamped

    alphas = 0.5 ** jnp.arange(10, dtype=H.dtype)

    def step(k, _):
        grad = g + H @ k
        free = free_mask(k, grad)
        both = free[:, None] & free[None, :]
        Hf = jnp.where(both, H, eye)
        d = -jnp.linalg.solve(Hf, jnp.where(free, grad, 0.0))
        cands = jnp.clip(k[None] + alphas[:, None] * d[None], lo, hi)
        vals = jax.vmap(objective)(cands)
        f0 = objective(k)
        good = vals <= f0 - 1e-12 * jnp.abs(f0)
        idx = jnp.argmax(good)
        k_new = jnp.where(jnp.any(good), cands[idx], k)
        return k_new, None

    k0 = jnp.clip(jnp.zeros_like(g), lo, hi)
    k, _ = jax.lax.scan(step, k0, None, length=iterations)
    free = free_mask(k, g + H @ k)
    both = free[:, None] & free[None, :]
    L = jnp.linalg.cholesky(jnp.where(both, H, eye))
    ok = jnp.all(jnp.isfinite(L)) & jnp.all(jnp.isfinite(k))
    return k, free, ok


def _solve_free(H, B, free):
    """`H_ff^{-1} B_f` on the free rows, zero on the clamped rows."""
    m = H.shape[0]
    if m == 1:
        return jnp.where(free[:, None], B / H[0, 0], 0.0)
    eye = jnp.eye(m, dtype=H.dtype)
    both = free[:, None] & free[None, :]
    Hf = jnp.where(both, H, eye)
    return jnp.where(free[:, None], jnp.linalg.solve(Hf, jnp.where(free[:, None], B, 0.0)), 0.0)


# ---------------------------------------------------------------------- backward pass
def _backward(problem: ILQRProblem, d: _Derivs, X, U, mu, cfg: ILQRConfig) -> _Gains:
    """The gains of one backward pass; `dV1 + dV2` is the model's predicted cost change.

    With `z = [x, u]`: `Q_z = l_z + F'V_x'`, `Q_zz = l_zz + F'V_xx'F` (+ `V_x' . f_zz` for
    DDP); the value update uses the unregularised blocks with the regularised gains
    (Tassa et al. 2012, eq. 11).
    """
    T, n = d.F.shape[0], d.F.shape[1]
    g = _on_z(problem.dynamics, n)
    params = problem.params
    precomputed = _precompute_fzz(n, U.shape[1], cfg)

    def step(v: _Value, s: _Stage) -> tuple[_Value, tuple[jax.Array, jax.Array]]:
        Vx, Vxx = v.Vx, v.Vxx
        Qz = s.lz + matvec_small(s.F.T, Vx)
        Qzz = s.lzz + matmul_small(s.F.T, matmul_small(Vxx, s.F))
        if precomputed:
            Qzz = Qzz + jnp.sum(Vx[:, None, None] * s.fzz, axis=0)
        elif cfg.second_order:
            Qzz = Qzz + jax.hessian(lambda zz: jnp.sum(Vx * g(zz, s.t, params)))(s.z)
        Qzz = 0.5 * (Qzz + Qzz.T)
        Qu_r = Qzz[n:] + mu * s.FuF  # regularised control rows [m, n+m]
        Quu_r = Qu_r[:, n:]
        Qx, Qu = Qz[:n], Qz[n:]
        Qxx, Qux, Quu = Qzz[:n, :n], Qzz[n:, :n], Qzz[n:, n:]
        k, free, ok_t = _box_qp(Quu_r, Qu, s.lo, s.hi, cfg.box_qp_iterations)
        K = -_solve_free(Quu_r, Qu_r[:, :n], free)
        Kt = K.T
        Vx_new = Qx + matvec_small(Kt, matvec_small(Quu, k) + Qu) + matvec_small(Qux.T, k)
        KtQux = matmul_small(Kt, Qux)
        Vxx_new = Qxx + matmul_small(matmul_small(Kt, Quu), K) + KtQux + KtQux.T
        Vxx_new = 0.5 * (Vxx_new + Vxx_new.T)
        ok = v.ok & ok_t & jnp.all(jnp.isfinite(Vxx_new)) & jnp.all(jnp.isfinite(Vx_new))
        dV1 = v.dV1 + jnp.sum(k * Qu)
        dV2 = v.dV2 + 0.5 * jnp.sum(k * matvec_small(Quu, k))
        return _Value(Vx_new, Vxx_new, dV1, dV2, ok), (K, k)

    zero = jnp.zeros((), X.dtype)
    init = _Value(d.vx, d.vxx, zero, zero, jnp.asarray(True))
    Z = jnp.concatenate([X[:-1], U], axis=1)
    lo, hi = problem.u_lower - U, problem.u_upper - U
    inputs = _Stage(jnp.arange(T), Z, lo, hi, d.F, d.lz, d.lzz, d.FuF, d.fzz)
    last, (K, k) = jax.lax.scan(step, init, inputs, reverse=True, unroll=cfg.unroll)
    return _Gains(K=K, k=k, dV1=last.dV1, dV2=last.dV2, ok=last.ok)


def _line_search(problem: ILQRProblem, X, U, J, gains: _Gains, cfg: ILQRConfig) -> _Trial:
    """Backtracking: alpha = 1, 1/2, ... until the Armijo-type test passes.

    Returns the last attempt (`good` says whether it passed).
    """

    def attempt(alpha):
        Xn, Un, Jn = _forward(problem, X, U, gains, alpha, cfg.unroll)
        expected = -(alpha * gains.dV1 + alpha**2 * gains.dV2)  # predicted decrease (>= 0)
        decrease = J - Jn
        good = (
            jnp.isfinite(Jn)
            & jnp.all(jnp.isfinite(Xn))
            & (decrease > cfg.c1 * expected)
            & (decrease >= 0)
        )
        return Xn, Un, Jn, good

    def cond(c: _Trial) -> jax.Array:
        return (~c.good) & (c.i < cfg.line_search_steps)

    def body(c: _Trial) -> _Trial:
        Xn, Un, Jn, good = attempt(c.alpha)
        return _Trial(c.i + 1, c.alpha * 0.5, Xn, Un, Jn, good)

    one = jnp.ones((), X.dtype)
    init = _Trial(jnp.asarray(0, jnp.int32), one, X, U, J, jnp.asarray(False))
    return jax.lax.while_loop(cond, body, init)


def _regularisation(c: _Carry, accepted: jax.Array, cfg: ILQRConfig):
    """`(mu, delta)` after an iteration (Tassa et al. 2012, section II.F): up on failure."""
    f0 = cfg.mu_factor
    delta_up = jnp.maximum(f0, c.delta * f0)
    mu_up = jnp.maximum(cfg.mu_min, c.mu * delta_up)
    delta_dn = jnp.minimum(1.0 / f0, c.delta / f0)
    mu_dn = jnp.where(c.mu * delta_dn > cfg.mu_min, c.mu * delta_dn, 0.0)
    return jnp.where(accepted, mu_dn, mu_up), jnp.where(accepted, delta_dn, delta_up)


# ---------------------------------------------------------------------- the solver
def solve(problem: ILQRProblem, cfg: ILQRConfig, x0: jax.Array, U0: jax.Array) -> ILQRResult:
    """iLQR/DDP on checked inputs, traceable (no host checks; `ilqr` checks, then calls this).

    For solvers built on iLQR (MPC re-plans with it inside its own `jit`).

    Args:
      problem: functions, parameters and the control box (`u_lower`, `u_upper` `[m]`).
      cfg: the `ILQRConfig` (static under `jit`).
      x0: initial state `[n]`.
      U0: initial controls `[T, m]` (clipped into the box).

    Returns:
      `ILQRResult`.
    """
    dtype = U0.dtype
    U0 = jnp.clip(U0, problem.u_lower, problem.u_upper)
    X0, J0 = _rollout(problem, x0, U0, cfg.unroll)
    T, m = U0.shape
    n = x0.shape[0]

    def linearize(X, U):
        return _derivatives(problem, X, U, cfg)

    derivs = linearize(X0, U0)
    start_ok = jnp.isfinite(J0) & jnp.all(jnp.isfinite(X0))

    def body(c: _Carry) -> _Carry:
        gains = _backward(problem, c.d, c.X, c.U, c.mu, cfg)
        ok, K, k = gains.ok, gains.K, gains.k
        gnorm = jnp.max(jnp.max(jnp.abs(k), axis=1) / (1.0 + jnp.max(jnp.abs(c.U), axis=1)))

        trial = _line_search(problem, c.X, c.U, c.J, gains, cfg)
        accepted = ok & trial.good
        X_new = jnp.where(accepted, trial.X, c.X)
        U_new = jnp.where(accepted, trial.U, c.U)
        J_new = jnp.where(accepted, trial.J, c.J)
        d_new = jax.lax.cond(accepted, linearize, lambda X, U: c.d, X_new, U_new)
        mu, delta = _regularisation(c, accepted, cfg)

        rel = (c.J - J_new) / jnp.maximum(jnp.abs(J_new), jnp.finfo(dtype).tiny)
        # A small step is a stationary point only if the model does not predict a real gain
        # from it (more than the fraction gtol of the cost): the regularisation shrinks the
        # step (a large mu against Q_uu, or controls whose optimum is small in their units),
        # and the gradient test alone then stopped at the first iteration, 6x above the
        # optimal cost, with the model predicting most of the cost away.
        gain = -(gains.dV1 + gains.dV2)
        flat = gain <= cfg.gtol * jnp.maximum(jnp.abs(c.J), 1.0)
        converged = (ok & (gnorm < cfg.gtol) & flat) | (accepted & (rel < cfg.rtol))
        status = jnp.where(
            converged,
            Status.CONVERGED,
            jnp.where(mu > cfg.mu_max, Status.STALLED, Status.RUNNING),
        ).astype(jnp.int32)
        history = c.history.at[c.it].set(J_new)
        return _Carry(
            X=X_new,
            U=U_new,
            J=J_new,
            d=d_new,
            K=jnp.where(ok, K, c.K),
            k=jnp.where(ok, k, c.k),
            gnorm=jnp.where(ok, gnorm, c.gnorm),
            mu=mu,
            delta=delta,
            it=c.it + 1,
            status=status,
            history=history,
        )

    def cond(c: _Carry) -> jax.Array:
        return (c.status == Status.RUNNING) & (c.it < cfg.max_iterations)

    init = _Carry(
        X=X0,
        U=U0,
        J=J0,
        d=derivs,
        K=jnp.zeros((T, m, n), dtype),
        k=jnp.zeros((T, m), dtype),
        gnorm=jnp.asarray(jnp.inf, dtype),
        mu=jnp.asarray(cfg.mu_init, dtype),
        delta=jnp.asarray(1.0, dtype),
        it=jnp.asarray(0, jnp.int32),
        status=jnp.where(start_ok, Status.RUNNING, Status.DIVERGED).astype(jnp.int32),
        history=jnp.full((cfg.max_iterations,), J0, dtype),
    )
    c = jax.lax.while_loop(cond, body, init)
    status = jnp.where(c.status == Status.RUNNING, Status.MAX_ITERATIONS, c.status)
    history = jnp.where(jnp.arange(cfg.max_iterations) < c.it, c.history, c.J)
    return ILQRResult(
        X=c.X,
        U=c.U,
        cost=c.J,
        iterations=c.it,
        status=status.astype(jnp.int32),
        K=c.K,
        k=c.k,
        gradient_norm=c.gnorm,
        mu=c.mu,
        cost_history=history,
        initial_cost=J0,
    )


_solve_jit = jit_per_static(solve, static_argnums=1, tree_argnums=(0,))


def _concrete(*xs: Any) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(xs))


@functools.partial(jit_per_static, tree_argnums=(0,))
def _first_step(problem: ILQRProblem, x0, U0):
    """The first next state, the first stage cost and the terminal cost at `x0` (their
    shapes are checked before any rollout)."""
    return (
        problem.dynamics(x0, U0[0], 0, problem.params),
        problem.cost(x0, U0[0], 0, problem.params),
        problem.terminal_cost(x0, problem.params),
    )


def check_model_shapes(problem: ILQRProblem, x, U, name: str, fix: str) -> None:
    """That `problem`'s dynamics map the state `x` (called `name` in messages) and the first
    control of `U` to a state of `x`'s shape, and its cost to a scalar: checked abstractly
    (`jax.eval_shape`, cached with the jit), so a mismatch is named before any rollout, where
    it would fail deep inside a scan. `fix` ends the message of a failed call."""
    try:
        x1, c0, cT = _first_step.eval_shape(problem, x, U)
    except jax.errors.TracerBoolConversionError as e:
        first = str(e).split("\n")[0]
        raise TypeError(
            f"dynamics, cost or terminal_cost branches on a traced value ({first}): they are "
            "traced by JAX, so Python's `if` on an array cannot run; write the branch with "
            "jnp.where(cond, a, b) or jax.lax.cond."
        ) from None
    except TypeError as e:
        if "positional argument" in str(e):
            raise TypeError(
                f"dynamics and cost are called as f(x, u, t, params) (t the step, params "
                f"the `params` argument), terminal_cost as f(x, params): {e}"
            ) from None
        first = str(e).split("\n")[0]
        raise ValueError(
            f"dynamics({name}, u, 0, params), cost(...) or terminal_cost({name}, params) "
            f"failed for {name} of shape {jnp.shape(x)} and u of shape {jnp.shape(U)[1:]} "
            f"({first}); {fix}."
        ) from None
    if jnp.shape(x1) != jnp.shape(x):
        raise ValueError(
            f"dynamics({name}, u, 0, params) has shape {jnp.shape(x1)}, expected "
            f"{jnp.shape(x)} ({name}'s): give {name} the dynamics' state size, or fix the "
            "dynamics' output."
        )
    if jnp.shape(c0) != ():
        raise ValueError(f"cost must return a scalar, got shape {jnp.shape(c0)}.")
    if jnp.shape(cT) != ():
        raise ValueError(f"terminal_cost must return a scalar, got shape {jnp.shape(cT)}.")


@functools.partial(jit_per_static, tree_argnums=(0,))
def _initial_check(problem: ILQRProblem, x0, U0):
    """The first next state, the first stage cost and the total cost of the clipped `U0`."""
    x1 = problem.dynamics(x0, U0[0], 0, problem.params)
    c0 = problem.cost(x0, U0[0], 0, problem.params)
    _, J = _rollout(problem, x0, jnp.clip(U0, problem.u_lower, problem.u_upper), 1)
    return x1, c0, J


#: `ilqr`'s signature (and `ddp`'s), for messages about arguments in the wrong place.
_SIGNATURE = (
    "ilqr(dynamics, cost, x0, U0, params=None, *, terminal_cost=None, u_lower=None, "
    "u_upper=None, config=None, **options)"
)


def _numeric_array(value: Any, name: str, what: str) -> jax.Array:
    """`value` as a jax array of numbers, or a TypeError that shows the signature (a function
    or anything else there usually means an argument in the wrong place)."""
    dtype = getattr(value, "dtype", None)  # jax/numpy arrays and tracers: no conversion
    if dtype is None and not callable(value):
        try:
            dtype = np.asarray(value).dtype
        except (TypeError, ValueError):  # ragged nested lists
            dtype = None
    real = (jnp.bool_, jnp.integer, jnp.floating)  # jnp's: bfloat16 is a float (numpy: void)
    if dtype is not None and any(jnp.issubdtype(dtype, kind) for kind in real):
        return jnp.asarray(value)
    got = (
        f"the function {getattr(value, '__name__', repr(value))}"
        if callable(value)
        else f"{type(value).__name__} {value!r}"[:120]
    )
    hint = (
        " A terminal cost is a keyword argument: "
        "ilqr(dynamics, cost, x0, U0, terminal_cost=terminal_cost)."
        if callable(value)
        else ""
    )
    raise TypeError(
        f"{name} must be an array of numbers ({what}), got {got}. The signature is "
        f"{_SIGNATURE}.{hint}"
    )


def _prepare(dynamics, cost, terminal_cost, x0, U0, params, u_lower, u_upper):
    """Checked inputs `(ILQRProblem, x0, U0)`; the host checks run when nothing is traced."""
    check_functions({"dynamics": dynamics, "cost": cost}, terminal_cost)
    x0 = _numeric_array(x0, "x0", "the initial state [n]")
    U0 = _numeric_array(U0, "U0", "the initial controls [T, m]")
    if x0.ndim != 1:
        raise ValueError(f"x0 must be a state vector [n], got shape {x0.shape}.")
    if U0.ndim != 2 or U0.shape[0] < 1:
        raise ValueError(
            f"U0 must be controls [T, m] with T >= 1, got shape {U0.shape}; "
            "for a scalar control use U0[:, None]."
        )
    dtype = jnp.result_type(x0, U0, float)
    x0, U0 = x0.astype(dtype), U0.astype(dtype)
    m = U0.shape[1]

    def bound(name, b, fill):
        if b is None:
            return jnp.full((m,), fill, dtype)
        b = jnp.asarray(b, dtype)
        if b.ndim == 0:
            b = jnp.full((m,), b, dtype)
        if b.shape != (m,):
            raise ValueError(f"{name} must be a scalar or [{m}] (one per control), got {b.shape}.")
        return b

    lo = bound("u_lower", u_lower, -jnp.inf)
    hi = bound("u_upper", u_upper, jnp.inf)
    term = terminal_cost if terminal_cost is not None else zero_terminal_cost
    problem = ILQRProblem(dynamics, cost, term, params, lo, hi)
    if _concrete(x0, U0, lo, hi, params):
        if np.isnan(np.asarray(lo)).any() or np.isnan(np.asarray(hi)).any():
            raise ValueError("u_lower/u_upper contain NaN; pass numbers (or +-inf).")
        check_bounds("u_lower", lo, "u_upper", hi)
        largest = float(jnp.finfo(dtype).max)
        beyond = f" (in {np.dtype(dtype).name}, which holds numbers up to {largest:.3g})"
        if not np.isfinite(np.asarray(x0)).all():
            raise ValueError(f"x0 must be finite{beyond}, got {np.asarray(x0)}.")
        if not np.isfinite(np.asarray(U0)).all():
            raise ValueError(
                f"U0 contains non-finite controls{beyond}; pass finite initial controls."
            )
        # Shapes first (abstractly): a rollout with a mismatched state fails deep in a scan.
        check_model_shapes(problem, x0, U0, "x0", "give x0 and U0 the sizes the dynamics expect")
        x1, c0, J = _initial_check(problem, x0, U0)
        if not np.isfinite(np.asarray(c0)):
            raise ValueError(
                f"the cost at x0={np.asarray(x0)}, u={np.asarray(U0[0])} is {np.asarray(c0)}; "
                "it must be finite there (check x0, params and the cost function)."
            )
        if not np.isfinite(np.asarray(J)):
            raise ValueError(
                f"the initial controls give a non-finite total cost ({np.asarray(J)}); "
                "start from controls whose rollout stays finite (e.g. zeros)."
            )
    return problem, x0, U0


def ilqr(
    dynamics: Callable[..., jax.Array],
    cost: Callable[..., jax.Array],
    x0: jax.Array,
    U0: jax.Array,
    params: Any = None,
    *,
    terminal_cost: Callable[..., jax.Array] | None = None,
    u_lower: jax.Array | float | None = None,
    u_upper: jax.Array | float | None = None,
    config: ILQRConfig | None = None,
    **overrides: Any,
) -> ILQRResult:
    """Iterative LQR (or DDP with `second_order=True`) with box-bounded controls.

    See the module docstring for the algorithm (Li & Todorov 2004; Tassa, Erez & Todorov
    2012; Tassa, Mansard & Todorov 2014). Jitted internally (the callables and the config
    are static: pass module-level functions or hashable callables to reuse the
    compilation); it can also be called inside `jax.jit` and `jax.vmap`.

    Args:
      dynamics: `dynamics(x, u, t, params) -> x_next`.
      cost: `cost(x, u, t, params) -> scalar`.
      x0: initial state `[n]`.
      U0: initial controls `[T, m]` (clipped into the box).
      params: model parameters (a pytree).
      terminal_cost: `terminal_cost(x, params) -> scalar`; default zero.
      u_lower, u_upper: control bounds, scalars or `[m]`; default unbounded.
      config: an `ILQRConfig`; keyword `overrides` replace its fields
        (e.g. `max_iterations=50, second_order=True`).

    Returns:
      `ILQRResult` (X, U, cost, iterations, status, K, k, gradient_norm, ...).

    Raises:
      TypeError / ValueError: bad functions, `x0` or `U0` that are not arrays of numbers
        (a terminal cost passed by position lands there: the message shows the signature),
        shapes, bounds with `u_lower > u_upper`, or a non-finite cost at the start (checked
        when called outside jit).
    """
    cfg = configure(config, **overrides)
    problem, x0, U0 = _prepare(dynamics, cost, terminal_cost, x0, U0, params, u_lower, u_upper)
    return _solve_jit(problem, cfg, x0, U0)


def configure(config: ILQRConfig | None = None, **overrides: Any) -> ILQRConfig:
    """`config` (default `ILQRConfig()`) with keyword `overrides` replacing fields; an option
    that is not a field is refused, naming the fields."""
    cfg = config if config is not None else ILQRConfig()
    if not isinstance(cfg, ILQRConfig):
        raise TypeError(f"config must be an ILQRConfig, got {type(cfg).__name__}.")
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(ILQRConfig)})
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown}; ILQRConfig has "
                f"{[f.name for f in dataclasses.fields(ILQRConfig)]}."
            )
        cfg = dataclasses.replace(cfg, **overrides)
    return cfg


def ilqr_problem(
    problem: Problem,
    U0: jax.Array | None = None,
    *,
    x0: jax.Array | None = None,
    config: ILQRConfig | None = None,
    **overrides: Any,
) -> ILQRResult:
    """`ilqr` on a `Problem` (its dynamics, costs, bounds, params and horizon).

    Args:
      problem: the problem.
      U0: initial controls `[T, m]`; default zeros clipped into the bounds.
      x0: initial state; default `problem.x0`.
      config, overrides: as for `ilqr`.

    Returns:
      `ILQRResult`.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a bellmax.control.Problem, got {type(problem).__name__}.")
    if U0 is None:
        U0 = jnp.zeros((problem.horizon, problem.control_dim), problem.x0.dtype)
    elif jnp.shape(U0) != (problem.horizon, problem.control_dim):
        raise ValueError(
            f"U0 has shape {jnp.shape(U0)}, expected {(problem.horizon, problem.control_dim)} "
            "(horizon, control_dim) for this problem."
        )
    return ilqr(
        problem.dynamics,
        problem.cost,
        problem.x0 if x0 is None else x0,
        U0,
        problem.params,
        terminal_cost=problem.terminal_cost,
        u_lower=problem.u_lower,
        u_upper=problem.u_upper,
        config=config,
        **overrides,
    )
