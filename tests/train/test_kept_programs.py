"""`train` keeps its lowered programs on disk (`bellmax.core.program_cache`): the next
process reads them instead of tracing and lowering (0.6-0.8 s of a 2 s warm PPO run), and
trains exactly as a process that traced them; only bellmax's own algorithms on bellmax's
own environments are kept (the key cannot see user code)."""

import importlib

import numpy as np
import pytest

from bellmax.core import program_cache as pc
from bellmax.deep import ppo
from bellmax.envs.vector import make_vector_env
from bellmax.train import driver

SMALL = ppo.Config(
    total_timesteps=512, hidden_sizes=(8,), num_envs=4, num_steps=16, minibatch_size=32,
    num_epochs=2,
)  # fmt: skip
# the module (`bellmax.deep.evaluate` the attribute is its function of that name)
evaluation = importlib.import_module("bellmax.deep.evaluate")
RUN = {"seeds": (0, 1), "eval_episodes": 2, "chunks": 2}


def _same(a, b):
    for name, values in a.metrics.items():
        np.testing.assert_array_equal(b.metrics[name], values, err_msg=name)
    np.testing.assert_array_equal(a.eval_returns, b.eval_returns)
    for x, y in zip(driver.jax.tree.leaves(a.state), driver.jax.tree.leaves(b.state), strict=True):
        if driver.jax.dtypes.issubdtype(x.dtype, driver.jax.dtypes.prng_key):
            x, y = driver.jax.random.key_data(x), driver.jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture
def exports(tmp_path, monkeypatch):
    """The programs exported (traced) by `train`, counted; a cache folder of the test's own."""
    monkeypatch.setenv("BELLMAX_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BELLMAX_COMPILE_CACHE", raising=False)
    monkeypatch.delenv("BELLMAX_PROGRAM_CACHE", raising=False)  # (off for the suite)
    monkeypatch.setattr(driver, "_RUNNERS", {})
    monkeypatch.setattr(evaluation, "_PROGRAMS", {})  # (the evaluation programs made so far)
    made = []
    real = pc.export_program

    def counted(fn, args):
        made.append(fn)
        return real(fn, args)

    monkeypatch.setattr(pc, "export_program", counted)
    return made


@pytest.mark.parametrize("cpus", [2, 1])
def test_the_next_process_reads_the_programs_and_trains_the_same(exports, monkeypatch, cpus):
    """First run: init and the chunk are exported and kept. The next (a new runner, as in a
    new process): nothing is traced, and every number equals the first run's and a run with
    the cache off (programs traced with `jax.jit` as before), bit for bit. On one CPU the
    chunk is compiled in the foreground, on two beside `init`: both paths read it."""
    monkeypatch.setattr(driver, "_usable_cpus", lambda: cpus)
    first = driver.train(ppo, SMALL, "CartPole-v1", **RUN)
    assert len(exports) == 3, exports  # init, the one chunk length and the evaluation
    kept = list((pc.program_cache_dir() or driver.Path("-")).iterdir())
    assert len(kept) == 3 and all(p.suffix == ".program" for p in kept)
    monkeypatch.setattr(driver, "_RUNNERS", {})
    monkeypatch.setattr(evaluation, "_PROGRAMS", {})
    second = driver.train(ppo, SMALL, "CartPole-v1", **RUN)
    assert len(exports) == 3  # read, not traced
    _same(first, second)
    monkeypatch.setattr(driver, "_RUNNERS", {})
    monkeypatch.setattr(evaluation, "_PROGRAMS", {})
    monkeypatch.setenv("BELLMAX_COMPILE_CACHE", "0")
    plain = driver.train(ppo, SMALL, "CartPole-v1", **RUN)
    assert len(exports) == 3  # off: the plain jit path
    _same(first, plain)


@pytest.mark.parametrize("cpus", [2, 1])
def test_a_kept_program_for_other_shapes_is_replaced(exports, monkeypatch, cpus):
    """A program read back whose inputs differ from the run's (it cannot happen with an
    intact key, but a kept file is outside the run's control) is not used: the run traces
    anew and trains as with the cache off, and keeps what it traced in place of the old
    files, so the next process reads programs that fit."""
    monkeypatch.setattr(driver, "_usable_cpus", lambda: cpus)
    other = pc.export_program(lambda x: x + 1, (np.zeros(3, np.float32),))
    with monkeypatch.context() as m:
        m.setattr(pc, "read_program", lambda parts, **kw: other)  # every file read
        run = driver.train(ppo, SMALL, "CartPole-v1", **RUN)
    assert len(exports) == 1 + 3  # `other`, then init, the chunk and the evaluation anew
    monkeypatch.setattr(driver, "_RUNNERS", {})
    monkeypatch.setattr(evaluation, "_PROGRAMS", {})
    _same(run, driver.train(ppo, SMALL, "CartPole-v1", **RUN))
    assert len(exports) == 4  # read back, nothing traced
    monkeypatch.setattr(driver, "_RUNNERS", {})
    monkeypatch.setattr(evaluation, "_PROGRAMS", {})
    monkeypatch.setenv("BELLMAX_COMPILE_CACHE", "0")
    _same(run, driver.train(ppo, SMALL, "CartPole-v1", **RUN))


def test_only_bellmax_code_is_kept():
    """The key holds bellmax's source, so only programs made of it alone are kept: not an
    algorithm or environment from elsewhere, not a Gymnasium or gymnax environment, not an
    environment object (its parameters may hold anything)."""
    venv = make_vector_env("CartPole-v1", num_envs=2)
    base = driver.split_hyperparameters(SMALL)[0]
    ours = driver.program_identity(ppo, base, "CartPole-v1", venv, 1)
    assert ours is not None and "bellmax.deep.ppo" in ours and repr(base) in ours
    assert driver.program_identity(ppo, base, "CartPole-v1", venv, 2) != ours
    assert driver.program_identity(ppo, base, venv, venv, 1) is None  # an object
    assert driver.program_identity(ppo, base, "gymnax:CartPole-v1", venv, 1) is None
    assert driver.program_identity(ppo, base, "gymnasium:CartPole-v1", venv, 1) is None

    class Elsewhere:
        __name__ = "my_lab.ppo"

    assert driver.program_identity(Elsewhere(), base, "CartPole-v1", venv, 1) is None


def test_an_algorithm_function_replaced_at_run_time_is_not_kept(monkeypatch):
    """A replaced `ppo.update` (a test's counter, a user's patch) is code the key cannot
    see."""
    venv = make_vector_env("CartPole-v1", num_envs=2)
    base = driver.split_hyperparameters(SMALL)[0]
    real = ppo.update
    monkeypatch.setattr(ppo, "update", lambda state, config, venv: real(state, config, venv))
    assert driver.program_identity(ppo, base, "CartPole-v1", venv, 1) is None


def test_a_sweep_group_reads_its_programs_in_the_next_process(exports, monkeypatch):
    """The sweep's group programs (one `jit(vmap)` over trials) are kept the same way: a
    later process (a Ray worker, a sweep run again) traces nothing and gets the same trials,
    bit for bit, as a process with the cache off."""
    from bellmax.train import sweep as sw

    kw = {"grid": {"learning_rate": (3e-4, 1e-2)}, "seeds": (0, 1), "base": SMALL,
          "chunks": 2, "eval_episodes": 2}  # fmt: skip
    monkeypatch.setattr(sw, "_PROGRAMS", {})
    first = sw.sweep("ppo", "CartPole-v1", **kw)
    assert len(exports) == 3  # the group's init, chunk and (one trial's) evaluation
    monkeypatch.setattr(sw, "_PROGRAMS", {})
    second = sw.sweep("ppo", "CartPole-v1", **kw)
    assert len(exports) == 3
    monkeypatch.setattr(sw, "_PROGRAMS", {})
    monkeypatch.setenv("BELLMAX_PROGRAM_CACHE", "0")
    plain = sw.sweep("ppo", "CartPole-v1", **kw)
    assert len(exports) == 3

    def numbers(result):
        return [(t["final_eval_return"], t["chunk_returns"]) for t in result.trials]

    assert numbers(first) == numbers(second) == numbers(plain)
    assert len({t["final_eval_return"] for t in first.trials}) > 1  # trials differ
