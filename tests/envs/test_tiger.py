"""Tiger-v0: rewards by hand, and its sampled laws against the exact `TabularPOMDP` tiger."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bellmax
from bellmax.envs.tiger import LISTEN, NOTHING_HEARD, OPEN_LEFT, OPEN_RIGHT, TigerState
from bellmax.pomdp.problems import tiger

KEY = jax.random.key(0)


def _state(tiger_side):
    return TigerState(tiger=jnp.asarray(tiger_side, jnp.int32), time=jnp.asarray(0, jnp.int32))


def test_rewards_by_hand_and_reset():
    env, params = bellmax.make("Tiger-v0")
    obs, state = env.reset(KEY, params)
    assert int(obs) == NOTHING_HEARD and int(state.tiger) in (0, 1)
    table = {(0, LISTEN): -1.0, (0, OPEN_LEFT): -100.0, (0, OPEN_RIGHT): 10.0}
    table |= {(1, LISTEN): -1.0, (1, OPEN_LEFT): 10.0, (1, OPEN_RIGHT): -100.0}
    for (side, a), r in table.items():
        _, s2, reward, terminated, truncated, _ = env.step(KEY, _state(side), a, params)
        assert float(reward) == r and not bool(terminated) and not bool(truncated)
        if a == LISTEN:
            assert int(s2.tiger) == side  # listening never moves the tiger
    env2, p2 = bellmax.make("Tiger-v0", tiger_reward=-50.0, max_steps_in_episode=1)
    out = env2.step(KEY, _state(0), OPEN_LEFT, p2)
    assert float(out[2]) == -50.0 and bool(out[4])  # truncated after one step


def test_sampled_laws_match_the_exact_pomdp():
    # Sampled check (fixed seed): 20000 steps from each (side, action) give next-state and
    # observation frequencies within 0.015 (> 4 standard errors) of the model's T and O.
    env, params = bellmax.make("Tiger-v0")
    model = tiger()
    T, Ob = np.asarray(model.T), np.asarray(model.O)
    n = 20_000
    keys = jax.random.split(KEY, n)
    step = jax.jit(jax.vmap(lambda k, s, a: env.step_env(k, s, a, params)[:2], (0, None, None)))
    for side in (0, 1):
        for a in (LISTEN, OPEN_LEFT, OPEN_RIGHT):
            obs, s2 = step(keys, _state(side), a)
            nxt = np.bincount(np.asarray(s2.tiger), minlength=2) / n
            np.testing.assert_allclose(nxt, T[a, side], atol=0.015)
            for sp in (0, 1):  # O[a, s', o]: the observation given the next state
                seen = np.asarray(obs)[np.asarray(s2.tiger) == sp]
                if len(seen) == 0:  # a next state the model gives probability 0
                    assert T[a, side, sp] == 0.0
                    continue
                np.testing.assert_allclose(
                    np.bincount(seen, minlength=2) / len(seen), Ob[a, sp], atol=0.015
                )


def test_bad_parameters_and_actions():
    with pytest.raises(ValueError, match=r"TigerParams\.accuracy must be .*in \[0, 1\]"):
        bellmax.make("Tiger-v0", accuracy=1.5)
    env, params = bellmax.make("Tiger-v0")
    with pytest.raises(ValueError, match=r"Tiger-v0\.step: action 3 is out of range"):
        env.step(KEY, _state(0), 3, params)
