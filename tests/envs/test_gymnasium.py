"""The Gymnasium bridge: parity with Gymnasium's own CartPole/Pendulum, bellmax envs as
`gymnasium.Env`, Gymnasium ids as host vector envs, toy-text tables as `TabularMDP`s."""

import importlib.util
import subprocess
import sys
import textwrap
import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium import spaces as gym_spaces
from gymnasium.utils.env_checker import check_env, data_equivalence

import bellmax
from bellmax.core.errors import BellmaxError, InvalidMDPError, UnknownNameError
from bellmax.envs import AutoReset, registry, spaces
from bellmax.envs.cartpole import CartPoleState
from bellmax.envs.gymnasium import (
    BellmaxGymnasiumEnv,
    EnvDependencyError,
    EnvModuleImportError,
    HostVectorEnv,
    _to_host,
    check_env_id,
    from_gymnasium_space,
    make_host_vector_env,
    rollout_host,
    tabular_mdp_from_gymnasium,
    to_gymnasium,
    to_gymnasium_space,
)
from bellmax.envs.pendulum import PendulumState

# ---------------------------------------------------------------------- shared compiled fns


@pytest.fixture(scope="module")
def cartpole():
    env, params = bellmax.make("CartPole-v1")  # its own object: vmapped, compiled once here
    step = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, None)))
    return env, params, step


@pytest.fixture(scope="module")
def pendulum():
    env, params = bellmax.make("Pendulum-v1")
    step = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, None)))
    return env, params, step


def _cartpole_state(v, time):
    v = np.asarray(v, np.float32)
    return CartPoleState(
        x=v[..., 0], x_dot=v[..., 1], theta=v[..., 2], theta_dot=v[..., 3], time=time
    )


def _pendulum_state(v, time):
    v = np.asarray(v, np.float32)
    return PendulumState(
        theta=v[..., 0], theta_dot=v[..., 1], last_u=np.zeros_like(v[..., 0]), time=time
    )


# ---------------------------------------------------------------------- parity (tier 3)


def test_cartpole_one_step_parity_from_random_states(cartpole):
    _, params, step = cartpole
    rng = np.random.default_rng(0)
    n = 200
    lim = np.array([2.4, 2.0, params.theta_threshold_radians, 2.5])
    states = rng.uniform(-lim, lim, size=(n, 4)).astype(np.float32)
    actions = rng.integers(0, 2, size=n)
    obs, _, reward, term, trunc, _ = step(
        jax.random.key(0), _cartpole_state(states, jnp.zeros(n, jnp.int32)), actions, params
    )
    gym_env = gymnasium.make("CartPole-v1").unwrapped
    gym_env.reset(seed=0)
    g_obs, g_rew, g_term = [], [], []
    for s, a in zip(states, actions, strict=True):
        gym_env.state = s.astype(np.float64)
        gym_env.steps_beyond_terminated = None
        o, r, t, _, _ = gym_env.step(int(a))
        g_obs.append(o), g_rew.append(r), g_term.append(t)
    np.testing.assert_allclose(np.asarray(obs), np.array(g_obs), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(np.asarray(reward), np.array(g_rew, np.float32))
    np.testing.assert_array_equal(np.asarray(term), np.array(g_term))
    assert not np.asarray(trunc).any()
    # the sample must exercise both outcomes, or the flag comparison proves little
    assert 10 < np.sum(g_term) < n - 10


def test_pendulum_one_step_parity_from_random_states(pendulum):
    _, params, step = pendulum
    rng = np.random.default_rng(1)
    n = 200
    states = rng.uniform([-2 * np.pi, -8.0], [2 * np.pi, 8.0], size=(n, 2)).astype(np.float32)
    torques = rng.uniform(-3.0, 3.0, size=(n, 1)).astype(np.float32)  # beyond the bound too
    obs, _, reward, term, _, _ = step(
        jax.random.key(0), _pendulum_state(states, jnp.zeros(n, jnp.int32)), torques, params
    )
    gym_env = gymnasium.make("Pendulum-v1").unwrapped
    gym_env.reset(seed=0)
    g_obs, g_rew = [], []
    for s, u in zip(states, torques, strict=True):
        gym_env.state = s.astype(np.float64)
        o, r, t, _, _ = gym_env.step(u)
        assert t is False
        g_obs.append(o), g_rew.append(r)
    np.testing.assert_allclose(np.asarray(obs), np.array(g_obs), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(reward), np.array(g_rew), rtol=1e-5, atol=1e-5)
    assert not np.asarray(term).any()


def _lockstep_episode(env_id, to_state, policy, seed):
    """Step bellmax (through `to_gymnasium`) and Gymnasium together, from Gymnasium's state.

    Before each step the bellmax state is set to Gymnasium's (float64 -> float32) with
    bellmax's own step count, so rounding cannot accumulate and the flags are compared on
    the same trajectory.
    """
    ours = to_gymnasium(env_id)
    ours.reset(seed=seed)
    theirs = gymnasium.make(env_id)  # with Gymnasium's TimeLimit
    obs, _ = theirs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    time = np.int32(0)
    seen = {"b_obs": [], "obs": [], "b_rew": [], "rew": []}
    while True:
        ours.state = to_state(theirs.unwrapped.state, time)
        a = policy(obs, rng)
        b_obs, b_rew, b_term, b_trunc, _ = ours.step(a)
        obs, rew, term, trunc, _ = theirs.step(a)
        time = ours.state.time
        for k, v in (("b_obs", b_obs), ("obs", obs), ("b_rew", b_rew), ("rew", rew)):
            seen[k].append(v)
        assert (b_term, b_trunc) == (term, trunc), f"flags differ at step {int(time)}"
        if term or trunc:
            break
    np.testing.assert_allclose(np.array(seen["b_obs"]), np.array(seen["obs"]), atol=1e-5, rtol=0)
    np.testing.assert_allclose(seen["b_rew"], seen["rew"], rtol=1e-5, atol=1e-5)
    return int(time), term, trunc


def test_cartpole_full_episode_lockstep_truncates_at_500():
    def policy(obs, _rng):  # a linear controller that keeps the pole up
        return int(obs[2] + 0.5 * obs[3] + 0.02 * obs[0] + 0.1 * obs[1] > 0)

    assert _lockstep_episode("CartPole-v1", _cartpole_state, policy, seed=3) == (500, False, True)


def test_cartpole_lockstep_terminates_identically():
    t, term, trunc = _lockstep_episode(
        "CartPole-v1", _cartpole_state, lambda _o, rng: int(rng.integers(2)), seed=4
    )
    assert term and not trunc and t < 100


def test_pendulum_full_episode_lockstep_truncates_at_200():
    def policy(_obs, rng):
        return rng.uniform(-2.0, 2.0, size=(1,)).astype(np.float32)

    assert _lockstep_episode("Pendulum-v1", _pendulum_state, policy, seed=5) == (200, False, True)


# ---------------------------------------------------------------------- bellmax -> gymnasium

#: check_env warnings that are advice, not API violations.
_BENIGN = (
    "we recommend using a symmetric and normalized space",
    "maximum and minimum values are equal",
    "minimum value is -infinity",
    "maximum value is infinity",
)


@pytest.mark.parametrize("env_id", registry.registered())
def test_check_env_passes_on_every_registered_env(env_id):
    env = to_gymnasium(env_id, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    problems = [str(w.message) for w in caught if not any(b in str(w.message) for b in _BENIGN)]
    assert not problems, problems
    # seeded resets reproduce (check_env only compares observations for envs with a spec)
    a = env.reset(seed=11)[0]
    act = env.action_space.sample()
    step_a = env.step(act)
    b = env.reset(seed=11)[0]
    step_b = env.step(act)
    assert data_equivalence(a, b, exact=True)
    assert data_equivalence(step_a, step_b, exact=True)


def test_to_gymnasium_seeding_and_types():
    env = to_gymnasium("CartPole-v1", seed=7)
    first, info = env.reset()
    assert info == {}
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.float32 and first.flags.writeable
    _, reward, term, trunc, info = env.step(np.int64(1))
    assert type(reward) is float and type(term) is bool and type(trunc) is bool
    assert env.state.time == 1
    assert isinstance(env, BellmaxGymnasiumEnv) and "CartPole-v1" in repr(env)


def test_to_gymnasium_runs_an_episode_to_truncation_with_given_params():
    params = bellmax.make("Pendulum-v1", max_steps_in_episode=7)[1]
    env = to_gymnasium("Pendulum-v1", params)  # same compiled functions, other constants
    env.reset(seed=0)
    flags = [env.step(np.array([0.5], np.float32))[3] for _ in range(7)]
    assert flags == [False] * 6 + [True]
    # a scalar torque is accepted for a (1,)-shaped Box
    assert env.step(0.5)[0].shape == (3,)


def test_to_gymnasium_ansi_render():
    env = to_gymnasium("CartPole-v1", render_mode="ansi")
    env.reset(seed=0)
    env.step(0)
    text = env.render()
    assert text.startswith("CartPole-v1 t=1 obs=[")
    assert to_gymnasium("CartPole-v1").render() is None


_RENDERABLE = [
    "CartPole-v1",
    "CartPoleSwingUp-v0",
    "Pendulum-v1",
    "GridWorld4x4-v0",
    "GridWorld5x5-v0",
    "CliffWalking-v0",
    "WindyGridworld-v0",
]


def _check_env_problems(env, **kwargs):
    """`check_env`'s warnings, less the benign ones."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, **kwargs)
    return [str(w.message) for w in caught if not any(b in str(w.message) for b in _BENIGN)]


@pytest.mark.parametrize("env_id", _RENDERABLE)
def test_rgb_array_render_passes_check_env(env_id):
    env = to_gymnasium(env_id, render_mode="rgb_array", seed=0)
    assert env.metadata["render_modes"] == ["ansi", "rgb_array"]
    assert env.metadata["render_fps"] > 0
    problems = _check_env_problems(env)  # render check included
    # without a spec (gymnasium.make's test below has one) the other modes are not re-made
    assert [p for p in problems if "alternative render modes" not in p] == []
    env.reset(seed=1)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    # the frame follows the state
    before = frame
    for _ in range(4):
        env.step(env.action_space.sample())
    if env_id.startswith(("Grid", "Cliff", "Windy")) and env.state.pos == 0:
        return
    assert not np.array_equal(before, env.render())


def test_rgb_array_render_modes_and_errors():
    env = to_gymnasium("GaussianBandit-v0")
    assert env.metadata["render_modes"] == ["ansi"]
    with pytest.raises(ValueError, match=r"GaussianBandit-v0 has no frames.*CartPole-v1"):
        to_gymnasium("GaussianBandit-v0", render_mode="rgb_array")
    with pytest.raises(ValueError, match=r"'human' is not supported.*\['ansi', 'rgb_array'\]"):
        to_gymnasium("Pendulum-v1", render_mode="human")
    with pytest.raises(gymnasium.error.ResetNeeded):
        to_gymnasium("CartPole-v1", render_mode="rgb_array").render()


# ---------------------------------------------------------------------- gymnasium.make


def test_every_bellmax_id_is_registered_with_gymnasium():
    import bellmax.envs.gymnasium as bridge

    bridge.register_gymnasium_envs()  # ids registered with bellmax since the import
    for env_id in registry.registered():
        spec = gymnasium.spec(f"bellmax/{env_id}")
        assert spec.kwargs == {"bellmax_id": env_id}
        limit = bellmax.make(env_id)[0].default_params.max_steps_in_episode
        assert spec.max_episode_steps == limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Overriding environment" warning
        assert bridge.register_gymnasium_envs() == []


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "CliffWalking-v0"])
def test_gymnasium_make_passes_check_env_with_rgb_array(env_id):
    env = gymnasium.make(f"bellmax/{env_id}", render_mode="rgb_array")
    assert isinstance(env.unwrapped, BellmaxGymnasiumEnv)
    assert not _check_env_problems(env.unwrapped)  # with a spec: re-made per render mode
    env.reset(seed=0)
    assert env.render().dtype == np.uint8
    assert not _check_env_problems(gymnasium.make(f"bellmax/{env_id}").unwrapped)


def test_gymnasium_make_matches_bellmax_and_overrides_params():
    env = gymnasium.make("bellmax/CartPole-v1", masspole=0.2, length=0.6)
    assert env.unwrapped.params.masspole == 0.2 and env.unwrapped.params.length == 0.6
    ref = to_gymnasium("CartPole-v1", bellmax.make("CartPole-v1", masspole=0.2, length=0.6)[1])
    a, _ = env.reset(seed=3)
    b, _ = ref.reset(seed=3)
    np.testing.assert_array_equal(a, b)
    for action in [0, 1, 1, 0, 1]:
        np.testing.assert_array_equal(env.step(action)[0], ref.step(action)[0])


def test_gymnasium_make_time_limit():
    env = gymnasium.make("bellmax/Pendulum-v1")
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(200)]
    assert flags == [False] * 199 + [True]  # Pendulum-v1's 200 steps, as Gymnasium's
    env = gymnasium.make("bellmax/Pendulum-v1", max_episode_steps=250)  # beyond the default
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(250)]
    assert flags == [False] * 249 + [True]


def test_gymnasium_make_errors():
    with pytest.raises(UnknownNameError, match=r"'masspol'.*Did you mean: 'masspole'"):
        gymnasium.make("bellmax/CartPole-v1", masspol=0.2)
    with pytest.raises(ValueError, match="masspole must be a finite number > 0"):
        gymnasium.make("bellmax/CartPole-v1", masspole=-1.0)
    with pytest.raises(ValueError, match="pass max_episode_steps=10 instead"):
        gymnasium.make("bellmax/CartPole-v1", max_steps_in_episode=10)
    with pytest.raises(ValueError, match=r"render_mode='human' is not supported by CartPole-v1"):
        gymnasium.make("bellmax/CartPole-v1", render_mode="human")
    with pytest.raises(ValueError, match="has no frames"):
        gymnasium.make("bellmax/TicTacToe-v0", render_mode="rgb_array")


def test_gymnasium_make_module_prefix_imports_the_bridge():
    code = textwrap.dedent(
        """
        import gymnasium
        env = gymnasium.make("bellmax.envs.gymnasium:bellmax/CartPole-v1", render_mode="rgb_array")
        env.reset(seed=0)
        assert env.render().shape == (400, 600, 3)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_to_host_converts_info():
    out = _to_host({"a": jnp.asarray(1.5), "b": jnp.arange(3), "c": {"d": jnp.asarray(True)}})
    assert out["a"] == 1.5 and type(out["a"]) is float
    assert isinstance(out["b"], np.ndarray) and out["b"].tolist() == [0, 1, 2]
    assert out["c"]["d"] is True


def test_to_gymnasium_errors():
    with pytest.raises(TypeError, match=r"env id .* or an Environment"):
        to_gymnasium(123)
    with pytest.raises(UnknownNameError, match="CartPole-v1"):
        to_gymnasium("CartPol-v1")
    env, _ = bellmax.make("CartPole-v1")
    with pytest.raises(ValueError, match="AutoReset"):
        to_gymnasium(AutoReset(env))
    with pytest.raises(ValueError, match="render_mode='human'"):
        to_gymnasium("CartPole-v1", render_mode="human")
    g = to_gymnasium("CartPole-v1")
    with pytest.raises(gymnasium.error.ResetNeeded):
        g.step(0)
    with pytest.raises(gymnasium.error.ResetNeeded):
        to_gymnasium("CartPole-v1", render_mode="ansi").render()
    g.reset(seed=0)
    with pytest.raises(ValueError, match=r"action 2 is out of range: the valid actions are"):
        g.step(2)
    with pytest.raises(ValueError, match=r"must be one integer \(shape \(\)\).*got shape \(2,\)"):
        g.step(np.array([0, 1]))
    # as strict as the environment's own step and Gymnasium's Discrete.contains: these
    # stepped as action 1 before
    for action in (1.0, True):
        with pytest.raises(TypeError, match=r"actions of Discrete\(2\) are integers"):
            g.step(action)
    with pytest.raises(ValueError, match=r"got shape \(1,\)"):
        g.step(np.array([1]))
    g.step(np.int64(1))  # an integer scalar of any kind is an action
    g.step(np.array(0))


# ---------------------------------------------------------------------- spaces


def test_space_round_trips():
    d = to_gymnasium_space(spaces.Discrete(5))
    assert d == gym_spaces.Discrete(5)
    assert isinstance(from_gymnasium_space(d), spaces.Discrete) and from_gymnasium_space(d).n == 5
    box = spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 3.0]))
    g = to_gymnasium_space(box)
    assert g.dtype == np.float32 and g.shape == (2,)
    np.testing.assert_array_equal(g.low, box.low)
    np.testing.assert_array_equal(g.high, box.high)
    back = from_gymnasium_space(g)
    np.testing.assert_array_equal(back.high, box.high)
    md = to_gymnasium_space(spaces.MultiDiscrete([3, 4]))
    assert md == gym_spaces.MultiDiscrete([3, 4])
    assert from_gymnasium_space(md).nvec.tolist() == [3, 4]


def test_from_gymnasium_space_tuple_and_dtypes():
    blackjack = gymnasium.make("Blackjack-v1").observation_space
    md = from_gymnasium_space(blackjack)
    assert isinstance(md, spaces.MultiDiscrete) and md.nvec.tolist() == [32, 11, 2]
    b64 = from_gymnasium_space(gym_spaces.Box(-1.0, 1.0, (2,), np.float64))
    assert np.dtype(b64.dtype) == np.float32
    shifted = from_gymnasium_space(gym_spaces.Discrete(3, start=-1))
    assert shifted.n == 3


def test_space_conversion_errors():
    with pytest.raises(TypeError, match="Dict"):
        from_gymnasium_space(gym_spaces.Dict({"a": gym_spaces.Discrete(2)}))
    with pytest.raises(TypeError, match="Tuple"):
        from_gymnasium_space(gym_spaces.Tuple((gym_spaces.Box(0, 1, (1,)),)))
    with pytest.raises(TypeError, match="1-D"):
        from_gymnasium_space(gym_spaces.MultiDiscrete([[2, 3], [4, 5]]))
    with pytest.raises(TypeError, match="Discrete, Box and MultiDiscrete"):
        to_gymnasium_space(spaces.Space())


# ---------------------------------------------------------------------- gymnasium -> host


def test_host_vector_env_cartpole_final_observation():
    vec = make_host_vector_env("CartPole-v1", num_envs=4, seed=0)
    assert isinstance(vec, HostVectorEnv) and vec.env_id == "CartPole-v1"
    assert isinstance(vec.observation_space, spaces.Box) and vec.observation_space.shape == (4,)
    assert isinstance(vec.action_space, spaces.Discrete) and vec.action_space.n == 2
    obs = vec.reset()
    assert obs.shape == (4, 4) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs, make_host_vector_env("CartPole-v1", num_envs=4).reset())
    ended = 0
    for _ in range(60):
        prev = obs
        obs, reward, term, trunc, info = vec.step(np.ones(4, np.int32))  # always push right
        assert reward.dtype == np.float32 and reward.shape == (4,)
        final = info["final_observation"]
        np.testing.assert_array_equal(final[~term], obs[~term])
        for i in np.flatnonzero(term):
            ended += 1
            # the true last observation is past a threshold; the returned one is a fresh start
            assert abs(final[i, 2]) > 0.2094 or abs(final[i, 0]) > 2.4
            assert np.all(np.abs(obs[i]) <= 0.05)
            # and it follows from the previous observation by one step of the physics
            assert np.abs(final[i] - prev[i]).max() < 0.5
        np.testing.assert_array_equal(info["_final_observation"], term | trunc)
        assert np.all(info["episode_length"][term] > 0)
    assert ended >= 4
    vec.close()


def test_host_vector_env_truncation_and_episode_statistics():
    # LEFT in the top-left corner never moves: the episode is cut by the 100-step TimeLimit
    vec = make_host_vector_env("FrozenLake-v1", num_envs=2, seed=1, is_slippery=False)
    obs = vec.reset()
    assert obs.tolist() == [0, 0] and isinstance(vec.observation_space, spaces.Discrete)
    for t in range(1, 101):
        obs, _, term, trunc, info = vec.step(np.zeros(2, np.int32))
        assert not term.any()
        assert trunc.all() == (t == 100)
    assert info["episode_length"].tolist() == [100, 100]
    assert info["final_observation"].tolist() == [0, 0]
    assert info["returned_episode"].all()


def test_host_vector_env_blackjack_tuple_observations():
    vec = make_host_vector_env("Blackjack-v1", num_envs=3, seed=0)
    obs = vec.reset()
    assert obs.shape == (3, 3) and obs.dtype == np.int32
    for _ in range(10):
        obs, _, _, _, info = vec.step(vec.sample_actions())
        assert np.all(obs < vec.observation_space.nvec)
        assert np.all(info["final_observation"] < vec.observation_space.nvec)


def test_host_vector_env_serves_bellmax_only_ids():
    vec = make_host_vector_env("CartPoleSwingUp-v0", num_envs=2, seed=0, max_steps_in_episode=3)
    vec.reset()
    for _ in range(3):
        _, _, _, trunc, _ = vec.step(np.zeros((2, 1), np.float32))
    assert trunc.all()


def test_module_colon_env_id(tmp_path, monkeypatch):
    (tmp_path / "bellmax_gymtest_mod.py").write_text(
        textwrap.dedent(
            """
            import gymnasium
            import numpy as np

            class Line(gymnasium.Env):
                # a walk on 1..5 (Discrete with start=1); action 1 (start=0) moves right
                observation_space = gymnasium.spaces.Discrete(5, start=1)
                action_space = gymnasium.spaces.Discrete(2)

                def reset(self, *, seed=None, options=None):
                    super().reset(seed=seed)
                    self.pos = 1
                    return self.pos, {}

                def step(self, action):
                    self.pos = min(self.pos + int(action), 5)
                    return self.pos, 1.0, self.pos == 5, False, {}

            gymnasium.register("BellmaxTestLine-v0", entry_point=Line, max_episode_steps=50)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    vec = make_host_vector_env("bellmax_gymtest_mod:BellmaxTestLine-v0", num_envs=1, seed=0)
    assert vec.reset().tolist() == [0]  # shifted to count from 0
    seen = [vec.step(np.ones(1, np.int32)) for _ in range(4)]
    assert [int(s[0][0]) for s in seen[:3]] == [1, 2, 3]
    obs, _, term, _, info = seen[3]
    assert term[0] and info["final_observation"].tolist() == [4] and obs.tolist() == [0]
    # resolve_env() hands non-bellmax ids to the bridge
    made = registry.resolve_env("gymnasium:CartPole-v1", num_envs=2)
    assert made.is_host and isinstance(made.host, HostVectorEnv) and made.env is None
    made.host.close()


def test_rollout_host_records_true_next_observations():
    vec = make_host_vector_env("CartPole-v1", num_envs=3, seed=2)
    out = rollout_host(vec, lambda o: np.ones(len(o), np.int64), 40)
    tr = out.trajectory
    assert tr.obs.shape == (40, 3, 4) and tr.action.shape == (40, 3)
    done = tr.terminated | tr.truncated
    np.testing.assert_array_equal(tr.next_obs[:-1][~done[:-1]], tr.obs[1:][~done[:-1]])
    assert done.sum() == out.episode_returns.size > 0
    np.testing.assert_array_equal(out.episode_returns, out.episode_lengths)  # +1 per step
    # a second call continues where the first stopped
    more = rollout_host(vec, lambda o: np.zeros(len(o), np.int64), 1)
    np.testing.assert_array_equal(more.trajectory.obs[0][~done[-1]], tr.next_obs[-1][~done[-1]])


def test_q_learning_through_host_vector_env_reaches_the_goal():
    # Tabular Q-learning (Sutton & Barto 6.5) on non-slippery FrozenLake through the host path.
    vec = make_host_vector_env("FrozenLake-v1", num_envs=8, seed=0, is_slippery=False)
    nS, nA = vec.observation_space.n, vec.action_space.n
    q = np.zeros((nS, nA))
    rng = np.random.default_rng(0)
    obs = vec.reset()
    random_returns = []
    for _ in range(800):
        greedy = (q[obs] + 1e-9 * rng.random((8, nA))).argmax(axis=1)  # random tie-breaks
        explore = rng.random(8) < 0.3
        action = np.where(explore, rng.integers(0, nA, 8), greedy)
        nxt, reward, term, _, info = vec.step(action)
        target = reward + 0.95 * (1.0 - term) * q[info["final_observation"]].max(axis=1)
        for i in range(8):
            q[obs[i], action[i]] += 0.5 * (target[i] - q[obs[i], action[i]])
        obs = nxt
    # the random baseline through the same path
    base = rollout_host(
        make_host_vector_env("FrozenLake-v1", num_envs=8, seed=1, is_slippery=False),
        lambda o: rng.integers(0, nA, len(o)),
        300,
    )
    random_returns = base.episode_returns
    assert random_returns.size > 50 and random_returns.mean() < 0.1
    # the greedy policy reaches the goal on its first episode
    test = make_host_vector_env("FrozenLake-v1", num_envs=1, seed=5, is_slippery=False)
    out = rollout_host(test, lambda o: q[o].argmax(axis=1), 6)
    assert out.episode_returns.tolist() == [1.0]


@pytest.mark.parametrize(
    ("env_id", "own_limit"), [("Pendulum-v1", 200), ("CartPoleSwingUp-v0", 500)]
)
def test_host_vector_env_caps_every_episode(env_id, own_limit):
    """`max_episode_steps` truncates every episode there, Gymnasium's ids and bellmax-only ids
    alike; a cap above the env's own time limit leaves that limit in force."""
    vec = make_host_vector_env(env_id, num_envs=2, seed=0, max_episode_steps=7)
    vec.reset()
    lengths = []
    for _ in range(21):
        _, _, term, trunc, info = vec.step(vec.sample_actions())
        assert not term.any()
        lengths += info["episode_length"][info["returned_episode"]].tolist()
    assert lengths == [7] * 6
    vec = make_host_vector_env(env_id, num_envs=1, seed=0, max_episode_steps=own_limit + 50)
    vec.reset()
    for t in range(1, own_limit + 1):  # no force: neither system can terminate
        _, _, term, trunc, _ = vec.step(np.zeros((1, 1), np.float32))
        assert not term[0] and trunc[0] == (t == own_limit)
    with pytest.raises(ValueError, match="max_episode_steps must be an int >= 1"):
        make_host_vector_env(env_id, max_episode_steps=0)
    with pytest.raises(TypeError, match="max_episode_steps must be an int"):
        make_host_vector_env(env_id, max_episode_steps=10.0)


def _missing(module):
    return importlib.util.find_spec(module) is None


@pytest.mark.parametrize(
    ("env_id", "module", "extra"),
    [
        ("LunarLander-v3", "Box2D", "box2d"),
        ("gymnasium:CarRacing-v3", "Box2D", "box2d"),
        ("HalfCheetah-v5", "mujoco", "mujoco"),
    ],
)
def test_missing_optional_dependency_names_the_extra(env_id, module, extra):
    if not _missing(module):
        pytest.skip(f"{module} is installed")
    with pytest.raises(EnvDependencyError) as info:
        make_host_vector_env(env_id)
    message = str(info.value)
    assert f'pip install "gymnasium[{extra}]"' in message and "\n" not in message
    assert isinstance(info.value, ImportError) and isinstance(info.value, BellmaxError)


@pytest.mark.parametrize(
    ("env_id", "want"),
    [
        ("Cartpole-v1", "Did you mean: 'CartPole-v1'?"),  # bellmax's id, not phys2d/, v0
        ("Pendulum", "Did you mean: 'Pendulum-v1', 'PartialPendulum-v0'?"),
        ("gymnasium:Cartpole-v1", "Did you mean: 'gymnasium:CartPole-v1'?"),  # prefix kept
        ("gymnasium:CartPoleSwingUp-v0", "Did you mean: 'CartPoleSwingUp-v0'?"),  # bellmax's
        ("FrozenLak-v1", "Did you mean: 'FrozenLake-v1', 'FrozenLake8x8-v1'?"),  # Gymnasium's
    ],
)
def test_unknown_id_suggestions_the_caller_can_use(env_id, want):
    # check_env_id (the CLI's --env) and resolve_env (make_train, `bellmax train`) share
    # the registry's one suggestion function with bellmax.make
    for resolve in (check_env_id, registry.resolve_env):
        with pytest.raises(UnknownNameError) as info:
            resolve(env_id)
        text = str(info.value)
        assert want in text, text
        assert "phys2d/" not in text and "bellmax/" not in text
    if ":" not in env_id and env_id != "FrozenLak-v1":  # the same words as bellmax.make's
        with pytest.raises(UnknownNameError, match=want.replace("?", r"\?")):
            bellmax.make(env_id)


def test_check_env_id():
    check_env_id("CartPoleSwingUp-v0")  # bellmax only
    check_env_id("gymnasium:CartPole-v1")
    check_env_id("LunarLander-v3")  # known, even if Box2D is missing: nothing is made
    with pytest.raises(UnknownNameError, match="Did you mean: 'CartPole-v1'"):
        check_env_id("CartPol-v1")
    with pytest.raises(EnvModuleImportError):
        check_env_id("nosuchmodule:Foo-v0")


def test_host_vector_env_errors():
    with pytest.raises(UnknownNameError) as info:
        make_host_vector_env("CartPoleSwingUp-v1")
    assert "CartPoleSwingUp-v0" in str(info.value)  # bellmax's registry
    with pytest.raises(UnknownNameError) as info:
        make_host_vector_env("FrozenLak-v1")
    assert "FrozenLake-v1" in str(info.value)  # Gymnasium's registry
    with pytest.raises(UnknownNameError, match="Taxi-v4"):
        registry.resolve_env("Taxi-v9")
    with pytest.raises(EnvModuleImportError, match="'nosuchmodule'") as info:
        make_host_vector_env("nosuchmodule:Foo-v0")
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="module:EnvName-v0"):
        make_host_vector_env(":Foo-v0")
    with pytest.raises(TypeError, match="env_id must be a string"):
        make_host_vector_env(3)
    with pytest.raises(ValueError, match="num_envs must be an int >= 1"):
        make_host_vector_env("CartPole-v1", num_envs=0)
    with pytest.raises(TypeError, match="num_envs must be an int"):
        make_host_vector_env("CartPole-v1", num_envs="2")
    vec = make_host_vector_env("CartPole-v1", num_envs=2)
    with pytest.raises(gymnasium.error.ResetNeeded):
        vec.step(np.zeros(2, np.int32))
    vec.reset()
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        vec.step(np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="num_steps must be >= 1"):
        rollout_host(vec, lambda o: np.zeros(2), 0)


# ---------------------------------------------------------------------- toy-text tables


def _value_iteration(mdp, iters=500):
    P, R = mdp.dense_P(), np.asarray(mdp.R)
    v = np.zeros(mdp.num_states)
    for _ in range(iters):
        q = R + mdp.gamma * P @ v
        v = q.max(axis=1)
    return v, q.argmax(axis=1)


@pytest.mark.parametrize("slippery", [False, True])
def test_frozenlake_table_converts(slippery):
    mdp = tabular_mdp_from_gymnasium("FrozenLake-v1", is_slippery=slippery)
    desc = gymnasium.make("FrozenLake-v1").unwrapped.desc.ravel()
    assert mdp.shape == (16, 4) and not mdp.is_sparse and mdp.name == "FrozenLake-v1"
    np.testing.assert_array_equal(mdp.terminal, np.isin(desc, [b"H", b"G"]))
    np.testing.assert_array_equal(mdp.initial, (desc == b"S").astype(float))
    P = mdp.dense_P()
    goal = int(np.flatnonzero(desc == b"G")[0])
    live = ~mdp.terminal
    # the only reward is 1 for entering the goal, so R is the probability of entering it
    np.testing.assert_allclose(np.asarray(mdp.R)[live], P[live][:, :, goal])
    for s in np.flatnonzero(mdp.terminal):  # absorbing, no reward
        np.testing.assert_array_equal(P[s, :, s], 1.0)
        np.testing.assert_array_equal(np.asarray(mdp.R)[s], 0.0)
    sparse = tabular_mdp_from_gymnasium("FrozenLake-v1", is_slippery=slippery, sparse=True)
    assert sparse.is_sparse
    np.testing.assert_allclose(sparse.dense_P(), P)


def test_frozenlake_value_iteration_policy_reaches_goal_when_not_slippery():
    mdp = tabular_mdp_from_gymnasium("FrozenLake-v1", gamma=0.9, is_slippery=False)
    v, policy = _value_iteration(mdp, iters=50)
    assert v[0] == pytest.approx(0.9**5)  # six moves, reward on the sixth
    env = gymnasium.make("FrozenLake-v1", is_slippery=False)
    s, _ = env.reset(seed=0)
    for _ in range(6):
        s, r, term, _, _ = env.step(int(policy[s]))
    assert (r, term) == (1.0, True)


def test_frozenlake_slippery_success_probability_matches_sampling():
    # The exact chance that the VI policy reaches the goal within the 100-step limit,
    # from the converted table, against Gymnasium's own sampler.
    mdp = tabular_mdp_from_gymnasium("FrozenLake-v1", gamma=0.99)
    _, policy = _value_iteration(mdp)
    P_pi = mdp.dense_P()[np.arange(16), policy]
    desc = gymnasium.make("FrozenLake-v1").unwrapped.desc.ravel()
    f = (desc == b"G").astype(float)
    for _ in range(100):
        f = P_pi @ f
    exact = f[0]
    env = gymnasium.make("FrozenLake-v1").unwrapped
    env.reset(seed=0)
    wins, n = 0, 1000
    for _ in range(n):
        s, _ = env.reset()
        for _ in range(100):
            s, r, term, _, _ = env.step(int(policy[s]))
            if term:
                wins += r == 1.0
                break
    assert abs(wins / n - exact) < 4 * np.sqrt(exact * (1 - exact) / n)
    assert exact > 0.5


def test_cliffwalking_table_converts_and_optimal_path_costs_13():
    mdp = tabular_mdp_from_gymnasium("CliffWalking-v1", gamma=1.0)
    assert mdp.shape == (48, 4)
    assert np.flatnonzero(mdp.terminal).tolist() == [47]
    assert np.flatnonzero(mdp.initial).tolist() == [36]
    v, _ = _value_iteration(mdp, iters=100)
    assert v[36] == pytest.approx(-13.0)  # Sutton & Barto Example 6.6: 13 steps of -1


def test_taxi_table_converts_sparse_and_solves():
    mdp = tabular_mdp_from_gymnasium("Taxi-v4")
    assert mdp.is_sparse and mdp.shape == (500, 6)
    env = gymnasium.make("Taxi-v4")
    u = env.unwrapped
    terminal = [
        s for s in range(500) if (lambda r, c, p, d: p == d and (r, c) == u.locs[d])(*u.decode(s))
    ]
    assert np.flatnonzero(mdp.terminal).tolist() == terminal
    np.testing.assert_allclose(mdp.initial, u.initial_state_distrib)
    _, policy = _value_iteration(mdp, iters=200)
    for seed in range(10):
        s, _ = env.reset(seed=seed)
        total = 0.0
        for _ in range(200):
            s, r, term, trunc, _ = env.step(int(policy[s]))
            total += r
            if term or trunc:
                break
        assert term and total > 0


class _TableEnv(gymnasium.Env):
    """A two-state env with a hand-written table."""

    def __init__(self, P, obs_space=None):
        self.P = P
        self.observation_space = obs_space or gym_spaces.Discrete(2)
        self.action_space = gym_spaces.Discrete(1)


def test_tabular_conversion_errors():
    with pytest.raises(TypeError, match=r"CartPole-v1 has no transition table.*unwrapped\.P"):
        tabular_mdp_from_gymnasium("CartPole-v1")
    with pytest.raises(TypeError, match="Discrete observations and actions"):
        tabular_mdp_from_gymnasium(_TableEnv({}, gym_spaces.Box(0, 1, (1,))))
    with pytest.raises(ValueError, match="no entry for state 1"):
        tabular_mdp_from_gymnasium(_TableEnv({0: {0: [(1.0, 0, 0.0, False)]}}))
    with pytest.raises(ValueError, match="no entry for action 0"):
        tabular_mdp_from_gymnasium(_TableEnv({0: {0: [(1.0, 0, 0.0, False)]}, 1: {}}))
    with pytest.raises(ValueError, match="leads to state 7"):
        tabular_mdp_from_gymnasium(
            _TableEnv({0: {0: [(1.0, 7, 0.0, False)]}, 1: {0: [(1.0, 1, 0.0, False)]}})
        )
    both_ways = {0: {0: [(0.5, 1, 0.0, True), (0.5, 1, 0.0, False)]}, 1: {0: [(1.0, 1, 0, True)]}}
    with pytest.raises(ValueError, match=r"state 1 is entered .* terminated=True and"):
        tabular_mdp_from_gymnasium(_TableEnv(both_ways))
    short = {0: {0: [(0.5, 1, 0.0, False)]}, 1: {0: [(1.0, 1, 0.0, False)]}}
    with pytest.raises(InvalidMDPError, match=r"P\[0, 0, :\] sums to 0.5"):
        tabular_mdp_from_gymnasium(_TableEnv(short))
    with pytest.raises(TypeError, match="only apply to an env id"):
        tabular_mdp_from_gymnasium(gymnasium.make("FrozenLake-v1"), is_slippery=False)
    with pytest.raises(TypeError, match="expected a Gymnasium env id"):
        tabular_mdp_from_gymnasium(42)
    with pytest.raises(UnknownNameError, match="FrozenLake-v1"):
        tabular_mdp_from_gymnasium("FrozenLake-v2")


def test_hand_table_terminal_becomes_absorbing():
    table = {0: {0: [(0.25, 1, 4.0, True), (0.75, 0, -1.0, False)]}, 1: {0: [(1.0, 0, 9.0, False)]}}
    mdp = tabular_mdp_from_gymnasium(_TableEnv(table), gamma=0.5)
    assert mdp.name == "_TableEnv" and mdp.terminal.tolist() == [False, True]
    np.testing.assert_allclose(mdp.dense_P()[:, 0], [[0.75, 0.25], [0.0, 1.0]])
    np.testing.assert_allclose(np.asarray(mdp.R)[:, 0], [0.25 * 4.0 - 0.75, 0.0])
    assert mdp.initial is None


# ---------------------------------------------------------------------- isolation


def test_importing_bellmax_does_not_import_gymnasium():
    code = (
        "import sys, bellmax, bellmax.envs, bellmax.core; "
        "assert 'gymnasium' not in sys.modules, 'gymnasium was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_host_vector_env_of_a_gymnax_id_runs_gymnax_not_gymnasium():
    """`make_host_vector_env("gymnax:CartPole-v1")` steps gymnax's CartPole (as a bellmax env
    on the host), never Gymnasium's namesake; an unknown gymnax id is refused."""
    pytest.importorskip("gymnax")
    vec = make_host_vector_env("gymnax:CartPole-v1", num_envs=2, max_episode_steps=7)
    env = vec.vector_env.envs[0]
    assert isinstance(env.unwrapped, BellmaxGymnasiumEnv)  # not gymnasium.make("CartPole-v1")
    assert "gymnax" in type(env.unwrapped.env).__module__
    vec.reset()
    lengths = []
    for _ in range(20):
        *_, terminated, truncated, _ = vec.step(np.zeros(2, np.int64))
        lengths.append(bool(np.any(truncated)))
    assert any(lengths)  # the 7-step cap cut episodes
    with pytest.raises(UnknownNameError, match="gymnax"):
        make_host_vector_env("gymnax:Nope-v0")
