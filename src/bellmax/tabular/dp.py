"""Exact dynamic programming on finite MDPs (Sutton & Barto, ch. 4; Puterman, ch. 6).

Every solver here is one semiring Bellman backup (`bellmax.core.semiring.bellman_backup`)
iterated or solved exactly:

- `evaluate_policy`: `v = r_pi + gamma P_pi v` (sum-product) by a direct linear solve, by
  sweeps (Jacobi-style two-array, Gauss-Seidel-style in place) or by BiCGSTAB (Krylov);
- `value_iteration`: `v <- max_a [R + gamma P v]` (max-plus), stopped by a rule that bounds the
  error of the values it returns;
- `policy_iteration`, `modified_policy_iteration`: exact / partial evaluation + greedy improvement;
- `soft_value_iteration`: the log-sum-exp backup at temperature `tau` (maximum-entropy control);
- `shortest_paths`: min-plus Bellman-Ford on a weighted graph, with negative-cycle detection.

Each returns a named result (`DPResult`, `ShortestPathResult`) with a `status`: `converged`,
`max_iterations`, `negative_cycle` or `diverged` (non-finite numbers appeared; never a silent
NaN). Iterative solvers run as one `jax.lax.while_loop` under `jax.jit`, compiled once per
array shape (tolerances, discount and iteration limits are traced, not static).

Precision: agreeing with a direct solve to 1e-8 needs float64. JAX's 64-bit mode is a global
flag; these solvers do not flip it. They run their body inside the context manager
`jax.enable_x64(True)` (jax >= 0.4.31; thread-local, restored on exit) when `dtype` is
float64, the default. The returned arrays keep float64 after the context exits; arithmetic on
them outside 64-bit mode is done in float32 by JAX, so convert with `np.asarray` (or work
inside `with jax.enable_x64(True):`) to keep the precision. Pass `dtype=jnp.float32` to halve
memory traffic on very large problems.

Sparse transitions (`SparseTransitions`: `[S, A, K]` successor slots, plus an overflow
list for rows longer than `K`) are copied once per call into the slot-major layout
`[K, S, A]` (`MDPArrays.from_mdp`); every backup is then one fused loop of gathers,
products, sums and the max over actions, with no per-backup `[S, A, K]` temporary, and one
sorted segment sum over the overflow entries when there are any. Memory follows the number
of non-zeros, however uneven the rows: a 1e6-state, 4-action, 5-successor MDP takes 0.27 GB
in float64 + int32 (twice that while the caller's `[S, A, K]` arrays are alive) and solves
on 2 cores; a 1e5-state MDP in which one row reaches every state takes 1e5 more entries,
not 1e5 slots for every row. See bench/dp_sparse.py for timings.
"""

from __future__ import annotations

import contextlib
import enum
import math
import warnings
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.errors import unknown_name
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.core.semiring import (
    MAX_PLUS,
    MIN_PLUS,
    SUM_PRODUCT,
    UNROLL_MAX,
    MDPArrays,
    bellman_backup,
    expected_next_values,
    log_sum_exp,
    q_values,
)

__all__ = [
    "EVALUATION_METHODS",
    "DPResult",
    "ShortestPathResult",
    "Status",
    "evaluate_policy",
    "greedy_policy",
    "modified_policy_iteration",
    "policy_iteration",
    "random_mdp",
    "shortest_paths",
    "soft_value_iteration",
    "value_iteration",
]

#: `evaluate_policy` methods ("auto": "direct" for dense MDPs, "krylov" for sparse ones).
EVALUATION_METHODS = ("auto", "direct", "jacobi", "gauss-seidel", "krylov")
#: BiCGSTAB steps per restart cycle of the Krylov policy evaluation.
KRYLOV_CYCLE = 25
#: A state whose policy self-transition probability is at least this is absorbing.
_ABSORBING = 1.0 - 1e-12
_RUNNING = -1


class Status(enum.IntEnum):
    """How a solver stopped (`result.status`; `result.status_name` is the lower-case name)."""

    CONVERGED = 0
    """The stopping rule was met."""
    MAX_ITERATIONS = 1
    """The iteration limit was reached first."""
    NEGATIVE_CYCLE = 2
    """A negative cycle is reachable: some shortest distances are -inf."""
    DIVERGED = 3
    """Non-finite numbers appeared (e.g. a singular evaluation: an improper policy at gamma=1)."""


def _status_name(status: Any) -> str:
    return Status(int(status)).name.lower()


@struct.dataclass
class DPResult:
    """What a dynamic-programming solver returns.

    The meaning of `iterations` depends on the solver: sweeps or backups (value iteration,
    Jacobi / Gauss-Seidel evaluation, soft VI), improvement rounds (policy iteration and
    modified policy iteration), BiCGSTAB restart cycles (Krylov), 1 for a direct solve.
    """

    values: jax.Array
    """State values `[S]`."""
    policy: jax.Array
    """Greedy action per state `[S]` (int), or action probabilities `[S, A]` (soft VI, or
    the stochastic policy that was evaluated)."""
    iterations: jax.Array
    """Iterations performed (see above)."""
    residual: jax.Array
    """Sup-norm residual of the last step: `||V_{k+1} - V_k||` for sweeps and value
    iteration, `||T V - V||` for policy iteration, `||b - A v||` for linear solves."""
    error_bound: jax.Array
    """Guaranteed bound on `||values - V_exact||_inf` (V* for control, v_pi for evaluation);
    +inf where none is known (gamma = 1)."""
    status: jax.Array
    """A `Status` code (int)."""
    q_values: jax.Array | None = None
    """`Q(s, a) = R + gamma P V` `[S, A]` for the values the policy was read from."""

    @property
    def status_name(self) -> str:
        """`converged`, `max_iterations`, `negative_cycle` or `diverged`."""
        return _status_name(self.status)

    @property
    def converged(self) -> bool:
        """Whether the stopping rule was met."""
        return int(self.status) == Status.CONVERGED


@struct.dataclass
class ShortestPathResult:
    """What `shortest_paths` returns."""

    distances: jax.Array
    """Shortest distance from the source (to the target) per node `[n]`: +inf where no path
    exists, -inf where a reachable negative cycle makes it unbounded."""
    predecessors: jax.Array
    """From a `source`: the node before each node on its shortest path; towards a `target`:
    the next node on the path. -1 at the sources/targets and unreachable nodes."""
    iterations: jax.Array
    """Relaxation rounds (at most `n`; the n-th round is the negative-cycle check)."""
    status: jax.Array
    """`Status.CONVERGED` or `Status.NEGATIVE_CYCLE`."""
    policy: jax.Array | None = None
    """For an MDP: the action that follows the shortest path (-1 at targets/unreachable)."""

    @property
    def status_name(self) -> str:
        """`converged` or `negative_cycle`."""
        return _status_name(self.status)


# ---------------------------------------------------------------------- input checks
def _precision(dtype: Any) -> contextlib.AbstractContextManager:
    """`jax.enable_x64(True)` for float64, else nothing (the global setting stays as it is)."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def _check_dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}; the default is float64.")
    return dt


def _check_mdp(mdp: Any, who: str) -> TabularMDP:
    if not isinstance(mdp, TabularMDP):
        raise TypeError(
            f"{who} needs a TabularMDP, got {type(mdp).__name__}; build one with "
            "bellmax.TabularMDP(P, R, gamma), bellmax.tabular.io.load_mdp(path) or "
            "env.tabular_mdp(params)."
        )
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(mdp)):
        raise TypeError(
            f"{who} runs its own jitted loops on concrete arrays; call it outside jax.jit/vmap "
            "(use bellmax.core.semiring.bellman_backup inside your own traced code)."
        )
    return mdp


def _check_tol(tol: Any) -> float:
    try:
        t = float(tol)
    except (TypeError, ValueError):
        raise TypeError(f"tol must be a number, got {tol!r}; e.g. tol=1e-8.") from None
    if not math.isfinite(t) or t <= 0.0:
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}; e.g. tol=1e-8.")
    return t


def _check_count(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _check_method(method: Any, known: Sequence[str], kind: str) -> str:
    if not isinstance(method, str) or method not in known:
        raise unknown_name(kind, str(method), known)
    return method


def _check_temperature(temperature: Any) -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"temperature must be a number, got {temperature!r}.") from None
    if not math.isfinite(t) or t <= 0.0:
        raise ValueError(
            f"temperature must be a finite number > 0, got {temperature!r}; its limit 0 is "
            "value_iteration."
        )
    return t


def _check_values(v0: Any, S: int, dtype: np.dtype, name: str = "v0") -> jax.Array:
    if v0 is None:
        return jnp.zeros(S, dtype)
    arr = np.asarray(v0)
    if arr.shape != (S,) or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(
            f"{name} must be a real array of shape ({S},), got {arr.dtype} {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; entry {int(np.argmin(np.isfinite(arr)))} is not.")
    return jnp.asarray(arr, dtype)


def _check_policy(policy: Any, S: int, A: int) -> np.ndarray:
    """`[S]` int actions, or `[S, A]` probabilities, validated on the host."""
    if isinstance(policy, jax.core.Tracer):
        raise TypeError("policy must be a concrete array, not a traced value.")
    arr = np.asarray(policy)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise TypeError(f"policy must hold numbers, got dtype {arr.dtype}.")
    if arr.ndim == 1:
        if arr.shape != (S,):
            raise ValueError(
                f"a deterministic policy must have shape (S,) = ({S},), got {arr.shape}; "
                f"or pass probabilities of shape ({S}, {A})."
            )
        if not np.issubdtype(arr.dtype, np.integer):
            if not np.all(np.isfinite(arr)) or not np.all(np.mod(arr, 1) == 0):
                raise ValueError(
                    "a deterministic policy holds action indices (integers); found "
                    f"{arr[~(np.isfinite(arr) & (np.mod(arr, 1) == 0))][0]!r}."
                )
        bad = np.flatnonzero((arr < 0) | (arr >= A))
        if bad.size:
            s = int(bad[0])
            raise ValueError(f"policy[{s}] = {arr[s]} is not an action; actions are 0 .. {A - 1}.")
        return arr.astype(np.int32)
    if arr.ndim == 2:
        if arr.shape != (S, A):
            raise ValueError(
                f"a stochastic policy must have shape (S, A) = ({S}, {A}), got {arr.shape}."
            )
        arr = arr.astype(np.float64)
        bad = np.argwhere(~np.isfinite(arr) | (arr < 0))
        if bad.size:
            s, a = (int(i) for i in bad[0])
            raise ValueError(
                f"policy[{s}, {a}] = {arr[s, a]} is not a probability; entries must be >= 0."
            )
        sums = arr.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > 1e-6)
        if off.size:
            s = int(off[0])
            raise ValueError(
                f"policy[{s}] sums to {sums[s]:.10g}, not 1; each row must be a distribution "
                "over actions."
            )
        return arr
    raise ValueError(
        f"policy must be (S,) action indices or (S, A) probabilities, got shape {arr.shape}."
    )


def _auto_method(mdp: TabularMDP, method: str) -> str:
    """ "auto": a dense LU for dense MDPs; BiCGSTAB for sparse ones (a sparse LU of a random
    transition graph fills in, and was 70x slower than BiCGSTAB at 1000 states)."""
    if method != "auto":
        return method
    return "krylov" if mdp.is_sparse else "direct"


def _prepare(mdp: Any, who: str, dtype: Any) -> tuple[TabularMDP, np.dtype]:
    return _check_mdp(mdp, who), _check_dtype(dtype)


# ---------------------------------------------------------------------- shared pieces
def _bound_factor(gamma: jax.Array) -> jax.Array:
    """`gamma / (1 - gamma)` for gamma < 1 (the contraction's error bound), 1 for gamma = 1."""
    return jnp.where(gamma < 1.0, gamma / jnp.maximum(1.0 - gamma, 1e-300), 1.0)


def _error_bound(gamma: jax.Array, residual: jax.Array, factor: jax.Array) -> jax.Array:
    return jnp.where(gamma < 1.0, factor * residual, jnp.inf)


def _next_status(ok: jax.Array, bound: jax.Array, tol: jax.Array, k: jax.Array, max_it: jax.Array):
    return jnp.where(
        ~ok,
        Status.DIVERGED,
        jnp.where(
            bound <= tol, Status.CONVERGED, jnp.where(k >= max_it, Status.MAX_ITERATIONS, _RUNNING)
        ),
    ).astype(jnp.int32)


def _policy_mrp(m: MDPArrays, policy: jax.Array) -> MDPArrays:
    """The Markov reward process of a policy, as a one-action MDP (`A = 1`).

    By distributivity of the sum-product semiring, `sum_a pi(a|s) [R + gamma E V]` equals
    `r_pi + gamma E_pi V`: the sum over actions moves into the transitions once, and every
    later backup reads only the policy's rows (a quarter of the data for 4 actions). Sparse
    overflow entries keep their places (static shapes): each is weighted by `pi(a|s)` of
    its row (0 or 1 for a deterministic policy) and summed into its state's row.
    """
    S, A = m.R.shape
    if policy.ndim == 1:
        R = jnp.take_along_axis(m.R, policy[:, None], axis=1)
        if m.P is not None:
            return MDPArrays(
                R=R, gamma=m.gamma, P=jnp.take_along_axis(m.P, policy[:, None, None], 1)
            )
        idx = jnp.broadcast_to(policy[None, :, None], (m.next_state.shape[0], S, 1))
        ns = jnp.take_along_axis(m.next_state, idx, axis=2)
        prob = jnp.take_along_axis(m.prob, idx, axis=2)
    else:
        pi = policy.astype(m.R.dtype)
        R = jnp.sum(pi * m.R, axis=1, keepdims=True)
        if m.P is not None:
            return MDPArrays(R=R, gamma=m.gamma, P=jnp.einsum("sa,sat->st", pi, m.P)[:, None, :])
        K = m.next_state.shape[0]
        ns = jnp.swapaxes(m.next_state, 1, 2).reshape(K * A, S, 1)
        prob = jnp.swapaxes(m.prob * pi[None], 1, 2).reshape(K * A, S, 1)
    mrp = MDPArrays(R=R, gamma=m.gamma, next_state=ns, prob=prob)
    if not m.has_overflow:
        return mrp
    s, a = m.overflow_row // A, m.overflow_row % A
    if policy.ndim == 1:
        weight = (policy[s] == a).astype(m.overflow_prob.dtype)
    else:
        weight = policy.astype(m.R.dtype)[s, a]
    return mrp.replace(
        overflow_row=s,  # the row of state s in a one-action MDP; still sorted
        overflow_next_state=m.overflow_next_state,
        overflow_prob=m.overflow_prob * weight,
    )


def _absorbing_zero(mrp: MDPArrays) -> jax.Array:
    """States that the policy never leaves and where it earns nothing: their value is 0."""
    r = mrp.R[:, 0]
    S = r.shape[0]
    if mrp.P is not None:
        stay = mrp.P[jnp.arange(S), 0, jnp.arange(S)]
    else:
        here = mrp.next_state[:, :, 0] == jnp.arange(S)[None, :]
        stay = jnp.sum(jnp.where(here, mrp.prob[:, :, 0], 0.0), axis=0)
        if mrp.has_overflow:
            loop = mrp.overflow_next_state == mrp.overflow_row
            stay = stay + SUM_PRODUCT.segment_plus(
                jnp.where(loop, mrp.overflow_prob, 0.0),
                mrp.overflow_row,
                S,
                indices_are_sorted=True,
            )
    return (stay >= _ABSORBING) & (r == 0.0)


def _mrp_matvec(mrp: MDPArrays, fixed: jax.Array, v: jax.Array) -> jax.Array:
    """`(I - gamma P_pi) v`, with the rows of `fixed` states replaced by the identity."""
    Pv = expected_next_values(mrp, v)[:, 0]
    return jnp.where(fixed, v, v - mrp.gamma * Pv)


def _greedy(q: jax.Array, current: jax.Array | None, tie_tol: Any) -> tuple[jax.Array, jax.Array]:
    """`(argmax_a q, max_a q)` in one pass over the actions, keeping `current` on near-ties.

    One elementwise chain over the action slices: XLA then fuses it with the gathers that
    produced `q` into a single loop. (Separate argmax, max and `take_along_axis` consumers
    made it materialise and re-read every gather.)
    """
    S, A = q.shape
    if A > UNROLL_MAX:
        best, arg = MAX_PLUS.plus(q, axis=-1), MAX_PLUS.argbest(q, axis=-1).astype(jnp.int32)
        if current is None:
            return arg, best
        q_cur = jnp.take_along_axis(q, current[:, None], axis=-1)[:, 0]
        return jnp.where(q_cur >= best - tie_tol, current, arg), best
    best, arg = q[:, 0], jnp.zeros(S, jnp.int32)
    q_cur = q[:, 0]
    for a in range(1, A):
        qa = q[:, a]
        take = qa > best  # the first index wins exact ties, as in argmax
        best, arg = jnp.where(take, qa, best), jnp.where(take, a, arg)
        if current is not None:
            q_cur = jnp.where(current == a, qa, q_cur)
    if current is None:
        return arg, best
    return jnp.where(q_cur >= best - tie_tol, current, arg), best


def greedy_policy(
    q: jax.Array, current: jax.Array | None = None, *, tie_tol: float = 0.0
) -> jax.Array:
    """`argmax_a q(s, a)`, keeping the `current` action where it is within `tie_tol` of the best.

    Keeping the incumbent on ties stops policy iteration from cycling between equally good
    policies (Sutton & Barto, Exercise 4.4).

    Args:
      q: action values `[S, A]`.
      current: optional current actions `[S]`.
      tie_tol: how much better another action must be to replace the current one.

    Returns:
      Actions `[S]` (int32). Concrete float64 `q` is compared in float64 (64-bit mode is
      enabled for the call), so near-ties are not blurred by a cast to float32.
    """
    traced = isinstance(q, jax.core.Tracer)
    wide = not traced and np.dtype(getattr(q, "dtype", np.asarray(q).dtype)) == np.float64
    with _precision(np.float64) if wide else contextlib.nullcontext():
        cur = None if current is None else jnp.asarray(current, jnp.int32)
        return _greedy(jnp.asarray(q), cur, tie_tol)[0]


# ---------------------------------------------------------------------- policy evaluation
def _fixed_point(step, v0: jax.Array, gamma: jax.Array, tol: jax.Array, max_it: jax.Array):
    """Iterate a gamma-contraction with the sup-norm stopping rule, in one `lax.while_loop`.

    `step(v) -> (x, v_next)`: `x = T v` is what the stopping rule compares with `v`
    (`||x - v|| = ||T v - v||`), `v_next` the next iterate (`x` itself, or more, for modified
    policy iteration). The rule: stop when `gamma / (1 - gamma) * ||x - v|| <= tol`
    (gamma < 1; then `||x - V_fixed|| <= tol`) or `||x - v|| <= tol` (gamma = 1).

    Each residual is measured at the start of the next loop step, on the stored arrays, so
    that XLA keeps the gather-heavy backup in its own elementwise loop: fused into the
    residual's reduction it ran 3x slower.

    Returns:
      `(x, v, iterations, residual, error_bound, status)` where `x = T v` passed the test.
    """
    factor = _bound_factor(gamma)

    def body(c):
        v, x, v_next, k, _, _ = c
        res = jnp.max(jnp.abs(x - v))
        status = _next_status(jnp.isfinite(res), factor * res, tol, k, max_it)

        def advance(_):
            x2, vn2 = step(v_next)
            return v_next, x2, vn2, k + 1

        v, x, v_next, k = jax.lax.cond(
            status == _RUNNING, advance, lambda _: (v, x, v_next, k), None
        )
        return v, x, v_next, k, res, status

    x0, vn0 = step(v0)
    init = (v0, x0, vn0, jnp.int32(1), jnp.asarray(jnp.inf, v0.dtype), jnp.int32(_RUNNING))
    v, x, _, k, res, status = jax.lax.while_loop(lambda c: c[5] == _RUNNING, body, init)
    return x, v, k, res, _error_bound(gamma, res, factor), status


def _jacobi(mrp: MDPArrays, v0: jax.Array, tol: jax.Array, max_it: jax.Array):
    def step(v):
        x = bellman_backup(mrp, v, SUM_PRODUCT).values
        return x, x

    x, _, k, res, bound, status = _fixed_point(step, v0, mrp.gamma, tol, max_it)
    return x, k, res, bound, status


def _direct_dense(mrp: MDPArrays):
    P, r, gamma = mrp.P[:, 0, :], mrp.R[:, 0], mrp.gamma
    S = r.shape[0]
    fixed = _absorbing_zero(mrp)
    eye = jnp.eye(S, dtype=P.dtype)
    A = jnp.where(fixed[:, None], eye, eye - gamma * P)
    b = jnp.where(fixed, 0.0, r)
    v = jnp.linalg.solve(A, b)
    res = jnp.max(jnp.abs(A @ v - b))
    ok = jnp.all(jnp.isfinite(v)) & jnp.isfinite(res)
    bound = jnp.where(gamma < 1.0, res / jnp.maximum(1.0 - gamma, 1e-300), jnp.inf)
    status = jnp.where(ok, Status.CONVERGED, Status.DIVERGED).astype(jnp.int32)
    return v, jnp.int32(1), res, bound, status


def _host_csr(mrp: MDPArrays):
    """`P_pi` of a one-action MDP as a scipy CSR matrix (host)."""
    import scipy.sparse as sp

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


def _direct_sparse(mrp: MDPArrays):
    """scipy's sparse LU on the host: exact, fast for banded/local structure."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

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
    bound = res / (1.0 - gamma) if gamma < 1.0 else math.inf
    dt = mrp.R.dtype
    return (
        jnp.asarray(v, dt),
        jnp.int32(1),
        jnp.asarray(res, dt),
        jnp.asarray(bound, dt),
        jnp.int32(Status.CONVERGED if ok else Status.DIVERGED),
    )


def _gauss_seidel(mrp: MDPArrays, v0: jax.Array, tol: float, max_it: int):
    """In-place sweeps in state order, as host triangular solves (scipy).

    One sweep `v_s <- r_s + gamma sum_s' P[s, s'] v_s'` that uses the values already updated
    this sweep is the splitting `(I - gamma L) v_new = r + gamma U v`, where `L` is the strictly
    lower triangle of `P_pi` and `U` the rest: a sparse triangular solve. Gauss-Seidel is
    sequential; scipy's compiled triangular solve beats a `lax.fori_loop` over states here.
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    P = _host_csr(mrp)
    S = P.shape[0]
    gamma = float(mrp.gamma)
    r = np.asarray(mrp.R[:, 0], dtype=np.float64)
    M = (sp.identity(S, format="csr") - gamma * sp.tril(P, k=-1, format="csr")).tocsr()
    U = sp.triu(P, k=0, format="csr")
    factor = gamma / (1.0 - gamma) if gamma < 1.0 else 1.0
    v = np.asarray(v0, dtype=np.float64)
    res, status, k = math.inf, _RUNNING, 0
    while status == _RUNNING:
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
    dt = mrp.R.dtype
    return (
        jnp.asarray(v, dt),
        jnp.int32(k),
        jnp.asarray(res, dt),
        jnp.asarray(bound, dt),
        jnp.int32(status),
    )


def _krylov(mrp: MDPArrays, v0: jax.Array, tol: jax.Array, max_it: jax.Array):
    """BiCGSTAB on `(I - gamma P_pi) v = r_pi`, restarted every `KRYLOV_CYCLE` steps so that
    the loop can count cycles and test the sup-norm residual itself."""
    gamma = mrp.gamma
    fixed = _absorbing_zero(mrp)
    b = jnp.where(fixed, 0.0, mrp.R[:, 0])
    matvec = partial(_mrp_matvec, mrp, fixed)
    # ||v - v_pi|| <= ||b - A v|| / (1 - gamma): aim the residual at tol * (1 - gamma).
    target = jnp.where(gamma < 1.0, tol * (1.0 - gamma), tol)

    def body(c):
        v, k, _, _ = c
        v_new, _ = jax.scipy.sparse.linalg.bicgstab(
            matvec, b, v, tol=0.0, atol=target, maxiter=KRYLOV_CYCLE
        )
        res = jnp.max(jnp.abs(b - matvec(v_new)))
        ok = jnp.all(jnp.isfinite(v_new)) & jnp.isfinite(res)
        return v_new, k + 1, res, _next_status(ok, res, target, k + 1, max_it)

    res0 = jnp.max(jnp.abs(b - matvec(v0)))
    status0 = jnp.where(res0 <= target, Status.CONVERGED, _RUNNING).astype(jnp.int32)
    init = (v0, jnp.int32(0), res0, status0)
    v, k, res, status = jax.lax.while_loop(lambda c: c[3] == _RUNNING, body, init)
    bound = jnp.where(gamma < 1.0, res / jnp.maximum(1.0 - gamma, 1e-300), jnp.inf)
    return v, k, res, bound, status


#: Methods that run entirely in JAX (for dense MDPs; "direct" on sparse ones uses scipy).
_JAX_METHODS = ("jacobi", "krylov")


def _evaluate_body(m: MDPArrays, policy: jax.Array, v0, tol, max_it, method: str):
    """(values, iterations, residual, error_bound, status) of `policy` (traceable)."""
    mrp = _policy_mrp(m, policy)
    if method == "direct":
        return _direct_dense(mrp)
    if method == "jacobi":
        return _jacobi(mrp, v0, tol, max_it)
    return _krylov(mrp, v0, tol, max_it)


@partial(jax.jit, static_argnames=("method",))
def _evaluate_jax(m: MDPArrays, policy: jax.Array, v0, tol, max_it, method: str):
    """`_evaluate_body` and the q-values of the result, as one compiled program."""
    out = _evaluate_body(m, policy, v0, tol, max_it, method)
    return (*out, q_values(m, out[0]))


_policy_mrp_jit = jax.jit(_policy_mrp)
_q = jax.jit(q_values)
_absorbing_zero_jit = jax.jit(_absorbing_zero)


def _runs_in_jax(m: MDPArrays, method: str) -> bool:
    return method in _JAX_METHODS or (method == "direct" and not m.is_sparse)


def _evaluate(m: MDPArrays, policy: jax.Array, method: str, v0: jax.Array, tol: float, max_it: int):
    """(values, iterations, residual, error_bound, status) of `policy` by `method`."""
    if _runs_in_jax(m, method):
        t = jnp.asarray(tol, m.R.dtype)
        return _evaluate_jax(m, policy, v0, t, jnp.int32(max_it), method=method)[:5]
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
    (an improper policy) the system is singular and the status is `diverged`.

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
    mdp, dt = _prepare(mdp, "evaluate_policy", dtype)
    method = _auto_method(mdp, _check_method(method, EVALUATION_METHODS, "evaluation method"))
    tol = _check_tol(tol)
    max_iterations = _check_count("max_iterations", max_iterations)
    S, A = mdp.shape
    pol = _check_policy(policy, S, A)
    with _precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        v0 = _check_values(v0, S, dt)
        pol_j = jnp.asarray(pol)
        if _runs_in_jax(m, method):
            t, k_max = jnp.asarray(tol, dt), jnp.int32(max_iterations)
            v, k, res, bound, status, q = _evaluate_jax(m, pol_j, v0, t, k_max, method=method)
        else:
            v, k, res, bound, status = _evaluate(m, pol_j, method, v0, tol, max_iterations)
            q = _q(m, v)
        return DPResult(
            values=v,
            policy=pol_j,
            iterations=k,
            residual=res,
            error_bound=bound,
            status=status,
            q_values=q,
        )


# ---------------------------------------------------------------------- value iteration
@partial(jax.jit, static_argnames=("soft",))
def _value_iteration(m: MDPArrays, v0, tol, max_it, temperature, soft: bool):
    semiring = log_sum_exp(temperature) if soft else MAX_PLUS

    def step(v):
        x = bellman_backup(m, v, semiring).values
        return x, x

    x, v, k, res, bound, status = _fixed_point(step, v0, m.gamma, tol, max_it)
    q = q_values(m, v)  # the backup that produced x: x = (+)_a q
    policy = semiring.argbest(q, axis=-1)
    if not soft:
        policy = policy.astype(jnp.int32)
    return x, policy, k, res, bound, status, q


def value_iteration(
    mdp: TabularMDP,
    *,
    tol: float = 1e-8,
    max_iterations: int = 100_000,
    v0: Any = None,
    dtype: Any = jnp.float64,
) -> DPResult:
    """Value iteration, `V_{k+1} = max_a [R + gamma P V_k]` (Sutton & Barto, §4.4).

    Stopping rule (Puterman, Thm 6.3.1; Williams & Baird 1993): for `gamma < 1` stop when
    `gamma / (1 - gamma) * ||V_{k+1} - V_k||_inf <= tol`. Because the backup is a
    gamma-contraction this guarantees `||V_{k+1} - V*||_inf <= tol`: the returned `values`
    are within `tol` of optimal, and `error_bound` reports the bound achieved. (This is not
    pymdptoolbox's span rule, which bounds the policy's loss, not the values.) For
    `gamma = 1` (episodic tasks whose policies all terminate) no such bound exists: the loop
    stops when `||V_{k+1} - V_k||_inf <= tol` and `error_bound` is +inf.

    Args:
      mdp: the MDP.
      tol: the error bound to reach (> 0).
      max_iterations: backup limit (status `max_iterations` when reached).
      v0: starting values (default zeros).
      dtype: float64 (default) or float32.

    Returns:
      A `DPResult`: `values` = V_{k+1}, `q_values` = R + gamma P V_k (so `values` is their
      max), `policy` = their argmax, `residual` = ||V_{k+1} - V_k||.
    """
    mdp, dt = _prepare(mdp, "value_iteration", dtype)
    tol = _check_tol(tol)
    max_iterations = _check_count("max_iterations", max_iterations)
    with _precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        v0 = _check_values(v0, mdp.num_states, dt)
        out = _value_iteration(
            m, v0, jnp.asarray(tol, dt), jnp.int32(max_iterations), jnp.asarray(1.0, dt), soft=False
        )
        return _result(*out)


def _result(v, policy, k, res, bound, status, q) -> DPResult:
    return DPResult(
        values=v,
        policy=policy,
        iterations=k,
        residual=res,
        error_bound=bound,
        status=status,
        q_values=q,
    )


def soft_value_iteration(
    mdp: TabularMDP,
    *,
    temperature: float,
    tol: float = 1e-8,
    max_iterations: int = 100_000,
    v0: Any = None,
    dtype: Any = jnp.float64,
) -> DPResult:
    """Soft (maximum-entropy) value iteration: `V <- tau * log sum_a exp(Q(s, a) / tau)`.

    The log-sum-exp backup (`log_sum_exp(tau)`) is a gamma-contraction like the max, so the
    same stopping rule bounds `||values - V_soft*|| <= tol` for `gamma < 1`. As `tau -> 0`
    the soft values decrease to V*, with `0 <= V_soft* - V* <= tau log(A) / (1 - gamma)`
    (Ziebart 2010; Haarnoja et al. 2017, soft Q-learning).

    Args:
      mdp: the MDP.
      temperature: `tau > 0` (one compiled program serves every temperature).
      tol: the error bound to reach.
      max_iterations: backup limit.
      v0: starting values (default zeros).
      dtype: float64 (default) or float32.

    Returns:
      A `DPResult` whose `policy` is the softmax policy `[S, A]`,
      `pi(a|s) = exp((Q(s, a) - V(s)) / tau)`.
    """
    mdp, dt = _prepare(mdp, "soft_value_iteration", dtype)
    temperature = _check_temperature(temperature)
    tol = _check_tol(tol)
    max_iterations = _check_count("max_iterations", max_iterations)
    with _precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        v0 = _check_values(v0, mdp.num_states, dt)
        out = _value_iteration(
            m,
            v0,
            jnp.asarray(tol, dt),
            jnp.int32(max_iterations),
            jnp.asarray(temperature, dt),
            soft=True,
        )
        return _result(*out)


# ---------------------------------------------------------------------- policy iteration
def _improve(m: MDPArrays, v: jax.Array, policy: jax.Array, tie_tol: jax.Array):
    """The greedy policy and `T v` (elementwise only; the host compares and reduces them)."""
    current = policy if policy.ndim == 1 else None
    return _greedy(q_values(m, v), current, tie_tol)


_improve_jit = jax.jit(_improve)


@partial(jax.jit, static_argnames=("method",))
def _pi_round(m: MDPArrays, policy, v, tol, max_it, method: str):
    """One evaluation + improvement of policy iteration, as one compiled program."""
    v, _, _, _, ev_status = _evaluate_body(m, policy, v, tol, max_it, method)
    return (v, ev_status, *_improve(m, v, policy, tol))


def policy_iteration(
    mdp: TabularMDP,
    *,
    policy0: Any = None,
    evaluation: str = "auto",
    tol: float = 1e-10,
    max_iterations: int = 1_000,
    dtype: Any = jnp.float64,
) -> DPResult:
    """Policy iteration: evaluate the policy exactly, act greedily, repeat (Sutton & Barto, §4.3).

    The greedy step keeps the current action unless another is better by more than `tol`, so
    the loop cannot cycle between equally good policies and stops when the policy is stable.

    Args:
      mdp: the MDP.
      policy0: the starting policy, `[S]` actions or `[S, A]` probabilities (default: the
        uniformly random policy, as in the book's Figure 4.1). With `gamma = 1` it must be
        proper (reach an absorbing state from everywhere), else the status is `diverged`.
      evaluation: an `evaluate_policy` method; "auto" (default) is "direct" for dense MDPs
        and "krylov" for sparse ones.
      tol: accuracy of each evaluation and the improvement threshold.
      max_iterations: limit on evaluation-improvement rounds.
      dtype: float64 (default) or float32.

    Returns:
      A `DPResult` with a deterministic `policy`. `iterations` counts evaluation-improvement
      rounds; the last one confirms the policy is stable, so the policy changed
      `iterations - 1` times. `residual` is `||T v - v||` at the final policy's values and
      `error_bound = residual / (1 - gamma)` bounds `||values - V*||`.
    """
    mdp, dt = _prepare(mdp, "policy_iteration", dtype)
    evaluation = _check_method(evaluation, EVALUATION_METHODS, "evaluation method")
    tol = _check_tol(tol)
    max_iterations = _check_count("max_iterations", max_iterations)
    S, A = mdp.shape
    evaluation = _auto_method(mdp, evaluation)
    pol = np.full((S, A), 1.0 / A) if policy0 is None else _check_policy(policy0, S, A)
    with _precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        policy = jnp.asarray(pol, dt if pol.ndim == 2 else jnp.int32)
        v = jnp.zeros(S, dt)
        tie = jnp.asarray(tol, dt)
        status = Status.MAX_ITERATIONS
        q = res = None
        rounds = 0
        for rounds in range(1, max_iterations + 1):  # noqa: B007
            # Warm start the iterative evaluations from the previous values.
            if _runs_in_jax(m, evaluation):
                v, ev_status, new, tv = _pi_round(
                    m, policy, v, tie, jnp.int32(100_000), method=evaluation
                )
            else:
                v, _, _, _, ev_status = _evaluate(m, policy, evaluation, v, tol, 100_000)
                new, tv = _improve_jit(m, v, policy, tie)
            if int(ev_status) != Status.CONVERGED:
                status = (
                    Status.DIVERGED if int(ev_status) == Status.DIVERGED else Status.MAX_ITERATIONS
                )
                res = math.inf
                break
            res = float(np.max(np.abs(np.asarray(tv) - np.asarray(v))))  # ||T v - v||
            if policy.ndim == 1 and np.array_equal(np.asarray(new), np.asarray(policy)):
                status = Status.CONVERGED
                break
            policy = new
        q = _q(m, v)
        gamma = float(mdp.gamma)
        bound = float(res) / (1.0 - gamma) if gamma < 1.0 else math.inf
        return DPResult(
            values=v,
            policy=policy,
            iterations=jnp.int32(rounds),
            residual=jnp.asarray(res, dt),
            error_bound=jnp.asarray(bound, dt),
            status=jnp.int32(status),
            q_values=q,
        )


@jax.jit
def _mpi(m: MDPArrays, v0, tol, max_it, sweeps):
    def step(v):
        pi, tv = _greedy(q_values(m, v), None, 0.0)
        # Partial evaluation: `sweeps` more backups of the greedy policy, from T v.
        mrp = _policy_mrp(m, pi)
        v_next = jax.lax.fori_loop(
            0, sweeps, lambda _, u: bellman_backup(mrp, u, SUM_PRODUCT).values, tv
        )
        return tv, v_next

    tv, v, k, res, bound, status = _fixed_point(step, v0, m.gamma, tol, max_it)
    q = q_values(m, v)
    return tv, _greedy(q, None, 0.0)[0], k, res, bound, status, q


def modified_policy_iteration(
    mdp: TabularMDP,
    *,
    m: int = 10,
    tol: float = 1e-8,
    max_iterations: int = 100_000,
    v0: Any = None,
    dtype: Any = jnp.float64,
) -> DPResult:
    """Modified policy iteration: greedy step, then `m` evaluation sweeps (Puterman, §6.5).

    Each round applies the optimality backup once, `T v` (which gives the greedy policy),
    then `m` sweeps of that policy's backup. `m = 0` is value iteration; `m -> inf` is policy
    iteration. The stopping rule is value iteration's, tested at the greedy step: for
    `gamma < 1` stop when `gamma / (1 - gamma) * ||T v - v|| <= tol`, which guarantees
    `||T v - V*|| <= tol`; the returned `values` are `T v`. For `gamma = 1` it stops on
    `||T v - v|| <= tol` without a bound.

    Args:
      mdp: the MDP.
      m: evaluation sweeps per round (>= 0).
      tol: the error bound to reach.
      max_iterations: round limit.
      v0: starting values (default zeros).
      dtype: float64 (default) or float32.

    Returns:
      A `DPResult`; `iterations` counts rounds (each `1 + m` backups).
    """
    mdp, dt = _prepare(mdp, "modified_policy_iteration", dtype)
    sweeps = _check_count("m", m, minimum=0)
    tol = _check_tol(tol)
    max_iterations = _check_count("max_iterations", max_iterations)
    with _precision(dt):
        arrays = MDPArrays.from_mdp(mdp, dt)
        v0 = _check_values(v0, mdp.num_states, dt)
        out = _mpi(arrays, v0, jnp.asarray(tol, dt), jnp.int32(max_iterations), jnp.int32(sweeps))
        return _result(*out)


# ---------------------------------------------------------------------- shortest paths
@partial(jax.jit, static_argnames=("num_nodes",))
def _bellman_ford(src, dst, weight, start, num_nodes: int):
    """Min-plus relaxation `d(v) <- min(d(v), min_{(u, v)} d(u) + w(u, v))` (Bellman-Ford)."""
    n = num_nodes
    big = jnp.iinfo(jnp.int32).max
    edge_ids = jnp.arange(src.shape[0], dtype=jnp.int32)
    d0 = jnp.where(start, 0.0, jnp.inf).astype(weight.dtype)

    def relax(d):
        cand = MIN_PLUS.times(d[src], weight)
        best = MIN_PLUS.segment_plus(cand, dst, n)
        # The edge that attains the min (lowest index on ties): min-plus's argbest, per node.
        arg = jax.ops.segment_min(jnp.where(cand == best[dst], edge_ids, big), dst, n)
        return best, arg

    def body(c):
        d, pred, k, _, _ = c
        best, arg = relax(d)
        improved = best < d
        return (
            jnp.where(improved, best, d),
            jnp.where(improved, arg, pred),
            k + 1,
            improved,
            jnp.any(improved),
        )

    init = (d0, jnp.full(n, -1, jnp.int32), jnp.int32(0), jnp.zeros(n, bool), jnp.bool_(True))
    # n rounds at most: n - 1 settle every shortest path; a change in round n means a
    # negative cycle is reachable.
    d, pred, k, improved, changed = jax.lax.while_loop(lambda c: c[4] & (c[2] < n), body, init)
    negative = changed & (k >= n)

    # Everything reachable from a node still improving in round n has distance -inf.
    def spread(c):
        mask, _ = c
        reach = jax.ops.segment_max(mask[src].astype(jnp.int32), dst, n) > 0
        new = mask | reach
        return new, jnp.any(new != mask)

    unbounded, _ = jax.lax.while_loop(lambda c: c[1], spread, (improved & negative, negative))
    d = jnp.where(unbounded, -jnp.inf, d)
    status = jnp.where(negative, Status.NEGATIVE_CYCLE, Status.CONVERGED).astype(jnp.int32)
    return d, pred, k, status


def _node_list(nodes: Any, n: int, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(nodes))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a node index or a non-empty list of them, got {nodes!r}.")
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(f"{name} node {int(bad[0])} is outside [0, {n}); nodes are 0 .. {n - 1}.")
    return arr


def _mdp_edges(mdp: TabularMDP, target: Any):
    if float(mdp.gamma) != 1.0:
        raise ValueError(
            f"shortest_paths on an MDP adds undiscounted costs, but gamma = {float(mdp.gamma)}; "
            "use value_iteration for discounted problems (or set gamma=1)."
        )
    S, A = mdp.shape
    if mdp.is_sparse:
        # Each (s, a) row's largest probability (duplicates summed) and its successor.
        idx, p = mdp.P.to_coo()
        key = (idx[:, 0].astype(np.int64) * A + idx[:, 1]) * S + idx[:, 2]
        key, inv = np.unique(key, return_inverse=True)
        p = np.bincount(inv.reshape(-1), weights=p, minlength=key.size)
        flat, col = key // S, key % S
        order = np.lexsort((-p, flat))  # by row, then the largest probability first
        first = order[np.diff(flat[order], prepend=-1) != 0]
        top, succ = np.zeros(S * A), np.zeros(S * A, np.int64)
        top[flat[first]], succ[flat[first]] = p[first], col[first]
        top, succ = top.reshape(S, A), succ.reshape(S, A)
    else:
        P = np.asarray(mdp.P)
        succ = np.argmax(P, axis=2)
        top = np.take_along_axis(P, succ[..., None], axis=2)[..., 0]
    bad = np.argwhere(top < 1.0 - 1e-9)
    if bad.size:
        s, a = (int(i) for i in bad[0])
        raise ValueError(
            f"shortest_paths needs deterministic transitions, but P[{s}, {a}] splits its "
            "probability over several states; use value_iteration for stochastic MDPs."
        )
    if target is None:
        if mdp.terminal is None or not np.any(mdp.terminal):
            raise ValueError(
                "this MDP marks no terminal states; pass target=<state or states> to "
                "shortest_paths."
            )
        target = np.flatnonzero(np.asarray(mdp.terminal))
    targets = _node_list(target, S, "target")
    is_target = np.zeros(S, bool)
    is_target[targets] = True
    s_idx = np.repeat(np.arange(S), A)
    keep = ~is_target[s_idx]
    edges = (s_idx[keep], succ.reshape(-1)[keep], -np.asarray(mdp.R, np.float64).reshape(-1)[keep])
    actions = np.tile(np.arange(A), S)[keep]
    return edges, S, targets, actions


def shortest_paths(
    graph: TabularMDP | tuple[Any, Any, Any],
    *,
    source: Any = None,
    target: Any = None,
    num_nodes: int | None = None,
    dtype: Any = jnp.float64,
) -> ShortestPathResult:
    """Shortest paths by min-plus Bellman-Ford, with negative cycles detected and reported.

    Each round relaxes every edge at once, `d(v) <- min(d(v), min_u d(u) + w(u, v))`: a
    min-plus "matrix-vector product" with the edge-weight matrix (Bellman 1958; Ford 1956).
    After `n - 1` rounds every shortest path without a negative cycle is settled; if round
    `n` still improves a distance, a negative cycle is reachable: the status is
    `negative_cycle` and every node reachable from such a cycle gets distance -inf.

    Args:
      graph: an edge list `(src, dst, weight)` of equal-length arrays (ints in `[0, n)` and
        finite floats; parallel edges are fine), or a `TabularMDP` with deterministic
        transitions and `gamma = 1`, read as the graph `s -> s'` with cost `-R(s, a)`.
      source: for an edge list, the start node(s): distances *from* them.
      target: the end node(s): distances *to* them (default for an MDP: its terminal states,
        so `distances = -V*`). Give exactly one of `source` and `target`.
      num_nodes: number of nodes of an edge list (default: 1 + the largest index).
      dtype: float64 (default) or float32.

    Returns:
      A `ShortestPathResult` (`policy` holds the action to take, for an MDP).
    """
    dt = _check_dtype(dtype)
    actions = None
    if isinstance(graph, TabularMDP):
        if source is not None:
            raise ValueError(
                "for an MDP, shortest_paths measures costs to reach a target (default: the "
                "terminal states); pass target=..., not source=."
            )
        (src, dst, w), n, nodes, actions = _mdp_edges(graph, target)
        reverse = True
    else:
        if not isinstance(graph, tuple | list) or len(graph) != 3:
            raise TypeError(
                "graph must be an edge list (src, dst, weight) of three arrays, or a "
                f"TabularMDP; got {type(graph).__name__}."
            )
        src, dst, w = (np.asarray(x) for x in graph)
        if not (src.ndim == dst.ndim == w.ndim == 1) or not (src.shape == dst.shape == w.shape):
            raise ValueError(
                f"src, dst and weight must be 1-D arrays of one length, got shapes {src.shape}, "
                f"{dst.shape}, {w.shape}."
            )
        for name, x in (("src", src), ("dst", dst)):
            if x.size and not np.issubdtype(x.dtype, np.integer):
                raise TypeError(f"{name} must hold integer node indices, got dtype {x.dtype}.")
        if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
            raise TypeError(f"weight must hold real numbers, got dtype {w.dtype}.")
        if not np.all(np.isfinite(w)):
            e = int(np.flatnonzero(~np.isfinite(w))[0])
            raise ValueError(
                f"weight[{e}] = {w[e]} is not finite; leave missing edges out instead."
            )
        top = int(max(src.max(initial=-1), dst.max(initial=-1))) + 1
        n = top if num_nodes is None else _check_count("num_nodes", num_nodes)
        n = max(n, 1)
        for name, x in (("src", src), ("dst", dst)):
            bad = np.flatnonzero((x < 0) | (x >= n))
            if bad.size:
                e = int(bad[0])
                raise ValueError(f"{name}[{e}] = {int(x[e])} is outside [0, {n}); check num_nodes.")
        if (source is None) == (target is None):
            raise ValueError(
                "give exactly one of source= (distances from it) and target= (distances to it)."
            )
        reverse = target is not None
        nodes = _node_list(target if reverse else source, n, "target" if reverse else "source")
    if reverse:  # distances to the target: relax along reversed edges
        src, dst = dst, src
    start = np.zeros(n, bool)
    start[nodes] = True
    with _precision(dt):
        d, pred_edge, k, status = _bellman_ford(
            jnp.asarray(src, jnp.int32),
            jnp.asarray(dst, jnp.int32),
            jnp.asarray(w, dt),
            jnp.asarray(start),
            num_nodes=n,
        )
        has = pred_edge >= 0
        safe = jnp.where(has, pred_edge, 0)
        pred = jnp.where(has, jnp.asarray(src, jnp.int32)[safe] if src.size else -1, -1)
        policy = None
        if actions is not None:
            policy = jnp.where(
                has, jnp.asarray(actions, jnp.int32)[safe] if actions.size else -1, -1
            )
        return ShortestPathResult(
            distances=d,
            predecessors=pred.astype(jnp.int32),
            iterations=k,
            status=status,
            policy=policy,
        )


# ---------------------------------------------------------------------- random MDPs
def random_mdp(
    seed: int,
    num_states: int,
    num_actions: int,
    num_successors: int | None = None,
    *,
    gamma: float = 0.99,
    sparse: bool | None = None,
) -> TabularMDP:
    """A random ("Garnet") MDP: each `(s, a)` moves to `num_successors` uniformly drawn states
    with random probabilities and pays a standard-normal reward (Archibald et al., 1995).

    Built on the host with numpy, in `O(S * A * K)` memory: 1e6 x 4 x 5 takes ~0.3 GB.

    Args:
      seed: numpy seed.
      num_states, num_actions: `S`, `A`.
      num_successors: `K` successors per `(s, a)` (default: all `S`, a dense MDP).
      gamma: discount.
      sparse: store `SparseTransitions` (default: when `num_successors` is given).

    Returns:
      A validated `TabularMDP`.
    """
    S = _check_count("num_states", num_states)
    A = _check_count("num_actions", num_actions)
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((S, A))
    if num_successors is None:
        P = rng.random((S, A, S)) ** 4  # uneven rows
        P /= P.sum(axis=2, keepdims=True)
        mdp = TabularMDP(P, R, gamma)
        return mdp.to_sparse() if sparse else mdp
    K = _check_count("num_successors", num_successors)
    ns = rng.integers(0, S, size=(S, A, K), dtype=np.int32 if S < 2**31 else np.int64)
    p = rng.random((S, A, K)) + 1e-3
    p /= p.sum(axis=2, keepdims=True)
    mdp = TabularMDP(SparseTransitions(next_state=ns, prob=p), R, gamma)
    return mdp if sparse is None or sparse else mdp.to_dense()
