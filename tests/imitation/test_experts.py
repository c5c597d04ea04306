"""Experts and their checks: hand-made inputs, exact answers (LQR's gain, the solver's moves)."""

from __future__ import annotations

import numpy as np
import pytest

from bellmax.control import cartpole_balance, make_lqr_controller
from bellmax.envs import spaces
from bellmax.envs.cartpole import CartPoleParams
from bellmax.imitation import (
    ExpertError,
    FunctionExpert,
    import_expert,
    label,
    lqr_expert,
    perfect_expert,
)

DISCRETE = spaces.Discrete(2)
BOX = spaces.Box(-1.0, 1.0, (1,), np.float32)
OBS = np.array([[0.0, 0.0, 0.05, 0.0], [0.0, 0.0, -0.05, 0.0], [0.1, 0.2, 0.0, 0.3]], np.float32)


def test_a_batched_function_labels_every_row():
    a, given = label(lambda o: (o[:, 2] > 0).astype(int), OBS, DISCRETE)
    assert a.tolist() == [1, 0, 0] and given.all() and a.dtype == np.int32


def test_a_function_of_one_observation_is_not_taken_for_a_batch_of_as_many_rows():
    # `(o[2] > 0) * 1` given 4 CartPole observations returns 4 values (row 2's signs), so it
    # was taken for a batched expert and labelled every row wrong, silently: DAgger with 4
    # envs imitated the wrong labels (return 18 against 500 with 3 or 5 envs).
    obs = np.array(
        [
            [0.1, 0.2, 0.05, 0.3],
            [0.0, 0.1, -0.05, 0.2],
            [-0.3, 0.4, 0.2, -0.1],
            [0.5, -0.2, 0.1, 0.0],
        ],
        np.float32,
    )
    expert = FunctionExpert(lambda o: (o[2] > 0) * 1)
    a, _ = label(expert, obs, DISCRETE)
    assert a.tolist() == [1, 0, 1, 1] and expert.batched is False
    batched = FunctionExpert(lambda o: (o[..., 2] > 0) * 1)  # right on a batch and on a row
    assert label(batched, obs, DISCRETE)[0].tolist() == [1, 0, 1, 1] and batched.batched


def test_a_function_of_one_observation_is_found_out_and_kept():
    calls = []

    def one(o):
        calls.append(np.shape(o))
        if np.ndim(o) != 1:
            raise ValueError("one observation please")
        return int(o[2] > 0)

    expert = FunctionExpert(one)
    a, _ = label(expert, OBS, DISCRETE)
    assert a.tolist() == [1, 0, 0] and expert.batched is False
    calls.clear()
    label(expert, OBS, DISCRETE)
    assert calls == [(4,)] * 3  # no second batch attempt


def test_integral_floats_are_accepted_for_discrete_actions():
    a, _ = label(lambda o: np.array([1.0, 0.0, 1.0]), OBS, DISCRETE)
    assert a.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("fn", "space", "match"),
    [
        (lambda o: np.zeros((len(o), 2), int), DISCRETE, r"shape \(3, 2\).*needs shape \(3,\)"),
        (lambda o: np.array([0, 1, 2]), DISCRETE, r"action 2 at observation 2.*out of range"),
        (lambda o: np.array([0, -1, 1]), DISCRETE, r"action -1 .*out of range"),
        (lambda o: np.array([0.5, 0.0, 1.0]), DISCRETE, r"returned 0\.5 .*integer"),
        (lambda o: np.array([[0.1], [np.nan], [0.0]]), BOX, r"non-finite action \[nan\]"),
        (lambda o: np.array([[0.1], [3.0], [0.0]]), BOX, r"\[3\.0\] .*outside the action space"),
        (lambda o: np.array(["a", "b", "c"]), DISCRETE, r"dtype <U1"),
    ],
)
def test_bad_labels_are_refused_naming_the_problem(fn, space, match):
    with pytest.raises(ExpertError, match=match):
        label(FunctionExpert(fn, batched=True), OBS, space)


def test_an_expert_that_raises_is_reported_with_its_error():
    def broken(o):
        raise RuntimeError("sensor unplugged")

    with pytest.raises(ExpertError, match=r"raised RuntimeError: sensor unplugged.*kept"):
        label(FunctionExpert(broken, batched=True), OBS, DISCRETE)


def test_a_flat_vector_is_one_continuous_dimension_and_masked_rows_abstain():
    a, given = label(lambda o: np.ma.masked_array([0.5, 0.0, -0.5], [False, True, False]), OBS, BOX)
    assert a.shape == (3, 1) and given.tolist() == [True, False, True]
    assert a[:, 0].tolist() == [0.5, 0.0, -0.5]


def test_import_expert(tmp_path, monkeypatch):
    (tmp_path / "my_experts.py").write_text(
        "import numpy as np\ndef push_right(obs):\n    return np.ones(len(obs), int)\nvalue = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    a, _ = label(import_expert("my_experts:push_right"), OBS, DISCRETE)
    assert a.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        import_expert("my_experts:nope")
    with pytest.raises(ValueError, match="not callable"):
        import_expert("my_experts:value")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        import_expert("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="module:function"):
        import_expert("just_a_name")


def test_lqr_expert_pushes_by_the_sign_of_the_lqr_force():
    params = CartPoleParams()
    problem = cartpole_balance(params)
    K = np.asarray(make_lqr_controller(problem, params).K)
    a, _ = label(lqr_expert(problem, DISCRETE, params=params), OBS, DISCRETE)
    assert a.tolist() == (OBS @ K[0] > 0).astype(int).tolist()
    box, _ = label(lqr_expert(problem, BOX, params=params), OBS, BOX)  # force / 10 N, clipped
    assert box[:, 0] == pytest.approx(np.clip(OBS @ K[0] / 10.0, -1, 1), abs=1e-5)


def test_a_control_expert_compiles_once_per_power_of_two_rows():
    """Batches are padded to the next power of two (copies of the first row), so a DAgger
    run's batches of many sizes reuse a few programs; the padding never reaches a label."""
    params = CartPoleParams()
    problem = cartpole_balance(params)
    K = np.asarray(make_lqr_controller(problem, params).K)
    expert = lqr_expert(problem, BOX, params=params)
    obs = np.random.default_rng(0).normal(scale=0.1, size=(7, 4)).astype(np.float32)
    for n in (5, 7, 6, 8):  # all padded to 8 rows (8 itself is not padded)
        box, given = label(expert, obs[:n] if n < 8 else np.vstack([obs, obs[:1]]), BOX)
        assert box.shape == (n, 1) and given.all()
        want = np.clip((obs[:n] if n < 8 else np.vstack([obs, obs[:1]])) @ K[0] / 10.0, -1, 1)
        assert box[:, 0] == pytest.approx(want, abs=1e-5)
    assert expert._act._cache_size() == 1
    label(expert, obs[:3], BOX)  # 4 rows: a second program
    assert expert._act._cache_size() == 2


def test_perfect_expert_plays_optimal_moves():
    expert = perfect_expert()
    # X to move (marks equal): X has 0 and 1, O has 3 and 4: X wins at 2.
    x_wins = np.array([1, 1, 0, -1, -1, 0, 0, 0, 0], np.float32)
    # O to move, seen from O's side (O's marks +1): X (-1) threatens 0-1-2; O must block at 2.
    o_blocks = np.array([-1, -1, 0, 1, 0, 0, 0, 0, 0], np.float32)
    a, _ = label(expert, np.stack([x_wins, o_blocks]), spaces.Discrete(9))
    assert a.tolist() == [2, 2]
    with pytest.raises(ExpertError, match="not a reachable tic-tac-toe position"):
        label(expert, np.ones((1, 9), np.float32), spaces.Discrete(9))
