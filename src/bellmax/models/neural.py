"""Neural dynamics: an MLP or a probabilistic ensemble predicting the state change.

The global learned model of model-based RL (Chua, Calandra, McAllister & Levine 2018,
"Deep reinforcement learning in a handful of trials using probabilistic dynamics models",
PETS, section 4; Nagabandi et al. 2018 for the state-change target and the normalisation):

- Each member maps normalised features of `(x, u)` (angles entered as `cos`, `sin`, so a
  wound-up angle gives the same prediction) to the normalised state change
  `x' - x` (angle changes wrapped to `[-pi, pi)`), and optionally the reward.
- `probabilistic=True`: a member outputs a Gaussian (mean and log-variance) trained by its
  negative log-likelihood; the log-variance is bounded softly between learned per-output
  bounds, `max - softplus(max - v)` then `min + softplus(. - min)`, with a small penalty that
  keeps the bounds tight (PETS, appendix A.1). `False`: mean only, squared error.
- `ensemble_size = K` members with independent initialisations, each trained on its own
  random minibatches drawn with replacement (a bootstrap in expectation); all `K` are
  `vmap`ped, in training and prediction.
- A hybrid model adds the network's output to the one-step prediction of a parametric
  physical model (`bellmax.models.parametric`) at fixed parameters: the network learns the
  residual.

`NeuralModel` is the static description (hashable: it may be a jit static argument and a
planner's dynamics); `NeuralParams` the pytree of weights and normalisation that `fit`
returns. `model.dynamics(x, u, t, params)` is the ensemble mean in the control signature
(`bellmax.control`), so iLQR and MPC plan through the network with JAX derivatives.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_bool, check_int, check_number, check_seed, check_type
from bellmax.core.display import summary_repr
from bellmax.core.errors import DivergenceError
from bellmax.core.xla import RUN_ONCE, RUN_SOMETIMES, bucket_size, jit_lightly
from bellmax.deep.networks import MLP, activation_fn, check_hidden_sizes
from bellmax.deep.optim import make_optimizer
from bellmax.envs.pendulum import angle_normalize
from bellmax.models.parametric import ParametricModel

__all__ = [
    "FitReport",
    "NeuralConfig",
    "NeuralModel",
    "NeuralParams",
    "Prediction",
    "fit",
    "make_neural_model",
    "open_loop_error",
    "prediction_report",
]


@dataclasses.dataclass(frozen=True)
class NeuralConfig:
    """Architecture and training of a neural dynamics model."""

    ensemble_size: int = 5
    """Members `K` (1 with `probabilistic=False` is a plain MLP)."""
    probabilistic: bool = True
    """Gaussian outputs trained by negative log-likelihood (else mean only, squared error)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of each member's hidden layers."""
    activation: str = "silu"
    """Hidden activation (`bellmax.deep.networks.ACTIVATIONS`)."""
    learning_rate: float = 2e-3
    """Adam step size."""
    batch_size: int = 64
    """Minibatch size per member and update."""
    num_updates: int = 1500
    """Adam updates per fit (each member draws its own minibatches with replacement)."""
    holdout_fraction: float = 0.1
    """Share of the data kept out of training for the held-out errors (0: none)."""
    min_log_var: float = -10.0
    """Initial lower bound of the (normalised) log-variance."""
    max_log_var: float = 0.5
    """Initial upper bound of the (normalised) log-variance."""
    bound_penalty: float = 0.01
    """Weight of the penalty `sum(max_log_var) - sum(min_log_var)` (PETS)."""
    seed: int = 0
    """Seed of the initialisation, the minibatches and the hold-out split."""

    def __post_init__(self) -> None:
        owner = "NeuralConfig"
        for name in ("ensemble_size", "batch_size", "num_updates"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, owner=owner, low=1))
        check_bool(self.probabilistic, "probabilistic", owner=owner)
        object.__setattr__(self, "hidden_sizes", check_hidden_sizes(self.hidden_sizes, owner=owner))
        activation_fn(self.activation)
        check_number(self.learning_rate, "learning_rate", owner=owner, low=0, low_open=True)
        check_number(
            self.holdout_fraction, "holdout_fraction", owner=owner, low=0, high=1, high_open=True
        )
        check_number(self.bound_penalty, "bound_penalty", owner=owner, low=0)
        lo = check_number(self.min_log_var, "min_log_var", owner=owner)
        hi = check_number(self.max_log_var, "max_log_var", owner=owner)
        if lo >= hi:
            raise ValueError(
                f"NeuralConfig.min_log_var ({lo}) must be below max_log_var ({hi}); e.g. -10 "
                "and 0.5."
            )
        object.__setattr__(self, "seed", check_seed(self.seed, "seed", owner=owner))


class _Member(nn.Module):
    """One member: features -> `[out]` means (and `[out]` raw log-variances)."""

    out_dim: int
    probabilistic: bool
    hidden_sizes: Sequence[int]
    activation: str

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        width = 2 * self.out_dim if self.probabilistic else self.out_dim
        return MLP(self.hidden_sizes, self.activation, width, 1.0)(z)


@struct.dataclass
class NeuralParams:
    """Everything a fitted model needs to predict (a pytree; stacked over members)."""

    __repr__ = summary_repr

    net: Any
    """Flax parameters of the members, each leaf `[K, ...]`."""
    max_log_var: jax.Array
    """`[K, out]` learned upper bounds of the normalised log-variance."""
    min_log_var: jax.Array
    """`[K, out]` learned lower bounds."""
    in_mean: jax.Array
    """`[features]` input normalisation mean."""
    in_std: jax.Array
    """`[features]` input normalisation scale."""
    out_mean: jax.Array
    """`[out]` target normalisation mean (state change, then reward)."""
    out_std: jax.Array
    """`[out]` target normalisation scale."""


@struct.dataclass
class Prediction:
    """One-step predictions of every member at one `(x, u)`."""

    __repr__ = summary_repr

    mean: jax.Array
    """`[K, n]` predicted next states."""
    var: jax.Array
    """`[K, n]` predicted (aleatoric) variances of the next state (zeros if deterministic)."""
    reward: jax.Array
    """`[K]` predicted rewards (zeros without a reward head)."""
    reward_var: jax.Array
    """`[K]` their variances."""

    @property
    def ensemble_mean(self) -> jax.Array:
        """`[n]` the members' mean."""
        return jnp.mean(self.mean, axis=0)

    @property
    def total_var(self) -> jax.Array:
        """`[n]` the ensemble's variance: mean aleatoric plus the spread of the means."""
        return jnp.mean(self.var, axis=0) + jnp.var(self.mean, axis=0)


@dataclasses.dataclass(frozen=True, eq=False)
class NeuralModel:
    """A neural dynamics model's static description (hashable by identity).

    Build it with `make_neural_model`; fit its parameters with `fit`.
    """

    state_dim: int
    """`n`."""
    action_dim: int
    """`m`."""
    angle_dims: tuple[int, ...]
    """State components that are angles (features `cos`, `sin`; changes wrapped)."""
    reward_head: bool
    """Whether the model also predicts the reward `r(x, u)`."""
    config: NeuralConfig
    """Architecture and training."""
    base: ParametricModel | None = None
    """Hybrid: the physical model whose one-step prediction the network corrects."""
    base_theta: tuple[float, ...] = ()
    """The physical model's fixed parameters (in `base.param_names` order)."""

    @property
    def kind(self) -> str:
        """`hybrid`, `ensemble` (probabilistic, K > 1) or `mlp`."""
        if self.base is not None:
            return "hybrid"
        return "ensemble" if self.config.ensemble_size > 1 else "mlp"

    @property
    def out_dim(self) -> int:
        """Network outputs: the state change and, with a reward head, the reward."""
        return self.state_dim + int(self.reward_head)

    @property
    def feature_dim(self) -> int:
        """Network inputs: the state (angles as cos, sin) and the action."""
        return self.state_dim + len(self.angle_dims) + self.action_dim

    @property
    def net(self) -> _Member:
        """The flax module of one member."""
        c = self.config
        return _Member(self.out_dim, c.probabilistic, c.hidden_sizes, c.activation)

    # ------------------------------------------------------------------ features
    def features(self, x: jax.Array, u: jax.Array) -> jax.Array:
        """`[..., features]` of states `[..., n]` and actions `[..., m]` (unnormalised)."""
        if not self.angle_dims:
            return jnp.concatenate([x, u], axis=-1)
        ang = jnp.asarray(self.angle_dims)
        rest = jnp.asarray([i for i in range(self.state_dim) if i not in self.angle_dims])
        parts = [jnp.cos(x[..., ang]), jnp.sin(x[..., ang])]
        if rest.size:
            parts.insert(0, x[..., rest])
        return jnp.concatenate([*parts, u], axis=-1)

    def state_change(self, x: jax.Array, x_next: jax.Array) -> jax.Array:
        """`x' - x` with angle changes wrapped to `[-pi, pi)` (the regression target)."""
        d = x_next - x
        if self.angle_dims:
            ang = jnp.asarray(self.angle_dims)
            d = d.at[..., ang].set(angle_normalize(d[..., ang]))
        return d

    def _base_next(self, x: jax.Array, u: jax.Array) -> jax.Array:
        if self.base is None:
            return x
        theta = jnp.asarray(self.base_theta, x.dtype)
        return self.base.predict(theta, x, u)

    # ------------------------------------------------------------------ prediction
    def predict(self, params: NeuralParams, x: jax.Array, u: jax.Array) -> Prediction:
        """Every member's prediction at one state `[n]` and action `[m]`.

        Returns:
          `Prediction` with `[K, n]` means and variances of the next state.
        """
        x = jnp.asarray(x)
        u = jnp.reshape(jnp.asarray(u, x.dtype), (self.action_dim,))
        z = (self.features(x, u) - params.in_mean) / params.in_std
        mu, log_var = jax.vmap(lambda p, hi, lo: self._member_out(p, hi, lo, z))(
            params.net, params.max_log_var, params.min_log_var
        )
        mean = mu * params.out_std + params.out_mean
        var = jnp.exp(log_var) * params.out_std**2
        n = self.state_dim
        nxt = self._base_next(x, u)[None] + mean[:, :n]
        if self.reward_head:
            return Prediction(nxt, var[:, :n], mean[:, n], var[:, n])
        zeros = jnp.zeros(mean.shape[:1], mean.dtype)
        return Prediction(nxt, var[:, :n], zeros, zeros)

    def predict_members(
        self, params: NeuralParams, x: jax.Array, u: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Member `k`'s prediction at its own state `x[k]` (trajectory sampling, PETS).

        Args:
          params: the model's parameters.
          x: `[K, n]` one state per member, or `[K, *B, n]`: a batch `B` of states per
            member (many plans at once, the member axis first, as the networks run).
          u: `[m]` the action, or `[*B, m]`: one per batch entry (shared by the members).

        Returns:
          `(mean [K, *B, n], var [K, *B, n], reward [K, *B])` (reward zeros without a
          reward head).
        """
        batch = x.shape[1:-1]
        u = jnp.asarray(u, x.dtype)
        if u.ndim <= 1:  # one action (or a scalar one) for every state
            u = jnp.reshape(u, (self.action_dim,))
        u = jnp.broadcast_to(u, (*batch, self.action_dim))
        z = (jax.vmap(lambda xk: self.features(xk, u))(x) - params.in_mean) / params.in_std
        mu, log_var = jax.vmap(self._member_out)(
            params.net, params.max_log_var, params.min_log_var, z
        )
        mean = mu * params.out_std + params.out_mean
        var = jnp.exp(log_var) * params.out_std**2
        n = self.state_dim
        base = self._base_next
        for _ in batch:  # the physical base model steps one state at a time
            base = jax.vmap(base)
        nxt = jax.vmap(lambda xk: base(xk, u))(x) + mean[..., :n]
        reward = mean[..., n] if self.reward_head else jnp.zeros(mean.shape[:-1], mean.dtype)
        return nxt, var[..., :n], reward

    def _member_out(self, p, hi, lo, z):
        """Normalised `(mean [..., out], bounded log-variance [..., out])` of one member."""
        out = self.net.apply(p, z)
        if not self.config.probabilistic:
            return out, jnp.full_like(out, -jnp.inf)
        mu, raw = out[..., : self.out_dim], out[..., self.out_dim :]
        log_var = hi - jax.nn.softplus(hi - raw)
        return mu, lo + jax.nn.softplus(log_var - lo)

    def dynamics(self, x: jax.Array, u: jax.Array, t: Any, params: NeuralParams) -> jax.Array:
        """The ensemble-mean next state in the control signature `dynamics(x, u, t, params)`."""
        del t
        return self.predict(params, x, u).ensemble_mean

    def reward(self, x: jax.Array, u: jax.Array, params: NeuralParams) -> jax.Array:
        """The ensemble-mean learned reward `r(x, u)` (needs `reward_head`)."""
        if not self.reward_head:
            raise ValueError("this model has no reward head; build it with reward_head=True.")
        return jnp.mean(self.predict(params, x, u).reward)

    def init(self, key: jax.Array) -> NeuralParams:
        """Fresh parameters (identity normalisation)."""
        return _init_params(self, key)

    def _init(self, key: jax.Array) -> NeuralParams:
        K = self.config.ensemble_size
        z = jnp.zeros((self.feature_dim,), jnp.float32)
        net = jax.vmap(lambda k: self.net.init(k, z))(jax.random.split(key, K))
        out = self.out_dim
        return NeuralParams(
            net=net,
            max_log_var=jnp.full((K, out), self.config.max_log_var, jnp.float32),
            min_log_var=jnp.full((K, out), self.config.min_log_var, jnp.float32),
            in_mean=jnp.zeros((self.feature_dim,), jnp.float32),
            in_std=jnp.ones((self.feature_dim,), jnp.float32),
            out_mean=jnp.zeros((out,), jnp.float32),
            out_std=jnp.ones((out,), jnp.float32),
        )


def _init_params_impl(model: NeuralModel, key: jax.Array) -> NeuralParams:
    return model._init(key)


#: `model.init` as one program: run op by op, the members' orthogonal initialisations
#: lowered and compiled ~100 small programs (0.7 s a process, on a warm compile cache; 0.5 s
#: jitted). It runs once per model and compiles lightly: `RUN_SOMETIMES`'s options, whose
#: numbers are XLA's defaults' bit for bit (`RUN_ONCE`'s level 0 moved some weights by ~1e-6).
_init_params = jit_lightly(_init_params_impl, RUN_SOMETIMES, static_argnums=0)


def make_neural_model(
    state_dim: int,
    action_dim: int,
    *,
    angle_dims: Sequence[int] = (),
    reward_head: bool = False,
    config: NeuralConfig = NeuralConfig(),
    base: ParametricModel | None = None,
    base_params: dict[str, float] | None = None,
) -> NeuralModel:
    """A neural (ensemble, MLP or hybrid) dynamics model of `n` states and `m` actions.

    Args:
      state_dim: `n`.
      action_dim: `m`.
      angle_dims: angle components of the state.
      reward_head: also predict the reward `r(x, u)` (for environments whose reward is not
        known as a function).
      config: `NeuralConfig`.
      base: for a hybrid model, the parametric model whose prediction the network corrects
        (its state and input must be `x` and `u`).
      base_params: the physical parameters by name (default the model's nominal ones).

    Returns:
      `NeuralModel`.
    """
    n = check_int(state_dim, "state_dim", owner="make_neural_model", low=1)
    m = check_int(action_dim, "action_dim", owner="make_neural_model", low=1)
    check_type(config, NeuralConfig, "config", owner="make_neural_model")
    angles = tuple(int(i) for i in angle_dims)
    if any(not 0 <= i < n for i in angles) or len(set(angles)) != len(angles):
        raise ValueError(f"angle_dims must be distinct indices in [0, {n}), got {angle_dims!r}.")
    theta: tuple[float, ...] = ()
    if base is not None:
        check_type(base, ParametricModel, "base", owner="make_neural_model")
        if base.state_dim != n:
            raise ValueError(
                f"the hybrid's physical model {base.name!r} has {base.state_dim} states but "
                f"state_dim is {n}; use the physical model's state as the learned state."
            )
        theta = tuple(float(v) for v in np.asarray(base.theta_from(base_params or {})))
    elif base_params is not None:
        raise ValueError("base_params needs base (the physical model of a hybrid).")
    return NeuralModel(n, m, angles, bool(reward_head), config, base, theta)


# ====================================================================== training
@struct.dataclass
class _Batch:
    z: jax.Array  # [N, features] normalised inputs
    y: jax.Array  # [N, out] normalised targets
    n: jax.Array  # valid rows (the rest is padding)


def _member_loss(model: NeuralModel, p, hi, lo, z, y):
    """Mean loss of one member on a minibatch (normalised units)."""
    mu, log_var = jax.vmap(lambda zz: model._member_out(p, hi, lo, zz))(z)
    if not model.config.probabilistic:
        return jnp.mean((mu - y) ** 2)
    nll = jnp.mean((mu - y) ** 2 * jnp.exp(-log_var) + log_var)
    return nll + model.config.bound_penalty * (jnp.sum(hi) - jnp.sum(lo)) / y.shape[-1]


def _train_state(params: NeuralParams):
    return (params.net, params.max_log_var, params.min_log_var)


@functools.partial(jax.jit, static_argnums=0)
def _train(model: NeuralModel, params: NeuralParams, batch: _Batch, key: jax.Array):
    """`num_updates` Adam steps of every member on its own minibatches; returns the new
    params and the loss per update `[updates, K]`."""
    cfg = model.config
    tx = make_optimizer("adam", cfg.learning_rate)
    trainable = _train_state(params)
    opt = jax.vmap(tx.init)(trainable)

    def member_step(w, o, idx):
        def loss_fn(w):
            return _member_loss(model, *w, batch.z[idx], batch.y[idx])

        loss, g = jax.value_and_grad(loss_fn)(w)
        upd, o = tx.update(g, o, w)
        w = jax.tree.map(lambda a, b: a + b, w, upd)
        return w, o, loss

    def step(carry, k):
        w, o = carry
        idx = jax.random.randint(k, (cfg.ensemble_size, cfg.batch_size), 0, batch.n, jnp.int32)
        w, o, loss = jax.vmap(member_step)(w, o, idx)
        return (w, o), loss

    keys = jax.random.split(key, cfg.num_updates)
    (w, _), losses = jax.lax.scan(step, (trainable, opt), keys)
    net, hi, lo = w
    return params.replace(net=net, max_log_var=hi, min_log_var=lo), losses


@dataclasses.dataclass(frozen=True)
class FitReport:
    """What `fit` measured (host-side numbers)."""

    num_train: int
    """Transitions trained on."""
    num_heldout: int
    """Transitions held out."""
    final_loss: float
    """Mean training loss of the last 10% of updates (members averaged)."""
    heldout_rmse: tuple[float, ...]
    """Held-out one-step RMSE of the ensemble mean, per state component (NaN without a
    hold-out). Each fit draws its own split: a fit warm-started from an earlier one (the
    model-based loop's refits) holds out rows that fit trained on, so this reads optimistic
    there (slightly, on smooth data; more for a network that overfits)."""
    heldout_reward_rmse: float
    """Held-out RMSE of the predicted reward (NaN without a reward head or hold-out)."""
    heldout_z2: float
    """Held-out mean of `error^2 / predicted total variance` (1 when calibrated; NaN for a
    deterministic model or without a hold-out)."""


def _rows(n: int, capacity: int | None = None) -> int:
    """The rows `n` transitions are padded to: a power of two, at least 64 and `capacity`, so
    that a growing data set recompiles only when it doubles (or never, up to `capacity`)."""
    return bucket_size(max(n, capacity or 1), 64)


def _pad(a: np.ndarray, rows: int, dtype: Any = None) -> np.ndarray:
    """`a` with zero rows appended up to `rows` (in `dtype`, default `a`'s)."""
    out = np.zeros((rows, *a.shape[1:]), a.dtype if dtype is None else dtype)
    out[: a.shape[0]] = a
    return out


#: `jax.random.permutation(key, n)` (the hold-out split), compiled lightly: a program per `n`.
_permutation = jit_lightly(jax.random.permutation, RUN_ONCE, static_argnums=1)


@functools.partial(jax.jit, static_argnums=0)
def _inputs_and_targets(model: NeuralModel, x, u, x_next) -> tuple[jax.Array, jax.Array]:
    """Transitions' unnormalised network inputs and regression targets (the change from
    the base model's prediction, angles wrapped), as one program: run op by op, each fit
    of a new data size compiled a dozen small programs."""
    base_next = jax.vmap(model._base_next)(x, u)
    return model.features(x, u), model.state_change(base_next, x_next)


def _check_arrays(model: NeuralModel, x, u, x_next, rewards):
    x = np.asarray(x, np.float64)
    u = np.asarray(u, np.float64)
    x_next = np.asarray(x_next, np.float64)
    if u.ndim == 1:
        u = u[:, None]
    n, m = model.state_dim, model.action_dim
    if x.ndim != 2 or x.shape[1] != n or x_next.shape != x.shape:
        raise ValueError(
            f"x and x_next must both be [N, {n}] (the model's state), got {x.shape} and "
            f"{x_next.shape}."
        )
    if u.shape != (x.shape[0], m):
        raise ValueError(f"u must be [N, {m}] with N = {x.shape[0]}, got {u.shape}.")
    if model.reward_head:
        if rewards is None:
            raise ValueError("this model has a reward head: pass rewards=[N] to fit.")
        rewards = np.asarray(rewards, np.float64).reshape(-1)
        if rewards.shape != (x.shape[0],):
            raise ValueError(f"rewards must be [N] = [{x.shape[0]}], got {rewards.shape}.")
    elif rewards is not None:
        raise ValueError("rewards were given but the model has no reward head (reward_head=True).")
    if x.shape[0] < 1:
        raise ValueError("no transitions: collect some first.")
    for name, arr in (("x", x), ("u", u), ("x_next", x_next), ("rewards", rewards)):
        if arr is not None and not np.isfinite(arr).all():
            rows = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
            raise ValueError(
                f"{name} holds NaN or inf in rows {rows[:5].tolist()}; drop those transitions "
                "before fitting."
            )
    return x, u, x_next, rewards


def fit(
    model: NeuralModel,
    x: Any,
    u: Any,
    x_next: Any,
    *,
    rewards: Any = None,
    init: NeuralParams | None = None,
    key: jax.Array | None = None,
    capacity: int | None = None,
) -> tuple[NeuralParams, FitReport]:
    """Fit the model to transitions by Adam (`model.config`'s budget), keeping a hold-out.

    Args:
      model: from `make_neural_model`.
      x, u, x_next: `[N, n]`, `[N, m]`, `[N, n]` transitions in the model's state.
      rewards: `[N]` rewards `r(x, u)`, required with a reward head.
      init: parameters to continue from (e.g. the last fit in a data loop); the
        normalisation is recomputed from the data either way.
      key: randomness of the initialisation, minibatches and split (default from the
        config's seed).
      capacity: the most transitions this model will be fitted to (a data loop knows it):
        the training data is padded to it, so that every fit of a growing data set runs the
        same compiled program. The result does not depend on it (minibatches are drawn
        from the real rows only). None: padded to the next power of two, so a growing data
        set recompiles each time it doubles.

    Returns:
      `(params, FitReport)`.

    Raises:
      ValueError: wrong shapes, non-finite data, or a fit whose loss became non-finite
        (`DivergenceError`, with the fix).
    """
    check_type(model, NeuralModel, "model", owner="fit")
    if capacity is not None:
        capacity = check_int(capacity, "capacity", owner="fit", low=1)
    x, u, x_next, rewards = _check_arrays(model, x, u, x_next, rewards)
    if x.shape[0] < 2:
        raise ValueError(f"fit needs at least 2 transitions, got {x.shape[0]}.")
    cfg = model.config
    key = jax.random.key(cfg.seed) if key is None else key
    k_init, k_train, k_split = jax.random.split(key, 3)
    N = x.shape[0]
    n_out = round(N * cfg.holdout_fraction) if cfg.holdout_fraction > 0 else 0
    n_out = min(n_out, N - 1)
    perm = np.asarray(_permutation(k_split, N))
    test, train = perm[:n_out], perm[n_out:]

    # One program for every fit up to `capacity` (the rows past N are padding).
    padded = (jnp.asarray(_pad(a, _rows(N, capacity))) for a in (x, u, x_next))
    feats, target = _inputs_and_targets(model, *padded)
    feats, target = np.asarray(feats, np.float64)[:N], np.asarray(target)[:N]
    if model.reward_head:
        target = np.concatenate([target, rewards[:, None]], axis=1)
    in_mean, in_std = feats[train].mean(0), feats[train].std(0)
    out_mean, out_std = target[train].mean(0), target[train].std(0)
    in_std = np.where(in_std > 1e-6, in_std, 1.0)
    out_std = np.where(out_std > 1e-6, out_std, 1.0)

    params = model.init(k_init) if init is None else init
    params = params.replace(
        in_mean=jnp.asarray(in_mean, jnp.float32),
        in_std=jnp.asarray(in_std, jnp.float32),
        out_mean=jnp.asarray(out_mean, jnp.float32),
        out_std=jnp.asarray(out_std, jnp.float32),
    )
    rows = _rows(len(train), capacity)
    z = (feats[train] - in_mean) / in_std
    y = (target[train] - out_mean) / out_std
    batch = _Batch(
        jnp.asarray(_pad(z, rows, np.float32)),
        jnp.asarray(_pad(y, rows, np.float32)),
        jnp.asarray(len(train)),
    )
    params, losses = _train(model, params, batch, k_train)
    losses = np.asarray(losses)
    tail = losses[-max(1, len(losses) // 10) :]
    final = float(np.mean(tail))
    if not np.isfinite(final):
        raise DivergenceError(
            f"the {model.kind} model's training loss became non-finite ({final}); lower "
            f"NeuralConfig.learning_rate (now {cfg.learning_rate}; `bellmax mbrl "
            "--learning-rate`) or check the data's scale."
        )
    rmse, r_rmse, z2 = (float("nan"),) * model.state_dim, float("nan"), float("nan")
    if n_out:
        rep = prediction_report(
            model,
            params,
            x[test],
            u[test],
            x_next[test],
            rewards=(None if rewards is None else rewards[test]),
        )
        rmse, r_rmse, z2 = rep["rmse"], rep["reward_rmse"], rep["z2"]
    return params, FitReport(len(train), n_out, final, rmse, r_rmse, z2)


def _report_terms_impl(model: NeuralModel, params: NeuralParams, x, u, x_next):
    pred = jax.vmap(lambda a, b: model.predict(params, a, b))(x, u)
    err = model.state_change(jnp.mean(pred.mean, axis=1), x_next)
    var = jnp.mean(pred.var, axis=1) + jnp.var(pred.mean, axis=1)
    return err, var, jnp.mean(pred.reward, axis=1)


#: `prediction_report`'s arrays (`[N, n]` errors of the ensemble mean and predicted total
#: variances, `[N]` mean rewards) as one program, compiled lightly: it runs once per report.
_report_terms = jit_lightly(_report_terms_impl, RUN_SOMETIMES, static_argnums=0)


def prediction_report(
    model: NeuralModel,
    params: NeuralParams,
    x: Any,
    u: Any,
    x_next: Any,
    *,
    rewards: Any = None,
) -> dict[str, Any]:
    """One-step prediction errors of the ensemble mean on transitions (e.g. held out).

    Returns:
      A dict: `rmse` (tuple per state component; angle errors wrapped), `reward_rmse`
      (NaN without a reward head), `z2` (mean of `error^2 / predicted total variance` over
      components and transitions: 1 when the predicted variance is calibrated; NaN for a
      deterministic model), and `error2` / `var` (`[N, n]` squared errors and predicted
      total variances, numpy).
    """
    x, u, x_next, rewards = _check_arrays(model, x, u, x_next, rewards)
    N = x.shape[0]
    padded = (jnp.asarray(_pad(a, _rows(N), np.float32)) for a in (x, u, x_next))
    err, var, r = (np.asarray(a, np.float64)[:N] for a in _report_terms(model, params, *padded))
    e2 = err**2
    z2 = float(np.mean(e2 / var)) if model.config.probabilistic else float("nan")
    r_rmse = float("nan")
    if model.reward_head:
        r_rmse = float(np.sqrt(np.mean((r - rewards) ** 2)))
    rmse = tuple(float(v) for v in np.sqrt(np.mean(e2, axis=0)))
    return {"rmse": rmse, "reward_rmse": r_rmse, "z2": z2, "error2": e2, "var": var}


def _open_loop_impl(model: NeuralModel, params: NeuralParams, states, actions, horizon: int):
    T = actions.shape[0]
    starts = jnp.arange(T - horizon + 1)

    def from_start(s):
        def body(x, k):
            u = actions[s + k]
            x_new = model.dynamics(x, u, 0, params)
            return x_new, model.state_change(x_new, states[s + k + 1])

        _, err = jax.lax.scan(body, states[s], jnp.arange(horizon))
        return err  # [H, n] (true - predicted, angles wrapped)

    return jax.vmap(from_start)(starts)


#: Compiled lightly: it runs once per report.
_open_loop = jit_lightly(_open_loop_impl, RUN_SOMETIMES, static_argnums=(0, 4))


def open_loop_error(
    model: NeuralModel, params: NeuralParams, states: Any, actions: Any, horizon: int
) -> np.ndarray:
    """Open-loop multi-step error: roll the ensemble mean along recorded actions.

    From every start `s` of a real trajectory the model is rolled `horizon` steps with the
    recorded actions (no correction from the real states), and compared with the real
    states.

    Args:
      model, params: the model.
      states: `[T + 1, n]` a real trajectory's states.
      actions: `[T, m]` its actions.
      horizon: steps ahead `H <= T`.

    Returns:
      `[H, n]` RMSE `k + 1` steps ahead, over all starts (angle errors wrapped).
    """
    states = np.asarray(states, np.float32)
    actions = np.asarray(actions, np.float32).reshape(states.shape[0] - 1, -1)
    H = check_int(horizon, "horizon", owner="open_loop_error", low=1, high=actions.shape[0])
    err = np.asarray(_open_loop(model, params, jnp.asarray(states), jnp.asarray(actions), H))
    return np.sqrt(np.mean(err.astype(np.float64) ** 2, axis=0))
