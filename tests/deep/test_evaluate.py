"""evaluate() and evaluate_batch(): episode bookkeeping on JAX and Gymnasium environments, caps,
batches of policies and bad input."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep.evaluate import EvalResult, evaluate, evaluate_batch
from bellmax.envs.vector import make_vector_env


def random_discrete(params, obs, key):
    del params
    return jax.random.randint(key, obs.shape[:1], 0, 2)


def always_left(params, obs, key):
    del params, key
    return jnp.zeros(obs.shape[:1], jnp.int32)


def zero_torque(params, obs, key):
    del key
    return jnp.zeros((obs.shape[0], 1)) + params


def test_cartpole_episodes_are_spread_over_envs_and_complete():
    # Shows: 7 episodes on 3 envs come back in full; CartPole pays 1 per step, so each
    # return equals its length, and a random policy fails well before 500 steps.
    res = evaluate(random_discrete, None, "CartPole-v1", jax.random.key(0), episodes=7, num_envs=3)
    assert isinstance(res, EvalResult)
    assert res.returns.shape == (7,) and bool(jnp.all(res.completed))
    np.testing.assert_allclose(res.returns, res.lengths)
    assert 5 < float(res.mean_return) < 100
    assert len(set(np.asarray(res.lengths).tolist())) > 1  # different episodes, not one repeated


def test_max_steps_cap_reports_unfinished_episodes():
    # Shows: with a cap of 3 steps no CartPole episode ends (pushing left takes ~8+ steps to
    # fail); they are reported as they stood, flagged not completed.
    res = evaluate(always_left, None, "CartPole-v1", jax.random.key(1), episodes=4, max_steps=3)
    np.testing.assert_array_equal(res.lengths, [3, 3, 3, 3])
    assert not bool(jnp.any(res.completed))
    full = evaluate(always_left, None, "CartPole-v1", jax.random.key(1), episodes=4)
    assert bool(jnp.all(full.completed)) and bool(jnp.all(full.lengths > 3))


def test_pendulum_episodes_last_exactly_the_time_limit():
    # Shows: truncated episodes count too (Pendulum ends only at 200 steps); params are passed.
    venv = make_vector_env("Pendulum-v1", num_envs=2)
    res = evaluate(zero_torque, jnp.float32(0.0), venv, jax.random.key(2), episodes=2)
    np.testing.assert_array_equal(res.lengths, [200, 200])
    assert bool(jnp.all(res.returns < 0))


def test_gymnasium_env_through_the_host_bridge():
    # Shows: the same jitted loop drives Gymnasium's CartPole through io_callback.
    res = evaluate(random_discrete, None, "gymnasium:CartPole-v1", jax.random.key(3), episodes=4)
    assert res.returns.shape == (4,) and bool(jnp.all(res.completed))
    np.testing.assert_allclose(res.returns, res.lengths)


def test_bad_evaluate_input_raises_clear_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="episodes must be an int >= 1, got 0"):
        evaluate(always_left, None, "CartPole-v1", key, episodes=0)
    with pytest.raises(TypeError, match="max_steps must be an int"):
        evaluate(always_left, None, "CartPole-v1", key, max_steps=True)
    # (counted in int32 on the device: 2**31 was numpy's OverflowError, naming no option)
    with pytest.raises(ValueError, match=r"max_steps must be an int >= 1 and <= 2147483647"):
        evaluate(always_left, None, "CartPole-v1", key, max_steps=2**31)
    venv = make_vector_env("CartPole-v1", num_envs=2)
    with pytest.raises(ValueError, match="num_envs=3 but the given VectorEnv has 2"):
        evaluate(always_left, None, venv, key, num_envs=3)
    with pytest.raises(TypeError, match="act_fn must be callable"):
        evaluate("policy", None, "CartPole-v1", key)
    # What act_fn returns, at trace time: (action, extra) reached CartPole as "not 1" (every
    # step pushed left, silently), as did float actions; a scalar or [N, 1] failed deep in JAX.
    bad_outputs = [
        (lambda p, o, k: (always_left(p, o, k), None), TypeError, "got tuple; return the action"),
        (lambda p, o, k: jnp.full(o.shape[:1], 0.7), TypeError, "dtype float32, but the actions"),
        (lambda p, o, k: jnp.int32(0), ValueError, r"shape \(\) for 4 environments"),
        (lambda p, o, k: jnp.zeros((o.shape[0], 1), jnp.int32), ValueError, r"got shape \(1,\)"),
    ]
    for act, error, match in bad_outputs:
        with pytest.raises(error, match=f"evaluate's act_fn.*{match}"):
            evaluate(act, None, "CartPole-v1", key, episodes=4)


def linear_push(w, obs, key):
    del key
    return (obs @ w > 0).astype(jnp.int32)


def test_a_batch_of_policies_gets_what_each_gets_alone():
    # Shows: evaluate_batch (one vmapped program) returns, row by row, what evaluate returns
    # for each policy with its own key; the policies differ, and so do their episodes.
    ws = jnp.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.2, 1.0, 0.5], [0.1, 0.0, 0.0, 1.0]])
    keys = jax.random.split(jax.random.key(4), 3)
    res = evaluate_batch(linear_push, ws, "CartPole-v1", keys, episodes=5, num_envs=2)
    assert res.returns.shape == res.lengths.shape == res.completed.shape == (3, 5)
    for i in range(3):
        alone = evaluate(linear_push, ws[i], "CartPole-v1", keys[i], episodes=5, num_envs=2)
        np.testing.assert_array_equal(res.lengths[i], alone.lengths)
        np.testing.assert_allclose(res.returns[i], alone.returns)
    assert len({tuple(np.asarray(r).tolist()) for r in res.lengths}) == 3


def test_a_batch_of_one_runs_unvmapped_and_gets_what_it_gets_alone(monkeypatch):
    # Shows: a one-seed run's evaluation (a batch of one) skips the vmapped program (its
    # own compiles faster) and returns exactly what evaluate returns for that policy.
    def vmapped(*args):
        raise AssertionError("a batch of one went through the vmapped program")

    # (`bellmax.deep.evaluate` the attribute is the function; the module by its full name)
    monkeypatch.setattr(importlib.import_module("bellmax.deep.evaluate"), "_run_batch", vmapped)
    ws = jnp.array([[0.0, 0.2, 1.0, 0.5]])
    keys = jax.random.split(jax.random.key(4), 1)
    res = evaluate_batch(linear_push, ws, "CartPole-v1", keys, episodes=5, num_envs=2)
    assert res.returns.shape == res.lengths.shape == res.completed.shape == (1, 5)
    alone = evaluate(linear_push, ws[0], "CartPole-v1", keys[0], episodes=5, num_envs=2)
    np.testing.assert_array_equal(res.lengths[0], alone.lengths)
    np.testing.assert_array_equal(res.returns[0], alone.returns)
    np.testing.assert_array_equal(res.completed[0], alone.completed)


def test_a_batch_on_a_gymnasium_env_runs_policy_after_policy():
    # Shows: host-callback envs cannot be vmapped; the batch still comes back [batch, episodes].
    keys = jax.random.split(jax.random.key(5), 2)
    res = evaluate_batch(random_discrete, jnp.zeros(2), "gymnasium:CartPole-v1", keys, episodes=3)
    assert res.returns.shape == (2, 3) and bool(jnp.all(res.completed))
    np.testing.assert_allclose(res.returns, res.lengths)


def test_bad_evaluate_batch_input_names_the_batch_sizes():
    ws = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match=r"with 2 policies as in keys; .* leading sizes are \[3\]"):
        evaluate_batch(linear_push, ws, "CartPole-v1", jax.random.split(jax.random.key(0), 2))
    with pytest.raises(ValueError, match="keys must be a one-dimensional array of PRNG keys"):
        evaluate_batch(linear_push, ws, "CartPole-v1", jnp.zeros((3, 2), jnp.uint32))
    with pytest.raises(ValueError, match="leading sizes are \\[None\\]"):
        evaluate_batch(
            linear_push, jnp.float32(0.0), "CartPole-v1", jax.random.split(jax.random.key(0), 1)
        )


def test_a_policy_functions_program_is_not_kept_for_the_life_of_the_process(monkeypatch):
    # Evaluating a fresh lambda (a notebook cell run again) compiled a program that one
    # module-level jit kept, with the lambda, until the process ended (~12 MB a call). The
    # programs are now an LRU (of 32; 2 here): past it, the function and its program are freed.
    import gc
    import weakref

    module = importlib.import_module("bellmax.deep.evaluate")
    monkeypatch.setattr(module, "_PROGRAMS_KEPT", 2)
    venv = make_vector_env("CartPole-v1", num_envs=2)

    def act(params, obs, key):
        return always_left(params, obs, key)

    first = evaluate(act, None, venv, jax.random.key(0), episodes=2)
    alive = weakref.ref(act)
    del act
    for i in range(2):  # newer policies, each a program of its own (the same one's HLO)
        res = evaluate(
            lambda p, o, k, i=i: always_left(p, o, k), None, venv, jax.random.key(0), episodes=2
        )
        np.testing.assert_array_equal(res.returns, first.returns)
    gc.collect()
    assert alive() is None
