"""Bandit agents of Sutton & Barto, chapter 2, as pure functions over one pytree state.

Every agent has the same three functions, written for ONE run (the testbed `vmap`s them):

    state = init(key, k, config)                 # AgentState for k arms
    action = act(key, state, config)             # int32 arm index
    state = update(state, action, reward, config)

`config` is one of the frozen config dataclasses below; its type picks the agent:

| config | book | what it does |
| --- | --- | --- |
| `EpsilonGreedy(epsilon, alpha, initial_value)` | 2.2-2.6 | greedy (epsilon 0), epsilon-greedy, sample averages (alpha None) or constant step size alpha, optimistic initial values (initial_value = Q1 > 0) |
| `UCB(c, alpha)` | 2.7 | upper-confidence-bound action selection; untried arms first |
| `GradientBandit(alpha, baseline)` | 2.8 | softmax over preferences, stochastic gradient ascent, with or without the average-reward baseline |
| `ThompsonSampling(prior_mean, prior_std, noise_std)` | 2.10 (and Russo et al. 2018) | Gaussian posterior sampling: normal prior on each arm's mean, known reward noise |

Configs are `flax.struct` dataclasses: their numeric fields are pytree leaves, so they can be
traced. The testbed passes them as jit arguments, so eps 0, 0.01 and 0.1 share one compiled
program (only the config type and the shapes are static). A config checks its values when
it is made (`__post_init__`, on `bellmax.core.checks`), and `check_config` (called by `init`
and by the testbed) also checks concrete array fields: a value of the wrong type raises
`TypeError`, one out of range `ValueError`, each naming the field, the allowed range and an
example.

Greedy choices break ties uniformly at random, as the book's greedy method does: with
estimates all 0 at the start, a greedy agent whose first pull pays less than 0 moves on to a
random other arm. This is what keeps the eps = 0 curve of Figure 2.2 at about 1.0.

Randomness is spent sparingly (on CPU a random number costs more than most of a step's
arithmetic): epsilon-greedy draws two uniforms per step (one 64-bit block of the key's
generator), UCB and the gradient bandit one, Thompson sampling k normals
(`bellmax.core.rng.normal`: the numbers of `jax.random.normal`, drawn as one flat vector
across the runs, 3x faster under the testbed's vmap). Updates use
one-hot masks rather than scatters (cheaper under `vmap`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, NamedTuple, TypeAlias

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core import rng
from bellmax.core.checks import FLOAT32_MAX, check_bool, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.errors import unknown_name

__all__ = [
    "AGENTS",
    "CONFIG_TYPES",
    "UCB",
    "AgentConfig",
    "AgentPreset",
    "AgentState",
    "EpsilonGreedy",
    "GradientBandit",
    "ThompsonSampling",
    "act",
    "agent_label",
    "argmax_random_ties",
    "check_config",
    "init",
    "make_agent",
    "parse_agent_spec",
    "traced_config",
    "update",
]


# ---------------------------------------------------------------------- configs
@struct.dataclass
class EpsilonGreedy:
    """Epsilon-greedy action values (Sutton & Barto 2.2-2.6).

    Greedy is `epsilon=0`; optimistic initial values (Figure 2.3) are `initial_value=5,
    alpha=0.1, epsilon=0`.
    """

    epsilon: float = 0.1
    """Probability of pulling a uniformly random arm instead of a greedy one, in [0, 1]."""
    alpha: float | None = None
    """Constant step size in (0, 1]; None (or NaN) uses sample averages (step 1/N(a))."""
    initial_value: float = 0.0
    """Initial estimate Q1 of every arm (5 gives the optimistic agent of Figure 2.3)."""

    def __post_init__(self) -> None:
        _check_fields(self, arrays=False)


@struct.dataclass
class UCB:
    """Upper-confidence-bound action selection (Sutton & Barto 2.7, eq. 2.10).

    Picks `argmax_a Q(a) + c sqrt(ln t / N(a))`; an arm never pulled (N = 0) counts as
    maximising, so the first k pulls try every arm once, in random order.
    """

    c: float = 2.0
    """Exploration strength c >= 0 (0 is greedy once every arm has been tried)."""
    alpha: float | None = None
    """Constant step size in (0, 1]; None (or NaN) uses sample averages (step 1/N(a))."""

    def __post_init__(self) -> None:
        _check_fields(self, arrays=False)


@struct.dataclass
class GradientBandit:
    """Gradient bandit: softmax over preferences H (Sutton & Barto 2.8, eq. 2.12).

    `H(a) += alpha (R - baseline) (1[a = A] - pi(a))` with the baseline the average of the
    rewards before this one (the first reward is its own baseline), or 0 without it.
    """

    alpha: float = 0.1
    """Step size of the preference update, > 0."""
    baseline: bool = True
    """Subtract the average reward so far (False: baseline 0, Figure 2.5's lower curves)."""

    def __post_init__(self) -> None:
        _check_fields(self, arrays=False)


@struct.dataclass
class ThompsonSampling:
    """Gaussian Thompson sampling (Sutton & Barto 2.10; Russo et al., A Tutorial on TS, 2018).

    Each arm's mean has a normal prior N(prior_mean, prior_std^2); rewards are taken to be
    N(mean, noise_std^2) with noise_std known, so the posterior stays normal (conjugate
    update). Each step samples one mean per arm from the posterior and pulls the largest.
    """

    prior_mean: float = 0.0
    """Prior mean of every arm's value (the testbed draws values around 0)."""
    prior_std: float = 1.0
    """Prior standard deviation of every arm's value, > 0."""
    noise_std: float = 1.0
    """Known standard deviation of a reward around its arm's value, > 0."""

    def __post_init__(self) -> None:
        _check_fields(self, arrays=False)


AgentConfig: TypeAlias = EpsilonGreedy | UCB | GradientBandit | ThompsonSampling
"""Any bandit agent config."""

CONFIG_TYPES: tuple[type, ...] = (EpsilonGreedy, UCB, GradientBandit, ThompsonSampling)


@struct.dataclass
class AgentState:
    """What a bandit agent knows after `time` pulls of one run, for every kind of agent."""

    __repr__ = summary_repr

    values: jax.Array
    """[k] float32: action-value estimates Q (epsilon-greedy, UCB), preferences H (gradient
    bandit) or posterior means (Thompson sampling)."""
    counts: jax.Array
    """[k] int32: how many times each arm was pulled, N(a)."""
    time: jax.Array
    """[] int32: pulls so far (the next pull is step time + 1)."""
    average_reward: jax.Array
    """[] float32: mean of the rewards so far (the gradient bandit's baseline)."""


# ---------------------------------------------------------------------- validation
class _Rule(NamedTuple):
    """What a numeric config field allows (see `check_number`), and an example for messages."""

    example: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    optional: bool = False
    """None (or NaN) allowed: `alpha`'s sample averages."""


_STEP_SIZE = _Rule("0.1", low=0, high=1, low_open=True, optional=True)
_POSITIVE = _Rule("1.0", low=0, low_open=True)

_RULES: dict[type, dict[str, _Rule]] = {
    EpsilonGreedy: {
        "epsilon": _Rule("0.1", low=0, high=1),
        "alpha": _STEP_SIZE,
        "initial_value": _Rule("5.0"),
    },
    UCB: {"c": _Rule("2.0", low=0), "alpha": _STEP_SIZE},
    GradientBandit: {"alpha": _Rule("0.1", low=0, low_open=True)},
    ThompsonSampling: {
        "prior_mean": _Rule("0.0"),
        "prior_std": _POSITIVE,
        "noise_std": _POSITIVE,
    },
}


def _allowed(rule: _Rule) -> str:
    low = "" if rule.low is None else (f"> {rule.low:g}" if rule.low_open else f">= {rule.low:g}")
    high = "" if rule.high is None else f"<= {rule.high:g}"
    return " and ".join(s for s in (low, high) if s)


def _is_host_scalar(value: Any) -> bool:
    """A Python or NumPy scalar (or None, or a str): what `__post_init__` checks."""
    return value is None or isinstance(value, str | numbers.Number | np.generic)


def _check_field(config: Any, field: str, rule: _Rule, *, arrays: bool) -> None:
    """Check one numeric field: host scalars by `core.checks.check_number` (TypeError for a
    wrong type, ValueError for a wrong value); concrete arrays element by element when
    `arrays`; traced values and other leaves (pytree transformations) are skipped."""
    value = getattr(config, field)
    name = f"{type(config).__name__}.{field}"
    fix = f"pass e.g. {field}={rule.example}"
    if _is_host_scalar(value):
        if rule.optional and (value is None or (_is_real(value) and math.isnan(value))):
            return
        try:
            check_number(value, field, low=rule.low, high=rule.high, low_open=rule.low_open)
        except TypeError:
            raise TypeError(f"{name} must be a number, got {value!r}; {fix}.") from None
        except ValueError:
            need = _allowed(rule) if math.isfinite(value) else "finite"
            raise ValueError(f"{name} must be {need}, got {value}; {fix}.") from None
        if abs(float(value)) > FLOAT32_MAX:  # the agents compute in float32
            raise ValueError(
                f"{name} must be at most {FLOAT32_MAX:.3g} in size (float32), got {value}; {fix}."
            )
        return
    v = _concrete(value) if arrays and isinstance(value, jax.Array | np.ndarray) else None
    if v is None:
        return
    if not np.issubdtype(v.dtype, np.number):
        raise TypeError(f"{name} must be a number, got {value!r}; {fix}.")
    v = v.astype(np.float64)
    if rule.optional:  # NaN is the testbed's traced stand-in for None
        v = v[~np.isnan(v)]
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {value!r}; {fix}.")
    if np.any(np.abs(v) > FLOAT32_MAX):
        raise ValueError(
            f"{name} must be at most {FLOAT32_MAX:.3g} in size (float32), got {value!r}; {fix}."
        )
    bad = np.zeros(v.shape, bool)
    if rule.low is not None:
        bad |= (v <= rule.low) if rule.low_open else (v < rule.low)
    if rule.high is not None:
        bad |= v > rule.high
    if bad.any():
        shown = value if np.ndim(value) == 0 else v[bad].tolist()
        raise ValueError(f"{name} must be {_allowed(rule)}, got {shown}; {fix}.")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _check_baseline(config: GradientBandit, *, arrays: bool) -> None:
    b = config.baseline
    if _is_host_scalar(b):
        try:
            check_bool(b, "baseline", owner="GradientBandit")
            return
        except TypeError:
            pass
    else:
        v = _concrete(b) if arrays and isinstance(b, jax.Array | np.ndarray) else None
        if v is None or v.dtype == np.bool_:
            return
    raise TypeError(
        f"GradientBandit.baseline must be True or False, got {b!r}; "
        "pass baseline=False for the no-baseline variant."
    )


def _check_fields(config: Any, *, arrays: bool) -> None:
    for field, rule in _RULES[type(config)].items():
        _check_field(config, field, rule, arrays=arrays)
    if isinstance(config, GradientBandit):
        _check_baseline(config, arrays=arrays)


def _concrete(value: Any) -> np.ndarray | None:
    """`value` as a host array, or None when it is traced (checked elsewhere)."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def check_config(config: Any) -> None:
    """Raise for a config that is not a bandit agent or has values out of range.

    Every config checks its Python values when it is made (`__post_init__`); this also
    checks concrete array fields element by element. Traced fields (under `jit`/`vmap`) are
    skipped.

    Args:
      config: an `EpsilonGreedy`, `UCB`, `GradientBandit` or `ThompsonSampling`.

    Raises:
      TypeError: not an agent config, or a field that is not a number (or bool).
      ValueError: a value out of its range (the message names the field and the range).
    """
    if type(config) not in _RULES:
        raise TypeError(
            f"expected a bandit agent config (EpsilonGreedy, UCB, GradientBandit or "
            f"ThompsonSampling), got {type(config).__name__}; build one, e.g. "
            "EpsilonGreedy(epsilon=0.1)."
        )
    _check_fields(config, arrays=True)


def _check_k(k: Any) -> int:
    try:
        return check_int(k, "k", low=1)
    except TypeError:
        raise TypeError(
            f"k must be an integer number of arms, got {k!r}; pass e.g. k=10."
        ) from None
    except ValueError:
        raise ValueError(f"a bandit needs k >= 1 arms, got k={k}; pass e.g. k=10.") from None


# ---------------------------------------------------------------------- shared pieces
def argmax_random_ties(x: jax.Array, u: jax.Array) -> jax.Array:
    """Index of a maximum of `x`, chosen uniformly among ties with ONE uniform `u` in [0, 1).

    With `m` tied maxima, `u` picks the `floor(u m)`-th of them (in index order), which is
    uniform over the ties. `+inf` entries (UCB's untried arms) tie with each other.

    Args:
      x: [k] scores.
      u: [] uniform random number in [0, 1).

    Returns:
      [] int32 index.
    """
    return _index_of(_random_max_mask(x, u))


def _random_max_mask(x: jax.Array, u: jax.Array) -> jax.Array:
    """[k] bool, True at exactly one maximum of `x`, uniform among ties (see above)."""
    is_max = x >= jnp.max(x)
    ties = jnp.sum(is_max)
    j = jnp.minimum(jnp.floor(u * ties).astype(jnp.int32), ties - 1)
    rank = _cumsum(is_max.astype(jnp.float32)).astype(jnp.int32) - 1  # among the ties
    return is_max & (rank == j)


def _index_of(mask: jax.Array) -> jax.Array:
    """The index of the one True entry of a [k] mask.

    A masked sum: on CPU a plain reduction, several times cheaper under `vmap` than the
    (value, index) reduction of `jnp.argmax`.
    """
    return jnp.sum(jnp.where(mask, jnp.arange(mask.shape[-1], dtype=jnp.int32), 0))


def _cumsum(x: jax.Array) -> jax.Array:
    """Cumulative sum of a short [k] vector as a product with a triangular matrix.

    Under `vmap` this is one small matrix product, several times faster on CPU than XLA's
    cumulative-sum loop over the last axis.
    """
    k = x.shape[-1]
    return x @ jnp.triu(jnp.ones((k, k), x.dtype))


def _uniform_arm(u: jax.Array, k: int) -> jax.Array:
    """A uniformly random arm in 0..k-1 from one uniform `u` in [0, 1)."""
    return jnp.minimum(jnp.floor(u * k).astype(jnp.int32), k - 1)


def _step_size(alpha: Any, count: jax.Array) -> jax.Array:
    """`alpha`, or the sample-average step 1/N when alpha is None (NaN once traced)."""
    sample_average = 1.0 / jnp.maximum(count, 1).astype(jnp.float32)
    if alpha is None:
        return sample_average
    alpha = jnp.asarray(alpha, jnp.float32)
    return jnp.where(jnp.isnan(alpha), sample_average, alpha)


def _count(state: AgentState, action: jax.Array, reward: jax.Array) -> AgentState:
    """Bookkeeping every agent shares: N(a) += 1, t += 1, running mean of the rewards."""
    t = state.time + 1
    return state.replace(
        counts=state.counts + _one_hot(action, state.counts.shape[-1]).astype(jnp.int32),
        time=t,
        average_reward=state.average_reward
        + (reward - state.average_reward) / t.astype(jnp.float32),
    )


def _one_hot(action: jax.Array, k: int) -> jax.Array:
    """[k] bool mask of the pulled arm (elementwise: cheaper than a scatter under vmap)."""
    return jnp.arange(k) == action


def _fresh_state(k: int, value: Any) -> AgentState:
    return AgentState(
        values=jnp.full((k,), value, jnp.float32),
        counts=jnp.zeros((k,), jnp.int32),
        time=jnp.zeros((), jnp.int32),
        average_reward=jnp.zeros((), jnp.float32),
    )


# ---------------------------------------------------------------------- action-value agents
def _action_value_update(state: AgentState, action, reward, alpha) -> AgentState:
    """Q(A) += step (R - Q(A)) (eq. 2.3 with step 1/N, eq. 2.5 with constant alpha)."""
    state = _count(state, action, reward)
    hit = _one_hot(action, state.values.shape[-1])
    step = _step_size(alpha, state.counts)  # per arm; only the pulled arm's is used
    q = state.values
    return state.replace(values=q + jnp.where(hit, step * (reward - q), 0.0))


def _eps_init(key, k, config: EpsilonGreedy) -> AgentState:
    return _fresh_state(k, config.initial_value)


def _eps_act(key, state: AgentState, config: EpsilonGreedy) -> jax.Array:
    u = jax.random.uniform(key, (2,), jnp.float32)  # u[0]: explore or not; u[1]: which arm
    k = state.values.shape[-1]
    explore = jnp.arange(k) == _uniform_arm(u[1], k)
    greedy = _random_max_mask(state.values, u[1])
    return _index_of(jnp.where(u[0] < config.epsilon, explore, greedy))


def _eps_update(state, action, reward, config: EpsilonGreedy) -> AgentState:
    return _action_value_update(state, action, reward, config.alpha)


def _ucb_init(key, k, config: UCB) -> AgentState:
    return _fresh_state(k, 0.0)


def _ucb_act(key, state: AgentState, config: UCB) -> jax.Array:
    u = jax.random.uniform(key, (), jnp.float32)
    t = (state.time + 1).astype(jnp.float32)  # this pull is step t (1-based)
    n = state.counts.astype(jnp.float32)
    bonus = config.c * jnp.sqrt(jnp.log(t) / jnp.maximum(n, 1.0))
    score = jnp.where(state.counts == 0, jnp.inf, state.values + bonus)
    return argmax_random_ties(score, u)


def _ucb_update(state, action, reward, config: UCB) -> AgentState:
    return _action_value_update(state, action, reward, config.alpha)


# ---------------------------------------------------------------------- gradient bandit
def _gradient_init(key, k, config: GradientBandit) -> AgentState:
    return _fresh_state(k, 0.0)


def _gradient_act(key, state: AgentState, config: GradientBandit) -> jax.Array:
    pi = jax.nn.softmax(state.values)
    cdf = _cumsum(pi)
    u = jax.random.uniform(key, (), jnp.float32) * cdf[-1]
    # inverse CDF: P(#{i: cdf_i <= u} = a) = pi(a)
    return jnp.minimum(jnp.sum(cdf <= u), pi.shape[-1] - 1).astype(jnp.int32)


def _gradient_update(state, action, reward, config: GradientBandit) -> AgentState:
    pi = jax.nn.softmax(state.values)
    # R-bar_t: mean of the rewards before this one, with R-bar_1 = R_1 (book, eq. 2.12)
    past = jnp.where(state.time == 0, reward, state.average_reward)
    baseline = jnp.where(jnp.asarray(config.baseline), past, 0.0)
    one_hot = _one_hot(action, pi.shape[-1])
    values = state.values + config.alpha * (reward - baseline) * (one_hot - pi)
    return _count(state, action, reward).replace(values=values.astype(jnp.float32))


# ---------------------------------------------------------------------- Thompson sampling
def _ts_init(key, k, config: ThompsonSampling) -> AgentState:
    return _fresh_state(k, config.prior_mean)


def _ts_posterior_std(state: AgentState, config: ThompsonSampling) -> jax.Array:
    precision = 1.0 / config.prior_std**2 + state.counts / config.noise_std**2
    return jax.lax.rsqrt(jnp.asarray(precision, jnp.float32))


def _ts_act(key, state: AgentState, config: ThompsonSampling) -> jax.Array:
    k = state.values.shape[-1]
    # bellmax.core.rng.normal: jax.random.normal bit for bit, with erfinv over one flat vector
    # (under the testbed's vmap over runs, not [runs, k]: several times faster on CPU).
    sample = state.values + _ts_posterior_std(state, config) * rng.normal(key, (k,))
    # Ties have probability 0, so the first maximum will do. (Not jnp.argmax: XLA:CPU runs
    # an argmax with the sampling fused into it as a scalar loop, several times slower.)
    return argmax_random_ties(sample, jnp.zeros((), jnp.float32))


def _ts_update(state, action, reward, config: ThompsonSampling) -> AgentState:
    state = _count(state, action, reward)
    # posterior precision after this pull: 1/prior_std^2 + N(a)/noise_std^2
    inv_noise = 1.0 / config.noise_std**2
    precision = 1.0 / config.prior_std**2 + state.counts * inv_noise  # per arm
    mu = state.values
    step = inv_noise / precision
    hit = _one_hot(action, mu.shape[-1])
    return state.replace(values=jnp.where(hit, mu + step * (reward - mu), mu).astype(mu.dtype))


# ---------------------------------------------------------------------- the uniform interface
_IMPLS = {
    EpsilonGreedy: (_eps_init, _eps_act, _eps_update),
    UCB: (_ucb_init, _ucb_act, _ucb_update),
    GradientBandit: (_gradient_init, _gradient_act, _gradient_update),
    ThompsonSampling: (_ts_init, _ts_act, _ts_update),
}


def _impl(config: Any):
    try:
        return _IMPLS[type(config)]
    except KeyError:
        check_config(config)  # raises the TypeError that names the valid types
        raise


def init(key: jax.Array, k: int, config: AgentConfig) -> AgentState:
    """A fresh agent for a `k`-armed bandit (Sutton & Barto 2.2-2.10).

    Checks the concrete values of `config` (`check_config`).

    Args:
      key: PRNG key (unused by the agents here; part of the uniform interface).
      k: number of arms (static).
      config: the agent (its type picks the algorithm).

    Returns:
      An `AgentState` with `[k]` values and counts.
    """
    k = _check_k(k)
    check_config(config)
    return _impl(config)[0](key, k, config)


def act(key: jax.Array, state: AgentState, config: AgentConfig) -> jax.Array:
    """The arm to pull next (Sutton & Barto 2.2-2.10; ties broken uniformly at random).

    Args:
      key: PRNG key, consumed.
      state: the agent's `AgentState`.
      config: the agent.

    Returns:
      [] int32 arm index.
    """
    return _impl(config)[1](key, state, config)


def update(
    state: AgentState, action: jax.Array, reward: jax.Array, config: AgentConfig
) -> AgentState:
    """Learn from one pull: `action` paid `reward` (Sutton & Barto 2.4-2.10).

    Args:
      state: the agent's `AgentState`.
      action: [] int arm that was pulled.
      reward: [] reward it paid.
      config: the agent.

    Returns:
      The new `AgentState`.
    """
    from bellmax.envs.environment import check_discrete_action

    check_discrete_action(action, state.values.shape[-1], "update", what="arm")
    if not isinstance(reward, jax.core.Tracer) and not np.isfinite(np.asarray(reward)).all():
        raise ValueError(f"update: the reward must be finite, got {np.asarray(reward).tolist()!r}.")
    action = jnp.asarray(action, jnp.int32)
    reward = jnp.asarray(reward, jnp.float32)
    return _impl(config)[2](state, action, reward, config)


def traced_config(config: AgentConfig) -> AgentConfig:
    """`config` with every field a 0-d array, so configs of one type share a compiled program.

    Numbers become float32, booleans bool, and an `alpha` of None (sample averages) becomes
    NaN, which `update` reads as "sample averages". Used by the testbed runner.
    """
    check_config(config)

    def convert(value: Any) -> jax.Array:
        if value is None:
            return jnp.asarray(math.nan, jnp.float32)
        if isinstance(value, bool | np.bool_) or (
            hasattr(value, "dtype") and np.dtype(value.dtype) == np.bool_
        ):
            return jnp.asarray(value, jnp.bool_)
        return jnp.asarray(value, jnp.float32)

    fields = {name: convert(getattr(config, name)) for name in config.__dataclass_fields__}
    return type(config)(**fields)


# ---------------------------------------------------------------------- named agents
@dataclasses.dataclass(frozen=True)
class AgentPreset:
    """A named agent of the book, as the CLI and `make_agent` know it."""

    config_type: type
    """The config dataclass it builds."""
    defaults: dict[str, Any]
    """Field values that differ from the dataclass defaults."""
    description: str
    """One line for `--help`."""
    fixed: tuple[str, ...] = ()
    """Fields the name pins (e.g. greedy's epsilon = 0): setting them is an error."""


#: Agents by name: what `bellmax bandit --agent NAME` and `make_agent(NAME)` build.
AGENTS: dict[str, AgentPreset] = {
    "greedy": AgentPreset(
        EpsilonGreedy, {"epsilon": 0.0}, "greedy, sample averages (2.2)", fixed=("epsilon",)
    ),
    "eps-greedy": AgentPreset(
        EpsilonGreedy, {"epsilon": 0.1}, "epsilon-greedy, sample averages (2.2, Figure 2.2)"
    ),
    "optimistic": AgentPreset(
        EpsilonGreedy,
        {"epsilon": 0.0, "alpha": 0.1, "initial_value": 5.0},
        "greedy from optimistic Q1 = 5 with step size 0.1 (2.6, Figure 2.3)",
    ),
    "ucb": AgentPreset(UCB, {"c": 2.0}, "upper confidence bound, c = 2 (2.7, Figure 2.4)"),
    "gradient": AgentPreset(
        GradientBandit,
        {"alpha": 0.1, "baseline": True},
        "gradient bandit, alpha 0.1, average-reward baseline (2.8, Figure 2.5)",
    ),
    "thompson": AgentPreset(
        ThompsonSampling, {}, "Gaussian Thompson sampling, N(0, 1) prior, unit noise (2.10)"
    ),
}


def _fields(config_type: type) -> list[str]:
    return [f.name for f in dataclasses.fields(config_type)]


def make_agent(name: str, **overrides: Any) -> AgentConfig:
    """The agent called `name` in `AGENTS`, with some fields changed.

    Args:
      name: e.g. "eps-greedy", "ucb", "gradient" (see `AGENTS`).
      **overrides: config fields to set, e.g. `epsilon=0.01`.

    Returns:
      The checked agent config.

    Raises:
      UnknownNameError: an unknown agent or field name (with the close matches).
      ValueError: a value out of range, or a field the name pins (greedy's epsilon).
    """
    if name not in AGENTS:
        raise unknown_name(
            "bandit agent",
            name,
            AGENTS,
            hint="Known agents: " + ", ".join(AGENTS) + ".",
            listed=True,
        )
    preset = AGENTS[name]
    valid = [f for f in _fields(preset.config_type) if f not in preset.fixed]
    for field in overrides:
        if field in preset.fixed:
            raise ValueError(
                f"agent {name!r} fixes {field} = {preset.defaults[field]!r}; "
                "use 'eps-greedy' to choose epsilon."
            )
        if field not in valid:
            raise unknown_name(
                f"option of agent {name!r}",
                field,
                valid,
                hint=f"Options of {name!r}: " + ", ".join(valid) + ".",
            )
    config = preset.config_type(**{**preset.defaults, **overrides})
    check_config(config)
    return config


def _parse_value(name: str, field: str, text: str) -> Any:
    low = text.strip().lower()
    if field == "baseline":
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise ValueError(f"{name}:{field}={text!r}: expected true or false.")
    if field == "alpha" and low in ("none", "sample", "sample-average"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name}:{field}={text!r}: expected a number.") from None


def parse_agent_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split an agent spec `NAME[:KEY=VALUE[,KEY=VALUE...]]` into a name and field values.

    Keys are config field names (`-` or `_`); values are numbers, `none` for `alpha`
    (sample averages) or `true`/`false` for `baseline`. Example: `"ucb:c=1"`,
    `"eps-greedy:epsilon=0.01,alpha=0.1"`, `"gradient:alpha=0.4,baseline=false"`.

    Args:
      spec: the text.

    Returns:
      `(name, overrides)`, ready for `make_agent(name, **overrides)`.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"agent spec must be a non-empty string like 'ucb:c=2', got {spec!r}; "
            "known agents: " + ", ".join(AGENTS) + "."
        )
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in AGENTS:
        raise unknown_name(
            "bandit agent",
            name,
            AGENTS,
            hint="Known agents: " + ", ".join(AGENTS) + ".",
            listed=True,
        )
    overrides: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        field = key.strip().replace("-", "_")
        if not eq or not field:
            raise ValueError(
                f"agent spec {spec!r}: {item!r} is not KEY=VALUE; write e.g. "
                f"'{name}:{_example_option(name)}'."
            )
        if field in overrides:
            raise ValueError(f"agent spec {spec!r} sets {field} twice; give it once.")
        overrides[field] = _parse_value(name, field, value)
    return name, overrides


def _example_option(name: str) -> str:
    preset = AGENTS[name]
    for field in _fields(preset.config_type):
        if field not in preset.fixed:
            value = preset.defaults.get(field, getattr(preset.config_type(), field))
            return f"{field}={'none' if value is None else value}"
    return "..."  # pragma: no cover - every agent has an option


_SYMBOLS = {
    "epsilon": "ε",
    "alpha": "α",
    "initial_value": "Q1",
    "c": "c",
    "prior_mean": "μ0",
    "prior_std": "σ0",
    "noise_std": "σ",
}


def agent_label(config: AgentConfig, name: str | None = None) -> str:
    """A short legend label, e.g. `ε-greedy ε=0.1`, `UCB c=2`, `gradient α=0.1, no baseline`.

    Args:
      config: the agent.
      name: the `AGENTS` name it came from (default: guessed from the config type).

    Returns:
      The label.
    """
    check_config(config)
    parts: list[str] = []

    def num(field: str) -> None:
        value = getattr(config, field)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            parts.append(f"{_SYMBOLS[field]}={float(value):g}")

    if isinstance(config, EpsilonGreedy):
        head = name or ("greedy" if config.epsilon == 0 else "ε-greedy")
        head = "ε-greedy" if head == "eps-greedy" else head
        if head != "greedy":
            num("epsilon")
        num("alpha")
        if config.initial_value != 0:
            num("initial_value")
    elif isinstance(config, UCB):
        head = "UCB"
        num("c")
        num("alpha")
    elif isinstance(config, GradientBandit):
        head = "gradient"
        num("alpha")
        if not bool(config.baseline):
            parts.append("no baseline")
    else:
        head = "Thompson"
        default = ThompsonSampling()
        for field in ("prior_mean", "prior_std", "noise_std"):
            if getattr(config, field) != getattr(default, field):
                num(field)
    return head + (" " + ", ".join(parts) if parts else "")
