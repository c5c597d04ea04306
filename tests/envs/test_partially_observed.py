"""PartialCartPole-v0 and PartialPendulum-v0: the physics of the fully observed environments,
observed through `observe(x) + N(0, obs_std^2)`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.partially_observed import PartialCartPole, PartialPendulum

KEY = jax.random.key(3)


@pytest.mark.parametrize(
    "env_id, full_id, action",
    [("PartialCartPole-v0", "CartPole-v1", 1), ("PartialPendulum-v0", "Pendulum-v1", [0.7])],
)
def test_same_physics_and_rewards_as_the_fully_observed_env(env_id, full_id, action):
    env, params = bellmax.make(env_id)
    full, full_params = bellmax.make(full_id)
    _, state = env.reset(KEY, params)
    out = env.step(KEY, state, action, params)
    ref = full.step(KEY, state, action, full_params)
    np.testing.assert_array_equal(out[1].vector(), ref[1].vector())
    assert float(out[2]) == float(ref[2]) and bool(out[3]) == bool(ref[3])
    assert out[0].shape == (2,) and out[0].dtype == jnp.float32


def test_noise_free_observations_by_hand():
    env, params = bellmax.make("PartialCartPole-v0", x_obs_std=0.0, theta_obs_std=0.0)
    obs, state = env.reset(KEY, params)
    np.testing.assert_array_equal(obs, [state.x, state.theta])
    env, params = bellmax.make("PartialPendulum-v0", angle_obs_std=0.0)
    obs, state = env.reset(KEY, params)
    np.testing.assert_allclose(obs, [np.cos(state.theta), np.sin(state.theta)], rtol=1e-6)
    assert PartialCartPole.observe(jnp.array([1.0, 2.0, 3.0, 4.0])).tolist() == [1.0, 3.0]
    assert PartialPendulum.observe(jnp.array([0.0, 5.0])).tolist() == [1.0, 0.0]


def test_noise_has_the_declared_spread():
    # Sampled check (fixed seed): 4000 observations of one state; the sample mean is the
    # noise-free measurement and the sample std the params' (within 5%).
    env, params = bellmax.make("PartialCartPole-v0", x_obs_std=0.05, theta_obs_std=0.01)
    _, state = env.reset(KEY, params)
    keys = jax.random.split(KEY, 4000)
    obs = jax.vmap(lambda k: env.step_env(k, state, 1, params)[0])(keys)
    nxt = env.step_env(KEY, state, 1, params)[1]
    np.testing.assert_allclose(obs.mean(0), [nxt.x, nxt.theta], atol=3e-3)
    np.testing.assert_allclose(obs.std(0), [0.05, 0.01], rtol=0.05)
    with pytest.raises(ValueError, match=r"PartialCartPoleParams\.x_obs_std must be .*>= 0"):
        bellmax.make("PartialCartPole-v0", x_obs_std=-1.0)
