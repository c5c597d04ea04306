"""`bellmax gps`: JSON fields, output files, clear errors (small runs; the learning claims are
in tests/models/test_gps.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bellmax.cli.main import main


def test_gps_json_fields_and_out(capsys, tmp_path):
    out_dir = tmp_path / "run"
    argv = ["gps", "--env", "Pendulum-v1", "--iterations", "2", "--samples", "3"]
    argv += ["--horizon", "20", "--kl-step", "0.5", "--out", str(out_dir), "--json"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert len(out["iteration_costs"]) == len(out["kl"]) == len(out["kl_bound"]) == 2
    # The bound in force starts at kl_step * horizon; each realised KL keeps it (10% tolerance).
    assert out["kl_bound"][0] == pytest.approx(0.5 * 20)
    assert all(k <= b * 1.1 for k, b in zip(out["kl"], out["kl_bound"], strict=True))
    assert out["final_return"] == pytest.approx(-out["final_cost"])
    assert out["initial_state"] == pytest.approx([np.pi, 0.0])
    assert out["ilqr_cost"] > 0 and out["seconds"] > 0
    saved = json.loads((out_dir / "result.json").read_text())
    assert saved["iteration_costs"] == out["iteration_costs"]
    ctrl = np.load(out_dir / "controller.npz")
    assert ctrl["K"].shape == (20, 1, 2) and ctrl["cov"].shape == (20, 1, 1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--samples", "0"], "--samples"),
        (["--samples", "1"], "--samples 1: give at least 2 rollouts"),  # kl 0, nothing learnt
        (["--seed", "-1"], "--seed must be an int >= 0"),  # as every command's --seed
        (["--kl-step", "0"], "--kl-step"),
        (["--env", "CartPole-v1"], "continuous"),
        # it said "pass x0", which the command line has no option for
        (
            ["--env", "PartialPendulum-v0"],
            r"no default start state.*env_system\(env_id, horizon, x0",
        ),
        # the help lists them ({linear,mdgps}); the check keeps its message
        (["--policy", "foo"], "--policy must be one of 'linear', 'mdgps', got 'foo'"),
    ],
)
def test_gps_bad_input(capsys, argv, message):
    assert main(["gps", "--iterations", "1", "--horizon", "5", *argv]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err


def test_an_out_that_holds_a_train_run_is_refused(capsys, tmp_path):
    (tmp_path / "checkpoint.msgpack").write_bytes(b"trained")
    assert main(["gps", "--iterations", "1", "--horizon", "5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds a `bellmax train` run (checkpoint.msgpack)" in err and "pick another" in err
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.msgpack"]


def test_a_diverged_run_says_so_and_leaves_no_empty_out(capsys, tmp_path, monkeypatch):
    # the run went on with NaN costs and failed writing result.json, leaving --out empty
    import dataclasses

    import jax.numpy as jnp

    from bellmax.cli import gps as gps_cli
    from bellmax.models.gps import Samples

    def nan_system(env_id, horizon, seed):
        def rollout(policy, key, num, noise=1.0):
            X, U = jnp.zeros((num, horizon + 1, 2)), jnp.zeros((num, horizon, 1))
            return Samples(X=X, U=U, costs=jnp.full((num, horizon), jnp.nan))

        return dataclasses.replace(make_system(env_id, horizon, seed), rollout=rollout)

    make_system = gps_cli.make_system
    monkeypatch.setattr(gps_cli, "make_system", nan_system)
    out = tmp_path / "run"
    assert main(["gps", "--iterations", "2", "--horizon", "5", "--out", str(out)]) == 2
    assert "LQR-FLM iteration 1 on 'Pendulum-v1': the environment's reward" in (
        capsys.readouterr().err
    )
    assert not out.exists()


def test_tour_section_quick():
    from bellmax.cli.gps import tour_section
    from bellmax.cli.tour import TourContext
    from bellmax.train.report import Report

    ctx = TourContext(report=Report("test"), quick=True, seed=0)
    tour_section(ctx)
    s = ctx.report.summary
    assert "lqr_flm_pendulum_ilqr_cost" not in s  # full size only
    # The trust region's bound held (to its 10% tolerance) at every update.
    assert s["lqr_flm_pendulum_max_kl_over_bound"] <= 1.1
    assert np.isfinite(s["lqr_flm_pendulum_no_trust_region_final_cost"])


def test_an_earlier_gps_run_in_out_is_refused_unless_overwrite(
    capsys, tmp_path, monkeypatch, stand_in
):
    # gps refused only a `bellmax train` run's directory: a second `bellmax gps --out DIR`
    # replaced the first one's controller.npz and result.json without a word
    from bellmax.cli import gps as gps_cli

    monkeypatch.setattr(gps_cli, "make_system", stand_in.work)
    (tmp_path / "controller.npz").write_bytes(b"the first controller")
    argv = ["gps", "--iterations", "1", "--horizon", "5", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds an earlier `bellmax gps` run (controller.npz)" in err
    assert "give another --out, or --overwrite to replace it" in err
    assert (tmp_path / "controller.npz").read_bytes() == b"the first controller"
    with pytest.raises(stand_in.error):
        main([*argv, "--overwrite"])


def test_overwrite_leaves_no_file_of_the_earlier_run(capsys, tmp_path, monkeypatch):
    # `gps --policy linear --overwrite` over an earlier `--policy mdgps` run kept its
    # neural_policy.msgpack beside the new controller (the linear run writes none)
    from types import SimpleNamespace

    from bellmax.cli import gps as gps_cli
    from bellmax.models import gps

    system = SimpleNamespace(x0=np.zeros(2), env_id="Pendulum-v1", horizon=5)
    policy = SimpleNamespace(K=np.zeros((5, 1, 2)), k=np.zeros((5, 1)), cov=np.ones((5, 1, 1)))
    res = SimpleNamespace(iteration_costs=[1.0], kl=[0.1], kl_bound=[1.0], eta=[1.0],
                          final_cost=1.0, final_return=-1.0, seconds=0.1, policy=policy)  # fmt: skip
    monkeypatch.setattr(gps_cli, "make_system", lambda *args: system)
    monkeypatch.setattr(gps_cli, "_reference", lambda system: None)
    monkeypatch.setattr(gps, "run_lqr_flm", lambda *args, **kwargs: res)
    for name in ("result.json", "controller.npz", "neural_policy.msgpack"):
        (tmp_path / name).write_bytes(b"the earlier mdgps run's")
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["gps", "--iterations", "1", "--horizon", "5", "--out", str(tmp_path), "--json"]
    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "controller.npz", "notes.txt", "result.json"
    ]  # fmt: skip
    assert json.loads((tmp_path / "result.json").read_text())["policy"] == "linear"
