"""`bellmax play tictactoe` and `bellmax tictactoe arena`: play an agent, or pit two.

    bellmax play tictactoe --agent perfect --first     # you are X and move first
    bellmax play tictactoe --agent td                  # the agent is X
    bellmax tictactoe arena --x td --o perfect --games 200 --json
    bellmax tictactoe arena --x mcts:num_simulations=200 --o random --games 50

An agent is KIND or KIND:OPTION=VALUE[,OPTION=VALUE] (e.g. `td:episodes=20000`); the kinds
are `bellmax.games.agent_kinds()`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from tyro.conf import Positional

from bellmax.core.checks import MAX_SEED, check_int
from bellmax.core.display import plural

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = [
    "ArenaArgs",
    "PlayArgs",
    "parse_agent",
    "play_terminal",
    "render_board",
    "run_arena",
    "run_play",
    "tour_section",
]


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_agent(spec: str) -> tuple[str, dict[str, Any]]:
    """`"td:episodes=20000,seed=3"` -> `("td", {"episodes": 20000, "seed": 3})`."""
    kind, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            hint = "e.g. td:episodes=20000"
            if kind == "checkpoint":  # the form `imitate --expert checkpoint:PATH` takes
                hint = f"a saved agent is KIND:checkpoint=PATH, e.g. td:checkpoint={rest}"
            raise ValueError(f"agent option {item!r} in {spec!r} is not KEY=VALUE; {hint}.")
        options[key.replace("-", "_")] = _value(value)
    return kind, options


#: Largest --games of the arena (its boards are held in memory together).
MAX_GAMES = 1_000_000


def _make(spec: str, seed: int) -> Any:
    from bellmax.games import make_agent

    kind, options = parse_agent(spec)
    if "seed" in options:
        check_int(options["seed"], f"the seed of agent {spec!r}", low=0, high=MAX_SEED)
    options.setdefault("seed", seed)
    return make_agent(kind, **options)


_SYMBOL = {1: "X", -1: "O", 0: " "}


def render_board(cells: list[int], *, numbers: bool = True) -> str:
    """The board as text; empty cells show their number 1-9 when `numbers`."""
    rows = []
    for r in range(3):
        row = []
        for c in range(3):
            i = 3 * r + c
            row.append(_SYMBOL[cells[i]] if cells[i] or not numbers else str(i + 1))
        rows.append(" " + " | ".join(row))
    return "\n---+---+---\n".join(rows)


def _winner(cells: list[int]) -> int:
    lines = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
    for a, b, c in lines:
        if cells[a] and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return 0


def play_terminal(
    agent: Any,
    *,
    human_first: bool,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = print,
    seed: int = 0,
) -> int:
    """One game between a person (reading moves with `read`) and `agent`.

    Moves are the numbers 1-9 shown on the board. Anything else (not a number, out of
    range, an occupied cell) is answered with a message and asked again.

    Returns:
      The winner: 1 (X), -1 (O) or 0 (draw).

    Raises:
      EOFError: the input ended before the game did.
    """
    rng = np.random.default_rng(seed)
    cells = [0] * 9
    human = 1 if human_first else -1
    player = 1
    write(f"You are {_SYMBOL[human]}; the agent ({agent.kind}) is {_SYMBOL[-human]}.")
    while True:
        if player == human:
            write(render_board(cells))
            while True:
                text = read(f"Your move ({_SYMBOL[human]}), 1-9: ").strip()
                if text not in tuple("123456789"):  # ('²'.isdigit() holds, int('²') fails)
                    write(f"{text!r} is not a cell: type a number from 1 to 9.")
                    continue
                move = int(text) - 1
                if cells[move]:
                    write(f"Cell {move + 1} is taken by {_SYMBOL[cells[move]]}; pick an empty one.")
                    continue
                break
        else:
            move = int(agent.act(list(cells), player, rng=rng))
            write(f"The agent plays {move + 1}.")
        cells[move] = player
        w = _winner(cells)
        if w or all(cells):
            write(render_board(cells, numbers=False))
            if w == human:
                write("You win!")
            elif w:
                write("The agent wins.")
            else:
                write("Draw.")
            return w
        player = -player


@dataclasses.dataclass(frozen=True)
class PlayArgs:
    """Play tic-tac-toe against an agent in the terminal (moves are the numbers 1-9)."""

    game: Positional[Literal["tictactoe"]]
    """The game (only tictactoe)."""
    agent: str = "perfect"
    """Opponent: KIND or KIND:OPTION=VALUE,... (random, perfect, naive-mc, td, q-learning, ...)."""
    first: bool = False
    """You play X and move first (otherwise the agent does)."""
    seed: int = 0
    """Seed of the agent's training and tie-breaking."""


def run_play(args: PlayArgs) -> int:
    """`bellmax play tictactoe`."""
    check_int(args.seed, "--seed", low=0, high=MAX_SEED)
    agent = _make(args.agent, args.seed)
    try:
        play_terminal(agent, human_first=args.first, seed=args.seed)
    except EOFError:
        print("\nInput ended; game abandoned.", file=sys.stderr)
        return 1
    return 0


@dataclasses.dataclass(frozen=True)
class ArenaArgs:
    """Tic-tac-toe: pit two agents against each other and count wins, draws and losses."""

    action: Positional[Literal["arena"]]
    """What to do (arena)."""
    x: str = "random"
    """Agent playing X (first): KIND or KIND:OPTION=VALUE,..."""
    o: str = "random"
    """Agent playing O."""
    games: int = 100
    """Games to play."""
    seed: int = 0
    """Seed of the games and of X's agent; O's agent gets SEED+1 (two trained agents of one
    kind then differ), which is X's at --seed SEED+1: for independent replicates use every
    other seed (0, 2, 4, ...). KIND:seed=N pins an agent's own."""
    json: bool = False
    """Print one JSON object."""


def run_arena(args: ArenaArgs) -> int:
    """`bellmax tictactoe arena`."""
    from bellmax.games import arena

    check_int(args.games, "--games", low=1, high=MAX_GAMES)
    check_int(args.seed, "--seed", low=0, high=MAX_SEED - 1)  # O's agent is seeded seed + 1
    x, o = _make(args.x, args.seed), _make(args.o, args.seed + 1)
    t = time.perf_counter()
    res = arena(x, o, args.games, seed=args.seed)
    seconds = time.perf_counter() - t
    out = {
        "x": args.x,
        "o": args.o,
        "games": res["games"],
        "x_wins": res["wins"],
        "draws": res["draws"],
        "o_wins": res["losses"],
        "seconds": round(seconds, 4),
        "games_per_second": round(res["games"] / max(seconds, 1e-9), 2),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{args.x} (X) vs {args.o} (O), {plural(out['games'], 'game')}: X wins "
            f"{out['x_wins']}, "
            f"draws {out['draws']}, O wins {out['o_wins']} ({out['games_per_second']} games/s)"
        )
    return 0


def tour_section(ctx: Any) -> None:
    """The tour's tic-tac-toe section: every agent against random and perfect players."""
    from bellmax.games import agent_kinds, arena, exact_outcomes, make_agent
    from bellmax.games.tictactoe import TableAgent

    ctx.report.section(
        "Tic-tac-toe",
        "The notes' first experiment and what came after: the exact solution (negamax over the "
        "5,478 reachable positions; the game is a draw), the notes' naive Monte Carlo "
        "learner (random games, keep the winners' moves: it beats random play but loses to "
        "perfect play, it 'worked kind of'), TD(0) and Q-learning self-play, and search. "
        "Rates are win/draw/loss percentages of the row agent; table agents' rates are exact "
        "probabilities, searching agents' are sampled games.",
    )
    rnd, perfect = make_agent("random", seed=ctx.seed), make_agent("perfect", seed=ctx.seed)
    rows = []
    games = ctx.size(40, 10)
    for kind in agent_kinds():
        if kind == "alphazero" and ctx.quick:
            continue
        agent = make_agent(kind, seed=ctx.seed)
        row = [kind]
        for opp in (rnd, perfect):
            for as_x in (True, False):
                if isinstance(agent, TableAgent):
                    p = exact_outcomes(agent, opp) if as_x else exact_outcomes(opp, agent)
                    win, draw = (p["x_wins"], p["draw"]) if as_x else (p["o_wins"], p["draw"])
                    loss = 1.0 - win - draw
                else:
                    r = (
                        arena(agent, opp, games, seed=ctx.seed)
                        if as_x
                        else arena(opp, agent, games, seed=ctx.seed)
                    )
                    w, d = (r["wins"], r["draws"]) if as_x else (r["losses"], r["draws"])
                    win, draw, loss = w / games, d / games, (games - w - d) / games
                row.append(f"{100 * win:.1f}/{100 * draw:.1f}/{100 * loss:.1f}")
                ctx.report.summary[
                    f"tictactoe/{kind}/{'x' if as_x else 'o'}_vs_{'random' if opp is rnd else 'perfect'}_loss"
                ] = round(loss, 6)
        rows.append(row)
    ctx.report.table(["agent", "X vs random", "O vs random", "X vs perfect", "O vs perfect"], rows)
