"""`bellmax reproduce`: listing, running one experiment, and bad input."""

import json

from bellmax.cli.main import main


def test_list(capsys):
    assert main(["reproduce", "sutton-barto", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert "cliff-walking" in listed and listed["gridworld-5x5"]["source"].startswith("Figure")


def test_runs_one_and_prints_json(tmp_path, capsys):
    assert (
        main(["reproduce", "sutton-barto", "gamblers-problem", "--out", str(tmp_path), "--json"])
        == 0
    )
    rec = json.loads(capsys.readouterr().out)
    assert rec["experiment"] == "gamblers-problem" and rec["data"]["v_star_50"] == 0.4
    assert (tmp_path / "figure-4-3.png").exists() and (tmp_path / "gamblers-problem.json").exists()


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["reproduce", "sutton-barto", "clif-walking", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'clif-walking'" in err and "'cliff-walking'" in err
    assert "Traceback" not in err
    assert main(["reproduce", "sutton-barto"]) == 2
    assert "name an experiment" in capsys.readouterr().err
    assert main(["reproduce", "sutton-barto", "ucb", "--list"]) == 2  # listed all, ignored ucb
    assert "--list lists every experiment; drop 'ucb'" in capsys.readouterr().err
    for seed in ("-3", "4294967296"):  # -3 ran; a huge one blamed "sizes" for the overflow
        argv = ["reproduce", "sutton-barto", "random-walk", "--out", str(tmp_path), "--seed"]
        assert main([*argv, seed]) == 2
        assert f"--seed must be an int >= 0 and <= 4294967295, got {seed}" in (
            capsys.readouterr().err
        )
    assert main(["reproduce", "sutton-barto", "ucb", "--list"]) == 2
    assert "--list lists every experiment; drop 'ucb'" in capsys.readouterr().err
    assert main(["reproduce", "other-book", "x"]) == 2
