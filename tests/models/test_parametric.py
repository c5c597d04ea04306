"""Tests for bellmax.models.parametric: the models equal the environments' physics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.errors import UnknownNameError
from bellmax.envs.cartpole import CartPoleParams, CartPoleSwingUpParams
from bellmax.models import (
    CARTPOLE,
    PENDULUM,
    collect_transitions,
    get_model,
    make_transitions,
    model_for_env,
    model_names,
)


def _predict_all(model, data, params=None):
    X, U, Xn = model.to_model(data)
    theta = model.theta_from(params or {})
    pred = jax.vmap(model.predict, in_axes=(None, 0, 0))(theta, jnp.asarray(X), jnp.asarray(U))
    d = np.asarray(pred) - Xn
    d[:, list(model.angle_dims)] = (d[:, list(model.angle_dims)] + np.pi) % (2 * np.pi) - np.pi
    return d


def test_registry():
    assert model_names() == ["cartpole", "pendulum"]
    assert get_model("cartpole") is CARTPOLE and get_model("pendulum") is PENDULUM
    assert model_for_env("gymnasium:CartPole-v1") is CARTPOLE
    assert model_for_env("CartPoleSwingUp-v0") is CARTPOLE
    assert model_for_env("Pendulum-v1") is PENDULUM
    with pytest.raises(UnknownNameError, match="pendulum"):
        get_model("pendulm")
    with pytest.raises(TypeError, match="string"):
        get_model(3)
    with pytest.raises(UnknownNameError, match="model"):
        model_for_env("FrozenLake-v1")


def test_cartpole_model_matches_cartpole_v1():
    data = collect_transitions("CartPole-v1", 100, seed=0)
    assert np.abs(_predict_all(CARTPOLE, data)).max() < 1e-5


def test_cartpole_model_matches_swingup_with_other_constants():
    # observations [x, x_dot, cos, sin, theta_dot] and continuous forces, hanging start
    params = CartPoleSwingUpParams(masspole=0.3, length=0.8, force_mag=15.0)
    data = collect_transitions("CartPoleSwingUp-v0", 100, seed=0, env_params=params)
    changed = {"masspole": 0.3, "length": 0.8, "force_mag": 15.0}
    assert np.abs(_predict_all(CARTPOLE, data, changed)).max() < 1e-4
    assert np.abs(_predict_all(CARTPOLE, data)).max() > 1e-3  # the defaults do not fit


def test_pendulum_model_matches_pendulum_v1():
    data = collect_transitions("Pendulum-v1", 100, seed=0)
    assert np.abs(_predict_all(PENDULUM, data)).max() < 1e-4


def test_inputs_and_layouts():
    X, U, _ = CARTPOLE.to_model(make_transitions(np.zeros((2, 4)), [0, 1], np.zeros((2, 4))))
    np.testing.assert_array_equal(U[:, 0], [-1.0, 1.0])
    _, U, _ = CARTPOLE.to_model(make_transitions(np.zeros((2, 4)), [-3.0, 0.5], np.zeros((2, 4))))
    np.testing.assert_array_equal(U[:, 0], [-1.0, 0.5])
    with pytest.raises(ValueError, match=r"0 .push left. or 1"):
        CARTPOLE.to_model(make_transitions(np.zeros((2, 4)), [0, 2], np.zeros((2, 4))))
    with pytest.raises(ValueError, match="continuous torques"):
        PENDULUM.to_model(make_transitions(np.zeros((2, 3)), [0, 1], np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"dimension 4 .* or 5"):
        CARTPOLE.to_model(make_transitions(np.zeros((2, 3)), [0.0, 1.0], np.zeros((2, 3))))
    with pytest.raises(UnknownNameError, match="gravity"):
        CARTPOLE.theta_from({"gravty": 9.8})


def test_dynamics_signature():
    theta = CARTPOLE.theta_from({})
    x = jnp.array([0.0, 0.0, 0.1, 0.0])
    np.testing.assert_allclose(
        CARTPOLE.dynamics(x, jnp.array([1.0]), 0, theta), CARTPOLE.predict(theta, x, 1.0)
    )


def test_env_params_from_fitted_values():
    p = CARTPOLE.env_params({"masspole": 0.3, "length": 0.8})
    assert isinstance(p, CartPoleParams) and (p.masspole, p.length, p.masscart) == (0.3, 0.8, 1.0)
    base = CartPoleSwingUpParams(control_cost=0.5)
    q = CARTPOLE.env_params({"tau": 0.01}, base)
    assert isinstance(q, CartPoleSwingUpParams) and q.tau == 0.01 and q.control_cost == 0.5
    assert PENDULUM.env_params({"g": 9.81}).g == 9.81
    with pytest.raises(UnknownNameError, match="masspole"):
        CARTPOLE.env_params({"mass_pole": 0.3})
