"""Transition and Trajectory pytrees."""

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core import Trajectory, Transition


def make_traj(T=4):
    return Trajectory(
        obs=jnp.arange(T, dtype=jnp.float32)[:, None],
        action=jnp.arange(T) % 2,
        reward=jnp.ones(T),
        terminated=jnp.array([False, False, True, False])[:T],
        truncated=jnp.array([False, True, False, False])[:T],
        next_obs=jnp.arange(1, T + 1, dtype=jnp.float32)[:, None],
    )


def test_trajectory_to_transitions_and_flags():
    traj = make_traj()
    tr = traj.transitions()
    assert isinstance(tr, Transition)
    assert traj.length == 4
    np.testing.assert_array_equal(tr.done_t, [False, True, True, False])
    # bootstrap everywhere except at the true terminal (a truncation still bootstraps)
    np.testing.assert_array_equal(tr.discount_t, [1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(tr.obs_t[:, 0], [1, 2, 3, 4])


def test_pytrees_vmap_and_jit():
    traj = make_traj()
    batched = jax.tree.map(lambda x: jnp.stack([x, x]), traj)
    total = jax.jit(jax.vmap(lambda t: t.reward.sum()))(batched)
    np.testing.assert_array_equal(total, [4.0, 4.0])
