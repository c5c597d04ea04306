"""Shared fixtures of the POMDP tests: the tiger problem, read once from its .pomdp file."""

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
