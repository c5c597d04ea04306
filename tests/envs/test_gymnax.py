"""The gymnax bridge, both ways, against the real installed gymnax (1.x).

- `to_gymnax(env)`: bellmax CartPole-v1 and Pendulum-v1 as gymnax environments, under
  gymnax's own wrappers, step in lock-step with gymnax's own CartPole/Pendulum (same keys,
  same auto-resets), honour the time limit, and have gymnax spaces usable under `jit`.
- `gymnax:` ids: `bellmax.make`/`make_vector_env` run gymnax's own environments inside the
  jitted loop (vmapped over seeds), and bellmax's PPO solves gymnax's CartPole through the
  driver; unknown gymnax ids never fall back to Gymnasium.
"""

import importlib.util
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

# Skipped only where gymnax is not installed at all (it is an optional dependency; the dev
# extra installs it). An installed gymnax that fails to import fails here instead of
# skipping: gymnax 1.0.1 imports `six` without declaring it, and `importorskip` would turn
# that missing dependency into a silently skipped module.
if importlib.util.find_spec("gymnax") is None:
    pytest.skip("gymnax is not installed (pip install gymnax)", allow_module_level=True)
import gymnax
from gymnax.environments import environment as gymnax_environment
from gymnax.environments import spaces as gymnax_spaces
from gymnax.wrappers import FlattenObservationWrapper, LogWrapper

import bellmax
from bellmax.core import UnknownNameError
from bellmax.envs import from_gymnax, registry, spaces, to_gymnax
from bellmax.envs.gymnax import BellmaxGymnaxEnv, GymnaxAsBellmaxEnv
from bellmax.envs.vector import HostCallbackVectorEnv, JaxVectorEnv, make_vector_env

STEPS = 1_000


def _wrapped(env):
    """gymnax's PureJaxRL wrapper stack."""
    return LogWrapper(FlattenObservationWrapper(env))


def _random_scan(env, params, steps=STEPS, seed=0):
    """`steps` uniformly random actions through gymnax's `reset`/`step` in a jitted
    `lax.scan`: per step (obs, reward, terminated, truncated, info)."""

    def run(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            obs, state = carry
            k_act, k_step = jax.random.split(k)
            action = env.action_space(params).sample(k_act)
            obs, state, reward, terminated, truncated, info = env.step(
                k_step, state, action, params
            )
            return (obs, state), (obs, reward, terminated, truncated, info)

        return jax.lax.scan(body, (obs, state), jax.random.split(key, steps))[1]

    return jax.tree.map(np.asarray, jax.jit(run)(jax.random.key(seed)))


# ---------------------------------------------------------------------- to_gymnax
def test_to_gymnax_is_a_gymnax_environment_with_its_contract():
    env, params = bellmax.make("CartPole-v1")
    g = to_gymnax(env)
    ref, ref_params = gymnax.make("CartPole-v1")
    assert isinstance(g, gymnax_environment.Environment) and isinstance(g, BellmaxGymnaxEnv)
    assert g.default_params == params and g.name == "CartPole-v1" and g.num_actions == 2
    assert isinstance(g.action_space(params), gymnax_spaces.Discrete)
    assert g.action_space(params).n == 2
    assert isinstance(g.observation_space(params), gymnax_spaces.Box)
    assert g.observation_space(params).shape == (4,)
    # gymnax 1.x's step: 6 values, and the same info keys and dtypes as gymnax's CartPole.
    key = jax.random.key(0)
    _, s = g.reset(key)
    _, rs = ref.reset(key, ref_params)
    out = g.step(key, s, 1)
    ref_out = ref.step(key, rs, 1, ref_params)
    assert len(out) == len(ref_out) == 6
    assert (
        set(out[5])
        == set(ref_out[5])
        >= {
            "discount",
            "terminated",
            "truncated",
            "final_observation",
        }
    )
    for k in ref_out[5]:
        assert jnp.result_type(out[5][k]) == jnp.result_type(ref_out[5][k]), k
    # equal environments are equal (one compile for gymnax's jitted methods), params by value
    assert to_gymnax(env) == g and hash(to_gymnax(env)) == hash(g)
    assert to_gymnax(env, params.replace(tau=0.01)) != g
    with pytest.raises(TypeError, match="bellmax Environment"):
        to_gymnax(ref)
    with pytest.raises(ValueError, match="AutoReset"):
        to_gymnax(bellmax.envs.AutoReset(env))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_under_gymnax_wrappers_steps_in_lock_step_with_gymnax(env_id):
    # Shows: bellmax's CartPole/Pendulum through to_gymnax under LogWrapper and
    # FlattenObservationWrapper, 1,000 random steps in a jitted scan, auto-reset as gymnax
    # does: the same observations, ends and episode returns as gymnax's own environment
    # driven by the same keys (before to_gymnax: 986 dones and |theta| up to 18 rad).
    env, params = bellmax.make(env_id)
    ref, ref_params = gymnax.make(env_id)
    obs, reward, term, trunc, info = _random_scan(_wrapped(to_gymnax(env)), params)
    r_obs, r_reward, r_term, r_trunc, r_info = _random_scan(_wrapped(ref), ref_params)
    done, r_done = term | trunc, r_term | r_trunc
    print(f"\n{env_id}: bellmax {done.sum()} ends, gymnax {r_done.sum()} ends")
    np.testing.assert_array_equal(done, r_done)
    np.testing.assert_array_equal(term, r_term)
    np.testing.assert_allclose(obs, r_obs, atol=1e-4)
    np.testing.assert_allclose(reward, r_reward, atol=1e-4)
    np.testing.assert_allclose(info["final_observation"], r_info["final_observation"], atol=1e-4)
    np.testing.assert_allclose(
        info["returned_episode_returns"], r_info["returned_episode_returns"], rtol=1e-4
    )
    if env_id == "CartPole-v1":
        # random play ends an episode every ~20 steps, never beyond the failure angle
        assert 30 <= done.sum() <= 80 and term.sum() == done.sum()
        theta = np.abs(info["final_observation"][:, 2])
        assert theta.max() < 0.21 + 0.05
        assert (info["discount"][term] == 0).all() and (info["discount"][~term] == 1).all()
    else:  # Pendulum never terminates: every 200th step is truncated
        assert not term.any() and np.flatnonzero(trunc).tolist() == [199, 399, 599, 799, 999]


def test_gymnasium_wrapper_of_gymnax_takes_it():
    from gymnax.wrappers import GymnaxToGymWrapper

    env, params = bellmax.make("CartPole-v1")
    gym_env = GymnaxToGymWrapper(to_gymnax(env), params, seed=1)
    assert gym_env.action_space.n == 2 and gym_env.observation_space.shape == (4,)
    gym_env.reset(seed=1)
    ends = 0
    for t in range(200):
        obs, reward, terminated, truncated, info = gym_env.step(t % 2)
        ends += bool(terminated or truncated)
        assert abs(float(obs[2])) < 0.21 + 0.05  # reset after every end
    assert ends >= 1


def test_spaces_are_callable_under_jit():
    for env_id in ("CartPole-v1", "Pendulum-v1"):
        env, params = bellmax.make(env_id)
        g = _wrapped(to_gymnax(env))

        @jax.jit
        def bounds(p, g=g):
            o, a = g.observation_space(p), g.action_space(p)
            return o.low, o.high, a.sample(jax.random.key(0))

        low, high, action = bounds(params)
        np.testing.assert_allclose(high, np.asarray(env.observation_space(params).high))
        assert low.shape == high.shape == env.observation_space(params).shape
        assert bool(env.action_space(params).contains(action))
    # bellmax's own spaces under jit too (traced bounds)
    env, params = bellmax.make("Pendulum-v1")
    high = jax.jit(lambda p: env.observation_space(p).high)(params)
    np.testing.assert_allclose(high, [1.0, 1.0, 8.0])
    lim = jax.jit(lambda p: env.action_space(p).high)(params.replace(max_torque=1.5))
    np.testing.assert_allclose(lim, [1.5])


@pytest.mark.parametrize(("env_id", "limit"), [("CartPole-v1", 15), ("Pendulum-v1", 37)])
def test_time_limit_is_honoured(env_id, limit):
    env, params = bellmax.make(env_id, max_steps_in_episode=limit)
    _, _, term, trunc, info = _random_scan(_wrapped(to_gymnax(env)), params)
    done = term | trunc
    lengths = info["returned_episode_lengths"][done]
    assert lengths.max() == limit and (lengths[trunc[done]] == limit).all()
    ends = np.flatnonzero(done)
    assert np.diff(np.concatenate([[-1], ends])).max() <= limit  # no episode runs longer


# ---------------------------------------------------------------------- gymnax: ids
def test_make_gymnax_id_runs_gymnax_own_environment():
    env, params = bellmax.make("gymnax:CartPole-v1")
    assert isinstance(env, bellmax.envs.Environment) and isinstance(env, GymnaxAsBellmaxEnv)
    assert env.name == "gymnax:CartPole-v1" and type(env.gymnax_env).__module__.startswith(
        "gymnax."
    )
    assert isinstance(env.action_space(params), spaces.Discrete)
    assert isinstance(env.observation_space(params), spaces.Box)
    assert bellmax.make("gymnax:CartPole-v1")[0] == env  # one object: one compile
    # bellmax's raw step: no reset at the end, terminated and truncated apart
    env5, p5 = bellmax.make("gymnax:Pendulum-v1", max_steps_in_episode=3)
    assert p5.max_steps_in_episode == 3
    key = jax.random.key(0)
    _, s = env5.reset(key, p5)
    for t in range(1, 6):
        _, s, _, terminated, truncated, _ = env5.step(key, s, jnp.zeros(1), p5)
        assert int(s.time) == t and not bool(terminated) and bool(truncated) == (t >= 3)
    # resolve_env and the registry send gymnax ids to gymnax, not Gymnasium
    made = registry.resolve_env("gymnax:CartPole-v1")
    assert not made.is_host and made.env == env
    assert registry.is_registered("gymnax:CartPole-v1")


def test_unknown_gymnax_id_names_gymnax_ids_and_never_falls_back():
    for find in (bellmax.make, make_vector_env, registry.resolve_env):
        with pytest.raises(UnknownNameError, match=r"'gymnax:Nope-v0'.*gymnax:CartPole-v1"):
            find("gymnax:Nope-v0")
    # a near miss gets gymnax's id alone (registry.unknown_env_error), not five guesses nor
    # the list of every gymnax id after it
    with pytest.raises(UnknownNameError, match=r"Did you mean: 'gymnax:CartPole-v1'\?$"):
        bellmax.make("gymnax:Cartpole-v1")


def test_other_prefixes_resolve_as_before():
    assert isinstance(make_vector_env("CartPole-v1"), JaxVectorEnv)
    host = make_vector_env("gymnasium:CartPole-v1")
    assert isinstance(host, HostCallbackVectorEnv)
    host.host_env.close()
    venv = make_vector_env("gymnax:CartPole-v1", num_envs=2)
    assert isinstance(venv, JaxVectorEnv) and not venv.is_host


def _vector_rollout(venv, key, steps=300):
    obs, st = venv.reset(key)

    def body(carry, k):
        obs, st = carry
        k_act, k_step = jax.random.split(k)
        a = jax.vmap(venv.action_space.sample)(jax.random.split(k_act, venv.num_envs))
        s = venv.step(k_step, st, a)
        return (s.obs, s.state), (s.terminated, s.truncated, s.final_obs, s.episode_length)

    return jax.lax.scan(body, (obs, st), jax.random.split(key, steps))[1]


def test_vector_env_of_a_gymnax_id_is_vmappable_and_truncates():
    # gymnax's CartPole in bellmax's JaxVectorEnv, vmapped over 3 seeds in one jitted call,
    # steps exactly as bellmax's own CartPole does.
    keys = jax.random.split(jax.random.key(0), 3)
    outs = {}
    for env_id in ("gymnax:CartPole-v1", "CartPole-v1"):
        venv = make_vector_env(env_id, num_envs=4, max_steps_in_episode=30)
        run = jax.jit(jax.vmap(lambda k, venv=venv: _vector_rollout(venv, k)))
        outs[env_id] = jax.tree.map(np.asarray, run(keys))
    term, trunc, final_obs, length = outs["gymnax:CartPole-v1"]
    assert term.shape == (3, 300, 4) and term.any() and trunc.any()
    assert length.max() == 30 and (length[trunc] == 30).all()
    np.testing.assert_array_equal(term, outs["CartPole-v1"][0])
    np.testing.assert_array_equal(trunc, outs["CartPole-v1"][1])
    np.testing.assert_allclose(final_obs, outs["CartPole-v1"][2], atol=1e-4)


@pytest.mark.parametrize("wrap", [False, True])
def test_vector_env_of_gymnax_objects_uses_their_own_step(wrap):
    # A gymnax environment object (or gymnax's LogWrapper around one): stepped through its
    # auto-resetting 1.x step, whose time limit holds; its spaces become bellmax's.
    ref, params = gymnax.make("CartPole-v1")
    env = LogWrapper(ref) if wrap else ref
    venv = make_vector_env(env, num_envs=4, env_params=params.replace(max_steps_in_episode=25))
    assert isinstance(venv.action_space, spaces.Discrete)
    assert isinstance(venv.observation_space, spaces.Box)
    term, trunc, final_obs, length = jax.tree.map(
        np.asarray, jax.jit(lambda k: _vector_rollout(venv, k))(jax.random.key(1))
    )
    assert trunc.any() and term.any() and length.max() == 25
    done = term | trunc
    assert (np.abs(final_obs[term][:, 2]) > 0.2094).sum() + (
        np.abs(final_obs[term][:, 0]) > 2.4
    ).sum() >= term.sum()
    assert (length[done] <= 25).all()


def test_from_gymnax_wraps_any_gymnax_env():
    ref, params = gymnax.make("Pendulum-v1")
    env = from_gymnax(ref)
    assert env.name == "gymnax:Pendulum-v1" and env.default_params == params
    assert isinstance(env.action_space(), spaces.Box) and env.action_space().shape == (1,)
    with pytest.raises(TypeError, match="gymnax environment"):
        from_gymnax(object())
    with pytest.raises(TypeError, match="needs EnvParams"):
        env.reset(jax.random.key(0), bellmax.make("Pendulum-v1")[1])


def test_spaces_from_gymnax():
    d = spaces.from_gymnax(gymnax_spaces.Discrete(3))
    assert isinstance(d, spaces.Discrete) and d.n == 3
    b = spaces.from_gymnax(gymnax_spaces.Box(-1.0, jnp.array([1.0, 2.0]), (2,)))
    assert isinstance(b, spaces.Box) and b.shape == (2,)
    np.testing.assert_allclose(b.low, [-1, -1])
    np.testing.assert_allclose(b.high, [1, 2])
    assert spaces.from_gymnax(d) is d
    with pytest.raises(TypeError, match="no bellmax space"):
        spaces.from_gymnax(gymnax_spaces.Dict({"a": gymnax_spaces.Discrete(2)}))


def test_importing_bellmax_does_not_import_gymnax_and_a_missing_gymnax_says_how():
    code = (
        "import sys, bellmax, bellmax.envs; bellmax.registered(); "
        "assert 'gymnax' not in sys.modules and 'gymnasium' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    # gymnax missing, or installed without a dependency of its own (gymnax 1.0.1 needs six)
    for missing, fix in (("gymnax", "pip install gymnax"), ("six", "pip install six")):
        code = (
            f"import sys; sys.modules[{missing!r}] = None\n"
            "import bellmax\n"
            "for f in (lambda: bellmax.make('gymnax:CartPole-v1'), "
            "lambda: bellmax.envs.to_gymnax(None)):\n"
            "    try:\n"
            "        f()\n"
            "    except ImportError as e:\n"
            f"        assert {fix!r} in str(e), e\n"
            "    else:\n"
            "        raise SystemExit('no ImportError')\n"
        )
        subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- learning
# CartPole-v1 counts as solved at a mean return of 475 (Gymnasium's reward_threshold).
SOLVED = 475.0


def test_bellmax_ppo_solves_gymnax_cartpole_through_the_driver():
    # Shows: bellmax's PPO (rl-zoo's CartPole settings, the 1e5-step preset as the cap)
    # trains on gymnax's own CartPole-v1, stepped inside the jitted loop, two seeds vmapped
    # in one program; each seed's deterministic policy reaches >= 475 over 10 evaluation
    # episodes (on gymnax's CartPole too) at some evaluation within the cap.
    from bellmax.deep import ppo
    from bellmax.train import driver

    config = ppo.PRESETS["CartPole-v1"]
    res = driver.train(ppo, config, "gymnax:CartPole-v1", seeds=(0, 1), stop_return=SOLVED)
    print(f"\nPPO gymnax:CartPole-v1 seeds 0, 1: solved at {res.solved_at_steps} steps")
    assert all(s is not None and s <= config.total_timesteps for s in res.solved_at_steps)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_deep_algorithms_take_gymnax_objects_and_spaces(env_id):
    # Shows: ppo.make_train takes gymnax's environment object itself (gymnax Discrete/Box
    # spaces, its auto-resetting step) and trains on it.
    from bellmax.deep import ppo

    ref, params = gymnax.make(env_id)
    config = ppo.Config(
        total_timesteps=2 * 64,
        num_envs=4,
        num_steps=16,
        num_epochs=1,
        minibatch_size=64,
        hidden_sizes=(8,),
    )
    train = ppo.make_train(config, ref, params)
    _, metrics = jax.jit(train)(jax.random.key(0))
    assert metrics.loss.shape == (2,) and bool(jnp.all(jnp.isfinite(metrics.loss)))


class _ActorCritic(nn.Module):
    """PureJaxRL's actor-critic: two 64-unit tanh layers for each head, orthogonal init."""

    num_actions: int

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.orthogonal

        def torso(x):
            for _ in range(2):
                x = nn.tanh(nn.Dense(64, kernel_init=init(np.sqrt(2)))(x))
            return x

        logits = nn.Dense(self.num_actions, kernel_init=init(0.01))(torso(x))
        value = nn.Dense(1, kernel_init=init(1.0))(torso(x))
        return logits, value[..., 0]


def _purejaxrl_ppo(env, env_params, *, num_envs=8, num_steps=32, epochs=20, cap=100_000):
    """A compact PureJaxRL-style PPO written against gymnax's API alone (rl-zoo's CartPole
    settings: gamma 0.98, GAE 0.8, lr 1e-3 and clip 0.2 annealed linearly, one 256-batch
    per epoch). Returns `(init, train_chunk, evaluate, num_updates)`: the caller trains
    chunks of 10 updates until an evaluation passes or the cap is reached."""
    gamma, lam = 0.98, 0.8
    num_updates = cap // (num_envs * num_steps)
    net = _ActorCritic(env.action_space(env_params).n)
    frac = optax.linear_schedule(1.0, 0.0, num_updates * epochs)
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(lambda c: 1e-3 * frac(c), eps=1e-5))
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    vreset = jax.vmap(env.reset, in_axes=(0, None))

    def init(key):
        k_net, k_env = jax.random.split(key)
        obs, env_state = vreset(jax.random.split(k_env, num_envs), env_params)
        params = net.init(k_net, obs)
        return (params, tx.init(params), env_state, obs, key, jnp.zeros((), jnp.int32))

    def env_step(carry, _):
        params, env_state, obs, key = carry
        key, k_act, k_env = jax.random.split(key, 3)
        logits, value = net.apply(params, obs)
        action = jax.random.categorical(k_act, logits)
        logp = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], 1)[:, 0]
        keys = jax.random.split(k_env, num_envs)
        next_obs, env_state, reward, term, trunc, info = vstep(keys, env_state, action, env_params)
        # bootstrap from the true last observation where the time limit cut the episode
        _, final_value = net.apply(params, info["final_observation"])
        reward = reward + gamma * final_value * (trunc & ~term)
        done = (term | trunc).astype(jnp.float32)
        return (params, env_state, next_obs, key), (obs, action, logp, value, reward, done)

    def update(runner, _):
        params, opt_state, env_state, obs, key, n = runner
        (_, env_state, obs, key), batch = jax.lax.scan(
            env_step, (params, env_state, obs, key), None, num_steps
        )
        b_obs, b_act, b_logp, b_val, b_rew, b_done = batch
        _, last_val = net.apply(params, obs)

        def gae(carry, t):
            adv, next_val = carry
            val, rew, done = t
            delta = rew + gamma * next_val * (1 - done) - val
            adv = delta + gamma * lam * (1 - done) * adv
            return (adv, val), adv

        _, adv = jax.lax.scan(
            gae, (jnp.zeros_like(last_val), last_val), (b_val, b_rew, b_done), reverse=True
        )
        ret = adv + b_val
        flat = jax.tree.map(
            lambda x: x.reshape((-1, *x.shape[2:])), (b_obs, b_act, b_logp, adv, ret)
        )
        clip = 0.2 * (1.0 - n / num_updates)

        def loss_fn(p, obs, act, logp_old, adv, ret):
            logits, value = net.apply(p, obs)
            logp = jnp.take_along_axis(jax.nn.log_softmax(logits), act[:, None], 1)[:, 0]
            ratio = jnp.exp(logp - logp_old)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip, 1 + clip) * adv).mean()
            return pg + 0.5 * ((value - ret) ** 2).mean()

        def epoch(carry, _):
            p, o = carry
            grads = jax.grad(loss_fn)(p, *flat)
            upd, o = tx.update(grads, o, p)
            return (optax.apply_updates(p, upd), o), None

        (params, opt_state), _ = jax.lax.scan(epoch, (params, opt_state), None, epochs)
        return (params, opt_state, env_state, obs, key, n + 1), None

    @jax.jit
    def train_chunk(runner):
        return jax.lax.scan(update, runner, None, 10)[0]

    @jax.jit
    def evaluate(params, key, episodes=10):
        """Mean return of the greedy policy's first episode in each of `episodes` envs."""
        obs, state = vreset(jax.random.split(key, episodes), env_params)

        def body(carry, k):
            obs, state, ret, alive = carry
            action = jnp.argmax(net.apply(params, obs)[0], -1)
            obs, state, r, term, trunc, _ = vstep(
                jax.random.split(k, episodes), state, action, env_params
            )
            ret = ret + r * alive
            return (obs, state, ret, alive & ~(term | trunc)), None

        carry = (obs, state, jnp.zeros(episodes), jnp.ones(episodes, bool))
        (_, _, ret, _), _ = jax.lax.scan(body, carry, jax.random.split(key, 500))
        return ret.mean()

    return init, train_chunk, evaluate, num_updates


def test_purejaxrl_style_ppo_solves_bellmax_cartpole_through_to_gymnax():
    # Shows: a PPO written against gymnax's API alone (PureJaxRL style, gymnax's LogWrapper
    # and FlattenObservationWrapper) trains bellmax's CartPole-v1 through to_gymnax: its greedy
    # policy averages >= 475 over 10 episodes at an evaluation after a chunk of 10 updates,
    # within 1e5 steps (the cap of rl-zoo's settings).
    env, params = bellmax.make("CartPole-v1")
    init, train_chunk, evaluate, num_updates = _purejaxrl_ppo(_wrapped(to_gymnax(env)), params)
    runner = init(jax.random.key(0))
    best = 0.0
    while int(runner[-1]) < num_updates:
        runner = train_chunk(runner)
        best = float(evaluate(runner[0], jax.random.key(int(runner[-1]))))
        if best >= SOLVED:
            break
    steps = int(runner[-1]) * 8 * 32
    print(f"\nPureJaxRL-style PPO on to_gymnax(CartPole-v1): {best:.1f} at {steps} steps")
    assert best >= SOLVED
