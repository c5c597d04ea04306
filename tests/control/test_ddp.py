"""Tests for bellmax.control.ddp: DDP swings the cart-pole up; where it pays and where not."""

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
