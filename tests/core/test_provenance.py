"""core.provenance: versions, command line, git commit, time and platform; never fails."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import shutil
import subprocess
import sys

import pytest

from bellmax.core import provenance
from bellmax.core.provenance import git_commit, package_versions, run_provenance


def test_record_is_json_and_complete(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no repository here
    rec = run_provenance(["bellmax", "train", "ppo", "--seeds", "2"])
    assert json.loads(json.dumps(rec)) == rec
    assert set(rec) == {"versions", "command", "cwd", "git", "time", "platform"}
    assert set(rec["versions"]) == {
        "bellmax", "jax", "jaxlib", "numpy", "flax", "optax", "gymnasium"
    }  # fmt: skip
    assert rec["versions"]["jax"] == importlib.metadata.version("jax")
    assert rec["versions"]["numpy"] == importlib.metadata.version("numpy")
    assert rec["versions"]["bellmax"]
    assert rec["command"] == ["bellmax", "train", "ppo", "--seeds", "2"]
    assert rec["git"] is None and rec["cwd"] == str(tmp_path)
    when = datetime.datetime.fromisoformat(rec["time"])
    assert when.utcoffset() == datetime.timedelta(0)
    now = datetime.datetime.now(datetime.UTC)
    assert abs((now - when).total_seconds()) < 60
    p = rec["platform"]
    assert p["python"] == ".".join(map(str, sys.version_info[:3]))
    assert p["cpu_count"] >= 1 and p["system"] and p["machine"]
    assert "hostname" not in p  # a run.json may be shared


def test_platform_names_jax_devices_once_jax_is_loaded():
    import jax

    p = run_provenance([])["platform"]
    assert p["jax_backend"] == jax.default_backend()
    assert p["jax_devices"] == [d.device_kind for d in jax.devices()]


def test_default_command_is_sys_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/bellmax", "train", "dqn"])
    assert run_provenance()["command"] == ["/usr/bin/bellmax", "train", "dqn"]


def test_versions_never_import_gymnasium():
    code = (
        "import sys; from bellmax.core.provenance import run_provenance; "
        "r = run_provenance(); assert 'gymnasium' not in sys.modules, 'imported'; "
        "print(r['versions']['gymnasium'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    try:
        expected = importlib.metadata.version("gymnasium")
    except importlib.metadata.PackageNotFoundError:
        expected = None
    assert out.stdout.strip() == str(expected)


def test_missing_package_is_none():
    assert package_versions(("no-such-distribution-xyz",)) == {"no-such-distribution-xyz": None}


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_commit_and_dirty(tmp_path, monkeypatch):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    assert git_commit(tmp_path) is None  # not a repository
    git("init", "-q")
    assert git_commit(tmp_path) is None  # a repository without a commit
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git_commit(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == {"commit": head, "dirty": True}
    monkeypatch.chdir(tmp_path)
    assert run_provenance([])["git"] == {"commit": head, "dirty": True}


def test_git_failures_are_none(monkeypatch, tmp_path):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    assert git_commit(tmp_path) is None

    def slow(*args, **kwargs):
        raise subprocess.TimeoutExpired("git", kwargs.get("timeout"))

    monkeypatch.setattr(provenance.subprocess, "run", slow)
    assert git_commit(tmp_path) is None
    assert run_provenance([])["git"] is None


def test_deleted_working_directory(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    rec = run_provenance([])
    assert rec["cwd"] is None and rec["git"] is None
