"""Shared types and math. Imports nothing else from bellmax.

Names load on first use (`bellmax.core.lazy`): importing `bellmax.core.errors` or
`bellmax.core.paths` does not import JAX.
"""

from bellmax.core.lazy import lazy_exports

_EXPORTS = {
    "BellmaxError": "bellmax.core.errors",
    "DivergenceError": "bellmax.core.errors",
    "InvalidMDPError": "bellmax.core.errors",
    "UnknownNameError": "bellmax.core.errors",
    "unknown_name": "bellmax.core.errors",
    "summarize": "bellmax.core.display",
    "summary_repr": "bellmax.core.display",
    "atomic_open": "bellmax.core.io",
    "SparseTransitions": "bellmax.core.mdp",
    "TabularMDP": "bellmax.core.mdp",
    "Advantages": "bellmax.core.returns",
    "discounted_returns": "bellmax.core.returns",
    "gae": "bellmax.core.returns",
    "lambda_returns": "bellmax.core.returns",
    "MAX_PLUS": "bellmax.core.semiring",
    "MIN_PLUS": "bellmax.core.semiring",
    "SUM_PRODUCT": "bellmax.core.semiring",
    "Backup": "bellmax.core.semiring",
    "MDPArrays": "bellmax.core.semiring",
    "Semiring": "bellmax.core.semiring",
    "bellman_backup": "bellmax.core.semiring",
    "log_sum_exp": "bellmax.core.semiring",
    "q_values": "bellmax.core.semiring",
    "Trajectory": "bellmax.core.types",
    "Transition": "bellmax.core.types",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

__all__ = [
    "MAX_PLUS",
    "MIN_PLUS",
    "SUM_PRODUCT",
    "Advantages",
    "Backup",
    "BellmaxError",
    "DivergenceError",
    "InvalidMDPError",
    "MDPArrays",
    "Semiring",
    "SparseTransitions",
    "TabularMDP",
    "Trajectory",
    "Transition",
    "UnknownNameError",
    "atomic_open",
    "bellman_backup",
    "discounted_returns",
    "gae",
    "lambda_returns",
    "log_sum_exp",
    "q_values",
    "summarize",
    "summary_repr",
    "unknown_name",
]
