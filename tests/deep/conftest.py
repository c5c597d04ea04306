"""Shared fixtures for the deep RL tests."""

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import pytest

from bellmax.deep.evaluate import evaluate
from bellmax.envs import spaces


@dataclasses.dataclass
class SeedRuns:
    """Seeds trained in one vmapped program, each evaluated."""

    metrics: Any
    """The algorithm's Metrics, stacked [seeds, num_updates]."""
    eval_returns: list[float]
    """Mean deterministic return of each seed's final policy."""


def _train_seeds(algo, config, env_id: str, seeds, *, episodes: int = 16, label: str = ""):
    train = algo.make_train(config, env_id)
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    t0, c0 = time.perf_counter(), time.process_time()
    compiled = jax.jit(jax.vmap(train)).lower(keys).compile()
    t1, c1 = time.perf_counter(), time.process_time()
    states, metrics = jax.block_until_ready(compiled(keys))
    t2 = time.perf_counter()
    act = functools.partial(algo.act, config=config, venv=train.venv)
    returns = []
    for i, s in enumerate(seeds):
        params = jax.tree.map(lambda x, i=i: x[i], algo.policy_params(states))
        res = evaluate(act, params, env_id, jax.random.key(100 + s), episodes=episodes)
        returns.append(float(res.mean_return))
    print(
        f"\n{label or algo.__name__} {env_id}: eval {returns} after {config.total_timesteps} "
        f"steps x {len(seeds)} seeds; compile {t1 - t0:.1f}s (cpu {c1 - c0:.1f}s), "
        f"train {t2 - t1:.1f}s"
    )
    return SeedRuns(metrics, returns)


@pytest.fixture(scope="session")
def train_seeds():
    """`train_seeds(algo, config, env_id, seeds, *, episodes=16, label="") -> SeedRuns`:
    train the seeds in one vmapped program, then evaluate each seed's deterministic policy."""
    return _train_seeds


class _MultiDiscreteEnv:
    """A gymnax-API stub with a MultiDiscrete action space (no deep algorithm supports it)."""

    name = "MultiDiscreteStub"
    default_params = None

    def reset_env(self, key, params):
        return jnp.zeros(2), jnp.zeros(())

    def step_env(self, key, state, action, params):
        return jnp.zeros(2), state, 0.0, False, {}

    def action_space(self, params):
        return spaces.MultiDiscrete([2, 3])

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,))


@pytest.fixture
def multidiscrete_env():
    """An environment whose action space the algorithms must refuse with a clear error."""
    return _MultiDiscreteEnv()
