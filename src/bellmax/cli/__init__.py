"""The `bellmax` command line: `bellmax envs`, `bellmax tour`, and one subcommand per family.

The entry point is `bellmax.cli.main.main`; subcommands are registered in
`bellmax.cli.main.COMMANDS` (see that module for how to add one).

Import policy: `bellmax --help`, `bellmax --version` and a quick command must stay fast, and
`bellmax.cli.main` imports every command's module to list the commands. So each module of
this package imports at its top only what `import bellmax` loads anyway or what is light:
the standard library, jax and numpy, `bellmax.core`, `bellmax.envs`, `bellmax.train.io` and
`report`, tyro and the other command modules. What is heavy or optional is imported lazily,
inside the function that needs it, and only there: the algorithm families
(`bellmax.bandits`, `tabular`, `deep`, `games`, `control`, `models`, `experiments`,
`bellmax.train.driver`), Matplotlib, rich, and the Gymnasium bridge (`bellmax.envs.gymnasium`,
an optional dependency). No cycle needs a lazy import here.
"""

from bellmax.cli.main import COMMANDS, Command, register_command

__all__ = ["COMMANDS", "Command", "register_command"]
