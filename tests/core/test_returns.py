"""Returns, lambda-returns and GAE against values computed by hand on tiny rollouts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.returns import Advantages, discounted_returns, gae, lambda_returns

# One environment, T = 5: the episode terminates at t = 1, a second one is truncated at
# t = 3 (bootstrap from the final observation's value 10), and the rollout ends at t = 4
# (bootstrap from next_values[4] = 4).
R = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
TERM = jnp.array([False, True, False, False, False])
TRUNC = jnp.array([False, False, False, True, False])
V = jnp.array([0.5, 1.0, 1.5, 2.0, 2.5])
NV = jnp.array([1.0, 7.0, 2.0, 10.0, 4.0])  # V(final_obs_t); 7 after a terminal is ignored
G, LAM = 0.5, 0.5


def _hand_gae():
    d = [1 + G * 1 - 0.5, 2 + 0 - 1.0, 3 + G * 2 - 1.5, 4 + G * 10 - 2.0, 5 + G * 4 - 2.5]
    a4 = d[4]
    a3 = d[3]  # truncated: no recursion past the episode end
    a2 = d[2] + G * LAM * a3
    a1 = d[1]  # terminated
    a0 = d[0] + G * LAM * a1
    return np.array([a0, a1, a2, a3, a4])


@pytest.mark.parametrize("jit", [False, True])
def test_gae_hand_computed_with_terminated_and_truncated_steps(jit):
    # Shows: deltas bootstrap from next_values except at terminals, and the recursion stops
    # at both kinds of episode end and at the rollout's end.
    f = jax.jit(gae, static_argnames=("gamma", "gae_lambda")) if jit else gae
    out = f(R, V, NV, TERM, TRUNC, gamma=G, gae_lambda=LAM)
    assert isinstance(out, Advantages)
    np.testing.assert_allclose(out.advantages, _hand_gae(), rtol=1e-6)
    np.testing.assert_allclose(out.returns, _hand_gae() + np.asarray(V), rtol=1e-6)


def test_gae_batched_over_envs_matches_each_column():
    # Shows: a [T, N] rollout is N independent [T] rollouts.
    rng = np.random.default_rng(0)
    r, v, nv = (jnp.asarray(rng.normal(size=(6, 3)), jnp.float32) for _ in range(3))
    term = jnp.asarray(rng.random((6, 3)) < 0.2)
    trunc = jnp.asarray(rng.random((6, 3)) < 0.2) & ~term
    both = gae(r, v, nv, term, trunc, gamma=0.9, gae_lambda=0.8)
    for i in range(3):
        one = gae(r[:, i], v[:, i], nv[:, i], term[:, i], trunc[:, i], gamma=0.9, gae_lambda=0.8)
        np.testing.assert_allclose(both.advantages[:, i], one.advantages, rtol=1e-5)


def test_gae_returns_equal_lambda_returns_when_values_are_consistent():
    # Shows: A + V is the lambda-return when next_values[t] = values[t + 1] inside episodes.
    v = jnp.array([0.5, 1.0, 1.5, 2.0, 2.5])
    nv = jnp.array([1.0, 7.0, 2.0, 10.0, 4.0])  # = v[t+1] where the episode goes on
    nv = nv.at[0].set(v[1]).at[2].set(v[3])
    out = gae(R, v, nv, TERM, TRUNC, gamma=G, gae_lambda=LAM)
    lam = lambda_returns(R, nv, TERM, TRUNC, gamma=G, lambda_=LAM)
    np.testing.assert_allclose(out.returns, lam, rtol=1e-6)


def test_discounted_returns_hand_computed():
    # Shows: Monte-Carlo returns restart after a terminal, bootstrap at a truncation and at the
    # rollout's end when next_values are given, and treat them as terminal otherwise.
    g = discounted_returns(R, TERM, TRUNC, gamma=G, next_values=NV)
    np.testing.assert_allclose(g, [1 + G * 2, 2, 3 + G * (4 + G * 10), 4 + G * 10, 5 + G * 4])
    g0 = discounted_returns(R, TERM, TRUNC, gamma=G)
    np.testing.assert_allclose(g0, [1 + G * 2, 2, 3 + G * 4, 4, 5])


def test_lambda_zero_is_one_step_td_target():
    # Shows: lambda = 0 gives r + gamma (1 - term) V(s').
    g = lambda_returns(R, NV, TERM, TRUNC, gamma=G, lambda_=0.0)
    np.testing.assert_allclose(g, R + G * (1 - TERM) * NV)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gamma": 1.5, "gae_lambda": 0.9}, "gamma"),
        ({"gamma": 0.9, "gae_lambda": -0.1}, "gae_lambda"),
    ],
)
def test_gae_rejects_out_of_range_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gae(R, V, NV, TERM, TRUNC, **kwargs)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="values has shape"):
        gae(R, V[:3], NV, TERM, TRUNC, gamma=0.9, gae_lambda=0.9)
    with pytest.raises(ValueError, match="lambda_"):
        lambda_returns(R, NV, TERM, TRUNC, gamma=0.9, lambda_=2.0)
    with pytest.raises(ValueError, match="time axis"):
        discounted_returns(jnp.float32(1.0), jnp.bool_(False), jnp.bool_(False), gamma=0.9)
