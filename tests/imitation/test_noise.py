"""DART and the three cameras: who acts, what is labelled, what counts; the MPC expert's memory.

Exact checks on small runs (the learner barely trains: these test the labels, not learning).
"""

from __future__ import annotations

import numpy as np

from bellmax.envs import registry, spaces
from bellmax.imitation import BCConfig, ImitationConfig, imitate, label, mpc_expert
from bellmax.imitation.loop import _noisy
from bellmax.models import parametric

ENV = "gymnasium:CartPole-v1"
SMALL = dict(labels=500, eval_episodes=1, bc=BCConfig(steps=10))


def lean(obs):
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


def test_injected_noise():
    rng = np.random.default_rng(0)
    a = np.zeros(10_000, np.int32)
    flipped = _noisy(a, spaces.Discrete(2), 0.3, rng)
    assert abs((flipped == 1).mean() - 0.15) < 0.02  # a random action 30% of the time
    box = spaces.Box(-2.0, 2.0, (1,), np.float32)
    c = _noisy(np.zeros((10_000, 1), np.float32), box, 0.25, rng)
    assert abs(c.std() - 0.5) < 0.02 and np.abs(c).max() <= 2.0  # 0.25 half-ranges, clipped
    assert _noisy(a, spaces.Discrete(2), 0.0, rng) is a


def test_dart_labels_are_the_clean_actions_and_the_expert_acted(tmp_path):
    config = ImitationConfig(
        algorithm="dart", noise=0.5, rounds=1, labels_per_round=200, steps_per_round=200, **SMALL
    )
    res = imitate(ENV, lean, config, seed=0)
    d = res.dataset
    assert len(d) == 200 and (d.source == 0).all()
    np.testing.assert_array_equal(d.actions, lean(d.obs))  # clean labels
    # with a random action half the time the expert's episodes are short: the 200 states hold
    # several starts (|x| < 0.05 and small speeds) rather than one long balance
    starts = (np.abs(d.obs) <= 0.05).all(-1).sum()
    assert starts >= 3


def test_three_cameras_add_corrective_labels_that_count():
    config = ImitationConfig(
        algorithm="bc", cameras=2, camera_noise=0.05, rounds=1, labels_per_round=30, **SMALL
    )
    res = imitate(ENV, lean, config, seed=0)
    d = res.dataset
    visited, copies = d.obs[d.source == 0], d.obs[d.source == 1]
    # the round's 30 labels include the copies: 10 visited states and 2 copies of each
    assert len(visited) == 10 and len(copies) == 20 and len(d) == res.labels_used == 30
    np.testing.assert_array_equal(d.actions, lean(d.obs))  # each copy has the expert's label
    offsets = copies - np.repeat(visited, 2, axis=0)
    assert 0.03 < offsets.std() < 0.07 and (offsets != 0).all()


def test_mpc_expert_remembers_its_plan_and_peeks_without_moving():
    env, params = registry.make("CartPoleSwingUp-v0")
    from bellmax.control.problems import env_problem

    problem = env_problem("CartPoleSwingUp-v0", "cartpole", params, horizon=20)[0]
    model = parametric.get_model("cartpole")
    space = env.action_space(params)
    expert = mpc_expert(problem, space, params=params, observe=model.state_from_obs)
    assert expert.stateful
    t = np.arange(12)[:, None] * 0.02
    theta = 0.05 - 0.5 * t  # near upright, where the force is not saturated
    obs = np.concatenate([0.1 * t, 0 * t + 0.1, np.cos(theta), np.sin(theta), 0 * t - 0.5], 1)
    obs = obs.astype(np.float32)

    def run(peek=False, forget=False):
        expert.reset()
        out = []
        for i in range(12):
            if forget:
                expert.reset()
            if peek and i == 5:  # perturbed copies labelled from row 0's plan
                expert.peek(obs[i : i + 1] + 0.1, np.array([0]))
            out.append(label(expert, obs[i : i + 1], space)[0][0, 0])
        return np.asarray(out)

    plain = run()
    assert (np.abs(plain) < 0.99).sum() >= 5  # mostly not saturated: the labels say something
    np.testing.assert_array_equal(run(peek=True), plain)  # peeking moved nothing
    assert not np.allclose(run(forget=True), plain, atol=1e-3)  # the warm start matters


def test_a_dagger_round_with_cameras_gets_the_quota_as_a_bc_round_does():
    # In DAgger's learner rounds the visited states were picked to fill the quota and their
    # camera copies came on top: 30 labels a round against BC's 12 for labels_per_round=10.
    def per_round(algorithm):
        config = ImitationConfig(
            algorithm=algorithm,
            cameras=2,
            rounds=3,
            labels_per_round=10,
            steps_per_round=50,
            **SMALL,
        )
        d = imitate(ENV, lean, config, seed=0).dataset
        return [int((d.rounds == r).sum()) for r in range(3)]

    assert per_round("bc") == [12, 12, 12]  # 4 visited states and 2 copies of each
    assert per_round("dagger") == [12, 12, 12]
