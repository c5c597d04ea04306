"""`TabularMDP`: a finite Markov decision process with dense or sparse transitions.

The arrays are validated once, on construction, on the host; solvers then move them to
the device. Sparse transitions use a padded per-(state, action) successor list
(`SparseTransitions`, ELL layout): every (s, a) row has the same number `K` of slots,
unused slots have probability 0. A Bellman backup is then a gather and a sum over `K`,
which XLA runs at memory bandwidth with no scatter.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from bellmax.core.errors import InvalidMDPError

#: Rows of P must sum to one within this tolerance (relative to the row's size).
ROW_SUM_TOL = 1e-6


@dataclasses.dataclass(frozen=True, eq=False)
class SparseTransitions:
    """Transitions as `K` successor slots per (state, action).

    `P[s, a, next_state[s, a, k]] += prob[s, a, k]`; padding slots have `prob == 0` and any
    valid `next_state` (by convention `s` itself).
    """

    next_state: Any
    """Successor indices, int array `[S, A, K]`."""
    prob: Any
    """Successor probabilities, float array `[S, A, K]`."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """`(S, A, K)`."""
        return tuple(self.next_state.shape)

    @property
    def nnz(self) -> int:
        """Number of stored slots (padding included)."""
        return int(np.prod(self.shape))

    def to_dense(self, num_states: int | None = None) -> np.ndarray:
        """The dense `[S, A, S]` matrix (only for small problems)."""
        ns = np.asarray(self.next_state)
        p = np.asarray(self.prob, dtype=np.float64)
        S, A, _ = ns.shape
        n = S if num_states is None else num_states
        dense = np.zeros((S, A, n))
        s_idx, a_idx, _ = np.indices(ns.shape)
        np.add.at(dense, (s_idx, a_idx, ns), p)
        return dense

    @classmethod
    def from_dense(cls, P: np.ndarray) -> SparseTransitions:
        """Compress a dense `[S, A, S]` array, keeping its non-zeros."""
        P = np.asarray(P)
        S, A, _ = P.shape
        nz = P != 0
        K = max(int(nz.sum(axis=2).max()), 1)
        # Stable argsort puts each row's non-zero columns first, in increasing order.
        order = np.argsort(~nz, axis=2, kind="stable")[:, :, :K]
        prob = np.take_along_axis(P, order, axis=2)
        keep = np.take_along_axis(nz, order, axis=2)
        self_idx = np.broadcast_to(np.arange(S)[:, None, None], order.shape)
        next_state = np.where(keep, order, self_idx).astype(np.int32 if S < 2**31 else np.int64)
        return cls(next_state=next_state, prob=np.where(keep, prob, 0.0))

    @classmethod
    def from_coo(
        cls, indices: Any, values: Any, num_states: int, num_actions: int
    ) -> SparseTransitions:
        """Build from COO rows `(s, a, s')` with probabilities; duplicates are summed.

        Raises:
          InvalidMDPError: indices of the wrong shape or out of range.
        """
        idx = np.asarray(indices)
        val = np.asarray(values, dtype=np.float64)
        if idx.ndim != 2 or idx.shape[1] != 3:
            raise InvalidMDPError(
                f"P_indices must have shape (nnz, 3) with rows (s, a, s'), got {idx.shape}."
            )
        if val.shape != (idx.shape[0],):
            raise InvalidMDPError(
                f"P_values must have shape (nnz,) = ({idx.shape[0]},) to match P_indices, got {val.shape}."
            )
        if not np.issubdtype(idx.dtype, np.integer):
            if not np.all(np.mod(idx, 1) == 0):
                raise InvalidMDPError(
                    "P_indices must hold integers (s, a, s'); found fractional values."
                )
            idx = idx.astype(np.int64)
        limits = (num_states, num_actions, num_states)
        for col, (name, lim) in enumerate(zip(("s", "a", "s'"), limits, strict=True)):
            bad = np.flatnonzero((idx[:, col] < 0) | (idx[:, col] >= lim))
            if bad.size:
                r = bad[0]
                raise InvalidMDPError(
                    f"P_indices row {r} = {tuple(int(v) for v in idx[r])} has {name} = {int(idx[r, col])} "
                    f"outside [0, {lim}); indices are 0-based and {name} must be < {lim}."
                )
        # Sum duplicates, then lay each (s, a) row out in K slots.
        flat = (idx[:, 0] * num_actions + idx[:, 1]) * num_states + idx[:, 2]
        uniq, inv = np.unique(flat, return_inverse=True)
        summed = np.zeros(uniq.shape[0])
        np.add.at(summed, inv, val)
        row = uniq // num_states
        col = uniq % num_states
        counts = np.bincount(row, minlength=num_states * num_actions)
        K = max(int(counts.max(initial=0)), 1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = np.arange(uniq.shape[0]) - starts[row]
        itype = np.int32 if num_states < 2**31 else np.int64
        next_state = np.repeat(np.arange(num_states, dtype=itype), num_actions * K).reshape(
            num_states * num_actions, K
        )
        prob = np.zeros((num_states * num_actions, K))
        next_state[row, slot] = col
        prob[row, slot] = summed
        return cls(
            next_state=next_state.reshape(num_states, num_actions, K),
            prob=prob.reshape(num_states, num_actions, K),
        )


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


@dataclasses.dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP: transitions `P[s, a, s']`, expected rewards `R[s, a]`, discount `gamma`.

    `P` is a dense `[S, A, S]` array or a `SparseTransitions`. Construction validates
    the arrays (non-negative probabilities, rows summing to one, matching shapes, finite
    rewards, `0 <= gamma <= 1`) and raises `InvalidMDPError` naming the first problem.

    Args:
      P: transition probabilities, dense `[S, A, S]` or `SparseTransitions` `[S, A, K]`.
      R: expected immediate reward of taking `a` in `s`, `[S, A]`.
      gamma: discount factor in `[0, 1]`.
      terminal: optional bool mask `[S]` of absorbing terminal states (for display and
        episodic samplers; solvers only need `P` and `R`).
      initial: optional start-state distribution `[S]`.
      name: optional label.
    """

    P: Any
    R: Any
    gamma: Any = 0.99
    terminal: Any = None
    initial: Any = None
    name: str = ""

    def __post_init__(self) -> None:
        if all(_is_concrete(x) for x in jax.tree.leaves((self.P, self.R, self.gamma))):
            self._validate()

    # ------------------------------------------------------------------ properties
    @property
    def is_sparse(self) -> bool:
        """Whether `P` is stored as `SparseTransitions`."""
        return isinstance(self.P, SparseTransitions)

    @property
    def num_states(self) -> int:
        """Number of states `S`."""
        return int(self.R.shape[0])

    @property
    def num_actions(self) -> int:
        """Number of actions `A`."""
        return int(self.R.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """`(S, A)`."""
        return (self.num_states, self.num_actions)

    def dense_P(self) -> np.ndarray:
        """`P` as a dense `[S, A, S]` numpy array."""
        if self.is_sparse:
            return self.P.to_dense(self.num_states)
        return np.asarray(self.P)

    def to_sparse(self) -> TabularMDP:
        """The same MDP with `SparseTransitions`."""
        if self.is_sparse:
            return self
        return dataclasses.replace(self, P=SparseTransitions.from_dense(np.asarray(self.P)))

    def to_dense(self) -> TabularMDP:
        """The same MDP with a dense `P`."""
        return dataclasses.replace(self, P=self.dense_P()) if self.is_sparse else self

    def replace(self, **changes: Any) -> TabularMDP:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_coo(
        cls,
        indices: Any,
        values: Any,
        R: Any,
        gamma: float = 0.99,
        **kwargs: Any,
    ) -> TabularMDP:
        """Build a sparse MDP from COO rows `(s, a, s')` and their probabilities."""
        R = np.asarray(R)
        if R.ndim != 2:
            raise InvalidMDPError(f"R must have shape (S, A), got {R.shape}.")
        S, A = R.shape
        return cls(SparseTransitions.from_coo(indices, values, S, A), R, gamma, **kwargs)

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        R = np.asarray(self.R)
        if R.ndim != 2:
            raise InvalidMDPError(f"R must have shape (S, A), got shape {R.shape}.")
        if not np.issubdtype(R.dtype, np.number) or np.issubdtype(R.dtype, np.complexfloating):
            raise InvalidMDPError(f"R must hold real numbers, got dtype {R.dtype}.")
        S, A = R.shape
        if S == 0 or A == 0:
            raise InvalidMDPError(
                f"an MDP needs at least one state and one action, got R of shape {R.shape}."
            )
        bad = np.argwhere(~np.isfinite(R))
        if bad.size:
            s, a = bad[0]
            raise InvalidMDPError(
                f"R[{s}, {a}] = {R[s, a]} is not finite; rewards must be finite numbers."
            )
        gamma = np.asarray(self.gamma)
        if gamma.shape != () or not np.isfinite(gamma) or not 0.0 <= float(gamma) <= 1.0:
            raise InvalidMDPError(f"gamma = {self.gamma!r} must be one number in [0, 1].")

        if self.is_sparse:
            ns, p = np.asarray(self.P.next_state), np.asarray(self.P.prob)
            if ns.shape != p.shape or ns.ndim != 3:
                raise InvalidMDPError(
                    f"sparse P needs next_state and prob of the same shape (S, A, K), got {ns.shape} and {p.shape}."
                )
            if ns.shape[:2] != (S, A):
                raise InvalidMDPError(
                    f"P has (S, A) = {ns.shape[:2]} but R has shape {R.shape}; they must agree."
                )
            if not np.issubdtype(ns.dtype, np.integer):
                raise InvalidMDPError(f"next_state must be an integer array, got dtype {ns.dtype}.")
            out = np.argwhere((ns < 0) | (ns >= S))
            if out.size:
                s, a, k = out[0]
                raise InvalidMDPError(
                    f"next_state[{s}, {a}, {k}] = {ns[s, a, k]} is outside [0, {S}); successor indices must be states."
                )
            row_sum = p.sum(axis=2)
            neg = np.argwhere(p < 0)
            neg_sa = tuple(neg[0][:2]) if neg.size else None
        else:
            P = np.asarray(self.P)
            if P.ndim != 3:
                raise InvalidMDPError(f"P must have shape (S, A, S), got shape {P.shape}.")
            if P.shape != (S, A, S):
                raise InvalidMDPError(
                    f"P has shape {P.shape} but R has shape {R.shape}; P must be (S, A, S) = {(S, A, S)}."
                )
            p = P
            row_sum = P.sum(axis=2)
            neg = np.argwhere(P < 0)
            neg_sa = tuple(neg[0][:2]) if neg.size else None
        nonfinite = np.argwhere(~np.isfinite(row_sum))
        if nonfinite.size:
            s, a = nonfinite[0]
            raise InvalidMDPError(
                f"P[{s}, {a}] contains a non-finite probability; all must be finite."
            )
        if neg_sa is not None:
            s, a = (int(v) for v in neg_sa)
            row = p[s, a]
            raise InvalidMDPError(
                f"P[{s}, {a}] has a negative probability ({row[row < 0][0]:g}); probabilities must be >= 0."
            )
        off = np.argwhere(np.abs(row_sum - 1.0) > ROW_SUM_TOL * max(1, p.shape[2]) ** 0.5)
        if off.size:
            s, a = off[0]
            raise InvalidMDPError(
                f"P[{s}, {a}, :] sums to {row_sum[s, a]:.10g}, not 1; each (state, action) row must be a "
                f"probability distribution (normalise it, or add a self-loop for absorbing states)."
            )
        if self.terminal is not None and np.asarray(self.terminal).shape != (S,):
            raise InvalidMDPError(
                f"terminal must be a bool mask of shape ({S},), got {np.shape(self.terminal)}."
            )
        if self.initial is not None:
            init = np.asarray(self.initial, dtype=np.float64)
            if init.shape != (S,) or np.any(init < 0) or abs(init.sum() - 1.0) > 1e-6:
                raise InvalidMDPError(
                    f"initial must be a probability vector of shape ({S},) summing to 1; got shape {init.shape}"
                    f" and sum {init.sum() if init.size else 0:.6g}."
                )


def _mdp_flatten(m: TabularMDP):
    return (m.P, m.R, m.gamma, m.terminal, m.initial), m.name


def _mdp_unflatten(name, children):
    obj = object.__new__(TabularMDP)  # skip validation: leaves may be tracers
    for field, value in zip(("P", "R", "gamma", "terminal", "initial"), children, strict=True):
        object.__setattr__(obj, field, value)
    object.__setattr__(obj, "name", name)
    return obj


def _sp_flatten(s: SparseTransitions):
    return (s.next_state, s.prob), None


def _sp_unflatten(_, children):
    obj = object.__new__(SparseTransitions)
    object.__setattr__(obj, "next_state", children[0])
    object.__setattr__(obj, "prob", children[1])
    return obj


jax.tree_util.register_pytree_node(TabularMDP, _mdp_flatten, _mdp_unflatten)
jax.tree_util.register_pytree_node(SparseTransitions, _sp_flatten, _sp_unflatten)
