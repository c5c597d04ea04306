"""bellmax.train.sweep: planning by hand, one compiled program per group, resuming, and the
Ray Tune backend on a real local cluster (its own loopback address) giving the local
backend's per-trial results, also when a worker is killed mid-sweep."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import shutil
import tempfile
import typing

import jax
import numpy as np
import pytest

from bellmax.core.errors import BellmaxError, UnknownNameError
from bellmax.deep import a2c, dqn, ppo, reinforce, sac, td3
from bellmax.train import sweep as sw

# A PPO small enough to compile in a few seconds; 4 learning rates x 2 seeds = 8 trials.
TINY = ppo.Config(
    total_timesteps=512,
    num_envs=2,
    num_steps=16,
    num_epochs=1,
    minibatch_size=32,
    hidden_sizes=(8,),
)
GRID = {"learning_rate": (3e-4, 1e-3, 3e-3, 1e-2)}
KW = {"grid": GRID, "seeds": (0, 1), "base": TINY, "chunks": 4, "eval_episodes": 2}


# ---------------------------------------------------------------------- planning by hand


def test_parse_grid_types_values_by_field():
    assert sw.parse_grid("learning_rate=1e-3, 3e-3", ppo.Config) == ("learning_rate", (1e-3, 3e-3))
    assert sw.parse_grid("num_envs=4,8", ppo.Config) == ("num_envs", (4, 8))
    assert sw.parse_grid("hidden_sizes=64x64,32", ppo.Config) == ("hidden_sizes", ((64, 64), (32,)))
    assert sw.parse_grid("anneal_lr=true,False", ppo.Config) == ("anneal_lr", (True, False))
    # integers in float notation, as every integer option takes them (--total-steps 1e5)
    assert sw.parse_grid("total_timesteps=2e3,1e4", ppo.Config) == (
        "total_timesteps",
        (2000, 10000),
    )
    assert sw.parse_grid("hidden_sizes=6.4e1x64", ppo.Config) == ("hidden_sizes", ((64, 64),))


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ("learning_rate", "FIELD=V1,V2"),
        ("learning_rate=", "FIELD=V1,V2"),
        ("num_envs=4,4.5", "num_envs: '4.5' is not a value"),
        ("learning_rate=1e-3,1e-3", "twice"),
    ],
)
def test_parse_grid_refuses_bad_items(item, match):
    with pytest.raises(ValueError, match=match):
        sw.parse_grid(item, ppo.Config)


def test_parse_grid_names_unknown_fields():
    with pytest.raises(UnknownNameError, match="learning_rate"):
        sw.parse_grid("learnig_rate=1", ppo.Config)


def test_parse_space_and_draws():
    s = sw.parse_space("learning_rate=loguniform(1e-4, 1e-2)", ppo.Config)
    assert s == sw.Space("learning_rate", "loguniform", 1e-4, 1e-2)
    draws = [s.sample(np.random.default_rng(i)) for i in range(50)]
    assert all(1e-4 <= d <= 1e-2 for d in draws)
    u = sw.parse_space("gamma=uniform(0.9,0.99)", ppo.Config)
    assert 0.9 <= u.sample(np.random.default_rng(0)) <= 0.99
    for bad, match in [
        ("learning_rate=loguniform(0,1)", "LOW > 0"),
        ("learning_rate=uniform(2,1)", "LOW < HIGH"),
        ("learning_rate=1e-3", "KIND"),
        ("num_envs=uniform(1,2)", "not a float"),
    ]:
        with pytest.raises(ValueError, match=match):
            sw.parse_space(bad, ppo.Config)
    with pytest.raises(UnknownNameError, match="loguniform"):
        sw.parse_space("learning_rate=lognormal(1,2)", ppo.Config)
    # a Space built in Python is checked as --space is: "gauss" was drawn as uniform, reversed
    # or negative log bounds failed inside numpy
    with pytest.raises(UnknownNameError, match="unknown distribution 'gauss'"):
        sw.Space("learning_rate", "gauss", 1e-4, 1e-2)
    for low, high, match in [(1e-2, 1e-4, "LOW < HIGH"), (-1.0, 1e-4, "LOW > 0"),
                             ("a", 1.0, "bounds must be numbers")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            sw.Space("learning_rate", "loguniform", low, high)


def test_plan_trials_and_groups_by_hand():
    grid = {"learning_rate": (1e-3, 3e-3), "hidden_sizes": ((8,), (16,))}
    trials = sw.plan_trials(TINY, grid=grid, seeds=(5, 7))
    assert [(t["config"]["learning_rate"], t["config"]["hidden_sizes"], t["seed"]) for t in trials] == [
        (1e-3, (8,), 5), (1e-3, (8,), 7), (1e-3, (16,), 5), (1e-3, (16,), 7),
        (3e-3, (8,), 5), (3e-3, (8,), 7), (3e-3, (16,), 5), (3e-3, (16,), 7),
    ]  # fmt: skip
    assert [t["index"] for t in trials] == list(range(8))
    groups = sw.plan_groups(TINY, trials)  # hidden_sizes shapes the program, lr does not
    assert [g["config"] for g in groups] == [{"hidden_sizes": (8,)}, {"hidden_sizes": (16,)}]
    assert [[t["index"] for t in g["trials"]] for g in groups] == [[0, 1, 4, 5], [2, 3, 6, 7]]
    assert all(g["traced"] == ["learning_rate"] for g in groups)


def test_plan_trials_random_draws_cross_the_grid():
    space = [sw.Space("ent_coef", "uniform", 0.0, 0.1)]
    trials = sw.plan_trials(TINY, grid={"clip_eps": (0.1, 0.2)}, space=space, num_random=3)
    assert len(trials) == 6
    draws = [t["config"]["ent_coef"] for t in trials]
    assert draws[:3] == draws[3:] and len(set(draws)) == 3  # the same 3 draws per grid point
    again = sw.plan_trials(TINY, grid={"clip_eps": (0.1, 0.2)}, space=space, num_random=3)
    assert again == trials  # sample_seed fixes them


def test_plan_trials_checks_values_and_options():
    with pytest.raises(ValueError, match="learning_rate"):
        sw.plan_trials(TINY, grid={"learning_rate": (1e-3, -1.0)})
    with pytest.raises(ValueError, match="go together"):
        sw.plan_trials(TINY, grid=GRID, num_random=2)
    with pytest.raises(ValueError, match="distinct"):
        sw.plan_trials(TINY, grid=GRID, seeds=(1, 1))
    space = [sw.Space("learning_rate", "uniform", 0.1, 0.2)]
    with pytest.raises(ValueError, match="learning_rate is in both grid and space;"):
        sw.plan_trials(TINY, grid=GRID, space=space, num_random=1)
    # what the command line refuses, refused in Python too (each was accepted, garbled or
    # failed deep inside: an empty list with out_dir raised IndexError)
    for grid, error, match in [
        ({"learning_rate": []}, ValueError, r"grid\['learning_rate'\] is empty"),
        ({"learning_rate": [1e-3, 1e-3]}, ValueError, "gives 0.001 twice"),
        ({"learning_rate": "0.001"}, TypeError, "must be a list of values.*got str '0.001'"),
        ({"learning_rate": 1e-3}, TypeError, "must be a list of values.*got float"),
        ({"learnin_rate": [1e-3]}, UnknownNameError, "Did you mean: 'learning_rate'"),
        ([("learning_rate", [1e-3])], TypeError, r"grid must be a dict \{field: \[values\]\}"),
    ]:
        with pytest.raises(error, match=match):
            sw.plan_trials(TINY, grid=grid)
    twice = [sw.Space("clip_eps", "uniform", 0.01, 0.02), sw.Space("clip_eps", "uniform", 0.5, 0.6)]
    for space, error, match in [
        (twice, ValueError, "space gives clip_eps twice"),
        (["learning_rate=uniform(1,2)"], TypeError, "space takes Space objects"),
        ([sw.Space("num_envs", "uniform", 1, 2)], ValueError, "num_envs: not a float field"),
    ]:
        with pytest.raises(error, match=match):
            sw.plan_trials(TINY, space=space, num_random=2)
    with pytest.raises(TypeError, match=r"seeds\[0\] must be an int"):
        sw.plan_trials(TINY, grid=GRID, seeds=[1.5])  # it was truncated to 1
    assert len(sw.plan_trials(TINY, grid={"hidden_sizes": [(8,), [16]]})) == 2


def test_sweep_refuses_bad_options_before_any_work():
    with pytest.raises(UnknownNameError, match="td3"):
        sw.sweep("ddpg", "CartPole-v1", grid=GRID)
    # in Python the parameters are named as Python writes them (they were the CLI's options)
    with pytest.raises(ValueError, match=r"^scheduler='asha' runs in Ray Tune; add backend='ray'"):
        sw.sweep("ppo", "CartPole-v1", grid=GRID, scheduler="asha")
    with pytest.raises(ValueError, match=r"^address='127.0.0.2:6379' names a Ray cluster; add b"):
        sw.sweep("ppo", "CartPole-v1", grid=GRID, address="127.0.0.2:6379")
    with pytest.raises(ValueError, match=r"^num_random=N and space go together"):
        sw.sweep("ppo", "CartPole-v1", grid=GRID, num_random=2)
    with pytest.raises(TypeError, match=r"ppo\.Config"):
        sw.sweep("ppo", "CartPole-v1", grid=GRID, base=a2c.Config())
    with pytest.raises(ValueError, match="Gymnasium"):
        sw.sweep("ppo", "gymnasium:CartPole-v1", grid=GRID, base=TINY, eval_episodes=0)


def test_ray_backend_without_ray_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(BellmaxError, match=r"^backend='ray' needs Ray Tune.*bellmax\[ray\]"):
        sw.sweep("ppo", "CartPole-v1", grid=GRID, base=TINY, backend="ray")


# ---------------------------------------------------------------------- one program


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The 8-trial sweep on the local backend, counting traces of ppo.update."""
    calls = []
    real = ppo.update

    def counted(state, config, venv):
        calls.append(type(config.learning_rate).__name__)
        return real(state, config, venv)

    mp = pytest.MonkeyPatch()
    mp.setattr(ppo, "update", counted)
    sw._PROGRAMS.clear()
    out = tmp_path_factory.mktemp("sweep")
    try:
        result = sw.sweep("ppo", "CartPole-v1", out_dir=out, **KW)
    finally:
        mp.undo()
    return result, calls, out


def test_eight_trials_compile_one_program(local):
    result, calls, _ = local
    # update traced once, with the learning rate a tracer: one program for all 8 trials
    assert len(calls) == 1 and "Tracer" in calls[0]
    assert result.summary()["programs"] == 1 and len(result.groups) == 1
    assert [(t["config"]["learning_rate"], t["seed"]) for t in result.trials] == [
        (lr, s) for lr in GRID["learning_rate"] for s in (0, 1)
    ]
    assert all(t["env_steps"] == TINY.num_updates * TINY.steps_per_update for t in result.trials)
    assert all(t["final_eval_return"] is not None for t in result.trials)


def test_one_chunk_reports_its_training_apart_from_its_compile():
    # the chunk program compiles ahead of its run, timed apart: with one chunk the run was
    # all "compile" and every trial reported 0.0 s of training
    sw._PROGRAMS.clear()
    res = sw.sweep("ppo", "CartPole-v1", **{**KW, "grid": {"learning_rate": (1e-3,)},
                                            "chunks": 1, "eval_episodes": 0})  # fmt: skip
    (group,) = res.groups
    assert group["compile_seconds"] > 0 and group["seconds"] > 0
    assert all(t["seconds"] == group["seconds"] for t in res.trials)
    again = sw.sweep("ppo", "CartPole-v1", **{**KW, "grid": {"learning_rate": (1e-3,)},
                                              "chunks": 1, "eval_episodes": 0})  # fmt: skip
    assert again.groups[0]["programs"] == 0 and again.groups[0]["seconds"] > 0


def test_trials_differ_by_their_own_hyperparameters(local):
    result, _, _ = local
    curves = {(t["config"]["learning_rate"], t["seed"]): t["chunk_returns"] for t in result.trials}
    for seed in (0, 1):  # the same seed trains differently with each learning rate
        assert len({tuple(curves[lr, seed]) for lr in GRID["learning_rate"]}) >= 3
    for lr in GRID["learning_rate"]:
        assert curves[lr, 0] != curves[lr, 1]


def test_best_is_the_configuration_with_the_best_mean(local):
    result, _, _ = local
    means = {}
    for t in result.trials:
        means.setdefault(t["config"]["learning_rate"], []).append(t["final_eval_return"])
    lr, vals = max(means.items(), key=lambda kv: np.mean(kv[1]))
    best = result.best
    assert best["config"] == {"learning_rate": lr}
    assert best["mean_final_eval_return"] == pytest.approx(np.mean(vals))


def test_results_files(local):
    result, _, out = local
    lines = (out / "results.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["trial", "group", "learning_rate", "seed"]
    assert len(lines) == 9
    row = lines[1].split(",")
    assert float(row[2]) == 3e-4 and float(row[4]) == result.trials[0]["final_eval_return"]
    stored = json.loads((out / "results.json").read_text())
    assert stored["best"] == json.loads(json.dumps(result.best))
    assert (out / "return_vs_learning_rate.png").stat().st_size > 1000
    assert (out / "groups" / "0" / sw.CHECKPOINT).exists()


def test_an_out_dir_of_another_sweep_or_a_train_run_is_refused(local, tmp_path):
    # `local` wrote its sweep to `out`: another sweep there is refused before any work (its
    # results would silently replace these), the same one is not; --overwrite clears it.
    _, _, out = local
    marker = json.loads((out / sw.SWEEP_JSON).read_text())
    assert marker["algo"] == "ppo" and marker["groups"] == 1
    other = {**KW, "grid": {"learning_rate": (1e-3, 2e-3)}}
    with pytest.raises(ValueError, match="holds the results of another sweep") as e:
        sw.sweep("ppo", "CartPole-v1", out_dir=out, **other)
    assert "(learning_rate: [0.0003, 0.001, 0.003, 0.01] in the run, [0.001, 0.002] given)" in str(
        e.value
    )
    assert json.loads((out / sw.SWEEP_JSON).read_text()) == marker  # untouched
    # the same sweep under ASHA (which evaluates after every chunk) is another, and says why
    asha = {**marker["settings"], "scheduler": "asha"}
    with pytest.raises(ValueError, match=r"\(scheduler: none in the run, asha given\)"):
        sw._claim_out_dir(out, [_spec(chunk_eval_episodes=2)], overwrite=False, settings=asha)
    assert json.loads((out / sw.SWEEP_JSON).read_text()) == marker
    # a marker written before the scheduler was recorded: unknown, not "none"
    unrecorded = tmp_path / "unrecorded"
    unrecorded.mkdir()
    old_marker = {**marker, "settings": {k: v for k, v in asha.items() if k != "scheduler"}}
    (unrecorded / sw.SWEEP_JSON).write_text(json.dumps(old_marker))
    with pytest.raises(ValueError, match=r"\(scheduler: not recorded in the run \(written by an "):
        sw._claim_out_dir(
            unrecorded, [_spec(chunk_eval_episodes=2)], overwrite=False, settings=asha
        )
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(ValueError, match=r"out_dir '.*' holds a `bellmax train` run"):
        sw.sweep("ppo", "CartPole-v1", out_dir=tmp_path, **KW)
    assert not (tmp_path / ".lock").exists()  # refused before anything was made there
    # a sweep at work there (its lock held): a second one is refused, even with overwrite
    # (it cleared the first one's files under it: the folder then held two sweeps' files)
    from bellmax.train.io import FileLock

    held = FileLock(out / ".lock")
    assert held.acquire()
    try:
        with pytest.raises(BellmaxError, match="is being written by another bellmax run"):
            sw.sweep("ppo", "CartPole-v1", out_dir=out, overwrite=True, **other)
    finally:
        held.release()
    assert json.loads((out / sw.SWEEP_JSON).read_text()) == marker
    # overwrite: the other sweep's files go, this one's marker is written
    old = tmp_path / "old"
    (old / "groups" / "0").mkdir(parents=True)
    for name in ("results.json", "results.csv", "return_vs_gamma.png"):
        (old / name).write_text("x")
    specs = [{"algo": "ppo", "env": "CartPole-v1", "group": 0}]
    with pytest.raises(ValueError, match="another sweep"):  # unmarked results count too
        sw._claim_out_dir(old, specs, overwrite=False)
    sw._claim_out_dir(old, specs, overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == [sw.SWEEP_JSON]
    assert not sw._claim_out_dir(old, specs, overwrite=False)  # the same sweep again: accepted


@pytest.mark.parametrize("inner", ["ray/sweep", "ray", "groups"])
def test_a_link_inside_a_sweep_folder_is_refused_before_anything_is_deleted(tmp_path, inner):
    # A folder whose ray/sweep was a link (a downloaded sweep) had the link's target deleted
    # by the Ray backend's rmtree of Tune's stale records; groups/ took checkpoints there.
    victim = tmp_path / "elsewhere"
    victim.mkdir()
    (victim / "thesis.tex").write_text("precious")
    out = tmp_path / "sweep"
    (out / inner).parent.mkdir(parents=True, exist_ok=True)
    (out / inner).symlink_to(victim, target_is_directory=True)
    with pytest.raises(BellmaxError, match=r"is a symbolic link; a sweep keeps its records"):
        sw._claim_out_dir(out, [_spec()], overwrite=False)
    assert (victim / "thesis.tex").read_text() == "precious"


def test_another_sweeps_out_dir_is_refused_naming_what_differs(tmp_path):
    # The refusal listed what MIGHT differ ("another algorithm, env, swept values, seeds,
    # budget or chunks") and mixed a flag with a keyword ("--overwrite (overwrite=True)"); now
    # it names the settings that do differ, as `bellmax train --resume` does, and the fixes in
    # the caller's words (Python's here; `bellmax sweep` passes its options' names).
    base = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)}

    def claim(grid, seeds=(0, 1), chunks=4, *, overwrite=False):
        trials = sw.plan_trials(TINY, grid=grid, seeds=seeds)
        settings = sw._settings("ppo", "CartPole-v1", base, trials, chunks, 2)
        specs = [{"algo": "ppo", "env": "CartPole-v1", "trials": trials, "chunks": chunks}]
        return sw._claim_out_dir(tmp_path, specs, overwrite=overwrite, settings=settings)

    assert claim(GRID) is False
    with pytest.raises(ValueError) as e:
        claim({"learning_rate": (1e-3, 2e-3)}, seeds=(0, 1, 2), chunks=2)
    msg = str(e.value)
    assert msg == (
        f"out_dir {str(tmp_path)!r} holds the results of another sweep (seeds: [0, 1] in the "
        "run, [0, 1, 2] given; learning_rate: [0.0003, 0.001, 0.003, 0.01] in the run, "
        "[0.001, 0.002] given; chunks: 4 in the run, 2 given): give another out_dir, or "
        "overwrite=True to replace them."
    )
    (tmp_path / sw.RESULTS_JSON).write_text("{}")  # as a finished sweep leaves it
    assert claim(GRID) is True  # the same sweep, finished: reported as such
    assert claim(GRID, overwrite=True) is False  # --overwrite: trained afresh
    assert not (tmp_path / sw.RESULTS_JSON).exists()


def test_sweep_from_python_names_its_parameters_not_the_command_lines_flags(tmp_path):
    # sweep(..., out_dir=DIR) said "pick another --out" and "give another --out, or
    # --overwrite", and named Config fields where `bellmax sweep` has options of its own
    # (--total-steps); each caller now reads its own words, refused before any training
    from bellmax.cli.sweep import _option_name

    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(
        ValueError, match=r"^out_dir '.*' holds a `bellmax train` run .*another out_dir\.$"
    ):
        sw.sweep("ppo", "CartPole-v1", out_dir=tmp_path, **KW)
    longer = dataclasses.replace(TINY, total_timesteps=1024)
    base = {f.name: getattr(longer, f.name) for f in dataclasses.fields(longer)}
    trials = sw.plan_trials(longer, grid=GRID, seeds=(0, 1))
    marker = {
        "digest": "a longer sweep",
        "settings": sw._settings("ppo", "CartPole-v1", base, trials, 4, 2),
    }
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / sw.SWEEP_JSON).write_text(json.dumps(marker))
    what = "holds the results of another sweep ({}: 1024 in the run, 512 given): give another {}"
    with pytest.raises(ValueError) as e:
        sw.sweep("ppo", "CartPole-v1", out_dir=tmp_path / "sweep", **KW)
    assert what.format("total_timesteps", "out_dir, or overwrite=True") in str(e.value)
    with pytest.raises(ValueError) as e:
        sw.sweep("ppo", "CartPole-v1", out_dir=tmp_path / "sweep", names=_option_name, **KW)
    assert str(e.value).startswith(f"--out {str(tmp_path / 'sweep')!r} ")
    assert what.format("--total-steps", "--out, or --overwrite") in str(e.value)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [sw.SWEEP_JSON]


def test_a_stopped_group_resumes_to_the_same_result(local, tmp_path):
    result, _, _ = local
    spec = _spec()
    stops = []

    def stop_after_first(done, total, returns):
        stops.append(done)
        return True

    first = sw.run_group(spec, checkpoint_dir=tmp_path, on_chunk=stop_after_first)
    assert stops == [TINY.num_updates // 4] and first.updates_done == stops[0]
    assert all(t["final_eval_return"] is None for t in first.trials)
    again = sw.run_group(spec, checkpoint_dir=tmp_path)
    assert again.restarted and again.resumed_at_updates == stops[0] and again.programs == 0
    assert [t["final_eval_return"] for t in again.trials] == [
        t["final_eval_return"] for t in result.trials
    ]
    assert [t["chunk_returns"] for t in again.trials] == [t["chunk_returns"] for t in result.trials]
    assert all(t["restarted"] for t in again.trials)
    # the trials' seconds are the group's training over both calls (they were the second's)
    both = round(first.seconds + again.seconds, 4)
    assert again.seconds_total == pytest.approx(both, abs=2e-4) and first.seconds_total > 0
    assert all(t["seconds"] == again.seconds_total for t in again.trials)


def test_a_finished_sweep_run_again_is_reported_as_finished_not_restarted(local):
    # Every trial of a finished sweep run again read `restarted: yes`: its groups' checkpoints
    # (at their end) loaded, though `restarted` means resumed part-way after a failure.
    result, _, out = local
    again = sw.sweep("ppo", "CartPole-v1", out_dir=out, **KW)
    assert again.already_complete and again.summary()["already_complete"]
    assert [g["finished_before"] for g in again.groups] == [True]
    assert not any(g["restarted"] for g in again.groups)
    assert not any(t["restarted"] for t in again.trials)
    assert _outcomes(again) == _outcomes(result) and again.summary()["programs"] == 0
    # Nothing trained in this call, but the trials keep their training seconds, in
    # results.csv too (showing the results again wrote 0.0 over them).
    assert [t["seconds"] for t in again.trials] == [t["seconds"] for t in result.trials]
    assert all(t["seconds"] > 0 for t in again.trials)
    assert again.groups[0]["seconds"] == 0 and again.groups[0]["seconds_total"] > 0
    rows = (out / "results.csv").read_text().splitlines()
    col = rows[0].split(",").index("seconds")
    assert [float(r.split(",")[col]) for r in rows[1:]] == [t["seconds"] for t in result.trials]


def _spec(**extra):
    trials = sw.plan_trials(TINY, grid=GRID, seeds=(0, 1))
    (group,) = sw.plan_groups(TINY, trials)
    base = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)}
    spec = {"algo": "ppo", "env": "CartPole-v1", "base": base, "chunks": 4, "eval_episodes": 2}
    return json.loads(json.dumps({**spec, **group, **extra}))


def test_with_asha_every_chunk_ends_with_the_evaluation_it_ranks_on(local):
    # Shows: with chunk_eval_episodes (what scheduler="asha" sets) every chunk ends with an
    # evaluation of each trial's greedy policy, and that is what on_chunk gets (ASHA's
    # score), not the training return. The last chunk's is the final evaluation itself (the
    # same state, keys and episodes), and training is unchanged by the evaluations.
    result, _, _ = local
    seen = []
    r = sw.run_group(
        _spec(chunk_eval_episodes=2), on_chunk=lambda done, n, scores: seen.append(list(scores))
    )
    assert len(seen) == 4 and all(len(t["chunk_eval_returns"]) == 4 for t in r.trials)
    for i, t in enumerate(r.trials):
        assert [row[i] for row in seen] == t["chunk_eval_returns"]
        assert t["chunk_eval_returns"][-1] == t["final_eval_return"]
    trained = [[t["chunk_returns"][c] for t in r.trials] for c in range(4)]
    assert seen != trained  # the training returns are not the score
    same = ("chunk_returns", "final_eval_return")
    assert [[t[k] for k in same] for t in r.trials] == [[t[k] for k in same] for t in result.trials]
    assert all(t["chunk_eval_returns"] == [] for t in result.trials)  # without ASHA: none
    # without chunk evaluations (ASHA with eval_episodes=0) the score is the training return
    plain = []
    sw.run_group(_spec(), on_chunk=lambda done, n, scores: plain.append(list(scores)))
    assert plain == trained


def test_a_group_evaluated_every_chunk_resumes_with_its_evaluations(tmp_path):
    # Stopped after chunk 2 of 4 and resumed from its checkpoint, a group evaluated after
    # every chunk ends with the same 4 evaluations as one run straight through.
    spec = _spec(chunk_eval_episodes=2)
    straight = sw.run_group(spec)
    sw.run_group(spec, checkpoint_dir=tmp_path, on_chunk=lambda done, n, s: done >= 2 * n // 4)
    again = sw.run_group(spec, checkpoint_dir=tmp_path)
    assert again.resumed_at_updates == TINY.num_updates // 2
    assert [t["chunk_eval_returns"] for t in again.trials] == [
        t["chunk_eval_returns"] for t in straight.trials
    ]


def test_a_diverging_trial_is_marked_not_fatal(local):
    # lr 1e30 blows the weights up; the sweep goes on, the other trials are unharmed (the
    # same program as `local`'s: 4 learning rates x 2 seeds)
    grid = {"learning_rate": (3e-4, 1e-3, 3e-3, 1e30)}
    r = sw.sweep("ppo", "CartPole-v1", **{**KW, "grid": grid})
    assert r.summary()["programs"] == 0  # compiled once per process
    assert [t["diverged"] for t in r.trials] == [False] * 6 + [True] * 2
    assert [t["final_eval_return"] for t in r.trials[6:]] == [None, None]
    assert _outcomes(r)[:6] == _outcomes(local[0])[:6]
    assert r.best["config"]["learning_rate"] < 1


def test_other_algorithms_trace_their_hyperparameters():
    # A2C, REINFORCE, DQN, SAC and TD3 with every hyperparameter traced, 2 values each, trace
    # (without compiling) to metrics with one entry per configuration
    off = {"total_timesteps": 64, "train_frequency": 8, "batch_size": 8, "learning_starts": 16,
           "hidden_sizes": (4,)}  # fmt: skip
    cfgs = {
        a2c: a2c.Config(total_timesteps=64, num_envs=2, num_steps=8, hidden_sizes=(4,)),
        reinforce: reinforce.Config(total_timesteps=64, num_envs=2, num_steps=8, hidden_sizes=(4,)),
        dqn: dqn.Config(total_timesteps=64, num_envs=2, train_frequency=8, gradient_steps=2,
                        batch_size=8, learning_starts=16, buffer_size=64, hidden_sizes=(4,)),
        sac: sac.Config(**off, target_entropy=-1.0),
        td3: td3.Config(**off),
    }  # fmt: skip
    for module, cfg in cfgs.items():
        env = getattr(module, "DEFAULT_ENV", "CartPole-v1")
        hp = {k: jax.numpy.array([getattr(cfg, k)] * 2) for k in module.Config.HYPERPARAMETERS}
        keys = jax.random.split(jax.random.key(0), 2)
        _, m = jax.eval_shape(jax.vmap(module.make_train(cfg, env)), keys, hp)
        assert m.loss.shape == (2, cfg.num_updates)


def test_a_hyperparameter_given_as_none_is_structural():
    # SAC's target_entropy None (derived from the action space) cannot be an array: the trials
    # with None form a group of their own, the others trace their numbers
    assert sw.parse_grid("target_entropy=none,-1", sac.Config) == ("target_entropy", (None, -1.0))
    base = sac.Config(total_timesteps=64, learning_starts=16, batch_size=8)
    grid = {"target_entropy": (None, -1.0, -0.5), "tau": (0.005, 0.01)}
    groups = sw.plan_groups(base, sw.plan_trials(base, grid=grid))
    assert [g["config"] for g in groups] == [{"target_entropy": None}, {}]
    assert [g["traced"] for g in groups] == [["tau"], ["target_entropy", "tau"]]
    assert [len(g["trials"]) for g in groups] == [2, 4]
    # each trial's values are checked against the env before any training (here: an entropy
    # a policy on [-1, 1] cannot reach)
    with pytest.raises(ValueError, match=r"target_entropy=1\.0 cannot be reached"):
        sw.sweep("sac", "Pendulum-v1", grid={"target_entropy": (-1.0, 1.0)}, base=base)
    # and they train: both groups have the same Config, and the second one ran the first
    # one's program ("Function compiled with input pytree does not match"). None is -1 on
    # Pendulum's one action, so the two trials learn alike
    tiny = sac.Config(total_timesteps=64, learning_starts=16, batch_size=8, hidden_sizes=(4,),
                      train_frequency=8)  # fmt: skip
    sw._PROGRAMS.clear()
    res = sw.sweep("sac", "Pendulum-v1", grid={"target_entropy": (None, -1.0)}, base=tiny,
                   chunks=1, eval_episodes=1)  # fmt: skip
    assert [g["programs"] for g in res.groups] == [1, 1]
    first, second = (t["final_eval_return"] for t in res.trials)
    assert first == pytest.approx(second, rel=1e-5)


def test_trial_keys_are_the_seeds_keys():
    # the group's keys come from one program for seeds in [0, 2**32), key by key otherwise:
    # either way each is exactly jax.random.key(seed), so a trial's result does not depend on
    # which path made its key
    for seeds in ([0, 1, 7], [2**31 - 1, 2**31 + 5, 2**32 - 1], [3, -1], [2**40, 5]):
        want = np.stack([jax.random.key_data(jax.random.key(s)) for s in seeds])
        np.testing.assert_array_equal(jax.random.key_data(sw._trial_keys(seeds)), want)


# ---------------------------------------------------------------------- Ray Tune

ray = pytest.importorskip("ray", reason="the Ray backend needs bellmax[ray]")
HOST = "127.0.0.2"


def test_without_an_address_the_sweep_starts_its_own_ray_instance(monkeypatch):
    # Ray's own default (`ray.init(address=None)`) joins the cluster RAY_ADDRESS names or,
    # without it, whichever cluster `ray start` last left on this machine: the sweep passes
    # "local" (a new instance) unless an address or RAY_ADDRESS is given.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert sw.ray_address(None) == "local"
    assert sw.ray_address("10.0.0.1:6379") == "10.0.0.1:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert sw.ray_address(None) == "10.0.0.9:6379"
    assert sw.ray_address("10.0.0.1:6379") == "10.0.0.1:6379"
    monkeypatch.delenv("RAY_ADDRESS")

    class Started(Exception):
        pass

    asked = []

    def init(address=None, **kwargs):
        asked.append(address)
        raise Started  # nothing is started: only what the sweep asks Ray for is checked

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(Started):
        sw.sweep("ppo", "CartPole-v1", grid=GRID, base=TINY, backend="ray")
    assert asked == ["local"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for the module, on its own loopback address; only it is stopped."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")  # no token written to ~/.ray for a test cluster
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        _node_ip_address=HOST,
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield ray
    finally:
        ray.shutdown()
        mp.undo()


def test_cluster_stays_on_loopback(cluster):
    # what the cluster advertises (its GCS and nodes); the sockets themselves: below
    gcs = cluster.get_runtime_context().gcs_address
    assert gcs.rpartition(":")[0] == HOST
    for node in cluster.nodes():
        assert ipaddress.ip_address(node["NodeManagerAddress"]).is_loopback


class ListensOnAllInterfaces(AssertionError):
    """A process of the test cluster accepts connections on every interface."""


@pytest.mark.xfail(
    raises=ListensOnAllInterfaces,
    strict=True,
    reason="Ray 2.60 binds gcs_server's, the raylet's and its workers' gRPC servers to :: "
    "(every interface) whatever _node_ip_address says (ray-project/ray#7418); Ray's PR #59852 "
    "binds them to the node IP instead. Strict: this fails as soon as a Ray release does so.",
)
def test_the_clusters_sockets_listen_on_loopback_only(cluster):
    # The advertised addresses stay on loopback (above); this reads the sockets the cluster's
    # processes (this test's child processes) actually listen on.
    import psutil

    pids = {p.pid for p in psutil.Process().children(recursive=True)}
    listening = [
        (c.laddr.ip, c.laddr.port, c.pid)
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert listening, "found no listening socket of the cluster's processes"
    wide = [s for s in listening if not ipaddress.ip_address(s[0]).is_loopback]
    if wide:
        names = sorted({psutil.Process(pid).name() for _, _, pid in wide})
        raise ListensOnAllInterfaces(f"listening beyond loopback: {wide} ({names})")


@pytest.fixture(scope="module")
def remote(cluster, tmp_path_factory):
    """The 8-trial sweep on the Ray backend, with an out_dir."""
    out = tmp_path_factory.mktemp("ray-sweep")
    return sw.sweep("ppo", "CartPole-v1", backend="ray", out_dir=out, **KW), out


def test_trial_actors_go_without_tunes_lightning_environment():
    # Tune gives each trial actor {"env_vars": {"PL_DISABLE_FORK": "1"}}, so Ray started a new
    # worker for it (1.0-1.1 s) instead of taking an idle one (0.2 s; bench/sweep.py); the
    # sweep registers its actors with Tune's own cache while that variable is left out, and
    # puts it back after.
    # This reads the Ray internal it edits: a Ray that moves it fails here, not silently.
    from ray.tune.execution import class_cache

    class Trainable:
        pass

    before = dict(class_cache.DEFAULT_ENV_VARS)
    assert "PL_DISABLE_FORK" in before
    with pytest.raises(RuntimeError), sw._trials_on_started_workers():
        actor = class_cache._ActorClassCache().get(Trainable)
        assert actor._default_options["runtime_env"] == {}
        raise RuntimeError("a failed fit")
    assert class_cache.DEFAULT_ENV_VARS == before
    assert class_cache._ActorClassCache().get(Trainable)._default_options["runtime_env"] == {
        "env_vars": before
    }


def test_ray_backend_gives_the_local_results(remote, local):
    (result, _, _), (on_ray, out) = local, remote
    assert _outcomes(on_ray) == _outcomes(result)
    assert not any(t["restarted"] for t in on_ray.trials)
    assert on_ray.groups[0]["programs"] == 1 and not on_ray.groups[0]["finished_before"]
    assert (out / "results.csv").exists() and (out / "ray").is_dir()


def test_a_finished_sweep_run_again_on_ray_is_reported_as_finished(remote):
    # Tune restores the finished experiment and hands back the first call's group result:
    # the rerun read "1 program compiled", finished_before False and the first call's
    # seconds, where the local backend reports nothing compiled or trained
    first, out = remote
    again = sw.sweep("ppo", "CartPole-v1", backend="ray", out_dir=out, **KW)
    assert again.already_complete and again.summary()["programs"] == 0
    (group,) = again.groups
    assert group["finished_before"] and not group["restarted"]
    assert group["compile_seconds"] == group["seconds"] == group["eval_seconds"] == 0
    assert group["resumed_at_updates"] == group["updates_done"] == TINY.num_updates
    # the trials keep the seconds their group trained (this call trained nothing)
    assert [t["seconds"] for t in again.trials] == [t["seconds"] for t in first.trials]
    assert group["seconds_total"] == first.groups[0]["seconds_total"] > 0
    assert _outcomes(again) == _outcomes(first)


def test_a_sweep_finished_locally_trains_on_ray_and_does_not_claim_it_had_finished(
    cluster, local, tmp_path
):
    # Ray keeps its own group checkpoints (groups/ray-<g>), so it trains the sweep again; the
    # result said already_complete ("--out already held this finished sweep") all the same
    result, _, out = local
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    again = sw.sweep("ppo", "CartPole-v1", backend="ray", out_dir=copy, **KW)
    assert not again.already_complete and not again.groups[0]["finished_before"]
    assert _outcomes(again) == _outcomes(result)


def test_a_sweep_without_out_keeps_no_ray_records(cluster, local, tmp_path, monkeypatch, capsys):
    # Tune's records (a checkpoint per chunk) go to a temporary directory, removed at the end
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    capsys.readouterr()
    remote = sw.sweep("ppo", "CartPole-v1", backend="ray", **KW)
    assert _outcomes(remote) == _outcomes(local[0])
    assert not list(tmp_path.glob("bellmax-ray-*"))
    # Tune's tables go to stderr: stdout is `bellmax sweep --json`'s one object
    assert capsys.readouterr().out == ""


def test_a_killed_worker_resumes_its_group(cluster, local, tmp_path):
    result, _, _ = local
    marker = tmp_path / "killed.pid"
    # with ASHA too: it reads each chunk's report (a lone group is never below a rung's cutoff)
    remote = sw.sweep(
        "ppo", "CartPole-v1", backend="ray", scheduler="asha", out_dir=tmp_path / "out",
        ray_options={"kill_after_updates": (TINY.num_updates // 2, str(marker))}, **KW,
    )  # fmt: skip
    assert marker.exists()  # a worker really died (SIGKILL) at the end of chunk 3 of 4: Tune
    # has chunk 2, the group's own checkpoint in --out chunk 3, from which it resumes
    assert all(t["restarted"] for t in remote.trials)
    assert remote.groups[0]["resumed_at_updates"] == 3 * TINY.num_updates // 4
    assert _outcomes(remote) == _outcomes(result)  # nothing lost, nothing changed
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert rows[0].endswith("restarted") and all(r.endswith("True") for r in rows[1:])


@pytest.mark.learning
def test_asha_stops_the_weaker_group_after_its_first_chunk(cluster, tmp_path):
    # Shows: with scheduler="asha" Tune stops a program group whose evaluation return at a
    # rung falls below the cutoff, and the sweep says so. Two groups (num_epochs 8 and 1:
    # a structural field) run one after the other; after chunk 1 of 2 the 8-epoch group's
    # best trial's greedy policy returns 215 over 2 episodes (500 under SSE4_2; training
    # returns ~46), the 1-epoch group's 42 (the same under AVX2 and SSE4_2), below the
    # cutoff that the first group set at that rung, so ASHA stops it there: no final
    # evaluation, marked stopped in the trials, the table and results.csv, its chunk's
    # training and evaluation returns kept.
    base = dataclasses.replace(
        TINY, total_timesteps=8192, num_envs=4, num_steps=32, minibatch_size=64,
        hidden_sizes=(16,), learning_rate=3e-3,
    )  # fmt: skip
    out = tmp_path / "out"
    result = sw.sweep(
        "ppo", "CartPole-v1", grid={"num_epochs": (8, 1)}, seeds=(0, 1), base=base, chunks=2,
        eval_episodes=2, backend="ray", scheduler="asha", out_dir=out,
        ray_options={"max_concurrent_trials": 1},
    )  # fmt: skip
    strong, weak = result.groups
    assert strong["updates_done"] == strong["num_updates"] == 64
    assert weak["updates_done"] == 32  # stopped after its first chunk of 32 updates
    # what the stopped group compiled and ran before the stop is counted, not dropped
    assert weak["programs"] == 1 and weak["compile_seconds"] > 0 and weak["seconds"] > 0
    assert result.summary()["programs"] == 2
    for t in result.trials:
        assert t["stopped"] == (t["group"] == 1)
        if t["stopped"]:
            assert t["final_eval_return"] is None and len(t["chunk_returns"]) == 1
            assert len(t["chunk_eval_returns"]) == 1
            assert t["chunk_eval_returns"][0] < max(
                s["chunk_eval_returns"][0] for s in result.trials[:2]
            )
        else:
            assert t["final_eval_return"] is not None and len(t["chunk_returns"]) == 2
            assert t["chunk_eval_returns"][-1] == t["final_eval_return"]
    assert result.best["config"] == {"num_epochs": 8}
    rows = (out / "results.csv").read_text().splitlines()
    assert rows[0].split(",")[-2] == "stopped"
    assert [r.split(",")[-2] for r in rows[1:]] == ["False", "False", "True", "True"]
    from bellmax.cli.sweep import _table

    assert "2 trials stopped early by ASHA" in _table(result.summary())


def test_an_interrupted_sweep_resumes_from_tunes_records(cluster, local, tmp_path):
    # A group that fails for good (no restarts; its worker killed at the end of chunk 3 of 4)
    # ends the sweep with an error, leaving Tune's records as a dead driver would; the same
    # sweep again restores Tune's experiment (Tuner.restore) and the group resumes from its
    # last chunk.
    result, _, _ = local
    marker, out = tmp_path / "killed.pid", tmp_path / "out"
    kill = {"max_failures": 0, "kill_after_updates": (TINY.num_updates // 2, str(marker))}
    with pytest.raises(BellmaxError, match="the same sweep again resumes it"):
        sw.sweep("ppo", "CartPole-v1", backend="ray", out_dir=out, ray_options=kill, **KW)
    assert marker.exists() and (out / "ray" / sw.STAMP).exists()
    again = sw.sweep("ppo", "CartPole-v1", backend="ray", out_dir=out, **KW)
    assert again.groups[0]["resumed_at_updates"] == 3 * TINY.num_updates // 4
    assert all(t["restarted"] for t in again.trials)
    assert _outcomes(again) == _outcomes(result)  # nothing lost, nothing changed


def _outcomes(result):
    return [
        (t["index"], t["seed"], t["config"], t["final_eval_return"], t["env_steps"],
         [None if x is None or math.isnan(x) else x for x in t["chunk_returns"]])
        for t in result.trials
    ]  # fmt: skip


def test_an_infinite_metric_marks_its_trial_diverged():
    # the driver stops a run at an infinite metric (a gradient norm that overflowed) while
    # the loss is still finite; a sweep's trial only looked at the loss and the weights
    class Metrics(typing.NamedTuple):
        loss: np.ndarray
        grad_norm: np.ndarray
        entropy: np.ndarray

    finite = np.zeros((3, 4), np.float32)
    grad_norm = finite.copy()
    grad_norm[1, 2] = np.inf
    entropy = np.full((3, 4), np.nan, np.float32)  # NaN: not recorded, not a divergence
    metrics = Metrics(loss=finite, grad_norm=grad_norm, entropy=entropy)
    params = {"w": np.ones((3, 2), np.float32)}
    assert sw._nonfinite(metrics, params).tolist() == [False, True, False]


def test_asha_max_t_counts_the_chunks_a_group_really_runs():
    # `--chunks` is a target: plan_chunks picks a length that divides the updates, so
    # REINFORCE's defaults run 12 chunks for 10 and PPO's 2048 steps 8 for 6. max_t was the
    # target + 1, and Ray stops any trial whose report reaches max_t: those groups were
    # stopped before their final report and listed as beaten by ASHA, with no best.
    from bellmax.deep import get_algorithm
    from bellmax.train.driver import plan_chunks

    def spec(algo, chunks, **config):
        cls = get_algorithm(algo).Config
        base = json.loads(json.dumps(dataclasses.asdict(cls())))  # as sweep stores it
        return {"algo": algo, "base": base, "config": config, "chunks": chunks}

    for s in (spec("reinforce", 10), spec("ppo", 6, total_timesteps=2048), spec("ppo", 4)):
        n = sw._group_config(get_algorithm(s["algo"]), s).num_updates
        reports = -(-n // plan_chunks(n, s["chunks"])) + 1
        assert sw._asha_max_t([s]) == reports
    assert sw._asha_max_t([spec("reinforce", 10)]) == 13
    assert sw._asha_max_t([spec("ppo", 6, total_timesteps=2048)]) == 9
    # the most over the groups (num_envs changes a group's updates)
    both = [spec("ppo", 6, total_timesteps=2048), spec("reinforce", 10)]
    assert sw._asha_max_t(both) == 13


def test_best_skips_a_non_finite_mean():
    trials = [
        {"index": i, "config": {"learning_rate": lr}, "seed": 0, "final_eval_return": r}
        for i, (lr, r) in enumerate([(1.0, float("nan")), (2.0, 5.0), (3.0, 5.0)])
    ]
    result = sw.SweepResult.__new__(sw.SweepResult)
    object.__setattr__(result, "trials", trials)
    best = result.best
    assert best["config"] == {"learning_rate": 2.0} and best["trials"] == [1]  # first of a tie


def test_evaluation_episodes_cut_off_by_the_step_cap_are_counted(tmp_path):
    # On CliffWalking (no time limit) an untrained greedy policy never reaches the goal: the
    # evaluation's 10,000-step cap cut its episodes off, and their returns so far were
    # reported as episode returns with no flag (the driver counts them; now the sweep too).
    from bellmax.cli.sweep import _table

    base = dataclasses.replace(TINY, total_timesteps=64)
    result = sw.sweep(
        "ppo", "CliffWalking-v0", grid={"learning_rate": (1e-3,)}, seeds=(0,), base=base,
        chunks=1, eval_episodes=2, out_dir=tmp_path,
    )  # fmt: skip
    (trial,) = result.trials
    assert trial["final_eval_return"] <= -5000  # -1 per step: no episode reached the goal
    assert trial["eval_episodes_cut_off"] == 2
    assert result.summary()["trials"][0]["eval_episodes_cut_off"] == 2
    rows = [r.split(",") for r in (tmp_path / "results.csv").read_text().splitlines()]
    assert rows[1][rows[0].index("eval_episodes_cut_off")] == "2"
    assert "had evaluation episodes that had not ended" in _table(result.summary())
