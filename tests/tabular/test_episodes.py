"""The shared pieces of the tabular learners: action selection and the hash-based randomness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.tabular.episodes import (
    epsilon_greedy_probs,
    greedy_action,
    hash_uniform,
    random_action,
    sample_action,
)

KEYS = jax.random.split(jax.random.PRNGKey(0), 4000)


def test_greedy_breaks_ties_uniformly_and_respects_masks():
    q = jnp.array([1.0, 3.0, 3.0, 0.0, 3.0])
    picks = np.asarray(jax.vmap(lambda k: greedy_action(k, q))(KEYS))
    counts = np.bincount(picks, minlength=5)
    assert counts[0] == counts[3] == 0
    assert np.all(np.abs(counts[[1, 2, 4]] / len(KEYS) - 1 / 3) < 0.04)  # 4 sigma is ~0.03
    masked = np.asarray(
        jax.vmap(lambda k: greedy_action(k, q, jnp.array([1, 0, 0, 1, 0], bool)))(KEYS)
    )
    assert set(masked.tolist()) == {0}


def test_epsilon_greedy_probs_by_hand():
    p = epsilon_greedy_probs(jnp.array([0.0, 2.0, 2.0, 1.0]), 0.2)
    np.testing.assert_allclose(p, [0.05, 0.45, 0.45, 0.05], rtol=1e-6)
    p = epsilon_greedy_probs(jnp.array([0.0, 2.0, 5.0]), 0.3, jnp.array([True, True, False]))
    np.testing.assert_allclose(p, [0.15, 0.85, 0.0], rtol=1e-6)


def test_sample_and_random_action_frequencies():
    probs = jnp.array([0.1, 0.0, 0.6, 0.3])
    picks = np.asarray(jax.vmap(lambda k: sample_action(k, probs))(KEYS))
    np.testing.assert_allclose(np.bincount(picks, minlength=4) / len(KEYS), probs, atol=0.035)
    r = np.asarray(jax.vmap(lambda k: random_action(k, 3))(KEYS))
    np.testing.assert_allclose(np.bincount(r, minlength=3) / len(KEYS), 1 / 3, atol=0.035)


def test_hash_uniform_is_uniform_and_deterministic():
    u = np.asarray(jax.vmap(lambda k: hash_uniform(k, 8))(KEYS[:1000])).ravel()
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    np.testing.assert_array_equal(hash_uniform(KEYS[0], 8), hash_uniform(KEYS[0], 8))
    assert not np.array_equal(hash_uniform(KEYS[0], 8), hash_uniform(KEYS[1], 8))


@pytest.mark.parametrize("eps", [0.0, 1.0])
def test_epsilon_extremes_sum_to_one(eps):
    p = epsilon_greedy_probs(jnp.array([3.0, 1.0, 2.0]), eps)
    assert float(p.sum()) == pytest.approx(1.0)
