"""Tests for the stage-structured interior-point NLP solver (bellmax.control.nlp)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from bellmax.control import nlp

K, NZ = 6, 2


def _objective(Z, p):
    # Couples neighbouring stages only; nonlinear (quartic) and convex.
    a = p
    return jnp.sum((Z - a) ** 2) + 0.5 * jnp.sum(Z[:-1, 0] * Z[1:, 1]) + 0.1 * jnp.sum(Z**4)


def _constraints(Z, p):
    # c_k(z_k, z_{k+1}) = z_{k+1,0} - z_{k,0} - 0.5 sin(z_{k,1}); last row padded.
    d = Z[1:, 0] - Z[:-1, 0] - 0.5 * jnp.sin(Z[:-1, 1])
    return jnp.concatenate([d, jnp.zeros(1)])[:, None]


@pytest.fixture(scope="module")
def target():
    return np.random.default_rng(0).normal(size=(K, NZ))


@pytest.fixture(scope="module")
def solved(target):
    lower = np.full((K, NZ), -np.inf)
    upper = np.full((K, NZ), np.inf)
    lower[:, 1], upper[:, 1] = -0.3, 0.3  # some of these bind
    lower[0, 0] = upper[0, 0] = 0.5  # a fixed variable
    mask = np.ones((K, 1), bool)
    mask[-1] = False
    res = nlp.solve_staged_nlp(
        _objective,
        _constraints,
        np.zeros((K, NZ)),
        lower=lower,
        upper=upper,
        params=jnp.asarray(target),
        constraint_mask=mask,
    )
    return res, lower, upper


def test_solution_matches_scipy_slsqp(solved, target):
    res, lower, upper = solved
    assert res.status_name == "converged", res.status_name
    free = ~(lower == upper)

    def unpack(v):
        Z = np.array(lower)
        Z[free] = v
        return Z

    with jax.enable_x64(True):
        f = lambda v: float(_objective(jnp.asarray(unpack(v)), jnp.asarray(target)))  # noqa: E731
        c = lambda v: np.asarray(_constraints(jnp.asarray(unpack(v)), None))[:-1, 0]  # noqa: E731
        ref = scipy.optimize.minimize(
            f,
            np.zeros(free.sum()),
            method="SLSQP",
            bounds=list(zip(lower[free], upper[free], strict=True)),
            constraints=[{"type": "eq", "fun": c}],
            options={"ftol": 1e-14, "maxiter": 500},
        )
    assert ref.success
    np.testing.assert_allclose(np.asarray(res.z), unpack(ref.x), atol=1e-5)
    assert abs(float(res.objective) - ref.fun) < 1e-6
    assert float(res.constraint_violation) < 1e-8
    # Bound multipliers: positive only where their bound is active.
    z = np.asarray(res.z)[:, 1]
    for mult, bound in (
        (np.asarray(res.z_lower)[:, 1], -0.3),
        (np.asarray(res.z_upper)[:, 1], 0.3),
    ):
        active = np.isclose(z, bound, atol=1e-6)
        assert np.all(mult[~active] < 1e-6) and np.all(mult[active] > 1e-6)
    assert np.isclose(np.abs(z), 0.3, atol=1e-6).any()


def test_kkt_residuals_are_small(solved):
    res, *_ = solved
    assert float(res.dual_infeasibility) < 1e-6
    assert float(res.complementarity) < 1e-7
    assert float(res.kkt_error) <= 1e-8
    assert 1 <= int(res.iterations) < 50


def test_compressed_derivatives_match_dense():
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        Z = jnp.asarray(rng.normal(size=(5, 3)))
        y = jnp.asarray(rng.normal(size=(5, 2)))

        def cfun(Z):
            d = jnp.stack([Z[1:, 0] * Z[:-1, 1], jnp.sin(Z[1:, 2] + Z[:-1, 0])], axis=1)
            return jnp.concatenate([d, jnp.zeros((1, 2))])

        def lag(Z):
            return jnp.sum(jnp.cos(Z[:-1] * Z[1:])) + jnp.sum(y * cfun(Z))

        _, Jd, Jo = jax.jit(lambda Z: nlp._jacobian_blocks(cfun, Z))(Z)
        Jdense = jax.jit(jax.jacobian(cfun))(Z)  # [K, nc, K, nz]
        Hd, Ho = jax.jit(lambda Z: nlp._hessian_blocks(lag, Z))(Z)
        Hdense = jax.jit(jax.hessian(lag))(Z)  # [K, nz, K, nz]
    for k in range(5):
        np.testing.assert_allclose(Jd[k], Jdense[k, :, k, :], atol=1e-12)
        np.testing.assert_allclose(Hd[k], Hdense[k, :, k, :], atol=1e-12)
        if k < 4:
            np.testing.assert_allclose(Jo[k], Jdense[k, :, k + 1, :], atol=1e-12)
            np.testing.assert_allclose(Ho[k], Hdense[k, :, k + 1, :], atol=1e-12)


def _dense(D, E):
    """The symmetric block-tridiagonal matrix with diagonal blocks `D[k]`, upper `E[k]`."""
    Kb, m = D.shape[0], D.shape[1]
    A = np.zeros((Kb * m, Kb * m))
    for k in range(Kb):
        A[k * m : (k + 1) * m, k * m : (k + 1) * m] = D[k]
        if k < Kb - 1:
            A[k * m : (k + 1) * m, (k + 1) * m : (k + 2) * m] = E[k]
            A[(k + 1) * m : (k + 2) * m, k * m : (k + 1) * m] = E[k].T
    return A


def test_block_tridiagonal_solve_matches_dense():
    rng = np.random.default_rng(2)
    Kb, m = 7, 4
    with jax.enable_x64(True):
        D = rng.normal(size=(Kb, m, m))
        D = D + np.swapaxes(D, 1, 2) + 8 * np.eye(m)
        E = rng.normal(size=(Kb, m, m))
        E[-1] = 0.0
        b = rng.normal(size=(Kb, m))
        solve = jax.jit(nlp._block_tridiag_solve)
        w, neg = solve(jnp.asarray(D), jnp.asarray(E), jnp.asarray(b))
        w = np.asarray(w)
    A = _dense(D, E)
    np.testing.assert_allclose(w.ravel(), np.linalg.solve(A, b.ravel()), atol=1e-10)
    assert int(neg) == 0  # positive definite


def test_block_factorisation_counts_negative_eigenvalues():
    # Inertia by Sylvester's law from the pivot blocks, as the inertia correction uses it.
    rng = np.random.default_rng(3)
    Kb, m = 6, 3
    D = rng.normal(size=(Kb, m, m))
    D = D + np.swapaxes(D, 1, 2)
    E = rng.normal(size=(Kb, m, m))
    E[-1] = 0.0
    A = _dense(D, E)
    with jax.enable_x64(True):
        _, S = jax.jit(nlp._block_tridiag_factor)(jnp.asarray(D), jnp.asarray(E))
        neg = nlp._count_nonpositive(S)
    assert int(neg) == int(np.sum(np.linalg.eigvalsh(A) < 0))


def test_gauss_jordan_inverse_pivots_and_matches_lapack():
    # Blocks whose leading entries are zero or tiny need the row exchanges; a singular one
    # gives non-finite entries, as LAPACK's inverse does.
    rng = np.random.default_rng(11)
    S = rng.normal(size=(5, 10, 10))
    S[1, 0, 0] = 0.0
    S[2, :, 0] = [1e-12] + [1.0] * 9
    S[3] = np.triu(np.ones((10, 10)))[::-1]  # anti-triangular: no pivot on the diagonal
    with jax.enable_x64(True):
        inv = jax.jit(jax.vmap(nlp._gauss_jordan_inverse))(jnp.asarray(S))
        singular = nlp._gauss_jordan_inverse(jnp.ones((4, 4)))
    np.testing.assert_allclose(np.asarray(inv) @ S, np.broadcast_to(np.eye(10), S.shape), atol=1e-9)
    np.testing.assert_allclose(np.asarray(inv), np.linalg.inv(S), rtol=1e-9, atol=1e-9)
    assert not np.all(np.isfinite(np.asarray(singular)))


def test_stage_loop_is_one_kernel_and_both_inverses_factor_alike(monkeypatch):
    # Under the suite's XLA flags (bellmax.core.xla.tune_xla_flags) the factorisation's stage
    # loop holds no LAPACK call and XLA:CPU compiles it into one kernel (a jaxlib that stops
    # doing so fails here rather than silently losing the speed); with XLA's default
    # threshold it inverts by LAPACK. Both give the same factors.
    from bellmax.core import xla

    rng = np.random.default_rng(5)
    D = rng.normal(size=(101, 10, 10))
    D = D + np.swapaxes(D, 1, 2) + 10 * np.eye(10)
    E = rng.normal(size=(101, 10, 10))
    E[-1] = 0.0
    factors = {}
    with jax.enable_x64(True):
        args = (jnp.asarray(D), jnp.asarray(E))
        if xla.small_loop_bytes() >= xla.SMALL_LOOP_BYTES:  # not under BELLMAX_XLA_DEFAULTS=1
            compiled = jax.jit(nlp._block_tridiag_factor).lower(*args).compile()
            assert "xla_cpu_small_call" in compiled.as_text()
        for threshold in (xla.SMALL_LOOP_BYTES, xla.XLA_DEFAULT_SMALL_LOOP_BYTES):
            monkeypatch.setattr(nlp, "small_loop_bytes", lambda t=threshold: t)
            expected = nlp._gauss_jordan_inverse if threshold > 1024 else jnp.linalg.inv
            assert nlp._pivot_inverse() is expected
            factors[threshold] = jax.jit(nlp._block_tridiag_factor)(*args)
    fused, lapack = factors.values()
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(lapack), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-9, atol=1e-12)


def _eigen_count(S):
    ev = np.linalg.eigvalsh(S)
    return int(np.sum(ev <= 1e-14 * np.maximum(1.0, np.abs(ev).max(-1, keepdims=True))))


def _saddle_blocks(rng, K, nz, nc, zero_curvature):
    """KKT-like pivot blocks [[H, J'], [J, -delta]], H with zero diagonal entries when
    `zero_curvature` (states without cost: the order H-then-J would divide by zero)."""
    H = rng.normal(size=(K, nz, nz))
    H = H @ np.swapaxes(H, 1, 2) / nz
    if zero_curvature:
        H[:, :2, :] = 0.0
        H[:, :, :2] = 0.0
    J = rng.normal(size=(K, nc, nz))
    top = np.concatenate([H, np.swapaxes(J, 1, 2)], axis=2)
    bot = np.concatenate([J, -1e-9 * np.broadcast_to(np.eye(nc), (K, nc, nc))], axis=2)
    return np.concatenate([top, bot], axis=1)


@pytest.mark.parametrize("kind", ["random", "saddle", "saddle_zero_curvature", "scaled"])
def test_inertia_count_by_pivots_equals_the_eigenvalue_count(kind):
    # The factorisation counts nonpositive eigenvalues by an LDL' with diagonal pivoting
    # (one batched elimination) instead of an eigenvalue call per block (70% of a 100-stage
    # collocation solve); the count must equal the eigenvalue rule's, zero band included.
    rng = np.random.default_rng(7)
    if kind == "random":
        S = rng.normal(size=(40, 6, 6))
        S = S + np.swapaxes(S, 1, 2)
    elif kind == "scaled":  # barrier terms of 1e9 beside O(1) and 1e-9 entries
        S = _saddle_blocks(rng, 40, 5, 4, True)
        S[:, 2, 2] += 1e9
        S[:, 0, 0] += 1e8
    else:
        S = _saddle_blocks(rng, 40, 5, 4, kind == "saddle_zero_curvature")
    with jax.enable_x64(True):
        count = jax.jit(nlp._count_nonpositive)(jnp.asarray(S))
        pivots, trusted = jax.jit(nlp._pivot_inertia)(jnp.asarray(S))
    assert int(count) == _eigen_count(S)
    # the pivots themselves are trusted here and count the same (not only the fallback)
    assert bool(trusted) and int(pivots) == int(count)


@pytest.mark.parametrize(
    "kind",
    ["right", "indefinite", "zero_curvature", "scaled", "rows_off", "singular", "no_delta_c"],
)
def test_saddle_inertia_test_agrees_with_the_eigenvalue_count(kind):
    # The interior-point step asks only "exactly K nc negative eigenvalues, none zero?". For
    # KKT pivot blocks [[A, B'], [B, -diag(c)]] that holds iff every A + B' diag(1/c) B is
    # positive definite, decided by a pivot-free LDL' of those nz x nz blocks; pivots too
    # close to zero to trust (or c = 0) hand over to the full count. Each case here must
    # agree with the eigenvalue rule on the 9 x 9 blocks.
    rng = np.random.default_rng(11)
    K, nz, nc = 30, 5, 4
    S = _saddle_blocks(rng, K, nz, nc, kind == "zero_curvature")
    c = np.full((K, nc), 1e-9)
    if kind == "indefinite":  # negative curvature on a few blocks' null spaces
        S[3, :nz, :nz] -= 50.0 * np.eye(nz)
        S[17, :nz, :nz] -= 50.0 * np.eye(nz)
    elif kind == "scaled":
        S[:, 2, 2] += 1e9
        S[:, 0, 0] += 1e8
    elif kind == "rows_off":  # switched-off constraint rows: J row 0, diagonal -1
        S[:, nz, :nz] = S[:, :nz, nz] = 0.0
        S[:, nz, nz] = -1.0
        c[:, 0] = 1.0
    elif kind == "singular":  # no curvature and a rank-deficient J: a zero eigenvalue
        S[5, :nz, :nz] = 0.0
        S[5, nz:, :nz] = S[5, :nz, nz:] = 0.0
        S[5, nz:, 1] = S[5, 1, nz:] = 1.0
    elif kind == "no_delta_c":  # delta_c = 0 cannot be eliminated first: the count decides
        S[:, nz:, nz:] = 0.0
        c[:] = 0.0
    expected = _eigen_count(S) == K * nc
    with jax.enable_x64(True):
        right = jax.jit(nlp._saddle_inertia_is_right, static_argnums=1)(
            jnp.asarray(S), nz, jnp.asarray(c)
        )
    assert bool(right) == expected
    assert expected == (kind not in ("indefinite", "singular"))


def test_inertia_count_falls_back_to_eigenvalues_when_a_pivot_is_unsafe():
    # [[0, 1], [1, 0]] (a pure saddle) has no usable 1x1 pivot: the count must still be 1
    # per block, from the eigenvalues; also with a numerically zero block.
    S = np.stack([np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[1e-20, 1.0], [1.0, 0.0]])])
    with jax.enable_x64(True):
        count = jax.jit(nlp._count_nonpositive)(jnp.asarray(S))
        zero = jax.jit(nlp._count_nonpositive)(jnp.zeros((3, 2, 2)))
    assert int(count) == _eigen_count(S) == 2
    assert int(zero) == 6


def test_iteration_limit_is_reported(target):
    res = nlp.solve_staged_nlp(
        _objective,
        _constraints,
        np.zeros((K, NZ)),
        lower=-0.3,
        upper=0.3,
        params=jnp.asarray(target),
        options=nlp.NLPOptions(max_iterations=2),
    )
    assert res.status_name == "max_iterations" and int(res.iterations) == 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lower": 1.0, "upper": 0.0}, "lower > upper"),
        ({"lower": np.zeros((3, 3))}, "does not broadcast"),
        ({"z0": np.zeros(4)}, r"\[K, nz\]"),
        ({"z0": np.full((K, NZ), np.nan)}, "non-finite"),
        ({"constraint_mask": np.ones((2, 2), bool)}, "constraint_mask"),
        ({"lower": np.nan}, "NaN"),
    ],
)
def test_bad_input_raises(kwargs, match, target):
    z0 = kwargs.pop("z0", np.zeros((K, NZ)))
    with pytest.raises(ValueError, match=match):
        nlp.solve_staged_nlp(_objective, _constraints, z0, params=jnp.asarray(target), **kwargs)


def test_bad_functions_raise(target):
    with pytest.raises(TypeError, match="callable"):
        nlp.solve_staged_nlp("f", _constraints, np.zeros((K, NZ)))
    with pytest.raises(ValueError, match="non-finite"):
        nlp.solve_staged_nlp(
            lambda Z, p: jnp.log(-1.0 + 0 * jnp.sum(Z)), _constraints, np.zeros((K, NZ))
        )
    with pytest.raises(ValueError, match=r"\[K, nc\]"):
        nlp.solve_staged_nlp(_objective, lambda Z, p: jnp.sum(Z), np.zeros((K, NZ)), params=0.0)
    with pytest.raises(TypeError, match="NLPOptions"):
        nlp.solve_staged_nlp(_objective, _constraints, np.zeros((K, NZ)), options={"tol": 1})


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        ({"tol": 0.0}, ValueError, "NLPOptions.tol"),
        ({"max_iterations": 0}, ValueError, "NLPOptions.max_iterations"),
        ({"max_iterations": 5.0}, TypeError, "NLPOptions.max_iterations must be an int"),
        ({"mu_init": "0.1"}, TypeError, "NLPOptions.mu_init"),
        ({"delta_c": -1.0}, ValueError, "NLPOptions.delta_c"),
    ],
)
def test_bad_options_raise(kwargs, err, match):
    with pytest.raises(err, match=match):
        nlp.NLPOptions(**kwargs)
