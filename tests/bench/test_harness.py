"""Tests for the benchmark harness (bench/_harness.py) and a smoke run of bench/env_rollout.py.

Speed is never asserted here: only that records are well formed, ratios point the documented
way, results files are appended atomically and peers are skipped with a usable message.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import _harness as H  # noqa: E402
import run_all  # noqa: E402


# --------------------------------------------------------------------------- result
@pytest.mark.parametrize(
    ("unit", "better"),
    [
        ("s", "lower"),
        ("ms", "lower"),
        ("s/iter", "lower"),
        ("steps/s", "higher"),
        ("games/s", "higher"),
    ],
)
def test_result_ratio_is_ours_over_peer_and_speedup_follows_unit(unit, better):
    ours, peer = 3.0, 12.0
    rec = H.result("demo", ours, peer, unit, peer_name="p")
    assert rec["ratio"] == pytest.approx(ours / peer)
    assert rec["better"] == better
    expected_speedup = peer / ours if better == "lower" else ours / peer
    assert rec["speedup"] == pytest.approx(expected_speedup)
    assert rec["peer_name"] == "p"
    assert list(rec)[:7] == list(H.CORE_KEYS)


def test_result_speedup_above_one_means_bellmax_better():
    faster_time = H.result("t", 1.0, 2.0, "s")  # we take 1 s, the peer 2 s
    faster_rate = H.result("r", 2.0, 1.0, "steps/s")  # we do 2 steps/s, the peer 1
    assert faster_time["ratio"] < 1 < faster_time["speedup"]
    assert faster_rate["ratio"] > 1 and faster_rate["speedup"] > 1


def test_result_explicit_better_overrides_unit():
    rec = H.result("err", 0.5, 0.25, "rmse", better="lower")
    assert rec["better"] == "lower"
    assert rec["speedup"] == pytest.approx(0.25 / 0.5)


def test_result_skipped_peer_has_no_ratio():
    rec = H.result("demo", 5.0, None, "s", peer_skipped="not installed")
    assert rec["peer"] is None and rec["ratio"] is None and rec["speedup"] is None
    assert rec["peer_skipped"] == "not installed"


def test_result_accepts_numpy_numbers():
    rec = H.result("demo", np.float32(2.0), np.float64(4.0), "s")
    assert isinstance(rec["ours"], float) and rec["ratio"] == pytest.approx(0.5)


@pytest.mark.parametrize("bench", ["", "a/b", ".hidden", "a\\b", 3])
def test_result_rejects_bad_bench_name(bench):
    with pytest.raises(ValueError, match="bench must be"):
        H.result(bench, 1.0, 1.0, "s")


def test_result_rejects_unknown_unit_without_better():
    with pytest.raises(ValueError, match="better='lower'"):
        H.result("demo", 1.0, 1.0, "widgets")


def test_result_rejects_empty_unit():
    with pytest.raises(ValueError, match="unit must be"):
        H.result("demo", 1.0, 1.0, "")


def test_result_rejects_bad_better():
    with pytest.raises(ValueError, match="'lower' or 'higher'"):
        H.result("demo", 1.0, 1.0, "s", better="faster")


def test_result_rejects_extra_key_clash():
    with pytest.raises(TypeError, match="clash"):
        H.result("demo", 1.0, 1.0, "s", **{"ratio": 3})


def test_result_rejects_non_numbers_and_nan():
    with pytest.raises(TypeError, match="ours must be a number"):
        H.result("demo", "fast", 1.0, "s")
    with pytest.raises(TypeError, match="None when the peer was skipped"):
        H.result("demo", 1.0, "slow", "s")
    with pytest.raises(ValueError, match="finite"):
        H.result("demo", math.nan, 1.0, "s")


# --------------------------------------------------------------------------- emit
def test_emit_prints_one_json_line_and_appends_it(tmp_path):
    out = io.StringIO()
    rec = H.result("demo", 2.0, 8.0, "s", case="tiny", sizes=np.arange(3))
    written = H.emit(rec, tmp_path, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    printed = json.loads(lines[0])
    assert printed == written
    assert printed["ratio"] == pytest.approx(2.0 / 8.0)
    assert printed["sizes"] == [0, 1, 2]
    machine = printed["machine"]
    for key in ("cpu_count", "jax", "platform", "python", "threads"):
        assert key in machine
    assert machine["cpu_count"] == os.cpu_count()
    assert printed["date"].endswith("+00:00")
    stored = (tmp_path / "demo.jsonl").read_text().splitlines()
    assert stored == lines


def test_emit_appends_and_keeps_earlier_lines(tmp_path):
    for i in range(3):
        H.emit(H.result("demo", float(i + 1), 1.0, "s"), tmp_path, stream=io.StringIO())
    records = H.read_results(tmp_path / "demo.jsonl")
    assert [r["ours"] for r in records] == [1.0, 2.0, 3.0]


def test_emit_writes_nan_extras_as_null(tmp_path):
    rec = H.result("demo", 1.0, 2.0, "s", loss=float("nan"), arr=np.array([1.5, np.inf]))
    printed = json.loads(_emit_line(rec, tmp_path))
    assert printed["loss"] is None and printed["arr"] == [1.5, None]


def test_emit_rejects_record_without_bench(tmp_path):
    with pytest.raises(ValueError, match="result"):
        H.emit({"ours": 1.0}, tmp_path, stream=io.StringIO())
    assert not list(tmp_path.iterdir())


def test_emit_rejects_unserialisable_extra(tmp_path):
    rec = H.result("demo", 1.0, 2.0, "s", thing=object())
    with pytest.raises(TypeError, match="cannot write object"):
        H.emit(rec, tmp_path, stream=io.StringIO())
    assert not (tmp_path / "demo.jsonl").exists()


def _emit_line(rec, results_dir):
    out = io.StringIO()
    H.emit(rec, results_dir, stream=out)
    return out.getvalue().strip()


# --------------------------------------------------------------------------- append_line
def test_append_line_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "results" / "many.jsonl"  # parent created on demand

    def write(i):
        H.append_line(path, json.dumps({"i": i, "pad": "x" * 2000}))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(120)))
    lines = path.read_text().splitlines()
    assert sorted(json.loads(line)["i"] for line in lines) == list(range(120))
    assert [p.name for p in path.parent.iterdir()] == ["many.jsonl"]  # no temp files left


def test_append_line_repairs_missing_final_newline(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}')
    H.append_line(path, '{"b": 2}')
    assert path.read_text() == '{"a": 1}\n{"b": 2}\n'


def test_append_line_rejects_multiline(tmp_path):
    with pytest.raises(ValueError, match="exactly one line"):
        H.append_line(tmp_path / "x.jsonl", "a\nb")


def test_read_results_skips_broken_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"bench": "a"}\nnot json\n\n[1]\n{"bench": "b"}\n')
    assert [r["bench"] for r in H.read_results(path)] == ["a", "b"]


# --------------------------------------------------------------------------- timing
def test_time_it_counts_calls_and_orders_stats():
    calls = []
    t = H.time_it(lambda: calls.append(1), repeat=4, warmup=2, number=3)
    assert len(calls) == 2 + 4 * 3
    assert len(t.times) == 4
    assert t.min <= t.median <= max(t.times)
    d = t.to_dict("run_")
    assert d["run_repeat"] == 4 and d["run_min_s"] == t.min


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"repeat": 0}, "repeat"), ({"warmup": -1}, "warmup"), ({"number": 1.5}, "number")],
)
def test_time_it_rejects_bad_counts(kwargs, match):
    with pytest.raises(ValueError, match=match):
        H.time_it(lambda: None, **kwargs)


def test_time_it_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        H.time_it(42)


def test_time_jax_separates_compile_from_run():
    import jax.numpy as jnp

    def f(x):
        return jnp.tanh(x @ x.T).sum()

    t = H.time_jax(f, jnp.ones((8, 8)), repeat=3, warmup=1)
    assert t.trace_s > 0 and t.compile_s > 0 and t.first_call_s > 0
    assert len(t.run.times) == 3
    assert t.startup_s == pytest.approx(t.trace_s + t.compile_s + t.first_call_s)
    d = t.to_dict("ours_")
    assert {"ours_compile_s", "ours_trace_s", "ours_run_median_s"} <= set(d)


def test_time_jax_rejects_bad_input():
    with pytest.raises(TypeError, match="callable"):
        H.time_jax("f")
    with pytest.raises(ValueError, match="repeat"):
        H.time_jax(lambda x: x, 1.0, repeat=0)


# --------------------------------------------------------------------------- threads
def test_thread_env_and_fair_threads(monkeypatch):
    assert H.thread_env(2) == dict.fromkeys(H.THREAD_VARS, "2")
    for name in H.THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    now = H.fair_threads(1)
    assert now["OMP_NUM_THREADS"] == "3"  # the user's own setting wins
    assert now["OPENBLAS_NUM_THREADS"] == "1"
    assert H.fair_threads(1, override=True)["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize(
    ("numpy_first", "noted"), [(False, False), (True, True)], ids=["harness_first", "numpy_first"]
)
def test_fair_threads_notes_a_late_numpy_once_and_only_when_late(numpy_first, noted):
    """Said by the first call when numpy came first; a second call (a bench script importing
    another, after the first call's numpy import) says nothing."""
    code = textwrap.dedent(
        f"""
        import sys
        {"import numpy" if numpy_first else ""}
        sys.path.insert(0, {str(BENCH_DIR)!r})
        import _harness as H
        H.fair_threads()
        H.fair_threads()
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stderr.count("imported before fair_threads()") == int(noted), r.stderr


@pytest.mark.parametrize("threads", [0, -1, 1.0, True])
def test_thread_env_rejects_bad_count(threads):
    with pytest.raises(ValueError, match="threads must be"):
        H.thread_env(threads)


# --------------------------------------------------------------------------- peer venv
def _fake_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    return venv


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "peer.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_run_in_peer_venv_missing_venv_says_how_to_install(tmp_path):
    res = H.run_in_peer_venv("x.py", group="gymnax", venv=tmp_path / "nowhere")
    assert H.is_skipped(res)
    assert "bash bench/setup_peers.sh gymnax" in res["reason"]
    assert "not found" in res["reason"]


def test_run_in_peer_venv_returns_last_json_line(tmp_path):
    script = _script(
        tmp_path,
        """
        import json, os, sys
        print("warming up")
        print(json.dumps({"first": True}))
        print(json.dumps({"args": sys.argv[1:], "blas": os.environ["OPENBLAS_NUM_THREADS"]}))
        """,
    )
    res = H.run_in_peer_venv(
        script, ["--n", 3], group="g", modules=["json"], venv=_fake_venv(tmp_path), threads=2
    )
    assert not H.is_skipped(res)
    assert res == {"args": ["--n", "3"], "blas": "2"}


def test_a_peer_runs_without_our_compile_cache(tmp_path, monkeypatch):
    # Shows: `import bellmax` puts its persistent cache in JAX's environment variables; a JAX
    # peer (rejax, trajax) must not inherit it, or its "cold" compile loads an earlier run's.
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
    script = _script(
        tmp_path,
        """
        import json, os
        print(json.dumps({k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR",
                          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")}))
        """,
    )
    res = H.run_in_peer_venv(script, group="g", venv=_fake_venv(tmp_path))
    assert res == {
        "JAX_COMPILATION_CACHE_DIR": None,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": None,
    }


def test_run_in_peer_venv_missing_module(tmp_path):
    script = _script(tmp_path, "print('{}')\n")
    res = H.run_in_peer_venv(
        script, group="sb3", modules=["json", "no_such_module_xyz"], venv=_fake_venv(tmp_path)
    )
    assert H.is_skipped(res)
    assert "no_such_module_xyz" in res["reason"]
    assert "bash bench/setup_peers.sh sb3" in res["reason"]


def test_run_in_peer_venv_failing_script(tmp_path):
    script = _script(tmp_path, "raise RuntimeError('peer exploded')\n")
    res = H.run_in_peer_venv(script, group="casadi", venv=_fake_venv(tmp_path))
    assert H.is_skipped(res) and res["failed"]
    assert "peer exploded" in res["reason"]


def test_run_in_peer_venv_no_json(tmp_path):
    script = _script(tmp_path, "print('hello')\n")
    res = H.run_in_peer_venv(script, group="casadi", venv=_fake_venv(tmp_path))
    assert H.is_skipped(res) and "no JSON" in res["reason"]


# --------------------------------------------------------------------------- a quiet machine
class _FakeMachine:
    """A load average that drops by `step` at each sleep, and a clock the sleeps advance."""

    def __init__(self, loads):
        self.loads, self.t, self.slept = list(loads), 0.0, []

    def load(self):
        return self.loads[0]

    def sleep(self, s):
        self.slept.append(s)
        self.t += s
        if len(self.loads) > 1:
            self.loads.pop(0)

    def clock(self):
        return self.t


@pytest.fixture
def no_inherited_check(monkeypatch):
    # setenv first so that monkeypatch restores the variable's absence after the test.
    monkeypatch.setenv(H.QUIET_ENV, "")
    monkeypatch.delenv(H.QUIET_ENV)
    monkeypatch.setattr(H, "_QUIET_CHECK", None)


def _wait(m, **kw):
    return H.wait_for_quiet(max_load=2, poll_s=5, load=m.load, sleep=m.sleep, clock=m.clock, **kw)


def test_a_quiet_machine_is_measured_at_once(no_inherited_check):
    m = _FakeMachine([0.5])
    check = _wait(m)
    assert check == {"quiet": True, "load_1m": 0.5, "max_load": 2.0, "waited_s": 0.0}
    assert m.slept == []
    # Every record says how quiet it was, and child processes inherit the check.
    assert H.machine_info()["quiet"] == check
    assert H.inherited_quiet_check() == check


def test_the_harness_waits_for_the_load_to_drop(no_inherited_check):
    m = _FakeMachine([3.5, 2.4, 1.2])
    check = _wait(m, timeout_s=60)
    assert check["quiet"] and check["load_1m"] == 1.2 and check["waited_s"] == 10.0
    assert m.slept == [5, 5]


def test_a_busy_machine_is_measured_but_marked_and_said(no_inherited_check, capsys):
    m = _FakeMachine([4.0])
    check = _wait(m, timeout_s=12)
    assert not check["quiet"] and check["waited_s"] == 12.0
    assert m.slept == [5, 5, 2]  # never past the timeout
    err = capsys.readouterr().err
    assert "busy: 1-minute load 4.00 >= 2" in err and "--require-quiet" in err
    assert H.machine_info()["quiet"]["quiet"] is False


def test_require_quiet_refuses_with_status_3_and_the_fix(no_inherited_check, capsys):
    m = _FakeMachine([4.0])
    with pytest.raises(H.BusyMachineError) as info:
        _wait(m, timeout_s=5, require=True)
    assert info.value.code == 3
    text = str(info.value)
    assert "refused" in text and "--quiet-timeout" in text and "drop --require-quiet" in text
    assert text in capsys.readouterr().err


def test_the_parser_waits_except_for_smoke_runs_and_children(no_inherited_check, monkeypatch):
    calls = []
    monkeypatch.setattr(H, "wait_for_quiet", lambda **kw: calls.append(kw))
    H.arg_parser("demo").parse_args(["--smoke"])
    assert calls == []
    # A smoke run records that it did not wait, and its children (which are not given
    # --smoke) inherit that instead of waiting themselves.
    smoke = H.inherited_quiet_check()
    assert smoke is not None and smoke["smoke"] is True and smoke["quiet"] is None
    assert H.machine_info()["quiet"] == smoke
    H.arg_parser("demo").parse_args([])
    assert calls == []
    monkeypatch.delenv(H.QUIET_ENV)
    H.arg_parser("demo").parse_args(["--quick", "--quiet-timeout", "7", "--require-quiet"])
    assert calls == [{"timeout_s": 7.0, "require": True}]
    # A child process started by a benchmark that already waited does not wait again.
    monkeypatch.setenv(H.QUIET_ENV, json.dumps({"quiet": True, "load_1m": 0.3}))
    H.arg_parser("demo").parse_args([])
    assert len(calls) == 1
    assert H.machine_info()["quiet"] == {"quiet": True, "load_1m": 0.3}


def test_run_all_forwards_the_quiet_options(monkeypatch):
    seen = []
    monkeypatch.setattr(
        run_all,
        "run_one",
        lambda path, fwd, timeout: (seen.append(fwd), (0, [{"bench": "x"}], 0.1))[1],
    )
    assert run_all.main(["--only", "env_rollout", "--require-quiet", "--quiet-timeout", "9"]) == 0
    assert seen == [["--require-quiet", "--quiet-timeout", "9.0"]]


# --------------------------------------------------------------------------- scripts
def test_run_all_discovers_public_scripts_only():
    names = set(run_all.discover())
    assert "env_rollout" in names
    assert not any(n.startswith("_") for n in names)
    assert "run_all" not in names


def test_run_all_summary_mentions_failures():
    rec = H.result("demo", 1.0, 2.0, "s", peer_name="peer")
    text = run_all.summary([("demo", 0, 1.0, [rec]), ("broken", 3, 0.5, [])])
    assert "demo" in text and "FAILED (exit 3)" in text


def test_env_rollout_smoke(tmp_path):
    """Tiny run of the real script: two records, the gymnax one skipped, ratios consistent."""
    env = dict(os.environ)
    # Speed is not measured here: cheap XLA compilation keeps this run to a few seconds.
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / "env_rollout.py"),
            "--smoke",
            "--results-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(printed) == 2
    gym_rec, gymnax_rec = printed
    assert gym_rec["peer_name"].startswith("gymnasium")
    assert gym_rec["ratio"] == pytest.approx(gym_rec["ours"] / gym_rec["peer"])
    assert gym_rec["unit"] == "steps/s" and gym_rec["better"] == "higher"
    assert gym_rec["ours_compile_s"] > 0
    # Same work: random-policy CartPole episodes last about 22 steps on both sides.
    for key in ("ours_mean_episode_length", "peer_mean_episode_length"):
        assert 10 < gym_rec[key] < 50
    assert gymnax_rec["peer"] is None and "skipped" in gymnax_rec["peer_skipped"]
    assert H.read_results(tmp_path / "env_rollout.jsonl") == printed


def test_git_commit_is_dirty_with_untracked_files_but_not_results(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    git("add", "a.py", ".gitignore")
    git("commit", "-qm", "init")
    clean = H._git_commit(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "x.py").write_text("")
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "new.jsonl").write_text("{}\n")
    assert H._git_commit(tmp_path) == clean  # ignored files and result records do not count
    (tmp_path / "new_module.py").write_text("y = 2\n")
    assert H._git_commit(tmp_path) == clean + "-dirty"  # an untracked source file does


# --------------------------------------------------------------------------- thread counts
def test_thread_counts_are_recorded_and_equal_only_when_the_pools_match(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    monkeypatch.setattr(H, "usable_cpus", lambda: 2)
    counts = H.thread_counts(peer_threads=1)
    assert counts == {"ours_xla_intra_op": 2, "ours_matmul": 1, "peer": 1, "equal": False}
    monkeypatch.setattr(H, "usable_cpus", lambda: 1)
    assert H.thread_counts(peer_threads=1)["equal"] is True
    monkeypatch.setenv("XLA_FLAGS", "")  # multi-threaded Eigen: products use the whole pool
    monkeypatch.setattr(H, "usable_cpus", lambda: 2)
    assert H.thread_counts(peer_threads=2) == {
        "ours_xla_intra_op": 2,
        "ours_matmul": 2,
        "peer": 2,
        "equal": True,
    }
    assert H.machine_info()["thread_counts"]["ours_xla_intra_op"] == 2


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU pinning is Linux-only")
def test_cpus_option_pins_the_run_and_its_children_so_xla_gets_one_thread():
    code = textwrap.dedent(
        f"""
        import json, os, subprocess, sys
        sys.path.insert(0, {str(BENCH_DIR)!r})
        import _harness as H
        H.fair_threads()
        H.arg_parser("demo").parse_args(["--smoke", "--cpus", "1"])
        child = subprocess.run(
            [sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        print(json.dumps({{"counts": H.thread_counts(), "child": int(child)}}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != H.QUIET_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["child"] == 1
    assert out["counts"]["ours_xla_intra_op"] == 1 and out["counts"]["peer"] == 1
    assert out["counts"]["equal"] is True
    with pytest.raises(ValueError, match="more than"):
        H.pin_cpus(H.usable_cpus() + 1)
