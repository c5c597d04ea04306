"""Learning tic-tac-toe from play: the notes' naive Monte Carlo, TD(0) and Q-learning self-play.

All three learn a table over the 5,478 reachable positions (`bellmax.games.solver.positions`)
and return it as `scores [N, 9]`: a higher score is a better move for the player to move, and
an agent plays the best-scoring legal move (ties broken at random). They are host-side
(numpy and Python loops): a game is at most 9 moves and the tables are tiny, so the default
budgets train in about a second each on one core (50,000 self-play games for TD and
Q-learning, 20,000 random games for naive Monte Carlo).

**Naive Monte Carlo** (`train_naive_mc`), the notes' first experiment, faithfully: "We made a
random player, and watched whether it won or lost. Then we'd pick only moves that ultimately
won and tried to train a neural network to map board state to winning move." Random players
play each other; every move of the eventual winner is kept; the fitted map from board to
move is the most frequent kept move of each board (the maximum-likelihood softmax classifier
of a table, i.e. a network with one free logit per board and move). Why it "worked kind of":

- It learns which moves *correlate with winning against random play*, not which moves are
  optimal. Against a random opponent that is a decent signal (taking the centre, completing
  a line the opponent will not block), so it beats a random player clearly.
- It never sees a refutation. A move that wins against most random replies but loses to
  the one correct reply still has many winning games behind it; the data cannot tell the
  two apart, because the losing games are thrown away rather than counted against the move.
- Credit is not assigned: every move of a winning game counts, the blunders the random
  loser failed to punish included. Boards the random players rarely reach (those a strong
  opponent steers towards) have few or no kept moves, and there the agent plays at random.
- So against a perfect player it loses a good share of its games (see the strength table
  in the report), where the exact solution never loses. It is Monte Carlo policy learning
  without the improvement step: one evaluation of the random policy, never iterated.

**TD(0) on afterstates** (`train_td`), Sutton and Barto section 1.5: a table of values of the
positions just after a move ("afterstates"), learned by epsilon-greedy self-play with
`V(s) <- V(s) + alpha (target - V(s))` after each greedy move, exploratory moves not backed up.
One table plays both sides: values are from the point of view of the player who just moved
(a win 1, a draw 0), so the target of a player's afterstate is minus the value of the
opponent's greedy reply afterstate (negamax). The book keeps one table per player and backs up
across two plies; with both players learning, the one-table negamax form is the same fixed
point (the minimax values) and learns from every ply.

**Q-learning self-play** (`train_q_learning`), Sutton and Barto section 6.5 with negamax
targets (Littman 1994, minimax-Q for alternating games): `Q(s, a)` is the value of move `a`
for the player to move in `s`; its target is the reward if the move ends the game (1 a win, 0
a draw) and otherwise minus the opponent's best value in the next position,
`-max_a' Q(s', a')`. Off-policy: every move, exploratory or not, is backed up. Its fixed point
is the solver's `move_value`.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from bellmax.core.checks import check_int, check_number, check_probability
from bellmax.core.display import summary_repr
from bellmax.games.solver import positions

__all__ = [
    "NaiveMCConfig",
    "QLearningConfig",
    "SelfPlayResult",
    "TDConfig",
    "train_naive_mc",
    "train_q_learning",
    "train_td",
]


@dataclasses.dataclass(frozen=True)
class NaiveMCConfig:
    """The notes' experiment: random self-play, keep the winners' moves, fit board -> move."""

    games: int = 20_000
    """Random-vs-random games to play (the training budget)."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "games", check_int(self.games, "games", owner="NaiveMCConfig", low=1)
        )


@dataclasses.dataclass(frozen=True)
class _EpsilonGreedySelfPlay:
    """The knobs TD(0) and Q-learning self-play share, checked once."""

    episodes: int = 50_000
    """Self-play games (the training budget)."""
    alpha: float = 0.5
    """Step size in (0, 1]."""
    epsilon: float = 0.1
    """Probability of an exploratory (uniformly random) move, in [0, 1]."""

    def __post_init__(self) -> None:
        owner = type(self).__name__
        checked = {
            "episodes": check_int(self.episodes, "episodes", owner=owner, low=1),
            "alpha": check_number(self.alpha, "alpha", owner=owner, low=0, low_open=True, high=1),
            "epsilon": check_probability(self.epsilon, "epsilon", owner=owner),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)


@dataclasses.dataclass(frozen=True)
class TDConfig(_EpsilonGreedySelfPlay):
    """TD(0) on afterstate values with epsilon-greedy self-play (Sutton and Barto 1.5)."""


@dataclasses.dataclass(frozen=True)
class QLearningConfig(_EpsilonGreedySelfPlay):
    """Q-learning self-play with negamax targets (Sutton and Barto 6.5, Littman 1994)."""

    epsilon: float = 0.3
    """Probability of an exploratory (uniformly random) move, in [0, 1]."""


@dataclasses.dataclass(frozen=True)
class SelfPlayResult:
    """A learned move-score table and what training saw."""

    __repr__ = summary_repr

    scores: np.ndarray
    """float64 [N, 9]: move scores for the player to move (rows like `positions()`); NaN on
    illegal moves. The agent plays the highest legal score, ties at random."""
    games: int
    """Games played in training."""
    x_wins: int
    """Training games won by X."""
    o_wins: int
    """Training games won by O."""
    visited: int
    """Non-terminal positions met at least once in training."""


def _mask_illegal(scores: np.ndarray) -> np.ndarray:
    return np.where(positions().legal, scores, np.nan)


def train_naive_mc(config: NaiveMCConfig = NaiveMCConfig(), *, seed: int = 0) -> SelfPlayResult:
    """The notes' "ghetto Monte Carlo policy learning": count the winners' moves per board.

    All games are played at once (vectorised over games with numpy). See the module docstring
    for why the result beats a random player yet loses to a perfect one.

    Args:
      config: the budget.
      seed: seeds the random players.

    Returns:
      A `SelfPlayResult` whose scores are the counts of each (board, move) in won games.
    """
    pos = positions()
    rng = np.random.default_rng(seed)
    n = config.games
    state = np.full(n, pos.start, np.int64)
    seen_pos = np.zeros((9, n), np.int64)
    seen_move = np.zeros((9, n), np.int64)
    active = np.zeros((9, n), bool)
    for ply in range(9):
        alive = ~pos.terminal[state]
        active[ply] = alive
        noise = np.where(pos.legal[state], rng.random((n, 9)), -1.0)
        move = noise.argmax(-1)
        seen_pos[ply], seen_move[ply] = state, move
        state = np.where(alive, pos.child[state, move], state)
    winner = pos.winner[state].astype(np.int64)  # [n]
    mover = np.where(np.arange(9) % 2 == 0, 1, -1)[:, None]  # X on even plies
    keep = active & (mover == winner[None, :])
    counts = np.zeros((pos.count, 9))
    np.add.at(counts, (seen_pos[keep], seen_move[keep]), 1.0)
    return SelfPlayResult(
        scores=_mask_illegal(counts),
        games=n,
        x_wins=int((winner == 1).sum()),
        o_wins=int((winner == -1).sum()),
        visited=int(np.unique(seen_pos[active]).size),
    )


def _tables() -> tuple[list[list[int]], list[list[int]], list[bool], list[float]]:
    """Per-position Python lists (faster than numpy for one-move-at-a-time loops)."""
    pos = positions()
    moves = [np.flatnonzero(row).tolist() for row in pos.legal]
    kids = [pos.child[s, m].tolist() for s, m in enumerate(moves)]
    terminal = pos.terminal.tolist()
    # the result for the player who just moved into a terminal position: won 1, draw 0
    reward = np.where(pos.winner != 0, 1.0, 0.0).tolist()
    return moves, kids, terminal, reward


def _argmax_random(values: list[float], rng: random.Random) -> int:
    best = max(values)
    ties = [i for i, v in enumerate(values) if v == best]
    return ties[0] if len(ties) == 1 else rng.choice(ties)


def train_td(config: TDConfig = TDConfig(), *, seed: int = 0) -> SelfPlayResult:
    """TD(0) on afterstate values by epsilon-greedy self-play (Sutton and Barto 1.5).

    Args:
      config: the budget and knobs.
      seed: seeds exploration and tie-breaking.

    Returns:
      A `SelfPlayResult` whose scores are the afterstate values of each move.
    """
    pos = positions()
    moves, kids, terminal, reward = _tables()
    rng = random.Random(seed)
    value = [reward[s] if terminal[s] else 0.0 for s in range(pos.count)]
    alpha, eps = config.alpha, config.epsilon
    wins = {1: 0, -1: 0}
    seen = set()
    for _ in range(config.episodes):
        s, prev = pos.start, -1
        while not terminal[s]:
            seen.add(s)
            options = kids[s]
            if rng.random() < eps:
                nxt, greedy = options[rng.randrange(len(options))], False
            else:
                nxt, greedy = options[_argmax_random([value[c] for c in options], rng)], True
            if greedy and prev >= 0:
                value[prev] += alpha * (-value[nxt] - value[prev])
            prev, s = nxt, nxt
        w = int(pos.winner[s])
        if w:
            wins[w] += 1
    v = np.asarray(value)
    scores = v[np.maximum(pos.child, 0)]
    return SelfPlayResult(
        scores=_mask_illegal(scores),
        games=config.episodes,
        x_wins=wins[1],
        o_wins=wins[-1],
        visited=len(seen),
    )


def train_q_learning(
    config: QLearningConfig = QLearningConfig(), *, seed: int = 0
) -> SelfPlayResult:
    """Q-learning self-play with negamax targets (Sutton and Barto 6.5).

    Args:
      config: the budget and knobs.
      seed: seeds exploration and tie-breaking.

    Returns:
      A `SelfPlayResult` whose scores are the learned `Q(s, a)`.
    """
    pos = positions()
    moves, kids, terminal, reward = _tables()
    rng = random.Random(seed)
    q = [[0.0] * len(m) for m in moves]  # q[s][i]: the i-th legal move of s
    alpha, eps = config.alpha, config.epsilon
    wins = {1: 0, -1: 0}
    seen = set()
    for _ in range(config.episodes):
        s = pos.start
        while not terminal[s]:
            seen.add(s)
            qs = q[s]
            if rng.random() < eps:
                i = rng.randrange(len(qs))
            else:
                i = _argmax_random(qs, rng)
            c = kids[s][i]
            target = reward[c] if terminal[c] else -max(q[c])
            qs[i] += alpha * (target - qs[i])
            s = c
        w = int(pos.winner[s])
        if w:
            wins[w] += 1
    scores = np.full((pos.count, 9), np.nan)
    for s, m in enumerate(moves):
        if m:
            scores[s, m] = q[s]
    return SelfPlayResult(
        scores=scores, games=config.episodes, x_wins=wins[1], o_wins=wins[-1], visited=len(seen)
    )
