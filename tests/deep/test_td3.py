"""Tests of TD3 (bellmax.deep.td3): learning Pendulum, the clipped double-Q target with target
policy smoothing, delayed policy updates, acting, errors.

The learning test trains seeds 0 and 1 together (`driver.train` vmaps them) until both
deterministic policies average >= -200 over 10 Pendulum-v1 episodes, 2e4 env steps at most.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.types import Transition
from bellmax.deep import off_policy, td3
from bellmax.envs.vector import make_vector_env
from bellmax.train import driver

CONFIG = td3.Config()  # the defaults are the Pendulum-v1 settings
SOLVE = dataclasses.replace(CONFIG, total_timesteps=20_000)
TARGET = -200.0
TINY = dataclasses.replace(
    CONFIG, total_timesteps=600, learning_starts=64, batch_size=16, hidden_sizes=(16, 16)
)


@pytest.fixture(scope="module")
def venv():
    return make_vector_env("Pendulum-v1", num_envs=1)


@pytest.fixture(scope="module")
def tiny(venv):
    """A fresh TINY training state (one compile shared by the tests below)."""
    return jax.jit(td3.init, static_argnums=(1, 2))(jax.random.key(1), TINY, venv)


@pytest.fixture(scope="module")
def run():
    """Seeds 0 and 1 in one vmapped program, until both reach TARGET (checked every 1000
    env steps), 2e4 steps at most."""
    res = driver.train(
        td3, SOLVE, "Pendulum-v1", seeds=(0, 1), stop_return=TARGET, eval_episodes=10
    )
    print(
        f"\nTD3 Pendulum-v1 seeds (0, 1): solved (>= {TARGET}) at {res.solved_at_steps} of "
        f"{SOLVE.total_timesteps} steps, final eval {res.eval_returns.mean(1).round(1)}; "
        f"compile {res.compile_seconds:.1f}s, train {res.seconds:.1f}s, "
        f"eval {res.eval_seconds:.1f}s"
    )
    return res


def test_learns_pendulum_two_seeds_vmapped(run):
    # Shows that TD3 with the default settings solves Pendulum-v1 (mean deterministic
    # return >= -200 over 10 episodes) within 2e4 env steps for seeds 0 and 1 trained in one
    # vmapped program, each verified by an evaluation during training (every 1,000 steps).
    # Seeds 0 / 1 first reached it after 8,000 / 7,000 steps under AVX-512, AVX2 and SSE4.2.
    at = run.solved_at_steps
    assert all(s is not None for s in at), f"not solved within {SOLVE.total_timesteps}: {at}"
    assert max(at) == run.env_steps <= SOLVE.total_timesteps
    last = int(np.argmax(at))  # the seed that stopped the run: its final evaluation repeats it
    assert float(np.mean(run.eval_returns[last])) >= TARGET
    assert np.all(np.isfinite(run.metrics["loss"]))
    m = run.metrics
    before = m["env_steps"][0] < SOLVE.learning_starts
    assert not np.any(m["learning"][:, before]) and np.all(m["learning"][:, ~before])
    assert np.all(m["loss"][:, before] == 0.0)
    # One gradient step per update, the actor in every second one.
    np.testing.assert_allclose(m["actor_updates"][:, ~before].mean(), 0.5, atol=1e-3)
    # The step size of every gradient step; gradient norms once learning.
    assert np.all(m["learning_rate"] == np.float32(CONFIG.learning_rate))
    assert np.all(m["grad_norm"][:, before] == 0) and np.all(m["grad_norm"][:, ~before] > 0)
    assert np.all(np.asarray(run.state.gradient_step) == int(np.sum(~before)))


@pytest.mark.parametrize("jit", [False, True])
def test_smoothed_target_action_and_clipped_double_q_by_hand(jit):
    f = jax.jit if jit else (lambda g: g)
    # Noise [0.3, -0.8, 0.1] clipped to +-0.5 -> [0.3, -0.5, 0.1]; then the action to [-1, 1].
    a = f(td3.smoothed_target_action)(jnp.array([0.9, -0.2, 0.0]), jnp.array([0.3, -0.8, 0.1]), 0.5)
    np.testing.assert_allclose(a, [1.0, -0.7, 0.1], rtol=1e-6)
    # min(q1, q2) = [2, -1]; the second step terminated: y = [1 + 0.99 * 2, 2].
    y = f(td3.clipped_double_q_target)(
        jnp.array([1.0, 2.0]), jnp.array([0.99, 0.0]), jnp.array([3.0, -1.0]), jnp.array([2.0, 5.0])
    )
    np.testing.assert_allclose(y, [2.98, 2.0], rtol=1e-6)


def _perturbed(params, key, scale):
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, noisy)


def _batch():
    obs, _ = make_vector_env("Pendulum-v1", num_envs=8).reset(jax.random.key(2))
    return Transition(
        obs_tm1=obs,
        action_tm1=jnp.linspace(-0.9, 0.9, 8)[:, None],
        reward_t=-jnp.arange(1.0, 9.0),
        obs_t=obs[::-1],
        terminated_t=jnp.arange(8) == 2,
        truncated_t=jnp.arange(8) == 1,
    )


def test_critic_step_uses_the_min_of_the_target_qs_at_smoothed_target_actions(venv, tiny):
    # critic_step's loss equals the one computed here: the *target* actor's action plus
    # noise (std 1 here, so that the clip at 0.5 acts) clipped, valued by the *target*
    # critics (perturbed copies of the online ones, so that mixing them up shows), the
    # smaller of the two (each is the smaller somewhere in the batch).
    cfg = dataclasses.replace(TINY, target_policy_noise=1.0)
    learner = tiny.learner
    k_perturb, key = jax.random.split(jax.random.key(3))
    k1, k2 = jax.random.split(k_perturb)
    batch = _batch()
    actor = td3.DeterministicActor(1, cfg.hidden_sizes, cfg.activation)
    critic = off_policy.TwinQ(cfg.hidden_sizes, cfg.activation)
    target_actor = _perturbed(learner.actor, k2, 1.0)
    mu_t = np.asarray(actor.apply(target_actor, batch.obs_t))
    noise = np.asarray(jax.random.normal(key, mu_t.shape))
    assert np.any(np.abs(noise) > 0.5)
    a_t = np.clip(mu_t + np.clip(noise, -0.5, 0.5), -1.0, 1.0)
    # Target Q_1: the online one perturbed; target Q_2 = 2 c - Q_1 (its output layer negated,
    # c the median of Q_1 on the batch), so that each is the smaller one on half the batch.
    q1_params = _perturbed(learner.critic, k1, 1.0)["params"]["q1"]
    q1_t = np.asarray(
        critic.apply({"params": {"q1": q1_params, "q2": q1_params}}, batch.obs_t, a_t)[0]
    )
    out = max(q1_params)  # the output layer, "Dense_2"
    layer = jax.tree.map(lambda p: -p, q1_params[out])
    layer = {**layer, "bias": layer["bias"] + 2.0 * np.median(q1_t)}
    learner = learner.replace(
        target_critic={"params": {"q1": q1_params, "q2": {**q1_params, out: layer}}},
        target_actor=target_actor,
    )
    new, aux = jax.jit(td3.critic_step, static_argnums=(3, 4))(learner, batch, key, cfg, venv)
    q1_t, q2_t = (np.asarray(q) for q in critic.apply(learner.target_critic, batch.obs_t, a_t))
    assert np.any(q1_t < q2_t) and np.any(q2_t < q1_t)
    y = -np.arange(1.0, 9.0) + 0.99 * (np.arange(8) != 2) * np.minimum(q1_t, q2_t)
    q1, q2 = (np.asarray(q) for q in critic.apply(learner.critic, batch.obs_tm1, batch.action_tm1))
    np.testing.assert_allclose(
        aux["critic_loss"], 0.5 * (np.mean((q1 - y) ** 2) + np.mean((q2 - y) ** 2)), rtol=1e-5
    )
    # Only the critic and its optimiser changed.
    for name in ("actor", "target_actor", "target_critic", "actor_opt"):
        for a, b in zip(
            jax.tree.leaves(getattr(new, name)),
            jax.tree.leaves(getattr(learner, name)),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("delay", [2, 3])
def test_actor_and_targets_update_only_every_policy_delay_steps(venv, tiny, delay):
    cfg = dataclasses.replace(TINY, policy_delay=delay, tau=0.1)
    batch = _batch()
    step_fn = jax.jit(td3.gradient_step, static_argnums=(4, 5))
    critic_step = jax.jit(td3.critic_step, static_argnums=(3, 4))
    learner = tiny.learner
    changed = []
    for step in range(1, 7):
        new, aux = step_fn(learner, batch, jnp.int32(step), jax.random.key(step), cfg, venv)
        moved = not all(
            np.array_equal(a, b)
            for a, b in zip(jax.tree.leaves(new.actor), jax.tree.leaves(learner.actor), strict=True)
        )
        changed.append(moved)
        assert float(aux["actor_updates"]) == float(moved)
        # grad_norm: the critic's gradient norm, with the actor's on the actor's steps.
        _, c_aux = critic_step(learner, batch, jax.random.key(step), cfg, venv)
        c_norm = float(c_aux["critic_grad_norm"])
        if moved:  # the actor's norm is small next to the critic's, but adds
            assert float(aux["grad_norm"]) > c_norm
        else:
            np.testing.assert_allclose(aux["grad_norm"], c_norm, rtol=1e-5)
        # The critic learns at every step.
        assert not np.array_equal(
            jax.tree.leaves(new.critic)[0], jax.tree.leaves(learner.critic)[0]
        )
        for online, target in (("actor", "target_actor"), ("critic", "target_critic")):
            for t_new, t_old, p in zip(
                jax.tree.leaves(getattr(new, target)),
                jax.tree.leaves(getattr(learner, target)),
                jax.tree.leaves(getattr(new, online)),
                strict=True,
            ):
                # Polyak with tau 0.1 on the actor's steps, unchanged in between.
                expected = 0.1 * np.asarray(p) + 0.9 * np.asarray(t_old) if moved else t_old
                np.testing.assert_allclose(t_new, expected, rtol=1e-5, atol=1e-6)
        learner = new
    assert changed == [s % delay == 0 for s in range(1, 7)]


def test_act_is_in_the_box_and_explores_around_the_policy(venv, tiny):
    params = td3.policy_params(tiny)
    obs, _ = make_vector_env("Pendulum-v1", num_envs=5).reset(jax.random.key(1))
    greedy = td3.act(params, obs, jax.random.key(2), TINY, venv)
    assert greedy.shape == (5, 1) and greedy.dtype == jnp.float32
    mu = td3.DeterministicActor(1, TINY.hidden_sizes, TINY.activation).apply(params, obs)
    np.testing.assert_allclose(greedy, 2.0 * np.asarray(mu), rtol=1e-5, atol=1e-6)
    noisy = td3.act(
        params, jnp.repeat(obs[:1], 2000, 0), jax.random.key(3), TINY, venv, deterministic=False
    )
    assert np.all(np.abs(np.asarray(noisy)) <= 2.0)
    # Noise of std 0.1 in [-1, 1] units is 0.2 in torque units.
    np.testing.assert_allclose(np.std(noisy), 0.2, rtol=0.1)


CONFIG_CASES = [
    ({"policy_delay": 0}, ValueError, "policy_delay must be an int >= 1, got 0"),
    ({"policy_delay": 2.0}, TypeError, "policy_delay must be an int"),
    ({"target_policy_noise": -0.1}, ValueError, "target_policy_noise must be a number >= 0"),
    ({"target_noise_clip": float("inf")}, ValueError, "target_noise_clip must be a finite"),
    ({"exploration_noise": "0.1"}, TypeError, "exploration_noise must be a number, got str"),
    ({"tau": 0.0}, ValueError, "tau must be a number > 0 and <= 1"),
    ({"batch_size": 512, "buffer_size": 256}, ValueError, "batch_size=512 is larger than buffer"),
    ({"learning_starts": 10}, ValueError, "learning_starts=10 is smaller than batch_size=256"),
]


@pytest.mark.parametrize(("changes", "error", "match"), CONFIG_CASES)
def test_config_checks_its_fields_on_construction(changes, error, match):
    with pytest.raises(error, match=rf"^TD3 Config\.{match}"):
        dataclasses.replace(CONFIG, **changes)


def test_validate_refuses_runs_that_cannot_work(multidiscrete_env):
    with pytest.raises(ValueError, match=r"TD3 Config\.learning_starts=1000 is at or beyond"):
        td3.make_train(dataclasses.replace(CONFIG, total_timesteps=1000), "Pendulum-v1")
    with pytest.raises(ValueError, match=r"TD3 Config\.total_timesteps=1 is less than one update"):
        dataclasses.replace(CONFIG, total_timesteps=1, train_frequency=2).validate()
    for env in ("CartPole-v1", multidiscrete_env):
        with pytest.raises(
            ValueError, match=r"'TD3' supports continuous Box action spaces .*DQN, PPO or SAC"
        ):
            td3.make_train(CONFIG, env)
    with pytest.raises(TypeError, match=r"config must be a td3\.Config"):
        td3.make_train(object(), "Pendulum-v1")
