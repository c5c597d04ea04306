"""The extended Kalman filter by hand (a linear-Gaussian system, where it is Kalman's filter),
and the particle filter against it on the pendulum observed only through a noisy angle,
with certainty-equivalent MPC on each filter's estimate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.control import cartpole_balance, make_mpc, pendulum_swingup
from bellmax.pomdp import GaussianBelief, extended_kalman_step, filtered_mpc


def test_ekf_is_the_kalman_filter_on_a_linear_system():
    # x' = A x + B u, y = C x: by hand, the scalar-observation Kalman step
    A = jnp.array([[1.0, 0.1], [0.0, 1.0]])
    B = jnp.array([0.0, 0.1])
    C = jnp.array([[1.0, 0.0]])
    q, r = jnp.array([0.1, 0.2]), jnp.array([0.5])
    b = GaussianBelief(mean=jnp.array([1.0, -1.0]), cov=jnp.array([[1.0, 0.2], [0.2, 2.0]]))
    u, y = jnp.array(0.3), jnp.array([0.7])
    new = extended_kalman_step(b, u, y, lambda x, u: A @ x + B * u, lambda x: C @ x, q, r)
    An, Cn = np.asarray(A, np.float64), np.asarray(C, np.float64)
    m = An @ np.array([1.0, -1.0]) + np.array([0.0, 0.03])
    P = An @ np.array([[1.0, 0.2], [0.2, 2.0]]) @ An.T + np.diag([0.01, 0.04])
    S = Cn @ P @ Cn.T + 0.25
    K = P @ Cn.T / S
    m_ref = m + (K * (0.7 - Cn @ m)).ravel()
    P_ref = P - K @ Cn @ P
    np.testing.assert_allclose(new.mean, m_ref, rtol=1e-5)
    np.testing.assert_allclose(new.cov, P_ref, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def pendulum_runs():
    env, params = bellmax.make("PartialPendulum-v0")
    prob = pendulum_swingup(horizon=20, wrap_angle=True)
    mpc = make_mpc(prob, horizon=20, iterations=2)
    std = tuple(np.asarray(env.obs_std(params)).tolist())
    return {
        f: filtered_mpc(
            mpc,
            prob.params,
            jnp.array([0.1, 0.0]),
            jax.random.key(0),
            200,
            observe=env.observe,
            obs_std=std,
            process_std=(0.001, 0.01),
            init_std=(0.1, 0.3),
            num_particles=200,
            filter=f,
        )
        for f in ("particle", "ekf")
    }


@pytest.mark.parametrize("filt", ["particle", "ekf"])
def test_mpc_on_the_filtered_angle_balances_the_pendulum(pendulum_runs, filt):
    # Sampled check (fixed seed): PartialPendulum-v0's sensor, (cos, sin) of the angle with
    # noise 0.02, no velocity. MPC on each filter's estimate, starting 0.1 rad off upright with
    # the velocity unknown (initial spread 0.3 rad/s), holds the pendulum within 0.3 rad of
    # upright for 200 steps (Pendulum-v1's torque can hold it only within ~0.41 rad); both
    # filters' angle errors are below the sensor noise, their velocity errors below 0.1 rad/s.
    r = pendulum_runs[filt]
    xs = np.asarray(r.states)
    assert xs.shape == (201, 2) and np.all(np.isfinite(xs))
    assert np.abs(xs[:, 0]).max() < 0.3
    rmse = np.asarray(r.rmse)
    assert rmse[0] < 0.02 and rmse[1] < 0.1
    if filt == "particle":
        assert float(r.ess.min()) >= 1.0
    else:
        assert np.all(np.isnan(np.asarray(r.ess)))


def test_unknown_filter_is_refused():
    prob = pendulum_swingup(horizon=5)
    mpc = make_mpc(prob, horizon=5, iterations=1)
    with pytest.raises(ValueError, match=r"filtered_mpc\.filter .*'particle', 'ekf'"):
        filtered_mpc(
            mpc,
            prob.params,
            jnp.zeros(2),
            jax.random.key(0),
            5,
            observe=lambda x: x,
            obs_std=(1.0, 1.0),
            process_std=(0.0, 0.0),
            init_std=(0.0, 0.0),
            filter="ukf",
        )


def test_mpc_on_the_ekf_balances_the_partial_cartpole():
    # Sampled check (fixed seed): PartialCartPole-v0's sensor ([x, theta], noise 0.02), the
    # extended Kalman filter in place of test_particles' particle filter, same closed loop:
    # the pole stays within CartPole-v1's limits for 500 steps, the measured coordinates'
    # errors are below the sensor noise and the velocities' below 0.1 and 0.15.
    env, params = bellmax.make("PartialCartPole-v0")
    prob = cartpole_balance(horizon=20)
    r = filtered_mpc(
        make_mpc(prob, horizon=20, iterations=2),
        prob.params,
        jnp.array([0.0, 0.0, 0.1, 0.0]),
        jax.random.key(0),
        500,
        observe=env.observe,
        obs_std=tuple(np.asarray(env.obs_std(params)).tolist()),
        process_std=(0.001, 0.01, 0.001, 0.01),
        init_std=(0.05, 0.1, 0.05, 0.1),
        filter="ekf",
    )
    xs = np.asarray(r.states)
    assert np.abs(xs[:, 2]).max() < 0.2095 and np.abs(xs[:, 0]).max() < 2.4
    rmse = np.asarray(r.rmse)
    assert rmse[0] < 0.02 and rmse[2] < 0.02 and rmse[1] < 0.1 and rmse[3] < 0.15
