"""What Monte Carlo and TD learners share: policies over table rows, the episode driver, results.

Tabular learners work on state indices: the driver steps a `TabularEnvironment` and hands
each transition to the learner as `(s_tm1, a_tm1, r_t, terminated_t, s_t)` with
`s = env.state_index(state)`. One episode is a bounded `lax.while_loop` (it stops at a
terminal state, at the environment's time limit, or after `max_steps` steps); a run is a
`lax.scan` over episodes; the public entry points `vmap` runs over independent keys.

Policies here act on one row of a table (`q_row [A]`), with an optional `valid [A]` mask of
the actions that exist in that state (environments that have such actions expose
`env.valid_actions(params) -> bool [S, A]`, e.g. the gambler's problem and Example 6.7).
Greedy choices break ties uniformly at random, as the book's figures assume.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_float32, check_int, check_number, check_probability
from bellmax.core.display import summary_repr
from bellmax.envs import spaces
from bellmax.envs.environment import EnvParams
from bellmax.envs.tabular import TabularEnvironment

__all__ = [
    "ControlResult",
    "EpisodeStats",
    "PredictionResult",
    "action_mask",
    "check_config",
    "check_env",
    "check_episode_fields",
    "check_num_runs",
    "check_policy",
    "check_step_size",
    "check_track",
    "epsilon_greedy_action",
    "epsilon_greedy_probs",
    "greedy_action",
    "greedy_policy",
    "hash_bits",
    "hash_uniform",
    "key_words",
    "random_action",
    "resolve_gamma",
    "resolve_params",
    "run_episode",
    "run_episodes",
    "run_program",
    "sample_action",
    "select_tree",
    "table_shape",
]


# ---------------------------------------------------------------------- cheap per-step randomness
# A threefry call costs microseconds on CPU and a tabular step needs a few random numbers, so
# the episode driver derives each step's keys from the episode key (drawn by threefry) and the
# step number with a keyed integer hash (the murmur3 finalizer over a counter, as in
# splitmix), and the policies draw their numbers from their key the same way.
def _fmix32(x: jax.Array) -> jax.Array:
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def key_words(key: jax.Array) -> jax.Array:
    """The raw `uint32` words of a key (typed `jax.random.key` or legacy `PRNGKey`)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return jnp.asarray(key, jnp.uint32).reshape(-1)


def hash_bits(key: jax.Array, n: int, salt: int | jax.Array = 0) -> jax.Array:
    """`n` pseudo-random `uint32` words derived from `key` by a keyed hash (cheap, jittable).

    Different `salt`s give independent-looking streams from the same key.
    """
    words = key_words(key)
    i = jnp.arange(1, n + 1, dtype=jnp.uint32)
    mix = jnp.uint32(0x165667B1) + jnp.asarray(salt).astype(jnp.uint32) * jnp.uint32(0x27D4EB2F)
    # a Weyl sequence keyed by both words (distinct counters stay distinct), then the finalizer
    return _fmix32((words[0] ^ mix) + (i ^ words[-1]) * jnp.uint32(0x9E3779B9))


def hash_uniform(key: jax.Array, n: int, salt: int | jax.Array = 0) -> jax.Array:
    """`n` uniform numbers in `[0, 1)` (float32, 24-bit resolution) from `hash_bits`."""
    return (hash_bits(key, n, salt) >> 8).astype(jnp.float32) * jnp.float32(2.0**-24)


def _pick(noise: jax.Array, mask: jax.Array) -> jax.Array:
    """Index of a uniformly chosen `True` entry of `mask [A]` (at least one), given `A` iid
    uniform `noise` numbers."""
    return jnp.argmax(jnp.where(mask, noise, -1.0)).astype(jnp.int32)


# ---------------------------------------------------------------------- policies on one row
def greedy_action(key: jax.Array, q_row: jax.Array, valid: jax.Array | None = None) -> jax.Array:
    """An action of highest value, ties broken uniformly at random (Section 2.2).

    Args:
      key: random key (used only to break ties).
      q_row: action values `[A]`.
      valid: optional bool `[A]` of the actions that exist in this state (at least one).

    Returns:
      The chosen action, int32 scalar.
    """
    q_row = jnp.asarray(q_row)
    if valid is not None:
        q_row = jnp.where(valid, q_row, -jnp.inf)
    return _pick(hash_uniform(key, q_row.shape[-1]), q_row == jnp.max(q_row))


def random_action(key: jax.Array, num_actions: int, valid: jax.Array | None = None) -> jax.Array:
    """A uniformly random action among `0 .. num_actions - 1` (or among the `valid` ones).

    Returns:
      int32 scalar.
    """
    valid = jnp.ones(num_actions, bool) if valid is None else jnp.asarray(valid, bool)
    return _pick(hash_uniform(key, num_actions), valid)


def epsilon_greedy_action(
    key: jax.Array, q_row: jax.Array, epsilon: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
    """With probability `epsilon` a uniformly random action, else a greedy one (Section 2.2).

    The random action may be the greedy one, so a greedy action has probability
    `1 - epsilon + epsilon / |A|` (the epsilon-soft policy of Section 5.4); greedy ties are
    broken at random.

    Args:
      key: random key.
      q_row: action values `[A]`.
      epsilon: exploration probability in `[0, 1]` (may be traced).
      valid: optional bool `[A]` of the actions that exist in this state.

    Returns:
      The chosen action, int32 scalar.
    """
    q_row = jnp.asarray(q_row)
    A = q_row.shape[-1]
    valid = jnp.ones(A, bool) if valid is None else jnp.asarray(valid, bool)
    u = hash_uniform(key, 2 * A + 1)
    masked = jnp.where(valid, q_row, -jnp.inf)
    greedy = _pick(u[:A], masked == jnp.max(masked))
    return jnp.where(u[2 * A] < epsilon, _pick(u[A : 2 * A], valid), greedy)


def epsilon_greedy_probs(
    q_row: jax.Array, epsilon: jax.Array, valid: jax.Array | None = None
) -> jax.Array:
    """The action probabilities `[A]` of `epsilon_greedy_action` (greedy ties share).

    Used by Expected SARSA's target (Section 6.6).
    """
    q_row = jnp.asarray(q_row)
    valid = jnp.ones(q_row.shape, bool) if valid is None else jnp.asarray(valid, bool)
    masked = jnp.where(valid, q_row, -jnp.inf)
    best = (masked == jnp.max(masked)) & valid
    explore = valid / jnp.sum(valid)
    return epsilon * explore + (1.0 - epsilon) * best / jnp.sum(best)


def sample_action(key: jax.Array, probs: jax.Array) -> jax.Array:
    """An action drawn from the probabilities `probs [A]` (a row of a policy table).

    Returns:
      int32 scalar; actions of probability 0 are never drawn.
    """
    probs = jnp.asarray(probs)
    n = probs.shape[-1]
    cdf = probs @ jnp.triu(jnp.ones((n, n), probs.dtype))  # no scan: A is small
    u = hash_uniform(key, 1)[0] * cdf[-1]
    return jnp.minimum(jnp.sum(cdf <= u), n - 1).astype(jnp.int32)


# ---------------------------------------------------------------------- episodes
@struct.dataclass
class EpisodeStats:
    """What one episode did (fields gain leading `[runs, episodes]` axes in results)."""

    __repr__ = summary_repr

    episode_return: jax.Array
    """Sum of the rewards of the episode (undiscounted, as the book plots it)."""
    length: jax.Array
    """Number of steps taken."""
    first_action: jax.Array
    """The action taken in the start state (e.g. 'left from A' in Figure 6.5)."""
    terminated: jax.Array
    """Whether the episode reached a terminal state (else it was cut by a step limit)."""


@struct.dataclass
class _Loop:
    env_state: Any
    s: jax.Array
    a: jax.Array
    learner: Any
    t: jax.Array
    ret: jax.Array
    terminated: jax.Array
    done: jax.Array


#: `policy(key, learner, s) -> a`.
Policy = Callable[[jax.Array, Any, jax.Array], jax.Array]
#: `update(key, learner, t, s_tm1, a_tm1, r_t, terminated_t, s_t, a_t) -> learner`.
Update = Callable[..., Any]


def select_tree(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """`jnp.where(pred, on_true, on_false)` leaf by leaf (two pytrees of the same structure)."""
    return jax.tree.map(lambda x, y: jnp.where(pred, x, y), on_true, on_false)


def run_episode(
    key: jax.Array,
    env: TabularEnvironment,
    params: Any,
    learner: Any,
    *,
    policy: Policy,
    update: Update,
    max_steps: int,
    act_before_update: bool | jax.Array = False,
    start: Callable[[jax.Array], Any] | None = None,
    first_action: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> tuple[Any, EpisodeStats]:
    """Run one episode, handing every transition to `update` (jittable).

    Each step: act `a_tm1` in `s_tm1`, observe `r_t`, `terminated_t`, `s_t`; then either
    choose `a_t = policy(s_t)` from the learner *before* calling `update` (on-policy
    SARSA needs `a_t` in its target) or call `update` first and choose `a_t` from the updated
    learner (Q-learning, Section 6.5). The episode ends at a terminal state, at the
    environment's own time limit, or after `max_steps` steps.

    Randomness: the keys of the reset and of step `t` (environment, policy, update) are a
    keyed hash of the episode `key` and `t` (`hash_bits`), much cheaper on CPU than threefry
    calls (`run_episodes` draws the episode keys with one `jax.random.split`).

    Args:
      key: random key.
      env: the environment.
      params: its parameters.
      learner: the learner's pytree (tables, an episode buffer, ...).
      policy: `policy(key, learner, s) -> a`.
      update: `update(key, learner, t, s_tm1, a_tm1, r_t, terminated_t, s_t, a_t) -> learner`.
      max_steps: step cap (static).
      act_before_update: see above; a Python bool, or a traced bool (then both orders are
        computed and the right action kept).
      start: `start(key) -> env_state` instead of `env.reset` (exploring starts, a fixed start).
      first_action: `first_action(key, s_0) -> a_0` instead of the policy (exploring starts).

    Returns:
      `(learner, EpisodeStats)`.
    """
    words = hash_bits(key, 4)  # salt 0; step t uses salt t + 1
    k_reset, k_first = words[0:2], words[2:4]
    if start is None:
        _, env_state = env.reset(k_reset, params)
    else:
        env_state = start(k_reset)
    s = env.state_index(env_state)
    a = policy(k_first, learner, s) if first_action is None else first_action(k_first, s)
    init = _Loop(
        env_state=env_state,
        s=s,
        a=jnp.asarray(a, jnp.int32),
        learner=learner,
        t=jnp.asarray(0, jnp.int32),
        ret=jnp.asarray(0.0, jnp.float32),
        terminated=jnp.asarray(False),
        done=jnp.asarray(False),
    )

    def cond(c: _Loop) -> jax.Array:
        return ~c.done & (c.t < max_steps)

    def body(c: _Loop) -> _Loop:
        # counter-based keys: step t's keys are a hash of the episode key and t
        words = hash_bits(key, 6, salt=c.t + 1)
        k_env, k_act, k_upd = words[0:2], words[2:4], words[4:6]
        _, env_state, r_t, term_t, trunc_t, _ = env.step(k_env, c.env_state, c.a, params)
        s_t = env.state_index(env_state)
        if act_before_update is True:
            a_t = policy(k_act, c.learner, s_t)
            learner = update(k_upd, c.learner, c.t, c.s, c.a, r_t, term_t, s_t, a_t)
        elif act_before_update is False:
            learner = update(k_upd, c.learner, c.t, c.s, c.a, r_t, term_t, s_t, None)
            a_t = policy(k_act, learner, s_t)
        else:
            a_before = policy(k_act, c.learner, s_t)
            learner = update(k_upd, c.learner, c.t, c.s, c.a, r_t, term_t, s_t, a_before)
            a_t = jnp.where(act_before_update, a_before, policy(k_act, learner, s_t))
        return _Loop(
            env_state=env_state,
            s=s_t,
            a=jnp.asarray(a_t, jnp.int32),
            learner=learner,
            t=c.t + 1,
            ret=c.ret + jnp.asarray(r_t, jnp.float32),
            terminated=jnp.asarray(term_t),
            done=jnp.asarray(term_t | trunc_t),
        )

    out = jax.lax.while_loop(cond, body, init)
    stats = EpisodeStats(
        episode_return=out.ret, length=out.t, first_action=init.a, terminated=out.terminated
    )
    return out.learner, stats


def run_episodes(
    key: jax.Array,
    learner: Any,
    episode: Callable[[jax.Array, Any], tuple[Any, EpisodeStats]],
    num_episodes: int,
    record: Callable[[Any], Any] | None = None,
) -> tuple[Any, EpisodeStats, Any]:
    """One run: `lax.scan` of `episode(key, learner) -> (learner, stats)` over episodes.

    Args:
      key: random key.
      learner: the initial learner.
      episode: one episode.
      num_episodes: number of episodes (static).
      record: optional `record(learner) -> pytree` kept after every episode.

    Returns:
      `(learner, stats [num_episodes], records [num_episodes] or None)`.
    """

    def body(learner, k):
        learner, stats = episode(k, learner)
        return learner, (stats, None if record is None else record(learner))

    learner, (stats, records) = jax.lax.scan(body, learner, jax.random.split(key, num_episodes))
    return learner, stats, records


# ---------------------------------------------------------------------- results
@struct.dataclass
class PredictionResult:
    """State values learned by a prediction method, one row per run."""

    __repr__ = summary_repr

    v: jax.Array
    """Final values `[runs, S]` (states never visited keep the initial value)."""
    episodes: EpisodeStats
    """Per-episode statistics, each `[runs, episodes]`."""
    history: jax.Array | None = None
    """Values of the tracked states after each episode `[runs, episodes, K]` (if asked)."""


@struct.dataclass
class ControlResult:
    """Action values and greedy policies learned by a control method, one row per run."""

    __repr__ = summary_repr

    q: jax.Array
    """Final action values `[runs, S, A]` (Double Q-learning: the mean of its two tables)."""
    policy: jax.Array
    """Greedy policy `[runs, S]` of `q` over the valid actions (lowest index on ties)."""
    episodes: EpisodeStats
    """Per-episode statistics, each `[runs, episodes]`."""
    history: jax.Array | None = None
    """Action values of the tracked states after each episode `[runs, episodes, K, A]`."""


def greedy_policy(q: jax.Array, valid: jax.Array) -> jax.Array:
    """`argmax_a q[s, a]` over the valid actions, lowest index on ties: int32 `[S]`."""
    return jnp.argmax(jnp.where(valid, q, -jnp.inf), axis=-1).astype(jnp.int32)


# ---------------------------------------------------------------------- host-side checks
def check_env(env: Any, who: str) -> TabularEnvironment:
    """Raise `TypeError` unless `env` is a `TabularEnvironment` with discrete actions."""
    if not isinstance(env, TabularEnvironment):
        if isinstance(env, tuple) and len(env) == 2 and isinstance(env[1], EnvParams):
            raise TypeError(
                f"{who} takes the environment, not the (env, params) pair bellmax.make "
                "returns: env, params = bellmax.make('CliffWalking-v0'), then pass env."
            )
        raise TypeError(
            f"{who} learns tables indexed by state, so it needs a TabularEnvironment (states "
            f"numbered 0..S-1), got {type(env).__name__}; use a tabular world such as "
            "bellmax.make('CliffWalking-v0')[0] (bellmax envs lists those marked tabular)."
        )
    return env


def table_shape(env: TabularEnvironment, params: Any, who: str) -> tuple[int, int]:
    """`(S, A)` of `env`: states from `env.num_states` (else its exact MDP), discrete actions."""
    space = env.action_space(params)
    if not isinstance(space, spaces.Discrete):
        raise TypeError(f"{who} needs discrete actions; {env.name} has action space {space!r}.")
    S = getattr(env, "num_states", None)
    if not isinstance(S, int | np.integer):
        S = env.tabular_mdp(params).num_states
    return int(S), int(space.n)


def resolve_params(env: TabularEnvironment, params: Any) -> Any:
    """`params`, or the environment's defaults when None (checked by the environment)."""
    params = env.default_params if params is None else params
    env.check_params(params)
    return params


def resolve_gamma(gamma: float | None, params: Any, who: str) -> Any:
    """The config's discount if set, else `params.gamma` (the environment's own)."""
    if gamma is not None:
        return jnp.asarray(gamma, jnp.float32)
    env_gamma = getattr(params, "gamma", None)
    if env_gamma is None:
        raise ValueError(
            f"{who}: the environment parameters have no gamma; set the config's gamma "
            "(e.g. gamma=1.0 for an episodic task)."
        )
    return jnp.asarray(env_gamma, jnp.float32)


def action_mask(
    env: TabularEnvironment, params: Any, shape: tuple[int, int], mask: Any, who: str
) -> jax.Array:
    """The bool `[S, A]` mask of valid actions: `mask`, else `env.valid_actions(params)`, else
    all actions. Raises `ValueError` for a wrong shape or a state with no valid action."""
    if mask is None:
        valid_actions = getattr(env, "valid_actions", None)
        mask = np.ones(shape, bool) if valid_actions is None else valid_actions(params)
    m = np.asarray(mask)
    if m.shape != shape:
        raise ValueError(f"{who}: action_mask must have shape (S, A) = {shape}, got {m.shape}.")
    m = m.astype(bool)
    empty = np.flatnonzero(~m.any(axis=1))
    if empty.size:
        raise ValueError(
            f"{who}: action_mask leaves state {int(empty[0])} with no valid action; every "
            "state needs at least one (mark all actions valid in terminal states)."
        )
    return jnp.asarray(m)


def check_policy(policy: Any, shape: tuple[int, int], name: str, who: str) -> jax.Array:
    """A policy as probabilities `[S, A]` (float32), from a table or deterministic actions `[S]`.

    Raises `ValueError` naming the first bad entry.
    """
    S, A = shape
    p = np.asarray(policy)
    if p.shape == (S,):
        if not np.all(np.mod(p, 1) == 0) or np.any((p < 0) | (p >= A)):
            raise ValueError(
                f"{who}: {name} given as actions per state must hold integers in 0..{A - 1}."
            )
        return jax.nn.one_hot(jnp.asarray(p, jnp.int32), A, dtype=jnp.float32)
    if p.shape != (S, A):
        raise ValueError(
            f"{who}: {name} must be probabilities of shape (S, A) = {(S, A)} or one action "
            f"per state of shape ({S},), got shape {p.shape}."
        )
    p = p.astype(np.float64)
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(f"{who}: {name} must hold finite probabilities >= 0.")
    off = np.flatnonzero(np.abs(p.sum(axis=1) - 1.0) > 1e-5)
    if off.size:
        s = int(off[0])
        raise ValueError(
            f"{who}: {name}[{s}] sums to {p[s].sum():.6g}, not 1; each row must be a "
            "probability distribution over actions."
        )
    return jnp.asarray(p, jnp.float32)


def check_track(track_states: Any, num_states: int, who: str) -> jax.Array | None:
    """State indices to record after every episode, as int32 `[K]` (or None)."""
    if track_states is None:
        return None
    t = np.atleast_1d(np.asarray(track_states))
    if t.ndim != 1 or not np.all(np.mod(t, 1) == 0) or np.any((t < 0) | (t >= num_states)):
        raise ValueError(
            f"{who}: track_states must be state indices in 0..{num_states - 1}, got "
            f"{track_states!r}."
        )
    return jnp.asarray(t, jnp.int32)


def check_num_runs(num_runs: Any, who: str) -> int:
    """`num_runs` as an int >= 1 (`core.checks.check_int`)."""
    return check_int(num_runs, "num_runs", owner=who, low=1)


def check_config(config: Any, config_type: type, who: str) -> Any:
    """`config_type()` when `config` is None, else `config` if it is a `config_type`.

    Raises:
      TypeError: a config of another type (of another method, say).
    """
    config = config_type() if config is None else config
    if not isinstance(config, config_type):
        raise TypeError(
            f"{who} takes a {config_type.__name__}, got {type(config).__name__}; build one "
            f"with {config_type.__name__}(...)."
        )
    return config


# ---------------------------------------------------------------------- config field checks
def check_step_size(config: Any, *, allow_none: bool = False) -> None:
    """`config.alpha` is a step size in `(0, 1]` (or None, for sample averages, if allowed)."""
    if config.alpha is None and allow_none:
        return
    owner = type(config).__name__
    check_number(config.alpha, "alpha", owner=owner, low=0, low_open=True, high=1)


def check_episode_fields(config: Any) -> None:
    """The fields every tabular learner's config has: `gamma` (None, the environment's, or in
    `[0, 1]`), `num_episodes` and `max_steps_per_episode` (ints >= 1), `initial_value`
    (a finite number)."""
    owner = type(config).__name__
    if config.gamma is not None:
        check_probability(config.gamma, "gamma", owner=owner)
    check_int(config.num_episodes, "num_episodes", owner=owner, low=1)
    check_int(config.max_steps_per_episode, "max_steps_per_episode", owner=owner, low=1)
    check_float32(
        check_number(config.initial_value, "initial_value", owner=owner),
        "initial_value",
        owner=owner,
    )


# ---------------------------------------------------------------------- compiled runs
@partial(jax.jit, static_argnames=("run", "env", "num_episodes", "max_steps"))
def _vmapped_runs(run, keys, params, *dynamic, env, num_episodes: int, max_steps: int) -> Any:
    one = partial(run, env=env, num_episodes=num_episodes, max_steps=max_steps)
    return jax.vmap(one, (0, None) + (None,) * len(dynamic))(keys, params, *dynamic)


def run_program(
    run: Callable[..., Any],
    env: TabularEnvironment,
    config: Any,
    keys: jax.Array,
    params: Any,
    *dynamic: Any,
) -> Any:
    """`run(key, params, *dynamic, env=, num_episodes=, max_steps=)` for every key, vmapped,
    as one compiled program per learner (`run`), environment, episode count and step cap
    (`config.num_episodes`, `config.max_steps_per_episode`).

    Every argument in `dynamic` is traced and shared by the runs, so sweeping a step size or
    an exploration rate does not recompile.
    """
    return _vmapped_runs(
        run, keys, params, *dynamic, env=env, num_episodes=config.num_episodes,
        max_steps=config.max_steps_per_episode,
    )  # fmt: skip
