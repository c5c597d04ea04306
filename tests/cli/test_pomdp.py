"""`bellmax pomdp solve|simulate` end to end, in process (shared compiled functions) and once
in a subprocess; bad input exits 2 with a message."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bellmax.cli.main import main
from bellmax.cli.pomdp import PomdpArgs, _stopped_short

TIGER = str(Path(__file__).parents[1] / "pomdp" / "data" / "tiger.pomdp")


def run(capsys, *argv):
    code = main(["pomdp", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_solve_exact_json(capsys):
    code, out, _ = run(capsys, "solve", TIGER, "--method", "exact", "--horizon", "3", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["value"] == pytest.approx(2.3098, abs=5e-5) and d["horizon"] == 3
    assert d["alpha_vectors"] == 9 and d["num_states"] == 2


def test_solve_hsvi_default_saves_policy_then_simulate(capsys, tmp_path):
    pol = tmp_path / "tiger.npz"
    code, out, _ = run(capsys, "solve", TIGER, "--epsilon", "0.01", "--out", str(pol), "--json")
    d = json.loads(out)
    assert code == 0 and d["method"] == "hsvi" and d["status"] == "converged"
    assert d["value"] <= 19.3714 <= d["upper_bound"] and d["gap"] <= 0.01
    with np.load(pol) as z:
        assert z["alphas"].shape == (d["alpha_vectors"], 2)
    # Sampled check: the simulated discounted return of the saved policy agrees with its
    # lower bound (the policy's value is at least that) within 3 standard errors.
    code, out, _ = run(
        capsys, "simulate", TIGER, "--policy", str(pol), "--episodes", "4000", "--json"
    )
    s = json.loads(out)
    assert code == 0 and s["steps"] > 100
    assert s["mean_discounted_return"] > d["value"] - 3 * s["stderr"]
    assert abs(s["mean_discounted_return"] - 19.3714) < 3 * s["stderr"] + 0.01


def test_qmdp_upper_bound_and_alpha_file(capsys, tmp_path):
    code, out, _ = run(
        capsys, "solve", TIGER, "--method", "qmdp", "--out", str(tmp_path / "q.alpha"), "--json"
    )
    d = json.loads(out)
    assert d["value"] is None and d["upper_bound"] == pytest.approx(189.0, abs=1e-4)
    assert (tmp_path / "q.alpha").read_text().startswith("0\n")
    code, out, _ = run(
        capsys,
        "simulate",
        TIGER,
        "--policy",
        str(tmp_path / "q.alpha"),
        "--episodes",
        "10",
        "--steps",
        "5",
        "--json",
    )
    assert code == 0 and json.loads(out)["steps"] == 5


def test_pomcp_solve_reports_its_estimate(capsys):
    code, out, _ = run(
        capsys,
        "solve",
        TIGER,
        "--method",
        "pomcp",
        "--simulations",
        "50",
        "--max-depth",
        "5",
        "--json",
    )
    d = json.loads(out)
    assert code == 0 and d["alpha_vectors"] == 0 and d["upper_bound"] is None
    assert d["tree_nodes"] == 51 and d["action"] in ("listen", "open-left", "open-right")
    assert "not a bound" in d["value_note"]  # the estimate is not V*(b0)
    # five steps of tiger cost at least 100 / (1 - 0.95) ... but never more than that
    assert -100 * 5 <= d["value"] <= 10 * 5
    # --rollout mdp: past the tree the MDP's policy, which sees the tiger and opens the
    # safe door (+10 a step), where random actions open the tiger's door a third of the time
    # (about -30 a step): the estimate at b0 is far higher (about 34 against -100)
    code, out, _ = run(capsys, "solve", TIGER, "--method", "pomcp", "--simulations", "50",
                       "--max-depth", "5", "--rollout", "mdp", "--json")  # fmt: skip
    mdp = json.loads(out)
    assert code == 0 and mdp["rollout"] == "mdp" and d["rollout"] == "random"
    assert mdp["value"] > d["value"] + 50


def test_pomcp_simulate_runs_its_particle_agent(capsys):
    code, out, _ = run(capsys, "simulate", TIGER, "--method", "pomcp", "--simulations", "30",
                       "--max-depth", "5", "--episodes", "3", "--steps", "4", "--json")  # fmt: skip
    d = json.loads(out)
    assert code == 0 and d["belief"] == "particles" and d["episodes"] == 3
    assert d["reuse_tree"] is True  # Silver & Veness's agent keeps its subtree by default
    assert -100 * 4 <= d["mean_discounted_return"] <= 10 * 4
    code, out, _ = run(capsys, "simulate", TIGER, "--method", "pomcp", "--simulations", "30",
                       "--max-depth", "5", "--episodes", "3", "--steps", "4", "--json",
                       "--no-reuse-tree")  # fmt: skip
    assert code == 0 and json.loads(out)["reuse_tree"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve", "missing.pomdp"], "no POMDP file 'missing.pomdp'"),
        (["solve", TIGER, "--method", "exact"], "--method exact needs --horizon H"),
        (["solve", TIGER, "--out", "x.txt"], "must end in .npz or .alpha"),
        (["simulate", TIGER, "--policy", "nope.npz"], "no policy file 'nope.npz'"),
        (["solve", TIGER, "--horizon", "3"], "--horizon is only used by --method exact"),
        (["solve", TIGER, "--method", "pomcp", "--out", "p.npz"], "has no alpha vectors to save"),
        # options this run would ignore (they were dropped without a word)
        (["solve", TIGER, "--episodes", "10"], "--episodes is for simulate; solve does not"),
        (["solve", TIGER, "--steps", "10"], "--steps is for simulate"),
        (
            ["solve", TIGER, "--method", "pomcp", "--no-reuse-tree"],
            "--no-reuse-tree is for simulate",
        ),
        (
            ["simulate", TIGER, "--no-reuse-tree"],
            "--no-reuse-tree is used by --method pomcp, not hsvi",
        ),
        (
            ["solve", TIGER, "--method", "qmdp", "--time-limit", "5"],
            "--time-limit is used by --method hsvi, pbvi, perseus and exact, not qmdp",
        ),
        (["solve", TIGER, "--epsilon", "0.1", "--method", "pbvi"], "--epsilon is used by"),
        (["simulate", TIGER, "--simulations", "10"], "--simulations is used by --method pomcp"),
        (["solve", TIGER, "--rollout", "mdp"], "--rollout is used by --method pomcp, not hsvi"),
        (
            ["simulate", TIGER, "--policy", "p.npz", "--method", "qmdp"],
            "--method sets up a solver, but simulate --policy runs the saved policy",
        ),
        # named as ignored before the other checks judge their values
        (
            ["simulate", TIGER, "--policy", "p.npz", "--method", "exact", "--horizon", "3"],
            "--method and --horizon set up a solver",
        ),
        (["solve", TIGER, "--episodes", "1"], "--episodes is for simulate"),
        (["solve", TIGER, "--method", "qmdp", "--time-limit", "0"], "not qmdp"),
    ],
)
def test_bad_input_exits_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err


def test_exact_reports_the_horizon_reached_when_time_runs_out(capsys):
    code, out, _ = run(capsys, "solve", TIGER, "--method", "exact", "--horizon", "100000",
                       "--time-limit", "0.5", "--json")  # fmt: skip
    res = json.loads(out)
    assert code == 1 and res["status"] == "max_iterations"
    assert 1 <= res["horizon_reached"] == len(res["values_by_horizon"]) < 100000


def test_simulate_with_a_solve_that_stopped_short_says_so(capsys):
    # `simulate --method` solves first: a solve cut short by --time-limit still gives a
    # policy to simulate, but the command reports the solve's status and exits 1, as `solve`
    code, out, err = run(capsys, "simulate", TIGER, "--method", "exact", "--horizon", "100000",
                         "--time-limit", "0.3", "--episodes", "8", "--json")  # fmt: skip
    res = json.loads(out)
    assert code == 1 and res["status"] == "max_iterations"
    assert np.isfinite(res["mean_discounted_return"]) and res["episodes"] == 8
    assert err.startswith("bellmax: --method exact stopped at --time-limit 0.3 s after ")
    code, out, _ = run(capsys, "simulate", TIGER, "--method", "qmdp", "--episodes", "8", "--json")
    assert code == 0 and json.loads(out)["status"] == "converged"


def test_a_policy_that_is_not_an_npz_is_named(capsys, tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("not a policy\n")
    code, _, err = run(capsys, "simulate", TIGER, "--policy", str(text))
    assert code == 2 and "not a readable .npz policy" in err and "pickle" not in err


def test_unknown_method_and_malformed_file(capsys, tmp_path):
    code, _, err = run(capsys, "solve", TIGER, "--method", "sarsop")
    assert code == 2 and "invalid choice 'sarsop'" in err
    bad = tmp_path / "bad.pomdp"
    bad.write_text("discount: 0.9\nstates: 2\nactions: 1\nobservations: 1\nT: 0 : 0\n0.5 0.6\n")
    code, _, err = run(capsys, "solve", str(bad))
    assert code == 2 and "line 5" in err and "sums to 1.1" in err


def test_subprocess_help():
    exe = str(Path(sys.executable).parent / "bellmax")
    r = subprocess.run([exe, "pomdp", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "{solve,simulate}" in r.stdout


def test_help_says_which_options_each_action_uses(capsys):
    code, out, _ = run(capsys, "solve", "--help")
    flat = " ".join(out.split())
    assert code == 0
    assert "`solve` uses --method and that method's options" in flat
    assert "`simulate` uses --policy" in flat and "--episodes and --steps" in flat
    assert "(default: None)" not in out and "{None}" not in out
    assert "(required with --method exact)" in flat


def test_tour_section_reports_tiger():
    import jax

    from bellmax.cli.pomdp import tour_section

    class Report:
        def __init__(self):
            self.calls = []
            self.summary = {}

        def section(self, title, text=""):
            self.calls.append(("section", title, text))

        def table(self, header, rows):
            self.calls.append(("table", header, rows))

    class Ctx:
        quick = True
        report = Report()

        def key(self, name):
            return jax.random.key(0)

        def size(self, full, quick):
            return quick

    ctx = Ctx()
    tour_section(ctx)
    (_, title, _), (_, _, rows) = ctx.report.calls
    values = dict((r[0], r[1]) for r in rows)
    assert title == "POMDPs"
    assert values["V_3(uniform), exact"] == pytest.approx(2.3098, abs=5e-5)
    assert values["HSVI lower bound"] <= 19.3714 <= values["HSVI upper bound"]
    summary = ctx.report.summary  # the same numbers, for summary.json
    assert summary["pomdp_tiger_hsvi_lower_bound"] == float(values["HSVI lower bound"])
    assert summary["pomdp_tiger_exact_values_by_horizon"][2] == pytest.approx(2.3098, abs=5e-5)


# ---- bad input: rewards that overflow, a diverged solve, an --out that is not a policy, a
# folder as --policy, and the line a solver that stopped short prints on stderr


@pytest.fixture
def huge_tiger(tmp_path):
    """The tiger with 1e308 for every door's reward: finite floats whose sums overflow."""
    text = Path(TIGER).read_text().replace("* -100\n", "* 1e308\n")
    path = tmp_path / "huge.pomdp"
    path.write_text(text.replace("* 10\n", "* 1e308\n"))
    return str(path)


def test_rewards_that_overflow_are_refused_before_solving(capsys, tmp_path, huge_tiger):
    for method in ("pbvi", "qmdp"):  # pbvi wrote NaN vectors as converged; qmdp: "v0 must be"
        out = tmp_path / "h.npz"
        code, _, err = run(capsys, "solve", huge_tiger, "--method", method, "--out", str(out))
        assert code == 2 and f"{method}: rewards up to |R| = 1e+308 are too large" in err
        assert "Rescale the rewards" in err and not out.exists()
    policy = tmp_path / "p.alpha"
    policy.write_text("0\n0 0\n")
    code, _, err = run(capsys, "simulate", huge_tiger, "--policy", str(policy))  # was: "math
    assert code == 2 and "simulate: rewards up to |R| = 1e+308 are too large" in err  # domain"


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_a_diverged_solve_says_so_and_writes_nothing(capsys, tmp_path, huge_tiger, monkeypatch):
    monkeypatch.setattr("bellmax.pomdp.model._VALUE_LIMIT", np.inf)  # past the refusal
    out = tmp_path / "h.npz"
    code, stdout, err = run(capsys, "solve", huge_tiger, "--method", "pbvi", "--time-limit",
                            "5", "--out", str(out), "--json")  # fmt: skip
    d = json.loads(stdout)
    assert code == 1 and d["status"] == "diverged" and d["value"] is None and "out" not in d
    assert "--method pbvi diverged: its values became NaN or infinite; nothing was written" in err
    assert not out.exists()
    code, stdout, err = run(capsys, "simulate", huge_tiger, "--method", "pbvi", "--time-limit",
                            "5", "--steps", "5", "--json")  # fmt: skip
    d = json.loads(stdout)  # nothing simulated with NaN values
    assert code == 1 and d["status"] == "diverged" and d["mean_discounted_return"] is None
    assert "--method pbvi diverged: its values became NaN or infinite." in err


def test_out_replaces_a_policy_but_not_another_file(capsys, tmp_path):
    mdp = tmp_path / "mdp.npz"
    np.savez(mdp, P=np.full((2, 2, 2), 0.5), R=np.zeros((2, 2)))
    before = mdp.read_bytes()
    code, _, err = run(capsys, "solve", TIGER, "--method", "qmdp", "--out", str(mdp))
    assert code == 2 and f"--out '{mdp}' exists and is not a bellmax POMDP policy" in err
    assert "choose another path, or remove the file first" in err
    assert mdp.read_bytes() == before
    notes = tmp_path / "notes.alpha"
    notes.write_text("my notes\n")
    code, _, err = run(capsys, "solve", TIGER, "--method", "qmdp", "--out", str(notes))
    assert code == 2 and "is not a bellmax POMDP policy (.alpha" in err
    for name in ("p.npz", "p.alpha"):  # solving again over one's own policy is fine
        for _ in range(2):
            code, _, _ = run(capsys, "solve", TIGER, "--method", "qmdp", "--out",
                             str(tmp_path / name), "--json")  # fmt: skip
            assert code == 0


def test_a_folder_as_policy_is_named(capsys, tmp_path):
    code, _, err = run(capsys, "simulate", TIGER, "--policy", str(tmp_path))
    assert code == 2 and "is a directory, not a policy file: give the .npz (or .alpha)" in err


def test_a_solver_that_stopped_short_says_which_option_to_raise(capsys):
    code, _, err = run(capsys, "solve", TIGER, "--method", "exact", "--horizon", "100000",
                       "--time-limit", "0.3", "--json")  # fmt: skip
    assert code == 1
    assert err.startswith("bellmax: --method exact stopped at --time-limit 0.3 s after ")
    assert "of --horizon 100000 steps" in err and "raise --time-limit or lower --horizon" in err
    hsvi = PomdpArgs("solve", TIGER, method="hsvi", time_limit=2.0)
    late = {"status": "max_iterations", "seconds": 2.1}
    assert "stopped at --time-limit 2 s before the gap at b0 reached --epsilon" in (
        _stopped_short(hsvi, late)
    ) and _stopped_short(hsvi, late).endswith("raise --time-limit or --epsilon.")
    capped = _stopped_short(PomdpArgs("solve", TIGER, method="perseus"), {**late, "seconds": 1})
    assert capped.startswith("--method perseus stopped at its iteration cap before converging")
