"""Where bellmax keeps files between runs: the user's cache directory.

`user_cache_dir()` is `$BELLMAX_CACHE_DIR` when set, else `$XDG_CACHE_HOME/bellmax` (the XDG
Base Directory rule; a relative `XDG_CACHE_HOME` is ignored, as the specification says), else
`~/.cache/bellmax`. Nothing is created here: writers create what they need (`atomic_open`
makes missing parents). Callers keep their files in a subfolder: the `bellmax` command uses
the directory itself for JAX's compilation cache, verified AlphaZero weights live under
`user_cache_dir() / "weights"`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["user_cache_dir"]


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    if home:
        return Path(home)
    try:
        return Path.home()
    except (RuntimeError, KeyError) as e:  # no HOME and no password-database entry
        raise RuntimeError(
            "cannot find a cache directory: the home directory is unknown; set "
            "BELLMAX_CACHE_DIR (or XDG_CACHE_HOME) to a writable folder."
        ) from e


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The directory for bellmax's cached files (not created).

    Args:
      environ: the environment to read (default `os.environ`).

    Returns:
      `$BELLMAX_CACHE_DIR` (a leading `~` expanded) if set and non-empty, else
      `$XDG_CACHE_HOME/bellmax` if that is an absolute path, else `$HOME/.cache/bellmax`.

    Raises:
      RuntimeError: the home directory is needed and cannot be found (set
        `BELLMAX_CACHE_DIR`).
    """
    env = os.environ if environ is None else environ
    own = env.get("BELLMAX_CACHE_DIR", "")
    if own:
        if own == "~" or own.startswith("~/"):
            return _home(env) / own[2:]
        return Path(os.path.expanduser(own))  # ~user/...: the password database decides
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "bellmax"
    return _home(env) / ".cache" / "bellmax"
