"""Pure-JAX environments in the gymnax API, wrappers and the registry.

`bellmax.envs.gymnasium` (the Gymnasium bridge) and `bellmax.envs.gymnax` (the gymnax
bridge) are not imported here: importing bellmax never imports gymnasium or gymnax.
`bellmax.envs.to_gymnax` and `bellmax.envs.from_gymnax` load the gymnax bridge on first
use; they are left out of `__all__` so that `from bellmax.envs import *` works without gymnax.

Every environment checks its concrete inputs at `reset`/`step` (outside `jit`, at no cost
under it); `checked(env)` also checks traced inputs and the outputs (`bellmax.envs.checker`).
"""

from bellmax.envs import spaces
from bellmax.envs.checker import CheckedEnv, checked
from bellmax.envs.environment import Environment, EnvParams, EnvState, Wrapper
from bellmax.envs.registry import (
    EnvSpec,
    ResolvedEnv,
    is_registered,
    make,
    register,
    registered,
    replace_params,
    resolve,
    resolve_env,
    spec,
)
from bellmax.envs.vector import (
    HostCallbackVectorEnv,
    JaxVectorEnv,
    VecState,
    VecStep,
    VectorEnv,
    make_vector_env,
)
from bellmax.envs.wrappers import AutoReset, EpisodeStatistics, TimeLimit

__all__ = [
    "AutoReset",
    "CheckedEnv",
    "EnvParams",
    "EnvSpec",
    "EnvState",
    "Environment",
    "EpisodeStatistics",
    "HostCallbackVectorEnv",
    "JaxVectorEnv",
    "ResolvedEnv",
    "TimeLimit",
    "VecState",
    "VecStep",
    "VectorEnv",
    "Wrapper",
    "checked",
    "is_registered",
    "make",
    "make_vector_env",
    "register",
    "registered",
    "replace_params",
    "resolve",
    "resolve_env",
    "spaces",
    "spec",
]

_GYMNAX_BRIDGE = ("to_gymnax", "from_gymnax")


def __getattr__(name: str):
    """`to_gymnax`/`from_gymnax`, imported from the gymnax bridge on first use (PEP 562), so
    that importing `bellmax.envs` does not import gymnax."""
    if name in _GYMNAX_BRIDGE:
        from bellmax.envs import gymnax as gymnax_bridge

        return getattr(gymnax_bridge, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
