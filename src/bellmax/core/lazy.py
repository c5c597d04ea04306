"""Package attributes imported on first use (PEP 562), so that importing a package is cheap.

`import bellmax`, `bellmax.core` and `bellmax.envs` re-export names from modules that import
JAX (about a second). With `lazy_exports`, a package lists where each public name lives and
imports that module only when the name is first used, so `bellmax --help` and
`bellmax envs` start without JAX, while `from bellmax.core import TabularMDP` and
`bellmax.core.TabularMDP` behave as before.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for a package whose names load on first use.

    Args:
      package: the package's `__name__`.
      namespace: the package's `globals()`; a name, once loaded, is stored there, so the
        next use is a plain attribute read.
      exports: public name -> the module that defines it (a name that is itself a submodule
        maps to that submodule). A name not listed that is one of the package's public
        modules or subpackages loads as that module, as after `import package.name`.

    Returns:
      `(__getattr__, __dir__)`, to assign at the package's top level.
    """

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None and _is_submodule(package, name):
            # a subpackage or module, as after `import package.name` (`bellmax.deep.ppo`,
            # `bellmax.core.xla.tune_xla_flags()` after a plain `import bellmax`)
            module_name = f"{package}.{name}"
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name)
        value = module if module_name.rsplit(".", 1)[-1] == name else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:  # (without this helper, which the package imports to call)
        return sorted((set(namespace) - {"lazy_exports"}) | set(exports) | _submodules(namespace))

    return __getattr__, __dir__


def _is_submodule(package: str, name: str) -> bool:
    """Whether `package.name` is a public module or subpackage (found, not imported)."""
    if name.startswith("_"):
        return False
    try:
        return importlib.util.find_spec(f"{package}.{name}") is not None
    except (ImportError, ValueError):
        return False


def _submodules(namespace: dict[str, Any]) -> set[str]:
    """The public modules and subpackages of the package whose globals are `namespace`."""
    import pkgutil

    path = namespace.get("__path__") or []
    return {m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")}
