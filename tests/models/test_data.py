"""Tests for bellmax.models.data: collecting and validating transitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.errors import UnknownNameError
from bellmax.envs.cartpole import CartPoleParams, cartpole_euler_step
from bellmax.models import (
    Transitions,
    collect_transitions,
    concatenate,
    make_transitions,
    split_transitions,
)


def _euler_next(t: Transitions, params: CartPoleParams) -> np.ndarray:
    force = jnp.where(jnp.asarray(t.u[:, 0]) == 1, params.force_mag, -params.force_mag)
    step = jax.vmap(cartpole_euler_step, in_axes=(0, 0, None))
    return np.asarray(step(jnp.asarray(t.x), force, params))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "gymnasium:CartPole-v1"])
def test_no_transition_crosses_a_reset(env_id):
    # random CartPole episodes last ~20 steps: 300 steps hold many resets, yet every x' is
    # the physics step of its x (a reset observation would break this by ~0.05)
    data = collect_transitions(env_id, 300, seed=1)
    assert data.num_transitions == 300 and data.discrete and data.env_id == env_id
    assert data.x.shape == data.x_next.shape == (300, 4) and data.u.shape == (300, 1)
    assert set(np.unique(data.u)) == {0, 1}
    np.testing.assert_allclose(_euler_next(data, CartPoleParams()), data.x_next, atol=1e-5)
    # and the data do contain resets: some x differ from the previous x'
    jumps = np.abs(data.x[1:] - data.x_next[:-1]).max(axis=1) > 1e-6
    assert jumps.sum() >= 5


def test_bellmax_env_params_and_policy():
    params = CartPoleParams(masspole=0.3, length=0.8)

    def push_right(key, obs):
        return jnp.asarray(1, jnp.int32)

    data = collect_transitions("CartPole-v1", 50, seed=0, policy=push_right, env_params=params)
    assert np.all(data.u == 1)
    np.testing.assert_allclose(_euler_next(data, params), data.x_next, atol=1e-5)


def test_continuous_actions_and_seeds():
    a = collect_transitions("gymnasium:Pendulum-v1", 20, seed=2)
    b = collect_transitions("gymnasium:Pendulum-v1", 20, seed=2)
    assert not a.discrete and a.x.shape == (20, 3) and a.u.shape == (20, 1)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.u, b.u)
    assert np.all(np.abs(a.u) <= 2.0)


def test_make_transitions_validation():
    x = np.zeros((4, 2))
    t = make_transitions(x, np.arange(4), x + 1.0)
    assert t.discrete and t.u.shape == (4, 1) and len(t) == 4
    kept = make_transitions(x, np.zeros(4), x, valid=[True, False, True, True])
    assert kept.num_transitions == 3 and not kept.discrete
    with pytest.raises(ValueError, match=r"x_next has shape \(3, 2\)"):
        make_transitions(x, np.zeros(4), x[:3])
    with pytest.raises(ValueError, match="u must be"):
        make_transitions(x, np.zeros(3), x)
    with pytest.raises(ValueError, match=r"\[N, obs_dim\]"):
        make_transitions(np.zeros(4), np.zeros(4), np.zeros(4))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite .* x_next, rows \[2\]"):
        make_transitions(x, np.zeros(4), bad)
    with pytest.raises(ValueError, match=r"non-finite .* in u"):
        make_transitions(x, np.array([0.0, np.inf, 0.0, 0.0]), x)
    with pytest.raises(ValueError, match="no transitions"):
        make_transitions(x, np.zeros(4), x, valid=np.zeros(4, bool))
    with pytest.raises(ValueError, match="valid must be"):
        make_transitions(x, np.zeros(4), x, valid=[True])


def test_split_and_concatenate():
    x = np.arange(20.0).reshape(10, 2)
    t = make_transitions(x, np.zeros(10), x + 1)
    train, test = split_transitions(t, 0.3, seed=0)
    assert (len(train), len(test)) == (7, 3)
    both = concatenate(train, test)
    assert sorted(both.x[:, 0].tolist()) == sorted(x[:, 0].tolist())
    with pytest.raises(ValueError, match="test_fraction"):
        split_transitions(t, 1.5)
    with pytest.raises(ValueError, match="discrete"):
        concatenate(t, make_transitions(x, np.zeros(10, int), x))
    with pytest.raises(ValueError, match="dims"):
        concatenate(t, make_transitions(np.zeros((2, 3)), np.zeros(2), np.zeros((2, 3))))


def test_collect_errors():
    with pytest.raises(ValueError, match="num_transitions"):
        collect_transitions("CartPole-v1", 0)
    with pytest.raises(UnknownNameError, match="CartPole"):
        collect_transitions("CartPoel-v1", 10)
    with pytest.raises(ValueError, match="env_params only applies"):
        collect_transitions("gymnasium:CartPole-v1", 10, env_params=CartPoleParams())


def test_an_environment_object_is_refused_by_its_callers_name():
    import bellmax

    with pytest.raises(TypeError, match=r"^collect_transitions takes an environment id"):
        collect_transitions(bellmax.make("CartPole-v1")[0], 10)


def test_finite_rollout_and_policy_return_checks_name_the_first_bad_step():
    from bellmax.core.errors import DivergenceError
    from bellmax.models.data import check_finite_rollouts, check_policy_return

    X, R = np.zeros((2, 6, 3)), np.zeros((2, 5))
    X[1, 3, 0], R[1, 3] = np.nan, np.inf
    with pytest.raises(
        DivergenceError,
        match=r"^trial 2 on 'E': the environment's observation \(first after step 3, rollout 2\) "
        r"and then its reward \(first at step 4, rollout 2\) went NaN or inf, so no model",
    ):
        check_finite_rollouts(X, R, "E", "trial 2", consequence="no model")

    # a policy's return alone: the fit is blamed when its weights (or losses) are not finite,
    # else the environment, whose first bad state is named as check_finite_rollouts names it
    ok, nan = {"w": jnp.ones(3)}, {"w": jnp.full(3, jnp.nan)}
    states = np.zeros((6, 3))
    check_policy_return(1.0, states, nan, "E", "round 1", fit_diverged="unused")  # finite
    fit = "its fit diverged; lower the learning rate."
    head = r"^round 1 on 'E': the policy's return alone is nan"
    for params, losses in ((nan, None), (ok, jnp.array([1.0, jnp.nan]))):
        with pytest.raises(DivergenceError, match=f"{head}: its fit diverged; lower the"):
            check_policy_return(
                np.nan, states, params, "E", "round 1", fit_diverged=fit, losses=losses
            )
    for step, what in ((0, r"state \(the initial one\)"), (3, r"state \(first after step 3\)")):
        bad = states.copy()
        bad[step:, 1] = np.nan
        with pytest.raises(
            DivergenceError,
            match=f"{head}, yet its weights are finite: the environment's {what} went NaN or "
            "inf under its actions",
        ):
            check_policy_return(np.nan, bad, ok, "E", "round 1", fit_diverged=fit)
    with pytest.raises(DivergenceError, match=r"the environment's reward went NaN or inf"):
        check_policy_return(np.inf, states, ok, "E", "round 1", fit_diverged=fit)
