"""Partially and noisily observed versions of the cart-pole and the pendulum.

The physics, rewards, terminations and episode limits are the fully observed environments'
(`CartPole-v1` and `Pendulum-v1`, inherited, not rewritten); only the observation changes:
the velocities are hidden and what is measured carries independent Gaussian noise whose
standard deviations are `EnvParams` fields (so they can be vmapped or fitted).

- `PartialCartPole-v0`: observes `[x, theta] + noise` (the cart position and the pole
  angle; `x_obs_std`, `theta_obs_std`, 0.02 each by default).
- `PartialPendulum-v0`: observes the angle only, as `[cos theta, sin theta] + noise`
  (`angle_obs_std`, 0.02 by default): a point near the unit circle, so the measurement has
  no jump at `theta = +-pi`.

`observe(x, params)` is the noise-free measurement of the physics' state vector
(`state.vector()`), the function a filter (`bellmax.pomdp.particles`, `bellmax.pomdp.kalman`)
needs; `obs_std(params)` is the noise's standard deviation per component. The noise is drawn
from the `step`/`reset` key, so seeded runs reproduce.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.envs import spaces
from bellmax.envs._checks import bounded, nonnegative
from bellmax.envs.cartpole import CartPole, CartPoleParams
from bellmax.envs.pendulum import Pendulum, PendulumParams

__all__ = [
    "PartialCartPole",
    "PartialCartPoleParams",
    "PartialPendulum",
    "PartialPendulumParams",
]

_BIG = float(jnp.finfo(jnp.float32).max)


@struct.dataclass
class PartialCartPoleParams(CartPoleParams):
    """CartPole-v1's constants plus the sensor noise on the cart position and pole angle."""

    x_obs_std: float = bounded(0.02, nonnegative("the cart position sensor's noise, m"))
    """Standard deviation of the noise on the measured cart position, m."""
    theta_obs_std: float = bounded(0.02, nonnegative("the pole angle sensor's noise, rad"))
    """Standard deviation of the noise on the measured pole angle, rad."""


@struct.dataclass
class PartialPendulumParams(PendulumParams):
    """Pendulum-v1's constants plus the noise on the measured `(cos theta, sin theta)`."""

    angle_obs_std: float = bounded(0.02, nonnegative("the angle sensor's noise"))
    """Standard deviation of the noise on each of `cos theta` and `sin theta`."""


class _NoisySensor:
    """Replaces a fully observed environment's observation by `observe(state) + noise`.

    Mixed in before the physics' class, whose `reset_env`/`step_env` it wraps; subclasses
    define `observe(x, params)` and `obs_std(params)` (two components each here).
    """

    def _measure(self, key: jax.Array, state, params) -> jax.Array:
        y = self.observe(state.vector(), params)
        noise = self.obs_std(params) * jax.random.normal(key, y.shape, y.dtype)
        return (y + noise).astype(jnp.float32)

    def reset_env(self, key, params):
        k_state, k_obs = jax.random.split(key)
        _, state = super().reset_env(k_state, params)
        return self._measure(k_obs, state, params), state

    def step_env(self, key, state, action, params):
        k_step, k_obs = jax.random.split(key)
        _, state, reward, terminated, info = super().step_env(k_step, state, action, params)
        return self._measure(k_obs, state, params), state, reward, terminated, info

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-_BIG, _BIG, (2,), jnp.float32)


class PartialCartPole(_NoisySensor, CartPole):
    """CartPole-v1 seen only through noisy `[x, theta]` (velocities hidden).

    Actions, rewards, terminations and the 500-step limit are CartPole-v1's (see
    `CartPole` for what invalid actions do inside `jit`). Observations: float32 `[2]`.
    """

    params_type = PartialCartPoleParams
    env_id = "PartialCartPole-v0"

    @staticmethod
    def observe(x: jax.Array, params: PartialCartPoleParams | None = None) -> jax.Array:
        """The noise-free measurement `[x, theta]` of the state vector `[x, x_dot, theta, theta_dot]`."""
        return jnp.stack([x[..., 0], x[..., 2]], axis=-1)

    @staticmethod
    def obs_std(params: PartialCartPoleParams) -> jax.Array:
        """The sensor noise's standard deviations `[2]`."""
        return jnp.stack([jnp.asarray(params.x_obs_std), jnp.asarray(params.theta_obs_std)])


class PartialPendulum(_NoisySensor, Pendulum):
    """Pendulum-v1 seen only through a noisy angle, `[cos theta, sin theta] + noise`.

    Torques, rewards and the 200-step limit are Pendulum-v1's (see `Pendulum` for what
    invalid torques do inside `jit`). Observations: float32 `[2]`.
    """

    params_type = PartialPendulumParams
    env_id = "PartialPendulum-v0"

    @staticmethod
    def observe(x: jax.Array, params: PartialPendulumParams | None = None) -> jax.Array:
        """The noise-free measurement `[cos theta, sin theta]` of the state `[theta, theta_dot]`."""
        return jnp.stack([jnp.cos(x[..., 0]), jnp.sin(x[..., 0])], axis=-1)

    @staticmethod
    def obs_std(params: PartialPendulumParams) -> jax.Array:
        """The sensor noise's standard deviations `[2]`."""
        return jnp.full((2,), params.angle_obs_std)
