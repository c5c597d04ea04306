"""AlphaZero-style tic-tac-toe: a policy-value network trained from self-play with MCTS targets,
until an exhaustive check proves it never loses.

Silver et al. 2017/2018 (AlphaGo Zero, AlphaZero), with the Gumbel search of Danihelka et al.
2022 (`mctx.gumbel_muzero_policy`), which improves the policy with few simulations:

- **Network** (`PolicyValueNet`): an MLP on the 9 cells from the mover's point of view
  (+1 the mover's marks, -1 the opponent's) with two heads: move logits [9] and a value in
  [-1, 1] for the player to move. One network plays both sides.
- **Search**: the tree of `bellmax.games.mcts` (canonical boards, reward for the player who
  moved, discount -1 per ply and 0 after the end), but leaves are valued by the network and
  expanded with its prior instead of random rollouts; illegal moves get zero prior.
- **Self-play**: `games_per_iteration` games at once; each move is the search's action with
  Gumbel noise (exploration), recorded with the search's improved policy
  (`action_weights`) as the policy target and, once the game ends, the outcome from that
  mover's view (+1 win, 0 draw, -1 loss) as the value target.
- **Training**: `sgd_steps` Adam steps per round on that round's games, loss =
  cross-entropy to the policy target + squared error of the value (+ weight decay).
- **Playing** (`AlphaZeroAgent.act`): the same search without noise (`gumbel_scale=0`), so the
  agent is deterministic and a single seed's exhaustive check covers all of its play.
- **Verified, not budgeted**: every `check_every` rounds, `verify_agent` plays the agent
  against every line of its opponent's play, as X and as O (`frozen_agent` +
  `lines_of_play`, the check the MCTS tests use), and training stops at the first check with
  no loss. A fixed budget is a claim about one machine: XLA compiles differently per CPU
  instruction set, so the same seed trains slightly different weights on AVX-512, AVX2 and
  SSE4.2 (60 fixed rounds lost 2 of 531 lines as O on AVX-512 and AVX2). If
  `iterations` (the round cap) is reached without a clean check, `train_alphazero` raises
  `PerfectPlayNotReachedError` naming the losses and what to raise.

`make_agent("alphazero")` (`make_alphazero_agent`) returns such a verified agent. Its weights
are cached in `bellmax.core.paths.user_cache_dir() / "weights"`, keyed by the config, the seed
and the bellmax version, so later calls load them instead of training; a loaded agent is
checked again (0.1-0.3 s once its search is compiled, which its first move needs anyway), so
weights copied to another CPU or JAX version are never trusted blindly. A damaged or stale
cache file is ignored with a warning and retrained; `cache=False` skips the cache.

Training to a clean check takes a few rounds (see tests/games/test_alphazero.py for the counts
per instruction set), about 10-20 s on one CPU core, most of it compiling the search once. One
search program (fixed batch of `games_per_iteration` boards) serves self-play, the check and
play, so training, checking and playing compile it once. Agents save to / load from a msgpack
file of the config, the weights and the training facts (`flax.serialization`, written
atomically; never pickle).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
import numpy as np
import optax
from flax import serialization

import bellmax
from bellmax.core.checks import check_bool, check_int, check_int_sequence, check_number, check_seed
from bellmax.core.display import summary_repr
from bellmax.core.errors import BellmaxError
from bellmax.core.io import atomic_open
from bellmax.core.paths import user_cache_dir
from bellmax.deep.networks import MLP
from bellmax.deep.optim import linear_schedule, make_optimizer
from bellmax.games.mcts import Node, frozen_agent, step_canonical
from bellmax.games.tictactoe import check_position, check_positions, lines_of_play

__all__ = [
    "AlphaZeroAgent",
    "AlphaZeroConfig",
    "PerfectPlayNotReachedError",
    "PolicyValueNet",
    "TrainResult",
    "Verification",
    "cache_path",
    "load_alphazero",
    "make_alphazero_agent",
    "train_alphazero",
    "verify_agent",
]

_FORMAT = "bellmax-alphazero-v1"
_NEG = -1e9


class PerfectPlayNotReachedError(BellmaxError, RuntimeError):
    """AlphaZero training used its whole round cap without an exhaustive check free of losses.

    Attributes:
      rounds: the cap that was reached (`AlphaZeroConfig.iterations`).
      verification: the last check's `Verification` (the losses it found).
    """

    def __init__(self, message: str, *, rounds: int, verification: Verification) -> None:
        super().__init__(message)
        self.rounds = rounds
        self.verification = verification


class PolicyValueNet(nn.Module):
    """Move logits [..., 9] and a value [...] in [-1, 1] from a canonical board [..., 9]."""

    hidden_sizes: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, board: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = MLP(hidden_sizes=tuple(self.hidden_sizes), activation="relu")(board)
        logits = nn.Dense(9)(h)
        value = jnp.tanh(nn.Dense(1)(h))[..., 0]
        return logits, value


@dataclasses.dataclass(frozen=True)
class AlphaZeroConfig:
    """Self-play training of a policy-value network with Gumbel MCTS targets, until verified.

    Every field affects the trained weights (the cap through the learning-rate schedule,
    `check_every` through where training stops), so all of them key the weights cache.
    """

    iterations: int = 60
    """The cap on self-play + training rounds; training stops earlier, at the first clean
    exhaustive check, and raises `PerfectPlayNotReachedError` if the cap comes first. The
    learning rate decays over the cap."""
    games_per_iteration: int = 128
    """Games played at once per round (also the batch of every search call)."""
    num_simulations: int = 32
    """Search simulations per move, in self-play and in play."""
    sgd_steps: int = 32
    """Adam steps on each round's games."""
    learning_rate: float = 3e-3
    """Adam's initial step size; it decays linearly to a tenth of it over the round cap."""
    weight_decay: float = 1e-4
    """L2 penalty on the weights."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the network's hidden layers."""
    random_opening: int = 4
    """Each game opens with 0..random_opening uniformly random moves, not trained on, so
    self-play reaches the positions a strong player avoids (the ones its opponent will
    steer towards); 0 for pure self-play."""
    check_every: int = 1
    """Run the exhaustive never-lose check (as X and as O) after every this many rounds, and
    after the last round of the cap."""

    def __post_init__(self) -> None:
        owner = "AlphaZeroConfig"
        checked: dict[str, Any] = {
            name: check_int(getattr(self, name), name, owner=owner, low=1)
            for name in ("iterations", "games_per_iteration", "num_simulations", "sgd_steps")
        }
        checked["random_opening"] = check_int(
            self.random_opening, "random_opening", owner=owner, low=0, high=8
        )
        checked["check_every"] = check_int(self.check_every, "check_every", owner=owner, low=1)
        checked["learning_rate"] = check_number(
            self.learning_rate, "learning_rate", owner=owner, low=0, low_open=True
        )
        checked["weight_decay"] = check_number(
            self.weight_decay, "weight_decay", owner=owner, low=0
        )
        checked["hidden_sizes"] = check_int_sequence(
            self.hidden_sizes, "hidden_sizes", owner=owner, low=1
        )
        # plain Python values: numpy scalars would change the config's hash and its JSON
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def net(self) -> PolicyValueNet:
        """The network this config describes."""
        return PolicyValueNet(hidden_sizes=self.hidden_sizes)


# ---------------------------------------------------------------------- search
def _evaluate(net: PolicyValueNet, params: Any, node: Node) -> tuple[jax.Array, jax.Array]:
    logits, value = net.apply(params, node.board.astype(jnp.float32))
    logits = jnp.where(node.board == 0, logits, _NEG)
    return logits, jnp.where(node.done, 0.0, value)


@functools.partial(jax.jit, static_argnames=("net", "num_simulations"))
def _search(
    params: Any,
    boards: jax.Array,
    key: jax.Array,
    gumbel_scale: jax.Array,
    net: PolicyValueNet,
    num_simulations: int,
) -> tuple[jax.Array, jax.Array]:
    """Gumbel MCTS guided by the network from canonical boards [B, 9] (none finished).

    Returns:
      `(action [B], action_weights [B, 9])`: the move to play and the improved policy.
    """

    def recurrent_fn(params, key, action, embedding: Node):
        del key
        nxt, reward, done = jax.vmap(step_canonical)(embedding, action)
        logits, value = _evaluate(net, params, nxt)
        out = mctx.RecurrentFnOutput(
            reward=reward,
            discount=jnp.where(done, 0.0, -1.0).astype(jnp.float32),
            prior_logits=logits,
            value=value,
        )
        return out, nxt

    node = Node(board=boards.astype(jnp.int8), done=jnp.zeros(boards.shape[:1], bool))
    logits, value = _evaluate(net, params, node)
    root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=node)
    out = mctx.gumbel_muzero_policy(
        params=params,
        rng_key=key,
        root=root,
        recurrent_fn=recurrent_fn,
        num_simulations=num_simulations,
        invalid_actions=boards != 0,
        max_num_considered_actions=9,
        gumbel_scale=gumbel_scale,
    )
    return out.action, out.action_weights


_step_batch = jax.jit(jax.vmap(step_canonical))


# ---------------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class Verification:
    """The exhaustive never-lose check of a deterministic agent (`verify_agent`)."""

    as_x: dict[str, int]
    """`lines_of_play` counts with the agent as X: lines, wins, draws, losses."""
    as_o: dict[str, int]
    """The same with the agent as O."""
    seconds: float
    """Wall-clock time of the check."""

    @property
    def losses(self) -> int:
        """Opponent lines the agent loses, as X and as O together."""
        return int(self.as_x["losses"] + self.as_o["losses"])

    @property
    def passed(self) -> bool:
        """True when no line of the opponent's play beats the agent, as X or as O."""
        return self.losses == 0

    def describe(self) -> str:
        """One line: the losses out of the lines, per side."""
        return (
            f"lost {self.as_x['losses']} of {self.as_x['lines']} lines as X and "
            f"{self.as_o['losses']} of {self.as_o['lines']} as O"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for an agent's `meta`)."""
        return {"as_x": dict(self.as_x), "as_o": dict(self.as_o), "seconds": self.seconds}


def verify_agent(agent: Any, *, seed: int = 0) -> Verification:
    """Check an agent against every line of its opponent's play, as X and as O.

    The exhaustive check of tests/games/test_mcts.py: `frozen_agent` records the agent's move
    at every position its opponent's lines reach (each layer searched as one batch), then
    `lines_of_play` walks every line. For the noise-free `AlphaZeroAgent` one seed covers all
    of its play; for a stochastic agent it checks one sample of its choices.

    Args:
      agent: has `act_batch(boards, players, *, key)` (an `AlphaZeroAgent` or `MCTSAgent`).
      seed: seeds the searches.

    Returns:
      A `Verification`; `passed` when the agent loses no line.
    """
    start = time.perf_counter()
    counts = {p: lines_of_play(frozen_agent(agent, p, seed=seed), p) for p in (1, -1)}
    return Verification(as_x=counts[1], as_o=counts[-1], seconds=time.perf_counter() - start)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train_alphazero` returns."""

    __repr__ = summary_repr

    params: Any
    """The trained network weights."""
    config: AlphaZeroConfig
    """The config trained with."""
    losses: np.ndarray
    """float [rounds]: the mean loss of each round's last Adam step."""
    seconds: float
    """Wall-clock training time, compilation and checks included."""
    rounds: int
    """Rounds trained: where the first clean check stopped training (or the callback)."""
    verification: Verification
    """The last exhaustive check, run on `params`."""
    checks: int
    """How many exhaustive checks ran."""
    check_seconds: float
    """Wall-clock time spent in the checks (part of `seconds`)."""
    seed: int
    """The seed trained with."""

    @property
    def verified(self) -> bool:
        """True when `params` passed the exhaustive check (always, unless a callback stopped
        training before a clean check)."""
        return self.verification.passed


def _selfplay(
    params: Any, key: jax.Array, config: AlphaZeroConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Play a batch of games; returns boards, policy targets, value targets and the mask."""
    games = config.games_per_iteration
    node = Node(board=jnp.zeros((games, 9), jnp.int8), done=jnp.zeros((games,), bool))
    key, open_key = jax.random.split(key)
    opening = jax.random.randint(open_key, (games,), 0, config.random_opening + 1, jnp.int32)
    boards, targets, active, rewards, ends = [], [], [], [], []
    for t in range(9):
        key, sub, rand_key = jax.random.split(key, 3)
        board = jnp.where(node.done[:, None], 0, node.board)  # finished games: any legal board
        action, weights = _search(params, board, sub, 1.0, config.net, config.num_simulations)
        random_move = jax.random.categorical(
            rand_key, jnp.where(node.board == 0, 0.0, _NEG), axis=-1
        )
        action = jnp.where(t < opening, random_move, action)
        boards.append(node.board)
        targets.append(weights)
        active.append(~node.done & (t >= opening))
        node, reward, done = _step_batch(node, action)
        rewards.append(reward)
        ends.append(done)
    boards_np = np.asarray(jnp.stack(boards), np.float32)  # [9, G, 9]
    active_np = np.asarray(jnp.stack(active))
    rewards_np = np.asarray(jnp.stack(rewards))
    ends_np = np.asarray(jnp.stack(ends))
    z = np.zeros((9, games), np.float32)
    nxt = np.zeros(games, np.float32)
    for t in range(8, -1, -1):  # the outcome for each ply's mover
        ended_here = active_np[t] & ends_np[t]
        z[t] = np.where(ended_here, rewards_np[t], -nxt)
        nxt = z[t]
    return boards_np, np.asarray(jnp.stack(targets)), z, active_np.astype(np.float32)


def _loss(params, net, batch, weight_decay):
    boards, targets, z, mask = batch
    logits, value = net.apply(params, boards)
    logits = jnp.where(boards == 0, logits, _NEG)
    ce = -jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1)
    mse = (value - z) ** 2
    denom = jnp.maximum(jnp.sum(mask), 1.0)
    l2 = sum(jnp.sum(w**2) for w in jax.tree.leaves(params))
    return jnp.sum((ce + mse) * mask) / denom + weight_decay * l2


@functools.partial(jax.jit, static_argnames=("net", "tx", "steps", "weight_decay"))
def _train_steps(params, opt_state, batch, net, tx, steps, weight_decay):
    def body(carry, _):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(_loss)(params, net, batch, weight_decay)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), None, length=steps)
    return params, opt_state, losses[-1]


def init_params(config: AlphaZeroConfig, key: jax.Array) -> Any:
    """Fresh network weights for `config`."""
    return config.net.init(key, jnp.zeros((1, 9), jnp.float32))


def train_alphazero(
    config: AlphaZeroConfig | None = None,
    *,
    seed: int = 0,
    callback: Callable[[int, Any], bool] | None = None,
) -> TrainResult:
    """Train a policy-value network by self-play until it provably never loses (see the module).

    After every `config.check_every` rounds (and after the cap's last round) the agent is
    checked against every line of its opponent's play as X and as O (`verify_agent`);
    training stops at the first check with no loss.

    Args:
      config: the round cap, check interval and hyperparameters (default `AlphaZeroConfig()`).
      seed: seeds the weights and the self-play.
      callback: optional `callback(round_index, params) -> bool`, called after each round's
        update (round_index counts from 0); returning True stops training there, after one
        more check, and returns the result whatever it shows (see `TrainResult.verified`).

    Returns:
      A `TrainResult` with the weights, per-round losses, the rounds trained and the last
      check; `verified` is True unless the callback stopped training.

    Raises:
      TypeError: `config` is not an `AlphaZeroConfig`, or `seed` is not an int.
      PerfectPlayNotReachedError: the cap (`config.iterations`) was reached and the last
        check still found lost lines; raise `iterations`, `num_simulations` or
        `games_per_iteration`.
    """
    config = AlphaZeroConfig() if config is None else config
    if not isinstance(config, AlphaZeroConfig):
        raise TypeError(f"config must be an AlphaZeroConfig, got {type(config).__name__}.")
    seed = check_seed(seed, "seed")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}.")
    start = time.perf_counter()
    key = jax.random.key(seed)
    key, init_key = jax.random.split(key)
    params = init_params(config, init_key)
    tx = _optimizer(config)
    opt_state = tx.init(params)
    losses: list[float] = []
    verification: Verification | None = None
    checks, check_seconds, stopped = 0, 0.0, False
    for it in range(config.iterations):
        key, sub = jax.random.split(key)
        boards, targets, z, mask = _selfplay(params, sub, config)
        batch = tuple(jnp.asarray(a.reshape(-1, *a.shape[2:])) for a in (boards, targets, z, mask))
        params, opt_state, loss = _train_steps(
            params, opt_state, batch, config.net, tx, config.sgd_steps, config.weight_decay
        )
        losses.append(float(loss))
        rounds = it + 1
        stopped = bool(callback is not None and callback(it, params))
        if stopped or rounds % config.check_every == 0 or rounds == config.iterations:
            verification = verify_agent(AlphaZeroAgent(params, config))
            checks += 1
            check_seconds += verification.seconds
            if stopped or verification.passed:
                break
    if verification is None:  # cannot happen: the cap's last round always checks
        raise RuntimeError("train_alphazero ran no exhaustive check; please report this bug.")
    if not (stopped or verification.passed):
        raise PerfectPlayNotReachedError(
            f"AlphaZero training reached its cap of {config.iterations} rounds "
            f"(AlphaZeroConfig.iterations) without a clean exhaustive check: after round "
            f"{len(losses)} the agent still {verification.describe()} (seed {seed}, "
            f"{config.num_simulations} simulations, {config.games_per_iteration} games per "
            f"round). Raise iterations (e.g. iterations={2 * config.iterations}), or "
            "num_simulations / games_per_iteration, or try another seed.",
            rounds=config.iterations,
            verification=verification,
        )
    return TrainResult(
        params=params,
        config=config,
        losses=np.asarray(losses),
        seconds=time.perf_counter() - start,
        rounds=len(losses),
        verification=verification,
        checks=checks,
        check_seconds=check_seconds,
        seed=int(seed),
    )


@functools.lru_cache(maxsize=8)
def _optimizer(config: AlphaZeroConfig) -> optax.GradientTransformation:
    steps = config.iterations * config.sgd_steps
    schedule = linear_schedule(config.learning_rate, 0.1 * config.learning_rate, steps)
    return make_optimizer("adam", schedule)


# ---------------------------------------------------------------------- the agent
class AlphaZeroAgent:
    """Plays the move of a noise-free Gumbel search guided by the trained network.

    Attributes:
      kind: "alphazero".
      params: the network weights.
      config: the `AlphaZeroConfig` (its `num_simulations` is the play budget).
      meta: training facts when trained by `make_alphazero_agent` (seed, rounds, seconds,
        losses, the exhaustive check's counts, the cache key) or loaded with them.
    """

    kind = "alphazero"

    def __init__(
        self, params: Any, config: AlphaZeroConfig, *, meta: dict[str, Any] | None = None
    ) -> None:
        self.params = params
        self.config = config
        self.meta = dict(meta or {})

    def __repr__(self) -> str:
        return f"AlphaZeroAgent({self.config})"

    def act_batch(self, boards: Any, players: Any, *, key: jax.Array | None = None) -> np.ndarray:
        """The agent's move on each of many positions (searched `games_per_iteration` at a time).

        Args:
          boards: int [B, 9] boards (0 empty, 1 X, -1 O), each checked like `act`'s.
          players: int [B], the player to move on each.
          key: unused by the noise-free search; accepted for the batched-agent contract.

        Returns:
          int64 [B]: the cell chosen on each board.
        """
        b, p = check_positions(boards, players)
        canon = (b * p[:, None]).astype(np.int8)
        size = self.config.games_per_iteration
        out = np.empty(len(canon), np.int64)
        key = jax.random.key(0) if key is None else key
        for start in range(0, len(canon), size):
            chunk = canon[start : start + size]
            padded = np.zeros((size, 9), np.int8)
            padded[: len(chunk)] = chunk
            action, _ = _search(
                self.params,
                jnp.asarray(padded),
                key,
                0.0,
                self.config.net,
                self.config.num_simulations,
            )
            out[start : start + len(chunk)] = np.asarray(action)[: len(chunk)]
        return out

    def act(self, board: Any, player: int, *, rng: np.random.Generator | None = None) -> int:
        """The search's move on `board` for `player` (deterministic; `rng` is not needed).

        Args:
          board: 9 cells, 0 empty, 1 X, -1 O, row by row (checked by `check_position`).
          player: 1 (X) or -1 (O), the player to move.
          rng: accepted for the agent contract; the noise-free search draws nothing.

        Returns:
          A cell 0-8 that is empty on `board`.
        """
        cells = check_position(board, player)
        if cells.count(0) == 1:
            return cells.index(0)
        return int(self.act_batch([cells], [player])[0])

    def save(self, path: str | os.PathLike) -> Path:
        """Write the config and weights as msgpack (atomically; no pickle).

        Returns:
          The path written; load it with `make_agent("alphazero", checkpoint=path)`.
        """
        config = dataclasses.asdict(self.config)
        blob = serialization.msgpack_serialize(
            {
                "format": _FORMAT,
                "config": json.dumps(config),
                "meta": json.dumps(self.meta),
                "params": serialization.to_state_dict(self.params),
            }
        )
        with atomic_open(path, "wb") as f:
            f.write(blob)
        return Path(path)


def load_alphazero(path: str | os.PathLike) -> AlphaZeroAgent:
    """Load an agent written by `AlphaZeroAgent.save`.

    Args:
      path: the msgpack file.

    Returns:
      An `AlphaZeroAgent` (not re-checked; `verify_agent(agent)` checks it).

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: the file is not a complete AlphaZero checkpoint (damaged, truncated, or
        written by something else).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"no AlphaZero checkpoint at {str(p)!r}; train one with make_agent('alphazero') "
            "and agent.save(path), or leave checkpoint out to train on demand."
        )
    try:
        data = serialization.msgpack_restore(p.read_bytes())
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise ValueError(
            f"{str(p)!r} is not an AlphaZero checkpoint (msgpack written by agent.save): {e}"
        ) from e
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError(
            f"{str(p)!r} is not an AlphaZero checkpoint (no format {_FORMAT!r}); "
            "write it with AlphaZeroAgent.save(path)."
        )
    try:
        fields = json.loads(data["config"])
        fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
        config = AlphaZeroConfig(**fields)
        meta = json.loads(data["meta"])
        template = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
        params = serialization.from_state_dict(template, data["params"])  # shapes checked next
        shapes_ok = jax.tree.all(
            jax.tree.map(
                lambda t, v: np.shape(v) == t.shape and bool(np.all(np.isfinite(v))),
                template,
                params,
            )
        )
    except Exception as e:  # missing keys, bad JSON, wrong fields or tree: all "damaged"
        raise ValueError(
            f"{str(p)!r} is a damaged AlphaZero checkpoint ({type(e).__name__}: {e}); "
            "write it again with AlphaZeroAgent.save(path)."
        ) from e
    if not shapes_ok or not isinstance(meta, dict):
        raise ValueError(
            f"{str(p)!r} is a damaged AlphaZero checkpoint (weights of the wrong shape or not "
            "finite); write it again with AlphaZeroAgent.save(path)."
        )
    return AlphaZeroAgent(params, config, meta=meta)


# ---------------------------------------------------------------------- make_agent + cache
def _cache_key(config: AlphaZeroConfig, seed: int) -> dict[str, Any]:
    """Everything that decides the trained weights: the config, the seed, the code version."""
    key = {
        "format": _FORMAT,
        "bellmax": bellmax.__version__,
        "seed": int(seed),
        "config": dataclasses.asdict(config),
    }
    return json.loads(json.dumps(key))  # as it reads back from a file (tuples as lists)


def cache_path(config: AlphaZeroConfig, *, seed: int = 0) -> Path:
    """Where `make_alphazero_agent` caches the verified weights for `config` and `seed`.

    Args:
      config: the training config (every field is part of the key).
      seed: the training seed.

    Returns:
      `user_cache_dir() / "weights" / "alphazero-<hash>.msgpack"`, the hash taken over the
      config, the seed and the bellmax version (the file may not exist).
    """
    if not isinstance(config, AlphaZeroConfig):
        raise TypeError(f"config must be an AlphaZeroConfig, got {type(config).__name__}.")
    text = json.dumps(_cache_key(config, seed), sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:24]
    return user_cache_dir() / "weights" / f"alphazero-{digest}.msgpack"


def _load_cached(path: Path, config: AlphaZeroConfig, seed: int) -> AlphaZeroAgent | None:
    """The cached agent at `path` if it is intact, for this key, and passes the check again;
    else None (with a warning saying why, except when there is no file)."""
    if not path.exists():
        return None
    try:
        agent = load_alphazero(path)
    except (OSError, ValueError) as e:
        warnings.warn(
            f"ignoring the AlphaZero weights cache {str(path)!r} ({e}); retraining and "
            "rewriting it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    if agent.config != config or agent.meta.get("cache_key") != _cache_key(config, seed):
        warnings.warn(
            f"ignoring the AlphaZero weights cache {str(path)!r}: it was written for another "
            "config, seed or bellmax version; retraining and rewriting it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    check = verify_agent(agent)
    if not check.passed:  # another CPU or JAX version plays these weights differently
        warnings.warn(
            f"the cached AlphaZero weights {str(path)!r} {check.describe()} on this machine; "
            "retraining and rewriting them.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    agent.meta["verification"] = check.to_dict()
    agent.meta["from_cache"] = str(path)
    return agent


def make_alphazero_agent(
    *,
    seed: int = 0,
    iterations: int = AlphaZeroConfig.iterations,
    games_per_iteration: int = AlphaZeroConfig.games_per_iteration,
    num_simulations: int = AlphaZeroConfig.num_simulations,
    checkpoint: str | os.PathLike | None = None,
    cache: bool = True,
) -> AlphaZeroAgent:
    """`make_agent("alphazero", ...)`: an agent verified never to lose, trained or cached.

    Without `checkpoint`, trains with `train_alphazero` until the exhaustive check passes
    (`iterations` is the round cap) and caches the weights under
    `bellmax.core.paths.user_cache_dir() / "weights"` (`cache_path`); a later call with the
    same options loads them and checks them again instead of training. A damaged, stale or
    unwritable cache only costs a warning and a retrain.

    Args:
      seed: seeds the weights and the self-play.
      iterations: the round cap (`AlphaZeroConfig.iterations`).
      games_per_iteration: games per round, also the search batch.
      num_simulations: search simulations per move.
      checkpoint: a file written by `agent.save`, loaded as it is (not trained, not
        re-checked: `verify_agent(agent)` checks it).
      cache: False trains afresh and neither reads nor writes the cache.

    Returns:
      An `AlphaZeroAgent`; `agent.meta` holds the rounds trained and the check's counts.

    Raises:
      PerfectPlayNotReachedError: training reached the cap without a clean check.
    """
    if checkpoint is not None:
        return load_alphazero(checkpoint)
    cache = check_bool(cache, "cache")
    seed = check_seed(seed, "seed")
    config = AlphaZeroConfig(
        iterations=iterations,
        games_per_iteration=games_per_iteration,
        num_simulations=num_simulations,
    )
    path: Path | None = None
    if cache:
        try:
            path = cache_path(config, seed=seed)
        except RuntimeError as e:  # no home directory: train without the cache
            warnings.warn(f"not caching AlphaZero weights: {e}", RuntimeWarning, stacklevel=2)
        if path is not None:
            agent = _load_cached(path, config, int(seed))
            if agent is not None:
                return agent
    result = train_alphazero(config, seed=int(seed))
    meta = {
        "train_seed": int(seed),
        "rounds": result.rounds,
        "checks": result.checks,
        "seconds": result.seconds,
        "losses": result.losses.tolist(),
        "verification": result.verification.to_dict(),
        "cache_key": _cache_key(config, int(seed)),
    }
    agent = AlphaZeroAgent(result.params, config, meta=meta)
    if path is not None:
        try:
            agent.save(path)
        except OSError as e:  # a read-only or full cache only costs the next call a retrain
            warnings.warn(
                f"could not cache the AlphaZero weights at {str(path)!r} ({e}); set "
                "BELLMAX_CACHE_DIR to a writable folder to keep them.",
                RuntimeWarning,
                stacklevel=2,
            )
    return agent
