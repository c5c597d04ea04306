"""The persistent compilation cache: on by default in the user's cache directory, bounded, and
off when the user says so. Each case runs in a fresh interpreter (JAX's config is global)."""

import json
import os
import subprocess
import sys

from bellmax.core.compile_cache import DEFAULT_MAX_BYTES, compile_cache_dir

_PROBE = """
import json, jax, jax.numpy as jnp
import bellmax
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.jit(lambda x: jnp.sin(x) @ x)(jnp.ones((8, 8))).block_until_ready()
print(json.dumps([jax.config.jax_compilation_cache_dir, jax.config.jax_compilation_cache_max_size]))
"""


def _probe(**env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BELLMAX_", "JAX_"))}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**clean, **env}, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_by_default_in_the_cache_directory_and_bounded(tmp_path):
    cache_dir, max_size = _probe(BELLMAX_CACHE_DIR=str(tmp_path))
    assert cache_dir == str(tmp_path / "xla") and max_size == DEFAULT_MAX_BYTES
    assert any(p.name.endswith("-cache") for p in (tmp_path / "xla").iterdir())


def test_follows_xdg_when_bellmax_cache_dir_is_unset(tmp_path):
    cache_dir, _ = _probe(XDG_CACHE_HOME=str(tmp_path), HOME=str(tmp_path / "home"))
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
