"""One status vocabulary for every iterative solver (DESIGN.md rule 2, like diffrax's RESULTS).

A solver's result carries `status`, an int (a 0-d array under `jit`) holding a `Status`
value; `StatusFields` gives the result `status_name` and `converged` as plain Python values on
the host. Inside a `while_loop` a solver keeps `Status.RUNNING` in its carry until a stopping
rule replaces it; RUNNING never leaves a solver.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["Status", "StatusFields", "status_name"]


class Status(enum.IntEnum):
    """How an iterative solver stopped (`result.status`; `result.status_name` is the name)."""

    RUNNING = -1
    """Still iterating: a loop-carry value only, never returned."""
    CONVERGED = 0
    """The stopping rule was met."""
    MAX_ITERATIONS = 1
    """The iteration limit was reached first."""
    DIVERGED = 2
    """Non-finite numbers appeared; the result holds the last finite iterate where it can."""
    STALLED = 3
    """No progress possible (e.g. a line search failed with the regularisation at its maximum)."""
    NEGATIVE_CYCLE = 4
    """A reachable negative cycle makes some shortest distances -inf (shortest paths)."""

    @staticmethod
    def name_of(status: Any) -> str:
        """The lower-case name of a status value (an int, a 0-d array or a `Status`)."""
        return status_name(status)


def status_name(status: Any) -> str:
    """The lower-case name of a status value (an int, a 0-d array or a `Status`).

    Raises:
      ValueError: `status` is not a `Status` value.
    """
    try:
        return Status(int(status)).name.lower()
    except ValueError:
        known = ", ".join(f"{s.value} ({s.name.lower()})" for s in Status)
        raise ValueError(f"{int(status)} is not a solver status; known: {known}.") from None


class StatusFields:
    """`status_name` and `converged` for a result class with a `status` field (a mixin)."""

    status: Any

    @property
    def status_name(self) -> str:
        """How the solver stopped: `converged`, `max_iterations`, `diverged`, ..."""
        return status_name(self.status)

    @property
    def converged(self) -> bool:
        """Whether the stopping rule was met (a Python bool, read on the host)."""
        return int(self.status) == Status.CONVERGED
