"""Fixtures shared by the command-line tests."""

from __future__ import annotations

from types import SimpleNamespace

import pytest


class _Started(Exception):
    """Raised by a stand-in for a command's expensive work: the command got past its checks."""


@pytest.fixture
def stand_in() -> SimpleNamespace:
    """`stand_in.work`, a stand-in for a command's expensive work (monkeypatch it in), which
    raises `stand_in.error`: a test that expects it knows the command passed its checks."""

    def work(*args, **kwargs):
        raise _Started

    return SimpleNamespace(work=work, error=_Started)
