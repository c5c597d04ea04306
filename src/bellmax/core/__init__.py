"""Shared types and math. Imports nothing else from bellmax."""

from bellmax.core.errors import (
    BellmaxError,
    DivergenceError,
    InvalidMDPError,
    UnknownNameError,
    unknown_name,
)
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.core.types import Trajectory, Transition

__all__ = [
    "BellmaxError",
    "DivergenceError",
    "InvalidMDPError",
    "SparseTransitions",
    "TabularMDP",
    "Trajectory",
    "Transition",
    "UnknownNameError",
    "unknown_name",
]
