"""Shared fixtures for the deep RL tests."""

import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.envs import spaces
from bellmax.train import driver


def _train(algo, config, env_id: str, seed: int, *, stop_return=None, eval_episodes=10):
    """One seed trained by `bellmax.train.driver.train` (no run directory), its numbers printed.

    With `stop_return` the run stops at the first evaluation (after each of ~20 chunks) at
    which the deterministic policy averages at least `stop_return` over `eval_episodes`
    episodes; `total_timesteps` is the cap. The driver caches its compiled programs per
    (algorithm, config, env, number of seeds), so every seed and every run of one config in
    this process (a full run after a stopped one) shares one compile.

    Seeds run one at a time: each seed's run stops at its own first passing evaluation, and
    the claim is made per seed.
    """
    res = driver.train(
        algo, config, env_id, seeds=(seed,), eval_episodes=eval_episodes, stop_return=stop_return
    )
    name = algo.__name__.rsplit(".", 1)[-1].upper()
    cap = config.num_updates * config.steps_per_update
    line = f"\n{name} {env_id} seed {seed}: "
    if stop_return is not None:
        line += f"solved (>= {stop_return}) at {res.solved_at_steps[0]} of {cap} steps, "
        line += f"eval {float(res.eval_returns.mean()):.1f}; "
    else:
        line += f"{res.env_steps} steps; "
    print(
        line + f"compile {res.compile_seconds:.1f}s, train {res.seconds:.1f}s, "
        f"eval {res.eval_seconds:.1f}s"
    )
    return res


@pytest.fixture(scope="session")
def train_run():
    """`train_run(algo, config, env_id, seed, *, stop_return=None, eval_episodes=10)`: the
    driver's `TrainResult` (state and metrics with a leading seed axis of 1); see `_train`."""
    return _train


def _assert_solved(res, config, target: float) -> None:
    """`res` (one seed, trained with `stop_return=target`) stopped at an evaluation reaching
    `target` within the cap, and the final evaluation (the same policy, episodes and keys)
    repeats it; the metrics count the steps trained."""
    at = res.solved_at_steps[0]
    assert at is not None, f"not solved (>= {target}) within {config.total_timesteps} steps"
    assert at == res.env_steps <= config.total_timesteps
    assert float(np.mean(res.eval_returns)) >= target
    assert int(res.metrics["env_steps"][0, -1]) == res.env_steps


@pytest.fixture(scope="session")
def assert_solved():
    """`assert_solved(res, config, target)`: see `_assert_solved`."""
    return _assert_solved


class _MultiDiscreteEnv:
    """A gymnax-API stub with a MultiDiscrete action space (no deep algorithm supports it)."""

    name = "MultiDiscreteStub"
    default_params = None

    def reset_env(self, key, params):
        return jnp.zeros(2), jnp.zeros(())

    def step_env(self, key, state, action, params):
        return jnp.zeros(2), state, 0.0, False, {}

    def action_space(self, params):
        return spaces.MultiDiscrete([2, 3])

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,))


@pytest.fixture
def multidiscrete_env():
    """An environment whose action space the algorithms must refuse with a clear error."""
    return _MultiDiscreteEnv()
