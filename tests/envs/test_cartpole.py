"""CartPole-v1 and CartPoleSwingUp-v0 physics and API (parity with Gymnasium lives in
test_gymnasium.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.cartpole import (
    CartPoleParams,
    cartpole_derivatives,
    cartpole_euler_step,
)


def test_euler_step_matches_hand_computation():
    # theta = 0, at rest, push right: thetaacc = -F/M / (l (4/3 - m/M)), xacc = F/M - ml*thetaacc/M
    p = CartPoleParams()
    s = jnp.zeros(4)
    d = cartpole_derivatives(s, jnp.asarray(10.0), p)
    M, m, half = 1.1, 0.1, 0.5
    thetaacc = -(10.0 / M) / (half * (4 / 3 - m / M))
    xacc = 10.0 / M - m * half * thetaacc / M
    np.testing.assert_allclose(d, [0.0, xacc, 0.0, thetaacc], rtol=1e-6)
    np.testing.assert_allclose(cartpole_euler_step(s, 10.0, p), 0.02 * d, rtol=1e-6)


def test_derived_params_follow_fields():
    p = CartPoleParams().replace(masscart=2.0, masspole=0.5, length=1.0)
    assert p.total_mass == pytest.approx(2.5)
    assert p.polemass_length == pytest.approx(0.5)


def test_cartpole_terminates_and_truncates():
    env, params = bellmax.make("CartPole-v1")
    _, state = env.reset(jax.random.PRNGKey(0), params)

    # pushing right forever tips the pole left past 12 degrees well before 500 steps
    def body(s, _):
        _, s2, r, term, trunc, _ = env.step(jax.random.PRNGKey(0), s, 1, params)
        return s2, (term, trunc, r)

    _, (term, trunc, r) = jax.lax.scan(body, state, None, length=40)
    first = int(np.argmax(np.asarray(term)))
    assert 5 < first < 40 and not np.any(np.asarray(trunc))
    assert np.all(np.asarray(r) == 1.0)
    # a short time limit truncates
    small = params.replace(max_steps_in_episode=3)
    s = state
    for _ in range(3):
        _, s, _, _, trunc, _ = env.step(jax.random.PRNGKey(0), s, 0, small)
    assert bool(trunc) and int(s.time) == 3


def test_swingup_starts_hanging_and_reward_in_unit_interval():
    env, params = bellmax.make("CartPoleSwingUp-v0")
    obs, state = env.reset(jax.random.PRNGKey(3), params)
    assert abs(float(state.theta) - np.pi) <= params.init_noise + 1e-6
    assert obs.shape == (5,) and float(obs[2]) < -0.99  # cos(theta) ~ -1
    keys = jax.random.split(jax.random.PRNGKey(4), 200)
    acts = jax.random.uniform(jax.random.PRNGKey(5), (200, 1), minval=-3, maxval=3)

    def body(s, inp):
        k, a = inp
        _, s2, r, term, _, _ = env.step(k, s, a, params)
        return s2, (r, term, s2.theta)

    _, (r, term, theta) = jax.lax.scan(body, state, (keys, acts))
    r = np.asarray(r)
    assert np.all((r >= 0) & (r <= 1))
    # no angle termination: the pole swings far from upright without ending the episode
    assert not np.any(np.asarray(term)[:50])
    upright_reward = env.step(
        jax.random.PRNGKey(0),
        state.replace(
            theta=jnp.asarray(0.0),
            x=jnp.asarray(0.0),
            x_dot=jnp.asarray(0.0),
            theta_dot=jnp.asarray(0.0),
        ),
        jnp.zeros(1),
        params,
    )[2]
    assert float(upright_reward) == pytest.approx(1.0, abs=1e-3)


def test_swingup_action_is_clipped_force():
    env, params = bellmax.make("CartPoleSwingUp-v0")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    a = env.step(jax.random.PRNGKey(0), state, jnp.array([5.0]), params)[1]
    b = env.step(jax.random.PRNGKey(0), state, jnp.array([1.0]), params)[1]
    np.testing.assert_allclose(a.vector(), b.vector())


def test_params_are_vmappable():
    env, params = bellmax.make("CartPole-v1")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    masses = jnp.array([0.5, 1.0, 2.0])
    batch = jax.vmap(lambda m: params.replace(masscart=m))(masses)
    nxt = jax.vmap(lambda p: env.step(jax.random.PRNGKey(0), state, 1, p)[1].x_dot)(batch)
    assert nxt[0] > nxt[1] > nxt[2]  # a lighter cart accelerates more
