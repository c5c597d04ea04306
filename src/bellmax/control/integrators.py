"""Fixed-step integrators: a continuous `f(x, u, t, params) = dx/dt` as discrete dynamics.

A control problem's discrete dynamics is `dynamics(x, u, t, params) -> x_next`, with `t`
the integer step index (DESIGN.md rule 5). `euler(f, dt)` and `rk4(f, dt)` build it from
the continuous vector field `f`, which receives the continuous time `t * dt`. The step
`dt` is a float or a callable `params -> dt`, so the time step can live in the
parameters and be fitted by system identification (Gymnasium's cart-pole keeps it in
`CartPoleParams.tau`). The control `u` is held constant over the step (zero-order hold).

Explicit Euler is what Gymnasium's classic-control environments integrate with; RK4 is
the classical fourth-order Runge-Kutta method (Hairer, Norsett & Wanner 1993, section II.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["INTEGRATORS", "discretize", "euler", "rk4", "step_size"]

Dynamics = Callable[[jax.Array, jax.Array, Any, Any], jax.Array]
TimeStep = float | Callable[[Any], Any]


def step_size(dt: TimeStep, params: Any) -> Any:
    """The time step: `dt(params)` when `dt` is callable, else `dt` itself."""
    return dt(params) if callable(dt) else dt


def _check(f: Any, dt: Any) -> None:
    if not callable(f):
        raise TypeError(
            f"f must be a callable f(x, u, t, params) -> dx/dt, got {f!r} "
            f"({type(f).__name__}); pass the continuous vector field."
        )
    if callable(dt):
        return
    try:
        h = float(dt)
    except (TypeError, ValueError):
        raise TypeError(
            f"dt must be a positive float or a callable params -> dt, got {dt!r} "
            f"({type(dt).__name__})."
        ) from None
    if not h > 0.0 or h != h or h == float("inf"):
        raise ValueError(f"dt must be a finite positive time step, got {dt!r}; e.g. dt=0.02.")


@dataclasses.dataclass(frozen=True)
class _Euler:
    f: Dynamics
    dt: TimeStep

    def __call__(self, x: jax.Array, u: jax.Array, t: Any, params: Any) -> jax.Array:
        h = step_size(self.dt, params)
        return x + h * self.f(x, u, t * h, params)


@dataclasses.dataclass(frozen=True)
class _RK4:
    f: Dynamics
    dt: TimeStep

    def __call__(self, x: jax.Array, u: jax.Array, t: Any, params: Any) -> jax.Array:
        f, h = self.f, step_size(self.dt, params)
        s = t * h
        k1 = f(x, u, s, params)
        k2 = f(x + 0.5 * h * k1, u, s + 0.5 * h, params)
        k3 = f(x + 0.5 * h * k2, u, s + 0.5 * h, params)
        k4 = f(x + h * k3, u, s + h, params)
        return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def euler(f: Dynamics, dt: TimeStep) -> Dynamics:
    """Explicit Euler: `x_next = x + dt * f(x, u, t * dt, params)`.

    The returned callable compares equal to another built from the same `f` and `dt`, so
    solvers jitted with it as a static argument compile once.

    Args:
      f: continuous dynamics `f(x, u, t, params) -> dx/dt` (`t` continuous time).
      dt: step length, a float or a callable `params -> dt`.

    Returns:
      `dynamics(x, u, t, params) -> x_next` with `t` the step index.
    """
    _check(f, dt)
    return _Euler(f, dt)


def rk4(f: Dynamics, dt: TimeStep) -> Dynamics:
    """Classical fourth-order Runge-Kutta with the control held over the step.

    Args:
      f: continuous dynamics `f(x, u, t, params) -> dx/dt` (`t` continuous time).
      dt: step length, a float or a callable `params -> dt`.

    Returns:
      `dynamics(x, u, t, params) -> x_next` with `t` the step index (hashable, like `euler`'s).
    """
    _check(f, dt)
    return _RK4(f, dt)


INTEGRATORS = {"euler": euler, "rk4": rk4}
"""The integrators `discretize` knows, by name."""


def discretize(f: Dynamics, dt: TimeStep, method: str = "euler") -> Dynamics:
    """Discrete dynamics from continuous `f` with the integrator named `method`.

    Args:
      f: continuous dynamics `f(x, u, t, params) -> dx/dt`.
      dt: step length, a float or a callable `params -> dt`.
      method: `"euler"` (Gymnasium's) or `"rk4"`.

    Returns:
      `dynamics(x, u, t, params) -> x_next`.
    """
    if method not in INTEGRATORS:
        raise ValueError(f"unknown integrator method {method!r}; use one of {sorted(INTEGRATORS)}.")
    return INTEGRATORS[method](f, dt)
