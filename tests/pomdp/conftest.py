"""Shared fixtures of the POMDP tests: the tiger problem, read once from its .pomdp file, and
its exact Q-values computed in numpy (independent of bellmax)."""

from pathlib import Path

import numpy as np
import pytest

from bellmax.pomdp import TabularPOMDP, load_pomdp

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiger():
    return load_pomdp(DATA / "tiger.pomdp")


@pytest.fixture(scope="session")
def sparse_pomdp():
    """A POMDP with two successors per (a, s) and one observation per (a, s'): most (a, o)
    pairs are impossible from a narrow belief, and `K = 2` is far below `S`."""
    S, A, Z = 24, 3, 12
    rng = np.random.default_rng(0)
    T = np.zeros((A, S, S))
    for a in range(A):
        for s in range(S):
            nxt = rng.choice(S, 2, replace=False)
            T[a, s, nxt] = rng.dirichlet(np.ones(2))
    Ob = np.zeros((A, S, Z))
    Ob[np.arange(A)[:, None], np.arange(S)[None], rng.integers(0, Z, (A, S))] = 1.0
    R = rng.normal(size=(S, A))
    return TabularPOMDP(T=T, O=Ob, R=R, gamma=0.9, b0=np.full(S, 1.0 / S))


# ---------------------------------------------------------------------- the tiger's exact Q
GAMMA, HEARS_RIGHT = 0.95, 0.85  # tests/pomdp/data/tiger.pomdp


@pytest.fixture(scope="session")
def tiger_q():
    """`tiger_q(p_left, horizon) -> Q_h(b, .)` of the tiger problem (`_tiger_q`)."""
    return _tiger_q


def _tiger_q(p_left, horizon, *, rungs=40):
    """`Q_h(b, .)` of the tiger problem at `b = (p_left, 1 - p_left)`, in numpy (not bellmax).

    Listening only moves the belief's log-odds by `+-log(0.85 / 0.15)`, and opening a door
    resets it to uniform; so every belief reachable from `b` lies on a ladder of log-odds
    through `b`, and every belief after a door on the ladder through 0. Value iteration on the
    two ladders (`2 * rungs + 1` rungs each) is exact for `horizon <= rungs`; beyond that,
    listening at the end rungs (within `(0.15 / 0.85)^40 ~ 1e-30` of certainty) stays put,
    an error below 1e-25.
    """
    step = np.log(HEARS_RIGHT / (1 - HEARS_RIGHT))
    with np.errstate(divide="ignore", over="ignore"):  # a certain belief: infinite log-odds
        offsets = np.array([0.0, np.log(p_left / (1 - p_left))])
        p = 1 / (1 + np.exp(-(offsets[:, None] + np.arange(-rungs, rungs + 1) * step)))
    hear_left = HEARS_RIGHT * p + (1 - HEARS_RIGHT) * (1 - p)
    v = np.zeros_like(p)  # V_0 on both ladders; row 0 the uniform ladder
    for _ in range(horizon):
        up = np.concatenate([v[:, 1:], v[:, -1:]], axis=1)  # after hearing the tiger left
        down = np.concatenate([v[:, :1], v[:, :-1]], axis=1)
        reset = GAMMA * v[0, rungs]  # V_{h-1}(uniform)
        q = np.stack(
            [
                -1 + GAMMA * (hear_left * up + (1 - hear_left) * down),
                -100 * p + 10 * (1 - p) + reset,
                10 * p - 100 * (1 - p) + reset,
            ],
            axis=-1,
        )
        v = q.max(axis=-1)
    return q[1, rungs]
