"""Transitions `(x, u, x')` for system identification, from any environment id.

`collect_transitions(env_id, n)` steps a bellmax environment in one jitted `lax.scan`, or a
Gymnasium one (any id Gymnasium knows, `module:EnvName-v0` included; `gymnasium:CartPole-v1`
is Gymnasium's own CartPole) on the host through the bridge `bellmax.envs.gymnasium`. Every
transition is a true one: `x'` is the observation the step produced, before any reset, and
the next transition starts from the reset observation, so no transition crosses an episode
boundary. Observations and actions are stored as the environment gives them; a parametric
model maps them to its state and input (`ParametricModel.to_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int, check_seed
from bellmax.core.display import summary_repr
from bellmax.core.errors import DivergenceError
from bellmax.envs import spaces
from bellmax.envs.registry import resolve_env

__all__ = [
    "Transitions",
    "check_finite_rollouts",
    "check_policy_return",
    "collect_transitions",
    "concatenate",
    "make_transitions",
    "split_transitions",
]


@struct.dataclass
class Transitions:
    """A data set of `N` transitions (host-side numpy arrays). Build it with
    `make_transitions` or `collect_transitions`, which validate it."""

    __repr__ = summary_repr

    x: np.ndarray
    """`[N, obs_dim]` observations before the step."""
    u: np.ndarray
    """`[N, action_dim]` actions (integers for discrete action spaces)."""
    x_next: np.ndarray
    """`[N, obs_dim]` observations after the step (never a reset observation)."""
    discrete: bool = struct.field(pytree_node=False, default=False)
    """Whether the actions are discrete indices (CartPole-v1's 0/1)."""
    env_id: str | None = struct.field(pytree_node=False, default=None)
    """Where the data came from, if known."""

    @property
    def num_transitions(self) -> int:
        """`N`."""
        return int(np.shape(self.x)[0])

    def __len__(self) -> int:
        return self.num_transitions


def make_transitions(
    x: Any,
    u: Any,
    x_next: Any,
    *,
    discrete: bool | None = None,
    valid: Any = None,
    env_id: str | None = None,
) -> Transitions:
    """Validated transitions from arrays.

    Args:
      x: `[N, obs_dim]` observations.
      u: `[N]` or `[N, action_dim]` actions.
      x_next: `[N, obs_dim]` next observations.
      discrete: whether `u` holds discrete action indices; inferred from an integer dtype.
      valid: optional `[N]` boolean mask; rows where it is False are dropped (e.g. steps
        whose `x_next` is a reset observation in an auto-resetting rollout).
      env_id: the source, for the record.

    Returns:
      `Transitions` with `u` of shape `[N, action_dim]`.

    Raises:
      ValueError: mismatched shapes, no transitions, or non-finite values (the message
        names the first bad row).
    """
    x = np.asarray(x)
    x_next = np.asarray(x_next)
    u = np.asarray(u)
    if x.ndim != 2:
        raise ValueError(
            f"x must be [N, obs_dim] (one observation per row), got shape {x.shape}; "
            "reshape a single trajectory with x.reshape(-1, obs_dim)."
        )
    if x_next.shape != x.shape:
        raise ValueError(
            f"x_next has shape {x_next.shape} but x has {x.shape}; they must match row for row."
        )
    if u.ndim == 1:
        u = u[:, None]
    if u.ndim != 2 or u.shape[0] != x.shape[0]:
        raise ValueError(
            f"u must be [N] or [N, action_dim] with N = {x.shape[0]} (one action per "
            f"transition), got shape {u.shape}."
        )
    if valid is not None:
        valid = np.asarray(valid, dtype=bool).reshape(-1)
        if valid.shape != (x.shape[0],):
            raise ValueError(f"valid must be a [N] = [{x.shape[0]}] mask, got {valid.shape}.")
        x, u, x_next = x[valid], u[valid], x_next[valid]
    if x.shape[0] == 0:
        raise ValueError("no transitions: collect some with collect_transitions(env_id, n).")
    if discrete is None:
        discrete = bool(np.issubdtype(u.dtype, np.integer) or u.dtype == bool)
    for name, arr in (("x", x), ("u", u), ("x_next", x_next)):
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}.")
        finite = np.isfinite(arr.astype(np.float64)).all(axis=1)
        if not finite.all():
            rows = np.flatnonzero(~finite)
            raise ValueError(
                f"transitions contain non-finite values (NaN or inf) in {name}, rows "
                f"{rows[:5].tolist()}{' ...' if rows.size > 5 else ''} of {x.shape[0]}; drop "
                "them with make_transitions(..., valid=mask) or fix the data source."
            )
    return Transitions(x=x, u=u, x_next=x_next, discrete=bool(discrete), env_id=env_id)


def check_finite_rollouts(
    states: Any, rewards: Any, env_id: str, where: str, *, consequence: str
) -> None:
    """Raise `DivergenceError` where an environment's states or rewards are NaN or inf.

    The one check of the data a model-learning loop got from the environment, before it fits
    anything to it (`bellmax.models.gps.check_rollouts` for LQR-FLM and MD-GPS,
    `bellmax.models.mbrl`'s trials): the message names the first bad state and the first bad
    reward in time order, and the rollout where there are several.

    Args:
      states: `[M, T + 1, ...]` the states (or observations) of `M` rollouts, the initial
        one first.
      rewards: `[M, T]` their rewards (or costs: only finiteness matters).
      env_id: the environment, for the message.
      where: what made the rollouts, for the message (`"LQR-FLM iteration 3"`, `"trial 2"`).
      consequence: what cannot be done with them, after "so" (`"no local model can be
        fitted"`).

    Raises:
      DivergenceError: a state or a reward is not finite.
    """
    what = _first_nonfinite(states, rewards, "observation")
    if what:
        raise DivergenceError(
            f"{where} on {env_id!r}: the environment's {what} went NaN or inf, so "
            f"{consequence}. Check the environment: its rewards and observations must stay "
            "finite for actions within its bounds."
        )


def check_policy_return(
    ret: float,
    states: Any,
    params: Any,
    env_id: str,
    where: str,
    *,
    fit_diverged: str,
    losses: Any = None,
) -> None:
    """Raise `DivergenceError` when a policy's return, run alone on the environment, is NaN or
    inf, saying why: its fit diverged, or the environment did under its actions.

    The one diagnosis for the model-based loops that train a neural policy (MD-GPS's S-step,
    policy search through a model): the policy's weights (and its fit's `losses`, if given)
    are not finite, so the fit is to blame (`fit_diverged` says how and what to lower); else
    they are finite and the environment's state went NaN or inf (named as
    `check_finite_rollouts` names it: `the initial one`, `first after step 3`), or, the states
    all finite, its reward did.

    Args:
      ret: the policy's return, run alone.
      states: `[T + 1, ...]` the states of that run, the initial one first.
      params: the policy's weights (a pytree).
      env_id: the environment, for the message.
      where: what ran the policy, for the message (`"MD-GPS iteration 3"`, `"round 2"`).
      fit_diverged: the message's end when the weights (or losses) are not finite: what
        diverged and the fix.
      losses: the fit's losses, if any (a non-finite one blames the fit too).

    Raises:
      DivergenceError: `ret` is not finite.
    """
    if np.isfinite(ret):
        return
    head = f"{where} on {env_id!r}: the policy's return alone is {ret}"
    leaves = jax.tree.leaves(params) + ([] if losses is None else [losses])
    if not all(bool(jnp.isfinite(w).all()) for w in leaves):
        raise DivergenceError(f"{head}: {fit_diverged}")
    what = _first_nonfinite(np.asarray(states)[None], None, "state") or "reward"
    raise DivergenceError(
        f"{head}, yet its weights are finite: the environment's {what} went NaN or inf under "
        "its actions. Check the environment: its rewards and states must stay finite for any "
        "action."
    )


def _first_nonfinite(states: Any, rewards: Any, noun: str) -> str:
    """The first non-finite state and reward of `[M, T + 1, ...]` states (called `noun`) and
    `[M, T]` rewards (None: not known), in time order, as the messages name them:
    `observation (first after step 3, rollout 2) and then its reward (first at step 4, ...)`;
    "" if all are finite."""
    found = []  # (step, what)
    X = np.asarray(states)

    def rollout(i: int) -> str:  # named only where there are several
        return f", rollout {i + 1}" if X.shape[0] > 1 else ""

    bad = ~np.isfinite(X.reshape(*X.shape[:2], -1)).all(axis=2)
    if bad.any():
        t, i = np.argwhere(bad.T)[0]
        at = "the initial one" if t == 0 else f"first after step {t}"
        found.append((t, f"{noun} ({at}{rollout(i)})"))
    bad = np.zeros(0, bool) if rewards is None else ~np.isfinite(np.asarray(rewards))
    if bad.any():
        t, i = np.argwhere(bad.T)[0]
        found.append((t + 1, f"reward (first at step {t + 1}{rollout(i)})"))
    return " and then its ".join(text for _, text in sorted(found))


def concatenate(*parts: Transitions) -> Transitions:
    """Several data sets as one (same observation layout and action type)."""
    if not parts or not all(isinstance(p, Transitions) for p in parts):
        raise TypeError("concatenate needs one or more Transitions.")
    first = parts[0]
    for p in parts[1:]:
        if p.x.shape[1] != first.x.shape[1] or p.u.shape[1] != first.u.shape[1]:
            raise ValueError(
                f"cannot concatenate transitions with observation/action dims "
                f"{first.x.shape[1]}/{first.u.shape[1]} and {p.x.shape[1]}/{p.u.shape[1]}."
            )
        if p.discrete != first.discrete:
            raise ValueError("cannot concatenate discrete-action and continuous-action data.")
    return Transitions(
        x=np.concatenate([p.x for p in parts]),
        u=np.concatenate([p.u for p in parts]),
        x_next=np.concatenate([p.x_next for p in parts]),
        discrete=first.discrete,
        env_id=first.env_id,
    )


def split_transitions(
    data: Transitions, test_fraction: float = 0.2, *, seed: int = 0
) -> tuple[Transitions, Transitions]:
    """A random split into `(train, test)` for held-out prediction errors.

    Args:
      data: the transitions.
      test_fraction: share of the transitions in the test set, in (0, 1).
      seed: seed of the permutation.

    Returns:
      `(train, test)`, each with at least one transition.
    """
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}; e.g. 0.2.")
    n = data.num_transitions
    n_test = round(n * float(test_fraction))
    if n_test < 1 or n_test >= n:
        raise ValueError(f"cannot split {n} transitions with test_fraction={test_fraction}.")
    perm = np.random.default_rng(seed).permutation(n)
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])

    def take(idx):
        return Transitions(
            x=data.x[idx],
            u=data.u[idx],
            x_next=data.x_next[idx],
            discrete=data.discrete,
            env_id=data.env_id,
        )

    return take(tr), take(te)


# ====================================================================== collection
#: Steps per compiled rollout chunk: every count of transitions reuses one program.
_CHUNK = 256


@partial(jax.jit, static_argnums=0)
def _reset(env, params, key):
    return env.reset(key, params)


@partial(jax.jit, static_argnums=(0, 2))
def _rollout_chunk(env, params, policy, carry, keys, random_actions):
    """`len(keys)` raw steps with manual resets; returns the carry and (obs, action, next_obs)."""

    def step(carry, inp):
        obs, state = carry
        k, a_random = inp
        ka, ks, kr = jax.random.split(k, 3)
        a = a_random if policy is None else jnp.asarray(policy(ka, obs), a_random.dtype)
        a = jnp.reshape(a, a_random.shape)
        obs2, state2, _, term, trunc, _ = env.step(ks, state, a, params)
        done = term | trunc
        obs_r, state_r = env.reset(kr, params)
        obs_n = jnp.where(done, obs_r, obs2)
        state_n = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_r, state2)
        return (obs_n, state_n), (obs, a, obs2)

    return jax.lax.scan(step, carry, (keys, random_actions))


def _collect_bellmax(env, params, n: int, seed: int, policy: Any) -> tuple[np.ndarray, ...]:
    key_reset, key_steps, key_actions = jax.random.split(jax.random.key(seed), 3)
    chunks = -(-n // _CHUNK)
    keys = jax.random.split(key_steps, chunks * _CHUNK).reshape(chunks, _CHUNK)
    space = env.action_space(params)  # concrete params: the random actions are drawn here
    actions = jax.vmap(space.sample)(jax.random.split(key_actions, chunks * _CHUNK))
    actions = actions.reshape(chunks, _CHUNK, *actions.shape[1:])
    carry = _reset(env, params, key_reset)
    outs = []
    for c in range(chunks):
        carry, out = _rollout_chunk(env, params, policy, carry, keys[c], actions[c])
        outs.append(out)
    obs, act, obs2 = (np.concatenate([np.asarray(o[i]) for o in outs])[:n] for i in range(3))
    return obs, act, obs2


def collect_transitions(
    env_id: str,
    num_transitions: int,
    *,
    seed: int = 0,
    policy: Callable[[jax.Array, Any], Any] | None = None,
    env_params: Any = None,
) -> Transitions:
    """Collect `(x, u, x')` from an environment, by default under a uniformly random policy.

    Args:
      env_id: a bellmax id (`CartPole-v1`, `CartPoleSwingUp-v0`, `Pendulum-v1`) or a Gymnasium
        one (`gymnasium:CartPole-v1` for Gymnasium's own, `module:EnvName-v0`).
      num_transitions: transitions to collect (episodes are reset as they end).
      seed: seed of the environment's resets and the random actions.
      policy: `policy(key, obs) -> action`; traceable for bellmax envs (it runs inside the
        jitted rollout), called on the host with numpy observations for Gymnasium ones.
      env_params: a bellmax env's `EnvParams` (e.g. changed masses); bellmax envs only.

    Returns:
      `Transitions` with `env_id` set.

    Raises:
      UnknownNameError: an id neither bellmax nor Gymnasium knows.
      ValueError: `num_transitions < 1`, or `env_params` given for a Gymnasium env.
    """
    num_transitions = check_int(num_transitions, "num_transitions", low=1)
    seed = check_seed(seed, "seed", owner="collect_transitions")
    made = resolve_env(env_id, num_envs=1, seed=seed, who="collect_transitions")
    if not made.is_host:  # a bellmax env
        params = made.params if env_params is None else env_params
        obs, act, obs2 = _collect_bellmax(made.env, params, int(num_transitions), int(seed), policy)
        discrete = bool(np.issubdtype(act.dtype, np.integer))
        return make_transitions(
            np.asarray(obs), act, np.asarray(obs2), discrete=discrete, env_id=env_id
        )
    if env_params is not None:
        raise ValueError(
            f"env_params only applies to bellmax environments, and {env_id!r} is Gymnasium's; "
            "pass keyword arguments of gymnasium.make through the bridge instead."
        )
    return _collect_host(made.host, env_id, int(num_transitions), seed, policy)


def _collect_host(vec: Any, env_id: str, n: int, seed: int, policy: Any) -> Transitions:
    # Optional dependency: the bridge imports gymnasium, so it loads only when a Gymnasium
    # environment is used (importing bellmax never imports gymnasium).
    from bellmax.envs.gymnasium import rollout_host

    try:
        vec.reset(seed=int(seed))
        if policy is None:

            def policy_fn(obs):
                return vec.sample_actions()

        else:
            keys = iter(jax.random.split(jax.random.key(seed), n))

            def policy_fn(obs):
                return np.asarray(policy(next(keys), obs[0]))[None]

        out = rollout_host(vec, policy_fn, n)
        discrete = isinstance(vec.action_space, spaces.Discrete)
    finally:
        vec.close()
    traj = out.trajectory  # [T, 1, ...]; next_obs is the true next observation
    flat = [np.asarray(a).reshape(n, -1) for a in (traj.obs, traj.action, traj.next_obs)]
    return make_transitions(flat[0], flat[1], flat[2], discrete=discrete, env_id=env_id)
