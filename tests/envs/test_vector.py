"""Vector environments: auto-reset semantics, episode statistics, the host callback path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs import make
from bellmax.envs.vector import HostCallbackVectorEnv, JaxVectorEnv, make_vector_env


def _random_rollout(venv, steps, seed=0):
    """Random actions for `steps` steps, jitted: (rewards, done, final_obs, obs, ep returns)."""

    def run(key):
        obs, st = venv.reset(key)

        def body(carry, k):
            obs, st = carry
            a = jax.random.randint(k, (venv.num_envs,), 0, venv.action_space.n)
            s = venv.step(k, st, a)
            out = (s.reward, s.done, s.terminated, s.final_obs, obs, s.episode_return, s.obs)
            return (s.obs, s.state), out

        _, out = jax.lax.scan(body, (obs, st), jax.random.split(key, steps))
        return out

    return jax.jit(run)(jax.random.key(seed))


def test_jax_vector_env_auto_resets_and_counts_returns():
    venv = make_vector_env("CartPole-v1", num_envs=3)
    assert isinstance(venv, JaxVectorEnv) and not venv.is_host
    reward, done, terminated, final_obs, obs, ep_ret, next_obs = map(
        np.asarray, _random_rollout(venv, 200)
    )
    assert done.any()
    # CartPole's reward is 1 per step, so a finished episode's return is its length, and the
    # running count restarts after each end.
    for i in range(3):
        ends = np.flatnonzero(done[:, i])
        lengths = np.diff(np.concatenate([[-1], ends]))
        np.testing.assert_allclose(ep_ret[ends, i], lengths)
    # Where an episode ended, the returned obs is a fresh start (|x| <= 0.05), and the final
    # observation is a terminal one (pole or cart out of bounds).
    fresh = np.abs(next_obs[done]).max(axis=-1) <= 0.05
    assert fresh.all()
    fo = final_obs[terminated]
    assert ((np.abs(fo[:, 2]) > 0.2094) | (np.abs(fo[:, 0]) > 2.4)).all()
    # Where none ended, final_obs is the next observation.
    np.testing.assert_array_equal(final_obs[~done], next_obs[~done])


def test_truncation_is_reported_apart_from_termination():
    venv = make_vector_env("CartPole-v1", num_envs=2, max_steps_in_episode=5)
    _, done, terminated, *_ = map(np.asarray, _random_rollout(venv, 12))
    # 5-step episodes: random play rarely fails that fast, so done without terminated occurs.
    assert (done & ~terminated).any()


def test_host_callback_env_runs_gymnasium_inside_jit():
    venv = make_vector_env("gymnasium:CartPole-v1", num_envs=2, seed=3)
    assert isinstance(venv, HostCallbackVectorEnv) and venv.is_host
    reward, done, _, final_obs, obs, ep_ret, next_obs = map(np.asarray, _random_rollout(venv, 100))
    assert reward.shape == (100, 2) and done.any()
    for i in range(2):
        ends = np.flatnonzero(done[:, i])
        np.testing.assert_allclose(ep_ret[ends, i], np.diff(np.concatenate([[-1], ends])))
    np.testing.assert_array_equal(final_obs[~done], next_obs[~done])


def test_environment_objects_and_equality():
    env, params = make("CartPole-v1")
    a = make_vector_env(env, num_envs=4)
    b = JaxVectorEnv(env, params, num_envs=4)
    assert a == b and hash(a) == hash(b)
    assert a != JaxVectorEnv(env, params.replace(tau=0.01), num_envs=4)
    assert a != JaxVectorEnv(env, params, num_envs=2)
    obs, st = a.reset(jax.random.key(0))
    assert obs.shape == (4, 4) and st.episode_return.dtype == jnp.float32


def test_bad_input():
    with pytest.raises(ValueError, match="num_envs"):
        make_vector_env("CartPole-v1", num_envs=0)
    with pytest.raises(TypeError, match="gymnax-API"):
        JaxVectorEnv(object())
    from bellmax.envs import registry

    with pytest.raises(TypeError, match=r"the \(env, params\) pair bellmax.make returns"):
        make_vector_env(registry.make("CartPole-v1"))
    with pytest.raises(ValueError, match="only to bellmax ids"):
        make_vector_env("gymnasium:CartPole-v1", tau=0.1)
    # env_params for a Gymnasium id were dropped without a word (the run used the default
    # physics); another env's params failed later, deep in a step, as an AttributeError
    cartpole, params = registry.make("CartPole-v1")
    heavy = params.replace(masspole=5.0)
    with pytest.raises(ValueError, match=r"env_params apply only to bellmax .* 'gymnasium:Cart"):
        make_vector_env("gymnasium:CartPole-v1", env_params=heavy)
    pendulum = registry.make("Pendulum-v1")[1]
    for env in ("CartPole-v1", cartpole):
        with pytest.raises(TypeError, match="CartPole-v1 needs CartPoleParams, got Pendul"):
            make_vector_env(env, env_params=pendulum)
    assert make_vector_env("CartPole-v1", env_params=heavy).env_params.masspole == 5.0


class _GymnaxStyleCartPole:
    """A gymnax-0.0.x-API environment (5-tuple raw `step_env`, done includes the time limit),
    built from bellmax's CartPole so the expected transitions are known."""

    def __init__(self):
        from bellmax.envs.cartpole import CartPole

        self._env = CartPole()

    @property
    def default_params(self):
        return self._env.default_params.replace(max_steps_in_episode=7)

    def reset_env(self, key, params):
        return self._env.reset_env(key, params)

    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = self._env.step_env(key, state, action, params)
        done = terminated | (state.time >= params.max_steps_in_episode)
        return obs, state, reward, done, info

    def action_space(self, params=None):
        return self._env.action_space(params)

    def observation_space(self, params=None):
        return self._env.observation_space(params)


def test_gymnax_api_env_objects_are_accepted():
    venv = make_vector_env(_GymnaxStyleCartPole(), num_envs=2)
    assert isinstance(venv, JaxVectorEnv)
    reward, done, terminated, *_ = map(np.asarray, _random_rollout(venv, 30, seed=1))
    assert reward.shape == (30, 2) and done.any()
    # gymnax's single `done` is split: ends at the 7-step limit count as truncated.
    assert (done & ~terminated).any()


class _Gymnax1StyleCartPole(_GymnaxStyleCartPole):
    """The same with gymnax 1.x's public API on top: `step` returns
    `(obs, state, reward, terminated, truncated, info)` and resets by itself (the true last
    observation in `info["final_observation"]`); its raw `step_env` leaves out the time
    limit, as gymnax 1.x's do (a vector env that used it would never truncate)."""

    def step_env(self, key, state, action, params):
        return self._env.step_env(key, state, action, params)

    def reset(self, key, params=None):
        return self.reset_env(key, self.default_params if params is None else params)

    def step(self, key, state, action, params=None):
        params = self.default_params if params is None else params
        k_step, k_reset = jax.random.split(key)
        obs_st, st, reward, terminated, info = self.step_env(k_step, state, action, params)
        truncated = st.time >= params.max_steps_in_episode
        obs_re, st_re = self.reset_env(k_reset, params)
        done = terminated | truncated
        st = jax.tree.map(lambda a, b: jnp.where(done, a, b), st_re, st)
        obs = jnp.where(done, obs_re, obs_st)
        info = {**info, "final_observation": obs_st}
        return obs, st, reward, terminated, truncated, info


def test_gymnax_1_api_env_objects_step_through_their_own_step():
    venv = make_vector_env(_Gymnax1StyleCartPole(), num_envs=2)
    reward, done, terminated, final_obs, obs, ep_ret, next_obs = map(
        np.asarray, _random_rollout(venv, 30, seed=1)
    )
    # the 7-step time limit applies (before, gymnax 1.x objects never truncated), and
    # final_obs is the object's own info["final_observation"]
    assert (done & ~terminated).any() and ep_ret[done].max() == 7
    np.testing.assert_array_equal(final_obs[~done], next_obs[~done])
    assert (np.abs(next_obs[done]).max(axis=-1) <= 0.05).all()


def _pendulum_rollout(env, params, steps=7):
    """Zero torque on `env` (raw or wrapped) in a 2-env vector env: (final_obs, done, obs)."""
    venv = JaxVectorEnv(env, params, num_envs=2)

    def run(key):
        obs, st = venv.reset(key)

        def body(carry, k):
            obs, st = carry
            s = venv.step(k, st, jnp.zeros((2, 1), jnp.float32))
            return (s.obs, s.state), (s.final_obs, s.done, s.obs)

        return jax.lax.scan(body, (obs, st), jax.random.split(key, steps))[1]

    return tuple(map(np.asarray, jax.jit(run)(jax.random.key(0))))


def test_an_auto_resetting_bellmax_env_keeps_the_true_final_observation():
    # The README's training stack, EpisodeStatistics(AutoReset(env)), given to a vector env:
    # the vector env used to call its step as if raw, so at a time limit `final_obs` (what
    # every learner bootstraps from) was already the next episode's first observation. It
    # now takes the wrapper's info["final_observation"]: the same as the raw env's, since
    # Pendulum's step is deterministic and both start from the same reset.
    from bellmax.envs import AutoReset, EpisodeStatistics

    env, params = make("Pendulum-v1", max_steps_in_episode=3)
    raw_final, raw_done, raw_obs = _pendulum_rollout(env, params)
    wrapped = EpisodeStatistics(AutoReset(env))
    assert wrapped.auto_resets and JaxVectorEnv(wrapped, params)._auto_resets
    final, done, obs = _pendulum_rollout(wrapped, params)
    np.testing.assert_array_equal(done, raw_done)
    assert done[2].all()
    np.testing.assert_allclose(final[:3], raw_final[:3], rtol=1e-6, atol=1e-6)
    # The observation after the end is a fresh start, not the last one.
    assert np.abs(obs[2] - final[2]).max() > 1e-3


def test_a_wrapper_above_auto_reset_that_drops_the_final_observation_is_refused():
    from bellmax.envs import AutoReset
    from bellmax.envs.environment import Wrapper

    class DropInfo(Wrapper):
        def _step(self, key, state, action, params=None):
            obs, st, r, term, trunc, _ = self._env.step(key, state, action, params)
            return obs, st, r, term, trunc, {}

        def _reset(self, key, params=None):
            return self._env.reset(key, params)

    env, params = make("Pendulum-v1", max_steps_in_episode=3)
    with pytest.raises(ValueError, match="final_observation"):
        _pendulum_rollout(DropInfo(AutoReset(env)), params)


def test_wrappers_pass_on_auto_resets_and_num_players():
    # Class attributes of the base Environment were found before the wrapper delegated:
    # EpisodeStatistics(AutoReset(env)).auto_resets was False, and a wrapped two-player game
    # counted one player.
    from bellmax.envs import AutoReset, EpisodeStatistics, TimeLimit

    env, _ = make("CartPole-v1")
    assert not EpisodeStatistics(env).auto_resets
    assert EpisodeStatistics(AutoReset(env)).auto_resets
    assert TimeLimit(EpisodeStatistics(AutoReset(env)), 10).auto_resets
    game, _ = make("TicTacToe-v0")
    assert EpisodeStatistics(game).num_players == 2
    assert make_vector_env(EpisodeStatistics(game), num_envs=2).num_players == 2


def test_a_step_that_gives_a_reward_of_shape_one_is_refused_by_name():
    # A custom environment whose step returned `reward` (or a flag) of shape [1] broadcast
    # `[N] + [N, 1]` to `[N, N]` episode returns and failed deep in JAX (or, for a flag,
    # ran with wrong statistics); it is now named at trace time, with the fix.
    from bellmax.envs.environment import Wrapper

    class Shaped(Wrapper):
        def __init__(self, env, name):
            super().__init__(env)
            self.shaped = name

        def _step(self, key, state, action, params=None):
            obs, st, r, term, trunc, info = self._env.step(key, state, action, params)
            out = {"reward": r, "terminated": term, "truncated": trunc}
            out[self.shaped] = jnp.reshape(out[self.shaped], (1,))
            return obs, st, out["reward"], out["terminated"], out["truncated"], info

        def _reset(self, key, params=None):
            return self._env.reset(key, params)

    for name in ("reward", "terminated", "truncated"):
        env, _ = make("CartPole-v1")
        venv = JaxVectorEnv(Shaped(env, name), num_envs=3)
        with pytest.raises(ValueError, match=rf"a {name} of shape \(1,\).*{name}.squeeze\(\)"):
            _random_rollout(venv, 2)
    venv = JaxVectorEnv(Shaped(make("CartPole-v1")[0], "reward"), num_envs=1)
    with pytest.raises(ValueError, match="reward of shape"):  # (one env broadcast silently)
        _random_rollout(venv, 2)
