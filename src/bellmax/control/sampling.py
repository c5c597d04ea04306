"""Sampling-based MPC: the cross-entropy method (CEM) and model predictive path integral (MPPI).

Both optimise an open-loop control sequence `U [H, m]` by sampling perturbed sequences,
scoring each with a trajectory cost and moving a Gaussian towards the good ones; no
derivatives are needed, so the model may be any function (a neural ensemble, a simulator):

- CEM (Rubinstein 1999; as a planner, Botev et al. 2013 and PETS, Chua et al. 2018): sample
  `num_samples` sequences from `N(mean, std^2)` clipped to the control box, refit mean and
  std to the `elite_fraction` cheapest, smoothed by `momentum`, for `iterations` rounds.
- MPPI (Williams, Aldrich & Theodorou 2017, "Model predictive path integral control",
  eq. 12; Williams et al. 2018, "Information-theoretic MPC"): sample noise around the plan
  and average it with weights `w_i ~ exp(-(J_i - J_min) / lambda)`, the free-energy
  (maximum-entropy) optimum for temperature `lambda`. A fixed temperature is a guess; by
  default `lambda` is chosen per step as "the most random solution that doesn't hurt
  cost": the largest temperature (the flattest, highest-entropy weighting) whose weighted
  mean cost stays within `cost_tolerance` of the gap between the best and the average
  sample, `E_w[J] - J_min <= cost_tolerance (mean J - J_min)` (`mppi_temperature`; the
  left side grows with `lambda`, its derivative being `Var_w(J) / lambda^2`, so a
  bisection in `log lambda` finds it).

`make_sampling_mpc(problem_or_objective, ...)` gives a receding-horizon controller with the
interface of `bellmax.control.mpc.MPC` (`init`, `step(state, x, params)`, `u_lower`,
`u_upper`), so `closed_loop` and `closed_loop_host` run it unchanged: each step plans from
the measured state, applies the first control and keeps the rest of the mean, shifted by
one step, as the next warm start (the random key travels in the state). Everything is
jitted; samples are `vmap`ped. The trajectory cost is an `objective(x0, U, key, params)`:
`RolloutCost` rolls a `Problem`'s dynamics out; a stochastic objective (e.g. trajectory
sampling over an ensemble, `bellmax.models.mbrl`) uses the key. An objective may also have
a `batch(x0, U [N, H, m], keys [N], params) -> [N]` method giving the same numbers for all
samples at once (the ensemble objective's, which keeps its networks' member-first layout);
the planners then call that instead of vmapping. Non-finite sample costs
count as infinite; if every sample is non-finite the step keeps the previous plan and
reports `Status.DIVERGED`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.problems import Problem, float_dtype
from bellmax.core.caches import jit_per_static
from bellmax.core.checks import check_choice, check_int, check_number, check_seed, check_type
from bellmax.core.display import summary_repr
from bellmax.core.status import Status, StatusFields

__all__ = [
    "RolloutCost",
    "SamplingConfig",
    "SamplingMPC",
    "SamplingResult",
    "SamplingState",
    "make_sampling_mpc",
    "mppi_temperature",
    "plan",
]


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """Knobs of CEM and MPPI (hashable: part of the jit cache key)."""

    method: str = "cem"
    """`"cem"` or `"mppi"`."""
    num_samples: int = 400
    """Control sequences sampled per iteration."""
    iterations: int = 5
    """Sampling rounds per plan (per MPC step)."""
    init_std: float = 0.5
    """Initial sampling standard deviation, as a fraction of the control box's width."""
    elite_fraction: float = 0.1
    """CEM: share of the samples (the cheapest) that refit the Gaussian."""
    momentum: float = 0.1
    """CEM: weight of the old mean and std in each refit."""
    min_std: float = 0.01
    """CEM: smallest std (fraction of the box), so the search never freezes."""
    temperature: float | None = None
    """MPPI: a fixed temperature `lambda`; None chooses it per step (module docstring)."""
    cost_tolerance: float = 0.1
    """MPPI with the chosen temperature: how much of the best-to-average cost gap the
    weighted mean may give up."""
    seed: int = 0
    """Seed of the key `init` puts in the controller's state."""

    def __post_init__(self) -> None:
        owner = "SamplingConfig"
        check_choice(self.method, "method", ("cem", "mppi"), owner=owner)
        for name in ("num_samples", "iterations"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, owner=owner, low=1))
        check_number(self.init_std, "init_std", owner=owner, low=0, low_open=True)
        check_number(
            self.elite_fraction, "elite_fraction", owner=owner, low=0, high=1, low_open=True
        )
        check_number(self.momentum, "momentum", owner=owner, low=0, high=1, high_open=True)
        check_number(self.min_std, "min_std", owner=owner, low=0)
        if self.temperature is not None:
            check_number(self.temperature, "temperature", owner=owner, low=0, low_open=True)
        check_number(self.cost_tolerance, "cost_tolerance", owner=owner, low=0, low_open=True)
        object.__setattr__(self, "seed", check_seed(self.seed, "seed", owner=owner))

    @property
    def num_elites(self) -> int:
        """CEM's elite count, at least 1."""
        return max(1, int(self.elite_fraction * self.num_samples))


@dataclasses.dataclass(frozen=True)
class RolloutCost:
    """The total cost of `U` from `x0` under a problem's dynamics (deterministic; hashable).

    `objective(x0, U, key, params) = sum_t cost(x_t, u_t, t) + terminal_cost(x_H)`.
    """

    dynamics: Callable[..., jax.Array]
    """`dynamics(x, u, t, params) -> x_next`."""
    cost: Callable[..., jax.Array]
    """`cost(x, u, t, params) -> scalar`."""
    terminal_cost: Callable[..., jax.Array]
    """`terminal_cost(x, params) -> scalar`."""

    def __call__(self, x0: jax.Array, U: jax.Array, key: jax.Array, params: Any) -> jax.Array:
        del key

        def body(x, tu):
            t, u = tu
            c = self.cost(x, u, t, params)
            _check_scalar(c, "RolloutCost's cost(x, u, t, params)")
            return self.dynamics(x, u, t, params), c

        xT, c = jax.lax.scan(body, x0, (jnp.arange(U.shape[0]), U))
        cT = self.terminal_cost(xT, params)
        _check_scalar(cT, "RolloutCost's terminal_cost(x, params)")
        return jnp.sum(c) + cT


def _check_scalar(value: Any, what: str) -> None:
    """A cost at trace time: one number (a vector was summed silently: `x**2` for
    `sum(x**2)` planned another problem)."""
    if np.shape(value) != ():
        raise ValueError(
            f"{what} must return a scalar cost, got shape {np.shape(value)}; sum the terms "
            "yourself if that is the cost you mean (e.g. jnp.sum(x**2))."
        )


@struct.dataclass
class SamplingResult(StatusFields):
    """One plan of CEM or MPPI."""

    __repr__ = summary_repr

    U: jax.Array
    """`[H, m]` the planned controls (the final mean)."""
    std: jax.Array
    """`[H, m]` the final sampling std (CEM; MPPI keeps its noise level)."""
    cost: jax.Array
    """Objective of `U` (one evaluation with the last key)."""
    best_cost: jax.Array
    """Cheapest sample seen."""
    temperature: jax.Array
    """MPPI's last temperature (NaN for CEM)."""
    status: jax.Array
    """`Status.MAX_ITERATIONS` (ran its budget) or `Status.DIVERGED` (every sample was
    non-finite at some round; `U` is then the initial plan)."""


def mppi_temperature(costs: jax.Array, tolerance: float, *, iterations: int = 40) -> jax.Array:
    """The largest MPPI temperature whose weighted mean cost does not hurt the cost.

    `lambda* = max { lambda : E_w[J] - J_min <= tolerance (mean J - J_min) }` with
    `w ~ exp(-(J - J_min) / lambda)`, by bisection in `log lambda`. Non-finite costs get
    zero weight.

    Args:
      costs: `[N]` sample costs.
      tolerance: the share of the best-to-average gap the weighted mean may give up, > 0.
      iterations: bisection steps.

    Returns:
      The scalar temperature (> 0).
    """
    ok = jnp.isfinite(costs)
    jmin = jnp.min(jnp.where(ok, costs, jnp.inf))
    d = jnp.where(ok, costs - jmin, 0.0)
    n = jnp.maximum(jnp.sum(ok), 1)
    gap = jnp.sum(d) / n
    scale = jnp.maximum(gap, 1e-12)
    target = tolerance * gap

    def excess(log_lam):
        w = jnp.where(ok, jax.nn.softmax(jnp.where(ok, -d / jnp.exp(log_lam), -jnp.inf)), 0.0)
        return jnp.sum(w * d) - target

    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        fine = excess(mid) <= 0
        return jnp.where(fine, mid, lo), jnp.where(fine, hi, mid)

    lo0 = jnp.log(scale) - 20.0
    hi0 = jnp.log(scale) + 10.0
    lo, _ = jax.lax.fori_loop(0, iterations, body, (lo0, hi0))
    return jnp.exp(lo)


def _sample_costs(objective, x0, samples, key, params):
    """`[N]` costs of `[N, H, m]` samples; each sample gets its own key; NaN becomes inf.

    An objective with a `batch(x0, U [N, H, m], keys [N], params) -> [N]` method (the same
    numbers as one call per sample) is asked for all samples at once; others are vmapped.
    """
    n = samples.shape[0]
    keys = jax.random.split(key, n)
    batch = getattr(objective, "batch", None)
    if batch is not None:
        c = batch(x0, samples, keys, params)
    else:
        c = jax.vmap(lambda U, k: objective(x0, U, k, params))(samples, keys)
    shape, dtype = getattr(c, "shape", None), getattr(c, "dtype", None)
    if shape == (n,) and (
        jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    ):
        return jnp.where(jnp.isfinite(c), c, jnp.inf)
    got = type(c).__name__ if shape is None else f"{dtype} of shape {tuple(shape)}"
    plans = f"U [{', '.join(map(str, samples.shape[1:]))}]"
    if batch is not None:
        raise ValueError(
            f"the objective's batch(x0, U [N, H, m], keys [N], params) must return N real "
            f"costs, one per plan; for N = {n} plans {plans} it returned {got}."
        )
    if shape is not None and shape[:1] == (n,):
        got = f"{dtype} of shape {tuple(shape[1:])}"
    raise ValueError(
        f"the objective(x0, U, key, params) must return one real number, the plan's total "
        f"cost; for a plan {plans} it returned {got}. Sum per-step costs (`jnp.sum`), or "
        "build it with RolloutCost(problem)."
    )


def _cem_round(objective, cfg: SamplingConfig, lo, hi, x0, params, carry, key):
    mean, std, best, bad = carry
    k_eps, k_cost = jax.random.split(key)
    eps = jax.random.normal(k_eps, (cfg.num_samples, *mean.shape), mean.dtype)
    samples = jnp.clip(mean + std * eps, lo, hi)
    costs = _sample_costs(objective, x0, samples, k_cost, params)
    order = jnp.argsort(costs)[: cfg.num_elites]
    elites = samples[order]
    finite = jnp.isfinite(costs[order[0]])
    new_mean = cfg.momentum * mean + (1 - cfg.momentum) * jnp.mean(elites, axis=0)
    new_std = cfg.momentum * std + (1 - cfg.momentum) * jnp.std(elites, axis=0)
    new_std = jnp.maximum(new_std, cfg.min_std * (hi - lo))
    mean = jnp.where(finite, new_mean, mean)
    std = jnp.where(finite, new_std, std)
    return (mean, std, jnp.minimum(best, costs[order[0]]), bad | ~finite), jnp.nan


def _mppi_round(objective, cfg: SamplingConfig, lo, hi, x0, params, carry, key):
    mean, std, best, bad = carry
    k_eps, k_cost = jax.random.split(key)
    eps = jax.random.normal(k_eps, (cfg.num_samples, *mean.shape), mean.dtype)
    samples = jnp.clip(mean + std * eps, lo, hi)
    costs = _sample_costs(objective, x0, samples, k_cost, params)
    ok = jnp.isfinite(costs)
    finite = jnp.any(ok)
    if cfg.temperature is None:
        lam = mppi_temperature(costs, cfg.cost_tolerance)
    else:
        lam = jnp.asarray(cfg.temperature, costs.dtype)
    jmin = jnp.min(costs)
    w = jax.nn.softmax(jnp.where(ok, -(costs - jmin) / lam, -jnp.inf))
    w = jnp.where(ok, w, 0.0)
    new_mean = jnp.einsum("n,nhm->hm", w, samples)
    mean = jnp.where(finite, new_mean, mean)
    return (mean, std, jnp.minimum(best, jmin), bad | ~finite), lam


def _plan_impl(objective, cfg: SamplingConfig, x0, U0, std0, key, params, lo, hi):
    round_fn = _cem_round if cfg.method == "cem" else _mppi_round
    k_rounds, k_final = jax.random.split(key)
    carry = (U0, std0, jnp.asarray(jnp.inf, U0.dtype), jnp.asarray(False))

    def body(c, k):
        return round_fn(objective, cfg, lo, hi, x0, params, c, k)

    (U, std, best, bad), lams = jax.lax.scan(
        body, carry, jax.random.split(k_rounds, cfg.iterations)
    )
    cost = jnp.asarray(objective(x0, U, k_final, params), U0.dtype)
    status = jnp.where(bad, Status.DIVERGED, Status.MAX_ITERATIONS).astype(jnp.int32)
    U = jnp.where(bad, U0, U)
    return SamplingResult(U, std, cost, best, lams[-1], status)


_plan = jit_per_static(_plan_impl, static_argnums=(0, 1))


def _bounds(u_lower: Any, u_upper: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    lo = np.atleast_1d(np.asarray(u_lower, np.float64))
    hi = np.atleast_1d(np.asarray(u_upper, np.float64))
    if lo.shape != hi.shape or lo.ndim != 1:
        raise ValueError(f"u_lower and u_upper must be [m] vectors of one shape, got {lo}, {hi}.")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()) or (hi <= lo).any():
        raise ValueError(
            f"sampling planners need a finite control box with u_lower < u_upper, got "
            f"[{lo}, {hi}]; give the problem finite u_lower and u_upper."
        )
    return tuple(float(v) for v in lo), tuple(float(v) for v in hi)


def plan(
    objective: Callable[..., jax.Array],
    x0: jax.Array,
    U0: jax.Array,
    key: jax.Array,
    params: Any,
    *,
    u_lower: Any,
    u_upper: Any,
    config: SamplingConfig = SamplingConfig(),
) -> SamplingResult:
    """Plan `U [H, m]` from `x0` by CEM or MPPI (`config.method`), starting at `U0`.

    Args:
      objective: `objective(x0, U, key, params) -> scalar` (e.g. `RolloutCost`); hashable.
      x0: `[n]` initial state.
      U0: `[H, m]` initial mean.
      key: randomness.
      params: passed to the objective.
      u_lower, u_upper: the finite control box `[m]`.
      config: `SamplingConfig`.

    Returns:
      `SamplingResult`.
    """
    check_type(config, SamplingConfig, "config", owner="plan")
    lo, hi = _bounds(u_lower, u_upper)
    dtype = float_dtype(U0)
    lo_a, hi_a = jnp.asarray(lo, dtype), jnp.asarray(hi, dtype)
    U0 = jnp.asarray(U0, dtype)
    if U0.ndim != 2 or U0.shape[1] != len(lo):
        raise ValueError(f"U0 must be [H, {len(lo)}], got shape {U0.shape}.")
    std0 = jnp.broadcast_to(config.init_std * (hi_a - lo_a), U0.shape)
    x0 = jnp.asarray(x0, dtype)
    return _plan(objective, config, x0, U0, std0, key, params, lo_a, hi_a)


@struct.dataclass
class SamplingState(StatusFields):
    """What a sampling MPC carries between control steps (MPC's fields plus the key)."""

    __repr__ = summary_repr

    U: jax.Array
    """`[H, m]` the shifted plan (the next warm start)."""
    cost: jax.Array
    """Objective of the last plan."""
    iterations: jax.Array
    """Sampling rounds of the last plan."""
    status: jax.Array
    """`Status` of the last plan."""
    steps: jax.Array
    """Control steps taken since `init`."""
    key: jax.Array
    """Randomness for the next plan."""
    temperature: jax.Array
    """MPPI's last temperature (NaN for CEM)."""


@dataclasses.dataclass(frozen=True)
class SamplingMPC:
    """A receding-horizon CEM/MPPI controller with `MPC`'s interface. Build it with
    `make_sampling_mpc`."""

    objective: Callable[..., jax.Array]
    """`objective(x0, U, key, params) -> scalar`."""
    horizon: int
    """Planning horizon `H`."""
    u_lower: tuple[float, ...]
    """Control lower bounds."""
    u_upper: tuple[float, ...]
    """Control upper bounds."""
    config: SamplingConfig
    """Sampling settings."""

    @property
    def control_dim(self) -> int:
        """`m`."""
        return len(self.u_lower)

    @property
    def method(self) -> str:
        """`"cem"` or `"mppi"`."""
        return self.config.method

    def init(self, x0: jax.Array | None = None, U: jax.Array | None = None) -> SamplingState:
        """The state before the first step: the box's middle as the plan (or `U`)."""
        del x0
        dtype = float_dtype(U)
        lo, hi = jnp.asarray(self.u_lower, dtype), jnp.asarray(self.u_upper, dtype)
        if U is None:
            U = jnp.broadcast_to(0.5 * (lo + hi), (self.horizon, self.control_dim))
        elif jnp.shape(U) != (self.horizon, self.control_dim):
            raise ValueError(
                f"U has shape {jnp.shape(U)}, expected {(self.horizon, self.control_dim)}."
            )
        return SamplingState(
            U=jnp.asarray(U, dtype),
            cost=jnp.asarray(jnp.inf, dtype),
            iterations=jnp.asarray(0, jnp.int32),
            status=jnp.asarray(Status.MAX_ITERATIONS, jnp.int32),
            steps=jnp.asarray(0, jnp.int32),
            key=jax.random.key(self.config.seed),
            temperature=jnp.asarray(jnp.nan, dtype),
        )

    def step(
        self, state: SamplingState, x: jax.Array, params: Any
    ) -> tuple[jax.Array, SamplingState]:
        """Plan from `x` (warm-started); return the first control and the shifted plan.

        Pure and jittable. When every sample was non-finite the previous plan's first
        control is used and `state.status` is `Status.DIVERGED`.
        """
        return _sampling_step(self, state, x, params)


def _sampling_step_impl(mpc: SamplingMPC, state: SamplingState, x, params):
    dtype = state.U.dtype
    lo = jnp.asarray(mpc.u_lower, dtype)
    hi = jnp.asarray(mpc.u_upper, dtype)
    key, k_plan = jax.random.split(state.key)
    std0 = jnp.broadcast_to(mpc.config.init_std * (hi - lo), state.U.shape)
    res = _plan_impl(
        mpc.objective,
        mpc.config,
        jnp.asarray(x, dtype),
        state.U,
        std0,
        k_plan,
        params,
        lo,
        hi,
    )
    u = jnp.clip(res.U[0], lo, hi)
    new = SamplingState(
        U=jnp.concatenate([res.U[1:], res.U[-1:]], axis=0),
        cost=res.cost,
        iterations=jnp.asarray(mpc.config.iterations, jnp.int32),
        status=res.status,
        steps=state.steps + 1,
        key=key,
        temperature=jnp.asarray(res.temperature, dtype),
    )
    return u, new


_sampling_step = jit_per_static(_sampling_step_impl, static_argnums=0)


def make_sampling_mpc(
    problem: Problem | Callable[..., jax.Array],
    *,
    horizon: int | None = None,
    u_lower: Any = None,
    u_upper: Any = None,
    config: SamplingConfig = SamplingConfig(),
) -> SamplingMPC:
    """A CEM or MPPI receding-horizon controller.

    Args:
      problem: a `bellmax.control.Problem` (its dynamics and costs are rolled out by
        `RolloutCost`; its control box is used) or an `objective(x0, U, key, params)`.
      horizon: planning horizon; default `problem.horizon` (required with an objective).
      u_lower, u_upper: the finite control box (default the problem's).
      config: `SamplingConfig` (`method` picks CEM or MPPI).

    Returns:
      `SamplingMPC`.

    Raises:
      ValueError: no horizon or an infinite control box.
    """
    check_type(config, SamplingConfig, "config", owner="make_sampling_mpc")
    if isinstance(problem, Problem):
        objective: Callable[..., jax.Array] = RolloutCost(
            problem.dynamics, problem.cost, problem.terminal_cost
        )
        H = problem.horizon if horizon is None else horizon
        u_lower = problem.u_lower if u_lower is None else u_lower
        u_upper = problem.u_upper if u_upper is None else u_upper
    elif callable(problem):
        objective = problem
        if horizon is None or u_lower is None or u_upper is None:
            raise ValueError(
                "with an objective function give horizon, u_lower and u_upper, e.g. "
                "make_sampling_mpc(objective, horizon=25, u_lower=[-2], u_upper=[2])."
            )
        H = horizon
    else:
        raise TypeError(
            "problem must be a bellmax.control.Problem or an objective(x0, U, key, params), "
            f"got {type(problem).__name__}."
        )
    H = check_int(H, "horizon", owner="make_sampling_mpc", low=1)
    lo, hi = _bounds(u_lower, u_upper)
    return SamplingMPC(objective, H, lo, hi, config)
