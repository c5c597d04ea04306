"""Test-wide settings: the tests run with the XLA setting the `bellmax` command ships with.

`bellmax.core.xla.tune_xla_flags` turns off XLA's YNN fusion for small-matrix loops (faster
runs and shorter compiles); the `bellmax` command and the benchmarks use it too, so the tests
check what users run. BELLMAX_XLA_DEFAULTS=1 runs them with XLA's defaults instead.

Not used, on purpose: `--xla_backend_optimization_level=0` with
`--xla_llvm_disable_expensive_passes=true` saved about a fifth of the compile time, but
together with the YNN setting it made tests/bandits/test_agents.py's Thompson-sampling
frequencies wrong (0.26 vs 0.21 for one arm), so that combination miscompiles on jax 0.10.2.
"""

from pathlib import Path

import pytest

from bellmax.core.xla import tune_xla_flags

tune_xla_flags()


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
