"""Tests for bellmax.tabular.garnet: random ("Garnet") MDPs have the promised shapes, proper
rows, `K` successors per (s, a), the seed's draws, the discount asked for; bad sizes refused."""

from __future__ import annotations

import numpy as np
import pytest

import bellmax.tabular
import bellmax.tabular.dp
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.tabular.garnet import random_mdp


def test_reexported_from_dp_and_the_package():
    assert bellmax.tabular.dp.random_mdp is random_mdp
    assert bellmax.tabular.random_mdp is random_mdp


def test_dense_by_default():
    mdp = random_mdp(0, 7, 3)
    assert isinstance(mdp, TabularMDP) and not mdp.is_sparse
    P, R = np.asarray(mdp.P), np.asarray(mdp.R)
    assert P.shape == (7, 3, 7) and R.shape == (7, 3)
    assert P.dtype == R.dtype == np.float64
    np.testing.assert_allclose(P.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    assert np.all(P > 0)  # every state a successor of every (s, a)
    assert mdp.gamma == 0.99  # the default discount


@pytest.mark.parametrize("sparse", [None, False])
def test_num_successors_slots(sparse):
    S, A, K = 50, 4, 3
    mdp = random_mdp(1, S, A, K, sparse=sparse)
    assert mdp.is_sparse == (sparse is None)  # sparse by default when K is given
    P = mdp.dense_P()
    assert P.shape == (S, A, S)
    np.testing.assert_allclose(P.sum(axis=2), 1.0, rtol=0, atol=1e-12)
    nonzero = (P > 0).sum(axis=2)
    assert nonzero.max() == K and nonzero.min() >= 1
    if mdp.is_sparse:
        ns, p = np.asarray(mdp.P.next_state), np.asarray(mdp.P.prob)
        assert isinstance(mdp.P, SparseTransitions) and mdp.P.num_overflow == 0
        assert ns.shape == p.shape == (S, A, K)
        assert np.all(p > 0) and np.all((ns >= 0) & (ns < S))  # K real slots, no padding


def test_sparse_and_dense_forms_hold_the_same_draw():
    # the sparse flag changes the storage only
    for K in (None, 4):
        a = random_mdp(2, 9, 2, K, sparse=True)
        b = random_mdp(2, 9, 2, K, sparse=False)
        assert a.is_sparse and not b.is_sparse
        np.testing.assert_allclose(a.dense_P(), b.dense_P(), rtol=0, atol=1e-15)
        np.testing.assert_array_equal(np.asarray(a.R), np.asarray(b.R))


def test_num_successors_are_distinct_states():
    # Garnet's branching factor: K distinct successors per (s, a). K = S: every state a
    # successor of every (s, a); with replacement only 5!/5^5 ~ 4% of rows would be.
    S = K = 5
    P = random_mdp(0, S, 2, K).dense_P()
    assert np.all((P > 0).sum(axis=2) == K)
    for S, K in ((50, 7), (2_000, 3)):  # rows of few successors among many states
        ns = np.asarray(random_mdp(1, S, 3, K).P.next_state)
        ordered = np.sort(ns, axis=-1)
        assert not np.any(ordered[..., 1:] == ordered[..., :-1])


def test_successors_are_uniform_over_the_states():
    # 50 x 20 rows of 7 distinct successors: each state fills 7/50 of the 7000 slots, 140 in
    # expectation. Pearson's chi-square against uniform has 49 degrees of freedom (mean 49,
    # sd 9.9); above 128 (8 sd) has probability < 1e-8 for a uniform draw, while successors
    # confined to a subset (e.g. always states 0..K-1) give thousands.
    S, A, K = 50, 20, 7
    ns = np.asarray(random_mdp(4, S, A, K).P.next_state)
    counts = np.bincount(ns.ravel(), minlength=S)
    expected = S * A * K / S
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert counts.min() > 0 and chi2 < 128, (chi2, counts)


def test_same_seed_same_mdp_other_seed_other_mdp():
    for K in (None, 3):
        a, b, c = random_mdp(5, 12, 3, K), random_mdp(5, 12, 3, K), random_mdp(6, 12, 3, K)
        np.testing.assert_array_equal(a.dense_P(), b.dense_P())
        np.testing.assert_array_equal(np.asarray(a.R), np.asarray(b.R))
        assert not np.allclose(a.dense_P(), c.dense_P())
        assert not np.allclose(np.asarray(a.R), np.asarray(c.R))


def test_rewards_are_standard_normal():
    R = np.asarray(random_mdp(3, 500, 8, 2).R)  # 4000 draws: the mean's sd is 0.016
    assert abs(R.mean()) < 0.08 and abs(R.std() - 1.0) < 0.08


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_gamma_passed_through(gamma):
    assert random_mdp(0, 3, 2, gamma=gamma).gamma == gamma
    assert random_mdp(0, 3, 2, 2, gamma=gamma).gamma == gamma


def test_smallest_sizes():
    one = random_mdp(0, 1, 1, 1)
    np.testing.assert_array_equal(one.dense_P(), [[[1.0]]])
    assert random_mdp(0, 1, 1).dense_P().shape == (1, 1, 1)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((0, 1), {}, ValueError, r"num_states must be an int >= 1, got 0"),
        ((2, 0), {}, ValueError, r"num_actions must be an int >= 1, got 0"),
        ((2.0, 1), {}, TypeError, r"num_states must be an int, got float 2\.0 \(write 2\)"),
        ((True, 1), {}, TypeError, r"num_states must be an int, got bool"),
        ((3, 2, 0), {}, ValueError, r"num_successors must be an int >= 1 and <= 3, got 0"),
        ((3, 2, 4), {}, ValueError, r"num_successors must be an int >= 1 and <= 3, got 4"),
        ((3, 2, 2.0), {}, TypeError, r"num_successors must be an int, got float"),
        ((3, 2), {"gamma": 1.5}, ValueError, r"gamma = 1\.5 must be one number in \[0, 1\]"),
        ((3, 2, 2), {"gamma": -0.1}, ValueError, r"gamma = -0\.1 must be one number in \[0, 1\]"),
    ],
)
def test_bad_arguments(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        random_mdp(0, *args, **kwargs)
