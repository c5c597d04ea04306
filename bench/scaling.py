"""Benchmark: how cost grows with the size of the work, ours and a peer, drawn as plots.

Four curves, each measured with the peer in the same run and drawn (log-log) into
`<results-dir>/plots/` (default `bench/results/plots/`, embedded in bench/README.md):

- `dp`: seconds to solve a random sparse MDP by value iteration and by policy iteration
  against the number of states (1e3 .. 1e6), bellmax vs scipy.sparse. The measurement is
  bench/dp_sparse.py's (run here as a child process, `--no-venv-peers`: pymdptoolbox
  densifies and stops at 1e4); its records go to `dp_sparse.jsonl`.
- `ppo`: PPO env steps per second against the number of seeds trained at once (1 .. 256),
  bellmax's `train` (seeds `vmap`ped, one seed unbatched) vs rejax's `vmap(PPO.train)`
  (peer venv, group `gymnax`), CartPole-v1, the same rl-zoo settings (8 envs x 32 steps,
  20 epochs of one 256-transition minibatch, [64, 64] tanh), `--ppo-steps` env steps per
  seed, compile apart. Neither side evaluates: rejax's run is deep_cartpole's "bare" one,
  whose evaluation callback does nothing.
- `mcts`: tic-tac-toe games per second against simulations per move (10 .. 3000), as X and
  as O against a perfect player: bellmax's MCTS (all games of a side batched into one
  search per ply) vs OpenSpiel's C++ `MCTSBot` (one game at a time). bench/tictactoe.py's
  players (`measure_bellmax`, `measure_openspiel`); loss rates are recorded too.
- `ilqr`: milliseconds of one iLQR solve against the horizon, the cart-pole swing-up of
  bench/swingup.py over the same 3 s with `dt = 3 / T` (T = 50 .. 1600), bellmax's
  `ilqr_problem` (box-constrained) vs trajax's `ilqr` (peer venv, group `trajax`), compile
  apart; iterations are recorded (each solver stops by its own rule).

Each point is a record in `scaling_<curve>.jsonl` (`dp_sparse.jsonl` for `dp`) with its
size in `x`; a plot draws, per series, the newest record at each size.

    python bench/scaling.py                  # every curve, peers included (~25 min)
    python bench/scaling.py --only mcts ilqr # some curves
    python bench/scaling.py --plot-only      # redraw the plots from the results files
    python bench/scaling.py --smoke          # tiny sizes, no peer venv
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import _harness as H

H.fair_threads()

CURVES = ("dp", "ppo", "mcts", "ilqr")
#: Where bench/gpu_run.sh's records from a GPU machine are kept (inside the results folder).
GPU_SUBDIR = "gpu"
SWINGUP_SECONDS = 3.0
ENV_ID = "CartPole-v1"

#: The sizes of each curve: full, --quick, --smoke.
SIZES = {
    "dp": ((1000, 10_000, 100_000, 1_000_000), (1000, 10_000), (1000,)),
    "ppo": ((1, 2, 4, 8, 16, 32, 64, 128, 256), (1, 4, 16), (1, 2)),
    "mcts": ((10, 30, 100, 300, 1000, 3000), (10, 100), (5, 10)),
    "ilqr": ((50, 100, 200, 400, 800, 1600), (50, 100, 200), (50, 100)),
}


def _sizes(curve: str, args) -> tuple[int, ...]:
    full, quick, smoke = SIZES[curve]
    return smoke if args.smoke else quick if args.quick else full


# --------------------------------------------------------------------------- records
NO_VENV = "peer-venv peers skipped (--smoke / --no-venv-peers)"


def _emit_point(
    args, curve: str, run_id: str, ours: float, unit: str, peer: dict, peer_part, **fields
) -> None:
    """One point of `curve`: bellmax's `ours`, and `peer_part() -> (value, fields)` unless the
    peer was skipped (then the record says why)."""
    if H.is_skipped(peer):
        peer_value, peer_fields = None, {"peer_skipped": peer["reason"]}
    else:
        peer_value, peer_fields = peer_part()
    H.emit(
        H.result(
            f"scaling_{curve}",
            ours,
            peer_value,
            unit,
            run_id=run_id,
            quick=args.quick or args.smoke,
            **fields,
            **peer_fields,
        ),
        args.results_dir,
    )


# --------------------------------------------------------------------------- dp
def run_dp(args) -> None:
    """bench/dp_sparse.py at these sizes, scipy.sparse as the peer (its own records)."""
    cmd = [sys.executable, str(H.BENCH_DIR / "dp_sparse.py"), "--no-venv-peers", "--sizes"]
    cmd += [str(s) for s in _sizes("dp", args)]
    if args.smoke:
        cmd.append("--smoke")
    if args.results_dir is not None:
        cmd += ["--results-dir", str(args.results_dir)]
    H.log(f"scaling dp: {' '.join(cmd[1:])}")
    proc = subprocess.run(cmd, cwd=H.REPO_ROOT, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(proc.stdout)  # its records, already written to dp_sparse.jsonl
    if proc.returncode != 0:
        raise RuntimeError(f"bench/dp_sparse.py failed (exit {proc.returncode})")


# --------------------------------------------------------------------------- ppo
def measure_ppo(seed_counts: tuple[int, ...], steps: int) -> list[dict]:
    """bellmax PPO: `steps` env steps for each of n seeds at once; env steps/s, compile apart."""
    from bellmax.deep import ppo
    from bellmax.train.driver import train

    config = dataclasses.replace(ppo.Config(), total_timesteps=steps)
    out = []
    for n in seed_counts:
        res = train(ppo, config, ENV_ID, seeds=tuple(range(n)), chunks=1, eval_episodes=0)
        out.append(
            {
                "seeds": n,
                "steps_per_s": n * res.env_steps / res.seconds,
                "train_s": res.seconds,
                "compile_s": res.compile_seconds,
                "env_steps_per_seed": res.env_steps,
            }
        )
        H.log(f"scaling ppo: bellmax x{n}: {out[-1]}")
    return out


def run_ppo(args, run_id: str) -> None:
    seed_counts = _sizes("ppo", args)
    steps = args.ppo_steps or (1024 if args.smoke else 4096 if args.quick else 8192)
    ours = measure_ppo(seed_counts, steps)
    if args.smoke or args.no_venv_peers:
        peer = H.skipped(NO_VENV)
    else:
        H.log("scaling ppo: rejax in the peer venv")
        peer = H.run_in_peer_venv(
            H.BENCH_DIR / "deep_cartpole.py",
            [
                "--peer",
                "rejax",
                "--seed-list",
                ",".join(map(str, seed_counts)),
                "--eval-every",
                steps,
                "--total",
                steps,
            ],
            group="gymnax",
            modules=["rejax", "gymnax"],
        )
    runs = {} if H.is_skipped(peer) else {r["n_seeds"]: r for r in peer["runs"]}
    for mine in ours:
        n = mine["seeds"]

        def peer_part(theirs=runs.get(n)):
            return theirs["steps_per_s"], {
                "peer_version": peer["version"],
                "peer_compile_s": theirs["compile_s"],
                "peer_train_s": theirs["train_s_without_eval"],  # the steps/s run's
                "peer_env_steps_per_seed": theirs["total_steps"],
            }

        _emit_point(
            args,
            "ppo",
            run_id,
            mine["steps_per_s"],
            "steps/s",
            peer,
            peer_part,
            case=f"PPO {ENV_ID}, {n} seeds at once, {steps} env steps per seed",
            peer_name="rejax PPO (vmap over seeds)",
            x=n,
            x_name="seeds",
            series="ppo",
            ours_compile_s=mine["compile_s"],
            ours_train_s=mine["train_s"],
            ours_env_steps_per_seed=mine["env_steps_per_seed"],
        )


# --------------------------------------------------------------------------- mcts
def run_mcts(args, run_id: str) -> None:
    import tictactoe

    games = 4 if args.smoke else 64 if args.quick else 256
    rounds = 1 if args.smoke or args.quick else 3  # each rate the median round's
    for sims in _sizes("mcts", args):
        H.log(f"scaling mcts: bellmax, {sims} sims, {games} games a side, {rounds} rounds")
        ours = tictactoe.measure_bellmax(sims, games, 0, exhaustive=False, rounds=rounds)
        if args.smoke or args.no_venv_peers:
            peer = H.skipped(NO_VENV)
        else:
            peer = H.run_in_peer_venv(
                H.BENCH_DIR / "tictactoe.py",
                [
                    *("--peer", "openspiel", "--sims", sims, "--games", games),
                    *("--seed", 0, "--rounds", rounds),
                ],
                group="openspiel",
                modules=["pyspiel"],
            )
        for side in ("x", "o"):
            mine = ours[side]

            def peer_part(side=side, peer=peer):
                return peer[side]["games_per_s"], {
                    "peer_version": peer["version"],
                    "peer_loss_rate": peer[side]["loss_rate"],
                    "peer_games": peer[side]["games"],
                }

            _emit_point(
                args,
                "mcts",
                run_id,
                mine["games_per_s"],
                "games/s",
                peer,
                peer_part,
                case=f"tic-tac-toe MCTS as {side.upper()} vs perfect, {sims} sims per move",
                peer_name="OpenSpiel MCTSBot (C++), one game at a time",
                x=sims,
                x_name="simulations per move",
                series=f"as {side.upper()}",
                ours_batched=True,
                ours_games=mine["games"],
                rounds=rounds,
                ours_loss_rate=mine["loss_rate"],
                ours_compile_s=ours["compile_s"],
            )


# --------------------------------------------------------------------------- ilqr
def run_ilqr(args, run_id: str) -> None:
    import swingup

    repeat = 2 if args.smoke else 3 if args.quick else 10
    for horizon in _sizes("ilqr", args):
        dt = SWINGUP_SECONDS / horizon
        H.log(f"scaling ilqr: T={horizon} dt={dt:.5f}")
        mine = swingup.measure_bellmax(repeat, horizon, dt, methods=("ilqr",))["ilqr"]
        if args.smoke or args.no_venv_peers:
            peer = H.skipped(NO_VENV)
        else:
            peer = H.run_in_peer_venv(
                __file__,
                ["--peer", "trajax", "--horizon", horizon, "--repeat", repeat],
                group="trajax",
                modules=["trajax", "jax"],
            )
        _emit_point(
            args,
            "ilqr",
            run_id,
            mine["ms"],
            "ms",
            peer,
            lambda peer=peer: (peer["ms"], {f"peer_{k}": v for k, v in peer.items() if k != "ms"}),
            case=f"cart-pole swing-up over {SWINGUP_SECONDS} s, T={horizon}, dt={dt:.5g}",
            peer_name="trajax ilqr",
            x=horizon,
            x_name="horizon T",
            series="ilqr",
            **{f"ours_{k}": v for k, v in mine.items() if k != "ms"},
        )


# --------------------------------------------------------------------------- plots
def _newest(records: list[dict], key) -> dict:
    """The newest record per `key(record)` (records are oldest first)."""
    out = {}
    for rec in records:
        k = key(rec)
        if k is not None:
            out[k] = rec
    return out


def _curve_points(results_dir: Path, curve: str) -> dict[str, list[tuple[float, float, float]]]:
    """series name -> sorted [(x, ours, peer)] from the newest record at each size."""
    if curve == "dp":
        path = results_dir / "dp_sparse.jsonl"
        names = {"value_iteration": "value iteration", "policy_iteration": "policy iteration"}

        def key(r):
            if r.get("metric") in names and r.get("num_states"):
                return names[r["metric"]], r["num_states"]
            return None
    else:
        path = results_dir / f"scaling_{curve}.jsonl"

        def key(r):
            return (r.get("series"), r.get("x")) if r.get("x") is not None else None

    if not path.exists():
        return {}
    series: dict[str, list] = {}
    for (name, x), rec in sorted(_newest(H.read_results(path), key).items()):
        series.setdefault(name, []).append((x, rec["ours"], rec["peer"], rec))
    return series


PLOT_SPEC = {
    "dp": (
        "states",
        "seconds to solve",
        "scipy.sparse",
        "Random sparse MDP (4 actions, 5 successors)",
    ),
    "ppo": ("seeds trained at once", "env steps / s", "rejax", "PPO on CartPole-v1"),
    "mcts": ("simulations per move", "games / s", "OpenSpiel MCTSBot", "Tic-tac-toe MCTS"),
    "ilqr": ("horizon T (3 s swing-up, dt = 3/T)", "ms per solve", "trajax", "iLQR swing-up"),
}


def plot(results_dir: Path, curves=CURVES) -> list[Path]:
    """Draw each curve's PNG from the results files; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = results_dir / "plots"
    written = []
    for curve in curves:
        series = _curve_points(results_dir, curve)
        if not series:
            H.log(f"scaling plot: no records for {curve!r} in {results_dir}; nothing drawn")
            continue
        xlabel, ylabel, peer_label, title = PLOT_SPEC[curve]
        # bench/gpu_run.sh's records from a GPU machine, drawn beside the CPU ones
        gpu = _curve_points(results_dir / GPU_SUBDIR, curve)
        if gpu:
            H.log(f"scaling plot: {curve} with the GPU records of {results_dir / GPU_SUBDIR}")
        fig, axes = plt.subplots(1, len(series), figsize=(4.6 * len(series), 3.6), squeeze=False)
        for ax, (name, pts) in zip(axes[0], sorted(series.items(), reverse=True), strict=True):
            xs = [p[0] for p in pts]
            ax.plot(xs, [p[1] for p in pts], "o-", label="bellmax")
            peer_pts = [(p[0], p[2]) for p in pts if p[2] is not None]
            if peer_pts:
                ax.plot(*zip(*peer_pts, strict=True), "s--", label=peer_label)
            if gpu.get(name):
                device = (gpu[name][-1][3].get("machine", {}).get("jax_devices") or ["GPU"])[0]
                gxs = [p[0] for p in gpu[name]]
                ax.plot(gxs, [p[1] for p in gpu[name]], "^:", label=f"bellmax on {device}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if len(series) > 1:
                ax.set_title(name, fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        machine = pts[-1][3].get("machine", {})
        fig.text(
            0.01,
            0.05 if gpu else 0.01,
            f"{machine.get('cpu_model', '?')}, {machine.get('cpu_count', '?')} CPUs, "
            f"commit {str(machine.get('git_commit', '?'))[:8]}, {pts[-1][3].get('date', '')[:10]}",
            fontsize=7,
            alpha=0.7,
        )
        if gpu:
            grec = next(iter(gpu.values()))[-1][3]
            fig.text(
                0.01,
                0.01,
                f"GPU: commit {str(grec.get('machine', {}).get('git_commit', '?'))[:8]}, "
                f"{grec.get('date', '')[:10]}, no peer run there",
                fontsize=7,
                alpha=0.7,
            )
        fig.suptitle(title, fontsize=11)
        fig.tight_layout(rect=(0, 0.09 if gpu else 0.04, 1, 1))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"scaling_{curve}.png"
        tmp = path.with_suffix(".png.tmp")
        fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        tmp.replace(path)  # atomic: a reader never sees half a PNG
        written.append(path)
        H.log(f"scaling plot: wrote {path}")
    return written


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--only", choices=CURVES, nargs="+", default=None, help="curves to measure")
    p.add_argument("--plot-only", action="store_true", help="only redraw the plots")
    p.add_argument("--ppo-steps", type=int, default=None, help="env steps per seed (8192)")
    p.add_argument("--peer", choices=["trajax"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--horizon", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, default=5, help=argparse.SUPPRESS)
    given = sys.argv[1:] if argv is None else argv
    # Redrawing measures nothing: parse without the wait for a quiet machine.
    args = (
        argparse.ArgumentParser.parse_args(p, given)
        if "--plot-only" in given
        else p.parse_args(given)
    )
    if args.ppo_steps is not None and (args.ppo_steps < 256 or args.ppo_steps % 256):
        p.error(
            f"--ppo-steps must be a positive multiple of 256 (one rollout), got {args.ppo_steps}"
        )
    if args.peer == "trajax":
        import swingup

        H.print_json(
            swingup.measure_trajax(args.repeat, args.horizon, SWINGUP_SECONDS / args.horizon)
        )
        return 0

    results_dir = H.RESULTS_DIR if args.results_dir is None else Path(args.results_dir)
    curves = tuple(args.only or CURVES)
    if not args.plot_only:
        run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{H.machine_info().get('git_commit', '?')}"
        runners = {"dp": lambda: run_dp(args), "ppo": lambda: run_ppo(args, run_id)}
        runners |= {"mcts": lambda: run_mcts(args, run_id), "ilqr": lambda: run_ilqr(args, run_id)}
        for curve in curves:
            runners[curve]()
    if not plot(results_dir, curves):
        H.log("scaling: no plot drawn (no records yet: run without --plot-only first)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
