"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Each writer writes to a temporary file in the target's directory, flushes and fsyncs it,
then renames it over the target with `os.replace` (atomic on POSIX and Windows within one
file system). If writing fails part-way, the temporary file is removed and the target is
left exactly as it was. New files get the usual permissions (`0o666` less the umask).

JSON is strict: `atomic_write_json` refuses NaN and infinities (which `json.dumps` would
otherwise write as the invalid tokens `NaN`/`Infinity`) and raises a `ValueError` naming
where the bad number is, before anything is written. Encode such values yourself (e.g. as
`None` or a string) if you mean to store them. NumPy and JAX scalars and arrays are
converted to Python numbers and lists.

`FileLock` is an exclusive advisory lock (`fcntl.flock`) on a file: one writer per run
directory. The kernel releases it when its holder exits, `kill -9` included, so a stale
lock file never blocks anyone; the file itself is left in place (deleting lock files races).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bellmax.core.errors import BellmaxError
from bellmax.core.io import atomic_open

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks
    fcntl = None

__all__ = [
    "FileLock",
    "LockHeldError",
    "atomic_open",
    "atomic_savefig",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "lock_output_dir",
    "to_jsonable",
    "to_strict_json",
]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically.

    Args:
      path: destination file; parent directories are created.
      data: the bytes to write.

    Returns:
      The path written, as a `Path`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(
            f"atomic_write_bytes needs bytes, got {type(data).__name__}; "
            "use atomic_write_text for str."
        )
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write the string `text` to `path` atomically (UTF-8 by default, newlines as given).

    Returns:
      The path written, as a `Path`.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"atomic_write_text needs str, got {type(text).__name__}; "
            "use atomic_write_bytes for bytes."
        )
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays (anything with `tolist`) to Python values."""
    if isinstance(obj, Mapping):
        return {k: to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, str | bytes):
        return to_jsonable(obj.tolist())
    return obj


def _find_nonfinite(obj: Any, where: str) -> str | None:
    """The location (`summary["a"][0]`) of the first NaN or infinity in `obj`, if any."""
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"{where} = {obj!r}"
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _find_nonfinite(v, f"{where}[{k!r}]")
            if found:
                return found
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found = _find_nonfinite(v, f"{where}[{i}]")
            if found:
                return found
    return None


def to_strict_json(obj: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """`obj` as strict JSON text: NumPy/JAX values converted, NaN and infinities refused.

    Args:
      obj: a JSON-serialisable value (dicts, lists, strings, numbers, booleans, None,
        NumPy/JAX scalars and arrays).
      indent: indentation passed to `json.dumps` (None for one line).
      sort_keys: sort object keys.

    Returns:
      The JSON text.

    Raises:
      ValueError: a NaN or infinity, named by its location (e.g. `value['loss'][3]`).
      TypeError: a value JSON cannot represent.
    """
    value = to_jsonable(obj)
    bad = _find_nonfinite(value, "value")
    if bad is not None:
        raise ValueError(
            f"{bad} is not a finite number and strict JSON has no NaN/Infinity; "
            "replace it with None (or a string) first."
        )
    try:
        return json.dumps(value, indent=indent, sort_keys=sort_keys, allow_nan=False)
    except TypeError as e:
        raise TypeError(
            f"{e}; convert the value to numbers, strings, lists and dicts first."
        ) from None


def atomic_write_json(
    path: str | os.PathLike, obj: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> Path:
    """Write `obj` as strict JSON to `path` atomically.

    NumPy/JAX numbers and arrays are converted to Python values first. NaN and infinities
    are refused (strict JSON has no such numbers): nothing is written and a `ValueError`
    names the offending entry.

    Args:
      path: destination file.
      obj: a JSON-serialisable value.
      indent: indentation passed to `json.dumps` (None for one line).
      sort_keys: sort object keys.

    Returns:
      The path written, as a `Path`.
    """
    try:
        text = to_strict_json(obj, indent=indent, sort_keys=sort_keys)
    except (ValueError, TypeError) as e:
        raise type(e)(f"cannot write {os.fspath(path)!r} as JSON: {e}") from None
    return atomic_write_text(path, text + "\n")


def atomic_savefig(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """Save a Matplotlib figure to `path` atomically.

    The format comes from the file suffix (e.g. `.png`) unless `format=` is given; the
    other keyword arguments go to `Figure.savefig`. The figure is not closed.

    Returns:
      The path written, as a `Path`.
    """
    if not hasattr(fig, "savefig"):
        raise TypeError(
            f"atomic_savefig needs a matplotlib Figure, got {type(fig).__name__}; "
            "pass `fig` from `fig, ax = plt.subplots()`."
        )
    target = Path(path)
    fmt = savefig_kwargs.pop("format", None) or target.suffix.lstrip(".").lower()
    if not fmt:
        raise ValueError(
            f"cannot tell the image format of {str(target)!r}: give it a suffix such as "
            "'.png' or pass format='png'."
        )
    with atomic_open(target, "wb") as f:
        fig.savefig(f, format=fmt, **savefig_kwargs)
    return target


#: Open a path itself, never a symbolic link's target (where the platform can say so).
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


class LockHeldError(BellmaxError):
    """Another process holds a `FileLock`."""

    def __init__(self, path: Path, owner: str | None):
        self.path, self.owner = path, owner
        who = f"process {owner}" if owner else "another process"
        super().__init__(f"{who} holds the lock {str(path)!r}.")


class FileLock:
    """An exclusive, non-blocking `flock` on `path`, held until `release` or process exit.

    `acquire(create=False)` locks an existing file only (it creates nothing, so a caller can
    look before it writes anything); `write_owner()` records this process id in the file for
    the message another process gets. Where the platform or file system has no `flock`, the
    lock is skipped with a warning.

        lock = FileLock(run_dir / ".lock")
        lock.acquire()          # raises LockHeldError while another process holds it
        ...
        lock.release()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self, *, create: bool = True) -> bool:
        """Take the lock without waiting.

        Args:
          create: create the lock file (and its directory) if missing; with False a missing
            file is not created and nothing is locked.

        Returns:
          True if the lock is held now, False if the file is missing and `create` is False.

        Raises:
          LockHeldError: another process holds it (its pid, if it wrote one, is in `owner`).
        """
        if self._fd is not None:
            return True
        if not self.path.exists():
            if not create:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # Read-only is enough for flock, and opening an existing file so changes nothing.
        flags = os.O_RDONLY | (os.O_CREAT if create else 0) | _NO_FOLLOW
        if self.path.is_symlink():  # (its pid would be written into the link's target)
            raise BellmaxError(
                f"{str(self.path)!r} is a symbolic link, not a lock file; remove it (a run "
                "folder's lock is a plain file that bellmax makes)."
            )
        try:
            fd = os.open(self.path, flags, 0o666)
        except FileNotFoundError:
            return False
        if fcntl is None:
            warnings.warn(f"no file locks here: {str(self.path)!r} is not locked.", stacklevel=2)
            self._fd = fd
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeldError(self.path, self._read_owner()) from None
        except OSError as e:  # a file system without flock
            warnings.warn(
                f"cannot lock {str(self.path)!r} ({e}); continuing without.", stacklevel=2
            )
        self._fd = fd
        return True

    def write_owner(self) -> None:
        """Record this process's id in the lock file (only while holding the lock)."""
        if self._fd is None:
            raise RuntimeError("write_owner() needs the lock; call acquire() first.")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | _NO_FOLLOW)
            with open(fd, "w", encoding="utf-8") as f:
                f.write(f"{os.getpid()}\n")
        except OSError:  # a lock file we may lock but not write: the message lacks the pid
            pass

    def _read_owner(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if text.isdigit() else None

    def release(self) -> None:
        """Drop the lock (closing the file releases it); the file stays."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


#: The lock file of an output folder that one bellmax process writes at a time.
LOCK = ".lock"


def lock_output_dir(out: Path, refuse: Callable[[], Any], *, option: str) -> FileLock:
    """Take `out`'s lock (`LOCK`) for this process, or raise naming the writer at work.

    Where there is no lock file yet, `refuse()` runs first (it raises for a folder this
    writer may not use), so that a refused folder is left as it was. The caller checks
    again under the lock, then records itself (`write_owner`), and releases it at the end.

    Raises:
      BellmaxError: another process holds the lock (`option` names the way out).
    """
    lock = FileLock(out / LOCK)
    try:
        if not lock.acquire(create=False):
            refuse()
            lock.acquire(create=True)
    except LockHeldError as e:
        who = f"process {e.owner}" if e.owner else "another process"
        raise BellmaxError(
            f"{str(out)!r} is being written by another bellmax run ({who} holds {LOCK}); "
            f"wait for it to finish, or choose another {option}."
        ) from None
    return lock
