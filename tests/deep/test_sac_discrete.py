"""Tests of discrete-action SAC (bellmax.deep.sac on a `Discrete` action space; Christodoulou
2019): the soft target, actor and temperature losses as exact expectations by hand, the critic
step against the target networks, the temperature driving the exact entropy to its target,
learning CartPole-v1, the policy file, errors.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax import load_policy
from bellmax.core.types import Transition
from bellmax.deep import off_policy, sac, td3
from bellmax.envs.vector import make_vector_env
from bellmax.train import driver

TINY = sac.Config(total_timesteps=600, learning_starts=64, batch_size=16, hidden_sizes=(16, 16))


@pytest.fixture(scope="module")
def venv():
    return make_vector_env("CartPole-v1", num_envs=1)


@pytest.fixture(scope="module")
def tiny(venv):
    """A fresh TINY training state on CartPole-v1 (one compile shared by the tests below)."""
    return jax.jit(sac.init, static_argnums=(1, 2))(jax.random.key(1), TINY, venv)


# ------------------------------------------------------------------- the losses by hand
P = np.array([[0.25, 0.75], [0.5, 0.5]])
Q1 = np.array([[1.0, 3.0], [2.0, 0.0]])
Q2 = np.array([[2.0, 2.0], [1.0, 4.0]])  # min(Q1, Q2) = [[1, 2], [1, 0]]
H = -np.sum(P * np.log(P), axis=1)  # exact entropies [0.5623, log 2]


@pytest.mark.parametrize("jit", [False, True])
def test_discrete_soft_target_actor_and_temperature_losses_by_hand(jit):
    f = jax.jit if jit else (lambda g: g)
    logp = jnp.log(jnp.asarray(P, jnp.float32))
    alpha = 0.5
    # V(s) = sum_a pi(a|s) (min Q(s, a) - alpha log pi(a|s)) = E_pi[min Q] + alpha H(pi):
    # state 0: 0.25 * 1 + 0.75 * 2 + 0.5 * 0.56234 = 2.03117; state 1: 0.5 + 0.5 log 2.
    v = np.array([1.75 + 0.5 * H[0], 0.5 + 0.5 * math.log(2.0)])
    np.testing.assert_allclose(v, [2.031168, 0.846574], rtol=1e-6)
    got = f(sac.discrete_soft_value)(Q1, Q2, logp, alpha)
    np.testing.assert_allclose(got, v, rtol=1e-6)
    # y = r + discount * V(s'): the second step terminated (discount 0).
    y = f(sac.discrete_soft_td_target)(
        jnp.array([1.0, -1.0]), jnp.array([0.9, 0.0]), Q1, Q2, logp, alpha
    )
    np.testing.assert_allclose(y, [1.0 + 0.9 * v[0], -1.0], rtol=1e-6)
    # Actor: mean_s sum_a pi (alpha log pi - min Q) = -mean(V).
    a_loss = f(sac.discrete_actor_loss)(Q1, Q2, logp, alpha)
    np.testing.assert_allclose(a_loss, -(v[0] + v[1]) / 2, rtol=1e-6)
    # A flipped entropy sign would give E_pi[min Q] - alpha H instead: different values.
    assert abs(float(a_loss) - (-np.mean([1.75 - 0.5 * H[0], 0.5 - 0.5 * math.log(2.0)]))) > 0.5
    # Temperature, with each state's exact sum_a pi log pi = -H as its log-probability:
    # -log(0.5) * mean(-H + 0.5) = 0.69315 * -0.12774; the gradient in log alpha is
    # -mean(-H + 0.5) = +0.12774 > 0: the entropy (0.628) is above the target 0.5, so a
    # descent step lowers the temperature.
    t_loss, grad = f(jax.value_and_grad(sac.temperature_loss))(
        jnp.log(0.5), jnp.asarray(-H, jnp.float32), 0.5
    )
    np.testing.assert_allclose(t_loss, -math.log(0.5) * np.mean(-H + 0.5), rtol=1e-5)
    np.testing.assert_allclose(grad, -np.mean(-H + 0.5), rtol=1e-5)
    assert float(grad) > 0


def test_actor_step_descends_the_exact_expectation(tiny):
    # actor_temperature_step(discrete=True) against a frozen q_fn: its loss and entropy are
    # the exact sums over actions of the actor's own distribution (no sampling).
    learner = tiny.learner
    x = jax.random.normal(jax.random.key(0), (8, 4))
    q = jnp.array([1.0, -1.0])

    def q_fn(x):
        q1 = x[:, :2] + q
        return q1, q1 + 0.5

    log_alpha = jnp.log(0.3)
    step = jax.jit(lambda *args: sac.actor_temperature_step(*args, q_fn, TINY, 2, discrete=True))
    out = step(learner.actor, learner.actor_opt, log_alpha, learner.alpha_opt, x, jax.random.key(1))
    actor = sac.CategoricalActor(2, TINY.hidden_sizes, TINY.activation)
    logp = np.asarray(actor.apply(learner.actor, x).log_probs(), np.float64)
    p = np.exp(logp)
    qx = np.asarray(x[:, :2] + q, np.float64)
    want = np.mean(np.sum(p * (0.3 * logp - qx), axis=1))
    scalars = out[4]
    np.testing.assert_allclose(scalars["actor_loss"], want, rtol=1e-5)
    np.testing.assert_allclose(scalars["entropy"], np.mean(-np.sum(p * logp, 1)), rtol=1e-5)
    # The initial policy is almost uniform (small output layer): its entropy is above the
    # default target (target_entropy_scale * log 2), so the temperature falls.
    assert float(scalars["entropy"]) > TINY.entropy_target(2, True)
    assert float(out[2]) < float(log_alpha)
    assert float(scalars["actor_grad_norm"]) > 0


def test_critic_step_regresses_on_the_exact_soft_value_of_the_target_networks(venv, tiny):
    # The target is the next state's exact soft value under the actor, from the *target*
    # critics (here the negated online ones, so that mixing them up shows); each critic is
    # regressed at the action taken.
    learner = tiny.learner.replace(
        target_critic=jax.tree.map(lambda p: -p, tiny.learner.critic), log_alpha=jnp.log(0.3)
    )
    obs, _ = make_vector_env("CartPole-v1", num_envs=3).reset(jax.random.key(2))
    batch = Transition(
        obs_tm1=obs,
        action_tm1=jnp.array([1, 0, 1], jnp.int32),
        reward_t=jnp.array([1.0, 1.0, 1.0]),
        obs_t=obs[::-1] * 1.5,
        terminated_t=jnp.array([False, False, True]),
        truncated_t=jnp.array([False, True, False]),
    )
    new, aux = jax.jit(sac.critic_step, static_argnums=(3, 4))(
        learner, batch, jax.random.key(3), TINY, venv
    )
    actor = sac.CategoricalActor(2, TINY.hidden_sizes, TINY.activation)
    critic = off_policy.TwinQValues(2, TINY.hidden_sizes, TINY.activation)
    logp_t = np.asarray(actor.apply(learner.actor, batch.obs_t).log_probs(), np.float64)
    q1_t, q2_t = (
        np.asarray(q, np.float64) for q in critic.apply(learner.target_critic, batch.obs_t)
    )
    v_t = np.sum(np.exp(logp_t) * (np.minimum(q1_t, q2_t) - 0.3 * logp_t), axis=1)
    y = 1.0 + 0.99 * np.array([1.0, 1.0, 0.0]) * v_t
    q1_all, q2_all = (np.asarray(q) for q in critic.apply(learner.critic, obs))
    a = np.array([1, 0, 1])
    q1, q2 = q1_all[np.arange(3), a], q2_all[np.arange(3), a]
    # TwinQValues given actions picks their values.
    q1_a, _ = critic.apply(learner.critic, obs, batch.action_tm1)
    np.testing.assert_array_equal(np.asarray(q1_a), q1)
    loss = 0.5 * (np.mean((q1 - y) ** 2) + np.mean((q2 - y) ** 2))
    np.testing.assert_allclose(aux["critic_loss"], loss, rtol=1e-5)
    np.testing.assert_allclose(aux["q_mean"], q1.mean(), rtol=1e-5)
    q1n, q2n = (np.asarray(q)[np.arange(3), a] for q in critic.apply(new.critic, obs))
    assert 0.5 * (np.mean((q1n - y) ** 2) + np.mean((q2n - y) ** 2)) < loss


@pytest.mark.parametrize("target", [0.2, 0.5])
def test_temperature_tuning_drives_the_exact_entropy_to_its_target(target, tiny):
    # A frozen critic preferring action 0 by 1 (Q = [1, 0, 0] per state, the twin 1 higher):
    # the best policy under temperature alpha is softmax(Q / alpha), whose entropy grows
    # with alpha from 0 to log 3. 600 actor + temperature steps on a fixed batch of 64
    # states, from alpha 1 (entropy ~1.0 > both targets), must bring the mean exact entropy
    # to the target and the temperature to rest.
    cfg = dataclasses.replace(TINY, learning_rate=1e-2, target_entropy=target)
    x = jax.random.normal(jax.random.key(0), (64, 4))
    actor = sac.CategoricalActor(3, cfg.hidden_sizes, cfg.activation)
    params = actor.init(jax.random.key(5), x)
    tx = off_policy.optimizer(cfg)
    log_alpha = jnp.zeros((), jnp.float32)

    def q_fn(x):
        q = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0]), (x.shape[0], 3))
        return q, q + 1.0

    def step(c, k):
        p, o, la, ao = c
        p, o, la, ao, aux = sac.actor_temperature_step(
            p, o, la, ao, x, k, q_fn, cfg, 3, discrete=True
        )
        return (p, o, la, ao), (aux["entropy"], jnp.exp(la))

    carry = (params, tx.init(params), log_alpha, tx.init(log_alpha))
    (params, *_), (entropy, alpha) = jax.jit(
        lambda c: jax.lax.scan(step, c, jax.random.split(jax.random.key(1), 600))
    )(carry)
    final = float(jnp.mean(actor.apply(params, x).entropy()))
    print(
        f"\ndiscrete SAC temperature: target {target}, entropy {final:.4f}, alpha {alpha[-1]:.4f}"
    )
    assert float(entropy[0]) > 1.0
    assert abs(float(jnp.mean(entropy[-50:])) - target) < 0.02
    assert abs(final - target) < 0.03
    tail = np.asarray(alpha[-100:])
    assert float(alpha[-1]) < 1.0 and tail.max() / tail.min() < 1.2


# ---------------------------------------------------------------------------- learning
# CartPole-v1 with the SAC defaults (the Pendulum settings: lr 1e-3, batch 256, 1000 random
# steps, [64, 64]) and the discrete default target entropy, 0.5 * log 2.
SOLVE = sac.Config(total_timesteps=10_000)
TARGET = 195.0  # CartPole-v0's "solved" bar; a fixed action lasts ~9 steps, random ones ~22


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Seeds 0 and 1 in one vmapped program until both greedy policies average >= TARGET over
    10 episodes (checked every 500 env steps), 1e4 steps at most; written to a run dir."""
    out = tmp_path_factory.mktemp("sac_cartpole") / "run"
    res = driver.train(
        sac, SOLVE, "CartPole-v1", seeds=(0, 1), out_dir=out, stop_return=TARGET,
        eval_episodes=10,
    )  # fmt: skip
    print(
        f"\ndiscrete SAC CartPole-v1 seeds (0, 1): solved (>= {TARGET}) at "
        f"{res.solved_at_steps} of {SOLVE.total_timesteps} steps, final eval "
        f"{res.eval_returns.mean(1).round(1)}; compile {res.compile_seconds:.1f}s, "
        f"train {res.seconds:.1f}s, eval {res.eval_seconds:.1f}s"
    )
    return out, res


def test_learns_cartpole_two_seeds_vmapped(run):
    # Shows that discrete SAC learns a state-dependent CartPole-v1 policy: both seeds'
    # greedy policies, trained in one vmapped program, average >= 195 over 10 episodes
    # within 1e4 env steps (verified by the evaluations during training), while the
    # temperature steers the exact policy entropy down from ~log 2 towards 0.5 * log 2.
    _, res = run
    at = res.solved_at_steps
    assert all(s is not None for s in at), f"not solved within {SOLVE.total_timesteps}: {at}"
    assert max(at) == res.env_steps <= SOLVE.total_timesteps
    last = int(np.argmax(at))
    assert float(np.mean(res.eval_returns[last])) >= TARGET
    m = res.metrics
    learning = m["learning"][0]
    assert np.all(np.isfinite(m["loss"])) and np.all(m["alpha"][:, -1] < 1.0)
    entropy = m["entropy"][:, learning]
    assert np.all(entropy[:, 0] > 0.68) and np.all(entropy[:, -1] < entropy[:, 0])
    # learning_rate and grad_norm are recorded per update.
    assert np.all(m["learning_rate"] == np.float32(SOLVE.learning_rate))
    assert np.all(m["grad_norm"][:, ~learning] == 0) and np.all(m["grad_norm"][:, learning] > 0)


def test_the_run_writes_a_categorical_policy_that_acts_as_sac_act(run, venv):
    out, res = run
    policy = load_policy(out)
    net = policy.header["network"]
    assert policy.algorithm == "sac" and net["kind"] == "categorical"
    assert net["output_size"] == 2 and net["hidden_sizes"] == list(SOLVE.hidden_sizes)
    obs = jax.random.uniform(jax.random.key(0), (64, 4), minval=-0.2, maxval=0.2)
    key = jax.random.key(7)
    for i, seed in enumerate(res.seeds):
        p = load_policy(out, seed=seed)
        params = jax.tree.map(lambda x, i=i: x[i], sac.policy_params(res.state))
        for det in (True, False):
            want = sac.act(params, obs, key, SOLVE, venv, deterministic=det)
            got = p.act(key, obs, deterministic=det)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert policy.predict(np.zeros(4, np.float32)).shape == ()


# ------------------------------------------------------------------------------ errors
def test_action_kind_selection_and_errors(venv, multidiscrete_env):
    assert TINY.action_kind(venv.action_space) == (True, 2)
    pendulum = make_vector_env("Pendulum-v1", num_envs=1)
    assert TINY.action_kind(pendulum.action_space) == (False, 1)
    forced = dataclasses.replace(TINY, actions="discrete")
    assert forced.action_kind(venv.action_space) == (True, 2)
    with pytest.raises(ValueError, match=r"actions='discrete' needs a Discrete action space"):
        sac.make_train(forced, "Pendulum-v1")
    with pytest.raises(ValueError, match=r"only \(as SAC Config\.actions='continuous'; set"):
        sac.make_train(dataclasses.replace(TINY, actions="continuous"), "CartPole-v1")
    with pytest.raises(ValueError, match=r"'SAC' supports .* \(or Discrete ones: discrete-act"):
        sac.make_train(TINY, multidiscrete_env)
    # TD3 stays continuous-only, and says what to use instead.
    with pytest.raises(
        ValueError, match=r"'TD3' supports continuous Box .* only; got Discrete\(2\).*or SAC with"
    ):
        td3.make_train(td3.Config(), "CartPole-v1")


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        ({"actions": "box"}, ValueError, "actions must be one of"),
        ({"target_entropy_scale": 1.0}, ValueError, "target_entropy_scale must be a number >= 0"),
        ({"target_entropy_scale": -0.1}, ValueError, "target_entropy_scale must be a number >= 0"),
    ],
)
def test_config_checks_the_discrete_fields(changes, error, match):
    with pytest.raises(error, match=rf"^SAC Config\.{match}"):
        dataclasses.replace(TINY, **changes)


def test_a_discrete_target_entropy_outside_0_log_n_is_refused(venv):
    assert TINY.entropy_target(2, True) == pytest.approx(0.5 * math.log(2))
    assert TINY.entropy_target(3, False) == -3.0
    for bad in (math.log(2), 0.9, -0.1):
        cfg = dataclasses.replace(TINY, target_entropy=bad)
        with pytest.raises(ValueError, match=rf"target_entropy={bad} cannot be reached.*log 2"):
            cfg.validate(venv)
        # the default it names is the default's value (0.5 log 2), not the value refused
        with pytest.raises(ValueError, match=r"the default, None, is .* log 2 = 0\.3466\)"):
            cfg.validate(venv)
        dataclasses.replace(cfg, autotune=False).validate(venv)  # unused: fine
    dataclasses.replace(TINY, target_entropy=0.0).validate(venv)
