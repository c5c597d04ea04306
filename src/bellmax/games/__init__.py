"""Games: tic-tac-toe solved exactly, learned from self-play, and played through one agent contract.

- `solver`: the 5,478 reachable positions as tables, negamax values and optimal moves, exact
  outcome probabilities of any two stochastic policies, the exhaustive worst case of a policy.
- `selfplay`: the notes' naive Monte Carlo experiment, TD(0) on afterstates, Q-learning.
- `tictactoe`: `make_agent(kind, **options)` with `act(board, player) -> int`, `register_agent`,
  `play_game`, `arena`, `lines_of_play`, `exact_outcomes`.
"""

from bellmax.games.selfplay import (
    NaiveMCConfig,
    QLearningConfig,
    SelfPlayResult,
    TDConfig,
    train_naive_mc,
    train_q_learning,
    train_td,
)
from bellmax.games.solver import (
    Positions,
    Solution,
    outcome_probabilities,
    positions,
    solve,
    worst_case,
)
from bellmax.games.tictactoe import (
    AGENT_FACTORIES,
    Agent,
    TableAgent,
    agent_kinds,
    arena,
    check_position,
    check_positions,
    exact_outcomes,
    lines_of_play,
    load_agent,
    make_agent,
    play_game,
    register_agent,
)

__all__ = [
    "AGENT_FACTORIES",
    "Agent",
    "NaiveMCConfig",
    "Positions",
    "QLearningConfig",
    "SelfPlayResult",
    "Solution",
    "TDConfig",
    "TableAgent",
    "agent_kinds",
    "arena",
    "check_position",
    "check_positions",
    "exact_outcomes",
    "lines_of_play",
    "load_agent",
    "make_agent",
    "outcome_probabilities",
    "play_game",
    "positions",
    "register_agent",
    "solve",
    "train_naive_mc",
    "train_q_learning",
    "train_td",
    "worst_case",
]
