"""The experiment runner: outputs, errors."""

import json

import pytest

from bellmax.core import UnknownNameError
from bellmax.experiments import Experiment, run_experiment
from bellmax.experiments.base import figure


def _toy(ctx):
    fig, axes = figure()
    axes[0, 0].plot([0, 1], [1, 0])
    ctx.save(fig, "toy")
    return {"answer": 42, "quick": ctx.quick}


TOY = {"toy": Experiment("toy", "nowhere", "a toy", _toy)}


def test_writes_png_and_json(tmp_path):
    rec = run_experiment(TOY, "toy", tmp_path / "out", quick=True)
    assert rec["figures"] == ["toy.png"] and rec["data"] == {"answer": 42, "quick": True}
    assert (tmp_path / "out" / "toy.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "out" / "toy.json").read_text())["data"]["answer"] == 42


def test_unknown_experiment_lists_close_names(tmp_path):
    with pytest.raises(UnknownNameError, match=r"unknown experiment 'tyo'.*'toy'"):
        run_experiment(TOY, "tyo", tmp_path)


def test_out_must_be_a_folder(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        run_experiment(TOY, "toy", f)
