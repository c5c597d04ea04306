"""Atomic writes: content round-trips, failures leave no trace, strict JSON."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from bellmax.train.io import (
    atomic_open,
    atomic_savefig,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    to_strict_json,
)


def _leftovers(directory):
    """Files in `directory` other than the expected targets (temporary files)."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_bytes_round_trip_and_parents_created(tmp_path):
    path = tmp_path / "a" / "b" / "data.bin"
    data = bytes(range(256)) * 3
    assert atomic_write_bytes(path, data) == path
    assert path.read_bytes() == data
    assert _leftovers(path.parent) == []


def test_text_round_trip_keeps_unicode_and_newlines(tmp_path):
    path = tmp_path / "t.txt"
    text = "θ̇ = ω\r\nline two\n"
    atomic_write_text(path, text)
    assert path.read_bytes() == text.encode("utf-8")


def test_overwrite_replaces_content(tmp_path):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old, and longer than the new one")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"


def test_new_file_permissions_follow_umask(tmp_path):
    path = tmp_path / "perm.txt"
    atomic_write_text(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_writer_raising_midway_leaves_no_partial_file(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"), atomic_open(path, "w") as f:
        f.write("half of the")
        raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_raising_midway_keeps_old_file(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write_bytes(path, b"old")
    with pytest.raises(RuntimeError), atomic_open(path, "wb") as f:
        f.write(b"new partial")
        raise RuntimeError("fail")
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_savefig_failure_leaves_nothing(tmp_path):
    class BrokenFigure:
        def savefig(self, f, **kwargs):
            f.write(b"\x89PNG partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_savefig(BrokenFigure(), tmp_path / "fig.png")
    assert list(tmp_path.iterdir()) == []


def test_savefig_writes_a_png(tmp_path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    path = atomic_savefig(fig, tmp_path / "fig.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_savefig_errors(tmp_path):
    with pytest.raises(TypeError, match="matplotlib Figure"):
        atomic_savefig(object(), tmp_path / "a.png")

    class Fig:
        def savefig(self, f, **kwargs):
            raise AssertionError("not reached")

    with pytest.raises(ValueError, match="suffix"):
        atomic_savefig(Fig(), tmp_path / "noext")


def test_json_round_trip_with_numpy_values(tmp_path):
    obj = {"a": np.float32(1.5), "b": np.arange(3), "c": [True, None, "s"], "d": np.int64(7)}
    path = atomic_write_json(tmp_path / "s.json", obj)
    assert json.loads(path.read_text()) == {
        "a": 1.5,
        "b": [0, 1, 2],
        "c": [True, None, "s"],
        "d": 7,
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_json_refuses_nonfinite_and_writes_nothing(tmp_path, bad):
    path = tmp_path / "s.json"
    with pytest.raises(ValueError, match=r"value\['x'\]\[1\].*not a finite number.*None"):
        atomic_write_json(path, {"x": [1.0, bad]})
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_json_refuses_nan_inside_arrays_and_keeps_old_file(tmp_path):
    path = tmp_path / "s.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(ValueError, match=r"s\.json"):
        atomic_write_json(path, {"arr": np.array([0.0, np.nan])})
    assert json.loads(path.read_text()) == {"ok": 1}


def test_json_unserialisable_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="convert the value"):
        atomic_write_json(tmp_path / "s.json", {"x": object()})
    assert not (tmp_path / "s.json").exists()


def test_to_strict_json_matches_json_dumps():
    obj = {"k": [1, 2.5, "x"]}
    assert to_strict_json(obj, indent=None) == json.dumps(obj)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="atomic_write_text"):
        atomic_write_bytes(tmp_path / "a", "text")
    with pytest.raises(TypeError, match="atomic_write_bytes"):
        atomic_write_text(tmp_path / "a", b"bytes")
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "a", "a"):
            pass
    with pytest.raises(IsADirectoryError, match="directory"):
        atomic_write_text(tmp_path, "x")
