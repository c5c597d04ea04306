"""Input checks shared by every environment: actions, observations and parameters.

DESIGN.md rule 9: bad input raises `TypeError` (wrong type or dtype) or `ValueError` (wrong
value or shape), naming the bad value, what is valid and the fix. Environments check at
their boundary (`Environment.reset`/`step`) and only values that are concrete: under `jit`,
`vmap` or `scan` the inputs are tracers, the checks are skipped at no run-time cost, and each
environment's docstring says what an invalid action does there. `bellmax.envs.checked` also
checks traced values, by staging the same checks into the computation (`enforce`).

Two kinds of check live here:

- static: what a dtype and a shape decide (both known even under `jit`); raised at once;
- valued: what needs the numbers. Each gives `Problem`s, a boolean `bad` (numpy for concrete
  values, jax for traced ones) with a function that writes the message from the concrete
  value; `enforce` raises the concrete ones now and stages the traced ones.

Parameter fields declare their valid values where they are declared, as `Bounds` given to
`bounded` (`episode_limit` for `max_steps_in_episode`); `check_param_fields` (host) and
`param_problems` (staged) read them through `field_bounds_of`. What
is not particular to environments (is this one value a number, an int, a bool) is
`bellmax.core.checks`' rule, used here and by the environments' constructors; what is
(actions against spaces, entry-wise bounds of array parameters, staged checks) lives here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_number
from bellmax.envs import spaces

# ---------------------------------------------------------------------- concreteness


def is_traced(tree: Any) -> bool:
    """Whether any leaf of `tree` is a tracer (inside `jit`/`vmap`/`scan`/`grad`)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def concrete_or_none(x: Any) -> np.ndarray | None:
    """`x` as a host array, or None when any leaf is traced (checks then happen elsewhere)."""
    if is_traced(x):
        return None
    return np.asarray(x)


def show(x: Any, limit: int = 80) -> str:
    """A short readable form of a value for an error message."""
    if isinstance(x, np.ndarray | jax.Array | np.generic) and not is_traced(x):
        a = np.asarray(x)
        text = repr(a.item()) if a.ndim == 0 else np.array2string(a, threshold=8)
    else:
        text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def as_array(x: Any, what: str) -> np.ndarray:
    """`x` (a number, an array or a nested list) as a numpy array of numbers or bools.

    Raises:
      TypeError: `x` holds something else (None, strings, objects).
      ValueError: `x` is a ragged nested list.
    """
    try:
        a = np.asarray(x)
    except ValueError:  # numpy refuses ragged nested sequences
        raise ValueError(
            f"{what} must be a number or a rectangular array, got the ragged {show(x)}; "
            "pass lists of equal length or an array."
        ) from None
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{what} must be a number or an array of numbers, got {show(x)} "
            f"({type(x).__name__}, dtype {a.dtype})."
        )
    return a


# ---------------------------------------------------------------------- problems


@dataclasses.dataclass(frozen=True)
class Problem:
    """A valued check: where `bad` is true, `message(value)` says what is wrong."""

    bad: Any
    """Bool scalar, numpy (concrete) or jax (possibly traced)."""
    value: Any
    """The value the message shows (concrete when `bad` is)."""
    message: Callable[[np.ndarray], str]
    """Writes the error message from the concrete `value`."""


def enforce(problems: Sequence[Problem]) -> None:
    """Raise `ValueError` for the first failing concrete problem; stage the traced ones.

    Traced problems share one `jax.debug.callback` inside a `lax.cond`, so the host is
    called only when one fails (under `vmap` the cond becomes a select: the callback then
    runs for every element, sequentially, and raises for a failing one). The callback raises
    the same `ValueError` on the host, which JAX surfaces as a `jax.errors.JaxRuntimeError`
    whose message ends with it, when the computation runs (with asynchronous dispatch, at
    the latest when a result is read).
    """
    staged: list[Problem] = []
    for p in problems:
        if is_traced(p.bad) or is_traced(p.value):
            staged.append(p)
        elif np.any(np.asarray(p.bad)):
            raise ValueError(p.message(np.asarray(p.value)))
    if not staged:
        return
    flags = [jnp.asarray(p.bad) for p in staged]
    values = [p.value for p in staged]
    messages = [p.message for p in staged]

    def report(flags: list[np.ndarray], values: list[Any]) -> None:
        for flag, value, message in zip(flags, values, messages, strict=True):
            if np.any(flag):
                raise ValueError(message(np.asarray(value)))

    any_bad = functools.reduce(jnp.logical_or, [jnp.any(f) for f in flags])
    jax.lax.cond(any_bad, lambda: jax.debug.callback(report, flags, values), lambda: None)


# ---------------------------------------------------------------------- actions

_BATCH_HINT = (
    "to step many environments at once use jax.vmap(env.step) or bellmax.envs.make_vector_env"
)


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def check_action_type(
    action: Any, dtype: Any, shape: tuple[int, ...], space: Any, who: str, what: str = "action"
) -> None:
    """Raise for an action whose dtype or shape `space` cannot take (works on tracers too).

    Discrete and MultiDiscrete actions are integers (`TypeError` for floats and bools) of the
    space's shape; Box actions are numbers (ints or floats, not bools) of the space's shape,
    or a scalar for a one-dimensional Box (`ValueError` for a wrong shape).
    """
    kind = np.dtype(dtype).kind
    traced = is_traced(action)
    desc = f"the traced {what}" if traced else f"{what} {show(action)}"
    shown = "" if traced else f": {show(action)}"
    shape = tuple(shape)
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete):
        if kind not in "iu":
            raise TypeError(
                f"{who}: {desc} has dtype {np.dtype(dtype).name}, but the {what}s of "
                f"{space} are integers; pass an integer index (int(a), or a.astype(jnp.int32) "
                "for an array of whole numbers)."
            )
        if shape != space.shape:
            want = "one integer (shape ())" if space.shape == () else f"shape {space.shape}"
            raise ValueError(
                f"{who}: the {what} must be {want} for {space}, got shape {shape}{shown}. "
                f"Pass {'a scalar' if space.shape == () else 'one entry per sub-action'}; "
                f"{_BATCH_HINT}."
            )
    elif isinstance(space, spaces.Box):
        if kind not in "iuf":
            raise TypeError(
                f"{who}: {desc} has dtype {np.dtype(dtype).name}, but {space} takes "
                "numbers; pass a float array (e.g. jnp.asarray(a, jnp.float32))."
            )
        scalar_ok = shape == () and _size(space.shape) == 1
        if shape != space.shape and not scalar_ok:
            raise ValueError(
                f"{who}: the {what} must have shape {space.shape} for {space}, got shape "
                f"{shape}{shown}. Pass one value per action dimension; {_BATCH_HINT}."
            )


def action_problems(
    action: Any,
    space: Any,
    who: str,
    *,
    within_bounds: bool,
    xp: Any = np,
    what: str = "action",
) -> list[Problem]:
    """The valued checks of an action of the right dtype and shape (see `check_action_type`).

    Discrete entries must be in range; Box entries must be finite and, if `within_bounds`,
    inside `[low, high]` (plain environments clip instead, as Gymnasium's do).
    """
    a = action
    if isinstance(space, spaces.Discrete):
        n = space.n
        return [
            Problem(
                (a < 0) | (a >= n),
                a,
                lambda v: (
                    f"{who}: {what} {show(v)} is out of range: the valid {what}s are the "
                    f"integers 0..{n - 1} ({space}); pass one of them."
                ),
            )
        ]
    if isinstance(space, spaces.MultiDiscrete):
        nvec = space.nvec
        return [
            Problem(
                ~xp.all((a >= 0) & (a < nvec)),
                a,
                lambda v: (
                    f"{who}: {what} {show(v)} is out of range: entry i must be an integer in "
                    f"0..nvec[i]-1 for {space}; pass entries in range."
                ),
            )
        ]
    if isinstance(space, spaces.Box):
        out = [
            Problem(
                ~xp.all(xp.isfinite(a)),
                a,
                lambda v: (
                    f"{who}: {what} {show(v)} is not finite; a NaN or infinite action would "
                    "make the state NaN. Check the policy's output."
                ),
            )
        ]
        if within_bounds:
            low, high = space.low, space.high
            out.append(
                Problem(
                    ~xp.all((a >= low.reshape(np.shape(a))) & (a <= high.reshape(np.shape(a)))),
                    a,
                    lambda v: (
                        f"{who}: {what} {show(v)} is outside {space} "
                        f"(low {show(low)}, high {show(high)}); clip it to the bounds first "
                        "(the plain environment clips it silently, as Gymnasium's do), or "
                        "pass allow_out_of_bounds=True to checked()."
                    ),
                )
            )
        return out
    return []


def check_action(action: Any, space: Any, who: str, *, what: str = "action") -> None:
    """Raise `TypeError`/`ValueError` for a concrete action that `space` does not accept.

    Traced actions are not checked (each environment documents what they do). Bounds of a
    `Box` are not checked: environments clip continuous actions, as Gymnasium's do.
    """
    if type(action) is int and isinstance(space, spaces.Discrete) and 0 <= action < space.n:
        return  # the common case, without numpy
    if is_traced(action):
        return
    a = as_array(action, f"{who}: the {what}")
    check_action_type(action, a.dtype, a.shape, space, who, what)
    enforce(action_problems(a, space, who, within_bounds=False, xp=np, what=what))


def check_discrete_action(action: Any, n: int, who: str, *, what: str = "action") -> None:
    """Raise if a concrete (not traced) `action` is not one integer in `0 .. n-1`.

    `TypeError` for a non-integer dtype, `ValueError` for a wrong shape or a value out of
    range. Traced actions are not checked (each environment documents what happens then).
    """
    check_action(action, spaces.Discrete(n), who, what=what)


# ---------------------------------------------------------------------- observations


def observation_problems(obs: Any, space: Any, who: str, *, within_space: bool) -> list[Problem]:
    """Checks of an environment's output: dtype and shape raise at once; finiteness and
    (if `within_space`) membership of `space` become `Problem`s (jax flags, staged or not).
    """
    leaves = jax.tree.leaves(obs)
    if len(leaves) != 1 or space is None:
        return [_finite_problem(leaf, f"{who}: observation") for leaf in leaves]
    o = jnp.asarray(leaves[0])
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete | spaces.Box):
        shape_ok = o.shape == space.shape
        if not shape_ok:
            raise ValueError(
                f"{who}: the observation has shape {o.shape}, but {space} has shape "
                f"{space.shape}; the environment does not emit what observation_space says."
            )
    if isinstance(space, spaces.Discrete | spaces.MultiDiscrete) and o.dtype.kind not in "iu":
        raise ValueError(
            f"{who}: the observation has dtype {o.dtype.name}, but {space} holds integers."
        )
    out = [] if o.dtype.kind in "iub" else [_finite_problem(o, f"{who}: observation")]
    if within_space and isinstance(space, spaces.Discrete | spaces.MultiDiscrete | spaces.Box):
        out.append(
            Problem(
                ~space.contains(o),
                o,
                lambda v: (
                    f"{who}: observation {show(v)} is outside the observation space {space}"
                    + (
                        f" (low {show(space.low)}, high {show(space.high)})"
                        if isinstance(space, spaces.Box)
                        else ""
                    )
                    + "; stepping on after `terminated` can leave it (reset first), or the "
                    "environment or its parameters are wrong."
                ),
            )
        )
    return out


def _finite_problem(x: Any, what: str) -> Problem:
    x = jnp.asarray(x)
    bad = ~jnp.all(jnp.isfinite(x)) if x.dtype.kind in "fc" else jnp.asarray(False)
    return Problem(bad, x, lambda v: f"{what} {show(v)} is not finite (NaN or infinite).")


def finite_problem(x: Any, what: str) -> Problem:
    """A problem that is bad where `x` holds a NaN or an infinity."""
    return _finite_problem(x, what)


# ---------------------------------------------------------------------- parameters


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(float(x))


@dataclasses.dataclass(frozen=True)
class Bounds:
    """The valid values of one numeric parameter field: finite, optionally whole, in limits.

    Arrays (batched parameters, per-cell tables) are checked entry by entry.
    """

    low: float = -math.inf
    """Lower limit (`-inf`: none)."""
    high: float = math.inf
    """Upper limit (`inf`: none)."""
    low_open: bool = False
    """Whether `low` itself is excluded."""
    high_open: bool = False
    """Whether `high` itself is excluded."""
    whole: bool = False
    """Whether the value must be a whole number."""
    meaning: str = ""
    """What the field is, for the message (e.g. "the pole's mass, kg")."""

    def holds(self, x: Any, xp: Any = np) -> Any:
        """Entry-wise whether `x` is valid (numpy or jax bools, as `xp`)."""
        ok = xp.isfinite(x)
        if self.low > -math.inf:
            ok = ok & ((x > self.low) if self.low_open else (x >= self.low))
        if self.high < math.inf:
            ok = ok & ((x < self.high) if self.high_open else (x <= self.high))
        if self.whole:
            ok = ok & (x == xp.floor(x))
        return ok

    def holds_number(self, x: float) -> bool:
        """`holds` for one Python number, without numpy (the common, fast case)."""
        if not math.isfinite(x):
            return False
        if self.low > -math.inf and (x <= self.low if self.low_open else x < self.low):
            return False
        if self.high < math.inf and (x >= self.high if self.high_open else x > self.high):
            return False
        return not self.whole or float(x).is_integer()

    def describe(self) -> str:
        """The valid range in words, e.g. "a finite number > 0"."""
        kind = "a whole number" if self.whole else "a finite number"
        has_low, has_high = self.low > -math.inf, self.high < math.inf
        if has_low and has_high:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{kind} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if has_low:
            return f"{kind} {'>' if self.low_open else '>='} {_num(self.low)}"
        if has_high:
            return f"{kind} {'<' if self.high_open else '<='} {_num(self.high)}"
        return kind


def positive(meaning: str = "") -> Bounds:
    """A finite number > 0 (masses, lengths, time steps)."""
    return Bounds(0.0, low_open=True, meaning=meaning)


def nonnegative(meaning: str = "") -> Bounds:
    """A finite number >= 0 (standard deviations, costs)."""
    return Bounds(0.0, meaning=meaning)


def finite(meaning: str = "") -> Bounds:
    """Any finite number (rewards, offsets)."""
    return Bounds(meaning=meaning)


def between(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False, meaning: str = ""
) -> Bounds:
    """A finite number between `low` and `high` (open ends as asked)."""
    return Bounds(low, high, low_open, high_open, meaning=meaning)


def discount(meaning: str = "the discount of the exact MDP") -> Bounds:
    """A discount factor in `[0, 1]`."""
    return Bounds(0.0, 1.0, meaning=meaning)


def count(meaning: str = "", *, low: int = 1) -> Bounds:
    """A whole number >= `low` (1 unless given)."""
    return Bounds(float(low), whole=True, meaning=meaning)


def bounded(default: Any, bounds: Bounds) -> Any:
    """A parameter field with its default and its valid values, declared together.

    `field: float = bounded(1.0, positive("the cart's mass, kg"))` in an `EnvParams` class;
    `field_bounds_of` reads the bounds back, `check_param_fields` and `checked` check them.
    """
    return dataclasses.field(default=default, metadata={"bounds": bounds})


def episode_limit(default: int) -> Any:
    """The `max_steps_in_episode` field: a whole number of steps >= 1, `default` unless given."""
    return bounded(default, count("steps until truncation"))


def field_bounds_of(params: Any) -> dict[str, Bounds]:
    """The bounds of the fields of `params` (or of a params class) declared with `bounded`.

    Empty for objects that are not dataclasses.
    """
    if not dataclasses.is_dataclass(params):
        return {}
    return {
        f.name: f.metadata["bounds"] for f in dataclasses.fields(params) if "bounds" in f.metadata
    }


def _default_of(params: Any, name: str) -> Any:
    for f in dataclasses.fields(params):
        if f.name == name and f.default is not dataclasses.MISSING:
            return f.default
    return None


def _param_message(params: Any, name: str, bounds: Bounds, value: np.ndarray) -> str:
    where = f"{type(params).__name__}.{name}"
    got = show(value)
    v = np.asarray(value)
    if v.ndim > 0:
        bad = np.argwhere(~np.asarray(bounds.holds(v.astype(np.float64), np)))
        if len(bad):
            idx = tuple(int(i) for i in bad[0])
            got += f" (entry {idx[0] if len(idx) == 1 else idx} is {show(v[idx])})"
    meaning = f" ({bounds.meaning})" if bounds.meaning else ""
    default = _default_of(params, name)
    hint = (
        f"; the default is {default!r}"
        if isinstance(default, int | float) and not isinstance(default, bool)
        else ""
    )
    return f"{where} must be {bounds.describe()}{meaning}, got {got}{hint}."


def check_param_fields(params: Any) -> None:
    """Raise for concrete fields of `params` outside their declared bounds (`bounded`).

    Traced fields are skipped (`param_problems` stages them for `checked`). A field holding
    one number has its type checked by `bellmax.core.checks.check_number` (the rule every
    config follows); arrays (batched parameters, per-cell tables) entry by entry.

    Raises:
      TypeError: a field holds no number (None, a string, a bool).
      ValueError: a field's value (any entry of an array) is outside its bounds.
    """
    owner = type(params).__name__
    for name, bounds in field_bounds_of(params).items():
        value = getattr(params, name)
        if is_traced(value):
            continue
        if not isinstance(value, np.ndarray | jax.Array | list | tuple):
            try:
                number = check_number(value, name, owner=owner, finite=False)  # TypeError
            except ValueError:  # NaN: refused below with the field's bounds and meaning
                number = math.nan
            if not bounds.holds_number(number):
                raise ValueError(_param_message(params, name, bounds, np.asarray(value)))
            continue
        where = f"{owner}.{name}"
        a = as_array(value, where)
        if a.dtype.kind == "b":
            raise TypeError(f"{where} must be a number, got the bool array {show(value)}.")
        if not np.all(bounds.holds(a.astype(np.float64), np)):
            raise ValueError(_param_message(params, name, bounds, a))


def _prefixed(who: str, message: Callable[[np.ndarray], str]) -> Callable[[np.ndarray], str]:
    return lambda v: f"{who}: {message(v)}" if who else message(v)


def param_problems(params: Any, who: str = "") -> list[Problem]:
    """The bounds of the traced fields of `params`, as staged `Problem`s (`who` prefixes)."""
    out = []
    for name, bounds in field_bounds_of(params).items():
        value = getattr(params, name)
        if not is_traced(value):
            continue
        out.append(
            Problem(
                ~jnp.all(bounds.holds(jnp.asarray(value), jnp)),
                value,
                _prefixed(who, functools.partial(_param_message, params, name, bounds)),
            )
        )
    return out


def check_params_type(params: Any, expected: type, env_name: str) -> None:
    """Raise `TypeError` unless `params` is an `expected` (the environment's params class)."""
    if not isinstance(params, expected):
        raise TypeError(
            f"{env_name} needs {expected.__name__}, got {type(params).__name__}; use "
            f"env.default_params or bellmax.make({env_name!r}) (with keyword overrides)."
        )
