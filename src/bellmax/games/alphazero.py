"""AlphaZero-style tic-tac-toe: a policy-value network trained from self-play with MCTS targets.

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
- **Training**: `sgd_steps` Adam steps per iteration on that iteration's games, loss =
  cross-entropy to the policy target + squared error of the value (+ weight decay).
- **Playing** (`AlphaZeroAgent.act`): the same search without noise (`gumbel_scale=0`), so the
  agent is deterministic and a single seed's exhaustive check covers all of its play.

The default budget (`AlphaZeroConfig()`: 60 iterations of 128 games at 32 simulations)
trains in about 30-50 s on one CPU core, about half of it compiling the search once. One search
program (fixed batch of `games_per_iteration` boards) serves self-play and play, so training
and checking compile it once. Agents save to / load from a msgpack file of the config and the
weights (`flax.serialization`, written atomically; never pickle).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import mctx
import numpy as np
import optax
from flax import serialization

from bellmax.core.io import atomic_open
from bellmax.deep.networks import MLP, check_hidden_sizes
from bellmax.deep.optim import linear_schedule, make_optimizer
from bellmax.games.mcts import Node, step_canonical
from bellmax.games.tictactoe import check_position, check_positions

__all__ = [
    "AlphaZeroAgent",
    "AlphaZeroConfig",
    "PolicyValueNet",
    "TrainResult",
    "load_alphazero",
    "make_alphazero_agent",
    "train_alphazero",
]

_FORMAT = "bellmax-alphazero-v1"
_NEG = -1e9


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
    """Self-play training of a policy-value network with Gumbel MCTS targets."""

    iterations: int = 60
    """Self-play + training rounds (the training budget)."""
    games_per_iteration: int = 128
    """Games played at once per round (also the batch of every search call)."""
    num_simulations: int = 32
    """Search simulations per move, in self-play and in play."""
    sgd_steps: int = 32
    """Adam steps on each round's games."""
    learning_rate: float = 3e-3
    """Adam's initial step size; it decays linearly to a tenth of it over training."""
    weight_decay: float = 1e-4
    """L2 penalty on the weights."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Widths of the network's hidden layers."""
    random_opening: int = 4
    """Each game opens with 0..random_opening uniformly random moves, not trained on, so
    self-play reaches the positions a strong player avoids (the ones its opponent will
    steer towards); 0 for pure self-play."""

    def __post_init__(self) -> None:
        for name in ("iterations", "games_per_iteration", "num_simulations", "sgd_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise ValueError(f"AlphaZeroConfig.{name} must be a positive integer, got {v!r}.")
        ro = self.random_opening
        if isinstance(ro, bool) or not isinstance(ro, int | np.integer) or not 0 <= ro <= 8:
            raise ValueError(f"AlphaZeroConfig.random_opening must be an int in 0..8, got {ro!r}.")
        for name in ("learning_rate", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"AlphaZeroConfig.{name} must be a number >= 0, got {v!r}.")
        if not self.learning_rate > 0:
            raise ValueError(
                f"AlphaZeroConfig.learning_rate must be > 0, got {self.learning_rate}."
            )
        check_hidden_sizes(self.hidden_sizes, field="AlphaZeroConfig.hidden_sizes")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))

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
class TrainResult:
    """What `train_alphazero` returns."""

    params: Any
    """The trained network weights."""
    config: AlphaZeroConfig
    """The config trained with."""
    losses: np.ndarray
    """float [iterations]: the mean loss of each round's last Adam step."""
    seconds: float
    """Wall-clock training time, compilation included."""


def _selfplay(
    params: Any, key: jax.Array, config: AlphaZeroConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Play a batch of games; returns boards, policy targets, value targets and the mask."""
    games = config.games_per_iteration
    node = Node(board=jnp.zeros((games, 9), jnp.int8), done=jnp.zeros((games,), bool))
    key, open_key = jax.random.split(key)
    opening = jax.random.randint(open_key, (games,), 0, config.random_opening + 1)
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
    config: AlphaZeroConfig | None = None, *, seed: int = 0, callback: Any = None
) -> TrainResult:
    """Train a policy-value network by self-play with Gumbel MCTS targets (see the module).

    Args:
      config: the budget and hyperparameters (default `AlphaZeroConfig()`).
      seed: seeds the weights and the self-play.
      callback: optional `callback(iteration, params) -> bool`, called after each round;
        returning True stops training early (the bench uses it to time perfect play).

    Returns:
      A `TrainResult` with the weights, per-round losses and the training time.
    """
    config = AlphaZeroConfig() if config is None else config
    if not isinstance(config, AlphaZeroConfig):
        raise TypeError(f"config must be an AlphaZeroConfig, got {type(config).__name__}.")
    start = time.perf_counter()
    key = jax.random.key(seed)
    key, init_key = jax.random.split(key)
    params = init_params(config, init_key)
    tx = _optimizer(config)
    opt_state = tx.init(params)
    losses = []
    for it in range(config.iterations):
        key, sub = jax.random.split(key)
        boards, targets, z, mask = _selfplay(params, sub, config)
        batch = tuple(jnp.asarray(a.reshape(-1, *a.shape[2:])) for a in (boards, targets, z, mask))
        params, opt_state, loss = _train_steps(
            params, opt_state, batch, config.net, tx, config.sgd_steps, config.weight_decay
        )
        losses.append(float(loss))
        if callback is not None and callback(it, params):
            break
    return TrainResult(
        params=params,
        config=config,
        losses=np.asarray(losses),
        seconds=time.perf_counter() - start,
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
      meta: training facts (seed, seconds, losses) when trained here.
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
      An `AlphaZeroAgent`.
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
    fields = json.loads(data["config"])
    fields["hidden_sizes"] = tuple(fields["hidden_sizes"])
    config = AlphaZeroConfig(**fields)
    template = init_params(config, jax.random.key(0))
    params = serialization.from_state_dict(template, data["params"])
    return AlphaZeroAgent(params, config, meta=json.loads(data["meta"]))


def make_alphazero_agent(
    *,
    seed: int = 0,
    iterations: int = AlphaZeroConfig.iterations,
    games_per_iteration: int = AlphaZeroConfig.games_per_iteration,
    num_simulations: int = AlphaZeroConfig.num_simulations,
    checkpoint: str | os.PathLike | None = None,
) -> AlphaZeroAgent:
    """`make_agent("alphazero", ...)`: load `checkpoint`, or train on demand with this budget.

    The default budget trains in about 30-50 s on one core (see `AlphaZeroConfig`).
    """
    if checkpoint is not None:
        return load_alphazero(checkpoint)
    config = AlphaZeroConfig(
        iterations=iterations,
        games_per_iteration=games_per_iteration,
        num_simulations=num_simulations,
    )
    result = train_alphazero(config, seed=seed)
    meta = {"train_seed": seed, "seconds": result.seconds, "losses": result.losses.tolist()}
    return AlphaZeroAgent(result.params, config, meta=meta)
