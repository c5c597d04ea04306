"""Imitation loops: behaviour cloning, DAgger and noise-injected demonstrations (DART, three
cameras), one host-side loop with the differences as settings.

Every round rolls out a behaviour policy in the environment, has the expert label states,
adds them to the aggregated dataset, refits the learner (`bellmax.imitation.bc.fit`, continuing
from the last round's parameters, or from scratch on the aggregate with `retrain=True`) and
evaluates it (greedy, `bellmax.deep.evaluate`):

- `bc`: the expert acts; its demonstrations are the labels (Pomerleau 1989).
- `dagger`: the mixture `beta_i expert + (1 - beta_i) learner` acts, with `beta_i = beta_decay
  ** i` (round 0 is the expert's); the learner's visited states are labelled (Ross, Gordon &
  Bagnell 2011, algorithm 3.1). A stateless expert labels `labels_per_round` states drawn at
  random from those visited; one with memory (MPC) shadows every step and labels all of them.
- `dart`: the expert acts with injected noise (Gaussian of std `noise` times half the action
  range; a uniformly random action with probability `noise` for discrete actions) and its
  clean action is the label (Laskey, Lee, Fox, Dragan & Goldberg 2017, "DART").
- `cameras=K` (any algorithm): every labelled visited state is also recorded as K perturbed
  copies (observation plus Gaussian noise of std `camera_noise * obs_scale`), each labelled
  with the expert's corrective action there: the side cameras of Bojarski et al. 2016,
  generalised from steering to any expert.

The expert is called only to label states (and, optionally, to measure its own return:
`expert_return`); every labelled observation counts against the `labels` budget. A failing
expert (`ExpertError`) stops the run with the labels gathered so far kept (saved to
`dataset_path` after every labelling call when it is given).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_bool, check_choice, check_int, check_number, check_seed
from bellmax.core.display import summary_repr
from bellmax.core.errors import DivergenceError
from bellmax.envs import spaces
from bellmax.imitation import bc
from bellmax.imitation.dataset import Dataset, save_dataset
from bellmax.imitation.experts import as_expert, label

__all__ = [
    "ALGORITHMS",
    "ImitationConfig",
    "ImitationResult",
    "RoundRecord",
    "expert_return",
    "imitate",
    "make_rollout_env",
]

ALGORITHMS = ("bc", "dagger", "dart")


@dataclasses.dataclass(frozen=True)
class ImitationConfig:
    """One imitation run: the algorithm, the label budget, rollouts and the learner."""

    algorithm: Literal["bc", "dagger", "dart"] = "dagger"
    """Behaviour cloning, DAgger, or DART (noise-injected expert demonstrations)."""
    labels: int = 500
    """Label budget: expert-labelled observations at most (perturbed copies included)."""
    rounds: int = 10
    """Rounds at most (collect, label, refit, evaluate)."""
    labels_per_round: int = 50
    """Labels per round (a stateful expert labels every step of `steps_per_round`)."""
    steps_per_round: int = 500
    """Environment steps rolled out per round (all environments together)."""
    beta_decay: float = 0.0
    """DAgger: the expert acts with probability `beta_decay ** round` (round 0: always)."""
    noise: float = 0.0
    """DART: the expert's injected noise (std in half action ranges; for discrete actions
    the probability of a random action)."""
    cameras: int = 0
    """Perturbed copies of every labelled visited state (the three cameras; 0: off)."""
    camera_noise: float = 0.1
    """Std of the perturbation, in units of `obs_scale`."""
    num_envs: int = 1
    """Environments rolled out in parallel."""
    eval_episodes: int = 5
    """Greedy evaluation episodes after each round."""
    target_return: float | None = None
    """Stop once an evaluation reaches this return (None: use every round or the budget)."""
    retrain: bool = False
    """Refit the learner from its initial parameters each round, on the whole aggregated
    dataset with the input standardised by all of it (Ross et al. 2011's "train on the
    aggregate"); False continues from the last round's fit (standardised by round 0's)."""
    bc: bc.BCConfig = dataclasses.field(default_factory=bc.BCConfig)
    """The learner's network and optimiser."""

    def __post_init__(self):
        owner = "ImitationConfig"
        check_choice(self.algorithm, "algorithm", ALGORITHMS, owner=owner)
        if isinstance(self.labels, int) and not isinstance(self.labels, bool) and self.labels < 1:
            raise ValueError(
                f"{owner}.labels (the label budget) must be at least 1, got {self.labels}: "
                "imitation learns from the expert's labels; give e.g. --labels 500."
            )
        check_int(self.labels, "labels", owner=owner, low=1)
        check_int(self.rounds, "rounds", owner=owner, low=1)
        check_int(self.labels_per_round, "labels_per_round", owner=owner, low=1)
        check_int(self.steps_per_round, "steps_per_round", owner=owner, low=1)
        check_number(self.beta_decay, "beta_decay", owner=owner, low=0, high=1)
        check_number(self.noise, "noise", owner=owner, low=0)
        check_int(self.cameras, "cameras", owner=owner, low=0)
        check_number(self.camera_noise, "camera_noise", owner=owner, low=0)
        check_int(self.num_envs, "num_envs", owner=owner, low=1)
        check_int(self.eval_episodes, "eval_episodes", owner=owner, low=1)
        if self.target_return is not None:
            check_number(self.target_return, "target_return", owner=owner)
        check_bool(self.retrain, "retrain", owner=owner)
        if not isinstance(self.bc, bc.BCConfig):
            raise TypeError(f"{owner}.bc must be a BCConfig, got {type(self.bc).__name__}.")

    def beta(self, round_: int) -> float:
        """The probability that the expert acts in round `round_`."""
        if self.algorithm in ("bc", "dart"):
            return 1.0
        return float(self.beta_decay**round_) if round_ > 0 else 1.0


@dataclasses.dataclass(frozen=True)
class RoundRecord:
    """What one round did."""

    round: int
    """Round index (0 first)."""
    labels: int
    """Labels so far (after this round)."""
    eval_return: float
    """The learner's mean greedy return after this round's fit."""
    loss: float
    """Last minibatch loss of the fit."""
    seconds: float
    """Wall time so far."""


@dataclasses.dataclass(frozen=True)
class ImitationResult:
    """A finished imitation run."""

    __repr__ = summary_repr

    params: Any
    """The learner's parameters (`bellmax.imitation.bc.act`, `write_policy`)."""
    dataset: Dataset
    """Every label gathered."""
    rounds: tuple[RoundRecord, ...]
    """One record per round."""
    seconds: float
    """Wall time of the whole run (compilation included)."""
    observation_space: spaces.Space
    """The environment's observation space."""
    action_space: spaces.Space
    """The environment's action space."""

    @property
    def labels_used(self) -> int:
        """Labels gathered."""
        return len(self.dataset)

    @property
    def final_eval_return(self) -> float:
        """The last round's evaluation return."""
        return self.rounds[-1].eval_return

    def labels_to_reach(self, target: float) -> int | None:
        """Labels used when an evaluation first reached `target` (None if none did)."""
        for r in self.rounds:
            if r.eval_return >= target:
                return r.labels
        return None


def make_rollout_env(env_id: str, *, num_envs: int = 1, seed: int = 0) -> Any:
    """A host vector environment for `env_id` (bellmax ids: bellmax's own environment,
    through the Gymnasium bridge; others: Gymnasium's)."""
    from bellmax.envs import gymnasium as gym_bridge
    from bellmax.envs import registry

    name = f"bellmax/{env_id}" if registry.is_registered(env_id) else env_id
    venv = gym_bridge.make_host_vector_env(name, num_envs=num_envs, seed=seed)
    venv.env_id = env_id
    return venv


def _noisy(a: np.ndarray, space: spaces.Space, noise: float, rng: np.random.Generator):
    if noise <= 0:
        return a
    if isinstance(space, spaces.Discrete):
        flip = rng.random(a.shape) < noise
        return np.where(flip, rng.integers(0, space.n, a.shape), a).astype(a.dtype)
    low = np.asarray(space.low, np.float32)
    high = np.asarray(space.high, np.float32)
    out = a + noise * 0.5 * (high - low) * rng.standard_normal(a.shape).astype(np.float32)
    return np.clip(out, low, high).astype(np.float32)


class _Labeller:
    """The expert, the dataset and the budget: every label passes through here."""

    def __init__(self, expert, space, config, data, dataset_path, meta):
        self.expert = expert
        self.space = space
        self.config = config
        self.data = data
        self.path = dataset_path
        self.meta = meta
        self.stateful = bool(getattr(expert, "stateful", False))
        self.cache: dict[bytes, np.ndarray] = {}  # a stateless expert is asked once per state

    @property
    def left(self) -> int:
        return self.config.labels - len(self.data)

    def _save(self) -> None:
        if self.path is not None:
            save_dataset(self.path, self.data, **self.meta)

    def add(self, obs, actions, given, round_, source=0) -> None:
        self.data = self.data.append(obs[given], actions[given], round_=round_, source=source)
        self._save()

    def fresh(self, obs: np.ndarray) -> np.ndarray:
        """The distinct rows of `obs` that have no label yet."""
        seen: set[bytes] = set()
        keep = []
        for i, o in enumerate(obs):
            k = o.tobytes()
            if k not in self.cache and k not in seen:
                seen.add(k)
                keep.append(i)
        return obs[np.asarray(keep, np.int64)]

    def __call__(self, obs: np.ndarray, round_: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels of `obs` and whether each has one; a stateless expert is asked only about
        states it has not labelled (only those count)."""
        if self.stateful:
            a, given = label(self.expert, obs, self.space)
            self.add(obs, a, given, round_)
            return a, given
        new = self.fresh(obs)
        if len(new):
            a_new, g_new = label(self.expert, new, self.space)
            self.add(new, a_new, g_new, round_)
            for o, a, g in zip(new, a_new, g_new, strict=True):
                if g:
                    self.cache[o.tobytes()] = a
        shape = (len(obs), *self.data.actions.shape[1:])
        a = np.zeros(shape, self.data.actions.dtype)
        given = np.zeros(len(obs), bool)
        for i, o in enumerate(obs):
            hit = self.cache.get(o.tobytes())
            if hit is not None:
                a[i], given[i] = hit, True
        return a, given

    def cameras(self, obs: np.ndarray, rows: np.ndarray, round_: int, rng) -> None:
        """K perturbed copies of `obs` (the visited states of rows `rows`), labelled."""
        k = self.config.cameras
        if k == 0 or len(obs) == 0 or self.left <= 0:
            return
        reps = np.repeat(obs, k, axis=0)[: self.left]
        rep_rows = np.repeat(rows, k)[: len(reps)]
        scale = np.asarray(getattr(self, "obs_scale", 1.0), np.float32)
        noisy = reps + self.config.camera_noise * scale * rng.standard_normal(reps.shape)
        noisy = noisy.astype(reps.dtype)
        peek = getattr(self.expert, "peek", None)
        if getattr(self.expert, "stateful", False) and peek is not None:
            expert = _Peek(self.expert, rep_rows)
        else:
            expert = self.expert
        a, given = label(expert, noisy, self.space)
        self.add(noisy, a, given, round_, source=1)


class _Peek:
    stateful = False

    def __init__(self, expert, rows):
        self.expert, self.rows = expert, rows
        self.name = getattr(expert, "name", "expert")

    def __call__(self, obs):
        return self.expert.peek(obs, self.rows)


def _rollout(venv, learner, lab: _Labeller, config, round_, rng, state) -> None:
    """One round's rollout and labels (`state["obs"]` carries the env's observations)."""
    expert, space = lab.expert, lab.space
    stateful = bool(getattr(expert, "stateful", False))
    beta = config.beta(round_)
    noise = config.noise if config.algorithm == "dart" else 0.0
    quota = min(config.labels_per_round, lab.left)
    if stateful:
        quota = lab.left
    n = venv.num_envs
    obs = state["obs"]
    start = len(lab.data)
    candidates: list[np.ndarray] = []
    for _ in range(max(1, config.steps_per_round // n)):
        used = len(lab.data) - start
        if used >= quota or lab.left <= 0:
            break
        by_expert = rng.random(n) < beta
        action = np.zeros((n, *space.shape), np.int32 if _discrete(space) else np.float32)
        if stateful:
            take = min(n, quota - used, lab.left)
            a_exp, given = (
                lab(obs[:take], round_) if take == n else _partial(lab, obs, take, round_)
            )
            lab.cameras(obs[:take][given[:take]], np.flatnonzero(given[:take]), round_, rng)
        elif by_expert.any():
            rows = np.flatnonzero(by_expert)[: max(0, min(quota - used, lab.left))]
            a_exp = np.zeros_like(action)
            acted = rows[:0]
            if len(rows):
                a_rows, given = lab(obs[rows], round_)
                a_exp[rows] = a_rows
                lab.cameras(obs[rows][given], rows[given], round_, rng)
                acted = rows[given]  # where the expert abstained, the learner acts
            by_expert[:] = False
            by_expert[acted] = True
        if (~by_expert).any():
            learned = learner(obs)
            action[~by_expert] = learned[~by_expert]
            if not stateful:
                candidates.append(obs[~by_expert])
        if by_expert.any():
            action[by_expert] = _noisy(a_exp[by_expert], space, noise, rng)
        obs, _, term, trunc, _ = venv.step(action)
        done = np.asarray(term | trunc)
        if stateful and done.any():
            expert.reset(done)
    state["obs"] = obs
    if not stateful and candidates:
        pool = lab.fresh(np.concatenate(candidates))
        # each state picked brings its camera copies: the round's labels stay the quota's
        # (rounded up to whole states, as where the expert acts)
        per = 1 + config.cameras
        k = min(-(-(quota - (len(lab.data) - start)) // per), lab.left, len(pool))
        if k > 0:
            pick = rng.choice(len(pool), size=k, replace=False)
            _, given = lab(pool[pick], round_)
            lab.cameras(pool[pick][given], np.zeros(int(given.sum()), np.int64), round_, rng)


def _partial(lab, obs, take, round_):
    """A stateful expert near the end of the budget: it still sees every row (its memory
    needs the step) but only the first `take` labels are kept and counted."""
    a, given = label(lab.expert, obs, lab.space)
    keep = given.copy()
    keep[take:] = False
    lab.add(obs, a, keep, round_)
    return a, keep


def _discrete(space) -> bool:
    return isinstance(space, spaces.Discrete)


def _greedy_act_fn(config: bc.BCConfig, obs_space, action_space):
    return _greedy_act_fn_cached(config, bc._spec(obs_space), bc._spec(action_space))


@functools.lru_cache(maxsize=32)
def _greedy_act_fn_cached(config: bc.BCConfig, obs_spec: tuple, act_spec: tuple):
    """One function per (learner, spaces): the evaluation, jitted with it as a static
    argument, compiles once for every run that shares them."""

    def act_fn(params, obs, key):
        del key
        return bc._act(params, obs, config, obs_spec, act_spec)

    return act_fn


@functools.lru_cache(maxsize=8)
def _eval_env(env_id: str, num_envs: int) -> Any:
    """The evaluation's vector env, one per (id, size), so that runs after the first reuse
    the compiled evaluation. They carry nothing between evaluations: bellmax's JAX envs
    hold no state, and a Gymnasium env is reseeded from the evaluation's key at its reset."""
    from bellmax.envs.vector import make_vector_env

    return make_vector_env(env_id, num_envs=num_envs)


def _check_expert_spaces(expert: Any, venv: Any, env_id: str) -> None:
    """A trained policy as the expert must read and write the env's spaces (checked before any
    label, so the mismatch is named instead of failing inside the first labelling call)."""
    policy = getattr(expert, "policy", None)
    if policy is None or not hasattr(policy, "observation_space"):
        return
    from bellmax.policy import space_mismatch

    diff = space_mismatch(policy, venv, str(env_id), where=f"the expert {expert.name}")
    if diff is not None:
        raise ValueError(
            f"the expert's policy does not fit {env_id}: {diff}; give the env it was trained "
            "on (--env), or an expert trained on this one."
        )


def imitate(
    env_id: str,
    expert: Any,
    config: ImitationConfig,
    *,
    seed: int = 0,
    dataset_path: Any = None,
    obs_scale: Any = 1.0,
    make_env: Callable[..., Any] | None = None,
    evaluate_fn: Callable[[Any], float] | None = None,
    on_round: Callable[[RoundRecord], None] | None = None,
    meta: dict[str, str] | None = None,
) -> ImitationResult:
    """Run behaviour cloning, DAgger or DART (module docstring).

    Args:
      env_id: a bellmax or Gymnasium id (`"gymnasium:CartPole-v1"`, `"CartPoleSwingUp-v0"`).
      expert: an expert (`bellmax.imitation.experts`) or any `obs -> action` callable.
      config: the run's settings.
      seed: seeds the learner, the rollouts and the evaluations.
      dataset_path: write the dataset here (`.npz`) after every labelling call.
      obs_scale: per-dimension scale of the three-cameras perturbation.
      make_env: `(num_envs=, seed=) -> host vector env` for rollouts (default
        `make_rollout_env(env_id)`); a game against an opponent, say.
      evaluate_fn: `params -> score`, the round's evaluation (default: the mean greedy
        return of `eval_episodes` episodes of `env_id`, `bellmax.deep.evaluate`).
      on_round: called with each `RoundRecord` as it is made (progress).
      meta: strings stored with the dataset.

    Returns:
      `ImitationResult`.

    Raises:
      ExpertError: the expert failed; the labels so far stay in `dataset_path`.
      DivergenceError: a round's fit loss or evaluation return is NaN or inf (the
        environment's observations or reward went non-finite); the labels so far stay in
        `dataset_path`.
    """
    from bellmax.deep.evaluate import evaluate

    if not isinstance(config, ImitationConfig):
        raise TypeError(f"config must be an ImitationConfig, got {type(config).__name__}.")
    seed = check_seed(seed, "seed")
    t0 = time.perf_counter()
    maker = make_env or functools.partial(make_rollout_env, env_id)
    venv = maker(num_envs=config.num_envs, seed=seed)
    try:
        obs_space, action_space = venv.observation_space, venv.action_space
        expert = as_expert(expert)
        _check_expert_spaces(expert, venv, env_id)
        if hasattr(expert, "reset"):
            expert.reset()
        data = Dataset.empty(
            tuple(obs_space.shape), tuple(action_space.shape), _discrete(action_space)
        )
        lab = _Labeller(expert, action_space, config, data, dataset_path, dict(meta or {}))
        lab.obs_scale = obs_scale
        key = jax.random.key(seed)
        key, k_init = jax.random.split(key)
        state = fresh = bc.init_bc(k_init, config.bc, obs_space, action_space)
        capacity = config.labels
        obs_spec, act_spec = bc._spec(obs_space), bc._spec(action_space)
        act_fn = _greedy_act_fn(config.bc, obs_space, action_space)
        if evaluate_fn is None:
            evalv = _eval_env(env_id, config.eval_episodes)

            def evaluate_fn(params, k):
                res = evaluate(act_fn, params, evalv, k, episodes=config.eval_episodes)
                return float(res.mean_return)

        else:
            user_fn = evaluate_fn

            def evaluate_fn(params, k):
                return float(user_fn(params))

        def learner(o):
            return np.asarray(
                bc._act_jit(state.params, jnp.asarray(o), config.bc, obs_spec, act_spec)
            )

        rng = np.random.default_rng(seed)
        roll = {"obs": venv.reset(seed=seed)}
        records: list[RoundRecord] = []
        for r in range(config.rounds):
            if lab.left <= 0:
                break
            _rollout(venv, learner, lab, config, r, rng, roll)
            if len(lab.data) == 0:
                continue
            n = len(lab.data)
            pad = capacity - n
            obs_arr = np.concatenate(
                [lab.data.obs, np.zeros((pad, *lab.data.obs.shape[1:]), lab.data.obs.dtype)]
            )
            act_arr = np.concatenate(
                [
                    lab.data.actions,
                    np.zeros((pad, *lab.data.actions.shape[1:]), lab.data.actions.dtype),
                ]
            )
            key, k_fit, k_eval = jax.random.split(key, 3)
            if config.retrain:  # from scratch on the aggregate, standardised by all of it
                state = bc.set_normalization(fresh, lab.data.obs, obs_space)
            elif not records:  # the input standardisation, from the first round's labels
                state = bc.set_normalization(state, lab.data.obs, obs_space)
            state, loss = bc.fit(
                state, k_fit, obs_arr, act_arr, n, config.bc, obs_space, action_space
            )
            if not np.isfinite(float(loss)):
                raise DivergenceError(
                    f"round {r}: the learner's fit loss is {float(loss)} (NaN or inf): the "
                    f"labelled observations or actions of {env_id!r} hold NaN or inf (check the "
                    "environment's observations and the expert's actions), or the fit diverged "
                    f"(from Python: lower BCConfig.learning_rate, now {config.bc.learning_rate})."
                )
            score = evaluate_fn(state.params, k_eval)
            if not np.isfinite(score):
                raise DivergenceError(
                    f"round {r}: the learner's evaluation return is {score} (NaN or inf): "
                    f"the environment {env_id!r} returned a NaN or inf reward. Check its "
                    "reward: it must stay finite."
                )
            rec = RoundRecord(
                round=r,
                labels=n,
                eval_return=score,
                loss=float(loss),
                seconds=time.perf_counter() - t0,
            )
            records.append(rec)
            if on_round is not None:
                on_round(rec)
            if config.target_return is not None and rec.eval_return >= config.target_return:
                break
    finally:
        venv.close()
    if not records:
        raise RuntimeError("no round gathered a label; raise --labels or --steps-per-round.")
    return ImitationResult(
        params=state.params,
        dataset=lab.data,
        rounds=tuple(records),
        seconds=time.perf_counter() - t0,
        observation_space=obs_space,
        action_space=action_space,
    )


def expert_return(
    env_id: str,
    expert: Any,
    *,
    episodes: int = 5,
    seed: int = 0,
    make_env: Callable[..., Any] | None = None,
) -> float:
    """The expert's own mean return over `episodes` episodes (a separate, optional step: these
    calls are not labels)."""
    episodes = check_int(episodes, "episodes", low=1)
    maker = make_env or functools.partial(make_rollout_env, env_id)
    venv = maker(num_envs=episodes, seed=seed + 1)
    expert = as_expert(expert)
    try:
        if hasattr(expert, "reset"):
            expert.reset()
        obs = venv.reset(seed=seed + 1)
        finished = np.zeros(episodes, bool)
        returns = np.zeros(episodes)
        for _ in range(1_000_000):
            a, _ = label(expert, obs, venv.action_space)
            obs, _, term, trunc, info = venv.step(a)
            done = np.asarray(term | trunc)
            new = done & ~finished
            returns[new] = info["episode_return"][new]
            finished |= done
            if finished.all():
                break
            if getattr(expert, "stateful", False) and done.any():
                expert.reset(done)
    finally:
        venv.close()
    return float(returns.mean())
