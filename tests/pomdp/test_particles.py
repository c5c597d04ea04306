"""Particle filter pieces by hand, and certainty-equivalent MPC balancing a cart-pole that is
observed only through noisy cart position and pole angle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control import cartpole_balance, make_mpc
from bellmax.pomdp.particles import (
    ParticleBelief,
    effective_sample_size,
    filtered_mpc,
    gaussian_log_likelihood,
    particle_filter_step,
    particle_mean,
    systematic_resample,
)


def test_ess_and_mean_by_hand():
    n = 8
    assert float(effective_sample_size(jnp.full(n, -jnp.log(n)))) == pytest.approx(n)
    one_hot = jnp.log(jnp.array([1.0, 0, 0, 0]) + 1e-30)
    assert float(effective_sample_size(one_hot - jax.nn.logsumexp(one_hot))) == pytest.approx(1.0)
    b = ParticleBelief(
        particles=jnp.array([[0.0], [2.0]]), log_weights=jnp.log(jnp.array([0.25, 0.75]))
    )
    assert float(particle_mean(b)[0]) == pytest.approx(1.5)


def test_systematic_resample_counts():
    # each index appears floor(N w) or ceil(N w) times (the defining property)
    w = np.random.default_rng(0).dirichlet(np.ones(10))
    n = 10
    for k in range(20):
        idx = np.asarray(systematic_resample(jax.random.key(k), jnp.log(jnp.asarray(w))))
        counts = np.bincount(idx, minlength=n)
        assert np.all(counts >= np.floor(n * w) - 1e-9) and np.all(counts <= np.ceil(n * w) + 1e-9)


def test_filter_step_is_bayes_on_fixed_particles():
    parts = jnp.array([[-1.0], [0.0], [1.0], [3.0]])
    b = ParticleBelief.from_samples(parts)
    y = jnp.array([0.5])

    def ll(y, x):
        return gaussian_log_likelihood(y, x, jnp.array([1.0]))

    new, ess = particle_filter_step(
        jax.random.key(0), b, jnp.zeros(1), y, lambda k, x, u: x, ll, 0.0
    )
    w = np.exp(-0.5 * (np.array([-1.0, 0, 1, 3]) - 0.5) ** 2)
    np.testing.assert_allclose(np.exp(new.log_weights), w / w.sum(), rtol=1e-5)
    assert float(ess) == pytest.approx(1 / np.sum((w / w.sum()) ** 2), rel=1e-5)
    # with resampling forced, the weights are equal again and the particles are old ones
    res, _ = particle_filter_step(jax.random.key(0), b, jnp.zeros(1), y, lambda k, x, u: x, ll, 1.0)
    np.testing.assert_allclose(np.exp(res.log_weights), 0.25)
    assert set(np.asarray(res.particles)[:, 0].tolist()) <= {-1.0, 0.0, 1.0, 3.0}


def test_mpc_on_the_filter_balances_500_steps():
    # Sampled check: only x and theta are measured (noise 0.02); the velocities are
    # inferred by the filter. MPC on the filter's mean keeps the pole within CartPole-v1's
    # limits (|theta| < 0.2095 rad, |x| < 2.4) for 500 steps, and the filter's position error
    # is below the sensor noise while its velocity error stays small.
    prob = cartpole_balance(horizon=20)
    mpc = make_mpc(prob, horizon=20, iterations=2)
    r = filtered_mpc(
        mpc,
        prob.params,
        jnp.array([0.0, 0.0, 0.1, 0.0]),
        jax.random.key(0),
        500,
        observe=lambda x: x[jnp.array([0, 2])],
        obs_std=(0.02, 0.02),
        process_std=(0.001, 0.01, 0.001, 0.01),
        init_std=(0.05, 0.1, 0.05, 0.1),
        num_particles=200,
    )
    xs = np.asarray(r.states)
    assert xs.shape == (501, 4) and np.all(np.isfinite(xs))
    assert np.abs(xs[:, 2]).max() < 0.2095 and np.abs(xs[:, 0]).max() < 2.4
    rmse = np.asarray(r.rmse)
    assert rmse[0] < 0.02 and rmse[2] < 0.02  # better than one raw measurement
    assert rmse[1] < 0.1 and rmse[3] < 0.15  # velocities, never measured
    assert float(r.ess.min()) >= 1.0


def test_filtered_mpc_checks():
    prob = cartpole_balance(horizon=5)
    mpc = make_mpc(prob, horizon=5, iterations=1)
    with pytest.raises(ValueError, match=r"filtered_mpc\.num_particles must be an int >= 2"):
        filtered_mpc(
            mpc,
            prob.params,
            jnp.zeros(4),
            jax.random.key(0),
            5,
            observe=lambda x: x,
            obs_std=(1.0,) * 4,
            process_std=(0.0,) * 4,
            init_std=(0.0,) * 4,
            num_particles=1,
        )
