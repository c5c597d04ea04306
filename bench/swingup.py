"""Benchmark: cart-pole swing-up (T = 100), bellmax iLQR and DDP vs trajax iLQR and CasADi+IPOPT.

The problem (`bellmax.control.cartpole_swingup()` defaults): Gymnasium's cart-pole physics,
explicit Euler at dt = 0.03 s, T = 100 steps (3 s), force |F| <= 10 N, from hanging at rest
to upright at rest at the origin.

- bellmax iLQR / DDP: penalty form, cost `sum_t dt * 0.005 F_t^2 + 0.5 e_T' Q_f e_T` with
  `Q_f = diag(100, 10, 100, 10)`, box-QP backward pass; jitted; converged by their own rule.
- trajax `ilqr` (peer venv, fetched from GitHub and installed with --no-deps): the same
  dynamics and cost (terminal cost at t = T, its convention), no control bounds (trajax's
  `ilqr` has none; the optimum here stays inside |F| <= 10 anyway), `maxiter=100`.
- CasADi + IPOPT (peer venv): the same discrete-time problem as an NLP, by multiple
  shooting: states and forces as variables, the explicit Euler step as equality constraints,
  the same penalty cost and the box |F| <= 10, started like the iLQRs (zero forces, the
  states of that rollout: hanging at rest), SX graph + `nlpsol`. Both solvers are local:
  the record says whether they reached the same optimum (`cost_rel_diff`). (Records before
  2026-12-06 gave CasADi trapezoidal collocation with the goal imposed exactly, another
  problem; `collocation.py` compares that transcription with bellmax's own collocation.)

Reported: wall milliseconds of one solve (compile apart for JAX), iterations, status,
the control effort `sum dt * 0.005 F^2` and the terminal error (everyone's comparable numbers).

    python bench/swingup.py            # everyone installed
    python bench/swingup.py --smoke    # bellmax only, few repeats
"""

from __future__ import annotations

import argparse
import math
import time

import _harness as H

H.fair_threads()
H.cold_compiles()  # our compile seconds stand beside a peer's cold ones

BENCH = "swingup"
T, DT, FMAX = 100, 0.03, 10.0
R_EFFORT = 0.01  # effort weight: dt * 0.5 * R * F^2
QF = (100.0, 10.0, 100.0, 10.0)


def _effort(U, dt=DT):
    import numpy as np

    U = np.asarray(U, np.float64).reshape(-1)
    return float(dt * 0.5 * R_EFFORT * np.sum(U**2))


def measure_bellmax(
    repeat: int, horizon: int = T, dt: float = DT, methods: tuple[str, ...] = ("ilqr", "ddp")
) -> dict:
    """bellmax's iLQR and DDP on the swing-up with `horizon` steps of `dt` seconds."""
    import jax
    import numpy as np

    from bellmax.control import cartpole_swingup, ddp_problem, ilqr_problem

    problem = cartpole_swingup(horizon=horizon, dt=dt)
    solvers = {"ilqr": ilqr_problem, "ddp": ddp_problem}
    out = {}
    for name in methods:
        solve = solvers[name]

        def run(problem=problem, solve=solve):
            return solve(problem)

        t0 = time.perf_counter()
        res = jax.block_until_ready(run())
        first = time.perf_counter() - t0
        timing = H.time_it(lambda run=run: jax.block_until_ready(run()), repeat=repeat, warmup=1)
        out[name] = {
            "ms": 1e3 * timing.median,
            "ms_min": 1e3 * timing.min,
            "compile_and_first_s": first,
            "iterations": int(res.iterations),
            "status": res.status_name,
            "cost": float(res.cost),
            "effort": _effort(res.U, dt),
            "terminal_error": float(np.abs(np.asarray(res.X[-1])).max()),
        }
    return out


def measure_trajax(repeat: int, horizon: int = T, dt: float = DT) -> dict:
    """trajax's ilqr on the same problem (peer venv); `horizon` steps of `dt` seconds."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.tree_map = jax.tree.map  # trajax uses the removed alias
    from trajax import optimizers

    g, mc, mp, lh = 9.8, 1.0, 0.1, 0.5
    total, pml = mc + mp, mp * lh
    qf = jnp.asarray(QF)

    def dynamics(x, u, t):
        th, thd = x[2], x[3]
        c, s = jnp.cos(th), jnp.sin(th)
        temp = (u[0] + pml * thd**2 * s) / total
        thacc = (g * s - c * temp) / (lh * (4.0 / 3.0 - mp * c**2 / total))
        xacc = temp - pml * thacc * c / total
        return x + dt * jnp.stack([x[1], xacc, thd, thacc])

    def cost(x, u, t):
        running = dt * 0.5 * R_EFFORT * jnp.sum(u**2)
        terminal = 0.5 * jnp.sum(qf * x**2)
        return jnp.where(t == horizon, terminal, running)

    x0 = jnp.array([0.0, 0.0, math.pi, 0.0])
    U0 = jnp.zeros((horizon, 1))
    solve = jax.jit(lambda x0, U0: optimizers.ilqr(cost, dynamics, x0, U0, maxiter=100))
    t0 = time.perf_counter()
    out = jax.block_until_ready(solve(x0, U0))
    first = time.perf_counter() - t0
    timing = H.time_it(lambda: jax.block_until_ready(solve(x0, U0)), repeat=repeat, warmup=1)
    X, U, obj, grad, adj, lqr, it = out
    return {
        "ms": 1e3 * timing.median,
        "ms_min": 1e3 * timing.min,
        "compile_and_first_s": first,
        "iterations": int(it),
        "cost": float(obj),
        "gradient_norm": float(jnp.linalg.norm(grad)),
        "effort": _effort(U, dt),
        "max_abs_force": float(np.abs(np.asarray(U)).max()),
        "terminal_error": float(np.abs(np.asarray(X[-1])).max()),
        "version": "google/trajax@c94a637 (GitHub)",
    }


def measure_casadi(repeat: int) -> dict:
    """CasADi + IPOPT on the same Euler-discretised penalty problem, by multiple shooting
    (peer venv)."""
    import casadi as ca
    import numpy as np

    g, mc, mp, lh = 9.8, 1.0, 0.1, 0.5
    total, pml = mc + mp, mp * lh
    xs, us = ca.SX.sym("x", 4), ca.SX.sym("u")
    th, thd = xs[2], xs[3]
    temp = (us + pml * thd**2 * ca.sin(th)) / total
    thacc = (g * ca.sin(th) - ca.cos(th) * temp) / (lh * (4.0 / 3.0 - mp * ca.cos(th) ** 2 / total))
    xacc = temp - pml * thacc * ca.cos(th) / total
    f = ca.Function("f", [xs, us], [ca.vertcat(xs[1], xacc, thd, thacc)])
    N = T
    X = ca.SX.sym("X", 4, N + 1)
    U = ca.SX.sym("U", 1, N)
    x0 = [0.0, 0.0, math.pi, 0.0]
    J, g_eq = 0, [X[:, 0] - ca.DM(x0)]
    for k in range(N):  # explicit Euler, as bellmax's and trajax's dynamics
        J += DT * 0.5 * R_EFFORT * U[0, k] ** 2
        g_eq.append(X[:, k + 1] - X[:, k] - DT * f(X[:, k], U[0, k]))
    J += 0.5 * sum(QF[i] * X[i, N] ** 2 for i in range(4))
    w = ca.vertcat(ca.vec(X), ca.vec(U))
    nlp = {"x": w, "f": J, "g": ca.vertcat(*g_eq)}
    opts = {"ipopt.print_level": 0, "print_time": False, "record_time": True}
    solver = ca.nlpsol("s", "ipopt", nlp, opts)
    nx = 4 * (N + 1)
    lbw = [-ca.inf] * nx + [-FMAX] * N
    ubw = [ca.inf] * nx + [FMAX] * N
    w0 = np.zeros(nx + N)
    w0[:nx] = np.tile(x0, N + 1)  # zero forces leave it hanging at rest
    ng = int(nlp["g"].shape[0])

    def run():
        return solver(x0=w0, lbx=lbw, ubx=ubw, lbg=[0.0] * ng, ubg=[0.0] * ng)

    timing = H.time_it(run, repeat=repeat, warmup=1)
    sol = run()
    stats = solver.stats()
    wopt = np.asarray(sol["x"]).reshape(-1)
    Uopt, XT = wopt[nx:], wopt[nx - 4 : nx]
    return {
        "ms": 1e3 * timing.median,
        "ms_min": 1e3 * timing.min,
        "iterations": int(stats["iter_count"]),
        "status": stats["return_status"],
        "cost": float(sol["f"]),
        "effort": _effort(Uopt),
        "max_abs_force": float(np.abs(Uopt).max()),
        "terminal_error": float(np.abs(XT).max()),
        "version": ca.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--peer", choices=["trajax", "casadi"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    repeat = args.repeat or (3 if quick else 20)
    if args.peer == "trajax":
        H.print_json(measure_trajax(repeat))
        return 0
    if args.peer == "casadi":
        H.print_json(measure_casadi(repeat))
        return 0

    H.log(f"{BENCH}: bellmax iLQR and DDP")
    ours = measure_bellmax(repeat)
    peers = {}
    for peer, modules in (("casadi", ["casadi"]), ("trajax", ["trajax", "jax"])):
        if args.smoke or args.no_venv_peers:
            peers[peer] = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
            continue
        H.log(f"{BENCH}: {peer} in the peer venv")
        peers[peer] = H.run_in_peer_venv(
            __file__, ["--peer", peer, "--repeat", repeat], group=peer, modules=modules
        )
    for method in ("ilqr", "ddp"):
        mine = ours[method]
        for peer in ("casadi", "trajax"):
            res = peers[peer]
            peer_fields = (
                {"peer_skipped": res["reason"]}
                if H.is_skipped(res)
                else {f"peer_{k}": v for k, v in res.items() if k != "ms"}
            )
            H.emit(
                H.result(
                    BENCH,
                    mine["ms"],
                    None if H.is_skipped(res) else res["ms"],
                    "ms",
                    case=f"cart-pole swing-up T={T} dt={DT} |F|<={FMAX}: bellmax {method} vs {peer}",
                    method=method,
                    peer_name={
                        "casadi": "CasADi+IPOPT, the same Euler penalty problem (multiple shooting)",
                        "trajax": "trajax ilqr",
                    }[peer],
                    **(
                        {}
                        if H.is_skipped(res)
                        else {"cost_rel_diff": (mine["cost"] - res["cost"]) / abs(res["cost"])}
                    ),
                    quick=quick,
                    **{f"ours_{k}": v for k, v in mine.items() if k != "ms"},
                    **peer_fields,
                ),
                args.results_dir,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
