"""The import rules of ../shared/DESIGN.md, checked on the source: every import statement of
src/bellmax (those inside functions too) is parsed, so a private name taken from another module
or an arrow that points up the layering fails here, with the file and line."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "bellmax"

#: The layering, lowest first: a module may import its own layer and the layers below.
#: Algorithm families share a layer and may use each other's public API; what two families
#: share belongs in core/.
LAYERS = {
    "core": 0,
    "envs": 1,
    "bandits": 2,
    "tabular": 2,
    "pomdp": 2,
    "deep": 2,
    "games": 2,
    "imitation": 2,
    "control": 2,
    "models": 2,
    "train": 3,
    "policy": 2,  # the trained deep policies (deep/ networks), read by imitation/ and train/
    "experiments": 3,
    "cli": 4,
}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, source: str):
    """(line, imported module, [names]) for every import in the file, relative ones resolved."""
    tree = ast.parse(source, filename=str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, [a.name for a in node.names]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "bellmax" else None


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _inside(module: str, package: str) -> bool:
    return module.startswith(package + ".")


def _violations(path: Path, source: str | None = None) -> list[str]:
    here = _module_name(path)
    here_layer = _layer(here)
    rel = path.relative_to(SRC)
    out = []
    source = path.read_text() if source is None else source
    for line, module, names in _imports(path, source):
        if module != "bellmax" and not module.startswith("bellmax."):
            continue
        where = f"{rel}:{line}"
        target_layer = _layer(module)
        if here_layer in LAYERS and target_layer in LAYERS:
            if LAYERS[target_layer] > LAYERS[here_layer]:
                out.append(f"{where}: {here_layer}/ imports {module}, a higher layer")
        # A private module (bellmax.envs._grid) is for its own package only.
        parts = module.split(".")
        private = [i for i, part in enumerate(parts) if _is_private(part)]
        if private and not _inside(here, ".".join(parts[: private[0]])):
            out.append(f"{where}: imports {module}, a private module of another package")
        for name in names:
            if not _is_private(name):
                continue
            submodule = PACKAGE.joinpath(*parts[1:], f"{name}.py")
            if submodule.exists():  # `from bellmax.envs import _grid`: a private module
                if not _inside(here, module):
                    out.append(
                        f"{where}: imports {module}.{name}, a private module of another package"
                    )
            else:  # `from bellmax.control.lqr import _mm`: a private name of another module
                out.append(f"{where}: imports the private name {name} from {module}")
    return out


def test_no_private_imports_and_no_upward_layering():
    found = [v for path in _modules() for v in _violations(path)]
    assert not found, (
        "import rules broken (give the name a public home, or move it down):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from bellmax.control.lqr import _mm\n", "private name _mm"),
        ("from .lqr import _mv\n", "private name _mv"),
        ("def f():\n    from bellmax.train.driver import train\n", "a higher layer"),
        ("from bellmax.cli import main\n", "a higher layer"),
        ("from bellmax.envs._grid import GridParams\n", "private module of another package"),
        ("from bellmax.envs import _grid\n", "private module of another package"),
    ],
)
def test_the_checker_catches_each_kind(source, expected):
    # A module of the control layer that does not exist, parsed by the same checker.
    found = _violations(PACKAGE / "control" / "not_a_module.py", source)
    assert any(expected in v for v in found), found


def test_importing_bellmax_does_not_import_gymnasium():
    code = "import bellmax, sys; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_is_imported_only_by_a_ray_sweep():
    # Ray is an optional extra: bellmax, its sweep module and its command line load without
    # it; only `sweep(backend="ray")` imports it (tests/train/test_sweep.py names the extra
    # when it is missing).
    code = (
        "import sys, bellmax, bellmax.train.sweep, bellmax.cli.main, bellmax.cli.sweep\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_bellmax_and_its_packages_does_not_import_jax():
    # Their names load on first use (bellmax.core.lazy), so `bellmax --help` starts fast.
    code = (
        "import sys, bellmax, bellmax.core, bellmax.envs, bellmax.envs.registry, "
        "bellmax.core.errors, bellmax.cli.main\n"
        "print('jax' in sys.modules)\n"
        "print(bellmax.TabularMDP.__name__, bellmax.core.gae.__name__, bellmax.envs.spaces.__name__)"
        "\nprint('jax' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "TabularMDP", "gae", "bellmax.envs.spaces", "True"]


def test_lazy_names_are_the_real_ones():
    import bellmax
    import bellmax.core
    import bellmax.envs
    from bellmax.core.mdp import TabularMDP
    from bellmax.envs.registry import make

    assert bellmax.TabularMDP is TabularMDP and bellmax.core.TabularMDP is TabularMDP
    assert bellmax.make is make and bellmax.envs.make is make
    for package in (bellmax, bellmax.core, bellmax.envs):
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
        assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bellmax.core.nope  # noqa: B018
