"""Belief updates by hand on the tiger problem, batched = looped, and simulated returns."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.pomdp import (
    AlphaVectors,
    belief_update,
    belief_update_batch,
    observation_probs,
    qmdp,
    simulate,
)


def test_tiger_listen_by_hand(tiger):
    b = jnp.array([0.5, 0.5])
    up = belief_update(tiger, b, 0, 0)  # listen, hear the tiger on the left
    np.testing.assert_allclose(up.belief, [0.85, 0.15], rtol=1e-6)
    np.testing.assert_allclose(up.prob, 0.5, rtol=1e-6)
    up2 = belief_update(tiger, up.belief, 0, 0)
    np.testing.assert_allclose(up2.belief[0], 0.85**2 / (0.85**2 + 0.15**2), rtol=1e-6)
    np.testing.assert_allclose(up2.prob, 0.85 * 0.85 + 0.15 * 0.15, rtol=1e-6)
    # opening a door resets the tiger: the belief is uniform whatever is heard
    np.testing.assert_allclose(belief_update(tiger, up2.belief, 1, 1).belief, [0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(observation_probs(tiger, up.belief, 0), [0.745, 0.255], rtol=1e-6)


def test_impossible_observation_keeps_prediction():
    from bellmax.pomdp import TabularPOMDP

    p = TabularPOMDP(np.eye(2)[None], np.array([[[1.0, 0.0], [1.0, 0.0]]]), np.zeros((2, 1)))
    up = belief_update(p, jnp.array([0.3, 0.7]), 0, 1)
    assert float(up.prob) == 0.0
    np.testing.assert_allclose(up.belief, [0.3, 0.7], rtol=1e-6)


def test_a_concrete_update_reads_only_its_rows_in_the_models_precision(sparse_pomdp):
    # Called with concrete arguments, `belief_update` and `observation_probs` send the rows
    # T[a] and O[a] to the device, not the whole model (which they copied at every call:
    # most of a step's time on Tag); still Bayes' rule in the model's float64.
    rng = np.random.default_rng(1)
    b = rng.dirichlet(np.ones(sparse_pomdp.num_states))
    T, O = np.asarray(sparse_pomdp.T), np.asarray(sparse_pomdp.O)  # noqa: E741
    for a in range(sparse_pomdp.num_actions):
        for o in range(sparse_pomdp.num_observations):
            got = belief_update(sparse_pomdp, b, a, o)
            joint = (b @ T[a]) * O[a, :, o]
            assert got.belief.dtype == np.float64
            np.testing.assert_allclose(got.prob, joint.sum(), rtol=1e-12)
            if joint.sum() > 0:
                np.testing.assert_allclose(got.belief, joint / joint.sum(), rtol=1e-12)
        np.testing.assert_allclose(observation_probs(sparse_pomdp, b, a), b @ T[a] @ O[a], 1e-12)


def test_batch_equals_loop(tiger):
    rng = np.random.default_rng(0)
    b = rng.dirichlet(np.ones(2), size=16)
    a = rng.integers(0, 3, size=16)
    o = rng.integers(0, 2, size=16)
    batch = belief_update_batch(tiger, jnp.asarray(b), jnp.asarray(a), jnp.asarray(o))
    for i in range(16):
        one = belief_update(tiger, jnp.asarray(b[i]), int(a[i]), int(o[i]))
        np.testing.assert_allclose(batch.belief[i], one.belief, rtol=1e-6)
        np.testing.assert_allclose(batch.prob[i], one.prob, rtol=1e-6)
    # and by hand: Bayes' rule with numpy
    pred = np.einsum("ns,nst->nt", b, np.asarray(tiger.T)[a])
    joint = pred * np.asarray(tiger.O)[a, :, o]
    np.testing.assert_allclose(batch.belief, joint / joint.sum(1, keepdims=True), rtol=1e-6)


def test_batch_on_a_larger_model_never_gathers_a_transition_matrix_per_belief(sparse_pomdp):
    # Shows: on 24 states and 3 actions the batch still equals the one-belief update, and its
    # program holds no [N, S, S] array (T[a] gathered per belief), only [N, A, S] predictions.
    p = sparse_pomdp
    n, S = 40, p.T.shape[1]
    rng = np.random.default_rng(1)
    b = jnp.asarray(rng.dirichlet(np.ones(S), size=n), jnp.float32)
    a = jnp.asarray(rng.integers(0, p.T.shape[0], size=n))
    o = jnp.asarray(rng.integers(0, p.O.shape[2], size=n))
    batch = belief_update_batch(p, b, a, o)
    for i in range(n):
        one = belief_update(p, b[i], a[i], o[i])
        np.testing.assert_allclose(batch.belief[i], one.belief, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(batch.prob[i], one.prob, rtol=1e-5, atol=1e-7)
    shapes = _all_shapes(jax.make_jaxpr(belief_update_batch)(p, b, a, o).jaxpr)
    assert (n, 3, S) in shapes  # the per-action predictions
    biggest = max(shapes, key=math.prod)
    assert math.prod(biggest) < n * S * S, f"{biggest}: a transition matrix gathered per belief"


def _all_shapes(jaxpr) -> set:
    """Every intermediate's shape in `jaxpr` and the jaxprs nested in its equations."""
    out = set()
    for eqn in jaxpr.eqns:
        out |= {tuple(v.aval.shape) for v in eqn.outvars}
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                out |= _all_shapes(inner)
    return out


def test_simulate_fixed_policies(tiger):
    # Sampled check: always listening earns exactly -1 per step; always opening the left door
    # earns -45 per step in expectation, so the mean lies within 4 standard errors of it.
    steps = 60
    disc = (1 - 0.95**steps) / (1 - 0.95)
    listen = AlphaVectors(alphas=jnp.zeros((1, 2)), actions=jnp.array([0]))
    res = simulate(tiger, listen, jax.random.key(0), episodes=50, steps=steps)
    np.testing.assert_allclose(res.returns, -disc, rtol=1e-6)
    res = simulate(tiger, lambda b, k: 1, jax.random.key(1), episodes=400, steps=steps)
    assert abs(float(res.mean_discounted_return) + 45 * disc) < 4 * float(res.stderr)
    assert float(res.stderr) > 0


def test_simulate_under_jit_runs_in_the_programs_precision():
    # A float64 model simulated inside the caller's jax.jit (x64 off): it switched x64 on
    # inside the trace and failed deep in JAX (a reduce of float64 and float32 operands).
    from bellmax.pomdp.problems import tiger as make_tiger

    t = make_tiger()
    policy = qmdp(t).vectors
    jitted = jax.jit(lambda k: simulate(t, policy, k, episodes=20, steps=10).returns)
    got = jitted(jax.random.key(0))
    # what the float32 model gives outside jit (float64 draws another random stream)
    single = lambda x: np.asarray(x, np.float32) if np.asarray(x).dtype.kind == "f" else x  # noqa: E731
    t32, policy32 = jax.tree.map(single, (t, policy))
    want = simulate(t32, policy32, jax.random.key(0), episodes=20, steps=10).returns
    assert got.dtype == want.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_simulate_after_a_float32_program_captured_the_same_model():
    # jax 0.10 keeps the float32 copy of a numpy array that a program compiled with x64 off
    # captured (POMCP's, a user's jitted function) and handed it to simulate's float64
    # program, given the same array: RuntimeProgramInputMismatch. In a notebook: POMCP, then
    # simulate a solver's policy on the same model.
    from bellmax.pomdp.problems import tiger as make_tiger

    t = make_tiger()
    capture = jax.jit(lambda k: jnp.asarray(t.T).sum() + jnp.asarray(t.R).sum() + k)
    capture(1.0)
    policy = qmdp(t).vectors
    got = simulate(t, policy, jax.random.key(0), episodes=20, steps=10).returns
    fresh = simulate(make_tiger(), policy, jax.random.key(0), episodes=20, steps=10).returns
    np.testing.assert_array_equal(got, fresh)
    assert got.dtype == np.float64


def test_simulate_bad_input(tiger):
    with pytest.raises(TypeError, match="policy must be AlphaVectors or a function"):
        simulate(tiger, "greedy", jax.random.key(0))
    # a solver's result where its policy belongs: the field that holds the policy
    with pytest.raises(
        TypeError, match=r"got BoundResult\. .*simulate\(pomdp, result\.vectors, key\)"
    ):
        simulate(tiger, qmdp(tiger), jax.random.key(0))
    with pytest.raises(TypeError, match=r"simulate\(bellmax\.pomdp\.load_pomdp\('tiger\.pomdp'\)"):
        simulate("tiger.pomdp", qmdp(tiger).vectors, jax.random.key(0))
    with pytest.raises(ValueError, match=r"simulate\.episodes must be an int >= 2"):
        simulate(tiger, lambda b, k: 0, jax.random.key(0), episodes=1)
    # A policy's action out of range ran as another action (the indexing clamps: 3, 7 and -1
    # were open-right, silently); other outputs failed deep in JAX, naming no policy.
    for action in (3, -1):
        with pytest.raises(ValueError, match=r"the policy chose an action outside 0\.\.2"):
            simulate(tiger, lambda b, k, a=action: jnp.int32(a), jax.random.key(0), steps=3)
    bad = [
        (lambda b, k: jnp.zeros(1, jnp.int32), r"one action index .* got shape \(1,\)"),
        (lambda b, k: (0, 1), "one action index .* got tuple"),
        (lambda b, k: jnp.float32(0.0), "an integer action index, got dtype float32"),
    ]
    for policy, match in bad:
        with pytest.raises(TypeError, match=f"simulate's policy must return {match}"):
            simulate(tiger, policy, jax.random.key(0), steps=3)


def test_simulate_refuses_rewards_whose_returns_overflow(tiger):
    # 1e308 is a finite reward, but five discounted steps of it are not: simulate returned
    # -inf returns and a NaN standard error; it refuses them as the solvers and the CLI do
    huge = tiger.replace(R=np.asarray(tiger.R) * 1e306)  # |R| up to 1e308
    with pytest.raises(
        ValueError,
        match=r"^simulate: rewards up to \|R\| = 1e\+308 are too large for a horizon of 5 "
        r"steps with gamma = 0\.95: .*Rescale the rewards",
    ):
        simulate(huge, lambda b, k: 1, jax.random.key(0), episodes=2, steps=5)
    # the bound is over `steps`: one step of 1e307 rewards fits
    fits = tiger.replace(R=np.asarray(tiger.R) * 1e305)
    res = simulate(fits, lambda b, k: 1, jax.random.key(0), episodes=2, steps=1)
    assert np.isfinite(np.asarray(res.returns)).all()


def test_belief_update_checks_concrete_input(tiger):
    # under jit an index out of range is clamped silently: concrete input is checked first
    b = jnp.array([0.5, 0.5])
    for args, match in [
        ((b, 7, 0), r"action 7 is out of range: the valid actions are the integers 0\.\.2"),
        (
            (b, 0, 9),
            r"observation 9 is out of range: the valid observations are the integers 0\.\.1",
        ),
        ((jnp.array([2.0, 2.0]), 0, 0), "probabilities >= 0 summing to 1"),
        ((jnp.array([0.3, 0.3, 0.4]), 0, 0), r"must be \[2\] \(one per state\)"),
        ((jnp.array([np.nan, 0.5]), 0, 0), "probabilities"),
    ]:
        with pytest.raises(ValueError, match=match):
            belief_update(tiger, *args)
    # traced arguments (vmap) are not checked, and the result is the same
    batch = jax.vmap(belief_update, in_axes=(None, 0, None, None))(tiger, jnp.stack([b, b]), 0, 0)
    np.testing.assert_allclose(batch.prob, [belief_update(tiger, b, 0, 0).prob] * 2)


def test_belief_update_batch_checks_concrete_input(tiger):
    # it is jitted: without these checks an index out of range was clamped (action 7 taken as
    # 2) and a row summing to 1.8 was updated as if it were a belief
    b = jnp.array([[0.5, 0.5], [0.2, 0.8]])
    a, o = jnp.array([0, 1]), jnp.array([1, 0])
    for args, error, match in [
        ((b, jnp.array([0, 7]), o), ValueError,
         r"action 7 \(row 1\) is out of range: the valid actions are the integers 0\.\.2"),
        ((b, a, jnp.array([9, 0])), ValueError,
         r"observation 9 \(row 0\) is out of range: the valid observations are the integers 0\.\.1"),
        ((jnp.array([[0.9, 0.9], [0.5, 0.5]]), a, o), ValueError,
         r"row 0 is \[0\.9.*\(sum 1\.8\)"),
        ((b[0], a[:1], o[:1]), ValueError, r"must be \[N, 2\].*call belief_update"),
        ((b, a[:1], o), ValueError, r"actions must be \[N\] = \[2\] integers"),
        ((b, a.astype(jnp.float32), o), TypeError, "actions must be integers"),
    ]:  # fmt: skip
        with pytest.raises(error, match=match):
            belief_update_batch(tiger, *args)
    # traced arguments (inside jit) are not checked: the same numbers as concrete ones
    jitted = jax.jit(belief_update_batch)(tiger, b, a, o)
    np.testing.assert_allclose(jitted.belief, belief_update_batch(tiger, b, a, o).belief, rtol=1e-6)


def test_beliefs_as_lists_and_the_models_precision(tiger):
    # a list is a belief as an array is (it failed in `b @ T[a]`), and a float64 model's
    # update is computed in float64 (it came back float32 without x64)
    assert np.asarray(tiger.T).dtype == np.float64
    up = belief_update(tiger, [0.5, 0.5], 0, 0)
    np.testing.assert_allclose(up.belief, [0.85, 0.15], rtol=1e-12)
    assert up.belief.dtype == jnp.float64
    np.testing.assert_allclose(observation_probs(tiger, [0.5, 0.5], 0), [0.5, 0.5], rtol=1e-12)
    batch = belief_update_batch(tiger, [[0.5, 0.5]], [0], [0])
    assert batch.belief.dtype == jnp.float64
    np.testing.assert_allclose(batch.belief, [[0.85, 0.15]], rtol=1e-12)
    with pytest.raises(ValueError, match=r"observation_probs: action 5 is out of range"):
        observation_probs(tiger, [0.5, 0.5], 5)
    with pytest.raises(ValueError, match="observation_probs: the belief must be probabilities"):
        observation_probs(tiger, [0.9, 0.9], 0)


def test_simulate_with_successor_lists_equals_the_dense_update(sparse_pomdp):
    # simulate predicts beliefs through each (a, s)'s successor list when those are short
    # (`b @ T[a]` gathered an [S, S] matrix per vmapped episode: 12 GB for 2000 Tag
    # episodes); the same keys must give the same returns either way.
    import importlib

    B = importlib.import_module("bellmax.pomdp.belief")
    p = sparse_pomdp
    with B.x64():  # as `simulate` runs a float64 model
        lists = B._successor_lists(p)
        assert lists is not None and lists[0].shape == (3, 24, 2)
        policy = B.AlphaVectors(
            alphas=jnp.asarray(np.random.default_rng(0).normal(size=(5, 24))),
            actions=jnp.arange(5) % 3,
        )
        keys = jax.random.split(jax.random.key(0), 64)
        sparse = B._simulate(p, B._alpha_act, policy, 30, keys, lists)
        dense = B._simulate(p, B._alpha_act, policy, 30, keys, None)
    np.testing.assert_allclose(np.asarray(sparse), np.asarray(dense), rtol=1e-12, atol=1e-12)
    assert float(np.std(np.asarray(sparse))) > 0  # the episodes differ: a real comparison
    public = simulate(p, policy, jax.random.key(0), episodes=64, steps=30)
    np.testing.assert_allclose(np.asarray(public.returns), np.asarray(sparse), atol=1e-12)
