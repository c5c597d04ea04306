"""Tests for bellmax.control.mpc: swing-up and hold, and Gymnasium's own CartPole-v1."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control.mpc import closed_loop, closed_loop_host, control_to_action, make_mpc
from bellmax.control.problems import cartpole_balance, cartpole_swingup
from bellmax.envs import spaces
from bellmax.envs.cartpole import CartPoleParams, CartPoleSwingUp

# Swing-up MPC at the environment's own step (tau = 0.02 s), a 1.2 s horizon, 3 iLQR
# iterations per control step, angle error wrapped so the measured angle may wind up.
SWINGUP = cartpole_swingup(
    dt=None,
    horizon=60,
    q=(1.0, 0.1, 5.0, 0.1),
    r=0.01,
    q_final=(10.0, 1.0, 50.0, 1.0),
    wrap_angle=True,
)


def test_mpc_swings_up_and_holds_cartpole_swingup():
    env = CartPoleSwingUp()
    params = env.default_params
    mpc = make_mpc(SWINGUP, iterations=3)
    res = closed_loop(env, params, mpc, jax.random.key(0), 400)
    X = np.asarray(res.states)
    theta = (X[:, 2] + np.pi) % (2 * np.pi) - np.pi
    assert int(res.alive_steps) == 400  # never left the track
    assert np.abs(theta[0]) > 3.0  # started hanging
    assert np.abs(theta[-100:]).max() < 0.05  # upright for the last 2 s
    assert np.abs(X[-100:, 0]).max() < 1.0
    assert float(jnp.max(jnp.abs(res.controls))) <= 10.0 + 1e-5
    assert float(res.total_reward) > 300
    assert int(res.iterations.max()) <= 3


def test_mpc_balances_gymnasium_cartpole_for_20_episodes():
    mpc = make_mpc(cartpole_balance(horizon=25), iterations=2)
    res = closed_loop_host("CartPole-v1", mpc, CartPoleParams(), num_envs=20, episodes=1, seed=0)
    assert res.episode_lengths.shape == (20,)
    assert np.all(res.episode_lengths == 500), res.episode_lengths
    assert np.all(res.episode_returns == 500.0)
    assert res.ms_per_step > 0


def test_importing_mpc_does_not_import_gymnasium():
    import subprocess

    code = "import sys, bellmax.control.mpc; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_step_is_pure_and_warm_starts_from_the_shifted_plan():
    mpc = make_mpc(cartpole_balance(horizon=10), iterations=2)
    state = mpc.init()
    x = jnp.array([0.0, 0.0, 0.1, 0.0])
    u1, s1 = mpc.step(state, x, CartPoleParams())
    u2, s2 = mpc.step(state, x, CartPoleParams())
    np.testing.assert_array_equal(u1, u2)
    assert int(s1.steps) == 1 and s1.U.shape == (10, 1)
    assert float(u1[0]) > 0  # push the cart under a pole leaning right (theta > 0)
    np.testing.assert_array_equal(s1.U[-1], s1.U[-2])  # shifted plan repeats its last control


def test_control_to_action():
    box = spaces.Box(-1.0, 1.0, (1,), jnp.float32)
    np.testing.assert_allclose(control_to_action(jnp.array([5.0]), box, [-10.0], [10.0]), [0.5])
    np.testing.assert_allclose(control_to_action(jnp.array([-30.0]), box, [-10.0], [10.0]), [-1.0])
    two = spaces.Discrete(2)
    assert int(control_to_action(jnp.array([0.3]), two, [-10.0], [10.0])) == 1
    assert int(control_to_action(jnp.array([-0.3]), two, [-10.0], [10.0])) == 0
    three = spaces.Discrete(3)
    assert int(control_to_action(jnp.array([1.0]), three, [-10.0], [10.0])) == 1
    with pytest.raises(ValueError, match="finite control bounds"):
        control_to_action(jnp.array([1.0]), two, [-np.inf], [np.inf])
    with pytest.raises(ValueError, match="scalar control"):
        control_to_action(jnp.zeros(2), two, [-1.0, -1.0], [1.0, 1.0])
    with pytest.raises(TypeError, match="Box or Discrete"):
        control_to_action(jnp.zeros(1), spaces.MultiDiscrete([2, 2]), [-1.0], [1.0])


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"method": "mppi"}, ValueError, "method"),
        ({"iterations": 0}, ValueError, "iterations"),
        ({"iterations": 1.5}, TypeError, "iterations must be an int"),
        ({"horizon": 0}, ValueError, "horizon"),
        ({"problem": "cartpole"}, TypeError, "Problem"),
        ({"bogus": 1}, TypeError, r"unknown option\(s\) \['bogus'\]; ILQRConfig has"),
        ({"config": {"mu_min": 1}}, TypeError, "config must be an ILQRConfig"),
    ],
)
def test_make_mpc_bad_input(kwargs, err, match):
    problem = kwargs.pop("problem", SWINGUP)
    with pytest.raises(err, match=match):
        make_mpc(problem, **kwargs)


def test_bad_initial_plan_and_steps():
    mpc = make_mpc(SWINGUP, iterations=1)
    with pytest.raises(ValueError, match="U has shape"):
        mpc.init(U=jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="steps"):
        closed_loop(CartPoleSwingUp(), CartPoleSwingUp().default_params, mpc, jax.random.key(0), 0)


def test_a_state_of_the_wrong_shape_is_named():
    # checked on shapes when the step is traced (no cost per step): without it the solver
    # failed deep inside with a broadcast between the two sizes
    mpc = make_mpc(SWINGUP, iterations=1)
    state = mpc.init()
    with pytest.raises(ValueError, match=r"x of shape \(3,\).*the model was built for"):
        mpc.step(state, jnp.zeros(3), SWINGUP.params)
    with pytest.raises(ValueError, match=r"x must be a state vector \[n\], got shape \(4, 1\)"):
        mpc.step(state, jnp.zeros((4, 1)), SWINGUP.params)
    u, _ = mpc.step(state, jnp.zeros(4), SWINGUP.params)
    assert u.shape == (1,)
    # vmapped over states, the check sees one state
    us, _ = jax.vmap(mpc.step, in_axes=(None, 0, None))(state, jnp.zeros((2, 4)), SWINGUP.params)
    assert us.shape == (2, 1)
