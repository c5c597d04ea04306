"""Errors raised by bellmax for bad input, and helpers that format them.

Every error names the bad value and says how to fix it (DESIGN.md rule 9).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BellmaxError(Exception):
    """Base class of bellmax's own errors."""


class InvalidMDPError(BellmaxError, ValueError):
    """A tabular MDP whose arrays do not describe a valid Markov decision process."""


class UnknownNameError(BellmaxError, KeyError, ValueError):
    """A name (environment id, algorithm, model) that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class DivergenceError(BellmaxError, FloatingPointError):
    """A run whose numbers became non-finite; the message says where."""


class MissingDependencyError(BellmaxError, ImportError):
    """An optional package or program a feature needs is not installed; the message says how
    to install it (an `ImportError`, so `except ImportError` still catches it)."""


def unknown_name(
    kind: str, name: str, known: Iterable[str], *, hint: str = "", listed: bool = False
) -> UnknownNameError:
    """Build an error for an unknown `name`, listing the closest known names.

    Without a close match every known name is listed ("Known: ..."), unless `listed`: the
    `hint` lists them itself (in an order or form of the caller's)."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.4)
    if not close:  # fall back to case-insensitive substring matches
        low = name.lower()
        close = [k for k in known if low in k.lower() or k.lower() in low][:5]
    msg = f"unknown {kind} {name!r}."
    if close:
        msg += " Did you mean: " + ", ".join(repr(c) for c in close) + "?"
    elif not listed:
        msg += " Known: " + ", ".join(known) + "."
    if hint:
        msg += " " + hint
    return UnknownNameError(msg)
