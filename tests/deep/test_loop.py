"""The shared training loop: the scan over updates, the environment checks, host refusal."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep import ppo
from bellmax.deep.loop import is_vmapped, scan_train, vector_env
from bellmax.envs.vector import make_vector_env

CONFIG = dataclasses.replace(ppo.Config(), total_timesteps=4 * 8 * 32)  # 4 updates


def _counting(venv):
    def init(key, config, v):
        assert v is venv
        return {"n": jnp.zeros((), jnp.int32), "key": jax.random.key_data(key)}

    def update(state, config, v):
        n = state["n"] + 1
        return {**state, "n": n}, n * 10

    return init, update


def test_scan_train_runs_num_updates_and_vmaps_over_seeds():
    venv = vector_env(CONFIG, "CartPole-v1")
    assert CONFIG.num_updates == 4
    train = scan_train(CONFIG, venv, *_counting(venv))
    assert train.venv is venv
    state, metrics = jax.jit(train)(jax.random.key(0))
    assert int(state["n"]) == 4
    np.testing.assert_array_equal(metrics, [10, 20, 30, 40])
    states, _ = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 3))
    np.testing.assert_array_equal(states["n"], [4, 4, 4])
    assert not np.array_equal(states["key"][0], states["key"][1])  # one key per seed


def test_vector_env_accepts_a_vector_env_and_checks_it():
    venv = make_vector_env("CartPole-v1", num_envs=CONFIG.num_envs)
    assert vector_env(CONFIG, venv) is venv
    with pytest.raises(ValueError, match="num_envs"):
        vector_env(CONFIG, make_vector_env("CartPole-v1", num_envs=3))
    with pytest.raises(ValueError, match="learning_rate"):
        vector_env(dataclasses.replace(CONFIG, learning_rate=-1.0), "CartPole-v1")


def test_host_environments_refuse_vmap():
    venv = vector_env(CONFIG, "gymnasium:CartPole-v1")
    train = scan_train(CONFIG, venv, *_counting(venv))
    with pytest.raises(ValueError, match="cannot be vmapped"):
        jax.vmap(train)(jax.random.split(jax.random.key(0), 2))
    seen = []
    jax.vmap(lambda x: seen.append(is_vmapped(x)) or x)(jnp.zeros(2))
    assert seen == [True] and not is_vmapped(jnp.zeros(2))
