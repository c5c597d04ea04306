"""bench/pomdp.py's SARSOP peer: how it reads `pomdpsol`'s progress table, and what it says
when the solver fails (a stand-in script here; the real solver is not installed on CI)."""

from __future__ import annotations

import stat
import sys
import textwrap
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import pomdp as bench_pomdp  # noqa: E402  (bench/pomdp.py, not bellmax.pomdp)

#: What pomdpsol 0.96 prints (abridged), with the last row repeated after "finishing".
OUTPUT = """
Loading the model ...
  loading time : 0.00s

-------------------------------------------------------------------------------
 Time   |#Trial |#Backup |LBound    |UBound    |Precision  |#Alphas |#Beliefs
-------------------------------------------------------------------------------
 0.01    0       0        8.57375    22.4101    13.8363     9        1
 0.5     5       53       17.9245    20.5566    2.63213     37       23
 1.2     28      350      17.9245    18.9121    0.987584    77       84
 3       159     1829     17.9245    17.9305    0.006       230      231
-------------------------------------------------------------------------------

SARSOP finishing ...
-------------------------------------------------------------------------------
 Time   |#Trial |#Backup |LBound    |UBound    |Precision  |#Alphas |#Beliefs
-------------------------------------------------------------------------------
 3       159     1829     17.9245    17.9305    0.006       220      231
-------------------------------------------------------------------------------
"""


def _fake_solver(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "pomdpsol"
    exe.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_reads_the_progress_table_and_passes_the_limits(tmp_path):
    args_file = tmp_path / "args.txt"
    exe = _fake_solver(
        tmp_path,
        f"""
        import sys
        open({str(args_file)!r}, "w").write(" ".join(sys.argv[1:]))
        print({OUTPUT!r})
        """,
    )
    res = bench_pomdp.measure_sarsop(exe, tmp_path / "rs.pomdp", 10.0)
    assert res["lower"] == 17.9245 and res["upper"] == 17.9305
    assert res["gap"] == pytest.approx(0.006)
    assert res["seconds"] == 3.0
    assert res["gap_at_1s"] == pytest.approx(20.5566 - 17.9245)  # the last row at or before 1 s
    assert res["gap_at_5s"] == pytest.approx(0.006)
    assert res["seconds_to_gap_1"] == 1.2 and res["seconds_to_gap_0.01"] == 3.0
    assert res["history"][0] == (0.01, 8.57375, 22.4101)
    # the same file, the same time limit and the same target gap as ours
    given = args_file.read_text().split()
    assert given[:-1] == [str(tmp_path / "rs.pomdp"), "--timeout", "10", "--precision",
                          f"{bench_pomdp.EPSILON:g}", "-o"]  # fmt: skip
    assert Path(given[-1]).name == "out.policy"  # in a folder of its own, gone afterwards
    assert not Path(given[-1]).exists()
    # when each solver reached the gap the other ended with
    assert bench_pomdp._seconds_to_gap(res["history"], 1.0) == 1.2
    assert bench_pomdp._seconds_to_gap(res["history"], 1e-4) is None
    assert bench_pomdp._seconds_to_gap(res["history"], res["gap"]) == 3.0  # at most
    assert bench_pomdp._seconds_to_gap(res["history"], res["gap"], below=True) is None


def test_a_failing_or_silent_solver_is_a_skipped_peer_that_says_why(tmp_path):
    exe = _fake_solver(tmp_path, "import sys\nprint('bad file', file=sys.stderr)\nsys.exit(3)\n")
    res = bench_pomdp.measure_sarsop(exe, tmp_path / "x.pomdp", 1.0)
    assert res["skipped"] and "exited with 3" in res["reason"] and "bad file" in res["reason"]
    exe = _fake_solver(tmp_path, "print('no table here')\n")
    res = bench_pomdp.measure_sarsop(exe, tmp_path / "x.pomdp", 1.0)
    assert res["skipped"] and "no progress table" in res["reason"]


def test_bad_arguments_are_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    # (--smoke: a run without it first waits up to 60 s for a quiet machine)
    missing = tmp_path / "nowhere" / "pomdpsol"
    with pytest.raises(SystemExit) as e:
        bench_pomdp.main(["--smoke", "--problems=", "--sarsop", str(missing)])
    assert e.value.code == 2
    assert f"--sarsop {missing}: not an executable file" in capsys.readouterr().err
    monkeypatch.setenv("BELLMAX_SARSOP", str(missing))
    with pytest.raises(SystemExit):
        bench_pomdp.main(["--smoke", "--problems="])
    assert f"BELLMAX_SARSOP {missing}: not an executable file" in capsys.readouterr().err
    monkeypatch.delenv("BELLMAX_SARSOP")
    with pytest.raises(SystemExit):
        bench_pomdp.main(["--smoke", "--problems=", "--hsvi", "tag,rocksample"])
    assert "--hsvi: unknown case(s) ['rocksample']" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # (it was a KeyError after the first POMCP case)
        bench_pomdp.main(["--smoke", "--problems", "tiger,none", "--hsvi="])
    assert "--problems: unknown case(s) ['none']; the cases are tiger," in capsys.readouterr().err
