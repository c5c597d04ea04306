"""The gambler's problem: v* by value iteration against the book, a closed-form policy value,
the stake clipping and mask, the sampled env against the exact MDP, and the error paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs._tabular_tools import sample_model
from bellmax.envs.gambler import GamblerParams, GamblersProblem


@pytest.fixture(scope="module")
def world():
    env = GamblersProblem()
    return env, env.tabular_mdp()


def value_iteration(mdp, tol=1e-14):
    P, R, v = mdp.dense_P(), mdp.R, np.zeros(mdp.num_states)
    for _ in range(10_000):
        new = (R + mdp.gamma * P @ v).max(axis=1)
        if np.abs(new - v).max() < tol:
            return new
        v = new
    raise AssertionError("value iteration did not converge")


def policy_values(mdp, policy):
    S = mdp.num_states
    P_pi, R_pi = mdp.dense_P()[np.arange(S), policy], mdp.R[np.arange(S), policy]
    nt = ~mdp.terminal
    v = np.zeros(S)
    v[nt] = np.linalg.solve(np.eye(nt.sum()) - mdp.gamma * P_pi[np.ix_(nt, nt)], R_pi[nt])
    return v


def test_optimal_values_figure_4_3(world):
    _env, mdp = world
    v = value_iteration(mdp)
    np.testing.assert_allclose(
        v[[1, 25, 50, 75, 99]], [0.002066, 0.16, 0.40, 0.64, 0.964333], atol=1e-6
    )
    assert v[0] == 0.0 and v[100] == 0.0  # terminals absorb; reaching 100 paid +1 on entry
    # bold play is optimal at 25, 50 and 75 (stakes 25, 50, 25)
    q = mdp.R + mdp.dense_P() @ v
    for s, stake in [(25, 25), (50, 50), (75, 25)]:
        assert q[s, stake - 1] == pytest.approx(v[s], abs=1e-12)


def test_timid_play_matches_gamblers_ruin_formula(world):
    # Always stake 1: P(reach 100 from s) = (1 - r^s) / (1 - r^100), r = (1 - p) / p.
    _env, mdp = world
    v = policy_values(mdp, np.zeros(101, dtype=int))
    r = 0.6 / 0.4
    s = np.arange(101)
    np.testing.assert_allclose(v[1:100], ((1 - r**s) / (1 - r**100))[1:100], rtol=1e-9)


def test_invalid_stakes_are_copies_of_the_largest_valid_stake(world):
    env, mdp = world
    mask = env.valid_actions()
    assert mask.shape == (101, 50) and mask[0].all() and mask[100].all()
    assert (
        mask[1].tolist() == [True] + [False] * 49
        and mask[50].all()
        and mask[99, 0]
        and not mask[99, 1]
    )
    P = mdp.dense_P()
    for s in range(1, 100):
        most = min(s, 100 - s)
        np.testing.assert_array_equal(
            P[s, most:], np.broadcast_to(P[s, most - 1], P[s, most:].shape)
        )
        np.testing.assert_array_equal(mdp.R[s, most:], mdp.R[s, most - 1])
        assert mask[s].sum() == most
    assert (
        int(env.stake(30, 49)) == 30 and int(env.stake(30, 4)) == 5 and int(env.stake(70, -3)) == 1
    )
    # every row is a distribution; every stake moves the capital, so any policy is proper
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    v = policy_values(mdp, np.full(101, 49))
    assert np.all((v >= 0) & (v <= 1))


def test_mdp_structure(world):
    _env, mdp = world
    assert mdp.shape == (101, 50) and mdp.gamma == 1.0
    assert np.flatnonzero(mdp.terminal).tolist() == [0, 100]
    np.testing.assert_allclose(mdp.initial, np.where(mdp.terminal, 0, 1 / 99))
    # the only reward: heads on a stake that reaches 100
    assert mdp.R[60, 39] == pytest.approx(0.4) and mdp.R[60, 38] == 0.0
    small = GamblersProblem(goal=4).tabular_mdp(GamblerParams(p_h=0.25))
    np.testing.assert_allclose(small.dense_P()[2, 0], [0, 0.75, 0, 0.25, 0])
    np.testing.assert_allclose(small.dense_P()[2, 1], [0.75, 0, 0, 0, 0.25])
    np.testing.assert_allclose(small.R[2], [0.0, 0.25])


def test_sampled_env_agrees_with_mdp(world):
    env, mdp = world
    sampled = sample_model(env, env.default_params, mdp, jax.random.PRNGKey(0), num_samples=400)
    assert sampled.disagreements(mdp) == []


def test_reset_step_and_registry():
    env, params = bellmax.make("GamblersProblem-v0", p_h=0.55)
    assert isinstance(env, GamblersProblem) and params.p_h == 0.55
    keys = jax.random.split(jax.random.PRNGKey(1), 5000)
    obs, _state = jax.vmap(env.reset, (0, None))(keys, params)
    assert obs.dtype == jnp.int32 and int(obs.min()) >= 1 and int(obs.max()) <= 99
    counts = np.bincount(np.asarray(obs), minlength=101)[1:100]
    assert counts.min() > 20 and counts.max() < 90  # about 50 each
    # all-in from 50 ends the game either way
    s50 = env.state_from_index(50)
    obs, _s, r, term, _trunc, _ = jax.vmap(env.step, (0, None, None, None))(keys, s50, 49, params)
    assert bool(term.all()) and set(np.unique(np.asarray(obs))) == {0, 100}
    np.testing.assert_array_equal(r, (obs == 100).astype(np.float32))
    assert abs(float(r.mean()) - 0.55) < 0.03
    # a finished game absorbs
    _, s2, r2, term2, _, _ = env.step(keys[0], env.state_from_index(100), 3, params)
    assert int(s2.capital) == 100 and float(r2) == 0.0 and bool(term2)
    assert env.action_space().n == 50 and env.observation_space().n == 101


@pytest.mark.parametrize("p_h", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_bad_p_h(p_h):
    env = GamblersProblem()
    with pytest.raises(ValueError, match=r"p_h must be a finite number in \(0, 1\)"):
        env.tabular_mdp(GamblerParams(p_h=p_h))


def test_bad_constructor_and_params():
    with pytest.raises(ValueError, match=r"GamblersProblem\.goal must be an int >= 2, got 1"):
        GamblersProblem(goal=1)
    with pytest.raises(TypeError, match="must be an int"):
        GamblersProblem(goal="100")
    with pytest.raises(TypeError, match="must be an int"):
        GamblersProblem(goal=True)
    env = GamblersProblem()
    with pytest.raises(ValueError, match="gamma"):
        env.tabular_mdp(GamblerParams(gamma=2.0))
    with pytest.raises(ValueError, match=r"p_h .*\(the probability of heads\), got 1\.5"):
        bellmax.make("GamblersProblem-v0", p_h=1.5)
