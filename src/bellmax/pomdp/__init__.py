"""POMDPs: the .pomdp format, exact beliefs, bounds, exact, point-based and Monte Carlo solvers.

- `model`: `TabularPOMDP(T[a, s, s'], O[a, s', o], R[s, a], gamma, b0)`, validated like
  `bellmax.core.TabularMDP`.
- `fileformat`: Cassandra's `.pomdp` text format, read (`load_pomdp`, `parse_pomdp`) and
  written (`save_pomdp`, `format_pomdp`).
- `belief`: the exact belief update (jitted, batched), `AlphaVectors` policies and
  `simulate` (the belief MDP, vmapped over episodes).
- `bounds`: QMDP and the fast informed bound (upper), the blind policy (lower).
- `exact`: exact finite-horizon value iteration with incremental pruning (LP via HiGHS).
- `pointbased`: the point-based backup, PBVI and Perseus (lower bounds).
- `hsvi`: an HSVI2-style anytime solver with a lower (alpha vectors) and an upper (sawtooth)
  bound at b0.
- `policyio`: alpha-vector policies as `.npz` and as pomdp-solve's `.alpha` files.
- `pomcp`: POMCP (UCT over histories), a jitted planner `(belief, key) -> action`, and its
  own agent on a particle belief (`simulate_pomcp`).
- `problems`: the tiger, RockSample and Tag generated from their published definitions.
- `particles`: a jitted bootstrap particle filter (systematic resampling on low ESS) and
  certainty-equivalent MPC on its estimate (`filtered_mpc`, on the particle filter or on
  the extended Kalman filter of `kalman`, the baseline).
- `kalman`: the extended Kalman filter (`extended_kalman_step`, linearised by `jax.jacfwd`).
"""

from bellmax.pomdp.belief import (
    AlphaVectors,
    BeliefUpdate,
    SimulationResult,
    belief_update,
    belief_update_batch,
    observation_probs,
    simulate,
)
from bellmax.pomdp.bounds import BoundResult, blind_lower_bound, fast_informed_bound, qmdp
from bellmax.pomdp.exact import ExactResult, exact_value_iteration, prune
from bellmax.pomdp.fileformat import (
    PomdpFormatError,
    format_pomdp,
    load_pomdp,
    parse_pomdp,
    save_pomdp,
)
from bellmax.pomdp.hsvi import AnytimeResult, hsvi, sawtooth_upper_bound
from bellmax.pomdp.kalman import GaussianBelief, extended_kalman_step
from bellmax.pomdp.model import TabularPOMDP, expected_rewards
from bellmax.pomdp.particles import (
    FilteredMPCResult,
    ParticleBelief,
    effective_sample_size,
    filtered_mpc,
    gaussian_log_likelihood,
    particle_filter_step,
    particle_mean,
    systematic_resample,
)
from bellmax.pomdp.pointbased import (
    PointBasedResult,
    device_pomdp,
    pbvi,
    perseus,
    point_backup,
    random_beliefs,
)
from bellmax.pomdp.policyio import load_alpha, load_policy, save_alpha, save_policy
from bellmax.pomdp.pomcp import (
    POMCPConfig,
    SearchTree,
    make_pomcp,
    pomcp_search,
    simulate_pomcp,
)
from bellmax.pomdp.problems import TAG_CELLS, rock_sample, rock_sample_4_4, tag, tiger

__all__ = [
    "TAG_CELLS",
    "AlphaVectors",
    "AnytimeResult",
    "BeliefUpdate",
    "BoundResult",
    "ExactResult",
    "FilteredMPCResult",
    "GaussianBelief",
    "POMCPConfig",
    "ParticleBelief",
    "PointBasedResult",
    "PomdpFormatError",
    "SearchTree",
    "SimulationResult",
    "TabularPOMDP",
    "belief_update",
    "belief_update_batch",
    "blind_lower_bound",
    "device_pomdp",
    "effective_sample_size",
    "exact_value_iteration",
    "expected_rewards",
    "extended_kalman_step",
    "fast_informed_bound",
    "filtered_mpc",
    "format_pomdp",
    "gaussian_log_likelihood",
    "hsvi",
    "load_alpha",
    "load_policy",
    "load_pomdp",
    "make_pomcp",
    "observation_probs",
    "parse_pomdp",
    "particle_filter_step",
    "particle_mean",
    "pbvi",
    "perseus",
    "point_backup",
    "pomcp_search",
    "prune",
    "qmdp",
    "random_beliefs",
    "rock_sample",
    "rock_sample_4_4",
    "save_alpha",
    "save_policy",
    "save_pomdp",
    "sawtooth_upper_bound",
    "simulate",
    "simulate_pomcp",
    "systematic_resample",
    "tag",
    "tiger",
]

# Submodules load on first use as attributes too (`bellmax.pomdp.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
