"""Tests for bellmax.tabular.shortest_paths: a graph solved by hand, random graphs against
scipy's Dijkstra and Bellman-Ford, several sources and targets, unreachable nodes, negative
cycles, deterministic MDPs (dense and sparse) and the messages for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import NegativeCycleError, bellman_ford, dijkstra

import bellmax
from bellmax.core.mdp import SparseTransitions, TabularMDP
from bellmax.tabular import value_iteration
from bellmax.tabular._common import ShortestPathResult
from bellmax.tabular.shortest_paths import shortest_paths

# ---------------------------------------------------------------------- a graph by hand
# 0 -> 1 (4), 0 -> 2 (1), 0 -> 2 (7, a parallel edge), 2 -> 1 (2), 1 -> 3 (1), 2 -> 3 (5),
# 3 -> 4 (3), 4 -> 4 (2, a self-loop); node 5 has no edges (num_nodes = 6).
HAND = (
    np.array([0, 0, 0, 2, 1, 2, 3, 4]),
    np.array([1, 2, 2, 1, 3, 3, 4, 4]),
    np.array([4.0, 1.0, 7.0, 2.0, 1.0, 5.0, 3.0, 2.0]),
)


def out(res: ShortestPathResult) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(res.distances), np.asarray(res.predecessors)


def test_hand_graph_from_a_source():
    # From 0: d2 = 1 (0->2); d1 = min(4, 1 + 2) = 3 via 2; d3 = min(3 + 1, 1 + 5) = 4 via 1;
    # d4 = 4 + 3 = 7 via 3; d5 = inf. Relaxing every edge at once, round 1 sets d1 = 4, d2 = 1;
    # round 2 d1 = 3, d3 = 5; round 3 d3 = 4, d4 = 8; round 4 d4 = 7; round 5 changes nothing.
    res = shortest_paths(HAND, source=0, num_nodes=6)
    d, pred = out(res)
    np.testing.assert_array_equal(d, [0, 3, 1, 4, 7, np.inf])
    np.testing.assert_array_equal(pred, [-1, 2, 0, 1, 3, -1])
    assert res.status_name == "converged" and res.converged
    assert int(res.iterations) == 5
    assert res.policy is None  # only MDPs have actions
    assert d.dtype == np.float64 and pred.dtype == np.int32


def test_hand_graph_towards_a_target():
    # To 4: d3 = 3 (next 4); d1 = 1 + 3 = 4 (next 3); d2 = min(2 + 4, 5 + 3) = 6 (next 1);
    # d0 = min(4 + 4, 1 + 6, 7 + 6) = 7 (next 2); d5 = inf. `predecessors` is the next node.
    d, nxt = out(shortest_paths(HAND, target=4, num_nodes=6))
    np.testing.assert_array_equal(d, [7, 4, 6, 3, 0, np.inf])
    np.testing.assert_array_equal(nxt, [2, 3, 1, 4, -1, -1])


def test_hand_graph_several_sources_and_targets():
    # From {0, 3}: the nearest of the two; 4 is reached from 3 for 3.
    d, pred = out(shortest_paths(HAND, source=[0, 3], num_nodes=6))
    np.testing.assert_array_equal(d, [0, 3, 1, 0, 3, np.inf])
    np.testing.assert_array_equal(pred, [-1, 2, 0, -1, 3, -1])
    # To {1, 4}: 3's only edge is 3 -> 4 (3); 2 -> 1 costs 2 (2 -> 3 -> 4 costs 8); from 0,
    # 0 -> 2 -> 1 costs 3 (0 -> 1 costs 4).
    d, nxt = out(shortest_paths(HAND, target=np.array([1, 4]), num_nodes=6))
    np.testing.assert_array_equal(d, [3, 0, 2, 3, 0, np.inf])
    np.testing.assert_array_equal(nxt, [2, -1, 1, 4, -1, -1])


def test_default_num_nodes_and_empty_graphs():
    # without num_nodes the graph ends at its largest index (4 here): node 5 is not there
    assert out(shortest_paths(HAND, source=0))[0].shape == (5,)
    d, pred = out(shortest_paths(([], [], []), source=0, num_nodes=3))
    np.testing.assert_array_equal(d, [0, np.inf, np.inf])
    np.testing.assert_array_equal(pred, [-1, -1, -1])
    np.testing.assert_array_equal(out(shortest_paths(([], [], []), source=0))[0], [0.0])


def test_float32():
    res = shortest_paths(HAND, source=0, num_nodes=6, dtype=np.float32)
    d, pred = out(res)
    assert d.dtype == np.float32
    np.testing.assert_array_equal(d, np.array([0, 3, 1, 4, 7, np.inf], np.float32))
    np.testing.assert_array_equal(pred, [-1, 2, 0, 1, 3, -1])


# ---------------------------------------------------------------------- against scipy
N, M = 60, 200  # one size for every random graph: one compilation


def random_graph(seed, low, high, *, dag=False, among=N):
    """M distinct edges (no self-loops) between nodes 0..among-1 of N, weights uniform in
    [low, high), in no particular order."""
    rng = np.random.default_rng(seed)
    pairs = set()
    while len(pairs) < M:
        u, v = (int(x) for x in rng.integers(0, among, 2))
        if u != v and (not dag or u < v):
            pairs.add((u, v))
    src, dst = (np.array(x) for x in zip(*sorted(pairs), strict=True))
    order = rng.permutation(M)
    src, dst = src[order], dst[order]
    w = rng.uniform(low, high, M)
    return src, dst, w, sp.csr_matrix((w, (src, dst)), shape=(N, N))


def check_tree(res, src, dst, w, reverse=False):
    """Each node's recorded edge attains its distance: d[v] = d[u] + w(u, v) (min over
    parallel edges); towards a target, d[u] = w(u, v) + d[v] for the next node v."""
    d, pred = out(res)
    best = {}
    for u, v, x in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        best[u, v] = min(best.get((u, v), np.inf), x)
    for v in np.flatnonzero(pred >= 0):
        u = int(pred[v])
        np.testing.assert_allclose(d[v], d[u] + best[(v, u) if reverse else (u, v)], rtol=1e-12)
    return pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_graphs_match_dijkstra(seed):
    # edges among nodes 0..49 only: 50..59 are unreachable (and 55 a source of nothing)
    src, dst, w, g = random_graph(seed, 0.1, 10.0, among=50)
    for source in (0, [7, 31, 55]):
        res = shortest_paths((src, dst, w), source=source, num_nodes=N)
        want = dijkstra(g, directed=True, indices=source, min_only=True)
        assert np.sum(np.isinf(want)) >= 9
        np.testing.assert_allclose(np.asarray(res.distances), want, rtol=1e-12)
        assert res.converged and 1 <= int(res.iterations) <= N
        pred = check_tree(res, src, dst, w)
        starts = np.atleast_1d(source)
        assert np.all(pred[starts] == -1) and np.all(pred[np.isinf(want)] == -1)
        assert np.all(pred[np.isfinite(want) & ~np.isin(np.arange(N), starts)] >= 0)
    # towards targets: Dijkstra on the reversed graph
    res = shortest_paths((src, dst, w), target=[4, 9], num_nodes=N)
    want = dijkstra(g.T.tocsr(), directed=True, indices=[4, 9], min_only=True)
    np.testing.assert_allclose(np.asarray(res.distances), want, rtol=1e-12)
    check_tree(res, src, dst, w, reverse=True)


def test_negative_weights_match_bellman_ford():
    # on a DAG any weights are safe
    src, dst, w, g = random_graph(4, -5.0, 5.0, dag=True)
    res = shortest_paths((src, dst, w), source=0, num_nodes=N)
    np.testing.assert_allclose(np.asarray(res.distances), bellman_ford(g, indices=0), rtol=1e-12)
    # with cycles: w(u, v) = c(u, v) + phi(u) - phi(v), c >= 0, has negative edges but no
    # negative cycle (a cycle's phi terms cancel), and d_w(s, v) = d_c(s, v) + phi(s) - phi(v)
    src, dst, c, gc = random_graph(5, 0.0, 3.0)
    phi = np.random.default_rng(6).uniform(-10, 10, N)
    w = c + phi[src] - phi[dst]
    assert np.sum(w < 0) > 20
    gw = sp.csr_matrix((w, (src, dst)), shape=(N, N))
    res = shortest_paths((src, dst, w), source=2, num_nodes=N)
    d = np.asarray(res.distances)
    assert res.status_name == "converged"
    np.testing.assert_allclose(d, bellman_ford(gw, indices=2), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d, dijkstra(gc, indices=2) + phi[2] - phi, rtol=1e-9, atol=1e-9)
    check_tree(res, src, dst, w)


def test_parallel_edges_use_the_cheapest():
    rng = np.random.default_rng(7)
    src, dst = rng.integers(0, 12, M), rng.integers(0, 12, M)  # many repeated (u, v) pairs
    w = rng.uniform(0.5, 5.0, M)
    dense = np.full((N, N), np.inf)
    np.minimum.at(dense, (src, dst), w)
    np.fill_diagonal(dense, np.inf)  # self-loops of positive weight never help
    g = sp.csr_matrix(np.where(np.isinf(dense), 0, dense))
    res = shortest_paths((src, dst, w), source=0, num_nodes=N)
    np.testing.assert_allclose(np.asarray(res.distances), dijkstra(g, indices=0), rtol=1e-12)
    check_tree(res, src, dst, w)


# ---------------------------------------------------------------------- negative cycles
def test_negative_self_loop():
    # 0 -> 1 (1), 1 -> 1 (-0.5), 1 -> 2 (1); 3 -> 0 (1) is upstream of the loop, 4 is apart.
    src, dst, w = np.array([0, 1, 1, 3]), np.array([1, 1, 2, 0]), np.array([1.0, -0.5, 1.0, 1.0])
    g = sp.csr_matrix((w, (src, dst)), shape=(5, 5))
    with pytest.raises(NegativeCycleError):
        bellman_ford(g, indices=0)
    res = shortest_paths((src, dst, w), source=0, num_nodes=5)
    assert res.status_name == "negative_cycle" and not res.converged
    # 1 and 2 lie on or after the loop: -inf; 0 is the source, 3 and 4 cannot be reached
    np.testing.assert_array_equal(out(res)[0], [0, -np.inf, -np.inf, np.inf, np.inf])
    assert int(res.iterations) == 5  # the n-th round still improved: the cycle check
    # towards 0 the loop is never met: 3 -> 0 costs 1, the rest cannot reach 0
    to = shortest_paths((src, dst, w), target=0, num_nodes=5)
    assert to.converged
    np.testing.assert_array_equal(out(to)[0], [0, np.inf, np.inf, 1, np.inf])


# ---------------------------------------------------------------------- deterministic MDPs
def corridor(sparse=False) -> TabularMDP:
    """States 0..3 in a row, 3 terminal and absorbing; 4 loops on itself and reaches nothing.

    Action 0 steps one right for cost 1; action 1 jumps two right (capped at 3) for cost 1.8,
    2.5 from state 0. Costs to 3: d2 = min(1, 1.8) = 1 (a0); d1 = min(1 + 1, 1.8) = 1.8 (a1);
    d0 = min(1 + 1.8, 2.5 + 1) = 2.8 (a0); d4 = inf.
    """
    S, A = 5, 2
    P, R = np.zeros((S, A, S)), np.zeros((S, A))
    for s in range(4):
        P[s, 0, min(s + 1, 3)] = P[s, 1, min(s + 2, 3)] = 1.0
        R[s] = [-1.0, -1.8] if s < 3 else [0.0, 0.0]
    R[0, 1] = -2.5
    P[4, :, 4] = 1.0
    R[4] = -1.0
    mdp = TabularMDP(P, R, 1.0, terminal=np.array([0, 0, 0, 1, 0], bool))
    return mdp.to_sparse() if sparse else mdp


@pytest.mark.parametrize("sparse", [False, True])
def test_corridor_mdp_by_hand(sparse):
    res = shortest_paths(corridor(sparse))
    d, nxt = out(res)
    np.testing.assert_allclose(d, [2.8, 1.8, 1.0, 0.0, np.inf], rtol=1e-12)
    np.testing.assert_array_equal(nxt, [1, 3, 3, -1, -1])
    np.testing.assert_array_equal(np.asarray(res.policy), [0, 1, 0, -1, -1])
    assert res.converged
    # another target: to 2 (3 is absorbing and cannot come back): d1 = 1, d0 = min(2, 2.5)
    to2 = shortest_paths(corridor(sparse), target=2)
    np.testing.assert_allclose(out(to2)[0], [2.0, 1.0, 0.0, np.inf, np.inf], rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(to2.policy), [0, 0, -1, -1, -1])


def test_sparse_mdp_with_a_successor_stored_twice_is_deterministic():
    # P[0, 0] holds 0.5 + 0.5 on state 1: one successor, as a dense P would show it
    ns = np.array([[[1, 1]], [[1, 1]]])
    p = np.array([[[0.5, 0.5]], [[1.0, 0.0]]])
    mdp = TabularMDP(SparseTransitions(ns, p), np.array([[-2.0], [0.0]]), 1.0)
    np.testing.assert_array_equal(out(shortest_paths(mdp, target=1))[0], [2.0, 0.0])


# ---------------------------------------------------------------------- bad input
_E = (np.array([0, 1]), np.array([1, 2]), np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    ("graph", "kwargs", "error", "match"),
    [
        (_E[:2], {"source": 0}, TypeError, r"edge list \(src, dst, weight\) of three arrays"),
        ({"src": 0}, {"source": 0}, TypeError, "got dict"),
        (tuple(x[None] for x in _E), {"source": 0}, ValueError, r"got shapes \(1, 2\)"),
        ((_E[0], _E[1], np.array([True, False])), {"source": 0}, TypeError, "real numbers"),
        ((_E[0], _E[1], _E[2] + 1j), {"source": 0}, TypeError, "real numbers, got dtype complex"),
        ((_E[0], _E[1], np.array([1.0, np.nan])), {"source": 0}, ValueError, r"weight\[1\] = nan"),
        ((_E[0], _E[1] * 1.0, _E[2]), {"source": 0}, TypeError, r"dst must hold integer node"),
        (
            (_E[0] - 1, _E[1], _E[2]),
            {"source": 0},
            ValueError,
            r"src\[0\] = -1 is outside \[0, 3\)",
        ),
        (_E, {"source": 0, "num_nodes": 0}, ValueError, r"num_nodes must be an int >= 1"),
        (_E, {"source": []}, ValueError, "source must be a node index or a non-empty list"),
        (_E, {"source": 1.0}, ValueError, "source must be a node index"),
        (_E, {"source": [[0]]}, ValueError, "source must be a node index"),
        (
            _E,
            {"target": [0, 3]},
            ValueError,
            r"target node 3 is outside \[0, 3\); nodes are 0 \.\. 2",
        ),
        (_E, {"source": 0, "dtype": np.float16}, TypeError, "dtype must be float32 or float64"),
        (_E, {"source": 0, "dtype": int}, TypeError, "dtype must be float32 or float64"),
    ],
)
def test_bad_edge_lists(graph, kwargs, error, match):
    with pytest.raises(error, match=match):
        shortest_paths(graph, **kwargs)


def test_bad_mdps():
    grid = corridor()
    with pytest.raises(ValueError, match=r"gamma = 0\.9; use value_iteration"):
        shortest_paths(grid.replace(gamma=0.9))
    with pytest.raises(ValueError, match=r"pass target=\.\.\., not source="):
        shortest_paths(grid, source=0)
    with pytest.raises(ValueError, match="marks no terminal states; pass target="):
        shortest_paths(grid.replace(terminal=None))
    with pytest.raises(ValueError, match=r"target node 5 is outside \[0, 5\)"):
        shortest_paths(grid, target=5)
    P = grid.dense_P().copy()
    P[1, 1] = [0, 0, 0.5, 0.5, 0]  # a coin flip between 2 and 3
    for mdp in (grid.replace(P=P), grid.replace(P=P).to_sparse()):
        with pytest.raises(ValueError, match=r"P\[1, 1\] splits its probability"):
            shortest_paths(mdp)


# ---------------------------------------------------------------------- a cycle, a grid world
def test_shortest_paths_report_negative_cycles():
    # 0 -> 1 -> 2 -> 3 -> 1 (cycle weight 1 - 3 + 1 = -1), 3 -> 4; 5 -> 6 stays apart
    src, dst = np.array([0, 1, 2, 3, 3, 5]), np.array([1, 2, 3, 1, 4, 6])
    w = np.array([1.0, -3.0, 1.0, 1.0, 2.0, 1.0])
    g = sp.csr_matrix((w, (src, dst)), shape=(7, 7))
    with pytest.raises(NegativeCycleError):
        bellman_ford(g, indices=0)
    res = shortest_paths((src, dst, w), source=0)
    assert res.status_name == "negative_cycle"
    d = np.asarray(res.distances)
    assert d[0] == 0.0
    assert np.all(d[1:5] == -np.inf)  # on the cycle or reachable from it
    assert np.all(d[5:] == np.inf)  # unreachable
    # the same graph from node 5 never meets the cycle
    other = shortest_paths((src, dst, w), source=5)
    assert other.status_name == "converged"
    np.testing.assert_allclose(np.asarray(other.distances), bellman_ford(g, indices=5))


def test_shortest_paths_on_a_deterministic_mdp():
    env, params = bellmax.make("GridWorld4x4-v0")
    mdp = env.tabular_mdp(params)
    res = shortest_paths(mdp)
    vi = value_iteration(mdp, tol=1e-12)
    np.testing.assert_allclose(np.asarray(res.distances), -np.asarray(vi.values))
    # following the policy from any cell reaches a corner in `distance` steps
    pol, P = np.asarray(res.policy), mdp.dense_P()
    for s in range(mdp.num_states):
        here, steps = s, 0
        while not mdp.terminal[here]:
            here, steps = int(P[here, pol[here]].argmax()), steps + 1
        assert steps == np.asarray(res.distances)[s]
