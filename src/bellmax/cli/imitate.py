"""`bellmax imitate {bc,dagger,dart}`: learn a policy from an expert's labels.

    bellmax imitate dagger --env gymnasium:CartPole-v1 --expert lqr --labels 500 --json
    bellmax imitate bc --env gymnasium:CartPole-v1 --expert lqr --labels 500 --out runs/bc
    bellmax imitate dart --env CartPoleSwingUp-v0 --expert mpc --noise 0.3 --labels 5000
    bellmax imitate dagger --env TicTacToe-v0 --expert perfect --labels 3000
    bellmax imitate dagger --env gymnasium:CartPole-v1 --expert mypkg.experts:push

Experts (`--expert`): `lqr`, `mpc` (bellmax.control on the env's model, or on one identified
from `--sysid-steps N` random transitions), `checkpoint:DIR` (a trained bellmax policy),
`perfect` (tic-tac-toe's solver; TicTacToe-v0 is played against a uniformly random
opponent, the learner taking X and O in turn), `human` (you, at the terminal; discrete
actions), `module:function` (your own `obs -> action`). With `--out DIR` the command writes
`DIR/policy.msgpack` (load it with `bellmax.load_policy`; `bellmax evaluate
DIR/policy.msgpack`), `DIR/dataset.npz` (every label, written as it is gathered),
`DIR/imitation.json` and `DIR/return_vs_labels.png`; a directory that holds an earlier
imitation run is refused unless `--overwrite` is given.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from bellmax.cli.main import changed_fields, out_dir_option, plural
from bellmax.core.checks import check_int, check_seed
from bellmax.core.errors import unknown_name
from bellmax.core.io import (
    DATASET_NPZ,
    HUMAN_LABELS_NPZ,
    IMITATION_JSON,
    POLICY_MSGPACK,
    RETURN_VS_LABELS_PNG,
)

__all__ = [
    "EXPERTS",
    "ImitateArgs",
    "make_expert",
    "plot_curves",
    "run_imitate",
    "tour_section",
]

#: The built-in expert kinds (besides checkpoint:DIR and module:function).
EXPERTS = ("lqr", "mpc", "perfect", "human")
#: Largest --labels.
MAX_LABELS = 10_000_000


#: TicTacToe-v0's settings for the options not given (None in `ImitateArgs`; elsewhere they
#: take ImitationConfig's and BCConfig's defaults): those of tests/imitation/test_tictactoe.py,
#: where DAgger with the perfect expert reaches a network that never loses (with the general
#: defaults it stops at 10 rounds of 50 labels, still losing).
TICTACTOE_DEFAULTS = {
    "labels": 3000,
    "rounds": 15,
    "labels_per_round": 200,
    "steps_per_round": 2000,
    "hidden_sizes": (128, 128),
    "fit_steps": 2000,
    "target_return": 0.0,  # stop once it never loses
}


def _unset(metavar: str, default: str, tictactoe: str | None = None) -> Any:
    """The help of an option left unset (None): a plain `metavar` and its `default` in
    words, with TicTacToe-v0's own (`TICTACTOE_DEFAULTS[tictactoe]`) where it has one."""
    if tictactoe is not None:
        value = TICTACTOE_DEFAULTS[tictactoe]
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}"
        default = f"{default}; TicTacToe-v0 {shown}"
    return tyro.conf.arg(metavar=metavar, help_behavior_hint=f"(default: {default})")


@dataclasses.dataclass(frozen=True)
class ImitateArgs:
    """Learn a policy from an expert: behaviour cloning, DAgger or DART (noise-injected
    demonstrations), optionally with the three-cameras perturbed copies.

    Prints each round's labels so far and greedy return; `--json` prints one object with
    final_eval_return, labels_used, rounds, seconds and the per-round curve. With --env
    TicTacToe-v0 the options not given take the settings DAgger was tested with there:
    --labels 3000 --rounds 15 --labels-per-round 200 --steps-per-round 2000 --hidden-sizes
    128 128 --fit-steps 2000 --target-return 0 (stop once the network never loses).
    """

    algorithm: tyro.conf.Positional[Literal["bc", "dagger", "dart"]]
    """bc (the expert demonstrates), dagger (the learner acts, the expert labels), or dart
    (the expert acts with --noise injected, its clean action the label)."""
    env: str = "gymnasium:CartPole-v1"
    """Environment: a bellmax or Gymnasium id (module:EnvName-v0 too)."""
    expert: str = "lqr"
    """lqr, mpc, checkpoint:DIR, perfect (TicTacToe-v0), human, or module:function."""
    labels: Annotated[int | None, _unset("INT", "500", "labels")] = None
    """Label budget: expert-labelled observations at most."""
    rounds: Annotated[int | None, _unset("INT", "10", "rounds")] = None
    """Rounds at most (collect, label, refit, evaluate)."""
    labels_per_round: Annotated[int | None, _unset("INT", "50", "labels_per_round")] = None
    """Labels per round (an MPC expert labels every step it shadows)."""
    steps_per_round: Annotated[int | None, _unset("INT", "500", "steps_per_round")] = None
    """Environment steps rolled out per round."""
    beta_decay: float = 0.0
    """dagger: the expert acts with probability beta_decay**round (round 0 always)."""
    noise: float = 0.2
    """dart: injected noise (std in half action ranges; discrete: random-action probability)."""
    cameras: int = 0
    """Three cameras: perturbed copies of every labelled state, labelled by the expert."""
    camera_noise: float = 0.1
    """Std of the three-cameras perturbation (observation units)."""
    target_return: Annotated[
        float | None, _unset("FLOAT", "none, every round", "target_return")
    ] = None
    """Stop once the greedy evaluation reaches this return (on TicTacToe-v0, 0: never losing)."""
    eval_episodes: int = 5
    """Greedy evaluation episodes per round."""
    eval_expert: bool = False
    """Also measure the expert's own return (not counted as labels)."""
    sysid_steps: Annotated[int | None, _unset("INT", "none, the env's own parameters")] = None
    """lqr/mpc: identify the model from this many random transitions first."""
    horizon: Annotated[
        int | None, _unset("INT", "25 balance, 60 cart-pole swing-up, 40 pendulum")
    ] = None
    """mpc: planning horizon in steps (as `bellmax control`'s)."""
    mpc_iterations: Annotated[
        int | None, _unset("INT", "10 from a nominal plan, 3 warm-started")
    ] = None
    """mpc: iLQR iterations per step."""
    mpc_start: Literal["auto", "nominal", "warm"] = "auto"
    """mpc: start each solve from the rollout of a nominal controller (the cart-pole's energy
    swing-up with an LQR catch: labels a function of the state) or warm from the last plan
    (labels depend on the episode so far); auto: nominal for the cart-pole, else warm."""
    retrain: bool = False
    """Refit the learner from scratch each round on all labels (else continue the last fit)."""
    hidden_sizes: Annotated[
        tuple[int, ...] | None, _unset("INT [INT ...]", "64 64", "hidden_sizes")
    ] = None
    """The learner's hidden layer widths (e.g. --hidden-sizes 32 32)."""
    fit_steps: Annotated[int | None, _unset("INT", "400", "fit_steps")] = None
    """Gradient steps per round."""
    seed: int = 0
    """Seed of the learner, rollouts and evaluations."""
    out: Annotated[str | None, out_dir_option()] = None
    """Write policy.msgpack, dataset.npz, imitation.json and a plot here (not in a train run;
    a directory of an earlier imitation run is refused)."""
    overwrite: bool = False
    """Replace the results of an earlier imitation run in --out."""
    json: bool = False
    """Print one JSON object."""


def _model_for(env_id: str) -> Any:
    """The parametric model of `env_id` (CartPole*, Pendulum*), or a clear error."""
    from bellmax.core.errors import UnknownNameError
    from bellmax.models import parametric

    try:
        return parametric.model_for_env(env_id)
    except UnknownNameError:
        raise ValueError(
            f"--expert lqr and mpc control a cart-pole or a pendulum; bellmax has no model of "
            f"--env {env_id!r}. Use another expert (checkpoint:DIR, module:function, human)."
        ) from None


def _control_expert(kind: str, env_id: str, action_space: Any, args: ImitateArgs) -> Any:
    """An LQR or MPC expert on the env's model (true parameters, or identified)."""
    from bellmax.control.problems import env_problem
    from bellmax.envs import registry
    from bellmax.imitation.experts import lqr_expert, mpc_expert

    model = _model_for(env_id)
    if args.sysid_steps is not None:
        from bellmax.models.data import collect_transitions
        from bellmax.models.sysid import SysIdConfig, identify

        gauge = {"masscart": 1.0} if model.name == "cartpole" else {"g": 10.0, "max_torque": 2.0}
        data = collect_transitions(env_id, args.sysid_steps, seed=args.seed)
        fit = identify(model, data, fix=gauge, config=SysIdConfig(seed=args.seed))
        base = registry.make(env_id)[1] if registry.is_registered(env_id) else None
        params = model.env_params(fit.params, base=base)
    elif registry.is_registered(env_id):
        params = registry.make(env_id)[1]
    else:
        params = model.env_params(model.nominal_params)
    problem = env_problem(env_id, model.name, params, horizon=args.horizon)[0]
    if kind == "lqr":
        return lqr_expert(problem, action_space, params=params, observe=model.state_from_obs)
    start = args.mpc_start
    if start == "auto":
        start = "nominal" if model.name == "cartpole" else "warm"
    initial = None
    if start == "nominal":
        if model.name != "cartpole":
            raise ValueError(
                f"--mpc-start nominal: bellmax has a nominal controller for the cart-pole only, "
                f"not {model.name!r}; use --mpc-start warm."
            )
        from bellmax.imitation.nominal import cartpole_swingup_controller, rollout_plan

        initial = rollout_plan(problem, cartpole_swingup_controller(params), params)
    iterations = args.mpc_iterations or (10 if initial is not None else 3)
    return mpc_expert(
        problem,
        action_space,
        params=params,
        observe=model.state_from_obs,
        iterations=iterations,
        initial_plan=initial,
    )


def make_expert(spec: str, env_id: str, action_space: Any, args: ImitateArgs) -> Any:
    """The expert named by `--expert` (see the module docstring).

    Raises:
      UnknownNameError: an unknown kind (the message lists them).
      ValueError: a bad `module:function` or `checkpoint:DIR`.
    """
    from bellmax.imitation import experts

    spec = str(spec).strip()
    if spec in ("lqr", "mpc"):
        return _control_expert(spec, env_id, action_space, args)
    if spec == "perfect":
        if not _is_tictactoe(env_id):
            raise ValueError(
                f"--expert perfect is tic-tac-toe's solver: use it with --env TicTacToe-v0, "
                f"not {env_id!r}."
            )
        return experts.perfect_expert()
    if spec == "human":
        from bellmax.imitation.human import human_expert

        if args.out is None:
            raise ValueError(
                "--expert human needs --out DIR: every label you give is saved there "
                f"(DIR/{HUMAN_LABELS_NPZ}) the moment you give it."
            )
        return human_expert(action_space, env_id=env_id, save_to=Path(args.out) / HUMAN_LABELS_NPZ)
    if spec.startswith("checkpoint:"):
        return experts.policy_expert(spec.partition(":")[2])
    if ":" in spec:
        return experts.import_expert(spec)
    raise unknown_name(
        "expert",
        spec,
        EXPERTS,
        hint="Experts: lqr, mpc, perfect, human, checkpoint:DIR, module:function.",
        listed=True,
    )


def _is_tictactoe(env_id: str) -> bool:
    return env_id.rpartition(":")[2] == "TicTacToe-v0"


def _check_args(args: ImitateArgs) -> None:
    if isinstance(args.labels, int) and args.labels < 1:
        raise ValueError(
            f"--labels {args.labels}: the label budget must be at least 1 (imitation learns "
            "from the expert's labels); give e.g. --labels 500."
        )
    if args.labels is not None:
        check_int(args.labels, "--labels", low=1, high=MAX_LABELS)
    if args.rounds is not None:
        check_int(args.rounds, "--rounds", low=1, high=MAX_LABELS)
    if args.fit_steps is not None:
        check_int(args.fit_steps, "--fit-steps", low=1)
    if args.horizon is not None:
        from bellmax.cli.control import MAX_HORIZON

        check_int(args.horizon, "--horizon", low=1, high=MAX_HORIZON)  # as `bellmax control`
    if args.mpc_iterations is not None:
        check_int(args.mpc_iterations, "--mpc-iterations", low=1, high=10_000)
    if args.sysid_steps is not None:
        check_int(args.sysid_steps, "--sysid-steps", low=10, high=MAX_LABELS)
    check_seed(args.seed)
    _refuse_unused(args)
    if not args.env.strip():
        raise ValueError("--env is empty: give an environment id, e.g. --env CartPole-v1.")
    from bellmax.envs import gymnasium as gym_bridge

    gym_bridge.check_env_id(args.env)
    from bellmax.core.io import check_output_path, check_run_dir

    if args.out is not None:
        check_output_path(args.out, kind="dir")
    # a train run's policy.msgpack stays its own; an earlier imitation run's, unless --overwrite
    check_run_dir(args.out, "imitate", overwrite=args.overwrite)


def _refuse_unused(args: ImitateArgs) -> None:
    """An option that the algorithm or the expert does not read is refused, not ignored."""
    owners = {  # option -> (field, who reads it, whether this run does)
        "--beta-decay": ("beta_decay", "dagger", args.algorithm == "dagger"),
        "--noise": ("noise", "dart", args.algorithm == "dart"),
        "--horizon": ("horizon", "the mpc expert", args.expert == "mpc"),
        "--mpc-iterations": ("mpc_iterations", "the mpc expert", args.expert == "mpc"),
        "--mpc-start": ("mpc_start", "the mpc expert", args.expert == "mpc"),
        "--sysid-steps": ("sysid_steps", "the lqr and mpc experts", args.expert in ("lqr", "mpc")),
    }
    changed = set(changed_fields(args, [field for field, _, _ in owners.values()]))
    for option, (field, reader, used) in owners.items():
        if not used and field in changed:
            raise ValueError(
                f"{option} is only read by {reader}; this run ({args.algorithm}, --expert "
                f"{args.expert}) would ignore it: drop it."
            )


def _with_env_defaults(args: ImitateArgs) -> ImitateArgs:
    """`args` with TicTacToe-v0's settings (`TICTACTOE_DEFAULTS`) for the options not given."""
    if not _is_tictactoe(args.env):
        return args
    unset = {k: v for k, v in TICTACTOE_DEFAULTS.items() if getattr(args, k) is None}
    return dataclasses.replace(args, **unset)


def _config(args: ImitateArgs) -> Any:
    from bellmax.imitation.bc import BCConfig
    from bellmax.imitation.loop import ImitationConfig

    # an option not given (None) keeps the library's default
    names = {"labels", "rounds", "labels_per_round", "steps_per_round"}
    given = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    bc_names = {"hidden_sizes": "hidden_sizes", "fit_steps": "steps"}
    bc = {v: getattr(args, k) for k, v in bc_names.items() if getattr(args, k) is not None}
    return ImitationConfig(
        algorithm=args.algorithm,
        **given,
        beta_decay=args.beta_decay,
        noise=args.noise,
        cameras=args.cameras,
        camera_noise=args.camera_noise,
        eval_episodes=args.eval_episodes,
        target_return=args.target_return,
        retrain=args.retrain,
        bc=BCConfig(**bc),
    )


def _env_makers(env_id: str, config: Any) -> dict[str, Any]:
    """`make_env`/`evaluate_fn` for `imitate`: tic-tac-toe is played against a random
    opponent and scored by the exhaustive worst outcome (1 win, 0 draw, -1 loss)."""
    if not _is_tictactoe(env_id):
        return {}
    from bellmax.envs import spaces
    from bellmax.imitation import bc
    from bellmax.imitation.games import make_tictactoe_env, worst_outcome

    obs_space, act_space = spaces.Box(-1.0, 1.0, (9,)), spaces.Discrete(9)

    def score(params: Any) -> float:
        return float(worst_outcome(lambda o: bc.act(params, o, config.bc, obs_space, act_space)))

    return {"make_env": make_tictactoe_env, "evaluate_fn": score}


def plot_curves(curves: dict[str, list[tuple[int, float]]], *, expert: float | None = None):
    """A Matplotlib figure of return against labels, one line per algorithm."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for name, points in curves.items():
        xs, ys = zip(*points, strict=True) if points else ((), ())
        ax.plot(xs, ys, marker="o", label=name)
    if expert is not None:
        ax.axhline(expert, color="k", ls="--", lw=1, label="expert")
    ax.set_xlabel("expert labels")
    ax.set_ylabel("greedy return")
    ax.legend()
    fig.tight_layout()
    return fig


def run_imitate(args: ImitateArgs) -> int:
    """`bellmax imitate`."""
    from bellmax.core.errors import DivergenceError
    from bellmax.imitation.bc import write_policy
    from bellmax.imitation.experts import ExpertError
    from bellmax.imitation.loop import expert_return, imitate, make_rollout_env

    args = _with_env_defaults(args)
    _check_args(args)
    config = _config(args)
    makers = _env_makers(args.env, config)
    maker = makers.get("make_env")
    probe = maker(num_envs=1, seed=0) if maker else make_rollout_env(args.env)
    action_space = probe.action_space
    probe.close()
    expert = make_expert(args.expert, args.env, action_space, args)
    out = Path(args.out) if args.out is not None else None
    data_path = None if out is None else out / DATASET_NPZ
    if out is not None and args.overwrite:  # before the first label is written
        from bellmax.core.io import clear_outputs

        clear_outputs(out, "imitate")
    meta = {"env": args.env, "expert": args.expert, "algorithm": args.algorithm}

    # TicTacToe-v0's evaluation is the exhaustive worst outcome, not a mean return
    score = "worst outcome" if _is_tictactoe(args.env) else "greedy return"

    def progress(rec: Any) -> None:
        if not args.json:
            labels = plural(rec.labels, "label")
            print(f"round {rec.round}: {labels}, {score} {rec.eval_return:.1f}")
            sys.stdout.flush()

    try:
        res = imitate(
            args.env,
            expert,
            config,
            seed=args.seed,
            dataset_path=data_path,
            on_round=progress,
            meta=meta,
            **makers,
        )
    except ExpertError as e:
        raise ExpertError(f"{e}{_saved_note(data_path)}") from None
    except DivergenceError as e:  # before any policy is written
        raise DivergenceError(f"{e}{_saved_note(data_path)}") from None
    except KeyboardInterrupt:
        if data_path is not None:
            print(_saved_note(data_path).strip(" ()"), file=sys.stderr)
        raise
    exp_ret = None
    if args.eval_expert:
        exp_ret = expert_return(
            args.env, expert, episodes=args.eval_episodes, seed=args.seed, make_env=maker
        )
    summary = {
        "algorithm": args.algorithm,
        "env": args.env,
        "expert": args.expert,
        "final_eval_return": res.final_eval_return,
        "labels_used": res.labels_used,
        "rounds": len(res.rounds),
        "seconds": round(res.seconds, 3),
        "per_round": [
            {"round": r.round, "labels": r.labels, "return": r.eval_return} for r in res.rounds
        ],
    }
    if exp_ret is not None:
        summary["expert_return"] = exp_ret
    if out is not None:
        from bellmax.train.io import atomic_savefig, atomic_write_json

        run = {
            "env": args.env,
            "num_envs": args.eval_episodes,
            "updates_done": len(res.rounds),
            "labels_used": res.labels_used,
            "expert": args.expert,
            "eval_return_per_seed": [res.final_eval_return],
        }
        write_policy(
            out / POLICY_MSGPACK,
            res.params,
            config.bc,
            res.observation_space,
            res.action_space,
            algorithm=args.algorithm,
            seed=args.seed,
            run=run,
        )
        atomic_write_json(out / IMITATION_JSON, summary)
        points = [(r.labels, r.eval_return) for r in res.rounds]
        atomic_savefig(
            plot_curves({args.algorithm: points}, expert=exp_ret), out / RETURN_VS_LABELS_PNG
        )
        summary["out"] = str(out)
    if args.json:
        print(json.dumps(summary))
    else:
        line = f"{args.algorithm} on {args.env} with the {args.expert} expert: {score} "
        line += f"{res.final_eval_return:.1f} after {plural(res.labels_used, 'label')}, "
        line += f"{plural(len(res.rounds), 'round')}, {res.seconds:.1f} s"
        print(line)
        if _is_tictactoe(args.env):
            print(
                "(the greedy learner's worst result over every line of the opponent's play, "
                "as X and as O: 1 win, 0 draw, -1 loss; 0 means it never loses)"
            )
        if exp_ret is not None:
            print(f"expert's own return: {exp_ret:.1f}")
        if out is not None:
            written = (POLICY_MSGPACK, DATASET_NPZ, IMITATION_JSON, RETURN_VS_LABELS_PNG)
            print(f"wrote {out}/" + ", ".join(written))
    return 0


def _saved_note(path: Path | None) -> str:
    """' (N labels kept in PATH)', or ' (no labels were saved)' when nothing was written."""
    if path is None:
        return ""
    n = len_saved(path)
    return f" ({plural(n, 'label')} kept in {path})" if n else " (no labels were saved)"


def len_saved(path: Path | None) -> int:
    """Labels in the dataset file at `path` (0 if there is none)."""
    from bellmax.imitation.dataset import DatasetFileError, load_dataset

    if path is None or not Path(path).exists():
        return 0
    try:
        return len(load_dataset(path)[0])
    except DatasetFileError:
        return 0


def tour_section(ctx: Any) -> None:
    """The tour's imitation section: why DAgger. BC, DAgger and DART learn from an expert;
    greedy return against labels, one plot. The full tour uses the cart-pole swing-up with
    the MPC expert; `--quick` the LQR expert on CartPole-v1 (seconds, not a minute)."""
    if ctx.quick:
        _tour_cartpole(ctx)
    else:
        _tour_swingup(ctx)


_TOUR_INTRO = (
    "Behaviour cloning learns from the expert's own demonstrations; once the copy errs a "
    "little it drifts into states the expert never showed it (the distribution mismatch). "
    "DAgger lets the learner act and asks the expert to label the states the learner itself "
    "visits; DART keeps the expert acting but injects noise, so its demonstrations already "
    "cover nearby states. `bellmax imitate {bc,dagger,dart} --env ENV --expert SPEC` runs the "
    "same with any expert: lqr, mpc, a trained policy, tic-tac-toe's solver, a person at the "
    "terminal, or your own function."
)


def _tour_swingup(ctx: Any) -> None:
    from bellmax.envs import registry
    from bellmax.imitation import BCConfig, ImitationConfig, expert_return, imitate

    env_id, cap, per = "CartPoleSwingUp-v0", 2500, 250
    ctx.report.section(
        "Imitation learning: why DAgger",
        "A learner (a 64x64 MLP) copies the MPC expert of `bellmax imitate --expert mpc` on the "
        "cart-pole swing-up: iLQR re-planned at every step, each solve started from the rollout "
        "of an energy-pumping swing-up controller, so that its label is a function of the "
        "state. " + _TOUR_INTRO + f" Every round adds {per} labels and refits the learner from "
        "scratch on all of them; DAgger (the expert acts with probability 0.5^round) and DART "
        "(noise 0.3) stop at 90% of the expert's return, behaviour cloning gets as many labels "
        f"as the more demanding of the two (at most {cap}).",
    )
    env, params = registry.make(env_id)
    args = ImitateArgs(algorithm="dagger", env=env_id, expert="mpc")
    expert = make_expert("mpc", env_id, env.action_space(params), args)
    exp_ret = expert_return(env_id, expert, episodes=5, seed=ctx.seed)
    target = 0.9 * exp_ret
    curves, rows, results = {}, [], {}
    for algo in ("dagger", "dart", "bc"):
        budget = cap
        if algo == "bc":
            budget = max(results[a].labels_used for a in ("dagger", "dart"))
        config = ImitationConfig(
            algorithm=algo,
            labels=budget,
            rounds=budget // per,
            labels_per_round=per,
            beta_decay=0.5,
            noise=0.3,
            retrain=True,
            target_return=None if algo == "bc" else target,
            bc=BCConfig(steps=3000),
        )
        res = results[algo] = imitate(env_id, expert, config, seed=ctx.seed)
        curves[algo] = [(r.labels, r.eval_return) for r in res.rounds]
        reached = res.labels_to_reach(target)
        rows.append([algo, res.final_eval_return, "-" if reached is None else reached, res.seconds])
        ctx.report.summary[f"imitation_{algo}_swingup_final_return"] = res.final_eval_return
    ctx.report.summary["imitation_swingup_expert_return"] = exp_ret
    ctx.report.image(
        plot_curves({a: curves[a] for a in ("bc", "dagger", "dart")}, expert=exp_ret),
        f"Greedy return of the learner against the MPC expert's labels on CartPoleSwingUp-v0 "
        f"(seed {ctx.seed}); the dashed line is the expert's own return ({exp_ret:.1f}).",
        name="imitation_curves",
    )
    ctx.report.table(
        ["algorithm", "final return", f"labels to reach {target:.0f} (90%)", "seconds"], rows
    )


def _tour_cartpole(ctx: Any) -> None:
    from bellmax.control import cartpole_balance
    from bellmax.envs import spaces
    from bellmax.envs.cartpole import CartPoleParams
    from bellmax.imitation import BCConfig, ImitationConfig, imitate, lqr_expert

    labels = 100
    ctx.report.section(
        "Imitation learning: why DAgger",
        "(The quick tour: the full one shows this on the cart-pole swing-up with the MPC "
        "expert.) A learner copies an expert (here LQR about the upright cart-pole, pushing by "
        "the sign of its force) on CartPole-v1. " + _TOUR_INTRO + f" Every round adds 50 labels "
        f"(at most {labels}); the learner, a 64x64 MLP, is refitted and evaluated greedily.",
    )
    params = CartPoleParams()
    expert = lqr_expert(cartpole_balance(params), spaces.Discrete(2), params=params)
    curves, rows = {}, []
    for algo in ("bc", "dagger", "dart"):
        config = ImitationConfig(
            algorithm=algo,
            labels=labels,
            rounds=labels // 50,
            noise=0.3,
            eval_episodes=2,
            bc=BCConfig(steps=100),
        )
        res = imitate("CartPole-v1", expert, config, seed=ctx.seed)
        curves[algo] = [(r.labels, r.eval_return) for r in res.rounds]
        reached = res.labels_to_reach(475.0)
        rows.append([algo, res.final_eval_return, "-" if reached is None else reached, res.seconds])
        ctx.report.summary[f"imitation_{algo}_cartpole_final_return"] = res.final_eval_return
    ctx.report.image(
        plot_curves(curves, expert=500.0),
        f"Greedy return of the learner against the expert's labels on CartPole-v1 (seed "
        f"{ctx.seed}); the dashed line is the expert's return.",
        name="imitation_curves",
    )
    ctx.report.table(["algorithm", "final return", "labels to reach 475", "seconds"], rows)
