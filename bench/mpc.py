"""Benchmark: MPC swing-up and hold of CartPoleSwingUp-v0, milliseconds per control step.

The same work for everyone: 500 control steps (10 s) of the cart-pole from hanging, the
planner's model equal to the environment (Euler at tau = 0.02 s), a 60-step (1.2 s)
horizon, at most 3 iLQR iterations per step, the plan shifted by one step as warm start.
Cost: `dt (0.5 e'Qe + 0.005 F^2)` with the angle error wrapped, `Q = diag(1, .1, 5, .1)`,
terminal `0.5 e'diag(10, 1, 50, 1)e`; |F| <= 10 N.

- bellmax: `bellmax.control.mpc.closed_loop` (the whole closed loop in one jitted scan).
- trajax (peer venv): the same closed loop, one `lax.scan` whose step calls trajax's
  `ilqr(maxiter=3)` warm-started from the shifted plan; trajax has no control bounds, so
  the applied force is clipped to |F| <= 10.

Reported: ms per control step (whole rollout / steps, compile apart), whether the pole was
swung up and held (|theta| < 0.1 rad over the last 2 s), the reward.

    python bench/mpc.py            # everyone installed
    python bench/mpc.py --smoke    # bellmax only, short
"""

from __future__ import annotations

import argparse
import math

import _harness as H

H.fair_threads()
H.cold_compiles()  # our compile seconds stand beside a peer's cold ones

BENCH = "mpc"
HORIZON, ITERS, TAU, FMAX = 60, 3, 0.02, 10.0
Q = (1.0, 0.1, 5.0, 0.1)
QF = (10.0, 1.0, 50.0, 1.0)
R = 0.01


def _summary(X, U, steps):
    import numpy as np

    X = np.asarray(X)
    th = (X[:, 2] + np.pi) % (2 * np.pi) - np.pi
    tail = min(100, steps // 2)
    upright = (0.5 * (1 + np.cos(X[1:, 2])) * (1 - 0.01 * (np.asarray(U)[:, 0] / FMAX) ** 2)).sum()
    return {
        "held_upright": bool(np.abs(th[-tail:]).max() < 0.1 and np.abs(X[:, 0]).max() < 2.4),
        "max_abs_theta_last_2s": float(np.abs(th[-tail:]).max()),
        "max_abs_x": float(np.abs(X[:, 0]).max()),
        "reward": float(upright),
    }


def measure_bellmax(steps: int, repeat: int) -> dict:
    import jax

    from bellmax.control import cartpole_swingup, closed_loop, make_mpc
    from bellmax.envs.cartpole import CartPoleSwingUp

    problem = cartpole_swingup(dt=None, horizon=HORIZON, q=Q, r=R, q_final=QF, wrap_angle=True)
    mpc = make_mpc(problem, iterations=ITERS)
    env = CartPoleSwingUp()
    params = env.default_params
    key = jax.random.key(0)
    run = jax.jit(lambda key: closed_loop(env, params, mpc, key, steps))
    timing = H.time_jax(run, key, repeat=repeat, warmup=0)
    res = run(key)
    return {
        "ms_per_step": 1e3 * timing.run.median / steps,
        "ms_per_step_min": 1e3 * timing.run.min / steps,
        "compile_s": timing.compile_s,
        "mean_iterations": float(res.iterations.mean()),
        **_summary(res.states, res.controls, steps),
    }


def measure_trajax(steps: int, repeat: int) -> dict:
    import jax
    import jax.numpy as jnp

    jax.tree_map = jax.tree.map
    from trajax import optimizers

    g, mc, mp, lh = 9.8, 1.0, 0.1, 0.5
    total, pml = mc + mp, mp * lh
    q, qf = jnp.asarray(Q), jnp.asarray(QF)

    def dynamics(x, u, t):
        th, thd = x[2], x[3]
        c, s = jnp.cos(th), jnp.sin(th)
        temp = (u[0] + pml * thd**2 * s) / total
        thacc = (g * s - c * temp) / (lh * (4.0 / 3.0 - mp * c**2 / total))
        xacc = temp - pml * thacc * c / total
        return x + TAU * jnp.stack([x[1], xacc, thd, thacc])

    def err(x):
        return x.at[2].set((x[2] + jnp.pi) % (2 * jnp.pi) - jnp.pi)

    def cost(x, u, t):
        e = err(x)
        running = TAU * 0.5 * (jnp.sum(q * e**2) + R * jnp.sum(u**2))
        return jnp.where(t == HORIZON, 0.5 * jnp.sum(qf * e**2), running)

    def closed(key):
        x0 = jnp.array([0.0, 0.0, math.pi, 0.0]) + jax.random.uniform(
            key, (4,), minval=-0.05, maxval=0.05
        )

        def body(carry, _):
            x, U = carry
            X, Uopt, *_ = optimizers.ilqr(cost, dynamics, x, U, maxiter=ITERS)
            u = jnp.clip(Uopt[0], -FMAX, FMAX)
            x_next = dynamics(x, u, 0)
            return (x_next, jnp.concatenate([Uopt[1:], Uopt[-1:]])), (x, u)

        (xT, _), (X, U) = jax.lax.scan(body, (x0, jnp.zeros((HORIZON, 1))), None, length=steps)
        return jnp.concatenate([X, xT[None]]), U

    run = jax.jit(closed)
    key = jax.random.key(0)
    timing = H.time_jax(run, key, repeat=repeat, warmup=0)
    X, U = run(key)
    return {
        "ms_per_step": 1e3 * timing.run.median / steps,
        "ms_per_step_min": 1e3 * timing.run.min / steps,
        "compile_s": timing.compile_s,
        **_summary(X, U, steps),
        "version": "google/trajax@c94a637 (GitHub)",
    }


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--peer", choices=["trajax"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    steps = args.steps or (100 if args.smoke else 500)
    repeat = args.repeat or (2 if quick else 5)
    if args.peer == "trajax":
        H.print_json(measure_trajax(steps, repeat))
        return 0
    H.log(f"{BENCH}: bellmax MPC, {steps} steps")
    ours = measure_bellmax(steps, repeat)
    if args.smoke or args.no_venv_peers:
        peer = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
    else:
        H.log(f"{BENCH}: trajax MPC in the peer venv")
        peer = H.run_in_peer_venv(
            __file__,
            ["--peer", "trajax", "--steps", steps, "--repeat", repeat],
            group="trajax",
            modules=["trajax", "jax"],
        )
    H.emit(
        H.result(
            BENCH,
            ours["ms_per_step"],
            None if H.is_skipped(peer) else peer["ms_per_step"],
            "ms",
            case=f"CartPoleSwingUp-v0 MPC swing-up and hold, H={HORIZON}, {ITERS} iLQR it/step, "
            f"{steps} steps",
            peer_name="trajax ilqr MPC",
            quick=quick,
            steps=steps,
            **{f"ours_{k}": v for k, v in ours.items() if k != "ms_per_step"},
            **(
                {"peer_skipped": peer["reason"]}
                if H.is_skipped(peer)
                else {f"peer_{k}": v for k, v in peer.items() if k != "ms_per_step"}
            ),
        ),
        args.results_dir,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
