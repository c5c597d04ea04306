"""Deep reinforcement learning: networks, DQN, REINFORCE, actor-critic (A2C), PPO.

Each algorithm is a module with `Config`, `init`, `update`, `act`, `policy_params` and
`make_train(config, env) -> train(key)` (one jitted `lax.scan`; `jax.vmap(train)(keys)`
trains many seeds at once). `get_algorithm(name)` returns the module;
`bellmax.train.driver.train` adds chunks, checkpoints, resuming and evaluation.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from bellmax.core.errors import unknown_name

#: Algorithm name -> module path.
ALGORITHMS: dict[str, str] = {
    "dqn": "bellmax.deep.dqn",
    "reinforce": "bellmax.deep.reinforce",
    "a2c": "bellmax.deep.a2c",
    "ppo": "bellmax.deep.ppo",
}


def get_algorithm(name: str) -> ModuleType:
    """The algorithm module registered as `name` (`dqn`, `reinforce`, `a2c`, `ppo`).

    Raises:
      UnknownNameError: `name` is not one of them (the message lists them).
    """
    if name not in ALGORITHMS:
        raise unknown_name("algorithm", name, sorted(ALGORITHMS))
    return importlib.import_module(ALGORITHMS[name])


__all__ = ["ALGORITHMS", "get_algorithm"]
