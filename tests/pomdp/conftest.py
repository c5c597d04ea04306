"""Shared fixtures of the POMDP tests: the tiger problem, read once from its .pomdp file."""

from pathlib import Path

import pytest

from bellmax.pomdp import load_pomdp

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiger():
    return load_pomdp(DATA / "tiger.pomdp")
