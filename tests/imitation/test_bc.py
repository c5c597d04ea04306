"""Behaviour cloning's fit and the policy file it writes (small exact problems)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bellmax import load_policy
from bellmax.envs import spaces
from bellmax.imitation import (
    BCConfig,
    act,
    fit,
    init_bc,
    set_normalization,
    to_policy,
    write_policy,
)

OBS = spaces.Box(-1.0, 1.0, (2,), np.float32)
CONFIG = BCConfig(hidden_sizes=(16,), steps=300, learning_rate=1e-2)


def _quadrants(n: int = 64):
    x = np.random.default_rng(0).uniform(-1, 1, (n, 2)).astype(np.float32)
    return x, (2 * (x[:, 0] > 0) + (x[:, 1] > 0)).astype(np.int32)


def test_fit_learns_a_separable_labelling_and_ignores_the_padding(tmp_path):
    x, y = _quadrants()
    # padding rows with wrong labels: fit must never draw them
    xp = np.concatenate([x, np.zeros((64, 2), np.float32)])
    yp = np.concatenate([y, np.full(64, 3, np.int32)])
    space = spaces.Discrete(4)
    state = init_bc(jax.random.key(0), CONFIG, OBS, space)
    state = set_normalization(state, 3.0 * x + 1.0, OBS)  # a standardisation to fold away
    assert np.asarray(state.params["obs_shift"]) == pytest.approx(3 * x.mean(0) + 1, abs=1e-5)
    state, loss = fit(state, jax.random.key(1), xp, yp, 64, CONFIG, OBS, space)
    assert float(loss) < 0.3
    pred = act(state.params, x, CONFIG, OBS, space)
    assert (pred == y).mean() > 0.95
    # the written file (standardisation folded into its first layer) acts exactly as the
    # learner does, through bellmax.load_policy
    write_policy(tmp_path / "policy.msgpack", state.params, CONFIG, OBS, space, algorithm="dagger")
    policy = load_policy(tmp_path / "policy.msgpack")
    assert policy.algorithm == "dagger"
    np.testing.assert_array_equal(policy.predict(x), pred)
    np.testing.assert_array_equal(to_policy(state.params, CONFIG, OBS, space).predict(x), pred)


@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_continuous_actions_regress_the_mean(loss):
    x = np.random.default_rng(1).uniform(-1, 1, (64, 2)).astype(np.float32)
    y = (0.5 * x[:, :1] - 0.25 * x[:, 1:]).astype(np.float32)
    space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    config = BCConfig(hidden_sizes=(16,), steps=400, learning_rate=1e-2, loss=loss)
    state = init_bc(jax.random.key(0), config, OBS, space)
    log_std0 = np.asarray(state.params["log_std"]).copy()
    state, _ = fit(state, jax.random.key(1), x, y, 64, config, OBS, space)
    pred = act(state.params, x, config, OBS, space)
    assert pred.shape == (64, 1)
    assert np.abs(pred - y).max() < 0.1
    moved = not np.allclose(np.asarray(state.params["log_std"]), log_std0)
    assert moved == (loss == "nll")  # MSE keeps the log-std; the NLL learns it
    np.testing.assert_allclose(
        to_policy(state.params, config, OBS, space).predict(x), pred, atol=1e-6
    )


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"BCConfig.steps must be an int >= 1"):
        BCConfig(steps=0)
    with pytest.raises(ValueError, match=r"BCConfig.loss must be one of 'mse', 'nll'"):
        BCConfig(loss="l1")
