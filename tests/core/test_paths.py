"""Tests for bellmax.core.paths: the user's cache directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bellmax.core.paths import user_cache_dir


def test_bellmax_cache_dir_wins(tmp_path):
    env = {"BELLMAX_CACHE_DIR": str(tmp_path / "own"), "XDG_CACHE_HOME": "/xdg", "HOME": "/h"}
    assert user_cache_dir(env) == tmp_path / "own"
    assert not (tmp_path / "own").exists()  # nothing is created


def test_bellmax_cache_dir_expands_the_home():
    assert user_cache_dir({"BELLMAX_CACHE_DIR": "~/c", "HOME": "/h"}) == Path("/h/c")
    assert user_cache_dir({"BELLMAX_CACHE_DIR": "~", "HOME": "/h"}) == Path("/h")


def test_xdg_cache_home_next():
    assert user_cache_dir({"XDG_CACHE_HOME": "/xdg", "HOME": "/h"}) == Path("/xdg/bellmax")
    assert user_cache_dir({"BELLMAX_CACHE_DIR": "", "XDG_CACHE_HOME": "/xdg"}) == Path(
        "/xdg/bellmax"
    )


def test_home_cache_last():
    assert user_cache_dir({"HOME": "/h"}) == Path("/h/.cache/bellmax")
    # a relative XDG_CACHE_HOME is invalid by the specification and ignored
    assert user_cache_dir({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == Path("/h/.cache/bellmax")


def test_reads_os_environ_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BELLMAX_CACHE_DIR", str(tmp_path))
    assert user_cache_dir() == tmp_path
    monkeypatch.delenv("BELLMAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "bellmax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "bellmax"


def test_no_home_names_the_fix(monkeypatch):
    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    with pytest.raises(RuntimeError, match="set BELLMAX_CACHE_DIR"):
        user_cache_dir({})
