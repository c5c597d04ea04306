"""Tests for bellmax.models.sysid: least squares, standard errors, identifiability, identify."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import curve_fit

from bellmax.core.errors import DivergenceError, UnknownNameError
from bellmax.core.status import Status
from bellmax.envs.cartpole import CartPoleParams, CartPoleSwingUpParams
from bellmax.envs.pendulum import PendulumParams
from bellmax.models import (
    SysIdConfig,
    collect_transitions,
    identify,
    least_squares,
    make_transitions,
    prediction_error,
    split_transitions,
)

CP = CartPoleParams()
CP_TRUE = {n: float(getattr(CP, n)) for n in ("gravity", "masscart", "masspole", "length")}
CP_TRUE |= {"force_mag": float(CP.force_mag), "tau": float(CP.tau)}
CP_COMBOS = {
    "masspole/total_mass": CP.masspole / (CP.masscart + CP.masspole),
    "force_mag/total_mass": CP.force_mag / (CP.masscart + CP.masspole),
}
PD = PendulumParams()
PD_TRUE = {n: float(getattr(PD, n)) for n in ("g", "m", "l", "dt", "max_torque")}
PD_COMBOS = {"g/l": PD.g / PD.l, "1/(m*l^2)": 1.0 / (PD.m * PD.l**2)}


@pytest.fixture(scope="module")
def cartpole_data():
    """500 random-policy transitions of Gymnasium's own CartPole-v1, through the bridge."""
    return collect_transitions("gymnasium:CartPole-v1", 500, seed=0)


@pytest.fixture(scope="module")
def pendulum_data():
    """500 random-policy transitions of Gymnasium's own Pendulum-v1, through the bridge."""
    return collect_transitions("gymnasium:Pendulum-v1", 500, seed=0)


@pytest.fixture(scope="module")
def cartpole_free(cartpole_data):
    return identify("cartpole", cartpole_data)


@pytest.fixture(scope="module")
def pendulum_free(pendulum_data):
    return identify("pendulum", pendulum_data)


def _rel(a, b):
    return abs(a - b) / abs(b)


# ---------------------------------------------------------------------- Gymnasium's cart-pole
def test_cartpole_report_without_gauge(cartpole_free):
    r = cartpole_free
    assert r.status == Status.CONVERGED and r.status_name == "converged"
    assert r.free == tuple(CP_TRUE)
    assert r.rank == 5 and not r.well_posed
    assert r.null_directions == ("masscart * masspole * force_mag",)
    assert r.suggested_gauge == ("masscart",)
    assert set(r.identifiable) == {"gravity", "length", "tau", *CP_COMBOS}
    assert set(r.unidentifiable) == {"masscart", "masspole", "force_mag", "total_mass"}
    # the undetermined ones get infinite standard errors, the determined ones finite
    assert math.isinf(r.stderr["masscart"]) and math.isinf(r.combination_stderr["total_mass"])
    # the smallest singular value is numerically zero, the fifth is not
    assert r.singular_values[-1] < 1e-10 * r.singular_values[0] < r.singular_values[-2]


def test_cartpole_combinations_within_one_percent(cartpole_free):
    r = cartpole_free
    for n in ("gravity", "length", "tau"):
        assert _rel(r.params[n], CP_TRUE[n]) < 0.01, n
        assert abs(r.params[n] - CP_TRUE[n]) < 5 * r.stderr[n], n
    for n, v in CP_COMBOS.items():
        assert _rel(r.combinations[n], v) < 0.01, n
        assert abs(r.combinations[n] - v) < 5 * r.combination_stderr[n], n


def test_cartpole_gauge_makes_it_well_posed(cartpole_data):
    r = identify("cartpole", cartpole_data, fix={"masscart": 1.0})
    assert r.well_posed and r.rank == 5 and r.null_directions == ()
    assert r.fixed == {"masscart": 1.0} and r.stderr["masscart"] == 0.0
    for n, v in CP_TRUE.items():
        assert _rel(r.params[n], v) < 0.01, n
        if n != "masscart":
            assert 0 < r.stderr[n] < math.inf
            assert abs(r.params[n] - v) < 5 * r.stderr[n], n
    cov = r.covariance
    np.testing.assert_allclose(cov, cov.T, rtol=1e-10, atol=0)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-12 * np.abs(cov).max())
    np.testing.assert_allclose(
        np.sqrt(np.diag(cov)), [r.stderr[n] for n in r.names], rtol=1e-9, atol=0
    )


# ---------------------------------------------------------------------- Gymnasium's pendulum
def test_pendulum_report_without_gauge(pendulum_free):
    r = pendulum_free
    assert r.status == Status.CONVERGED and r.status_name == "converged"
    assert r.rank == 3 and len(r.free) == 5
    assert r.null_directions == ("g * m^-2 * l", "max_torque")
    assert r.suggested_gauge == ("g", "max_torque")
    assert set(r.identifiable) == {"dt", *PD_COMBOS}
    assert set(r.unidentifiable) == {"g", "m", "l", "max_torque"}
    assert _rel(r.params["dt"], PD.dt) < 0.01
    for n, v in PD_COMBOS.items():
        assert _rel(r.combinations[n], v) < 0.01, n
        assert abs(r.combinations[n] - v) < 5 * r.combination_stderr[n], n


def test_pendulum_gauge(pendulum_data):
    r = identify("pendulum", pendulum_data, fix={"g": 10.0, "max_torque": 2.0})
    assert r.well_posed and r.free == ("m", "l", "dt")
    for n in r.free:
        assert _rel(r.params[n], PD_TRUE[n]) < 0.01, n
        assert abs(r.params[n] - PD_TRUE[n]) < 5 * r.stderr[n], n


def test_max_torque_determined_when_actions_exceed_it():
    # torques in [-4, 4] on a pendulum that clips at 2: the clip shows in the data
    def policy(key, obs):
        return jax.random.uniform(key, (1,), minval=-4.0, maxval=4.0)

    data = collect_transitions("Pendulum-v1", 500, seed=3, policy=policy)
    r = identify("pendulum", data, fix={"g": 10.0})
    assert r.well_posed and "max_torque" in r.identifiable
    assert _rel(r.params["max_torque"], PD.max_torque) < 0.01


def test_swingup_with_other_constants():
    # continuous forces, [x, x_dot, cos, sin, theta_dot] observations, angles that wrap
    params = CartPoleSwingUpParams(masspole=0.3, length=0.8, force_mag=15.0)
    data = collect_transitions("CartPoleSwingUp-v0", 500, seed=4, env_params=params)
    r = identify("cartpole", data, fix={"masscart": 1.0})
    assert r.well_posed
    for n in ("gravity", "masspole", "length", "force_mag", "tau"):
        assert _rel(r.params[n], float(getattr(params, n))) < 0.01, n


# ---------------------------------------------------------------------- multi-start
def test_multistart_recovers_from_a_bad_guess(cartpole_data):
    bad = {"gravity": 30.0, "masspole": 1.0, "length": 0.1, "force_mag": 1.0, "tau": 0.1}
    # spread 1: all 16 starts at the bad guess (same compiled program as the default)
    one = identify(
        "cartpole", cartpole_data, fix={"masscart": 1.0}, init=bad, config=SysIdConfig(spread=1.0)
    )
    many = identify("cartpole", cartpole_data, fix={"masscart": 1.0}, init=bad)
    # the bad guess alone ends in a spurious minimum (pole mass -> 0) ...
    assert one.cost > 1e4 * many.cost
    # ... the default 16 starts find the true one
    assert many.start_costs.shape == (16,) and many.cost == pytest.approx(many.start_costs.min())
    for n, v in CP_TRUE.items():
        assert _rel(many.params[n], v) < 0.01, n


# ---------------------------------------------------------------------- generic least squares
def _decay(params, t, y):
    return params["a"] * jnp.exp(-params["b"] * t) - y


@pytest.mark.parametrize(
    ("residuals", "got"),
    [
        (lambda p, t, y: jnp.stack([_decay(p, t, y)] * 2, axis=1), r"shape \(40, 2\)"),
        (lambda p, t, y: jnp.sum(_decay(p, t, y) ** 2), r"shape \(\)"),
        (lambda p, t, y: (_decay(p, t, y),), "got tuple"),
    ],
)
def test_residuals_that_are_not_one_vector_are_named(residuals, got):
    # per-sample error matrices, a sum of squares or a tuple failed deep in the solver's
    # matmuls and diag, naming nothing of the user's
    t = np.linspace(0.0, 3.0, 40)
    with pytest.raises(ValueError, match=f"residual_fn must return one vector .*{got}"):
        least_squares(residuals, {"a": 1.0, "b": 1.0}, args=(t, 2.0 * np.exp(-t)))


def test_least_squares_matches_scipy_curve_fit():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 3.0, 40)
    y = 2.0 * np.exp(-1.3 * t) + 0.01 * rng.standard_normal(t.size)
    r = least_squares(_decay, {"a": 1.0, "b": 1.0}, args=(t, y), config=SysIdConfig(num_starts=4))
    popt, pcov = curve_fit(lambda t, a, b: a * np.exp(-b * t), t, y, p0=(1.0, 1.0))
    np.testing.assert_allclose([r.params["a"], r.params["b"]], popt, rtol=1e-7)
    np.testing.assert_allclose(r.covariance, pcov, rtol=1e-5)
    assert r.well_posed and r.converged
    assert r.residual_rms == pytest.approx(
        np.sqrt(np.mean((popt[0] * np.exp(-popt[1] * t) - y) ** 2))
    )


def _line(params, t, y):
    return params["a"] + params["b"] * t - y


def test_least_squares_signed_parameters():
    rng = np.random.default_rng(1)
    t = np.linspace(-1.0, 1.0, 30)
    y = -0.7 + 2.5 * t + 0.05 * rng.standard_normal(t.size)
    r = least_squares(
        _line, {"a": 1.0, "b": 1.0}, args=(t, y), positive=False, config=SysIdConfig(num_starts=4)
    )
    popt, pcov = curve_fit(lambda t, a, b: a + b * t, t, y)
    np.testing.assert_allclose([r.params["a"], r.params["b"]], popt, rtol=1e-8)
    np.testing.assert_allclose(r.covariance, pcov, rtol=1e-6, atol=1e-12)
    assert r.params["a"] < 0 and r.well_posed


def _product(params, t, y):
    return params["a"] * params["b"] * t - y


def test_least_squares_rank_deficient_names_the_product():
    t = np.linspace(0.0, 1.0, 20)
    r = least_squares(
        _product,
        {"a": 1.0, "b": 1.0},
        args=(t, 3.0 * t),
        combinations={"a*b": lambda p: p["a"] * p["b"]},
        config=SysIdConfig(num_starts=2),
    )
    assert r.rank == 1 and r.null_directions == ("a * b^-1",) and r.suggested_gauge == ("a",)
    assert r.identifiable == ("a*b",) and r.unidentifiable == ("a", "b")
    assert r.combinations["a*b"] == pytest.approx(3.0, rel=1e-9)
    fixed = least_squares(
        _product,
        {"a": 1.0, "b": 1.0},
        args=(t, 3.0 * t),
        fix={"a": 2.0},
        config=SysIdConfig(num_starts=2),
    )
    assert fixed.well_posed and fixed.params["b"] == pytest.approx(1.5, rel=1e-9)


def test_prediction_error_held_out(cartpole_data, cartpole_free):
    _, test = split_transitions(cartpole_data, 0.2, seed=1)
    err_fit = prediction_error("cartpole", cartpole_free.params, test)
    wrong = dict(CP_TRUE, length=0.6)
    err_wrong = prediction_error("cartpole", wrong, test)
    assert err_fit.shape == (4,) and np.all(err_fit < 1e-5)
    assert err_wrong[3] > 100 * err_fit[3]


# ---------------------------------------------------------------------- bad input
def test_unknown_model_name(cartpole_data):
    with pytest.raises(UnknownNameError, match="cartpole"):
        identify("cartpol", cartpole_data)


def test_unknown_parameter_in_fix(cartpole_data):
    with pytest.raises(UnknownNameError, match="masscart"):
        identify("cartpole", cartpole_data, fix={"mass_cart": 1.0})


def test_too_few_transitions(cartpole_data):
    few = make_transitions(cartpole_data.x[:5], cartpole_data.u[:5], cartpole_data.x_next[:5])
    with pytest.raises(ValueError, match="too few transitions: 5"):
        identify("cartpole", few)


def test_shape_mismatch_model_vs_data(cartpole_data):
    with pytest.raises(ValueError, match=r"dimension 3 .* got shape \(500, 4\)"):
        identify("pendulum", cartpole_data)


def test_not_transitions():
    with pytest.raises(TypeError, match="make_transitions"):
        identify("cartpole", np.zeros((10, 4)))


def test_bad_values():
    t = np.linspace(0.0, 1.0, 5)
    with pytest.raises(ValueError, match="non-positive"):
        least_squares(_decay, {"a": -1.0, "b": 1.0}, args=(t, t))
    with pytest.raises(ValueError, match="finite"):
        least_squares(_decay, {"a": math.nan, "b": 1.0}, args=(t, t))
    with pytest.raises(ValueError, match="at least one free"):
        least_squares(_decay, {"a": 1.0, "b": 1.0}, args=(t, t), fix={"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="num_starts"):
        least_squares(_decay, {"a": 1.0, "b": 1.0}, args=(t, t), config=SysIdConfig(num_starts=0))
    with pytest.raises(TypeError, match="init"):
        least_squares(_decay, {}, args=(t, t))


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("num_starts", 0, ValueError),
        ("num_starts", 2.0, TypeError),
        ("max_iterations", True, TypeError),
        ("ftol", -1.0, ValueError),
        ("xtol", math.inf, ValueError),
        ("gtol", "small", TypeError),
        ("spread", 0.5, ValueError),
        ("seed", 1.5, TypeError),
    ],
)
def test_config_checked_when_made(field, value, error):
    with pytest.raises(error, match=f"SysIdConfig.{field}"):
        SysIdConfig(**{field: value})


def test_status_vocabulary():
    # a start whose residuals are not finite is DIVERGED (inf cost); the best one converges
    t = np.linspace(0.0, 3.0, 40)
    y = 2.0 * np.exp(-0.5 * t)

    def residual(p, t, y):
        bad = jnp.where(p["a"] > 5.0, jnp.nan, 0.0)  # non-finite far from the start
        return p["a"] * jnp.exp(-p["b"] * t) - y + bad

    r = least_squares(residual, {"a": 1.0, "b": 1.0}, args=(t, y), config=SysIdConfig(num_starts=8))
    assert r.converged and r.status is Status.CONVERGED and r.status_name == "converged"
    assert all(isinstance(s, Status) for s in r.start_status)
    assert Status.DIVERGED in r.start_status
    for s, name, cost in zip(r.start_status, r.start_status_names, r.start_costs, strict=True):
        assert name == s.name.lower()
        assert (s is Status.DIVERGED) == (not np.isfinite(cost))
    assert "status converged" in r.summary()


def test_nonfinite_residuals_raise():
    t = np.linspace(0.0, 3.0, 40)
    with pytest.raises(DivergenceError, match="not finite"):
        least_squares(
            _decay, {"a": 1.0, "b": 1.0}, args=(t, t * np.nan), config=SysIdConfig(num_starts=4)
        )
