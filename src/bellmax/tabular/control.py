"""Optimal control of finite MDPs by dynamic programming (Sutton & Barto, §4.3-4.4; Puterman, ch. 6).

- `value_iteration`: `v <- max_a [R + gamma P v]` (max-plus), stopped by a rule that bounds the
  error of the values it returns;
- `soft_value_iteration`: the log-sum-exp backup at temperature `tau` (maximum-entropy control);
- `policy_iteration`, `modified_policy_iteration`: exact / partial evaluation + greedy improvement.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int
from bellmax.core.mdp import TabularMDP
from bellmax.core.semiring import (
    MAX_PLUS,
    SUM_PRODUCT,
    MDPArrays,
    bellman_backup,
    log_sum_exp,
    q_values,
)
from bellmax.core.status import Status
from bellmax.tabular._common import (
    DPResult,
    Solve,
    check_policy_table,
    check_positive,
    check_values,
    dp_result,
    fixed_point,
    greedy_and_best,
    jit_q_values,
    policy_mrp,
    precision,
    prepare,
    terminal_states,
)
from bellmax.tabular.evaluation import (
    EVALUATION_METHODS,
    auto_method,
    check_method,
    evaluate_arrays,
    evaluate_body,
    runs_in_jax,
)

__all__ = [
    "modified_policy_iteration",
    "policy_iteration",
    "soft_value_iteration",
    "value_iteration",
]


# ---------------------------------------------------------------------- value iteration
@partial(jax.jit, static_argnames=("soft",))
def _value_iteration(m: MDPArrays, v0, tol, max_it, temperature, soft: bool) -> DPResult:
    semiring = log_sum_exp(temperature) if soft else MAX_PLUS
    # Soft backups add tau log|A| at an absorbing state, forever; an episode's end earns
    # nothing more, so terminal states keep the value 0 (the max backup keeps it by itself).
    ends = terminal_states(m) if soft else None

    def step(v):
        x = bellman_backup(m, v, semiring).values
        if soft:
            x = jnp.where(ends, 0.0, x)
        return x, x

    fp = fixed_point(step, v0, m.gamma, tol, max_it)
    q = q_values(m, fp.previous)  # the backup that produced x: x = (+)_a q
    policy = semiring.argbest(q, axis=-1)
    if not soft:
        policy = policy.astype(jnp.int32)
    return dp_result(fp, policy, q)


def _run_value_iteration(
    mdp: Any, who: str, temperature: float | None, tol: Any, max_iterations: Any, v0, dtype
) -> DPResult:
    """Check the arguments of value iteration (soft at a checked `temperature`) and run it."""
    mdp, dt = prepare(mdp, who, dtype)
    tol = check_positive(tol, "tol", "e.g. tol=1e-8")
    max_iterations = check_int(max_iterations, "max_iterations", low=1)
    with precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        return _value_iteration(
            m,
            check_values(v0, mdp.num_states, dt),
            jnp.asarray(tol, dt),
            jnp.int32(max_iterations),
            jnp.asarray(1.0 if temperature is None else temperature, dt),
            soft=temperature is not None,
        )


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
    are within `tol` of optimal, and `error_bound` reports the bound achieved. In floating
    point the residual is taken at no less than `eps * max|V|`: with large values and gamma
    near 1 the iteration can stop changing short of V* (status `stalled`, with the bound it
    did reach). (This is not pymdptoolbox's span rule, which bounds the policy's loss, not
    the values.) For
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
    return _run_value_iteration(mdp, "value_iteration", None, tol, max_iterations, v0, dtype)


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
    (Ziebart 2010; Haarnoja et al. 2017, soft Q-learning). Terminal states (no action leaves
    them, none earns anything) keep the value 0: an episode's end earns no more entropy.

    Args:
      mdp: the MDP.
      temperature: `tau > 0` (one compiled program serves every temperature; its limit 0
        is `value_iteration`).
      tol: the error bound to reach.
      max_iterations: backup limit.
      v0: starting values (default zeros).
      dtype: float64 (default) or float32.

    Returns:
      A `DPResult` whose `policy` is the softmax policy `[S, A]`,
      `pi(a|s) = exp((Q(s, a) - V(s)) / tau)`.
    """
    temperature = check_positive(temperature, "temperature", "its limit 0 is value_iteration")
    return _run_value_iteration(
        mdp, "soft_value_iteration", temperature, tol, max_iterations, v0, dtype
    )


# ---------------------------------------------------------------------- policy iteration
def _improve(m: MDPArrays, v: jax.Array, policy: jax.Array, tie_tol: jax.Array):
    """The greedy policy and `T v` (elementwise only; the host compares and reduces them)."""
    current = policy if policy.ndim == 1 else None
    return greedy_and_best(q_values(m, v), current, tie_tol)


_improve_jit = jax.jit(_improve)


class _Round(NamedTuple):
    """One evaluation and improvement of policy iteration."""

    values: jax.Array
    """`v_pi` of the policy evaluated."""
    status: jax.Array
    """The evaluation's status."""
    policy: jax.Array
    """The greedy policy of `values`."""
    backup: jax.Array
    """`T v` (the greedy values)."""


@partial(jax.jit, static_argnames=("method",))
def _pi_round_jax(m: MDPArrays, policy, v, tol, max_it, method: str) -> _Round:
    """One round as one compiled program (methods that run in JAX)."""
    solve = evaluate_body(m, policy, v, tol, max_it, method)
    new, tv = _improve(m, solve.values, policy, tol)
    return _Round(values=solve.values, status=solve.status, policy=new, backup=tv)


def _pi_round(m: MDPArrays, policy, v, tol: float, method: str) -> _Round:
    """One round; the evaluation warm starts from the previous values `v`."""
    tie = jnp.asarray(tol, m.R.dtype)
    if runs_in_jax(m, method):
        return _pi_round_jax(m, policy, v, tie, jnp.int32(100_000), method=method)
    solve = evaluate_arrays(m, policy, method, v, tol, 100_000)
    new, tv = _improve_jit(m, solve.values, policy, tie)
    return _Round(values=solve.values, status=solve.status, policy=new, backup=tv)


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
    mdp, dt = prepare(mdp, "policy_iteration", dtype)
    evaluation = check_method(evaluation, EVALUATION_METHODS, "evaluation method")
    tol = check_positive(tol, "tol", "e.g. tol=1e-8")
    max_iterations = check_int(max_iterations, "max_iterations", low=1)
    S, A = mdp.shape
    evaluation = auto_method(mdp, evaluation)
    pol = np.full((S, A), 1.0 / A) if policy0 is None else check_policy_table(policy0, S, A)
    with precision(dt):
        m = MDPArrays.from_mdp(mdp, dt)
        policy = jnp.asarray(pol, dt if pol.ndim == 2 else jnp.int32)
        v = jnp.zeros(S, dt)
        status, res, rounds = Status.MAX_ITERATIONS, math.inf, 0
        for rounds in range(1, max_iterations + 1):  # noqa: B007
            step = _pi_round(m, policy, v, tol, evaluation)
            v = step.values
            if int(step.status) != Status.CONVERGED:
                diverged = int(step.status) == Status.DIVERGED
                status = Status.DIVERGED if diverged else Status.MAX_ITERATIONS
                res = math.inf
                break
            res = float(np.max(np.abs(np.asarray(step.backup) - np.asarray(v))))  # ||T v - v||
            if policy.ndim == 1 and np.array_equal(np.asarray(step.policy), np.asarray(policy)):
                status = Status.CONVERGED
                break
            policy = step.policy
        gamma = float(mdp.gamma)
        bound = res / (1.0 - gamma) if gamma < 1.0 else math.inf
        solve = Solve(
            values=v,
            iterations=jnp.int32(rounds),
            residual=jnp.asarray(res, dt),
            error_bound=jnp.asarray(bound, dt),
            status=jnp.int32(status),
        )
        return dp_result(solve, policy, jit_q_values(m, v))


# ---------------------------------------------------------------------- modified PI
@jax.jit
def _mpi(m: MDPArrays, v0, tol, max_it, sweeps) -> DPResult:
    def step(v):
        pi, tv = greedy_and_best(q_values(m, v), None, 0.0)
        # Partial evaluation: `sweeps` more backups of the greedy policy, from T v.
        mrp = policy_mrp(m, pi)
        v_next = jax.lax.fori_loop(
            0, sweeps, lambda _, u: bellman_backup(mrp, u, SUM_PRODUCT).values, tv
        )
        return tv, v_next

    fp = fixed_point(step, v0, m.gamma, tol, max_it)
    q = q_values(m, fp.previous)
    return dp_result(fp, greedy_and_best(q, None, 0.0)[0], q)


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
    mdp, dt = prepare(mdp, "modified_policy_iteration", dtype)
    sweeps = check_int(m, "m", low=0)
    tol = check_positive(tol, "tol", "e.g. tol=1e-8")
    max_iterations = check_int(max_iterations, "max_iterations", low=1)
    with precision(dt):
        arrays = MDPArrays.from_mdp(mdp, dt)
        v0 = check_values(v0, mdp.num_states, dt)
        return _mpi(arrays, v0, jnp.asarray(tol, dt), jnp.int32(max_iterations), jnp.int32(sweeps))
