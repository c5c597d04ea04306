"""Pendulum-v1 physics and API (parity with Gymnasium lives in test_gymnasium.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.pendulum import PendulumParams, angle_normalize, pendulum_cost, pendulum_step


def test_step_by_hand():
    p = PendulumParams()
    s = jnp.array([0.5, 0.1])
    got = pendulum_step(s, jnp.asarray(5.0), p)  # torque clipped to 2
    thdot = 0.1 + (3 * 10 / 2 * np.sin(0.5) + 3.0 * 2.0) * 0.05
    np.testing.assert_allclose(got, [0.5 + thdot * 0.05, thdot], rtol=1e-6)
    cost = pendulum_cost(s, jnp.asarray(5.0), p)
    assert float(cost) == pytest.approx(0.25 + 0.1 * 0.01 + 0.001 * 4, rel=1e-6)


def test_speed_clip_and_angle_normalize():
    p = PendulumParams()
    got = pendulum_step(jnp.array([np.pi / 2, 7.99]), jnp.asarray(2.0), p)
    assert float(got[1]) == pytest.approx(8.0)
    np.testing.assert_allclose(
        angle_normalize(jnp.array([3 * np.pi, -np.pi / 2])), [-np.pi, -np.pi / 2], atol=1e-6
    )


def test_episode_truncates_at_200_and_never_terminates():
    env, params = bellmax.make("Pendulum-v1")
    _, state = env.reset(jax.random.PRNGKey(0), params)

    def body(s, k):
        _, s2, r, term, trunc, _ = env.step(k, s, jnp.zeros(1), params)
        return s2, (term, trunc, r)

    _, (term, trunc, r) = jax.lax.scan(body, state, jax.random.split(jax.random.PRNGKey(1), 200))
    assert not np.any(np.asarray(term))
    assert np.flatnonzero(np.asarray(trunc)).tolist() == [199]
    assert np.all(np.asarray(r) <= 0) and np.all(np.asarray(r) >= -16.3)
