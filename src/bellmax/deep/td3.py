"""Twin Delayed DDPG, TD3 (Fujimoto, van Hoof & Meger 2018, "Addressing Function Approximation
Error in Actor-Critic Methods").

A deterministic policy `mu(s)` (DDPG, Lillicrap et al. 2016) with the paper's three fixes:

- clipped double Q-learning (section 4.2, eq. 10): twin critics regress onto
  `y = r + gamma * d * min_i Q_target_i(s', a')`;
- target policy smoothing (section 5.3, eq. 15): `a' = clip(mu_target(s') + clip(eps, -c, c),
  -1, 1)`, `eps ~ N(0, target_policy_noise^2)`, `c = target_noise_clip`;
- delayed policy updates (section 5.2): the actor and both target networks change only every
  `policy_delay` gradient steps; the actor ascends `Q_1(s, mu(s))` by the deterministic
  policy gradient (Silver et al. 2014), the targets follow by Polyak averaging with rate
  `tau`.

Exploration adds Gaussian noise `N(0, exploration_noise^2)` to `mu(s)`; the first
`learning_starts` env steps take uniformly random actions. Actions are normalised to
`[-1, 1]^d` (the actor ends in `tanh`, the noises are in these units, the buffer stores them)
and rescaled to the action `Box` only in the environment. The loop (collection, replay,
gradient steps inside one `lax.scan`; `jax.vmap(train)(keys)` for many seeds) is the one SAC
uses, `bellmax.deep.off_policy.off_policy_update`:

    train = make_train(Config(), "Pendulum-v1")
    state, metrics = jax.jit(train)(jax.random.key(0))

Only continuous `Box` action spaces (finite bounds) are supported; a `Discrete` environment
gets an error that says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.core.types import Transition
from bellmax.deep.loop import EpisodeMetrics, check_fields, scan_train, vector_env
from bellmax.deep.networks import MLP, flatten_obs
from bellmax.deep.off_policy import (
    OffPolicyRun,
    TrainState,
    check_continuous_actions,
    fit_critic,
    init_state,
    off_policy_update,
    optimizer,
    to_env_action,
    twin_critic,
)
from bellmax.envs.vector import VectorEnv

NAME = "td3"
#: `bellmax train td3` without --env: continuous actions only, so not CartPole-v1.
DEFAULT_ENV = "Pendulum-v1"
ALGORITHM = "TD3"
#: State fields equal for every seed: the driver keeps them out of its `vmap` over seeds, so
#: the `lax.cond`s on them stay branches (`bellmax.train.driver._vmap_sharing`).
SHARED_ACROSS_SEEDS = ("update_index", "gradient_step")
OWNER = f"{ALGORITHM} Config"

__all__ = [
    "ALGORITHM",
    "DEFAULT_ENV",
    "NAME",
    "Config",
    "DeterministicActor",
    "Learner",
    "Metrics",
    "TrainState",
    "act",
    "actor_step",
    "clipped_double_q_target",
    "critic_step",
    "exploration_action",
    "gradient_step",
    "init",
    "make_train",
    "policy_params",
    "smoothed_target_action",
    "update",
]


@dataclasses.dataclass(frozen=True)
class Config(OffPolicyRun):
    """TD3 settings; the defaults solve Pendulum-v1 (mean return >= -200) within 2e4 steps.

    rl-baselines3-zoo's Pendulum-v1 TD3 (lr 1e-3, gamma 0.98 there, buffer 2e5, exploration
    noise 0.1, [400, 300] networks, learning_starts 1e4, a gradient step per env step) with
    the paper's smoothing (0.2, clip 0.5) and delay (2), gamma 0.99, learning_starts 1000
    and [64, 64] networks, which learn Pendulum as fast per env step here and run several
    times faster on a CPU; buffer_size 1e6 (held up to the run's steps); and, as in every
    bellmax network, orthogonal initialisation and Adam's eps 1e-5 (SB3: torch's defaults
    and 1e-8), gradients clipped at norm 100 (SB3: not clipped).
    """

    algorithm: ClassVar[str] = ALGORITHM
    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (
        *OffPolicyRun.HYPERPARAMETERS,
        "target_policy_noise",
        "target_noise_clip",
        "exploration_noise",
    )
    """The numeric fields that may be traced (`bellmax.deep.loop.with_hyperparameters`)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and of each critic."""
    policy_delay: int = 2
    """Gradient steps per actor and target-network update (the paper's d)."""
    target_policy_noise: float = 0.2
    """Std of the Gaussian noise added to the target action (in [-1, 1] action units)."""
    target_noise_clip: float = 0.5
    """That noise is clipped to [-target_noise_clip, target_noise_clip]."""
    exploration_noise: float = 0.1
    """Std of the Gaussian noise added to the actor's action while collecting ([-1, 1] units)."""

    def __post_init__(self) -> None:
        self.check_fields()
        check_int(self.policy_delay, "policy_delay", owner=OWNER, low=1)
        noises = ("target_policy_noise", "target_noise_clip", "exploration_noise")
        check_fields(self, noises, check_number, owner=OWNER, low=0)


class DeterministicActor(nn.Module):
    """The TD3 policy `mu: [..., D] -> [..., d]` in `[-1, 1]` (an MLP ending in `tanh`).

    Attributes:
      action_dim: action dimensions `d`.
      hidden_sizes: widths of the hidden layers.
      activation: hidden activation name.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.tanh(MLP(self.hidden_sizes, self.activation, self.action_dim, 0.01)(x))


@struct.dataclass
class Learner:
    """TD3's networks, targets and optimiser states."""

    __repr__ = summary_repr

    actor: Any
    """Policy parameters."""
    target_actor: Any
    """Polyak-averaged copy of `actor` (for the targets)."""
    critic: Any
    """Twin Q-network parameters."""
    target_critic: Any
    """Polyak-averaged copy of `critic`."""
    actor_opt: Any
    critic_opt: Any


@struct.dataclass
class Metrics(EpisodeMetrics):
    """Per-update scalars of TD3 (means over the update's gradient steps; 0 before learning)."""

    __repr__ = summary_repr

    loss: jax.Array
    """critic_loss + actor_loss (a NaN here stops the driver)."""
    critic_loss: jax.Array
    """`0.5 * (MSE(Q_1, y) + MSE(Q_2, y))` against the clipped double-Q target."""
    actor_loss: jax.Array
    """`-mean(Q_1(s, mu(s)))` (evaluated at every step, applied every policy_delay)."""
    q_mean: jax.Array
    """Mean `Q_1(s, a)` of the minibatch's transitions."""
    actor_updates: jax.Array
    """Fraction of this update's gradient steps that updated the actor and the targets."""
    learning: jax.Array
    """True where this update ran gradient steps."""
    learning_rate: jax.Array
    """The step size of both networks (constant)."""
    grad_norm: jax.Array
    """Mean over the update's gradient steps of the global norm of the critic's and the
    actor's gradients together, before clipping (each is clipped to max_grad_norm on its
    own; the actor's counts in the steps that update it; 0 before learning starts)."""


def _act_dim(venv: VectorEnv) -> int:
    return check_continuous_actions(venv.action_space, ALGORITHM)


def _actor(config: Config, act_dim: int) -> DeterministicActor:
    return DeterministicActor(act_dim, tuple(config.hidden_sizes), config.activation)


def smoothed_target_action(mu_t: jax.Array, noise: jax.Array, noise_clip: float) -> jax.Array:
    """Target policy smoothing (eq. 15): `clip(mu_t + clip(noise, -noise_clip, noise_clip),
    -1, 1)`, elementwise (actions normalised to `[-1, 1]`)."""
    return jnp.clip(mu_t + jnp.clip(noise, -noise_clip, noise_clip), -1.0, 1.0)


def clipped_double_q_target(
    r_t: jax.Array, discount_t: jax.Array, q1_t: jax.Array, q2_t: jax.Array
) -> jax.Array:
    """Clipped double Q-learning (eq. 10): `r_t + discount_t * min(q1_t, q2_t)`, elementwise,
    with no gradient (`discount_t` is `gamma`, or 0 where the episode terminated)."""
    return jax.lax.stop_gradient(r_t + discount_t * jnp.minimum(q1_t, q2_t))


def critic_step(
    learner: Learner, batch: Transition, key: jax.Array, config: Config, venv: VectorEnv
) -> tuple[Learner, dict[str, jax.Array]]:
    """One critic step onto the clipped double-Q target of smoothed target actions.

    Returns:
      The learner with new `critic` and `critic_opt`; `critic_loss` and `q_mean`.
    """
    act_dim = _act_dim(venv)
    actor, critic = _actor(config, act_dim), twin_critic(config)
    x_tm1 = flatten_obs(batch.obs_tm1, venv.observation_space)
    x_t = flatten_obs(batch.obs_t, venv.observation_space)
    mu_t = actor.apply(learner.target_actor, x_t)
    noise = config.target_policy_noise * jax.random.normal(key, mu_t.shape, mu_t.dtype)
    a_t = smoothed_target_action(mu_t, noise, config.target_noise_clip)
    q1_t, q2_t = critic.apply(learner.target_critic, x_t, a_t)
    target = clipped_double_q_target(
        batch.reward_t.astype(jnp.float32), config.gamma * batch.discount_t, q1_t, q2_t
    )
    return fit_critic(learner, x_tm1, batch.action_tm1, target, config)


def _actor_loss(actor_params, critic_params, x, config: Config, act_dim: int) -> jax.Array:
    q1, _ = twin_critic(config).apply(
        critic_params, x, _actor(config, act_dim).apply(actor_params, x)
    )
    return -jnp.mean(q1)


def actor_step(
    learner: Learner, x: jax.Array, config: Config, act_dim: int
) -> tuple[Learner, jax.Array, jax.Array]:
    """One deterministic policy-gradient step (Silver et al. 2014) ascending `Q_1(s, mu(s))`
    with the critic frozen, then the Polyak update of both target networks.

    Returns:
      `(learner, actor_loss, actor_grad_norm)`: the loss before the step and its gradients'
      global norm before clipping.
    """
    tx = optimizer(config)
    critic = jax.lax.stop_gradient(learner.critic)
    loss, grads = jax.value_and_grad(_actor_loss)(learner.actor, critic, x, config, act_dim)
    updates, actor_opt = tx.update(grads, learner.actor_opt, learner.actor)
    actor = optax.apply_updates(learner.actor, updates)
    tau = config.tau
    new = learner.replace(
        actor=actor,
        actor_opt=actor_opt,
        target_actor=optax.incremental_update(actor, learner.target_actor, tau),
        target_critic=optax.incremental_update(learner.critic, learner.target_critic, tau),
    )
    return new, loss, optax.tree.norm(grads)


def gradient_step(
    learner: Learner,
    batch: Transition,
    step: jax.Array,
    key: jax.Array,
    config: Config,
    venv: VectorEnv,
) -> tuple[Learner, dict[str, jax.Array]]:
    """Gradient step number `step` (counted from 1): a critic step, and where `step` is a
    multiple of `policy_delay` an actor step and the target updates (section 5.2)."""
    act_dim = _act_dim(venv)
    learner, aux = critic_step(learner, batch, key, config, venv)
    x = flatten_obs(batch.obs_tm1, venv.observation_space)
    delayed = step % config.policy_delay == 0

    def hold(lr):
        return lr, _actor_loss(lr.actor, lr.critic, x, config, act_dim), jnp.zeros((), jnp.float32)

    learner, a_loss, a_norm = jax.lax.cond(
        delayed, lambda lr: actor_step(lr, x, config, act_dim), hold, learner
    )
    aux = {**aux, "actor_loss": a_loss, "actor_updates": delayed.astype(jnp.float32)}
    aux["loss"] = aux["critic_loss"] + aux["actor_loss"]
    aux["grad_norm"] = jnp.hypot(aux.pop("critic_grad_norm"), a_norm)
    return learner, aux


def init(key: jax.Array, config: Config, venv: VectorEnv) -> TrainState:
    """A fresh training state: actor, twin critics, their target copies, optimisers, an empty
    buffer, reset environments.

    Args:
      key: PRNG key, consumed.
      config: the settings.
      venv: the vector environment (continuous `Box` actions).
    """

    def init_learner(k, x, d):
        k_actor, k_critic = jax.random.split(k)
        actor = _actor(config, d).init(k_actor, x)
        critic = twin_critic(config).init(k_critic, x, jnp.zeros((x.shape[0], d), jnp.float32))
        tx = optimizer(config)
        return Learner(
            actor=actor,
            target_actor=actor,
            critic=critic,
            target_critic=critic,
            actor_opt=tx.init(actor),
            critic_opt=tx.init(critic),
        )

    return init_state(key, config, venv, init_learner)


def act(
    params: Any,
    obs: jax.Array,
    key: jax.Array,
    config: Config,
    venv: VectorEnv,
    *,
    deterministic: bool = True,
) -> jax.Array:
    """Actions `[B, *action_shape]` in the `Box` for observations `[B, ...]`.

    Args:
      params: actor parameters (`policy_params(state)`).
      obs: batched observations.
      key: PRNG key (used only when not deterministic).
      config: the settings.
      venv: the vector environment (for its spaces).
      deterministic: `mu(s)` if True; with exploration noise (clipped to `[-1, 1]`) otherwise.
    """
    mu = _actor(config, _act_dim(venv)).apply(params, flatten_obs(obs, venv.observation_space))
    if not deterministic:
        mu = exploration_action(mu, key, config.exploration_noise)
    return to_env_action(mu, venv.action_space)


def exploration_action(mu: jax.Array, key: jax.Array, noise_std: float) -> jax.Array:
    """The behaviour policy's action: `clip(mu + noise_std * eps, -1, 1)`, `eps ~ N(0, I)`
    drawn with `key` (normalised actions `[..., d]`; the exploration of Fujimoto et al. 2018)."""
    noise = noise_std * jax.random.normal(key, mu.shape, mu.dtype)
    return jnp.clip(mu + noise, -1.0, 1.0)


def policy_params(state: TrainState) -> Any:
    """What `act` needs: the actor's parameters."""
    return state.learner.actor


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One TD3 iteration: `train_frequency` steps of every env, then `gradient_steps` steps.

    Pure and jittable; depends only on `(state, config, venv)`.

    Returns:
      `(new_state, metrics)`.
    """
    actor = _actor(config, _act_dim(venv))

    def explore(learner, x, key):
        return exploration_action(actor.apply(learner.actor, x), key, config.exploration_noise)

    def learn_step(learner, batch, step, key):
        return gradient_step(learner, batch, step, key, config, venv)

    state, m = off_policy_update(state, config, venv, explore, learn_step)
    return state, Metrics(**m)


def make_train(config: Config, env: Any, env_params: Any = None):
    """Build `train(key) -> (TrainState, Metrics stacked over num_updates)`.

    Args:
      config: the settings (validated here).
      env: an env id (bellmax or Gymnasium), an `Environment`, a gymnax-API environment or a
        `VectorEnv` (its `num_envs` must equal `config.num_envs`), with continuous actions.
      env_params: parameters for an environment object (default: its own).

    Returns:
      `train(key)`, pure; `jax.jit(jax.vmap(train))(keys)` trains many seeds at once for
      JAX environments (Gymnasium ids step on the host: run those seeds one by one).
    """
    if not isinstance(config, Config):
        raise TypeError(
            f"config must be a td3.Config, got {type(config).__module__}.{type(config).__qualname__}."
        )
    return scan_train(config, vector_env(config, env, env_params), init, update)
