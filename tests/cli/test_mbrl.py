"""`bellmax mbrl`: JSON fields, files, clear errors (tiny runs; the learning claims are in
tests/models/test_mbrl.py and bench/mbrl.py)."""

from __future__ import annotations

import json

import pytest

from bellmax.cli.main import main


def test_mbrl_json_and_plots(capsys, tmp_path):
    argv = [
        "mbrl", "--env", "Pendulum-v1", "--planner", "mppi", "--trials", "3",
        "--trial-steps", "12", "--horizon", "4", "--samples", "16", "--rounds", "1",
        "--ensemble-size", "2", "--updates", "20", "--out", str(tmp_path / "run"), "--json",
        "--compare-guard",
    ]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert len(out["trial_returns"]) == 3 and out["trial_kinds"] == ["random", "mppi", "mppi"]
    assert out["final_return"] == out["trial_returns"][-1]
    assert out["env_steps"] == 36 and out["seconds"] > 0
    assert out["learned_reward"] is False and out["state_names"] == ["theta", "theta_dot"]
    assert out["prediction_errors"][0] is None
    for err in out["prediction_errors"][1:]:
        assert len(err["heldout_rmse"]) == 2 and len(err["open_loop_rmse"]) == 2
    err = out["prediction_errors"][2]
    # trained_on counted the held-out transitions too
    assert err["transitions"] == 24 and err["trained_on"] + err["heldout"] == 24
    assert 0 < err["heldout"] < err["trained_on"]
    assert len(out["trial_seconds"]) == 3 and min(out["trial_seconds"]) > 0
    for err in out["prediction_errors"][1:]:
        # 12 steps, windows of 4: the mean promised and real returns of 9 windows
        assert err["predicted_return"] is not None and err["real_return"] is not None
        assert err["disagreement"] >= 0
    off = out["guard_off"]
    assert off["model"] == "mlp" and len(off["trial_returns"]) == 3
    assert off["trial_returns"][0] == out["trial_returns"][0]  # the same random trial
    assert off["prediction_errors"][1]["disagreement"] is None  # one network: no ensemble
    assert off["prediction_errors"][1]["optimism"] is not None
    for name in ("returns.png", "rollouts.png", "exploitation.png", "guard.png"):
        assert (tmp_path / "run" / name).stat().st_size > 1000
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["trial_returns"] == out["trial_returns"]


def test_mbrl_text_on_gymnasium_with_a_learned_reward_and_a_hybrid_model(capsys):
    argv = [
        "mbrl", "--env", "gymnasium:Pendulum-v1", "--planner", "cem", "--trials", "2",
        "--trial-steps", "10", "--horizon", "3", "--samples", "8", "--rounds", "1",
        "--ensemble-size", "1", "--model", "hybrid", "--updates", "10",
    ]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "learned reward" in text and "trial 2 (cem)" in text and "open-loop RMSE" in text
    assert "hybrid model" in text and "guard off" not in text


def test_mbrl_with_an_expert_in_the_first_trial(capsys):
    # --expert mpc: iLQR-MPC on the pendulum's true physics acts in trial 1 (kind "expert"),
    # then the planner runs on the model fitted to its data.
    argv = [
        "mbrl", "--env", "Pendulum-v1", "--expert", "mpc", "--trials", "2",
        "--trial-steps", "12", "--horizon", "4", "--samples", "16", "--rounds", "1",
        "--ensemble-size", "2", "--updates", "20", "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trial_kinds"] == ["expert", "cem"] and out["expert"] == "mpc"
    assert out["env_steps"] == 24 and out["prediction_errors"][1]["transitions"] == 12


def test_mbrl_distils_the_planner_into_a_policy_file(capsys, tmp_path, monkeypatch):
    # --distil-labels: DAgger with iLQR-MPC through the final model as the expert (its
    # horizon and iterations those of --horizon and --rounds); the policy file acts without
    # planning (bellmax.load_policy). Plumbing only (tiny budgets).
    import numpy as np

    import bellmax
    import bellmax.models.mbrl as mbrl

    expert = {}
    real = mbrl.distil

    def distil(result, config, **kw):
        expert.update(kw)
        return real(result, config, **kw)

    monkeypatch.setattr(mbrl, "distil", distil)

    argv = [
        "mbrl", "--env", "Pendulum-v1", "--planner", "ilqr", "--trials", "2",
        "--trial-steps", "10", "--horizon", "4", "--rounds", "1", "--ensemble-size", "2",
        "--updates", "20", "--distil-labels", "30", "--out", str(tmp_path / "run"), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    d = out["distilled"]
    assert d["labels"] == 30 and d["rounds"] == 1 and np.isfinite(d["final_eval_return"])
    assert expert["horizon"] == 4 and expert["iterations"] == 1
    policy = bellmax.load_policy(d["policy"])
    a = policy.predict(np.asarray([1.0, 0.0, 0.0], np.float32))
    assert a.shape == (1,) and abs(float(a[0])) <= 2.0
    assert json.loads((tmp_path / "run" / "result.json").read_text())["distilled"] == d


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mbrl", "--distil-labels", "-1"], "--distil-labels"),
        (["mbrl", "--env", "gymnax:Pendulum-v1", "--distil-labels", "5"], "not gymnax ones"),
        (["mbrl", "--expert", "human", "--trials", "2"], "not a controller"),
        (["mbrl", "--expert", "oracle", "--trials", "2"], "oracle"),
        (["mbrl", "--trial-steps", "0"], "--trial-steps"),
        (["mbrl", "--trials", "1"], "--trials"),
        (["mbrl", "--trials", "3", "--random-trials", "3"], "must exceed --random-trials"),
        (["mbrl", "--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
        (["mbrl", "--env", "CartPole-v1", "--trials", "2", "--trial-steps", "2"], "continuous"),
        (["mbrl", "--env", "GridWorld4x4-v0"], "Pick an env with Box actions"),
        (["mbrl", "--planner", "ppo"], "ppo"),
        (["mbrl", "--disagreement-penalty", "-1"], "--disagreement-penalty"),
        (["mbrl", "--learning-rate", "0"], "--learning-rate must be a number > 0"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_out_that_holds_a_train_run_is_refused(tmp_path, capsys):
    (tmp_path / "run.json").write_text("{}")
    assert main(["mbrl", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds a `bellmax train` run (run.json)" in err and "pick another --out" in err


def test_nan_data_from_the_env_is_a_command_line_message(tmp_path, capsys, monkeypatch):
    # A trial whose rewards went NaN stops the run naming the trial and the step (the model
    # fit refused it later with "drop those transitions", API advice a command-line user
    # cannot follow); the command prints it as one line, exit 2.
    import numpy as np

    from bellmax.models import mbrl

    trial = mbrl._Trial(np.zeros((4, 3)), np.zeros((4, 1)), np.zeros((4, 3)),
                        np.array([0.0, -1.0, np.nan, 0.0]), np.zeros(4))  # fmt: skip

    def loop(env_id, *, config, on_trial=None, expert=None):
        mbrl._check_trial(trial, 3, env_id)

    monkeypatch.setattr(mbrl, "run_mbrl", loop)
    assert main(["mbrl", "--env", "Pendulum-v1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "trial 3 on 'Pendulum-v1': the environment's reward (first at step 3) went NaN" in err
    assert "No trial had finished, so nothing was written." in err
    assert not (tmp_path / "run").exists()
    assert "drop those transitions" not in err and "Traceback" not in err
    trial.rewards[2], trial.x_next[1, 0] = 0.0, np.inf
    with pytest.raises(mbrl.DivergenceError, match=r"observation \(first after step 2\) went NaN"):
        mbrl._check_trial(trial, 1, "Pendulum-v1")


def test_a_later_trial_that_diverges_keeps_the_finished_ones(tmp_path, capsys, monkeypatch):
    # The model's fit before trial 2 diverged: trial 1 had finished, yet nothing was written
    # to --out (the run was lost). Now result.json keeps it, with the status, and the
    # command says so in one line, exit 2. (A NaN plan in trial 3 of 3 is kept the same way.)
    from bellmax.models import mbrl

    def diverging_fit(model, *args, **kwargs):
        raise mbrl.DivergenceError(
            f"the {model.kind} model's training loss became non-finite (nan); lower ..."
        )

    monkeypatch.setattr(mbrl, "fit", diverging_fit)
    out = tmp_path / "run"
    argv = ["mbrl", "--trials", "3", "--trial-steps", "5", "--model", "mlp", "--out", str(out),
            "--json"]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "error: fitting the model before trial 2: the mlp model's training loss" in err
    assert "Trial 1 finished (returns " in err
    assert f'{out / "result.json"} (status "diverged") and the plots keep' in err
    saved = json.loads((out / "result.json").read_text())
    assert saved["status"] == "diverged" and saved["diverged_at_trial"] == 2
    assert saved["error"].startswith("fitting the model before trial 2: the mlp model's")
    assert saved["trial_kinds"] == ["random"] and saved["env_steps"] == 5
    assert saved["prediction_errors"] == [None]
    assert saved["plots"] == [str(out / "returns.png")]  # no planned trial: no rollouts.png
    assert sorted(p.name for p in out.iterdir()) == ["result.json", "returns.png"]


def test_overwrite_leaves_no_plot_of_the_earlier_run(tmp_path, capsys, monkeypatch):
    # A run given --overwrite that diverged before any planned trial wrote result.json and
    # returns.png beside the earlier run's rollouts.png, exploitation.png and guard.png, as if
    # they were its own
    from bellmax.models import mbrl

    def diverging_fit(model, *args, **kwargs):
        raise mbrl.DivergenceError("the model's training loss became non-finite (nan)")

    monkeypatch.setattr(mbrl, "fit", diverging_fit)
    names = ("result.json", "returns.png", "rollouts.png", "exploitation.png", "guard.png")
    for name in names:
        (tmp_path / name).write_text("the earlier run's")
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["mbrl", "--trials", "2", "--trial-steps", "5", "--model", "mlp", "--out",
            str(tmp_path), "--overwrite"]  # fmt: skip
    assert main(argv) == 2
    assert 'result.json (status "diverged")' in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "result.json", "returns.png"]
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "diverged"


def test_an_earlier_mbrl_run_in_out_is_refused_unless_overwrite(
    tmp_path, capsys, monkeypatch, stand_in
):
    # Running `bellmax mbrl ... --out DIR` again replaced the earlier run's result.json and
    # plots without a word; now it is refused before any work, naming both fixes.
    from bellmax.models import mbrl

    monkeypatch.setattr(mbrl, "run_mbrl", stand_in.work)
    (tmp_path / "returns.png").write_bytes(b"the first run's plot")
    (tmp_path / "result.json").write_text("{}")
    assert main(["mbrl", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds an earlier `bellmax mbrl` run (result.json, returns.png)" in err
    assert "give another --out, or --overwrite to replace it" in err
    assert (tmp_path / "returns.png").read_bytes() == b"the first run's plot"
    with pytest.raises(stand_in.error):
        main(["mbrl", "--out", str(tmp_path), "--overwrite"])
    assert main(["mbrl", "--overwrite"]) == 2  # nothing to overwrite
    assert "give --out DIR" in capsys.readouterr().err


def test_help_names_every_plot_and_the_text_reads_well(capsys, monkeypatch):
    # --out's help named result.json, returns.png and rollouts.png only; the text said
    # "through a ensemble model"
    from types import SimpleNamespace

    from bellmax.models import mbrl

    assert main(["mbrl", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    out_help = help_text[help_text.index("--out DIR Directory") :]
    for name in ("result.json", "returns.png", "rollouts.png", "exploitation.png", "guard.png"):
        assert name in out_help.split("--overwrite")[0], name
    trial = SimpleNamespace(index=1, kind="random", fit=None, total_reward=-3.0, steps=4,
                            seconds=0.1, optimism=None)  # fmt: skip
    res = SimpleNamespace(trials=[trial], trial_returns=[-3.0], learned_reward=False,
                          env_steps=4, eval_returns=[], seconds=0.1, state_names=("theta",),
                          model=SimpleNamespace(kind="ensemble"))  # fmt: skip
    monkeypatch.setattr(mbrl, "run_mbrl", lambda *a, **k: res)
    assert main(["mbrl"]) == 0
    text = capsys.readouterr().out
    assert "cem MPC through an ensemble model of Pendulum-v1" in text


def test_the_learning_rate_reaches_every_fit(monkeypatch, capsys):
    # `--learning-rate` is the advice a NaN fit or prediction gives (`bellmax mbrl
    # --learning-rate`); its default is NeuralConfig's own.
    from bellmax.cli.mbrl import MbrlArgs
    from bellmax.models import mbrl
    from bellmax.models.neural import NeuralConfig

    assert MbrlArgs().learning_rate == NeuralConfig().learning_rate
    seen = []

    def loop(env_id, *, config, on_trial=None, expert=None):
        seen.append(config.neural_config.learning_rate)
        raise mbrl.DivergenceError("stopped before any trial")

    monkeypatch.setattr(mbrl, "run_mbrl", loop)
    assert main(["mbrl", "--learning-rate", "5e-4"]) == 2
    assert seen == [5e-4]
