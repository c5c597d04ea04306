"""The base Environment: default params, jit, truncation, and abstract methods."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from bellmax.envs import Environment, EnvParams, EnvState
from bellmax.envs.spaces import Discrete


@struct.dataclass
class CounterState(EnvState):
    count: jax.Array
    time: jax.Array


class Counter(Environment):
    """Counts up by the action; terminates at 3."""

    @property
    def default_params(self):
        return EnvParams(max_steps_in_episode=5)

    def reset_env(self, key, params):
        s = CounterState(count=jnp.asarray(0), time=jnp.asarray(0))
        return s.count, s

    def step_env(self, key, state, action, params):
        s = CounterState(count=state.count + action, time=state.time + 1)
        return s.count, s, jnp.asarray(1.0), s.count >= 3, {}

    def action_space(self, params=None):
        return Discrete(2)


def test_default_params_used_when_none_and_truncation():
    env = Counter()
    obs, s = env.reset(jax.random.PRNGKey(0))
    for _ in range(5):
        obs, s, r, term, trunc, _ = env.step(jax.random.PRNGKey(0), s, 0)
    assert bool(trunc) and not bool(term) and int(s.time) == 5
    _, s = env.reset(jax.random.PRNGKey(0))
    for _ in range(3):
        obs, s, r, term, trunc, _ = env.step(jax.random.PRNGKey(0), s, 1)
    assert bool(term) and not bool(trunc)
    assert env.num_actions == 2 and env.name == "Counter" and env.unwrapped is env
    # a seed where a key belongs is named (JAX's own error is "invalid PRNG key data")
    with pytest.raises(TypeError, match=r"Counter.reset: key must be a JAX PRNG key, got 0"):
        env.reset(0)
    with pytest.raises(TypeError, match=r"jax.random.key\(7\)"):
        env.step(7, s, 0)


def test_abstract_methods_raise():
    env = Environment()
    assert env.default_params == EnvParams()  # params_type() unless a subclass overrides it
    with pytest.raises(NotImplementedError):
        env.reset_env(jax.random.PRNGKey(0), EnvParams())
    with pytest.raises(NotImplementedError):
        env.observation_space()


class WithArray(Counter):
    def __init__(self, table):
        self.table = table


def test_equal_construction_means_equal_and_shared_compilation():
    assert Counter() == Counter() and hash(Counter()) == hash(Counter())
    a, b = WithArray(np.arange(3)), WithArray(np.arange(3))
    assert a == b and hash(a) == hash(b)
    assert WithArray(np.arange(4)) != a
    assert WithArray([1, {"x": 2}]) == WithArray([1, {"x": 2}])
    # unhashable, non-array arguments fall back to identity
    obj = {1, 2}
    assert WithArray(obj) == WithArray(obj) and WithArray(obj) != WithArray({1, 2, 3})
