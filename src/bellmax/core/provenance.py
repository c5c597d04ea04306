"""Where a result came from: package versions, command line, git commit, time and machine.

`run_provenance()` is what `bellmax train` records in `run.json` so that a run can be
reproduced (`bellmax train ALGO --config run.json`) and a differing result explained. It
never fails: whatever cannot be found (no git, no repository, a package not installed) is
recorded as None.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["PACKAGES", "git_commit", "package_versions", "platform_info", "run_provenance"]

#: The distributions whose versions shape a training result (gymnasium's through the bridge).
PACKAGES = ("bellmax", "jax", "jaxlib", "numpy", "flax", "optax", "gymnasium")

#: Seconds `git` may take before the commit is recorded as unknown.
GIT_TIMEOUT = 2.0


def package_versions(packages: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each distribution (None if not installed).

    Read from the installed metadata (`importlib.metadata`): nothing is imported, so
    asking for gymnasium's version does not load gymnasium.
    """
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except (importlib.metadata.PackageNotFoundError, ValueError):
            out[name] = None
    if out.get("bellmax") is None and "bellmax" in packages:  # run from a source tree
        out["bellmax"] = getattr(sys.modules.get("bellmax"), "__version__", None)
    return out


def git_commit(
    cwd: str | os.PathLike | None = None, *, timeout: float = GIT_TIMEOUT
) -> dict[str, Any] | None:
    """The git commit checked out in `cwd`'s repository, or None outside one.

    Returns:
      `{"commit": full hash, "dirty": True if tracked files differ from it}` (dirty None
      when that could not be told in time), or None when there is no git, no repository,
      or git does not answer within `timeout` seconds.
    """

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(
                ["git", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return None

    head = git("rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return None
    commit = head.stdout.strip()
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None or status.returncode != 0 else bool(status.stdout.strip())
    return {"commit": commit, "dirty": dirty}


def platform_info() -> dict[str, Any]:
    """Python, operating system, machine, CPU model and count, and (if JAX is loaded) its
    backend, devices and `XLA_FLAGS`. No host name: a run.json may be shared."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
    }
    jax = sys.modules.get("jax")  # only if the caller uses JAX: never start a backend here
    if jax is not None:
        try:
            info["jax_backend"] = jax.default_backend()
            info["jax_devices"] = [str(d.device_kind) for d in jax.devices()]
        except Exception:  # a backend that fails to start is recorded as unknown
            info["jax_backend"] = info["jax_devices"] = None
        info["xla_flags"] = os.environ.get("XLA_FLAGS")
        info["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
    return info


def run_provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """A JSON-able record of where a run came from.

    Args:
      argv: the command line (default: `sys.argv`, program name included).

    Returns:
      `{"versions": {package: version or None}, "command": [argv...], "cwd": ...,
      "git": {"commit": ..., "dirty": ...} or None, "time": ISO 8601 UTC,
      "platform": {...}}`.
    """
    return {
        "versions": package_versions(),
        "command": [str(a) for a in (sys.argv if argv is None else argv)],
        "cwd": _cwd(),
        "git": git_commit(),
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "platform": platform_info(),
    }


def _cpu_model() -> str | None:
    """The CPU's model name (a learned result depends on the CPU through XLA's code)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip() or None
    except OSError:
        pass
    return platform.processor() or None


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working directory was deleted
        return None
