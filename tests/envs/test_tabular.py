"""The TabularEnvironment contract, checked on every registered tabular world."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.core import TabularMDP
from bellmax.envs import registry
from bellmax.envs.tabular import TabularEnvironment

TABULAR = [i for i in registry.registered() if registry.spec(i).tabular]


def test_the_registry_marks_the_book_worlds_tabular():
    assert set(TABULAR) == {
        "GridWorld4x4-v0",
        "GridWorld5x5-v0",
        "CliffWalking-v0",
        "WindyGridworld-v0",
        "GamblersProblem-v0",
        "JacksCarRental-v0",
        "Blackjack-v0",
        "RandomWalk-v0",
        "MaximizationBias-v0",
    }


@pytest.mark.parametrize("env_id", TABULAR)
def test_contract(env_id):
    env, params = bellmax.make(env_id)
    assert isinstance(env, TabularEnvironment)
    mdp = env.tabular_mdp(params)
    assert isinstance(mdp, TabularMDP)  # construction validated it
    S = mdp.num_states
    assert mdp.num_actions == env.action_space(params).n
    # state_from_index and state_index are inverse on every state
    idx = jnp.arange(S)
    back = jax.vmap(lambda s: env.state_index(env.state_from_index(s)))(idx)
    np.testing.assert_array_equal(np.asarray(back), np.arange(S))
    # reset lands on a state the MDP's start distribution allows
    _, state = jax.vmap(env.reset, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(0), 64), params
    )
    starts = np.asarray(jax.vmap(env.state_index)(state))
    assert mdp.initial is not None and np.all(np.asarray(mdp.initial)[starts] > 0)
    if env.grid_shape is not None:
        rows, cols = env.grid_shape
        cells = {env.cell_of(s) for s in range(S) if mdp.terminal is None or s < rows * cols}
        assert all(0 <= r < rows and 0 <= c < cols for r, c in cells)


def test_base_methods_are_abstract():
    env = TabularEnvironment()
    with pytest.raises(NotImplementedError):
        env.tabular_mdp()
    with pytest.raises(NotImplementedError):
        env.state_from_index(0)
    with pytest.raises(NotImplementedError, match="not drawn on a grid"):
        env.cell_of(0)
