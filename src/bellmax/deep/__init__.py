"""Deep reinforcement learning: networks, DQN, REINFORCE, actor-critic (A2C), PPO, SAC, TD3.

Each algorithm is a module with `Config`, `init`, `update`, `act`, `policy_params` and
`make_train(config, env) -> train(key)` (one jitted `lax.scan`; `jax.vmap(train)(keys)`
trains many seeds at once). `get_algorithm(name)` returns the module;
`bellmax.train.driver.train` adds chunks, checkpoints, resuming and evaluation.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from bellmax.core.errors import unknown_name
from bellmax.deep.distributions import Categorical, DiagGaussian, action_space_kind, clip_to_space
from bellmax.deep.evaluate import EvalResult, evaluate, evaluate_batch
from bellmax.deep.networks import MLP, ActorCritic, QNetwork, flatten_obs, obs_size
from bellmax.deep.optim import constant_schedule, linear_schedule, make_optimizer
from bellmax.deep.replay import ReplayBuffer, replay_add, replay_init, replay_sample

#: Algorithm name -> module path.
ALGORITHMS: dict[str, str] = {
    "dqn": "bellmax.deep.dqn",
    "reinforce": "bellmax.deep.reinforce",
    "a2c": "bellmax.deep.a2c",
    "ppo": "bellmax.deep.ppo",
    "sac": "bellmax.deep.sac",
    "td3": "bellmax.deep.td3",
}


def get_algorithm(name: str) -> ModuleType:
    """The algorithm module registered as `name` (`dqn`, `reinforce`, `a2c`, `ppo`, `sac`,
    `td3`).

    Raises:
      UnknownNameError: `name` is not one of them (the message lists them).
    """
    if name not in ALGORITHMS:
        raise unknown_name("algorithm", name, sorted(ALGORITHMS))
    return importlib.import_module(ALGORITHMS[name])


__all__ = [
    "ALGORITHMS",
    "MLP",
    "ActorCritic",
    "Categorical",
    "DiagGaussian",
    "EvalResult",
    "QNetwork",
    "ReplayBuffer",
    "action_space_kind",
    "clip_to_space",
    "constant_schedule",
    "evaluate",
    "evaluate_batch",
    "flatten_obs",
    "get_algorithm",
    "linear_schedule",
    "make_optimizer",
    "obs_size",
    "replay_add",
    "replay_init",
    "replay_sample",
]

# Submodules load on first use as attributes too (`bellmax.deep.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
