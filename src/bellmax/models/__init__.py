"""System identification: parametric models of physical systems fitted to transitions.

- `parametric`: the cart-pole and pendulum models (`get_model`, `ParametricModel`).
- `data`: transitions `(x, u, x')` from any bellmax or Gymnasium environment.
- `sysid`: Levenberg-Marquardt least squares with standard errors and an identifiability
  report (`least_squares`, `identify`, `FitResult`).
- `loop`: identify, control with MPC on the real system, recollect, refit
  (`identify_and_control`).
- `neural`: MLP, probabilistic-ensemble and hybrid (physics plus neural residual) dynamics
  (`make_neural_model`, `fit_neural`, `prediction_report`, `open_loop_error`).
- `mbrl`: the model-based loop: random trials, fit, MPC through the model on the real
  environment, aggregate, refit (`run_mbrl`); `distil` the planner into a policy.
- `local`: time-varying linear-Gaussian dynamics fitted per time step with a Gaussian-mixture
  prior (`fit_local_dynamics`, `fit_gmm`, `gmm_prior`).
- `gps`: LQR-FLM, the LQR under a KL trust region on the trajectory distribution
  (`trust_region_lqr`, `run_lqr_flm`).
- `mdgps`: guided policy search, a neural policy supervised by local controllers whose trust
  region is centred on it (`run_mdgps`).
- `through_model`: a neural policy trained by backpropagating through a learned model
  (`run_through_model`, `NeuralPolicy`).
"""

from bellmax.models.data import (
    Transitions,
    collect_transitions,
    concatenate,
    make_transitions,
    split_transitions,
)
from bellmax.models.gps import (
    DEFAULT_STARTS,
    GPSConfig,
    GPSResult,
    LinearGaussianPolicy,
    LocalFit,
    LocalSystem,
    Samples,
    TrustRegionConfig,
    TrustRegionResult,
    constant_policy,
    env_system,
    estimate_cost,
    expected_cost,
    fit_local,
    gymnasium_system,
    ilqr_reference,
    kl_lqr,
    policy_kl,
    run_lqr_flm,
    state_action_marginals,
    step_multiplier,
    trust_region_lqr,
)
from bellmax.models.local import (
    GMM,
    LocalCost,
    LocalDynamics,
    NIWPrior,
    expand_cost,
    fit_gmm,
    fit_local_dynamics,
    fit_quadratic_cost,
    gmm_prior,
    joint_points,
    psd_project,
)
from bellmax.models.loop import LoopConfig, LoopResult, LoopRound, identify_and_control
from bellmax.models.mbrl import (
    EnsembleObjective,
    MBRLConfig,
    MBRLResult,
    TrialRecord,
    distil,
    known_reward,
    run_mbrl,
)
from bellmax.models.mdgps import (
    MDGPSConfig,
    MDGPSResult,
    linearise_policy,
    run_mdgps,
    supervised_step,
)
from bellmax.models.neural import (
    FitReport,
    NeuralConfig,
    NeuralModel,
    NeuralParams,
    Prediction,
    make_neural_model,
    open_loop_error,
    prediction_report,
)
from bellmax.models.neural import fit as fit_neural
from bellmax.models.parametric import (
    CARTPOLE,
    PENDULUM,
    ParametricModel,
    get_model,
    model_for_env,
    model_names,
)
from bellmax.models.sysid import (
    FitResult,
    SysIdConfig,
    identify,
    least_squares,
    prediction_error,
)
from bellmax.models.through_model import (
    NeuralPolicy,
    ThroughModelConfig,
    ThroughModelResult,
    evaluate_policy,
    imagined_cost,
    make_neural_policy,
    run_through_model,
)

__all__ = [
    "CARTPOLE",
    "DEFAULT_STARTS",
    "GMM",
    "PENDULUM",
    "EnsembleObjective",
    "FitReport",
    "FitResult",
    "GPSConfig",
    "GPSResult",
    "LinearGaussianPolicy",
    "LocalCost",
    "LocalDynamics",
    "LocalFit",
    "LocalSystem",
    "LoopConfig",
    "LoopResult",
    "LoopRound",
    "MBRLConfig",
    "MBRLResult",
    "MDGPSConfig",
    "MDGPSResult",
    "NIWPrior",
    "NeuralConfig",
    "NeuralModel",
    "NeuralParams",
    "NeuralPolicy",
    "ParametricModel",
    "Prediction",
    "Samples",
    "SysIdConfig",
    "ThroughModelConfig",
    "ThroughModelResult",
    "Transitions",
    "TrialRecord",
    "TrustRegionConfig",
    "TrustRegionResult",
    "collect_transitions",
    "concatenate",
    "constant_policy",
    "distil",
    "env_system",
    "estimate_cost",
    "evaluate_policy",
    "expand_cost",
    "expected_cost",
    "fit_gmm",
    "fit_local",
    "fit_local_dynamics",
    "fit_neural",
    "fit_quadratic_cost",
    "get_model",
    "gmm_prior",
    "gymnasium_system",
    "identify",
    "identify_and_control",
    "ilqr_reference",
    "imagined_cost",
    "joint_points",
    "kl_lqr",
    "known_reward",
    "least_squares",
    "linearise_policy",
    "make_neural_model",
    "make_neural_policy",
    "make_transitions",
    "model_for_env",
    "model_names",
    "open_loop_error",
    "policy_kl",
    "prediction_error",
    "prediction_report",
    "psd_project",
    "run_lqr_flm",
    "run_mbrl",
    "run_mdgps",
    "run_through_model",
    "split_transitions",
    "state_action_marginals",
    "step_multiplier",
    "supervised_step",
    "trust_region_lqr",
]

# Submodules load on first use as attributes too (`bellmax.models.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
