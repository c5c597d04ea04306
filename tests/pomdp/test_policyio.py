"""Alpha-vector policies on disk: `.npz` and pomdp-solve's `.alpha` text read back exactly,
written atomically, acting as saved; every refusal of the loaders names the file and problem."""

import io

import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.pomdp import AlphaVectors, PointBasedResult, exact_value_iteration
from bellmax.pomdp.belief import x64
from bellmax.pomdp.policyio import load_alpha, load_policy, save_alpha, save_policy


def vectors(alphas, actions) -> AlphaVectors:
    with x64():
        return AlphaVectors(alphas=jnp.asarray(alphas, jnp.float64), actions=jnp.asarray(actions))


@pytest.fixture(scope="module")
def random_policy() -> AlphaVectors:
    """40 vectors over 4 states, 3 actions; values spanning many magnitudes, and awkward
    decimals (1/3, 0.1) whose text form must read back to the same float64."""
    rng = np.random.default_rng(0)
    alphas = rng.normal(size=(40, 4)) * 10.0 ** rng.integers(-8, 9, size=(40, 4))
    alphas[0] = [1 / 3, 0.1, -0.0, 1e-300]
    return vectors(alphas, rng.integers(0, 3, 40))


@pytest.fixture(scope="module")
def tiger_policy(tiger) -> AlphaVectors:
    """The exact 3-step tiger policy: 9 vectors, several per action."""
    return exact_value_iteration(tiger, 3).stages[-1]


def same(a: AlphaVectors, b: AlphaVectors) -> None:
    np.testing.assert_array_equal(np.asarray(a.alphas), np.asarray(b.alphas))
    np.testing.assert_array_equal(np.asarray(a.actions), np.asarray(b.actions))


def files_in(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


# ---------------------------------------------------------------------- round trips
def test_npz_round_trip_is_exact(tmp_path, random_policy):
    path = save_policy(tmp_path / "p.npz", random_policy, action_names=("a", "bb", "listen"))
    assert path == tmp_path / "p.npz"
    back = load_policy(path, num_states=4, num_actions=3)
    same(back, random_policy)
    assert back.alphas.dtype == jnp.float64
    # the names travel in the file (load_policy returns vectors only: read the arrays)
    with np.load(path) as z:
        assert set(z.files) == {"alphas", "actions", "action_names"}
        assert z["action_names"].tolist() == ["a", "bb", "listen"]
        assert z["actions"].dtype == np.int64
    # without names, no names array
    save_policy(tmp_path / "q.npz", random_policy)
    with np.load(tmp_path / "q.npz") as z:
        assert set(z.files) == {"alphas", "actions"}


def test_alpha_round_trip_is_exact(tmp_path, random_policy):
    path = save_alpha(tmp_path / "p.alpha", random_policy)
    assert path == tmp_path / "p.alpha"
    same(load_alpha(path, num_states=4, num_actions=3), random_policy)


def test_alpha_text_is_pomdp_solves_layout(tmp_path):
    # One block per vector: the action, the values, a blank line.
    save_alpha(tmp_path / "p.alpha", vectors([[1.5, -2.0], [0.25, 3.0]], [2, 0]))
    assert (tmp_path / "p.alpha").read_text() == "2\n1.5 -2.0\n\n0\n0.25 3.0\n\n"


def test_alpha_reads_hand_written_files(tmp_path):
    # extra and missing blank lines, indentation, tabs, ints, exponents, no final newline
    path = tmp_path / "hand.alpha"
    path.write_text("\n\n 1\n-81.5975   3.01448\n\n\n0\n\t2 -1e2\n2\n\n5.0E-1 .5")
    back = load_alpha(path)
    np.testing.assert_array_equal(
        np.asarray(back.alphas), [[-81.5975, 3.01448], [2, -100], [0.5, 0.5]]
    )
    np.testing.assert_array_equal(np.asarray(back.actions), [1, 0, 2])
    # saved by a Windows editor: a byte-order mark and CRLF lines (the mark was "line 1:
    # expected an action index, found '\ufeff1'")
    path.write_bytes(b"\xef\xbb\xbf1\r\n-81.5975 3.01448\r\n0\r\n2 -1e2\r\n")
    np.testing.assert_array_equal(np.asarray(load_alpha(path).actions), [1, 0])


def test_loaded_policy_acts_as_the_saved_one(tmp_path, tiger_policy, random_policy):
    tiger_beliefs = np.random.default_rng(1).dirichlet(np.ones(2), size=300)
    for policy, S in ((tiger_policy, 2), (random_policy, 4)):
        beliefs = tiger_beliefs if S == 2 else np.random.default_rng(2).dirichlet(np.ones(S), 300)
        with x64():
            b = jnp.asarray(beliefs)
            want_a, want_v = policy.action(b), policy.value(b)
            for back in (
                load_policy(save_policy(tmp_path / "p.npz", policy)),
                load_alpha(save_alpha(tmp_path / "p.alpha", policy)),
            ):
                np.testing.assert_array_equal(back.action(b), want_a)
                np.testing.assert_array_equal(back.value(b), want_v)
    # the beliefs meet every action: the comparison above can tell policies apart
    with x64():
        assert len(np.unique(np.asarray(tiger_policy.action(jnp.asarray(tiger_beliefs))))) == 3


# ---------------------------------------------------------------------- atomic writes
@pytest.mark.parametrize(("save", "name"), [(save_policy, "p.npz"), (save_alpha, "p.alpha")])
def test_writes_leave_only_the_file(tmp_path, random_policy, tiger_policy, save, name):
    save(tmp_path / "sub" / name, random_policy)  # the missing folder is made
    assert files_in(tmp_path) == ["sub", f"sub/{name}"]
    # overwriting replaces the file, still with no temporary left beside it
    save(tmp_path / "sub" / name, tiger_policy)
    assert files_in(tmp_path) == ["sub", f"sub/{name}"]
    load = load_policy if name.endswith(".npz") else load_alpha
    same(load(tmp_path / "sub" / name), tiger_policy)


def test_failed_write_keeps_the_old_file(tmp_path, tiger_policy):
    path = save_alpha(tmp_path / "p.alpha", tiger_policy)
    before = path.read_bytes()
    # 3 vectors but 2 actions: the writer fails after writing the first two blocks
    broken = vectors(np.ones((3, 2)), [0, 1])
    with pytest.raises(ValueError):
        save_alpha(path, broken)
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["p.alpha"]


def test_saving_onto_a_folder_is_refused(tmp_path, random_policy):
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a directory"):
        save_policy(tmp_path / "d.npz", random_policy)
    assert files_in(tmp_path) == ["d.npz"]


# ---------------------------------------------------------------------- .npz refusals
def npz(path, **arrays):
    np.savez(path, **arrays)
    return path


GOOD = {"alphas": np.ones((2, 3)), "actions": np.array([0, 1])}


@pytest.mark.parametrize(
    ("arrays", "kwargs", "match"),
    [
        ({"alphas": np.ones(3), "actions": np.array([0])}, {}, r"got shapes \(3,\) and \(1,\)"),
        ({"alphas": np.ones((0, 3)), "actions": np.zeros(0, int)}, {}, r"K >= 1"),
        ({"alphas": np.ones((2, 3)), "actions": np.array([0])}, {}, r"shapes \(2, 3\) and \(1,\)"),
        ({"alphas": np.ones((2, 3)), "actions": np.zeros((2, 1), int)}, {}, r"actions \(K,\)"),
        (GOOD, {"num_states": 2}, "the vectors have 3 entries but the POMDP has 2 states"),
        ({**GOOD, "alphas": np.array([[1, 2, np.nan], [0, 0, 0]])}, {}, "non-finite"),
        ({**GOOD, "alphas": np.array([[1, 2, np.inf], [0, 0, 0]])}, {}, "non-finite"),
        ({**GOOD, "actions": np.array([0, 5])}, {"num_actions": 3}, r"in \[0, 3\), got 0\.\.5"),
        ({**GOOD, "actions": np.array([-1, 1])}, {"num_actions": 3}, r"in \[0, 3\), got -1\.\.1"),
        ({**GOOD, "actions": np.array([-2, 1])}, {}, r"action indices must be >= 0, got -2\.\.1"),
        ({**GOOD, "actions": np.array([0.0, 1.7])}, {}, "'actions' must hold integer action"),
        ({**GOOD, "actions": np.array([0.0, np.nan])}, {}, "'actions' must hold integer"),
        ({**GOOD, "alphas": np.array([["a", "b", "c"]] * 2)}, {}, "'alphas' must hold numbers"),
        ({"alphas": np.ones((2, 3))}, {}, "needs arrays 'alphas' and 'actions'"),
        ({"actions": np.array([0, 1]), "other": np.ones(2)}, {}, "needs arrays 'alphas'"),
        ({**GOOD, "alphas": np.array([{}, {}], dtype=object)}, {}, r"not a readable \.npz policy"),
    ],
)
def test_load_policy_refusals(tmp_path, arrays, kwargs, match):
    path = npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match) as err:
        load_policy(path, **kwargs)
    assert str(path) in str(err.value)  # every message names the file


def test_load_policy_accepts_matching_sizes(tmp_path):
    back = load_policy(npz(tmp_path / "ok.npz", **GOOD), num_states=3, num_actions=2)
    np.testing.assert_array_equal(np.asarray(back.alphas), GOOD["alphas"])


def test_load_policy_missing_or_unreadable_files(tmp_path):
    with pytest.raises(ValueError, match=r"no policy file .*nothing\.npz.*--out nothing\.npz"):
        load_policy(tmp_path / "nothing.npz")
    with pytest.raises(ValueError, match="is a directory, not a policy file"):
        load_policy(tmp_path)  # a folder is not a policy file
    for name, data in (("empty.npz", b""), ("text.npz", b"alphas = [1, 2]\n")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=r"not a readable \.npz policy \((EOF|Value)Error\)"):
            load_policy(tmp_path / name)


def _npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **GOOD)
    return buf.getvalue()


def test_load_policy_truncated_npz_is_a_value_error(tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(_npz_bytes()[:200])
    with pytest.raises(ValueError, match=r"not a readable \.npz policy"):
        load_policy(path)


def test_load_policy_npy_file_is_a_value_error(tmp_path):
    np.save(tmp_path / "alphas.npy", np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"one NumPy array \(\.npy\), not an \.npz policy"):
        load_policy(tmp_path / "alphas.npy")


# ---------------------------------------------------------------------- .alpha refusals
@pytest.mark.parametrize(
    ("text", "kwargs", "match"),
    [
        ("", {}, "no vectors in the file"),
        ("\n  \n\n", {}, "no vectors in the file"),
        # odd count of non-blank lines: the last one (line 4) lacks its vector
        ("0\n1 2\n\n1\n", {}, r"line 4: an action line without its vector"),
        ("x\n1 2\n", {}, r"line 1: expected an action index, found 'x'"),
        ("1.0\n1 2\n", {}, r"line 1: expected an action index, found '1\.0'"),
        ("0\n1 2\n\n0\n1 two\n", {}, r"line 5: expected the vector's numbers, found '1 two'"),
        ("0\n1 2\n\n\n1\n1 2 3\n", {}, r"line 6: 3 numbers where the first vector had 2"),
        ("0\n1 nan\n", {}, "non-finite"),
        ("0\n1 -inf\n", {}, "non-finite"),
        ("0\n1 2\n", {"num_states": 3}, "the vectors have 2 entries but the POMDP has 3 states"),
        ("0\n1 2\n\n4\n1 2\n", {"num_actions": 3}, r"in \[0, 3\), got 0\.\.4"),
        ("-1\n1 2\n", {"num_actions": 3}, r"in \[0, 3\), got -1\.\.-1"),
    ],
)
def test_load_alpha_refusals(tmp_path, text, kwargs, match):
    path = tmp_path / "bad.alpha"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        load_alpha(path, **kwargs)
    assert str(path) in str(err.value)


def test_load_alpha_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"no alpha file .*gone\.alpha"):
        load_alpha(tmp_path / "gone.alpha")


@pytest.mark.parametrize(("save", "name"), [(save_policy, "p.npz"), (save_alpha, "p.alpha")])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_vectors_are_not_written(tmp_path, save, name, bad):
    # a diverged solve's vectors: the readers refuse them, so the writers must too
    with pytest.raises(ValueError, match=rf"not writing .*{name}.*alpha vector 1 holds "
                       rf"{bad} \(state 0\); a policy needs finite values"):  # fmt: skip
        save(tmp_path / name, vectors([[1.0, 2.0], [bad, 0.0]], [0, 1]))
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("load", [load_policy, load_alpha])
def test_a_folder_is_named_as_one(tmp_path, load):
    with pytest.raises(ValueError, match=r"is a directory, not a policy file: give the \.npz"):
        load(tmp_path)


def test_a_solver_result_is_refused_naming_its_policy_field(tmp_path, random_policy):
    result = PointBasedResult(random_policy, 0.0, np.zeros((1, 4)), 1, np.zeros(1), 0.0)
    with pytest.raises(TypeError, match=r"save_policy\(path, result\.vectors\)"):
        save_policy(tmp_path / "p.npz", result)
    with pytest.raises(TypeError, match=r"save_alpha writes AlphaVectors, got str\.$"):
        save_alpha(tmp_path / "p.alpha", "greedy")
    assert not list(tmp_path.iterdir())
