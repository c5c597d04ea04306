"""POMDPs: POMCP decisions per second and returns vs pomdp-py 1.3.5; HSVI-style bounds on
RockSample[4,4] vs the published SARSOP/HSVI2 numbers.

    python bench/pomdp.py [--quick] [--smoke]   # --smoke: tiger's POMCP, HSVI 1 s (Tag 2 s)

1. `pomcp_tiger` and `pomcp_rocksample44`: decisions per second of POMCP on the tiger
   problem (gamma 0.95) and on RockSample[4,4] (257 states), both libraries with the same
   simulations per decision, rollout depth and UCB constant (110, the reward range), a
   uniformly random rollout; and the mean discounted return over episodes of `STEPS`
   decisions. Ours: one decision at a time, wall clock, the planner jitted (compile time
   reported apart); `ours_batched_episodes_decisions_per_s` is all episodes vmapped in one
   call (on a CPU this is no faster: a vmapped search loop runs every episode's longest
   walk). The peer: CPU time per decision, on bellmax's tables (handed over as an .npz; a
   tabular adapter here samples each row's support), its tree rebuilt at every decision
   from `SIMS` particles of the exact belief, as bellmax's POMCP samples its root states
   from the exact belief without tree reuse (the same algorithm). For the tiger, pomdp-py's
   own TigerProblem with its POMCP keeping the subtree and its particles between decisions
   is reported too (`peer_with_tree_reuse_*`), beside bellmax's agent that keeps its subtree
   (below; its particles come from the last search's simulations only).
   `ours_particle_belief_*`: bellmax's POMCP agent on its own particle belief
   (`simulate_pomcp`: the next root belief from the search's particles, no exact update),
   keeping the subtree under the real action and observation between decisions as
   pomdp-py's agent does (compare with `peer_with_tree_reuse_*`); its returns and batched
   decisions/s. `ours_particle_belief_no_reuse_*`: the same agent rebuilding its tree at
   every decision. `ours_particle_belief_mdp_rollout_*`: the agent with reuse whose rollouts
   follow the MDP's optimal policy for the simulated state (`POMCPConfig.rollout="mdp"`)
   instead of random actions. pomdp-py runs in its own venv
   (bench/.venv-peers/pomdp-py: `python -m venv bench/.venv-peers/pomdp-py &&
   bench/.venv-peers/pomdp-py/bin/pip install pomdp-py==1.3.5`).
2. `hsvi_rocksample44` and `hsvi_tag`: bellmax's anytime solver on RockSample[4,4]
   (Smith & Simmons' definition: 257 states, 9 actions, 2 observations) and on Tag (Pineau,
   Gordon & Thrun 2003: 870 states, 5 actions, 30 observations), both gamma 0.95, generated
   by `bellmax.pomdp.problems`, written to .pomdp and read back: lower and upper bound at
   b0, the gap at fixed times and the first time it fell below 2, 1 and 0.5 (wall clock,
   compilation included, the compile cache on), and a simulated return of the lower bound's
   policy. The models are the standard files' (issue 19): `rock_sample_4_4()` equals the
   file of Smith's `gen_RockSample_4_4` (sensor exp(-d), half efficiency ln 2; records
   before issue 19 used half efficiency 4, a better sensor); `tag()` is TagAvoid.pomdp (a
   missed tag leaves the opponent in place; records before issue 19 moved it away) except
   16 move rows of the file's and the rewards in the tagged state (see
   `bellmax.pomdp.problems`). Both problems end in an absorbing zero-reward state (the exit,
   the tag), so "trial ends at the goal" and "the file runs on" agree. The record's `peer`
   is null; `published` says what is compared (`PUBLISHED`).

   The published numbers are from memory of the papers' tables and are NOT verified here
   (no copy of the papers was read); treat them as approximate until checked against:
   SARSOP and HSVI2 on Tag and RockSample[4,4] (Kurniawati, Hsu & Lee, RSS 2008, Table 1:
   http://www.roboticsproceedings.org/rss04/p9.pdf); PBVI on Tag (Pineau, Gordon & Thrun,
   IJCAI 2003: https://www.ijcai.org/Proceedings/03/Papers/147.pdf); Perseus on Tag (Spaan &
   Vlassis, "Perseus: randomized point-based value iteration for POMDPs", JAIR 24, 2005);
   HSVI on RockSample[4,4] (Smith & Simmons, UAI 2004). POMCP (Silver & Veness, NIPS 2010)
   reports RockSample[7,8] and larger, not [4,4], so no published POMCP number is compared.
   (JuliaPOMDP's TagPOMDPProblem.jl scripts/check_vs_original.jl hard-codes an "original
   SARSOP performance" of -6.13 +- 0.12 on Tag, without a source.)
"""

from __future__ import annotations

import argparse
import sys
import time

import _harness as H

#: Scratch folder for the tables handed to the peer (git-ignored build output).
BENCH_DIR_DATA = H.BENCH_DIR / ".cache" / "pomdp"

SIMS = 1000
DEPTH = 30
STEPS = 20
C = 110.0


#: POMCP problems: tiger (pomdp-py's own TigerProblem as the peer) and RockSample[4,4]
#: (the same tables for both: pomdp-py through the tabular adapter below). UCB constant: the
#: reward range (Silver & Veness), 110 for both.
POMCP_PROBLEMS = ("tiger", "rocksample44")

#: The model each POMCP record used (RockSample[4,4]: since issue 19; before, half efficiency 4).
POMCP_MODELS = {
    "tiger": "tiger as tiger.95.POMDP",
    "rocksample44": "RockSample[4,4] as Smith's gen_RockSample_4_4 file (sensor exp(-d))",
}


def _pomdp(name: str):
    from bellmax.pomdp import rock_sample_4_4, tiger

    return tiger() if name == "tiger" else rock_sample_4_4()


def measure_bellmax_pomcp(name: str, decisions: int, episodes: int, variants: bool = True) -> dict:
    """One decision at a time (the planner jitted alone), and episodes batched (vmapped);
    `variants`: the agent without tree reuse and with MDP rollouts too (off in `--smoke`,
    where each would only add its compile)."""
    import jax
    import jax.numpy as jnp

    from bellmax.pomdp import POMCPConfig, make_pomcp, simulate, simulate_pomcp

    p = _pomdp(name)
    planner = make_pomcp(p, POMCPConfig(num_simulations=SIMS, max_depth=DEPTH, exploration=C))
    b = jnp.asarray(p.b0, jnp.float32)
    timing = H.time_jax(planner, b, jax.random.key(0), repeat=max(3, decisions // 10))
    # returns: episodes of STEPS decisions on the exact belief, all episodes vmapped
    res = simulate(p, planner, jax.random.key(2), episodes=episodes, steps=STEPS)  # compile
    jax.block_until_ready(res.returns)
    t0 = time.perf_counter()
    res = simulate(p, planner, jax.random.key(1), episodes=episodes, steps=STEPS)
    jax.block_until_ready(res.returns)
    sim_s = time.perf_counter() - t0
    # POMCP's own agent: the same planner on its particle belief (no exact belief kept),
    # keeping the subtree between decisions (the default) and rebuilding it at each
    agents = {}
    # (and with the MDP's policy as its rollout: a different algorithm, not the peer's)
    agent_settings = [("particle_belief", True, "random")]
    if variants:
        agent_settings += [
            ("particle_belief_no_reuse", False, "random"),
            ("particle_belief_mdp_rollout", True, "mdp"),
        ]
    for label, reuse, rollout in agent_settings:
        config = POMCPConfig(
            num_simulations=SIMS, max_depth=DEPTH, exploration=C, reuse_tree=reuse, rollout=rollout
        )
        agent = make_pomcp(p, config)
        part = simulate_pomcp(agent, jax.random.key(2), episodes=episodes, steps=STEPS)
        jax.block_until_ready(part.returns)  # compile
        t0 = time.perf_counter()
        part = simulate_pomcp(agent, jax.random.key(1), episodes=episodes, steps=STEPS)
        jax.block_until_ready(part.returns)
        part_s = time.perf_counter() - t0
        agents |= {
            f"{label}_mean_discounted_return": float(part.mean_discounted_return),
            f"{label}_stderr": float(part.stderr),
            f"{label}_batched_decisions_per_s": episodes * STEPS / part_s,
        }
    return {
        **agents,
        "decisions_per_s": 1.0 / timing.run.median,
        "compile_s": timing.compile_s + timing.trace_s,
        "mean_discounted_return": float(res.mean_discounted_return),
        "stderr": float(res.stderr),
        "episodes": episodes,
        "batched_episodes_decisions_per_s": episodes * STEPS / sim_s,
    }


def _tabular_pomdp_py(T, Ob, R):
    """A pomdp-py agent's models over tables `T[a, s, s']`, `O[a, s', o]`, `R[s, a]`.

    Sampling draws from each row's support (precomputed once), as a problem-specific
    pomdp-py model would; the rollout policy is uniform over all actions, as bellmax's.
    """
    import bisect
    import random

    import pomdp_py

    A, S, _ = T.shape
    Z = Ob.shape[2]

    def support(row):
        idx = [i for i in range(len(row)) if row[i] > 0]
        cdf, acc = [], 0.0
        for i in idx:
            acc += float(row[i])
            cdf.append(acc)
        return idx, cdf

    t_rows = [[support(T[a, s]) for s in range(S)] for a in range(A)]
    o_rows = [[support(Ob[a, s]) for s in range(S)] for a in range(A)]
    rewards = R.tolist()

    def draw(rows):
        idx, cdf = rows
        return idx[min(bisect.bisect_right(cdf, random.random() * cdf[-1]), len(idx) - 1)]

    def indexed(base):
        """A `base` (state, action or observation) that is its index, hashed and compared by it."""

        def init(self, i):
            self.i = i

        def eq(self, other):
            return type(other) is type(self) and other.i == self.i

        return type(
            base.__name__, (base,), {"__init__": init, "__hash__": lambda x: x.i, "__eq__": eq}
        )

    St, Ac, Obs = map(indexed, (pomdp_py.State, pomdp_py.Action, pomdp_py.Observation))
    states = [St(i) for i in range(S)]
    actions = [Ac(i) for i in range(A)]
    observations = [Obs(i) for i in range(Z)]

    class Trans(pomdp_py.TransitionModel):
        def sample(self, state, action):
            return states[draw(t_rows[action.i][state.i])]

        def probability(self, next_state, state, action):
            return float(T[action.i, state.i, next_state.i])

    class Observe(pomdp_py.ObservationModel):
        def sample(self, next_state, action):
            return observations[draw(o_rows[action.i][next_state.i])]

        def probability(self, observation, next_state, action):
            return float(Ob[action.i, next_state.i, observation.i])

    class Reward(pomdp_py.RewardModel):
        def sample(self, state, action, next_state):
            return rewards[state.i][action.i]

    class Policy(pomdp_py.RolloutPolicy):
        def sample(self, state):
            return random.choice(actions)

        def rollout(self, state, history=None):
            return random.choice(actions)

        def get_all_actions(self, state=None, history=None):
            return actions

    return states, Trans(), Observe(), Reward(), Policy()


def _peer_tabular(name: str, decisions: int, episodes: int) -> dict:
    """pomdp-py's POMCP on bellmax's tables of `name`, rebuilt from the exact belief at
    every decision (bellmax's POMCP does the same: root states from the exact belief, no tree
    reuse), with `SIMS` root particles drawn from it."""
    import random

    import numpy as np
    import pomdp_py

    data = np.load(BENCH_DIR_DATA / f"{name}.npz")
    T, Ob, R, b0, gamma = data["T"], data["O"], data["R"], data["b0"], float(data["gamma"])
    states, trans, observe, reward, policy = _tabular_pomdp_py(T, Ob, R)
    rng = np.random.default_rng(0)
    random.seed(0)
    returns, times = [], []
    for ep in range(episodes):
        b = b0.copy()
        s = int(rng.choice(len(b0), p=b0))
        ret, disc = 0.0, 1.0
        for _ in range(STEPS):
            parts = rng.choice(len(b), size=SIMS, p=b / b.sum())
            agent = pomdp_py.Agent(
                pomdp_py.Particles([states[i] for i in parts]), policy, trans, observe, reward
            )
            planner = pomdp_py.POMCP(
                max_depth=DEPTH,
                discount_factor=gamma,
                num_sims=SIMS,
                exploration_const=C,
                rollout_policy=policy,
                show_progress=False,
            )
            t0 = time.process_time()
            a = planner.plan(agent).i
            times.append(time.process_time() - t0)
            ret += disc * float(R[s, a])
            disc *= gamma
            s2 = int(rng.choice(T.shape[1], p=T[a, s]))
            o = int(rng.choice(Ob.shape[2], p=Ob[a, s2]))
            b = (b @ T[a]) * Ob[a, :, o]
            s = s2
        returns.append(ret)
        if len(times) >= decisions and ep >= 1:
            break
    return _peer_summary(returns, times)


def _peer_summary(returns: list, times: list) -> dict:
    n = len(returns)
    mean = sum(returns) / n
    sd = (sum((r - mean) ** 2 for r in returns) / max(1, n - 1)) ** 0.5
    return {
        "decisions_per_s": len(times) / sum(times),
        "mean_discounted_return": mean,
        "stderr": sd / n**0.5,
        "episodes": n,
        "version": "pomdp-py 1.3.5",
    }


def measure_pomdp_py(name: str, decisions: int, episodes: int) -> dict:
    if name == "rocksample44":
        return _peer_tabular(name, decisions, episodes)
    # tiger: pomdp-py's own problem, its POMCP keeping the subtree (and its particles) from
    # one decision to the next; and on bellmax's tables without reuse, as bellmax's POMCP.
    native = _peer_tiger_native(decisions, episodes)
    same = _peer_tabular(name, decisions, episodes)
    return {
        **same,
        **{f"with_tree_reuse_{k}": v for k, v in native.items() if k != "version"},
    }


def _peer_tiger_native(decisions: int, episodes: int) -> dict:
    import random

    import pomdp_py
    from pomdp_py.problems.tiger.tiger_problem import TigerProblem, TigerState

    random.seed(0)
    returns, times = [], []
    for ep in range(episodes):
        state = TigerState(random.choice(["tiger-left", "tiger-right"]))
        init = pomdp_py.Particles(
            [TigerState("tiger-left")] * (SIMS // 2) + [TigerState("tiger-right")] * (SIMS // 2)
        )
        problem = TigerProblem(0.15, state, init)
        planner = pomdp_py.POMCP(
            max_depth=DEPTH,
            discount_factor=0.95,
            num_sims=SIMS,
            exploration_const=C,
            rollout_policy=problem.agent.policy_model,
            show_progress=False,
        )
        ret, disc = 0.0, 1.0
        for _ in range(STEPS):
            t0 = time.process_time()
            action = planner.plan(problem.agent)
            times.append(time.process_time() - t0)
            reward = problem.env.state_transition(action, execute=True)
            obs = problem.env.provide_observation(problem.agent.observation_model, action)
            planner.update(problem.agent, action, obs)
            ret += disc * reward
            disc *= 0.95
        returns.append(ret)
        if len(times) >= decisions and ep >= 1:
            break
    return _peer_summary(returns, times)


def measure_hsvi(name: str, time_limit: float, episodes: int) -> dict:
    """HSVI on RockSample[4,4] or Tag (the latter written to .pomdp and read back first):
    both bounds at the time limit, the gap at fixed times and the first time the gap fell
    below 2, 1 and 0.5 (compilation included), and the simulated return of the policy."""
    import tempfile
    from pathlib import Path

    import jax
    import numpy as np

    from bellmax.pomdp import hsvi, load_pomdp, rock_sample_4_4, save_pomdp, simulate
    from bellmax.pomdp.problems import tag

    p = rock_sample_4_4() if name == "rocksample44" else tag()
    with tempfile.TemporaryDirectory() as d:  # the solver reads what our writer wrote
        p = load_pomdp(save_pomdp(p, Path(d) / f"{name}.pomdp"))
    r = hsvi(p, epsilon=1e-2, time_limit=time_limit)
    s = simulate(p, r.vectors, jax.random.key(0), episodes=episodes, steps=150)
    h = r.history
    gaps = h[:, 2] - h[:, 1]
    at = {
        f"gap_at_{t}s": float(gaps[max(0, np.searchsorted(h[:, 0], t, side="right") - 1)])
        for t in (5, 10, 20, 30, 60, 120, 300)
        if t <= time_limit
    }
    first = {
        f"seconds_to_gap_{g:g}": (float(h[gaps < g][0, 0]) if (gaps < g).any() else None)
        for g in (2, 1, 0.5)
    }
    return {
        "lower": r.lower_bound,
        "upper": r.upper_bound,
        "gap": r.gap,
        "seconds": r.seconds,
        "trials": r.trials,
        "alpha_vectors": r.vectors.size,
        "upper_points": len(r.upper_values),
        "simulated_return": float(s.mean_discounted_return),
        "simulated_stderr": float(s.stderr),
        **at,
        **first,
    }


#: What the HSVI records compare with: unverified, from memory (see the module docstring).
PUBLISHED = (
    "from memory of the papers' tables, NOT verified here (sources: SARSOP/HSVI2 "
    "http://www.roboticsproceedings.org/rss04/p9.pdf Table 1; PBVI "
    "https://www.ijcai.org/Proceedings/03/Papers/147.pdf; Perseus: Spaan & Vlassis, JAIR 24, "
    "2005; HSVI: Smith & Simmons, UAI 2004): "
)

#: The point-based cases: problem, description, published numbers (as cited in the docstring).
HSVI_CASES = {
    "rocksample44": (
        "RockSample[4,4] (257 states, 9 actions, 2 observations; Smith's gen_RockSample_4_4 "
        "file: sensor exp(-d), half efficiency ln 2)",
        PUBLISHED + "SARSOP 17.92 reward in about a second, HSVI2 17.92 (Kurniawati, Hsu & Lee "
        "2008); HSVI 18.0 (Smith & Simmons 2004); simulated discounted returns",
    ),
    "tag": (
        "Tag (870 states, 5 actions, 30 observations; TagAvoid.pomdp: a missed tag leaves "
        "the opponent in place; 16 move rows of the file and its tagged-state move costs "
        "not copied), trials end at the tag",
        PUBLISHED + "PBVI -9.18 (Pineau et al. 2003), Perseus -6.17 (Spaan & Vlassis 2005), "
        "HSVI2 -6.36, SARSOP -6.03 (Kurniawati et al. 2008); simulated discounted returns, "
        "trials ending at the tag",
    ),
}


def _pomcp_case(name: str, args, decisions: int, episodes: int, quick: bool) -> None:
    H.log(f"pomcp_{name}: bellmax POMCP, {SIMS} simulations per decision")
    ours = measure_bellmax_pomcp(name, decisions, max(episodes, 2), variants=not args.smoke)
    if args.smoke or args.no_venv_peers:
        peer = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
    else:
        import numpy as np

        p = _pomdp(name)  # the peer reads the same tables (it has no JAX)
        BENCH_DIR_DATA.mkdir(parents=True, exist_ok=True)
        np.savez(
            BENCH_DIR_DATA / f"{name}.npz",
            T=np.asarray(p.T, np.float64),
            O=np.asarray(p.O, np.float64),
            R=np.asarray(p.R, np.float64),
            b0=np.asarray(p.b0, np.float64),
            gamma=float(p.gamma),
        )
        peer = H.run_in_peer_venv(
            __file__,
            [
                "--peer",
                "pomdp-py",
                "--problem",
                name,
                "--decisions",
                decisions,
                "--episodes",
                episodes,
            ],
            group="pomdp-py",
            modules=["pomdp_py"],
            venv=H.BENCH_DIR / ".venv-peers" / "pomdp-py",
        )
    H.emit(
        H.result(
            f"pomcp_{name}",
            ours["decisions_per_s"],
            None if H.is_skipped(peer) else peer["decisions_per_s"],
            "decisions/s",
            case=(
                f"{name} ({POMCP_MODELS[name]}), {SIMS} sims/decision, depth {DEPTH}, c={C}, "
                f"{STEPS} steps/episode; "
                "ours: one decision at a time, wall clock (jitted planner; "
                "ours_batched_episodes_decisions_per_s: all episodes vmapped in one call); "
                "peer: CPU time per decision"
            ),
            peer_name="pomdp-py POMCP",
            quick=quick,
            **{f"ours_{k}": v for k, v in ours.items() if k != "decisions_per_s"},
            **(
                {"peer_skipped": peer["reason"]}
                if H.is_skipped(peer)
                else {f"peer_{k}": v for k, v in peer.items() if k != "decisions_per_s"}
            ),
        ),
        args.results_dir,
    )


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--peer", choices=["pomdp-py"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--decisions", type=int, default=None)
    p.add_argument("--episodes", type=int, default=None)
    p.add_argument("--problem", choices=POMCP_PROBLEMS, default="tiger", help=argparse.SUPPRESS)
    p.add_argument("--problems", default=",".join(POMCP_PROBLEMS), help="POMCP problems to run")
    p.add_argument("--skip-hsvi", action="store_true", help="only the POMCP cases")
    p.add_argument("--hsvi", default=",".join(HSVI_CASES), help="HSVI problems to run")
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    decisions = args.decisions or (20 if args.smoke else 100 if quick else 400)
    episodes = args.episodes or (4 if args.smoke else 20 if quick else 100)
    if args.peer == "pomdp-py":
        H.print_json(measure_pomdp_py(args.problem, decisions, episodes))
        return 0
    H.fair_threads()
    problems = [name for name in args.problems.split(",") if name]
    if args.smoke and args.problems == ",".join(POMCP_PROBLEMS):
        # the cases run the same code on other tables: the smoke runs the first (each
        # case compiles three programs, ~13 s at the smoke's compile settings)
        problems = problems[:1]
    for name in problems:
        _pomcp_case(name, args, decisions, episodes, quick)
    if args.skip_hsvi:
        return 0
    for name in filter(None, args.hsvi.split(",")):
        limit = 1.0 if args.smoke else 30.0 if quick else 60.0  # smoke: checks it runs
        limit *= 2 if name == "tag" else 1
        case, published = HSVI_CASES[name]
        H.log(f"hsvi_{name}: bellmax hsvi on {case}, {limit:g} s")
        h = measure_hsvi(name, limit, 10 if args.smoke else 500 if quick else 2000)
        H.emit(
            H.result(
                f"hsvi_{name}",
                h["gap"],
                None,
                "gap",
                better="lower",
                case=f"{case}, time limit {limit:g} s",
                published=published,
                peer_skipped="published numbers only (no SARSOP/HSVI2 build on this machine)",
                **{f"ours_{k}": v for k, v in h.items() if k != "gap"},
            ),
            args.results_dir,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
