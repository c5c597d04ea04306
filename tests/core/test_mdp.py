"""TabularMDP: construction, dense/sparse round trips, and every validation error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core import InvalidMDPError, SparseTransitions, TabularMDP
from bellmax.core.mdp import OVERFLOW_COST, ell_width


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
    ],
)
def test_shape_reward_and_discount_errors(make, match):
    P = np.full((3, 2, 3), 1 / 3)
    R = np.zeros((3, 2))
    with pytest.raises(InvalidMDPError, match=match):
        make(P, R)


def test_transposed_R_is_blamed_not_P():
    # S and A come from P (S, A, S); a transposed R must not get advice to reshape a correct P.
    P = np.full((3, 2, 3), 1 / 3)
    R = np.zeros((3, 2))
    with pytest.raises(
        InvalidMDPError, match=r"R has shape \(2, 3\) but P has shape \(3, 2, 3\)"
    ) as e:
        TabularMDP(P, R.T, 0.9)
    assert "R looks transposed: pass R.T" in str(e.value)
    with pytest.raises(InvalidMDPError, match=r"R looks transposed"):
        TabularMDP(SparseTransitions.from_dense(P), R.T, 0.9)
    with pytest.raises(InvalidMDPError, match=r"R must be \(S, A\) = \(3, 2\) to match P") as e:
        TabularMDP(P, np.zeros((4, 2)), 0.9)  # a wrong R that is not a transpose: no hint
    assert "transposed" not in str(e.value)


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
    with pytest.raises(
        InvalidMDPError, match=r"R has shape \(4, 2\) but sparse P has \(S, A\) = \(3, 2\)"
    ):
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


# ---------------------------------------------------------------------- uneven sparse rows
def uneven_coo(rng, S=40, A=3, full_rows=((7, 1),)):
    """COO rows of 1-3 successors each, except `full_rows`, which reach every state."""
    idx, val = [], []
    for s in range(S):
        for a in range(A):
            nxt = np.arange(S) if (s, a) in full_rows else rng.choice(S, rng.integers(1, 4), False)
            idx += [(s, a, n) for n in nxt]
            val += list(rng.dirichlet(np.ones(len(nxt))))
    return np.array(idx), np.array(val), rng.normal(size=(S, A))


def test_ell_width_hand_computed():
    assert ell_width(np.full(10, 5)) == 5  # even rows: pure padding, no overflow
    assert ell_width([1] * 9 + [100]) == 1  # 10 + 4 * 99 = 406 < 100 * 10
    # 7 rows of 4 and 3 of 5: K = 5 costs 50, K = 4 costs 40 + 4 * 3 = 52
    assert ell_width([4] * 7 + [5] * 3) == 5
    assert ell_width([4] * 7 + [5] * 3, overflow_cost=3) == 4  # 40 + 9 = 49 < 50
    assert ell_width([4] * 6 + [5] * 2, overflow_cost=4) == 5  # a tie (40 = 32 + 8): larger K
    assert ell_width([]) == ell_width([0, 0]) == 1
    assert OVERFLOW_COST > 1


def test_from_coo_spills_long_rows_into_the_overflow():
    idx, val, R = uneven_coo(np.random.default_rng(0))
    m = TabularMDP.from_coo(idx, val, R, 0.9)
    S, A, K = m.P.shape
    assert (S, A) == (40, 3) and K <= 3  # not padded to the longest row (40)
    assert m.P.num_overflow == 40 - K
    assert m.P.nnz <= 2 * len(val)  # memory proportional to the non-zeros
    assert np.all(np.diff(m.P.overflow_row) >= 0)  # sorted rows
    want = np.zeros((S, A, S))
    np.add.at(want, tuple(idx.T), val)
    np.testing.assert_allclose(m.dense_P(), want)
    # to_coo inverts from_coo; from_dense gives the same layout
    back_idx, back_val = m.P.to_coo()
    again = SparseTransitions.from_coo(back_idx, back_val, S, A)
    np.testing.assert_allclose(again.to_dense(), want)
    from_dense = TabularMDP(want, R, 0.9).to_sparse()
    assert from_dense.P.shape == m.P.shape and from_dense.P.num_overflow == m.P.num_overflow
    np.testing.assert_allclose(from_dense.dense_P(), want)


def test_even_rows_have_no_overflow():
    m = random_mdp(np.random.default_rng(3), S=8, A=2, succ=4).to_sparse()
    assert m.P.shape == (8, 2, 4) and m.P.num_overflow == 0 and m.P.overflow_row is None
    idx, val = m.P.to_coo()
    assert idx.shape == (64, 3) and np.all(idx[:, 0] == np.repeat(np.arange(8), 8))


def test_uneven_mdp_is_a_pytree_usable_under_jit():
    idx, val, R = uneven_coo(np.random.default_rng(1), S=12, A=2, full_rows=((3, 0), (5, 1)))
    m = TabularMDP.from_coo(idx, val, R, 0.9)
    assert m.P.num_overflow > 0

    @jax.jit
    def expected_next_value(mdp, v):
        sp = mdp.P
        ell = jnp.sum(sp.prob * v[sp.next_state], axis=-1).reshape(-1)
        spill = jax.ops.segment_sum(
            sp.overflow_prob * v[sp.overflow_next_state], sp.overflow_row, ell.shape[0]
        )
        return (ell + spill).reshape(mdp.R.shape)

    v = jnp.arange(12.0)
    np.testing.assert_allclose(expected_next_value(m, v), m.dense_P() @ np.arange(12.0), rtol=1e-6)
    back = jax.tree.unflatten(*reversed(jax.tree.flatten(m)))
    assert back.is_sparse and back.P.num_overflow == m.P.num_overflow


def _with_overflow(**changes):
    """A valid 2-state, 1-action sparse MDP whose row (1, 0) continues in the overflow."""
    fields = {
        "next_state": np.array([[[1]], [[0]]]),
        "prob": np.array([[[1.0]], [[0.5]]]),
        "overflow_row": np.array([1]),
        "overflow_next_state": np.array([1]),
        "overflow_prob": np.array([0.5]),
    }
    fields.update(changes)
    return TabularMDP(SparseTransitions(**fields), np.zeros((2, 1)), 0.9)


def test_overflow_validation_errors():
    np.testing.assert_allclose(_with_overflow().dense_P()[:, 0], [[0, 1], [0.5, 0.5]])
    with pytest.raises(InvalidMDPError, match=r"P\[1, 0, :\] sums to 0.8, not 1"):
        _with_overflow(overflow_prob=np.array([0.3]))
    with pytest.raises(InvalidMDPError, match=r"P\[1, 0\] has a negative probability \(-0.5\)"):
        _with_overflow(prob=np.array([[[1.0]], [[1.5]]]), overflow_prob=np.array([-0.5]))
    with pytest.raises(InvalidMDPError, match=r"overflow_row\[0\] = 2 is outside \[0, 2\)"):
        _with_overflow(overflow_row=np.array([2]))
    with pytest.raises(InvalidMDPError, match=r"overflow_next_state\[0\] = -1 is outside"):
        _with_overflow(overflow_next_state=np.array([-1]))
    with pytest.raises(InvalidMDPError, match=r"all of overflow_row, overflow_next_state"):
        _with_overflow(overflow_prob=None)
    with pytest.raises(InvalidMDPError, match=r"1-D arrays of one length"):
        _with_overflow(overflow_prob=np.array([0.25, 0.25]))
    with pytest.raises(InvalidMDPError, match=r"overflow_row must be an integer array"):
        _with_overflow(overflow_row=np.array([1.0]))
    unsorted = {
        "overflow_row": np.array([1, 0]),
        "overflow_next_state": np.array([1, 0]),
        "overflow_prob": np.array([0.5, 0.0]),
    }
    with pytest.raises(
        InvalidMDPError, match=r"overflow_row must be sorted .* overflow_row\[1\] = 0"
    ):
        _with_overflow(**unsorted)


# ---------------------------------------------------------------------- Python input checks
def test_gamma_of_the_wrong_type_is_a_type_error_naming_the_fix():
    P, R = np.full((2, 1, 2), 0.5), np.zeros((2, 1))
    for bad in (None, "0.9", True, object()):
        with pytest.raises(TypeError, match=r"gamma must be a number in \[0, 1\].*gamma=0.99"):
            TabularMDP(P, R, gamma=bad)
    with pytest.raises(TypeError, match=r"gamma must be a number"):
        TabularMDP.from_coo(np.array([[0, 0, 1], [1, 0, 0]]), np.ones(2), R, None)
    with pytest.raises(InvalidMDPError, match=r"gamma = 2 must be one number in \[0, 1\]"):
        TabularMDP(P, R, 2)  # a number, but a wrong value: ValueError
    assert float(TabularMDP(P, R, np.float32(0.5)).gamma) == 0.5
    assert float(TabularMDP(P, R, jnp.asarray(0.5)).gamma) == 0.5
    assert TabularMDP(P, R, 1).gamma == 1


def test_nested_lists_are_accepted():
    P = [[[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]
    R = [[1.0, 0.0], [2, -1]]
    m = TabularMDP(P, R, 0.9, terminal=[False, True], initial=(1.0, 0.0))
    assert isinstance(m.P, np.ndarray) and isinstance(m.R, np.ndarray) and m.shape == (2, 2)
    assert m.terminal.dtype == bool and m.initial.shape == (2,)
    np.testing.assert_allclose(m.dense_P(), np.asarray(P))
    np.testing.assert_allclose(m.to_sparse().dense_P(), np.asarray(P))
    coo = TabularMDP.from_coo([[0, 0, 1], [1, 0, 0]], [1.0, 1.0], [[0.0], [1.0]], 0.5)
    np.testing.assert_allclose(coo.dense_P()[:, 0], [[0, 1], [1, 0]])


def test_wrong_shapes_name_the_expected_shape():
    P, R = np.full((3, 2, 3), 1 / 3), np.zeros((3, 2))
    with pytest.raises(
        InvalidMDPError, match=r"P must have shape \(S, A, S\) = \(3, 2, 3\).*got shape \(3, 3\)"
    ):
        TabularMDP(P[:, 0], R, 0.9)
    with pytest.raises(
        InvalidMDPError, match=r"R must have shape \(S, A\) = \(3, 2\) to match P, got shape \(3,\)"
    ):
        TabularMDP(P, R[:, 0], 0.9)
    with pytest.raises(InvalidMDPError, match=r"P must be \(S, A, S\) = \(3, 2, 3\)"):
        TabularMDP(P[:, :, :2], R, 0.9)
    with pytest.raises(InvalidMDPError, match=r"P is a ragged nested list.*\(S, A, S\)"):
        TabularMDP([[[1.0], [0.5, 0.5]]], [[0.0, 0.0]], 0.9)
    with pytest.raises(InvalidMDPError, match=r"R is a ragged nested list"):
        TabularMDP([[[1.0]]], [[0.0], [1.0, 2.0]], 0.9)


def test_wrong_types_are_type_errors():
    P, R = np.full((3, 2, 3), 1 / 3), np.zeros((3, 2))
    with pytest.raises(TypeError, match=r"R must hold real numbers .* got dtype <U"):
        TabularMDP(P, R.astype(str), 0.9)
    with pytest.raises(TypeError, match=r"P must hold real numbers"):
        TabularMDP([[["a"]]], [[0.0]], 0.9)
    with pytest.raises(TypeError, match=r"P must be an \(S, A, S\) array .* got dict.*from_coo"):
        TabularMDP({"P": P}, R, 0.9)
    with pytest.raises(TypeError, match=r"R must be an \(S, A\) array .* got NoneType"):
        TabularMDP(P, None, 0.9)
    with pytest.raises(TypeError, match=r"prob must hold real numbers"):
        TabularMDP(SparseTransitions(np.zeros((1, 1, 1), int), np.array([[["1"]]])), [[0.0]])
