"""POMCP: Monte Carlo tree search over histories (Silver & Veness 2010, "Monte-Carlo planning in
large POMDPs", NeurIPS), jitted.

Each simulation samples a start state from the root belief, walks down the tree of action /
observation histories choosing actions by UCB1 (`Q + c sqrt(log N(h) / N(h, a))`, untried
actions first), samples the next state, observation and reward from the model, adds the first
new history node it reaches, estimates the rest by a rollout (until
`max_depth`; uniformly random actions, or the MDP's policy: `POMCPConfig.rollout`), and
backs the discounted return up the path. After `num_simulations` the action
with the highest mean return at the root is taken.

The tree lives in fixed arrays (one node per simulation at most), the search is one
`lax.fori_loop`, and the planner `(belief, key) -> action` is a pure function: jit it, `vmap`
it over beliefs, or hand it to `bellmax.pomdp.simulate` (the agent then keeps the exact
belief). The root samples its states from the belief it is given: a probability vector over
the model's states, which for POMCP's own agent is its particle set as a histogram.

POMCP's particle belief (`simulate_pomcp`, `planner.update`): every simulation records its
first step from the root, `(action, observation, next state)` (`SearchTree.root_samples`);
after the real action `a` and observation `o` the next root belief is the next states of
the simulations that went through `(a, o)`, the paper's `B(hao)`, with no Bayes update.
When fewer than `min_particles` did, the set is topped up by rejection sampling (draw a
state from the current belief, step it with `a`, keep it if it emits `o`: Silver & Veness's
particle reinvigoration for a model known only as a simulator); if still no particle
remains, the exact Bayes update of the current belief stands in (particle deprivation).

Tree reuse (`POMCPConfig.reuse_tree`, on by default): after the real `(a, o)` the agent keeps
the subtree under the root's child `(a, o)` as the next search's start, as Silver & Veness
do, so the next decision's statistics begin with the simulations that already passed
through the history that happened (`SearchTree.reroot`). Each search still adds
`num_simulations` simulations; the agent's tree then holds up to `2 * num_simulations + 1`
nodes, and a search that finds it full keeps backing up along existing nodes without adding
any. The planner called on a belief alone (`planner(belief, key)`, or `bellmax.pomdp.simulate`
with the exact belief) has no history to keep and always starts from an empty tree.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr
from bellmax.pomdp.belief import SimulationResult, belief_update_batch, check_belief, x64
from bellmax.pomdp.bounds import check_discounted
from bellmax.pomdp.model import TabularPOMDP, check_reward_scale

__all__ = ["POMCPConfig", "SearchTree", "make_pomcp", "pomcp_search", "simulate_pomcp"]

#: `POMCPConfig.rollout`'s choices.
ROLLOUTS = ("random", "mdp")

#: Most uniforms drawn in one PRNG call (a block of simulations' worth; 4 MB in float32).
_UNIFORMS_PER_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class POMCPConfig:
    """POMCP's knobs."""

    num_simulations: int = 1000
    """Simulations per decision."""
    max_depth: int = 100
    """Deepest step of a simulation, tree walk and rollout together."""
    exploration: float | None = None
    """UCB1's constant c; default the one-step reward range max R - min R, a cheap stand-in
    for Silver & Veness's choice (the range of *returns* seen in runs with c = 0, ~2000 on
    Tiger). On Tiger neither makes POMCP reliable at a few thousand simulations: it seldom
    opens the safe door even when the tiger's side is 99% known (tests/pomdp/test_pomcp.py)."""

    min_particles: int = 100
    """The particle belief's smallest size: a child `(a, o)` of the root that fewer
    simulations went through is topped up by `num_simulations` rejection-sampling draws."""
    reuse_tree: bool = True
    """`simulate_pomcp`'s agent keeps the subtree under the real `(action, observation)` for
    its next search (Silver & Veness); False rebuilds the tree at every decision."""
    rollout: str = "random"
    """How a simulation goes on past the tree: `"random"`, uniformly random actions (Silver &
    Veness's default, and pomdp-py's); `"mdp"`, the optimal actions of the MDP underneath
    for the simulated state (a fully observed rollout, as POMDPs.jl's `FORollout`: the
    QMDP policy, found once by value iteration). A rollout that sees the state is optimistic
    about what information is worth, but random rollouts can be far worse: on the tiger, each
    random rollout opens a door with the tiger behind it a third of the time, so a search
    that delays its rollout by listening looks better than one that opens the safe door."""

    def __post_init__(self) -> None:
        check_int(self.num_simulations, "num_simulations", owner="POMCPConfig", low=1)
        check_int(self.max_depth, "max_depth", owner="POMCPConfig", low=1)
        check_int(self.min_particles, "min_particles", owner="POMCPConfig", low=0)
        if self.rollout not in ROLLOUTS:
            raise ValueError(
                f"POMCPConfig.rollout must be one of {', '.join(map(repr, ROLLOUTS))}, got "
                f"{self.rollout!r}."
            )
        if not isinstance(self.reuse_tree, bool):
            raise TypeError(
                f"POMCPConfig.reuse_tree must be True or False, got {self.reuse_tree!r}."
            )
        if self.exploration is not None:
            check_number(self.exploration, "exploration", owner="POMCPConfig", low=0)


@struct.dataclass
class SearchTree:
    """The history tree after a search (node 0 is the root)."""

    __repr__ = summary_repr

    visits: jax.Array
    """`N(h)` `[nodes]`."""
    action_visits: jax.Array
    """`N(h, a)` `[nodes, A]`."""
    q: jax.Array
    """Mean discounted return after `(h, a)` `[nodes, A]`."""
    children: jax.Array
    """Child node of `(h, a, o)`, -1 where none `[nodes, A, O]`."""
    num_nodes: jax.Array
    """Nodes in use."""
    root_samples: jax.Array
    """`[simulations, 3]` each simulation's first step from the root: `(action,
    observation, next state)`; the next states of those through `(a, o)` are the particles
    of the root's child `(a, o)`."""

    def reroot(self, action, observation) -> SearchTree:
        """The subtree under the root's child `(action, observation)` as a tree of its own
        (that child becomes node 0), with the same capacity; an empty tree if no
        simulation went through `(action, observation)`. Jittable.

        Nodes are numbered in the order they were made, so a parent's index is below its
        children's: the subtree's nodes keep their order, the child first. Membership is
        found by pointer doubling over the parent links (`log2(nodes)` gathers)."""
        size, A, Z = self.children.shape
        idx = jnp.arange(size, dtype=jnp.int32)
        child = self.children[0, action, observation]
        kids = self.children.reshape(size, A * Z)
        # parent of each node (the root's, and unused nodes', is node 0)
        parent = (
            jnp.zeros(size, jnp.int32)
            .at[jnp.where(kids >= 0, kids, size)]
            .set(jnp.broadcast_to(idx[:, None], kids.shape), mode="drop")
        )
        inside, up = idx == child, parent  # child < 0: nothing inside
        for _ in range(max(1, (size - 1).bit_length())):
            inside, up = inside | inside[up], up[up]
        new_id = jnp.cumsum(inside, dtype=jnp.int32) - 1
        old = (
            jnp.full(size, size, jnp.int32)
            .at[jnp.where(inside, new_id, size)]
            .set(idx, mode="drop")
        )  # the old node at each new index; `size` (none) past the subtree

        def take(x, fill):
            return x.at[old].get(mode="fill", fill_value=fill)

        kids = take(self.children, -1)
        return self.replace(
            visits=take(self.visits, 0),
            action_visits=take(self.action_visits, 0),
            q=take(self.q, 0),
            children=jnp.where(kids >= 0, new_id[jnp.maximum(kids, 0)], -1),
            num_nodes=jnp.maximum(jnp.sum(inside, dtype=jnp.int32), 1),
            # the old root's first steps say nothing of the new root's: none until a search
            root_samples=jnp.full_like(self.root_samples, -1),
        )


def _draw(u: jax.Array, cdf: jax.Array) -> jax.Array:
    """The index whose CDF interval holds `u * cdf[-1]` (inverse-CDF sampling from a uniform
    `u`): the count of CDF entries at or below it, one vectorised comparison (a binary search
    would be a loop inside the simulation's loop)."""
    return jnp.minimum(jnp.sum(cdf <= u * cdf[-1]), cdf.shape[0] - 1).astype(jnp.int32)


def _sparse_rows(P: np.ndarray, dtype) -> tuple[jax.Array, jax.Array]:
    """Rows of `P[..., n]` as their support: `(index [..., K], cdf [..., K])`, `K` the most
    nonzeros of any row (padded with probability 0), so that a draw compares `K` numbers, not
    `n` (RockSample's moves are deterministic: `K = 1` of 257)."""
    nz = P > 0
    K = max(int(nz.sum(axis=-1).max()), 1)
    order = np.argsort(~nz, axis=-1, kind="stable")[..., :K]  # the nonzeros first, in order
    probs = np.take_along_axis(P, order, axis=-1) * np.take_along_axis(nz, order, axis=-1)
    return jnp.asarray(order, jnp.int32), jnp.asarray(np.cumsum(probs, axis=-1), dtype)


def _draw_row(u: jax.Array, rows: tuple[jax.Array, jax.Array], a, s) -> jax.Array:
    """A draw from row `(a, s)` of a `_sparse_rows` table."""
    index, cdf = rows
    return index[a, s, _draw(u, cdf[a, s])]


def _simulate_once(model, c, max_depth, tree: SearchTree, belief_cdf, us):
    # the model's rows as sparse CDFs (`_sampling_model`, computed once per planner);
    # `us` [max_depth + 1, 3]: every uniform this simulation needs, row d holding (state,
    # observation, rollout action) at depth d (drawn for a block of simulations at once).
    T_rows, O_rows, R, gamma, _, rollout_policy = model
    A = R.shape[1]
    dtype = belief_cdf.dtype
    size = tree.visits.shape[0]
    s0 = _draw(us[max_depth, 0], belief_cdf)
    path_node = jnp.zeros(max_depth, jnp.int32)
    path_act = jnp.zeros(max_depth, jnp.int32)
    path_rew = jnp.zeros(max_depth, dtype)

    def step(s, a, d):
        s2 = _draw_row(us[d, 0], T_rows, a, s)
        return s2, _draw_row(us[d, 1], O_rows, a, s2), R[s, a]

    # The walk only reads the tree (a loop that also wrote it would copy the arrays each
    # step); the one node it adds and the backup along the path are written after it.
    def walk_cond(c_):
        _, _, d, done, *_ = c_
        return (~done) & (d < max_depth)

    def walk(c_):
        node, s, d, _, pn, pa, pr, _, o0, s1 = c_
        n_ha = tree.action_visits[node]
        ucb = tree.q[node] + c * jnp.sqrt(
            jnp.log(jnp.maximum(tree.visits[node], 1)) / jnp.maximum(n_ha, 1)
        )
        a = jnp.argmax(jnp.where(n_ha == 0, 1e30 - jnp.arange(A), ucb)).astype(
            jnp.int32
        )  # untried first
        s2, o, r = step(s, a, d)
        pn, pa, pr = pn.at[d].set(node), pa.at[d].set(a), pr.at[d].set(r)
        child = tree.children[node, a, o]
        first = d == 0  # the root's step: its (observation, next state) are recorded
        o0, s1 = jnp.where(first, o, o0), jnp.where(first, s2, s1)
        return child, s2, d + 1, child < 0, pn, pa, pr, o, o0, s1

    init = (
        jnp.int32(0),
        s0,
        jnp.int32(0),
        jnp.bool_(False),
        path_node,
        path_act,
        path_rew,
        jnp.int32(0),
        jnp.int32(0),
        s0,
    )
    child, s, depth, new, pn, pa, pr, o, o0, s1 = jax.lax.while_loop(walk_cond, walk, init)
    made = new & (tree.num_nodes < size)
    # a full tree (a reused one can be): no node is added, the path is still backed up
    leaf = jnp.where(made, tree.num_nodes, jnp.where(new, size, child))
    last = jnp.maximum(depth - 1, 0)
    tree = tree.replace(
        children=tree.children.at[pn[last], pa[last], o].set(
            jnp.where(made, tree.num_nodes, tree.children[pn[last], pa[last], o])
        ),
        num_nodes=tree.num_nodes + made.astype(jnp.int32),
    )

    def roll_cond(c_):
        _, d, *_ = c_
        return d < max_depth

    def roll(c_):
        s, d, ret, disc = c_
        if rollout_policy is None:
            a = jnp.minimum((us[d, 2] * A).astype(jnp.int32), A - 1)
        else:
            a = rollout_policy[s]
        s2, _, r = step(s, a, d)
        return s2, d + 1, ret + disc * r, disc * gamma

    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    _, _, rollout, _ = jax.lax.while_loop(roll_cond, roll, (s, depth, zero, one))
    # the leaf was created (or the depth ran out): count its visit, then back up the path,
    # all depths at once (a path visits each node once, so the scatters never collide):
    # G_d = r_d + gamma r_{d+1} + ... + gamma^{depth-d} rollout.
    tree = tree.replace(
        visits=tree.visits.at[leaf].add((depth < max_depth).astype(jnp.int32), mode="drop")
    )
    ds = jnp.arange(max_depth)
    on = ds < depth
    after = ds[None, :] - ds[:, None]  # k - d
    weights = jnp.where((after >= 0) & on[None, :], gamma ** jnp.maximum(after, 0), 0.0)
    G = weights @ pr + jnp.where(on, gamma ** (depth - ds), 0.0) * rollout
    node = jnp.where(on, pn, size)  # past the path: out of bounds, dropped
    n = tree.action_visits[pn, pa] + 1
    q_new = tree.q[pn, pa] + (G - tree.q[pn, pa]) / n
    tree = tree.replace(
        visits=tree.visits.at[node].add(1, mode="drop"),
        action_visits=tree.action_visits.at[node, pa].set(n, mode="drop"),
        q=tree.q.at[node, pa].set(q_new.astype(tree.q.dtype), mode="drop"),
    )
    return tree, jnp.stack([pa[0], o0, s1])


def _sampling_model(pomdp: TabularPOMDP, dtype, rollout: str = "random") -> tuple:
    """`(T_rows, O_rows, R, gamma, Z, rollout_policy)`: the simulations' sampling tables
    (`_sparse_rows`), the number of observations, and the rollout's action per state (None:
    uniformly random). Needs a concrete model (the support sizes fix shapes)."""
    policy = None
    if rollout == "mdp":
        from bellmax.pomdp.bounds import qmdp

        with jax.ensure_compile_time_eval():  # concrete under an outer jit too
            res = qmdp(pomdp)
            q = np.asarray(res.vectors.alphas)  # [A, S]: the MDP's optimal Q
        if not res.converged:
            warnings.warn(
                "POMCP's MDP rollout policy comes from a value iteration that stopped with "
                f"status {res.status_name}, not converged; its actions may not be the MDP's "
                "optimal ones.",
                stacklevel=3,
            )
        policy = jnp.asarray(q.argmax(axis=0), jnp.int32)
    return (
        _sparse_rows(np.asarray(pomdp.T), dtype),
        _sparse_rows(np.asarray(pomdp.O), dtype),
        jnp.asarray(pomdp.R, dtype),
        pomdp.gamma,
        int(np.shape(pomdp.O)[2]),
        policy,
    )


def _empty_tree(model: tuple, config: POMCPConfig, dtype, nodes: int) -> SearchTree:
    A, Z = model[2].shape[1], model[4]
    return SearchTree(
        visits=jnp.zeros(nodes, jnp.int32),
        action_visits=jnp.zeros((nodes, A), jnp.int32),
        q=jnp.zeros((nodes, A), dtype),
        children=jnp.full((nodes, A, Z), -1, jnp.int32),
        num_nodes=jnp.int32(1),
        root_samples=jnp.zeros((config.num_simulations, 3), jnp.int32),
    )


def _search(
    model: tuple,
    belief: jax.Array,
    key: jax.Array,
    config: POMCPConfig,
    c: float,
    tree: SearchTree | None = None,
):
    if tree is None:  # one node per simulation at most, and the root
        tree = _empty_tree(model, config, belief.dtype, config.num_simulations + 1)
    belief_cdf = jnp.cumsum(belief)
    # The simulations' uniforms are drawn a block at a time, one PRNG call per block (a
    # call per simulation cost a third of the search); blocks hold at most
    # `_UNIFORMS_PER_BLOCK` numbers, so memory stays bounded for any number of simulations.
    D, sims = config.max_depth, config.num_simulations
    per_block = max(1, min(sims, _UNIFORMS_PER_BLOCK // (3 * (D + 1))))
    full, rest = divmod(sims, per_block)
    keys = jax.random.split(key, full + 1)

    def block(count, tree, k, start):
        us = jax.random.uniform(k, (count, D + 1, 3), belief.dtype)

        def body(j, tree):
            tree, first = _simulate_once(model, c, D, tree, belief_cdf, us[j])
            return tree.replace(root_samples=tree.root_samples.at[start + j].set(first))

        return jax.lax.fori_loop(0, count, body, tree)

    tree = jax.lax.fori_loop(
        0, full, lambda b, t: block(per_block, t, keys[b], b * per_block), tree
    )
    return block(rest, tree, keys[full], full * per_block) if rest else tree


def _root_action(tree: SearchTree) -> jax.Array:
    """The action taken after a search: the best mean return among the root's tried ones."""
    n = tree.action_visits[0]
    return jnp.argmax(jnp.where(n > 0, tree.q[0], -jnp.inf))


def _particle_update(model, pomdp, config, tree, belief, action, observation, key):
    """The root child `(action, observation)`'s particles as a belief (module docstring)."""
    T_rows, O_rows = model[0], model[1]
    S, dtype = belief.shape[0], belief.dtype
    smp = tree.root_samples
    hit = (smp[:, 0] == action) & (smp[:, 1] == observation)
    counts = jnp.zeros(S, dtype).at[smp[:, 2]].add(hit.astype(dtype))
    # reinvigoration: candidates drawn from the current belief, kept where they emit o
    us = jax.random.uniform(key, (config.num_simulations, 3), dtype)
    cdf = jnp.cumsum(belief)
    s = jax.vmap(lambda u: _draw(u, cdf))(us[:, 0])
    s2 = jax.vmap(lambda u, x: _draw_row(u, T_rows, action, x))(us[:, 1], s)
    o2 = jax.vmap(lambda u, x: _draw_row(u, O_rows, action, x))(us[:, 2], s2)
    extra = jnp.zeros(S, dtype).at[s2].add((o2 == observation).astype(dtype))
    counts = jnp.where(jnp.sum(counts) < config.min_particles, counts + extra, counts)
    # no particle at all: the exact Bayes update stands in
    a, o = jnp.asarray(action)[None], jnp.asarray(observation)[None]
    exact = belief_update_batch(pomdp, belief[None], a, o).belief[0]
    total = jnp.sum(counts)
    return jnp.where(total > 0, counts / jnp.where(total > 0, total, 1.0), exact)


def pomcp_search(
    pomdp: TabularPOMDP, belief: jax.Array, key: jax.Array, config: POMCPConfig, exploration: float
) -> SearchTree:
    """Build the search tree at `belief` (jit it with `pomdp` and `config` static or closed
    over: the model must be concrete; `make_pomcp` prepares it once for every decision)."""
    check_belief(pomdp, belief, "pomcp_search")
    if not isinstance(exploration, jax.core.Tracer):
        check_number(exploration, "exploration", owner="pomcp_search", low=0)
    model = _sampling_model(pomdp, belief.dtype, config.rollout)
    return _search(model, belief, key, config, exploration)


def make_pomcp(pomdp: TabularPOMDP, config: POMCPConfig = POMCPConfig()) -> Callable:
    """A POMCP planner `(belief [S], key) -> action` (pure and jittable; vmap it freely).

    Args:
      pomdp: the model (`gamma < 1`).
      config: `POMCPConfig`.

    Returns:
      The planner; `planner.search(belief, key, tree=None)` gives the whole `SearchTree`
      (grown from `tree`, e.g. `tree.reroot(a, o)`, when given), and
      `planner.update(tree, belief, action, observation, key)` the next root belief from
      that tree's particles (module docstring; `simulate_pomcp` runs the two in turn).
    """
    check_discounted(pomdp, "make_pomcp")
    if not isinstance(config, POMCPConfig):
        raise TypeError(f"config must be a POMCPConfig, got {type(config).__name__}.")
    R = np.asarray(pomdp.R)
    c = float(R.max() - R.min()) if config.exploration is None else config.exploration
    dtype = jnp.asarray(pomdp.T).dtype
    # the sampling tables once, here (under jit they would be constants folded at compile time)
    model = _sampling_model(pomdp, dtype, config.rollout)
    # The planner's programs read the model from a copy of their own, in their precision,
    # never from the caller's arrays: jax 0.10 keeps the float32 copy of a numpy array that a
    # program compiled with x64 off captured, and hands it to a later float64 program given
    # that same array (`simulate(pomdp, ...)` after `simulate_pomcp` on the same model failed
    # with RuntimeProgramInputMismatch).
    own = jax.tree.map(lambda x: np.array(x, dtype), pomdp)
    search = functools.partial(_search, model, config=config, c=c)
    update = functools.partial(_particle_update, model, own, config)

    def planner(belief: jax.Array, key: jax.Array) -> jax.Array:
        check_belief(pomdp, belief, "the POMCP planner")
        return _root_action(search(jnp.asarray(belief, dtype), key))

    planner.search = search
    planner.update = update
    planner.config = config
    # the agent's tree when it keeps subtrees (module docstring): room for one search's
    # nodes on top of the kept ones
    planner.empty_tree = functools.partial(
        _empty_tree, model, config, dtype, 2 * config.num_simulations + 1
    )
    planner.pomdp = pomdp
    planner.own_model = own  # (the copy above)
    planner.dtype = dtype
    return planner


def simulate_pomcp(
    planner: Callable, key: jax.Array, *, episodes: int = 100, steps: int = 100
) -> SimulationResult:
    """POMCP's own agent on its model: it plans from its particle belief, acts, and updates the
    belief from the search's particles (module docstring); no exact belief is kept. With
    `POMCPConfig.reuse_tree` (the default) each search starts from the subtree the last one
    grew under the real action and observation.

    The hidden state starts from `b0` (the agent's first belief), moves by `T`, emits
    observations by `O` and earns `R[s, a]`. Episodes are vmapped and the steps scanned.

    Args:
      planner: `make_pomcp(pomdp, config)`.
      key: PRNG key.
      episodes: number of episodes (>= 2 for a standard error).
      steps: steps per episode.

    Returns:
      `SimulationResult` (the discounted returns).
    """
    if not callable(getattr(planner, "update", None)):
        raise TypeError(
            "simulate_pomcp needs a planner from make_pomcp(pomdp, config), got "
            f"{type(planner).__name__}; for any belief policy use bellmax.pomdp.simulate."
        )
    episodes = check_int(episodes, "episodes", owner="simulate_pomcp", low=2)
    steps = check_int(steps, "steps", owner="simulate_pomcp", low=1)
    pomdp = planner.pomdp
    check_reward_scale(pomdp, "simulate_pomcp", horizon=steps)
    with x64(planner.dtype):  # the planner's tables' precision (made in or out of x64)
        returns = _pomcp_episodes(planner, steps, jax.random.split(key, episodes))
        return SimulationResult(
            returns=returns,
            mean_discounted_return=returns.mean(),
            stderr=returns.std(ddof=1) / np.sqrt(episodes),
        )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _pomcp_episodes(planner, steps, keys):
    pomdp = planner.own_model
    T, Ob, R, b0 = (jnp.asarray(x) for x in (pomdp.T, pomdp.O, pomdp.R, pomdp.b0))

    reuse = planner.config.reuse_tree

    def episode(key):
        k0, key = jax.random.split(key)
        s0 = jax.random.choice(k0, b0.shape[0], p=b0)

        def step(carry, _):
            s, b, kept, disc, ret, key = carry
            key, k_search, ks, ko, k_update = jax.random.split(key, 5)
            tree = planner.search(b, k_search, tree=kept if reuse else None)
            a = _root_action(tree)
            s2 = jax.random.choice(ks, T.shape[2], p=T[a, s])
            o = jax.random.choice(ko, Ob.shape[2], p=Ob[a, s2])
            ret = ret + disc * R[s, a]
            b2 = planner.update(tree, b, a, o, k_update)
            kept = tree.reroot(a, o) if reuse else kept
            return (s2, b2, kept, disc * pomdp.gamma, ret, key), None

        kept = planner.empty_tree() if reuse else jnp.zeros(())
        init = (s0, b0, kept, jnp.ones((), T.dtype), jnp.zeros((), T.dtype), key)
        (_, _, _, _, ret, _), _ = jax.lax.scan(step, init, None, length=steps)
        return ret

    return jax.vmap(episode)(keys)
