"""A neural policy trained through a learned model (bellmax.models.through_model)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs.pendulum import angle_normalize
from bellmax.models.gps import ilqr_reference
from bellmax.models.through_model import (
    ThroughModelConfig,
    imagined_cost,
    make_neural_policy,
    neural_policy_from_bytes,
    neural_policy_to_bytes,
    run_through_model,
)


def test_policy_squashes_into_the_box_and_features():
    pol = make_neural_policy("Pendulum-v1", hidden_sizes=(8,))
    params = pol.init(jax.random.key(0))
    big = jax.tree.map(lambda a: 100.0 * a, params)
    xs = jnp.array([[0.0, 0.0], [3.0, -8.0], [-2.0, 8.0]])
    u = jax.vmap(lambda x: pol(big, x))(xs)
    assert u.shape == (3, 1) and bool(jnp.all(jnp.abs(u) <= 2.0))
    # Angles enter as cos, sin: a wound-up angle acts the same.
    np.testing.assert_allclose(
        pol(params, xs[1]), pol(params, xs[1] + jnp.array([2 * jnp.pi, 0])), atol=1e-5
    )
    np.testing.assert_allclose(pol.features(jnp.array([0.0, 4.0])), [0.5, 1.0, 0.0])


def test_a_real_rollouts_return_ends_when_the_episode_terminates():
    # The raw step runs on after the swing-up's cart leaves its track (|x| > 2.4, where the
    # episode terminates) and its pole still scores: a constant push scored 54.7 over 200
    # steps where its episode earned 7.9. Rewards after the first termination now count 0.
    from bellmax.envs.registry import make
    from bellmax.models.gps import state_fields, state_from_vector
    from bellmax.models.through_model import evaluate_policy

    sid = "CartPoleSwingUp-v0"
    pol = make_neural_policy(sid, hidden_sizes=(4,))
    params = jax.tree.map(jnp.zeros_like, pol.init(jax.random.key(0)))
    params = jax.tree_util.tree_map_with_path(  # the output bias: tanh(3), push right
        lambda path, a: a + 3.0 if "bias" in str(path) and a.shape == (1,) else a, params
    )
    ret, X, U = evaluate_policy(sid, pol, params, steps=200)
    env, env_params = make(sid)
    template = env.reset(jax.random.key(0), env_params)[1]
    state = state_from_vector(template, state_fields(template), jnp.asarray(X[0]))
    rewards, ended = [], None
    for t, u in enumerate(U):
        _, state, r, term, _, _ = env.step(jax.random.key(0), state, jnp.asarray(u), env_params)
        rewards.append(float(r))
        if bool(term) and ended is None:
            ended = t
    assert ended is not None and ended < 100  # it left the track early
    assert ret == pytest.approx(sum(rewards[: ended + 1]), rel=1e-5)
    assert sum(rewards[ended + 1 :]) > 10  # what used to be counted


def test_imagined_cost_by_hand():
    # The identity "model" and a zero policy: the cost of standing still at x0.
    pol = make_neural_policy("Pendulum-v1", hidden_sizes=(4,))
    params = jax.tree.map(jnp.zeros_like, pol.init(jax.random.key(0)))

    class Still:
        def dynamics(self, x, u, t, p):
            return x

    cost = lambda x, u, t: angle_normalize(x[0]) ** 2 + 0.1 * x[1] ** 2 + 0.001 * u[0] ** 2  # noqa: E731
    got = imagined_cost(pol, params, Still(), None, cost, jnp.array([0.5, 2.0]), 7)
    np.testing.assert_allclose(got, 0.25 + 0.4, rtol=1e-6)
    pen = imagined_cost(
        pol, params, Still(), None, cost, jnp.array([0.5, 2.0]), 7, saturation_penalty=1.0
    )
    np.testing.assert_allclose(pen, got, rtol=1e-6)  # zero output: no penalty


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="horizon"):
        ThroughModelConfig(horizon=0)
    with pytest.raises(ValueError, match="learning_rate"):
        ThroughModelConfig(learning_rate=-1.0)
    with pytest.raises(ValueError, match="no state layout"):
        make_neural_policy("CartPole-v1")


def test_neural_policy_swings_the_pendulum_up_without_a_planner():
    """Through a model fitted to 16 random + 2 x 4 own rollouts, the policy alone (no
    planner, no noise) swings bellmax's Pendulum-v1 up from hanging at rest and holds it.

    Yardsticks for the 200-step return from hanging: standing still costs 200 pi^2 = 1974;
    a policy stuck at the torque limit stalls at the lopsided equilibrium sin(theta) = 0.4
    and costs ~1500; iLQR with the true model from the same start (a local method: it
    finds a slower swing-up) costs 723. The policy must beat iLQR and be upright (within
    0.1 rad, at under 0.5 rad/s) through the last 50 steps.
    """
    res = run_through_model("Pendulum-v1", ThroughModelConfig(seed=0))
    reference = float(ilqr_reference("Pendulum-v1", (np.pi, 0.0), 200, max_iterations=200).cost)
    assert -res.final_return < reference, (res.round_returns, reference)
    tail = res.final_states[-50:]
    assert np.max(np.abs(np.asarray(angle_normalize(tail[:, 0])))) < 0.1, res.round_returns
    assert np.max(np.abs(tail[:, 1])) < 0.5
    assert res.transitions == 16 * 200 + 2 * 4 * 200  # the last round collects nothing


def test_neural_policy_bytes_round_trip_and_refuse_what_they_are_not(monkeypatch):
    from flax import serialization

    pol = make_neural_policy("CartPoleSwingUp-v0", hidden_sizes=(8, 4), squash=False)
    params = jax.tree.map(lambda a: a + 0.3, pol.init(jax.random.key(0)))
    back, back_params = neural_policy_from_bytes(neural_policy_to_bytes(pol, params))
    assert back == pol
    x = jnp.array([0.1, -0.2, 2.5, 0.3])
    np.testing.assert_array_equal(back(back_params, x), pol(params, x))
    good = serialization.msgpack_restore(neural_policy_to_bytes(pol, params))
    wrong_tag = {**good, "format": "other"}
    other_net = {**good, "policy": {**good["policy"], "hidden_sizes": [8, 5]}}
    # A tiny file declaring 4e12 weights: refused by their shapes before any is drawn (the
    # reader built the network first: 16 TB of random weights dispatched).
    huge_net = {**good, "policy": {**good["policy"], "hidden_sizes": [10**6, 10**6]}}
    cases = [
        (b"\x00not msgpack", "cannot be read as msgpack"),
        (serialization.msgpack_serialize(wrong_tag), "format tag"),
        (serialization.msgpack_serialize({**good, "version": 9}), "version 9"),
        (serialization.msgpack_serialize(other_net), "parameter shapes"),
        (serialization.msgpack_serialize(huge_net), "parameter shapes"),
    ]
    drawn = []
    real_init = type(pol).init

    def init(self, key):  # a concrete key: weights drawn, not only their shapes traced
        drawn.append(not isinstance(key, jax.core.Tracer))
        return real_init(self, key)

    monkeypatch.setattr(type(pol), "init", init)
    for data, why in cases:
        with pytest.raises(ValueError, match=f"p.msgpack is not a bellmax neural policy: .*{why}"):
            neural_policy_from_bytes(data, source="p.msgpack")
    assert drawn and not any(drawn)
    with pytest.raises(TypeError, match="NeuralPolicy"):
        neural_policy_to_bytes("not a policy", params)


def test_a_policy_whose_weights_went_nan_stops_the_run_naming_the_round(monkeypatch):
    # The policy's last updates made its weights NaN while the imagined cost was still
    # finite: run_through_model returned a NaN final return (and `bellmax gps --policy
    # through-model` wrote it). Now it stops at that round, saying what to lower.
    from bellmax.core.errors import DivergenceError
    from bellmax.models import through_model

    def nan_policy(policy, model, cost, config, params, model_params, starts, key):
        return jax.tree.map(lambda a: a * jnp.nan, params), jnp.ones(config.policy_updates)

    monkeypatch.setattr(through_model, "fit_neural", lambda *a, init=None, **k: (init, None))
    monkeypatch.setattr(through_model, "_optimise", nan_policy)
    cfg = ThroughModelConfig(random_rollouts=2, rollout_steps=5, rounds=2, seed=0)
    with pytest.raises(
        DivergenceError,
        match=r"^round 1 on 'Pendulum-v1': the policy's return alone is nan: its last updates "
        r"made its weights NaN or inf \(the imagined cost was still 1\); lower "
        r"ThroughModelConfig\.learning_rate",
    ):
        run_through_model("Pendulum-v1", cfg)
