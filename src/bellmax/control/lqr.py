"""Linear-quadratic regulators: finite-horizon time-varying, and infinite-horizon discrete.

Finite horizon (Bertsekas 2017, DPOC I, section 3.1; Anderson & Moore 1990, chapter 2):
dynamics `x_{t+1} = A_t x_t + B_t u_t + c_t`, stage cost
`0.5 x'Q_t x + 0.5 u'R_t u + x'M_t u + q_t'x + r_t'u` for `t < T` and terminal cost
`0.5 x'Q_T x + q_T'x`. The Riccati recursion runs backwards from `V_T = Q_T`, `v_T = q_T`:

    Q_xx = Q_t + A'V A          q_x = q_t + A'(v + V c)
    Q_uu = R_t + B'V B          q_u = r_t + B'(v + V c)
    Q_ux = M_t' + B'V A
    K_t = -Q_uu^{-1} Q_ux       k_t = -Q_uu^{-1} q_u
    V_t = Q_xx + Q_ux' K_t      v_t = q_x + Q_ux' k_t

and the optimal control is `u_t = K_t x_t + k_t`; the optimal cost-to-go is
`0.5 x'V_t x + v_t'x + s_t`. `finite_horizon_lqr` returns all of these by name
(`LQRSolution`); it is pure and shape-static, so `jax.vmap` runs many problems at once.

Infinite horizon (`dlqr`): the stationary gain `u = K x` of the discrete algebraic Riccati
equation (DARE) `P = Q + A'PA - (A'PB + M)(R + B'PB)^{-1}(B'PA + M')`, found either by
iterating the Riccati map to convergence or by the structure-preserving doubling algorithm
(Chu, Fan & Lin 2005), which converges quadratically. A status says whether it converged.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields

__all__ = [
    "DLQRSolution",
    "LQRSolution",
    "dlqr",
    "finite_horizon_lqr",
    "lqr_rollout",
    "matmul_small",
    "matvec_small",
]


@struct.dataclass
class LQRSolution:
    """The finite-horizon LQR solution: gains, value function and Q-function blocks.

    Shapes: `T` steps, `n` states, `m` controls. `u_t = K[t] @ x_t + k[t]`.
    """

    __repr__ = summary_repr

    K: jax.Array
    """Feedback gains `[T, m, n]`."""
    k: jax.Array
    """Feedforward terms `[T, m]`."""
    V: jax.Array
    """Value Hessians `V_t` `[T+1, n, n]` (`V[T] = Q_T`)."""
    v: jax.Array
    """Value gradients `v_t` `[T+1, n]`."""
    s: jax.Array
    """Value constants `s_t` `[T+1]`: the cost-to-go is `0.5 x'V_t x + v_t'x + s_t`."""
    Q_xx: jax.Array
    """Q-function state block `[T, n, n]`."""
    Q_uu: jax.Array
    """Q-function control block `[T, m, m]`."""
    Q_ux: jax.Array
    """Q-function cross block `[T, m, n]`."""
    q_x: jax.Array
    """Q-function state gradient `[T, n]`."""
    q_u: jax.Array
    """Q-function control gradient `[T, m]`."""

    def value(self, x0: jax.Array) -> jax.Array:
        """The optimal total cost from `x0`: `0.5 x0'V_0 x0 + v_0'x0 + s_0`."""
        return 0.5 * x0 @ self.V[0] @ x0 + self.v[0] @ x0 + self.s[0]


@struct.dataclass
class DLQRSolution(StatusFields):
    """The infinite-horizon discrete LQR solution."""

    __repr__ = summary_repr

    K: jax.Array
    """Stationary gain `[m, n]`: `u = K x` (note the sign: scipy's convention is `-K`)."""
    P: jax.Array
    """DARE solution `[n, n]` (value Hessian)."""
    iterations: jax.Array
    """Iterations taken."""
    residual: jax.Array
    """Max-abs DARE residual at the returned `P`, relative to `max(1, |P|_max)`."""
    status: jax.Array
    """`Status` value: CONVERGED, MAX_ITERATIONS or DIVERGED."""


def matmul_small(a: jax.Array, b: jax.Array) -> jax.Array:
    """`a @ b` for small matrices as one elementwise product and sum.

    On CPU, XLA's dot for 4x4 matrices inside a scan costs microseconds of dispatch
    overhead per call (and is slower still batched); the broadcast form fuses with its
    neighbours. Large products use `@`.
    """
    if a.shape[-1] * a.shape[-2] * b.shape[-1] > 4096:
        return a @ b
    return jnp.sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)


def matvec_small(a: jax.Array, v: jax.Array) -> jax.Array:
    """`a @ v` for a small matrix and vector (see `matmul_small`)."""
    if a.shape[-1] * a.shape[-2] > 4096:
        return a @ v
    return jnp.sum(a * v[..., None, :], axis=-1)


def _spd_solve(H: jax.Array, B: jax.Array) -> jax.Array:
    """`H^{-1} B` for a small symmetric positive definite `H` `[m, m]`, `B` `[m, k]`.

    An unrolled Cholesky factorisation and two triangular solves in elementwise ops
    (m <= 8); larger systems use LAPACK. A non-PD `H` gives NaN (callers check).
    """
    m = H.shape[-1]
    if m > 8:
        return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(H, lower=True), B)
    L = [[None] * m for _ in range(m)]
    for j in range(m):
        s = H[j, j] - sum(L[j][p] ** 2 for p in range(j))
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, m):
            L[i][j] = (H[i, j] - sum(L[i][p] * L[j][p] for p in range(j))) / L[j][j]
    y = [None] * m
    for i in range(m):
        y[i] = (B[i] - sum(L[i][p] * y[p] for p in range(i))) / L[i][i]
    x = [None] * m
    for i in reversed(range(m)):
        x[i] = (y[i] - sum(L[p][i] * x[p] for p in range(i + 1, m))) / L[i][i]
    return jnp.stack(x)


def _sym(X: jax.Array) -> jax.Array:
    return 0.5 * (X + jnp.swapaxes(X, -1, -2))


def _solve_psd(H: jax.Array, B: jax.Array) -> jax.Array:
    """`H^{-1} B` for symmetric positive definite `H` by Cholesky."""
    L = jax.scipy.linalg.cho_factor(H, lower=True)
    return jax.scipy.linalg.cho_solve(L, B)


def _per_step(name: str, X: Any, T: int, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    """Broadcast a time-invariant `shape` array (or zeros for None) to `[T, *shape]`."""
    if X is None:
        return jnp.zeros((T, *shape), dtype)
    X = jnp.asarray(X, dtype)
    if X.shape == shape:
        return jnp.broadcast_to(X, (T, *shape))
    if X.shape == (T, *shape):
        return X
    raise ValueError(
        f"{name} has shape {X.shape}; expected {shape} (time-invariant) or {(T, *shape)} "
        "(one per step)."
    )


def finite_horizon_lqr(
    A: jax.Array,
    B: jax.Array,
    Q: jax.Array,
    R: jax.Array,
    Q_final: jax.Array,
    *,
    M: jax.Array | None = None,
    c: jax.Array | None = None,
    q: jax.Array | None = None,
    r: jax.Array | None = None,
    q_final: jax.Array | None = None,
    horizon: int | None = None,
) -> LQRSolution:
    """Finite-horizon, time-varying LQR with cross and affine terms (module docstring).

    Every per-step argument is either `[T, ...]` (time-varying) or its one-step shape
    (time-invariant, then `horizon` or another argument gives `T`).

    Args:
      A: `[T, n, n]` or `[n, n]`.
      B: `[T, n, m]` or `[n, m]`.
      Q: `[T, n, n]` or `[n, n]`, symmetric.
      R: `[T, m, m]` or `[m, m]`, symmetric; `Q_uu` must be positive definite.
      Q_final: `[n, n]`, symmetric.
      M: cross weights `[T, n, m]` or `[n, m]` (the cost term `x'M u`); default zero.
      c: dynamics offsets `[T, n]` or `[n]`; default zero.
      q, r: linear cost terms `[T, n]`/`[n]`, `[T, m]`/`[m]`; default zero.
      q_final: linear terminal cost `[n]`; default zero.
      horizon: `T` when every per-step argument is time-invariant.

    Returns:
      `LQRSolution` with `K`, `k`, `V`, `v`, `s` and the Q-function blocks. Where a step's
      `Q_uu` is not positive definite (e.g. an indefinite `R` that the dynamics do not make
      up for) the problem has no minimum and that step's gains are NaN: check
      `np.isfinite(solution.K).all()` (`R` may be singular or indefinite, so it is not
      refused up front; there is no status field).

    Raises:
      ValueError: inconsistent shapes, no way to know `T`, or concrete arrays holding NaN or
        inf.
    """
    A = jnp.asarray(A)
    B = jnp.asarray(B)
    if A.ndim not in (2, 3) or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A must be [T, n, n] or [n, n], got shape {A.shape}.")
    n = A.shape[-1]
    if B.ndim not in (2, 3) or B.shape[-2] != n:
        raise ValueError(f"B must be [T, {n}, m] or [{n}, m], got shape {B.shape}.")
    m = B.shape[-1]
    dtype = jnp.result_type(A, B, float)
    T = None
    for X, nd in ((A, 3), (B, 3), (Q, 3), (R, 3), (M, 3), (c, 2), (q, 2), (r, 2)):
        if X is not None and jnp.ndim(X) == nd:
            T = int(jnp.shape(X)[0])
            break
    if horizon is not None:
        if T is not None and T != horizon:
            raise ValueError(f"horizon={horizon} but the per-step arrays have T={T}.")
        T = horizon
    if T is None:
        raise ValueError("all arguments are time-invariant: pass horizon=T.")
    if isinstance(T, bool) or int(T) < 1:
        raise ValueError(f"horizon must be >= 1, got {T}.")
    A = _per_step("A", A, T, (n, n), dtype)
    B = _per_step("B", B, T, (n, m), dtype)
    Q = _per_step("Q", Q, T, (n, n), dtype)
    R = _per_step("R", R, T, (m, m), dtype)
    M = _per_step("M", M, T, (n, m), dtype)
    c = _per_step("c", c, T, (n,), dtype)
    q = _per_step("q", q, T, (n,), dtype)
    r = _per_step("r", r, T, (m,), dtype)
    Qf = jnp.asarray(Q_final, dtype)
    if Qf.shape != (n, n):
        raise ValueError(f"Q_final must be [{n}, {n}], got shape {Qf.shape}.")
    qf = jnp.zeros((n,), dtype) if q_final is None else jnp.asarray(q_final, dtype)
    if qf.shape != (n,):
        raise ValueError(f"q_final must be [{n}], got shape {qf.shape}.")
    named = {"A": A, "B": B, "Q": Q, "R": R, "M": M, "c": c, "q": q, "r": r}
    for name, X in {**named, "Q_final": Qf, "q_final": qf}.items():
        if not isinstance(X, jax.core.Tracer) and not np.isfinite(np.asarray(X)).all():
            raise ValueError(f"{name} must be finite (it holds NaN or inf).")
    return _riccati(A, B, Q, R, M, c, q, r, _sym(Qf), qf)


@jax.jit
def _riccati(A, B, Q, R, M, c, q, r, Qf, qf) -> LQRSolution:
    def step(carry, inp):
        V, v, s = carry
        A_t, B_t, Q_t, R_t, M_t, c_t, q_t, r_t = inp
        Vc_v = v + matvec_small(V, c_t)
        VA = matmul_small(V, A_t)
        VB = matmul_small(V, B_t)
        Q_xx = _sym(Q_t + matmul_small(A_t.T, VA))
        Q_uu = _sym(R_t + matmul_small(B_t.T, VB))
        Q_ux = M_t.T + matmul_small(B_t.T, VA)
        q_x = q_t + matvec_small(A_t.T, Vc_v)
        q_u = r_t + matvec_small(B_t.T, Vc_v)
        sol = _spd_solve(Q_uu, jnp.concatenate([Q_ux, q_u[:, None]], axis=1))
        K, k = -sol[:, :-1], -sol[:, -1]
        V_new = _sym(Q_xx + matmul_small(Q_ux.T, K))
        v_new = q_x + matvec_small(Q_ux.T, k)
        s_new = (
            s
            + 0.5 * jnp.sum(c_t * matvec_small(V, c_t))
            + jnp.sum(v * c_t)
            + 0.5 * jnp.sum(k * q_u)
        )
        out = LQRSolution(
            K=K, k=k, V=V_new, v=v_new, s=s_new, Q_xx=Q_xx, Q_uu=Q_uu, Q_ux=Q_ux, q_x=q_x, q_u=q_u
        )
        return (V_new, v_new, s_new), out

    init = (Qf, qf, jnp.zeros((), Qf.dtype))
    _, out = jax.lax.scan(step, init, (A, B, Q, R, M, c, q, r), reverse=True)
    return out.replace(  # the value function at t = T closes the recursion
        V=jnp.concatenate([out.V, Qf[None]], axis=0),
        v=jnp.concatenate([out.v, qf[None]], axis=0),
        s=jnp.concatenate([out.s, jnp.zeros((1,), out.s.dtype)], axis=0),
    )


def lqr_rollout(
    solution: LQRSolution,
    A: jax.Array,
    B: jax.Array,
    x0: jax.Array,
    c: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Roll the optimal policy `u_t = K_t x_t + k_t` through the linear dynamics.

    Args:
      solution: from `finite_horizon_lqr`.
      A, B, c: the dynamics (as passed to `finite_horizon_lqr`).
      x0: initial state `[n]`.

    Returns:
      `(X, U)`: states `[T+1, n]` and controls `[T, m]`.
    """
    T, m, n = solution.K.shape
    dtype = solution.K.dtype
    A = _per_step("A", A, T, (n, n), dtype)
    B = _per_step("B", B, T, (n, m), dtype)
    c = _per_step("c", c, T, (n,), dtype)
    x0 = jnp.asarray(x0, dtype)
    if x0.shape != (n,):
        raise ValueError(f"x0 must be a state vector [{n}] (the solution's n), got {x0.shape}.")
    return _lqr_rollout(solution, A, B, c, x0)


@jax.jit
def _lqr_rollout(solution, A, B, c, x0):
    def step(x, inp):
        K, k, A_t, B_t, c_t = inp
        u = K @ x + k
        return A_t @ x + B_t @ u + c_t, (x, u)

    xT, (X, U) = jax.lax.scan(step, x0, (solution.K, solution.k, A, B, c))
    return jnp.concatenate([X, xT[None]], axis=0), U


def _dare_residual(A, B, Q, R, M, P):
    BtPA = B.T @ P @ A + M.T
    res = Q + A.T @ P @ A - BtPA.T @ _solve_psd(_sym(R + B.T @ P @ B), BtPA) - P
    return jnp.max(jnp.abs(res)) / jnp.maximum(1.0, jnp.max(jnp.abs(P)))


def _gain(A, B, R, M, P):
    return -_solve_psd(_sym(R + B.T @ P @ B), B.T @ P @ A + M.T)


def dlqr(
    A: jax.Array,
    B: jax.Array,
    Q: jax.Array,
    R: jax.Array,
    *,
    M: jax.Array | None = None,
    method: str = "doubling",
    tol: float | None = None,
    max_iterations: int | None = None,
) -> DLQRSolution:
    """Infinite-horizon discrete LQR: the DARE's solution `P` and the gain `u = K x`.

    Minimises `sum_t 0.5 x'Qx + 0.5 u'Ru + x'Mu` subject to `x_{t+1} = A x_t + B u_t`
    (Bertsekas 2017, DPOC I, section 3.1). `(A, B)` must be stabilisable and
    `(A, Q^{1/2})` detectable for the solution to exist.

    Args:
      A: `[n, n]`.
      B: `[n, m]`.
      Q: `[n, n]` symmetric positive semi-definite.
      R: `[m, m]` symmetric positive definite.
      M: cross weights `[n, m]`; default zero.
      method: `"doubling"` (structure-preserving doubling, quadratic convergence) or
        `"riccati"` (iterate the Riccati map from `P = Q`, linear convergence).
      tol: stop when the relative change of `P` is below it; default `1e-12` in float64,
        `1e-6` in float32.
      max_iterations: default 100 for doubling, 100000 for Riccati iteration.

    Returns:
      `DLQRSolution` with `K`, `P`, `iterations`, `residual`, `status`.

    Raises:
      ValueError: bad shapes or an unknown method; with concrete (not traced) arrays, also
        weights that are not finite, symmetric and (semi-)definite, a non-finite `A` or `B`,
        and a solve that failed because `(A, B)` is not stabilisable (the message names the
        mode no control reaches). Traced, such a system comes back with `status` DIVERGED or
        MAX_ITERATIONS instead.
    """
    if method not in ("doubling", "riccati"):
        raise ValueError(f"method must be 'doubling' or 'riccati', got {method!r}.")
    A = jnp.asarray(A)
    B = jnp.asarray(B)
    dtype = jnp.result_type(A, B, float)
    A = A.astype(dtype)
    B = B.astype(dtype)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square [n, n], got shape {A.shape}.")
    n = A.shape[0]
    if B.ndim != 2 or B.shape[0] != n:
        raise ValueError(f"B must be [{n}, m], got shape {B.shape}.")
    m = B.shape[1]
    Q = jnp.asarray(Q, dtype)
    R = jnp.asarray(R, dtype)
    if Q.shape != (n, n) or R.shape != (m, m):
        raise ValueError(
            f"Q must be [{n}, {n}] and R [{m}, {m}], got {Q.shape} and {R.shape}"
            + (f"; a scalar weight w is R = w * np.eye({m})." if R.ndim == 0 else ".")
        )
    _check_weights(Q, R)
    Q, R = _sym(Q), _sym(R)
    M = jnp.zeros((n, m), dtype) if M is None else jnp.asarray(M, dtype)
    if M.shape != (n, m):
        raise ValueError(f"M must be [{n}, {m}], got shape {M.shape}.")
    if tol is None:
        tol = 1e-12 if dtype == jnp.float64 else 1e-6
    tol = check_number(tol, "tol", owner="dlqr", low=0, low_open=True)
    if max_iterations is None:
        max_iterations = 100 if method == "doubling" else 100_000
    max_iterations = check_int(max_iterations, "max_iterations", owner="dlqr", low=1)
    concrete = not (isinstance(A, jax.core.Tracer) or isinstance(B, jax.core.Tracer))
    if concrete:
        for name, X in (("A", A), ("B", B)):
            if not np.isfinite(np.asarray(X)).all():
                raise ValueError(f"{name} must be finite, got {np.asarray(X).tolist()}.")
    sol = _dlqr(A, B, Q, R, M, method, float(tol), int(max_iterations))
    if concrete and not isinstance(sol.status, jax.core.Tracer):
        if int(sol.status) != int(Status.CONVERGED) or not np.isfinite(np.asarray(sol.K)).all():
            _check_stabilisable(A, B)  # names the mode no control reaches, if there is one
    return sol


def _check_weights(Q: jax.Array, R: jax.Array) -> None:
    """Q symmetric positive semi-definite, R symmetric positive definite (when concrete:
    `dlqr` would otherwise symmetrise a lopsided Q silently, or diverge with no reason)."""
    if isinstance(Q, jax.core.Tracer) or isinstance(R, jax.core.Tracer):
        return
    for name, X, need in (("Q", Q, "positive semi-definite"), ("R", R, "positive definite")):
        X = np.asarray(X, np.float64)
        if not np.isfinite(X).all():
            raise ValueError(f"{name} must be finite, got {X.tolist()}.")
        scale = max(1.0, float(np.abs(X).max()))
        if np.abs(X - X.T).max() > 1e-6 * scale:
            raise ValueError(
                f"{name} must be symmetric, got {X.tolist()}; pass 0.5 * ({name} + {name}.T) "
                "if that is what you mean."
            )
        low = float(np.linalg.eigvalsh(0.5 * (X + X.T)).min())
        if low < -1e-8 * scale or (name == "R" and low <= 1e-12 * scale):
            raise ValueError(
                f"{name} must be {need} (its smallest eigenvalue is {low:.3g}): the LQR has no "
                "minimum otherwise; "
                + (
                    "penalise every state direction with a weight >= 0."
                    if name == "Q"
                    else "give every control a positive weight (the finite-horizon "
                    "finite_horizon_lqr accepts a singular R when the dynamics make up for it)."
                )
            )


def _check_stabilisable(A: jax.Array, B: jax.Array) -> None:
    """Raise naming a mode with `|lambda| >= 1` that `B` cannot reach (the PBH test:
    `[A - lambda I, B]` of full row rank), if any. Called only when the DARE iteration failed:
    an unreachable unstable mode that `Q` does not weigh leaves the DARE solvable (its gain
    ignores that mode), so `dlqr` solves first and explains a failure afterwards."""
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    n = A.shape[0]
    scale = max(1.0, float(np.abs(A).max(initial=0.0)), float(np.abs(B).max(initial=0.0)))
    for lam in np.linalg.eigvals(A):
        if abs(lam) < 1.0 - 1e-10:
            continue
        u, sv, _ = np.linalg.svd(np.concatenate([A - lam * np.eye(n), B], axis=1))
        if sv[-1] > 1e-10 * scale:
            continue
        w = u[:, -1].conj()  # the left null vector: the state combination B cannot move
        w = w / w[np.argmax(np.abs(w))]
        if np.abs(w.imag).max() < 1e-9 and abs(lam.imag) < 1e-9:
            lam, w = lam.real, w.real
        mode = np.array2string(np.round(w, 4), separator=", ")
        raise ValueError(
            f"(A, B) is not stabilisable: A's mode with eigenvalue {np.round(lam, 6)} "
            f"(|eigenvalue| = {abs(lam):.4g} >= 1: it does not decay by itself) is out of "
            f"reach of every control, B cannot move the state combination {mode} @ x; no "
            "gain K stabilises the system and the Riccati equation has no stabilising "
            "solution (the gain would be NaN). Give B a component along that mode, or remove "
            "the mode from the model."
        )


@functools.partial(jax.jit, static_argnums=(5, 6, 7))
def _dlqr(A, B, Q, R, M, method, tol, max_iterations) -> DLQRSolution:
    if method == "riccati":
        P, it, change = _riccati_iteration(A, B, Q, R, M, tol, max_iterations)
    else:
        P, it, change = _doubling(A, B, Q, R, M, tol, max_iterations)
    K = _gain(A, B, R, M, P)
    residual = _dare_residual(A, B, Q, R, M, P)
    finite = jnp.all(jnp.isfinite(P)) & jnp.all(jnp.isfinite(K))
    status = jnp.where(
        ~finite,
        Status.DIVERGED,
        jnp.where(change <= tol, Status.CONVERGED, Status.MAX_ITERATIONS),
    ).astype(jnp.int32)
    return DLQRSolution(K=K, P=P, iterations=it, residual=residual, status=status)


def _rel_change(P_new, P):
    return jnp.max(jnp.abs(P_new - P)) / jnp.maximum(1.0, jnp.max(jnp.abs(P_new)))


def _riccati_iteration(A, B, Q, R, M, tol, max_iterations):
    def riccati(P):
        BtPA = B.T @ P @ A + M.T
        return _sym(Q + A.T @ P @ A - BtPA.T @ _solve_psd(_sym(R + B.T @ P @ B), BtPA))

    def cond(c):
        _, it, change = c
        return (it < max_iterations) & (change > tol) & jnp.isfinite(change)

    def body(c):
        P, it, _ = c
        P_new = riccati(P)
        return P_new, it + 1, _rel_change(P_new, P)

    inf = jnp.asarray(jnp.finfo(Q.dtype).max, Q.dtype)
    return jax.lax.while_loop(cond, body, (Q, jnp.asarray(0, jnp.int32), inf))


class _Doubling(NamedTuple):
    """The doubling iteration's state: `H` converges to the DARE's solution."""

    A: jax.Array
    G: jax.Array
    H: jax.Array
    it: jax.Array
    change: jax.Array  # relative change of H in the last iteration


def _doubling(A, B, Q, R, M, tol, max_iterations):
    # Remove the cross term: u = v - R^{-1} M' x turns it into a problem without M.
    RinvMt = _solve_psd(R, M.T)
    A0 = A - B @ RinvMt
    H0 = _sym(Q - M @ RinvMt)
    G0 = _sym(B @ _solve_psd(R, B.T))
    eye = jnp.eye(A.shape[0], dtype=A.dtype)

    def cond(c: _Doubling) -> jax.Array:
        return (c.it < max_iterations) & (c.change > tol) & jnp.isfinite(c.change)

    def body(c: _Doubling) -> _Doubling:
        Ak, Gk, Hk = c.A, c.G, c.H
        W = eye + Gk @ Hk
        WinvA = jnp.linalg.solve(W, Ak)
        WinvG = jnp.linalg.solve(W, Gk)
        A_next = Ak @ WinvA
        G_next = _sym(Gk + Ak @ WinvG @ Ak.T)
        H_next = _sym(Hk + Ak.T @ Hk @ WinvA)
        return _Doubling(A_next, G_next, H_next, c.it + 1, _rel_change(H_next, Hk))

    inf = jnp.asarray(jnp.finfo(Q.dtype).max, Q.dtype)
    out = jax.lax.while_loop(cond, body, _Doubling(A0, G0, H0, jnp.asarray(0, jnp.int32), inf))
    return out.H, out.it, out.change
