"""Exact dynamic programming on finite MDPs (Sutton & Barto, ch. 4; Puterman, ch. 6).

This module gathers the solvers, which live by job in `bellmax.tabular.evaluation`,
`bellmax.tabular.control` and `bellmax.tabular.shortest_paths` (`random_mdp` in
`bellmax.tabular.garnet`). Every solver is one semiring Bellman backup
(`bellmax.core.semiring.bellman_backup`) iterated or solved exactly:

- `evaluate_policy`: `v = r_pi + gamma P_pi v` (sum-product) by a direct linear solve, by
  sweeps (Jacobi-style two-array, Gauss-Seidel-style in place) or by BiCGSTAB (Krylov);
- `value_iteration`: `v <- max_a [R + gamma P v]` (max-plus), stopped by a rule that bounds the
  error of the values it returns;
- `policy_iteration`, `modified_policy_iteration`: exact / partial evaluation + greedy improvement;
- `soft_value_iteration`: the log-sum-exp backup at temperature `tau` (maximum-entropy control);
- `shortest_paths`: min-plus Bellman-Ford on a weighted graph, with negative-cycle detection.

Each returns a named result (`DPResult`, `ShortestPathResult`) with a `status` from the
shared vocabulary `bellmax.core.status.Status`: `converged`, `max_iterations`,
`negative_cycle` or `diverged` (non-finite numbers appeared; never a silent NaN). Iterative solvers run as one `jax.lax.while_loop` under `jax.jit`, compiled once per
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

from bellmax.core.status import Status
from bellmax.tabular._common import DPResult, ShortestPathResult, greedy_policy
from bellmax.tabular.control import (
    modified_policy_iteration,
    policy_iteration,
    soft_value_iteration,
    value_iteration,
)
from bellmax.tabular.evaluation import EVALUATION_METHODS, KRYLOV_CYCLE, evaluate_policy
from bellmax.tabular.garnet import random_mdp
from bellmax.tabular.shortest_paths import shortest_paths

__all__ = [
    "EVALUATION_METHODS",
    "KRYLOV_CYCLE",
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
