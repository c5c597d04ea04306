"""The persistent compilation cache: on by default in the user's cache directory, bounded, and
off when the user says so. Each case runs in a fresh interpreter (JAX's config is global)."""

import json
import os
import subprocess
import sys

from bellmax.core.compile_cache import compile_cache_dir, prune

_PROBE = """
import json, jax, jax.numpy as jnp
import bellmax
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.jit(lambda x: jnp.sin(x) @ x)(jnp.ones((8, 8))).block_until_ready()
print(json.dumps([jax.config.jax_compilation_cache_dir]))
"""


_PROBE_BELLMAX_FIRST = """
import json, sys
import bellmax
assert "jax" not in sys.modules  # bellmax sets JAX's environment variables instead
import jax, jax.numpy as jnp
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.jit(lambda x: jnp.sin(x) @ x)(jnp.ones((8, 8))).block_until_ready()
print(json.dumps([jax.config.jax_compilation_cache_dir]))
"""


def _probe(_code=_PROBE, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BELLMAX_", "JAX_"))}
    out = subprocess.run(
        [sys.executable, "-c", _code], env={**clean, **env}, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_by_default_in_the_cache_directory(tmp_path):
    (cache_dir,) = _probe(BELLMAX_CACHE_DIR=str(tmp_path))
    assert cache_dir == str(tmp_path / "xla")
    assert any(p.name.endswith("-cache") for p in (tmp_path / "xla").iterdir())
    # A second process finds its program there and writes nothing new.
    before = sorted(p.name for p in (tmp_path / "xla").iterdir())
    _probe(BELLMAX_CACHE_DIR=str(tmp_path))
    assert sorted(p.name for p in (tmp_path / "xla").iterdir()) == before


def test_on_when_bellmax_is_imported_before_jax(tmp_path):
    (cache_dir,) = _probe(_PROBE_BELLMAX_FIRST, BELLMAX_CACHE_DIR=str(tmp_path))
    assert cache_dir == str(tmp_path / "xla")
    assert any(p.name.endswith("-cache") for p in (tmp_path / "xla").iterdir())
    own = tmp_path / "mine"
    assert _probe(
        _PROBE_BELLMAX_FIRST, BELLMAX_CACHE_DIR=str(tmp_path), JAX_COMPILATION_CACHE_DIR=str(own)
    ) == [str(own)]
    assert _probe(_PROBE_BELLMAX_FIRST, BELLMAX_CACHE_DIR=str(tmp_path), BELLMAX_COMPILE_CACHE="0")[
        0
    ] in (None, "")


def test_prune_deletes_least_recently_used_down_to_three_quarters(tmp_path):
    for i in range(10):  # 10 files of 100 bytes, file 0 the oldest
        f = tmp_path / f"f{i}-cache"
        f.write_bytes(b"x" * 100)
        os.utime(f, (1_000_000 + i, 1_000_000 + i))
    assert prune(tmp_path, 2000) == 0 and len(list(tmp_path.iterdir())) == 10
    assert prune(tmp_path, 800) == 400  # 1000 bytes > 800: down to <= 600
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"f{i}-cache" for i in range(4, 10)]


def test_follows_xdg_when_bellmax_cache_dir_is_unset(tmp_path):
    (cache_dir,) = _probe(XDG_CACHE_HOME=str(tmp_path), HOME=str(tmp_path / "home"))
    assert cache_dir == str(tmp_path / "bellmax" / "xla")


def test_the_users_choice_wins(tmp_path):
    assert _probe(BELLMAX_CACHE_DIR=str(tmp_path), BELLMAX_COMPILE_CACHE="0")[0] is None
    assert not (tmp_path / "xla").exists()
    own = tmp_path / "mine"
    assert _probe(BELLMAX_CACHE_DIR=str(tmp_path), JAX_COMPILATION_CACHE_DIR=str(own))[0] == str(
        own
    )


def test_an_unusable_directory_leaves_the_cache_off(tmp_path):
    (tmp_path / "afile").write_text("")
    assert _probe(BELLMAX_CACHE_DIR=str(tmp_path / "afile"))[0] is None


def test_cache_dir_rules():
    assert compile_cache_dir({"BELLMAX_CACHE_DIR": "/c"}).as_posix() == "/c/xla"
    for off in ("0", "off", "False"):
        assert compile_cache_dir({"BELLMAX_CACHE_DIR": "/c", "BELLMAX_COMPILE_CACHE": off}) is None
    assert compile_cache_dir({}) is None or compile_cache_dir({}).name == "xla"


def test_the_size_bound_is_checked_at_most_once_an_interval(tmp_path):
    # every `import bellmax` (and the `bellmax` command once more) turned the cache on and
    # stat-ed every file to apply the bound: now at most once per PRUNE_INTERVAL_SECONDS
    from bellmax.core import compile_cache as cc

    folder = tmp_path / "xla"
    folder.mkdir()
    assert cc.prune_due(folder) and not cc.prune_due(folder)  # the stamp is renewed
    stamp = tmp_path / "xla.pruned"
    assert stamp.is_file() and not (folder / "xla.pruned").exists()  # beside, not in JAX's
    old = stamp.stat().st_mtime - cc.PRUNE_INTERVAL_SECONDS - 1
    os.utime(stamp, (old, old))
    assert cc.prune_due(folder)
