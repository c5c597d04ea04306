"""Frames of bellmax environments as RGB arrays, episodes of a policy, and videos.

    from bellmax.envs import render
    frame = render.render_frame(env, state, params)        # [H, W, 3] uint8
    episode = render.rollout_frames(policy.act, "CartPole-v1", jax.random.key(0))
    render.write_video(episode.frames, "cartpole.gif", fps=episode.fps)
    render.record_video(policy.act, "CartPole-v1", "cartpole.mp4", jax.random.key(0))  # both

Drawing is plain numpy rasterisation on the host (filled rectangles, capsules, discs and
ring sectors, tested against each pixel's centre), so it needs no graphics library and no
display. Which environments have frames is one registry keyed by environment class,
`register_renderer(env_class, draw, fps=...)`; a subclass inherits its base's renderer. Built
in: `CartPole` and `CartPoleSwingUp` (600x400, Gymnasium's CartPole geometry), `Pendulum`
(500x500, Gymnasium's Pendulum geometry, with the last torque as an arc) and every
`GridWorld` (`GridWorld4x4`, `GridWorld5x5`, `CliffWalking`, `WindyGridworld`; 48 pixels a
cell). The Gymnasium bridge's `render_mode="rgb_array"` calls `render_frame`.

Videos: `write_video(frames, "x.gif")` writes a GIF with Pillow (a dependency of
matplotlib); `.mp4` pipes the frames to an `ffmpeg` executable (on `PATH`, or the one
`pip install imageio-ffmpeg` ships). Both are written atomically: to a temporary file in the
same folder, then renamed over the target.
"""

from __future__ import annotations

import dataclasses
import errno
import math
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from bellmax.core.display import summary_repr
from bellmax.core.errors import MissingDependencyError
from bellmax.envs import registry
from bellmax.envs._grid import GridWorld
from bellmax.envs.cartpole import CartPole, CartPoleSwingUp
from bellmax.envs.environment import Environment, EnvParams, Wrapper
from bellmax.envs.pendulum import Pendulum

__all__ = [
    "AGENT_COLOR",
    "RenderedEpisode",
    "Renderer",
    "VideoDependencyError",
    "can_render",
    "frame_rate",
    "record_video",
    "register_renderer",
    "render_frame",
    "renderable",
    "rollout_frames",
    "write_video",
]

Color = tuple[int, int, int]

#: The grid worlds' agent disc (no other drawn pixel has this colour).
AGENT_COLOR: Color = (220, 50, 47)

#: Episodes longer than this are cut by `rollout_frames` unless `max_steps` says otherwise.
DEFAULT_MAX_STEPS = 1000

#: Video formats `write_video` writes, by file suffix.
VIDEO_SUFFIXES = (".gif", ".mp4")


class VideoDependencyError(MissingDependencyError):
    """Writing a video needs a program or package that is not installed (ffmpeg for .mp4)."""


# ====================================================================== rasterisation
# Pixel (i, j) covers [j, j+1) x [i, i+1) with its centre at (j + 0.5, i + 0.5); x runs
# right, y down. A shape colours the pixels whose centres it contains.


def _canvas(height: int, width: int, color: Color) -> np.ndarray:
    img = np.empty((height, width, 3), np.uint8)
    img[...] = color
    return img


def _window(img: np.ndarray, x0: float, y0: float, x1: float, y1: float):
    """The pixels of `img` whose centres may lie in the box, and their centres' coordinates."""
    h, w = img.shape[:2]
    i0, i1 = max(math.floor(y0), 0), min(math.ceil(y1) + 1, h)
    j0, j1 = max(math.floor(x0), 0), min(math.ceil(x1) + 1, w)
    if i0 >= i1 or j0 >= j1:
        return None
    ys = (np.arange(i0, i1) + 0.5)[:, None]
    xs = (np.arange(j0, j1) + 0.5)[None, :]
    return img[i0:i1, j0:j1], xs, ys


def _fill_rect(img: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
    win = _window(img, x0, y0, x1, y1)
    if win is not None:
        view, xs, ys = win
        view[(xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)] = color


def _fill_disc(img: np.ndarray, cx: float, cy: float, r: float, color: Color) -> None:
    win = _window(img, cx - r, cy - r, cx + r, cy + r)
    if win is not None:
        view, xs, ys = win
        view[(xs - cx) ** 2 + (ys - cy) ** 2 <= r * r] = color


def _fill_capsule(
    img: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], r: float, color: Color
) -> None:
    """A thick line from `p0` to `p1` with round ends: the points within `r` of the segment."""
    (ax, ay), (bx, by) = p0, p1
    win = _window(img, min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r)
    if win is None:
        return
    view, xs, ys = win
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
    view[(xs - ax - t * dx) ** 2 + (ys - ay - t * dy) ** 2 <= r * r] = color


def _fill_ring_sector(
    img: np.ndarray,
    cx: float,
    cy: float,
    r: float,
    half_width: float,
    start: float,
    sweep: float,
    color: Color,
) -> None:
    """The part of a ring (radius `r` +- `half_width`) from angle `start` over `sweep` radians.

    Angles are counter-clockwise on the screen (y up), 0 pointing right; `sweep` may be
    negative (clockwise).
    """
    outer = r + half_width
    win = _window(img, cx - outer, cy - outer, cx + outer, cy + outer)
    if win is None or sweep == 0:
        return
    view, xs, ys = win
    dist = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2)
    angle = np.arctan2(cy - ys, xs - cx)  # y up
    lo, width = (start, sweep) if sweep > 0 else (start + sweep, -sweep)
    rel = np.mod(angle - lo, 2 * np.pi)
    view[(np.abs(dist - r) <= half_width) & (rel <= width)] = color


# ====================================================================== the registry
@dataclasses.dataclass(frozen=True)
class Renderer:
    """How to draw one environment class."""

    draw: Callable[[Environment, Any, EnvParams], np.ndarray]
    """`(env, state, params) -> [H, W, 3] uint8`: one frame of a single (unbatched) state."""
    fps: Callable[[Environment, EnvParams], float]
    """`(env, params) -> frames per second` at which a video plays in real time."""


_RENDERERS: dict[type, Renderer] = {}


def register_renderer(
    env_type: type,
    draw: Callable[[Environment, Any, EnvParams], np.ndarray],
    *,
    fps: float | Callable[[Environment, EnvParams], float] = 30.0,
    overwrite: bool = False,
) -> None:
    """Give an environment class (and its subclasses) frames.

    Args:
      env_type: an `Environment` subclass.
      draw: `(env, state, params) -> [H, W, 3] uint8` for one state (host-side numpy).
      fps: frames per second of a real-time video, or `(env, params) -> fps`.
      overwrite: replace a renderer already registered for exactly this class.

    Raises:
      TypeError: `env_type` is not an `Environment` subclass, or `draw` is not callable.
      ValueError: `env_type` already has a renderer and `overwrite` is False.
    """
    if not (isinstance(env_type, type) and issubclass(env_type, Environment)):
        raise TypeError(
            f"register_renderer takes an Environment subclass, got {env_type!r}; pass the "
            "class, e.g. register_renderer(MyEnv, draw)."
        )
    if not callable(draw):
        raise TypeError(f"draw must be a function (env, state, params) -> frame, got {draw!r}.")
    if env_type in _RENDERERS and not overwrite:
        raise ValueError(
            f"{env_type.__name__} already has a renderer; pass overwrite=True to replace it."
        )
    fps_fn = fps if callable(fps) else (lambda env, params, _fps=float(fps): _fps)
    _RENDERERS[env_type] = Renderer(draw=draw, fps=fps_fn)


def _unwrap(env: Environment, state: Any = None) -> tuple[Environment, Any]:
    """The innermost environment and its state (wrappers keep theirs in `env_state`)."""
    while isinstance(env, Wrapper):
        if state is not None and hasattr(state, "env_state"):
            state = state.env_state
        env = env._env
    return env, state


def _renderer(env: Environment) -> Renderer | None:
    inner, _ = _unwrap(env)
    for cls in type(inner).__mro__:
        if cls in _RENDERERS:
            return _RENDERERS[cls]
    return None


def can_render(env: Environment) -> bool:
    """Whether `env` (or the environment inside its wrappers) has frames."""
    return _renderer(env) is not None


def renderable() -> list[str]:
    """The registered environment ids that have frames, sorted."""
    out = []
    for env_id in registry.registered():
        cls = registry.spec(env_id).load()
        if any(c in _RENDERERS for c in cls.__mro__):
            out.append(env_id)
    return out


def _require_renderer(env: Environment) -> Renderer:
    found = _renderer(env)
    if found is None:
        name = getattr(env, "name", type(env).__name__)
        raise ValueError(
            f"{name} has no frames (rgb_array rendering); environments with frames: "
            f"{', '.join(renderable())}. Add one with "
            "bellmax.envs.render.register_renderer(EnvClass, draw)."
        )
    return found


def render_frame(env: Environment, state: Any, params: EnvParams | None = None) -> np.ndarray:
    """One frame of `state`: an `[H, W, 3]` uint8 RGB array (host-side numpy).

    Args:
      env: a bellmax environment with frames (see `renderable()`), wrapped or not.
      state: one (unbatched) state of it, e.g. from `env.reset`; a wrapper's state is
        unwrapped along with the environment.
      params: its constants (`env.default_params` if None); the drawing uses the geometry
        in them (pole length, track width, grid layout).

    Returns:
      The frame; its size is fixed per environment (600x400 cart-poles, 500x500 pendulum,
      48 pixels per grid cell).

    Raises:
      ValueError: the environment has no frames, or `state` is a batch.
    """
    found = _require_renderer(env)
    inner, inner_state = _unwrap(env, state)
    params = inner.default_params if params is None else params
    host_state = jax.device_get(inner_state)
    time = getattr(host_state, "time", None)
    if time is not None and np.ndim(time) != 0:
        raise ValueError(
            f"render_frame draws one state, got a batch of shape {np.shape(time)}; pick one, "
            "e.g. jax.tree.map(lambda x: x[0], state)."
        )
    frame = np.asarray(found.draw(inner, host_state, jax.device_get(params)))
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"the renderer of {inner.name} returned an array of shape {frame.shape} and dtype "
            f"{frame.dtype}; a frame must be [H, W, 3] uint8."
        )
    return frame


def frame_rate(env: Environment, params: EnvParams | None = None) -> float:
    """Frames per second at which `env`'s frames play in real time (1 / time step).

    Raises:
      ValueError: the environment has no frames.
    """
    found = _require_renderer(env)
    inner, _ = _unwrap(env)
    return float(found.fps(inner, inner.default_params if params is None else params))


# ====================================================================== cart-pole
CART_POLE_SIZE = (400, 600)  # (height, width), Gymnasium's
_POLE_COLOR: Color = (202, 152, 101)
_AXLE_COLOR: Color = (129, 132, 203)
_BLACK: Color = (0, 0, 0)
_WHITE: Color = (255, 255, 255)


def _draw_cartpole(env: Environment, state: Any, params: Any, *, track_y: float) -> np.ndarray:
    """Gymnasium's CartPole picture: the track spans `2 * x_threshold`; `track_y` in pixels."""
    height, width = CART_POLE_SIZE
    img = _canvas(height, width, _WHITE)
    scale = width / (2.0 * float(params.x_threshold))
    pole_len = scale * 2.0 * float(params.length)
    cart_w, cart_h, pole_r = 50.0, 30.0, 5.0
    x, theta = float(state.x), float(state.theta)
    cx = x * scale + width / 2.0
    _fill_rect(img, 0, track_y - 0.5, width, track_y + 0.5, _BLACK)
    _fill_rect(
        img, cx - cart_w / 2, track_y - cart_h / 2, cx + cart_w / 2, track_y + cart_h / 2, _BLACK
    )
    ax, ay = cx, track_y - cart_h / 4  # the axle, a quarter of the cart above its centre
    tip = (ax + pole_len * math.sin(theta), ay - pole_len * math.cos(theta))  # 0 = upright
    _fill_capsule(img, (ax, ay), tip, pole_r, _POLE_COLOR)
    _fill_disc(img, ax, ay, pole_r, _AXLE_COLOR)
    return img


def draw_cartpole(env: Environment, state: Any, params: Any) -> np.ndarray:
    """CartPole-v1: 600x400, the track 100 pixels above the bottom (as Gymnasium draws it).

    Positive `theta` tilts the pole to the right, positive `x` moves the cart right; the
    picture spans the track, `[-x_threshold, x_threshold]`.
    """
    return _draw_cartpole(env, state, params, track_y=CART_POLE_SIZE[0] - 100.0)


def draw_cartpole_swingup(env: Environment, state: Any, params: Any) -> np.ndarray:
    """The swing-up: as `draw_cartpole`, with the track halfway up so the hanging pole shows."""
    return _draw_cartpole(env, state, params, track_y=CART_POLE_SIZE[0] / 2.0)


def _cartpole_fps(env: Environment, params: Any) -> float:
    return 1.0 / float(params.tau)


# ====================================================================== pendulum
PENDULUM_SIZE = 500
_ROD_COLOR: Color = (204, 77, 77)
_TORQUE_COLOR: Color = (60, 60, 60)


def draw_pendulum(env: Environment, state: Any, params: Any) -> np.ndarray:
    """Pendulum-v1: 500x500, the pivot in the centre, `theta = 0` upright (Gymnasium's view).

    Positive `theta` turns the rod counter-clockwise (to the left from upright). The last
    applied torque is an arc around the pivot, counter-clockwise for a positive torque,
    sweeping up to 3/4 of a turn at `max_torque`.
    """
    size = PENDULUM_SIZE
    img = _canvas(size, size, _WHITE)
    scale = size / 4.4  # Gymnasium shows [-2.2, 2.2] m
    c = size / 2.0
    theta, length = float(state.theta), float(params.l) * scale
    tip = (c - length * math.sin(theta), c - length * math.cos(theta))
    max_torque = float(params.max_torque)
    u = float(state.last_u) / max_torque if max_torque > 0 else 0.0
    u = max(-1.0, min(1.0, u))
    # the torque arc starts at the bottom (-pi/2) and turns with the torque's sign
    _fill_ring_sector(
        img, c, c, 0.5 * scale, 0.03 * scale, -np.pi / 2, u * 1.5 * np.pi, _TORQUE_COLOR
    )
    _fill_capsule(img, (c, c), tip, 0.1 * scale, _ROD_COLOR)
    _fill_disc(img, c, c, 0.05 * scale, _BLACK)
    return img


def _pendulum_fps(env: Environment, params: Any) -> float:
    return 1.0 / float(params.dt)


# ====================================================================== grid worlds
GRID_CELL = 48
_CELL_COLOR: Color = (245, 245, 245)
_LINE_COLOR: Color = (185, 185, 185)
_TERMINAL_COLOR: Color = (140, 210, 140)
_CLIFF_COLOR: Color = (70, 70, 70)
_START_COLOR: Color = (255, 232, 160)
_TELEPORT_COLOR: Color = (120, 160, 240)
_TELEPORT_TO_COLOR: Color = (195, 212, 250)


def _wind_color(strength: int) -> Color:
    s = min(int(strength), 4)
    return (245 - 22 * s, 245 - 12 * s, 250)


def draw_grid(env: Environment, state: Any, params: Any) -> np.ndarray:
    """A grid world, `GRID_CELL` (48) pixels a cell, row 0 at the top.

    Colours: terminal cells green, cliffs dark grey, the start cell (when there is one)
    yellow, teleport cells blue and their destinations light blue, windy columns tinted
    blue by strength; the agent is a disc of `AGENT_COLOR` in its cell.
    """
    rows, cols = env.grid_shape
    cell = GRID_CELL
    img = _canvas(rows * cell, cols * cell, _CELL_COLOR)
    wind = np.asarray(params.wind).reshape(-1)
    terminal = np.asarray(params.terminal, bool).reshape(-1)
    cliff = np.asarray(params.cliff_to).reshape(-1) >= 0
    start = np.asarray(params.start, np.float64).reshape(-1)
    tele = np.asarray(params.teleport_to).reshape(-1)
    fills: list[tuple[np.ndarray, Color]] = []
    for col in range(cols):
        if wind[col] > 0:
            _fill_rect(img, col * cell, 0, (col + 1) * cell, rows * cell, _wind_color(wind[col]))
    if np.count_nonzero(start) == 1:
        fills.append((start > 0, _START_COLOR))
    fills += [
        (np.isin(np.arange(rows * cols), tele[tele >= 0]), _TELEPORT_TO_COLOR),
        (tele >= 0, _TELEPORT_COLOR),
        (terminal, _TERMINAL_COLOR),
        (cliff, _CLIFF_COLOR),
    ]
    for mask, color in fills:
        for s in np.flatnonzero(mask):
            r, c = divmod(int(s), cols)
            _fill_rect(img, c * cell, r * cell, (c + 1) * cell, (r + 1) * cell, color)
    img[::cell, :] = _LINE_COLOR
    img[:, ::cell] = _LINE_COLOR
    img[-1, :] = _LINE_COLOR
    img[:, -1] = _LINE_COLOR
    r, c = divmod(int(state.pos), cols)
    _fill_disc(img, (c + 0.5) * cell, (r + 0.5) * cell, 0.32 * cell, AGENT_COLOR)
    return img


register_renderer(CartPole, draw_cartpole, fps=_cartpole_fps)
register_renderer(CartPoleSwingUp, draw_cartpole_swingup, fps=_cartpole_fps)
register_renderer(Pendulum, draw_pendulum, fps=_pendulum_fps)
register_renderer(GridWorld, draw_grid, fps=4.0)


# ====================================================================== episodes
@dataclasses.dataclass(frozen=True)
class RenderedEpisode:
    """One episode played by `rollout_frames`, with a frame per state."""

    __repr__ = summary_repr

    frames: np.ndarray
    """`[length + 1, H, W, 3]` uint8: the first state, then the state after each step."""
    rewards: np.ndarray
    """`[length]` float32 rewards."""
    terminated: bool
    """Whether the last step ended the episode in a terminal state."""
    truncated: bool
    """Whether the last step reached the environment's time limit (False for both when
    `max_steps` cut the episode first)."""
    fps: float
    """Frames per second of real time (`frame_rate`): pass it to `write_video`."""

    @property
    def length(self) -> int:
        """Steps played."""
        return int(self.rewards.shape[0])

    @property
    def episode_return(self) -> float:
        """Undiscounted sum of the rewards."""
        return float(np.sum(self.rewards, dtype=np.float64))


def rollout_frames(
    act: Callable[[jax.Array, jax.Array], jax.Array],
    env: str | Environment,
    key: jax.Array,
    *,
    params: EnvParams | None = None,
    max_steps: int | None = None,
) -> RenderedEpisode:
    """Play one episode of a policy on a bellmax environment and draw every state.

    The episode runs as one jitted `lax.scan` (the policy is called on one observation per
    step); the frames are then drawn on the host up to the step that ended it.

    Args:
      act: `act(key, obs) -> action` for one observation, jittable: a loaded policy's
        `policy.act` (greedy by default), or e.g.
        `lambda k, o: env.action_space(params).sample(k)` for random actions.
      env: a registered bellmax id with frames (see `renderable()`) or an `Environment`.
      key: PRNG key for the reset, the policy and the steps.
      params: the environment's constants (`default_params` if None; `bellmax.make(id,
        **overrides)[1]` for others).
      max_steps: the most steps to play; default `min(params.max_steps_in_episode, 1000)`.

    Returns:
      A `RenderedEpisode` (frames, rewards, how it ended, `fps`).

    Raises:
      TypeError: `act` is not callable or `env` is neither an id nor an `Environment`.
      ValueError: the environment has no frames (a Gymnasium or gymnax id, a bandit, ...),
        or `max_steps < 1`.
    """
    if not callable(act):
        raise TypeError(f"act must be a function act(key, obs) -> action, got {act!r}.")
    if isinstance(env, str):
        if not registry.is_registered(env) or registry.is_gymnax_id(env):
            raise ValueError(
                f"cannot draw {env!r}: frames exist for these bellmax environments only: "
                f"{', '.join(renderable())}."
            )
        made_env, default = registry.make(env)
    elif isinstance(env, Environment):
        made_env, default = env, env.default_params
    else:
        raise TypeError(
            f"rollout_frames takes a bellmax env id (str) or an Environment, got "
            f"{type(env).__name__} {env!r}; e.g. rollout_frames(policy.act, 'CartPole-v1', key)."
        )
    found = _require_renderer(made_env)
    params = default if params is None else params
    made_env.check_params(params)
    if made_env.auto_resets:
        raise ValueError(
            f"{made_env!r} resets by itself, so an episode has no end; pass the environment "
            "without the AutoReset wrapper."
        )
    limit = int(np.asarray(params.max_steps_in_episode))
    if max_steps is None:
        max_steps = min(limit, DEFAULT_MAX_STEPS)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer):
        raise TypeError(f"max_steps must be an int, got {max_steps!r}.")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}.")
    max_steps = int(max_steps)

    def play(key):
        key_reset, key_steps = jax.random.split(key)
        obs, state = made_env.reset(key_reset, params)

        def body(carry, key_t):
            obs, state = carry
            key_act, key_step = jax.random.split(key_t)
            action = act(key_act, obs)
            obs, state, reward, terminated, truncated, _ = made_env.step(
                key_step, state, action, params
            )
            return (obs, state), (state, reward, terminated, truncated)

        _, out = jax.lax.scan(body, (obs, state), jax.random.split(key_steps, max_steps))
        return state, out

    first, (states, rewards, terminated, truncated) = jax.device_get(jax.jit(play)(key))
    ended = np.flatnonzero(np.asarray(terminated) | np.asarray(truncated))
    length = int(ended[0]) + 1 if ended.size else max_steps
    frame0 = render_frame(made_env, first, params)
    frames = np.empty((length + 1, *frame0.shape), np.uint8)
    frames[0] = frame0
    for t in range(length):
        state_t = jax.tree.map(lambda x, t=t: x[t], states)
        frames[t + 1] = render_frame(made_env, state_t, params)
    inner, _ = _unwrap(made_env)
    return RenderedEpisode(
        frames=frames,
        rewards=np.asarray(rewards[:length], np.float32),
        terminated=bool(ended.size and terminated[length - 1]),
        truncated=bool(ended.size and truncated[length - 1]),
        fps=float(found.fps(inner, params)),
    )


# ====================================================================== videos
def _check_frames(frames: Any) -> list[np.ndarray]:
    if isinstance(frames, np.ndarray | jax.Array):
        arr = np.asarray(frames)
        if arr.ndim != 4:
            raise ValueError(
                f"frames must be [T, H, W, 3] (or a list of [H, W, 3] arrays), got an array of "
                f"shape {arr.shape}."
            )
        out = list(arr)
    elif isinstance(frames, Sequence) or hasattr(frames, "__iter__"):
        out = [np.asarray(f) for f in frames]
    else:
        raise TypeError(
            f"frames must be a [T, H, W, 3] uint8 array or a list of [H, W, 3] uint8 arrays, "
            f"got {type(frames).__name__}."
        )
    if not out:
        raise ValueError("frames is empty; a video needs at least one frame.")
    first = out[0]
    for i, f in enumerate(out):
        if f.dtype != np.uint8:
            raise TypeError(
                f"frame {i} has dtype {f.dtype}; frames must be uint8 RGB (0..255), e.g. "
                "(np.clip(x, 0, 1) * 255).astype(np.uint8)."
            )
        if f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"frame {i} has shape {f.shape}; frames must be [H, W, 3] RGB.")
        if f.shape != first.shape:
            raise ValueError(
                f"frame {i} has shape {f.shape} but frame 0 has {first.shape}; every frame of "
                "a video must have the same size."
            )
    return out


def _find_ffmpeg() -> str | None:
    """An ffmpeg executable: on PATH, else the one bundled by imageio-ffmpeg, else None."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg  # optional: `pip install imageio-ffmpeg` ships a binary
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # a broken install is the same as none
        return None


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.stem}.{os.getpid()}.{secrets.token_hex(4)}{target.suffix}")


def _write_gif(frames: list[np.ndarray], tmp: Path, fps: float) -> None:
    from PIL import Image  # Pillow comes with matplotlib

    images = [Image.fromarray(f) for f in frames]
    images[0].save(
        tmp,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(1, round(1000.0 / fps)),
        loop=0,
    )


def _write_mp4(frames: list[np.ndarray], tmp: Path, fps: float) -> None:
    exe = _find_ffmpeg()
    if exe is None:
        raise VideoDependencyError(
            "writing an .mp4 needs ffmpeg, which was not found: install it (`apt install "
            "ffmpeg`, `conda install ffmpeg`, `brew install ffmpeg`, or `pip install "
            "imageio-ffmpeg`), or write a .gif instead (Pillow, already installed)."
        )
    h, w = frames[0].shape[:2]
    failures = []
    for codec in _MP4_CODECS:  # H.264 where the ffmpeg build has it, else MPEG-4 part 2
        cmd = [
            *(exe, "-y", "-loglevel", "error"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps:g}"),
            *("-i", "-", "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"),  # yuv420p: even sizes
            *("-c:v", codec, "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)),
        ]
        code, message = _pipe_frames(cmd, frames)
        if code == 0:
            return
        failures.append(f"{codec}: exit code {code}: {message or '(no output)'}")
    raise RuntimeError(
        f"ffmpeg ({exe}) could not write an .mp4; "
        + "; ".join(failures)
        + ". Write a .gif instead, or install an ffmpeg with libx264."
    )


#: Video codecs tried in turn for .mp4.
_MP4_CODECS = ("libx264", "mpeg4")


def _pipe_frames(cmd: list[str], frames: list[np.ndarray]) -> tuple[int, str]:
    """Run `cmd` with the frames' raw bytes on stdin; its exit code and the tail of stderr."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for f in frames:
                proc.stdin.write(np.ascontiguousarray(f).tobytes())
            proc.stdin.close()
        except OSError as e:  # ffmpeg quit early; its message is read below. Windows says so
            if not isinstance(e, BrokenPipeError) and e.errno != errno.EINVAL:  # with EINVAL
                raise
        code = proc.wait()
        err.seek(0)
        return code, err.read().decode(errors="replace").strip()[-1000:]


def write_video(frames: Any, path: str | os.PathLike, *, fps: float = 30.0) -> Path:
    """Write frames as a `.gif` (Pillow) or `.mp4` (ffmpeg), atomically.

    The video goes to a temporary file in the target's folder (created if missing), which
    replaces `path` only once it is complete, so a failed or interrupted write never leaves
    a half-written file. A GIF stores times in hundredths of a second and Pillow merges
    identical consecutive frames (adding their durations), so the playing time is kept but
    the frame count read back may be smaller for a still scene.

    Args:
      frames: `[T, H, W, 3]` uint8 array, or a list of `[H, W, 3]` uint8 arrays of one size
        (`RenderedEpisode.frames`).
      path: the file to write; its suffix picks the format: `.gif` or `.mp4`.
      fps: frames per second (`RenderedEpisode.fps` plays in real time).

    Returns:
      The path written.

    Raises:
      TypeError: frames that are not uint8 arrays.
      ValueError: no frames, frames of different or non-RGB shapes, a suffix other than
        `.gif`/`.mp4`, or `fps` not a positive number.
      VideoDependencyError: `.mp4` without an ffmpeg executable (the message says how to
        install one).
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(
            f"cannot write a video to {str(target)!r}: the file name must end in "
            f"{' or '.join(VIDEO_SUFFIXES)} (the suffix picks the format)."
        )
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.number):
        raise TypeError(f"fps must be a number, got {fps!r}.")
    if not (math.isfinite(float(fps)) and fps > 0):
        raise ValueError(f"fps must be a positive number of frames per second, got {fps!r}.")
    checked = _check_frames(frames)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write video {str(target)!r}: it is a directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(target)
    try:
        if suffix == ".gif":
            _write_gif(checked, tmp, float(fps))
        else:
            _write_mp4(checked, tmp, float(fps))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def record_video(
    act: Callable[[jax.Array, jax.Array], jax.Array],
    env: str | Environment,
    path: str | os.PathLike,
    key: jax.Array,
    *,
    params: EnvParams | None = None,
    max_steps: int | None = None,
    fps: float | None = None,
) -> RenderedEpisode:
    """Play one episode of a policy and write it as a video: `rollout_frames`, then
    `write_video`.

    Args:
      act: `act(key, obs) -> action` for one observation, jittable (`policy.act`).
      env: a bellmax id with frames (see `renderable()`) or an `Environment`.
      path: the `.gif` or `.mp4` to write (atomically).
      key: PRNG key of the episode.
      params: the environment's constants (`default_params` if None).
      max_steps: the most steps to play (default `min(params.max_steps_in_episode, 1000)`).
      fps: frames per second; real time (`frame_rate`) if None.

    Returns:
      The `RenderedEpisode` written.

    Raises:
      As `rollout_frames` and `write_video`. The suffix is checked before the episode runs.
    """
    if Path(path).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(
            f"cannot write a video to {str(path)!r}: the file name must end in "
            f"{' or '.join(VIDEO_SUFFIXES)} (the suffix picks the format)."
        )
    episode = rollout_frames(act, env, key, params=params, max_steps=max_steps)
    write_video(episode.frames, path, fps=episode.fps if fps is None else fps)
    return episode
