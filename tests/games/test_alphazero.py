"""AlphaZero-style tic-tac-toe: targets, training until verified perfect play, the weights
cache, save/load, bad input.

`make_agent("alphazero")` trains once per module, in an empty temporary cache directory, until
its own exhaustive check passes (seed 0: 5 rounds under AVX-512 and AVX2, 14 under SSE4.2;
about 10-20 s on one core, mostly compiling the search), and the tests share that agent. The
never-lose test holds on any CPU because training is verified, not budgeted. Every search
here uses the default batch and simulations, so the search program is compiled once.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import jax
import numpy as np
import pytest

import bellmax
from bellmax.core.errors import BellmaxError
from bellmax.envs.tictactoe import LINES
from bellmax.games import alphazero as az
from bellmax.games.mcts import frozen_agent
from bellmax.games.tictactoe import AGENT_FACTORIES, lines_of_play, make_agent

CONFIG = az.AlphaZeroConfig()  # the defaults make_agent("alphazero") trains with


@dataclasses.dataclass
class Made:
    """The module's agent and how it was made."""

    agent: az.AlphaZeroAgent
    result: az.TrainResult
    path: object


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """`make_agent("alphazero")` in an empty cache: trains, verifies, writes the cache."""
    cache = tmp_path_factory.mktemp("bellmax-cache")
    results = []
    real = az.train_alphazero

    def recording(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BELLMAX_CACHE_DIR", str(cache))
        mp.setattr(az, "train_alphazero", recording)
        agent = make_agent("alphazero")
        path = az.cache_path(CONFIG, seed=0)
    assert len(results) == 1
    return Made(agent=agent, result=results[0], path=path)


@pytest.fixture(scope="module")
def agent(made) -> az.AlphaZeroAgent:
    return made.agent


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A fresh, empty cache directory for one test."""
    monkeypatch.setenv("BELLMAX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _same_params(a, b) -> bool:
    return jax.tree.all(jax.tree.map(lambda x, y: np.array_equal(x, y), a, b))


def _count_training(monkeypatch, made, *, real: bool):
    """Replace train_alphazero by a counter (calling the real one, or returning the module's
    result); returns the list of calls."""
    calls = []
    train = az.train_alphazero

    def counted(config=None, **kwargs):
        calls.append((config, kwargs))
        return train(config, **kwargs) if real else made.result

    monkeypatch.setattr(az, "train_alphazero", counted)
    return calls


def test_registered():
    assert AGENT_FACTORIES["alphazero"].load() is az.make_alphazero_agent


# ---------------------------------------------------------------------- training, verified
def test_make_agent_trains_until_verified(made):
    result, meta = made.result, made.agent.meta
    assert result.verified and result.verification.losses == 0
    assert 1 <= result.rounds <= CONFIG.iterations
    assert result.checks == result.rounds  # check_every=1
    assert len(result.losses) == result.rounds and result.seed == 0
    assert meta["rounds"] == result.rounds
    assert meta["verification"]["as_x"]["losses"] == meta["verification"]["as_o"]["losses"] == 0
    assert made.path.is_file() and made.path.parent.name == "weights"
    print(f"\nrounds to a clean check: {result.rounds} ({result.seconds:.1f} s)")


@pytest.mark.parametrize("as_player", [1, -1])
def test_never_loses_exhaustively(agent, as_player):
    # the play search is noise-free, so one seed covers every choice the agent makes
    frozen = frozen_agent(agent, as_player, seed=0)
    result = lines_of_play(frozen, as_player)
    assert result["lines"] > 50
    assert result["losses"] == 0, result


def test_verify_agent_is_the_exhaustive_check(agent):
    v = az.verify_agent(agent)
    assert v.passed
    assert v.as_x == lines_of_play(frozen_agent(agent, 1), 1)
    assert v.as_o == lines_of_play(frozen_agent(agent, -1), -1)
    assert "0 of" in v.describe()


def test_training_loss_falls(made):
    losses = made.result.losses
    assert losses[-1] < 0.6 * losses[0]


def test_cap_reached_raises_a_clear_error(cache_dir):
    config = az.AlphaZeroConfig(iterations=1)  # one round never plays perfectly
    with pytest.raises(az.PerfectPlayNotReachedError) as info:
        az.train_alphazero(config, seed=0)
    err = info.value
    assert isinstance(err, BellmaxError) and isinstance(err, RuntimeError)
    assert err.rounds == 1 and err.verification.losses > 0
    msg = str(err)
    assert "cap of 1 rounds" in msg
    assert f"lost {err.verification.as_x['losses']} of" in msg
    assert "iterations=2" in msg and "num_simulations" in msg
    # make_agent raises the same error and caches nothing
    with pytest.raises(az.PerfectPlayNotReachedError, match="cap of 1 rounds"):
        make_agent("alphazero", iterations=1)
    assert not list(cache_dir.rglob("*.msgpack"))


def test_callback_can_stop_training_unverified(made):
    seen = []

    def stop_at_once(it, params):
        seen.append(it)
        return True

    result = az.train_alphazero(CONFIG, callback=stop_at_once)
    assert seen == [0] and result.rounds == 1 and result.checks == 1
    assert result.verified == result.verification.passed  # reported, never assumed


def test_selfplay_targets_are_outcomes_for_each_mover(agent):
    boards, targets, z, mask = az._selfplay(agent.params, jax.random.key(3), CONFIG)
    assert boards.shape == (9, CONFIG.games_per_iteration, 9)
    live = mask > 0
    assert live.any()
    # policy targets: distributions over the empty cells of the mover's board
    np.testing.assert_allclose(targets[live].sum(-1), 1.0, atol=1e-5)
    assert np.all(targets[live][boards[live] != 0] < 1e-6)
    assert set(np.unique(z[live])) <= {-1.0, 0.0, 1.0}
    for g in range(CONFIG.games_per_iteration):
        plies = np.flatnonzero(live[:, g])
        for t0, t1 in itertools.pairwise(plies):
            assert t1 == t0 + 1
            assert z[t0, g] == -z[t1, g]  # the movers alternate: the outcome flips sign
        # the last recorded mover won exactly when its line is on the next board
        if plies.size and plies[-1] < 8:
            t = plies[-1]
            line = np.any(np.sum(-boards[t + 1, g][LINES], -1) == 3)
            assert (z[t, g] == 1.0) == line


# ---------------------------------------------------------------------- the weights cache
def test_second_call_loads_the_cache(made, monkeypatch):
    monkeypatch.setenv("BELLMAX_CACHE_DIR", str(made.path.parent.parent))
    calls = _count_training(monkeypatch, made, real=False)
    loaded = make_agent("alphazero")
    assert calls == []  # loaded, not trained
    assert _same_params(loaded.params, made.agent.params)
    assert loaded.config == CONFIG
    assert loaded.meta["from_cache"] == str(made.path)
    assert loaded.meta["verification"]["as_o"]["losses"] == 0  # checked again on load
    assert loaded.meta["rounds"] == made.result.rounds


def test_cache_false_trains_and_writes_nothing(made, cache_dir, monkeypatch):
    calls = _count_training(monkeypatch, made, real=False)
    agent = make_agent("alphazero", cache=False)
    assert len(calls) == 1 and _same_params(agent.params, made.agent.params)
    assert not cache_dir.exists()
    with pytest.raises(TypeError, match="cache must be True or False"):
        make_agent("alphazero", cache="no")


def test_damaged_cache_file_is_retrained(made, cache_dir, monkeypatch):
    path = az.cache_path(CONFIG, seed=0)
    assert path.parent.parent == cache_dir
    path.parent.mkdir(parents=True)
    path.write_bytes(made.path.read_bytes()[:-100])  # truncated mid-weights
    calls = _count_training(monkeypatch, made, real=True)
    with pytest.warns(RuntimeWarning, match="ignoring the AlphaZero weights cache"):
        agent = make_agent("alphazero")
    assert len(calls) == 1
    # the same seed retrains the same weights on this machine, and the file is whole again
    assert _same_params(agent.params, made.agent.params)
    assert _same_params(az.load_alphazero(path).params, made.agent.params)


@pytest.mark.parametrize(
    "damage",
    ["garbage", "empty", "other-format", "wrong-shapes", "other-key"],
)
def test_bad_cache_files_are_ignored_with_a_warning(made, tmp_path, damage):
    path = tmp_path / "cached.msgpack"
    if damage == "garbage":
        path.write_bytes(b"\x93\x01\x02not msgpack")
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "other-format":
        path.write_bytes(json.dumps({"format": "pickle"}).encode())
    elif damage == "wrong-shapes":
        cut = jax.tree.map(lambda w: w[..., :1], made.agent.params)
        az.AlphaZeroAgent(cut, CONFIG).save(path)
    else:  # a valid file written for another seed
        az.AlphaZeroAgent(made.agent.params, CONFIG, meta={"cache_key": {"seed": 1}}).save(path)
    with pytest.warns(RuntimeWarning, match="ignoring the AlphaZero weights cache"):
        assert az._load_cached(path, CONFIG, 0) is None


def test_cached_weights_that_fail_the_check_are_retrained(made, monkeypatch):
    failing = az.Verification(
        as_x={"lines": 90, "wins": 80, "draws": 10, "losses": 0},
        as_o={"lines": 531, "wins": 400, "draws": 129, "losses": 2},
        seconds=0.0,
    )
    monkeypatch.setattr(az, "verify_agent", lambda agent, **kw: failing)
    with pytest.warns(RuntimeWarning, match="lost 0 of 90 lines as X and 2 of 531 as O"):
        assert az._load_cached(made.path, CONFIG, 0) is None


def test_unwritable_cache_only_warns(made, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BELLMAX_CACHE_DIR", str(blocker))
    _count_training(monkeypatch, made, real=False)
    with pytest.warns(RuntimeWarning, match="could not cache the AlphaZero weights"):
        agent = make_agent("alphazero")
    assert _same_params(agent.params, made.agent.params)


def test_cache_key_covers_config_seed_and_version(cache_dir, monkeypatch):
    base = az.cache_path(CONFIG, seed=0)
    assert base.parent == cache_dir / "weights" and base.suffix == ".msgpack"
    assert az.cache_path(az.AlphaZeroConfig(), seed=0) == base  # stable
    assert az.cache_path(CONFIG, seed=1) != base
    changed = {
        "iterations": 61,
        "games_per_iteration": 64,
        "num_simulations": 16,
        "sgd_steps": 8,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "hidden_sizes": (32,),
        "random_opening": 2,
        "check_every": 5,
    }
    assert set(changed) == {f.name for f in dataclasses.fields(az.AlphaZeroConfig)}
    paths = {
        az.cache_path(dataclasses.replace(CONFIG, **{k: v}), seed=0) for k, v in changed.items()
    }
    assert base not in paths and len(paths) == len(changed)
    monkeypatch.setattr(bellmax, "__version__", "999.0")
    assert az.cache_path(CONFIG, seed=0) != base
    with pytest.raises(TypeError, match="AlphaZeroConfig"):
        az.cache_path({"iterations": 1})


# ---------------------------------------------------------------------- save/load, bad input
def test_save_load_round_trip(agent, tmp_path):
    path = agent.save(tmp_path / "az.msgpack")
    loaded = make_agent("alphazero", checkpoint=path)
    boards = np.array([[0] * 9, [1, 0, 0, 0, -1, 0, 0, 0, 0], [1, 1, 0, -1, -1, 0, 0, 0, 0]])
    players = np.array([1, 1, 1])
    np.testing.assert_array_equal(
        loaded.act_batch(boards, players), agent.act_batch(boards, players)
    )
    assert loaded.config == agent.config
    assert loaded.meta["rounds"] == agent.meta["rounds"]
    assert loaded.act([1, 1, 0, -1, -1, 0, 0, 0, 0], 1) == 2  # completes the top row


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no AlphaZero checkpoint"):
        az.load_alphazero(tmp_path / "missing.msgpack")
    bad = tmp_path / "bad.msgpack"
    bad.write_bytes(b"\x00not msgpack at all")
    with pytest.raises(ValueError, match="not an AlphaZero checkpoint"):
        az.load_alphazero(bad)


def test_act_checks_the_position(agent, monkeypatch):
    calls = []
    real = az.check_position

    def spy(board, player):
        calls.append(player)
        return real(board, player)

    monkeypatch.setattr(az, "check_position", spy)
    with pytest.raises(ValueError, match="9 cells"):
        agent.act([0] * 8, 1)
    with pytest.raises(ValueError, match="game is over"):
        agent.act([1, 1, 1, -1, -1, 0, 0, 0, 0], -1)
    with pytest.raises(ValueError, match="cell 0"):
        agent.act([2, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    assert len(calls) == 3
    assert agent.act([1, -1, 1, 1, -1, -1, -1, 1, 0], 1) == 8  # one empty cell: no search
    with pytest.raises(ValueError, match=r"boards \[B, 9\]"):
        agent.act_batch(np.zeros((2, 8)), np.ones(2))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iterations", 0),
        ("games_per_iteration", -1),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("weight_decay", -1.0),
        ("random_opening", 9),
        ("check_every", 0),
        ("hidden_sizes", (0,)),
    ],
)
def test_config_value_errors(field, value):
    with pytest.raises(ValueError, match=field):
        az.AlphaZeroConfig(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_simulations", 1.5),
        ("sgd_steps", True),
        ("check_every", "1"),
        ("learning_rate", "3e-3"),
        ("weight_decay", None),
        ("hidden_sizes", 64),
    ],
)
def test_config_type_errors(field, value):
    with pytest.raises(TypeError, match=field):
        az.AlphaZeroConfig(**{field: value})


def test_config_normalises_numbers():
    config = az.AlphaZeroConfig(iterations=np.int64(3), learning_rate=1, hidden_sizes=[8])
    assert config == az.AlphaZeroConfig(iterations=3, learning_rate=1.0, hidden_sizes=(8,))
    assert type(config.iterations) is int and type(config.learning_rate) is float


def test_train_needs_a_config():
    with pytest.raises(TypeError, match="AlphaZeroConfig"):
        az.train_alphazero({"iterations": 1})
    with pytest.raises(TypeError, match="seed must be an int"):
        az.train_alphazero(CONFIG, seed=0.5)
    with pytest.raises(TypeError, match="callback must be callable"):
        az.train_alphazero(CONFIG, callback=1)
