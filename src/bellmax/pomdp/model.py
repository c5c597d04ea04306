"""`TabularPOMDP`: a finite partially observable Markov decision process.

A POMDP (Kaelbling, Littman & Cassandra 1998, "Planning and acting in partially observable
stochastic domains", section 3) is an MDP whose state is seen only through observations:
taking action `a` in state `s` moves to `s'` with probability `T[a, s, s']`, then emits
observation `o` with probability `O[a, s', o]` and earns the expected reward `R[s, a]`.

The arrays are validated once on construction, on the host, by the same rules as
`bellmax.core.TabularMDP` (the transition part is checked by building `mdp`, the fully
observed MDP underneath, so a bad `T` gets exactly `TabularMDP`'s message).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from bellmax.core.display import summary_repr
from bellmax.core.errors import InvalidMDPError
from bellmax.core.mdp import ROW_SUM_TOL, TabularMDP

__all__ = [
    "TabularPOMDP",
    "check_pomdp",
    "check_reward_scale",
    "expected_rewards",
    "short_successor_lists",
    "sparse_transitions",
]

#: The largest discounted value the solvers accept: they add and subtract values (gaps,
#: sawtooth drops, cross-sums), so a quarter of float64's largest number keeps every sum finite.
_VALUE_LIMIT = float(np.finfo(np.float64).max) / 4


def _names(kind: str, names: Any, n: int) -> tuple[str, ...]:
    if names is None:
        return tuple(str(i) for i in range(n))
    names = tuple(str(x) for x in names)
    if len(names) != n:
        raise InvalidMDPError(
            f"{kind} names: {len(names)} given for {n} {kind}; give one per {kind[:-1]}."
        )
    if len(set(names)) != n:
        dup = next(x for x in names if names.count(x) > 1)
        raise InvalidMDPError(f"{kind} names must be distinct; {dup!r} appears twice.")
    return names


def expected_rewards(T: Any, O: Any, R4: Any) -> np.ndarray:  # noqa: E741
    """Expected immediate rewards `R[s, a] = sum_{s', o} T[a, s, s'] O[a, s', o] R4[a, s, s', o]`.

    Args:
      T: transitions `[A, S, S]`.
      O: observation probabilities `[A, S, O]`.
      R4: rewards broadcastable to `[A, S, S, O]` (a size-1 axis where the reward does not
        depend on the successor or the observation).

    Returns:
      `[S, A]` float64.
    """
    T = np.asarray(T, dtype=np.float64)
    O = np.asarray(O, dtype=np.float64)  # noqa: E741
    R4 = np.asarray(R4, dtype=np.float64)
    if R4.shape[3] == 1:
        r3 = R4[..., 0]
    else:  # sum over o first: r3[a, s, s'] = sum_o O[a, s', o] R4[a, s, s', o]
        r3 = np.einsum(
            "ato,asto->ast", O, np.broadcast_to(R4, (*R4.shape[:2], T.shape[2], O.shape[2]))
        )
    if r3.shape[2] == 1:  # rows of T sum to one: no product, so such rewards pass exactly
        r2 = r3[..., 0]
    else:
        r2 = np.einsum("ast,ast->as", T, np.broadcast_to(r3, T.shape))
    return np.ascontiguousarray(np.broadcast_to(r2, T.shape[:2]).T)


@dataclasses.dataclass(frozen=True, eq=False)
class TabularPOMDP:
    """A finite POMDP: `T[a, s, s']`, `O[a, s', o]`, expected rewards `R[s, a]`, `gamma`, `b0`.

    Construction converts array-likes to numpy and validates them like `TabularMDP`
    (shapes, real numbers, non-negative probabilities, rows summing to one, finite rewards,
    `gamma` in `[0, 1]`, `b0` a distribution); a wrong value raises `InvalidMDPError` (a
    `ValueError`) naming the first bad entry, a wrong type `TypeError`. Rewards that depend
    on `(a, s, s', o)` are reduced to expected rewards with `expected_rewards` (or read
    from a `.pomdp` file, which does that).

    Args:
      T: transition probabilities `[A, S, S]` (rows `T[a, s, :]` sum to one).
      O: observation probabilities `[A, S, O]`: `O[a, s', o]` is the chance of seeing `o`
        after `a` led to `s'` (rows `O[a, s', :]` sum to one).
      R: expected immediate reward `R[s, a]`, `[S, A]`.
      gamma: discount factor in `[0, 1]`.
      b0: start belief `[S]` (default uniform).
      states, actions, observations: optional names (default `"0"`, `"1"`, ...).
      name: optional label.
    """

    __repr__ = summary_repr

    T: Any
    O: Any  # noqa: E741 (the standard name of the observation model)
    R: Any
    gamma: Any = 0.95
    b0: Any = None
    states: Any = None
    actions: Any = None
    observations: Any = None
    name: str = ""

    def __post_init__(self) -> None:
        T = np.asarray(self.T) if isinstance(self.T, list | tuple) else self.T
        if not hasattr(T, "shape") or np.ndim(T) != 3:
            raise InvalidMDPError(
                f"T must be an (A, S, S) array of transition probabilities T[a, s, s'], got "
                f"{type(self.T).__name__} of shape {np.shape(T) if hasattr(T, 'shape') else None}."
            )
        A, S = int(T.shape[0]), int(T.shape[1])
        b0 = np.full(S, 1.0 / S) if self.b0 is None else self.b0
        b = np.asarray(b0, dtype=float) if np.ndim(b0) == 1 else None
        if b is None or b.shape != (S,):
            raise InvalidMDPError(
                f"b0 must be a belief of {S} probabilities (one per state), got shape "
                f"{np.shape(b0)}."
            )
        bad = np.argwhere(~np.isfinite(b) | (b < 0))
        if bad.size:
            raise InvalidMDPError(
                f"b0[{int(bad[0][0])}] = {b[bad[0][0]]:g}; a belief holds probabilities >= 0."
            )
        # The fully observed MDP underneath checks T, R, gamma and b0 with TabularMDP's rules;
        # its messages speak of P[s, a, s'] = T[a, s, s'] and `initial`, translated here.
        try:
            mdp = TabularMDP(np.swapaxes(np.asarray(T), 0, 1), self.R, self.gamma, initial=b0)
        except InvalidMDPError as e:
            msg = str(e).replace("initial", "b0")
            if "P" in msg:
                msg += (
                    " (T[a, s, s'] is checked as the MDP's P[s, a, s'] = T[a, s, s']: read "
                    "P's shapes and indices as T's with the first two axes swapped.)"
                )
            raise InvalidMDPError(msg) from None
        Ob = np.asarray(self.O) if isinstance(self.O, list | tuple) else self.O
        if not hasattr(Ob, "shape") or np.ndim(Ob) != 3 or tuple(Ob.shape[:2]) != (A, S):
            raise InvalidMDPError(
                f"O must have shape (A, S, O) = ({A}, {S}, num_observations) to match T, got "
                f"{np.shape(Ob) if hasattr(Ob, 'shape') else type(self.O).__name__}."
            )
        Onp = np.asarray(Ob)
        if not (np.issubdtype(Onp.dtype, np.integer) or np.issubdtype(Onp.dtype, np.floating)):
            raise TypeError(f"O must hold real numbers, got dtype {Onp.dtype}.")
        if Onp.shape[2] == 0:
            raise InvalidMDPError("a POMDP needs at least one observation; O has shape (A, S, 0).")
        bad = np.argwhere(~np.isfinite(Onp) | (Onp < 0))
        if bad.size:
            a, s, o = bad[0]
            raise InvalidMDPError(
                f"O[{a}, {s}, {o}] = {Onp[a, s, o]:g}; observation probabilities must be finite and >= 0."
            )
        sums = Onp.sum(axis=2)
        off = np.argwhere(np.abs(sums - 1.0) > ROW_SUM_TOL * max(1, Onp.shape[2]) ** 0.5)
        if off.size:
            a, s = off[0]
            raise InvalidMDPError(
                f"O[{a}, {s}, :] sums to {sums[a, s]:.10g}, not 1; each (action, next state) row "
                "must be a probability distribution over observations (normalise it)."
            )
        object.__setattr__(self, "T", T)
        object.__setattr__(self, "O", Ob)
        object.__setattr__(self, "R", mdp.R)
        object.__setattr__(self, "b0", mdp.initial)
        object.__setattr__(self, "gamma", float(mdp.gamma))
        object.__setattr__(self, "states", _names("states", self.states, S))
        object.__setattr__(self, "actions", _names("actions", self.actions, A))
        object.__setattr__(
            self, "observations", _names("observations", self.observations, Onp.shape[2])
        )

    @property
    def num_states(self) -> int:
        """Number of states `S`."""
        return int(self.T.shape[1])

    @property
    def num_actions(self) -> int:
        """Number of actions `A`."""
        return int(self.T.shape[0])

    @property
    def num_observations(self) -> int:
        """Number of observations `O`."""
        return int(self.O.shape[2])

    @property
    def mdp(self) -> TabularMDP:
        """The fully observed MDP underneath (`P[s, a, s'] = T[a, s, s']`, same `R`, `gamma`)."""
        return TabularMDP(
            np.swapaxes(np.asarray(self.T), 0, 1), self.R, self.gamma, initial=self.b0
        )

    def replace(self, **changes: Any) -> TabularPOMDP:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


_ARRAYS = ("T", "O", "R", "b0")
_STATIC = ("gamma", "states", "actions", "observations", "name")


def _flatten(p: TabularPOMDP):
    return tuple(getattr(p, f) for f in _ARRAYS), tuple(getattr(p, f) for f in _STATIC)


def _unflatten(aux, children):
    obj = object.__new__(TabularPOMDP)  # skip validation: leaves may be tracers
    for field, value in zip(_ARRAYS, children, strict=True):
        object.__setattr__(obj, field, value)
    for field, value in zip(_STATIC, aux, strict=True):
        object.__setattr__(obj, field, value)
    return obj


jax.tree_util.register_pytree_node(TabularPOMDP, _flatten, _unflatten)


def sparse_transitions(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`T [A, S, S]` as successor lists: indices and probabilities `[A, S, K]`, `K` the most
    successors any `(a, s)` has (padding: index 0 with probability 0)."""
    T = np.asarray(T, np.float64)
    nz = T > 0
    k = max(1, int(nz.sum(axis=2).max()))
    order = np.argsort(~nz, axis=2, kind="stable")[..., :k]  # the successors first
    probs = np.take_along_axis(T, order, axis=2)
    return np.where(probs > 0, order, 0).astype(np.int32), probs


def short_successor_lists(T: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`sparse_transitions(T)` when each `(a, s)` has few successors (`4 K <= S`; Tag: 5 of
    870), else None: where a sum over the lists beats a dense `[S, S]` product (and, vmapped,
    a gathered `[S, S]` matrix per batch element)."""
    succ, prob = sparse_transitions(T)
    return (succ, prob) if 4 * succ.shape[2] <= np.shape(T)[2] else None


def check_pomdp(pomdp: Any, what: str) -> TabularPOMDP:
    """The one type check of the POMDP functions: `pomdp` itself, or a `TypeError` that says
    how to get a `TabularPOMDP` from what was passed (a file path, a solver's result, an MDP).

    Raises:
      TypeError: `pomdp` is not a `TabularPOMDP`.
    """
    if isinstance(pomdp, TabularPOMDP):
        return pomdp
    got = type(pomdp).__name__
    if isinstance(pomdp, str | os.PathLike):
        path = os.fspath(pomdp)
        got = f"{got} {path!r}"
        hint = (
            f" Read a .pomdp file first: {what}(bellmax.pomdp.load_pomdp({path!r}), ...); "
            "the classic problems are built in (bellmax.pomdp.tiger(), tag(), rock_sample())."
        )
    elif any(hasattr(pomdp, f) for f in ("vectors", "stages")):
        hint = f" That is a solver's result; {what} takes the POMDP it was solved from."
    elif isinstance(pomdp, TabularMDP):
        hint = (
            " A TabularMDP is fully observed: solve it with bellmax.tabular, or give it an "
            "observation model as TabularPOMDP(T, O, R, gamma)."
        )
    else:
        hint = " Build one with TabularPOMDP(T, O, R, gamma) or bellmax.pomdp.load_pomdp(path)."
    raise TypeError(f"{what} needs a TabularPOMDP, got {got}.{hint}")


def check_reward_scale(pomdp: TabularPOMDP, what: str, horizon: int | None = None) -> None:
    """Refuse rewards whose discounted sums overflow float64 (over `horizon` steps, or forever).

    Rewards of 1e308 are finite floats, but `max |R| / (1 - gamma)` is not: every solver would
    write NaN or infinite values.

    Raises:
      ValueError: `max |R|` times the sum of the discounts exceeds `float64 max / 4`.
    """
    rmax = float(np.max(np.abs(np.asarray(pomdp.R, np.float64)), initial=0.0))
    gamma = float(pomdp.gamma)
    if horizon is None:
        steps = 1.0 / (1.0 - gamma) if gamma < 1.0 else np.inf
        how, why = f"gamma = {gamma:g}", "1 / (1 - gamma)"
    else:
        steps = float(horizon) if gamma >= 1.0 else (1.0 - gamma**horizon) / (1.0 - gamma)
        how, why = f"a horizon of {horizon} steps with gamma = {gamma:g}", "the sum of gamma^t"
    if rmax > _VALUE_LIMIT / steps:
        raise ValueError(
            f"{what}: rewards up to |R| = {rmax:.4g} are too large for {how}: discounted values "
            f"can reach {steps:.4g} x {rmax:.4g} ({why} times the largest reward), beyond "
            f"{_VALUE_LIMIT:.4g}, where float64 sums and differences of values overflow to inf "
            "and NaN. Rescale the rewards (divide R by a power of ten, e.g. 1e10) and multiply "
            "the values back."
        )
