"""Traced and lowered programs kept on disk (`jax.export`), beside the compile cache.

The persistent compile cache (`bellmax.core.compile_cache`) spares a warm run XLA's compile,
but not JAX's tracing and lowering, which come before it: for PPO on CartPole-v1 that is
0.7-0.9 s of a 2 s warm run (two cores). This cache keeps the lowered program
(`jax.export.Exported`, StableHLO) of a program that a caller can name without tracing it;
a later process deserialises it (a few ms), lowers the call to it (~0.03 s) and
compiles, which the compile cache then loads. Results are bit-identical to the program
traced anew (tested).

The key: `parts` (what the caller knows decides the program and its inputs' shapes, e.g. the
algorithm, its config, the environment, the number of seeds), bellmax's own source (every `.py`
file of the package, hashed once per process), the installed libraries that are traced through
(each one's entry file, its size and time: an install rewrites it), every `jax.config` setting,
and the backend. The input shapes are not in the key; they are checked after reading
(`Program.fits`), and a program that does not fit is exported anew and replaces the file. A
caller hands `parts` only where nothing else decides the program: bellmax's own algorithms on
bellmax's own environments, not user code that the key cannot see. A library edited in place
without a reinstall is not noticed: delete the folder, or turn the cache off.

It lives in `user_cache_dir() / "programs"`, bounded to `DEFAULT_MAX_BYTES` (the least recently
used files go first, checked at most once an hour). `BELLMAX_PROGRAM_CACHE=0` turns it off,
`BELLMAX_COMPILE_CACHE=0` both caches. The test suite runs with it off (its tests replace
bellmax's functions, which the key cannot see), except the tests of the cache. Each file is a
pickle of the serialised program, its checksum and its input and output tree structures,
written atomically; it is read only from the user's own cache folder (as JAX's compile cache
loads compiled code from there), and only where the file and its folder are the user's own and
not writable by everyone. A file that cannot be read back (damaged, its checksum wrong, or from
another version) is deleted and the program exported anew.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import os
import pickle
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

from bellmax.core.compile_cache import OFF_VALUES, compile_cache_dir, prune, prune_due
from bellmax.core.io import atomic_open

__all__ = [
    "DEFAULT_MAX_BYTES",
    "Program",
    "export_program",
    "keep_program",
    "load_or_export",
    "program_cache_dir",
    "read_program",
]

#: The folder's size bound in bytes (a PPO chunk's file is ~60 KB).
DEFAULT_MAX_BYTES = 256 * 1024**2
#: Bumped when the file layout changes: older files then miss (and are replaced).
FORMAT = 2
#: Libraries whose code a bellmax program traces through (opt_einsum: `jnp.einsum`'s
#: contraction order).
TRACED_LIBRARIES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "chex",
    "mctx",
    "numpy",
    "ml_dtypes",
    "opt_einsum",
)
_PRUNED: set[Path] = set()  # folders checked against the bound in this process
_LOCK = threading.Lock()


def program_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where lowered programs are kept (the compile cache's sibling folder `programs`), or
    None when it is turned off (`BELLMAX_PROGRAM_CACHE=0`, or `BELLMAX_COMPILE_CACHE=0`,
    which turns off both)."""
    env = os.environ if environ is None else environ
    if env.get("BELLMAX_PROGRAM_CACHE", "").strip().lower() in OFF_VALUES:
        return None
    xla = compile_cache_dir(env)
    return None if xla is None else xla.with_name("programs")


@dataclasses.dataclass(frozen=True)
class Program:
    """A lowered program of flat inputs and outputs, and the trees that give them shape.

    `lower(options)` gives the `jax.stages.Lowered` of a call to it; `wrap(compiled)` makes
    that call's compiled form take and return the trees the original function did."""

    exported: jax.export.Exported
    in_tree: Any
    out_tree: Any

    def fits(self, *args: Any) -> bool:
        """Whether `args` have the tree, shapes and dtypes the program was made for."""
        leaves, tree = jax.tree.flatten(args)
        if tree != self.in_tree or len(leaves) != len(self.exported.in_avals):
            return False
        return all(
            tuple(t.shape) == tuple(a.shape) and t.dtype == a.dtype
            for t, a in zip(map(_type, leaves), self.exported.in_avals, strict=True)
        )

    def lower(self, compiler_options: dict[str, Any] | None = None) -> Any:
        avals = [
            jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)
            for a in self.exported.in_avals
        ]
        jitted = jax.jit(self.exported.call, compiler_options=compiler_options)
        return jitted.trace(*avals).lower()

    def compiled(self, compiler_options: dict[str, Any] | None = None) -> Callable[..., Any]:
        """The call compiled (XLA's compile, or its load from the compile cache), taking and
        returning the original function's trees: `wrap(lower(options).compile())`."""
        return self.wrap(self.lower(compiler_options).compile())

    def wrap(self, compiled: Callable[..., Any]) -> Callable[..., Any]:
        out_tree = self.out_tree

        def call(*args: Any) -> Any:
            return out_tree.unflatten(compiled(*jax.tree.leaves(args)))

        return call


def export_program(fn: Callable[..., Any], args: Sequence[Any]) -> Program:
    """Trace and lower `fn(*args)` (arrays or `jax.ShapeDtypeStruct`s) as a `Program`."""
    leaves, in_tree = jax.tree.flatten(tuple(args))
    out_trees = []

    def flat(*xs: Any) -> list[Any]:
        out, tree = jax.tree.flatten(fn(*in_tree.unflatten(xs)))
        out_trees.append(tree)
        return out

    avals = [
        jax.ShapeDtypeStruct(t.shape, t.dtype, weak_type=bool(getattr(t, "weak_type", False)))
        for t in map(_type, leaves)
    ]
    exported = jax.export.export(jax.jit(flat))(*avals)
    return Program(exported, in_tree, out_trees[-1])


def _type(x: Any) -> Any:
    """An input's shape, dtype and weak type: a `jax.ShapeDtypeStruct` as it is, anything
    else (arrays, NumPy and Python scalars) as JAX types it."""
    return x if isinstance(x, jax.ShapeDtypeStruct) else jax.typeof(x)


def read_program(
    parts: Sequence[Any], *, environ: Mapping[str, str] | None = None
) -> Program | None:
    """The program an earlier process kept under `parts` (with the same code, libraries and
    settings), or None (none kept, or the cache is off).

    Args:
      parts: reprs of everything beyond the code that decides the program.
      environ: the environment that decides the folder (default `os.environ`).
    """
    path = _path(parts, environ)
    return None if path is None else _read(path)


def keep_program(
    parts: Sequence[Any],
    fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    environ: Mapping[str, str] | None = None,
) -> Program | None:
    """Export `fn(*args)` and keep it under `parts` for later processes; returns it, or None
    when it could not be exported (a program with host callbacks, say): it is then traced
    anew each time, as without the cache. With the cache off it is exported all the same."""
    try:
        program = export_program(fn, args)
    except Exception:  # the cache is an optimisation: the caller traces as before
        return None
    path = _path(parts, environ)
    if path is not None:
        _write(path.parent, path, program)
    return program


def load_or_export(
    parts: Sequence[Any],
    fn: Callable[..., Any],
    args: Callable[[], Sequence[Any]],
    *,
    check: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Program | None:
    """`read_program(parts)`, else `keep_program(parts, fn, args())`: `args` (example
    inputs, arrays or shapes) is asked for only when the cache misses, or to check what
    it read. A kept program that does not fit `args()` (`Program.fits`) is exported anew
    and replaces the file, so later processes read the new one. `check=False` returns
    what it read unchecked and leaves `args` alone (a caller that checks the inputs
    later; `keep_program` then replaces a program that did not fit)."""
    program = read_program(parts, environ=environ)
    if program is None:
        return keep_program(parts, fn, args(), environ=environ)
    if not check:
        return program
    example = args()
    if program.fits(*example):
        return program
    return keep_program(parts, fn, example, environ=environ)


def _path(parts: Sequence[Any], environ: Mapping[str, str] | None) -> Path | None:
    folder = program_cache_dir(environ)
    if folder is None:
        return None
    try:
        return folder / f"{_digest(parts)}.program"
    except OSError:  # bellmax's source unreadable (a zip import): no cache
        return None


def _private(path: Path) -> bool:
    """Whether `path` and its folder belong to this user and are not writable by everyone (a
    file another user could have written is not unpickled); True where the OS keeps no
    owners (Windows). (Group-writable is allowed: a umask of 002 is common with a group of
    one's own; the files are written 0o600 and the folder made 0o700 anyway.)"""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return True
    for p in (path, path.parent):
        st = p.stat()
        if st.st_uid != getuid() or st.st_mode & 0o002:
            return False
    return True


def _read(path: Path) -> Program | None:
    try:
        if not _private(path):
            return None
        data = path.read_bytes()
    except OSError:
        return None
    try:
        fmt, digest, blob, in_tree, out_tree = pickle.loads(data)
        if fmt != FORMAT:
            raise ValueError(f"format {fmt}")
        # (the program's module is parsed only when it is lowered: a damaged byte in it
        # would pass `deserialize` and fail the run later)
        if hashlib.sha256(blob).hexdigest() != digest:
            raise ValueError("damaged")
        program = Program(jax.export.deserialize(bytearray(blob)), in_tree, out_tree)
    except Exception:  # damaged, or written by other versions: traced anew
        try:
            path.unlink(missing_ok=True)
        except OSError:  # (a read-only cache folder: it stays, and is skipped each time)
            pass
        return None
    try:
        os.utime(path)  # recently used (the bound drops the oldest)
    except OSError:
        pass
    return program


def _write(folder: Path, path: Path, program: Program) -> None:
    """Keep `program` in `path`; a folder that cannot be written only costs time."""
    try:
        blob = bytes(program.exported.serialize())
        digest = hashlib.sha256(blob).hexdigest()
        data = pickle.dumps((FORMAT, digest, blob, program.in_tree, program.out_tree))
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            if hasattr(os, "fchmod"):  # (not on Windows)
                os.fchmod(f.fileno(), 0o600)
            f.write(data)
        with _LOCK:
            due = folder not in _PRUNED
            _PRUNED.add(folder)
        if due and prune_due(folder):
            prune(folder, DEFAULT_MAX_BYTES)
    except Exception:  # (unwritable, unpicklable, unserialisable): it only costs time
        pass


def _digest(parts: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for piece in (FORMAT, _code(), _libraries(), _settings(), _platform(), *parts):
        h.update(repr(piece).encode())
        h.update(b"\0")
    return h.hexdigest()


@functools.cache
def _code() -> str:
    """A hash of bellmax's source: every `.py` file of the package, by path and content."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for file in sorted(root.rglob("*.py")):
        h.update(file.relative_to(root).as_posix().encode() + b"\0")
        h.update(file.read_bytes())
    return h.hexdigest()


@functools.cache
def _libraries() -> tuple:
    """Each traced library's entry file, size and time (an install changes them; reading
    their versions from the package metadata took ~0.1 s)."""
    found = []
    for name in TRACED_LIBRARIES:
        try:
            spec = importlib.util.find_spec(name)
            st = os.stat(spec.origin)  # type: ignore[union-attr, arg-type]
            found.append((name, spec.origin, st.st_size, st.st_mtime_ns))  # type: ignore[union-attr]
        except (ImportError, ValueError, TypeError, AttributeError, OSError):
            found.append((name, None))
    return tuple(found)


def _settings() -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in jax.config.values.items()))


def _platform() -> tuple:
    device = jax.devices()[0]
    return (jax.default_backend(), device.platform, device.client.platform_version)
