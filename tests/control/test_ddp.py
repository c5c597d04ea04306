"""Tests for bellmax.control.ddp: DDP swings the cart-pole up; where it pays and where not;
its one-step move is exactly Newton's, and its solutions are stationary points of the cost."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.ddp import ddp, ddp_problem
from bellmax.control.ilqr import ILQRConfig, ILQRProblem, _backward, _derivatives, ilqr_problem
from bellmax.control.problems import cartpole_swingup

# Converged = gradient norm below 1e-3 (the relative-cost rule is switched off so both
# methods stop on the same criterion).
CFG = ILQRConfig(rtol=0.0, gtol=1e-3, max_iterations=150)


@pytest.fixture(scope="module")
def runs():
    problem = cartpole_swingup()
    hanging_ilqr = ilqr_problem(problem, config=CFG)
    hanging_ddp = ddp_problem(problem, config=CFG)
    # a start near the optimum: the iLQR solution, perturbed
    t = jnp.arange(problem.horizon)[:, None]
    near = hanging_ilqr.U * 1.02 + 0.05 * jnp.sin(0.2 * t)
    near_ilqr = ilqr_problem(problem, near, config=CFG)
    near_ddp = ddp_problem(problem, near, config=CFG)
    its = {
        name: int(r.iterations)
        for name, r in [
            ("hanging_ilqr", hanging_ilqr),
            ("hanging_ddp", hanging_ddp),
            ("near_ilqr", near_ilqr),
            ("near_ddp", near_ddp),
        ]
    }
    print("iterations to |k| < 1e-3:", its)
    return problem, hanging_ilqr, hanging_ddp, near_ilqr, near_ddp


def test_ddp_swings_the_cartpole_up(runs, record_property):
    problem, hanging_ilqr, hanging_ddp, *_ = runs
    for res in (hanging_ilqr, hanging_ddp):
        assert res.status_name == "converged", res.status_name
        np.testing.assert_allclose(res.X[-1], problem.goal, atol=0.05)
        assert float(jnp.max(jnp.abs(res.U))) <= 10.0 + 1e-5
    # both find the same optimum
    assert float(hanging_ddp.cost) == pytest.approx(float(hanging_ilqr.cost), rel=1e-3)
    record_property("iterations_ilqr", int(hanging_ilqr.iterations))
    record_property("iterations_ddp", int(hanging_ddp.iterations))


def test_where_ddp_pays_near_the_optimum(runs):
    """Near a solution DDP's exact Hessian converges quadratically, iLQR's only linearly."""
    *_, near_ilqr, near_ddp = runs
    assert near_ddp.status_name == "converged" and near_ilqr.status_name == "converged"
    assert int(near_ddp.iterations) < int(near_ilqr.iterations)


def test_where_ddp_does_not_pay_far_from_it(runs):
    """From the hanging start the second-order terms make Q_uu indefinite; the rejected
    steps and raised regularisation cost DDP more iterations than iLQR (and each DDP
    iteration is dearer)."""
    _, hanging_ilqr, hanging_ddp, *_ = runs
    assert int(hanging_ddp.iterations) > int(hanging_ilqr.iterations)
    history = np.asarray(hanging_ddp.cost_history[: int(hanging_ddp.iterations)])
    assert np.sum(np.diff(history) == 0) > 0  # rejected steps: cost unchanged


def test_contracted_and_precomputed_hessians_agree(runs):
    problem, hanging_ilqr, *_ = runs
    X, U = hanging_ilqr.X, hanging_ilqr.U
    out = []
    for mode in ("precompute", "contract"):
        cfg = dataclasses.replace(CFG, second_order=True, dynamics_hessian=mode)

        @jax.jit
        def backward(X, U, cfg=cfg):
            model = ILQRProblem(
                problem.dynamics,
                problem.cost,
                problem.terminal_cost,
                problem.params,
                problem.u_lower,
                problem.u_upper,
            )
            return _backward(model, _derivatives(model, X, U, cfg), X, U, 1.0, cfg)

        out.append(backward(X, U))
    first, second = out
    np.testing.assert_allclose(first.K, second.K, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(first.k, second.k, rtol=1e-4, atol=1e-5)


def test_ddp_refuses_first_order():
    problem = cartpole_swingup()
    with pytest.raises(ValueError, match="second_order"):
        ddp(problem.dynamics, problem.cost, problem.x0, jnp.zeros((3, 1)), second_order=False)
    with pytest.raises(ValueError, match="second_order"):
        ddp_problem(problem, second_order=False)


def _total_cost(problem, U):
    """`J(U)`: the problem's dynamics rolled out from x0 and its costs summed, written out here
    (not bellmax's rollout) so jax.grad / jax.hessian of it are an independent reference."""
    p = problem.params

    def step(x, tu):
        t, u = tu
        return problem.dynamics(x, u, t, p), problem.cost(x, u, t, p)

    xT, c = jax.lax.scan(step, problem.x0, (jnp.arange(U.shape[0]), U))
    return jnp.sum(c) + problem.terminal_cost(xT, p)


def test_converged_solutions_are_stationary_points_of_the_total_cost(runs):
    # First-order optimality, independent of the solver's own stopping test (which measures
    # the feedforward step k_t, not the gradient): at a local minimum of J(U) the gradient with
    # respect to the controls vanishes, projected on the box where a control sits on a bound
    # (none does at this optimum, so it is the plain gradient). "Vanishes" is relative to the
    # gradient at the zero-control start; the solver stops at |k|/(1+|U|) < 1e-3.
    problem, *results = runs
    grad = jax.jit(jax.grad(lambda U: _total_cost(problem, U)))
    g0 = float(jnp.max(jnp.abs(grad(jnp.zeros_like(results[0].U)))))
    assert g0 > 1.0  # the start is far from stationary: the scale is meaningful
    lo, hi = problem.u_lower, problem.u_upper
    for name, res in zip(
        ["hanging_ilqr", "hanging_ddp", "near_ilqr", "near_ddp"], results, strict=True
    ):
        assert res.status_name == "converged", name
        projected = jnp.clip(res.U - grad(res.U), lo, hi) - res.U
        assert float(jnp.max(jnp.abs(projected))) < 1e-3 * g0, name


#: A one-step (T = 1) swing-up with the RK4 model: from a moving, tilted state, RK4's inner
#: stages feed u back through the nonlinear vector field, so x_1 = f(x_0, u) is not affine in
#: u (f_uu != 0); with Euler it would be, and DDP's extra term would vanish.
ONE_STEP = cartpole_swingup(horizon=1, method="rk4")


@jax.jit
def _one_step_derivatives(x0, u):
    """The gradient g and Hessian H of J(u) = l(x0, u) + phi(f(x0, u)) (jax.grad and
    jax.hessian of the total cost, one program), and Gauss-Newton's l_uu + f_u'phi_xx f_u."""
    p, dyn, cost, term = ONE_STEP.params, ONE_STEP.dynamics, ONE_STEP.cost, ONE_STEP.terminal_cost

    def J(u):
        return cost(x0, u, 0, p) + term(dyn(x0, u, 0, p), p)

    fu = jax.jacfwd(lambda u: dyn(x0, u, 0, p))(u)
    phi_xx = jax.hessian(lambda x: term(x, p))(dyn(x0, u, 0, p))
    H_gn = jax.hessian(lambda u: cost(x0, u, 0, p))(u) + fu.T @ phi_xx @ fu
    return jax.grad(J)(u), jax.hessian(J)(u), H_gn


def test_one_step_ddp_takes_exactly_newtons_step():
    """With T = 1 the total cost is J(u) = l(x0, u) + phi(f(x0, u)), and the value after the
    step is phi itself, so DDP's V_x' = phi_x, V_xx' = phi_xx and its quadratic model is J's
    exact second-order Taylor expansion in u:
        Q_u  = l_u + f_u'phi_x                           = dJ/du,
        Q_uu = l_uu + f_u'phi_xx f_u + phi_x . f_uu      = d2J/du2.
    With no regularisation (mu_init = 0) the step k = -Q_uu^-1 Q_u is Newton's -H^-1 g, and
    the forward pass u = U + alpha k + K (x_0 - X_0) applies it unchanged (x_0 is fixed, so
    the feedback K does nothing). For T > 1 DDP is not Newton: its V_x at earlier steps
    includes the step's own terms (Q_ux'k), and the forward pass rolls the nonlinear model.
    Gauss-Newton (iLQR) drops phi_x . f_uu, and its step differs; float64 throughout."""
    with jax.enable_x64(True):
        x0 = jnp.array([0.3, -0.5, 2.5, 1.5])
        U0 = jnp.array([[2.0]])
        g, H, H_gn = _one_step_derivatives(x0, U0[0])
        g, H, H_gn = np.asarray(g), np.asarray(H), np.asarray(H_gn)
        newton = -np.linalg.solve(H, g)
        gauss_newton = -np.linalg.solve(H_gn, g)
        res = ddp(
            ONE_STEP.dynamics,
            ONE_STEP.cost,
            x0,
            U0,
            ONE_STEP.params,
            terminal_cost=ONE_STEP.terminal_cost,
            mu_init=0.0,
            max_iterations=1,
        )
        assert res.U.dtype == jnp.float64
    assert H[0, 0] > 0  # a minimising Newton step (DDP accepts only a positive Q_uu)
    np.testing.assert_allclose(np.asarray(res.k[0]), newton, rtol=1e-6)
    # the full step was accepted (the line search's alpha = 1) and moved the control by it
    np.testing.assert_allclose(np.asarray(res.U[0] - U0[0]), newton, rtol=1e-6)
    assert float(res.cost) < float(res.initial_cost)
    # the dynamics' curvature matters here: Gauss-Newton's step is off by far more than rtol
    assert abs(gauss_newton[0] - newton[0]) > 1e-3 * abs(newton[0])
