"""Local models: time-varying linear-Gaussian dynamics and quadratic costs, fitted per step.

Guided policy search with unknown dynamics (Levine & Abbeel 2014, "Learning Neural Network
Policies with Guided Policy Search under Unknown Dynamics", section 3.1 and appendix A) fits,
at every time step `t`, a linear-Gaussian model

    x_{t+1} ~ N(F_t [x_t; u_t] + f_t, S_t)

to the handful of rollouts `(x_t^i, u_t^i, x_{t+1}^i)` of the current controller. With fewer
samples than dimensions the regression is underdetermined, so it is a maximum a posteriori
fit of the joint Gaussian of `z = (x_t, u_t, x_{t+1})` under a normal-inverse-Wishart prior
`(mu0, Phi, m, n0)`:

    Sigma = (N Sigma_emp + Phi + N m / (N + m) (mu - mu0)(mu - mu0)') / (N + n0),

then conditioned on `(x, u)`: `F = Sigma_{x'z} Sigma_zz^{-1}`, `f = mu_x' - F mu_z`,
`S = Sigma_{x'x'} - F Sigma_zz F'`. The prior comes from a Gaussian mixture fitted by EM to
all the transitions seen so far (`fit_gmm`, `gmm_prior`): the mixture's clusters that explain
step `t`'s points give its mean and spread. A mixture with one cluster is a global linear
model.

Costs are quadratic in `z = [x; u]`, `0.5 z'C_t z + c_t'z + c0_t`, in absolute coordinates:
`expand_cost` takes them from a differentiable cost by JAX derivatives at each sample,
averaged (the expansion of GPS's reference code), and `fit_quadratic_cost` fits them to
sampled costs of a black-box environment by ridge regression on the samples of nearby steps,
shrunk towards one global quadratic fit and projected onto positive semi-definite matrices.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
from flax import struct

from bellmax.core.checks import check_int, check_number
from bellmax.core.display import summary_repr

__all__ = [
    "GMM",
    "LocalCost",
    "LocalDynamics",
    "NIWPrior",
    "expand_cost",
    "fit_gmm",
    "fit_local_dynamics",
    "fit_quadratic_cost",
    "gmm_prior",
    "joint_points",
    "psd_project",
]


@struct.dataclass
class LocalDynamics:
    """Time-varying linear-Gaussian dynamics `x_{t+1} ~ N(F_t [x_t; u_t] + f_t, S_t)`."""

    __repr__ = summary_repr

    F: jax.Array
    """`[T, n, n+m]` the matrices `[A_t, B_t]`."""
    f: jax.Array
    """`[T, n]` the offsets."""
    cov: jax.Array
    """`[T, n, n]` the noise covariances `S_t`."""

    @property
    def A(self) -> jax.Array:
        """`[T, n, n]`."""
        return self.F[:, :, : self.F.shape[1]]

    @property
    def B(self) -> jax.Array:
        """`[T, n, m]`."""
        return self.F[:, :, self.F.shape[1] :]


@struct.dataclass
class LocalCost:
    """Time-varying quadratic cost `0.5 z'C_t z + c_t'z + c0_t` of `z = [x_t; u_t]`."""

    __repr__ = summary_repr

    C: jax.Array
    """`[T, n+m, n+m]` symmetric Hessians."""
    c: jax.Array
    """`[T, n+m]` gradients at `z = 0`."""
    c0: jax.Array
    """`[T]` constants."""

    def __call__(self, z: jax.Array) -> jax.Array:
        """The cost of each step `[T]` at `z` `[T, n+m]`."""
        quad = 0.5 * jnp.einsum("ti,tij,tj->t", z, self.C, z)
        return quad + jnp.einsum("ti,ti->t", self.c, z) + self.c0


@struct.dataclass
class GMM:
    """A Gaussian mixture over the joint vectors `z = (x, u, x')`."""

    __repr__ = summary_repr

    weights: jax.Array
    """`[K]` mixture weights."""
    means: jax.Array
    """`[K, D]` cluster means."""
    covs: jax.Array
    """`[K, D, D]` cluster covariances."""
    count: jax.Array
    """Total weight of the points it was fitted to (the prior's evidence)."""


@struct.dataclass
class NIWPrior:
    """A normal-inverse-Wishart prior on a joint Gaussian, one per time step (leading `[T]`)."""

    __repr__ = summary_repr

    mu0: jax.Array
    """`[T, D]` prior means."""
    Phi: jax.Array
    """`[T, D, D]` prior scatter matrices (covariance times `n0`)."""
    m: jax.Array
    """`[T]` pseudo-counts of the mean."""
    n0: jax.Array
    """`[T]` pseudo-counts of the covariance."""


def _sym(X: jax.Array) -> jax.Array:
    return 0.5 * (X + jnp.swapaxes(X, -1, -2))


def psd_project(C: jax.Array, floor: float = 0.0) -> jax.Array:
    """The nearest symmetric matrix with eigenvalues `>= floor` (batched over leading axes)."""
    w, V = jnp.linalg.eigh(_sym(C))
    return _sym(jnp.einsum("...ij,...j,...kj->...ik", V, jnp.maximum(w, floor), V))


# ---------------------------------------------------------------------- Gaussian mixture
def _log_gauss(z: jax.Array, mean: jax.Array, cov: jax.Array) -> jax.Array:
    """`log N(z; mean, cov)` for points `[N, D]` and one cluster."""
    L = jnp.linalg.cholesky(cov)
    d = jax.scipy.linalg.solve_triangular(L, (z - mean).T, lower=True)
    D = z.shape[-1]
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diag(L)))
    return -0.5 * (jnp.sum(d**2, axis=0) + logdet + D * jnp.log(2 * jnp.pi))


def _responsibilities(gmm: GMM, z: jax.Array) -> jax.Array:
    """`[N, K]` log posterior of each cluster for each point."""
    logp = jax.vmap(_log_gauss, in_axes=(None, 0, 0), out_axes=1)(z, gmm.means, gmm.covs)
    logp = logp + jnp.log(jnp.maximum(gmm.weights, 1e-30))
    return logp - jax.scipy.special.logsumexp(logp, axis=1, keepdims=True)


def _m_step(z, w, resp, reg):
    """Weighted M-step: `w` `[N]` point weights, `resp` `[N, K]` responsibilities."""
    r = resp * w[:, None]
    nk = jnp.sum(r, axis=0) + 1e-10
    means = (r.T @ z) / nk[:, None]
    diff = z[None] - means[:, None]  # [K, N, D]
    covs = jnp.einsum("kn,kni,knj->kij", r.T, diff, diff) / nk[:, None, None]
    covs = _sym(covs) + reg
    return GMM(weights=nk / jnp.sum(nk), means=means, covs=covs, count=jnp.sum(w))


@partial(jax.jit, static_argnames=("num_clusters", "iterations"))
def _fit_gmm(key, z, w, num_clusters, iterations, reg_scale):
    # Scale-aware regulariser: a small multiple of each coordinate's overall variance.
    mean = jnp.sum(w[:, None] * z, axis=0) / jnp.sum(w)
    var = jnp.sum(w[:, None] * (z - mean) ** 2, axis=0) / jnp.sum(w)
    reg = jnp.diag(reg_scale * var + 1e-8)
    # Start from K distinct points drawn in proportion to their weights, each with the
    # overall covariance (a random partition would start every mean at the overall mean).
    idx = jax.random.choice(key, z.shape[0], (num_clusters,), replace=False, p=w / jnp.sum(w))
    cov = _sym(jnp.einsum("n,ni,nj->ij", w, z - mean, z - mean) / jnp.sum(w)) + reg
    gmm = GMM(
        weights=jnp.full((num_clusters,), 1.0 / num_clusters, z.dtype),
        means=z[idx],
        covs=jnp.broadcast_to(cov, (num_clusters, *cov.shape)),
        count=jnp.sum(w),
    )

    def body(gmm, _):
        resp = jnp.exp(_responsibilities(gmm, z))
        return _m_step(z, w, resp, reg), None

    gmm, _ = jax.lax.scan(body, gmm, None, length=iterations)
    return gmm


def fit_gmm(
    key: jax.Array,
    points: jax.Array,
    *,
    weights: jax.Array | None = None,
    num_clusters: int = 8,
    iterations: int = 30,
    regularization: float = 1e-4,
) -> GMM:
    """A Gaussian mixture fitted by EM (Bishop 2006, section 9.2.2) to weighted points.

    Args:
      key: seeds the choice of the initial cluster means (distinct points).
      points: `[N, D]` (joint vectors `(x, u, x')` for a dynamics prior).
      weights: `[N]` non-negative point weights (0 masks padding); default all 1.
      num_clusters: `K`.
      iterations: EM iterations.
      regularization: added to each cluster covariance's diagonal, relative to each
        coordinate's overall variance (keeps clusters with few points well conditioned).

    Returns:
      A `GMM`.
    """
    num_clusters = check_int(num_clusters, "num_clusters", owner="fit_gmm", low=1)
    iterations = check_int(iterations, "iterations", owner="fit_gmm", low=0)
    check_number(regularization, "regularization", owner="fit_gmm", low=0, low_open=True)
    z = jnp.asarray(points)
    if z.ndim != 2:
        raise ValueError(f"points must be [N, D], got shape {z.shape}.")
    w = jnp.ones(z.shape[0], z.dtype) if weights is None else jnp.asarray(weights, z.dtype)
    if w.shape != (z.shape[0],):
        raise ValueError(f"weights must be [N] = [{z.shape[0]}], got shape {w.shape}.")
    return _fit_gmm(key, z, w, num_clusters, iterations, float(regularization))


def gmm_prior(gmm: GMM, points: jax.Array, *, strength: float = 1.0) -> NIWPrior:
    """The normal-inverse-Wishart prior for each step's points from a mixture.

    The clusters are weighted by their mean posterior over the step's points; the prior mean
    and covariance are the moments of that weighted mixture (Levine & Abbeel 2014, appendix
    A). The pseudo-counts `m = n0 = strength` make the prior worth `strength` samples.

    Args:
      gmm: the mixture (`fit_gmm` on all transitions seen so far).
      points: `[T, N, D]` each step's joint vectors.
      strength: the prior's weight in samples.

    Returns:
      An `NIWPrior` with leading axis `T`.
    """
    check_number(strength, "strength", owner="gmm_prior", low=0, low_open=True)
    return _gmm_prior(gmm, jnp.asarray(points), float(strength))


@jax.jit
def _gmm_prior(gmm, points, strength):
    def one(z):
        logwts = jax.scipy.special.logsumexp(_responsibilities(gmm, z), axis=0) - jnp.log(
            z.shape[0]
        )
        wts = jnp.exp(logwts)
        wts = wts / jnp.sum(wts)
        mu = wts @ gmm.means
        diff = gmm.means - mu
        cov = jnp.einsum("k,kij->ij", wts, gmm.covs + jnp.einsum("ki,kj->kij", diff, diff))
        return mu, _sym(cov)

    mu0, cov = jax.vmap(one)(points)
    T = points.shape[0]
    s = jnp.full((T,), strength, points.dtype)
    return NIWPrior(mu0=mu0, Phi=cov * s[:, None, None], m=s, n0=s)


# ---------------------------------------------------------------------- dynamics
def fit_local_dynamics(
    X: jax.Array,
    U: jax.Array,
    *,
    prior: NIWPrior | None = None,
    regularization: float = 1e-6,
) -> LocalDynamics:
    """Linear-Gaussian dynamics at every step from `M` rollouts (module docstring).

    Args:
      X: `[M, T+1, n]` states of `M` rollouts.
      U: `[M, T, m]` their controls.
      prior: a per-step `NIWPrior` (e.g. `gmm_prior`); None fits by least squares with only
        the `regularization` (needs `M > n + m` varied samples to determine `F`).
      regularization: added to the diagonal of the `(x, u)` covariance before conditioning.

    Returns:
      `LocalDynamics` with `T` steps.

    Raises:
      ValueError: inconsistent shapes.
    """
    X, U = jnp.asarray(X), jnp.asarray(U)
    if X.ndim != 3 or U.ndim != 3 or X.shape[0] != U.shape[0] or X.shape[1] != U.shape[1] + 1:
        raise ValueError(
            f"X must be [M, T+1, n] and U [M, T, m] for the same M rollouts, got {X.shape} "
            f"and {U.shape}."
        )
    check_number(regularization, "regularization", owner="fit_local_dynamics", low=0)
    Z = joint_points(X, U)
    if prior is not None and prior.mu0.shape != (Z.shape[0], Z.shape[2]):
        raise ValueError(
            f"prior is for {prior.mu0.shape} (steps, dims), the data need "
            f"{(Z.shape[0], Z.shape[2])}; build it from these points with gmm_prior."
        )
    return _fit_dynamics(Z, X.shape[2], prior, float(regularization))


def joint_points(X: jax.Array, U: jax.Array) -> jax.Array:
    """`[T, M, n+m+n]` the joint vectors `(x_t, u_t, x_{t+1})` of each step's rollouts."""
    Z = jnp.concatenate([X[:, :-1], U, X[:, 1:]], axis=2)
    return jnp.swapaxes(Z, 0, 1)


@partial(jax.jit, static_argnums=1)
def _fit_dynamics(Z, n, prior, reg):
    D = Z.shape[2]
    i = D - n  # (x, u) dims

    def one(z, pr):
        N = z.shape[0]
        mu = jnp.mean(z, axis=0)
        diff = z - mu
        scatter = diff.T @ diff
        if pr is None:
            sigma = scatter / N
        else:
            mu0, Phi, m, n0 = pr
            dm = mu - mu0
            sigma = (scatter + Phi + (N * m / (N + m)) * jnp.outer(dm, dm)) / (N + n0)
        sigma = _sym(sigma)
        sigma = sigma.at[:i, :i].add(reg * jnp.eye(i, dtype=z.dtype))
        Szz = sigma[:i, :i]
        Fm = jnp.linalg.solve(Szz, sigma[:i, i:]).T
        fv = mu[i:] - Fm @ mu[:i]
        cov = _sym(sigma[i:, i:] - Fm @ Szz @ Fm.T)
        return Fm, fv, cov

    pr = None if prior is None else (prior.mu0, prior.Phi, prior.m, prior.n0)
    if pr is None:
        Fm, fv, cov = jax.vmap(lambda z: one(z, None))(Z)
    else:
        Fm, fv, cov = jax.vmap(one)(Z, pr)
    return LocalDynamics(F=Fm, f=fv, cov=cov)


# ---------------------------------------------------------------------- costs
def expand_cost(
    cost: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    X: jax.Array,
    U: jax.Array,
    *,
    psd_floor: float | None = 0.0,
    at_mean: bool = True,
) -> LocalCost:
    """The quadratic expansion of a differentiable cost about the samples.

    The second-order Taylor expansion at a point `z_i = [x_t^i; u_t^i]`, written in absolute
    coordinates, is `0.5 z'H_i z + (g_i - H_i z_i)'z + (l_i - g_i'z_i + 0.5 z_i'H_i z_i)`.
    With `at_mean` (default) it is taken at each step's mean sample; otherwise at every
    sample and the `M` expansions are averaged (GPS's reference code). The mean is the
    safer point for costs with kinks: Pendulum's wrapped angle has its worst cost at the
    bottom, and the average of expansions on both sides of it has its minimum there.

    Args:
      cost: `cost(x [n], u [m], t) -> scalar`, differentiable.
      X: `[M, T+1, n]` states (the last one is unused).
      U: `[M, T, m]` controls.
      psd_floor: project each averaged Hessian onto eigenvalues `>= psd_floor` (the LQR
        needs a convex model), keeping its value and gradient at the mean; None keeps it.
      at_mean: expand at each step's mean sample (True) or average the expansions at the
        samples (False).

    Returns:
      `LocalCost`.
    """
    X, U = jnp.asarray(X), jnp.asarray(U)
    return _expand_cost(cost, X[:, :-1], U, psd_floor, bool(at_mean))


@partial(jax.jit, static_argnums=(0, 3, 4))
def _expand_cost(cost, X, U, psd_floor, at_mean):
    n = X.shape[2]
    T = U.shape[1]

    def on_z(z, t):
        return cost(z[:n], z[n:], t)

    Z = jnp.concatenate([X, U], axis=2)  # [M, T, D]
    if at_mean:
        Z = jnp.mean(Z, axis=0, keepdims=True)
    t = jnp.arange(T)

    def at(z, tt):
        return on_z(z, tt), jax.grad(on_z)(z, tt), jax.hessian(on_z)(z, tt)

    val, g, H = jax.vmap(jax.vmap(at, in_axes=(0, 0)), in_axes=(0, None))(Z, t)
    Hz = jnp.einsum("mtij,mtj->mti", H, Z)
    C = _sym(jnp.mean(H, axis=0))
    c = jnp.mean(g - Hz, axis=0)
    c0 = jnp.mean(val - jnp.einsum("mti,mti->mt", g, Z) + 0.5 * jnp.einsum("mti,mti->mt", Z, Hz), 0)
    cost = LocalCost(C=C, c=c, c0=c0)
    if psd_floor is not None:
        cost = _project_about(cost, jnp.mean(Z, axis=0), psd_floor)
    return cost


def _project_about(cost: LocalCost, mu: jax.Array, floor: float) -> LocalCost:
    """`cost` with PSD-projected Hessians, keeping each step's value and gradient at `mu_t`."""
    g = jnp.einsum("tij,tj->ti", cost.C, mu) + cost.c
    v = cost(mu)
    C = psd_project(cost.C, floor)
    c = g - jnp.einsum("tij,tj->ti", C, mu)
    c0 = v - jnp.einsum("ti,ti->t", g, mu) + 0.5 * jnp.einsum("ti,tij,tj->t", mu, C, mu)
    return LocalCost(C=C, c=c, c0=c0)


def _quad_features(z: jax.Array) -> jax.Array:
    """`[..., P]` features `(z_i z_j for i <= j, z, 1)` of `z` `[..., D]`."""
    D = z.shape[-1]
    iu = jnp.triu_indices(D)
    outer = (z[..., :, None] * z[..., None, :])[..., iu[0], iu[1]]
    return jnp.concatenate([outer, z, jnp.ones((*z.shape[:-1], 1), z.dtype)], axis=-1)


def _quad_from_theta(theta: jax.Array, D: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(C, c, c0)` of `0.5 z'Cz + c'z + c0` from the feature weights."""
    iu = jnp.triu_indices(D)
    P = iu[0].shape[0]
    W = jnp.zeros((D, D), theta.dtype).at[iu].set(theta[:P])
    C = W + W.T  # z_i z_j (i < j) appears once with weight w, so C_ij = C_ji = w; C_ii = 2 w
    return C, theta[P : P + D], theta[P + D]


def fit_quadratic_cost(
    X: jax.Array,
    U: jax.Array,
    costs: jax.Array,
    *,
    window: int = 3,
    ridge: float = 1e-3,
    prior_weight: float = 1.0,
    psd_floor: float = 0.0,
) -> LocalCost:
    """A quadratic cost of `z = [x; u]` per step, fitted to sampled costs (black-box rewards).

    Step `t` is fitted by weighted ridge regression on the quadratic features of the samples
    of steps `t - window .. t + window` (weights decaying with the distance in time),
    shrunk towards one quadratic fitted to every sample (`prior_weight`), in coordinates
    centred and scaled by the samples' mean and spread; the Hessian is then projected onto
    eigenvalues `>= psd_floor` so that the LQR sees a convex model.

    Args:
      X: `[M, T+1, n]` states (the last is unused).
      U: `[M, T, m]` controls.
      costs: `[M, T]` the sampled cost of each step (minus the reward).
      window: neighbouring steps pooled into each step's fit.
      ridge: ridge penalty on the feature weights (in scaled coordinates).
      prior_weight: pull of the global fit (a ridge penalty towards its weights).
      psd_floor: smallest eigenvalue of the fitted Hessians.

    Returns:
      `LocalCost`.
    """
    window = check_int(window, "window", owner="fit_quadratic_cost", low=0)
    for name, v in (("ridge", ridge), ("prior_weight", prior_weight), ("psd_floor", psd_floor)):
        check_number(v, name, owner="fit_quadratic_cost", low=0)
    X, U, costs = jnp.asarray(X), jnp.asarray(U), jnp.asarray(costs)
    if costs.shape != U.shape[:2]:
        raise ValueError(f"costs must be [M, T] = {U.shape[:2]}, got shape {costs.shape}.")
    return _fit_quadratic_cost(
        X[:, :-1], U, costs, window, float(ridge), float(prior_weight), float(psd_floor)
    )


@partial(jax.jit, static_argnums=3)
def _fit_quadratic_cost(X, U, costs, window, ridge, prior_weight, psd_floor):
    Z = jnp.concatenate([X, U], axis=2)  # [M, T, D]
    M, T, D = Z.shape
    mean = jnp.mean(Z, axis=(0, 1))
    scale = jnp.std(Z, axis=(0, 1)) + 1e-6
    Zs = (Z - mean) / scale
    Phi = _quad_features(Zs)  # [M, T, P]
    P = Phi.shape[-1]
    y = costs

    def solve(weights, target):
        # min sum_i w_i (phi_i'th - y_i)^2 + ridge |th|^2 + prior_weight |th - target|^2
        A = jnp.einsum("i,ip,iq->pq", weights, Phi.reshape(-1, P), Phi.reshape(-1, P))
        b = jnp.einsum("i,ip,i->p", weights, Phi.reshape(-1, P), y.reshape(-1))
        lam = ridge + prior_weight * (target is not None)
        A = A + lam * jnp.eye(P, dtype=A.dtype)
        if target is not None:
            b = b + prior_weight * target
        return jnp.linalg.solve(A, b)

    theta_global = solve(jnp.ones(M * T, Z.dtype) / T, None)
    steps = jnp.arange(T)

    def one(t):
        dist = jnp.abs(steps - t)
        w_t = jnp.where(dist <= window, 1.0 / (1.0 + dist), 0.0).astype(Z.dtype)
        w = jnp.broadcast_to(w_t, (M, T)).reshape(-1)
        return solve(w, theta_global)

    thetas = jax.vmap(one)(steps)
    Cs, cs, c0s = jax.vmap(_quad_from_theta, in_axes=(0, None))(thetas, D)
    # Back to the original coordinates: zs = S^{-1}(z - mean).
    Sinv = 1.0 / scale
    C = Cs * Sinv[None, :, None] * Sinv[None, None, :]
    c = cs * Sinv - jnp.einsum("tij,j->ti", C, mean)
    c0 = (
        c0s - jnp.einsum("ti,i->t", cs * Sinv, mean) + 0.5 * jnp.einsum("i,tij,j->t", mean, C, mean)
    )
    return _project_about(LocalCost(C=C, c=c, c0=c0), jnp.mean(Z, axis=0), psd_floor)
