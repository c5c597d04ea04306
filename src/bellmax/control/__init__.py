"""Optimal control: integrators, problems, LQR, iLQR, DDP, MPC, shooting and collocation.

A problem is plain functions (`dynamics(x, u, t, params)`, `cost(x, u, t, params)`,
`terminal_cost(x, params)`), bundled in a `Problem`; every derivative comes from JAX.
"""

from bellmax.control.collocation import CollocationResult, collocation, collocation_from_problem
from bellmax.control.ddp import ddp, ddp_problem
from bellmax.control.ilqr import ILQRConfig, ILQRProblem, ILQRResult, ilqr, ilqr_problem
from bellmax.control.integrators import discretize, euler, rk4
from bellmax.control.lqr import DLQRSolution, LQRSolution, dlqr, finite_horizon_lqr, lqr_rollout
from bellmax.control.mpc import (
    MPC,
    ClosedLoopResult,
    HostClosedLoopResult,
    LQRController,
    MPCState,
    closed_loop,
    closed_loop_host,
    control_to_action,
    make_lqr_controller,
    make_mpc,
)
from bellmax.control.nlp import NLPOptions, NLPResult, solve_staged_nlp
from bellmax.control.problems import (
    Problem,
    Status,
    cartpole_balance,
    cartpole_swingup,
    env_problem,
    make_problem,
    pendulum_swingup,
    quadratic_cost,
    total_cost,
)
from bellmax.control.sampling import (
    RolloutCost,
    SamplingConfig,
    SamplingMPC,
    SamplingResult,
    SamplingState,
    make_sampling_mpc,
    mppi_temperature,
)
from bellmax.control.sampling import plan as sampling_plan
from bellmax.control.shooting import ShootingResult, shooting, shooting_from_problem

__all__ = [
    "MPC",
    "ClosedLoopResult",
    "CollocationResult",
    "DLQRSolution",
    "HostClosedLoopResult",
    "ILQRConfig",
    "ILQRProblem",
    "ILQRResult",
    "LQRController",
    "LQRSolution",
    "MPCState",
    "NLPOptions",
    "NLPResult",
    "Problem",
    "RolloutCost",
    "SamplingConfig",
    "SamplingMPC",
    "SamplingResult",
    "SamplingState",
    "ShootingResult",
    "Status",
    "cartpole_balance",
    "cartpole_swingup",
    "closed_loop",
    "closed_loop_host",
    "collocation",
    "collocation_from_problem",
    "control_to_action",
    "ddp",
    "ddp_problem",
    "discretize",
    "dlqr",
    "env_problem",
    "euler",
    "finite_horizon_lqr",
    "ilqr",
    "ilqr_problem",
    "lqr_rollout",
    "make_lqr_controller",
    "make_mpc",
    "make_problem",
    "make_sampling_mpc",
    "mppi_temperature",
    "pendulum_swingup",
    "quadratic_cost",
    "rk4",
    "sampling_plan",
    "shooting",
    "shooting_from_problem",
    "solve_staged_nlp",
    "total_cost",
]

# Submodules load on first use as attributes too (`bellmax.control.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
