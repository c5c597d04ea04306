"""The `bellmax` command: subcommands generated with tyro from one dataclass each.

Adding a subcommand takes a few lines: a frozen dataclass whose fields (with docstrings)
are the options, a function that runs it, and one `Command` entry in `_builtin_commands`
(or `register_command` from anywhere before `main` runs):

    @dataclasses.dataclass(frozen=True)
    class SolveArgs:
        \"\"\"Solve a tabular MDP by dynamic programming.\"\"\"
        env: str = "GridWorld4x4-v0"
        \"\"\"Registered tabular environment.\"\"\"

    def run_solve(args: SolveArgs) -> int | None: ...

    Command("solve", SolveArgs, run_solve)

Each command's config type must be distinct (subclass it to reuse one for two commands).
User errors (`BellmaxError`, and `ValueError`/`TypeError` raised for bad input) become one
line `bellmax: error: ...` on stderr and exit status 2; set `BELLMAX_DEBUG=1` to see the
traceback instead. So do bad options: an unknown command or `train` algorithm, or none
(checked here, naming the valid ones), an option given twice (the last would silently
win), and whatever tyro refuses (its message box is turned into one line; an unknown option
that is a common alias, `--lr`, is answered with bellmax's name, `--learning-rate`). Every
integer option also takes a whole number written as a float (`--total-steps 1e5`).
Running out of memory on a huge value is reported in one line too, and a closed output
pipe (`bellmax ... | head`) ends the command quietly with status 141, like other Unix tools.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import inspect
import io
import itertools
import json
import os
import re
import shlex
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Union

from bellmax import __version__
from bellmax.core.checks import whole_number
from bellmax.core.compile_cache import enable_compile_cache
from bellmax.core.display import plural as plural  # re-exported for the commands' summaries
from bellmax.core.errors import OPTION_NAMES, BellmaxError, alias_for, unknown_name
from bellmax.core.xla import tune_xla_flags
from bellmax.envs import registry

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = [
    "COMMANDS",
    "Command",
    "EnvsArgs",
    "lazy_command",
    "load_command",
    "main",
    "register_command",
]

PROG = "bellmax"
DESCRIPTION = (
    "bellmax: reinforcement learning and optimal control on JAX. "
    "Run `bellmax <command> --help` for a command's options, `bellmax --version` for the version."
)

#: Exit status of a user error (bad option, bad value), as argparse uses.
EXIT_USAGE = 2
#: Exit status when the reader of stdout went away (128 + SIGPIPE), as shells report it.
EXIT_BROKEN_PIPE = 141
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


@dataclasses.dataclass(frozen=True)
class Command:
    """One `bellmax` subcommand."""

    name: str
    """What the user types, e.g. `tour`."""
    config: type
    """Frozen dataclass whose fields are the command's options (its docstring is the help)."""
    run: Callable[[Any], int | None]
    """Runs the command on the parsed config; returns an exit status (None means 0)."""
    help: str | None = None
    """One line for `bellmax --help` (default: the config's docstring)."""
    build_config: Callable[[], type] | None = None
    """Builds the real config type only when this command runs (keeps `bellmax` startup
    fast when the options come from heavy modules); `config` is then a light stand-in."""
    flag_pairs: bool = False
    """Every bool option gets both forms, `--x` and `--no-x` (otherwise only the one that
    changes the default)."""
    pass_argv: bool = False
    """`run` also receives the command's arguments, `run(config, argv=[...])` (to tell an
    option given on the command line from one left at its default)."""
    load: Callable[[], Command] | None = None
    """Makes this entry a stand-in: `load()` imports the command's module and returns the
    real `Command`, only when the command runs. `bellmax --help` lists the stand-in's
    `help` without importing anything (see `lazy_command`)."""


def lazy_command(name: str, target: str, help: str, **options: Any) -> Command:
    """A stand-in for the command whose config and runner live in `target`'s module.

    Args:
      name: what the user types.
      target: `"module:ConfigClass:run_function"`.
      help: the config's one-line summary, as `bellmax --help` lists it (a test checks it
        against the real config's docstring).
      **options: the real command's other `Command` fields (`flag_pairs`, `pass_argv`,
        `build_config` given as the name of a function of the module).
    """
    module_name, config_name, run_name = target.split(":")
    build_name = options.pop("build_config", None)

    def load() -> Command:
        import importlib

        module = importlib.import_module(module_name)
        build = getattr(module, build_name) if build_name else None
        return Command(
            name,
            getattr(module, config_name),
            getattr(module, run_name),
            build_config=build,
            **options,
        )

    stand_in = dataclasses.make_dataclass(f"{config_name}StandIn", [], frozen=True)
    stand_in.__doc__ = help
    return Command(name, stand_in, _not_loaded, help=help, load=load)


def _not_loaded(config: Any) -> int:
    raise RuntimeError("a lazy command runs only after `load_command` replaced its stand-in")


def load_command(name: str) -> Command:
    """The real `Command` registered under `name`, its module imported if it was a stand-in."""
    command = COMMANDS[name]
    if command.load is not None:
        command = command.load()
        COMMANDS[name] = command
    return command


#: Registered subcommands, in the order `bellmax --help` lists them.
COMMANDS: dict[str, Command] = {}


def register_command(command: Command, *, overwrite: bool = False) -> None:
    """Add a subcommand to `COMMANDS`.

    Raises:
      ValueError: the name is taken (pass `overwrite=True`), the config is not a dataclass,
        or another command already uses the same config type.
    """
    if not dataclasses.is_dataclass(command.config) or not isinstance(command.config, type):
        raise TypeError(
            f"command {command.name!r}: config must be a dataclass type, got {command.config!r}."
        )
    if command.name in COMMANDS and not overwrite:
        raise ValueError(f"command {command.name!r} is already registered; pass overwrite=True.")
    for other in COMMANDS.values():
        if other.config is command.config and other.name != command.name:
            raise ValueError(
                f"commands {other.name!r} and {command.name!r} share the config type "
                f"{command.config.__name__}; give {command.name!r} a subclass of it."
            )
    COMMANDS[command.name] = command


# ---------------------------------------------------------------------- bellmax envs
@dataclasses.dataclass(frozen=True)
class EnvsArgs:
    """List the registered environments."""

    json: bool = False
    """Print one JSON object instead of a table."""


def env_rows() -> list[dict[str, Any]]:
    """One dict per registered environment: id, description, tabular, gymnasium_id.

    Reads the registry only; no environment module is imported.
    """
    return [
        {
            "id": s.id,
            "description": s.description,
            "tabular": s.tabular,
            "gymnasium_id": s.gymnasium_id,
        }
        for s in (registry.spec(env_id) for env_id in registry.registered())
    ]


def run_envs(args: EnvsArgs) -> int:
    """`bellmax envs`: a table of the registry, or one JSON object with `--json`."""
    rows = env_rows()
    if args.json:
        print(json.dumps({"envs": rows}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bellmax environments ({len(rows)})", title_justify="left")
    table.add_column("id", style="bold cyan", no_wrap=True)
    table.add_column("tabular", justify="center")
    table.add_column("Gymnasium", no_wrap=True)
    table.add_column("description")
    for r in rows:
        table.add_row(
            r["id"], "yes" if r["tabular"] else "", r["gymnasium_id"] or "", r["description"]
        )
    Console(soft_wrap=False).print(table)
    return 0


# ---------------------------------------------------------------------- registry of commands
def _builtin_commands() -> list[Command]:
    # Each command's module loads only when the command runs (`lazy_command`): importing
    # them all (and JAX with them) made `bellmax --help` take 1.5 s instead of 0.2 s.
    cli = "bellmax.cli."
    return [
        Command("envs", EnvsArgs, run_envs),
        lazy_command(
            "tour",
            cli + "tour:TourArgs:run_tour_command",
            "Run the guided tour and write a report (report.html, PNG plots, summary.json).",
        ),
        lazy_command(
            "solve",
            cli + "solve:SolveArgs:run_solve",
            "Solve a tabular MDP stored as .npz (dense P or sparse P_indices/P_values, R, gamma).",
        ),
        lazy_command(
            "bandit",
            cli + "bandit:BanditArgs:run_bandit",
            "Run bandit agents on the k-armed Gaussian testbed (Sutton & Barto ch. 2); print "
            "or plot.",
        ),
        lazy_command(
            "reproduce",
            cli + "reproduce:ReproduceArgs:run_reproduce",
            "Reproduce a published experiment (PNG figures and JSON data); "
            "`bellmax reproduce sutton-barto --list` names them.",
        ),
        lazy_command(
            "train",
            cli + "train:TrainArgs:run_train",
            "Train a deep RL agent (dqn, reinforce, a2c, ppo, sac, td3) on any bellmax or "
            "Gymnasium env.",
            build_config="build_train_args",
            flag_pairs=True,
            pass_argv=True,
        ),
        lazy_command(
            "evaluate",
            cli + "train:EvaluateArgs:run_evaluate",
            "Evaluate every seed's policy of a `bellmax train` run, from its policy.msgpack.",
        ),
        lazy_command(
            "sysid",
            cli + "control:SysidArgs:run_sysid",
            "Identify a cart-pole's or pendulum's physical parameters from random-policy "
            "transitions.",
        ),
        lazy_command(
            "control",
            cli + "control:ControlArgs:run_control",
            "Control a cart-pole or pendulum in closed loop with LQR or MPC (iLQR or DDP inside).",
        ),
        lazy_command(
            "mbrl",
            cli + "mbrl:MbrlArgs:run_mbrl",
            "Model-based RL: random trials, then fit a neural model and run MPC through it.",
        ),
        lazy_command(
            "gps",
            cli + "gps:GpsArgs:run_gps",
            "Learn a time-varying linear-Gaussian controller from a few rollouts per "
            "iteration (LQR-FLM: Levine & Abbeel 2014).",
        ),
        lazy_command(
            "imitate",
            cli + "imitate:ImitateArgs:run_imitate",
            "Learn a policy from an expert: behaviour cloning, DAgger or DART "
            "(noise-injected demonstrations), optionally with the three-cameras perturbed "
            "copies.",
        ),
        lazy_command(
            "pomdp",
            cli + "pomdp:PomdpArgs:run_pomdp",
            "Solve a POMDP stored in Cassandra's .pomdp format, or simulate a policy on it.",
        ),
        lazy_command(
            "sweep",
            cli + "sweep:SweepArgs:run_sweep",
            "Sweep a deep RL algorithm's hyperparameters: configurations x seeds, vmapped.",
        ),
        lazy_command(
            "play",
            cli + "games:PlayArgs:run_play",
            "Play tic-tac-toe against an agent in the terminal (moves are the numbers 1-9).",
        ),
        lazy_command(
            "tictactoe",
            cli + "games:ArenaArgs:run_arena",
            "Tic-tac-toe: pit two agents against each other and count wins, draws and losses.",
        ),
    ]


for _cmd in _builtin_commands():
    register_command(_cmd)


# ---------------------------------------------------------------------- entry point
def changed_fields(args: Any, names: Sequence[str]) -> list[str]:
    """The `names` whose value in a command's config differs from the field's default (the
    options the user set), in the order given."""
    defaults = {f.name: f.default for f in dataclasses.fields(type(args))}
    return [n for n in names if getattr(args, n) != defaults[n]]


def option_for(field: str) -> str:
    """The option that sets a Config field: `--learning-rate` for `learning_rate`,
    `--total-steps` for `total_timesteps` (`core.errors.OPTION_NAMES`)."""
    return "--" + OPTION_NAMES.get(field, field).replace("_", "-")


def out_dir_option() -> Any:
    """tyro's settings of a command's `--out DIR` that saves nothing when left out:
    `out: Annotated[str | None, out_dir_option()] = None` (tyro is imported here, not at the
    top: `bellmax --version` and `bellmax envs` do without it)."""
    import tyro

    return tyro.conf.arg(metavar="DIR", help_behavior_hint="(default: none, nothing saved)")


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip()
    if not msg:
        msg = type(exc).__name__
    return re.sub(r"\s*\n\s*", " ", msg)


def _expand_home(argv: Sequence[str]) -> list[str]:
    """`~` and `~user` at the start of an option's value, expanded as the shell would have:
    bash leaves `--out=~/runs` (and a quoted "~/runs") as it is, and bellmax's path checks
    expand it, so the check and the writes must see one folder (no value of bellmax's
    starts with `~` otherwise)."""
    out = []
    for i, token in enumerate(argv):
        option, eq, value = token.partition("=")
        if token.startswith("--") and eq and value.startswith("~"):
            token = f"{option}={os.path.expanduser(value)}"
        elif i and token.startswith("~"):
            token = os.path.expanduser(token)
        out.append(token)
    return out


def _check_argv(argv: Sequence[str]) -> list[str]:
    """Refuse, before tyro parses, what it would report in a box or silently accept.

    An option that takes several values (a `tuple` field, e.g. `--fix`, `--agent`) may be
    given more than once: `--fix a=1 --fix b=2` is read as `--fix a=1 b=2`. Any other
    option given twice is refused (argparse would keep the last one silently), and so are
    both forms of a bool option (`--anneal-lr --no-anneal-lr`).

    Returns:
      The arguments, with the repeated multi-value options merged.

    Raises:
      UnknownNameError: an unknown command, or an unknown `train` algorithm (the message
        names the valid ones).
      ValueError: `train` without an algorithm right after it; a single-value option given
        twice, or both forms of a bool option.
    """
    argv = list(argv)
    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        raise _unknown("command", argv[0], COMMANDS, "bellmax --help")
    if argv[:1] == ["train"] and "train" in COMMANDS and not _asks_help(argv):
        from bellmax.deep import ALGORITHMS

        if len(argv) == 1 or argv[1].startswith("-"):
            raise _missing_algorithm(argv, ALGORITHMS)
        if argv[1] not in ALGORITHMS:
            raise _unknown("algorithm", argv[1], ALGORITHMS, "bellmax train --help")
    variadic = _variadic_options(argv[0]) if argv else set()
    rest: list[str] = []
    groups: dict[str, list[str]] = {}
    seen: set[str] = set()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest.extend(argv[i:])
            break
        option = token.partition("=")[0] if token.startswith("--") else None
        if option is None or option == "--help":
            rest.append(token)
            i += 1
            continue
        if option in variadic and "=" not in token:
            j = i + 1
            while j < len(argv) and not _is_option(argv[j]):
                j += 1
            groups.setdefault(option, []).extend(argv[i + 1 : j])
            i = j
            continue
        if option in seen:
            raise ValueError(f"{option} is given more than once; give it once.")
        both = _bool_pair(option)
        if both in seen:
            raise ValueError(f"{both} and {option} are both given; give one of them.")
        seen.add(option)
        rest.append(token)
        i += 1
    if "--" in rest:
        k = rest.index("--")
        rest, tail = rest[:k], rest[k:]
    else:
        tail = []
    for option, values in groups.items():
        rest += [option, *values]
    return rest + tail


def _missing_algorithm(argv: Sequence[str], algorithms: Sequence[str]) -> ValueError:
    """`bellmax train --env X` (no algorithm, or not first): the algorithms, and the
    command line with one in its place."""
    options = list(argv[1:])
    later = next(
        (
            i
            for i, w in enumerate(options)
            if w in algorithms and not _is_option_value(options, i, ["train", w])
        ),
        None,
    )
    if later is not None:  # `bellmax train --seeds 2 ppo`: it must come first
        later = options.pop(later)
    example = shlex.join([PROG, "train", later or "ppo", *(options or ["--env", "CartPole-v1"])])
    return ValueError(
        f"missing algorithm: expected one of {{{', '.join(algorithms)}}} right after "
        f"`train`, e.g. `{example}`. See `bellmax train --help`."
    )


def _is_option_value(words: Sequence[str], i: int, argv: Sequence[str]) -> bool:
    """Whether `words[i]` is the value of the option before it (`--out ppo`), not a word of
    its own: that option is written without `=` and is not a flag (a bool option of the
    config `argv` is parsed into)."""
    before = words[i - 1] if i > 0 else ""
    if not before.startswith("--") or "=" in before:
        return False
    flags = {f for name, t in _option_types(argv).items() if t is bool for f in _flags(name)}
    return before not in flags


def _flags(field: str) -> tuple[str, str]:
    """A bool option's two forms: `--progress` and `--no-progress` for `progress`."""
    option = option_for(field)
    return option, _bool_pair(option)


def _bool_pair(option: str) -> str:
    """The other form of a bool option: `--no-x` for `--x` and `--x` for `--no-x`."""
    return "--" + option[5:] if option.startswith("--no-") else "--no-" + option[2:]


def _is_option(token: str) -> bool:
    """An option flag, not a value (a negative number such as -1 or -.5 is a value)."""
    return token.startswith("-") and re.match(r"^-\.?\d", token) is None


def _variadic_options(name: str) -> set[str]:
    """The `--flags` of a command's tuple-valued options (they take several values)."""
    if name not in COMMANDS:
        return set()
    command = load_command(name)
    if command.build_config is not None:
        return set()
    try:
        hints = typing.get_type_hints(command.config)
    except Exception:  # an annotation that cannot be evaluated: merge nothing
        return set()
    return {
        "--" + field.replace("_", "-")
        for field, hint in hints.items()
        if typing.get_origin(hint) is tuple
    }


def _unknown(kind: str, name: str, known: Any, help_cmd: str) -> Exception:
    """`unknown_name`'s error, with every valid name listed (not only the close ones)."""
    err = unknown_name(kind, name, known)
    if "Did you mean" not in str(err):
        return unknown_name(kind, name, known, hint=f"See `{help_cmd}`.")
    valid = ", ".join(known)
    return unknown_name(
        kind, name, known, hint=f"Valid {kind}s: {valid} (see `{help_cmd}`).", listed=True
    )


_BOX_RULE = re.compile(r"^[─-]+$")


def _tyro_message(text: str, argv: Sequence[str] = ()) -> str | None:
    """tyro's error box as one line, or None when `text` is not one.

    The box is `╭─ Title ─╮`, `│ ... │` rows and `───` rules (or, where the stream cannot
    show those characters, the title, then rows and `---` rules). Keeps the first part (the
    problem, without help text indented under it), the options tyro suggests ("Perhaps
    you meant") and the command's `--help`.
    """
    rows = [row.rstrip() for row in text.splitlines() if row.strip()]
    if len(rows) < 2:
        return None
    head = rows[0].strip()
    if head.startswith("╭"):
        title = head.strip("╭╮─ ")
        body = [row.strip().strip("│╰╯") for row in rows[1:]]
    elif _BOX_RULE.match(rows[1].strip()):
        title, body = head, rows[2:]
    else:
        return None
    parts: list[list[str]] = [[]]
    for line in body:
        if _BOX_RULE.match(line.strip()):
            parts.append([])
        elif line.strip():
            parts[-1].append(line.rstrip())
    if not parts[0]:
        return None
    base = min(len(line) - len(line.lstrip()) for line in parts[0])
    problem = " ".join(
        line.strip() for line in parts[0] if len(line) - len(line.lstrip()) - base <= 4
    )
    if title == "Missing subcommand":
        what = "algorithm" if list(argv[:1]) == ["train"] else "command"
        problem = f"missing {what}: " + problem[:1].lower() + problem[1:]
    problem = re.sub(
        r"invalid literal for int\(\) with base 10: ('.*')", r"\1 is not an integer", problem
    )
    problem = re.sub(r"could not convert string to float: ('.*')", r"\1 is not a number", problem)
    rest = "\n".join(line for part in parts[1:] for line in part)
    problem = _union_error(_sequence_error(problem, argv, rest))
    problem = _choice_error(problem, argv)
    others = _other_algorithms_options(argv) if title == "Unrecognized options" else {}
    problem = _not_this_algorithm(problem, argv, others)
    message = problem.rstrip(".") + "."
    aliases = _alias_suggestions(problem, argv) if title == "Unrecognized options" else ""
    if aliases:
        message += aliases
    elif "Perhaps you meant" in rest or "Arguments similar to" in rest:
        # tyro's guesses span `train`'s algorithms: only this one's options are offered
        options = re.findall(r"^\s*(--[\w.-]+)", rest, re.MULTILINE)
        options = [o for o in dict.fromkeys(options) if o not in others]
        if options:
            message += " Did you mean " + " or ".join(options) + "?"
    message += f" See `{_help_command(argv)}`."
    return message


def _other_algorithms_options(argv: Sequence[str]) -> dict[str, list[str]]:
    """For `bellmax train ALGO`: each option that other algorithms have and ALGO lacks, and
    the algorithms that have it (`--gae-lambda`: a2c, ppo for sac); {} for other commands."""
    if list(argv[:1]) != ["train"] or len(argv) < 2 or argv[1].startswith("-"):
        return {}
    from bellmax.deep import ALGORITHMS

    own = _options_of(argv)
    found: dict[str, list[str]] = {}
    for algo in ALGORITHMS:
        if algo != argv[1]:
            for option in _options_of(["train", algo]) - own:
                found.setdefault(option, []).append(algo)
    return found


def _options_of(argv: Sequence[str]) -> set[str]:
    """The options of the config `argv` is parsed into (a bool one in both forms)."""
    return {
        option
        for name, ftype in _option_types(argv).items()
        for option in (_flags(name) if ftype is bool else (option_for(name),))
    }


def _not_this_algorithm(problem: str, argv: Sequence[str], others: dict[str, list[str]]) -> str:
    """tyro's `Unrecognized or misplaced options: --gae-lambda (applied to bellmax train sac)
    0.9 (...) Arguments are applied to the directly preceding subcommand, ...` for an option
    of other algorithms, as what it is: `--gae-lambda is not a sac option (it is a2c's and
    ppo's)`, after the options that no algorithm has, if any."""
    unknown = list(dict.fromkeys(re.findall(r"(?<![\w-])--[\w-]+", problem)))
    theirs = [o for o in unknown if o in others]
    if not theirs:
        return problem
    parts = [f"Unrecognized options: {', '.join(o for o in unknown if o not in others)}"]
    for option in theirs:
        owners = [f"{algo}'s" for algo in others[option]]
        owner = f"{', '.join(owners[:-1])} and {owners[-1]}" if len(owners) > 1 else owners[0]
        parts.append(f"{option} is not a {argv[1]} option (it is {owner})")
    return "; ".join(parts[1:] if len(theirs) == len(unknown) else parts)


def _union_error(problem: str) -> str:
    """tyro's error for an option that may be left unset (`int | None`), `no type matching
    {None}|INT could be instantiated from ['x']. Got errors: - <class 'NoneType'>: ... -
    <class 'int'>: 'x' is not an integer` (or `- tuple[int, ...]: ...`), as the value's own
    error(s) alone."""
    m = re.search(
        r"no type matching .+? could be instantiated from \[.*?\]\.? Got errors:\s*", problem
    )
    if m is None:
        return problem
    found = re.split(r"\s*- (<class '[\w.]+'>|[\w.]+\[[^\]]*\]): ", " " + problem[m.end() :])
    errors = [
        e.strip().rstrip(".")
        for t, e in zip(found[1::2], found[2::2], strict=True)
        if t != "<class 'NoneType'>"
    ]
    return problem[: m.start()] + "; or ".join(errors) if errors else problem


def _sequence_error(problem: str, argv: Sequence[str], rest: str) -> str:
    """tyro's error for a bad value of a several-number option, `Error parsing
    --hidden-sizes: Could not find valid parse for arguments: ['64', 'x']`, as the value
    that is wrong and the form the option takes, with the help's example where it has one:
    `'x' is not an integer (--hidden-sizes takes integers separated by spaces, e.g.
    --hidden-sizes 64 64)`."""
    m = re.search(r"Could not find valid parse for arguments: (\[.*?\])", problem)
    option = re.match(r"Error parsing (--[\w.-]+):", problem)
    if m is None or option is None:
        return problem
    field = option[1][2:].replace("-", "_")
    element = _sequence_element(_option_types(argv).get(field))
    try:
        values = ast.literal_eval(m[1])
    except (ValueError, SyntaxError):
        return problem
    if element is None or not isinstance(values, list):
        return problem
    parse, kind, what = (
        (whole_number, "an integer", "integers")
        if element is int
        else (float, "a number", "numbers")
    )
    for value in values:
        try:
            parse(value)
        except ValueError:
            break
    else:
        return problem
    form = f"{option[1]} takes {what} separated by spaces"
    example = re.search(
        rf"\(e\.g\. ({re.escape(option[1])}(?: [^\s();]+)+)[;)]", " ".join(rest.split())
    )
    if example is not None:
        form += f", e.g. {example[1]}"
    return problem[: m.start()] + f"{value!r} is not {kind} ({form})" + problem[m.end() :]


def _sequence_element(ftype: Any) -> type | None:
    """`int` for an option of type `tuple[int, ...]` (or `... | None`), `float` for one of
    floats; None for any other type."""
    for t in typing.get_args(ftype) if _is_union(ftype) else (ftype,):
        if typing.get_origin(t) in (tuple, list) and typing.get_args(t)[:1] in ((int,), (float,)):
            return typing.get_args(t)[0]
    return None


def _is_union(ftype: Any) -> bool:
    return typing.get_origin(ftype) in (Union, types.UnionType)


def _choice_error(problem: str, argv: Sequence[str]) -> str:
    """tyro's error for a value that is not one of an option's choices, `... Expected one of
    ('None', 'cartpole', 'pendulum').`, with the choices as the help shows them:
    `Expected one of {cartpole, pendulum}.` (in the order declared; `None`, tyro's value for
    an option left out, is not one to give)."""
    m = re.fullmatch(
        r"(invalid choice .* for argument '([^']+)')\. Expected one of \((.*)\)\.?", problem
    )
    if m is None:
        return problem
    try:
        given = ast.literal_eval(f"({m[3]},)")
    except (ValueError, SyntaxError):
        return problem
    field = m[2].lstrip("-").replace("-", "_")
    declared = [v for v in _literal_values(_option_types(argv).get(field)) if isinstance(v, str)]
    choices = [c for c in given if c != "None"]
    if sorted(declared) == sorted(choices):
        choices = declared
    return f"{m[1]}. Expected one of {{{', '.join(map(str, choices))}}}"


def _literal_values(ftype: Any) -> list[Any]:
    """The values of a `Literal[...]` type, also inside a union (`Literal[...] | None`)."""
    if typing.get_origin(ftype) is typing.Literal:
        return list(typing.get_args(ftype))
    if _is_union(ftype):
        return [v for t in typing.get_args(ftype) for v in _literal_values(t)]
    return []


def _alias_suggestions(problem: str, argv: Sequence[str]) -> str:
    """` Did you mean --learning-rate?` for an unknown option that is a common alias
    (`core.errors.NAME_ALIASES`: `--lr`) of an option the command has; "" if none is."""
    fields = set(_option_types(argv))
    unknown = list(dict.fromkeys(re.findall(r"(?<![\w-])--[\w-]+", problem)))
    found = []
    for option in unknown:
        name = option.lstrip("-").replace("-", "_")  # --total-timesteps: the Config's name
        target = alias_for(option, fields | OPTION_NAMES.keys()) or (
            name if name in OPTION_NAMES else None
        )
        if target is not None and OPTION_NAMES.get(target, target) in fields:
            found.append((option, option_for(target)))
    if not found:
        return ""
    if len(found) == 1:
        return f" Did you mean {found[0][1]}?"
    return " Did you mean " + ", ".join(f"{new} (for {old})" for old, new in found) + "?"


def _option_types(argv: Sequence[str]) -> dict[str, Any]:
    """The fields (options) of the config `argv` is parsed into, with their types
    (`Annotated` and `Positional` taken off); for `bellmax train ALGO`, the algorithm's
    options as well."""
    if not argv or argv[0] not in COMMANDS:
        return {}
    config = _config_type(COMMANDS[argv[0]], argv)
    classes = [config]
    fields = {f.name: f for f in dataclasses.fields(config)}
    if argv[0] == "train" and len(argv) > 1 and "algo" in fields:
        for member in typing.get_args(fields["algo"].type):
            cls = typing.get_args(member)[0] if typing.get_origin(member) is Annotated else member
            if getattr(cls, "algo_name", None) == argv[1]:
                classes.append(cls)
    found: dict[str, Any] = {}
    for cls in classes:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an annotation that does not resolve: the names still count
            hints = {}
        found |= {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}
    return found


def _help_command(argv: Sequence[str]) -> str:
    """`bellmax [COMMAND [ALGO]] --help` for the command line being parsed."""
    words = [PROG]
    if argv and argv[0] in COMMANDS:
        words.append(argv[0])
        if argv[0] == "train" and len(argv) > 1 and not argv[1].startswith("-"):
            words.append(argv[1])
    return " ".join([*words, "--help"])


class _HelpCapture(io.StringIO):
    """Holds the help tyro prints, reporting the encoding of the stream it stands in for
    (tyro draws its boxes only on a UTF-8 stream)."""

    def __init__(self, like: Any):
        super().__init__()
        self._like_encoding = getattr(like, "encoding", None)

    @property
    def encoding(self) -> Any:  # type: ignore[override]
        return self._like_encoding


def tidy_help(text: str) -> str:
    """Help text without trailing spaces, runs of blank lines, or blank lines at the end."""
    lines = [line.rstrip() for line in text.splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out) + "\n"


def _asks_help(argv: Sequence[str]) -> bool:
    words = argv[: argv.index("--")] if "--" in argv else argv
    return any(w in ("-h", "--help") for w in words)


def _parse_or_exit(argv: list[str]) -> Any:
    """`_parse`, with tyro's usage errors turned into one line on stderr (SystemExit(2)).

    Help printed to anything but a terminal (a pipe, a file, a test) is tidied: tyro pads
    its lines with spaces where it cannot draw boxes.
    """
    captured = io.StringIO()
    help_out = _HelpCapture(sys.stdout) if _asks_help(argv) and not _isatty(sys.stdout) else None
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(contextlib.redirect_stderr(captured))
            if help_out is not None:
                stack.enter_context(contextlib.redirect_stdout(help_out))
            config = _parse(argv)
    except SystemExit as e:
        if help_out is not None and help_out.getvalue():
            sys.stdout.write(tidy_help(help_out.getvalue()))
        text = captured.getvalue()
        code = e.code
        status = code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
        message = _tyro_message(text, argv) if status else None
        if message is not None:
            print(f"{PROG}: error: {message}", file=sys.stderr)
        elif text:
            sys.stderr.write(text)
        raise SystemExit(status) from None
    if help_out is not None and help_out.getvalue():
        sys.stdout.write(help_out.getvalue())
    if captured.getvalue():  # tyro's warnings on success
        sys.stderr.write(captured.getvalue())
    return config


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _paragraphs(doc: str | None) -> list[str]:
    """A docstring's paragraphs, each on one line (the docstring's indentation removed)."""
    text = inspect.cleandoc(doc or "")
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def help_description(doc: str | None, *, full: bool) -> str:
    """A command's description for the help: its summary (the docstring's first paragraph,
    for the list of commands) or, with `full`, every paragraph, one blank line between.

    Each paragraph is one line: tyro joins a description's lines back together anyway
    (except before a line that starts with a symbol, which is how the docstrings' indented
    examples became mis-indented blocks under stray blank lines), and a terminal wraps it.
    """
    paragraphs = _paragraphs(doc)
    if not full:
        return paragraphs[0] if paragraphs else ""
    return "\n\n".join(paragraphs)


def _own_field_docs(cls: type) -> dict[str, str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for a, b in itertools.pairwise(body):
        if (
            isinstance(a, ast.AnnAssign)
            and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr)
            and isinstance(b.value, ast.Constant)
            and isinstance(b.value.value, str)
        ):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (`x: int = 1` then `\"\"\"doc\"\"\"`), each as
    one paragraph, the class's own over those of its bases (a config may take shared fields
    from a base class)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object:
            docs.update(_own_field_docs(klass))
    return docs


@functools.cache
def one_paragraph_help(cls: type) -> type:
    """`cls` (a command's arguments dataclass) with each field's docstring given to tyro as
    one paragraph of help, where the field has no help of its own.

    tyro 1.0 removes a docstring's single line breaks before it dedents it, so in a field
    docstring (indented in the source) every continuation line started a new line of
    `--help` wherever the source happened to wrap. The new class is a subclass (marked
    `__bellmax_config__ = cls`) with the same fields, field settings and methods, so the
    command's code works on it as on `cls`; it is not `cls` itself (`type(args) is cls` and
    `args == cls(...)` are false, and it does not pickle)."""
    import tyro

    hints = typing.get_type_hints(cls, include_extras=True)
    docs = field_docs(cls)
    fields = []
    for f in dataclasses.fields(cls):
        hint, doc = hints[f.name], docs.get(f.name)
        if not doc or any(getattr(m, "help", None) for m in getattr(hint, "__metadata__", ())):
            continue
        same = {"init": f.init, "repr": f.repr, "hash": f.hash, "compare": f.compare,
                "metadata": f.metadata, "kw_only": f.kw_only}  # fmt: skip
        if f.default is not dataclasses.MISSING:
            field = dataclasses.field(default=f.default, **same)
        elif f.default_factory is not dataclasses.MISSING:
            field = dataclasses.field(default_factory=f.default_factory, **same)
        else:
            field = dataclasses.field(**same)
        fields.append((f.name, Annotated[hint, tyro.conf.arg(help=doc)], field))
    if not fields:
        return cls
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    new = dataclasses.make_dataclass(cls.__name__, fields, bases=(cls,), frozen=params.frozen)
    new.__module__, new.__qualname__ = cls.__module__, cls.__qualname__
    new.__bellmax_config__ = cls  # type: ignore[attr-defined]
    return new


def _parse(argv: list[str]) -> Any:
    import tyro

    if argv and argv[0] in COMMANDS:  # (its real options, not a stand-in's: as `main` does)
        load_command(argv[0])
    commands = list(COMMANDS.values())
    members = tuple(
        Annotated[
            _config_type(c, argv)
            if c.flag_pairs
            else tyro.conf.FlagCreatePairsOff[_config_type(c, argv)],
            tyro.conf.subcommand(c.name, description=_description(c, argv)),
        ]
        for c in commands
    )
    spec = Union[members] if len(members) > 1 else members[0]  # noqa: UP007 (runtime Union)
    return tyro.cli(
        spec,
        args=argv,
        prog=PROG,
        description=help_description(DESCRIPTION, full=True),
        config=(tyro.conf.OmitSubcommandPrefixes, tyro.conf.OmitArgPrefixes),
        registry=_registry(),
    )


@functools.cache
def _registry() -> Any:
    """tyro's rules with one change: every integer option takes `whole_number`'s forms."""
    from tyro.constructors import ConstructorRegistry, PrimitiveConstructorSpec

    registry = ConstructorRegistry()

    @registry.primitive_rule
    def integers(info: Any) -> PrimitiveConstructorSpec | None:
        if info.type is not int:
            return None
        return PrimitiveConstructorSpec(
            nargs=1,
            metavar="INT",
            instance_from_str=lambda args: whole_number(args[0]),
            is_instance=lambda x: isinstance(x, int) and not isinstance(x, bool),
            str_from_instance=lambda x: [str(x)],
        )

    return registry


def _description(command: Command, argv: Sequence[str]) -> str:
    """The command's whole description for its own help (`bellmax CMD --help`), its summary
    for the list in `bellmax --help` (tyro uses one text for both)."""
    full = list(argv[:1]) == [command.name]
    return help_description(command.help or command.config.__doc__, full=full)


def _config_type(command: Command, argv: Sequence[str]) -> type:
    if list(argv[:1]) != [command.name]:  # another command's: its options are not shown
        return command.config
    if command.build_config is not None:
        return command.build_config()
    return one_paragraph_help(command.config)  # a few ms: only for the command that runs


def _command_of(config: Any, argv: Sequence[str]) -> Command:
    for c in COMMANDS.values():
        if getattr(type(config), "__bellmax_config__", type(config)) is c.config or (
            c.build_config is not None and list(argv[:1]) == [c.name]
        ):
            return c
    raise LookupError(f"no command for {type(config).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `bellmax` command line.

    Args:
      argv: the arguments after the program name (default: `sys.argv[1:]`).

    Returns:
      The exit status: 0 on success, 2 for a user error, a command's own status otherwise.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    _tolerate_narrow_output()
    try:
        status = _main(args)
    except BrokenPipeError:
        # The reader of stdout went away (`bellmax ... --json | head -c 10`): stop quietly.
        # Point stdout at /dev/null so the interpreter's final flush cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    if status == EXIT_INTERRUPTED and argv is None:
        # The `bellmax` process after Ctrl-C, its files written and closed (a run keeps its
        # last whole chunk). The interpreter's own exit would wait for the compiled program
        # still running (a chunk of a long run: minutes, after "interrupted" was printed).
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)
    return status


def _tolerate_narrow_output() -> None:
    """Print what an output's encoding cannot hold as `?`, instead of failing after the work
    is done: Windows writes redirected or piped output in its ANSI code page (cp1252), which
    has no Greek letters (`bellmax bandit`'s "ε-greedy ε=0.1" lost the whole table)."""
    for stream in (sys.stdout, sys.stderr):
        encoding = str(getattr(stream, "encoding", "") or "").lower().replace("-", "")
        if encoding not in ("utf8", "utf8sig") and hasattr(stream, "reconfigure"):
            with contextlib.suppress(Exception):
                stream.reconfigure(errors="replace")


def _main(args: list[str]) -> int:
    if args[:1] in (["--version"], ["-V"]):
        print(f"{PROG} {__version__}")
        sys.stdout.flush()
        return 0
    debug = os.environ.get("BELLMAX_DEBUG", "") not in ("", "0")
    tune_xla_flags()  # before JAX's first computation (see bellmax.core.xla)
    if args and args[0] in COMMANDS:
        load_command(args[0])
    try:
        args = _check_argv(_expand_home(args))
    except (BellmaxError, ValueError) as e:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE

    try:
        config = _parse_or_exit(args)
    except SystemExit as e:  # help (0) or a usage error (2), already printed
        return int(e.code or 0)
    command = _command_of(config, args)
    enable_compile_cache()  # (import bellmax did already, unless the user set one since)
    try:
        status = command.run(config, argv=args) if command.pass_argv else command.run(config)
        sys.stdout.flush()  # a closed pipe fails here, inside the handler, not at exit
    except (BellmaxError, ValueError, TypeError) as e:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, OverflowError) as e:
        if debug:
            raise
        print(f"{PROG}: error: {_resource_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        raise  # main() ends quietly
    except OSError as e:  # a file that is missing, unreadable or cannot be written, a full disk
        if debug:
            raise
        print(f"{PROG}: error: {_os_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        if debug or not _out_of_device_memory(e):
            raise
        print(f"{PROG}: error: {_resource_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    return 0 if status is None else int(status)


def _os_message(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which path, and what to do."""
    if exc.strerror is None:  # raised with a message of its own (which says the fix)
        return _one_line(exc)
    path = f" {exc.filename!r}" if exc.filename is not None else ""
    return (
        f"{exc.strerror}:{path}. Check the path (it must exist to be read, and its folder "
        "must be writable to be written) and the free disk space."
    )


def _out_of_device_memory(exc: BaseException) -> bool:
    """XLA's out-of-memory error (`JaxRuntimeError: RESOURCE_EXHAUSTED ...`)."""
    return "RuntimeError" in type(exc).__name__ and "RESOURCE_EXHAUSTED" in str(exc)


def _resource_message(exc: BaseException) -> str:
    if isinstance(exc, OverflowError):
        what = "a number given is too large for the computation"
    else:
        what = "out of memory"
    detail = _one_line(exc)
    if len(detail) > 160:
        detail = detail[:157] + "..."
    return (
        f"{what} ({type(exc).__name__}: {detail}); use smaller sizes, those that set how much "
        "is held at once (seeds, runs, num_envs, buffer_size, num_simulations, states ...)."
    )


if __name__ == "__main__":
    sys.exit(main())
