"""Point-based value iteration: the backup at a set of beliefs, PBVI and Perseus.

`point_backup` is the point-based Bellman backup (Pineau, Gordon & Thrun 2003, "Point-based
value iteration: an anytime algorithm for POMDPs", IJCAI, eq. 5-7): for a belief `b` and a
set of alpha vectors `V`,

    g_{a,o}(b) = argmax_{g in {gamma T_a diag(O[a, :, o]) alpha : alpha in V}} b . g
    backup(b) = argmax_{R[:, a] + sum_o g_{a,o}(b)} b . (that),

jitted and vmapped over beliefs. Every vector it makes is the exact value of a conditional
plan, so starting from vectors that are lower bounds (the blind policies') the value at any
belief stays a lower bound of `V*`.

- `pbvi`: back up every belief of a set, then expand the set by stochastic simulation with
  exploratory action (PBVI's SSEA: from each belief, the successor farthest in L1 from the set).
- `perseus` (Spaan & Vlassis 2005, "Perseus: randomized point-based value iteration for
  POMDPs", JAIR 24): a fixed set of beliefs from random walks; each stage backs up randomly
  chosen beliefs only until every belief's value has improved (or kept its value).

Alpha-vector sets are padded to a power of two (with copies of their first vector, which do not
change a maximum) so the jitted backup compiles once per size class.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields
from bellmax.core.xla import bucket_size
from bellmax.pomdp.belief import AlphaVectors, x64
from bellmax.pomdp.bounds import blind_lower_bound, check_discounted
from bellmax.pomdp.model import TabularPOMDP

__all__ = [
    "PointBasedResult",
    "backup_at",
    "device_pomdp",
    "pad_rows",
    "padded_size",
    "pbvi",
    "perseus",
    "point_backup",
    "random_beliefs",
]


@dataclasses.dataclass(frozen=True)
class PointBasedResult(StatusFields):
    """What `pbvi` and `perseus` return."""

    __repr__ = summary_repr

    vectors: AlphaVectors
    """The lower-bound value function and its policy."""
    value: float
    """`vectors.value(b0)`, a lower bound of `V*(b0)`."""
    beliefs: np.ndarray
    """The belief points used, `[N, S]`."""
    iterations: int
    """Backup sweeps (PBVI) or stages (Perseus)."""
    history: np.ndarray
    """`[iterations, 2]`: seconds since the start and the value at `b0` after each."""
    seconds: float
    """Wall-clock time."""
    status: int = int(Status.CONVERGED)
    """Converged (PBVI: its schedule ran; Perseus: a backup at every belief improves no
    value by more than `tol`), max_iterations (the time or stage limit came first) or diverged (a value is NaN
    or infinite)."""


def device_pomdp(pomdp: TabularPOMDP) -> TabularPOMDP:
    """The same POMDP with float64 jax arrays (moved to the device once; call under `x64()`)."""
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), pomdp)


def padded_size(n: int) -> int:
    """The padded row count for `n` rows: a power of two, at least 8 (few array sizes, so
    few compilations)."""
    return bucket_size(n, 8)


def pad_rows(x: np.ndarray | jax.Array, n: int) -> np.ndarray:
    """`x` padded to `n` rows with copies of its first row (on the host: eager jax ops cost
    milliseconds each, the jitted backup a fraction of one)."""
    x = np.asarray(x)
    return np.concatenate([x, np.broadcast_to(x[:1], (n - x.shape[0], *x.shape[1:]))])


@jax.jit
def backup_at(pomdp: TabularPOMDP, alphas: jax.Array, beliefs: jax.Array):
    """The point-based backup of the vectors `alphas` [K, S] at `beliefs` [N, S] (padded
    arrays, `device_pomdp`): the best new vector [N, S] at each belief and its action [N]."""
    T, Ob, R = pomdp.T, pomdp.O, pomdp.R
    # joint[n, a, o, s'] = Pr(s', o | b_n, a): the unnormalised successor beliefs. The best
    # vector for (a, o) maximises joint . alpha (the same argmax as b . g_{a,o}, Pineau et al.
    # eq. 6), which costs N A O S K instead of projecting every vector (A O K S^2).
    joint = jnp.einsum("ns,ast->nat", beliefs, T)[:, :, None, :] * jnp.swapaxes(Ob, 1, 2)[None]
    best = jnp.argmax(jnp.einsum("naot,kt->naok", joint, alphas), axis=-1)  # [n, a, o]
    chosen = alphas[best] * jnp.swapaxes(Ob, 1, 2)[None]  # [n, a, o, s']: O[a, s', o] alpha(s')
    g = pomdp.gamma * jnp.einsum("ast,naot->nas", T, chosen)
    cand = R.T[None] + g  # [n, a, S]
    vals = jnp.einsum("ns,nas->na", beliefs, cand)
    act = jnp.argmax(vals, axis=1)
    return cand[jnp.arange(beliefs.shape[0]), act], act


def point_backup(pomdp: TabularPOMDP, vectors: AlphaVectors, beliefs: Any) -> AlphaVectors:
    """The point-based backup of `vectors` at each belief: one new vector per belief.

    Args:
      pomdp: the model.
      vectors: the current value function.
      beliefs: `[N, S]`.

    Returns:
      `AlphaVectors` with `N` vectors (`alphas[n]` is the best backed-up vector at belief `n`).
    """
    with x64():
        dev = device_pomdp(pomdp)
        b = jnp.atleast_2d(jnp.asarray(beliefs, jnp.float64))
        k = vectors.size
        alphas, act = backup_at(
            dev, pad_rows(jnp.asarray(vectors.alphas, jnp.float64), padded_size(k)), b
        )
        return AlphaVectors(alphas=alphas, actions=act)


class _Set:
    """A growing alpha-vector set on the host, handed to jit padded to a power of two."""

    def __init__(self, vectors: AlphaVectors):
        self.alphas = np.asarray(vectors.alphas, np.float64)
        self.actions = np.asarray(vectors.actions)

    def padded(self) -> jax.Array:
        return pad_rows(self.alphas, padded_size(len(self.alphas)))

    def values(self, beliefs: np.ndarray) -> np.ndarray:
        return (beliefs @ self.alphas.T).max(axis=1)

    def vectors(self) -> AlphaVectors:
        return AlphaVectors(alphas=jnp.asarray(self.alphas), actions=jnp.asarray(self.actions))


def _backup_at(dev: TabularPOMDP, vset: _Set, beliefs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = beliefs.shape[0]
    b = pad_rows(beliefs, padded_size(n))
    alphas, act = backup_at(dev, vset.padded(), b)
    return np.asarray(alphas)[:n], np.asarray(act)[:n]


def _dedupe(alphas: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, idx = np.unique(np.round(alphas, 12), axis=0, return_index=True)
    idx = np.sort(idx)
    return alphas[idx], actions[idx]


def _sample(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One index per row of `probs` `[n, k]` (inverse-CDF, vectorised)."""
    cdf = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cdf[:, -1]
    return np.minimum((cdf < u[:, None]).sum(axis=1), probs.shape[1] - 1)


def _successors(
    pomdp: TabularPOMDP, beliefs: np.ndarray, rng: np.random.Generator, actions: np.ndarray
):
    """One sampled successor of each belief under the given actions (state, then observation)."""
    T, Ob = np.asarray(pomdp.T, np.float64), np.asarray(pomdp.O, np.float64)
    s = _sample(rng, beliefs)
    s2 = _sample(rng, T[actions, s])
    o = _sample(rng, Ob[actions, s2])
    joint = np.einsum("ns,nst->nt", beliefs, T[actions]) * Ob[actions, :, o]
    return joint / joint.sum(axis=1, keepdims=True)


def pbvi(
    pomdp: TabularPOMDP,
    *,
    expansions: int = 6,
    backups: int = 20,
    max_beliefs: int = 2000,
    time_limit: float = 60.0,
    seed: int = 0,
) -> PointBasedResult:
    """Point-based value iteration (Pineau, Gordon & Thrun 2003).

    Starting from `{b0}` and the blind lower bound: `backups` sweeps backing up every belief
    of the set (the new vectors replace the old, one per belief), then one expansion that
    adds, for each belief, its sampled successor farthest from the set (one per action
    tried, the farthest kept), doubling the set at most. Stops after `expansions` rounds,
    `max_beliefs` beliefs or `time_limit` seconds (checked between sweeps).

    Returns:
      `PointBasedResult`.
    """
    check_discounted(pomdp, "pbvi")
    expansions = check_int(expansions, "expansions", owner="pbvi", low=0)
    backups = check_int(backups, "backups", owner="pbvi", low=1)
    max_beliefs = check_int(max_beliefs, "max_beliefs", owner="pbvi", low=1)
    time_limit = check_number(time_limit, "time_limit", owner="pbvi", low=0, low_open=True)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with x64():
        dev = device_pomdp(pomdp)
        b0 = np.asarray(pomdp.b0, np.float64)
        B = b0[None]
        vset = _Set(blind_lower_bound(pomdp))
        history, it, late = [], 0, False
        for e in range(expansions + 1):
            for _ in range(backups):
                alphas, act = _backup_at(dev, vset, B)
                vset.alphas, vset.actions = _dedupe(alphas, act)
                it += 1
                history.append((time.perf_counter() - start, float(vset.values(b0[None])[0])))
                if time.perf_counter() - start > time_limit:
                    late = True
                    break
            if (
                late
                or e == expansions
                or len(B) >= max_beliefs
                or time.perf_counter() - start > time_limit
            ):
                break
            cands = np.stack(
                [_successors(pomdp, B, rng, np.full(len(B), a)) for a in range(pomdp.num_actions)],
                axis=1,
            )  # [N, A, S]
            new = []
            for c in cands:
                pool = np.concatenate([B] + ([np.stack(new)] if new else []))
                dist = np.abs(c[:, None, :] - pool[None]).sum(-1).min(axis=1)
                j = int(np.argmax(dist))
                if dist[j] > 1e-9 and len(B) + len(new) < max_beliefs:
                    new.append(c[j])
            if not new:
                break
            B = np.concatenate([B, np.stack(new)])
        return _result(vset, b0, B, it, history, start, converged=not late)


def _result(
    vset: _Set, b0, B, it: int, history: list, start: float, *, converged: bool
) -> PointBasedResult:
    value = float(vset.values(b0[None])[0])
    if not (np.isfinite(value) and np.all(np.isfinite(vset.alphas))):
        status = Status.DIVERGED
    else:
        status = Status.CONVERGED if converged else Status.MAX_ITERATIONS
    return PointBasedResult(
        vectors=vset.vectors(),
        value=value,
        beliefs=B,
        iterations=it,
        history=np.asarray(history),
        seconds=time.perf_counter() - start,
        status=int(status),
    )


def random_beliefs(
    pomdp: TabularPOMDP, num: int, *, seed: int = 0, horizon: int = 30
) -> np.ndarray:
    """Up to `num` distinct beliefs reached from `b0` by uniformly random actions (Perseus's set).

    64 walks run side by side for `horizon` steps at a time, restarting from `b0`, until
    `num` distinct beliefs (to 9 decimals) are found or `horizon + 20 * num // 64` steps passed.
    """
    num = check_int(num, "num", owner="random_beliefs", low=1)
    rng = np.random.default_rng(seed)
    b0 = np.asarray(pomdp.b0, np.float64)
    seen = {tuple(np.round(b0, 9)): b0}
    walkers = np.repeat(b0[None], 64, axis=0)
    for step in range(1, horizon + 20 * num // 64 + 1):
        if step % horizon == 0:
            walkers = np.repeat(b0[None], 64, axis=0)
        walkers = _successors(pomdp, walkers, rng, rng.integers(0, pomdp.num_actions, len(walkers)))
        for b in walkers:
            seen.setdefault(tuple(np.round(b, 9)), b)
        if len(seen) >= num:
            break
    return np.stack(list(seen.values())[:num])


def perseus(
    pomdp: TabularPOMDP,
    *,
    num_beliefs: int = 500,
    stages: int = 200,
    time_limit: float = 60.0,
    tol: float = 1e-6,
    seed: int = 0,
) -> PointBasedResult:
    """Perseus: randomized point-based value iteration (Spaan & Vlassis 2005).

    Each stage builds a new set: while some belief has not improved, back up a random one of
    them, keep the new vector if it is at least as good there as the old set (else the old
    best vector), and drop every belief the new set has caught up with. A stage that changes
    the value at no belief by more than `tol` is checked by a backup at every belief: it has
    converged if that improves none by more than `tol`; else the improving vectors are added
    and the stages go on. Stops then, after `stages`, or at `time_limit`.

    Returns:
      `PointBasedResult`.
    """
    check_discounted(pomdp, "perseus")
    stages = check_int(stages, "stages", owner="perseus", low=1)
    time_limit = check_number(time_limit, "time_limit", owner="perseus", low=0, low_open=True)
    tol = check_number(tol, "tol", owner="perseus", low=0)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    B = random_beliefs(pomdp, num_beliefs, seed=seed)
    with x64():
        dev = device_pomdp(pomdp)
        b0 = np.asarray(pomdp.b0, np.float64)
        vset = _Set(blind_lower_bound(pomdp))
        old = vset.values(B)
        history, it, done = [], 0, False
        for _ in range(stages):
            new_a, new_act = [], []
            new_v = np.full(len(B), -np.inf)
            todo = np.arange(len(B))
            while todo.size:
                i = int(rng.choice(todo))
                alpha, act = _backup_at(dev, vset, B[i : i + 1])
                if B[i] @ alpha[0] >= old[i]:
                    a_vec, a_act = alpha[0], act[0]
                else:
                    k = int(np.argmax(vset.alphas @ B[i]))
                    a_vec, a_act = vset.alphas[k], vset.actions[k]
                new_a.append(a_vec)
                new_act.append(a_act)
                new_v = np.maximum(new_v, B @ a_vec)
                todo = np.flatnonzero(new_v < old - 1e-12)
            vset.alphas, vset.actions = _dedupe(np.stack(new_a), np.asarray(new_act))
            it += 1
            change = float(np.max(np.abs(new_v - old)))
            old = vset.values(B)
            done = change <= tol
            if done:
                # A belief leaves a stage's to-do list once a new vector ties its value, so
                # a stage can change nothing short of the fixed point (a flat value function
                # ties everywhere: RockSample's first stages). Converged only if a backup at
                # every belief improves none; otherwise its improving vectors join the set.
                alpha, act = _backup_at(dev, vset, B)
                better = np.einsum("ns,ns->n", B, alpha) - old > tol
                if better.any():
                    done = False
                    vset.alphas, vset.actions = _dedupe(
                        np.concatenate([vset.alphas, alpha[better]]),
                        np.concatenate([vset.actions, act[better]]),
                    )
                    old = vset.values(B)
            history.append((time.perf_counter() - start, float(vset.values(b0[None])[0])))
            if done or time.perf_counter() - start > time_limit:
                break
        return _result(vset, b0, B, it, history, start, converged=done)
