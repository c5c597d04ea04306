"""XLA settings for small-matrix workloads on CPU.

On CPU, XLA (jax 0.10) hands most small matrix products inside loops (the 4x4 Riccati steps
of LQR/iLQR, a 64-wide MLP layer) to the YNNPACK library, whose per-call overhead dominates at
these sizes: 256 vmapped finite-horizon LQR problems take ~18-36 ms with it and ~6 ms without.
`tune_xla_flags` turns that fusion off through `XLA_FLAGS`. It must run before JAX starts its
backend (before the first computation). The `bellmax` command, the benchmarks (which record
the flags they ran with) and the test suite call it; library users can call it first thing or
export the flag themselves. `BELLMAX_XLA_DEFAULTS=1` keeps XLA's defaults.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

__all__ = ["SMALL_MATRIX_FLAGS", "tune_xla_flags"]

#: Flags added to `XLA_FLAGS` by `tune_xla_flags`.
SMALL_MATRIX_FLAGS = "--xla_cpu_experimental_ynn_fusion_type="


def tune_xla_flags(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Add `SMALL_MATRIX_FLAGS` to `XLA_FLAGS` unless the user chose otherwise.

    Nothing changes when `BELLMAX_XLA_DEFAULTS` is set to a non-empty value other than `0`,
    or when `XLA_FLAGS` already mentions the YNN fusion setting.

    Args:
      environ: the environment to edit (default `os.environ`).

    Returns:
      The resulting `XLA_FLAGS`, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    if env.get("BELLMAX_XLA_DEFAULTS", "") not in ("", "0"):
        return None
    current = env.get("XLA_FLAGS", "")
    if "ynn_fusion" in current:
        return None
    env["XLA_FLAGS"] = (current + " " + SMALL_MATRIX_FLAGS).strip()
    return env["XLA_FLAGS"]
