"""Monte Carlo prediction and control on tables (Sutton & Barto, Chapter 5; constant-alpha MC of
Section 6.2).

Every method here runs whole episodes with the shared episode driver, records each episode
into a fixed-size buffer (`config.max_steps_per_episode` steps), then walks it backwards
(`G <- gamma * G + R_{t+1}`, `W <- W * pi(A_t|S_t) / b(A_t|S_t)`) and updates its
estimates; first visits are found by comparing each step with the earlier occurrences of
its state (a scatter-min of the step numbers). Episodes cut by the step cap before reaching a
terminal state are not learned from (their returns are incomplete) and are flagged in
`result.episodes.terminated`.

- `mc_prediction`: first- or every-visit prediction of a policy's state values, with sample
  averages (Section 5.1) or a constant step size (constant-alpha MC, eq. 6.1).
- `off_policy_mc_prediction`: ordinary and weighted importance sampling from the same
  episodes (Sections 5.5-5.6; Example 5.4, Figure 5.3).
- `mc_exploring_starts`: Monte Carlo ES (Section 5.3; Figure 5.2).
- `on_policy_mc_control`: first-visit MC control of epsilon-soft policies (Section 5.4).

All four run `num_runs` independent runs (vmapped) of `config.num_episodes` episodes
(scanned). The two prediction methods share one compiled program per environment, episode
count and step cap, and so do the two control methods; step sizes, exploration, discount and
the first/every-visit switch are traced.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_bool, check_prng_key, check_probability
from bellmax.core.display import summary_repr
from bellmax.envs.tabular import TabularEnvironment
from bellmax.tabular.episodes import (
    ControlResult,
    EpisodeStats,
    PredictionResult,
    action_mask,
    check_config,
    check_env,
    check_episode_fields,
    check_num_runs,
    check_policy,
    check_step_size,
    check_track,
    epsilon_greedy_action,
    greedy_policy,
    hash_uniform,
    random_action,
    resolve_gamma,
    resolve_params,
    run_episode,
    run_episodes,
    run_program,
    sample_action,
    select_tree,
    table_shape,
)

__all__ = [
    "MCExploringStartsConfig",
    "MCPredictionConfig",
    "OffPolicyMCConfig",
    "OffPolicyResult",
    "OnPolicyMCConfig",
    "mc_exploring_starts",
    "mc_prediction",
    "mc_return_updates",
    "off_policy_mc_prediction",
    "on_policy_mc_control",
]


# ---------------------------------------------------------------------- configs
def _check_common(config: Any) -> None:
    check_episode_fields(config)
    check_bool(config.first_visit, "first_visit", owner=type(config).__name__)


@dataclasses.dataclass(frozen=True)
class _AveragingConfig:
    """The fields of the methods that average returns: `MCPredictionConfig` (of states) and
    `MCExploringStartsConfig` (of state-action pairs)."""

    first_visit: bool = True
    """Average the returns after first visits only (else after every visit)."""
    alpha: float | None = None
    """Constant step size in (0, 1]; None averages the returns (sample averages, the book's
    choice)."""
    gamma: float | None = None
    """Discount; None uses the environment's `params.gamma`."""
    num_episodes: int = 10_000
    """Episodes per run."""
    max_steps_per_episode: int = 100
    """Episode buffer length `T`: longer episodes are cut and not learned from; the backward
    pass costs `O(T^2)` per episode, so keep it just above the longest episode (Blackjack: 16)."""
    initial_value: float = 0.0
    """Value of a state (of a pair, for control) before its first update (Example 6.2 uses
    0.5)."""

    def __post_init__(self) -> None:
        check_step_size(self, allow_none=True)
        _check_common(self)


@dataclasses.dataclass(frozen=True)
class MCPredictionConfig(_AveragingConfig):
    """Monte Carlo prediction of a given policy (Section 5.1; constant-alpha MC, eq. 6.1)."""


@dataclasses.dataclass(frozen=True)
class OffPolicyMCConfig:
    """Off-policy Monte Carlo prediction by importance sampling (Sections 5.5-5.6)."""

    first_visit: bool = True
    """Use first visits only (else every visit)."""
    gamma: float | None = None
    """Discount; None uses the environment's `params.gamma`."""
    num_episodes: int = 10_000
    """Episodes per run (Figure 5.3: 10,000)."""
    max_steps_per_episode: int = 100
    """Episode buffer length `T`: longer episodes are cut and not learned from; the backward
    pass costs `O(T^2)` per episode, so keep it just above the longest episode (Blackjack: 16)."""
    initial_value: float = 0.0
    """Estimate of a state before its first return."""

    def __post_init__(self) -> None:
        _check_common(self)


@dataclasses.dataclass(frozen=True)
class MCExploringStartsConfig(_AveragingConfig):
    """Monte Carlo control with exploring starts (Section 5.3; Figure 5.2)."""

    num_episodes: int = 500_000
    """Episodes per run (Figure 5.2: 500,000)."""


@dataclasses.dataclass(frozen=True)
class OnPolicyMCConfig:
    """On-policy first-visit Monte Carlo control of epsilon-soft policies (Section 5.4)."""

    epsilon: float = 0.1
    """Exploration rate of the epsilon-greedy (epsilon-soft) policy, in [0, 1]."""
    first_visit: bool = True
    """Average the returns after first visits of a pair only (else every visit)."""
    alpha: float | None = None
    """Constant step size in (0, 1]; None averages the returns."""
    gamma: float | None = None
    """Discount; None uses the environment's `params.gamma`."""
    num_episodes: int = 100_000
    """Episodes per run."""
    max_steps_per_episode: int = 100
    """Episode buffer length `T`: longer episodes are cut and not learned from; the backward
    pass costs `O(T^2)` per episode, so keep it just above the longest episode (Blackjack: 16)."""
    initial_value: float = 0.0
    """Action value of a pair before its first return."""

    def __post_init__(self) -> None:
        check_probability(self.epsilon, "epsilon", owner=type(self).__name__)
        check_step_size(self, allow_none=True)
        _check_common(self)


# ---------------------------------------------------------------------- the backward pass
#: Rows of the estimate table `[5, N]` every Monte Carlo method keeps.
_COUNT, _WEIGHT, _ORDINARY, _WEIGHTED, _ALPHA = range(5)


def _initial_estimates(num_entries: int, initial_value: jax.Array) -> jax.Array:
    init = jnp.full((5, num_entries), initial_value, jnp.float32)
    return init.at[_COUNT].set(0.0).at[_WEIGHT].set(0.0)


def mc_return_updates(
    estimates: jax.Array,
    entry: jax.Array,
    reward: jax.Array,
    ratio: jax.Array,
    length: jax.Array,
    gamma: jax.Array,
    alpha: jax.Array,
    every_visit: jax.Array,
) -> jax.Array:
    """Learn from one recorded episode (Sections 5.1-5.6 and eq. 6.1; jittable).

    Every step gets its return `G_t = sum_{k >= t} gamma^(k-t) R_{k+1}` (the backward
    recursion `G <- gamma * G + R_{t+1}` written as one masked `[T, T]` sum, which is faster
    than a loop for the short buffers of tabular tasks) and its importance weight
    `W_t = prod_{k >= t} ratio[k]`; a step counts when it is the first visit of its entry in
    the episode (no earlier step has that entry), or always for every-visit MC. The work is
    `O(T^2)` for a buffer of `T` steps. Each entry then takes the returns of its counted steps:

    - visit count `N += n` and cumulative weight `C += sum W`;
    - ordinary importance sampling, the running mean of `W * G` over visits (eq. 5.5; with
      `ratio = 1` the sample average of the returns, Section 5.1);
    - weighted importance sampling, `V <- (C V + sum W G) / (C + sum W)` (eq. 5.6, the same
      value as the incremental form of Section 5.6);
    - the constant-`alpha` estimate `V <- V + alpha * (G - V)` applied once per counted step,
      latest step first (as the book's backward loop does), in closed form.

    Args:
      estimates: `[5, N]` rows visit count, cumulative weight `C`, ordinary-IS estimate,
        weighted-IS estimate, constant-`alpha` estimate.
      entry: `[T]` table entry of each step (a state, or `s * A + a` for action values).
      reward: `[T]` reward `R_{t+1}` after each step.
      ratio: `[T]` importance ratio `pi(A_t|S_t) / b(A_t|S_t)` of each step (1 on-policy).
      length: number of valid steps (0 learns nothing).
      gamma: discount.
      alpha: constant step size (for the constant-`alpha` row).
      every_visit: bool, every-visit (else first-visit) updates.

    Returns:
      The updated `[5, N]` estimates.
    """
    T, N = entry.shape[0], estimates.shape[1]
    steps = jnp.arange(T, dtype=jnp.int32)
    in_episode = steps < length
    entry = jnp.where(in_episode, entry, N)  # steps past the end land nowhere
    # [t, k]: step k is at or after step t (and in the episode)
    ahead = (steps[None, :] >= steps[:, None]) & in_episode[None, :]
    lag = jnp.maximum(steps[None, :] - steps[:, None], 0)
    discount = (gamma ** steps.astype(jnp.float32))[lag]  # gamma^(k-t), T powers only
    G = jnp.sum(jnp.where(ahead, discount * reward[None, :], 0.0), axis=1)
    log_ratio = jnp.log(jnp.where(in_episode, ratio, 1.0))
    W = jnp.exp(jnp.sum(jnp.where(ahead, log_ratio[None, :], 0.0), axis=1))
    # [t, u]: step u is an earlier visit of step t's entry. First visits have none; for
    # every-visit MC the number of earlier counted visits orders the constant-alpha updates.
    earlier = (entry[None, :] == entry[:, None]) & (steps[None, :] < steps[:, None])
    counted = in_episode & (every_visit | ~jnp.any(earlier, axis=1))
    rank = jnp.sum(earlier & counted[None, :], axis=1)
    m = counted.astype(jnp.float32)
    decay = 1.0 - alpha
    contrib = jnp.stack([m, m * W, m * W * G, m * alpha * decay**rank * G]).astype(jnp.float32)
    sums = jnp.zeros((4, N), jnp.float32).at[:, entry].add(contrib, mode="drop")
    n, sum_w, sum_wg, sum_alpha = sums

    count, weight, ordinary, weighted, const = estimates
    new_count = count + n
    new_weight = weight + sum_w
    # The incremental forms (Section 2.4), not `(count * V + sum) / new_count`: that product
    # loses the mean's low bits once a count is large, and once a float32 count stops growing
    # (2**24 visits of one entry) it added each return without taking the old share out, so
    # the estimate climbed without bound. Past 2**24 each return now moves the estimate
    # towards it by 2**-24 of the gap (about one float32 rounding step): it stays between
    # the returns, as precise as float32 allows.
    ordinary = jnp.where(
        n > 0, ordinary + (sum_wg - n * ordinary) / jnp.maximum(new_count, 1.0), ordinary
    )
    safe = jnp.where(new_weight > 0, new_weight, 1.0)
    weighted = jnp.where(sum_w > 0, weighted + (sum_wg - sum_w * weighted) / safe, weighted)
    const = decay**n * const + sum_alpha
    return jnp.stack([new_count, new_weight, ordinary, weighted, const])


@struct.dataclass
class _Learner:
    estimates: jax.Array
    """`[5, N]` estimates (see `mc_return_updates`)."""
    buffer: jax.Array
    """`[3, T]` the episode: entry index (stored as float, exact below 2**24), reward, ratio."""


#: The episode buffer stores table entries as float32, exact below this count.
_MAX_ENTRIES = 2**24


def _check_entries(num_entries: int, who: str) -> None:
    if num_entries >= _MAX_ENTRIES:
        raise ValueError(
            f"{who}: {num_entries} table entries are more than the {_MAX_ENTRIES} the episode "
            "buffer can index; Monte Carlo tables are meant for small tabular worlds."
        )


def _record(learner: _Learner, t: jax.Array, entry: jax.Array, r_t, ratio) -> _Learner:
    step = jnp.stack([entry.astype(jnp.float32), jnp.asarray(r_t, jnp.float32), ratio])
    return learner.replace(buffer=learner.buffer.at[:, t].set(step))


def _mc_episode(
    key, learner: _Learner, *, gamma, alpha, every_visit, **driver
) -> tuple[_Learner, EpisodeStats]:
    """One episode through the shared driver, then the backward pass (complete episodes only)."""
    learner, stats = run_episode(key, learner=learner, **driver)
    length = jnp.where(stats.terminated, stats.length, 0)
    buf = learner.buffer
    estimates = mc_return_updates(
        learner.estimates, buf[0].astype(jnp.int32), buf[1], buf[2], length, gamma, alpha,
        every_visit,
    )  # fmt: skip
    return learner.replace(estimates=estimates), stats


# ---------------------------------------------------------------------- prediction
@struct.dataclass
class OffPolicyResult:
    """Ordinary and weighted importance-sampling estimates from the same episodes."""

    __repr__ = summary_repr

    v_ordinary: jax.Array
    """Ordinary importance sampling `[runs, S]` (eq. 5.5; states never visited: initial)."""
    v_weighted: jax.Array
    """Weighted importance sampling `[runs, S]` (eq. 5.6)."""
    episodes: EpisodeStats
    """Per-episode statistics, each `[runs, episodes]` (of the behaviour policy)."""
    history_ordinary: jax.Array | None = None
    """Ordinary estimates of the tracked states after each episode `[runs, episodes, K]`."""
    history_weighted: jax.Array | None = None
    """Weighted estimates of the tracked states after each episode `[runs, episodes, K]`."""


def _prediction_run(
    key, params, target, behaviour, alpha, gamma, initial_value, every_visit, start_state,
    track, *, env: TabularEnvironment, num_episodes: int, max_steps: int,
):  # fmt: skip
    S = target.shape[0]

    def act(k, learner, s):
        return sample_action(k, behaviour[s])

    def update(k, learner, t, s_tm1, a_tm1, r_t, term_t, s_t, a_t):
        return _record(learner, t, s_tm1, r_t, target[s_tm1, a_tm1] / behaviour[s_tm1, a_tm1])

    def start(k):
        fixed = env.state_from_index(jnp.maximum(start_state, 0))
        return select_tree(start_state >= 0, fixed, env.reset(k, params)[1])

    episode = partial(
        _mc_episode, gamma=gamma, alpha=alpha, every_visit=every_visit, env=env,
        params=params, policy=act, update=update, max_steps=max_steps, start=start,
    )  # fmt: skip
    record = None
    if track is not None:
        rows = jnp.asarray([_ORDINARY, _WEIGHTED, _ALPHA])

        def record(learner):
            return learner.estimates[rows][:, track]

    learner = _Learner(
        estimates=_initial_estimates(S, initial_value), buffer=jnp.zeros((3, max_steps))
    )
    learner, stats, history = run_episodes(key, learner, episode, num_episodes, record)
    return learner.estimates[_ORDINARY:], stats, history


def _check_start(start_state: Any, num_states: int, who: str) -> jax.Array:
    if start_state is None:
        return jnp.asarray(-1, jnp.int32)
    s = np.asarray(start_state)
    if s.shape != () or s != np.floor(s) or not 0 <= int(s) < num_states:
        raise ValueError(
            f"{who}: start_state must be one state index in 0..{num_states - 1}, got "
            f"{start_state!r}."
        )
    return jnp.asarray(int(s), jnp.int32)


def _predict(
    who: str, key: jax.Array, env: Any, target: jax.Array, behaviour: jax.Array, config: Any, *,
    params: Any, num_runs: Any, track_states: Any, start_state: Any,
):  # fmt: skip
    """Check the arguments of a prediction method and run it (`_prediction_run`)."""
    alpha = getattr(config, "alpha", None)  # None: sample averages (the ordinary row)
    env = check_env(env, who)
    params = resolve_params(env, params)
    shape = table_shape(env, params, who)
    _check_entries(shape[0], who)
    track = check_track(track_states, shape[0], who)
    start = _check_start(start_state, shape[0], who)
    keys = jax.random.split(check_prng_key(key, who), check_num_runs(num_runs, who))
    return run_program(
        _prediction_run,
        env,
        config,
        keys,
        params,
        target,
        behaviour,
        jnp.asarray(1.0 if alpha is None else alpha, jnp.float32),
        resolve_gamma(config.gamma, params, who),
        jnp.asarray(config.initial_value, jnp.float32),
        jnp.asarray(not config.first_visit),
        start,
        track,
    )


def mc_prediction(
    key: jax.Array,
    env: TabularEnvironment,
    policy: Any,
    config: MCPredictionConfig | None = None,
    *,
    params: Any = None,
    num_runs: int = 1,
    track_states: Any = None,
    start_state: Any = None,
) -> PredictionResult:
    """First- or every-visit Monte Carlo prediction of `policy`'s state values (Section 5.1;
    constant-alpha MC, Section 6.2, when `config.alpha` is set).

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      policy: probabilities `[S, A]`, or one action per state `[S]`.
      config: settings (default `MCPredictionConfig()`).
      params: environment parameters (default `env.default_params`).
      num_runs: independent runs (vmapped).
      track_states: optional state indices whose values are recorded after every episode
        (`result.history [runs, episodes, K]`).
      start_state: optional state index every episode starts from (else `env.reset`).

    Returns:
      A `PredictionResult`: `v [runs, S]` and per-episode statistics.

    Raises:
      TypeError: `env` is not a `TabularEnvironment`, or `config` is not an
        `MCPredictionConfig`.
      ValueError: a bad policy, `num_runs`, `track_states` or `start_state`.
    """
    who = "mc_prediction"
    config = check_config(config, MCPredictionConfig, who)
    env = check_env(env, who)
    probs = check_policy(policy, table_shape(env, resolve_params(env, params), who), "policy", who)
    estimates, stats, history = _predict(
        who, key, env, probs, probs, config, params=params, num_runs=num_runs,
        track_states=track_states, start_state=start_state,
    )  # fmt: skip
    row = 0 if config.alpha is None else 2  # rows ordinary (= sample average), weighted, alpha
    return PredictionResult(
        v=estimates[:, row],
        episodes=stats,
        history=None if history is None else history[:, :, row],
    )


def off_policy_mc_prediction(
    key: jax.Array,
    env: TabularEnvironment,
    target_policy: Any,
    behaviour_policy: Any,
    config: OffPolicyMCConfig | None = None,
    *,
    params: Any = None,
    num_runs: int = 1,
    track_states: Any = None,
    start_state: Any = None,
) -> OffPolicyResult:
    """Off-policy MC prediction of `target_policy` from episodes of `behaviour_policy`, by
    ordinary and weighted importance sampling at once (Sections 5.5-5.6; Example 5.4).

    Both estimators read the same episodes, as in Figure 5.3; the weighted one uses the
    incremental update of Section 5.6 (`C <- C + W`, `V <- V + W / C * (G - V)`).

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      target_policy: the policy evaluated, probabilities `[S, A]` or actions `[S]`.
      behaviour_policy: the policy that acts, `[S, A]` or `[S]`; it must give positive
        probability to every action the target policy may take (coverage).
      config: settings (default `OffPolicyMCConfig()`).
      params: environment parameters (default `env.default_params`).
      num_runs: independent runs (vmapped).
      track_states: optional state indices whose estimates are recorded after every episode.
      start_state: optional state index every episode starts from (Example 5.4 starts every
        episode in one state), else `env.reset`.

    Returns:
      An `OffPolicyResult` with `v_ordinary` and `v_weighted` `[runs, S]`.

    Raises:
      TypeError: `env` is not a `TabularEnvironment` or `config` is not an `OffPolicyMCConfig`.
      ValueError: bad policies (including a behaviour policy that does not cover the target),
        `num_runs`, `track_states` or `start_state`.
    """
    who = "off_policy_mc_prediction"
    config = check_config(config, OffPolicyMCConfig, who)
    env = check_env(env, who)
    shape = table_shape(env, resolve_params(env, params), who)
    target = check_policy(target_policy, shape, "target_policy", who)
    behaviour = check_policy(behaviour_policy, shape, "behaviour_policy", who)
    uncovered = np.argwhere((np.asarray(target) > 0) & (np.asarray(behaviour) <= 0))
    if uncovered.size:
        s, a = (int(v) for v in uncovered[0])
        raise ValueError(
            f"{who}: the behaviour policy never takes action {a} in state {s}, which the "
            "target policy may take; importance sampling needs coverage (Section 5.5): give "
            "it positive probability in the behaviour policy."
        )
    estimates, stats, history = _predict(
        who, key, env, target, behaviour, config, params=params, num_runs=num_runs,
        track_states=track_states, start_state=start_state,
    )  # fmt: skip
    return OffPolicyResult(
        v_ordinary=estimates[:, 0],
        v_weighted=estimates[:, 1],
        episodes=stats,
        history_ordinary=None if history is None else history[:, :, 0],
        history_weighted=None if history is None else history[:, :, 1],
    )


# ---------------------------------------------------------------------- control
def _control_run(
    key, params, exploring, epsilon, alpha, use_alpha, gamma, initial_value, every_visit,
    valid, start_states, track, *, env: TabularEnvironment, num_episodes: int, max_steps: int,
):  # fmt: skip
    S, A = valid.shape

    def q_row(learner, s):
        q = jnp.where(use_alpha, learner.estimates[_ALPHA], learner.estimates[_ORDINARY])
        return q.reshape(S, A)[s]

    def act(k, learner, s):
        return epsilon_greedy_action(k, q_row(learner, s), epsilon, valid[s])

    def update(k, learner, t, s_tm1, a_tm1, r_t, term_t, s_t, a_t):
        return _record(learner, t, s_tm1 * A + a_tm1, r_t, jnp.asarray(1.0, jnp.float32))

    def start(k):
        u = hash_uniform(k, 1, salt=7)[0]
        i = jnp.minimum((u * start_states.shape[0]).astype(jnp.int32), start_states.shape[0] - 1)
        chosen = env.state_from_index(start_states[i])
        return select_tree(exploring, chosen, env.reset(k, params)[1])

    def episode(k, learner):
        def first(k2, s):  # exploring starts: a random first action; else the policy's
            return jnp.where(exploring, random_action(k2, A, valid[s]), act(k2, learner, s))

        return _mc_episode(
            k, learner, gamma=gamma, alpha=alpha, every_visit=every_visit, env=env,
            params=params, policy=act, update=update, max_steps=max_steps, start=start,
            first_action=first,
        )  # fmt: skip

    def values(learner):
        q = jnp.where(use_alpha, learner.estimates[_ALPHA], learner.estimates[_ORDINARY])
        return q.reshape(S, A)

    record = None if track is None else (lambda learner: values(learner)[track])
    learner = _Learner(
        estimates=_initial_estimates(S * A, initial_value), buffer=jnp.zeros((3, max_steps))
    )
    learner, stats, history = run_episodes(key, learner, episode, num_episodes, record)
    q = values(learner)
    return ControlResult(q=q, policy=greedy_policy(q, valid), episodes=stats, history=history)


def _check_start_states(start_states: Any, env: Any, params: Any, S: int, who: str) -> np.ndarray:
    """The states exploring starts draw from: `start_states`, else the non-terminal ones."""
    if start_states is None:
        terminal = env.tabular_mdp(params).terminal
        terminal = np.zeros(S, bool) if terminal is None else np.asarray(terminal, bool)
        return np.flatnonzero(~terminal)
    starts = np.atleast_1d(np.asarray(start_states))
    if (
        starts.ndim != 1
        or starts.size == 0
        or not np.all(np.mod(starts, 1) == 0)
        or np.any((starts < 0) | (starts >= S))
    ):
        raise ValueError(
            f"{who}: start_states must be a non-empty list of state indices in 0..{S - 1}, "
            f"got {start_states!r}."
        )
    return starts


def _mc_control(
    who: str, key: jax.Array, env: Any, config: Any, *, params: Any, num_runs: Any,
    track_states: Any, mask: Any, start_states: Any,
):  # fmt: skip
    """Check the arguments of a control method and run it (`_control_run`): exploring starts
    for an `MCExploringStartsConfig`, else epsilon-soft from `env.reset`."""
    exploring = isinstance(config, MCExploringStartsConfig)
    env = check_env(env, who)
    params = resolve_params(env, params)
    shape = table_shape(env, params, who)
    _check_entries(shape[0] * shape[1], who)
    valid = action_mask(env, params, shape, mask, who)
    track = check_track(track_states, shape[0], who)
    # (computed for both methods so that they share one program)
    starts = _check_start_states(start_states, env, params, shape[0], who)
    keys = jax.random.split(check_prng_key(key, who), check_num_runs(num_runs, who))
    alpha = 1.0 if config.alpha is None else config.alpha
    return run_program(
        _control_run,
        env,
        config,
        keys,
        params,
        jnp.asarray(exploring),
        jnp.asarray(getattr(config, "epsilon", 0.0), jnp.float32),
        jnp.asarray(alpha, jnp.float32),
        jnp.asarray(config.alpha is not None),
        resolve_gamma(config.gamma, params, who),
        jnp.asarray(config.initial_value, jnp.float32),
        jnp.asarray(not config.first_visit),
        valid,
        jnp.asarray(starts, jnp.int32),
        track,
    )


def mc_exploring_starts(
    key: jax.Array,
    env: TabularEnvironment,
    config: MCExploringStartsConfig | None = None,
    *,
    params: Any = None,
    num_runs: int = 1,
    track_states: Any = None,
    action_mask: Any = None,
    start_states: Any = None,
) -> ControlResult:
    """Monte Carlo control with exploring starts, MC ES (Section 5.3; Figure 5.2).

    Every episode starts in a uniformly random state of `start_states`
    (`env.state_from_index`) with a uniformly random valid first action, then follows the
    greedy policy of the current action values (ties broken at random); the values are
    sample averages of the returns (or constant-`alpha` estimates).

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      config: settings (default `MCExploringStartsConfig()`).
      params: environment parameters (default `env.default_params`).
      num_runs: independent runs (vmapped).
      track_states: optional state indices whose action values are recorded after every
        episode (`result.history [runs, episodes, K, A]`).
      action_mask: optional bool `[S, A]` of valid actions (default `env.valid_actions`
        where the environment has it, else all).
      start_states: state indices to start from (default: the non-terminal states of
        `env.tabular_mdp(params)`).

    Returns:
      A `ControlResult`.

    Raises:
      TypeError: `env` is not a `TabularEnvironment` or `config` is not an
        `MCExploringStartsConfig`.
      ValueError: bad `num_runs`, `track_states`, `action_mask` or `start_states`.
    """
    who = "mc_exploring_starts"
    config = check_config(config, MCExploringStartsConfig, who)
    return _mc_control(
        who, key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        mask=action_mask, start_states=start_states,
    )  # fmt: skip


def on_policy_mc_control(
    key: jax.Array,
    env: TabularEnvironment,
    config: OnPolicyMCConfig | None = None,
    *,
    params: Any = None,
    num_runs: int = 1,
    track_states: Any = None,
    action_mask: Any = None,
) -> ControlResult:
    """On-policy first-visit Monte Carlo control of epsilon-soft policies (Section 5.4).

    Episodes start from `env.reset` and follow the epsilon-greedy policy of the current
    action values (sample averages of the returns, or constant-`alpha` estimates).

    Args:
      key: random key (split into one key per run).
      env: a `TabularEnvironment`.
      config: settings (default `OnPolicyMCConfig()`).
      params: environment parameters (default `env.default_params`).
      num_runs: independent runs (vmapped).
      track_states: optional state indices whose action values are recorded after every
        episode.
      action_mask: optional bool `[S, A]` of valid actions.

    Returns:
      A `ControlResult` (`policy` is the greedy part of the learned epsilon-soft policy).

    Raises:
      TypeError: `env` is not a `TabularEnvironment` or `config` is not an `OnPolicyMCConfig`.
      ValueError: bad `num_runs`, `track_states` or `action_mask`.
    """
    who = "on_policy_mc_control"
    config = check_config(config, OnPolicyMCConfig, who)
    return _mc_control(
        who, key, env, config, params=params, num_runs=num_runs, track_states=track_states,
        mask=action_mask, start_states=None,
    )  # fmt: skip
