"""Tests for direct collocation (bellmax.control.collocation) on the cart-pole swing-up.

The swing-up (Gymnasium's cart-pole constants, |F| <= 10 N, |x| <= 2.4 m, hanging at rest
to upright at rest in 3 s, N = 100, minimum effort `integral F^2 dt`) is the transcription of
bench/collocation.py. CasADi is not installed in the main environment, so the CasADi + IPOPT
optimum of the same transcriptions is stored below (bench/collocation.py measured it with
CasADi 3.8.2 / IPOPT 3.14, SX + nlpsol, from the same initial guess); when casadi is
importable the test recomputes it instead. Independent checks: the KKT residuals, the defects
recomputed here with numpy, the bounds, and a fine RK4 simulation of the Hermite-Simpson
controls that must land on the goal.
"""

from __future__ import annotations

import importlib.util

import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.collocation import METHODS, _rate_cost, collocation, collocation_from_problem
from bellmax.control.problems import cartpole_swingup
from bellmax.envs.cartpole import CartPoleParams, cartpole_derivatives

N, DURATION = 100, 3.0
START, GOAL = np.array([0.0, 0.0, np.pi, 0.0]), np.zeros(4)
X_BOUND = np.array([2.4, np.inf, np.inf, np.inf])
#: CasADi 3.8.2 + IPOPT optimum of the same transcriptions (see the module docstring).
CASADI_COST = {"trapezoidal": 58.05622509417728, "hermite_simpson": 57.901672688509635}


#: The swing-up as a `Problem` (its `f` is Gymnasium's cart-pole vector field); the trapezoidal
#: solve goes through `collocation_from_problem`, Hermite-Simpson through `collocation`, so
#: both entry points are covered while sharing one compiled solver per transcription.
PROBLEM = cartpole_swingup(horizon=N, dt=DURATION / N, x_limit=2.4)
f = PROBLEM.f


def effort(x, u, t, p):
    return jnp.sum(u**2)


def _solve(method, **kw):
    return collocation(
        f,
        effort,
        START,
        DURATION,
        N,
        x_goal=GOAL,
        method=method,
        params=CartPoleParams(),
        u_lower=[-10.0],
        u_upper=[10.0],
        x_lower=-X_BOUND,
        x_upper=X_BOUND,
        **kw,
    )


@pytest.fixture(scope="module")
def trap():
    return collocation_from_problem(PROBLEM, method="trapezoidal", running_cost=effort)


@pytest.fixture(scope="module")
def hs():
    return _solve("hermite_simpson")


def _casadi_cost(method: str) -> float:
    if importlib.util.find_spec("casadi") is None:
        return CASADI_COST[method]
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    import collocation as bench

    return float(bench.casadi_swingup(method, N, DURATION)["cost"])


#: Relative tolerance on the optimal cost against CasADi + IPOPT. Both solvers stop at a scaled
#: KKT error of 1e-8 (IPOPT's default `tol`, bellmax.control.nlp's default too), which moves
#: the optimal cost by far less than 1e-8 relative (Hermite-Simpson, the same problem on both
#: sides: 2.8e-9). The trapezoidal solve goes through the `Problem`, whose x0 is float32:
#: theta_0 = float32(pi) = pi + 8.7e-8 rad, and with the initial costate lambda_theta ~ 49 that
#: moves the optimum by ~4.3e-6, 7.4e-8 relative (measured 8.0e-8; solving from the exact pi
#: gives 2.8e-9 again). 1e-6 covers both with margin, and is ~2700x tighter than the 0.27%
#: between the two transcriptions' optima, so a transcription mix-up fails.
CASADI_RTOL = 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_swingup_matches_casadi_optimum(method, trap, hs):
    res = trap if method == "trapezoidal" else hs
    assert res.status_name == "converged"
    ref = _casadi_cost(method)
    assert abs(float(res.cost) - ref) <= CASADI_RTOL * ref, (float(res.cost), ref)
    # the tolerance separates the transcriptions: the other one's optimum is far outside it
    other = CASADI_COST["hermite_simpson" if method == "trapezoidal" else "trapezoidal"]
    assert abs(other - ref) > 1000 * CASADI_RTOL * ref


@pytest.mark.parametrize("method", METHODS)
def test_solution_is_feasible_and_stationary(method, trap, hs):
    res = trap if method == "trapezoidal" else hs
    X, U = np.asarray(res.X), np.asarray(res.U)
    assert X.shape == (N + 1, 4) and U.shape == (N + 1, 1) and res.U_mid.shape == (N, 1)
    np.testing.assert_allclose(X[0], START, atol=1e-6)  # the Problem stores float32
    np.testing.assert_array_equal(X[-1], GOAL)
    assert np.all(np.abs(U) <= 10.0 + 1e-9) and np.all(np.abs(np.asarray(res.U_mid)) <= 10 + 1e-9)
    assert np.all(np.abs(X[:, 0]) <= 2.4 + 1e-9)
    assert float(res.constraint_violation) < 1e-8
    assert float(res.dual_infeasibility) < 1e-6
    assert np.abs(U).max() > 9.9  # the force limit binds: the bounds are doing work
    assert X[:, 2].max() > np.pi  # the pole swings through (an actual swing-up)


def test_trapezoidal_defects_recomputed_independently(trap):
    p = CartPoleParams()
    X, U = np.asarray(trap.X), np.asarray(trap.U)
    F = np.stack([np.asarray(cartpole_derivatives(X[k], U[k, 0], p)) for k in range(N + 1)])
    h = DURATION / N
    defects = X[1:] - X[:-1] - 0.5 * h * (F[:-1] + F[1:])
    assert np.abs(defects).max() < 1e-7
    cost = np.sum(0.5 * h * (U[:-1, 0] ** 2 + U[1:, 0] ** 2))
    assert abs(cost - float(trap.cost)) < 1e-9 * cost


def test_hermite_simpson_controls_reach_the_goal_in_simulation(hs):
    # Simulate the continuous system under the quadratic control interpolant with fine RK4.
    p = CartPoleParams()
    U, Um = np.asarray(hs.U)[:, 0], np.asarray(hs.U_mid)[:, 0]
    h, sub = DURATION / N, 8
    dt = h / sub

    def deriv(x, u):  # Gymnasium's cart-pole equations, written out again in numpy
        tot, pml = p.masscart + p.masspole, p.masspole * p.length
        ct, st = np.cos(x[2]), np.sin(x[2])
        temp = (u + pml * x[3] ** 2 * st) / tot
        tha = (p.gravity * st - ct * temp) / (p.length * (4 / 3 - p.masspole * ct**2 / tot))
        return np.array([x[1], temp - pml * tha * ct / tot, x[3], tha])

    def u_at(k, s):  # s in [0, 1] within interval k
        return U[k] * (1 - s) * (1 - 2 * s) + 4 * Um[k] * s * (1 - s) + U[k + 1] * s * (2 * s - 1)

    x = START.copy()
    for k in range(N):
        for j in range(sub):
            s0 = j / sub
            k1 = deriv(x, u_at(k, s0))
            k2 = deriv(x + 0.5 * dt * k1, u_at(k, s0 + 0.5 / sub))
            k3 = deriv(x + 0.5 * dt * k2, u_at(k, s0 + 0.5 / sub))
            k4 = deriv(x + dt * k3, u_at(k, s0 + 1 / sub))
            x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert np.abs(x - GOAL).max() < 0.02, x


def test_two_transcriptions_agree(trap, hs):
    # Different quadratures of the same continuous problem: close optima.
    assert abs(float(trap.cost) - float(hs.cost)) < 0.02 * float(hs.cost)
    assert trap.costates.shape == (N, 4)


def test_from_problem_default_running_cost_is_the_step_cost_rate():
    L = _rate_cost(PROBLEM.cost, PROBLEM.dt)
    x, u = jnp.array([0.1, 0.2, 0.3, 0.4]), jnp.array([2.0])
    expected = float(PROBLEM.cost(x, u, 0, PROBLEM.params)) / (DURATION / N)
    assert np.isclose(float(L(x, u, 0.0, PROBLEM.params)), expected, rtol=1e-6)
    assert _rate_cost(PROBLEM.cost, PROBLEM.dt) is L  # cached: one compiled solver
    with pytest.raises(TypeError, match="Problem"):
        collocation_from_problem("cartpole")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "euler"}, "method must be one of"),
        ({"u_lower": [10.0], "u_upper": [-10.0]}, "u_lower > u_upper"),
        ({"x_lower": [3.0, -1, -1, -1], "x_upper": [4.0, 1, 1, 1]}, "outside the state bounds"),
        ({"x_goal": [3.0, 0, 0, 0]}, "x_goal"),
        ({"x_goal": [0.0, 0.0]}, "x_goal must have"),
        ({"X_init": np.zeros((5, 4))}, "X_init"),
        ({"U_init": np.zeros((N + 1, 2))}, "U_init"),
        ({"num_intervals": 1}, "num_intervals"),
        ({"duration": -1.0}, "duration"),
        ({"x_lower": [np.nan] * 4}, "NaN"),
    ],
)
def test_bad_input_raises(kwargs, match):
    base = {
        "x_goal": GOAL,
        "params": CartPoleParams(),
        "u_lower": [-10.0],
        "u_upper": [10.0],
        "x_lower": -X_BOUND,
        "x_upper": X_BOUND,
    }
    base.update(kwargs)
    duration = base.pop("duration", DURATION)
    n = base.pop("num_intervals", N)
    with pytest.raises(ValueError, match=match):
        collocation(f, effort, START, duration, n, **base)


def test_a_vector_cost_is_refused_not_summed():
    # collocation summed a running cost's vector over its entries too (x**2 for sum(x**2)
    # converged on another problem, silently), where ilqr refuses it.
    run = {"x_goal": GOAL, "params": CartPoleParams(), "u_lower": [-10.0], "u_upper": [10.0]}
    with pytest.raises(ValueError, match=r"running_cost\(x, u, t, params\) must return a scalar"):
        collocation(f, lambda x, u, t, p: x**2, START, DURATION, 10, **run)
    with pytest.raises(ValueError, match=r"terminal_cost\(x, params\) must return a scalar"):
        collocation(f, effort, START, DURATION, 10, terminal_cost=lambda x, p: x**2, **run)


def test_non_finite_cost_and_unknown_control_dim_raise():
    with pytest.raises(ValueError, match="non-finite"):
        collocation(
            f,
            lambda x, u, t, p: jnp.log(u[0] - 100.0),
            START,
            DURATION,
            10,
            x_goal=GOAL,
            params=CartPoleParams(),
            u_lower=[-10.0],
            u_upper=[10.0],
        )
    with pytest.raises(ValueError, match="control dimension"):
        collocation(f, effort, START, DURATION, 10, params=CartPoleParams())
    with pytest.raises(TypeError, match="callable"):
        collocation(None, effort, START, DURATION, 10, u_lower=[-1.0])
    with pytest.raises(TypeError, match="num_intervals must be an int"):
        collocation(f, effort, START, DURATION, 10.0, u_lower=[-1.0])
