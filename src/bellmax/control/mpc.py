"""Model predictive control: re-plan with iLQR or DDP at every step, warm-started.

At each control step MPC (Mayne, Rawlings, Rao & Scokaert 2000; Rawlings, Mayne & Diehl
2017, chapter 1) solves the finite-horizon problem from the measured state with a fixed
budget of iLQR/DDP iterations (`bellmax.control.ilqr`), applies the first control and
keeps the rest of the plan, shifted by one step, as the next warm start (Tassa, Erez &
Todorov 2012, section III, "MPC with warm starts").

- `make_mpc(problem, *, horizon, iterations, method)` -> `MPC`, whose pure methods
  `init(x0) -> MPCState` and `step(state, x, params) -> (u, state)` are jittable and
  vmappable (`MPC` is hashable, so it can be a static argument).
- `closed_loop(env, env_params, mpc, key, steps)`: a jitted rollout on a bellmax
  environment (one `lax.scan`).
- `closed_loop_host(env_id, mpc, ...)`: a host loop on any Gymnasium id through
  `bellmax.envs.gymnasium` (imported lazily: importing this module never imports gymnasium).

Controls are mapped to the environment's action space by `control_to_action`: a Box
action space gets the control box mapped linearly onto its bounds (CartPoleSwingUp-v0:
force in [-10, 10] N -> action in [-1, 1]); a Discrete(k) space gets the nearest of k
evenly spaced controls from `u_lower` to `u_upper` (CartPole-v1: push left -10 N or
right +10 N).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.ilqr import ILQRConfig, ILQRProblem, check_model_shapes, configure, solve
from bellmax.control.lqr import dlqr
from bellmax.control.problems import Problem, float_dtype
from bellmax.core.caches import jit_per_static
from bellmax.core.checks import check_choice, check_int, check_prng_key
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields
from bellmax.envs import spaces
from bellmax.envs.environment import Environment, EnvParams

__all__ = [
    "MPC",
    "ClosedLoopResult",
    "HostClosedLoopResult",
    "LQRController",
    "MPCState",
    "closed_loop",
    "closed_loop_host",
    "control_to_action",
    "make_lqr_controller",
    "make_mpc",
]


@struct.dataclass
class MPCState(StatusFields):
    """What MPC carries from one control step to the next."""

    __repr__ = summary_repr

    U: jax.Array
    """The current plan `[H, m]` (after the step: the shifted warm start)."""
    cost: jax.Array
    """Planned cost of the last solve."""
    iterations: jax.Array
    """iLQR/DDP iterations of the last solve."""
    status: jax.Array
    """`Status` of the last solve."""
    steps: jax.Array
    """Control steps taken since `init`."""


@dataclasses.dataclass(frozen=True)
class MPC:
    """A receding-horizon controller over iLQR/DDP. Build it with `make_mpc`.

    Hashable (callables, tuples and the config), so `jax.jit(f, static_argnums=...)` can
    take it, and its methods can be jitted or vmapped over states.
    """

    dynamics: Callable[..., jax.Array]
    """Model dynamics `dynamics(x, u, t, params)`."""
    cost: Callable[..., jax.Array]
    """Running cost."""
    terminal_cost: Callable[..., jax.Array]
    """Terminal cost of the planning horizon."""
    horizon: int
    """Planning horizon `H` in steps."""
    u_lower: tuple[float, ...]
    """Control lower bounds."""
    u_upper: tuple[float, ...]
    """Control upper bounds."""
    config: ILQRConfig
    """iLQR/DDP settings; `config.max_iterations` is the per-step budget."""
    state_dim: int | None = None
    """`n` of the problem the controller was built from (None: not known, not checked)."""
    params_family: type | None = None
    """The `EnvParams` family its model takes (`CartPoleParams`, `PendulumParams`), or None
    when the problem's parameters are not an environment's (then not checked)."""
    problem_name: str = ""
    """The problem's name, for messages."""

    @property
    def control_dim(self) -> int:
        """`m`."""
        return len(self.u_lower)

    @property
    def method(self) -> str:
        """`"ddp"` or `"ilqr"`."""
        return "ddp" if self.config.second_order else "ilqr"

    def init(self, x0: jax.Array | None = None, U: jax.Array | None = None) -> MPCState:
        """The state before the first step: a zero plan (clipped into the box) or `U`.

        Args:
          x0: unused (for symmetry with `step`; the plan does not depend on it).
          U: an optional initial plan `[H, m]` (e.g. an offline iLQR solution).

        Returns:
          `MPCState`.
        """
        del x0
        dtype = float_dtype(U)
        lo, hi = jnp.asarray(self.u_lower, dtype), jnp.asarray(self.u_upper, dtype)
        if U is None:
            U = jnp.clip(jnp.zeros((self.horizon, self.control_dim), dtype), lo, hi)
        elif jnp.shape(U) != (self.horizon, self.control_dim):
            raise ValueError(
                f"U has shape {jnp.shape(U)}, expected {(self.horizon, self.control_dim)}."
            )
        return MPCState(
            U=jnp.asarray(U, dtype),
            cost=jnp.asarray(jnp.inf, dtype),
            iterations=jnp.asarray(0, jnp.int32),
            status=jnp.asarray(Status.MAX_ITERATIONS, jnp.int32),
            steps=jnp.asarray(0, jnp.int32),
        )

    def step(self, state: MPCState, x: jax.Array, params: Any) -> tuple[jax.Array, MPCState]:
        """Plan from `x` with the iteration budget; return the first control and the new state.

        Pure and jittable (`jax.jit(mpc.step)`); a non-finite solve falls back to the
        previous plan's first control (reported in `state.status`).

        Args:
          state: from `init` or the previous `step`.
          x: the measured state `[n]`.
          params: model parameters (true or identified).

        Returns:
          `(u, new_state)`: the control `[m]` to apply now and the shifted plan.
        """
        return _mpc_step(self, state, x, params)


def _mpc_step_impl(mpc: MPC, state: MPCState, x: jax.Array, params: Any):
    lo = jnp.asarray(mpc.u_lower, state.U.dtype)
    hi = jnp.asarray(mpc.u_upper, state.U.dtype)
    x = jnp.asarray(x, state.U.dtype)
    model = ILQRProblem(mpc.dynamics, mpc.cost, mpc.terminal_cost, params, lo, hi)
    # on shapes, when the step is traced (once per compiled step; no cost per step)
    if x.ndim != 1:
        raise ValueError(f"x must be a state vector [n], got shape {x.shape}.")
    check_model_shapes(model, x, state.U, "x", "pass the state the model was built for")
    res = solve(model, mpc.config, x, state.U)
    ok = res.status != Status.DIVERGED
    U = jnp.where(ok, res.U, state.U)
    u = jnp.clip(U[0], lo, hi)
    U_next = jnp.concatenate([U[1:], U[-1:]], axis=0)
    new = MPCState(
        U=U_next,
        cost=res.cost,
        iterations=res.iterations,
        status=res.status,
        steps=state.steps + 1,
    )
    return u, new


_mpc_step = jit_per_static(_mpc_step_impl, static_argnums=0)


def make_mpc(
    problem: Problem,
    *,
    horizon: int | None = None,
    iterations: int = 5,
    method: str = "ilqr",
    config: ILQRConfig | None = None,
    **overrides: Any,
) -> MPC:
    """An MPC controller for `problem`'s dynamics, costs and control bounds.

    Args:
      problem: the model (its `x0` and `params` are not used: `step` takes the measured
        state and the parameters).
      horizon: planning horizon `H`; default `problem.horizon`.
      iterations: iLQR/DDP iterations per control step (the fixed budget).
      method: `"ilqr"` or `"ddp"`.
      config: base `ILQRConfig`; keyword `overrides` replace fields.

    Returns:
      `MPC`.

    Raises:
      ValueError: unknown method, bad horizon or iterations (controls may be unbounded:
        infinite bounds leave them free).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a bellmax.control.Problem, got {type(problem).__name__}.")
    check_choice(method, "method", ("ilqr", "ddp"), owner="make_mpc")
    H = check_int(
        problem.horizon if horizon is None else horizon, "horizon", owner="make_mpc", low=1
    )
    iterations = check_int(iterations, "iterations", owner="make_mpc", low=1)
    cfg = configure(
        config,
        **{"max_iterations": iterations, "second_order": method == "ddp", **overrides},
    )
    return MPC(
        dynamics=problem.dynamics,
        cost=problem.cost,
        terminal_cost=problem.terminal_cost,
        horizon=H,
        u_lower=tuple(float(v) for v in np.asarray(problem.u_lower)),
        u_upper=tuple(float(v) for v in np.asarray(problem.u_upper)),
        config=cfg,
        state_dim=problem.state_dim,
        params_family=_params_family(problem.params),
        problem_name=problem.name,
    )


def _params_family(params: Any) -> type | None:
    """The `EnvParams` class just below `EnvParams` that `params` belongs to
    (`CartPoleSwingUpParams` -> `CartPoleParams`), or None for other parameters."""
    if not isinstance(params, EnvParams):
        return None
    mro = type(params).__mro__
    return mro[mro.index(EnvParams) - 1]


def _check_controller_fits(
    env_name: str,
    controller: Any,
    x: Any,
    model_params: Any,
    whose: str,
    owner: str = "closed_loop",
) -> None:
    """Refuse a controller whose model was built for another system than the environment
    `env_name` (`closed_loop`'s bellmax env, `closed_loop_host`'s Gymnasium id).

    Called on shapes and types (when the closed loop is traced, or once before a host
    loop): the measured state `x` must have the controller's state size and the model
    parameters its `EnvParams` family, else the planner fails deep inside
    (`'PendulumParams' object has no attribute 'tau'`).

    Raises:
      TypeError: naming the controller's problem, the environment and what differs.
    """
    n = getattr(controller, "state_dim", None)
    family = getattr(controller, "params_family", None)
    takes, gets = [], []
    if n is not None and tuple(jnp.shape(x)) != (n,):
        takes.append(f"{n} states")
        gets.append(f"{env_name} gives states of shape {tuple(jnp.shape(x))}")
    if family is not None and not isinstance(model_params, family):
        takes.append(family.__name__)
        gets.append(f"it would get {type(model_params).__name__} ({whose})")
    if takes:
        name = getattr(controller, "problem_name", "")
        built = f" (problem {name!r})" if name else ""
        raise TypeError(
            f"{owner}: the controller does not fit {env_name}: its model{built} takes "
            f"{' and '.join(takes)}, but {' and '.join(gets)}. Build the controller from a "
            f"problem for {env_name} (bellmax.control.problems: cartpole_balance, "
            "cartpole_swingup, pendulum_swingup or env_problem), or pass observe= and "
            "model_params= that fit it."
        )


# ---------------------------------------------------------------------- LQR feedback
@dataclasses.dataclass(frozen=True)
class LQRController:
    """Infinite-horizon LQR state feedback `u = clip(K (x - goal))`, with MPC's interface.

    Build it with `make_lqr_controller`; `init`/`step` match `MPC`'s, so `closed_loop` and
    `closed_loop_host` run it unchanged. The gain is fixed (the model parameters passed to
    `step` are ignored: the linearisation was made with them in `make_lqr_controller`).
    """

    K: tuple[tuple[float, ...], ...]
    """Gain `[m, n]` (`u = K (x - goal)`)."""
    goal: tuple[float, ...]
    """The equilibrium state linearised about."""
    u_lower: tuple[float, ...]
    """Control lower bounds."""
    u_upper: tuple[float, ...]
    """Control upper bounds."""
    problem_name: str = ""
    """The problem's name, for messages."""

    @property
    def state_dim(self) -> int:
        """`n`, the size of the goal state (`closed_loop` checks the env's against it)."""
        return len(self.goal)

    @property
    def method(self) -> str:
        """`"lqr"`."""
        return "lqr"

    def init(self, x0: jax.Array | None = None, U: jax.Array | None = None) -> MPCState:
        """A state with MPC's fields (the plan is one step of zeros; nothing is carried)."""
        del x0, U
        dtype = float_dtype()
        return MPCState(
            U=jnp.zeros((1, len(self.u_lower)), dtype),
            cost=jnp.asarray(0.0, dtype),
            iterations=jnp.asarray(0, jnp.int32),
            status=jnp.asarray(Status.CONVERGED, jnp.int32),
            steps=jnp.asarray(0, jnp.int32),
        )

    def step(self, state: MPCState, x: jax.Array, params: Any) -> tuple[jax.Array, MPCState]:
        """`u = clip(K (x - goal))`; pure and jittable."""
        del params
        dtype = state.U.dtype
        K = jnp.asarray(self.K, dtype)
        u = K @ (jnp.asarray(x, dtype) - jnp.asarray(self.goal, dtype))
        u = jnp.clip(u, jnp.asarray(self.u_lower, dtype), jnp.asarray(self.u_upper, dtype))
        return u, state.replace(steps=state.steps + 1)


def make_lqr_controller(problem: Problem, params: Any = None) -> LQRController:
    """LQR about `problem.goal` (zero control) with the cost's curvature as weights.

    Linearises `problem.dynamics` at `(goal, 0)` and takes `Q`, `R` and the cross term from
    the Hessian of the running cost there (JAX derivatives, float64), then solves the DARE
    (`dlqr`).

    Args:
      problem: e.g. `cartpole_balance(params)`; needs `goal` and finite control bounds.
      params: model parameters; default `problem.params`.

    Returns:
      `LQRController`.

    Raises:
      ValueError: no goal, or the linearisation is not stabilisable (the DARE fails).
    """
    if problem.goal is None:
        raise ValueError("make_lqr_controller needs problem.goal, the state to hold.")
    p = problem.params if params is None else params
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), p)
        xg = jnp.asarray(problem.goal, jnp.float64)
        ug = jnp.zeros(problem.control_dim, jnp.float64)
        A = jax.jacfwd(lambda x: problem.dynamics(x, ug, 0, p64))(xg)
        B = jax.jacfwd(lambda u: problem.dynamics(xg, u, 0, p64))(ug)
        z = jnp.concatenate([xg, ug])
        n = xg.shape[0]
        H = jax.hessian(lambda z: problem.cost(z[:n], z[n:], 0, p64))(z)
        Q, R, M = H[:n, :n], H[n:, n:], H[:n, n:]
        try:
            sol = dlqr(A, B, Q, R, M=M)
        except ValueError as e:  # e.g. not stabilisable (dlqr names the mode)
            raise ValueError(f"LQR about the goal failed: {e} Or use MPC (ilqr-mpc).") from e
        K = np.asarray(sol.K)
        ok = int(sol.status) == int(Status.CONVERGED) and np.isfinite(K).all()
    if not ok:
        raise ValueError(
            f"LQR about the goal {tuple(np.asarray(problem.goal))} failed (status "
            f"{Status.name_of(sol.status)}): the linearised system is not stabilisable with "
            "these weights; use MPC (ilqr-mpc) instead."
        )
    return LQRController(
        K=tuple(tuple(float(v) for v in row) for row in K),
        goal=tuple(float(v) for v in np.asarray(problem.goal)),
        u_lower=tuple(float(v) for v in np.asarray(problem.u_lower)),
        u_upper=tuple(float(v) for v in np.asarray(problem.u_upper)),
        problem_name=problem.name,
    )


# ---------------------------------------------------------------------- actions
def control_to_action(u: jax.Array, space: spaces.Space, u_lower: Any, u_upper: Any) -> jax.Array:
    """Map a control onto an action space (module docstring).

    Args:
      u: control `[m]`.
      space: a bellmax `Box` (affine map of `[u_lower, u_upper]` onto `[low, high]`) or
        `Discrete(k)` (index of the nearest of `k` evenly spaced scalar controls).
      u_lower, u_upper: the control bounds (finite).

    Returns:
      The action (float array of the Box's shape, or an int32 scalar).

    Raises:
      ValueError: infinite bounds, or a Discrete space with a vector control.
      TypeError: another space type.
    """
    lo = np.asarray(u_lower, np.float64)
    hi = np.asarray(u_upper, np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(
            f"mapping controls to actions needs finite control bounds, got [{lo}, {hi}]; "
            "give the problem u_lower and u_upper."
        )
    if isinstance(space, spaces.Discrete):
        if lo.shape != (1,):
            raise ValueError(f"Discrete action spaces need a scalar control, got bounds {lo}.")
        levels = jnp.linspace(lo[0], hi[0], int(space.n))
        return jnp.argmin(jnp.abs(levels - u[0])).astype(jnp.int32)
    if isinstance(space, spaces.Box):
        low = jnp.asarray(space.low, jnp.float32)
        high = jnp.asarray(space.high, jnp.float32)
        frac = (u - lo) / np.where(hi > lo, hi - lo, 1.0)
        a = low + jnp.clip(frac, 0.0, 1.0) * (high - low)
        return jnp.reshape(a, space.shape).astype(space.dtype)
    raise TypeError(
        f"cannot map controls to {type(space).__name__} action spaces; use Box or Discrete."
    )


def _default_observe(obs: jax.Array, env_state: Any) -> jax.Array:
    vector = getattr(env_state, "vector", None)
    return vector() if callable(vector) else obs


# ---------------------------------------------------------------------- bellmax envs
@struct.dataclass
class ClosedLoopResult:
    """A closed-loop rollout of MPC on a bellmax environment (`steps` long)."""

    __repr__ = summary_repr

    states: jax.Array
    """Planner states `x_t` `[steps + 1, n]` (what MPC measured, plus the last)."""
    controls: jax.Array
    """Controls `[steps, m]`."""
    actions: jax.Array
    """Actions given to the environment `[steps, ...]`."""
    rewards: jax.Array
    """Rewards `[steps]` (zero after a termination)."""
    terminated: jax.Array
    """Whether the episode had terminated by step t `[steps]`."""
    iterations: jax.Array
    """iLQR/DDP iterations per step `[steps]`."""
    planned_cost: jax.Array
    """Planned cost per step `[steps]`."""
    status: jax.Array
    """The planner's `Status` per step `[steps]`: at a DIVERGED step (a non-finite plan, e.g.
    a model that returns NaN) MPC applied the previous plan's next control instead."""

    @property
    def diverged_steps(self) -> jax.Array:
        """Steps of the episode (before its termination) whose plan diverged (`status`
        DIVERGED); the loop plans on after a termination, and those plans do not count."""
        alive = jnp.concatenate([jnp.ones((1,), bool), ~self.terminated[:-1]])
        return jnp.sum((self.status == Status.DIVERGED) & alive)

    @property
    def total_reward(self) -> jax.Array:
        """Sum of rewards before the termination."""
        return jnp.sum(self.rewards)

    @property
    def alive_steps(self) -> jax.Array:
        """Steps of the episode, the terminating one included (all of them if it never
        terminated): the episode length Gymnasium counts."""
        return jnp.sum(jnp.concatenate([jnp.ones((1,), bool), ~self.terminated[:-1]]))


def closed_loop(
    env: Environment,
    env_params: Any,
    mpc: MPC,
    key: jax.Array,
    steps: int,
    *,
    model_params: Any = None,
    observe: Callable[[jax.Array, Any], jax.Array] | None = None,
) -> ClosedLoopResult:
    """Run MPC on a bellmax environment for `steps` steps, jitted end to end.

    The environment is not auto-reset: after a termination the rollout continues but the
    rewards are zeroed and `terminated` stays true.

    Args:
      env: a bellmax `Environment` (e.g. CartPoleSwingUp-v0, CartPole-v1).
      env_params: its parameters (the real system).
      mpc: from `make_mpc`.
      key: PRNG key (reset and steps).
      steps: number of control steps.
      model_params: the planner's model parameters; default `env_params` (the true model).
      observe: `(obs, env_state) -> x`, the planner's state; default
        `env_state.vector()` (full-state feedback) when the state has it, else `obs`.

    Returns:
      `ClosedLoopResult`.
    """
    steps = check_int(steps, "steps", owner="closed_loop", low=1)
    check_prng_key(key, "closed_loop")
    if isinstance(env, str) or (isinstance(env, tuple) and len(env) == 2):
        raise TypeError(
            f"closed_loop takes an environment object and its params, got {env!r}: env, "
            "params = bellmax.make(ID), then closed_loop(env, params, ...) (closed_loop_host "
            "takes a Gymnasium id)."
        )
    obs_fn = _default_observe if observe is None else observe
    space = _static_space(env.action_space(env_params))  # concrete params: outside jit
    return _closed_loop(env, mpc, steps, obs_fn, space, env_params, model_params, key)


def _static_space(space: spaces.Space) -> tuple:
    """A hashable description of an action space (a static argument of the jitted loop)."""
    if isinstance(space, spaces.Discrete):
        return ("discrete", int(space.n))
    if isinstance(space, spaces.Box):
        low = np.asarray(space.low, np.float32)
        high = np.asarray(space.high, np.float32)
        return (
            "box",
            tuple(space.shape),
            tuple(low.ravel().tolist()),
            tuple(high.ravel().tolist()),
        )
    return ("other", space)


def _space_from_static(desc: tuple) -> spaces.Space:
    if desc[0] == "discrete":
        return spaces.Discrete(desc[1])
    if desc[0] == "box":
        shape = desc[1]
        return spaces.Box(np.reshape(desc[2], shape), np.reshape(desc[3], shape), shape)
    return desc[1]


def _closed_loop_impl(env, mpc, steps, observe, space_desc, env_params, model_params, key):
    space = _space_from_static(space_desc)
    mparams = env_params if model_params is None else model_params
    key_reset, key_steps = jax.random.split(key)
    obs, env_state = env.reset(key_reset, env_params)
    # on shapes and types, when the loop is traced: no cost per call
    whose = f"{env.name}'s env_params" if model_params is None else "model_params"
    _check_controller_fits(env.name, mpc, observe(obs, env_state), mparams, whose)
    mstate = mpc.init()

    def body(c: _LoopCarry, key_t: jax.Array) -> tuple[_LoopCarry, ClosedLoopResult]:
        x = observe(c.obs, c.env_state)
        u, mstate = mpc.step(c.mpc_state, x, mparams)
        a = control_to_action(u, space, mpc.u_lower, mpc.u_upper)
        obs, env_state, r, term, _, _ = env.step(key_t, c.env_state, a, env_params)
        done = c.done | term
        out = ClosedLoopResult(
            states=x,
            controls=u,
            actions=a,
            rewards=jnp.where(c.done, 0.0, r),
            terminated=done,
            iterations=mstate.iterations,
            planned_cost=mstate.cost,
            status=mstate.status,
        )
        return _LoopCarry(obs, env_state, mstate, done), out

    keys = jax.random.split(key_steps, steps)
    carry = _LoopCarry(obs, env_state, mstate, jnp.asarray(False))
    last, out = jax.lax.scan(body, carry, keys)
    x_last = observe(last.obs, last.env_state)
    return out.replace(states=jnp.concatenate([out.states, x_last[None]], axis=0))


class _LoopCarry(NamedTuple):
    """`closed_loop`'s scan state."""

    obs: jax.Array
    env_state: Any
    mpc_state: MPCState
    done: jax.Array  # the episode has terminated


_closed_loop = jit_per_static(_closed_loop_impl, static_argnums=(0, 1, 2, 3, 4))


# ---------------------------------------------------------------------- Gymnasium envs
@dataclasses.dataclass
class HostClosedLoopResult:
    """MPC run on a Gymnasium environment through the bridge (host side, numpy)."""

    __repr__ = summary_repr

    episode_returns: np.ndarray
    """Returns of the finished episodes."""
    episode_lengths: np.ndarray
    """Lengths of the finished episodes."""
    ms_per_step: float
    """Mean wall-clock milliseconds of one (vectorised) MPC step, compile excluded."""
    steps: int
    """Vector steps taken."""
    diverged_steps: int = 0
    """Sub-environment steps whose plan diverged (MPC applied the previous plan's next
    control there; `MPCState.status`)."""


def closed_loop_host(
    env_id: str,
    mpc: MPC,
    model_params: Any,
    *,
    num_envs: int = 1,
    episodes: int = 1,
    max_steps: int = 100_000,
    seed: int = 0,
    observe: Callable[[np.ndarray], Any] | None = None,
    **make_kwargs: Any,
) -> HostClosedLoopResult:
    """Run MPC on a Gymnasium environment (any id, `module:EnvName-v0` included).

    `num_envs` sub-environments are stepped together, one vmapped MPC step per vector
    step; each sub-environment's plan restarts from zero when its episode ends. The run
    stops when every sub-environment has finished `episodes` episodes (or `max_steps`).

    Args:
      env_id: the Gymnasium id (through `bellmax.envs.gymnasium.make_host_vector_env`).
      mpc: from `make_mpc`.
      model_params: the planner's model parameters (e.g. `CartPoleParams()` or fitted ones).
      num_envs: sub-environments.
      episodes: episodes per sub-environment.
      max_steps: vector-step limit.
      seed: seed of the first reset.
      observe: `obs [N, ...] -> x [N, n]` on numpy arrays; default the observation itself.
      **make_kwargs: passed to `gymnasium.make`.

    Returns:
      `HostClosedLoopResult`: returns and lengths of the first `episodes` episodes of each
      sub-environment, and the mean ms per MPC step.
    """
    from bellmax.envs.gymnasium import make_host_vector_env  # lazy: gymnasium only here

    episodes = check_int(episodes, "episodes", owner="closed_loop_host", low=1)
    num_envs = check_int(num_envs, "num_envs", owner="closed_loop_host", low=1)
    venv = make_host_vector_env(env_id, num_envs=num_envs, seed=seed, **make_kwargs)
    try:
        space = venv.action_space
        init = mpc.init()
        states = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_envs, *a.shape)), init)

        @jax.jit
        def policy(states, x, done_prev):
            states = jax.tree.map(
                lambda s, i: jnp.where(
                    jnp.reshape(done_prev, (-1,) + (1,) * (s.ndim - 1)), i[None], s
                ),
                states,
                jax.tree.map(lambda a: a, init),
            )
            u, states = jax.vmap(lambda s, xx: mpc.step(s, xx, model_params))(states, x)
            a = jax.vmap(lambda uu: control_to_action(uu, space, mpc.u_lower, mpc.u_upper))(u)
            return a, states

        obs = venv.reset()
        done = np.zeros(num_envs, bool)
        finished = np.zeros(num_envs, np.int64)
        returns: list[list[float]] = [[] for _ in range(num_envs)]
        lengths: list[list[int]] = [[] for _ in range(num_envs)]
        obs_fn = (lambda o: o) if observe is None else observe
        # one sub-environment's state, before anything is traced
        x0 = np.asarray(obs_fn(obs))[0]
        _check_controller_fits(env_id, mpc, x0, model_params, "model_params", "closed_loop_host")
        a, _ = policy(states, jnp.asarray(obs_fn(obs), jnp.float32), jnp.asarray(done))
        jax.block_until_ready(a)  # compile outside the timing
        elapsed, step, diverged = 0.0, 0, 0
        while step < max_steps and (finished < episodes).any():
            t0 = time.perf_counter()
            a, states = policy(states, jnp.asarray(obs_fn(obs), jnp.float32), jnp.asarray(done))
            a = np.asarray(a)
            elapsed += time.perf_counter() - t0
            counted = finished < episodes  # sub-envs still in one of their episodes
            diverged += int(np.sum((np.asarray(states.status) == Status.DIVERGED) & counted))
            obs, _, term, trunc, info = venv.step(a)
            done = np.asarray(term | trunc)
            for i in np.flatnonzero(done):
                if finished[i] < episodes:
                    returns[i].append(float(info["episode_return"][i]))
                    lengths[i].append(int(info["episode_length"][i]))
                finished[i] += 1
            step += 1
    finally:
        venv.close()
    return HostClosedLoopResult(
        episode_returns=np.asarray([r for rs in returns for r in rs], np.float64),
        episode_lengths=np.asarray([n for ns in lengths for n in ns], np.int64),
        ms_per_step=1e3 * elapsed / max(step, 1),
        steps=step,
        diverged_steps=diverged,
    )
