"""bellmax.core.caches: the most recently used entries are kept, each made once."""

from bellmax.core.caches import recently_used


def test_the_least_recently_used_goes_first_and_a_hit_makes_nothing():
    cache: dict = {}
    made = []

    def maker(key):
        return lambda: made.append(key) or f"value {key}"

    for key in ("a", "b", "c"):
        recently_used(cache, key, maker(key), kept=2)
    assert list(cache) == ["b", "c"] and made == ["a", "b", "c"]
    assert recently_used(cache, "b", maker("b"), kept=2) == "value b"  # a hit: now the newest
    recently_used(cache, "d", maker("d"), kept=2)
    assert list(cache) == ["b", "d"] and made == ["a", "b", "c", "d"]


def test_jit_per_static_keeps_the_newest_static_arguments_programs_only():
    # `jax.jit` with a function as a static argument keeps every program it compiled (and
    # what the function closes over) for the life of the process: a notebook cell that
    # builds its objective from a fresh lambda leaked one program per run.
    import gc
    import weakref

    import jax.numpy as jnp

    from bellmax.core.caches import jit_per_static

    traces = []

    def apply(f, scale, x):
        traces.append(scale)
        return f(x) * scale

    jitted = jit_per_static(apply, static_argnums=(0, 1), kept=2)
    double = lambda x: 2 * x  # noqa: E731
    assert float(jitted(double, 3, jnp.float32(1.0))) == 6.0
    assert float(jitted(double, 3, jnp.float32(2.0))) == 12.0
    assert traces == [3]  # the same static arguments: traced once
    assert float(jitted(double, 4, jnp.float32(1.0))) == 8.0  # another combination
    assert traces == [3, 4]
    big = jnp.ones(1000)

    def closing(x, big=big):
        return x + big[0]

    ref = weakref.ref(closing)
    assert float(jitted(closing, 1, jnp.float32(1.0))) == 2.0
    del closing
    assert ref() is not None  # kept: among the 2 newest
    jitted(double, 5, jnp.float32(1.0))
    jitted(double, 6, jnp.float32(1.0))
    gc.collect()
    assert ref() is None  # dropped with its programs once two newer ones were used
    assert len(jitted.kept_programs) == 2
    jitted(double, 6, jnp.float32(1.0))
    assert traces == [3, 4, 1, 5, 6]  # a kept one is not traced again
