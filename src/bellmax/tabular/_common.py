"""What the exact dynamic-programming solvers share: results, input checks, the fixed-point loop.

`evaluation`, `control` and `shortest_paths` read their results (`DPResult`,
`ShortestPathResult`), the host-side checks of their arguments, the gamma-contraction loop
with its stopping rule (`fixed_point`), the greedy step (`greedy_and_best`) and the Markov
reward process of a policy (`policy_mrp`) from here.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_number
from bellmax.core.display import summary_repr
from bellmax.core.mdp import TabularMDP
from bellmax.core.semiring import MAX_PLUS, SUM_PRODUCT, UNROLL_MAX, MDPArrays, q_values
from bellmax.core.status import Status, StatusFields

__all__ = [
    "DPResult",
    "FixedPoint",
    "ShortestPathResult",
    "Solve",
    "Status",
    "bound_factor",
    "check_dtype",
    "check_mdp",
    "check_policy_table",
    "check_positive",
    "check_values",
    "dp_result",
    "fixed_point",
    "greedy_and_best",
    "greedy_policy",
    "jit_q_values",
    "next_status",
    "policy_mrp",
    "precision",
    "prepare",
]


# ---------------------------------------------------------------------- results
@struct.dataclass
class DPResult(StatusFields):
    """What a dynamic-programming solver returns.

    The meaning of `iterations` depends on the solver: sweeps or backups (value iteration,
    Jacobi / Gauss-Seidel evaluation, soft VI), improvement rounds (policy iteration and
    modified policy iteration), BiCGSTAB restart cycles (Krylov), 1 for a direct solve.
    `status_name` and `converged` come from `StatusFields`.
    """

    __repr__ = summary_repr

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
    """A `Status` code (int): converged, max_iterations or diverged."""
    q_values: jax.Array | None = None
    """`Q(s, a) = R + gamma P V` `[S, A]` for the values the policy was read from."""


@struct.dataclass
class ShortestPathResult(StatusFields):
    """What `shortest_paths` returns."""

    __repr__ = summary_repr

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


class Solve(NamedTuple):
    """What one evaluation method returns (the fields of a `DPResult` it determines)."""

    values: jax.Array
    iterations: jax.Array
    residual: jax.Array
    error_bound: jax.Array
    status: jax.Array


def dp_result(solve: Solve | FixedPoint, policy: jax.Array, q: jax.Array | None) -> DPResult:
    """A `DPResult` from a solve (or a fixed point) and the policy and q-values read from it."""
    fields = {name: getattr(solve, name) for name in Solve._fields}
    return DPResult(policy=policy, q_values=q, **fields)


# ---------------------------------------------------------------------- input checks
def precision(dtype: Any) -> contextlib.AbstractContextManager:
    """`jax.enable_x64(True)` for float64, else nothing (the global setting stays as it is)."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


def check_dtype(dtype: Any) -> np.dtype:
    """float32 or float64 as a numpy dtype; raise `TypeError` for anything else."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}; the default is float64.")
    return dt


def check_mdp(mdp: Any, who: str) -> TabularMDP:
    """Raise `TypeError` unless `mdp` is a concrete (not traced) `TabularMDP`."""
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


def check_positive(value: Any, name: str, hint: str) -> float:
    """A finite number > 0 (`core.checks.check_number`), the message ending with `hint`."""
    try:
        return check_number(value, name, low=0, low_open=True)
    except ValueError:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}; {hint}.") from None


def prepare(mdp: Any, who: str, dtype: Any) -> tuple[TabularMDP, np.dtype]:
    """`(check_mdp(mdp, who), check_dtype(dtype))`."""
    return check_mdp(mdp, who), check_dtype(dtype)


def check_values(v0: Any, S: int, dtype: np.dtype, name: str = "v0") -> jax.Array:
    """Starting values: zeros when None, else a finite real `[S]` array."""
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


def _check_actions(arr: np.ndarray, S: int, A: int) -> np.ndarray:
    if arr.shape != (S,):
        raise ValueError(
            f"a deterministic policy must have shape (S,) = ({S},), got {arr.shape}; "
            f"or pass probabilities of shape ({S}, {A})."
        )
    if arr.dtype == bool:  # True/False read as actions 1/0: almost surely a mask or a slip
        raise TypeError(
            "a deterministic policy holds action indices (integers), got a bool array; pass "
            "ints (e.g. policy.astype(int)), or (S, A) probabilities."
        )
    if not np.issubdtype(arr.dtype, np.integer):
        whole = np.isfinite(arr) & (np.mod(arr, 1) == 0)
        if not np.all(whole):
            raise ValueError(
                f"a deterministic policy holds action indices (integers); found {arr[~whole][0].item()!r}."
            )
    bad = np.flatnonzero((arr < 0) | (arr >= A))
    if bad.size:
        s = int(bad[0])
        raise ValueError(f"policy[{s}] = {arr[s]} is not an action; actions are 0 .. {A - 1}.")
    return arr.astype(np.int32)


def _check_probabilities(arr: np.ndarray, S: int, A: int) -> np.ndarray:
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


def check_policy_table(policy: Any, S: int, A: int) -> np.ndarray:
    """`[S]` int actions, or `[S, A]` probabilities, validated on the host."""
    if isinstance(policy, jax.core.Tracer):
        raise TypeError("policy must be a concrete array, not a traced value.")
    arr = np.asarray(policy)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise TypeError(f"policy must hold numbers, got dtype {arr.dtype}.")
    if arr.ndim == 1:
        return _check_actions(arr, S, A)
    if arr.ndim == 2:
        return _check_probabilities(arr, S, A)
    raise ValueError(
        f"policy must be (S,) action indices or (S, A) probabilities, got shape {arr.shape}."
    )


# ---------------------------------------------------------------------- the fixed-point loop
def bound_factor(gamma: jax.Array) -> jax.Array:
    """`gamma / (1 - gamma)` for gamma < 1 (the contraction's error bound), 1 for gamma = 1."""
    return jnp.where(gamma < 1.0, gamma / jnp.maximum(1.0 - gamma, 1e-300), 1.0)


def next_status(
    ok: jax.Array, bound: jax.Array, tol: jax.Array, k: jax.Array, max_it: jax.Array
) -> jax.Array:
    """The loop status after a step: diverged (not `ok`), converged, out of iterations or
    still running, in that order of precedence."""
    return jnp.where(
        ~ok,
        Status.DIVERGED,
        jnp.where(
            bound <= tol,
            Status.CONVERGED,
            jnp.where(k >= max_it, Status.MAX_ITERATIONS, Status.RUNNING),
        ),
    ).astype(jnp.int32)


class FixedPoint(NamedTuple):
    """What `fixed_point` returns."""

    values: jax.Array
    """`x = T v`, the iterate that passed the stopping test."""
    previous: jax.Array
    """`v`, the iterate the last backup was applied to."""
    iterations: jax.Array
    residual: jax.Array
    """`||x - v||`."""
    error_bound: jax.Array
    status: jax.Array


class _FixedPointCarry(NamedTuple):
    v: jax.Array
    """The iterate under test."""
    x: jax.Array
    """`T v`."""
    v_next: jax.Array
    """The iterate after `v` (`x`, or more for modified policy iteration)."""
    k: jax.Array
    residual: jax.Array
    status: jax.Array


def fixed_point(step, v0: jax.Array, gamma: jax.Array, tol: jax.Array, max_it: jax.Array):
    """Iterate a gamma-contraction with the sup-norm stopping rule, in one `lax.while_loop`.

    `step(v) -> (x, v_next)`: `x = T v` is what the stopping rule compares with `v`
    (`||x - v|| = ||T v - v||`), `v_next` the next iterate (`x` itself, or more, for modified
    policy iteration). The rule: stop when `gamma / (1 - gamma) * ||x - v|| <= tol`
    (gamma < 1; then `||x - V_fixed|| <= tol`) or `||x - v|| <= tol` (gamma = 1).

    Rounding: a residual below `eps * max|x|` (the last bits of the largest value) no longer
    measures the distance to the fixed point: in floating point the iteration can stop
    changing short of it (large values, gamma near 1: a residual of exactly 0 at a point
    200 away from V*). The bound is therefore taken at no less than that floor, and an
    iteration that has stopped changing (a residual of 0) while the bound is still above
    `tol` stops as STALLED (more iterations cannot tighten it), with that bound.

    Each residual is measured at the start of the next loop step, on the stored arrays, so
    that XLA keeps the gather-heavy backup in its own elementwise loop: fused into the
    residual's reduction it ran 3x slower.

    Returns:
      A `FixedPoint`.
    """
    factor = bound_factor(gamma)

    def advance(c: _FixedPointCarry) -> _FixedPointCarry:
        x, v_next = step(c.v_next)
        return c._replace(v=c.v_next, x=x, v_next=v_next, k=c.k + 1)

    def body(c: _FixedPointCarry) -> _FixedPointCarry:
        res = jnp.max(jnp.abs(c.x - c.v))
        floor = rounding_floor(c.x)
        status = next_status(jnp.isfinite(res), factor * jnp.maximum(res, floor), tol, c.k, max_it)
        # the iteration has stopped changing (a residual at the floor that is not 0 can
        # still creep closer, one last bit a step)
        stalled = (status == Status.RUNNING) & (res == 0)
        status = jnp.where(stalled, Status.STALLED, status).astype(jnp.int32)
        c = jax.lax.cond(status == Status.RUNNING, advance, lambda c: c, c)
        return c._replace(residual=res, status=status)

    x0, v_next0 = step(v0)
    init = _FixedPointCarry(
        v=v0,
        x=x0,
        v_next=v_next0,
        k=jnp.int32(1),
        residual=jnp.asarray(jnp.inf, v0.dtype),
        status=jnp.int32(Status.RUNNING),
    )
    out = jax.lax.while_loop(lambda c: c.status == Status.RUNNING, body, init)
    return FixedPoint(
        values=out.x,
        previous=out.v,
        iterations=out.k,
        residual=out.residual,
        error_bound=jnp.where(
            gamma < 1.0, factor * jnp.maximum(out.residual, rounding_floor(out.x)), jnp.inf
        ),
        status=out.status,
    )


def rounding_floor(x: jax.Array) -> jax.Array:
    """`eps * max|x|` over the finite entries: the smallest change of `x` that rounding
    does not blur (`fixed_point`)."""
    finite = jnp.where(jnp.isfinite(x), jnp.abs(x), 0.0)
    return jnp.finfo(x.dtype).eps * jnp.max(finite)


# ---------------------------------------------------------------------- policies
def policy_mrp(m: MDPArrays, policy: jax.Array) -> MDPArrays:
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


#: A state is absorbing when it stays with at least this probability.
ABSORBING = 1.0 - 1e-12


def absorbing_zero(mrp: MDPArrays) -> jax.Array:
    """`[S]`: states that a Markov reward process (`A = 1`) never leaves and where it earns
    nothing; their value is 0."""
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
    return (stay >= ABSORBING) & (r == 0.0)


def terminal_states(m: MDPArrays) -> jax.Array:
    """`[S]`: states that no action leaves and where every action earns nothing: the ends of
    episodes, as absorbing states model them (Sutton & Barto, section 3.4)."""
    S, A = m.R.shape
    ends = jnp.ones((S,), bool)
    for a in range(A):
        ends = ends & absorbing_zero(policy_mrp(m, jnp.full((S,), a, jnp.int32)))
    return ends


def greedy_and_best(
    q: jax.Array, current: jax.Array | None, tie_tol: Any
) -> tuple[jax.Array, jax.Array]:
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
    if jnp.ndim(q) != 2:
        raise ValueError(f"q must be action values [S, A], got shape {jnp.shape(q)}.")
    if not traced and np.isnan(np.asarray(q)).any():
        raise ValueError("q contains NaN: a greedy action is undefined there; fix the values.")
    wide = not traced and np.dtype(getattr(q, "dtype", np.asarray(q).dtype)) == np.float64
    with precision(np.float64) if wide else contextlib.nullcontext():
        cur = None if current is None else jnp.asarray(current, jnp.int32)
        return greedy_and_best(jnp.asarray(q), cur, tie_tol)[0]


#: `q_values` compiled on its own (for the host-driven solvers).
jit_q_values = jax.jit(q_values)
