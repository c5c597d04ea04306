"""REINFORCE with a baseline: learning on CartPole, Monte-Carlo targets by hand, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep import reinforce
from bellmax.deep.rollout import Rollout

# The defaults: 8 envs x 256 steps, gamma 0.99, Adam 6e-3 annealed to 0, gradient norm clipped
# at 5, returns cut by the rollout end completed by the baseline, 1e5 steps.
CARTPOLE = reinforce.Config()
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def cartpole(train_run):
    """Each seed trained until its deterministic policy averages >= 150 over 16 evaluation
    episodes (checked every 2 updates, 4096 steps), 1e5 steps at most."""
    return [
        train_run(reinforce, CARTPOLE, "CartPole-v1", s, stop_return=150.0, eval_episodes=16)
        for s in SEEDS
    ]


@pytest.fixture(scope="module")
def cartpole_full(train_run):
    """Each seed trained for the whole 1e5 steps (the same compiled program); the metrics
    stacked `[seeds, updates]`."""
    runs = [train_run(reinforce, CARTPOLE, "CartPole-v1", s, eval_episodes=0) for s in SEEDS]
    return {k: np.concatenate([r.metrics[k] for r in runs]) for k in runs[0].metrics}


@pytest.mark.slow
def test_reinforce_learns_cartpole_well_beyond_random(cartpole, assert_solved):
    # Shows: a random policy lasts ~22 steps; within 1e5 steps each seed's deterministic
    # policy averages >= 150 over 16 evaluation episodes (seeds 0 / 1: after 40,960 / 16,384
    # steps under AVX-512 and AVX2, 28,672 / 20,480 under SSE4.2).
    for run in cartpole:
        assert_solved(run, CARTPOLE, 150.0)


@pytest.mark.slow
def test_reinforce_metrics_track_the_run(cartpole_full):
    # Shows: metrics count env steps, losses stay finite, training returns rise from random:
    # the first 3 updates average < 40 (25-27), the last 5 (of 48) more than twice that
    # (209-437 under AVX-512, AVX2 and SSE4.2).
    m = cartpole_full
    n = CARTPOLE.num_updates
    steps = np.arange(1, n + 1) * CARTPOLE.steps_per_update
    np.testing.assert_array_equal(m["env_steps"], np.broadcast_to(steps, (len(SEEDS), n)))
    assert np.all(np.isfinite(m["loss"]))
    mean_ret = m["episode_return_sum"] / np.maximum(m["episode_count"], 1)
    early, late = mean_ret[:, :3].mean(1), mean_ret[:, -5:].mean(1)
    print(f"\nREINFORCE training returns: first 3 updates {early.round(1)}, last 5 {late.round(1)}")
    assert np.all(early < 40) and np.all(late > 2 * early)
    assert np.all(np.abs(m["entropy"][:, 0] - np.log(2)) < 1e-3)  # starts near uniform


def _rollout():
    # Two environments, five steps, gamma 0.5. Env 0 terminates at t=1 and is truncated at
    # t=3; env 1 never ends inside the rollout.
    f, t = False, True
    term = jnp.array([[f, f], [t, f], [f, f], [f, f], [f, f]])
    trunc = jnp.array([[f, f], [f, f], [f, f], [t, f], [f, f]])
    reward = jnp.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 2.0]])
    next_values = jnp.array([[10.0, 4.0], [20.0, 4.0], [30.0, 4.0], [40.0, 4.0], [50.0, 4.0]])
    value = jnp.ones((5, 2))
    zeros = jnp.zeros((5, 2))
    ro = Rollout(
        obs=zeros,
        action=zeros,
        log_prob=zeros,
        value=value,
        reward=reward,
        terminated=term,
        truncated=trunc,
        final_obs=zeros,
        episode_return=zeros,
    )
    return ro, next_values


@pytest.mark.parametrize("jit", [False, True])
def test_monte_carlo_targets_by_hand(jit):
    # Shows: returns restart at every episode end; a termination bootstraps nothing, a
    # truncation and the rollout's end bootstrap from the baseline (G = r + gamma b(s')), and
    # without bootstrap_cut the steps after each env's last episode end get weight 0.
    ro, nv = _rollout()
    fn = reinforce.monte_carlo_targets
    if jit:
        fn = jax.jit(fn, static_argnames=("gamma", "bootstrap_cut"))
    adv, g, w = fn(ro, nv, gamma=0.5, bootstrap_cut=True)
    env0 = [1 + 0.5 * 1, 1, 1 + 0.5 * (1 + 0.5 * 40), 1 + 0.5 * 40, 1 + 0.5 * 50]
    env1 = [0.25, 0.5, 1.0, 2.0, 2 + 0.5 * 4]
    np.testing.assert_allclose(g, np.stack([env0, env1], axis=1), rtol=1e-6)
    np.testing.assert_allclose(adv, g - 1.0, rtol=1e-6)
    np.testing.assert_array_equal(w, np.ones((5, 2)))
    _, g2, w2 = fn(ro, nv, gamma=0.5, bootstrap_cut=False)
    np.testing.assert_allclose(g2, g)  # same returns, fewer of them count
    np.testing.assert_array_equal(w2, [[1, 0], [1, 0], [1, 0], [1, 0], [0, 0]])


def test_cut_mask_marks_steps_whose_episode_ends_in_the_rollout():
    done = jnp.array([[0, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 1]], bool)
    mask = reinforce.cut_mask(done, jnp.zeros_like(done))
    np.testing.assert_array_equal(mask, [[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(reinforce.cut_mask(jnp.zeros_like(done), done), mask)


def test_unsupported_action_space_and_wrong_config_type(multidiscrete_env):
    with pytest.raises(TypeError, match="REINFORCE supports Discrete and Box action spaces"):
        reinforce.make_train(CARTPOLE, multidiscrete_env)
    with pytest.raises(TypeError, match=r"config must be a reinforce\.Config"):
        reinforce.make_train(reinforce.Config.__dict__, "CartPole-v1")


def test_config_properties():
    assert CARTPOLE.steps_per_update == CARTPOLE.num_envs * CARTPOLE.num_steps == 2048
    assert CARTPOLE.num_updates == 100_000 // 2048


def test_learning_rate_and_grad_norm_metrics():
    # Shows: each update's one gradient step takes the annealed step size lr (1 - i / n) over
    # the run's n updates, and its gradient's norm before clipping is recorded (finite, > 0).
    config = reinforce.Config(total_timesteps=3 * 4 * 32, num_envs=4, num_steps=32)
    _, m = jax.jit(reinforce.make_train(config, "CartPole-v1"))(jax.random.key(0))
    np.testing.assert_allclose(m.learning_rate, 6e-3 * (1 - np.arange(3) / 3), rtol=1e-6)
    assert np.all(np.isfinite(m.grad_norm)) and np.all(np.asarray(m.grad_norm) > 0)
