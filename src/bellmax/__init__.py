"""bellmax: reinforcement learning and optimal control on JAX.

From a ten-armed bandit to model predictive control of a real cart-pole, around one idea:
the Bellman backup, written once.

    policy = bellmax.load_policy("runs/ppo")     # a `bellmax train` run directory
    action = policy.predict(obs)                 # NumPy observation(s) in, action(s) out
"""

from bellmax.core import InvalidMDPError, TabularMDP, Trajectory, Transition
from bellmax.core.compile_cache import enable_compile_cache
from bellmax.envs import make, registered

__version__ = "0.1.0"

# Compiled programs persist between runs in the user's cache directory, unless the user chose
# a JAX cache directory or set BELLMAX_COMPILE_CACHE=0 (bellmax.core.compile_cache).
enable_compile_cache()


def __getattr__(name: str):
    # `load_policy` and `Policy` load on first use: they import the deep-RL networks, and
    # `import bellmax` stays light.
    if name in ("load_policy", "Policy"):
        from bellmax import policy

        return getattr(policy, name)
    raise AttributeError(f"module 'bellmax' has no attribute {name!r}")


__all__ = [
    "InvalidMDPError",
    "Policy",
    "TabularMDP",
    "Trajectory",
    "Transition",
    "__version__",
    "load_policy",
    "make",
    "registered",
]
