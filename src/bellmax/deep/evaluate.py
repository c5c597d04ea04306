"""Evaluate a policy for a number of episodes on any environment, inside one `jit`.

    result = evaluate(act_fn, params, "CartPole-v1", key, episodes=10)
    result.mean_return                         # float
    batch = evaluate_batch(act_fn, stacked, "CartPole-v1", jax.random.split(key, n))
    batch.returns                              # [n, 10]: n policies in one program

`act_fn(params, obs [N, ...], key) -> action [N, ...]` is any policy (for an algorithm module
`functools.partial(ppo.act, config=config, venv=venv)`; reuse one such object so that repeated
evaluations share one compiled program). Episodes are spread evenly over the `N` environments
(environment `i` runs `episodes // N` or one more, then idles), so short episodes are not
over-represented as they would be by taking the first `episodes` to finish (a bias of
"run N envs until K episodes ended" evaluation). The loop is a `lax.while_loop` that stops as
soon as every environment has finished its share, so it works both for JAX environments and,
step by step through `io_callback`, for Gymnasium ids (`HostCallbackVectorEnv`; not vmappable).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.caches import recently_used
from bellmax.core.checks import check_int, check_prng_key
from bellmax.core.display import summary_repr
from bellmax.core.program_cache import load_or_export, program_cache_dir
from bellmax.core.xla import RUN_SOMETIMES, cpu_compile_options, jit_lightly
from bellmax.envs.environment import check_action_type
from bellmax.envs.vector import VectorEnv, make_vector_env

ActFn = Callable[[Any, jax.Array, jax.Array], jax.Array]

#: The default cap on an evaluation's vector steps (episodes still running then are cut off).
MAX_STEPS = 10_000


@struct.dataclass
class EvalResult:
    """Returns and lengths of evaluation episodes."""

    __repr__ = summary_repr

    returns: jax.Array
    """`[episodes]` undiscounted return of each episode."""
    lengths: jax.Array
    """`[episodes]` number of steps of each episode."""
    completed: jax.Array
    """`[episodes]` false where `max_steps` ran out first (return and length so far: 0 for
    an episode whose environment was still in its previous one)."""

    @property
    def mean_return(self) -> jax.Array:
        """Mean of `returns` over the episodes."""
        return jnp.mean(self.returns)


def _episode_counts(episodes: int, num_envs: int) -> np.ndarray:
    return episodes // num_envs + (np.arange(num_envs) < episodes % num_envs).astype(np.int32)


def run_episodes(
    act_fn: ActFn,
    venv: VectorEnv,
    episodes: int,
    max_steps: int | jax.Array,
    params: Any,
    key: jax.Array,
) -> EvalResult:
    """The un-jitted evaluation loop (`evaluate` jits it); arguments as in `evaluate`."""
    n = venv.num_envs
    targets_np = _episode_counts(episodes, n)
    k = int(targets_np.max())
    targets = jnp.asarray(targets_np)
    k_reset, key = jax.random.split(key)
    obs, vstate = venv.reset(k_reset)
    rows = jnp.arange(n)

    def cond(carry):
        *_, count, _, _, t = carry
        return (t < max_steps) & jnp.any(count < targets)

    def body(carry):
        key, obs, vstate, count, rets, lens, t = carry
        key, k_act, k_step = jax.random.split(key, 3)
        action = act_fn(params, obs, k_act)
        _check_actions(action, n, venv.action_space)  # (at trace time: once per program)
        out = venv.step(k_step, vstate, action)
        record = out.done & (count < targets)
        slot = jnp.where(record, count, k)  # k is out of range: dropped
        rets = rets.at[rows, slot].set(out.episode_return, mode="drop")
        lens = lens.at[rows, slot].set(out.episode_length, mode="drop")
        count = count + record.astype(jnp.int32)
        return key, out.obs, out.state, count, rets, lens, t + 1

    carry = (
        key,
        obs,
        vstate,
        jnp.zeros(n, jnp.int32),
        jnp.zeros((n, k), jnp.float32),
        jnp.zeros((n, k), jnp.int32),
        jnp.zeros((), jnp.int32),
    )
    _, _, vstate, count, rets, lens, _ = jax.lax.while_loop(cond, body, carry)
    # An episode still running when max_steps ran out: report it as far as it got.
    unfinished = count < targets
    slot = jnp.where(unfinished, count, k)
    rets = rets.at[rows, slot].set(vstate.episode_return, mode="drop")
    lens = lens.at[rows, slot].set(vstate.episode_length, mode="drop")
    done_mask = jnp.arange(k)[None, :] < count[:, None]
    env_idx, slot_idx = np.nonzero(np.arange(k)[None, :] < targets_np[:, None])
    return EvalResult(
        returns=rets[env_idx, slot_idx],
        lengths=lens[env_idx, slot_idx],
        completed=done_mask[env_idx, slot_idx],
    )


def _check_actions(action: Any, n: int, space: Any) -> None:
    """`act_fn`'s output, at trace time: one action per environment, of the space's type (a
    tuple, a float for a Discrete space or a wrong shape reached the environment, which
    read them as some other action, silently, or failed deep in JAX)."""
    who = "evaluate's act_fn"
    if not (hasattr(action, "shape") and hasattr(action, "dtype")):
        raise TypeError(
            f"{who} must return an array of actions, one per environment ([{n}, ...]), got "
            f"{type(action).__name__}; return the action alone (not (action, extra))."
        )
    if action.ndim == 0 or action.shape[0] != n:
        raise ValueError(
            f"{who} returned actions of shape {tuple(action.shape)} for {n} environments; it "
            f"gets the observations of all {n} ([{n}, ...]) and must return one action for "
            "each, along the first axis."
        )
    check_action_type(action, action.dtype, tuple(action.shape[1:]), space, who)


#: The evaluation programs kept, the most recently used (`_jitted`; the driver also asks
#: from its background compile thread).
_PROGRAMS: dict[tuple, Callable] = {}
_PROGRAMS_KEPT = 32
_PROGRAMS_LOCK = threading.Lock()


def _jitted(fn: Callable, act_fn: Callable, venv: Any, episodes: int) -> Callable:
    """`fn` (an evaluation loop) for this policy function, environment and episode count,
    jitted, compiled lightly on CPU (`RUN_SOMETIMES`: an evaluation runs a few times per
    training run, so the time saved compiling outweighs the little it loses running). Every
    evaluation program gets the same options, so that a policy evaluated alone and in a batch
    gets the same episodes: XLA's lighter options (level 0, its older emitters) round
    differently, enough to change a CartPole episode's length.

    The last `_PROGRAMS_KEPT` are kept. (One module-level jit with these as static
    arguments kept every program for the life of the process: a notebook cell that evaluates
    a fresh lambda leaked ~12 MB each time it ran.)"""

    def make() -> Callable:
        return jit_lightly(functools.partial(fn, act_fn, venv, episodes), RUN_SOMETIMES)

    with _PROGRAMS_LOCK:
        return recently_used(_PROGRAMS, (fn, act_fn, venv, episodes), make, _PROGRAMS_KEPT)


def _program(
    fn: Callable, act_fn: Callable, venv: Any, episodes: int, keep_as: Any, args: tuple
) -> Callable:
    """`_jitted(fn, act_fn, venv, episodes)`, or with `keep_as` (the parts that, with
    bellmax's code, decide `act_fn` and `venv`) the program kept lowered on disk
    (`bellmax.core.program_cache`; kept now if new), compiled with the same options, where
    it fits `args`."""
    if keep_as is None or program_cache_dir() is None:
        return _jitted(fn, act_fn, venv, episodes)
    key = ("kept", fn, act_fn, venv, episodes, tuple(keep_as))
    with _PROGRAMS_LOCK:
        entry = _PROGRAMS.get(key)
    if entry is None:  # (outside the lock: the driver's background thread compiles here)
        kept = load_or_export(
            (*keep_as, "evaluate", fn.__name__, episodes),
            functools.partial(fn, act_fn, venv, episodes),
            lambda: args,
        )
        compiled = None
        if kept is not None:
            compiled = kept.compiled(cpu_compile_options(RUN_SOMETIMES))
        made = (kept, compiled)
        with _PROGRAMS_LOCK:  # (another thread's, if it made one meanwhile)
            entry = recently_used(_PROGRAMS, key, lambda: made, _PROGRAMS_KEPT)
    kept, compiled = entry
    if kept is None or not kept.fits(*args):
        return _jitted(fn, act_fn, venv, episodes)
    return compiled


def evaluate(
    act_fn: ActFn,
    params: Any,
    env: Any,
    key: jax.Array,
    *,
    episodes: int = 10,
    num_envs: int | None = None,
    max_steps: int = MAX_STEPS,
    env_params: Any = None,
    keep_as: Any = None,
) -> EvalResult:
    """Run `episodes` episodes of the policy `act_fn(params, obs, key)` and collect their returns.

    Args:
      act_fn: `(params, obs [N, ...], key) -> action [N, ...]` (deterministic or not).
      params: the policy's parameters (any pytree).
      env: an env id (bellmax or Gymnasium, e.g. `"gymnasium:CartPole-v1"`), an `Environment`,
        a gymnax-API environment or a `VectorEnv`.
      key: PRNG key for resets, environment noise and `act_fn`.
      episodes: number of episodes to evaluate (>= 1).
      num_envs: environments stepped in parallel (default: `episodes`; a `VectorEnv` brings
        its own).
      max_steps: cap on the vector steps of the whole evaluation.
      env_params: parameters for an environment object.
      keep_as: as in `evaluate_batch`.

    Returns:
      `EvalResult(returns [episodes], lengths [episodes], completed [episodes])`.
    """
    venv, episodes, max_steps = _checked(act_fn, env, episodes, num_envs, max_steps, env_params)
    check_prng_key(key, "evaluate")
    args = (max_steps, params, key)
    if venv.is_host:
        keep_as = None  # (host callbacks: no program to keep)
    return _program(run_episodes, act_fn, venv, episodes, keep_as, args)(*args)


def _run_batch(act_fn, venv, episodes, max_steps, params, keys) -> EvalResult:
    def one(p, k):
        return run_episodes(act_fn, venv, episodes, max_steps, p, k)

    return jax.vmap(one)(params, keys)


def _run_one(act_fn, venv, episodes, max_steps, params, keys) -> EvalResult:
    """`_run_batch` for a batch of one policy (a one-seed training run's), without the
    `vmap`, which still batches every operation: PPO's CartPole evaluation's first call
    (tracing, lowering and compiling at level 1) takes 1.5 s instead of 2.1-2.4 on one AMD
    EPYC core. (The driver's `_one_seed` does the same for a training chunk.)"""
    params, key = jax.tree.map(lambda x: x[0], (params, keys))
    out = run_episodes(act_fn, venv, episodes, max_steps, params, key)
    return jax.tree.map(lambda x: x[None], out)


def evaluate_batch(
    act_fn: ActFn,
    params: Any,
    env: Any,
    keys: jax.Array,
    *,
    episodes: int = 10,
    num_envs: int | None = None,
    max_steps: int = MAX_STEPS,
    env_params: Any = None,
    keep_as: Any = None,
) -> EvalResult:
    """`evaluate` for a batch of policies at once, in one vmapped program.

    `params` carries a leading batch axis (the seeds of a vmapped training run, say) and `keys`
    holds one PRNG key per policy. Row `i` of each field is what `evaluate(act_fn, params[i],
    env, keys[i])` returns, up to float rounding (the batched program may add in another
    order). It is one loop over the episodes' steps instead of one per policy: on an H200 the
    evaluations of a 16-seed SAC run on Pendulum-v1 took 1.4 s instead of 17, on a 2-core CPU
    one evaluation 0.025 s instead of 0.18. A batch of one policy runs without the `vmap`
    (the same numbers, a program that compiles faster). A Gymnasium env (host callbacks, which
    cannot be vmapped) is evaluated one policy after another.

    Args:
      act_fn, env, episodes, num_envs, max_steps, env_params: as in `evaluate`.
      params: the policies' parameters, each leaf with the batch axis first.
      keys: `[batch]` PRNG keys (`jax.random.split(key, batch)`, or stacked `jax.random.key`s).
      keep_as: reprs that, with bellmax's own code, decide `act_fn` and `env` (the training
        driver's `program_identity`): the program is then kept lowered on disk and read back
        by later processes (`bellmax.core.program_cache`). None (the default) for anything
        else: code from outside bellmax is not in that cache's key.

    Returns:
      `EvalResult(returns, lengths, completed)`, each `[batch, episodes]`.

    Raises:
      ValueError: the leaves of `params` and `keys` disagree on the batch size, or `keys` is
        no one-dimensional array of keys.
    """
    venv, episodes, max_steps = _checked(act_fn, env, episodes, num_envs, max_steps, env_params)
    keys = jnp.asarray(keys)
    if not jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key) or keys.ndim != 1:
        raise ValueError(
            f"keys must be a one-dimensional array of PRNG keys, one per policy (e.g. "
            f"jax.random.split(key, batch)); got dtype {keys.dtype} and shape {keys.shape}."
        )
    sizes = {int(jnp.shape(x)[0]) if jnp.ndim(x) else None for x in jax.tree.leaves(params)}
    if sizes != {keys.shape[0]}:
        raise ValueError(
            f"params must carry the batch axis first on every leaf, with {keys.shape[0]} "
            f"policies as in keys; the leaves' leading sizes are {sorted(sizes, key=str)}."
        )
    if not venv.is_host:
        run = _run_batch if keys.shape[0] > 1 else _run_one
        args = (max_steps, params, keys)
        return _program(run, act_fn, venv, episodes, keep_as, args)(*args)
    one = _jitted(run_episodes, act_fn, venv, episodes)
    rows = [
        one(max_steps, jax.tree.map(lambda x, i=i: x[i], params), k) for i, k in enumerate(keys)
    ]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *rows)


def _checked(act_fn, env, episodes, num_envs, max_steps, env_params):
    """`evaluate`'s arguments checked: `(venv, episodes, max_steps as a NumPy int32)`."""
    episodes = check_int(episodes, "episodes", low=1)
    max_steps = check_int(max_steps, "max_steps", low=1, high=2**31 - 1)  # int32 on device
    if num_envs is not None:
        num_envs = check_int(num_envs, "num_envs", low=1)
    if isinstance(env, VectorEnv):
        if num_envs is not None and num_envs != env.num_envs:
            raise ValueError(
                f"num_envs={num_envs} but the given VectorEnv has {env.num_envs} environments; "
                "leave num_envs out or pass an env id."
            )
        venv = env
    else:
        venv = make_vector_env(env, num_envs=num_envs or episodes, env_params=env_params)
    if not callable(act_fn):
        raise TypeError(f"act_fn must be callable (params, obs, key) -> action, got {act_fn!r}.")
    # a NumPy scalar: `jnp.int32` would compile a conversion program in a fresh process
    return venv, episodes, np.int32(max_steps)
