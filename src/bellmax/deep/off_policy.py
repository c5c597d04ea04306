"""The pieces SAC and TD3 share: off-policy, continuous-action actor-critics with twin critics.

- `OffPolicyRun`: the settings both configs share, with their docs, field checks
  (`check_fields`, in each `__post_init__`) and run checks (`validate(venv)`).
- `check_continuous_actions`, `action_bounds`, `to_env_action`: the continuous `Box` action
  space (finite bounds) and the affine map from tanh-squashed actions in `[-1, 1]^d` to it.
- `TwinQ`, `TwinQValues`, `twin_critic`, `critic_loss`, `fit_critic`: the twin
  action-value networks of clipped double Q-learning (Fujimoto et al. 2018, section 4.2;
  SAC's section 5; `TwinQValues` for `Discrete` actions, all `n` values at once) and one
  regression step of both onto a target; `optimizer`: the networks' Adam.
- `OffPolicyRun.action_kind(space)`: `(discrete, size)`, continuous `Box` actions unless an
  algorithm's config allows `Discrete` ones (SAC's does).
- `TrainState`, `init_state`, `off_policy_update`: the training state and one iteration of
  the loop: `train_frequency` steps of every env (uniformly random actions for the first
  `learning_starts` env steps, the algorithm's behaviour policy after) stored in the replay
  buffer (`bellmax.deep.replay`), then `gradient_steps` of the algorithm's gradient step;
  its metrics add `learning_rate` (the step size of every network: constant, no schedule).

Each algorithm's own losses, networks and gradient step live in `bellmax.deep.sac` and
`bellmax.deep.td3`; what they share lives here, so neither imports the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from bellmax.core.checks import (
    check_choice,
    check_int,
    check_int_sequence,
    check_number,
    check_probability,
)
from bellmax.core.display import summary_repr
from bellmax.core.types import Transition
from bellmax.deep.loop import check_fields as check_values
from bellmax.deep.loop import (
    check_single_agent,
    check_total_timesteps,
    check_traced_fields,
    scheduled_learning_rate,
)
from bellmax.deep.networks import ACTIVATIONS, MLP, flatten_obs
from bellmax.deep.optim import make_optimizer
from bellmax.deep.replay import (
    Collect,
    ReplayBuffer,
    check_replay_sizes,
    record_step,
    replay_add,
    replay_init,
    replay_sample_after_add,
)
from bellmax.envs import spaces
from bellmax.envs.vector import VecState, VectorEnv

__all__ = [
    "Explore",
    "LearnStep",
    "OffPolicyRun",
    "TrainState",
    "TwinQ",
    "TwinQValues",
    "action_bounds",
    "check_continuous_actions",
    "critic_loss",
    "fit_critic",
    "init_state",
    "off_policy_update",
    "optimizer",
    "to_env_action",
    "twin_critic",
]


@dataclasses.dataclass(frozen=True)
class OffPolicyRun:
    """The settings SAC and TD3 share, with their docs and checks. Each algorithm's `Config`
    derives from it, re-declaring a field only to change its default."""

    algorithm: ClassVar[str] = "off-policy"
    HYPERPARAMETERS: ClassVar[tuple[str, ...]] = ("learning_rate", "max_grad_norm", "gamma", "tau")
    """The numeric fields that may be traced (`bellmax.deep.loop.with_hyperparameters`); each
    algorithm's Config adds its own."""

    total_timesteps: int = 20_000
    """Environment steps to train for (all envs together; rounded down to whole updates)."""
    num_envs: int = 1
    """Environments stepped in parallel."""
    learning_rate: float = 1e-3
    """Adam step size of every network (and, in SAC, of the temperature)."""
    max_grad_norm: float = 100.0
    """Gradients are clipped to this global norm (a guard against blow-ups, rarely active)."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity in transitions (at most the run's env steps are allocated)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first gradient step (>= batch_size,
    below the run's env steps)."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak rate of the target networks: target <- tau * online + (1 - tau) * target."""
    train_frequency: int = 1
    """Steps of every env per update (an update takes train_frequency * num_envs env steps)."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer widths of the actor and of each critic."""
    activation: str = "relu"
    """Hidden activation of the networks."""

    @property
    def owner(self) -> str:
        """`"SAC Config"`: how error messages name this config."""
        return f"{self.algorithm} Config"

    @property
    def steps_per_update(self) -> int:
        """Env steps consumed by one `update` (all envs)."""
        return self.train_frequency * self.num_envs

    @property
    def num_updates(self) -> int:
        """Updates that make `total_timesteps` (rounded down)."""
        return self.total_timesteps // self.steps_per_update

    @property
    def run_steps(self) -> int:
        """Env steps of the whole run (`total_timesteps` in whole updates)."""
        return self.num_updates * self.steps_per_update

    @property
    def capacity(self) -> int:
        """Slots allocated in the replay buffer: `buffer_size`, or the run's env steps if
        fewer (a buffer larger than the run would never fill)."""
        return max(min(self.buffer_size, self.run_steps), self.steps_per_update)

    def check_fields(self) -> None:
        """The field checks every off-policy config runs in `__post_init__`. Fields holding
        traced hyperparameters (`HYPERPARAMETERS`, e.g. vmapped over a sweep) are not checked.

        Raises:
          TypeError: a field of the wrong type, or a traced one that shapes the program;
            ValueError: naming `<ALGO> Config.field`, the value and the fix.
        """
        owner = self.owner
        check_traced_fields(self, owner)
        check_total_timesteps(self.total_timesteps, owner)
        for name in (
            "num_envs",
            "buffer_size",
            "batch_size",
            "train_frequency",
            "gradient_steps",
        ):
            check_int(getattr(self, name), name, owner=owner, low=1)
        check_int(self.learning_starts, "learning_starts", owner=owner, low=0)
        positive = {"low": 0, "low_open": True}
        check_values(
            self, ("learning_rate", "max_grad_norm"), check_number, owner=owner, **positive
        )
        check_values(self, ("gamma",), check_probability, owner=owner)
        check_values(self, ("tau",), check_number, owner=owner, low=0, high=1, low_open=True)
        # a tuple (a list, e.g. from run.json, is unhashable: the driver caches by config)
        sizes = check_int_sequence(self.hidden_sizes, "hidden_sizes", owner=owner, low=1)
        object.__setattr__(self, "hidden_sizes", sizes)
        check_choice(self.activation, "activation", sorted(ACTIVATIONS), owner=owner)
        check_replay_sizes(
            owner, self.batch_size, self.buffer_size, self.learning_starts, self.steps_per_update
        )

    def action_kind(self, space: Any) -> tuple[bool, int]:
        """`(discrete, size)` of an action space this algorithm acts in: `(False, d)` for a
        float `Box` of `d` elements with finite bounds (the only kind here; SAC's config also
        takes `Discrete(n)`, as `(True, n)`).

        Raises:
          ValueError: an action space the algorithm does not support, naming what it does.
        """
        return False, check_continuous_actions(space, self.algorithm)

    def validate(self, venv: VectorEnv | None = None) -> None:
        """Check the run before training (the fields were checked on construction).

        That `total_timesteps` makes one update at least and that learning starts within the
        run; given `venv`, that this algorithm acts in its action space (`action_kind`) and
        that it has `num_envs` environments.

        Raises:
          ValueError: naming the field, its value and the fix.
        """
        owner = self.owner
        if self.num_updates < 1:
            raise ValueError(
                f"{owner}.total_timesteps={self.total_timesteps} is less than one update "
                f"(train_frequency * num_envs = {self.steps_per_update} env steps); "
                f"set total_timesteps >= {self.steps_per_update}."
            )
        if self.learning_starts >= self.run_steps:
            need = (self.learning_starts // self.steps_per_update + 1) * self.steps_per_update
            raise ValueError(
                f"{owner}.learning_starts={self.learning_starts} is at or beyond the run's "
                f"{self.run_steps} env steps (total_timesteps={self.total_timesteps}): the run "
                f"would end before it learns; set learning_starts below {self.run_steps} or "
                f"total_timesteps to at least {need}."
            )
        if venv is None:
            return
        check_single_agent(venv, owner.split()[0])
        self.action_kind(venv.action_space)
        if venv.num_envs != self.num_envs:
            raise ValueError(
                f"the vector env has num_envs={venv.num_envs} but {owner}.num_envs="
                f"{self.num_envs}; make them equal (or pass an env id and let make_train "
                "build the vector env)."
            )


def check_continuous_actions(space: Any, algorithm: str, *, note: str = "") -> int:
    """The number of action dimensions of a float `Box` with finite bounds.

    Args:
      space: the action space.
      algorithm: the algorithm's name in messages (`"TD3"`).
      note: said after "only" when the space is not a `Box` (what else would work).

    Raises:
      ValueError: any other action space, naming what `algorithm` supports.
    """
    if isinstance(space, spaces.Box) and jnp.issubdtype(space.dtype, jnp.floating):
        low, high = np.asarray(space.low), np.asarray(space.high)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(
                f"algorithm {algorithm!r} rescales its tanh-squashed actions to the action "
                f"Box's bounds, which must be finite; got low={low.tolist()}, "
                f"high={high.tolist()}. Wrap the environment so that its actions are bounded."
            )
        if np.any(high <= low):
            raise ValueError(
                f"algorithm {algorithm!r} needs high > low in every action dimension; got "
                f"low={low.tolist()}, high={high.tolist()}."
            )
        return int(np.prod(space.shape, dtype=np.int64))
    extra = f" ({note})" if note else ""
    raise ValueError(
        f"algorithm {algorithm!r} supports continuous Box action spaces (float, finite "
        f"bounds) only{extra}; got {space!r}. Use an environment with continuous actions "
        "(e.g. Pendulum-v1), or for discrete actions DQN, PPO or SAC with actions='auto'."
    )


def action_bounds(space: spaces.Box) -> tuple[np.ndarray, np.ndarray]:
    """`(low, high)` of a `Box` as flat float32 arrays `[d]`."""
    low = np.asarray(space.low, np.float32).reshape(-1)
    high = np.asarray(space.high, np.float32).reshape(-1)
    return low, high


def to_env_action(a_norm: jax.Array, space: spaces.Box) -> jax.Array:
    """Normalised actions `[..., d]` in `[-1, 1]` rescaled to the `Box`, `[..., *space.shape]`:
    `low + (a + 1) * (high - low) / 2` (clipped, so rounding never leaves the box)."""
    low, high = action_bounds(space)
    a = low + (jnp.clip(a_norm, -1.0, 1.0) + 1.0) * (0.5 * (high - low))
    a = jnp.clip(a, low, high).astype(space.dtype)
    return a.reshape(a_norm.shape[:-1] + tuple(space.shape))


class TwinQ(nn.Module):
    """Two independent action-value networks `Q_i(s, a)`: `([..., D], [..., d]) -> ([...], [...])`
    (Fujimoto et al. 2018's clipped double Q, used by SAC and TD3).

    Attributes:
      hidden_sizes: widths of the hidden layers of each network.
      activation: hidden activation name.
    """

    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, a: jax.Array) -> tuple[jax.Array, jax.Array]:
        xa = jnp.concatenate([x, a], axis=-1)
        q1 = MLP(self.hidden_sizes, self.activation, 1, 1.0, name="q1")(xa)[..., 0]
        q2 = MLP(self.hidden_sizes, self.activation, 1, 1.0, name="q2")(xa)[..., 0]
        return q1, q2


class TwinQValues(nn.Module):
    """Two independent action-value networks over `n` discrete actions: `[..., D] ->
    ([..., n], [..., n])`, or given integer actions `a [...]`, their values `([...], [...])`
    (discrete SAC's twin critics, Christodoulou 2019).

    Attributes:
      num_actions: number of actions `n`.
      hidden_sizes: widths of the hidden layers of each network.
      activation: hidden activation name.
    """

    num_actions: int
    hidden_sizes: Sequence[int] = (256, 256)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, a: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        n, sizes, act = self.num_actions, self.hidden_sizes, self.activation
        qs = (MLP(sizes, act, n, 1.0, name="q1")(x), MLP(sizes, act, n, 1.0, name="q2")(x))
        if a is None:
            return qs
        idx = jnp.asarray(a, jnp.int32)[..., None]
        q1, q2 = (jnp.take_along_axis(q, idx, axis=-1)[..., 0] for q in qs)
        return q1, q2


@struct.dataclass
class TrainState:
    """Everything that changes during off-policy training, as one pytree (a full checkpoint)."""

    __repr__ = summary_repr

    learner: Any
    """The algorithm's networks, targets and optimiser states (SAC's `Learner`, TD3's)."""
    buffer: ReplayBuffer
    """Replay buffer of `Transition`s (actions normalised to `[-1, 1]`, flat `[d]`; int32
    scalars for `Discrete` actions)."""
    vec_state: VecState
    """Vector environment state."""
    obs: jax.Array
    """`[num_envs, ...]` observations to act on next."""
    key: jax.Array
    """PRNG key for the next update."""
    update_index: jax.Array
    """int32: updates done so far."""
    gradient_step: jax.Array
    """int32: gradient steps done so far."""


def init_state(
    key: jax.Array,
    config: OffPolicyRun,
    venv: VectorEnv,
    init_learner: Callable[[jax.Array, jax.Array, int], Any],
) -> TrainState:
    """A fresh off-policy `TrainState`: `init_learner(key, x [N, D], size)` (`size`: action
    dimensions `d`, or the number of actions `n` of a `Discrete` space), an empty buffer of
    `config.capacity` slots, reset environments."""
    k_learn, k_env, k_next = jax.random.split(key, 3)
    discrete, d = config.action_kind(venv.action_space)
    obs, vec_state = venv.reset(k_env)
    learner = init_learner(k_learn, flatten_obs(obs, venv.observation_space), d)
    action = jnp.zeros((), jnp.int32) if discrete else jnp.zeros((d,), jnp.float32)
    example = Transition(
        obs_tm1=obs[0],
        action_tm1=action,
        reward_t=jnp.zeros((), jnp.float32),
        obs_t=obs[0],
        terminated_t=jnp.zeros((), bool),
        truncated_t=jnp.zeros((), bool),
    )
    zero = jnp.zeros((), jnp.int32)
    return TrainState(
        learner=learner,
        buffer=replay_init(example, config.capacity),
        vec_state=vec_state,
        obs=obs,
        key=k_next,
        update_index=zero,
        gradient_step=zero,
    )


Explore = Callable[[Any, jax.Array, jax.Array], jax.Array]
"""`(learner, x [N, D], key) -> normalised actions [N, d]` (the behaviour policy; int32
actions `[N]` for a `Discrete` space)."""
LearnStep = Callable[[Any, Transition, jax.Array, jax.Array], tuple[Any, dict[str, jax.Array]]]
"""`(learner, batch, gradient step number counted from 1, key) -> (learner, scalars)`."""


def _collect_step(carry: Collect, key, learner, config, venv, explore: Explore):
    """One step of every env: uniformly random actions before `learning_starts`, else `explore`."""
    k_rand, k_act, k_env = jax.random.split(key, 3)
    discrete, d = config.action_kind(venv.action_space)
    x = flatten_obs(carry.obs, venv.observation_space)
    if discrete:
        random = jax.random.randint(k_rand, (venv.num_envs,), 0, d, jnp.int32)
    else:
        random = jax.random.uniform(k_rand, (venv.num_envs, d), jnp.float32, -1.0, 1.0)
    a_norm = jnp.where(carry.env_steps < config.learning_starts, random, explore(learner, x, k_act))
    if discrete:
        env_action = a_norm.astype(venv.action_space.dtype)
    else:
        env_action = to_env_action(a_norm, venv.action_space)
    step = venv.step(k_env, carry.vec_state, env_action)
    return record_step(carry, step, a_norm, venv.num_envs)


def off_policy_update(
    state: TrainState,
    config: OffPolicyRun,
    venv: VectorEnv,
    explore: Explore,
    learn_step: LearnStep,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One off-policy iteration: `train_frequency` steps of every env stored in the buffer,
    then (once `learning_starts` env steps were taken) `gradient_steps` of `learn_step`.

    Returns:
      `(new_state, metrics)`: `metrics` holds `env_steps`, `episode_return_sum`,
      `episode_count`, `nonfinite_steps`, `learning`, `learning_rate`
      (`config.learning_rate`, the step size of every gradient step) and the mean over the
      gradient steps of each scalar `learn_step` returns (zeros before learning starts).
    """
    key, k_collect, k_learn = jax.random.split(state.key, 3)
    carry = Collect(
        vec_state=state.vec_state,
        obs=state.obs,
        env_steps=state.update_index * config.steps_per_update,
        return_sum=jnp.zeros((), jnp.float32),
        count=jnp.zeros((), jnp.int32),
        nonfinite=jnp.zeros((), jnp.int32),
    )
    carry, transitions = jax.lax.scan(
        lambda c, k: _collect_step(c, k, state.learner, config, venv, explore),
        carry,
        jax.random.split(k_collect, config.train_frequency),
    )
    flat = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), transitions)

    def one_step(c, k):
        learner, step = c
        k_batch, k_step = jax.random.split(k)
        batch = replay_sample_after_add(state.buffer, flat, k_batch, config.batch_size)
        learner, aux = learn_step(learner, batch, step + 1, k_step)
        return (learner, step + 1), aux

    # Jitted so that it is traced once: `eval_shape` and the `cond` below share the trace.
    @jax.jit
    def learn(args):
        out, aux = jax.lax.scan(one_step, args, jax.random.split(k_learn, config.gradient_steps))
        return out, jax.tree.map(jnp.mean, aux)

    shapes = jax.eval_shape(learn, (state.learner, state.gradient_step))[1]

    def skip(args):
        return args, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    learning = carry.env_steps >= config.learning_starts
    (learner, grad_step), aux = jax.lax.cond(
        learning, learn, skip, (state.learner, state.gradient_step)
    )
    # The write comes after every read of the old buffer: the gradient steps sample it through
    # `replay_sample_after_add` (the add's slots patched in), and the write position is made to
    # depend on their results (`grad_step < 0` is never true: a data dependency, no change), so
    # XLA can write the buffer in place. Otherwise it may order the write first and must then
    # copy the whole buffer every update (it did under `vmap`).
    read = jax.tree.leaves(aux) or jax.tree.leaves(learner)[:1]
    seen = jnp.stack([jnp.asarray(x, jnp.float32).reshape(-1)[0] for x in read])
    never = (grad_step < 0) & jnp.all(seen == seen)
    position = state.buffer.position + never.astype(jnp.int32)
    buffer = replay_add(state.buffer.replace(position=position), flat)
    new_state = TrainState(
        learner=learner,
        buffer=buffer,
        vec_state=carry.vec_state,
        obs=carry.obs,
        key=key,
        update_index=state.update_index + 1,
        gradient_step=grad_step,
    )
    metrics = {
        "env_steps": carry.env_steps,
        "episode_return_sum": carry.return_sum,
        "episode_count": carry.count,
        "nonfinite_steps": carry.nonfinite,
        "learning": learning,
        "learning_rate": scheduled_learning_rate(config.learning_rate, state.learner.critic_opt),
        **aux,
    }
    return new_state, metrics


def optimizer(config: OffPolicyRun) -> optax.GradientTransformation:
    """Adam with `config.learning_rate`, gradients clipped to `config.max_grad_norm` (every
    network's optimiser, and SAC's temperature's)."""
    return make_optimizer("adam", config.learning_rate, max_grad_norm=config.max_grad_norm)


def twin_critic(config: OffPolicyRun, num_actions: int | None = None) -> TwinQ | TwinQValues:
    """The `TwinQ` of `config.hidden_sizes` and `config.activation` (a `TwinQValues` over
    `num_actions` discrete actions if given)."""
    if num_actions is not None:
        return TwinQValues(num_actions, tuple(config.hidden_sizes), config.activation)
    return TwinQ(tuple(config.hidden_sizes), config.activation)


def critic_loss(q1: jax.Array, q2: jax.Array, target: jax.Array) -> jax.Array:
    """`0.5 * (mean((q1 - target)^2) + mean((q2 - target)^2))` (the Bellman residual of both
    critics: Haarnoja et al. 2018 section 5, Fujimoto et al. 2018 section 4.2)."""
    return 0.5 * (jnp.mean((q1 - target) ** 2) + jnp.mean((q2 - target) ** 2))


def fit_critic(
    learner: Any,
    x_tm1: jax.Array,
    a_tm1: jax.Array,
    target: jax.Array,
    config: OffPolicyRun,
    *,
    num_actions: int | None = None,
) -> tuple[Any, dict[str, jax.Array]]:
    """One gradient step of the twin critic onto `target` (`critic_loss`).

    Args:
      learner: an algorithm's learner with `critic` and `critic_opt` fields.
      x_tm1: `[B, D]` observation features of the minibatch.
      a_tm1: `[B, d]` its normalised actions (`[B]` integers for discrete actions).
      target: `[B]` regression targets (no gradient flows through them).
      config: the settings (network shape, optimiser).
      num_actions: the number of discrete actions (`TwinQValues` critics), or None.

    Returns:
      The learner with new `critic` and `critic_opt`; `critic_loss` (before the step),
      `q_mean`, the mean `Q_1(s, a)` of the minibatch, and `critic_grad_norm`, the global
      norm of the loss's gradients before clipping.
    """
    critic, tx = twin_critic(config, num_actions), optimizer(config)

    def loss_fn(params):
        q1, q2 = critic.apply(params, x_tm1, a_tm1)
        return critic_loss(q1, q2, target), jnp.mean(q1)

    (c_loss, q_mean), grads = jax.value_and_grad(loss_fn, has_aux=True)(learner.critic)
    updates, critic_opt = tx.update(grads, learner.critic_opt, learner.critic)
    params = optax.apply_updates(learner.critic, updates)
    new = learner.replace(critic=params, critic_opt=critic_opt)
    return new, {
        "critic_loss": c_loss,
        "q_mean": q_mean,
        "critic_grad_norm": optax.tree.norm(grads),
    }
