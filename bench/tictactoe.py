"""Benchmark: tic-tac-toe MCTS against OpenSpiel's MCTS bot, and AlphaZero-style training time.

The same work for both MCTS implementations: UCT with one random rollout per leaf and
exploration constant 2, `--sims` simulations per move (1000; OpenSpiel's PEERS.md figure),
playing `--games` games as X and as O against a perfect player (uniformly random among the
optimal moves of the exact solution; never loses). Reported per side: the loss rate (what
"strength" means against a perfect player: lower is better) and games per second: both
libraries play `--rounds` rounds of games a side (3), and a rate is the median round's (single
rounds of the same games varied by up to 1.8x on this 2-core VM).

- bellmax: `bellmax.games.mcts` (the default agent: UCT, one random rollout per leaf, MCTS-Solver
  with 2-ply leaf solving), all games of a side played at once: every ply searches the live
  games as one batch (one jitted search over up to 256 boards).
- OpenSpiel (peer, `bench/.venv-peers`, group `openspiel`): `pyspiel.MCTSBot` (C++) with
  `pyspiel.RandomRolloutEvaluator(1)`, `uct_c=2`, `solve=True`, one game at a time; the
  perfect player is a memoised negamax over pyspiel states in the same process.

bellmax also plays `--serial-games` games a side one at a time (each search over one board, as
OpenSpiel's bot plays; records `..._one_at_a_time_as_x|o`), so that both ways are reported and
named. Also: bellmax's exhaustive check (every line of the opponent's play, seed 0) at that budget,
and the AlphaZero-style agent's training time until its exhaustive check shows no loss as X
or as O (checked every 5 rounds; compile time included and reported apart).

    python bench/tictactoe.py            # full: 1000 sims, 256 games a side, peer included
    python bench/tictactoe.py --quick    # 200 sims, 16 games a side, peer included
    python bench/tictactoe.py --smoke    # tiny, no peer venv, no AlphaZero training
"""

from __future__ import annotations

import argparse
import statistics
import time

import _harness as H

H.fair_threads()
H.cold_compiles()  # our compile seconds stand beside a peer's cold ones

BENCH = "tictactoe"


# ---------------------------------------------------------------------- bellmax side
class _Clocked:
    """An agent whose moves are timed (`seconds`): the opponent's share of a game's time."""

    def __init__(self, agent) -> None:
        self.agent, self.seconds = agent, 0.0
        if hasattr(agent, "act_batch"):
            self.act_batch = self._act_batch

    def _timed(self, method, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    def act(self, *args, **kwargs):
        return self._timed(self.agent.act, *args, **kwargs)

    def _act_batch(self, *args, **kwargs):
        return self._timed(self.agent.act_batch, *args, **kwargs)


def _play_batched(mcts_agent, perfect, mcts_player: int, games: int, seed: int) -> dict:
    """`games` games of MCTS against the perfect player (`arena`: each ply of all the live
    games is one batched search; the perfect player moves in one call per ply as well)."""
    from bellmax.games.tictactoe import arena

    perfect = _Clocked(perfect)
    t0 = time.perf_counter()
    if mcts_player == 1:
        res = arena(mcts_agent, perfect, games, seed=seed)
        wins, losses = res["wins"], res["losses"]
    else:
        res = arena(perfect, mcts_agent, games, seed=seed)
        wins, losses = res["losses"], res["wins"]
    seconds = time.perf_counter() - t0
    return {
        "games": games,
        "wins": wins,
        "draws": res["draws"],
        "losses": losses,
        "loss_rate": losses / games,
        "games_per_s": games / seconds,
        "seconds": seconds,
        "opponent_seconds": perfect.seconds,
    }


def _rounds(played: list[dict]) -> dict:
    """One side's rounds of games as one record: the games, wins, draws and losses of all
    rounds, and the median round's games/s (each round's rate kept as well)."""
    keys = ("games", "wins", "draws", "losses", "seconds", "opponent_seconds")
    out = {k: sum(r[k] for r in played) for k in keys}
    return {
        **out,
        "loss_rate": out["losses"] / out["games"],
        "games_per_s": statistics.median(r["games_per_s"] for r in played),
        "games_per_s_rounds": [r["games_per_s"] for r in played],
        "rounds": len(played),
    }


def _play_one_at_a_time(mcts_agent, perfect, mcts_player: int, games: int, seed: int) -> dict:
    """`games` games played one after another, each its own `arena` of one game: every
    search is over a single board (batch 1), as OpenSpiel's bot plays."""
    tally = {"games": games, "wins": 0, "draws": 0, "losses": 0, "seconds": 0.0}
    for i in range(games):
        one = _play_batched(mcts_agent, perfect, mcts_player, 1, seed + 1 + i)
        for k in ("wins", "draws", "losses", "seconds"):
            tally[k] += one[k]
    return {
        **tally,
        "loss_rate": tally["losses"] / games,
        "games_per_s": games / tally["seconds"],
    }


def measure_bellmax(
    sims: int, games: int, seed: int, exhaustive: bool, serial: int = 0, rounds: int = 1
) -> dict:
    """bellmax's MCTS vs the perfect player as X and as O, and its exhaustive check."""
    import jax
    import numpy as np

    from bellmax.games.mcts import frozen_agent, make_mcts_agent
    from bellmax.games.tictactoe import lines_of_play, make_agent

    agent = make_mcts_agent(num_simulations=sims, uct_c=2.0, seed=seed)
    perfect = make_agent("perfect", seed=seed)
    t0 = time.perf_counter()  # compile the search programs (batches 64, 256) before timing
    for size in (1, 65):
        agent.act_batch(np.zeros((size, 9), np.int64), np.ones(size), key=jax.random.key(0))
    compile_s = time.perf_counter() - t0
    out = {"compile_s": compile_s, "config": repr(agent.config)}
    played = {"x": [], "o": []}
    for r in range(rounds):  # the sides' rounds interleaved, each round its own games
        for name, side in (("x", 1), ("o", -1)):
            played[name].append(_play_batched(agent, perfect, side, games, seed + r))
    for name, side in (("x", 1), ("o", -1)):
        out[name] = _rounds(played[name])
        if serial:
            out[f"{name}_one_at_a_time"] = _play_one_at_a_time(agent, perfect, side, serial, seed)
    if exhaustive:
        for name, side in (("x", 1), ("o", -1)):
            t0 = time.perf_counter()
            lines = lines_of_play(frozen_agent(agent, side, seed=seed), side)
            out[f"exhaustive_{name}"] = {**lines, "seconds": time.perf_counter() - t0}
    return out


def measure_alphazero(max_iterations: int, seed: int) -> dict:
    """Train the AlphaZero-style agent until its own exhaustive check finds no lost line.

    `train_alphazero` checks every round and stops at the first clean check, so the time to
    perfect play is its wall time less the checks (reported apart).
    """
    from bellmax.core.errors import BellmaxError
    from bellmax.games.alphazero import AlphaZeroConfig, train_alphazero

    config = AlphaZeroConfig(iterations=max_iterations)
    start = time.perf_counter()
    first = {"round_s": None}

    def callback(it: int, params) -> bool:
        if first["round_s"] is None:
            first["round_s"] = time.perf_counter() - start
        return False

    try:
        result = train_alphazero(config, seed=seed, callback=callback)
    except BellmaxError as e:  # the round cap was reached without a clean check
        return {"rounds_to_perfect": None, "error": str(e)}
    return {
        "rounds_to_perfect": result.rounds,
        "seconds_to_perfect": result.seconds - result.check_seconds,
        "first_round_s_incl_compile": first["round_s"],
        "check_s": result.check_seconds,
        "checks": result.checks,
        "total_s": result.seconds,
        "games_per_round": config.games_per_iteration,
        "simulations": config.num_simulations,
    }


# ---------------------------------------------------------------------- OpenSpiel side
def measure_openspiel(sims: int, games: int, seed: int, rounds: int = 1) -> dict:
    """OpenSpiel's C++ MCTS bot vs a perfect player (memoised negamax), as X and as O.

    Runs in the peer venv: imports pyspiel, never bellmax.
    """
    import functools
    import random

    import pyspiel

    game = pyspiel.load_game("tic_tac_toe")

    @functools.cache
    def value(history: tuple[int, ...]) -> int:  # for the player to move
        state = game.new_initial_state()
        for a in history:
            state.apply_action(a)
        if state.is_terminal():
            return -1 if state.returns()[0] != 0 else 0
        return max(-value((*history, a)) for a in state.legal_actions())

    def perfect_move(state, rng) -> int:
        nonlocal opponent_seconds
        t0 = time.perf_counter()
        try:
            return _perfect_move(state, rng)
        finally:
            opponent_seconds += time.perf_counter() - t0

    def _perfect_move(state, rng) -> int:
        hist = tuple(state.history())
        best = max(-value((*hist, a)) for a in state.legal_actions())
        return rng.choice([a for a in state.legal_actions() if -value((*hist, a)) == best])

    value(())  # solve the game once, before any timing
    out = {"version": H.package_version("open_spiel"), "sims": sims}
    rng = random.Random(seed)
    played = {"x": [], "o": []}
    for r, (name, side) in ((r, s) for r in range(rounds) for s in (("x", 0), ("o", 1))):
        evaluator = pyspiel.RandomRolloutEvaluator(1, seed + r)
        bot = pyspiel.MCTSBot(game, evaluator, 2.0, sims, 1000, True, seed + r, False)
        wins = draws = losses = 0
        opponent_seconds = 0.0
        t0 = time.perf_counter()
        for _ in range(games):
            state = game.new_initial_state()
            while not state.is_terminal():
                if state.current_player() == side:
                    action = bot.step(state)
                else:
                    action = perfect_move(state, rng)
                state.apply_action(action)
            r = state.returns()[side]
            wins, draws, losses = wins + (r > 0), draws + (r == 0), losses + (r < 0)
        seconds = time.perf_counter() - t0
        played[name].append(
            {
                "games": games,
                "wins": wins,
                "draws": draws,
                "losses": losses,
                "games_per_s": games / seconds,
                "seconds": seconds,
                "opponent_seconds": opponent_seconds,
            }
        )
    return {**out, "x": _rounds(played["x"]), "o": _rounds(played["o"])}


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--sims", type=int, default=None, help="simulations per move (default 1000)")
    p.add_argument(
        "--games",
        type=int,
        default=None,
        help="games per side (default 256: one full search batch)",
    )
    p.add_argument(
        "--serial-games",
        type=int,
        default=None,
        help="games per side that bellmax also plays one at a time (batch 1, like OpenSpiel's "
        "bot; default 16)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds of --games games a side, for both libraries (default 3; 1 with --quick "
        "or --smoke): each rate is the median round's, the losses are all rounds'",
    )
    p.add_argument("--az-rounds", type=int, default=None, help="max AlphaZero rounds (60)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer", choices=["openspiel"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    quick = args.quick or args.smoke
    sims = args.sims or (20 if args.smoke else 200 if quick else 1000)
    games = args.games or (4 if args.smoke else 16 if quick else 256)
    serial = args.serial_games or (2 if args.smoke else 4 if quick else 16)
    rounds = args.rounds or (1 if quick else 3)
    az_rounds = args.az_rounds or 60
    checked = (
        ("--sims", sims),
        ("--games", games),
        ("--serial-games", serial),
        ("--rounds", rounds),
    )
    for name, value in (*checked, ("--az-rounds", az_rounds)):
        if value < 1:
            p.error(f"{name} must be >= 1, got {value}")

    if args.peer == "openspiel":
        H.print_json(measure_openspiel(sims, games, args.seed, rounds))
        return 0

    H.log(f"{BENCH}: bellmax MCTS, {sims} sims, {games} games a side vs perfect")
    ours = measure_bellmax(
        sims, games, args.seed, exhaustive=not args.smoke, serial=serial, rounds=rounds
    )
    if args.smoke or args.no_venv_peers:
        peer = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
    else:
        H.log(f"{BENCH}: OpenSpiel MCTSBot in the peer venv")
        peer = H.run_in_peer_venv(
            __file__,
            [
                *("--peer", "openspiel", "--sims", sims, "--games", games),
                *("--seed", args.seed, "--rounds", rounds),
            ],
            group="openspiel",
            modules=["pyspiel"],
        )
        if H.is_skipped(peer):
            H.log(f"{BENCH}: OpenSpiel skipped: {peer['reason']}")
    sizes = {"sims": sims, "games_per_side": games, "rounds": rounds, "quick": quick}
    skipped = H.is_skipped(peer)
    extra_peer = {"peer_skipped": peer["reason"]} if skipped else {"peer_version": peer["version"]}
    for side in ("x", "o"):
        H.emit(
            H.result(
                f"{BENCH}_mcts_games_per_s_as_{side}",
                ours[side]["games_per_s"],
                None if skipped else peer[side]["games_per_s"],
                "games/s",
                case=f"MCTS as {side.upper()} vs a perfect player, {sims} sims",
                peer_name="OpenSpiel MCTSBot (C++)",
                ours_batched=True,
                ours_compile_s=ours["compile_s"],
                **sizes,
                **extra_peer,
            ),
            args.results_dir,
        )
        one = ours[f"{side}_one_at_a_time"]
        H.emit(
            H.result(
                f"{BENCH}_mcts_games_per_s_one_at_a_time_as_{side}",
                one["games_per_s"],
                None if skipped else peer[side]["games_per_s"],
                "games/s",
                case=f"MCTS as {side.upper()} vs a perfect player, {sims} sims, both one game "
                f"at a time (bellmax: {serial} games, each search over one board)",
                peer_name="OpenSpiel MCTSBot (C++)",
                ours_batched=False,
                ours_games=one,
                **sizes,
                **extra_peer,
            ),
            args.results_dir,
        )
        H.emit(
            H.result(
                f"{BENCH}_mcts_loss_rate_as_{side}",
                ours[side]["loss_rate"],
                None if skipped else peer[side]["loss_rate"],
                "losses/game",
                better="lower",
                case=f"MCTS as {side.upper()} vs a perfect player, {sims} sims",
                peer_name="OpenSpiel MCTSBot (C++)",
                ours_games=ours[side],
                peer_games=None if skipped else peer[side],
                ours_exhaustive=ours.get(f"exhaustive_{side}"),
                ours_config=ours["config"],
                **sizes,
                **extra_peer,
            ),
            args.results_dir,
        )
    if not args.smoke:
        H.log(f"{BENCH}: AlphaZero-style training until perfect play (<= {az_rounds} rounds)")
        az = measure_alphazero(az_rounds, args.seed)
        if az["rounds_to_perfect"] is not None:
            H.emit(
                H.result(
                    f"{BENCH}_alphazero_time_to_perfect",
                    az["seconds_to_perfect"],
                    None,
                    "s",
                    case="self-play training until no loss over every opponent line, X and O",
                    peer_skipped="no peer trains AlphaZero on tic-tac-toe in this bench",
                    **az,
                ),
                args.results_dir,
            )
        else:
            H.log(f"{BENCH}: AlphaZero did not reach perfect play in {az_rounds} rounds: {az}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
