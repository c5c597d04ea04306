"""The cart-pole's nominal swing-up controller and a controller's rollout as a plan.

Shown, against hand derivations and the environment's own physics (no learning, no MPC):
- `cartpole_swingup_controller`: far from upright it is the energy-pumping law of the module
  docstring (the pole's energy derived in a comment, not read from the code), so one Euler
  step with its force ends with more energy than with no force while the energy is below the
  upright rest state's, and less above it; the cart is pulled to the centre; within `catch`
  of upright it is LQR about upright; the force is `[1]`, within `params.force_mag`, the same
  for angles 2 pi apart, jitted or not; bad arguments name the field.
- `rollout_plan`: `U[t]` is the controller's control at the state reached by the problem's
  dynamics (time index `t`) with `params` or the problem's own; on the swing-up problem it is
  the rollout of the environment's own `step_env` driven by the controller.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.control import cartpole_balance, make_lqr_controller
from bellmax.control.problems import env_problem
from bellmax.envs import registry
from bellmax.envs.cartpole import CartPoleState, cartpole_euler_step
from bellmax.imitation import cartpole_swingup_controller, rollout_plan

ENV = "CartPoleSwingUp-v0"


@pytest.fixture(scope="module")
def swingup():
    """`(env, params, controller)`: the swing-up environment, its parameters and the nominal
    controller with its defaults."""
    env, params = registry.make(ENV)
    return env, params, cartpole_swingup_controller(params)


def _energy(theta, theta_dot, p):
    """The pole's energy relative to upright at rest (`theta = 0` upright).

    A uniform pole of mass m and half-length l (`params.length`) turning about the cart's
    pivot: inertia (1/3) m (2 l)^2 = (4/3) m l^2, kinetic energy (1/2)(4/3) m l^2 theta_dot^2
    = (2/3) m l^2 theta_dot^2; its centre of mass is l cos(theta) above the pivot, so the
    potential energy relative to upright is m g l (cos(theta) - 1). Hanging at rest:
    -2 m g l = -0.98 J with Gymnasium's constants.
    """
    m, half, g = float(p.masspole), float(p.length), float(p.gravity)
    return (2.0 / 3.0) * m * half**2 * theta_dot**2 + m * g * half * (np.cos(theta) - 1.0)


def _pump(x, p, max_accel=10.0, gains=(4.0, 4.0), sharpness=0.1, bias=0.15):
    """The module docstring's law in numpy: acceleration
    `a_max tanh(E (theta_dot + bias) cos(theta) / eps) - k_x x - k_v x_dot`, as a force
    `(m_cart + m_pole) a` clipped to `force_mag`."""
    x = np.asarray(x, np.float64)
    e = _energy(x[2], x[3], p)
    accel = max_accel * np.tanh(e * (x[3] + bias) * np.cos(x[2]) / sharpness)
    accel -= gains[0] * x[0] + gains[1] * x[1]
    total = float(p.masscart) + float(p.masspole)
    return float(np.clip(total * accel, -float(p.force_mag), float(p.force_mag)))


def test_hanging_at_rest_gets_the_first_push_by_hand(swingup):
    _, params, control = swingup
    # E = -0.98 J, switch = E (0 + 0.15) cos(pi) / 0.1 = 1.47, acceleration 10 tanh(1.47)
    # = 8.9958 m/s^2, force (1.0 + 0.1) * 8.9958 = 9.8954 N, within the 10 N limit
    u = control(jnp.array([0.0, 0.0, np.pi, 0.0]))
    assert u.shape == (1,)
    np.testing.assert_allclose(u, [9.8954], rtol=1e-4)
    # without the bias the switch is 0 at rest: no push at all
    no_bias = cartpole_swingup_controller(params, bias=0.0)
    np.testing.assert_allclose(no_bias(jnp.array([0.0, 0.0, np.pi, 0.0])), [0.0], atol=1e-6)


def test_the_cart_is_pulled_to_the_centre_and_the_force_clipped(swingup):
    _, params, control = swingup
    # pole horizontal (cos theta = 0): the pumping term vanishes, the acceleration is
    # -4 x - 4 x_dot = -4 (0.5) - 4 (0.25) = -3, the force 1.1 * -3 = -3.3 N
    np.testing.assert_allclose(control(jnp.array([0.5, 0.25, np.pi / 2, 0.0])), [-3.3], rtol=1e-5)
    # 10 m away: -40 m/s^2, -44 N, clipped to the 10 N limit
    np.testing.assert_allclose(control(jnp.array([10.0, 0.0, np.pi / 2, 0.0])), [-10.0])
    # a weaker actuator: the limit is params.force_mag (hanging at rest wants 9.9 N)
    weak = cartpole_swingup_controller(params.replace(force_mag=3.0))
    np.testing.assert_allclose(weak(jnp.array([0.0, 0.0, np.pi, 0.0])), [3.0])


def _states_outside_catch(n, seed, catch=0.9):
    rng = np.random.default_rng(seed)
    x = np.stack(
        [
            rng.uniform(-1.0, 1.0, n),
            rng.uniform(-1.0, 1.0, n),
            rng.uniform(-np.pi, np.pi, n),
            rng.uniform(-6.0, 6.0, n),
        ],
        axis=1,
    ).astype(np.float32)
    return x[np.cos(x[:, 2]) < catch - 0.01]  # clear of the LQR boundary


def test_far_from_upright_it_is_the_energy_pumping_law(swingup):
    _, params, control = swingup
    xs = _states_outside_catch(300, 0)
    got = np.asarray(jax.vmap(control)(jnp.asarray(xs)))[:, 0]
    want = np.array([_pump(x, params) for x in xs])
    # the tanh switch is steep (eps = 0.1): float32 rounding near it moves the force a little
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert np.all(np.abs(got) <= 10.0)


def test_the_force_pumps_energy_towards_the_upright_rest_state(swingup):
    # Without centring and bias the law's force has the sign of -E theta_dot cos(theta); with
    # Gymnasium's equations a force F changes theta's acceleration by
    # -F cos(theta) / (M l (4/3 - m cos^2(theta) / M)), so one Euler step with the force
    # ends with more kinetic energy (and the same angle) than one without it when E < 0,
    # and less when E > 0.
    _, params, _ = swingup
    control = cartpole_swingup_controller(params, centre_gains=(0.0, 0.0), bias=0.0)
    xs = _states_outside_catch(400, 1)
    xs = xs[(np.abs(xs[:, 3]) > 1.0) & (np.abs(np.cos(xs[:, 2])) > 0.2)]  # a clear effect
    step = jax.jit(jax.vmap(lambda x, f: cartpole_euler_step(x, f, params)))
    forces = jax.vmap(control)(jnp.asarray(xs))[:, 0]
    after = np.asarray(step(jnp.asarray(xs), forces), np.float64)
    coast = np.asarray(step(jnp.asarray(xs), jnp.zeros(len(xs))), np.float64)
    e0 = _energy(xs[:, 2], xs[:, 3], params)
    gain = _energy(after[:, 2], after[:, 3], params) - _energy(coast[:, 2], coast[:, 3], params)
    low, high = e0 < -0.05, e0 > 0.05
    assert low.sum() > 20 and high.sum() > 20  # both cases are sampled
    assert np.all(gain[low] > 0) and np.all(gain[high] < 0)


def test_near_upright_it_is_lqr_within_catch(swingup):
    _, params, control = swingup
    lqr = make_lqr_controller(cartpole_balance(params), params)
    # unsaturated, so a wrong gain would show (|u| < force_mag = 10)
    near = jnp.array([0.02, 0.0, 0.05, 0.0])
    u_near = np.asarray(lqr.step(lqr.init(), near, params)[0])
    assert 0.5 < abs(float(u_near[0])) < 9.0
    np.testing.assert_allclose(control(near), u_near, rtol=1e-5, atol=1e-6)
    assert abs(float(u_near[0]) - _pump(near, params)) > 0.1  # the two laws differ here
    x = jnp.array([0.2, -0.1, 0.3, 0.4])  # cos(0.3) = 0.955 > 0.9; LQR saturates here
    u_lqr = np.clip(np.asarray(lqr.step(lqr.init(), x, params)[0]), -10.0, 10.0)
    np.testing.assert_allclose(control(x), u_lqr, rtol=1e-5, atol=1e-6)
    # with catch = 0.99 the same state is pumped; with catch = -1 every state but hanging
    # exactly straight down is caught
    np.testing.assert_allclose(
        cartpole_swingup_controller(params, catch=0.99)(x), [_pump(x, params)], atol=1e-4
    )
    caught = cartpole_swingup_controller(params, catch=-1.0)
    y = jnp.array([0.0, 0.0, 2.0, 0.0])  # cos(2) = -0.42
    y_lqr = np.clip(np.asarray(lqr.step(lqr.init(), y, params)[0]), -10.0, 10.0)
    np.testing.assert_allclose(caught(y), y_lqr, rtol=1e-5, atol=1e-6)


def test_angles_two_pi_apart_get_the_same_force_jitted_or_not(swingup):
    _, _, control = swingup
    jitted = jax.jit(control)
    for x in ([0.1, 0.0, 0.2, -0.3], [0.0, 0.3, 2.5, 1.0], [0.4, -0.2, -1.2, 2.0]):
        base = np.asarray(control(jnp.array(x)))
        np.testing.assert_array_equal(np.asarray(jitted(jnp.array(x))), base)
        for k in (-2, -1, 1, 2):
            turned = jnp.array([x[0], x[1], x[2] + 2 * np.pi * k, x[3]])
            np.testing.assert_allclose(control(turned), base, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_accel": -1.0}, ValueError, r"max_accel must be a number >= 0, got -1\.0"),
        ({"sharpness": 0.0}, ValueError, r"sharpness must be a number > 0, got 0\.0"),
        ({"catch": 1.5}, ValueError, r"catch must be a number >= -1 and <= 1, got 1\.5"),
        ({"catch": float("nan")}, ValueError, "catch must be a finite number"),
        ({"max_accel": "10"}, TypeError, "max_accel must be a number, got str"),
        ({"bias": float("nan")}, ValueError, "bias must be a finite number"),
        ({"centre_gains": (1.0,)}, ValueError, r"centre_gains must be two numbers \(k_x, k_v\)"),
        ({"centre_gains": 4.0}, ValueError, "centre_gains must be two numbers"),
        ({"centre_gains": "ab"}, ValueError, "centre_gains must be two numbers"),
        ({"centre_gains": (float("nan"), 1.0)}, ValueError, "centre_gains k_x must be a finite"),
        ({"centre_gains": (1.0, -2.0)}, ValueError, r"centre_gains k_v must be a number >= 0"),
    ],
)
def test_bad_arguments_name_the_field(swingup, kwargs, error, match):
    _, params, _ = swingup
    with pytest.raises(error, match=rf"^cartpole_swingup_controller[.:] ?{match}"):
        cartpole_swingup_controller(params, **kwargs)


def test_centre_gains_may_be_any_pair_of_numbers(swingup):
    _, params, _ = swingup
    x = jnp.array([0.3, -0.2, 2.0, 1.0])
    want = cartpole_swingup_controller(params, centre_gains=(2.0, 3.0))(x)
    for gains in ([2.0, 3.0], np.array([2.0, 3.0]), (jnp.float32(2.0), jnp.float32(3.0))):
        np.testing.assert_array_equal(
            cartpole_swingup_controller(params, centre_gains=gains)(x), want
        )


def test_a_state_of_another_shape_is_refused(swingup):
    # one state [4] in, one force [1] out: a batch must be vmapped, not passed whole
    _, _, control = swingup
    for x in (jnp.zeros((1, 4)), jnp.zeros(3)):
        with pytest.raises(ValueError, match=r"shape \(4,\), got shape .*vmap the controller"):
            control(x)
    assert jax.vmap(control)(jnp.zeros((3, 4))).shape == (3, 1)


# ---------------------------------------------------------------------- rollout_plan


def _toy(horizon):
    """A one-state problem `x' = x + u + t` (the time term checks the index passed)."""
    return SimpleNamespace(dynamics=lambda x, u, t, p: x + u + t, params=None, horizon=horizon)


def test_rollout_plan_by_hand():
    # u = -x / 2 on x' = x + u + t from x0 = 8:
    # u0 = -4, x1 = 4 + 0 = 4; u1 = -2, x2 = 2 + 1 = 3; u2 = -1.5, x3 = 1.5 + 2 = 3.5;
    # u3 = -1.75.
    control = lambda x: -0.5 * x  # noqa: E731
    plan = rollout_plan(_toy(4), control)
    for fn in (plan, jax.jit(plan)):
        U = fn(jnp.array([8.0]))
        assert U.shape == (4, 1) and U.dtype == jnp.float32
        np.testing.assert_allclose(U[:, 0], [-4.0, -2.0, -1.5, -1.75], rtol=1e-6)


def test_rollout_plan_uses_the_params_given_or_the_problems():
    # x' = p x + u with the problem's p = 1, or p = 2 passed to rollout_plan
    problem = SimpleNamespace(dynamics=lambda x, u, t, p: p * x + u, params=1.0, horizon=3)
    control = lambda x: -0.5 * x  # noqa: E731
    # p = 1: u0 = -4, x1 = 4; u1 = -2, x2 = 2; u2 = -1
    np.testing.assert_allclose(rollout_plan(problem, control)(jnp.array([8.0]))[:, 0], [-4, -2, -1])
    # p = 2: u0 = -4, x1 = 16 - 4 = 12; u1 = -6, x2 = 24 - 6 = 18; u2 = -9
    U = rollout_plan(problem, control, 2.0)(jnp.array([8.0]))
    np.testing.assert_allclose(U[:, 0], [-4.0, -6.0, -9.0])


def test_swingup_plan_is_the_environment_driven_by_the_controller(swingup):
    # The plan `bellmax imitate` starts each MPC solve from (cli/imitate.py): the swing-up
    # problem at the environment's time step. Stepping the environment itself
    # (`step_env`, action = force / force_mag) with the controller gives the same controls.
    env, params, control = swingup
    horizon = 40
    problem = env_problem(ENV, "cartpole", params, horizon=horizon)[0]
    plan = jax.jit(rollout_plan(problem, control, params))
    step = jax.jit(lambda s, a: env.step_env(jax.random.key(0), s, a, params))
    control = jax.jit(control)
    for start in ([0.02, -0.01, np.pi - 0.03, 0.04], [0.3, 0.5, 2.0, -1.0]):
        U = np.asarray(plan(jnp.array(start)))
        assert U.shape == (horizon, 1) and np.all(np.abs(U) <= params.force_mag)
        v = jnp.asarray(start, jnp.float32)
        state = CartPoleState(
            x=v[0], x_dot=v[1], theta=v[2], theta_dot=v[3], time=jnp.asarray(0, jnp.int32)
        )
        for t in range(horizon):
            u = control(state.vector())
            np.testing.assert_allclose(U[t], u, rtol=1e-3, atol=1e-3, err_msg=f"step {t}")
            _, state, _, _, _ = step(state, u / params.force_mag)
    # the plan depends on the state alone: the same start, the same plan; batches by vmap
    starts = jnp.array([[0.0, 0.0, np.pi, 0.0], [0.1, 0.0, 3.0, 0.2]])
    batched = jax.vmap(plan)(starts)
    for i in range(2):
        np.testing.assert_array_equal(batched[i], plan(starts[i]))
    np.testing.assert_array_equal(plan(starts[1]), plan(starts[1]))
