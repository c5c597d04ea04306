"""Policy evaluation (bellmax.tabular.evaluation) beyond the Sutton & Barto cases of test_dp.py."""

import numpy as np
import pytest

from bellmax.core import TabularMDP
from bellmax.tabular import evaluate_policy


def _chain(n: int) -> TabularMDP:
    """A deterministic chain s -> s + 1 with reward 1 per step, the last state absorbing."""
    P = np.zeros((n, 1, n))
    P[np.arange(n - 1), 0, np.arange(1, n)] = 1.0
    P[n - 1, 0, n - 1] = 1.0
    R = np.ones((n, 1))
    R[n - 1] = 0.0
    return TabularMDP(P, R, gamma=1.0)


@pytest.mark.parametrize("n", [6, 120])  # one Krylov cycle (25 steps), and several
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("method", ["direct", "jacobi", "krylov"])
def test_undiscounted_chain_steps_to_the_end(n, sparse, method):
    """At gamma = 1 on a chain, I - P is unipotent: BiCGSTAB breaks down on it (it returned NaN
    and 'diverged'); every method must give the number of steps left."""
    mdp = _chain(n)
    if sparse:
        mdp = mdp.to_sparse()
    res = evaluate_policy(mdp, np.zeros(n, dtype=np.int32), method=method)
    assert res.converged, res.status_name
    np.testing.assert_allclose(np.asarray(res.values), np.arange(n - 1, -1, -1), atol=1e-6)
