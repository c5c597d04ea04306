"""Tests for bellmax.tabular.dp: exact solvers vs a direct linear solve, and the book."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

import bellmax
from bellmax.core.errors import UnknownNameError
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.core.status import Status as CoreStatus
from bellmax.envs.blackjack import Blackjack
from bellmax.tabular import Status as PackageStatus
from bellmax.tabular.dp import (
    DPResult,
    Status,
    evaluate_policy,
    greedy_policy,
    modified_policy_iteration,
    policy_iteration,
    random_mdp,
    shortest_paths,
    soft_value_iteration,
    value_iteration,
)

GAMMA_DENSE, GAMMA_SPARSE = 0.9, 0.95


# ---------------------------------------------------------------------- references (numpy)
def _mrp(mdp: TabularMDP, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    P, R = mdp.dense_P(), np.asarray(mdp.R, np.float64)
    S = R.shape[0]
    if policy.ndim == 1:
        return P[np.arange(S), policy], R[np.arange(S), policy]
    return np.einsum("sa,sat->st", policy, P), (policy * R).sum(axis=1)


def exact_values(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    """v_pi by numpy's dense linear solve (gamma < 1)."""
    P, r = _mrp(mdp, np.asarray(policy))
    return np.linalg.solve(np.eye(len(r)) - float(mdp.gamma) * P, r)


def exact_optimum(mdp: TabularMDP) -> tuple[np.ndarray, np.ndarray]:
    """V* and a greedy policy, by policy iteration written in numpy (independent of dp.py)."""
    P, R, g = mdp.dense_P(), np.asarray(mdp.R, np.float64), float(mdp.gamma)
    pi = np.zeros(R.shape[0], int)
    for _ in range(100):
        v = exact_values(mdp, pi)
        q = R + g * P @ v
        new = np.where(q[np.arange(len(pi)), pi] >= q.max(axis=1) - 1e-12, pi, q.argmax(axis=1))
        if np.array_equal(new, pi):
            return v, pi
        pi = new
    raise AssertionError("numpy policy iteration did not converge")


@pytest.fixture(scope="module")
def dense_mdp() -> TabularMDP:
    return random_mdp(0, 20, 3, gamma=GAMMA_DENSE)


@pytest.fixture(scope="module")
def sparse_mdp() -> TabularMDP:
    return random_mdp(1, 30, 3, 4, gamma=GAMMA_SPARSE)


@pytest.fixture(scope="module", params=["dense", "sparse"])
def mdp(request, dense_mdp, sparse_mdp) -> TabularMDP:
    return dense_mdp if request.param == "dense" else sparse_mdp


@pytest.fixture(scope="module")
def optimum(mdp):
    return exact_optimum(mdp)


def _policies(mdp: TabularMDP) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    S, A = mdp.shape
    probs = rng.random((S, A))
    return {
        "deterministic": rng.integers(0, A, S),
        "stochastic": probs / probs.sum(axis=1, keepdims=True),
    }


# ---------------------------------------------------------------------- policy evaluation
@pytest.mark.parametrize("kind", ["deterministic", "stochastic"])
@pytest.mark.parametrize("method", ["direct", "jacobi", "gauss-seidel", "krylov"])
def test_evaluate_matches_linear_solve(mdp, method, kind):
    policy = _policies(mdp)[kind]
    res = evaluate_policy(mdp, policy, method=method, tol=1e-10)
    assert isinstance(res, DPResult)
    assert res.status_name == "converged" and res.converged
    want = exact_values(mdp, policy)
    err = np.max(np.abs(np.asarray(res.values) - want))
    assert err <= 1e-8
    assert err <= float(res.error_bound) + 1e-12  # the promised bound holds
    assert np.asarray(res.values).dtype == np.float64
    np.testing.assert_array_equal(np.asarray(res.policy), policy)
    P, r = _mrp(mdp, policy)
    q = np.asarray(mdp.R) + float(mdp.gamma) * mdp.dense_P() @ want
    np.testing.assert_allclose(np.asarray(res.q_values), q, atol=1e-8)


def test_an_iteration_that_stops_changing_short_of_the_optimum_is_not_converged():
    # Large values and gamma near 1: in float64 value iteration stops changing 200 away from
    # V* (the float iteration's own fixed point), and a residual of exactly 0 reported
    # "converged" with error_bound 0. The bound is taken at the rounding floor, which then
    # bounds the true error, and the status says the tolerance was not reached. The data
    # are exact in binary; V* is solved exactly (fractions) over all 8 policies.
    import itertools
    from fractions import Fraction

    P = np.array([[[0.5, 0.25, 0.25], [0.0, 0.75, 0.25]],
                  [[0.25, 0.5, 0.25], [0.5, 0.0, 0.5]],
                  [[0.125, 0.125, 0.75], [0.25, 0.25, 0.5]]])  # fmt: skip
    R = np.array([[1e15, 3.0], [-1e15, 0.1], [7.0, 1e15]])
    gamma = 1 - 2**-6
    mdp = TabularMDP(P, R, gamma)

    def exact(pi):  # (I - gamma P_pi) v = r_pi by Gauss-Jordan in fractions
        M = [[Fraction(int(i == j)) - Fraction(gamma) * Fraction(P[i, pi[i], j])
              for j in range(3)] + [Fraction(R[i, pi[i]])] for i in range(3)]  # fmt: skip
        for c in range(3):
            M[c] = [x / M[c][c] for x in M[c]]
            for r in range(3):
                if r != c:
                    M[r] = [a - M[r][c] * b for a, b in zip(M[r], M[c], strict=True)]
        return [row[3] for row in M]

    values = [exact(pi) for pi in itertools.product(range(2), repeat=3)]
    best = [max(vs) for vs in zip(*values, strict=True)]
    for solve in (value_iteration, modified_policy_iteration):
        res = solve(mdp, tol=1e-8)
        got = np.asarray(res.values)
        err = max(abs(Fraction(float(v)) - b) for v, b in zip(got, best, strict=True))
        assert err > 100 and res.status_name == "stalled", (solve.__name__, res.status_name)
        assert float(res.error_bound) >= err and float(res.residual) == 0.0
    # an ordinary problem converges as before, its bound far below the floor's
    ok = value_iteration(TabularMDP(P, R / 1e15, 0.9), tol=1e-8)
    assert ok.status_name == "converged" and float(ok.error_bound) <= 1e-8


def test_evaluate_iteration_limit_and_warm_start(sparse_mdp):
    pol = _policies(sparse_mdp)["deterministic"]
    res = evaluate_policy(sparse_mdp, pol, method="jacobi", max_iterations=3)
    assert res.status == Status.MAX_ITERATIONS and int(res.iterations) == 3
    exact = exact_values(sparse_mdp, pol)
    warm = evaluate_policy(sparse_mdp, pol, method="jacobi", v0=exact, tol=1e-6)
    assert int(warm.iterations) == 1 and warm.converged


def test_evaluate_improper_policy_at_gamma_one_diverges():
    env, params = bellmax.make("GridWorld4x4-v0")
    mdp = env.tabular_mdp(params)
    up = np.zeros(mdp.num_states, int)  # "always up" never reaches a corner from row 1+
    res = evaluate_policy(mdp, up, method="direct")
    assert res.status_name == "diverged"
    pi = policy_iteration(mdp, policy0=up)
    assert pi.status_name == "diverged" and int(pi.iterations) == 1


def test_gamma_one_without_a_terminal_state_diverges_even_when_the_solve_looks_finite():
    """I - P is singular for a chain that never ends, yet a backward-stable LU still returns
    finite (huge, ~1e16) values with a small residual: the chain itself is checked, in both
    layouts, and a chain that ends stays converged."""
    P = np.full((3, 2, 3), 1 / 3)
    R = np.ones((3, 2))
    endless = TabularMDP(P, R, 1.0)
    for mdp in (endless, TabularMDP(SparseTransitions.from_dense(P), R, 1.0)):
        assert evaluate_policy(mdp, np.zeros(3, int), method="direct").status_name == "diverged"
        assert policy_iteration(mdp).status_name == "diverged"
    P_end = np.zeros((3, 2, 3))
    P_end[0, :, 1] = P_end[1, :, 2] = P_end[2, :, 2] = 1.0  # 0 -> 1 -> 2, which stays
    R_end = np.array([[1.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    for mdp in (
        TabularMDP(P_end, R_end, 1.0),
        TabularMDP(SparseTransitions.from_dense(P_end), R_end, 1.0),
    ):
        res = evaluate_policy(mdp, np.zeros(3, int), method="direct")
        assert res.converged
        np.testing.assert_allclose(np.asarray(res.values), [3.0, 2.0, 0.0], atol=1e-9)


def test_random_mdp_refuses_more_successors_than_states():
    with pytest.raises(ValueError, match=r"num_successors must be an int >= 1 and <= 3, got 10"):
        random_mdp(0, 3, 2, num_successors=10)
    assert random_mdp(0, 3, 2, num_successors=3).num_states == 3


def test_float32_dtype_and_global_x64_untouched(sparse_mdp):
    before = jax.config.jax_enable_x64
    pol = _policies(sparse_mdp)["deterministic"]
    res = evaluate_policy(sparse_mdp, pol, method="jacobi", tol=1e-4, dtype=jnp.float32)
    assert np.asarray(res.values).dtype == np.float32
    np.testing.assert_allclose(np.asarray(res.values), exact_values(sparse_mdp, pol), atol=1e-3)
    assert jax.config.jax_enable_x64 == before
    assert jnp.ones(1).dtype == (jnp.float64 if before else jnp.float32)


# ---------------------------------------------------------------------- control
def test_value_iteration_keeps_its_error_promise(mdp, optimum):
    v_star, _ = optimum
    for tol in (1e-2, 1e-9):
        res = value_iteration(mdp, tol=tol)
        assert res.converged
        err = np.max(np.abs(np.asarray(res.values) - v_star))
        assert err <= float(res.error_bound) <= tol
        g = float(mdp.gamma)
        np.testing.assert_allclose(float(res.error_bound), g / (1 - g) * float(res.residual))
        # values are the max of the returned q-values, the policy their argmax
        q = np.asarray(res.q_values)
        np.testing.assert_allclose(q.max(axis=1), np.asarray(res.values), rtol=0, atol=1e-12)
    assert err <= 1e-8  # the tight run agrees with the exact solve


def test_policy_iteration_matches_exact_and_value_iteration(mdp, optimum):
    v_star, pi_star = optimum
    pi = policy_iteration(mdp)
    assert pi.converged
    np.testing.assert_allclose(np.asarray(pi.values), v_star, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(np.asarray(pi.policy), pi_star)
    vi = value_iteration(mdp, tol=1e-9)
    np.testing.assert_array_equal(np.asarray(vi.policy), np.asarray(pi.policy))
    assert float(pi.error_bound) <= 1e-8


@pytest.mark.parametrize("evaluation", ["jacobi", "gauss-seidel", "krylov"])
def test_policy_iteration_with_iterative_evaluation(sparse_mdp, evaluation):
    v_star, pi_star = exact_optimum(sparse_mdp)
    start = np.zeros(sparse_mdp.num_states, int)  # deterministic: one compiled round
    res = policy_iteration(sparse_mdp, evaluation=evaluation, tol=1e-11, policy0=start)
    assert res.converged
    np.testing.assert_array_equal(np.asarray(res.policy), pi_star)
    np.testing.assert_allclose(np.asarray(res.values), v_star, rtol=0, atol=1e-8)


def test_modified_policy_iteration(mdp, optimum):
    v_star, pi_star = optimum
    res = modified_policy_iteration(mdp, m=5, tol=1e-9)
    assert res.converged
    np.testing.assert_allclose(np.asarray(res.values), v_star, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(np.asarray(res.policy), pi_star)
    vi = value_iteration(mdp, tol=1e-9)
    assert int(res.iterations) < int(vi.iterations)  # fewer greedy steps
    # m = 0 is value iteration
    m0 = modified_policy_iteration(mdp, m=0, tol=1e-9)
    assert int(m0.iterations) == int(vi.iterations)
    np.testing.assert_allclose(np.asarray(m0.values), np.asarray(vi.values), rtol=0, atol=1e-12)


def test_soft_value_iteration_is_a_soft_policy_evaluation(mdp):
    """V_soft = E_pi[R - tau log pi + gamma P V_soft] for its own softmax policy."""
    tau = 0.5
    res = soft_value_iteration(mdp, temperature=tau, tol=1e-10)
    assert res.converged
    pi = np.asarray(res.policy)
    assert pi.shape == mdp.shape
    np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    entropic = mdp.replace(R=np.asarray(mdp.R) - tau * np.log(pi))
    np.testing.assert_allclose(
        np.asarray(res.values), exact_values(entropic, pi), rtol=0, atol=1e-8
    )


def test_soft_value_iteration_tends_to_value_iteration(mdp, optimum):
    v_star, pi_star = optimum
    S, A = mdp.shape
    g = float(mdp.gamma)
    gaps = []
    for tau in (1.0, 0.1, 0.01):
        res = soft_value_iteration(mdp, temperature=tau, tol=1e-10)
        gap = np.asarray(res.values) - v_star
        assert gap.min() >= -1e-9  # soft values sit above V*
        assert gap.max() <= tau * math.log(A) / (1 - g) + 1e-9
        gaps.append(gap.max())
    assert gaps[0] > gaps[1] > gaps[2]
    np.testing.assert_array_equal(np.asarray(res.policy).argmax(axis=1), pi_star)


@pytest.mark.parametrize("sparse", [False, True])
def test_soft_value_iteration_ends_episodes_at_terminal_states(sparse):
    """An episode's end earns no more entropy: terminal (absorbing, zero-reward) states keep
    the value 0, so the undiscounted 4x4 grid world (Example 4.1) converges, within
    tau log|A| per remaining step of V*. (It added tau log 4 at the terminal state every
    sweep and stopped at max_iterations.)"""
    from bellmax.envs.gridworlds import GridWorld4x4

    env = GridWorld4x4()
    mdp = env.tabular_mdp(env.default_params)
    mdp = mdp.to_sparse() if sparse else mdp
    tau = 0.01
    res = soft_value_iteration(mdp, temperature=tau, tol=1e-10)
    vi = value_iteration(mdp, tol=1e-10)
    assert res.converged, res.status_name
    v, v_star = np.asarray(res.values), np.asarray(vi.values)
    ends = np.asarray(mdp.terminal)
    assert ends.any() and np.all(v[ends] == 0.0)
    steps_left = -v_star  # reward -1 per step
    assert np.all(v >= v_star - 1e-9)
    assert np.all(v - v_star <= tau * math.log(4) * steps_left + 1e-9)


def test_value_iteration_status_max_iterations(sparse_mdp):
    res = value_iteration(sparse_mdp, tol=1e-12, max_iterations=5)
    assert res.status_name == "max_iterations" and int(res.iterations) == 5
    assert float(res.error_bound) > 1e-12


def test_greedy_policy_keeps_incumbent_on_ties():
    q = jnp.asarray([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0 + 1e-3]])
    np.testing.assert_array_equal(greedy_policy(q), [0, 2])
    np.testing.assert_array_equal(greedy_policy(q, jnp.asarray([1, 1]), tie_tol=1e-2), [1, 1])
    np.testing.assert_array_equal(greedy_policy(q, jnp.asarray([1, 1]), tie_tol=1e-4), [1, 2])
    np.testing.assert_array_equal(greedy_policy(q, jnp.asarray([2, 0]), tie_tol=1e-2), [0, 2])
    with pytest.raises(ValueError, match=r"q must be action values \[S, A\], got shape \(3,\)"):
        greedy_policy(np.zeros(3))
    with pytest.raises(ValueError, match="q contains NaN"):
        greedy_policy(np.array([[np.nan, 1.0], [0.0, 0.0]]))


# ---------------------------------------------------------------------- the book
@pytest.fixture(scope="module")
def grid4():
    env, params = bellmax.make("GridWorld4x4-v0")
    return env.tabular_mdp(params)


def test_gridworld4x4_iterates_and_sweeps(grid4):
    """Figure 4.1 and the sweep counts of §4.1 (two-array 173, in place 114, delta < 1e-4)."""
    rnd = np.full((16, 4), 0.25)
    ref = {
        2: [0.0, -1.75, -2.0, -2.0],
        3: [0.0, -2.4375, -2.9375, -3.0, -2.4375, -2.875],
        10: [0.0, -6.138, -8.3524, -8.9673, -6.138, -7.7374, -8.4278],
    }
    for k, want in ref.items():
        res = evaluate_policy(grid4, rnd, method="jacobi", max_iterations=k)
        assert int(res.iterations) == k
        np.testing.assert_allclose(np.asarray(res.values)[: len(want)], want, atol=5e-5)
    two = evaluate_policy(grid4, rnd, method="jacobi", tol=1e-4)
    assert int(two.iterations) == 173
    assert int(evaluate_policy(grid4, rnd, method="gauss-seidel", tol=1e-4).iterations) == 114
    exact = evaluate_policy(grid4, rnd, method="direct")
    want = [0, -14, -20, -22, -14, -18, -20, -20, -20, -20, -18, -14, -22, -20, -14, 0]
    np.testing.assert_allclose(np.asarray(exact.values), want, atol=1e-9)
    np.testing.assert_allclose(
        np.asarray(evaluate_policy(grid4.to_sparse(), rnd, method="krylov").values), want, atol=1e-8
    )
    assert math.isinf(float(exact.error_bound))  # gamma = 1: no bound


def test_gridworld4x4_control(grid4):
    pi = policy_iteration(grid4)  # from the random policy, as in Figure 4.1
    vi = value_iteration(grid4)
    assert pi.converged and vi.converged
    np.testing.assert_allclose(np.asarray(pi.values), np.asarray(vi.values))
    assert math.isinf(float(vi.error_bound))


def test_gridworld5x5_figures_3_2_and_3_5():
    env, params = bellmax.make("GridWorld5x5-v0")
    mdp = env.tabular_mdp(params)
    rnd = evaluate_policy(mdp, np.full((25, 4), 0.25))
    fig32 = [
        3.3,
        8.8,
        4.4,
        5.3,
        1.5,
        1.5,
        3.0,
        2.3,
        1.9,
        0.5,
        0.1,
        0.7,
        0.7,
        0.4,
        -0.4,
        -1.0,
        -0.4,
        -0.4,
        -0.6,
        -1.2,
        -1.9,
        -1.3,
        -1.2,
        -1.4,
        -2.0,
    ]
    np.testing.assert_allclose(np.asarray(rnd.values), fig32, atol=0.06)
    opt = value_iteration(mdp, tol=1e-10)
    fig35 = [
        22.0,
        24.4,
        22.0,
        19.4,
        17.5,
        19.8,
        22.0,
        19.8,
        17.8,
        16.0,
        17.8,
        19.8,
        17.8,
        16.0,
        14.4,
        16.0,
        17.8,
        16.0,
        14.4,
        13.0,
        14.4,
        16.0,
        14.4,
        13.0,
        11.7,
    ]
    np.testing.assert_allclose(np.asarray(opt.values), fig35, atol=0.051)
    assert float(opt.values[1]) == pytest.approx(10 / (1 - 0.9**5), abs=1e-8)  # v*(A) = 24.4194


def test_gamblers_problem():
    env, params = bellmax.make("GamblersProblem-v0")
    mdp = env.tabular_mdp(params)
    vi = value_iteration(mdp, tol=1e-12)
    assert vi.converged
    v = np.asarray(vi.values)
    np.testing.assert_allclose(v[[25, 50, 75]], [0.16, 0.4, 0.64], atol=1e-9)
    np.testing.assert_allclose(v[[1, 99]], [0.002066, 0.964333], atol=1e-6)


def test_jacks_car_rental_policy_iteration():
    env, params = bellmax.make("JacksCarRental-v0")
    mdp = env.tabular_mdp(params)
    no_move = np.full(mdp.num_states, env.max_move)
    res = policy_iteration(mdp, policy0=no_move)
    assert res.converged
    assert int(res.iterations) - 1 == 4  # four improvements (Figure 4.2)
    v = np.asarray(res.values)
    assert v[0] == pytest.approx(421.4, abs=0.05)  # (0, 0) cars
    assert v[-1] == pytest.approx(637.0, abs=0.05)  # (20, 20) cars
    assert v.min() == v[0] and v.max() == v[-1]


def test_blackjack_exact_values_and_figure_5_2():
    env, params = bellmax.make("Blackjack-v0")
    mdp = env.tabular_mdp(params)
    idx = Blackjack.book_state_indices()  # [usable, sum - 12, dealer - 1]
    stick20 = np.ones(mdp.num_states, int)  # hit ...
    stick20[idx[:, 8:, :].ravel()] = 0  # ... but stick on 20 and 21
    stick20[280:290] = 0  # the natural is 21 too
    res = evaluate_policy(mdp, stick20)
    assert float(res.values[idx[1, 1, 1]]) == pytest.approx(-0.277204, abs=1e-6)

    opt = value_iteration(mdp, tol=1e-12)
    pol = np.asarray(opt.policy)[idx]  # 0 stick, 1 hit
    want = np.ones((2, 10, 10), int)
    dealer = np.arange(1, 11)
    want[1, 19 - 12 :, :] = 0  # usable ace: stick on 19+
    want[1, 18 - 12, (dealer >= 2) & (dealer <= 8)] = 0  # and on 18 against 2-8
    want[0, 17 - 12 :, :] = 0  # no usable ace: stick on 17+
    want[0, 13 - 12 : 17 - 12, :][:, (dealer >= 2) & (dealer <= 6)] = 0  # 13-16 vs 2-6
    want[0, 12 - 12, (dealer >= 4) & (dealer <= 6)] = 0  # 12 vs 4-6
    np.testing.assert_array_equal(pol, want)


# ---------------------------------------------------------------------- bad input
def test_status_is_the_shared_vocabulary():
    assert Status is CoreStatus is PackageStatus
    res = shortest_paths(([0, 1], [1, 0], [-1.0, -1.0]), source=0)
    assert int(res.status) == Status.NEGATIVE_CYCLE and not res.converged


@pytest.mark.parametrize(
    ("policy", "match"),
    [
        (np.zeros(5, int), r"shape \(S,\) = \(30,\)"),
        (np.full(30, 3), r"policy\[0\] = 3 is not an action; actions are 0 .. 2"),
        (np.full(30, -1), "is not an action"),
        (np.full(30, 0.5), "integers"),
        (np.full((30, 3), 0.5), "sums to 1.5"),
        (np.tile([1.5, -0.5, 0.0], (30, 1)), "not a probability"),
        (np.zeros((30, 2)), r"shape \(S, A\) = \(30, 3\)"),
        (np.zeros((2, 3, 4)), "shape"),
    ],
)
def test_bad_policy(sparse_mdp, policy, match):
    with pytest.raises(ValueError, match=match):
        evaluate_policy(sparse_mdp, policy)


def test_a_bool_policy_is_not_read_as_actions(sparse_mdp):
    # it was evaluated as actions 1 / 0; an (S, A) bool mask is still probabilities
    with pytest.raises(TypeError, match=r"holds action indices \(integers\), got a bool array"):
        evaluate_policy(sparse_mdp, np.ones(30, bool))
    mask = np.eye(3, dtype=bool)[np.zeros(30, int)]
    np.testing.assert_allclose(
        evaluate_policy(sparse_mdp, mask).values, evaluate_policy(sparse_mdp, _POLICY).values
    )


_POLICY = np.zeros(30, int)


@pytest.mark.parametrize(
    ("solve", "kwargs", "error", "match"),
    [
        *[
            (value_iteration, {"tol": tol}, ValueError, "tol must be a finite number > 0")
            for tol in (0.0, -1.0, math.nan, math.inf)
        ],
        (value_iteration, {"tol": "small"}, TypeError, "tol must be a number"),
        (value_iteration, {"tol": True}, TypeError, "tol must be a number, got bool"),
        (evaluate_policy, {"method": "jacobbi"}, UnknownNameError, "Did you mean: 'jacobi'"),
        (policy_iteration, {"evaluation": "gauss_seidel"}, UnknownNameError, "gauss-seidel"),
        (value_iteration, {"max_iterations": 0}, ValueError, "max_iterations must be an int >= 1"),
        (value_iteration, {"max_iterations": 1e5}, TypeError, r"must be an int.*write 100000"),
        (value_iteration, {"v0": np.zeros(3)}, ValueError, r"v0 must be a real array of shape"),
        (value_iteration, {"v0": np.full(30, np.nan)}, ValueError, "v0 must be finite"),
        (
            soft_value_iteration,
            {"temperature": 0.0},
            ValueError,
            "temperature must be a finite number > 0.*its limit 0 is value_iteration",
        ),
        (modified_policy_iteration, {"m": -1}, ValueError, "m must be an int >= 0"),
        (value_iteration, {"dtype": jnp.int32}, TypeError, "float32 or float64"),
    ],
)
def test_bad_solver_arguments(sparse_mdp, solve, kwargs, error, match):
    args = (_POLICY,) if solve is evaluate_policy else ()
    with pytest.raises(error, match=match):
        solve(sparse_mdp, *args, **kwargs)


@pytest.mark.parametrize("solve", [value_iteration, evaluate_policy, shortest_paths])
@pytest.mark.parametrize("mdp", [{"P": 1, "R": 2}, np.zeros((2, 2, 2))])
def test_solvers_refuse_what_is_not_an_mdp(solve, mdp):
    args = (_POLICY,) if solve is evaluate_policy else ()
    with pytest.raises(TypeError, match=r"needs a TabularMDP|edge list"):
        solve(mdp, *args)


def test_solvers_refuse_traced_mdps(sparse_mdp):
    with pytest.raises(TypeError, match=r"outside jax\.jit"):
        jax.jit(lambda m: value_iteration(m).values)(sparse_mdp)


_SRC, _DST, _W = np.array([0, 1]), np.array([1, 2]), np.array([1.0, 2.0])


@pytest.mark.parametrize(
    ("graph", "kwargs", "error", "match"),
    [
        ((_SRC, _DST, _W), {}, ValueError, "exactly one of source"),
        ((_SRC, _DST, _W), {"source": 0, "target": 2}, ValueError, "exactly one of source"),
        ((_SRC, _DST, _W), {"source": 7}, ValueError, r"source node 7 is outside \[0, 3\)"),
        ((_SRC, _DST, np.array([1.0, np.inf])), {"source": 0}, ValueError, "= inf is not finite"),
        ((_SRC, _DST[:1], _W), {"source": 0}, ValueError, "one length"),
        ((_SRC.astype(float), _DST, _W), {"source": 0}, TypeError, "integer node indices"),
        ((_SRC, _DST, _W), {"source": 0, "num_nodes": 2}, ValueError, r"dst\[1\] = 2 is outside"),
        ((_SRC, _DST, _W), {"source": 0, "num_nodes": 2.0}, TypeError, "num_nodes must be an int"),
        ("graph", {"source": 0}, TypeError, "edge list"),
        ("stochastic", {"target": 0}, ValueError, "deterministic transitions"),
        ("discounted", {}, ValueError, r"gamma = 0\.9"),
        ("grid", {"source": 3}, ValueError, "not source="),
        ("grid without terminals", {}, ValueError, "marks no terminal states"),
    ],
)
def test_bad_shortest_path_input(dense_mdp, grid4, graph, kwargs, error, match):
    graph = (
        {
            "stochastic": dense_mdp.replace(gamma=1.0),
            "discounted": dense_mdp,
            "grid": grid4,
            "grid without terminals": grid4.replace(terminal=None),
        }.get(graph, graph)
        if isinstance(graph, str)
        else graph
    )
    with pytest.raises(error, match=match):
        shortest_paths(graph, **kwargs)


def test_greedy_policy_keeps_float64_precision():
    q = np.array([[500.0, 500.0 + 1e-6]])  # equal in float32
    np.testing.assert_array_equal(greedy_policy(q), [1])
    np.testing.assert_array_equal(greedy_policy(q, np.array([0]), tie_tol=1e-9), [1])
    np.testing.assert_array_equal(greedy_policy(q, np.array([0]), tie_tol=1e-5), [0])


# ---------------------------------------------------------------------- uneven sparse rows
def _uneven_mdp(seed: int, S: int, A: int, full_rows, gamma: float) -> TabularMDP:
    """Rows of 1-3 random successors, except `full_rows`, which reach every state."""
    rng = np.random.default_rng(seed)
    idx, val = [], []
    for s in range(S):
        for a in range(A):
            nxt = np.arange(S) if (s, a) in full_rows else rng.choice(S, rng.integers(1, 4), False)
            idx += [(s, a, n) for n in nxt]
            val += list(rng.dirichlet(np.ones(len(nxt))))
    return TabularMDP.from_coo(np.array(idx), np.array(val), rng.standard_normal((S, A)), gamma)


@pytest.fixture(scope="module")
def uneven_pair():
    """The same MDP in the hybrid sparse layout (with overflow) and dense. It has the shape
    of `dense_mdp` (20 states, 3 actions), so the dense twin's solves reuse the programs
    compiled for that MDP (each shape and layout is another XLA compile)."""
    mdp = _uneven_mdp(4, 20, 3, ((0, 0), (17, 2), (13, 1)), GAMMA_SPARSE)
    assert mdp.P.shape[2] <= 3 and mdp.P.num_overflow >= 3 * 17
    return mdp, mdp.to_dense()


_UNEVEN_SOLVERS = {
    **{
        f"evaluate-{method}-{kind}": (
            lambda m, method=method, kind=kind: evaluate_policy(
                m, _policies(m)[kind], method=method, tol=1e-11
            )
        )
        for method in ("direct", "jacobi", "gauss-seidel", "krylov")
        for kind in ("deterministic", "stochastic")
    },
    "value_iteration": lambda m: value_iteration(m, tol=1e-11),
    **{
        f"policy_iteration-{ev}": (
            lambda m, ev=ev: policy_iteration(
                m, evaluation=ev, tol=1e-11, policy0=np.zeros(m.num_states, int)
            )
        )
        for ev in ("direct", "jacobi", "gauss-seidel", "krylov")
    },
    "modified_policy_iteration": lambda m: modified_policy_iteration(m, m=5, tol=1e-11),
    "soft_value_iteration": lambda m: soft_value_iteration(m, temperature=0.5, tol=1e-11),
}


@pytest.mark.parametrize("solver", list(_UNEVEN_SOLVERS))
def test_uneven_layout_matches_dense(uneven_pair, solver):
    """Every solver gives the dense answer when long rows live in the overflow list."""
    sparse, dense = uneven_pair
    got, want = _UNEVEN_SOLVERS[solver](sparse), _UNEVEN_SOLVERS[solver](dense)
    assert got.status_name == want.status_name == "converged"
    np.testing.assert_allclose(np.asarray(got.values), np.asarray(want.values), atol=1e-8)
    np.testing.assert_allclose(np.asarray(got.q_values), np.asarray(want.q_values), atol=1e-8)
    if solver.startswith("evaluate") or solver == "soft_value_iteration":
        np.testing.assert_allclose(np.asarray(got.policy), np.asarray(want.policy), atol=1e-8)
    else:
        np.testing.assert_array_equal(np.asarray(got.policy), np.asarray(want.policy))


def test_overflow_rows_in_shortest_paths_and_absorbing_states():
    """A deterministic chain 0 -> 1 -> 2 -> 3 (terminal) whose terminal self-loops and one
    move are stored only in the overflow list (the padded slots of those rows hold 0)."""
    S, A = 4, 2
    ns = np.zeros((S, A, 1), np.int32)
    prob = np.zeros((S, A, 1))
    for s in range(3):
        ns[s, 0, 0], prob[s, 0, 0] = s + 1, 1.0  # action 0: forward
        ns[s, 1, 0], prob[s, 1, 0] = s, 1.0  # action 1: stay
    prob[1, 0, 0] = 0.0  # 1 -> 2 moves into the overflow
    over_row = np.array([1 * A + 0, 3 * A + 0, 3 * A + 1])
    P = SparseTransitions(ns, prob, over_row, np.array([2, 3, 3]), np.ones(3))
    R = np.array([[-1.0, -2.0], [-1.0, -2.0], [-1.0, -2.0], [0.0, 0.0]])
    mdp = TabularMDP(P, R, 1.0, terminal=np.array([False, False, False, True]))
    dense = mdp.to_dense()
    assert dense.dense_P()[1, 0, 2] == 1.0 and dense.dense_P()[3, 1, 3] == 1.0
    got, want = shortest_paths(mdp), shortest_paths(dense)
    np.testing.assert_allclose(np.asarray(got.distances), [3.0, 2.0, 1.0, 0.0])
    np.testing.assert_array_equal(np.asarray(got.policy), np.asarray(want.policy))
    # gamma = 1: the terminal state (self-loops only in the overflow) is absorbing with value 0
    # (not "krylov": BiCGSTAB breaks down on this nilpotent chain in every layout, dense too)
    forward = np.zeros(S, int)
    for method in ("direct", "jacobi", "gauss-seidel"):
        res = evaluate_policy(mdp, forward, method=method, tol=1e-12)
        assert res.converged, method
        np.testing.assert_allclose(np.asarray(res.values), [-3.0, -2.0, -1.0, 0.0], atol=1e-9)


_BIG_UNEVEN = """
import json, resource, sys
import numpy as np
from bellmax.core.mdp import TabularMDP
from bellmax.tabular.dp import value_iteration

S, A, K = 100_000, 3, 5
rng = np.random.default_rng(0)
rows = np.repeat(np.arange(S * A), K)
nxt = rng.integers(0, S, rows.size)
w = rng.random(rows.size) + 0.01
# row (s, a) = (0, 0) reaches every state instead of 5
rows = np.concatenate([np.zeros(S, rows.dtype), rows[K:]])
nxt = np.concatenate([np.arange(S), nxt[K:]])
w = np.concatenate([np.ones(S), w[K:]])
w /= np.bincount(rows, weights=w)[rows]
idx = np.stack([rows // A, rows % A, nxt], axis=1)
R = rng.standard_normal((S, A))
mdp = TabularMDP.from_coo(idx, w, R, 0.9)
res = value_iteration(mdp, tol=1e-9)
np.savez(sys.argv[1], idx=idx, w=w, R=R, values=np.asarray(res.values))
print(json.dumps({
    "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "status": res.status_name, "width": mdp.P.shape[2], "overflow": mdp.P.num_overflow,
    "stored": mdp.P.nnz,
}))
"""


def test_uneven_100k_state_mdp_solves_in_little_memory(tmp_path):
    """100,000 states, 3 actions, 5 successors per row, and one row reaching all 100,000
    states: padded to the longest row this needed S * A * S * (4 + 8) bytes = 335 GiB; the
    hybrid layout stores ~1.6e6 entries. Peak RSS of the whole process (JAX included) stays
    under 3 GiB, and the values match value iteration on a scipy CSR matrix."""
    out = tmp_path / "big.npz"
    proc = subprocess.run(
        [sys.executable, "-c", _BIG_UNEVEN, str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["status"] == "converged"
    assert info["width"] <= 5 and info["overflow"] >= 100_000 - 5
    assert info["stored"] <= 2 * 100_000 * 3 * 5
    assert info["maxrss_kib"] * 1024 < 3 * 2**30, f"peak RSS {info['maxrss_kib'] / 2**20:.2f} GiB"

    with np.load(out) as f:
        idx, w, R, got = f["idx"], f["w"], f["R"], f["values"]
    S, A = R.shape
    M = sp.csr_matrix((w, (idx[:, 0] * A + idx[:, 1], idx[:, 2])), shape=(S * A, S))
    V = np.zeros(S)
    for _ in range(10_000):  # value iteration with the same stopping rule
        V_new = (R + 0.9 * (M @ V).reshape(S, A)).max(axis=1)
        change, V = np.max(np.abs(V_new - V)), V_new
        if 0.9 / 0.1 * change <= 1e-9:
            break
    np.testing.assert_allclose(got, V, rtol=0, atol=1e-8)
