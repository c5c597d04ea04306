"""`bellmax evaluate DIR [--env OTHER]`: from the run's policy file, on any env with its spaces.

The same tiny PPO budget as tests/cli/test_train.py (4 updates of 8 x 32 steps, so the
driver's compiled program is shared when both files run in one process): plumbing, not
learning.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from bellmax.cli.main import main
from bellmax.deep import ppo
from bellmax.policy import PolicyFileError, load_policy, read_policy_file
from bellmax.train import driver
from bellmax.train.checkpoint import checkpoint_digest

CONFIG = ppo.Config(total_timesteps=1024, num_epochs=2)


def _train(out, **kwargs):
    return driver.train(
        ppo, CONFIG, "CartPole-v1", out_dir=out, chunks=2, eval_episodes=2, **kwargs
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluate") / "run"
    return out, _train(out)


def _json(capsys, *argv: str) -> dict:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def _error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("bellmax: error: ") and err.count("\n") == 1, err
    return err


def test_the_run_writes_a_policy_file_of_its_last_checkpoint(run):
    out, res = run
    header, weights = read_policy_file(out / "policy.msgpack")
    record = json.loads((out / "run.json").read_text())
    assert header["algorithm"] == "ppo" and header["seeds"] == [0]
    assert header["run"]["run_id"] == record["run_id"] and header["run"]["updates_done"] == 4
    assert header["run"]["env"] == "CartPole-v1" and header["run"]["env_steps"] == 1024
    assert header["run"]["checkpoint_sha256"] == checkpoint_digest(out / "checkpoint.msgpack")
    assert header["run"]["eval_return_per_seed"] == record["eval_return_per_seed"]
    assert weights["hidden_0/kernel"].shape == (1, 4, 64)  # the actor only: no critic weights
    assert not any("value" in k or "critic" in k for k in weights)


def test_evaluate_on_gymnasiums_cartpole_from_a_bellmax_cartpole_run(run, capsys):
    out, res = run
    ev = _json(capsys, "evaluate", str(out), "--episodes", "2", "--json")
    assert ev["source"] == str(out / "policy.msgpack")
    assert ev["mean_return"] == pytest.approx(res.final_eval_return)  # the run's own numbers
    ev = _json(capsys, "evaluate", str(out), "--env", "gymnasium:CartPole-v1", "--json")
    assert ev["env"] == "gymnasium:CartPole-v1" and ev["episodes"] == 10
    assert ev["updates_done"] == 4 and np.isfinite(ev["mean_return"]) and ev["mean_return"] >= 8
    # The policy file alone (copied anywhere) evaluates the same, on its run's env by default.
    alone = out.parent / "alone.msgpack"
    shutil.copy(out / "policy.msgpack", alone)
    ev2 = _json(capsys, "evaluate", str(alone), "--episodes", "2", "--json")
    assert ev2["env"] == "CartPole-v1" and ev2["mean_return"] == pytest.approx(
        res.final_eval_return
    )


def test_an_env_with_other_spaces_is_refused_naming_them(run, capsys):
    out, _ = run
    err = _error(capsys, "evaluate", str(out), "--env", "gymnasium:Pendulum-v1")
    assert "observation space Box(4,) in the run, Box(3,) in gymnasium:Pendulum-v1" in err
    assert "action space Discrete(2) in the run, Box(1,) in gymnasium:Pendulum-v1" in err
    err = _error(capsys, "evaluate", str(out), "--env", "Pendulum-v1")
    assert "observation space Box(4,) in the run, Box(3,) in Pendulum-v1" in err


def test_a_stale_policy_file_is_not_used_and_resume_rewrites_it(tmp_path, capsys):
    # A kill between a chunk's checkpoint and its policy file leaves the policy one commit
    # behind: evaluate then reads the checkpoint (its template from the run's own env, so
    # --env still works), and `--resume` rewrites the policy file.
    out = tmp_path / "run"
    _train(out, stop_after=2)
    stale = (out / "policy.msgpack").read_bytes()
    assert read_policy_file(out / "policy.msgpack")[0]["run"]["updates_done"] == 2
    res = _train(out, resume=True)
    (out / "policy.msgpack").write_bytes(stale)
    ev = _json(capsys, "evaluate", str(out), "--episodes", "2", "--json")
    assert ev["source"] == str(out / "checkpoint.msgpack") and ev["updates_done"] == 4
    assert ev["mean_return"] == pytest.approx(res.final_eval_return)
    ev = _json(capsys, "evaluate", str(out), "--env", "gymnasium:CartPole-v1", "--json")
    assert ev["source"] == str(out / "checkpoint.msgpack") and np.isfinite(ev["mean_return"])
    err = _error(capsys, "evaluate", str(out), "--env", "gymnasium:Pendulum-v1")
    assert "observation space Box(4,) in the run, Box(3,) in gymnasium:Pendulum-v1" in err
    # --resume on the finished run trains nothing and brings the policy file up to date.
    assert main(["train", "ppo", "--out", str(out), "--resume", "--json"]) == 0
    capsys.readouterr()
    assert load_policy(out).header["run"]["updates_done"] == 4
    ev = _json(capsys, "evaluate", str(out), "--episodes", "2", "--json")
    assert ev["source"] == str(out / "policy.msgpack")
    assert ev["mean_return"] == pytest.approx(res.final_eval_return)


def test_a_training_state_this_bellmax_cannot_read_does_not_matter(run, capsys, monkeypatch):
    # An optimiser whose state has another structure (as after an optax upgrade): the full
    # training state no longer fits, the policy file does.
    import optax

    out, res = run
    make = ppo.optimizer
    monkeypatch.setattr(
        ppo, "optimizer", lambda config: optax.chain(optax.identity(), make(config))
    )
    ev = _json(capsys, "evaluate", str(out), "--episodes", "2", "--json")
    assert ev["mean_return"] == pytest.approx(res.final_eval_return)
    moved = out.parent / "policy.moved"
    shutil.move(out / "policy.msgpack", moved)
    try:
        err = _error(capsys, "evaluate", str(out))
        assert "holds a different state structure" in err
    finally:
        shutil.move(moved, out / "policy.msgpack")


def test_video_writes_one_greedy_episode(run, capsys, tmp_path):
    """`--video FILE.gif` writes the best seed's greedy episode, one frame per step plus the
    first; a suffix that is not .gif/.mp4 and a gymnasium env (no frames) are refused."""
    from PIL import Image

    out, _ = run
    gif = tmp_path / "episode.gif"
    res = _json(capsys, "evaluate", str(out), "--episodes", "1", "--json", "--video", str(gif))
    steps = res["video"]["steps"]
    assert res["video"]["path"] == str(gif) and steps >= 1
    with Image.open(gif) as im:
        assert im.size[0] > 0 and 1 <= im.n_frames <= steps + 1  # still frames merge
    err = _error(capsys, "evaluate", str(out), "--video", str(tmp_path / "x.avi"))
    assert ".gif or .mp4" in err
    assert not (tmp_path / "x.avi").exists()


def test_a_gps_run_and_its_neural_policy_say_how_they_are_read(tmp_path, capsys):
    # they act on the state vector, not on observations: `evaluate` said "no bellmax run"
    # of the directory and "not a bellmax policy file" of the file, with no way on
    import jax

    from bellmax.core.io import CONTROLLER_NPZ, NEURAL_POLICY_MSGPACK
    from bellmax.models.through_model import make_neural_policy, neural_policy_to_bytes

    policy = make_neural_policy("Pendulum-v1", hidden_sizes=(4,))
    (tmp_path / CONTROLLER_NPZ).write_bytes(b"")
    (tmp_path / NEURAL_POLICY_MSGPACK).write_bytes(
        neural_policy_to_bytes(policy, policy.init(jax.random.key(0)))
    )
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds a `bellmax gps` run" in err and "acts on the environment's state vector" in err
    assert "result.json" in err
    # the Python line names the file to read (it said `open(path, 'rb')`)
    file = repr(str(tmp_path / NEURAL_POLICY_MSGPACK))
    assert f"neural_policy_from_bytes(open({file}, 'rb').read())" in err
    # and acts on a NumPy float64 state, as it says, without a float64 warning
    import warnings

    import numpy as np

    from bellmax.models.through_model import neural_policy_from_bytes

    back, params = neural_policy_from_bytes((tmp_path / NEURAL_POLICY_MSGPACK).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.shape(back(params, np.array([0.1, -0.2, 0.3]))) == (1,)
    assert main(["evaluate", str(tmp_path / NEURAL_POLICY_MSGPACK)]) == 2
    err = capsys.readouterr().err
    assert "is the neural policy of `bellmax gps --policy mdgps`" in err
    assert "policy(params, state) acts" in err and err.count("\n") == 1
    with pytest.raises(PolicyFileError, match="it is not a Policy"):
        load_policy(tmp_path / NEURAL_POLICY_MSGPACK)
    # a linear-controller run has no neural policy: no Python line for one
    (tmp_path / NEURAL_POLICY_MSGPACK).unlink()
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds a `bellmax gps` run: its controller (controller.npz) acts" in err
    assert "neural_policy_from_bytes" not in err
