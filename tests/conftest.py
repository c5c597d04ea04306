"""Test-wide settings: the tests run with the XLA setting the `bellmax` command ships with.

`bellmax.core.xla.tune_xla_flags` turns off XLA's YNN fusion for small-matrix loops (faster
runs and shorter compiles); the `bellmax` command and the benchmarks use it too, so the tests
check what users run. BELLMAX_XLA_DEFAULTS=1 runs them with XLA's defaults instead.

Not used, on purpose: `--xla_backend_optimization_level=0` with
`--xla_llvm_disable_expensive_passes=true` saved about a fifth of the compile time, but
together with the YNN setting it made tests/bandits/test_agents.py's Thompson-sampling
frequencies wrong (0.26 vs 0.21 for one arm), so that combination miscompiles on jax 0.10.2.
"""

import gc
import os
import sys
from pathlib import Path

import pytest

from bellmax.core.xla import tune_xla_flags

tune_xla_flags()

# bellmax's cache of lowered programs (`bellmax.core.program_cache`) is keyed by bellmax's
# source, and tests replace bellmax's functions at run time (a counted `ppo.update`), which
# that key cannot see: a program kept by another test process would skip their patches.
# Off for the suite (child processes inherit it); tests/core/test_program_cache.py and
# tests/train/test_kept_programs.py turn it on in a folder of their own.
os.environ.setdefault("BELLMAX_PROGRAM_CACHE", "0")


# ---------------------------------------------------------------------- learning tests
# Modules whose assertions rest on learned or sampled numbers: a trained network, a sampled
# estimate, a fitted model, a search driven by random playouts, a closed loop that must balance.
# XLA generates different code per CPU instruction set, so these results move from machine to
# machine; `make test-portable` runs them under `--xla_cpu_max_isa=AVX2` and `SSE4_2` as well
# as the default. A new learning test goes in one of these modules, or its module goes here.
LEARNING_MODULES = frozenset(
    {
        "bandits/test_agents.py",
        "bandits/test_testbed.py",
        "cli/test_bandit.py",
        "cli/test_control.py",
        "cli/test_games.py",
        "cli/test_imitate.py",
        "cli/test_pomdp.py",
        "cli/test_sweep_learning.py",
        "cli/test_tour.py",
        "cli/test_train.py",
        "control/test_mpc.py",
        "control/test_sampling.py",
        "deep/test_a2c.py",
        "deep/test_dqn.py",
        "deep/test_evaluate.py",
        "deep/test_off_policy.py",
        "deep/test_ppo.py",
        "deep/test_reinforce.py",
        "deep/test_sac.py",
        "deep/test_sac_discrete.py",
        "deep/test_sac_gymnasium.py",
        "deep/test_td3.py",
        "envs/test_gymnax.py",
        "envs/test_partially_observed.py",
        "envs/test_tiger.py",
        "experiments/test_sutton_barto.py",
        "games/test_alphazero.py",
        "games/test_mcts.py",
        "games/test_selfplay.py",
        "imitation/test_bc.py",
        "imitation/test_dagger.py",
        "imitation/test_swingup.py",
        "imitation/test_tictactoe.py",
        "models/test_data.py",
        "models/test_gps.py",
        "models/test_local.py",
        "models/test_loop.py",
        "models/test_mbrl.py",
        "models/test_mdgps.py",
        "models/test_neural.py",
        "models/test_sysid.py",
        "models/test_through_model.py",
        "pomdp/test_belief.py",
        "pomdp/test_hsvi.py",
        "pomdp/test_kalman.py",
        "pomdp/test_particles.py",
        "pomdp/test_pointbased.py",
        "pomdp/test_pomcp.py",
        "pomdp/test_problems.py",
        "tabular/test_episodes.py",
        "tabular/test_mc.py",
        "tabular/test_soft_q.py",
        "tabular/test_td.py",
        "test_policy.py",  # (its CartPole fixture trains PPO until solved)
    }
)
_TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    """Mark every test of a module in LEARNING_MODULES `learning`."""
    missing = sorted(m for m in LEARNING_MODULES if not (_TESTS_DIR / m).is_file())
    if missing:
        raise pytest.UsageError(
            f"tests/conftest.py LEARNING_MODULES names missing files: {missing}"
        )
    for item in items:
        try:
            rel = item.path.resolve().relative_to(_TESTS_DIR).as_posix()
        except ValueError:
            continue
        if rel in LEARNING_MODULES:
            item.add_marker(pytest.mark.learning)


# ---------------------------------------------------------------------- memory maps
# Each compiled XLA CPU program holds memory maps of its own (code and data sections), and a
# worker that runs a few hundred test modules keeps thousands of programs alive in JAX's
# caches: by the end it reached Linux's per-process limit, vm.max_map_count (65530). Loading
# the next program from the persistent cache then failed, and jaxlib 0.10.2's error path
# crashed the worker (SIGSEGV in libgcc's unwinder, which still had the failed program's
# unwind tables registered; SIGABRT in the same place). A core dump of a crashed worker held
# 65418 maps. Dropping JAX's caches after each module keeps a worker under ~16000 maps and
# ~2 GB over a full run (tests/deep and tests/models in one process: 43000 maps without, 6100
# with, 147.4 vs 148.5 s); the programs the next module needs come back from the persistent
# cache. Dropping them only past half the limit was slower (full warm run 501 s, peak 33000
# maps and 4.5 GB per worker, against 456 s).
#: The test modules this process ran, in order (`modules_run_before`).
_MODULES_RUN: list[str] = []


@pytest.fixture(autouse=True, scope="module")
def _drop_compiled_programs_after_each_module(request):
    yield
    _MODULES_RUN.append(request.module.__name__)
    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
        gc.collect()


@pytest.fixture
def modules_run_before() -> list[str]:
    """The test modules this worker ran before the current one (for a failure's message:
    a fault that depends on the process's history needs it to be reproduced)."""
    return list(_MODULES_RUN)


# ---------------------------------------------------------------------- xdist after a crash
# Tests whose worker crashed once (run again in a fresh worker) and the worker that crashed.
_CRASHED_ONCE: dict[str, str] = {}


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadscope` that survives a worker crash: no hang, and one retry in a new worker.

    Two changes to pytest-xdist 3.8's LoadScopeScheduling.remove_node, which runs when a worker
    dies:
    - It put back on the queue every module the dead worker was ever given, finished ones too.
      A finished module is later handed out as an empty unit of work; a worker runs its last
      test only once it knows the next one (or is told to stop), the scheduler acts only when a
      test finishes, and so the workers wait on each other forever with tests left (CI ran
      into its time limit). Here only modules with tests left go back on the queue.
    - The test that was running is reported failed at once. Here it runs once more, in the
      fresh worker xdist starts, and fails only if that worker dies too: a native crash that
      depends on the worker's history (see "memory maps" above: before that fix, each of three
      full runs here and CI's last run lost a worker, in a different test each time) is not
      the test's failure. Every retry is printed when it happens and listed in the summary, so
      it is never silent; a test that kills its worker twice fails as before.
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    reporter = config.pluginmanager.getplugin("terminalreporter")

    class Scheduling(LoadScopeScheduling):
        def remove_node(self, node):
            workload = self.assigned_work.get(node, {})
            for scope in [s for s, unit in workload.items() if all(unit.values())]:
                del workload[scope]
            crashed = super().remove_node(node)
            if crashed is None or crashed in _CRASHED_ONCE:
                return crashed
            _CRASHED_ONCE[crashed] = node.gateway.id
            if reporter is not None:
                reporter.write_line(
                    f"worker {node.gateway.id} died while running {crashed}; "
                    "running it again in a fresh worker (a second death fails it)",
                    yellow=True,
                )
            return None  # still pending in its module: the fresh worker runs it

    return Scheduling(config, log)


def pytest_terminal_summary(terminalreporter):
    """List the tests whose worker died once (see pytest_xdist_make_scheduler)."""
    if _CRASHED_ONCE:
        terminalreporter.section("workers that died (the test ran again in a fresh worker)")
        for test, worker in _CRASHED_ONCE.items():
            terminalreporter.write_line(f"{worker} died while running {test}")
