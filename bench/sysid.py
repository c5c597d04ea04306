"""Benchmark: identifying the cart-pole's physics from 500 transitions, against scipy.

The same work for both: 500 random-policy transitions of Gymnasium's own CartPole-v1
(through bellmax's bridge, seed 0), the same weighted one-step residuals (Euler cart-pole,
angles wrapped, each state component divided by the spread of its increments), fitted in
log-parameters with `masscart` fixed to 1 (the gauge), from the same 16 initial guesses.

- bellmax: `bellmax.models.identify` (Levenberg-Marquardt with `jax.jacfwd` Jacobians, the
  16 starts vmapped in one jitted float64 program, then the SVD identifiability report and
  standard errors). Compile time is reported apart (`ours_compile_s`).
- scipy (peer, this process): `scipy.optimize.least_squares(method="lm")` (MINPACK) on the
  same residuals written in numpy, finite-difference Jacobian, run from each of the 16
  starts in turn; the best cost wins. No report, no standard errors.

Reported: wall seconds per complete fit (16 starts), and in extra fields the single-start
times and both fits' parameters and costs (a check that both did the same work).

    python bench/sysid.py            # 5 repeats
    python bench/sysid.py --smoke    # 1 repeat (what a test would run)
"""

from __future__ import annotations

import _harness as H

H.fair_threads()

BENCH = "sysid"
NUM_TRANSITIONS = 500
NUM_STARTS = 16


def _numpy_residual(names, fixed, X, U, Xn, w):
    """The same residual as bellmax's, in numpy: `z` are the logs of the free parameters."""
    import numpy as np

    def residual(z):
        p = dict(fixed)
        p.update(zip(names, np.exp(z), strict=True))
        g, mc, mp, length, fm, tau = (
            p[k] for k in ("gravity", "masscart", "masspole", "length", "force_mag", "tau")
        )
        x_dot, th, th_dot = X[:, 1], X[:, 2], X[:, 3]
        force = fm * U[:, 0]
        total = mc + mp
        c, s = np.cos(th), np.sin(th)
        temp = (force + mp * length * th_dot**2 * s) / total
        th_acc = (g * s - c * temp) / (length * (4.0 / 3.0 - mp * c**2 / total))
        x_acc = temp - mp * length * th_acc * c / total
        pred = X + tau * np.stack([x_dot, x_acc, th_dot, th_acc], axis=1)
        d = pred - Xn
        d[:, 2] = (d[:, 2] + np.pi) % (2 * np.pi) - np.pi
        return (d * w).reshape(-1)

    return residual


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    quick = args.quick or args.smoke
    repeat = 1 if quick else 5

    import time

    import numpy as np
    import scipy
    import scipy.optimize

    from bellmax.models import SysIdConfig, collect_transitions, get_model, identify

    model = get_model("cartpole")
    data = collect_transitions("gymnasium:CartPole-v1", NUM_TRANSITIONS, seed=0)
    fix = {"masscart": 1.0}
    config = SysIdConfig(num_starts=NUM_STARTS)

    t0 = time.perf_counter()
    res = identify(model, data, fix=fix, config=config)
    first_s = time.perf_counter() - t0
    ours = H.time_it(lambda: identify(model, data, fix=fix, config=config), repeat=repeat)
    ours_one = H.time_it(
        lambda: identify(model, data, fix=fix, config=SysIdConfig(num_starts=1)),
        repeat=repeat,
    )

    # the same starts as bellmax draws (sysid.least_squares: seed, log-uniform, spread)
    names = tuple(n for n in model.param_names if n not in fix)
    z_init = np.log([model.nominal_params[n] for n in model.param_names])
    rng = np.random.default_rng(config.seed)
    z0s = np.tile(z_init, (NUM_STARTS, 1))
    width = np.log(config.spread)
    z0s[1:] += rng.uniform(-width, width, (NUM_STARTS - 1, len(z_init))) * np.array(
        [n not in fix for n in model.param_names]
    )
    free_idx = [model.param_names.index(n) for n in names]
    z0s = z0s[:, free_idx]
    X, U, Xn = model.to_model(data)
    d = Xn - X
    d[:, 2] = (d[:, 2] + np.pi) % (2 * np.pi) - np.pi
    s = d.std(axis=0)
    w = 1.0 / np.where(s > 1e-12, s, 1.0)
    fun = _numpy_residual(names, fix, X, U, Xn, w)

    def scipy_fit(starts):
        best = None
        for z0 in starts:
            with np.errstate(all="ignore"):  # some starts wander to overflowing parameters
                r = scipy.optimize.least_squares(fun, z0, method="lm", ftol=1e-12, xtol=1e-10)
            if best is None or r.cost < best.cost:
                best = r
        return best

    peer = H.time_it(lambda: scipy_fit(z0s), repeat=repeat, warmup=0)
    peer_one = H.time_it(lambda: scipy_fit(z0s[:1]), repeat=repeat, warmup=0)
    best = scipy_fit(z0s)
    peer_params = dict(zip(names, np.exp(best.x).tolist(), strict=True))

    rec = H.result(
        BENCH,
        ours=ours.median,
        peer=peer.median,
        unit="s",
        peer_name=f"scipy {scipy.__version__} least_squares(method='lm'), finite differences",
        case=f"cartpole, {NUM_TRANSITIONS} Gymnasium CartPole-v1 transitions, masscart fixed, "
        f"{NUM_STARTS} starts",
        ours_compile_s=max(first_s - ours.median, 0.0),
        ours_run_min_s=ours.min,
        peer_run_min_s=peer.min,
        ours_one_start_s=ours_one.median,
        peer_one_start_s=peer_one.median,
        ours_params=res.params,
        ours_cost=res.cost,
        ours_stderr=res.stderr,
        peer_params=peer_params,
        peer_cost=float(best.cost),
        peer_nfev=int(best.nfev),
        ours_iterations=res.iterations,
    )
    H.emit(rec, args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
