"""The `bellmax` command line: `bellmax envs`, `bellmax tour`, and one subcommand per family.

The entry point is `bellmax.cli.main.main`; subcommands are registered in
`bellmax.cli.main.COMMANDS` (see that module for how to add one).

Import policy: `bellmax --help`, `bellmax --version` and `bellmax envs` must stay fast
(about 0.3 s): `bellmax.cli.main` lists the commands from stand-ins (`lazy_command`) and
imports a command's module only when that command runs; `import bellmax` does not import JAX
(`bellmax.core.lazy`). Each command module imports at its top what the command always needs
(the standard library, jax and numpy, `bellmax.core`, `bellmax.envs`, tyro); what only some
runs need is imported lazily, inside the function that needs it: the algorithm families
(`bellmax.bandits`, `tabular`, `deep`, `games`, `control`, `models`, ...), Matplotlib, rich,
and the Gymnasium bridge (`bellmax.envs.gymnasium`, an optional dependency). No cycle needs a
lazy import here.
"""

from bellmax.cli.main import COMMANDS, Command, register_command

__all__ = ["COMMANDS", "Command", "register_command"]

# Submodules load on first use as attributes too (`bellmax.cli.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
