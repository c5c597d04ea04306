"""AutoReset, TimeLimit and EpisodeStatistics, composed the way training uses them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs import AutoReset, EpisodeStatistics, TimeLimit


@pytest.fixture(scope="module")
def cartpole():
    return bellmax.make("CartPole-v1")


def rollout(env, params, action, n, seed=0):
    obs, state = env.reset(jax.random.PRNGKey(seed), params)

    def body(s, k):
        obs, s2, r, term, trunc, info = env.step(k, s, action, params)
        return s2, (obs, r, term, trunc, info)

    return jax.lax.scan(body, state, jax.random.split(jax.random.PRNGKey(seed + 1), n))


def test_autoreset_restarts_and_keeps_final_observation(cartpole):
    env, params = cartpole
    wrapped = AutoReset(env)
    assert wrapped.auto_resets and not env.auto_resets
    _, (obs, _, term, _, info) = rollout(wrapped, params, 1, 60)
    ends = np.flatnonzero(np.asarray(term))
    assert len(ends) >= 2  # always pushing right falls over every ~10 steps
    t = ends[0]
    final = np.asarray(info["final_observation"][t])
    # the final observation is past the threshold; the returned one is a fresh start
    assert abs(final[2]) > params.theta_threshold_radians
    assert np.all(np.abs(np.asarray(obs[t])) <= 0.05)


def test_raw_env_does_not_reset(cartpole):
    env, params = cartpole
    _, (obs, _, term, _, _) = rollout(env, params, 1, 30)
    t = int(np.argmax(np.asarray(term)))
    assert abs(float(obs[t + 1][2])) > abs(float(obs[t][2]))  # keeps falling


def test_time_limit_overrides_env_limit(cartpole):
    env, params = cartpole
    limited = TimeLimit(env, 7)
    _, (_, _, _, trunc, _) = rollout(limited, params, 0, 7)
    assert np.flatnonzero(np.asarray(trunc)).tolist() == [6]
    with pytest.raises(ValueError, match="max_steps >= 1"):
        TimeLimit(env, 0)


def test_episode_statistics_over_autoreset(cartpole):
    env, params = cartpole
    wrapped = EpisodeStatistics(AutoReset(env))
    _, (_, r, term, trunc, info) = rollout(wrapped, params, 1, 80)
    done = np.asarray(term) | np.asarray(trunc)
    ends = np.flatnonzero(done)
    lengths = np.diff(np.concatenate([[-1], ends]))
    np.testing.assert_array_equal(np.asarray(info["episode_length"])[ends], lengths)
    np.testing.assert_allclose(
        np.asarray(info["episode_return"])[ends], lengths
    )  # reward 1 per step
    np.testing.assert_array_equal(np.asarray(info["returned_episode"]), done)


def test_wrappers_delegate_spaces_and_name(cartpole):
    env, params = cartpole
    w = EpisodeStatistics(AutoReset(TimeLimit(env, 10)))
    assert w.name == "CartPole-v1" and w.unwrapped is env
    assert w.action_space(params).n == 2 and w.observation_space(params).shape == (4,)
    assert w.num_actions == 2
    assert "AutoReset" in repr(w)


def test_vmapped_wrapped_env():
    env, params = bellmax.make("CartPole-v1")
    w = AutoReset(env)
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    obs, state = jax.vmap(w.reset, in_axes=(0, None))(keys, params)
    obs2, *_ = jax.vmap(w.step, in_axes=(0, 0, 0, None))(
        keys, state, jnp.ones(8, jnp.int32), params
    )
    assert obs2.shape == (8, 4)


def test_a_wrapper_refuses_what_is_not_an_environment():
    # `EpisodeStatistics(AutoReset(bellmax.make(ID)))` (the pair not unpacked) was built and
    # failed at its first reset with "'tuple' object has no attribute 'name'"
    with pytest.raises(TypeError, match=r"unpack the pair bellmax.make returns.*AutoReset\(env\)"):
        AutoReset(bellmax.make("CartPole-v1"))
    with pytest.raises(TypeError, match="TimeLimit wraps a bellmax Environment, got str"):
        TimeLimit("CartPole-v1", 10)
