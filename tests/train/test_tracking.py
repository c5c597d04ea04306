"""Experiment tracking (bellmax.train.tracking): per-chunk scalars, TensorBoard event files
written and read back, W&B offline (where wandb is installed), the missing-package errors.

The TensorBoard files are read back by `read_scalars`, which parses TensorFlow's TFRecord
framing itself (length, masked CRC-32C, data, masked CRC-32C) and decodes each record as an
`Event` protocol buffer: what TensorBoard reads. (TensorBoard's own `EventAccumulator` read
the files of a `bellmax train ppo --log tensorboard` run to the same points when checked by
hand; it is not a test dependency.)
"""

import csv
import math
import sys

import numpy as np
import pytest

from bellmax.core.errors import BellmaxError
from bellmax.train import tracking
from bellmax.train.tracking import (
    TensorBoardTracker,
    Tracker,
    check_tracker,
    chunk_scalars,
    make_tracker,
    progress_text,
    read_scalars,
)


def _needs_tensorboardx():
    pytest.importorskip("tensorboardX")


def test_chunk_scalars_by_hand():
    # Shows: the chunk's mean episode return pools all seeds' episodes (sum of returns over
    # number of episodes), every other metric is its mean over seeds and updates (a bool:
    # the fraction true), and the episode counters are not averaged themselves.
    m = {
        "env_steps": np.array([[256, 512], [256, 512]]),
        "episode_return_sum": np.array([[10.0, 30.0], [0.0, 20.0]], np.float32),
        "episode_count": np.array([[1, 2], [0, 1]], np.int32),
        "loss": np.array([[1.0, 2.0], [3.0, 6.0]], np.float32),
        "learning": np.array([[False, True], [True, True]]),
    }
    s = chunk_scalars(m)
    assert list(s) == ["episode_return", "loss", "learning"]
    assert s == {"episode_return": 60.0 / 4, "loss": 3.0, "learning": 0.75}
    assert all(type(v) is float for v in s.values())
    none_ended = chunk_scalars({**m, "episode_count": np.zeros((2, 2), np.int32)})
    assert math.isnan(none_ended["episode_return"])


def test_tensorboard_event_file_round_trip(tmp_path):
    # Shows: each `log` is one point per scalar at its step, readable at once (flushed, before
    # close); a non-finite value is left out of its series; a closed tracker refuses to log.
    _needs_tensorboardx()
    tracker = TensorBoardTracker(tmp_path / "tb")
    assert isinstance(tracker, Tracker)
    tracker.log(256, {"episode_return": math.nan, "loss": 0.5})
    tracker.log(512, {"episode_return": 21.5, "loss": 0.25, "entropy": 0.69})
    assert read_scalars(tmp_path / "tb")["loss"] == [(256, 0.5), (512, 0.25)]
    tracker.log(768, {"episode_return": 40.0, "loss": np.float32(0.125), "entropy": 0.6})
    tracker.close()
    tracker.close()  # idempotent
    got = read_scalars(tmp_path / "tb")
    assert got["episode_return"] == [(512, 21.5), (768, 40.0)]
    assert got["loss"] == [(256, 0.5), (512, 0.25), (768, 0.125)]
    assert [s for s, _ in got["entropy"]] == [512, 768]
    np.testing.assert_allclose([v for _, v in got["entropy"]], [0.69, 0.6], rtol=1e-6)
    with pytest.raises(BellmaxError, match="closed"):
        tracker.log(1024, {"loss": 1.0})


def test_read_scalars_refuses_damaged_files(tmp_path):
    # Shows: a flipped byte (bad checksum) or a cut file is an error naming the file, not
    # silently fewer points; a directory without event files says so.
    _needs_tensorboardx()
    with TensorBoardTracker(tmp_path) as tracker:
        tracker.log(1, {"loss": 1.0})
        tracker.log(2, {"loss": 2.0})
    (file,) = tmp_path.glob("events.out.tfevents.*")
    data = bytearray(file.read_bytes())
    data[-6] ^= 0xFF
    file.write_bytes(bytes(data))
    with pytest.raises(BellmaxError, match="bad checksum"):
        read_scalars(tmp_path)
    file.write_bytes(bytes(data[:-3]))
    with pytest.raises(BellmaxError, match="truncated"):
        read_scalars(file)
    with pytest.raises(BellmaxError, match="no TensorBoard event file"):
        read_scalars(tmp_path / "empty")


def test_make_tracker(tmp_path):
    # Shows: no tracker for None/"none"; TensorBoard files go to OUT/tensorboard/; an unknown
    # name is a ValueError listing the known ones, raised by check_tracker too (which
    # creates nothing: the CLI calls it before training).
    _needs_tensorboardx()
    assert make_tracker(None, tmp_path) is None
    assert make_tracker("none", tmp_path) is None
    tracker = make_tracker("tensorboard", tmp_path)
    tracker.log(10, {"loss": 1.0})
    tracker.close()
    (first,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    # A resumed run adds a file; a fresh one (an overwritten run) replaces the old ones.
    make_tracker("tensorboard", tmp_path).close()
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 2
    tracker = make_tracker("tensorboard", tmp_path, fresh=True)
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*")) == [tracker.path]
    tracker.close()
    for bad in (make_tracker, lambda kind, _: check_tracker(kind)):
        with pytest.raises(ValueError, match=r"unknown tracker 'tensorbord'.*'tensorboard'"):
            bad("tensorbord", tmp_path / "new")
    check_tracker(None)
    check_tracker("tensorboard")
    assert not (tmp_path / "new").exists()


def test_missing_packages_say_how_to_install(tmp_path, monkeypatch):
    # Shows: without tensorboardX or wandb (imports blocked here) the trackers raise an
    # ImportError that names the pip command; nothing else imports them.
    for name in [m for m in sys.modules if m.split(".")[0] in ("tensorboardX", "wandb")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        check_tracker("tensorboard")
    with pytest.raises(ImportError, match="pip install tensorboardX"):
        make_tracker("tensorboard", tmp_path)
    with pytest.raises(ImportError, match="pip install wandb"):
        make_tracker("wandb", tmp_path)
    with pytest.raises(ValueError, match="not a wandb mode"):
        tracking.WandbTracker("p", tmp_path, mode="offlin")


def test_wandb_offline_run(tmp_path, monkeypatch):
    # Shows: with wandb installed, `--log wandb` writes an offline run under OUT/wandb/
    # (offline unless WANDB_MODE says otherwise; no login, no network).
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    tracker = make_tracker("wandb", tmp_path, project="bellmax-test", config={"lr": 1e-3})
    tracker.log(256, {"episode_return": 21.0, "loss": 0.5, "approx_kl": math.nan})
    tracker.log(512, {"episode_return": 30.0, "loss": 0.4})
    tracker.close()
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    (data,) = run.glob("run-*.wandb")
    assert data.stat().st_size > 0


def test_progress_text():
    # Shows: the progress line holds the first two finite of loss, entropy, q_mean, approx_kl.
    assert progress_text({"loss": 0.031234, "entropy": 0.6812, "approx_kl": 0.01}) == (
        "loss 0.0312 entropy 0.681"
    )
    assert progress_text({"loss": math.nan, "q_mean": 12.345, "epsilon": 1.0}) == "q_mean 12.3"
    assert progress_text({"episode_return": 20.0}) == ""


def _chunk_means(csv_path, chunk: int) -> dict[str, np.ndarray]:
    """Per chunk of `chunk` updates, from metrics.csv (a row per seed and update): the pooled
    mean episode return and the mean of each other metric over the chunk's rows."""
    rows = list(csv.DictReader(csv_path.read_text().splitlines()))
    updates = np.array([int(r["update"]) for r in rows])
    index = (updates - 1) // chunk
    out = {}
    for name in rows[0]:
        if name in ("update", "seed", "mean_episode_return"):
            continue
        col = np.array(
            [
                float(r[name] == "True") if r[name] in ("True", "False") else float(r[name])
                for r in rows
            ]
        )
        out[name] = np.array([col[index == k] for k in range(index.max() + 1)])
    ret, cnt = out.pop("episode_return_sum"), out.pop("episode_count")
    # (nonfinite_steps, 0 in a run that goes on, is left out like env_steps)
    out = {k: v.mean(axis=1) for k, v in out.items() if k not in ("env_steps", "nonfinite_steps")}
    out["episode_return"] = ret.sum(axis=1) / cnt.sum(axis=1)
    return out


def test_bellmax_train_log_tensorboard_holds_the_return_curve(tmp_path, capsys):
    # Shows: `bellmax train ppo --log tensorboard` writes OUT/tensorboard/ event files holding
    # one point per chunk (at the env steps per seed) of the mean episode return and of every
    # metric (losses, entropy, approx KL, clip fraction, learning rate, gradient norm), equal
    # to the chunk's means in metrics.csv (both seeds pooled).
    _needs_tensorboardx()
    from bellmax.cli.main import main

    out = tmp_path / "run"
    argv = ["train", "ppo", "--total-steps", "1024", "--num-epochs", "2", "--chunks", "4"]
    argv += ["--seeds", "2", "--eval-episodes", "0", "--log", "tensorboard", "--out", str(out)]
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    got = read_scalars(out / "tensorboard")
    want = _chunk_means(out / "metrics.csv", chunk=1)
    names = ["episode_return", "loss", "policy_loss", "value_loss", "entropy", "approx_kl"]
    names += ["clip_fraction", "learning_rate", "grad_norm"]
    assert set(names) <= set(got) and set(got) == set(want)
    for name in got:
        steps = [s for s, _ in got[name]]
        assert steps == [256, 512, 768, 1024], name
        np.testing.assert_allclose([v for _, v in got[name]], want[name], rtol=1e-6, err_msg=name)
    assert got["learning_rate"][0][1] > got["learning_rate"][-1][1] > 0  # annealed
    # --overwrite replaces the run's curve too (not a second run drawn over the first).
    assert main([*argv, "--overwrite", "--json"]) == 0
    assert read_scalars(out / "tensorboard") == got  # the same run again, bit for bit
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1
    # Without --log no tracker writes anything.
    assert main([*argv[:-4], "--out", str(tmp_path / "plain"), "--json"]) == 0
    assert not (tmp_path / "plain" / "tensorboard").exists()
