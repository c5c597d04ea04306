"""Shared types and math. Imports nothing else from bellmax."""

from bellmax.core.errors import (
    BellmaxError,
    DivergenceError,
    InvalidMDPError,
    UnknownNameError,
    unknown_name,
)
from bellmax.core.io import atomic_open
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.core.returns import Advantages, discounted_returns, gae, lambda_returns
from bellmax.core.semiring import (
    MAX_PLUS,
    MIN_PLUS,
    SUM_PRODUCT,
    Backup,
    MDPArrays,
    Semiring,
    bellman_backup,
    log_sum_exp,
    q_values,
)
from bellmax.core.types import Trajectory, Transition

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
    "unknown_name",
]
