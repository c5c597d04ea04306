"""Every input checked at the environment boundary (issue 11, part 3).

Plain environments refuse bad concrete actions and impossible parameters outside `jit`
(and cost nothing under it); `bellmax.envs.checked(env)` also catches them under `jit`,
`vmap` and `scan`, including parameters changed with `params.replace`.
"""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.core.errors import UnknownNameError
from bellmax.envs import (
    AutoReset,
    CheckedEnv,
    EpisodeStatistics,
    TimeLimit,
    _checks,
    checked,
    spaces,
)
from bellmax.envs.pendulum import PendulumParams
from bellmax.envs.registry import is_registered, resolve, resolve_env

KEY = jax.random.PRNGKey(0)
JaxRuntimeError = jax.errors.JaxRuntimeError


def _cartpole():
    env, params = bellmax.make("CartPole-v1")
    _, state = env.reset(KEY, params)
    return env, params, state


# ---------------------------------------------------------------------- CartPole's actions
@pytest.mark.parametrize(
    "action, error, message",
    [
        (
            7,
            ValueError,
            "CartPole-v1.step: action 7 is out of range: the valid actions are the integers "
            "0..1 (Discrete(2)); pass one of them.",
        ),
        (
            -1,
            ValueError,
            "CartPole-v1.step: action -1 is out of range: the valid actions are the integers "
            "0..1 (Discrete(2)); pass one of them.",
        ),
        (
            1.5,
            TypeError,
            "CartPole-v1.step: action 1.5 has dtype float64, but the actions of Discrete(2) "
            "are integers; pass an integer index (int(a), or a.astype(jnp.int32) for an "
            "array of whole numbers).",
        ),
        (
            np.array([0, 1]),
            ValueError,
            "CartPole-v1.step: the action must be one integer (shape ()) for Discrete(2), got "
            "shape (2,): [0 1]. Pass a scalar; to step many environments at once use "
            "jax.vmap(env.step) or bellmax.envs.make_vector_env.",
        ),
    ],
)
def test_cartpole_refuses_the_actions_that_used_to_push_left(action, error, message):
    env, params, state = _cartpole()
    with pytest.raises(error) as info:
        env.step(KEY, state, action, params)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "action, error, match",
    [
        (True, TypeError, "dtype bool"),
        (1.0, TypeError, "dtype float64"),
        (jnp.asarray(1.0), TypeError, "dtype float32"),
        ("1", TypeError, "must be a number"),
        (None, TypeError, "must be a number"),
        ([1], ValueError, r"got shape \(1,\)"),
        ([[0, 1], [1]], ValueError, "ragged"),
    ],
)
def test_cartpole_other_bad_actions(action, error, match):
    env, params, state = _cartpole()
    with pytest.raises(error, match=match):
        env.step(KEY, state, action, params)


@pytest.mark.parametrize(
    "action", [1, np.int64(1), np.int32(1), np.array(1), jnp.asarray(1), jnp.int32(1), np.uint8(1)]
)
def test_cartpole_accepts_every_integer_kind(action):
    env, params, state = _cartpole()
    ref = env.step(KEY, state, 1, params)[1]
    got = env.step(KEY, state, action, params)[1]
    np.testing.assert_array_equal(got.vector(), ref.vector())


def test_under_jit_nothing_is_checked_and_the_documented_behaviour_holds():
    env, params, state = _cartpole()
    step = jax.jit(lambda a: env.step(KEY, state, a, params)[1].vector())
    # CartPole's docstring: every action other than 1 pushes left
    np.testing.assert_array_equal(step(7), step(0))
    np.testing.assert_array_equal(step(-1), step(0))
    # the check costs nothing there: no callback, no extra operation in the program
    text = str(jax.make_jaxpr(lambda a: env.step(KEY, state, a, params))(1))
    assert "callback" not in text and "cond" not in text


# ---------------------------------------------------------------------- every environment
def _env(env_id):
    env, params = bellmax.make(env_id)
    _, state = env.reset(KEY, params)
    return env, params, state, env.action_space(params)


@pytest.mark.parametrize("env_id", bellmax.registered())
def test_every_env_refuses_bad_concrete_actions(env_id):
    env, params, state, space = _env(env_id)
    if isinstance(space, spaces.Discrete):
        for bad in (space.n, -1):
            with pytest.raises(ValueError, match=rf"{re.escape(env_id)}.step: action {bad} is out"):
                env.step(KEY, state, bad, params)
        with pytest.raises(TypeError, match="integers"):
            env.step(KEY, state, 0.5, params)
        with pytest.raises(ValueError, match=r"shape \(2,\)"):
            env.step(KEY, state, np.zeros(2, np.int32), params)
        for good in (space.n - 1, np.int64(0), jnp.asarray(0, jnp.int32)):
            env.step(KEY, state, good, params)
    else:
        assert isinstance(space, spaces.Box)
        with pytest.raises(ValueError, match=r"must have shape \(1,\)"):
            env.step(KEY, state, np.zeros(2), params)
        for bad in (np.nan, np.inf, [-np.inf]):
            with pytest.raises(ValueError, match="not finite"):
                env.step(KEY, state, bad, params)
        with pytest.raises(TypeError, match="dtype bool"):
            env.step(KEY, state, np.array([True]), params)
        for good in (0.5, [0.5], np.float64(0.5), jnp.asarray([0.5], jnp.float32), 0):
            env.step(KEY, state, good, params)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPoleSwingUp-v0"])
def test_out_of_bounds_continuous_actions_are_clipped_as_in_gymnasium(env_id):
    env, params, state, space = _env(env_id)
    far = env.step(KEY, state, jnp.array([5.0]) * space.high, params)
    edge = env.step(KEY, state, jnp.asarray(space.high), params)
    np.testing.assert_array_equal(far[0], edge[0])
    assert float(far[2]) == float(edge[2])


def test_gridworld_rejects_outside_jit_and_clips_inside_it():
    env, params, state, _ = _env("GridWorld4x4-v0")
    with pytest.raises(ValueError, match=r"action 7 is out of range.*0\.\.3"):
        env.step(KEY, state, 7, params)
    step = jax.jit(lambda a: env.step(KEY, state, a, params)[0])
    assert int(step(7)) == int(step(3)) and int(step(-1)) == int(step(0))


def test_batched_and_vmapped_calls_still_work():
    env, params, _ = _cartpole()
    keys = jax.random.split(KEY, 5)
    _, states = jax.vmap(env.reset, (0, None))(keys, params)
    actions = jnp.array([0, 1, 1, 0, 1], jnp.int32)
    out = jax.jit(jax.vmap(env.step, (0, 0, 0, None)))(keys, states, actions, params)
    assert out[0].shape == (5, 4)
    pend, pp = bellmax.make("Pendulum-v1")
    _, ps = jax.vmap(pend.reset, (0, None))(keys, pp)
    out = jax.vmap(pend.step, (0, 0, 0, None))(keys, ps, jnp.zeros((5, 1)), pp)
    assert out[0].shape == (5, 3)
    # params vmapped, with a concrete action closed over
    state = jax.tree.map(lambda x: x[0], states)
    step = lambda m: env.step(KEY, state, 1, params.replace(masspole=m))  # noqa: E731
    nxt = jax.vmap(lambda m: step(m)[1].x_dot)(jnp.array([0.1, 0.2]))
    assert nxt.shape == (2,) and float(nxt[0]) != float(nxt[1])


@pytest.mark.parametrize("wrap", [AutoReset, EpisodeStatistics, lambda e: TimeLimit(e, 3)])
def test_wrappers_check_against_the_inner_environment(wrap):
    env, params, _ = _cartpole()
    wrapped = wrap(env)
    _, state = wrapped.reset(KEY, params)
    with pytest.raises(ValueError, match=r"CartPole-v1\.step: action 7 is out of range"):
        wrapped.step(KEY, state, 7, params)
    with pytest.raises(ValueError, match="masspole must be a finite number > 0"):
        wrapped.step(KEY, state, 1, params.replace(masspole=-1.0))
    wrapped.step(KEY, state, np.int64(1), params)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize("env_id", bellmax.registered())
def test_params_of_another_environment_are_refused(env_id):
    env, params = bellmax.make(env_id)
    other = bellmax.make("GamblersProblem-v0" if env_id == "CartPole-v1" else "CartPole-v1")[1]
    needs = f"{env.name} needs {type(params).__name__}, got "
    for call in (
        lambda: env.check_params(other),
        lambda: env.reset(KEY, other),
        lambda: env.check_params(object()),
    ):
        with pytest.raises(TypeError, match=re.escape(needs)):
            call()


@pytest.mark.parametrize("env_id", bellmax.registered())
def test_every_numeric_parameter_declares_its_bounds(env_id):
    # a field declared without `bounded` (or an override that drops it) would go unchecked
    _, params = bellmax.make(env_id)
    bounds = _checks.field_bounds_of(params)
    for f in dataclasses.fields(params):
        if f.type in ("float", "int", float, int):
            assert f.name in bounds, f"{type(params).__name__}.{f.name} has no declared bounds"
    assert _checks.field_bounds_of(type(params)) == bounds
    assert _checks.field_bounds_of(object()) == {}


@pytest.mark.parametrize(
    "env_id, field, value, valid",
    [
        ("CartPole-v1", "masspole", -1, "> 0"),
        ("CartPole-v1", "masspole", 0.0, "> 0"),
        ("CartPole-v1", "masscart", 0.0, "> 0"),
        ("CartPole-v1", "length", -0.5, "> 0"),
        ("CartPole-v1", "tau", 0.0, "> 0"),
        ("CartPole-v1", "gravity", -9.8, ">= 0"),
        ("CartPole-v1", "force_mag", -10.0, ">= 0"),
        ("CartPole-v1", "x_threshold", 0.0, "> 0"),
        ("CartPole-v1", "masspole", float("nan"), "> 0"),
        ("CartPole-v1", "max_steps_in_episode", 0, "a whole number >= 1"),
        ("CartPole-v1", "max_steps_in_episode", 2.5, "a whole number >= 1"),
        ("CartPoleSwingUp-v0", "length", -0.5, "> 0"),
        ("CartPoleSwingUp-v0", "init_noise", -0.1, ">= 0"),
        ("CartPoleSwingUp-v0", "control_cost", 2.0, r"in \[0, 1\]"),
        ("Pendulum-v1", "max_speed", 0.0, "> 0"),
        ("Pendulum-v1", "max_torque", -2.0, ">= 0"),
        ("Pendulum-v1", "dt", 0.0, "> 0"),
        ("Pendulum-v1", "g", -10.0, ">= 0"),
        ("Pendulum-v1", "m", 0.0, "> 0"),
        ("Pendulum-v1", "l", float("inf"), "> 0"),
        ("GaussianBandit-v0", "reward_std", -1.0, ">= 0"),
        ("GamblersProblem-v0", "p_h", 1.0, r"in \(0, 1\)"),
        ("GridWorld5x5-v0", "gamma", 1.2, r"in \[0, 1\]"),
    ],
)
def test_make_refuses_impossible_parameters(env_id, field, value, valid):
    with pytest.raises(ValueError) as info:
        bellmax.make(env_id, **{field: value})
    text = str(info.value)
    assert re.search(rf"Params\.{field} must be .*{valid}", text), text
    assert f"got {value!r}" in text or f"got {float(value)!r}" in text, text


def test_parameter_messages_name_field_value_range_and_default():
    with pytest.raises(ValueError) as info:
        bellmax.make("CartPole-v1", masspole=-1)
    assert str(info.value) == (
        "CartPoleParams.masspole must be a finite number > 0 (the pole's mass, kg), got -1; "
        "the default is 0.1."
    )
    with pytest.raises(ValueError, match=r"got \[ 0.1 -1. \] \(entry 1 is -1.0\)"):
        bellmax.make("CartPole-v1", masspole=[0.1, -1.0])


@pytest.mark.parametrize("value", ["heavy", None, True])
def test_make_refuses_parameters_that_are_not_numbers(value):
    with pytest.raises(TypeError, match=r"CartPoleParams\.masspole must be a number"):
        bellmax.make("CartPole-v1", masspole=value)


def test_reset_and_step_check_replaced_params():
    env, params, state = _cartpole()
    bad = params.replace(tau=-0.02)
    with pytest.raises(ValueError, match=r"CartPoleParams\.tau must be a finite number > 0"):
        env.reset(KEY, bad)
    with pytest.raises(ValueError, match=r"CartPoleParams\.tau"):
        env.step(KEY, state, 1, bad)
    with pytest.raises(TypeError, match="CartPole-v1 needs CartPoleParams, got PendulumParams"):
        env.step(KEY, state, 1, PendulumParams())


def test_unknown_keyword_names_the_valid_fields():
    with pytest.raises(UnknownNameError) as info:
        bellmax.make("CartPole-v1", mass_pole=1)
    text = str(info.value)
    assert "unknown parameter of CartPoleParams 'mass_pole'" in text
    assert "Valid fields: max_steps_in_episode, gravity, masscart, masspole, length" in text
    assert "Known:" not in text  # the fields are listed once


def test_unknown_keyword_far_from_every_field_lists_the_fields_once():
    with pytest.raises(UnknownNameError) as info:
        bellmax.make("CartPole-v1", foo=1)
    text = str(info.value)
    assert text.count("force_mag") == 1 and "Known:" not in text
    assert "Valid fields: max_steps_in_episode, gravity" in text


def test_array_likes_are_accepted_where_arrays_are_expected():
    env, params = bellmax.make("WindyGridworld-v0", wind=[0, 0, 0, 1, 1, 1, 2, 2, 1, 0])
    assert isinstance(params.wind, np.ndarray)
    _, state = env.reset(KEY, params)
    env.step(KEY, state, 1, params)
    env, params = bellmax.make("CartPole-v1", masspole=[0.1, 0.2])
    assert isinstance(params.masspole, np.ndarray)
    pend, pp = bellmax.make("Pendulum-v1")
    _, ps = pend.reset(KEY, pp)
    a = pend.step(KEY, ps, [0.5], pp)
    b = pend.step(KEY, ps, jnp.array([0.5]), pp)
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize("env_id", [None, 3, ["CartPole-v1"]])
def test_env_id_must_be_a_string(env_id):
    with pytest.raises(TypeError, match=r"takes an environment id, a string such as 'CartPole-v1'"):
        bellmax.make(env_id)
    for find in (resolve, resolve_env):
        with pytest.raises(TypeError, match="takes an environment id"):
            find(env_id)
    assert not is_registered(env_id)


def test_make_given_an_environment_object_says_what_to_do():
    env, _ = bellmax.make("CartPole-v1")
    with pytest.raises(TypeError, match="call its reset/step directly"):
        bellmax.make(env)


# ---------------------------------------------------------------------- checked(env)
def test_checked_is_exported_and_wraps_only_environments():
    env, _, _ = _cartpole()
    c = checked(env)
    assert isinstance(c, CheckedEnv) and c.name == "CartPole-v1" and c.unwrapped is env
    assert "checked" in bellmax.envs.__all__ and repr(c) == "checked(CartPole())"
    with pytest.raises(TypeError, match="wraps a bellmax Environment"):
        checked("CartPole-v1")
    with pytest.raises(TypeError, match="allow_out_of_bounds"):
        checked(env, allow_out_of_bounds="yes")


def test_checked_catches_a_bad_action_under_jit():
    env, params, _ = _cartpole()
    c = checked(env)
    _, state = c.reset(KEY, params)
    step = jax.jit(lambda s, a: c.step(KEY, s, a, params))
    good = step(state, 1)
    plain = env.step(KEY, state, 1, params)
    np.testing.assert_allclose(good[0], plain[0], rtol=1e-6)  # params folded in as constants
    with pytest.raises(
        JaxRuntimeError, match=r"ValueError: checked\(CartPole-v1\)\.step: action 7"
    ):
        jax.block_until_ready(step(state, 7))
    with pytest.raises(JaxRuntimeError, match="action -1 is out of range"):
        jax.block_until_ready(step(state, -1))
    # dtype and shape are static: they raise while tracing, with the plain error types
    with pytest.raises(TypeError, match="the traced action has dtype float32"):
        step(state, 1.5)
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        step(state, jnp.array([0, 1]))


def test_checked_catches_params_replace_under_jit_and_outside():
    env, params, _ = _cartpole()
    c = checked(env)
    _, state = c.reset(KEY, params)
    bad = params.replace(masspole=-1.0)
    step = jax.jit(lambda s, p: c.step(KEY, s, 1, p))
    step(state, params)
    with pytest.raises(
        JaxRuntimeError,
        match=r"checked\(CartPole-v1\)\.step: CartPoleParams\.masspole must be a finite number "
        r"> 0 \(the pole's mass, kg\), got -1\.0",
    ):
        jax.block_until_ready(step(state, bad))
    with pytest.raises(ValueError, match=r"checked\(CartPole-v1\)\.step: CartPoleParams\.masspole"):
        c.step(KEY, state, 1, bad)
    with pytest.raises(JaxRuntimeError, match=r"CartPoleParams\.tau"):
        jax.block_until_ready(jax.jit(lambda p: c.reset(KEY, p))(params.replace(tau=0.0)))


def test_checked_under_vmap_and_scan():
    env, params, _ = _cartpole()
    c = checked(env)
    keys = jax.random.split(KEY, 3)
    _, states = jax.vmap(c.reset, (0, None))(keys, params)
    vstep = jax.jit(jax.vmap(c.step, (0, 0, 0, None)))
    vstep(keys, states, jnp.array([0, 1, 1]), params)
    with pytest.raises(JaxRuntimeError, match="action 5 is out of range"):
        jax.block_until_ready(vstep(keys, states, jnp.array([0, 5, 1]), params))

    def run(actions):
        def body(s, a):
            _, s, r, _, _, _ = c.step(KEY, s, a, params)
            return s, r

        return jax.lax.scan(body, jax.tree.map(lambda x: x[0], states), actions)

    jax.jit(run)(jnp.array([0, 1, 0]))
    with pytest.raises(JaxRuntimeError, match="action 2 is out of range"):
        jax.block_until_ready(jax.jit(run)(jnp.array([0, 1, 2, 0])))


def test_checked_continuous_actions_bounds_and_nan():
    env, params = bellmax.make("Pendulum-v1")
    c = checked(env)
    _, state = c.reset(KEY, params)
    with pytest.raises(
        ValueError, match=r"action \[5\.\] is outside Box.*low \[-2\.\], high \[2\.\]"
    ):
        c.step(KEY, state, jnp.array([5.0]), params)
    lenient = checked(env, allow_out_of_bounds=True)
    lenient.step(KEY, state, jnp.array([5.0]), params)  # clipped, as the plain env does
    step = jax.jit(lambda a: c.step(KEY, state, a, params))
    step(jnp.array([1.5]))
    with pytest.raises(JaxRuntimeError, match=r"action \[nan\] is not finite"):
        jax.block_until_ready(step(jnp.array([jnp.nan])))
    with pytest.raises(JaxRuntimeError, match=r"action \[-3\.\] is outside"):
        jax.block_until_ready(step(jnp.array([-3.0])))
    # bounds from a changed parameter are those checked
    wide = params.replace(max_torque=4.0)
    c.step(KEY, state, jnp.array([3.0]), wide)


def test_checked_catches_observations_outside_the_space_or_not_finite():
    env, params, state = _cartpole()
    c = checked(env)
    far = state.replace(x=jnp.asarray(9.0))  # beyond the 2 * x_threshold of the space
    with pytest.raises(ValueError, match=r"observation \[.*\] is outside the observation space"):
        c.step(KEY, far, 1, params)
    with pytest.raises(JaxRuntimeError, match="is outside the observation space"):
        jax.block_until_ready(jax.jit(lambda s: c.step(KEY, s, 1, params))(far))
    nan = state.replace(theta_dot=jnp.asarray(jnp.nan))
    with pytest.raises(ValueError, match=r"observation \[.*\] is not finite"):
        c.step(KEY, nan, 1, params)
    plain = env.step(KEY, nan, 1, params)  # the plain env only checks its inputs
    assert not np.all(np.isfinite(plain[0]))


def test_checked_tabular_env_and_traced_params():
    env, params = bellmax.make("CliffWalking-v0")
    c = checked(env)
    _, state = c.reset(KEY, params)
    step = jax.jit(lambda s, a, p: c.step(KEY, s, a, p))
    step(state, 1, params)
    with pytest.raises(JaxRuntimeError, match="action 4 is out of range"):
        jax.block_until_ready(step(state, 4, params))
    with pytest.raises(JaxRuntimeError, match=r"GridParams\.gamma must be"):
        jax.block_until_ready(step(state, 1, params.replace(gamma=jnp.asarray(2.0))))


def test_checked_composes_with_wrappers_under_jit():
    env, params, _ = _cartpole()
    stacked = AutoReset(checked(env))
    _, state = stacked.reset(KEY, params)
    step = jax.jit(lambda s, a: stacked.step(KEY, s, a, params))
    step(state, 0)
    with pytest.raises(JaxRuntimeError, match="action 3 is out of range"):
        jax.block_until_ready(step(state, 3))
    outer = checked(AutoReset(env))
    _, state = outer.reset(KEY, params)
    with pytest.raises(ValueError, match=r"checked\(CartPole-v1\)\.step: action 3"):
        outer.step(KEY, state, 3, params)


@pytest.mark.parametrize(
    "bounds",
    [
        _checks.positive(),
        _checks.nonnegative(),
        _checks.finite(),
        _checks.count(),
        _checks.count(low=0),
        _checks.discount(),
        _checks.between(0.0, 1.0, low_open=True, high_open=True),
        _checks.between(0.0, 1.0, high_open=True),
    ],
)
def test_the_fast_scalar_path_agrees_with_the_array_path(bounds):
    values = [-np.inf, -1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3, 0, -1, np.inf, np.nan]
    for v in values:
        assert bounds.holds_number(v) == bool(bounds.holds(np.asarray(v, np.float64))), (bounds, v)
        assert bool(bounds.holds(jnp.asarray(v, jnp.float32), jnp)) == bounds.holds_number(v)
