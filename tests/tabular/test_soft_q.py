"""Soft (maximum-entropy) Q-learning: the log-sum-exp target and the Boltzmann behaviour by
hand (jitted and not), convergence from samples to `soft_value_iteration`'s values on the
5x5 grid world of Example 3.5 (self-verifying: the error must fall within 1e-2 before a cap
and stay there), the limit `tau -> 0` (Q-learning and value iteration), a slippery world where
the decaying step size averages the noise, and the error paths.

Every learned number comes from one compiled program per variant: the temperatures share it
(`temperature` is traced), and each run records every action value after every episode.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.gridworlds import GridWorld5x5
from bellmax.tabular import (
    QLearningConfig,
    SoftQLearningConfig,
    q_learning,
    soft_q_learning,
    soft_value_iteration,
    td_control,
    value_iteration,
)
from bellmax.tabular.episodes import epsilon_greedy_probs, hash_uniform
from bellmax.tabular.td import (
    boltzmann_action,
    boltzmann_probs,
    q_learning_error,
    soft_q_learning_error,
    soft_q_learning_update,
)

JIT = [pytest.param(False, id="eager"), pytest.param(True, id="jit")]


def maybe_jit(fn, jit, **static):
    return jax.jit(fn, **static) if jit else fn


# ---------------------------------------------------------------------- tier 1: one transition
@pytest.mark.parametrize("jit", JIT)
def test_soft_q_learning_error_by_hand(jit):
    error = maybe_jit(soft_q_learning_error, jit)
    q_tm1 = jnp.array([0.0, 1.0])
    # tau log(exp(0) + exp(log 3)) = log 4, and 2 log(1 + 3) at tau = 2: no log|A| term
    q_t = jnp.array([0.0, math.log(3.0)])
    assert float(error(q_tm1, 1, 1.0, 0.5, q_t, 1.0)) == pytest.approx(0.5 * math.log(4.0))
    q_t2 = jnp.array([0.0, 2.0 * math.log(3.0)])
    assert float(error(q_tm1, 0, 1.0, 0.5, q_t2, 2.0)) == pytest.approx(1.0 + math.log(4.0))
    # invalid actions (-inf) drop out; a terminal s_t (discount 0) bootstraps nothing
    q_t3 = jnp.array([math.log(3.0), -jnp.inf, 0.0])
    q3 = jnp.array([0.0, 1.0, 2.0])
    assert float(error(q3, 2, 1.0, 1.0, q_t3, 1.0)) == pytest.approx(math.log(4.0) - 1.0)
    assert float(error(q_tm1, 0, -1.0, 0.0, q_t, 1.0)) == -1.0
    # tau -> 0: Q-learning's max, within tau log|A|; large values do not overflow
    q_big = jnp.array([1000.0, 1000.0, 990.0])
    soft = float(error(q3, 0, 0.0, 1.0, q_big, 1e-3))
    assert soft == pytest.approx(1000.0 + 1e-3 * math.log(2.0), abs=1e-4)
    assert float(q_learning_error(q3, 0, 0.0, 1.0, q_big)) == 1000.0


@pytest.mark.parametrize("jit", JIT)
def test_soft_q_learning_update_by_hand(jit):
    q = jnp.array([[0.0, 1.0], [2.0, 3.0], [0.0, math.log(3.0)]])
    update = maybe_jit(soft_q_learning_update, jit)
    new = update(q, 0, 1, 1.0, 0.5, 2, alpha=0.1, temperature=1.0)
    np.testing.assert_allclose(new, q.at[0, 1].add(0.1 * 0.5 * math.log(4.0)), rtol=1e-6)
    # a mask that hides action 1 in s_t: V_soft(s_t) = tau log exp(0) = 0
    valid = jnp.array([True, False])
    new = update(q, 0, 1, 1.0, 0.5, 2, alpha=0.1, temperature=1.0, valid_t=valid)
    np.testing.assert_allclose(new, q.at[0, 1].set(1.0), rtol=1e-6)


@pytest.mark.parametrize("jit", JIT)
def test_boltzmann_probs_by_hand(jit):
    probs = maybe_jit(boltzmann_probs, jit)
    q = jnp.array([1.0, 3.0, 3.0, 0.0])
    valid = jnp.array([True, True, False, True])
    e = np.exp(np.array([1.0, 3.0, 3.0, 0.0]))
    np.testing.assert_allclose(probs(q, 1.0), e / e.sum(), rtol=1e-6)
    # the invalid action gets nothing; epsilon mixes in the uniform choice over valid ones
    ev = e * np.asarray(valid)
    want = 0.4 / 3 * np.asarray(valid) + 0.6 * ev / ev.sum()
    np.testing.assert_allclose(probs(q, 1.0, 0.4, valid), want, rtol=1e-6)
    np.testing.assert_allclose(probs(q, 2.0), np.exp(q / 2) / np.exp(q / 2).sum(), rtol=1e-6)
    # tau -> 0: epsilon-greedy (greedy ties share); tau -> inf: uniform
    for eps in (0.0, 0.4):
        np.testing.assert_allclose(probs(q, 1e-4, eps), epsilon_greedy_probs(q, eps), atol=1e-6)
        np.testing.assert_allclose(
            probs(q, 1e-4, eps, valid), epsilon_greedy_probs(q, eps, valid), atol=1e-6
        )
    np.testing.assert_allclose(probs(q, 1e6), [0.25] * 4, atol=1e-5)


def test_boltzmann_action_samples_its_distribution():
    keys = jax.random.split(jax.random.PRNGKey(3), 20_000)
    q = jnp.array([1.0, 3.0, 2.5, 0.0])
    valid = jnp.array([True, True, False, True])

    @jax.jit
    @jax.vmap
    def draw(key):
        return jnp.stack([boltzmann_action(key, q, 1.0), boltzmann_action(key, q, 0.5, 0.3, valid)])

    draws = np.asarray(draw(keys))
    tol = 0.015  # > 4 standard errors at 20,000 draws
    for column, want in enumerate([boltzmann_probs(q, 1.0), boltzmann_probs(q, 0.5, 0.3, valid)]):
        freq = np.bincount(draws[:, column], minlength=4) / len(draws)
        np.testing.assert_allclose(freq, want, atol=tol)
    assert not np.any(draws[:, 1] == 2)  # never an invalid action


# ---------------------------------------------------------------------- the 5x5 grid world
#: Every grid run: 4 seeds, all 25 states recorded after every episode. Short episodes (10
#: steps from a uniformly drawn cell) and a behaviour that takes a uniform action half the
#: time make every (s, a) frequent (soft Q-learning is off-policy: its target does not depend
#: on the behaviour).
GRID_RUNS = 4
GRID_EPISODES = 8000  # the cap: within 1e-2 after about 1000-2000 episodes
GRID_CONFIG = {
    "alpha": 0.5, "epsilon": 0.5, "num_episodes": GRID_EPISODES, "max_steps_per_episode": 10,
}  # fmt: skip
TOL = 1e-2


@pytest.fixture(scope="module")
def grid():
    env, params = bellmax.make("GridWorld5x5-v0")
    mdp = env.tabular_mdp(params)
    key = jax.random.PRNGKey(0)
    learned = {
        tau: soft_q_learning(
            key, env, SoftQLearningConfig(temperature=tau, **GRID_CONFIG),
            num_runs=GRID_RUNS, track_states=range(25),
        )
        for tau in (1.0, 1e-3)
    }  # fmt: skip
    return env, mdp, learned


def max_errors(history, q_ref):
    """Max abs error over all (s, a) after every episode, `[runs, episodes]`."""
    return np.abs(np.asarray(history, np.float64) - np.asarray(q_ref)).max(axis=(2, 3))


def assert_converges(history, q_ref, tol=TOL):
    """Every run falls within `tol` before the cap and stays there; returns the episodes."""
    err = max_errors(history, q_ref)
    within = err <= tol
    assert within[:, -1].all(), f"not within {tol} after {err.shape[1]} episodes: {err[:, -1]}"
    first = err.shape[1] - np.argmin(within[:, ::-1], axis=1)  # first episode of the last run
    first = np.where(within.all(axis=1), 0, first)
    return first


@pytest.mark.parametrize("tau", [1.0, 1e-3])
def test_soft_q_learning_converges_to_soft_value_iteration(grid, tau):
    _env, mdp, learned = grid
    ref = soft_value_iteration(mdp, temperature=tau, tol=1e-10)
    result = learned[tau]
    first = assert_converges(result.history, ref.q_values)
    assert np.all(first < 0.6 * GRID_EPISODES), first  # reached with room to spare
    # the soft values V = tau log sum exp(Q / tau) too, and the history ends at the result
    q = np.asarray(result.q, np.float64)
    v = tau * np.log(np.exp((q - q.max(-1, keepdims=True)) / tau).sum(-1)) + q.max(-1)
    np.testing.assert_allclose(v, np.broadcast_to(ref.values, v.shape), atol=TOL)
    np.testing.assert_array_equal(result.history[:, -1], result.q)
    # a deterministic world: the constant step size converges to float32 rounding
    assert max_errors(result.history, ref.q_values)[:, -1].max() < 1e-3


def test_soft_values_exceed_the_optimal_ones_by_the_entropy(grid):
    _env, mdp, learned = grid
    v_star = np.asarray(value_iteration(mdp, tol=1e-10).values)
    q = np.asarray(learned[1.0].q, np.float64)
    v_soft = np.log(np.exp(q).sum(-1))
    # V* < V_soft <= V* + tau log|A| / (1 - gamma), and well apart at tau = 1
    assert np.all(v_soft > v_star + 1.0)
    assert np.all(v_soft <= v_star + math.log(4) / (1 - 0.9) + TOL)


def test_tau_to_zero_is_q_learning(grid):
    env, mdp, learned = grid
    soft = learned[1e-3]
    vi = value_iteration(mdp, tol=1e-10)
    q_star = np.asarray(vi.q_values)
    gap = 1e-3 * math.log(4) / (1 - 0.9)  # 0 <= V_soft - V* <= tau log|A| / (1 - gamma)
    np.testing.assert_allclose(soft.q, np.broadcast_to(q_star, soft.q.shape), atol=TOL + gap)
    # the same experiment with Q-learning's target and epsilon-greedy behaviour
    hard = q_learning(
        jax.random.PRNGKey(1), env, QLearningConfig(**GRID_CONFIG), num_runs=GRID_RUNS
    )
    np.testing.assert_allclose(soft.q, hard.q, atol=2 * TOL + gap)
    # greedy policies: optimal, and equal wherever the optimal action is unique
    best = q_star.max(-1)
    for policy in (np.asarray(soft.policy), np.asarray(hard.policy)):
        assert np.all(q_star[np.arange(25), policy] >= best - 1e-6)
    unique = (q_star >= best[:, None] - 1e-6).sum(-1) == 1
    assert unique.sum() >= 5
    np.testing.assert_array_equal(soft.policy[:, unique], hard.policy[:, unique])


def test_td_control_runs_the_same_program(grid):
    env, _mdp, learned = grid
    config = SoftQLearningConfig(temperature=1.0, **GRID_CONFIG)
    again = td_control(
        jax.random.PRNGKey(0), env, config, num_runs=GRID_RUNS, track_states=range(25)
    )
    np.testing.assert_array_equal(again.q, learned[1.0].q)


# ---------------------------------------------------------------------- a slippery world
SLIP = 0.1


class SlipperyGridWorld5x5(GridWorld5x5):
    """Example 3.5's grid where, with probability `SLIP`, the move is a uniformly random one."""

    def step_env(self, key, state, action, params):
        u = hash_uniform(key, 2, salt=11)
        slipped = jnp.minimum((u[1] * 4).astype(jnp.int32), 3)
        return super().step_env(key, state, jnp.where(u[0] < SLIP, slipped, action), params)

    def tabular_mdp(self, params=None):
        mdp = super().tabular_mdp(params)
        P = (1 - SLIP) * mdp.P + SLIP * mdp.P.mean(axis=1, keepdims=True)
        R = (1 - SLIP) * mdp.R + SLIP * mdp.R.mean(axis=1, keepdims=True)
        return mdp.replace(P=P, R=R)


#: The slippery runs: 4 seeds of 12,000 episodes of 10 steps, step size 1 / n**0.6.
SLIPPERY_CONFIG = {
    "alpha": 1.0, "alpha_decay": 0.6, "epsilon": 0.5, "num_episodes": 12_000,
    "max_steps_per_episode": 10,
}  # fmt: skip


@pytest.fixture(scope="module")
def slippery():
    """Soft Q-learning (tau = 1) and Q-learning on the slippery grid, decaying step sizes."""
    env = SlipperyGridWorld5x5()
    key = jax.random.PRNGKey(2)
    config = SoftQLearningConfig(temperature=1.0, **SLIPPERY_CONFIG)
    soft = soft_q_learning(key, env, config, num_runs=4, track_states=range(25))
    hard = q_learning(key, env, QLearningConfig(**SLIPPERY_CONFIG), num_runs=4)
    return env.tabular_mdp(), soft, hard


def test_decaying_steps_average_the_noise_of_a_slippery_world(slippery):
    mdp, soft, hard = slippery
    q_soft = np.asarray(soft_value_iteration(mdp, temperature=1.0, tol=1e-10).q_values)
    q_star = np.asarray(value_iteration(mdp, tol=1e-10).q_values)
    assert (q_soft - q_star).min() > 3.0  # the entropy bonus: 3.6 .. 6.1 here
    err = max_errors(soft.history, q_soft)
    # every run heads for the soft values (0.23 .. 0.31 off after 120,000 noisy steps, and
    # still falling), far from the hard ones
    assert err[:, -1].max() < 0.6, err[:, -1]
    assert np.all(err[:, -1] < 0.5 * err[:, err.shape[1] // 8]), err[:, [err.shape[1] // 8, -1]]
    assert max_errors(soft.history[:, -1:], q_star).min() > 2.5
    # Q-learning with the same samples heads for the optimal values
    err_hard = np.abs(np.asarray(hard.q) - q_star).max(axis=(1, 2))
    assert err_hard.max() < 0.6, err_hard


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "temperature, error, match",
    [
        (0.0, ValueError, r"SoftQLearningConfig\.temperature must be a number > 0, got 0\.0"),
        (-1.0, ValueError, r"limit tau -> 0 is Q-learning: use QLearningConfig and q_learning"),
        (float("inf"), ValueError, "temperature must be a finite number, got inf"),
        (float("nan"), ValueError, "temperature must be a finite number, got nan"),
        ("1.0", TypeError, "temperature must be a number, got str"),
        (None, TypeError, "temperature must be a number, got NoneType"),
    ],
)
def test_bad_temperature(temperature, error, match):
    with pytest.raises(error, match=match):
        SoftQLearningConfig(temperature=temperature)


def test_bad_temperature_of_the_row_functions():
    q = jnp.array([0.0, 1.0])
    with pytest.raises(
        ValueError, match=r"soft_q_learning_error\.temperature must be a number > 0"
    ):
        soft_q_learning_error(q, 0, 1.0, 0.9, q, 0.0)
    with pytest.raises(ValueError, match=r"boltzmann_probs\.temperature.*use QLearningConfig"):
        boltzmann_probs(q, -0.5)
    with pytest.raises(ValueError, match=r"temperature must be a number > 0.*q_learning"):
        boltzmann_action(jax.random.PRNGKey(0), q, 0)


def test_a_temperature_below_float32s_normal_numbers_is_refused():
    # 1e-38 is a float32 subnormal, which XLA's CPU code flushes to 0: every soft value was
    # NaN and the greedy policy action 0. 1.2e-38 is allowed, and the row functions stay
    # finite there: they shift by the max before dividing by tau.
    with pytest.raises(ValueError, match=r"at least 1\.18e-38 .*got 1e-38.*use QLearningConfig"):
        SoftQLearningConfig(temperature=1e-38)
    with pytest.raises(ValueError, match=r"boltzmann_probs\.temperature must be at least"):
        boltzmann_probs(jnp.array([0.0, 1.0]), 1e-39)
    SoftQLearningConfig(temperature=1.2e-38)
    q = jnp.array([5.0, -5.0])
    np.testing.assert_array_equal(boltzmann_probs(q, 1.2e-38), [1.0, 0.0])
    assert float(soft_q_learning_error(q, 0, 0.0, 1.0, q, 1.2e-38)) == 0.0


def test_bad_config_and_environment():
    key = jax.random.PRNGKey(0)
    env, _ = bellmax.make("GridWorld5x5-v0")
    with pytest.raises(TypeError, match="soft_q_learning takes a SoftQLearningConfig, got Q"):
        soft_q_learning(key, env, QLearningConfig())
    with pytest.raises(TypeError, match="q_learning takes a QLearningConfig, got SoftQ"):
        q_learning(key, env, SoftQLearningConfig())
    cartpole, _ = bellmax.make("CartPole-v1")
    with pytest.raises(TypeError, match=r"TabularEnvironment.*got CartPole"):
        soft_q_learning(key, cartpole)
    with pytest.raises(ValueError, match=r"SoftQLearningConfig\.alpha_decay must be a number >= 0"):
        SoftQLearningConfig(alpha_decay=1.5)
    with pytest.raises(ValueError, match=r"SoftQLearningConfig\.epsilon must be a number >= 0"):
        SoftQLearningConfig(epsilon=-0.1)
    with pytest.raises(ValueError, match=r"soft_q_learning\.num_runs must be an int >= 1"):
        soft_q_learning(key, env, num_runs=0)
