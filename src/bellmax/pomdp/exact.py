"""Exact finite-horizon value iteration with incremental pruning (small POMDPs).

The optimal `h`-step value is piecewise linear and convex, `V_h(b) = max_k b . alpha_k`
(Smallwood & Sondik 1973). One exact backup builds, for every action `a` and observation
`o`, the projected vectors `R[:, a] / |O| + gamma T_a diag(O[a, :, o]) alpha` and takes their
cross-sum over observations and union over actions. Incremental pruning (Cassandra, Littman
& Zhang 1997, "Incremental pruning: a simple, fast, exact method for POMDPs", UAI) prunes
after every pairwise cross-sum; pruning is Lark's filter (White 1991; Cassandra 1998,
section 4.3): a vector is kept when a linear program (scipy's HiGHS) finds a belief where
it beats every vector kept so far by more than `tol`. It runs on the host in float64.
"""

from __future__ import annotations

import dataclasses
import math
import time

import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.pomdp.belief import AlphaVectors, x64
from bellmax.pomdp.model import TabularPOMDP, check_pomdp, check_reward_scale

__all__ = ["ExactResult", "exact_value_iteration", "prune"]


@dataclasses.dataclass(frozen=True)
class ExactResult:
    """What `exact_value_iteration` returns."""

    __repr__ = summary_repr

    stages: tuple[AlphaVectors, ...]
    """`stages[h - 1]`: the pruned vectors of `V_h`, h = 1..horizon (act with
    `stages[steps_left - 1]`)."""
    values: np.ndarray
    """`V_h(b0)` for h = 1..horizon, `[horizon]`."""

    @property
    def policy(self) -> AlphaVectors:
        """The vectors of the longest horizon."""
        return self.stages[-1]


def _witness(phi: np.ndarray, kept: np.ndarray, tol: float) -> np.ndarray | None:
    """A belief where `phi` beats every row of `kept` by more than `tol`, or None."""
    from scipy.optimize import linprog  # lazy: scipy only for the exact solver

    S = phi.shape[0]
    if kept.shape[0] == 0:
        return np.full(S, 1.0 / S)
    # variables (b, delta): maximise delta s.t. b . (kept_k - phi) + delta <= 0, sum b = 1.
    c = np.zeros(S + 1)
    c[-1] = -1.0
    A_ub = np.hstack([kept - phi, np.ones((kept.shape[0], 1))])
    A_eq = np.hstack([np.ones((1, S)), np.zeros((1, 1))])
    bounds = [(0.0, 1.0)] * S + [(None, None)]
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(kept.shape[0]),
        A_eq=A_eq,
        b_eq=[1.0],
        bounds=bounds,
        method="highs",
    )
    if res.status != 0 or -res.fun <= tol:
        return None
    return res.x[:S]


def prune(
    alphas: np.ndarray, actions: np.ndarray, *, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """The vectors that are the maximum somewhere in the belief simplex (Lark's filter).

    Duplicates and pointwise-dominated vectors go first; then each remaining candidate is
    tested by a linear program against the vectors kept so far, and where it wins, the best
    candidate at the witness belief (ties broken lexicographically) is kept.

    Args:
      alphas: `[K, S]` vectors.
      actions: `[K]` their first actions.
      tol: the margin a vector must win by.

    Returns:
      `(alphas, actions)` of the kept vectors.
    """
    alphas = np.asarray(alphas, np.float64)
    actions = np.asarray(actions)
    if alphas.shape[0] <= 1:
        return alphas, actions
    _, first = np.unique(np.round(alphas, 12), axis=0, return_index=True)
    first = np.sort(first)
    alphas, actions = alphas[first], actions[first]
    # pointwise domination: j dominates i when alphas[j] >= alphas[i] everywhere (j != i).
    ge = np.all(alphas[None, :, :] >= alphas[:, None, :] - tol, axis=2)
    np.fill_diagonal(ge, False)
    keep = ~ge.any(axis=1)
    alphas, actions = alphas[keep], actions[keep]
    cand = list(range(alphas.shape[0]))
    kept: list[int] = []
    while cand:
        b = _witness(alphas[cand[0]], alphas[kept], tol)
        if b is None:
            cand.pop(0)
            continue
        scores = alphas[cand] @ b
        top = [c for c, v in zip(cand, scores, strict=True) if v >= scores.max() - 1e-12]
        best = max(top, key=lambda k: tuple(alphas[k]))
        kept.append(best)
        cand.remove(best)
    return alphas[kept], actions[kept]


def exact_value_iteration(
    pomdp: TabularPOMDP, horizon: int, *, tol: float = 1e-9, time_limit: float | None = None
) -> ExactResult:
    """Exact `h`-step optimal values for h = 1..horizon by incremental pruning.

    `V_0 = 0`; the rewards are discounted by `gamma` (which may be 1 here). The number of
    vectors can grow doubly exponentially with the horizon: this is for small problems.

    Args:
      pomdp: the model.
      horizon: the number of steps (>= 1).
      tol: pruning margin.
      time_limit: seconds (None: no limit), checked between the cross-sums of a stage; when
        it runs out, the stage under way is dropped and the result holds the stages done
        (`len(result.values) < horizon`, possibly 0).

    Returns:
      `ExactResult` (the vectors of every stage done and `V_h(b0)`).
    """
    check_pomdp(pomdp, "exact_value_iteration")
    horizon = check_int(horizon, "horizon", owner="exact_value_iteration", low=1)
    check_reward_scale(pomdp, "exact_value_iteration", horizon)
    tol = check_number(tol, "tol", owner="exact_value_iteration", low=0, low_open=True)
    if time_limit is not None:
        time_limit = check_number(
            time_limit, "time_limit", owner="exact_value_iteration", low=0, low_open=True
        )
    deadline = math.inf if time_limit is None else time.perf_counter() + time_limit
    T = np.asarray(pomdp.T, np.float64)
    Ob = np.asarray(pomdp.O, np.float64)
    R = np.asarray(pomdp.R, np.float64)
    b0 = np.asarray(pomdp.b0, np.float64)
    S, A, Z = pomdp.num_states, pomdp.num_actions, pomdp.num_observations
    V = np.zeros((1, S))
    stages, values = [], []
    for _ in range(horizon):
        new_a, new_act = [], []
        for a in range(A):
            acc = None
            for o in range(Z):
                if time.perf_counter() > deadline:
                    return ExactResult(stages=tuple(stages), values=np.asarray(values))
                # proj[k, s] = R[s, a] / Z + gamma sum_s' T[a, s, s'] O[a, s', o] V[k, s']
                proj = R[:, a] / Z + pomdp.gamma * (V * Ob[a, :, o]) @ T[a].T
                proj, _ = prune(proj, np.zeros(len(proj), int), tol=tol)
                if acc is None:
                    acc = proj
                else:
                    acc = (acc[:, None, :] + proj[None, :, :]).reshape(-1, S)
                    acc, _ = prune(acc, np.zeros(len(acc), int), tol=tol)
            new_a.append(acc)
            new_act.append(np.full(len(acc), a))
        V, act = prune(np.concatenate(new_a), np.concatenate(new_act), tol=tol)
        with x64():
            stages.append(AlphaVectors(alphas=jnp.asarray(V), actions=jnp.asarray(act)))
        values.append(float(np.max(V @ b0)))
    return ExactResult(stages=tuple(stages), values=np.asarray(values))
