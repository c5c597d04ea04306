"""POMDPs: POMCP decisions per second and returns vs pomdp-py 1.3.5; HSVI-style bounds on
RockSample[4,4] vs the published SARSOP/HSVI2 numbers.

    python bench/pomdp.py [--quick] [--smoke]

1. `pomcp_tiger`: decisions per CPU second of POMCP on the tiger problem (gamma 0.95), both
   with the same simulations per decision, rollout depth and UCB constant (110, the reward
   range), a uniformly random rollout, no tree reuse; and the mean discounted return over
   episodes of `STEPS` decisions. bellmax's planner is jitted (compile time reported apart);
   pomdp-py's POMCP runs in its own venv (bench/.venv-peers/pomdp-py: `python -m venv
   bench/.venv-peers/pomdp-py && bench/.venv-peers/pomdp-py/bin/pip install pomdp-py==1.3.5`).
2. `hsvi_rocksample44`: bellmax's anytime solver on RockSample[4,4] (generated from Smith &
   Simmons' definition: 257 states, 9 actions, 2 observations, gamma 0.95; the terminal
   state is absorbing, so "trial ends at the goal" and "the file runs on" agree): lower and
   upper bound at b0 after a time limit, and a simulated return of the lower bound's policy.
   Published (no peer is run): SARSOP (Kurniawati, Hsu & Lee, RSS 2008, Table 1) reports a
   reward of about 17.92 on RockSample[4,4] within seconds, HSVI2 about 18.0; the optimum
   is near 18.0. The record's `peer` is null; `published` says what is compared.
"""

from __future__ import annotations

import argparse
import sys
import time

import _harness as H

BENCH_POMCP = "pomcp_tiger"
BENCH_HSVI = "hsvi_rocksample44"
SIMS = 1000
DEPTH = 30
STEPS = 20
C = 110.0


def measure_bellmax_pomcp(decisions: int, episodes: int) -> dict:
    import jax
    import jax.numpy as jnp

    from bellmax.pomdp import POMCPConfig, make_pomcp, simulate, tiger
    from bellmax.pomdp.belief import x64

    p = tiger()
    with x64():
        planner = make_pomcp(p, POMCPConfig(num_simulations=SIMS, max_depth=DEPTH, exploration=C))
        b = jnp.asarray(p.b0)
        timing = H.time_jax(planner, b, jax.random.key(0), repeat=max(3, decisions // 10))
        t0 = time.perf_counter()
        res = simulate(p, planner, jax.random.key(1), episodes=episodes, steps=STEPS)
        jax.block_until_ready(res.returns)
        sim_s = time.perf_counter() - t0
    return {
        "decisions_per_s": 1.0 / timing.run.median,
        "compile_s": timing.compile_s + timing.trace_s,
        "mean_discounted_return": float(res.mean_discounted_return),
        "stderr": float(res.stderr),
        "episodes": episodes,
        "batched_decisions_per_s": episodes * STEPS / sim_s,
    }


def measure_pomdp_py(decisions: int, episodes: int) -> dict:
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


def measure_hsvi(time_limit: float, episodes: int) -> dict:
    import jax
    import numpy as np

    from bellmax.pomdp import hsvi, rock_sample_4_4, simulate

    p = rock_sample_4_4()
    r = hsvi(p, epsilon=1e-2, time_limit=time_limit)
    s = simulate(p, r.vectors, jax.random.key(0), episodes=episodes, steps=150)
    h = r.history
    at = {
        f"gap_at_{t}s": float(
            h[min(np.searchsorted(h[:, 0], t), len(h) - 1), 2]
            - h[min(np.searchsorted(h[:, 0], t), len(h) - 1), 1]
        )
        for t in (10, 30, 60, 120, 300)
        if t <= time_limit
    }
    return {
        "lower": r.lower_bound,
        "upper": r.upper_bound,
        "gap": r.gap,
        "seconds": r.seconds,
        "trials": r.trials,
        "alpha_vectors": r.vectors.size,
        "simulated_return": float(s.mean_discounted_return),
        "simulated_stderr": float(s.stderr),
        **at,
    }


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--peer", choices=["pomdp-py"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--decisions", type=int, default=None)
    p.add_argument("--episodes", type=int, default=None)
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    decisions = args.decisions or (20 if args.smoke else 100 if quick else 400)
    episodes = args.episodes or (4 if args.smoke else 20 if quick else 100)
    if args.peer == "pomdp-py":
        H.print_json(measure_pomdp_py(decisions, episodes))
        return 0
    H.fair_threads()
    H.log(f"{BENCH_POMCP}: bellmax POMCP, {SIMS} simulations per decision")
    ours = measure_bellmax_pomcp(decisions, max(episodes, 2))
    if args.smoke or args.no_venv_peers:
        peer = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
    else:
        peer = H.run_in_peer_venv(
            __file__,
            ["--peer", "pomdp-py", "--decisions", decisions, "--episodes", episodes],
            group="pomdp-py",
            modules=["pomdp_py"],
            venv=H.BENCH_DIR / ".venv-peers" / "pomdp-py",
        )
    H.emit(
        H.result(
            BENCH_POMCP,
            ours["decisions_per_s"],
            None if H.is_skipped(peer) else peer["decisions_per_s"],
            "decisions/s",
            case=f"tiger, {SIMS} sims/decision, depth {DEPTH}, c={C}, {STEPS} steps/episode",
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
    limit = 20.0 if args.smoke else 60.0 if quick else 300.0
    H.log(f"{BENCH_HSVI}: bellmax hsvi on RockSample[4,4], {limit:g} s")
    h = measure_hsvi(limit, 500 if quick else 2000)
    H.emit(
        H.result(
            BENCH_HSVI,
            h["gap"],
            None,
            "gap",
            better="lower",
            case=f"RockSample[4,4] (257 states), time limit {limit:g} s",
            published="SARSOP 17.92 reward (Kurniawati, Hsu & Lee 2008, Table 1); HSVI2 ~18.0",
            peer_skipped="published numbers only (no SARSOP/HSVI2 build on this machine)",
            **{f"ours_{k}": v for k, v in h.items() if k != "gap"},
        ),
        args.results_dir,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
