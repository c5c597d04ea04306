"""Flax networks for deep RL: an MLP, an actor-critic and a Q-network, orthogonally initialised.

Hidden layers use orthogonal weights with gain `sqrt(2)` and zero biases; a policy head uses
gain 0.01 (near-uniform first policy), a value head gain 1 (Huang et al. 2022, "The 37
implementation details of PPO", detail 2; Saxe et al. 2014). Inputs are flat `[..., D]`
float features: `flatten_obs` turns any observation batch into them (one-hot for
`Discrete` observations).

    net = ActorCritic(action_dim=2, discrete=True)
    params = net.init(key, jnp.zeros((1, 4)))
    dist, value = net.apply(params, obs)        # Categorical [B], value [B]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int_sequence
from bellmax.core.errors import unknown_name
from bellmax.deep.distributions import Categorical, DiagGaussian
from bellmax.envs import spaces

ACTIVATIONS = {
    "tanh": nn.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "leaky_relu": nn.leaky_relu,
}
"""Activation names accepted by the networks."""


def activation_fn(name: str):
    """The activation function called `name` (one of `ACTIVATIONS`)."""
    if name not in ACTIVATIONS:
        raise unknown_name(
            "activation", name, ACTIVATIONS, hint=f"Known: {', '.join(sorted(ACTIVATIONS))}.",
            listed=True,
        )  # fmt: skip
    return ACTIVATIONS[name]


def check_hidden_sizes(
    hidden_sizes: Sequence[int], *, field: str = "hidden_sizes", owner: str = ""
) -> tuple[int, ...]:
    """Layer widths: a list or tuple of positive ints, returned as a tuple.

    Raises:
      TypeError: not a sequence of ints; ValueError: a width below 1.
    """
    return check_int_sequence(hidden_sizes, field, owner=owner, low=1)


def orthogonal(gain: float):
    """Orthogonal weight initialiser with the given gain, safe to vmap over seeds.

    Draws exactly what `flax.linen.initializers.orthogonal(gain)` draws. Under `jax.vmap`
    (seeds, hyperparameters) the QR factorisation behind it runs one matrix at a time
    (`jax.custom_batching.sequential_vmap`) instead of as one batched LAPACK call: jaxlib
    0.10's batched LAPACK kernels split a large batch over XLA's intra-op thread pool from a
    thread of that same pool and block until it is done, so two such calls running at once
    on a 2-core machine occupy every worker and the process hangs. Initialisation runs once
    per run, so the loop costs nothing measurable.
    """
    base = nn.initializers.orthogonal(gain)

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        draw = jax.custom_batching.sequential_vmap(lambda k: base(k, shape, dtype))
        return draw(key)

    return init


def flatten_obs(obs: jax.Array, space: Any) -> jax.Array:
    """Observations `[*batch, *space.shape]` as float32 features `[*batch, D]`.

    `Discrete(n)` observations become one-hot vectors of size `n`; `MultiDiscrete` become
    concatenated one-hots; everything else is flattened and cast to float32.
    """
    if isinstance(space, spaces.Discrete):
        return jax.nn.one_hot(obs, space.n, dtype=jnp.float32)
    if isinstance(space, spaces.MultiDiscrete):
        parts = [jax.nn.one_hot(obs[..., i], int(n)) for i, n in enumerate(space.nvec)]
        return jnp.concatenate(parts, axis=-1).astype(jnp.float32)
    nd = len(space.shape)
    batch = obs.shape[: obs.ndim - nd]
    return jnp.asarray(obs, jnp.float32).reshape(*batch, -1)


def obs_size(space: Any) -> int:
    """The feature size `D` that `flatten_obs` produces for `space`."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(math.prod(space.shape))


class MLP(nn.Module):
    """A multilayer perceptron `[..., D] -> [..., hidden_sizes[-1]]` (or `output_size`).

    Attributes:
      hidden_sizes: widths of the hidden layers.
      activation: name of the hidden activation (see `ACTIVATIONS`).
      output_size: a final linear layer of this width (no activation); `None` for none.
      output_gain: orthogonal gain of the output layer.
    """

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    output_size: int | None = None
    output_gain: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for width in self.hidden_sizes:
            x = nn.Dense(width, kernel_init=orthogonal(math.sqrt(2.0)))(x)
            x = act(x)
        if self.output_size is not None:
            x = nn.Dense(self.output_size, kernel_init=orthogonal(self.output_gain))(x)
        return x


class ActorCritic(nn.Module):
    """A policy and a state-value function (Sutton & Barto 2018, section 13.5).

    `__call__(x [..., D])` returns `(dist, value [...])` with `dist` a `Categorical` over
    `action_dim` actions (`discrete=True`) or a `DiagGaussian` with a state-independent
    learned log-std (`discrete=False`).

    Attributes:
      action_dim: number of actions (discrete) or action dimensions (continuous).
      discrete: categorical (True) or Gaussian (False) policy.
      hidden_sizes: widths of the hidden layers (of each torso when not shared).
      activation: hidden activation name.
      shared_torso: one torso feeding both heads (True) or separate actor and critic MLPs.
      log_std_init: initial log standard deviation of the Gaussian.
    """

    action_dim: int
    discrete: bool = True
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False
    log_std_init: float = 0.0

    def setup(self) -> None:
        if self.shared_torso:
            self.torso = MLP(self.hidden_sizes, self.activation)
        else:
            self.actor_torso = MLP(self.hidden_sizes, self.activation)
            self.critic_torso = MLP(self.hidden_sizes, self.activation)
        self.policy_head = nn.Dense(self.action_dim, kernel_init=orthogonal(0.01))
        self.value_head = nn.Dense(1, kernel_init=orthogonal(1.0))
        if not self.discrete:
            self.log_std = self.param(
                "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
            )

    def _torsos(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.shared_torso:
            h = self.torso(x)
            return h, h
        return self.actor_torso(x), self.critic_torso(x)

    def _dist(self, h: jax.Array):
        out = self.policy_head(h)
        if self.discrete:
            return Categorical(out)
        return DiagGaussian(out, self.log_std)

    def __call__(self, x: jax.Array):
        ha, hc = self._torsos(x)
        return self._dist(ha), self.value_head(hc)[..., 0]

    def policy(self, x: jax.Array):
        """The action distribution alone (`apply(..., method="policy")`)."""
        h = self.torso(x) if self.shared_torso else self.actor_torso(x)
        return self._dist(h)

    def value(self, x: jax.Array) -> jax.Array:
        """The state value alone, `[...]` (`apply(..., method="value")`)."""
        h = self.torso(x) if self.shared_torso else self.critic_torso(x)
        return self.value_head(h)[..., 0]


class QNetwork(nn.Module):
    """Action values `Q(s, .)`: `[..., D] -> [..., num_actions]` (Mnih et al. 2015).

    Attributes:
      num_actions: number of discrete actions.
      hidden_sizes: widths of the hidden layers.
      activation: hidden activation name.
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, self.activation, self.num_actions, 1.0)(x)
