"""Behaviour cloning: supervised learning of the expert's action (Pomerleau 1989; Ross et al.
2011, section 2).

The policy is a flax `MLP` (`bellmax.deep.networks`): logits for a `Discrete` action space,
trained by cross-entropy; the mean of a Gaussian for a `Box`, trained by mean squared error
(`loss="mse"`) or the Gaussian negative log-likelihood with a learned state-independent
log-std (`loss="nll"`). Training runs a fixed number of Adam steps on minibatches drawn from
the first `n` rows of arrays of a fixed capacity, so a dataset that grows round by round
(DAgger) reuses one compiled program. The greedy action is the arg-max / the mean clipped to
the action box, exactly what the written policy file (`bellmax.load_policy`) does.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from bellmax.core.checks import check_choice, check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.deep.networks import MLP, check_hidden_sizes, flatten_obs, obs_size
from bellmax.deep.optim import make_optimizer
from bellmax.envs import spaces

__all__ = [
    "BCConfig",
    "BCState",
    "act",
    "fit",
    "init_bc",
    "policy_header",
    "set_normalization",
    "to_policy",
    "write_policy",
]


@dataclasses.dataclass(frozen=True)
class BCConfig:
    """Behaviour cloning's network and optimiser."""

    hidden_sizes: Sequence[int] = (64, 64)
    """Widths of the MLP's hidden layers."""
    activation: str = "tanh"
    """Hidden activation (`bellmax.deep.networks.ACTIVATIONS`)."""
    learning_rate: float = 3e-3
    """Adam step size."""
    batch_size: int = 64
    """Labels per gradient step (drawn with replacement)."""
    steps: int = 400
    """Gradient steps per fit (per DAgger round)."""
    loss: Literal["mse", "nll"] = "mse"
    """Continuous actions: mean squared error of the mean, or Gaussian NLL (learned log-std)."""
    log_std_init: float = -1.0
    """Initial log-std of a Gaussian policy (fixed under "mse")."""

    def __post_init__(self):
        owner = "BCConfig"
        object.__setattr__(self, "hidden_sizes", check_hidden_sizes(self.hidden_sizes, owner=owner))
        check_number(self.learning_rate, "learning_rate", owner=owner, low=0, low_open=True)
        check_int(self.batch_size, "batch_size", owner=owner, low=1)
        check_int(self.steps, "steps", owner=owner, low=1)
        check_choice(self.loss, "loss", ("mse", "nll"), owner=owner)
        check_number(self.log_std_init, "log_std_init", owner=owner)


@struct.dataclass
class BCState:
    """The learner: its parameters and optimiser state."""

    __repr__ = summary_repr

    params: Any
    """`{"mlp": flax params, "obs_shift": [D], "obs_scale": [D], "log_std": [d]}` (log_std
    only for continuous actions; the input `(x - obs_shift) * obs_scale` is set once from
    data by `set_normalization` and not trained)."""
    opt_state: Any
    """Adam's state."""


def _output_size(action_space: spaces.Space) -> int:
    if isinstance(action_space, spaces.Discrete):
        return int(action_space.n)
    if isinstance(action_space, spaces.Box):
        return int(np.prod(action_space.shape))
    raise TypeError(
        f"behaviour cloning needs a Discrete or Box action space, got {action_space!r}."
    )


def _mlp(config: BCConfig, action_space: spaces.Space) -> MLP:
    return MLP(tuple(config.hidden_sizes), config.activation, _output_size(action_space))


def init_bc(
    key: jax.Array, config: BCConfig, observation_space: spaces.Space, action_space: spaces.Space
) -> BCState:
    """Fresh parameters and optimiser state."""
    mlp = _mlp(config, action_space)
    x = jnp.zeros((1, obs_size(observation_space)), jnp.float32)
    params: dict[str, Any] = {
        "mlp": mlp.init(key, x)["params"],
        "obs_shift": jnp.zeros(x.shape[1], jnp.float32),
        "obs_scale": jnp.ones(x.shape[1], jnp.float32),
    }
    if isinstance(action_space, spaces.Box):
        params["log_std"] = jnp.full(_output_size(action_space), config.log_std_init, jnp.float32)
    tx = make_optimizer("adam", config.learning_rate)
    return BCState(params=params, opt_state=tx.init(params))


def set_normalization(state: BCState, obs: Any, observation_space: spaces.Space) -> BCState:
    """Standardise the network's input by the mean and std of `obs` (a Box's; other spaces
    keep the identity). Folded into the first layer when the policy is written."""
    if not isinstance(observation_space, spaces.Box) or len(obs) == 0:
        return state
    x = np.asarray(obs, np.float64).reshape(len(obs), -1)
    std = x.std(0)
    scale = np.where(std > 1e-6, 1.0 / np.maximum(std, 1e-6), 1.0)
    params = {
        **state.params,
        "obs_shift": jnp.asarray(x.mean(0), jnp.float32),
        "obs_scale": jnp.asarray(scale, jnp.float32),
    }
    return state.replace(params=params)


def _features(params, obs, obs_space):
    return (flatten_obs(obs, obs_space) - params["obs_shift"]) * params["obs_scale"]


def _loss(params, config, obs_space, action_space, obs, actions):
    out = _mlp(config, action_space).apply(
        {"params": params["mlp"]}, _features(params, obs, obs_space)
    )
    if isinstance(action_space, spaces.Discrete):
        return optax.softmax_cross_entropy_with_integer_labels(out, actions).mean()
    target = actions.reshape(actions.shape[0], -1)
    if config.loss == "mse":
        return jnp.mean(jnp.sum((out - target) ** 2, -1))
    log_std = params["log_std"]
    z = (target - out) * jnp.exp(-log_std)
    return jnp.mean(jnp.sum(0.5 * z**2 + log_std + 0.5 * jnp.log(2 * jnp.pi), -1))


def _fit(state, key, obs, actions, n, config, obs_spec, act_spec):
    obs_space, action_space = _space(obs_spec), _space(act_spec)
    tx = make_optimizer("adam", config.learning_rate)
    grad = jax.value_and_grad(_loss)

    def step(s, k):
        idx = jax.random.randint(k, (config.batch_size,), 0, n)
        loss, g = grad(s.params, config, obs_space, action_space, obs[idx], actions[idx])
        frozen = ["obs_shift", "obs_scale"]
        if config.loss == "mse" and isinstance(action_space, spaces.Box):
            frozen.append("log_std")
        g = {**g, **{k: jnp.zeros_like(g[k]) for k in frozen}}
        upd, opt = tx.update(g, s.opt_state, s.params)
        return BCState(optax.apply_updates(s.params, upd), opt), loss

    state, losses = jax.lax.scan(step, state, jax.random.split(key, config.steps))
    return state, losses[-1]


_fit_jit = jax.jit(_fit, static_argnums=(5, 6, 7))


def _spec(space: spaces.Space) -> tuple:
    """A hashable description of a space (a static argument: equal spaces share a program)."""
    if isinstance(space, spaces.Discrete):
        return ("discrete", int(space.n))
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
        high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
        return (
            "box",
            tuple(space.shape),
            tuple(low.ravel().tolist()),
            tuple(high.ravel().tolist()),
        )
    if isinstance(space, spaces.MultiDiscrete):
        return ("multidiscrete", tuple(int(n) for n in space.nvec))
    raise TypeError(f"behaviour cloning cannot use the space {space!r}.")


def _space(spec: tuple) -> spaces.Space:
    if spec[0] == "discrete":
        return spaces.Discrete(spec[1])
    if spec[0] == "multidiscrete":
        return spaces.MultiDiscrete(list(spec[1]))
    shape = spec[1]
    return spaces.Box(np.reshape(spec[2], shape), np.reshape(spec[3], shape), shape)


def fit(
    state: BCState,
    key: jax.Array,
    obs: jax.Array,
    actions: jax.Array,
    n: int,
    config: BCConfig,
    observation_space: spaces.Space,
    action_space: spaces.Space,
) -> tuple[BCState, jax.Array]:
    """`config.steps` Adam steps on minibatches of the first `n` rows of `obs` and `actions`.

    Args:
      state: from `init_bc` or an earlier `fit` (DAgger continues from the last round's).
      key: PRNG key of the minibatches.
      obs: `[capacity, *obs_shape]`; rows from `n` on are ignored (padding).
      actions: `[capacity, *act_shape]`.
      n: labels in use (>= 1); traced, so a growing dataset does not recompile.
      config, observation_space, action_space: static.

    Returns:
      `(state, last minibatch loss)`.
    """
    return _fit_jit(
        state,
        key,
        jnp.asarray(obs),
        jnp.asarray(actions),
        jnp.asarray(n, jnp.int32),
        config,
        _spec(observation_space),
        _spec(action_space),
    )


def _act(params, obs, config, obs_spec, act_spec):
    obs_space, action_space = _space(obs_spec), _space(act_spec)
    out = _mlp(config, action_space).apply(
        {"params": params["mlp"]}, _features(params, obs, obs_space)
    )
    if isinstance(action_space, spaces.Discrete):
        return jnp.argmax(out, -1).astype(jnp.int32)
    low = jnp.asarray(action_space.low, jnp.float32)
    high = jnp.asarray(action_space.high, jnp.float32)
    return jnp.clip(out.reshape(*out.shape[:-1], *action_space.shape), low, high)


_act_jit = jax.jit(_act, static_argnums=(2, 3, 4))


def act(
    params: Any,
    obs: Any,
    config: BCConfig,
    observation_space: spaces.Space,
    action_space: spaces.Space,
) -> np.ndarray:
    """Greedy actions `[N, *act_shape]` for observations `[N, *obs_shape]` (NumPy out)."""
    out = _act_jit(
        params,
        jnp.asarray(obs),
        config,
        _spec(observation_space),
        _spec(action_space),
    )
    return np.asarray(out)


def policy_header(config: BCConfig, action_space: spaces.Space) -> dict[str, Any]:
    """The policy file's `network` header of a BC policy."""
    discrete = isinstance(action_space, spaces.Discrete)
    return {
        "kind": "categorical" if discrete else "gaussian",
        "hidden_sizes": [int(h) for h in config.hidden_sizes],
        "activation": str(config.activation),
        "output_size": _output_size(action_space),
    }


def _weights(params: Any, config: BCConfig) -> dict[str, np.ndarray]:
    n = len(config.hidden_sizes)
    out = {}
    for i in range(n + 1):
        layer = params["mlp"][f"Dense_{i}"]
        name = "output" if i == n else f"hidden_{i}"
        kernel = np.asarray(layer["kernel"], np.float64)
        bias = np.asarray(layer["bias"], np.float64)
        if i == 0:  # fold the input standardisation into the first layer (exact, linear)
            shift = np.asarray(params["obs_shift"], np.float64)
            scale = np.asarray(params["obs_scale"], np.float64)
            kernel, bias = scale[:, None] * kernel, bias - (shift * scale) @ kernel
        out[f"{name}/kernel"] = kernel.astype(np.float32)[None]
        out[f"{name}/bias"] = bias.astype(np.float32)[None]
    if "log_std" in params:
        out["log_std"] = np.asarray(params["log_std"])[None]
    return out


def write_policy(
    path: str | os.PathLike,
    params: Any,
    config: BCConfig,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    *,
    algorithm: str = "bc",
    seed: int = 0,
    run: dict[str, Any] | None = None,
) -> Path:
    """Write the learner as a bellmax policy file (`bellmax.load_policy`, `bellmax evaluate`)."""
    from bellmax.policy import write_policy_file

    return write_policy_file(
        path,
        algorithm=algorithm,
        network=policy_header(config, action_space),
        observation_space=observation_space,
        action_space=action_space,
        weights=_weights(params, config),
        seeds=[seed],
        run=run,
    )


def to_policy(
    params: Any,
    config: BCConfig,
    observation_space: spaces.Space,
    action_space: spaces.Space,
    *,
    algorithm: str = "bc",
) -> Any:
    """The learner as an in-memory `bellmax.policy.Policy`."""
    from bellmax.policy import Policy, space_to_data

    header = {
        "algorithm": algorithm,
        "network": policy_header(config, action_space),
        "observation_space": space_to_data(observation_space),
        "action_space": space_to_data(action_space),
        "observation_normalization": None,
        "seeds": [0],
        "run": {},
    }
    return Policy(header, _weights(params, config), 0)
