"""Games: tic-tac-toe solved exactly, learned from self-play, and played through one agent contract.

- `solver`: the 5,478 reachable positions as tables, negamax values and optimal moves, exact
  outcome probabilities of any two stochastic policies, the exhaustive worst case of a policy.
- `selfplay`: the notes' naive Monte Carlo experiment, TD(0) on afterstates, Q-learning.
- `tictactoe`: `make_agent(kind, **options)` with `act(board, player) -> int`, `register_agent`,
  `play_game`, `arena`, `lines_of_play`, `exact_outcomes`.

The MCTS and AlphaZero-style agents (`bellmax.games.mcts`, `bellmax.games.alphazero`) load
on first use, through `make_agent("mcts")` and `make_agent("alphazero")`.
"""

# Each module's whole public API (its `__all__`), re-exported as one list kept in one place.
from bellmax.games import selfplay, solver, tictactoe
from bellmax.games.selfplay import *  # noqa: F403
from bellmax.games.solver import *  # noqa: F403
from bellmax.games.tictactoe import *  # noqa: F403

__all__ = []
__all__ += selfplay.__all__
__all__ += solver.__all__
__all__ += tictactoe.__all__

# Submodules load on first use as attributes too (`bellmax.games.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
