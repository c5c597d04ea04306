"""An anytime solver with two bounds at b0, in the spirit of HSVI2 (and SARSOP).

Heuristic search value iteration (Smith & Simmons 2004, "Heuristic search value iteration
for POMDPs", UAI; 2005, "Point-based POMDP algorithms: improved analysis and
implementation", UAI — HSVI2) keeps

- a lower bound: alpha vectors (starting from the blind policies), improved by the
  point-based backup (`bellmax.pomdp.pointbased.point_backup`) at the beliefs a trial visits;
- an upper bound: the fast informed bound's corner values and a set of belief/value points
  joined by the sawtooth interpolation (Hauskrecht 2000, section 4.5),
  `V_U(b) = min(b . v, min_i [b . v + phi_i(b) (v_i - b_i . v)])` with
  `phi_i(b) = min_{s: b_i(s) > 0} b(s) / b_i(s)`, and also never above the FIB itself;
  each point is added with its one-step backup `max_a Q_U(b, a)`.

A trial walks down from `b0` choosing the action with the best upper Q value and the
observation with the largest probability-weighted excess gap
`Pr(o | b, a) (V_U - V_L)(b') - e gamma^{-(t+1)}`, until the gap at depth `t` is below
`e gamma^{-t}`, then backs both bounds up along the path. The trial's target `e` is half the
current gap at `b0` (never below `epsilon`): early trials stay shallow, later ones deepen.
The loop stops when the gap at `b0` is at most `epsilon` (status converged) or at the time or
trial limit (max_iterations); both bounds are valid at every moment, so `history` shows the
gap shrinking with time.

A whole trial is one jitted call. Transitions are kept as successor lists (RockSample and
Tag have one to five successors per state and action, not `S`). On the way back up, one
lookahead per belief gives the upper Q values, the successors' bounds, the lower bound's
backup and both bounds at the belief itself together; on the way down, the lower bound is
needed only at the chosen action's successors (`_descend`). Only the possible successors are
evaluated (Tag: about 10 of its 150 (a, o) pairs once the robot's cell is known;
`_successor_bounds`). Upper points are stored sparsely (their support, at most
`_MAX_SUPPORT` states; `b0`'s value is kept apart), sorted by their likeliest state after
each trial, so the sawtooth at a belief visits only the points that can bite there (their
support inside the belief's; `_upper_sparse`). Between trials, when a set could overflow,
the host drops the upper points that others dominate at their own belief and the
lower-bound vectors that another dominates pointwise, and moves both to the next
power-of-two capacity (one compilation per size class).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields
from bellmax.core.xla import LIBRARY_DOTS, jit_lightly
from bellmax.pomdp.belief import AlphaVectors, x64
from bellmax.pomdp.bounds import blind_lower_bound, check_discounted, fast_informed_bound
from bellmax.pomdp.model import TabularPOMDP, sparse_transitions
from bellmax.pomdp.pointbased import pad_rows, padded_size

__all__ = ["AnytimeResult", "hsvi", "sawtooth_upper_bound"]

#: Smallest array sizes of the lower and the upper bound's sets (each new size class compiles
#: the trial again; upper points are sparse, so many cost little).
_MIN_ALPHAS = 512
_MIN_POINTS = 2048
#: A trial aims at this fraction of the current gap at b0 (never below `epsilon`): trials
#: stay shallow while the gap is wide and deepen as it closes.
_ZETA = 0.5
#: Upper points are stored with at most this many nonzero entries (a wider belief gets no
#: point: the bound stays valid, only looser there; b0's value is kept apart whatever its size).
_MAX_SUPPORT = 256
#: The sawtooth visits the upper points this many at a time (a divisor of the capacities).
_POINT_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class AnytimeResult(StatusFields):
    """What `hsvi` returns: both bounds at `b0`, the lower bound's policy, and their history."""

    __repr__ = summary_repr

    vectors: AlphaVectors
    """The lower bound (alpha vectors) and its policy."""
    lower_bound: float
    """`vectors.value(b0) <= V*(b0)`."""
    upper_bound: float
    """The sawtooth upper bound at `b0`, `>= V*(b0)`."""
    upper_points: np.ndarray
    """Beliefs of the upper bound's points `[M, S]`."""
    upper_values: np.ndarray
    """Their upper values `[M]`."""
    corner_values: np.ndarray
    """Upper values at the corners of the simplex `[S]` (from the fast informed bound)."""
    history: np.ndarray
    """`[trials + 1, 3]`: seconds since the start, lower and upper bound at `b0`."""
    trials: int
    """Trials run."""
    seconds: float
    """Wall-clock time (compilation included)."""
    status: int
    """`Status.CONVERGED` when the gap reached `epsilon`, `Status.DIVERGED` when a bound or
    vector is NaN or infinite, else `Status.MAX_ITERATIONS`."""

    @property
    def gap(self) -> float:
        """`upper_bound - lower_bound`."""
        return self.upper_bound - self.lower_bound


def _upper(corner, fib, pts, vals, beliefs):
    """The upper bound at beliefs `[n, S]`: min of the sawtooth and the FIB."""
    base = beliefs @ corner
    pos = pts > 0
    ratio = jnp.where(pos[None], beliefs[:, None, :] / jnp.where(pos, pts, 1.0)[None], jnp.inf)
    phi = ratio.min(axis=-1)  # [n, M]
    saw = base[:, None] + phi * (vals - pts @ corner)[None]
    return jnp.minimum(jnp.minimum(base, saw.min(axis=-1)), (beliefs @ fib.T).max(axis=-1))


@jax.jit
def sawtooth_upper_bound(corner, fib, pts, vals, beliefs):
    """The sawtooth upper bound (jitted): `beliefs [n, S]` -> `[n]`.

    Args:
      corner: upper values at the simplex corners `[S]`.
      fib: upper-bound vectors `[K, S]` (the bound is also `<= max_k b . fib[k]`).
      pts: belief points `[M, S]`.
      vals: their upper values `[M]`.
      beliefs: where to evaluate, `[n, S]`.
    """
    return _upper(corner, fib, pts, vals, beliefs)


@struct.dataclass
class _Model:
    """The POMDP as a trial uses it: sparse transitions, observations `[A, O, S']`."""

    succ: jax.Array  # [A, S, K] successor indices
    prob: jax.Array  # [A, S, K] their probabilities
    obs: jax.Array  # [A, O, S']
    R: jax.Array  # [S, A]
    b0: jax.Array
    gamma: jax.Array


def _model(pomdp: TabularPOMDP) -> _Model:
    succ, prob = sparse_transitions(pomdp.T)
    model = _Model(  # host arrays, moved in one transfer (jnp.asarray stages each: ~0.05 s)
        succ=np.asarray(succ),
        prob=np.asarray(prob),
        obs=np.swapaxes(np.asarray(pomdp.O, np.float64), 1, 2),
        R=np.asarray(pomdp.R, np.float64),
        b0=np.asarray(pomdp.b0, np.float64),
        gamma=np.float64(pomdp.gamma),
    )
    return jax.device_put(model)


@struct.dataclass
class _Bounds:
    """Both bounds in fixed-capacity arrays. Upper points are stored sparsely: the support
    `idx [Kp, Kb]` of each belief, `inv = 1 / b_i(s)` there and `pad` (2 on padding entries,
    which therefore never set the minimum ratio `phi <= 1`); free slots are all padding with
    `drop = 0`, so they add nothing."""

    alphas: jax.Array  # [Ka, S]; free slots copy alphas[0]
    actions: jax.Array  # [Ka]
    num_alphas: jax.Array
    idx: jax.Array  # [Kp, Kb]
    inv: jax.Array  # [Kp, Kb]
    pad: jax.Array  # [Kp, Kb]
    drop: jax.Array  # [Kp]: v_i - b_i . corner (<= 0)
    vals: jax.Array  # [Kp]: v_i
    num_pts: jax.Array
    starts: jax.Array  # [S + 1]: the sorted points anchored at s (idx[i, 0] == s) are the
    # rows [starts[s], starts[s + 1])
    num_sorted: jax.Array  # points [0, num_sorted) are sorted by anchor; later ones were added
    need: jax.Array  # the largest support a point to be added had (> Kb: repack wider)
    v0: jax.Array  # the upper value at b0 (kept apart: b0's support may exceed Kb)
    corner: jax.Array  # [S]
    fib: jax.Array  # [A, S]


def _teeth(bd: _Bounds, chunk: int, by_state):
    """The loop body of the sawtooth over the points `[i * chunk, (i + 1) * chunk)` at the
    beliefs `by_state [S, n]` (a state's row holds its `n` values): the running minimum of
    `phi_i(b) (v_i - b_i . corner)`; free slots give 0 (their `drop`), the loop's start."""

    def teeth(i, low):
        rows = i * chunk
        idx = jax.lax.dynamic_slice_in_dim(bd.idx, rows, chunk)
        inv = jax.lax.dynamic_slice_in_dim(bd.inv, rows, chunk)
        pad = jax.lax.dynamic_slice_in_dim(bd.pad, rows, chunk)
        drop = jax.lax.dynamic_slice_in_dim(bd.drop, rows, chunk)
        ratio = by_state[idx] * inv[..., None] + pad[..., None]  # [chunk, Kb, n]
        phi = jnp.minimum(ratio.min(axis=1), 1.0)  # [chunk, n]
        return jnp.minimum(low, (phi * drop[:, None]).min(axis=0))

    return teeth


def _upper_sparse(bd: _Bounds, beliefs):
    """The upper bound at beliefs `[n, S]` from the sparse points: min of the sawtooth and FIB.

    A point's tooth bites at `b` only if its support lies in `b`'s (else `phi_i(b) = 0`), so
    in particular its anchor (`idx[i, 0]`, its most likely state) lies between `b`'s first and
    last possible state. The sorted points `[0, num_sorted)` are ordered by anchor, so for
    each belief only the `_POINT_CHUNK`-row chunks holding anchors in that range are visited
    (RockSample: the robot's cell is known, ~40 of 1,600 points bite and ~100 are visited).
    The points added since the last sort (`[num_sorted, num_pts)`, this trial's) are visited
    for all beliefs at once. The beliefs are gathered by state from `beliefs.T`, a row of
    `n` values per index (a third faster than `n` scattered values on a CPU)."""
    base = beliefs @ bd.corner
    n, S = beliefs.shape
    chunk = min(_POINT_CHUNK, bd.idx.shape[0])
    by_state = beliefs.T  # [S, n]
    pos = beliefs > 0
    first = jnp.argmax(pos, axis=1)
    last = S - 1 - jnp.argmax(pos[:, ::-1], axis=1)
    lo = bd.starts[first] // chunk
    hi = (bd.starts[last + 1] + chunk - 1) // chunk

    def one(j, saw):
        teeth = _teeth(bd, chunk, jax.lax.dynamic_slice_in_dim(by_state, j, 1, axis=1))
        low = jax.lax.fori_loop(lo[j], hi[j], teeth, jnp.zeros((1,), saw.dtype))
        return jax.lax.dynamic_update_slice_in_dim(saw, low, j, axis=0)

    saw = jax.lax.fori_loop(0, n, one, jnp.zeros_like(base))
    tail = (bd.num_sorted // chunk, (bd.num_pts + chunk - 1) // chunk)
    saw = jax.lax.fori_loop(*tail, _teeth(bd, chunk, by_state), saw)
    return jnp.minimum(base + saw, (beliefs @ bd.fib.T).max(axis=-1))


def _sort_points(bd: _Bounds) -> _Bounds:
    """The stored points ordered by anchor (`idx[i, 0]`), free slots last (`_upper_sparse`)."""
    kp, S = bd.idx.shape[0], bd.corner.shape[0]
    anchor = jnp.where(jnp.arange(kp) < bd.num_pts, bd.idx[:, 0], S)
    order = jnp.argsort(anchor, stable=True)
    return bd.replace(
        idx=bd.idx[order],
        inv=bd.inv[order],
        pad=bd.pad[order],
        drop=bd.drop[order],
        vals=bd.vals[order],
        starts=_starts(anchor, S),
        num_sorted=bd.num_pts,
    )


def _starts(anchor, S: int):
    """`starts [S + 1]` of `_Bounds` from the points' anchors (`S` for no point)."""
    counts = jnp.zeros(S + 1, jnp.int32).at[anchor].add(1)
    return jnp.concatenate([jnp.zeros(1, jnp.int32), jnp.cumsum(counts[:S], dtype=jnp.int32)])


def _branch_sizes(A: int, Z: int) -> tuple[int, ...]:
    """The compact successor counts `_successor_bounds` tries before all `A * Z`: most
    (a, o) pairs are impossible once the belief has narrowed (Tag: two observations per
    action once the robot's cell is known, of 30)."""
    return tuple(k for k in (2 * A, 8 * A) if k < A * Z)


def _live_first(live, k: int, group: int):
    """Rows to evaluate when only the `live` ones matter: `idx`, the first `k` live rows
    (then others), and `src`, where each row's value is in `[rows[idx]; extra]`: a live
    row's at its packed place, another's at `k + row // group` (its group's extra row)."""
    n = live.shape[0]
    idx = jnp.argsort(~live, stable=True)[:k]
    pos = jnp.zeros(n, jnp.int32).at[idx].set(jnp.arange(k, dtype=jnp.int32))
    return idx, jnp.where(live, pos, k + jnp.arange(n, dtype=jnp.int32) // group)


def _fewest_live(sizes: tuple[int, ...], live, packed, every):
    """`packed(k)` for the smallest of `sizes` that holds the `live` rows, else `every()`
    (a `lax.switch`: one branch runs)."""
    if not sizes:
        return every()
    which = jnp.searchsorted(jnp.asarray(sizes), live.sum(), side="left")
    branches = [*(lambda _, k=k: packed(k) for k in sizes), lambda _: every()]
    return jax.lax.switch(which, branches, None)


def _successor_bounds(bd: _Bounds, flat, live_prob, pred, *, at=None, lower: bool = True):
    """Upper and lower-bound values `[A*Z]`, `[A*Z, Ka]` at the successor beliefs `flat`
    (the lower ones None unless `lower`); with `at` (a belief `[S]`, the one expanded), its
    upper value and lower-bound values `[Ka]` too, from the same evaluation.

    Only the possible successors (`live_prob > 0`) and the `A` predicted beliefs (what an
    impossible observation's successor is set to) are evaluated, packed into the smallest
    of `_branch_sizes` that holds them (a `lax.switch`; all `A*Z` when none does): the
    sawtooth costs `successors x points x support`, so Tag's trials evaluate 15 beliefs a
    step instead of 150, with the same values."""
    AZ, A = flat.shape[0], pred.shape[0]
    Z = AZ // A
    live = live_prob > 0
    sizes = _branch_sizes(A, Z)
    tail = () if at is None else (at[None],)

    def bounds(rows, src):  # the values at `rows[src]`, then at `at` (the last row)
        vu = _upper_sparse(bd, rows)
        low = rows @ bd.alphas.T if lower else None
        out = (vu[src], None if low is None else low[src])
        return out if at is None else (*out, vu[-1], None if low is None else low[-1])

    def packed(k):
        idx, src = _live_first(live, k, Z)  # the possible pairs first
        return bounds(jnp.concatenate([flat[idx], pred, *tail]), src)

    def every():
        return bounds(jnp.concatenate([flat, *tail]), jnp.arange(AZ))

    return _fewest_live(sizes, live, packed, every)


def _lower_at(bd: _Bounds, beliefs, live, pred):
    """The lower bound `[Z]` at one action's successor beliefs `[Z, S]`, evaluated at the
    possible ones (`live`) and the predicted belief `pred` (an impossible observation's
    successor), packed like `_successor_bounds` when `Z` is large (Tag: 2 of 30)."""
    Z = beliefs.shape[0]
    sizes = tuple(k for k in (2, 8) if 2 * k < Z)

    def packed(k):
        idx, src = _live_first(live, k, Z)
        q = jnp.concatenate([beliefs[idx], pred[None]])
        return (q @ bd.alphas.T).max(-1)[src]

    def every():
        return (beliefs @ bd.alphas.T).max(-1)

    return _fewest_live(sizes, live, packed, every)


def _successors(m: _Model, b):
    """The predicted beliefs `[A, S]`, the observations' probabilities `[A, Z]` and the
    successor beliefs `[A, Z, S]` of `b` (the predicted one where an observation is
    impossible)."""
    A, Z, S = m.obs.shape
    rows = jnp.arange(A)[:, None, None]
    pred = jnp.zeros((A, S), b.dtype).at[rows, m.succ].add(b[None, :, None] * m.prob)
    joint = pred[:, None, :] * m.obs  # [a, o, s']
    prob = joint.sum(-1)
    nb = jnp.where(
        prob[..., None] > 0, joint / jnp.where(prob > 0, prob, 1.0)[..., None], pred[:, None, :]
    )
    return pred, prob, nb


def _expand(m: _Model, bd: _Bounds, b):
    """Everything one belief's lookahead gives: upper Q values, the point-based backup of the
    lower bound at `b` (the vector and its action), and both bounds at `b` itself."""
    A, Z, S = m.obs.shape
    rows = jnp.arange(A)[:, None, None]
    pred, prob, nb = _successors(m, b)
    vu, low, vu_b, low_b = _successor_bounds(bd, nb.reshape(A * Z, S), prob.reshape(-1), pred, at=b)
    vu, low = vu.reshape(A, Z), low.reshape(A, Z, -1)
    best = low.argmax(-1)  # the best vector for each (a, o), as in `backup_at`
    back = (m.obs * bd.alphas[best]).sum(1)  # [a, s']: sum_o O[a, s', o] alpha_{a,o}(s')
    cand = m.R.T + m.gamma * (m.prob * back[rows, m.succ]).sum(-1)  # [a, S]
    act = jnp.argmax(cand @ b)
    qu = b @ m.R + m.gamma * (prob * vu).sum(-1)
    return qu, cand[act], act, vu_b, low_b.max()


def _descend(m: _Model, bd: _Bounds, b, threshold):
    """One step of a trial's descent from `b`: the action with the best upper Q value, then
    the observation with the largest `Pr(o | b, a) (gap(b') - threshold)`. Returns that
    successor and its upper and lower bound. The lower bound is needed at that action's
    successors only (`_expand` evaluates it at all `A * Z` for the backup)."""
    A, Z, S = m.obs.shape
    pred, prob, nb = _successors(m, b)
    vu, _ = _successor_bounds(bd, nb.reshape(A * Z, S), prob.reshape(-1), pred, lower=False)
    vu = vu.reshape(A, Z)
    a = jnp.argmax(b @ m.R + m.gamma * (prob * vu).sum(-1))
    vl = _lower_at(bd, nb[a], prob[a] > 0, pred[a])
    o = jnp.argmax(prob[a] * ((vu[a] - vl) - threshold))
    return nb[a, o], vu[a, o], vl[o]


def _trial_body(m: _Model, bd: _Bounds, epsilon, vu0, vl0, *, max_depth: int):
    """One HSVI trial: descend from b0 by the upper bound's choices, then back up the path.
    `vu0, vl0` are the bounds at b0 (the last trial's result)."""
    gamma = m.gamma
    b0 = m.b0
    path = jnp.zeros((max_depth + 1, b0.shape[0]), b0.dtype).at[0].set(b0)

    def go_on(c):
        _, vu, vl, t, _ = c
        return (vu - vl > epsilon * gamma ** (-t)) & (t < max_depth)

    def down(c):
        b, _, _, t, path = c
        nb, vu, vl = _descend(m, bd, b, epsilon * gamma ** (-(t + 1.0)))
        return nb, vu, vl, t + 1, path.at[t + 1].set(nb)

    _, _, _, depth, path = jax.lax.while_loop(go_on, down, (b0, vu0, vl0, jnp.int32(0), path))
    kb = bd.idx.shape[1]

    def up(i, c):
        bd, vu0, vl0 = c
        bp = path[depth - i]
        qu, alpha, act, vu, vl = _expand(m, bd, bp)
        at_b0 = i == depth
        vu = jnp.where(at_b0, jnp.minimum(vu, bd.v0), vu)
        add_a = (alpha @ bp > vl + 1e-12) & (bd.num_alphas < bd.alphas.shape[0])
        ka = jnp.where(add_a, bd.num_alphas, bd.alphas.shape[0])  # out of range: dropped
        support = (bp > 0).sum(dtype=bd.need.dtype)
        v = qu.max()
        add_p = (v < vu - 1e-12) & (bd.num_pts < bd.idx.shape[0]) & (support <= kb)
        kp = jnp.where(add_p, bd.num_pts, bd.idx.shape[0])
        w, j = jax.lax.top_k(bp, kb)
        on = w > 0
        # at b0, its bounds after this backup: the new vector's value (if kept) and the
        # backed-up upper value (b0's own, kept apart in v0 whether or not stored)
        vu0 = jnp.where(at_b0, jnp.minimum(vu, v), vu0)
        vl0 = jnp.where(at_b0, jnp.where(add_a, alpha @ bp, vl), vl0)
        bd = bd.replace(
            alphas=bd.alphas.at[ka].set(alpha, mode="drop"),
            actions=bd.actions.at[ka].set(act, mode="drop"),
            num_alphas=bd.num_alphas + add_a,
            idx=bd.idx.at[kp].set(jnp.where(on, j, 0).astype(bd.idx.dtype), mode="drop"),
            inv=bd.inv.at[kp].set(jnp.where(on, 1.0 / jnp.where(on, w, 1.0), 0.0), mode="drop"),
            pad=bd.pad.at[kp].set(jnp.where(on, 0.0, 2.0), mode="drop"),
            drop=bd.drop.at[kp].set(v - bp @ bd.corner, mode="drop"),
            vals=bd.vals.at[kp].set(v, mode="drop"),
            num_pts=bd.num_pts + add_p,
            need=jnp.maximum(bd.need, jnp.where((v < vu - 1e-12) & ~at_b0, support, 0)),
            v0=jnp.where(at_b0, jnp.minimum(bd.v0, v), bd.v0),
        )
        return bd, vu0, vl0

    bd, vu0, vl0 = jax.lax.fori_loop(0, depth + 1, up, (bd, vu0, vl0))
    return _sort_points(bd), vu0, vl0, depth


#: The trial, compiled with YNNPACK's dots on a CPU (`bellmax.core.xla.LIBRARY_DOTS`: 1.4x
#: faster than with `SMALL_MATRIX_FLAGS`' Eigen dots on RockSample[4,4]).
_trial = jit_lightly(_trial_body, LIBRARY_DOTS, static_argnames=("max_depth",))


def _sparse_points(pts: np.ndarray, kb: int):
    order = np.argsort(-pts, axis=1, kind="stable")[:, :kb]
    w = np.take_along_axis(pts, order, axis=1)
    on = w > 0
    inv = np.where(on, 1.0 / np.where(on, w, 1.0), 0.0)
    return np.where(on, order, 0).astype(np.int32), inv, np.where(on, 0.0, 2.0)


def _by_anchor(pts: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points (and values) ordered by anchor, their likeliest state (the first of equal
    ones), stably: the order `_pack` stores them in (`_sort_points` on the device)."""
    order = np.argsort(np.argmax(pts, axis=1), kind="stable")
    return pts[order], vals[order]


def _pack(alphas, actions, pts, vals, corner, fib, max_depth, kb, v0=np.inf) -> _Bounds:
    """Host sets -> fixed-capacity arrays with room for one more trial."""
    room = min(max_depth + 1, 128)  # a longer trial drops what does not fit (still valid bounds)
    ka = max(_MIN_ALPHAS, padded_size(len(alphas) + room))  # few size classes: few compilations
    kp = max(_MIN_POINTS, padded_size(len(pts) + room))
    pts, vals = _by_anchor(pts, vals)
    idx, inv, pad = _sparse_points(pts, kb)
    free = kp - len(pts)
    bounds = _Bounds(  # host arrays, moved in one transfer (as in `_model`)
        alphas=np.asarray(pad_rows(alphas, ka)),
        actions=np.asarray(pad_rows(actions, ka)),
        num_alphas=np.int32(len(alphas)),
        idx=np.concatenate([idx, np.zeros((free, kb), np.int32)]),
        inv=np.concatenate([inv, np.zeros((free, kb))]),
        pad=np.concatenate([pad, np.full((free, kb), 2.0)]),
        drop=np.concatenate([vals - pts @ corner, np.zeros(free)]),
        vals=np.concatenate([vals, np.zeros(free)]),
        num_pts=np.int32(len(pts)),
        starts=np.searchsorted(idx[:, 0], np.arange(len(corner) + 1)).astype(np.int32),
        num_sorted=np.int32(len(pts)),
        need=np.int32(0),
        v0=np.float64(v0),
        corner=np.asarray(corner, np.float64),
        fib=np.asarray(fib, np.float64),
    )
    return jax.device_put(bounds)


def _unpack(bd: _Bounds):
    na, npt = int(bd.num_alphas), int(bd.num_pts)
    idx, inv = np.asarray(bd.idx)[:npt], np.asarray(bd.inv)[:npt]
    pts = np.zeros((npt, bd.corner.shape[0]))
    on = inv > 0
    rows = np.broadcast_to(np.arange(npt)[:, None], idx.shape)
    pts[rows[on], idx[on]] = 1.0 / inv[on]
    return (
        np.asarray(bd.alphas)[:na],
        np.asarray(bd.actions)[:na],
        pts,
        np.asarray(bd.vals)[:npt],
    )


@jax.jit
def _others_at(bd: _Bounds, queries, rows):
    """The sawtooth of the stored points other than `rows` at `queries [n, S]` (row `rows[i]`
    left out for query `i`)."""
    ratio = queries[:, bd.idx] * bd.inv[None] + bd.pad[None]
    phi = jnp.minimum(ratio.min(axis=-1), 1.0)
    terms = phi * bd.drop[None]
    terms = terms.at[jnp.arange(queries.shape[0]), rows].set(0.0, mode="drop")
    return queries @ bd.corner + terms.min(axis=-1)


def _prune_points(pts: np.ndarray, vals: np.ndarray, corner, fib, kb: int, chunk: int = 128):
    """Drop the upper points that the others already bound at least as tightly at their own
    belief (with a margin). Then one point's tooth lies above another's everywhere (the
    ratios compose: `phi_j(b) >= phi_i(b) phi_j(b_i)`), and the relation is transitive and
    acyclic, so removing them all at once leaves the upper bound unchanged.

    Returns the kept points and values, ordered by anchor (`_by_anchor`: the rows of the
    packed bounds, whose row `i` must be `pts[i]` to be left out of its own query)."""
    pts, vals = _by_anchor(pts, vals)
    S = pts.shape[1]
    bd = _pack(np.zeros((1, S)), np.zeros(1, np.int32), pts, vals, corner, fib, 0, kb)
    n = len(pts)
    keep = np.ones(n, bool)
    for s in range(0, n, chunk):
        q = pts[s : s + chunk]
        m = len(q)
        qp = np.concatenate([q, np.repeat(q[:1], chunk - m, axis=0)])
        rows = np.arange(s, s + chunk)
        other = np.asarray(_others_at(bd, jnp.asarray(qp), jnp.asarray(rows)))[:m]
        keep[s : s + m] = other > vals[s : s + m] - 1e-9
    return pts[keep], vals[keep]


def hsvi(
    pomdp: TabularPOMDP,
    *,
    epsilon: float = 1e-3,
    time_limit: float = 60.0,
    max_trials: int = 100_000,
    max_depth: int = 1000,
) -> AnytimeResult:
    """HSVI2-style anytime search with a lower and an upper bound at `b0`.

    Each trial (descent and backups) is one jitted call; between trials the host checks the
    limits and, when a set could overflow in the next trial, drops the lower-bound vectors
    that another dominates pointwise and moves both sets to larger arrays.

    Args:
      pomdp: the model (`gamma < 1`).
      epsilon: the gap at `b0` to reach (> 0).
      time_limit: seconds, checked between trials.
      max_trials: trial limit.
      max_depth: deepest step of a trial.

    Returns:
      `AnytimeResult`.
    """
    check_discounted(pomdp, "hsvi")
    epsilon = check_number(epsilon, "epsilon", owner="hsvi", low=0, low_open=True)
    time_limit = check_number(time_limit, "time_limit", owner="hsvi", low=0, low_open=True)
    max_trials = check_int(max_trials, "max_trials", owner="hsvi", low=1)
    max_depth = check_int(max_depth, "max_depth", owner="hsvi", low=1)
    start = time.perf_counter()
    with x64():
        m = _model(pomdp)
        fib = np.asarray(fast_informed_bound(pomdp, tol=epsilon * 1e-3).vectors.alphas)
        corner = fib.max(axis=0)
        blind = blind_lower_bound(pomdp)
        alphas, actions = np.asarray(blind.alphas), np.asarray(blind.actions)
        pts, vals = np.zeros((0, pomdp.num_states)), np.zeros(0)
        S = pomdp.num_states
        # points as wide as b0 from the start when b0 is not too wide (RockSample: 16, and
        # no belief is wider), saving the compilation of growing to it; wider ones later
        support = int(np.count_nonzero(np.asarray(pomdp.b0)))
        kb = min(S, padded_size(support) if support <= _MAX_SUPPORT else 8)
        bd = _pack(alphas, actions, pts, vals, corner, fib, max_depth, kb)
        b0 = np.asarray(pomdp.b0, np.float64)  # no upper points yet: the corners and the FIB
        vu0, vl0 = float(min(b0 @ corner, (fib @ b0).max())), float((alphas @ b0).max())
        history = [(time.perf_counter() - start, vl0, vu0)]
        trials = 0
        room = min(max_depth + 1, 128)
        while (
            vu0 - vl0 > epsilon and trials < max_trials and time.perf_counter() - start < time_limit
        ):
            target = max(epsilon, _ZETA * (vu0 - vl0))
            bd, vu, vl, _ = _trial(m, bd, target, vu0, vl0, max_depth=max_depth)
            vu0, vl0 = float(vu), float(vl)
            trials += 1
            history.append((time.perf_counter() - start, vl0, vu0))
            na, npt, need = int(bd.num_alphas), int(bd.num_pts), int(bd.need)
            wider = min(S, _MAX_SUPPORT, padded_size(need))
            if na + room > bd.alphas.shape[0] or npt + room > bd.idx.shape[0] or wider > kb:
                alphas, actions, pts, vals = _unpack(bd)
                pts, vals = _prune_points(*_dedupe_points(pts, vals), corner, fib, kb)
                best = _undominated(alphas)
                kb = max(kb, wider)
                bd = _pack(
                    alphas[best], actions[best], pts, vals, corner, fib, max_depth, kb, bd.v0
                )
        alphas, actions, pts, vals = _unpack(bd)
        if not (np.isfinite(vl0) and np.isfinite(vu0) and np.all(np.isfinite(alphas))):
            status = Status.DIVERGED
        else:
            status = Status.CONVERGED if vu0 - vl0 <= epsilon else Status.MAX_ITERATIONS
        return AnytimeResult(
            vectors=AlphaVectors(alphas=jnp.asarray(alphas), actions=jnp.asarray(actions)),
            lower_bound=vl0,
            upper_bound=vu0,
            upper_points=pts,
            upper_values=vals,
            corner_values=corner,
            history=np.asarray(history),
            trials=trials,
            seconds=time.perf_counter() - start,
            status=int(status),
        )


def _undominated(alphas: np.ndarray) -> np.ndarray:
    """Indices of the vectors no other vector dominates pointwise (one of equal ones).

    Only pointwise dominance: a vector best at no stored belief still backs the plans of the
    vectors built on it, and dropping it would let the executed policy (the best vector's
    action at each belief) fall below the lower bound it reports.
    """
    order = np.argsort(-alphas.sum(axis=1), kind="stable")  # a dominator has a larger sum
    kept = np.empty_like(alphas)  # the vectors kept so far, in that order
    keep = []
    for i in order:  # dominated by a dropped vector means dominated by a kept one
        if not np.all(kept[: len(keep)] >= alphas[i] - 1e-12, axis=1).any():
            kept[len(keep)] = alphas[i]
            keep.append(i)
    return np.sort(np.asarray(keep, dtype=np.int64))


def _dedupe_points(pts: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One upper point per distinct belief (to 12 decimals), the lowest value."""
    order = np.argsort(vals, kind="stable")
    _, first = np.unique(np.round(pts[order], 12), axis=0, return_index=True)
    keep = np.sort(order[first])
    return pts[keep], vals[keep]
