"""Tests for bellmax.core.status: one status vocabulary for every solver."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.status import Status, StatusFields, status_name


class _Result(StatusFields):
    def __init__(self, status):
        self.status = status


def test_status_vocabulary_and_fields():
    assert status_name(jnp.int32(Status.MAX_ITERATIONS)) == "max_iterations"
    assert Status.name_of(4) == "negative_cycle"
    with pytest.raises(ValueError, match="not a solver status"):
        status_name(17)
    done = _Result(jnp.asarray(Status.CONVERGED, jnp.int32))
    assert done.converged is True and done.status_name == "converged"
    stalled = _Result(np.int32(Status.STALLED))
    assert stalled.converged is False and stalled.status_name == "stalled"
    assert [s.value for s in Status] == [-1, 0, 1, 2, 3, 4]  # codes are stable
