"""Tests for bellmax.control.lqr against scipy's DARE solver and brute-force rollouts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

from bellmax.control.lqr import dlqr, finite_horizon_lqr, lqr_rollout


def _random_system(seed: int, n: int = 4, m: int = 2):
    """A random (generically stabilisable) system with PD costs and a small cross term."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) / np.sqrt(n) * 1.2
    B = rng.normal(size=(n, m))
    L = rng.normal(size=(n, n))
    Q = L @ L.T / n + 0.1 * np.eye(n)
    R = np.eye(m) * rng.uniform(0.5, 2.0)
    M = 0.05 * rng.normal(size=(n, m))
    return A, B, Q, R, M


def _scipy_gain(A, B, Q, R, M):
    P = sla.solve_discrete_are(A, B, Q, R, s=M)
    return -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A + M.T), P


_dlqr = jax.jit(dlqr, static_argnames=("method", "tol", "max_iterations"))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["doubling", "riccati"])
def test_dlqr_matches_scipy(seed, method):
    A, B, Q, R, M = _random_system(seed)
    K_ref, P_ref = _scipy_gain(A, B, Q, R, M)
    with jax.enable_x64(True):
        sol = _dlqr(A, B, Q, R, M=M, method=method)
        K, P = np.asarray(sol.K), np.asarray(sol.P)
    assert sol.status_name == "converged"
    np.testing.assert_allclose(K, K_ref, atol=1e-8, rtol=0)
    np.testing.assert_allclose(P, P_ref, atol=1e-8 * max(1, np.abs(P_ref).max()), rtol=0)
    assert float(sol.residual) < 1e-10
    # the closed loop is stable
    assert np.abs(np.linalg.eigvals(A + B @ K)).max() < 1


def test_finite_horizon_converges_to_the_dare_gain():
    A, B, Q, R, M = _random_system(3)
    K_ref, _ = _scipy_gain(A, B, Q, R, M)
    with jax.enable_x64(True):
        sol = finite_horizon_lqr(A, B, Q, R, Q, M=M, horizon=100)
        err = [np.abs(np.asarray(sol.K[t]) - K_ref).max() for t in (0, 50, 90, 99)]
    assert err[0] < 1e-8 and err[1] < 1e-8
    assert err[3] > 1e-4  # near the end the horizon still matters
    assert sol.K.shape == (100, 2, 4) and sol.V.shape == (101, 4, 4)
    assert sol.Q_uu.shape == (100, 2, 2) and sol.Q_ux.shape == (100, 2, 4)


def test_time_varying_affine_lqr_is_optimal():
    """The value equals the rollout cost, and perturbing the controls never helps."""
    rng = np.random.default_rng(4)
    T, n, m = 6, 3, 2
    A = rng.normal(size=(T, n, n)) * 0.5
    B = rng.normal(size=(T, n, m))
    Q = np.stack([np.eye(n) * (1 + t) for t in range(T)])
    R = np.stack([np.eye(m)] * T)
    M = 0.1 * rng.normal(size=(T, n, m))
    c, q, r = rng.normal(size=(T, n)), rng.normal(size=(T, n)), rng.normal(size=(T, m))
    Qf, qf = 2 * np.eye(n), rng.normal(size=n)
    x0 = rng.normal(size=n)

    def cost(X, U):
        J = sum(
            0.5 * X[t] @ Q[t] @ X[t]
            + 0.5 * U[t] @ R[t] @ U[t]
            + X[t] @ M[t] @ U[t]
            + q[t] @ X[t]
            + r[t] @ U[t]
            for t in range(T)
        )
        return J + 0.5 * X[T] @ Qf @ X[T] + qf @ X[T]

    def roll(U):
        X = [x0]
        for t in range(T):
            X.append(A[t] @ X[t] + B[t] @ U[t] + c[t])
        return np.array(X)

    with jax.enable_x64(True):
        sol = finite_horizon_lqr(A, B, Q, R, Qf, M=M, c=c, q=q, r=r, q_final=qf)
        X, U = lqr_rollout(sol, A, B, x0, c)
        X, U, value = np.asarray(X), np.asarray(U), float(sol.value(jnp.asarray(x0)))
    np.testing.assert_allclose(X, roll(U), atol=1e-10)
    assert cost(X, U) == pytest.approx(value, rel=1e-10)
    for _ in range(5):
        dU = 1e-3 * rng.normal(size=U.shape)
        assert cost(roll(U + dU), U + dU) > value


def test_vmapped_over_problems_equals_one_at_a_time():
    systems = [_random_system(s, n=3, m=1) for s in range(4)]
    A, B, Q, R, M = (np.stack(a) for a in zip(*systems, strict=True))

    def one(A, B, Q, R):
        return finite_horizon_lqr(A, B, Q, R, Q, horizon=20)

    batch = jax.jit(jax.vmap(one))(A, B, Q, R)
    single = jax.jit(one)
    for i in (0, 3):
        np.testing.assert_allclose(
            batch.K[i], single(A[i], B[i], Q[i], R[i]).K, rtol=2e-4, atol=1e-5
        )


def test_unstabilisable_system_reports_its_status():
    # an unstable mode the control cannot reach: no stabilising solution; traced, dlqr
    # cannot refuse it and says so in its status
    A = np.diag([2.0, 0.5])
    B = np.array([[0.0], [1.0]])
    solve = jax.jit(lambda A, B: dlqr(A, B, np.eye(2), np.eye(1), method="riccati"))
    sol = solve(A, B)
    assert sol.status_name in ("max_iterations", "diverged")


@pytest.mark.parametrize(
    ("A", "B", "mode"),
    [
        (np.diag([2.0, 1.0]), [[0.0], [1.0]], r"eigenvalue 2\.0 .* \[1\., 0\.\] @ x"),
        (np.eye(2), [[1.0], [0.0]], r"eigenvalue 1\.0 .* \[0\., 1\.\] @ x"),
        ([[1.0, 1.0], [-1.0, 1.0]], np.zeros((2, 1)), r"eigenvalue \(1[+-]1j\)"),
    ],
)
def test_unstabilisable_system_is_refused_naming_the_mode(A, B, mode):
    with pytest.raises(ValueError, match=r"\(A, B\) is not stabilisable: A's mode with " + mode):
        dlqr(np.asarray(A), np.asarray(B), np.eye(2), np.eye(1))
    # a stable mode out of reach is fine
    sol = dlqr(np.diag([0.5, 2.0]), np.array([[0.0], [1.0]]), np.eye(2), np.eye(1))
    assert sol.status_name == "converged" and np.isfinite(np.asarray(sol.K)).all()
    # so is an unreachable marginal mode that Q does not weigh (a constant carried in the
    # state): the DARE is solvable and its gain ignores that state
    sol = dlqr(np.eye(2), np.array([[1.0], [0.0]]), np.diag([1.0, 0.0]), np.eye(1))
    assert sol.status_name == "converged"
    np.testing.assert_allclose(np.asarray(sol.K), [[-(np.sqrt(5) - 1) / 2, 0.0]], atol=1e-5)


_FH = {"A": np.eye(2), "B": np.ones((2, 1)), "Q": np.eye(2), "R": np.eye(1), "Q_final": np.eye(2)}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"horizon": None}, "horizon"),
        ({"A": np.ones((2, 3))}, "A must be"),
        ({"B": np.ones((3, 1))}, "B must be"),
        ({"Q": np.eye(3)}, "Q has shape"),
        ({"Q_final": np.eye(3)}, "Q_final"),
        ({"horizon": 0}, "horizon"),
        ({"Q": np.full((2, 2), np.nan)}, "Q must be finite"),
        ({"R": np.array([[np.inf]])}, "R must be finite"),
    ],
)
def test_finite_horizon_bad_input(change, match):
    args = {**_FH, "horizon": 3, **change}
    with pytest.raises(ValueError, match=match):
        finite_horizon_lqr(**args)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: dlqr(np.eye(2), np.ones((2, 1)), np.eye(2), np.eye(1), method="schur"), "method"),
        (lambda: dlqr(np.eye(2), np.ones((3, 1)), np.eye(2), np.eye(1)), "B must be"),
        (lambda: dlqr(np.eye(2), np.ones((2, 1)), np.eye(2), np.eye(2)), "R"),
        (lambda: dlqr(np.eye(2), np.ones((2, 1)), np.eye(2), 1.0), r"R = w \* np.eye\(1\)"),
        (lambda: dlqr(np.eye(2), np.ones((2, 1)), -np.eye(2), np.eye(1)), "semi-definite"),
        (
            lambda: dlqr(np.eye(2), np.ones((2, 1)), np.array([[1.0, 5.0], [0.0, 1.0]]), np.eye(1)),
            "Q must be symmetric",
        ),
        (
            lambda: dlqr(np.eye(2), np.ones((2, 1)), np.eye(2), np.zeros((1, 1))),
            "R must be positive definite",
        ),
        (lambda: dlqr(np.eye(2), np.ones((2, 1)), np.eye(2), np.eye(1), tol=-1.0), "tol"),
        (
            lambda: lqr_rollout(
                finite_horizon_lqr(
                    np.eye(2), np.ones((2, 1)), np.eye(2), np.eye(1), np.eye(2), horizon=3
                ),
                np.eye(2),
                np.ones((2, 1)),
                np.zeros(3),
            ),
            r"x0 must be a state vector \[2\]",
        ),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
