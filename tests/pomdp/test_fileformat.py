"""The .pomdp format: every form of the preamble and of T/O/R, round trips, line-numbered errors."""

import numpy as np
import pytest

from bellmax.pomdp import PomdpFormatError, format_pomdp, load_pomdp, parse_pomdp, save_pomdp

HEAD = "discount: 0.9\nvalues: reward\nstates: 3\nactions: a b\nobservations: x y\n"
REST = "T: * identity\nO: * uniform\n"


def test_tiger_as_published(tiger):
    np.testing.assert_allclose(tiger.R, [[-1, -100, 10], [-1, 10, -100]])
    np.testing.assert_allclose(tiger.T[0], np.eye(2))
    np.testing.assert_allclose(tiger.T[1], np.full((2, 2), 0.5))
    np.testing.assert_allclose(tiger.O[0], [[0.85, 0.15], [0.15, 0.85]])
    assert tiger.actions == ("listen", "open-left", "open-right")
    assert tiger.gamma == 0.95 and tiger.name == "tiger"


@pytest.mark.parametrize(
    ("start", "b0"),
    [
        ("start: 0.2 0.3 0.5", [0.2, 0.3, 0.5]),
        ("start:\n0.2 0.3\n0.5", [0.2, 0.3, 0.5]),
        ("start: uniform", [1 / 3] * 3),
        ("start: 2", [0, 0, 1]),
        ("start include: 0 2", [0.5, 0, 0.5]),
        ("start exclude: 1", [0.5, 0, 0.5]),
        ("", [1 / 3] * 3),
    ],
)
def test_start_forms(start, b0):
    p = parse_pomdp(HEAD + start + "\n" + REST)
    np.testing.assert_allclose(p.b0, b0)


def test_named_start_state():
    text = "discount: 1\nstates: s0 s1\nactions: 1\nobservations: 1\nstart: s1\nT: * identity\nO: * uniform\n"
    np.testing.assert_allclose(parse_pomdp(text).b0, [0, 1])


def test_transition_forms_wildcards_and_overrides():
    text = (
        HEAD
        + """
T: a uniform
T: b : 0 : 1 1.0          # entry form
T: b : 0 : 0 0.0
T: b : 1                  # row form
0.1 0.2 0.7
T: b : 2 uniform
T: * : * : 2 0.0          # a later wildcard entry overrides: no one reaches state 2 ...
T: * : * : 0 0.0
T: * : * : 1 1.0          # ... all go to 1
T: a
1 0 0
0 1 0
0 0 1
O: a : * 0.25 0.75
O: b
1 0
0 1
0.5 0.5
O: b : 2 : x 0.1
O: b : 2 : y 0.9
"""
    )
    p = parse_pomdp(text)
    np.testing.assert_allclose(p.T[0], np.eye(3))
    np.testing.assert_allclose(p.T[1], [[0, 1, 0]] * 3)
    np.testing.assert_allclose(p.O[0], [[0.25, 0.75]] * 3)
    np.testing.assert_allclose(p.O[1], [[1, 0], [0, 1], [0.1, 0.9]])


def test_reward_forms_and_costs():
    text = (
        HEAD
        + REST.replace("T: * identity", "T: * uniform")
        + """
R: * : * : * : * 1
R: a : 0 : * : * 5
R: b : 1 : 2 : y 9        # entry form with s' and o
R: b : 2 : 0              # row over observations
4 6
R: a : 2                  # matrix s' x o
1 1
2 2
3 3
"""
    )
    p = parse_pomdp(text)
    # b at 1: s' uniform, o uniform: 5 of the 6 (s', o) pairs pay 1, (2, y) pays 9.
    np.testing.assert_allclose(p.R[1, 1], (5 * 1 + 9) / 6)
    np.testing.assert_allclose(p.R[2, 1], (4 / 2 + 6 / 2) / 3 + 2 / 3)
    np.testing.assert_allclose(p.R[2, 0], (1 + 2 + 3) / 3)
    np.testing.assert_allclose(p.R[0], [5, 1])
    cost = parse_pomdp(text.replace("values: reward", "values: cost"))
    np.testing.assert_allclose(cost.R, -p.R)


def test_a_file_with_a_byte_order_mark_loads(tmp_path):
    # Notepad's "UTF-8 with BOM" and PowerShell 5's UTF8 write a mark first: it was read as
    # part of the first keyword ("found '\ufeffdiscount'").
    from pathlib import Path

    text = (Path(__file__).parent / "data" / "tiger.pomdp").read_text()
    path = tmp_path / "bom.pomdp"
    path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    want = parse_pomdp(text)
    got = load_pomdp(path)
    np.testing.assert_array_equal(np.asarray(got.T), np.asarray(want.T))
    np.testing.assert_array_equal(np.asarray(got.R), np.asarray(want.R))


def test_round_trip_exact(tiger, tmp_path):
    rng = np.random.default_rng(0)
    T = rng.dirichlet(np.ones(4), size=(2, 4))
    T[1, 0] = [0, 0, 1, 0]
    Ob = rng.dirichlet(np.ones(3), size=(2, 4))
    R = rng.normal(size=(4, 2))
    from bellmax.pomdp import TabularPOMDP

    p = TabularPOMDP(T, Ob, R, gamma=0.93, b0=[0.1, 0.2, 0.3, 0.4])
    for q in (p, tiger):
        path = save_pomdp(q, tmp_path / "m.pomdp")
        r = load_pomdp(path)
        for f in ("T", "O", "R", "b0"):
            np.testing.assert_array_equal(getattr(r, f), getattr(q, f))
        assert r.gamma == q.gamma
    assert load_pomdp(save_pomdp(tiger, tmp_path / "t.pomdp")).actions == tiger.actions
    # the arguments the other way round (as save_mdp takes them): named, nothing written
    with pytest.raises(TypeError, match=r"save_pomdp takes \(pomdp, path\): the model first"):
        save_pomdp(tmp_path / "u.pomdp", tiger)
    with pytest.raises(TypeError, match="needs a TabularPOMDP first, got dict"):
        save_pomdp({}, tmp_path / "u.pomdp")
    assert not (tmp_path / "u.pomdp").exists()
    assert "T: listen identity" in format_pomdp(tiger)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEAD + "T: c identity\n", r"line 6: unknown action 'c'; declared actions: a b"),
        (HEAD + "T: a : 3 uniform\n", r"line 6: state index 3 is out of range"),
        (
            HEAD + "T: a : 0\n0.5 0.5\nO: * uniform\n",
            r"line 8: this T row needs 3 numbers, found 2",
        ),
        (
            HEAD + "T: * identity\nO: a : 0 : x zero\n",
            r"line 7: expected the O value, found 'zero'",
        ),
        (HEAD + "T: * identity\nO: * uniform\nQ: a 1\n", r"line 8: expected one of discount:"),
        (
            HEAD + "T: * identity\nT: a : 1 : 2 0.5\nO: * uniform\n",
            r"line 7: T for action 'a', state '1' sums to 1\.5 over the next states, not 1 \(last set on line 7\)",
        ),
        (
            HEAD + "T: * identity\n",
            r"line 6: O for action 'a', next state '0' sums to 0 .*never set",
        ),
        (HEAD + "T: a : 0 : 1 1.5\n", r"line 6: a probability must be in \[0, 1\], got 1\.5"),
        (
            "states: 2\nactions: 1\nobservations: 1\nT: * identity\n",
            r"line 4: 'T:' before the preamble declared discount",
        ),
        (
            "discount: 0.9\ndiscount: 0.8\n",
            r"line 2: 'discount:' is declared twice \(first on line 1\)",
        ),
        ("discount: 2\n", r"line 1: discount must be in \[0, 1\]"),
        ("discount: 0.9\nvalues: money\n", r"line 2: 'values:' must be 'reward' or 'cost'"),
        (HEAD + "start: 0.5 0.6 0.1\n", r"line 6: the start distribution sums to 1\.2"),
        (HEAD + "T: a identity 7\n", r"line 6: expected one of"),
        (
            HEAD + "T: a\nreset\n",
            r"line 7: expected a number .*found 'reset'\. 'reset' is an extension of some "
            r"parsers, not part of Cassandra's format",
        ),
        ("discount: 0.9\nstates: 2\n", r"line 2: the file never declares actions:, observations:"),
    ],
)
def test_malformed_files_name_the_line(text, message):
    with pytest.raises(PomdpFormatError, match=message):
        parse_pomdp(text)


def test_a_model_too_large_for_memory_is_refused_before_it_is_built():
    # 1e8 states: the names alone took seconds and gigabytes, then the dense T a MemoryError
    # (or swapping); refused at the declaration, naming the sizes.
    text = "discount: 0.9\nstates: 100000000\nactions: 2\nobservations: 2\n"
    with pytest.raises(
        PomdpFormatError,
        match=r"line 4: the model declares 100000000 states, 2 actions and 2 observations: its "
        r"dense .* need 1\.49e\+08 GiB, more than this machine's",
    ):
        parse_pomdp(text)
    # A large count that fits is still read as indices 0..n-1.
    big = "discount: 0.9\nstates: 300\nactions: 1\nobservations: 1\nT: * identity\nO: * uniform\n"
    pomdp = parse_pomdp(big + "R: * : 299 : * : * 1\n")
    assert pomdp.num_states == 300 and pomdp.states[-1] == "299" and pomdp.R[299, 0] == 1.0


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no POMDP file"):
        load_pomdp(tmp_path / "nope.pomdp")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        load_pomdp(tmp_path)
    binary = tmp_path / "model.npz"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xc0\xff")
    with pytest.raises(PomdpFormatError, match=r"not a text \.pomdp file"):
        load_pomdp(binary)


def test_parse_pomdp_wants_text():
    data = (HEAD + REST + "R: * : * : * : * 1\n").encode()
    with pytest.raises(TypeError, match=r"^parse_pomdp takes the file's text \(str\), got bytes; "
                       r"decode the bytes first .*load_pomdp\(path\)"):  # fmt: skip
        parse_pomdp(data)
    assert parse_pomdp(data.decode()).num_states == 3
