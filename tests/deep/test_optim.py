"""Optimisers and schedules: they minimise a quadratic, clip gradients, and reject bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bellmax.core.errors import UnknownNameError
from bellmax.deep.optim import constant_schedule, linear_schedule, make_optimizer


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizers_minimise_a_quadratic(name):
    tx = make_optimizer(name, 0.05, max_grad_norm=1.0)
    x = jnp.array([3.0, -2.0])
    state = tx.init(x)
    for _ in range(300):
        upd, state = tx.update(2 * x, state, x)
        x = optax.apply_updates(x, upd)
    assert float(jnp.max(jnp.abs(x))) < 0.05


def test_grad_norm_clipping_limits_the_first_sgd_step():
    # Shows: a gradient of norm 50 is scaled to norm 0.5 before SGD (no momentum yet).
    tx = make_optimizer("sgd", 1.0, max_grad_norm=0.5, momentum=0.0)
    g = jnp.array([30.0, 40.0])
    upd, _ = tx.update(g, tx.init(g))
    np.testing.assert_allclose(upd, [-0.3, -0.4], rtol=1e-6)


def test_linear_schedule_and_schedule_as_learning_rate():
    s = linear_schedule(1.0, 0.0, 10)
    np.testing.assert_allclose([s(0), s(5), s(10), s(20)], [1.0, 0.5, 0.0, 0.0], atol=1e-7)
    assert float(constant_schedule(0.3)(7)) == pytest.approx(0.3)
    tx = make_optimizer("sgd", s, momentum=0.0)
    x = jnp.array([1.0])
    st = tx.init(x)
    u0, st = tx.update(x, st)
    u1, st = tx.update(x, st)
    np.testing.assert_allclose([u0[0], u1[0]], [-1.0, -0.9], rtol=1e-6)


def test_bad_optimizer_input_raises_clear_errors():
    with pytest.raises(UnknownNameError, match=r"optimizer 'adm'.*adam"):
        make_optimizer("adm", 1e-3)
    with pytest.raises(ValueError, match=r"learning_rate must be a number > 0, got -0\.1"):
        make_optimizer("adam", -0.1)
    with pytest.raises(TypeError, match="learning_rate must be a number, got str"):
        make_optimizer("adam", "1e-3")
    with pytest.raises(ValueError, match="max_grad_norm"):
        make_optimizer("adam", 1e-3, max_grad_norm=0.0)
    with pytest.raises(ValueError, match="momentum"):
        make_optimizer("sgd", 1e-3, momentum=1.0)
    with pytest.raises(ValueError, match="transition_steps must be an int >= 1, got 0"):
        linear_schedule(1.0, 0.0, 0)
    with pytest.raises(TypeError, match="transition_steps must be an int"):
        linear_schedule(1.0, 0.0, 2.5)


def test_traced_learning_rate_and_momentum():
    # hyperparameters as data: one jitted SGD step, vmapped over (lr, momentum) pairs,
    # by hand: the first step with momentum is -lr * grad
    def step(lr, mom):
        tx = make_optimizer("sgd", lr, momentum=mom, max_grad_norm=jnp.float32(10.0))
        params = jnp.array([1.0, 2.0])
        updates, _ = tx.update(jnp.array([0.5, -1.0]), tx.init(params), params)
        return updates

    out = jax.jit(jax.vmap(step))(jnp.array([0.1, 0.2]), jnp.array([0.0, 0.9]))
    np.testing.assert_allclose(out, [[-0.05, 0.1], [-0.1, 0.2]], rtol=1e-6)
