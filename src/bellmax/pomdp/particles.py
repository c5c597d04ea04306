"""Particle filters for continuous hidden states, and certainty-equivalent MPC on their estimate.

The bootstrap particle filter (Gordon, Salmond & Smith 1993; Doucet, de Freitas & Gordon 2001,
section 1.3) keeps `N` weighted samples of the state: each step moves every particle through
the noisy dynamics (the proposal is the prior), reweights it by the observation's likelihood,
and, when the effective sample size `1 / sum w_i^2` falls below `resample_below * N`,
resamples by systematic resampling (Kitagawa 1996: one uniform draw, `N` evenly spaced
pointers), which has the lowest variance of the simple schemes. Resampling duplicates the
likely particles, and with little process noise the copies stay close: the cloud then covers
too little of the state space to follow a state the observations do not measure (sample
impoverishment). `roughening > 0` adds, after each resampling, Gaussian jitter of standard
deviation `roughening * E * N^(-1/d)` per component, `E` the particles' range in it and `d`
the state's dimension (the "roughening" of Gordon, Salmond & Smith 1993, who used 0.2).
Every function is pure and jitted; `vmap` them over filters.

`filtered_mpc` closes the loop on a partially observed system: the true state moves by the
model's `dynamics` plus Gaussian process noise, the controller sees only `observe(x)` plus
Gaussian noise (for the cart-pole: the cart position and the pole angle, not the velocities),
the filter estimates the state, and `bellmax.control`'s MPC plans from the filter's mean
(certainty equivalence), all in one `lax.scan`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.control.problems import float_dtype
from bellmax.core.checks import check_choice, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.pomdp.kalman import GaussianBelief, extended_kalman_step

__all__ = [
    "FILTERS",
    "FilteredMPCResult",
    "ParticleBelief",
    "effective_sample_size",
    "filtered_mpc",
    "gaussian_log_likelihood",
    "particle_filter_step",
    "particle_mean",
    "systematic_resample",
]


@struct.dataclass
class ParticleBelief:
    """A weighted particle set: the filter's belief over a continuous state."""

    __repr__ = summary_repr

    particles: jax.Array
    """`[N, n]` states."""
    log_weights: jax.Array
    """`[N]` normalised log weights (`logsumexp = 0`)."""

    @classmethod
    def from_samples(cls, particles: jax.Array) -> ParticleBelief:
        """Equal weights on the given samples."""
        n = particles.shape[0]
        return cls(particles=particles, log_weights=jnp.full(n, -jnp.log(n), particles.dtype))


def effective_sample_size(log_weights: jax.Array) -> jax.Array:
    """`1 / sum_i w_i^2` of normalised weights (between 1 and N)."""
    return 1.0 / jnp.sum(jnp.exp(2.0 * log_weights))


def particle_mean(belief: ParticleBelief) -> jax.Array:
    """The weighted mean state `[n]`."""
    return jnp.exp(belief.log_weights) @ belief.particles


def systematic_resample(key: jax.Array, log_weights: jax.Array) -> jax.Array:
    """Indices `[N]` drawn by systematic resampling (Kitagawa 1996): pointers `(u + i) / N`."""
    n = log_weights.shape[0]
    cdf = jnp.cumsum(jnp.exp(log_weights - jax.nn.logsumexp(log_weights)))
    pointers = (jax.random.uniform(key) + jnp.arange(n)) / n
    return jnp.minimum(jnp.searchsorted(cdf, pointers, side="right"), n - 1)


def gaussian_log_likelihood(y: jax.Array, y_pred: jax.Array, std: jax.Array) -> jax.Array:
    """`log N(y; y_pred, diag(std^2))` up to a constant (summed over the last axis)."""
    return -0.5 * jnp.sum(((y - y_pred) / std) ** 2, axis=-1)


def particle_filter_step(
    key: jax.Array,
    belief: ParticleBelief,
    u: jax.Array,
    y: jax.Array,
    transition: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    log_likelihood: Callable[[jax.Array, jax.Array], jax.Array],
    resample_below: float = 0.5,
    roughening: float = 0.0,
) -> tuple[ParticleBelief, jax.Array]:
    """One bootstrap step: propagate, reweight by `y`, resample if the ESS is low.

    Args:
      key: PRNG key.
      belief: the belief before the step.
      u: the control applied.
      y: the observation received after it.
      transition: `(key, x, u) -> x'`, one noisy step of the dynamics for one particle.
      log_likelihood: `(y, x) -> log p(y | x)` for one particle (up to a constant).
      resample_below: resample when the ESS is below this fraction of `N`.
      roughening: after a resampling, jitter each component by `roughening` times its
        range times `N^(-1/d)` (module docstring); 0 (default): none.

    Returns:
      `(belief, ess)`: the new belief and the effective sample size before any resampling.
      Where no particle explains `y` (the likelihood is 0 for every particle, or its sum
      is not finite), the observation is not used: the moved particles keep their weights,
      `ess` is 0 (so they are resampled), and the belief is the prediction.

    Raises:
      TypeError: `roughening` is not a number (it is static: a Python number, not an array).
      ValueError: `roughening` is negative or not finite.
    """
    roughening = check_number(roughening, "roughening", owner="particle_filter_step", low=0)
    return _particle_filter_step(
        key, belief, u, y, transition, log_likelihood, resample_below, roughening
    )


@functools.partial(jax.jit, static_argnames=("transition", "log_likelihood", "roughening"))
def _particle_filter_step(
    key, belief, u, y, transition, log_likelihood, resample_below, roughening
):
    kp, kr = jax.random.split(key)
    n = belief.particles.shape[0]
    moved = jax.vmap(transition, in_axes=(0, 0, None))(jax.random.split(kp, n), belief.particles, u)
    logw = belief.log_weights + jax.vmap(log_likelihood, in_axes=(None, 0))(y, moved)
    total = jax.nn.logsumexp(logw)
    # No particle explains y (every likelihood 0, or one overflowed): -inf - -inf would make
    # every weight NaN. The observation is dropped instead (the prediction kept), ESS 0.
    explained = jnp.isfinite(total)
    logw = jnp.where(explained, logw - total, belief.log_weights)
    ess = jnp.where(explained, effective_sample_size(logw), 0.0)

    def resample(_):
        parts = moved[systematic_resample(kr, logw)]
        if roughening:  # a Python float: no jitter, no draw, when it is 0
            spread = jnp.max(parts, axis=0) - jnp.min(parts, axis=0)
            scale = roughening * spread * n ** (-1.0 / parts.shape[-1])
            noise = jax.random.normal(jax.random.fold_in(kr, 1), parts.shape, parts.dtype)
            parts = parts + scale * noise
        return ParticleBelief(particles=parts, log_weights=jnp.full(n, -jnp.log(n), logw.dtype))

    new = jax.lax.cond(
        ess < resample_below * n, resample, lambda _: ParticleBelief(moved, logw), None
    )
    return new, ess


@struct.dataclass
class FilteredMPCResult:
    """A closed loop of MPC on a particle filter's estimate."""

    __repr__ = summary_repr

    states: jax.Array
    """True states `[T + 1, n]`."""
    estimates: jax.Array
    """The filter's mean after each observation `[T + 1, n]`."""
    controls: jax.Array
    """Controls applied `[T, m]`."""
    ess: jax.Array
    """Effective sample size at each update `[T]` (NaN for the extended Kalman filter; 0
    where no particle explained the observation and the filter kept its prediction)."""

    @property
    def errors(self) -> jax.Array:
        """`|estimate - state|` per step and coordinate `[T + 1, n]`."""
        return jnp.abs(self.estimates - self.states)

    @property
    def rmse(self) -> jax.Array:
        """Root mean squared error of each coordinate over the run `[n]`."""
        return jnp.sqrt(jnp.mean((self.estimates - self.states) ** 2, axis=0))


@dataclasses.dataclass(frozen=True)
class _Noise:
    """The noisy system: dynamics plus Gaussian process noise, sensor plus Gaussian noise."""

    dynamics: Callable
    observe: Callable
    process_std: tuple[float, ...]
    obs_std: tuple[float, ...]

    def transition(self, params, key, x, u, t=0):
        x2 = self.dynamics(x, u, t, params)
        return x2 + jnp.asarray(self.process_std, x.dtype) * jax.random.normal(
            key, x.shape, x.dtype
        )

    def log_likelihood(self, y, x):
        return gaussian_log_likelihood(y, self.observe(x), jnp.asarray(self.obs_std, x.dtype))


@dataclasses.dataclass(frozen=True)
class _ParticleFilter:
    """`filtered_mpc`'s bootstrap particle filter: init, update, estimate."""

    noise: _Noise
    num_particles: int
    resample_below: float
    roughening: float

    def init(self, key, x0, init_std):
        parts = x0 + init_std * jax.random.normal(key, (self.num_particles, x0.shape[0]), x0.dtype)
        return ParticleBelief.from_samples(parts)

    def update(self, key, belief, u, y, params):
        transition = functools.partial(self.noise.transition, params)
        return particle_filter_step(
            key,
            belief,
            u,
            y,
            transition,
            self.noise.log_likelihood,
            self.resample_below,
            self.roughening,
        )

    def estimate(self, belief):
        return particle_mean(belief)


@dataclasses.dataclass(frozen=True)
class _EKF:
    """`filtered_mpc`'s extended Kalman filter (`bellmax.pomdp.kalman`): init, update, estimate."""

    noise: _Noise

    def init(self, key, x0, init_std):
        del key
        return GaussianBelief(mean=x0, cov=jnp.diag(jnp.square(init_std)))

    def update(self, key, belief, u, y, params):
        del key
        new = extended_kalman_step(
            belief,
            u,
            y,
            lambda x, u: self.noise.dynamics(x, u, 0, params),
            self.noise.observe,
            jnp.asarray(self.noise.process_std, y.dtype),
            jnp.asarray(self.noise.obs_std, y.dtype),
        )
        return new, jnp.asarray(jnp.nan, y.dtype)

    def estimate(self, belief):
        return belief.mean


#: `filtered_mpc`'s filters.
FILTERS = ("particle", "ekf")


def filtered_mpc(
    mpc: Any,
    params: Any,
    x0: jax.Array,
    key: jax.Array,
    steps: int,
    *,
    observe: Callable[[jax.Array], jax.Array],
    obs_std: tuple[float, ...],
    process_std: tuple[float, ...],
    init_std: tuple[float, ...],
    num_particles: int = 500,
    resample_below: float = 0.5,
    roughening: float = 0.0,
    filter: str = "particle",
) -> FilteredMPCResult:
    """Certainty-equivalent MPC on a filter's estimate, jitted in one scan.

    The true system and its sensor draw their noise from the same keys whichever the
    filter, so two filters run with the same `key` see the same noise (their trajectories
    still part once their controls differ).

    Args:
      mpc: an `MPC` (or `LQRController`) from `bellmax.control` over the model's dynamics.
      params: the model's (and the true system's) parameters.
      x0: the true initial state `[n]`.
      key: PRNG key.
      steps: control steps.
      observe: `x -> y`, what the sensor measures (noise added here).
      obs_std: the sensor noise's standard deviation per component of `y`.
      process_std: the process noise's standard deviation per state component.
      init_std: the spread of the initial belief around `x0` (particles drawn from it; the
        EKF's initial covariance).
      num_particles: `N` (particle filter only).
      resample_below: ESS fraction that triggers resampling (particle filter only).
      roughening: jitter after resampling (`particle_filter_step`; particle filter only).
      filter: `"particle"` (the bootstrap particle filter) or `"ekf"` (the extended Kalman
        filter of `bellmax.pomdp.kalman`, the baseline).

    Returns:
      `FilteredMPCResult` (its `ess` is NaN for the EKF).
    """
    steps = check_int(steps, "steps", owner="filtered_mpc", low=1)
    num_particles = check_int(num_particles, "num_particles", owner="filtered_mpc", low=2)
    check_number(resample_below, "resample_below", owner="filtered_mpc", low=0, high=1)
    check_number(roughening, "roughening", owner="filtered_mpc", low=0)
    check_choice(filter, "filter", FILTERS, owner="filtered_mpc")
    noise = _Noise(
        mpc.dynamics, observe, tuple(map(float, process_std)), tuple(map(float, obs_std))
    )
    if filter == "particle":
        filt = _ParticleFilter(noise, num_particles, float(resample_below), float(roughening))
    else:
        filt = _EKF(noise)
    return _filtered_mpc(
        mpc,
        filt,
        steps,
        tuple(map(float, init_std)),
        params,
        jnp.asarray(x0, float_dtype()),  # the model's float (float64 under x64)
        key,
    )


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _filtered_mpc(mpc, filt, steps, init_std, params, x0, key):
    noise = filt.noise
    k0, key = jax.random.split(key)
    belief = filt.init(k0, x0, jnp.asarray(init_std, x0.dtype))

    def body(carry, _):
        x, belief, mstate, key = carry
        key, kx, ky, kf = jax.random.split(key, 4)
        u, mstate = mpc.step(mstate, filt.estimate(belief), params)
        x2 = noise.transition(params, kx, x, u)
        y_true = noise.observe(x2)
        y = y_true + jnp.asarray(noise.obs_std, x.dtype) * jax.random.normal(
            ky, y_true.shape, x.dtype
        )
        belief, ess = filt.update(kf, belief, u, y, params)
        return (x2, belief, mstate, key), (x2, filt.estimate(belief), u, ess)

    init = (x0, belief, mpc.init(x0), key)
    _, (xs, ests, us, ess) = jax.lax.scan(body, init, None, length=steps)
    return FilteredMPCResult(
        states=jnp.concatenate([x0[None], xs]),
        estimates=jnp.concatenate([filt.estimate(belief)[None], ests]),
        controls=us,
        ess=ess,
    )
