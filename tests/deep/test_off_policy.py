"""`bellmax.deep.off_policy`: the pieces SAC and TD3 share, on hand-computed values (the loop
itself is exercised by tests/deep/test_sac.py and test_td3.py, which learn through it)."""

from __future__ import annotations

import dataclasses

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep import off_policy, sac, td3
from bellmax.envs import spaces

BOX = spaces.Box(np.array([-1.0, 0.0]), np.array([3.0, 0.5]), (2,), dtype=np.float32)


@pytest.mark.parametrize("jit", [False, True])
def test_to_env_action_rescales_and_clips_into_the_box(jit):
    f = jax.jit(off_policy.to_env_action, static_argnums=1) if jit else off_policy.to_env_action
    a = jnp.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0], [0.5, -0.5], [7.0, -7.0]])
    got = f(a, BOX)
    want = [[-1.0, 0.0], [1.0, 0.25], [3.0, 0.5], [2.0, 0.125], [3.0, 0.0]]
    assert got.dtype == jnp.float32 and got.shape == (5, 2)
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-7)
    low, high = off_policy.action_bounds(BOX)
    assert low.dtype == high.dtype == np.float32
    np.testing.assert_array_equal(low, [-1.0, 0.0])
    np.testing.assert_array_equal(high, [3.0, 0.5])
    # A Box of shape (2, 1): flat [..., d] actions in, the Box's shape out.
    box = spaces.Box(-2.0, 2.0, (2, 1), dtype=np.float32)
    assert f(jnp.zeros((4, 2)), box).shape == (4, 2, 1)


def test_check_continuous_actions_counts_dimensions_and_names_what_is_wrong():
    assert off_policy.check_continuous_actions(BOX, "TD3") == 2
    assert off_policy.check_continuous_actions(spaces.Box(-1.0, 1.0, (2, 3)), "SAC") == 6
    with pytest.raises(ValueError, match=r"'TD3' rescales .* must be finite; got low=\[-inf\]"):
        off_policy.check_continuous_actions(spaces.Box(-np.inf, 1.0, (1,)), "TD3")
    with pytest.raises(ValueError, match=r"'SAC' needs high > low .* high=\[1.0, 0.0\]"):
        off_policy.check_continuous_actions(spaces.Box(0.0, np.array([1.0, 0.0]), (2,)), "SAC")
    with pytest.raises(ValueError, match=r"only \(what else\); got Discrete\(3\)"):
        off_policy.check_continuous_actions(spaces.Discrete(3), "SAC", note="what else")
    with pytest.raises(ValueError, match=r"'TD3' supports .* only; got Discrete\(3\)"):
        off_policy.check_continuous_actions(spaces.Discrete(3), "TD3")


def test_run_lengths_of_the_shared_config():
    cfg = td3.Config(
        total_timesteps=1000,
        num_envs=3,
        train_frequency=2,
        buffer_size=500,
        batch_size=32,
        learning_starts=64,
    )
    assert isinstance(cfg, off_policy.OffPolicyRun) and cfg.owner == "TD3 Config"
    assert (cfg.steps_per_update, cfg.num_updates, cfg.run_steps) == (6, 166, 996)
    assert cfg.capacity == 500  # the buffer is smaller than the run
    assert dataclasses.replace(cfg, buffer_size=10**6).capacity == 996  # the run is
    assert sac.Config().owner == "SAC Config"


@flax.struct.dataclass
class _Learner:
    critic: dict
    critic_opt: tuple
    other: jax.Array


def test_fit_critic_takes_one_step_on_both_critics_and_nothing_else():
    cfg = sac.Config(hidden_sizes=(8,), learning_rate=1e-2)
    critic = off_policy.twin_critic(cfg)
    assert isinstance(critic, off_policy.TwinQ) and critic.hidden_sizes == (8,)
    x = jax.random.normal(jax.random.key(0), (16, 3))
    a = jax.random.uniform(jax.random.key(1), (16, 2), minval=-1.0)
    target = jax.random.normal(jax.random.key(2), (16,))
    params = critic.init(jax.random.key(3), x, a)
    learner = _Learner(params, off_policy.optimizer(cfg).init(params), jnp.arange(3.0))
    new, aux = jax.jit(off_policy.fit_critic, static_argnums=4)(learner, x, a, target, cfg)
    q1, q2 = critic.apply(params, x, a)
    np.testing.assert_allclose(aux["critic_loss"], off_policy.critic_loss(q1, q2, target), 1e-6)
    np.testing.assert_allclose(aux["q_mean"], jnp.mean(q1), rtol=1e-6)
    # The gradients' global norm before clipping: sqrt of the sum of every squared entry.
    grads = jax.grad(lambda p: off_policy.critic_loss(*critic.apply(p, x, a), target))(params)
    sq = sum(np.sum(np.asarray(g, np.float64) ** 2) for g in jax.tree.leaves(grads))
    np.testing.assert_allclose(aux["critic_grad_norm"], np.sqrt(sq), rtol=1e-5)
    np.testing.assert_allclose(
        off_policy.critic_loss(q1, q2, target),
        0.5 * (jnp.mean((q1 - target) ** 2) + jnp.mean((q2 - target) ** 2)),
        rtol=1e-6,
    )
    after = off_policy.critic_loss(*critic.apply(new.critic, x, a), target)
    assert after < aux["critic_loss"]  # a small step downhill, on both critics
    for name in ("q1", "q2"):
        before = params["params"][name]["Dense_0"]["kernel"]
        assert not np.array_equal(new.critic["params"][name]["Dense_0"]["kernel"], before)
    np.testing.assert_array_equal(new.other, learner.other)


def test_twin_q_values_gives_every_action_or_the_ones_taken():
    cfg = sac.Config(hidden_sizes=(8,))
    critic = off_policy.twin_critic(cfg, 3)
    assert isinstance(critic, off_policy.TwinQValues) and critic.num_actions == 3
    x = jax.random.normal(jax.random.key(0), (5, 4))
    params = critic.init(jax.random.key(1), x)
    q1, q2 = critic.apply(params, x)
    assert q1.shape == q2.shape == (5, 3) and not np.allclose(q1, q2)  # two networks
    a = jnp.array([0, 2, 1, 1, 0])
    q1a, q2a = critic.apply(params, x, a)
    np.testing.assert_array_equal(q1a, np.asarray(q1)[np.arange(5), a])
    np.testing.assert_array_equal(q2a, np.asarray(q2)[np.arange(5), a])


# ---------------------------------------------------------------------- hyperparameters as data

# Two configurations that differ in every hyperparameter SAC or TD3 may trace (run: 15
# updates of 8 env steps, learning from step 64, so the traced values reach every loss).
SHORT = {"total_timesteps": 120, "learning_starts": 64, "batch_size": 16, "train_frequency": 8,
         "hidden_sizes": (8,)}  # fmt: skip
TRACED = {
    sac: ({"learning_rate": 1e-3, "max_grad_norm": 100.0, "gamma": 0.99, "tau": 0.005,
           "init_temperature": 1.0, "target_entropy": -1.0, "target_entropy_scale": 0.5},
          {"learning_rate": 3e-3, "max_grad_norm": 0.5, "gamma": 0.9, "tau": 0.05,
           "init_temperature": 0.25, "target_entropy": -0.5, "target_entropy_scale": 0.25}),
    td3: ({"learning_rate": 1e-3, "max_grad_norm": 100.0, "gamma": 0.99, "tau": 0.005,
           "target_policy_noise": 0.2, "target_noise_clip": 0.5, "exploration_noise": 0.1},
          {"learning_rate": 3e-3, "max_grad_norm": 0.5, "gamma": 0.9, "tau": 0.05,
           "target_policy_noise": 0.4, "target_noise_clip": 0.1, "exploration_noise": 0.3}),
}  # fmt: skip


@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_traced_hyperparameters_train_as_the_concrete_configs(module):
    # one compiled program over (configuration, seed) pairs gives each configuration's own run
    base = module.Config(**SHORT)
    first, second = TRACED[module]
    assert set(first) == set(module.Config.HYPERPARAMETERS)
    hp = {k: jnp.array([first[k], second[k]], jnp.float32) for k in first}
    keys = jnp.stack([jax.random.key(3), jax.random.key(4)])
    states, metrics = jax.jit(jax.vmap(module.make_train(base, "Pendulum-v1")))(keys, hp)
    # the second configuration (far from the defaults) as a concrete Config, compiled alone
    train = module.make_train(dataclasses.replace(base, **second), "Pendulum-v1")
    state, m = jax.jit(train)(keys[1])
    assert bool(m.learning[-1])  # gradient steps ran
    got, want = jax.tree.leaves((states.learner, metrics)), jax.tree.leaves((state.learner, m))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g[1], w, rtol=2e-5, atol=1e-6)  # vmapped: rounding differs
    # the two configurations trained differently
    assert not np.allclose(metrics.critic_loss[0], metrics.critic_loss[1])


@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_only_hyperparameters_may_be_arrays(module):
    for name in module.Config.HYPERPARAMETERS:
        module.Config(**{name: jnp.float32(0.5)})  # data: checked when concrete
    with pytest.raises(TypeError, match=rf"{module.ALGORITHM} Config\.batch_size holds a JAX"):
        module.Config(batch_size=jnp.array(16))
    with pytest.raises(ValueError, match="tau"):  # a concrete value is still checked
        module.Config(gamma=jnp.float32(0.9), tau=2.0)


# ---------------------------------------------------------------- the driver's run of them
@pytest.mark.parametrize("module", [sac, td3], ids=["sac", "td3"])
def test_a_stopped_run_resumes_to_the_same_state(module, tmp_path):
    # The driver's checkpoint holds the whole TrainState, replay buffer and optimiser
    # states included: a run stopped after 2 of its 4 chunks and resumed ends bit for bit
    # where the run without a stop ends (the driver's own resume tests use a toy algorithm).
    from bellmax.train import driver

    cfg = module.Config(**{**SHORT, "total_timesteps": 256, "learning_starts": 32})
    kw = {"seeds": (0, 1), "chunks": 4, "eval_episodes": 0, "algo_name": module.__name__}
    full = driver.train(module, cfg, "Pendulum-v1", **kw)
    part = driver.train(module, cfg, "Pendulum-v1", out_dir=tmp_path / "r", stop_after=16, **kw)
    assert part.updates_done == 16 < cfg.num_updates
    rest = driver.train(module, cfg, "Pendulum-v1", out_dir=tmp_path / "r", resume=True, **kw)
    assert rest.updates_done == cfg.num_updates
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(rest.state), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.metrics["critic_loss"], rest.metrics["critic_loss"])
