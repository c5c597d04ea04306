"""The 10-armed testbed reproduces Sutton & Barto's Figures 2.2-2.5 (2000 runs x 1000 steps).

Reference values: /work/shared/reference/sutton-barto.md. With 2000 runs the standard error
of a late (steps 901-1000) mean reward is about 0.014 and of a late optimal-action rate
about 0.006-0.011; every band below is at least 4 standard errors wide on each side of the
book's value, so a correct implementation passes on any seed. All runs share four compiled
programs, one per agent type (the configs' numbers are traced).
"""

from __future__ import annotations

import numpy as np
import pytest

import bellmax
from bellmax.bandits import testbed as T
from bellmax.bandits.agents import UCB, EpsilonGreedy, GradientBandit, ThompsonSampling
from bellmax.bandits.testbed import run_testbed, run_testbeds
from bellmax.envs.bandit import BanditParams, GaussianBandit

SEED = 0

STANDARD = {
    "greedy": EpsilonGreedy(epsilon=0.0),
    "eps0.01": EpsilonGreedy(epsilon=0.01),
    "eps0.1": EpsilonGreedy(epsilon=0.1),
    "optimistic": EpsilonGreedy(epsilon=0.0, alpha=0.1, initial_value=5.0),
    "realistic": EpsilonGreedy(epsilon=0.1, alpha=0.1),
    "ucb": UCB(c=2.0),
    "thompson": ThompsonSampling(),
}
SHIFTED = {  # Figure 2.5: true values around +4
    "gradient": GradientBandit(alpha=0.1),
    "gradient_no_baseline": GradientBandit(alpha=0.1, baseline=False),
}
NONSTATIONARY = {  # Exercise 2.5 (shortened): equal start, random walks of std 0.01
    "sample_average": EpsilonGreedy(epsilon=0.1),
    "constant_step": EpsilonGreedy(epsilon=0.1, alpha=0.1),
}


@pytest.fixture(scope="module")
def book() -> dict[str, T.TestbedResult]:
    out = dict(zip(STANDARD, run_testbeds(list(STANDARD.values()), seed=SEED), strict=True))
    shifted = run_testbeds(
        list(SHIFTED.values()), seed=SEED, env_params=BanditParams(mean_offset=4.0)
    )
    walk = BanditParams(arm_mean_std=0.0, walk_std=0.01)
    nonstationary = run_testbeds(list(NONSTATIONARY.values()), seed=SEED, env_params=walk)
    out.update(zip(SHIFTED, shifted, strict=True))
    out.update(zip(NONSTATIONARY, nonstationary, strict=True))
    return out


def _late(r: T.TestbedResult) -> tuple[float, float]:
    return r.late_mean_reward, r.late_optimal_action_rate


@pytest.mark.parametrize(
    "name, reward_band, optimal_band",
    [  # book: 1.02 / 1.29 / 1.37 and about 35% / 60% / 80%
        ("greedy", (0.94, 1.10), (0.29, 0.41)),
        ("eps0.01", (1.22, 1.37), (0.54, 0.66)),
        ("eps0.1", (1.30, 1.44), (0.76, 0.84)),
    ],
)
def test_figure_2_2_epsilon_greedy(book, name, reward_band, optimal_band):
    reward, optimal = _late(book[name])
    assert reward_band[0] <= reward <= reward_band[1], reward
    assert optimal_band[0] <= optimal <= optimal_band[1], optimal


def test_figure_2_2_shape(book):
    g, e01, e1 = book["greedy"], book["eps0.01"], book["eps0.1"]
    assert g.late_mean_reward < e01.late_mean_reward < e1.late_mean_reward
    assert g.late_optimal_action_rate < e01.late_optimal_action_rate < e1.late_optimal_action_rate
    # step 1 is a uniformly random pull: reward about E[q*] = 0, optimal about 1/k
    assert abs(float(e1.mean_reward[0])) < 0.12
    assert abs(float(e1.optimal_action_rate[0]) - 0.1) < 0.035
    # greedy stops improving early; epsilon 0.1 keeps learning for hundreds of steps
    assert abs(g.mean_reward[100:200].mean() - g.late_mean_reward) < 0.06
    assert e1.optimal_action_rate[100:200].mean() < e1.late_optimal_action_rate - 0.08


def test_figure_2_3_optimistic_initial_values(book):
    # book: 85-87% optimal late, against 76-77% for realistic Q1 = 0, epsilon 0.1
    optimistic, realistic = book["optimistic"], book["realistic"]
    assert 0.82 <= optimistic.late_optimal_action_rate <= 0.90
    assert 0.72 <= realistic.late_optimal_action_rate <= 0.81
    assert optimistic.late_optimal_action_rate > realistic.late_optimal_action_rate + 0.04
    # the optimistic agent explores early: worse than realistic over the first 10 steps
    assert optimistic.optimal_action_rate[:10].mean() < realistic.optimal_action_rate[:10].mean()


def test_figure_2_4_ucb(book):
    ucb, eps = book["ucb"], book["eps0.1"]
    assert 1.43 <= ucb.late_mean_reward <= 1.54  # book: 1.46-1.51
    assert ucb.late_mean_reward > eps.late_mean_reward + 0.05
    # the spike at step 11: every arm tried once, then the best single sample is pulled
    r = ucb.mean_reward
    assert 0.95 <= r[10] <= 1.22, r[10]  # book: about 1.085
    assert abs(float(r[:10].mean())) < 0.1 and r[10] > r[11] + 0.05
    np.testing.assert_allclose(ucb.optimal_action_rate[:10].mean(), 0.1, atol=0.01)


def test_figure_2_5_gradient_bandit(book):
    with_baseline, without = book["gradient"], book["gradient_no_baseline"]
    assert 0.81 <= with_baseline.late_optimal_action_rate <= 0.90  # book: 84-87%
    assert 0.44 <= without.late_optimal_action_rate <= 0.56  # book: about 50%
    # rewards are around +4 now
    assert 5.2 <= with_baseline.late_mean_reward <= 5.8


def test_thompson_sampling_beats_epsilon_greedy(book):
    ts, eps = book["thompson"], book["eps0.1"]
    assert ts.late_mean_reward > eps.late_mean_reward + 0.08
    assert ts.late_optimal_action_rate > eps.late_optimal_action_rate + 0.05
    assert ts.late_mean_reward < 1.5388 + 0.05  # E[max of 10 N(0,1)] is the ceiling


def test_constant_step_size_tracks_a_nonstationary_testbed(book):
    # Exercise 2.5: sample averages weigh old rewards too much once the arms drift
    sample, constant = book["sample_average"], book["constant_step"]
    assert constant.late_mean_reward > sample.late_mean_reward + 0.025
    assert constant.late_optimal_action_rate > sample.late_optimal_action_rate + 0.05
    assert abs(float(sample.mean_reward[0])) < 0.05  # all arms start equal at 0


def test_results_are_consistent_and_deterministic(book):
    r = book["eps0.1"]
    assert r.mean_reward.shape == r.optimal_action_rate.shape == (1000,)
    assert r.late_reward.shape == r.late_optimal.shape == (2000,)
    assert r.late_mean_reward == pytest.approx(r.mean_reward[-100:].mean(), abs=1e-6)
    assert r.late_mean_reward == pytest.approx(float(r.late_reward.mean()), abs=1e-4)
    assert r.late_optimal_action_rate == pytest.approx(float(r.late_optimal.mean()), abs=1e-5)
    assert 0.005 < r.late_reward_stderr < 0.03 and 0.0 < r.late_optimal_stderr < 0.02
    # epsilon 0.01 and 0.1 reused epsilon 0's compiled program
    assert book["eps0.01"].compile_seconds == 0.0 and book["eps0.1"].compile_seconds == 0.0
    assert book["gradient_no_baseline"].compile_seconds == 0.0
    again = run_testbed(EpsilonGreedy(epsilon=0.1), seed=SEED)
    np.testing.assert_array_equal(again.mean_reward, r.mean_reward)
    np.testing.assert_array_equal(again.late_optimal, r.late_optimal)
    assert again.compile_seconds == 0.0 and again.config == EpsilonGreedy(epsilon=0.1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"runs": 0}, ValueError, "runs must be >= 1, got 0"),
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"runs": 2.5}, TypeError, "runs must be an integer"),
        ({"steps": 10, "last": 20}, ValueError, "last=20 is longer than the run"),
        ({"last": 0}, ValueError, "last must be >= 1"),
        # the shared seed check's message (core.checks.check_seed), with a seed that works
        (
            {"seed": -1},
            ValueError,
            r"^seed must be an int >= 0 and <= 4294967295, got -1; pass e\.g\. seed=0\.$",
        ),
        ({"seed": 2**32}, ValueError, r"^seed must be an int >= 0 and <= 4294967295"),
        ({"seed": "0"}, TypeError, r"^seed must be an int, got str '0'; pass e\.g\. seed=0\.$"),
        ({"seed": 3.0}, TypeError, r"^seed must be an int, got float 3\.0 \(write 3\); pass e"),
        ({"key": 0}, TypeError, "key must be a typed PRNG key"),
        ({"env": "GaussianBandit-v0"}, TypeError, "runs on a GaussianBandit"),
        ({"env_params": BanditParams(reward_std=-1.0)}, ValueError, "reward_std.*>= 0"),
        (
            {"bogus": 1},
            TypeError,
            r"run_testbed\(\) got unexpected keyword argument\(s\) \['bogus'\]; it takes \['runs'",
        ),
    ],
)
def test_bad_testbed_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        run_testbed(EpsilonGreedy(), **kwargs)


def test_bad_configs_raise_before_anything_runs():
    with pytest.raises(ValueError, match="epsilon must be >= 0 and <= 1"):
        run_testbeds([EpsilonGreedy(), EpsilonGreedy(epsilon=2.0)])
    with pytest.raises(TypeError, match="expected a bandit agent config"):
        run_testbed("eps-greedy")
    with pytest.raises(TypeError, match="list of agent configs"):
        run_testbeds(EpsilonGreedy())
    with pytest.raises(ValueError, match="configs is empty"):
        run_testbeds([])
    with pytest.raises(TypeError, match="runs on a GaussianBandit"):
        run_testbed(EpsilonGreedy(), env=bellmax.make("CartPole-v1")[0])
    assert GaussianBandit(3).k == 3


def test_the_late_window_defaults_to_the_run_when_shorter():
    # last left out: the book's 100 steps, or the whole run (it was refused for steps < 100)
    assert T.check_sizes(2, 50) == (2, 50, 50) and T.check_sizes(2, 500) == (2, 500, 100)
    assert T.check_sizes(2, 50, 20) == (2, 50, 20)
    with pytest.raises(
        ValueError, match=r"^last=80 is longer than the run \(steps=50\); pass last=50"
    ):
        T.check_sizes(2, 50, 80)
    # the same checks, named as `bellmax bandit`'s options
    with pytest.raises(ValueError, match=r"^--last 80 is longer than the run \(--steps 50\)"):
        T.check_sizes(2, 50, 80, options=True)
    with pytest.raises(
        ValueError, match=r"^--runs must be >= 1, got 0; pass e\.g\. --runs 2000\.$"
    ):
        T.check_sizes(0, 50, options=True)


def test_keys_and_make_testbed_checks():
    import jax

    key = T.testbed_key(5)
    assert str(jax.random.key_impl(key)) == T.DEFAULT_KEY_IMPL == "philox2x32"
    np.testing.assert_array_equal(jax.random.key_data(key), jax.random.key_data(T.testbed_key(5)))
    env = GaussianBandit(10)
    with pytest.raises(ValueError, match="runs must be >= 1"):
        T.make_testbed(env, runs=0, steps=10)
    with pytest.raises(ValueError, match="last=11 is longer"):
        T.make_testbed(env, runs=1, steps=10, last=11)


def test_an_old_style_key_is_the_typed_threefry_key_of_the_same_data():
    # jax.random.PRNGKey(s) (raw uint32[2] data) was refused here alone; every other
    # key-taking function takes it.
    import jax

    cfg = EpsilonGreedy(epsilon=0.1)
    raw = run_testbed(cfg, runs=4, steps=20, key=jax.random.PRNGKey(3))
    typed = run_testbed(cfg, runs=4, steps=20, key=jax.random.key(3))
    np.testing.assert_array_equal(raw.mean_reward, typed.mean_reward)
    assert raw.mean_reward.shape == (20,)


def test_an_int_for_a_float_parameter_shares_the_float_values_program():
    # mean_offset=4 (an int) was an int32 leaf: a second compiled testbed beside 4.0's,
    # for the same numbers.
    cfg = EpsilonGreedy(epsilon=0.1)
    run = {"runs": 4, "steps": 20, "seed": 1}
    as_float = run_testbed(cfg, env_params=BanditParams(mean_offset=4.0), **run)
    compiled = len(T._COMPILED)
    as_int = run_testbed(cfg, env_params=BanditParams(mean_offset=4), **run)
    assert len(T._COMPILED) == compiled
    np.testing.assert_array_equal(as_int.mean_reward, as_float.mean_reward)
    assert T.traced_params(BanditParams(mean_offset=4)).mean_offset.dtype == np.float32
    assert T.traced_params(BanditParams(max_steps_in_episode=50)).max_steps_in_episode.dtype == (
        np.int32
    )


def test_the_compiled_testbeds_kept_are_bounded(monkeypatch):
    # Every (runs, steps, last) was a compiled testbed kept for the life of the process
    # (~7 MB each: a sweep over the horizon grew without bound); the most recent are kept.
    monkeypatch.setattr(T, "_COMPILED", {})
    monkeypatch.setattr(T, "_COMPILED_KEPT", 2)
    cfg = EpsilonGreedy(epsilon=0.1)
    for steps in (10, 11, 12, 10):
        run_testbed(cfg, runs=2, steps=steps, seed=0)
    assert [k[2] for k in T._COMPILED] == [12, 10]
