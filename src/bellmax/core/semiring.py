"""One Bellman backup, written once over a semiring.

A linear system `v = b + A v` is built from two operations, `+` and `*`. Replace them by
another pair `(plus, times)` that keeps the rules of arithmetic that elimination and
iteration need (both associative, `plus` commutative, `times` distributing over `plus`,
a `zero` that is the identity of `plus` and absorbs under `times`, a `one` that is the
identity of `times`) and the same matrix-like equations describe other problems:

- **sum-product** `(+, *)`, zero 0, one 1: expectations. Evaluating a fixed policy is the
  linear system `v = r_pi + gamma P_pi v`; the plus over actions is the weighted sum
  `sum_a pi(a|s) q(s, a)` (Sutton & Barto, eq. 4.5).
- **max-plus** `(max, +)`, zero -inf, one 0: optimal control. Bellman's optimality equation
  `v(s) = max_a [r(s, a) + gamma E v(s')]` is the "matrix product" of this semiring
  (Sutton & Barto, eq. 4.10). A forbidden action has weight `zero = -inf`.
- **min-plus** `(min, +)`, zero +inf, one 0: shortest paths. With an edge-weight matrix `W`
  (`+inf` where there is no edge), `d = min(d0, W (x) d)` relaxes every edge at once, and
  iterating it is the Bellman-Ford algorithm; a negative cycle makes it fail to settle.
- **log-sum-exp** `(a (+) b = tau ln(e^{a/tau} + e^{b/tau}), +)`, zero -inf, one 0: "soft" max,
  the maximum-entropy Bellman backup `v(s) = tau log sum_a exp(q(s, a) / tau)` (soft
  Q-learning, Haarnoja et al. 2017). It is smooth, exceeds `max` by at most `tau log A`, and
  tends to max-plus as the temperature `tau -> 0`.

The backup itself, for every semiring:

    Q(s, a)  = R(s, a) + gamma * E_{s' ~ P(.|s, a)} V(s')      (an expectation: sum-product)
    V'(s)    = (+)_a  w(s, a) (x) Q(s, a)                      (the semiring's plus over actions)

The expectation over successors is always an ordinary weighted sum, because transitions are
stochastic; the semiring decides how actions combine (`bellman_backup`). With deterministic
transitions every successor is an action and the whole backup is a semiring matrix product,
which is how `bellmax.tabular.shortest_paths` relaxes a graph's edges (`segment_plus`).

Layouts: dense `P[s, a, s']`, or the sparse hybrid layout of `SparseTransitions` (`K`
padded successor slots per row plus an overflow list for longer rows). For speed the solvers
keep the slots slot-major, `[K, S, A]` (`MDPArrays`): the `K` gathers `V[next_state[k]]` then
fuse with the multiply and the sum into one loop over `(s, a)` under XLA, with no
`[S, A, K]` temporary. The overflow entries (rows longer than `K`) are added with one sorted
segment sum (sum-product's `segment_plus`), so memory follows the number of non-zeros even
when one row reaches every state; with even rows there is no overflow and the program is
the pure padded loop.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.display import summary_repr
from bellmax.core.errors import unknown_name
from bellmax.core.mdp import SparseTransitions, TabularMDP

__all__ = [
    "MAX_PLUS",
    "MIN_PLUS",
    "SUM_PRODUCT",
    "Backup",
    "MDPArrays",
    "Semiring",
    "bellman_backup",
    "expected_next_values",
    "log_sum_exp",
    "q_values",
]

#: Reductions over at most this many entries (actions) are unrolled into elementwise ops.
UNROLL_MAX = 32
#: Sparse backups unroll at most this many successor slots; wider padded rows (e.g. a dense
#: MDP made sparse) are summed by one reduction, so that the program stays small.
SLOT_UNROLL_MAX = 256

SemiringKind = Literal["sum-product", "max-plus", "min-plus", "log-sum-exp"]
_KINDS = ("sum-product", "max-plus", "min-plus", "log-sum-exp")


def _is_concrete_number(x: Any) -> bool:
    return isinstance(x, int | float | np.floating | np.integer) and not isinstance(x, bool)


@dataclasses.dataclass(frozen=True)
class Semiring:
    """A commutative semiring `(plus, times, zero, one)` for Bellman backups.

    Frozen and hashable, so it can be a static argument of `jax.jit`. Use the instances
    `SUM_PRODUCT`, `MAX_PLUS`, `MIN_PLUS` and `log_sum_exp(tau)`.

    Attributes:
      kind: one of "sum-product", "max-plus", "min-plus", "log-sum-exp".
      temperature: `tau > 0` of "log-sum-exp" (ignored by the others). Inside a traced
        function it may be a traced scalar (then do not pass the semiring as static).
    """

    kind: SemiringKind
    temperature: Any = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise unknown_name("semiring", str(self.kind), _KINDS)
        if self.kind == "log-sum-exp" and _is_concrete_number(self.temperature):
            t = float(self.temperature)
            if not math.isfinite(t) or t <= 0.0:
                raise ValueError(
                    f"log-sum-exp temperature must be a finite number > 0, got {self.temperature!r};"
                    " use MAX_PLUS for the limit temperature -> 0."
                )

    # ------------------------------------------------------------------ identities
    @property
    def zero(self) -> float:
        """Identity of `plus` (and absorbing element of `times`): 0, -inf or +inf."""
        return {"sum-product": 0.0, "max-plus": -math.inf, "min-plus": math.inf}.get(
            self.kind, -math.inf
        )

    @property
    def one(self) -> float:
        """Identity of `times`: 1 for sum-product, 0 for the others."""
        return 1.0 if self.kind == "sum-product" else 0.0

    @property
    def name(self) -> str:
        """A label, e.g. `max-plus` or `log-sum-exp(tau=0.1)`."""
        if self.kind == "log-sum-exp":
            t = self.temperature
            return f"log-sum-exp(tau={t:g})" if _is_concrete_number(t) else "log-sum-exp(tau=?)"
        return self.kind

    # ------------------------------------------------------------------ operations
    def add(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """`x (+) y`, elementwise."""
        if self.kind == "sum-product":
            return x + y
        if self.kind == "max-plus":
            return jnp.maximum(x, y)
        if self.kind == "min-plus":
            return jnp.minimum(x, y)
        tau = self.temperature
        # max + tau log(1 + e^(-|x - y| / tau)): x / tau alone overflows for a tiny tau
        top = jnp.maximum(x, y)
        gap = jnp.where(x == y, 0.0, jnp.abs(x - y))  # (inf - inf is NaN)
        return top + tau * jnp.log1p(jnp.exp(-gap / tau))

    def times(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """`x (x) y`, elementwise: `x * y` for sum-product, `x + y` for the others."""
        return x * y if self.kind == "sum-product" else x + y

    def plus(self, x: jax.Array, axis: int = -1, *, weights: jax.Array | None = None) -> jax.Array:
        """`(+)_i weights_i (x) x_i` along `axis` (the reduction over actions).

        Args:
          x: values, e.g. `Q[S, A]`.
          axis: the axis to reduce.
          weights: optional weights broadcastable to `x`, in the semiring's sense: policy
            probabilities for sum-product; 0 (allowed) or `zero` (forbidden) for max/min-plus;
            `tau * log prior(a)` for log-sum-exp. None means `one` everywhere.

        Returns:
          `x` reduced along `axis`.
        """
        if weights is not None:
            x = self.times(weights, x)
        n = x.shape[axis]
        if n <= UNROLL_MAX and x.ndim > 1:
            # A few actions: a chain of elementwise ops over slices. XLA:CPU then fuses the
            # whole backup into one elementwise loop; its fused `reduce` over a short minor
            # axis ran 1.5-2.5x slower on gather-heavy sparse backups.
            parts = [jnp.take(x, i, axis=axis) for i in range(n)]
            if self.kind == "log-sum-exp":
                top = functools.reduce(jnp.maximum, parts)
                safe = jnp.where(jnp.isfinite(top), top, 0.0)
                tau = self.temperature
                total = functools.reduce(jnp.add, [jnp.exp((q - safe) / tau) for q in parts])
                return jnp.where(total > 0, safe + tau * jnp.log(total), -jnp.inf)
            op = {"sum-product": jnp.add, "max-plus": jnp.maximum, "min-plus": jnp.minimum}
            return functools.reduce(op[self.kind], parts)
        if self.kind == "sum-product":
            return jnp.sum(x, axis=axis)
        if self.kind == "max-plus":
            return jnp.max(x, axis=axis)
        if self.kind == "min-plus":
            return jnp.min(x, axis=axis)
        tau = self.temperature
        # shifted by the max before dividing by tau, as above: x / tau alone overflows float32
        # for a tiny tau (|x| / tau > 3.4e38), and inf - inf gave NaN values
        top = jnp.max(x, axis=axis, keepdims=True)
        safe = jnp.where(jnp.isfinite(top), top, 0.0)
        return jnp.squeeze(safe, axis) + tau * jax.nn.logsumexp((x - safe) / tau, axis=axis)

    def segment_plus(
        self,
        x: jax.Array,
        segment_ids: jax.Array,
        num_segments: int,
        *,
        indices_are_sorted: bool = False,
    ) -> jax.Array:
        """`(+)` of the entries of `x` that share a segment id (a ragged reduction).

        Empty segments get `zero`. This is the plus over a graph's edges that end in the
        same node (Bellman-Ford's relaxation), and, in sum-product, the sum over the
        successors of the long rows of a sparse MDP (the overflow of `SparseTransitions`).

        Args:
          x: values `[n]`.
          segment_ids: int segment of each value `[n]`, in `[0, num_segments)`.
          num_segments: number of segments (static).
          indices_are_sorted: promise that `segment_ids` is sorted (a faster scatter).
        """
        seg = {
            "segment_ids": segment_ids,
            "num_segments": num_segments,
            "indices_are_sorted": indices_are_sorted,
        }
        if self.kind == "sum-product":
            return jax.ops.segment_sum(x, **seg)
        if self.kind == "max-plus":
            return jax.ops.segment_max(x, **seg)
        if self.kind == "min-plus":
            return jax.ops.segment_min(x, **seg)
        tau = self.temperature
        top = jax.ops.segment_max(x, **seg)
        safe = jnp.where(jnp.isfinite(top), top, 0.0)
        total = jax.ops.segment_sum(jnp.exp((x - safe[segment_ids]) / tau), **seg)
        return jnp.where(total > 0, safe + tau * jnp.log(total), -jnp.inf)

    def argbest(self, x: jax.Array, axis: int = -1) -> jax.Array:
        """The policy that attains `plus`: argmax (max-plus), argmin (min-plus), or the
        softmax probabilities `exp((x - plus(x)) / tau)` along `axis` (log-sum-exp).

        Raises:
          ValueError: for sum-product, whose plus (a sum) has no best element.
        """
        if self.kind in ("max-plus", "min-plus"):
            n = x.shape[axis]
            if n > UNROLL_MAX or x.ndim == 1:
                return (jnp.argmax if self.kind == "max-plus" else jnp.argmin)(x, axis=axis)
            # Unrolled like `plus`; the first index wins ties, as in jnp.argmax.
            better = jnp.greater if self.kind == "max-plus" else jnp.less
            best = jnp.take(x, 0, axis=axis)
            arg = jnp.zeros(best.shape, jnp.int32)
            for i in range(1, n):
                xi = jnp.take(x, i, axis=axis)
                take = better(xi, best)
                best, arg = jnp.where(take, xi, best), jnp.where(take, i, arg)
            return arg
        if self.kind == "log-sum-exp":  # shifted first, as in `plus`
            top = jnp.max(x, axis=axis, keepdims=True)
            safe = jnp.where(jnp.isfinite(top), top, 0.0)
            return jax.nn.softmax((x - safe) / self.temperature, axis=axis)
        raise ValueError(
            "sum-product has no best element (its plus is a weighted sum); use MAX_PLUS, "
            "MIN_PLUS or log_sum_exp(tau) to extract a policy."
        )

    def __repr__(self) -> str:
        return f"Semiring({self.name})"


#: Expectation under a policy: `(+, *)`.
SUM_PRODUCT = Semiring("sum-product")
#: Optimal control (maximise reward): `(max, +)`.
MAX_PLUS = Semiring("max-plus")
#: Shortest paths (minimise cost): `(min, +)`.
MIN_PLUS = Semiring("min-plus")


def log_sum_exp(temperature: float) -> Semiring:
    """The soft-max semiring `a (+) b = tau * log(exp(a / tau) + exp(b / tau))`, `(x)` = `+`.

    Its plus is `tau * logsumexp(x / tau)` (computed stably), which lies between `max(x)` and
    `max(x) + tau * log(n)` and tends to max-plus as `tau -> 0` (maximum-entropy RL; Ziebart
    2010, Haarnoja et al. 2017).

    Args:
      temperature: `tau > 0`, finite.

    Raises:
      ValueError: `tau <= 0` or not finite.
    """
    if not _is_concrete_number(temperature) and not isinstance(temperature, jax.Array):
        raise TypeError(
            f"temperature must be a number, got {type(temperature).__name__}; e.g. log_sum_exp(0.1)."
        )
    return Semiring("log-sum-exp", temperature)


# ---------------------------------------------------------------------- MDP arrays
@struct.dataclass
class MDPArrays:
    """The arrays of a `TabularMDP` laid out for the backup (a pytree; build with `from_mdp`).

    Exactly one of `P` (dense `[S, A, S']`) and `next_state`/`prob` (sparse, slot-major
    `[K, S, A]`) is set. Sparse rows longer than `K` continue in the overflow entries
    (`overflow_*`, `[E]`, sorted by row; None when there are none).
    """

    __repr__ = summary_repr

    R: jax.Array
    """Expected rewards `[S, A]`."""
    gamma: jax.Array
    """Discount, a scalar."""
    P: jax.Array | None = None
    """Dense transitions `[S, A, S']`, or None."""
    next_state: jax.Array | None = None
    """Sparse successor indices `[K, S, A]` (int32), or None."""
    prob: jax.Array | None = None
    """Sparse successor probabilities `[K, S, A]`, or None."""
    overflow_row: jax.Array | None = None
    """Flat row `s * A + a` of each overflow entry, sorted `[E]` (int32), or None."""
    overflow_next_state: jax.Array | None = None
    """Successor of each overflow entry `[E]` (int32), or None."""
    overflow_prob: jax.Array | None = None
    """Probability of each overflow entry `[E]`, or None."""

    @property
    def is_sparse(self) -> bool:
        """Whether the transitions are sparse."""
        return self.P is None

    @property
    def has_overflow(self) -> bool:
        """Whether sparse rows continue in overflow entries."""
        return self.overflow_row is not None

    @property
    def num_states(self) -> int:
        """`S`."""
        return self.R.shape[0]

    @property
    def num_actions(self) -> int:
        """`A`."""
        return self.R.shape[1]

    @classmethod
    def from_mdp(cls, mdp: TabularMDP | MDPArrays, dtype: Any = None) -> MDPArrays:
        """Lay a `TabularMDP` out for `bellman_backup` (jittable; host arrays are moved once).

        Args:
          mdp: a `TabularMDP` (dense or sparse) or an `MDPArrays` (returned as is, cast).
          dtype: float dtype of `R`, `gamma` and the probabilities (default: that of `R`,
            at least float32).
        """
        if isinstance(mdp, MDPArrays):
            if dtype is None:
                return mdp

            def cast(x):
                return None if x is None else jnp.asarray(x, dtype)

            return mdp.replace(
                R=cast(mdp.R),
                gamma=cast(mdp.gamma),
                P=cast(mdp.P),
                prob=cast(mdp.prob),
                overflow_prob=cast(mdp.overflow_prob),
            )
        if not isinstance(mdp, TabularMDP):
            raise TypeError(
                f"expected a TabularMDP (bellmax.core.TabularMDP), got {type(mdp).__name__}; "
                "build one with TabularMDP(P, R, gamma) or env.tabular_mdp(params)."
            )
        if dtype is None:
            dtype = jnp.result_type(mdp.R, jnp.float32)
        R = jnp.asarray(mdp.R, dtype)
        gamma = jnp.asarray(mdp.gamma, dtype)
        if not isinstance(mdp.P, SparseTransitions):
            return cls(R=R, gamma=gamma, P=jnp.asarray(mdp.P, dtype))
        sp = mdp.P
        ns, p = sp.next_state, sp.prob
        # One copy into the slot-major layout (numpy views stay views until jnp copies).
        move = np.moveaxis if isinstance(ns, np.ndarray) else jnp.moveaxis
        ns = jnp.asarray(move(ns, -1, 0), jnp.int32)
        move = np.moveaxis if isinstance(p, np.ndarray) else jnp.moveaxis
        p = jnp.asarray(move(p, -1, 0), dtype)
        overflow = {}
        if sp.overflow_row is not None:
            overflow = {
                "overflow_row": jnp.asarray(sp.overflow_row, jnp.int32),
                "overflow_next_state": jnp.asarray(sp.overflow_next_state, jnp.int32),
                "overflow_prob": jnp.asarray(sp.overflow_prob, dtype),
            }
        return cls(R=R, gamma=gamma, next_state=ns, prob=p, **overflow)


@struct.dataclass
class Backup:
    """The result of one `bellman_backup`."""

    __repr__ = summary_repr

    values: jax.Array
    """`V'(s) = (+)_a w (x) Q(s, a)`, `[S]`."""
    q_values: jax.Array
    """`Q(s, a) = R + gamma E V(s')`, `[S, A]`."""


def expected_next_values(mdp: MDPArrays, V: jax.Array) -> jax.Array:
    """`E_{s' ~ P(.|s, a)} V(s')` for every `(s, a)`, `[S, A]`.

    Dense: one matrix-vector product. Sparse: `sum_k prob[k] * V[next_state[k]]`, unrolled
    over the `K` slots (up to `SLOT_UNROLL_MAX`) so that XLA fuses the gathers, products and
    sum into one loop; then the overflow entries of the long rows, `prob * V[next_state]`,
    summed per row by a sorted segment sum.
    """
    if mdp.P is not None:
        return jnp.einsum("sat,t->sa", mdp.P, V)
    K = mdp.next_state.shape[0]
    if K <= SLOT_UNROLL_MAX:
        total = None
        for k in range(K):
            term = mdp.prob[k] * V.at[mdp.next_state[k]].get(mode="promise_in_bounds")
            total = term if total is None else total + term
    else:
        total = jnp.sum(mdp.prob * V.at[mdp.next_state].get(mode="promise_in_bounds"), axis=0)
    if mdp.overflow_row is None:
        return total
    S, A = total.shape
    terms = mdp.overflow_prob * V.at[mdp.overflow_next_state].get(mode="promise_in_bounds")
    spill = SUM_PRODUCT.segment_plus(terms, mdp.overflow_row, S * A, indices_are_sorted=True)
    return total + spill.reshape(S, A)


def q_values(mdp: TabularMDP | MDPArrays, V: jax.Array) -> jax.Array:
    """`Q(s, a) = R(s, a) + gamma * E V(s')`, `[S, A]` (Sutton & Barto, eq. 4.6)."""
    m = MDPArrays.from_mdp(mdp)
    return m.R + m.gamma * expected_next_values(m, V)


def bellman_backup(
    mdp: TabularMDP | MDPArrays,
    V: jax.Array,
    semiring: Semiring,
    *,
    weights: jax.Array | None = None,
) -> Backup:
    """One Bellman backup in a semiring: `V'(s) = (+)_a w(s, a) (x) [R + gamma E V(s')]`.

    - `SUM_PRODUCT` with `weights = pi[S, A]`: policy evaluation (eq. 4.5);
    - `MAX_PLUS`: value iteration (eq. 4.10); `MIN_PLUS`: the same with costs;
    - `log_sum_exp(tau)`: the soft (maximum-entropy) backup.

    Jittable; pass `semiring` as a static argument (it is hashable).

    Args:
      mdp: a `TabularMDP` or `MDPArrays` (use `MDPArrays.from_mdp` once outside loops).
      V: current values `[S]`.
      semiring: how actions combine.
      weights: optional action weights `[S, A]` in the semiring's sense (see `Semiring.plus`).

    Returns:
      A `Backup` with the new `values [S]` and the `q_values [S, A]` they came from.
    """
    m = MDPArrays.from_mdp(mdp)
    Q = m.R + m.gamma * expected_next_values(m, V)
    if m.num_actions == 1 and weights is None:
        return Backup(values=Q[:, 0], q_values=Q)
    return Backup(values=semiring.plus(Q, axis=-1, weights=weights), q_values=Q)
