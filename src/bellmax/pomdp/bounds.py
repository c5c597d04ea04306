"""Value bounds from the fully observed model: QMDP, the fast informed bound, the blind policy.

- `qmdp` (Littman, Cassandra & Kaelbling 1995): the optimal Q of the MDP underneath,
  `V(b) <= max_a b . Q_MDP[:, a]` (acting as if the state were seen after one step).
- `fast_informed_bound` (Hauskrecht 2000, "Value-function approximations for partially
  observable Markov decision processes", JAIR 13, section 4.2): a tighter upper bound,
  `Q(s, a) = R(s, a) + gamma sum_o max_a' sum_s' T[a, s, s'] O[a, s', o] Q(s', a')`, the
  state seen one observation late (summed over each `(a, s)`'s successor list when those
  are short: Tag's 5 of 870 states). Both start from `max R / (1 - gamma)` above the fixed
  point, so every iterate (and the result at any tolerance) is a valid upper bound.
- `blind_lower_bound` (Hauskrecht 2000, section 4.4): the value of repeating one action
  whatever is observed, `alpha_a = (I - gamma T_a)^{-1} R[:, a]`, one lower-bound vector per
  action.

All need `gamma < 1`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields
from bellmax.pomdp.belief import AlphaVectors, x64
from bellmax.pomdp.model import (
    TabularPOMDP,
    check_pomdp,
    check_reward_scale,
    short_successor_lists,
)

__all__ = [
    "BoundResult",
    "blind_lower_bound",
    "check_discounted",
    "fast_informed_bound",
    "qmdp",
]


@struct.dataclass
class BoundResult(StatusFields):
    """An upper bound as one alpha vector per action, and how its iteration stopped."""

    __repr__ = summary_repr

    vectors: AlphaVectors
    """`alphas[a] = Q[:, a]`, `actions = 0..A-1`; `vectors.value(b)` bounds `V*(b)` from above."""
    iterations: jax.Array
    """Backups performed."""
    error_bound: jax.Array
    """`gamma / (1 - gamma) * ||Q_k - Q_{k-1}||`: the distance to the bound's fixed point."""
    status: jax.Array
    """A `Status` code: converged or max_iterations."""


def check_discounted(pomdp: TabularPOMDP, what: str) -> None:
    """Refuse `gamma = 1` for infinite-horizon solvers, and rewards whose discounted sums
    overflow (`check_reward_scale`)."""
    check_pomdp(pomdp, what)
    if not pomdp.gamma < 1.0:
        raise ValueError(
            f"{what} needs a discount gamma < 1 for an infinite horizon, got gamma = {pomdp.gamma}; "
            "use exact_value_iteration with a finite horizon for gamma = 1."
        )
    check_reward_scale(pomdp, what)


def _top(pomdp: TabularPOMDP) -> float:
    return float(np.max(pomdp.R)) / (1.0 - pomdp.gamma)


def qmdp(pomdp: TabularPOMDP, *, tol: float = 1e-6, max_iterations: int = 100_000) -> BoundResult:
    """The QMDP upper bound (value iteration on the MDP underneath, from above).

    Args:
      pomdp: the model (`gamma < 1`).
      tol: stop when the values are within `tol` of the MDP's optimum.
      max_iterations: backup limit.

    Returns:
      `BoundResult`.
    """
    from bellmax.tabular import value_iteration  # the MDP's own solver, reused

    check_discounted(pomdp, "qmdp")
    tol = check_number(tol, "tol", owner="qmdp", low=0, low_open=True)
    S = pomdp.num_states
    res = value_iteration(
        pomdp.mdp, tol=tol, max_iterations=max_iterations, v0=np.full(S, _top(pomdp))
    )
    with x64():
        vec = AlphaVectors(
            alphas=jnp.asarray(res.q_values, jnp.float64).T,
            actions=jnp.arange(pomdp.num_actions),
        )
    return BoundResult(
        vectors=vec, iterations=res.iterations, error_bound=res.error_bound, status=res.status
    )


def _fib_backup(T, Ob, R, gamma, Q):
    # next[a, o, s, b] = sum_s' T[a, s, s'] O[a, s', o] Q[s', b]
    nxt = jnp.einsum("ast,ato,tb->aosb", T, Ob, Q)
    return R + gamma * nxt.max(axis=3).sum(axis=1).T


def _fib_backup_sparse(succ, prob, Ob, R, gamma, Q):
    # the same sum over each (a, s)'s K successors only: next[a, s, o, b]
    A = R.shape[1]
    M = Ob[..., None] * Q[None, :, None, :]  # [a, s', o, b]
    nxt = (prob[..., None, None] * M[jnp.arange(A)[:, None, None], succ]).sum(axis=2)
    return R + gamma * nxt.max(axis=3).sum(axis=2).T


@jax.jit
def _fib(trans, Ob, R, gamma, q0, tol, max_it):
    # trans: `(T,)` dense, or `(succ, prob)` from `short_successor_lists`
    def backup(q):
        if len(trans) == 1:
            return _fib_backup(trans[0], Ob, R, gamma, q)
        return _fib_backup_sparse(*trans, Ob, R, gamma, q)

    def cond(c):
        q, it, err = c
        return (err > tol) & (it < max_it)

    def body(c):
        q, it, _ = c
        q2 = backup(q)
        return q2, it + 1, gamma / (1 - gamma) * jnp.max(jnp.abs(q2 - q))

    return jax.lax.while_loop(cond, body, (q0, jnp.int32(0), jnp.asarray(jnp.inf, q0.dtype)))


def fast_informed_bound(
    pomdp: TabularPOMDP, *, tol: float = 1e-6, max_iterations: int = 100_000
) -> BoundResult:
    """The fast informed bound (FIB), an upper bound at least as tight as QMDP's (jitted).

    Args:
      pomdp: the model (`gamma < 1`).
      tol: stop when `gamma / (1 - gamma) * ||Q_k - Q_{k-1}|| <= tol`.
      max_iterations: backup limit.

    Returns:
      `BoundResult`.
    """
    check_discounted(pomdp, "fast_informed_bound")
    tol = check_number(tol, "tol", owner="fast_informed_bound", low=0, low_open=True)
    max_iterations = check_int(max_iterations, "max_iterations", owner="fast_informed_bound", low=1)
    with x64():
        # successor lists when each (a, s) has few: the backup then costs A S K O A, not
        # A S S O A (Tag: 5 of 870 states)
        lists = short_successor_lists(pomdp.T)
        trans = (
            (jnp.asarray(pomdp.T, jnp.float64),)
            if lists is None
            else tuple(map(jnp.asarray, lists))
        )
        Ob = jnp.asarray(pomdp.O, jnp.float64)
        R = jnp.asarray(pomdp.R, jnp.float64)
        q0 = jnp.full(R.shape, _top(pomdp))
        q, it, err = _fib(trans, Ob, R, pomdp.gamma, q0, tol, max_iterations)
        status = jnp.where(err <= tol, Status.CONVERGED, Status.MAX_ITERATIONS)
        vec = AlphaVectors(alphas=q.T, actions=jnp.arange(pomdp.num_actions))
    return BoundResult(vectors=vec, iterations=it, error_bound=err, status=status)


def blind_lower_bound(pomdp: TabularPOMDP) -> AlphaVectors:
    """One lower-bound vector per action: the value of repeating it forever (`gamma < 1`)."""
    check_discounted(pomdp, "blind_lower_bound")
    T = np.asarray(pomdp.T, np.float64)
    R = np.asarray(pomdp.R, np.float64)
    S, A = R.shape
    eye = np.eye(S)
    alphas = np.stack([np.linalg.solve(eye - pomdp.gamma * T[a], R[:, a]) for a in range(A)])
    with x64():
        return AlphaVectors(alphas=jnp.asarray(alphas), actions=jnp.arange(A))
