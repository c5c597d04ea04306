"""`TabularMDP`: a finite Markov decision process with dense or sparse transitions.

The arrays are validated once, on construction, on the host; solvers then move them to
the device.

Sparse transitions (`SparseTransitions`) use the hybrid ELL + COO layout of sparse
matrix-vector products (Bell & Garland, "Implementing sparse matrix-vector multiplication
on throughput-oriented processors", SC 2009):

- a padded block of `K` successor slots per (state, action) row (ELL), unused slots with
  probability 0: a backup reads it as `K` gathers and a sum, which XLA fuses into one loop
  at memory bandwidth, with no scatter;
- an overflow list (COO, sorted by row) of the successors of rows longer than `K`, added
  with one segment sum.

`K` is chosen from the row lengths (`ell_width`): when rows are even it is the longest
row and the overflow is empty (pure ELL, as fast as before); when a few rows are much
longer than the rest they spill into the overflow, so memory stays proportional to the
number of non-zeros instead of `S * A * max_row_length`.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

import jax
import numpy as np

from bellmax.core.display import summary_repr
from bellmax.core.errors import InvalidMDPError

#: Rows of P must sum to one within this tolerance (relative to the row's size).
ROW_SUM_TOL = 1e-6
#: What one overflow entry (a gather, a product and a scatter-add in a segment sum) costs in
#: padded ELL slots (a fused gather and product) on XLA:CPU: measured 2-4.5x (1e5 states,
#: 4 actions, float64; 1.4 ns a slot, 3-6 ns an entry), so a row's tail spills over when
#: that saves 4x its length in padding.
OVERFLOW_COST = 4


def ell_width(row_lengths: Any, *, overflow_cost: float = OVERFLOW_COST) -> int:
    """The ELL width `K` of the hybrid layout for rows of these lengths.

    `K` minimises the work of one backup, `rows * K + overflow_cost * overflow(K)`, where
    `overflow(K) = sum_r max(len_r - K, 0)` entries spill into the overflow list; ties go
    to the larger `K` (less overflow). Even rows get `K = max(len_r)` and no overflow. The
    stored entries never exceed `overflow_cost * nnz` (the cost at `K = 0`), so memory is
    proportional to the number of non-zeros whatever the longest row.

    Args:
      row_lengths: int array of stored entries per (state, action) row.
      overflow_cost: the cost of one overflow entry in padded slots (> 0).

    Returns:
      `K >= 1`.
    """
    lengths = np.asarray(row_lengths, dtype=np.int64).reshape(-1)
    k_max = int(lengths.max(initial=0))
    if k_max <= 1:
        return 1
    hist = np.bincount(lengths, minlength=k_max + 1)
    longer = lengths.size - np.cumsum(hist)  # longer[k] = rows with more than k entries
    overflow = np.cumsum(longer[::-1])[::-1]  # overflow[k] = sum_{j >= k} longer[j]
    cost = lengths.size * np.arange(k_max + 1, dtype=np.float64) + overflow_cost * overflow
    cost[0] = np.inf
    return int(k_max - np.argmin(cost[::-1]))  # the largest minimiser


def _index_dtype(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


@dataclasses.dataclass(frozen=True, eq=False)
class SparseTransitions:
    """Transitions as `K` successor slots per (state, action), plus an overflow list.

    `P[s, a, next_state[s, a, k]] += prob[s, a, k]`; padding slots have `prob == 0` and any
    valid `next_state` (by convention `s` itself). Rows with more than `K` successors keep
    the rest in the overflow: `P[r // A, r % A, overflow_next_state[i]] += overflow_prob[i]`
    with `r = overflow_row[i]`, the flat row `s * A + a`, sorted. Build with `from_coo` or
    `from_dense`, which choose `K` by `ell_width`; `SparseTransitions(next_state, prob)` is
    the plain padded layout.
    """

    __repr__ = summary_repr

    next_state: Any
    """Successor indices, int array `[S, A, K]`."""
    prob: Any
    """Successor probabilities, float array `[S, A, K]`."""
    overflow_row: Any = None
    """Flat rows `s * A + a` of the overflow entries, sorted int array `[E]`, or None."""
    overflow_next_state: Any = None
    """Successor of each overflow entry, int array `[E]`, or None."""
    overflow_prob: Any = None
    """Probability of each overflow entry, float array `[E]`, or None."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """`(S, A, K)` of the padded slots."""
        return tuple(self.next_state.shape)

    @property
    def num_overflow(self) -> int:
        """Number of overflow entries `E` (0 without an overflow)."""
        return 0 if self.overflow_row is None else int(np.shape(self.overflow_row)[0])

    @property
    def nnz(self) -> int:
        """Number of stored entries: padded slots (padding included) plus overflow entries."""
        return int(np.prod(self.shape)) + self.num_overflow

    def to_coo(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored non-zero entries as COO rows, the inverse of `from_coo`.

        Returns:
          `(indices, values)`: int `(nnz, 3)` rows `(s, a, s')` sorted by `(s, a)`, and
          their float64 probabilities `(nnz,)`. A successor stored twice in one row appears
          twice (they add up, as in `from_coo`).
        """
        ns = np.asarray(self.next_state)
        p = np.asarray(self.prob, dtype=np.float64)
        S, A, K = ns.shape
        keep = p != 0
        row = np.nonzero(keep)
        flat = row[0].astype(np.int64) * A + row[1]
        col, val = ns[keep].astype(np.int64), p[keep]
        if self.num_overflow:
            op = np.asarray(self.overflow_prob, dtype=np.float64)
            okeep = op != 0
            flat = np.concatenate([flat, np.asarray(self.overflow_row, np.int64)[okeep]])
            col = np.concatenate([col, np.asarray(self.overflow_next_state, np.int64)[okeep]])
            val = np.concatenate([val, op[okeep]])
            order = np.argsort(flat, kind="stable")
            flat, col, val = flat[order], col[order], val[order]
        itype = _index_dtype(max(S, A))
        indices = np.stack([flat // A, flat % A, col], axis=1).astype(itype)
        return indices, val

    def to_dense(self, num_states: int | None = None) -> np.ndarray:
        """The dense `[S, A, S]` matrix (only for small problems)."""
        ns = np.asarray(self.next_state)
        p = np.asarray(self.prob, dtype=np.float64)
        S, A, _ = ns.shape
        n = S if num_states is None else num_states
        dense = np.zeros((S, A, n))
        s_idx, a_idx, _ = np.indices(ns.shape)
        np.add.at(dense, (s_idx, a_idx, ns), p)
        if self.num_overflow:
            row = np.asarray(self.overflow_row, np.int64)
            np.add.at(
                dense,
                (row // A, row % A, np.asarray(self.overflow_next_state)),
                np.asarray(self.overflow_prob, dtype=np.float64),
            )
        return dense

    @classmethod
    def from_dense(cls, P: np.ndarray) -> SparseTransitions:
        """Compress a dense `[S, A, S]` array, keeping its non-zeros (in column order)."""
        P = np.asarray(P)
        S, A, _ = P.shape
        s, a, col = np.nonzero(P)
        return cls._from_rows(s.astype(np.int64) * A + a, col, P[s, a, col], S, A)

    @classmethod
    def from_coo(
        cls, indices: Any, values: Any, num_states: int, num_actions: int
    ) -> SparseTransitions:
        """Build from COO rows `(s, a, s')` with probabilities; duplicates are summed.

        Memory is proportional to the number of entries, however uneven the rows: `K` is
        `ell_width` of the row lengths and longer rows continue in the overflow.

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
        # Sum duplicates; np.unique also sorts the entries by (s, a, s').
        idx = idx.astype(np.int64, copy=False)
        flat = (idx[:, 0] * num_actions + idx[:, 1]) * num_states + idx[:, 2]
        uniq, inv = np.unique(flat, return_inverse=True)
        summed = np.bincount(inv.reshape(-1), weights=val, minlength=uniq.shape[0])
        return cls._from_rows(
            uniq // num_states, uniq % num_states, summed, num_states, num_actions
        )

    @classmethod
    def _from_rows(
        cls, row: np.ndarray, col: np.ndarray, val: np.ndarray, num_states: int, num_actions: int
    ) -> SparseTransitions:
        """Lay out entries sorted by flat row `s * A + a` (no duplicates) in the hybrid layout."""
        S, A = num_states, num_actions
        n_rows = S * A
        counts = np.bincount(row, minlength=n_rows)
        K = ell_width(counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = np.arange(row.shape[0]) - starts[row]
        in_ell = slot < K
        itype = _index_dtype(S)
        next_state = np.repeat(np.arange(S, dtype=itype), A * K).reshape(n_rows, K)
        prob = np.zeros((n_rows, K))
        next_state[row[in_ell], slot[in_ell]] = col[in_ell]
        prob[row[in_ell], slot[in_ell]] = val[in_ell]
        extra: dict[str, np.ndarray] = {}
        if not np.all(in_ell):
            spill = ~in_ell
            extra = {
                "overflow_row": row[spill].astype(_index_dtype(n_rows)),
                "overflow_next_state": col[spill].astype(itype),
                "overflow_prob": np.asarray(val[spill], dtype=np.float64),
            }
        return cls(next_state=next_state.reshape(S, A, K), prob=prob.reshape(S, A, K), **extra)


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray | jax.Array)


def _array_like(name: str, value: Any, shape: str) -> Any:
    """numpy/jax arrays as they are; nested lists, tuples and other array-likes as numpy."""
    if _is_array(value):
        return value
    if isinstance(value, list | tuple) or hasattr(value, "__array__"):
        try:
            return np.asarray(value)
        except ValueError as e:  # a ragged nested list
            raise InvalidMDPError(
                f"{name} is a ragged nested list ({str(e).split(';')[0]}); it must be "
                f"rectangular, of shape {shape}."
            ) from None
    return value


def _reward_shape_message(got: tuple[int, ...], want: tuple[int, int], p_shape: str) -> str:
    """Why `R` of shape `got` does not fit `P`, whose `(S, A)` is `want`, and the fix."""
    S, A = want
    head = f"R has shape {got} but {p_shape}; R must be (S, A) = {want} to match P"
    if got == (A, S):
        return f"{head}. R looks transposed: pass R.T (rows are states, columns actions)."
    return f"{head}: one expected reward per (state, action)."


def _check_real(name: str, arr: np.ndarray, *, allow_bool: bool = False) -> None:
    ok = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if not (ok or (allow_bool and arr.dtype == bool)):
        raise TypeError(
            f"{name} must hold real numbers (int or float), got dtype {arr.dtype}; convert it, "
            f"e.g. np.asarray({name}, dtype=float)."
        )


def _check_gamma_type(gamma: Any) -> None:
    if isinstance(gamma, bool | np.bool_) or not (
        isinstance(gamma, numbers.Real) or _is_array(gamma)
    ):
        raise TypeError(
            f"gamma must be a number in [0, 1] (the discount factor), got {gamma!r} of type "
            f"{type(gamma).__name__}; pass one, e.g. TabularMDP(P, R, gamma=0.99)."
        )


@dataclasses.dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP: transitions `P[s, a, s']`, expected rewards `R[s, a]`, discount `gamma`.

    `P` is a dense `[S, A, S]` array or a `SparseTransitions`. Construction converts array-likes
    (nested lists) to numpy arrays and validates them: a wrong type raises `TypeError` (e.g.
    `gamma=None`), a wrong value `InvalidMDPError`, a `ValueError` (wrong shapes, negative
    probabilities, rows not summing to one, non-finite rewards, `gamma` outside `[0, 1]`),
    each naming the first problem and the expected shape or range.

    Args:
      P: transition probabilities, dense `[S, A, S]` (an array or nested lists) or
        `SparseTransitions`.
      R: expected immediate reward of taking `a` in `s`, `[S, A]` (an array or nested lists).
      gamma: discount factor, one number in `[0, 1]`; 0.99 when not given (a file saved
        without one is refused by `bellmax.tabular.load_mdp` instead: give it explicitly).
      terminal: optional bool mask `[S]` of absorbing terminal states (for display and
        episodic samplers; solvers only need `P` and `R`).
      initial: optional start-state distribution `[S]`.
      name: optional label.
    """

    __repr__ = summary_repr

    P: Any
    R: Any
    gamma: Any = 0.99
    terminal: Any = None
    initial: Any = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.P, SparseTransitions):
            P = _array_like("P", self.P, "(S, A, S)")
            if not _is_array(P):
                raise TypeError(
                    f"P must be an (S, A, S) array of transition probabilities (numpy, jax or "
                    f"nested lists) or a SparseTransitions, got {type(self.P).__name__}; for "
                    "(s, a, s') triples use TabularMDP.from_coo(indices, values, R, gamma)."
                )
            object.__setattr__(self, "P", P)
        R = _array_like("R", self.R, "(S, A)")
        if not _is_array(R):
            raise TypeError(
                f"R must be an (S, A) array of expected rewards (numpy, jax or nested lists), "
                f"got {type(self.R).__name__}."
            )
        object.__setattr__(self, "R", R)
        for field, shape in (("terminal", "(S,)"), ("initial", "(S,)")):
            value = getattr(self, field)
            if value is not None:
                object.__setattr__(self, field, _array_like(field, value, shape))
        if isinstance(self.gamma, list | tuple):
            object.__setattr__(self, "gamma", np.asarray(self.gamma))
        _check_gamma_type(self.gamma)
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
        R = _array_like("R", R, "(S, A)")
        if not _is_array(R):
            raise TypeError(
                f"R must be an (S, A) array of expected rewards, got {type(R).__name__}."
            )
        R = np.asarray(R)
        if R.ndim != 2:
            raise InvalidMDPError(f"R must have shape (S, A), got {R.shape}.")
        S, A = R.shape
        return cls(SparseTransitions.from_coo(indices, values, S, A), R, gamma, **kwargs)

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        R = np.asarray(self.R)
        if R.ndim != 2:
            want = "(S, A)"
            if not self.is_sparse and np.ndim(self.P) == 3:
                want = f"(S, A) = {tuple(np.shape(self.P)[:2])} to match P"
            raise InvalidMDPError(f"R must have shape {want}, got shape {R.shape}.")
        _check_real("R", R)
        S, A = R.shape
        if S == 0 or A == 0:
            raise InvalidMDPError(
                f"an MDP needs at least one state and one action, got R of shape {R.shape}."
            )
        want = self._shape_from_P()
        if want is not None and R.shape != want:
            raise InvalidMDPError(_reward_shape_message(R.shape, want, self._P_shape_text()))
        bad = np.argwhere(~np.isfinite(R))
        if bad.size:
            s, a = bad[0]
            raise InvalidMDPError(
                f"R[{s}, {a}] = {R[s, a]} is not finite; rewards must be finite numbers."
            )
        gamma = np.asarray(self.gamma)
        if gamma.dtype == bool or not (
            np.issubdtype(gamma.dtype, np.integer) or np.issubdtype(gamma.dtype, np.floating)
        ):
            raise TypeError(
                f"gamma must be a number in [0, 1] (the discount factor), got {self.gamma!r}; "
                "pass one, e.g. TabularMDP(P, R, gamma=0.99)."
            )
        if gamma.shape != () or not np.isfinite(gamma) or not 0.0 <= float(gamma) <= 1.0:
            raise InvalidMDPError(f"gamma = {self.gamma!r} must be one number in [0, 1].")

        if self.is_sparse:
            row_sum, negative, longest = self._validate_sparse(S, A)
        else:
            P = np.asarray(self.P)
            if P.shape != (S, A, S):
                raise InvalidMDPError(
                    f"P has shape {P.shape} but R has shape {R.shape}; P must be (S, A, S) = {(S, A, S)}."
                    if P.ndim == 3
                    else f"P must have shape (S, A, S) = {(S, A, S)} to match R, got shape {P.shape}."
                )
            _check_real("P", P, allow_bool=True)
            row_sum = P.sum(axis=2)
            neg = np.argwhere(P < 0)
            negative = (
                (int(neg[0][0]), int(neg[0][1]), float(P[tuple(neg[0])])) if neg.size else None
            )
            longest = S
        nonfinite = np.argwhere(~np.isfinite(row_sum))
        if nonfinite.size:
            s, a = nonfinite[0]
            raise InvalidMDPError(
                f"P[{s}, {a}] contains a non-finite probability; all must be finite."
            )
        if negative is not None:
            s, a, value = negative
            raise InvalidMDPError(
                f"P[{s}, {a}] has a negative probability ({value:g}); probabilities must be >= 0."
            )
        off = np.argwhere(np.abs(row_sum - 1.0) > ROW_SUM_TOL * max(1, longest) ** 0.5)
        if off.size:
            s, a = off[0]
            raise InvalidMDPError(
                f"P[{s}, {a}, :] sums to {row_sum[s, a]:.10g}, not 1; each (state, action) row must be a "
                f"probability distribution (normalise it, or add a self-loop for absorbing states)."
            )
        if self.terminal is not None and np.shape(self.terminal) != (S,):
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

    def _shape_from_P(self) -> tuple[int, int] | None:
        """`(S, A)` as `P` alone gives it, or None when `P`'s own shape is not `(S, A, S)`
        (dense) or `(S, A, K)` (sparse); `R` is then checked against it, not the other way."""
        if self.is_sparse:
            ns, p = np.shape(self.P.next_state), np.shape(self.P.prob)
            return (ns[0], ns[1]) if len(ns) == 3 and ns == p else None
        shape = np.shape(self.P)
        if len(shape) == 3 and shape[0] == shape[2] and shape[0] > 0 and shape[1] > 0:
            return (shape[0], shape[1])
        return None

    def _P_shape_text(self) -> str:
        if self.is_sparse:
            return f"sparse P has (S, A) = {tuple(np.shape(self.P.next_state)[:2])}"
        return f"P has shape {tuple(np.shape(self.P))}"

    def _validate_sparse(self, S: int, A: int) -> tuple[np.ndarray, tuple | None, int]:
        """Checks of `SparseTransitions`; returns (row sums `[S, A]`, first negative entry
        `(s, a, value)` or None, the longest row's length)."""
        sp = self.P
        ns, p = np.asarray(sp.next_state), np.asarray(sp.prob)
        if ns.shape != p.shape or ns.ndim != 3:
            raise InvalidMDPError(
                f"sparse P needs next_state and prob of the same shape (S, A, K), got {ns.shape} and {p.shape}."
            )
        if ns.shape[:2] != (S, A):
            raise InvalidMDPError(
                f"P has (S, A) = {ns.shape[:2]} but R has shape {(S, A)}; they must agree."
            )
        if not np.issubdtype(ns.dtype, np.integer):
            raise InvalidMDPError(f"next_state must be an integer array, got dtype {ns.dtype}.")
        _check_real("prob", p)
        out = np.argwhere((ns < 0) | (ns >= S))
        if out.size:
            s, a, k = out[0]
            raise InvalidMDPError(
                f"next_state[{s}, {a}, {k}] = {ns[s, a, k]} is outside [0, {S}); successor indices must be states."
            )
        row_sum = p.sum(axis=2)
        neg = np.argwhere(p < 0)
        negative = (int(neg[0][0]), int(neg[0][1]), float(p[tuple(neg[0])])) if neg.size else None
        longest = ns.shape[2]
        parts = (sp.overflow_row, sp.overflow_next_state, sp.overflow_prob)
        if all(x is None for x in parts):
            return row_sum, negative, longest
        if any(x is None for x in parts):
            raise InvalidMDPError(
                "sparse P's overflow needs all of overflow_row, overflow_next_state and "
                "overflow_prob, or none of them."
            )
        row, nxt, op = (np.asarray(x) for x in parts)
        if not (row.ndim == nxt.ndim == op.ndim == 1) or not (row.shape == nxt.shape == op.shape):
            raise InvalidMDPError(
                "overflow_row, overflow_next_state and overflow_prob must be 1-D arrays of one "
                f"length, got shapes {row.shape}, {nxt.shape} and {op.shape}."
            )
        for name, x in (("overflow_row", row), ("overflow_next_state", nxt)):
            if not np.issubdtype(x.dtype, np.integer):
                raise InvalidMDPError(f"{name} must be an integer array, got dtype {x.dtype}.")
        _check_real("overflow_prob", op)
        for name, x, lim in (("overflow_row", row, S * A), ("overflow_next_state", nxt, S)):
            bad = np.flatnonzero((x < 0) | (x >= lim))
            if bad.size:
                i = int(bad[0])
                raise InvalidMDPError(
                    f"{name}[{i}] = {int(x[i])} is outside [0, {lim}); "
                    + (
                        "rows are s * A + a."
                        if name == "overflow_row"
                        else "successors are states."
                    )
                )
        if row.size and np.any(np.diff(row) < 0):
            i = int(np.flatnonzero(np.diff(row) < 0)[0]) + 1
            raise InvalidMDPError(
                f"overflow_row must be sorted (non-decreasing), but overflow_row[{i}] = "
                f"{int(row[i])} follows {int(row[i - 1])}; sort the overflow entries by row."
            )
        row_sum = row_sum + np.bincount(row, weights=op, minlength=S * A).reshape(S, A)
        if negative is None and np.any(op < 0):
            i = int(np.flatnonzero(op < 0)[0])
            negative = (int(row[i]) // A, int(row[i]) % A, float(op[i]))
        longest += int(np.bincount(row).max(initial=0))
        return row_sum, negative, longest


def _mdp_flatten(m: TabularMDP):
    return (m.P, m.R, m.gamma, m.terminal, m.initial), m.name


def _mdp_unflatten(name, children):
    obj = object.__new__(TabularMDP)  # skip validation: leaves may be tracers
    for field, value in zip(("P", "R", "gamma", "terminal", "initial"), children, strict=True):
        object.__setattr__(obj, field, value)
    object.__setattr__(obj, "name", name)
    return obj


_SPARSE_FIELDS = tuple(f.name for f in dataclasses.fields(SparseTransitions))


def _sp_flatten(s: SparseTransitions):
    return tuple(getattr(s, f) for f in _SPARSE_FIELDS), None


def _sp_unflatten(_, children):
    obj = object.__new__(SparseTransitions)
    for field, value in zip(_SPARSE_FIELDS, children, strict=True):
        object.__setattr__(obj, field, value)
    return obj


jax.tree_util.register_pytree_node(TabularMDP, _mdp_flatten, _mdp_unflatten)
jax.tree_util.register_pytree_node(SparseTransitions, _sp_flatten, _sp_unflatten)
