"""Bounded caches of compiled programs: the most recently used are kept.

A compiled program holds its executable and what it closes over (tens of MB for a network's
training); a notebook or a sweep that makes one per configuration would keep them all for
the life of the process. `recently_used` keeps a plain dict in use order and drops the oldest
past a count. It does no locking: a cache asked from several threads holds its own lock
around the call. `jit_per_static` is `jax.jit` with static arguments whose programs are kept
that way (the control solvers' problems and objectives, often fresh lambdas).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

__all__ = ["jit_per_static", "recently_used"]

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


#: How many static-argument combinations `jit_per_static` keeps compiled, by default.
KEPT_STATICS = 8


def jit_per_static(
    fn: Callable[..., Any],
    static_argnums: int | Sequence[int] = (),
    *,
    tree_argnums: Sequence[int] = (),
    kept: int = KEPT_STATICS,
    **jit_kwargs: Any,
) -> Callable[..., Any]:
    """`jax.jit(fn, static_argnums=static_argnums)`, keeping the programs of the `kept` most
    recently used combinations of static arguments only.

    A static argument that is a user's function (a problem's dynamics, a planner's
    objective) is part of `jax.jit`'s cache key, and `jax.jit` keeps each program it
    compiled, with everything the function closes over, for the life of the process: a
    notebook cell that builds its problem from fresh lambdas and is run 40 times kept 40
    programs (about 9.5 MB each for a small CEM plan closing over a 4 MB array). Here each
    combination gets a `jax.jit` of its own, dropped (and its programs freed) once `kept`
    newer combinations were used; arguments equal to a kept one (`==` and hash, as for
    `jax.jit`) share its programs. The static arguments must be given by position.
    `tree_argnums`: arguments passed to the program as pytrees whose structure holds
    functions (a `Problem`'s dynamics and costs are static fields of its tree): their tree
    structure is part of the key the same way.
    """
    statics = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    trees = tuple(tree_argnums)
    cache: dict[Any, Callable[..., Any]] = {}
    lock = threading.Lock()

    def make(values: tuple) -> Callable[..., Any]:
        import jax

        def bound(*dynamic: Any, **kwargs: Any) -> Any:
            return fn(*_merge(statics, values, dynamic), **kwargs)

        return jax.jit(functools.wraps(fn)(bound), **jit_kwargs)

    def jitted(args: tuple) -> tuple[Callable[..., Any], tuple]:
        values = tuple(args[i] for i in statics)
        dynamic = tuple(a for i, a in enumerate(args) if i not in statics)
        key = (values, tuple(_structure(args[i]) for i in trees))
        with lock:
            return recently_used(cache, key, lambda: make(values), kept), dynamic

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        program, dynamic = jitted(args)
        return program(*dynamic, **kwargs)

    def eval_shape(*args: Any, **kwargs: Any) -> Any:
        """`jax.eval_shape` of the call, cached with its programs (`jax.eval_shape(call)`
        would be cached by JAX for the life of the process, like `jax.jit`)."""
        import jax

        program, dynamic = jitted(args)
        return jax.eval_shape(program, *dynamic, **kwargs)

    call.eval_shape = eval_shape  # type: ignore[attr-defined]
    call.kept_programs = cache  # type: ignore[attr-defined]  (for tests)
    return call


def _merge(statics: tuple[int, ...], values: tuple, dynamic: tuple) -> list[Any]:
    """The full argument list: `values` at the positions `statics`, `dynamic` elsewhere."""
    out: list[Any] = []
    rest = iter(dynamic)
    fixed = dict(zip(statics, values, strict=True))
    for i in range(len(statics) + len(dynamic)):
        out.append(fixed[i] if i in fixed else next(rest))
    return out


def _structure(tree: Any) -> Any:
    import jax

    return jax.tree.structure(tree)
