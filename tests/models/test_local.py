"""Local linear-Gaussian dynamics and quadratic costs (bellmax.models.local)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.models.local import (
    LocalCost,
    expand_cost,
    fit_gmm,
    fit_local_dynamics,
    fit_quadratic_cost,
    gmm_prior,
    joint_points,
    psd_project,
)


def _linear_rollouts(A, B, c, X0, U, noise=0.0, key=None):
    xs = [X0]
    for t in range(U.shape[1]):
        x = xs[-1] @ A[t].T + U[:, t] @ B[t].T + c[t]
        if noise:
            x = x + noise * jax.random.normal(jax.random.fold_in(key, t), x.shape)
        xs.append(x)
    return jnp.stack(xs, axis=1)


def test_recovers_time_varying_linear_system_exactly():
    # Noise-free samples of x' = A_t x + B_t u + c_t: the per-step fit is exact (1e-3).
    n, m, T, M = 3, 2, 6, 10
    k = jax.random.split(jax.random.key(0), 5)
    A = 0.5 * jax.random.normal(k[0], (T, n, n))
    B = jax.random.normal(k[1], (T, n, m))
    c = jax.random.normal(k[2], (T, n))
    X0 = jax.random.normal(k[3], (M, n))
    U = jax.random.normal(k[4], (M, T, m))
    X = _linear_rollouts(A, B, c, X0, U)
    fit = fit_local_dynamics(X, U)
    assert fit.F.shape == (T, n, n + m)
    np.testing.assert_allclose(fit.A, A, atol=1e-3)
    np.testing.assert_allclose(fit.B, B, atol=1e-3)
    np.testing.assert_allclose(fit.f, c, atol=1e-3)
    assert float(jnp.max(jnp.abs(fit.cov))) < 1e-3


def test_prior_helps_with_few_samples():
    # 3 rollouts per step cannot determine F (n + m + 1 = 4 unknowns per row) on their own;
    # a mixture prior over all steps' data (the system is time-invariant) can.
    n, m, T, M = 2, 1, 30, 3
    A = jnp.array([[1.0, 0.1], [-0.2, 0.95]])
    B = jnp.array([[0.0], [0.1]])
    k = jax.random.split(jax.random.key(1), 3)
    X0 = jax.random.normal(k[0], (M, n))
    U = jax.random.normal(k[1], (M, T, m))
    X = _linear_rollouts(
        jnp.broadcast_to(A, (T, n, n)),
        jnp.broadcast_to(B, (T, n, m)),
        jnp.zeros((T, n)),
        X0,
        U,
        noise=1e-3,
        key=k[2],
    )
    F_true = jnp.concatenate([A, B], axis=1)
    plain = fit_local_dynamics(X, U)
    Z = joint_points(X, U)
    gmm = fit_gmm(jax.random.key(0), Z.reshape(-1, Z.shape[-1]), num_clusters=1)
    with_prior = fit_local_dynamics(X, U, prior=gmm_prior(gmm, Z))
    err_plain = float(jnp.mean(jnp.abs(plain.F - F_true)))
    err_prior = float(jnp.mean(jnp.abs(with_prior.F - F_true)))
    assert err_prior < 0.05
    assert err_plain > 5 * err_prior


def test_gmm_finds_two_separated_clusters():
    k1, k2 = jax.random.split(jax.random.key(2))
    a = jax.random.normal(k1, (200, 2)) * 0.1 + jnp.array([5.0, 0.0])
    b = jax.random.normal(k2, (100, 2)) * 0.1 + jnp.array([-5.0, 1.0])
    gmm = fit_gmm(jax.random.key(3), jnp.concatenate([a, b]), num_clusters=2, iterations=20)
    order = jnp.argsort(gmm.means[:, 0])
    np.testing.assert_allclose(gmm.means[order], [[-5.0, 1.0], [5.0, 0.0]], atol=0.05)
    np.testing.assert_allclose(gmm.weights[order], [1 / 3, 2 / 3], atol=0.01)
    # Zero weights mask points out: only the first cluster's points remain.
    w = jnp.concatenate([jnp.ones(200), jnp.zeros(100)])
    one = fit_gmm(jax.random.key(3), jnp.concatenate([a, b]), weights=w, num_clusters=1)
    np.testing.assert_allclose(one.means[0], [5.0, 0.0], atol=0.05)


def test_psd_project_by_hand():
    C = jnp.array([[1.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(psd_project(C), [[1.0, 0.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(psd_project(C, 0.5), [[1.0, 0.0], [0.0, 0.5]], atol=1e-6)


def _quadratic(x, u, t):
    z = jnp.concatenate([x, u])
    C = jnp.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.1], [0.0, 0.1, 0.3]])
    return 0.5 * z @ C @ z + jnp.array([1.0, -2.0, 0.5]) @ z + 3.0 + 0.0 * t


@pytest.mark.parametrize("at_mean", [True, False])
def test_expand_cost_is_exact_for_a_quadratic(at_mean):
    X = jax.random.normal(jax.random.key(4), (4, 6, 2))
    U = jax.random.normal(jax.random.key(5), (4, 5, 1))
    cost = expand_cost(_quadratic, X, U, at_mean=at_mean)
    z = jnp.concatenate([X[:, :-1], U], axis=2)
    want = jax.vmap(jax.vmap(_quadratic))(X[:, :-1], U, jnp.broadcast_to(jnp.arange(5), (4, 5)))
    got = jax.vmap(cost)(z)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_fit_quadratic_cost_recovers_a_sampled_quadratic():
    M, T = 5, 20
    X = jax.random.normal(jax.random.key(6), (M, T + 1, 2))
    U = jax.random.normal(jax.random.key(7), (M, T, 1))
    t = jnp.broadcast_to(jnp.arange(T), (M, T))
    costs = jax.vmap(jax.vmap(_quadratic))(X[:, :-1], U, t)
    fit = fit_quadratic_cost(X, U, costs, ridge=1e-6, prior_weight=1e-6)
    z = jnp.concatenate([X[:, :-1], U], axis=2)
    np.testing.assert_allclose(jax.vmap(fit)(z), costs, rtol=1e-2, atol=2e-2)


def test_bad_inputs_raise():
    X = jnp.zeros((3, 5, 2))
    U = jnp.zeros((3, 5, 1))  # needs T + 1 = 6 states
    with pytest.raises(ValueError, match=r"\[M, T\+1, n\]"):
        fit_local_dynamics(X, U)
    with pytest.raises(ValueError, match="costs must be"):
        fit_quadratic_cost(jnp.zeros((3, 6, 2)), U, jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="points must be"):
        fit_gmm(jax.random.key(0), jnp.zeros(5))
    with pytest.raises(ValueError, match="num_clusters"):
        fit_gmm(jax.random.key(0), jnp.zeros((5, 2)), num_clusters=0)
    cost = LocalCost(C=jnp.eye(2)[None], c=jnp.zeros((1, 2)), c0=jnp.ones(1))
    np.testing.assert_allclose(cost(jnp.ones((1, 2))), [2.0])
