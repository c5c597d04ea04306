"""Nominal controllers whose rollouts start each MPC solve of a stateless MPC expert.

A warm-started MPC (`bellmax.control.make_mpc`) labels a state with the first control of a
plan it has been refining since the episode began: two visits of one state get different
labels, and started fresh at a state (the zero plan) iLQR on the cart-pole swing-up never
leaves the hanging start (a zero gradient there). `mpc_expert(..., initial_plan=...)` instead
starts every solve from a plan that depends on the state alone: the rollout, in the model,
of a simple nominal controller (`rollout_plan`). The labels are then a function of the
observation, as an imitation learner needs.

- `cartpole_swingup_controller(params)`: energy pumping (Astrom & Furuta 2000: the cart's
  acceleration `a_max tanh(E (theta_dot + bias) cos theta / eps)` drives the pole's energy
  `E` to that of the upright rest state, with the cart pulled to the centre) and, within
  `catch` of upright (`cos theta > catch`), LQR about upright (`bellmax.control`). The small
  `bias` on `theta_dot` picks one swing direction from rest, so that starts a few
  hundredths of a radian apart get the same first push.
- `rollout_plan(problem, controller, params)`: `x -> U [H, m]`, the controller's controls
  along its own trajectory under `problem.dynamics` over the problem's horizon.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.control.problems import float_dtype
from bellmax.core.checks import check_number

__all__ = ["cartpole_swingup_controller", "rollout_plan"]


def cartpole_swingup_controller(
    params: Any,
    *,
    max_accel: float = 10.0,
    centre_gains: tuple[float, float] = (4.0, 4.0),
    sharpness: float = 0.1,
    bias: float = 0.15,
    catch: float = 0.9,
) -> Callable[[jax.Array], jax.Array]:
    """Energy-pumping swing-up with an LQR catch, `x [4] -> force [1]` (newtons, clipped to
    `params.force_mag`); state `[x, x_dot, theta, theta_dot]`, `theta = 0` upright.

    Args:
      params: `bellmax.envs.cartpole.CartPoleParams` (or the swing-up's), true or identified.
      max_accel: the pumping acceleration's size (m/s^2).
      centre_gains: `(k_x, k_v)`: `- k_x x - k_v x_dot` added to the acceleration.
      sharpness: `eps` of the `tanh` switch (energy times speed units).
      bias: added to `theta_dot` in the switch (rad/s): one direction from rest.
      catch: LQR about upright takes over where `cos theta > catch`.
    """
    from bellmax.control import cartpole_balance, make_lqr_controller

    check_number(max_accel, "max_accel", owner="cartpole_swingup_controller", low=0)
    check_number(sharpness, "sharpness", owner="cartpole_swingup_controller", low=0, low_open=True)
    check_number(catch, "catch", owner="cartpole_swingup_controller", low=-1, high=1)
    check_number(bias, "bias", owner="cartpole_swingup_controller")
    try:
        gains = np.asarray(centre_gains, np.float64)
    except (TypeError, ValueError):
        gains = np.zeros(0)
    if gains.shape != (2,):
        raise ValueError(
            f"cartpole_swingup_controller: centre_gains must be two numbers (k_x, k_v), got "
            f"{centre_gains!r}."
        )
    for name, k in zip(("k_x", "k_v"), gains.tolist(), strict=True):
        check_number(k, f"centre_gains {name}", owner="cartpole_swingup_controller", low=0)
    lqr = make_lqr_controller(cartpole_balance(params), params)
    lqr_state = lqr.init()
    m, mc = float(params.masspole), float(params.masscart)
    length, g, f_max = float(params.length), float(params.gravity), float(params.force_mag)
    k_x, k_v = (float(k) for k in gains)

    def control(x: jax.Array) -> jax.Array:
        if jnp.shape(x) != (4,):
            raise ValueError(
                "cartpole_swingup_controller: the state must be [x, x_dot, theta, theta_dot], "
                f"shape (4,), got shape {jnp.shape(x)}; vmap the controller over a batch."
            )
        theta = jnp.mod(x[2] + jnp.pi, 2 * jnp.pi) - jnp.pi
        theta_dot = x[3]
        energy = (2.0 / 3.0) * m * length**2 * theta_dot**2 + m * g * length * (
            jnp.cos(theta) - 1.0
        )
        switch = energy * (theta_dot + bias) * jnp.cos(theta) / sharpness
        accel = max_accel * jnp.tanh(switch) - k_x * x[0] - k_v * x[1]
        pump = jnp.clip((mc + m) * accel, -f_max, f_max)
        upright = jnp.stack([x[0], x[1], theta, theta_dot])
        held = jnp.clip(lqr.step(lqr_state, upright, params)[0][0], -f_max, f_max)
        return jnp.where(jnp.cos(theta) > catch, held, pump)[None]

    return control


def rollout_plan(
    problem: Any, controller: Callable[[jax.Array], jax.Array], params: Any = None
) -> Callable[[jax.Array], jax.Array]:
    """`x [n] -> U [H, m]`: `controller`'s controls along its rollout from `x` under
    `problem.dynamics` (with `params`, default `problem.params`) for `problem.horizon` steps."""
    p = problem.params if params is None else params

    def plan(x: jax.Array) -> jax.Array:
        def step(s, t):
            u = controller(s)
            return problem.dynamics(s, u, t, p).astype(s.dtype), u

        # the problem's float (float64 under x64, as control's solvers compute)
        x = jnp.asarray(x, float_dtype())
        _, U = jax.lax.scan(step, x, jnp.arange(problem.horizon))
        return U

    return plan
