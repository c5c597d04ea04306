"""`bellmax bandit`: bandit agents on the k-armed testbed (Sutton & Barto, chapter 2).

    bellmax bandit --agent eps-greedy --epsilon 0.1 --runs 2000 --steps 1000 --json
    bellmax bandit --agent greedy eps-greedy:epsilon=0.01 eps-greedy:epsilon=0.1 --plot fig2_2.png
    bellmax bandit --agent gradient gradient:baseline=false --mean-offset 4 --plot fig2_5.png

Also `tour_section(ctx)`: the tour's bandit section (Figure 2.2 and UCB).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import jax
import numpy as np
import tyro

from bellmax.bandits.testbed import DEFAULT_LAST
from bellmax.core.display import plural
from bellmax.core.io import check_output_path
from bellmax.envs.bandit import BanditParams, GaussianBandit
from bellmax.train.io import atomic_savefig, to_strict_json

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = ["BanditArgs", "plot_testbed", "resolve_agents", "run_bandit", "tour_section"]

#: Options that set an agent config field, in `BanditArgs` (the field names are the same).
_AGENT_OPTIONS = (
    "epsilon",
    "alpha",
    "initial_value",
    "c",
    "baseline",
    "prior_mean",
    "prior_std",
    "noise_std",
)


#: The help's default for an agent option left out: each agent keeps its own value.
_AGENTS_OWN = "(default: each agent's own)"
_AgentFloat = Annotated[
    float | None, tyro.conf.arg(metavar="FLOAT", help_behavior_hint=_AGENTS_OWN)
]


@dataclasses.dataclass(frozen=True)
class BanditArgs:
    """Run bandit agents on the k-armed Gaussian testbed (Sutton & Barto ch. 2); print or plot.

    Agents: greedy, eps-greedy (epsilon 0.1), optimistic (Q1 5, alpha 0.1), ucb (c 2),
    gradient (alpha 0.1, with baseline), thompson. One agent: `--agent ucb --c 1`. Several:
    `--agent NAME[:KEY=VALUE,...] ...`, e.g. `--agent greedy eps-greedy:epsilon=0.01
    eps-greedy:epsilon=0.1 --plot fig.png`; an option such as `--alpha 0.1` then applies to
    every listed agent that has it (unless its spec sets it). `--json` prints one object:
    for one agent its `mean_reward` and `optimal_action_rate` per step, their averages over
    the last `--last` steps (`late_mean_reward`, `late_optimal_action_rate`), `seconds` and
    `compile_seconds`; for several, one such entry per agent under `agents`.
    """

    agent: Annotated[tuple[str, ...], tyro.conf.arg(metavar="NAME[:KEY=VALUE,...] ...")] = (
        "eps-greedy",
    )
    """Agents to run: NAME or NAME:KEY=VALUE[,KEY=VALUE] (e.g. ucb:c=1, gradient:baseline=false)."""
    epsilon: _AgentFloat = None
    """Exploration probability in [0, 1] (eps-greedy, optimistic)."""
    alpha: _AgentFloat = None
    """Constant step size (action values: in (0, 1]; gradient: > 0)."""
    initial_value: _AgentFloat = None
    """Initial action-value estimate Q1 (eps-greedy, greedy, optimistic)."""
    c: _AgentFloat = None
    """UCB exploration strength c >= 0."""
    baseline: Annotated[
        bool | None, tyro.conf.arg(metavar="{True,False}", help_behavior_hint=_AGENTS_OWN)
    ] = None
    """Gradient bandit: subtract the average reward (True) or not (False)."""
    prior_mean: _AgentFloat = None
    """Thompson sampling: prior mean of every arm."""
    prior_std: _AgentFloat = None
    """Thompson sampling: prior standard deviation, > 0."""
    noise_std: _AgentFloat = None
    """Thompson sampling: assumed reward noise standard deviation, > 0."""
    runs: int = 2000
    """Independent runs (bandit problems) to average over."""
    steps: int = 1000
    """Pulls per run."""
    k: int = 10
    """Number of arms."""
    seed: int = 0
    """Random seed (every agent sees the same bandit problems)."""
    mean_offset: float = 0.0
    """Mean of the true arm values (4 for the gradient-bandit Figure 2.5)."""
    arm_mean_std: float = 1.0
    """Standard deviation of the true arm values."""
    reward_std: float = 1.0
    """Standard deviation of a reward around its arm's value."""
    walk_std: float = 0.0
    """Random-walk step of the arm values per pull (Exercise 2.5's nonstationary testbed)."""
    last: Annotated[
        int | None,
        tyro.conf.arg(
            metavar="INT", help_behavior_hint=f"(default: {DEFAULT_LAST}, or --steps if fewer)"
        ),
    ] = None
    """Late window: the averages are over the last this many steps (the book: 901-1000)."""
    json: bool = False
    """Print one JSON object instead of a table."""
    plot: Annotated[
        str | None, tyro.conf.arg(metavar="FILE", help_behavior_hint="(default: no plot)")
    ] = None
    """Write both curves (average reward, % optimal action) of every agent to this image file."""


# ---------------------------------------------------------------------- agents from options
def resolve_agents(args: BanditArgs) -> list[tuple[str, str, Any]]:
    """The `(name, label, config)` of every agent `args` asks for.

    Raises:
      ValueError / UnknownNameError: an unknown agent or option, a value out of range, or an
        option (e.g. `--c`) that none of the listed agents has.
    """
    from bellmax.bandits.agents import AGENTS, agent_label, make_agent, parse_agent_spec

    specs = args.agent
    if isinstance(specs, str):
        specs = (specs,)
    if not specs:
        raise ValueError("--agent needs at least one agent, e.g. --agent eps-greedy.")
    parsed = [parse_agent_spec(spec) for spec in specs]
    given = {o: getattr(args, o) for o in _AGENT_OPTIONS if getattr(args, o) is not None}
    used: set[str] = set()
    agents = []
    for name, overrides in parsed:
        preset = AGENTS[name]
        fields = {f.name for f in dataclasses.fields(preset.config_type)} - set(preset.fixed)
        for option, value in given.items():
            if option in fields:
                used.add(option)
                overrides.setdefault(option, value)
        config = make_agent(name, **overrides)
        agents.append((name, agent_label(config, name), config))
    for option in given.keys() - used:
        owners = sorted(
            n
            for n, p in AGENTS.items()
            if option in {f.name for f in dataclasses.fields(p.config_type)} - set(p.fixed)
        )
        flag = "--" + option.replace("_", "-")
        raise ValueError(
            f"{flag} does not apply to {', '.join(n for n, _ in parsed)}; it is an option of "
            f"{', '.join(owners)}. Drop it or add such an agent."
        )
    labels = [label for _, label, _ in agents]
    for i, (name, label, config) in enumerate(agents):  # a legend needs distinct labels
        if labels.count(label) > 1:
            agents[i] = (name, f"{label} #{labels[: i + 1].count(label)}", config)
    return agents


def _check_plot_path(path: str) -> Path:
    from matplotlib.backend_bases import FigureCanvasBase

    target = check_output_path(path, kind="file", option="--plot")
    suffix = target.suffix.lstrip(".").lower()
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(
            f"--plot {path!r}: cannot tell the image format from the suffix "
            f"{target.suffix or '(none)'!r}; use one of "
            + ", ".join(f".{s}" for s in sorted(supported))
            + " (e.g. curves.png)."
        )
    return target


# ---------------------------------------------------------------------- plotting
def plot_testbed(results: Sequence[Any], labels: Sequence[str], *, title: str | None = None):
    """Figure 2.2-style plot: average reward and % optimal action against steps, per agent.

    Args:
      results: `TestbedResult`s.
      labels: one legend label per result.
      title: figure title (default: describes the testbed).

    Returns:
      A Matplotlib `Figure` (made without pyplot).
    """
    from matplotlib.figure import Figure

    if len(results) != len(labels):
        raise ValueError(f"got {len(results)} results but {len(labels)} labels; give one each.")
    fig = Figure(figsize=(8, 6.4), layout="constrained")
    ax_r, ax_o = fig.subplots(2, 1, sharex=True)
    for i, (res, label) in enumerate(zip(results, labels, strict=True)):
        x = np.arange(1, res.steps + 1)
        color = f"C{i % 10}"
        ax_r.plot(x, res.mean_reward, color=color, lw=1.0, label=label)
        ax_o.plot(x, 100.0 * res.optimal_action_rate, color=color, lw=1.0, label=label)
    ax_r.set_ylabel("Average reward")
    ax_o.set_ylabel("% Optimal action")
    ax_o.set_xlabel("Steps")
    ax_o.set_ylim(0, 100)
    for ax in (ax_r, ax_o):
        ax.grid(alpha=0.3)
    ax_r.legend(loc="lower right", fontsize=8)
    if results:
        first = results[0]
        title = title or f"{first.runs} runs of the testbed, {first.steps} steps"
    if title:
        fig.suptitle(title)
    return fig


# ---------------------------------------------------------------------- the command
def _rounded(x: np.ndarray) -> list[float]:
    return np.round(np.asarray(x, np.float64), 6).tolist()


def _entry(label: str, name: str, result: Any) -> dict[str, Any]:
    config = result.config
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {
        "agent": label,
        "name": name,
        "config": {"type": type(config).__name__, **fields},
        "mean_reward": _rounded(result.mean_reward),
        "optimal_action_rate": _rounded(result.optimal_action_rate),
        "late_mean_reward": result.late_mean_reward,
        "late_optimal_action_rate": result.late_optimal_action_rate,
        # null with one run (no spread to estimate): strict JSON has no NaN
        "late_mean_reward_stderr": _finite_or_none(result.late_reward_stderr),
        "late_optimal_action_rate_stderr": _finite_or_none(result.late_optimal_stderr),
        "seconds": result.seconds,
        "compile_seconds": result.compile_seconds,
    }


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _pm(value: float, stderr: float, scale: float, digits: int) -> str:
    """`value ± stderr` (`± n/a` for one run, whose stderr is undefined)."""
    spread = f"{scale * stderr:.{digits}f}" if math.isfinite(stderr) else "n/a"
    return f"{scale * value:.{digits}f} ± {spread}"


def run_bandit(args: BanditArgs) -> int:
    """`bellmax bandit`: run the agents, print a table or JSON, optionally write the plot."""
    from bellmax.bandits.testbed import check_sizes, run_testbeds

    runs, steps, last = check_sizes(args.runs, args.steps, args.last, options=True)
    plot_path = _check_plot_path(args.plot) if args.plot is not None else None
    agents = resolve_agents(args)
    env = GaussianBandit(args.k)
    params = BanditParams(
        mean_offset=args.mean_offset,
        arm_mean_std=args.arm_mean_std,
        reward_std=args.reward_std,
        walk_std=args.walk_std,
    )
    results = run_testbeds(
        [config for _, _, config in agents],
        runs=runs,
        steps=steps,
        seed=args.seed,
        env=env,
        env_params=params,
        last=last,
    )
    names = [name for name, _, _ in agents]
    labels = [label for _, label, _ in agents]
    if plot_path is not None:
        fig = plot_testbed(
            results,
            labels,
            title=f"{args.k}-armed testbed: {args.runs} runs, {args.steps} steps",
        )
        atomic_savefig(fig, plot_path, dpi=110)

    header = {
        "runs": args.runs,
        "steps": args.steps,
        "k": args.k,
        "seed": args.seed,
        "last": last,
        "late_steps": [steps - last + 1, steps],
        "env_params": {
            "mean_offset": args.mean_offset,
            "arm_mean_std": args.arm_mean_std,
            "reward_std": args.reward_std,
            "walk_std": args.walk_std,
        },
    }
    if plot_path is not None:
        header["plot"] = os.fspath(plot_path)
    entries = [_entry(lab, n, r) for lab, n, r in zip(labels, names, results, strict=True)]
    if args.json:
        if len(entries) == 1:
            out = {**header, **entries[0]}
        else:
            out = {
                **header,
                "agents": entries,
                "seconds": sum(r.seconds for r in results),
                "compile_seconds": sum(r.compile_seconds for r in results),
            }
        print(to_strict_json(out, indent=None))
        return 0

    from rich.console import Console
    from rich.table import Table

    lo, hi = header["late_steps"]
    table = Table(
        title=f"{args.k}-armed testbed, {plural(args.runs, 'run')} x "
        f"{plural(args.steps, 'step')} "
        f"(late = steps {lo}-{hi})",
        title_justify="left",
    )
    for col in ("agent", "late reward", "late % optimal", "run s", "compile s"):
        table.add_column(col, justify="left" if col == "agent" else "right")
    for label, r in zip(labels, results, strict=True):
        table.add_row(
            label,
            _pm(r.late_mean_reward, r.late_reward_stderr, 1, 3),
            _pm(r.late_optimal_action_rate, r.late_optimal_stderr, 100, 1),
            f"{r.seconds:.2f}",
            f"{r.compile_seconds:.2f}",
        )
    console = Console(soft_wrap=False)
    console.print(table)
    if plot_path is not None:
        console.print(f"plot: {plot_path}")
    return 0


# ---------------------------------------------------------------------- the tour
def tour_section(ctx: Any) -> None:
    """The tour's bandit section: Figure 2.2 (epsilon-greedy) with UCB c = 2 beside it."""
    from bellmax.bandits.agents import UCB, EpsilonGreedy, agent_label
    from bellmax.bandits.testbed import run_testbeds

    runs, steps = ctx.size(2000, 200), ctx.size(1000, 300)
    configs = {
        "greedy": EpsilonGreedy(epsilon=0.0),
        "eps0.01": EpsilonGreedy(epsilon=0.01),
        "eps0.1": EpsilonGreedy(epsilon=0.1),
        "ucb2": UCB(c=2.0),
    }
    # A seed from the section's key: the testbed's own (Philox) keys compile faster than
    # the tour's default keys, and `bellmax bandit` then shares the compiled programs.
    seed = int(jax.random.randint(ctx.key("bandits"), (), 0, 2**31 - 1))
    results = run_testbeds(list(configs.values()), runs=runs, steps=steps, seed=seed)
    labels = [agent_label(c) for c in configs.values()]
    last = results[0].last
    ctx.report.section(
        "Bandits",
        "The 10-armed testbed of Sutton & Barto (section 2.3): each run draws true arm values "
        "q*(a) ~ N(0, 1) and pays rewards N(q*(a), 1). Sample-average epsilon-greedy agents "
        "reproduce Figure 2.2: the greedy agent (epsilon = 0) locks onto a poor arm, "
        "epsilon = 0.1 finds the best arm soonest, epsilon = 0.01 learns slower but would "
        "end higher; UCB with c = 2 (Figure 2.4) explores by uncertainty instead and does "
        f"best. {runs} runs x {steps} steps per agent, each agent type one compiled "
        "`jit(scan(vmap(...)))` call.",
    )
    ctx.report.image(
        plot_testbed(results, labels, title=f"10-armed testbed, {runs} runs"),
        "Average reward and % optimal action per step (Figure 2.2 with UCB).",
        name="bandit_testbed",
    )
    ctx.report.table(
        ["agent", f"late reward (last {last} steps)", "late % optimal", "run s", "compile s"],
        [
            [
                label,
                r.late_mean_reward,
                100 * r.late_optimal_action_rate,
                round(r.seconds, 3),
                round(r.compile_seconds, 2),
            ]
            for label, r in zip(labels, results, strict=True)
        ],
    )
    s = ctx.report.summary
    for key, r in zip(configs, results, strict=True):
        s[f"bandit_{key}_late_reward"] = round(r.late_mean_reward, 4)
        s[f"bandit_{key}_optimal_fraction"] = round(r.late_optimal_action_rate, 4)
    s["bandit_runs"] = runs
    s["bandit_steps"] = steps
