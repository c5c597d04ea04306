"""Model-based RL with a learned global model: fit, plan with MPC, act, aggregate, refit.

The data loop of PETS (Chua, Calandra, McAllister & Levine 2018, algorithm 1) and of the
notes' DAgger-like recursion (Ross & Bagnell 2012): random trials first (or an expert's:
`run_mbrl(..., expert=)`, any `bellmax.imitation` expert), then for each trial

1. fit the neural model (`bellmax.models.neural`: ensemble, MLP or hybrid) to all data so
   far, warm-started from the last fit;
2. run MPC on the real environment for `trial_steps` steps, re-planning every step through
   the model: CEM or MPPI (`bellmax.control.sampling`) or iLQR / DDP (`bellmax.control.mpc`,
   with first, and for DDP second, derivatives through the network);
3. add the trial's transitions to the data.

The guard against exploiting the model's errors (the planner otherwise steers towards
states where the model is wrongly optimistic): trajectory sampling over the ensemble
(PETS's TS-inf: each of `K` particles follows one member's Gaussian for the whole horizon,
and a plan's cost is their mean) and a penalty on the ensemble's disagreement (the spread of
the particles, or of the members' means, in units of the data's state change); both can be
switched off.

Rewards: a bellmax environment with a known differentiable reward (Pendulum-v1,
CartPoleSwingUp-v0) plans with it; any other, and every Gymnasium environment through the
bridge, plans with the model's learned reward head. The model's state is the parametric
model's (`bellmax.models.parametric`: angles instead of cos/sin) where one fits the
environment, else the observation. Trials on bellmax environments run as one jitted
`closed_loop` scan each; Gymnasium ones on the host through `bellmax.envs.gymnasium`.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.control.mpc import closed_loop, control_to_action, make_mpc
from bellmax.control.problems import make_problem, zero_terminal_cost
from bellmax.control.sampling import SamplingConfig, SamplingState, make_sampling_mpc
from bellmax.core.checks import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_seed,
    check_type,
)
from bellmax.core.display import summary_repr
from bellmax.core.errors import DivergenceError, UnknownNameError
from bellmax.core.status import Status
from bellmax.core.xla import RUN_SOMETIMES, jit_lightly
from bellmax.envs import spaces
from bellmax.envs.cartpole import CartPoleSwingUpParams
from bellmax.envs.pendulum import PendulumParams, pendulum_cost
from bellmax.envs.registry import resolve_env
from bellmax.models.data import check_finite_rollouts
from bellmax.models.neural import (
    FitReport,
    NeuralConfig,
    NeuralModel,
    NeuralParams,
    fit,
    make_neural_model,
    open_loop_error,
    prediction_report,
)
from bellmax.models.parametric import ParametricModel, model_for_env

__all__ = [
    "EnsembleObjective",
    "MBRLConfig",
    "MBRLResult",
    "TrialRecord",
    "distil",
    "known_reward",
    "run_mbrl",
]


# ====================================================================== known rewards
def _pendulum_reward(x: jax.Array, u: jax.Array, x_next: jax.Array) -> jax.Array:
    """Pendulum-v1's reward `-(angle^2 + 0.1 theta_dot^2 + 0.001 u^2)` of the state before."""
    del x_next
    return -pendulum_cost(x, u[0], PendulumParams())


_SWINGUP = CartPoleSwingUpParams()


def _swingup_reward(x: jax.Array, u: jax.Array, x_next: jax.Array) -> jax.Array:
    """CartPoleSwingUp-v0's reward `(1 + cos theta') / 2 (1 - c u^2)` of the state after."""
    del x
    a = jnp.clip(u[0], -1.0, 1.0)
    return 0.5 * (1.0 + jnp.cos(x_next[2])) * (1.0 - _SWINGUP.control_cost * a**2)


def _swingup_terminated(x_next: jax.Array) -> jax.Array:
    return jnp.abs(x_next[0]) > _SWINGUP.x_threshold


def _never(x_next: jax.Array) -> jax.Array:
    return jnp.asarray(False)


_KNOWN = {
    "Pendulum-v1": (_pendulum_reward, _never),
    "CartPoleSwingUp-v0": (_swingup_reward, _swingup_terminated),
}


def known_reward(env_id: str) -> tuple[Callable[..., jax.Array], Callable[..., jax.Array]] | None:
    """`(reward(x, u, x_next), terminated(x_next))` of a bellmax env in its model state, or None.

    Known for bellmax's `Pendulum-v1` (state `[theta, theta_dot]`) and `CartPoleSwingUp-v0`
    (`[x, x_dot, theta, theta_dot]`); Gymnasium ids (`gymnasium:...`) get None: their reward is
    learned.
    """
    return _KNOWN.get(str(env_id))


# ====================================================================== configuration
@dataclasses.dataclass(frozen=True)
class MBRLConfig:
    """Knobs of the model-based loop."""

    trials: int = 5
    """Trials in all, the random ones included."""
    trial_steps: int = 200
    """Environment steps per trial (a trial also ends at a termination)."""
    random_trials: int = 1
    """Trials before the first fit: uniformly random actions, or the expert's where
    `run_mbrl` is given one."""
    planner: str = "cem"
    """`"cem"`, `"mppi"`, `"ilqr"` or `"ddp"` (iLQR with the network's second derivatives)."""
    model: str = "ensemble"
    """`"ensemble"` (probabilistic, K members), `"mlp"` (one deterministic network) or
    `"hybrid"` (the parametric physics at nominal parameters plus a neural residual)."""
    horizon: int = 25
    """Planning horizon in steps."""
    samples: int = 200
    """CEM/MPPI samples per round."""
    rounds: int = 4
    """CEM/MPPI rounds (iLQR/DDP: iterations) per control step."""
    trajectory_sampling: bool = True
    """Guard: plan on TS-inf particles of the ensemble (else on the members' mean)."""
    disagreement_penalty: float = 0.0
    """Guard: cost per step and unit of ensemble disagreement (0: off)."""
    learned_reward: bool | None = None
    """Plan with a learned reward head; None: only where the reward is not known."""
    neural: NeuralConfig = dataclasses.field(default_factory=NeuralConfig)
    """The model's architecture and training (`model` overrides its ensemble settings)."""
    eval_episodes: int = 0
    """Episodes of `trial_steps` run after the last trial with the final model (fitted to
    every trial), from other starts, to measure the learned controller (no data added)."""
    seed: int = 0
    """Seed of everything (trial `k`, counted from 1 as `TrialRecord.index`, resets the
    environment with `seed + k - 1`; evaluation episode `e`, from 0, with `seed + trials +
    e`). Runs of neighbouring seeds so share trials (seed 1's first is seed 0's second): for
    independent replicates, space the seeds by more than `trials + eval_episodes`."""

    def __post_init__(self) -> None:
        owner = "MBRLConfig"
        for name in ("trials", "trial_steps", "horizon", "samples", "rounds"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, owner=owner, low=1))
        object.__setattr__(
            self,
            "eval_episodes",
            check_int(self.eval_episodes, "eval_episodes", owner=owner, low=0),
        )
        object.__setattr__(
            self,
            "random_trials",
            check_int(self.random_trials, "random_trials", owner=owner, low=1),
        )
        if self.random_trials >= self.trials:
            raise ValueError(
                f"MBRLConfig.trials ({self.trials}) must exceed random_trials "
                f"({self.random_trials}) so that at least one trial plans with the model."
            )
        check_choice(self.planner, "planner", ("cem", "mppi", "ilqr", "ddp"), owner=owner)
        check_choice(self.model, "model", ("ensemble", "mlp", "hybrid"), owner=owner)
        check_bool(self.trajectory_sampling, "trajectory_sampling", owner=owner)
        check_number(self.disagreement_penalty, "disagreement_penalty", owner=owner, low=0)
        if self.learned_reward is not None:
            check_bool(self.learned_reward, "learned_reward", owner=owner)
        check_type(self.neural, NeuralConfig, "neural", owner=owner)
        object.__setattr__(self, "seed", check_seed(self.seed, "seed", owner=owner))

    @property
    def neural_config(self) -> NeuralConfig:
        """`neural` with the ensemble settings `model` implies (an MLP is one deterministic
        member; ensemble and hybrid keep `neural`'s)."""
        if self.model == "mlp":
            return dataclasses.replace(self.neural, ensemble_size=1, probabilistic=False)
        return self.neural


# ====================================================================== planning objective
def _disagreement(model: NeuralModel, params: NeuralParams, means: jax.Array) -> jax.Array:
    """Spread of `[K, n]` predictions (or `[K, *B, n]`: one per batch entry), in units of
    the data's state change."""
    scale = params.out_std[: model.state_dim]
    return jnp.mean(jnp.var(means / scale, axis=0), axis=-1)


@dataclasses.dataclass(frozen=True)
class EnsembleObjective:
    """A plan's cost under a neural model: `objective(x0, U, key, params)` for CEM/MPPI.

    With `trajectory_sampling` each of the `K` particles follows one member, sampling its
    Gaussian each step (TS-inf); otherwise one trajectory follows the members' mean. The
    cost is minus the reward summed until a termination, plus `penalty` times the
    disagreement at each step, averaged over particles.
    """

    model: NeuralModel
    """The learned model."""
    reward: Callable[..., jax.Array] | None
    """Known `reward(x, u, x_next)`; None uses the model's reward head."""
    terminated: Callable[..., jax.Array]
    """`terminated(x_next) -> bool`."""
    trajectory_sampling: bool = True
    """TS-inf particles (else the mean)."""
    penalty: float = 0.0
    """Disagreement penalty weight."""

    def _reward(self, x, u, x_next, learned):
        return learned if self.reward is None else self.reward(x, u, x_next)

    def __call__(self, x0: jax.Array, U: jax.Array, key: jax.Array, params: NeuralParams):
        return self.batch(x0, U[None], key[None], params)[0]

    def batch(self, x0: jax.Array, U: jax.Array, keys: jax.Array, params: NeuralParams):
        """`[S]` costs of `S` plans `U [S, H, m]` from `x0`, plan `s` drawing its noise from
        `keys[s]`: the same numbers as calling the objective on each plan, computed with the
        member axis first (`[K, S, n]`, as the ensemble's networks run), which the sampling
        planners use to evaluate all their samples at once."""
        model = self.model
        K, n = model.config.ensemble_size, model.state_dim
        S, H = U.shape[:2]
        ts = self.trajectory_sampling and model.config.probabilistic
        U_t = jnp.swapaxes(U, 0, 1)  # [H, S, m]

        # the reward and termination of one state, over the plans (and the particles)
        reward = jax.vmap(self._reward)  # x, u, x_next, learned: each [S, ...]
        terminated = jax.vmap(self.terminated)
        if ts:  # [K, S, ...], the action shared by the particles
            reward = jax.vmap(reward, in_axes=(0, None, 0, 0))
            terminated = jax.vmap(terminated)

        def step(carry, inp):
            x, alive = carry  # x [K, S, n] (TS) or [S, n]
            u, eps = inp  # u [S, m]
            if ts:
                mean, var, r_model = model.predict_members(params, x, u)
                x_next = mean + jnp.sqrt(var) * eps
                means = x_next
            else:

                def follow_the_mean(x, u):  # one state
                    pred = model.predict(params, x, u)
                    return pred.ensemble_mean, jnp.mean(pred.reward), pred.mean

                x_next, r_model, means = jax.vmap(follow_the_mean)(x, u)
                means = jnp.swapaxes(means, 0, 1)  # [K, S, n]
            r = reward(x, u, x_next, r_model)
            c = jnp.where(alive, -r, 0.0)
            if self.penalty:
                c = c + self.penalty * _disagreement(model, params, means)
            return (x_next, alive & ~terminated(x_next)), c

        x0 = jnp.asarray(x0)
        if ts:
            x = jnp.broadcast_to(x0, (K, S, n))
            alive = jnp.ones((K, S), bool)
            # each plan's noise in one draw (one random-number call per step inside the scan
            # cost more than the networks' arithmetic on CPU), flat: the same numbers as
            # shape (H, K, n), 2.4x faster to transform (a last axis of n = 3 is not
            # vectorised); laid out [H, K, S, n]
            noise = jax.vmap(lambda k: jax.random.normal(k, (H * K * n,), x.dtype))(keys)
            noise = jnp.transpose(noise.reshape(S, H, K, n), (1, 2, 0, 3))
        else:
            x = jnp.broadcast_to(x0, (S, n))
            alive = jnp.ones((S,), bool)
            noise = None  # the mean trajectory draws nothing
        _, costs = jax.lax.scan(step, (x, alive), (U_t, noise))
        return jnp.sum(costs, axis=(0, 1)) / K if ts else jnp.sum(costs, axis=0)


@dataclasses.dataclass(frozen=True)
class _ILQRCost:
    """iLQR's running cost through the model: minus the reward of the mean prediction, plus
    the disagreement penalty (`cost(x, u, t, params)`)."""

    model: NeuralModel
    reward: Callable[..., jax.Array] | None
    penalty: float

    def __call__(self, x, u, t, params):
        pred = self.model.predict(params, x, u)
        x_next = pred.ensemble_mean
        r = jnp.mean(pred.reward) if self.reward is None else self.reward(x, u, x_next)
        return -r + self.penalty * _disagreement(self.model, params, pred.mean)


@dataclasses.dataclass(frozen=True)
class _PenaltyFree:
    """A planner whose reported `cost` is its chosen plan's cost without the disagreement
    penalty: minus the return the model predicts for the plan, so that `optimism` compares
    the model's promise with the world's return whether or not the penalty is on. The plan
    is rebuilt from the shifted warm start (`[u, U[:-1]]`, both planners shift that way)."""

    inner: Any
    objective: EnsembleObjective
    seed: int

    @property
    def u_lower(self) -> tuple[float, ...]:
        return self.inner.u_lower

    @property
    def u_upper(self) -> tuple[float, ...]:
        return self.inner.u_upper

    def init(self, x0: Any = None, U: Any = None) -> Any:
        return self.inner.init(x0, U)

    def step(self, state: Any, x: Any, params: Any):
        return _penalty_free_step(self, state, x, params)


@functools.partial(jax.jit, static_argnums=0)
def _penalty_free_step(ctrl: _PenaltyFree, state: Any, x: Any, params: Any):
    u, new = ctrl.inner.step(state, x, params)
    plan = jnp.concatenate([u[None], new.U[:-1]], axis=0)
    key = jax.random.fold_in(jax.random.key(ctrl.seed), new.steps)
    cost = ctrl.objective(jnp.asarray(x, jnp.float32), plan, key, params)
    cost = jnp.where(jnp.isfinite(new.cost), cost, new.cost)  # a non-finite plan stays so
    return u, new.replace(cost=jnp.asarray(cost, new.cost.dtype))


# ====================================================================== random controller
@dataclasses.dataclass(frozen=True)
class _RandomController:
    """Uniformly random controls in the box, with MPC's interface (for the first trials)."""

    u_lower: tuple[float, ...]
    u_upper: tuple[float, ...]
    seed: int

    def init(self, x0: Any = None, U: Any = None) -> SamplingState:
        m = len(self.u_lower)
        return SamplingState(
            U=jnp.zeros((1, m), jnp.float32),
            cost=jnp.asarray(0.0, jnp.float32),
            iterations=jnp.asarray(0, jnp.int32),
            status=jnp.asarray(Status.CONVERGED, jnp.int32),
            steps=jnp.asarray(0, jnp.int32),
            key=jax.random.key(self.seed),
            temperature=jnp.asarray(jnp.nan, jnp.float32),
        )

    def step(self, state: SamplingState, x: Any, params: Any):
        key, k = jax.random.split(state.key)
        lo, hi = jnp.asarray(self.u_lower), jnp.asarray(self.u_upper)
        u = jax.random.uniform(k, lo.shape, jnp.float32, lo, hi)
        return u, state.replace(key=key, steps=state.steps + 1)


# ====================================================================== results
@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """One trial on the real environment."""

    __repr__ = summary_repr

    index: int
    """Trial number, from 1."""
    kind: str
    """`random`, `expert` or the planner's name."""
    total_reward: float
    """The trial's return (real rewards)."""
    steps: int
    """Steps until the end or a termination."""
    num_transitions: int
    """Transitions gathered before this trial (0 for random and expert trials); the fit
    trained on `fit.num_train` of them and held `fit.num_heldout` out."""
    fit: FitReport | None
    """The fit used by this trial's planner (None for random and expert trials)."""
    onpolicy_rmse: tuple[float, ...] | None
    """One-step RMSE of that model on this trial's transitions (per state component)."""
    open_loop_rmse: tuple[float, ...] | None
    """Its open-loop RMSE `horizon` steps ahead along this trial's actions."""
    optimism: float | None
    """How much the planner's model promised more than the world gave: the mean over steps
    `t` of the plan's predicted return over the horizon (minus its planned cost) less the
    real return of steps `t .. t + horizon - 1` (zero after a termination; windows past the
    end of an unterminated trial are left out). Large and positive when the planner exploits
    the model's errors; None for random and expert trials or unterminated trials shorter than the
    horizon."""
    states: np.ndarray
    """`[steps + 1, n]` the real states."""
    actions: np.ndarray
    """`[steps, m]` the controls applied."""
    predicted: np.ndarray | None
    """`[H + 1, n]` the model's open-loop prediction from the trial's start along its
    actions (the predicted-versus-real rollout), None for random and expert trials."""
    predicted_returns: np.ndarray | None = None
    """`[steps]` at each step, the return over the horizon that the planner's model predicted
    for the plan it chose (the disagreement penalty left out), None for random and expert trials."""
    real_returns: np.ndarray | None = None
    """`[steps]` the real return of steps `t .. t + horizon - 1` (zero after a termination;
    NaN where the window runs past the end of an unterminated trial). `optimism` is the
    mean of `predicted_returns - real_returns` over the windows that fit."""
    disagreement: np.ndarray | None = None
    """`[steps]` the ensemble's disagreement (variance of the members' predicted next
    states, in units of the data's state change, averaged over components) at each real
    state and action of the trial: large where the planner drove the system to where the
    members disagree. None for random and expert trials and single-network models."""
    seconds: float = 0.0
    """Wall-clock time of this trial, the fit before it included."""


@dataclasses.dataclass(frozen=True)
class MBRLResult:
    """What `run_mbrl` did."""

    __repr__ = summary_repr

    env_id: str
    """The environment."""
    trials: tuple[TrialRecord, ...]
    """Every trial, in order."""
    model: NeuralModel
    """The model."""
    params: NeuralParams
    """Its last fit (to all data, the last trial's included)."""
    state_names: tuple[str, ...]
    """Names of the model's state components."""
    learned_reward: bool
    """Whether planning used a learned reward."""
    seconds: float
    """Wall-clock time of the whole run."""
    eval_returns: tuple[float, ...] = ()
    """Returns of the evaluation episodes (`MBRLConfig.eval_episodes`)."""

    @property
    def trial_returns(self) -> list[float]:
        """Each trial's return, in order."""
        return [t.total_reward for t in self.trials]

    @property
    def env_steps(self) -> int:
        """Real environment steps taken by the trials (the evaluation episodes not counted)."""
        return sum(t.steps for t in self.trials)


# ====================================================================== environments
class _Env:
    """The real system: a bellmax env (jitted trials) or a Gymnasium one (host trials)."""

    def __init__(self, env_id: str, seed: int):
        self.env_id = env_id
        made = resolve_env(env_id, num_envs=1, seed=seed)
        self.is_host = made.is_host
        if made.is_host:
            self.host = made.host
            self.space = made.host.action_space
            obs = np.asarray(made.host.reset(seed=seed))[0]
        else:
            self.env, self.params = made.env, made.params
            self.space = self.env.action_space(self.params)
            obs = np.asarray(self.env.reset(jax.random.key(seed), self.params)[0])
        if not isinstance(self.space, spaces.Box):
            advice = (
                " For CartPole-v1 use `bellmax control` (MPC on the identified physics) or a "
                "Box-action variant such as CartPoleSwingUp-v0."
                if "cartpole" in str(env_id).lower()
                else " Pick an env with Box actions (e.g. Pendulum-v1, CartPoleSwingUp-v0)."
            )
            raise ValueError(
                f"{env_id} has {type(self.space).__name__} actions; model-based planning "
                f"(iLQR, CEM, MPPI) needs continuous (Box) actions.{advice}"
            )
        lo = np.asarray(self.space.low, np.float64).reshape(-1)
        hi = np.asarray(self.space.high, np.float64).reshape(-1)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError(f"{env_id}'s action box is unbounded ({lo}, {hi}); planners need one.")
        self.u_lower, self.u_upper = tuple(lo.tolist()), tuple(hi.tolist())
        self.parametric = _parametric_for(env_id, obs)

    def to_state(self, obs: np.ndarray) -> np.ndarray:
        o = np.asarray(obs, np.float64)
        return o if self.parametric is None else self.parametric.state_from_obs(o)

    def close(self) -> None:
        if self.is_host:
            self.host.close()


def _parametric_for(env_id: str, obs: np.ndarray) -> ParametricModel | None:
    """The parametric model whose state describes `env_id`'s observations, if any."""
    try:
        model = model_for_env(env_id)
        model.state_from_obs(obs)
    except (UnknownNameError, ValueError):
        return None
    return model


class _Trial:
    """The arrays of one trial (model states), cut at the first termination."""

    def __init__(self, x, u, x_next, rewards, planned):
        self.x, self.u, self.x_next, self.rewards = x, u, x_next, rewards
        self.planned = planned  # [n] the planner's cost of its plan at each step


def _model_nan(trial: int, step: int) -> DivergenceError:
    return DivergenceError(
        f"trial {trial} stopped at step {step}: the model's prediction is not finite (NaN or "
        "inf), so the planner has no plan to follow. Refit with a smaller learning rate "
        "(NeuralConfig.learning_rate; `bellmax mbrl --learning-rate`) or check the data; the "
        "plan was not applied."
    )


def _check_trial(trial: _Trial, index: int, env_id: str) -> _Trial:
    """Refuse a trial whose states or rewards from the environment are not finite: no model
    can be fitted to them (`bellmax.models.data.check_finite_rollouts`, which LQR-FLM and
    MD-GPS use too: the error names the trial, the step and what went bad)."""
    check_finite_rollouts(
        np.concatenate([trial.x[:1], trial.x_next])[None],
        np.asarray(trial.rewards)[None],
        env_id,
        f"trial {index}",
        consequence="no model can be fitted to that trial's data; the run stopped there",
    )
    return trial


def _trial_bellmax(env: _Env, ctrl: Any, params: Any, steps: int, seed: int, index: int) -> _Trial:
    observe = None if env.parametric is not None else (lambda obs, s: obs)
    out = closed_loop(
        env.env, env.params, ctrl, jax.random.key(seed), steps, model_params=params, observe=observe
    )
    term = np.asarray(out.terminated)
    n = int(np.argmax(term)) + 1 if term.any() else steps
    cost = np.asarray(out.planned_cost)[:n]
    X = np.asarray(out.states, np.float64)
    trial = _Trial(
        X[:n],
        np.asarray(out.controls, np.float64)[:n],
        X[1 : n + 1],
        np.asarray(out.rewards, np.float64)[:n],
        cost.astype(np.float64),
    )
    _check_trial(trial, index, env.env_id)  # the environment first: a NaN state makes NaN plans
    if not np.isfinite(cost).all():
        raise _model_nan(index, int(np.argmax(~np.isfinite(cost))))
    return trial


def _host_rollout(env: _Env, policy_fn: Any, steps: int, seed: int):
    """Reset the Gymnasium env with `seed` and run `policy_fn` (`obs [1, ...] -> action
    [1, ...]`) for `steps` steps, cut at the first end: `(x, x_next, actions, rewards)`."""
    from bellmax.envs.gymnasium import rollout_host  # lazy: gymnasium only here

    env.host.reset(seed=int(seed))
    traj = rollout_host(env.host, policy_fn, steps).trajectory
    done = np.asarray(traj.terminated | traj.truncated).reshape(-1)
    n = int(np.argmax(done)) + 1 if done.any() else steps
    obs, nxt = np.asarray(traj.obs)[:n, 0], np.asarray(traj.next_obs)[:n, 0]
    actions = np.asarray(traj.action, np.float64)[:n, 0].reshape(n, -1)
    rewards = np.asarray(traj.reward, np.float64).reshape(-1)[:n]
    return env.to_state(obs), env.to_state(nxt), actions, rewards


def _trial_host(env: _Env, ctrl: Any, params: Any, steps: int, seed: int, index: int) -> _Trial:
    vec = env.host
    carry = {"state": ctrl.init(), "t": 0}
    controls, planned = [], []

    def policy_fn(obs):
        if not np.isfinite(obs).all():
            raise DivergenceError(
                f"trial {index} on {env.env_id!r}: the environment's observation went NaN or "
                f"inf at step {carry['t']}, so there is no state to plan from; the run stopped "
                "there. Check the environment: its observations must stay finite."
            )
        x = jnp.asarray(env.to_state(obs[0]), jnp.float32)
        u, carry["state"] = ctrl.step(carry["state"], x, params)
        if not np.isfinite(float(carry["state"].cost)):
            raise _model_nan(index, carry["t"])
        carry["t"] += 1
        controls.append(np.asarray(u, np.float64))
        planned.append(float(carry["state"].cost))
        return np.asarray(control_to_action(u, vec.action_space, env.u_lower, env.u_upper))[None]

    x, x_next, _, rewards = _host_rollout(env, policy_fn, steps, seed)
    n = len(rewards)
    trial = _Trial(x, np.stack(controls[:n]), x_next, rewards, np.asarray(planned[:n], np.float64))
    return _check_trial(trial, index, env.env_id)


def _trial_expert(env: _Env, expert: Any, steps: int, seed: int, index: int) -> _Trial:
    """The expert acts for one trial, on the host (an expert is NumPy `obs -> action`), with
    its actions checked as imitation checks labels; they are the trial's controls (the
    control box is the action box). Gymnasium envs run as planned trials do; bellmax (and
    gymnax) envs step one jitted step at a time from the start a planned trial with `seed`
    has, ending at a termination only, as `closed_loop` does (no time limit)."""
    from bellmax.imitation.experts import label

    reset = getattr(expert, "reset", None)
    if callable(reset):
        reset()  # a stateful expert (MPC) starts the trial without an old plan
    if env.is_host:
        space = env.host.action_space
        x, x_next, u, rewards = _host_rollout(
            env, lambda obs: label(expert, obs, space)[0], steps, seed
        )
    else:
        x, x_next, u, rewards = _expert_steps(env, expert, steps, seed)
    trial = _Trial(x, u, x_next, rewards, np.zeros(len(rewards)))
    return _check_trial(trial, index, env.env_id)


def _expert_steps(env: _Env, expert: Any, steps: int, seed: int):
    """`(x, x_next, u, rewards)` of the expert on a bellmax env: `closed_loop`'s keys and
    states (the parametric model's where one fits, else the observation)."""
    from bellmax.imitation.experts import label

    key_reset, key_steps = jax.random.split(jax.random.key(seed))
    obs, state = env.env.reset(key_reset, env.params)
    step = jax.jit(env.env.step)
    keys = jax.random.split(key_steps, steps)

    def state_of(o, s):
        return np.asarray(s.vector() if env.parametric is not None else o, np.float64)

    xs, us, rs = [state_of(obs, state)], [], []
    for t in range(steps):
        a = label(expert, np.asarray(obs)[None], env.space)[0][0]
        obs, state, r, term, _, _ = step(keys[t], state, jnp.asarray(a), env.params)
        xs.append(state_of(obs, state))
        us.append(np.asarray(a, np.float64).reshape(-1))
        rs.append(float(r))
        if bool(term):
            break
    X = np.stack(xs)
    return X[:-1], X[1:], np.stack(us), np.asarray(rs)


# ====================================================================== the loop
_GRADIENT_PLANNERS = ("ilqr", "ddp")  # plan on the members' mean, derivatives through it


def _planner(config: MBRLConfig, model: NeuralModel, env: _Env, reward, terminated, params):
    ctrl = _optimiser(config, model, env, reward, terminated, params)
    if config.disagreement_penalty == 0:
        return ctrl  # its cost is already minus the plan's predicted return
    ts = config.trajectory_sampling and config.planner not in _GRADIENT_PLANNERS
    return _PenaltyFree(ctrl, EnsembleObjective(model, reward, terminated, ts, 0.0), config.seed)


def _optimiser(config: MBRLConfig, model: NeuralModel, env: _Env, reward, terminated, params):
    if config.planner in _GRADIENT_PLANNERS:
        cost = _ILQRCost(model, reward, float(config.disagreement_penalty))
        n = model.state_dim
        problem = make_problem(
            model.dynamics,
            cost,
            np.zeros(n),
            config.horizon,
            terminal_cost=zero_terminal_cost,
            u_lower=list(env.u_lower),
            u_upper=list(env.u_upper),
            params=params,
        )
        return make_mpc(problem, iterations=config.rounds, method=config.planner)
    objective = EnsembleObjective(
        model,
        reward,
        terminated,
        config.trajectory_sampling,
        float(config.disagreement_penalty),
    )
    cfg = SamplingConfig(
        method=config.planner,
        num_samples=config.samples,
        iterations=config.rounds,
        init_std=0.25,
        seed=config.seed,
    )
    return make_sampling_mpc(
        objective, horizon=config.horizon, u_lower=env.u_lower, u_upper=env.u_upper, config=cfg
    )


def run_mbrl(
    env_id: str,
    *,
    config: MBRLConfig = MBRLConfig(),
    on_trial: Callable[[MBRLResult], Any] | None = None,
    expert: Any = None,
) -> MBRLResult:
    """Learn a neural model of `env_id` and control it with MPC, trial after trial.

    Args:
      env_id: a bellmax id with continuous actions (`Pendulum-v1`, `CartPoleSwingUp-v0`) or a
        Gymnasium one through the bridge (`gymnasium:Pendulum-v1`, `module:EnvName-v0`).
      config: `MBRLConfig`.
      on_trial: called after each trial with the `MBRLResult` of the trials so far (its
        `params` the fit the last trial planned with, None before the first fit; no
        evaluation returns): progress, and what a run that diverges later keeps.
      expert: acts in the first `config.random_trials` trials instead of random actions
        (their kind is `expert`): any `bellmax.imitation` expert, `obs [N, ...] -> actions
        [N, ...]` on the environment's observations and actions (`mpc_expert`,
        `policy_expert`, a function), its actions checked as imitation checks labels.
        Demonstrations put the first data where a good controller goes, which random
        actions may never reach (a swing-up's upright states).

    Returns:
      `MBRLResult` with every trial's return, data and prediction errors.

    Raises:
      ValueError: discrete or unbounded actions, bad config.
      TypeError: an expert that is not callable.
      ExpertError: the expert raised or returned actions outside the action space.
      DivergenceError: the model's prediction became non-finite during a trial (the trial
        stops there, before a non-finite plan is applied), a fit's loss did, or the
        environment's states or rewards did; the trials before it went to `on_trial`.
    """
    check_type(config, MBRLConfig, "config", owner="run_mbrl")
    if expert is not None:
        from bellmax.imitation.experts import as_expert

        expert = as_expert(expert)
    t_start = time.perf_counter()
    env = _Env(env_id, config.seed)
    try:
        return _loop(env, config, t_start, on_trial, expert)
    finally:
        env.close()


def _loop(
    env: _Env, config: MBRLConfig, t_start: float, on_trial: Any = None, expert: Any = None
) -> MBRLResult:
    known = None if env.is_host else known_reward(env.env_id)
    learned = known is None if config.learned_reward is None else bool(config.learned_reward)
    reward, terminated = (None, _never) if learned or known is None else known
    if not learned and known is None:
        raise ValueError(
            f"{env.env_id} has no known reward function; leave learned_reward at None or True."
        )
    if config.model == "hybrid" and env.parametric is None:
        raise ValueError(
            f"--model hybrid needs a parametric physics model of {env.env_id} (cartpole or "
            "pendulum); use --model ensemble or mlp."
        )
    p = env.parametric
    n = p.state_dim if p is not None else int(np.prod(env.to_state(np.zeros(1)).shape))
    model = make_neural_model(
        n if p is not None else _obs_dim(env),
        len(env.u_lower),
        angle_dims=p.angle_dims if p is not None else (),
        reward_head=learned,
        config=config.neural_config,
        base=p if config.model == "hybrid" else None,
    )
    names = p.state_names if p is not None else tuple(f"obs[{j}]" for j in range(model.state_dim))
    run_trial = _trial_host if env.is_host else _trial_bellmax
    key = jax.random.key(config.seed)
    data: list[_Trial] = []
    records: list[TrialRecord] = []
    params, planner, fit_report = None, None, None
    capacity = config.trials * config.trial_steps  # every fit pads to it: one program
    for i in range(config.trials):
        seed = config.seed + i
        t_trial = time.perf_counter()
        if i < config.random_trials:
            if expert is None:
                ctrl: Any = _RandomController(env.u_lower, env.u_upper, seed)
                trial = run_trial(env, ctrl, None, config.trial_steps, seed, i + 1)
            else:
                trial = _trial_expert(env, expert, config.trial_steps, seed, i + 1)
            seconds = time.perf_counter() - t_trial
            kind = "random" if expert is None else "expert"
            records.append(_record(i, kind, trial, 0, None, None, None, None, None, seconds))
        else:
            X, U, Xn, R = (
                np.concatenate([getattr(d, f) for d in data])
                for f in ("x", "u", "x_next", "rewards")
            )
            key, k_fit = jax.random.split(key)
            when = f"before trial {i + 1}"
            params, fit_report = _fit(
                when, model, X, U, Xn, R if learned else None, params, k_fit, capacity
            )
            if planner is None:
                planner = _planner(config, model, env, reward, terminated, params)
            trial = run_trial(env, planner, params, config.trial_steps, seed, i + 1)
            seconds = time.perf_counter() - t_trial
            records.append(
                _record(
                    i,
                    config.planner,
                    trial,
                    len(X),
                    fit_report,
                    model,
                    params,
                    config,
                    learned,
                    seconds,
                )
            )
        data.append(trial)
        if on_trial is not None:
            elapsed = time.perf_counter() - t_start
            on_trial(MBRLResult(env.env_id, tuple(records), model, params, names, learned, elapsed))
    X, U, Xn, R = (
        np.concatenate([getattr(d, f) for d in data]) for f in ("x", "u", "x_next", "rewards")
    )
    key, k_fit = jax.random.split(key)
    params, _ = _fit(
        "after the last trial", model, X, U, Xn, R if learned else None, params, k_fit, capacity
    )
    evals = []
    for e in range(config.eval_episodes):
        seed = config.seed + config.trials + e
        trial = run_trial(env, planner, params, config.trial_steps, seed, config.trials + e + 1)
        evals.append(float(np.sum(trial.rewards)))
    return MBRLResult(
        env.env_id,
        tuple(records),
        model,
        params,
        names,
        learned,
        time.perf_counter() - t_start,
        tuple(evals),
    )


def _fit(
    when: str, model, X, U, Xn, R, params, key, capacity: int
) -> tuple[NeuralParams, FitReport]:
    """`fit`, a divergence naming when it happened (the trials before it are finished);
    `capacity`: the loop's most transitions (one compiled fit for all its trials)."""
    try:
        return fit(model, X, U, Xn, rewards=R, init=params, key=key, capacity=capacity)
    except DivergenceError as e:
        raise DivergenceError(f"fitting the model {when}: {e}") from None


def _obs_dim(env: _Env) -> int:
    if env.is_host:
        return int(np.prod(env.host.observation_space.shape))
    return int(np.prod(env.env.observation_space(env.params).shape))


def _window_returns(rewards: np.ndarray, horizon: int, terminated: bool) -> np.ndarray:
    """`[T]` the sum of `rewards[t : t + horizon]`; after a termination the world gives
    zero, else windows past the end are NaN."""
    T = rewards.shape[0]
    pad = np.zeros(horizon - 1) if terminated else np.full(horizon - 1, np.nan)
    return np.convolve(np.concatenate([rewards, pad]), np.ones(horizon), mode="valid")[:T]


def _visited_disagreement_impl(model: NeuralModel, params: NeuralParams, x, u) -> jax.Array:
    return jax.vmap(lambda a, b: _disagreement(model, params, model.predict(params, a, b).mean))(
        x, u
    )


#: `[T]` the ensemble's disagreement at each `(x_t, u_t)`; compiled lightly (once a trial).
_visited_disagreement = jit_lightly(_visited_disagreement_impl, RUN_SOMETIMES, static_argnums=0)


def _record(
    i, kind, trial: _Trial, num, fit_report, model, params, config, learned, seconds=0.0
) -> TrialRecord:
    steps = trial.x.shape[0]
    states = np.concatenate([trial.x, trial.x_next[-1:]], axis=0)
    onpolicy = open_loop = predicted = optimism = None
    promised = real = spread = None
    if model is not None:
        promised = -trial.planned
        real = _window_returns(trial.rewards, config.horizon, steps < config.trial_steps)
        fits = np.isfinite(real)
        if fits.any():
            optimism = float(np.mean(promised[fits] - real[fits]))
        if model.config.ensemble_size > 1:
            spread = np.asarray(
                _visited_disagreement(
                    model,
                    params,
                    jnp.asarray(trial.x, jnp.float32),
                    jnp.asarray(trial.u, jnp.float32),
                ),
                np.float64,
            )
        rep = prediction_report(
            model,
            params,
            trial.x,
            trial.u,
            trial.x_next,
            rewards=trial.rewards if learned else None,
        )
        onpolicy = rep["rmse"]
        H = min(config.horizon, steps)
        open_loop = tuple(float(v) for v in open_loop_error(model, params, states, trial.u, H)[-1])
        predicted = _predict_open_loop(model, params, states[0], trial.u[:H])
    return TrialRecord(
        i + 1,
        kind,
        float(np.sum(trial.rewards)),
        steps,
        num,
        fit_report,
        onpolicy,
        open_loop,
        optimism,
        states,
        trial.u,
        predicted,
        promised,
        real,
        spread,
        float(seconds),
    )


def _open_loop_states_impl(model: NeuralModel, params: NeuralParams, x0, U) -> jax.Array:
    def step(x, u):
        x = model.dynamics(x, u, 0, params)
        return x, x

    return jnp.concatenate([x0[None], jax.lax.scan(step, x0, U)[1]])


#: `[H + 1, n]` the model's states from `x0` along the actions `U`; compiled lightly (once a
#: trial; a program per model, where a `jax.jit` per call compiled again each trial).
_open_loop_states = jit_lightly(_open_loop_states_impl, RUN_SOMETIMES, static_argnums=0)


def _predict_open_loop(model: NeuralModel, params: NeuralParams, x0, U) -> np.ndarray:
    x0 = jnp.asarray(x0, jnp.float32)
    U = jnp.asarray(np.asarray(U, np.float32).reshape(-1, model.action_dim))
    return np.asarray(_open_loop_states(model, params, x0, U), np.float64)


# ====================================================================== distillation
def distil(
    result: MBRLResult,
    config: Any = None,
    *,
    horizon: int = 30,
    iterations: int = 3,
    seed: int = 0,
) -> Any:
    """Distil MPC through the learned model into a policy network, by DAgger.

    The expert is iLQR-MPC re-planned every step through `result`'s model (its last fit,
    with the reward it planned with); the learner is `bellmax.imitation`'s behaviour-cloning
    MLP on the environment's observations, trained by DAgger (Ross, Gordon & Bagnell 2011) so
    it is labelled on the states it visits itself. The result acts without online planning.

    Args:
      result: from `run_mbrl`.
      config: a `bellmax.imitation.ImitationConfig` (default: DAgger, 600 labels in 6
        rounds of 100 steps, 3 evaluation episodes).
      horizon: the expert's planning horizon.
      iterations: the expert's iLQR iterations per step.
      seed: seed of the rollouts, the learner and the evaluations.

    Returns:
      `bellmax.imitation.ImitationResult` (its `params` act through
      `bellmax.imitation.bc.act`; `write_policy` saves them).
    """
    from bellmax.imitation import ImitationConfig, imitate, make_rollout_env, mpc_expert

    check_type(result, MBRLResult, "result", owner="distil")
    if str(result.env_id).startswith("gymnax:"):
        raise ValueError(
            f"distil runs through bellmax.imitation, which takes bellmax and Gymnasium ids, "
            f"not gymnax ones ({result.env_id}); learn on the bellmax id (e.g. Pendulum-v1)."
        )
    if config is None:
        config = ImitationConfig(
            algorithm="dagger", labels=600, rounds=6, labels_per_round=100,
            steps_per_round=100, eval_episodes=3,
        )  # fmt: skip
    env_id = result.env_id
    known = None if result.learned_reward else known_reward(env_id)
    reward = None if known is None else known[0]
    venv = make_rollout_env(env_id, num_envs=1, seed=seed)
    try:
        space = venv.action_space
    finally:
        venv.close()
    lo = np.asarray(space.low, np.float64).reshape(-1)
    hi = np.asarray(space.high, np.float64).reshape(-1)
    model = result.model
    problem = make_problem(
        model.dynamics,
        _ILQRCost(model, reward, 0.0),
        np.zeros(model.state_dim),
        check_int(horizon, "horizon", owner="distil", low=1),
        u_lower=lo,
        u_upper=hi,
        params=result.params,
    )
    try:
        physical: ParametricModel | None = model_for_env(env_id)
    except UnknownNameError:
        physical = None
    if physical is not None and tuple(physical.state_names) != tuple(result.state_names):
        physical = None  # the model learned on the observations themselves

    def observe(obs):
        o = np.asarray(obs, np.float64)
        return o if physical is None else physical.state_from_obs(o)

    expert = mpc_expert(
        problem, space, params=result.params, observe=observe, iterations=iterations
    )
    return imitate(env_id, expert, config, seed=seed)
