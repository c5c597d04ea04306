"""TabularPOMDP: validation by TabularMDP's rules, expected rewards, pytree round trip."""

import jax
import numpy as np
import pytest

from bellmax.core import InvalidMDPError
from bellmax.pomdp import TabularPOMDP, expected_rewards


def small():
    T = np.array([[[0.9, 0.1], [0.2, 0.8]]])
    Ob = np.array([[[0.7, 0.3], [0.4, 0.6]]])
    return T, Ob, np.array([[1.0], [2.0]])


def test_fields_and_mdp_underneath():
    T, Ob, R = small()
    p = TabularPOMDP(T, Ob, R, gamma=0.9, name="x")
    assert (p.num_states, p.num_actions, p.num_observations) == (2, 1, 2)
    np.testing.assert_allclose(p.b0, [0.5, 0.5])  # default uniform
    assert p.states == ("0", "1") and p.gamma == 0.9
    np.testing.assert_allclose(p.mdp.P[:, 0, :], T[0])
    leaves, tree = jax.tree.flatten(p)
    q = jax.tree.unflatten(tree, leaves)
    assert q.gamma == 0.9 and q.states == p.states and q.name == "x"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"T": np.array([[[0.9, 0.2], [0.2, 0.8]]])}, r"P\[0, 0, :\] sums to 1\.1"),
        ({"T": np.zeros((2, 2))}, r"T must be an \(A, S, S\) array"),
        ({"O": np.array([[[0.7, 0.2], [0.4, 0.6]]])}, r"O\[0, 0, :\] sums to 0\.9"),
        ({"O": np.array([[[1.2, -0.2], [0.4, 0.6]]])}, r"O\[0, 0, 1\] = -0\.2"),
        ({"O": np.ones((1, 3, 2)) / 2}, r"O must have shape \(A, S, O\) = \(1, 2"),
        ({"R": np.array([[np.inf], [0.0]])}, r"R\[0, 0\] = inf is not finite"),
        ({"R": np.zeros((3, 1))}, r"P has shape"),
        ({"gamma": 1.5}, r"gamma = 1\.5 must be one number in \[0, 1\]"),
        ({"b0": [0.2, 0.2]}, r"b0 must be a probability vector"),
        ({"b0": [1.5, -0.5]}, r"b0\[1\] = -0\.5; a belief holds probabilities >= 0"),
        ({"b0": [1.0]}, r"b0 must be a belief of 2 probabilities"),
        ({"R": np.zeros((3, 1))}, r"read P's shapes and indices as T's with the first two axes"),
        ({"states": ["a", "a"]}, r"distinct; 'a' appears twice"),
        ({"actions": ["a", "b"]}, r"2 given for 1 actions"),
    ],
)
def test_bad_input_named(change, message):
    T, Ob, R = small()
    kwargs = {"T": T, "O": Ob, "R": R, "gamma": 0.9} | change
    with pytest.raises(InvalidMDPError, match=message):
        TabularPOMDP(**kwargs)


def test_gamma_type_error():
    T, Ob, R = small()
    with pytest.raises(TypeError, match="gamma must be a number"):
        TabularPOMDP(T, Ob, R, gamma=None)


def test_expected_rewards_by_hand():
    T, Ob, _ = small()
    R4 = np.zeros((1, 2, 2, 2))
    R4[0, :, 1, 0] = 10.0  # reward 10 for reaching state 1 and seeing observation 0
    # R[s, 0] = 10 * T[0, s, 1] * O[0, 1, 0]
    np.testing.assert_allclose(expected_rewards(T, Ob, R4), [[10 * 0.1 * 0.4], [10 * 0.8 * 0.4]])
    # a reward that depends only on (a, s) passes through
    np.testing.assert_allclose(expected_rewards(T, Ob, np.full((1, 2, 1, 1), 3.0)), [[3.0], [3.0]])
