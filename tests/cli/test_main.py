"""The `bellmax` command line: subcommands, clean errors, exit codes."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bellmax
import bellmax.cli.main as cli
from bellmax.cli.main import COMMANDS, Command, main, register_command
from bellmax.core.errors import unknown_name


def test_envs_json_lists_the_registry(capsys):
    assert main(["envs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_id = {e["id"]: e for e in out["envs"]}
    assert set(by_id) == set(bellmax.registered())
    assert by_id["CartPole-v1"]["gymnasium_id"] == "CartPole-v1"
    assert by_id["CartPole-v1"]["tabular"] is False
    assert by_id["CliffWalking-v0"]["tabular"] is True
    assert all(e["description"] for e in out["envs"])


def test_envs_table(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "CartPole-v1" in out and "GridWorld4x4-v0" in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"bellmax {bellmax.__version__}"


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "envs" in out and "tour" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["frobnicate"], "frobnicate"), (["envs", "--bogus"], "--bogus"), ([], "envs")],
)
def test_usage_errors_exit_2_without_traceback(capsys, argv, needle):
    assert main(argv) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert needle in text
    assert "Traceback" not in text


@dataclasses.dataclass(frozen=True)
class _BoomArgs:
    """Raise the chosen error."""

    kind: str = "value"
    """Which error to raise."""


def _boom(args: _BoomArgs) -> int | None:
    if args.kind == "value":
        raise ValueError("bad value 3;\n  use a positive one.")
    if args.kind == "type":
        raise TypeError("wrong type")
    if args.kind == "unknown":
        raise unknown_name("environment id", "CartPol-v1", ["CartPole-v1"])
    if args.kind == "status":
        return 7
    if args.kind == "none":
        return None
    if args.kind == "memory":
        raise MemoryError("Unable to allocate 65.5 TiB for an array")
    if args.kind == "overflow":
        raise OverflowError("Python int too large to convert to C long")
    if args.kind == "missing":
        open("/nonexistent-bellmax-dir/x.npz", "rb")  # raises FileNotFoundError
    if args.kind == "oserror":
        raise FileNotFoundError("no checkpoint at 'x.msgpack'; train one first.")
    if args.kind == "pipe":
        raise BrokenPipeError(32, "Broken pipe")
    raise RuntimeError("a bug, not a user error")


@pytest.fixture
def boom(monkeypatch):
    monkeypatch.setitem(COMMANDS, "boom", Command("boom", _BoomArgs, _boom))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("value", "bellmax: error: bad value 3; use a positive one."),
        ("type", "bellmax: error: wrong type"),
        (
            "unknown",
            "bellmax: error: unknown environment id 'CartPol-v1'. Did you mean: 'CartPole-v1'?",
        ),
    ],
)
def test_user_errors_become_one_line_exit_2(boom, capsys, monkeypatch, kind, message):
    monkeypatch.delenv("BELLMAX_DEBUG", raising=False)
    assert main(["boom", "--kind", kind]) == 2
    err = capsys.readouterr().err
    assert err == message + "\n"


@pytest.mark.parametrize(
    ("kind", "needle"), [("memory", "out of memory"), ("overflow", "too large")]
)
def test_resource_errors_become_one_line(boom, capsys, monkeypatch, kind, needle):
    monkeypatch.delenv("BELLMAX_DEBUG", raising=False)
    assert main(["boom", "--kind", kind]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: ") and needle in err and err.count("\n") == 1


def test_os_errors_become_one_line_naming_the_path(boom, capsys, monkeypatch):
    monkeypatch.delenv("BELLMAX_DEBUG", raising=False)
    assert main(["boom", "--kind", "missing"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: No such file or directory: ") and err.count("\n") == 1
    assert "'/nonexistent-bellmax-dir/x.npz'" in err
    # an OSError raised with a message of its own keeps it
    assert main(["boom", "--kind", "oserror"]) == 2
    assert (
        capsys.readouterr().err
        == "bellmax: error: no checkpoint at 'x.msgpack'; train one first.\n"
    )
    # a closed output pipe still ends quietly (main's own handling)
    assert main(["boom", "--kind", "pipe"]) == 141


def test_debug_shows_the_traceback(boom, monkeypatch):
    monkeypatch.setenv("BELLMAX_DEBUG", "1")
    with pytest.raises(ValueError, match="bad value"):
        main(["boom", "--kind", "value"])


def test_bugs_are_not_hidden(boom):
    with pytest.raises(RuntimeError, match="a bug"):
        main(["boom", "--kind", "bug"])


def test_command_status_is_returned(boom):
    assert main(["boom", "--kind", "status"]) == 7
    assert main(["boom", "--kind", "none"]) == 0


def test_register_command_checks(monkeypatch):
    monkeypatch.setattr(cli, "COMMANDS", dict(COMMANDS))
    with pytest.raises(ValueError, match="already registered"):
        register_command(Command("envs", _BoomArgs, _boom))
    with pytest.raises(ValueError, match="share the config type"):
        register_command(Command("envs2", cli.EnvsArgs, cli.run_envs))
    with pytest.raises(TypeError, match="dataclass type"):
        register_command(Command("x", dict, _boom))
    register_command(Command("boom2", _BoomArgs, _boom))
    assert "boom2" in cli.COMMANDS


def test_installed_console_script():
    script = Path(sys.executable).parent / "bellmax"
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    proc = subprocess.run(
        [str(script), "envs", "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    ids = [e["id"] for e in json.loads(proc.stdout)["envs"]]
    assert "CartPole-v1" in ids


def test_repeated_multi_value_options_are_merged_others_refused():
    merged = cli._check_argv(["bandit", "--agent", "ucb", "--runs", "5", "--agent", "greedy"])
    assert merged == ["bandit", "--runs", "5", "--agent", "ucb", "greedy"]
    fix = cli._check_argv(["sysid", "--fix", "g=10", "--steps", "-5", "--fix", "m=1"])
    assert fix == ["sysid", "--steps", "-5", "--fix", "g=10", "m=1"]  # -5 is a value
    with pytest.raises(ValueError, match="--runs is given more than once"):
        cli._check_argv(["bandit", "--runs", "5", "--runs=6"])


def test_a_home_folder_in_an_option_value_is_the_one_checked_and_written(tmp_path, monkeypatch):
    # bash leaves `--out=~/x` (and a quoted "~/x") as it is. The path checks expand `~`, the
    # writes did not: a run went to ./~/x while its check looked at $HOME/x (an earlier run
    # there was replaced without a word). Now both are $HOME/x.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    home = str(tmp_path / "home")
    assert cli._expand_home(["sweep", "--out=~/s", "--config", "~/c.json", "~"]) == [
        "sweep", f"--out={home}/s", "--config", f"{home}/c.json", home,
    ]  # fmt: skip
    assert cli._expand_home(["~", "--env", "CartPole-v1"]) == ["~", "--env", "CartPole-v1"]
    args = ["reproduce", "sutton-barto", "gridworld-5x5", "--quick", "--out=~/rep"]
    assert cli.main(args) == 0
    assert (tmp_path / "home" / "rep" / "gridworld-5x5.json").is_file()
    assert not (tmp_path / "~").exists()
    from bellmax.experiments.base import run_experiment
    from bellmax.experiments.sutton_barto import EXPERIMENTS

    run_experiment(EXPERIMENTS, "gridworld-5x5", "~/api", quick=True)
    assert (tmp_path / "home" / "api" / "gridworld-5x5.json").is_file()


@pytest.mark.parametrize(
    "box",
    [
        # as tyro draws it on a terminal that shows box characters ...
        "╭─ Value error ──────────────────╮\n"
        "│ Error parsing --runs: invalid literal for int() with base 10: 'x' │\n"
        "│ ─────────────────────────────── │\n"
        "│ Argument helptext:              │\n"
        "│     --runs INT                  │\n"
        "│ ─────────────────────────────── │\n"
        "│ For full helptext, see bellmax --help │\n"
        "╰─────────────────────────────────╯\n",
        # ... and where it cannot (pytest's capture, PYTHONIOENCODING=ascii)
        " Value error                     \n"
        " ------------------------------- \n"
        "  Error parsing --runs: invalid literal for int() with base 10: 'x'\n"
        "  -------------------------------\n"
        "  Argument helptext:             \n"
        "      --runs INT                 \n",
    ],
)
def test_tyro_error_box_becomes_one_line(box):
    assert cli._tyro_message(box, ["bandit", "--runs", "x"]) == (
        "Error parsing --runs: 'x' is not an integer. See `bellmax bandit --help`."
    )
    assert cli._tyro_message("not a box", ["bandit"]) is None


def test_listing_the_commands_imports_no_command_module():
    # `bellmax --help` and `bellmax envs` list stand-ins (cli.main.lazy_command): no command
    # module, no JAX.
    code = (
        "import sys\n"
        "from bellmax.cli.main import main\n"
        "for argv in (['--help'], ['envs', '--json']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "loaded = sorted(m for m in sys.modules if m == 'jax' or m.startswith('bellmax.cli.'))\n"
        "print('LOADED', loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "LOADED ['bellmax.cli.main']"


_STAND_INS = {c.name: c for c in cli._builtin_commands() if c.load is not None}


@pytest.mark.parametrize("name", sorted(_STAND_INS))
def test_a_stand_ins_summary_is_its_commands(name):
    stand_in = _STAND_INS[name]
    real = stand_in.load()
    assert real.name == name and real.load is None
    assert stand_in.help == cli.help_description(real.config.__doc__, full=False)


# ---------------------------------------------------------------------- what users type
def _parsed(*argv: str):
    cli.load_command(argv[0])
    return cli._parse(cli._check_argv(list(argv)))


def test_integer_options_take_whole_numbers_in_float_notation():
    # SB3 users write step counts as 1e5: every command's integer options take them, one
    # rule for all (cli.main._registry), exact even beyond float precision.
    assert _parsed("train", "ppo", "--total-steps", "1e5").algo.total_steps == 100_000
    assert _parsed("train", "ppo", "--hidden-sizes", "32", "1.28e2").algo.hidden_sizes == (32, 128)
    assert _parsed("sweep", "ppo", "--total-steps", "100000.0").total_steps == 100_000
    assert _parsed("bandit", "--runs", "2e3").runs == 2000
    assert _parsed("control", "--sysid-steps", "3e2").sysid_steps == 300
    assert cli.whole_number("1e30") == 10**30 and cli.whole_number("1_000") == 1000
    for text in ("1.5", "1e-3", "nan", "inf", "0x10", "abc"):
        with pytest.raises(ValueError, match=f"'{text}' is not an integer; write a whole"):
            cli.whole_number(text)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bandit", "--runs", "1.5"], "Error parsing --runs: '1.5' is not an integer; write a"),
        # an option that may be left unset: the value's error, not tyro's union internals
        (["train", "ppo", "--total-steps", "1.5"], "--total-steps: '1.5' is not an integer;"),
        (["sweep", "ppo", "--total-steps", "x"], "--total-steps: 'x' is not an integer;"),
    ],
)
def test_a_non_integer_is_named_in_one_line(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert "no type matching" not in err and "NoneType" not in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (
            ["train", "ppo", "--hidden-sizes", "64", "x"],
            "Error parsing --hidden-sizes: 'x' is not an integer (--hidden-sizes takes integers "
            "separated by spaces, e.g. --hidden-sizes 64 64). See `bellmax train ppo --help`.",
        ),
        # an option that may be left unset (`tuple[int, ...] | None`): the same, not tyro's
        # union internals; the example is the one its help gives
        (
            ["imitate", "dagger", "--hidden-sizes", "64", "1.5"],
            "Error parsing --hidden-sizes: '1.5' is not an integer (--hidden-sizes takes "
            "integers separated by spaces, e.g. --hidden-sizes 32 32). See `bellmax imitate",
        ),
    ],
)
def test_a_bad_value_of_a_several_number_option_is_named(capsys, argv, needle):
    # was "Could not find valid parse for arguments: ['64', 'x']", no hint
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert "valid parse" not in err and "NoneType" not in err


@pytest.mark.parametrize(
    ("argv", "argument", "choices"),
    [
        (["control", "--model", "foo"], "--model", "{cartpole, pendulum}"),  # Literal | None
        (["sysid", "--model", "foo"], "--model", "{cartpole, pendulum}"),
        (["train", "ppo", "--log", "foo"], "--log", "{tensorboard, wandb}"),
        (["mbrl", "--model", "foo"], "--model", "{ensemble, mlp, hybrid}"),
        (["imitate", "foo"], "algorithm", "{bc, dagger, dart}"),
    ],
)
def test_an_invalid_choice_lists_the_choices_to_give(capsys, argv, argument, choices):
    # tyro listed 'None' (the value of an option left out) among the choices, in no fixed
    # order: ('pendulum', 'None', 'cartpole')
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"invalid choice 'foo' for argument '{argument}'" in err
    assert f". Expected one of {choices}. See `bellmax " in err and "None" not in err


def test_an_invalid_choice_keeps_the_declared_order():
    cli.load_command("control")
    box = (
        "╭─ Invalid choice ─────────────────────────────────────────────────╮\n"
        "│ invalid choice 'x' for argument '--model'. Expected one of       │\n"
        "│ ('pendulum', 'None', 'cartpole').                                 │\n"
        "│ ──────────────────────────────────────────────────────────────── │\n"
        "│ For full helptext, run bellmax control --help                    │\n"
        "╰──────────────────────────────────────────────────────────────────╯\n"
    )
    assert cli._tyro_message(box, ["control", "--model", "x"]) == (
        "invalid choice 'x' for argument '--model'. Expected one of {cartpole, pendulum}. "
        "See `bellmax control --help`."
    )


@pytest.mark.parametrize(
    ("argv", "example"),
    [
        (["train"], "`bellmax train ppo --env CartPole-v1`"),
        (["train", "--env", "CartPole-v1"], "`bellmax train ppo --env CartPole-v1`"),
        (["train", "--seeds", "2", "sac"], "`bellmax train sac --seeds 2`"),  # not first
        # an option's value is not the algorithm: it stays where it is
        (["train", "--out", "ppo", "--seeds", "2"], "`bellmax train ppo --out ppo --seeds 2`"),
        (["train", "--json", "sac", "--seeds", "2"], "`bellmax train sac --json --seeds 2`"),
    ],
)
def test_train_without_an_algorithm_names_them_with_an_example(capsys, argv, example):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "bellmax: error: missing algorithm: expected one of {dqn, reinforce, a2c, ppo, sac, td3}"
    )
    assert f"e.g. {example}" in err and err.count("\n") == 1
    assert main(["train", "--help"]) == 0  # help still works
    assert "{dqn,reinforce,a2c,ppo,sac,td3}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["train", "ppo", "--lr", "1e-3"], "Did you mean --learning-rate?"),
        (["train", "dqn", "--discount", "0.9"], "Did you mean --gamma?"),
        # the option's name, not the Config field's (total_timesteps)
        (["train", "ppo", "--timesteps", "1e5"], "Did you mean --total-steps?"),
        (
            ["train", "ppo", "--lr=1e-3", "--n-envs", "4"],
            "Did you mean --learning-rate (for --lr), --num-envs (for --n-envs)?",
        ),
    ],
)
def test_common_option_aliases_suggest_bellmax_names(capsys, argv, suggestion):
    # core.errors.NAME_ALIASES, not tyro's spelling-based guess (--lr suggested --anneal-lr)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f". {suggestion} See `bellmax train {argv[1]} --help`." in err
    assert "anneal" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # tyro offered the option itself ("Did you mean --gae-lambda?"): it is a2c's and ppo's
        (
            ["train", "sac", "--gae-lambda", "0.9"],
            "--gae-lambda is not a sac option (it is a2c's and ppo's).",
        ),
        (
            ["train", "sac", "--foo", "1", "--no-anneal-lr"],
            "Unrecognized options: --foo; --no-anneal-lr is not a sac option (it is dqn's, "
            "reinforce's, a2c's and ppo's).",
        ),
        # tyro's guesses span the algorithms: ppo has no --learning-starts (sac's, dqn's, ...)
        (
            ["train", "ppo", "--learning-rat", "0.1"],
            "Unrecognized options: --learning-rat, 0.1. Did you mean --learning-rate?",
        ),
        (["train", "sac", "--gae-lamda", "0.9"], "Unrecognized options: --gae-lamda, 0.9."),
    ],
)
def test_an_option_of_another_algorithm_is_named_as_such(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"bellmax: error: {message} See `bellmax train {argv[1]} --help`.\n"


def test_hidden_sizes_alone_is_a_linear_network_as_the_help_says():
    # tyro parses the option with no value as an empty tuple; every algorithm trains that
    # as a network with no hidden layer (`--help` says so)
    algo = _parsed("train", "ppo", "--hidden-sizes").algo
    assert algo.hidden_sizes == ()
    from bellmax.deep import get_algorithm

    get_algorithm("ppo").Config(hidden_sizes=()).validate()
