"""The extended Kalman filter: a Gaussian belief over a continuous state, linearised by JAX.

The baseline for the particle filter of `bellmax.pomdp.particles` (Thrun, Burgard & Fox,
"Probabilistic Robotics" 2005, table 3.3): the belief is `N(mean, cov)`; a step predicts
through the dynamics `f` linearised at the mean (`F = df/dx`, from `jax.jacfwd`),
`mean <- f(mean, u)`, `cov <- F cov F^T + Q`, then corrects with the observation `y` of
`h` linearised at the prediction (`H = dh/dx`): gain `K = cov H^T (H cov H^T + R)^-1`,
`mean <- mean + K (y - h(mean))`, `cov <- (I - K H) cov (I - K H)^T + K R K^T` (Joseph's
form, symmetric and positive semi-definite in floating point). `Q` and `R` are the process
and sensor noise covariances (diagonal here: per-component standard deviations).

It is exact for linear-Gaussian systems (then it is Kalman's filter); for the cart-pole and
the pendulum it is the usual first-order approximation, which the particle filter does not
need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.core.display import summary_repr

__all__ = ["GaussianBelief", "extended_kalman_step"]


@struct.dataclass
class GaussianBelief:
    """A Gaussian belief `N(mean, cov)` over a continuous state."""

    __repr__ = summary_repr

    mean: jax.Array
    """`[n]`."""
    cov: jax.Array
    """`[n, n]`, symmetric positive semi-definite."""


@functools.partial(jax.jit, static_argnames=("dynamics", "observe"))
def extended_kalman_step(
    belief: GaussianBelief,
    u: jax.Array,
    y: jax.Array,
    dynamics: Callable[[jax.Array, jax.Array], jax.Array],
    observe: Callable[[jax.Array], jax.Array],
    process_std: jax.Array,
    obs_std: jax.Array,
) -> GaussianBelief:
    """One EKF step: predict through `dynamics(x, u)` with control `u`, correct with `y`.

    Args:
      belief: the belief before the step.
      u: the control applied.
      y: the observation received after it.
      dynamics: `(x, u) -> x'`, the noise-free step (differentiable in `x`).
      observe: `x -> y`, the noise-free measurement (differentiable).
      process_std: `[n]` standard deviations of the process noise (`Q = diag(std^2)`).
      obs_std: `[p]` standard deviations of the sensor noise (`R = diag(std^2)`).

    Returns:
      The corrected `GaussianBelief`.
    """
    m, P = belief.mean, belief.cov
    F = jax.jacfwd(dynamics)(m, u)
    m = dynamics(m, u)
    P = F @ P @ F.T + jnp.diag(jnp.square(jnp.asarray(process_std, m.dtype)))
    H = jax.jacfwd(observe)(m)
    R = jnp.diag(jnp.square(jnp.asarray(obs_std, m.dtype)))
    S = H @ P @ H.T + R
    K = jnp.linalg.solve(S, H @ P).T  # P H^T S^-1 (S and P symmetric)
    m = m + K @ (y - observe(m))
    I_KH = jnp.eye(m.shape[0], dtype=m.dtype) - K @ H
    P = I_KH @ P @ I_KH.T + K @ R @ K.T
    return GaussianBelief(mean=m, cov=0.5 * (P + P.T))
