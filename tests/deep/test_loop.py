"""The shared training loop: the scan over updates, the environment checks, host refusal."""

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep import a2c, dqn, ppo, reinforce
from bellmax.deep.loop import (
    check_traced_fields,
    is_vmapped,
    nonfinite_steps,
    scan_train,
    vector_env,
    with_hyperparameters,
)
from bellmax.envs.vector import make_vector_env

CONFIG = dataclasses.replace(ppo.Config(), total_timesteps=4 * 8 * 32)  # 4 updates


def _counting(venv):
    def init(key, config, v):
        assert v is venv
        return {"n": jnp.zeros((), jnp.int32), "key": jax.random.key_data(key)}

    def update(state, config, v):
        n = state["n"] + 1
        return {**state, "n": n}, n * 10

    return init, update


def test_scan_train_runs_num_updates_and_vmaps_over_seeds():
    venv = vector_env(CONFIG, "CartPole-v1")
    assert CONFIG.num_updates == 4
    train = scan_train(CONFIG, venv, *_counting(venv))
    assert train.venv is venv
    state, metrics = jax.jit(train)(jax.random.key(0))
    assert int(state["n"]) == 4
    np.testing.assert_array_equal(metrics, [10, 20, 30, 40])
    states, _ = jax.jit(jax.vmap(train))(jax.random.split(jax.random.key(0), 3))
    np.testing.assert_array_equal(states["n"], [4, 4, 4])
    assert not np.array_equal(states["key"][0], states["key"][1])  # one key per seed


def test_vector_env_accepts_a_vector_env_and_checks_it():
    venv = make_vector_env("CartPole-v1", num_envs=CONFIG.num_envs)
    assert vector_env(CONFIG, venv) is venv
    with pytest.raises(ValueError, match="num_envs"):
        vector_env(CONFIG, make_vector_env("CartPole-v1", num_envs=3))
    with pytest.raises(ValueError, match="learning_rate"):
        vector_env(dataclasses.replace(CONFIG, learning_rate=-1.0), "CartPole-v1")


def test_host_environments_refuse_vmap():
    venv = vector_env(CONFIG, "gymnasium:CartPole-v1")
    train = scan_train(CONFIG, venv, *_counting(venv))
    with pytest.raises(ValueError, match="cannot be vmapped"):
        jax.vmap(train)(jax.random.split(jax.random.key(0), 2))
    seen = []
    jax.vmap(lambda x: seen.append(is_vmapped(x)) or x)(jnp.zeros(2))
    assert seen == [True] and not is_vmapped(jnp.zeros(2))


# ---------------------------------------------------------------------- hyperparameters as data


def test_scan_train_puts_traced_hyperparameters_into_the_config():
    venv = vector_env(CONFIG, "CartPole-v1")
    seen = []

    def init(key, config, v):
        seen.append(config)
        return {"lr": jnp.asarray(config.learning_rate, jnp.float32)}

    def update(state, config, v):
        return state, config.learning_rate * config.gamma

    train = scan_train(CONFIG, venv, init, update)
    lrs = jnp.array([1e-3, 2e-3, 4e-3])
    _, out = jax.jit(jax.vmap(train))(
        jax.random.split(jax.random.key(0), 3), {"learning_rate": lrs}
    )
    np.testing.assert_allclose(out, np.asarray(lrs)[:, None] * CONFIG.gamma * np.ones((3, 4)))
    assert isinstance(seen[0].learning_rate, jax.core.Tracer)
    assert seen[0].num_envs == CONFIG.num_envs  # the rest stays the Python config


def test_with_hyperparameters_names_what_may_be_traced():
    assert with_hyperparameters(CONFIG, None) is CONFIG
    assert with_hyperparameters(CONFIG, {"clip_eps": 0.1}).clip_eps == 0.1  # concrete: checked
    with pytest.raises(ValueError, match="clip_eps"):
        with_hyperparameters(CONFIG, {"clip_eps": 1.5})
    with pytest.raises(ValueError, match=r"'num_envs' is not a hyperparameter.*learning_rate"):
        with_hyperparameters(CONFIG, {"num_envs": 4})
    with pytest.raises(TypeError, match="dict"):
        with_hyperparameters(CONFIG, [("learning_rate", 1e-3)])
    # an array of values is vmapped over, not passed whole: it failed deep in the update
    # ("mul got incompatible shapes for broadcasting: (2,), (64,)")
    with pytest.raises(ValueError, match=r"'learning_rate' must be one value per call.*jax\.vmap"):
        with_hyperparameters(CONFIG, {"learning_rate": jnp.array([1e-3, 1e-2])})
    with pytest.raises(ValueError, match=r"got shape \(1,\)"):
        jax.eval_shape(lambda lr: with_hyperparameters(CONFIG, {"learning_rate": lr}).gamma,
                       jnp.ones(1))  # fmt: skip
    traced = jax.jit(lambda lr: with_hyperparameters(CONFIG, {"learning_rate": lr}).learning_rate)
    assert float(traced(jnp.float32(3e-4))) == pytest.approx(3e-4)


def test_configs_skip_value_checks_of_arrays_only():
    # an array is data (checked when concrete); a field that shapes the program must not be one
    cfg = ppo.Config(learning_rate=jnp.float32(-1.0), gamma=jnp.array(0.9))
    assert check_traced_fields(cfg, "PPO Config")
    assert not check_traced_fields(ppo.Config(), "PPO Config")
    with pytest.raises(TypeError, match=r"PPO Config\.num_envs holds a JAX array.*clip_eps"):
        ppo.Config(num_envs=jnp.array(4))
    with pytest.raises(ValueError, match="gamma"):  # a concrete field is still checked
        ppo.Config(learning_rate=jnp.float32(1e-3), gamma=2.0)
    for module in (a2c, reinforce, dqn):
        for name in module.Config.HYPERPARAMETERS:
            module.Config(**{name: jnp.float32(0.5)})  # each may be an array


def test_mean_episode_return_and_the_train_functions_documentation():
    # The README's `jax.jit(jax.vmap(train))(keys)` hands back per-update sums and counts;
    # their mean is a property (NaN where no episode ended), and `train` says how to use
    # what it returns (its __doc__ was None).
    from bellmax.deep.loop import EpisodeMetrics

    m = EpisodeMetrics(
        env_steps=jnp.array([[8, 16, 24]]),
        episode_return_sum=jnp.array([[30.0, 0.0, 45.0]]),
        episode_count=jnp.array([[2, 0, 3]]),
        nonfinite_steps=jnp.array([[0, 0, 0]]),
    )
    np.testing.assert_array_equal(m.mean_episode_return, [[15.0, np.nan, 15.0]])
    train = ppo.make_train(CONFIG, "CartPole-v1")  # (built, not run)
    assert "mean_episode_return" in train.__doc__ and "evaluate(" in train.__doc__


def test_one_mean_episode_return_for_jax_and_numpy_alike():
    # The mean return of the episodes that ended was written out seven times (EpisodeMetrics,
    # the driver's summary, metrics.csv, learning curves and progress, the sweep's chunk
    # returns, the trackers' scalars); one function now serves them: NaN where none ended,
    # NumPy in and out on the host (no JAX program), JAX under jit.
    from bellmax.deep.loop import mean_episode_return
    from bellmax.train.sweep import _chunk_returns
    from bellmax.train.tracking import chunk_scalars

    total, count = np.array([[30.0, 0.0, 45.0], [1.0, 2.0, 0.0]]), np.array([[2, 0, 3], [1, 1, 0]])
    host = mean_episode_return(total, count)
    assert type(host) is np.ndarray
    np.testing.assert_array_equal(host, [[15.0, np.nan, 15.0], [1.0, 2.0, np.nan]])
    jitted = jax.jit(mean_episode_return)(jnp.asarray(total), jnp.asarray(count))
    np.testing.assert_array_equal(jitted, host.astype(np.float32))
    assert float(mean_episode_return(total.sum(), count.sum())) == 78.0 / 7
    assert np.isnan(mean_episode_return(0.0, 0))
    m = {"episode_return_sum": total, "episode_count": count}
    assert chunk_scalars(m)["episode_return"] == 78.0 / 7
    chunk = types.SimpleNamespace(**m)  # [trials, updates]: each trial's chunk
    np.testing.assert_array_equal(_chunk_returns(chunk), [75.0 / 5, 3.0 / 2])


@pytest.mark.parametrize("module", ["ppo", "a2c", "reinforce", "dqn", "sac"])
def test_single_agent_learners_refuse_a_two_player_game(module):
    # TicTacToe-v0's reward is the mover's and its next observation the opponent's: every
    # learner but TD3 (continuous actions only) trained on it as one agent, without a word
    import importlib

    algo = importlib.import_module(f"bellmax.deep.{module}")
    config = algo.Config()
    venv = make_vector_env("TicTacToe-v0", num_envs=config.num_envs)
    assert venv.num_players == 2
    with pytest.raises(
        ValueError, match=r"TicTacToe-v0 is a 2-player game of turns.*bellmax\.games"
    ):
        config.validate(venv)
    assert make_vector_env("CartPole-v1").num_players == 1


def test_check_hyperparameters_checks_each_value_before_it_is_traced():
    # under jit(vmap(train)) the Config sees tracers only: gamma=2.0 trained (loss ~4e12)
    from bellmax.deep.loop import check_hyperparameters

    check_hyperparameters(CONFIG, {"learning_rate": jnp.array([1e-3, 3e-3]), "gamma": [0.9, 0.99]})
    with pytest.raises(
        ValueError, match=r"gamma must be .* got 2\.0 \(entry 1 of an array of shape"
    ):
        check_hyperparameters(CONFIG, {"gamma": np.array([0.9, 2.0])})
    with pytest.raises(ValueError, match=r"learning_rate must be a number > 0, got -1\.0\.$"):
        check_hyperparameters(CONFIG, {"learning_rate": -1.0})
    with pytest.raises(ValueError, match="'num_envs' is not a hyperparameter"):
        check_hyperparameters(CONFIG, {"num_envs": [4]})
    with pytest.raises(TypeError, match="dict"):
        check_hyperparameters(CONFIG, [("gamma", 0.9)])


def test_nonfinite_steps_counts_the_steps_with_a_bad_reward_or_observation():
    # [3 steps, 2 envs]: a NaN reward at (0, 1); a NaN observation at (1, 0); an infinite
    # reward and a NaN observation at (2, 0): three steps, however many values are bad.
    reward = jnp.array([[0.0, jnp.nan], [1.0, 2.0], [jnp.inf, 0.0]])
    obs = jnp.zeros((3, 2, 4)).at[1, 0, 3].set(jnp.nan).at[2, 0, 1].set(jnp.nan)
    assert int(nonfinite_steps(reward, obs)) == 3
    # a pytree of observations; integer leaves are always finite
    assert int(nonfinite_steps(reward, {"x": obs, "n": jnp.zeros((3, 2), jnp.int32)})) == 3
    assert int(nonfinite_steps(reward[1], obs[0])) == 0
    assert int(nonfinite_steps(reward[1], obs[1])) == 1
