"""The value bounds against independent numpy computations: QMDP is the MDP's optimal Q, FIB
is the fixed point of Hauskrecht's backup, the blind bound solves (I - gamma T_a) v = R_a, and
on the tiger problem blind <= V* <= FIB <= QMDP at every belief, V* exact in numpy (conftest)."""

import pathlib

import numpy as np
import pytest

import bellmax.pomdp.bounds as bounds_module
from bellmax.core.mdp import TabularMDP
from bellmax.pomdp import exact_value_iteration, hsvi, make_pomcp, pbvi, perseus
from bellmax.pomdp.bounds import (
    BoundResult,
    blind_lower_bound,
    check_discounted,
    fast_informed_bound,
    qmdp,
)
from bellmax.pomdp.model import check_reward_scale

# V*(uniform) of the tiger problem, gamma 0.95 (PEERS.md).
TIGER_V = 19.3714


# ---------------------------------------------------------------------- references (numpy)
def arrays(p):
    return (np.asarray(x, np.float64) for x in (p.T, p.O, p.R))


def mdp_q(p, sweeps=5000):
    """Q of the fully observed MDP by value iteration: Q = R + gamma T max_a' Q."""
    T, _, R = arrays(p)
    Q = np.zeros_like(R)
    for _ in range(sweeps):
        new = R + p.gamma * np.einsum("ast,t->sa", T, Q.max(axis=1))
        if np.max(np.abs(new - Q)) < 1e-13:
            return new
        Q = new
    raise AssertionError("numpy value iteration did not converge")


def fib_q(p, sweeps=5000):
    """Hauskrecht's FIB: Q(s, a) = R + gamma sum_o max_a' sum_s' T[a,s,s'] O[a,s',o] Q(s',a')."""
    T, Ob, R = arrays(p)
    Q = np.zeros_like(R)
    for _ in range(sweeps):
        nxt = np.einsum("ast,ato,tb->saob", T, Ob, Q)
        new = R + p.gamma * nxt.max(axis=3).sum(axis=2)
        if np.max(np.abs(new - Q)) < 1e-13:
            return new
        Q = new
    raise AssertionError("numpy FIB iteration did not converge")


def blind(p):
    """alpha_a = (I - gamma T_a)^{-1} R[:, a], one linear solve per action."""
    T, _, R = arrays(p)
    eye = np.eye(R.shape[0])
    return np.stack([np.linalg.solve(eye - p.gamma * T[a], R[:, a]) for a in range(R.shape[1])])


def value(vectors, B):
    return (B @ np.asarray(vectors.alphas).T).max(axis=1)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiger_bounds(tiger):
    return qmdp(tiger, tol=1e-9), fast_informed_bound(tiger, tol=1e-9), blind_lower_bound(tiger)


@pytest.fixture(scope="module")
def sparse_bounds(sparse_pomdp):
    return (
        qmdp(sparse_pomdp, tol=1e-10),
        fast_informed_bound(sparse_pomdp, tol=1e-10),
        blind_lower_bound(sparse_pomdp),
    )


# ---------------------------------------------------------------------- the tiger's order
def test_tiger_blind_below_v_star_below_fib_below_qmdp(tiger_bounds, tiger_q):
    q, f, low = tiger_bounds
    # b0 = uniform, the beliefs listening reaches from it (x_k = 1 / (1 + (0.15/0.85)^k)),
    # and a grid over the whole simplex; V* exact there (conftest's belief-lattice value
    # iteration; horizon 400 is within 0.95^400 * 110 / 0.05 ~ 3e-6 of V*)
    k = np.arange(-12, 13)
    grid = np.unique(np.concatenate([np.linspace(0, 1, 201), 1 / (1 + (0.15 / 0.85) ** k)]))
    v_star = np.array([tiger_q(x, 400).max() for x in grid])
    i0 = int(np.flatnonzero(grid == 0.5)[0])
    assert v_star[i0] == pytest.approx(TIGER_V, abs=5e-5)  # the published value
    B = np.stack([grid, 1 - grid], axis=1)
    vb, vf, vq = value(low, B), value(f.vectors, B), value(q.vectors, B)
    assert np.all(vb <= v_star + 1e-9)  # blind <= V*
    assert np.all(v_star <= vf + 1e-9)  # V* <= FIB
    assert np.all(vf <= vq + 1e-9)  # FIB <= QMDP
    # at b0, strictly: the bounds are not all one function
    assert vb[i0] < v_star[i0] < vf[i0] < vq[i0]


def test_tiger_values_by_hand(tiger_bounds):
    q, _, low = tiger_bounds
    # The MDP underneath: the state is seen, so open the other door for +10 each step, the
    # tiger then reset uniformly: V(s) = 10 / (1 - 0.95) = 200 in both states.
    # Q(s, listen) = -1 + 0.95 * 200 = 189; opening the tiger's door: -100 + 190 = 90;
    # the other door: 10 + 190 = 200. (rows: listen, open-left, open-right; columns: left, right)
    np.testing.assert_allclose(np.asarray(q.vectors.alphas), [[189, 189], [90, 200], [200, 90]])
    # Blind: always listening earns -1 / 0.05 = -20. Always opening the left door: the tiger
    # is reset uniformly, so the mean value m = mean R / 0.05 = -45 / 0.05 = -900 and
    # v(left) = -100 + 0.95 m = -955, v(right) = 10 + 0.95 m = -845; mirrored for the right.
    np.testing.assert_allclose(
        np.asarray(low.alphas), [[-20, -20], [-955, -845], [-845, -955]], rtol=1e-12
    )


# ---------------------------------------------------------------------- each bound vs numpy
@pytest.mark.parametrize("problem", ["tiger", "sparse_pomdp"])
def test_qmdp_is_the_mdps_optimal_q(request, problem):
    p = request.getfixturevalue(problem)
    res = qmdp(p, tol=1e-10)
    assert isinstance(res, BoundResult) and res.converged
    assert res.vectors.alphas.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(res.vectors.actions), np.arange(p.num_actions))
    np.testing.assert_allclose(np.asarray(res.vectors.alphas), mdp_q(p).T, atol=1e-8)
    assert float(res.error_bound) <= 1e-10


@pytest.mark.parametrize("problem", ["tiger", "sparse_pomdp"])
def test_fib_is_hauskrechts_fixed_point(request, problem):
    # tiger's transitions go the dense way, sparse_pomdp's (2 successors of 24) the lists'
    p = request.getfixturevalue(problem)
    res = fast_informed_bound(p, tol=1e-10)
    assert isinstance(res, BoundResult) and res.converged and res.status_name == "converged"
    assert res.vectors.alphas.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(res.vectors.actions), np.arange(p.num_actions))
    np.testing.assert_allclose(np.asarray(res.vectors.alphas), fib_q(p).T, atol=1e-8)
    assert float(res.error_bound) <= 1e-10 and int(res.iterations) > 1


def test_fib_dense_and_successor_list_backups_agree(sparse_pomdp, sparse_bounds, monkeypatch):
    assert bounds_module.short_successor_lists(sparse_pomdp.T) is not None  # lists by default
    monkeypatch.setattr(bounds_module, "short_successor_lists", lambda T: None)
    dense = fast_informed_bound(sparse_pomdp, tol=1e-10)
    np.testing.assert_allclose(
        np.asarray(dense.vectors.alphas), np.asarray(sparse_bounds[1].vectors.alphas), atol=1e-9
    )


@pytest.mark.parametrize("problem", ["tiger", "sparse_pomdp"])
def test_blind_is_each_action_repeated_forever(request, problem):
    p = request.getfixturevalue(problem)
    low = blind_lower_bound(p)
    assert low.alphas.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(low.actions), np.arange(p.num_actions))
    np.testing.assert_allclose(np.asarray(low.alphas), blind(p), rtol=1e-10, atol=1e-10)


def test_order_per_state_and_action(sparse_pomdp, sparse_bounds):
    # For each action a, b . blind_a <= Q*(b, a) <= b . FIB[:, a] <= b . QMDP[:, a] at every
    # belief b; at the corner beliefs that is entrywise.
    q, f, low = (
        np.asarray(v.alphas)
        for v in (sparse_bounds[0].vectors, sparse_bounds[1].vectors, sparse_bounds[2])
    )
    assert np.all(low <= f + 1e-9) and np.all(f <= q + 1e-9)
    assert np.any(f < q - 1e-3)  # FIB is tighter somewhere here


# ---------------------------------------------------------------------- stopping early
@pytest.mark.parametrize("k", [1, 3, 10])
def test_fib_iterates_are_upper_bounds_within_their_error_bound(sparse_pomdp, tiger, k):
    # Started above the fixed point, every iterate lies above it, within error_bound of it.
    for p in (sparse_pomdp, tiger):
        res = fast_informed_bound(p, max_iterations=k)
        assert res.status_name == "max_iterations" and int(res.iterations) == k
        got, fix = np.asarray(res.vectors.alphas), fib_q(p).T
        assert np.all(got >= fix - 1e-9)
        assert np.max(got - fix) <= float(res.error_bound) + 1e-9


def test_qmdp_iterates_are_upper_bounds(sparse_pomdp):
    res = qmdp(sparse_pomdp, max_iterations=3)
    assert res.status_name == "max_iterations" and int(res.iterations) == 3
    got, fix = np.asarray(res.vectors.alphas), mdp_q(sparse_pomdp).T
    assert np.all(got >= fix - 1e-9) and np.max(got - fix) > 1e-3


# ---------------------------------------------------------------------- refusals
def test_check_discounted(tiger):
    assert check_discounted(tiger, "my solver") is None
    assert check_discounted(tiger.replace(gamma=0.999), "my solver") is None
    with pytest.raises(
        ValueError,
        match=r"^my solver needs a discount gamma < 1 for an infinite horizon, got gamma = 1\.0; "
        r"use exact_value_iteration with a finite horizon",
    ):
        check_discounted(tiger.replace(gamma=1.0), "my solver")
    with pytest.raises(
        TypeError, match=r"^my solver needs a TabularPOMDP, got TabularMDP\. A TabularMDP is fully"
    ):
        check_discounted(TabularMDP(np.ones((1, 1, 1)), np.zeros((1, 1)), 0.9), "my solver")


def test_solvers_given_a_path_or_a_result_say_how_to_get_the_model(tiger):
    # the one type check of the solvers (check_discounted -> model.check_pomdp)
    with pytest.raises(TypeError) as info:
        hsvi("tiger.pomdp")
    assert str(info.value).startswith("hsvi needs a TabularPOMDP, got str 'tiger.pomdp'.")
    assert "hsvi(bellmax.pomdp.load_pomdp('tiger.pomdp'), ...)" in str(info.value)
    with pytest.raises(TypeError, match=r"load_pomdp\('x\.pomdp'\)"):
        exact_value_iteration(pathlib.Path("x.pomdp"), 2)
    with pytest.raises(TypeError, match=r"got BoundResult\. That is a solver's result; pbvi takes"):
        pbvi(qmdp(tiger))


@pytest.mark.parametrize(
    ("solve", "name"),
    [(qmdp, "qmdp"), (fast_informed_bound, "fast_informed_bound"), (blind_lower_bound, "blind")],
)
def test_bounds_refuse_undiscounted_and_other_models(tiger, solve, name):
    with pytest.raises(ValueError, match=rf"^{name}\w* needs a discount gamma < 1.*gamma = 1\.0"):
        solve(tiger.replace(gamma=1.0))
    with pytest.raises(TypeError, match=rf"^{name}\w* needs a TabularPOMDP, got str"):
        solve("tiger.pomdp")


@pytest.mark.parametrize(
    ("solve", "kwargs", "match"),
    [
        (qmdp, {"tol": 0.0}, r"qmdp\.tol must be a number > 0, got 0\.0"),
        (qmdp, {"tol": -1}, r"qmdp\.tol must be a number > 0"),
        (qmdp, {"max_iterations": 0}, r"max_iterations must be an int >= 1"),
        (fast_informed_bound, {"tol": 0.0}, r"fast_informed_bound\.tol must be a number > 0"),
        (
            fast_informed_bound,
            {"max_iterations": 0},
            r"fast_informed_bound\.max_iterations must be an int >= 1",
        ),
    ],
)
def test_bounds_refuse_bad_options(tiger, solve, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve(tiger, **kwargs)


def test_rewards_whose_discounted_sums_overflow_are_refused(tiger):
    # 1e308 is a finite float, but 1e308 / (1 - 0.95) is not: every solver wrote NaN vectors
    huge = tiger.replace(R=np.asarray(tiger.R) * 1e306)  # |R| up to 1e308
    for solve, name in [(qmdp, "qmdp"), (fast_informed_bound, "fast_informed_bound"),
                        (pbvi, "pbvi"), (perseus, "perseus"), (hsvi, "hsvi"),
                        (make_pomcp, "make_pomcp")]:  # fmt: skip
        with pytest.raises(ValueError, match=rf"^{name}: rewards up to \|R\| = 1e\+308 are too "
                           r"large for gamma = 0\.95: discounted values can reach 20 x 1e\+308 "
                           r".*Rescale the rewards"):  # fmt: skip
            solve(huge)
    with pytest.raises(ValueError, match=r"too large for a horizon of 3 steps with gamma = 0\.95"):
        exact_value_iteration(huge, 3)
    # what fits, with room for differences of values, passes (gamma = 1: the horizon's sum)
    assert check_reward_scale(tiger.replace(R=np.asarray(tiger.R) * 1e303), "my solver") is None
    big = tiger.replace(R=np.asarray(tiger.R) * 1e305, gamma=1.0)  # |R| up to 1e307
    assert check_reward_scale(big, "my solver", horizon=4) is None
    with pytest.raises(ValueError, match=r"^my solver: .*horizon of 5 steps with gamma = 1: "):
        check_reward_scale(big, "my solver", horizon=5)
