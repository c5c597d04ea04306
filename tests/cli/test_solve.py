"""Tests for `bellmax solve` (run in-process through bellmax.cli.main.main)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bellmax.cli.main import main
from bellmax.tabular.dp import random_mdp
from bellmax.tabular.io import save_mdp

S, A = 6, 2


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("solve")
    mdp = random_mdp(5, S, A, 3, gamma=0.9)
    save_mdp(d / "mdp.npz", mdp)
    np.save(d / "policy.npy", np.arange(S) % A)
    np.save(d / "probs.npy", np.full((S, A), 1.0 / A))
    np.save(d / "bad_policy.npy", np.full(S, 7))
    (d / "junk.npz").write_bytes(b"junk")
    np.savez(d / "nogamma.npz", P=mdp.dense_P(), R=np.asarray(mdp.R))
    return d, mdp


def _run(capsys, *argv):
    code = main(["solve", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _exact(mdp, policy):
    P, R = mdp.dense_P(), np.asarray(mdp.R)
    idx = np.arange(S)
    return np.linalg.solve(np.eye(S) - 0.9 * P[idx, policy], R[idx, policy])


@pytest.mark.parametrize(
    "method",
    [
        "value-iteration",
        "policy-iteration",
        "modified-policy-iteration",
        "soft-value-iteration",
    ],
)
def test_each_control_method_json(files, capsys, method):
    d, mdp = files
    code, out, err = _run(capsys, d / "mdp.npz", "--method", method, "--tol", "1e-10", "--json")
    assert code == 0, err
    res = json.loads(out)
    for key in ("values", "policy", "iterations", "residual", "seconds", "status"):
        assert key in res
    assert res["status"] == "converged" and res["method"] == method
    assert (res["num_states"], res["num_actions"], res["gamma"]) == (S, A, 0.9)
    assert len(res["values"]) == S and res["seconds"] > 0
    if method == "soft-value-iteration":
        np.testing.assert_allclose(np.sum(res["policy"], axis=1), 1.0)
    else:
        # the values are those of the returned policy, to the promised tolerance
        np.testing.assert_allclose(res["values"], _exact(mdp, np.array(res["policy"])), atol=1e-9)


def test_evaluate_json_returns_the_given_policy(files, capsys):
    d, mdp = files
    pol = np.arange(S) % A
    code, out, _ = _run(
        capsys, d / "mdp.npz", "--method", "evaluate", "--policy", d / "policy.npy", "--json"
    )
    assert code == 0
    res = json.loads(out)
    assert res["policy"] == pol.tolist()
    np.testing.assert_allclose(res["values"], _exact(mdp, pol), atol=1e-10)
    code, out, _ = _run(
        capsys,
        d / "mdp.npz",
        "--method",
        "evaluate",
        "--policy",
        d / "probs.npy",
        "--evaluation",
        "krylov",
        "--json",
    )
    assert code == 0 and np.shape(json.loads(out)["policy"]) == (S, A)


def test_gamma_override_and_human_summary(files, capsys):
    d, _ = files
    code, out, _ = _run(capsys, d / "nogamma.npz", "--gamma", "0.5")
    assert code == 0
    assert "value-iteration" in out and "converged" in out and "gamma 0.5" in out


def test_not_converged_exits_one(files, capsys):
    d, _ = files
    code, out, err = _run(capsys, d / "mdp.npz", "--max-iterations", "2", "--json")
    assert code == 1
    assert json.loads(out)["status"] == "max_iterations"
    assert "stopped at --max-iterations 2 before reaching --tol" in err  # it said nothing


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["missing.npz"], "no such MDP file"),
        (["junk.npz"], "not a readable .npz archive"),
        (["nogamma.npz"], "no 'gamma' stored"),
        (["mdp.npz", "--method", "evaluate"], "needs --policy"),
        (["mdp.npz", "--method", "evaluate", "--policy", "nothere.npy"], "no such file"),
        (["mdp.npz", "--method", "evaluate", "--policy", "junk.npz"], "not a readable .npy"),
        (["mdp.npz", "--method", "evaluate", "--policy", "mdp.npz"], "is an .npz archive"),
        (["mdp.npz", "--method", "evaluate", "--policy", "bad_policy.npy"], "is not an action"),
        (["mdp.npz", "--policy", "policy.npy"], "only used by --method evaluate"),
        (["mdp.npz", "--evaluation", "jacobi"], "--evaluation is only used by --method evaluate"),
        (["mdp.npz", "--gamma", "1.5"], r"--gamma 1.5 must be a number in \[0, 1\]"),
        (["mdp.npz", "--tol", "0"], "tol must be a finite number > 0"),
        (["mdp.npz", "--method", "soft-value-iteration", "--temperature", "-1"], "temperature"),
        (["mdp.npz", "--max-iterations", "0"], "--max-iterations must be an int >= 1"),
    ],
)
def test_bad_input_is_one_clean_line(files, capsys, args, match):
    d, _ = files
    argv = [str(d / a) if a.endswith((".npz", ".npy")) else a for a in args]
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bellmax: error: ")
    assert re.search(match, lines[0])


def _export_command(message: str) -> str:
    """The Python code of the `python -c "..."` the message proposes."""
    found = re.search(r'python -c "([^"]+)"', message)
    assert found, message
    return found.group(1)


def test_a_missing_file_says_how_to_write_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "mdp.npz")
    assert code == 2
    from bellmax.tabular.io import load_mdp

    with pytest.raises(FileNotFoundError) as library:
        load_mdp("mdp.npz")
    assert str(library.value) in err  # the library's how-to-write-one text, not a second one
    assert "no such MDP file: 'mdp.npz'. Write one from a TabularMDP with " in err
    assert "GridWorld4x4-v0" in err and "JacksCarRental-v0" in err  # the exportable ids
    exec(_export_command(err), {})  # the command it gives writes the file it asked for
    code, out, err = _run(capsys, "mdp.npz", "--json")
    assert code == 0, err
    assert json.loads(out)["num_states"] == 16


def test_an_env_id_for_a_file_gets_its_export_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "RandomWalk-v0")
    assert code == 2
    assert "'RandomWalk-v0' is a bellmax environment, not a file" in err
    assert "`bellmax solve randomwalk.npz`" in err
    exec(_export_command(err), {})
    code, out, err = _run(capsys, "randomwalk.npz", "--json")
    assert code == 0, err


def test_unknown_method_is_a_usage_error(files, capsys):
    d, _ = files
    code, _, err = _run(capsys, d / "mdp.npz", "--method", "value-iter")
    assert code == 2 and "value-iteration" in err
