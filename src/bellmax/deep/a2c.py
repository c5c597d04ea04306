"""Advantage actor-critic, synchronous (A2C; Mnih et al. 2016), the whole loop in one `jit`.

One `update` collects `num_steps` steps from `num_envs` auto-resetting environments with the
current stochastic policy, computes n-step returns (`gae_lambda = 1`, Mnih et al. 2016,
algorithm S3) or generalised advantages (`gae_lambda < 1`, Schulman et al. 2016), both
bootstrapped from the critic at the end of the rollout and from the true last observation
(`final_obs`) where a time limit cut an episode, and takes ONE gradient step on

    L = -mean(log pi(a_t | s_t) A_t) + vf_coef mean((V(s_t) - G_t)^2) - ent_coef mean(H[pi(s_t)])

(Sutton & Barto 2018, section 13.5, "one-step actor-critic" generalised to n steps and many
environments). Actor and critic are separate networks or share a torso (`shared_torso`);
Discrete actions use a categorical policy, Box actions a Gaussian with a state-independent
log-std whose samples are clipped to the box only in the environment. Mnih et al. used
RMSprop; `optimizer` takes the names `bellmax.deep.optim.make_optimizer` knows (Adam, SGD
with momentum), and the learning rate is annealed linearly to 0 by default, which keeps
A2C's late policy from collapsing on CartPole.

    config = Config(total_timesteps=100_000)
    state, metrics = jax.jit(make_train(config, "CartPole-v1"))(jax.random.key(0))
    jax.jit(jax.vmap(make_train(config, "CartPole-v1")))(jax.random.split(key, 8))  # 8 seeds

The policy-gradient pieces here (`pg_loss`, `pg_update`) are shared with
`bellmax.deep.reinforce`, which is the same update with Monte-Carlo returns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from bellmax.core.returns import gae
from bellmax.deep.distributions import action_space_kind, clip_to_space
from bellmax.deep.loop import scan_train, vector_env
from bellmax.deep.networks import ACTIVATIONS, ActorCritic, check_hidden_sizes, flatten_obs
from bellmax.deep.optim import OPTIMIZERS, linear_schedule, make_optimizer
from bellmax.deep.rollout import Rollout, TrainState, collect_rollout
from bellmax.envs.vector import VectorEnv

ALGORITHM = "A2C"


@dataclasses.dataclass(frozen=True)
class Config:
    """A2C hyperparameters (defaults: tuned for bellmax CartPole-v1)."""

    total_timesteps: int = 150_000
    """Environment steps of the whole run (all environments together)."""
    num_envs: int = 16
    """Environments stepped in parallel."""
    num_steps: int = 16
    """Steps per environment in each rollout (the n of the n-step returns)."""
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
    gae_lambda: float = 1.0
    """GAE's lambda; 1.0 gives Mnih et al.'s n-step returns."""
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
    shared_torso: bool = False
    """Share one torso between actor and critic (separate by default)."""
    log_std_init: float = 0.0
    """Initial log standard deviation of a Gaussian policy (Box actions)."""

    @property
    def steps_per_update(self) -> int:
        """Environment steps consumed by one `update` (all environments)."""
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        """Iterations of `update` that make `total_timesteps` (rounded down)."""
        return self.total_timesteps // self.steps_per_update

    def validate(self, venv: VectorEnv | None = None) -> None:
        """Raise ValueError/TypeError naming the bad field, its value and the fix."""
        validate_pg_config(self, ALGORITHM, venv)
        if not 0.0 <= _number("gae_lambda", self.gae_lambda) <= 1.0:
            raise ValueError(
                f"Config.gae_lambda must lie in [0, 1], got {self.gae_lambda}; pass e.g. 0.95 "
                "(1.0 for n-step returns)."
            )


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TypeError(f"Config.{name} must be a finite number, got {value!r}.")
    return float(value)


def validate_pg_config(config: Any, algorithm: str, venv: VectorEnv | None) -> None:
    """Checks shared by the policy-gradient configs (A2C, REINFORCE).

    Raises:
      TypeError/ValueError naming the field, its value and the fix.
    """
    for name in ("total_timesteps", "num_envs", "num_steps"):
        v = getattr(config, name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"Config.{name} must be an int, got {v!r}.")
        if v < 1:
            raise ValueError(f"Config.{name} must be >= 1, got {v}; pass a positive int.")
    for name in ("learning_rate", "max_grad_norm"):
        if _number(name, getattr(config, name)) <= 0:
            raise ValueError(
                f"Config.{name} must be > 0, got {getattr(config, name)}; pass e.g. 1e-3 / 0.5."
            )
    if not 0.0 <= _number("gamma", config.gamma) <= 1.0:
        raise ValueError(f"Config.gamma must lie in [0, 1], got {config.gamma}; pass e.g. 0.99.")
    for name in ("ent_coef", "vf_coef"):
        if _number(name, getattr(config, name)) < 0:
            raise ValueError(
                f"Config.{name} must be >= 0, got {getattr(config, name)}; pass e.g. 0.5."
            )
    if not 0.0 <= _number("momentum", config.momentum) < 1.0:
        raise ValueError(
            f"Config.momentum must lie in [0, 1), got {config.momentum}; pass e.g. 0.9."
        )
    _number("log_std_init", config.log_std_init)
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"Config.optimizer must be one of {OPTIMIZERS}, got {config.optimizer!r}.")
    if config.activation not in ACTIVATIONS:
        raise ValueError(
            f"Config.activation must be one of {sorted(ACTIVATIONS)}, got {config.activation!r}."
        )
    check_hidden_sizes(config.hidden_sizes, field="Config.hidden_sizes")
    if config.num_updates < 1:
        raise ValueError(
            f"Config.total_timesteps={config.total_timesteps} is less than one rollout "
            f"(num_envs * num_steps = {config.steps_per_update}); raise total_timesteps."
        )
    if venv is not None:
        action_space_kind(venv.action_space, algorithm=algorithm)
        if venv.num_envs != config.num_envs:
            raise ValueError(
                f"Config.num_envs={config.num_envs} but the vector env has {venv.num_envs} "
                "environments; make them equal."
            )


@struct.dataclass
class Metrics:
    """Scalars of one update."""

    env_steps: jax.Array
    """Cumulative environment steps after this update."""
    episode_return_sum: jax.Array
    """Sum of returns of the episodes that ended during this update's rollout."""
    episode_count: jax.Array
    """Number of such episodes."""
    loss: jax.Array
    """Total loss of the update's gradient step."""
    policy_loss: jax.Array
    """Policy-gradient loss `-mean(log pi(a|s) A)`."""
    value_loss: jax.Array
    """Mean squared error of the critic."""
    entropy: jax.Array
    """Mean policy entropy."""


def network(config: Any, venv: VectorEnv, *, algorithm: str = ALGORITHM) -> ActorCritic:
    """The actor-critic network for `config` and the environment's action space."""
    discrete, size = action_space_kind(venv.action_space, algorithm=algorithm)
    return ActorCritic(
        action_dim=size,
        discrete=discrete,
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
        shared_torso=getattr(config, "shared_torso", False),
        log_std_init=config.log_std_init,
    )


def optimizer(config: Any) -> optax.GradientTransformation:
    """The optimiser named by `config.optimizer`, with global-norm gradient clipping.

    With `config.anneal_lr` the step size falls linearly to 0 over the run's updates.

    It works on the parameters flattened into one vector (`optax.flatten`): the same
    arithmetic in a few large operations instead of a few per layer, which halves the
    optimiser's share of the compile time on a CPU.
    """
    lr = config.learning_rate
    if config.anneal_lr:
        lr = linear_schedule(config.learning_rate, 0.0, config.num_updates)
    return optax.flatten(
        make_optimizer(
            config.optimizer,
            lr,
            max_grad_norm=config.max_grad_norm,
            momentum=config.momentum,
        )
    )


def init_state(key: jax.Array, config: Any, venv: VectorEnv, net: ActorCritic) -> TrainState:
    """A fresh policy-gradient training state (network, optimiser, reset environments)."""
    k_net, k_env, key = jax.random.split(key, 3)
    obs, vec_state = venv.reset(k_env)
    params = net.init(k_net, flatten_obs(obs, venv.observation_space))
    opt_state = optimizer(config).init(params)
    return TrainState(params, opt_state, vec_state, obs, key, jnp.zeros((), jnp.int32))


def init(key: jax.Array, config: Config, venv: VectorEnv) -> TrainState:
    """A fresh training state: network, optimiser and reset environments.

    Args:
      key: PRNG key.
      config: hyperparameters.
      venv: the vector environment (its `num_envs` must equal `config.num_envs`).

    Returns:
      The initial `TrainState`.
    """
    config.validate(venv)
    return init_state(key, config, venv, network(config, venv))


def act(
    params: Any,
    obs: jax.Array,
    key: jax.Array,
    config: Config,
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
    `config.normalize_advantages`.

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
        mu = mean(adv)
        adv = (adv - mu) / (jnp.sqrt(mean((adv - mu) ** 2)) + 1e-8)
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
    targets: Callable[[Rollout, jax.Array], tuple[jax.Array, jax.Array, jax.Array]],
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
    space = venv.observation_space
    state, ro = collect_rollout(state, config, venv, net)
    next_values = net.apply(state.params, flatten_obs(ro.final_obs, space), method="value")
    advantage, target, weight = targets(ro, jax.lax.stop_gradient(next_values))
    t, n = config.num_steps, config.num_envs
    flat = lambda x: x.reshape((t * n, *x.shape[2:]))  # noqa: E731
    batch = {
        "x": flat(flatten_obs(ro.obs, space)),
        "action": flat(ro.action),
        "advantage": flat(jax.lax.stop_gradient(advantage)),
        "target": flat(jax.lax.stop_gradient(target)),
        "weight": flat(weight.astype(jnp.float32)),
    }
    grads, aux = jax.grad(pg_loss, has_aux=True)(state.params, net, batch, config)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ended = ~jnp.isnan(ro.episode_return)
    index = state.update_index + 1
    metrics = Metrics(
        env_steps=index * config.steps_per_update,
        episode_return_sum=jnp.sum(jnp.where(ended, ro.episode_return, 0.0)),
        episode_count=jnp.sum(ended).astype(jnp.int32),
        **aux,
    )
    return state.replace(params=params, opt_state=opt_state, update_index=index), metrics


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One A2C iteration: a rollout, n-step returns or GAE, one gradient step.

    Args:
      state: the training state.
      config: hyperparameters.
      venv: the vector environment.

    Returns:
      `(new_state, metrics)`; pure and jittable.
    """

    def targets(ro: Rollout, next_values: jax.Array):
        adv = gae(
            ro.reward,
            ro.value,
            next_values,
            ro.terminated,
            ro.truncated,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
        )
        return adv.advantages, adv.returns, jnp.ones_like(ro.reward)

    return pg_update(state, config, venv, network(config, venv), targets)


def make_train(config: Config, env: Any, env_params: Any = None):
    """Build `train(key) -> (TrainState, Metrics [num_updates])` for an environment.

    Args:
      config: hyperparameters (validated here).
      env: an env id (bellmax, or a Gymnasium id such as `"gymnasium:CartPole-v1"`), an
        `Environment`, a gymnax-API environment or a `VectorEnv` with `config.num_envs` envs.
      env_params: parameters for an environment object.

    Returns:
      A pure function of a PRNG key; `jax.jit(train)` runs the whole training, and for JAX
      environments `jax.jit(jax.vmap(train))(keys)` trains one seed per key.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be an a2c.Config, got {type(config).__name__}.")
    return scan_train(config, vector_env(config, env, env_params), init, update)
