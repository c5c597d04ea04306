"""Temporal-difference learning on tables (Sutton & Barto, Chapter 6).

Two layers, in the style of rlax:

- one-transition math with `_tm1`/`_t` names: the TD errors (`td_error`, `sarsa_error`,
  `expected_sarsa_error`, `q_learning_error`, `double_q_learning_error`) on rows of values,
  and the table updates built on them (`td0_update`, `sarsa_update`, `expected_sarsa_update`,
  `q_learning_update`, `double_q_learning_update`), all pure and jittable;
- drivers that run whole experiments: `td0_prediction`, `sarsa`, `expected_sarsa`,
  `q_learning` and `double_q_learning` each run `num_runs` independent runs (vmapped) of
  `config.num_episodes` episodes (scanned) and return per-run tables and per-episode
  statistics.

The four control methods share one driver, `td_control`, and differ only in their update (their
target).
Step size, exploration rate, discount and initial value are traced arguments of one
compiled program per method and environment, so sweeping `alpha` does not recompile.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from bellmax.core.checks import check_probability
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
    "TD0Config",
    "TDControlConfig",
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
    "td0_prediction",
    "td0_update",
    "td_control",
    "td_error",
]


# ---------------------------------------------------------------------- TD errors
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
    return v.at[s_tm1].add(alpha * td_error(v[s_tm1], r_t, discount_t, v[s_t]))


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
    return q.at[s_tm1, a_tm1].add(alpha * err)


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
    return q.at[s_tm1, a_tm1].add(alpha * err)


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
    return q.at[s_tm1, a_tm1].add(alpha * err)


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
    return q_pair.at[i, s_tm1, a_tm1].add(alpha * err)


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
    """Constant step size in (0, 1]."""
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

    def __post_init__(self) -> None:
        check_step_size(self)
        check_probability(self.epsilon, "epsilon", owner=type(self).__name__)
        check_episode_fields(self)


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


# ---------------------------------------------------------------------- drivers
#: The TD control methods, indexed by the traced `method` of the shared program.
_ALGORITHMS = ("sarsa", "expected_sarsa", "q_learning", "double_q_learning")


def _control_update(
    method: jax.Array,
    key: jax.Array,
    tables: jax.Array,
    s_tm1: jax.Array,
    a_tm1: jax.Array,
    r_t: jax.Array,
    discount_t: jax.Array,
    s_t: jax.Array,
    a_t: jax.Array,
    alpha: jax.Array,
    epsilon: jax.Array,
    valid_t: jax.Array,
) -> jax.Array:
    """One update of `tables [2, S, A]` by the method `_ALGORITHMS[method]` (traced).

    The methods differ only in their TD error (their target); all four are computed from the
    same rows and the method's is applied, so one compiled program serves them all. Only
    Double Q-learning uses the second table: a fair coin picks the table it updates.
    """
    double = method == _ALGORITHMS.index("double_q_learning")
    i = jnp.where(double, (hash_bits(key, 1, salt=1)[0] >> 31).astype(jnp.int32), 0)
    q_upd, q_eval = tables[i], tables[jnp.where(double, 1 - i, i)]
    q_tm1, q_t = q_upd[s_tm1], q_upd[s_t]
    errors = jnp.stack(
        [
            sarsa_error(q_tm1, a_tm1, r_t, discount_t, q_t, a_t),
            expected_sarsa_error(
                q_tm1, a_tm1, r_t, discount_t, q_t, epsilon_greedy_probs(q_t, epsilon, valid_t)
            ),
            q_learning_error(q_tm1, a_tm1, r_t, discount_t, jnp.where(valid_t, q_t, -jnp.inf)),
            sarsa_error(
                q_tm1, a_tm1, r_t, discount_t, q_eval[s_t], greedy_action(key, q_t, valid_t)
            ),
        ]
    )
    return tables.at[i, s_tm1, a_tm1].add(alpha * errors[method])


def _control_run(
    key: jax.Array,
    params: Any,
    method: jax.Array,
    alpha: jax.Array,
    epsilon: jax.Array,
    gamma: jax.Array,
    initial_value: jax.Array,
    valid: jax.Array,
    track: jax.Array | None,
    *,
    env: TabularEnvironment,
    num_episodes: int,
    max_steps: int,
) -> ControlResult:
    """One run of the TD control method `_ALGORITHMS[method]` (jittable; `method` is traced, so
    the four methods share one compiled program per environment)."""
    S, A = valid.shape
    double = method == _ALGORITHMS.index("double_q_learning")

    def policy(k, tables, s):
        q_s = tables[0, s] + jnp.where(double, tables[1, s], 0.0)
        return epsilon_greedy_action(k, q_s, epsilon, valid[s])

    def update(k, tables, t, s_tm1, a_tm1, r_t, term_t, s_t, a_t):
        discount_t = gamma * (1.0 - jnp.asarray(term_t, jnp.float32))
        return _control_update(
            method, k, tables, s_tm1, a_tm1, r_t, discount_t, s_t, a_t, alpha, epsilon,
            valid[s_t],
        )  # fmt: skip

    def episode(k, tables):
        return run_episode(
            k, env, params, tables, policy=policy, update=update, max_steps=max_steps,
            act_before_update=method == _ALGORITHMS.index("sarsa"),
        )  # fmt: skip

    def values(tables):
        return jnp.where(double, tables.mean(axis=0), tables[0])

    record = None if track is None else (lambda tables: values(tables)[track])
    tables = jnp.full((2, S, A), initial_value, jnp.float32)
    tables, stats, history = run_episodes(key, tables, episode, num_episodes, record)
    q = values(tables)
    return ControlResult(q=q, policy=greedy_policy(q, valid), episodes=stats, history=history)


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
    `QLearningConfig` or `DoubleQLearningConfig`; Sections 6.4-6.7).

    Runs `num_runs` independent runs (vmapped) of `config.num_episodes` episodes each, from
    `env.reset`, behaving epsilon-greedily (greedy ties broken at random). The four methods
    differ only in their target (`sarsa_error`, `expected_sarsa_error`, `q_learning_error`,
    `double_q_learning_error`) and share one compiled program per
    environment, episode count and step cap; `alpha`, `epsilon`, `gamma` and
    `initial_value` are traced, so sweeping them does not recompile.

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
            f"QLearningConfig or DoubleQLearningConfig; got {type(config).__name__}."
        )
    env = check_env(env, who)
    params = resolve_params(env, params)
    shape = table_shape(env, params, who)
    valid = resolve_action_mask(env, params, shape, action_mask, who)
    track = check_track(track_states, shape[0], who)
    keys = jax.random.split(key, check_num_runs(num_runs, who))
    return run_program(
        _control_run,
        env,
        config,
        keys,
        params,
        jnp.asarray(_ALGORITHMS.index(who), jnp.int32),
        jnp.asarray(config.alpha, jnp.float32),
        jnp.asarray(config.epsilon, jnp.float32),
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
    keys = jax.random.split(key, check_num_runs(num_runs, who))
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
