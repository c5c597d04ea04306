"""Shared helpers for bellmax's benchmarks: fair timing, one JSON line per result, peer venvs.

Every script in `bench/` measures bellmax and a peer library on the same work and reports
through this module:

    import _harness as H            # first, before numpy / jax / torch
    H.fair_threads()                # same thread limits for us and the peer
    t = H.time_jax(rollout, key)    # compile time apart from steady-state run time
    rec = H.result("env_rollout", ours=..., peer=..., unit="steps/s", peer_name="gymnax")
    H.emit(rec)                     # one JSON line on stdout + appended to bench/results/

Peers that conflict with bellmax's pins live in `bench/.venv-peers/` (made by
`bash bench/setup_peers.sh GROUP`) and run as a subprocess through `run_in_peer_venv`, which
returns a `skipped` marker (with the exact install command) when the venv or package is missing.

This module imports only the standard library at import time, so peer-side code running in the
peer venv can import it too; jax is imported lazily by `time_jax`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import functools
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

try:  # POSIX only; without it appends are still atomic, just not serialised.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
#: The peer venv (`setup_peers.sh` honours the same BELLMAX_PEER_VENV override).
PEER_VENV = Path(os.environ.get("BELLMAX_PEER_VENV") or BENCH_DIR / ".venv-peers")
SETUP_SCRIPT = "bash bench/setup_peers.sh"

#: Environment variables that cap the thread pools of BLAS, OpenMP and friends.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: Units where a smaller number is better (durations); "/s" units are rates (bigger is better).
TIME_UNITS = ("ns", "us", "ms", "s", "min", "h")

#: Keys `result` writes itself; `**extra` may not override them.
CORE_KEYS = ("bench", "ours", "peer", "ratio", "unit", "better", "speedup")


# --------------------------------------------------------------------------- threads
def thread_env(threads: int = 1) -> dict[str, str]:
    """The environment variables that cap native thread pools at `threads`.

    Args:
      threads: threads per pool (PEERS.md: 1 for small problems on the 2-core machines).
    Returns:
      `{VAR: str(threads)}` for every name in `THREAD_VARS`.
    """
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be an int >= 1, got {threads!r}; pass e.g. threads=1.")
    return {name: str(threads) for name in THREAD_VARS}


def thread_counts(peer_threads: int | None = None) -> dict[str, Any]:
    """How many threads each side computes with, for every record (`machine.thread_counts`).

    Ours: XLA:CPU sizes its intra-op thread pool (independent operations and large loops run
    on it in parallel) to the CPUs this process may use, and runs a matrix product on one
    thread when `--xla_cpu_multi_thread_eigen=false` (bellmax.core.xla), else on that pool.
    The peer: the BLAS/OpenMP caps of `thread_env` (torch's intra-op pool is set from the same
    number in the peer scripts). `equal` is true when both are the same number; pin the
    benchmark to that many CPUs with `--cpus N` (`pin_cpus`) to make them so.

    Args:
      peer_threads: the peer's threads; default `OMP_NUM_THREADS` (what `fair_threads` set).
    Returns:
      `{"ours_xla_intra_op": int, "ours_matmul": int, "peer": int | None, "equal": bool}`.
    """
    xla_pool = usable_cpus()
    flags = os.environ.get("XLA_FLAGS", "")
    matmul = 1 if "--xla_cpu_multi_thread_eigen=false" in flags else xla_pool
    if peer_threads is None:
        with contextlib.suppress(TypeError, ValueError):
            peer_threads = int(os.environ.get("OMP_NUM_THREADS"))  # type: ignore[arg-type]
    return {
        "ours_xla_intra_op": xla_pool,
        "ours_matmul": matmul,
        "peer": peer_threads,
        "equal": peer_threads is not None and xla_pool == matmul == peer_threads,
    }


def pin_cpus(n: int) -> list[int]:
    """Run this process, and every process it starts, on its first `n` usable CPUs.

    XLA:CPU has no setting for its intra-op thread pool: it takes one thread per CPU the
    process may run on, when JAX starts its backend. Pinning before that (before the first
    computation) is how bellmax's side gets the same thread count as a peer capped with
    `thread_env(n)`. Child processes (fresh bellmax runs, peer venvs) inherit the pinning.

    Args:
      n: CPUs to keep (>= 1, at most `usable_cpus()`).
    Returns:
      The CPUs now in use.
    """
    _check_count("n", n, 1)
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - macOS, Windows
        raise RuntimeError("pin_cpus needs os.sched_setaffinity (Linux); run without --cpus.")
    cpus = sorted(os.sched_getaffinity(0))
    if n > len(cpus):
        raise ValueError(f"--cpus {n} is more than the {len(cpus)} CPUs this process may use.")
    backends = getattr(sys.modules.get("jax._src.xla_bridge"), "_backends", None)
    if backends:
        print(
            "[bench] note: jax's backend already started; its thread pool keeps its size. "
            "Pin the CPUs first thing (--cpus is applied when the arguments are parsed).",
            file=sys.stderr,
        )
    os.sched_setaffinity(0, cpus[:n])
    return cpus[:n]


def _tune_xla() -> None:
    """bellmax's XLA small-matrix setting (bellmax.core.xla), as the `bellmax` command uses;
    recorded in each result's `machine.xla_flags`. BELLMAX_XLA_DEFAULTS=1 keeps XLA's own."""
    try:
        from bellmax.core.xla import tune_xla_flags
    except ImportError:  # peer venv without bellmax: nothing to match
        return
    tune_xla_flags()


#: Whether `fair_threads` ran in this process already (its first call says whether numpy or
#: torch came first; later ones, from a bench script importing another, say nothing more).
_FAIR_THREADS_CALLED = False


def fair_threads(threads: int = 1, *, override: bool = False) -> dict[str, str]:
    """Cap BLAS/OpenMP thread pools in this process and its children.

    Call it before importing numpy, scipy or torch: they read these variables once at import.
    Variables the user already exported are kept unless `override` is true. If torch is already
    imported its intra-op pool is capped too (`torch.set_num_threads`).

    Args:
      threads: threads per pool.
      override: replace values already set in the environment.
    Returns:
      The thread settings now in force, `{VAR: value}`.
    """
    global _FAIR_THREADS_CALLED
    wanted = thread_env(threads)
    for name, value in wanted.items():
        if override or name not in os.environ:
            os.environ[name] = value
    late = [m for m in ("numpy", "torch") if m in sys.modules]
    if late and not _FAIR_THREADS_CALLED:
        print(
            f"[bench] note: {', '.join(late)} imported before fair_threads(); "
            "thread limits may not apply to it. Import _harness first.",
            file=sys.stderr,
        )
    _FAIR_THREADS_CALLED = True
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    _tune_xla()  # imports bellmax (and numpy): after the thread variables are set
    return {name: os.environ[name] for name in THREAD_VARS}


# --------------------------------------------------------------------------- timing
@dataclasses.dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one callable, in seconds per call."""

    min: float
    """Fastest sample: the best estimate of the cost without interference."""
    median: float
    """Median sample: the typical cost; what the benchmarks report."""
    mean: float
    """Mean sample."""
    times: tuple[float, ...]
    """Every sample, in order."""

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        """`{prefix+'min_s': ..., prefix+'median_s': ..., ...}` for a JSON record."""
        return {
            f"{prefix}min_s": self.min,
            f"{prefix}median_s": self.median,
            f"{prefix}mean_s": self.mean,
            f"{prefix}repeat": len(self.times),
        }


def _check_count(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")


def time_it(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1, number: int = 1) -> Timing:
    """Time `fn()` fairly: `warmup` untimed calls, then `repeat` samples.

    Each sample times `number` back-to-back calls and divides by `number` (use `number > 1`
    for calls shorter than a millisecond). `fn` must finish its work before returning: for jax,
    call `jax.block_until_ready` on the output inside `fn` (or use `time_jax`).

    Args:
      fn: zero-argument callable to time.
      repeat: number of timed samples (>= 1).
      warmup: untimed calls first (>= 0), e.g. to fill caches or trigger compilation.
      number: calls per sample (>= 1).
    Returns:
      A `Timing` with min/median/mean seconds per call.
    """
    if not callable(fn):
        raise TypeError(f"time_it needs a callable, got {type(fn).__name__}.")
    _check_count("repeat", repeat, 1)
    _check_count("warmup", warmup, 0)
    _check_count("number", number, 1)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return Timing(
        min=min(times),
        median=statistics.median(times),
        mean=statistics.fmean(times),
        times=tuple(times),
    )


@dataclasses.dataclass(frozen=True)
class JaxTiming:
    """Compile time and steady-state run time of one jitted function, in seconds."""

    trace_s: float
    """Tracing and lowering to StableHLO (`jit(fn).lower(*args)`)."""
    compile_s: float
    """XLA compilation (`lowered.compile()`); a persistent-cache hit makes this small."""
    first_call_s: float
    """First call of the compiled function, including `block_until_ready`."""
    run: Timing
    """Steady-state calls after warm-up."""

    @property
    def startup_s(self) -> float:
        """What a user waits before the first result: trace + compile + first call."""
        return self.trace_s + self.compile_s + self.first_call_s

    @property
    def overhead_s(self) -> float:
        """One-off cost: `startup_s` minus a steady-state call (the median)."""
        return self.startup_s - self.run.median

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        """Flat fields for a JSON record (`trace_s`, `compile_s`, `run_median_s`, ...)."""
        return {
            f"{prefix}trace_s": self.trace_s,
            f"{prefix}compile_s": self.compile_s,
            f"{prefix}first_call_s": self.first_call_s,
            f"{prefix}startup_s": self.startup_s,
            f"{prefix}overhead_s": self.overhead_s,
            **self.run.to_dict(prefix + "run_"),
        }


def time_jax(fn: Callable[..., Any], *args: Any, repeat: int = 5, warmup: int = 1) -> JaxTiming:
    """Time a jax function with its compilation reported apart from its run time.

    Compiles ahead of time (`jax.jit(fn).lower(*args).compile()`), timing tracing and XLA
    compilation separately, then times the compiled executable with `block_until_ready` on
    every output. `fn` may already be jitted (static arguments must then be bound, e.g. by a
    closure): every positional `args` entry is a traced argument.

    Args:
      fn: function of `*args` returning a pytree of arrays.
      *args: example arguments (arrays or pytrees of arrays).
      repeat: steady-state samples (>= 1).
      warmup: untimed steady-state calls after the first call (>= 0).
    Returns:
      A `JaxTiming` (trace, compile, first call, steady-state `Timing`).
    """
    import jax

    if not callable(fn):
        raise TypeError(f"time_jax needs a callable, got {type(fn).__name__}.")
    _check_count("repeat", repeat, 1)
    _check_count("warmup", warmup, 0)
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    t0 = time.perf_counter()
    lowered = jitted.lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    t3 = time.perf_counter()
    run = time_it(lambda: jax.block_until_ready(compiled(*args)), repeat=repeat, warmup=warmup)
    return JaxTiming(trace_s=t1 - t0, compile_s=t2 - t1, first_call_s=t3 - t2, run=run)


# --------------------------------------------------------------------------- records
def _better(unit: str) -> str:
    if unit in TIME_UNITS or any(unit.startswith(u + "/") for u in TIME_UNITS):
        return "lower"  # "s", "ms", "s/iter": a duration
    if "/s" in unit or unit.startswith("1/"):
        return "higher"  # "steps/s", "games/s": a rate
    raise ValueError(
        f"cannot tell from unit {unit!r} whether higher or lower is better; "
        "pass better='lower' (durations, errors) or better='higher' (rates, scores)."
    )


def _number(name: str, value: Any, *, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        hint = " (or None when the peer was skipped)" if allow_none else ""
        raise TypeError(f"{name} must be a number{hint}, got {value!r}.") from None
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}; check the measurement.")
    return x


def result(
    bench: str,
    ours: float,
    peer: float | None,
    unit: str,
    *,
    better: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One benchmark record: bellmax's number, the peer's, and their ratio.

    `ratio = ours / peer`, always in that direction. For a duration (`unit` "s", "ms",
    "s/iter"...) `ratio < 1` means bellmax is faster; for a rate ("steps/s") `ratio > 1` means
    bellmax is faster. `speedup` removes the guesswork: it is > 1 exactly when bellmax is
    better (`peer/ours` for "lower is better", `ours/peer` for "higher is better").

    Args:
      bench: benchmark name; also the results file name, `bench/results/<bench>.jsonl`.
      ours: bellmax's measurement.
      peer: the peer's measurement on the same work, or None when the peer was skipped
        (ratio and speedup are then None; say why in an extra field such as `peer_skipped`).
      unit: unit of both numbers, e.g. "s", "ms", "steps/s".
      better: "lower" or "higher"; inferred from `unit` when omitted.
      **extra: more JSON-serialisable fields (peer_name, case, sizes, compile times...).
    Returns:
      A dict with `bench, ours, peer, ratio, unit, better, speedup` and the extra fields.
    """
    if (
        not isinstance(bench, str)
        or not bench
        or any(c in bench for c in "/\\\0")
        or (bench.startswith("."))
    ):
        raise ValueError(
            f"bench must be a non-empty name usable as a file name (no '/', no leading '.'), "
            f"got {bench!r}; e.g. 'env_rollout'."
        )
    if not isinstance(unit, str) or not unit:
        raise ValueError(f"unit must be a non-empty string such as 's' or 'steps/s', got {unit!r}.")
    if better is None:
        better = _better(unit)
    elif better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}.")
    clash = sorted(set(extra) & set(CORE_KEYS))
    if clash:
        raise TypeError(f"extra fields {clash} clash with the record's own keys; rename them.")
    ours_f = _number("ours", ours, allow_none=False)
    peer_f = _number("peer", peer, allow_none=True)
    ratio = speedup = None
    if peer_f is not None and peer_f != 0.0:
        ratio = ours_f / peer_f
        if better == "higher":
            speedup = ratio
        elif ours_f != 0.0:
            speedup = peer_f / ours_f
    return {
        "bench": bench,
        "ours": ours_f,
        "peer": peer_f,
        "ratio": ratio,
        "unit": unit,
        "better": better,
        "speedup": speedup,
        **extra,
    }


_NOT_RESULTS = ":(exclude)bench/results"


def _git_commit(repo: Path = REPO_ROOT) -> str | None:
    """HEAD's short hash, with `-dirty` when tracked or untracked (not ignored) files differ."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        # Untracked files count (a new, uncommitted module changes what runs); the result
        # records themselves do not (they are this harness's own output).
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=normal", "--", ".", _NOT_RESULTS],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "") if head else None


def package_version(dist: str) -> str | None:
    """Installed version of distribution `dist` (from its metadata, without importing it)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


@functools.cache
def _static_machine_info() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "cpu_model": _cpu_model(),
        "memory_gib": mem_gib,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": package_version("jax"),
        "jaxlib": package_version("jaxlib"),
        "numpy": package_version("numpy"),
        "bellmax": package_version("bellmax"),
        "git_commit": _git_commit(),
    }


def machine_info() -> dict[str, Any]:
    """Where and with what a measurement was taken: CPU, platform, versions, threads, load.

    Versions come from package metadata (nothing is imported); the jax backend and the
    persistent-compilation-cache directory are added only when jax is already imported.
    """
    info = dict(_static_machine_info())
    info["cpu_usable"] = usable_cpus()  # after any --cpus pinning
    info["threads"] = {name: os.environ.get(name) for name in THREAD_VARS}
    info["thread_counts"] = thread_counts()
    with contextlib.suppress(OSError, AttributeError):
        # Other work on the machine skews timings: a 1-minute load above cpu_count is a warning.
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
        info["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    if _QUIET_CHECK is not None:
        # The load when measuring began (`wait_for_quiet`): quiet = below the CPU count.
        info["quiet"] = dict(_QUIET_CHECK)
    jax = sys.modules.get("jax")
    if jax is not None:
        with contextlib.suppress(Exception):
            info["jax_backend"] = jax.default_backend()
            info["jax_devices"] = [d.device_kind for d in jax.devices()]
            info["jax_cache_dir"] = jax.config.jax_compilation_cache_dir
            info["jax_compilation_cache"] = bool(jax.config.jax_enable_compilation_cache)
    return info


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy/jax scalars and arrays to Python, NaN/inf to None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if hasattr(value, "tolist"):  # numpy / jax arrays and scalars
        return _jsonable(value.tolist())
    raise TypeError(
        f"cannot write {type(value).__name__} ({value!r}) to JSON; convert it to a number, "
        "string, list or dict first."
    )


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """Exclusive advisory lock on `directory` itself (no lock file to clean up)."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def append_line(path: str | os.PathLike[str], line: str) -> None:
    """Append one line to `path` atomically and safely against concurrent writers.

    Strategy: under an exclusive `flock` on the parent directory, read the current file, write
    old content + the new line to a temporary file in the same directory, fsync it and
    `os.replace` it over the original. Readers therefore see either the old file or the new
    one, never a half-written line (even if the process dies mid-write), and concurrent
    writers (e.g. two benchmarks run in parallel) are serialised so no line is lost.

    Args:
      path: the `.jsonl` file; created with its parent directory if missing.
      line: one line of text, without a newline.
    """
    if "\n" in line or "\r" in line:
        raise ValueError("append_line writes exactly one line; remove the newlines from it.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _dir_lock(path.parent):
        old = path.read_bytes() if path.exists() else b""
        if old and not old.endswith(b"\n"):
            old += b"\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(old + line.encode("utf-8") + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def emit(
    record: Mapping[str, Any],
    results_dir: str | os.PathLike[str] | None = None,
    *,
    stream: Any = None,
) -> dict[str, Any]:
    """Print a record as exactly one JSON line and append it to `<results_dir>/<bench>.jsonl`.

    Adds `date` (UTC, ISO 8601) and `machine` (see `machine_info`) to the record.

    Args:
      record: a dict from `result` (must have a `bench` name).
      results_dir: folder of the results files; default `bench/results/` of this repository
        (resolved from this file, so the working directory does not matter).
      stream: where the line is printed; default `sys.stdout`.
    Returns:
      The record as written.
    """
    if not isinstance(record, Mapping) or "bench" not in record:
        raise ValueError("emit needs a record from result(...), with a 'bench' name.")
    bench = record["bench"]
    if not isinstance(bench, str) or not bench or "/" in bench or bench.startswith("."):
        raise ValueError(f"record['bench'] must be a plain file name, got {bench!r}.")
    full = dict(record)
    full.setdefault("date", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    full.setdefault("machine", machine_info())
    full = _jsonable(full)
    line = json.dumps(full, allow_nan=False, separators=(", ", ": "))
    out = sys.stdout if stream is None else stream
    print(line, file=out, flush=True)
    directory = RESULTS_DIR if results_dir is None else Path(results_dir)
    append_line(Path(directory) / f"{bench}.jsonl", line)
    return full


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of one results file, oldest first (blank or broken lines are skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                records.append(obj)
    return records


def print_json(obj: Mapping[str, Any], *, stream: Any = None) -> None:
    """Print `obj` as one JSON line (what a peer-side script hands back to its parent)."""
    out = sys.stdout if stream is None else stream
    print(json.dumps(_jsonable(dict(obj)), allow_nan=False), file=out, flush=True)


def log(*parts: Any) -> None:
    """Progress for humans, on stderr (stdout is reserved for JSON lines)."""
    print("[bench]", *parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- peer venvs
def skipped(reason: str, **extra: Any) -> dict[str, Any]:
    """The marker a peer measurement returns when it could not run."""
    return {"skipped": True, "reason": reason, **extra}


def is_skipped(peer_result: Mapping[str, Any]) -> bool:
    """Whether `peer_result` (from `run_in_peer_venv`) is a `skipped` marker."""
    return bool(peer_result.get("skipped"))


#: Variables a peer process does not inherit: our venv's paths, and the persistent compile
#: cache that `import bellmax` turns on through JAX's environment variables
#: (`bellmax.core.compile_cache`), with which a JAX peer's "cold" compile (rejax's, trajax's)
#: would load the programs an earlier benchmark run left there.
_NOT_FOR_PEERS = (
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "JAX_COMPILATION_CACHE_DIR",
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
)


def run_in_peer_venv(
    script: str | os.PathLike[str],
    args: Sequence[str] = (),
    *,
    group: str,
    modules: Sequence[str] = (),
    venv: str | os.PathLike[str] | None = None,
    threads: int = 1,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """Run a peer measurement in the peer venv and return the JSON object it prints.

    The script runs as `<venv>/bin/python script *args` from the repository root, with the
    thread caps of `thread_env(threads)` set before it starts (so before it imports numpy or
    torch), without the caller's PYTHONPATH/VIRTUAL_ENV and without a persistent JAX compile
    cache (`_NOT_FOR_PEERS`: JAX's default). It must print its result as a JSON
    object on the last JSON line of stdout (`print_json`); its stderr is passed through.

    Args:
      script: path of the Python file to run (bench scripts re-run themselves with `--peer`).
      args: its command-line arguments.
      group: the `setup_peers.sh` group that installs this peer (named in skip messages).
      modules: modules that must be importable in the venv (checked first).
      venv: the venv; default `bench/.venv-peers` (or $BELLMAX_PEER_VENV).
      threads: native threads per pool in the child.
      timeout: seconds before the child is killed and the peer reported as failed.
    Returns:
      The peer's JSON object, or `skipped(reason)` when the venv or a module is missing, the
      script fails, or it prints no JSON. `reason` says how to fix it.
    """
    venv_dir = PEER_VENV if venv is None else Path(venv)
    python = venv_dir / "bin" / "python"
    install = f"{SETUP_SCRIPT} {group}"
    if not python.exists():
        return skipped(
            f"peer venv {venv_dir} not found; install the '{group}' peers with: {install}"
        )
    env = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_PEERS}
    env.update(thread_env(threads))
    if modules:
        probe = (
            "import importlib.util, json, sys; "
            "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))"
        )
        try:
            out = subprocess.run(
                [str(python), "-c", probe, *modules],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=True,
            ).stdout
            missing = json.loads(out.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as err:
            return skipped(f"could not run {python} ({err}); recreate it with: {install}")
        if missing:
            return skipped(
                f"peer package(s) {', '.join(missing)} not installed in {venv_dir}; "
                f"install them with: {install}"
            )
    cmd = [str(python), str(script), *map(str, args)]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return skipped(f"peer run timed out after {timeout:.0f} s: {' '.join(cmd)}", failed=True)
    if proc.stderr:
        sys.stderr.write(proc.stderr)
        sys.stderr.flush()
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return skipped(
            f"peer run failed (exit {proc.returncode}): {tail}; if a package is missing, "
            f"run: {install}",
            failed=True,
        )
    for line in reversed(proc.stdout.strip().splitlines()):
        with contextlib.suppress(json.JSONDecodeError):
            obj = json.loads(line)
            if isinstance(obj, dict):
                return obj
    return skipped(f"peer run printed no JSON object: {' '.join(cmd)}", failed=True)


# --------------------------------------------------------------------------- a quiet machine
#: Set (to the JSON of the check) once a process has waited for a quiet machine, so that the
#: child processes a benchmark starts (fresh bellmax processes, peer venvs) do not wait again.
QUIET_ENV = "BELLMAX_BENCH_QUIET_CHECK"

#: The last check made by this process (or inherited from its parent); `machine_info` adds it.
_QUIET_CHECK: dict[str, Any] | None = None


class BusyMachineError(SystemExit):
    """The machine stayed busy and the benchmark was asked to refuse (`--require-quiet`).

    A `SystemExit` with status 3, so a script that does not catch it stops cleanly; the
    message is printed on stderr when it is raised.
    """

    def __init__(self, message: str) -> None:
        super().__init__(3)
        self.message = message

    def __str__(self) -> str:
        return self.message


def use_compile_cache(cache_dir: str | Path) -> None:
    """Point this process's JAX persistent compilation cache at `cache_dir` (a benchmark's own,
    so that a cold or warm run does not depend on the user's default cache), with bellmax's
    threshold for what is kept. Call it before importing bellmax (which then leaves JAX's
    cache setting as it is). bellmax's lowered programs (`bellmax.core.program_cache`) go to
    `cache_dir / "programs"`, so that emptying `cache_dir` makes a run cold for both."""
    import jax

    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    os.environ["BELLMAX_CACHE_DIR"] = str(cache_dir)
    os.environ.pop("BELLMAX_COMPILE_CACHE", None)
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))  # before bellmax's import
    from bellmax.core.compile_cache import MIN_COMPILE_SECONDS

    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)


def cold_compiles() -> None:
    """No persistent compile cache in this process: every compile a benchmark times is XLA's
    own, as the peers' are (`run_in_peer_venv` gives them none). Without it `import bellmax`'s
    default cache would load the programs of an earlier run, and a bench that reports its
    compile seconds beside a JAX peer's would compare a disk read with a compile. Call it
    before the first compile; each record's `machine.jax_compilation_cache` says which.
    bellmax's cache of lowered programs (`bellmax.core.program_cache`) is turned off too."""
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    os.environ["BELLMAX_COMPILE_CACHE"] = "0"


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def wait_for_quiet(
    *,
    timeout_s: float = 60.0,
    require: bool = False,
    max_load: float | None = None,
    poll_s: float = 2.0,
    load: Callable[[], float] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the 1-minute load average is below the CPU count, then say how it went.

    Timings taken while other work competes for the CPUs are not worth recording. This waits
    up to `timeout_s` for the load to drop below `max_load` (default: the usable CPUs). If it
    does not, it either refuses (`require`) or lets the caller measure anyway, saying so on
    stderr; either way the returned record (added to every result's `machine.quiet`) keeps
    the load seen, so a busy measurement is never mistaken for a quiet one.

    Args:
      timeout_s: the longest wait, in seconds (>= 0).
      require: raise `BusyMachineError` (exit status 3) instead of measuring on a busy machine.
      max_load: the load below which the machine counts as quiet; default `usable_cpus()`.
      poll_s: seconds between looks at the load.
      load, sleep, clock: the 1-minute load, a sleep and a monotonic clock (for tests).
    Returns:
      `{"quiet": bool, "load_1m": float, "max_load": float, "waited_s": float}`.
    Raises:
      BusyMachineError: `require` and the load stayed at or above `max_load`.
    """
    global _QUIET_CHECK
    limit = float(usable_cpus() if max_load is None else max_load)
    read = load or (lambda: os.getloadavg()[0])
    start = clock()
    now = read()
    while now >= limit and clock() - start < timeout_s:
        sleep(min(poll_s, max(0.0, timeout_s - (clock() - start))))
        now = read()
    check = {
        "quiet": now < limit,
        "load_1m": round(float(now), 2),
        "max_load": limit,
        "waited_s": round(clock() - start, 1),
    }
    _QUIET_CHECK = check
    os.environ[QUIET_ENV] = json.dumps(check)
    if not check["quiet"]:
        what = (
            f"the machine is busy: 1-minute load {now:.2f} >= {limit:g} (the usable CPUs) "
            f"after waiting {check['waited_s']:g} s"
        )
        if require:
            err = BusyMachineError(
                f"[bench] refused: {what}. Stop the other work (see `uptime`, `top`) and run "
                "again, wait longer with --quiet-timeout SECONDS, or drop --require-quiet to "
                "measure anyway (the records are then marked busy)."
            )
            print(err.message, file=sys.stderr, flush=True)
            raise err
        print(
            f"[bench] warning: {what}; measuring anyway. Every record says so "
            "(machine.quiet.quiet = false); pass --require-quiet to refuse instead.",
            file=sys.stderr,
            flush=True,
        )
    return check


def inherited_quiet_check() -> dict[str, Any] | None:
    """The check a parent benchmark process made (`QUIET_ENV`), if any."""
    raw = os.environ.get(QUIET_ENV)
    if not raw:
        return None
    with contextlib.suppress(json.JSONDecodeError):
        check = json.loads(raw)
        if isinstance(check, dict):
            return check
    return None


class _BenchParser(argparse.ArgumentParser):
    """`arg_parser`'s parser: after parsing, waits for a quiet machine (not for --smoke)."""

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        global _QUIET_CHECK
        ns = super().parse_args(args, namespace)
        if getattr(ns, "cpus", None) is not None:
            pin_cpus(ns.cpus)
        inherited = inherited_quiet_check()
        if inherited is not None:
            _QUIET_CHECK = inherited
        elif getattr(ns, "smoke", False):
            _QUIET_CHECK = _smoke_check()
        else:
            wait_for_quiet(timeout_s=ns.quiet_timeout, require=ns.require_quiet)
        return ns


def _smoke_check() -> dict[str, Any]:
    """What a --smoke run records instead of waiting: the load, and that nobody waited.

    Handed to child processes through `QUIET_ENV` like a real check, so the helper processes
    a smoke run starts (which do not get --smoke themselves) do not wait for a quiet machine
    either (they used to wait the full --quiet-timeout on a busy machine).
    """
    try:
        load = round(float(os.getloadavg()[0]), 2)
    except (OSError, AttributeError):
        load = None
    check = {"quiet": None, "load_1m": load, "smoke": True, "waited_s": 0.0}
    os.environ[QUIET_ENV] = json.dumps(check)
    return check


# --------------------------------------------------------------------------- command line
def arg_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every bench script accepts (run_all.py forwards them).

    --quick: smaller work and fewer repeats, peers included (a fast end-to-end check).
    --smoke: --quick plus no peer-venv peers (what the test suite runs; a few seconds).
    --no-venv-peers: skip peers that need bench/.venv-peers.
    --results-dir DIR: where results files go (default bench/results).
    --quiet-timeout S, --require-quiet: `parse_args` first waits up to S seconds (default 60)
      for the load to fall below the CPU count (`wait_for_quiet`); if it does not, the run
      refuses with --require-quiet, else measures and marks every record busy. --smoke runs
      never wait, nor do the processes they start.
    --cpus N: pin the run (and its children) to N CPUs, so that XLA's intra-op pool has N
      threads like the peers' `thread_env(N)` caps; every record states both
      (`machine.thread_counts`).
    """
    p = _BenchParser(description=description)
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds to wait for a 1-minute load below the CPU count before measuring",
    )
    p.add_argument(
        "--require-quiet",
        action="store_true",
        help="refuse (exit 3) instead of measuring when the machine stays busy",
    )
    p.add_argument(
        "--cpus",
        type=int,
        default=None,
        metavar="N",
        help="run on N CPUs (XLA's thread pool then has N threads; N = 1 matches the peers' "
        "1-thread caps); default: every usable CPU",
    )
    p.add_argument("--quick", action="store_true", help="small sizes and repeats, for a fast check")
    p.add_argument(
        "--smoke", action="store_true", help="--quick without peer-venv peers (used by tests)"
    )
    p.add_argument(
        "--no-venv-peers", action="store_true", help="skip peers that need bench/.venv-peers"
    )
    p.add_argument(
        "--results-dir", type=Path, default=None, help="results folder (default bench/results)"
    )
    return p
