"""Datasets: .npz round trips without pickle, atomic writes, clear errors on bad files."""

from __future__ import annotations

import numpy as np
import pytest

from bellmax.imitation import Dataset, DatasetFileError, load_dataset, save_dataset


def _data() -> Dataset:
    d = Dataset.empty((4,), (), discrete=True)
    d = d.append(np.ones((3, 4)), [0, 1, 1], round_=0)
    return d.append(np.zeros((2, 4)), [1, 0], round_=1, source=1)


def test_round_trip_keeps_every_field_and_the_meta(tmp_path):
    d = _data()
    save_dataset(tmp_path / "d.npz", d, env="CartPole-v1", expert="lqr")
    back, meta = load_dataset(tmp_path / "d.npz")
    assert len(back) == 5 and meta == {"env": "CartPole-v1", "expert": "lqr"}
    for f in ("obs", "actions", "rounds", "source"):
        np.testing.assert_array_equal(getattr(back, f), getattr(d, f))
    assert back.rounds.tolist() == [0, 0, 0, 1, 1] and back.source.tolist() == [0, 0, 0, 1, 1]
    assert back.actions.dtype == np.int32 and back.obs.dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["d.npz"]  # no temporary file left


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(DatasetFileError, match="no dataset file"):
        load_dataset(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetFileError, match=r"damaged or not an \.npz"):
        load_dataset(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", obs=np.zeros(3))
    with pytest.raises(DatasetFileError, match="not a bellmax imitation dataset"):
        load_dataset(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", format=np.array([object()], dtype=object))
    with pytest.raises(DatasetFileError):
        load_dataset(tmp_path / "pickled.npz")  # object arrays need pickle: refused


def test_rows_must_agree():
    with pytest.raises(ValueError, match="actions has 2 rows, obs has 3"):
        Dataset(np.zeros((3, 4)), np.zeros(2), np.zeros(3), np.zeros(3))
