"""Tests for bellmax.tabular.io: the .npz MDP format."""

from __future__ import annotations

import numpy as np
import pytest

import bellmax
from bellmax.core.errors import InvalidMDPError
from bellmax.tabular.dp import random_mdp
from bellmax.tabular.io import NPZ_KEYS, load_mdp, mdp_from_arrays, mdp_to_arrays, save_mdp


@pytest.fixture(scope="module")
def grid():
    env, params = bellmax.make("GridWorld4x4-v0")
    return env.tabular_mdp(params)


def _same(a, b):
    np.testing.assert_allclose(a.dense_P(), b.dense_P())
    np.testing.assert_allclose(np.asarray(a.R), np.asarray(b.R))
    assert float(a.gamma) == float(b.gamma)


@pytest.mark.parametrize("sparse", [None, True, False])
def test_round_trip(tmp_path, grid, sparse):
    path = save_mdp(tmp_path / "g.npz", grid, sparse=sparse)
    back = load_mdp(path)
    assert back.is_sparse == bool(sparse)
    _same(grid, back)
    np.testing.assert_array_equal(back.terminal, grid.terminal)
    np.testing.assert_allclose(back.initial, grid.initial)
    assert set(np.load(path).files) <= set(NPZ_KEYS)


def test_round_trip_sparse_random(tmp_path):
    mdp = random_mdp(3, 50, 4, 5, gamma=0.97)
    path = save_mdp(tmp_path / "r.npz", mdp, compress=False)
    with pytest.raises(TypeError, match=r"save_mdp takes \(path, mdp\): the file first"):
        save_mdp(mdp, tmp_path / "s.npz")  # the other way round, as save_pomdp takes them
    with np.load(path) as npz:
        assert npz["P_indices"].shape[1] == 3
        assert npz["P_indices"].shape[0] == npz["P_values"].shape[0] <= 50 * 4 * 5
    back = load_mdp(path)
    assert back.is_sparse
    _same(mdp, back)


def test_plain_numpy_files_and_gamma_override(tmp_path):
    P = np.zeros((2, 1, 2))
    P[:, 0, 1] = 1.0
    np.savez(tmp_path / "dense.npz", P=P, R=np.array([[1.0], [0.0]]))
    with pytest.raises(InvalidMDPError, match="no 'gamma' stored"):
        load_mdp(tmp_path / "dense.npz")
    mdp = load_mdp(tmp_path / "dense.npz", gamma=0.5)
    assert float(mdp.gamma) == 0.5 and not mdp.is_sparse
    idx = np.array([[0, 0, 1], [1, 0, 1], [1, 0, 1]])  # a duplicate row is summed
    np.savez(
        tmp_path / "sparse.npz",
        P_indices=idx,
        P_values=[1.0, 0.5, 0.5],
        R=[[1.0], [0.0]],
        gamma=0.9,
    )
    sp = load_mdp(tmp_path / "sparse.npz")
    np.testing.assert_allclose(sp.dense_P(), P)
    assert float(load_mdp(tmp_path / "sparse.npz", gamma=0.1).gamma) == 0.1


def test_save_is_atomic(tmp_path, grid, monkeypatch):
    path = save_mdp(tmp_path / "g.npz", grid)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", broken)
    with pytest.raises(OSError, match="disk full"):
        save_mdp(path, random_mdp(0, 3, 2, 2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]


GOOD = {"P": np.full((2, 1, 2), 0.5), "R": np.zeros((2, 1)), "gamma": np.array(0.9)}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"R": None}, "missing 'R'"),
        ({"P": None}, "missing the transitions"),
        ({"P_indices": np.array([[0, 0, 0]])}, "both dense 'P' and sparse"),
        ({"P": None, "P_indices": np.array([[0, 0, 0]])}, "missing 'P_values'"),
        (
            {"P": None, "P_indices": np.array([[0.0, 0, 0]]), "P_values": np.array([1.0])},
            "P_indices must be an integer array",
        ),
        ({"P": np.array([["a", "b"]])}, "P must hold real numbers"),
        ({"R": np.zeros(2)}, r"R must have shape \(S, A\)"),
        ({"gamma": np.array([0.9, 0.8])}, "gamma must be one number"),
        ({"gamma": np.array(1.5)}, r"gamma = 1.5 must be one number in \[0, 1\]"),
        ({"P": np.full((2, 1, 2), 0.7)}, "sums to 1.4"),
        ({"terminal": np.array([0.5, 1.0])}, "terminal must be a bool mask"),
        ({"gama": np.array(0.9)}, "unknown key\\(s\\) 'gama'"),
    ],
)
def test_invalid_arrays(change, match):
    arrays = {**GOOD, **change}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    with pytest.raises(InvalidMDPError, match=match):
        mdp_from_arrays(arrays, where="x.npz")


def test_invalid_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such MDP file.*bellmax\.tabular\.save_mdp"):
        load_mdp(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(InvalidMDPError, match=r"not a readable \.npz archive"):
        load_mdp(tmp_path / "text.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(InvalidMDPError, match="single array"):
        load_mdp(tmp_path / "one.npy")
    np.savez(tmp_path / "obj.npz", P=np.array([{"a": 1}], dtype=object), R=np.zeros((1, 1)))
    with pytest.raises(InvalidMDPError, match="pickled object array"):
        load_mdp(tmp_path / "obj.npz")
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "obj.npz").read_bytes()[:40])
    with pytest.raises(InvalidMDPError, match="npz"):
        load_mdp(tmp_path / "trunc.npz")
    # an array whose data is cut short was called "a pickled object array"; one whose header
    # declares 10**12 values was a bare MemoryError
    import io
    import zipfile

    def npz_with_P(npy: bytes, name: str):
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            z.writestr("P.npy", npy)
        return tmp_path / name

    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 2, 2)))
    with pytest.raises(InvalidMDPError, match=r"array 'P' is corrupt \(EOF"):
        load_mdp(npz_with_P(buf.getvalue()[:-32], "cut.npz"))
    buf = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    np.lib.format.write_array_header_1_0(buf, header)
    with pytest.raises(InvalidMDPError, match=r"array 'P' declares more data than fits"):
        load_mdp(npz_with_P(buf.getvalue() + bytes(8), "huge.npz"))


def test_to_arrays_rejects_non_mdp():
    with pytest.raises(TypeError, match="TabularMDP"):
        mdp_to_arrays({"P": 1})


def test_round_trip_uneven_sparse(tmp_path):
    """Rows of 2 successors and one row reaching every state: the file holds exactly the
    non-zeros, and loading it keeps the long row in the overflow (no padding to its length)."""
    S, A = 60, 2
    rows = [(s, a, (s + d) % S, 0.5) for s in range(S) for a in range(A) for d in (1, 2 + a)]
    rows = [r for r in rows if r[:2] != (5, 1)] + [(5, 1, t, 1 / S) for t in range(S)]
    idx = np.array([r[:3] for r in rows])
    val = np.array([r[3] for r in rows])
    mdp = bellmax.TabularMDP.from_coo(idx, val, np.zeros((S, A)), 0.9)
    assert mdp.P.shape == (S, A, 2) and mdp.P.num_overflow == S - 2
    arrays = mdp_to_arrays(mdp)
    assert arrays["P_indices"].shape == (len(rows), 3) and arrays["P_values"].shape == (len(rows),)
    back = load_mdp(save_mdp(tmp_path / "u.npz", mdp))
    assert back.is_sparse and back.P.shape == mdp.P.shape
    assert back.P.num_overflow == mdp.P.num_overflow
    _same(mdp, back)
    dense = load_mdp(save_mdp(tmp_path / "d.npz", mdp, sparse=False))
    assert not dense.is_sparse
    _same(mdp, dense)
