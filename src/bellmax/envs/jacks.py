"""Jack's car rental (Sutton & Barto, Example 4.2), sampled and exact.

Each evening Jack moves up to `max_move` cars between his two locations at `move_cost` each.
Next day, customers request Poisson(3) cars at location 1 and Poisson(4) at location 2; each
car rented earns `rental_reward` ($10) if one is there. Poisson(3) and Poisson(2) cars are
returned and can be rented from the day after. No location holds more than `max_cars` (20):
extra cars go back to the nationwide company. `gamma = 0.9`; a continuing task.

One day, in order (shared by the sampled env and the exact model):
1. move: action `a` in `0 .. 2 * max_move` moves `m = a - max_move` cars from location 1 to 2
   (negative: from 2 to 1), clipped to the cars available (`-n2 <= m <= n1`); the cost is
   charged on the cars actually moved, so an infeasible action is an exact copy of the
   largest feasible one (`valid_actions()` masks the copies); each location is then capped at
   `max_cars`;
2. rent: `min(requests, cars)` at each location;
3. return: cars come back, each location capped at `max_cars`.

The exact model is not truncated: because of the caps, every tail of the Poisson
distributions folds exactly into the boundary (`P(requests >= cars)` rents everything,
`P(returns >= room)` fills the lot), so each row of `P` sums to 1 to rounding.

The parameters also cover Exercise 4.7: `free_moves=1` (one car shuttled from 1 to 2 for
free) and `parking_cost=4` (charged per location keeping more than `parking_limit` = 10 cars
overnight, after the move).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int
from bellmax.core.mdp import TabularMDP
from bellmax.envs import spaces
from bellmax.envs._checks import between, bounded, count, episode_limit, nonnegative
from bellmax.envs._tabular_tools import uniform_int
from bellmax.envs.environment import EnvParams, EnvState
from bellmax.envs.tabular import TabularEnvironment

__all__ = ["JacksCarRental", "JacksParams", "JacksState", "capped_poisson"]


@struct.dataclass
class JacksState(EnvState):
    """Cars at each location at the end of the day, and the step (day) count."""

    cars_1: jax.Array
    cars_2: jax.Array
    time: jax.Array


@struct.dataclass
class JacksParams(EnvParams):
    """Demand, prices and discount (the book's values by default)."""

    request_mean_1: float = bounded(3.0, nonnegative("a Poisson mean"))
    """Mean daily rental requests at location 1."""
    request_mean_2: float = bounded(4.0, nonnegative("a Poisson mean"))
    """Mean daily rental requests at location 2."""
    return_mean_1: float = bounded(3.0, nonnegative("a Poisson mean"))
    """Mean daily returns at location 1."""
    return_mean_2: float = bounded(2.0, nonnegative("a Poisson mean"))
    """Mean daily returns at location 2."""
    rental_reward: float = bounded(10.0, nonnegative("the credit per car rented"))
    """Credit per car rented."""
    move_cost: float = bounded(2.0, nonnegative("the cost per car moved"))
    """Cost per car moved overnight."""
    free_moves: int = bounded(0, count("cars moved for free each night", low=0))
    """Cars moved from location 1 to 2 each night at no cost (Exercise 4.7: 1)."""
    parking_limit: int = bounded(10, count("cars kept overnight without parking cost", low=0))
    """Cars a location keeps overnight before `parking_cost` is due (Exercise 4.7)."""
    parking_cost: float = bounded(0.0, nonnegative("the overnight parking cost"))
    """Cost per location keeping more than `parking_limit` cars (Exercise 4.7: 4)."""
    gamma: float = bounded(
        0.9,
        between(
            0.0,
            1.0,
            high_open=True,
            meaning="Jack's car rental is a continuing task; the book uses 0.9",
        ),
    )
    """Discount of the exact MDP."""
    max_steps_in_episode: int = episode_limit(100)
    """Days until truncation of the sampled (continuing) task."""


def capped_poisson(key: jax.Array, lam: jax.Array, cap: int) -> jax.Array:
    """Draws of `min(X, cap)` with `X ~ Poisson(lam)`, by inversion (jittable; `cap` static).

    Requests and returns only matter up to the lot size, so this is exactly the law the
    dynamics see (to float32 rounding of the CDF), and it compiles and runs far faster under
    `vmap` than `jax.random.poisson`.

    Args:
      key: random key.
      lam: Poisson means, any shape.
      cap: the largest value returned.

    Returns:
      int32 draws of the shape of `lam`.
    """
    lam = jnp.asarray(lam, jnp.float32)[..., None]
    ratios = lam / jnp.arange(1, cap, dtype=jnp.float32)
    ratios = jnp.concatenate([jnp.ones_like(lam), ratios], axis=-1)
    cdf = jnp.cumsum(jnp.exp(-lam) * jnp.cumprod(ratios, axis=-1), axis=-1)  # P(X <= k)
    u = jax.random.uniform(key, lam.shape, jnp.float32)
    return jnp.sum(u >= cdf, axis=-1).astype(jnp.int32)


def _poisson_pmf_sf(lam: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`pmf[k] = P(X = k)` for `k < n` and `sf[k] = P(X >= k)` for `k <= n`, X ~ Poisson(lam)."""
    k = np.arange(n)
    pmf = np.exp(-lam) * np.concatenate([[1.0], np.cumprod(lam / np.maximum(k[1:], 1))])
    sf = np.clip(1.0 - np.concatenate([[0.0], np.cumsum(pmf)]), 0.0, 1.0)
    return pmf, sf


def _location_model(
    max_cars: int, request_mean: float, return_mean: float
) -> tuple[np.ndarray, np.ndarray]:
    """One location's day: `T[c, e] = P(end with e | c cars after the move)` and `E[rentals | c]`."""
    n = max_cars + 1
    req_pmf, req_sf = _poisson_pmf_sf(request_mean, n)
    ret_pmf, ret_sf = _poisson_pmf_sf(return_mean, n)
    c = np.arange(n)[:, None]
    r = np.arange(n)[None, :]
    # rentals r given c cars: P(req = r) for r < c, P(req >= c) for r = c.
    rent = np.where(r < c, req_pmf[r], 0.0) + np.where(r == c, req_sf[c], 0.0)
    # returns: from x cars left, end at min(x + returns, max_cars).
    x = np.arange(n)[:, None]
    e = np.arange(n)[None, :]
    d = np.clip(e - x, 0, n - 1)
    ret = np.where(e < max_cars, np.where(e >= x, ret_pmf[d], 0.0), ret_sf[max_cars - x])
    left = np.clip(c - r, 0, None)  # [c, r] cars left after renting
    T = np.einsum("cr,cre->ce", rent, ret[left])
    return T, (rent * r).sum(axis=1)


class JacksCarRental(TabularEnvironment):
    """Example 4.2: move cars between two Poisson rental locations (Figure 4.2).

    States `(n1, n2)`, cars at each location at the end of the day, have index
    `n1 * (max_cars + 1) + n2`; `grid_shape` is `(max_cars + 1, max_cars + 1)` with `n1` as
    the row, so `cell_of(s) == (n1, n2)` draws policies as in Figure 4.2. Observation: the
    state index (int32 scalar). Action `a` moves `a - max_move` cars from location 1 to 2.
    Episodes (truncated after `max_steps_in_episode` days) start uniformly on all states.

    Outside `jit` an action that is not one integer in `0 .. 2 * max_move` raises; inside
    `jit` it is not checked and is clipped into that range, then to the cars available.

    Args:
      max_cars: capacity of each location (20 in the book).
      max_move: most cars moved per night (5 in the book).
    """

    params_type = JacksParams
    env_id = "JacksCarRental-v0"

    def __init__(self, max_cars: int = 20, max_move: int = 5):
        self.max_cars = check_int(max_cars, "max_cars", owner="JacksCarRental", low=1)
        self.max_move = check_int(max_move, "max_move", owner="JacksCarRental", low=0)
        self.grid_shape = (self.max_cars + 1, self.max_cars + 1)

    @property
    def num_states(self) -> int:
        """`(max_cars + 1) ** 2`."""
        return (self.max_cars + 1) ** 2

    @property
    def num_moves(self) -> int:
        """Number of actions `2 * max_move + 1`."""
        return 2 * self.max_move + 1

    def overnight(
        self, cars_1: jax.Array, cars_2: jax.Array, a: jax.Array, params: JacksParams
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The deterministic evening: cars after the move at each location, and its cost.

        Args:
          cars_1, cars_2: cars at the end of the day (int, any shape).
          a: action `0 .. 2 * max_move` (moves `a - max_move` from location 1 to 2).
          params: prices.

        Returns:
          `(cars_1_after, cars_2_after, cost)`, the cost of moving and parking (>= 0).
        """
        n1, n2 = jnp.asarray(cars_1, jnp.int32), jnp.asarray(cars_2, jnp.int32)
        wanted = jnp.clip(jnp.asarray(a, jnp.int32), 0, self.num_moves - 1) - self.max_move
        m = jnp.clip(wanted, -n2, n1)
        paid = jnp.where(m > 0, jnp.maximum(m - params.free_moves, 0), -m)
        c1 = jnp.minimum(n1 - m, self.max_cars)
        c2 = jnp.minimum(n2 + m, self.max_cars)
        parking = params.parking_cost * (
            (c1 > params.parking_limit).astype(jnp.float32)
            + (c2 > params.parking_limit).astype(jnp.float32)
        )
        return c1, c2, params.move_cost * paid + parking

    # ------------------------------------------------------------------ sampled env
    def reset_env(self, key: jax.Array, params: JacksParams) -> tuple[jax.Array, JacksState]:
        state = self.state_from_index(uniform_int(key, self.num_states))
        return self.state_index(state), state

    def step_env(self, key, state: JacksState, action, params: JacksParams):
        c1, c2, cost = self.overnight(state.cars_1, state.cars_2, action, params)
        means = jnp.stack(
            [
                params.request_mean_1,
                params.request_mean_2,
                params.return_mean_1,
                params.return_mean_2,
            ]
        )
        req_1, req_2, ret_1, ret_2 = capped_poisson(key, means, self.max_cars)
        rent_1, rent_2 = jnp.minimum(req_1, c1), jnp.minimum(req_2, c2)
        end_1 = jnp.minimum(c1 - rent_1 + ret_1, self.max_cars)
        end_2 = jnp.minimum(c2 - rent_2 + ret_2, self.max_cars)
        reward = params.rental_reward * (rent_1 + rent_2) - cost
        state = JacksState(
            cars_1=end_1.astype(jnp.int32), cars_2=end_2.astype(jnp.int32), time=state.time + 1
        )
        return self.state_index(state), state, reward.astype(jnp.float32), jnp.asarray(False), {}

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_moves)

    def observation_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_states)

    # ------------------------------------------------------------------ tabular view
    def valid_actions(self, params: JacksParams | None = None) -> np.ndarray:
        """Bool `[S, A]`: whether action `a` is feasible (moves no more cars than there are)."""
        n1, n2 = np.divmod(np.arange(self.num_states), self.max_cars + 1)
        m = np.arange(self.num_moves)[None, :] - self.max_move
        return (m <= n1[:, None]) & (-m <= n2[:, None])

    def tabular_mdp(self, params: JacksParams | None = None) -> TabularMDP:
        """The exact model with full Poisson distributions, dense `[441, 11, 441]` (host-side).

        `P[(n1, n2), a, (m1, m2)] = T1[c1, m1] * T2[c2, m2]` where `(c1, c2)` are the cars after
        the move; `R[s, a] = rental_reward * (E[rentals_1] + E[rentals_2]) - cost`.
        `initial` is uniform, as in `reset`.
        """
        params = self.host_params(params, "tabular_mdp")
        n = self.max_cars + 1
        T1, rent1 = _location_model(
            self.max_cars, float(params.request_mean_1), float(params.return_mean_1)
        )
        T2, rent2 = _location_model(
            self.max_cars, float(params.request_mean_2), float(params.return_mean_2)
        )
        n1, n2 = np.divmod(np.arange(self.num_states), n)
        c1, c2, cost = jax.jit(self.overnight)(
            n1[:, None], n2[:, None], np.arange(self.num_moves)[None, :], params
        )
        c1, c2, cost = np.asarray(c1), np.asarray(c2), np.asarray(cost, dtype=np.float64)
        P = (T1[c1][:, :, :, None] * T2[c2][:, :, None, :]).reshape(
            self.num_states, self.num_moves, -1
        )
        R = float(params.rental_reward) * (rent1[c1] + rent2[c2]) - cost
        return TabularMDP(
            P=P,
            R=R,
            gamma=float(params.gamma),
            terminal=np.zeros(self.num_states, dtype=bool),
            initial=np.full(self.num_states, 1.0 / self.num_states),
            name=self.name,
        )

    def state_index(self, state: JacksState) -> jax.Array:
        return (jnp.asarray(state.cars_1) * (self.max_cars + 1) + jnp.asarray(state.cars_2)).astype(
            jnp.int32
        )

    def state_from_index(self, s: jax.Array) -> JacksState:
        """The environment state `(n1, n2)` of index `s`, time 0 (jittable; for exploring starts)."""
        s = jnp.asarray(s, jnp.int32)
        return JacksState(
            cars_1=s // (self.max_cars + 1), cars_2=s % (self.max_cars + 1), time=jnp.zeros_like(s)
        )

    def cell_of(self, s: int) -> tuple[int, int]:
        """`(n1, n2)` of state index `s`."""
        n1, n2 = divmod(int(s), self.max_cars + 1)
        return n1, n2

    def __repr__(self) -> str:
        return f"JacksCarRental(max_cars={self.max_cars}, max_move={self.max_move})"
