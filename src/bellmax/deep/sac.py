"""Soft Actor-Critic (Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications").

Maximum-entropy reinforcement learning for continuous actions: the policy maximises
`E[sum_t r_t + alpha * H(pi(.|s_t))]`. Twin soft Q-networks (section 5, "two Q-functions to
mitigate positive bias") regress onto the soft TD target

    y = r + gamma * d * (min_i Q_target_i(s', a') - alpha * log pi(a'|s')),   a' ~ pi(.|s')

(the soft Bellman backup of section 4 with the soft state value, sampled as in section 5),
whose target networks follow the online ones by Polyak averaging with rate `tau`. The policy is
a Gaussian squashed by `tanh` and rescaled to the action bounds (appendix C), trained by the
reparameterisation trick to minimise `E[alpha * log pi(a|s) - min_i Q_i(s, a)]` (section 5's
policy objective). The temperature `alpha` is tuned
towards a target entropy `H_bar` (default `-act_dim`, section 5) by minimising
`-log(alpha) * (log pi(a|s) + H_bar)` (eq. 18, in log space as SB3 does), or held fixed
(`autotune=False`).

One `update` collects `train_frequency` steps of all `num_envs` environments (uniformly random
actions for the first `learning_starts` env steps), stores them in the shared replay buffer
(`bellmax.deep.replay`), and runs `gradient_steps` gradient steps, each: critic, then actor
(against the updated critic), then temperature, then the Polyak target update. The whole run
is one `lax.scan` inside one `jit`; `jax.vmap(train)(keys)` trains many seeds at once:

    train = make_train(Config(), "Pendulum-v1")
    state, metrics = jax.jit(train)(jax.random.key(0))

Log-probabilities are those of the squashed action in `[-1, 1]^d`, before the affine rescaling
to the `Box` (SB3's convention; the rescaling adds the constant `-sum log((high - low) / 2)`,
so the default target entropy `-act_dim` refers to that normalised action). The replay buffer
stores the normalised actions too. Episodes cut by a time limit bootstrap from their true
last observation; terminated ones do not.

Discrete actions (Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings"): for a
`Discrete(n)` action space (`actions="auto"`, the default, or `"discrete"`) the policy is a
categorical distribution over the `n` actions and the twin critics output all `n` values
(`TwinQValues`), so every expectation over the policy is a sum instead of a sample (section
4): the target is `r + gamma * d * sum_a' pi(a'|s') (min_i Q_target_i(s', a') - alpha * log
pi(a'|s'))`, the actor loss `E_s[sum_a pi(a|s) (alpha * log pi(a|s) - min_i Q_i(s, a))]` (no
reparameterisation), the temperature loss uses the exact entropy, and the default target
entropy is `target_entropy_scale * log n` (0.5 here; the paper's 0.98 of the uniform policy's
entropy held CartPole-v1's policy near uniform: temperature ~3.5e4 and greedy returns 125-147
after 2e4 steps, seeds 0 and 1). Time limits and replay work as for continuous actions.

The pieces SAC shares with TD3 (the run settings `OffPolicyRun`, the twin critics `TwinQ` and
`TwinQValues` and their regression step, action rescaling, the collection and update loop
`off_policy_update`) live in `bellmax.deep.off_policy`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from bellmax.core.checks import check_bool, check_choice, check_number
from bellmax.core.display import summary_repr
from bellmax.core.types import Transition
from bellmax.deep.distributions import Categorical
from bellmax.deep.loop import EpisodeMetrics, check_fields, is_traced, scan_train, vector_env
from bellmax.deep.networks import MLP, flatten_obs
from bellmax.deep.off_policy import (
    OffPolicyRun,
    TrainState,
    check_continuous_actions,
    critic_loss,
    fit_critic,
    init_state,
    off_policy_update,
    optimizer,
    to_env_action,
    twin_critic,
)
from bellmax.envs import spaces
from bellmax.envs.vector import VectorEnv

NAME = "sac"
#: `bellmax train sac` without --env: continuous actions only, so not CartPole-v1.
DEFAULT_ENV = "Pendulum-v1"
ALGORITHM = "SAC"
#: State fields equal for every seed: the driver keeps them out of its `vmap` over seeds, so
#: the `lax.cond`s on them stay branches (`bellmax.train.driver._vmap_sharing`).
SHARED_ACROSS_SEEDS = ("update_index", "gradient_step")
OWNER = f"{ALGORITHM} Config"

LOG_STD_MIN = -20.0
"""Lower clip of the policy's log standard deviation (Haarnoja's reference code, SB3)."""
LOG_STD_MAX = 2.0
"""Upper clip of the policy's log standard deviation."""
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
#: `Config.actions` choices.
ACTIONS = ("auto", "continuous", "discrete")

__all__ = [
    "ACTIONS",
    "ALGORITHM",
    "DEFAULT_ENV",
    "LOG_STD_MAX",
    "LOG_STD_MIN",
    "NAME",
    "CategoricalActor",
    "Config",
    "Learner",
    "Metrics",
    "SquashedGaussianActor",
    "TanhGaussian",
    "TrainState",
    "act",
    "actor_loss",
    "actor_temperature_step",
    "critic_loss",
    "critic_step",
    "discrete_actor_loss",
    "discrete_soft_td_target",
    "discrete_soft_value",
    "gradient_step",
    "init",
    "make_train",
    "policy_params",
    "soft_td_target",
    "tanh_log_det_jacobian",
    "temperature_loss",
    "update",
]


@dataclasses.dataclass(frozen=True)
class Config(OffPolicyRun):
    """SAC settings; the defaults solve Pendulum-v1 (mean return >= -200) in under 1e4 steps.

    rl-baselines3-zoo's Pendulum-v1 SAC (lr 1e-3, batch 256, buffer 1e6, gamma 0.99, tau
    0.005, learning_starts 1000 here (zoo: SB3's 100), one gradient step per env step, 1 env,
    automatic temperature from 1.0 towards -act_dim) with smaller [64, 64] networks (zoo:
    [256, 256]), which learn Pendulum as fast per env step and run several times faster on
    a CPU; and, as in every bellmax network, orthogonal initialisation and Adam's eps 1e-5
    (SB3: torch's defaults and 1e-8), gradients clipped at norm 100 (SB3: not clipped).
    """

    algorithm: ClassVar[str] = ALGORITHM
    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (
        *OffPolicyRun.HYPERPARAMETERS,
        "init_temperature",
        "target_entropy",
        "target_entropy_scale",
    )
    """The numeric fields that may be traced (`bellmax.deep.loop.with_hyperparameters`)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and of each critic."""
    autotune: bool = True
    """Tune the temperature towards target_entropy (False: keep init_temperature fixed)."""
    init_temperature: float = 1.0
    """The temperature alpha at the start (autotune), or the fixed one (no autotune)."""
    target_entropy: float | None = None
    """Entropy (nats) the temperature steers the policy towards. Continuous: of the squashed
    action in [-1, 1]^d, below act_dim * log 2; None: -act_dim (Haarnoja et al. 2018).
    Discrete: in [0, log n); None: target_entropy_scale * log n."""
    actions: str = "auto"
    """Action kind: auto (discrete SAC for a Discrete action space, continuous for a Box),
    continuous or discrete (Christodoulou 2019)."""
    target_entropy_scale: float = 0.5
    """Discrete actions with target_entropy None: the target is this fraction of log n, the
    uniform policy's entropy (Christodoulou 2019's 0.98 kept CartPole's policy near uniform)."""

    def __post_init__(self) -> None:
        self.check_fields()
        check_bool(self.autotune, "autotune", owner=OWNER)
        positive = {"low": 0, "low_open": True}
        check_fields(self, ("init_temperature",), check_number, owner=OWNER, **positive)
        if self.target_entropy is not None:
            check_fields(self, ("target_entropy",), check_number, owner=OWNER)
        check_choice(self.actions, "actions", ACTIONS, owner=OWNER)
        unit = {"low": 0, "high": 1, "high_open": True}
        check_fields(self, ("target_entropy_scale",), check_number, owner=OWNER, **unit)

    def action_kind(self, space: Any) -> tuple[bool, int]:
        """`(True, n)` for a `Discrete(n)` action space (unless `actions="continuous"`),
        `(False, d)` for a float `Box` of `d` elements with finite bounds (unless
        `actions="discrete"`).

        Raises:
          ValueError: any other action space, or one `actions` excludes, naming the fix.
        """
        if isinstance(space, spaces.Discrete) and self.actions != "continuous":
            return True, int(space.n)
        if self.actions == "discrete":
            raise ValueError(
                f"{OWNER}.actions='discrete' needs a Discrete action space; got {space!r}. "
                "Set actions='auto' (or 'continuous') for a Box, or pick an environment with "
                "discrete actions (e.g. CartPole-v1)."
            )
        if self.actions == "continuous":
            note = f"as {OWNER}.actions='continuous'; set actions='auto' for Discrete ones"
        else:
            note = "or Discrete ones: discrete-action SAC, Christodoulou 2019"
        return False, check_continuous_actions(space, ALGORITHM, note=note)

    def entropy_target(self, size: int, discrete: bool = False) -> float | jax.Array:
        """The target entropy: `target_entropy`, else `-size` for `size` action dimensions
        (continuous) or `target_entropy_scale * log size` for `size` actions (discrete); a
        traced hyperparameter gives a traced target."""
        if self.target_entropy is not None:
            target = self.target_entropy
        elif discrete:
            target = self.target_entropy_scale * math.log(size)
        else:
            target = -size
        return target if is_traced(target) else float(target)

    def validate(self, venv: VectorEnv | None = None) -> None:
        """`OffPolicyRun.validate`, and that the target entropy is reachable: the squashed
        Gaussian's entropy on `[-1, 1]^d` is below `d * log 2` (the uniform distribution's);
        a categorical's over `n` actions lies in `[0, log n]`.

        Raises:
          ValueError: naming the field, its value and the fix.
        """
        super().validate(venv)
        if venv is None or self.target_entropy is None or not self.autotune:
            return
        if is_traced(self.target_entropy):
            return  # data: a sweep checks each trial's concrete value
        discrete, d = self.action_kind(venv.action_space)
        if discrete and not 0.0 <= self.target_entropy < math.log(d):
            default = self.target_entropy_scale * math.log(d)  # traced in a sweep
            default = "a sweep's value" if is_traced(default) else f"{default:.4f}"
            raise ValueError(
                f"{OWNER}.target_entropy={self.target_entropy} cannot be reached: a policy "
                f"over {d} actions has entropy in [0, log {d} = {math.log(d):.4f}] (the "
                f"uniform one's at the top), so the temperature would grow or shrink without "
                f"bound; pick a target in [0, {math.log(d):.4f}) (the default, None, is "
                f"target_entropy_scale * log {d} = {default})."
            )
        if not discrete and self.target_entropy >= d * _LOG_2:
            raise ValueError(
                f"{OWNER}.target_entropy={self.target_entropy} cannot be reached: a policy "
                f"on [-1, 1]^{d} has entropy below {d} * log 2 = {d * _LOG_2:.4f} (the "
                f"uniform one's), so the temperature would grow without bound; pick a lower "
                f"target (the default, None, is -act_dim = {-d})."
            )


def tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    """`log |d tanh(u) / du| = log(1 - tanh(u)^2)`, elementwise, in the stable form
    `2 * (log 2 - u - softplus(-2 u))` (finite for any `u`; the direct form is `-inf` once
    `tanh(u)` rounds to 1)."""
    return 2.0 * (_LOG_2 - u - jax.nn.softplus(-2.0 * u))


@struct.dataclass
class TanhGaussian:
    """`a = tanh(u)`, `u ~ N(mean, exp(log_std)^2)` per dimension (Haarnoja et al. 2018,
    appendix C): a distribution on `(-1, 1)^d`, batched over leading axes."""

    __repr__ = summary_repr

    mean: jax.Array
    log_std: jax.Array

    def log_prob_pre_tanh(self, u: jax.Array) -> jax.Array:
        """`[...]` log-density of `a = tanh(u)` given the pre-squash sample `u [..., d]`:
        `log N(u) - sum log(1 - tanh(u)^2)` (appendix C)."""
        log_std = jnp.broadcast_to(self.log_std, self.mean.shape)
        z = (u - self.mean) * jnp.exp(-log_std)
        gauss = jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)
        return gauss - jnp.sum(tanh_log_det_jacobian(u), axis=-1)

    def log_prob(self, action: jax.Array) -> jax.Array:
        """`[...]` log-density of squashed actions `[..., d]` in `(-1, 1)` (they are clipped
        to `1 - 1e-6` in magnitude before `atanh`)."""
        a = jnp.clip(action, -1.0 + 1e-6, 1.0 - 1e-6)
        return self.log_prob_pre_tanh(jnp.arctanh(a))

    def sample_and_log_prob(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`(a [..., d], log_prob [...])`: a reparameterised sample and its log-density."""
        std = jnp.exp(jnp.broadcast_to(self.log_std, self.mean.shape))
        u = self.mean + std * jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return jnp.tanh(u), self.log_prob_pre_tanh(u)

    def mode(self) -> jax.Array:
        """`[..., d]` `tanh(mean)`, the deterministic action."""
        return jnp.tanh(self.mean)


class CategoricalActor(nn.Module):
    """The discrete SAC policy: `[..., D] -> Categorical` over `num_actions` actions
    (Christodoulou 2019).

    Attributes:
      num_actions: number of actions `n`.
      hidden_sizes: widths of the hidden layers.
      activation: hidden activation name.
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> Categorical:
        return Categorical(MLP(self.hidden_sizes, self.activation, self.num_actions, 0.01)(x))


class SquashedGaussianActor(nn.Module):
    """The SAC policy: `[..., D] -> TanhGaussian` with state-dependent mean and log-std
    (clipped to `[LOG_STD_MIN, LOG_STD_MAX]`).

    Attributes:
      action_dim: action dimensions `d`.
      hidden_sizes: widths of the hidden layers.
      activation: hidden activation name.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> TanhGaussian:
        out = MLP(self.hidden_sizes, self.activation, 2 * self.action_dim, 0.01)(x)
        mean, log_std = jnp.split(out, 2, axis=-1)
        return TanhGaussian(mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))


@struct.dataclass
class Learner:
    """SAC's networks, temperature and optimiser states."""

    __repr__ = summary_repr

    actor: Any
    """Policy parameters."""
    critic: Any
    """Twin Q-network parameters."""
    target_critic: Any
    """Polyak-averaged copy of `critic`."""
    log_alpha: jax.Array
    """float32 scalar: log of the temperature."""
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any


@struct.dataclass
class Metrics(EpisodeMetrics):
    """Per-update scalars of SAC (means over the update's gradient steps; 0 before learning)."""

    __repr__ = summary_repr

    loss: jax.Array
    """critic_loss + actor_loss + alpha_loss (a NaN here stops the driver)."""
    critic_loss: jax.Array
    """`0.5 * (MSE(Q_1, y) + MSE(Q_2, y))` against the soft TD target."""
    actor_loss: jax.Array
    """`mean(alpha * log pi(a|s) - min_i Q_i(s, a))`."""
    alpha_loss: jax.Array
    """`-mean(log alpha * (log pi(a|s) + target_entropy))` (0 without autotune)."""
    alpha: jax.Array
    """Temperature after the update."""
    entropy: jax.Array
    """`-mean(log pi(a|s))` of the actor's samples on the minibatch (discrete: the mean of
    the policy's exact entropies)."""
    q_mean: jax.Array
    """Mean `Q_1(s, a)` of the minibatch's transitions."""
    learning: jax.Array
    """True where this update ran gradient steps."""
    learning_rate: jax.Array
    """The step size of every network and of the temperature (constant)."""
    grad_norm: jax.Array
    """Mean over the update's gradient steps of the global norm of the critic's and the
    actor's gradients together, before clipping (each is clipped to max_grad_norm on its
    own; 0 before learning starts)."""


def _actor(config: Config, size: int, discrete: bool = False) -> nn.Module:
    cls = CategoricalActor if discrete else SquashedGaussianActor
    return cls(size, tuple(config.hidden_sizes), config.activation)


def _kind(config: Config, venv: VectorEnv) -> tuple[bool, int]:
    return config.action_kind(venv.action_space)


def soft_td_target(
    r_t: jax.Array,
    discount_t: jax.Array,
    q1_t: jax.Array,
    q2_t: jax.Array,
    log_prob_t: jax.Array,
    alpha: jax.Array,
) -> jax.Array:
    """The soft TD target `r_t + discount_t * (min(q1_t, q2_t) - alpha * log_prob_t)`
    (Haarnoja et al. 2018, sections 4-5: the soft state value, and the smaller of twin Qs).

    Args:
      r_t: rewards.
      discount_t: `gamma` where `s_t` is bootstrapped, 0 where the episode terminated.
      q1_t, q2_t: target networks' values of `(s_t, a_t)`, `a_t ~ pi(.|s_t)`.
      log_prob_t: `log pi(a_t|s_t)`.
      alpha: the temperature.

    Returns:
      The targets (elementwise over any shape; no gradient flows through them).
    """
    v_t = jnp.minimum(q1_t, q2_t) - alpha * log_prob_t
    return jax.lax.stop_gradient(r_t + discount_t * v_t)


def actor_loss(q1: jax.Array, q2: jax.Array, log_prob: jax.Array, alpha: jax.Array) -> jax.Array:
    """`mean(alpha * log_prob - min(q1, q2))` over a batch of reparameterised samples (the
    policy objective of section 5)."""
    return jnp.mean(alpha * log_prob - jnp.minimum(q1, q2))


def discrete_soft_value(
    q1: jax.Array, q2: jax.Array, log_probs: jax.Array, alpha: jax.Array
) -> jax.Array:
    """The soft state value `sum_a pi(a|s) (min(q1, q2)(s, a) - alpha * log pi(a|s))` of a
    categorical policy, exactly (Christodoulou 2019, eq. 10).

    Args:
      q1, q2: `[..., n]` twin action values of every action.
      log_probs: `[..., n]` the policy's log-probabilities.
      alpha: the temperature.

    Returns:
      `[...]` the values.
    """
    return jnp.sum(jnp.exp(log_probs) * (jnp.minimum(q1, q2) - alpha * log_probs), axis=-1)


def discrete_soft_td_target(
    r_t: jax.Array,
    discount_t: jax.Array,
    q1_t: jax.Array,
    q2_t: jax.Array,
    log_probs_t: jax.Array,
    alpha: jax.Array,
) -> jax.Array:
    """Discrete SAC's target `r_t + discount_t * discrete_soft_value(q1_t, q2_t, log_probs_t,
    alpha)`: the expectation over the next action in closed form (Christodoulou 2019,
    section 4), with no gradient.

    Args:
      r_t: `[B]` rewards.
      discount_t: `[B]` `gamma` where bootstrapped, 0 where the episode terminated.
      q1_t, q2_t: `[B, n]` target networks' values of every action in `s_t`.
      log_probs_t: `[B, n]` `log pi(.|s_t)`.
      alpha: the temperature.
    """
    v_t = discrete_soft_value(q1_t, q2_t, log_probs_t, alpha)
    return jax.lax.stop_gradient(r_t + discount_t * v_t)


def discrete_actor_loss(
    q1: jax.Array, q2: jax.Array, log_probs: jax.Array, alpha: jax.Array
) -> jax.Array:
    """`mean_s sum_a pi(a|s) (alpha * log pi(a|s) - min(q1, q2)(s, a))`, i.e. minus the mean
    soft value (Christodoulou 2019, eq. 12: the expectation over actions replaces the
    reparameterised sample). `q1, q2, log_probs`: `[B, n]`."""
    return -jnp.mean(discrete_soft_value(q1, q2, log_probs, alpha))


def temperature_loss(log_alpha: jax.Array, log_prob: jax.Array, target_entropy: float) -> jax.Array:
    """`-mean(log_alpha * (log_prob + target_entropy))` (eq. 18 in log space, as SB3): its
    gradient raises the temperature while the entropy `-mean(log_prob)` is below the target
    and lowers it while above (`log_prob` carries no gradient)."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(log_prob + target_entropy))


QFn = Callable[..., tuple[jax.Array, jax.Array]]
"""`(x [B, D], a [B, d]) -> (q1 [B], q2 [B])`: the critics the actor is trained against
(discrete: `x [B, D] -> (q1 [B, n], q2 [B, n])`, every action's values)."""


def actor_temperature_step(
    actor_params: Any,
    actor_opt: Any,
    log_alpha: jax.Array,
    alpha_opt: Any,
    x: jax.Array,
    key: jax.Array,
    q_fn: QFn,
    config: Config,
    act_dim: int,
    *,
    discrete: bool = False,
) -> tuple[Any, Any, jax.Array, Any, dict[str, jax.Array]]:
    """One actor step against the critics `q_fn` (section 5), then one temperature step (eq. 18)
    with the same samples' log-probabilities (skipped without `config.autotune`).

    Args:
      actor_params, actor_opt: the policy and its optimiser state.
      log_alpha, alpha_opt: the log-temperature and its optimiser state.
      x: `[B, D]` observation features.
      key: PRNG key for the reparameterised samples (unused when discrete).
      q_fn: the critics (frozen: no gradient reaches their parameters).
      config: the settings.
      act_dim: action dimensions (discrete: the number of actions), for the default target
        entropy.
      discrete: a categorical policy (`discrete_actor_loss`; the temperature sees each
        state's exact `sum_a pi log pi` in place of a sample's `log pi`).

    Returns:
      `(actor_params, actor_opt, log_alpha, alpha_opt, scalars)` with `actor_loss`,
      `alpha_loss`, `entropy` and `actor_grad_norm` (before clipping).
    """
    actor, tx = _actor(config, act_dim, discrete), optimizer(config)
    alpha = jnp.exp(log_alpha)

    def loss_fn(params):
        dist = actor.apply(params, x)
        if discrete:
            log_probs = dist.log_probs()
            q1, q2 = q_fn(x)
            log_prob = jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)  # -entropy
            return discrete_actor_loss(q1, q2, log_probs, alpha), log_prob
        a, log_prob = dist.sample_and_log_prob(key)
        q1, q2 = q_fn(x, a)
        return actor_loss(q1, q2, log_prob, alpha), log_prob

    (a_loss, log_prob), grads = jax.value_and_grad(loss_fn, has_aux=True)(actor_params)
    updates, actor_opt = tx.update(grads, actor_opt, actor_params)
    actor_params = optax.apply_updates(actor_params, updates)
    if config.autotune:
        target = config.entropy_target(act_dim, discrete)
        t_loss, g = jax.value_and_grad(temperature_loss)(log_alpha, log_prob, target)
        updates, alpha_opt = tx.update(g, alpha_opt, log_alpha)
        log_alpha = optax.apply_updates(log_alpha, updates)
    else:
        t_loss = jnp.zeros((), jnp.float32)
    scalars = {
        "actor_loss": a_loss,
        "alpha_loss": t_loss,
        "entropy": -jnp.mean(log_prob),
        "actor_grad_norm": optax.tree.norm(grads),
    }
    return actor_params, actor_opt, log_alpha, alpha_opt, scalars


def critic_step(
    learner: Learner, batch: Transition, key: jax.Array, config: Config, venv: VectorEnv
) -> tuple[Learner, dict[str, jax.Array]]:
    """One critic step on the soft TD target (section 5; discrete actions: the exact
    expectation, `discrete_soft_td_target`). Returns the learner with new `critic` and
    `critic_opt`, and `critic_loss`, `q_mean`, `critic_grad_norm`."""
    discrete, act_dim = _kind(config, venv)
    actor = _actor(config, act_dim, discrete)
    x_tm1 = flatten_obs(batch.obs_tm1, venv.observation_space)
    x_t = flatten_obs(batch.obs_t, venv.observation_space)
    if discrete:
        log_probs_t = actor.apply(learner.actor, x_t).log_probs()
        q1_t, q2_t = twin_critic(config, act_dim).apply(learner.target_critic, x_t)
        target = discrete_soft_td_target(
            batch.reward_t.astype(jnp.float32),
            config.gamma * batch.discount_t,
            q1_t,
            q2_t,
            log_probs_t,
            jnp.exp(learner.log_alpha),
        )
        return fit_critic(learner, x_tm1, batch.action_tm1, target, config, num_actions=act_dim)
    critic = twin_critic(config)
    a_t, log_prob_t = actor.apply(learner.actor, x_t).sample_and_log_prob(key)
    q1_t, q2_t = critic.apply(learner.target_critic, x_t, a_t)
    target = soft_td_target(
        batch.reward_t.astype(jnp.float32),
        config.gamma * batch.discount_t,
        q1_t,
        q2_t,
        log_prob_t,
        jnp.exp(learner.log_alpha),
    )
    return fit_critic(learner, x_tm1, batch.action_tm1, target, config)


def gradient_step(
    learner: Learner, batch: Transition, key: jax.Array, config: Config, venv: VectorEnv
) -> tuple[Learner, dict[str, jax.Array]]:
    """One SAC gradient step on a minibatch: critic, actor (against the updated critic),
    temperature, then `target <- tau * critic + (1 - tau) * target`."""
    discrete, act_dim = _kind(config, venv)
    k_critic, k_actor = jax.random.split(key)
    learner, c_aux = critic_step(learner, batch, k_critic, config, venv)
    critic = twin_critic(config, act_dim if discrete else None)
    x = flatten_obs(batch.obs_tm1, venv.observation_space)
    critic_params = jax.lax.stop_gradient(learner.critic)

    def q_fn(x, a=None):
        return critic.apply(critic_params, x, a)

    actor_params, actor_opt, log_alpha, alpha_opt, a_aux = actor_temperature_step(
        learner.actor,
        learner.actor_opt,
        learner.log_alpha,
        learner.alpha_opt,
        x,
        k_actor,
        q_fn,
        config,
        act_dim,
        discrete=discrete,
    )
    target = optax.incremental_update(learner.critic, learner.target_critic, config.tau)
    learner = learner.replace(
        actor=actor_params,
        actor_opt=actor_opt,
        log_alpha=log_alpha,
        alpha_opt=alpha_opt,
        target_critic=target,
    )
    aux = {**c_aux, **a_aux, "alpha": jnp.exp(log_alpha)}
    aux["loss"] = aux["critic_loss"] + aux["actor_loss"] + aux["alpha_loss"]
    aux["grad_norm"] = jnp.hypot(aux.pop("critic_grad_norm"), aux.pop("actor_grad_norm"))
    return learner, aux


def init(key: jax.Array, config: Config, venv: VectorEnv) -> TrainState:
    """A fresh training state: actor, twin critics and their target copy, temperature
    `init_temperature`, optimisers, an empty buffer, reset environments.

    Args:
      key: PRNG key, consumed.
      config: the settings.
      venv: the vector environment (continuous `Box` or `Discrete` actions).

    Returns:
      The initial `TrainState`.
    """
    discrete, _ = _kind(config, venv)

    def init_learner(k, x, d):
        k_actor, k_critic = jax.random.split(k)
        actor = _actor(config, d, discrete).init(k_actor, x)
        if discrete:
            critic = twin_critic(config, d).init(k_critic, x)
        else:
            a = jnp.zeros((x.shape[0], d), jnp.float32)
            critic = twin_critic(config).init(k_critic, x, a)
        t0 = config.init_temperature
        log_alpha = jnp.log(t0) if is_traced(t0) else math.log(t0)
        log_alpha = jnp.asarray(log_alpha, jnp.float32)
        tx = optimizer(config)
        return Learner(
            actor=actor,
            critic=critic,
            target_critic=critic,
            log_alpha=log_alpha,
            actor_opt=tx.init(actor),
            critic_opt=tx.init(critic),
            alpha_opt=tx.init(log_alpha),
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
    """Actions `[B, *action_shape]` in the `Box` (`[B]` integers for `Discrete` actions) for
    observations `[B, ...]`.

    Args:
      params: actor parameters (`policy_params(state)`).
      obs: batched observations.
      key: PRNG key (used only when not deterministic).
      config: the settings.
      venv: the vector environment (for its spaces).
      deterministic: `tanh(mean)` (discrete: the most likely action) if True, a sample of
        the policy otherwise.
    """
    discrete, size = _kind(config, venv)
    dist = _actor(config, size, discrete).apply(params, flatten_obs(obs, venv.observation_space))
    if discrete:
        a = dist.mode() if deterministic else dist.sample(key)
        return a.astype(venv.action_space.dtype)
    a = dist.mode() if deterministic else dist.sample_and_log_prob(key)[0]
    return to_env_action(a, venv.action_space)


def policy_params(state: TrainState) -> Any:
    """What `act` needs: the actor's parameters."""
    return state.learner.actor


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One SAC iteration: `train_frequency` steps of every env, then `gradient_steps` steps.

    Pure and jittable; depends only on `(state, config, venv)`.

    Returns:
      `(new_state, metrics)`.
    """
    discrete, act_dim = _kind(config, venv)
    actor = _actor(config, act_dim, discrete)

    def explore(learner, x, key):
        dist = actor.apply(learner.actor, x)
        return dist.sample(key) if discrete else dist.sample_and_log_prob(key)[0]

    def learn_step(learner, batch, step, key):
        return gradient_step(learner, batch, key, config, venv)

    state, m = off_policy_update(state, config, venv, explore, learn_step)
    m["alpha"] = jnp.where(m["learning"], m["alpha"], jnp.exp(state.learner.log_alpha))
    return state, Metrics(**m)


def make_train(config: Config, env: Any, env_params: Any = None):
    """Build `train(key) -> (TrainState, Metrics stacked over num_updates)`.

    Args:
      config: the settings (validated here).
      env: an env id (bellmax or Gymnasium), an `Environment`, a gymnax-API environment or a
        `VectorEnv` (its `num_envs` must equal `config.num_envs`), with continuous or
        discrete actions.
      env_params: parameters for an environment object (default: its own).

    Returns:
      `train(key)`, pure; `jax.jit(jax.vmap(train))(keys)` trains many seeds at once for
      JAX environments (Gymnasium ids step on the host: run those seeds one by one).
    """
    if not isinstance(config, Config):
        raise TypeError(
            f"config must be a sac.Config, got {type(config).__module__}.{type(config).__qualname__}."
        )
    return scan_train(config, vector_env(config, env, env_params), init, update)
