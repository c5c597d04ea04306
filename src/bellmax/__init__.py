"""bellmax: reinforcement learning and optimal control on JAX.

From a ten-armed bandit to model predictive control of a real cart-pole, around one idea:
the Bellman backup, written once.
"""

from bellmax.core import InvalidMDPError, TabularMDP, Trajectory, Transition
from bellmax.envs import make, registered

__version__ = "0.1.0"

__all__ = [
    "InvalidMDPError",
    "TabularMDP",
    "Trajectory",
    "Transition",
    "__version__",
    "make",
    "registered",
]
