"""Tabular reinforcement learning: exact dynamic programming and learning from samples.

- `dp`: exact dynamic programming, all through one Bellman backup (`bellmax.core.semiring`),
  gathered from `evaluation` (direct, Jacobi, Gauss-Seidel, Krylov), `control` (value
  iteration with an error bound, policy iteration, modified policy iteration, soft value
  iteration) and `shortest_paths` (min-plus Bellman-Ford); `garnet` makes random MDPs.
- `mc`: Monte Carlo prediction and control (exploring starts, epsilon-soft, importance sampling).
- `td`: TD(0), SARSA, Expected SARSA, Q-learning, Double Q-learning and soft (maximum-entropy)
  Q-learning (one driver, `td_control`).
- `io`: the `.npz` MDP file format of `bellmax solve`.
"""

from bellmax.tabular.dp import (
    DPResult,
    ShortestPathResult,
    Status,
    evaluate_policy,
    greedy_policy,
    modified_policy_iteration,
    policy_iteration,
    random_mdp,
    shortest_paths,
    soft_value_iteration,
    value_iteration,
)
from bellmax.tabular.episodes import ControlResult, EpisodeStats, PredictionResult
from bellmax.tabular.io import load_mdp, save_mdp
from bellmax.tabular.mc import (
    MCExploringStartsConfig,
    MCPredictionConfig,
    OffPolicyMCConfig,
    OffPolicyResult,
    OnPolicyMCConfig,
    mc_exploring_starts,
    mc_prediction,
    off_policy_mc_prediction,
    on_policy_mc_control,
)
from bellmax.tabular.td import (
    DoubleQLearningConfig,
    ExpectedSarsaConfig,
    QLearningConfig,
    SarsaConfig,
    SoftQLearningConfig,
    TD0Config,
    double_q_learning,
    expected_sarsa,
    q_learning,
    sarsa,
    soft_q_learning,
    td0_prediction,
    td_control,
)

__all__ = [
    "ControlResult",
    "DPResult",
    "DoubleQLearningConfig",
    "EpisodeStats",
    "ExpectedSarsaConfig",
    "MCExploringStartsConfig",
    "MCPredictionConfig",
    "OffPolicyMCConfig",
    "OffPolicyResult",
    "OnPolicyMCConfig",
    "PredictionResult",
    "QLearningConfig",
    "SarsaConfig",
    "ShortestPathResult",
    "SoftQLearningConfig",
    "Status",
    "TD0Config",
    "double_q_learning",
    "evaluate_policy",
    "expected_sarsa",
    "greedy_policy",
    "load_mdp",
    "mc_exploring_starts",
    "mc_prediction",
    "modified_policy_iteration",
    "off_policy_mc_prediction",
    "on_policy_mc_control",
    "policy_iteration",
    "q_learning",
    "random_mdp",
    "sarsa",
    "save_mdp",
    "shortest_paths",
    "soft_q_learning",
    "soft_value_iteration",
    "td0_prediction",
    "td_control",
    "value_iteration",
]

# Submodules load on first use as attributes too (`bellmax.tabular.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
