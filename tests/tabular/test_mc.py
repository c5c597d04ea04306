"""Monte Carlo methods (Sutton & Barto, Chapter 5): the backward pass by hand (jitted and not),
Blackjack prediction against the exact MDP, ordinary vs weighted importance sampling
(Example 5.4), Monte Carlo ES and epsilon-soft control against the optimal policy
(Figure 5.2), first- vs every-visit on the random walk, and the error paths.

Prediction and off-policy prediction share one compiled program per environment, and so do
the two control methods: each group below uses the same run shapes on purpose.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs import spaces
from bellmax.envs.blackjack import LOST, NUM_STATES
from bellmax.envs.environment import EnvParams
from bellmax.envs.random_walk import RandomWalk
from bellmax.envs.tabular import TabularEnvironment
from bellmax.tabular.mc import (
    MCExploringStartsConfig,
    MCPredictionConfig,
    OffPolicyMCConfig,
    OnPolicyMCConfig,
    mc_exploring_starts,
    mc_prediction,
    mc_return_updates,
    off_policy_mc_prediction,
    on_policy_mc_control,
)
from bellmax.tabular.td import SarsaConfig

STICK, HIT = 0, 1
JIT = [pytest.param(False, id="eager"), pytest.param(True, id="jit")]


# ---------------------------------------------------------------------- tier 1: the backward pass
def initial(n, value=0.0):
    est = np.zeros((5, n), np.float32)
    est[2:] = value
    return jnp.asarray(est)


def test_an_average_past_2_24_visits_stays_within_the_returns():
    # An entry whose 2**24 returns were all 0.75 (so every estimate is 0.75), then 100 more
    # returns of 0.75. The float32 count no longer grows there, and the old
    # `(count * V + G) / count` added each return without taking the old share out: 100
    # steps above 0.75, climbing for ever (25M one-step episodes gave 0.75 for a value of 0.5).
    est = jnp.asarray(np.array([[2**24], [2**24], [0.75], [0.75], [0.75]], np.float32))
    one = (jnp.zeros(1, jnp.int32), jnp.full(1, 0.75), jnp.ones(1), 1, 1.0, 0.1, True)
    step = jax.jit(lambda e, _: (mc_return_updates(e, *one), None))
    est, _ = jax.lax.scan(step, est, None, length=100)
    assert np.asarray(est)[2:4, 0].tolist() == [0.75, 0.75]  # the ordinary and weighted rows


@pytest.mark.parametrize("jit", JIT)
def test_backward_pass_by_hand(jit):
    update = jax.jit(mc_return_updates) if jit else mc_return_updates
    # entries 0, 1, 0 with rewards 1, 0, 2 and gamma 0.5: returns 1.5, 1.0, 2.0; ratios
    # 0.5, 2, 1 give weights W = 1, 2, 1. The fourth slot is past the end (ignored).
    entry = jnp.array([0, 1, 0, 1])
    reward = jnp.array([1.0, 0.0, 2.0, 100.0])
    ratio = jnp.array([0.5, 2.0, 1.0, 9.0])
    rows = ["count", "weight", "ordinary", "weighted", "alpha"]

    first = update(initial(2, 0.3), entry, reward, ratio, 3, 0.5, 0.5, False)
    want_first = {
        "count": [1, 1],
        "weight": [1, 2],
        "ordinary": [1.5, 2.0],  # W * G
        "weighted": [1.5, 1.0],  # G
        "alpha": [0.3 + 0.5 * (1.5 - 0.3), 0.3 + 0.5 * (1.0 - 0.3)],
    }
    for i, name in enumerate(rows):
        np.testing.assert_allclose(first[i], want_first[name], rtol=1e-6, err_msg=name)

    if not jit:
        return  # the rest only runs jitted (eager dispatch compiles every primitive: slow)
    every = update(initial(2), entry, reward, ratio, 3, 0.5, 0.5, True)
    want_every = {
        "count": [2, 1],
        "weight": [2, 2],
        "ordinary": [1.75, 2.0],
        "weighted": [1.75, 1.0],
        # latest step first: 0 -> 0.5 * 2 = 1, then 1 + 0.5 * (1.5 - 1) = 1.25
        "alpha": [1.25, 0.5],
    }
    for i, name in enumerate(rows):
        np.testing.assert_allclose(every[i], want_every[name], rtol=1e-6, err_msg=name)

    # a second episode averages in: entry 0 gets G = 3 with W = 0 (the target never acts so)
    again = update(first, jnp.array([0, 1, 1, 1]), jnp.array([3.0, 0, 0, 0]),
                   jnp.array([0.0, 1, 1, 1]), 1, 0.5, 0.5, False)  # fmt: skip
    np.testing.assert_allclose(again[0], [2, 1])
    np.testing.assert_allclose(again[1], [1, 2])  # C unchanged by a zero weight
    np.testing.assert_allclose(again[2], [(1.5 + 0.0) / 2, 2.0])  # ordinary counts it
    np.testing.assert_allclose(again[3], [1.5, 1.0])  # weighted ignores it
    # an empty episode (length 0) changes nothing
    np.testing.assert_array_equal(update(first, entry, reward, ratio, 0, 0.5, 0.5, True), first)


# ---------------------------------------------------------------------- Blackjack
def evaluate(mdp, policy):
    S = mdp.num_states
    P_pi, R_pi = mdp.dense_P()[np.arange(S), policy], mdp.R[np.arange(S), policy]
    nt = ~mdp.terminal
    v = np.zeros(S)
    v[nt] = np.linalg.solve(np.eye(nt.sum()) - P_pi[np.ix_(nt, nt)], R_pi[nt])
    return v


@pytest.fixture(scope="module")
def blackjack():
    env, params = bellmax.make("Blackjack-v0")
    mdp = env.tabular_mdp(params)
    states = jax.vmap(env.state_from_index)(jnp.arange(NUM_STATES))
    sums = np.where(
        np.arange(NUM_STATES) < LOST, np.asarray(jax.vmap(env.get_obs)(states))[:, 0], 0
    )
    stick_on_20 = np.where(sums >= 20, STICK, HIT)
    v = np.zeros(NUM_STATES)
    for _ in range(50):  # value iteration; hands end within a few cards
        v = (mdp.R + mdp.dense_P() @ v).max(axis=1)
    q_star = mdp.R + mdp.dense_P() @ v
    book = env.book_state_indices()
    return {
        "env": env,
        "mdp": mdp,
        "stick_on_20": stick_on_20,
        "v_stick": evaluate(mdp, stick_on_20),
        "q_star": q_star,
        "book": book.ravel(),
        "s0": int(book[1, 13 - 12, 2 - 1]),  # usable ace, sum 13, dealer 2
    }


#: Shared by on- and off-policy prediction (one program): 100 runs x 1000 hands, tracking s0.
PREDICTION_EPISODES, HAND_BUFFER = 1000, 16


def prediction_kwargs(bj):
    return {"num_runs": 100, "track_states": [bj["s0"]]}


def test_blackjack_value_of_stick_on_20_matches_exact_mdp(blackjack):
    bj = blackjack
    assert bj["v_stick"][bj["s0"]] == pytest.approx(-0.277204, abs=1e-6)
    sentinel = -5.0  # an impossible value marks states a run never visited
    cfg = MCPredictionConfig(
        num_episodes=PREDICTION_EPISODES,
        max_steps_per_episode=HAND_BUFFER,
        initial_value=sentinel,
    )
    result = mc_prediction(
        jax.random.PRNGKey(0), bj["env"], bj["stick_on_20"], cfg, **prediction_kwargs(bj)
    )
    assert bool(np.asarray(result.episodes.terminated).all())
    v = np.asarray(result.v)[:, bj["book"]]
    visited = v != sentinel
    n = visited.sum(axis=0)
    assert np.median(n) == 100 and n.min() >= 20  # every book state is reached in most runs
    mean = np.where(visited, v, 0).sum(axis=0) / n
    spread = np.sqrt(np.where(visited, (v - mean) ** 2, 0).sum(axis=0) / (n - 1))
    z = (mean - bj["v_stick"][bj["book"]]) / np.maximum(spread / np.sqrt(n), 1e-3)
    # the mean of independent runs is unbiased: z-scores are standard normal
    assert np.mean(np.abs(z) < 3) >= 0.95, np.sort(np.abs(z))[-10:]
    assert np.abs(z).max() < 6, np.sort(np.abs(z))[-10:]
    err = mean - bj["v_stick"][bj["book"]]
    assert np.abs(err).mean() < 0.06 and abs(err.mean()) < 0.015  # no overall bias
    # terminal states are never visited as decision states: they keep the initial value
    assert np.all(np.asarray(result.v)[:, LOST:] == sentinel)


def test_off_policy_ordinary_vs_weighted_example_5_4(blackjack):
    bj = blackjack
    s0, true = bj["s0"], bj["v_stick"][bj["s0"]]
    uniform = np.full((NUM_STATES, 2), 0.5)
    cfg = OffPolicyMCConfig(num_episodes=PREDICTION_EPISODES, max_steps_per_episode=HAND_BUFFER)
    result = off_policy_mc_prediction(
        jax.random.PRNGKey(1),
        bj["env"],
        bj["stick_on_20"],
        uniform,
        cfg,
        start_state=s0,
        **prediction_kwargs(bj),
    )
    ordinary = np.asarray(result.history_ordinary)[:, :, 0]
    weighted = np.asarray(result.history_weighted)[:, :, 0]
    np.testing.assert_array_equal(ordinary[:, -1], result.v_ordinary[:, s0])
    np.testing.assert_array_equal(weighted[:, -1], result.v_weighted[:, s0])
    mse_ordinary = ((ordinary - true) ** 2).mean(axis=0)
    mse_weighted = ((weighted - true) ** 2).mean(axis=0)
    # Figure 5.3: weighted importance sampling has much lower error early on
    assert mse_weighted[:10].mean() < 0.5 * mse_ordinary[:10].mean()
    assert mse_weighted[:1000].mean() < mse_ordinary[:1000].mean()
    # both converge towards -0.277204
    for mse in (mse_ordinary, mse_weighted):
        assert mse[-1] < 0.04 and mse[-1] < 0.2 * mse[9]
    se = ordinary[:, -1].std() / np.sqrt(len(ordinary))
    assert abs(ordinary[:, -1].mean() - true) < 4 * se + 1e-3  # ordinary IS is unbiased
    assert abs(weighted[:, -1].mean() - true) < 0.03
    # every episode started in s0, behaving uniformly: first actions split about evenly
    assert abs(np.asarray(result.episodes.first_action).mean() - 0.5) < 0.01


#: Shared by MC ES and epsilon-soft control (one program): one run of 60,000 hands (one
#: unbatched run is several times faster per episode than a batch of two on CPU).
CONTROL = {"num_runs": 1}
CONTROL_EPISODES = 60_000


def policy_value(bj, policy):
    """Expected return of a deterministic policy from the deal (exact)."""
    return float(bj["mdp"].initial @ evaluate(bj["mdp"], np.asarray(policy)))


def test_monte_carlo_es_finds_figure_5_2(blackjack):
    bj = blackjack
    cfg = MCExploringStartsConfig(num_episodes=CONTROL_EPISODES, max_steps_per_episode=HAND_BUFFER)
    result = mc_exploring_starts(jax.random.PRNGKey(2), bj["env"], cfg, **CONTROL)
    optimal = bj["q_star"].argmax(axis=1)
    book = bj["book"]
    best = policy_value(bj, optimal)  # about -0.043
    for policy in np.asarray(result.policy):
        agreement = np.mean(policy[book] == optimal[book])
        assert agreement >= 0.9, agreement  # about 0.94 (a few states are near ties)
        assert policy_value(bj, policy) > best - 0.015
    # the first actions were uniformly random (exploring starts)
    assert abs(np.asarray(result.episodes.first_action).mean() - 0.5) < 0.01
    # the learned values of the optimal actions approach q* on the book's states
    q = np.asarray(result.q).mean(axis=0)
    gap = np.abs(q[book, optimal[book]] - bj["q_star"][book, optimal[book]])
    assert np.median(gap) < 0.05


def test_on_policy_epsilon_soft_control(blackjack):
    bj = blackjack
    cfg = OnPolicyMCConfig(
        epsilon=0.1, num_episodes=CONTROL_EPISODES, max_steps_per_episode=HAND_BUFFER
    )
    result = on_policy_mc_control(jax.random.PRNGKey(3), bj["env"], cfg, **CONTROL)
    optimal = bj["q_star"].argmax(axis=1)
    best = policy_value(bj, optimal)
    stick = policy_value(bj, bj["stick_on_20"])  # about -0.31
    for policy in np.asarray(result.policy):
        # the greedy part of the epsilon-soft policy is near optimal (not exactly: the best
        # epsilon-soft policy differs in a few close states)
        assert policy_value(bj, policy) > best - 0.04
        assert policy_value(bj, policy) > stick + 0.2
        assert np.mean(policy[bj["book"]] == optimal[bj["book"]]) >= 0.75
    # it explored: about epsilon / 2 of the first actions disagree with the greedy policy
    assert 0.2 < np.asarray(result.episodes.first_action).mean() < 0.9


# ---------------------------------------------------------------------- random walk
#: The same shapes as the constant-alpha MC runs of test_td.py (one program for both).
RW = {"num_runs": 100, "track_states": range(7)}
RW_TRUE = np.arange(1, 6) / 6


def rw_config(**kwargs):
    return MCPredictionConfig(num_episodes=100, max_steps_per_episode=100, **kwargs)


def test_first_and_every_visit_on_the_random_walk():
    env = RandomWalk()
    policy = np.full((7, 2), 0.5)
    key = jax.random.PRNGKey(4)
    first = mc_prediction(key, env, policy, rw_config(first_visit=True), **RW)
    every = mc_prediction(key, env, policy, rw_config(first_visit=False), **RW)
    for result in (first, every):
        v = np.asarray(result.v)
        np.testing.assert_allclose(v[:, 1:6].mean(axis=0), RW_TRUE, atol=0.03)
        assert np.all(v[:, [0, 6]] == 0.0)  # the exits are never a visited state
        np.testing.assert_array_equal(np.asarray(result.history)[:, -1], v)
    # every episode starts in C, so first-visit V(C) is the fraction of right exits so far
    right = np.asarray(first.episodes.episode_return).mean(axis=1)
    np.testing.assert_allclose(first.v[:, 3], right, atol=1e-6)
    # same episodes, different estimators: they differ where states are revisited
    assert not np.allclose(first.v, every.v)
    # the sample averages converge faster than the constant-alpha estimates of test_td.py
    err = np.sqrt(((np.asarray(first.v)[:, 1:6] - RW_TRUE) ** 2).mean(axis=1)).mean()
    assert err < 0.08


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "config_type, kwargs, match",
    [
        (MCPredictionConfig, {"alpha": 0.0}, r"MCPredictionConfig\.alpha must be a number > 0"),
        (MCPredictionConfig, {"alpha": -1.0}, "alpha must be a number > 0"),
        (MCPredictionConfig, {"num_episodes": 0}, "num_episodes must be an int >= 1"),
        (MCPredictionConfig, {"first_visit": 1}, "first_visit must be True or False"),
        (MCPredictionConfig, {"max_steps_per_episode": -3}, "max_steps_per_episode"),
        (MCPredictionConfig, {"gamma": -0.1}, "gamma must be a number >= 0"),
        (OffPolicyMCConfig, {"num_episodes": 0}, r"OffPolicyMCConfig\.num_episodes must be an int"),
        (OffPolicyMCConfig, {"gamma": 2.0}, "gamma must be a number >= 0 and <= 1"),
        (MCExploringStartsConfig, {"alpha": 0.0}, "alpha must be a number > 0"),
        (MCExploringStartsConfig, {"initial_value": float("nan")}, "initial_value"),
        (OnPolicyMCConfig, {"epsilon": 1.5}, "epsilon must be a number >= 0 and <= 1"),
        (OnPolicyMCConfig, {"epsilon": -0.01}, "epsilon must be a number >= 0"),
        (OnPolicyMCConfig, {"alpha": 0.0}, "alpha must be a number > 0"),
        (OnPolicyMCConfig, {"num_episodes": 0}, "num_episodes must be an int >= 1"),
    ],
)
def test_bad_config(config_type, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        config_type(**kwargs)


def test_bad_arguments():
    key = jax.random.PRNGKey(0)
    env = RandomWalk()
    half = np.full((7, 2), 0.5)
    cartpole, _ = bellmax.make("CartPole-v1")
    with pytest.raises(TypeError, match=r"TabularEnvironment.*got CartPole"):
        mc_prediction(key, cartpole, half)
    with pytest.raises(TypeError, match=r"TabularEnvironment.*got CartPole"):
        mc_exploring_starts(key, cartpole)
    with pytest.raises(TypeError, match=r"TabularEnvironment.*got CartPole"):
        off_policy_mc_prediction(key, cartpole, half, half)
    with pytest.raises(TypeError, match=r"not the \(env, params\) pair bellmax.make returns"):
        mc_exploring_starts(key, bellmax.make("CliffWalking-v0"))
    with pytest.raises(TypeError, match="mc_prediction takes a MCPredictionConfig"):
        mc_prediction(key, env, half, SarsaConfig())
    with pytest.raises(TypeError, match="on_policy_mc_control takes a OnPolicyMCConfig"):
        on_policy_mc_control(key, env, MCExploringStartsConfig())
    with pytest.raises(ValueError, match=r"policy\[0\] sums to 2"):
        mc_prediction(key, env, np.ones((7, 2)))
    target = np.tile([0.0, 1.0], (7, 1))
    behaviour = np.tile([1.0, 0.0], (7, 1))
    with pytest.raises(ValueError, match="importance sampling needs coverage"):
        off_policy_mc_prediction(key, env, target, behaviour)
    with pytest.raises(ValueError, match=r"start_state must be one state index in 0\.\.6"):
        mc_prediction(key, env, half, start_state=9)
    with pytest.raises(ValueError, match="start_states must be a non-empty list"):
        mc_exploring_starts(key, env, start_states=[])
    with pytest.raises(ValueError, match="start_states must be a non-empty list"):
        mc_exploring_starts(key, env, start_states=[1, 7])
    with pytest.raises(ValueError, match=r"on_policy_mc_control\.num_runs must be an int >= 1"):
        on_policy_mc_control(key, env, num_runs=-1)
    with pytest.raises(ValueError, match="track_states"):
        mc_prediction(key, env, half, track_states=[-1])


class _HugeWorld(TabularEnvironment):
    """A stand-in with too many (state, action) pairs for the episode buffer (never stepped)."""

    num_states = 2**23

    def __init__(self, box_actions: bool = False):
        self.box_actions = box_actions

    @property
    def default_params(self):
        return EnvParams()

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,)) if self.box_actions else spaces.Discrete(2)


def test_tables_too_large_or_actions_not_discrete():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="more than the 16777216 the episode buffer"):
        mc_exploring_starts(key, _HugeWorld())
    with pytest.raises(TypeError, match="needs discrete actions"):
        mc_exploring_starts(key, _HugeWorld(box_actions=True))
