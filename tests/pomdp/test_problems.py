"""Generated literature problems: the tiger as in its file, RockSample's rules by hand, and a
small RockSample solved to a vanishing gap whose simulated return matches the bound."""

import jax
import numpy as np
import pytest

from bellmax.pomdp import hsvi, simulate
from bellmax.pomdp.problems import rock_sample, rock_sample_4_4
from bellmax.pomdp.problems import tiger as tiger_problem


def test_tiger_generator_equals_file(tiger):
    gen = tiger_problem()
    for f in ("T", "O", "R", "b0"):
        np.testing.assert_allclose(getattr(gen, f), getattr(tiger, f), rtol=0, atol=1e-15)
    assert gen.actions == tiger.actions and gen.gamma == tiger.gamma


def test_rock_sample_4_4_sizes_and_rules():
    p = rock_sample_4_4()
    assert (p.num_states, p.num_actions, p.num_observations) == (257, 9, 2)  # as published
    s = p.states.index("s021010")  # at (0, 2); rocks 0 and 2 good
    T, R = np.asarray(p.T), np.asarray(p.R)
    east, west, sample = p.actions.index("ame"), p.actions.index("amw"), p.actions.index("as")
    assert T[east, s, p.states.index("s121010")] == 1 and R[s, east] == 0
    assert T[west, s, p.states.index("st")] == 1 and R[s, west] == -100  # off the west edge
    assert R[s, sample] == -100  # no rock at (0, 2)
    rock1 = p.states.index("s211111")  # on rock 1 at (2, 1), good: +10 and it turns bad
    assert R[rock1, sample] == 10 and T[sample, rock1, p.states.index("s211011")] == 1
    at3 = p.states.index("s300000")
    assert R[at3, east] == 10 and T[east, at3, p.states.index("st")] == 1
    # check rock 3 at (1, 0) from (0, 2): distance sqrt(5), half efficiency 4
    eta = 2 ** (-np.sqrt(5) / 4)
    c3 = p.actions.index("ac3")
    np.testing.assert_allclose(np.asarray(p.O)[c3, s], [(1 - eta) / 2, (1 + eta) / 2])
    np.testing.assert_allclose(p.b0[p.b0 > 0], 1 / 16)


def test_small_rock_sample_gap_and_simulation():
    # RockSample[3, 2] (37 states): HSVI closes the gap, the gap shrinks over trials, and the
    # lower bound's policy, simulated, earns its value (sampled: within 3.5 standard errors).
    p = rock_sample(3, ((1, 1), (2, 0)), (0, 1))
    r = hsvi(p, epsilon=1e-3, time_limit=120.0)
    assert r.converged and r.gap <= 1e-3
    gaps = r.history[:, 2] - r.history[:, 1]
    assert gaps[0] > 5 and np.all(np.diff(gaps) <= 1e-9)
    res = simulate(p, r.vectors, jax.random.key(0), episodes=4000, steps=120)
    assert abs(float(res.mean_discounted_return) - r.lower_bound) < 3.5 * float(res.stderr)


def test_rock_sample_bad_layout():
    with pytest.raises(ValueError, match="must be distinct cells"):
        rock_sample(3, ((1, 1), (1, 1)), (0, 1))
    with pytest.raises(ValueError, match="outside the 3x3 grid"):
        rock_sample(3, ((1, 1),), (5, 1))


def test_tag_sizes_rules_and_file_round_trip(tmp_path):
    from bellmax.pomdp.fileformat import load_pomdp, save_pomdp
    from bellmax.pomdp.problems import TAG_CELLS, tag

    p = tag()
    assert (p.num_states, p.num_actions, p.num_observations) == (870, 5, 30)  # as published
    assert len(TAG_CELLS) == 29 and (6, 4) in TAG_CELLS and (0, 2) not in TAG_CELLS
    T, Ob, R = np.asarray(p.T), np.asarray(p.O), np.asarray(p.R)
    cell = {c: i for i, c in enumerate(TAG_CELLS)}
    s = p.states.index
    north, tag_a = p.actions.index("north"), p.actions.index("tag")
    # robot at (0, 0), opponent at (3, 1): away is east (x) and north (y; a wall: stays)
    r, o = cell[(0, 0)], cell[(3, 1)]
    row = T[north, s(f"r{r}o{o}")]
    up = cell[(0, 1)]
    assert row[s(f"r{up}o{cell[(4, 1)]}")] == pytest.approx(0.4)
    assert row[s(f"r{up}o{o}")] == pytest.approx(0.6)  # 0.2 stays + 0.4 blocked northwards
    assert R[s(f"r{r}o{o}"), north] == -1 and R[s(f"r{r}o{o}"), tag_a] == -10
    same = s(f"r{o}o{o}")
    assert R[same, tag_a] == 10 and T[tag_a, same, s(f"r{o}tagged")] == 1
    assert Ob[north, same, p.observations.index("same")] == 1
    assert Ob[north, s(f"r{r}o{o}"), p.observations.index(f"c{r}")] == 1
    np.testing.assert_allclose(p.b0[p.b0 > 0], 1 / 29**2)
    q = load_pomdp(save_pomdp(p, tmp_path / "tag.pomdp"))
    for f in ("T", "O", "R", "b0"):
        np.testing.assert_array_equal(getattr(q, f), getattr(p, f))
    assert q.states == p.states and q.gamma == 0.95
