"""Tests of DQN (bellmax.deep.dqn): learning on CartPole, the targets, seeds under vmap, errors.

Seed 0 of the default settings with a 1e5-step cap is trained twice in one compiled program
(`bellmax.train.driver`): until CartPole-v1 is solved (the learning test), and for the whole
1e5 steps (the buffer, target, metrics and acting tests); the vmap test compiles one more.
"""

from __future__ import annotations

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.types import Transition
from bellmax.deep import dqn
from bellmax.envs.vector import make_vector_env

CONFIG = dqn.Config()  # the defaults are the CartPole-v1 settings
# The same settings with a 1e5-step cap: epsilon falls over the first 16% of the cap and the
# learning rate anneals over all of it, so the cap is part of the settings.
SOLVE = dataclasses.replace(CONFIG, total_timesteps=100_000)


@pytest.fixture(scope="module")
def venv():
    return make_vector_env("CartPole-v1", num_envs=CONFIG.num_envs)


@pytest.fixture(scope="module")
def run(train_run):
    """Seed 0 trained until its greedy policy averages >= 475 over 10 episodes (checked after
    every chunk of 15 updates, ~3.8e3 steps), 1e5 steps at most."""
    return train_run(dqn, SOLVE, "CartPole-v1", 0, stop_return=475.0)


@pytest.fixture(scope="module")
def trained(train_run):
    """`(state, metrics)` after the whole 1e5 steps, unstacked (metrics as attributes)."""
    run = train_run(dqn, SOLVE, "CartPole-v1", 0, eval_episodes=0)
    state = jax.tree.map(lambda x: x[0], run.state)
    return state, types.SimpleNamespace(**{k: v[0] for k, v in run.metrics.items()})


@pytest.mark.slow
def test_learns_cartpole(run, assert_solved):
    # Shows that DQN (Double DQN target, MSE loss, annealed lr) solves bellmax CartPole-v1
    # (mean greedy return >= 475 over 10 episodes) within 1e5 env steps, verified by the
    # evaluation that stopped the run (seed 0: after 34,560 / 15,360 / 38,400 steps under
    # AVX-512 / AVX2 / SSE4.2). Its greedy policy swings between ~100 and 500 from one check
    # to the next, so the final policy of a fixed budget is no claim; and the defaults' 5e4
    # steps are too few to promise it: checked every 3.3e3 steps, seed 0 first reached 475
    # at the last check under AVX2 and not at all under SSE4.2. With 1e5, seeds 0-3 first
    # reached it after 1.5e4-5.0e4 steps under all three.
    assert_solved(run, SOLVE, 475.0)
    assert np.all(np.isfinite(run.metrics["loss"]))


def test_metrics_schedule_and_target(trained):
    state, m = trained
    # Random actions (epsilon 1) until learning_starts, no gradient steps before it.
    before = np.asarray(m.env_steps) < SOLVE.learning_starts
    assert np.all(np.asarray(m.epsilon)[before] == 1.0)
    assert not np.any(np.asarray(m.learning)[before])
    assert np.all(np.asarray(m.loss)[before] == 0.0)
    # From then on: the epsilon schedule, down to final_epsilon, and gradient steps in every
    # update, gradient_steps each.
    after = m.env_steps[~before]
    np.testing.assert_allclose(m.epsilon[~before], dqn.epsilon_at(after, SOLVE), rtol=1e-6)
    np.testing.assert_allclose(m.epsilon[-1], SOLVE.final_epsilon, rtol=1e-6)
    assert np.all(m.learning[~before])
    assert int(state.gradient_step) == int(np.sum(m.learning)) * SOLVE.gradient_steps
    assert int(state.gradient_step) == SOLVE.total_gradient_steps
    # gradient_steps is a multiple of target_update_interval, so each update ends with a copy.
    for t, p in zip(
        jax.tree.leaves(state.target_params), jax.tree.leaves(state.params), strict=True
    ):
        np.testing.assert_array_equal(t, p)
    # Episodes were counted; in the second half of the run they last > 100 steps on average
    # (a random policy: ~22). The greedy policy swings between ~100 and 500 from one chunk
    # to the next, so a short window (the last 20 updates) ranged over 105-500 across seeds
    # and instruction sets; half the run is a steadier measure.
    assert int(np.sum(m.episode_count)) > 0
    half = len(m.env_steps) // 2
    late = np.sum(m.episode_return_sum[half:]) / np.sum(m.episode_count[half:])
    print(f"\nDQN training episodes of the second half: {late:.1f}")
    assert late > 100.0


def test_buffer_stores_true_last_observation(trained):
    # Terminated transitions keep the terminal (out-of-bounds) observation, not the reset
    # one; truncated ones (500 steps) keep an in-bounds observation and are bootstrapped.
    state, m = trained
    data, size = state.buffer.data, int(state.buffer.size)
    assert size == min(SOLVE.buffer_size, int(m.env_steps[-1]))
    term = np.asarray(data.terminated_t[:size])
    trunc = np.asarray(data.truncated_t[:size])
    obs_t = np.asarray(data.obs_t[:size])
    print(f"\nDQN buffer: {size} transitions, {term.sum()} terminated, {trunc.sum()} truncated")
    assert term.any() and trunc.any()
    outside = (np.abs(obs_t[:, 0]) > 2.4) | (np.abs(obs_t[:, 2]) > 12 * 2 * np.pi / 360)
    assert np.all(outside[term])
    assert not np.any(outside[trunc & ~term])
    np.testing.assert_array_equal(np.asarray(data.discount_t)[:size], ~term)


# A short run with every mechanism on (9 learning updates, Polyak target, epsilon decay, resets):
# long runs agree too at first, but float rounding of batched and unbatched matrix products
# differs in the last bit, and 100+ updates of RL training amplify it into other actions.
SMALL = dataclasses.replace(
    CONFIG,
    total_timesteps=640,
    num_envs=2,
    train_frequency=32,
    learning_starts=128,
    batch_size=16,
    buffer_size=512,
    gradient_steps=8,
    target_update_interval=4,
    tau=0.5,
    hidden_sizes=(16,),
)


@pytest.mark.slow
def test_vmapped_seeds_equal_one_by_one():
    # Shows that jax.vmap(train) over seeds gives the same runs as the seeds one by one.
    train = dqn.make_train(SMALL, "CartPole-v1")
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    states, metrics = jax.jit(jax.vmap(train))(keys)
    one = jax.jit(train)
    for i in range(2):
        s1, m1 = one(keys[i])
        assert int(np.sum(m1.learning)) == 9 and int(np.sum(m1.episode_count)) > 10
        np.testing.assert_array_equal(metrics.episode_return_sum[i], m1.episode_return_sum)
        np.testing.assert_array_equal(metrics.episode_count[i], m1.episode_count)
        np.testing.assert_allclose(metrics.loss[i], m1.loss, rtol=1e-5, atol=1e-7)
        pairs = zip(jax.tree.leaves(states), jax.tree.leaves(s1), strict=True)
        for a, b in pairs:
            if jnp.issubdtype(a.dtype, jnp.floating):
                np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_q_learning_and_double_dqn_targets_by_hand(jit):
    # Online values pick action 1 at s' (3 > 2), the target network rates it 0.5:
    # Double DQN: 1 + 0.9 * 0.5 = 1.45. Plain DQN takes the target's max (4.0):
    # 1 + 0.9 * 4 = 4.6. A terminal step (discount 0) gives the reward alone.
    f = jax.jit(dqn.q_learning_target) if jit else dqn.q_learning_target
    q_value = jnp.array([4.0, 0.5, 1.0])
    q_select = jnp.array([2.0, 3.0, -1.0])
    np.testing.assert_allclose(f(1.0, 0.9, q_value, q_select), 1.45, rtol=1e-6)
    np.testing.assert_allclose(f(1.0, 0.9, q_value), 4.6, rtol=1e-6)
    np.testing.assert_allclose(f(1.0, 0.0, q_value, q_select), 1.0)


@pytest.mark.parametrize("double", [False, True])
def test_td_loss_bootstraps_on_truncation_not_termination(trained, venv, double):
    # td_loss on 3 transitions (plain, truncated, terminated) equals the mean squared error
    # against targets computed here from the networks' own Q-values.
    cfg = dataclasses.replace(CONFIG, double_dqn=double)
    state, _ = trained
    params = state.params
    # The target network is the online one with its two output units swapped, so the two
    # networks prefer the other action at every observation (double and plain targets differ).
    n_actions = venv.action_space.n
    target_params = jax.tree.map(lambda p: p[..., ::-1] if p.shape[-1] == n_actions else p, params)
    obs, _ = venv.reset(jax.random.key(3))
    obs, obs_t = obs[:3], obs[:3] + 0.1
    batch = Transition(
        obs_tm1=obs,
        action_tm1=jnp.array([0, 1, 0]),
        reward_t=jnp.array([1.0, 2.0, 3.0]),
        obs_t=obs_t,
        terminated_t=jnp.array([False, False, True]),
        truncated_t=jnp.array([False, True, False]),
    )
    loss, q_mean = jax.jit(dqn.td_loss, static_argnums=(3, 4))(
        params, target_params, batch, cfg, venv
    )
    q = jax.jit(dqn.q_values, static_argnums=(2, 3))
    q_tm1, q_t, q_sel = (
        np.asarray(q(p, o, cfg, venv))
        for p, o in [(params, obs), (target_params, obs_t), (params, obs_t)]
    )
    # The example separates the targets: online and target networks prefer other actions.
    assert np.all(q_sel.argmax(1) != q_t.argmax(1))
    v_t = q_t[np.arange(3), q_sel.argmax(1)] if double else q_t.max(1)
    target = np.array([1.0, 2.0, 3.0]) + cfg.gamma * np.array([1.0, 1.0, 0.0]) * v_t
    q_a = q_tm1[np.arange(3), [0, 1, 0]]
    np.testing.assert_allclose(loss, np.mean((q_a - target) ** 2), rtol=1e-5)
    np.testing.assert_allclose(q_mean, q_a.mean(), rtol=1e-5)


def test_epsilon_schedule_and_polyak_target():
    cfg = dataclasses.replace(CONFIG, total_timesteps=1000, exploration_fraction=0.5)
    # Linear from 1 to 0.04 over 500 env steps, then constant.
    for t, eps in [(0, 1.0), (250, 0.52), (500, 0.04), (900, 0.04)]:
        np.testing.assert_allclose(dqn.epsilon_at(t, cfg), eps, rtol=1e-6)
    zero = dataclasses.replace(cfg, exploration_fraction=0.0)
    np.testing.assert_allclose(dqn.epsilon_at(0, zero), 0.04, rtol=1e-6)
    # Target update: Polyak (tau 0.25) every 2nd gradient step, unchanged in between.
    poly = dataclasses.replace(cfg, tau=0.25, target_update_interval=2)
    target, params = {"w": jnp.array([0.0, 4.0])}, {"w": jnp.array([8.0, 0.0])}
    np.testing.assert_allclose(dqn.update_target(target, params, 1, poly)["w"], [0.0, 4.0])
    np.testing.assert_allclose(dqn.update_target(target, params, 2, poly)["w"], [2.0, 3.0])
    copy = dataclasses.replace(poly, tau=1.0)
    np.testing.assert_allclose(dqn.update_target(target, params, 4, copy)["w"], [8.0, 0.0])


def test_act_greedy_and_epsilon(trained, venv):
    state, _ = trained
    act = jax.jit(dqn.act, static_argnames=("config", "venv", "deterministic"))
    obs, _ = venv.reset(jax.random.key(6))
    q = dqn.q_values(state.params, obs, CONFIG, venv)
    greedy = act(state.params, obs, jax.random.key(7), config=CONFIG, venv=venv)
    np.testing.assert_array_equal(greedy, jnp.argmax(q, -1))
    assert greedy.dtype == venv.action_space.dtype
    # With epsilon 1 the actions are uniform: both actions appear among 8 x 10 draws.
    explore = dataclasses.replace(CONFIG, final_epsilon=1.0)
    acts = jnp.stack(
        [
            act(state.params, obs, k, config=explore, venv=venv, deterministic=False)
            for k in jax.random.split(jax.random.key(8), 10)
        ]
    )
    assert set(np.unique(acts)) == {0, 1}


def test_env_errors():
    # Box actions: the error names the algorithm and the supported space.
    with pytest.raises(ValueError, match="'dqn' supports Discrete action spaces only; got Box"):
        dqn.make_train(CONFIG, "Pendulum-v1")
    # A vector env with another num_envs than the config.
    with pytest.raises(ValueError, match=r"num_envs=2 but Config\.num_envs=8"):
        dqn.make_train(CONFIG, make_vector_env("CartPole-v1", num_envs=2))


def test_host_env_train_refuses_vmap():
    # Gymnasium ids step on the host: vmapping train() is refused with a clear message.
    pytest.importorskip("gymnasium")
    cfg = dataclasses.replace(CONFIG, num_envs=1, train_frequency=256)
    train = dqn.make_train(cfg, "gymnasium:CartPole-v1")
    with pytest.raises(ValueError, match="cannot be vmapped over seeds; run the seeds one after"):
        jax.vmap(train)(jax.random.split(jax.random.key(0), 2))


def test_learning_rate_and_grad_norm_metrics(trained):
    # Shows: `learning_rate` is the mean step size of an update's gradient steps as the linear
    # annealing over the run's total_gradient_steps gave them (before learning starts: the
    # first step's, the full rate), and `grad_norm` the mean gradient norm (0 without steps).
    _, m = trained
    learning = np.asarray(m.learning)
    g = SOLVE.gradient_steps
    done_before = (np.cumsum(learning) - learning) * g  # gradient steps before each update
    steps = done_before[:, None] + np.arange(g)[None, :]
    expected = (SOLVE.learning_rate * (1 - steps / SOLVE.total_gradient_steps)).mean(axis=1)
    expected = np.where(learning, expected, SOLVE.learning_rate)
    np.testing.assert_allclose(m.learning_rate, expected, rtol=1e-5, atol=1e-9)
    assert np.all(np.asarray(m.grad_norm)[~learning] == 0.0)
    assert np.all(np.isfinite(m.grad_norm)) and np.all(np.asarray(m.grad_norm)[learning] > 0)


def test_the_buffer_holds_at_most_the_runs_steps():
    # DQN allocated all of buffer_size (100,000 by default) whatever the run's length: a
    # 4,096-step run on MinAtar with 16 seeds took 4.8 GiB, and every checkpoint wrote the
    # empty slots. The slots a run never fills change no sample (as SAC's and TD3's buffers).
    cfg = dqn.Config(total_timesteps=4096)
    assert cfg.capacity == 4096
    assert dataclasses.replace(cfg, buffer_size=1000).capacity == 1000
    assert dataclasses.replace(cfg, total_timesteps=100).capacity == cfg.steps_per_update
    venv = make_vector_env("CartPole-v1", num_envs=cfg.num_envs)
    state = jax.eval_shape(lambda k: dqn.init(k, cfg, venv), jax.random.key(0))
    assert {x.shape[0] for x in jax.tree.leaves(state.buffer.data)} == {4096}
