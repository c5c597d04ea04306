"""bellmax: reinforcement learning and optimal control on JAX.

From a ten-armed bandit to model predictive control of a real cart-pole, around one idea:
the Bellman backup, written once.

    policy = bellmax.load_policy("runs/ppo")     # a `bellmax train` run directory
    action = policy.predict(obs)                 # NumPy observation(s) in, action(s) out
"""

from bellmax.core.compile_cache import enable_compile_cache
from bellmax.core.lazy import lazy_exports

__version__ = "0.1.0"

# Compiled programs persist between runs in the user's cache directory, unless the user chose
# a JAX cache directory or set BELLMAX_COMPILE_CACHE=0 (bellmax.core.compile_cache).
enable_compile_cache()

# Every name loads on first use (`bellmax.core.lazy`): `import bellmax` does not import JAX.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "InvalidMDPError": "bellmax.core.errors",
        "TabularMDP": "bellmax.core.mdp",
        "Trajectory": "bellmax.core.types",
        "Transition": "bellmax.core.types",
        "make": "bellmax.envs.registry",
        "registered": "bellmax.envs.registry",
        "load_policy": "bellmax.policy",
        "Policy": "bellmax.policy",
    },
)


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
