"""Blackjack: the book's stick-on-20 value and optimal policy on the exact MDP, Monte Carlo
with the sampled env, the sampled env against the exact MDP, Gymnasium's Blackjack-v1
(sab=True) as a distributional reference, and the error paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs._tabular_tools import sample_model
from bellmax.envs.blackjack import (
    DRAWN,
    LOST,
    WON,
    Blackjack,
    BlackjackParams,
    dealer_distribution,
    play_dealer,
)

STICK, HIT = 0, 1


@pytest.fixture(scope="module")
def world():
    env = Blackjack()
    return env, env.tabular_mdp()


def player_sums(env):
    """Player total of every decision state (and 0 for the terminals)."""
    states = jax.vmap(env.state_from_index)(jnp.arange(293))
    obs = jax.vmap(env.get_obs)(states)
    return np.where(np.arange(293) < LOST, np.asarray(obs[:, 0]), 0)


def evaluate(mdp, policy):
    S = mdp.num_states
    P_pi, R_pi = mdp.dense_P()[np.arange(S), policy], mdp.R[np.arange(S), policy]
    nt = ~mdp.terminal
    v = np.zeros(S)
    v[nt] = np.linalg.solve(np.eye(nt.sum()) - P_pi[np.ix_(nt, nt)], R_pi[nt])
    return v


def stick_on_20(env):
    return np.where(player_sums(env) >= 20, STICK, HIT)


def test_stick_on_20_exact_value(world):
    env, mdp = world
    v = evaluate(mdp, stick_on_20(env))
    book = env.book_state_indices()
    assert v[book[1, 13 - 12, 2 - 1]] == pytest.approx(-0.277204, abs=1e-5)
    assert np.all(np.abs(v[:LOST]) <= 1 + 1e-12) and np.all(v[LOST:] == 0)


def test_optimal_policy_figure_5_2(world):
    env, mdp = world
    P, R, v = mdp.dense_P(), mdp.R, np.zeros(mdp.num_states)
    for _ in range(100):
        new = (R + P @ v).max(axis=1)
        if np.abs(new - v).max() < 1e-14:
            break
        v = new
    q = R + P @ new
    stick = q[:, STICK] > q[:, HIT]
    book = env.book_state_indices()
    total = np.arange(12, 22)[:, None]
    dealer = np.arange(1, 11)[None, :]
    usable = (total >= 19) | ((total == 18) & (dealer >= 2) & (dealer <= 8))
    hard = (
        (total >= 17)
        | ((total >= 13) & (dealer >= 2) & (dealer <= 6))
        | ((total == 12) & (dealer >= 4) & (dealer <= 6))
    )
    np.testing.assert_array_equal(stick[book[1]], usable)
    np.testing.assert_array_equal(stick[book[0]], hard)
    assert not stick[: (12 - 4) * 10].any()  # hard 4..11: always hit
    assert stick[280:290].all()  # a natural sticks


def test_monte_carlo_returns_match_exact_value(world):
    env, mdp = world
    params = env.default_params
    v = evaluate(mdp, stick_on_20(env))
    start = int(env.book_state_indices()[1, 1, 1])  # usable ace, 13, dealer 2
    state0 = env.state_from_index(start)

    def episode(key):
        def body(carry, k):
            state, ret = carry
            action = jnp.where(env.get_obs(state)[0] >= 20, STICK, HIT)
            _, state, r, _, _, _ = env.step(k, state, action, params)
            return (state, ret + r), None

        (state, ret), _ = jax.lax.scan(body, (state0, 0.0), jax.random.split(key, 20))
        return ret, state.done

    n = 20_000
    returns, done = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(0), n))
    assert bool(done.all())
    returns = np.asarray(returns)
    se = returns.std() / np.sqrt(n)
    assert abs(returns.mean() - v[start]) < 5 * se


@pytest.fixture(scope="module")
def sampled(world):
    env, mdp = world
    return sample_model(env, env.default_params, mdp, jax.random.PRNGKey(1), num_samples=1500)


def test_sampled_env_agrees_with_mdp(world, sampled):
    _env, mdp = world
    assert sampled.disagreements(mdp) == []
    # and the agreement is not vacuous: a dealer standing on 18 would be caught
    P = mdp.dense_P().copy()
    P[15 * 10 + 4, STICK, LOST:] = [0.3, 0.2, 0.5]
    assert sampled.disagreements(mdp.replace(P=P))


def test_reset_distribution_is_mdp_initial(world):
    env, mdp = world
    n = 30_000
    obs, state = jax.vmap(env.reset, (0, None))(
        jax.random.split(jax.random.PRNGKey(2), n), env.default_params
    )
    idx = np.asarray(jax.vmap(env.state_index)(state))
    freq = np.bincount(idx, minlength=293) / n
    p = mdp.initial
    assert np.all(freq[p == 0] == 0)
    assert np.all(np.abs(freq - p) <= 6 * np.sqrt(p * (1 - p) / n) + 3 / n)
    # naturals: P = 2 * (1/13) * (4/13)
    assert p[280:290].sum() == pytest.approx(8 / 169)
    assert obs.shape == (n, 3) and obs.dtype == jnp.int32
    assert bool(jax.vmap(env.observation_space().contains)(obs).all())


def test_dealer_distribution():
    # the sampled dealer is checked through every stick outcome in the agreement test
    for showing in range(1, 11):
        exact = dealer_distribution(showing)
        assert exact.sum() == pytest.approx(1.0) and np.all(exact[1:17] == 0)
    assert dealer_distribution(10)[22] == pytest.approx(1 / 13)
    assert dealer_distribution(1)[22] == pytest.approx(4 / 13)
    assert dealer_distribution(5)[22] == 0.0
    score, natural = jax.jit(play_dealer)(jax.random.PRNGKey(3), jnp.int32(6))
    assert int(score) in (0, 17, 18, 19, 20, 21) and not bool(natural)


def test_natural_beats_a_three_card_21(world, sampled):
    env, mdp = world
    natural, soft21 = 28 * 10 + 4, 27 * 10 + 4  # against dealer 5
    assert env.get_obs(env.state_from_index(natural)).tolist() == [21, 5, 1]
    assert env.get_obs(env.state_from_index(soft21)).tolist() == [21, 5, 1]
    assert sampled.P[natural, STICK, WON] == 1.0 and sampled.R_mean[natural, STICK] == 1.0
    assert sampled.P[soft21, STICK, LOST] == 0.0 and sampled.P[soft21, STICK, DRAWN] > 0.05
    assert mdp.R[natural, STICK] == pytest.approx(1.0) and mdp.R[soft21, STICK] < 0.99
    # hitting a natural gives a hard 12..21 (no longer a natural, never a bust)
    hard_12_to_21 = (np.arange(12, 22) - 4) * 10 + 4
    assert sampled.P[natural, HIT, hard_12_to_21].sum() == 1.0
    assert mdp.dense_P()[natural, HIT, hard_12_to_21].sum() == pytest.approx(1.0)


def test_finished_games_absorb_and_indices_round_trip(world):
    env, _mdp = world
    params = env.default_params
    idx = jnp.arange(293)
    states = jax.vmap(env.state_from_index)(idx)
    np.testing.assert_array_equal(jax.vmap(env.state_index)(states), idx)
    obs = jax.vmap(env.get_obs)(states)
    obs_idx = np.asarray(jax.vmap(env.obs_index)(obs))
    expected = np.arange(293)
    expected[280:290] -= 10  # a natural looks like a soft 21
    np.testing.assert_array_equal(obs_idx[:LOST], expected[:LOST])
    assert int(env.obs_index(jnp.array([25, 3, 0]))) == LOST
    for t in (LOST, DRAWN, WON):
        _, s, r, term, _, _ = env.step(jax.random.PRNGKey(t), env.state_from_index(t), HIT, params)
        assert int(env.state_index(s)) == t and float(r) == 0.0 and bool(term)
    book = env.book_state_indices()
    assert book.shape == (2, 10, 10) and len(np.unique(book)) == 200
    sums = player_sums(env)
    np.testing.assert_array_equal(sums[book[0]], np.repeat(np.arange(12, 22)[:, None], 10, 1))
    np.testing.assert_array_equal(np.asarray(obs[:, 2])[book[1]], 1)
    np.testing.assert_array_equal(
        np.asarray(obs[:, 1])[book[0]], np.tile(np.arange(1, 11), (10, 1))
    )


def test_mdp_structure_and_registry(world):
    _env, mdp = world
    assert mdp.shape == (293, 2) and mdp.gamma == 1.0
    assert np.flatnonzero(mdp.terminal).tolist() == [LOST, DRAWN, WON]
    P = mdp.dense_P()
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    assert np.all(P[:LOST, STICK, :LOST] == 0)  # sticking always ends the game
    # hard 21 hitting always busts; hard 11 never does
    assert P[(21 - 4) * 10, HIT, LOST] == 1.0 and P[(11 - 4) * 10, HIT, LOST] == 0.0
    env2, _params = bellmax.make("Blackjack-v0")
    assert isinstance(env2, Blackjack) and env2.name == "Blackjack-v0"
    assert env2.action_space().n == 2 and env2.observation_space().nvec.tolist() == [32, 11, 2]


def test_gymnasium_blackjack_sab_reference(world):
    gym = pytest.importorskip("gymnasium")
    env, mdp = world
    v = evaluate(mdp, stick_on_20(env))
    g = gym.make("Blackjack-v1", sab=True)
    n = 8000
    firsts, returns = [], np.zeros(n)
    g.reset(seed=0)
    for i in range(n):
        obs, _ = g.reset()
        firsts.append(obs)
        done, ret = False, 0.0
        while not done:
            obs, r, term, trunc, _ = g.step(STICK if obs[0] >= 20 else HIT)
            ret, done = ret + r, term or trunc
        returns[i] = ret
    first = (
        np.bincount(np.asarray(jax.jit(jax.vmap(env.obs_index))(np.array(firsts))), minlength=293)
        / n
    )
    p = mdp.initial.copy()
    p[270:280] += p[280:290]  # Gymnasium's observation does not show the natural
    p[280:290] = 0
    assert np.all(np.abs(first - p) <= 6 * np.sqrt(p * (1 - p) / n) + 3 / n)
    se = returns.std() / np.sqrt(n)
    assert abs(returns.mean() - mdp.initial @ v) < 5 * se


def test_bad_params():
    env = Blackjack()
    with pytest.raises(ValueError, match="gamma"):
        env.tabular_mdp(BlackjackParams(gamma=-1.0))
    with pytest.raises(ValueError, match="max_steps_in_episode"):
        env.tabular_mdp(BlackjackParams(max_steps_in_episode=0))
