"""JAX's persistent compilation cache, on by default, in the user's cache directory.

Most of a short run's time is XLA compiling its programs (a PPO run on CartPole-v1: ~4 s of
compile against well under a second of training). With the persistent cache, the second run
of the same program loads the compiled code from disk instead. `import bellmax` and the
`bellmax` command turn it on, in `user_cache_dir() / "xla"` (`$BELLMAX_CACHE_DIR`, else
`$XDG_CACHE_HOME/bellmax`, else `~/.cache/bellmax`), bounded to `DEFAULT_MAX_BYTES` (JAX
evicts the least recently used entries beyond it).

It stays off when the user decides otherwise: a cache directory already chosen for JAX (by
`jax.config.update("jax_compilation_cache_dir", ...)` or `JAX_COMPILATION_CACHE_DIR`) is
left as it is, and `BELLMAX_COMPILE_CACHE=0` turns bellmax's default off. A cache directory
that cannot be created only costs time: the cache then stays off, silently.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

import jax

from bellmax.core.paths import user_cache_dir

__all__ = ["DEFAULT_MAX_BYTES", "compile_cache_dir", "enable_compile_cache"]

#: The cache's size bound in bytes (JAX evicts least recently used entries beyond it).
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Programs that compile faster than this are not worth a file.
_MIN_COMPILE_SECONDS = 0.2
_OFF = ("0", "off", "false", "no")


def compile_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where bellmax keeps compiled programs, or None when its cache is turned off.

    Args:
      environ: the environment to read (default `os.environ`).
    """
    env = os.environ if environ is None else environ
    if env.get("BELLMAX_COMPILE_CACHE", "").strip().lower() in _OFF:
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
      max_bytes: the cache's size bound (-1: unbounded).

    Returns:
      The cache directory now in use by bellmax's choice, or None when nothing was changed.
    """
    if jax.config.jax_compilation_cache_dir:
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
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS)
    if importlib.util.find_spec("filelock") is not None:  # JAX's eviction needs it
        jax.config.update("jax_compilation_cache_max_size", int(max_bytes))
    return path
