"""Bounded caches of compiled programs: the most recently used are kept.

A compiled program holds its executable and what it closes over (tens of MB for a network's
training); a notebook or a sweep that makes one per configuration would keep them all for
the life of the process. `recently_used` keeps a plain dict in use order and drops the oldest
past a count. It does no locking: a cache asked from several threads holds its own lock
around the call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["recently_used"]

V = TypeVar("V")
_MISSING: Any = object()


def recently_used(cache: dict[Any, V], key: Hashable, make: Callable[[], V], kept: int) -> V:
    """`cache[key]`, made by `make()` when missing, now the most recently used (last in the
    dict); past `kept` entries the least recently used are dropped."""
    value = cache.pop(key, _MISSING)
    if value is _MISSING:
        value = make()
    cache[key] = value
    while len(cache) > kept:
        cache.pop(next(iter(cache)))
    return value
