"""Shortest paths by min-plus Bellman-Ford, with negative cycles detected (Bellman 1958; Ford 1956).

`shortest_paths` takes an edge list or a deterministic undiscounted `TabularMDP` (read as the
graph `s -> s'` with cost `-R(s, a)`) and relaxes every edge at once per round: the min-plus
semiring's matrix-vector product (`bellmax.core.semiring.MIN_PLUS`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int
from bellmax.core.mdp import TabularMDP
from bellmax.core.semiring import MIN_PLUS
from bellmax.core.status import Status
from bellmax.tabular._common import ShortestPathResult, check_dtype, precision

__all__ = ["shortest_paths"]


class _Relaxation(NamedTuple):
    distances: jax.Array
    pred_edge: jax.Array
    """The edge that last improved each node (-1: none)."""
    rounds: jax.Array
    improved: jax.Array
    """Which nodes the last round improved."""
    changed: jax.Array
    """Whether the last round improved any node."""


class _Graph(NamedTuple):
    """An edge list to relax, and where the paths end."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    num_nodes: int
    ends: np.ndarray
    """The source nodes (distances from them) or, when `reverse`, the targets."""
    reverse: bool
    """Distances *to* `ends` (relaxed along the reversed edges)."""
    actions: np.ndarray | None = None
    """For an MDP: the action of each edge."""


class _Found(NamedTuple):
    distances: jax.Array
    pred_edge: jax.Array
    rounds: jax.Array
    status: jax.Array


@partial(jax.jit, static_argnames=("num_nodes",))
def _bellman_ford(src, dst, weight, start, num_nodes: int) -> _Found:
    """Min-plus relaxation `d(v) <- min(d(v), min_{(u, v)} d(u) + w(u, v))` (Bellman-Ford)."""
    n = num_nodes
    big = jnp.iinfo(jnp.int32).max
    edge_ids = jnp.arange(src.shape[0], dtype=jnp.int32)

    def relax(c: _Relaxation) -> _Relaxation:
        cand = MIN_PLUS.times(c.distances[src], weight)
        best = MIN_PLUS.segment_plus(cand, dst, n)
        # The edge that attains the min (lowest index on ties): min-plus's argbest, per node.
        arg = jax.ops.segment_min(jnp.where(cand == best[dst], edge_ids, big), dst, n)
        improved = best < c.distances
        return _Relaxation(
            distances=jnp.where(improved, best, c.distances),
            pred_edge=jnp.where(improved, arg, c.pred_edge),
            rounds=c.rounds + 1,
            improved=improved,
            changed=jnp.any(improved),
        )

    init = _Relaxation(
        distances=jnp.where(start, 0.0, jnp.inf).astype(weight.dtype),
        pred_edge=jnp.full(n, -1, jnp.int32),
        rounds=jnp.int32(0),
        improved=jnp.zeros(n, bool),
        changed=jnp.bool_(True),
    )
    # n rounds at most: n - 1 settle every shortest path; a change in round n means a
    # negative cycle is reachable.
    out = jax.lax.while_loop(lambda c: c.changed & (c.rounds < n), relax, init)
    negative = out.changed & (out.rounds >= n)

    # Everything reachable from a node still improving in round n has distance -inf.
    def spread(c):
        mask, _ = c
        reach = jax.ops.segment_max(mask[src].astype(jnp.int32), dst, n) > 0
        new = mask | reach
        return new, jnp.any(new != mask)

    unbounded, _ = jax.lax.while_loop(lambda c: c[1], spread, (out.improved & negative, negative))
    return _Found(
        distances=jnp.where(unbounded, -jnp.inf, out.distances),
        pred_edge=out.pred_edge,
        rounds=out.rounds,
        status=jnp.where(negative, Status.NEGATIVE_CYCLE, Status.CONVERGED).astype(jnp.int32),
    )


def _node_list(nodes: Any, n: int, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(nodes))
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a node index or a non-empty list of them, got {nodes!r}.")
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(f"{name} node {int(bad[0])} is outside [0, {n}); nodes are 0 .. {n - 1}.")
    return arr


def _mdp_edges(mdp: TabularMDP, target: Any) -> _Graph:
    """The graph `s -> s'` of a deterministic MDP, with cost `-R(s, a)`, towards `target`."""
    if float(mdp.gamma) != 1.0:
        raise ValueError(
            f"shortest_paths on an MDP adds undiscounted costs, but gamma = {float(mdp.gamma)}; "
            "use value_iteration for discounted problems (or set gamma=1)."
        )
    S, A = mdp.shape
    if mdp.is_sparse:
        # Each (s, a) row's largest probability (duplicates summed) and its successor.
        idx, p = mdp.P.to_coo()
        key = (idx[:, 0].astype(np.int64) * A + idx[:, 1]) * S + idx[:, 2]
        key, inv = np.unique(key, return_inverse=True)
        p = np.bincount(inv.reshape(-1), weights=p, minlength=key.size)
        flat, col = key // S, key % S
        order = np.lexsort((-p, flat))  # by row, then the largest probability first
        first = order[np.diff(flat[order], prepend=-1) != 0]
        top, succ = np.zeros(S * A), np.zeros(S * A, np.int64)
        top[flat[first]], succ[flat[first]] = p[first], col[first]
        top, succ = top.reshape(S, A), succ.reshape(S, A)
    else:
        P = np.asarray(mdp.P)
        succ = np.argmax(P, axis=2)
        top = np.take_along_axis(P, succ[..., None], axis=2)[..., 0]
    bad = np.argwhere(top < 1.0 - 1e-9)
    if bad.size:
        s, a = (int(i) for i in bad[0])
        raise ValueError(
            f"shortest_paths needs deterministic transitions, but P[{s}, {a}] splits its "
            "probability over several states; use value_iteration for stochastic MDPs."
        )
    if target is None:
        if mdp.terminal is None or not np.any(mdp.terminal):
            raise ValueError(
                "this MDP marks no terminal states; pass target=<state or states> to "
                "shortest_paths."
            )
        target = np.flatnonzero(np.asarray(mdp.terminal))
    targets = _node_list(target, S, "target")
    is_target = np.zeros(S, bool)
    is_target[targets] = True
    s_idx = np.repeat(np.arange(S), A)
    keep = ~is_target[s_idx]
    return _Graph(
        src=s_idx[keep],
        dst=succ.reshape(-1)[keep],
        weight=-np.asarray(mdp.R, np.float64).reshape(-1)[keep],
        num_nodes=S,
        ends=targets,
        reverse=True,
        actions=np.tile(np.arange(A), S)[keep],
    )


def _edge_list(graph: Any, source: Any, target: Any, num_nodes: Any) -> _Graph:
    """The checked edge list `graph` with its sources or targets."""
    if not isinstance(graph, tuple | list) or len(graph) != 3:
        raise TypeError(
            "graph must be an edge list (src, dst, weight) of three arrays, or a "
            f"TabularMDP; got {type(graph).__name__}."
        )
    src, dst, w = (np.asarray(x) for x in graph)
    if not (src.ndim == dst.ndim == w.ndim == 1) or not (src.shape == dst.shape == w.shape):
        raise ValueError(
            f"src, dst and weight must be 1-D arrays of one length, got shapes {src.shape}, "
            f"{dst.shape}, {w.shape}."
        )
    for name, x in (("src", src), ("dst", dst)):
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"{name} must hold integer node indices, got dtype {x.dtype}.")
    if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise TypeError(f"weight must hold real numbers, got dtype {w.dtype}.")
    if not np.all(np.isfinite(w)):
        e = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"weight[{e}] = {w[e]} is not finite; leave missing edges out instead.")
    top = int(max(src.max(initial=-1), dst.max(initial=-1))) + 1
    n = top if num_nodes is None else check_int(num_nodes, "num_nodes", low=1)
    n = max(n, 1)
    for name, x in (("src", src), ("dst", dst)):
        bad = np.flatnonzero((x < 0) | (x >= n))
        if bad.size:
            e = int(bad[0])
            raise ValueError(f"{name}[{e}] = {int(x[e])} is outside [0, {n}); check num_nodes.")
    if (source is None) == (target is None):
        raise ValueError(
            "give exactly one of source= (distances from it) and target= (distances to it)."
        )
    reverse = target is not None
    nodes = _node_list(target if reverse else source, n, "target" if reverse else "source")
    return _Graph(src=src, dst=dst, weight=w, num_nodes=n, ends=nodes, reverse=reverse)


def shortest_paths(
    graph: TabularMDP | tuple[Any, Any, Any],
    *,
    source: Any = None,
    target: Any = None,
    num_nodes: int | None = None,
    dtype: Any = jnp.float64,
) -> ShortestPathResult:
    """Shortest paths by min-plus Bellman-Ford, with negative cycles detected and reported.

    Each round relaxes every edge at once, `d(v) <- min(d(v), min_u d(u) + w(u, v))`: a
    min-plus "matrix-vector product" with the edge-weight matrix (Bellman 1958; Ford 1956).
    After `n - 1` rounds every shortest path without a negative cycle is settled; if round
    `n` still improves a distance, a negative cycle is reachable: the status is
    `negative_cycle` and every node reachable from such a cycle gets distance -inf.

    Args:
      graph: an edge list `(src, dst, weight)` of equal-length arrays (ints in `[0, n)` and
        finite floats; parallel edges are fine), or a `TabularMDP` with deterministic
        transitions and `gamma = 1`, read as the graph `s -> s'` with cost `-R(s, a)`.
      source: for an edge list, the start node(s): distances *from* them.
      target: the end node(s): distances *to* them (default for an MDP: its terminal states,
        so `distances = -V*`). Give exactly one of `source` and `target`.
      num_nodes: number of nodes of an edge list (default: 1 + the largest index).
      dtype: float64 (default) or float32.

    Returns:
      A `ShortestPathResult` (`policy` holds the action to take, for an MDP).
    """
    dt = check_dtype(dtype)
    if isinstance(graph, TabularMDP):
        if source is not None:
            raise ValueError(
                "for an MDP, shortest_paths measures costs to reach a target (default: the "
                "terminal states); pass target=..., not source=."
            )
        g = _mdp_edges(graph, target)
    else:
        g = _edge_list(graph, source, target, num_nodes)
    # distances to the target: relax along reversed edges
    src, dst = (g.dst, g.src) if g.reverse else (g.src, g.dst)
    start = np.zeros(g.num_nodes, bool)
    start[g.ends] = True
    with precision(dt):
        src = jnp.asarray(src, jnp.int32)
        found = _bellman_ford(
            src,
            jnp.asarray(dst, jnp.int32),
            jnp.asarray(g.weight, dt),
            jnp.asarray(start),
            num_nodes=g.num_nodes,
        )
        has = found.pred_edge >= 0
        safe = jnp.where(has, found.pred_edge, 0)

        def along(labels: jax.Array) -> jax.Array:  # the label of each node's chosen edge
            return jnp.where(has, labels[safe] if labels.size else -1, -1).astype(jnp.int32)

        return ShortestPathResult(
            distances=found.distances,
            predecessors=along(src),
            iterations=found.rounds,
            status=found.status,
            policy=None if g.actions is None else along(jnp.asarray(g.actions, jnp.int32)),
        )
