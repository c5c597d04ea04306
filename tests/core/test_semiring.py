"""Tests for bellmax.core.semiring: the four semirings and the one Bellman backup."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.errors import UnknownNameError
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.core.semiring import (
    MAX_PLUS,
    MIN_PLUS,
    SLOT_UNROLL_MAX,
    SUM_PRODUCT,
    UNROLL_MAX,
    Backup,
    MDPArrays,
    Semiring,
    bellman_backup,
    expected_next_values,
    log_sum_exp,
    q_values,
)

X = np.array([[1.0, 3.0, 2.0], [-1.0, -5.0, 0.5]])


# ---------------------------------------------------------------------- the algebra
def test_identities():
    assert (SUM_PRODUCT.zero, SUM_PRODUCT.one) == (0.0, 1.0)
    assert (MAX_PLUS.zero, MAX_PLUS.one) == (-math.inf, 0.0)
    assert (MIN_PLUS.zero, MIN_PLUS.one) == (math.inf, 0.0)
    lse = log_sum_exp(0.5)
    assert (lse.zero, lse.one) == (-math.inf, 0.0)
    # zero is the identity of add and absorbs under times; one is the identity of times
    for sr in (SUM_PRODUCT, MAX_PLUS, MIN_PLUS, lse):
        x = jnp.asarray(X)
        np.testing.assert_allclose(sr.add(x, sr.zero), X, rtol=1e-6)
        np.testing.assert_allclose(sr.times(x, sr.one), X)
        assert np.all(np.asarray(sr.times(x, sr.zero)) == sr.zero)


def test_plus_hand_computed():
    x = jnp.asarray(X)
    np.testing.assert_allclose(SUM_PRODUCT.plus(x), [6.0, -5.5])
    np.testing.assert_allclose(MAX_PLUS.plus(x), [3.0, 0.5])
    np.testing.assert_allclose(MIN_PLUS.plus(x), [1.0, -5.0])
    np.testing.assert_allclose(
        log_sum_exp(2.0).plus(x), 2.0 * np.log(np.exp(X / 2.0).sum(axis=1)), rtol=1e-6
    )
    np.testing.assert_allclose(SUM_PRODUCT.plus(x, axis=0), X.sum(axis=0))


def test_plus_with_weights():
    x = jnp.asarray(X)
    pi = jnp.asarray([[0.5, 0.25, 0.25], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(SUM_PRODUCT.plus(x, weights=pi), [1.75, 0.5])
    mask = jnp.asarray([[0.0, -jnp.inf, 0.0], [0.0, 0.0, -jnp.inf]])  # forbid two actions
    np.testing.assert_allclose(MAX_PLUS.plus(x, weights=mask), [2.0, -1.0])


def test_binary_add_matches_plus_and_is_associative():
    a, b, c = (jnp.asarray(v) for v in (1.0, -2.0, 0.5))
    for sr in (SUM_PRODUCT, MAX_PLUS, MIN_PLUS, log_sum_exp(0.3)):
        left = sr.add(sr.add(a, b), c)
        right = sr.add(a, sr.add(b, c))
        np.testing.assert_allclose(left, right, rtol=1e-6)
        np.testing.assert_allclose(left, sr.plus(jnp.stack([a, b, c])), rtol=1e-6)
        np.testing.assert_allclose(sr.add(a, b), sr.add(b, a))


def test_log_sum_exp_is_stable_and_tends_to_max():
    big = jnp.asarray([1000.0, 999.0, -1000.0])
    for tau in (1.0, 1e-3):
        v = float(log_sum_exp(tau).plus(big))
        assert math.isfinite(v)
        # max <= lse <= max + tau * log(n)
        assert 1000.0 <= v <= 1000.0 + tau * math.log(3) + 1e-9
    gaps = [float(log_sum_exp(t).plus(jnp.asarray(X[0]))) - 3.0 for t in (1.0, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] >= 0.0
    # -inf entries are ignored; all -inf gives -inf
    lse = log_sum_exp(0.5)
    np.testing.assert_allclose(lse.plus(jnp.asarray([2.0, -jnp.inf])), 2.0)
    assert float(lse.plus(jnp.asarray([-jnp.inf, -jnp.inf]))) == -math.inf


def test_log_sum_exp_at_a_tiny_temperature_is_the_max():
    # x / tau overflows float32 here (5 / 1e-37 = 5e37 is fine, 50 / 1e-37 is not): every
    # reduction shifts by the max first, so the result is the max-plus one, not inf or NaN.
    lse = log_sum_exp(1e-37)
    x = jnp.asarray([50.0, -50.0, 40.0], jnp.float32)
    assert float(lse.plus(x)) == 50.0
    assert float(lse.plus(jnp.stack([x, -x]), axis=1)[1]) == 50.0
    np.testing.assert_array_equal(lse.argbest(x), [1.0, 0.0, 0.0])
    assert float(lse.add(x[0], x[1])) == 50.0 and float(lse.add(x[1], x[1])) == -50.0
    np.testing.assert_array_equal(lse.segment_plus(x, jnp.asarray([0, 0, 1]), 2), [50.0, 40.0])
    np.testing.assert_allclose(
        float(log_sum_exp(2.0).add(1.0, -1.0)), 2 * np.log(np.exp(0.5) + np.exp(-0.5)), rtol=1e-6
    )
    assert float(lse.add(-jnp.inf, -jnp.inf)) == -math.inf


def test_segment_plus_matches_numpy():
    x = jnp.asarray([1.0, 4.0, -2.0, 3.0, 0.5])
    seg = jnp.asarray([0, 0, 2, 2, 2])
    # segment 1 is empty: it gets the semiring's zero
    np.testing.assert_allclose(SUM_PRODUCT.segment_plus(x, seg, 3), [5.0, 0.0, 1.5])
    np.testing.assert_allclose(MAX_PLUS.segment_plus(x, seg, 3), [4.0, -np.inf, 3.0])
    np.testing.assert_allclose(MIN_PLUS.segment_plus(x, seg, 3), [1.0, np.inf, -2.0])
    tau = 0.7
    want = [
        tau * np.log(np.exp(1 / tau) + np.exp(4 / tau)),
        -np.inf,
        tau * np.log(np.exp(-2 / tau) + np.exp(3 / tau) + np.exp(0.5 / tau)),
    ]
    np.testing.assert_allclose(log_sum_exp(tau).segment_plus(x, seg, 3), want, rtol=1e-6)


def test_argbest():
    x = jnp.asarray(X)
    np.testing.assert_array_equal(MAX_PLUS.argbest(x), [1, 2])
    np.testing.assert_array_equal(MIN_PLUS.argbest(x), [0, 1])
    probs = np.asarray(log_sum_exp(0.5).argbest(x))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(probs.argmax(axis=1), [1, 2])
    # pi(a) = exp((x - plus(x)) / tau)
    lse = log_sum_exp(0.5)
    np.testing.assert_allclose(
        probs, np.exp((X - np.asarray(lse.plus(x))[:, None]) / 0.5), rtol=1e-5
    )
    with pytest.raises(ValueError, match="no best element"):
        SUM_PRODUCT.argbest(x)


def test_semiring_is_a_static_jit_argument():
    calls = []

    def f(x, sr):
        calls.append(sr)
        return sr.plus(x)

    g = jax.jit(f, static_argnums=1)
    x = jnp.asarray(X)
    np.testing.assert_allclose(g(x, MAX_PLUS), [3.0, 0.5])
    np.testing.assert_allclose(g(x, Semiring("max-plus")), [3.0, 0.5])  # equal: cache hit
    np.testing.assert_allclose(g(x, MIN_PLUS), [1.0, -5.0])
    assert len(calls) == 2
    assert hash(log_sum_exp(0.1)) == hash(log_sum_exp(0.1))
    assert log_sum_exp(0.1) != log_sum_exp(0.2)
    assert repr(log_sum_exp(0.1)) == "Semiring(log-sum-exp(tau=0.1))"


def test_traced_temperature():
    @jax.jit
    def soft(x, tau):
        return log_sum_exp(tau).plus(x)

    x = jnp.asarray(X)
    for tau in (0.5, 2.0):
        np.testing.assert_allclose(soft(x, tau), log_sum_exp(tau).plus(x), rtol=1e-6)


@pytest.mark.parametrize("tau", [0.0, -1.0, math.inf, math.nan])
def test_bad_temperature(tau):
    with pytest.raises(ValueError, match="temperature"):
        log_sum_exp(tau)


def test_bad_semiring_inputs():
    with pytest.raises(TypeError, match="temperature must be a number"):
        log_sum_exp("hot")
    with pytest.raises(UnknownNameError, match="max-plus"):
        Semiring("max_plus")


# ---------------------------------------------------------------------- the backup
def _small_mdp() -> TabularMDP:
    """2 states x 2 actions, hand-checkable."""
    P = np.zeros((2, 2, 2))
    P[0, 0] = [0.5, 0.5]
    P[0, 1] = [0.0, 1.0]
    P[1, 0] = [1.0, 0.0]
    P[1, 1] = [0.0, 1.0]
    R = np.array([[1.0, 0.0], [2.0, -1.0]])
    return TabularMDP(P, R, 0.5)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_backup_hand_computed(jit, sparse):
    mdp = _small_mdp()
    mdp = mdp.to_sparse() if sparse else mdp
    V = jnp.asarray([2.0, 4.0])
    # Q = R + 0.5 * E V: [[1 + 0.5*3, 0 + 0.5*4], [2 + 0.5*2, -1 + 0.5*4]]
    want_q = np.array([[2.5, 2.0], [3.0, 1.0]])
    fn = jax.jit(bellman_backup, static_argnums=2) if jit else bellman_backup
    out = fn(MDPArrays.from_mdp(mdp), V, MAX_PLUS)
    assert isinstance(out, Backup)
    np.testing.assert_allclose(out.q_values, want_q)
    np.testing.assert_allclose(out.values, [2.5, 3.0])
    np.testing.assert_allclose(fn(mdp, V, MIN_PLUS).values, [2.0, 1.0])
    pi = jnp.asarray([[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(
        fn(mdp, V, SUM_PRODUCT, weights=pi).values, [2.25, 0.25 * 3.0 + 0.75 * 1.0]
    )
    tau = 0.25
    np.testing.assert_allclose(
        fn(mdp, V, log_sum_exp(tau)).values,
        tau * np.log(np.exp(want_q / tau).sum(axis=1)),
        rtol=1e-6,
    )


def test_backup_dense_equals_sparse_random():
    rng = np.random.default_rng(0)
    S, A, K = 12, 3, 4
    ns = rng.integers(0, S, (S, A, K))
    p = rng.random((S, A, K))
    p /= p.sum(axis=2, keepdims=True)
    mdp = TabularMDP(SparseTransitions(ns, p), rng.standard_normal((S, A)), 0.9)
    V = jnp.asarray(rng.standard_normal(S), jnp.float32)
    sparse = bellman_backup(mdp, V, MAX_PLUS)
    dense = bellman_backup(mdp.to_dense(), V, MAX_PLUS)
    np.testing.assert_allclose(sparse.q_values, dense.q_values, rtol=1e-5, atol=1e-5)
    want = np.asarray(mdp.R) + 0.9 * np.einsum("sat,t->sa", mdp.dense_P(), np.asarray(V))
    np.testing.assert_allclose(q_values(mdp, V), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        expected_next_values(MDPArrays.from_mdp(mdp), V),
        np.einsum("sat,t->sa", mdp.dense_P(), np.asarray(V)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_mdp_arrays_layout_and_dtype():
    mdp = _small_mdp().to_sparse()
    arr = MDPArrays.from_mdp(mdp)
    K = mdp.P.shape[2]
    assert arr.is_sparse and arr.next_state.shape == (K, 2, 2) and arr.prob.shape == (K, 2, 2)
    assert arr.next_state.dtype == jnp.int32
    assert (arr.num_states, arr.num_actions) == (2, 2)
    dense = MDPArrays.from_mdp(_small_mdp())
    assert not dense.is_sparse and dense.P.shape == (2, 2, 2)
    assert MDPArrays.from_mdp(dense) is dense
    assert MDPArrays.from_mdp(dense, jnp.float32).R.dtype == jnp.float32


def test_backup_rejects_non_mdp():
    with pytest.raises(TypeError, match="TabularMDP"):
        bellman_backup({"P": 1}, jnp.zeros(2), MAX_PLUS)


@pytest.mark.parametrize("n", [3, UNROLL_MAX + 8])  # unrolled chain and plain reduction
def test_plus_and_argbest_paths_agree_with_numpy(n):
    x = np.random.default_rng(n).standard_normal((5, n))
    x[0, :2] = x[0, 2]  # a tie: the first index wins
    xj = jnp.asarray(x)
    np.testing.assert_allclose(SUM_PRODUCT.plus(xj), x.sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(MAX_PLUS.plus(xj), x.max(axis=1))
    np.testing.assert_allclose(MIN_PLUS.plus(xj), x.min(axis=1))
    np.testing.assert_allclose(
        log_sum_exp(0.3).plus(xj), 0.3 * np.log(np.exp(x / 0.3).sum(axis=1)), rtol=1e-5
    )
    np.testing.assert_array_equal(MAX_PLUS.argbest(xj), x.argmax(axis=1))
    np.testing.assert_array_equal(MIN_PLUS.argbest(xj), x.argmin(axis=1))
    np.testing.assert_array_equal(MAX_PLUS.argbest(xj.T, axis=0), x.argmax(axis=1))


# ---------------------------------------------------------------------- uneven sparse rows
def _uneven_mdp(seed: int = 0, S: int = 15, A: int = 3) -> TabularMDP:
    """Rows of 1-3 successors, except (2, 0) and (9, 2), which reach every state."""
    rng = np.random.default_rng(seed)
    idx, val = [], []
    for s in range(S):
        for a in range(A):
            full = (s, a) in ((2, 0), (9, 2))
            nxt = np.arange(S) if full else rng.choice(S, rng.integers(1, 4), replace=False)
            idx += [(s, a, n) for n in nxt]
            val += list(rng.dirichlet(np.ones(len(nxt))))
    return TabularMDP.from_coo(np.array(idx), np.array(val), rng.standard_normal((S, A)), 0.9)


SEMIRINGS = [
    pytest.param(SUM_PRODUCT, id="sum-product"),
    pytest.param(MAX_PLUS, id="max-plus"),
    pytest.param(MIN_PLUS, id="min-plus"),
    pytest.param(log_sum_exp(0.3), id="log-sum-exp"),
]


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("semiring", SEMIRINGS)
def test_backup_uneven_layout_equals_dense(semiring, jit):
    mdp = _uneven_mdp()
    assert mdp.P.num_overflow > 0  # the long rows spill over
    arrays = MDPArrays.from_mdp(mdp, jnp.float32)
    assert arrays.has_overflow and arrays.overflow_prob.dtype == jnp.float32
    rng = np.random.default_rng(1)
    V = jnp.asarray(rng.standard_normal(15), jnp.float32)
    weights = None
    if semiring.kind == "sum-product":
        w = rng.random((15, 3))
        weights = jnp.asarray(w / w.sum(axis=1, keepdims=True), jnp.float32)
    fn = jax.jit(bellman_backup, static_argnums=2) if jit else bellman_backup
    got = fn(arrays, V, semiring, weights=weights)
    want = fn(MDPArrays.from_mdp(mdp.to_dense(), jnp.float32), V, semiring, weights=weights)
    np.testing.assert_allclose(got.q_values, want.q_values, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.values, want.values, rtol=1e-5, atol=1e-5)
    q = np.asarray(mdp.R) + 0.9 * mdp.dense_P() @ np.asarray(V, np.float64)
    np.testing.assert_allclose(got.q_values, q, rtol=1e-5, atol=1e-5)


def test_wide_padded_rows_use_a_reduction():
    # K > SLOT_UNROLL_MAX successor slots: summed by one reduction, not an unrolled chain
    mdp = random_mdp_dense(S=SLOT_UNROLL_MAX + 8, A=2).to_sparse()
    assert mdp.P.shape[2] > SLOT_UNROLL_MAX and mdp.P.num_overflow == 0
    V = jnp.asarray(np.random.default_rng(2).standard_normal(mdp.num_states), jnp.float32)
    np.testing.assert_allclose(
        expected_next_values(MDPArrays.from_mdp(mdp), V),
        mdp.dense_P() @ np.asarray(V),
        rtol=1e-5,
        atol=1e-5,
    )


def random_mdp_dense(S: int, A: int) -> TabularMDP:
    rng = np.random.default_rng(S)
    P = rng.random((S, A, S)) + 0.01
    return TabularMDP(P / P.sum(axis=2, keepdims=True), rng.standard_normal((S, A)), 0.9)


def test_segment_plus_with_sorted_ids():
    x = jnp.asarray([1.0, 4.0, -2.0, 3.0, 0.5])
    seg = jnp.asarray([0, 0, 2, 2, 2])
    for sr in (SUM_PRODUCT, MAX_PLUS, MIN_PLUS, log_sum_exp(0.7)):
        np.testing.assert_allclose(
            sr.segment_plus(x, seg, 3, indices_are_sorted=True), sr.segment_plus(x, seg, 3)
        )
