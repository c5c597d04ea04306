"""Tests for bellmax.control.problems: the standard problems and their validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.problems import (
    Problem,
    Status,
    cartpole_balance,
    cartpole_swingup,
    make_problem,
    pendulum_swingup,
    quadratic_cost,
    total_cost,
)
from bellmax.core import status as core_status
from bellmax.envs.cartpole import CartPoleParams, cartpole_euler_step
from bellmax.envs.pendulum import PendulumParams, pendulum_step


def test_cartpole_problems_match_the_environment():
    p = cartpole_balance()  # dt = params.tau: Gymnasium's own step
    assert (p.state_dim, p.control_dim, p.horizon, p.time_step()) == (4, 1, 50, 0.02)
    x = jnp.array([0.1, 0.2, -0.1, 0.3])
    np.testing.assert_allclose(
        p.dynamics(x, jnp.array([-10.0]), 0, p.params),
        cartpole_euler_step(x, jnp.asarray(-10.0), CartPoleParams()),
        rtol=1e-6,
    )
    s = cartpole_swingup()
    np.testing.assert_allclose(s.x0, [0, 0, np.pi, 0], rtol=1e-6)
    np.testing.assert_allclose(s.goal, 0.0)
    np.testing.assert_allclose([s.u_lower[0], s.u_upper[0]], [-10.0, 10.0])
    assert s.time_step() == pytest.approx(0.03) and s.integrator == "euler" and s.f is not None
    # the time step can come from the params, so fitting tau changes the model
    slow = cartpole_swingup(dt=None).replace_params(CartPoleParams(tau=0.05))
    assert slow.time_step() == pytest.approx(0.05)


def test_pendulum_problem_is_gymnasiums_step():
    p = pendulum_swingup()
    x = jnp.array([0.5, -1.0])
    np.testing.assert_allclose(
        p.dynamics(x, jnp.array([1.5]), 0, p.params), pendulum_step(x, 1.5, PendulumParams())
    )
    rk = pendulum_swingup(method="rk4")
    assert rk.integrator == "rk4" and rk.f is not None


def test_total_cost_is_the_sum_of_stage_costs_and_jits():
    p = cartpole_swingup(horizon=5, q=(1.0, 0.1, 1.0, 0.1))
    U = jnp.linspace(-3.0, 3.0, 5)[:, None]
    x, want = p.x0, 0.0
    for t in range(5):
        want += float(p.cost(x, U[t], t, p.params))
        x = p.dynamics(x, U[t], t, p.params)
    want += float(p.terminal_cost(x, p.params))
    assert float(total_cost(p, U)) == pytest.approx(want, rel=1e-5)
    assert float(jax.jit(total_cost)(p, U)) == pytest.approx(want, rel=1e-5)
    # equal problems share one compiled function (hashable callables)
    assert cartpole_swingup().dynamics == cartpole_swingup().dynamics
    assert cartpole_swingup().cost == cartpole_swingup().cost


def test_wrapped_cost_is_periodic():
    cost, term = quadratic_cost([0.0, 0.0], [1.0, 1.0], 0.1, [2.0, 1.0], 0.05, wrap=(0,))
    x = jnp.array([0.3, 0.2])
    x2 = x.at[0].add(2 * np.pi)
    assert float(cost(x, jnp.zeros(1), 0, None)) == pytest.approx(
        float(cost(x2, jnp.zeros(1), 0, None)), rel=1e-5
    )
    assert float(term(x, None)) == pytest.approx(float(term(x2, None)), rel=1e-5)
    plain, _ = quadratic_cost([0.0, 0.0], [1.0, 1.0], 0.1, [2.0, 1.0], 0.05)
    assert float(plain(x2, jnp.zeros(1), 0, None)) > float(plain(x, jnp.zeros(1), 0, None))


def _lin(x, u, t, p):
    return x + u


def _c(x, u, t, p):
    return jnp.sum(x**2) + jnp.sum(u**2)


def _nan_cost(x, u, t, p):
    return jnp.log(x[0] - 10.0)


def test_make_problem_defaults_and_status_names():
    p = make_problem(_lin, _c, [1.0, 2.0], 3, control_dim=2)
    assert isinstance(p, Problem)
    assert p.control_dim == 2 and bool(jnp.all(jnp.isinf(p.u_upper)))
    assert float(p.terminal_cost(p.x0, None)) == 0.0
    assert Status.name_of(jnp.asarray(0)) == "converged"
    assert Status.name_of(3) == "stalled"
    assert Status is core_status.Status  # the old import path is the shared vocabulary


def test_vectors_take_jaxs_default_float_when_the_problem_is_built():
    # float32 by default; a problem built with x64 on keeps the float64 it was given, so a
    # float64 solver starts from pi itself, not float32(pi) = pi + 8.7e-8
    p32 = make_problem(_lin, _c, [0.0, np.pi], 3, control_dim=2)
    assert p32.x0.dtype == jnp.float32 and p32.u_upper.dtype == jnp.float32
    with jax.enable_x64(True):
        p64 = make_problem(_lin, _c, [0.0, np.pi], 3, control_dim=2, u_lower=-1.0, u_upper=1.0)
        for leaf in (p64.x0, p64.goal, p64.u_lower, p64.u_upper, p64.x_lower, p64.x_upper):
            assert leaf.dtype == jnp.float64
        assert float(p64.x0[1]) == np.pi
        # zero controls hold x = (0, pi) for 3 steps: cost 3 pi^2, in float64
        np.testing.assert_allclose(
            float(total_cost(p64, jnp.zeros((3, 2)))), 3 * np.pi**2, rtol=1e-14
        )


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"u_lower": [1.0, 0.0], "u_upper": [0.0, 1.0]}, ValueError, "u_lower > u_upper"),
        ({"x0": [[1.0, 2.0]]}, ValueError, "x0 must have shape"),
        ({"x0": [np.nan, 1.0]}, ValueError, "NaN"),
        ({"horizon": 0}, ValueError, "horizon"),
        ({"horizon": 3.0}, TypeError, "horizon must be an int"),
        ({"cost": _nan_cost}, ValueError, "non-finite"),
        ({"dynamics": "f"}, TypeError, "dynamics must be"),
        ({"u_lower": [0.0, 0.0, 0.0], "u_upper": [1.0, 1.0]}, ValueError, "u_upper must have"),
        ({"integrator": "leapfrog"}, ValueError, "integrator"),
    ],
)
def test_make_problem_bad_input(kwargs, err, match):
    args = {"dynamics": _lin, "cost": _c, "x0": [1.0, 2.0], "horizon": 3, "control_dim": 2}
    args.update(kwargs)
    if "u_lower" in kwargs:
        args.pop("control_dim")
    with pytest.raises(err, match=match):
        make_problem(
            args.pop("dynamics"), args.pop("cost"), args.pop("x0"), args.pop("horizon"), **args
        )


def test_constructor_bad_input():
    with pytest.raises(TypeError, match="CartPoleParams"):
        cartpole_swingup(PendulumParams())
    with pytest.raises(ValueError, match="x0 has 2 entries but the state has 4"):
        cartpole_swingup(x0=(0.0, 1.0))
    for dt in (-1.0, 0.0, float("nan")):
        with pytest.raises(ValueError, match="dt must be a finite positive time step"):
            pendulum_swingup(dt=dt)
        with pytest.raises(ValueError, match="dt must be a finite positive time step"):
            cartpole_swingup(dt=dt)
    with pytest.raises(ValueError, match="q must be"):
        cartpole_swingup(q=(1.0, 2.0))
    with pytest.raises(ValueError, match="unknown integrator"):
        cartpole_balance(method="verlet")


@pytest.mark.parametrize(
    ("env_id", "model", "params", "default"),
    [
        ("CartPole-v1", "cartpole", CartPoleParams(), 25),
        ("CartPoleSwingUp-v0", "cartpole", CartPoleParams(), 60),
        ("Pendulum-v1", "pendulum", PendulumParams(), 40),
    ],
)
def test_env_problem_takes_its_default_horizon_only_when_none_is_given(
    env_id, model, params, default
):
    from bellmax.control.problems import env_problem

    assert env_problem(env_id, model, params)[0].horizon == default
    assert env_problem(env_id, model, params, horizon=7)[0].horizon == 7
    with pytest.raises(ValueError, match="horizon"):  # was silently the default
        env_problem(env_id, model, params, horizon=0)
