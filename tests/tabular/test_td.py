"""TD learning (Sutton & Barto, Chapter 6): hand-computed single updates of every target (jitted
and not), the shared policies, the book's experiments within bands (cliff walking, windy
gridworld, the random walk TD vs MC, maximisation bias), Expected SARSA and SARSA against the
fixed point of their epsilon-greedy target solved in numpy on the random walk's chain, and the
error paths.

The four control methods share one compiled program per environment, so each experiment
compiles once; every run is a module-level fixture shared by the tests that read it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.maximization_bias import LEFT, MaximizationBias
from bellmax.envs.random_walk import RandomWalk
from bellmax.tabular.episodes import (
    epsilon_greedy_action,
    epsilon_greedy_probs,
    greedy_action,
    random_action,
    resolve_gamma,
    sample_action,
)
from bellmax.tabular.mc import MCPredictionConfig, mc_prediction
from bellmax.tabular.td import (
    DoubleQLearningConfig,
    ExpectedSarsaConfig,
    QLearningConfig,
    SarsaConfig,
    SoftQLearningConfig,
    TD0Config,
    double_q_learning,
    double_q_learning_error,
    double_q_learning_update,
    expected_sarsa,
    expected_sarsa_error,
    expected_sarsa_update,
    q_learning,
    q_learning_error,
    q_learning_update,
    sarsa,
    sarsa_error,
    sarsa_update,
    td0_prediction,
    td0_update,
    td_control,
    td_error,
)

JIT = [pytest.param(False, id="eager"), pytest.param(True, id="jit")]


def maybe_jit(fn, jit, **static):
    return jax.jit(fn, **static) if jit else fn


Q = jnp.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])


# ---------------------------------------------------------------------- tier 1: one transition
@pytest.mark.parametrize("jit", JIT)
def test_td_errors_by_hand(jit):
    assert float(maybe_jit(td_error, jit)(0.5, 1.0, 0.9, 2.0)) == pytest.approx(2.3)
    q_tm1, q_t = Q[0], Q[2]
    # r + d * q_t[a_t] - q_tm1[a_tm1] = 1 + 0.5 * 4 - 1
    assert float(maybe_jit(sarsa_error, jit)(q_tm1, 1, 1.0, 0.5, q_t, 0)) == pytest.approx(2.0)
    # the expectation over probs [0.1, 0.9]: 1 + 0.5 * 4.9 - 1
    probs = jnp.array([0.1, 0.9])
    err = maybe_jit(expected_sarsa_error, jit)(q_tm1, 1, 1.0, 0.5, q_t, probs)
    assert float(err) == pytest.approx(2.45)
    assert float(maybe_jit(q_learning_error, jit)(q_tm1, 1, 1.0, 0.5, q_t)) == pytest.approx(2.5)
    # the selector picks action 0, the value table says -1: 1 + 0.5 * -1 - 1
    err = maybe_jit(double_q_learning_error, jit)(
        q_tm1, 1, 1.0, 0.5, jnp.array([-1.0, 7.0]), jnp.array([3.0, 2.0])
    )
    assert float(err) == pytest.approx(-0.5)
    # a terminal s_t (discount 0) bootstraps nothing
    assert float(maybe_jit(q_learning_error, jit)(q_tm1, 0, -1.0, 0.0, q_t)) == -1.0


@pytest.mark.parametrize("jit", JIT)
def test_table_updates_by_hand(jit):
    v = jnp.array([0.0, 0.5, 1.0])
    new_v = maybe_jit(td0_update, jit)(v, 1, 0.0, 1.0, 2, alpha=0.1)  # 0.5 + 0.1 * (1 - 0.5)
    np.testing.assert_allclose(new_v, [0.0, 0.55, 1.0], rtol=1e-6)
    alpha = 0.1
    new = maybe_jit(sarsa_update, jit)(Q, 0, 1, 1.0, 0.5, 2, 0, alpha=alpha)
    np.testing.assert_allclose(new, Q.at[0, 1].set(1.2), rtol=1e-6)
    new = maybe_jit(expected_sarsa_update, jit)(Q, 0, 1, 1.0, 0.5, 2, alpha=alpha, epsilon=0.2)
    np.testing.assert_allclose(new, Q.at[0, 1].set(1.245), rtol=1e-6)
    new = maybe_jit(q_learning_update, jit)(Q, 0, 1, 1.0, 0.5, 2, alpha=alpha)
    np.testing.assert_allclose(new, Q.at[0, 1].set(1.25), rtol=1e-6)
    # a mask that hides action 1 in s_t: the max is over action 0 only
    valid = jnp.array([True, False])
    new = maybe_jit(q_learning_update, jit)(Q, 0, 1, 1.0, 0.5, 2, alpha=alpha, valid_t=valid)
    np.testing.assert_allclose(new, Q.at[0, 1].set(1.2), rtol=1e-6)
    # Expected SARSA with epsilon 0 is Q-learning
    new = maybe_jit(expected_sarsa_update, jit)(Q, 0, 1, 1.0, 0.5, 2, alpha=alpha, epsilon=0.0)
    np.testing.assert_allclose(new, Q.at[0, 1].set(1.25), rtol=1e-6)


@pytest.mark.parametrize("jit", JIT)
def test_double_q_update_by_hand(jit):
    q1 = Q
    q2 = jnp.array([[0.0, 0.0], [0.0, 0.0], [10.0, -10.0]])
    pair = jnp.stack([q1, q2])
    update = maybe_jit(double_q_learning_update, jit)
    # table 0 updated: a* = argmax q1[2] = 1, valued by q2: 1 + 0.5 * -10 - 1 = -5
    # table 1 updated: a* = argmax q2[2] = 0, valued by q1: 1 + 0.5 * 4 - 0 = 3
    want = {0: pair.at[0, 0, 1].set(0.5), 1: pair.at[1, 0, 1].set(0.3)}
    seen = set()
    for i in range(8 if jit else 1):  # (eager dispatch is slow: one key suffices there)
        new = update(jax.random.PRNGKey(i), pair, 0, 1, 1.0, 0.5, 2, alpha=0.1)
        which = 0 if float(new[0, 0, 1]) != float(pair[0, 0, 1]) else 1
        np.testing.assert_allclose(new, want[which], rtol=1e-6)
        seen.add(which)
    assert seen == {0, 1} or not jit  # a fair coin picks both tables


# ---------------------------------------------------------------------- the shared policies
@pytest.fixture(scope="module")
def policy_samples():
    """20,000 draws of each policy helper from one jitted program."""
    keys = jax.random.split(jax.random.PRNGKey(3), 20_000)
    q = jnp.array([1.0, 3.0, 3.0, 0.0])
    valid = jnp.array([True, True, False, True])

    @jax.jit
    @jax.vmap
    def draw(key):
        return jnp.stack(
            [
                greedy_action(key, q),
                greedy_action(key, q, valid),
                epsilon_greedy_action(key, q, 0.4),
                epsilon_greedy_action(key, q, 0.4, valid),
                random_action(key, 4, valid),
                sample_action(key, jnp.array([0.2, 0.0, 0.5, 0.3])),
            ]
        )

    return np.asarray(draw(keys)), q, valid


def frequencies(actions, n=4):
    return np.bincount(actions, minlength=n) / len(actions)


def test_policy_helpers_sample_their_distributions(policy_samples):
    draws, q, valid = policy_samples
    tol = 0.015  # > 4 standard errors at 20,000 draws
    np.testing.assert_allclose(frequencies(draws[:, 0]), [0, 0.5, 0.5, 0], atol=tol)  # ties
    assert np.all(draws[:, 1] == 1)  # the tie with an invalid action is no tie
    np.testing.assert_allclose(frequencies(draws[:, 2]), epsilon_greedy_probs(q, 0.4), atol=tol)
    probs = epsilon_greedy_probs(q, 0.4, valid)
    np.testing.assert_allclose(probs, [0.4 / 3, 0.6 + 0.4 / 3, 0, 0.4 / 3], atol=1e-6)
    np.testing.assert_allclose(frequencies(draws[:, 3]), probs, atol=tol)
    np.testing.assert_allclose(frequencies(draws[:, 4]), [1 / 3, 1 / 3, 0, 1 / 3], atol=tol)
    np.testing.assert_allclose(frequencies(draws[:, 5]), [0.2, 0.0, 0.5, 0.3], atol=tol)
    # epsilon 0 and 1
    np.testing.assert_allclose(epsilon_greedy_probs(q, 0.0), [0, 0.5, 0.5, 0], atol=1e-7)
    np.testing.assert_allclose(epsilon_greedy_probs(q, 1.0), [0.25] * 4, atol=1e-7)


# ---------------------------------------------------------------------- Example 6.6: cliff
#: Every cliff run records the start state's action values, so all share one program.
CLIFF = {"num_runs": 50, "track_states": [36]}


@pytest.fixture(scope="module")
def cliff():
    env, params = bellmax.make("CliffWalking-v0")
    cfg = {"alpha": 0.5, "epsilon": 0.1, "num_episodes": 500}
    key = jax.random.PRNGKey(0)
    runs = {
        "sarsa": sarsa(key, env, SarsaConfig(**cfg), **CLIFF),
        "q_learning": q_learning(key, env, QLearningConfig(**cfg), **CLIFF),
    }
    return env, env.tabular_mdp(params), runs


def greedy_path_length(mdp, policy, start, limit=100):
    """Steps the deterministic greedy policy takes to the goal (-1 if it never arrives)."""
    nxt = mdp.dense_P().argmax(axis=2)
    s = start
    for n in range(1, limit + 1):
        s = nxt[s, policy[s]]
        if mdp.terminal[s]:
            return n
    return -1


def test_cliff_walking_sum_of_rewards_example_6_6(cliff):
    _env, _mdp, runs = cliff
    late = {
        k: float(np.asarray(r.episodes.episode_return)[:, 100:].mean()) for k, r in runs.items()
    }
    assert -32 <= late["sarsa"] <= -24, late  # book -27.9
    assert -56 <= late["q_learning"] <= -44, late  # book -50.1
    for r in runs.values():
        assert r.q.shape == (50, 48, 4) and r.episodes.episode_return.shape == (50, 500)
        assert bool(np.asarray(r.episodes.terminated).all())
        # each episode's return is -length, minus 99 per fall into the cliff
        falls = (-np.asarray(r.episodes.episode_return) - np.asarray(r.episodes.length)) / 99
        np.testing.assert_allclose(falls, np.round(falls), atol=1e-3)
        assert falls.min() >= 0


def test_cliff_walking_greedy_paths(cliff):
    env, mdp, runs = cliff
    start = env.index_of((3, 0))
    lengths = {
        k: [greedy_path_length(mdp, p, start) for p in np.asarray(r.policy)]
        for k, r in runs.items()
    }
    # SARSA learns the safe path (17 steps, along the top) in most runs; Q-learning the edge
    assert np.mean(np.array(lengths["sarsa"]) == 17) >= 0.6, lengths["sarsa"]
    assert 13 not in lengths["sarsa"]
    assert np.mean(np.array(lengths["q_learning"]) == 13) >= 0.9, lengths["q_learning"]


# ---------------------------------------------------------------------- Example 6.5: windy
def test_windy_gridworld_episodes_by_step_8000():
    env, _params = bellmax.make("WindyGridworld-v0")
    result = sarsa(
        jax.random.PRNGKey(1),
        env,
        SarsaConfig(alpha=0.5, epsilon=0.1, num_episodes=200),
        num_runs=10,
    )
    steps = np.cumsum(np.asarray(result.episodes.length), axis=1)
    assert np.all(steps[:, -1] > 8000)  # every run got past step 8000
    completed = (steps <= 8000).sum(axis=1)
    assert 140 <= completed.mean() <= 180, completed  # book: about 161
    # the time per episode falls to near the 15-step optimum
    assert np.asarray(result.episodes.length)[:, -50:].mean() < 25


# ---------------------------------------------------------------------- Example 6.2: random walk
RW_TRUE = np.arange(1, 6) / 6
RW_RUNS, RW_EPISODES, RW_BUFFER = 100, 100, 100


def rw_rms(history):
    """RMS error over the five states after each episode, averaged over runs `[episodes]`."""
    err = np.asarray(history)[:, :, 1:6] - RW_TRUE
    return np.sqrt((err**2).mean(axis=-1)).mean(axis=0)


def rw_mc(alpha, key):
    """Constant-alpha every-visit MC on the random walk (shapes shared with test_mc.py)."""
    cfg = MCPredictionConfig(
        alpha=alpha,
        first_visit=False,
        initial_value=0.5,
        num_episodes=RW_EPISODES,
        max_steps_per_episode=RW_BUFFER,
    )
    policy = np.full((7, 2), 0.5)
    return mc_prediction(key, RandomWalk(), policy, cfg, num_runs=RW_RUNS, track_states=range(7))


def test_random_walk_td_beats_constant_alpha_mc_figure_6_2():
    env = RandomWalk()
    policy = np.full((7, 2), 0.5)
    cfg = TD0Config(alpha=0.1, initial_value=0.5, num_episodes=RW_EPISODES)
    td = td0_prediction(
        jax.random.PRNGKey(2), env, policy, cfg, num_runs=RW_RUNS, track_states=range(7)
    )
    td_rms = rw_rms(td.history)
    assert td_rms[0] == pytest.approx(np.sqrt(((0.5 - RW_TRUE) ** 2).mean()), abs=0.02)
    assert 0.03 < td_rms[-1] < 0.08  # about 0.055
    mc_final = []
    for i, alpha in enumerate([0.01, 0.02, 0.03, 0.04]):
        mc = rw_mc(alpha, jax.random.PRNGKey(10 + i))
        assert bool(np.asarray(mc.episodes.terminated).all())
        mc_final.append(rw_rms(mc.history)[-1])
    # TD(0) with alpha 0.1 is below every constant-alpha MC curve after 100 episodes
    assert td_rms[-1] < min(mc_final) - 0.01, (td_rms[-1], mc_final)
    # online constant-alpha TD(0) keeps a small outward bias (0.14 .. 0.86 at 100 episodes)
    mean = np.asarray(td.v)[:, 1:6].mean(axis=0)
    np.testing.assert_allclose(mean, RW_TRUE, atol=0.05)
    assert np.all(np.diff(mean) > 0.1)
    assert np.all(np.asarray(td.v)[:, [0, 6]] == 0.5)  # the exits are never updated


# ---------------------------------------------------------------------- Example 6.7
@pytest.fixture(scope="module")
def maximization_bias():
    env = MaximizationBias()
    key = jax.random.PRNGKey(4)
    cfg = {"alpha": 0.1, "epsilon": 0.1, "num_episodes": 300}
    q = q_learning(key, env, QLearningConfig(**cfg), num_runs=1000)
    dq = double_q_learning(key, env, DoubleQLearningConfig(**cfg), num_runs=1000)
    return q, dq


def test_maximization_bias_figure_6_5(maximization_bias):
    q, dq = maximization_bias
    left_q = (np.asarray(q.episodes.first_action) == LEFT).mean(axis=0)
    left_dq = (np.asarray(dq.episodes.first_action) == LEFT).mean(axis=0)
    # both start at 50% (ties between untried actions are broken at random)
    assert abs(left_q[0] - 0.5) < 0.07 and abs(left_dq[0] - 0.5) < 0.07  # 1000 runs: SE 0.016
    # Q-learning's maximisation bias: left far more than the 5% of the optimal
    # epsilon-greedy policy, peaking (about 94% with 10 actions in B) near episode 20
    assert left_q[10:30].mean() > 0.75
    assert 5 <= int(np.argmax(left_q)) <= 60
    # Double Q-learning settles near 5%; Q-learning is still biased after 100 episodes
    assert left_dq[100:].mean() < 0.1  # about 0.077
    assert left_q[100:].mean() > left_dq[100:].mean() + 0.05
    # the values: Double Q-learning's Q(A, left) heads for the true -0.1
    dq_left = float(np.asarray(dq.q)[:, 0, LEFT].mean())
    assert -0.1 < dq_left < 0  # about -0.04 after 300 episodes
    assert np.all(np.asarray(dq.policy)[:, 0] < 2)  # greedy over A's two real actions


# ---------------------------------------------------------------------- other methods
def test_expected_sarsa_on_cliff_shares_the_program(cliff):
    env, mdp, _runs = cliff
    cfg = ExpectedSarsaConfig(alpha=0.5, epsilon=0.1, num_episodes=500)
    result = expected_sarsa(jax.random.PRNGKey(5), env, cfg, **CLIFF)
    late = float(np.asarray(result.episodes.episode_return)[:, 100:].mean())
    assert -26 <= late <= -16, late  # Figure 6.3: Expected SARSA beats SARSA at alpha 0.5
    start = env.index_of((3, 0))
    lengths = [greedy_path_length(mdp, p, start) for p in np.asarray(result.policy)]
    assert all(0 < n <= 17 for n in lengths), lengths


def test_tracked_history_ends_at_the_final_values(cliff):
    _env, _mdp, runs = cliff
    for result in runs.values():
        assert result.history.shape == (50, 500, 1, 4)
        np.testing.assert_array_equal(result.history[:, -1, 0], result.q[:, 36])


def test_td0_gamma_override_matches_the_discounted_values():
    env = RandomWalk()
    mdp = env.tabular_mdp()
    P, R = mdp.dense_P().mean(axis=1), mdp.R.mean(axis=1)  # the equiprobable policy
    gamma = 0.5
    v = np.zeros(7)
    v[1:6] = np.linalg.solve(np.eye(5) - gamma * P[1:6, 1:6], R[1:6])
    cfg = TD0Config(alpha=0.1, gamma=gamma, initial_value=0.5, num_episodes=RW_EPISODES)
    result = td0_prediction(
        jax.random.PRNGKey(7), env, np.full((7, 2), 0.5), cfg, num_runs=RW_RUNS,
        track_states=range(7),
    )  # fmt: skip
    mean = np.asarray(result.v)[:, 1:6].mean(axis=0)
    np.testing.assert_allclose(mean, v[1:6], atol=0.06)  # (online TD's small outward bias)
    assert mean[4] < 0.65 and v[5] < 0.55  # far from the undiscounted 5/6


# ---------------------------------------------------------------------- tier 2: fixed point
# Example 6.2's chain (RandomWalk(): exits 0 and 6, start 3, action 0 left, 1 right, +1 for
# the right exit), built here by hand, discounted by 0.9 and explored with epsilon 0.5.
CHAIN_GAMMA, CHAIN_EPS = 0.9, 0.5


def chain_fixed_point(eps, gamma=CHAIN_GAMMA, share_greedy=True):
    """The action values `[7, 2]` that the epsilon-greedy targets hold fixed, by iteration.

    `epsilon_greedy_probs` gives every action eps / |A| and the greedy one(s) 1 - eps more,
    so the expected next value is E_pi Q(s') = (1 - eps) max_a Q(s', a) + eps mean_a Q(s', a)
    (ties among greedy actions share 1 - eps, all at the max value), and 0 at an exit
    (termination zeroes the discount). The fixed point solves
        Q(s, a) = R(s, a) + gamma E_pi Q(s'(s, a)),
    a gamma-contraction in the max norm (max and mean are non-expansive), so iterating from 0
    converges geometrically; 400 sweeps leave 0.9^400 < 1e-18. `share_greedy=False` is the
    other convention (greedy 1 - eps, the rest eps / (|A| - 1)), for contrast.
    """
    nxt = np.array([[s - 1, s + 1] for s in range(7)])
    reward = np.zeros((7, 2))
    reward[5, 1] = 1.0  # from E to the right exit
    q = np.zeros((7, 2))
    for _ in range(400):
        other = q.mean(-1) if share_greedy else q.min(-1)  # (|A| = 2: the non-greedy one)
        v = (1 - eps) * q.max(-1) + eps * other
        v[[0, 6]] = 0.0
        q[1:6] = reward[1:6] + gamma * v[nxt[1:6]]
    return q


@pytest.fixture(scope="module")
def chain_expected_sarsa():
    """Four runs of 600 episodes of constant-step Expected SARSA on the chain, every action
    value recorded after every episode."""
    cfg = ExpectedSarsaConfig(alpha=0.5, epsilon=CHAIN_EPS, gamma=CHAIN_GAMMA, num_episodes=600)
    return expected_sarsa(
        jax.random.PRNGKey(8), RandomWalk(), cfg, num_runs=4, track_states=range(7)
    )


def test_expected_sarsa_converges_to_its_fixed_point(chain_expected_sarsa):
    # Shows: with a constant step size Expected SARSA reaches the fixed point of its
    # epsilon-greedy expectation, solved in numpy (`chain_fixed_point`). The world is
    # deterministic and the target an expectation, so nothing is sampled but the visits: each
    # update moves Q(s, a) by alpha (T Q - Q)(s, a), and the max-norm error shrinks by
    # 1 - alpha (1 - gamma) = 0.95 at least whenever every pair has been updated once more.
    # It must fall within 1e-4 before 80% of the cap and stay there, and end at float32
    # rounding of values <= 1 (measured: 2.7e-7 in every run; within 1e-4 from episodes 274-292;
    # 150-380 over other seeds).
    q_ref = chain_fixed_point(CHAIN_EPS)
    history = np.asarray(chain_expected_sarsa.history, np.float64)[:, :, 1:6]
    err = np.abs(history - q_ref[1:6]).max(axis=(2, 3))  # [runs, episodes], the 10 pairs
    within = err <= 1e-4
    assert within[:, -1].all(), err[:, -1]
    first = np.where(within.all(axis=1), 0, err.shape[1] - np.argmin(within[:, ::-1], axis=1))
    assert np.all(first < 0.8 * err.shape[1]), first
    assert err[:, -1].max() < 1e-5
    np.testing.assert_array_equal(chain_expected_sarsa.q[:, [0, 6]], 0.0)  # exits: untouched
    # the check tells the candidates apart: Q-learning's optimal values (epsilon 0) and the
    # other epsilon convention are > 0.2 away from this fixed point somewhere
    for other in (chain_fixed_point(0.0), chain_fixed_point(CHAIN_EPS, share_greedy=False)):
        assert np.abs(other - q_ref).max() > 0.2


def test_sarsa_with_decaying_steps_reaches_the_same_fixed_point():
    # Shows: SARSA samples the next action from the same epsilon-greedy policy, so its
    # expected update is Expected SARSA's and its fixed point the same; with steps
    # alpha / n^0.7 (Robbins-Monro) its sampled targets average out. The noise: a sampled
    # target varies by gamma |Q(s', left) - Q(s', right)| sqrt(p (1 - p)) <= 0.9 * 0.26 * 0.43
    # ~ 0.1; the rarest pairs get a few hundred updates in 2000 episodes (steps ~0.02), a
    # spread ~ sqrt(0.02 / 2) 0.1 ~ 0.01, and the slow decay leaves a small lag. Measured
    # (this key): every run within 0.045 of the fixed point, the mean of the runs within
    # 0.003; over ten keys 0.03-0.07 and 0.002-0.008. Bands 0.15 and 0.02: below the 0.29 and 0.33 gaps to
    # Q-learning's values and the other epsilon convention.
    cfg = SarsaConfig(
        alpha=1.0, alpha_decay=0.7, epsilon=CHAIN_EPS, gamma=CHAIN_GAMMA, num_episodes=2000
    )
    result = sarsa(jax.random.PRNGKey(9), RandomWalk(), cfg, num_runs=16)
    q_ref = chain_fixed_point(CHAIN_EPS)
    err = np.asarray(result.q, np.float64)[:, 1:6] - q_ref[1:6]
    assert np.abs(err).max() < 0.15, np.abs(err).max(axis=(1, 2))
    assert np.abs(err.mean(axis=0)).max() < 0.02, err.mean(axis=0)


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"alpha": 0.0}, ValueError, r"Config\.alpha must be a number > 0 and <= 1, got 0\.0"),
        ({"alpha": -0.5}, ValueError, "alpha must be a number > 0 and <= 1"),
        ({"alpha": 1.5}, ValueError, "alpha must be a number > 0 and <= 1"),
        ({"alpha": float("nan")}, ValueError, "alpha must be a finite number"),
        ({"alpha": "0.5"}, TypeError, "alpha must be a number, got str"),
        ({"epsilon": -0.1}, ValueError, "epsilon must be a number >= 0 and <= 1"),
        ({"epsilon": 1.2}, ValueError, "epsilon must be a number >= 0 and <= 1"),
        ({"num_episodes": 0}, ValueError, "num_episodes must be an int >= 1"),
        ({"num_episodes": 2.5}, TypeError, "num_episodes must be an int, got float"),
        ({"max_steps_per_episode": 0}, ValueError, "max_steps_per_episode"),
        ({"gamma": 1.5}, ValueError, "gamma must be a number >= 0 and <= 1"),
        ({"initial_value": float("inf")}, ValueError, "initial_value must be a finite number"),
        ({"initial_value": 1e39}, ValueError, r"initial_value must be at most 3.4e\+38 .*float32"),
        ({"alpha_decay": -0.1}, ValueError, "alpha_decay must be a number >= 0 and <= 1"),
        ({"alpha_decay": 2.0}, ValueError, "alpha_decay must be a number >= 0 and <= 1"),
        ({"alpha_decay": None}, TypeError, "alpha_decay must be a number, got NoneType"),
    ],
)
@pytest.mark.parametrize(
    "config_type",
    [SarsaConfig, QLearningConfig, ExpectedSarsaConfig, DoubleQLearningConfig, SoftQLearningConfig],
)
def test_bad_control_config(config_type, kwargs, error, match):
    with pytest.raises(error, match=match) as raised:
        config_type(**kwargs)
    assert str(raised.value).startswith(f"{config_type.__name__}.")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha": 0.0}, "TD0Config.alpha must be a number > 0"),
        ({"num_episodes": 0}, "num_episodes"),
    ],
)
def test_bad_td0_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TD0Config(**kwargs)


def test_bad_environment_and_arguments():
    key = jax.random.PRNGKey(0)
    cartpole, _ = bellmax.make("CartPole-v1")
    with pytest.raises(TypeError, match=r"TabularEnvironment.*got CartPole"):
        sarsa(key, cartpole)
    with pytest.raises(TypeError, match=r"TabularEnvironment.*got CartPole"):
        td0_prediction(key, cartpole, np.zeros(2))
    env = RandomWalk()
    with pytest.raises(TypeError, match="sarsa takes a SarsaConfig, got QLearningConfig"):
        sarsa(key, env, QLearningConfig())
    with pytest.raises(TypeError, match="td0_prediction takes a TD0Config"):
        td0_prediction(key, env, np.zeros(7), SarsaConfig())
    with pytest.raises(ValueError, match=r"q_learning\.num_runs must be an int >= 1"):
        q_learning(key, env, num_runs=0)
    with pytest.raises(TypeError, match="num_runs must be an int"):
        q_learning(key, env, num_runs=2.0)
    with pytest.raises(TypeError, match="td_control takes the config of one method"):
        td_control(key, env, TD0Config())
    with pytest.raises(ValueError, match=r"track_states must be state indices in 0\.\.6"):
        q_learning(key, env, track_states=[7])
    with pytest.raises(ValueError, match=r"action_mask must have shape \(S, A\) = \(7, 2\)"):
        q_learning(key, env, action_mask=np.ones((7, 3), bool))
    mask = np.ones((7, 2), bool)
    mask[4] = False
    with pytest.raises(ValueError, match="leaves state 4 with no valid action"):
        q_learning(key, env, action_mask=mask)
    with pytest.raises(ValueError, match=r"policy must be probabilities of shape \(S, A\)"):
        td0_prediction(key, env, np.full((7, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"policy\[2\] sums to 0.7"):
        td0_prediction(key, env, np.array([[0.5, 0.5]] * 2 + [[0.2, 0.5]] + [[0.5, 0.5]] * 4))
    with pytest.raises(ValueError, match=r"integers in 0\.\.1"):
        td0_prediction(key, env, np.full(7, 2))
    with pytest.raises(ValueError, match="finite probabilities >= 0"):
        td0_prediction(key, env, np.array([[1.5, -0.5]] * 7))
    with pytest.raises(ValueError, match="set the config's gamma"):
        resolve_gamma(None, object(), "sarsa")
