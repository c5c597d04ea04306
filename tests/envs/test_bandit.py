"""The k-armed Gaussian bandit testbed (Sutton & Barto 2.3).

Reference values: /work/shared/reference/sutton-barto.md (eps 0.1 sample averages: late reward
1.33-1.37, 80% optimal; E[max of 10 N(0,1)] = 1.5388).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import bellmax
from bellmax.envs.bandit import BanditParams, GaussianBandit

K = 10
RUNS, STEPS = 2000, 1000


def _key(seed: int) -> jax.Array:
    """A key of the "rbg" PRNG: the env takes any key type, and on CPU XLA compiles the
    vmapped testbed several times faster than with the default threefry keys."""
    return jax.random.key(seed, impl="rbg")


def _keys(seed: int, n: int) -> jax.Array:
    return jax.random.split(_key(seed), n)


def _testbed_run(env: GaussianBandit, eps: float):
    """RUNS runs of STEPS pulls by an inline eps-greedy sample-average agent (the library's
    bandit agents live in bellmax.bandits). A `lax.scan` over time whose body vmaps the agent
    and `env.step` over the runs. Returns rewards and optimal flags [STEPS, RUNS], whether
    any step terminated, and the first and last true values [RUNS, k]."""
    k = env.k
    arms = jnp.arange(k)

    def choose(q, u):
        greedy = jnp.argmax(q + 1e-6 * u[2:])  # random tie-breaking among equal estimates
        explore_arm = jnp.minimum(jnp.floor(u[1] * k), k - 1).astype(jnp.int32)
        return jnp.where(u[0] < eps, explore_arm, greedy)

    def learn(q, n, a, r):
        hit = arms == a
        n = n + hit
        return q + hit * (r - q) / jnp.maximum(n, 1), n

    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def testbed(key, params):
        k_reset, k_run = jax.random.split(key)
        resets = jax.random.split(k_reset, RUNS)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(resets, params)
        q_start = state.q_star

        def body(carry, t):
            state, q, n = carry
            k_agent, k_env = jax.random.split(jax.random.fold_in(k_run, t))
            a = jax.vmap(choose)(q, jax.random.uniform(k_agent, (RUNS, k + 2)))
            _, state, r, term, _, info = step(jax.random.split(k_env, RUNS), state, a, params)
            q, n = jax.vmap(learn)(q, n, a, r)
            return (state, q, n), (r, info["is_optimal"], term)

        init = (state, jnp.zeros((RUNS, k)), jnp.zeros((RUNS, k)))
        (state, _, _), (r, opt, term) = jax.lax.scan(body, init, jnp.arange(STEPS))
        return r, opt, jnp.any(term), q_start, state.q_star

    return jax.jit(testbed)


@pytest.fixture(scope="module")
def env():
    return GaussianBandit(K)


@pytest.fixture(scope="module")
def testbed(env):
    return _testbed_run(env, 0.1)


@pytest.fixture(scope="module")
def many_resets(env):
    return jax.jit(jax.vmap(lambda key, p: env.reset(key, p)[1].q_star, in_axes=(0, None)))


def test_eps_greedy_reproduces_figure_2_2(testbed):
    r, opt, term, _, _ = testbed(_key(0), BanditParams())
    late_reward = float(jnp.mean(r[900:]))
    late_optimal = float(jnp.mean(opt[900:]))
    assert 1.30 <= late_reward <= 1.42, late_reward
    assert 0.76 <= late_optimal <= 0.84, late_optimal
    # the first pull is a random arm: reward near E[q*] = 0, optimal about 1/k of the time
    assert abs(float(jnp.mean(r[0]))) < 0.1
    assert abs(float(jnp.mean(opt[0])) - 1 / K) < 0.03
    assert not bool(jnp.any(term))  # never terminates


def test_nonstationary_walk_spreads_arms_from_equal_start(testbed):
    # Exercise 2.5: all q*(a) start equal, then independent random walks of std walk_std
    params = BanditParams(mean_offset=0.5, arm_mean_std=0.0, walk_std=0.01)
    _, _, _, q_start, q_final = testbed(_key(2), params)
    np.testing.assert_array_equal(np.asarray(q_start), 0.5)
    drift = np.asarray(q_final) - 0.5
    expected = 0.01 * np.sqrt(STEPS)  # std of the sum of STEPS increments
    assert abs(drift.mean()) < 5 * expected / np.sqrt(drift.size)
    assert abs(drift.std() / expected - 1) < 0.05


def test_expected_best_arm_matches_quadrature(many_resets):
    e_max = integrate.quad(
        lambda x: x * K * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi) * special.ndtr(x) ** (K - 1),
        -np.inf,
        np.inf,
    )[0]
    assert e_max == pytest.approx(1.5388, abs=5e-5)  # the book's ceiling in Figure 2.2
    n = 100_000
    q = np.asarray(many_resets(_keys(3, n), BanditParams()))
    best = q.max(axis=1)
    assert abs(best.mean() - e_max) < 5 * best.std() / np.sqrt(n)
    # shifted and scaled arms (the gradient-bandit figure shifts by +4)
    shifted = BanditParams(mean_offset=4.0, arm_mean_std=2.0)
    q = np.asarray(many_resets(_keys(4, n), shifted))
    assert abs(q.mean() - 4.0) < 5 * 2.0 / np.sqrt(q.size)
    assert abs(q.std() / 2.0 - 1) < 0.01
    assert abs(q.max(axis=1).mean() - (4.0 + 2.0 * e_max)) < 5 * 2.0 * best.std() / np.sqrt(n)


def test_rewards_have_each_arms_mean_and_std(env):
    params = BanditParams(reward_std=2.0)
    _, state = env.reset(jax.random.PRNGKey(5), params)
    n = 20_000
    keys = _keys(6, n)
    pull = jax.vmap(  # all arms x n keys, one compiled call
        jax.vmap(lambda key, a: env.step(key, state, a, params), in_axes=(0, None)),
        in_axes=(None, 0),
    )
    _, new_state, reward, term, trunc, info = jax.jit(pull)(keys, jnp.arange(K))
    reward = np.asarray(reward)  # [K, n]
    q = np.asarray(state.q_star)
    assert np.all(np.abs(reward.mean(axis=1) - q) < 5 * 2.0 / np.sqrt(n))
    assert np.all(np.abs(reward.std(axis=1) / 2.0 - 1) < 5 / np.sqrt(2 * n))
    # stationary: the true values do not move; one step taken
    np.testing.assert_array_equal(np.asarray(new_state.q_star), np.broadcast_to(q, (K, n, K)))
    assert np.all(np.asarray(new_state.time) == 1)
    assert not np.any(np.asarray(term)) and not np.any(np.asarray(trunc))
    # info: what the testbed runner uses
    best = int(np.argmax(q))
    assert np.all(np.asarray(info["optimal_action"]) == best)
    np.testing.assert_array_equal(np.asarray(info["is_optimal"])[:, 0], np.arange(K) == best)
    np.testing.assert_allclose(np.asarray(info["regret"])[:, 0], q.max() - q, atol=1e-6)


def test_noise_free_rewards_equal_true_values(env):
    params = BanditParams(reward_std=0.0)
    _, state = env.reset(jax.random.PRNGKey(7), params)
    q = np.asarray(state.q_star)
    for a in (0, 3, K - 1):
        _, _, r, _, _, info = env.step(jax.random.PRNGKey(8), state, a, params)
        assert float(r) == pytest.approx(q[a], abs=1e-6)
        assert float(info["regret"]) == pytest.approx(q.max() - q[a], abs=1e-6)


def test_truncates_at_max_steps_and_never_terminates(env):
    params = BanditParams(max_steps_in_episode=3)
    _, state = env.reset(jax.random.PRNGKey(9), params)
    flags = []
    for t in range(3):
        _, state, _, term, trunc, _ = env.step(jax.random.PRNGKey(t), state, 1, params)
        flags.append((bool(term), bool(trunc)))
    assert flags == [(False, False), (False, False), (False, True)]
    assert int(state.time) == 3


def test_spaces_observation_and_registry(env):
    obs, state = env.reset(jax.random.PRNGKey(10))
    assert obs.shape == (1,) and obs.dtype == jnp.float32 and float(obs[0]) == 0.0
    assert bool(env.observation_space().contains(obs))
    assert env.action_space().n == K and env.num_actions == K
    assert state.q_star.shape == (K,) and int(state.time) == 0
    small = GaussianBandit(k=3)
    assert small.reset(jax.random.PRNGKey(0))[1].q_star.shape == (3,)
    made, params = bellmax.make("GaussianBandit-v0", mean_offset=4.0)
    assert made == env and hash(made) == hash(env) and made != small
    assert params.mean_offset == 4.0 and made.name == "GaussianBandit-v0"
    assert repr(small) == "GaussianBandit(k=3)"


def test_jitted_out_of_range_action_is_clipped(env):
    # under jit the action cannot be checked; JAX's indexing clips it (documented)
    _, state = env.reset(jax.random.PRNGKey(11))
    step = jax.jit(lambda a: env.step(jax.random.PRNGKey(12), state, a)[2])
    assert float(step(K + 5)) == float(step(K - 1))


@pytest.mark.parametrize("k", [0, -3])
def test_bad_k_raises(k):
    with pytest.raises(
        ValueError, match=r"GaussianBandit\.k \(the number of arms\) must be an int >= 1"
    ):
        GaussianBandit(k)


@pytest.mark.parametrize("k", [2.5, True, "10"])
def test_non_integer_k_raises(k):
    with pytest.raises(TypeError, match=r"k \(the number of arms\) must be an int"):
        GaussianBandit(k)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("arm_mean_std", -1.0, "arm_mean_std.*>= 0"),
        ("reward_std", -0.5, "reward_std.*>= 0"),
        ("walk_std", -0.01, "walk_std.*>= 0"),
        ("mean_offset", float("nan"), "mean_offset must be a finite number .*got nan"),
        ("reward_std", float("inf"), "reward_std must be a finite number >= 0.*got inf"),
        ("max_steps_in_episode", 0, "max_steps_in_episode must be a whole number >= 1"),
    ],
)
def test_bad_params_raise(env, field, value, match):
    bad = BanditParams().replace(**{field: value})
    with pytest.raises(ValueError, match=match):
        env.reset(jax.random.PRNGKey(0), bad)
    _, state = env.reset(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=match):
        env.step(jax.random.PRNGKey(0), state, 0, bad)


@pytest.mark.parametrize(
    "action, error, match",
    [
        (K, ValueError, "out of range"),
        (-1, ValueError, "out of range"),
        (1.5, TypeError, "dtype float"),
        ([0, 1], ValueError, "one integer"),
    ],
)
def test_bad_concrete_action_raises(env, action, error, match):
    _, state = env.reset(jax.random.PRNGKey(0))
    with pytest.raises(error, match=match):
        env.step(jax.random.PRNGKey(0), state, action)
