"""Pure-JAX environments in the gymnax API, wrappers and the registry.

`bellmax.envs.gymnasium` (the Gymnasium bridge) and `bellmax.envs.gymnax` (the gymnax
bridge) are not imported here: importing bellmax never imports gymnasium or gymnax.
Every name here loads on first use (`bellmax.core.lazy`), so `import bellmax.envs` does not
import JAX. `to_gymnax` and `from_gymnax` load the gymnax bridge; they are left out of
`__all__` so that `from bellmax.envs import *` works without gymnax.

Every environment checks its concrete inputs at `reset`/`step` (outside `jit`, at no cost
under it); `checked(env)` also checks traced inputs and the outputs (`bellmax.envs.checker`).
"""

from bellmax.core.lazy import lazy_exports

_EXPORTS = {
    "spaces": "bellmax.envs.spaces",
    "CheckedEnv": "bellmax.envs.checker",
    "checked": "bellmax.envs.checker",
    "Environment": "bellmax.envs.environment",
    "EnvParams": "bellmax.envs.environment",
    "EnvState": "bellmax.envs.environment",
    "Wrapper": "bellmax.envs.environment",
    "EnvSpec": "bellmax.envs.registry",
    "ResolvedEnv": "bellmax.envs.registry",
    "is_registered": "bellmax.envs.registry",
    "make": "bellmax.envs.registry",
    "register": "bellmax.envs.registry",
    "registered": "bellmax.envs.registry",
    "replace_params": "bellmax.envs.registry",
    "resolve": "bellmax.envs.registry",
    "resolve_env": "bellmax.envs.registry",
    "spec": "bellmax.envs.registry",
    "HostCallbackVectorEnv": "bellmax.envs.vector",
    "JaxVectorEnv": "bellmax.envs.vector",
    "VecState": "bellmax.envs.vector",
    "VecStep": "bellmax.envs.vector",
    "VectorEnv": "bellmax.envs.vector",
    "make_vector_env": "bellmax.envs.vector",
    "AutoReset": "bellmax.envs.wrappers",
    "EpisodeStatistics": "bellmax.envs.wrappers",
    "TimeLimit": "bellmax.envs.wrappers",
    "to_gymnax": "bellmax.envs.gymnax",
    "from_gymnax": "bellmax.envs.gymnax",
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

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
