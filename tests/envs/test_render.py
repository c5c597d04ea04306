"""Frames of the cart-poles, the pendulum and the grid worlds; episodes; GIF and MP4 files."""

import math
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from PIL import Image

import bellmax
from bellmax.envs import EnvParams, EnvState, TimeLimit, render
from bellmax.envs.cartpole import CartPoleState
from bellmax.envs.environment import Environment
from bellmax.envs.pendulum import PendulumState
from bellmax.envs.render import (
    AGENT_COLOR,
    RenderedEpisode,
    VideoDependencyError,
    can_render,
    frame_rate,
    record_video,
    register_renderer,
    render_frame,
    renderable,
    rollout_frames,
    write_video,
)
from bellmax.policy import write_policy_file

GRIDS = ["GridWorld4x4-v0", "GridWorld5x5-v0", "CliffWalking-v0", "WindyGridworld-v0"]
SIZES = {
    "CartPole-v1": (400, 600),
    "CartPoleSwingUp-v0": (400, 600),
    "Pendulum-v1": (500, 500),
    # The partially observed variants inherit their physics' renderer (the true state drawn).
    "PartialCartPole-v0": (400, 600),
    "PartialPendulum-v0": (500, 500),
    "GridWorld4x4-v0": (4 * 48, 4 * 48),
    "GridWorld5x5-v0": (5 * 48, 5 * 48),
    "CliffWalking-v0": (4 * 48, 12 * 48),
    "WindyGridworld-v0": (7 * 48, 10 * 48),
}


def _pixels(frame, color):
    """Row and column indices of the pixels of exactly `color`."""
    return np.nonzero(np.all(frame == np.asarray(color, np.uint8), axis=-1))


def _centroid(frame, color):
    rows, cols = _pixels(frame, color)
    assert rows.size > 0, f"no pixel of colour {color}"
    return rows.mean(), cols.mean()


def _cartpole_state(x=0.0, theta=0.0):
    f = np.float32
    return CartPoleState(x=f(x), x_dot=f(0), theta=f(theta), theta_dot=f(0), time=np.int32(0))


# ---------------------------------------------------------------------- every renderable env


def test_renderable_lists_the_cartpoles_pendulum_and_grid_worlds():
    assert renderable() == sorted(SIZES)
    assert not can_render(bellmax.make("GaussianBandit-v0")[0])


@pytest.mark.parametrize("env_id", sorted(SIZES))
def test_frames_have_the_size_and_dtype_and_follow_the_state(env_id):
    env, params = bellmax.make(env_id)
    _, state = env.reset(jax.random.key(0), params)
    frame = render_frame(env, state, params)
    assert frame.shape == (*SIZES[env_id], 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame, render_frame(env, state))  # default params
    # a few steps later the picture is a different one
    key = jax.random.key(1)
    moved = state
    for _ in range(5):
        key, k_act, k_step = jax.random.split(key, 3)
        action = env.action_space(params).sample(k_act)
        _, moved, *_ = env.step(k_step, moved, action, params)
    if env_id in GRIDS and int(moved.pos) == int(state.pos):
        pytest.skip("the random walk came back to its start")  # not with these keys
    assert not np.array_equal(frame, render_frame(env, moved, params))
    assert frame_rate(env, params) > 0


def test_wrapped_environment_draws_its_inner_state():
    env, params = bellmax.make("CartPole-v1")
    wrapped = TimeLimit(env, 10)
    _, wstate = wrapped.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(
        render_frame(wrapped, wstate, params), render_frame(env, wstate.env_state, params)
    )
    assert can_render(wrapped)


# ---------------------------------------------------------------------- cart-pole


def test_cartpole_pole_pixels_lean_the_way_theta_says():
    env, params = bellmax.make("CartPole-v1")
    pole = render._POLE_COLOR
    up_r, up_c = _centroid(render_frame(env, _cartpole_state(theta=0.0), params), pole)
    right_r, right_c = _centroid(render_frame(env, _cartpole_state(theta=0.2), params), pole)
    left_r, left_c = _centroid(render_frame(env, _cartpole_state(theta=-0.2), params), pole)
    assert abs(up_c - 300) < 1  # centred on the cart, which is centred on the track
    # positive theta leans the pole right (Gymnasium's convention): its centroid moves right
    # by about half the pole's length (62.5 pixels) times sin(0.2), and a little down
    expected = 62.5 * math.sin(0.2)
    assert right_c - up_c == pytest.approx(expected, abs=2.0)
    assert up_c - left_c == pytest.approx(expected, abs=2.0)
    assert right_r > up_r and left_r > up_r
    # the pole's pixels are above the track (row 300)
    rows, _ = _pixels(render_frame(env, _cartpole_state(theta=0.2), params), pole)
    assert rows.max() < 300


def test_cartpole_cart_moves_with_x_and_the_pole_length_follows_params():
    env, params = bellmax.make("CartPole-v1")
    a = render_frame(env, _cartpole_state(x=0.0), params)
    b = render_frame(env, _cartpole_state(x=1.2), params)
    # the axle (a unique colour) sits on the cart: 1.2 m right is 1.2 * 125 = 150 pixels
    assert _centroid(b, render._AXLE_COLOR)[1] - _centroid(a, render._AXLE_COLOR)[1] == (
        pytest.approx(150.0, abs=0.5)
    )
    long = render_frame(env, _cartpole_state(), params.replace(length=1.0))
    short_rows, _ = _pixels(a, render._POLE_COLOR)
    long_rows, _ = _pixels(long, render._POLE_COLOR)
    assert long_rows.size > 1.8 * short_rows.size


def test_swing_up_hanging_pole_is_below_the_track_and_upright_above():
    env, params = bellmax.make("CartPoleSwingUp-v0")
    hanging = _cartpole_state(theta=np.pi)  # where the swing-up starts
    # the track is halfway up the 400-pixel frame; the pole (125 pixels) hangs from the axle
    # 7.5 pixels above it
    r, c = _centroid(render_frame(env, hanging, params), render._POLE_COLOR)
    assert r == pytest.approx(200 - 7.5 + 62.5, abs=5) and c == pytest.approx(300, abs=1)
    r, c = _centroid(render_frame(env, _cartpole_state(theta=0.0), params), render._POLE_COLOR)
    assert r == pytest.approx(200 - 7.5 - 62.5, abs=5) and c == pytest.approx(300, abs=1)


# ---------------------------------------------------------------------- pendulum


def _pendulum_state(theta, last_u=0.0):
    f = np.float32
    return PendulumState(theta=f(theta), theta_dot=f(0), last_u=f(last_u), time=np.int32(0))


def test_pendulum_rod_points_where_theta_says():
    env, params = bellmax.make("Pendulum-v1")
    rod = render._ROD_COLOR
    r, c = _centroid(render_frame(env, _pendulum_state(0.0), params), rod)
    assert r < 250 - 40 and abs(c - 250) < 1  # upright: above the pivot
    r, c = _centroid(render_frame(env, _pendulum_state(np.pi / 2), params), rod)
    assert c < 250 - 40 and abs(r - 250) < 1  # +pi/2: counter-clockwise, to the left
    r, c = _centroid(render_frame(env, _pendulum_state(np.pi), params), rod)
    assert r > 250 + 40  # hanging


def test_pendulum_torque_arc_grows_and_turns_with_the_torque():
    env, params = bellmax.make("Pendulum-v1")
    torque = render._TORQUE_COLOR
    none = render_frame(env, _pendulum_state(0.0, 0.0), params)
    assert _pixels(none, torque)[0].size == 0
    small = _pixels(render_frame(env, _pendulum_state(0.0, 0.5), params), torque)[0].size
    big = _pixels(render_frame(env, _pendulum_state(0.0, 2.0), params), torque)[0].size
    assert 0 < small < big
    # from the bottom, a positive (counter-clockwise) torque's arc goes right, a negative left
    _, c_pos = _centroid(render_frame(env, _pendulum_state(0.0, 1.0), params), torque)
    _, c_neg = _centroid(render_frame(env, _pendulum_state(0.0, -1.0), params), torque)
    assert c_pos > 250 > c_neg


# ---------------------------------------------------------------------- grid worlds


@pytest.mark.parametrize("env_id", GRIDS)
def test_grid_frame_marks_the_agent_cell(env_id):
    env, params = bellmax.make(env_id)
    rows, cols = env.grid_shape
    cell = render.GRID_CELL
    for s in [0, cols - 1, rows * cols // 2, rows * cols - 1]:
        state = env.state_type(pos=np.int32(s), time=np.int32(0))
        frame = render_frame(env, state, params)
        assert frame.shape == (rows * cell, cols * cell, 3)
        pr, pc = _pixels(frame, AGENT_COLOR)
        r, c = divmod(s, cols)
        # every agent pixel lies in the agent's cell, centred on it
        assert pr.min() >= r * cell and pr.max() < (r + 1) * cell
        assert pc.min() >= c * cell and pc.max() < (c + 1) * cell
        assert (pr.mean(), pc.mean()) == pytest.approx(((r + 0.5) * cell, (c + 0.5) * cell), abs=1)


def test_grid_frame_shows_cliffs_goal_and_teleports():
    env, params = bellmax.make("CliffWalking-v0")
    frame = render_frame(env, env.state_type(pos=np.int32(0), time=np.int32(0)), params)
    cell = render.GRID_CELL

    def color_of(r, c):
        return tuple(frame[int((r + 0.5) * cell), int((c + 0.5) * cell)])

    assert all(color_of(3, c) == render._CLIFF_COLOR for c in range(1, 11))
    assert color_of(3, 11) == render._TERMINAL_COLOR
    assert color_of(3, 0) == render._START_COLOR
    env, params = bellmax.make("GridWorld5x5-v0")
    frame = render_frame(env, env.state_type(pos=np.int32(24), time=np.int32(0)), params)
    assert color_of(0, 1) == color_of(0, 3) == render._TELEPORT_COLOR
    assert color_of(4, 1) == color_of(2, 3) == render._TELEPORT_TO_COLOR


# ---------------------------------------------------------------------- errors and registry


def test_render_errors():
    env, params = bellmax.make("CartPole-v1")
    batch = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 3), params)
    with pytest.raises(ValueError, match="one state, got a batch"):
        render_frame(env, batch[1], params)
    bandit, bandit_params = bellmax.make("GaussianBandit-v0")
    _, state = bandit.reset(jax.random.key(0), bandit_params)
    with pytest.raises(ValueError, match=r"GaussianBandit-v0 has no frames.*CartPole-v1"):
        render_frame(bandit, state, bandit_params)
    with pytest.raises(ValueError, match="has no frames"):
        frame_rate(bandit)
    with pytest.raises(TypeError, match="Environment subclass"):
        register_renderer(object, lambda e, s, p: None)
    with pytest.raises(TypeError, match="draw must be a function"):
        register_renderer(Environment, 3)
    with pytest.raises(ValueError, match="already has a renderer"):
        register_renderer(type(env), render.draw_cartpole)


def test_register_renderer_for_a_new_environment():
    class Dot(Environment):
        def reset_env(self, key, params):
            return np.int32(0), EnvState(time=np.int32(0))

    def draw(env, state, params):
        frame = np.zeros((2, 3, 3), np.uint8)
        frame[0, int(state.time) % 3] = 255
        return frame

    register_renderer(Dot, draw, fps=10)
    try:
        frame = render_frame(Dot(), EnvState(time=np.int32(1)), EnvParams())
        assert frame[0, 1].tolist() == [255, 255, 255]
        assert frame_rate(Dot()) == 10.0
        register_renderer(Dot, lambda e, s, p: np.zeros((2, 2), np.uint8), overwrite=True)
        with pytest.raises(ValueError, match=r"must be \[H, W, 3\] uint8"):
            render_frame(Dot(), EnvState(time=np.int32(1)), EnvParams())
    finally:
        render._RENDERERS.pop(Dot)


# ---------------------------------------------------------------------- episodes


def _random_act(env_id):
    env, params = bellmax.make(env_id)
    space = env.action_space(params)
    return lambda key, obs: space.sample(key)


def test_rollout_frames_plays_random_cartpole_to_its_end():
    episode = rollout_frames(_random_act("CartPole-v1"), "CartPole-v1", jax.random.key(0))
    assert isinstance(episode, RenderedEpisode)
    assert episode.terminated and not episode.truncated
    assert 5 < episode.length < 100  # random pushes drop the pole quickly
    assert episode.frames.shape == (episode.length + 1, 400, 600, 3)
    assert episode.episode_return == episode.length  # +1 a step
    assert episode.fps == 50.0
    # the last frame shows the pole beyond 12 degrees: its pixels' centroid is off-centre
    env, params = bellmax.make("CartPole-v1")
    assert not np.array_equal(episode.frames[0], episode.frames[-1])
    # the same key replays the same episode
    again = rollout_frames(_random_act("CartPole-v1"), env, jax.random.key(0), params=params)
    np.testing.assert_array_equal(again.frames, episode.frames)


def test_rollout_frames_truncation_and_cap():
    env, params = bellmax.make("Pendulum-v1", max_steps_in_episode=4)
    episode = rollout_frames(
        lambda k, o: np.zeros(1, np.float32), env, jax.random.key(1), params=params
    )
    assert episode.truncated and not episode.terminated and episode.length == 4
    assert episode.frames.shape == (5, 500, 500, 3)
    capped = rollout_frames(
        _random_act("CliffWalking-v0"), "CliffWalking-v0", jax.random.key(2), max_steps=3
    )
    assert capped.length == 3 and not capped.terminated and not capped.truncated
    assert capped.frames.shape[0] == 4


def test_rollout_frames_errors():
    act = _random_act("CartPole-v1")
    with pytest.raises(TypeError, match="act must be a function"):
        rollout_frames(None, "CartPole-v1", jax.random.key(0))
    with pytest.raises(TypeError, match="env id"):
        rollout_frames(act, 3, jax.random.key(0))
    with pytest.raises(ValueError, match="GaussianBandit-v0 has no frames"):
        rollout_frames(act, "GaussianBandit-v0", jax.random.key(0))
    with pytest.raises(ValueError, match="max_steps must be >= 1"):
        rollout_frames(act, "CartPole-v1", jax.random.key(0), max_steps=0)
    for env_id in ["CartPol-v1", "gymnasium:CartPole-v1", "gymnax:CartPole-v1"]:
        with pytest.raises(ValueError, match=r"cannot draw .* bellmax environments only: Cart"):
            rollout_frames(act, env_id, jax.random.key(0))


def _linear_cartpole_policy(tmp_path):
    """A policy file as `bellmax train` writes it: a linear controller that balances
    (push towards the side the pole falls to)."""
    env, params = bellmax.make("CartPole-v1")
    kernel = np.zeros((1, 4, 2), np.float32)
    kernel[0, :, 1] = [0.01, 0.1, 1.0, 0.5]  # logit of "right" minus that of "left"
    write_policy_file(
        tmp_path / "policy.msgpack",
        algorithm="ppo",
        network={"kind": "categorical", "hidden_sizes": [], "activation": "tanh", "output_size": 2},
        observation_space=env.observation_space(params),
        action_space=env.action_space(params),
        weights={"output/kernel": kernel, "output/bias": np.zeros((1, 2), np.float32)},
        seeds=[0],
        run={"env": "CartPole-v1"},
    )
    return bellmax.load_policy(tmp_path)


def test_record_video_of_a_loaded_policy(tmp_path):
    policy = _linear_cartpole_policy(tmp_path)
    episode = record_video(
        policy.act, "CartPole-v1", tmp_path / "balance.gif", jax.random.key(0), max_steps=40
    )
    assert episode.length == 40 and not episode.terminated  # balanced until the cap
    assert episode.episode_return == 40.0
    with Image.open(tmp_path / "balance.gif") as im:
        assert im.n_frames == 41 and im.info["duration"] == 20  # 50 fps: real time
    # the pole stays near upright: its pixels never drift far from the cart's axle
    for frame in episode.frames[::10]:
        _, pole_c = _centroid(frame, render._POLE_COLOR)
        _, axle_c = _centroid(frame, render._AXLE_COLOR)
        assert abs(pole_c - axle_c) < 10
    with pytest.raises(ValueError, match=r"must end in \.gif or \.mp4"):
        record_video(policy.act, "CartPole-v1", tmp_path / "x.webm", jax.random.key(0))


# ---------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def cartpole_frames():
    env, params = bellmax.make("CartPole-v1")
    episode = rollout_frames(_random_act("CartPole-v1"), env, jax.random.key(3), max_steps=6)
    return episode.frames


def test_gif_of_random_cartpole_has_one_image_per_frame(tmp_path, cartpole_frames):
    path = write_video(cartpole_frames, tmp_path / "sub" / "cartpole.gif", fps=50)
    assert path == tmp_path / "sub" / "cartpole.gif"
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == len(cartpole_frames)
        assert im.size == (600, 400)
        assert im.info["duration"] == 20
        im.seek(len(cartpole_frames) - 1)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), cartpole_frames[-1])
    assert sorted(p.name for p in path.parent.iterdir()) == ["cartpole.gif"]  # no temp file
    # a list of frames works too, and the file is replaced whole
    write_video(list(cartpole_frames[:2]), path, fps=10)
    with Image.open(path) as im:
        assert im.n_frames == 2


def test_failed_write_leaves_the_old_file(tmp_path, cartpole_frames, monkeypatch):
    path = tmp_path / "v.gif"
    path.write_bytes(b"old")

    def broken(frames, tmp, fps):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(render, "_write_gif", broken)
    with pytest.raises(OSError, match="disk full"):
        write_video(cartpole_frames, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["v.gif"]


def test_write_video_errors(tmp_path, cartpole_frames):
    f = cartpole_frames
    with pytest.raises(ValueError, match=r"must end in \.gif or \.mp4"):
        write_video(f, tmp_path / "v.avi")
    with pytest.raises(ValueError, match="at least one frame"):
        write_video([], tmp_path / "v.gif")
    with pytest.raises(TypeError, match="uint8"):
        write_video(f.astype(np.float32), tmp_path / "v.gif")
    with pytest.raises(ValueError, match="same size"):
        write_video([f[0], f[0][:10]], tmp_path / "v.gif")
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        write_video([f[0][..., 0]], tmp_path / "v.gif")
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        write_video(f[0], tmp_path / "v.gif")
    with pytest.raises(ValueError, match="positive"):
        write_video(f, tmp_path / "v.gif", fps=0)
    with pytest.raises(TypeError, match="fps must be a number"):
        write_video(f, tmp_path / "v.gif", fps="fast")
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_ffmpeg_says_what_to_install(tmp_path, cartpole_frames, monkeypatch):
    monkeypatch.setattr(render, "_find_ffmpeg", lambda: None)
    with pytest.raises(VideoDependencyError, match=r"needs ffmpeg.*imageio-ffmpeg.*\.gif"):
        write_video(cartpole_frames, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []
    assert issubclass(VideoDependencyError, ImportError)


_FAKE_FFMPEG = """\
import sys
data = sys.stdin.buffer.read()
args = sys.argv[1:]
if "{fail}" and args[args.index("-c:v") + 1] == "{fail}":
    sys.stderr.write("Unknown encoder '{fail}'")
    sys.exit(1)
with open(args[-1], "w") as f:
    f.write(" ".join(args[:-1]) + "\\n" + str(len(data)))
"""


def _fake_ffmpeg(tmp_path, fail=""):
    script = tmp_path / "fake_ffmpeg.py"
    script.write_text(_FAKE_FFMPEG.format(fail=fail))
    exe = tmp_path / "ffmpeg"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def test_mp4_pipes_raw_frames_to_ffmpeg(tmp_path, cartpole_frames, monkeypatch):
    exe = _fake_ffmpeg(tmp_path)
    monkeypatch.setattr(render, "_find_ffmpeg", lambda: exe)
    out = tmp_path / "videos" / "v.mp4"
    write_video(cartpole_frames, out, fps=50)
    args, nbytes = out.read_text().splitlines()
    assert int(nbytes) == cartpole_frames.size  # every frame, as raw RGB bytes
    assert "-s 600x400 -r 50" in args and "-c:v libx264" in args and "-f mp4" in args
    assert [p.name for p in out.parent.iterdir()] == ["v.mp4"]


def test_mp4_falls_back_to_mpeg4_and_reports_ffmpeg_failures(
    tmp_path, cartpole_frames, monkeypatch
):
    exe = _fake_ffmpeg(tmp_path, fail="libx264")
    monkeypatch.setattr(render, "_find_ffmpeg", lambda: exe)
    out = tmp_path / "v.mp4"
    write_video(cartpole_frames, out, fps=50)
    assert "-c:v mpeg4" in out.read_text()
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho 'no codecs here' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(render, "_find_ffmpeg", lambda: str(broken))
    with pytest.raises(RuntimeError, match=r"exit code 3: no codecs here.*\.gif"):
        write_video(cartpole_frames, tmp_path / "w.mp4")
    assert not (tmp_path / "w.mp4").exists()


def test_an_early_exit_of_ffmpeg_reported_as_on_windows_still_falls_back(
    tmp_path, cartpole_frames, monkeypatch
):
    # Windows reports a write to a pipe whose reader has gone as OSError(EINVAL), not
    # BrokenPipeError: the write failed with a bare "Invalid argument", without trying
    # mpeg4 or showing ffmpeg's message.
    import errno
    import subprocess

    class WindowsPipe:
        def __init__(self, f):
            self._f = f

        def _as_windows(self, fn, *args):
            try:
                return fn(*args)
            except BrokenPipeError:
                raise OSError(errno.EINVAL, "Invalid argument") from None

        def write(self, data):
            return self._as_windows(self._f.write, data)

        def close(self):
            return self._as_windows(self._f.close)

    real = subprocess.Popen

    def popen(*args, **kwargs):
        proc = real(*args, **kwargs)
        proc.stdin = WindowsPipe(proc.stdin)
        return proc

    # an ffmpeg that refuses libx264 before reading its input, as a real one does
    exe = _fake_ffmpeg(tmp_path)
    script = tmp_path / "fake_ffmpeg.py"
    script.write_text(
        "import sys\nif 'libx264' in sys.argv:\n    sys.stderr.write('no libx264')\n"
        "    sys.exit(1)\n" + _FAKE_FFMPEG.format(fail="")
    )
    monkeypatch.setattr(render.subprocess, "Popen", popen)
    monkeypatch.setattr(render, "_find_ffmpeg", lambda: exe)
    out = write_video(cartpole_frames, tmp_path / "v.mp4", fps=50)
    assert "-c:v mpeg4" in out.read_text()


@pytest.mark.skipif(render._find_ffmpeg() is None, reason="no ffmpeg installed")
def test_mp4_with_a_real_ffmpeg(tmp_path, cartpole_frames):
    out = write_video(cartpole_frames, tmp_path / "v.mp4", fps=50)
    assert out.stat().st_size > 1000


# ---------------------------------------------------------------------- isolation


def test_importing_bellmax_or_render_loads_no_plotting_library():
    code = textwrap.dedent(
        """
        import sys, bellmax, bellmax.envs, bellmax.envs.render
        for name in ("matplotlib", "PIL", "gymnasium"):
            assert name not in sys.modules, name + " was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)
