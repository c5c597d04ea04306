"""Test-wide settings: the tests run with the XLA setting the `bellmax` command ships with.

`bellmax.core.xla.tune_xla_flags` turns off XLA's YNN fusion for small-matrix loops (faster
runs and shorter compiles); the `bellmax` command and the benchmarks use it too, so the tests
check what users run. BELLMAX_XLA_DEFAULTS=1 runs them with XLA's defaults instead.

Not used, on purpose: `--xla_backend_optimization_level=0` with
`--xla_llvm_disable_expensive_passes=true` saved about a fifth of the compile time, but
together with the YNN setting it made tests/bandits/test_agents.py's Thompson-sampling
frequencies wrong (0.26 vs 0.21 for one arm), so that combination miscompiles on jax 0.10.2.
"""

from bellmax.core.xla import tune_xla_flags

tune_xla_flags()
