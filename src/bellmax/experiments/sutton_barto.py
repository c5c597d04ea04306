"""Sutton & Barto, Reinforcement Learning: An Introduction (2nd ed., 2018), reproduced.

Each experiment runs the book's setup with bellmax's own algorithms and writes the figure
as a PNG plus its data as JSON. `quick=True` shrinks the budgets for tests; the default is
the book's settings. Reference numbers: ../shared/reference/sutton-barto.md.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import numpy as np

import bellmax
from bellmax.bandits.agents import UCB, EpsilonGreedy, GradientBandit
from bellmax.bandits.testbed import run_testbeds
from bellmax.envs.blackjack import Blackjack
from bellmax.envs.maximization_bias import LEFT
from bellmax.experiments.base import Experiment, ExperimentContext, figure
from bellmax.tabular.dp import evaluate_policy, greedy_policy, value_iteration
from bellmax.tabular.mc import (
    MCExploringStartsConfig,
    MCPredictionConfig,
    OffPolicyMCConfig,
    mc_exploring_starts,
    mc_prediction,
    off_policy_mc_prediction,
)
from bellmax.tabular.td import (
    DoubleQLearningConfig,
    QLearningConfig,
    SarsaConfig,
    TD0Config,
    double_q_learning,
    q_learning,
    sarsa,
    td0_prediction,
)

EXPERIMENTS: dict[str, Experiment] = {}


def _register(name: str, source: str):
    """Add the decorated experiment to `EXPERIMENTS`; its docstring is the description."""

    def deco(fn):
        EXPERIMENTS[name] = Experiment(name, source, inspect.getdoc(fn), fn)
        return fn

    return deco


def _tabular(env_id: str) -> tuple[Any, Any, Any]:
    """`(env, params, mdp)`: a registered environment, its default params and its exact MDP."""
    env, params = bellmax.make(env_id)
    return env, params, env.tabular_mdp(params)


def _finish(ctx: ExperimentContext, fig, ax, name: str, data: dict, **labels: Any) -> dict:
    """Label `ax` (`ax.set(**labels)`: xlabel, ylabel, title), add its legend and save `fig`
    as `name`; return `data`."""
    ax.set(**labels)
    ax.legend()
    ctx.save(fig, name)
    return data


def _round(x: Any, digits: int = 4) -> Any:
    return np.round(np.asarray(x, np.float64), digits).tolist()


# ------------------------------------------------------------------------ chapter 2
def _testbed(
    ctx: ExperimentContext, labelled: list[tuple[str, Any]], **kw: Any
) -> tuple[list, dict]:
    runs = 200 if ctx.quick else 2000
    steps = 300 if ctx.quick else 1000
    results = run_testbeds([c for _, c in labelled], runs=runs, steps=steps, seed=ctx.seed, **kw)
    data = {
        label: {
            "late_mean_reward": round(r.late_mean_reward, 4),
            "late_optimal_action_rate": round(r.late_optimal_action_rate, 4),
            "mean_reward": _round(r.mean_reward),
            "optimal_action_rate": _round(r.optimal_action_rate),
        }
        for (label, _), r in zip(labelled, results, strict=True)
    }
    data["runs"], data["steps"] = runs, steps
    return results, data


def _plot_testbed(ctx, name, title, labelled, results, *, reward=True):
    fig, axes = figure(2 if reward else 1, 1, size=(7.0, 6.5 if reward else 3.8), sharex=True)
    ax_r = axes[0, 0]
    ax_o = axes[1, 0] if reward else axes[0, 0]
    for (label, _), r in zip(labelled, results, strict=True):
        steps = np.arange(1, r.steps + 1)
        if reward:
            ax_r.plot(steps, r.mean_reward, lw=1, label=label)
        ax_o.plot(steps, 100 * r.optimal_action_rate, lw=1, label=label)
    if reward:
        ax_r.set_ylabel("average reward")
        ax_r.legend(fontsize=8)
        ax_r.set_title(title)
    else:
        ax_o.set_title(title)
        ax_o.legend(fontsize=8)
    ax_o.set_ylabel("% optimal action")
    ax_o.set_xlabel("steps")
    ctx.save(fig, name)


@_register("ten-armed-testbed", "Figure 2.2")
def ten_armed_testbed(ctx: ExperimentContext) -> dict[str, Any]:
    """Greedy vs epsilon-greedy (0.01, 0.1) on the 10-armed testbed."""
    labelled = [(f"epsilon = {e}", EpsilonGreedy(epsilon=e)) for e in (0.0, 0.01, 0.1)]
    results, data = _testbed(ctx, labelled)
    _plot_testbed(ctx, "figure-2-2", "Figure 2.2: the 10-armed testbed", labelled, results)
    return data


@_register("optimistic-initial-values", "Figure 2.3")
def optimistic_initial_values(ctx: ExperimentContext) -> dict[str, Any]:
    """Optimistic greedy (Q1 = 5) vs realistic epsilon-greedy."""
    labelled = [
        (
            "optimistic, greedy: Q1 = 5, epsilon = 0",
            EpsilonGreedy(epsilon=0.0, alpha=0.1, initial_value=5.0),
        ),
        ("realistic, epsilon-greedy: Q1 = 0, epsilon = 0.1", EpsilonGreedy(epsilon=0.1, alpha=0.1)),
    ]
    results, data = _testbed(ctx, labelled)
    _plot_testbed(
        ctx, "figure-2-3", "Figure 2.3: optimistic initial values", labelled, results, reward=False
    )
    return data


@_register("ucb", "Figure 2.4")
def ucb(ctx: ExperimentContext) -> dict[str, Any]:
    """UCB (c = 2) vs epsilon-greedy (0.1) average reward."""
    labelled = [
        ("UCB c = 2", UCB(c=2.0)),
        ("epsilon-greedy epsilon = 0.1", EpsilonGreedy(epsilon=0.1)),
    ]
    results, data = _testbed(ctx, labelled)
    data["ucb_reward_at_step_11"] = round(float(results[0].mean_reward[10]), 4)
    _plot_testbed(ctx, "figure-2-4", "Figure 2.4: upper confidence bound", labelled, results)
    return data


@_register("gradient-bandit", "Figure 2.5")
def gradient_bandit(ctx: ExperimentContext) -> dict[str, Any]:
    """Gradient bandit with and without baseline (alpha 0.1, 0.4), means +4."""
    labelled = [
        (f"alpha = {a}, {'with' if b else 'without'} baseline", GradientBandit(alpha=a, baseline=b))
        for b in (True, False)
        for a in (0.1, 0.4)
    ]
    env, params = bellmax.make("GaussianBandit-v0", mean_offset=4.0)
    results, data = _testbed(ctx, labelled, env=env, env_params=params)
    _plot_testbed(
        ctx,
        "figure-2-5",
        "Figure 2.5: gradient bandit (true means around +4)",
        labelled,
        results,
        reward=False,
    )
    return data


# ------------------------------------------------------------------------ chapters 3 and 4
_ARROWS = {0: (0, 1), 1: (1, 0), 2: (0, -1), 3: (-1, 0)}  # up, right, down, left as (dx, dy)


def _grid_values(env, values) -> np.ndarray:
    rows, cols = env.grid_shape
    grid = np.full((rows, cols), np.nan)
    for s in range(rows * cols):
        r, c = env.cell_of(s)
        grid[r, c] = values[s]
    return grid


def _draw_grid(ax, grid, title, *, fmt="{:.1f}", policy_q=None, env=None):
    rows, cols = grid.shape
    ax.imshow(grid, cmap="RdYlGn", alpha=0.55)
    for r in range(rows):
        for c in range(cols):
            if np.isfinite(grid[r, c]):
                ax.text(c, r, fmt.format(grid[r, c]), ha="center", va="center", fontsize=8)
    if policy_q is not None:
        for s in range(rows * cols):
            r, c = env.cell_of(s)
            q = policy_q[s]
            best = np.flatnonzero(q >= q.max() - 1e-9)
            for a in best:
                dx, dy = _ARROWS[int(a)]
                ax.arrow(c, r, 0.3 * dx, -0.3 * dy, head_width=0.08, color="navy", alpha=0.7)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


@_register("gridworld-5x5", "Figures 3.2, 3.5")
def gridworld_5x5(ctx: ExperimentContext) -> dict[str, Any]:
    """5x5 gridworld: random-policy values, v* and the optimal policy."""
    env, params, mdp = _tabular("GridWorld5x5-v0")
    uniform = np.full(mdp.shape, 1.0 / mdp.num_actions)
    v_random = np.asarray(evaluate_policy(mdp, uniform).values)
    opt = value_iteration(mdp, tol=1e-10)
    v_star, q_star = np.asarray(opt.values), np.asarray(opt.q_values)
    fig, axes = figure(1, 3, size=(13, 4.3))
    _draw_grid(axes[0, 0], _grid_values(env, v_random), "Figure 3.2: v of the random policy")
    _draw_grid(axes[0, 1], _grid_values(env, v_star), "Figure 3.5: v*")
    _draw_grid(
        axes[0, 2],
        _grid_values(env, v_star),
        "Figure 3.5: optimal policy",
        fmt="",
        policy_q=q_star,
        env=env,
    )
    ctx.save(fig, "figure-3-2-3-5")
    return {
        "random_policy_values": _round(_grid_values(env, v_random), 4),
        "optimal_values": _round(_grid_values(env, v_star), 4),
        "v_star_A": round(float(v_star[1]), 4),
        "value_iteration_sweeps": int(opt.iterations),
    }


@_register("gridworld-4x4", "Figure 4.1")
def gridworld_4x4(ctx: ExperimentContext) -> dict[str, Any]:
    """4x4 gridworld: iterative policy evaluation of the random policy, k = 0..inf."""
    env, params, mdp = _tabular("GridWorld4x4-v0")
    uniform = np.full(mdp.shape, 1.0 / mdp.num_actions)
    P, R = mdp.dense_P(), np.asarray(mdp.R)
    ks = [0, 1, 2, 3, 10]
    fig, axes = figure(2, len(ks) + 1, size=(16, 6.0))
    data: dict[str, Any] = {}
    for col, k in enumerate([*ks, None]):
        if k is None:
            res = evaluate_policy(mdp, uniform, method="jacobi", tol=1e-4)
            v, label = np.asarray(res.values), "k = inf"
            data["sweeps_to_delta_1e-4"] = int(res.iterations)
        elif k == 0:
            v, label = np.zeros(mdp.num_states), "k = 0"
        else:
            res = evaluate_policy(mdp, uniform, method="jacobi", tol=1e-12, max_iterations=k)
            v, label = np.asarray(res.values), f"k = {k}"
        q = R + mdp.gamma * P @ v
        grid = _grid_values(env, v)
        data[label] = _round(grid, 4)
        _draw_grid(axes[0, col], grid, f"v_k, {label}", fmt="{:.1f}")
        _draw_grid(
            axes[1, col],
            np.zeros_like(grid),
            f"greedy policy, {label}",
            fmt="",
            policy_q=q,
            env=env,
        )
    gs = evaluate_policy(mdp, uniform, method="gauss-seidel", tol=1e-4)
    data["in_place_sweeps_to_delta_1e-4"] = int(gs.iterations)
    ctx.save(fig, "figure-4-1")
    return data


@_register("jacks-car-rental", "Figure 4.2")
def jacks_car_rental(ctx: ExperimentContext) -> dict[str, Any]:
    """Jack's car rental: the policies of policy iteration and the final value."""
    env, params, mdp = _tabular("JacksCarRental-v0")
    P, R, gamma = mdp.dense_P(), np.asarray(mdp.R), float(mdp.gamma)
    n = env.max_cars + 1
    # Moving more cars than a lot holds moves what it holds: the same value as that move, so
    # an argmax could pick the infeasible copy (move 5 from an empty lot). Only feasible moves.
    valid = np.asarray(env.valid_actions(params))
    policy = np.full(mdp.num_states, env.max_move, np.int32)  # move no cars
    policies, v = [policy], None
    for _ in range(10):
        v = np.asarray(evaluate_policy(mdp, policy).values)
        q = np.where(valid, R + gamma * P @ v, -np.inf)
        new = np.asarray(greedy_policy(q, policy, tie_tol=1e-9))
        if np.array_equal(new, policy):
            break
        policy = new
        policies.append(policy)
    fig, axes = figure(2, 3, size=(13, 8))
    for i, pol in enumerate(policies[:5]):
        ax = axes.flat[i]
        moves = (pol - env.max_move).reshape(n, n)
        cs = ax.contourf(
            np.arange(n), np.arange(n), moves, levels=np.arange(-5.5, 6.5), cmap="coolwarm"
        )
        ax.set_title(f"pi_{i}", fontsize=9)
        ax.set_xlabel("# cars at second location")
        ax.set_ylabel("# cars at first location")
    fig.colorbar(cs, ax=axes[0, :].tolist(), label="cars moved first -> second")
    ax = axes.flat[5]
    im = ax.imshow(v.reshape(n, n), origin="lower", cmap="viridis")
    fig.colorbar(im, ax=ax)
    ax.set_title(f"v_pi{len(policies) - 1}", fontsize=9)
    ax.set_xlabel("# cars at second location")
    ax.set_ylabel("# cars at first location")
    ctx.save(fig, "figure-4-2")
    return {
        "improvements": len(policies) - 1,
        "value_at_0_0": round(float(v[0]), 2),
        "value_at_20_20": round(float(v[-1]), 2),
        "final_policy_moves": (policies[-1] - env.max_move).reshape(n, n).tolist(),
    }


def _in_place_sweeps(mdp: Any, valid: np.ndarray, keep: tuple[int, ...]) -> dict[int, np.ndarray]:
    """The values after each of `keep` sweeps of the book's value iteration (section 4.4: in
    place, states in order, each update seeing the ones before it); not the two-array sweeps
    of `value_iteration`, whose first sweep is a flat step (the book's rises above 50)."""
    P, R, gamma = mdp.dense_P(), np.asarray(mdp.R), float(mdp.gamma)
    v = np.zeros(mdp.num_states)
    out = {}
    for k in range(1, max(keep) + 1):
        for s in range(mdp.num_states):
            if valid[s].any():
                v[s] = np.max(np.where(valid[s], R[s] + gamma * P[s] @ v, -np.inf))
        if k in keep:
            out[k] = v.copy()
    return out


@_register("gamblers-problem", "Figure 4.3")
def gamblers_problem(ctx: ExperimentContext) -> dict[str, Any]:
    """The gambler's problem (p_h = 0.4): value-iteration sweeps and a final policy."""
    env, params, mdp = _tabular("GamblersProblem-v0")
    valid = env.valid_actions(params)
    fig, axes = figure(2, 1, size=(7, 7))
    ax = axes[0, 0]
    capital = np.arange(1, mdp.num_states - 1)
    sweeps = _in_place_sweeps(mdp, valid, (1, 2, 3, 32))
    for k, v in sweeps.items():
        ax.plot(capital, v[1:-1], lw=1, label=f"sweep {k}")
    final = value_iteration(mdp, tol=1e-12)
    v = np.asarray(final.values)
    ax.plot(capital, v[1:-1], lw=1.5, color="k", label=f"final ({int(final.iterations)} sweeps)")
    ax.set_ylabel("value estimates")
    ax.legend(fontsize=8)
    q = np.where(valid, np.asarray(final.q_values), -np.inf)
    # the book's figure: the smallest stake among the (numerically) optimal ones
    best = np.argmax(q >= q.max(axis=1, keepdims=True) - 1e-9, axis=1) + 1
    axes[1, 0].step(capital, best[1:-1], where="mid")
    axes[1, 0].set_ylabel("final policy (stake)")
    axes[1, 0].set_xlabel("capital")
    ctx.save(fig, "figure-4-3")
    return {f"v_star_{s}": round(float(v[s]), 6) for s in (1, 25, 50, 75, 99)} | {
        "policy_smallest_optimal_stake": best[1:-1].tolist(),
        "sweeps_at_25_50_75_99": {
            str(k): [round(float(w[s]), 6) for s in (25, 50, 75, 99)] for k, w in sweeps.items()
        },
    }


# ------------------------------------------------------------------------ chapter 5
def _blackjack_stick_on_20(env, mdp) -> np.ndarray:
    """Deterministic policy `[S]`: stick (0) on 20 or 21, else hit (1)."""
    code = np.arange(mdp.num_states) // 10
    total = np.where(code < 18, code + 4, np.where(code < 28, code - 18 + 12, 21))
    return np.where(total >= 20, 0, 1).astype(np.int32)


def _surface_panels(fig_axes, tables, titles):
    for ax, table, title in zip(fig_axes, tables, titles, strict=True):
        im = ax.imshow(
            table,
            origin="lower",
            cmap="viridis",
            vmin=-1,
            vmax=1,
            extent=(0.5, 10.5, 11.5, 21.5),
            aspect="auto",
        )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("dealer showing (1: ace)")
        ax.set_ylabel("player sum")
    return im


@_register("blackjack-mc", "Figure 5.1")
def blackjack_mc(ctx: ExperimentContext) -> dict[str, Any]:
    """Blackjack: first-visit MC values of stick-on-20 after 10,000 and 500,000 episodes."""
    env, params, mdp = _tabular("Blackjack-v0")
    policy = _blackjack_stick_on_20(env, mdp)
    idx = Blackjack.book_state_indices()  # [usable, sum - 12, dealer - 1]
    exact = np.asarray(evaluate_policy(mdp, policy).values)[idx]
    budgets = (10_000, 50_000) if ctx.quick else (10_000, 500_000)
    fig, axes = figure(2, 3, size=(13, 7.5))
    data: dict[str, Any] = {"exact_usable_13_dealer_2": round(float(exact[1, 1, 1]), 6)}
    for col, n in enumerate([*budgets, None]):
        if n is None:
            v, label = exact, "exact (DP)"
        else:
            res = mc_prediction(
                jax.random.PRNGKey(ctx.seed),
                env,
                policy,
                MCPredictionConfig(num_episodes=n, max_steps_per_episode=16),
                params=params,
            )
            v, label = np.asarray(res.v[0])[idx], f"after {n:,} episodes"
            data[f"max_abs_error_{n}"] = round(float(np.abs(v - exact).max()), 4)
            data[f"mean_abs_error_{n}"] = round(float(np.abs(v - exact).mean()), 4)
        im = _surface_panels(
            [axes[0, col], axes[1, col]],
            [v[1], v[0]],
            [f"usable ace, {label}", f"no usable ace, {label}"],
        )
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="value")
    ctx.save(fig, "figure-5-1")
    return data


@_register("blackjack-optimal", "Figure 5.2")
def blackjack_optimal(ctx: ExperimentContext) -> dict[str, Any]:
    """Blackjack: the optimal policy and v* (value iteration on the exact MDP; MC ES agreement)."""
    env, params, mdp = _tabular("Blackjack-v0")
    idx = Blackjack.book_state_indices()
    opt = value_iteration(mdp, tol=1e-12)
    q = np.asarray(opt.q_values)
    pi_star = np.argmax(q, axis=1)[idx]  # 0 stick, 1 hit
    v_star = np.asarray(opt.values)[idx]
    n = 100_000 if ctx.quick else 500_000
    es = mc_exploring_starts(
        jax.random.PRNGKey(ctx.seed),
        env,
        MCExploringStartsConfig(num_episodes=n, max_steps_per_episode=16),
        params=params,
        start_states=idx.ravel(),
    )
    pi_es = np.asarray(es.policy[0])[idx]
    gap = np.abs(q[:, 0] - q[:, 1])[idx]
    fig, axes = figure(2, 3, size=(13, 7.5))
    for row, usable in ((0, 1), (1, 0)):
        name = "usable ace" if usable else "no usable ace"
        for col, (pol, label) in enumerate(
            ((pi_star, "pi* (DP)"), (pi_es, f"MC ES, {n:,} episodes"))
        ):
            ax = axes[row, col]
            ax.imshow(
                1 - pol[usable],
                origin="lower",
                cmap="coolwarm",
                vmin=0,
                vmax=1,
                extent=(0.5, 10.5, 11.5, 21.5),
                aspect="auto",
            )
            ax.set_title(f"{label}, {name} (red: stick)", fontsize=9)
            ax.set_xlabel("dealer showing (1: ace)")
            ax.set_ylabel("player sum")
        im = _surface_panels([axes[row, 2]], [v_star[usable]], [f"v*, {name}"])
    fig.colorbar(im, ax=axes[:, 2].tolist(), shrink=0.6, label="v*")
    ctx.save(fig, "figure-5-2")
    clear = gap > 0.01  # states where the two actions differ clearly
    return {
        "stick_thresholds_no_usable_ace": {
            int(d + 1): int(12 + np.argmax(pi_star[0, :, d] == 0)) for d in range(10)
        },
        "mc_es_agreement": round(float(np.mean(pi_es == pi_star)), 4),
        "mc_es_agreement_where_clear": round(float(np.mean((pi_es == pi_star)[clear])), 4),
        "v_star_mean_book_states": round(float(v_star.mean()), 4),
    }


@_register("blackjack-importance-sampling", "Figure 5.3")
def blackjack_importance_sampling(ctx: ExperimentContext) -> dict[str, Any]:
    """Off-policy MC on one Blackjack state: ordinary vs weighted importance sampling."""
    env, params, mdp = _tabular("Blackjack-v0")
    target = _blackjack_stick_on_20(env, mdp)
    behaviour = np.full(mdp.shape, 0.5)
    s0 = int(Blackjack.book_state_indices()[1, 1, 1])  # usable ace, 13, dealer 2
    true = float(np.asarray(evaluate_policy(mdp, target).values)[s0])
    runs = 20 if ctx.quick else 100
    res = off_policy_mc_prediction(
        jax.random.PRNGKey(ctx.seed),
        env,
        target,
        behaviour,
        OffPolicyMCConfig(num_episodes=10_000, max_steps_per_episode=16),
        params=params,
        num_runs=runs,
        start_state=s0,
        track_states=[s0],
    )
    mse_o = np.mean((np.asarray(res.history_ordinary)[:, :, 0] - true) ** 2, axis=0)
    mse_w = np.mean((np.asarray(res.history_weighted)[:, :, 0] - true) ** 2, axis=0)
    fig, axes = figure(size=(7, 4.5))
    ax = axes[0, 0]
    episodes = np.arange(1, mse_o.size + 1)
    ax.plot(episodes, mse_o, label="ordinary importance sampling")
    ax.plot(episodes, mse_w, label="weighted importance sampling")
    ax.set_xscale("log")
    ax.set_ylim(0, 5)
    ax.set(
        xlabel="episodes (log scale)",
        ylabel=f"mean squared error (average over {runs} runs)",
        title=f"Figure 5.3: true value {true:.6f}",
    )
    ax.legend()
    ctx.save(fig, "figure-5-3")
    at = [9, 99, 999, 9999]
    return {
        "true_value": round(true, 6),
        "runs": runs,
        "mse_ordinary": {i + 1: round(float(mse_o[i]), 4) for i in at},
        "mse_weighted": {i + 1: round(float(mse_w[i]), 4) for i in at},
    }


# ------------------------------------------------------------------------ chapter 6
@_register("random-walk", "Example 6.2")
def random_walk(ctx: ExperimentContext) -> dict[str, Any]:
    """Random walk: TD(0) vs constant-alpha MC, RMS error over episodes."""
    env, params = bellmax.make("RandomWalk-v0")
    S = env.num_states
    true = env.true_values(params)[1:-1]
    policy = np.full((S, 2), 0.5)
    track = np.arange(1, S - 1)
    runs = 20 if ctx.quick else 100
    key = jax.random.PRNGKey(ctx.seed)
    fig, axes = figure(size=(7, 4.5))
    ax = axes[0, 0]
    data: dict[str, Any] = {"runs": runs}
    methods = (  # (data key, label, predict, its config, step sizes, line style)
        ("td", "TD", td0_prediction, TD0Config, (0.05, 0.1, 0.15), "-"),
        ("mc", "MC", mc_prediction, MCPredictionConfig, (0.01, 0.02, 0.03, 0.04), "--"),
    )
    for tag, label, predict, config_type, alphas, style in methods:
        for alpha in alphas:
            res = predict(
                key,
                env,
                policy,
                config_type(alpha=alpha, num_episodes=100, initial_value=0.5),
                params=params,
                num_runs=runs,
                track_states=track,
            )
            rms = np.sqrt(np.mean((np.asarray(res.history) - true) ** 2, axis=2)).mean(axis=0)
            ax.plot(np.arange(1, 101), rms, ls=style, label=f"{label}, alpha = {alpha}")
            data[f"{tag}_{alpha}_rms_after_100"] = round(float(rms[-1]), 4)
    ax.set(
        xlabel="walks / episodes",
        ylabel=f"RMS error, averaged over states and {runs} runs",
        title="Example 6.2: random walk",
    )
    ax.legend(fontsize=8)
    ctx.save(fig, "example-6-2")
    return data


def _greedy_path_length(env, params, policy, max_steps=200) -> int:
    """Steps the greedy policy takes from the start to a terminal state (max_steps if it never does)."""
    mdp = env.tabular_mdp(params)
    P = mdp.dense_P()
    s = int(np.argmax(np.asarray(mdp.initial)))
    term = np.asarray(mdp.terminal)
    for t in range(max_steps):
        if term[s]:
            return t
        s = int(np.argmax(P[s, int(policy[s])]))
    return max_steps


@_register("windy-gridworld", "Example 6.5")
def windy_gridworld(ctx: ExperimentContext) -> dict[str, Any]:
    """Windy gridworld: SARSA's episodes completed over time steps."""
    env, params = bellmax.make("WindyGridworld-v0")
    runs = 10
    # Episodes enough that none is cut short before step 8000: the shortest path is 15 steps
    # (with 170, a run past 170 episodes by step 8000 was counted as 170).
    res = sarsa(
        jax.random.PRNGKey(ctx.seed),
        env,
        SarsaConfig(alpha=0.5, epsilon=0.1, num_episodes=8000 // 15 + 1),
        params=params,
        num_runs=runs,
    )
    steps = np.cumsum(np.asarray(res.episodes.length), axis=1)
    fig, axes = figure(size=(7, 4.5))
    ax = axes[0, 0]
    ax.plot(steps[0], np.arange(1, steps.shape[1] + 1))
    ax.set_xlim(0, 8000)
    ax.set(
        xlabel="time steps",
        ylabel="episodes",
        title="Example 6.5: SARSA on the windy gridworld (run 0)",
    )
    ctx.save(fig, "example-6-5")
    done_by_8000 = (steps <= 8000).sum(axis=1)
    return {
        "episodes_completed_by_step_8000_mean": round(float(done_by_8000.mean()), 1),
        "runs": runs,
        "greedy_path_lengths": [
            _greedy_path_length(env, params, np.asarray(p)) for p in res.policy
        ],
    }


def _learn_each(learners, knobs, key, env, params, runs) -> dict[str, Any]:
    """Run each TD control learner `{name: (learn, config type)}` with the same knobs, key,
    environment and number of runs; their results by name."""
    return {
        name: learn(key, env, config_type(**knobs), params=params, num_runs=runs)
        for name, (learn, config_type) in learners.items()
    }


@_register("cliff-walking", "Example 6.6")
def cliff_walking(ctx: ExperimentContext) -> dict[str, Any]:
    """Cliff walking: SARSA (safe path) vs Q-learning (edge path)."""
    env, params = bellmax.make("CliffWalking-v0")
    runs = 10 if ctx.quick else 50
    key = jax.random.PRNGKey(ctx.seed)
    learners = {"SARSA": (sarsa, SarsaConfig), "Q-learning": (q_learning, QLearningConfig)}
    knobs = dict(alpha=0.5, epsilon=0.1, num_episodes=500)
    out = _learn_each(learners, knobs, key, env, params, runs)
    fig, axes = figure(size=(7, 4.5))
    ax = axes[0, 0]
    data: dict[str, Any] = {"runs": runs}
    for name, res in out.items():
        ret = np.asarray(res.episodes.episode_return).mean(axis=0)
        smooth = np.convolve(ret, np.ones(10) / 10, mode="valid")
        ax.plot(np.arange(10, 501), smooth, label=name)
        data[f"{name}_mean_return_episodes_101_500"] = round(float(ret[100:].mean()), 2)
        data[f"{name}_greedy_path_lengths"] = [
            _greedy_path_length(env, params, np.asarray(p)) for p in res.policy
        ]
    ax.set_ylim(-100, 0)
    return _finish(
        ctx,
        fig,
        ax,
        "example-6-6",
        data,
        xlabel="episodes",
        ylabel="sum of rewards during episode",
        title=f"Example 6.6: cliff walking (mean of {runs} runs, 10-episode moving average)",
    )


@_register("maximization-bias", "Figure 6.5")
def maximization_bias(ctx: ExperimentContext) -> dict[str, Any]:
    """Maximization bias: Q-learning vs Double Q-learning, % left actions from A."""
    env, params = bellmax.make("MaximizationBias-v0")
    runs = 1000 if ctx.quick else 10_000
    key = jax.random.PRNGKey(ctx.seed)
    learners = {
        "Q-learning": (q_learning, QLearningConfig),
        "Double Q-learning": (double_q_learning, DoubleQLearningConfig),
    }
    knobs = dict(alpha=0.1, epsilon=0.1, num_episodes=300, gamma=1.0)
    out = _learn_each(learners, knobs, key, env, params, runs)
    fig, axes = figure(size=(7, 4.5))
    ax = axes[0, 0]
    data: dict[str, Any] = {"runs": runs}
    for name, res in out.items():
        left = 100 * (np.asarray(res.episodes.first_action) == LEFT).mean(axis=0)
        ax.plot(np.arange(1, left.size + 1), left, label=name)
        data[f"{name}_percent_left_peak"] = round(float(left.max()), 1)
        data[f"{name}_percent_left_episodes_200_300"] = round(float(left[199:].mean()), 1)
    ax.axhline(5, ls="--", color="k", lw=0.8, label="optimal (5%)")
    return _finish(
        ctx,
        fig,
        ax,
        "figure-6-5",
        data,
        xlabel="episodes",
        ylabel="% left actions from A",
        title=f"Figure 6.5: maximization bias ({runs} runs)",
    )
