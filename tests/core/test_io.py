"""Tests for bellmax.core.io: atomic writes."""

from __future__ import annotations

import pytest

from bellmax.core.io import atomic_open


def test_atomic_open_writes_and_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "file.bin"
    with atomic_open(target) as f:
        f.write(b"hello")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_bytes() == b"hello"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]  # no temporary left


def test_atomic_open_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target) as f:
            f.write(b"new, half written")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.bin"]


def test_atomic_open_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        with atomic_open(tmp_path):
            pass


def test_check_output_path_refuses_bad_targets(tmp_path):
    from bellmax.core.io import check_output_path

    afile = tmp_path / "f.txt"
    afile.write_text("x")
    with pytest.raises(ValueError, match="under /proc"):
        check_output_path("/proc/bellmax-out", kind="dir")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        check_output_path(afile, kind="dir")
    with pytest.raises(ValueError, match="is a directory"):
        check_output_path(tmp_path, kind="file", option="--plot")
    with pytest.raises(ValueError, match="cannot be created"):
        check_output_path(afile / "sub" / "x.png", kind="file")
    for empty in ("", "  "):
        with pytest.raises(ValueError, match="--out is empty"):
            check_output_path(empty, kind="dir")
    with pytest.raises(ValueError, match="kind must be"):
        check_output_path(tmp_path, kind="folder")
    # what the operating system refuses is a clear ValueError too, naming the path
    with pytest.raises(ValueError, match="cannot be used: File name too long"):
        check_output_path(tmp_path / ("a" * 300), kind="dir")
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    with pytest.raises(ValueError, match=r"cannot be used: .*[Ss]ymlink loop"):
        check_output_path(tmp_path / "loop_a" / "run", kind="dir")
    assert check_output_path(tmp_path / "new" / "run", kind="dir") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # nothing is created
    assert afile.read_text() == "x"


def test_check_run_dir_refuses_another_commands_output(tmp_path):
    from bellmax.core.io import check_run_dir

    train = tmp_path / "train"
    train.mkdir()
    (train / "run.json").write_text("{}")
    (train / "policy.msgpack").write_bytes(b"the train run's policy")
    for command in ("imitate", "gps", "mbrl"):
        with pytest.raises(ValueError, match=r"holds a `bellmax train` run \(run.json\).*pick"):
            check_run_dir(train, command)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "sweep.json").write_text("{}")
    with pytest.raises(ValueError, match=r"--out '.*sweep' holds a `bellmax sweep` run"):
        check_run_dir(sweep, "imitate")
    # an empty or a missing directory is fine
    check_run_dir(train / "new", "gps")
    assert (train / "policy.msgpack").read_bytes() == b"the train run's policy"
    assert not (train / "new").exists()  # nothing is created
    with pytest.raises(ValueError, match="command must be one of"):
        check_run_dir(tmp_path, "trian")


def test_check_run_dir_refuses_the_commands_own_output_unless_overwritten(tmp_path):
    # `bellmax imitate ... --out DIR` replaced an earlier imitation run's policy and labels
    # without a word (as mbrl and gps did theirs); now it takes --overwrite, which is named
    from bellmax.core.io import check_run_dir

    (tmp_path / "imitation.json").write_text("{}")
    (tmp_path / "policy.msgpack").write_bytes(b"the first run's policy")
    with pytest.raises(ValueError) as e:
        check_run_dir(tmp_path, "imitate")
    msg = str(e.value)
    assert "holds an earlier `bellmax imitate` run (imitation.json, policy.msgpack)" in msg
    assert "give another --out, or --overwrite to replace it" in msg
    check_run_dir(tmp_path, "imitate", overwrite=True)
    with pytest.raises(ValueError, match="holds a `bellmax imitate` run"):  # not another's
        check_run_dir(tmp_path, "mbrl", overwrite=True)
    assert (tmp_path / "policy.msgpack").read_bytes() == b"the first run's policy"
    # no directory: nothing to check, and nothing to overwrite
    check_run_dir(None, "gps")
    with pytest.raises(ValueError, match=r"--overwrite replaces .* give --out DIR"):
        check_run_dir(None, "gps", overwrite=True)


def test_run_markers_are_the_names_the_commands_write():
    # One spelling: the train driver and the sweep take their file names from core.io, and
    # RUN_MARKERS is built from the same constants (each module spelled them out again, so a
    # renamed file would have left check_run_dir looking for the old name).
    import bellmax.core.io as core_io
    from bellmax.train import driver, sweep

    assert core_io.RUN_MARKERS["train"] == (core_io.RUN_JSON, core_io.CHECKPOINT)
    assert core_io.RUN_MARKERS["sweep"] == (
        core_io.SWEEP_JSON,
        core_io.RESULTS_JSON,
        core_io.RESULTS_CSV,
    )
    from bellmax.cli import gps, imitate, mbrl

    assert core_io.RUN_MARKERS["imitate"] == (
        core_io.IMITATION_JSON,
        core_io.DATASET_NPZ,
        core_io.HUMAN_LABELS_NPZ,
    )
    assert core_io.RUN_MARKERS["gps"] == (core_io.CONTROLLER_NPZ,)
    assert core_io.RUN_MARKERS["mbrl"] == (core_io.RETURNS_PNG, core_io.ROLLOUTS_PNG)
    uses = {driver: ("RUN_JSON", "CHECKPOINT", "METRICS_JSON", "METRICS_CSV",
                     "LEARNING_CURVE_PNG", "RUN_OUTPUTS"),
            sweep: ("SWEEP_JSON", "RESULTS_JSON", "RESULTS_CSV", "CHECKPOINT", "SWEEP_PLOT",
                    "SWEEP_GROUPS", "SWEEP_RAY"),
            imitate: ("IMITATION_JSON", "DATASET_NPZ", "HUMAN_LABELS_NPZ", "POLICY_MSGPACK",
                      "RETURN_VS_LABELS_PNG"),
            gps: ("CONTROLLER_NPZ", "RESULT_JSON", "NEURAL_POLICY_MSGPACK"),
            mbrl: ("RETURNS_PNG", "ROLLOUTS_PNG", "RESULT_JSON", "EXPLOITATION_PNG",
                   "GUARD_PNG", "POLICY_MSGPACK")}  # fmt: skip
    for module, names in uses.items():
        for name in names:
            assert getattr(module, name) is getattr(core_io, name), f"{module.__name__}.{name}"
    # (bellmax.policy, which writes the policy file, spells its name too: the same name)
    from bellmax.policy import POLICY_FILE

    assert POLICY_FILE == core_io.POLICY_MSGPACK and POLICY_FILE in core_io.RUN_OUTPUTS["train"]


def test_one_refusal_of_a_commands_own_run_offers_resume_where_it_has_it(tmp_path):
    # `bellmax train`'s own run was refused by a second check of its own (driver's
    # check_run_dir_free: "already holds a run ..."), and check_run_dir let train and sweep
    # through (RESUMES_OWN_RUN); now check_run_dir refuses it too, offering --resume, in the
    # caller's words: the command line's flags, or Python's keyword arguments
    from bellmax.core.io import check_run_dir

    (tmp_path / "metrics.csv").write_text("update,seed\n")  # any of a run's outputs
    with pytest.raises(ValueError) as e:
        check_run_dir(tmp_path, "train", resume=False)
    assert str(e.value) == (
        f"--out {str(tmp_path)!r} holds an earlier `bellmax train` run (metrics.csv), which "
        "this run would replace: give another --out, --resume to continue it, or --overwrite "
        "to replace it."
    )
    with pytest.raises(ValueError, match=r"another out_dir, resume=True .* or overwrite=True"):
        check_run_dir(tmp_path, "train", option="out_dir", resume=False)
    check_run_dir(tmp_path, "train", resume=True)  # continued, or replaced
    check_run_dir(tmp_path, "train", resume=False, overwrite=True)
    # a sweep resumes the same sweep there, and judges another one itself
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "sweep.json").write_text("{}")
    check_run_dir(tmp_path / "sweep", "sweep", resume=True)
    # a command that cannot continue a run (resume None: imitate, gps, mbrl) is not offered it
    with pytest.raises(ValueError) as e:
        check_run_dir(tmp_path / "sweep", "sweep")
    assert str(e.value).endswith("give another --out, or --overwrite to replace it.")


def test_clear_outputs_removes_the_commands_own_files_and_nothing_else(tmp_path):
    # `--overwrite` left the earlier run's other files: mbrl's plots that the new run did not
    # draw, gps's neural policy after `--policy linear`, imitate's human labels
    from bellmax.core.io import RUN_OUTPUTS, check_run_dir, clear_outputs

    (tmp_path / "notes.txt").write_text("mine")
    for name in ("result.json", "returns.png", "rollouts.png", "exploitation.png", "guard.png",
                 "policy.msgpack"):  # fmt: skip
        (tmp_path / name).write_text("old")
    assert clear_outputs(tmp_path, "mbrl") == list(RUN_OUTPUTS["mbrl"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    check_run_dir(tmp_path, "mbrl")  # nothing of the old run is left to refuse
    sweep = tmp_path / "sweep"
    (sweep / "groups" / "0").mkdir(parents=True)
    (sweep / "ray").mkdir()
    for name in ("sweep.json", "results.json", "results.csv", "return_vs_gamma.png", "keep.png"):
        (sweep / name).write_text("old")
    clear_outputs(sweep, "sweep")
    assert sorted(p.name for p in sweep.iterdir()) == ["keep.png"]
    assert clear_outputs(tmp_path / "missing", "gps") == []
    with pytest.raises(ValueError, match="command must be one of"):
        clear_outputs(tmp_path, "trian")
