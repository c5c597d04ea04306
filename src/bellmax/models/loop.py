"""Identify, control, recollect, refit: system identification in the loop with MPC.

The iterative scheme of model-based control when the physics is unknown (Ljung 1999,
"System Identification", sec. 13 on identification for control; the DAgger-style
"recollect under the current policy" of Ross & Bagnell 2012, "Agnostic system identification
for model-based reinforcement learning"):

1. collect transitions on the real system under a uniformly random policy;
2. fit the parametric model (`bellmax.models.sysid.identify`);
3. build MPC (`bellmax.control.mpc`) on the identified model and run it on the real
   system, recording its transitions;
4. stop if the controller succeeded, else add that data, refit (warm-started from the last
   fit) and go to 3.

The real system is any environment id: a bellmax environment (run by the jitted
`closed_loop`) or a Gymnasium one (a host loop through the bridge `bellmax.envs.gymnasium`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.control.mpc import closed_loop, control_to_action, make_mpc
from bellmax.control.problems import cartpole_balance
from bellmax.core.checks import check_choice, check_int, check_number, check_seed, check_type
from bellmax.core.display import summary_repr
from bellmax.envs import spaces
from bellmax.envs.registry import resolve_env
from bellmax.models.data import Transitions, collect_transitions, concatenate, make_transitions
from bellmax.models.parametric import ParametricModel, get_model, model_for_env
from bellmax.models.sysid import FitResult, SysIdConfig, identify

__all__ = ["LoopConfig", "LoopResult", "LoopRound", "identify_and_control"]


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Knobs of the identify-and-control loop."""

    random_steps: int = 200
    """Random-policy transitions collected before the first fit."""
    max_rounds: int = 3
    """Identify-then-control rounds at most."""
    episodes: int = 1
    """Episodes of the controller on the real system per round."""
    max_episode_steps: int = 500
    """Steps per episode (CartPole-v1's limit); success means reaching it."""
    success_return: float | None = None
    """If set, a round succeeds when every episode's return reaches it; otherwise when every
    episode lasts `max_episode_steps` without terminating."""
    horizon: int = 25
    """MPC planning horizon in steps."""
    iterations: int = 3
    """iLQR/DDP iterations per control step."""
    method: str = "ilqr"
    """`"ilqr"` or `"ddp"`."""
    seed: int = 0
    """Seed of the random data and the episodes (round `k` uses `seed + k`, so runs of
    neighbouring seeds share rounds: for independent replicates space the seeds by more
    than `max_rounds`)."""
    sysid: SysIdConfig = dataclasses.field(default_factory=SysIdConfig)
    """Solver settings of the fits."""

    def __post_init__(self) -> None:
        owner = "LoopConfig"
        for name in (
            "random_steps",
            "max_rounds",
            "episodes",
            "max_episode_steps",
            "horizon",
            "iterations",
        ):
            object.__setattr__(self, name, check_int(getattr(self, name), name, owner=owner, low=1))
        object.__setattr__(self, "seed", check_seed(self.seed, "seed", owner=owner))
        if self.success_return is not None:
            value = check_number(self.success_return, "success_return", owner=owner)
            object.__setattr__(self, "success_return", value)
        check_choice(self.method, "method", ("ilqr", "ddp"), owner=owner)
        check_type(self.sysid, SysIdConfig, "sysid", owner=owner)


@dataclasses.dataclass(frozen=True)
class LoopRound:
    """One identify-then-control round."""

    __repr__ = summary_repr

    fit: FitResult
    """The fit used by this round's controller."""
    num_transitions: int
    """Transitions the fit used."""
    episode_returns: np.ndarray
    """Returns of the controller's episodes on the real system."""
    episode_lengths: np.ndarray
    """Their lengths."""
    success: bool
    """Whether the round met the success criterion."""


@dataclasses.dataclass(frozen=True)
class LoopResult:
    """What `identify_and_control` did."""

    __repr__ = summary_repr

    rounds: tuple[LoopRound, ...]
    """Every round, in order."""
    fit: FitResult
    """The last fit."""
    data: Transitions
    """All transitions collected (random ones first, then the controller's), with the
    model's states in place of the observations."""
    status: str
    """`succeeded` or `max_rounds` (the controller never met the criterion)."""

    @property
    def success(self) -> bool:
        """Whether the last round succeeded."""
        return self.status == "succeeded"


def _default_problem(model: ParametricModel, horizon: int) -> Callable[[Any], Any]:
    if model.name != "cartpole":
        raise ValueError(
            f"no default control problem for model {model.name!r}; pass problem_fn, e.g. "
            "lambda params: bellmax.control.pendulum_swingup(params, ...)."
        )
    return lambda params: cartpole_balance(params, horizon=horizon)


def _as_states(model: ParametricModel, data: Transitions) -> Transitions:
    """The same transitions with observations replaced by model states (one layout for all)."""
    return make_transitions(
        model.state_from_obs(data.x),
        data.u,
        model.state_from_obs(data.x_next),
        discrete=data.discrete,
        env_id=data.env_id,
    )


class _Episodes(NamedTuple):
    """The controller's episodes on the real system."""

    data: Transitions
    """Their transitions (model states), up to each termination."""
    returns: np.ndarray
    """`[episodes]` returns."""
    lengths: np.ndarray
    """`[episodes]` lengths in steps."""


def _run_bellmax(env, env_params, mpc, model, model_params, episodes, steps, seed) -> _Episodes:
    """Episodes of MPC on a bellmax env (jitted); transitions up to each termination."""
    parts, returns, lengths = [], [], []
    for e in range(episodes):
        out = closed_loop(
            env, env_params, mpc, jax.random.key(seed * 1000 + e), steps, model_params=model_params
        )
        states = np.asarray(out.states)
        term = np.asarray(out.terminated)
        n = int(np.argmax(term)) + 1 if term.any() else steps  # steps up to the termination
        parts.append(
            make_transitions(
                states[:n],
                np.asarray(out.actions)[:n],
                states[1 : n + 1],
                discrete=bool(np.issubdtype(np.asarray(out.actions).dtype, np.integer)),
            )
        )
        returns.append(float(np.asarray(out.rewards)[:n].sum()))
        lengths.append(n)
    return _Episodes(concatenate(*parts), np.asarray(returns), np.asarray(lengths))


def _run_host(vec, mpc, model, model_params, episodes, steps, seed) -> _Episodes:
    """Episodes of MPC on a Gymnasium env through the bridge; the true transitions."""
    space = vec.action_space
    xs, us, xns, returns, lengths = [], [], [], [], []
    try:
        obs = vec.reset(seed=int(seed))
        for _ in range(episodes):
            state = mpc.init()
            total, t = 0.0, 0
            while True:
                x = jnp.asarray(model.state_from_obs(obs[0]), jnp.float32)
                u, state = mpc.step(state, x, model_params)
                a = np.asarray(control_to_action(u, space, mpc.u_lower, mpc.u_upper))
                next_obs, reward, term, trunc, info = vec.step(a[None])
                xs.append(np.asarray(x, np.float64))
                us.append(a)
                xns.append(model.state_from_obs(info["final_observation"][0]))
                total += float(reward[0])
                t += 1
                obs = next_obs
                if term[0] or trunc[0] or t >= steps:
                    break
            if t >= steps and not (term[0] or trunc[0]):
                obs = vec.reset()
            returns.append(total)
            lengths.append(t)
    finally:
        vec.close()
    data = make_transitions(
        np.stack(xs),
        np.stack(us).reshape(len(us), -1),
        np.stack(xns),
        discrete=isinstance(space, spaces.Discrete),
    )
    return _Episodes(data, np.asarray(returns), np.asarray(lengths))


def identify_and_control(
    env_id: str,
    *,
    model: ParametricModel | str | None = None,
    problem_fn: Callable[[Any], Any] | None = None,
    fix: Mapping[str, float] | None = None,
    config: LoopConfig = LoopConfig(),
) -> LoopResult:
    """Identify a system from random data, control it with MPC, recollect and refit.

    Args:
      env_id: the real system: a bellmax id or a Gymnasium one (`gymnasium:CartPole-v1`,
        `module:EnvName-v0`).
      model: the parametric model or its name; default `model_for_env(env_id)`.
      problem_fn: `env_params -> bellmax.control.Problem` built on the identified
        parameters (e.g. `lambda p: cartpole_balance(p, horizon=25)`, the default for the
        cart-pole).
      fix: the gauge for the fits, default `{"masscart": 1.0}` for the cart-pole.
      config: `LoopConfig`.

    Returns:
      `LoopResult` with every round's fit and episodes and all the data.

    Raises:
      ValueError: an unknown method, no default problem for the model, bad data.
    """
    check_type(config, LoopConfig, "config", owner="identify_and_control")
    if model is None:
        model = model_for_env(env_id)
    elif isinstance(model, str):
        model = get_model(model)
    if fix is None:
        fix = {"masscart": 1.0} if model.name == "cartpole" else {}
    if problem_fn is None:
        problem_fn = _default_problem(model, config.horizon)

    data = _as_states(model, collect_transitions(env_id, config.random_steps, seed=config.seed))
    rounds: list[LoopRound] = []
    init = None
    fit = None
    for k in range(config.max_rounds):
        fit = identify(model, data, fix=fix, init=init, config=config.sysid)
        params = model.env_params(fit.params)
        mpc = make_mpc(problem_fn(params), iterations=config.iterations, method=config.method)
        seed = config.seed + 1 + k
        made = resolve_env(env_id, num_envs=1, seed=seed)
        steps = config.max_episode_steps
        if made.is_host:
            run = _run_host(made.host, mpc, model, params, config.episodes, steps, seed)
        else:
            run = _run_bellmax(
                made.env, made.params, mpc, model, params, config.episodes, steps, seed
            )
        if config.success_return is not None:
            ok = bool(np.all(run.returns >= config.success_return))
        else:
            ok = bool(np.all(run.lengths >= config.max_episode_steps))
        rounds.append(LoopRound(fit, data.num_transitions, run.returns, run.lengths, ok))
        if ok:
            return LoopResult(tuple(rounds), fit, concatenate(data, run.data), "succeeded")
        data = concatenate(data, run.data)
        init = {n: v for n, v in fit.params.items() if n not in fix}
    return LoopResult(tuple(rounds), fit, data, "max_rounds")
