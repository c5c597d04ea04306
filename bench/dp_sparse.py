"""Benchmark: value and policy iteration on random sparse MDPs, against scipy.sparse and pymdptoolbox.

The same work for everyone: random ("Garnet") MDPs from `bellmax.tabular.dp.random_mdp`,
4 actions, 5 random successors per (state, action), standard-normal rewards, gamma = 0.99,
at 1e3, 1e4, 1e5 and 1e6 states.

- bellmax: `value_iteration` and `policy_iteration` (BiCGSTAB evaluation above 5000 states),
  float64, on the slot-major ELL layout (even rows: no overflow).
- scipy.sparse (peer, this process): the plain implementation, one CSR `[S*A, S]` matvec
  per backup (`Q = R + gamma (M @ V).reshape(S, A)`); value iteration with the same
  stopping rule as ours; policy iteration with `scipy.sparse.linalg.bicgstab` on the policy's
  rows to the same residual target.
- pymdptoolbox 4.0b3 (peer venv, group `mdptoolbox`): `ValueIteration` (span stopping rule,
  epsilon = our tol) and `PolicyIteration` (matrix evaluation) on the same MDP given as A
  sparse CSC matrices. It densifies: PolicyIteration needs an S x S dense matrix and fails with
  MemoryError at 1e5 states (reported, not hidden). Its values are not comparable (the span
  rule stops far from V*): its policies are compared with ours.

Reported per size: time per backup (ours vs scipy; compile apart) and the memory-traffic
bounds for one backup: bytes streamed (next_state int32 + prob float64 per slot, R, V, V')
divided by the bandwidth of a large numpy copy; and a second bound that also charges one
64-byte cache line per random successor gather (what a 1e6-state V that does not stay in
cache costs). Then the total time to solve to the same tolerance (VI: error bound `tol` on
the values; PI: policy stable, evaluations to `tol`).

Uneven rows (metric `backup_uneven`): the same MDP built with `TabularMDP.from_coo`, except
that row (0, 0) reaches every state. The hybrid layout keeps 5 slots per row and spills the
long row into its overflow list (a segment sum); the record gives the time per backup
against scipy's CSR matvec on the same data, the entries stored, and the bytes the old
layout (every row padded to the longest, int32 + float64 per slot) would have needed.

    python bench/dp_sparse.py                 # 1e3 .. 1e6, every peer (long: ~1 h at 1e6)
    python bench/dp_sparse.py --quick         # 1e3, 1e4 with peers
    python bench/dp_sparse.py --smoke         # 1e3, no peer venv (the test suite runs this)
    python bench/dp_sparse.py --sizes 1e5 --no-venv-peers
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import _harness as H

H.fair_threads()

BENCH = "dp_sparse"
NUM_ACTIONS, NUM_SUCCESSORS, GAMMA = 4, 5, 0.99
#: pymdptoolbox's PolicyIteration stores S x S float64: 1e5 states need 74.5 GiB.
PEER_TIMEOUT_S = 1800.0


# --------------------------------------------------------------------------- shared
def _make_mdp(S: int, seed: int):
    """The random sparse MDP of size `S` (ELL: next_state/prob `[S, A, K]`)."""
    from bellmax.tabular.dp import random_mdp

    return random_mdp(seed, S, NUM_ACTIONS, NUM_SUCCESSORS, gamma=GAMMA)


def _make_uneven_mdp(S: int, seed: int):
    """The random MDP of size `S` as COO rows, with row (0, 0) reaching every state."""
    import numpy as np

    from bellmax.core.mdp import TabularMDP

    mdp = _make_mdp(S, seed)
    idx, val = mdp.P.to_coo()
    keep = (idx[:, 0] != 0) | (idx[:, 1] != 0)
    full = np.stack([np.zeros(S, np.int64), np.zeros(S, np.int64), np.arange(S)], axis=1)
    idx = np.concatenate([full, idx[keep]])
    val = np.concatenate([np.full(S, 1.0 / S), val[keep]])
    return TabularMDP.from_coo(idx, val, np.asarray(mdp.R), GAMMA)


def _csr(P, num_states: int, num_actions: int):
    """`[S*A, S]` CSR matrix (row `s*A + a`) of `SparseTransitions`, duplicates summed."""
    import scipy.sparse as sp

    idx, val = P.to_coo()
    rows = idx[:, 0].astype("int64") * num_actions + idx[:, 1]
    return sp.csr_matrix((val, (rows, idx[:, 2])), shape=(num_states * num_actions, num_states))


def copy_bandwidth(nbytes: int = 256 * 2**20, repeat: int = 5) -> float:
    """Bytes per second moved by a large numpy copy (read + write counted)."""
    import numpy as np

    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    t = H.time_it(lambda: np.copyto(dst, src), repeat=repeat, warmup=1)
    return 2 * src.nbytes / t.min


def backup_bytes(S: int) -> dict[str, int]:
    """Bytes one backup must move: streamed arrays, and with a cache line per gather."""
    slots = S * NUM_ACTIONS * NUM_SUCCESSORS
    streamed = slots * (4 + 8) + S * NUM_ACTIONS * 8 + 2 * S * 8
    return {"streamed": streamed, "with_gather_lines": streamed + slots * 64}


# --------------------------------------------------------------------------- scipy reference
class ScipyDP:
    """Plain scipy.sparse value and policy iteration (one CSR matvec per backup)."""

    def __init__(self, mdp):
        import numpy as np

        self.S, self.A = mdp.shape
        self.M = _csr(mdp.P, self.S, self.A)
        self.R = np.asarray(mdp.R, dtype=np.float64)
        self.gamma = float(mdp.gamma)

    def q(self, V):
        return self.R + self.gamma * (self.M @ V).reshape(self.S, self.A)

    def backup(self, V):
        return self.q(V).max(axis=1)

    def value_iteration(self, tol: float, max_iterations: int = 100_000):
        import numpy as np

        g = self.gamma
        V = np.zeros(self.S)
        for k in range(1, max_iterations + 1):
            V_new = self.backup(V)
            res = float(np.max(np.abs(V_new - V)))
            V = V_new
            if g / (1 - g) * res <= tol:
                break
        return V, k

    def policy_iteration(self, tol: float, max_iterations: int = 1000):
        import numpy as np
        import scipy.sparse as sp
        import scipy.sparse.linalg as spla

        g, S, A = self.gamma, self.S, self.A
        pi = np.argmax(self.R, axis=1)
        V = np.zeros(S)
        evals = 0
        for rounds in range(1, max_iterations + 1):
            rows = np.arange(S) * A + pi
            Ppi = self.M[rows]
            Api = sp.identity(S, format="csr") - g * Ppi
            b = self.R[np.arange(S), pi]
            # ||b - A v||_inf <= tol (1 - gamma) bounds the error by tol; the 2-norm test is stricter.
            V, info = spla.bicgstab(Api, b, x0=V, rtol=0.0, atol=tol * (1 - g), maxiter=10_000)
            evals += 1
            q = self.q(V)
            best = q.max(axis=1)
            keep = q[np.arange(S), pi] >= best - tol
            new = np.where(keep, pi, q.argmax(axis=1))
            if np.array_equal(new, pi):
                break
            pi = new
        return V, pi, rounds


# --------------------------------------------------------------------------- pymdptoolbox (peer venv)
def peer_mdptoolbox(npz: str, algo: str, tol: float, out: str) -> dict:
    """Runs in bench/.venv-peers: pymdptoolbox's VI or PI on the saved MDP."""
    import mdptoolbox.mdp as mdp
    import numpy as np
    import scipy.sparse as sp

    with np.load(npz) as f:
        ns, p, R = f["next_state"], f["prob"], f["R"]
    S, A, K = ns.shape
    rows = np.repeat(np.arange(S), K)
    P = [
        sp.csc_matrix((p[:, a].reshape(-1), (rows, ns[:, a].reshape(-1))), shape=(S, S))
        for a in range(A)
    ]
    res = {"version": H.package_version("pymdptoolbox"), "algo": algo, "num_states": S}
    t0 = time.perf_counter()
    try:
        if algo == "vi":
            solver = mdp.ValueIteration(P, R, GAMMA, epsilon=tol, max_iter=100_000)
        else:
            solver = mdp.PolicyIteration(P, R, GAMMA, max_iter=1000)
        t1 = time.perf_counter()
        solver.run()
    except MemoryError as e:
        res.update(status="MemoryError", error=str(e)[:200], seconds=time.perf_counter() - t0)
        return res
    t2 = time.perf_counter()
    np.save(out, np.asarray(solver.policy, dtype=np.int64))
    res.update(
        status="ok",
        seconds=t2 - t0,
        setup_seconds=t1 - t0,
        run_seconds=t2 - t1,
        iterations=int(solver.iter),
    )
    return res


def run_peer(S: int, mdp, algo: str, tol: float, workdir: Path) -> dict:
    import numpy as np

    npz = workdir / f"mdp_{S}.npz"
    if not npz.exists():
        np.savez(npz, next_state=mdp.P.next_state, prob=mdp.P.prob, R=np.asarray(mdp.R))
    out = workdir / f"policy_{algo}_{S}.npy"
    res = H.run_in_peer_venv(
        __file__,
        ["--peer", "mdptoolbox", "--npz", npz, "--algo", algo, "--tol", tol, "--out", out],
        group="mdptoolbox",
        modules=["mdptoolbox"],
        timeout=PEER_TIMEOUT_S,
    )
    if not H.is_skipped(res) and res.get("status") == "ok":
        res["policy"] = np.load(out)
    return res


def measure_uneven_backup(S: int, args, backup, V, repeat: int, common: dict) -> dict:
    """Time per backup when row (0, 0) reaches every state, ours vs scipy's CSR matvec."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bellmax.core.semiring import MDPArrays

    H.log(f"{BENCH}: S={S:.0e}: time per backup, uneven rows")
    uneven = _make_uneven_mdp(S, args.seed)
    ref = ScipyDP(uneven)
    Vn = np.asarray(V)
    with jax.enable_x64(True):
        arrays = MDPArrays.from_mdp(uneven, jnp.float64)
        ours = H.time_jax(backup, arrays, V, repeat=repeat)
        v_ours = np.asarray(backup(arrays, V))
    peer = H.time_it(lambda: ref.backup(Vn), repeat=repeat, warmup=1)
    assert np.allclose(v_ours, ref.backup(Vn), rtol=0, atol=1e-12), "uneven backups disagree"
    padded_slots = S * NUM_ACTIONS * S  # the old layout: every row padded to the longest (S)
    return H.result(
        BENCH,
        ours.run.min * 1e3,
        peer.min * 1e3,
        "ms",
        case=f"one max-plus backup, uneven rows (one row reaches all states), S={S:.0e}",
        peer_name="scipy.sparse CSR matvec",
        metric="backup_uneven",
        nonzeros=int(ref.M.nnz),
        ell_width=int(uneven.P.shape[2]),
        overflow_entries=uneven.P.num_overflow,
        stored_entries=uneven.P.nnz,
        padded_layout_bytes=padded_slots * (4 + 8),
        **common,
        **ours.to_dict("ours_"),
        **peer.to_dict("peer_run_"),
    )


# --------------------------------------------------------------------------- one size
def measure_size(S: int, args, workdir: Path, bandwidth: float) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bellmax.core.semiring import MAX_PLUS, MDPArrays, bellman_backup
    from bellmax.tabular import dp

    H.log(f"{BENCH}: S={S:.0e}: building the MDP")
    t0 = time.perf_counter()
    mdp = _make_mdp(S, args.seed)
    build_s = time.perf_counter() - t0
    ref = ScipyDP(mdp)
    repeat = args.repeat or (3 if S >= 10**6 else 10)

    # -- one backup
    H.log(f"{BENCH}: S={S:.0e}: time per backup")
    with jax.enable_x64(True):
        arrays = MDPArrays.from_mdp(mdp, jnp.float64)
        V = jnp.asarray(np.random.default_rng(1).standard_normal(S))
        backup = jax.jit(lambda m, v: bellman_backup(m, v, MAX_PLUS).values)
        ours_b = H.time_jax(backup, arrays, V, repeat=repeat)
        v_ours = np.asarray(backup(arrays, V))
    Vn = np.asarray(V)
    scipy_b = H.time_it(lambda: ref.backup(Vn), repeat=repeat, warmup=1)
    assert np.allclose(v_ours, ref.backup(Vn), rtol=0, atol=1e-12), "backups disagree"
    nbytes = backup_bytes(S)
    bound = {k: v / bandwidth for k, v in nbytes.items()}
    common = {
        "num_states": S,
        "num_actions": NUM_ACTIONS,
        "num_successors": NUM_SUCCESSORS,
        "gamma": GAMMA,
        "tol": args.tol,
        "quick": bool(args.quick or args.smoke),
        "build_s": build_s,
    }
    records = [
        H.result(
            BENCH,
            ours_b.run.min * 1e3,
            scipy_b.min * 1e3,
            "ms",
            case=f"one max-plus backup, S={S:.0e}",
            peer_name="scipy.sparse CSR matvec",
            metric="backup",
            bytes_streamed=nbytes["streamed"],
            bytes_with_gather_lines=nbytes["with_gather_lines"],
            copy_bandwidth_gb_s=bandwidth / 1e9,
            bound_streamed_ms=bound["streamed"] * 1e3,
            bound_with_gather_lines_ms=bound["with_gather_lines"] * 1e3,
            ours_over_bound_streamed=ours_b.run.min / bound["streamed"],
            ours_over_bound_with_gather_lines=ours_b.run.min / bound["with_gather_lines"],
            peer_over_bound_streamed=scipy_b.min / bound["streamed"],
            **common,
            **ours_b.to_dict("ours_"),
            **scipy_b.to_dict("peer_run_"),
        )
    ]

    # -- one backup with uneven rows: row (0, 0) reaches every state
    records.append(measure_uneven_backup(S, args, backup, V, repeat, common))

    # -- value iteration to tol
    H.log(f"{BENCH}: S={S:.0e}: value iteration to tol {args.tol:g}")
    t0 = time.perf_counter()
    dp.value_iteration(mdp, tol=args.tol, max_iterations=1)  # compile (and one backup)
    vi_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    vi = dp.value_iteration(mdp, tol=args.tol)
    jax.block_until_ready(vi.values)
    vi_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    V_ref, k_ref = ref.value_iteration(args.tol)
    vi_ref_s = time.perf_counter() - t0
    v_ours = np.asarray(vi.values)

    # -- policy iteration (exact evaluations), also the reference optimum
    H.log(f"{BENCH}: S={S:.0e}: policy iteration")
    start = np.argmax(np.asarray(mdp.R), axis=1)  # both start greedy on the reward
    t0 = time.perf_counter()
    pi = dp.policy_iteration(mdp, tol=1e-8, max_iterations=1, policy0=start)  # compile
    pi_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    pi = dp.policy_iteration(mdp, tol=1e-8, policy0=start)
    jax.block_until_ready(pi.values)
    pi_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    V_pi_ref, pol_pi_ref, rounds_ref = ref.policy_iteration(1e-8)
    pi_ref_s = time.perf_counter() - t0
    v_star = np.asarray(pi.values)
    pol_star = np.asarray(pi.policy)

    peers = {}
    if S <= args.peer_max_states and not (args.smoke or args.no_venv_peers):
        for algo in ("vi", "pi"):
            H.log(f"{BENCH}: S={S:.0e}: pymdptoolbox {algo} (peer venv)")
            peers[algo] = run_peer(S, mdp, algo, args.tol, workdir)
    else:
        why = (
            "peer-venv peers skipped (--smoke / --no-venv-peers)"
            if (args.smoke or args.no_venv_peers)
            else f"not attempted above {args.peer_max_states:.0e} states (it densifies; "
            "MemoryError at 1e5)"
        )
        peers = {"vi": H.skipped(why), "pi": H.skipped(why)}

    def peer_fields(algo: str) -> dict:
        r = peers[algo]
        if H.is_skipped(r):
            return {"mdptoolbox_status": "skipped", "mdptoolbox_reason": r["reason"]}
        out = {f"mdptoolbox_{k}": v for k, v in r.items() if k != "policy"}
        if "policy" in r:
            out["mdptoolbox_policy_agreement"] = float(np.mean(r["policy"] == pol_star))
        return out

    records.append(
        H.result(
            BENCH,
            vi_s,
            vi_ref_s,
            "s",
            case=f"value iteration to error bound {args.tol:g}, S={S:.0e}",
            peer_name="scipy.sparse value iteration",
            metric="value_iteration",
            ours_iterations=int(vi.iterations),
            peer_iterations=k_ref,
            ours_compile_s=vi_compile,
            ours_error_bound=float(vi.error_bound),
            ours_max_error_vs_pi=float(np.max(np.abs(v_ours - v_star))),
            peer_max_error_vs_pi=float(np.max(np.abs(V_ref - v_star))),
            ours_seconds_per_backup=vi_s / max(int(vi.iterations), 1),
            peer_seconds_per_backup=vi_ref_s / max(k_ref, 1),
            policy_agreement_with_pi=float(np.mean(np.asarray(vi.policy) == pol_star)),
            **common,
            **peer_fields("vi"),
        )
    )
    records.append(
        H.result(
            BENCH,
            pi_s,
            pi_ref_s,
            "s",
            case=f"policy iteration (evaluations to 1e-8), S={S:.0e}",
            peer_name="scipy.sparse policy iteration (bicgstab)",
            metric="policy_iteration",
            ours_rounds=int(pi.iterations),
            peer_rounds=rounds_ref,
            ours_warmup_s=pi_warm,
            ours_status=pi.status_name,
            ours_error_bound=float(pi.error_bound),
            max_value_difference=float(np.max(np.abs(V_pi_ref - v_star))),
            policy_agreement=float(np.mean(pol_pi_ref == pol_star)),
            **common,
            **peer_fields("pi"),
        )
    )
    return records


def _size(text: str) -> int:
    value = float(text)
    if not math.isfinite(value) or value < 2 or value != int(value):
        raise argparse.ArgumentTypeError(f"a size must be an integer >= 2, got {text!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    p = H.arg_parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=_size, nargs="+", default=None, help="numbers of states")
    p.add_argument("--tol", type=float, default=1e-4, help="value-iteration error bound")
    p.add_argument("--repeat", type=int, default=None, help="timed backups per implementation")
    p.add_argument(
        "--peer-max-states", type=_size, default=100_000, help="largest size given to pymdptoolbox"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer", choices=["mdptoolbox"], default=None, help=argparse.SUPPRESS)
    p.add_argument("--npz", default=None, help=argparse.SUPPRESS)
    p.add_argument("--algo", choices=["vi", "pi"], default="vi", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not (math.isfinite(args.tol) and args.tol > 0):
        p.error(f"--tol must be a number > 0, got {args.tol}")

    if args.peer == "mdptoolbox":  # peer side, inside bench/.venv-peers
        H.print_json(peer_mdptoolbox(args.npz, args.algo, args.tol, args.out))
        return 0

    if args.sizes:
        sizes = args.sizes
    elif args.smoke:
        sizes = [1000]
    elif args.quick:
        sizes = [1000, 10_000]
    else:
        sizes = [1000, 10_000, 100_000, 1_000_000]
    bandwidth = copy_bandwidth()
    H.log(f"{BENCH}: numpy copy bandwidth {bandwidth / 1e9:.1f} GB/s")
    with tempfile.TemporaryDirectory(prefix="bellmax-dp-") as tmp:
        for S in sizes:
            for rec in measure_size(S, args, Path(tmp), bandwidth):
                H.emit(rec, args.results_dir)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    raise SystemExit(main())
