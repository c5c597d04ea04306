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
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.problems import check_functions
from bellmax.core.caches import jit_per_static
from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields
from bellmax.core.xla import SMALL_LOOP_BYTES, small_loop_bytes

__all__ = ["NLPOptions", "NLPResult", "solve_staged_nlp"]


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

    def __post_init__(self) -> None:
        if any(isinstance(v, jax.Array) for v in jax.tree.leaves(self)):
            return  # rebuilt from arrays by a tree map or a trace: checked when it was made
        owner = "NLPOptions"
        check_number(self.tol, "tol", owner=owner, low=0, low_open=True)
        check_int(self.max_iterations, "max_iterations", owner=owner, low=1)
        check_int(self.max_line_search, "max_line_search", owner=owner, low=0)
        check_number(self.mu_init, "mu_init", owner=owner, low=0, low_open=True)
        for name in ("constr_viol_tol", "bound_push", "delta_c"):
            check_number(getattr(self, name), name, owner=owner, low=0)
        check_number(self.constr_mult_init_max, "constr_mult_init_max", owner=owner, low=0)


@struct.dataclass
class NLPResult(StatusFields):
    """What `solve_staged_nlp` returns."""

    __repr__ = summary_repr

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
def _gauss_jordan_inverse(S: jax.Array) -> jax.Array:
    """`S^-1` of a small square matrix by Gauss-Jordan elimination with partial pivoting
    (rows of `[S | I]` swapped and combined until the left half is `I`), in XLA's own
    operations, `m` steps unrolled: inside a loop that XLA:CPU compiles into one kernel
    (`bellmax.core.xla.small_loop_bytes`) it costs arithmetic, not a LAPACK call per matrix.
    A singular `S` gives non-finite entries, as LAPACK's inverse does."""
    m = S.shape[-1]
    rows = jnp.arange(m)
    A = jnp.concatenate([S, jnp.eye(m, dtype=S.dtype)], axis=1)
    for k in range(m):
        p = jnp.argmax(jnp.where(rows >= k, jnp.abs(A[:, k]), -1.0))  # partial pivoting
        row_k, row_p = A[k], A[p]
        A = A.at[p].set(row_k)
        pivot_row = row_p / row_p[k]
        A = A - jnp.where(rows == k, 0.0, A[:, k])[:, None] * pivot_row[None, :]
        A = A.at[k].set(pivot_row)
    return A[:, m:]


def _pivot_inverse() -> Callable[[jax.Array], jax.Array]:
    """How `_block_tridiag_factor` inverts its pivot blocks, chosen at trace time: by
    `_gauss_jordan_inverse` when XLA:CPU compiles its stage loop into one kernel
    (`tune_xla_flags`' threshold, which the stage loops of the collocation problems here
    are under; the 100-stage cart-pole swing-up's factorisation then takes about a third of
    the time), else by LAPACK (`jnp.linalg.inv`), whose one call per block is then cheaper
    than the elimination's separate XLA operations."""
    if small_loop_bytes() >= SMALL_LOOP_BYTES:
        return _gauss_jordan_inverse
    return jnp.linalg.inv


def _block_tridiag_factor(D: jax.Array, E: jax.Array) -> tuple[Any, jax.Array]:
    """Factor the symmetric block-tridiagonal matrix with diagonal `D[k]`, upper `E[k]`.

    Block elimination along the stages (a block LDL' factorisation: pivot blocks
    `S_k = D_k - E_{k-1}' S_{k-1}^{-1} E_{k-1}`, each inverted with partial pivoting
    (`_pivot_inverse`); the inverse is kept, so every later solve, the second-order
    correction's included, is matrix-vector products: a 100-stage solve with one LU solve
    per stage spent most of its time in per-stage LAPACK calls, not in arithmetic). By
    Sylvester's law of inertia the matrix has as many negative eigenvalues as the pivot
    blocks together, so they are returned for the inertia correction. `D, E: [K, m, m]`.

    Returns:
      `(factors, S)`: what `_block_tridiag_apply` needs, and the pivot blocks `S [K, m, m]`
      (their inertia is the matrix's: `_count_nonpositive`, or `_saddle_inertia_is_right`
      for KKT matrices).
    """
    inverse = _pivot_inverse()

    def fwd(carry, inp):
        P_prev, E_prev = carry
        Dk, Ek = inp
        S = Dk - E_prev.T @ P_prev
        S = 0.5 * (S + S.T)
        S_inv = inverse(S)
        P = S_inv @ Ek
        return (P, Ek), (P, S_inv, S)

    zero = jnp.zeros(D.shape[1:], D.dtype)
    _, (P, S_inv, S) = jax.lax.scan(fwd, (zero, zero), (D, E))
    return (P, S_inv, E), S


#: The smallest pivot, relative to the largest entry below it, that `_pivot_inertia`'s
#: LDL' accepts (its multipliers stay below 1 / this).
_PIVOT_RATIO = 1e-6


def _pivot_inertia(S: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`(count, trusted)`: the nonpositive pivots of an LDL' factorisation with diagonal
    pivoting (at each step the largest diagonal entry left) of every block of `S [K, m, m]`,
    in one vectorised elimination of `m` steps, and whether no multiplier exceeded
    `1 / _PIVOT_RATIO` (then, by Sylvester's law of inertia, the pivots' signs are the
    eigenvalues' signs). The zero band is `_count_nonpositive`'s, with `max |S|`."""
    K, m = S.shape[:2]
    rows = jnp.arange(K)

    def eliminate(j, c):
        A, d, left, ok = c
        diag = jnp.abs(jnp.diagonal(A, axis1=1, axis2=2))
        i = jnp.argmax(jnp.where(left, diag, -1.0), axis=1)  # the largest pivot left
        p = A[rows, i, i]
        left = left.at[rows, i].set(False)
        col = A[rows, :, i] * left
        ok = ok & (jnp.abs(p) > _PIVOT_RATIO * jnp.max(jnp.abs(col), axis=1))  # |L| bounded
        safe = jnp.where(jnp.abs(p) > 0, p, 1.0)
        A = A - col[:, :, None] * col[:, None, :] / safe[:, None, None]
        return A, d.at[:, j].set(p), left, ok

    init = (S, jnp.zeros((K, m), S.dtype), jnp.ones((K, m), bool), jnp.ones(K, bool))
    _, d, _, ok = jax.lax.fori_loop(0, m, eliminate, init, unroll=True)
    scale = jnp.maximum(1.0, jnp.max(jnp.abs(S), axis=(-2, -1)))
    return jnp.sum(d <= 1e-14 * scale[:, None]), jnp.all(ok)


def _count_nonpositive(S: jax.Array) -> jax.Array:
    """How many eigenvalues of the symmetric blocks `S [K, m, m]` are negative or numerically
    zero (`<= 1e-14 max(1, max |eigenvalue|)` per block), all blocks together.

    From the pivots of `_pivot_inertia` when it trusts them; otherwise every block's
    eigenvalues (LAPACK, one call per block: on a 100-stage collocation, computing them at
    every factorisation was 70% of the whole interior-point solve).
    """
    count, trusted = _pivot_inertia(S)

    def by_eigenvalues(_):
        ev = jnp.linalg.eigvalsh(S)
        tiny = 1e-14 * jnp.maximum(1.0, jnp.max(jnp.abs(ev), axis=-1, keepdims=True))
        return jnp.sum(ev <= tiny)

    return jax.lax.cond(trusted, lambda _: count, by_eigenvalues, None)


#: `_saddle_inertia_is_right` decides by itself when every pivot of its elimination is beyond
#: this, relative to the block's largest diagonal entry, on either side of zero (its
#: rounding errors are about `nz` machine epsilons of that entry); otherwise it counts.
_SCHUR_PIVOT_MARGIN = 1e-13


def _saddle_inertia_is_right(S: jax.Array, nz: int, c: jax.Array) -> jax.Array:
    """Whether the KKT matrix whose pivot blocks are `S [K, m, m]` has exactly `K nc`
    negative eigenvalues and no (numerically) zero one, `nc = m - nz`.

    Each pivot block is `[[A_k, B_k'], [B_k, -diag(c_k)]]`: the stage elimination changes
    only the `dz` block, and `c [K, nc] > 0` is the constraint block's diagonal (`delta_c`,
    or 1 on switched-off rows). Eliminating `-diag(c_k)` first, Sylvester's law gives
    `inertia(S_k) = (0, nc, 0) + inertia(M_k)`, `M_k = A_k + B_k' diag(1 / c_k) B_k`, so the
    count is `K nc` exactly when every `M_k` is positive definite. That is decided by one
    batched LDL' without pivoting of the `nz x nz` blocks `M_k` (Sylvester again: positive
    definite iff every pivot is positive; a negative pivot after positive ones proves it
    is not); a pivot within `_SCHUR_PIVOT_MARGIN` of zero, or a `c` that is not positive
    (`delta_c = 0`), leaves the decision to `_count_nonpositive` on `S`. On a 100-stage
    collocation this takes less than half the counting's time (67 against 155 us).
    """
    K, m = S.shape[:2]
    nc = m - nz
    A, B = S[:, :nz, :nz], S[:, nz:, :nz]
    c_ok = jnp.all(c > 0)
    inv_c = jnp.where(c > 0, 1.0 / jnp.where(c > 0, c, 1.0), 0.0)
    M = A + jnp.einsum("kri,kr,krj->kij", B, inv_c, B)
    tol = _SCHUR_PIVOT_MARGIN * jnp.max(jnp.abs(jnp.diagonal(M, axis1=1, axis2=2)), axis=1)
    positive = jnp.ones(K, bool)  # all pivots so far clearly positive
    negative = jnp.zeros(K, bool)  # a clearly negative pivot after clearly positive ones
    for _ in range(nz):  # static shapes: M shrinks by a row and a column per step
        d = M[:, 0, 0]
        negative = negative | (positive & (d < -tol))
        positive = positive & (d > tol)
        col = M[:, 1:, 0] / jnp.where(positive, d, 1.0)[:, None]
        M = M[:, 1:, 1:] - col[:, :, None] * M[:, None, 0, 1:]
    decided = c_ok & jnp.all(positive | negative)

    def count(_):
        return _count_nonpositive(S) == K * nc

    return jax.lax.cond(decided, lambda _: jnp.all(positive), count, None)


def _block_tridiag_apply(factors: Any, b: jax.Array) -> jax.Array:
    """Solve with the factors of `_block_tridiag_factor`; `b: [K, m]` -> `w: [K, m]`."""
    P, S_inv, E = factors
    E_prev = jnp.concatenate([jnp.zeros_like(E[:1]), E[:-1]], axis=0)

    def fwd(q_prev, inp):
        S_inv_k, E_k, b_k = inp
        q = S_inv_k @ (b_k - E_k.T @ q_prev)
        return q, q

    _, q = jax.lax.scan(fwd, jnp.zeros_like(b[0]), (S_inv, E_prev, b))

    def bwd(w_next, inp):
        Pk, qk = inp
        w = qk - Pk @ w_next
        return w, w

    _, w = jax.lax.scan(bwd, jnp.zeros_like(b[0]), (P, q), reverse=True)
    return w


def _block_tridiag_solve(D: jax.Array, E: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Factor and solve; returns `(w, num_negative)`: the solution and the number of
    negative (or numerically zero) eigenvalues of the matrix."""
    factors, S = _block_tridiag_factor(D, E)
    return _block_tridiag_apply(factors, b), _count_nonpositive(S)


def _kkt_solve(Hd, Ho, Jd, Jo, sigma, delta_w, delta_c, free, row_on, rz, rc):
    """Newton step `(dz, dy)` for `[[H + Sigma + delta_w, J'], [J, -delta_c]] [dz; dy] = [rz; rc]`.

    Fixed variables get the row `dz = 0`; switched-off constraint rows `dy = 0`. Also returns
    whether the matrix's inertia is right (exactly `K nc` negative eigenvalues, no zero one:
    `_saddle_inertia_is_right`) and its factors (for `_kkt_apply`).
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
    factors, S = _block_tridiag_factor(D, E)
    dz, dy = _kkt_apply(factors, free, row_on, rz, rc)
    return dz, dy, _saddle_inertia_is_right(S, nz, -Cdiag), factors


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


_S_MAX = 100.0
"""IPOPT's `s_max`: the scaling of the optimality error starts above this multiplier size."""
_KAPPA_SIGMA = 1e10
"""IPOPT's `kappa_sigma`: bound multipliers stay within this factor of `mu / slack`."""


@struct.dataclass
class _Program:
    """The NLP as the phases of an iteration see it: functions, bounds and filter limits."""

    objective: Callable = struct.field(pytree_node=False)
    constraints: Callable = struct.field(pytree_node=False)
    params: Any
    lower: jax.Array  # [K, nz]
    upper: jax.Array  # [K, nz]
    row_on: jax.Array  # [K, nc] constraint rows switched on
    free: jax.Array  # [K, nz] not fixed (lower < upper)
    has_lo: jax.Array  # [K, nz] free with a finite lower bound
    has_up: jax.Array  # [K, nz] free with a finite upper bound
    opts: NLPOptions
    theta_min: jax.Array | None = None  # switching-condition threshold on the violation
    theta_max: jax.Array | None = None  # the filter's ceiling on the violation

    def f(self, Z: jax.Array) -> jax.Array:
        """The objective."""
        return self.objective(Z, self.params)

    def c(self, Z: jax.Array) -> jax.Array:
        """The constraints, zero on switched-off rows."""
        return jnp.where(self.row_on, self.constraints(Z, self.params), 0.0)

    def slacks(self, Z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(Z - lower, upper - Z)`, 1 where there is no bound."""
        sl = jnp.where(self.has_lo, Z - self.lower, 1.0)
        su = jnp.where(self.has_up, self.upper - Z, 1.0)
        return sl, su

    def barrier(self, Z: jax.Array, mu: jax.Array) -> jax.Array:
        """`f - mu sum log(slacks)`."""
        sl, su = self.slacks(Z)
        logs = jnp.sum(jnp.where(self.has_lo, jnp.log(sl), 0.0)) + jnp.sum(
            jnp.where(self.has_up, jnp.log(su), 0.0)
        )
        return self.f(Z) - mu * logs


class _Eval(NamedTuple):
    """The functions and first derivatives at an iterate."""

    f: jax.Array  # objective
    g: jax.Array  # its gradient [K, nz]
    c: jax.Array  # constraints [K, nc]
    Jd: jax.Array  # dc_k/dz_k [K, nc, nz]
    Jo: jax.Array  # dc_k/dz_{k+1}
    rd: jax.Array  # dual residual grad f + J'y - zl + zu on the free variables


class _Metrics(NamedTuple):
    """The optimality measures at an iterate (`mu = 0`)."""

    err0: jax.Array  # IPOPT's scaled E_0
    dual: jax.Array
    primal: jax.Array


class _Iterate(NamedTuple):
    """The solver's loop state."""

    Z: jax.Array
    y: jax.Array
    zl: jax.Array
    zu: jax.Array
    mu: jax.Array
    delta_last: jax.Array  # the last nonzero Hessian regularisation
    it: jax.Array
    status: jax.Array
    stalls: jax.Array  # consecutive iterations whose line search failed
    ev: _Eval
    metrics: _Metrics


class _Newton(NamedTuple):
    """The barrier subproblem's Newton system at an iterate (before regularisation)."""

    sl: jax.Array
    su: jax.Array
    sigma: jax.Array  # primal-dual bound curvature zl/sl + zu/su
    Hd: jax.Array
    Ho: jax.Array
    grad_phi: jax.Array  # gradient of the barrier objective
    rz: jax.Array
    rc: jax.Array


class _Step(NamedTuple):
    """A factorised, inertia-corrected Newton step."""

    dz: jax.Array
    dy: jax.Array
    delta: jax.Array  # the Hessian regularisation used (0 when none was needed)
    factors: Any
    ok: jax.Array
    tries: jax.Array


class _Trial(NamedTuple):
    """The next primal-dual point from the line search."""

    Z: jax.Array
    y: jax.Array
    zl: jax.Array
    zu: jax.Array
    accepted: jax.Array


# ----------------------------------------------------------------------------- phases
def _evaluate(P: _Program, Z, y, zl, zu) -> _Eval:
    fz, g = jax.value_and_grad(P.f)(Z)
    c, Jd, Jo = _jacobian_blocks(P.c, Z)
    rd = jnp.where(P.free, g + _jt_y(Jd, Jo, y) - zl + zu, 0.0)
    return _Eval(fz, g, c, Jd, Jo, rd)


def _errors(P: _Program, Z, y, zl, zu, c, rd, mu) -> tuple[jax.Array, _Metrics]:
    """IPOPT's scaled optimality error `E_mu` (eq. 5) and its parts."""
    sl, su = P.slacks(Z)
    n_free = jnp.maximum(jnp.sum(P.free), 1)
    m_on = jnp.maximum(jnp.sum(P.row_on), 1)
    s_d = jnp.maximum(
        _S_MAX,
        (jnp.sum(jnp.abs(y)) + jnp.sum(jnp.abs(zl)) + jnp.sum(jnp.abs(zu))) / (n_free + m_on),
    )
    s_d = s_d / _S_MAX
    s_c = jnp.maximum(_S_MAX, (jnp.sum(jnp.abs(zl)) + jnp.sum(jnp.abs(zu))) / n_free) / _S_MAX
    dual = jnp.max(jnp.abs(rd))
    primal = jnp.max(jnp.abs(c))
    comp = jnp.maximum(
        jnp.max(jnp.where(P.has_lo, jnp.abs(sl * zl - mu), 0.0)),
        jnp.max(jnp.where(P.has_up, jnp.abs(su * zu - mu), 0.0)),
    )
    err = jnp.maximum(jnp.maximum(dual / s_d, primal), comp / s_c)
    return err, _Metrics(err, dual, primal)


def _measure(P: _Program, Z, y, zl, zu) -> tuple[_Eval, _Metrics]:
    ev = _evaluate(P, Z, y, zl, zu)
    _, metrics = _errors(P, Z, y, zl, zu, ev.c, ev.rd, 0.0)
    return ev, metrics


def _barrier_update(P: _Program, s: _Iterate) -> jax.Array:
    """The monotone Fiacco-McCormick update (IPOPT eq. 7) once `E_mu <= 10 mu`."""
    mu = s.mu
    err_mu, _ = _errors(P, s.Z, s.y, s.zl, s.zu, s.ev.c, s.ev.rd, mu)
    return jnp.where(
        err_mu <= 10.0 * mu,
        jnp.maximum(P.opts.tol / 10.0, jnp.minimum(0.2 * mu, mu**1.5)),
        mu,
    )


def _newton_system(P: _Program, s: _Iterate, mu: jax.Array) -> _Newton:
    """KKT assembly: the Hessian blocks of the Lagrangian and the right-hand sides."""
    sl, su = P.slacks(s.Z)
    sigma = jnp.where(P.has_lo, s.zl / sl, 0.0) + jnp.where(P.has_up, s.zu / su, 0.0)
    Hd, Ho = _hessian_blocks(lambda W: P.f(W) + jnp.sum(s.y * P.c(W)), s.Z)
    grad_phi = s.ev.g - jnp.where(P.has_lo, mu / sl, 0.0) + jnp.where(P.has_up, mu / su, 0.0)
    rz = -(grad_phi + _jt_y(s.ev.Jd, s.ev.Jo, s.y))
    return _Newton(sl, su, sigma, Hd, Ho, grad_phi, rz, -s.ev.c)


def _regularised_step(P: _Program, e: _Eval, newton: _Newton, delta_last) -> _Step:
    """Factorise, regularising by `delta_w I` until the inertia is right (IPOPT section 3.1).

    The first try has no regularisation; then `delta_w` starts from the last one used
    (divided by 3) or 1e-4 and grows by 8 (100 the first time), at most 25 tries.
    """

    def factor_and_solve(delta, k):
        dz, dy, inertia_ok, factors = _kkt_solve(
            newton.Hd,
            newton.Ho,
            e.Jd,
            e.Jo,
            newton.sigma,
            delta,
            P.opts.delta_c,
            P.free,
            P.row_on,
            newton.rz,
            newton.rc,
        )
        # Inertia correction: exactly K * nc negative eigenvalues.
        ok = inertia_ok & jnp.all(jnp.isfinite(dz)) & jnp.all(jnp.isfinite(dy))
        return _Step(dz, dy, delta, factors, ok, k)

    def cond(t: _Step) -> jax.Array:
        return (~t.ok) & (t.tries < 25)

    def body(t: _Step) -> _Step:
        delta, k = t.delta, t.tries
        delta = jnp.where(
            k == 0,
            0.0,
            jnp.where(
                delta == 0.0,
                jnp.where(delta_last == 0.0, 1e-4, jnp.maximum(1e-20, delta_last / 3.0)),
                jnp.where(delta_last == 0.0, 100.0 * delta, 8.0 * delta),
            ),
        )
        return factor_and_solve(delta, k + 1)

    dtype = newton.rz.dtype
    shapes = jax.eval_shape(factor_and_solve, jnp.zeros((), dtype), 0)
    zeros = jax.tree.map(
        lambda a: jnp.zeros(a.shape, a.dtype), (shapes.dz, shapes.dy, shapes.factors)
    )
    init = _Step(zeros[0], zeros[1], jnp.zeros((), dtype), zeros[2], False, 0)
    return jax.lax.while_loop(cond, body, init)


def _bound_steps(P: _Program, newton: _Newton, s: _Iterate, mu, dz, tau):
    """Bound-multiplier steps for `dz` and their fraction-to-the-boundary step size."""
    sl, su = newton.sl, newton.su
    dzl = jnp.where(P.has_lo, (mu - sl * s.zl - s.zl * dz) / sl, 0.0)
    dzu = jnp.where(P.has_up, (mu - su * s.zu + s.zu * dz) / su, 0.0)
    a_du = jnp.minimum(_max_step(s.zl, dzl, tau, P.has_lo), _max_step(s.zu, dzu, tau, P.has_up))
    return dzl, dzu, a_du


def _primal_step_size(P: _Program, newton: _Newton, dz, tau):
    """The fraction-to-the-boundary step size for `dz`."""
    return jnp.minimum(
        _max_step(newton.sl, dz, tau, P.has_lo), _max_step(newton.su, -dz, tau, P.has_up)
    )


def _line_search(P: _Program, s: _Iterate, mu, newton: _Newton, step: _Step) -> _Trial:
    """Filter line search with one second-order correction (IPOPT sections 2.3-2.4).

    The filter is the current point and a ceiling on the constraint violation: a trial point
    is accepted if it reduces the barrier objective by Armijo's rule when the step is
    objective-driven (the switching condition), else if it reduces either the violation or
    the objective enough. The full step comes first; if it is rejected, one second-order
    correction (the constraints re-linearised at the trial point, same factors) against the
    Maratos effect; then backtracking on the original direction.
    """
    Z, y, zl, zu = s.Z, s.y, s.zl, s.zu
    dz, dy = step.dz, step.dy
    tau = jnp.maximum(0.99, 1.0 - mu)
    a_pr = _primal_step_size(P, newton, dz, tau)
    dzl, dzu, a_du = _bound_steps(P, newton, s, mu, dz, tau)

    theta = jnp.sum(jnp.abs(s.ev.c))
    phi = P.barrier(Z, mu)
    slope = jnp.sum(newton.grad_phi * dz)

    def acceptable(Zt, a):
        inside = jnp.all(
            jnp.where(P.has_lo, Zt > P.lower, True) & jnp.where(P.has_up, Zt < P.upper, True)
        )
        th_t = jnp.sum(jnp.abs(P.c(Zt)))
        ph_t = P.barrier(Zt, mu)
        switching = (slope < 0) & (a * (-slope) ** 2.3 > theta**1.1) & (theta <= P.theta_min)
        armijo = ph_t <= phi + 1e-4 * a * slope
        sufficient = (th_t <= (1 - 1e-5) * theta) | (ph_t <= phi - 1e-8 * theta)
        ok = jnp.where(switching, armijo, sufficient) & (th_t <= P.theta_max)
        return inside & jnp.isfinite(ph_t) & jnp.isfinite(th_t) & ok

    ok_full = acceptable(Z + a_pr * dz, a_pr)

    def second_order_correction(_):
        c_soc = a_pr * s.ev.c + P.c(Z + a_pr * dz)
        dz_soc, dy_soc = _kkt_apply(step.factors, P.free, P.row_on, newton.rz, -c_soc)
        a_soc = _primal_step_size(P, newton, dz_soc, tau)
        return dz_soc, dy_soc, a_soc, acceptable(Z + a_soc * dz_soc, a_pr)

    def not_needed(_):
        return dz, dy, a_pr, jnp.zeros((), bool)

    # Only when the full step is rejected (the solve costs as much as a few function
    # evaluations; most full steps are accepted).
    dz_soc, dy_soc, a_soc, ok_soc = jax.lax.cond(ok_full, not_needed, second_order_correction, None)
    dz = jnp.where(ok_soc, dz_soc, dz)
    dy = jnp.where(ok_soc, dy_soc, dy)
    a_first = jnp.where(ok_soc, a_soc, a_pr)

    def ls_cond(t):
        _, k, accepted = t
        return (~accepted) & (k < P.opts.max_line_search)

    def ls_body(t):
        a, k, _ = t
        a = 0.5 * a
        return a, k + 1, acceptable(Z + a * dz, a)

    alpha, _, accepted = jax.lax.while_loop(ls_cond, ls_body, (a_first, 0, ok_full | ok_soc))
    dzl_soc, dzu_soc, a_du_soc = _bound_steps(P, newton, s, mu, dz, tau)
    dzl = jnp.where(ok_soc, dzl_soc, dzl)
    dzu = jnp.where(ok_soc, dzu_soc, dzu)
    a_du = jnp.where(ok_soc, a_du_soc, a_du)
    Z_new = Z + alpha * dz
    zl_new, zu_new = _central_multipliers(P, Z_new, zl + a_du * dzl, zu + a_du * dzu, mu)
    return _Trial(Z_new, y + alpha * dy, zl_new, zu_new, accepted)


def _central_multipliers(P: _Program, Z, zl, zu, mu):
    """Keep the bound multipliers near the central path (IPOPT eq. 16)."""
    sl, su = P.slacks(Z)
    zl = jnp.where(P.has_lo, jnp.clip(zl, mu / (_KAPPA_SIGMA * sl), _KAPPA_SIGMA * mu / sl), 0.0)
    zu = jnp.where(P.has_up, jnp.clip(zu, mu / (_KAPPA_SIGMA * su), _KAPPA_SIGMA * mu / su), 0.0)
    return zl, zu


def _stopping(P: _Program, metrics: _Metrics, finite, stalls, it) -> jax.Array:
    """The status after an iteration (RUNNING while none of the stopping rules holds)."""
    done = (metrics.err0 <= P.opts.tol) & (metrics.primal <= P.opts.constr_viol_tol)
    return jnp.where(
        ~finite,
        Status.DIVERGED,
        jnp.where(
            done,
            Status.CONVERGED,
            jnp.where(
                stalls >= 5,
                Status.STALLED,
                jnp.where(it >= P.opts.max_iterations, Status.MAX_ITERATIONS, Status.RUNNING),
            ),
        ),
    ).astype(jnp.int32)


def _iteration(P: _Program, s: _Iterate) -> _Iterate:
    """One interior-point iteration: barrier update, Newton step, line search, stopping test."""
    mu = _barrier_update(P, s)
    newton = _newton_system(P, s, mu)
    step = _regularised_step(P, s.ev, newton, s.delta_last)
    delta_last = jnp.where(step.delta > 0.0, step.delta, s.delta_last)
    trial = _line_search(P, s, mu, newton, step)
    stalls = jnp.where(trial.accepted, 0, s.stalls + 1)
    ev_new, metrics_new = _measure(P, trial.Z, trial.y, trial.zl, trial.zu)
    finite = (
        jnp.all(jnp.isfinite(trial.Z))
        & jnp.all(jnp.isfinite(trial.y))
        & jnp.isfinite(ev_new.f)
        & jnp.isfinite(metrics_new.err0)
    )
    it = s.it + 1
    status = _stopping(P, metrics_new, finite, stalls, it)
    # A non-finite trial point is not taken: the result keeps the last finite iterate.
    new = (trial.Z, trial.y, trial.zl, trial.zu, ev_new, metrics_new)
    old = (s.Z, s.y, s.zl, s.zu, s.ev, s.metrics)
    Z, y, zl, zu, ev, metrics = jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
    return _Iterate(Z, y, zl, zu, mu, delta_last, it, status, stalls, ev, metrics)


# ----------------------------------------------------------------------------- the solver
def _initial_point(P: _Program, Z0: jax.Array) -> jax.Array:
    """`Z0` pushed inside the bounds by the bound push (IPOPT section 3.6)."""
    lower, upper, has_lo, has_up = P.lower, P.upper, P.has_lo, P.has_up
    span = jnp.where(has_lo & has_up, upper - lower, jnp.inf)
    push_l = jnp.minimum(P.opts.bound_push * jnp.maximum(1.0, jnp.abs(lower)), 0.5 * span)
    push_u = jnp.minimum(P.opts.bound_push * jnp.maximum(1.0, jnp.abs(upper)), 0.5 * span)
    Z = jnp.where(has_lo, jnp.maximum(Z0, lower + push_l), Z0)
    Z = jnp.where(has_up, jnp.minimum(Z, upper - push_u), Z)
    return jnp.where(~P.free, lower, Z)


def _initial_multipliers(P: _Program, Z, zl0, zu0) -> jax.Array:
    """Least-squares multipliers (IPOPT's constr_mult_init; dropped when larger than 1000)."""
    K, nz = Z.shape
    nc = P.row_on.shape[1]
    dtype = Z.dtype
    e = _evaluate(P, Z, jnp.zeros((K, nc), dtype), zl0, zu0)
    zero_blocks = jnp.zeros((K, nz, nz), dtype)
    _, y_ls, _, _ = _kkt_solve(
        zero_blocks,
        zero_blocks,
        e.Jd,
        e.Jo,
        jnp.ones_like(Z),
        jnp.zeros((), dtype),
        P.opts.delta_c,
        P.free,
        P.row_on,
        -(e.g - zl0 + zu0),
        jnp.zeros_like(e.c),
    )
    ok = jnp.all(jnp.isfinite(y_ls)) & (jnp.max(jnp.abs(y_ls)) <= P.opts.constr_mult_init_max)
    return jnp.where(ok, y_ls, 0.0)


@functools.partial(jit_per_static, static_argnums=(0, 1))
def _solve(objective, constraints, Z0, lower, upper, row_on, params, opts) -> NLPResult:
    dtype = Z0.dtype
    free = ~(lower == upper)
    has_lo, has_up = jnp.isfinite(lower) & free, jnp.isfinite(upper) & free
    P = _Program(objective, constraints, params, lower, upper, row_on, free, has_lo, has_up, opts)
    Z = _initial_point(P, Z0)
    zl0 = jnp.where(P.has_lo, 1.0, 0.0).astype(dtype)
    zu0 = jnp.where(P.has_up, 1.0, 0.0).astype(dtype)
    y0 = _initial_multipliers(P, Z, zl0, zu0)
    ev0, metrics0 = _measure(P, Z, y0, zl0, zu0)
    done0 = (metrics0.err0 <= opts.tol) & (metrics0.primal <= opts.constr_viol_tol)
    status0 = jnp.where(
        ~jnp.isfinite(metrics0.err0),
        Status.DIVERGED,
        jnp.where(done0, Status.CONVERGED, Status.RUNNING),
    ).astype(jnp.int32)
    init = _Iterate(
        Z=Z,
        y=y0,
        zl=zl0,
        zu=zu0,
        mu=jnp.asarray(opts.mu_init, dtype),
        delta_last=jnp.zeros((), dtype),
        it=jnp.asarray(0),
        status=status0,
        stalls=jnp.asarray(0),
        ev=ev0,
        metrics=metrics0,
    )
    theta0 = jnp.sum(jnp.abs(ev0.c))
    P = P.replace(
        theta_max=1e4 * jnp.maximum(1.0, theta0), theta_min=1e-4 * jnp.maximum(1.0, theta0)
    )
    out = jax.lax.while_loop(
        lambda s: s.status == Status.RUNNING, functools.partial(_iteration, P), init
    )
    sl, su = P.slacks(out.Z)
    comp = jnp.maximum(
        jnp.max(jnp.where(P.has_lo, sl * out.zl, 0.0)),
        jnp.max(jnp.where(P.has_up, su * out.zu, 0.0)),
    )
    return NLPResult(
        z=out.Z,
        y=out.y,
        z_lower=out.zl,
        z_upper=out.zu,
        objective=out.ev.f,
        iterations=out.it,
        status=out.status,
        constraint_violation=out.metrics.primal,
        dual_infeasibility=out.metrics.dual,
        complementarity=comp,
        kkt_error=out.metrics.err0,
        mu=out.mu,
    )


@functools.partial(jit_per_static, static_argnums=(0, 1))
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
    check_functions({"objective": objective, "constraints": constraints}, args="Z, params")
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
