"""JAX's persistent compilation cache, on by default, in the user's cache directory.

Most of a short run's time is XLA compiling its programs (a PPO run on CartPole-v1: ~4 s of
compile against well under a second of training). With the persistent cache, the second run
of the same program loads the compiled code from disk instead. `import bellmax` and the
`bellmax` command turn it on, in `user_cache_dir() / "xla"` (`$BELLMAX_CACHE_DIR`, else
`$XDG_CACHE_HOME/bellmax`, else `~/.cache/bellmax`), bounded to `DEFAULT_MAX_BYTES`: when it
is turned on and the folder holds more, the least recently used programs are deleted down to
three quarters of the bound (the folder is checked at most once an hour). (Not JAX's own
bound, `jax_compilation_cache_max_size`: its eviction reads a timestamp file beside every
entry, and an entry without one (a process killed between the two writes, or one that ran
without the bound) makes every later write fail with a warning.)

When JAX is not imported yet (`import bellmax` does not import it), the settings go to
JAX's environment variables (`JAX_COMPILATION_CACHE_DIR`, which child processes inherit),
read when JAX is imported; otherwise to `jax.config`.

It stays off when the user decides otherwise: a cache directory already chosen for JAX (by
`jax.config.update("jax_compilation_cache_dir", ...)` or `JAX_COMPILATION_CACHE_DIR`) is
left as it is, and `BELLMAX_COMPILE_CACHE=0` turns bellmax's default off. A cache directory
that cannot be created only costs time: the cache then stays off, silently.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from bellmax.core.paths import user_cache_dir

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MIN_COMPILE_SECONDS",
    "OFF_VALUES",
    "compile_cache_dir",
    "enable_compile_cache",
    "prune",
    "prune_due",
]

#: The cache's size bound in bytes.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Programs that compile faster than this get no file: none. The small programs a command
#: runs add up (JAX's own default, 1 s, and bellmax's earlier 0.2 s left them out): with
#: every program kept, a warm `bellmax control --env CartPole-v1 --episodes 2` took 2.08 s
#: instead of 2.63, `bellmax sysid --env CartPole-v1` 2.31 s instead of 2.91; cold runs and
#: warm PPO training took the same time (2 cores, three runs each).
MIN_COMPILE_SECONDS = 0.0
#: The folder is scanned for the size bound at most this often (the age of a stamp beside it,
#: `xla.pruned`): a scan stats every file, and `import bellmax` and the `bellmax` command
#: turn the cache on (a scan of the 6,500 files one test-suite run leaves took 16-24 ms).
PRUNE_INTERVAL_SECONDS = 3600.0
#: What turns a cache off (`BELLMAX_COMPILE_CACHE`, `BELLMAX_PROGRAM_CACHE`), in any case.
OFF_VALUES = ("0", "off", "false", "no")


def compile_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where bellmax keeps compiled programs, or None when its cache is turned off.

    Args:
      environ: the environment to read (default `os.environ`).
    """
    env = os.environ if environ is None else environ
    if env.get("BELLMAX_COMPILE_CACHE", "").strip().lower() in OFF_VALUES:
        return None
    try:
        return user_cache_dir(env) / "xla"
    except RuntimeError:  # no home directory: no default cache
        return None


def enable_compile_cache(
    environ: Mapping[str, str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Path | None:
    """Turn on JAX's persistent compilation cache in bellmax's cache directory.

    Does nothing when JAX already has a cache directory (the user's choice), when
    `BELLMAX_COMPILE_CACHE=0`, or when the directory cannot be created.

    Args:
      environ: the environment to read (default `os.environ`).
      max_bytes: the cache's size bound (negative: unbounded).

    Returns:
      The cache directory now in use by bellmax's choice, or None when nothing was changed.
    """
    jax = sys.modules.get("jax")  # not imported yet: JAX reads the setting from os.environ
    if jax is not None and jax.config.jax_compilation_cache_dir:
        return None
    if jax is None and os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    path = compile_cache_dir(environ)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            return None
    except OSError:
        return None
    if max_bytes >= 0 and prune_due(path):
        prune(path, max_bytes)
    if jax is None:  # `import bellmax` stays free of JAX; JAX reads these when it is imported
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
        os.environ.setdefault(
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_SECONDS)
        )
    else:
        jax.config.update("jax_compilation_cache_dir", str(path))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


def prune_due(path: Path) -> bool:
    """Whether the last size check of the cache folder `path` is `PRUNE_INTERVAL_SECONDS`
    old (or unknown); if so, its stamp is renewed now."""
    stamp = path.with_name(path.name + ".pruned")
    try:
        if time.time() - stamp.stat().st_mtime < PRUNE_INTERVAL_SECONDS:
            return False
    except OSError:  # no stamp yet
        pass
    try:
        stamp.touch()
    except OSError:  # a read-only parent: check every time, as before
        pass
    return True


def prune(path: Path, max_bytes: int) -> int:
    """Delete the least recently used files of a cache folder holding more than `max_bytes`,
    down to three quarters of it; files that vanish meanwhile (another process) are skipped.

    Returns:
      The number of bytes deleted.
    """
    entries = []
    for entry in os.scandir(path):
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if entry.is_file(follow_symlinks=False):
            entries.append((max(st.st_atime, st.st_mtime), st.st_size, entry.path))
    total = sum(size for _, size, _ in entries)
    if total <= max_bytes:
        return 0
    freed = 0
    for _, size, file in sorted(entries):
        if total - freed <= 0.75 * max_bytes:
            break
        try:
            os.unlink(file)
            freed += size
        except OSError:
            continue
    return freed
