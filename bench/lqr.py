"""Benchmark: finite-horizon LQR (T = 100), one problem and 256 vmapped, vs trajax's tvlqr.

The same work for everyone: a random time-invariant system with n = 4 states and m = 2
controls, given as per-step arrays `[T, ...]` (time-varying form), with cross and affine
terms; the backward Riccati recursion returns the gains K_t, k_t and the value matrices.

- bellmax: `jax.jit(finite_horizon_lqr)` and `jax.jit(jax.vmap(finite_horizon_lqr))`.
- trajax `tvlqr` (peer venv; google/trajax from GitHub, installed with --no-deps), jitted
  and vmapped the same way.
- Also reported: the infinite-horizon DARE gain by `dlqr` (doubling) and by
  `scipy.linalg.solve_discrete_are`, one 4x2 problem each.

    python bench/lqr.py            # everyone installed
    python bench/lqr.py --smoke    # bellmax only
"""

from __future__ import annotations

import argparse

import _harness as H

H.fair_threads()
H.cold_compiles()  # our compile seconds stand beside a peer's cold ones

BENCH = "lqr"
T, N, M, BATCH = 100, 4, 2, 256


def _problems(batch: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    A = np.eye(N) + 0.1 * rng.normal(size=(batch, N, N))
    B = rng.normal(size=(batch, N, M))
    Q = np.broadcast_to(np.eye(N), (batch, N, N))
    R = np.broadcast_to(np.eye(M), (batch, M, M))
    Mx = 0.01 * rng.normal(size=(batch, N, M))
    c = 0.01 * rng.normal(size=(batch, N))

    def per_step(a):
        return np.ascontiguousarray(
            np.broadcast_to(a[:, None], (batch, T, *a.shape[1:])), dtype=np.float32
        )

    return {k: per_step(v) for k, v in dict(A=A, B=B, Q=Q, R=R, M=Mx, c=c).items()}


def measure_bellmax(repeat: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import scipy.linalg as sla

    from bellmax.control.lqr import dlqr, finite_horizon_lqr

    P = {k: jnp.asarray(v) for k, v in _problems(BATCH).items()}

    def one(A, B, Q, R, M, c):
        sol = finite_horizon_lqr(A, B, Q, R, Q[0], M=M, c=c)
        return sol.K, sol.k, sol.V

    args1 = tuple(P[k][0] for k in "A B Q R M c".split())
    argsb = tuple(P[k] for k in "A B Q R M c".split())
    t1 = H.time_jax(jax.jit(one), *args1, repeat=repeat * 10, warmup=5)
    tb = H.time_jax(jax.jit(jax.vmap(one)), *argsb, repeat=repeat, warmup=2)
    A0, B0 = np.asarray(P["A"][0, 0], np.float64), np.asarray(P["B"][0, 0], np.float64)
    with jax.enable_x64(True):
        dare = jax.jit(lambda A, B: dlqr(A, B, jnp.eye(N), jnp.eye(M)).K)
        td = H.time_jax(dare, A0, B0, repeat=repeat * 10, warmup=5)
        K_ours = np.asarray(dare(A0, B0))
    ts = H.time_it(lambda: sla.solve_discrete_are(A0, B0, np.eye(N), np.eye(M)), repeat=repeat * 10)
    Pref = sla.solve_discrete_are(A0, B0, np.eye(N), np.eye(M))
    K_ref = -np.linalg.solve(np.eye(M) + B0.T @ Pref @ B0, B0.T @ Pref @ A0)
    return {
        "one_ms": 1e3 * t1.run.median,
        "one_compile_s": t1.compile_s,
        "batch_ms": 1e3 * tb.run.median,
        "batch_compile_s": tb.compile_s,
        "dare_ms": 1e3 * td.run.median,
        "scipy_dare_ms": 1e3 * ts.median,
        "dare_gain_max_abs_diff_vs_scipy": float(np.abs(K_ours - K_ref).max()),
    }


def measure_trajax(repeat: int) -> dict:
    import jax
    import jax.numpy as jnp

    jax.tree_map = jax.tree.map
    from trajax.tvlqr import tvlqr

    P = {k: jnp.asarray(v) for k, v in _problems(BATCH).items()}

    def one(A, B, Q, R, Mx, c):
        Qt = jnp.concatenate([Q, Q[:1]], axis=0)
        q = jnp.zeros((T + 1, N))
        r = jnp.zeros((T, M))
        K, k, V, v = tvlqr(Qt, q, R, r, Mx, A, B, c)
        return K, k, V

    args1 = tuple(P[k][0] for k in "A B Q R M c".split())
    argsb = tuple(P[k] for k in "A B Q R M c".split())
    t1 = H.time_jax(jax.jit(one), *args1, repeat=repeat * 10, warmup=5)
    tb = H.time_jax(jax.jit(jax.vmap(one)), *argsb, repeat=repeat, warmup=2)
    return {
        "one_ms": 1e3 * t1.run.median,
        "batch_ms": 1e3 * tb.run.median,
        "one_compile_s": t1.compile_s,
        "version": "google/trajax@c94a637 (GitHub)",
    }


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--peer", choices=["trajax"], default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    repeat = args.repeat or (3 if quick else 20)
    if args.peer == "trajax":
        H.print_json(measure_trajax(repeat))
        return 0
    H.log(f"{BENCH}: bellmax")
    ours = measure_bellmax(repeat)
    if args.smoke or args.no_venv_peers:
        peer = H.skipped("peer-venv peers skipped (--smoke / --no-venv-peers)")
    else:
        H.log(f"{BENCH}: trajax tvlqr in the peer venv")
        peer = H.run_in_peer_venv(
            __file__,
            ["--peer", "trajax", "--repeat", repeat],
            group="trajax",
            modules=["trajax", "jax"],
        )
    for key, label in (("one_ms", "1 problem"), ("batch_ms", f"{BATCH} problems vmapped")):
        H.emit(
            H.result(
                BENCH,
                ours[key],
                None if H.is_skipped(peer) else peer[key],
                "ms",
                case=f"finite-horizon LQR T={T} n={N} m={M}, {label}",
                peer_name="trajax tvlqr",
                quick=quick,
                **{f"ours_{k}": v for k, v in ours.items() if k != key},
                **(
                    {"peer_skipped": peer["reason"]}
                    if H.is_skipped(peer)
                    else {f"peer_{k}": v for k, v in peer.items() if k != key}
                ),
            ),
            args.results_dir,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
