"""Jack's car rental: rows against a brute-force enumeration with scipy's Poisson, policy
iteration against the book (Figure 4.2), the sampled env against the exact MDP, and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bellmax
from bellmax.envs._tabular_tools import sample_model
from bellmax.envs.jacks import JacksCarRental, JacksParams


@pytest.fixture(scope="module")
def world():
    env = JacksCarRental()
    return env, env.tabular_mdp()


def brute_force_row(n1, n2, move, p: JacksParams, max_cars=20, support=40):
    """P[(n1, n2), move, :] and R by enumerating requests and returns up to `support`."""
    m = max(-n2, min(move, n1))
    c1, c2 = min(n1 - m, max_cars), min(n2 + m, max_cars)
    row = np.zeros((max_cars + 1, max_cars + 1))
    reward = -p.move_cost * abs(m)
    k = np.arange(support)
    pmf = {lam: stats.poisson.pmf(k, lam) for lam in (3.0, 4.0, 2.0)}
    for q1, rq1 in zip(k, pmf[3.0], strict=True):
        for q2, rq2 in zip(k, pmf[4.0], strict=True):
            r1, r2 = min(q1, c1), min(q2, c2)
            reward += rq1 * rq2 * p.rental_reward * (r1 + r2)
            e1 = np.minimum(c1 - r1 + k, max_cars)
            e2 = np.minimum(c2 - r2 + k, max_cars)
            np.add.at(row, (e1[:, None], e2[None, :]), rq1 * rq2 * np.outer(pmf[3.0], pmf[2.0]))
    return row.ravel(), reward


@pytest.mark.parametrize(("n1", "n2", "move"), [(7, 12, 3), (20, 0, 5), (2, 19, -5), (0, 0, 0)])
def test_rows_match_brute_force_enumeration(world, n1, n2, move):
    env, mdp = world
    s, a = n1 * 21 + n2, move + 5
    row, reward = brute_force_row(n1, n2, move, env.default_params)
    np.testing.assert_allclose(mdp.dense_P()[s, a], row, atol=1e-12)
    assert mdp.R[s, a] == pytest.approx(reward, abs=1e-9)


def test_rows_sum_to_one_and_structure(world):
    env, mdp = world
    P = mdp.dense_P()
    assert P.shape == (441, 11, 441) and mdp.gamma == 0.9
    np.testing.assert_allclose(P.sum(axis=2), 1.0, atol=1e-12)
    assert not mdp.terminal.any()
    np.testing.assert_allclose(mdp.initial, 1 / 441)
    # infeasible moves are copies of the largest feasible one (cost on cars actually moved)
    mask = env.valid_actions()
    s = 3 * 21 + 1  # (3, 1): feasible moves -1 .. 3
    assert mask[s].tolist() == [False] * 4 + [True] * 5 + [False] * 2
    np.testing.assert_array_equal(P[s, 9], P[s, 8])
    np.testing.assert_array_equal(P[s, 0], P[s, 4])
    assert mdp.R[s, 10] == mdp.R[s, 8] and mdp.R[s, 0] == mdp.R[s, 4]


def test_policy_iteration_figure_4_2(world):
    env, mdp = world
    P, R, S = mdp.dense_P(), mdp.R, mdp.num_states
    mask = env.valid_actions()
    policy = np.full(S, env.max_move)  # move nothing
    improvements = 0
    while True:
        rows = np.arange(S)
        v = np.linalg.solve(np.eye(S) - mdp.gamma * P[rows, policy], R[rows, policy])
        q = np.where(mask, R + mdp.gamma * P @ v, -np.inf)
        keep = q[rows, policy] >= q.max(axis=1) - 1e-9  # keep the old action on ties
        new = np.where(keep, policy, q.argmax(axis=1))
        if np.array_equal(new, policy):
            break
        policy, improvements = new, improvements + 1
        assert improvements < 10
    assert improvements == 4
    assert v[0] == pytest.approx(421.4, abs=0.06) and v[-1] == pytest.approx(637.0, abs=0.06)
    assert v.min() == v[0] and v.max() == v[-1]
    moves = (policy - env.max_move).reshape(21, 21)  # [n1, n2]
    assert moves[20, 0] == 5 and moves[0, 20] < 0 and moves[10, 10] == 0


def test_exercise_4_7_costs(world):
    env, base = world
    p = env.default_params.replace(free_moves=1, parking_cost=4.0)
    overnight = jax.jit(env.overnight)
    for (n1, n2, move), expected in [
        ((5, 5, 1), 0.0),  # one free shuttle
        ((5, 5, 3), 4.0),  # two paid
        ((5, 5, -1), 2.0),  # the free shuttle only goes 1 -> 2
        ((15, 3, 0), 4.0),  # 15 > 10 cars parked at location 1
        ((15, 15, 0), 8.0),
        ((10, 10, 1), 4.0),  # free move, but location 2 then keeps 11
    ]:
        _c1, _c2, cost = overnight(n1, n2, move + 5, p)
        assert float(cost) == expected
    assert float(overnight(10, 10, 6, env.default_params)[2]) == 2.0
    mdp = env.tabular_mdp(p)
    s = 10 * 21 + 10
    assert mdp.R[s, 6] == pytest.approx(base.R[s, 6] + 2.0 - 4.0)  # free move, parking at 11
    np.testing.assert_allclose(mdp.dense_P(), base.dense_P())


def test_sampled_env_agrees_with_mdp():
    # A small lot (the same code; the full-size model is checked by enumeration above), with
    # Exercise 4.7's costs switched on so every term of the reward is exercised.
    env = JacksCarRental(max_cars=5, max_move=2)
    params = env.default_params.replace(free_moves=1, parking_limit=3, parking_cost=4.0)
    mdp = env.tabular_mdp(params)
    assert mdp.shape == (36, 5)
    sampled = sample_model(env, params, mdp, jax.random.PRNGKey(0), num_samples=3000)
    assert sampled.disagreements(mdp) == []
    # the same samples contradict a model with other demand
    other = env.tabular_mdp(params.replace(request_mean_2=3.5))
    assert sampled.disagreements(other)


def test_reset_step_registry_and_cells():
    env, params = bellmax.make("JacksCarRental-v0")
    assert isinstance(env, JacksCarRental) and env.grid_shape == (21, 21)
    assert env.observation_space().n == 441 and env.action_space().n == 11
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert obs.dtype == jnp.int32 and int(obs) == int(env.state_index(state))
    assert env.cell_of(int(obs)) == (int(state.cars_1), int(state.cars_2))
    s = env.state_from_index(5 * 21 + 17)
    assert (int(s.cars_1), int(s.cars_2)) == (5, 17) and env.cell_of(5 * 21 + 17) == (5, 17)
    _, s2, r, term, trunc, _ = env.step(
        jax.random.PRNGKey(1), s, 10, params
    )  # ask +5, only 5 there
    assert not bool(term) and not bool(trunc) and 0 <= int(s2.cars_1) <= 20
    assert float(r) % 10 == 0  # rentals minus 5 moved cars at $2 -> a multiple of 10


def test_bad_constructor_and_params():
    with pytest.raises(ValueError, match="max_cars must be an int >= 1"):
        JacksCarRental(max_cars=0)
    with pytest.raises(ValueError, match="max_move must be an int >= 0"):
        JacksCarRental(max_move=-1)
    with pytest.raises(TypeError, match="must be an int"):
        JacksCarRental(max_cars=20.0)
    env = JacksCarRental(max_cars=3, max_move=1)
    with pytest.raises(ValueError, match="request_mean_1 must be a finite number >= 0"):
        env.tabular_mdp(JacksParams(request_mean_1=-3.0))
    with pytest.raises(ValueError, match="move_cost"):
        env.tabular_mdp(JacksParams(move_cost=float("inf")))
    with pytest.raises(ValueError, match="free_moves must be a whole number"):
        env.tabular_mdp(JacksParams(free_moves=0.5))
    with pytest.raises(ValueError, match=r"gamma must be a finite number in \[0, 1\).*continuing"):
        env.tabular_mdp(JacksParams(gamma=1.0))
