"""Policy evaluation, `v_pi = r_pi + gamma P_pi v_pi` (Sutton & Barto, §4.1; Puterman, §6.1).

Four methods over the sum-product Bellman backup of the policy's Markov reward process
(`policy_mrp`): a direct linear solve, Jacobi-style sweeps, Gauss-Seidel-style in-place
sweeps and BiCGSTAB (Krylov). `policy_iteration` (in `control`) evaluates through
`evaluate_body` / `evaluate_arrays` from here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from bellmax.core.checks import check_int
from bellmax.core.errors import unknown_name
from bellmax.core.mdp import TabularMDP
from bellmax.core.semiring import (
    SUM_PRODUCT,
    MDPArrays,
    bellman_backup,
    expected_next_values,
    q_values,
)
from bellmax.core.status import Status
from bellmax.tabular._common import (
    DPResult,
    Solve,
    absorbing_zero,
    check_policy_table,
    check_positive,
    check_values,
    dp_result,
    fixed_point,
    jit_q_values,
    next_status,
    policy_mrp,
    precision,
    prepare,
)

__all__ = [
    "EVALUATION_METHODS",
    "KRYLOV_CYCLE",
    "auto_method",
    "check_method",
    "evaluate_arrays",
    "evaluate_body",
    "evaluate_policy",
    "runs_in_jax",
]

#: `evaluate_policy` methods ("auto": "direct" for dense MDPs, "krylov" for sparse ones).
EVALUATION_METHODS = ("auto", "direct", "jacobi", "gauss-seidel", "krylov")
#: BiCGSTAB steps per restart cycle of the Krylov policy evaluation.
KRYLOV_CYCLE = 25
#: A state whose policy self-transition probability is at least this is absorbing.
#: Methods that run entirely in JAX (for dense MDPs; "direct" on sparse ones uses scipy).
_JAX_METHODS = ("jacobi", "krylov")


def check_method(method: Any, known: Sequence[str], kind: str) -> str:
    """`method` if it is one of `known`, else an `UnknownNameError` suggesting the closest."""
    if not isinstance(method, str) or method not in known:
        raise unknown_name(kind, str(method), known)
    return method


def auto_method(mdp: TabularMDP, method: str) -> str:
    """ "auto": a dense LU for dense MDPs; BiCGSTAB for sparse ones (a sparse LU of a random
    transition graph fills in, and was 70x slower than BiCGSTAB at 1000 states)."""
    if method != "auto":
        return method
    return "krylov" if mdp.is_sparse else "direct"


def runs_in_jax(m: MDPArrays, method: str) -> bool:
    """Whether `method` on `m` runs as one compiled program (else on the host, with scipy)."""
    return method in _JAX_METHODS or (method == "direct" and not m.is_sparse)


# ---------------------------------------------------------------------- the linear system
_absorbing_zero_jit = jax.jit(absorbing_zero)


def _mrp_matvec(mrp: MDPArrays, fixed: jax.Array, v: jax.Array) -> jax.Array:
    """`(I - gamma P_pi) v`, with the rows of `fixed` states replaced by the identity."""
    Pv = expected_next_values(mrp, v)[:, 0]
    return jnp.where(fixed, v, v - mrp.gamma * Pv)


def _host_csr(mrp: MDPArrays) -> sp.csr_matrix:
    """`P_pi` of a one-action MDP as a scipy CSR matrix (host)."""
    if mrp.P is not None:
        return sp.csr_matrix(np.asarray(mrp.P[:, 0, :], dtype=np.float64))
    ns = np.asarray(mrp.next_state[:, :, 0])
    p = np.asarray(mrp.prob[:, :, 0], dtype=np.float64)
    S = ns.shape[1]
    rows = np.broadcast_to(np.arange(S), ns.shape)
    keep = p != 0
    rows, cols, vals = rows[keep], ns[keep], p[keep]
    if mrp.has_overflow:  # rows of the one-action MDP are states
        op = np.asarray(mrp.overflow_prob, dtype=np.float64)
        ok = op != 0
        rows = np.concatenate([rows, np.asarray(mrp.overflow_row)[ok]])
        cols = np.concatenate([cols, np.asarray(mrp.overflow_next_state)[ok]])
        vals = np.concatenate([vals, op[ok]])
    return sp.csr_matrix((vals, (rows, cols)), shape=(S, S))  # duplicates are summed


def _host_solve(mrp: MDPArrays, v: np.ndarray, k: int, res: float, bound: float, status) -> Solve:
    """A host result as a `Solve` of the MDP's dtype."""
    dt = mrp.R.dtype
    return Solve(
        values=jnp.asarray(v, dt),
        iterations=jnp.int32(k),
        residual=jnp.asarray(res, dt),
        error_bound=jnp.asarray(bound, dt),
        status=jnp.int32(status),
    )


# ---------------------------------------------------------------------- the methods
def _jacobi(mrp: MDPArrays, v0: jax.Array, tol: jax.Array, max_it: jax.Array) -> Solve:
    def step(v):
        x = bellman_backup(mrp, v, SUM_PRODUCT).values
        return x, x

    fp = fixed_point(step, v0, mrp.gamma, tol, max_it)
    return Solve(fp.values, fp.iterations, fp.residual, fp.error_bound, fp.status)


def _all_reach(P: jax.Array, target: jax.Array) -> jax.Array:
    """Whether every state of the chain `P [S, S]` reaches a `target` state with positive
    probability (then, in a finite chain, with probability 1: the chain is proper)."""

    def grow(reach):
        return reach | ((P @ reach.astype(P.dtype)) > 0)

    reach, _ = jax.lax.while_loop(
        lambda c: jnp.any(c[0] != c[1]), lambda c: (grow(c[0]), c[0]), (grow(target), target)
    )
    return jnp.all(reach)


def _direct_dense(mrp: MDPArrays) -> Solve:
    P, r, gamma = mrp.P[:, 0, :], mrp.R[:, 0], mrp.gamma
    S = r.shape[0]
    fixed = absorbing_zero(mrp)
    eye = jnp.eye(S, dtype=P.dtype)
    A = jnp.where(fixed[:, None], eye, eye - gamma * P)
    b = jnp.where(fixed, 0.0, r)
    v = jnp.linalg.solve(A, b)
    res = jnp.max(jnp.abs(A @ v - b))
    ok = jnp.all(jnp.isfinite(v)) & jnp.isfinite(res)
    # With gamma = 1, I - P is singular unless the chain is proper, and a backward-stable
    # solve still returns finite (huge) values with a small residual: check the chain itself.
    ok = ok & ((gamma < 1.0) | _all_reach(P, fixed))
    bound = jnp.where(gamma < 1.0, res / jnp.maximum(1.0 - gamma, 1e-300), jnp.inf)
    status = jnp.where(ok, Status.CONVERGED, Status.DIVERGED).astype(jnp.int32)
    return Solve(v, jnp.int32(1), res, bound, status)


def _direct_sparse(mrp: MDPArrays) -> Solve:
    """scipy's sparse LU on the host: exact, fast for banded/local structure."""
    P = _host_csr(mrp)
    r = np.asarray(mrp.R[:, 0], dtype=np.float64)
    gamma = float(mrp.gamma)
    S = r.shape[0]
    fixed = np.asarray(_absorbing_zero_jit(mrp))
    keep = sp.diags((~fixed).astype(np.float64))
    A = (sp.identity(S, format="csr") - gamma * (keep @ P)).tocsc()
    b = np.where(fixed, 0.0, r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = spla.spsolve(A, b)
        except RuntimeError:  # "Factor is exactly singular"
            v = np.full(S, np.nan)
    res = float(np.max(np.abs(A @ v - b))) if np.all(np.isfinite(v)) else math.inf
    ok = bool(np.all(np.isfinite(v))) and math.isfinite(res)
    if ok and gamma >= 1.0:  # singular unless proper (see _direct_dense)
        reach, prev = fixed | (P @ fixed.astype(np.float64) > 0), fixed
        while (reach != prev).any():
            reach, prev = reach | (P @ reach.astype(np.float64) > 0), reach
        ok = bool(reach.all())
    bound = res / (1.0 - gamma) if gamma < 1.0 else math.inf
    return _host_solve(mrp, v, 1, res, bound, Status.CONVERGED if ok else Status.DIVERGED)


def _gauss_seidel(mrp: MDPArrays, v0: jax.Array, tol: float, max_it: int) -> Solve:
    """In-place sweeps in state order, as host triangular solves (scipy).

    One sweep `v_s <- r_s + gamma sum_s' P[s, s'] v_s'` that uses the values already updated
    this sweep is the splitting `(I - gamma L) v_new = r + gamma U v`, where `L` is the strictly
    lower triangle of `P_pi` and `U` the rest: a sparse triangular solve. Gauss-Seidel is
    sequential; scipy's compiled triangular solve beats a `lax.fori_loop` over states here.
    """
    P = _host_csr(mrp)
    S = P.shape[0]
    gamma = float(mrp.gamma)
    r = np.asarray(mrp.R[:, 0], dtype=np.float64)
    M = (sp.identity(S, format="csr") - gamma * sp.tril(P, k=-1, format="csr")).tocsr()
    U = sp.triu(P, k=0, format="csr")
    factor = gamma / (1.0 - gamma) if gamma < 1.0 else 1.0
    v = np.asarray(v0, dtype=np.float64)
    res, status, k = math.inf, Status.RUNNING, 0
    while status == Status.RUNNING:
        v_new = spla.spsolve_triangular(M, r + gamma * (U @ v), lower=True, unit_diagonal=True)
        k += 1
        ok = bool(np.all(np.isfinite(v_new)))
        res = float(np.max(np.abs(v_new - v))) if ok else math.inf
        v = v_new
        if not ok:
            status = Status.DIVERGED
        elif factor * res <= tol:
            status = Status.CONVERGED
        elif k >= max_it:
            status = Status.MAX_ITERATIONS
    bound = factor * res if gamma < 1.0 else math.inf
    return _host_solve(mrp, v, k, res, bound, status)


class _KrylovCarry(NamedTuple):
    v: jax.Array
    cycles: jax.Array
    residual: jax.Array
    """`||b - A v||_inf`."""
    status: jax.Array


def _krylov(mrp: MDPArrays, v0: jax.Array, tol: jax.Array, max_it: jax.Array) -> Solve:
    """BiCGSTAB on `(I - gamma P_pi) v = r_pi`, restarted every `KRYLOV_CYCLE` steps so that
    the loop can count cycles and test the sup-norm residual itself; a cycle in which
    BiCGSTAB breaks down is redone by GMRES."""
    gamma = mrp.gamma
    fixed = absorbing_zero(mrp)
    b = jnp.where(fixed, 0.0, mrp.R[:, 0])
    matvec = partial(_mrp_matvec, mrp, fixed)
    # ||v - v_pi|| <= ||b - A v|| / (1 - gamma): aim the residual at tol * (1 - gamma).
    target = jnp.where(gamma < 1.0, tol * (1.0 - gamma), tol)

    def body(c: _KrylovCarry) -> _KrylovCarry:
        v, _ = jax.scipy.sparse.linalg.bicgstab(
            matvec, b, c.v, tol=0.0, atol=target, maxiter=KRYLOV_CYCLE
        )
        # BiCGSTAB can break down (a zero inner product: NaN) on solvable systems, e.g. a
        # deterministic chain at gamma = 1, where I - P is unipotent; GMRES, which minimises
        # the residual over the same Krylov space, cannot, so the cycle is redone with it.
        v = jax.lax.cond(
            jnp.all(jnp.isfinite(v)),
            lambda: v,
            lambda: jax.scipy.sparse.linalg.gmres(
                matvec, b, c.v, tol=0.0, atol=target, restart=KRYLOV_CYCLE, maxiter=1
            )[0],
        )
        res = jnp.max(jnp.abs(b - matvec(v)))
        ok = jnp.all(jnp.isfinite(v)) & jnp.isfinite(res)
        cycles = c.cycles + 1
        return _KrylovCarry(v, cycles, res, next_status(ok, res, target, cycles, max_it))

    res0 = jnp.max(jnp.abs(b - matvec(v0)))
    status0 = jnp.where(res0 <= target, Status.CONVERGED, Status.RUNNING).astype(jnp.int32)
    init = _KrylovCarry(v=v0, cycles=jnp.int32(0), residual=res0, status=status0)
    out = jax.lax.while_loop(lambda c: c.status == Status.RUNNING, body, init)
    bound = jnp.where(gamma < 1.0, out.residual / jnp.maximum(1.0 - gamma, 1e-300), jnp.inf)
    return Solve(out.v, out.cycles, out.residual, bound, out.status)


# ---------------------------------------------------------------------- one evaluation
def evaluate_body(m: MDPArrays, policy: jax.Array, v0, tol, max_it, method: str) -> Solve:
    """The evaluation of `policy` by a method that runs in JAX (traceable)."""
    mrp = policy_mrp(m, policy)
    if method == "direct":
        return _direct_dense(mrp)
    if method == "jacobi":
        return _jacobi(mrp, v0, tol, max_it)
    return _krylov(mrp, v0, tol, max_it)


@partial(jax.jit, static_argnames=("method",))
def _evaluate_jax(m: MDPArrays, policy: jax.Array, v0, tol, max_it, method: str) -> DPResult:
    """`evaluate_body` and the q-values of the result, as one compiled program."""
    solve = evaluate_body(m, policy, v0, tol, max_it, method)
    return dp_result(solve, policy, q_values(m, solve.values))


_policy_mrp_jit = jax.jit(policy_mrp)


def evaluate_arrays(
    m: MDPArrays, policy: jax.Array, method: str, v0: jax.Array, tol: float, max_it: int
) -> Solve:
    """The evaluation of `policy` by `method`, in JAX or on the host (`runs_in_jax`)."""
    if runs_in_jax(m, method):
        t = jnp.asarray(tol, m.R.dtype)
        res = _evaluate_jax(m, policy, v0, t, jnp.int32(max_it), method=method)
        return Solve(res.values, res.iterations, res.residual, res.error_bound, res.status)
    mrp = _policy_mrp_jit(m, policy)
    if method == "direct":
        return _direct_sparse(mrp)
    return _gauss_seidel(mrp, v0, tol, max_it)


def evaluate_policy(
    mdp: TabularMDP,
    policy: Any,
    *,
    method: str = "direct",
    tol: float = 1e-10,
    max_iterations: int = 100_000,
    v0: Any = None,
    dtype: Any = jnp.float64,
) -> DPResult:
    """The value of a fixed policy, `v_pi = r_pi + gamma P_pi v_pi` (Sutton & Barto, §4.1).

    Methods ("auto" picks "direct" for dense MDPs and "krylov" for sparse ones):
      - "direct": an exact linear solve (dense `jnp.linalg.solve`; sparse MDPs use scipy's
        sparse LU on the host, which suits local structure such as grids; for large random
        sparse problems use "krylov").
      - "jacobi": the book's synchronous "two-array" sweep `v <- r_pi + gamma P_pi v`
        (Jacobi splitting with `M = I`), in a `lax.while_loop`.
      - "gauss-seidel": the book's in-place sweep in state order (Gauss-Seidel splitting
        `M = I - gamma * tril(P_pi, -1)`), as scipy sparse triangular solves on the host.
      - "krylov": BiCGSTAB (`jax.scipy.sparse.linalg.bicgstab`, restarted every
        `KRYLOV_CYCLE` steps) with the backup as its matrix-vector product. (JAX's GMRES
        compiles 3-5 s slower on CPU and stores a `[S, restart]` basis.)

    Stopping rule of the iterative methods: for `gamma < 1` they stop when
    `gamma / (1 - gamma) * ||v_{k+1} - v_k|| <= tol` (sweeps; both are gamma-contractions in
    the sup norm), or `||b - A v|| <= tol * (1 - gamma)` (Krylov), each of which guarantees
    `||v - v_pi||_inf <= tol` (`error_bound`). For `gamma = 1` they stop when the change (or
    residual) is at most `tol` and no error bound is known.

    With `gamma = 1` a state the policy never leaves and that pays nothing (an absorbing
    terminal) has value 0 and is solved as such; if the policy can loop forever elsewhere
    (an improper policy) the system is singular and the status is `diverged`: "direct" then
    returns NaN for every state, also those from which the policy does reach a terminal
    (the iterative methods stop at `max_iterations` with those states' values right).

    Args:
      mdp: the MDP.
      policy: `[S]` action indices or `[S, A]` probabilities.
      method: "direct" (default), "jacobi", "gauss-seidel", "krylov" or "auto".
      tol: accuracy target (> 0); unused by "direct".
      max_iterations: sweep (or BiCGSTAB cycle) limit.
      v0: starting values for the iterative methods (default zeros).
      dtype: float64 (default, computed in JAX's 64-bit mode) or float32.

    Returns:
      A `DPResult`: `values` = v_pi, `policy` = the given policy, `q_values` = q_pi.
    """
    mdp, dt = prepare(mdp, "evaluate_policy", dtype)
    method = auto_method(mdp, check_method(method, EVALUATION_METHODS, "evaluation method"))
    tol = check_positive(tol, "tol", "e.g. tol=1e-8")
    max_iterations = check_int(max_iterations, "max_iterations", low=1)
    S, A = mdp.shape
    pol = check_policy_table(policy, S, A)
    with precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        v0 = check_values(v0, S, dt)
        pol_j = jnp.asarray(pol)
        if runs_in_jax(m, method):
            t, k_max = jnp.asarray(tol, dt), jnp.int32(max_iterations)
            return _evaluate_jax(m, pol_j, v0, t, k_max, method=method)
        solve = evaluate_arrays(m, pol_j, method, v0, tol, max_iterations)
        return dp_result(solve, pol_j, jit_q_values(m, solve.values))
