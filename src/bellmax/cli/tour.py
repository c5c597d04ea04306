"""`bellmax tour`: a guided tour of the library, written as an HTML report.

The tour is a list of sections (`SECTIONS`). Each is a function `fn(ctx) -> None` that runs
something small and adds text, figures, tables and headline numbers to `ctx.report`. A
section that raises is recorded in the report as a failure with its message; the others
still run, and `bellmax tour` exits with status 1 at the end. Adding a section:

    def bandits_section(ctx: TourContext) -> None:
        ctx.report.section("Bandits", "...")
        ctx.report.summary["bandit_eps0.1_optimal_fraction"] = ...

    SECTIONS.append(TourSection("Bandits", bandits_section))

Sections get their random key from `ctx.key(name)`, size themselves with `ctx.quick`
(tests run `tour --quick`), and draw on `matplotlib.figure.Figure` objects (no pyplot, so
no display or global backend is needed; `Report.image` renders them to PNG).
The whole tour must stay well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import functools
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from bellmax import __version__
from bellmax.cli import bandit as bandit_cli
from bellmax.cli import control as control_cli
from bellmax.cli import games as games_cli
from bellmax.cli import gps as gps_cli
from bellmax.cli import imitate as imitate_cli
from bellmax.cli import pomdp as pomdp_cli
from bellmax.cli import train as train_cli
from bellmax.core.checks import check_seed
from bellmax.core.io import check_output_path
from bellmax.core.xla import RUN_ONCE, jit_lightly
from bellmax.envs import make, registry
from bellmax.envs.cartpole import CartPoleParams, CartPoleSwingUpParams
from bellmax.envs.pendulum import PendulumParams, angle_normalize
from bellmax.train.io import to_strict_json
from bellmax.train.report import Report

# Imports inside functions are lazy on purpose (no cycle needs them): they keep `bellmax
# --help` and the other commands fast. The policy is in bellmax.cli's docstring.

__all__ = [
    "SECTIONS",
    "Rollout",
    "TourArgs",
    "TourContext",
    "TourResult",
    "TourSection",
    "draw_gridworld",
    "pendulum_energy_policy",
    "rollout",
    "run_tour",
    "run_tour_command",
]


@dataclasses.dataclass(frozen=True)
class TourArgs:
    """Run the guided tour and write a report (report.html, PNG plots, summary.json)."""

    out: str = "runs/tour"
    """Folder for report.html, the PNG plots and summary.json (created)."""
    quick: bool = False
    """Fewer seeds and smaller problems (what the tests run)."""
    seed: int = 0
    """Base random seed; every section derives its own key from it."""


@dataclasses.dataclass
class TourContext:
    """What a tour section gets: the report to add to, the size, and random keys."""

    report: Report
    """The report being built."""
    quick: bool = False
    """Make everything smaller (tests)."""
    seed: int = 0
    """Base seed."""

    def key(self, name: str) -> jax.Array:
        """A PRNG key for `name`, the same whatever order sections run in."""
        return jax.random.fold_in(jax.random.key(self.seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)

    def size(self, full: int, quick: int) -> int:
        """`full` normally, `quick` under `--quick`."""
        return quick if self.quick else full


@dataclasses.dataclass(frozen=True)
class TourSection:
    """One part of the tour."""

    title: str
    """Shown in progress lines and in the report if the section fails."""
    fn: Callable[[TourContext], None]
    """Adds to `ctx.report`; may raise (recorded as a failure)."""


@dataclasses.dataclass(frozen=True)
class TourResult:
    """What `run_tour` produced."""

    report_path: Path
    """The written `report.html`."""
    summary: dict[str, Any]
    """The contents of `summary.json`."""
    failures: list[tuple[str, str]]
    """`(section title, message)` of each failed section."""
    seconds: float
    """Wall time of the whole tour."""


# ---------------------------------------------------------------------- a jittable rollout
class _Step(NamedTuple):
    """What `rollout` records at each step (the scan's output)."""

    state: Any
    """The state after the step (frozen once the episode ended)."""
    action: jax.Array
    """The action taken."""
    reward: jax.Array
    """Its reward, 0 once the episode ended."""
    alive: jax.Array
    """Whether the episode was still running before the step."""


@struct.dataclass
class Rollout:
    """One episode, padded to a fixed length (the state is frozen once it ends)."""

    states: Any
    """Environment states `[T + 1]`: the start state then the state after each step."""
    actions: jax.Array
    """Action taken at each step `[T, ...]`."""
    rewards: jax.Array
    """Reward of each step, 0 after the episode ended, `[T]`."""
    length: jax.Array
    """Number of steps the episode lasted (at most `T`)."""

    @property
    def episode_return(self) -> jax.Array:
        """Sum of the rewards."""
        return self.rewards.sum(-1)


def rollout(
    env: Any,
    params: Any,
    policy: Callable[[jax.Array, jax.Array, Any], jax.Array],
    key: jax.Array,
    num_steps: int,
) -> Rollout:
    """Run one episode of at most `num_steps` steps with `policy(key, obs, state) -> action`.

    Jittable and vmappable (`num_steps` must be static). After the episode terminates or is
    truncated, the state stays frozen and rewards are 0.

    Args:
      env: a bellmax `Environment`.
      params: its `EnvParams`.
      policy: maps `(key, observation, state)` to an action.
      key: PRNG key.
      num_steps: number of steps to scan over.

    Returns:
      A `Rollout`.
    """
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def step(carry, k):
        obs, state, alive = carry
        k_act, k_env = jax.random.split(k)
        action = policy(k_act, obs, state)
        obs2, state2, reward, terminated, truncated, _ = env.step(k_env, state, action, params)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(alive, a, b), new, old)  # noqa: E731
        state = keep(state2, state)
        carry = (keep(obs2, obs), state, alive & ~(terminated | truncated))
        return carry, _Step(state, action, jnp.where(alive, reward, 0.0), alive)

    _, steps = jax.lax.scan(
        step, (obs, state, jnp.asarray(True)), jax.random.split(key_steps, num_steps)
    )
    states = jax.tree.map(lambda s0, s: jnp.concatenate([s0[None], s]), state, steps.state)
    return Rollout(states, steps.action, steps.reward, steps.alive.sum())


#: `jax.jit` for the tour's small simulations, each run once: their run time is negligible
#: next to XLA's compile time, so they compile lightly.
_jit_quick_compile = functools.partial(jit_lightly, kind=RUN_ONCE)


def _figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float], **kw: Any):
    """A Matplotlib figure and its axes, made without pyplot (no display, no global backend)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols, **kw)


def _label_axes(
    ax: Any, ylabel: str, *, xlabel: str | None = None, title: str | None = None, legend=False
) -> None:
    """Label a time-series panel (y, optional x and title), a light grid, the legend if asked."""
    ax.set_ylabel(ylabel)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if title is not None:
        ax.set_title(title)
    if legend:
        ax.legend(loc="upper right")
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------------- section: environments
def environments_section(ctx: TourContext) -> None:
    """A table of every registered environment with its spaces."""
    rows = []
    for env_id in registry.registered():
        s = registry.spec(env_id)
        env = s.load()(**s.kwargs)
        p = env.default_params
        obs_space, act_space = env.observation_space(p), env.action_space(p)
        rows.append(
            [
                env_id,
                s.description,
                repr(obs_space),
                repr(act_space),
                s.tabular,
                s.gymnasium_id or "",
            ]
        )
    text = (
        "Every environment follows one functional API (gymnax's): `reset(key, params)` and "
        "`step(key, state, action, params)` are pure functions of an explicit state, the "
        "physical constants live in an `EnvParams` pytree, and `bellmax.make(id)` builds one. "
        "Tabular ones also hand out their exact model as a `TabularMDP`; those with a "
        "Gymnasium counterpart step in lock-step with it."
    )
    ctx.report.section("Environments", text)
    ctx.report.table(["id", "description", "observations", "actions", "tabular", "Gymnasium"], rows)
    ctx.report.summary["envs_registered"] = len(rows)
    ctx.report.summary["envs_available"] = len(rows)


# ---------------------------------------------------------------------- section: cart-pole
#: The linear policy pushes right iff `CARTPOLE_GAINS . [x, x_dot, theta, theta_dot] > 0`.
CARTPOLE_GAINS = (0.1, 0.3, 1.0, 0.5)


@_jit_quick_compile
def _cartpole_rollouts(keys: jax.Array, random: jax.Array) -> Rollout:
    """CartPole-v1 episodes from `keys`, linear feedback or (if `random`) coin flips."""
    env, params = make("CartPole-v1")
    gains = jnp.asarray(CARTPOLE_GAINS)

    def policy(k, obs, state):
        linear = (obs @ gains > 0).astype(jnp.int32)
        return jnp.where(random, jax.random.randint(k, (), 0, 2), linear)

    steps = params.max_steps_in_episode
    return jax.vmap(lambda k: rollout(env, params, policy, k, steps))(keys)


def cartpole_section(ctx: TourContext) -> None:
    """CartPole-v1 under a linear feedback policy and a random one (jitted `lax.scan`)."""
    n = ctx.size(32, 4)
    keys = jax.random.split(ctx.key("cartpole"), n)
    lin = jax.device_get(_cartpole_rollouts(keys, jnp.asarray(False)))
    rnd = jax.device_get(_cartpole_rollouts(keys, jnp.asarray(True)))
    len_lin, len_rnd = np.asarray(lin.length), np.asarray(rnd.length)

    p = CartPoleParams()
    fig, (ax_x, ax_th) = _figure(2, 1, figsize=(8, 5.4), sharex=True)
    for ro, lengths, label, color in (
        (lin, len_lin, "linear feedback", "C0"),
        (rnd, len_rnd, "random", "C3"),
    ):
        T = int(lengths[0]) + 1
        t = np.arange(T) * p.tau
        ax_x.plot(t, ro.states.x[0, :T], color=color, label=f"{label} ({T - 1} steps)")
        ax_th.plot(t, np.degrees(ro.states.theta[0, :T]), color=color)
    lim = float(np.degrees(p.theta_threshold_radians))
    for sign in (-1, 1):
        ax_x.axhline(sign * p.x_threshold, color="0.5", ls="--", lw=1)
        ax_th.axhline(sign * lim, color="0.5", ls="--", lw=1)
    ax_x.set_ylim(-1.15 * p.x_threshold, 1.15 * p.x_threshold)
    ax_th.set_ylim(-1.4 * lim, 1.4 * lim)
    title = "CartPole-v1, one episode per policy (dashed: termination limits)"
    _label_axes(ax_x, "cart position x (m)", title=title, legend=True)
    _label_axes(ax_th, "pole angle θ (degrees)", xlabel="time (s)")

    g = CARTPOLE_GAINS
    ctx.report.section(
        "CartPole-v1",
        "Gymnasium's CartPole-v1 re-implemented in JAX with the same equations (explicit "
        "Euler, tau = 0.02 s, termination at |θ| > 12° or |x| > 2.4 m, truncation at 500 "
        "steps). The linear feedback policy pushes right iff "
        f"`{g[0]} x + {g[1]} x_dot + {g[2]} θ + {g[3]} θ_dot > 0`; the random policy pushes "
        f"either way with equal probability. {n} episodes per policy from the same start "
        "states, each a jitted, vmapped `lax.scan`.",
    )
    ctx.report.image(
        fig, "Cart position and pole angle over one episode under each policy.", name="cartpole"
    )
    ctx.report.table(
        ["policy", "episodes", "mean length", "min length", "max length"],
        [
            ["linear feedback", n, float(len_lin.mean()), int(len_lin.min()), int(len_lin.max())],
            ["random", n, float(len_rnd.mean()), int(len_rnd.min()), int(len_rnd.max())],
        ],
    )
    s = ctx.report.summary
    s["cartpole_linear_episode_length"] = float(len_lin.mean())
    s["cartpole_linear_min_episode_length"] = int(len_lin.min())
    s["cartpole_random_episode_length"] = float(len_rnd.mean())


# ---------------------------------------------------------------------- section: swing-up
def pendulum_energy_policy(params: Any) -> Callable[[jax.Array, jax.Array, Any], jax.Array]:
    """Pendulum-v1 swing-up by energy pumping, then a PD catch near the top.

    With `E = m l^2 theta_dot^2 / 6 + m g l cos(theta) / 2` (upright: `theta = 0`),
    `dE/dt = theta_dot * u`, so full torque with the sign of `(E_top - E) * theta_dot` pumps
    the energy up to that of the upright rest state (Astrom & Furuta 2000). Within 0.5 rad
    of upright, `u = -(10 theta + 2 theta_dot)` holds it there.

    Returns:
      `policy(key, obs, state) -> action` of shape `[1]`.
    """

    def policy(key, obs, state):
        theta, theta_dot = angle_normalize(state.theta), state.theta_dot
        mass, g, length = params.m, params.g, params.l
        energy = mass * length**2 * theta_dot**2 / 6 + mass * g * length / 2 * jnp.cos(theta)
        e_top = mass * g * length / 2
        pump = params.max_torque * jnp.sign((e_top - energy) * theta_dot + 1e-6)
        catch = -(10.0 * theta + 2.0 * theta_dot)
        u = jnp.where(jnp.abs(theta) < 0.5, catch, pump)
        return jnp.clip(u, -params.max_torque, params.max_torque)[None]

    return policy


@_jit_quick_compile
def _swing_rollouts(keys: jax.Array) -> dict[str, Rollout]:
    """Swing-up (passive, random force) and Pendulum (no torque, energy control) episodes."""
    su_env, su_p = make("CartPoleSwingUp-v0")
    pe_env, pe_p = make("Pendulum-v1")

    def batch(env, params, policy):
        steps = params.max_steps_in_episode
        return jax.vmap(lambda k: rollout(env, params, policy, k, steps))(keys)

    zero = lambda k, obs, state: jnp.zeros((1,))  # noqa: E731
    uniform = lambda k, obs, state: jax.random.uniform(k, (1,), minval=-1.0, maxval=1.0)  # noqa: E731
    return {
        "swingup_passive": batch(su_env, su_p, zero),
        "swingup_random": batch(su_env, su_p, uniform),
        "pendulum_zero_torque": batch(pe_env, pe_p, zero),
        "pendulum_energy": batch(pe_env, pe_p, pendulum_energy_policy(pe_p)),
    }


def swing_section(ctx: TourContext) -> None:
    """CartPoleSwingUp-v0 left alone or pushed at random; Pendulum-v1 with and without control."""
    n = ctx.size(16, 2)
    out = jax.device_get(_swing_rollouts(jax.random.split(ctx.key("swing"), n)))
    su_dt, pe_dt = CartPoleSwingUpParams().tau, PendulumParams().dt

    def wrap(theta):
        return (np.asarray(theta) + np.pi) % (2 * np.pi) - np.pi

    def gaps(theta):  # break the line where the wrapped angle jumps by 2 pi
        theta = wrap(theta)
        out = theta.astype(np.float64).copy()
        out[1:][np.abs(np.diff(theta)) > np.pi] = np.nan
        return out

    fig, (ax_su, ax_pe) = _figure(2, 1, figsize=(8, 5.6))
    for name, label, color in (
        ("swingup_passive", "no force", "C0"),
        ("swingup_random", "random force", "C3"),
    ):
        ro = out[name]
        th = np.asarray(ro.states.theta[0])
        steps = int(ro.length[0])
        if steps < th.size - 1:  # terminated: the cart left the track
            label += f" (cart off the track after {steps * su_dt:.1f} s)"
            th = th[: steps + 1]
        ax_su.plot(np.arange(th.size) * su_dt, th, color=color, label=label)
    ax_su.axhline(np.pi, color="0.5", ls="--", lw=1)
    title = "CartPoleSwingUp-v0 from hanging (θ = π, dashed)"
    _label_axes(ax_su, "pole angle θ (rad)", xlabel="time (s)", title=title, legend=True)
    for name, label, color in (
        ("pendulum_zero_torque", "no torque", "C0"),
        ("pendulum_energy", "energy pumping + PD catch", "C2"),
    ):
        th = gaps(out[name].states.theta[0])
        ax_pe.plot(np.arange(th.size) * pe_dt, th, color=color, label=label)
    ax_pe.axhline(0.0, color="0.5", ls="--", lw=1)
    ax_pe.set_ylim(-3.4, 3.4)
    title = "Pendulum-v1 from the same start (upright = 0, dashed)"
    _label_axes(ax_pe, "angle from upright (rad)", xlabel="time (s)", title=title, legend=True)

    ret = {k: float(np.mean(v.episode_return)) for k, v in out.items()}
    upright = float(np.mean(np.abs(wrap(out["pendulum_energy"].states.theta[:, -1])) < 0.1))
    ctx.report.section(
        "Swing-up and pendulum",
        "CartPoleSwingUp-v0 has the cart-pole's physics with a continuous force in [-1, 1] "
        "(times 10 N), starts hanging down and pays (1 + cos θ)/2 per step; left alone it "
        "just hangs; random pushes rock it, earn little and often run the cart off the "
        "track (the only termination). Pendulum-v1 (Gymnasium's equations) "
        "cannot be lifted directly, as gravity's torque exceeds the 2 N m limit: pumping "
        "energy in with the sign of θ_dot swings it up, and a PD law catches it at the top. "
        f"Returns are means over {n} episodes.",
    )
    ctx.report.image(fig, "Angle over one episode per policy.", name="swing")
    ctx.report.table(
        ["environment", "policy", "mean return"],
        [
            ["CartPoleSwingUp-v0", "no force", ret["swingup_passive"]],
            ["CartPoleSwingUp-v0", "uniform random force", ret["swingup_random"]],
            ["Pendulum-v1", "no torque", ret["pendulum_zero_torque"]],
            ["Pendulum-v1", "energy pumping + PD catch", ret["pendulum_energy"]],
        ],
    )
    s = ctx.report.summary
    for k, v in ret.items():
        s[f"{k}_return"] = v
    s["pendulum_energy_upright_fraction"] = upright


# ---------------------------------------------------------------------- section: grid worlds
def draw_gridworld(
    env: Any, params: Any = None, *, mdp: Any = None, title: str | None = None
) -> Any:
    """Draw a tabular grid world: cells coloured by mean expected reward over actions.

    Start cells (initial probability > 0) are marked S, terminal cells T. A state whose
    every action deterministically leads to the same distant cell (a teleport) gets an
    arrow there. Parameters with a `wind` per column or `cliff_to` per cell (the grid
    worlds' `GridParams`) also show the wind strengths and hatch the cliff.

    Args:
      env: a `TabularEnvironment` with `grid_shape` set.
      params: its parameters (default: `env.default_params`).
      mdp: its `TabularMDP` if already built (default: `env.tabular_mdp(params)`).
      title: the figure title (default: `env.name`).

    Returns:
      A Matplotlib `Figure`.
    """
    import matplotlib
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    if getattr(env, "grid_shape", None) is None:
        raise ValueError(f"{env.name} has no grid_shape; only grid worlds can be drawn.")
    params = env.default_params if params is None else params
    mdp = env.tabular_mdp(params) if mdp is None else mdp
    rows, cols = (int(v) for v in env.grid_shape)
    S = mdp.num_states
    R = np.asarray(mdp.R, dtype=np.float64)
    P = mdp.dense_P()
    terminal = np.zeros(S, bool) if mdp.terminal is None else np.asarray(mdp.terminal, bool)
    initial = np.zeros(S) if mdp.initial is None else np.asarray(mdp.initial, np.float64)
    cells = [tuple(int(v) for v in env.cell_of(s)) for s in range(S)]

    # Optional layout details of grid worlds built on GridParams (duck-typed).
    wind = getattr(params, "wind", None)
    wind = None if wind is None else np.asarray(wind).astype(int).reshape(-1)
    cliff_to = getattr(params, "cliff_to", None)
    cliff = np.zeros(S, bool) if cliff_to is None else np.asarray(cliff_to).reshape(-1) >= 0
    if cliff.shape != (S,):
        cliff = np.zeros(S, bool)

    value = np.full((rows, cols), np.nan)  # NaN (grey): cliff cells, cells with no state
    for s, (r, c) in enumerate(cells):
        if np.isnan(value[r, c]) and not cliff[s]:
            value[r, c] = R[s].mean()
    lo, hi = float(np.nanmin(value)), float(np.nanmax(value))
    if lo < 0.0 < hi:
        norm_kw = {"norm": TwoSlopeNorm(0.0, lo, hi)}
    else:
        norm_kw = {"vmin": min(lo, hi - 1.0) if hi == lo else lo, "vmax": hi}

    cell = min(0.62, 9.0 / cols, 7.0 / rows)  # inches per cell: big grids shrink
    fig, ax = _figure(figsize=(max(3.4, cell * cols + 2.0), max(2.6, cell * rows + 1.2)))
    cmap = matplotlib.colormaps["RdYlGn"].with_extremes(bad="0.85")
    im = ax.imshow(value, cmap=cmap, **norm_kw)
    fig.colorbar(im, ax=ax, shrink=0.85, label="mean expected reward")
    many = rows * cols > 200
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="0.3", lw=0.3 if many else 0.8)
    ax.tick_params(which="both", length=0, labelsize=7 if many else 8)
    ax.set_xticks(range(0, cols, 5 if many else 1))
    ax.set_yticks(range(0, rows, 5 if many else 1))
    if wind is not None and wind.shape == (cols,) and np.any(wind != 0) and not many:
        ax.set_xticklabels([f"{c}\n↑{w}" if w else f"{c}\n" for c, w in enumerate(wind)])
        ax.set_xlabel("column (↑n: the wind pushes n cells up)", fontsize=8)

    numbers = rows * cols <= 50  # room for a number in each cell
    # A start distribution over every non-terminal cell is said in the title, not drawn.
    starts_anywhere = np.count_nonzero(initial) > 1 and bool(np.all((initial > 0) | terminal))
    deterministic = bool(np.all(P.max(axis=2) == 1.0))
    for s, (r, c) in enumerate(cells):
        if cliff[s]:
            ax.add_patch(
                Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, hatch="xx", lw=0, color="0.25")
            )
            ax.text(c, r, "cliff", ha="center", va="center", fontsize=7, color="0.1")
            continue
        marks = ("S" if initial[s] > 0 and not starts_anywhere else "") + (
            "T" if terminal[s] else ""
        )
        if marks:
            ax.text(c, r + 0.05, marks, ha="center", va="center", fontsize=11, fontweight="bold")
        if numbers and not terminal[s]:
            ax.text(
                c, r - 0.3, f"{R[s].mean():.3g}", ha="center", va="center", fontsize=7, color="0.15"
            )
        if deterministic and not terminal[s]:
            succ = {cells[int(np.argmax(P[s, a]))] for a in range(P.shape[1])}
            if len(succ) == 1:
                ((tr, tc),) = succ
                if abs(tr - r) + abs(tc - c) >= 2:  # a teleport: every action jumps there
                    ax.annotate(
                        "",
                        xy=(tc + 0.34, tr),
                        xytext=(c + 0.34, r),
                        arrowprops={
                            "arrowstyle": "->",
                            "color": "navy",
                            "lw": 1.6,
                            "shrinkA": 4,
                            "shrinkB": 4,
                        },
                    )
    ax.set_title(
        (title or env.name) + (" (random start cell)" if starts_anywhere else ""), fontsize=11
    )
    return fig


def gridworlds_section(ctx: TourContext) -> None:
    """Every registered tabular grid world, drawn from its exact `TabularMDP`."""
    drawn, shapes = [], []
    figures = []
    for env_id in registry.registered():
        s = registry.spec(env_id)
        if not s.tabular:
            continue
        env = s.load()(**s.kwargs)
        if getattr(env, "grid_shape", None) is None:
            continue
        mdp = env.tabular_mdp(env.default_params)
        figures.append((env_id, draw_gridworld(env, mdp=mdp, title=env_id)))
        drawn.append(env_id)
        shapes.append(
            [
                env_id,
                f"{env.grid_shape[0]} x {env.grid_shape[1]}",
                mdp.num_states,
                mdp.num_actions,
                s.description,
            ]
        )
        key = env_id.lower().replace("-", "_")
        ctx.report.summary[f"{key}_num_states"] = mdp.num_states
    text = (
        "Every tabular environment laid out on a grid (the grid worlds of Sutton & Barto, "
        "and any other with a `grid_shape`), drawn from its exact tabular model: the same "
        "object dynamic programming solves and the sampled environment steps through. "
        "Colour: the expected reward of a step from each cell, averaged over the actions. "
        "S marks start cells, T terminal cells, arrows teleports."
    )
    ctx.report.section("Grid worlds", text)
    for env_id, fig in figures:
        ctx.report.image(fig, env_id, name=env_id)
    if shapes:
        ctx.report.table(["id", "grid", "states", "actions", "description"], shapes)
    ctx.report.summary["gridworlds_drawn"] = len(drawn)


# ---------------------------------------------------------------------- the tour
def classic_rl_section(ctx: TourContext) -> None:
    """Three of Sutton & Barto's figures, reproduced by `bellmax reproduce sutton-barto`."""
    from bellmax.experiments import run_experiment
    from bellmax.experiments.sutton_barto import EXPERIMENTS

    picks = [
        (
            "gridworld-5x5",
            "Exact DP: the random policy's values (policy evaluation, a linear solve) "
            "and v* with the optimal policy (value iteration, max-plus backup).",
        ),
        ("gamblers-problem", "Value iteration's sweeps on the gambler's problem; v*(50) = 0.4."),
        ("cliff-walking", "SARSA learns the safe path, Q-learning the edge (Example 6.6)."),
    ]
    ctx.report.section(
        "Classic RL",
        "One Bellman backup over semirings solves the tabular worlds exactly; sampling replaces "
        "the sums when no model is known. `bellmax reproduce sutton-barto --list` lists all "
        "15 reproductions.",
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, caption in picks:
            rec = run_experiment(EXPERIMENTS, name, tmp, seed=ctx.seed, quick=True)
            for png in rec["figures"]:
                ctx.report.image(Path(tmp) / png, f"{rec['source']}: {caption}")
            for key, value in rec["data"].items():
                if isinstance(value, int | float):
                    ctx.report.summary[f"{name}/{key}"] = value


#: The tour's sections, in order. Later families append theirs.
SECTIONS: list[TourSection] = [
    TourSection("Environments", environments_section),
    TourSection("CartPole-v1", cartpole_section),
    TourSection("Swing-up and pendulum", swing_section),
    TourSection("Grid worlds", gridworlds_section),
    TourSection("Bandits", bandit_cli.tour_section),
    TourSection("Classic RL", classic_rl_section),
    TourSection("Control and system identification", control_cli.tour_section),
    TourSection("Deep RL", train_cli.tour_section),
    TourSection("Tic-tac-toe", games_cli.tour_section),
    TourSection("Imitation learning: why DAgger", imitate_cli.tour_section),
    TourSection("Learning the model locally: LQR-FLM", gps_cli.tour_section),
    TourSection("POMDPs", pomdp_cli.tour_section),
]


def _describe_failure(exc: BaseException) -> str:
    tb = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    if len(tb) > 30:
        tb = ["...", *tb[-30:]]
    return f"{type(exc).__name__}: {exc}\n\n" + "\n".join(tb)


def run_tour(
    out: str | Path = "runs/tour",
    *,
    quick: bool = False,
    seed: int = 0,
    sections: list[TourSection] | None = None,
    echo: Callable[[str], None] | None = print,
) -> TourResult:
    """Run the tour's sections and write the report.

    Args:
      out: output folder (created).
      quick: smaller runs (tests).
      seed: base random seed.
      sections: the sections to run (default: `SECTIONS`).
      echo: prints one progress line per section (None: silent).

    Returns:
      A `TourResult`; failed sections are in `failures` and in the report.
    """
    out = check_output_path(out, kind="dir", option="--out")
    seed = check_seed(seed, "seed", owner="run_tour")
    say = echo or (lambda _: None)
    sections = SECTIONS if sections is None else sections
    report = Report("bellmax tour")
    report.section(
        "About this report",
        f"bellmax {__version__}: a guided tour of the library, one section per family, each a "
        f"small run with its headline result. Seed {seed}"
        + (", quick mode." if quick else ".")
        + " Every number here is also in `summary.json` next to this page.",
    )
    ctx = TourContext(report=report, quick=quick, seed=seed)
    timings = []
    t_start = time.perf_counter()
    for sec in sections:
        before = set(report.summary)
        t0 = time.perf_counter()
        error = None
        try:
            sec.fn(ctx)
        except Exception as e:  # a broken section must not stop the tour
            error = _describe_failure(e)
        # Headline numbers must be finite and JSON-able, or summary.json could not be written.
        for key in [k for k in report.summary if k not in before]:
            try:
                to_strict_json({key: report.summary[key]})
            except (ValueError, TypeError) as e:
                del report.summary[key]
                error = (error + "\n\n" if error else "") + f"summary[{key!r}]: {e}"
        dt = time.perf_counter() - t0
        timings.append([sec.title, "failed" if error else "ok", round(dt, 2)])
        if error:
            report.failure(sec.title, error)
            say(f"  {sec.title}: FAILED ({dt:.1f} s): {error.splitlines()[0]}")
        else:
            say(f"  {sec.title}: ok ({dt:.1f} s)")
    seconds = time.perf_counter() - t_start
    report.section(
        "Run times", f"The whole tour took {seconds:.1f} s (wall time, compilation included)."
    )
    report.table(["section", "status", "seconds"], timings)
    report.summary["tour_seconds"] = round(seconds, 2)
    report.summary["tour_quick"] = quick
    path = report.write(out)
    return TourResult(path, report.summary_dict(), report.failures, seconds)


def run_tour_command(args: TourArgs) -> int:
    """`bellmax tour`: run the tour, print where the report is; status 1 if a section failed."""
    check_output_path(args.out, kind="dir", option="--out")  # before any section runs
    check_seed(args.seed)
    print(f"bellmax tour -> {args.out}" + (" (quick)" if args.quick else ""))
    result = run_tour(args.out, quick=args.quick, seed=args.seed)
    print(f"Report: {result.report_path} ({result.seconds:.1f} s)")
    if result.failures:
        names = ", ".join(t for t, _ in result.failures)
        print(f"{len(result.failures)} section(s) failed: {names}")
        return 1
    return 0
