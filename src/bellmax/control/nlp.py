"""A primal-dual interior-point solver for stage-structured nonlinear programs, in JAX.

Direct transcriptions of optimal control problems (collocation, multiple shooting) give
nonlinear programs whose variables come in `K` stages `Z = [z_0 .. z_{K-1}]` (`[K, nz]`),
whose equality constraints come in `K` blocks `c_k(z_k, z_{k+1})` (`[K, nc]`; the last block
may use `z_{K-1}` only) and whose objective couples only neighbouring stages. This module
solves

    minimise f(Z)   subject to   c(Z) = 0,   lower <= Z <= upper

(entries of the bounds may be infinite; `lower == upper` fixes a variable, as IPOPT's
`fixed_variable_treatment=make_parameter` does) with the primal-dual barrier method of
IPOPT (Waechter & Biegler 2006, Math. Program. 106: 25-57, sections 2-3; Nocedal & Wright
2006, chapter 19):

- barrier subproblems `f - mu sum log(slacks)` with the monotone Fiacco-McCormick update
  `mu <- max(tol/10, min(0.2 mu, mu^1.5))` once the subproblem's error is below `10 mu`;
- Newton steps on the primal-dual equations, the KKT matrix regularised by `delta_w I` until
  its inertia is right (as many negative eigenvalues as constraints, so the step is a descent
  direction on the constraints' null space: IPOPT section 3.1, counted from the pivot blocks
  of the block factorisation), bound multipliers kept within `kappa_sigma` of `mu / s`;
- the fraction-to-the-boundary rule and a backtracking line search with IPOPT's filter
  acceptance tests (switching condition, Armijo on the barrier objective, sufficient decrease
  of the violation or the objective; the filter itself is reduced to the current point and a
  ceiling on the violation) and one second-order correction against the Maratos effect;
- stopping when the scaled KKT error (dual infeasibility, constraint violation,
  complementarity; IPOPT's eq. 5) is below `tol`.

Derivatives come from JAX, compressed by the stage structure (Curtis-Powell-Reid colouring):
the Jacobian takes `2 nz` forward-mode products (columns of stages of equal parity share a
seed) and the block-tridiagonal Hessian of the Lagrangian `3 nz` Hessian-vector products,
whatever `K`. The KKT system is block tridiagonal in the stage order `(dz_k, dy_k)`; it is
solved by block elimination along the stages (a Riccati-like recursion, `O(K (nz + nc)^3)`)
inside `jax.lax.scan`, so one Newton step costs about as much as a few dozen evaluations of
the problem's functions. The whole solve is one `jax.lax.while_loop` under `jax.jit`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.problems import Status

__all__ = ["NLPOptions", "NLPResult", "solve_staged_nlp"]

_RUNNING = -1


@struct.dataclass
class NLPOptions:
    """Tuning knobs of the interior-point method (defaults follow IPOPT's)."""

    tol: float = 1e-8
    """Stop when the scaled KKT error (IPOPT's E_0) is below this."""
    constr_viol_tol: float = 1e-8
    """... and the unscaled constraint violation `||c||_inf` is below this."""
    max_iterations: int = 500
    """Newton iterations at most."""
    mu_init: float = 0.1
    """Initial barrier parameter."""
    bound_push: float = 1e-2
    """Initial point pushed at least this far (relative) inside the bounds."""
    delta_c: float = 1e-9
    """Constant regularisation of the constraint block (keeps the recursion nonsingular)."""
    max_line_search: int = 40
    """Backtracking halvings at most per iteration."""
    constr_mult_init_max: float = 1e3
    """Least-squares initial multipliers larger than this are replaced by zeros."""


@struct.dataclass
class NLPResult:
    """What `solve_staged_nlp` returns."""

    z: jax.Array
    """Primal solution `[K, nz]`."""
    y: jax.Array
    """Multipliers of the equality constraints `[K, nc]` (Lagrangian `f + y'c`)."""
    z_lower: jax.Array
    """Multipliers of the lower bounds `[K, nz]` (>= 0; 0 where there is no bound)."""
    z_upper: jax.Array
    """Multipliers of the upper bounds `[K, nz]`."""
    objective: jax.Array
    """`f(z)`."""
    iterations: jax.Array
    """Newton iterations performed."""
    status: jax.Array
    """A `bellmax.control.problems.Status` code: converged, max_iterations, diverged, stalled."""
    constraint_violation: jax.Array
    """`max |c(z)|` over the active constraint rows."""
    dual_infeasibility: jax.Array
    """`max |grad f + J'y - z_lower + z_upper|` over the free variables."""
    complementarity: jax.Array
    """`max (z - lower) z_lower, (upper - z) z_upper` (0 at an exact solution)."""
    kkt_error: jax.Array
    """IPOPT's scaled optimality error `E_0` at `z`."""
    mu: jax.Array
    """Final barrier parameter."""

    @property
    def status_name(self) -> str:
        """`converged`, `max_iterations`, `diverged` or `stalled`."""
        return Status.name_of(self.status)

    @property
    def converged(self) -> bool:
        """Whether the KKT tolerance was met."""
        return int(self.status) == Status.CONVERGED


# ----------------------------------------------------------------------------- derivatives
def _seeds(K: int, nz: int, colours: int, dtype) -> jax.Array:
    """`[colours * nz, K, nz]`: seed (c, j) is 1 at component j of every stage k = c mod colours."""
    k = jnp.arange(K)
    onehot = jnp.eye(nz, dtype=dtype)  # [j, comp]
    stage = (k[None, :] % colours == jnp.arange(colours)[:, None]).astype(dtype)  # [c, K]
    return (stage[:, None, :, None] * onehot[None, :, None, :]).reshape(colours * nz, K, nz)


def _jacobian_blocks(cfun: Callable, Z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`c(Z)` and its stage blocks `Jd[k] = dc_k/dz_k`, `Jo[k] = dc_k/dz_{k+1}` (`[K, nc, nz]`)."""
    K, nz = Z.shape
    c, lin = jax.linearize(cfun, Z)
    JV = jax.vmap(lin)(_seeds(K, nz, 2, Z.dtype)).reshape(2, nz, K, -1)  # [c, j, i, row]
    i = jnp.arange(K)
    Jd = jnp.swapaxes(JV[i % 2, :, i, :], 1, 2)  # [K, row, j]
    Jo = jnp.swapaxes(JV[(i + 1) % 2, :, i, :], 1, 2)
    Jo = Jo.at[K - 1].set(0.0)
    return c, Jd, Jo


def _hessian_blocks(lag: Callable, Z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Blocks of the Hessian of `lag`: `Hd[k] = H_kk`, `Ho[k] = H_{k,k+1}` (`[K, nz, nz]`)."""
    K, nz = Z.shape
    grad = jax.grad(lag)

    def hvp(v):
        return jax.jvp(grad, (Z,), (v,))[1]

    HV = jax.vmap(hvp)(_seeds(K, nz, 3, Z.dtype)).reshape(3, nz, K, nz)  # [c, j, i, row]
    i = jnp.arange(K)
    Hd = jnp.swapaxes(HV[i % 3, :, i, :], 1, 2)
    Ho = jnp.swapaxes(HV[(i + 1) % 3, :, i, :], 1, 2)
    Ho = Ho.at[K - 1].set(0.0)
    Hd = 0.5 * (Hd + jnp.swapaxes(Hd, 1, 2))
    return Hd, Ho


def _jt_y(Jd: jax.Array, Jo: jax.Array, y: jax.Array) -> jax.Array:
    """`J' y` in stage form: `Jd_k' y_k + Jo_{k-1}' y_{k-1}`."""
    a = jnp.einsum("krj,kr->kj", Jd, y)
    b = jnp.einsum("krj,kr->kj", Jo, y)
    return a + jnp.concatenate([jnp.zeros_like(b[:1]), b[:-1]], axis=0)


# ----------------------------------------------------------------------------- KKT solve
def _block_tridiag_factor(D: jax.Array, E: jax.Array) -> tuple[Any, jax.Array]:
    """Factor the symmetric block-tridiagonal matrix with diagonal `D[k]`, upper `E[k]`.

    Block elimination along the stages (a block LDL' factorisation: pivot blocks
    `S_k = D_k - E_{k-1}' S_{k-1}^{-1} E_{k-1}`, each LU-factorised with partial pivoting). By
    Sylvester's law of inertia the matrix has as many negative eigenvalues as the pivot
    blocks together; that count is returned for the inertia correction. `D, E: [K, m, m]`.

    Returns:
      `(factors, num_negative)`: what `_block_tridiag_apply` needs, and the number of
      negative (or numerically zero) eigenvalues of the matrix.
    """

    def fwd(carry, inp):
        P_prev, E_prev = carry
        Dk, Ek = inp
        S = Dk - E_prev.T @ P_prev
        S = 0.5 * (S + S.T)
        lu, piv = jax.scipy.linalg.lu_factor(S)
        P = jax.scipy.linalg.lu_solve((lu, piv), Ek)
        ev = jnp.linalg.eigvalsh(S)
        tiny = 1e-14 * jnp.maximum(1.0, jnp.max(jnp.abs(ev)))
        return (P, Ek), (P, lu, piv, jnp.sum(ev <= tiny))

    zero = jnp.zeros(D.shape[1:], D.dtype)
    _, (P, lu, piv, neg) = jax.lax.scan(fwd, (zero, zero), (D, E))
    return (P, lu, piv, E), jnp.sum(neg)


def _block_tridiag_apply(factors: Any, b: jax.Array) -> jax.Array:
    """Solve with the factors of `_block_tridiag_factor`; `b: [K, m]` -> `w: [K, m]`."""
    P, lu, piv, E = factors
    E_prev = jnp.concatenate([jnp.zeros_like(E[:1]), E[:-1]], axis=0)

    def fwd(q_prev, inp):
        lu_k, piv_k, E_k, b_k = inp
        q = jax.scipy.linalg.lu_solve((lu_k, piv_k), b_k - E_k.T @ q_prev)
        return q, q

    _, q = jax.lax.scan(fwd, jnp.zeros_like(b[0]), (lu, piv, E_prev, b))

    def bwd(w_next, inp):
        Pk, qk = inp
        w = qk - Pk @ w_next
        return w, w

    _, w = jax.lax.scan(bwd, jnp.zeros_like(b[0]), (P, q), reverse=True)
    return w


def _block_tridiag_solve(D: jax.Array, E: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Factor and solve; returns `(w, num_negative)` (see `_block_tridiag_factor`)."""
    factors, neg = _block_tridiag_factor(D, E)
    return _block_tridiag_apply(factors, b), neg


def _kkt_solve(Hd, Ho, Jd, Jo, sigma, delta_w, delta_c, free, row_on, rz, rc):
    """Newton step `(dz, dy)` for `[[H + Sigma + delta_w, J'], [J, -delta_c]] [dz; dy] = [rz; rc]`.

    Fixed variables get the row `dz = 0`; switched-off constraint rows `dy = 0`. Also returns
    the number of negative eigenvalues of the matrix (`K nc` when its inertia is right) and
    its factors (for `_kkt_apply`).
    """
    K, nz = rz.shape
    nc = rc.shape[1]
    eye_z = jnp.eye(nz, dtype=rz.dtype)
    fmask = free[:, :, None] * free[:, None, :]
    Hdiag = Hd * fmask + eye_z * (jnp.where(free, sigma + delta_w, 1.0))[:, None, :]
    Jd_m = Jd * free[:, None, :] * row_on[:, :, None]
    Jo_m = Jo * jnp.concatenate([free[1:], jnp.ones_like(free[:1])], 0)[:, None, :]
    Jo_m = Jo_m * row_on[:, :, None]
    Cdiag = jnp.where(row_on, -delta_c, -1.0)
    D = jnp.concatenate(
        [
            jnp.concatenate([Hdiag, jnp.swapaxes(Jd_m, 1, 2)], axis=2),
            jnp.concatenate([Jd_m, jax.vmap(jnp.diag)(Cdiag)], axis=2),
        ],
        axis=1,
    )
    free_next = jnp.concatenate([free[1:], jnp.ones_like(free[:1])], 0)
    Ho_m = Ho * free[:, :, None] * free_next[:, None, :]
    top = jnp.concatenate([Ho_m, jnp.zeros((K, nz, nc), rz.dtype)], axis=2)
    bot = jnp.concatenate([Jo_m, jnp.zeros((K, nc, nc), rz.dtype)], axis=2)
    E = jnp.concatenate([top, bot], axis=1)
    factors, neg = _block_tridiag_factor(D, E)
    dz, dy = _kkt_apply(factors, free, row_on, rz, rc)
    return dz, dy, neg, factors


def _kkt_apply(factors, free, row_on, rz, rc):
    """Another right-hand side with the factors of `_kkt_solve`: `(dz, dy)`."""
    nz = rz.shape[1]
    b = jnp.concatenate([jnp.where(free, rz, 0.0), jnp.where(row_on, rc, 0.0)], axis=1)
    w = _block_tridiag_apply(factors, b)
    return w[:, :nz], w[:, nz:]


# ----------------------------------------------------------------------------- the solver
def _max_step(s: jax.Array, ds: jax.Array, tau: jax.Array, mask: jax.Array) -> jax.Array:
    """Largest `alpha <= 1` with `s + alpha ds >= (1 - tau) s` on `mask`."""
    ratio = jnp.where(mask & (ds < 0), -tau * s / jnp.where(ds < 0, ds, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratio))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _solve(objective, constraints, Z0, lower, upper, row_on, params, opts):
    dtype = Z0.dtype
    K, nz = Z0.shape
    fixed = lower == upper
    free = ~fixed
    has_lo = jnp.isfinite(lower) & free
    has_up = jnp.isfinite(upper) & free
    n_free = jnp.maximum(jnp.sum(free), 1)
    m_on = jnp.maximum(jnp.sum(row_on), 1)
    s_max = 100.0
    kappa_sigma = 1e10

    def f(Z):
        return objective(Z, params)

    def cfun(Z):
        return jnp.where(row_on, constraints(Z, params), 0.0)

    def slacks(Z):
        sl = jnp.where(has_lo, Z - lower, 1.0)
        su = jnp.where(has_up, upper - Z, 1.0)
        return sl, su

    def barrier(Z, mu):
        sl, su = slacks(Z)
        logs = jnp.sum(jnp.where(has_lo, jnp.log(sl), 0.0)) + jnp.sum(
            jnp.where(has_up, jnp.log(su), 0.0)
        )
        return f(Z) - mu * logs

    # Initial point: inside the bounds by the bound push (IPOPT section 3.6).
    span = jnp.where(has_lo & has_up, upper - lower, jnp.inf)
    push_l = jnp.minimum(opts.bound_push * jnp.maximum(1.0, jnp.abs(lower)), 0.5 * span)
    push_u = jnp.minimum(opts.bound_push * jnp.maximum(1.0, jnp.abs(upper)), 0.5 * span)
    Z = jnp.where(has_lo, jnp.maximum(Z0, lower + push_l), Z0)
    Z = jnp.where(has_up, jnp.minimum(Z, upper - push_u), Z)
    Z = jnp.where(fixed, lower, Z)
    nc = jax.eval_shape(cfun, Z).shape[1]
    zl0 = jnp.where(has_lo, 1.0, 0.0).astype(dtype)
    zu0 = jnp.where(has_up, 1.0, 0.0).astype(dtype)

    def evaluate(Z, y, zl, zu):
        fz, g = jax.value_and_grad(f)(Z)
        c, Jd, Jo = _jacobian_blocks(cfun, Z)
        rd = jnp.where(free, g + _jt_y(Jd, Jo, y) - zl + zu, 0.0)
        return fz, g, c, Jd, Jo, rd

    def errors(Z, y, zl, zu, c, rd, mu):
        sl, su = slacks(Z)
        s_d = jnp.maximum(
            s_max,
            (jnp.sum(jnp.abs(y)) + jnp.sum(jnp.abs(zl)) + jnp.sum(jnp.abs(zu))) / (n_free + m_on),
        )
        s_d = s_d / s_max
        s_c = jnp.maximum(s_max, (jnp.sum(jnp.abs(zl)) + jnp.sum(jnp.abs(zu))) / n_free) / s_max
        dual = jnp.max(jnp.abs(rd))
        primal = jnp.max(jnp.abs(c))
        comp = jnp.maximum(
            jnp.max(jnp.where(has_lo, jnp.abs(sl * zl - mu), 0.0)),
            jnp.max(jnp.where(has_up, jnp.abs(su * zu - mu), 0.0)),
        )
        return jnp.maximum(jnp.maximum(dual / s_d, primal), comp / s_c), dual, primal, comp

    def measure(Z, y, zl, zu):
        fz, g, c, Jd, Jo, rd = evaluate(Z, y, zl, zu)
        err0, dual, primal, _ = errors(Z, y, zl, zu, c, rd, 0.0)
        return (fz, g, c, Jd, Jo, rd), (err0, dual, primal)

    def body(state):
        Z, y, zl, zu, mu, nu, delta_last, it, status, stalls, ev, metrics = state
        fz, g, c, Jd, Jo, rd = ev
        # Barrier update (monotone, IPOPT eq. 7).
        err_mu = errors(Z, y, zl, zu, c, rd, mu)[0]
        mu = jnp.where(
            err_mu <= 10.0 * mu,
            jnp.maximum(opts.tol / 10.0, jnp.minimum(0.2 * mu, mu**1.5)),
            mu,
        )
        sl, su = slacks(Z)
        sigma = jnp.where(has_lo, zl / sl, 0.0) + jnp.where(has_up, zu / su, 0.0)
        Hd, Ho = _hessian_blocks(lambda W: f(W) + jnp.sum(y * cfun(W)), Z)
        grad_phi = g - jnp.where(has_lo, mu / sl, 0.0) + jnp.where(has_up, mu / su, 0.0)
        rz = -(grad_phi + _jt_y(Jd, Jo, y))
        rc = -c

        # Regularise until the step has positive curvature (first try: no regularisation).
        def factor_and_solve(delta):
            dz, dy, neg, factors = _kkt_solve(
                Hd, Ho, Jd, Jo, sigma, delta, opts.delta_c, free, row_on, rz, rc
            )
            # Inertia correction (IPOPT section 3.1): exactly K * nc negative eigenvalues.
            ok = (neg == K * nc) & jnp.all(jnp.isfinite(dz)) & jnp.all(jnp.isfinite(dy))
            return dz, dy, factors, ok

        def reg_cond(s):
            return (~s[4]) & (s[5] < 25)

        def reg_body(s):
            delta, k = s[2], s[5]
            delta = jnp.where(
                k == 0,
                0.0,
                jnp.where(
                    delta == 0.0,
                    jnp.where(delta_last == 0.0, 1e-4, jnp.maximum(1e-20, delta_last / 3.0)),
                    jnp.where(delta_last == 0.0, 100.0 * delta, 8.0 * delta),
                ),
            )
            dz, dy, factors, ok = factor_and_solve(delta)
            return dz, dy, delta, factors, ok, k + 1

        dz0, dy0, factors0, _ = jax.eval_shape(factor_and_solve, jnp.zeros((), dtype))
        init_reg = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), (dz0, dy0, factors0))
        dz, dy, delta, factors, _, _ = jax.lax.while_loop(
            reg_cond,
            reg_body,
            (init_reg[0], init_reg[1], jnp.zeros((), dtype), init_reg[2], False, 0),
        )
        delta_last = jnp.where(delta > 0.0, delta, delta_last)

        dzl = jnp.where(has_lo, (mu - sl * zl - zl * dz) / sl, 0.0)
        dzu = jnp.where(has_up, (mu - su * zu + zu * dz) / su, 0.0)
        tau = jnp.maximum(0.99, 1.0 - mu)
        a_pr = jnp.minimum(_max_step(sl, dz, tau, has_lo), _max_step(su, -dz, tau, has_up))
        a_du = jnp.minimum(_max_step(zl, dzl, tau, has_lo), _max_step(zu, dzu, tau, has_up))

        # Filter line search (IPOPT section 2.3, with the current point and a ceiling on the
        # constraint violation as the filter): a trial point is accepted if it reduces the
        # barrier objective by Armijo's rule when the step is objective-driven (the switching
        # condition), else if it reduces either the violation or the objective enough.
        theta = jnp.sum(jnp.abs(c))
        phi = barrier(Z, mu)
        slope = jnp.sum(grad_phi * dz)

        def acceptable(Zt, a):
            inside = jnp.all(
                jnp.where(has_lo, Zt > lower, True) & jnp.where(has_up, Zt < upper, True)
            )
            th_t = jnp.sum(jnp.abs(cfun(Zt)))
            ph_t = barrier(Zt, mu)
            switching = (slope < 0) & (a * (-slope) ** 2.3 > theta**1.1) & (theta <= theta_min)
            armijo = ph_t <= phi + 1e-4 * a * slope
            sufficient = (th_t <= (1 - 1e-5) * theta) | (ph_t <= phi - 1e-8 * theta)
            ok = jnp.where(switching, armijo, sufficient) & (th_t <= theta_max)
            return inside & jnp.isfinite(ph_t) & jnp.isfinite(th_t) & ok

        # Full step first; if it is rejected, one second-order correction (IPOPT section
        # 2.4: the constraints re-linearised at the trial point, same factors) against the
        # Maratos effect; then backtracking on the original direction.
        ok_full = acceptable(Z + a_pr * dz, a_pr)
        c_soc = a_pr * c + cfun(Z + a_pr * dz)
        dz_soc, dy_soc = _kkt_apply(factors, free, row_on, rz, -c_soc)
        a_soc = jnp.minimum(_max_step(sl, dz_soc, tau, has_lo), _max_step(su, -dz_soc, tau, has_up))
        ok_soc = (~ok_full) & acceptable(Z + a_soc * dz_soc, a_pr)
        dz = jnp.where(ok_soc, dz_soc, dz)
        dy = jnp.where(ok_soc, dy_soc, dy)
        a_first = jnp.where(ok_soc, a_soc, a_pr)

        def ls_cond(s):
            _, k, accepted = s
            return (~accepted) & (k < opts.max_line_search)

        def ls_body(s):
            a, k, _ = s
            a = 0.5 * a
            return a, k + 1, acceptable(Z + a * dz, a)

        alpha, _, accepted = jax.lax.while_loop(ls_cond, ls_body, (a_first, 0, ok_full | ok_soc))
        if_soc = ok_soc
        dzl = jnp.where(if_soc, jnp.where(has_lo, (mu - sl * zl - zl * dz) / sl, 0.0), dzl)
        dzu = jnp.where(if_soc, jnp.where(has_up, (mu - su * zu + zu * dz) / su, 0.0), dzu)
        a_du = jnp.where(
            if_soc,
            jnp.minimum(_max_step(zl, dzl, tau, has_lo), _max_step(zu, dzu, tau, has_up)),
            a_du,
        )
        Z_new = Z + alpha * dz
        y_new = y + alpha * dy
        zl_new = zl + a_du * dzl
        zu_new = zu + a_du * dzu
        # Keep the bound multipliers near the central path (IPOPT eq. 16).
        sl_n, su_n = slacks(Z_new)
        zl_new = jnp.where(
            has_lo, jnp.clip(zl_new, mu / (kappa_sigma * sl_n), kappa_sigma * mu / sl_n), 0.0
        )
        zu_new = jnp.where(
            has_up, jnp.clip(zu_new, mu / (kappa_sigma * su_n), kappa_sigma * mu / su_n), 0.0
        )
        stalls = jnp.where(accepted, 0, stalls + 1)
        ev_new, metrics_new = measure(Z_new, y_new, zl_new, zu_new)
        err0, _, primal = metrics_new
        finite = (
            jnp.all(jnp.isfinite(Z_new))
            & jnp.all(jnp.isfinite(y_new))
            & jnp.isfinite(ev_new[0])
            & jnp.isfinite(err0)
        )
        it = it + 1
        done = (err0 <= opts.tol) & (primal <= opts.constr_viol_tol)
        status_new = jnp.where(
            ~finite,
            Status.DIVERGED,
            jnp.where(
                done,
                Status.CONVERGED,
                jnp.where(
                    stalls >= 5,
                    Status.STALLED,
                    jnp.where(it >= opts.max_iterations, Status.MAX_ITERATIONS, _RUNNING),
                ),
            ),
        ).astype(jnp.int32)
        # A non-finite trial point is not taken: the result keeps the last finite iterate.
        new = (Z_new, y_new, zl_new, zu_new, ev_new, metrics_new)
        old = (Z, y, zl, zu, ev, metrics)
        Z, y, zl, zu, ev, metrics = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        return Z, y, zl, zu, mu, nu, delta_last, it, status_new, stalls, ev, metrics

    # Least-squares multipliers (IPOPT's constr_mult_init; dropped when larger than 1000).
    _, g0, c0, Jd0, Jo0, _ = evaluate(Z, jnp.zeros((K, nc), dtype), zl0, zu0)
    zero_blocks = jnp.zeros((K, nz, nz), dtype)
    _, y_ls, _, _ = _kkt_solve(
        zero_blocks,
        zero_blocks,
        Jd0,
        Jo0,
        jnp.ones_like(Z),
        jnp.zeros((), dtype),
        opts.delta_c,
        free,
        row_on,
        -(g0 - zl0 + zu0),
        jnp.zeros_like(c0),
    )
    ok_ls = jnp.all(jnp.isfinite(y_ls)) & (jnp.max(jnp.abs(y_ls)) <= opts.constr_mult_init_max)
    y0 = jnp.where(ok_ls, y_ls, 0.0)
    ev0, metrics0 = measure(Z, y0, zl0, zu0)
    done0 = (metrics0[0] <= opts.tol) & (metrics0[2] <= opts.constr_viol_tol)
    status0 = jnp.where(
        ~jnp.isfinite(metrics0[0]), Status.DIVERGED, jnp.where(done0, Status.CONVERGED, _RUNNING)
    ).astype(jnp.int32)
    init = (
        Z,
        y0,
        zl0,
        zu0,
        jnp.asarray(opts.mu_init, dtype),
        jnp.asarray(1.0, dtype),
        jnp.zeros((), dtype),
        jnp.asarray(0),
        status0,
        jnp.asarray(0),
        ev0,
        metrics0,
    )
    theta0 = jnp.sum(jnp.abs(ev0[2]))
    theta_max = 1e4 * jnp.maximum(1.0, theta0)
    theta_min = 1e-4 * jnp.maximum(1.0, theta0)
    out = jax.lax.while_loop(lambda s: s[8] == _RUNNING, body, init)
    Z, y, zl, zu, mu, _, _, it, status, _, ev, metrics = out
    fz = ev[0]
    err0, dual, primal = metrics
    sl, su = slacks(Z)
    comp = jnp.maximum(
        jnp.max(jnp.where(has_lo, sl * zl, 0.0)), jnp.max(jnp.where(has_up, su * zu, 0.0))
    )
    return NLPResult(
        z=Z,
        y=y,
        z_lower=zl,
        z_upper=zu,
        objective=fz,
        iterations=it,
        status=status,
        constraint_violation=primal,
        dual_infeasibility=dual,
        complementarity=comp,
        kkt_error=err0,
        mu=mu,
    )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _evaluate_at(objective, constraints, Z, params):
    """`(f(Z), c(Z))`, compiled once per function pair (input checks without op-by-op cost)."""
    return objective(Z, params), constraints(Z, params)


def _as_array(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    try:
        a = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(
            f"{name} has shape {a.shape}, which does not broadcast to {shape}; pass a [K, nz] "
            "array (or a scalar / [nz] row)."
        ) from None
    return np.array(a)


def solve_staged_nlp(
    objective: Callable[[jax.Array, Any], jax.Array],
    constraints: Callable[[jax.Array, Any], jax.Array],
    z0: Any,
    *,
    lower: Any = -np.inf,
    upper: Any = np.inf,
    params: Any = None,
    constraint_mask: Any = None,
    options: NLPOptions | None = None,
) -> NLPResult:
    """Solve `min f(Z) s.t. c(Z) = 0, lower <= Z <= upper` for a stage-structured NLP.

    The structure (see the module docstring): `Z` is `[K, nz]`; `constraints(Z, params)`
    returns `[K, nc]` with row block `k` depending on stages `k` and `k + 1` only; the
    objective's Hessian couples only neighbouring stages. Runs in float64 (inside
    `jax.enable_x64(True)`; the global flag is untouched). Primal-dual interior-point method
    (Waechter & Biegler 2006).

    Args:
      objective: `objective(Z, params) -> scalar`.
      constraints: `constraints(Z, params) -> [K, nc]` (equalities `= 0`).
      z0: initial guess `[K, nz]` (moved inside the bounds).
      lower, upper: bounds broadcastable to `[K, nz]`; may be infinite; `lower == upper`
        fixes a variable.
      params: pytree passed to both functions.
      constraint_mask: boolean `[K, nc]`, False switches a constraint row off (padding).
      options: `NLPOptions`.

    Returns:
      An `NLPResult` (solution, multipliers, status, KKT residuals).

    Raises:
      ValueError: `z0` not 2-D or non-finite, bounds of the wrong shape, NaN or crossed
        (`lower > upper`), or the functions return the wrong shapes / non-finite values at `z0`.
      TypeError: a function is not callable.
    """
    for nm, fn in (("objective", objective), ("constraints", constraints)):
        if not callable(fn):
            raise TypeError(f"{nm} must be a callable {nm}(Z, params), got {fn!r}.")
    opts = NLPOptions() if options is None else options
    if not isinstance(opts, NLPOptions):
        raise TypeError(f"options must be an NLPOptions, got {type(opts).__name__}.")
    z0a = np.asarray(z0, dtype=np.float64)
    if z0a.ndim != 2 or z0a.shape[0] < 2:
        raise ValueError(
            f"z0 must be a [K, nz] array with K >= 2 stages, got shape {z0a.shape}; "
            "stack the per-stage variables."
        )
    if not np.isfinite(z0a).all():
        raise ValueError("z0 contains non-finite values; pass a finite initial guess.")
    lo = _as_array("lower", lower, z0a.shape)
    hi = _as_array("upper", upper, z0a.shape)
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("lower/upper contain NaN; use -inf/+inf for missing bounds.")
    bad = np.argwhere(lo > hi)
    if bad.size:
        k, j = map(int, bad[0])
        raise ValueError(
            f"lower > upper at stage {k}, component {j} ({lo[k, j]} > {hi[k, j]}); "
            "each lower bound must be <= its upper bound."
        )
    if not (opts.tol > 0 and opts.max_iterations >= 1):
        raise ValueError(f"options need tol > 0 and max_iterations >= 1, got {opts}.")
    with jax.enable_x64(True):
        Z0 = jnp.asarray(z0a)
        f0, c0 = map(np.asarray, _evaluate_at(objective, constraints, Z0, params))
        if c0.ndim != 2 or c0.shape[0] != z0a.shape[0]:
            raise ValueError(
                f"constraints(Z, params) must return [K, nc] = [{z0a.shape[0]}, nc], got shape "
                f"{c0.shape}; return one row block per stage (pad and mask unused rows)."
            )
        if f0.shape != ():
            raise ValueError(f"objective(Z, params) must return a scalar, got shape {f0.shape}.")
        if not (np.isfinite(f0) and np.isfinite(c0).all()):
            raise ValueError(
                f"objective or constraints are non-finite at z0 (objective {float(f0)}); "
                "check the initial guess, the parameters and the functions."
            )
        if constraint_mask is None:
            mask = np.ones(c0.shape, dtype=bool)
        else:
            mask = np.asarray(constraint_mask, dtype=bool)
            if mask.shape != c0.shape:
                raise ValueError(
                    f"constraint_mask must have the constraints' shape {c0.shape}, got "
                    f"{mask.shape}."
                )
        opts = jax.tree.map(lambda v: jnp.asarray(v), opts)
        return _solve(
            objective,
            constraints,
            Z0,
            jnp.asarray(lo),
            jnp.asarray(hi),
            jnp.asarray(mask),
            params,
            opts,
        )
