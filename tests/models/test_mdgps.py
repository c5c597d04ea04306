"""MD-GPS: a neural policy supervised by local controllers (bellmax.models.mdgps)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.models.gps import GPSConfig, LinearGaussianPolicy, TrustRegionConfig, env_system
from bellmax.models.mdgps import MDGPSConfig, linearise_policy, run_mdgps, supervised_step
from bellmax.models.through_model import (
    evaluate_policy,
    make_neural_policy,
    neural_policy_from_bytes,
)


def test_linearise_policy_is_the_mean_jacobian():
    pol = make_neural_policy("Pendulum-v1", hidden_sizes=(8,), squash=False)
    params = pol.init(jax.random.key(1))
    X = jax.random.normal(jax.random.key(2), (3, 4, 2))
    lin = linearise_policy(pol, params, X, 0.5 * jnp.eye(1))
    J = jax.vmap(jax.vmap(jax.jacobian(lambda x: pol(params, x))))(X)
    np.testing.assert_allclose(lin.K, J.mean(0), rtol=1e-5, atol=1e-6)
    U = jax.vmap(jax.vmap(lambda x: pol(params, x)))(X)
    # At the mean state the linearisation gives the mean action.
    mean_u = jnp.einsum("tij,tj->ti", lin.K, X.mean(0)) + lin.k
    np.testing.assert_allclose(mean_u, U.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lin.cov, jnp.broadcast_to(0.5, (4, 1, 1)))


def test_supervised_step_fits_a_linear_controller():
    pol = make_neural_policy("Pendulum-v1", hidden_sizes=(32,), squash=False)
    T = 5
    ctrl = LinearGaussianPolicy(
        K=jnp.broadcast_to(jnp.array([[-1.0, -0.5]]), (T, 1, 2)),
        k=jnp.zeros((T, 1)),
        cov=jnp.broadcast_to(jnp.eye(1), (T, 1, 1)),
    )
    X = 0.3 * jax.random.normal(jax.random.key(0), (8, T, 2))
    cfg = MDGPSConfig(policy_updates=400, learning_rate=3e-3)
    params, losses = supervised_step(
        pol, cfg, pol.init(jax.random.key(3)), ctrl, X, jax.random.key(4)
    )
    assert float(losses[-20:].mean()) < 0.05 * float(losses[:20].mean())


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="policy_updates"):
        MDGPSConfig(policy_updates=0)
    with pytest.raises(TypeError, match="gps"):
        MDGPSConfig(gps={"iterations": 3})


def test_non_finite_rollouts_stop_mdgps_naming_the_iteration():
    import dataclasses

    from bellmax.core.errors import DivergenceError
    from bellmax.models.gps import Samples

    system = env_system("Pendulum-v1", horizon=5)

    def rollout(policy, key, num, noise=1.0):
        return Samples(
            X=jnp.zeros((num, 6, 2)), U=jnp.zeros((num, 5, 1)), costs=jnp.full((num, 5), jnp.nan)
        )

    cfg = MDGPSConfig(gps=GPSConfig(iterations=2, samples=2), hidden_sizes=(4,))
    match = r"MD-GPS iteration 1 on 'Pendulum-v1': the environment's reward \(first at step 1"
    with pytest.raises(DivergenceError, match=match):
        run_mdgps(dataclasses.replace(system, rollout=rollout), cfg)


def test_neural_policy_alone_reproduces_the_local_controllers():
    """Pendulum-v1 from hanging, T = 100, 10 iterations x 5 rollouts: the neural policy run
    alone (no local controller, no noise) costs within 5% of the last local controller's
    rollouts and under 70% of the first (exploratory) iteration's; every C-step's KL to the
    linearised policy holds its bound to the trust region's tolerance."""
    system = env_system("Pendulum-v1", horizon=100)
    res = run_mdgps(system, MDGPSConfig(gps=GPSConfig(iterations=10, samples=5, seed=0)))
    local = res.iteration_costs
    assert res.final_cost <= 1.05 * local[-1], (res.policy_costs, local)
    assert res.final_cost <= 0.7 * local[0], (res.policy_costs, local)
    tol = TrustRegionConfig().tol
    assert np.all(res.kl <= res.kl_bound * (1 + tol) + 1e-6)


def test_step_adapts_to_the_linearised_policys_improvement(monkeypatch):
    """The KL bound's multiplier is adapted from the trust region's centre (the linearised
    global policy), as MD-GPS's reference step adjustment does: at each iteration the rule is
    handed the last centre with the last fit and this iteration's centre with this fit; the
    centres after the first are linearised policies (one covariance at every step), not
    the local controllers (a covariance per step)."""
    import bellmax.models.mdgps as mdgps

    calls = []
    real = mdgps.next_step_multiplier

    def spy(prev, policy, fit, mult, config):
        calls.append((prev, policy, fit))
        return real(prev, policy, fit, mult, config)

    monkeypatch.setattr(mdgps, "next_step_multiplier", spy)
    system = env_system("Pendulum-v1", horizon=20)
    cfg = MDGPSConfig(gps=GPSConfig(iterations=3, samples=3, seed=0), policy_updates=5)
    run_mdgps(system, cfg)
    assert len(calls) == 3 and calls[0][0] is None
    for i in (1, 2):
        prev_centre, prev_fit = calls[i][0]
        assert prev_centre is calls[i - 1][1] and prev_fit is calls[i - 1][2]
        cov = np.asarray(calls[i][1].cov)
        np.testing.assert_array_equal(cov, np.broadcast_to(cov[0], cov.shape))
    # the first centre is the initial controller itself (no policy trained yet)
    assert calls[0][1].K.shape == (20, 1, 2)


def test_a_nan_policy_return_stops_mdgps_naming_the_iteration(monkeypatch):
    # The S-step diverged: the policy's return alone was NaN, yet MD-GPS went on (eta at its
    # cap) and `bellmax gps --policy mdgps` printed "final cost nan", exit 0 (with --out it
    # failed at the JSON write). Now it stops at that iteration, saying why.
    from bellmax.core.errors import DivergenceError
    from bellmax.models import mdgps

    def diverged_s_step(policy, config, params, controller, X, key):
        nan = jax.tree.map(lambda a: a * jnp.nan, params)
        return nan, jnp.full((config.policy_updates,), jnp.nan)

    monkeypatch.setattr(mdgps, "supervised_step", diverged_s_step)
    calls = []
    # (test_step_adapts_to_the_linearised_policys_improvement's sizes: its compiled code)
    cfg = MDGPSConfig(gps=GPSConfig(iterations=3, samples=3, seed=0), policy_updates=5)
    match = (
        r"MD-GPS iteration 1 on 'Pendulum-v1': the policy's return alone is nan: its "
        r"S-step fit diverged .* MDGPSConfig.learning_rate, now 0.003"
    )
    system = env_system("Pendulum-v1", horizon=20)
    with pytest.raises(DivergenceError, match=match):
        run_mdgps(system, cfg, callback=lambda i, numbers: calls.append(numbers))
    assert calls == []  # stopped before reporting the NaN


def test_bellmax_gps_policy_mdgps(capsys, tmp_path):
    import json

    from bellmax.cli.main import main

    argv = ["gps", "--env", "Pendulum-v1", "--iterations", "2", "--samples", "3"]
    run = tmp_path / "run"
    argv += ["--horizon", "20", "--policy", "mdgps", "--json", "--out", str(run)]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["policy"] == "mdgps"
    assert len(out["policy_costs"]) == len(out["iteration_costs"]) == len(out["eta"]) == 2
    assert out["final_cost"] == pytest.approx(out["policy_costs"][-1])
    assert out["final_return"] == pytest.approx(-out["final_cost"])
    # --out keeps the neural policy: read back, alone it costs what the run reported
    path = run / "neural_policy.msgpack"
    policy, params = neural_policy_from_bytes(path.read_bytes(), source=str(path))
    ret, _, _ = evaluate_policy("Pendulum-v1", policy, params, x0=out["initial_state"], steps=20)
    assert -ret == pytest.approx(out["final_cost"], rel=1e-5)
    assert {p.name for p in run.iterdir()} == {"result.json", "controller.npz", path.name}
    assert main(["gps", "--env", "gymnasium:Pendulum-v1", "--policy", "mdgps"]) != 0
    assert "--policy mdgps needs a bellmax env" in capsys.readouterr().err
