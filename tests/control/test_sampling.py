"""CEM and MPPI (bellmax.control.sampling) on problems with known answers."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.ilqr import ilqr_problem
from bellmax.control.problems import Status, make_problem, total_cost
from bellmax.control.sampling import (
    RolloutCost,
    SamplingConfig,
    make_sampling_mpc,
    mppi_temperature,
    plan,
)

A = jnp.asarray([[1.0, 0.1], [0.0, 1.0]])
B = jnp.asarray([[0.005], [0.1]])


def _lin(x, u, t, params):
    return A @ x + B @ u


def _cost(x, u, t, params):
    return 0.5 * (x @ x + 0.1 * u @ u)


def _term(x, params):
    return 5.0 * x @ x


@pytest.fixture(scope="module")
def lq():
    """A double integrator, 15 steps from (1, 0), its optimum by iLQR (exact for LQ)."""
    problem = make_problem(
        _lin, _cost, [1.0, 0.0], 15, terminal_cost=_term, u_lower=[-5.0], u_upper=[5.0]
    )
    opt = ilqr_problem(problem)
    return problem, float(opt.cost), np.asarray(opt.U)


def test_mppi_temperature_by_hand():
    # costs 0 and 1, tolerance 0.1: the mean gap is 0.5, so E_w[J] - J_min = w_1 must be
    # 0.05: exp(-1/lambda) / (1 + exp(-1/lambda)) = 0.05 -> lambda = 1 / ln 19.
    lam = mppi_temperature(jnp.asarray([0.0, 1.0]), 0.1)
    assert float(lam) == pytest.approx(1.0 / math.log(19.0), rel=1e-4)
    lam_jit = jax.jit(mppi_temperature, static_argnums=1)(jnp.asarray([0.0, 1.0]), 0.1)
    assert float(lam_jit) == pytest.approx(float(lam), rel=1e-6)
    # a larger tolerance allows a hotter (more random) weighting; non-finite costs ignored
    assert float(mppi_temperature(jnp.asarray([0.0, 1.0, jnp.nan]), 0.5)) > float(lam)
    assert float(mppi_temperature(jnp.asarray([0.0, 1.0, jnp.inf]), 0.1)) == pytest.approx(
        float(lam), rel=1e-4
    )


@pytest.mark.parametrize("method", ["cem", "mppi"])
def test_sampling_matches_ilqr_on_a_linear_quadratic_problem(lq, method):
    # Shows: from a zero plan, CEM and MPPI (temperature chosen per round) reach the exact
    # optimum's cost within 2%, and the plan's first control within 0.15 of the optimum's.
    problem, j_opt, u_opt = lq
    std = 0.2 if method == "cem" else 0.05  # MPPI keeps its noise: a narrower one
    cfg = SamplingConfig(method=method, num_samples=500, iterations=30, init_std=std)
    res = plan(
        RolloutCost(_lin, _cost, _term),
        problem.x0,
        jnp.zeros((15, 1)),
        jax.random.key(0),
        None,
        u_lower=[-5.0],
        u_upper=[5.0],
        config=cfg,
    )
    j = float(total_cost(problem, res.U))
    assert j_opt <= j + 1e-4
    assert j < 1.02 * j_opt, (j, j_opt)
    assert abs(float(res.U[0, 0]) - u_opt[0, 0]) < 0.15
    assert res.status_name == "max_iterations"
    assert float(res.cost) == pytest.approx(j, rel=1e-5)


def test_cem_reaches_a_quadratic_optimum_inside_the_box():
    # sum (U - target)^2 with the target partly outside the box: the optimum is the clip.
    target = jnp.asarray([[0.3, -2.0], [1.5, 0.7], [-0.4, 0.0]])

    def objective(x0, U, key, params):
        return jnp.sum((U - params) ** 2)

    res = plan(
        objective,
        jnp.zeros(1),
        jnp.zeros((3, 2)),
        jax.random.key(1),
        target,
        u_lower=[-1.0, -1.0],
        u_upper=[1.0, 1.0],
        config=SamplingConfig(num_samples=300, iterations=20),
    )
    np.testing.assert_allclose(res.U, jnp.clip(target, -1, 1), atol=0.02)


def test_mpc_warm_starts_and_regulates(lq):
    # Receding horizon on the double integrator: the state goes to the origin, the key
    # advances, and the plan is the last one shifted by a step.
    problem, _, _ = lq
    mpc = make_sampling_mpc(
        problem,
        horizon=10,
        config=SamplingConfig(method="mppi", num_samples=200, iterations=3, init_std=0.05),
    )
    state = mpc.init()
    x = problem.x0
    for _ in range(60):
        u, new = mpc.step(state, x, None)
        assert not np.array_equal(
            np.asarray(jax.random.key_data(new.key)), np.asarray(jax.random.key_data(state.key))
        )
        np.testing.assert_array_equal(new.U[-1], new.U[-2])
        x = _lin(x, u, 0, None)
        state = new
    assert float(jnp.linalg.norm(x)) < 0.1
    assert int(state.steps) == 60 and np.isfinite(float(state.temperature))


def test_a_nan_model_keeps_the_last_plan_and_reports_divergence():
    def objective(x0, U, key, params):
        return jnp.sum(U**2) * jnp.nan

    mpc = make_sampling_mpc(
        objective, horizon=4, u_lower=[-1.0], u_upper=[1.0], config=SamplingConfig(num_samples=8)
    )
    U0 = jnp.full((4, 1), 0.25)
    u, state = mpc.step(mpc.init(U=U0), jnp.zeros(2), None)
    assert state.status_name == "diverged"
    assert float(u[0]) == 0.25 and np.isfinite(np.asarray(state.U)).all()
    assert int(state.status) == int(Status.DIVERGED)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="method"):
        SamplingConfig(method="ppo")
    with pytest.raises(ValueError, match="num_samples"):
        SamplingConfig(num_samples=0)
    with pytest.raises(ValueError, match="finite control box"):
        make_sampling_mpc(lambda *a: 0.0, horizon=3, u_lower=[-np.inf], u_upper=[1.0])
    with pytest.raises(ValueError, match="give horizon"):
        make_sampling_mpc(lambda *a: 0.0, u_lower=[-1.0], u_upper=[1.0])
    with pytest.raises(TypeError, match="Problem or an objective"):
        make_sampling_mpc(3)
    with pytest.raises(ValueError, match=r"U0 must be \[H, 1\]"):
        plan(
            lambda *a: 0.0,
            jnp.zeros(1),
            jnp.zeros((3, 2)),
            jax.random.key(0),
            None,
            u_lower=[-1.0],
            u_upper=[1.0],
        )


def test_a_vector_cost_is_refused_not_summed():
    # RolloutCost summed whatever the stage cost returned: x**2 (a vector) planned another
    # problem than sum(x**2), silently (CEM 15.5, MPPI 16.2), where ilqr refuses it.
    run = {"u_lower": [-5.0], "u_upper": [5.0], "config": SamplingConfig(iterations=1)}
    args = (jnp.array([1.0, 0.0]), jnp.zeros((4, 1)), jax.random.key(0), None)
    vector = RolloutCost(_lin, lambda x, u, t, p: x**2, _term)
    with pytest.raises(ValueError, match=r"RolloutCost's cost\(x, u, t, params\) .*shape \(2,\)"):
        plan(vector, *args, **run)
    terminal = RolloutCost(_lin, _cost, lambda x, p: x**2)
    with pytest.raises(ValueError, match=r"RolloutCost's terminal_cost\(x, params\) must"):
        plan(terminal, *args, **run)


def test_an_objective_with_a_batch_method_is_asked_for_all_samples_at_once():
    # `_sample_costs` hands every sample to `objective.batch` in one call when the objective
    # has one (the ensemble objective keeps its member-first layout that way), else vmaps;
    # both give the same plan when `batch` is the one-by-one costs.
    class Quadratic:
        calls = 0

        def __call__(self, x0, U, key, params):
            return jnp.sum((U[:, 0] - params) ** 2) + 0.0 * x0[0]

        def batch(self, x0, U, keys, params):
            Quadratic.calls += 1
            return jax.vmap(lambda u, k: self(x0, u, k, params))(U, keys)

    class Plain:  # the same costs, no batch method
        def __call__(self, x0, U, key, params):
            return Quadratic()(x0, U, key, params)

    cfg = SamplingConfig(method="cem", num_samples=32, iterations=3, seed=0)
    x0, target = jnp.zeros(1), jnp.asarray(0.7)
    plans = []
    for objective in (Quadratic(), Plain()):
        mpc = make_sampling_mpc(objective, horizon=5, u_lower=[-1.0], u_upper=[1.0], config=cfg)
        u, state = mpc.step(mpc.init(), x0, target)
        plans.append(np.asarray(state.U))
    assert Quadratic.calls > 0  # traced through `batch`
    np.testing.assert_allclose(plans[0], plans[1], rtol=1e-6, atol=1e-6)
    assert abs(float(plans[0][0, 0]) - 0.7) < 0.2


def test_an_objective_that_is_not_one_number_per_plan_is_refused():
    # A user's objective returning per-step costs `[H]` (or a batch method returning more
    # than one cost per plan) failed deep inside the round's sorting and indexing, naming
    # neither the objective nor the fix; an integer total is a cost like any other.
    run = {"u_lower": [-1.0], "u_upper": [1.0], "config": SamplingConfig(iterations=1)}
    args = (jnp.zeros(1), jnp.zeros((4, 1)), jax.random.key(0), None)
    with pytest.raises(ValueError, match=r"one real number.*float32 of shape \(4,\).*jnp.sum"):
        plan(lambda x0, U, key, p: U[:, 0] ** 2, *args, **run)
    with pytest.raises(ValueError, match=r"one real number.*returned tuple"):
        plan(lambda x0, U, key, p: (jnp.sum(U), 0.0), *args, **run)

    class Batched:
        def __call__(self, x0, U, key, params):
            return jnp.sum(U**2)

        def batch(self, x0, U, keys, params):
            return U[..., 0] ** 2  # [N, H]

    with pytest.raises(ValueError, match=r"batch\(.*N real costs.*shape \(\d+, 4\)"):
        plan(Batched(), *args, **run)
    counted = plan(lambda x0, U, key, p: jnp.sum(U > 0).astype(jnp.int32), *args, **run)
    assert counted.cost.dtype == jnp.float32 and np.isfinite(float(counted.cost))


def test_a_fresh_objective_per_call_does_not_keep_every_program():
    # The planner compiles one program per objective (a static argument). With `jax.jit`
    # it kept each for the life of the process, with what the objective closes over: a
    # notebook cell run 40 times with a fresh lambda over a 4 MB array grew the process by
    # ~9.5 MB a run. Only the most recently used objectives' programs are kept now.
    import gc
    import weakref

    from bellmax.core.caches import KEPT_STATICS

    run = {"u_lower": [-1.0], "u_upper": [1.0], "config": SamplingConfig(iterations=1)}
    args = (jnp.zeros(1), jnp.zeros((2, 1)), jax.random.key(0), None)

    def fresh(weight):
        return lambda x0, U, key, p: weight * jnp.sum(U**2)

    first = fresh(1.0)
    ref = weakref.ref(first)
    plan(first, *args, **run)
    del first
    for i in range(KEPT_STATICS):
        plan(fresh(2.0 + i), *args, **run)
    gc.collect()
    assert ref() is None
