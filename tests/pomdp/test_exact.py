"""Exact finite-horizon values (tiger, published, to 10 steps), against brute-force expectimax
(the QMDP, FIB and blind bounds: test_bounds.py)."""

import numpy as np
import pytest

from bellmax.pomdp import (
    exact_value_iteration,
    prune,
)

# Tiger, gamma 0.95: V_h(uniform) for h = 1..5 (Cassandra's pomdp-solve; PEERS.md).
TIGER_FINITE = [-1.0, -1.95, 2.3098, 1.7955, 2.7631]
# ... and for h = 10 (PEERS.md, published to 4 decimals; an audit reproduced it by
# brute-force expectimax). h = 20 (11.8796) is left out: the exact solver takes ~20 s there.
TIGER_V10 = 6.6934


@pytest.fixture(scope="module")
def tiger_exact(tiger):
    return exact_value_iteration(tiger, 10)


def expectimax(p, b, h):
    """V_h(b) by enumerating every action and observation sequence (no pruning)."""
    if h == 0:
        return 0.0
    T, Ob, R = np.asarray(p.T), np.asarray(p.O), np.asarray(p.R)
    best = -np.inf
    for a in range(p.num_actions):
        v = b @ R[:, a]
        pred = b @ T[a]
        for o in range(p.num_observations):
            joint = pred * Ob[a, :, o]
            if joint.sum() > 0:
                v += p.gamma * joint.sum() * expectimax(p, joint / joint.sum(), h - 1)
        best = max(best, v)
    return best


def test_tiger_finite_horizon_published(tiger_exact):
    np.testing.assert_allclose(tiger_exact.values[:5], TIGER_FINITE, atol=5e-5)
    assert [s.size for s in tiger_exact.stages[:5]] == [3, 5, 9, 7, 13]


def test_tiger_ten_steps_published(tiger_exact):
    # atol 5e-5: the published value's precision.
    assert tiger_exact.values[9] == pytest.approx(TIGER_V10, abs=5e-5)
    # the value of the last stage's vectors at b0 is the value reported
    alphas = np.asarray(tiger_exact.policy.alphas)
    assert float(np.max(alphas @ [0.5, 0.5])) == pytest.approx(tiger_exact.values[9], abs=1e-12)


def test_exact_equals_expectimax_everywhere(tiger, tiger_exact):
    for b in np.random.default_rng(0).dirichlet(np.ones(2), size=5):
        for h in (1, 2, 3, 4):
            v = float(np.max(np.asarray(tiger_exact.stages[h - 1].alphas) @ b))
            assert v == pytest.approx(expectimax(tiger, b, h), abs=1e-9)


def test_exact_stops_at_its_time_limit_with_the_stages_done(tiger):
    # A tiny limit: the stage under way is dropped, the ones done are exact.
    res = exact_value_iteration(tiger, 100_000, time_limit=0.05)
    assert 0 <= len(res.values) < 100_000 and len(res.stages) == len(res.values)
    np.testing.assert_allclose(res.values[:5], TIGER_FINITE[: len(res.values)], atol=5e-5)
    with pytest.raises(ValueError, match="time_limit"):
        exact_value_iteration(tiger, 3, time_limit=0.0)


def test_prune_keeps_only_the_upper_surface():
    # In 2 states: [1, 0] and [0, 1] are maximal; [0.4, 0.4] is below both mixtures;
    # [0.6, 0.6] wins around the middle; [0.5, 0] is pointwise dominated; a duplicate goes.
    alphas = np.array([[1, 0], [0, 1], [0.4, 0.4], [0.6, 0.6], [0.5, 0], [1, 0]], float)
    kept, acts = prune(alphas, np.arange(6))
    assert sorted(map(tuple, kept)) == [(0, 1), (0.6, 0.6), (1, 0)]
    assert sorted(acts.tolist()) == [0, 1, 3]
