"""bellmax.core.lazy: a package's names load on first use, once, and only the listed ones."""

from __future__ import annotations

import sys
import types

import pytest

from bellmax.core.lazy import lazy_exports


def _package(exports):
    pkg = types.ModuleType("fakepkg")
    pkg.__getattr__, pkg.__dir__ = lazy_exports("fakepkg", pkg.__dict__, exports)
    return pkg


def test_a_name_loads_from_its_module_once_and_is_then_a_plain_attribute():
    pkg = _package({"dumps": "json", "decoder": "json.decoder"})
    import json
    import json.decoder

    assert "dumps" not in pkg.__dict__
    assert pkg.dumps is json.dumps  # a function of the module
    assert pkg.__dict__["dumps"] is json.dumps  # stored: the next read skips __getattr__
    assert pkg.decoder is json.decoder  # a name that is the submodule itself


def test_the_module_is_imported_only_when_the_name_is_used():
    sys.modules.pop("colorsys", None)
    pkg = _package({"rgb_to_hsv": "colorsys"})
    assert "colorsys" not in sys.modules
    assert pkg.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules


def test_unknown_names_raise_attribute_error_and_dir_lists_the_exports():
    pkg = _package({"dumps": "json"})
    with pytest.raises(AttributeError, match="module 'fakepkg' has no attribute 'loads'"):
        pkg.loads  # noqa: B018
    assert "dumps" in pkg.__dir__()
    assert not hasattr(pkg, "nope")


def test_dir_of_bellmax_lists_its_names_not_the_lazy_helper():
    # dir(bellmax) showed `lazy_exports`, the helper the package calls, beside its API
    import bellmax

    names = dir(bellmax)
    assert {"make", "load_policy", "TabularMDP"} <= set(names)
    assert "lazy_exports" not in names


def test_subpackages_and_modules_are_attributes_after_a_plain_import():
    # `import bellmax; bellmax.core.xla.tune_xla_flags()` (the README's first call) raised
    # AttributeError: a subpackage or module was an attribute only once something had
    # imported it. Now each loads on first use, and only then (a fresh interpreter).
    import subprocess

    code = (
        "import sys, bellmax\n"
        "assert 'jax' not in sys.modules and 'bellmax.deep' not in sys.modules\n"
        "assert callable(bellmax.core.xla.tune_xla_flags)\n"
        "assert bellmax.deep.ppo.Config().num_steps > 0 and bellmax.pomdp.tiger().num_states == 2\n"
        "assert {'deep', 'pomdp', 'core'} <= set(dir(bellmax)) and 'ppo' in dir(bellmax.deep)\n"
        "for owner, name in ((bellmax, 'nosuch'), (bellmax.deep, 'nosuch'), (bellmax, '_x')):\n"
        "    try:\n"
        "        getattr(owner, name)\n"
        "    except AttributeError as e:\n"
        "        assert f'has no attribute {name!r}' in str(e), e\n"
        "    else:\n"
        "        raise AssertionError(name)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
