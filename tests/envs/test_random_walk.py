"""The random walk (Examples 6.2 and 7.2): the closed-form values of the random policy against a
linear solve, the sampled env against the exact MDP, reset/step, and the error paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs._tabular_tools import sample_model
from bellmax.envs.random_walk import LEFT, RIGHT, RandomWalk, RandomWalkParams


def random_policy_values(mdp):
    """v of the equiprobable policy by a linear solve over the non-terminal states."""
    P, R = mdp.dense_P().mean(axis=1), mdp.R.mean(axis=1)
    nt = ~mdp.terminal
    v = np.zeros(mdp.num_states)
    v[nt] = np.linalg.solve(np.eye(nt.sum()) - mdp.gamma * P[np.ix_(nt, nt)], R[nt])
    return v


@pytest.mark.parametrize(
    "n, params",
    [(5, RandomWalkParams()), (19, RandomWalkParams(left_reward=-1.0)), (1, RandomWalkParams())],
)
def test_true_values_match_linear_solve(n, params):
    env = RandomWalk(n)
    mdp = env.tabular_mdp(params)
    v = random_policy_values(mdp)
    np.testing.assert_allclose(env.true_values(params), v, atol=1e-12)
    if n == 5:  # Example 6.2: 1/6 .. 5/6
        np.testing.assert_allclose(v[1:6], np.arange(1, 6) / 6, atol=1e-12)
    if n == 19:  # Example 7.2: -0.9 .. 0.9 in steps of 0.1
        np.testing.assert_allclose(v[1:20], np.linspace(-0.9, 0.9, 19), atol=1e-12)


def test_mdp_structure():
    env = RandomWalk()
    mdp = env.tabular_mdp()
    assert mdp.shape == (7, 2) and mdp.gamma == 1.0 and env.num_states == 7
    assert np.flatnonzero(mdp.terminal).tolist() == [0, 6]
    assert mdp.initial.tolist() == [0, 0, 0, 1, 0, 0, 0] and env.start_state == 3
    P = mdp.dense_P()
    assert P[1, LEFT, 0] == 1 and P[5, RIGHT, 6] == 1 and P[3, RIGHT, 4] == 1
    assert P[0, RIGHT, 0] == 1 and P[6, LEFT, 6] == 1  # exits absorb
    assert mdp.R[5, RIGHT] == 1.0 and mdp.R[1, LEFT] == 0.0 and mdp.R.sum() == 1.0
    assert RandomWalk(19).start_state == 10 and RandomWalk(4).start_state == 2


def test_sampled_env_agrees_with_mdp():
    env = RandomWalk(5)
    params = RandomWalkParams(left_reward=-1.0)
    mdp = env.tabular_mdp(params)
    sampled = sample_model(env, params, mdp, jax.random.PRNGKey(0), num_samples=50)
    assert sampled.disagreements(mdp) == []


def test_reset_and_episode():
    env = RandomWalk()
    params = env.default_params
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert int(obs) == 3 and obs.dtype == jnp.int32 and int(env.state_index(state)) == 3
    # walk right three times: reward 1 on the exit, terminated
    rewards = []
    for _ in range(3):
        obs, state, r, term, trunc, _ = env.step(jax.random.PRNGKey(1), state, RIGHT, params)
        rewards.append(float(r))
    assert rewards == [0.0, 0.0, 1.0] and bool(term) and not bool(trunc) and int(obs) == 6
    # an exit absorbs with reward 0
    _, s2, r2, term2, _, _ = env.step(jax.random.PRNGKey(2), state, LEFT, params)
    assert int(s2.pos) == 6 and float(r2) == 0.0 and bool(term2)
    assert int(env.state_index(env.state_from_index(jnp.asarray(4)))) == 4
    assert env.action_space().n == 2 and env.observation_space().n == 7
    assert repr(env) == "RandomWalk(num_states=5)"


def test_errors():
    with pytest.raises(ValueError, match=r"RandomWalk\.num_states must be an int >= 1, got 0"):
        RandomWalk(0)
    with pytest.raises(TypeError, match="must be an int"):
        RandomWalk(5.0)
    with pytest.raises(TypeError, match="must be an int"):
        RandomWalk(True)
    env = RandomWalk()
    with pytest.raises(ValueError, match="right_reward must be a finite number"):
        env.tabular_mdp(RandomWalkParams(right_reward=float("inf")))
    with pytest.raises(ValueError, match="gamma"):
        env.tabular_mdp(RandomWalkParams(gamma=1.5))
    with pytest.raises(ValueError, match="closed form for gamma = 1"):
        env.true_values(RandomWalkParams(gamma=0.9))
