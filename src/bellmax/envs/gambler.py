"""The gambler's problem (Sutton & Barto, Example 4.3), sampled and exact.

A gambler with capital `s` stakes on coin flips that come up heads with probability `p_h`:
heads wins the stake, tails loses it. The episode ends at 0 (ruin) or at the goal (100),
which pays +1; every other reward is 0 and `gamma = 1`, so the value of a state is the
probability of reaching the goal.

Actions: action `a` (0 .. goal/2 - 1) stakes `a + 1` dollars. A stake larger than
`min(s, goal - s)` is clipped to that largest valid stake, so an invalid action is an exact
copy of the best-placed valid one and never changes `max_a q(s, a)`; `valid_actions()` gives
the `[S, A]` mask for solvers and plots that want to ignore the copies. The book's stake 0 is
left out on purpose: under `gamma = 1` a zero stake is a reward-free self-loop, which makes
policy evaluation singular and makes a greedy argmax over exact values pick "stake 0"
wherever it ties with the true optimum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int
from bellmax.core.mdp import TabularMDP
from bellmax.envs import spaces
from bellmax.envs._checks import between, bounded, discount, episode_limit
from bellmax.envs._tabular_tools import uniform_int
from bellmax.envs.environment import EnvParams, EnvState
from bellmax.envs.tabular import TabularEnvironment

__all__ = ["GamblerParams", "GamblerState", "GamblersProblem"]


@struct.dataclass
class GamblerState(EnvState):
    """The gambler's capital `0 .. goal` and the step count."""

    capital: jax.Array
    time: jax.Array


@struct.dataclass
class GamblerParams(EnvParams):
    """Coin bias, discount and episode limit."""

    p_h: float = bounded(
        0.4, between(0.0, 1.0, low_open=True, high_open=True, meaning="the probability of heads")
    )
    """Probability that the coin comes up heads (the gambler wins the stake)."""
    gamma: float = bounded(1.0, discount())
    """Discount of the exact MDP."""
    max_steps_in_episode: int = episode_limit(1000)
    """Steps until truncation (a guard: every bet moves the capital)."""


class GamblersProblem(TabularEnvironment):
    """Example 4.3: bet on coin flips to reach the goal (Figure 4.3).

    States are the capital `0 .. goal` (index = capital; 0 and `goal` are terminal).
    Observation: the capital (int32 scalar, `Discrete(goal + 1)`). Action `a` stakes
    `a + 1` (clipped to `min(s, goal - s)`, see the module docstring). Episodes start from a
    capital drawn uniformly in `1 .. goal - 1`.

    Outside `jit` an action that is not one integer in `0 .. goal/2 - 1` raises; inside
    `jit` it is not checked and its stake `a + 1` is clipped to `1 .. min(s, goal - s)` like
    any too-large stake (so -5 stakes 1 and 99 the most allowed).

    Args:
      goal: the capital that ends the game with reward +1 (100 in the book).
    """

    state_type = GamblerState
    index_field = "capital"
    params_type = GamblerParams
    env_id = "GamblersProblem-v0"

    def __init__(self, goal: int = 100):
        self.goal = check_int(goal, "goal", owner="GamblersProblem", low=2)

    @property
    def num_states(self) -> int:
        """`goal + 1` capitals."""
        return self.goal + 1

    @property
    def num_stakes(self) -> int:
        """Number of actions `goal // 2` (stakes `1 .. goal // 2`)."""
        return self.goal // 2

    def stake(self, s: jax.Array, a: jax.Array) -> jax.Array:
        """The stake action `a` places with capital `s`: `a + 1` clipped to `1 .. min(s, goal - s)`."""
        s = jnp.asarray(s, jnp.int32)
        most = jnp.maximum(jnp.minimum(s, self.goal - s), 1)
        return jnp.clip(jnp.asarray(a, jnp.int32) + 1, 1, most)

    def outcomes(
        self, s: jax.Array, a: jax.Array, params: GamblerParams
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The two outcomes (heads, tails) of staking with action `a` at capital `s` (jittable).

        Terminal capitals (0, goal) absorb with reward 0.

        Returns:
          `(next_capital [2], probability [2], reward [2])`.
        """
        s = jnp.asarray(s, jnp.int32)
        stake = self.stake(s, a)
        done = (s <= 0) | (s >= self.goal)
        nxt = jnp.where(done, s, jnp.stack([s + stake, s - stake]))
        reward = jnp.where(nxt == self.goal, 1.0, 0.0) * (1.0 - done)
        prob = jnp.stack([params.p_h, 1.0 - params.p_h]).astype(jnp.float32)
        return nxt.astype(jnp.int32), prob, reward.astype(jnp.float32)

    # ------------------------------------------------------------------ sampled env
    def reset_env(self, key: jax.Array, params: GamblerParams) -> tuple[jax.Array, GamblerState]:
        capital = 1 + uniform_int(key, self.goal - 1)
        state = GamblerState(capital=capital, time=jnp.asarray(0, jnp.int32))
        return state.capital, state

    def step_env(self, key, state: GamblerState, action, params: GamblerParams):
        nxt, _, reward = self.outcomes(state.capital, action, params)
        heads = jax.random.uniform(key, (), jnp.float32) < params.p_h
        i = jnp.where(heads, 0, 1)
        state = GamblerState(capital=nxt[i], time=state.time + 1)
        terminated = (state.capital == 0) | (state.capital == self.goal)
        return state.capital, state, reward[i], terminated, {}

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_stakes)

    def observation_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)

    # ------------------------------------------------------------------ tabular view
    def valid_actions(self, params: GamblerParams | None = None) -> np.ndarray:
        """Bool `[S, A]`: whether action `a` is a real stake (`a + 1 <= min(s, goal - s)`).

        At the terminal capitals every action is a no-op and all are marked valid.
        """
        s = np.arange(self.num_states)[:, None]
        a = np.arange(self.num_stakes)[None, :]
        most = np.minimum(s, self.goal - s)
        return (a + 1 <= most) | (most == 0)

    def tabular_mdp(self, params: GamblerParams | None = None) -> TabularMDP:
        """The exact model from `outcomes` on every `(s, a)` (host-side).

        `initial` is uniform over capitals `1 .. goal - 1`, as in `reset`.
        """
        params = self.host_params(params, "tabular_mdp")
        S, A = self.num_states, self.num_stakes
        every = jax.vmap(jax.vmap(self.outcomes, (None, 0, None)), (0, None, None))
        nxt, _, reward = jax.jit(every)(jnp.arange(S), jnp.arange(A), params)
        nxt, reward = np.asarray(nxt), np.asarray(reward, dtype=np.float64)
        p_h = float(params.p_h)
        prob = np.broadcast_to(np.array([p_h, 1.0 - p_h]), nxt.shape)
        P = np.zeros((S, A, S))
        s_idx, a_idx, _ = np.indices(nxt.shape)
        np.add.at(P, (s_idx, a_idx, nxt), prob)
        terminal = np.zeros(S, dtype=bool)
        terminal[[0, self.goal]] = True
        return TabularMDP(
            P=P,
            R=(prob * reward).sum(axis=2),
            gamma=float(params.gamma),
            terminal=terminal,
            initial=(~terminal) / (~terminal).sum(),
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"GamblersProblem(goal={self.goal})"
