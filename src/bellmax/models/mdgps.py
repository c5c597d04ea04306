"""Mirror descent guided policy search (MD-GPS): a neural policy supervised by local controllers.

Montgomery & Levine 2016, "Guided Policy Search via Approximate Mirror Descent", algorithm 2
(the variant whose samples come from the local controllers). Each iteration:

1. run `M` rollouts of the local time-varying linear-Gaussian controller `p` from the fixed
   start, and fit local dynamics and cost (`bellmax.models.gps.fit_local`);
2. C-step: linearise the global policy `pi_theta` about the samples,
   `pi_bar(u_t | x_t) = N(Kbar_t x_t + kbar_t, Sigma_pi)` with `Kbar_t` the mean Jacobian
   `d pi / d x` over the samples of step `t` and `kbar_t = mean(pi(x_t)) - Kbar_t mean(x_t)`,
   and solve the LQR under `KL(p(tau) || pi_bar(tau)) <= epsilon`
   (`bellmax.models.gps.trust_region_lqr` with `pi_bar` as the trust region's centre);
   before the policy has been trained at all the centre is the old local controller (the
   LQR-FLM step);
3. S-step: fit `pi_theta` by supervised regression on the new controller's mean actions
   `K_t x + k_t` at the sampled states, each residual weighted by the controller's
   precision `cov_t^{-1}` (the KL's policy-dependent term, `E_p[KL(p || pi)]`, for a
   deterministic `pi` with the covariance `Sigma_pi`); `Sigma_pi` is the inverse of the
   mean precision (GPS's policy variance);
4. adapt `epsilon` from the predicted against the actual improvement of the trust
   region's centre, the linearised global policy (`bellmax.models.gps.step_multiplier`):
   the last centre's expected cost under the last fit, against this iteration's centre's
   under the last fit (predicted) and under this iteration's fit (actual), as the MD-GPS
   step adjustment of GPS's reference code does. (Measuring the local controller's
   improvement instead, as LQR-FLM does, let the bound grow while the policy did not
   follow: on the pendulum swing-up, seed 2, the costs climbed from ~500 back to ~800.)

The controller's trust region is against the global policy, so the local controllers cannot
run away to behaviour the policy cannot represent; the policy runs alone at the end: no
local controller and no planner.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int, check_number, check_type
from bellmax.core.display import summary_repr
from bellmax.deep.networks import activation_fn, check_hidden_sizes
from bellmax.models.data import check_policy_return
from bellmax.models.gps import (
    GPSConfig,
    LinearGaussianPolicy,
    LocalSystem,
    PriorPool,
    check_rollouts,
    constant_policy,
    next_step_multiplier,
    trust_region_lqr,
)
from bellmax.models.through_model import (
    ANGLE_DIMS,
    NeuralPolicy,
    adam_steps,
    evaluate_policy,
    make_neural_policy,
)

__all__ = [
    "MDGPSConfig",
    "MDGPSResult",
    "linearise_policy",
    "run_mdgps",
    "supervised_step",
]


@dataclasses.dataclass(frozen=True)
class MDGPSConfig:
    """Knobs of MD-GPS (the local side's are `GPSConfig`'s)."""

    gps: GPSConfig = dataclasses.field(default_factory=GPSConfig)
    """The local controllers' loop: iterations, rollouts per iteration, KL step, priors."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """The global policy's hidden widths."""
    activation: str = "tanh"
    """Its hidden activation."""
    policy_updates: int = 300
    """Adam steps of the S-step per iteration (continuing from the last parameters)."""
    learning_rate: float = 3e-3
    """The policy's Adam step size."""
    batch_size: int = 128
    """Sampled states per Adam step."""

    def __post_init__(self) -> None:
        owner = "MDGPSConfig"
        check_type(self.gps, GPSConfig, "gps", owner=owner)
        object.__setattr__(self, "hidden_sizes", check_hidden_sizes(self.hidden_sizes, owner=owner))
        activation_fn(self.activation)
        check_int(self.policy_updates, "policy_updates", owner=owner, low=1)
        check_int(self.batch_size, "batch_size", owner=owner, low=1)
        check_number(self.learning_rate, "learning_rate", owner=owner, low=0, low_open=True)


@partial(jax.jit, static_argnums=0)
def linearise_policy(
    policy: NeuralPolicy, params: Any, X: jax.Array, cov: jax.Array
) -> LinearGaussianPolicy:
    """The global policy as a time-varying linear-Gaussian one about sampled states.

    Args:
      policy, params: the neural policy.
      X: `[M, T, n]` sampled states (step `t` of each rollout).
      cov: `[m, m]` the policy's action covariance `Sigma_pi`.

    Returns:
      `LinearGaussianPolicy` with `K_t` the mean Jacobian over the `M` samples of step `t`,
      `k_t = mean(pi(x_t)) - K_t mean(x_t)`, and `cov` at every step.
    """
    U = jax.vmap(jax.vmap(lambda x: policy(params, x)))(X)
    J = jax.vmap(jax.vmap(jax.jacobian(lambda x: policy(params, x))))(X)
    K = jnp.mean(J, axis=0)
    k = jnp.mean(U, axis=0) - jnp.einsum("tij,tj->ti", K, jnp.mean(X, axis=0))
    T = X.shape[1]
    return LinearGaussianPolicy(K=K, k=k, cov=jnp.broadcast_to(cov, (T, *cov.shape)))


def _weighted_loss(policy, params, x, target, weight):
    d = policy(params, x) - target
    return d @ weight @ d


@partial(jax.jit, static_argnums=(0, 1))
def supervised_step(
    policy: NeuralPolicy,
    config: MDGPSConfig,
    params: Any,
    controller: LinearGaussianPolicy,
    X: jax.Array,
    key: jax.Array,
) -> tuple[Any, jax.Array]:
    """The S-step: fit the policy to the controller's mean actions, precision-weighted.

    Minimises `mean_{i,t} (pi(x_t^i) - K_t x_t^i - k_t)' W_t (pi(x_t^i) - K_t x_t^i - k_t)`
    with `W_t = cov_t^{-1} / mean_t(tr cov_t^{-1} / m)` (precisions scaled to mean 1) by
    `config.policy_updates` Adam steps on minibatches of `config.batch_size`.

    Args:
      policy, config: the policy and the knobs.
      params: the parameters to start from.
      controller: the local controller (its `K`, `k`, `cov`).
      X: `[M, T, n]` sampled states.
      key: the minibatches' randomness.

    Returns:
      `(params, losses [policy_updates])`.
    """
    M, T, n = X.shape
    targets = jnp.einsum("tij,mtj->mti", controller.K, X) + controller.k[None]
    prec = controller.precision
    m = prec.shape[-1]
    prec = prec / jnp.mean(jnp.trace(prec, axis1=1, axis2=2) / m)
    xs = X.reshape(M * T, n)
    ys = targets.reshape(M * T, -1)
    ws = jnp.broadcast_to(prec[None], (M, T, m, m)).reshape(M * T, m, m)

    def loss_fn(p, k):
        idx = jax.random.randint(k, (config.batch_size,), 0, M * T)
        per = jax.vmap(lambda a, b, c: _weighted_loss(policy, p, a, b, c))(
            xs[idx], ys[idx], ws[idx]
        )
        return jnp.mean(per)

    keys = jax.random.split(key, config.policy_updates)
    return adam_steps(loss_fn, params, keys, config.learning_rate, None)


@dataclasses.dataclass(frozen=True)
class MDGPSResult:
    """What `run_mdgps` did (host-side numbers)."""

    __repr__ = summary_repr

    policy: NeuralPolicy
    """The global policy's static description."""
    policy_params: Any
    """Its final parameters."""
    controller: LinearGaussianPolicy
    """The last local controller."""
    iteration_costs: np.ndarray
    """`[iterations]` mean cost of each iteration's local-controller rollouts."""
    policy_costs: np.ndarray
    """`[iterations]` cost of the global policy alone (no noise) after each S-step."""
    kl: np.ndarray
    """`[iterations]` realised `KL(p_new || centre)` of each C-step."""
    kl_bound: np.ndarray
    """`[iterations]` the bound in force."""
    eta: np.ndarray
    """`[iterations]` the dual variables."""
    final_cost: float
    """The global policy's cost alone from the start (`policy_costs[-1]`)."""
    final_states: np.ndarray
    """`[T + 1, n]` its states."""
    seconds: float
    """Wall time."""

    @property
    def final_return(self) -> float:
        """`-final_cost`."""
        return -self.final_cost


def run_mdgps(
    system: LocalSystem,
    config: MDGPSConfig = MDGPSConfig(),
    *,
    callback: Callable[[int, dict[str, float]], Any] | None = None,
) -> MDGPSResult:
    """MD-GPS on a bellmax environment with a fixed start (module docstring).

    Args:
      system: `bellmax.models.gps.env_system(...)` of an id in
        `bellmax.models.through_model.ANGLE_DIMS`.
      config: `MDGPSConfig`.
      callback: called after each iteration with its index and numbers (`cost`: the mean
        cost of the local controller's rollouts, `policy_cost`: the neural policy's alone,
        `kl`, `kl_bound`, `eta`); a true return value stops the loop there.

    Returns:
      `MDGPSResult`.

    Raises:
      DivergenceError: a rollout's reward or state went NaN or inf
        (`bellmax.models.gps.check_rollouts`: the message names the iteration), or the
        neural policy's return, run alone, did (`bellmax.models.data.check_policy_return`:
        the S-step's fit diverged, or the environment under the policy's actions).
    """
    check_type(config, MDGPSConfig, "config", owner="run_mdgps")
    check_type(system, LocalSystem, "system", owner="run_mdgps")
    if system.cost is None or system.env_id not in ANGLE_DIMS:
        raise ValueError(
            f"run_mdgps needs a bellmax environment with a known state layout "
            f"({', '.join(sorted(ANGLE_DIMS))}) built by env_system, got {system.env_id!r}."
        )
    start = time.perf_counter()
    gcfg = config.gps
    policy = make_neural_policy(
        system.env_id, hidden_sizes=config.hidden_sizes, activation=config.activation,
        squash=False,
    )  # fmt: skip
    T, n, m = system.horizon, system.state_dim, system.action_dim
    half = 0.5 * (system.action_high - system.action_low)
    std = np.where(np.isfinite(half), half, 1.0) * gcfg.init_std
    controller = constant_policy(T, n, m, std)
    key = jax.random.key(gcfg.seed)
    key, k_init = jax.random.split(key)
    params = policy.init(k_init)
    pol_cov = None
    pool = PriorPool.empty(system, gcfg)
    eta, mult = 1.0, 1.0
    prev = None
    costs, pol_costs, kls, bounds, etas = [], [], [], [], []
    states = None
    for it in range(gcfg.iterations):
        key, k_roll, k_gmm, k_sup = jax.random.split(key, 4)
        samples = system.rollout(controller, k_roll, gcfg.samples, 1.0)
        check_rollouts(samples, system.env_id, f"MD-GPS iteration {it + 1}")
        costs.append(float(jnp.mean(jnp.sum(samples.costs, axis=1))))
        fit = pool.add_and_fit(system, samples, k_gmm, gcfg)
        X = samples.X[:, :T]
        centre = controller if pol_cov is None else linearise_policy(policy, params, X, pol_cov)
        mult = next_step_multiplier(prev, centre, fit, mult, gcfg)
        bound = gcfg.kl_step * T * mult
        res = trust_region_lqr(
            fit.dynamics, fit.cost, centre, fit.x0_mean, fit.x0_cov, bound,
            eta_init=eta, entropy=gcfg.entropy, config=gcfg.trust_region,
        )  # fmt: skip
        prev = (centre, fit)
        controller, eta = res.policy, float(res.eta)
        kls.append(float(res.kl))
        bounds.append(float(bound))
        etas.append(eta)
        params, losses = supervised_step(policy, config, params, controller, X, k_sup)
        pol_cov = jnp.linalg.inv(jnp.mean(controller.precision, axis=0))
        ret, states, _ = evaluate_policy(system.env_id, policy, params, x0=system.x0, steps=T)
        check_policy_return(
            ret,
            states,
            params,
            system.env_id,
            f"MD-GPS iteration {it + 1}",
            losses=losses,
            fit_diverged=(
                f"its S-step fit diverged (the loss of its last Adam step is "
                f"{float(losses[-1])}), so its weights are not finite. Lower the policy's "
                f"learning rate (from Python: MDGPSConfig.learning_rate, now "
                f"{config.learning_rate})."
            ),
        )
        pol_costs.append(-ret)
        numbers = {"cost": costs[-1], "policy_cost": -ret, "kl": kls[-1], "kl_bound": bound}
        if callback is not None and callback(it, {**numbers, "eta": eta}):
            break
    return MDGPSResult(
        policy=policy,
        policy_params=params,
        controller=controller,
        iteration_costs=np.asarray(costs),
        policy_costs=np.asarray(pol_costs),
        kl=np.asarray(kls),
        kl_bound=np.asarray(bounds),
        eta=np.asarray(etas),
        final_cost=float(pol_costs[-1]),
        final_states=np.asarray(states),
        seconds=time.perf_counter() - start,
    )
