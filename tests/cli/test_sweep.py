"""`bellmax sweep`: the JSON object, the table, the output files and clear errors.

A tiny PPO (`--set` fixes its sizes) keeps this about plumbing; the learning check (the
8-trial CartPole sweep reaching 475) is in test_sweep_learning.py.
"""

from __future__ import annotations

import json

import pytest

from bellmax.cli.main import main

TINY = [
    "--set", "num_envs=2", "--set", "num_steps=16", "--set", "num_epochs=1",
    "--set", "minibatch_size=32", "--set", "hidden_sizes=8",
    "--total-steps", "256", "--chunks", "2", "--eval-episodes", "1",
]  # fmt: skip
LRS = "learning_rate=1e-3,3e-3"
SWEEP = ["sweep", "ppo", "--grid", LRS, "--grid", "ent_coef=0,0.01", *TINY, "--seeds", "2"]


def test_json_object_and_files(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = SWEEP
    assert main([*argv, "--out", str(out), "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    res = json.loads(lines[0])
    assert len(res["trials"]) == 8 and res["programs"] == 1 and len(res["groups"]) == 1
    for t in res["trials"]:
        assert set(t["config"]) == {"learning_rate", "ent_coef"}
        assert t["env_steps"] == 256 and t["seed"] in (0, 1) and not t["restarted"]
        for key in ("final_eval_return", "seconds"):
            assert key in t
    means = {}
    for t in res["trials"]:
        means.setdefault(json.dumps(t["config"], sort_keys=True), []).append(t["final_eval_return"])
    best = max(means.values(), key=lambda v: sum(v) / len(v))
    assert res["best"]["mean_final_eval_return"] == pytest.approx(sum(best) / len(best))
    assert len((out / "results.csv").read_text().splitlines()) == 9
    for field in ("learning_rate", "ent_coef"):
        assert (out / f"return_vs_{field}.png").stat().st_size > 1000
    # the same command again finds every group's checkpoint at its end: the same results,
    # reported as a finished sweep's (every trial read "restarted: yes", with no word that
    # the sweep had been complete)
    assert main([*argv, "--out", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert [t["final_eval_return"] for t in again["trials"]] == [
        t["final_eval_return"] for t in res["trials"]
    ]
    assert again["programs"] == 0 and again["already_complete"] and not res["already_complete"]
    assert not any(t["restarted"] for t in again["trials"])
    assert [g["finished_before"] for g in again["groups"]] == [True]
    assert main([*argv, "--out", str(out)]) == 0
    note = capsys.readouterr().out.strip().splitlines()[-1]
    assert note == (
        f"--out {out} already held this finished sweep: the table shows its results again. "
        "To train it afresh, add --overwrite or give another --out."
    )
    # (--overwrite trains it afresh: tests/train/test_sweep.py, _claim_out_dir)


def test_total_steps_rounded_down_says_so(capsys):
    # as `bellmax train` says it: 250 steps of updates of 2 envs x 16 steps run 224
    argv = ["sweep", "ppo", "--grid", "learning_rate=1e-3", *TINY, "--total-steps", "250"]
    argv.remove("256")
    argv.remove("--total-steps")
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "bellmax: --total-steps 250 rounded down to 224 env steps per trial: whole rollouts "
        "of num_envs 2 x num_steps 16 = 32 steps (7 updates).\n"
    )
    assert json.loads(captured.out)["trials"][0]["env_steps"] == 224


def test_table(capsys):
    assert main(SWEEP) == 0  # the program of the test above (compiled once per process)
    out = capsys.readouterr().out
    head, *rows = out.strip().splitlines()
    assert head.split() == ["trial", "group", "ent_coef", "learning_rate", "seed", "return",
                            "env_steps", "restarted"]  # fmt: skip
    assert len(rows) == 10 and rows[0].split()[:5] == ["0", "0", "0", "0.001", "0"]
    assert rows[-2].startswith("best: ")
    assert rows[-1].startswith("8 trials, 1 group, ")  # (0 or 1 program: compiled once a process)


def test_table_names_diverged_trials():
    from bellmax.cli.sweep import _table

    def trial(index, ret, diverged):
        return {"index": index, "group": 0, "config": {"learning_rate": 10.0 ** (4 * index - 3)},
                "seed": 0, "final_eval_return": ret, "env_steps": 1000, "seconds": 1.0,
                "diverged": diverged, "restarted": False}  # fmt: skip

    trials = [trial(0, -1888.7, False), trial(1, None, True)]
    summary = {"swept": ["learning_rate"], "trials": trials, "best": None, "groups": [{}],
               "programs": 1, "seconds": 5.0}  # fmt: skip
    *rows, count, last = _table(summary).splitlines()
    assert rows[1].split()[4] == "-1888.7" and rows[2].split()[4] == "diverged"
    assert last.startswith("1 trial diverged (a non-finite loss") and "lower learning_rate" in last
    # counts in words: "2 trials, 1 group(s), 1 program(s) compiled" read so
    assert count == "2 trials, 1 group, 1 program compiled, 5.0 s"
    one = {**summary, "trials": trials[:1], "groups": [{}, {}], "programs": 0}
    assert _table(one).splitlines()[-1] == "1 trial, 2 groups, 0 programs compiled, 5.0 s"
    summary["trials"][1]["diverged"] = False  # no evaluation (--eval-episodes 0): "-"
    assert _table(summary).splitlines()[2].split()[4] == "-"
    assert "diverged" not in _table(summary)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "ppo"], "nothing to sweep"),
        (["sweep", "ppo", "--grid", "learning_rate=1e-3,oops"], "'oops' is not a value"),
        (["sweep", "ppo", "--grid", "learning_rate=-1,1e-3"], "learning_rate"),
        (["sweep", "ppo", "--grid", "lr=1,2"], "unknown Config field 'lr'"),
        (["sweep", "ppo", "--grid", "lr=1e-3,3e-3"], "Did you mean: 'learning_rate'?"),
        (["sweep", "ppo", "--grid", LRS, "--set", "num_envs=2,4"], "one value per field"),
        (
            ["sweep", "ppo", "--grid", LRS, "--scheduler", "asha"],
            "--scheduler asha runs in Ray Tune; add --backend ray.",
        ),
        (["sweep", "ppo", "--grid", LRS, "--address", "a:1"], "--address a:1 names a Ray"),
        (
            ["sweep", "ppo", "--grid", LRS, "--random", "2"],
            "--random N and --space FIELD=KIND(LOW,HIGH) go together",
        ),
        (["sweep", "ppo", "--grid", LRS, "--seeds", "0"], "seeds"),
        (["sweep", "ppo", "--grid", LRS, "--seed", "-1"], "--seed must be an int >= 0"),
        (["sweep", "ppo", "--grid", LRS, "--eval-episodes", "-1"], "--eval-episodes must be"),
        (
            [
                "sweep",
                "ppo",
                "--random",
                "2",
                "--space",
                "clip_eps=uniform(0.01,0.02)",
                "--space",
                "clip_eps=uniform(0.5,0.6)",
            ],
            "--space gives clip_eps twice",
        ),  # the second range replaced the first without a word
        (["sweep", "td3", "--env", "CartPole-v1", "--grid", LRS], "continuous Box"),
        (["sweep", "ppo", "--grid", LRS, "--overwrite"], "give --out DIR"),
        (["sweep", "ppo", "--grid", LRS, "--set", "foo"], "--set takes FIELD=VALUE, got 'foo'"),
        (
            ["sweep", "ppo", "--grid", LRS, "--total-steps", "256", "--set", "total_timesteps=512"],
            "--total-steps and --set total_timesteps=... both set",
        ),  # --total-steps won without a word
        (["sweep", "ppo", "--grid", LRS, "--no-reuse-actors"], "Ray Tune option; add --backend"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_another_sweeps_out_is_refused_naming_the_options(tmp_path, capsys):
    # a rerun with another --total-steps was refused naming the Config field
    # ("total_timesteps: 512 in the run, 256 given"); refused before any training
    from bellmax.deep import ppo
    from bellmax.train import sweep as sw

    base = ppo.Config(num_envs=2, num_steps=16, num_epochs=1, minibatch_size=32,
                      hidden_sizes=(8,), total_timesteps=512)  # fmt: skip
    fields = {f: getattr(base, f) for f in base.__dataclass_fields__}
    trials = sw.plan_trials(base, grid={"learning_rate": (1e-3, 3e-3)})
    settings = sw._settings("ppo", "CartPole-v1", fields, trials, 2, 1)
    (tmp_path / "sweep.json").write_text(json.dumps({"digest": "x", "settings": settings}))
    assert main(["sweep", "ppo", "--grid", LRS, *TINY, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"bellmax: error: --out {str(tmp_path)!r} holds the results of another sweep "
        "(--total-steps: 512 in the run, 256 given): give another --out, or --overwrite to "
        "replace them.\n"
    )


OFF_POLICY = [
    "--set", "hidden_sizes=8", "--set", "batch_size=16", "--set", "learning_starts=64",
    "--set", "train_frequency=8", "--total-steps", "160", "--chunks", "2",
    "--eval-episodes", "1", "--seeds", "2", "--json",
]  # fmt: skip


@pytest.mark.parametrize(
    "grid",
    [
        ["td3", "--grid", "exploration_noise=0.1,0.3", "--grid", "tau=0.005,0.05"],
        ["sac", "--grid", "target_entropy=-1,-0.5", "--grid", "init_temperature=0.1,1"],
    ],
    ids=["td3", "sac"],
)
def test_off_policy_sweeps_compile_once(grid, capsys):
    # SAC and TD3 trace their hyperparameters too: 4 configurations x 2 seeds in one program,
    # on Pendulum-v1 (their default env), every trial trained and evaluated
    assert main(["sweep", *grid, *OFF_POLICY]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["env"] == "Pendulum-v1" and res["programs"] == 1 and len(res["groups"]) == 1
    assert len(res["trials"]) == 8
    for t in res["trials"]:
        assert t["env_steps"] == 160 and -2000 < t["final_eval_return"] <= 0
