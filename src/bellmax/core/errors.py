"""Errors raised by bellmax for bad input, and helpers that format them.

Every error names the bad value and says how to fix it (DESIGN.md rule 9).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BellmaxError(Exception):
    """Base class of bellmax's own errors."""


class InvalidMDPError(BellmaxError, ValueError):
    """A tabular MDP whose arrays do not describe a valid Markov decision process."""


class UnknownNameError(BellmaxError, KeyError, ValueError):
    """A name (environment id, algorithm, model) that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class DivergenceError(BellmaxError, FloatingPointError):
    """A run whose numbers became non-finite; the message says where."""


class MissingDependencyError(BellmaxError, ImportError):
    """An optional package or program a feature needs is not installed; the message says how
    to install it (an `ImportError`, so `except ImportError` still catches it)."""


#: Config fields that the `bellmax` commands' options spell otherwise (`bellmax train
#: --total-steps` sets `total_timesteps`). Each spelling is also an alias of its field
#: (`NAME_ALIASES`), so `--set total_steps=...` and `total_steps=` in Python are understood.
OPTION_NAMES: dict[str, str] = {"total_timesteps": "total_steps"}

#: Names users bring from other libraries (Stable-Baselines3, CleanRL) or abbreviate, and the
#: bellmax Config field each means (the commands' own spellings, `OPTION_NAMES`, included):
#: `unknown_name` suggests the field (when it is among the known names) instead of a merely
#: similar spelling (`lr` is `learning_rate`, not `anneal_lr`). Keys are lower case with `_`
#: for `-`; `alias_for` looks names up.
NAME_ALIASES: dict[str, str] = {
    "lr": "learning_rate",
    "step_size": "learning_rate",
    "discount": "gamma",
    "lam": "gae_lambda",
    "lambda": "gae_lambda",
    "gae": "gae_lambda",
    "n_envs": "num_envs",
    "envs": "num_envs",
    "n_steps": "num_steps",
    "n_epochs": "num_epochs",
    "epochs": "num_epochs",
    "update_epochs": "num_epochs",
    "clip_range": "clip_eps",
    "clip_coef": "clip_eps",
    "clip": "clip_eps",
    "entropy_coef": "ent_coef",
    "entropy": "ent_coef",
    "value_coef": "vf_coef",
    "grad_clip": "max_grad_norm",
    "batch": "batch_size",
    "bs": "batch_size",
    "timesteps": "total_timesteps",
    **{option: field for field, option in OPTION_NAMES.items()},
    "hidden": "hidden_sizes",
    "net_arch": "hidden_sizes",
    "buffer": "buffer_size",
    "train_freq": "train_frequency",
    "target_update_freq": "target_update_interval",
    "policy_frequency": "policy_delay",
    "policy_freq": "policy_delay",
    "policy_noise": "target_policy_noise",
    "noise_clip": "target_noise_clip",
    "alpha": "init_temperature",
}


def alias_for(name: str, known: Iterable[str]) -> str | None:
    """The known name that `name` is a common alias of (`NAME_ALIASES`), or None.

    `name` may be written as an option (`--lr`, `n-envs`); the alias counts only when its
    target is in `known` (a Config without `gae_lambda` suggests nothing for `lam`)."""
    key = name.strip().lstrip("-").lower().replace("-", "_")
    target = NAME_ALIASES.get(key)
    return target if target is not None and target in set(known) else None


def unknown_name(
    kind: str, name: str, known: Iterable[str], *, hint: str = "", listed: bool = False
) -> UnknownNameError:
    """Build an error for an unknown `name`, listing the closest known names.

    A common alias (`NAME_ALIASES`: `lr` for `learning_rate`) suggests its name alone.
    Without a close match every known name is listed ("Known: ..."), unless `listed`: the
    `hint` lists them itself (in an order or form of the caller's)."""
    known = sorted(known)
    alias = alias_for(name, known)
    close = (
        [alias] if alias is not None else difflib.get_close_matches(name, known, n=5, cutoff=0.4)
    )
    if not close:  # fall back to case-insensitive substring matches
        low = name.lower()
        close = [k for k in known if low in k.lower() or k.lower() in low][:5]
    msg = f"unknown {kind} {name!r}."
    if close:
        msg += " Did you mean: " + ", ".join(repr(c) for c in close) + "?"
    elif not listed:
        msg += " Known: " + ", ".join(known) + "."
    if hint:
        msg += " " + hint
    return UnknownNameError(msg)
