"""Data and result classes print a summary (`bellmax.core.display`), not every number.

One short-repr check per class family, on instances built directly (no solver runs), and a
check that each listed class keeps `summary_repr` as its `__repr__` (a class decorated again
as a dataclass would get a generated one back).
"""

from __future__ import annotations

import importlib

import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.core.display import summary_repr

#: module -> the classes whose repr is `summary_repr`.
CLASSES = {
    "bellmax.core.mdp": "SparseTransitions TabularMDP",
    "bellmax.core.returns": "Advantages",
    "bellmax.core.semiring": "MDPArrays Backup",
    "bellmax.core.types": "Transition Trajectory",
    "bellmax.pomdp.model": "TabularPOMDP",
    "bellmax.pomdp.belief": "BeliefUpdate AlphaVectors SimulationResult",
    "bellmax.pomdp.bounds": "BoundResult",
    "bellmax.pomdp.exact": "ExactResult",
    "bellmax.pomdp.hsvi": "AnytimeResult",
    "bellmax.pomdp.kalman": "GaussianBelief",
    "bellmax.pomdp.particles": "ParticleBelief FilteredMPCResult",
    "bellmax.pomdp.pointbased": "PointBasedResult",
    "bellmax.pomdp.pomcp": "SearchTree",
    "bellmax.tabular._common": "DPResult ShortestPathResult",
    "bellmax.tabular.episodes": "EpisodeStats PredictionResult ControlResult",
    "bellmax.tabular.mc": "OffPolicyResult",
    "bellmax.control.collocation": "CollocationResult",
    "bellmax.control.ilqr": "ILQRResult",
    "bellmax.control.lqr": "LQRSolution DLQRSolution",
    "bellmax.control.mpc": "MPCState ClosedLoopResult HostClosedLoopResult",
    "bellmax.control.nlp": "NLPResult",
    "bellmax.control.sampling": "SamplingResult SamplingState",
    "bellmax.control.shooting": "ShootingResult",
    "bellmax.models.data": "Transitions",
    "bellmax.models.gps": (
        "LinearGaussianPolicy TrustRegionResult Samples LocalFit GPSResult PriorPool"
    ),
    "bellmax.models.local": "LocalDynamics LocalCost GMM NIWPrior",
    "bellmax.models.loop": "LoopRound LoopResult",
    "bellmax.models.mbrl": "TrialRecord MBRLResult",
    "bellmax.models.mdgps": "MDGPSResult",
    "bellmax.models.neural": "NeuralParams Prediction",
    "bellmax.models.sysid": "FitResult",
    "bellmax.models.through_model": "ThroughModelResult",
    "bellmax.imitation.dataset": "Dataset",
    "bellmax.imitation.loop": "ImitationResult",
    "bellmax.imitation.bc": "BCState",
    "bellmax.bandits.agents": "AgentState",
    "bellmax.bandits.testbed": "TestbedCurves TestbedResult",
    "bellmax.train.driver": "TrainResult",
    "bellmax.deep.distributions": "Categorical DiagGaussian",
    "bellmax.deep.dqn": "TrainState Metrics",
    "bellmax.deep.evaluate": "EvalResult",
    "bellmax.deep.loop": "EpisodeMetrics",
    "bellmax.deep.off_policy": "TrainState",
    "bellmax.deep.policy_gradient": "Metrics",
    "bellmax.deep.ppo": "Metrics",
    "bellmax.deep.replay": "ReplayBuffer Collect",
    "bellmax.deep.rollout": "TrainState Rollout",
    "bellmax.deep.sac": "TanhGaussian Learner Metrics",
    "bellmax.deep.td3": "Learner Metrics",
    "bellmax.envs.gymnasium": "HostRollout",
    "bellmax.envs.render": "RenderedEpisode",
    "bellmax.envs._tabular_tools": "SampledModel",
    "bellmax.envs.vector": "VecState VecStep",
    "bellmax.games.alphazero": "TrainResult",
    "bellmax.games.mcts": "Node Tree SearchResult",
    "bellmax.games.selfplay": "SelfPlayResult",
    "bellmax.games.solver": "Positions Solution",
}


@pytest.mark.parametrize("module", sorted(CLASSES))
def test_classes_use_the_summary_repr(module):
    mod = importlib.import_module(module)
    generated = [n for n in CLASSES[module].split() if getattr(mod, n).__repr__ is not summary_repr]
    assert not generated, f"{module}: {generated} lost `__repr__ = summary_repr`"


def test_tabular_mdp_and_dp_result():
    from bellmax.tabular import DPResult, random_mdp

    mdp = random_mdp(0, 100, 4)
    text = repr(mdp)
    assert len(text) < 300 and "P=f64[100,4,100]" in text and "R=f64[100,4]" in text, text
    result = DPResult(
        values=jnp.zeros(100),
        policy=jnp.zeros(100, jnp.int32),
        iterations=jnp.int32(12),
        residual=jnp.float32(1e-6),
        error_bound=jnp.float32(1e-5),
        status=jnp.int32(0),
        q_values=jnp.zeros((100, 4)),
    )
    text = repr(result)
    assert len(text) < 300 and "q_values=f32[100,4]" in text and "(converged)" in text, text


def test_tabular_pomdp_and_point_based_result():
    from bellmax.pomdp import AlphaVectors, PointBasedResult
    from bellmax.pomdp.problems import tiger

    text = repr(tiger())
    assert len(text) < 300 and "T=f64[3,2,2]" in text and "name='tiger'" in text, text
    vectors = AlphaVectors(alphas=np.zeros((50, 2)), actions=np.zeros(50, np.int32))
    result = PointBasedResult(vectors, 1.5, np.zeros((200, 2)), 10, np.zeros((10, 2)), 0.1)
    text = repr(result)
    assert len(text) < 300 and "AlphaVectors(alphas=f64[50,2], actions=i32[50])" in text, text


def test_control_results():
    from bellmax.control import ClosedLoopResult, ILQRResult

    T, n, m = 200, 4, 1
    result = ILQRResult(
        X=jnp.zeros((T + 1, n)),
        U=jnp.zeros((T, m)),
        cost=jnp.float32(3.0),
        iterations=jnp.int32(40),
        status=jnp.int32(1),
        K=jnp.zeros((T, m, n)),
        k=jnp.zeros((T, m)),
        gradient_norm=jnp.float32(0.1),
        mu=jnp.float32(1e-6),
        cost_history=jnp.zeros(40),
        initial_cost=jnp.float32(9.0),
    )
    text = repr(result)
    assert len(text) < 300 and "K=f32[200,1,4]" in text and "(max_iterations)" in text, text
    loop = ClosedLoopResult(
        *(jnp.zeros((T + 1, n)), jnp.zeros((T, m)), jnp.zeros((T, m))),
        *(jnp.zeros(T) for _ in range(5)),
    )
    text = repr(loop)
    assert len(text) < 300 and "states=f32[201,4]" in text, text


def test_transitions():
    from bellmax.models.data import make_transitions

    data = make_transitions(np.zeros((1000, 4)), np.zeros((1000, 1)), np.zeros((1000, 4)))
    text = repr(data)
    assert len(text) < 150 and "x=f64[1000,4]" in text, text


def test_imitation_result_shows_its_spaces():
    from bellmax.envs import spaces
    from bellmax.imitation.dataset import Dataset
    from bellmax.imitation.loop import ImitationResult, RoundRecord

    n = 10
    data = Dataset(
        np.zeros((n, 4), np.float32), *(np.zeros(n, t) for t in (np.int32, np.int32, np.int8))
    )
    result = ImitationResult(
        params={"w": jnp.zeros((4, 2))},
        dataset=data,
        rounds=(RoundRecord(0, n, 1.0, 0.1, 1.0),),
        seconds=1.0,
        observation_space=spaces.Box(-1.0, 1.0, (4,)),
        action_space=spaces.Discrete(2),
    )
    text = repr(result)
    assert "observation_space=Box(shape=(4,), dtype=float32)" in text, text
    assert "action_space=Discrete(2)" in text and "obs=f32[10,4]" in text, text
