"""Networks: shapes, orthogonal initialisation, heads, and observation flattening."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.errors import UnknownNameError
from bellmax.deep.distributions import Categorical, DiagGaussian
from bellmax.deep.networks import (
    MLP,
    ActorCritic,
    QNetwork,
    check_hidden_sizes,
    flatten_obs,
    obs_size,
)
from bellmax.envs import spaces

X = jnp.ones((5, 4))


def test_mlp_shapes_and_orthogonal_hidden_weights():
    net = MLP((32, 16), "relu", output_size=3)
    params = net.init(jax.random.key(0), X)
    assert net.apply(params, X).shape == (5, 3)
    w = np.asarray(params["params"]["Dense_0"]["kernel"])  # [4, 32]: orthonormal rows * sqrt 2
    np.testing.assert_allclose(w @ w.T, 2.0 * np.eye(4), atol=1e-5)
    assert np.all(np.asarray(params["params"]["Dense_0"]["bias"]) == 0)


def test_vmapped_init_factorises_one_matrix_at_a_time():
    """Initialising a network vmapped over seeds draws what one seed at a time draws, and its
    compiled program has no batched LAPACK QR: jaxlib 0.10's batched LAPACK kernels wait on
    the thread pool they run on, and two at once hung 2-core machines (networks.orthogonal)."""
    net = ActorCritic(action_dim=3, discrete=True, hidden_sizes=(64, 64))
    keys = jax.random.split(jax.random.key(0), 4)
    init = jax.jit(jax.vmap(lambda k: net.init(k, X)))
    batched = init(keys)
    for i in range(len(keys)):
        one = net.init(keys[i], X)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(one), strict=True):
            np.testing.assert_array_equal(a[i], b)
    hlo = init.lower(keys).compile().as_text()
    qr_calls = [line for line in hlo.splitlines() if 'custom_call_target="lapack_' in line]
    assert qr_calls, "expected the orthogonal initialiser's LAPACK QR in the program"
    for line in qr_calls:  # one matrix per call, in the loop of sequential_vmap
        assert 'num_batch_dims="0"' in line, line


def test_actor_critic_discrete_separate_torsos():
    net = ActorCritic(action_dim=3, discrete=True, hidden_sizes=(16,))
    params = net.init(jax.random.key(0), X)
    dist, value = net.apply(params, X)
    assert isinstance(dist, Categorical) and dist.logits.shape == (5, 3)
    assert value.shape == (5,)
    # The policy head starts with gain 0.01: an almost uniform first policy.
    assert float(jnp.max(jnp.abs(dist.logits))) < 0.1
    np.testing.assert_allclose(net.apply(params, X, method="value"), value, rtol=1e-6)
    np.testing.assert_allclose(net.apply(params, X, method="policy").logits, dist.logits)
    assert {"actor_torso", "critic_torso"} <= set(params["params"])


def test_actor_critic_gaussian_shared_torso():
    net = ActorCritic(action_dim=2, discrete=False, shared_torso=True, log_std_init=-0.5)
    params = net.init(jax.random.key(1), X)
    dist, value = net.apply(params, X)
    assert isinstance(dist, DiagGaussian) and dist.mean.shape == (5, 2)
    np.testing.assert_allclose(params["params"]["log_std"], [-0.5, -0.5])
    assert "torso" in params["params"] and "actor_torso" not in params["params"]
    assert value.shape == (5,)


def test_qnetwork_outputs_one_value_per_action():
    net = QNetwork(num_actions=4, hidden_sizes=(8, 8))
    params = net.init(jax.random.key(2), X)
    assert net.apply(params, X).shape == (5, 4)


def test_flatten_obs_box_discrete_multidiscrete():
    box = spaces.Box(-1, 1, (2, 3))
    x = flatten_obs(jnp.ones((7, 2, 3)), box)
    assert x.shape == (7, 6) and x.dtype == jnp.float32 and obs_size(box) == 6
    d = flatten_obs(jnp.array([0, 2]), spaces.Discrete(3))
    np.testing.assert_allclose(d, [[1, 0, 0], [0, 0, 1]])
    assert obs_size(spaces.Discrete(3)) == 3
    md = spaces.MultiDiscrete([2, 3])
    np.testing.assert_allclose(flatten_obs(jnp.array([[1, 2]]), md), [[0, 1, 0, 0, 1]])
    assert obs_size(md) == 5


def test_bad_network_settings_raise_clear_errors():
    with pytest.raises(UnknownNameError, match="activation 'tanhh'"):
        MLP((4,), "tanhh").init(jax.random.key(0), X)
    with pytest.raises(UnknownNameError, match="Known: elu, gelu, leaky_relu, relu, silu, tanh"):
        MLP((4,), "bogus").init(jax.random.key(0), X)
    with pytest.raises(ValueError, match=r"hidden_sizes\[1\] must be an int >= 1, got 0"):
        check_hidden_sizes((64, 0))
    with pytest.raises(TypeError, match="hidden_sizes must be a tuple of ints"):
        check_hidden_sizes("64")
    assert check_hidden_sizes([64, 32]) == (64, 32)
