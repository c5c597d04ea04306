"""Tests for single shooting (bellmax.control.shooting)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from bellmax.control.problems import cartpole_balance, total_cost
from bellmax.control.shooting import rollout, shooting, shooting_from_problem

A = np.array([[1.0, 0.1], [0.0, 1.0]])
B = np.array([[0.005], [0.1]])
T = 30
X0 = np.array([1.0, 0.0])


def dyn(x, u, t, p):
    return jnp.asarray(A) @ x + jnp.asarray(B) @ u


def cost(x, u, t, p):
    return 0.5 * jnp.sum(x**2) + 0.05 * jnp.sum(u**2)


def term(x, p):
    return 5.0 * jnp.sum(x**2)


def _shoot(**kwargs):
    """`shooting` on the module's problem from zero controls (kwargs: bounds, optimiser...)."""
    return shooting(dyn, cost, X0, np.zeros((T, 1)), terminal_cost=term, **kwargs)


def _J(U):
    with jax.enable_x64(True):
        U = jnp.asarray(U, jnp.float64)
        X = rollout(dyn, jnp.asarray(X0), U)
        run = jax.vmap(cost, in_axes=(0, 0, 0, None))(X[:-1], U, jnp.arange(T), None)
        return jnp.sum(run) + term(X[-1], None)


@pytest.fixture(scope="module")
def exact():
    """The unconstrained optimum: J is quadratic in U, solve its normal equations."""
    with jax.enable_x64(True):
        U = jnp.zeros((T, 1))
        g = np.asarray(jax.jit(jax.grad(_J))(U)).ravel()
        H = np.asarray(jax.jit(jax.hessian(_J))(U)).reshape(T, T)
        U_star = -np.linalg.solve(H, g)
        J_star = float(jax.jit(_J)(jnp.asarray(U_star).reshape(T, 1)))
    return U_star, J_star, H, g


@pytest.fixture(scope="module")
def bounded_ref(exact):
    """L-BFGS-B (scipy) on the box |u| <= 0.5, with the exact quadratic model."""
    _, _, H, g = exact
    J0 = float(_J(jnp.zeros((T, 1))))
    ref = scipy.optimize.minimize(
        lambda u: (J0 + g @ u + 0.5 * u @ H @ u, g + H @ u),
        np.zeros(T),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-0.5, 0.5)] * T,
        options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5000},
    )
    return ref.x, ref.fun


def test_lbfgs_reaches_the_exact_optimum(exact):
    U_star, J_star, *_ = exact
    res = _shoot(bound="project", gtol=1e-7)
    assert res.status_name in ("converged", "stalled") and float(res.grad_norm) < 1e-4
    assert abs(float(res.cost) - J_star) <= 1e-8 * J_star
    np.testing.assert_allclose(np.asarray(res.U)[:, 0], U_star, atol=1e-4)
    with jax.enable_x64(True):
        X_again = np.asarray(rollout(dyn, X0, res.U))
    np.testing.assert_allclose(np.asarray(res.X), X_again)


def test_projected_lbfgs_matches_lbfgsb_on_a_box(bounded_ref):
    U_ref, J_ref = bounded_ref
    res = _shoot(
        u_lower=-0.5,
        u_upper=0.5,
        bound="project",
        max_iterations=1000,
    )
    U = np.asarray(res.U)[:, 0]
    assert np.all(np.abs(U) <= 0.5)
    assert np.isclose(np.abs(U), 0.5).any()  # the box binds
    # Projection spoils L-BFGS's curvature pairs: it gets close, and says so when it stops short.
    assert res.status_name in ("converged", "stalled")
    assert J_ref - 1e-9 <= float(res.cost) <= J_ref * (1 + 5e-3)
    if res.status_name == "converged":
        np.testing.assert_allclose(U, U_ref, atol=1e-3)


def test_adam_with_clipping_and_lbfgs_with_tanh_respect_bounds(bounded_ref):
    U_ref, J_ref = bounded_ref
    adam = _shoot(
        u_lower=-0.5,
        u_upper=0.5,
        optimizer="adam",
        bound="clip",
        learning_rate=0.02,
        max_iterations=3000,
        rtol=0.0,
        gtol=1e-5,
    )
    tanh = _shoot(
        u_lower=-0.5,
        u_upper=0.5,
        bound="tanh",
        max_iterations=1000,
    )
    for res in (adam, tanh):
        assert np.all(np.abs(np.asarray(res.U)) <= 0.5)
        assert float(res.cost) >= J_ref - 1e-9  # nobody beats the constrained optimum
        assert float(res.cost) <= J_ref * (1 + 1e-2)  # clip: zero gradient once saturated
    assert int(adam.iterations) > int(tanh.iterations)  # first order is slower


def test_sgd_reports_iteration_limit():
    res = _shoot(
        optimizer="sgd",
        learning_rate=1e-3,
        max_iterations=5,
        gtol=0.0,
        rtol=0.0,
        bound="project",
    )
    assert res.status_name == "max_iterations" and int(res.iterations) == 5
    assert float(res.cost) < float(_J(jnp.zeros((T, 1))))  # it made progress


def test_from_problem_lowers_the_problem_cost():
    prob = cartpole_balance(horizon=25)
    res = shooting_from_problem(prob, max_iterations=200)
    assert res.status_name in ("converged", "stalled", "max_iterations")
    J0 = float(total_cost(prob, jnp.zeros((25, 1))))
    assert float(res.cost) < 0.5 * J0
    assert np.all(np.abs(np.asarray(res.U)) <= 10.0)
    J_again = float(total_cost(prob, jnp.asarray(res.U, jnp.float32)))  # float32, as built
    assert abs(J_again - float(res.cost)) < 1e-4 * float(res.cost)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "newton"}, "optimizer must be one of"),
        ({"bound": "sigmoid"}, "bound must be one of"),
        ({"learning_rate": 0.1}, "line search"),
        ({"u_lower": 1.0, "u_upper": -1.0}, "u_lower > u_upper"),
        ({"u_lower": [0.0, 0.0]}, "u_lower must be"),
        ({"U0": np.zeros(T)}, r"\[T, m\]"),
        ({"U0": np.full((T, 1), np.nan)}, "finite"),
        ({"max_iterations": 0}, "max_iterations"),
        ({"optimizer": "adam", "learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_bad_input_raises(kwargs, match):
    U0 = kwargs.pop("U0", np.zeros((T, 1)))
    with pytest.raises(ValueError, match=match):
        shooting(dyn, cost, X0, U0, terminal_cost=term, **kwargs)


def test_non_finite_cost_and_bad_functions_raise():
    with pytest.raises(ValueError, match="non-finite"):
        shooting(dyn, lambda x, u, t, p: jnp.log(u[0] - 1.0), X0, np.zeros((T, 1)))
    with pytest.raises(TypeError, match="callable"):
        shooting(dyn, None, X0, np.zeros((T, 1)))
    with pytest.raises(ValueError, match="scalar per step"):
        shooting(dyn, lambda x, u, t, p: x, X0, np.zeros((T, 1)))
    with pytest.raises(TypeError, match="max_iterations must be an int"):
        shooting(dyn, cost, X0, np.zeros((T, 1)), max_iterations=10.0)


def _dyn_nan_beyond_2(x, u, t, p):
    """The module's dynamics, NaN once a state leaves [-2, 2]."""
    x2 = dyn(x, u, t, p)
    return jnp.where(jnp.abs(x2) > 2.0, jnp.nan, x2)


def _far_cost(x, u, t, p):
    """A pull towards x = 5, where the dynamics above give NaN."""
    return jnp.sum((x - jnp.array([5.0, 0.0])) ** 2) + 0.01 * jnp.sum(u**2)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_non_finite_states_are_never_returned(optimizer):
    # The last state X[T] is in no cost here (no terminal cost): a step whose rollout ends in
    # NaN has a finite cost. Such a step is rejected like a non-finite cost: the result keeps
    # finite states and is not CONVERGED (it used to return X[T] = NaN, "stalled").
    kw = {"learning_rate": 0.1} if optimizer == "adam" else {}
    res = shooting(_dyn_nan_beyond_2, _far_cost, X0, np.zeros((T, 1)), optimizer=optimizer, **kw)
    assert np.isfinite(np.asarray(res.X)).all() and np.isfinite(float(res.cost))
    assert res.status_name in ("diverged", "stalled")
    assert int(res.iterations) >= 1


def test_a_non_finite_state_at_the_start_raises():
    def dyn_nan_last(x, u, t, p):  # NaN in the last state only, which no cost sees
        return jnp.where(t == T - 1, jnp.nan, dyn(x, u, t, p))

    with pytest.raises(ValueError, match=r"non-finite state \(step 30 of 30\)"):
        shooting(dyn_nan_last, cost, X0, np.zeros((T, 1)))
