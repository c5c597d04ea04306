"""TabularMDP: construction, dense/sparse round trips, and every validation error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core import InvalidMDPError, SparseTransitions, TabularMDP


def random_mdp(rng, S=6, A=3, succ=3, gamma=0.9):
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            nxt = rng.choice(S, size=succ, replace=False)
            P[s, a, nxt] = rng.dirichlet(np.ones(succ))
    return TabularMDP(P, rng.normal(size=(S, A)), gamma)


def test_dense_sparse_round_trip():
    m = random_mdp(np.random.default_rng(0))
    sp = m.to_sparse()
    assert sp.is_sparse and not m.is_sparse
    assert sp.P.shape == (6, 3, 3)  # exactly the 3 successors per row are kept
    np.testing.assert_allclose(sp.dense_P(), m.dense_P())
    np.testing.assert_allclose(sp.to_dense().P, m.P)
    assert sp.shape == (6, 3) and sp.num_states == 6 and sp.num_actions == 3


def test_from_coo_sums_duplicates_and_pads():
    # (s, a, s') rows; (0, 0, 1) appears twice and must be summed.
    idx = np.array([[0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]])
    val = np.array([0.5, 0.5, 1.0, 1.0, 0.25, 0.75])
    m = TabularMDP.from_coo(idx, val, np.zeros((2, 2)), 0.5)
    dense = m.dense_P()
    expected = np.array([[[0, 1], [1, 0]], [[0, 1], [0.25, 0.75]]])
    np.testing.assert_allclose(dense, expected)
    assert m.P.shape == (2, 2, 2)


def test_mdp_is_a_pytree_usable_under_jit():
    m = random_mdp(np.random.default_rng(1)).to_sparse()

    @jax.jit
    def expected_next_value(mdp, v):
        return jnp.sum(mdp.P.prob * v[mdp.P.next_state], axis=-1)

    v = jnp.arange(6.0)
    got = expected_next_value(m, v)
    np.testing.assert_allclose(got, m.dense_P() @ np.arange(6.0), rtol=1e-6)
    leaves, treedef = jax.tree.flatten(m)
    back = jax.tree.unflatten(treedef, leaves)
    assert isinstance(back, TabularMDP) and back.is_sparse


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda P, R: TabularMDP(P, R, 1.5), r"gamma = 1.5 must be one number in \[0, 1\]"),
        (lambda P, R: TabularMDP(P, R, -0.1), r"gamma"),
        (lambda P, R: TabularMDP(P, R, float("nan")), r"gamma"),
        (
            lambda P, R: TabularMDP(P[:, :, :2], R, 0.9),
            r"P has shape \(3, 2, 2\) but R has shape \(3, 2\)",
        ),
        (lambda P, R: TabularMDP(P[0], R, 0.9), r"P must have shape \(S, A, S\)"),
        (lambda P, R: TabularMDP(P, R[:, 0], 0.9), r"R must have shape \(S, A\)"),
        (lambda P, R: TabularMDP(P, R[:2], 0.9), r"P has shape"),
        (
            lambda P, R: TabularMDP(P, np.where(np.eye(3, 2) > 0, np.nan, R), 0.9),
            r"R\[0, 0\] = nan is not finite",
        ),
        (lambda P, R: TabularMDP(P, np.zeros((0, 2)), 0.9), r"at least one state"),
        (lambda P, R: TabularMDP(P, R.astype(str), 0.9), r"real numbers"),
    ],
)
def test_shape_reward_and_discount_errors(make, match):
    P = np.full((3, 2, 3), 1 / 3)
    R = np.zeros((3, 2))
    with pytest.raises(InvalidMDPError, match=match):
        make(P, R)


def test_row_sum_error_names_first_bad_state_action_and_sum():
    P = np.full((3, 2, 3), 1 / 3)
    P[1, 1] = [0.5, 0.2, 0.2]
    with pytest.raises(InvalidMDPError, match=r"P\[1, 1, :\] sums to 0.9, not 1"):
        TabularMDP(P, np.zeros((3, 2)), 0.9)
    sp = SparseTransitions.from_dense(P)  # the same error from the sparse layout
    with pytest.raises(InvalidMDPError, match=r"P\[1, 1, :\] sums to 0.9"):
        TabularMDP(sp, np.zeros((3, 2)), 0.9)


def test_negative_probability_error():
    P = np.full((3, 2, 3), 1 / 3)
    P[2, 0] = [1.2, -0.2, 0.0]
    with pytest.raises(InvalidMDPError, match=r"P\[2, 0\] has a negative probability \(-0.2\)"):
        TabularMDP(P, np.zeros((3, 2)), 0.9)
    sp = SparseTransitions.from_dense(np.full((3, 2, 3), 1 / 3))
    prob = np.array(sp.prob)
    prob[2, 1] = [1.5, -0.5, 0.0]
    with pytest.raises(InvalidMDPError, match=r"P\[2, 1\] has a negative probability"):
        TabularMDP(SparseTransitions(sp.next_state, prob), np.zeros((3, 2)), 0.9)


def test_sparse_specific_errors():
    ns = np.zeros((3, 2, 1), np.int32)
    pr = np.ones((3, 2, 1))
    with pytest.raises(InvalidMDPError, match=r"same shape"):
        TabularMDP(SparseTransitions(ns, pr[:, :, :0]), np.zeros((3, 2)))
    with pytest.raises(InvalidMDPError, match=r"\(S, A\) = \(3, 2\) but R has shape \(4, 2\)"):
        TabularMDP(SparseTransitions(ns, pr), np.zeros((4, 2)))
    bad = ns.copy()
    bad[1, 0, 0] = 3
    with pytest.raises(InvalidMDPError, match=r"next_state\[1, 0, 0\] = 3 is outside \[0, 3\)"):
        TabularMDP(SparseTransitions(bad, pr), np.zeros((3, 2)))
    with pytest.raises(InvalidMDPError, match=r"integer array"):
        TabularMDP(SparseTransitions(ns.astype(float), pr), np.zeros((3, 2)))


def test_coo_errors():
    R = np.zeros((2, 2))
    with pytest.raises(InvalidMDPError, match=r"shape \(nnz, 3\)"):
        TabularMDP.from_coo(np.zeros((4, 2), int), np.ones(4), R)
    with pytest.raises(InvalidMDPError, match=r"P_values must have shape \(nnz,\) = \(4,\)"):
        TabularMDP.from_coo(np.zeros((4, 3), int), np.ones(3), R)
    with pytest.raises(InvalidMDPError, match=r"row 1 = \(0, 5, 1\) has a = 5 outside \[0, 2\)"):
        TabularMDP.from_coo(np.array([[0, 0, 1], [0, 5, 1]]), np.ones(2), R)
    with pytest.raises(InvalidMDPError, match=r"fractional"):
        TabularMDP.from_coo(np.array([[0, 0, 0.5]]), np.ones(1), R)
    with pytest.raises(InvalidMDPError, match=r"R must have shape \(S, A\)"):
        TabularMDP.from_coo(np.array([[0, 0, 1]]), np.ones(1), np.zeros(2))
    # rows that are missing entirely sum to 0 and are reported
    with pytest.raises(InvalidMDPError, match=r"P\[0, 1, :\] sums to 0, not 1"):
        TabularMDP.from_coo(np.array([[0, 0, 1], [1, 0, 0], [1, 1, 1]]), np.ones(3), R)


def test_terminal_and_initial_validation():
    P = np.full((3, 2, 3), 1 / 3)
    R = np.zeros((3, 2))
    m = TabularMDP(
        P, R, 1.0, terminal=np.array([True, False, False]), initial=np.array([0, 0.5, 0.5])
    )
    assert m.gamma == 1.0
    with pytest.raises(InvalidMDPError, match=r"terminal must be a bool mask of shape \(3,\)"):
        TabularMDP(P, R, 0.9, terminal=np.zeros(2, bool))
    with pytest.raises(InvalidMDPError, match=r"initial must be a probability vector .* sum 0.9"):
        TabularMDP(P, R, 0.9, initial=np.array([0.3, 0.3, 0.3]))


def test_replace_revalidates():
    m = random_mdp(np.random.default_rng(2))
    with pytest.raises(InvalidMDPError, match="gamma"):
        m.replace(gamma=2.0)
    assert m.replace(gamma=0.5).gamma == 0.5
