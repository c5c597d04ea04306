"""The maximisation-bias MDP of Sutton & Barto (Example 6.7, Figure 6.5), sampled and exact.

Episodes start in A, which has two actions: left moves to B with reward 0, right ends the
episode with reward 0. Every action of B ends the episode with a reward drawn from
`N(mean_reward, reward_std**2)` (N(-0.1, 1) in the book), so left is worse on average, yet a
learner that maximises over noisy estimates of B's actions overrates it.

State indices: 0 A, 1 B, 2 the terminal. Observation: the state index (int32,
`Discrete(3)`). Actions: `num_b_actions` (10 in the book); in A, action 0 is left and any
other action is right; only actions 0 and 1 are real there, and `valid_actions()` gives the
`[S, A]` mask that learners use so that A offers two actions, as in the book.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int
from bellmax.core.mdp import TabularMDP
from bellmax.envs import spaces
from bellmax.envs._checks import bounded, discount, episode_limit, finite, nonnegative
from bellmax.envs.environment import EnvParams, EnvState
from bellmax.envs.tabular import TabularEnvironment

__all__ = [
    "LEFT",
    "RIGHT",
    "STATE_A",
    "STATE_B",
    "TERMINAL",
    "MaximizationBias",
    "MaximizationBiasParams",
    "MaximizationBiasState",
]

#: State indices.
STATE_A, STATE_B, TERMINAL = 0, 1, 2
#: Actions in A.
LEFT, RIGHT = 0, 1


@struct.dataclass
class MaximizationBiasState(EnvState):
    """The state index (0 A, 1 B, 2 terminal) and the step count."""

    pos: jax.Array
    time: jax.Array


@struct.dataclass
class MaximizationBiasParams(EnvParams):
    """The law of B's rewards, the discount and the episode limit."""

    mean_reward: float = bounded(-0.1, finite("the mean reward in B; the book uses -0.1"))
    """Mean of the reward of every action in B."""
    reward_std: float = bounded(1.0, nonnegative("a standard deviation; the book uses 1"))
    """Standard deviation of that reward."""
    gamma: float = bounded(1.0, discount())
    """Discount of the exact MDP."""
    max_steps_in_episode: int = episode_limit(100)
    """Steps until truncation (a guard: every episode ends within two steps)."""


class MaximizationBias(TabularEnvironment):
    """Example 6.7: A (left to B, right to the end) and B (many noisy actions).

    Outside `jit` an action that is not one integer in `0 .. num_b_actions - 1` raises;
    inside `jit` it is not checked: in A every action other than 0 goes right, in B every
    action ends the episode with the same reward law.

    Args:
      num_b_actions: the number of actions in B (10 in the book); at least 2.
    """

    state_type = MaximizationBiasState
    params_type = MaximizationBiasParams
    env_id = "MaximizationBias-v0"

    def __init__(self, num_b_actions: int = 10):
        # >= 2: A has two actions, and every state has the same number of actions.
        self.num_b_actions = check_int(
            num_b_actions, "num_b_actions", owner="MaximizationBias", low=2
        )

    @property
    def num_states(self) -> int:
        """3: A, B and the terminal."""
        return 3

    def valid_actions(self, params: MaximizationBiasParams | None = None) -> np.ndarray:
        """Bool `[3, num_b_actions]`: A offers left and right, B all its actions.

        At the terminal every action is a no-op and all are marked valid.
        """
        mask = np.ones((3, self.num_b_actions), dtype=bool)
        mask[STATE_A, 2:] = False
        return mask

    # ------------------------------------------------------------------ sampled env
    def reset_env(
        self, key: jax.Array, params: MaximizationBiasParams
    ) -> tuple[jax.Array, MaximizationBiasState]:
        state = self.state_from_index(jnp.asarray(STATE_A, jnp.int32))
        return state.pos, state

    def step_env(self, key, state: MaximizationBiasState, action, params: MaximizationBiasParams):
        s = state.pos
        nxt = jnp.where(
            s == STATE_A, jnp.where(jnp.asarray(action) == LEFT, STATE_B, TERMINAL), TERMINAL
        ).astype(jnp.int32)
        noise = params.mean_reward + params.reward_std * jax.random.normal(key, (), jnp.float32)
        reward = jnp.where(s == STATE_B, noise, 0.0).astype(jnp.float32)
        state = MaximizationBiasState(pos=nxt, time=state.time + 1)
        return state.pos, state, reward, nxt == TERMINAL, {}

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_b_actions)

    def observation_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(3)

    # ------------------------------------------------------------------ tabular view
    def tabular_mdp(self, params: MaximizationBiasParams | None = None) -> TabularMDP:
        """The exact model with expected rewards (host-side): `R[B, a] = mean_reward`.

        In A, action 0 leads to B and every other action to the terminal; the terminal
        absorbs with reward 0; `initial` is A.
        """
        params = self.host_params(params, "tabular_mdp")
        A = self.num_b_actions
        P = np.zeros((3, A, 3))
        P[STATE_A, :, TERMINAL] = 1.0
        P[STATE_A, LEFT] = [0.0, 1.0, 0.0]
        P[STATE_B, :, TERMINAL] = 1.0
        P[TERMINAL, :, TERMINAL] = 1.0
        R = np.zeros((3, A))
        R[STATE_B] = float(params.mean_reward)
        return TabularMDP(
            P=P,
            R=R,
            gamma=float(params.gamma),
            terminal=np.array([False, False, True]),
            initial=np.array([1.0, 0.0, 0.0]),
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"MaximizationBias(num_b_actions={self.num_b_actions})"
