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
`Pr(o | b, a) (V_U - V_L)(b') - epsilon gamma^{-(t+1)}`, until the gap at depth `t` is below
`epsilon gamma^{-t}`, then backs both bounds up along the path. The loop stops when the gap at
`b0` is at most `epsilon` (status converged) or at the time or trial limit (max_iterations);
both bounds are valid at every moment, so `history` shows the gap shrinking with time.
Every jitted call is for one belief; sets are padded to powers of two so each compiles once
per size class.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.status import Status, StatusFields
from bellmax.pomdp.belief import AlphaVectors, x64
from bellmax.pomdp.bounds import blind_lower_bound, check_discounted, fast_informed_bound
from bellmax.pomdp.model import TabularPOMDP
from bellmax.pomdp.pointbased import backup_at, device_pomdp, pad_rows, padded_size

__all__ = ["AnytimeResult", "hsvi", "sawtooth_upper_bound"]

#: Smallest array size of either bound's set (each new size class compiles the trial again).
_MIN_CAPACITY = 512


@dataclasses.dataclass(frozen=True)
class AnytimeResult(StatusFields):
    """What `hsvi` returns: both bounds at `b0`, the lower bound's policy, and their history."""

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
    """`Status.CONVERGED` when the gap reached `epsilon`, else `Status.MAX_ITERATIONS`."""

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


def _lookahead(pomdp, alphas, corner, fib, pts, vals, b):
    T, Ob, R = pomdp.T, pomdp.O, pomdp.R
    A, S, Z = T.shape[0], T.shape[1], Ob.shape[2]
    pred = jnp.einsum("s,ast->at", b, T)
    joint = pred[:, None, :] * jnp.swapaxes(Ob, 1, 2)  # [a, o, s']
    prob = joint.sum(-1)
    nb = jnp.where(
        prob[..., None] > 0, joint / jnp.where(prob > 0, prob, 1.0)[..., None], pred[:, None, :]
    )
    flat = nb.reshape(A * Z, S)
    vu = _upper(corner, fib, pts, vals, flat).reshape(A, Z)
    vl = (flat @ alphas.T).max(-1).reshape(A, Z)
    qu = b @ R + pomdp.gamma * (prob * vu).sum(-1)
    return qu, nb, prob, vu, vl


@struct.dataclass
class _Bounds:
    """Both bounds in fixed-capacity arrays (free slots repeat a harmless entry)."""

    alphas: jax.Array  # [Ka, S]; free slots copy alphas[0]
    actions: jax.Array  # [Ka]
    num_alphas: jax.Array
    pts: jax.Array  # [Kp, S]; free slots hold the corner e_0 with its corner value
    vals: jax.Array  # [Kp]
    num_pts: jax.Array
    corner: jax.Array  # [S]
    fib: jax.Array  # [A, S]


def _value_bounds(bd: _Bounds, b: jax.Array):
    return _upper(bd.corner, bd.fib, bd.pts, bd.vals, b[None])[0], (bd.alphas @ b).max()


@functools.partial(jax.jit, static_argnames=("max_depth",))
def _trial(pomdp: TabularPOMDP, bd: _Bounds, epsilon, *, max_depth: int):
    """One HSVI trial: descend from b0 by the upper bound's choices, then back up the path."""
    gamma = pomdp.gamma
    b0 = pomdp.b0
    path = jnp.zeros((max_depth + 1, b0.shape[0]), b0.dtype).at[0].set(b0)
    vu0, vl0 = _value_bounds(bd, b0)

    def go_on(c):
        _, vu, vl, t, _ = c
        return (vu - vl > epsilon * gamma ** (-t)) & (t < max_depth)

    def down(c):
        b, _, _, t, path = c
        qu, nb, prob, vus, vls = _lookahead(pomdp, bd.alphas, bd.corner, bd.fib, bd.pts, bd.vals, b)
        a = jnp.argmax(qu)
        excess = prob[a] * ((vus[a] - vls[a]) - epsilon * gamma ** (-(t + 1.0)))
        o = jnp.argmax(excess)
        return nb[a, o], vus[a, o], vls[a, o], t + 1, path.at[t + 1].set(nb[a, o])

    _, _, _, depth, path = jax.lax.while_loop(go_on, down, (b0, vu0, vl0, jnp.int32(0), path))

    def up(i, bd):
        bp = path[depth - i]
        alpha, act = backup_at(pomdp, bd.alphas, bp[None])
        qu = _lookahead(pomdp, bd.alphas, bd.corner, bd.fib, bd.pts, bd.vals, bp)[0]
        vu, vl = _value_bounds(bd, bp)
        add_a = (alpha[0] @ bp > vl + 1e-12) & (bd.num_alphas < bd.alphas.shape[0])
        ka = jnp.where(add_a, bd.num_alphas, bd.alphas.shape[0])  # out of range: dropped
        add_p = (qu.max() < vu - 1e-12) & (bd.num_pts < bd.pts.shape[0])
        kp = jnp.where(add_p, bd.num_pts, bd.pts.shape[0])
        return bd.replace(
            alphas=bd.alphas.at[ka].set(alpha[0], mode="drop"),
            actions=bd.actions.at[ka].set(act[0], mode="drop"),
            num_alphas=bd.num_alphas + add_a,
            pts=bd.pts.at[kp].set(bp, mode="drop"),
            vals=bd.vals.at[kp].set(qu.max(), mode="drop"),
            num_pts=bd.num_pts + add_p,
        )

    bd = jax.lax.fori_loop(0, depth + 1, up, bd)
    vu0, vl0 = _value_bounds(bd, b0)
    return bd, vu0, vl0, depth


def _pack(alphas, actions, pts, vals, corner, fib, max_depth) -> _Bounds:
    """Host sets -> fixed-capacity arrays with room for one more trial."""
    S = corner.shape[0]
    room = min(max_depth + 1, 128)  # a longer trial drops what does not fit (still valid bounds)
    ka = max(_MIN_CAPACITY, padded_size(len(alphas) + room))  # few size classes: few compilations
    kp = max(_MIN_CAPACITY, padded_size(len(pts) + room))
    dummy_p, dummy_v = np.eye(S)[:1], corner[:1]
    P = np.concatenate([pts, np.repeat(dummy_p, kp - len(pts), axis=0)])
    V = np.concatenate([vals, np.repeat(dummy_v, kp - len(pts))])
    return _Bounds(
        alphas=jnp.asarray(pad_rows(alphas, ka)),
        actions=jnp.asarray(pad_rows(actions, ka)),
        num_alphas=jnp.int32(len(alphas)),
        pts=jnp.asarray(P),
        vals=jnp.asarray(V),
        num_pts=jnp.int32(len(pts)),
        corner=jnp.asarray(corner),
        fib=jnp.asarray(fib),
    )


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
    limits and, when a set could overflow in the next trial, keeps only the lower-bound
    vectors that are best at some stored belief and moves both sets to larger arrays.

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
        dev = device_pomdp(pomdp)
        fib = np.asarray(fast_informed_bound(pomdp, tol=epsilon * 1e-3).vectors.alphas)
        corner = fib.max(axis=0)
        blind = blind_lower_bound(pomdp)
        alphas, actions = np.asarray(blind.alphas), np.asarray(blind.actions)
        pts, vals = np.zeros((0, pomdp.num_states)), np.zeros(0)
        bd = _pack(alphas, actions, pts, vals, corner, fib, max_depth)
        vu0, vl0 = (float(x) for x in _value_bounds(bd, dev.b0))
        history = [(time.perf_counter() - start, vl0, vu0)]
        trials = 0
        while (
            vu0 - vl0 > epsilon and trials < max_trials and time.perf_counter() - start < time_limit
        ):
            bd, vu, vl, _ = _trial(dev, bd, epsilon, max_depth=max_depth)
            vu0, vl0 = float(vu), float(vl)
            trials += 1
            history.append((time.perf_counter() - start, vl0, vu0))
            na, npt = int(bd.num_alphas), int(bd.num_pts)
            room = min(max_depth + 1, 128)
            if na + room > bd.alphas.shape[0] or npt + room > bd.pts.shape[0]:
                alphas, actions, pts, vals = _unpack(bd)
                pts, vals = _dedupe_points(pts, vals)
                keep_at = np.concatenate([np.asarray(pomdp.b0)[None], pts])
                best = np.unique(np.argmax(keep_at @ alphas.T, axis=1))
                bd = _pack(alphas[best], actions[best], pts, vals, corner, fib, max_depth)
        alphas, actions, pts, vals = _unpack(bd)
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


def _dedupe_points(pts: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One upper point per distinct belief (to 12 decimals), the lowest value."""
    order = np.argsort(vals, kind="stable")
    _, first = np.unique(np.round(pts[order], 12), axis=0, return_index=True)
    keep = np.sort(order[first])
    return pts[keep], vals[keep]


def _unpack(bd: _Bounds):
    na, npt = int(bd.num_alphas), int(bd.num_pts)
    return (
        np.asarray(bd.alphas)[:na],
        np.asarray(bd.actions)[:na],
        np.asarray(bd.pts)[:npt],
        np.asarray(bd.vals)[:npt],
    )
