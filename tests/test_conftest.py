"""tests/conftest.py's xdist scheduler: a worker that dies neither hangs the run nor, once, fails it.

A native crash of a worker (seen in CI: jaxlib dying inside libgcc's frame registry) must not
hang the run until CI's time limit; the test runs again in a fresh worker and fails only if
that one dies too.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"


@pytest.mark.parametrize("deaths", [1, 2])
def test_a_test_that_kills_its_worker_runs_again_once(tmp_path, deaths):
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("bellmax_tests_conftest", {str(CONFTEST)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        pytest_xdist_make_scheduler = module.pytest_xdist_make_scheduler
        pytest_terminal_summary = module.pytest_terminal_summary
        """)
    )
    # The one worker finishes test_a.py first (the bigger module), then dies in test_b.py.
    # xdist 3.8 alone would hand the replacement the finished test_a.py as an empty unit of
    # work and wait forever.
    (tmp_path / "test_a.py").write_text("".join(f"def test_{i}():\n    pass\n\n" for i in range(3)))
    count = tmp_path / "deaths"
    (tmp_path / "test_b.py").write_text(
        textwrap.dedent(f"""
        import os, pathlib, signal
        def test_1():
            pass
        def test_crash():
            count = pathlib.Path({str(count)!r})
            n = int(count.read_text()) if count.exists() else 0
            if n < {deaths}:
                count.write_text(str(n + 1))
                os.kill(os.getpid(), signal.SIGKILL)
        """)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "1", "--dist", "loadscope", "-p", "no:cacheprovider",
         "-q", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert count.read_text() == str(deaths), out
    assert "died while running test_b.py::test_crash; running it again" in out, out
    if deaths == 1:
        assert proc.returncode == 0, out
        assert "5 passed" in out, out
        assert "workers that died" in out, out
    else:
        assert proc.returncode == 1, out
        assert "crashed while running 'test_b.py::test_crash'" in out, out
        assert "1 failed" in out, out


def test_every_test_of_a_learning_module_is_marked_learning(request):
    # `make test-portable` selects `-m learning`; a lost marker silently skips those checks.
    (conftest,) = [
        p
        for p in request.config.pluginmanager.get_plugins()
        if Path(getattr(p, "__file__", None) or "").resolve() == CONFTEST
    ]
    tests_dir = CONFTEST.parent
    learning = [
        item
        for item in request.session.items
        if item.path.resolve().relative_to(tests_dir).as_posix() in conftest.LEARNING_MODULES
    ]
    if not learning:
        pytest.skip("no learning module collected in this run")
    unmarked = [item.nodeid for item in learning if item.get_closest_marker("learning") is None]
    assert not unmarked
