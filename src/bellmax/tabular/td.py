"""Temporal-difference learning on tables (Sutton & Barto, Chapter 6).

Two layers, in the style of rlax:

- one-transition math with `_tm1`/`_t` names: the TD errors (`td_error`, `sarsa_error`,
  `expected_sarsa_error`, `q_learning_error`, `double_q_learning_error`,
  `soft_q_learning_error`) on rows of values, and the table updates built on them
  (`td0_update`, `sarsa_update`, `expected_sarsa_update`, `q_learning_update`,
  `double_q_learning_update`, `soft_q_learning_update`), all pure and jittable;
- drivers that run whole experiments: `td0_prediction`, `sarsa`, `expected_sarsa`,
  `q_learning`, `double_q_learning` and `soft_q_learning` each run `num_runs` independent
  runs (vmapped) of `config.num_episodes` episodes (scanned) and return per-run tables and
  per-episode statistics.

The five control methods share one driver, `td_control`, and differ only in their update (their
target) and, for soft Q-learning, in sampling its Boltzmann policy instead of the greedy one.
Step size (and its decay), exploration rate, temperature, discount and initial value are traced
arguments of the compiled program, so sweeping `alpha` does not recompile.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_number, check_prng_key, check_probability
from bellmax.core.semiring import log_sum_exp
from bellmax.envs.tabular import TabularEnvironment
from bellmax.tabular.episodes import (
    ControlResult,
    PredictionResult,
    check_config,
    check_env,
    check_episode_fields,
    check_num_runs,
    check_policy,
    check_step_size,
    check_track,
    epsilon_greedy_action,
    epsilon_greedy_probs,
    greedy_action,
    greedy_policy,
    hash_bits,
    resolve_gamma,
    resolve_params,
    run_episode,
    run_episodes,
    run_program,
    sample_action,
    table_shape,
)
from bellmax.tabular.episodes import action_mask as resolve_action_mask

__all__ = [
    "DoubleQLearningConfig",
    "ExpectedSarsaConfig",
    "QLearningConfig",
    "SarsaConfig",
    "SoftQLearningConfig",
    "TD0Config",
    "TDControlConfig",
    "boltzmann_action",
    "boltzmann_probs",
    "double_q_learning",
    "double_q_learning_error",
    "double_q_learning_update",
    "expected_sarsa",
    "expected_sarsa_error",
    "expected_sarsa_update",
    "q_learning",
    "q_learning_error",
    "q_learning_update",
    "sarsa",
    "sarsa_error",
    "sarsa_update",
    "soft_q_learning",
    "soft_q_learning_error",
    "soft_q_learning_update",
    "td0_prediction",
    "td0_update",
    "td_control",
    "td_error",
]


# ---------------------------------------------------------------------- TD errors
def _check_temperature(temperature: Any, who: str) -> Any:
    """A temperature given as a Python or NumPy number must be finite and > 0 (arrays, traced
    or not, pass: the configs check theirs when they are built)."""
    if isinstance(temperature, numbers.Real):
        return _checked_temperature(temperature, who)
    return temperature


#: The smallest temperature: float32's smallest normal number. Below it tau is a subnormal
#: that XLA's CPU code flushes to 0 (every soft value then NaN).
MIN_TEMPERATURE = float(np.finfo(np.float32).tiny)


def _checked_temperature(temperature: Any, who: str) -> float:
    """A finite number `>= MIN_TEMPERATURE`, or a ValueError that says how to mend it."""
    try:
        tau = check_number(temperature, "temperature", owner=who, low=0, low_open=True)
    except ValueError as err:
        raise ValueError(f"{err} {_TAU_HINT}" if temperature <= 0 else str(err)) from None
    if tau < MIN_TEMPERATURE:
        raise ValueError(
            f"{who}.temperature must be at least {MIN_TEMPERATURE:.3g} (float32's smallest "
            f"normal number; below it the tables' arithmetic flushes tau to 0), got {tau!r}. "
            + _TAU_HINT
        )
    return tau


#: How to mend a temperature <= 0.
_TAU_HINT = (
    "Soft Q-learning needs tau > 0; its limit tau -> 0 is Q-learning: use QLearningConfig and "
    "q_learning (q_learning_error, epsilon-greedy actions) instead, or a small tau such as 1e-3."
)


def td_error(v_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array, v_t: jax.Array) -> jax.Array:
    """TD(0) error `r_t + discount_t * v_t - v_tm1` (Section 6.1, eq. 6.5).

    Args:
      v_tm1: value of the state left.
      r_t: reward received.
      discount_t: `gamma`, or 0 when `s_t` is terminal.
      v_t: value of the state reached.

    Returns:
      The TD error (scalar).
    """
    return r_t + discount_t * v_t - v_tm1


def sarsa_error(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    a_t: jax.Array,
) -> jax.Array:
    """SARSA error `r_t + discount_t * q_t[a_t] - q_tm1[a_tm1]` (Section 6.4, eq. 6.7).

    Args:
      q_tm1: action values `[A]` of the state left.
      a_tm1: action taken there.
      r_t: reward received.
      discount_t: `gamma`, or 0 when `s_t` is terminal.
      q_t: action values `[A]` of the state reached.
      a_t: the next action, chosen by the behaviour policy.

    Returns:
      The TD error (scalar).
    """
    return r_t + discount_t * q_t[a_t] - q_tm1[a_tm1]


def expected_sarsa_error(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    probs_t: jax.Array,
) -> jax.Array:
    """Expected SARSA error `r_t + discount_t * sum_a pi(a|s_t) q_t[a] - q_tm1[a_tm1]`
    (Section 6.6, eq. 6.9).

    Args:
      q_tm1: action values `[A]` of the state left.
      a_tm1: action taken there.
      r_t: reward received.
      discount_t: `gamma`, or 0 when `s_t` is terminal.
      q_t: action values `[A]` of the state reached.
      probs_t: target-policy probabilities `[A]` in the state reached.

    Returns:
      The TD error (scalar).
    """
    return r_t + discount_t * jnp.dot(probs_t, q_t) - q_tm1[a_tm1]


def q_learning_error(
    q_tm1: jax.Array, a_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array, q_t: jax.Array
) -> jax.Array:
    """Q-learning error `r_t + discount_t * max_a q_t[a] - q_tm1[a_tm1]` (Section 6.5, eq. 6.8).

    Args:
      q_tm1: action values `[A]` of the state left.
      a_tm1: action taken there.
      r_t: reward received.
      discount_t: `gamma`, or 0 when `s_t` is terminal.
      q_t: action values `[A]` of the state reached (invalid actions set to `-inf`).

    Returns:
      The TD error (scalar).
    """
    return r_t + discount_t * jnp.max(q_t) - q_tm1[a_tm1]


def double_q_learning_error(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array,
) -> jax.Array:
    """Double Q-learning error: select the next action with one table, value it with the other,
    `r_t + discount_t * q_t_value[argmax q_t_selector] - q_tm1[a_tm1]` (Section 6.7, eq. 6.10).

    Args:
      q_tm1: action values `[A]` of the state left, from the table being updated.
      a_tm1: action taken there.
      r_t: reward received.
      discount_t: `gamma`, or 0 when `s_t` is terminal.
      q_t_value: the other table's values `[A]` of the state reached.
      q_t_selector: the updated table's values `[A]` of the state reached (selects the action;
        the lowest index wins ties; `double_q_learning_update` breaks them at random).

    Returns:
      The TD error (scalar).
    """
    return sarsa_error(q_tm1, a_tm1, r_t, discount_t, q_t_value, jnp.argmax(q_t_selector))


def soft_q_learning_error(
    q_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t: jax.Array,
    temperature: jax.Array,
) -> jax.Array:
    """Soft Q-learning error `r_t + discount_t * V_soft(s_t) - q_tm1[a_tm1]` with the soft value
    `V_soft(s_t) = tau * log sum_a exp(q_t[a] / tau)`: the log-sum-exp plus of
    `bellmax.core.semiring.log_sum_exp(tau)`, the same backup as `soft_value_iteration`
    (no `log |A|` term, no prior). As `tau -> 0` it decreases to `q_learning_error`, with
    `0 <= V_soft - max_a q_t[a] <= tau * log |A|` (Haarnoja et al. 2017, eq. 5; Ziebart 2010).

    Args:
      q_tm1: action values `[A]` of the state left.
      a_tm1: action taken there.
      r_t: reward received.
      discount_t: `gamma`, or 0 when `s_t` is terminal.
      q_t: action values `[A]` of the state reached (invalid actions set to `-inf`).
      temperature: `tau > 0` (may be traced).

    Returns:
      The TD error (scalar).
    """
    tau = _check_temperature(temperature, "soft_q_learning_error")
    v_t = log_sum_exp(jnp.asarray(tau, jnp.result_type(q_t, jnp.float32))).plus(q_t)
    return r_t + discount_t * v_t - q_tm1[a_tm1]


# ---------------------------------------------------------------------- table updates
def td0_update(
    v: jax.Array, s_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array, s_t: jax.Array, *,
    alpha: jax.Array,
) -> jax.Array:  # fmt: skip
    """One tabular TD(0) update `V(s_tm1) += alpha * td_error` (Section 6.1).

    Args:
      v: state values `[S]`.
      s_tm1, r_t, discount_t, s_t: the transition (`discount_t = 0` at a terminal `s_t`).
      alpha: step size.

    Returns:
      The updated `[S]` table.
    """
    return v.at[s_tm1].add((alpha * td_error(v[s_tm1], r_t, discount_t, v[s_t])).astype(v.dtype))


def sarsa_update(
    q: jax.Array, s_tm1: jax.Array, a_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array,
    s_t: jax.Array, a_t: jax.Array, *, alpha: jax.Array,
) -> jax.Array:  # fmt: skip
    """One SARSA update `Q(s_tm1, a_tm1) += alpha * sarsa_error` (Section 6.4).

    Args:
      q: action values `[S, A]`.
      s_tm1, a_tm1, r_t, discount_t, s_t, a_t: the transition and the next action.
      alpha: step size.

    Returns:
      The updated `[S, A]` table.
    """
    err = sarsa_error(q[s_tm1], a_tm1, r_t, discount_t, q[s_t], a_t)
    return q.at[s_tm1, a_tm1].add((alpha * err).astype(q.dtype))


def expected_sarsa_update(
    q: jax.Array, s_tm1: jax.Array, a_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array,
    s_t: jax.Array, *, alpha: jax.Array, epsilon: jax.Array, valid_t: jax.Array | None = None,
) -> jax.Array:  # fmt: skip
    """One Expected SARSA update with the epsilon-greedy target policy (Section 6.6).

    Args:
      q: action values `[S, A]`.
      s_tm1, a_tm1, r_t, discount_t, s_t: the transition.
      alpha: step size.
      epsilon: exploration rate of the epsilon-greedy target policy (0 gives Q-learning).
      valid_t: optional bool `[A]` of the actions that exist in `s_t`.

    Returns:
      The updated `[S, A]` table.
    """
    probs = epsilon_greedy_probs(q[s_t], epsilon, valid_t)
    err = expected_sarsa_error(q[s_tm1], a_tm1, r_t, discount_t, q[s_t], probs)
    return q.at[s_tm1, a_tm1].add((alpha * err).astype(q.dtype))


def q_learning_update(
    q: jax.Array, s_tm1: jax.Array, a_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array,
    s_t: jax.Array, *, alpha: jax.Array, valid_t: jax.Array | None = None,
) -> jax.Array:  # fmt: skip
    """One Q-learning update `Q(s_tm1, a_tm1) += alpha * q_learning_error` (Section 6.5).

    Args:
      q: action values `[S, A]`.
      s_tm1, a_tm1, r_t, discount_t, s_t: the transition.
      alpha: step size.
      valid_t: optional bool `[A]` of the actions that exist in `s_t` (the max ignores the rest).

    Returns:
      The updated `[S, A]` table.
    """
    q_t = q[s_t] if valid_t is None else jnp.where(valid_t, q[s_t], -jnp.inf)
    err = q_learning_error(q[s_tm1], a_tm1, r_t, discount_t, q_t)
    return q.at[s_tm1, a_tm1].add((alpha * err).astype(q.dtype))


def double_q_learning_update(
    key: jax.Array, q_pair: jax.Array, s_tm1: jax.Array, a_tm1: jax.Array, r_t: jax.Array,
    discount_t: jax.Array, s_t: jax.Array, *, alpha: jax.Array, valid_t: jax.Array | None = None,
) -> jax.Array:  # fmt: skip
    """One Double Q-learning update (Section 6.7): a fair coin picks the table to update; it
    selects the greedy next action (ties at random) and the other table values it.

    Args:
      key: random key (the coin and the tie-breaking).
      q_pair: the two tables `[2, S, A]`.
      s_tm1, a_tm1, r_t, discount_t, s_t: the transition.
      alpha: step size.
      valid_t: optional bool `[A]` of the actions that exist in `s_t`.

    Returns:
      The updated `[2, S, A]` tables.
    """
    i = (hash_bits(key, 1, salt=1)[0] >> 31).astype(jnp.int32)
    q_upd, q_eval = q_pair[i], q_pair[1 - i]
    a_star = greedy_action(key, q_upd[s_t], valid_t)
    err = sarsa_error(q_upd[s_tm1], a_tm1, r_t, discount_t, q_eval[s_t], a_star)
    return q_pair.at[i, s_tm1, a_tm1].add((alpha * err).astype(q_pair.dtype))


def soft_q_learning_update(
    q: jax.Array, s_tm1: jax.Array, a_tm1: jax.Array, r_t: jax.Array, discount_t: jax.Array,
    s_t: jax.Array, *, alpha: jax.Array, temperature: jax.Array, valid_t: jax.Array | None = None,
) -> jax.Array:  # fmt: skip
    """One soft Q-learning update `Q(s_tm1, a_tm1) += alpha * soft_q_learning_error`
    (Haarnoja et al. 2017; the sampled form of `soft_value_iteration`'s backup).

    Args:
      q: action values `[S, A]`.
      s_tm1, a_tm1, r_t, discount_t, s_t: the transition.
      alpha: step size.
      temperature: `tau > 0`.
      valid_t: optional bool `[A]` of the actions that exist in `s_t` (the log-sum-exp ignores
        the rest).

    Returns:
      The updated `[S, A]` table.
    """
    q_t = q[s_t] if valid_t is None else jnp.where(valid_t, q[s_t], -jnp.inf)
    err = soft_q_learning_error(q[s_tm1], a_tm1, r_t, discount_t, q_t, temperature)
    return q.at[s_tm1, a_tm1].add((alpha * err).astype(q.dtype))


# ---------------------------------------------------------------------- Boltzmann behaviour
def boltzmann_probs(
    q_row: jax.Array,
    temperature: jax.Array,
    epsilon: jax.Array = 0.0,
    valid: jax.Array | None = None,
) -> jax.Array:
    """The epsilon-mixed Boltzmann (softmax) policy `[A]` of one row of action values:
    `(1 - epsilon) * softmax(q_row / tau) + epsilon * uniform`, over the `valid` actions.

    The softmax part is `soft_value_iteration`'s policy `exp((Q(s, a) - V_soft(s)) / tau)`;
    as `tau -> 0` it tends to the uniform choice among the greedy actions, so the mixture
    tends to `epsilon_greedy_probs`.

    Args:
      q_row: action values `[A]`.
      temperature: `tau > 0` (may be traced).
      epsilon: weight of the uniform choice, in `[0, 1]` (may be traced).
      valid: optional bool `[A]` of the actions that exist in this state (at least one).

    Returns:
      Probabilities `[A]` (0 for invalid actions).
    """
    q_row = jnp.asarray(q_row)
    valid = jnp.ones(q_row.shape, bool) if valid is None else jnp.asarray(valid, bool)
    tau = _check_temperature(temperature, "boltzmann_probs")
    tau = jnp.asarray(tau, jnp.result_type(q_row, jnp.float32))
    # shifted by the largest valid value first: q_row / tau alone overflows for a tiny tau
    top = jnp.max(jnp.where(valid, q_row, -jnp.inf))
    safe = jnp.where(jnp.isfinite(top), top, 0.0)
    soft = jax.nn.softmax(jnp.where(valid, (q_row - safe) / tau, -jnp.inf))
    return epsilon * (valid / jnp.sum(valid)) + (1.0 - epsilon) * soft


def boltzmann_action(
    key: jax.Array,
    q_row: jax.Array,
    temperature: jax.Array,
    epsilon: jax.Array = 0.0,
    valid: jax.Array | None = None,
) -> jax.Array:
    """An action drawn from `boltzmann_probs(q_row, temperature, epsilon, valid)`: soft
    Q-learning's behaviour policy.

    Returns:
      The chosen action, int32 scalar.
    """
    return sample_action(key, boltzmann_probs(q_row, temperature, epsilon, valid))


# ---------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class TD0Config:
    """Tabular TD(0) prediction of a given policy (Section 6.1; Example 6.2 uses alpha 0.1)."""

    alpha: float = 0.1
    """Constant step size in (0, 1]."""
    gamma: float | None = None
    """Discount; None uses the environment's `params.gamma`."""
    num_episodes: int = 100
    """Episodes per run."""
    max_steps_per_episode: int = 10_000
    """Step cap of one episode (a guard; the environment's time limit also applies)."""
    initial_value: float = 0.0
    """Initial value of every state (Example 6.2 uses 0.5)."""

    def __post_init__(self) -> None:
        check_step_size(self)
        check_episode_fields(self)


@dataclasses.dataclass(frozen=True)
class TDControlConfig:
    """Settings shared by the TD control methods (the defaults are Example 6.6's)."""

    algorithm: ClassVar[str] = ""

    alpha: float = 0.5
    """Step size in (0, 1] (constant unless `alpha_decay` > 0)."""
    epsilon: float = 0.1
    """Exploration rate of the epsilon-greedy behaviour policy, in [0, 1]."""
    gamma: float | None = None
    """Discount; None uses the environment's `params.gamma`."""
    num_episodes: int = 500
    """Episodes per run."""
    max_steps_per_episode: int = 100_000
    """Step cap of one episode (a guard; the environment's time limit also applies)."""
    initial_value: float = 0.0
    """Initial value of every action value."""
    alpha_decay: float = 0.0
    """`omega` in [0, 1]: the n-th update of a pair (s, a) steps by `alpha / n**omega`; 0 keeps
    `alpha` constant, (0.5, 1] meets the Robbins-Monro conditions, so the values converge in
    stochastic worlds (Section 2.5, eq. 2.7; Even-Dar & Mansour 2003 use 0.5 < omega < 1)."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_step_size(self)
        check_probability(self.epsilon, "epsilon", owner=owner)
        check_episode_fields(self)
        check_number(self.alpha_decay, "alpha_decay", owner=owner, low=0, high=1)


@dataclasses.dataclass(frozen=True)
class SarsaConfig(TDControlConfig):
    """SARSA: on-policy TD control (Section 6.4)."""

    algorithm: ClassVar[str] = "sarsa"


@dataclasses.dataclass(frozen=True)
class ExpectedSarsaConfig(TDControlConfig):
    """Expected SARSA with the epsilon-greedy target policy (Section 6.6)."""

    algorithm: ClassVar[str] = "expected_sarsa"


@dataclasses.dataclass(frozen=True)
class QLearningConfig(TDControlConfig):
    """Q-learning: off-policy TD control (Section 6.5)."""

    algorithm: ClassVar[str] = "q_learning"


@dataclasses.dataclass(frozen=True)
class DoubleQLearningConfig(TDControlConfig):
    """Double Q-learning, behaving epsilon-greedily on the sum of its two tables (Section 6.7)."""

    algorithm: ClassVar[str] = "double_q_learning"


@dataclasses.dataclass(frozen=True)
class SoftQLearningConfig(TDControlConfig):
    """Soft (maximum-entropy) Q-learning at temperature `tau`, the sampled form of
    `soft_value_iteration` (Haarnoja et al. 2017); its limit `tau -> 0` is Q-learning.

    It behaves by the epsilon-mixed Boltzmann policy of its values (`boltzmann_action`), so
    `epsilon` is the weight of the uniform choice mixed into the softmax.
    """

    algorithm: ClassVar[str] = "soft_q_learning"

    temperature: float = 1.0
    """`tau > 0`, finite: the weight of the entropy bonus (the same `tau` as
    `soft_value_iteration`'s `temperature`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _checked_temperature(self.temperature, type(self).__name__)


# ---------------------------------------------------------------------- drivers
#: The TD control methods, indexed by the traced `method` of the shared program.
_ALGORITHMS = ("sarsa", "expected_sarsa", "q_learning", "double_q_learning", "soft_q_learning")


@struct.dataclass
class _Tables:
    """The learner of `td_control`: two tables (only Double Q-learning uses the second) and,
    for a decaying step size, how often each entry was updated."""

    q: jax.Array
    """Action values `[2, S, A]`."""
    visits: jax.Array | None = None
    """Updates so far of each entry `[2, S, A]` (float32), or None for a constant step size."""


def _control_update(
    method: jax.Array,
    key: jax.Array,
    tables: _Tables,
    s_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    s_t: jax.Array,
    a_t: jax.Array,
    alpha: jax.Array,
    alpha_decay: jax.Array,
    epsilon: jax.Array,
    temperature: jax.Array,
    valid_t: jax.Array,
    *,
    soft: bool,
) -> _Tables:
    """One update of the learner `tables` by the method `_ALGORITHMS[method]` (traced).

    The methods differ only in their TD error (their target). SARSA, Expected SARSA,
    Q-learning and Double Q-learning are computed from the same rows and the method's is
    applied, so one compiled program serves them all; soft Q-learning (`soft`, static) is the
    log-sum-exp target alone. Only Double Q-learning uses the second table: a fair coin
    picks the table it updates. With a visit count (`tables.visits`) the n-th update of an
    entry steps by `alpha / n**alpha_decay`, else by `alpha`.
    """
    double = method == _ALGORITHMS.index("double_q_learning")
    i = jnp.where(double, (hash_bits(key, 1, salt=1)[0] >> 31).astype(jnp.int32), 0)
    q_upd, q_eval = tables.q[i], tables.q[jnp.where(double, 1 - i, i)]
    q_tm1, q_t = q_upd[s_tm1], q_upd[s_t]
    q_t_valid = jnp.where(valid_t, q_t, -jnp.inf)
    if soft:
        error = soft_q_learning_error(q_tm1, a_tm1, r_t, discount_t, q_t_valid, temperature)
    else:
        errors = jnp.stack(
            [
                sarsa_error(q_tm1, a_tm1, r_t, discount_t, q_t, a_t),
                expected_sarsa_error(
                    q_tm1, a_tm1, r_t, discount_t, q_t, epsilon_greedy_probs(q_t, epsilon, valid_t)
                ),
                q_learning_error(q_tm1, a_tm1, r_t, discount_t, q_t_valid),
                sarsa_error(
                    q_tm1, a_tm1, r_t, discount_t, q_eval[s_t], greedy_action(key, q_t, valid_t)
                ),
            ]
        )
        error = errors[method]
    if tables.visits is None:
        return _Tables(q=tables.q.at[i, s_tm1, a_tm1].add((alpha * error).astype(tables.q.dtype)))
    n = tables.visits[i, s_tm1, a_tm1] + 1.0
    return _Tables(
        q=tables.q.at[i, s_tm1, a_tm1].add(
            (alpha * n ** (-alpha_decay) * error).astype(tables.q.dtype)
        ),
        visits=tables.visits.at[i, s_tm1, a_tm1].set(n),
    )


def _control_run(
    key: jax.Array,
    params: Any,
    method: jax.Array,
    alpha: jax.Array,
    alpha_decay: jax.Array,
    epsilon: jax.Array,
    temperature: jax.Array,
    gamma: jax.Array,
    initial_value: jax.Array,
    valid: jax.Array,
    track: jax.Array | None,
    *,
    env: TabularEnvironment,
    num_episodes: int,
    max_steps: int,
    soft: bool,
    decay: bool,
) -> ControlResult:
    """One run of the TD control method `_ALGORITHMS[method]` (jittable; `method` is traced).

    Two static switches pick the variant of the program: `soft` (soft Q-learning: the
    log-sum-exp target and the Boltzmann behaviour) and `decay` (count visits for the step
    size `alpha / n**alpha_decay`). Within a variant every setting is traced, so the four
    classic methods share one compiled program per environment.
    """
    S, A = valid.shape
    double = method == _ALGORITHMS.index("double_q_learning")

    def policy(k, tables, s):
        q_s = tables.q[0, s] + jnp.where(double, tables.q[1, s], 0.0)
        if soft:
            return boltzmann_action(k, q_s, temperature, epsilon, valid[s])
        return epsilon_greedy_action(k, q_s, epsilon, valid[s])

    def update(k, tables, t, s_tm1, a_tm1, r_t, term_t, s_t, a_t):
        discount_t = gamma * (1.0 - jnp.asarray(term_t, jnp.float32))
        return _control_update(
            method, k, tables, s_tm1, a_tm1, r_t, discount_t, s_t, a_t, alpha, alpha_decay,
            epsilon, temperature, valid[s_t], soft=soft,
        )  # fmt: skip

    def episode(k, tables):
        return run_episode(
            k, env, params, tables, policy=policy, update=update, max_steps=max_steps,
            act_before_update=method == _ALGORITHMS.index("sarsa"),
        )  # fmt: skip

    def values(tables):
        return jnp.where(double, tables.q.mean(axis=0), tables.q[0])

    record = None if track is None else (lambda tables: values(tables)[track])
    tables = _Tables(
        q=jnp.full((2, S, A), initial_value, jnp.float32),
        visits=jnp.zeros((2, S, A), jnp.float32) if decay else None,
    )
    tables, stats, history = run_episodes(key, tables, episode, num_episodes, record)
    q = values(tables)
    return ControlResult(q=q, policy=greedy_policy(q, valid), episodes=stats, history=history)


#: The variants of `_control_run` by `(soft, decay)`: one object each, so that the compiled
#: programs (cached by `run_program` on the function) are reused from call to call.
_CONTROL_RUNS = {
    (soft, decay): functools.partial(_control_run, soft=soft, decay=decay)
    for soft in (False, True)
    for decay in (False, True)
}


def td_control(
    key: jax.Array,
    env: TabularEnvironment,
    config: TDControlConfig,
    *,
    params: Any = None,
    num_runs: int = 1,
    track_states: Any = None,
    action_mask: Any = None,
) -> ControlResult:
    """The TD control method of `config` (`SarsaConfig`, `ExpectedSarsaConfig`,
    `QLearningConfig`, `DoubleQLearningConfig` or `SoftQLearningConfig`; Sections 6.4-6.7,
    Haarnoja et al. 2017).

    Runs `num_runs` independent runs (vmapped) of `config.num_episodes` episodes each, from
    `env.reset`, behaving epsilon-greedily (greedy ties broken at random; soft Q-learning
    samples its epsilon-mixed Boltzmann policy instead, `boltzmann_action`). The five methods
    differ only in their target (`sarsa_error`, `expected_sarsa_error`, `q_learning_error`,
    `double_q_learning_error`, `soft_q_learning_error`). The first four share one compiled
    program per environment, episode count and step cap; soft Q-learning, and a decaying
    step size (`alpha_decay > 0`, which counts visits), compile variants of it. `alpha`,
    `alpha_decay`, `epsilon`, `temperature`, `gamma` and `initial_value` are traced, so
    sweeping them does not recompile.

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      config: the method and its settings.
      params: environment parameters (default `env.default_params`).
      num_runs: independent runs.
      track_states: optional state indices whose action values are recorded after every
        episode (`result.history [runs, episodes, K, A]`).
      action_mask: optional bool `[S, A]` of valid actions (default
        `env.valid_actions(params)` where the environment has it, else all).

    Returns:
      A `ControlResult`: `q [runs, S, A]`, greedy `policy [runs, S]`, `episodes` statistics
      `[runs, episodes]` (return = sum of rewards, length, first action, terminated).

    Raises:
      TypeError: `env` is not a `TabularEnvironment`, or `config` is not one method's config.
      ValueError: bad `num_runs`, `track_states` or `action_mask` (config fields are checked
        when the config is built).
    """
    who = config.algorithm if isinstance(config, TDControlConfig) else "td_control"
    if who not in _ALGORITHMS:
        raise TypeError(
            "td_control takes the config of one method, SarsaConfig, ExpectedSarsaConfig, "
            "QLearningConfig, DoubleQLearningConfig or SoftQLearningConfig; got "
            f"{type(config).__name__}."
        )
    env = check_env(env, who)
    params = resolve_params(env, params)
    shape = table_shape(env, params, who)
    valid = resolve_action_mask(env, params, shape, action_mask, who)
    track = check_track(track_states, shape[0], who)
    keys = jax.random.split(check_prng_key(key, who), check_num_runs(num_runs, who))
    variant = _CONTROL_RUNS[who == "soft_q_learning", config.alpha_decay > 0]
    return run_program(
        variant,
        env,
        config,
        keys,
        params,
        jnp.asarray(_ALGORITHMS.index(who), jnp.int32),
        jnp.asarray(config.alpha, jnp.float32),
        jnp.asarray(config.alpha_decay, jnp.float32),
        jnp.asarray(config.epsilon, jnp.float32),
        # (the other methods have no temperature; theirs is never used)
        jnp.asarray(getattr(config, "temperature", 1.0), jnp.float32),
        resolve_gamma(config.gamma, params, who),
        jnp.asarray(config.initial_value, jnp.float32),
        valid,
        track,
    )


def sarsa(
    key: jax.Array, env: TabularEnvironment, config: SarsaConfig | None = None, *,
    params: Any = None, num_runs: int = 1, track_states: Any = None, action_mask: Any = None,
) -> ControlResult:  # fmt: skip
    """SARSA, on-policy TD control (Section 6.4; Examples 6.5 and 6.6).

    The next action is chosen epsilon-greedily before the update and used in the target
    (`sarsa_update`), so SARSA learns the values of the policy it follows: on the cliff it
    takes the safe path.

    Args:
      config: a `SarsaConfig` (default `SarsaConfig()`).
      key, env, params, num_runs, track_states, action_mask: as for `td_control`.

    Returns:
      A `ControlResult` (see `td_control`).
    """
    config = check_config(config, SarsaConfig, "sarsa")
    return td_control(
        key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        action_mask=action_mask,
    )  # fmt: skip


def expected_sarsa(
    key: jax.Array, env: TabularEnvironment, config: ExpectedSarsaConfig | None = None, *,
    params: Any = None, num_runs: int = 1, track_states: Any = None, action_mask: Any = None,
) -> ControlResult:  # fmt: skip
    """Expected SARSA (Section 6.6; Figure 6.3).

    The target averages the next action values over the epsilon-greedy policy
    (`expected_sarsa_update`) instead of sampling one: the same fixed point as SARSA with
    less variance, so larger step sizes work.

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      config: an `ExpectedSarsaConfig` (default `ExpectedSarsaConfig()`).
      key, env, params, num_runs, track_states, action_mask: as for `td_control`.

    Returns:
      A `ControlResult` (see `td_control`).
    """
    config = check_config(config, ExpectedSarsaConfig, "expected_sarsa")
    return td_control(
        key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        action_mask=action_mask,
    )  # fmt: skip


def q_learning(
    key: jax.Array, env: TabularEnvironment, config: QLearningConfig | None = None, *,
    params: Any = None, num_runs: int = 1, track_states: Any = None, action_mask: Any = None,
) -> ControlResult:  # fmt: skip
    """Q-learning, off-policy TD control (Section 6.5; Example 6.6).

    The target is the greedy value of the next state (`q_learning_update`), so Q-learning
    learns the optimal values whatever epsilon-greedy behaviour it follows: on the cliff it
    learns the edge path and falls off now and then while exploring.

    Args:
      config: a `QLearningConfig` (default `QLearningConfig()`).
      key, env, params, num_runs, track_states, action_mask: as for `td_control`.

    Returns:
      A `ControlResult` (see `td_control`).
    """
    config = check_config(config, QLearningConfig, "q_learning")
    return td_control(
        key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        action_mask=action_mask,
    )  # fmt: skip


def double_q_learning(
    key: jax.Array, env: TabularEnvironment, config: DoubleQLearningConfig | None = None, *,
    params: Any = None, num_runs: int = 1, track_states: Any = None, action_mask: Any = None,
) -> ControlResult:  # fmt: skip
    """Double Q-learning (Section 6.7; Example 6.7, Figure 6.5).

    Two tables: a fair coin picks the one to update; it selects the greedy next action and
    the other values it (`double_q_learning_update`), which removes Q-learning's
    maximisation bias. The behaviour is epsilon-greedy on the sum of the tables, and the
    returned `q` is their mean.

    Args:
      config: a `DoubleQLearningConfig` (default `DoubleQLearningConfig()`).
      key, env, params, num_runs, track_states, action_mask: as for `td_control`.

    Returns:
      A `ControlResult` (see `td_control`).
    """
    config = check_config(config, DoubleQLearningConfig, "double_q_learning")
    return td_control(
        key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        action_mask=action_mask,
    )  # fmt: skip


def soft_q_learning(
    key: jax.Array, env: TabularEnvironment, config: SoftQLearningConfig | None = None, *,
    params: Any = None, num_runs: int = 1, track_states: Any = None, action_mask: Any = None,
) -> ControlResult:  # fmt: skip
    """Soft (maximum-entropy) Q-learning from samples (Haarnoja et al. 2017, Section 3.1;
    Ziebart 2010).

    The target is the soft value of the next state, `r + gamma * tau * log sum_a
    exp(Q(s', a) / tau)` (`soft_q_learning_update`, the log-sum-exp backup of
    `soft_value_iteration`), so with every pair visited infinitely often and step sizes that
    meet the Robbins-Monro conditions (`alpha_decay` in (0.5, 1]; a constant `alpha` suffices
    when rewards and transitions are deterministic) `q` converges to `soft_value_iteration`'s
    `q_values` at the same temperature and discount. It behaves by the epsilon-mixed
    Boltzmann policy of its values (`boltzmann_action`): the softmax policy `pi(a|s) =
    exp((Q(s, a) - V(s)) / tau)` with probability `1 - epsilon`, a uniform action otherwise.
    As `tau -> 0` the target tends to Q-learning's max (within `tau * log |A|`) and the
    behaviour to epsilon-greedy: soft Q-learning becomes Q-learning.

    Terminal states end the sum (`discount_t = 0`): their soft value is 0. (An exact MDP whose
    terminal states are absorbing with |A| actions gives them the entropy `tau * log |A|` at
    every step, so compare with `soft_value_iteration` on continuing tasks.)

    Args:
      config: a `SoftQLearningConfig` (default `SoftQLearningConfig()`, `tau = 1`).
      key, env, params, num_runs, track_states, action_mask: as for `td_control`.

    Returns:
      A `ControlResult` (see `td_control`); its `policy` is greedy in `q`, and the soft
      policy is `jax.nn.softmax(q / tau, axis=-1)`.

    Raises:
      TypeError, ValueError: as for `td_control`; `SoftQLearningConfig` refuses a temperature
        that is not a finite number > 0 (use `q_learning` for the limit 0).
    """
    config = check_config(config, SoftQLearningConfig, "soft_q_learning")
    return td_control(
        key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        action_mask=action_mask,
    )  # fmt: skip


# ---------------------------------------------------------------------- TD(0) prediction
def _td0_run(
    key, params, policy, alpha, gamma, initial_value, track, *, env, num_episodes, max_steps
) -> PredictionResult:
    S = policy.shape[0]

    def act(k, v, s):
        return sample_action(k, policy[s])

    def update(k, v, t, s_tm1, a_tm1, r_t, term_t, s_t, a_t):
        discount_t = gamma * (1.0 - jnp.asarray(term_t, jnp.float32))
        return td0_update(v, s_tm1, r_t, discount_t, s_t, alpha=alpha)

    def episode(k, v):
        return run_episode(k, env, params, v, policy=act, update=update, max_steps=max_steps)

    record = None if track is None else (lambda v: v[track])
    v = jnp.full((S,), initial_value, jnp.float32)
    v, stats, history = run_episodes(key, v, episode, num_episodes, record)
    return PredictionResult(v=v, episodes=stats, history=history)


def td0_prediction(
    key: jax.Array,
    env: TabularEnvironment,
    policy: Any,
    config: TD0Config | None = None,
    *,
    params: Any = None,
    num_runs: int = 1,
    track_states: Any = None,
) -> PredictionResult:
    """Tabular TD(0) prediction of `policy`'s state values (Section 6.1; Example 6.2).

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      policy: probabilities `[S, A]`, or one action per state `[S]`.
      config: settings (default `TD0Config()`).
      params: environment parameters (default `env.default_params`).
      num_runs: independent runs (vmapped).
      track_states: optional state indices whose values are recorded after every episode
        (`result.history [runs, episodes, K]`).

    Returns:
      A `PredictionResult`: `v [runs, S]` and per-episode statistics.

    Raises:
      TypeError: `env` is not a `TabularEnvironment` or `config` is not a `TD0Config`.
      ValueError: a policy of the wrong shape or not a distribution, bad `num_runs` or
        `track_states`.
    """
    who = "td0_prediction"
    config = check_config(config, TD0Config, who)
    env = check_env(env, who)
    params = resolve_params(env, params)
    shape = table_shape(env, params, who)
    probs = check_policy(policy, shape, "policy", who)
    track = check_track(track_states, shape[0], who)
    keys = jax.random.split(check_prng_key(key, who), check_num_runs(num_runs, who))
    return run_program(
        _td0_run,
        env,
        config,
        keys,
        params,
        probs,
        jnp.asarray(config.alpha, jnp.float32),
        resolve_gamma(config.gamma, params, who),
        jnp.asarray(config.initial_value, jnp.float32),
        track,
    )
