"""Categorical and diagonal-Gaussian distributions against closed forms and sampling."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.deep.distributions import (
    Categorical,
    DiagGaussian,
    action_space_kind,
    clip_to_space,
)
from bellmax.envs import spaces


def test_categorical_log_prob_entropy_mode_hand_computed():
    p = np.array([0.2, 0.3, 0.5])
    d = Categorical(jnp.log(jnp.asarray(p)) + 3.0)  # unnormalised logits
    np.testing.assert_allclose(d.log_prob(jnp.array(1)), math.log(0.3), rtol=1e-6)
    np.testing.assert_allclose(d.entropy(), -np.sum(p * np.log(p)), rtol=1e-6)
    assert int(d.mode()) == 2


def test_categorical_samples_follow_the_probabilities():
    # Shows: sample() draws from softmax(logits), batched over leading axes.
    p = np.array([0.1, 0.6, 0.3])
    d = Categorical(jnp.broadcast_to(jnp.log(jnp.asarray(p)), (20_000, 3)))
    a = d.sample(jax.random.key(0))
    assert a.shape == (20_000,) and a.dtype == jnp.int32
    np.testing.assert_allclose(np.bincount(np.asarray(a), minlength=3) / 20_000, p, atol=0.015)


def test_gaussian_log_prob_and_entropy_match_closed_form():
    mean, log_std = jnp.array([[0.5, -1.0]]), jnp.array([0.0, math.log(2.0)])
    d = DiagGaussian(mean, log_std)
    a = jnp.array([[1.5, 1.0]])
    # log N(1.5; 0.5, 1) + log N(1.0; -1, 2)
    want = (-0.5 * 1.0 - 0.5 * math.log(2 * math.pi)) + (
        -0.5 * 1.0 - math.log(2.0) - 0.5 * math.log(2 * math.pi)
    )
    np.testing.assert_allclose(d.log_prob(a), [want], rtol=1e-6)
    want_h = 0.5 * math.log(2 * math.pi * math.e) * 2 + math.log(2.0)
    np.testing.assert_allclose(d.entropy(), [want_h], rtol=1e-6)
    np.testing.assert_allclose(d.mode(), mean)


def test_gaussian_samples_have_the_right_moments():
    d = DiagGaussian(
        jnp.zeros((50_000, 2)) + jnp.array([1.0, -2.0]), jnp.log(jnp.array([0.5, 3.0]))
    )
    x = np.asarray(d.sample(jax.random.key(1)))
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(x.std(0), [0.5, 3.0], rtol=0.03)


def test_action_space_kind_and_errors():
    assert action_space_kind(spaces.Discrete(3), algorithm="X") == (True, 3)
    assert action_space_kind(spaces.Box(-1, 1, (2, 3)), algorithm="X") == (False, 6)
    with pytest.raises(TypeError, match="PPO supports Discrete and Box action spaces; got"):
        action_space_kind(spaces.MultiDiscrete([2, 3]), algorithm="PPO")
    with pytest.raises(TypeError, match="DQN supports Discrete action spaces; got Box"):
        action_space_kind(spaces.Box(-1, 1, (1,)), algorithm="DQN", allow_box=False)


def test_clip_to_space_clips_box_and_passes_discrete():
    box = spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, np.inf]))
    out = clip_to_space(jnp.array([[-3.0, 5.0], [0.5, -2.0]]), box)
    np.testing.assert_allclose(out, [[-1.0, 5.0], [0.5, 0.0]])
    one = clip_to_space(jnp.array([[3.0], [-0.5]]), spaces.Box(-2.0, 2.0, ()))
    assert one.shape == (2,)
    np.testing.assert_allclose(one, [2.0, -0.5])
    a = jnp.array([0, 2])
    assert clip_to_space(a, spaces.Discrete(3)) is a
