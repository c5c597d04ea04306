"""Tests for bellmax.control.mpc: swing-up and hold, Gymnasium's own CartPole-v1, and the
closed-form linear-quadratic case, where MPC must reproduce scipy's infinite-horizon LQR."""

from __future__ import annotations

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import bellmax
from bellmax.control.mpc import (
    LQRController,
    closed_loop,
    closed_loop_host,
    control_to_action,
    make_lqr_controller,
    make_mpc,
)
from bellmax.control.problems import cartpole_balance, cartpole_swingup, make_problem
from bellmax.core.status import Status
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
    assert int(res.diverged_steps) == 0 and res.status.shape == (400,)


def test_an_episodes_length_counts_its_terminating_step():
    # CartPole pays +1 per step: an episode's length equals its return. `alive_steps` left the
    # terminating step out (`bellmax control` printed "return 54.0 in 53 steps"), where
    # Gymnasium's episode length counts it.
    from bellmax.control.problems import env_problem

    env, params = bellmax.make("CartPole-v1")
    problem, _ = env_problem("CartPole-v1", "cartpole", params, horizon=1)
    mpc = make_mpc(problem, iterations=1)
    res = closed_loop(env, params, mpc, jax.random.split(jax.random.key(0), 4)[1], 200)
    assert bool(res.terminated[-1])  # this one falls
    assert int(res.alive_steps) == int(res.total_reward) < 200


def test_closed_loop_reports_the_steps_whose_plan_diverged():
    # A model that gives NaN: every plan diverges and MPC falls back to its previous plan;
    # the result says so per step (it only showed a NaN planned cost).
    nan_model = dataclasses.replace(SWINGUP, dynamics=lambda x, u, t, p: x * jnp.nan)
    mpc = make_mpc(nan_model, horizon=5, iterations=1)
    env = CartPoleSwingUp()
    res = closed_loop(env, env.default_params, mpc, jax.random.key(0), 5)
    assert int(res.diverged_steps) == 5
    assert (np.asarray(res.status) == Status.DIVERGED).all()
    # after a termination the loop plans on; those plans are not the episode's
    ended = res.replace(terminated=jnp.array([False, True, True, True, True]))
    assert int(ended.diverged_steps) == 2


def test_mpc_balances_gymnasium_cartpole_for_20_episodes():
    mpc = make_mpc(cartpole_balance(horizon=25), iterations=2)
    res = closed_loop_host("CartPole-v1", mpc, CartPoleParams(), num_envs=20, episodes=1, seed=0)
    assert res.episode_lengths.shape == (20,)
    assert np.all(res.episode_lengths == 500), res.episode_lengths
    assert np.all(res.episode_returns == 500.0)
    assert res.ms_per_step > 0 and res.diverged_steps == 0


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
    # an id or the unpacked pair, and a seed for the key: named (AttributeErrors before)
    params = CartPoleSwingUp().default_params
    with pytest.raises(TypeError, match=r"closed_loop takes an environment object .* bellmax.make"):
        closed_loop("CartPoleSwingUp-v0", params, mpc, jax.random.key(0), 5)
    with pytest.raises(TypeError, match=r"closed_loop: key must be a JAX PRNG key, got 0"):
        closed_loop(CartPoleSwingUp(), params, mpc, 0, 5)


def test_a_controller_for_another_system_is_refused_naming_both():
    # a cart-pole MPC on Pendulum-v1 failed deep in the planner with
    # AttributeError: 'PendulumParams' object has no attribute 'tau'
    env, params = bellmax.make("Pendulum-v1")
    mpc = make_mpc(SWINGUP, horizon=3, iterations=1)
    with pytest.raises(TypeError) as info:
        closed_loop(env, params, mpc, jax.random.key(0), 2)
    text = str(info.value)
    assert "does not fit Pendulum-v1: its model (problem 'cartpole_swingup') takes 4 states" in text
    assert "CartPoleParams, but Pendulum-v1 gives states of shape (2,)" in text
    assert "it would get PendulumParams (Pendulum-v1's env_params)" in text
    assert "pendulum_swingup" in text
    # the right state size, the wrong parameters: named as model_params
    cp, cp_params = bellmax.make("CartPoleSwingUp-v0")
    with pytest.raises(
        TypeError, match=r"takes CartPoleParams, but it would get PendulumParams \(model_params\)"
    ):
        closed_loop(cp, cp_params, mpc, jax.random.key(0), 2, model_params=params)
    # LQR feedback ignores the parameters; its state size is still checked
    lqr = LQRController(K=((0.0,) * 4,), goal=(0.0,) * 4, u_lower=(-10.0,), u_upper=(10.0,))
    with pytest.raises(TypeError, match=r"takes 4 states, but Pendulum-v1 gives states of shape"):
        closed_loop(env, params, lqr, jax.random.key(0), 2)


def test_a_host_loop_refuses_a_controller_for_another_system():
    # closed_loop_host had no fit check: a cart-pole MPC given pendulum parameters failed
    # deep in the planner (AttributeError: 'PendulumParams' object has no attribute 'tau')
    mpc = make_mpc(SWINGUP, horizon=3, iterations=1)
    _, pendulum = bellmax.make("Pendulum-v1")
    with pytest.raises(
        TypeError,
        match=r"closed_loop_host: the controller does not fit CartPole-v1: .* takes "
        r"CartPoleParams, but it would get PendulumParams \(model_params\)",
    ):
        closed_loop_host("CartPole-v1", mpc, pendulum, episodes=1, max_steps=2)


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


# ---------------------------------------------------------------------- linear-quadratic
# A double integrator (position, velocity; force over 0.1 s steps) with the running cost
# 1/2 x'Qx + 1/2 u'Ru and the terminal cost 1/2 x'Px, P the DARE's solution from scipy.
# Why the H-step MPC then equals infinite-horizon LQR exactly: the finite-horizon problem's
# value is V_t(x) = 1/2 x'P_t x with the Riccati recursion, from P_H = P,
#     P_t = Q + A'P_{t+1}A - A'P_{t+1}B (R + B'P_{t+1}B)^-1 B'P_{t+1}A,
#     u_t = -K_t x_t,  K_t = (R + B'P_{t+1}B)^-1 B'P_{t+1}A.
# The DARE says P is a fixed point of this map, so P_t = P at every t and every K_t is the
# infinite-horizon gain K: the optimal plan is u_t = -K (A - BK)^t x, its first control -K x.
# iLQR on a linear model with a quadratic cost is exact in one iteration (its backward pass
# is this recursion, its expansion exact, and the full step passes the line search).
LQ_DT, LQ_HORIZON = 0.1, 20
LQ_A = np.array([[1.0, LQ_DT], [0.0, 1.0]])
LQ_B = np.array([[0.5 * LQ_DT**2], [LQ_DT]])
LQ_Q, LQ_R = np.diag([1.0, 0.1]), np.array([[0.1]])
LQ_P = scipy.linalg.solve_discrete_are(LQ_A, LQ_B, LQ_Q, LQ_R)
LQ_K = np.linalg.solve(LQ_R + LQ_B.T @ LQ_P @ LQ_B, LQ_B.T @ LQ_P @ LQ_A)
#: States to plan from (float32-exact); their optimal controls range from 0.75 to 9.3.
LQ_STATES = np.array([[1.0, 0.0], [-0.5, 0.25], [0.25, -1.0], [2.0, 1.5]])
#: Control bounds far outside anything the plans use (|u| < 10): never active.
LQ_U_MAX = 100.0


def _lq_dynamics(x, u, t, params):
    return jnp.asarray(LQ_A, x.dtype) @ x + jnp.asarray(LQ_B, x.dtype) @ u


def _lq_cost(x, u, t, params):
    return 0.5 * (x @ jnp.asarray(LQ_Q, x.dtype) @ x + u @ jnp.asarray(LQ_R, x.dtype) @ u)


def _lq_terminal_cost(x, params):
    return 0.5 * x @ jnp.asarray(LQ_P, x.dtype) @ x


LQ_PROBLEM = make_problem(
    _lq_dynamics,
    _lq_cost,
    LQ_STATES[0],
    LQ_HORIZON,
    terminal_cost=_lq_terminal_cost,
    u_lower=[-LQ_U_MAX],
    u_upper=[LQ_U_MAX],
)


def _lq_first_controls(mpc):
    """The first MPC control from each of LQ_STATES (one vmapped step from the zero plan)."""
    us, state = jax.vmap(mpc.step, in_axes=(None, 0, None))(
        mpc.init(), jnp.asarray(LQ_STATES, jnp.float32), None
    )
    return np.asarray(us), state


def test_unconstrained_linear_quadratic_mpc_is_infinite_horizon_lqr():
    # Unregularised (mu_init = 0): the first iteration is the exact Riccati solve, the second
    # finds the step zero and stops. What is left is float32 rounding (the plan is float32):
    # ~20 steps of Riccati recursion and rollout on controls up to ~9, each rounding by ~1e-6
    # (measured 2.5e-6 / 3.2e-6, 1.5e-6 / 2.9e-6 under SSE4_2). 1e-4 leaves room for another
    # CPU's rounding and is still 20x below the default regularisation's 0.2% (~2e-2).
    mpc = make_mpc(LQ_PROBLEM, iterations=2, mu_init=0.0)
    us, state = _lq_first_controls(mpc)
    np.testing.assert_allclose(us, -LQ_STATES @ LQ_K.T, rtol=0, atol=1e-4)
    assert np.all(np.asarray(state.status) == Status.CONVERGED)
    # the rest of the plan (shifted into the state) is the LQR closed loop: u_t = -K (A-BK)^t x
    A_cl = LQ_A - LQ_B @ LQ_K
    plan = np.stack(
        [
            [-LQ_K @ np.linalg.matrix_power(A_cl, t) @ x for t in range(1, LQ_HORIZON)]
            for x in LQ_STATES
        ]
    )
    np.testing.assert_allclose(np.asarray(state.U)[:, :-1], plan, rtol=0, atol=1e-4)
    assert np.abs(plan).max() < 0.1 * LQ_U_MAX and np.abs(us).max() < 0.1 * LQ_U_MAX


@pytest.mark.parametrize(("iterations", "fraction"), [(2, 1e-2), (5, 1e-4)])
def test_linear_quadratic_mpc_with_default_regularisation(iterations, fraction):
    # The default regularisation (mu_init = 1) adds mu f_u'f_u = mu B'B to Q_uu: each
    # iteration is a damped Riccati step that undershoots the exact one by about
    # mu B'B / (R + B'PB) = 7.7% at mu = 1 (B'B = 0.010, B'PB = 0.031, R = 0.1), and mu falls
    # by a growing factor per accepted step (1, 0.63, 0.24, 0.06, ...). So two iterations (the
    # budget of the cart-pole MPC tests) leave roughly 0.077 * 0.048 = 0.4% (measured 0.2% of
    # the largest control, 0.6% of one state's own): within 1%. make_mpc's default budget of
    # five leaves nothing above float32 rounding (measured 1.6e-7): within 1e-4.
    mpc = make_mpc(LQ_PROBLEM) if iterations == 5 else make_mpc(LQ_PROBLEM, iterations=2)
    assert mpc.config.max_iterations == iterations and mpc.config.mu_init == 1.0
    us, _ = _lq_first_controls(mpc)
    exact = -LQ_STATES @ LQ_K.T
    np.testing.assert_allclose(us, exact, rtol=0, atol=fraction * np.abs(exact).max())


def test_lqr_controller_of_an_unstabilisable_linearisation_names_the_mode_and_mpc():
    # x1 grows by 2 per step and no control reaches it: dlqr's message (the mode) plus the
    # way out for a controller (MPC), instead of a NaN gain.
    from bellmax.control.mpc import make_lqr_controller

    A = jnp.array([[2.0, 0.0], [0.0, 0.5]])
    B = jnp.array([[0.0], [1.0]])
    problem = make_problem(
        lambda x, u, t, p: A @ x + B @ u,
        lambda x, u, t, p: x @ x + u @ u,
        jnp.zeros(2),
        10,
        u_lower=-1.0,
        u_upper=1.0,
        goal=jnp.zeros(2),
    )
    with pytest.raises(
        ValueError, match=r"not stabilisable: A's mode with eigenvalue 2\.0.*ilqr-mpc"
    ):
        make_lqr_controller(problem)


def test_the_planners_compute_in_float64_under_x64():
    # Control engineers turn on x64 for precision: iLQR, shooting and collocation then solve
    # in float64, but MPC's and the sampling planners' states were cast to float32 (and a
    # float64 warm start with them), so their plans were float32 roundings.
    from bellmax.control.problems import pendulum_swingup
    from bellmax.control.sampling import SamplingConfig, make_sampling_mpc, plan

    with jax.enable_x64(True):
        prob = pendulum_swingup()
        mpc = make_mpc(prob, horizon=10, iterations=3)
        assert mpc.init(prob.x0).U.dtype == jnp.float64
        assert mpc.init(prob.x0, U=np.full((10, 1), 0.1)).U.dtype == jnp.float64
        u, state = mpc.step(mpc.init(prob.x0), prob.x0, prob.params)
        assert u.dtype == state.U.dtype == state.cost.dtype == jnp.float64
        lqr = make_lqr_controller(cartpole_balance())
        u, _ = lqr.step(lqr.init(), np.zeros(4), None)
        assert u.dtype == jnp.float64
        cfg = SamplingConfig(method="mppi", num_samples=16, iterations=2)
        smpc = make_sampling_mpc(prob, horizon=8, config=cfg)
        u, s = smpc.step(smpc.init(), prob.x0, prob.params)
        assert u.dtype == s.U.dtype == s.cost.dtype == s.temperature.dtype == jnp.float64
        res = plan(
            smpc.objective,
            prob.x0,
            np.zeros((8, 1)),
            jax.random.key(0),
            prob.params,
            u_lower=-2.0,
            u_upper=2.0,
            config=cfg,
        )
        assert res.U.dtype == res.cost.dtype == jnp.float64
    # Without x64 nothing changes: float32 throughout.
    assert make_mpc(prob, horizon=10, iterations=3).init().U.dtype == jnp.float32
