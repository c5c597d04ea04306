"""The environment registry: `bellmax.make(env_id) -> (env, params)`.

Entries are imported lazily, so listing them is cheap. An id resolves, in this order:

1. `gymnax:<name>` is gymnax's own environment `<name>` (`gymnax.make`), run inside `jit`
   through the bridge in `bellmax.envs.gymnax` (the only module that imports gymnax); a name
   gymnax lacks is an error listing gymnax's ids, never another library's environment.
2. A registered bellmax id (`CartPole-v1`).
3. Anything else is Gymnasium's (`gymnasium:CartPole-v1`, `module:EnvName-v0`, bare
   Gymnasium ids), reached through `resolve_env` and the host-side bridge in
   `bellmax.envs.gymnasium`, the only module that imports gymnasium.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from bellmax.core.errors import UnknownNameError, unknown_name

if TYPE_CHECKING:  # the registry itself loads without JAX (`bellmax envs`)
    from bellmax.envs.environment import Environment, EnvParams


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """How to build one registered environment."""

    id: str
    """Registered id, e.g. `CartPole-v1`."""
    entry_point: str
    """`module:ClassName` of the environment class."""
    description: str
    """One line for `bellmax envs`."""
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Constructor keyword arguments."""
    gymnasium_id: str | None = None
    """The Gymnasium environment this one reproduces, if any."""
    tabular: bool = False
    """Whether the environment also exists as an exact `TabularMDP`."""

    def load(self) -> type[Environment]:
        module, _, attr = self.entry_point.partition(":")
        return getattr(importlib.import_module(module), attr)


_REGISTRY: dict[str, EnvSpec] = {}

#: The prefix of gymnax's own environments' ids: `gymnax:CartPole-v1`.
GYMNAX_PREFIX = "gymnax:"


def register(spec: EnvSpec, *, overwrite: bool = False) -> None:
    """Add an environment to the registry."""
    if spec.id in _REGISTRY and not overwrite:
        raise ValueError(f"environment id {spec.id!r} is already registered; pass overwrite=True.")
    _REGISTRY[spec.id] = spec


def registered() -> list[str]:
    """All registered ids, sorted."""
    return sorted(_REGISTRY)


def _check_env_id(env_id: Any, who: str) -> None:
    """Raise `TypeError` unless `env_id` is a string (an environment id)."""
    if not isinstance(env_id, str):
        from bellmax.envs.environment import Environment

        hint = (
            " To use an environment object, call its reset/step directly."
            if isinstance(env_id, Environment)
            else ""
        )
        raise TypeError(
            f"{who} takes an environment id, a string such as 'CartPole-v1' (see "
            f"bellmax.registered() or `bellmax envs`), got {env_id!r} "
            f"({type(env_id).__name__}).{hint}"
        )


def spec(env_id: str) -> EnvSpec:
    """The registry entry of `env_id`; unknown ids raise with the closest matches.

    Raises:
      TypeError: `env_id` is not a string.
      UnknownNameError: (a `ValueError` and `KeyError`) no environment has that id.
    """
    _check_env_id(env_id, "spec")
    try:
        return _REGISTRY[env_id]
    except KeyError:
        raise unknown_env_error(env_id) from None


def imported_module(env_id: str) -> str | None:
    """The module that making `env_id` imports (`module:EnvName-v0`, Gymnasium's way of
    naming a package that registers its environments), or None (a bellmax, gymnax or plain
    Gymnasium id)."""
    if not isinstance(env_id, str) or is_registered(env_id):
        return None
    module = _split_prefix(env_id)[0][:-1]  # ("module:", name): the module, its colon off
    return None if module in ("", "gymnasium") else module


def _split_prefix(env_id: str) -> tuple[str, str]:
    """`("gymnasium:", "CartPole-v1")` for a `module:Name` id, `("", env_id)` otherwise."""
    module, sep, name = env_id.rpartition(":")
    return (module + sep, name) if module and name else ("", env_id)


def _close_ids(name: str, candidates: Iterable[str]) -> list[str]:
    """The ids in `candidates` closest to `name`: a case-insensitive equal alone if there is
    one, else up to five close spellings, those in `name`'s own namespace (`phys2d/`,
    `bellmax/`, none) first, so `Cartpole-v1` is not offered `phys2d/CartPole-v1`."""
    pool = sorted(candidates)
    same_case = [c for c in pool if c.lower() == name.lower()]
    if same_case:
        return same_case[:1]
    space = name.rpartition("/")[0]
    for part in ([c for c in pool if c.rpartition("/")[0] == space], pool):
        close = difflib.get_close_matches(name, part, n=5, cutoff=0.6)
        if close:
            return close
    return []


def unknown_env_error(
    env_id: str,
    gymnasium_ids: Iterable[str] | None = None,
    *,
    gymnax_ids: Iterable[str] | None = None,
) -> UnknownNameError:
    """The one error for an environment id nobody knows, with suggestions the caller can use.

    An unprefixed id is matched against bellmax's ids first, then (where the caller takes
    Gymnasium ids: `gymnasium_ids` given) Gymnasium's; a prefixed id (`gymnasium:Name`,
    `module:Name`) is matched against Gymnasium's and the suggestions keep the user's prefix.
    Without `gymnasium_ids` (`bellmax.make`, `spec`), a prefixed id is a Gymnasium id that
    `bellmax.make` cannot build, and the message says where it runs instead. A `gymnax:` id
    (`gymnax_ids` given) is matched against gymnax's ids only, never another library's; a
    bellmax id behind the prefix is offered without it.

    Args:
      env_id: the unknown id, as the user wrote it.
      gymnasium_ids: Gymnasium's registered ids, when the caller accepts them (the
        Gymnasium bridge passes them; this module never imports gymnasium).
      gymnax_ids: gymnax's environment names, without the prefix (the gymnax bridge passes
        them; this module never imports gymnax).
    """
    prefix, name = _split_prefix(env_id)
    ours = _close_ids(name, _REGISTRY)
    if gymnax_ids is not None and prefix == GYMNAX_PREFIX:
        known = [prefix + k for k in sorted(gymnax_ids)]
        close = [name] if name in _REGISTRY else [prefix + c for c in _close_ids(name, gymnax_ids)]
        # every id only when none is close, as for bellmax's own ids
        listing = "" if close else "gymnax's ids: " + ", ".join(known) + "."
        return unknown_name("gymnax environment", env_id, close, hint=listing, listed=True)
    if gymnasium_ids is None:
        if prefix:
            twin = ours[0] if ours and ours[0].lower() == name.lower() else None
            also = f" bellmax's own JAX version is bellmax.make({twin!r})." if twin else ""
            return UnknownNameError(
                f"bellmax.make builds bellmax's pure-JAX environments only, and {env_id!r} is "
                f"a Gymnasium id (`{prefix}Name` is Gymnasium's environment Name, stepped on "
                f"the host). Run it through make_train(config, {env_id!r}) of a learner in "
                f"bellmax.deep, `bellmax train ALGO --env {env_id}`, or "
                f"bellmax.envs.gymnasium.make_host_vector_env({env_id!r}).{also}"
            )
        suggestions = ours
        hint = (
            "gymnax ids (`gymnax:CartPole-v1`) work in bellmax.make, Gymnasium ids "
            "(`gymnasium:CartPole-v1`) in make_train and `bellmax train`; `bellmax envs` "
            "lists bellmax's."
        )
    else:
        gym = list(gymnasium_ids)
        if prefix:
            # a bellmax id behind a prefix Gymnasium lacks it under: dropping the prefix fixes it
            suggestions = (
                [name] if name in _REGISTRY else [prefix + c for c in _close_ids(name, gym)]
            )
        elif "/" in name:  # a namespaced id (`phys2d/CartPole-v1`) is Gymnasium's
            suggestions = _close_ids(name, gym) or ours
        else:
            suggestions = ours or _close_ids(name, gym)
        hint = (
            "`bellmax envs` lists bellmax's ids, `gymnasium.pprint_registry()` Gymnasium's "
            "(written `gymnasium:CartPole-v1`); `module:EnvName-v0` imports `module` first."
        )
    if not suggestions:  # nothing close: list bellmax's own ids, not a guess
        return unknown_name(
            "environment id",
            env_id,
            (),
            hint=f"bellmax ids: {', '.join(registered())}. {hint}",
            listed=True,
        )
    return unknown_name("environment id", env_id, suggestions, hint=hint)


def replace_params(params: EnvParams, **overrides: Any) -> EnvParams:
    """`params` with some fields replaced; unknown field names raise with the valid ones.

    Nested lists and tuples are taken as numpy arrays (array-likes, e.g. a grid's `wind`).
    The values are not checked here: `make` checks them with `env.check_params`.
    """
    if not overrides:
        return params
    names = [f.name for f in dataclasses.fields(params)]
    for key in overrides:
        if key not in names:
            raise unknown_name(
                f"parameter of {type(params).__name__}",
                key,
                names,
                hint=f"Valid fields: {', '.join(names)}.",
                listed=True,  # the hint lists them, in the order the dataclass declares them
            )
    return params.replace(
        **{k: np.asarray(v) if isinstance(v, list | tuple) else v for k, v in overrides.items()}
    )


def is_gymnax_id(env_id: Any) -> bool:
    """Whether `env_id` names a gymnax environment (`gymnax:CartPole-v1`)."""
    return isinstance(env_id, str) and env_id.startswith(GYMNAX_PREFIX)


def make(env_id: str, **param_overrides: Any) -> tuple[Environment, EnvParams]:
    """Build a registered bellmax environment (or a gymnax one) and its parameters.

    Args:
      env_id: a registered id (see `registered()` or `bellmax envs`), or `gymnax:<name>`
        for gymnax's own environment `<name>` (as a bellmax `Environment`:
        `bellmax.envs.gymnax.make_gymnax`; needs gymnax installed).
      **param_overrides: fields of the environment's `EnvParams` to change.

    Returns:
      `(env, params)`.

    Raises:
      TypeError: `env_id` is not a string, or an override holds no number.
      UnknownNameError: an unknown id (the close bellmax ids suggested), a Gymnasium id
        (`gymnasium:CartPole-v1`: the message says where those run), or an override that is
        not a field (the message lists the valid fields).
      ValueError: an override outside its valid range (e.g. `masspole=-1`), naming the
        field, the value and the range.
      ImportError: a `gymnax:` id without gymnax installed (the message says
        `pip install gymnax`).
    """
    _check_env_id(env_id, "bellmax.make")
    if is_gymnax_id(env_id):
        # Optional dependency: gymnax is imported only through its bridge, and only here.
        from bellmax.envs import gymnax as gymnax_bridge

        env, params = gymnax_bridge.make_gymnax(env_id, **param_overrides)
        env.check_params(params)
        return env, params
    s = spec(env_id)
    env = s.load()(**s.kwargs)
    params = replace_params(env.default_params, **param_overrides)
    env.check_params(params)
    return env, params


def is_registered(env_id: str) -> bool:
    """Whether bellmax resolves `env_id` itself, as a pure-JAX environment.

    True for a registered bellmax id and for every `gymnax:` id (which `make` builds through
    gymnax, raising if gymnax lacks the name or is not installed, so that no caller hands
    such an id to Gymnasium); False for Gymnasium ids and anything that is not a string.
    """
    return isinstance(env_id, str) and (env_id in _REGISTRY or is_gymnax_id(env_id))


@dataclasses.dataclass(frozen=True)
class ResolvedEnv:
    """What an environment id names: a bellmax environment or a Gymnasium host vector env.

    Exactly one of the two is set: `env` and `params` for a bellmax id, `host` (a
    `bellmax.envs.gymnasium.HostVectorEnv`) for anything Gymnasium resolves.
    """

    env: Environment | None = None
    """The bellmax environment (None for a Gymnasium id)."""
    params: EnvParams | None = None
    """Its parameters (None for a Gymnasium id)."""
    host: Any = None
    """The Gymnasium host vector environment (None for a bellmax id)."""

    @property
    def is_host(self) -> bool:
        """Whether the id is Gymnasium's (stepped on the host), not bellmax's."""
        return self.host is not None


def resolve_env(
    env_id: str, *, num_envs: int = 1, seed: int = 0, who: str = "resolve_env"
) -> ResolvedEnv:
    """A bellmax environment for a bellmax or gymnax id, else a Gymnasium host vector env.

    `gymnax:` ids are gymnax's environments (run in JAX, never Gymnasium's); bellmax ids
    come next; anything else is handed to Gymnasium (which accepts `module:EnvName-v0`).
    `gymnasium:CartPole-v1` therefore means Gymnasium's own CartPole.

    Args:
      env_id: a bellmax or Gymnasium id.
      num_envs: host environments to build (Gymnasium ids only).
      seed: seed of the host environments' first reset (Gymnasium ids only).
      who: the function messages name (a public caller's).

    Returns:
      A `ResolvedEnv`: `env`/`params` for a bellmax id, `host` for a Gymnasium one.

    Raises:
      TypeError: `env_id` is not a string.
      UnknownNameError: an id neither registry knows (the close matches of both listed).
    """
    _check_env_id(env_id, who)
    if is_registered(env_id):
        env, params = make(env_id)
        return ResolvedEnv(env=env, params=params)
    # Optional dependency: gymnasium is imported only through its bridge, and only here,
    # so that importing bellmax never imports it.
    from bellmax.envs import gymnasium as gym_bridge

    return ResolvedEnv(host=gym_bridge.make_host_vector_env(env_id, num_envs=num_envs, seed=seed))


def resolve(env_id: str, *, num_envs: int = 1, seed: int = 0) -> Any:
    """`(env, params)` for a bellmax id, else a Gymnasium host vector env.

    Kept for its callers; new code calls `resolve_env`, whose result has one type.
    """
    made = resolve_env(env_id, num_envs=num_envs, seed=seed)
    return made.host if made.is_host else (made.env, made.params)


_ENVS = "bellmax.envs"
for _spec in [
    EnvSpec(
        "CartPole-v1",
        f"{_ENVS}.cartpole:CartPole",
        "Gymnasium's CartPole-v1 exactly: balance a pole, 2 actions, 500 steps.",
        gymnasium_id="CartPole-v1",
    ),
    EnvSpec(
        "CartPoleSwingUp-v0",
        f"{_ENVS}.cartpole:CartPoleSwingUp",
        "CartPole physics, continuous force, start hanging down, swing up and balance.",
    ),
    EnvSpec(
        "Pendulum-v1",
        f"{_ENVS}.pendulum:Pendulum",
        "Gymnasium's Pendulum-v1 exactly: bounded torque swing-up.",
        gymnasium_id="Pendulum-v1",
    ),
    EnvSpec(
        "GaussianBandit-v0",
        f"{_ENVS}.bandit:GaussianBandit",
        "k-armed Gaussian bandit testbed (Sutton & Barto 2.3), arm means drawn per reset.",
    ),
    EnvSpec(
        "GridWorld4x4-v0",
        f"{_ENVS}.gridworlds:GridWorld4x4",
        "Sutton & Barto Example 4.1: 4x4 grid, two terminal corners, -1 per step.",
        tabular=True,
    ),
    EnvSpec(
        "GridWorld5x5-v0",
        f"{_ENVS}.gridworlds:GridWorld5x5",
        "Sutton & Barto Example 3.5: 5x5 grid with teleports A (+10) and B (+5).",
        tabular=True,
    ),
    EnvSpec(
        "CliffWalking-v0",
        f"{_ENVS}.gridworlds:CliffWalking",
        "Sutton & Barto Example 6.6: 4x12 grid, the cliff costs -100 and sends you back.",
        gymnasium_id="CliffWalking-v1",
        tabular=True,
    ),
    EnvSpec(
        "WindyGridworld-v0",
        f"{_ENVS}.gridworlds:WindyGridworld",
        "Sutton & Barto Example 6.5: 7x10 grid with an upward wind.",
        tabular=True,
    ),
    EnvSpec(
        "GamblersProblem-v0",
        f"{_ENVS}.gambler:GamblersProblem",
        "Sutton & Barto Example 4.3: bet on coin flips to reach 100.",
        tabular=True,
    ),
    EnvSpec(
        "JacksCarRental-v0",
        f"{_ENVS}.jacks:JacksCarRental",
        "Sutton & Barto Example 4.2: move cars between two Poisson rental sites.",
        tabular=True,
    ),
    EnvSpec(
        "Blackjack-v0",
        f"{_ENVS}.blackjack:Blackjack",
        "Sutton & Barto Example 5.1: infinite-deck blackjack (Gymnasium Blackjack-v1, sab=True).",
        gymnasium_id="Blackjack-v1",
        tabular=True,
    ),
    EnvSpec(
        "RandomWalk-v0",
        f"{_ENVS}.random_walk:RandomWalk",
        "Sutton & Barto Example 6.2: a 5-state random walk between two exits.",
        tabular=True,
    ),
    EnvSpec(
        "MaximizationBias-v0",
        f"{_ENVS}.maximization_bias:MaximizationBias",
        "Sutton & Barto Example 6.7: Q-learning's maximization bias (states A and B).",
        tabular=True,
    ),
    EnvSpec(
        "TicTacToe-v0",
        f"{_ENVS}.tictactoe:TicTacToe",
        "Two-player tic-tac-toe: board, player to move, legal-action mask, winner.",
    ),
    EnvSpec(
        "Tiger-v0",
        f"{_ENVS}.tiger:Tiger",
        "The tiger POMDP (Kaelbling et al. 1998): listen (85% right) or open a door.",
    ),
    EnvSpec(
        "PartialCartPole-v0",
        f"{_ENVS}.partially_observed:PartialCartPole",
        "CartPole-v1 seen only through noisy cart position and pole angle.",
    ),
    EnvSpec(
        "PartialPendulum-v0",
        f"{_ENVS}.partially_observed:PartialPendulum",
        "Pendulum-v1 seen only through a noisy angle (cos, sin), no velocity.",
    ),
]:
    register(_spec)
