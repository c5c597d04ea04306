"""Trust-region LQR with local models (bellmax.models.gps)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.lqr import finite_horizon_lqr
from bellmax.core.status import Status
from bellmax.models.gps import (
    GPSConfig,
    LinearGaussianPolicy,
    LocalSystem,
    Samples,
    TrustRegionConfig,
    constant_policy,
    env_system,
    kl_lqr,
    policy_kl,
    run_lqr_flm,
    state_action_marginals,
    step_multiplier,
    trust_region_lqr,
)
from bellmax.models.local import LocalCost, LocalDynamics

T, N, M = 30, 2, 1
A = jnp.array([[1.0, 0.1], [0.0, 1.0]])
B = jnp.array([[0.0], [0.1]])
C = jnp.diag(jnp.array([1.0, 0.1, 0.01]))
X0 = jnp.array([1.0, 0.0])


def _dynamics(noise=1e-4):
    F = jnp.broadcast_to(jnp.concatenate([A, B], axis=1), (T, N, N + M))
    return LocalDynamics(
        F=F, f=jnp.zeros((T, N)), cov=jnp.broadcast_to(noise * jnp.eye(N), (T, N, N))
    )


COST = LocalCost(C=jnp.broadcast_to(C, (T, 3, 3)), c=jnp.zeros((T, 3)), c0=jnp.zeros(T))


def test_policy_kl_by_hand():
    # One step, scalars: x ~ N(0.5, 0.2); new u|x ~ N(2x + 1, 0.5), old N(x, 2).
    new = LinearGaussianPolicy(
        K=jnp.array([[[2.0]]]), k=jnp.array([[1.0]]), cov=jnp.array([[[0.5]]])
    )
    old = LinearGaussianPolicy(
        K=jnp.array([[[1.0]]]), k=jnp.array([[0.0]]), cov=jnp.array([[[2.0]]])
    )
    mu, sigma = jnp.array([[0.5, 0.0]]), jnp.array([[[0.2, 0.0], [0.0, 0.0]]])
    d = 1.0 * 0.5 + 1.0  # (K - K_old) mu + (k - k_old)
    want = 0.5 * (0.5 / 2.0 - 1.0 + math.log(2.0) - math.log(0.5) + (d**2 + 1.0 * 0.2) / 2.0)
    got = jax.jit(policy_kl)(new, old, mu, sigma)
    np.testing.assert_allclose(got, [want], rtol=1e-5)
    np.testing.assert_allclose(policy_kl(old, old, mu, sigma), [0.0], atol=1e-6)


def test_marginals_by_hand():
    # x0 ~ N([1, 0], 0); u = -x_1 + 0.5 with variance 0.04; one step of A, B.
    pol = LinearGaussianPolicy(
        K=jnp.array([[[-1.0, 0.0]], [[0.0, 0.0]]]),
        k=jnp.array([[0.5], [0.0]]),
        cov=jnp.array([[[0.04]], [[1.0]]]),
    )
    F = jnp.broadcast_to(jnp.concatenate([A, B], axis=1), (2, N, N + M))
    dyn = LocalDynamics(F=F, f=jnp.zeros((2, N)), cov=jnp.zeros((2, N, N)))
    mu, sigma = state_action_marginals(pol, dyn, X0, jnp.zeros((N, N)))
    np.testing.assert_allclose(mu[0], [1.0, 0.0, -0.5], atol=1e-6)
    np.testing.assert_allclose(sigma[0][2, 2], 0.04, atol=1e-6)
    np.testing.assert_allclose(mu[1][:2], [1.0, -0.05], atol=1e-6)  # A x0 + B u
    np.testing.assert_allclose(sigma[1][1, 1], 0.01 * 0.04, atol=1e-7)


def test_kl_lqr_limits():
    old = constant_policy(T, N, M, 1.0)
    dyn = _dynamics()
    # eta -> infinity: the controller stays the old one.
    same, ok = kl_lqr(dyn, COST, old, 1e12)
    assert bool(ok)
    np.testing.assert_allclose(same.K, old.K, atol=1e-5)
    np.testing.assert_allclose(same.cov, old.cov, rtol=1e-4)
    # eta -> 0: the gains of the plain LQR of the cost, and covariance eta Q_uu^{-1}.
    eta = 1e-6
    new, ok = kl_lqr(dyn, COST, old, eta)
    lqr = finite_horizon_lqr(A, B, C[:2, :2], C[2:, 2:], jnp.zeros((N, N)), horizon=T)
    assert bool(ok)
    np.testing.assert_allclose(new.K, lqr.K, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(new.cov, eta * jnp.linalg.inv(lqr.Q_uu), rtol=1e-2)


@pytest.fixture(scope="module")
def trust_region():
    return jax.jit(trust_region_lqr, static_argnames="config")


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 10.0])
def test_trust_region_meets_the_bound(trust_region, epsilon):
    old = constant_policy(T, N, M, 1.0)
    tol = TrustRegionConfig().tol
    res = trust_region(_dynamics(), COST, old, X0, 1e-6 * jnp.eye(N), epsilon)
    assert int(res.status) == Status.CONVERGED
    assert abs(float(res.kl) - epsilon) <= tol * epsilon
    # The reported KL is the KL of the returned controller.
    mu, sigma = state_action_marginals(res.policy, _dynamics(), X0, 1e-6 * jnp.eye(N))
    np.testing.assert_allclose(jnp.sum(policy_kl(res.policy, old, mu, sigma)), res.kl, rtol=1e-4)


def test_trust_region_inactive_and_ordering(trust_region):
    old = constant_policy(T, N, M, 1.0)
    cov0 = 1e-6 * jnp.eye(N)
    free = trust_region(_dynamics(), COST, old, X0, cov0, jnp.inf)
    assert int(free.status) == Status.CONVERGED
    np.testing.assert_allclose(free.eta, TrustRegionConfig().eta_min, rtol=1e-4)
    tight = trust_region(_dynamics(), COST, old, X0, cov0, 0.1)
    loose = trust_region(_dynamics(), COST, old, X0, cov0, 10.0)
    assert float(tight.eta) > float(loose.eta) > float(free.eta)
    assert float(tight.predicted_cost) > float(loose.predicted_cost) >= float(free.predicted_cost)


def test_step_multiplier_by_hand():
    cfg = GPSConfig(min_step_mult=0.01, max_step_mult=10.0)
    # As predicted: factor 1 / (2 * 1e-4) clipped to 5.
    assert step_multiplier(1.0, 1.0, 1.0, cfg) == pytest.approx(5.0)
    # Half the predicted improvement: factor 1.
    assert step_multiplier(1.0, 0.5, 2.0, cfg) == pytest.approx(2.0)
    # Worse than before: 1 / (2 * 2) = 0.25.
    assert step_multiplier(1.0, -1.0, 1.0, cfg) == pytest.approx(0.25)
    assert step_multiplier(1.0, 1.0, 9.0, cfg) == pytest.approx(10.0)
    assert step_multiplier(float("nan"), 1.0, 0.05, cfg) == pytest.approx(0.01)


def _linear_system():
    """The double integrator as a sampled system (noise-free dynamics, known cost)."""

    @jax.jit
    def rollouts(policy, key, noise):
        def one(k):
            def step(x, inp):
                t, kk = inp
                u = (
                    policy.K[t] @ x
                    + policy.k[t]
                    + noise * policy.chol[t] @ jax.random.normal(kk, (M,))
                )
                z = jnp.concatenate([x, u])
                return A @ x + B @ u, (x, u, 0.5 * z @ C @ z)

            xT, (X, U, c) = jax.lax.scan(step, X0, (jnp.arange(T), jax.random.split(k, T)))
            return jnp.concatenate([X, xT[None]]), U, c

        X, U, c = jax.vmap(one)(key)
        return Samples(X=X, U=U, costs=c)

    def rollout(policy, key, num, noise=1.0):
        return rollouts(policy, jax.random.split(key, num), noise)

    def cost(x, u, t):
        z = jnp.concatenate([x, u])
        return 0.5 * z @ C @ z

    return LocalSystem(
        env_id="double-integrator",
        horizon=T,
        x0=np.asarray(X0),
        action_dim=M,
        action_low=np.array([-np.inf], np.float32),
        action_high=np.array([np.inf], np.float32),
        rollout=rollout,
        cost=cost,
    )


def test_lqr_flm_on_a_linear_system_keeps_the_kl_bound():
    # Every update's KL (under the fitted models) is within the bound's tolerance, and the
    # mean controller reaches the LQR optimum of the true system to 2%.
    system = _linear_system()
    cfg = GPSConfig(iterations=8, samples=5, kl_step=0.5, prior_rollouts=10)
    res = run_lqr_flm(system, cfg)
    tol = cfg.trust_region.tol
    assert res.kl.shape == res.kl_bound.shape == (8,)
    assert np.all(res.kl <= res.kl_bound * (1 + tol))
    assert np.all(res.status == Status.CONVERGED)
    lqr = finite_horizon_lqr(A, B, C[:2, :2], C[2:, 2:], jnp.zeros((N, N)), horizon=T)
    optimum = float(lqr.value(X0))
    assert res.final_cost <= 1.02 * optimum
    assert res.iteration_costs[-1] < res.iteration_costs[0]


def _nan_system(where: str) -> LocalSystem:
    """A system whose rollouts go NaN in the reward or the state after step 3 of rollout 2."""

    def rollout(policy, key, num, noise=1.0):
        X = np.zeros((num, T + 1, N), np.float32)
        c = np.ones((num, T), np.float32)
        if where == "reward":
            c[1, 3:] = np.nan
        else:
            X[1, 3:] = np.nan
        return Samples(X=jnp.asarray(X), U=jnp.zeros((num, T, M)), costs=jnp.asarray(c))

    return dataclasses.replace(_linear_system(), env_id="nan-env", rollout=rollout)


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("reward", r"LQR-FLM iteration 1 on 'nan-env': the environment's reward \(first at "
         r"step 4, rollout 2\) went NaN or inf"),
        ("observation", r"LQR-FLM iteration 1 on 'nan-env': the environment's observation "
         r"\(first after step 3, rollout 2\) went NaN or inf"),
    ],
)  # fmt: skip
def test_non_finite_rollouts_stop_lqr_flm_naming_the_iteration(where, match):
    # the loop ran every iteration on NaN (kl 0, eta at its cap); `bellmax gps` then failed
    # writing result.json and the run was lost
    from bellmax.core.errors import DivergenceError

    calls = []
    with pytest.raises(DivergenceError, match=match):
        run_lqr_flm(_nan_system(where), GPSConfig(iterations=3), callback=calls.append)
    assert calls == []  # stopped before fitting to the NaN


def test_config_errors():
    with pytest.raises(ValueError, match="kl_step"):
        GPSConfig(kl_step=0.0)
    with pytest.raises(TypeError, match="samples"):
        GPSConfig(samples=2.5)
    with pytest.raises(ValueError, match="samples must be at least 2, got 1: one rollout"):
        GPSConfig(samples=1)  # (its loop never changed the controller)
    with pytest.raises(ValueError, match="tol"):
        TrustRegionConfig(tol=1.5)
    with pytest.raises(TypeError, match="TrustRegionConfig"):
        trust_region_lqr(
            _dynamics(), COST, constant_policy(T, N, M, 1.0), X0, jnp.eye(N), 1.0, config={}
        )


def test_systems_of_one_environment_share_their_compiled_rollouts_and_cost():
    """Another horizon or start (a run with and one without the trust region, the CLI's
    iLQR reference) reuses the programs: the environment is one object per id."""
    from bellmax.models import gps
    from bellmax.models.local import expand_cost

    a = env_system("Pendulum-v1", horizon=6)
    b = env_system("Pendulum-v1", horizon=6, x0=[0.5, 0.0])
    assert a.cost == b.cost and hash(a.cost) == hash(b.cost)
    before = gps._env_rollouts._cache_size()
    for system in (a, b):
        policy = constant_policy(6, 2, 1, 0.5)
        samples = system.rollout(policy, jax.random.key(0), 3)
        assert samples.X.shape == (3, 7, 2) and np.isfinite(samples.costs).all()
        expand_cost(system.cost, samples.X, samples.U)
    assert gps._env_rollouts._cache_size() == before + 1
    with pytest.raises(TypeError, match="takes an environment id"):
        env_system(["Pendulum-v1"])


def test_gymnasium_pendulum_within_ten_percent_of_ilqr():
    # Gymnasium's own Pendulum-v1 through the bridge, as a black box (the cost a local
    # quadratic fit of the sampled rewards), from its seed-0 reset state (theta 0.86 rad).
    # LQR-FLM with 5 rollouts per iteration runs until its rollouts cost at most 1.1 x
    # iLQR's on the true model from the same start and zero controls (at most 20
    # iterations); the final controller's mean then keeps that. What this shows is the
    # bridge's black-box loop reaching that yardstick, not a swing-up: from this start
    # iLQR from zero controls (cost 480) does not get the pendulum up within the 100 steps
    # either, while iLQR from random controls finds optima down to 361 (2026-12-06), and
    # the swing-up from hanging is bench/gps.py's (not met: 1.18-1.24 of iLQR).
    pytest.importorskip("gymnasium")
    from bellmax.models.gps import gymnasium_system, ilqr_reference

    system = gymnasium_system("gymnasium:Pendulum-v1", horizon=100, seed=0)
    c, s, thdot = (float(v) for v in system.x0)
    ref = float(ilqr_reference("Pendulum-v1", (math.atan2(s, c), thdot), 100).cost)
    cfg = GPSConfig(iterations=20, samples=5)
    res = run_lqr_flm(system, cfg, callback=lambda i, d: d["cost"] <= 1.1 * ref)
    assert len(res.iteration_costs) <= 20
    assert res.iteration_costs[-1] <= 1.1 * ref
    assert res.final_cost <= 1.1 * ref
    assert np.all(res.kl <= res.kl_bound * (1 + cfg.trust_region.tol))


def test_ilqr_reference_from_given_controls():
    # The reference's initial controls: zeros by default; given ones start the same solver
    # elsewhere (the swing-up has many local optima, bench/gps.py), a wrong shape is refused.
    from bellmax.models.gps import ilqr_reference

    start, horizon = (math.pi, 0.0), 20
    default = ilqr_reference("Pendulum-v1", start, horizon, max_iterations=1)
    zeros = ilqr_reference("Pendulum-v1", start, horizon, U0=np.zeros((horizon, 1)),
                           max_iterations=1)  # fmt: skip
    pushed = ilqr_reference("Pendulum-v1", start, horizon, U0=np.full((horizon, 1), 2.0),
                            max_iterations=1)  # fmt: skip
    np.testing.assert_array_equal(np.asarray(zeros.U), np.asarray(default.U))
    assert not np.allclose(np.asarray(pushed.U), np.asarray(default.U))
    with pytest.raises(ValueError, match=r"U0 has shape \(20,\).*\[20, 1\]"):
        ilqr_reference("Pendulum-v1", start, horizon, U0=np.zeros(horizon))
