"""The policy-gradient pieces A2C, REINFORCE and PPO share (Sutton & Barto 2018, chapter 13).

- `network`: the actor-critic (`ActorCritic`) for a config and an environment's action space;
  `act` and `policy_params` act with it.
- `check_config`: the field checks the three configs share (in their `__post_init__`);
  `validate_pg_config`: the run length and the vector environment (their `validate(venv)`).
- `init_state`: a fresh `TrainState` (network, optimiser, reset environments).
- `rollout_and_bootstrap`, `gae_targets`, `flatten_steps`, `episode_metrics`: the parts of
  one on-policy update before and after the learning itself.
- `pg_loss`, `pg_update`, `optimizer`, `learning_rate_schedule`: A2C's and REINFORCE's
  update, one gradient step on a rollout with targets (n-step returns or GAE for A2C,
  Monte-Carlo returns for REINFORCE).

PPO's clipped minibatch epochs live in `bellmax.deep.ppo`; what the algorithms share lives
here, so no algorithm module imports another.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from bellmax.core.checks import (
    check_bool,
    check_choice,
    check_int,
    check_int_sequence,
    check_number,
    check_probability,
)
from bellmax.core.display import summary_repr
from bellmax.core.returns import Advantages, gae
from bellmax.deep.distributions import action_space_kind, clip_to_space
from bellmax.deep.loop import (
    EpisodeMetrics,
    check_fields,
    check_single_agent,
    check_total_timesteps,
    check_traced_fields,
    nonfinite_steps,
    scheduled_learning_rate,
)
from bellmax.deep.networks import ACTIVATIONS, ActorCritic, flatten_obs
from bellmax.deep.optim import OPTIMIZERS, Schedule, linear_schedule, make_optimizer
from bellmax.deep.rollout import Rollout, TrainState, collect_rollout
from bellmax.envs.vector import VectorEnv

__all__ = [
    "Metrics",
    "OnPolicyRun",
    "act",
    "check_config",
    "check_venv",
    "episode_metrics",
    "flatten_steps",
    "gae_targets",
    "init_state",
    "learning_rate_schedule",
    "network",
    "optimizer",
    "pg_loss",
    "pg_update",
    "policy_params",
    "rollout_and_bootstrap",
    "validate_pg_config",
]

Targets = Callable[[Rollout, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]
"""`(rollout, next_values [T, N]) -> (advantage, target, weight)`, each `[T, N]`."""


@dataclasses.dataclass(frozen=True)
class OnPolicyRun:
    """The fields A2C, PPO and REINFORCE share, with their docs, and the run length they
    give. Each algorithm's `Config` derives from it, re-declaring a field only to change its
    default (the doc stays this one unless the algorithm writes its own)."""

    total_timesteps: int = 100_000
    """Environment steps of the whole run (all environments together)."""
    num_envs: int = 8
    """Environments stepped in parallel."""
    num_steps: int = 32
    """Steps per environment in each rollout."""
    learning_rate: float = 1e-3
    """Optimiser step size (the start value when annealed)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over the run."""
    optimizer: str = "adam"
    """Optimiser: adam | sgd (sgd with momentum)."""
    momentum: float = 0.9
    """SGD's momentum (ignored by adam)."""
    gamma: float = 0.98
    """Discount factor."""
    ent_coef: float = 0.0
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss (mean squared error)."""
    max_grad_norm: float = 0.5
    """Clip gradients to this global norm."""
    normalize_advantages: bool = True
    """Normalise advantages to mean 0, std 1 over each rollout."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and critic."""
    activation: str = "tanh"
    """Hidden activation: tanh | relu | elu | gelu | silu | leaky_relu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy (Box actions)."""

    algorithm: ClassVar[str] = "on-policy"
    """The algorithm's name in messages (each Config sets its own)."""
    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (
        "learning_rate",
        "momentum",
        "gamma",
        "ent_coef",
        "vf_coef",
        "max_grad_norm",
    )
    """The numeric fields that may be traced (`bellmax.deep.loop.with_hyperparameters`)."""

    def validate(self, venv: VectorEnv | None = None) -> None:
        """Check the run before training (the fields were checked on construction): one
        update at least, and, given `venv`, Discrete or Box actions and `num_envs` envs."""
        validate_pg_config(self, self.algorithm, venv)

    @property
    def steps_per_update(self) -> int:
        """Environment steps consumed by one `update` (all environments)."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """Iterations of `update` that make `total_timesteps` (rounded down)."""
        return self.total_timesteps // self.steps_per_update


@struct.dataclass
class Metrics(EpisodeMetrics):
    """Scalars of one A2C or REINFORCE update."""

    __repr__ = summary_repr

    loss: jax.Array
    """Total loss of the update's gradient step."""
    policy_loss: jax.Array
    """Policy-gradient loss `-mean(log pi(a|s) A)`."""
    value_loss: jax.Array
    """Mean squared error of the critic."""
    entropy: jax.Array
    """Mean policy entropy."""
    learning_rate: jax.Array
    """Step size of the update's gradient step (as the optimiser's schedule gave it)."""
    grad_norm: jax.Array
    """Global norm of the loss's gradient, before clipping to `max_grad_norm`."""


# ---------------------------------------------------------------------- checks


def check_config(config: Any, owner: str) -> None:
    """The field checks A2C, REINFORCE and PPO configs share (from their `__post_init__`).

    Args:
      config: the config (its run length, optimiser, loss weights and network fields).
      owner: the name errors give it, e.g. `"A2C Config"`.

    Fields holding traced hyperparameters (`config.HYPERPARAMETERS`) are not checked.

    Raises:
      TypeError: a field of the wrong type, or a traced one that shapes the program;
        ValueError: a wrong value (messages name `owner.field`, the value and what is allowed).
    """
    check_traced_fields(config, owner)
    check_total_timesteps(config.total_timesteps, owner)
    for name in ("num_envs", "num_steps"):
        check_int(getattr(config, name), name, owner=owner, low=1)
    positive = {"low": 0, "low_open": True}
    check_fields(config, ("learning_rate", "max_grad_norm"), check_number, owner=owner, **positive)
    check_fields(config, ("gamma",), check_probability, owner=owner)
    check_fields(config, ("ent_coef", "vf_coef"), check_number, owner=owner, low=0)
    fraction = {"low": 0, "high": 1, "high_open": True}
    check_fields(config, ("momentum",), check_number, owner=owner, **fraction)
    check_number(config.log_std_init, "log_std_init", owner=owner)
    for name in ("anneal_lr", "normalize_advantages"):
        check_bool(getattr(config, name), name, owner=owner)
    check_choice(config.optimizer, "optimizer", OPTIMIZERS, owner=owner)
    check_choice(config.activation, "activation", sorted(ACTIVATIONS), owner=owner)
    # a tuple (a list, e.g. from run.json, is unhashable: the driver caches by config)
    sizes = check_int_sequence(config.hidden_sizes, "hidden_sizes", owner=owner, low=1)
    object.__setattr__(config, "hidden_sizes", sizes)


def validate_pg_config(config: Any, algorithm: str, venv: VectorEnv | None = None) -> None:
    """What the configs' `validate(venv)` checks before a run (the fields were checked on
    construction): that `total_timesteps` makes one update at least, and `check_venv`.

    Raises:
      ValueError: a run shorter than one rollout; see `check_venv` for the environment.
    """
    if config.num_updates < 1:
        raise ValueError(
            f"{algorithm} Config.total_timesteps={config.total_timesteps} is less than one "
            f"rollout (num_envs * num_steps = {config.steps_per_update}); raise total_timesteps."
        )
    if venv is not None:
        check_venv(config, venv, algorithm)


def check_venv(config: Any, venv: VectorEnv, algorithm: str) -> None:
    """Raise unless `venv` fits `config`: a Discrete or Box action space, `config.num_envs` envs.

    Raises:
      TypeError: another action space (the message names `algorithm`).
      ValueError: another number of environments.
    """
    check_single_agent(venv, algorithm)
    action_space_kind(venv.action_space, algorithm=algorithm)
    if venv.num_envs != config.num_envs:
        raise ValueError(
            f"{algorithm} Config.num_envs={config.num_envs} but the vector env has {venv.num_envs} "
            "environments; make them equal."
        )


# ---------------------------------------------------------------------- network and acting


def network(config: Any, venv: VectorEnv, *, algorithm: str = "The actor-critic") -> ActorCritic:
    """The actor-critic network for `config` and the environment's action space.

    Args:
      config: `hidden_sizes`, `activation`, `log_std_init` and (if it has one) `shared_torso`.
      venv: the vector environment (Discrete or Box actions).
      algorithm: the name an unsupported action space's error gives.
    """
    discrete, size = action_space_kind(venv.action_space, algorithm=algorithm)
    return ActorCritic(
        action_dim=size,
        discrete=discrete,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        shared_torso=getattr(config, "shared_torso", False),
        log_std_init=config.log_std_init,
    )


def act(
    params: Any,
    obs: jax.Array,
    key: jax.Array,
    config: Any,
    venv: VectorEnv,
    *,
    deterministic: bool = True,
) -> jax.Array:
    """Actions `[B, ...]` for observations `[B, ...]`: the mode, or a sample, clipped to a Box."""
    net = network(config, venv)
    dist = net.apply(params, flatten_obs(obs, venv.observation_space), method="policy")
    action = dist.mode() if deterministic else dist.sample(key)
    return clip_to_space(action, venv.action_space)


def policy_params(state: TrainState) -> Any:
    """What `act` needs from a training state."""
    return state.params


def init_state(
    key: jax.Array,
    config: Any,
    venv: VectorEnv,
    net: ActorCritic,
    tx: optax.GradientTransformation | None = None,
) -> TrainState:
    """A fresh policy-gradient training state (network, optimiser, reset environments).

    Args:
      key: PRNG key, consumed.
      config: the algorithm's config.
      venv: the vector environment.
      net: the actor-critic.
      tx: the optimiser (default: `optimizer(config)`, A2C's and REINFORCE's).
    """
    k_net, k_env, key = jax.random.split(key, 3)
    obs, vec_state = venv.reset(k_env)
    params = net.init(k_net, flatten_obs(obs, venv.observation_space))
    opt_state = (optimizer(config) if tx is None else tx).init(params)
    return TrainState(params, opt_state, vec_state, obs, key, jnp.zeros((), jnp.int32))


# ---------------------------------------------------------------------- one on-policy update


def rollout_and_bootstrap(
    state: TrainState, config: Any, venv: VectorEnv, net: ActorCritic
) -> tuple[TrainState, Rollout, jax.Array]:
    """A rollout of the current policy and the critic's values of its `final_obs`.

    Returns:
      `(state, rollout, next_values [T, N])`; `next_values[t]` is `V(final_obs[t])`, the
      bootstrap at a time limit or at the rollout's end.
    """
    state, ro = collect_rollout(state, config, venv, net)
    final_x = flatten_obs(ro.final_obs, venv.observation_space)
    next_values = net.apply(state.params, final_x, method="value")
    return state, ro, next_values


def gae_targets(ro: Rollout, next_values: jax.Array, config: Any) -> Advantages:
    """Generalised advantages and returns of a rollout (`config.gamma`, `config.gae_lambda`)."""
    return gae(
        ro.reward,
        ro.value,
        next_values,
        ro.terminated,
        ro.truncated,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
    )


def flatten_steps(x: jax.Array, config: Any) -> jax.Array:
    """`[num_steps, num_envs, ...] -> [num_steps * num_envs, ...]`."""
    return x.reshape((config.num_steps * config.num_envs, *x.shape[2:]))


def episode_metrics(ro: Rollout, update_index: jax.Array, config: Any) -> dict[str, jax.Array]:
    """The `EpisodeMetrics` fields of update number `update_index` (counted from 1)."""
    ended = ~jnp.isnan(ro.episode_return)
    return {
        "env_steps": update_index * config.steps_per_update,
        "episode_return_sum": jnp.sum(jnp.where(ended, ro.episode_return, 0.0)),
        "episode_count": jnp.sum(ended).astype(jnp.int32),
        "nonfinite_steps": nonfinite_steps(ro.reward, ro.final_obs),
    }


def learning_rate_schedule(config: Any) -> float | Schedule:
    """A2C's and REINFORCE's step size: `config.learning_rate`, or with `config.anneal_lr` a
    schedule falling linearly from it to 0 over the run's updates (one gradient step each)."""
    if config.anneal_lr:
        return linear_schedule(config.learning_rate, 0.0, config.num_updates)
    return config.learning_rate


def optimizer(config: Any) -> optax.GradientTransformation:
    """A2C's and REINFORCE's optimiser: `config.optimizer` with global-norm gradient clipping.

    The step size is `learning_rate_schedule(config)`.

    It works on the parameters flattened into one vector (`optax.flatten`): the same
    arithmetic in a few large operations instead of a few per layer, which halves the
    optimiser's share of the compile time on a CPU.
    """
    return optax.flatten(
        make_optimizer(
            config.optimizer,
            learning_rate_schedule(config),
            max_grad_norm=config.max_grad_norm,
            momentum=config.momentum,
        )
    )


def pg_loss(
    params: Any,
    net: ActorCritic,
    batch: dict[str, jax.Array],
    config: Any,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Policy-gradient loss with a learned baseline, value loss and entropy bonus.

    `-sum(w log pi(a|s) A) + vf_coef sum(w (V(s) - G)^2) - ent_coef sum(w H)`, each a mean
    over the transitions of weight `w = 1` (Sutton & Barto 2018, sections 13.4-13.5; Mnih et
    al. 2016). The advantages are normalised over the weighted batch if
    `config.normalize_advantages` and more than one transition counts.

    Args:
      params: network parameters (differentiated).
      net: the actor-critic.
      batch: `x [B, D]`, `action [B, ...]`, `advantage [B]`, `target [B]`, `weight [B]`
        (1 for transitions that count, 0 for those left out).
      config: `vf_coef`, `ent_coef`, `normalize_advantages`.

    Returns:
      `(loss, aux)` with the loss and its parts.
    """
    dist, value = net.apply(params, batch["x"])
    w = batch["weight"]
    count = jnp.maximum(w.sum(), 1.0)
    mean = lambda v: jnp.sum(w * v) / count  # noqa: E731
    adv = batch["advantage"]
    if config.normalize_advantages:
        # (not a batch of one counted transition: normalised, its advantage would be 0 and
        # its policy gradient vanish; PPO's minibatches are guarded the same way)
        mu = mean(adv)
        normed = (adv - mu) / (jnp.sqrt(mean((adv - mu) ** 2)) + 1e-8)
        adv = jnp.where(count > 1, normed, adv)
    policy_loss = -mean(dist.log_prob(batch["action"]) * jax.lax.stop_gradient(adv))
    value_loss = mean((value - batch["target"]) ** 2)
    entropy = mean(dist.entropy())
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    aux = {
        "loss": loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
    }
    return loss, aux


def pg_update(
    state: TrainState,
    config: Any,
    venv: VectorEnv,
    net: ActorCritic,
    targets: Targets,
) -> tuple[TrainState, Metrics]:
    """One on-policy iteration: a rollout, its targets, one gradient step.

    Args:
      state: the training state.
      config: hyperparameters (`num_steps`, `num_envs`, loss weights, optimiser fields).
      venv: the vector environment.
      net: the actor-critic.
      targets: `(rollout, next_values [T, N]) -> (advantage, target, weight)`, each `[T, N]`;
        `next_values[t]` is the critic's value of `final_obs[t]`.

    Returns:
      `(new_state, metrics)`.
    """
    tx = optimizer(config)
    state, ro, next_values = rollout_and_bootstrap(state, config, venv, net)
    advantage, target, weight = targets(ro, jax.lax.stop_gradient(next_values))
    batch = {
        "x": flatten_obs(ro.obs, venv.observation_space),
        "action": ro.action,
        "advantage": jax.lax.stop_gradient(advantage),
        "target": jax.lax.stop_gradient(target),
        "weight": weight.astype(jnp.float32),
    }
    batch = {k: flatten_steps(v, config) for k, v in batch.items()}
    grads, aux = jax.grad(pg_loss, has_aux=True)(state.params, net, batch, config)
    aux["learning_rate"] = scheduled_learning_rate(learning_rate_schedule(config), state.opt_state)
    aux["grad_norm"] = optax.tree.norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    index = state.update_index + 1
    metrics = Metrics(**episode_metrics(ro, index, config), **aux)
    return state.replace(params=params, opt_state=opt_state, update_index=index), metrics
