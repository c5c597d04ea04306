"""POMCP on the tiger problem: the tree's bookkeeping, never the tiger's door when it is known,
the backup by hand, and its decisions against the tiger's exact Q-values (computed here in
numpy, independently of bellmax, and checked against the published values)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bellmax.pomdp.belief import x64
from bellmax.pomdp.model import TabularPOMDP
from bellmax.pomdp.pomcp import POMCPConfig, SearchTree, make_pomcp, pomcp_search

CONFIG = POMCPConfig(num_simulations=300, max_depth=30)


@pytest.fixture(scope="module")
def searched(tiger):
    # Sampled check (fixed seed): the tiger's side known, 300 simulations per search.
    with x64():
        planner = make_pomcp(tiger, CONFIG)
        beliefs = jnp.array([[1.0, 0.0], [0.0, 1.0]])
        keys = jax.random.split(jax.random.key(0), 2)
        trees = jax.jit(jax.vmap(planner.search))(beliefs, keys)
    # the planner's rule: the root action with the best mean return among those tried
    q = np.where(np.asarray(trees.action_visits[:, 0]) > 0, np.asarray(trees.q[:, 0]), -np.inf)
    return trees, q


def test_tree_bookkeeping(searched):
    trees, _ = searched
    n = CONFIG.num_simulations
    np.testing.assert_array_equal(trees.visits[:, 0], [n, n])
    np.testing.assert_array_equal(np.asarray(trees.action_visits[:, 0]).sum(axis=1), [n, n])
    assert np.all(np.asarray(trees.num_nodes) <= n + 1)
    # every created node hangs under exactly one (node, action, observation)
    for k in range(2):
        ch = np.asarray(trees.children[k])
        made = ch[ch >= 0]
        assert len(made) == len(set(made.tolist())) == int(trees.num_nodes[k]) - 1
    # each simulation's first step is recorded: its actions are the root's action counts,
    # and listening keeps the tiger where it is (state k), so those particles are all k
    smp = np.asarray(trees.root_samples)
    for k in range(2):
        np.testing.assert_array_equal(np.bincount(smp[k, :, 0], minlength=3),
                                      trees.action_visits[k, 0])  # fmt: skip
        assert np.all(smp[k, smp[k, :, 0] == LISTEN, 2] == k)


def test_never_opens_the_tigers_door(searched):
    # With the tiger's side known, opening its door costs 100 and the other door pays 10, so
    # the planner never opens the tiger's door (0 times in 50 searches per side with other
    # keys). Whether it opens the safe door or listens first is not asserted: with uniformly
    # random rollouts, whose returns are strongly negative on the tiger, delaying them by
    # listening looks about as good, and 300 simulations do not separate the two reliably.
    _, q = searched
    tiger_door = np.array([1, 2])  # tiger left: open-left; tiger right: open-right
    assert np.all(q.argmax(axis=1) != tiger_door)


def test_config_checks(tiger):
    with pytest.raises(ValueError, match=r"POMCPConfig\.num_simulations must be an int >= 1"):
        POMCPConfig(num_simulations=0)
    with pytest.raises(TypeError, match="reuse_tree must be True or False"):
        POMCPConfig(reuse_tree=1)
    with pytest.raises(TypeError, match="config must be a POMCPConfig"):
        make_pomcp(tiger, {"num_simulations": 10})
    planner = make_pomcp(tiger, POMCPConfig(num_simulations=5, max_depth=2))
    with pytest.raises(ValueError, match=r"belief must be \[2\]"):
        planner(jnp.array([1.0, 0.0, 0.0]), jax.random.key(0))
    with pytest.raises(ValueError, match="summing to 1"):
        planner(jnp.array([np.nan, 0.5]), jax.random.key(0))
    from bellmax.pomdp.pomcp import pomcp_search

    with pytest.raises(ValueError, match="exploration"):
        pomcp_search(tiger, jnp.array([0.5, 0.5]), jax.random.key(0), POMCPConfig(5, 2), math.nan)


def test_planner_acts_by_its_tree(tiger):
    with x64():
        planner = make_pomcp(tiger, POMCPConfig(num_simulations=20, max_depth=5))
        b, key = jnp.array([0.3, 0.7]), jax.random.key(3)
        tree = planner.search(b, key)
        a = int(jax.jit(planner)(b, key))
    q = np.where(np.asarray(tree.action_visits[0]) > 0, np.asarray(tree.q[0]), -np.inf)
    assert a == int(q.argmax())


def test_backup_by_hand_on_a_deterministic_chain():
    # s0 -> s1 -> s1 ..., rewards 1 in s0 and 2 in s1, one action and one observation,
    # gamma 1/2, depth 3. Simulation 1 adds node 1 after one step and rolls out two steps:
    # G = 1 + (2 + 2/2)/2 = 2.5 at the root. Simulation 2 walks through node 1, adds node 2
    # and rolls out one step: G = 2 + 2/2 = 3 at node 1 and 1 + 3/2 = 2.5 at the root.
    chain = TabularPOMDP(
        [[[0.0, 1.0], [0.0, 1.0]]], [[[1.0], [1.0]]], [[1.0], [2.0]], gamma=0.5, b0=[1.0, 0.0]
    )
    tree = make_pomcp(chain, POMCPConfig(num_simulations=2, max_depth=3)).search(
        jnp.array([1.0, 0.0]), jax.random.key(0)
    )
    np.testing.assert_allclose(np.asarray(tree.q)[:, 0], [2.5, 3.0, 0.0])
    np.testing.assert_array_equal(tree.visits, [2, 2, 1])
    np.testing.assert_array_equal(np.asarray(tree.action_visits)[:, 0], [2, 1, 0])
    np.testing.assert_array_equal(np.asarray(tree.children)[:, 0, 0], [1, 2, -1])
    # both simulations' first step: action 0, observation 0, into s1
    np.testing.assert_array_equal(tree.root_samples, [[0, 0, 1], [0, 0, 1]])


def test_mdp_rollouts_follow_the_mdp_policy_by_hand():
    # One state, two actions paying 0 and 1, one observation, gamma 1/2, depth 3. The MDP's
    # policy takes action 1. Simulation 1 tries action 0 at the root (untried first, in
    # order), adds node 1 and rolls out two steps with action 1: G = 0 + (1 + 1/2)/2 = 0.75.
    # Simulation 2 tries action 1: G = 1 + 0.75 = 1.75. Random rollouts would mix in action
    # 0's zeros.
    one = TabularPOMDP([[[1.0]], [[1.0]]], [[[1.0]], [[1.0]]], [[0.0, 1.0]], gamma=0.5, b0=[1.0])
    config = POMCPConfig(num_simulations=2, max_depth=3, rollout="mdp")
    tree = make_pomcp(one, config).search(jnp.array([1.0]), jax.random.key(0))
    np.testing.assert_allclose(np.asarray(tree.q)[0], [0.75, 1.75])
    # the same inside a jit (the MDP's policy is solved while tracing, on the concrete model)
    searched = jax.jit(lambda b, k: pomcp_search(one, b, k, config, 1.0))
    np.testing.assert_allclose(np.asarray(searched(jnp.array([1.0]), jax.random.key(0)).q)[0],
                               [0.75, 1.75])  # fmt: skip
    with pytest.raises(ValueError, match="rollout must be one of 'random', 'mdp', got 'qmdp'"):
        POMCPConfig(rollout="qmdp")


# ---------------------------------------------------------------- tree reuse
def _subtree_matches(tree, old, sub, new) -> int:
    """Walk the old tree from `old` and the rerooted one from `new` together: the same
    statistics and the same shape node by node; the number of nodes walked."""
    assert int(tree.visits[old]) == int(sub.visits[new])
    np.testing.assert_array_equal(tree.q[old], sub.q[new])
    np.testing.assert_array_equal(tree.action_visits[old], sub.action_visits[new])
    count = 1
    for (a, o), c_old in np.ndenumerate(np.asarray(tree.children[old])):
        c_new = int(sub.children[new, a, o])
        assert (c_old < 0) == (c_new < 0), (old, a, o)
        if c_old >= 0:
            count += _subtree_matches(tree, c_old, sub, c_new)
    return count


def test_reroot_keeps_exactly_the_subtree_under_the_real_step(searched, tiger):
    # Every (action, observation) of the root: its subtree, renumbered from 0, with the
    # same statistics and nothing else; a step no simulation took gives an empty tree.
    trees, _ = searched
    tree = jax.tree.map(lambda x: x[0], trees)
    reroot = jax.jit(SearchTree.reroot)
    children = np.asarray(tree.children[0])
    for (a, o), child in np.ndenumerate(children):
        sub = reroot(tree, a, o)
        assert sub.visits.shape == tree.visits.shape  # the same capacity
        if child < 0:
            assert int(sub.num_nodes) == 1 and int(sub.visits.sum()) == 0
            continue
        assert _subtree_matches(tree, child, sub, 0) == int(sub.num_nodes)
        assert np.all(np.asarray(sub.visits)[int(sub.num_nodes) :] == 0)
        assert np.all(np.asarray(sub.children)[int(sub.num_nodes) :] == -1)
    assert (children >= 0).sum() >= 3  # the check above saw real subtrees


def test_reroot_walks_a_tree_as_deep_as_its_nodes():
    # One state, action and observation, depth beyond the node count: every simulation adds
    # one node below the last, so the tree is a path as deep as it has nodes, the deepest
    # the parent links' pointer doubling must climb. Each reroot drops the old root only.
    one = TabularPOMDP([[[1.0]]], [[[1.0]]], [[1.0]], gamma=0.5, b0=[1.0])
    reroot = jax.jit(SearchTree.reroot)  # op by op, each tree size compiled ~30 programs
    for n in (7, 8, 9, 33):
        tree = make_pomcp(one, POMCPConfig(num_simulations=n, max_depth=n + 5)).search(
            jnp.array([1.0]), jax.random.key(0)
        )
        assert int(tree.num_nodes) == n + 1
        visits = np.asarray(tree.visits)
        for k in range(1, n + 1):
            tree = reroot(tree, 0, 0)
            assert int(tree.num_nodes) == n + 1 - k
            np.testing.assert_array_equal(np.asarray(tree.visits)[: n + 1 - k], visits[k:])
            assert np.all(np.asarray(tree.root_samples) == -1)  # none until a search


def _leaf_visits(tree):
    """Visits of each node beyond its actions' (the node's own first visit as a new leaf:
    0 or 1)."""
    return np.asarray(tree.visits) - np.asarray(tree.action_visits).sum(axis=1)


def test_a_search_grows_the_kept_subtree_and_a_full_tree_adds_no_node(tiger):
    # The next search starts from the kept subtree: the root's visits are the kept ones plus
    # this search's simulations, and the kept counts only grow. In the agent's tree
    # (`empty_tree`: room for two searches) there is room for the new nodes; in a tree with
    # room for one search only, the kept nodes fill it before the search ends, and the rest
    # of the simulations back up along existing nodes: no count lands on a node they did not
    # pass (a node's visits exceed its actions' by at most its own first visit).
    with x64():
        config = POMCPConfig(num_simulations=200, max_depth=10)
        planner = make_pomcp(tiger, config)
        b = jnp.array([0.5, 0.5])
        search = jax.jit(planner.search)
        b2 = None
        for start, room in ((planner.empty_tree(), True), (None, False)):
            tree = search(b, jax.random.key(0), tree=start)
            kept = tree.reroot(LISTEN, 0)
            assert int(kept.num_nodes) > 1
            b2 = planner.update(tree, b, LISTEN, 0, jax.random.key(1))
            grown = search(b2, jax.random.key(2), tree=kept)
            assert int(grown.visits[0]) == int(kept.visits[0]) + config.num_simulations
            n = int(kept.num_nodes)
            assert np.all(np.asarray(grown.visits)[:n] >= np.asarray(kept.visits)[:n])
            assert set(np.unique(_leaf_visits(grown)).tolist()) <= {0, 1}
            full = int(grown.num_nodes) == grown.visits.shape[0]
            assert full != room, (int(grown.num_nodes), grown.visits.shape[0])


# ---------------------------------------------------------------- the particle belief
@pytest.mark.learning
def test_the_particle_belief_is_the_bayes_belief_in_distribution(tiger):
    # Sampled check (fixed seeds): from the uniform belief, the next states of the
    # simulations that went through (listen, o) are a sample of the exact posterior (0.85 on
    # the side heard); a door, which few simulations try, is topped up by rejection sampling
    # (opening resets the tiger to either side: the posterior is uniform). Each estimated
    # probability lies within 5 standard errors of its particle count of the exact one.
    from bellmax.pomdp import belief_update

    with x64():
        config = POMCPConfig(num_simulations=1000, max_depth=30)
        planner = make_pomcp(tiger, config)
        b = jnp.array([0.5, 0.5])
        tree = jax.jit(planner.search)(b, jax.random.key(0))
        update = jax.jit(planner.update)
        smp = np.asarray(tree.root_samples)
        for a, o in [(LISTEN, 0), (LISTEN, 1), (OPEN_LEFT, 0), (OPEN_RIGHT, 1)]:
            got = np.asarray(update(tree, b, a, o, jax.random.key(1)))
            want = np.asarray(belief_update(tiger, b, a, o).belief)
            n = int(np.sum((smp[:, 0] == a) & (smp[:, 1] == o)))
            if n < config.min_particles:  # topped up: about half of the 1000 draws emit o
                n += 400
            assert np.abs(got - want).max() <= 5 * np.sqrt(want[0] * want[1] / n), (a, o)
            assert got.sum() == pytest.approx(1.0)


def test_without_particles_the_exact_update_stands_in(tiger):
    # One simulation tries one action at the root; with no top-up (min_particles 0) any
    # other action has no particle at all, and the belief is the exact Bayes update.
    from bellmax.pomdp import belief_update

    with x64():
        planner = make_pomcp(tiger, POMCPConfig(num_simulations=1, max_depth=2, min_particles=0))
        b = jnp.array([0.3, 0.7])
        tree = planner.search(b, jax.random.key(0))
        other = (int(tree.root_samples[0, 0]) + 1) % 3
        got = planner.update(tree, b, other, 1, jax.random.key(1))
        np.testing.assert_allclose(got, belief_update(tiger, b, other, 1).belief, rtol=1e-12)


def test_simulate_pomcp_runs_its_own_agent(tiger):
    from bellmax.pomdp import simulate_pomcp

    for reuse in (True, False):  # the subtree kept between decisions, or not
        config = POMCPConfig(num_simulations=30, max_depth=10, reuse_tree=reuse)
        planner = make_pomcp(tiger, config)
        res = simulate_pomcp(planner, jax.random.key(0), episodes=3, steps=4)
        again = simulate_pomcp(planner, jax.random.key(0), episodes=3, steps=4)
        assert res.returns.shape == (3,) and np.all(np.isfinite(res.returns))
        np.testing.assert_array_equal(res.returns, again.returns)
        # rewards are between -100 and 10: four discounted steps stay within those bounds
        assert np.all(res.returns >= -100 * 4) and np.all(res.returns <= 10 * 4)
    with pytest.raises(TypeError, match="simulate_pomcp needs a planner from make_pomcp"):
        simulate_pomcp(lambda b, k: 0, jax.random.key(0))
    with pytest.raises(ValueError, match="episodes"):
        simulate_pomcp(planner, jax.random.key(0), episodes=1)


def test_pomcp_leaves_the_callers_model_arrays_alone():
    # simulate_pomcp's program (x64 off) captured the model's numpy arrays, and jax 0.10 then
    # handed its float32 copies to a later float64 program given the same arrays: simulate
    # with another policy on the same model failed (RuntimeProgramInputMismatch). The
    # planner reads a copy of its own, in its precision.
    from bellmax.pomdp import simulate, simulate_pomcp
    from bellmax.pomdp.problems import tiger as make_tiger

    t = make_tiger()
    planner = make_pomcp(t, POMCPConfig(num_simulations=20, max_depth=5))
    simulate_pomcp(planner, jax.random.key(0), episodes=2, steps=2)
    listen = simulate(t, lambda b, k: jnp.int32(0), jax.random.key(1), episodes=4, steps=3)
    np.testing.assert_allclose(listen.returns, -(1 + 0.95 + 0.95**2), rtol=1e-12)
    assert planner.pomdp is t and planner.own_model.T is not t.T
    assert planner.own_model.T.dtype == planner.dtype


# ---------------------------------------------------------------- decisions against exact Q
LISTEN, OPEN_LEFT, OPEN_RIGHT = 0, 1, 2


def test_reference_q_reproduces_the_published_values(tiger_q):
    # PEERS.md (Tiger): V_h(uniform) for h = 1..5, 10, 20, and V* = 19.3714 (published to
    # 4 decimals; horizon 1000 is within 0.95^1000 * 110 / 0.05 ~ 1e-19 of V*).
    published = {1: -1.0, 2: -1.95, 3: 2.3098, 4: 1.7955, 5: 2.7631, 10: 6.6934, 20: 11.8796}
    for h, v in published.items():
        assert tiger_q(0.5, h).max() == pytest.approx(v, abs=5e-5)
    assert tiger_q(0.5, 1000).max() == pytest.approx(19.3714, abs=5e-5)


# POMCP with max_depth H plans the H-step discounted problem, so its answer is Q_H; at depth
# 10 random rollouts are short (less noise than at 30: at the uniform belief 183 of 200 keys
# listened at depth 10, 168 at depth 20, 166 at depth 30).
DECIDE = POMCPConfig(num_simulations=2000, max_depth=10)
DECIDE_KEYS = 120
# P(tiger left) of each belief checked: listening clearly best at the first three, the safe
# door at the last two (gaps below).
DECIDE_BELIEFS = (0.5, 0.8, 0.2, 0.99, 0.01)


@pytest.fixture(scope="module")
def decisions(tiger):
    """Actions `{p_left: [key]}`: one search per belief and key, 2000 simulations each."""
    with x64():
        planner = make_pomcp(tiger, DECIDE)
        plan = jax.jit(jax.vmap(jax.vmap(planner, (None, 0)), (0, None)))
        p = jnp.asarray(DECIDE_BELIEFS)
        keys = jax.random.split(jax.random.key(0), DECIDE_KEYS)
        acts = np.asarray(plan(jnp.stack([p, 1 - p], axis=1), keys))
    return dict(zip(DECIDE_BELIEFS, acts, strict=True))


def clear_best(tiger_q, p_left):
    """The best action at `p_left` by exact Q_10 (POMCP's problem here), checked to be the
    best by Q* too, and the smaller of its two leads over the second best action."""
    best, gaps = set(), []
    for h in (DECIDE.max_depth, 1000):
        q = tiger_q(p_left, h)
        best.add(int(np.argmax(q)))
        gaps.append(np.diff(np.sort(q))[-1])
    assert len(best) == 1
    return best.pop(), min(gaps)


def test_listens_where_listening_is_clearly_best(decisions, tiger_q):
    # Exact Q: at the uniform belief listening leads by 45.6 (Q_10) / 46.0 (Q*), at 0.8 or
    # 0.2 by 13.9 / 14.1. Sampled check (fixed keys): with 200 other keys the planner
    # listened in 183, 153 and 164 at 0.5, 0.8 and 0.2; at those per-key rates a listening
    # minority among 120 keys has probability 3e-32, 3e-10 and 2e-15 (binomial tails), so a
    # correct planner fails this below 1e-9.
    for p_left in (0.5, 0.8, 0.2):
        best, gap = clear_best(tiger_q, p_left)
        assert best == LISTEN and gap > 10
        assert np.sum(decisions[p_left] == LISTEN) > DECIDE_KEYS / 2, p_left


@pytest.mark.xfail(
    strict=True,
    reason="POMCP with 2000 simulations and uniformly random rollouts opens the safe door at "
    "(0.99, 0.01) in only ~40% of keys although it leads by 2.6 (Q_10); an independent "
    "textbook POMCP in numpy does the same (29 of 60 keys at (1, 0), depth 30): the "
    "mean-return backups of a sparsely visited subtree after a door stay far below its "
    "value at this budget",
)
def test_opens_the_safe_door_when_the_tiger_is_all_but_known(decisions):
    # Exact Q: at (0.99, 0.01) opening the right door leads listening by 2.56 (Q_10) and 2.18
    # (Q*); mirrored at (0.01, 0.99). At (0.97, 0.03) the door is best too, but only by 0.72
    # (Q*) and 1.10 (Q_10), too close to ask of 2000 simulations. Measured: 81 and 73 of 200
    # keys opened the safe door at 0.99 and 0.01. Rollouts by the MDP's policy
    # (`rollout="mdp"`) do no better here: 52 and 33 of 120 keys at depth 10.
    for p_left, door in ((0.99, OPEN_RIGHT), (0.01, OPEN_LEFT)):
        assert np.sum(decisions[p_left] == door) > DECIDE_KEYS / 2, p_left


def test_the_safe_door_is_clearly_best_when_the_tiger_is_all_but_known(tiger_q):
    # the reference side of the xfail above, checked on its own: the exact Q says the door
    # (not listening) is best at these beliefs, by more than 2
    for p_left, door in ((0.99, OPEN_RIGHT), (0.01, OPEN_LEFT)):
        best, gap = clear_best(tiger_q, p_left)
        assert best == door and gap > 2
