"""Tests for bellmax.core.checks: the shared validators."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from bellmax.core.checks import (
    MAX_SEED,
    check_bool,
    check_choice,
    check_int,
    check_int_sequence,
    check_number,
    check_probability,
    check_seed,
    check_seed_range,
    check_seeds,
    check_type,
    whole_number,
)


def test_check_int_types_and_ranges():
    assert check_int(np.int64(3), "n", low=1) == 3
    assert type(check_int(np.int32(3), "n")) is int
    with pytest.raises(TypeError, match=r"Config\.n must be an int, got bool True"):
        check_int(True, "n", owner="Config")
    with pytest.raises(TypeError, match=r"write 100000"):
        check_int(1e5, "total_steps")
    with pytest.raises(TypeError, match="got str"):
        check_int("3", "n")
    with pytest.raises(ValueError, match=r"n must be an int >= 1 and <= 5, got 0"):
        check_int(0, "n", low=1, high=5)


def test_check_number_types_nan_and_open_bounds():
    assert check_number(1, "lr", low=0, low_open=True) == 1.0
    assert check_number(np.float32(0.5), "p") == 0.5
    with pytest.raises(TypeError, match="must be a number"):
        check_number(False, "lr")
    with pytest.raises(TypeError, match="must be a number"):
        check_number("0.1", "lr")
    # a NumPy 0-d array (a value read back from a file, say) is named with its fix
    with pytest.raises(TypeError, match=r"got ndarray array\(0\.25\)\. Pass float\(x\) \(0\.25\)"):
        check_number(np.array(0.25), "lr")
    with pytest.raises(TypeError, match=r"got ndarray array\(\[1\., 2\.\]\)\.$"):
        check_number(np.array([1.0, 2.0]), "lr")  # (no number to suggest)
    with pytest.raises(ValueError, match=r"cap must be a number \(inf allowed, not NaN\), got nan"):
        check_number(float("nan"), "cap", finite=False)  # not "finite": inf is allowed
    with pytest.raises(ValueError, match="finite"):
        check_number(float("inf"), "lr")
    assert check_number(float("inf"), "cap", finite=False) == float("inf")
    with pytest.raises(ValueError, match=r"lr must be a number > 0, got 0.0"):
        check_number(0.0, "lr", low=0, low_open=True)
    with pytest.raises(ValueError, match=r"< 1"):
        check_number(1.0, "gamma", low=0, high=1, high_open=True)
    with pytest.raises(ValueError, match=r">= 0 and <= 1"):
        check_probability(1.5, "epsilon")


def test_check_bool_choice_type_and_sequences():
    assert check_bool(np.bool_(True), "flag") is True
    with pytest.raises(TypeError, match="True or False"):
        check_bool(1, "flag")
    assert check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"one of 'a', 'b', got 'c'"):
        check_choice("c", "mode", ("a", "b"))
    with pytest.raises(TypeError, match="must be a str"):
        check_choice(1, "mode", ("a", "b"))
    assert check_type(3, (int, float), "x") == 3
    with pytest.raises(TypeError, match="must be a int or float"):
        check_type("3", (int, float), "x")
    assert check_int_sequence([64, np.int64(32)], "hidden", low=1) == (64, 32)
    with pytest.raises(TypeError, match=r"tuple of ints"):
        check_int_sequence("64", "hidden")
    with pytest.raises(ValueError, match=r"hidden\[1\] must be an int >= 1"):
        check_int_sequence((64, 0), "hidden", low=1)
    with pytest.raises(ValueError, match="at least 1 entries"):
        check_int_sequence((), "hidden", min_length=1)


def test_check_seed_is_every_commands_seed_range():
    assert check_seed(0) == 0 and check_seed(MAX_SEED) == 2**32 - 1
    with pytest.raises(ValueError, match=r"--seed must be an int >= 0 and <= 4294967295"):
        check_seed(-1)
    with pytest.raises(ValueError, match=r"run_tour\.seed"):
        check_seed(2**32, "seed", owner="run_tour")
    # why 32 bits: a JAX key takes a seed's low 32 bits, so 2**32 and -1 repeat other seeds
    key = lambda s: np.asarray(jax.random.key_data(jax.random.key(s)))  # noqa: E731
    np.testing.assert_array_equal(key(2**32), key(0))
    np.testing.assert_array_equal(key(-1), key(MAX_SEED))
    assert len({tuple(key(s)) for s in (0, 1, MAX_SEED - 1, MAX_SEED)}) == 4


def test_seeds_side_by_side_are_distinct_seeds():
    assert check_seeds(range(3)) == (0, 1, 2)
    assert check_seed_range(MAX_SEED - 1, 2) == range(MAX_SEED - 1, MAX_SEED + 1)
    for bad, error, match in [
        (3, TypeError, r"seeds is a sequence of seed values, e\.g\. seeds=\(0, 1, 2\)"),
        ((), ValueError, "distinct integers, at least one"),
        ((1, 1), ValueError, "distinct integers"),
        ((0, 2**32), ValueError, r"seeds\[1\] must be an int >= 0 and <= 4294967295"),
        ((0.0,), TypeError, r"seeds\[0\] must be an int"),
    ]:
        with pytest.raises(error, match=match):
            check_seeds(bad)
    with pytest.raises(ValueError, match=r"--seed 4294967295 with --seeds 2 runs seeds up to"):
        check_seed_range(MAX_SEED, 2)
    with pytest.raises(ValueError, match=r"--seeds must be an int >= 1"):
        check_seed_range(0, 0)


def test_whole_number_is_the_rule_for_integers_written_as_text():
    # one rule for the CLI's integer options and a sweep's `--set NAME=VALUE` values
    assert whole_number("100000") == whole_number("1_000_00") == 100_000
    assert whole_number("1e5") == whole_number("100000.0") == 100_000
    assert whole_number(" 2e3 ") == 2000
    assert whole_number("1e30") == 10**30  # exact, not the float nearest it
    assert whole_number("-3") == -3
    for text in ("1.5", "1e-3", "nan", "inf", "0x10", "abc", ""):
        with pytest.raises(ValueError, match=f"'{text}' is not an integer; write a whole number"):
            whole_number(text)
    with pytest.raises(ValueError, match="over 1000 digits; give a smaller number"):
        whole_number("1e1001")
    from bellmax.cli import main as cli

    assert cli.whole_number is whole_number  # the CLI's integer options use the same rule


def test_a_seed_where_a_key_is_expected_is_named():
    # `train(0)`, `sarsa(0, env)`, `evaluate(..., 0)`: JAX said "invalid PRNG key data:
    # expected key_data.ndim >= 1"; each entry point now says what to pass, as env.reset did
    import bellmax
    from bellmax.core.checks import check_prng_key
    from bellmax.deep import evaluate, ppo
    from bellmax.tabular import sarsa

    fix = r"key must be a JAX PRNG key, got 3; make one from a seed with jax\.random\.key\(3\)"
    for key in (3, np.int64(3)):
        with pytest.raises(TypeError, match="^f: " + fix):
            check_prng_key(key, "f")
    assert check_prng_key(jax.random.PRNGKey(0), "f") is not None  # raw keys pass
    check_prng_key(jax.random.key(0), "f")
    with pytest.raises(TypeError, match="^train: " + fix):
        ppo.make_train(ppo.Config(total_timesteps=512), "CartPole-v1")(3)
    with pytest.raises(TypeError, match="^sarsa: " + fix):
        sarsa(3, bellmax.make("CliffWalking-v0")[0])
    with pytest.raises(TypeError, match="^evaluate: " + fix):
        evaluate(lambda p, obs, k: obs[:, 0].astype(int) * 0, None, "CartPole-v1", 3)
    jax.jit(lambda k: check_prng_key(k, "f"))(jax.random.key(0))  # traced keys pass
