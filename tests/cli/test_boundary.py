"""Every input checked at the boundary: one line `bellmax: error: ...`, no traceback, exit 2.

Most checks run `bellmax.cli.main.main` in-process (parametrised); the few defects that were
in the command itself (the entry point, tyro's parsing, the pipe) are also driven through
the real `bellmax` command in a subprocess.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bellmax.cli.main import main

BELLMAX = Path(sys.executable).parent / "bellmax"


def _bellmax(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess:
    if not BELLMAX.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    return subprocess.run(
        [str(BELLMAX), *argv], capture_output=True, text=True, timeout=timeout, check=False
    )


def _one_error_line(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("bellmax: error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of bad inputs: a plain file, a folder, a malformed .npz, a tiny MDP."""
    d = tmp_path_factory.mktemp("hostile")
    (d / "afile").write_text("x")
    (d / "adir").mkdir()
    (d / "bad.npz").write_bytes(b"garbage")
    (d / "empty.npz").write_bytes(b"")
    np.savez(d / "ok.npz", P=np.full((2, 2, 2), 0.5), R=np.zeros((2, 2)), gamma=0.9)
    return d


# ---------------------------------------------------------------------- the hostile table
#: (command line, a piece of the one-line message). `{d}` is the `hostile` folder.
BAD_INPUTS = [
    # control: nonsense counts, --fix, environments and models
    ("control --horizon 0", "--horizon must be an int >= 1"),
    ("control --horizon -3", "--horizon must be an int >= 1"),
    ("control --episodes 0", "--episodes must be an int >= 1"),
    ("control --episodes -1", "--episodes must be an int >= 1"),
    ("control --episodes 1000000000000", "--episodes must be an int >= 1"),
    ("control --max-steps 0", "--max-steps must be an int >= 1"),
    ("control --iterations 0", "--iterations must be an int >= 1"),
    ("control --sysid-steps 0", "--sysid-steps must be an int >= 10"),
    ("control --seed -1", "--seed must be an int >= 0"),
    ("control --seed 99999999999999999999", "--seed must be an int >= 0"),
    ("control --sysid-steps 20 --fix masscart=1 --fix masscart=2", "--fix gives masscart twice"),
    ("control --sysid-steps 20 --fix masscart=1 masscart=2", "--fix gives masscart twice"),
    ("control --sysid-steps 20 --fix masscart", "the parameters: gravity, masscart, masspole"),
    ("control --sysid-steps 20 --fix masscart=abc", "the parameters: gravity, masscart"),
    ("control --sysid-steps 20 --fix mass=1", "The parameters: gravity, masscart, masspole"),
    ("control --sysid-steps 20 --fix masscart=nan", "a finite number > 0"),
    ("control --sysid-steps 20 --fix masscart=-1", "a finite number > 0"),
    ("control --fix masscart=1", "only runs with --sysid-steps"),
    ("control --env ''", "--env is empty"),
    ("control --env CartPol-v1", "Did you mean: 'CartPole-v1'"),
    ("control --env gymnasium:CartPol-v1", "Did you mean: 'gymnasium:CartPole-v1'"),
    ("control --env nosuchmod:Foo-v0 --model cartpole", "cannot import module 'nosuchmod'"),
    ("control --env gymnasium:Acrobot-v1", "pass --model cartpole or --model pendulum"),
    ("control --env GridWorld4x4-v0 --model cartpole", "(Discrete) do not fit --model cartpole"),
    ("control --env Pendulum-v1 --model cartpole", "--model cartpole does not fit"),
    ("control --controller pid", "invalid choice 'pid'"),
    ("control --controller lqr --horizon 10", "--horizon set MPC's planning"),
    ("control --controller lqr --iterations 5", "--iterations set MPC's planning"),
    ("control --episodes abc", "'abc' is not an integer"),
    ("control --episodes 1 --episodes 2", "--episodes is given more than once"),
    # sysid
    ("sysid --steps -5", "--steps must be an int >= 10"),
    ("sysid --steps 0", "--steps must be an int >= 10"),
    ("sysid --steps 1000000000000", "--steps must be an int >= 10"),
    ("sysid --seed -1", "--seed must be an int >= 0"),
    ("sysid --fix masscart=1 --fix masscart=2", "--fix gives masscart twice"),
    ("sysid --env Pendulum-v1 --fix g", "the parameters: g, m, l, dt, max_torque"),
    ("sysid --env Pendulum-v1 --fix g=1,2", "the parameters: g, m, l, dt, max_torque"),
    ("sysid --fix masscart=inf", "a finite number > 0"),
    ("sysid --env Foo-v0", "unknown environment id 'Foo-v0'"),
    ("sysid --env HalfCheetah-v5", "pass --model cartpole or --model pendulum"),
    ("sysid --env gymnasium:Acrobot-v1 --model pendulum", "(Box of shape (6,)) do not fit"),
    ("sysid --fix foo=1", "unknown parameter 'foo'. The parameters: gravity"),
    ("sysid --steps 12", "--steps 12: too few transitions"),
    ("evaluate /nonexistent --episodes 0", "--episodes must be an int >= 1"),
    ("imitate bc --fit-steps 0", "--fit-steps must be an int >= 1"),
    ("sweep ppo --grid learning_rate=1e-3,2e-3 --chunks 0", "--chunks must be an int >= 1"),
    ("sysid --model pendulum", "--model pendulum does not fit --env gymnasium:CartPole-v1"),
    ("sysid --model cartpol", "invalid choice 'cartpol'"),
    # solve: missing, empty, a folder, malformed files, nonsense numbers
    ("solve {d}/nothere.npz", "no such MDP file"),
    ("solve {d}/adir", "is a directory"),
    ("solve ''", "is empty"),
    ("solve {d}/bad.npz", "not a readable .npz archive"),
    ("solve {d}/empty.npz", "not a readable .npz archive"),
    ("solve {d}/afile", "not a readable .npz archive"),
    ("solve {d}/ok.npz --gamma nan", "--gamma nan must be a number in [0, 1]"),
    ("solve {d}/ok.npz --tol nan", "tol must be a finite number > 0"),
    ("solve {d}/ok.npz --max-iterations 0", "--max-iterations must be an int >= 1"),
    ("solve {d}/ok.npz --max-iterations 100000000000000000000", "--max-iterations must be"),
    (
        "solve {d}/ok.npz --method modified-policy-iteration --sweeps 0",
        "--sweeps must be an int >= 1",
    ),
    ("solve {d}/ok.npz --method soft-value-iteration --temperature nan", "temperature"),
    ("solve {d}/ok.npz --method evaluate --policy {d}/adir", "--policy"),
    ("solve", "Missing from bellmax solve: FILE.npz"),
    # bandit
    ("bandit --epsilon nan", "epsilon must be finite, got nan"),
    ("bandit --alpha inf", "alpha must be finite"),
    ("bandit --runs 0", "runs must be >= 1"),
    ("bandit --runs -1", "runs must be >= 1"),
    ("bandit --seed -1 --steps 5 --last 2", "seed"),
    ("bandit --reward-std nan --steps 5 --last 2", "reward_std"),
    ("bandit --agent ''", "non-empty"),
    ("bandit --agent ucb:c=abc", "expected a number"),
    ("bandit --runs 1.5", "'1.5' is not an integer"),
    ("bandit --epsiln 0.1", "Did you mean --epsilon?"),
    ("bandit --runs 100000000000 --steps 1000000000 --last 2", "out of memory"),
    # tic-tac-toe
    ("tictactoe arena --games 0", "--games must be an int >= 1"),
    ("tictactoe arena --games 1000000000000", "--games must be an int >= 1"),
    ("tictactoe arena --seed -1", "--seed must be an int >= 0"),
    ("tictactoe arena --x random:seed=-1", "seed=-1' must be an int >= 0"),
    ("tictactoe arena --x random:seed=nan", "the seed of agent 'random:seed=nan' must be an int"),
    ("tictactoe arena --x foo", "unknown tic-tac-toe agent kind 'foo'"),
    ("play tictactoe --seed -1", "--seed must be an int >= 0"),
    # reproduce, tour: output folders refused before any work
    ("reproduce sutton-barto foo", "unknown experiment 'foo'"),
    ("reproduce sutton-barto", "name an experiment"),
    ("reproduce sutton-barto gridworld-4x4 --out {d}/afile", "is a file, not a directory"),
    ("reproduce sutton-barto gridworld-4x4 --out /proc/x", "under /proc"),
    ("reproduce sutton-barto gridworld-4x4 --out {d}/afile/sub", "cannot be created"),
    ("tour --out {d}/afile", "is a file, not a directory"),
    ("tour --out /proc/tour", "under /proc"),
    ("tour --out {d}/afile/sub", "cannot be created"),
    ("bandit --plot /proc/x.png", "under /proc"),
    ("bandit --plot {d}/afile/x.png", "cannot be created"),
    ("bandit --plot {d}/adir", "is a directory"),
    ("bandit --plot {d}/curves.xyz", "cannot tell the image format"),
    # the command line itself
    ("frobnicate", "unknown command 'frobnicate'"),
    ("train foo", "unknown algorithm 'foo'"),
    ("train", "missing algorithm: expected one of {dqn, reinforce, a2c, ppo, sac, td3}"),
    ("", "missing command: expected one of {envs, tour"),
    ("envs --bogus", "Unrecognized options: --bogus"),
]


@pytest.mark.parametrize(("line", "needle"), BAD_INPUTS, ids=[c for c, _ in BAD_INPUTS])
def test_bad_input_is_one_line_exit_2(hostile, capsys, monkeypatch, line, needle):
    monkeypatch.delenv("BELLMAX_DEBUG", raising=False)
    argv = shlex.split(line.format(d=hostile))
    code = main(argv)
    out, err = capsys.readouterr()
    message = _one_error_line(code, out, err)
    assert needle in message
    assert out == ""  # refused before any work: nothing printed


# ---------------------------------------------------------------------- missing extras
def _missing(module: str) -> bool:
    return importlib.util.find_spec(module) is None


@pytest.mark.skipif(not _missing("Box2D"), reason="Box2D is installed")
@pytest.mark.parametrize("env_id", ["gymnasium:LunarLander-v3", "CarRacing-v3"])
def test_missing_box2d_names_the_extra(capsys, env_id):
    code = main(["sysid", "--env", env_id, "--model", "cartpole", "--steps", "20"])
    message = _one_error_line(code, *capsys.readouterr())
    assert "needs Box2D" in message and 'pip install "gymnasium[box2d]"' in message


@pytest.mark.skipif(not _missing("mujoco"), reason="MuJoCo is installed")
def test_missing_mujoco_names_the_extra(capsys):
    argv = ["control", "--env", "HalfCheetah-v5", "--model", "cartpole", "--episodes", "1"]
    message = _one_error_line(main(argv), *capsys.readouterr())
    assert "needs MuJoCo" in message and 'pip install "gymnasium[mujoco]"' in message


# ---------------------------------------------------------------------- repeated options
def test_a_multi_value_option_may_be_repeated(capsys):
    """`--fix a=1 --fix b=2` is `--fix a=1 b=2` (both parameters held)."""
    argv = ["sysid", "--env", "Pendulum-v1", "--steps", "40", "--json"]
    code = main([*argv, "--fix", "g=10", "--fix", "max_torque=2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(json.loads(out)["fixed"]) == ["g", "max_torque"]


# ---------------------------------------------------------------------- the real command
@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (["frobnicate"], ["unknown command 'frobnicate'", "envs", "control", "tictactoe"]),
        (["train", "foo"], ["unknown algorithm 'foo'", "dqn", "reinforce", "a2c", "ppo"]),
        (["train", "pp"], ["Did you mean: 'ppo'?", "dqn", "reinforce", "a2c"]),
        (["control", "--horizon", "0"], ["--horizon must be an int >= 1"]),
        (
            ["sysid", "--fix", "masscart=1", "--fix", "masscart=2"],
            ["--fix gives masscart twice"],
        ),
        (["control", "--episodes", "abc"], ["--episodes", "'abc' is not an integer"]),
    ],
)
def test_real_command_names_the_fix_on_the_first_line(argv, first_line):
    proc = _bellmax(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bellmax: error: ")
    for needle in first_line:
        assert needle in lines[0]


def test_real_command_refuses_an_output_path_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    proc = _bellmax("tour", "--quick", "--out", str(tmp_path / "afile" / "report"))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("bellmax: error: --out ") and "cannot be created" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


@pytest.mark.skipif(not _missing("Box2D"), reason="Box2D is installed")
def test_real_command_names_the_box2d_extra():
    proc = _bellmax("sysid", "--env", "gymnasium:LunarLander-v3", "--model", "cartpole")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert 'pip install "gymnasium[box2d]"' in proc.stderr.splitlines()[0]


def test_closed_pipe_ends_quietly(tmp_path):
    """`bellmax ... --json | head -c 10`: no BrokenPipeError traceback, status 141."""
    if not BELLMAX.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    err = tmp_path / "stderr.txt"
    # ~500 kB of JSON: far more than a pipe holds, so the write fails once head has exited.
    command = (
        f"set -o pipefail; {shlex.quote(str(BELLMAX))} bandit --runs 2 --steps 30000 "
        f"--last 10 --json 2>{shlex.quote(str(err))} | head -c 10"
    )
    proc = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BELLMAX_DEBUG": ""},
        check=False,
    )
    assert proc.stdout == '{"runs": 2'
    assert err.read_text() == ""
    assert proc.returncode == 141


def test_ctrl_c_ends_the_process_at_once(tmp_path):
    """SIGINT during a long chunk: "interrupted", status 130, and the process gone within
    seconds. It printed "interrupted" at once but lived on until the compiled chunk ended:
    the interpreter's exit waited for it (minutes at a large --total-steps; this chunk is
    ~3e8 env steps, hours)."""
    import signal
    import time

    if not BELLMAX.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    out = tmp_path / "run"
    argv = ["train", "ppo", "--total-steps", "3e8", "--chunks", "1", "--json", "--out", str(out)]
    # Ctrl-C handled, as in a terminal: a test run started in the background of a shell script
    # ignores SIGINT, and so would the command it starts (an ignored signal stays ignored
    # through exec; a handled one becomes the default, which Python turns into its own).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [str(BELLMAX), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "BELLMAX_DEBUG": ""},
        )
    finally:
        signal.signal(signal.SIGINT, before)
    try:
        deadline = time.monotonic() + 120
        while not (out / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(10)  # into the chunk's run (or its compile, on a slow or busy machine)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        # (a compile under way in the main thread ends first: seconds, on a busy machine more)
        _, err = proc.communicate(timeout=60)
        assert time.monotonic() - sent < 60, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "bellmax: interrupted", err
    # The run's record says so (it said "running", as if the process still ran).
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "interrupted" and record["updates_done"] == 0


def test_output_in_a_narrow_encoding_keeps_the_result():
    """Windows writes redirected output in cp1252, which has no Greek letters: `bellmax
    bandit`'s table ("ε-greedy ε=0.1") failed after the run, with status 2 and no table."""
    if not BELLMAX.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(BELLMAX), "bandit", "--runs", "2", "--steps", "10"],
        capture_output=True,
        timeout=180,
        env={**os.environ, "PYTHONIOENCODING": "cp1252", "BELLMAX_DEBUG": ""},
        check=False,
    )
    out = proc.stdout.decode("cp1252")
    assert proc.returncode == 0, proc.stderr.decode("cp1252")
    assert "?-greedy ?=0.1" in out and "late reward" in out
