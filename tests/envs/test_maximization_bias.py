"""The maximisation-bias MDP (Example 6.7): the exact model and its optimal values, the sampled
env (rewards N(-0.1, 1) in B) against the exact MDP, the valid-action mask, and the error paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs._tabular_tools import sample_model
from bellmax.envs.maximization_bias import (
    LEFT,
    RIGHT,
    STATE_A,
    STATE_B,
    TERMINAL,
    MaximizationBias,
    MaximizationBiasParams,
)


def test_exact_model_and_optimal_values():
    env = MaximizationBias()
    mdp = env.tabular_mdp()
    assert mdp.shape == (3, 10) and mdp.gamma == 1.0 and env.num_states == 3
    P = mdp.dense_P()
    assert P[STATE_A, LEFT, STATE_B] == 1 and P[STATE_A, RIGHT, TERMINAL] == 1
    assert np.all(P[STATE_B, :, TERMINAL] == 1) and np.all(P[TERMINAL, :, TERMINAL] == 1)
    np.testing.assert_allclose(mdp.R[STATE_B], -0.1)
    assert mdp.R[STATE_A].sum() == 0 and mdp.R[TERMINAL].sum() == 0
    assert mdp.terminal.tolist() == [False, False, True] and mdp.initial.tolist() == [1, 0, 0]
    # q*(A, left) = -0.1 < q*(A, right) = 0: right is optimal
    v = np.zeros(3)
    for _ in range(5):
        v = (mdp.R + P @ v).max(axis=1)
    q = mdp.R + P @ v
    assert q[STATE_A, LEFT] == pytest.approx(-0.1) and q[STATE_A, RIGHT] == 0.0
    mask = env.valid_actions()
    assert mask.shape == (3, 10) and mask[STATE_A].tolist() == [True, True] + [False] * 8
    assert mask[STATE_B].all() and mask[TERMINAL].all()


def test_sampled_env_agrees_with_mdp():
    env = MaximizationBias(num_b_actions=4)
    params = MaximizationBiasParams(mean_reward=0.3, reward_std=2.0)
    mdp = env.tabular_mdp(params)
    sampled = sample_model(env, params, mdp, jax.random.PRNGKey(0), num_samples=2000)
    assert sampled.disagreements(mdp) == []
    np.testing.assert_allclose(sampled.R_std[STATE_B], 2.0, rtol=0.1)
    assert np.all(sampled.R_std[STATE_A] == 0)


def test_reset_and_episode():
    env = MaximizationBias()
    params = env.default_params
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    obs, state = jax.vmap(env.reset, (0, None))(keys, params)
    assert np.all(np.asarray(obs) == STATE_A) and obs.dtype == jnp.int32
    step = jax.vmap(env.step, (0, 0, 0, None))  # one action per episode
    obs, state, r, term, _, _ = step(keys, state, jnp.zeros(4000, jnp.int32), params)  # left
    assert np.all(np.asarray(obs) == STATE_B) and np.all(np.asarray(r) == 0) and not term.any()
    obs, state, r, term, _, _ = step(keys, state, jnp.full(4000, 7), params)
    assert np.all(np.asarray(obs) == TERMINAL) and bool(term.all())
    assert abs(float(r.mean()) + 0.1) < 0.1 and abs(float(r.std()) - 1.0) < 0.05
    _, s0 = env.reset(keys[0], params)
    obs, _, r, term, _, _ = env.step(keys[0], s0, 5, params)  # any action but 0 goes right
    assert int(obs) == TERMINAL and float(r) == 0.0 and bool(term)
    assert env.action_space().n == 10 and env.observation_space().n == 3
    assert repr(env) == "MaximizationBias(num_b_actions=10)"


def test_errors():
    with pytest.raises(
        ValueError, match=r"MaximizationBias\.num_b_actions must be an int >= 2, got 1"
    ):
        MaximizationBias(1)
    with pytest.raises(TypeError, match="must be an int"):
        MaximizationBias("10")
    env = MaximizationBias()
    with pytest.raises(ValueError, match="reward_std must be a finite number >= 0"):
        env.tabular_mdp(MaximizationBiasParams(reward_std=-1.0))
    with pytest.raises(ValueError, match="mean_reward must be a finite number"):
        env.tabular_mdp(MaximizationBiasParams(mean_reward=float("nan")))
    with pytest.raises(ValueError, match="gamma"):
        env.tabular_mdp(MaximizationBiasParams(gamma=-0.5))
