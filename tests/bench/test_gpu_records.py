"""bench/gpu_run.sh and the GPU records it leaves: the scaling plots draw them beside the CPU's.

The script itself needs a GPU machine to mean anything (bench/README.md, "On a GPU"); here it is
only parsed, and `scaling.py --plot-only` is run on made-up records to show that a `gpu/`
folder inside the results folder adds its series, and that its absence changes nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"


def test_gpu_run_script_parses():
    proc = subprocess.run(["bash", "-n", str(BENCH_DIR / "gpu_run.sh")], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()


def _records(path: Path, device: str, peer: float | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for x in (1, 4, 16):
        rec = {"bench": "scaling_ppo", "ours": 1000.0 * x, "peer": peer, "unit": "steps/s"}
        rec.update(series="ppo", x=x, date="2026-12-04T00:00:00+00:00")
        rec["machine"] = {"jax_devices": [device], "git_commit": "0123456789ab"}
        lines.append(json.dumps(rec))
    path.write_text("\n".join(lines) + "\n")


def _plot(results: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(BENCH_DIR / "scaling.py"), "--plot-only", "--only", "ppo"]
    return subprocess.run(
        [*cmd, "--results-dir", str(results), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_scaling_plot_draws_gpu_records_beside_cpu(tmp_path):
    _records(tmp_path / "scaling_ppo.jsonl", "cpu", peer=900.0)
    first = _plot(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "GPU records" not in first.stderr  # no gpu/ folder: the CPU plot alone
    png = tmp_path / "plots" / "scaling_ppo.png"
    cpu_only = png.read_bytes()

    _records(tmp_path / "gpu" / "scaling_ppo.jsonl", "NVIDIA H200", peer=None)
    second = _plot(tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"ppo with the GPU records of {tmp_path / 'gpu'}" in second.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.read_bytes() != cpu_only
