"""Multi-armed bandits (Sutton & Barto, chapter 2): agents and the 10-armed testbed.

    from bellmax.bandits import EpsilonGreedy, UCB, run_testbeds

    greedy, eps, ucb = run_testbeds([EpsilonGreedy(epsilon=0.0), EpsilonGreedy(), UCB(c=2.0)])
    eps.late_mean_reward, eps.late_optimal_action_rate   # about 1.37 and 0.80 (Figure 2.2)

Agents are pure functions `init / act / update` over an `AgentState` pytree, picked by the
type of their config; `run_testbed(s)` runs them on `GaussianBandit-v0` for many runs in one
jitted call. See `bellmax.bandits.agents` and `bellmax.bandits.testbed`.
"""

# Each module's whole public API (its `__all__`), re-exported as one list kept in one place.
from bellmax.bandits import agents, testbed
from bellmax.bandits.agents import *  # noqa: F403
from bellmax.bandits.testbed import *  # noqa: F403

__all__ = []
__all__ += agents.__all__
__all__ += testbed.__all__

# Submodules load on first use as attributes too (`bellmax.bandits.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
