"""Exact beliefs, alpha-vector policies and simulation of the belief MDP.

The belief `b(s)` is the posterior over states given the history; after action `a` and
observation `o` it is Bayes' rule (Kaelbling, Littman & Cassandra 1998, eq. 1 of section 3.3)

    b'(s') = O[a, s', o] sum_s b(s) T[a, s, s'] / Pr(o | b, a).

`belief_update` is written for one belief and jitted; `vmap` it (or call
`belief_update_batch`) for many. `simulate` runs the POMDP as the model says (the true
state hidden, the policy acting on the exact belief), vmapped over episodes in one scan.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int
from bellmax.core.display import summary_repr
from bellmax.pomdp.model import (
    TabularPOMDP,
    check_pomdp,
    check_reward_scale,
    short_successor_lists,
)

__all__ = [
    "AlphaVectors",
    "BeliefUpdate",
    "SimulationResult",
    "belief_update",
    "belief_update_batch",
    "check_belief",
    "observation_probs",
    "simulate",
    "x64",
]


def x64(dtype: Any = np.float64) -> contextlib.AbstractContextManager:
    """`jax.enable_x64(True)` for float64 work, else nothing (the global flag is untouched)."""
    return jax.enable_x64(True) if np.dtype(dtype) == np.float64 else contextlib.nullcontext()


@struct.dataclass
class BeliefUpdate:
    """The belief after one step and the chance of the observation that led to it."""

    __repr__ = summary_repr

    belief: jax.Array
    """`b'[S]`; the predicted belief `b T[a]` where `Pr(o | b, a) = 0`."""
    prob: jax.Array
    """`Pr(o | b, a)`."""


def observation_probs(pomdp: TabularPOMDP, b_tm1: jax.Array, a_tm1: jax.Array) -> jax.Array:
    """`Pr(o | b, a)` for every observation, `[O]` (concrete arguments checked as
    `belief_update` checks them; in the model's precision)."""
    from bellmax.envs.environment import check_discrete_action

    check_belief(pomdp, b_tm1, "observation_probs")
    check_discrete_action(a_tm1, pomdp.num_actions, "observation_probs")
    with _model_precision(pomdp, b_tm1, a_tm1):
        if _concrete(pomdp.T, pomdp.O, a_tm1):  # (the rows read, not the model: above)
            a = int(a_tm1)
            return jnp.asarray(b_tm1) @ jnp.asarray(pomdp.T[a]) @ jnp.asarray(pomdp.O[a])
        pred = jnp.asarray(b_tm1) @ jnp.asarray(pomdp.T)[a_tm1]
        return pred @ jnp.asarray(pomdp.O)[a_tm1]


def _model_precision(pomdp: TabularPOMDP, *args: Any) -> contextlib.AbstractContextManager:
    """`x64` for a float64 model's arithmetic where every argument is concrete (a traced call
    keeps the precision of the program it is part of)."""
    if not _concrete(*args):
        return contextlib.nullcontext()
    return x64(np.asarray(pomdp.T).dtype)


def _not_a_belief(b: np.ndarray) -> np.ndarray:
    """Per row of `b` (`[..., S]`): not finite probabilities >= 0 summing to 1."""
    finite = np.isfinite(b).all(axis=-1)
    return ~finite | (b < 0).any(axis=-1) | ~(np.abs(b.sum(axis=-1) - 1.0) <= 1e-3)


def _shown(b: np.ndarray) -> list[float]:
    """A belief's entries to 6 significant digits (a float32 0.9 shows as 0.9)."""
    return [float(f"{v:.6g}") for v in b]


def check_belief(pomdp: TabularPOMDP, belief: Any, where: str) -> None:
    """A concrete belief must be `[S]` probabilities (finite, >= 0, summing to 1); a traced
    one (inside jit or vmap) is not checked."""
    if isinstance(belief, jax.core.Tracer):
        return
    b = np.asarray(belief, np.float64)
    S = pomdp.num_states
    if b.shape != (S,):
        raise ValueError(f"{where}: the belief must be [{S}] (one per state), got shape {b.shape}.")
    if _not_a_belief(b):
        raise ValueError(
            f"{where}: the belief must be probabilities >= 0 summing to 1, got {_shown(b)} "
            f"(sum {b.sum():.6g})."
        )


def _check_batch(pomdp: TabularPOMDP, beliefs: Any, actions: Any, observations: Any) -> None:
    """`belief_update_batch`'s concrete arguments: beliefs `[N, S]`, each row probabilities;
    actions and observations `[N]` integers in range (under jit an index out of range would
    be clamped silently). Traced arguments are not checked."""
    if any(isinstance(x, jax.core.Tracer) for x in (beliefs, actions, observations)):
        return
    where, S = "belief_update_batch", pomdp.num_states
    b = np.asarray(beliefs, np.float64)
    if b.ndim != 2 or b.shape[1] != S:
        raise ValueError(
            f"{where}: the beliefs must be [N, {S}] (a row per belief, one entry per state), "
            f"got shape {b.shape}; for one belief call belief_update."
        )
    bad = np.flatnonzero(_not_a_belief(b))
    if bad.size:
        raise ValueError(
            f"{where}: each belief must be probabilities >= 0 summing to 1; row {int(bad[0])} is "
            f"{_shown(b[bad[0]])} (sum {b[bad[0]].sum():.6g})"
            + (f", and {len(bad) - 1} more rows are not either." if len(bad) > 1 else ".")
        )
    for x, what, n in (
        (actions, "action", pomdp.num_actions),
        (observations, "observation", pomdp.num_observations),
    ):
        x = np.asarray(x)
        if x.shape != (b.shape[0],):
            raise ValueError(
                f"{where}: the {what}s must be [N] = [{b.shape[0]}] integers, one per belief, "
                f"got shape {x.shape}."
            )
        if x.dtype.kind not in "iu":
            raise TypeError(
                f"{where}: the {what}s must be integers, got dtype {x.dtype.name}; pass "
                f"indices (e.g. np.asarray({what}s, np.int32))."
            )
        out = np.flatnonzero((x < 0) | (x >= n))
        if out.size:
            raise ValueError(
                f"{where}: {what} {int(x[out[0]])} (row {int(out[0])}) is out of range: the "
                f"valid {what}s are the integers 0..{n - 1}."
            )


def belief_update(
    pomdp: TabularPOMDP, b_tm1: jax.Array, a_tm1: jax.Array, o_t: jax.Array
) -> BeliefUpdate:
    """Bayes' rule for one belief (jitted; `vmap` it over beliefs).

    Concrete arguments are checked first (a belief of `S` probabilities, an action and an
    observation in range: under jit an index out of range would be clamped silently).

    Args:
      pomdp: the model.
      b_tm1: belief `[S]` before the step.
      a_tm1: the action taken (int).
      o_t: the observation seen after it (int).

    Returns:
      `BeliefUpdate(belief, prob)`.
    """
    from bellmax.envs.environment import check_discrete_action

    check_belief(pomdp, b_tm1, "belief_update")
    check_discrete_action(a_tm1, pomdp.num_actions, "belief_update")
    check_discrete_action(o_t, pomdp.num_observations, "belief_update", what="observation")
    with _model_precision(pomdp, b_tm1, a_tm1, o_t):
        if _concrete(pomdp.T, pomdp.O, a_tm1, o_t):
            # Only the rows this step reads go to the device, not the whole model each call
            # (Tag's T is 30 MB: a step took 12-14 ms, nearly all of it the copy).
            a, o = int(a_tm1), int(o_t)
            return _update_rows(jnp.asarray(b_tm1), pomdp.T[a], pomdp.O[a, :, o])
        return _belief_update(pomdp, jnp.asarray(b_tm1), a_tm1, o_t)


def _concrete(*xs: Any) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


@jax.jit
def _belief_update(pomdp, b_tm1, a_tm1, o_t) -> BeliefUpdate:
    return _update_rows(b_tm1, jnp.asarray(pomdp.T)[a_tm1], jnp.asarray(pomdp.O)[a_tm1, :, o_t])


@jax.jit
def _update_rows(b_tm1, T_a, likelihood) -> BeliefUpdate:
    """Bayes' rule on `b_tm1 @ T[a]` with the likelihoods `O[a, :, o]`."""
    return _condition(b_tm1 @ T_a, likelihood)


def _condition(pred: jax.Array, likelihood: jax.Array) -> BeliefUpdate:
    """Bayes' rule on a predicted belief: `pred * likelihood`, normalised (`pred` where the
    observation has probability 0)."""
    joint = pred * likelihood
    prob = joint.sum()
    belief = jnp.where(prob > 0, joint / jnp.where(prob > 0, prob, 1.0), pred)
    return BeliefUpdate(belief=belief, prob=prob)


def belief_update_batch(
    pomdp: TabularPOMDP, b_tm1: jax.Array, a_tm1: jax.Array, o_t: jax.Array
) -> BeliefUpdate:
    """`belief_update` over a batch: beliefs `[N, S]`, actions `[N]`, observations `[N]`
    (jitted; concrete arguments are checked first, as `belief_update` checks its own).

    The prediction is one `[N, S] @ [S, S]` product per action, each belief keeping its own
    action's row (`[N, A, S]`), not `vmap(belief_update)`'s gather of `T[a]` per belief, an
    `[N, S, S]` temporary (6 GB for 1,000 beliefs of Tag's 870 states in float64).
    """
    _check_batch(pomdp, b_tm1, a_tm1, o_t)
    with _model_precision(pomdp, b_tm1, a_tm1, o_t):
        b, a, o = (jnp.asarray(x) for x in (b_tm1, a_tm1, o_t))
        return _belief_update_batch(pomdp, b, a, o)


@jax.jit
def _belief_update_batch(pomdp, b_tm1, a_tm1, o_t) -> BeliefUpdate:
    T = jnp.asarray(pomdp.T)
    pred = jnp.einsum("ns,ast->nat", b_tm1, T)[jnp.arange(b_tm1.shape[0]), a_tm1]
    likelihood = jnp.asarray(pomdp.O)[a_tm1, :, o_t]
    return jax.vmap(_condition)(pred, likelihood)


@struct.dataclass
class AlphaVectors:
    """A piecewise-linear convex value function and its policy: `V(b) = max_k b . alphas[k]`.

    Each vector is the value of a conditional plan whose first action is `actions[k]`; the
    policy takes the action of the maximising vector.
    """

    __repr__ = summary_repr

    alphas: jax.Array
    """`[K, S]`."""
    actions: jax.Array
    """`[K]` int: the first action of each vector's plan."""

    def value(self, b: jax.Array) -> jax.Array:
        """`max_k b . alphas[k]` (any leading batch axes on `b`)."""
        return jnp.max(b @ self.alphas.T, axis=-1)

    def action(self, b: jax.Array) -> jax.Array:
        """The policy's action at `b`."""
        return self.actions[jnp.argmax(b @ self.alphas.T, axis=-1)]

    def act(self, b: jax.Array, key: jax.Array) -> jax.Array:
        """`action(b)`; the key is unused (the signature `simulate` expects)."""
        del key
        return self.action(b)

    @property
    def size(self) -> int:
        """Number of vectors `K`."""
        return int(self.alphas.shape[0])


@struct.dataclass
class SimulationResult:
    """Discounted returns of simulated episodes."""

    __repr__ = summary_repr

    returns: jax.Array
    """Discounted return of each episode `[N]`."""
    mean_discounted_return: jax.Array
    """Their mean."""
    stderr: jax.Array
    """Standard error of the mean (sample std / sqrt(N))."""


def _episode(pomdp, act, params, steps, key, succ_lists=None):
    T, Ob, R = jnp.asarray(pomdp.T), jnp.asarray(pomdp.O), jnp.asarray(pomdp.R)
    b0 = jnp.asarray(pomdp.b0, T.dtype)
    k0, key = jax.random.split(key)
    s0 = jax.random.choice(k0, b0.shape[0], p=b0)

    def step(carry, _):
        s, b, disc, ret, key = carry
        key, ka, ks, ko = jax.random.split(key, 4)
        a = _policy_action(act(params, b, ka))  # (checked at trace time)
        s2 = jax.random.choice(ks, T.shape[2], p=T[a, s])
        o = jax.random.choice(ko, Ob.shape[2], p=Ob[a, s2])
        # an action out of range would be clamped to a valid one by the indexing: NaN instead
        # (simulate raises on it)
        outside = (a < 0) | (a >= R.shape[1])
        ret = ret + disc * jnp.where(outside, jnp.nan, R[s, a])
        if succ_lists is None:
            pred = b @ T[a]
        else:
            succ, prob = succ_lists
            pred = jnp.zeros_like(b).at[succ[a]].add(b[:, None] * prob[a])
        b2 = _condition(pred, Ob[a, :, o]).belief
        return (s2, b2, disc * pomdp.gamma, ret, key), None

    init = (s0, b0, jnp.ones((), T.dtype), jnp.zeros((), T.dtype), key)
    (_, _, _, ret, _), _ = jax.lax.scan(step, init, None, length=steps)
    return ret


def simulate(
    pomdp: TabularPOMDP,
    policy: AlphaVectors | Callable[[jax.Array, jax.Array], jax.Array],
    key: jax.Array,
    *,
    episodes: int = 1000,
    steps: int = 100,
) -> SimulationResult:
    """Simulate the POMDP under a belief policy and report discounted returns.

    The hidden state starts from `b0`, moves by `T`, emits observations by `O` and earns the
    expected reward `R[s, a]`; the policy sees only the exact belief. The model runs as it
    is written: a state whose transitions reset to the start distribution keeps going.
    Episodes are vmapped and the steps scanned, in one jitted call.

    Args:
      pomdp: the model.
      policy: `AlphaVectors`, or a function `(belief [S], key) -> action` (jittable).
      key: PRNG key.
      episodes: number of episodes (>= 2 for a standard error).
      steps: steps per episode (the return is truncated there: at most
        `gamma**steps * max|R| / (1 - gamma)` from the infinite-horizon one).

    Returns:
      `SimulationResult`.

    Raises:
      ValueError: rewards whose discounted sums over `steps` overflow float64
        (`check_reward_scale`: the returns would be inf or NaN).
    """
    episodes = check_int(episodes, "episodes", owner="simulate", low=2)
    steps = check_int(steps, "steps", owner="simulate", low=1)
    check_pomdp(pomdp, "simulate")
    if not isinstance(pomdp.R, jax.core.Tracer):  # a model traced under jit: not checkable
        check_reward_scale(pomdp, "simulate", horizon=steps)
    if isinstance(policy, AlphaVectors):
        act, params = _alpha_act, policy
    elif callable(policy):
        act, params = _CallPolicy(policy), None
    else:
        raise TypeError(
            f"simulate's policy must be AlphaVectors or a function (belief, key) -> action, "
            f"got {type(policy).__name__}.{solver_result_hint(policy, 'simulate(pomdp, {}, key)')}"
        )
    # Under an outer jit or vmap the episodes run in that program's precision (x64 switched
    # on inside a trace made programs of mixed types: errors deep in JAX).
    traced = not _concrete(key, *jax.tree.leaves((pomdp, params)))
    wide = not traced and np.dtype(pomdp.T.dtype) == np.float64
    with x64() if wide else contextlib.nullcontext():
        keys = jax.random.split(key, episodes)
        if wide:
            model, params = _on_device((pomdp, params))
        else:  # (under a jit with x64 off, a float64 model is read as float32)
            model, params = _canonical((pomdp, params))
        lists = _successor_lists(pomdp if wide else model)  # (from the host's arrays)
        returns = _simulate(model, act, params, steps, keys, lists)
        if not traced and np.isnan(np.asarray(returns)).any():  # (the rewards are finite)
            raise ValueError(
                f"simulate: the policy chose an action outside 0..{pomdp.num_actions - 1} "
                f"(this POMDP has {pomdp.num_actions} actions); the model would have run it "
                "as another action. Return an action index of the POMDP."
            )
        return SimulationResult(
            returns=returns,
            mean_discounted_return=returns.mean(),
            stderr=returns.std(ddof=1) / np.sqrt(episodes),
        )


def _policy_action(a: Any) -> Any:
    """A policy's action, checked at trace time: one integer (an array, a tuple or a float
    reached the model's indexing and failed deep in JAX, naming no policy)."""
    if isinstance(a, int | np.integer) and not isinstance(a, bool):
        return jnp.asarray(a, jnp.int32)
    if not (hasattr(a, "shape") and hasattr(a, "dtype")) or np.shape(a) != ():
        got = f"shape {np.shape(a)}" if hasattr(a, "shape") else type(a).__name__
        raise TypeError(
            f"simulate's policy must return one action index (an integer, shape ()), got {got}."
        )
    if np.dtype(a.dtype).kind not in "iu":
        raise TypeError(
            f"simulate's policy must return an integer action index, got dtype "
            f"{np.dtype(a.dtype).name}; return jnp.argmax(...) or a.astype(jnp.int32)."
        )
    return a


def _on_device(tree: Any) -> Any:
    """`tree`'s arrays as new device arrays of their own dtypes. Converted with the dtype
    named, not implicitly: jax 0.10 hands a float64 program the float32 copy it kept of a
    numpy array that a program compiled with x64 off captured (a user's jitted function, or
    an older bellmax's POMCP), and the program then fails (RuntimeProgramInputMismatch)."""
    return jax.tree.map(lambda x: jnp.asarray(x, getattr(x, "dtype", None)), tree)


def _canonical(tree: Any) -> Any:
    """`tree`'s concrete arrays in the dtypes JAX computes in now (float64 as float32 with
    x64 off): mixed into traced arithmetic as they are, each one warned."""

    def cast(x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return x.astype(jax.dtypes.canonicalize_dtype(x.dtype), copy=False)
        if isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer):
            return x.astype(jax.dtypes.canonicalize_dtype(x.dtype))
        return x

    return jax.tree.map(cast, tree)


def solver_result_hint(value: Any, call: str) -> str:
    """For a solver's result passed where its `AlphaVectors` policy belongs: which field
    holds them (`.vectors`; `.policy` for `exact_value_iteration`'s), shown in `call`, a
    template with `{}` for the argument (`"simulate(pomdp, {}, key)"`); "" for anything else."""
    for field in ("vectors", "policy"):
        if isinstance(getattr(value, field, None), AlphaVectors):
            return (
                f" That is a solver's result; its policy is result.{field}: "
                f"{call.format(f'result.{field}')}."
            )
    return ""


def _alpha_act(params: AlphaVectors, b: jax.Array, key: jax.Array) -> jax.Array:
    return params.act(b, key)


@dataclasses.dataclass(frozen=True)
class _CallPolicy:
    """A `(belief, key) -> action` function in `_alpha_act`'s signature (static, hashable)."""

    fn: Callable

    def __call__(self, params, b, key):
        return self.fn(b, key)


def _successor_lists(pomdp: TabularPOMDP):
    """`short_successor_lists(T)` as arrays, or None (dense, or `T` traced). Vmapped over
    episodes, `b @ T[a]` gathers an `[S, S]` matrix per episode (2000 Tag episodes: 12 GB);
    the lists gather `[S, K]`."""
    if isinstance(pomdp.T, jax.core.Tracer):
        return None
    lists = short_successor_lists(pomdp.T)
    if lists is None:
        return None
    return jnp.asarray(lists[0]), jnp.asarray(lists[1], pomdp.T.dtype)


@jax.jit(static_argnums=(1, 3))
def _simulate(pomdp, act, params, steps, keys, succ_lists):
    return jax.vmap(lambda k: _episode(pomdp, act, params, steps, k, succ_lists))(keys)
