"""`bellmax train` run directories, driven as real processes: no run is ever lost.

- a directory holding a run is refused without --resume/--overwrite and left byte for byte;
- a second process writing the same run stops at the lock while the first finishes;
- `kill -9` at 12 seeded moments spread over a run's wall time, each followed by a
  `--resume` that finishes with every output present, and a final state, metrics and
  evaluation bit-identical to an uninterrupted run's.

A tiny REINFORCE run (64 updates, a checkpoint every 2) and a persistent compile cache
shared by the processes keep each process at a few seconds.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bellmax.train.checkpoint import _read

ARGS = [
    "train",
    "reinforce",
    "--total-steps",
    "4096",
    "--num-envs",
    "4",
    "--num-steps",
    "16",
    "--chunks",
    "32",
    "--eval-episodes",
    "1",
]
OUTPUTS = ("run.json", "checkpoint.msgpack", "metrics.json", "metrics.csv", "learning_curve.png")


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("bellmax")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "bellmax.cli.main"]


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    """Subprocess environment: one persistent compile cache that keeps every compilation."""
    cache = tmp_path_factory.mktemp("jax-cache")
    e = {k: v for k, v in os.environ.items() if k != "BELLMAX_DEBUG"}
    e.update(
        BELLMAX_CACHE_DIR=str(cache),
        JAX_COMPILATION_CACHE_DIR=str(cache),  # set: the command keeps our thresholds below
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0",
    )
    return e


def _run(env: dict, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*_command(), *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


#: What appears in a run directory, in order: the phases the kills are spread over.
EVENTS = ("run.json", "checkpoint.msgpack", "learning_curve.png")


def _watch(proc: subprocess.Popen, out: Path, start: float) -> dict[str, float]:
    """Seconds after `start` at which each of EVENTS appeared, and `end` (the process exit)."""
    seen: dict[str, float] = {}
    while proc.poll() is None:
        for name in EVENTS:
            if name not in seen and (out / name).exists():
                seen[name] = time.monotonic() - start
        time.sleep(0.005)
    seen["end"] = time.monotonic() - start
    return seen


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory) -> dict:
    """An uninterrupted run (its outputs) and the wall-time profile of a warm one.

    The warm runs go two at a time, as the kill trials do, so the times measured (when
    run.json, the first checkpoint and the curve appear, and when the process ends) are
    those of the trials' processes.
    """
    base = tmp_path_factory.mktemp("reference")
    cold = _run(env, *ARGS, "--out", str(base / "cold"), "--json")  # fills the compile cache
    assert cold.returncode == 0, cold.stderr

    def timed(name: str) -> dict[str, float]:
        start = time.monotonic()
        proc = subprocess.Popen(
            [*_command(), *ARGS, "--out", str(base / name)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        seen = _watch(proc, base / name, start)
        assert proc.wait() == 0, proc.stderr.read()
        assert set(seen) == {*EVENTS, "end"}, seen
        return seen

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        profiles = list(pool.map(timed, ["ref", "ref2"]))
    times = {k: float(np.mean([p[k] for p in profiles])) for k in profiles[0]}
    ref = base / "ref"
    out = {name: (ref / name).read_bytes() for name in OUTPUTS}
    # Separate processes give the same run (what the resumed runs are compared with).
    for other in ("cold", "ref2"):
        assert (base / other / "metrics.csv").read_bytes() == out["metrics.csv"]
    return {"dir": ref, "files": out, "times": times}


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _assert_complete(out: Path, reference: dict) -> None:
    """Every output present and valid, the result equal to the uninterrupted run's."""
    ref = reference["files"]
    run = json.loads((out / "run.json").read_text())
    want = json.loads(ref["run.json"])
    assert run["status"] == "finished" and run["updates_done"] == want["updates_done"] == 64
    assert run["final_eval_return"] == want["final_eval_return"]
    # byte for byte: a resumed run wrote its metrics in another key order (the checkpoint's)
    assert (out / "metrics.json").read_bytes() == ref["metrics.json"]
    assert (out / "metrics.csv").read_bytes() == ref["metrics.csv"]
    png = (out / "learning_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    got, exp = _read(out / "checkpoint.msgpack"), _read(reference["dir"] / "checkpoint.msgpack")
    assert got["treedef"] == exp["treedef"] and got["leaves"].keys() == exp["leaves"].keys()
    for k in exp["leaves"]:  # the final training state, bit for bit
        np.testing.assert_array_equal(np.asarray(got["leaves"][k]), np.asarray(exp["leaves"][k]))
    assert not list(out.glob("*.tmp"))


def test_a_run_is_refused_untouched_and_overwrite_replaces_it(env, reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference["dir"], out)
    before = _snapshot(out)
    r = _run(env, *ARGS, "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith("bellmax: error: ") and r.stderr.count("\n") == 1
    assert "holds an earlier `bellmax train` run" in r.stderr
    assert "--resume" in r.stderr and "--overwrite" in r.stderr
    assert _snapshot(out) == before  # every file, byte for byte; none added
    old_id = json.loads(before["run.json"])["run_id"]
    r = _run(env, *ARGS, "--seed", "5", "--out", str(out), "--overwrite", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == [5] and run["run_id"] != old_id and run["status"] == "finished"
    assert (out / "metrics.csv").read_bytes() != before["metrics.csv"]


def test_a_second_writer_stops_at_the_lock_while_the_first_finishes(env, reference, tmp_path):
    out = tmp_path / "run"
    # A longer run (1024 updates), so the first writer surely holds the lock throughout.
    long = [*ARGS, "--out", str(out), "--json"]
    long[long.index("--total-steps") + 1] = "65536"
    first = subprocess.Popen(
        [*_command(), *long], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "run.json").exists():  # written under the lock, before training
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = _run(env, *long[:-1], "--overwrite")
        still_running = first.poll() is None
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert still_running, "the first writer ended before the second tried; lengthen its run"
    assert second.returncode == 2
    assert second.stderr.startswith("bellmax: error: ") and second.stderr.count("\n") == 1
    assert f"is being written by another bellmax run (process {first.pid} holds .lock)" in (
        second.stderr
    )
    assert first.returncode == 0, stderr
    assert json.loads(stdout)["updates"] == 1024
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    for name in OUTPUTS:
        assert (out / name).is_file(), name


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_finishes_the_same_run(env, reference, tmp_path):
    """12 kills spread over a run's wall time, each phase of it getting its share.

    The run's wall time is cut at the moments its files appear (in the reference run):
    start-up (nothing written), run.json written (compiling, no checkpoint yet), the first
    checkpoint written (training, a commit per update; then the final evaluation), and the
    curve written (the final run.json, exit). Each kill waits in its own process for the
    phase to begin, then a seeded random fraction of that phase's length (stratified, so
    the kills spread across it) and sends SIGKILL; a machine slower or faster than the
    reference shifts the moments, never the phase.
    """
    t = reference["times"]
    phases = [  # (event that starts the phase, its length in the reference, kills)
        (None, t["run.json"], 3),
        ("run.json", t["checkpoint.msgpack"] - t["run.json"], 3),
        ("checkpoint.msgpack", t["learning_curve.png"] - t["checkpoint.msgpack"], 4),
        ("learning_curve.png", t["end"] - t["learning_curve.png"], 2),
    ]
    rng = np.random.default_rng(20241202)
    plan = [
        (event, (j + rng.uniform()) / k * length) for event, length, k in phases for j in range(k)
    ]
    assert len(plan) == 12

    def attempt(out: Path, event: str | None, delay: float) -> tuple[float, bool, list[str]]:
        """Start a run in `out`, wait for `event`, then `delay` s, and SIGKILL it."""
        proc = subprocess.Popen(
            [*_command(), *ARGS, "--out", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        start = time.monotonic()
        while event is not None and not (out / event).exists() and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(delay)
        at = time.monotonic() - start
        killed = proc.poll() is None
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait()
        left = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if (out / "checkpoint.msgpack").exists():
            done = json.loads(_read(out / "checkpoint.msgpack")["metadata"])["updates_done"]
            left.append(f"updates_done={done}")
        return at, killed, left

    def trial(i: int) -> str:
        event, delay = plan[i]
        out = tmp_path / f"kill{i:02d}"
        # On a machine faster than the reference's, the moment may come after the run ended:
        # then the same kill is tried again sooner in the phase (a fresh run each time), so
        # every trial really kills a run.
        for _ in range(6):
            at, killed, left = attempt(out, event, delay)
            if killed:
                break
            shutil.rmtree(out)
            delay /= 2
        r = subprocess.run(
            [*_command(), *ARGS, "--out", str(out), "--resume", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, f"kill at {at:.2f} s left {left}: {r.stderr}"
        _assert_complete(out, reference)
        return f"{at:.2f}s ({event or 'start'} + {delay:.2f}s) " + (
            f"killed: {left}" if killed else "already done"
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        report = list(pool.map(trial, range(len(plan))))
    print("\n".join(["reference:", json.dumps(t), *report]))
    assert all("killed" in line for line in report), report
    # Kills landed before anything was written, before the first checkpoint, and between
    # checkpoints (some updates committed, not all).
    assert any(line.endswith("killed: []") for line in report), report
    assert any("run.json" in line and "updates_done" not in line for line in report), report
    mid = [line for line in report if "updates_done=" in line and "updates_done=64" not in line]
    assert mid, report
