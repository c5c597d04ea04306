"""Test-wide settings.

Compilation dominates this suite's time on a CPU (each training program compiles for 5-20 s,
runs for 1-5 s). XLA's cheaper backend settings cut that by about a fifth: tests check what
programs compute, not how fast they run (bench/ measures speed, with default settings).
Set BELLMAX_TEST_XLA_DEFAULTS=1 to test with XLA's default optimisation instead.
"""

import os

if os.environ.get("BELLMAX_TEST_XLA_DEFAULTS", "") in ("", "0"):
    _FAST = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FAST).strip()

from bellmax.core.xla import tune_xla_flags

tune_xla_flags()
