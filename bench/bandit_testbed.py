"""Benchmark: the 10-armed testbed (Sutton & Barto 2.3), seconds per agent configuration.

The same work for everyone: `runs` (2000) independent 10-armed Gaussian bandit problems,
`steps` (1000) pulls each, for each configuration of Figures 2.2-2.5 (epsilon-greedy with
epsilon 0 / 0.01 / 0.1, optimistic Q1 = 5, UCB c = 2, the gradient bandit on the +4
testbed) plus Gaussian Thompson sampling; the output is the per-step mean reward and
optimal-action rate.

- bellmax: `bellmax.bandits.testbed.make_testbed`, one `jit(scan over steps(vmap over runs))`
  per configuration; configurations of one agent type share one compiled program (their
  numbers are traced), so compile time is reported per agent type, apart from run time.
- peer: a vectorised NumPy version written here (NumPy over runs, a Python loop over
  steps; the same algorithms, random tie-breaking included), one thread.

Headline: the fastest steady-state sample (`min`) for both, in seconds per configuration;
the goal is at most 0.3 s after compile for bellmax. Same-work check: both report the late
(last 100 steps) mean reward and optimal-action rate, which must agree within the Monte
Carlo error (`agree` field: |difference| < 5 standard errors).

    python bench/bandit_testbed.py            # full size
    python bench/bandit_testbed.py --quick    # full size, fewer repeats
    python bench/bandit_testbed.py --smoke    # tiny, two configurations (the tests run this)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import _harness as H

H.fair_threads()

BENCH = "bandit_testbed"
K = 10
GOAL_S = 0.3


@dataclasses.dataclass(frozen=True)
class Case:
    """One configuration: bellmax's config and the NumPy agent's parameters."""

    name: str
    kind: str  # eps | ucb | gradient | thompson
    params: dict
    mean_offset: float = 0.0


CASES = [
    Case("eps-greedy eps=0 (greedy)", "eps", {"epsilon": 0.0}),
    Case("eps-greedy eps=0.01", "eps", {"epsilon": 0.01}),
    Case("eps-greedy eps=0.1", "eps", {"epsilon": 0.1}),
    Case("optimistic Q1=5 alpha=0.1", "eps", {"epsilon": 0.0, "alpha": 0.1, "initial_value": 5.0}),
    Case("UCB c=2", "ucb", {"c": 2.0}),
    Case("gradient alpha=0.1 baseline (+4)", "gradient", {"alpha": 0.1}, mean_offset=4.0),
    Case("Thompson sampling", "thompson", {}),
]


# --------------------------------------------------------------------------- bellmax
def _bellmax_config(case: Case):
    from bellmax.bandits.agents import UCB, EpsilonGreedy, GradientBandit, ThompsonSampling

    types = {
        "eps": EpsilonGreedy,
        "ucb": UCB,
        "gradient": GradientBandit,
        "thompson": ThompsonSampling,
    }
    return types[case.kind](**case.params)


def measure_bellmax(cases: list[Case], runs: int, steps: int, repeat: int, seed: int) -> list:
    """Per case: steady-state run timing, and compile timing for the first case of a kind."""
    import jax
    import numpy as np

    from bellmax.bandits.agents import traced_config
    from bellmax.bandits.testbed import (
        COMPILER_OPTIONS,
        make_testbed,
        testbed_key,
        traced_params,
    )
    from bellmax.envs.bandit import BanditParams
    from bellmax.envs.registry import make

    env, _ = make("GaussianBandit-v0")
    key = testbed_key(seed)
    testbed = make_testbed(env, runs=runs, steps=steps, last=min(100, steps))
    jitted = jax.jit(testbed, compiler_options=COMPILER_OPTIONS)  # as run_testbed compiles it
    compiled_kinds: dict[str, str] = {}
    out = []
    for case in cases:
        config = traced_config(_bellmax_config(case))
        params = traced_params(BanditParams(mean_offset=case.mean_offset))
        args = (key, config, params)
        if case.kind not in compiled_kinds:
            t = H.time_jax(jitted, *args, repeat=repeat, warmup=1)
            run, extra = t.run, {**t.to_dict()}
            compiled_kinds[case.kind] = case.name
            jitted(*args)  # fill jit's own cache too, so the cases below reuse the program
        else:
            run = H.time_it(lambda a=args: jax.block_until_ready(jitted(*a)), repeat=repeat)
            extra = {
                **run.to_dict("run_"),
                "compile_s": 0.0,
                "compiled_with": compiled_kinds[case.kind],
            }
        curves = jax.device_get(jitted(*args))
        out.append(
            {
                "seconds": run.min,
                "late_reward": float(np.mean(curves.mean_reward[-100:])),
                "late_optimal": float(np.mean(curves.optimal_action_rate[-100:])),
                "late_reward_se": float(np.std(curves.late_reward) / math.sqrt(runs)),
                "late_optimal_se": float(np.std(curves.late_optimal) / math.sqrt(runs)),
                **extra,
            }
        )
    return out


# --------------------------------------------------------------------------- NumPy
def numpy_testbed(case: Case, runs: int, steps: int, seed: int) -> Callable[[], dict]:
    """A vectorised NumPy testbed for `case`: arrays over runs, a loop over steps."""
    import numpy as np

    p = case.params
    last = min(100, steps)

    def argmax_random_ties(x: np.ndarray, u: np.ndarray) -> np.ndarray:
        is_max = x >= x.max(axis=1, keepdims=True)
        ties = is_max.sum(axis=1)
        j = np.minimum(np.floor(u * ties).astype(np.int64), ties - 1)
        rank = np.cumsum(is_max, axis=1) - 1
        return np.argmax(is_max & (rank == j[:, None]), axis=1)

    def run() -> dict:
        rng = np.random.default_rng(seed)
        rows = np.arange(runs)
        q_star = case.mean_offset + rng.standard_normal((runs, K))
        best = q_star.max(axis=1)
        values = np.full((runs, K), p.get("initial_value", 0.0))
        counts = np.zeros((runs, K))
        avg_reward = np.zeros(runs)
        mean_reward = np.empty(steps)
        optimal_rate = np.empty(steps)
        late_r = np.zeros(runs)
        late_o = np.zeros(runs)
        for t in range(steps):
            if case.kind == "eps":
                u = rng.random((runs, 2))
                greedy = argmax_random_ties(values, u[:, 1])
                random_arm = np.minimum((u[:, 1] * K).astype(np.int64), K - 1)
                a = np.where(u[:, 0] < p["epsilon"], random_arm, greedy)
            elif case.kind == "ucb":
                u = rng.random(runs)
                bonus = p["c"] * np.sqrt(math.log(t + 1) / np.maximum(counts, 1))
                score = np.where(counts == 0, np.inf, values + bonus)
                a = argmax_random_ties(score, u)
            elif case.kind == "gradient":
                e = np.exp(values - values.max(axis=1, keepdims=True))
                pi = e / e.sum(axis=1, keepdims=True)
                cdf = np.cumsum(pi, axis=1)
                u = rng.random(runs) * cdf[:, -1]
                a = np.minimum((cdf <= u[:, None]).sum(axis=1), K - 1)
            else:  # Thompson: N(0, 1) prior, unit noise
                std = 1.0 / np.sqrt(1.0 + counts)
                a = np.argmax(values + std * rng.standard_normal((runs, K)), axis=1)
            q_a = q_star[rows, a]
            reward = q_a + rng.standard_normal(runs)
            optimal = q_a >= best
            counts[rows, a] += 1
            if case.kind == "gradient":
                baseline = avg_reward if t > 0 else reward
                one_hot = np.zeros((runs, K))
                one_hot[rows, a] = 1.0
                values += p["alpha"] * (reward - baseline)[:, None] * (one_hot - pi)
            elif case.kind == "thompson":
                step = 1.0 / (1.0 + counts[rows, a])
                values[rows, a] += step * (reward - values[rows, a])
            else:
                step = p.get("alpha") or 1.0 / counts[rows, a]
                values[rows, a] += step * (reward - values[rows, a])
            avg_reward += (reward - avg_reward) / (t + 1)
            mean_reward[t] = reward.mean()
            optimal_rate[t] = optimal.mean()
            if t >= steps - last:
                late_r += reward
                late_o += optimal
        return {
            "late_reward": float(mean_reward[-last:].mean()),
            "late_optimal": float(optimal_rate[-last:].mean()),
            "late_reward_se": float((late_r / last).std() / math.sqrt(runs)),
            "late_optimal_se": float((late_o / last).std() / math.sqrt(runs)),
        }

    return run


def measure_numpy(case: Case, runs: int, steps: int, repeat: int, seed: int) -> dict:
    fn = numpy_testbed(case, runs, steps, seed)
    result: dict = {}

    def call():
        result.update(fn())

    timing = H.time_it(call, repeat=repeat, warmup=0)
    return {"seconds": timing.min, **result, **timing.to_dict("run_")}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="bandit problems (default 2000)")
    p.add_argument("--steps", type=int, default=None, help="pulls per run (default 1000)")
    p.add_argument("--repeat", type=int, default=None, help="timed samples per implementation")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    runs = args.runs or (100 if args.smoke else 2000)
    steps = args.steps or (50 if args.smoke else 1000)
    quick = args.quick or args.smoke
    repeat = args.repeat or (1 if args.smoke else 3 if quick else 7)
    np_repeat = repeat  # as many timed samples as ours: the headline is each side's fastest
    for name, value in (("--runs", runs), ("--steps", steps), ("--repeat", repeat)):
        if value < 1:
            p.error(f"{name} must be >= 1, got {value}")
    cases = [CASES[2], CASES[4]] if args.smoke else CASES

    H.log(f"{BENCH}: bellmax, {len(cases)} configurations, {runs} runs x {steps} steps")
    ours_all = measure_bellmax(cases, runs, steps, repeat, args.seed)
    for case, ours in zip(cases, ours_all, strict=True):
        H.log(f"{BENCH}: numpy, {case.name}")
        peer = measure_numpy(case, runs, steps, np_repeat, args.seed)
        agree = all(
            abs(ours[f] - peer[f]) < 5 * math.hypot(ours[f + "_se"], peer[f + "_se"]) + 1e-9
            for f in ("late_reward", "late_optimal")
        )
        rec = H.result(
            BENCH,
            ours["seconds"],
            peer["seconds"],
            "s",
            case=f"{case.name}, {runs} runs x {steps} steps, k={K}",
            peer_name="numpy (vectorised over runs, loop over steps)",
            peer_version=H.package_version("numpy"),
            quick=quick,
            runs=runs,
            steps=steps,
            goal_s=GOAL_S,
            meets_goal=ours["seconds"] <= GOAL_S,
            agree=agree,
            **{f"ours_{k}": v for k, v in ours.items() if k != "seconds"},
            **{f"peer_{k}": v for k, v in peer.items() if k != "seconds"},
        )
        H.emit(rec, args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
