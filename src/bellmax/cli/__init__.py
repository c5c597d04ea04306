"""The `bellmax` command line: `bellmax envs`, `bellmax tour`, and one subcommand per family.

The entry point is `bellmax.cli.main.main`; subcommands are registered in
`bellmax.cli.main.COMMANDS` (see that module for how to add one).
"""

from bellmax.cli.main import COMMANDS, Command, register_command

__all__ = ["COMMANDS", "Command", "register_command"]
