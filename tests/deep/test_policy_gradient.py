"""The on-policy pieces A2C, REINFORCE and PPO share (`bellmax.deep.policy_gradient`), one by one.

Shown, against plain numpy or a hand derivation, on tiny inputs (no learning):
- `gae_targets` is GAE as `bellmax.core.returns` defines it: a terminated step bootstraps
  nothing, a truncated one bootstraps from `V(final_obs)` and stops the recursion, the
  rollout's last step bootstraps; lambda = 1 gives discounted Monte-Carlo returns plus that
  bootstrap, lambda = 0 the one-step TD targets (jitted and not).
- `pg_loss` is `-mean_w(log pi A) + vf_coef mean_w((V - G)^2) - ent_coef mean_w(H)` with the
  advantages normalised over the weighted batch; no gradient reaches the advantages, the value
  loss reaches only the critic and the policy loss only the actor.
- `learning_rate_schedule` falls linearly from `learning_rate` at the first update to
  `learning_rate / num_updates` at the last; `optimizer` applies it after clipping.
- `flatten_steps` and `episode_metrics` on hand-made batches.
- `network`, `act`, `init_state`, `rollout_and_bootstrap` fit the environment; `pg_update` is
  one clipped SGD step on `pg_loss` of the rollout with the targets it is given.
- `check_config`, `validate_pg_config` and `check_venv` name the field, the value and the fix.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bellmax.deep import a2c, reinforce
from bellmax.deep.networks import ActorCritic
from bellmax.deep.policy_gradient import (
    OnPolicyRun,
    act,
    check_config,
    check_venv,
    episode_metrics,
    flatten_steps,
    gae_targets,
    init_state,
    learning_rate_schedule,
    network,
    optimizer,
    pg_loss,
    pg_update,
    policy_params,
    rollout_and_bootstrap,
    validate_pg_config,
)
from bellmax.deep.rollout import Rollout
from bellmax.envs.vector import make_vector_env

# A tiny A2C config for the pieces that need a network and an environment: 2 envs x 5 steps,
# 4 updates in the run.
SMALL = a2c.Config(
    total_timesteps=40,
    num_envs=2,
    num_steps=5,
    hidden_sizes=(8,),
    optimizer="sgd",
    momentum=0.0,
    learning_rate=0.1,
    max_grad_norm=1e6,
    ent_coef=0.01,
)


def _rollout(reward, value, terminated, truncated, episode_return=None):
    """A `Rollout` holding the given `[T, N]` arrays (observations and actions zero)."""
    reward = jnp.asarray(reward, jnp.float32)
    zeros = jnp.zeros(reward.shape, jnp.float32)
    if episode_return is None:
        episode_return = jnp.full(reward.shape, jnp.nan, jnp.float32)
    return Rollout(
        obs=zeros[..., None],
        action=zeros.astype(jnp.int32),
        log_prob=zeros,
        value=jnp.asarray(value, jnp.float32),
        reward=reward,
        terminated=jnp.asarray(terminated, bool),
        truncated=jnp.asarray(truncated, bool),
        final_obs=zeros[..., None],
        episode_return=jnp.asarray(episode_return, jnp.float32),
    )


def _gae_config(gamma, lam):
    return dataclasses.replace(a2c.Config(), gamma=gamma, gae_lambda=lam)


def _both(fn, *static):
    """`fn` as written and jitted (`static` argument positions static)."""
    return [fn, jax.jit(fn, static_argnums=static)]


# ---------------------------------------------------------------------- gae_targets


def _numpy_gae(r, v, nv, term, trunc, gamma, lam):
    """GAE by a backward loop per environment (Schulman et al. 2016, eq. 16), float64.

    delta_t = r_t + gamma * (0 if terminated_t else V(final_obs_t)) - V(s_t); the recursion
    A_t = delta_t + gamma lam A_{t+1} continues only inside an episode (neither terminated nor
    truncated at t) and not past the rollout's last step.
    """
    T, N = r.shape
    adv = np.zeros((T, N))
    for n in range(N):
        a_next = 0.0
        for t in reversed(range(T)):
            bootstrap = 0.0 if term[t, n] else nv[t, n]
            delta = r[t, n] + gamma * bootstrap - v[t, n]
            goes_on = not (term[t, n] or trunc[t, n]) and t < T - 1
            a_next = delta + gamma * lam * (a_next if goes_on else 0.0)
            adv[t, n] = a_next
    return adv


# Episode ends of a 7-step, 3-env rollout: env 0 terminates at 2, env 1 is truncated at 1 and
# terminates at 4, env 2 is both terminated and truncated at 3 (terminated wins: no
# bootstrap) and truncated at 5.
TERM = np.zeros((7, 3), bool)
TRUNC = np.zeros((7, 3), bool)
TERM[2, 0] = TERM[4, 1] = TERM[3, 2] = True
TRUNC[1, 1] = TRUNC[3, 2] = TRUNC[5, 2] = True


def _random_rollout_data(seed=0):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(7, 3)).astype(np.float32)
    v = rng.normal(size=(7, 3)).astype(np.float32)
    nv = rng.normal(size=(7, 3)).astype(np.float32)
    return r, v, nv


@pytest.mark.parametrize("lam", [0.0, 0.7, 1.0])
def test_gae_targets_match_a_numpy_backward_loop(lam):
    r, v, nv = _random_rollout_data()
    ro = _rollout(r, v, TERM, TRUNC)
    config = _gae_config(0.9, lam)
    adv = _numpy_gae(r, v, nv, TERM, TRUNC, 0.9, lam)
    for fn in _both(gae_targets, 2):
        out = fn(ro, jnp.asarray(nv), config)
        np.testing.assert_allclose(out.advantages, adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out.returns, adv + v, rtol=1e-5, atol=1e-5)


def test_gae_targets_by_hand():
    # One env, T = 3, gamma = lambda = 0.5 (gamma lambda = 0.25), rewards 1, 2, 4, values
    # V(s_t) = 0, 0, 4 and next values 0, 4, 8 (consistent inside an episode: next_values[t]
    # = V(s_{t+1})).
    # - No episode end: delta = (1, 2 + 0.5*4 - 0 = 4, 4 + 0.5*8 - 4 = 4); A_2 = 4,
    #   A_1 = 4 + 0.25*4 = 5, A_0 = 1 + 0.25*5 = 2.25.
    # - Terminated at 1: delta_1 = 2 (no bootstrap), A_1 = 2 (no continuation),
    #   A_0 = 1 + 0.25*2 = 1.5, A_2 = 4.
    # - Truncated at 1 (V(final_obs_1) = 4): delta_1 = 2 + 0.5*4 = 4, A_1 = 4 (no
    #   continuation), A_0 = 1 + 0.25*4 = 2, A_2 = 4.
    # The returns are A + V.
    config = _gae_config(0.5, 0.5)
    r = [[1.0], [2.0], [4.0]]
    v = np.array([0.0, 0.0, 4.0])
    nv = jnp.array([[0.0], [4.0], [8.0]])
    none = np.zeros((3, 1), bool)
    at_1 = none.copy()
    at_1[1] = True
    cases = [
        (none, none, [2.25, 5.0, 4.0]),
        (at_1, none, [1.5, 2.0, 4.0]),
        (none, at_1, [2.0, 4.0, 4.0]),
    ]
    for term, trunc, expected in cases:
        for fn in _both(gae_targets, 2):
            out = fn(_rollout(r, v[:, None], term, trunc), nv, config)
            np.testing.assert_allclose(out.advantages[:, 0], expected, rtol=1e-6)
            np.testing.assert_allclose(out.returns[:, 0], np.add(expected, v), rtol=1e-6)


def _consistent_next_values(v, nv, term, trunc):
    """`next_values` as a real rollout has them: inside an episode the next observation is the
    next step's, so `next_values[t] = V(s_{t+1})`; at an episode end or the rollout's last step
    it is `V(final_obs_t)` (kept from `nv`)."""
    out = nv.copy()
    goes_on = ~(term | trunc)
    goes_on[-1] = False
    out[:-1][goes_on[:-1]] = v[1:][goes_on[:-1]]
    return out


def _numpy_bootstrapped_returns(r, nv, term, trunc, gamma):
    """Discounted Monte-Carlo returns within episodes, completed with `gamma V(final_obs)`
    where a time limit or the rollout's end cut the episode; nothing after a termination."""
    T, N = r.shape
    g = np.zeros((T, N))
    for n in range(N):
        g_next = 0.0
        for t in reversed(range(T)):
            if term[t, n]:
                tail = 0.0
            elif trunc[t, n] or t == T - 1:
                tail = nv[t, n]
            else:
                tail = g_next
            g_next = r[t, n] + gamma * tail
            g[t, n] = g_next
    return g


def test_gae_lambda_one_is_monte_carlo_returns_plus_bootstrap():
    r, v, nv = _random_rollout_data(1)
    nv = _consistent_next_values(v, nv, TERM, TRUNC)
    out = gae_targets(_rollout(r, v, TERM, TRUNC), jnp.asarray(nv), _gae_config(0.9, 1.0))
    expected = _numpy_bootstrapped_returns(r, nv, TERM, TRUNC, 0.9)
    np.testing.assert_allclose(out.returns, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.advantages, expected - v, rtol=1e-5, atol=1e-5)


def test_gae_lambda_zero_is_the_one_step_td_target():
    r, v, nv = _random_rollout_data(2)
    out = gae_targets(_rollout(r, v, TERM, TRUNC), jnp.asarray(nv), _gae_config(0.9, 0.0))
    td = r + 0.9 * np.where(TERM, 0.0, nv)  # G_t = r_t + gamma (1 - term_t) V(final_obs_t)
    np.testing.assert_allclose(out.returns, td, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.advantages, td - v, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- flatten, episode metrics


def test_flatten_steps_is_time_major():
    # x[t, n] = 10 t + n over T = 3 steps and N = 2 envs: the rows go env by env within a step,
    # step by step: 0, 1, 10, 11, 20, 21.
    config = dataclasses.replace(SMALL, num_steps=3, num_envs=2)
    x = 10 * jnp.arange(3)[:, None] + jnp.arange(2)[None, :]
    np.testing.assert_array_equal(flatten_steps(x, config), [0, 1, 10, 11, 20, 21])
    # trailing axes are kept: [3, 2, 4, 5] -> [6, 4, 5], row t * 2 + n is x[t, n]
    y = jnp.arange(3 * 2 * 4 * 5).reshape(3, 2, 4, 5)
    flat = flatten_steps(y, config)
    assert flat.shape == (6, 4, 5)
    np.testing.assert_array_equal(flat[2 * 2 + 1], y[2, 1])


def test_episode_metrics_count_the_episodes_that_ended():
    # T = 3 steps, N = 2 envs; NaN where no episode ended. Ended: (0, 1) with return 5,
    # (1, 0) with return 0 (it still counts), (2, 0) with 3, (2, 1) with -1:
    # 4 episodes, returns summing to 5 + 0 + 3 - 1 = 7. Update number 4 of a run with
    # 2 * 3 = 6 steps per update has taken 4 * 6 = 24 environment steps.
    nan = np.nan
    ep = [[nan, 5.0], [0.0, nan], [3.0, -1.0]]
    config = dataclasses.replace(SMALL, num_steps=3, num_envs=2)
    ro = _rollout(np.zeros((3, 2)), np.zeros((3, 2)), False, False, episode_return=ep)
    for fn in _both(episode_metrics, 2):
        m = fn(ro, jnp.asarray(4, jnp.int32), config)
        assert int(m["env_steps"]) == 24
        assert float(m["episode_return_sum"]) == 7.0
        assert int(m["episode_count"]) == 4 and m["episode_count"].dtype == jnp.int32
    # no episode ended: a sum of 0 over 0 episodes (not NaN)
    empty = _rollout(np.zeros((3, 2)), np.zeros((3, 2)), False, False)
    m = episode_metrics(empty, jnp.asarray(1), config)
    assert float(m["episode_return_sum"]) == 0.0 and int(m["episode_count"]) == 0


# ---------------------------------------------------------------------- learning rate, optimizer


def test_learning_rate_schedule_anneals_linearly_over_the_updates():
    # 320 steps / (4 envs * 8 steps) = 10 updates; the step size of update k (counted from 0)
    # is 3e-3 * (1 - k / 10): 3e-3 at the first, 3e-4 at the last (k = 9), 0 from k = 10 on.
    config = a2c.Config(total_timesteps=320, num_envs=4, num_steps=8, learning_rate=3e-3)
    assert config.num_updates == 10
    sched = learning_rate_schedule(config)
    values = [float(sched(k)) for k in (0, 1, 5, 9, 10, 20)]
    np.testing.assert_allclose(values, [3e-3, 2.7e-3, 1.5e-3, 3e-4, 0.0, 0.0], atol=1e-9)
    fixed = learning_rate_schedule(dataclasses.replace(config, anneal_lr=False))
    assert not callable(fixed) and fixed == 3e-3


def test_optimizer_clips_then_steps_with_the_schedule():
    # SGD without momentum, 10 updates, lr 0.5 annealed: update k moves by -0.5 (1 - k/10) g.
    # The gradient (3, 4) has norm 5; clipped to norm 1 it is (0.6, 0.8).
    config = dataclasses.replace(
        SMALL, total_timesteps=100, learning_rate=0.5, max_grad_norm=1.0, momentum=0.0
    )
    assert config.num_updates == 10
    tx = optimizer(config)
    params = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    grads = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}
    state = tx.init(params)
    for k in range(3):
        upd, state = tx.update(grads, state, params)
        scale = 0.5 * (1 - k / 10)
        np.testing.assert_allclose(upd["a"], [-scale * 0.6], rtol=1e-5)
        np.testing.assert_allclose(upd["b"], [-scale * 0.8], rtol=1e-5)
    # Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g) (eps = 1e-5), clipping or not
    adam = optimizer(dataclasses.replace(config, optimizer="adam", anneal_lr=False))
    upd, _ = adam.update(grads, adam.init(params), params)
    np.testing.assert_allclose([upd["a"][0], upd["b"][0]], [-0.5, -0.5], rtol=1e-4)


# ---------------------------------------------------------------------- pg_loss


def _loss_setup(discrete):
    """A separate-torso actor-critic, 6 inputs, and a batch with two left-out transitions."""
    key = jax.random.key(3)
    x = jax.random.normal(key, (6, 4))
    if discrete:
        net = ActorCritic(action_dim=3, discrete=True, hidden_sizes=(8,))
        action = jnp.array([0, 2, 1, 1, 0, 2])
    else:
        net = ActorCritic(action_dim=2, discrete=False, hidden_sizes=(8,), log_std_init=-0.5)
        action = jax.random.normal(jax.random.key(4), (6, 2))
    params = net.init(jax.random.key(5), x)
    # a policy head far from uniform (its init is 0.01-scaled): logits/means of order 1
    head = params["params"]["policy_head"]
    params["params"]["policy_head"] = {**head, "kernel": head["kernel"] * 200.0}
    batch = {
        "x": x,
        "action": action,
        "advantage": jnp.array([1.0, -2.0, 50.0, 0.5, 3.0, -40.0]),
        "target": jnp.array([0.5, 1.0, -1.0, 2.0, 0.0, 9.0]),
        "weight": jnp.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0]),
    }
    return net, params, batch


def _numpy_policy_terms(net, params, batch):
    """`log pi(a|s)`, `H[pi(s)]` and `V(s)` in float64 numpy from the network's outputs."""
    dist = net.apply(params, batch["x"], method="policy")
    value = np.asarray(net.apply(params, batch["x"], method="value"), np.float64)
    if net.discrete:
        logits = np.asarray(dist.logits, np.float64)
        z = logits - logits.max(-1, keepdims=True)
        logp_all = z - np.log(np.exp(z).sum(-1, keepdims=True))
        a = np.asarray(batch["action"])
        logp = logp_all[np.arange(len(a)), a]
        ent = -(np.exp(logp_all) * logp_all).sum(-1)
    else:
        mu = np.asarray(dist.mean, np.float64)
        log_std = np.broadcast_to(np.asarray(dist.log_std, np.float64), mu.shape)
        a = np.asarray(batch["action"], np.float64)
        # Gaussian log-density and entropy, summed over the action dimensions
        logp = (-0.5 * ((a - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(
            -1
        )
        ent = (log_std + 0.5 * (1 + np.log(2 * np.pi))).sum(-1)
    return logp, ent, value


def _numpy_pg_loss(logp, ent, value, batch, vf_coef, ent_coef, normalize):
    w = np.asarray(batch["weight"], np.float64)
    count = max(w.sum(), 1.0)
    mean = lambda u: (w * u).sum() / count  # noqa: E731
    adv = np.asarray(batch["advantage"], np.float64)
    if normalize:  # over the transitions that count (weight 1), population std
        mu = mean(adv)
        adv = (adv - mu) / (np.sqrt(mean((adv - mu) ** 2)) + 1e-8)
    policy = -mean(logp * adv)
    vloss = mean((value - np.asarray(batch["target"], np.float64)) ** 2)
    entropy = mean(ent)
    return policy + vf_coef * vloss - ent_coef * entropy, policy, vloss, entropy


@pytest.mark.parametrize("discrete", [True, False], ids=["categorical", "gaussian"])
@pytest.mark.parametrize("normalize", [True, False])
def test_pg_loss_matches_numpy(discrete, normalize):
    net, params, batch = _loss_setup(discrete)
    config = dataclasses.replace(SMALL, vf_coef=0.7, ent_coef=0.05, normalize_advantages=normalize)
    logp, ent, value = _numpy_policy_terms(net, params, batch)
    loss, policy, vloss, entropy = _numpy_pg_loss(logp, ent, value, batch, 0.7, 0.05, normalize)
    for fn in _both(pg_loss, 1, 3):
        total, aux = fn(params, net, batch, config)
        np.testing.assert_allclose(total, loss, rtol=1e-5)
        np.testing.assert_allclose(aux["loss"], loss, rtol=1e-5)
        np.testing.assert_allclose(aux["policy_loss"], policy, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(aux["value_loss"], vloss, rtol=1e-5)
        np.testing.assert_allclose(aux["entropy"], entropy, rtol=1e-5)


def test_pg_loss_leaves_out_weight_zero_transitions():
    # the left-out transitions (weights 0 at 2 and 5) may hold anything: the loss is the same,
    # the normalisation's mean and std included
    net, params, batch = _loss_setup(True)
    other = {
        **batch,
        "advantage": batch["advantage"].at[2].set(-1e4).at[5].set(0.0),
        "target": batch["target"].at[5].set(-300.0),
    }
    for normalize in (True, False):
        config = dataclasses.replace(SMALL, normalize_advantages=normalize)
        a, _ = pg_loss(params, net, batch, config)
        b, _ = pg_loss(params, net, other, config)
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # no transition counts: every term is a sum over nothing, divided by max(0, 1) = 1
    none = {**batch, "weight": jnp.zeros(6)}
    loss, aux = pg_loss(params, net, none, SMALL)
    assert float(loss) == 0.0 and float(aux["entropy"]) == 0.0


def test_one_counted_transition_keeps_its_advantage():
    # normalised over one transition, an advantage would be (A - A) / 1e-8 = 0 and the policy
    # gradient vanish: with one counted transition the advantage is used as it is, the same
    # loss as without normalisation
    net, params, batch = _loss_setup(True)
    one = {**batch, "weight": jnp.zeros(6).at[3].set(1.0)}
    on = dataclasses.replace(SMALL, normalize_advantages=True)
    off = dataclasses.replace(SMALL, normalize_advantages=False)
    np.testing.assert_allclose(pg_loss(params, net, one, on)[0], pg_loss(params, net, one, off)[0])
    assert abs(float(pg_loss(params, net, one, on)[1]["policy_loss"])) > 1e-3


def test_pg_loss_gradients_reach_what_they_should():
    net, params, batch = _loss_setup(True)
    config = dataclasses.replace(SMALL, vf_coef=0.7, ent_coef=0.0, normalize_advantages=True)

    # The advantages are stopped (data, not a function of the parameters): the loss's
    # gradient with respect to them is zero. The targets are not: d/dG of
    # vf_coef mean_w((V - G)^2) is -2 vf_coef w (V - G) / sum(w).
    def loss_of(adv, target):
        return pg_loss(params, net, {**batch, "advantage": adv, "target": target}, config)[0]

    g_adv, g_target = jax.grad(loss_of, argnums=(0, 1))(batch["advantage"], batch["target"])
    np.testing.assert_array_equal(g_adv, np.zeros(6))
    _, _, value = _numpy_policy_terms(net, params, batch)
    w = np.asarray(batch["weight"])
    expected = -2 * 0.7 * w * (value - np.asarray(batch["target"])) / w.sum()
    np.testing.assert_allclose(g_target, expected, rtol=1e-5, atol=1e-7)
    # The policy head's bias by hand: logits = h W + b, so d log pi(a|s) / db = onehot(a) - p
    # and, without the entropy term, dL/db = -sum_i w_i A_i (onehot(a_i) - p_i) / sum(w),
    # A the normalised advantages.
    grads = jax.grad(lambda p: pg_loss(p, net, batch, config)[0])(params)["params"]
    logits = np.asarray(net.apply(params, batch["x"], method="policy").logits, np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(3)[np.asarray(batch["action"])]
    adv = np.asarray(batch["advantage"], np.float64)
    mu = (w * adv).sum() / w.sum()
    adv = (adv - mu) / np.sqrt((w * (adv - mu) ** 2).sum() / w.sum())
    expected_b = -((w * adv)[:, None] * (onehot - p)).sum(0) / w.sum()
    np.testing.assert_allclose(grads["policy_head"]["bias"], expected_b, rtol=1e-4, atol=1e-7)


def _norm(tree):
    return float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(tree))))


def test_value_loss_reaches_only_the_critic_and_policy_loss_only_the_actor():
    # separate torsos (A2C's default): with vf_coef = 0 no gradient reaches the critic; with
    # zero advantages and no entropy bonus none reaches the actor
    net, params, batch = _loss_setup(True)
    actor = ("actor_torso", "policy_head")
    critic = ("critic_torso", "value_head")

    def grads(b, **changes):
        config = dataclasses.replace(SMALL, **changes)
        return jax.grad(lambda p: pg_loss(p, net, b, config)[0])(params)["params"]

    g = grads(batch, vf_coef=0.0, ent_coef=0.05)
    assert all(_norm(g[k]) == 0.0 for k in critic) and all(_norm(g[k]) > 0 for k in actor)
    g = grads({**batch, "advantage": jnp.zeros(6)}, vf_coef=0.5, ent_coef=0.0)
    assert all(_norm(g[k]) == 0.0 for k in actor) and all(_norm(g[k]) > 0 for k in critic)


# ---------------------------------------------------------------------- network, act, state


def test_network_fits_the_config_and_the_action_space(multidiscrete_env):
    cartpole = make_vector_env("CartPole-v1", num_envs=2)
    config = dataclasses.replace(
        SMALL, hidden_sizes=(8, 4), activation="relu", shared_torso=True, log_std_init=-1.0
    )
    net = network(config, cartpole)
    assert (net.action_dim, net.discrete, tuple(net.hidden_sizes)) == (2, True, (8, 4))
    assert net.activation == "relu" and net.shared_torso
    # a config without shared_torso (REINFORCE's) gets separate torsos
    assert not network(reinforce.Config(), cartpole).shared_torso
    net = network(config, make_vector_env("Pendulum-v1", num_envs=2))
    assert (net.action_dim, net.discrete, net.log_std_init) == (1, False, -1.0)
    stub = make_vector_env(multidiscrete_env, num_envs=2)
    with pytest.raises(TypeError, match=r"^The actor-critic supports Discrete and Box action"):
        network(config, stub)
    with pytest.raises(TypeError, match=r"^A2C supports Discrete and Box action spaces; got Mu"):
        network(config, stub, algorithm="A2C")


def _with_head_bias(params, bias, log_std=None):
    p = jax.tree.map(lambda x: x, params)  # a copy
    p["params"]["policy_head"]["bias"] = jnp.asarray(bias, jnp.float32)
    if log_std is not None:
        p["params"]["log_std"] = jnp.asarray(log_std, jnp.float32)
    return p


def test_act_takes_the_mode_or_a_sample_clipped_to_the_box():
    venv = make_vector_env("CartPole-v1", num_envs=2)
    net = network(SMALL, venv)
    obs = jax.random.normal(jax.random.key(0), (5, 4))
    params = net.init(jax.random.key(1), obs)
    params = _with_head_bias(params, [0.0, 0.0])
    # deterministic: the most likely action, the argmax of the network's logits
    logits = np.asarray(net.apply(params, obs, method="policy").logits)
    a = act(params, obs, jax.random.key(2), SMALL, venv)
    assert a.shape == (5,)
    np.testing.assert_array_equal(a, logits.argmax(-1))
    # sampled: with logits (-30, 30) action 1 has probability 1 - e^-60
    sure = _with_head_bias(params, [-30.0, 30.0])
    for k in range(3):
        s = act(sure, obs, jax.random.key(k), SMALL, venv, deterministic=False)
        np.testing.assert_array_equal(s, np.ones(5))
    # Pendulum's torque is in [-2, 2]: a mean of +-100 acts at the bound; wide samples are
    # clipped into it, the same key giving the same sample
    venv = make_vector_env("Pendulum-v1", num_envs=2)
    net = network(SMALL, venv)
    obs = jax.random.normal(jax.random.key(0), (64, 3))
    params = net.init(jax.random.key(1), obs)
    for bias in (100.0, -100.0):
        a = act(_with_head_bias(params, [bias]), obs, jax.random.key(2), SMALL, venv)
        assert a.shape == (64, 1)
        np.testing.assert_array_equal(a, np.full((64, 1), np.sign(bias) * 2.0))
    wide = _with_head_bias(params, [0.0], log_std=[3.0])  # std 20
    s = act(wide, obs, jax.random.key(3), SMALL, venv, deterministic=False)
    assert np.all(np.abs(s) <= 2.0) and np.any(np.abs(s) == 2.0) and np.any(np.abs(s) < 2.0)
    again = act(wide, obs, jax.random.key(3), SMALL, venv, deterministic=False)
    np.testing.assert_array_equal(s, again)
    assert not np.array_equal(
        s, act(wide, obs, jax.random.key(4), SMALL, venv, deterministic=False)
    )


def test_init_state_is_fresh_and_determined_by_the_key():
    venv = make_vector_env("CartPole-v1", num_envs=SMALL.num_envs)
    net = network(SMALL, venv)
    key = jax.random.key(7)
    state = init_state(key, SMALL, venv, net)
    assert policy_params(state) is state.params
    assert int(state.update_index) == 0 and state.update_index.dtype == jnp.int32
    # CartPole resets uniformly in [-0.05, 0.05]^4, one observation per environment
    assert state.obs.shape == (2, 4) and np.all(np.abs(np.asarray(state.obs)) <= 0.05)
    # the network's parameters, the default optimiser's fresh state, a new key
    shapes = jax.tree.map(jnp.shape, net.init(jax.random.key(0), state.obs))
    assert jax.tree.map(jnp.shape, state.params) == shapes
    fresh = optimizer(SMALL).init(state.params)
    assert jax.tree.structure(state.opt_state) == jax.tree.structure(fresh)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, state.opt_state, fresh))
    assert not np.array_equal(jax.random.key_data(state.key), jax.random.key_data(key))
    # another optimiser's state when one is given
    tx = optax.adam(1e-3)
    own = init_state(key, SMALL, venv, net, tx)
    assert jax.tree.structure(own.opt_state) == jax.tree.structure(tx.init(state.params))
    # same key, same state
    again = init_state(key, SMALL, venv, net)
    assert jax.tree.all(jax.tree.map(jnp.array_equal, again.params, state.params))
    np.testing.assert_array_equal(again.obs, state.obs)


def test_rollout_and_bootstrap_values_the_final_observations():
    config = dataclasses.replace(SMALL, num_envs=3, num_steps=40, total_timesteps=120)
    venv = make_vector_env("CartPole-v1", num_envs=3)
    net = network(config, venv)
    state = init_state(jax.random.key(0), config, venv, net)
    new, ro, next_values = jax.jit(lambda s: rollout_and_bootstrap(s, config, venv, net))(state)
    assert next_values.shape == (40, 3) and int(new.update_index) == 0
    _, expected = net.apply(state.params, ro.final_obs)  # the critic's V(final_obs)
    np.testing.assert_allclose(next_values, expected, rtol=1e-5, atol=1e-6)
    # inside an episode the next observation is the next step's: next_values[t] = value[t + 1];
    # episodes end within 40 steps (CartPole, a near-uniform policy: ~22 steps)
    done = np.asarray(ro.terminated | ro.truncated)
    assert done.any()
    goes_on = ~done[:-1]
    np.testing.assert_allclose(
        np.asarray(next_values)[:-1][goes_on], np.asarray(ro.value)[1:][goes_on], rtol=1e-5
    )


# ---------------------------------------------------------------------- pg_update


def _targets(ro, next_values, weight=1.0):
    # arbitrary but non-trivial: the target is the bootstrap value plus 1 (so a wrong
    # next_values changes the critic's gradient), the advantage the reward minus the value
    return ro.reward - ro.value, next_values + 1.0, jnp.full_like(ro.reward, weight)


@pytest.fixture(scope="module")
def update_setup():
    """CartPole with SMALL's network and a fresh state; `step(state, max_grad_norm, weight)`:
    `pg_update` with those two as traced values (one compiled program for every case)."""
    venv = make_vector_env("CartPole-v1", num_envs=SMALL.num_envs)
    net = network(SMALL, venv)
    state = init_state(jax.random.key(0), SMALL, venv, net)

    @jax.jit
    def step(s, max_grad_norm, weight):
        config = dataclasses.replace(SMALL, max_grad_norm=max_grad_norm)
        return pg_update(s, config, venv, net, lambda ro, nv: _targets(ro, nv, weight))

    @jax.jit
    def expected_grads(s):
        """`pg_loss`'s gradient on the rollout `pg_update` sees (the state's key fixes it)."""
        _, ro, nv = rollout_and_bootstrap(s, SMALL, venv, net)
        adv, target, weight = _targets(ro, nv)
        batch = {
            "x": ro.obs.reshape(-1, 4),
            "action": ro.action.reshape(-1),
            "advantage": adv.reshape(-1),
            "target": target.reshape(-1),
            "weight": weight.reshape(-1),
        }
        return jax.grad(pg_loss, has_aux=True)(s.params, net, batch, SMALL)

    return state, step, expected_grads


def test_pg_update_is_one_sgd_step_on_the_loss(update_setup):
    state, step, expected_grads = update_setup
    new, m = step(state, 1e6, 1.0)
    grads, aux = expected_grads(state)
    # SGD without momentum, no clipping (max_grad_norm 1e6): params - 0.1 * grads
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, state.params, grads)
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert int(new.update_index) == 1 and int(m.env_steps) == 10  # 2 envs x 5 steps
    np.testing.assert_allclose(m.learning_rate, 0.1, rtol=1e-6)
    np.testing.assert_allclose(m.grad_norm, _norm(grads), rtol=1e-4)
    np.testing.assert_allclose(m.loss, aux["loss"], rtol=1e-5)
    np.testing.assert_allclose(m.value_loss, aux["value_loss"], rtol=1e-5)
    # the second of 4 updates steps with 0.1 * (1 - 1/4)
    new2, m2 = step(new, 1e6, 1.0)
    np.testing.assert_allclose(m2.learning_rate, 0.075, rtol=1e-6)
    assert int(new2.update_index) == 2 and int(m2.env_steps) == 20


def test_pg_update_clips_the_gradient_and_honours_weights(update_setup):
    state, step, _ = update_setup

    def moved(new):
        return _norm(jax.tree.map(jnp.subtract, new.params, state.params))

    # clipped to norm 1e-3: the step is 0.1 * 1e-3 long; grad_norm is the norm before clipping
    new, m = step(state, 1e-3, 1.0)
    assert float(m.grad_norm) > 1e-2
    np.testing.assert_allclose(moved(new), 0.1 * 1e-3, rtol=1e-3)
    # all transitions left out (weight 0): a zero gradient, the parameters stay
    new, m = step(state, 1e6, 0.0)
    assert float(m.grad_norm) == 0.0 and moved(new) == 0.0


# ---------------------------------------------------------------------- config checks


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        (
            {"gamma": 1.5},
            ValueError,
            r"Test Config\.gamma must be a number >= 0 and <= 1, got 1\.5",
        ),
        ({"num_steps": 0}, ValueError, r"Test Config\.num_steps must be an int >= 1, got 0"),
        ({"learning_rate": 0.0}, ValueError, r"Test Config\.learning_rate must be a number > 0"),
        ({"momentum": 1.0}, ValueError, r"Test Config\.momentum must be a number >= 0 and < 1"),
        ({"anneal_lr": 1}, TypeError, r"Test Config\.anneal_lr must be True or False"),
        ({"optimizer": "rmsprop"}, ValueError, r"Test Config\.optimizer must be one of 'adam'"),
        ({"hidden_sizes": (8, 0)}, ValueError, r"Test Config\.hidden_sizes\[1\] must be an int"),
        # a field that shapes the program may not be an array; the message lists those that may
        (
            {"num_envs": jnp.asarray(4)},
            TypeError,
            r"Test Config\.num_envs holds a JAX array.*only learning_rate, momentum, gamma",
        ),
    ],
)
def test_check_config_names_owner_field_and_allowed_values(changes, error, match):
    check_config(OnPolicyRun(), "Test Config")  # the defaults pass
    with pytest.raises(error, match=rf"^{match}"):
        check_config(OnPolicyRun(**changes), "Test Config")


def test_check_config_leaves_traced_hyperparameters_unchecked():
    # a hyperparameter given as an array has no value to check (it may be a tracer)
    check_config(OnPolicyRun(learning_rate=jnp.float32(-1.0)), "Test Config")
    with pytest.raises(ValueError, match="learning_rate"):
        check_config(OnPolicyRun(learning_rate=-1.0), "Test Config")


def test_validate_pg_config_and_check_venv_name_the_fix(multidiscrete_env):
    # 100 steps < 4 envs x 32 steps = 128: no update at all
    short = OnPolicyRun(total_timesteps=100, num_envs=4, num_steps=32)
    with pytest.raises(ValueError) as err:
        validate_pg_config(short, "XYZ")
    assert str(err.value) == (
        "XYZ Config.total_timesteps=100 is less than one rollout "
        "(num_envs * num_steps = 128); raise total_timesteps."
    )
    exact = OnPolicyRun(total_timesteps=128, num_envs=4, num_steps=32)  # exactly one update
    validate_pg_config(exact, "XYZ")
    validate_pg_config(exact, "XYZ", make_vector_env("CartPole-v1", num_envs=4))
    three = make_vector_env("CartPole-v1", num_envs=3)
    for check in (
        lambda: validate_pg_config(exact, "XYZ", three),
        lambda: check_venv(exact, three, "XYZ"),
    ):
        with pytest.raises(
            ValueError, match=r"^XYZ Config\.num_envs=4 but the vector env has 3 .*make them equal"
        ):
            check()
    stub = make_vector_env(multidiscrete_env, num_envs=4)
    with pytest.raises(
        TypeError,
        match=r"^XYZ supports Discrete and Box action spaces; got Multi.*is Discrete or Box\.",
    ):
        check_venv(exact, stub, "XYZ")
    # the run length is checked before the environment
    with pytest.raises(ValueError, match="less than one rollout"):
        validate_pg_config(short, "XYZ", stub)
