"""Tests for bellmax.control.ilqr: derivatives, exactness on LQ problems, box QP, swing-up."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from bellmax.control.ilqr import (
    ILQRConfig,
    ILQRProblem,
    _box_qp,
    _derivatives,
    _prepare,
    ilqr,
    ilqr_problem,
    rollout,
)
from bellmax.control.lqr import finite_horizon_lqr
from bellmax.control.problems import cartpole_swingup

# --------------------------------------------------------------------- a small test problem
_A = jnp.array([[1.0, 0.1], [0.0, 1.0]])
_B = jnp.array([[0.0], [0.1]])


def _dyn(x, u, t, p):
    """Linear when p = 0; p > 0 makes large controls amplify the state (rollouts blow up)."""
    return _A @ x + _B @ u + p * x * u[0] ** 2


def _cost(x, u, t, p):
    return 0.5 * (x @ x + 0.1 * u @ u)


def _term(x, p):
    return 5.0 * x @ x


_X0 = jnp.array([1.0, -0.5])
_T = 30
_CFG = ILQRConfig(mu_init=0.0, max_iterations=30)  # one compiled solver for these tests


def test_lq_problem_is_solved_exactly_in_one_step():
    res = ilqr(_dyn, _cost, _X0, jnp.zeros((_T, 1)), 0.0, terminal_cost=_term, config=_CFG)
    ref = finite_horizon_lqr(_A, _B, np.eye(2), 0.1 * np.eye(1), 10 * np.eye(2), horizon=_T)
    assert res.status_name == "converged"
    assert int(res.iterations) <= 3
    assert float(res.cost) == pytest.approx(float(ref.value(_X0)), rel=1e-4)
    np.testing.assert_allclose(res.K, ref.K, rtol=1e-3, atol=1e-4)
    X, J = rollout(_dyn, _cost, _term, _X0, res.U, 0.0)
    np.testing.assert_allclose(X, res.X, atol=1e-6)
    assert float(J) == pytest.approx(float(res.cost), rel=1e-6)


def test_a_step_shrunk_by_the_regularisation_is_not_convergence():
    # Controls whose optimum is small in their units (x' = x + 1e5 u, cost x^2/2 + 1e10 u^2/2):
    # with the default mu_init the regularised first step was a fraction of the Newton step,
    # below gtol in control units, and iLQR reported CONVERGED after one iteration at 6.3x the
    # optimal cost. It now goes on until the model predicts nothing more to gain.
    A, B, Q, R = (jnp.array([[v]]) for v in (1.0, 1e5, 1.0, 1e10))

    def dyn(x, u, t, p):
        return A @ x + B @ u

    def cost(x, u, t, p):
        return 0.5 * x @ Q @ x + 0.5 * u @ R @ u

    x0, T = jnp.array([1.0]), 50
    res = ilqr(dyn, cost, x0, jnp.zeros((T, 1)))
    ref = finite_horizon_lqr(A, B, Q, R, jnp.zeros((1, 1)), horizon=T)
    assert res.status_name == "converged" and int(res.iterations) > 1
    assert float(res.cost) == pytest.approx(float(ref.value(x0)), rel=1e-5)


def test_jit_vmap_and_divergence_status():
    # the third start has a non-finite cost: under jit it is reported DIVERGED, not NaN
    x0s = jnp.array([[1.0, 0.0], [0.0, 1.0], [1e30, 0.0]])

    def solve(x0):
        return ilqr(_dyn, _cost, x0, jnp.zeros((_T, 1)), 0.0, terminal_cost=_term, config=_CFG)

    batch = jax.jit(jax.vmap(solve))(x0s)
    assert batch.X.shape == (3, _T + 1, 2)
    assert [int(s) for s in batch.status] == [0, 0, 2]
    assert int(batch.iterations[2]) == 0
    one = solve(x0s[1])
    assert float(batch.cost[1]) == pytest.approx(float(one.cost), rel=1e-4)
    with pytest.raises(ValueError, match="must be finite there"):
        solve(x0s[2])


def test_overflowing_steps_are_rejected_never_silent():
    # full steps overflow to inf/NaN: the line search rejects them, the result stays finite
    res = ilqr(_dyn, _cost, _X0, jnp.zeros((_T, 1)), 1e4, terminal_cost=_term, config=_CFG)
    assert np.isfinite(float(res.cost)) and bool(jnp.all(jnp.isfinite(res.X)))
    assert bool(jnp.all(jnp.isfinite(res.U))) and bool(jnp.all(jnp.isfinite(res.K)))
    assert float(res.cost) <= float(res.initial_cost)
    lin = ilqr(_dyn, _cost, _X0, jnp.zeros((_T, 1)), 0.0, terminal_cost=_term, config=_CFG)
    assert float(jnp.max(jnp.abs(res.U))) < float(jnp.max(jnp.abs(lin.U)))


# --------------------------------------------------------------------- derivatives vs FD
def test_derivatives_match_finite_differences():
    problem = cartpole_swingup(horizon=3, q=(1.0, 0.1, 1.0, 0.1))
    dyn, cost, p = problem.dynamics, problem.cost, problem.params
    rng = np.random.default_rng(0)
    eps = 1e-6

    @jax.jit
    def finite_differences(z, t):
        E = eps * jnp.eye(5)

        def f(z):
            return dyn(z[:4], z[4:], t, p)

        def c(z):
            return cost(z[:4], z[4:], t, p)

        def central(fn):
            return jax.vmap(lambda e: (fn(z + e) - fn(z - e)) / (2 * eps), out_axes=-1)(E)

        return central(f), central(c), central(jax.grad(c)), central(jax.jacfwd(f))

    with jax.enable_x64(True):
        X = jnp.asarray(rng.normal(size=(4, 4)))
        U = jnp.asarray(rng.normal(size=(3, 1)) * 3)
        cfg = ILQRConfig(second_order=True)
        model = ILQRProblem(dyn, cost, problem.terminal_cost, p)
        d = jax.jit(_derivatives, static_argnums=3)(model, X, U, cfg)
        for t in range(3):
            z = jnp.concatenate([X[t], U[t]])
            F_fd, lz_fd, lzz_fd, fzz_fd = finite_differences(z, t)
            np.testing.assert_allclose(d.F[t], F_fd, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(d.lz[t], lz_fd, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(d.lzz[t], lzz_fd, rtol=1e-6, atol=1e-8)
            # DDP's second-order dynamics term d^2 f_i / dz^2
            np.testing.assert_allclose(d.fzz[t], fzz_fd, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------- box QP
@pytest.mark.parametrize("m", [1, 3])
def test_box_qp_matches_scipy(m):
    rng = np.random.default_rng(m)
    for _ in range(4):
        L = rng.normal(size=(m, m))
        H = L @ L.T + 0.1 * np.eye(m)
        g = rng.normal(size=m) * 3
        lo, hi = -rng.uniform(0.1, 1, m), rng.uniform(0.1, 1, m)
        k, free, ok = jax.jit(_box_qp, static_argnums=4)(
            jnp.asarray(H, jnp.float32),
            jnp.asarray(g, jnp.float32),
            jnp.asarray(lo, jnp.float32),
            jnp.asarray(hi, jnp.float32),
            8,
        )
        ref = scipy.optimize.minimize(
            lambda k, H=H, g=g: 0.5 * k @ H @ k + g @ k,
            np.zeros(m),
            jac=lambda k, H=H, g=g: H @ k + g,
            bounds=list(zip(lo, hi, strict=True)),
            method="L-BFGS-B",
            options={"gtol": 1e-10},
        )
        assert bool(ok)
        np.testing.assert_allclose(k, ref.x, atol=1e-4)
        at_bound = (np.abs(ref.x - lo) < 1e-6) | (np.abs(ref.x - hi) < 1e-6)
        assert not np.any(np.asarray(free) & at_bound)


def test_box_qp_reports_an_indefinite_hessian():
    k, free, ok = _box_qp(-jnp.eye(1), jnp.ones(1), -jnp.ones(1), jnp.ones(1), 8)
    assert not bool(ok)


# --------------------------------------------------------------------- swing-up
@pytest.fixture(scope="module")
def swingup():
    problem = cartpole_swingup()
    return problem, ilqr_problem(problem)


def test_ilqr_swings_the_cartpole_up(swingup):
    problem, res = swingup
    assert res.status_name == "converged", res.status_name
    assert res.converged is True  # a Python bool on the host (StatusFields)
    assert int(res.iterations) < 100
    np.testing.assert_allclose(res.X[0], problem.x0)
    np.testing.assert_allclose(res.X[-1], problem.goal, atol=0.05)
    assert float(jnp.max(jnp.abs(res.U))) <= 10.0 + 1e-5
    history = np.asarray(res.cost_history[: int(res.iterations)])
    assert np.all(np.diff(history) <= 1e-6)  # monotone: every accepted step decreases J
    assert float(res.cost) < 0.01 * float(res.initial_cost)
    print(f"iLQR swing-up: {int(res.iterations)} iterations, cost {float(res.cost):.5f}")


def test_box_bounds_are_respected_and_active(swingup):
    problem, free = swingup
    tight = problem.replace(u_lower=jnp.array([-4.0]), u_upper=jnp.array([4.0]))
    res = ilqr_problem(tight)  # bounds are traced: same compiled solver as the fixture
    assert res.status_name == "converged", res.status_name
    assert float(jnp.max(jnp.abs(res.U))) <= 4.0 + 1e-6
    assert int(jnp.sum(jnp.abs(res.U) > 4.0 - 1e-4)) >= 10  # the bound is active
    assert float(res.cost) > float(free.cost)  # tighter bounds cost more effort
    np.testing.assert_allclose(res.X[-1], problem.goal, atol=0.05)


# --------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"u_lower": 1.0, "u_upper": -1.0}, ValueError, "u_lower > u_upper"),
        ({"U0": jnp.zeros(_T)}, ValueError, "U0 must be"),
        ({"x0": jnp.zeros((1, 2))}, ValueError, "x0 must be"),
        ({"x0": jnp.array([np.nan, 0.0])}, ValueError, "x0 must be finite"),
        # finite in float64, inf in the float32 the solve runs in: the message says why
        pytest.param(
            {"U0": np.full((_T, 1), 1e150)},
            ValueError,
            r"non-finite controls \(in float32, which holds numbers up to 3.4e\+38\)",
            marks=pytest.mark.filterwarnings("ignore:overflow encountered in cast"),  # (the point)
        ),
        ({"u_lower": jnp.zeros(3)}, ValueError, "u_lower must be"),
        ({"cost": lambda x, u, t, p: jnp.log(x[0] - 5.0)}, ValueError, "must be finite"),
        ({"cost": lambda x, u, t, p: x}, ValueError, "scalar"),
        # the terminal cost's shape too (a [1] failed in jax.grad, a [2] in a bool test)
        ({"terminal_cost": lambda x, p: x}, ValueError, r"terminal_cost must return a scalar"),
        (
            {"dynamics": lambda x, u, t, p: x if x[0] > 0 else -x},  # Python's if on a tracer
            TypeError,
            r"branches on a traced value .* jnp\.where",
        ),
        ({"max_iterations": 0}, ValueError, "max_iterations"),
        ({"mu_factor": 1.0}, ValueError, "mu_factor"),
        ({"mu_min": 10.0, "mu_max": 1.0}, ValueError, r"mu_max=1\.0 is below mu_min=10\.0"),
        ({"mu_min": 0.0}, ValueError, r"ILQRConfig\.mu_min must be a number > 0"),
        ({"max_iterations": 2.0}, TypeError, "ILQRConfig.max_iterations must be an int"),
        ({"second_order": 1}, TypeError, "ILQRConfig.second_order"),
        ({"rtol": "small"}, TypeError, "ILQRConfig.rtol"),
        ({"dynamics_hessian": "exact"}, ValueError, "dynamics_hessian"),
        ({"line_search": 3}, TypeError, "unknown option"),
        ({"config": {"max_iterations": 3}}, TypeError, "ILQRConfig"),
        ({"dynamics": None}, TypeError, "dynamics must be"),
        ({"x0": jnp.zeros(3)}, ValueError, r"failed for x0 of shape \(3,\) and u of shape"),
        (
            {"x0": jnp.zeros(3), "dynamics": lambda x, u, t, p: x[:2]},
            ValueError,
            r"has shape \(2,\), expected \(3,\)",
        ),
        ({"dynamics": lambda x, u, p: x}, TypeError, r"called as f\(x, u, t, params\)"),
    ],
)
def test_bad_input(kwargs, err, match):
    args = {"dynamics": _dyn, "cost": _cost, "x0": _X0, "U0": jnp.zeros((_T, 1))}
    for k in list(args):
        if k in kwargs:
            args[k] = kwargs.pop(k)
    with pytest.raises(err, match=match):
        ilqr(args["dynamics"], args["cost"], args["x0"], args["U0"], 0.0, **kwargs)


def test_terminal_cost_by_position_is_named_with_the_signature():
    # ilqr(dyn, cost, terminal_cost, x0, U0) gave JAX's "Value '<function _term>' with dtype
    # object is not a valid JAX array type"
    with pytest.raises(TypeError) as info:
        ilqr(_dyn, _cost, _term, _X0, jnp.zeros((_T, 1)))
    text = str(info.value)
    assert text.startswith(
        "x0 must be an array of numbers (the initial state [n]), got the function _term."
    )
    assert "ilqr(dynamics, cost, x0, U0, params=None, *, terminal_cost=None" in text
    assert "terminal_cost=terminal_cost" in text
    with pytest.raises(TypeError, match=r"^U0 must be an array of numbers .*got str 'zeros'"):
        ilqr(_dyn, _cost, _X0, "zeros")
    with pytest.raises(
        TypeError, match=r"^x0 must be an array of numbers .*got list \[\[0\.0\], \[\]\]"
    ):
        ilqr(_dyn, _cost, [[0.0], []], jnp.zeros((_T, 1)))


def test_bfloat16_inputs_are_numbers():
    # numpy sees bfloat16 as kind 'V' (void): it is a float all the same, promoted with the
    # controls as JAX promotes them (a bf16 x0 with f32 controls solves in f32, as in 987eead)
    x0 = _X0.astype(jnp.bfloat16)
    _, x, U = _prepare(_dyn, _cost, _term, x0, jnp.zeros((_T, 1)), 0.0, None, None)
    assert x.dtype == U.dtype == jnp.float32
    np.testing.assert_array_equal(x, x0.astype(jnp.float32))
    with pytest.raises(TypeError, match=r"^x0 must be an array of numbers .*got ndarray"):
        _prepare(_dyn, _cost, _term, np.ones(2, complex), jnp.zeros((_T, 1)), 0.0, None, None)


def test_problem_wrapper_checks_its_input(swingup):
    problem, _ = swingup
    with pytest.raises(ValueError, match="U0 has shape"):
        ilqr_problem(problem, jnp.zeros((5, 1)))
    with pytest.raises(TypeError, match="Problem"):
        ilqr_problem("cartpole")


def test_fresh_dynamics_per_call_do_not_keep_every_program():
    # The problem's functions are static fields of its tree, so `jax.jit` compiled and kept
    # one solver per fresh lambda for the life of the process; only the programs of the most
    # recently used problems are kept now. (JAX's own cache of argument layouts still holds
    # the functions of its last 4096 calls, not their programs.)
    import importlib

    from bellmax.core.caches import KEPT_STATICS

    module = importlib.import_module("bellmax.control.ilqr")  # (the attribute is the function)

    def fresh(gain):
        return lambda x, u, t, p: _A @ x + gain * (_B @ u)

    cfg = ILQRConfig(max_iterations=2)
    solved = set()
    for i in range(KEPT_STATICS + 1):
        ilqr(fresh(1.0 + i), _cost, _X0, jnp.zeros((4, 1)), 0.0, terminal_cost=_term, config=cfg)
        solved |= {key for key in module._solve_jit.kept_programs if key[0] == (cfg,)}
    assert len(solved) == KEPT_STATICS + 1  # one program per problem
    kept = [key for key in module._solve_jit.kept_programs if key[0] == (cfg,)]
    assert len(kept) == KEPT_STATICS
    assert len(module._first_step.kept_programs) <= KEPT_STATICS
