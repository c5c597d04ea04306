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
traceback instead. Bad options and unknown subcommands are reported by tyro, also with
status 2.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Union

from bellmax.core.errors import BellmaxError

__all__ = ["COMMANDS", "Command", "EnvsArgs", "main", "register_command"]

PROG = "bellmax"
DESCRIPTION = (
    "bellmax: reinforcement learning and optimal control on JAX. "
    "Run `bellmax <command> --help` for a command's options, `bellmax --version` for the version."
)

#: Exit status of a user error (bad option, bad value), as argparse uses.
EXIT_USAGE = 2


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
    from bellmax.envs import registry

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
    from bellmax.cli.bandit import BanditArgs, run_bandit
    from bellmax.cli.control import ControlArgs, SysidArgs, run_control, run_sysid
    from bellmax.cli.games import ArenaArgs, PlayArgs, run_arena, run_play
    from bellmax.cli.reproduce import ReproduceArgs, run_reproduce
    from bellmax.cli.solve import SolveArgs, run_solve
    from bellmax.cli.tour import TourArgs, run_tour_command
    from bellmax.cli.train import EvaluateArgs, TrainArgs, build_train_args, run_evaluate, run_train

    return [
        Command("envs", EnvsArgs, run_envs),
        Command("tour", TourArgs, run_tour_command),
        Command("solve", SolveArgs, run_solve),
        Command("bandit", BanditArgs, run_bandit),
        Command("reproduce", ReproduceArgs, run_reproduce),
        Command("train", TrainArgs, run_train, build_config=build_train_args),
        Command("evaluate", EvaluateArgs, run_evaluate),
        Command("sysid", SysidArgs, run_sysid),
        Command("control", ControlArgs, run_control),
        Command("play", PlayArgs, run_play),
        Command("tictactoe", ArenaArgs, run_arena),
    ]


for _cmd in _builtin_commands():
    register_command(_cmd)


# ---------------------------------------------------------------------- entry point
def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip()
    if not msg:
        msg = type(exc).__name__
    return re.sub(r"\s*\n\s*", " ", msg)


def _enable_compile_cache() -> None:
    """Use JAX's persistent compilation cache in `$BELLMAX_CACHE_DIR` (the Makefile sets it)."""
    cache_dir = os.environ.get("BELLMAX_CACHE_DIR")
    if not cache_dir:
        return
    import jax

    if jax.config.jax_compilation_cache_dir:  # already chosen by the user
        return
    try:
        os.makedirs(cache_dir, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    except (OSError, AttributeError):  # an unwritable cache only costs time
        pass


def _parse(argv: list[str]) -> Any:
    import tyro

    commands = list(COMMANDS.values())
    members = tuple(
        Annotated[
            _config_type(c, argv),
            tyro.conf.subcommand(c.name, description=c.help or (c.config.__doc__ or "").strip()),
        ]
        for c in commands
    )
    spec = Union[members] if len(members) > 1 else members[0]  # noqa: UP007 (runtime Union)
    return tyro.cli(
        spec,
        args=argv,
        prog=PROG,
        description=DESCRIPTION,
        config=(
            tyro.conf.FlagCreatePairsOff,
            tyro.conf.OmitSubcommandPrefixes,
            tyro.conf.OmitArgPrefixes,
        ),
    )


def _config_type(command: Command, argv: Sequence[str]) -> type:
    if command.build_config is not None and list(argv[:1]) == [command.name]:
        return command.build_config()
    return command.config


def _command_of(config: Any, argv: Sequence[str]) -> Command:
    for c in COMMANDS.values():
        if type(config) is c.config or (c.build_config is not None and list(argv[:1]) == [c.name]):
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
    if args[:1] in (["--version"], ["-V"]):
        from bellmax import __version__

        print(f"{PROG} {__version__}")
        return 0
    from bellmax.core.xla import tune_xla_flags

    tune_xla_flags()  # before JAX's first computation (see bellmax.core.xla)
    debug = os.environ.get("BELLMAX_DEBUG", "") not in ("", "0")
    try:
        config = _parse(args)
    except SystemExit as e:  # tyro printed help (0) or a usage error (2)
        code = e.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    command = _command_of(config, args)
    _enable_compile_cache()
    try:
        status = command.run(config)
    except (BellmaxError, ValueError, TypeError) as e:
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0 if status is None else int(status)


if __name__ == "__main__":
    sys.exit(main())
