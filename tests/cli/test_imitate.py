"""`bellmax imitate`: JSON output, the files it writes (a policy `bellmax evaluate` loads),
and clear errors for bad input before any work."""

from __future__ import annotations

import json
import re

import pytest

from bellmax import load_policy
from bellmax.cli.main import main
from bellmax.core.errors import UnknownNameError


def _json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out
    return json.loads(lines[0])


def test_dagger_json_and_the_run_directory(capsys, tmp_path):
    out = _json(
        capsys,
        "imitate", "dagger", "--env", "gymnasium:CartPole-v1", "--expert", "lqr",
        "--labels", "100", "--rounds", "2", "--eval-expert", "--eval-episodes", "2",
        "--out", str(tmp_path / "run"), "--json",
    )  # fmt: skip
    assert out["labels_used"] == 100 and out["rounds"] == 2
    assert [r["labels"] for r in out["per_round"]] == [50, 100]
    assert out["final_eval_return"] == out["per_round"][-1]["return"]
    assert out["expert_return"] == 500.0  # LQR balances Gymnasium's cart-pole to the limit
    assert out["seconds"] > 0
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {
        "policy.msgpack", "dataset.npz", "imitation.json", "return_vs_labels.png"
    }  # fmt: skip
    policy = load_policy(run)
    assert policy.algorithm == "dagger" and policy.predict([0.0, 0.0, 0.1, 0.0]).shape == ()
    ev = _json(capsys, "evaluate", str(run / "policy.msgpack"), "--episodes", "2", "--json")
    assert ev["mean_return"] == pytest.approx(out["final_eval_return"], abs=500)
    # that policy as the expert of an env with other spaces: named before any label
    argv = ["imitate", "bc", "--env", "Pendulum-v1", "--expert", f"checkpoint:{run}"]
    assert main([*argv, "--labels", "20"]) == 2
    err = capsys.readouterr().err
    assert "does not fit Pendulum-v1: observation space Box(4,) in the expert" in err


@pytest.mark.parametrize(
    ("argv", "error", "match"),
    [
        (["--expert", "oracle"], UnknownNameError, "unknown expert 'oracle'"),
        (["--labels", "0"], ValueError, r"--labels 0: the label budget must be at least 1"),
        (["--expert", "perfect"], ValueError, "use it with --env TicTacToe-v0"),
        (["--expert", "human"], ValueError, "--expert human needs --out DIR"),
        (["--expert", "no_such_mod:f"], ValueError, "cannot import module 'no_such_mod'"),
        (["--env", "NoSuchEnv-v0"], UnknownNameError, "unknown environment id 'NoSuchEnv-v0'"),
    ],
)
def test_bad_input_is_refused_before_any_work(argv, error, match):
    with pytest.raises(error, match=match):
        from bellmax.cli.imitate import ImitateArgs, run_imitate

        run_imitate(ImitateArgs("dagger", **_fields(argv)))


def _fields(argv: list[str]) -> dict:
    out = {}
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        name = flag[2:].replace("-", "_")
        out[name] = int(value) if name == "labels" else value
    return out


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["bc", "--noise", "0.5"], "--noise is only read by dart"),
        (["dart", "--beta-decay", "0.5"], "--beta-decay is only read by dagger"),
        (["bc", "--mpc-iterations", "3"], "--mpc-iterations is only read by the mpc expert"),
        (["bc", "--horizon", "10"], "--horizon is only read by the mpc expert"),
    ],
)
def test_options_the_run_would_ignore_are_refused(extra, needle, capsys):
    assert main(["imitate", *extra, "--env", "gymnasium:CartPole-v1"]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("horizon", ["0", "-5"])
def test_the_mpc_horizon_is_checked_as_bellmax_control_checks_it(horizon, capsys):
    # --horizon 0 planned with the default 25 steps; -5 named the internal make_problem.horizon
    argv = ["imitate", "bc", "--env", "gymnasium:CartPole-v1", "--expert", "mpc"]
    assert main([*argv, "--horizon", horizon]) == 2
    assert f"--horizon must be an int >= 1 and <= 100000, got {horizon}" in capsys.readouterr().err


def test_an_out_that_holds_a_train_run_is_refused_and_the_run_kept(tmp_path, capsys):
    # imitate wrote its policy.msgpack over the train run's (as `bellmax sweep` refuses it)
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "policy.msgpack").write_bytes(b"trained")
    argv = ["imitate", "bc", "--env", "gymnasium:CartPole-v1", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "holds a `bellmax train` run (run.json)" in err and "pick another --out" in err
    assert (tmp_path / "policy.msgpack").read_bytes() == b"trained"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.msgpack", "run.json"]


def test_the_command_line_refuses_an_unknown_algorithm(capsys):
    code = main(["imitate", "gail", "--env", "gymnasium:CartPole-v1"])
    assert code == 2
    assert "gail" in capsys.readouterr().err


def test_a_person_labels_at_the_terminal_and_quitting_keeps_the_labels(
    capsys, tmp_path, monkeypatch
):
    import io

    from bellmax.imitation import load_dataset

    monkeypatch.setattr("sys.stdin", io.StringIO("1\n0\ns\n1\nq\n"))
    out = tmp_path / "run"
    code = main(["imitate", "bc", "--env", "gymnasium:CartPole-v1", "--expert", "human",
                 "--labels", "10", "--out", str(out)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 130
    assert f"3 labels kept in {out / 'dataset.npz'}" in captured.err
    assert "push left" in captured.out and "theta" in captured.out  # the state was shown
    assert load_dataset(out / "human_labels.npz")[0].actions.tolist() == [1, 0, 1]
    assert load_dataset(out / "dataset.npz")[0].actions.tolist() == [1, 0, 1]


def test_the_mpc_expert_starts_from_a_nominal_plan_on_the_cart_pole():
    from bellmax.cli.imitate import ImitateArgs, make_expert
    from bellmax.envs import registry

    env, params = registry.make("CartPoleSwingUp-v0")
    space = env.action_space(params)

    def expert(env_id, **kw):
        return make_expert("mpc", env_id, space, ImitateArgs("dart", env=env_id, **kw))

    assert not expert("CartPoleSwingUp-v0").stateful  # labels a function of the state
    assert expert("CartPoleSwingUp-v0", mpc_start="warm").stateful  # labels remember the plan
    assert expert("Pendulum-v1").stateful  # no nominal controller: warm-started
    with pytest.raises(ValueError, match=r"nominal controller for the cart-pole only.*warm"):
        expert("Pendulum-v1", mpc_start="nominal")


def test_tictactoe_takes_its_tested_settings_where_none_are_given():
    # the README's `imitate dagger --env TicTacToe-v0 --expert perfect --labels 3000` stopped
    # at 10 rounds of 50 labels with a network that still lost; tic-tac-toe now takes the
    # settings of tests/imitation/test_tictactoe.py for every option not given, and an option
    # given keeps its value even when it equals the general default
    from bellmax.cli.imitate import TICTACTOE_DEFAULTS, ImitateArgs, _config, _with_env_defaults
    from bellmax.imitation.bc import BCConfig
    from bellmax.imitation.loop import ImitationConfig

    args = _with_env_defaults(ImitateArgs("dagger", env="TicTacToe-v0", expert="perfect"))
    assert {k: getattr(args, k) for k in TICTACTOE_DEFAULTS} == TICTACTOE_DEFAULTS
    mine = ImitateArgs("dagger", env="TicTacToe-v0", expert="perfect", rounds=10, fit_steps=400)
    args = _with_env_defaults(mine)
    assert (args.rounds, args.fit_steps, args.labels_per_round) == (10, 400, 200)
    # elsewhere an option not given takes the library's default
    config, lib = _config(_with_env_defaults(ImitateArgs("dagger"))), ImitationConfig()
    for name in ("labels", "rounds", "labels_per_round", "steps_per_round", "target_return"):
        assert getattr(config, name) == getattr(lib, name), name
    assert config.bc == BCConfig()
    config = _config(_with_env_defaults(ImitateArgs("dagger", labels=7, fit_steps=9)))
    assert (config.labels, config.bc.steps, config.rounds) == (7, 9, ImitationConfig().rounds)


def test_the_help_names_the_defaults_the_run_takes(capsys):
    # the options are None in ImitateArgs (the help showed `{None}|INT ... (default: None)`);
    # what the help says they default to is what ImitationConfig, BCConfig and TicTacToe-v0
    # take
    from bellmax.cli.imitate import TICTACTOE_DEFAULTS
    from bellmax.imitation.bc import BCConfig
    from bellmax.imitation.loop import ImitationConfig

    assert main(["imitate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    general, bc = ImitationConfig(), BCConfig()
    defaults = {
        "labels": general.labels,
        "rounds": general.rounds,
        "labels_per_round": general.labels_per_round,
        "steps_per_round": general.steps_per_round,
        "fit_steps": bc.steps,
        "hidden_sizes": " ".join(map(str, bc.hidden_sizes)),
    }
    for field, value in defaults.items():
        option = "--" + field.replace("_", "-")
        shown = re.search(rf" {option} INT(?: \[INT \.\.\.\])? .*?\(default: ([^)]*)\)", text)
        ttt = TICTACTOE_DEFAULTS[field]
        ttt = " ".join(map(str, ttt)) if isinstance(ttt, tuple) else ttt
        assert shown is not None and shown[1] == f"{value}; TicTacToe-v0 {ttt}", option
    assert general.target_return is None and "(default: none, every round; TicTacToe-v0 0)" in text


def test_an_earlier_imitation_run_in_out_is_refused_unless_overwrite(
    tmp_path, capsys, monkeypatch, stand_in
):
    # `bellmax imitate bc ... --out runs/dart` replaced the earlier dart run's policy.msgpack
    # and dataset.npz without a word; now it is refused before any work, naming both fixes
    from bellmax.cli import imitate as cli

    monkeypatch.setattr(cli, "make_expert", stand_in.work)
    run = tmp_path / "dart"
    run.mkdir()
    for name in ("imitation.json", "dataset.npz", "policy.msgpack"):
        (run / name).write_bytes(b"dart")
    argv = ["imitate", "bc", "--env", "gymnasium:CartPole-v1", "--out", str(run)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "earlier `bellmax imitate` run (imitation.json, dataset.npz, policy.msgpack)" in err
    assert "give another --out, or --overwrite to replace it" in err
    assert {p.read_bytes() for p in run.iterdir()} == {b"dart"}
    with pytest.raises(stand_in.error):
        main([*argv, "--overwrite"])


def test_overwrite_replaces_every_file_of_the_earlier_run(tmp_path, capsys, monkeypatch):
    # --overwrite left the earlier run's human_labels.npz (and, until the end, its policy and
    # plot); an error before the first label then reported the OLD dataset.npz as "3 labels
    # kept". Now the earlier run's files go before this run writes anything.
    import numpy as np

    from bellmax.cli import imitate as cli
    from bellmax.imitation import loop
    from bellmax.imitation.dataset import Dataset, save_dataset
    from bellmax.imitation.experts import ExpertError

    def fails_at_once(*args, **kwargs):
        raise ExpertError("the expert failed")

    monkeypatch.setattr(cli, "make_expert", lambda *args: None)
    monkeypatch.setattr(loop, "imitate", fails_at_once)
    old = Dataset.empty((4,), (), discrete=True).append(np.zeros((3, 4)), [0, 1, 0], round_=0)
    for name in ("dataset.npz", "human_labels.npz"):
        save_dataset(tmp_path / name, old)
    for name in ("imitation.json", "policy.msgpack", "return_vs_labels.png", "notes.txt"):
        (tmp_path / name).write_text("the earlier run's")
    argv = ["imitate", "bc", "--env", "gymnasium:CartPole-v1", "--out", str(tmp_path)]
    assert main([*argv, "--overwrite"]) == 2
    assert capsys.readouterr().err == "bellmax: error: the expert failed (no labels were saved)\n"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]  # not the command's: kept


def test_one_round_and_one_label_read_as_such(capsys, monkeypatch):
    # the summary said "after 1 labels, 1 rounds"
    from types import SimpleNamespace

    from bellmax.cli import imitate as cli
    from bellmax.imitation import loop

    rec = SimpleNamespace(round=0, labels=1, eval_return=9.0)

    def one_round(env_id, expert, config, *, on_round=None, **kwargs):
        on_round(rec)
        return SimpleNamespace(final_eval_return=9.0, labels_used=1, rounds=[rec], seconds=0.1)

    monkeypatch.setattr(cli, "make_expert", lambda *args: None)
    monkeypatch.setattr(loop, "imitate", one_round)
    assert main(["imitate", "bc", "--env", "gymnasium:CartPole-v1", "--labels", "1"]) == 0
    text = capsys.readouterr().out
    assert "round 0: 1 label, greedy return 9.0" in text
    assert "greedy return 9.0 after 1 label, 1 round, 0.1 s" in text


def test_tictactoe_reports_the_worst_outcome_by_its_name(capsys, monkeypatch):
    # TicTacToe-v0's evaluation is the exhaustive worst outcome over the opponent's lines,
    # but the summary called -1.0 a "greedy return" (which `bellmax evaluate` means otherwise)
    from types import SimpleNamespace

    from bellmax.cli import imitate as cli
    from bellmax.imitation import loop

    rec = SimpleNamespace(round=0, labels=1, eval_return=-1.0)

    def one_round(env_id, expert, config, *, on_round=None, **kwargs):
        on_round(rec)
        return SimpleNamespace(final_eval_return=-1.0, labels_used=1, rounds=[rec], seconds=0.1)

    monkeypatch.setattr(cli, "make_expert", lambda *args: None)
    monkeypatch.setattr(loop, "imitate", one_round)
    argv = ["imitate", "dagger", "--env", "TicTacToe-v0", "--expert", "perfect", "--labels", "1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "round 0: 1 label, worst outcome -1.0" in text
    assert "worst outcome -1.0 after 1 label" in text and "greedy return" not in text
    assert "0 means it never loses" in text
