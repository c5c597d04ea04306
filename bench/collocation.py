"""Benchmark: direct collocation of the cart-pole swing-up, bellmax vs CasADi + IPOPT.

The same transcription for both (bench/.venv-peers has casadi 3.8; group `casadi`):
Gymnasium's cart-pole constants, |F| <= 10 N, |x| <= 2.4 m, from hanging at rest
`[0, 0, pi, 0]` to upright at rest `[0, 0, 0, 0]` in T = 3 s on N = 100 intervals,
minimum effort `integral F^2 dt`; trapezoidal (knots `(x_k, F_k)`) and compressed
Hermite-Simpson (plus midpoint forces) defects; boundary states as fixed variables
(`lbx == ubx`, IPOPT's make_parameter); initial guess the straight line in state from start
to goal and zero force.

- bellmax: `bellmax.control.collocation` (JAX-native primal-dual interior point,
  `bellmax.control.nlp`), float64, compile time reported apart (first call minus a
  steady-state call).
- CasADi 3.8 + IPOPT (peer venv): `SX` expressions and `nlpsol("ipopt")` (not `Opti`/MX,
  27x slower per PEERS.md), default IPOPT options (tol 1e-8, exact Hessian, MUMPS), output off;
  the timed call is the solve only (building the `nlpsol` is reported apart).

Reported per method: wall time per solve (median), iterations, optimal cost and the relative
cost difference; then bellmax warm-started from CasADi's optimum (does our solver reproduce
its local minimum, and how fast).

    python bench/collocation.py              # N = 100, both methods, CasADi in the peer venv
    python bench/collocation.py --quick      # fewer repeats
    python bench/collocation.py --smoke      # N = 30, no peer venv (what the tests run)
"""

from __future__ import annotations

import argparse
import statistics
import time

import _harness as H

H.fair_threads()

BENCH = "collocation"
METHODS = ("trapezoidal", "hermite_simpson")
START = (0.0, 0.0, 3.141592653589793, 0.0)
X_LIMIT, FORCE = 2.4, 10.0


# --------------------------------------------------------------------------- CasADi (peer venv)
def casadi_swingup(method: str, N: int, duration: float, repeat: int = 1) -> dict:
    """Build and solve the swing-up transcription with CasADi SX + IPOPT (peer side)."""
    import casadi as ca
    import numpy as np

    g, mc, mp, half = 9.8, 1.0, 0.1, 0.5  # Gymnasium's CartPole-v1 constants

    def f(x, u):
        th, thd = x[2], x[3]
        ct, st = ca.cos(th), ca.sin(th)
        tot, pml = mc + mp, mp * half
        temp = (u + pml * thd**2 * st) / tot
        tha = (g * st - ct * temp) / (half * (4.0 / 3.0 - mp * ct**2 / tot))
        xa = temp - pml * tha * ct / tot
        return ca.vertcat(x[1], xa, thd, tha)

    t0 = time.perf_counter()
    h = duration / N
    hs = method == "hermite_simpson"
    X = ca.SX.sym("X", 4, N + 1)
    U = ca.SX.sym("U", 1, N + 1)
    Um = ca.SX.sym("Um", 1, N)
    F = [f(X[:, k], U[0, k]) for k in range(N + 1)]
    defects, J = [], 0
    for k in range(N):
        if hs:
            xc = 0.5 * (X[:, k] + X[:, k + 1]) + h / 8 * (F[k] - F[k + 1])
            fc = f(xc, Um[0, k])
            defects.append(X[:, k + 1] - X[:, k] - h / 6 * (F[k] + 4 * fc + F[k + 1]))
            J += h / 6 * (U[0, k] ** 2 + 4 * Um[0, k] ** 2 + U[0, k + 1] ** 2)
        else:
            defects.append(X[:, k + 1] - X[:, k] - h / 2 * (F[k] + F[k + 1]))
            J += h / 2 * (U[0, k] ** 2 + U[0, k + 1] ** 2)
    parts = [ca.vec(X), ca.vec(U)] + ([ca.vec(Um)] if hs else [])
    nlp = {"x": ca.vertcat(*parts), "f": J, "g": ca.vertcat(*defects)}
    solver = ca.nlpsol(
        "swingup", "ipopt", nlp, {"ipopt.print_level": 0, "print_time": 0, "record_time": True}
    )
    build_s = time.perf_counter() - t0

    inf = np.inf
    xl = np.tile([[-X_LIMIT], [-inf], [-inf], [-inf]], (1, N + 1))
    xu = -xl
    xl[:, 0] = xu[:, 0] = START
    xl[:, -1] = xu[:, -1] = 0.0
    s = np.linspace(0.0, 1.0, N + 1)
    X0 = np.outer(START, 1.0 - s)
    nu = 2 * N + 1 if hs else N + 1
    lbw = np.concatenate([xl.T.ravel(), -FORCE * np.ones(nu)])
    ubw = np.concatenate([xu.T.ravel(), FORCE * np.ones(nu)])
    w0 = np.concatenate([X0.T.ravel(), np.zeros(nu)])
    times = []
    solver(x0=w0, lbx=lbw, ubx=ubw, lbg=0.0, ubg=0.0)  # a first solve, as ours gets one
    for _ in range(max(1, repeat)):
        t1 = time.perf_counter()
        sol = solver(x0=w0, lbx=lbw, ubx=ubw, lbg=0.0, ubg=0.0)
        times.append(time.perf_counter() - t1)
    stats = solver.stats()
    w = np.asarray(sol["x"]).ravel()
    return {
        "version": ca.__version__,
        "method": method,
        "N": N,
        "cost": float(sol["f"]),
        "iterations": int(stats["iter_count"]),
        "status": str(stats["return_status"]),
        "success": bool(stats["success"]),
        "solve_s_median": statistics.median(times),
        "solve_s_min": min(times),
        "build_s": build_s,
        "ipopt_t_wall_total": float(stats.get("t_wall_total", float("nan"))),
        "constraint_violation": float(np.max(np.abs(np.asarray(sol["g"])))),
        "X": w[: 4 * (N + 1)].reshape(N + 1, 4).tolist(),
        "U": w[4 * (N + 1) : 5 * (N + 1)].reshape(N + 1, 1).tolist(),
    }


# --------------------------------------------------------------------------- bellmax
def _f(x, u, t, p):
    from bellmax.envs.cartpole import cartpole_derivatives

    return cartpole_derivatives(x, u[0], p)


def _effort(x, u, t, p):
    return (u**2).sum()


def _ours(method: str, N: int, duration: float, **kw):
    # Module-level functions: the compiled solver is cached per (f, cost, method).
    from bellmax.control.collocation import collocation
    from bellmax.envs.cartpole import CartPoleParams

    bound = [X_LIMIT, float("inf"), float("inf"), float("inf")]
    return collocation(
        _f,
        _effort,
        START,
        duration,
        N,
        x_goal=[0.0, 0.0, 0.0, 0.0],
        method=method,
        params=CartPoleParams(),
        u_lower=[-FORCE],
        u_upper=[FORCE],
        x_lower=[-b for b in bound],
        x_upper=bound,
        **kw,
    )


def measure_ours(method: str, N: int, duration: float, repeat: int, **kw) -> dict:
    import jax

    t0 = time.perf_counter()
    res = _ours(method, N, duration, **kw)
    jax.block_until_ready(res.X)
    first = time.perf_counter() - t0
    t = H.time_it(
        lambda: jax.block_until_ready(_ours(method, N, duration, **kw).X), repeat=repeat, warmup=0
    )
    return {
        "cost": float(res.cost),
        "iterations": int(res.iterations),
        "status": res.status_name,
        "constraint_violation": float(res.constraint_violation),
        "dual_infeasibility": float(res.dual_infeasibility),
        "first_call_s": first,
        "compile_s": max(first - t.median, 0.0),
        "solve": t,
    }


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--N", type=int, default=None, help="collocation intervals (default 100)")
    p.add_argument("--duration", type=float, default=3.0, help="horizon in seconds")
    p.add_argument("--repeat", type=int, default=None, help="timed solves per implementation")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--peer", choices=["casadi"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--method", choices=METHODS, default="trapezoidal", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    N = args.N or (30 if args.smoke else 100)
    repeat = args.repeat or (3 if quick else 10)
    if N < 2 or repeat < 1 or not args.duration > 0:
        p.error("--N must be >= 2, --repeat >= 1 and --duration > 0")

    if args.peer == "casadi":  # peer side, inside bench/.venv-peers
        H.print_json(casadi_swingup(args.method, N, args.duration, repeat))
        return 0

    import numpy as np

    for method in args.methods:
        H.log(f"{BENCH}: bellmax {method}, N={N}")
        ours = measure_ours(method, N, args.duration, repeat)
        if args.smoke or args.no_venv_peers:
            peer = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
        else:
            H.log(f"{BENCH}: CasADi + IPOPT {method} in the peer venv")
            peer = H.run_in_peer_venv(
                __file__,
                ["--peer", "casadi", "--method", method, "--N", N, "--repeat", repeat],
                group="casadi",
                modules=["casadi"],
                timeout=600,
            )
        extra = {}
        peer_ms = None
        if H.is_skipped(peer):
            H.log(f"{BENCH}: CasADi skipped: {peer['reason']}")
            extra["peer_skipped"] = peer["reason"]
        else:
            peer_ms = peer["solve_s_median"] * 1e3
            extra.update(
                peer_version=peer["version"],
                peer_cost=peer["cost"],
                peer_iterations=peer["iterations"],
                peer_status=peer["status"],
                peer_build_s=peer["build_s"],
                peer_constraint_violation=peer["constraint_violation"],
                cost_rel_diff=(ours["cost"] - peer["cost"]) / abs(peer["cost"]),
            )
            # Our solver started from CasADi's optimum: the same local minimum, and how fast.
            H.log(f"{BENCH}: bellmax {method} warm-started from CasADi's optimum")
            Xc, Uc = np.asarray(peer["X"]), np.asarray(peer["U"])
            warm = measure_ours(method, N, args.duration, repeat, X_init=Xc, U_init=Uc)
            extra.update(
                warm_cost=warm["cost"],
                warm_iterations=warm["iterations"],
                warm_status=warm["status"],
                warm_solve_ms=warm["solve"].median * 1e3,
                warm_cost_rel_diff=(warm["cost"] - peer["cost"]) / abs(peer["cost"]),
            )
        rec = H.result(
            BENCH,
            ours["solve"].median * 1e3,
            peer_ms,
            "ms",
            case=f"cart-pole swing-up, {method}, N={N}, T={args.duration} s, min effort",
            peer_name="CasADi 3.8 SX + nlpsol(ipopt)",
            method=method,
            N=N,
            quick=quick,
            ours_cost=ours["cost"],
            ours_iterations=ours["iterations"],
            ours_status=ours["status"],
            ours_constraint_violation=ours["constraint_violation"],
            ours_dual_infeasibility=ours["dual_infeasibility"],
            ours_compile_s=ours["compile_s"],
            ours_first_call_s=ours["first_call_s"],
            **ours["solve"].to_dict("ours_solve_"),
            **extra,
        )
        H.emit(rec, args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
