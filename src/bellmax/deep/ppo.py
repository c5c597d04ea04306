"""Proximal policy optimisation (Schulman et al. 2017), the whole loop in one `jit`.

One `update` collects `num_steps` steps from `num_envs` auto-resetting environments, computes
generalised advantages (Schulman et al. 2016) bootstrapped from the true last observation at
time limits, and runs `num_epochs` passes of shuffled minibatches over the clipped surrogate
objective (eq. 7) plus a value loss and an entropy bonus (eq. 9). The implementation details
follow Huang et al. 2022, "The 37 implementation details of PPO": orthogonal initialisation,
Adam with eps 1e-5, linear learning-rate annealing, per-minibatch advantage normalisation,
optional value clipping, global gradient-norm clipping, a state-independent log-std for
continuous actions whose samples are clipped to the action `Box` only in the environment.

    config = Config(total_timesteps=100_000)
    train = jax.jit(make_train(config, "CartPole-v1"))
    state, metrics = train(jax.random.key(0))
    jax.jit(jax.vmap(make_train(config, "CartPole-v1")))(jax.random.split(key, 16))   # 16 seeds

Any bellmax or gymnax environment, or a Gymnasium id through the host bridge
(`"gymnasium:CartPole-v1"`, not vmappable), with `Discrete` or `Box` actions.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from bellmax.core.checks import check_bool, check_int, check_number, check_probability
from bellmax.core.display import summary_repr
from bellmax.deep.loop import (
    EpisodeMetrics,
    check_fields,
    scan_train,
    scheduled_learning_rate,
    vector_env,
)
from bellmax.deep.networks import ActorCritic, flatten_obs
from bellmax.deep.optim import Schedule, linear_schedule, make_optimizer
from bellmax.deep.policy_gradient import (
    OnPolicyRun,
    act,
    check_config,
    episode_metrics,
    flatten_steps,
    gae_targets,
    init_state,
    network,
    policy_params,
    rollout_and_bootstrap,
)
from bellmax.deep.rollout import TrainState
from bellmax.envs.vector import VectorEnv

ALGORITHM = "PPO"
OWNER = f"{ALGORITHM} Config"

__all__ = [
    "ALGORITHM",
    "PRESETS",
    "Config",
    "Metrics",
    "TrainState",
    "act",
    "init",
    "learning_rate_schedule",
    "make_train",
    "network",
    "optimizer",
    "policy_params",
    "ppo_loss",
    "update",
]


@dataclasses.dataclass(frozen=True)
class Config(OnPolicyRun):
    """PPO hyperparameters (defaults: rl-zoo's CartPole-v1 settings)."""

    algorithm: ClassVar[str] = ALGORITHM
    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (
        *OnPolicyRun.HYPERPARAMETERS,
        "gae_lambda",
        "clip_eps",
    )

    num_steps: int = 32
    """Steps per environment in each rollout (rollout size = num_envs * num_steps)."""
    num_epochs: int = 20
    """Passes over each rollout."""
    minibatch_size: int = 256
    """Transitions per gradient step; must divide num_envs * num_steps."""
    gae_lambda: float = 0.8
    """GAE's lambda (bias-variance trade-off of the advantages)."""
    clip_eps: float = 0.2
    """Clipping range of the probability ratio (the start value when annealed)."""
    anneal_clip: bool = True
    """Anneal clip_eps linearly to 0 over the run."""
    clip_value: bool = False
    """Clip the value update to clip_eps around the rollout's values."""
    normalize_advantages: bool = True
    """Normalise advantages to mean 0, std 1 within each minibatch."""
    shared_torso: bool = False
    """Share one torso between actor and critic (separate by default)."""

    @property
    def num_minibatches(self) -> int:
        """Gradient steps per epoch."""
        return self.steps_per_update // self.minibatch_size

    def __post_init__(self) -> None:
        check_config(self, OWNER)
        for name in ("num_epochs", "minibatch_size"):
            check_int(getattr(self, name), name, owner=OWNER, low=1)
        check_fields(self, ("gae_lambda",), check_probability, owner=OWNER)
        open_unit = {"low": 0, "high": 1, "low_open": True, "high_open": True}
        check_fields(self, ("clip_eps",), check_number, owner=OWNER, **open_unit)
        for name in ("anneal_clip", "clip_value", "shared_torso"):
            check_bool(getattr(self, name), name, owner=OWNER)
        if self.minibatch_size > self.steps_per_update:
            raise ValueError(
                f"{OWNER}.minibatch_size={self.minibatch_size} is larger than the rollout "
                f"num_envs * num_steps = {self.steps_per_update}; lower minibatch_size or "
                "raise num_envs/num_steps."
            )
        if self.steps_per_update % self.minibatch_size:
            raise ValueError(
                f"{OWNER}.minibatch_size={self.minibatch_size} must divide the rollout "
                f"num_envs * num_steps = {self.steps_per_update}; pick a divisor."
            )


PRESETS: dict[str, Config] = {
    "CartPole-v1": Config(),
    "Pendulum-v1": Config(
        total_timesteps=150_000,
        num_envs=16,
        num_steps=64,
        num_epochs=10,
        minibatch_size=256,
        learning_rate=1e-3,
        gamma=0.9,
        gae_lambda=0.95,
        anneal_clip=False,
        ent_coef=0.0,
    ),
}
"""Tested settings for some environments (the CLI may start from these)."""


@struct.dataclass
class Metrics(EpisodeMetrics):
    """Scalars of one PPO update."""

    __repr__ = summary_repr

    loss: jax.Array
    """Mean total loss over the update's gradient steps."""
    policy_loss: jax.Array
    """Mean clipped surrogate loss."""
    value_loss: jax.Array
    """Mean value loss."""
    entropy: jax.Array
    """Mean policy entropy."""
    approx_kl: jax.Array
    """Mean approximate KL divergence old -> new policy, `mean((r - 1) - log r)` of the
    probability ratios `r` at each gradient step (Schulman's k3 estimator, as CleanRL)."""
    clip_fraction: jax.Array
    """Fraction of ratios outside the clipping range."""
    learning_rate: jax.Array
    """Mean step size of the update's gradient steps (as the optimiser's schedule gave it)."""
    grad_norm: jax.Array
    """Mean global norm of the minibatch gradients, before clipping to `max_grad_norm`."""


def learning_rate_schedule(config: Config) -> float | Schedule:
    """The step size: `config.learning_rate`, or with `config.anneal_lr` a schedule falling
    linearly from it to 0 over the run's gradient steps (Huang et al. 2022, detail 4)."""
    if config.anneal_lr:
        steps = config.num_updates * config.num_epochs * config.num_minibatches
        return linear_schedule(config.learning_rate, 0.0, steps)
    return config.learning_rate


def optimizer(config: Config) -> optax.GradientTransformation:
    """The optimiser, with the learning rate annealed per gradient step if asked."""
    return make_optimizer(
        config.optimizer,
        learning_rate_schedule(config),
        max_grad_norm=config.max_grad_norm,
        momentum=config.momentum,
    )


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
    return init_state(
        key, config, venv, network(config, venv, algorithm=ALGORITHM), optimizer(config)
    )


def ppo_loss(
    params: Any,
    net: ActorCritic,
    batch: dict[str, jax.Array],
    clip_eps: jax.Array,
    config: Config,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Clipped surrogate + value + entropy loss of one minibatch (Schulman et al. 2017, eq. 9)."""
    dist, value = net.apply(params, batch["x"])
    log_prob = dist.log_prob(batch["action"])
    log_ratio = log_prob - batch["log_prob"]
    ratio = jnp.exp(log_ratio)
    adv = batch["advantage"]
    if config.normalize_advantages and config.minibatch_size > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    policy_loss = jnp.maximum(-adv * ratio, -adv * jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps))
    policy_loss = policy_loss.mean()
    err = (value - batch["target"]) ** 2
    if config.clip_value:
        v_clip = batch["value"] + jnp.clip(value - batch["value"], -clip_eps, clip_eps)
        err = jnp.maximum(err, (v_clip - batch["target"]) ** 2)
    value_loss = err.mean()
    entropy = dist.entropy().mean()
    loss = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
    aux = {
        "loss": loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }
    return loss, aux


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One PPO iteration: a rollout, GAE, then `num_epochs` of minibatch gradient steps.

    Args:
      state: the training state.
      config: hyperparameters.
      venv: the vector environment.

    Returns:
      `(new_state, metrics)`; pure and jittable.
    """
    net = network(config, venv, algorithm=ALGORITHM)
    tx = optimizer(config)
    state, ro, next_values = rollout_and_bootstrap(state, config, venv, net)
    adv = gae_targets(ro, next_values, config)
    data = {
        "x": flatten_obs(ro.obs, venv.observation_space),
        "action": ro.action,
        "log_prob": ro.log_prob,
        "value": ro.value,
        "advantage": adv.advantages,
        "target": adv.returns,
    }
    data = {k: flatten_steps(v, config) for k, v in data.items()}
    frac = 1.0 - state.update_index.astype(jnp.float32) / config.num_updates
    clip_eps = config.clip_eps * frac if config.anneal_clip else jnp.float32(config.clip_eps)
    grad_fn = jax.grad(ppo_loss, has_aux=True)
    lr = learning_rate_schedule(config)
    m, mb = config.num_minibatches, config.minibatch_size

    def minibatch_step(carry, batch):
        params, opt_state = carry
        grads, aux = grad_fn(params, net, batch, clip_eps, config)
        aux["learning_rate"] = scheduled_learning_rate(lr, opt_state)
        aux["grad_norm"] = optax.tree.norm(grads)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    def epoch(carry, key):
        if m == 1:
            batches = jax.tree.map(lambda x: x[None], data)
        else:
            perm = jax.random.permutation(key, config.steps_per_update)
            batches = jax.tree.map(lambda x: x[perm].reshape((m, mb, *x.shape[1:])), data)
        return jax.lax.scan(minibatch_step, carry, batches)

    key, k_epochs = jax.random.split(state.key)
    (params, opt_state), aux = jax.lax.scan(
        epoch,
        (state.params, state.opt_state),
        jax.random.split(k_epochs, config.num_epochs),
    )
    aux = jax.tree.map(jnp.mean, aux)
    index = state.update_index + 1
    metrics = Metrics(**episode_metrics(ro, index, config), **aux)
    new_state = state.replace(params=params, opt_state=opt_state, key=key, update_index=index)
    return new_state, metrics


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
        raise TypeError(
            f"config must be a ppo.Config, got {type(config).__module__}.{type(config).__qualname__}."
        )
    return scan_train(config, vector_env(config, env, env_params), init, update)
