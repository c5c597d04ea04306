"""Run every benchmark in bench/ (each `bench/*.py` without a leading underscore), one by one.

Each script runs as its own subprocess (so one's imports, threads and compile caches do not
touch the next), prints its JSON lines on stdout and appends them to bench/results/. This
runner echoes those lines, then prints a summary table on stderr. `make bench` calls it.

    python bench/run_all.py                     # everything
    python bench/run_all.py --only env_rollout  # one (repeat --only for more)
    python bench/run_all.py --quick             # smaller sizes, forwarded to every script
    python bench/run_all.py --list              # what would run
    python bench/run_all.py --require-quiet     # refuse on a busy machine (`make bench`)
    python bench/run_all.py --cpus 1            # XLA's thread pool as small as the peers' caps

Each script first waits (up to --quiet-timeout, default 60 s) for the 1-minute load to fall
below the CPU count; a script that still finds the machine busy measures anyway and marks its
records (`machine.quiet`), or with --require-quiet refuses with exit status 3.

Exit status: 0 when every script succeeded, 1 otherwise (the others still run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _harness as H

SELF = Path(__file__).resolve()


def discover(bench_dir: Path = H.BENCH_DIR) -> dict[str, Path]:
    """Benchmark scripts by name: `bench/*.py` minus private (`_*`) files and this runner."""
    return {
        p.stem: p
        for p in sorted(bench_dir.glob("*.py"))
        if not p.name.startswith("_") and p.resolve() != SELF
    }


def run_one(path: Path, forwarded: list[str], timeout: float) -> tuple[int, list[dict], float]:
    """Run one script; return its exit code, the JSON records it printed and its wall time."""
    env = dict(os.environ)
    env.update(H.thread_env(1))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(path), *forwarded],
            cwd=H.REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=None,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        H.log(f"{path.stem}: timed out after {timeout:.0f} s")
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        return 124, _records(out), time.perf_counter() - t0
    return proc.returncode, _records(proc.stdout), time.perf_counter() - t0


def _records(stdout: str) -> list[dict]:
    records = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            if line:
                print(line, file=sys.stderr)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            print(line, file=sys.stderr)
            continue
        print(line, flush=True)
        if isinstance(obj, dict) and "bench" in obj:
            records.append(obj)
    return records


def _fmt(x: object) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def summary(rows: list[tuple[str, int, float, list[dict]]]) -> str:
    """A plain-text table: one line per record, plus a line for each failed script."""
    lines = [f"{'bench':<18} {'peer':<30} {'ours':>11} {'peer':>11} {'unit':<9} {'speedup':>8}"]
    for name, code, wall, records in rows:
        for r in records:
            peer_name = str(r.get("peer_name", ""))[:30]
            lines.append(
                f"{r['bench']:<18} {peer_name:<30} {_fmt(r.get('ours')):>11} "
                f"{_fmt(r.get('peer')):>11} {r.get('unit', ''):<9} {_fmt(r.get('speedup')):>8}"
            )
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        lines.append(f"  -> {name}: {status}, {wall:.1f} s, {len(records)} record(s)")
    lines.append("speedup > 1: bellmax is better (faster); '-': peer skipped (see peer_skipped).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this benchmark (file name without .py); repeatable",
    )
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--quick", action="store_true", help="forwarded: small sizes")
    p.add_argument("--smoke", action="store_true", help="forwarded: tiny, no peer venv")
    p.add_argument("--no-venv-peers", action="store_true", help="forwarded: skip peer-venv peers")
    p.add_argument("--results-dir", type=Path, default=None, help="forwarded: results folder")
    p.add_argument(
        "--require-quiet",
        action="store_true",
        help="forwarded: a script refuses (exit 3) when the load stays >= the CPU count",
    )
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=None,
        metavar="S",
        help="forwarded: seconds each script waits for a quiet machine (default 60)",
    )
    p.add_argument(
        "--cpus",
        type=int,
        default=None,
        metavar="N",
        help="forwarded: pin each script to N CPUs (XLA's threads = the peers' caps when N = 1)",
    )
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per script")
    args = p.parse_args(argv)

    scripts = discover()
    unknown = [n for n in args.only if n not in scripts]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {sorted(scripts)}")
    selected = {n: scripts[n] for n in (args.only or scripts)}
    if args.list:
        print("\n".join(selected))
        return 0

    forwarded = [
        f
        for f, on in (
            ("--quick", args.quick),
            ("--smoke", args.smoke),
            ("--no-venv-peers", args.no_venv_peers),
            ("--require-quiet", args.require_quiet),
        )
        if on
    ]
    if args.quiet_timeout is not None:
        forwarded += ["--quiet-timeout", str(args.quiet_timeout)]
    if args.cpus is not None:
        forwarded += ["--cpus", str(args.cpus)]
    if args.results_dir is not None:
        forwarded += ["--results-dir", str(args.results_dir.resolve())]

    rows = []
    for name, path in selected.items():
        H.log(f"=== {name} ===")
        code, records, wall = run_one(path, forwarded, args.timeout)
        if code == 0 and not records:
            H.log(f"{name}: exited 0 but printed no JSON record")
            code = 1
        rows.append((name, code, wall, records))
    print(summary(rows), file=sys.stderr, flush=True)
    return 0 if all(code == 0 for _, code, _, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
