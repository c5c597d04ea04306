"""The random walk of Sutton & Barto (Example 6.2; 19 states in Example 7.2), sampled and exact.

A row of `n` non-terminal states (A..E for `n = 5`) between two terminal exits. Episodes
start in the middle state; the left exit pays `left_reward` (0 in Example 6.2, -1 in
Example 7.2), the right exit `right_reward` (+1), every other step 0; `gamma = 1`.

The book's walk is a Markov reward process; here it is an MDP with two deterministic
actions, 0 left and 1 right, and the book's process is the equiprobable random policy (pass
`policy = 0.5` everywhere to a prediction method). Its true values are then
`v(k) = k / (n + 1)` for `k = 1 .. n` with the default rewards (1/6 .. 5/6 for `n = 5`).

State indices: 0 the left exit, `1 .. n` the non-terminal states from left to right,
`n + 1` the right exit. Observation: the state index (int32, `Discrete(n + 2)`).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int
from bellmax.core.mdp import TabularMDP
from bellmax.envs import spaces
from bellmax.envs._checks import bounded, discount, episode_limit, finite
from bellmax.envs.environment import EnvParams, EnvState
from bellmax.envs.tabular import TabularEnvironment

__all__ = ["LEFT", "RIGHT", "RandomWalk", "RandomWalkParams", "RandomWalkState"]

#: Action indices.
LEFT, RIGHT = 0, 1


@struct.dataclass
class RandomWalkState(EnvState):
    """The walker's state index `0 .. n + 1` and the step count."""

    pos: jax.Array
    time: jax.Array


@struct.dataclass
class RandomWalkParams(EnvParams):
    """Exit rewards, discount and episode limit."""

    left_reward: float = bounded(0.0, finite("the reward of the left exit"))
    """Reward for leaving by the left exit (Example 6.2: 0; Example 7.2: -1)."""
    right_reward: float = bounded(1.0, finite("the reward of the right exit"))
    """Reward for leaving by the right exit."""
    gamma: float = bounded(1.0, discount())
    """Discount of the exact MDP."""
    max_steps_in_episode: int = episode_limit(10_000)
    """Steps until truncation (a guard: a random walk ends with probability one)."""


@partial(jax.jit, static_argnums=0)
def _transition_table(env: RandomWalk, params: RandomWalkParams) -> tuple[jax.Array, jax.Array]:
    """`env.transition` on every `(s, a)`: next states and rewards, `[S, 2]` each."""
    every = jax.vmap(jax.vmap(env.transition, (None, 0, None)), (0, None, None))
    return every(jnp.arange(env.num_states), jnp.arange(2), params)


class RandomWalk(TabularEnvironment):
    """Example 6.2: a random walk over `num_states` states between two exits (Figure 6.2).

    Actions: 0 left, 1 right. Outside `jit` any other action raises; inside `jit` it is
    not checked and every action other than 0 moves right.

    Args:
      num_states: the number of non-terminal states (5 in Example 6.2, 19 in Example 7.2).
    """

    state_type = RandomWalkState
    params_type = RandomWalkParams
    env_id = "RandomWalk-v0"

    def __init__(self, num_states: int = 5):
        self.n = check_int(num_states, "num_states", owner="RandomWalk", low=1)

    @property
    def num_states(self) -> int:
        """`n + 2`: the `n` non-terminal states and the two exits."""
        return self.n + 2

    @property
    def start_state(self) -> int:
        """The middle state `(n + 1) // 2` (C for `n = 5`; the left one of two middles)."""
        return (self.n + 1) // 2

    def true_values(self, params: RandomWalkParams | None = None) -> np.ndarray:
        """Values `[n + 2]` of the equiprobable random policy (exits 0), in closed form.

        With `gamma = 1` the walk leaves right from state `k` with probability
        `k / (n + 1)`, so `v(k) = left + (right - left) * k / (n + 1)`; for `gamma < 1`
        use a linear solve on `tabular_mdp`.
        """
        params = self.host_params(params, "true_values")
        if float(params.gamma) != 1.0:
            raise ValueError(
                f"true_values is the closed form for gamma = 1, got gamma = {params.gamma}; "
                "solve the linear system of tabular_mdp(params) instead."
            )
        k = np.arange(self.num_states, dtype=np.float64)
        left, right = float(params.left_reward), float(params.right_reward)
        v = left + (right - left) * k / (self.n + 1)
        v[[0, -1]] = 0.0
        return v

    # ------------------------------------------------------------------ dynamics
    def transition(
        self, s: jax.Array, a: jax.Array, params: RandomWalkParams
    ) -> tuple[jax.Array, jax.Array]:
        """The deterministic step `(s, a) -> (s', r)` (jittable; exits absorb with reward 0).

        Any action other than 0 moves right.
        """
        s = jnp.asarray(s, jnp.int32)
        done = (s == 0) | (s == self.n + 1)
        nxt = jnp.where(jnp.asarray(a) == LEFT, s - 1, s + 1)
        reward = jnp.where(
            nxt == 0, params.left_reward, jnp.where(nxt == self.n + 1, params.right_reward, 0.0)
        )
        return jnp.where(done, s, nxt).astype(jnp.int32), jnp.where(done, 0.0, reward).astype(
            jnp.float32
        )

    def reset_env(
        self, key: jax.Array, params: RandomWalkParams
    ) -> tuple[jax.Array, RandomWalkState]:
        state = self.state_from_index(jnp.asarray(self.start_state, jnp.int32))
        return state.pos, state

    def step_env(self, key, state: RandomWalkState, action, params: RandomWalkParams):
        nxt, reward = self.transition(state.pos, action, params)
        state = RandomWalkState(pos=nxt, time=state.time + 1)
        terminated = (nxt == 0) | (nxt == self.n + 1)
        return state.pos, state, reward, terminated, {}

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)

    # ------------------------------------------------------------------ tabular view
    def tabular_mdp(self, params: RandomWalkParams | None = None) -> TabularMDP:
        """The exact model from `transition` on every `(s, a)` (host-side).

        The exits are absorbing terminals with reward 0; `initial` is the middle state.
        """
        params = self.host_params(params, "tabular_mdp")
        S = self.num_states
        nxt, reward = _transition_table(self, params)
        P = np.zeros((S, 2, S))
        s_idx, a_idx = np.indices((S, 2))
        P[s_idx, a_idx, np.asarray(nxt)] = 1.0
        terminal = np.zeros(S, dtype=bool)
        terminal[[0, S - 1]] = True
        initial = np.zeros(S)
        initial[self.start_state] = 1.0
        return TabularMDP(
            P=P,
            R=np.asarray(reward, dtype=np.float64),
            gamma=float(params.gamma),
            terminal=terminal,
            initial=initial,
            name=self.name,
        )

    def __repr__(self) -> str:
        return f"RandomWalk(num_states={self.n})"
