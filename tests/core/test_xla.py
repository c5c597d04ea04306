"""tune_xla_flags: adds the small-matrix flag once, respects the user's choices.
cpu_compile_options: lighter compiles on CPU only, the same results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core import xla
from bellmax.core.xla import (
    RUN_ONCE,
    RUN_SOMETIMES,
    SMALL_MATRIX_FLAGS,
    cpu_compile_options,
    tune_xla_flags,
)


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
        "--xla_cpu_experimental_ynn_fusion_type=dot --xla_cpu_multi_thread_eigen=false "
        "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=262144"
    )
    every = {
        "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true --xla_cpu_experimental_ynn_fusion_type=dot"
        " --xla_backend_extra_options=xla_cpu_fold_all_constants=1"
    }
    assert tune_xla_flags(every) is None
    env = {"BELLMAX_XLA_DEFAULTS": "1"}
    assert tune_xla_flags(env) is None and "XLA_FLAGS" not in env


def test_small_loop_threshold_is_added_and_read_back():
    env = {}
    tune_xla_flags(env)
    assert xla.small_loop_bytes(env) == xla.SMALL_LOOP_BYTES == 1 << 18
    assert xla.small_loop_bytes({}) == xla.XLA_DEFAULT_SMALL_LOOP_BYTES == 1024
    # the user's own extra options stay theirs, whatever keys they hold
    theirs = {"XLA_FLAGS": "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=5"}
    tune_xla_flags(theirs)
    assert theirs["XLA_FLAGS"].count("xla_backend_extra_options") == 1
    assert xla.small_loop_bytes(theirs) == 5
    other = {"XLA_FLAGS": "--xla_backend_extra_options=xla_cpu_fold_all_constants=1"}
    tune_xla_flags(other)
    assert xla.small_loop_bytes(other) == 1024 and other["XLA_FLAGS"].count("extra_options") == 1


def test_cpu_compile_options_on_cpu_only(monkeypatch):
    assert jax.default_backend() == "cpu"  # the test suite runs on the CPU
    assert cpu_compile_options(RUN_ONCE) == {
        "xla_backend_optimization_level": 0,
        "xla_cpu_use_fusion_emitters": False,
    }
    assert cpu_compile_options(RUN_SOMETIMES) == {
        "xla_backend_optimization_level": 1,
        "xla_cpu_use_fusion_emitters": False,
    }
    # YNNPACK's dots, XLA's default, back on for one program whatever XLA_FLAGS turned off
    assert cpu_compile_options(xla.LIBRARY_DOTS, {}) == {
        "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
    }
    # and, for the programs that train networks, its reductions too
    assert cpu_compile_options(xla.NETWORK_UPDATES, {"XLA_FLAGS": SMALL_MATRIX_FLAGS}) == {
        "xla_cpu_experimental_ynn_fusion_type": (
            "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"
        )
    }
    with pytest.raises(ValueError, match="kind must be one of"):
        cpu_compile_options(0)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert xla.cpu_compile_options(RUN_ONCE) is None


def test_an_instruction_set_cap_leaves_ynnpack_as_xla_flags_set_it():
    # YNNPACK ignores --xla_cpu_max_isa (it picks its kernels from the CPU it finds), so
    # under a cap (make test-portable) the programs that would turn it on compile without.
    capped = {"XLA_FLAGS": f"{SMALL_MATRIX_FLAGS} --xla_cpu_max_isa=SSE4_2"}
    assert xla.isa_capped(capped) and xla.isa_capped({"XLA_FLAGS": "--xla_cpu_max_isa=AVX2"})
    assert not xla.isa_capped({"XLA_FLAGS": SMALL_MATRIX_FLAGS}) and not xla.isa_capped({})
    assert cpu_compile_options(xla.NETWORK_UPDATES, capped) == {}
    assert cpu_compile_options(xla.LIBRARY_DOTS, capped) == {}
    # the other kinds keep their options
    assert cpu_compile_options(RUN_SOMETIMES, capped) == {
        "xla_backend_optimization_level": 1,
        "xla_cpu_use_fusion_emitters": False,
    }


def test_an_option_this_jaxlib_lacks_is_left_out(monkeypatch):
    monkeypatch.setitem(xla._OPTIONS, RUN_ONCE, {"xla_cpu_no_such_option": True})
    assert cpu_compile_options(RUN_ONCE) == {}


def test_a_lightly_optimised_program_computes_the_same():
    def f(key):
        w = jax.random.normal(key, (16, 16))
        bits = jax.random.bits(key, (8,))
        return jnp.tanh(w @ w.T).sum(axis=1), bits

    key = jax.random.key(3)
    ref_x, ref_bits = jax.jit(f)(key)
    for kind in (RUN_ONCE, RUN_SOMETIMES, xla.LIBRARY_DOTS, xla.NETWORK_UPDATES):
        x, bits = jax.jit(f, compiler_options=cpu_compile_options(kind, {}))(key)
        np.testing.assert_array_equal(bits, ref_bits)  # integer work: bit for bit
        np.testing.assert_allclose(x, ref_x, rtol=1e-5, atol=1e-6)


def test_network_updates_hand_a_layers_product_to_ynnpack():
    # The options reach XLA as one comma-separated list: a dense layer's product becomes a
    # YNNPACK fusion, where XLA_FLAGS (SMALL_MATRIX_FLAGS, as the test suite sets them) make
    # none.
    def layer(w, x):
        return jnp.sum(jnp.tanh(x @ w), axis=0)

    w, x = jnp.full((64, 64), 0.01), jnp.ones((32, 64))
    plain = jax.jit(layer).lower(w, x).compile().as_text()
    options = cpu_compile_options(xla.NETWORK_UPDATES, {})
    ynn = jax.jit(layer, compiler_options=options).lower(w, x).compile().as_text()
    assert "__ynn_fusion" not in plain and "__ynn_fusion" in ynn


def test_jit_lightly_chooses_its_options_at_the_first_call(monkeypatch):
    # Building one (the tour does it at import time) asks for nothing; the first call
    # compiles once with `cpu_compile_options(kind)`, keyword arguments of jax.jit included.
    asked = []
    real = xla.cpu_compile_options
    monkeypatch.setattr(xla, "cpu_compile_options", lambda kind: asked.append(kind) or real(kind))
    f = xla.jit_lightly(lambda x, n: x * n, RUN_SOMETIMES, static_argnums=(1,))
    assert asked == []
    assert float(f(jnp.float32(2.0), 3)) == 6.0 and float(f(jnp.float32(1.5), n=2)) == 3.0
    assert asked == [RUN_SOMETIMES]
    with pytest.raises(ValueError, match="kind must be one of"):
        xla.jit_lightly(lambda x: x, "never")


def test_gc_paused_turns_the_collector_off_inside_and_restores_it():
    # Blocks in several threads overlap: the collector stays off until the last one leaves,
    # and comes back on only if it was on before the first came in.
    import gc
    import threading

    from bellmax.core.xla import gc_paused

    was = gc.isenabled()
    try:
        gc.enable()
        inside, release = threading.Event(), threading.Event()

        def hold():
            with gc_paused():
                inside.set()
                release.wait(10)

        t = threading.Thread(target=hold)
        t.start()
        inside.wait(10)
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the other thread is still inside
        release.set()
        t.join(10)
        assert gc.isenabled()
        with pytest.raises(RuntimeError, match="boom"), gc_paused():
            raise RuntimeError("boom")
        assert gc.isenabled()  # restored after an error too
        gc.disable()  # the user's choice stays
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()


def test_bucket_size_is_the_power_of_two_at_least_n_and_the_minimum():
    from bellmax.core.xla import bucket_size

    assert [bucket_size(n) for n in (0, 1, 2, 3, 4, 5, 8, 9, 129)] == [1, 1, 2, 4, 4, 8, 8, 16, 256]
    assert [bucket_size(n, 8) for n in (0, 1, 7, 8, 9)] == [8, 8, 8, 8, 16]
    assert bucket_size(65, 64) == 128 and bucket_size(3, 64) == 64
