"""XLA settings for small-matrix and small-loop workloads on CPU.

On CPU, XLA (jax 0.10) hands most small matrix products inside loops (the 4x4 Riccati steps
of LQR/iLQR) to the YNNPACK library, whose per-call overhead dominates at these sizes: 256
vmapped finite-horizon LQR problems take ~18-36 ms with it and ~6 ms without.
`tune_xla_flags` turns that fusion off through `XLA_FLAGS`. It must run before JAX starts its
backend (before the first computation). The `bellmax` command, the benchmarks (which record
the flags they ran with) and the test suite call it; library users can call it first thing or
export the flags themselves. `BELLMAX_XLA_DEFAULTS=1` keeps XLA's defaults. The programs that
gain from YNNPACK (a network's training, `NETWORK_UPDATES`; HSVI's trial, `LIBRARY_DOTS`)
turn it back on for themselves (below).

It also turns off XLA's multi-threaded Eigen runtime (`--xla_cpu_multi_thread_eigen=false`):
a matrix product then runs on one thread, and how Eigen splits a product over threads (which
can change the order of its sums) no longer depends on the machine's core count; XLA still
runs independent operations in parallel. PPO and DQN train as fast with it as without (2
cores, 4 vmapped seeds, two runs each: PPO 15.8-15.9 s with it, 15.4-16.0 s without; DQN 6.8
and 7.1 s), and the learning tests were measured with it. (It does not prevent jaxlib 0.10's
batched-LAPACK deadlock; the networks avoid that by factorising one matrix at a time,
`bellmax.deep.networks.orthogonal`.)

And it lets XLA:CPU compile more loops into one kernel each
(`--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=262144`,
`SMALL_LOOP_BYTES`; XLA's default is 1 KiB). XLA:CPU runs a program as a sequence of
kernels, each called on its own (a few microseconds a call), so a `scan` of small steps (a
Riccati step, an iLQR line search, a collocation stage) pays that per kernel and step; a
while loop that calls no library function (LAPACK, other custom calls) and whose iteration
touches less than the threshold (XLA's cost analysis) becomes one compiled function instead,
run on one thread. Measured on the 2-core AMD EPYC against XLA's default threshold, warm
caches: the iLQR cart-pole swing-up 10.3-12.5 -> 2.7 ms, DDP 16 -> 11 ms, an MPC step 0.22
-> 0.09 ms, one T=100 LQR 0.13 -> 0.04 ms (the `--quick` benchmarks); the direct collocation
of the swing-up (its pivot blocks then inverted in XLA's own operations,
`bellmax.control.nlp`) 23-26 -> 15.5 ms (trapezoidal) and 25-27 -> 18.2 ms
(Hermite-Simpson). Why 256 KiB: at 1 MiB, DDP ran in 8-9 ms, but loops that train small
networks became one single-threaded kernel too and ran slower: a policy trained through a
learned model (tests/models/test_through_model.py) 29 -> 61 s, the swing-up DAgger test 28
-> ~116 s; at 256 KiB both are as before (29.5 and 28 s). With 1 MiB, deep RL, bandits,
dynamic programming and MCTS were within the runs' noise (0.9-1.1x) except DQN with 4
vmapped seeds to solved, 8.1-8.6 -> 9.3-9.9 s; not measured again at 256 KiB.
`small_loop_bytes` reads the threshold back.

`cpu_compile_options` compiles lightly the programs whose compile time outweighs their run
time (per program, through `jax.jit(..., compiler_options=...)`). A training state's
initialisation runs once (`RUN_ONCE`: XLA's backend optimisation level 0 and its older
elemental emitters instead of the fusion emitters; PPO's CartPole init compiles in ~0.4 s
instead of ~0.8 and runs in 2-3 ms either way). An evaluation runs a few times per run
(`RUN_SOMETIMES`: level 1 and the elemental emitters). Level 1 alone compiled a 16-seed
CartPole evaluation in 0.98 s instead of 1.82 and ran it about as fast, 32 against 27 ms;
level 0 would run it in 107 ms. The elemental emitters halve what level 1 left: one PPO
CartPole seed's evaluation program compiled in 0.52-0.54 s instead of 1.04-1.19 s. Six
evaluations with their compile, one EPYC core, 2026-12-07: PPO on CartPole-v1, one seed
1.61-1.68 -> 0.74-1.04 s, 16 seeds with 500-step episodes 2.21 -> 1.66 s; DQN, one seed, 1.58
-> 0.85 s; SAC on Pendulum-v1, one seed 0.76 -> 0.63 s, 16 seeds 1.60 -> 1.34 s; the same
returns. An earlier measurement had them run a 16-seed Pendulum evaluation in 21 ms against
12 (its level not recorded): at that rate a run that evaluates more than ~45 times gives back
the compile they save. Level 0 with them ran the 16-seed CartPole case in 2.14 s of six.
The training programs keep XLA's defaults: level 1 compiles PPO's chunk no faster here and
trains up to ~20% slower, the elemental emitters compile it in 1.1 s instead of 1.6 but train
half as fast. Only on CPU; other backends keep their defaults. `jit_lightly(fn, kind)` is
`jax.jit` with those options, chosen at its first call.

One kind turns a default back on instead (`LIBRARY_DOTS`): YNNPACK's dots (XLA's
`LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT`), for a program whose mid-sized float64 products run many
times inside loops. HSVI's trial (`bellmax.pomdp.hsvi`: the lower bound's vectors `[512, 257]`
against 19 beliefs, twice a step) closes RockSample[4,4]'s gap in 1.30-1.38 s with them
against 1.79-1.87 s with `SMALL_MATRIX_FLAGS` alone (one EPYC core, alternated runs).

Another (`NETWORK_UPDATES`) turns on YNNPACK's dots and its reductions
(`LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE`) for the programs that train
networks: the deep-RL chunks of `bellmax.train` (driver and sweeps). Their products are
batches of 64-256 rows through 64-256-wide layers, where the library beats XLA's own loops,
and the reductions are the backward pass's sums over the batch. Measured on the 2-core AMD
EPYC, one core, two runs each (training seconds after compile, one seed): DQN in rl-zoo's
CartPole settings ([256, 256], batch 64) 7.41-7.48 -> 5.94-5.98 s (dots alone 6.56-6.70,
reductions alone 6.86-6.93); PPO on CartPole-v1, 100k steps, 2.23-2.29 -> 1.96-2.23 s; SAC on
Pendulum-v1, 3k steps, 1.26-1.33 -> 1.13-1.19 s; DQN's defaults, 30k steps, 1.03-1.04 ->
0.90-0.91 s; compile times unchanged within the noise. YNNPACK's element-wise fusions
(`LIBRARY_FUSION_TYPE_ELTWISE`) are left out: jaxlib 0.10 refuses a transposed operand in
them ("unsupported layout in YNN fusion").

Neither YNNPACK kind turns it on when `XLA_FLAGS` caps the instruction set
(`--xla_cpu_max_isa`, `isa_capped`): YNNPACK chooses its kernels from the CPU it runs on and
ignores the cap (its AVX-512 dots ran under `--xla_cpu_max_isa=AVX2`), so under a cap those
programs compile with XLA's own code, which obeys it. `make test-portable` relies on this:
its learning tests stand for older CPUs only if every kernel keeps to the cap.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
import threading
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = [
    "LIBRARY_DOTS",
    "NETWORK_UPDATES",
    "RUN_ONCE",
    "RUN_SOMETIMES",
    "SMALL_LOOP_BYTES",
    "SMALL_MATRIX_FLAGS",
    "bucket_size",
    "cpu_compile_options",
    "gc_paused",
    "isa_capped",
    "small_loop_bytes",
    "tune_xla_flags",
]

#: The size (bytes, XLA's cost analysis of one loop iteration) below which XLA:CPU compiles a
#: while loop (a `scan`, a `fori_loop`) free of library calls into one kernel;
#: `tune_xla_flags` raises XLA's default, `XLA_DEFAULT_SMALL_LOOP_BYTES`, to this (why this
#: size: the module's docstring).
SMALL_LOOP_BYTES = 1 << 18
XLA_DEFAULT_SMALL_LOOP_BYTES = 1024
_SMALL_LOOP_OPTION = "xla_cpu_small_while_loop_byte_threshold"

#: Flags added to `XLA_FLAGS` by `tune_xla_flags`.
_FLAGS = {  # the setting's name in XLA_FLAGS -> the flag added when the user has not set it
    "ynn_fusion": "--xla_cpu_experimental_ynn_fusion_type=",
    "multi_thread_eigen": "--xla_cpu_multi_thread_eigen=false",
    # a map of options: one the user sets is theirs, with whatever keys they chose
    "xla_backend_extra_options": (
        f"--xla_backend_extra_options={_SMALL_LOOP_OPTION}={SMALL_LOOP_BYTES}"
    ),
}
SMALL_MATRIX_FLAGS = " ".join(_FLAGS.values())


def tune_xla_flags(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Add `SMALL_MATRIX_FLAGS` to `XLA_FLAGS` unless the user chose otherwise.

    Nothing changes when `BELLMAX_XLA_DEFAULTS` is set to a non-empty value other than `0`;
    a setting that `XLA_FLAGS` already mentions (YNN fusion, multi-threaded Eigen) is the
    user's and stays as it is.

    Args:
      environ: the environment to edit (default `os.environ`).

    Returns:
      The resulting `XLA_FLAGS`, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    if env.get("BELLMAX_XLA_DEFAULTS", "") not in ("", "0"):
        return None
    current = env.get("XLA_FLAGS", "")
    missing = [flag for name, flag in _FLAGS.items() if name not in current]
    if not missing:
        return None
    env["XLA_FLAGS"] = " ".join([current, *missing]).strip()
    return env["XLA_FLAGS"]


def small_loop_bytes(environ: MutableMapping[str, str] | None = None) -> int:
    """XLA:CPU's threshold for compiling a small while loop into one kernel, as `XLA_FLAGS`
    sets it (`tune_xla_flags`: `SMALL_LOOP_BYTES`), else XLA's default.

    XLA reads `XLA_FLAGS` once, when JAX starts its CPU backend; this reads the variable
    now, so it tells what XLA uses as long as the variable was not changed since then.
    Code with a choice between library calls (LAPACK) and XLA's own operations inside a
    loop asks it at trace time: only a loop free of library calls becomes one kernel.
    """
    env = os.environ if environ is None else environ
    found = re.search(_SMALL_LOOP_OPTION + r"=(\d+)", env.get("XLA_FLAGS", ""))
    return int(found.group(1)) if found else XLA_DEFAULT_SMALL_LOOP_BYTES


def bucket_size(n: int, minimum: int = 1) -> int:
    """The power of two at least `n` and `minimum`: the rows to pad `n` rows to, so that data
    of many sizes runs through few compiled programs (one per power of two)."""
    return max(int(minimum), 1 << max(0, int(n) - 1).bit_length())


#: A program that runs once per run (an initialisation): `cpu_compile_options`.
RUN_ONCE = "once"
#: A program that runs a few times per run, briefly (an evaluation).
RUN_SOMETIMES = "sometimes"
#: A program whose mid-sized products run many times (YNNPACK's dots back on; module docstring).
LIBRARY_DOTS = "library_dots"
#: A program that trains networks (YNNPACK's dots and reductions; module docstring).
NETWORK_UPDATES = "network_updates"

_YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
_OPTIONS: dict[str, dict[str, Any]] = {
    RUN_ONCE: {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False},
    RUN_SOMETIMES: {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False},
    LIBRARY_DOTS: {_YNN_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"},
    NETWORK_UPDATES: {_YNN_OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"},
}


def cpu_compile_options(
    kind: str, environ: MutableMapping[str, str] | None = None
) -> dict[str, Any] | None:
    """`jax.jit` compiler options that compile a program lightly on CPU (or, `LIBRARY_DOTS`
    and `NETWORK_UPDATES`, with YNNPACK's dots).

    Under an instruction-set cap (`isa_capped`) YNNPACK is left as `XLA_FLAGS` set it: it
    ignores the cap (module docstring).

    Args:
      kind: `RUN_ONCE`, `RUN_SOMETIMES`, `LIBRARY_DOTS` or `NETWORK_UPDATES`.
      environ: the environment whose `XLA_FLAGS` to read (default `os.environ`, read now).

    Returns:
      The options (those this jaxlib knows) when JAX's default backend is the CPU, else None
      (a GPU or TPU compiles with its defaults).

    Raises:
      ValueError: an unknown kind.
    """
    _check_kind(kind)
    import jax

    if jax.default_backend() != "cpu":
        return None
    options = _OPTIONS[kind]
    if isa_capped(environ):
        options = {k: v for k, v in options.items() if k != _YNN_OPTION}
    return {k: v for k, v in options.items() if _known_option(k, v)}


def isa_capped(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether `XLA_FLAGS` caps the CPU instruction set XLA compiles for
    (`--xla_cpu_max_isa=...`, as `make test-portable` sets it).

    Like `small_loop_bytes`, it reads the variable now (XLA read it when JAX started). A
    cap alone does not keep YNNPACK to it: where `XLA_FLAGS` leave YNNPACK at XLA's default
    (no `tune_xla_flags`), XLA's own YNNPACK fusions still run the CPU's widest kernels.
    """
    env = os.environ if environ is None else environ
    return re.search(r"--xla_cpu_max_isa=\S", env.get("XLA_FLAGS", "")) is not None


def _check_kind(kind: str) -> None:
    if kind not in _OPTIONS:
        raise ValueError(f"kind must be one of {sorted(_OPTIONS)}, got {kind!r}.")


@functools.cache
def _known_option(name: str, value: Any) -> bool:
    """Whether this jaxlib's XLA accepts the compile option (a trivial program, once)."""
    import jax

    try:
        jax.jit(lambda: 0, compiler_options={name: value}).lower().compile()
    except Exception:  # jaxlib raises its runtime error for an unknown option
        return False
    return True


def jit_lightly(fn: Callable[..., Any], kind: str, **jit_kwargs: Any) -> Callable[..., Any]:
    """`jax.jit(fn, **jit_kwargs)` compiled with `cpu_compile_options(kind)`, the options
    chosen at the first call (so building one, e.g. at import time, starts no JAX backend).

    Raises:
      ValueError: an unknown kind.
    """
    _check_kind(kind)

    @functools.cache
    def jitted() -> Callable[..., Any]:
        import jax

        return jax.jit(fn, compiler_options=cpu_compile_options(kind), **jit_kwargs)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return jitted()(*args, **kwargs)

    return call


_GC_LOCK = threading.Lock()
_GC_PAUSES = 0  # threads inside `gc_paused` now
_GC_WAS_ENABLED = False  # whether the first of them found the collector on


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic garbage collector off inside the block (threads may nest and overlap
    their blocks; the last one out turns it back on, if it was on before the first came in).

    Tracing and lowering a JAX program allocates objects fast enough to set off collections
    that traverse every object alive: after `import bellmax` and a network, ~175,000 of
    them. They found no garbage worth the time. Measured on the 2-core AMD EPYC, one
    PPO CartPole program compiled on one CPU: trace 0.27-0.28 s with the collector on, 0.18
    off; the state's initialisation 0.80-0.87 s against 0.73. `bellmax.train` traces and
    compiles inside it: process start to solved with PPO on CartPole-v1, empty compile cache,
    two CPUs, 4 runs each interleaved: median 4.90 s against 5.08. A collection runs as
    usual after the block when one is due; the youngest generation is collected on the way
    out (what the pause deferred, in the block's time).
    """
    global _GC_PAUSES, _GC_WAS_ENABLED
    with _GC_LOCK:
        if _GC_PAUSES == 0:
            _GC_WAS_ENABLED = gc.isenabled()
            gc.disable()
        _GC_PAUSES += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_PAUSES -= 1
            resumed = _GC_PAUSES == 0 and _GC_WAS_ENABLED
            if resumed:
                gc.enable()
        if resumed:  # outside the lock: a finaliser may enter a pause of its own
            gc.collect(0)  # the young objects of the pause, now rather than at random
