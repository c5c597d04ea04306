"""Neural dynamics (bellmax.models.neural): features, normalisation, fitting, calibration."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.errors import DivergenceError
from bellmax.models.neural import (
    NeuralConfig,
    fit,
    make_neural_model,
    open_loop_error,
    prediction_report,
)
from bellmax.models.parametric import PENDULUM


def _noisy_data(n: int, seed: int):
    """x' = x + 0.5 sin x + 0.3 u + sigma(x) eps with sigma(x) = 0.05 + 0.1 |x|."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (n, 1))
    u = rng.uniform(-1, 1, (n, 1))
    sigma = 0.05 + 0.1 * np.abs(x)
    xn = x + 0.5 * np.sin(x) + 0.3 * u + sigma * rng.standard_normal((n, 1))
    return x, u, xn, sigma


@pytest.fixture(scope="module")
def ensemble():
    """A 5-member probabilistic ensemble fitted to 1000 heteroscedastic transitions."""
    model = make_neural_model(1, 1, config=NeuralConfig(num_updates=2000, seed=0))
    x, u, xn, _ = _noisy_data(1000, 0)
    params, report = fit(model, x, u, xn)
    return model, params, report


def test_features_and_state_change_by_hand():
    model = make_neural_model(3, 1, angle_dims=(1,))
    x = jnp.asarray([2.0, math.pi / 2, -1.0])
    u = jnp.asarray([0.5])
    np.testing.assert_allclose(model.features(x, u), [2.0, -1.0, 0.0, 1.0, 0.5], atol=1e-6)
    assert model.feature_dim == 5
    # an angle crossing the wrap: the change is the short way round
    x0 = jnp.asarray([0.0, 3.1, 0.0])
    x1 = jnp.asarray([1.0, -3.1, 2.0])
    np.testing.assert_allclose(model.state_change(x0, x1), [1.0, 2 * math.pi - 6.2, 2.0], atol=1e-5)
    # jitted the same
    np.testing.assert_allclose(jax.jit(model.state_change)(x0, x1), model.state_change(x0, x1))


def test_ensemble_fits_a_known_function(ensemble):
    # Shows: the ensemble mean learns x + 0.5 sin x + 0.3 u; held-out RMSE is close to the
    # noise floor sqrt(E sigma^2) = 0.19 (a linear fit would leave ~0.26 from the sine).
    model, params, report = ensemble
    x, u, xn, sigma = _noisy_data(2000, 7)
    rep = prediction_report(model, params, x, u, xn)
    floor = math.sqrt(np.mean(sigma**2))
    assert rep["rmse"][0] < 1.1 * floor
    pred = model.dynamics(jnp.asarray([1.0]), jnp.asarray([0.5]), 0, params)
    assert abs(float(pred[0]) - (1.0 + 0.5 * math.sin(1.0) + 0.15)) < 0.05
    assert report.num_train == 900 and report.num_heldout == 100


def test_ensemble_is_calibrated_on_heldout_data(ensemble):
    # Shows calibration: on 2000 fresh transitions the mean of error^2 / predicted variance
    # is 1 within 0.25 (it is a chi-square-1 mean, std ~0.03 here), and in each band of |x|
    # the predicted standard deviation matches the real RMSE within 20%, tracking the
    # noise's growth from 0.1 to 0.3.
    model, params, _ = ensemble
    x, u, xn, _ = _noisy_data(2000, 11)
    rep = prediction_report(model, params, x, u, xn)
    assert abs(rep["z2"] - 1.0) < 0.25
    ratios = []
    for lo, hi in ((0, 1), (1, 2), (2, 3)):
        band = (np.abs(x[:, 0]) >= lo) & (np.abs(x[:, 0]) < hi)
        predicted = math.sqrt(rep["var"][band, 0].mean())
        actual = math.sqrt(rep["error2"][band, 0].mean())
        ratios.append(predicted / actual)
    assert all(0.8 < r < 1.25 for r in ratios), ratios


def test_open_loop_error_grows_with_the_horizon(ensemble):
    model, params, _ = ensemble
    rng = np.random.default_rng(3)
    T = 40
    us = rng.uniform(-1, 1, (T, 1))
    xs = np.zeros((T + 1, 1))
    xs[0] = 0.5
    for t in range(T):
        xs[t + 1] = xs[t] + 0.5 * np.sin(xs[t]) + 0.3 * us[t]  # the noise-free system
    err = open_loop_error(model, params, xs, us, 5)
    assert err.shape == (5, 1)
    assert err[0, 0] < 0.1 and np.all(np.isfinite(err))
    with pytest.raises(ValueError, match="horizon"):
        open_loop_error(model, params, xs, us, T + 1)


def test_hybrid_learns_the_residual_of_wrong_physics_with_normalised_data():
    # Shows: the pendulum's physics with gravity 8 instead of 10 plus a residual network
    # predicts the real pendulum far better than the wrong physics alone; the network's
    # inputs and targets are standardised with the data's mean and std (a constant column
    # keeps scale 1), and predictions come back in the data's units.
    rng = np.random.default_rng(2)
    n = 600
    x = np.stack([rng.uniform(-math.pi, math.pi, n), rng.uniform(-6, 6, n)], axis=1)
    u = np.concatenate([rng.uniform(-2, 2, (n - 1, 1)), [[2.0]]])
    true = jax.vmap(lambda a, b: PENDULUM.predict(PENDULUM.theta_from({}), a, b))
    xn = np.asarray(true(jnp.asarray(x), jnp.asarray(u)))
    cfg = NeuralConfig(ensemble_size=1, probabilistic=False, num_updates=1500, holdout_fraction=0)
    model = make_neural_model(
        2, 1, angle_dims=(0,), config=cfg, base=PENDULUM, base_params={"g": 8.0}
    )
    assert model.kind == "hybrid"
    params, report = fit(model, x, u, xn)
    feats = np.stack([x[:, 1], np.cos(x[:, 0]), np.sin(x[:, 0]), u[:, 0]], axis=1)
    np.testing.assert_allclose(params.in_mean, feats.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(params.in_std, feats.std(0), rtol=1e-4)
    wrong = jax.vmap(lambda a, b: PENDULUM.predict(PENDULUM.theta_from({"g": 8.0}), a, b))
    base_next = np.asarray(wrong(jnp.asarray(x), jnp.asarray(u)))
    resid = np.asarray(model.state_change(jnp.asarray(base_next), jnp.asarray(xn)))
    np.testing.assert_allclose(params.out_mean, resid.mean(0), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(params.out_std, resid.std(0), rtol=1e-3)
    assert report.num_heldout == 0 and math.isnan(report.heldout_z2)
    rep = prediction_report(model, params, x, u, xn)
    base_rmse = np.sqrt(np.mean((base_next - xn) ** 2, 0))
    assert rep["rmse"][1] < 0.2 * base_rmse[1]
    # constant column: the normalisation keeps scale 1 instead of dividing by zero
    model1 = make_neural_model(1, 1, config=NeuralConfig(num_updates=1))
    p1, _ = fit(model1, np.full((8, 1), 3.0), np.zeros((8, 1)), np.full((8, 1), 3.0))
    np.testing.assert_allclose(p1.in_std, [1.0, 1.0])
    np.testing.assert_allclose(p1.out_std, [1.0])


@pytest.fixture(scope="module")
def reward_model():
    """Two members with a reward head, fitted to x' = 0.9 x + 0.1 u, r = -(x^2 + 0.1 u^2)."""
    rng = np.random.default_rng(4)
    x = rng.uniform(-2, 2, (500, 1))
    u = rng.uniform(-1, 1, (500, 1))
    xn = 0.9 * x + 0.1 * u
    r = -(x[:, 0] ** 2 + 0.1 * u[:, 0] ** 2)
    cfg = NeuralConfig(ensemble_size=2, num_updates=1500)
    model = make_neural_model(1, 1, reward_head=True, config=cfg)
    params, report = fit(model, x, u, xn, rewards=r)
    return model, params, report, (x, u, xn, r)


def test_reward_head_learns_a_reward(reward_model):
    # Shows: a reward head fits the reward next to the dynamics.
    model, params, report, _ = reward_model
    assert report.heldout_reward_rmse < 0.1
    assert abs(float(model.reward(jnp.asarray([1.0]), jnp.asarray([0.0]), params)) + 1.0) < 0.1
    assert report.heldout_rmse[0] < 0.05


def test_bad_input_is_refused():
    model = make_neural_model(2, 1)
    x = np.zeros((10, 2))
    u = np.zeros((10, 1))
    with pytest.raises(ValueError, match=r"x and x_next must both be \[N, 2\]"):
        fit(model, np.zeros((10, 3)), u, np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"u must be \[N, 1\]"):
        fit(model, x, np.zeros((9, 1)), x)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"x_next holds NaN or inf in rows \[3\]"):
        fit(model, x, u, bad)
    with pytest.raises(ValueError, match="no reward head"):
        fit(model, x, u, x, rewards=np.zeros(10))
    with pytest.raises(ValueError, match="reward head: pass rewards"):
        fit(make_neural_model(2, 1, reward_head=True), x, u, x)
    with pytest.raises(ValueError, match="angle_dims"):
        make_neural_model(2, 1, angle_dims=(2,))
    with pytest.raises(ValueError, match="min_log_var"):
        NeuralConfig(min_log_var=1.0, max_log_var=0.0)
    with pytest.raises(ValueError, match="num_updates"):
        NeuralConfig(num_updates=0)
    with pytest.raises(ValueError, match="state_dim"):
        make_neural_model(3, 1, base=PENDULUM)


def test_nan_parameters_give_nan_predictions_and_a_diverging_fit_raises(reward_model):
    model, params, _, (x, u, xn, r) = reward_model
    nan = params.replace(net=jax.tree.map(lambda a: jnp.full_like(a, jnp.nan), params.net))
    pred = model.predict(nan, jnp.zeros(1), jnp.zeros(1))
    assert not np.isfinite(np.asarray(pred.mean)).any()
    with pytest.raises(DivergenceError, match="non-finite"):
        fit(model, x, u, xn, rewards=r, init=nan)


@pytest.mark.parametrize("kind", ["ensemble_with_reward", "hybrid_with_angles"])
def test_member_predictions_for_a_batch_of_states_equal_one_at_a_time(kind):
    # The planner's objective asks for [K, S, n] states at once (member axis first, as the
    # networks run) with one action per plan [S, m]; every entry must be the [K, n]
    # prediction of that plan's states alone (the base model too, angles as features).
    if kind == "hybrid_with_angles":
        cfg = NeuralConfig(ensemble_size=3)
        model = make_neural_model(2, 1, angle_dims=(0,), config=cfg, base=PENDULUM)
    else:
        model = make_neural_model(2, 1, reward_head=True, config=NeuralConfig(ensemble_size=3))
    params = model.init(jax.random.key(5))
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(3, 4, 2)), jnp.float32)  # K = 3 members, S = 4 plans
    u = jnp.asarray(rng.normal(size=(4, 1)), jnp.float32)
    mean, var, reward = jax.jit(model.predict_members)(params, x, u)
    assert mean.shape == var.shape == (3, 4, 2) and reward.shape == (3, 4)
    for s in range(4):
        m1, v1, r1 = model.predict_members(params, x[:, s], u[s])
        np.testing.assert_allclose(mean[:, s], m1, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var[:, s], v1, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(reward[:, s], r1, rtol=1e-5, atol=1e-6)
    # one action for every plan broadcasts
    shared, _, _ = model.predict_members(params, x, u[0])
    np.testing.assert_allclose(shared[:, 0], mean[:, 0], rtol=1e-5, atol=1e-6)


def test_a_fit_padded_to_a_capacity_is_the_same_fit():
    # `capacity` pads the training rows (one compiled fit for a growing data loop); the
    # minibatches come from the real rows only, so the fit is the same bit for bit.
    model = make_neural_model(2, 1, config=NeuralConfig(ensemble_size=2, num_updates=30))
    rng = np.random.default_rng(0)
    x, u = rng.normal(size=(40, 2)), rng.normal(size=(40, 1))
    x_next = x + 0.1 * u
    key = jax.random.key(3)
    plain, rep = fit(model, x, u, x_next, key=key)
    padded, rep2 = fit(model, x, u, x_next, key=key, capacity=1000)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(padded), strict=True):
        np.testing.assert_array_equal(a, b)
    assert rep.final_loss == rep2.final_loss and rep.heldout_rmse == rep2.heldout_rmse
    # a capacity that is not a positive whole number is refused, naming it
    with pytest.raises(ValueError, match=r"capacity"):
        fit(model, x, u, x_next, key=key, capacity=0)
    with pytest.raises(TypeError, match=r"capacity must be an int, got float 1000.0"):
        fit(model, x, u, x_next, key=key, capacity=1000.0)
