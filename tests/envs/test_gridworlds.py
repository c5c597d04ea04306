"""Grid worlds of Sutton & Barto: book values by linear solves and value iteration, the sampled
env against the exact MDP, Gymnasium's CliffWalking table, and the error paths (the shared
grid code lives in bellmax.envs._grid and is tested here)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs._grid import check_grid_params, grid_params, grid_transition
from bellmax.envs._tabular_tools import sample_model
from bellmax.envs.gridworlds import (
    CliffWalking,
    GridParams,
    GridWorld4x4,
    GridWorld5x5,
    WindyGridworld,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def random_policy_values(mdp):
    """v_pi of the equiprobable policy by a linear solve over the non-terminal states."""
    P, R = mdp.dense_P().mean(axis=1), mdp.R.mean(axis=1)
    nt = ~mdp.terminal
    v = np.zeros(mdp.num_states)
    A = np.eye(nt.sum()) - mdp.gamma * P[np.ix_(nt, nt)]
    v[nt] = np.linalg.solve(A, R[nt])
    return v


def value_iteration(mdp, tol=1e-12, max_iter=10_000):
    P, R, v = mdp.dense_P(), mdp.R, np.zeros(mdp.num_states)
    for _ in range(max_iter):
        new = (R + mdp.gamma * P @ v).max(axis=1)
        if np.abs(new - v).max() < tol:
            return new
        v = new
    raise AssertionError("value iteration did not converge")


@pytest.fixture(scope="module")
def mdps():
    envs = {
        "4x4": GridWorld4x4(),
        "5x5": GridWorld5x5(),
        "cliff": CliffWalking(),
        "windy": WindyGridworld(),
        "king+stay": WindyGridworld(king_moves=True, stay=True),
    }
    return {k: (env, env.tabular_mdp()) for k, env in envs.items()}


# ---------------------------------------------------------------------- book values
def test_gridworld4x4_random_policy_values_figure_4_1(mdps):
    env, mdp = mdps["4x4"]
    book = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]
    np.testing.assert_allclose(random_policy_values(mdp).reshape(env.grid_shape), book, atol=1e-6)
    assert mdp.gamma == 1.0 and np.flatnonzero(mdp.terminal).tolist() == [0, 15]
    np.testing.assert_allclose(mdp.initial, np.where(mdp.terminal, 0.0, 1 / 14))


def test_gridworld5x5_random_and_optimal_values_figures_3_2_and_3_5(mdps):
    _env, mdp = mdps["5x5"]
    v = random_policy_values(mdp).reshape(5, 5)
    book = [
        [3.3, 8.8, 4.4, 5.3, 1.5],
        [1.5, 3.0, 2.3, 1.9, 0.5],
        [0.1, 0.7, 0.7, 0.4, -0.4],
        [-1.0, -0.4, -0.4, -0.6, -1.2],
        [-1.9, -1.3, -1.2, -1.4, -2.0],
    ]
    np.testing.assert_allclose(v, book, atol=0.06)
    np.testing.assert_allclose(v[0], [3.3090, 8.7893, 4.4276, 5.3224, 1.4922], atol=1e-4)
    v_star = value_iteration(mdp).reshape(5, 5)
    assert v_star[0, 1] == pytest.approx(10 / (1 - 0.9**5), abs=1e-4)  # 24.4194
    book_star = [
        [22.0, 24.4, 22.0, 19.4, 17.5],
        [19.8, 22.0, 19.8, 17.8, 16.0],
        [17.8, 19.8, 17.8, 16.0, 14.4],
        [16.0, 17.8, 16.0, 14.4, 13.0],
        [14.4, 16.0, 14.4, 13.0, 11.7],
    ]
    np.testing.assert_allclose(v_star, book_star, atol=0.06)
    assert not mdp.terminal.any() and mdp.gamma == 0.9


@pytest.mark.parametrize(("which", "steps"), [("cliff", 13), ("windy", 15), ("king+stay", 7)])
def test_shortest_paths_by_value_iteration(mdps, which, steps):
    # Example 6.6: the optimal path along the cliff edge takes 13 steps; Example 6.5: 15
    # steps against the wind; Exercise 6.9: king's moves (with or without staying) cut it to 7.
    _env, mdp = mdps[which]
    v = value_iteration(mdp)
    assert v @ mdp.initial == pytest.approx(-steps)


def test_gridworld5x5_teleports_and_edges():
    env = GridWorld5x5()
    p = env.default_params
    move = jax.jit(env.transition)
    A, A2, B, B2 = (
        env.index_of((0, 1)),
        env.index_of((4, 1)),
        env.index_of((0, 3)),
        env.index_of((2, 3)),
    )
    for a in range(4):
        assert tuple(map(float, move(A, a, p))) == (A2, 10.0)
        assert tuple(map(float, move(B, a, p))) == (B2, 5.0)
    corner = env.index_of((4, 4))
    assert tuple(map(float, move(corner, DOWN, p))) == (corner, -1.0)
    assert tuple(map(float, move(corner, UP, p))) == (env.index_of((3, 4)), 0.0)


def test_cliff_walk_along_the_edge_and_fall():
    env, params = bellmax.make("CliffWalking-v0")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    assert env.cell_of(int(obs)) == (3, 0)
    key = jax.random.PRNGKey(1)
    _, fell, r, term, _, _ = env.step(key, state, RIGHT, params)
    assert int(fell.pos) == int(obs) and float(r) == -100.0 and not bool(term)
    total, done = 0.0, False
    for a in [UP] + [RIGHT] * 11 + [DOWN]:
        assert not done
        obs, state, r, done, _, _ = env.step(key, state, a, params)
        total += float(r)
    assert bool(done) and total == -13.0 and env.cell_of(int(obs)) == (3, 11)
    # a terminal cell absorbs with reward 0
    obs2, _state2, r2, done2, _, _ = env.step(key, state, LEFT, params)
    assert int(obs2) == int(obs) and float(r2) == 0.0 and bool(done2)


def test_wind_pushes_up_by_the_current_column():
    env = WindyGridworld()
    p = env.default_params
    # from (3, 6) (wind 2) moving right lands two rows up; from the top row it stays on the edge
    assert env.cell_of(int(env.transition(env.index_of((3, 6)), RIGHT, p)[0])) == (1, 7)
    assert env.cell_of(int(env.transition(env.index_of((0, 6)), RIGHT, p)[0])) == (0, 7)
    # the move and the wind add before clipping: down from the bottom row of a wind-1 column
    # stays put, down from the row above is cancelled by the wind
    assert env.cell_of(int(env.transition(env.index_of((6, 3)), DOWN, p)[0])) == (6, 3)
    assert env.cell_of(int(env.transition(env.index_of((5, 3)), DOWN, p)[0])) == (5, 3)
    king = WindyGridworld(king_moves=True, stay=True)
    assert king.num_actions == 9 and WindyGridworld().num_actions == 4
    assert env.cell_of(int(king.transition(king.index_of((3, 4)), 8, p)[0])) == (2, 4)  # stay
    assert env.cell_of(int(king.transition(king.index_of((3, 0)), 4, p)[0])) == (2, 1)  # up-right


def test_cliff_walking_matches_gymnasium_transition_table(mdps):
    gym = pytest.importorskip("gymnasium")
    table = gym.make("CliffWalking-v1").unwrapped.P
    _env, mdp = mdps["cliff"]
    P = mdp.dense_P()
    cliff = set(range(37, 47))
    for s in range(48):
        if s in cliff or mdp.terminal[s]:
            continue  # unreachable cliff cells; our goal absorbs
        for a in range(4):
            [(_prob, nxt, reward, terminated)] = table[s][a]
            assert P[s, a, nxt] == 1.0 and mdp.R[s, a] == reward
            assert bool(mdp.terminal[nxt]) == terminated


# ---------------------------------------------------------------------- sampled == exact
@pytest.mark.parametrize("which", ["4x4", "5x5", "cliff", "windy", "king+stay"])
def test_sampled_env_agrees_exactly_with_mdp(mdps, which):
    env, mdp = mdps[which]
    sampled = sample_model(env, env.default_params, mdp, jax.random.PRNGKey(0), num_samples=2)
    np.testing.assert_array_equal(sampled.P, mdp.dense_P())
    np.testing.assert_array_equal(sampled.R_mean, mdp.R)
    assert sampled.disagreements(mdp) == []


@pytest.mark.parametrize("which", ["4x4", "cliff"])
def test_reset_distribution_is_mdp_initial(mdps, which):
    env, mdp = mdps[which]
    n = 4000
    obs, state = jax.vmap(env.reset, (0, None))(
        jax.random.split(jax.random.PRNGKey(2), n), env.default_params
    )
    assert obs.dtype == jnp.int32 and obs.shape == (n,)
    np.testing.assert_array_equal(obs, jax.vmap(env.state_index)(state))
    freq = np.bincount(np.asarray(obs), minlength=mdp.num_states) / n
    p = mdp.initial
    assert np.all(np.abs(freq - p) <= 6 * np.sqrt(p * (1 - p) / n) + 1e-9)
    assert np.all(freq[p == 0] == 0)


def test_disagreements_reports_a_wrong_model(mdps):
    env, mdp = mdps["4x4"]
    sampled = sample_model(env, env.default_params, mdp, jax.random.PRNGKey(0), num_samples=8)
    wrong = mdp.replace(R=mdp.R - 1.0 * (np.arange(16)[:, None] == 5))
    msgs = sampled.disagreements(wrong)
    assert len(msgs) == 1 and "mean reward" in msgs[0] and "s=5" in msgs[0]
    P = mdp.dense_P().copy()
    P[6, 0] = np.roll(P[6, 0], 1)
    msgs = sampled.disagreements(mdp.replace(P=P))
    assert any("probability 0" in m for m in msgs) and any("P(s'=" in m for m in msgs)
    term = mdp.terminal.copy()
    term[4] = True
    assert any("terminated" in m for m in sampled.disagreements(mdp.replace(terminal=term)))


def test_truncation_of_the_continuing_gridworld():
    env, params = bellmax.make("GridWorld5x5-v0", max_steps_in_episode=3)
    _, state = env.reset(jax.random.PRNGKey(0), params)
    truncs = []
    for t in range(3):
        _, state, _, term, trunc, _ = env.step(jax.random.PRNGKey(t), state, t % 4, params)
        truncs.append(bool(trunc))
        assert not bool(term)
    assert truncs == [False, False, True]


def test_spaces_registry_and_cells():
    for env_id, cls, shape in [
        ("GridWorld4x4-v0", GridWorld4x4, (4, 4)),
        ("GridWorld5x5-v0", GridWorld5x5, (5, 5)),
        ("CliffWalking-v0", CliffWalking, (4, 12)),
        ("WindyGridworld-v0", WindyGridworld, (7, 10)),
    ]:
        env, params = bellmax.make(env_id)
        assert isinstance(env, cls) and env.name == env_id and env.grid_shape == shape
        S = shape[0] * shape[1]
        assert env.observation_space(params).n == S and env.action_space(params).n == 4
        for s in (0, S - 1, shape[1] + 1):
            assert env.index_of(env.cell_of(s)) == s
        assert int(env.state_index(env.state_from_index(S - 1))) == S - 1


def test_grid_transition_jits_and_clips_actions():
    env = GridWorld4x4()
    p = env.default_params
    f = jax.jit(lambda s, a: grid_transition(s, a, p, env.grid_shape, env.moves))
    assert int(f(5, 7)[0]) == int(f(5, LEFT)[0]) == 4  # out-of-range actions clip to the last
    assert int(f(5, -1)[0]) == int(f(5, UP)[0]) == 1


# ---------------------------------------------------------------------- errors
def test_windy_constructor_rejects_non_bool_flags():
    with pytest.raises(TypeError, match="king_moves"):
        WindyGridworld(king_moves="yes")
    with pytest.raises(TypeError, match="stay"):
        WindyGridworld(stay=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"wind": [0, -1, 0]}, ValueError, "wind strengths must be >= 0"),
        ({"wind": [0, 1]}, ValueError, r"one entry per column, shape \(3,\)"),
        ({"wind": [0, 0.5, 0]}, ValueError, "whole numbers"),
        ({"terminals": [(3, 0)]}, ValueError, "outside the 2x3 grid"),
        ({"terminals": [(0, 0)], "start": (0, 0)}, ValueError, "terminal cell"),
        ({"terminals": [5]}, TypeError, r"\(row, col\) pair"),
        ({"cliffs": [(1, 1)]}, ValueError, "cliff_to"),
        ({"cliffs": [(1, 1), (1, 2)], "cliff_to": (1, 2)}, ValueError, "another cliff"),
        ({"teleports": {(0, 0): (1, 1, 1)}}, TypeError, "destination_cell, reward"),
        ({"gamma": 1.5}, ValueError, r"gamma must be a finite number in \[0, 1\]"),
        ({"max_steps_in_episode": 0}, ValueError, "max_steps_in_episode"),
        ({"step_reward": float("nan")}, ValueError, "step_reward must be a finite number"),
        (
            {"terminals": [(r, c) for r in range(2) for c in range(3)]},
            ValueError,
            "leave at least one",
        ),
    ],
)
def test_grid_params_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        grid_params((2, 3), **kwargs)


def test_check_params_errors():
    env = CliffWalking()
    p = env.default_params
    with pytest.raises(ValueError, match="start must be a probability vector"):
        env.tabular_mdp(p.replace(start=np.ones(48)))
    with pytest.raises(ValueError, match="teleport_to entries"):
        env.check_params(p.replace(teleport_to=np.full(48, 99)))
    with pytest.raises(ValueError, match="teleport_reward must be finite"):
        env.check_params(p.replace(teleport_reward=np.full(48, np.inf)))
    with pytest.raises(ValueError, match=r"shape \(48,\)"):
        env.check_params(GridWorld4x4().default_params)  # a 4x4 layout on the 4x12 grid
    with pytest.raises(ValueError, match="missing"):
        env.check_params(GridParams())
    with pytest.raises(TypeError, match="shape must be"):
        check_grid_params(p, 48)
    with pytest.raises(ValueError, match="rows >= 1"):
        grid_params((0, 3))
    with pytest.raises(ValueError, match="outside the 4x12 grid"):
        env.index_of((4, 0))


def test_traced_params_are_not_checked_but_tabular_mdp_needs_concrete_ones():
    env = GridWorld4x4()
    assert int(jax.jit(lambda p: env.check_params(p) or 0)(env.default_params)) == 0
    with pytest.raises(TypeError, match="needs concrete parameters"):
        jax.jit(lambda p: env.tabular_mdp(p).R)(env.default_params)
    with pytest.raises(ValueError, match=r"GridParams\.gamma must be a finite number in \[0, 1\]"):
        env.check_params(env.default_params.replace(gamma=-0.1))


def test_make_checks_overrides():
    with pytest.raises(ValueError, match="wind strengths must be >= 0"):
        bellmax.make("WindyGridworld-v0", wind=np.array([0, 0, 0, 1, 1, 1, 2, -2, 1, 0]))
    with pytest.raises(ValueError, match="gamma"):
        bellmax.make("GridWorld5x5-v0", gamma=1.2)
