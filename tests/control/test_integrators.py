"""Tests for bellmax.control.integrators: Euler is Gymnasium's step, RK4 is fourth order."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.integrators import discretize, euler, rk4, step_size
from bellmax.envs.cartpole import CartPoleParams, cartpole_derivatives, cartpole_euler_step


def _cartpole_f(x, u, t, p):
    return cartpole_derivatives(x, u[0], p)


def _decay(x, u, t, a):
    return a * x + u


def _tau(p):
    return p.tau


def test_euler_is_gymnasium_step():
    dyn = euler(_cartpole_f, _tau)
    p = CartPoleParams()
    x = jnp.array([0.1, -0.2, 0.05, 0.3])
    want = cartpole_euler_step(x, jnp.asarray(10.0), p)
    np.testing.assert_allclose(dyn(x, jnp.array([10.0]), 0, p), want, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(dyn)(x, jnp.array([10.0]), 3, p), want, rtol=1e-6)


def test_rk4_is_fourth_order_and_euler_first_order():
    a, x0, T = -1.3, 1.0, 1.0
    exact = np.exp(a * T) * x0
    errs = {}
    with jax.enable_x64(True):
        for name in ("euler", "rk4"):
            for n in (10, 20):
                dyn = discretize(_decay, T / n, name)
                x = jnp.array([x0], jnp.float64)
                for t in range(n):
                    x = dyn(x, jnp.zeros(1, jnp.float64), t, a)
                errs[name, n] = abs(float(x[0]) - exact)
    assert 1.7 < errs["euler", 10] / errs["euler", 20] < 2.3
    assert 14 < errs["rk4", 10] / errs["rk4", 20] < 18


def test_time_step_from_params_and_hashable():
    p = CartPoleParams(tau=0.05)
    assert step_size(_tau, p) == 0.05
    assert step_size(0.1, p) == 0.1
    assert euler(_cartpole_f, 0.02) == euler(_cartpole_f, 0.02)
    assert hash(rk4(_cartpole_f, _tau)) == hash(rk4(_cartpole_f, _tau))
    assert euler(_cartpole_f, 0.02) != rk4(_cartpole_f, 0.02)


@pytest.mark.parametrize(
    ("f", "dt", "method", "err", "match"),
    [
        (_decay, 0.1, "midpoint", ValueError, "unknown integrator"),
        (_decay, -0.1, "euler", ValueError, "positive"),
        (_decay, float("nan"), "rk4", ValueError, "positive"),
        (_decay, "fast", "euler", TypeError, "dt must be"),
        (3.0, 0.1, "euler", TypeError, "callable"),
    ],
)
def test_bad_input(f, dt, method, err, match):
    with pytest.raises(err, match=match):
        discretize(f, dt, method)
