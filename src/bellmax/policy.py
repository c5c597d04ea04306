"""A trained policy, standalone: act with it from NumPy or JAX without the training state.

    policy = bellmax.load_policy("runs/ppo")             # a run directory or a policy file
    action = policy.predict(obs)                         # NumPy in, NumPy out
    action = jax.jit(policy.act)(key, obs)               # pure JAX

Every `bellmax train` run (`bellmax.train.driver.train(..., out_dir=DIR)`) writes
`DIR/policy.msgpack` at each checkpoint and again at the end, with the final evaluation.

`Policy.predict(obs, deterministic=True)` takes one observation (shape
`observation_space.shape`) or a batch (`[*batch, *observation_space.shape]`) and returns the
action(s) as a NumPy array of matching batch shape (`[*batch, *action_space.shape]`; a 0-d
integer array for one `Discrete` action): SB3's `model.predict(obs)[0]`, with no recurrent
state to pass around. `deterministic=True` is the greedy action (the mode of the action
distribution, the arg-max of Q, SAC's `tanh(mean)`, TD3's `mu(s)`; discrete SAC's most likely
action); `False` samples
(epsilon-greedy with DQN's final epsilon; SAC's squashed Gaussian; TD3's `mu(s)` plus its
Gaussian exploration noise, as `td3.act(..., deterministic=False)`), drawing keys from the
policy's own stream (`Policy(..., key_seed)`); for keys of your own use
`act(key, obs, deterministic=False)`, a pure function of JAX arrays (jit, vmap, scan it).
Gaussian actions are clipped to the action `Box`, as in training's evaluations; SAC's and
TD3's tanh-squashed actions in `[-1, 1]^d` are rescaled to it (`low + (a + 1) (high - low) / 2`).

Seeds: a run trained with several seeds stores every seed's policy. `load_policy(path)`
picks the seed with the best final evaluation return when the run recorded one (the run's
`eval_return_per_seed`; ties go to the first), else the first seed; `seed=` picks one.

The file (format `bellmax-policy/1`) is plain msgpack, readable without bellmax, flax or
optax, and holds no library class names, so upgrading those libraries cannot break it:

    {"format": "bellmax-policy/1", "bellmax_version": "0.1.0", "sha256": HEX, "body": BYTES}
    body = {
      "header": {
        "algorithm": "ppo",
        "network": {"kind": "categorical" (PPO/A2C/REINFORCE, discrete SAC) | "gaussian"
                            | "q_values" | "tanh_gaussian" | "tanh_deterministic",
                    "hidden_sizes": [64, 64], "activation": "tanh", "output_size": 2,
                    "epsilon": 0.04 (q_values only: the exploration rate of deterministic=False),
                    "log_std_min": -20.0, "log_std_max": 2.0 (tanh_gaussian only),
                    "exploration_noise": 0.1 (tanh_deterministic only: deterministic=False's
                                              noise std, in [-1, 1] action units)},
        "observation_space": {"type": "Box", "shape": [4], "dtype": "float32",
                              "low": [...], "high": [...]},   # or Discrete {n}, MultiDiscrete {nvec}
        "action_space": {...},
        "observation_normalization": null,                      # none is learned today
        "seeds": [0, 1],
        "run": {"env", "run_id", "updates_done", "env_steps", "num_envs",
                "checkpoint_sha256", "eval_return_per_seed" (null until the final evaluation)},
      },
      "weights": {"hidden_0/kernel": {"dtype": "<f4", "shape": [2, 4, 64], "data": BYTES}, ...},
    }

The network is an MLP: `hidden_i` layers (`x @ kernel + bias`, then the activation), an
`output` layer of `output_size` (logits, Gaussian mean, Q-values; SAC's `tanh_gaussian`: the
`d` means then the `d` log-stds, clipped to `[log_std_min, log_std_max]`, `output_size = 2d`;
TD3's `tanh_deterministic`: `d` pre-tanh actions), and `log_std` for a Gaussian policy.
Each weight has a leading seed axis. The observation reaches the MLP as `flatten_obs` makes
it (one-hot for `Discrete`). `sha256` covers `body`: a damaged file is refused, naming it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import msgpack
import numpy as np

from bellmax import __version__
from bellmax.core.errors import BellmaxError
from bellmax.core.io import POLICY_MSGPACK, RUN_JSON, atomic_open, neural_policy_how
from bellmax.deep.distributions import Categorical, DiagGaussian, action_space_kind, clip_to_space
from bellmax.deep.networks import MLP, flatten_obs
from bellmax.deep.off_policy import check_continuous_actions, to_env_action
from bellmax.deep.sac import LOG_STD_MAX, LOG_STD_MIN, TanhGaussian
from bellmax.deep.td3 import exploration_action
from bellmax.envs import spaces

__all__ = [
    "FORMAT",
    "POLICY_FILE",
    "Policy",
    "PolicyFileError",
    "describe_space",
    "load_policies",
    "load_policy",
    "policy_network",
    "policy_weights",
    "space_mismatch",
    "write_policy_file",
]

FORMAT = "bellmax-policy/1"
_FAMILY = "bellmax-policy/"
POLICY_FILE = POLICY_MSGPACK
#: Network kinds: what the MLP's output is.
KINDS = ("categorical", "gaussian", "q_values", "tanh_gaussian", "tanh_deterministic")
_ON_POLICY = ("ppo", "a2c", "reinforce")
#: Algorithms whose policy is one `MLP` (flax names `MLP_0/Dense_i`): the network kind
#: (discrete SAC's `CategoricalActor` is one MLP too, of kind "categorical").
_ONE_MLP = {"dqn": "q_values", "sac": "tanh_gaussian", "td3": "tanh_deterministic"}
#: Kinds whose action is `tanh` of (part of) the output, rescaled to a `Box`.
_SQUASHED = ("tanh_gaussian", "tanh_deterministic")


class PolicyFileError(BellmaxError, ValueError):
    """A policy file is missing, damaged, or in a format this bellmax does not read."""


# ---------------------------------------------------------------------- spaces as plain data


def _floats(a: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(a, np.float64).reshape(-1)]


def space_to_data(space: spaces.Space) -> dict[str, Any]:
    """A bellmax space as plain data (msgpack/JSON-able; infinite bounds stay floats)."""
    dtype = np.dtype(space.dtype).name
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "dtype": dtype}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": [int(n) for n in space.nvec], "dtype": dtype}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": [int(s) for s in space.shape],
            "dtype": dtype,
            "low": _floats(space.low),
            "high": _floats(space.high),
        }
    raise TypeError(
        f"cannot store the space {space!r} in a policy file: Discrete, MultiDiscrete and Box "
        "spaces can be stored."
    )


def space_from_data(data: Any) -> spaces.Space:
    """The space `space_to_data` stored (raises KeyError/TypeError/ValueError on bad data)."""
    kind = data["type"]
    dtype = np.dtype(data["dtype"])
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), dtype=dtype)
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete([int(n) for n in data["nvec"]], dtype=dtype)
    if kind == "Box":
        shape = tuple(int(s) for s in data["shape"])
        low = np.asarray(data["low"], np.float64).reshape(shape)
        high = np.asarray(data["high"], np.float64).reshape(shape)
        return spaces.Box(low, high, shape, dtype=dtype)
    raise ValueError(f"unknown space type {kind!r}")


def describe_space(space: spaces.Space) -> str:
    """A short name: `Box(4,)`, `Box(2, 3)`, `Discrete(2)`, `MultiDiscrete([2, 3])`."""
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape)
        return f"Box{shape}" if len(shape) != 1 else f"Box({shape[0]},)"
    return repr(space)


def _same_space(a: spaces.Space, b: spaces.Space) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Discrete):
        return a.n == b.n
    if isinstance(a, spaces.MultiDiscrete):
        return a.nvec.tolist() == b.nvec.tolist()
    return tuple(a.shape) == tuple(b.shape)


def space_mismatch(policy: Any, venv: Any, env_id: str, *, where: str = "the run") -> str | None:
    """What differs between a policy's spaces and an environment's, or None.

    Spaces match when they are of the same type and shape (`Discrete`: the same `n`); Box
    bounds may differ (Gaussian actions stay clipped to the policy's own action bounds).

    Args:
      policy: anything with `observation_space` and `action_space` (a `Policy`, a vector env).
      venv: the environment to act in (its `observation_space`, `action_space`).
      env_id: its name in the message.
      where: the policy's name in the message.

    Returns:
      `"observation space Box(4,) in the run, Box(3,) in gymnasium:Pendulum-v1"` (both
      spaces named when both differ, joined by "; "), or None when they match.
    """
    out = []
    for kind in ("observation", "action"):
        ours, theirs = getattr(policy, f"{kind}_space"), getattr(venv, f"{kind}_space")
        if not _same_space(ours, theirs):
            out.append(
                f"{kind} space {describe_space(ours)} in {where}, "
                f"{describe_space(theirs)} in {env_id}"
            )
    return "; ".join(out) or None


# ---------------------------------------------------------------------- the network


def policy_network(algorithm: str, config: Any, venv: Any) -> dict[str, Any] | None:
    """The `network` header of an algorithm's policy, or None if bellmax cannot store it.

    Args:
      algorithm: `"ppo"`, `"a2c"`, `"reinforce"` (actor-critics: the actor is stored),
        `"dqn"` (the online Q-network), `"sac"` or `"td3"` (the actor; critics and target
        networks are not stored; discrete SAC's actor is `"categorical"`); any other name
        gives None.
      config: the algorithm's Config (`hidden_sizes`, `activation`, ...).
      venv: the vector environment (its action space).
    """
    if algorithm in _ON_POLICY:
        discrete, size = action_space_kind(venv.action_space, algorithm=algorithm)
        kind = "categorical" if discrete else "gaussian"
    elif algorithm == "dqn":
        kind, size = "q_values", int(venv.action_space.n)
    elif algorithm in ("sac", "td3"):
        discrete, d = config.action_kind(venv.action_space)
        kind = "categorical" if discrete else _ONE_MLP[algorithm]
        size = 2 * d if kind == "tanh_gaussian" else d
    else:
        return None
    net = {
        "kind": kind,
        "hidden_sizes": [int(h) for h in config.hidden_sizes],
        "activation": str(config.activation),
        "output_size": int(size),
    }
    if kind == "q_values":
        net["epsilon"] = float(config.final_epsilon)
    elif kind == "tanh_gaussian":
        net["log_std_min"], net["log_std_max"] = float(LOG_STD_MIN), float(LOG_STD_MAX)
    elif kind == "tanh_deterministic":
        net["exploration_noise"] = float(config.exploration_noise)
    return net


def policy_weights(algorithm: str, network: dict, params: Any) -> dict[str, np.ndarray]:
    """The policy's weights under the file's names, from an algorithm's flax parameters.

    Args:
      algorithm: as in `policy_network`.
      network: `policy_network`'s header.
      params: `algo.policy_params(state)` (any leading axes, e.g. seeds, are kept).

    Returns:
      `{"hidden_0/kernel": array, ..., "output/bias": array[, "log_std": array]}` on the host.
    """
    p = params["params"]
    n = len(network["hidden_sizes"])
    if algorithm in _ON_POLICY:
        # An empty `hidden_sizes` (a linear policy) leaves flax no torso parameters.
        torso = p["torso"] if "torso" in p else p.get("actor_torso", {})
        layers = [torso[f"Dense_{i}"] for i in range(n)] + [p["policy_head"]]
    elif algorithm in _ONE_MLP:  # dqn's QNetwork, sac's (both kinds) and td3's actors: one MLP
        mlp = p["MLP_0"]
        layers = [mlp[f"Dense_{i}"] for i in range(n + 1)]
    else:
        raise ValueError(f"bellmax stores no policy of algorithm {algorithm!r}.")
    out = {}
    for i, layer in enumerate(layers):
        name = "output" if i == n else f"hidden_{i}"
        out[f"{name}/kernel"] = np.asarray(layer["kernel"])
        out[f"{name}/bias"] = np.asarray(layer["bias"])
    if network["kind"] == "gaussian":
        out["log_std"] = np.asarray(p["log_std"])
    return out


def _expected_weights(network: dict, obs_dim: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape (without the seed axis) of every weight a network has."""
    sizes = [obs_dim, *network["hidden_sizes"], network["output_size"]]
    out = {}
    for i in range(len(sizes) - 1):
        name = "output" if i == len(sizes) - 2 else f"hidden_{i}"
        out[f"{name}/kernel"] = (sizes[i], sizes[i + 1])
        out[f"{name}/bias"] = (sizes[i + 1],)
    if network["kind"] == "gaussian":
        out["log_std"] = (network["output_size"],)
    return out


def _check_squashed(network: dict, action_space: spaces.Space) -> None:
    """That a SAC or TD3 network's header fits its action `Box` (ValueError if not)."""
    d = check_continuous_actions(action_space, network["kind"])
    per_dim = 2 if network["kind"] == "tanh_gaussian" else 1
    if network["output_size"] != per_dim * d:
        raise ValueError(f"output_size {network['output_size']} for {d} action dimensions")
    extra = ("log_std_min", "log_std_max") if per_dim == 2 else ("exploration_noise",)
    for name in extra:
        if not isinstance(network[name], float | int) or not math.isfinite(network[name]):
            raise ValueError(f"{name} {network[name]!r} is not a finite number")


def _obs_dim(space: spaces.Space) -> int:
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.sum(space.nvec))
    return int(math.prod(space.shape))


class _Actor:
    """The pure acting function of one architecture and pair of spaces (cached, so that
    every policy of that architecture shares one compiled program)."""

    def __init__(self, key: str):
        spec = json.loads(key)
        self.network = spec["network"]
        self.observation_space = space_from_data(spec["observation_space"])
        self.action_space = space_from_data(spec["action_space"])
        self.mlp = MLP(
            tuple(self.network["hidden_sizes"]),
            self.network["activation"],
            output_size=self.network["output_size"],
        )
        self.n_hidden = len(self.network["hidden_sizes"])

    def __call__(self, params: Any, key: jax.Array, obs: jax.Array, deterministic: bool):
        kind = self.network["kind"]
        x = flatten_obs(jnp.asarray(obs), self.observation_space)
        layers = {f"Dense_{i}": params[f"hidden_{i}"] for i in range(self.n_hidden)}
        layers[f"Dense_{self.n_hidden}"] = params["output"]
        out = self.mlp.apply({"params": layers}, x)
        if kind in _SQUASHED:
            return to_env_action(self._squashed(out, key, deterministic), self.action_space)
        if kind == "categorical":
            dist = Categorical(out)
            action = dist.mode() if deterministic else dist.sample(key)
        elif kind == "gaussian":
            dist = DiagGaussian(out, params["log_std"])
            action = dist.mode() if deterministic else dist.sample(key)
            return clip_to_space(action, self.action_space)
        else:  # q_values: greedy, or epsilon-greedy
            action = jnp.argmax(out, axis=-1)
            if not deterministic:
                k_coin, k_action = jax.random.split(key)
                explore = jax.random.uniform(k_coin, action.shape) < self.network["epsilon"]
                n = self.network["output_size"]
                action = jnp.where(
                    explore, jax.random.randint(k_action, action.shape, 0, n), action
                )
        return action.astype(self.action_space.dtype)

    def _squashed(self, out: jax.Array, key: jax.Array, deterministic: bool) -> jax.Array:
        """The normalised action in `[-1, 1]^d` of SAC's or TD3's actor output `out`."""
        if self.network["kind"] == "tanh_gaussian":  # sac.SquashedGaussianActor
            mean, log_std = jnp.split(out, 2, axis=-1)
            lo, hi = self.network["log_std_min"], self.network["log_std_max"]
            dist = TanhGaussian(mean, jnp.clip(log_std, lo, hi))
            return dist.mode() if deterministic else dist.sample_and_log_prob(key)[0]
        mu = jnp.tanh(out)  # td3.DeterministicActor
        if deterministic:
            return mu
        return exploration_action(mu, key, self.network["exploration_noise"])

    def evaluate_fn(self, params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        """`bellmax.deep.evaluate`'s `act_fn(params, obs, key)`: the greedy action."""
        return self(params, key, obs, True)

    @functools.cached_property
    def jitted(self) -> Callable:
        """`jax.jit` of this actor (`deterministic` static), one per architecture: a jit per
        `Policy` compiled every seed's policy of a file again."""
        return jax.jit(self.__call__, static_argnums=3)


@functools.lru_cache(maxsize=32)
def _actor(key: str) -> _Actor:
    return _Actor(key)


# ---------------------------------------------------------------------- the file


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": a.tobytes()}


def _decode_array(d: Any) -> np.ndarray:
    dtype = np.dtype(d["dtype"])
    if dtype.kind not in "fiub":
        raise ValueError(f"weights of dtype {dtype} are not numbers")
    return np.frombuffer(d["data"], dtype=dtype).reshape([int(s) for s in d["shape"]]).copy()


def write_policy_file(
    path: str | os.PathLike,
    *,
    algorithm: str,
    network: dict[str, Any],
    observation_space: spaces.Space,
    action_space: spaces.Space,
    weights: dict[str, np.ndarray],
    seeds: Sequence[int],
    run: dict[str, Any] | None = None,
) -> Path:
    """Write a policy file atomically (a reader sees the old file or the new one).

    Args:
      path: the file (`DIR/policy.msgpack` in a run directory).
      algorithm: the algorithm's name (`"ppo"`).
      network: `policy_network`'s header.
      observation_space, action_space: the environment's (single) spaces.
      weights: `policy_weights`' arrays, each with a leading axis of `len(seeds)`.
      seeds: the seed of each policy.
      run: plain-data provenance (env, run id, updates done, evaluation returns, ...).

    Returns:
      The path written.
    """
    seeds = [int(s) for s in seeds]
    for name, a in weights.items():
        if np.shape(a)[:1] != (len(seeds),):
            raise ValueError(
                f"weight {name!r} has shape {np.shape(a)}; every weight needs a leading axis "
                f"of one entry per seed ({len(seeds)})."
            )
    header = {
        "algorithm": algorithm,
        "network": network,
        "observation_space": space_to_data(observation_space),
        "action_space": space_to_data(action_space),
        "observation_normalization": None,
        "seeds": seeds,
        "run": run or {},
    }
    body = msgpack.packb(
        {
            "header": header,
            "weights": {k: _encode_array(np.asarray(v)) for k, v in weights.items()},
        },
        use_bin_type=True,
    )
    envelope = {
        "format": FORMAT,
        "bellmax_version": __version__,
        "sha256": hashlib.sha256(body).hexdigest(),
        "body": body,
    }
    data = msgpack.packb(envelope, use_bin_type=True)
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


_REWRITE = (
    "restore it from a copy, or rewrite it from its run's checkpoint with `bellmax train ALGO "
    "--out DIR --resume` (a finished run is not trained further)"
)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_policy_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """`(header, weights)` of a policy file, checked: format, checksum, spaces and shapes.

    Raises:
      PolicyFileError: the file is missing, damaged, in another format version, or its
        contents do not describe a policy (the message names the file and the fix).
    """
    p = Path(path)
    if not p.is_file():
        raise PolicyFileError(
            f"no policy file at {str(p)!r}; pass a run directory written by `bellmax train` "
            f"or its {POLICY_FILE}."
        )
    try:
        data = p.read_bytes()
    except OSError as e:
        raise PolicyFileError(f"cannot read policy file {str(p)!r}: {e.strerror or e}.") from None
    damaged = (
        f"policy file {str(p)!r} is damaged ({len(data)} bytes: truncated or overwritten) or "
        "not a bellmax policy file"
    )
    try:
        envelope = msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several types on garbage and truncation
        raise PolicyFileError(
            f"{damaged}: it cannot be decoded ({_short(exc)}); {_REWRITE}."
        ) from None
    fmt = envelope.get("format") if isinstance(envelope, dict) else None
    if not isinstance(fmt, str):
        raise PolicyFileError(f"{damaged}: it has no format tag; {_REWRITE}.")
    if fmt != FORMAT:
        written = envelope.get("bellmax_version")
        by = f"bellmax {written}" if isinstance(written, str) else "another bellmax version"
        if fmt.startswith(_FAMILY):
            raise PolicyFileError(
                f"policy file {str(p)!r} was written by {by} in format {fmt!r}; this bellmax "
                f"({__version__}) reads {FORMAT!r}: load it with a bellmax that reads {fmt!r} "
                "(upgrade bellmax), or write it again with this one (`bellmax train ALGO --out "
                "DIR --resume` rewrites a run's policy file from its checkpoint)."
            )
        if fmt == "bellmax.neural_policy":  # models.through_model's format (bellmax gps)
            raise PolicyFileError(
                f"{str(p)!r} is the neural policy of `bellmax gps --policy mdgps` (format "
                f"{fmt!r}): it acts on the environment's state vector, not its observations, "
                f"so it is not a Policy; {neural_policy_how(p)}."
            )
        raise PolicyFileError(f"{str(p)!r} is not a bellmax policy file (format {fmt!r}).")
    body = envelope.get("body")
    if not isinstance(body, bytes) or envelope.get("sha256") != hashlib.sha256(body).hexdigest():
        raise PolicyFileError(
            f"policy file {str(p)!r} is damaged: its contents do not match the checksum stored "
            f"with them (bytes changed after it was written); {_REWRITE}."
        )
    try:
        payload = msgpack.unpackb(body, raw=False)
        header = payload["header"]
        network = header["network"]
        if network["kind"] not in KINDS:
            raise ValueError(f"unknown network kind {network['kind']!r}")
        if header.get("observation_normalization") is not None:
            raise ValueError("an observation normalisation this bellmax does not know")
        obs_space = space_from_data(header["observation_space"])
        action_space = space_from_data(header["action_space"])
        if network["kind"] in _SQUASHED:
            _check_squashed(network, action_space)
        seeds = [int(s) for s in header["seeds"]]
        if not seeds:
            raise ValueError("no seeds")
        weights = {k: _decode_array(v) for k, v in payload["weights"].items()}
        expected = _expected_weights(network, _obs_dim(obs_space))
        if set(weights) != set(expected):
            raise ValueError(f"weights {sorted(weights)}, expected {sorted(expected)}")
        for k, shape in expected.items():
            if weights[k].shape != (len(seeds), *shape):
                raise ValueError(f"weight {k} has shape {weights[k].shape}")
    except Exception as exc:
        raise PolicyFileError(
            f"{damaged}: its contents do not describe a policy ({_short(exc)}); {_REWRITE}."
        ) from None
    header["bellmax_version"] = envelope.get("bellmax_version")
    return header, weights


# ---------------------------------------------------------------------- the policy


class Policy:
    """One trained policy: its weights, its spaces, and how it acts.

    Attributes:
      algorithm: the algorithm that trained it (`"ppo"`).
      seed: the training seed it comes from.
      params: its weights, `{"hidden_0": {"kernel", "bias"}, ..., "output": {...}}` (plus
        `log_std` for a Gaussian policy), jax arrays.
      observation_space, action_space: the training environment's spaces (bellmax spaces).
      header: the policy file's header (network, spaces, seeds, the run's provenance).
      path: the file it was read from (None if built in memory).
    """

    def __init__(
        self,
        header: dict[str, Any],
        weights: dict[str, np.ndarray],
        seed: int,
        *,
        path: str | os.PathLike | None = None,
        key_seed: int = 0,
    ):
        seeds = [int(s) for s in header["seeds"]]
        if seed not in seeds:
            raise ValueError(f"seed {seed} is not in this policy file; it holds seeds {seeds}.")
        i = seeds.index(seed)
        self.header = header
        self.algorithm: str = header["algorithm"]
        self.seed = int(seed)
        self.path = None if path is None else Path(path)
        spec = {k: header[k] for k in ("network", "observation_space", "action_space")}
        self._actor = _actor(json.dumps(spec, sort_keys=True))
        self.observation_space = self._actor.observation_space
        self.action_space = self._actor.action_space
        params: dict[str, Any] = {}
        for name, a in weights.items():
            layer, _, leaf = name.rpartition("/")
            target = params.setdefault(layer, {}) if layer else params
            target[leaf] = jnp.asarray(a[i])
        self.params = params
        self._jit = self._actor.jitted
        self._key = jax.random.key(key_seed)
        self._draws = 0

    def __repr__(self) -> str:
        where = f", from {str(self.path)!r}" if self.path is not None else ""
        return (
            f"Policy({self.algorithm}, seed {self.seed}, {describe_space(self.observation_space)}"
            f" -> {describe_space(self.action_space)}{where})"
        )

    @property
    def act_fn(self):
        """`(params, obs [N, ...], key) -> action [N, ...]`, greedy: the `act_fn` of
        `bellmax.deep.evaluate.evaluate` (one object per architecture, so evaluations of
        policies alike share one compiled program)."""
        return self._actor.evaluate_fn

    def _single(self, obs: Any, shape: tuple[int, ...]) -> bool:
        """Whether `obs` is one observation (else a batch); raise if it is neither."""
        nd = len(self.observation_space.shape)
        if (
            tuple(shape[len(shape) - nd :]) != tuple(self.observation_space.shape)
            or len(shape) < nd
        ):
            want = tuple(self.observation_space.shape)
            raise ValueError(
                f"observation of shape {tuple(shape)} does not fit the policy's observation "
                f"space {describe_space(self.observation_space)}: pass one observation of shape "
                f"{want} or a batch of shape (N, {', '.join(map(str, want))})."
            )
        return len(shape) == nd

    def act(self, key: jax.Array, obs: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """The action(s) for `obs`: a pure function of JAX arrays (jit, vmap and scan it).

        Args:
          key: PRNG key (used only when `deterministic` is False).
          obs: one observation `[*observation_space.shape]` or a batch `[*batch, ...]`.
          deterministic: the greedy action (mode / arg-max), or a sample.

        Returns:
          `[*batch, *action_space.shape]` actions (integers for a `Discrete` action space).
        """
        self._single(obs, tuple(jnp.shape(obs)))
        return self._actor(self.params, key, obs, deterministic)

    def predict(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """The action(s) for NumPy observation(s), as a NumPy array.

        Args:
          obs: one observation (shape `observation_space.shape`) or a batch of them.
          deterministic: the greedy action; False samples, with keys from the policy's own
            stream (one new key per call).

        Returns:
          One action (shape `action_space.shape`; a 0-d array for `Discrete`) for one
          observation, `[*batch, *action_space.shape]` for a batch.

        Raises:
          ValueError: `obs` does not fit the observation space, or holds a NaN or infinity;
            for a `Discrete` or `MultiDiscrete` observation space, an entry is not a whole
            number in range (an observation there is the state's index, not a one-hot vector).
        """
        if isinstance(obs, tuple) and len(obs) == 2 and isinstance(obs[1], dict):
            raise TypeError(
                "predict takes an observation, got an (observation, info) pair, what "
                "Gymnasium's reset returns: obs, info = env.reset(...), then predict(obs)."
            )
        x = np.asarray(obs)
        self._single(x, x.shape)
        if np.issubdtype(x.dtype, np.number) and not np.isfinite(x).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise ValueError(
                f"observation holds a non-finite value ({x[where]} at index {where}): the "
                "policy has no action for it; check the environment or whatever built the "
                "observation (a diverged simulation, a division by zero)."
            )
        if self._check_indices(x):
            x = x.astype(np.int32)  # whole floats as the indices they are (one_hot takes ints)
        if deterministic:
            key = self._key
        else:
            self._draws += 1
            key = jax.random.fold_in(self._key, self._draws)
        if x.size == 0:  # an empty batch: no actions, of the shape and dtype they would have
            one = np.zeros((1, *self.observation_space.shape), x.dtype)
            out = jax.eval_shape(self._jit, self.params, key, one, bool(deterministic))
            return np.zeros(x.shape[: x.ndim - len(self.observation_space.shape)] + out.shape[1:],
                            out.dtype)  # fmt: skip
        return np.asarray(self._jit(self.params, key, x, bool(deterministic)))

    def _check_indices(self, x: np.ndarray) -> bool:
        """A `Discrete` or `MultiDiscrete` observation is an index (per entry): whole numbers
        in range. One-hot encoding is the policy's own business (`flatten_obs`); given one,
        its entries would read as a batch of states, and anything else as the wrong states.
        Returns whether `x` holds such indices (False for other spaces)."""
        space = self.observation_space
        if not isinstance(space, spaces.Discrete | spaces.MultiDiscrete):
            return False
        if x.size == 0:
            return True
        high = space.n if isinstance(space, spaces.Discrete) else np.asarray(space.nvec)
        kind = "" if isinstance(space, spaces.Discrete) else " (entry-wise)"
        if (
            isinstance(space, spaces.Discrete)
            and space.n >= 3  # [0., 1.] is as likely two states as one one-hot of 2
            and x.dtype.kind == "f"
            and x.shape[-1:] == (space.n,)
            and np.isin(x, (0.0, 1.0)).all()
            and (x.sum(axis=-1) == 1).all()
        ):  # a float batch of indices that is exactly one-hot rows is not plausible
            raise ValueError(
                f"observations of {describe_space(space)} are state indices, and these look "
                f"like one-hot vectors (shape {x.shape}, each row a single 1.0); pass "
                "np.argmax(obs, axis=-1) (the policy one-hot encodes indices itself)."
            )
        if x.dtype.kind not in "iu" and not (x.dtype.kind == "f" and (x == np.round(x)).all()):
            raise ValueError(
                f"observations of {describe_space(space)} are whole numbers (the state's "
                f"index{kind}), got {x.ravel()[:8].tolist()} (dtype {x.dtype.name})."
            )
        bad = (x < 0) | (x >= high)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"observation {x[where].item()} at index {where} is outside "
                f"{describe_space(space)}: each must be in 0..n-1{kind}; pass the state's "
                "index, not a one-hot vector."
            )
        return True


def load_policies(path: str | os.PathLike) -> list[Policy]:
    """Every seed's `Policy` in a policy file or run directory (in the run's seed order)."""
    file = _policy_path(path)
    header, weights = read_policy_file(file)
    return [Policy(header, weights, s, path=file) for s in header["seeds"]]


def _policy_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise PolicyFileError(
            f"{str(p)!r} does not exist; pass a run directory written by `bellmax train` or a "
            f"{POLICY_FILE} file."
        )
    if not p.is_dir():
        return p
    file = p / POLICY_FILE
    if not file.exists():
        record = p / RUN_JSON
        if record.exists():
            try:
                algo = json.loads(record.read_text(encoding="utf-8")).get("algo") or "ALGO"
            except (OSError, ValueError, AttributeError):
                algo = "ALGO"
            raise PolicyFileError(
                f"{str(p)!r} holds a run with no {POLICY_FILE}: it stopped before its first "
                "checkpoint, or an older bellmax wrote it; write it with `bellmax train "
                f"{algo} --out {p} --resume` (a finished run is not trained further)."
            )
        raise PolicyFileError(
            f"{str(p)!r} holds no bellmax run (no {POLICY_FILE}); pass the --out DIR of a "
            "`bellmax train` run."
        )
    return file


def load_policy(path: str | os.PathLike, *, seed: int | None = None, key_seed: int = 0) -> Policy:
    """Load a trained policy to act with.

    Args:
      path: a run directory written by `bellmax train` (or `bellmax.train.driver.train(...,
        out_dir=DIR)`), or a policy file (`DIR/policy.msgpack`). A run's policy file holds
        the policies of its last checkpoint (a kill in the instant between writing the two
        leaves it one checkpoint behind until the run resumes; `bellmax evaluate` notices).
      seed: which training seed's policy (default: the best by the run's final evaluation
        if it recorded one, ties to the first; else the first seed).
      key_seed: seeds the key stream of `predict(obs, deterministic=False)`.

    Returns:
      A `Policy`: `predict(obs)` from NumPy, `act(key, obs)` in JAX.

    Raises:
      PolicyFileError: no policy at `path`, or a damaged or other-version policy file (the
        message names it and the fix). ValueError: `seed` is not one of the run's seeds.
    """
    file = _policy_path(path)
    header, weights = read_policy_file(file)
    seeds = [int(s) for s in header["seeds"]]
    if seed is None:
        returns = (header.get("run") or {}).get("eval_return_per_seed")
        if isinstance(returns, list) and len(returns) == len(seeds):
            seed = seeds[int(np.argmax(np.asarray(returns, np.float64)))]
        else:
            seed = seeds[0]
    elif isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int (one of {seeds}), got {seed!r}.")
    return Policy(header, weights, int(seed), path=file, key_seed=key_seed)
