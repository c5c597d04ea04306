"""Generated literature problems: the tiger and RockSample[4,4] as in their files, RockSample's
and Tag's rules by hand, and a small RockSample solved to a vanishing gap whose simulated return
matches the bound.

`data/RockSample_4_4.pomdp.gz` is the file Trey Smith's generator writes: `perl
gen_RockSample_4_4` from trey0/zmdp (src/pomdpModels, Apache License 2.0, copyright Trey Smith,
commit d07d4f92479b92a56f955d464837fcce89085ebf), gzipped."""

import gzip
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from bellmax.pomdp import hsvi, load_pomdp, simulate
from bellmax.pomdp.problems import rock_sample, rock_sample_4_4
from bellmax.pomdp.problems import tiger as tiger_problem

DATA = Path(__file__).parent / "data"


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
    # check rock 3 at (1, 0) from (0, 2): distance sqrt(5); Smith's 4_4 sensor is exp(-d)
    eta = math.exp(-math.sqrt(5))
    c3 = p.actions.index("ac3")
    np.testing.assert_allclose(np.asarray(p.O)[c3, s], [(1 - eta) / 2, (1 + eta) / 2])
    np.testing.assert_allclose(p.b0[p.b0 > 0], 1 / 16)
    # the half-efficiency distance can still be chosen (Smith's 5_5 generator uses 4)
    q = rock_sample_4_4(half_efficiency=4.0)
    eta4 = 2 ** (-np.sqrt(5) / 4)
    np.testing.assert_allclose(np.asarray(q.O)[c3, s], [(1 - eta4) / 2, (1 + eta4) / 2])


def test_rock_sample_4_4_equals_smiths_file(tmp_path):
    # The published RockSample[4,4] file (see the module docstring), read by our parser.
    path = tmp_path / "RockSample_4_4.pomdp"
    path.write_bytes(gzip.decompress((DATA / "RockSample_4_4.pomdp.gz").read_bytes()))
    f, p = load_pomdp(path), rock_sample_4_4()
    assert (f.states, f.actions, f.observations) == (p.states, p.actions, p.observations)
    assert f.gamma == p.gamma == 0.95
    for k in ("T", "R", "b0"):
        np.testing.assert_array_equal(getattr(p, k), getattr(f, k))
    # the file prints 6 decimals of the check probabilities
    np.testing.assert_allclose(p.O, f.O, rtol=0, atol=5e-7)
    # the earlier default (half efficiency 4) is a different, better sensor
    assert np.abs(np.asarray(rock_sample_4_4(half_efficiency=4.0).O) - f.O).max() > 0.2


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
    # a missed tag: the opponent stays put (TagAvoid.pomdp); "move" moves it as a move does
    miss = s(f"r{r}o{o}")
    assert T[tag_a, miss, miss] == 1
    assert R[miss, tag_a] == -10
    moved = np.asarray(tag(missed_tag="move").T)
    assert moved[tag_a, miss, s(f"r{r}o{cell[(4, 1)]}")] == pytest.approx(0.4)
    assert moved[tag_a, miss, miss] == pytest.approx(0.6)
    np.testing.assert_array_equal(moved[:tag_a], T[:tag_a])  # the moves are the same
    np.testing.assert_array_equal(moved[tag_a, same], T[tag_a, same])  # and a hit
    # the tagged state: absorbing, every action pays 0 (the file charges -1 for a move)
    assert np.all(R[s(f"r{o}tagged")] == 0) and T[north, s(f"r{o}tagged"), s(f"r{o}tagged")] == 1
    # one of the 16 rows where the file differs (docstring): robot and opponent at (9, 1)
    corner = s(f"r{cell[(9, 1)]}o{cell[(9, 1)]}")
    assert T[north, corner, corner] == pytest.approx(0.6)  # the file: 0.5
    with pytest.raises(ValueError, match="missed_tag"):
        tag(missed_tag="flee")
    q = load_pomdp(save_pomdp(p, tmp_path / "tag.pomdp"))
    for f in ("T", "O", "R", "b0"):
        np.testing.assert_array_equal(getattr(q, f), getattr(p, f))
    assert q.states == p.states and q.gamma == 0.95
