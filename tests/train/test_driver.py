"""The training driver: chunks, vmapped seeds, exact resume, NaN stop, outputs.

Uses a tiny contract-following algorithm (defined here) so these tests check the
driver, not an RL method; the real algorithms are trained through it in tests/cli/test_train.py.
"""

import dataclasses
import json
import math
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from bellmax.core.errors import BellmaxError, DivergenceError
from bellmax.envs.environment import Wrapper
from bellmax.policy import PolicyFileError
from bellmax.train import driver
from bellmax.train.checkpoint import CheckpointError
from bellmax.train.io import FileLock, LockHeldError

# ---- a tiny algorithm following the deep-RL module contract (this module is the "algorithm"):
# random search on a linear CartPole policy; `loss` is a deterministic function of the state so
# a NaN can be injected at a chosen update (`nan_at`), as can the other faults the driver must
# catch (the `*_at` fields). `init` copies the settings `update` reads (learning_rate and the
# `*_at` fields) into the state, so the chunk programs of every Config with the same number of
# seeds and chunk length are one program (XLA's persistent cache compiles it once); baked in
# as constants, each Config was another ~2 s compile.

NAME = "toy"


@dataclasses.dataclass(frozen=True)
class Config:
    total_timesteps: int = 2_000
    num_envs: int = 4
    num_steps: int = 10
    learning_rate: float = 0.1
    nan_at: int = -1
    nan_return_at: int = -1  # the env's fault: the episode returns go NaN from this update
    inf_weights_at: int = -1  # the weights go inf from this update, the loss stays 0 (clipped)
    inf_return_at: int = -1  # episode_return_sum overflows to inf from this update

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
    learning_rate: jax.Array  # the Config's, as data of the program (see above)
    nan_at: jax.Array
    nan_return_at: jax.Array
    inf_weights_at: jax.Array
    inf_return_at: jax.Array


@struct.dataclass
class Metrics:
    env_steps: jax.Array
    episode_return_sum: jax.Array
    episode_count: jax.Array
    loss: jax.Array


def init(key, config, venv):
    k_env, key = jax.random.split(key)
    obs, vs = venv.reset(k_env)
    return TrainState(
        jnp.zeros(4),
        key,
        vs,
        obs,
        jnp.zeros((), jnp.int32),
        jnp.asarray(config.learning_rate, jnp.float32),
        jnp.asarray(config.nan_at, jnp.int32),
        jnp.asarray(config.nan_return_at, jnp.int32),
        jnp.asarray(config.inf_weights_at, jnp.int32),
        jnp.asarray(config.inf_return_at, jnp.int32),
    )


def act(params, obs, key, config, venv, *, deterministic=True):
    return (obs @ params > 0).astype(jnp.int32)


def policy_params(state):
    return state.w


def update(state, config, venv):
    key, k_noise, k_roll = jax.random.split(state.key, 3)
    w = state.w + state.learning_rate * jax.random.normal(k_noise, (4,))

    def body(carry, k):
        obs, vs = carry
        s = venv.step(k, vs, act(w, obs, k, config, venv))
        ret = jnp.where(s.done, s.episode_return, 0.0).sum()
        return (s.obs, s.state), (ret, s.done.sum())

    (obs, vs), (rets, cnts) = jax.lax.scan(
        body, (state.obs, state.vec_state), jax.random.split(k_roll, config.num_steps)
    )
    i = state.update_index + 1

    def from_(at):  # from update `at` on (never if `at` <= 0)
        return (at > 0) & (i >= at)

    loss = jnp.where(state.inf_weights_at > 0, 0.0, jnp.sum(w**2))
    loss = jnp.where(i == state.nan_at, jnp.nan, loss)
    ret_sum = jnp.where(from_(state.nan_return_at), jnp.nan, rets.sum())
    ret_sum = jnp.where(from_(state.inf_return_at), jnp.inf, ret_sum)
    w = jnp.where(from_(state.inf_weights_at), jnp.inf, w)
    metrics = Metrics(i * config.steps_per_update, ret_sum, cnts.sum(), loss)
    return state.replace(w=w, key=key, vec_state=vs, obs=obs, update_index=i), metrics


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
    # counts are written as integers, as metrics.json has them (they were "3.0")
    header, last = rows[0].split(","), rows[-1].split(",")
    count = last[header.index("episode_count")]
    assert count == str(json.loads((tmp_path / "metrics.json").read_text())["episode_count"][1][-1])
    assert count.isdigit()
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["updates_done"] == 50 and run["algo"] == "toy" and run["compile_seconds"] > 0
    # what reproducing the run needs besides its settings (core.provenance)
    prov = run["provenance"]
    assert prov["versions"]["jax"] and prov["versions"]["bellmax"] and prov["time"]
    assert isinstance(prov["command"], list) and "platform" in prov and "git" in prov


def test_an_out_dir_under_home_is_the_one_checked_and_written(tmp_path, monkeypatch):
    # out_dir="~/r": the checks expanded `~`, the writes did not (./~/r), so a second run
    # replaced the first without the refusal a run folder gets.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir="~/r", stop_after=10, **RUN)
    assert (tmp_path / "r" / "run.json").is_file() and not (tmp_path / "~").exists()
    with pytest.raises(ValueError, match="holds an earlier"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir="~/r", **RUN)


def test_resume_is_bit_identical(tmp_path):
    cfg = toy.Config()
    full = driver.train(toy, cfg, "CartPole-v1", seeds=(3, 4), eval_episodes=0, chunks=5)
    part = driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, stop_after=20, **RUN)
    assert part.updates_done == 20
    rest = driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    assert rest.updates_done == 50
    # run.json's timings are this process's; the totals add the interrupted process's.
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["seconds"] == round(rest.seconds, 4)
    assert record["seconds_total"] == pytest.approx(part.seconds + rest.seconds, abs=2e-4)
    assert record["compile_seconds_total"] == pytest.approx(
        part.compile_seconds + rest.compile_seconds, abs=2e-4
    )
    # Resuming the ended run trains nothing and leaves its record as it was (a no-op
    # --resume used to rewrite it with this process's zero seconds).
    before = (tmp_path / "run.json").read_bytes()
    again = driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    assert again.updates_done == 50 and again.seconds == 0.0
    assert (tmp_path / "run.json").read_bytes() == before
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(rest.state), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(full.metrics["loss"], rest.metrics["loss"])
    # A different config cannot resume this run; a Python caller is told its own keyword
    # arguments, not the command line's flags.
    with pytest.raises(ValueError, match="cannot resume") as e:
        driver.train(
            toy,
            toy.Config(learning_rate=0.2),
            "CartPole-v1",
            seeds=(3, 4),
            out_dir=tmp_path,
            resume=True,
            algo_name="toy",
        )
    assert "learning_rate: 0.1 in the run, 0.2 given" in str(e.value)
    assert str(e.value).endswith(
        "Pass the run's settings (`read_run(out_dir)` returns them), or start anew with "
        "overwrite=True or another out_dir."
    )
    assert driver.read_run(tmp_path)["config"]["learning_rate"] == 0.1


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
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "diverged" and "update 13" in run["error"]
    assert "Lower the learning rate" in run["error"]
    # ... and the learning curve of those good updates is drawn (it was missing).
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000
    # Diverging in the first chunk: no checkpoint of this run exists, so none is named, even
    # where the directory held an older run's checkpoint (replaced with --overwrite).
    with pytest.raises(DivergenceError) as info:
        driver.train(
            toy,
            toy.Config(nan_at=3),
            "CartPole-v1",
            seeds=(0,),
            eval_episodes=0,
            chunks=5,
            out_dir=tmp_path,
            overwrite=True,
            algo_name="toy",
        )
    assert "update 3 of 50" in str(info.value) and "No checkpoint of this run" in str(info.value)
    assert "checkpoint.msgpack'" not in str(info.value)
    assert not (tmp_path / "checkpoint.msgpack").exists()


def test_nonfinite_weights_stop_the_run(tmp_path):
    # A loss that stays finite while the weights do not (e.g. a clipped loss): still stopped.
    # (inf_weights_at=7: the weights are inf from update 7 on, the loss 0 throughout.)
    with pytest.raises(DivergenceError, match=r"weights became non-finite in updates 1-10 of 50"):
        driver.train(toy, toy.Config(inf_weights_at=7), "CartPole-v1", out_dir=tmp_path, **RUN)


def test_an_infinite_metric_stops_the_run_before_anything_is_written(tmp_path):
    # A loss that stays finite while another metric overflows (SAC at a huge learning rate:
    # grad_norm = inf): stopped and named, never written to metrics.json. (NaN in a metric
    # other than the loss means "not recorded" and is not a divergence.) (inf_return_at=17:
    # episode_return_sum is inf from update 17 on.)
    with pytest.raises(DivergenceError, match=r"episode_return_sum became inf at update 17 of 50"):
        driver.train(toy, toy.Config(inf_return_at=17), "CartPole-v1", out_dir=tmp_path, **RUN)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "diverged" and run["updates_done"] == 10
    assert "Infinity" not in (tmp_path / "metrics.json").read_text()
    m = {"loss": np.zeros((2, 3)), "q": np.array([[np.nan, 1.0, np.inf], [0.0, -np.inf, 2.0]])}
    assert driver._first_infinite(m) == ("q", 1, 1)
    assert driver._first_infinite({"loss": np.array([[np.nan, 1.0]])}) is None


def test_nan_episode_returns_before_the_loss_blame_the_environment():
    # Returns that went NaN no later than the loss: the env's rewards or observations, not
    # the learning rate (it always advised a lower one); returns that go NaN only after the
    # loss did (a diverged policy's actions) keep the learner's advice.
    run = {"seeds": (0,), "eval_episodes": 0, "chunks": 5}
    with pytest.raises(DivergenceError) as info:
        driver.train(toy, toy.Config(nan_at=13, nan_return_at=12), "CartPole-v1", **run)
    msg = str(info.value)
    assert "returned a NaN or infinite reward or observation first (at update 12, seed 0)" in msg
    assert "check the environment" in msg and "learning rate" not in msg
    with pytest.raises(DivergenceError, match="Lower the learning rate") as info:
        driver.train(toy, toy.Config(nan_at=13, nan_return_at=14), "CartPole-v1", **run)
    assert "reward or observation" not in str(info.value)


class _NaNRewardMidEpisode(Wrapper):
    """The wrapped env with a NaN reward at the third step of every episode."""

    def _reset(self, key, params=None):
        return self._env.reset(key, params)

    def _step(self, key, state, action, params=None):
        obs, st, r, term, trunc, info = self._env.step(key, state, action, params)
        return obs, st, jnp.where(st.time == 3, jnp.nan, r), term, trunc, info


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "config", "env_id"),
    [
        (
            "ppo",
            {"num_envs": 2, "num_steps": 2, "total_timesteps": 80, "minibatch_size": 4,
             "hidden_sizes": (8,)},
            "CartPole-v1",
        ),
        (
            "dqn",
            {"num_envs": 2, "train_frequency": 2, "total_timesteps": 80, "learning_starts": 8,
             "gradient_steps": 2, "batch_size": 8, "hidden_sizes": (8,)},
            "CartPole-v1",
        ),
        (
            "sac",
            {"total_timesteps": 40, "learning_starts": 8, "batch_size": 8, "hidden_sizes": (8,)},
            "Pendulum-v1",
        ),
    ],
)  # fmt: skip
def test_a_nan_reward_mid_episode_blames_the_environment(module, config, env_id):
    # Each algorithm counts the env steps with a NaN or infinite reward or observation
    # (`nonfinite_steps`), so the driver names the environment as soon as one happens. It
    # used to look only at the returns of the episodes that ended: a NaN reward in an
    # episode still running when the loss went NaN (here every episode, NaN at its third
    # step, is longer than an update) was reported as a learner's divergence, with the
    # advice to lower the learning rate.
    import importlib

    from bellmax.envs import make

    algo = importlib.import_module(f"bellmax.deep.{module}")
    env, _ = make(env_id)
    cfg = dataclasses.replace(algo.Config(), **config)
    with pytest.raises(DivergenceError) as info:
        driver.train(algo, cfg, _NaNRewardMidEpisode(env), eval_episodes=0, chunks=1)
    msg = str(info.value)
    assert "returned a NaN or infinite reward or observation first (at update " in msg, msg
    assert "check the environment" in msg and "learning rate" not in msg


def test_a_nan_stop_return_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="stop_return must be a finite number"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path / "r", stop_return=math.nan)
    assert not (tmp_path / "r").exists()


HOST_CONFIG = toy.Config(total_timesteps=400)
HOST_RUN = {"seeds": (0, 1), "eval_episodes": 1, "chunks": 2}


@pytest.fixture(scope="module")
def host_run():
    """Two seeds on Gymnasium's CartPole, run to the end (10 updates in chunks of 5) and then
    evaluated (one episode each, on evaluation environments of their own). A host env's
    programs are compiled for every run (no runner cache, no persistent cache for programs
    with host callbacks), so the tests below share this one."""
    return driver.train(toy, HOST_CONFIG, "gymnasium:CartPole-v1", **HOST_RUN)


def test_host_env_seeds_each_train_on_their_own_envs(host_run):
    """Seeds of a host (Gymnasium) env run one after another, each on host environments of
    its own: every seed's run is the one it has alone. (They shared one set before, so each
    seed's chunk went on from the episodes the other seed had left.) The two-seed run's final
    evaluation comes after its training, on environments of its own."""
    cfg = HOST_CONFIG
    env = "gymnasium:CartPole-v1"
    res = host_run
    assert res.updates_done == 10 and np.asarray(res.state.w).shape == (2, 4)
    assert res.metrics["episode_count"].sum() > 0
    for i, seed in enumerate((0, 1)):
        alone = driver.train(toy, cfg, env, seeds=(seed,), eval_episodes=0, chunks=2)
        for name, values in alone.metrics.items():
            np.testing.assert_array_equal(res.metrics[name][i], values[0], err_msg=name)
    from bellmax.envs.vector import make_vector_env

    obj = make_vector_env(env, num_envs=cfg.num_envs)
    with pytest.raises(ValueError, match="trains one seed, not 2: pass its id"):
        driver.train(toy, cfg, obj, seeds=(0, 1), eval_episodes=0)
    with pytest.raises(ValueError, match="would reset the episodes training is in; pass its id"):
        driver.train(toy, cfg, obj, seeds=(0,), eval_episodes=1, stop_return=1.0)


def test_resume_on_a_host_env_restarts_its_episodes(tmp_path, host_run):
    """A host env's episodes are in no checkpoint: a resumed run starts new ones (it raised
    gymnasium's ResetNeeded) and finishes; up to the checkpoint it is the uninterrupted run
    (`host_run`, with the same settings)."""
    cfg, env, kw = HOST_CONFIG, "gymnasium:CartPole-v1", HOST_RUN
    driver.train(toy, cfg, env, out_dir=tmp_path, stop_after=5, **kw)
    res = driver.train(toy, cfg, env, out_dir=tmp_path, resume=True, **kw)
    full = host_run
    assert res.updates_done == full.updates_done == 10
    np.testing.assert_array_equal(res.metrics["loss"][:, :5], full.metrics["loss"][:, :5])
    assert res.eval_returns.shape == (2, 1) and np.isfinite(res.eval_returns).all()


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="learning_rate"):
        driver.train(toy, toy.Config(learning_rate=-1.0), "CartPole-v1")
    with pytest.raises(TypeError, match=r"seeds=\(0, 1, 2\) or range\(3\); got 3"):
        driver.train(toy, toy.Config(), "CartPole-v1", seeds=3)
    from bellmax.deep import dqn, ppo

    with pytest.raises(TypeError, match=r"config is a bellmax.deep.dqn.Config; .*bellmax.deep.ppo"):
        driver.train(ppo, dqn.Config(), "CartPole-v1")
    with pytest.raises(TypeError, match="config is None"):
        driver.train("ppo", None, "CartPole-v1")
    imitated = tmp_path / "imitated"  # another command's output: its policy would be lost
    imitated.mkdir()
    (imitated / "imitation.json").write_text("{}")
    for flags in ({}, {"overwrite": True}):
        with pytest.raises(ValueError, match="holds a `bellmax imitate` run"):
            driver.train(toy, toy.Config(), "CartPole-v1", out_dir=imitated, **flags)
    assert os.listdir(imitated) == ["imitation.json"]
    (imitated / "imitation.json").unlink()
    imitated.rmdir()
    with pytest.raises(ValueError, match="distinct"):
        driver.train(toy, toy.Config(), "CartPole-v1", seeds=(1, 1))
    with pytest.raises(Exception, match="unknown algorithm"):
        driver.train("ppq", toy.Config(), "CartPole-v1")
    for kwargs, match in [
        ({"chunks": 0}, r"train.chunks must be an int >= 1"),
        ({"eval_episodes": -1}, r"train.eval_episodes must be an int >= 0"),
        ({"resume": True}, "need out_dir"),
        ({"out_dir": tmp_path, "resume": True, "overwrite": True}, "exclude each other"),
        ({"out_dir": "/proc/run"}, "system folder"),
    ]:
        with pytest.raises(ValueError, match=match):
            driver.train(toy, toy.Config(), "CartPole-v1", **kwargs)
    for kwargs in ({"chunks": 2.0}, {"eval_episodes": True}):
        with pytest.raises(TypeError, match="must be an int"):
            driver.train(toy, toy.Config(), "CartPole-v1", **kwargs)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path / "file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing was written


# ---- run directories: one writer, no overwriting by accident, one commit per chunk

RUN = {"seeds": (3, 4), "eval_episodes": 0, "chunks": 5, "algo_name": "toy"}


def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _same_state(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_a_run_is_never_overwritten_by_accident(tmp_path):
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=20, **RUN)
    before = _files(tmp_path)
    assert {"run.json", "checkpoint.msgpack", "metrics.json", "metrics.csv", ".lock"} <= set(before)
    # (in Python's words: the keyword arguments, not the command line's flags)
    with pytest.raises(ValueError, match=r"holds an earlier `bellmax train` run .*resume=True"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, **RUN)
    assert _files(tmp_path) == before  # byte for byte, no file added
    # --overwrite replaces it: a new run id, a fresh run from update 0.
    old_id = json.loads(before["run.json"])["run_id"]
    res = driver.train(
        toy, toy.Config(learning_rate=0.2), "CartPole-v1", out_dir=tmp_path, overwrite=True, **RUN
    )
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["run_id"] != old_id and run["status"] == "finished" and res.updates_done == 50
    assert run["config"]["learning_rate"] == 0.2
    # A directory of unrelated files (no run in it) is written into as before.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=other, stop_after=10, **RUN)
    assert (other / "notes.txt").read_text() == "mine"


def test_policy_file_is_a_run_output_written_for_bellmax_algorithms_only(tmp_path):
    # The toy algorithm is not one of bellmax's: its run has no policy file (bellmax cannot
    # describe its network); a policy file left by a replaced run is removed with the rest.
    assert "policy.msgpack" in driver.RUN_OUTPUTS["train"]
    (tmp_path / "policy.msgpack").write_bytes(b"an older run's policy")
    with pytest.raises(ValueError, match=r"earlier `bellmax train` run \(policy.msgpack\)"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, **RUN)
    driver.train(
        toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, overwrite=True, **RUN
    )
    assert not (tmp_path / "policy.msgpack").exists()
    assert (tmp_path / "checkpoint.msgpack").is_file()


def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path):
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, **RUN)
    before = _files(tmp_path)
    holder = FileLock(tmp_path / ".lock")  # another open file: flock refuses it like a process
    holder.acquire()
    try:
        for kwargs in ({"resume": True}, {"overwrite": True}, {}):
            with pytest.raises(BellmaxError, match="being written by another bellmax run"):
                driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, **RUN, **kwargs)
        assert _files(tmp_path) == before
    finally:
        holder.release()
    res = driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    assert res.updates_done == 50


def test_file_lock_contract(tmp_path):
    path = tmp_path / "d" / ".lock"
    a, b = FileLock(path), FileLock(path)
    assert not a.acquire(create=False) and not path.exists()  # looks without creating
    assert a.acquire() and a.held
    a.write_owner()
    with pytest.raises(LockHeldError) as info:
        b.acquire()
    assert info.value.owner == str(os.getpid())
    a.release()
    assert b.acquire(create=False) and b.held
    b.release()
    with pytest.raises(RuntimeError, match="acquire"):
        b.write_owner()


def test_an_env_id_read_from_a_file_never_imports_a_module(tmp_path, monkeypatch):
    # A run folder from elsewhere whose run.json names `module:Env-v0`: evaluating it
    # imported that module (from beside the notebook, or any installed one), running its
    # code. Refused, naming the way to trust it; the id given by the user is theirs.
    from bellmax.envs import registry

    assert registry.imported_module("payloadmod:CartPole-v1") == "payloadmod"
    assert registry.imported_module("gymnasium:CartPole-v1") is None
    assert registry.imported_module("gymnax:CartPole-v1") is None
    assert registry.imported_module("CartPole-v1") is None
    (tmp_path / "payloadmod.py").write_text("open(__file__ + '.ran', 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from bellmax.deep import reinforce
    from bellmax.train.checkpoint import save_checkpoint

    run = tmp_path / "run"
    cfg = reinforce.Config(total_timesteps=64, num_envs=4, num_steps=8, hidden_sizes=(4,))
    res = driver.train(reinforce, cfg, "CartPole-v1", out_dir=run, eval_episodes=0, chunks=1)
    ck = run / "checkpoint.msgpack"
    meta = {**driver.read_checkpoint_metadata(ck), "env": "payloadmod:CartPole-v1"}
    save_checkpoint(ck, {"state": res.state, "metrics": res.metrics}, metadata=meta)
    with pytest.raises(BellmaxError, match=r"imports the module 'payloadmod'.*env='payloadmod:"):
        driver.evaluate_checkpoint(run, episodes=1)
    assert not (tmp_path / "payloadmod.py.ran").exists()


def test_a_policy_files_recorded_num_envs_is_checked(tmp_path):
    # A policy file from elsewhere: its run's num_envs sizes the evaluation's environments.
    # A string was int()'s bare "invalid literal" ValueError; a negative count, JAX's.
    import hashlib

    import msgpack

    from bellmax.deep import reinforce

    run = tmp_path / "run"
    cfg = reinforce.Config(total_timesteps=64, num_envs=4, num_steps=8, hidden_sizes=(4,))
    driver.train(reinforce, cfg, "CartPole-v1", out_dir=run, eval_episodes=0, chunks=1)
    good = (run / "policy.msgpack").read_bytes()
    envelope = msgpack.unpackb(good, raw=False)
    body = msgpack.unpackb(envelope["body"], raw=False)
    assert body["header"]["run"]["num_envs"] == 4
    path = tmp_path / "p.msgpack"
    for bad in ("8", -3, True, 2.5):
        body["header"]["run"]["num_envs"] = bad
        raw = msgpack.packb(body)
        signed = {**envelope, "body": raw, "sha256": hashlib.sha256(raw).hexdigest()}
        path.write_bytes(msgpack.packb(signed))
        with pytest.raises(PolicyFileError, match=f"records num_envs={bad!r}, not a positive"):
            driver.evaluate_checkpoint(path, episodes=2)
    path.write_bytes(good)
    assert driver.evaluate_checkpoint(path, episodes=2)["episodes"] == 2


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_kept(tmp_path):
    # A run folder from elsewhere whose .lock linked to another file: resuming wrote the
    # process id over that file.
    victim = tmp_path / "notes.txt"
    victim.write_text("precious")
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path / "run", stop_after=20, **RUN)
    (tmp_path / "run" / ".lock").unlink()
    (tmp_path / "run" / ".lock").symlink_to(victim)
    with pytest.raises(BellmaxError, match=r"\.lock' is a symbolic link, not a lock file"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path / "run", resume=True, **RUN)
    assert victim.read_text() == "precious"


def test_resume_after_a_kill_between_checkpoint_and_metrics(tmp_path):
    """The old failure: a kill after the checkpoint but before metrics.json broke every resume
    (IndexError). Metrics now live in the checkpoint; the JSON/CSV files are derived."""
    full = driver.train(toy, toy.Config(), "CartPole-v1", **RUN)
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, **RUN)
    stale = (tmp_path / "metrics.json").read_bytes()
    driver.train(
        toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, stop_after=20, **RUN
    )
    first = json.loads((tmp_path / "run.json").read_text())["provenance"]
    (tmp_path / "metrics.json").write_bytes(stale)  # as if killed before rewriting it
    (tmp_path / "metrics.csv").unlink()
    (tmp_path / ".checkpoint.msgpack.999.dead.tmp").write_bytes(b"half")  # a writer's leftover
    rest = driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    _same_state(full.state, rest.state)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["provenance"] == first and run["resumed_with"]["time"] >= first["time"]
    for k in full.metrics:
        np.testing.assert_array_equal(full.metrics[k], rest.metrics[k])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert len(saved["loss"][0]) == 50 and not list(tmp_path.glob("*.tmp"))
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 50


def test_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    full = driver.train(toy, toy.Config(), "CartPole-v1", **RUN)
    # Nothing at all (killed during start-up), then only run.json (killed before chunk 1).
    for setup in ("nothing", "record"):
        d = tmp_path / setup
        if setup == "record":
            driver.train(toy, toy.Config(), "CartPole-v1", out_dir=d, stop_after=10, **RUN)
            (d / "checkpoint.msgpack").unlink()
        res = driver.train(toy, toy.Config(), "CartPole-v1", out_dir=d, resume=True, **RUN)
        _same_state(full.state, res.state)
        assert json.loads((d / "run.json").read_text())["status"] == "finished"


def test_a_checkpoint_of_another_run_is_never_used(tmp_path):
    # An --overwrite killed after its run.json: the old run's checkpoint is still there.
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=20, **RUN)
    run = json.loads((tmp_path / "run.json").read_text())
    run["run_id"] = "0123456789abcdef"
    (tmp_path / "run.json").write_text(json.dumps(run))
    full = driver.train(toy, toy.Config(), "CartPole-v1", **RUN)
    res = driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    assert res.seconds > 0 and res.updates_done == 50
    _same_state(full.state, res.state)
    meta = driver.read_checkpoint_metadata(tmp_path / "checkpoint.msgpack")
    assert meta["run_id"] == "0123456789abcdef"


def test_resume_with_other_settings_names_each_difference(tmp_path):
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, **RUN)
    before = _files(tmp_path)
    with pytest.raises(ValueError) as info:
        driver.train(
            toy,
            toy.Config(learning_rate=0.3, num_steps=20),
            "CartPole-v1",
            out_dir=tmp_path,
            resume=True,
            **{**RUN, "seeds": (3,)},
        )
    msg = str(info.value)
    assert "seeds: [3, 4] in the run, [3] given" in msg
    assert "num_steps: 10 in the run, 20 given; learning_rate: 0.1 in the run, 0.3 given" in msg
    assert "total_timesteps" not in msg and "\n" not in msg
    assert _files(tmp_path) == before
    stored = driver.read_run(tmp_path)
    assert driver.settings_differences(stored, {"config": {"learning_rate": 0.1}}) == []
    assert driver.settings_differences(stored, {"algo": "ppo", "config": {"x": 1}}) == [
        'algo: "toy" in the run, "ppo" given'
    ]


def test_settings_differences_name_the_fields_as_the_caller_does():
    # `bellmax train --resume --total-steps 4096` was refused naming `total_timesteps`, a
    # field the command line spells otherwise: the CLI passes its options' names
    from bellmax.cli.main import option_for

    stored = {"algo": "ppo", "seeds": [0], "config": {"total_timesteps": 2048, "gamma": 0.99}}
    given = {"seeds": [0, 1], "config": {"total_timesteps": 4096, "gamma": 0.9}}
    assert driver.settings_differences(stored, given) == [
        "seeds: [0] in the run, [0, 1] given",
        "total_timesteps: 2048 in the run, 4096 given",
        "gamma: 0.99 in the run, 0.9 given",
    ]
    assert driver.settings_differences(stored, given, names=option_for) == [
        "--seeds: [0] in the run, [0, 1] given",
        "--total-steps: 2048 in the run, 4096 given",
        "--gamma: 0.99 in the run, 0.9 given",
    ]
    # the run's other settings too (they were named by their keys: `eval_episodes: 10 ...`)
    stored = {"chunks": 4, "eval_episodes": 10, "stop_return": None}
    given = {"chunks": 2, "eval_episodes": 3, "stop_return": 475.0}
    assert driver.settings_differences(stored, given, names=option_for) == [
        "--chunks: 4 in the run, 2 given",
        "--eval-episodes: 10 in the run, 3 given",
        "--stop-return: null in the run, 475.0 given",
    ]


def test_damaged_checkpoint_is_named_on_resume(tmp_path):
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, **RUN)
    ck = tmp_path / "checkpoint.msgpack"
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"checkpoint.msgpack' is damaged .*truncated"):
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)


def test_runs_of_another_bellmax_version_are_refused(tmp_path):
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=10, **RUN)
    run = json.loads((tmp_path / "run.json").read_text())
    del run["format"]
    (tmp_path / "run.json").write_text(json.dumps(run))
    with pytest.raises(BellmaxError, match="written by another bellmax version") as e:
        driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    # named for a Python caller: its keyword arguments; for a command line: its options
    assert "start it anew with overwrite=True or choose another out_dir." in str(e.value)
    cli = {"out_dir": "--out"}.get
    with pytest.raises(BellmaxError, match="anew with --overwrite or choose another --out"):
        driver.read_run(tmp_path, names=cli)
    with pytest.raises(BellmaxError, match="does not fit this bellmax's toy Config") as e:
        driver.config_from_dict(toy, {**run["config"], "old_knob": 1})
    assert str(e.value).endswith("use that version, or train anew.")


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


def test_solved_seconds_count_the_training_before_a_resume(tmp_path, monkeypatch):
    # A run stopped unsolved after 2 chunks, then resumed and solved at the next evaluation:
    # solved_seconds was the resuming process's seconds alone, while solved_at_steps counts
    # the whole run's steps. (The evaluations are made to solve only in the second process.)
    cfg = toy.Config()
    real = driver._evaluate
    reach = {"now": False}

    def evaluate(*args):
        rets, ended = real(*args)
        return np.full_like(rets, 2.0 if reach["now"] else 0.0), ended

    monkeypatch.setattr(driver, "_evaluate", evaluate)
    run = {**RUN, "eval_episodes": 2, "stop_return": 1.0}
    part = driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, stop_after=20, **run)
    assert part.solved_at_steps == [None, None]
    reach["now"] = True
    rest = driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, resume=True, **run)
    record = json.loads((tmp_path / "run.json").read_text())
    assert rest.solved_at_steps == [30 * 40, 30 * 40] == record["solved_at_steps"]
    assert rest.solved_seconds == [record["seconds_total"]] * 2 == record["solved_seconds"]
    assert rest.solved_seconds[0] == pytest.approx(part.seconds + rest.seconds, abs=2e-4)


def test_evaluations_during_training_leave_host_episodes_alone():
    """With `stop_return` the driver evaluates after every chunk. On a host (Gymnasium) env the
    evaluations run on environments of their own, so training sees exactly the episodes it
    sees without them (on the training envs, each evaluation would reset them under it)."""
    cfg = toy.Config(total_timesteps=400)
    env = "gymnasium:CartPole-v1"
    plain = driver.train(toy, cfg, env, seeds=(0,), eval_episodes=0, chunks=4)
    judged = driver.train(toy, cfg, env, seeds=(0,), eval_episodes=2, chunks=4, stop_return=1e9)
    assert judged.solved_at_steps == [None] and judged.updates_done == plain.updates_done
    for name, values in plain.metrics.items():
        np.testing.assert_array_equal(judged.metrics[name], values, err_msg=name)
    np.testing.assert_array_equal(judged.state.w, plain.state.w)


def test_runs_that_differ_in_hyperparameter_values_share_the_compiled_programs(monkeypatch):
    """Another learning rate or discount is data to the compiled programs, not a new program:
    the second run compiles nothing, and gets what a run compiled for it alone gets. (Each
    value was a new ~5-10 s compile, in a notebook loop and across `bellmax train --lr`.)"""
    from bellmax.deep import ppo

    monkeypatch.setattr(driver, "_RUNNERS", {})
    small = {"num_envs": 4, "num_steps": 16, "minibatch_size": 32, "num_epochs": 2}
    cfg = ppo.Config(total_timesteps=512, hidden_sizes=(8,), **small)
    other = dataclasses.replace(cfg, learning_rate=3e-4, gamma=0.9, ent_coef=0.01)
    run = {"seeds": (0, 1), "eval_episodes": 0, "chunks": 2}
    first = driver.train(ppo, cfg, "CartPole-v1", **run)
    second = driver.train(ppo, other, "CartPole-v1", **run)
    assert len(driver._RUNNERS) == 1 and second.compile_seconds < 0.1 * first.compile_seconds
    monkeypatch.setattr(driver, "_RUNNERS", {})  # compiled for `other` alone
    alone = driver.train(ppo, other, "CartPole-v1", **run)
    for name, values in alone.metrics.items():
        np.testing.assert_array_equal(second.metrics[name], values, err_msg=name)
    assert not np.array_equal(first.metrics["loss"], second.metrics["loss"])
    assert driver.split_hyperparameters(other)[0] == driver.split_hyperparameters(cfg)[0]
    assert driver.split_hyperparameters(other)[1]["learning_rate"] == np.float32(3e-4)


def test_resume_by_a_bellmax_that_records_more_metrics(tmp_path, monkeypatch):
    """A run checkpointed by a bellmax whose algorithm recorded fewer metrics resumes under one
    that records more: the new metric is NaN over the earlier updates (it was a KeyError)."""
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=20, **RUN)
    real = toy.update

    def more(state, config, venv):
        state, m = real(state, config, venv)
        fields = {f.name: getattr(m, f.name) for f in dataclasses.fields(m)}
        return state, {**fields, "grad_norm": jnp.ones(())}

    monkeypatch.setattr(toy, "update", more)
    monkeypatch.setattr(driver, "_RUNNERS", {})  # compile the new update (shared cache)
    res = driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    g = res.metrics["grad_norm"]
    assert res.updates_done == 50 and np.isnan(g[:, :20]).all() and (g[:, 20:] == 1).all()


def _threads_of(monkeypatch, method: str) -> list[str]:
    """Record the thread each call of `driver._Runner.<method>` runs on (`_compile`: XLA's
    compile of a lowered chunk program; `_lower_chunk`: its tracing and lowering)."""
    threads: list[str] = []
    real = getattr(driver._Runner, method)

    def spy(self, *args, **kwargs):
        import threading

        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(driver._Runner, method, spy)
    return threads


class _NoBackground:
    """A `driver._background()` that fails the test if anything is submitted to it."""

    def submit(self, *args, **kwargs):
        raise AssertionError("compiled in a background thread on one CPU")


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_the_chunk_compiled_beside_init_is_the_same_program(monkeypatch, seeds):
    """On two or more CPUs the first chunk compiles in a background thread while `init`
    runs (and the evaluation program beside the first chunk), after it was traced and
    lowered in the caller's thread (Python in two threads takes turns on the GIL); on one
    CPU everything compiles in the foreground, nothing in a thread. The runs are the same,
    bit for bit."""
    cfg = toy.Config(total_timesteps=800)
    driver._RUNNERS.clear()
    threads = _threads_of(monkeypatch, "_compile")
    lowered_on = _threads_of(monkeypatch, "_lower_chunk")
    monkeypatch.setattr(driver, "_usable_cpus", lambda: 2)
    background = driver.train(toy, cfg, "CartPole-v1", seeds=seeds, chunks=2, eval_episodes=2)
    assert len(threads) == 1 and threads[0].startswith("bellmax-compile"), threads
    assert lowered_on == ["MainThread"]
    driver._RUNNERS.clear()
    monkeypatch.setattr(driver, "_usable_cpus", lambda: 1)
    monkeypatch.setattr(driver, "_background", _NoBackground)
    foreground = driver.train(toy, cfg, "CartPole-v1", seeds=seeds, chunks=2, eval_episodes=2)
    assert threads[1:] == ["MainThread"]
    # where the compile went: in the foreground the compile time is init's call and the one
    # chunk program's trace, lowering and XLA compile, one after another
    phases = foreground.compile_phases
    assert set(phases) == {"init", "chunk_trace", "chunk_lower", "chunk_compile"}
    assert all(v > 0 for v in phases.values()), phases
    assert sum(phases.values()) == pytest.approx(foreground.compile_seconds, rel=0.05, abs=0.01)
    assert foreground.summary()["compile_phases"] == {k: round(v, 4) for k, v in phases.items()}
    assert all(v > 0 for v in background.compile_phases.values()), background.compile_phases
    _same_state(background.state, foreground.state)
    np.testing.assert_array_equal(background.eval_returns, foreground.eval_returns)
    for name, values in foreground.metrics.items():
        np.testing.assert_array_equal(background.metrics[name], values, err_msg=name)
    driver._RUNNERS.clear()


def test_a_chunk_compiled_for_other_shapes_is_not_used(monkeypatch):
    """Should the state's shapes differ from the template the background compile started
    from, the chunk is compiled again for the real state (a wrong program never runs)."""
    driver._RUNNERS.clear()
    template = driver._Runner.template

    def wrong(self, keys):
        t = template(self, keys)
        return t.replace(update_index=jax.ShapeDtypeStruct(t.update_index.shape, jnp.int16))

    monkeypatch.setattr(driver._Runner, "template", wrong)
    monkeypatch.setattr(driver, "_usable_cpus", lambda: 2)
    threads = _threads_of(monkeypatch, "_compile")
    cfg = toy.Config(total_timesteps=400)
    res = driver.train(toy, cfg, "CartPole-v1", seeds=(0,), chunks=1, eval_episodes=0)
    assert threads[-1] == "MainThread" and res.updates_done == cfg.num_updates
    assert res.state.update_index.dtype == jnp.int32
    driver._RUNNERS.clear()


def test_an_error_in_the_background_compile_reaches_the_caller(monkeypatch):
    """An update that fails to trace fails `train` with its own error, raised in the
    caller's thread (not lost in the compile thread, not a hang)."""
    driver._RUNNERS.clear()

    def broken(state, config, venv):
        raise ValueError("update cannot be traced: the test's own error")

    monkeypatch.setattr(toy, "update", broken)
    monkeypatch.setattr(driver, "_usable_cpus", lambda: 2)
    with pytest.raises(ValueError, match="the test's own error"):
        driver.train(toy, toy.Config(total_timesteps=400), "CartPole-v1", eval_episodes=0)
    driver._RUNNERS.clear()


def test_a_run_that_stops_with_an_error_leaves_nothing_running(monkeypatch):
    """A run that diverges in its first chunk raised while its evaluation program was still
    compiling and running in a background thread, beside whatever the caller did next (the
    next test); `train` now returns or raises only once its background jobs have ended."""
    driver._RUNNERS.clear()
    monkeypatch.setattr(driver, "_usable_cpus", lambda: 2)
    warm = driver._warm_evaluation
    ended = []

    def slow_warm_evaluation(*args):
        import time

        time.sleep(1.0)  # longer than the first chunk takes to diverge
        try:
            return warm(*args)
        finally:
            ended.append(True)

    monkeypatch.setattr(driver, "_warm_evaluation", slow_warm_evaluation)
    with pytest.raises(DivergenceError, match="update 3 of"):
        driver.train(toy, toy.Config(nan_at=3), "CartPole-v1", seeds=(0,), eval_episodes=2)
    assert ended == [True]
    assert not driver._JOBS
    driver._RUNNERS.clear()


def test_counters_shared_across_seeds_leave_the_run_unchanged(monkeypatch):
    """An algorithm's `SHARED_ACROSS_SEEDS` fields (equal for every seed) enter the seeds'
    `vmap` unbatched; the run is the same, bit for bit, and the state keeps its layout."""
    cfg = toy.Config(total_timesteps=800)
    driver._RUNNERS.clear()
    plain = driver.train(toy, cfg, "CartPole-v1", seeds=(0, 1), chunks=2, eval_episodes=0)
    monkeypatch.setattr(toy, "SHARED_ACROSS_SEEDS", ("update_index",), raising=False)
    driver._RUNNERS.clear()
    shared = driver.train(toy, cfg, "CartPole-v1", seeds=(0, 1), chunks=2, eval_episodes=0)
    _same_state(plain.state, shared.state)
    assert shared.state.update_index.shape == (2,)
    for name, values in plain.metrics.items():
        np.testing.assert_array_equal(shared.metrics[name], values, err_msg=name)
    # A field that does depend on the seed cannot be shared: a clear error, not a wrong run.
    monkeypatch.setattr(toy, "SHARED_ACROSS_SEEDS", ("update_index", "w"), raising=False)
    driver._RUNNERS.clear()
    with pytest.raises(BellmaxError, match="SHARED_ACROSS_SEEDS"):
        driver.train(toy, cfg, "CartPole-v1", seeds=(0, 1), chunks=2, eval_episodes=0)
    driver._RUNNERS.clear()


@pytest.mark.parametrize("name", ["dqn", "td3"])
def test_a_cond_on_shared_counters_stays_a_branch_under_the_seeds_vmap(name):
    """With two seeds the off-policy update's `lax.cond`s (learning starts; TD3's delayed
    actor update) are still `case` ops in the chunk's program, not `select`s that compute
    both branches for every seed."""
    from bellmax.deep import get_algorithm
    from bellmax.envs.vector import make_vector_env

    algo = get_algorithm(name)
    cfg, hp = driver.split_hyperparameters(algo.Config())  # (as `_runner` builds it)
    env = {"dqn": "CartPole-v1", "td3": "Pendulum-v1"}[name]
    runner = driver._Runner(algo, cfg, make_vector_env(env, num_envs=cfg.num_envs), 2)
    keys = [jax.random.key(0), jax.random.key(1)]
    program = jax.jit(runner._scan(1)).lower(runner.template(keys), hp).as_text()
    assert program.count("stablehlo.case") >= {"dqn": 1, "td3": 2}[name]


def test_resume_with_other_env_parameters_is_refused(tmp_path):
    """The same id with other parameters (an env object) is another problem: refused by name."""
    from bellmax.envs import registry
    from bellmax.envs.vector import JaxVectorEnv

    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=20, **RUN)
    heavy = JaxVectorEnv(*registry.make("CartPole-v1", masspole=5.0), num_envs=4)
    with pytest.raises(ValueError, match=r"env parameter masspole: 0\.1.* in the run, 5\.0 given"):
        driver.train(toy, toy.Config(), heavy, out_dir=tmp_path, resume=True, **RUN)


def test_resume_under_other_xla_flags_warns(tmp_path):
    """A resume under other XLA_FLAGS compiles other code: it goes on, and says the result
    will not be bit-identical (the command sets bellmax's XLA defaults, Python does not)."""
    driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, stop_after=20, **RUN)
    record = json.loads((tmp_path / "run.json").read_text())
    record["provenance"]["platform"]["xla_flags"] = "--xla_some_other_flag=true"
    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.warns(UserWarning, match="XLA_FLAGS .* not be bit-identical"):
        res = driver.train(toy, toy.Config(), "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    assert res.updates_done == 50


def test_learning_curves_hold_through_windows_without_an_episode():
    # learning_curve.png had gaps wherever no episode ended in a window (long episodes, short
    # windows), and the mean over seeds jumped where one seed had a gap. A window without an
    # episode now holds the seed's last value, and the mean starts once every seed has one.
    from bellmax.train.driver import learning_curves

    returns = np.array([[10.0, 0, 0, 30, 0], [0, 0, 20, 0, 40]])
    counts = np.array([[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    curves, mean = learning_curves(returns, counts, window=1)
    np.testing.assert_array_equal(curves[0], [10, 10, 10, 30, 30])
    np.testing.assert_array_equal(curves[1], [np.nan, np.nan, 20, 20, 40])
    np.testing.assert_array_equal(mean, [np.nan, np.nan, 15, 25, 35])
    curves, mean = learning_curves(returns, counts, window=2)  # sums over two updates
    np.testing.assert_array_equal(curves, [[10, 10, 30, 30], [np.nan, 20, 20, 40]])
    # a NaN return (a diverged run) stays visible, not held over
    curves, _ = learning_curves(np.array([[1.0, np.nan, 0]]), np.array([[1, 1, 0]]), 1)
    np.testing.assert_array_equal(curves[0], [1, np.nan, np.nan])


def test_evaluation_episodes_cut_off_by_the_step_cap_are_counted(capsys):
    # An episode still running when the evaluation's 10,000-step cap ran out was reported as
    # an episode's return (CliffWalking: -10000 "over 2 episodes"); the summaries now count
    # them, and the command line warns.
    from bellmax.envs.vector import make_vector_env

    def zero(params, obs, key):
        return jnp.zeros((obs.shape[0], 1), jnp.float32)

    params = jnp.zeros((1, 1))
    for limit, cut in ((200, 0), (20_000, 2)):
        venv = make_vector_env("Pendulum-v1", num_envs=2, max_steps_in_episode=limit)
        evaluated = driver._evaluate_seeds(zero, params, venv, (0,), 2)
        summary = driver._evaluation_summary("x", "Pendulum-v1", (0,), 1, evaluated, 0.0, "s")
        assert summary["episodes"] == 2 and summary["episodes_cut_off"] == cut
    from bellmax.cli.train import _warn_cut_off

    _warn_cut_off(0, 2, (0,))
    assert capsys.readouterr().err == ""
    _warn_cut_off(3, 2, (0, 1))
    assert "3 of 4 evaluation episodes had not ended after 10,000 steps" in capsys.readouterr().err


def test_the_run_record_follows_the_checkpoints(tmp_path):
    # run.json said "updates_done": 0 until the run ended (or for good after a kill); it is
    # now rewritten after each checkpoint.
    seen = []

    def on_chunk(info):
        record = json.loads((tmp_path / "run.json").read_text())
        seen.append((record["status"], record["updates_done"], info.updates_done))

    driver.train(
        toy,
        toy.Config(),
        "CartPole-v1",
        out_dir=tmp_path,
        stop_after=20,
        on_chunk=on_chunk,
        **RUN,
    )
    assert seen == [("running", u, u) for u in (10, 20)]


def test_an_interrupted_run_says_so_and_resumes(tmp_path):
    """Ctrl-C (a KeyboardInterrupt) after the second chunk: run.json says "interrupted" with
    the two chunks its checkpoint holds (it said "running", as if the process still ran), and
    `resume` ends the run as an uninterrupted one ends it."""
    cfg = toy.Config()

    def ctrl_c(info):
        if info.updates_done == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, on_chunk=ctrl_c, **RUN)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["status"] == "interrupted" and record["updates_done"] == 20
    rest = driver.train(toy, cfg, "CartPole-v1", out_dir=tmp_path, resume=True, **RUN)
    full = driver.train(toy, cfg, "CartPole-v1", **RUN)
    assert rest.updates_done == 50
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "finished"
    np.testing.assert_array_equal(full.metrics["loss"], rest.metrics["loss"])


def test_the_runners_kept_are_the_most_recently_used(monkeypatch):
    # Each runner holds its compiled programs (~50 MB for a small PPO): 16 were kept, the
    # oldest made first evicted even when just used; a notebook's hidden-size sweep passed
    # 1 GB. Now the 4 most recently used.
    monkeypatch.setattr(driver, "_RUNNERS", {})
    run = {"seeds": (0,), "eval_episodes": 0, "chunks": 1}
    configs = [toy.Config(nan_return_at=-2 - i) for i in range(6)]  # (never NaN: distinct)
    driver.train(toy, configs[0], "CartPole-v1", **run)
    (first,) = driver._RUNNERS.values()
    for cfg in configs[1:4]:
        driver.train(toy, cfg, "CartPole-v1", **run)
    driver.train(toy, configs[0], "CartPole-v1", **run)  # used again: now the newest
    driver.train(toy, configs[4], "CartPole-v1", **run)  # evicts configs[1]'s
    assert len(driver._RUNNERS) == driver._RUNNERS_KEPT == 4
    assert first in driver._RUNNERS.values()
    assert [k[1] for k in driver._RUNNERS] == [configs[i] for i in (2, 3, 0, 4)]
