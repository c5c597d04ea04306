"""Under JAX's 64-bit mode (`jax.enable_x64`, `JAX_ENABLE_X64=1`), which control engineers
often turn on for a whole script: bellmax's environments stay float32 and draw what they draw
without it, and the jitted loops that crashed on a float32/float64 carry run.

Before: Pendulum-v1's state turned float64 at reset and float32 at its first step (every
deep RL run, MPC, sysid and mbrl on it crashed in `scan`), the bandit testbed's `cond`
branches differed, MCTS's move index became int64, the MPC expert's nominal plan and
`filtered_mpc` started float32 carries for float64 dynamics, and tabular TD scattered float64
updates into float32 tables (a JAX FutureWarning, an error in later JAX releases). The same
seed also gave other resets (CartPole's state drawn in float64).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.vector import make_vector_env

ENVS = ["CartPole-v1", "CartPoleSwingUp-v0", "Pendulum-v1", "PartialPendulum-v0",
        "GaussianBandit-v0", "Tiger-v0", "GamblersProblem-v0"]  # fmt: skip


def _rollout(env_id: str):
    """Reset and 6 random-action steps of a 2-env vector env, jitted: (first obs, states)."""
    venv = make_vector_env(env_id, num_envs=2)

    def run(key):
        obs, st = venv.reset(key)

        def body(carry, k):
            obs, st = carry
            a = jax.vmap(venv.action_space.sample)(jax.random.split(k, 2))
            s = venv.step(k, st, a)
            return (s.obs, s.state), None

        (_, last), _ = jax.lax.scan(body, (obs, st), jax.random.split(key, 6))
        return obs, last

    return jax.jit(run)(jax.random.key(3))


@pytest.mark.parametrize("env_id", ENVS)
def test_environments_keep_their_dtypes_and_draws_under_x64(env_id):
    obs32, state32 = _rollout(env_id)
    with jax.enable_x64(True):
        obs64, state64 = _rollout(env_id)
    # the scan ran (the carry kept its types), the state kept float32 / int32 leaves
    for a, b in zip(jax.tree.leaves(state32), jax.tree.leaves(state64), strict=True):
        assert a.dtype == b.dtype, env_id
    # and the same key drew the same start
    np.testing.assert_array_equal(np.asarray(obs32), np.asarray(obs64))


def test_the_bandit_testbed_mcts_and_tabular_td_run_under_x64():
    from bellmax.bandits.agents import EpsilonGreedy
    from bellmax.bandits.testbed import run_testbed
    from bellmax.games import arena
    from bellmax.games.mcts import make_mcts_agent
    from bellmax.games.tictactoe import make_agent
    from bellmax.tabular.td import QLearningConfig, q_learning

    ref = run_testbed(EpsilonGreedy(epsilon=0.1), runs=4, steps=20, seed=0)
    env, params = bellmax.make("CliffWalking-v0")
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # float64 updates into float32 tables
        res = run_testbed(EpsilonGreedy(epsilon=0.1), runs=4, steps=20, seed=0)
        np.testing.assert_allclose(res.mean_reward, ref.mean_reward, rtol=1e-5)
        mcts = make_mcts_agent(num_simulations=16, seed=0)
        out = arena(mcts, make_agent("random", seed=1), 2, seed=0)
        assert sum(out.values()) >= 2
        q = q_learning(jax.random.key(0), env, QLearningConfig(num_episodes=5), params=params)
        assert q.q.dtype == jnp.float32


def test_the_mpc_expert_and_filtered_mpc_run_under_x64():
    from bellmax.control.mpc import make_mpc
    from bellmax.control.problems import pendulum_swingup
    from bellmax.imitation.nominal import rollout_plan
    from bellmax.pomdp.particles import filtered_mpc

    with jax.enable_x64(True):
        prob = pendulum_swingup(horizon=10)
        plan = rollout_plan(prob, lambda x: jnp.zeros((1,), x.dtype) + 0.5)
        assert plan(np.array([3.0, 0.0])).shape == (10, 1)
        env, params = bellmax.make("PartialPendulum-v0")
        mpc = make_mpc(prob, horizon=10, iterations=1)
        std = tuple(np.asarray(env.obs_std(params)).tolist())
        for f in ("particle", "ekf"):
            r = filtered_mpc(
                mpc, prob.params, jnp.array([0.1, 0.0]), jax.random.key(0), 5,
                observe=env.observe, obs_std=std, process_std=(0.001, 0.01),
                init_std=(0.1, 0.3), num_particles=16, filter=f,
            )  # fmt: skip
            assert np.isfinite(np.asarray(r.states)).all()


def test_local_models_run_under_x64():
    # LQR-FLM's marginals began a float32 carry for float64 local models, and iLQR on the
    # env as its model got float32 states back for float64 ones.
    from bellmax.models.gps import GPSConfig, env_system, ilqr_reference, run_lqr_flm

    with jax.enable_x64(True):
        ref = ilqr_reference("Pendulum-v1", None, 10, max_iterations=3)
        assert ref.X.dtype == jnp.float64 and np.isfinite(float(ref.cost))
        res = run_lqr_flm(
            env_system("Pendulum-v1", horizon=10),
            GPSConfig(iterations=2, samples=2, prior_rollouts=4),
        )
        assert np.isfinite(res.iteration_costs).all()
