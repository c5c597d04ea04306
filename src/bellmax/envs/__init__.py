"""Pure-JAX environments in the gymnax API, wrappers and the registry.

`bellmax.envs.gymnasium` (the Gymnasium bridge) is not imported here: importing bellmax
never imports gymnasium.
"""

from bellmax.envs import spaces
from bellmax.envs.environment import Environment, EnvParams, EnvState, Wrapper
from bellmax.envs.registry import (
    EnvSpec,
    is_registered,
    make,
    register,
    registered,
    replace_params,
    resolve,
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
    "EnvParams",
    "EnvSpec",
    "EnvState",
    "Environment",
    "EpisodeStatistics",
    "HostCallbackVectorEnv",
    "JaxVectorEnv",
    "TimeLimit",
    "VecState",
    "VecStep",
    "VectorEnv",
    "Wrapper",
    "is_registered",
    "make",
    "make_vector_env",
    "register",
    "registered",
    "replace_params",
    "resolve",
    "spaces",
    "spec",
]
