"""The shared validators: one rule for bad input, written once (DESIGN.md rule 9).

The rule: a value of the wrong *type* raises `TypeError`; a value of the right type but a
wrong *value* (out of range, NaN, not one of the choices) raises `ValueError`. Every message
names the owner and field (`PPO Config.learning_rate`), the bad value, what is allowed, and so
the fix. Configs call these from `__post_init__`; functions call them on entry. Each returns
the value converted to a plain Python type (numpy scalars become `int`/`float`), so configs
stay hashable and their cache keys stable.
"""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "FLOAT32_MAX",
    "check_bool",
    "check_choice",
    "check_float32",
    "check_int",
    "check_int_sequence",
    "check_number",
    "check_prng_key",
    "check_probability",
    "check_seed",
    "check_seed_range",
    "check_seeds",
    "check_type",
    "whole_number",
]

#: Seeds are integers in 0 .. 2**32 - 1. A JAX key (without x64) takes a seed's low 32 bits:
#: `jax.random.key(2**32)` is `jax.random.key(0)` and -1 is 2**32 - 1, so a larger or a
#: negative seed would run a smaller seed's run again under another name.
MAX_SEED = 2**32 - 1


def _who(name: str, owner: str) -> str:
    return f"{owner}.{name}" if owner else name


def _bounds(low: Any, high: Any, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high}")
    return " and ".join(parts)


def _check_range(
    value: float, who: str, kind: str, low: Any, high: Any, low_open: bool, high_open: bool
) -> None:
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        raise ValueError(
            f"{who} must be {kind} {_bounds(low, high, low_open, high_open)}, got {value!r}."
        )


def check_type(value: Any, types: type | tuple[type, ...], name: str, *, owner: str = "") -> Any:
    """Raise TypeError unless `value` is an instance of `types`; return it."""
    if not isinstance(value, types):
        want = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise TypeError(
            f"{_who(name, owner)} must be a {want}, got {type(value).__name__} {value!r}."
        )
    return value


def check_int(
    value: Any,
    name: str,
    *,
    owner: str = "",
    low: int | None = None,
    high: int | None = None,
) -> int:
    """An integer (bools refused, numpy integers accepted) in `[low, high]`.

    Raises:
      TypeError: not an integer (a float such as `1.0` or `1e5` included: write `100000`).
      ValueError: outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = f" (write {int(value)})" if isinstance(value, float) and value.is_integer() else ""
        raise TypeError(
            f"{_who(name, owner)} must be an int, got {type(value).__name__} {value!r}{hint}."
        )
    value = int(value)
    _check_range(value, _who(name, owner), "an int", low, high, False, False)
    return value


def whole_number(text: str) -> int:
    """An integer written as text (a command-line option, a sweep's `--set` value): an integer
    (`100000`, `100_000`), or a whole number in float notation (`1e5`, `100000.0`), as
    Stable-Baselines3 users write step counts. The one rule for integers given as text.

    Raises:
      ValueError: anything else (`1.5`, `1e-3`, `abc`, `nan`), naming the text and the fix.
    """
    try:
        return int(text)
    except ValueError:
        pass
    fix = "write a whole number such as 100000 or 1e5"
    try:
        value = decimal.Decimal(text.strip())  # exact: 1e30 is 10**30, not a float near it
    except decimal.InvalidOperation:
        raise ValueError(f"{text!r} is not an integer; {fix}") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise ValueError(f"{text!r} is not an integer; {fix}")
    if value.adjusted() > 1000:  # int() of 1e999999999 would fill the memory
        raise ValueError(f"{text!r} has over 1000 digits; give a smaller number")
    return int(value)


def check_number(
    value: Any,
    name: str,
    *,
    owner: str = "",
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
) -> float:
    """A real number (ints accepted, bools refused), finite unless `finite=False`, in range.

    `low_open`/`high_open` make a bound strict (`low=0, low_open=True` means `> 0`).

    Raises:
      TypeError: not a real number.
      ValueError: NaN (always), infinite (when `finite`), or outside the bounds.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        hint = ""
        if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
            hint = f" Pass float(x) ({float(value.reshape(())):g}) instead of the array."
        raise TypeError(
            f"{_who(name, owner)} must be a number, got {type(value).__name__} {value!r}.{hint}"
        )
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        kind = "a finite number" if finite else "a number (inf allowed, not NaN)"
        raise ValueError(f"{_who(name, owner)} must be {kind}, got {value!r}.")
    _check_range(value, _who(name, owner), "a number", low, high, low_open, high_open)
    return value


#: The largest float32: a number beyond it is finite on the host and inf in a float32 array.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32(value: float, name: str, *, owner: str = "") -> float:
    """`value` (a finite number) if it fits float32, in which the computation holds it.

    Raises:
      ValueError: `|value| > FLOAT32_MAX` (it would become inf).
    """
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"{_who(name, owner)} must be at most {FLOAT32_MAX:.3g} in size (it is held in "
            f"float32, where {value!r} is inf), got {value!r}."
        )
    return value


def check_prng_key(key: Any, who: str) -> Any:
    """`key`, unless it is a number (a seed given where a JAX PRNG key is expected), which
    is refused naming the fix; JAX's own message is "invalid PRNG key data". Traced and
    array keys pass (JAX checks those). Imports nothing: `import bellmax` stays JAX-free.

    Raises:
      TypeError: `key` is a Python or NumPy scalar, or a 0-d array that is not a typed key.
    """
    if isinstance(key, bool | int | float | np.integer | np.floating):
        typed = False
    elif np.ndim(key) == 0 and not type(key).__name__.endswith("Tracer"):
        dtype = getattr(key, "dtype", None)
        typed = dtype is not None and "key<" in str(dtype)  # a typed key, jax.random.key(0)
    else:
        return key
    if not typed:
        seed = int(key) if isinstance(key, int | np.integer) else "SEED"
        raise TypeError(
            f"{who}: key must be a JAX PRNG key, got {np.asarray(key).tolist()!r}; make one "
            f"from a seed with jax.random.key({seed})."
        )
    return key


def check_probability(value: Any, name: str, *, owner: str = "") -> float:
    """A number in [0, 1]."""
    return check_number(value, name, owner=owner, low=0, high=1)


def check_bool(value: Any, name: str, *, owner: str = "") -> bool:
    """A bool (numpy bools accepted; ints refused: write True or False)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(
        f"{_who(name, owner)} must be True or False, got {type(value).__name__} {value!r}."
    )


def check_choice(value: Any, name: str, choices: Iterable[str], *, owner: str = "") -> str:
    """One of `choices` (strings)."""
    choices = tuple(choices)
    if not isinstance(value, str):
        raise TypeError(
            f"{_who(name, owner)} must be a str, one of {', '.join(map(repr, choices))}; got "
            f"{type(value).__name__} {value!r}."
        )
    if value not in choices:
        raise ValueError(
            f"{_who(name, owner)} must be one of {', '.join(map(repr, choices))}, got {value!r}."
        )
    return value


def check_int_sequence(
    value: Any,
    name: str,
    *,
    owner: str = "",
    low: int | None = None,
    min_length: int = 0,
) -> tuple[int, ...]:
    """A sequence (list or tuple) of ints, each >= `low`, at least `min_length` long."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            f"{_who(name, owner)} must be a tuple of ints such as (64, 64), got "
            f"{type(value).__name__} {value!r}."
        )
    out = tuple(check_int(v, f"{name}[{i}]", owner=owner, low=low) for i, v in enumerate(value))
    if len(out) < min_length:
        raise ValueError(
            f"{_who(name, owner)} must have at least {min_length} entries, got {value!r}."
        )
    return out


def check_seed(value: Any, name: str = "--seed", *, owner: str = "") -> int:
    """A seed: an integer in `0 .. MAX_SEED` (distinct seeds, distinct JAX keys)."""
    return check_int(value, name, owner=owner, low=0, high=MAX_SEED)


def check_seed_range(
    first: Any, count: Any, *, first_name: str = "--seed", count_name: str = "--seeds"
) -> range:
    """The seeds `first, first + 1, ..., first + count - 1` (a command's `--seed` and
    `--seeds`), each a `check_seed`.

    Raises:
      TypeError / ValueError: `count` below 1, `first` not a seed, or the last seed above
        `MAX_SEED` (naming both options and the highest first seed that fits).
    """
    count = check_int(count, count_name, low=1)
    first = check_seed(first, first_name)
    if first + count - 1 > MAX_SEED:
        raise ValueError(
            f"{first_name} {first} with {count_name} {count} runs seeds up to {first + count - 1}"
            f", above {MAX_SEED}: seeds are 32-bit (a larger one would repeat a smaller one's "
            f"run); start at {MAX_SEED - count + 1} or lower."
        )
    return range(first, first + count)


def check_seeds(value: Any, name: str = "seeds", *, owner: str = "") -> tuple[int, ...]:
    """Seeds for runs trained side by side: at least one, distinct, each a `check_seed`.

    Raises:
      TypeError: one int instead of a sequence, or an entry that is not an int.
      ValueError: none, a repeat, or a seed outside `0 .. MAX_SEED`.
    """
    if isinstance(value, numbers.Integral | str | bytes):
        raise TypeError(
            f"{_who(name, owner)} is a sequence of seed values, e.g. {name}=(0, 1, 2) or "
            f"range(3); got {value!r}."
        )
    seeds = tuple(check_seed(v, f"{name}[{i}]", owner=owner) for i, v in enumerate(value))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"{name} must be distinct integers, at least one; got {seeds!r}.")
    return seeds
