"""Helpers shared by the tabular worlds: host-side arrays and a sampled model.

`sample_model` steps a `TabularEnvironment` many times from every `(state, action)` (all
vmapped) and tallies next states and rewards; `SampledModel.disagreements(mdp)` lists where
those frequencies leave a statistical band around the exact `TabularMDP`. This is how the
tests show that each world's sampled env and exact model are the same process.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.display import summary_repr
from bellmax.core.mdp import TabularMDP
from bellmax.envs._checks import is_traced

__all__ = [
    "SampledModel",
    "host_array",
    "is_traced",
    "require_concrete",
    "sample_model",
    "uniform_int",
]


def uniform_int(key: jax.Array, n: int, shape: tuple[int, ...] = ()) -> jax.Array:
    """Uniform integers in `0 .. n-1` (int32 of `shape`, jittable; `n` static and small).

    Taken modulo `n` from 32 random bits: the bias, below `n / 2**32`, is negligible for the
    small `n` of the tabular worlds, and it compiles several times faster than
    `jax.random.randint`, which matters for tests that jit many environments.
    """
    return (jax.random.bits(key, shape, jnp.uint32) % jnp.uint32(n)).astype(jnp.int32)


def require_concrete(params: Any, what: str) -> None:
    """Raise `TypeError` if `params` holds traced values: `what` builds host-side arrays."""
    if is_traced(params):
        raise TypeError(
            f"{what} builds numpy arrays on the host and needs concrete parameters; call it "
            "outside jit/vmap (e.g. env.tabular_mdp(env.default_params))."
        )


def host_array(x: Any, name: str) -> np.ndarray:
    """`x` as a numpy array, or a clear error if it is missing (host-side checks)."""
    if x is None:
        raise ValueError(f"{name} is missing; start from the environment's default_params.")
    return np.asarray(x)


@dataclasses.dataclass(frozen=True)
class SampledModel:
    """Empirical transition frequencies and reward statistics of a sampled environment."""

    __repr__ = summary_repr

    P: np.ndarray
    """Next-state frequencies `[S, A, S]` (the sampled states' rows; others are zero)."""
    R_mean: np.ndarray
    """Mean sampled reward `[S, A]`."""
    R_std: np.ndarray
    """Standard deviation of the sampled reward `[S, A]`."""
    P_terminated: np.ndarray
    """Frequencies `[S, A, S]` of landing in `s'` with `terminated` true."""
    states: np.ndarray
    """The state indices that were sampled from."""
    num_samples: int
    """Steps per `(state, action)`."""

    def disagreements(self, mdp: TabularMDP, *, z: float = 6.0, atol: float = 1e-5) -> list[str]:
        """Where the samples contradict `mdp`, as readable lines (empty when they agree).

        A next state the model gives probability 0 must never be sampled; a frequency must be
        within `z` binomial standard deviations (plus `3 / N` for rare events) of `P`; a mean
        reward within `z` standard errors (plus `atol`) of `R`; `terminated` must match
        `mdp.terminal` of the next state exactly.
        """
        P = mdp.dense_P()[self.states]
        R = np.asarray(mdp.R, dtype=np.float64)[self.states]
        f = self.P[self.states]
        n = self.num_samples
        out: list[str] = []

        def first(mask: np.ndarray) -> tuple[int, ...]:
            return tuple(int(v) for v in np.argwhere(mask)[0])

        impossible = (P == 0) & (f > 0)
        if impossible.any():
            i, a, t = first(impossible)
            out.append(
                f"from s={self.states[i]} a={a}: sampled s'={t} that the MDP gives probability 0"
            )
        band = z * np.sqrt(np.clip(P * (1 - P), 0, None) / n) + 3.0 / n + atol
        far = np.abs(f - P) > band
        if far.any():
            i, a, t = first(far)
            out.append(
                f"from s={self.states[i]} a={a}: P(s'={t}) sampled {f[i, a, t]:.5f} vs exact {P[i, a, t]:.5f}"
            )
        r_band = z * self.R_std[self.states] / np.sqrt(n) + atol
        off = np.abs(self.R_mean[self.states] - R) > r_band
        if off.any():
            i, a = first(off)
            out.append(
                f"from s={self.states[i]} a={a}: mean reward sampled {self.R_mean[self.states][i, a]:.5f} "
                f"vs exact {R[i, a]:.5f}"
            )
        terminal = np.zeros(P.shape[-1], bool) if mdp.terminal is None else np.asarray(mdp.terminal)
        bad_term = self.P_terminated[self.states] != np.where(terminal, f, 0.0)
        if bad_term.any():
            i, a, t = first(bad_term)
            out.append(
                f"from s={self.states[i]} a={a}: terminated flag on reaching s'={t} disagrees "
                f"with mdp.terminal[{t}] = {bool(terminal[t])}"
            )
        return out


def sample_model(
    env: Any,
    params: Any,
    mdp: TabularMDP,
    key: jax.Array,
    *,
    num_samples: int,
    states: Any = None,
    batch_size: int | None = None,
) -> SampledModel:
    """Step `env` `num_samples` times from each `(state, action)` and tally what happens.

    Args:
      env: a tabular environment with `state_from_index(s)` and `state_index(state)`.
      params: its parameters.
      mdp: the exact model (for `S` and `A`).
      key: random key.
      num_samples: steps per `(state, action)`.
      states: state indices to start from (default: all).
      batch_size: steps run at once (a memory knob; default: all at once).

    Returns:
      A `SampledModel` (rows of states not sampled are zero).
    """
    S, A = mdp.shape
    states = np.arange(S) if states is None else np.asarray(states, dtype=np.int64)
    n, N = len(states), int(num_samples)
    # One flat vmap over every (state, action, sample): nested vmaps of random draws compile
    # several times slower on CPU.
    s_flat = jnp.asarray(np.repeat(states, A * N), jnp.int32)
    a_flat = jnp.asarray(np.tile(np.repeat(np.arange(A), N), n), jnp.int32)
    keys = jax.random.split(key, n * A * N)

    def one(args):
        s, a, k = args
        _, nxt, r, term, _, _ = env.step(k, env.state_from_index(s), a, params)
        return env.state_index(nxt), r, term

    if batch_size is None or batch_size >= n * A * N:
        run = jax.jit(jax.vmap(one))
    else:
        run = jax.jit(lambda xs: jax.lax.map(one, xs, batch_size=batch_size))
    nxt, r, term = (np.asarray(x) for x in run((s_flat, a_flat, keys)))
    cell = (np.repeat(np.arange(n * A), N) * S + nxt).astype(np.int64)
    P, P_term = np.zeros((S, A, S)), np.zeros((S, A, S))
    P[states] = np.bincount(cell, minlength=n * A * S).reshape(n, A, S) / N
    P_term[states] = np.bincount(cell, term.astype(np.float64), n * A * S).reshape(n, A, S) / N
    r = r.astype(np.float64).reshape(n, A, N)
    R_mean, R_std = np.zeros((S, A)), np.zeros((S, A))
    R_mean[states], R_std[states] = r.mean(axis=2), r.std(axis=2)
    return SampledModel(
        P=P, R_mean=R_mean, R_std=R_std, P_terminated=P_term, states=states, num_samples=N
    )
