"""POMDPs from the literature, generated from their published definitions.

- `tiger()` (Kaelbling, Littman & Cassandra 1998, section 3.4; Cassandra's `tiger.95.POMDP`):
  two doors, listening costs 1 and is 85% accurate, the tiger's door costs 100, the other
  pays 10, and opening a door resets the problem; gamma 0.95.
- `rock_sample(size, rocks, start)` (Smith & Simmons 2004, "Heuristic search value iteration
  for POMDPs", UAI, section 5), as Trey Smith's generators of the `.pomdp` files used in the
  HSVI2/SARSOP/zmdp papers write it (trey0/zmdp `src/pomdpModels/gen_RockSample_*`): a rover
  on a `size x size` grid knows where the rocks are but not which are good (prior 1/2 each).
  Moves are deterministic; leaving the grid eastwards pays +10 and ends in an absorbing
  terminal state; a move off another edge, or sampling where there is no rock, costs 100 and
  also ends there. Sampling a good rock pays 10 (the rock turns bad), a bad one costs 10.
  `check_i` reports rock `i` correctly with probability `(1 + eta) / 2`,
  `eta = 2^{-d / d0}` at Euclidean distance `d` (`d0` the half-efficiency distance); every
  other action observes `good`. Smith's generators differ in `d0`: `gen_RockSample_4_4`
  writes `eta = exp(-d)`, i.e. `d0 = ln 2`; `gen_RockSample_5_5` uses `d0 = 4`, and
  `5_7`, `7_8`, `10_10` use `d0 = 20`. `rock_sample`'s default `d0` is 4;
  `rock_sample_4_4()` (or `rock_sample(**ROCK_SAMPLE_4_4)`) is the published RockSample[4,4]
  with `d0 = ln 2`: it equals the file `gen_RockSample_4_4` writes (states, actions,
  observations, T, R, b0 exactly; O to the file's 6 printed decimals): 257 states, 9
  actions, 2 observations, gamma 0.95. The terminal state is absorbing (nothing resets),
  so a trial that stops at the goal and the file run on forever give the same discounted
  return.
- `tag()` (Pineau, Gordon & Thrun 2003, "Point-based value iteration", IJCAI, section 5):
  a robot chases an opponent on 29 cells, a 10 x 2 corridor with a 3 x 3 room above its
  columns 5-7. The robot sees its own cell, and whether the opponent shares it; it moves
  N/S/E/W deterministically (staying put at a wall) for -1, or tags: +10 when they share a
  cell (then the absorbing `tagged` state: the trial ends there, so "stop at the tag" and
  the file run on agree), else -10. When the robot moves, the opponent moves away from the
  robot's cell with probability 0.8 (0.4 along x and 0.4 along y, split evenly between the
  two directions when they are level on that axis; a move into a wall leaves it in place)
  and stays with 0.2. On a missed tag the opponent stays put (`missed_tag="stay"`, the
  default, as in the standard file) or moves as after a move (`missed_tag="move"`, as
  JuliaPOMDP's TagPOMDPProblem.jl `:orig`; bellmax's `tag()` before issue 19). States: 29
  robot cells x (29 opponent cells + tagged) = 870, 5 actions, 30 observations (the
  robot's cell, or `same`), gamma 0.95, uniform start over the 841 untagged states.

  The standard file is `TagAvoid.pomdp` (AdaCompNUS/sarsop `examples/POMDP`, the same as
  trey0/zmdp's `tagAvoid-orig.pomdp` of 2004; its state `30 i + j` is our `r{i}o{j}`, its
  `30 i + 29` our `r{i}tagged`). `tag()` equals it except in two places. (1) Rewards in
  the absorbing tagged state: the file charges -1 for a move and 0 for Catch there, ours
  pay 0 for every action; the optimal values are the same (Catch is optimal there), and
  with ours any policy's return equals its return in a trial that ends at the tag. (2) 16
  move rows (4 states x the 4 moves), quirks of the file that we do not copy; with
  cells `(x, y)` the file has, for every move of the robot from
  - robot and opponent at (9, 1): the opponent stays with 0.5 and goes to (9, 0) and
    (8, 1) with 0.25 each (ours: stays 0.6, 0.2 each);
  - robot and opponent at (6, 4): stays with 0.5, and 1/6 each to (7, 4), (5, 4) and
    (6, 3) (ours: stays 0.4, 0.2 each);
  - robot at (7, 3), opponent at (5, 3): the opponent goes to (7, 3) with 0.2 (ours: to
    (5, 4), a step north; the other 0.8 agree: 0.6 stay, 0.2 to (5, 2));
  - robot at (6, 4), opponent at (6, 3): stays with 0.4 and goes south to (6, 2) with
    0.2 (ours: stays 0.2, south 0.4).
  Everything else (states, observations, the other 4334 transition rows, the other
  rewards, gamma; b0 to the file's printed digits) is the file's; with `missed_tag="move"`
  the 812 rows of a missed tag differ too.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from bellmax.core.checks import check_choice, check_int, check_number
from bellmax.pomdp.model import TabularPOMDP

__all__ = ["ROCK_SAMPLE_4_4", "TAG_CELLS", "rock_sample", "rock_sample_4_4", "tag", "tiger"]

#: RockSample[4,4] as in the published file: rock positions (x, y), the start (x, y) and
#: Smith's sensor for this size, `eta = exp(-d)` (half-efficiency distance ln 2).
ROCK_SAMPLE_4_4 = {
    "size": 4,
    "rocks": ((3, 1), (2, 1), (1, 3), (1, 0)),
    "start": (0, 2),
    "half_efficiency": math.log(2.0),
}


def tiger(*, accuracy: float = 0.85, gamma: float = 0.95) -> TabularPOMDP:
    """The tiger problem (states tiger-left/right; actions listen, open-left, open-right)."""
    accuracy = check_number(accuracy, "accuracy", owner="tiger", low=0, high=1)
    T = np.stack([np.eye(2), np.full((2, 2), 0.5), np.full((2, 2), 0.5)])
    Ob = np.stack(
        [
            [[accuracy, 1 - accuracy], [1 - accuracy, accuracy]],
            np.full((2, 2), 0.5),
            np.full((2, 2), 0.5),
        ]
    )
    R = np.array([[-1.0, -100.0, 10.0], [-1.0, 10.0, -100.0]])
    return TabularPOMDP(
        T,
        Ob,
        R,
        gamma=gamma,
        b0=[0.5, 0.5],
        states=("tiger-left", "tiger-right"),
        actions=("listen", "open-left", "open-right"),
        observations=("tiger-left", "tiger-right"),
        name="tiger",
    )


def rock_sample(
    size: int,
    rocks: tuple[tuple[int, int], ...],
    start: tuple[int, int],
    *,
    half_efficiency: float = 4.0,
    gamma: float = 0.95,
) -> TabularPOMDP:
    """RockSample[size, len(rocks)] (see the module docstring for the rules).

    `half_efficiency` is the distance `d0` at which a check is half reliable: 4 (the default)
    as Smith's RockSample[5,5] generator, ln 2 for his [4,4] (`rock_sample_4_4`), 20 for his
    [5,7], [7,8] and [10,10].

    States are `s{x}{y}{bits}` (bit `i`, most significant first, is rock `i` good) then the
    terminal `st`; actions `amn ame ams amw ac0 .. ac{k-1} as`; observations `ogood obad`.
    """
    size = check_int(size, "size", owner="rock_sample", low=1)
    half_efficiency = check_number(
        half_efficiency, "half_efficiency", owner="rock_sample", low=0, low_open=True
    )
    k = len(rocks)
    where = {tuple(p): i for i, p in enumerate(rocks)}
    if len(where) != k or any(not (0 <= x < size and 0 <= y < size) for x, y in where):
        raise ValueError(
            f"rock_sample rocks {rocks} must be distinct cells of the {size}x{size} grid."
        )
    if not (0 <= start[0] < size and 0 <= start[1] < size):
        raise ValueError(f"rock_sample start {start} is outside the {size}x{size} grid.")
    cells = list(itertools.product(range(size), range(size)))
    nr = 2**k
    S = len(cells) * nr + 1
    term = S - 1
    actions = ["amn", "ame", "ams", "amw"] + [f"ac{i}" for i in range(k)] + ["as"]
    A = len(actions)
    T = np.zeros((A, S, S))
    Ob = np.zeros((A, S, 2))
    Ob[:, :, 0] = 1.0  # 'ogood' unless a check says otherwise
    R = np.zeros((S, A))
    T[:, term, term] = 1.0

    def index(x, y, r):
        return (x * size + y) * nr + r

    moves = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}
    for (x, y), r in itertools.product(cells, range(nr)):
        s = index(x, y, r)
        for a, (dx, dy) in moves.items():
            xp, yp = x + dx, y + dy
            if xp >= size:
                T[a, s, term], R[s, a] = 1.0, 10.0
            elif not (0 <= xp < size and 0 <= yp < size):
                T[a, s, term], R[s, a] = 1.0, -100.0
            else:
                T[a, s, index(xp, yp, r)] = 1.0
        for i, (rx, ry) in enumerate(rocks):
            a = 4 + i
            T[a, s, s] = 1.0
            good = (r >> (k - 1 - i)) & 1
            eff = 2.0 ** (-np.hypot(x - rx, y - ry) / half_efficiency)
            p_good = eff * good + (1 - eff) * 0.5
            Ob[a, s] = [p_good, 1 - p_good]  # the observation after a check: of s' = s
        a = A - 1
        if (x, y) in where:
            mask = 1 << (k - 1 - where[(x, y)])
            R[s, a] = 10.0 if r & mask else -10.0
            T[a, s, index(x, y, r & ~mask)] = 1.0
        else:
            T[a, s, term], R[s, a] = 1.0, -100.0
    b0 = np.zeros(S)
    b0[[index(*start, r) for r in range(nr)]] = 1.0 / nr
    states = [f"s{x}{y}{r:0{k}b}" for (x, y), r in itertools.product(cells, range(nr))] + ["st"]
    return TabularPOMDP(
        T,
        Ob,
        R,
        gamma=gamma,
        b0=b0,
        states=states,
        actions=actions,
        observations=("ogood", "obad"),
        name=f"RockSample_{size}_{k}",
    )


def rock_sample_4_4(**kwargs) -> TabularPOMDP:
    """RockSample[4,4] as published (`ROCK_SAMPLE_4_4`: Smith's layout and sensor, half
    efficiency ln 2); keyword arguments (`half_efficiency`, `gamma`) override it."""
    return rock_sample(**{**ROCK_SAMPLE_4_4, **kwargs})


#: Tag's 29 cells (x, y): the corridor y = 0, 1 (x = 0..9), then the room x = 5..7, y = 2..4.
TAG_CELLS = tuple((x, y) for y in range(2) for x in range(10)) + tuple(
    (x, y) for y in range(2, 5) for x in range(5, 8)
)


def tag(*, move_away: float = 0.8, missed_tag: str = "stay", gamma: float = 0.95) -> TabularPOMDP:
    """Tag (see the module docstring): 870 states, 5 actions, 30 observations.

    `move_away` is the opponent's probability of moving away when the robot moves;
    `missed_tag` what it does when the robot tags a cell it is not in: `"stay"` (the
    standard file, `TagAvoid.pomdp`) or `"move"` (away with `move_away`, as after a move).

    States are `r{i}o{j}` (robot in cell `i`, opponent in cell `j`, cells numbered as
    `TAG_CELLS`) and `r{i}tagged`; actions `north south east west tag`; observations `c{i}`
    (the robot's cell, opponent elsewhere) and `same`.
    """
    move_away = check_number(move_away, "move_away", owner="tag", low=0, high=1)
    missed_tag = check_choice(missed_tag, "missed_tag", ("stay", "move"), owner="tag")
    cells = TAG_CELLS
    n = len(cells)
    at = {c: i for i, c in enumerate(cells)}
    steps = {"north": (0, 1), "south": (0, -1), "east": (1, 0), "west": (-1, 0)}

    def step(i, d):
        x, y = cells[i]
        return at.get((x + d[0], y + d[1]), i)

    def away(r, j):
        """The opponent's next-cell distribution when the robot is in `r`, it in `j`."""
        dist = np.zeros(n)
        dist[j] += 1.0 - move_away
        (rx, ry), (ox, oy) = cells[r], cells[j]
        for axis, (mine, theirs) in enumerate(((rx, ox), (ry, oy))):
            if theirs != mine:
                dirs = [1 if theirs > mine else -1]
            else:
                dirs = [1, -1]
            for sgn in dirs:
                d = (sgn, 0) if axis == 0 else (0, sgn)
                dist[step(j, d)] += move_away / 2 / len(dirs)
        return dist

    S = n * (n + 1)

    def index(r, j):  # j == n: tagged
        return r * (n + 1) + j

    actions = [*steps, "tag"]
    A, Z = len(actions), n + 1
    T = np.zeros((A, S, S))
    Ob = np.zeros((A, S, Z))
    R = np.zeros((S, A))
    for r in range(n):
        tagged = index(r, n)
        T[:, tagged, tagged] = 1.0
        Ob[:, tagged, r] = 1.0
        for j in range(n):
            s = index(r, j)
            opp = away(r, j)
            Ob[:, s, n if r == j else r] = 1.0  # the observation of s' = s
            if r == j:  # unreachable after a tag (a hit ends in `tagged`, a miss leaves the
                # opponent elsewhere); the file observes the robot's cell there
                Ob[A - 1, s, n], Ob[A - 1, s, r] = 0.0, 1.0
            for a, d in enumerate(steps.values()):
                T[a, s, index(step(r, d), 0) : index(step(r, d), 0) + n] = opp
                R[s, a] = -1.0
            if r == j:
                T[A - 1, s, tagged], R[s, A - 1] = 1.0, 10.0
            elif missed_tag == "stay":
                T[A - 1, s, s], R[s, A - 1] = 1.0, -10.0
            else:
                T[A - 1, s, index(r, 0) : index(r, 0) + n] = opp
                R[s, A - 1] = -10.0
    b0 = np.full(S, 1.0 / (n * n))
    b0[[index(r, n) for r in range(n)]] = 0.0
    states = [f"r{r}o{j}" if j < n else f"r{r}tagged" for r in range(n) for j in range(n + 1)]
    return TabularPOMDP(
        T,
        Ob,
        R,
        gamma=gamma,
        b0=b0,
        states=states,
        actions=actions,
        observations=[f"c{i}" for i in range(n)] + ["same"],
        name="tag",
    )
