"""A2C: learning on CartPole, seed vmap (Box actions, shared torso, SGD), bad input."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep import a2c
from bellmax.envs.vector import make_vector_env

# The defaults: 16 envs x 16 steps, n-step returns, gamma 0.98, Adam 1e-3 annealed to 0,
# 1.5e5 steps.
CARTPOLE = a2c.Config()
SEEDS = (0, 1)
# A tiny run with the other options: Box actions (Pendulum), SGD, a shared torso, an
# entropy bonus, GAE (lambda = 0.9), no annealing.
TINY = a2c.Config(
    total_timesteps=3 * 32,
    num_envs=4,
    num_steps=8,
    optimizer="sgd",
    learning_rate=1e-2,
    anneal_lr=False,
    gae_lambda=0.9,
    shared_torso=True,
    ent_coef=0.01,
    hidden_sizes=(16,),
)


@pytest.fixture(scope="module")
def cartpole(train_seeds):
    """Two seeds trained in one vmapped program, each evaluated on 16 episodes."""
    return train_seeds(a2c, CARTPOLE, "CartPole-v1", SEEDS, label="A2C")


@pytest.mark.slow
def test_a2c_learns_cartpole_well_beyond_random(cartpole):
    # Shows: a random policy lasts ~22 steps; after 1.5e5 steps every seed's deterministic policy
    # averages >= 200 over 16 evaluation episodes.
    assert min(cartpole.eval_returns) >= 200.0


@pytest.mark.slow
def test_a2c_metrics_track_the_run(cartpole):
    # Shows: metrics count env steps, losses stay finite, training returns rise from random.
    m = cartpole.metrics
    n = CARTPOLE.num_updates
    steps = np.arange(1, n + 1) * CARTPOLE.steps_per_update
    np.testing.assert_array_equal(m.env_steps, np.broadcast_to(steps, (len(SEEDS), n)))
    assert bool(jnp.all(jnp.isfinite(m.loss)))
    mean_ret = m.episode_return_sum / jnp.maximum(m.episode_count, 1)
    early, late = jnp.mean(mean_ret[:, :20], axis=1), jnp.mean(mean_ret[:, -40:], axis=1)
    assert bool(jnp.all(early < 60)) and bool(jnp.all(late > 150))
    assert bool(jnp.all(jnp.abs(m.entropy[:, 0] - np.log(2)) < 1e-3))  # starts near uniform


def test_vmapped_seeds_equal_one_by_one_with_box_actions():
    # Shows: jax.vmap(train) over keys gives the same parameters and metrics as each key alone,
    # with a Gaussian policy on Pendulum's Box actions, a shared torso and SGD.
    train = a2c.make_train(TINY, "Pendulum-v1")
    keys = jax.random.split(jax.random.key(7), 2)
    states, metrics = jax.jit(jax.vmap(train))(keys)
    one = jax.jit(train)
    for i in range(2):
        s, m = one(keys[i])
        for a, b in zip(jax.tree.leaves(s.params), jax.tree.leaves(states.params), strict=True):
            np.testing.assert_allclose(a, b[i], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(m.loss, metrics.loss[i], rtol=1e-5, atol=1e-6)
    assert bool(jnp.all(jnp.isfinite(metrics.loss)))
    assert "log_std" in states.params["params"]  # Gaussian policy
    assert "torso" in states.params["params"]  # shared torso
    p = jax.tree.leaves(states.params)
    assert any(float(jnp.max(jnp.abs(x[0] - x[1]))) > 0 for x in p)  # seeds differ
    # Acting: actions come back in the Box, deterministic or sampled with a wide std.
    venv = train.venv
    params = jax.tree.map(lambda x: x[0], states.params)
    wide = {"params": {**params["params"], "log_std": jnp.full((1,), 2.0)}}
    obs = jnp.zeros((200, 3)).at[:, 0].set(-1.0)
    a = a2c.act(wide, obs, jax.random.key(1), TINY, venv, deterministic=False)
    assert a.shape == (200, 1) and float(a.max()) == 2.0 and float(a.min()) == -2.0


def test_host_env_cannot_be_vmapped():
    # Shows: a Gymnasium id steps on the host; vmapping its train says so instead of failing
    # deep inside io_callback.
    train = a2c.make_train(TINY, "gymnasium:CartPole-v1")
    with pytest.raises(ValueError, match="cannot be vmapped"):
        jax.vmap(train)(jax.random.split(jax.random.key(0), 2))


def test_unsupported_action_space_and_other_bad_input(multidiscrete_env):
    with pytest.raises(TypeError, match="A2C supports Discrete and Box action spaces; got Multi"):
        a2c.make_train(CARTPOLE, multidiscrete_env)
    venv = make_vector_env("CartPole-v1", num_envs=4)
    with pytest.raises(ValueError, match="num_envs=16 but the vector env has 4"):
        a2c.make_train(CARTPOLE, venv)
    with pytest.raises(TypeError, match=r"config must be an a2c\.Config"):
        a2c.make_train({"learning_rate": 1e-3}, "CartPole-v1")


def test_config_properties():
    assert CARTPOLE.steps_per_update == CARTPOLE.num_envs * CARTPOLE.num_steps == 256
    assert CARTPOLE.num_updates == 150_000 // 256
    assert TINY.num_updates == 3
