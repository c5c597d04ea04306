"""Blackjack (Sutton & Barto, Example 5.1), sampled and exact.

The rules are Gymnasium's `Blackjack-v1` with `sab=True`: an infinite deck (each draw is
1..9 with probability 1/13 and a ten-valued card with 4/13; an ace counts 11 while that does
not bust the hand, a "usable ace"), the player hits (action 1) or sticks (action 0); the
dealer then draws until reaching 17 or more (standing on a soft 17). Bust loses (-1); else
the higher total wins (+1, draw 0). A natural (ace + ten-card as the first two cards) beats
every dealer hand but a natural (a draw), paying +1 (no 1.5 bonus); the player still chooses
to hit or stick on a natural, as in Gymnasium. The dealer's face-down card is drawn when the
player sticks, which has the same law as drawing it at the deal in an infinite deck.

Observation (Gymnasium's, as an int32 vector): `[player_sum, dealer_card (1..10),
usable_ace (0/1)]` in `MultiDiscrete([32, 11, 2])`; after a bust `player_sum` exceeds 21.

State indices of the exact MDP (`state_index(state)`, `S = 293`): every decision state
Gymnasium can show, plus the natural, plus three terminals:

- player code `p`: `sum - 4` for hard sums 4..21 (no usable ace; `p = 0..17`),
  `18 + sum - 12` for soft sums 12..21 (usable ace; `p = 18..27`), `28` for a natural;
- decision state index `10 * p + (dealer_card - 1)`, `0 .. 289`;
- terminal index `291 + outcome`: 290 lost, 291 drawn, 292 won (absorbing, reward 0).

The natural and a soft 21 reached by hitting look the same (`[21, d, 1]`) but differ: only
the natural wins against a dealer's three-card 21. `state_index` tells them apart from the
environment state; `obs_index(obs)` maps an observation to the non-natural state.
`book_state_indices()` gives the book's 200 states (sums 12..21) as a `[2, 10, 10]` array
`[usable_ace, player_sum - 12, dealer_card - 1]` for Figures 5.1 and 5.2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.mdp import TabularMDP
from bellmax.envs import spaces
from bellmax.envs._checks import bounded, discount, episode_limit
from bellmax.envs._tabular_tools import uniform_int
from bellmax.envs.environment import EnvParams, EnvState
from bellmax.envs.tabular import TabularEnvironment

__all__ = [
    "CARD_PROBS",
    "DRAWN",
    "LOST",
    "NUM_STATES",
    "WON",
    "Blackjack",
    "BlackjackParams",
    "BlackjackState",
    "dealer_distribution",
    "dealer_result",
    "draw_cards",
    "hand_total",
    "play_dealer",
]

#: Probability of drawing a card of value 1..10 (index 0 is value 1, the ace).
CARD_PROBS = np.array([1.0] * 9 + [4.0]) / 13.0
#: Number of decision states and the terminal indices.
NUM_DECISION_STATES = 290
LOST, DRAWN, WON = 290, 291, 292
NUM_STATES = 293
_NATURAL_CODE = 28


@struct.dataclass
class BlackjackState(EnvState):
    """The player's hand, the dealer's face-up card and whether the game is over."""

    player_hard: jax.Array
    """Sum of the player's cards with every ace counted as 1."""
    player_ace: jax.Array
    """Whether the player holds an ace."""
    natural: jax.Array
    """Whether the player's hand is exactly an ace and a ten-card (the first two cards)."""
    dealer: jax.Array
    """The dealer's face-up card, 1..10."""
    done: jax.Array
    """Whether the game has ended."""
    outcome: jax.Array
    """-1 lost, 0 drawn, +1 won (meaningful once `done`)."""
    time: jax.Array


@struct.dataclass
class BlackjackParams(EnvParams):
    """Discount and episode limit (the rules themselves are fixed)."""

    gamma: float = bounded(1.0, discount())
    """Discount of the exact MDP."""
    max_steps_in_episode: int = episode_limit(100)
    """Steps until truncation (a guard: a game ends within 21 hits)."""


#: Cards the dealer may need after the face-down card: each hit adds at least 1 to a hard
#: total that starts at 2 or more, and the dealer stops by 17.
_MAX_DEALER_HITS = 15


def draw_cards(key: jax.Array, n: int) -> jax.Array:
    """`n` independent card values 1..10 from the infinite deck (int32 `[n]`, jittable)."""
    return jnp.minimum(uniform_int(key, 13, (n,)) + 1, 10)


def hand_total(hard: jax.Array, ace: jax.Array) -> jax.Array:
    """Blackjack total of a hand: `hard + 10` with a usable ace, else `hard` (jittable)."""
    return jnp.where(ace & (hard + 10 <= 21), hard + 10, hard)


def play_dealer(key: jax.Array, showing: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Draw the dealer's hidden card and hit until the total is 17 or more (jittable).

    Returns:
      `(score, natural)`: the final total (0 if bust) and whether the dealer has a natural.
    """
    return dealer_result(draw_cards(key, 1 + _MAX_DEALER_HITS), showing)


def dealer_result(cards: jax.Array, showing: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The dealer's play given the cards to come (jittable).

    All the cards the dealer could need are drawn beforehand and used in order, which has the
    same law as drawing them one by one and vmaps without a data-dependent loop.

    Args:
      cards: `[1 + 15]` card values: the face-down card, then the hits in order.
      showing: the face-up card.

    Returns:
      `(score, natural)`: the final total (0 if bust) and whether the dealer has a natural.
    """
    hidden = cards[0]
    natural = ((showing == 1) & (hidden == 10)) | ((showing == 10) & (hidden == 1))

    def hit(i, carry):
        hard, ace = carry
        more = hand_total(hard, ace) < 17
        card = jnp.where(more, cards[i], 0)
        return hard + card, ace | (card == 1)

    start = (showing + hidden, (showing == 1) | (hidden == 1))
    hard, ace = jax.lax.fori_loop(1, 1 + _MAX_DEALER_HITS, hit, start)
    total = hand_total(hard, ace)
    return jnp.where(total > 21, 0, total), natural


# ---------------------------------------------------------------------- exact model (host)
@functools.cache
def _dealer_from(hard: int, ace: bool) -> tuple[float, ...]:
    """Law of the dealer's final total from a non-natural hand: index 0 bust, 17..21 totals."""
    total = hard + 10 if ace and hard + 10 <= 21 else hard
    out = np.zeros(22)
    if total > 21:
        out[0] = 1.0
    elif total >= 17:
        out[total] = 1.0
    else:
        for value, q in zip(range(1, 11), CARD_PROBS, strict=True):
            out += q * np.asarray(_dealer_from(hard + value, ace or value == 1))
    return tuple(out)


def dealer_distribution(showing: int) -> np.ndarray:
    """Exact law of the dealer's result given the face-up card (host-side).

    Returns:
      Array `[23]`: index 0 bust, 17..21 a final total reached by hitting or a non-natural
      two-card hand, 22 a natural.
    """
    out = np.zeros(23)
    for hidden, q in zip(range(1, 11), CARD_PROBS, strict=True):
        if {showing, hidden} == {1, 10}:
            out[22] += q
        else:
            out[:22] += q * np.asarray(_dealer_from(showing + hidden, showing == 1 or hidden == 1))
    return out


def _code_of(hard: int, ace: bool, natural: bool = False) -> int | None:
    """Player code of a hand (None if bust)."""
    if natural:
        return _NATURAL_CODE
    total = hard + 10 if ace and hard + 10 <= 21 else hard
    if total > 21:
        return None
    return 18 + total - 12 if (ace and hard + 10 <= 21) else total - 4


def _hand_of(code: int) -> tuple[int, bool, bool]:
    """A hand `(hard, has_ace, natural)` with player code `code`."""
    if code < 18:
        return code + 4, False, False
    if code < _NATURAL_CODE:
        return code - 18 + 2, True, False
    return 11, True, True


def _stick_outcomes(total: int, natural: bool, dealer: np.ndarray) -> np.ndarray:
    """`[P(lose), P(draw), P(win)]` of sticking on `total` against the dealer law `dealer`."""
    lose = draw = win = 0.0
    win += dealer[0]
    for final in range(17, 22):
        p = dealer[final]
        if natural or total > final:
            win += p
        elif total == final:
            draw += p
        else:
            lose += p
    if natural or total == 21:
        draw += dealer[22]
    else:
        lose += dealer[22]
    return np.array([lose, draw, win])


class Blackjack(TabularEnvironment):
    """Example 5.1: infinite-deck blackjack, Gymnasium `Blackjack-v1(sab=True)` rules.

    Actions: 0 stick, 1 hit. See the module docstring for observations and state indices.
    Outside `jit` any other action raises (as in Gymnasium); inside `jit` it is not checked
    and every action other than 0 hits.
    """

    params_type = BlackjackParams
    env_id = "Blackjack-v0"

    @property
    def num_states(self) -> int:
        """293: 290 decision states and 3 terminals."""
        return NUM_STATES

    # ------------------------------------------------------------------ sampled env
    def get_obs(self, state: BlackjackState) -> jax.Array:
        """`[player_sum, dealer_card, usable_ace]` (int32)."""
        usable = state.player_ace & (state.player_hard + 10 <= 21)
        total = hand_total(state.player_hard, state.player_ace)
        return jnp.stack([total, state.dealer, usable.astype(jnp.int32)]).astype(jnp.int32)

    def reset_env(
        self, key: jax.Array, params: BlackjackParams
    ) -> tuple[jax.Array, BlackjackState]:
        c1, c2, dealer = draw_cards(key, 3)
        state = BlackjackState(
            player_hard=c1 + c2,
            player_ace=(c1 == 1) | (c2 == 1),
            natural=(jnp.minimum(c1, c2) == 1) & (jnp.maximum(c1, c2) == 10),
            dealer=dealer,
            done=jnp.asarray(False),
            outcome=jnp.asarray(0, jnp.int32),
            time=jnp.asarray(0, jnp.int32),
        )
        return self.get_obs(state), state

    def step_env(self, key, state: BlackjackState, action, params: BlackjackParams):
        cards = draw_cards(key, 2 + _MAX_DEALER_HITS)  # the player's card, then the dealer's
        hit = jnp.asarray(action) != 0
        card = cards[0]
        hard = state.player_hard + card
        ace = state.player_ace | (card == 1)
        bust = hand_total(hard, ace) > 21

        dealer_score, dealer_natural = dealer_result(cards[1:], state.dealer)
        player = hand_total(state.player_hard, state.player_ace)
        stick = jnp.where(state.natural & ~dealer_natural, 1, jnp.sign(player - dealer_score))

        over = state.done  # a finished game absorbs: no change, reward 0
        reward = jnp.where(hit, jnp.where(bust, -1, 0), stick)
        new = BlackjackState(
            player_hard=jnp.where(hit & ~over, hard, state.player_hard),
            player_ace=jnp.where(hit & ~over, ace, state.player_ace),
            natural=state.natural & ~(hit & ~over),
            dealer=state.dealer,
            done=over | ~hit | bust,
            outcome=jnp.where(over, state.outcome, reward).astype(jnp.int32),
            time=state.time + 1,
        )
        reward = jnp.where(over, 0, reward).astype(jnp.float32)
        return self.get_obs(new), new, reward, new.done, {}

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params=None) -> spaces.MultiDiscrete:
        return spaces.MultiDiscrete([32, 11, 2])

    # ------------------------------------------------------------------ indices
    def state_index(self, state: BlackjackState) -> jax.Array:
        usable = state.player_ace & (state.player_hard + 10 <= 21)
        total = hand_total(state.player_hard, state.player_ace)
        code = jnp.where(
            state.natural, _NATURAL_CODE, jnp.where(usable, 18 + total - 12, total - 4)
        )
        index = code * 10 + state.dealer - 1
        return jnp.where(state.done, DRAWN + state.outcome, index).astype(jnp.int32)

    def state_from_index(self, s: jax.Array) -> BlackjackState:
        """An environment state with index `s` (jittable; for exploring starts).

        Soft and hard hands are represented by one hand with that sum; this does not change
        their future (the deck is infinite).
        """
        s = jnp.asarray(s, jnp.int32)
        code, dealer = s // 10, s % 10 + 1
        done = s >= NUM_DECISION_STATES
        return BlackjackState(
            player_hard=jnp.where(
                code < 18, code + 4, jnp.where(code < _NATURAL_CODE, code - 16, 11)
            ),
            player_ace=(code >= 18) & ~done,
            natural=(code == _NATURAL_CODE) & ~done,
            dealer=jnp.where(done, 1, dealer),
            done=done,
            outcome=jnp.where(done, s - DRAWN, 0),
            time=jnp.zeros_like(s),
        )

    def obs_index(self, obs: jax.Array) -> jax.Array:
        """The state index of an observation (jittable).

        `[21, d, 1]` maps to the non-natural soft 21; a busted sum maps to `LOST` (290).
        Observations after a stick look like decision states: use `terminated` to tell.
        """
        obs = jnp.asarray(obs, jnp.int32)
        total, dealer, usable = obs[..., 0], obs[..., 1], obs[..., 2]
        code = jnp.where(usable == 1, 18 + total - 12, jnp.maximum(total, 4) - 4)
        return jnp.where(total > 21, LOST, code * 10 + dealer - 1).astype(jnp.int32)

    @staticmethod
    def book_state_indices() -> np.ndarray:
        """Indices of the book's states as `[usable_ace, player_sum - 12, dealer_card - 1]`.

        `values[Blackjack.book_state_indices()]` is the `[2, 10, 10]` table of Figures 5.1/5.2.
        """
        total = np.arange(12, 22)[:, None]
        dealer = np.arange(10)[None, :]
        hard = (total - 4) * 10 + dealer
        soft = (18 + total - 12) * 10 + dealer
        return np.stack([hard, soft])

    # ------------------------------------------------------------------ tabular view
    def tabular_mdp(self, params: BlackjackParams | None = None) -> TabularMDP:
        """The exact model, by exact recursion over the infinite deck (host-side).

        Sticking moves to the lost/drawn/won terminals with the probabilities of the dealer's
        final total; hitting draws one card (a bust moves to `LOST`). `R[s, a]` is the
        expected reward; `initial` is the exact law of the first state after the deal.
        """
        params = self.host_params(params, "tabular_mdp")
        P = np.zeros((NUM_STATES, 2, NUM_STATES))
        R = np.zeros((NUM_STATES, 2))
        dealers = [dealer_distribution(d) for d in range(1, 11)]
        for code in range(_NATURAL_CODE + 1):
            hard, ace, natural = _hand_of(code)
            total = hard + 10 if ace and hard + 10 <= 21 else hard
            for d in range(1, 11):
                s = code * 10 + d - 1
                lose_draw_win = _stick_outcomes(total, natural, dealers[d - 1])
                P[s, 0, LOST:] = lose_draw_win
                R[s, 0] = lose_draw_win[2] - lose_draw_win[0]
                for value, q in zip(range(1, 11), CARD_PROBS, strict=True):
                    nxt = _code_of(hard + value, ace or value == 1)
                    if nxt is None:
                        P[s, 1, LOST] += q
                        R[s, 1] -= q
                    else:
                        P[s, 1, nxt * 10 + d - 1] += q
        for t in (LOST, DRAWN, WON):
            P[t, :, t] = 1.0
        initial = np.zeros(NUM_STATES)
        for c1, q1 in zip(range(1, 11), CARD_PROBS, strict=True):
            for c2, q2 in zip(range(1, 11), CARD_PROBS, strict=True):
                code = _code_of(c1 + c2, 1 in (c1, c2), natural={c1, c2} == {1, 10})
                initial[code * 10 : code * 10 + 10] += q1 * q2 * CARD_PROBS
        terminal = np.zeros(NUM_STATES, dtype=bool)
        terminal[LOST:] = True
        return TabularMDP(
            P=P, R=R, gamma=float(params.gamma), terminal=terminal, initial=initial, name=self.name
        )
