"""Trajectory optimisation with local models under a KL trust region (LQR-FLM), and GPS.

A time-varying linear-Gaussian controller `p(u_t | x_t) = N(K_t x_t + k_t, Sigma_t)` is
improved from a few of its own rollouts (Levine & Abbeel 2014, "Learning Neural Network
Policies with Guided Policy Search under Unknown Dynamics", section 3):

1. run `M` rollouts of the current controller `p_old` from a fixed initial state;
2. fit linear-Gaussian dynamics per step with a Gaussian-mixture prior
   (`bellmax.models.local`), and a quadratic cost (the environment's own, differentiated, or
   a local fit to the sampled rewards of a black-box environment);
3. solve `min_p E_p[cost(tau)]` subject to `KL(p(tau) || p_old(tau)) <= epsilon`. Its
   Lagrangian, divided by the dual variable `eta`, is a maximum-entropy LQR with the cost
   `cost / eta - log p_old(u | x)`, whose solution is `p(u | x) = N(K x + k, Q_uu^{-1})`
   (`kl_lqr`, by `bellmax.control.finite_horizon_lqr` on that surrogate). The KL of the
   trajectory distributions (the dynamics cancel) is
   `sum_t E_{x_t ~ p}[KL(p(u_t | x_t) || p_old(u_t | x_t))]`, decreasing in `eta`; the
   dual variable is found by bisection in `log eta` between a bracket (`trust_region_lqr`)
   until the KL is within `tol` of `epsilon`, and the returned controller always satisfies
   `KL <= epsilon (1 + tol)`;
4. adapt `epsilon` from the improvement the old local models predicted against the one the
   new ones measure: `epsilon <- epsilon * clip(predicted / (2 (predicted - actual)),
   0.1, 5)` (Levine & Abbeel 2014, section 3.1; the step adjustment of GPS's reference
   code), within `[min_step_mult, max_step_mult]` times the base step.

`run_lqr_flm` runs the loop on an environment (`env_system`: a bellmax environment and its
own reward; `gymnasium_system`: any Gymnasium id as a black box). Action bounds: the
environments clip actions, so the LQR also sees a quadratic penalty beyond them
(`GPSConfig.action_penalty`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.control.lqr import finite_horizon_lqr
from bellmax.core.checks import check_int, check_number, check_seed
from bellmax.core.display import summary_repr
from bellmax.core.status import Status
from bellmax.models.data import check_finite_rollouts
from bellmax.models.local import (
    LocalCost,
    LocalDynamics,
    expand_cost,
    fit_gmm,
    fit_local_dynamics,
    fit_quadratic_cost,
    gmm_prior,
    joint_points,
)

__all__ = [
    "DEFAULT_STARTS",
    "GPSConfig",
    "GPSResult",
    "LinearGaussianPolicy",
    "LocalFit",
    "LocalSystem",
    "NoDefaultStartError",
    "PriorPool",
    "Samples",
    "TrustRegionConfig",
    "TrustRegionResult",
    "check_rollouts",
    "constant_policy",
    "env_system",
    "estimate_cost",
    "expected_cost",
    "fit_local",
    "gymnasium_system",
    "ilqr_reference",
    "kl_lqr",
    "next_step_multiplier",
    "policy_kl",
    "run_lqr_flm",
    "state_action_marginals",
    "state_fields",
    "state_from_vector",
    "step_multiplier",
    "trust_region_lqr",
]


def _sym(X: jax.Array) -> jax.Array:
    return 0.5 * (X + jnp.swapaxes(X, -1, -2))


@struct.dataclass
class LinearGaussianPolicy:
    """A time-varying linear-Gaussian controller `u_t ~ N(K_t x_t + k_t, cov_t)`."""

    __repr__ = summary_repr

    K: jax.Array
    """`[T, m, n]` feedback gains."""
    k: jax.Array
    """`[T, m]` feedforward terms."""
    cov: jax.Array
    """`[T, m, m]` action covariances."""

    @property
    def chol(self) -> jax.Array:
        """`[T, m, m]` lower Cholesky factors of `cov`."""
        return jnp.linalg.cholesky(self.cov)

    @property
    def precision(self) -> jax.Array:
        """`[T, m, m]` inverse covariances."""
        return _sym(jnp.linalg.inv(self.cov))

    @property
    def horizon(self) -> int:
        """`T`."""
        return int(self.K.shape[0])

    def mean(self, t: jax.Array, x: jax.Array) -> jax.Array:
        """The mean action `K_t x + k_t` at step `t`."""
        return self.K[t] @ x + self.k[t]


def constant_policy(
    horizon: int, state_dim: int, action_dim: int, std: float | jax.Array
) -> LinearGaussianPolicy:
    """`u_t ~ N(0, std^2 I)` at every step: the exploratory initial controller."""
    horizon = check_int(horizon, "horizon", owner="constant_policy", low=1)
    s = jnp.broadcast_to(jnp.asarray(std, jnp.float32), (action_dim,))
    return LinearGaussianPolicy(
        K=jnp.zeros((horizon, action_dim, state_dim)),
        k=jnp.zeros((horizon, action_dim)),
        cov=jnp.broadcast_to(jnp.diag(s**2), (horizon, action_dim, action_dim)),
    )


# ---------------------------------------------------------------------- marginals and KL
def state_action_marginals(
    policy: LinearGaussianPolicy,
    dynamics: LocalDynamics,
    x0_mean: jax.Array,
    x0_cov: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Gaussian marginals of `z_t = [x_t; u_t]` under the controller and linear dynamics.

    Args:
      policy: the controller.
      dynamics: the linear-Gaussian dynamics.
      x0_mean: `[n]`; x0_cov: `[n, n]` the initial-state distribution.

    Returns:
      `(mu [T, n+m], sigma [T, n+m, n+m])`.
    """

    def step(carry, inp):
        mx, Sx = carry
        K, k, cov, F, f, S = inp
        mu = jnp.concatenate([mx, K @ mx + k])
        SxK = Sx @ K.T
        top = jnp.concatenate([Sx, SxK], axis=1)
        bottom = jnp.concatenate([SxK.T, K @ SxK + cov], axis=1)
        sig = _sym(jnp.concatenate([top, bottom], axis=0))
        return (F @ mu + f, _sym(F @ sig @ F.T + S)), (mu, sig)

    inputs = (policy.K, policy.k, policy.cov, dynamics.F, dynamics.f, dynamics.cov)
    dtype = jnp.result_type(dynamics.F, policy.K, x0_mean)  # float64 models under x64
    start = (jnp.asarray(x0_mean, dtype), jnp.asarray(x0_cov, dtype))
    _, (mu, sig) = jax.lax.scan(step, start, inputs)
    return mu, sig


def policy_kl(
    new: LinearGaussianPolicy,
    old: LinearGaussianPolicy,
    mu: jax.Array,
    sigma: jax.Array,
) -> jax.Array:
    """Per-step `E_{x_t}[KL(new(u_t | x_t) || old(u_t | x_t))]` for `x_t ~ N(mu_x, sigma_xx)`.

    With `d(x) = (K - K_old) x + (k - k_old)` and `P_old = cov_old^{-1}`:
    `0.5 (tr(P_old cov) - m + log det cov_old - log det cov + E[d'P_old d])`, where
    `E[d'P_old d] = d(mu_x)'P_old d(mu_x) + tr(dK'P_old dK sigma_xx)`. Its sum over `t` is
    the KL of the trajectory distributions (same dynamics and initial state).

    Args:
      new, old: the controllers.
      mu: `[T, n+m]` (or `[T, n]`) state(-action) means under `new`.
      sigma: `[T, n+m, n+m]` (or `[T, n, n]`) their covariances.

    Returns:
      `[T]` the expected KL at each step.
    """
    n = new.K.shape[2]
    m = new.K.shape[1]
    mx, Sx = mu[:, :n], sigma[:, :n, :n]
    P_old = old.precision
    dK = new.K - old.K
    d = jnp.einsum("tij,tj->ti", dK, mx) + new.k - old.k
    quad = jnp.einsum("ti,tij,tj->t", d, P_old, d)
    quad = quad + jnp.einsum("tij,tjk,tkl,tli->t", dK, Sx, jnp.swapaxes(dK, 1, 2), P_old)
    _, logdet_old = jnp.linalg.slogdet(old.cov)
    _, logdet_new = jnp.linalg.slogdet(new.cov)
    tr = jnp.einsum("tij,tji->t", P_old, new.cov)
    return jnp.maximum(0.5 * (tr - m + logdet_old - logdet_new + quad), 0.0)


def expected_cost(cost: LocalCost, mu: jax.Array, sigma: jax.Array) -> jax.Array:
    """`sum_t E[0.5 z'C_t z + c_t'z + c0_t]` for `z_t ~ N(mu_t, sigma_t)`."""
    return jnp.sum(cost(mu) + 0.5 * jnp.einsum("tij,tji->t", cost.C, sigma))


# ---------------------------------------------------------------------- the KL-constrained LQR
def kl_lqr(
    dynamics: LocalDynamics,
    cost: LocalCost,
    old: LinearGaussianPolicy,
    eta: jax.Array,
    entropy: float | jax.Array = 0.0,
) -> tuple[LinearGaussianPolicy, jax.Array]:
    """The maximum-entropy LQR of `cost / eta - log old(u | x)` (module docstring, step 3).

    With an entropy bonus `nu` (`entropy`) the Lagrangian
    `E[cost] + eta (E[log p - log old]) - nu H(p)` divided by `eta + nu` gives the surrogate
    `(cost - eta log old(u | x)) / (eta + nu)` (the `max_ent_traj` term of GPS's reference
    code): the controller keeps some noise, so later rollouts still explore.

    The surrogate is quadratic: `-log old(u|x) = 0.5 (u - K x - k)'P (u - K x - k) + const`
    adds `K'PK` to the state block, `P` to the control block, `-K'P` to the cross block and
    `K'Pk`, `-Pk` to the linear terms. `bellmax.control.finite_horizon_lqr` solves it; the
    new controller's covariance is `Q_uu^{-1}`.

    Args:
      dynamics: local linear dynamics (the noise does not change the controller).
      cost: local quadratic cost.
      old: the controller of the trust region's centre.
      eta: the dual variable `> 0`.
      entropy: the entropy bonus `nu >= 0`.

    Returns:
      `(policy, ok)`: the controller and whether every `Q_uu` was positive definite.
    """
    n = dynamics.F.shape[1]
    scale = eta + entropy
    P = old.precision * (eta / scale)
    KtP = jnp.einsum("tji,tjk->tik", old.K, P)  # K'P [T, n, m]
    C, c = cost.C / scale, cost.c / scale
    Q = C[:, :n, :n] + jnp.einsum("tij,tjk->tik", KtP, old.K)
    R = C[:, n:, n:] + P
    M = C[:, :n, n:] - KtP
    q = c[:, :n] + jnp.einsum("tij,tj->ti", KtP, old.k)
    r = c[:, n:] - jnp.einsum("tij,tj->ti", P, old.k)
    sol = finite_horizon_lqr(
        dynamics.A,
        dynamics.B,
        _sym(Q),
        _sym(R),
        jnp.zeros((n, n), Q.dtype),
        M=M,
        c=dynamics.f,
        q=q,
        r=r,
    )
    Quu = _sym(sol.Q_uu)
    L = jnp.linalg.cholesky(Quu)
    ok = jnp.all(jnp.isfinite(L)) & jnp.all(jnp.isfinite(sol.K)) & jnp.all(jnp.isfinite(sol.k))
    eye = jnp.eye(Quu.shape[-1], dtype=Quu.dtype)
    Linv = jax.scipy.linalg.solve_triangular(L, jnp.broadcast_to(eye, Quu.shape), lower=True)
    cov = _sym(jnp.einsum("tji,tjk->tik", Linv, Linv))
    policy = LinearGaussianPolicy(K=sol.K, k=sol.k, cov=cov)
    return policy, ok & jnp.all(jnp.isfinite(cov))


@dataclasses.dataclass(frozen=True)
class TrustRegionConfig:
    """How the dual variable of the KL constraint is found."""

    tol: float = 0.1
    """Accept when the KL is within `tol * epsilon` of `epsilon`."""
    eta_min: float = 1e-4
    """Lower end of the bracket (a weaker constraint is treated as inactive)."""
    eta_max: float = 1e16
    """Upper end of the bracket (there the new controller is the old one)."""
    max_iterations: int = 60
    """Bisection steps at most (in `log eta`)."""

    def __post_init__(self) -> None:
        owner = "TrustRegionConfig"
        check_number(self.tol, "tol", owner=owner, low=0, low_open=True, high=1, high_open=True)
        check_number(self.eta_min, "eta_min", owner=owner, low=0, low_open=True)
        check_number(self.eta_max, "eta_max", owner=owner, low=self.eta_min, low_open=True)
        check_int(self.max_iterations, "max_iterations", owner=owner, low=1)


@struct.dataclass
class TrustRegionResult:
    """The KL-constrained update: the new controller, its dual variable and its KL."""

    __repr__ = summary_repr

    policy: LinearGaussianPolicy
    """The new controller (the old one if no feasible update was found)."""
    eta: jax.Array
    """The dual variable used."""
    kl: jax.Array
    """`KL(p_new(tau) || p_old(tau))` under the local dynamics."""
    predicted_cost: jax.Array
    """Expected cost of the new controller under the local models."""
    iterations: jax.Array
    """Dual evaluations (LQR solves) made."""
    status: jax.Array
    """CONVERGED (KL within `tol`, or the constraint inactive at `eta_min`),
    MAX_ITERATIONS (bracket not closed: the feasible end was returned) or DIVERGED
    (no feasible controller even at `eta_max`: the old one was returned)."""


def trust_region_lqr(
    dynamics: LocalDynamics,
    cost: LocalCost,
    old: LinearGaussianPolicy,
    x0_mean: jax.Array,
    x0_cov: jax.Array,
    epsilon: float | jax.Array,
    *,
    eta_init: float | jax.Array = 1.0,
    entropy: float | jax.Array = 0.0,
    config: TrustRegionConfig = TrustRegionConfig(),
) -> TrustRegionResult:
    """`min_p E_p[cost]` s.t. `KL(p(tau) || old(tau)) <= epsilon` (module docstring, step 3).

    Bisection in `log eta`: the bracket `[eta_min, eta_max]` shrinks around the `eta` whose
    KL equals `epsilon` (the KL decreases with `eta`; an `eta` whose LQR has an indefinite
    `Q_uu` counts as too small). The first guess is `eta_init` (the last iteration's).

    Args:
      dynamics, cost: the local models.
      old: the current controller.
      x0_mean, x0_cov: the initial-state distribution.
      epsilon: the KL bound (total over the horizon), `> 0`; `inf` for no constraint
        (the LQR at `eta_min`).
      eta_init: the first `eta` tried.
      entropy: the entropy bonus `nu` of `kl_lqr`.
      config: `TrustRegionConfig`.

    Returns:
      `TrustRegionResult`; its `kl <= epsilon * (1 + tol)` unless `status` is DIVERGED.
    """
    if not isinstance(config, TrustRegionConfig):
        raise TypeError(f"config must be a TrustRegionConfig, got {type(config).__name__}.")
    return _trust_region(
        dynamics,
        cost,
        old,
        x0_mean,
        x0_cov,
        jnp.asarray(epsilon),
        jnp.asarray(eta_init),
        jnp.asarray(entropy),
        config,
    )


def _evaluate(dynamics, cost, old, x0_mean, x0_cov, eta, entropy):
    policy, ok = kl_lqr(dynamics, cost, old, eta, entropy)
    mu, sigma = state_action_marginals(policy, dynamics, x0_mean, x0_cov)
    kl = jnp.sum(policy_kl(policy, old, mu, sigma))
    pred = expected_cost(cost, mu, sigma)
    ok = ok & jnp.isfinite(kl) & jnp.isfinite(pred)
    return policy, jnp.where(ok, kl, jnp.inf), pred


@partial(jax.jit, static_argnums=8)
def _trust_region(dynamics, cost, old, x0_mean, x0_cov, epsilon, eta_init, entropy, config):
    dtype = dynamics.F.dtype
    lo0 = jnp.log(jnp.asarray(config.eta_min, dtype))
    hi0 = jnp.log(jnp.asarray(config.eta_max, dtype))
    eps = epsilon.astype(dtype)

    def ev(log_eta):
        return _evaluate(dynamics, cost, old, x0_mean, x0_cov, jnp.exp(log_eta), entropy)

    # The unconstrained end first: if its KL is within the bound, the constraint is inactive.
    p_lo, kl_lo, pred_lo = ev(lo0)
    inactive = kl_lo <= eps * (1 + config.tol)
    p_hi, kl_hi, pred_hi = ev(hi0)
    feasible = kl_hi <= eps * (1 + config.tol)

    def cond(c):
        lo, hi, it, done, *_ = c
        return (~done) & (it < config.max_iterations)

    def body(c):
        lo, hi, it, done, guess, best, kl_best, pred_best, eta_best = c
        p, kl, pred = ev(guess)
        within = jnp.abs(kl - eps) <= config.tol * eps
        small = kl <= eps * (1 + config.tol)  # feasible: the bound holds (to tolerance)
        take = small  # the returned controller is always a feasible one
        best = jax.tree.map(lambda a, b: jnp.where(take, a, b), p, best)
        kl_best = jnp.where(take, kl, kl_best)
        pred_best = jnp.where(take, pred, pred_best)
        eta_best = jnp.where(take, guess, eta_best)
        too_big = kl > eps
        lo = jnp.where(too_big, guess, lo)
        hi = jnp.where(too_big, hi, guess)
        return lo, hi, it + 1, within, 0.5 * (lo + hi), best, kl_best, pred_best, eta_best

    guess0 = jnp.clip(jnp.log(eta_init.astype(dtype)), lo0, hi0)
    init = (
        lo0,
        hi0,
        jnp.asarray(2, jnp.int32),
        inactive | ~feasible,
        guess0,
        p_hi,
        kl_hi,
        pred_hi,
        hi0,
    )
    lo, hi, it, done, _, best, kl_best, pred_best, eta_best = jax.lax.while_loop(cond, body, init)
    within = jnp.abs(kl_best - eps) <= config.tol * eps
    pick = lambda a, b, c: jnp.where(inactive, a, jnp.where(feasible, b, c))  # noqa: E731
    policy = jax.tree.map(lambda a, b, c: pick(a, b, c), p_lo, best, old)
    status = pick(
        Status.CONVERGED,
        jnp.where(within, Status.CONVERGED, Status.MAX_ITERATIONS),
        Status.DIVERGED,
    ).astype(jnp.int32)
    return TrustRegionResult(
        policy=policy,
        eta=jnp.exp(pick(lo0, eta_best, hi0)),
        kl=pick(kl_lo, kl_best, jnp.zeros((), dtype)),
        predicted_cost=pick(pred_lo, pred_best, jnp.asarray(jnp.nan, dtype)),
        iterations=it,
        status=status,
    )


# ---------------------------------------------------------------------- systems
@struct.dataclass
class Samples:
    """`M` rollouts of a controller."""

    __repr__ = summary_repr

    X: jax.Array
    """`[M, T+1, n]` states (observations for a black-box environment)."""
    U: jax.Array
    """`[M, T, m]` the controller's actions (before any clipping by the environment)."""
    costs: jax.Array
    """`[M, T]` each step's cost (minus the reward)."""


@dataclasses.dataclass(frozen=True, eq=False)
class LocalSystem:
    """An environment as local methods see it: a fixed start, rollouts and (maybe) a cost.

    Build one with `env_system` (a bellmax environment, its differentiable reward) or
    `gymnasium_system` (any Gymnasium id, black box).
    """

    env_id: str
    """The environment id."""
    horizon: int
    """Steps `T` per rollout."""
    x0: np.ndarray
    """`[n]` the fixed initial state (observation for a black-box environment)."""
    action_dim: int
    """`m`."""
    action_low: np.ndarray
    """`[m]` lower action bounds."""
    action_high: np.ndarray
    """`[m]` upper action bounds."""
    rollout: Callable[[LinearGaussianPolicy, jax.Array, int, float], Samples]
    """`rollout(policy, key, num, noise) -> Samples` from `x0`; `noise=0` runs the mean."""
    cost: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None = None
    """`cost(x, u, t)` differentiable in `x` and `u`, or None (fitted from the samples)."""
    true_state: Callable[[np.ndarray], np.ndarray] | None = None
    """Maps `x0` to the true model's state (for `ilqr_reference`); None if `x0` is it."""

    @property
    def state_dim(self) -> int:
        """`n`."""
        return int(np.shape(self.x0)[0])


def state_fields(state: Any) -> tuple[str, ...]:
    """The fields of an env state that `state.vector()` stacks, in order."""
    return tuple(f.name for f in dataclasses.fields(state) if f.name not in ("time", "last_u"))


def state_from_vector(template: Any, fields: tuple[str, ...], x: jax.Array) -> Any:
    """The env state `template` with its `fields` set from the vector `x` (`state_fields`)."""
    return template.replace(
        **{f: x[i].astype(jnp.asarray(getattr(template, f)).dtype) for i, f in enumerate(fields)}
    )


@partial(jax.jit, static_argnums=(0, 1))
def _env_rollouts(env, fields, params, template, policy, x0, keys, noise):
    def one(key):
        def step(state, inp):
            t, k = inp
            x = state.vector()
            eps = jax.random.normal(k, policy.k.shape[1:], x.dtype)
            u = policy.K[t] @ x + policy.k[t] + noise * (policy.chol[t] @ eps)
            _, state2, r, _, _, _ = env.step(k, state, u, params)
            return state2, (x, u, -r)

        s0 = state_from_vector(template, fields, x0)
        T = policy.K.shape[0]
        sT, (X, U, c) = jax.lax.scan(step, s0, (jnp.arange(T), jax.random.split(key, T)))
        return jnp.concatenate([X, sT.vector()[None]], axis=0), U, c

    X, U, c = jax.vmap(one)(keys)
    return Samples(X=X, U=U, costs=c)


#: Swing-up starts of the bellmax environments local methods know (hanging at rest).
DEFAULT_STARTS: dict[str, tuple[float, ...]] = {
    "Pendulum-v1": (math.pi, 0.0),
    "CartPoleSwingUp-v0": (0.0, 0.0, math.pi, 0.0),
}


@functools.lru_cache(maxsize=16)
def _made(env_id: str) -> tuple[Any, Any, Any]:
    """`(env, params, a state)` of a bellmax id, one per id: the rollouts and the cost take
    the environment as a static argument, so systems of one id (another horizon or start,
    with and without the trust region) share their compiled programs."""
    from bellmax.envs.registry import make

    env, params = make(env_id)
    return env, params, env.reset(jax.random.key(0), params)[1]


class NoDefaultStartError(ValueError):
    """`env_system` without `x0` for an environment with no entry in `DEFAULT_STARTS`."""


def env_system(env_id: str, *, horizon: int = 100, x0: Any = None) -> LocalSystem:
    """A bellmax environment with a fixed start; its reward (negated) is the cost.

    The state is the environment's `state.vector()`; rollouts are the raw `step` (never
    reset: a terminated episode's physics continues to the horizon), jitted and vmapped.

    Args:
      env_id: a bellmax id whose state has `vector()` (`Pendulum-v1`, `CartPoleSwingUp-v0`).
      horizon: steps `T`.
      x0: the start state; default hanging at rest (`DEFAULT_STARTS`).

    Returns:
      A `LocalSystem`.
    """
    from bellmax.envs import spaces

    horizon = check_int(horizon, "horizon", owner="env_system", low=1)
    env, params, template = _made(env_id) if isinstance(env_id, str) else _made.__wrapped__(env_id)
    if not hasattr(template, "vector"):
        raise ValueError(
            f"{env_id!r}'s state has no vector(); local models need a continuous state "
            f"vector: use one of {sorted(DEFAULT_STARTS)} or a Gymnasium id."
        )
    if not isinstance(env.action_space(params), spaces.Box):
        raise ValueError(
            f"{env_id!r} has discrete actions; local linear-Gaussian controllers need a "
            "continuous (Box) action space (e.g. CartPoleSwingUp-v0, Pendulum-v1)."
        )
    fields = state_fields(template)
    if x0 is None:
        if env_id not in DEFAULT_STARTS:
            raise NoDefaultStartError(
                f"no default start for {env_id!r}; pass x0 (its state vector)."
            )
        x0 = DEFAULT_STARTS[env_id]
    x0 = np.asarray(x0, np.float32)
    if x0.shape != (len(fields),) or not np.isfinite(x0).all():
        raise ValueError(
            f"x0 must be {len(fields)} finite numbers ({', '.join(fields)}), got {x0!r}."
        )
    space = env.action_space(params)
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape).reshape(-1)

    def rollout(policy, key, num, noise=1.0):
        keys = jax.random.split(key, num)
        x = jnp.asarray(x0)
        return _env_rollouts(env, fields, params, template, policy, x, keys, noise)

    def cost(x, u, t):
        state = state_from_vector(template, fields, x)
        return -env.step_env(jax.random.key(0), state, u, params)[2]

    return LocalSystem(
        env_id=env_id,
        horizon=horizon,
        x0=x0,
        action_dim=int(low.shape[0]),
        action_low=low,
        action_high=high,
        rollout=rollout,
        cost=_Hashable(cost, (env, fields)),
    )


class _Hashable:
    """A closure hashable by a key (so jitted functions that take it static compile once)."""

    def __init__(self, fn: Callable[..., Any], key: Any):
        self.fn, self.key = fn, key

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Hashable) and self.key == other.key


def gymnasium_system(env_id: str, *, horizon: int = 100, seed: int = 0) -> LocalSystem:
    """A Gymnasium environment through the bridge, as a black box.

    The state is the observation; every rollout starts from the reset of `seed` (the same
    initial state each time); the cost is minus the reward, fitted by `fit_quadratic_cost`.

    Args:
      env_id: a Gymnasium id (`gymnasium:Pendulum-v1` for Gymnasium's own pendulum).
      horizon: steps `T` (within the environment's time limit).
      seed: the reset seed.

    Returns:
      A `LocalSystem` (host rollouts).
    """
    from bellmax.envs import spaces
    from bellmax.envs.gymnasium import make_host_vector_env

    horizon = check_int(horizon, "horizon", owner="gymnasium_system", low=1)
    vec = make_host_vector_env(env_id, num_envs=1, seed=int(seed))
    space = vec.action_space
    if not isinstance(space, spaces.Box):
        vec.close()
        raise ValueError(
            f"{env_id!r} has discrete actions; local linear-Gaussian controllers need a "
            "continuous (Box) action space."
        )
    x0 = np.asarray(vec.reset(seed=int(seed))[0], np.float32).reshape(-1)
    low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape).reshape(-1)
    shape = tuple(space.shape)

    def rollout(policy, key, num, noise=1.0):
        K, k, L = (np.asarray(a, np.float64) for a in (policy.K, policy.k, policy.chol))
        eps = np.asarray(jax.random.normal(key, (num, horizon, k.shape[1])), np.float64)
        X = np.zeros((num, horizon + 1, x0.shape[0]), np.float32)
        U = np.zeros((num, horizon, k.shape[1]), np.float32)
        c = np.zeros((num, horizon), np.float32)
        for i in range(num):
            obs = vec.reset(seed=int(seed))[0]
            for t in range(horizon):
                x = np.asarray(obs, np.float64).reshape(-1)
                u = K[t] @ x + k[t] + noise * (L[t] @ eps[i, t])
                obs_next, reward, term, trunc, info = vec.step(
                    u.astype(np.float32).reshape(1, *shape)
                )
                X[i, t], U[i, t], c[i, t] = x, u, -float(reward[0])
                obs = info["final_observation"][0]
                if (term[0] or trunc[0]) and t < horizon - 1:
                    raise ValueError(
                        f"{env_id!r} ended its episode at step {t + 1} < horizon {horizon}; "
                        "use a shorter --horizon (local methods need whole rollouts)."
                    )
            X[i, horizon] = np.asarray(obs, np.float32).reshape(-1)
        return Samples(X=jnp.asarray(X), U=jnp.asarray(U), costs=jnp.asarray(c))

    return LocalSystem(
        env_id=env_id,
        horizon=horizon,
        x0=x0,
        action_dim=int(low.shape[0]),
        action_low=low,
        action_high=high,
        rollout=rollout,
        cost=None,
    )


# ---------------------------------------------------------------------- the LQR-FLM loop
@dataclasses.dataclass(frozen=True)
class GPSConfig:
    """Knobs of trajectory optimisation with local models (LQR-FLM)."""

    iterations: int = 15
    """Iterations (rollouts, fits, one trust-region update each)."""
    samples: int = 5
    """Rollouts per iteration (at least 2: the local dynamics are fitted to them)."""
    kl_step: float = 1.0
    """Base KL bound per time step: the bound on `KL(p_new(tau) || p_old(tau))` is
    `kl_step * horizon * step_mult`; `inf` drops the trust region (plain LQR on the fits)."""
    adapt_step: bool = True
    """Adapt the bound from predicted against actual improvement."""
    min_step_mult: float = 0.01
    """Smallest multiplier of `kl_step`."""
    max_step_mult: float = 10.0
    """Largest multiplier of `kl_step`."""
    init_std: float = 0.5
    """Initial controller's action noise, as a fraction of the action range's half-width."""
    action_penalty: float = 10.0
    """Weight of `sum_i relu(|u_i - centre_i| - half_width_i)^2` added to the cost the LQR
    sees (not to the reported costs): the environment clips actions, so beyond the bounds
    the samples carry no information, and a controller that drifts there stops learning."""
    entropy: float = 0.0
    """Entropy bonus `nu` of the LQR (keeps exploration noise; `kl_lqr`)."""
    prior_clusters: int = 4
    """Clusters of the Gaussian-mixture dynamics prior."""
    prior_rollouts: int = 20
    """Most recent rollouts pooled into the prior."""
    prior_strength: float = 1.0
    """The prior's weight, in samples."""
    trust_region: TrustRegionConfig = TrustRegionConfig()
    """How the dual variable is found."""
    seed: int = 0
    """Seed of the action noise and the mixture fits."""

    def __post_init__(self) -> None:
        owner = "GPSConfig"
        for name in ("iterations", "samples", "prior_clusters", "prior_rollouts"):
            check_int(getattr(self, name), name, owner=owner, low=1)
        if self.samples < 2:
            raise ValueError(
                f"GPSConfig.samples must be at least 2, got {self.samples}: one rollout per "
                "iteration cannot fit the local dynamics, so the controller would never change."
            )
        check_number(self.kl_step, "kl_step", owner=owner, low=0, low_open=True, finite=False)
        check_number(self.min_step_mult, "min_step_mult", owner=owner, low=0, low_open=True)
        check_number(self.max_step_mult, "max_step_mult", owner=owner, low=self.min_step_mult)
        check_number(self.init_std, "init_std", owner=owner, low=0, low_open=True)
        check_number(self.prior_strength, "prior_strength", owner=owner, low=0, low_open=True)
        check_number(self.action_penalty, "action_penalty", owner=owner, low=0)
        check_number(self.entropy, "entropy", owner=owner, low=0)
        check_seed(self.seed, "seed", owner=owner)
        if not isinstance(self.trust_region, TrustRegionConfig):
            raise TypeError("trust_region must be a TrustRegionConfig.")


@struct.dataclass
class LocalFit:
    """One iteration's local models and initial-state distribution."""

    __repr__ = summary_repr

    dynamics: LocalDynamics
    cost: LocalCost
    x0_mean: jax.Array
    x0_cov: jax.Array


@dataclasses.dataclass(frozen=True)
class GPSResult:
    """What `run_lqr_flm` did (host-side numbers)."""

    __repr__ = summary_repr

    policy: LinearGaussianPolicy
    """The final controller."""
    iteration_costs: np.ndarray
    """`[iterations]` mean total cost of each iteration's rollouts."""
    kl: np.ndarray
    """`[iterations]` realised KL of each update (under the local models)."""
    kl_bound: np.ndarray
    """`[iterations]` the bound in force at each update (inf without a trust region)."""
    eta: np.ndarray
    """`[iterations]` the dual variables."""
    status: np.ndarray
    """`[iterations]` the trust-region solves' `Status` values."""
    final_cost: float
    """Total cost of one rollout of the final controller's mean (no noise)."""
    final_samples: Samples
    """That rollout."""
    seconds: float
    """Wall time."""

    @property
    def final_return(self) -> float:
        """`-final_cost`."""
        return -self.final_cost


def fit_local(
    system: LocalSystem,
    samples: Samples,
    key: jax.Array,
    points: jax.Array,
    weights: jax.Array,
    config: GPSConfig,
) -> LocalFit:
    """Local dynamics (with the mixture prior over `points`) and cost from `samples`."""
    Z = joint_points(samples.X, samples.U)
    gmm = fit_gmm(key, points, weights=weights, num_clusters=config.prior_clusters)
    prior = gmm_prior(gmm, Z, strength=config.prior_strength)
    dyn = fit_local_dynamics(samples.X, samples.U, prior=prior)
    if system.cost is not None:
        cost = expand_cost(system.cost, samples.X, samples.U)
    else:
        cost = fit_quadratic_cost(samples.X, samples.U, samples.costs)
    if config.action_penalty > 0:
        penalty = _BoundPenalty(
            tuple(float(v) for v in system.action_low),
            tuple(float(v) for v in system.action_high),
            float(config.action_penalty),
        )
        extra = expand_cost(penalty, samples.X, samples.U)
        cost = LocalCost(C=cost.C + extra.C, c=cost.c + extra.c, c0=cost.c0 + extra.c0)
    X0 = samples.X[:, 0]
    n = X0.shape[1]
    x0_cov = jnp.cov(X0.T).reshape(n, n) * (X0.shape[0] > 1) + 1e-6 * jnp.eye(n)
    return LocalFit(dynamics=dyn, cost=cost, x0_mean=jnp.mean(X0, axis=0), x0_cov=x0_cov)


@dataclasses.dataclass(frozen=True)
class _BoundPenalty:
    """`weight * sum_i relu(|u_i - centre_i| - half_i)^2`: zero inside the action box."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    weight: float

    def __call__(self, x: jax.Array, u: jax.Array, t: jax.Array) -> jax.Array:
        lo, hi = jnp.asarray(self.low, u.dtype), jnp.asarray(self.high, u.dtype)
        finite = jnp.isfinite(lo) & jnp.isfinite(hi)
        centre = jnp.where(finite, 0.5 * (lo + hi), 0.0)
        half = jnp.where(finite, 0.5 * (hi - lo), jnp.inf)
        excess = jnp.maximum(jnp.abs(u - centre) - half, 0.0)
        return self.weight * jnp.sum(jnp.where(finite, excess, 0.0) ** 2)


@jax.jit
def estimate_cost(policy: LinearGaussianPolicy, fit: LocalFit) -> jax.Array:
    """The expected cost of `policy` under a fit's models (a Laplace-type estimate)."""
    mu, sigma = state_action_marginals(policy, fit.dynamics, fit.x0_mean, fit.x0_cov)
    return expected_cost(fit.cost, mu, sigma)


def step_multiplier(predicted: float, actual: float, mult: float, config: GPSConfig) -> float:
    """The KL bound's new multiplier from predicted and actual improvement.

    `mult * clip(predicted / (2 max(1e-4, predicted - actual)), 0.1, 5)`, kept in
    `[min_step_mult, max_step_mult]`: a step that improved as predicted grows the bound, one
    that did worse than predicted shrinks it (Levine & Abbeel 2014, section 3.1).
    """
    if not (math.isfinite(predicted) and math.isfinite(actual)):
        factor = 0.1
    else:
        factor = predicted / (2.0 * max(1e-4, predicted - actual))
        factor = min(5.0, max(0.1, factor))
    return min(config.max_step_mult, max(config.min_step_mult, mult * factor))


@dataclasses.dataclass
class PriorPool:
    """The joint points of the last `prior_rollouts` rollouts (a host-side ring buffer),
    from which each iteration's mixture prior is fitted."""

    __repr__ = summary_repr

    points: np.ndarray
    weights: np.ndarray
    cursor: int = 0

    @classmethod
    def empty(cls, system: LocalSystem, config: GPSConfig) -> PriorPool:
        D = 2 * system.state_dim + system.action_dim
        capacity = config.prior_rollouts * system.horizon
        return cls(np.zeros((capacity, D), np.float32), np.zeros((capacity,), np.float32))

    def add_and_fit(
        self, system: LocalSystem, samples: Samples, key: jax.Array, config: GPSConfig
    ) -> LocalFit:
        """Pool the samples' points, then `fit_local` with the prior over the pool."""
        capacity, D = self.points.shape
        Z = np.asarray(joint_points(samples.X, samples.U)).reshape(-1, D)
        idx = (self.cursor + np.arange(Z.shape[0])) % capacity
        self.points[idx], self.weights[idx] = Z, 1.0
        self.cursor = (self.cursor + Z.shape[0]) % capacity
        return fit_local(
            system, samples, key, jnp.asarray(self.points), jnp.asarray(self.weights), config
        )


def next_step_multiplier(
    prev: tuple[LinearGaussianPolicy, LocalFit] | None,
    policy: LinearGaussianPolicy,
    fit: LocalFit,
    mult: float,
    config: GPSConfig,
) -> float:
    """The KL bound's multiplier after an update from `prev = (old policy, old fit)` to
    `policy`, whose samples gave `fit` (`step_multiplier`; unchanged without adaptation)."""
    if not config.adapt_step or prev is None or not math.isfinite(config.kl_step):
        return mult
    old_policy, old_fit = prev
    before = float(estimate_cost(old_policy, old_fit))
    predicted = before - float(estimate_cost(policy, old_fit))
    actual = before - float(estimate_cost(policy, fit))
    return step_multiplier(predicted, actual, mult, config)


def check_rollouts(samples: Samples, env_id: str, where: str) -> None:
    """Raise `DivergenceError` where `samples` hold a NaN or an infinity.

    Args:
      samples: the rollouts.
      env_id: the environment, for the message.
      where: what made them, for the message (e.g. `"LQR-FLM iteration 3"`).

    Raises:
      DivergenceError: a cost (minus the reward) or a state (observation) is not finite; the
        message says which, and the first rollout and step where it happened
        (`bellmax.models.data.check_finite_rollouts`, which MBRL's trials use too).
    """
    check_finite_rollouts(
        samples.X, samples.costs, env_id, where, consequence="no local model can be fitted"
    )


def run_lqr_flm(
    system: LocalSystem,
    config: GPSConfig = GPSConfig(),
    *,
    callback: Callable[[int, dict[str, float]], Any] | None = None,
) -> GPSResult:
    """Trajectory optimisation with local models under a KL trust region (module docstring).

    Args:
      system: `env_system(...)` or `gymnasium_system(...)`.
      config: `GPSConfig`.
      callback: called after each iteration with its index and numbers (`cost`: the mean
        cost of its rollouts, `kl`, `kl_bound`, `eta`); a true return value stops the loop
        there (e.g. once a target cost is reached).

    Returns:
      `GPSResult`.

    Raises:
      DivergenceError: a rollout's reward or observation went NaN or inf (`check_rollouts`:
        the message names the iteration).
    """
    if not isinstance(config, GPSConfig):
        raise TypeError(f"config must be a GPSConfig, got {type(config).__name__}.")
    start = time.perf_counter()
    T, n, m = system.horizon, system.state_dim, system.action_dim
    half = 0.5 * (system.action_high - system.action_low)
    std = np.where(np.isfinite(half), half, 1.0) * config.init_std
    policy = constant_policy(T, n, m, std)
    key = jax.random.key(config.seed)
    pool = PriorPool.empty(system, config)
    eta, mult = 1.0, 1.0
    prev: tuple[LinearGaussianPolicy, LocalFit] | None = None
    costs, kls, bounds, etas, statuses = [], [], [], [], []
    for it in range(config.iterations):
        key, k_roll, k_gmm = jax.random.split(key, 3)
        samples = system.rollout(policy, k_roll, config.samples, 1.0)
        check_rollouts(samples, system.env_id, f"LQR-FLM iteration {it + 1}")
        costs.append(float(jnp.mean(jnp.sum(samples.costs, axis=1))))
        fit = pool.add_and_fit(system, samples, k_gmm, config)
        mult = next_step_multiplier(prev, policy, fit, mult, config)
        bound = config.kl_step * T * mult
        res = trust_region_lqr(
            fit.dynamics,
            fit.cost,
            policy,
            fit.x0_mean,
            fit.x0_cov,
            bound,
            eta_init=eta,
            entropy=config.entropy,
            config=config.trust_region,
        )
        prev = (policy, fit)
        policy, eta = res.policy, float(res.eta)
        kls.append(float(res.kl))
        bounds.append(float(bound))
        etas.append(eta)
        statuses.append(int(res.status))
        if callback is not None and callback(
            it, {"cost": costs[-1], "kl": kls[-1], "kl_bound": bound, "eta": eta}
        ):
            break
    final = system.rollout(policy, key, 1, 0.0)
    check_rollouts(final, system.env_id, "LQR-FLM's final rollout (the controller's mean)")
    return GPSResult(
        policy=policy,
        iteration_costs=np.asarray(costs),
        kl=np.asarray(kls),
        kl_bound=np.asarray(bounds),
        eta=np.asarray(etas),
        status=np.asarray(statuses),
        final_cost=float(jnp.sum(final.costs)),
        final_samples=final,
        seconds=time.perf_counter() - start,
    )


def ilqr_reference(env_id: str, x0: Any, horizon: int, *, U0: Any = None, **options: Any) -> Any:
    """iLQR with the true model of a bellmax environment (state vector, reward as cost).

    The yardstick of local methods: the same cost, start and horizon, the true dynamics.
    iLQR is a local method too: on the pendulum swing-up from hanging (T = 100) it settles,
    depending on the initial controls, anywhere from 295 (one pump) to ~580 (`bench/gps.py`
    records the spread over random initial controls); from zero controls it reaches 480.

    Args:
      env_id: a bellmax id (`Pendulum-v1`, `CartPoleSwingUp-v0`).
      x0: the start state vector.
      horizon: steps.
      U0: `[horizon, action_dim]` initial controls (default zeros).
      options: `ILQRConfig` fields.

    Returns:
      `bellmax.control.ILQRResult` (its `cost` is minus the return).
    """
    from bellmax.control.ilqr import ilqr

    system = env_system(env_id, horizon=horizon, x0=x0)
    dyn, cost = _true_model(env_id)
    shape = (horizon, system.action_dim)
    if U0 is None:
        U0 = jnp.zeros(shape)
    else:
        U0 = jnp.asarray(U0, dtype=jnp.result_type(float))
        if U0.shape != shape:
            raise ValueError(
                f"ilqr_reference: U0 has shape {U0.shape}; it needs [horizon, action_dim] = "
                f"{list(shape)}."
            )
    return ilqr(
        dyn,
        cost,
        jnp.asarray(system.x0),
        U0,
        None,
        u_lower=system.action_low,
        u_upper=system.action_high,
        **options,
    )


_TRUE_MODELS: dict[str, Any] = {}


def _true_model(env_id: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """`(dynamics(x, u, t, params), cost(x, u, t, params))` of a bellmax env, cached."""
    if env_id not in _TRUE_MODELS:
        from bellmax.envs.registry import make

        env, params = make(env_id)
        _, template = env.reset(jax.random.key(0), params)
        fields = state_fields(template)

        def step(x, u):
            state = state_from_vector(template, fields, x)
            _, s2, r, _, _ = env.step_env(jax.random.key(0), state, u, params)
            return s2.vector(), -r

        # the env steps in float32; a solver in float64 (x64) keeps its own dtype
        def dynamics(x, u, t, p):
            return step(x, u)[0].astype(x.dtype)

        def cost(x, u, t, p):
            return step(x, u)[1].astype(x.dtype)

        _TRUE_MODELS[env_id] = (dynamics, cost)
    return _TRUE_MODELS[env_id]
