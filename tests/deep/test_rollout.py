"""The shared on-policy rollout: shapes, what each field holds, episode bookkeeping."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.deep import ppo
from bellmax.deep.networks import flatten_obs
from bellmax.deep.rollout import collect_rollout
from bellmax.envs.vector import make_vector_env

CONFIG = dataclasses.replace(ppo.Config(), num_envs=4, num_steps=60, minibatch_size=60)


def test_rollout_fields_match_the_policy_and_the_environment():
    venv = make_vector_env("CartPole-v1", num_envs=CONFIG.num_envs)
    net = ppo.network(CONFIG, venv)
    state = ppo.init(jax.random.key(0), CONFIG, venv)
    new_state, ro = jax.jit(lambda s: collect_rollout(s, CONFIG, venv, net))(state)
    t, n = CONFIG.num_steps, CONFIG.num_envs
    assert ro.obs.shape == (t, n, 4) and ro.action.shape == (t, n) and ro.reward.shape == (t, n)
    # log-probabilities and values are the network's, for the actions taken
    dist, value = jax.vmap(
        lambda o: net.apply(state.params, flatten_obs(o, venv.observation_space))
    )(ro.obs)
    np.testing.assert_allclose(ro.log_prob, dist.log_prob(ro.action), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ro.value, value, rtol=1e-5, atol=1e-6)
    # CartPole pays 1 per step; random-ish play ends episodes (~22 steps) inside 60 steps
    np.testing.assert_array_equal(ro.reward, 1.0)
    done = np.asarray(ro.terminated | ro.truncated)
    assert done.any()
    ep = np.asarray(ro.episode_return)
    assert np.all(np.isnan(ep[~done])) and np.all(ep[done] >= 1.0)
    # where nothing ended, final_obs is just the next observation
    nxt = np.asarray(ro.obs[1:])
    cont = ~done[:-1]
    np.testing.assert_allclose(np.asarray(ro.final_obs[:-1])[cont], nxt[cont])
    # the state moves on: new observations and a new key, same parameters
    last = ~done[-1]
    np.testing.assert_allclose(np.asarray(new_state.obs)[last], np.asarray(ro.final_obs[-1])[last])
    assert not np.array_equal(jax.random.key_data(new_state.key), jax.random.key_data(state.key))
    assert jax.tree.all(jax.tree.map(jnp.array_equal, new_state.params, state.params))
