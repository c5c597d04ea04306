"""System identification: parametric models of physical systems fitted to transitions.

- `parametric`: the cart-pole and pendulum models (`get_model`, `ParametricModel`).
- `data`: transitions `(x, u, x')` from any bellmax or Gymnasium environment.
- `sysid`: Levenberg-Marquardt least squares with standard errors and an identifiability
  report (`least_squares`, `identify`, `FitResult`).
- `loop`: identify, control with MPC on the real system, recollect, refit
  (`identify_and_control`).
"""

from bellmax.models.data import (
    Transitions,
    collect_transitions,
    concatenate,
    make_transitions,
    split_transitions,
)
from bellmax.models.loop import LoopConfig, LoopResult, LoopRound, identify_and_control
from bellmax.models.parametric import (
    CARTPOLE,
    PENDULUM,
    ParametricModel,
    get_model,
    model_for_env,
    model_names,
)
from bellmax.models.sysid import (
    FitResult,
    SysIdConfig,
    identify,
    least_squares,
    prediction_error,
)

__all__ = [
    "CARTPOLE",
    "PENDULUM",
    "FitResult",
    "LoopConfig",
    "LoopResult",
    "LoopRound",
    "ParametricModel",
    "SysIdConfig",
    "Transitions",
    "collect_transitions",
    "concatenate",
    "get_model",
    "identify",
    "identify_and_control",
    "least_squares",
    "make_transitions",
    "model_for_env",
    "model_names",
    "prediction_error",
    "split_transitions",
]
