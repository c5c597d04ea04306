"""Gymnasium's Pendulum-v1, exactly: swing a pendulum up with a bounded torque.

Frames (500x500 RGB, Gymnasium's picture plus the last torque as an arc) come from
`bellmax.envs.render.render_frame(env, state, params)`, or `render_mode="rgb_array"`
through the Gymnasium bridge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.envs import spaces
from bellmax.envs._checks import bounded, episode_limit, nonnegative, positive
from bellmax.envs.environment import Environment, EnvParams, EnvState


@struct.dataclass
class PendulumState(EnvState):
    """Angle (0 = upright) and angular velocity; `last_u` is the last applied torque."""

    theta: jax.Array
    theta_dot: jax.Array
    last_u: jax.Array
    time: jax.Array

    def vector(self) -> jax.Array:
        """The state as `[theta, theta_dot]`."""
        return jnp.stack([self.theta, self.theta_dot])


@struct.dataclass
class PendulumParams(EnvParams):
    """Gymnasium's Pendulum-v1 constants."""

    max_speed: float = bounded(8.0, positive("the angular-velocity clip, rad/s"))
    """Angular velocity clip, rad/s."""
    max_torque: float = bounded(2.0, nonnegative("the torque bound, N m"))
    """Torque bound, N m."""
    dt: float = bounded(0.05, positive("the time step, s"))
    """Time step, s."""
    g: float = bounded(
        10.0, nonnegative("gravity in m/s^2, pulling the pendulum down; below 0 it would push up")
    )
    """Gravity, m/s^2."""
    m: float = bounded(1.0, positive("the mass, kg"))
    """Mass, kg."""
    l: float = bounded(1.0, positive("the length, m"))  # noqa: E741  (Gymnasium's name)
    """Length, m."""
    max_steps_in_episode: int = episode_limit(200)
    """Steps until truncation."""


def angle_normalize(x: jax.Array) -> jax.Array:
    """Wrap an angle to `[-pi, pi)`."""
    return ((x + jnp.pi) % (2 * jnp.pi)) - jnp.pi


def pendulum_step(s: jax.Array, torque: jax.Array, params: PendulumParams) -> jax.Array:
    """One step of Gymnasium's semi-implicit update of `s = [theta, theta_dot]`."""
    th, thdot = s[0], s[1]
    u = jnp.clip(torque, -params.max_torque, params.max_torque)
    newthdot = (
        thdot
        + (3 * params.g / (2 * params.l) * jnp.sin(th) + 3.0 / (params.m * params.l**2) * u)
        * params.dt
    )
    newthdot = jnp.clip(newthdot, -params.max_speed, params.max_speed)
    newth = th + newthdot * params.dt
    return jnp.stack([newth, newthdot])


def pendulum_cost(s: jax.Array, torque: jax.Array, params: PendulumParams) -> jax.Array:
    """Gymnasium's cost `angle^2 + 0.1 theta_dot^2 + 0.001 u^2` (the reward is its negative)."""
    u = jnp.clip(torque, -params.max_torque, params.max_torque)
    return angle_normalize(s[0]) ** 2 + 0.1 * s[1] ** 2 + 0.001 * u**2


class Pendulum(Environment[PendulumState, PendulumParams]):
    """Pendulum-v1: torque in `[-2, 2]`, observations `[cos theta, sin theta, theta_dot]`.

    The action is a float array of shape `(1,)` (or a scalar). A torque outside
    `[-max_torque, max_torque]` is clipped, as Gymnasium's Pendulum-v1 clips it, with or
    without `jit`. Outside `jit` a wrong shape (e.g. `(2,)`, which Gymnasium would silently
    cut to its first entry), a non-numeric dtype or a NaN/infinite torque raises; inside
    `jit` they are not checked and a NaN torque makes the state NaN (use
    `bellmax.envs.checked` to catch it). `PendulumParams` are checked by `bellmax.make`,
    `reset` and `step` (positive speed limit, time step, mass and length; torque bound and
    gravity >= 0).
    """

    params_type = PendulumParams
    env_id = "Pendulum-v1"

    def reset_env(self, key, params):
        high = jnp.array([jnp.pi, 1.0])
        v = jax.random.uniform(key, (2,), jnp.float32, minval=-high, maxval=high)
        state = PendulumState(
            theta=v[0],
            theta_dot=v[1],
            last_u=jnp.asarray(0.0, jnp.float32),
            time=jnp.asarray(0, jnp.int32),
        )
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        u = jnp.reshape(jnp.asarray(action, jnp.float32), ())
        cost = pendulum_cost(state.vector(), u, params)
        v = pendulum_step(state.vector(), u, params)
        u_clipped = jnp.clip(u, -params.max_torque, params.max_torque)
        state = PendulumState(
            theta=v[0], theta_dot=v[1], last_u=u_clipped.astype(jnp.float32), time=state.time + 1
        )
        return self.get_obs(state), state, (-cost).astype(jnp.float32), jnp.asarray(False), {}

    def get_obs(self, state: PendulumState) -> jax.Array:
        return jnp.stack([jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot]).astype(
            jnp.float32
        )

    def action_space(self, params=None) -> spaces.Box:
        p = self.default_params if params is None else params
        return spaces.Box(-p.max_torque, p.max_torque, (1,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        p = self.default_params if params is None else params
        high = jnp.array([1.0, 1.0, p.max_speed])
        return spaces.Box(-high, high, (3,), jnp.float32)
