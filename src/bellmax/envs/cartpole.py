"""Cart-pole: Gymnasium's CartPole-v1, exactly, and a continuous swing-up variant.

The physics is Gymnasium's (Barto, Sutton & Anderson 1983, with the corrected equations of
Florian 2005 as Gymnasium writes them) integrated by explicit Euler with step `tau`: each step
equals Gymnasium's to float32 rounding (and gymnax's bit for bit). The state is float32 where
Gymnasium's is float64, and the upright pole is unstable, so two open-loop runs of the same
actions from the same start drift apart over a few hundred steps. All
constants live in `CartPoleParams`, so they can be vmapped or fitted by system
identification; derived quantities (total mass, pole mass times length) are properties.

Frames (600x400 RGB, Gymnasium's picture) come from `bellmax.envs.render.render_frame(env,
state, params)`, or `render_mode="rgb_array"` through the Gymnasium bridge.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.envs import spaces
from bellmax.envs._checks import between, bounded, episode_limit, nonnegative, positive
from bellmax.envs.environment import Environment, EnvParams, EnvState


@struct.dataclass
class CartPoleState(EnvState):
    """Cart position and velocity, pole angle (0 = upright) and angular velocity."""

    x: jax.Array
    x_dot: jax.Array
    theta: jax.Array
    theta_dot: jax.Array
    time: jax.Array

    def vector(self) -> jax.Array:
        """The state as `[x, x_dot, theta, theta_dot]`."""
        return jnp.stack([self.x, self.x_dot, self.theta, self.theta_dot])


@struct.dataclass
class CartPoleParams(EnvParams):
    """Physical constants (Gymnasium's defaults) and episode limits."""

    gravity: float = bounded(
        9.8, nonnegative("gravity in m/s^2, pulling the pole down; below 0 it would push up")
    )
    """Gravitational acceleration, m/s^2."""
    masscart: float = bounded(1.0, positive("the cart's mass, kg"))
    """Cart mass, kg."""
    masspole: float = bounded(0.1, positive("the pole's mass, kg"))
    """Pole mass, kg."""
    length: float = bounded(0.5, positive("half the pole's length, m"))
    """Half the pole's length, m."""
    force_mag: float = bounded(10.0, nonnegative("the magnitude of the push, N"))
    """Magnitude of the applied force, N."""
    tau: float = bounded(0.02, positive("the integration time step, s"))
    """Integration time step, s."""
    theta_threshold_radians: float = bounded(
        12 * 2 * math.pi / 360, positive("the angle that ends a CartPole-v1 episode, rad")
    )
    """|theta| beyond which CartPole-v1 terminates."""
    x_threshold: float = bounded(2.4, positive("the half-length of the track, m"))
    """|x| beyond which the episode terminates (end of track)."""
    max_steps_in_episode: int = episode_limit(500)
    """Steps until truncation."""

    @property
    def total_mass(self):
        """Cart plus pole mass."""
        return self.masscart + self.masspole

    @property
    def polemass_length(self):
        """Pole mass times half-length."""
        return self.masspole * self.length


def cartpole_derivatives(s: jax.Array, force: jax.Array, params: CartPoleParams) -> jax.Array:
    """Time derivative of `s = [x, x_dot, theta, theta_dot]` under a horizontal `force`.

    Gymnasium's equations of motion; `cartpole_euler_step` integrates them as Gymnasium does.
    """
    _, x_dot, theta, theta_dot = s[0], s[1], s[2], s[3]
    costheta, sintheta = jnp.cos(theta), jnp.sin(theta)
    temp = (force + params.polemass_length * theta_dot**2 * sintheta) / params.total_mass
    thetaacc = (params.gravity * sintheta - costheta * temp) / (
        params.length * (4.0 / 3.0 - params.masspole * costheta**2 / params.total_mass)
    )
    xacc = temp - params.polemass_length * thetaacc * costheta / params.total_mass
    return jnp.stack([x_dot, xacc, theta_dot, thetaacc])


def cartpole_euler_step(s: jax.Array, force: jax.Array, params: CartPoleParams) -> jax.Array:
    """One explicit-Euler step of length `params.tau`, exactly as Gymnasium integrates."""
    return s + params.tau * cartpole_derivatives(s, force, params)


def _from_vector(v: jax.Array, time: jax.Array) -> CartPoleState:
    return CartPoleState(x=v[0], x_dot=v[1], theta=v[2], theta_dot=v[3], time=time)


class CartPole(Environment[CartPoleState, CartPoleParams]):
    """Gymnasium's CartPole-v1: push left (0) or right (1); +1 per step; 500-step limit.

    The raw `step` never resets, and keeps paying +1 after the pole has fallen (Gymnasium
    pays 0 there): stop summing rewards at the first `terminated`, as `AutoReset`, the
    vector environments and `bellmax.control.mpc.closed_loop` do.

    Actions are checked when they are concrete (called outside `jit`): anything but one
    integer 0 or 1 raises, `TypeError` for a float or bool (1.5, 1.0, True) and
    `ValueError` for a value out of range (7, -1) or a shape other than `()` (as Gymnasium's
    CartPole refuses actions outside its space). Inside `jit`/`vmap`/`scan` actions are not
    checked and every action other than 1 pushes left; wrap the environment in
    `bellmax.envs.checked` to catch invalid actions there. `CartPoleParams` are checked by
    `bellmax.make`, `reset` and `step` (positive masses, length and time step, gravity >= 0).
    """

    params_type = CartPoleParams
    env_id = "CartPole-v1"

    def reset_env(self, key, params):
        v = jax.random.uniform(key, (4,), jnp.float32, minval=-0.05, maxval=0.05)
        state = _from_vector(v, jnp.asarray(0, jnp.int32))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        force = jnp.where(action == 1, params.force_mag, -params.force_mag)
        v = cartpole_euler_step(state.vector(), force, params)
        state = _from_vector(v, state.time + 1)
        terminated = self.is_terminated(state, params)
        return self.get_obs(state), state, jnp.asarray(1.0, jnp.float32), terminated, {}

    def get_obs(self, state: CartPoleState) -> jax.Array:
        return state.vector().astype(jnp.float32)

    def is_terminated(self, state: CartPoleState, params: CartPoleParams) -> jax.Array:
        return (
            (state.x < -params.x_threshold)
            | (state.x > params.x_threshold)
            | (state.theta < -params.theta_threshold_radians)
            | (state.theta > params.theta_threshold_radians)
        )

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params=None) -> spaces.Box:
        p = self.default_params if params is None else params
        high = jnp.array(
            [
                p.x_threshold * 2,
                jnp.finfo(jnp.float32).max,
                p.theta_threshold_radians * 2,
                jnp.finfo(jnp.float32).max,
            ]
        )
        return spaces.Box(-high, high, (4,), jnp.float32)


@struct.dataclass
class CartPoleSwingUpParams(CartPoleParams):
    """CartPole constants plus the swing-up task's start and reward."""

    init_noise: float = bounded(0.05, nonnegative("half-width of the start noise"))
    """Half-width of the uniform noise added to the hanging start state."""
    control_cost: float = bounded(0.01, between(0.0, 1.0, meaning="keeps the reward in [0, 1]"))
    """Weight of the squared normalised force in the reward."""
    max_steps_in_episode: int = episode_limit(500)
    """Steps until truncation (10 s at tau = 0.02)."""


class CartPoleSwingUp(Environment[CartPoleState, CartPoleSwingUpParams]):
    """Swing the pole up from hanging and balance it, with a continuous bounded force.

    Same physics as CartPole-v1. The action `u` in `[-1, 1]` applies the force
    `force_mag * u`. The episode starts hanging down (`theta = pi`) and has no angle
    termination; it terminates only if the cart leaves the track (`|x| > x_threshold`).
    The reward in `[0, 1]` per step is `(1 + cos theta) / 2 * (1 - control_cost * u^2)`:
    1 when upright with no force, 0 when hanging; it does not look at speeds, so a pole
    spinning through upright scores 1 there too (balancing is what scores every step).
    Observations are
    `[x, x_dot, cos theta, sin theta, theta_dot]`; the state keeps the raw angle.

    Actions are a float array of shape `(1,)` (or a scalar). Values outside `[-1, 1]` are
    clipped, as Gymnasium clips Pendulum's torque, with or without `jit`. Outside `jit` a
    wrong shape (e.g. `(2,)`), a non-numeric dtype or a NaN/infinite action raises; inside
    `jit` they are not checked and a NaN action makes the state NaN (use
    `bellmax.envs.checked` to catch it).
    """

    params_type = CartPoleSwingUpParams
    env_id = "CartPoleSwingUp-v0"

    def reset_env(self, key, params):
        noise = jax.random.uniform(
            key, (4,), jnp.float32, minval=-params.init_noise, maxval=params.init_noise
        )
        v = jnp.array([0.0, 0.0, jnp.pi, 0.0], jnp.float32) + noise
        state = _from_vector(v, jnp.asarray(0, jnp.int32))
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        u = jnp.clip(jnp.reshape(jnp.asarray(action, jnp.float32), ()), -1.0, 1.0)
        v = cartpole_euler_step(state.vector(), params.force_mag * u, params)
        state = _from_vector(v, state.time + 1)
        upright = 0.5 * (1.0 + jnp.cos(state.theta))
        reward = (upright * (1.0 - params.control_cost * u**2)).astype(jnp.float32)
        terminated = jnp.abs(state.x) > params.x_threshold
        return self.get_obs(state), state, reward, terminated, {}

    def get_obs(self, state: CartPoleState) -> jax.Array:
        return jnp.stack(
            [state.x, state.x_dot, jnp.cos(state.theta), jnp.sin(state.theta), state.theta_dot]
        ).astype(jnp.float32)

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        p = self.default_params if params is None else params
        big = jnp.finfo(jnp.float32).max
        high = jnp.array([p.x_threshold * 2, big, 1.0, 1.0, big])
        return spaces.Box(-high, high, (5,), jnp.float32)
