"""Every benchmark script's `--smoke` run, peers absent: it exits 0 and leaves its records.

Each script in bench/ runs in a fresh process with `--smoke --results-dir <tmp>`, with the
peer venv pointed at a folder that does not exist (as on CI, which has no peer venvs), so a
script must then measure bellmax's side alone and say, record by record, that the peer was
skipped. Nothing is written to bench/results/. Speed is not measured: XLA's cheap compile
settings keep each run short. `SCRIPTS` names every script; a new one in bench/ fails
`test_every_bench_script_is_listed` until it is added here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"

#: Every script in bench/ but `_harness.py` and `run_all.py`; True marks a smoke run that
#: takes more than a few seconds (marker `slow`, left out by `make test-fast`).
SCRIPTS = {
    "bandit_testbed": False,
    "collocation": False,
    "deep_cartpole": True,
    "deep_pendulum": True,
    "dp_sparse": False,
    "env_rollout": False,
    "gps": True,
    "imitation": True,
    "lqr": False,
    "mbrl": True,
    "mpc": False,
    "pomdp": True,
    "scaling": True,
    "sweep": True,
    "swingup": False,
    "sysid": False,
    "tictactoe": True,
}
NOT_BENCHMARKS = {"_harness", "run_all"}


def test_every_bench_script_is_listed():
    found = {p.stem for p in BENCH_DIR.glob("*.py")} - NOT_BENCHMARKS
    assert found - set(SCRIPTS) == set(), "add the new bench scripts to SCRIPTS"
    assert set(SCRIPTS) - found == set(), "remove the deleted bench scripts from SCRIPTS"


def _says_skipped(record: dict) -> bool:
    """A `peer_skipped` reason, or the harness's `skipped(...)` marker in some field."""
    if isinstance(record.get("peer_skipped"), str) and record["peer_skipped"]:
        return True
    return any(
        isinstance(v, dict) and v.get("skipped") is True and v.get("reason")
        for v in record.values()
    )


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[pytest.mark.slow] if slow else []) for n, slow in SCRIPTS.items()],
)
def test_smoke_run(name, tmp_path):
    out = tmp_path / "results"
    env = dict(os.environ)
    env["BELLMAX_PEER_VENV"] = str(tmp_path / "no-peer-venv")  # CI: no peer venvs
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    env.pop("BELLMAX_BENCH_QUIET_CHECK", None)
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{name}.py"), "--smoke", "--results-dir", str(out)],
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert proc.returncode == 0, f"{name}.py --smoke exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    printed = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert printed, f"{name}.py --smoke printed no record"
    written = [
        rec
        for path in sorted(out.glob("*.jsonl"))
        for rec in map(json.loads, path.read_text().splitlines())
    ]
    # Every record went to --results-dir (none to bench/results/), and only those printed.
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    assert sorted(map(key, written)) == sorted(map(key, printed))
    for rec in printed:
        assert rec["bench"] and isinstance(rec["ours"], int | float), rec
        assert rec["machine"]["threads"], rec  # the thread caps are recorded
        assert isinstance(rec["machine"]["thread_counts"]["equal"], bool), rec
        if rec["peer"] is None:
            assert _says_skipped(rec), f"{name}: a record without a peer says no why: {rec}"
            assert rec["ratio"] is None
        else:
            assert rec["ratio"] == pytest.approx(rec["ours"] / rec["peer"])
