"""Optimisers and learning-rate schedules for deep RL, built from optax.

    tx = make_optimizer("adam", linear_schedule(1e-3, 0.0, 10_000), max_grad_norm=0.5)

Adam uses `eps=1e-5` as in PPO's reference implementation (Huang et al. 2022, "The 37
implementation details of PPO", detail 3); gradients are clipped by their global norm before
the update (detail 11). `"sgd"` is SGD with (heavy-ball) momentum.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from bellmax.core.checks import check_int, check_number
from bellmax.core.errors import unknown_name

OPTIMIZERS = ("adam", "sgd")
"""Optimiser names accepted by `make_optimizer`."""

Schedule = optax.Schedule


def _check_positive(name: str, value: Any) -> None:
    """A finite number > 0 (core.checks); a traced value (inside jit) is not checked."""
    if not isinstance(value, jax.core.Tracer):
        check_number(value, name, low=0, low_open=True)


def constant_schedule(value: float) -> Schedule:
    """A schedule that always returns `value`."""
    return optax.constant_schedule(value)


def linear_schedule(init_value: float, end_value: float, transition_steps: int) -> Schedule:
    """`init_value` moving linearly to `end_value` over `transition_steps` calls, then constant.

    Args:
      init_value: value at step 0.
      end_value: value from step `transition_steps` on.
      transition_steps: number of steps (optimiser updates) of the ramp, >= 1.

    Returns:
      An optax schedule `step -> value`.
    """
    check_int(transition_steps, "transition_steps", low=1)
    return optax.linear_schedule(init_value, end_value, transition_steps)


def make_optimizer(
    name: str,
    learning_rate: float | Schedule,
    *,
    max_grad_norm: float | None = None,
    momentum: float = 0.9,
    eps: float = 1e-5,
) -> optax.GradientTransformation:
    """An optax optimiser by name, with optional global-norm gradient clipping.

    Args:
      name: `"adam"` or `"sgd"` (SGD with momentum).
      learning_rate: a step size > 0 or an optax schedule `step -> step size`.
      max_grad_norm: clip gradients to this global norm first; `None` for no clipping.
      momentum: SGD's momentum in [0, 1) (ignored by Adam); traced values are not checked.
      eps: Adam's epsilon (ignored by SGD).

    Returns:
      An `optax.GradientTransformation`.
    """
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", str(name), OPTIMIZERS, hint="Pick 'adam' or 'sgd'.")
    if not callable(learning_rate):
        _check_positive("learning_rate", learning_rate)
    if max_grad_norm is not None:
        _check_positive("max_grad_norm", max_grad_norm)
    traced = isinstance(momentum, jax.core.Tracer)
    if not traced:
        check_number(momentum, "momentum", low=0, high=1, high_open=True)
    _check_positive("eps", eps)
    if name == "adam":
        tx = optax.adam(learning_rate, eps=eps)
    else:
        tx = optax.sgd(learning_rate, momentum=momentum if traced else (momentum or None))
    if max_grad_norm is None:
        return tx
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), tx)
