"""Random ("Garnet") MDPs for tests and benchmarks (Archibald et al., 1995)."""

from __future__ import annotations

import numpy as np

from bellmax.core.checks import check_int
from bellmax.core.mdp import SparseTransitions, TabularMDP

__all__ = ["random_mdp"]


def random_mdp(
    seed: int,
    num_states: int,
    num_actions: int,
    num_successors: int | None = None,
    *,
    gamma: float = 0.99,
    sparse: bool | None = None,
) -> TabularMDP:
    """A random ("Garnet") MDP: each `(s, a)` moves to `num_successors` distinct, uniformly
    drawn states with random probabilities and pays a standard-normal reward (Archibald et al., 1995).

    Built on the host with numpy, in `O(S * A * K)` memory: 1e6 x 4 x 5 takes ~0.3 GB.

    Args:
      seed: numpy seed.
      num_states, num_actions: `S`, `A`.
      num_successors: `K` successors per `(s, a)` (default: all `S`, a dense MDP).
      gamma: discount.
      sparse: store `SparseTransitions` (default: when `num_successors` is given).

    Returns:
      A validated `TabularMDP`.
    """
    S = check_int(num_states, "num_states", low=1)
    A = check_int(num_actions, "num_actions", low=1)
    rng = np.random.default_rng(seed)
    R = rng.standard_normal((S, A))
    if num_successors is None:
        P = rng.random((S, A, S)) ** 4  # uneven rows
        P /= P.sum(axis=2, keepdims=True)
        mdp = TabularMDP(P, R, gamma)
        return mdp.to_sparse() if sparse else mdp
    K = check_int(num_successors, "num_successors", low=1, high=S)  # at most every state
    ns = rng.integers(0, S, size=(S * A, K), dtype=np.int32 if S < 2**31 else np.int64)
    p = rng.random((S, A, K)) + 1e-3
    ns = _distinct_successors(rng, ns, S).reshape(S, A, K)
    p /= p.sum(axis=2, keepdims=True)
    mdp = TabularMDP(SparseTransitions(next_state=ns, prob=p), R, gamma)
    return mdp if sparse is None or sparse else mdp.to_dense()


def _distinct_successors(rng: np.random.Generator, ns: np.ndarray, S: int) -> np.ndarray:
    """`ns [rows, K]` with every row that repeats a state drawn again until it does not (for
    `K` much less than `S`, as in large Garnets, a repeat is rare; rows drawn once keep their
    states, so a seed's MDP changes only where a row repeated), and rows still repeating
    after a few rounds (`K` near `S`) given `K` states drawn without replacement."""
    K = ns.shape[1]

    def repeating(rows: np.ndarray) -> np.ndarray:
        ordered = np.sort(rows, axis=1)
        return np.any(ordered[:, 1:] == ordered[:, :-1], axis=1)

    bad = np.flatnonzero(repeating(ns))
    for _ in range(8):
        if bad.size == 0:
            break
        ns[bad] = rng.integers(0, S, size=(bad.size, K), dtype=ns.dtype)
        bad = bad[repeating(ns[bad])]
    for row in bad:
        ns[row] = rng.choice(S, K, replace=False)
    return ns
