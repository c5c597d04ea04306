"""Tests for bellmax.core.io: atomic writes."""

from __future__ import annotations

import pytest

from bellmax.core.io import atomic_open


def test_atomic_open_writes_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    with atomic_open(target) as f:
        f.write(b"hello")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_bytes() == b"hello"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left


def test_atomic_open_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target) as f:
            f.write(b"new, half written")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_atomic_open_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        with atomic_open(tmp_path):
            pass
