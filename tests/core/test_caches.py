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
