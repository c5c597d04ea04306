"""tune_xla_flags: adds the small-matrix flag once, respects the user's choices."""

from bellmax.core.xla import SMALL_MATRIX_FLAGS, tune_xla_flags


def test_adds_the_flag_once_and_keeps_existing_flags():
    env = {"XLA_FLAGS": "--xla_backend_optimization_level=0"}
    assert tune_xla_flags(env) == "--xla_backend_optimization_level=0 " + SMALL_MATRIX_FLAGS
    assert tune_xla_flags(env) is None  # already there: unchanged
    assert env["XLA_FLAGS"].count("ynn_fusion") == 1
    empty = {}
    assert tune_xla_flags(empty) == SMALL_MATRIX_FLAGS


def test_user_choices_win():
    env = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=dot"}
    assert tune_xla_flags(env) == (
        "--xla_cpu_experimental_ynn_fusion_type=dot --xla_cpu_multi_thread_eigen=false"
    )
    both = {
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true --xla_cpu_experimental_ynn_fusion_type=dot"
    }
    assert tune_xla_flags(both) is None
    env = {"BELLMAX_XLA_DEFAULTS": "1"}
    assert tune_xla_flags(env) is None and "XLA_FLAGS" not in env
