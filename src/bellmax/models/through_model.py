"""A neural policy trained by backpropagating through a learned model (analytic policy gradient).

The policy-search half of model-based RL without an online planner (Deisenroth & Rasmussen
2011, PILCO, section 3: the policy's parameters are optimised by the exact gradient of the
predicted cost; Heess et al. 2015, "Learning continuous control policies by stochastic value
gradients", SVG(inf) with a deterministic model): a flax policy `u = pi_theta(x)` and a
learned differentiable dynamics model `x' = f(x, u)` (`bellmax.models.neural`) are rolled
forward together for `horizon` steps from start states drawn from the real data, and
`theta` follows the gradient of the mean imagined cost

    J(theta) = E_{x_0 ~ data} [ (1/H) sum_{t<H} c(x_t, pi_theta(x_t)) ],
    x_{t+1} = f(x_t, pi_theta(x_t)),

with `c` the environment's own differentiable cost (minus its reward), by Adam with
clipped gradients (backpropagation through time, through both the model and the policy).
A small penalty on the policy's pre-`tanh` output keeps it out of the saturation: a
pendulum policy pinned at the torque limit stalls at a lopsided equilibrium with no
gradient left to leave it.

`run_through_model` collects random rollouts, then repeats `rounds` times: refit the model
on all data so far, optimise the policy through it and, but for the last round, collect
rollouts of the policy with exploration noise. The policy acts alone on the real system: no planner runs
online. Works on a bellmax environment whose state has `vector()` and a continuous action
(`Pendulum-v1`, `CartPoleSwingUp-v0`).

`NeuralPolicy` (the policy's static description) is shared with guided policy search
(`bellmax.models.mdgps`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from bellmax.core.checks import check_bool, check_int, check_number, check_seed, check_type
from bellmax.core.display import summary_repr
from bellmax.core.errors import DivergenceError
from bellmax.deep.networks import MLP, activation_fn, check_hidden_sizes
from bellmax.deep.optim import make_optimizer
from bellmax.models.data import check_policy_return
from bellmax.models.gps import DEFAULT_STARTS, state_fields, state_from_vector
from bellmax.models.neural import NeuralConfig, NeuralModel, NeuralParams, make_neural_model
from bellmax.models.neural import fit as fit_neural

__all__ = [
    "ANGLE_DIMS",
    "NeuralPolicy",
    "ThroughModelConfig",
    "ThroughModelResult",
    "adam_steps",
    "evaluate_policy",
    "imagined_cost",
    "make_neural_policy",
    "neural_policy_from_bytes",
    "neural_policy_to_bytes",
    "run_through_model",
]

#: State components that are angles, per bellmax environment with a state `vector()`.
ANGLE_DIMS: dict[str, tuple[int, ...]] = {
    "Pendulum-v1": (0,),
    "CartPoleSwingUp-v0": (2,),
}


class _PolicyNet(nn.Module):
    out_dim: int
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, self.activation, self.out_dim, 0.01)(z)


@dataclasses.dataclass(frozen=True)
class NeuralPolicy:
    """A deterministic neural policy `u = pi(x)` on a state vector (hashable by value, so
    equal policies share the jitted programs that take one as a static argument).

    Inputs are the state's features (angles as `cos`, `sin`) scaled by `feature_scale`;
    with `squash` the output is `tanh`-squashed into the action box, otherwise it is
    `centre + half_width * output` (unbounded: the environment clips).
    Build it with `make_neural_policy`.
    """

    state_dim: int
    """`n`."""
    action_low: tuple[float, ...]
    """`[m]` lower action bounds (finite)."""
    action_high: tuple[float, ...]
    """`[m]` upper action bounds (finite)."""
    angle_dims: tuple[int, ...]
    """State components that are angles."""
    feature_scale: tuple[float, ...]
    """Divisors of the features (`features` order), e.g. the velocity limits."""
    hidden_sizes: tuple[int, ...]
    """Hidden widths."""
    activation: str
    """Hidden activation."""
    squash: bool
    """`tanh` into the action box (else affine, unbounded)."""

    @property
    def action_dim(self) -> int:
        """`m`."""
        return len(self.action_low)

    @property
    def net(self) -> _PolicyNet:
        """The flax module."""
        return _PolicyNet(self.action_dim, self.hidden_sizes, self.activation)

    def features(self, x: jax.Array) -> jax.Array:
        """`[..., features]`: the non-angle components, then `cos` and `sin` of the angles."""
        x = jnp.asarray(x)  # (a NumPy float64 state: float32 with x64 off, and no warning)
        rest = [i for i in range(self.state_dim) if i not in self.angle_dims]
        parts = [x[..., jnp.asarray(rest, jnp.int32)]] if rest else []
        if self.angle_dims:
            ang = jnp.asarray(self.angle_dims, jnp.int32)
            parts += [jnp.cos(x[..., ang]), jnp.sin(x[..., ang])]
        return jnp.concatenate(parts, axis=-1) / jnp.asarray(self.feature_scale, x.dtype)

    def raw(self, params: Any, x: jax.Array) -> jax.Array:
        """The network's output `[m]` before the squashing."""
        return self.net.apply(params, self.features(x))

    def __call__(self, params: Any, x: jax.Array) -> jax.Array:
        """The action `[m]` at a state `[n]` (vmap for batches)."""
        out = self.raw(params, x)
        lo = jnp.asarray(self.action_low, out.dtype)
        hi = jnp.asarray(self.action_high, out.dtype)
        centre, half = 0.5 * (hi + lo), 0.5 * (hi - lo)
        return centre + half * (jnp.tanh(out) if self.squash else out)

    def init(self, key: jax.Array) -> Any:
        """Fresh parameters (near-zero outputs: the centre action)."""
        n_feat = self.state_dim + len(self.angle_dims)
        return self.net.init(key, jnp.zeros((n_feat,), jnp.float32))


_POLICY_FORMAT = "bellmax.neural_policy"
_POLICY_VERSION = 1


def neural_policy_to_bytes(policy: NeuralPolicy, params: Any) -> bytes:
    """A `NeuralPolicy` and its parameters as one msgpack document (no pickle), for a file
    (`bellmax gps --policy mdgps --out DIR` writes `DIR/neural_policy.msgpack`); read it back
    with `neural_policy_from_bytes`."""
    check_type(policy, NeuralPolicy, "policy")
    return serialization.msgpack_serialize(
        {
            "format": _POLICY_FORMAT,
            "version": _POLICY_VERSION,
            "policy": {  # msgpack's strict types take lists, not tuples
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(policy).items()
            },
            "params": jax.tree.map(np.asarray, serialization.to_state_dict(params)),
        }
    )


def neural_policy_from_bytes(data: bytes, *, source: str = "the data") -> tuple[NeuralPolicy, Any]:
    """`(policy, params)` from `neural_policy_to_bytes`'s output; `policy(params, x)` acts.

    Raises:
      ValueError: naming `source`, when the data is not such a document, or its fields or
        parameter shapes do not fit together.
    """

    def bad(why: str) -> ValueError:
        return ValueError(
            f"{source} is not a bellmax neural policy: {why}. Write one with "
            "bellmax.models.through_model.neural_policy_to_bytes (bellmax gps --policy mdgps "
            "--out DIR writes DIR/neural_policy.msgpack)."
        )

    try:
        doc = serialization.msgpack_restore(bytes(data))
    except Exception as exc:  # msgpack raises several types for damaged input
        raise bad(f"cannot be read as msgpack ({type(exc).__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != _POLICY_FORMAT:
        raise bad(f"no {_POLICY_FORMAT!r} format tag")
    if doc.get("version") != _POLICY_VERSION:
        raise bad(f"version {doc.get('version')!r}, this bellmax reads {_POLICY_VERSION}")
    fields = doc.get("policy")
    names = [f.name for f in dataclasses.fields(NeuralPolicy)]
    if not isinstance(fields, dict) or sorted(fields) != sorted(names):
        got = sorted(fields) if isinstance(fields, dict) else type(fields).__name__
        raise bad(f"its policy fields are {got}, expected {sorted(names)}")
    try:
        policy = NeuralPolicy(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        )
        # shapes only: a file's widths build no network before its weights are seen to fit
        template = jax.eval_shape(policy.init, jax.random.key(0))
    except Exception as exc:
        raise bad(f"its policy fields do not build a network ({exc})") from None
    params = doc.get("params")
    want = jax.tree.map(np.shape, serialization.to_state_dict(template))
    try:
        got = jax.tree.map(np.shape, params)
    except Exception:
        got = None
    if got != want:
        raise bad(f"its parameter shapes {got} do not match the network's {want}")
    return policy, serialization.from_state_dict(template, params)


def make_neural_policy(
    env_id: str,
    *,
    hidden_sizes: Sequence[int] = (64, 64),
    activation: str = "tanh",
    squash: bool = True,
) -> NeuralPolicy:
    """The `NeuralPolicy` of a bellmax environment with a state `vector()` (`ANGLE_DIMS`).

    Features are scaled by the observation space's bounds where finite (velocity limits),
    else 1.
    """
    from bellmax.envs.registry import make

    if env_id not in ANGLE_DIMS:
        raise ValueError(f"no state layout known for {env_id!r}; use one of {sorted(ANGLE_DIMS)}.")
    env, params = make(env_id)
    _, template = env.reset(jax.random.key(0), params)
    n = len(state_fields(template))
    space = env.action_space(params)
    low = np.broadcast_to(np.asarray(space.low, np.float64), space.shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, np.float64), space.shape).reshape(-1)
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError(f"{env_id!r} has an unbounded action space; a NeuralPolicy needs bounds.")
    angles = ANGLE_DIMS[env_id]
    rest = [i for i in range(n) if i not in angles]
    scale = _STATE_SCALES.get(env_id, (1.0,) * n)
    feature_scale = tuple(float(scale[i]) for i in rest) + (1.0,) * (2 * len(angles))
    return NeuralPolicy(
        state_dim=n,
        action_low=tuple(float(v) for v in low),
        action_high=tuple(float(v) for v in high),
        angle_dims=angles,
        feature_scale=feature_scale,
        hidden_sizes=check_hidden_sizes(hidden_sizes, owner="make_neural_policy"),
        activation=(activation_fn(activation), activation)[1],
        squash=check_bool(squash, "squash", owner="make_neural_policy"),
    )


#: Typical magnitudes of each state component (the policy's input scaling).
_STATE_SCALES: dict[str, tuple[float, ...]] = {
    "Pendulum-v1": (1.0, 8.0),
    "CartPoleSwingUp-v0": (2.0, 3.0, 1.0, 8.0),
}


# ---------------------------------------------------------------------- real rollouts
@partial(jax.jit, static_argnums=(0, 1, 2, 5))
def _real_rollouts(env, fields, policy, env_params, template, steps, pol_params, x0, keys, noise):
    """`[R, steps+1, n]` states, `[R, steps, m]` actions, `[R, steps]` rewards from `x0 [R, n]`.

    `noise` (`[m]`, absolute std) is added to the policy's action, then clipped to the box.
    The raw step runs on after the episode terminates (the states are data for the model);
    the rewards after the first `terminated` are 0, as the episode has ended.
    """
    lo, hi = jnp.asarray(policy.action_low), jnp.asarray(policy.action_high)

    def one(x_start, key):
        def step(carry, k):
            state, alive = carry
            x = state.vector()
            ka, ks = jax.random.split(k)
            u = policy(pol_params, x) + noise * jax.random.normal(ka, noise.shape, x.dtype)
            u = jnp.clip(u, lo, hi)
            _, s2, r, term, _, _ = env.step(ks, state, u, env_params)
            return (s2, alive & ~term), (x, u, jnp.where(alive, r, 0.0))

        s0 = state_from_vector(template, fields, x_start)
        carry = (s0, jnp.asarray(True))
        (sT, _), (X, U, R) = jax.lax.scan(step, carry, jax.random.split(key, steps))
        return jnp.concatenate([X, sT.vector()[None]]), U, R

    return jax.vmap(one)(x0, keys)


@partial(jax.jit, static_argnums=(0, 1, 2, 4))
def _random_rollouts(env, fields, env_params, template, steps, x0, keys):
    space = env.action_space(env_params)

    def one(x_start, key):
        def step(state, k):
            x = state.vector()
            ka, ks = jax.random.split(k)
            u = space.sample(ka)
            _, s2, r, _, _, _ = env.step(ks, state, u, env_params)
            return s2, (x, jnp.reshape(u, (-1,)).astype(x.dtype), r)

        s0 = state_from_vector(template, fields, x_start)
        sT, (X, U, R) = jax.lax.scan(step, s0, jax.random.split(key, steps))
        return jnp.concatenate([X, sT.vector()[None]]), U, R

    return jax.vmap(one)(x0, keys)


@partial(jax.jit, static_argnums=(0, 1))
def _reset_states(env, fields, env_params, keys):
    def one(k):
        _, s = env.reset(k, env_params)
        return jnp.stack([jnp.asarray(getattr(s, f), jnp.float32) for f in fields])

    return jax.vmap(one)(keys)


def evaluate_policy(
    env_id: str,
    policy: NeuralPolicy,
    params: Any,
    *,
    x0: Any = None,
    steps: int = 200,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Run the policy's mean action alone on the real environment from one start.

    Args:
      env_id: the bellmax id.
      policy, params: the policy.
      x0: the start state vector (default hanging at rest, `DEFAULT_STARTS`).
      steps: steps to run.

    Returns:
      `(return, states [steps+1, n], actions [steps, m])`: the return of the episode (the
      rewards up to its termination: the swing-up's cart leaving its track), the states
      and actions of all `steps` (the raw step runs on after a termination).
    """
    from bellmax.envs.registry import make

    env, env_params = make(env_id)
    _, template = env.reset(jax.random.key(0), env_params)
    fields = state_fields(template)
    x0 = np.asarray(DEFAULT_STARTS[env_id] if x0 is None else x0, np.float32)
    if x0.shape != (len(fields),) or not np.isfinite(x0).all():
        raise ValueError(
            f"evaluate_policy: x0 must be {len(fields)} finite numbers ({', '.join(fields)}) "
            f"for {env_id!r}, got {x0.tolist()!r}."
        )
    if policy.state_dim != len(fields):
        raise ValueError(
            f"evaluate_policy: the policy takes {policy.state_dim} state components, {env_id!r} "
            f"has {len(fields)}; build it with make_neural_policy({env_id!r})."
        )
    steps = check_int(steps, "steps", owner="evaluate_policy", low=1)
    X, U, R = _real_rollouts(
        env,
        fields,
        policy,
        env_params,
        template,
        steps,
        params,
        jnp.asarray(x0)[None],
        jax.random.split(jax.random.key(0), 1),
        jnp.zeros((policy.action_dim,), jnp.float32),
    )
    return float(jnp.sum(R[0])), np.asarray(X[0]), np.asarray(U[0])


# ---------------------------------------------------------------------- the policy update
@dataclasses.dataclass(frozen=True)
class ThroughModelConfig:
    """Knobs of policy search through a learned model."""

    rounds: int = 3
    """Collect / fit / optimise rounds."""
    random_rollouts: int = 16
    """Rollouts with uniform random actions before the first round (from the environment's
    reset distribution)."""
    policy_rollouts: int = 4
    """Rollouts of the policy (with exploration noise) added after each round; one of them
    starts from the swing-up start (`DEFAULT_STARTS`), the others from resets."""
    rollout_steps: int = 200
    """Real steps per rollout."""
    exploration: float = 0.2
    """Std of the noise added to the policy's actions in its rollouts, as a fraction of
    the action range's half-width."""
    horizon: int = 60
    """Imagined steps `H` per start (backpropagation through time)."""
    batch_starts: int = 64
    """Imagined start states per update, drawn from the real states."""
    policy_updates: int = 300
    """Adam steps on the policy per round."""
    learning_rate: float = 1e-2
    """The policy's Adam step size."""
    max_grad_norm: float = 1.0
    """Global-norm clip of the policy gradient."""
    saturation_penalty: float = 1e-2
    """Weight of the mean squared pre-`tanh` output added to the imagined cost: a policy
    pinned deep in the saturation has no gradient left (it stalls at the torque limit)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """The policy's hidden widths."""
    activation: str = "tanh"
    """The policy's hidden activation."""
    model: NeuralConfig = dataclasses.field(
        default_factory=lambda: NeuralConfig(
            ensemble_size=1, probabilistic=False, num_updates=1000, holdout_fraction=0.0
        )
    )
    """The dynamics model (a deterministic MLP by default: its mean is what the gradient
    flows through)."""
    seed: int = 0
    """Seed of the data, the model and the policy."""

    def __post_init__(self) -> None:
        owner = "ThroughModelConfig"
        for name in (
            "rounds",
            "random_rollouts",
            "rollout_steps",
            "horizon",
            "batch_starts",
            "policy_updates",
        ):
            check_int(getattr(self, name), name, owner=owner, low=1)
        check_int(self.policy_rollouts, "policy_rollouts", owner=owner, low=0)
        check_number(self.saturation_penalty, "saturation_penalty", owner=owner, low=0)
        check_number(self.exploration, "exploration", owner=owner, low=0)
        check_number(self.learning_rate, "learning_rate", owner=owner, low=0, low_open=True)
        check_number(self.max_grad_norm, "max_grad_norm", owner=owner, low=0, low_open=True)
        object.__setattr__(self, "hidden_sizes", check_hidden_sizes(self.hidden_sizes, owner=owner))
        activation_fn(self.activation)
        check_type(self.model, NeuralConfig, "model", owner=owner)
        check_seed(self.seed, "seed", owner=owner)


def imagined_cost(
    policy: NeuralPolicy,
    pol_params: Any,
    model: NeuralModel,
    model_params: NeuralParams,
    cost: Any,
    x0: jax.Array,
    horizon: int,
    *,
    saturation_penalty: float = 0.0,
) -> jax.Array:
    """`(1/H) sum_{t<H} c(x_t, pi(x_t))` along the model's rollout from `x0 [n]`, plus
    `saturation_penalty` times the mean squared pre-`tanh` output."""

    def step(x, t):
        u = policy(pol_params, x)
        c = cost(x, u, t)
        if saturation_penalty:
            c = c + saturation_penalty * jnp.sum(policy.raw(pol_params, x) ** 2)
        return model.dynamics(x, u, t, model_params), c

    _, c = jax.lax.scan(step, x0, jnp.arange(horizon))
    return jnp.mean(c)


def adam_steps(
    loss_fn: Any, params: Any, keys: jax.Array, learning_rate: float, max_grad_norm: float | None
) -> tuple[Any, jax.Array]:
    """`len(keys)` Adam steps on `loss_fn(params, key)` (one key each, for its minibatch).

    Returns:
      `(params, losses [len(keys)])`.
    """
    tx = make_optimizer("adam", learning_rate, max_grad_norm=max_grad_norm)

    def update(carry, k):
        p, o = carry
        loss, g = jax.value_and_grad(loss_fn)(p, k)
        upd, o = tx.update(g, o, p)
        return (jax.tree.map(lambda a, b: a + b, p, upd), o), loss

    (params, _), losses = jax.lax.scan(update, (params, tx.init(params)), keys)
    return params, losses


@partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _optimise(policy, model, cost, config, pol_params, model_params, starts, key):
    """`policy_updates` Adam steps on the mean imagined cost; returns params and losses."""

    def loss_fn(p, k):
        x0 = starts[jax.random.randint(k, (config.batch_starts,), 0, starts.shape[0])]
        per = jax.vmap(
            lambda x: imagined_cost(
                policy, p, model, model_params, cost, x, config.horizon,
                saturation_penalty=config.saturation_penalty,
            )
        )(x0)  # fmt: skip
        return jnp.mean(per)

    keys = jax.random.split(key, config.policy_updates)
    return adam_steps(loss_fn, pol_params, keys, config.learning_rate, config.max_grad_norm)


@dataclasses.dataclass(frozen=True)
class ThroughModelResult:
    """What `run_through_model` did (host-side numbers)."""

    __repr__ = summary_repr

    policy: NeuralPolicy
    """The policy's static description."""
    policy_params: Any
    """Its final parameters."""
    model: NeuralModel
    """The dynamics model."""
    model_params: NeuralParams
    """Its last fit."""
    round_returns: np.ndarray
    """`[rounds]` the return of the policy alone (no noise) from the swing-up start over
    `rollout_steps`, after each round."""
    imagined_costs: np.ndarray
    """`[rounds]` the mean imagined cost per step at the end of each round's optimisation."""
    transitions: int
    """Real transitions collected."""
    final_return: float
    """`round_returns[-1]`."""
    final_states: np.ndarray
    """`[rollout_steps + 1, n]` the final policy's states from the swing-up start."""
    seconds: float
    """Wall time."""


def run_through_model(
    env_id: str, config: ThroughModelConfig = ThroughModelConfig()
) -> ThroughModelResult:
    """Learn a model and a policy through it (module docstring).

    Args:
      env_id: a bellmax id in `ANGLE_DIMS` (`Pendulum-v1`, `CartPoleSwingUp-v0`).
      config: `ThroughModelConfig`.

    Returns:
      `ThroughModelResult`.

    Raises:
      DivergenceError: the imagined cost, or the policy's return on the real environment,
        became non-finite (the message names the round and what to lower).
    """
    from bellmax.envs.registry import make
    from bellmax.models.gps import env_system

    check_type(config, ThroughModelConfig, "config", owner="run_through_model")
    start = time.perf_counter()
    policy = make_neural_policy(
        env_id, hidden_sizes=config.hidden_sizes, activation=config.activation
    )
    env, env_params = make(env_id)
    _, template = env.reset(jax.random.key(0), env_params)
    fields = state_fields(template)
    cost = env_system(env_id, horizon=1).cost
    n, m = policy.state_dim, policy.action_dim
    model = make_neural_model(n, m, angle_dims=policy.angle_dims, config=config.model)
    x_start = jnp.asarray(DEFAULT_STARTS[env_id], jnp.float32)
    half = 0.5 * (np.asarray(policy.action_high) - np.asarray(policy.action_low))
    noise = jnp.asarray(config.exploration * half, jnp.float32)
    steps = config.rollout_steps

    key = jax.random.key(config.seed)
    key, k_reset, k_roll, k_pol = jax.random.split(key, 4)
    x0s = _reset_states(env, fields, env_params, jax.random.split(k_reset, config.random_rollouts))
    X, U, _ = _random_rollouts(
        env, fields, env_params, template, steps, x0s,
        jax.random.split(k_roll, config.random_rollouts),
    )  # fmt: skip
    data_X, data_U = [np.asarray(X)], [np.asarray(U)]
    pol_params = policy.init(k_pol)
    model_params = None
    returns, imagined = [], []
    for r in range(config.rounds):
        key, k_fit, k_opt, k_reset, k_roll = jax.random.split(key, 5)
        Xa, Ua = np.concatenate(data_X), np.concatenate(data_U)
        model_params, _ = fit_neural(
            model,
            Xa[:, :-1].reshape(-1, n),
            Ua.reshape(-1, m),
            Xa[:, 1:].reshape(-1, n),
            init=model_params,
            key=k_fit,
        )
        starts = jnp.concatenate([x_start[None], jnp.asarray(Xa[:, :-1].reshape(-1, n))])
        pol_params, losses = _optimise(
            policy, model, cost, config, pol_params, model_params, starts, k_opt
        )
        tail = float(jnp.mean(losses[-max(1, config.policy_updates // 10) :]))
        lower = (
            f"lower ThroughModelConfig.learning_rate (now {config.learning_rate}) or horizon "
            f"(now {config.horizon})."
        )
        if not math.isfinite(tail):
            raise DivergenceError(
                f"round {r + 1}: the imagined cost became non-finite ({tail}); {lower}"
            )
        imagined.append(tail)
        ret, final_states, _ = evaluate_policy(env_id, policy, pol_params, x0=x_start, steps=steps)
        check_policy_return(
            ret,
            final_states,
            pol_params,
            env_id,
            f"round {r + 1}",
            fit_diverged=(
                "its last updates made its weights NaN or inf (the imagined cost was still "
                f"{tail:.4g}); " + lower
            ),
        )
        returns.append(ret)
        if config.policy_rollouts and r < config.rounds - 1:  # (the last would go unused)
            R = config.policy_rollouts
            x0s = _reset_states(env, fields, env_params, jax.random.split(k_reset, R))
            x0s = x0s.at[0].set(x_start)
            X, U, _ = _real_rollouts(
                env, fields, policy, env_params, template, steps, pol_params, x0s,
                jax.random.split(k_roll, R), noise,
            )  # fmt: skip
            data_X.append(np.asarray(X))
            data_U.append(np.asarray(U))
    final_return = returns[-1]
    return ThroughModelResult(
        policy=policy,
        policy_params=pol_params,
        model=model,
        model_params=model_params,
        round_returns=np.asarray(returns),
        imagined_costs=np.asarray(imagined),
        transitions=int(sum(x.shape[0] * (x.shape[1] - 1) for x in data_X)),
        final_return=final_return,
        final_states=final_states,
        seconds=time.perf_counter() - start,
    )
