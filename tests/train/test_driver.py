"""The training driver: chunks, vmapped seeds, exact resume, NaN stop, outputs.

Uses a tiny contract-following algorithm (defined here) so these tests check the
driver, not an RL method; the real algorithms are trained through it in tests/cli/test_train.py.
"""

import dataclasses
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from bellmax.core.errors import DivergenceError
from bellmax.train import driver
from bellmax.train.checkpoint import CheckpointError

# ---- a tiny algorithm following the deep-RL module contract (this module is the "algorithm"):
# random search on a linear CartPole policy; `loss` is a deterministic function of the state so
# a NaN can be injected at a chosen update (`nan_at`).

NAME = "toy"


@dataclasses.dataclass(frozen=True)
class Config:
    total_timesteps: int = 2_000
    num_envs: int = 4
    num_steps: int = 10
    learning_rate: float = 0.1
    nan_at: int = -1

    def validate(self, venv=None) -> None:
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // self.steps_per_update


@struct.dataclass
class TrainState:
    w: jax.Array
    key: jax.Array
    vec_state: object
    obs: jax.Array
    update_index: jax.Array


@struct.dataclass
class Metrics:
    env_steps: jax.Array
    episode_return_sum: jax.Array
    episode_count: jax.Array
    loss: jax.Array


def init(key, config, venv):
    k_env, key = jax.random.split(key)
    obs, vs = venv.reset(k_env)
    return TrainState(jnp.zeros(4), key, vs, obs, jnp.zeros((), jnp.int32))


def act(params, obs, key, config, venv, *, deterministic=True):
    return (obs @ params > 0).astype(jnp.int32)


def policy_params(state):
    return state.w


def update(state, config, venv):
    key, k_noise, k_roll = jax.random.split(state.key, 3)
    w = state.w + config.learning_rate * jax.random.normal(k_noise, (4,))

    def body(carry, k):
        obs, vs = carry
        s = venv.step(k, vs, act(w, obs, k, config, venv))
        ret = jnp.where(s.done, s.episode_return, 0.0).sum()
        return (s.obs, s.state), (ret, s.done.sum())

    (obs, vs), (rets, cnts) = jax.lax.scan(
        body, (state.obs, state.vec_state), jax.random.split(k_roll, config.num_steps)
    )
    i = state.update_index + 1
    loss = jnp.where(i == config.nan_at, jnp.nan, jnp.sum(w**2))
    metrics = Metrics(i * config.steps_per_update, rets.sum(), cnts.sum(), loss)
    return TrainState(w, key, vs, obs, i), metrics


toy = sys.modules[__name__]


def test_plan_chunks_prefers_divisors():
    assert driver.plan_chunks(100, 20) == 5
    assert driver.plan_chunks(50, 20) in (2, 5)
    assert 50 % driver.plan_chunks(50, 20) == 0
    assert driver.plan_chunks(7, 20) == 1
    assert driver.plan_chunks(97, 10) == 10  # prime: no divisor near 10, one short last chunk
    with pytest.raises(ValueError, match="num_updates"):
        driver.plan_chunks(0)


def test_seeds_vmapped_equal_one_by_one_and_outputs(tmp_path):
    cfg = toy.Config()
    both = driver.train(
        toy,
        cfg,
        "CartPole-v1",
        seeds=(0, 1),
        eval_episodes=0,
        out_dir=tmp_path,
        chunks=5,
        algo_name="toy",
    )
    assert both.updates_done == cfg.num_updates == 50
    assert both.env_steps == 50 * 40
    for i, seed in enumerate((0, 1)):
        one = driver.train(toy, cfg, "CartPole-v1", seeds=(seed,), eval_episodes=0, chunks=5)
        np.testing.assert_array_equal(np.asarray(one.state.w[0]), np.asarray(both.state.w[i]))
        np.testing.assert_array_equal(one.metrics["loss"][0], both.metrics["loss"][i])
    assert (tmp_path / "checkpoint.msgpack").is_file()
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("update,seed,") and len(rows) == 1 + 2 * 50
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["updates_done"] == 50 and run["algo"] == "toy" and run["compile_seconds"] > 0


def test_resume_is_bit_identical(tmp_path):
    cfg = toy.Config()
    full = driver.train(toy, cfg, "CartPole-v1", seeds=(3, 4), eval_episodes=0, chunks=5)
    part = driver.train(
        toy,
        cfg,
        "CartPole-v1",
        seeds=(3, 4),
        eval_episodes=0,
        chunks=5,
        out_dir=tmp_path,
        stop_after=20,
        algo_name="toy",
    )
    assert part.updates_done == 20
    rest = driver.train(
        toy,
        cfg,
        "CartPole-v1",
        seeds=(3, 4),
        eval_episodes=0,
        chunks=5,
        out_dir=tmp_path,
        resume=True,
        algo_name="toy",
    )
    assert rest.updates_done == 50
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(rest.state), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.metrics["loss"], rest.metrics["loss"])
    # A different config cannot resume this run.
    with pytest.raises(ValueError, match="cannot resume"):
        driver.train(
            toy,
            toy.Config(learning_rate=0.2),
            "CartPole-v1",
            seeds=(3, 4),
            out_dir=tmp_path,
            resume=True,
            algo_name="toy",
        )


def test_nan_loss_stops_and_names_the_update(tmp_path):
    with pytest.raises(DivergenceError, match=r"update 13 of 50 \(seed 0\)"):
        driver.train(
            toy,
            toy.Config(nan_at=13),
            "CartPole-v1",
            seeds=(0,),
            eval_episodes=0,
            chunks=5,
            out_dir=tmp_path,
            algo_name="toy",
        )
    # The checkpoint holds the last good chunk (updates 1..10), never the NaN one.
    meta = json.loads(json.dumps(driver.read_checkpoint_metadata(tmp_path / "checkpoint.msgpack")))
    assert meta["updates_done"] == 10


def test_host_env_runs_seeds_one_after_another():
    cfg = toy.Config(total_timesteps=400)
    res = driver.train(toy, cfg, "gymnasium:CartPole-v1", seeds=(0, 1), eval_episodes=0, chunks=2)
    assert res.updates_done == 10 and np.asarray(res.state.w).shape == (2, 4)
    assert res.metrics["episode_count"].sum() > 0


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="learning_rate"):
        driver.train(toy, toy.Config(learning_rate=-1.0), "CartPole-v1")
    with pytest.raises(ValueError, match="distinct"):
        driver.train(toy, toy.Config(), "CartPole-v1", seeds=(1, 1))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True)
    with pytest.raises(Exception, match="unknown algorithm"):
        driver.train("ppq", toy.Config(), "CartPole-v1")


def test_stop_return_stops_at_the_first_evaluation_that_reaches_it():
    cfg = toy.Config()
    # Every return is >= 1, so the first evaluation (after chunk 1 of 5) already "solves".
    res = driver.train(
        toy, cfg, "CartPole-v1", seeds=(0, 1), chunks=5, eval_episodes=2, stop_return=1.0
    )
    assert res.updates_done == 10 and res.solved_at_steps == [400, 400]
    assert res.eval_returns.shape == (2, 2) and res.summary()["solved_at_steps"] == [400, 400]
    # Unreachable: trains to the end and records no solve.
    res = driver.train(
        toy, cfg, "CartPole-v1", seeds=(0, 1), chunks=5, eval_episodes=2, stop_return=1e9
    )
    assert res.updates_done == 50 and res.solved_at_steps == [None, None]
    with pytest.raises(ValueError, match="eval_episodes"):
        driver.train(toy, cfg, "CartPole-v1", eval_episodes=0, stop_return=1.0)
