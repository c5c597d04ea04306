"""Deep Q-networks (Mnih et al. 2015) with the Double DQN target (van Hasselt et al. 2016).

Q-learning (Sutton & Barto 2018, section 6.5) with a neural network: transitions go to a
uniform replay buffer, minibatches drawn from it are regressed onto the target
`r + gamma * max_a Q_target(s', a)`, and the target network `Q_target` is a copy of the online
network that is refreshed only every `target_update_interval` gradient steps (or moved towards
it by Polyak averaging with `tau < 1`). Exploration is epsilon-greedy with a linear schedule.

One `update` collects `train_frequency` steps of all `num_envs` environments, stores them,
and (once `learning_starts` env steps were taken) runs `gradient_steps` gradient steps. The
whole run is `jax.lax.scan` over `update` inside one `jit`, so `jax.vmap(train)(keys)` trains
many seeds at once:

    train = make_train(Config(), "CartPole-v1")
    state, metrics = jax.jit(train)(jax.random.key(0))

Episodes cut by a time limit bootstrap from their true last observation (`final_obs`);
episodes that terminate do not.
"""

from __future__ import annotations

import dataclasses
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
from bellmax.core.types import Transition
from bellmax.deep.loop import (
    EpisodeMetrics,
    check_fields,
    check_single_agent,
    check_total_timesteps,
    check_traced_fields,
    is_traced,
    scan_train,
    scheduled_learning_rate,
    vector_env,
)
from bellmax.deep.networks import ACTIVATIONS, QNetwork, flatten_obs
from bellmax.deep.optim import OPTIMIZERS, Schedule, linear_schedule, make_optimizer
from bellmax.deep.replay import (
    Collect,
    ReplayBuffer,
    check_replay_sizes,
    record_step,
    replay_add,
    replay_init,
    replay_sample,
)
from bellmax.envs import spaces
from bellmax.envs.vector import VecState, VectorEnv

NAME = "dqn"

OWNER = "DQN Config"
LOSSES = ("huber", "mse")
"""The TD losses `Config.loss` names."""
#: State fields equal for every seed: the driver keeps them out of its `vmap` over seeds, so
#: the `lax.cond`s on them stay branches (`bellmax.train.driver._vmap_sharing`).
SHARED_ACROSS_SEEDS = ("update_index", "gradient_step")


@dataclasses.dataclass(frozen=True)
class Config:
    """DQN settings; the defaults solve CartPole-v1 in 50k env steps.

    They start from rl-baselines3-zoo's CartPole-v1 DQN (lr 2.3e-3, batch 64, buffer 1e5,
    learning_starts 1000, 128 gradient steps per 256 env steps, epsilon 1 -> 0.04 over 16%)
    and change what made the final greedy policy reliable across seeds here: MSE instead of
    Huber loss, the Double DQN target, a linearly annealed learning rate, a [64, 64] network,
    and 8 environments stepped together (the zoo runs 1 environment with train_freq 256).
    Like every bellmax network it is initialised orthogonally, and Adam's eps is 1e-5 (SB3's
    DQN: torch's defaults, eps 1e-8).
    """

    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = (
        "learning_rate",
        "momentum",
        "max_grad_norm",
        "gamma",
        "tau",
        "start_epsilon",
        "final_epsilon",
    )
    """The numeric fields that may be traced (`bellmax.deep.loop.with_hyperparameters`)."""

    total_timesteps: int = 50_000
    """Environment steps to train for (all envs together; rounded down to whole updates)."""
    num_envs: int = 8
    """Environments stepped in parallel."""
    learning_rate: float = 2.3e-3
    """Optimizer step size."""
    optimizer: str = "adam"
    """"adam" or "sgd" (SGD with momentum)."""
    momentum: float = 0.9
    """Momentum of "sgd" (unused by "adam")."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run's gradient steps."""
    max_grad_norm: float = 10.0
    """Gradients are clipped to this global norm."""
    buffer_size: int = 100_000
    """Replay buffer capacity in transitions (at most the run's env steps are allocated)."""
    batch_size: int = 64
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first gradient step (>= batch_size,
    below the run's env steps)."""
    gamma: float = 0.99
    """Discount factor."""
    train_frequency: int = 32
    """Steps of every env per update (an update takes train_frequency * num_envs env steps)."""
    gradient_steps: int = 128
    """Gradient steps per update."""
    target_update_interval: int = 128
    """Gradient steps between target-network updates, as in Mnih et al. 2015. (SB3 counts env
    steps instead: its zoo value 10 with train_freq 256 refreshes the target once per update.)"""
    tau: float = 1.0
    """Target update rate: 1 copies the online network, < 1 is Polyak averaging."""
    start_epsilon: float = 1.0
    """Exploration rate at the start of the schedule."""
    final_epsilon: float = 0.04
    """Exploration rate at the end of the schedule (and afterwards)."""
    exploration_fraction: float = 0.16
    """Fraction of total_timesteps over which epsilon falls linearly to final_epsilon."""
    double_dqn: bool = True
    """Use the Double DQN target (online network picks, target network evaluates)."""
    loss: str = "mse"
    """TD loss: "mse" (mean squared TD error) or "huber" (delta 1, SB3's default)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the Q-network."""
    activation: str = "relu"
    """Hidden activation of the Q-network."""

    @property
    def steps_per_update(self) -> int:
        """Env steps consumed by one `update` (all envs)."""
        return self.train_frequency * self.num_envs

    @property
    def num_updates(self) -> int:
        """Updates that make `total_timesteps` (rounded down)."""
        return self.total_timesteps // self.steps_per_update

    @property
    def capacity(self) -> int:
        """Slots allocated in the replay buffer: `buffer_size`, or the run's env steps if
        fewer (a buffer larger than the run would never fill; the samples are the same)."""
        run_steps = self.num_updates * self.steps_per_update
        return max(min(self.buffer_size, run_steps), self.steps_per_update)

    @property
    def total_gradient_steps(self) -> int:
        """Gradient steps in the whole run (updates from the first with `learning_starts` on)."""
        first = max(-(-self.learning_starts // self.steps_per_update) - 1, 0)
        return max(self.num_updates - first, 0) * self.gradient_steps

    @property
    def exploration_steps(self) -> float:
        """Env steps over which epsilon falls from start_epsilon to final_epsilon."""
        return self.exploration_fraction * self.total_timesteps

    def __post_init__(self) -> None:
        check_traced_fields(self, OWNER)
        check_total_timesteps(self.total_timesteps, OWNER)
        for name in (
            "num_envs",
            "buffer_size",
            "batch_size",
            "train_frequency",
            "gradient_steps",
            "target_update_interval",
        ):
            check_int(getattr(self, name), name, owner=OWNER, low=1)
        check_int(self.learning_starts, "learning_starts", owner=OWNER, low=0)
        positive = {"low": 0, "low_open": True}
        check_fields(
            self, ("learning_rate", "max_grad_norm"), check_number, owner=OWNER, **positive
        )
        fraction = {"low": 0, "high": 1, "high_open": True}
        check_fields(self, ("momentum",), check_number, owner=OWNER, **fraction)
        check_fields(self, ("tau",), check_number, owner=OWNER, low=0, high=1, low_open=True)
        probabilities = ("gamma", "start_epsilon", "final_epsilon", "exploration_fraction")
        check_fields(self, probabilities, check_probability, owner=OWNER)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS, owner=OWNER)
        check_choice(self.loss, "loss", LOSSES, owner=OWNER)
        for name in ("double_dqn", "anneal_lr"):
            check_bool(getattr(self, name), name, owner=OWNER)
        # a tuple (a list, e.g. from run.json, is unhashable: the driver caches by config)
        sizes = check_int_sequence(self.hidden_sizes, "hidden_sizes", owner=OWNER, low=1)
        object.__setattr__(self, "hidden_sizes", sizes)
        check_choice(self.activation, "activation", sorted(ACTIVATIONS), owner=OWNER)
        check_replay_sizes(
            OWNER, self.batch_size, self.buffer_size, self.learning_starts, self.steps_per_update
        )

    def validate(self, venv: VectorEnv | None = None) -> None:
        """Check the run before training (the fields were checked on construction).

        That `total_timesteps` makes one update at least and that learning starts within the
        run; given `venv`, that it has Discrete actions and `num_envs` environments.

        Raises:
          ValueError: naming the field, its value and the fix.
        """
        if self.num_updates < 1:
            raise ValueError(
                f"{OWNER}.total_timesteps={self.total_timesteps} is less than one update "
                f"(train_frequency * num_envs = {self.steps_per_update} env steps); "
                f"set total_timesteps >= {self.steps_per_update}."
            )
        run_steps = self.num_updates * self.steps_per_update
        if self.learning_starts >= run_steps:
            raise ValueError(
                f"{OWNER}.learning_starts={self.learning_starts} is at or beyond the run's "
                f"{run_steps} env steps (total_timesteps={self.total_timesteps} in whole updates "
                f"of {self.steps_per_update}): the run would end before it learns "
                f"({self.total_gradient_steps} gradient steps in all); set learning_starts below "
                f"{run_steps} or total_timesteps to at least "
                f"{(self.learning_starts // self.steps_per_update + 1) * self.steps_per_update}."
            )
        if venv is None:
            return
        check_single_agent(venv, "DQN")
        check_action_space(venv.action_space)
        if venv.num_envs != self.num_envs:
            raise ValueError(
                f"the vector env has num_envs={venv.num_envs} but Config.num_envs="
                f"{self.num_envs}; make them equal (or pass an env id and let make_train "
                "build the vector env)."
            )


def check_action_space(space: Any) -> spaces.Discrete:
    """Return `space` if DQN supports it (Discrete); otherwise raise a ValueError saying so."""
    if not isinstance(space, spaces.Discrete):
        raise ValueError(
            f"algorithm {NAME!r} supports Discrete action spaces only; got {space!r}. "
            "Use an environment with discrete actions, or PPO for Box actions."
        )
    return space


@struct.dataclass
class TrainState:
    """Everything that changes during DQN training, as one pytree (a full checkpoint)."""

    __repr__ = summary_repr

    params: Any
    """Online Q-network parameters."""
    target_params: Any
    """Target Q-network parameters."""
    opt_state: Any
    """Optimizer state."""
    buffer: ReplayBuffer
    """Replay buffer of `Transition`s."""
    vec_state: VecState
    """Vector environment state."""
    obs: jax.Array
    """`[num_envs, ...]` observations to act on next."""
    key: jax.Array
    """PRNG key for the next update."""
    update_index: jax.Array
    """int32: updates done so far."""
    gradient_step: jax.Array
    """int32: gradient steps done so far (the target-update clock)."""


@struct.dataclass
class Metrics(EpisodeMetrics):
    """Per-update scalars of DQN."""

    __repr__ = summary_repr

    loss: jax.Array
    """Mean TD loss over this update's gradient steps (0 before learning starts)."""
    q_mean: jax.Array
    """Mean Q(s, a) of the sampled minibatches (0 before learning starts)."""
    epsilon: jax.Array
    """Exploration rate at the end of this update's collection."""
    learning: jax.Array
    """True where this update ran gradient steps."""
    learning_rate: jax.Array
    """Mean step size of this update's gradient steps (as the optimiser's schedule gave it);
    before learning starts, the step size the first gradient step will take."""
    grad_norm: jax.Array
    """Mean global norm of the TD loss's gradients, before clipping to `max_grad_norm`
    (0 before learning starts)."""


def _network(config: Config, venv: VectorEnv) -> QNetwork:
    n = check_action_space(venv.action_space).n
    return QNetwork(
        num_actions=int(n),
        hidden_sizes=tuple(config.hidden_sizes),
        activation=config.activation,
    )


def q_values(params: Any, obs: jax.Array, config: Config, venv: VectorEnv) -> jax.Array:
    """Q-values `[B, num_actions]` of batched observations `[B, ...]`."""
    return _network(config, venv).apply(params, flatten_obs(obs, venv.observation_space))


def epsilon_at(env_steps: jax.Array, config: Config) -> jax.Array:
    """Linearly decayed exploration rate after `env_steps` env steps (Mnih et al. 2015)."""
    span = config.exploration_steps
    if span <= 0:
        return jnp.asarray(config.final_epsilon, jnp.float32)
    frac = jnp.clip(jnp.asarray(env_steps, jnp.float32) / span, 0.0, 1.0)
    return config.start_epsilon + frac * (config.final_epsilon - config.start_epsilon)


def q_learning_target(
    r_t: jax.Array,
    discount_t: jax.Array,
    q_t_value: jax.Array,
    q_t_selector: jax.Array | None = None,
) -> jax.Array:
    """The bootstrapped target of one transition.

    DQN (Mnih et al. 2015): `r_t + discount_t * max_a q_t_value[a]`. Double DQN (van Hasselt
    et al. 2016, eq. 4): the online network's values `q_t_selector` choose the action and
    the target network's `q_t_value` evaluate it:
    `r_t + discount_t * q_t_value[argmax_a q_t_selector[a]]`.

    Args:
      r_t: reward, scalar.
      discount_t: `gamma` where the next state is bootstrapped, 0 where the episode terminated.
      q_t_value: `[A]` target-network values of the next observation.
      q_t_selector: `[A]` online-network values of the next observation (Double DQN), or None.

    Returns:
      The scalar target (no gradient flows through it).
    """
    if q_t_selector is None:
        v_t = jnp.max(q_t_value)
    else:
        v_t = q_t_value[jnp.argmax(q_t_selector)]
    return jax.lax.stop_gradient(r_t + discount_t * v_t)


def td_loss(
    params: Any, target_params: Any, batch: Transition, config: Config, venv: VectorEnv
) -> tuple[jax.Array, jax.Array]:
    """Mean TD loss of a minibatch and the mean Q(s, a). Returns `(loss, q_mean)`."""
    q_tm1 = q_values(params, batch.obs_tm1, config, venv)
    q_a = jnp.take_along_axis(q_tm1, batch.action_tm1.astype(jnp.int32)[:, None], axis=-1)[:, 0]
    q_t_value = q_values(target_params, batch.obs_t, config, venv)
    discount_t = config.gamma * batch.discount_t
    reward = batch.reward_t.astype(jnp.float32)
    if config.double_dqn:
        q_t_selector = q_values(params, batch.obs_t, config, venv)
        target = jax.vmap(q_learning_target)(reward, discount_t, q_t_value, q_t_selector)
    else:
        target = jax.vmap(q_learning_target)(reward, discount_t, q_t_value)
    td = q_a - target
    if config.loss == "huber":
        loss = jnp.mean(optax.huber_loss(td, delta=1.0))
    else:
        loss = jnp.mean(td**2)
    return loss, jnp.mean(q_a)


def learning_rate_schedule(config: Config) -> float | Schedule:
    """The step size: `config.learning_rate`, or with `config.anneal_lr` a schedule falling
    linearly from it to 0 over the run's gradient steps (`total_gradient_steps`)."""
    if config.anneal_lr:
        return linear_schedule(config.learning_rate, 0.0, max(config.total_gradient_steps, 1))
    return config.learning_rate


def _optimizer(config: Config) -> optax.GradientTransformation:
    return make_optimizer(
        config.optimizer,
        learning_rate_schedule(config),
        max_grad_norm=config.max_grad_norm,
        momentum=config.momentum,
    )


def init(key: jax.Array, config: Config, venv: VectorEnv) -> TrainState:
    """A fresh training state: network, target copy, optimizer, empty buffer, reset envs.

    Args:
      key: PRNG key, consumed.
      config: the settings.
      venv: the vector environment (Discrete actions).

    Returns:
      The initial `TrainState`.
    """
    k_net, k_env, k_next = jax.random.split(key, 3)
    obs, vec_state = venv.reset(k_env)
    params = _network(config, venv).init(k_net, flatten_obs(obs, venv.observation_space))
    example = Transition(
        obs_tm1=obs[0],
        action_tm1=jnp.zeros((), venv.action_space.dtype),
        reward_t=jnp.zeros((), jnp.float32),
        obs_t=obs[0],
        terminated_t=jnp.zeros((), bool),
        truncated_t=jnp.zeros((), bool),
    )
    zero = jnp.zeros((), jnp.int32)
    return TrainState(
        params=params,
        target_params=params,
        opt_state=_optimizer(config).init(params),
        buffer=replay_init(example, config.capacity),
        vec_state=vec_state,
        obs=obs,
        key=k_next,
        update_index=zero,
        gradient_step=zero,
    )


def act(
    params: Any,
    obs: jax.Array,
    key: jax.Array,
    config: Config,
    venv: VectorEnv,
    *,
    deterministic: bool = True,
) -> jax.Array:
    """Actions `[B]` for observations `[B, ...]`: greedy, or epsilon-greedy with final_epsilon.

    Args:
      params: online Q-network parameters (`policy_params(state)`).
      obs: batched observations.
      key: PRNG key (used only when not deterministic).
      config: the settings.
      venv: the vector environment (for its spaces).
      deterministic: greedy if True.
    """
    greedy = jnp.argmax(q_values(params, obs, config, venv), axis=-1)
    if not deterministic:
        greedy = _epsilon_greedy(key, greedy, config.final_epsilon, venv)
    return greedy.astype(venv.action_space.dtype)


def _epsilon_greedy(key: jax.Array, greedy: jax.Array, epsilon: jax.Array, venv: VectorEnv):
    k_coin, k_action = jax.random.split(key)
    n = int(venv.action_space.n)
    explore = jax.random.uniform(k_coin, greedy.shape, jnp.float32) < epsilon
    return jnp.where(
        explore, jax.random.randint(k_action, greedy.shape, 0, n, greedy.dtype), greedy
    )


def policy_params(state: TrainState) -> Any:
    """What `act` needs: the online network's parameters."""
    return state.params


def _collect_step(
    carry: Collect, key: jax.Array, params: Any, config: Config, venv: VectorEnv
) -> tuple[Collect, Transition]:
    """One epsilon-greedy step of every env; uniformly random before `learning_starts`."""
    k_act, k_env = jax.random.split(key)
    eps = jnp.where(
        carry.env_steps < config.learning_starts, 1.0, epsilon_at(carry.env_steps, config)
    )
    greedy = jnp.argmax(q_values(params, carry.obs, config, venv), axis=-1)
    action = _epsilon_greedy(k_act, greedy, eps, venv).astype(venv.action_space.dtype)
    step = venv.step(k_env, carry.vec_state, action)
    return record_step(carry, step, action, venv.num_envs)


def update_target(target_params: Any, params: Any, step: jax.Array, config: Config) -> Any:
    """The target network after gradient step number `step` (counted from 1).

    Every `target_update_interval` steps it becomes `tau * params + (1 - tau) * target`
    (a copy for `tau = 1`, Mnih et al. 2015; Polyak averaging otherwise, Lillicrap et al.
    2016); in between it is unchanged.
    """
    refresh = step % config.target_update_interval == 0
    if not is_traced(config.tau) and config.tau == 1.0:
        return jax.tree.map(lambda t, p: jnp.where(refresh, p, t), target_params, params)
    tau = config.tau
    return jax.tree.map(
        lambda t, p: jnp.where(refresh, (1.0 - tau) * t + tau * p, t), target_params, params
    )


def _gradient_step(carry: tuple, key: jax.Array, buffer: ReplayBuffer, config: Config, venv):
    """Sample a minibatch, take one optimizer step, maybe update the target network."""
    params, target_params, opt_state, step = carry
    batch = replay_sample(buffer, key, config.batch_size)
    (loss, q_mean), grads = jax.value_and_grad(td_loss, has_aux=True)(
        params, target_params, batch, config, venv
    )
    aux = {
        "loss": loss,
        "q_mean": q_mean,
        "learning_rate": scheduled_learning_rate(learning_rate_schedule(config), opt_state),
        "grad_norm": optax.tree.norm(grads),
    }
    updates, opt_state = _optimizer(config).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    step = step + 1
    target_params = update_target(target_params, params, step, config)
    return (params, target_params, opt_state, step), aux


def update(state: TrainState, config: Config, venv: VectorEnv) -> tuple[TrainState, Metrics]:
    """One DQN iteration: `train_frequency` steps of every env, then `gradient_steps` steps.

    Pure and jittable; depends only on `(state, config, venv)`.

    Args:
      state: the training state.
      config: the settings.
      venv: the vector environment.

    Returns:
      `(new_state, metrics)`.
    """
    key, k_collect, k_learn = jax.random.split(state.key, 3)
    env_steps = state.update_index * config.steps_per_update
    carry = Collect(
        vec_state=state.vec_state,
        obs=state.obs,
        env_steps=env_steps,
        return_sum=jnp.zeros((), jnp.float32),
        count=jnp.zeros((), jnp.int32),
        nonfinite=jnp.zeros((), jnp.int32),
    )
    carry, transitions = jax.lax.scan(
        lambda c, k: _collect_step(c, k, state.params, config, venv),
        carry,
        jax.random.split(k_collect, config.train_frequency),
    )
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), transitions)
    buffer = replay_add(state.buffer, flat)

    def learn(args):
        out, aux = jax.lax.scan(
            lambda c, k: _gradient_step(c, k, buffer, config, venv),
            args,
            jax.random.split(k_learn, config.gradient_steps),
        )
        return out, jax.tree.map(jnp.mean, aux)

    def skip(args):
        zero = jnp.zeros((), jnp.float32)
        lr = scheduled_learning_rate(learning_rate_schedule(config), args[2])
        return args, {"loss": zero, "q_mean": zero, "learning_rate": lr, "grad_norm": zero}

    learning = carry.env_steps >= config.learning_starts
    (params, target_params, opt_state, grad_step), aux = jax.lax.cond(
        learning,
        learn,
        skip,
        (state.params, state.target_params, state.opt_state, state.gradient_step),
    )
    new_state = TrainState(
        params=params,
        target_params=target_params,
        opt_state=opt_state,
        buffer=buffer,
        vec_state=carry.vec_state,
        obs=carry.obs,
        key=key,
        update_index=state.update_index + 1,
        gradient_step=grad_step,
    )
    metrics = Metrics(
        env_steps=carry.env_steps,
        episode_return_sum=carry.return_sum,
        episode_count=carry.count,
        nonfinite_steps=carry.nonfinite,
        **aux,
        epsilon=jnp.where(
            carry.env_steps < config.learning_starts, 1.0, epsilon_at(carry.env_steps, config)
        ),
        learning=learning,
    )
    return new_state, metrics


def make_train(config: Config, env: Any, env_params: Any = None):
    """Build `train(key) -> (TrainState, Metrics stacked over num_updates)`.

    Args:
      config: the settings (validated here).
      env: an env id (bellmax or Gymnasium), an `Environment`, a gymnax-API environment or a
        `VectorEnv` (its `num_envs` must equal `config.num_envs`).
      env_params: parameters for an environment object (default: its own).

    Returns:
      `train(key)`, pure; `jax.jit(jax.vmap(train))(keys)` trains many seeds at once for
      JAX environments (Gymnasium ids step on the host: run those seeds one by one).
    """
    return scan_train(config, vector_env(config, env, env_params), init, update)
