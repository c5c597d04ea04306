"""Tests for bellmax.models.loop: identify, control with MPC, recollect, refit."""

from __future__ import annotations

import numpy as np
import pytest

from bellmax.control.problems import cartpole_balance
from bellmax.envs.cartpole import CartPoleParams
from bellmax.models.loop import LoopConfig, identify_and_control

TRUE = CartPoleParams()


@pytest.mark.slow
def test_identified_mpc_balances_gymnasium_cartpole():
    # 100 random steps of Gymnasium's own CartPole-v1, then MPC on the fitted model
    r = identify_and_control("gymnasium:CartPole-v1", config=LoopConfig(random_steps=100))
    assert r.status == "succeeded" and r.success and len(r.rounds) == 1
    assert r.rounds[0].episode_lengths.tolist() == [500]
    assert r.rounds[0].episode_returns.tolist() == [500.0]
    for n in ("gravity", "masspole", "length", "force_mag", "tau"):
        assert abs(r.fit.params[n] - getattr(TRUE, n)) < 0.01 * getattr(TRUE, n), n
    # the controller's 500 transitions were added to the 100 random ones
    assert r.data.num_transitions == 600 and r.data.x.shape[1] == 4


def _fixed_bounds_problem(params):
    # bounds from the default force, physics from the fit: one compiled MPC for every round
    return cartpole_balance(CartPoleParams(), horizon=10).replace_params(params)


@pytest.mark.slow
def test_loop_recollects_and_refits():
    cfg = LoopConfig(random_steps=60, max_rounds=2, max_episode_steps=40, success_return=1e9)
    r = identify_and_control("CartPole-v1", problem_fn=_fixed_bounds_problem, config=cfg)
    assert r.status == "max_rounds" and not r.success
    assert [x.num_transitions for x in r.rounds] == [60, 100]
    assert r.data.num_transitions == 140
    assert all(x.episode_lengths.tolist() == [40] for x in r.rounds)  # balanced, yet "failed"
    assert np.isclose(r.fit.params["length"], TRUE.length, rtol=1e-3)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("method", "pid", ValueError),
        ("random_steps", 0, ValueError),
        ("horizon", 2.5, TypeError),
        ("iterations", 0, ValueError),
        ("seed", "0", TypeError),
        ("success_return", float("nan"), ValueError),
        ("sysid", {}, TypeError),
    ],
)
def test_loop_config_checked_when_made(field, value, error):
    with pytest.raises(error, match=f"LoopConfig.{field}"):
        LoopConfig(**{field: value})


def test_loop_bad_input():
    with pytest.raises(ValueError, match="method"):
        identify_and_control("CartPole-v1", config=LoopConfig(method="pid"))
    with pytest.raises(ValueError, match="random_steps"):
        identify_and_control("CartPole-v1", config=LoopConfig(random_steps=0))
    with pytest.raises(ValueError, match="problem_fn"):
        identify_and_control("Pendulum-v1")
    with pytest.raises(TypeError, match="LoopConfig"):
        identify_and_control("CartPole-v1", config={"random_steps": 10})
