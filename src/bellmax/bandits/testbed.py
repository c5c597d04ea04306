"""The 10-armed testbed (Sutton & Barto 2.3): many independent runs of a bandit agent.

`make_testbed(env, runs=2000, steps=1000)` builds one pure function
`testbed(key, config, env_params) -> TestbedCurves`: a `lax.scan` over the steps whose body
`vmap`s the agent (`bellmax.bandits.agents`) and `GaussianBandit.step` over the runs, so the
book's 2000 runs x 1000 steps are one jitted call. The curves (mean reward and fraction of
optimal actions at each step, averaged over runs) are reduced inside the loop, so memory
does not grow with `runs x steps`.

`run_testbed(config)` / `run_testbeds([config, ...])` are the host-side drivers: they check
the inputs, compile once per agent type (the config's numbers are traced, so epsilon 0, 0.01
and 0.1 share one program; so do different `BanditParams`) and return `TestbedResult`s with
NumPy curves, their averages over the last `last` steps, and run and compile times apart.

Randomness: a run's bandit problem and its pulls come from `key` only, so results are
deterministic per seed (on one backend). `run_testbeds` gives every config the same key
(paired comparison: the same bandit problems and reward noise streams where the pulls
coincide). Seeds become Philox keys (`DEFAULT_KEY_IMPL`): on CPU, JAX lowers its default
Threefry generator to a rolled loop, and the testbed, which draws fresh keys and numbers for
every run at every step, then compiled about 2x slower and ran 1.5-2x slower than with
Philox (measured on 2 cores; "rbg" keys compile fast too but run no faster). Any typed
key can be passed as `key=`.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.bandits.agents import AgentConfig, act, check_config, init, traced_config, update
from bellmax.core.caches import recently_used
from bellmax.core.checks import check_int, check_seed
from bellmax.core.display import summary_repr
from bellmax.envs.bandit import BanditParams, GaussianBandit
from bellmax.envs.registry import make

__all__ = [
    "COMPILER_OPTIONS",
    "DEFAULT_KEY_IMPL",
    "DEFAULT_LAST",
    "TestbedCurves",
    "TestbedResult",
    "check_sizes",
    "make_testbed",
    "run_testbed",
    "run_testbeds",
    "testbed_key",
    "traced_params",
]

#: PRNG implementation of the keys `run_testbed` makes from a seed (see `testbed_key`).
DEFAULT_KEY_IMPL = "philox2x32"

#: XLA options for the testbed's jit. XLA:CPU hands small reductions (max over the k arms
#: of each run) and products to YNNPACK by default; for [runs, k] arrays with k = 10 its
#: own loops are faster: about 1.4x on the whole testbed, with bit-identical results.
COMPILER_OPTIONS: dict[str, Any] = {"xla_cpu_experimental_ynn_fusion_type": ""}


@struct.dataclass
class TestbedCurves:
    """What one jitted testbed call returns (device arrays)."""

    __repr__ = summary_repr

    mean_reward: jax.Array
    """[steps] reward at each step, averaged over the runs (Figure 2.2, top)."""
    optimal_action_rate: jax.Array
    """[steps] fraction of runs whose pull was an optimal arm (Figure 2.2, bottom)."""
    late_reward: jax.Array
    """[runs] each run's mean reward over the last `last` steps."""
    late_optimal: jax.Array
    """[runs] each run's fraction of optimal pulls over the last `last` steps."""


@dataclasses.dataclass(frozen=True)
class TestbedResult:
    """Curves of one agent on the testbed, on the host, with timings."""

    __repr__ = summary_repr

    config: AgentConfig
    """The agent that ran."""
    mean_reward: np.ndarray
    """[steps] average reward at each step."""
    optimal_action_rate: np.ndarray
    """[steps] fraction of runs that pulled an optimal arm at each step."""
    late_reward: np.ndarray
    """[runs] each run's mean reward over the last `last` steps."""
    late_optimal: np.ndarray
    """[runs] each run's optimal-pull fraction over the last `last` steps."""
    runs: int
    """Independent runs (bandit problems) averaged over."""
    steps: int
    """Pulls per run."""
    last: int
    """Length of the late window that `late_*` average over."""
    seconds: float
    """Wall time of the compiled call (compilation excluded)."""
    compile_seconds: float
    """Tracing and compilation for this call; 0.0 when a compiled program was reused."""

    @property
    def late_mean_reward(self) -> float:
        """Mean reward over the last `last` steps (the book's steps 901-1000)."""
        return float(np.mean(self.mean_reward[-self.last :], dtype=np.float64))

    @property
    def late_optimal_action_rate(self) -> float:
        """Fraction of optimal pulls over the last `last` steps."""
        return float(np.mean(self.optimal_action_rate[-self.last :], dtype=np.float64))

    @property
    def late_reward_stderr(self) -> float:
        """Standard error of `late_mean_reward` across runs."""
        return _stderr(self.late_reward)

    @property
    def late_optimal_stderr(self) -> float:
        """Standard error of `late_optimal_action_rate` across runs."""
        return _stderr(self.late_optimal)


def _stderr(per_run: np.ndarray) -> float:
    x = np.asarray(per_run, np.float64)
    return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else float("nan")


# ---------------------------------------------------------------------- the jittable core
def make_testbed(
    env: GaussianBandit, *, runs: int, steps: int, last: int | None = None
) -> Callable[[jax.Array, AgentConfig, BanditParams], TestbedCurves]:
    """The testbed as one pure function of `(key, config, env_params)` (Sutton & Barto 2.3).

    Each of `runs` runs resets `env` (drawing its own true arm values) and pulls `steps`
    times with a fresh agent of type `type(config)`. Jit it once per config type: the
    config's and params' fields may be traced (see `agents.traced_config` and
    `traced_params`). `run_testbed` compiles it with `COMPILER_OPTIONS`, which run faster
    on CPU: `jax.jit(testbed, compiler_options=COMPILER_OPTIONS)`.

    Args:
      env: the bandit environment (`bellmax.make("GaussianBandit-v0")[0]`).
      runs: number of independent runs (static).
      steps: pulls per run (static); truncation by `max_steps_in_episode` is ignored.
      last: length of the late window of `TestbedCurves.late_*` (static; default 100, or
        `steps` when fewer).

    Returns:
      `testbed(key, config, env_params) -> TestbedCurves`.
    """
    runs, steps, last = check_sizes(runs, steps, last)
    k = env.k

    def testbed(key: jax.Array, config: AgentConfig, env_params: BanditParams) -> TestbedCurves:
        k_reset, k_agent, k_first, k_steps = jax.random.split(key, 4)
        _, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, runs), env_params
        )
        agent = jax.vmap(init, in_axes=(0, None, None))(jax.random.split(k_agent, runs), k, config)
        env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))
        agent_act = jax.vmap(act, in_axes=(0, 0, None))
        agent_update = jax.vmap(update, in_axes=(0, 0, 0, None))
        late_start = steps - last

        # Each iteration pulls the arm chosen at the end of the previous one, learns, then
        # chooses the next arm. Carrying the action through the loop makes XLA store it;
        # computed and used in one iteration, it (and the random draws behind it) would be
        # recomputed inside every fused consumer, k times over for the [runs, k] updates.
        def body(carry, t):
            env_state, agent, action, late_r, late_o = carry
            k_env, k_act = jax.random.split(jax.random.fold_in(k_steps, t), (2, runs))
            _, env_state, reward, _, _, info = env_step(k_env, env_state, action, env_params)
            agent = agent_update(agent, action, reward, config)
            next_action = agent_act(k_act, agent, config)
            optimal = info["is_optimal"].astype(jnp.float32)
            late = t >= late_start
            late_r = late_r + jnp.where(late, reward, 0.0)
            late_o = late_o + jnp.where(late, optimal, 0.0)
            carry = (env_state, agent, next_action, late_r, late_o)
            return carry, (jnp.mean(reward), jnp.mean(optimal))

        first = agent_act(jax.random.split(k_first, runs), agent, config)
        zeros = jnp.zeros((runs,), jnp.float32)
        (_, _, _, late_r, late_o), (mean_reward, optimal_rate) = jax.lax.scan(
            body, (env_state, agent, first, zeros, zeros), jnp.arange(steps)
        )
        return TestbedCurves(mean_reward, optimal_rate, late_r / last, late_o / last)

    return testbed


# ---------------------------------------------------------------------- host-side drivers
#: The late window's length when none is given: the book's 100 steps, or the whole run
#: when it is shorter.
DEFAULT_LAST = 100


def check_sizes(
    runs: Any, steps: Any, last: Any = None, *, options: bool = False
) -> tuple[int, int, int]:
    """The testbed's sizes, checked: `(runs, steps, last)`, `last` None meaning
    `min(DEFAULT_LAST, steps)`.

    Args:
      runs, steps, last: as for `run_testbeds`.
      options: name them in the errors as `bellmax bandit`'s options (`--steps 50`), not
        as keyword arguments (`steps=50`).

    Raises:
      TypeError: a size that is not an integer.
      ValueError: a size below 1, or `last > steps`; the message has a value that works.
    """

    def show(name: str, value: Any) -> str:
        return f"--{name} {value}" if options else f"{name}={value}"

    def count(name: str, value: Any, example: int) -> int:
        who, fix = f"--{name}" if options else name, f"pass e.g. {show(name, example)}"
        try:
            return check_int(value, who, low=1)
        except TypeError:
            raise TypeError(f"{who} must be an integer, got {value!r}; {fix}.") from None
        except ValueError:
            raise ValueError(f"{who} must be >= 1, got {value}; {fix}.") from None

    runs = count("runs", runs, 2000)
    steps = count("steps", steps, 1000)
    if last is None:
        return runs, steps, min(DEFAULT_LAST, steps)
    last = count("last", last, min(DEFAULT_LAST, steps))
    if last > steps:
        raise ValueError(
            f"{show('last', last)} is longer than the run ({show('steps', steps)}); pass "
            f"{show('last', steps)} or less (left out, it is {DEFAULT_LAST}, or the whole run "
            "when shorter)."
        )
    return runs, steps, last


def testbed_key(seed: int) -> jax.Array:
    """The PRNG key `run_testbed` uses for `seed` (implementation `DEFAULT_KEY_IMPL`).

    Args:
      seed: an integer in `0 .. bellmax.core.checks.MAX_SEED`.

    Returns:
      A typed JAX key.

    Raises:
      TypeError: `seed` is not an integer.
      ValueError: `seed` is out of range.
    """
    try:
        seed = check_seed(seed, "seed")
    except (TypeError, ValueError) as e:  # the shared message, with a seed that works
        raise type(e)(f"{str(e).removesuffix('.')}; pass e.g. seed=0.") from None
    return jax.random.key(seed, impl=DEFAULT_KEY_IMPL)


def traced_params(params: BanditParams) -> BanditParams:
    """`params` with every field a typed 0-d array, so different values share one program.

    Args:
      params: the testbed's `BanditParams`.

    Returns:
      The same values as float32 / int32 / bool arrays.
    """

    def convert(x: Any, real: bool) -> jax.Array:
        if isinstance(x, bool | np.bool_):
            return jnp.asarray(x, jnp.bool_)
        if isinstance(x, numbers.Integral) and not real:
            return jnp.asarray(x, jnp.int32)
        if isinstance(x, numbers.Real):
            return jnp.asarray(x, jnp.float32)
        return jnp.asarray(x)

    # a float field given an int (mean_offset=4) is float32 too: one program for both
    real = {f.name: isinstance(f.default, float) for f in dataclasses.fields(params)}
    return params.replace(**{k: convert(getattr(params, k), r) for k, r in real.items()})


def _aval_signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple((np.shape(x), jnp.asarray(x).dtype) for x in leaves))


#: Compiled testbeds, keyed by everything static (env, sizes, config type, shapes, key type);
#: the last `_COMPILED_KEPT` used (each ~7 MB: a sweep over the horizon kept every one).
_COMPILED: dict[tuple, Any] = {}
_COMPILED_KEPT = 16


def _compiled(env, runs, steps, last, key, config, params) -> tuple[Any, float]:
    """The compiled testbed for these static choices, and the seconds spent compiling it."""
    signature = (
        env,
        runs,
        steps,
        last,
        jax.typeof(key),
        _aval_signature(config),
        _aval_signature(params),
    )

    def make() -> Any:
        testbed = make_testbed(env, runs=runs, steps=steps, last=last)
        try:
            lowered = jax.jit(testbed, compiler_options=COMPILER_OPTIONS).lower(key, config, params)
            return lowered.compile()
        except Exception as e:  # an XLA without these options: compile with its defaults
            if not any(option in str(e) for option in COMPILER_OPTIONS):
                raise
            return jax.jit(testbed).lower(key, config, params).compile()

    hit = signature in _COMPILED
    t0 = time.perf_counter()
    compiled = recently_used(_COMPILED, signature, make, _COMPILED_KEPT)
    return compiled, 0.0 if hit else time.perf_counter() - t0


def _prepare(env, env_params, key, seed):
    if env is None:
        env, default_params = make("GaussianBandit-v0")
        env_params = default_params if env_params is None else env_params
    if not isinstance(env, GaussianBandit):
        raise TypeError(
            f"the testbed runs on a GaussianBandit, got {type(env).__name__}; pass "
            "env=bellmax.make('GaussianBandit-v0')[0] or GaussianBandit(k)."
        )
    if env_params is None:
        env_params = env.default_params
    env.check_params(env_params)
    if key is None:
        key = testbed_key(seed)
    elif np.shape(key) == (2,) and getattr(key, "dtype", None) == np.uint32:
        # a raw key, jax.random.PRNGKey(s)'s (threefry's data): as every key-taking function
        key = jax.random.wrap_key_data(jnp.asarray(key), impl="threefry2x32")
    elif not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)):
        raise TypeError(
            f"key must be a typed PRNG key from jax.random.key(...), got {key!r}; "
            "or pass seed=... instead."
        )
    return env, traced_params(env_params), key


def run_testbeds(
    configs: Sequence[AgentConfig],
    *,
    runs: int = 2000,
    steps: int = 1000,
    seed: int = 0,
    key: jax.Array | None = None,
    env: GaussianBandit | None = None,
    env_params: BanditParams | None = None,
    last: int | None = None,
) -> list[TestbedResult]:
    """Run several agents on the same testbed (Sutton & Barto 2.3, Figures 2.2-2.5).

    Every config sees the same key (the same bandit problems). Each config type compiles
    once per process; configs of one type differing only in their numbers reuse it.

    Args:
      configs: agent configs (`EpsilonGreedy`, `UCB`, `GradientBandit`, `ThompsonSampling`).
      runs: independent runs (the book: 2000).
      steps: pulls per run (the book: 1000).
      seed: random seed, used when `key` is None (`testbed_key(seed)`: not the stream of
        `jax.random.key(seed)`).
      key: a PRNG key (overrides `seed`): a typed key, or `jax.random.PRNGKey(s)`'s raw
        threefry data.
      env: the bandit (default: `bellmax.make("GaussianBandit-v0")`, 10 arms).
      env_params: its `BanditParams` (default: the env's; e.g. `mean_offset=4.0` for
        Figure 2.5).
      last: the late window, in steps, of `late_mean_reward` etc. (default: the book's
        100, or `steps` when fewer).

    Returns:
      One `TestbedResult` per config, in order.
    """
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Sequence):
        raise TypeError(
            f"configs must be a list of agent configs, got {type(configs).__name__}; "
            "pass e.g. [EpsilonGreedy(epsilon=0.1)] (or use run_testbed for one)."
        )
    if not configs:
        raise ValueError("configs is empty; pass at least one agent config.")
    runs, steps, last = check_sizes(runs, steps, last)
    for config in configs:
        check_config(config)
    env, params, key = _prepare(env, env_params, key, seed)
    results = []
    for config in configs:
        traced = traced_config(config)
        compiled, compile_s = _compiled(env, runs, steps, last, key, traced, params)
        t0 = time.perf_counter()
        curves = jax.block_until_ready(compiled(key, traced, params))
        seconds = time.perf_counter() - t0
        curves = jax.device_get(curves)
        results.append(
            TestbedResult(
                config=config,
                mean_reward=np.asarray(curves.mean_reward),
                optimal_action_rate=np.asarray(curves.optimal_action_rate),
                late_reward=np.asarray(curves.late_reward),
                late_optimal=np.asarray(curves.late_optimal),
                runs=runs,
                steps=steps,
                last=last,
                seconds=seconds,
                compile_seconds=compile_s,
            )
        )
    return results


def run_testbed(config: AgentConfig, **kwargs: Any) -> TestbedResult:
    """Run one agent on the testbed; keyword arguments as for `run_testbeds`.

    Args:
      config: the agent.
      **kwargs: `runs`, `steps`, `seed`, `key`, `env`, `env_params`, `last`.

    Returns:
      Its `TestbedResult`.
    """
    known = [name for name in inspect.signature(run_testbeds).parameters if name != "configs"]
    unknown = sorted(set(kwargs) - set(known))
    if unknown:  # named here, not as run_testbeds()'s
        raise TypeError(
            f"run_testbed() got unexpected keyword argument(s) {unknown}; it takes {known}."
        )
    return run_testbeds([config], **kwargs)[0]
