"""Atomic file writes for the lower layers (core, algorithms) that may not import `train`.

`atomic_open(path)` yields a temporary file in the target's directory; when the `with` block
succeeds it is flushed, fsynced and renamed over `path` (`os.replace`, atomic on one file
system), so a reader sees the old file or the new one, never half of one. On an exception
the temporary file is removed and `path` is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_open"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a binary temporary file that replaces `path` only if the `with` block succeeds.

    Args:
      path: the file to (re)write; missing parent directories are created.

    Returns:
      A context manager yielding the open temporary file (mode "wb").

    Raises:
      IsADirectoryError: `path` is a directory.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write file {str(target)!r}: it is a directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # 0o666 less the umask, like an ordinary open (tempfile would force 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        f = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
