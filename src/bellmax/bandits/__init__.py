"""Multi-armed bandits (Sutton & Barto, chapter 2): agents and the 10-armed testbed.

    from bellmax.bandits import EpsilonGreedy, UCB, run_testbeds

    greedy, eps, ucb = run_testbeds([EpsilonGreedy(epsilon=0.0), EpsilonGreedy(), UCB(c=2.0)])
    eps.late_mean_reward, eps.late_optimal_action_rate   # about 1.37 and 0.80 (Figure 2.2)

Agents are pure functions `init / act / update` over an `AgentState` pytree, picked by the
type of their config; `run_testbed(s)` runs them on `GaussianBandit-v0` for many runs in one
jitted call. See `bellmax.bandits.agents` and `bellmax.bandits.testbed`.
"""

from bellmax.bandits.agents import (
    AGENTS,
    UCB,
    AgentConfig,
    AgentState,
    EpsilonGreedy,
    GradientBandit,
    ThompsonSampling,
    act,
    agent_label,
    argmax_random_ties,
    check_config,
    init,
    make_agent,
    parse_agent_spec,
    traced_config,
    update,
)
from bellmax.bandits.testbed import (
    TestbedCurves,
    TestbedResult,
    make_testbed,
    run_testbed,
    run_testbeds,
    testbed_key,
)

__all__ = [
    "AGENTS",
    "UCB",
    "AgentConfig",
    "AgentState",
    "EpsilonGreedy",
    "GradientBandit",
    "TestbedCurves",
    "TestbedResult",
    "ThompsonSampling",
    "act",
    "agent_label",
    "argmax_random_ties",
    "check_config",
    "init",
    "make_agent",
    "make_testbed",
    "parse_agent_spec",
    "run_testbed",
    "run_testbeds",
    "testbed_key",
    "traced_config",
    "update",
]
