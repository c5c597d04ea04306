"""Parametric models of physical systems, for system identification and model-based control.

A model is a named parameter list and a one-step prediction `predict(theta, x, u) -> x'`
(`theta` in the order of `param_names`), plus how an environment's observations and actions
map to the model's state `x` and input `u`:

- `cartpole`: Gymnasium's cart-pole (Barto, Sutton & Anderson 1983; Florian 2005) integrated
  by explicit Euler as Gymnasium does (`bellmax.envs.cartpole.cartpole_euler_step`), with
  parameters gravity, masscart, masspole, length (half the pole), force_mag, tau. The input
  is the normalised force `u` in `[-1, 1]`: CartPole-v1's discrete action `a` gives
  `u = 2a - 1`, CartPoleSwingUp-v0's action is `u` itself (clipped), and the force is
  `force_mag * u`. State `[x, x_dot, theta, theta_dot]`; CartPoleSwingUp's observation
  `[x, x_dot, cos, sin, theta_dot]` is mapped back to it.
- `pendulum`: Gymnasium's Pendulum-v1 (`bellmax.envs.pendulum.pendulum_step`), parameters
  g, m, l, dt, max_torque; input the torque; state `[theta, theta_dot]` (the observation
  `[cos, sin, theta_dot]` is mapped back). The speed clip `max_speed = 8` is a known constant.

Each model also names the combinations of its parameters that transitions can determine
(`combinations`), which `bellmax.models.sysid.identify` reports with standard errors:
masses enter the cart-pole only as the ratios `masspole/total_mass` and
`force_mag/total_mass`, so the data fix those (and tau, gravity, length) but not the mass
scale; the pendulum's data fix dt, `g/l` and `1/(m l^2)` but not g and l apart, and
max_torque only if some actions exceed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.errors import unknown_name
from bellmax.envs.cartpole import CartPoleParams, cartpole_euler_step
from bellmax.envs.pendulum import PendulumParams, pendulum_step

__all__ = [
    "CARTPOLE",
    "PENDULUM",
    "ParametricModel",
    "get_model",
    "model_for_env",
    "model_names",
]


@dataclasses.dataclass(frozen=True, eq=False)
class ParametricModel:
    """A physical model with named parameters (hashable by identity: safe as a jit static).

    Build new ones with the constructor; `get_model(name)` returns the registered ones.
    """

    name: str
    """Registered name, e.g. `cartpole`."""
    param_names: tuple[str, ...]
    """Parameter names; `theta` vectors follow this order."""
    nominal: tuple[tuple[str, float], ...]
    """Default values (Gymnasium's), the initial guess of a fit."""
    state_names: tuple[str, ...]
    """Names of the state components."""
    angle_dims: tuple[int, ...]
    """State components that are angles (prediction errors are wrapped to `[-pi, pi)`)."""
    step_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
    """`(theta [p], x [n], u [m]) -> x' [n]`, traceable by JAX."""
    combinations: tuple[tuple[str, Callable[[Mapping[str, jax.Array]], jax.Array]], ...]
    """Named scalar functions of the parameters (by name) that data may determine."""
    obs_to_state: tuple[tuple[int, str, Callable[[np.ndarray], np.ndarray]], ...]
    """`(observation dim, description, map [N, dim] -> [N, n])` for accepted layouts."""
    action_to_input: Callable[[np.ndarray, bool], np.ndarray]
    """`(actions [N, k], discrete) -> inputs [N, m]`, host-side."""
    input_names: tuple[str, ...] = ("u",)
    """Names of the input components."""
    keep_start: tuple[str, ...] = ()
    """Parameters that multi-start fits do not perturb (bounds that act only when reached;
    see `bellmax.models.sysid.least_squares`)."""
    env_params_type: type | None = None
    """The environment's `EnvParams` class whose fields these parameters are."""
    description: str = ""
    """One line for listings."""

    def __repr__(self) -> str:
        return f"ParametricModel({self.name!r}, params={list(self.param_names)})"

    @property
    def nominal_params(self) -> dict[str, float]:
        """The nominal values by name."""
        return dict(self.nominal)

    @property
    def state_dim(self) -> int:
        """Dimension of the state."""
        return len(self.state_names)

    def predict(self, theta: jax.Array, x: jax.Array, u: jax.Array) -> jax.Array:
        """One step of the model.

        Args:
          theta: `[p]` parameters in `param_names` order (see `theta_from`).
          x: `[n]` state.
          u: `[m]` input (a scalar is accepted for one-input models).

        Returns:
          `[n]` next state.
        """
        return self.step_fn(theta, x, jnp.reshape(u, (-1,)))

    def dynamics(self, x: jax.Array, u: jax.Array, t: Any, params: jax.Array) -> jax.Array:
        """`predict` in the control signature `dynamics(x, u, t, params) -> x_next`."""
        del t
        return self.predict(params, x, u)

    def theta_from(self, params: Mapping[str, float]) -> jax.Array:
        """The `[p]` parameter vector of a mapping by name (nominal values fill gaps)."""
        for k in params:
            if k not in self.param_names:
                raise unknown_name(f"parameter of model {self.name!r}", k, self.param_names)
        vals = {**self.nominal_params, **dict(params)}
        return jnp.asarray([vals[n] for n in self.param_names])

    def env_params(self, values: Mapping[str, float], base: Any = None) -> Any:
        """Environment parameters with the given (e.g. identified) values.

        Args:
          values: parameter values by name (e.g. `FitResult.params`); other fields keep
            `base`'s values.
          base: the `EnvParams` to start from; default the class's defaults.

        Returns:
          An `EnvParams` (e.g. `CartPoleParams`) for the environment or a control problem
          (`bellmax.control.cartpole_balance(params=...)`).
        """
        if self.env_params_type is None:
            raise TypeError(f"model {self.name!r} has no environment parameter class.")
        for k in values:
            if k not in self.param_names:
                raise unknown_name(f"parameter of model {self.name!r}", k, self.param_names)
        base = self.env_params_type() if base is None else base
        return base.replace(**{k: float(v) for k, v in values.items()})

    def state_from_obs(self, obs: Any) -> np.ndarray:
        """The model state of observations `[N, obs_dim]` (or one `[obs_dim]`), host-side.

        Raises:
          ValueError: an observation layout the model does not accept.
        """
        o = np.asarray(obs, dtype=np.float64)
        single = o.ndim == 1
        o2 = o[None] if single else o
        for obs_dim, _, fn in self.obs_to_state:
            if o2.ndim == 2 and o2.shape[1] == obs_dim:
                x = np.asarray(fn(o2), dtype=np.float64)
                return x[0] if single else x
        accepted = " or ".join(f"{d} ({desc})" for d, desc, _ in self.obs_to_state)
        raise ValueError(
            f"model {self.name!r} accepts observations of dimension {accepted}; got shape "
            f"{o.shape}. Is the data from another environment? Pick the model that matches "
            "it (bellmax.models.model_for_env(env_id))."
        )

    def to_model(self, transitions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map transitions in environment terms to the model's `(X, U, X')`, float64 numpy.

        Args:
          transitions: a `bellmax.models.data.Transitions`.

        Returns:
          `X [N, n]`, `U [N, m]`, `X' [N, n]`.

        Raises:
          ValueError: an observation layout or action type the model does not accept.
        """
        X = self.state_from_obs(transitions.x)
        Xn = self.state_from_obs(transitions.x_next)
        U = np.asarray(
            self.action_to_input(np.asarray(transitions.u), bool(transitions.discrete)),
            dtype=np.float64,
        )
        return X, U, Xn


# ====================================================================== cart-pole
_CARTPOLE_NAMES = ("gravity", "masscart", "masspole", "length", "force_mag", "tau")


def _cartpole_step(theta: jax.Array, x: jax.Array, u: jax.Array) -> jax.Array:
    g, mc, mp, length, force_mag, tau = (theta[i] for i in range(6))
    params = CartPoleParams(
        gravity=g, masscart=mc, masspole=mp, length=length, force_mag=force_mag, tau=tau
    )
    return cartpole_euler_step(x, force_mag * u[0], params)


def _cartpole_inputs(a: np.ndarray, discrete: bool) -> np.ndarray:
    a = np.asarray(a)
    if discrete:
        flat = a.reshape(a.shape[0], -1)
        if flat.shape[1] != 1 or not np.all(np.isin(flat, (0, 1))):
            bad = flat[~np.isin(flat, (0, 1))][:3] if flat.shape[1] == 1 else flat.shape
            raise ValueError(
                f"cart-pole discrete actions must be 0 (push left) or 1 (push right), got {bad}; "
                "CartPole-v1's actions map to the force (2a - 1) * force_mag."
            )
        return (2.0 * flat - 1.0).astype(np.float64)
    flat = a.reshape(a.shape[0], -1)
    if flat.shape[1] != 1:
        raise ValueError(
            f"cart-pole continuous actions must be one number per step (the normalised force "
            f"in [-1, 1]), got shape {a.shape}."
        )
    return np.clip(flat.astype(np.float64), -1.0, 1.0)


def _swingup_obs(o: np.ndarray) -> np.ndarray:
    return np.stack([o[:, 0], o[:, 1], np.arctan2(o[:, 3], o[:, 2]), o[:, 4]], axis=1)


def _total(p):
    return p["masscart"] + p["masspole"]


CARTPOLE = ParametricModel(
    name="cartpole",
    param_names=_CARTPOLE_NAMES,
    nominal=tuple(
        (n, float(getattr(CartPoleParams(), n))) for n in _CARTPOLE_NAMES
    ),  # Gymnasium's defaults
    state_names=("x", "x_dot", "theta", "theta_dot"),
    angle_dims=(2,),
    step_fn=_cartpole_step,
    combinations=(
        ("masspole/total_mass", lambda p: p["masspole"] / _total(p)),
        ("force_mag/total_mass", lambda p: p["force_mag"] / _total(p)),
        ("total_mass", _total),
    ),
    obs_to_state=(
        (4, "CartPole-v1's state [x, x_dot, theta, theta_dot]", lambda o: o),
        (5, "CartPoleSwingUp-v0's [x, x_dot, cos, sin, theta_dot]", _swingup_obs),
    ),
    action_to_input=_cartpole_inputs,
    input_names=("force/force_mag",),
    env_params_type=CartPoleParams,
    description="Gymnasium's cart-pole, Euler step tau; input the force in units of force_mag.",
)


# ====================================================================== pendulum
_PENDULUM_NAMES = ("g", "m", "l", "dt", "max_torque")


def _pendulum_step(theta: jax.Array, x: jax.Array, u: jax.Array) -> jax.Array:
    g, m, length, dt, max_torque = (theta[i] for i in range(5))
    params = PendulumParams(g=g, m=m, l=length, dt=dt, max_torque=max_torque)
    return pendulum_step(x, u[0], params)


def _pendulum_inputs(a: np.ndarray, discrete: bool) -> np.ndarray:
    if discrete:
        raise ValueError(
            "the pendulum model needs continuous torques, got discrete actions; collect the "
            "data from Pendulum-v1 (Box action space)."
        )
    a = np.asarray(a)
    flat = a.reshape(a.shape[0], -1)
    if flat.shape[1] != 1:
        raise ValueError(f"pendulum actions must be one torque per step, got shape {a.shape}.")
    return flat.astype(np.float64)


def _pendulum_obs(o: np.ndarray) -> np.ndarray:
    return np.stack([np.arctan2(o[:, 1], o[:, 0]), o[:, 2]], axis=1)


PENDULUM = ParametricModel(
    name="pendulum",
    param_names=_PENDULUM_NAMES,
    nominal=tuple((n, float(getattr(PendulumParams(), n))) for n in _PENDULUM_NAMES),
    state_names=("theta", "theta_dot"),
    angle_dims=(0,),
    step_fn=_pendulum_step,
    combinations=(
        ("g/l", lambda p: p["g"] / p["l"]),
        ("1/(m*l^2)", lambda p: 1.0 / (p["m"] * p["l"] ** 2)),
    ),
    obs_to_state=(
        (3, "Pendulum-v1's [cos theta, sin theta, theta_dot]", _pendulum_obs),
        (2, "the state [theta, theta_dot]", lambda o: o),
    ),
    action_to_input=_pendulum_inputs,
    input_names=("torque",),
    keep_start=("max_torque",),
    env_params_type=PendulumParams,
    description="Gymnasium's Pendulum-v1 (semi-implicit Euler, speed clip 8); input the torque.",
)


_MODELS: dict[str, ParametricModel] = {"cartpole": CARTPOLE, "pendulum": PENDULUM}


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_MODELS)


def get_model(name: str) -> ParametricModel:
    """The registered model called `name`.

    Args:
      name: `"cartpole"` or `"pendulum"`.

    Returns:
      The `ParametricModel`.

    Raises:
      UnknownNameError: an unknown name (the message lists the close ones).
      TypeError: `name` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string such as 'cartpole', got {name!r}.")
    try:
        return _MODELS[name]
    except KeyError:
        raise unknown_name(
            "system model",
            name,
            _MODELS,
            hint="bellmax.models.model_names() lists them.",
        ) from None


def model_for_env(env_id: str) -> ParametricModel:
    """The model that describes an environment id (`CartPole*` or `Pendulum*`).

    Raises:
      UnknownNameError: no model fits `env_id`; pass the model explicitly.
    """
    base = str(env_id).rpartition(":")[2].lower()
    for prefix, model in (("cartpole", CARTPOLE), ("pendulum", PENDULUM)):
        if base.startswith(prefix):
            return model
    raise unknown_name(
        "environment for a parametric model",
        str(env_id),
        ["CartPole-v1", "CartPoleSwingUp-v0", "Pendulum-v1"],
        hint="Pass the model by name (get_model('cartpole') or get_model('pendulum')).",
    )
