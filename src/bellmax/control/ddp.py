"""Differential dynamic programming: iLQR plus the dynamics' second-order terms.

DDP (Mayne 1966; Jacobson & Mayne 1970, chapter 2) expands the Q-function to second order
in both the costs and the dynamics: with `z = [x, u]`,

    Q_zz = l_zz + F'V_xx'F + sum_i V_x'[i] * d^2 f_i / dz^2,

where iLQR (Li & Todorov 2004) drops the last term (a Gauss-Newton approximation). The
extra term gives DDP quadratic convergence near a solution; far from one it can make
`Q_uu` indefinite, which the Levenberg-Marquardt regularisation then has to repair
(Tassa, Erez & Todorov 2012, section II.F). `bench/swingup.py` and tests/control/test_ddp.py
compare the two. Everything else (box-QP backward pass, line search, stopping rule, named
result) is `bellmax.control.ilqr`'s, with `second_order=True`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from bellmax.control.ilqr import ILQRResult, ilqr, ilqr_problem
from bellmax.control.problems import Problem

__all__ = ["ddp", "ddp_problem"]


def _no_first_order(overrides: dict[str, Any]) -> None:
    if overrides.get("second_order", True) is not True:
        raise ValueError("ddp is iLQR with second_order=True; call bellmax.control.ilqr instead.")
    overrides["second_order"] = True


def ddp(
    dynamics: Callable[..., jax.Array],
    cost: Callable[..., jax.Array],
    x0: jax.Array,
    U0: jax.Array,
    params: Any = None,
    **options: Any,
) -> ILQRResult:
    """DDP with box-bounded controls (`ilqr` with the second-order dynamics terms).

    Args and Returns: as `bellmax.control.ilqr.ilqr`, whose keyword-only options
    (`terminal_cost`, `u_lower`, `u_upper`, `config` and `ILQRConfig` fields) it takes;
    `second_order` is forced to True, and `dynamics_hessian` chooses how `V_x . f_zz` is
    formed.
    """
    _no_first_order(options)
    return ilqr(dynamics, cost, x0, U0, params, **options)


def ddp_problem(problem: Problem, U0: jax.Array | None = None, **options: Any) -> ILQRResult:
    """`ddp` on a `Problem`: as `ilqr_problem` (keyword-only `x0`, `config` and `ILQRConfig`
    fields), with `second_order` forced to True."""
    _no_first_order(options)
    return ilqr_problem(problem, U0, **options)
