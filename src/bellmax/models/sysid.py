"""Nonlinear least squares with an identifiability report, and system identification.

`least_squares` fits named parameters to a residual function by Levenberg-Marquardt
(Marquardt 1963, with Nielsen's (1999) damping update; Madsen, Nielsen & Tingleff 2004,
"Methods for non-linear least squares problems", section 3.2) from several initial guesses,
all vmapped in one jitted float64 program; Jacobians come from `jax.jacfwd`. Positive
parameters are fitted in log space, which is also the column scaling of the Jacobian used by
the report: a unit change of `log theta_i` is a relative change of `theta_i`.

After the fit, the singular value decomposition of that column-scaled Jacobian `J` says what
the data determine (Bard 1974, "Nonlinear Parameter Estimation", ch. 7; Ljung 1999,
"System Identification", sec. 4.6):

- `rank`: singular values above `rank_rtol * s_max`.
- Null directions: log-parameter directions along which the residuals do not change, e.g.
  scaling cart mass, pole mass and force together leaves the cart-pole's motion unchanged.
  They are given in reduced row-echelon form (one pivot parameter each), as readable power
  products: `masscart * masspole * force_mag`.
- A scalar function `c(theta)` (a parameter, or a named combination such as
  `force_mag/total_mass`) is determined by the data iff its log-gradient is orthogonal to
  every null direction. Its standard error is the delta method on the covariance
  `sigma^2 (J^T J)^+`, with `sigma^2 = RSS / (m - rank)` (Bard 1974, sec. 7-5); undetermined
  ones get an infinite standard error.
- `suggested_gauge`: the pivot parameter of each null direction; fixing those (`fix=`)
  makes the fit well posed.

`identify(model, transitions)` applies this to a parametric model of a system
(`bellmax.models.parametric`) and transitions `(x, u, x')` (`bellmax.models.data`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.checks import check_int, check_number, check_seed
from bellmax.core.display import summary_repr
from bellmax.core.errors import DivergenceError, unknown_name
from bellmax.core.status import Status, StatusFields, status_name
from bellmax.models import parametric
from bellmax.models.data import Transitions

__all__ = [
    "FitResult",
    "SysIdConfig",
    "identify",
    "least_squares",
    "prediction_error",
]


@dataclasses.dataclass(frozen=True)
class SysIdConfig:
    """Knobs of the Levenberg-Marquardt solver and the identifiability report."""

    num_starts: int = 16
    """Initial guesses: the given one plus `num_starts - 1` random ones around it."""
    spread: float = 10.0
    """Random starts are drawn log-uniformly in `[init / spread, init * spread]` (positive
    parameters) or uniformly in `init +- spread * max(|init|, 1)` otherwise."""
    max_iterations: int = 200
    """Levenberg-Marquardt iterations per start (one Jacobian each)."""
    ftol: float = 1e-12
    """Converged when an accepted step lowers the cost by less than `ftol * cost`, or the
    linear model predicts less than that."""
    xtol: float = 1e-10
    """Converged when the step is shorter than `xtol * (|z| + xtol)` (z: fitted coordinates)."""
    gtol: float = 1e-12
    """Converged when `max |J^T r| <= gtol * max(cost, tiny)`."""
    lambda_init: float = 1e-3
    """Initial damping, relative to the largest diagonal entry of `J^T J`."""
    rank_rtol: float = 1e-8
    """Singular values below `rank_rtol * s_max` count as zero."""
    seed: int = 0
    """Seed of the random starts."""

    def __post_init__(self) -> None:
        owner = "SysIdConfig"
        for name in ("num_starts", "max_iterations"):
            object.__setattr__(self, name, check_int(getattr(self, name), name, owner=owner, low=1))
        for name in ("spread", "ftol", "xtol", "gtol", "lambda_init", "rank_rtol"):
            value = check_number(getattr(self, name), name, owner=owner, low=0)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "seed", check_seed(self.seed, "seed", owner=owner))
        if self.spread < 1 and self.num_starts > 1:
            raise ValueError(
                f"SysIdConfig.spread must be >= 1 (a factor around the initial guess) when "
                f"num_starts > 1, got {self.spread}."
            )

    def check(self) -> None:
        """Validate the fields again (they are checked when the config is made)."""
        self.__post_init__()


@dataclasses.dataclass(frozen=True)
class FitResult(StatusFields):
    """A least-squares fit with its identifiability report (host-side numpy values).

    `status` is a `bellmax.core.status.Status`; `status_name` reads it as `converged`,
    `max_iterations` or `stalled` and `converged` as a bool (`StatusFields`).
    """

    __repr__ = summary_repr

    names: tuple[str, ...]
    """All parameter names, in order."""
    params: dict[str, float]
    """Fitted (and fixed) values by name."""
    stderr: dict[str, float]
    """Standard errors: 0 for fixed parameters, inf for ones the data do not determine."""
    covariance: np.ndarray
    """`[p, p]` covariance in natural units, `D sigma^2 (J^T J)^+ D` with `D = diag(theta)`
    (positive mode); zero rows/columns for fixed parameters. With `rank < len(free)` it is the
    pseudo-inverse covariance, meaningful only for determined combinations."""
    fixed: dict[str, float]
    """The gauge: parameters held at given values."""
    free: tuple[str, ...]
    """The fitted parameters."""
    singular_values: np.ndarray
    """Singular values of the column-scaled Jacobian over the free parameters, descending."""
    rank: int
    """Number of singular values above `rank_rtol * s_max`."""
    null_directions: tuple[str, ...]
    """Undetermined log-parameter directions as power products, e.g. `g * m^-2 * l`:
    changing these parameters by these powers of a common factor leaves the residuals equal."""
    null_vectors: np.ndarray
    """`[p_free - rank, p_free]` the same directions (row-echelon form, pivots 1)."""
    suggested_gauge: tuple[str, ...]
    """Parameters to fix (one per null direction) to make the fit well posed."""
    identifiable: tuple[str, ...]
    """The free parameters and named combinations the data determine."""
    unidentifiable: tuple[str, ...]
    """The free parameters and named combinations they do not determine."""
    combinations: dict[str, float]
    """Values of the named combinations (e.g. `force_mag/total_mass`)."""
    combination_stderr: dict[str, float]
    """Their standard errors (delta method; inf when undetermined)."""
    residual_rms: float
    """Root mean square of the (weighted) residuals at the fit."""
    cost: float
    """Half the sum of squared residuals at the fit."""
    status: Status
    """`Status` of the best start: CONVERGED, MAX_ITERATIONS or STALLED."""
    iterations: int
    """Iterations of the best start."""
    start_costs: np.ndarray
    """Final cost of every start (inf for a start whose residuals were not finite)."""
    start_status: tuple[Status, ...]
    """`Status` of every start (DIVERGED for one whose residuals were not finite)."""
    num_residuals: int
    """Number of residuals `m`."""
    model: str | None = None
    """The model's name when fitted by `identify`."""
    num_transitions: int | None = None
    """Transitions used by `identify`."""

    @property
    def start_status_names(self) -> tuple[str, ...]:
        """`status_name` of every start: `converged`, `max_iterations`, `stalled`, `diverged`."""
        return tuple(status_name(s) for s in self.start_status)

    @property
    def well_posed(self) -> bool:
        """Whether every free parameter is determined (`rank == len(free)`)."""
        return self.rank == len(self.free)

    def summary(self) -> str:
        """A few readable lines: parameters with standard errors and the report."""
        head = (
            f"{self.model or 'fit'}: status {self.status_name} after {self.iterations} iterations"
        )
        lines = [
            head + f", residual rms {self.residual_rms:.3g}, rank {self.rank}/{len(self.free)}"
        ]
        for n in self.names:
            tag = " (fixed)" if n in self.fixed else ""
            lines.append(f"  {n:>12s} = {self.params[n]:.6g} +- {self.stderr[n]:.2g}{tag}")
        for n, v in self.combinations.items():
            lines.append(f"  {n:>24s} = {v:.6g} +- {self.combination_stderr[n]:.2g}")
        lines.append("  determined: " + (", ".join(self.identifiable) or "nothing"))
        if self.null_directions:
            lines.append("  not determined: " + ", ".join(self.unidentifiable))
            lines.append("  null directions: " + "; ".join(self.null_directions))
            lines.append("  fix one of each to gauge: " + ", ".join(self.suggested_gauge))
        return "\n".join(lines)


# ====================================================================== solver core
def _theta(z: jax.Array, positive: bool) -> jax.Array:
    return jnp.exp(z) if positive else z


def _as_dict(names: tuple[str, ...], theta: jax.Array) -> dict[str, jax.Array]:
    return {n: theta[i] for i, n in enumerate(names)}


class _LMCarry(NamedTuple):
    """The Levenberg-Marquardt loop state of one start."""

    z: jax.Array
    """`[p]` current fitted coordinates (log parameters in positive mode)."""
    r: jax.Array
    """`[m]` residuals at `z`."""
    J: jax.Array
    """`[m, p]` their Jacobian (zero columns for fixed parameters)."""
    cost: jax.Array
    """`0.5 * |r|^2`."""
    lam: jax.Array
    """The damping `lambda`."""
    nu: jax.Array
    """Nielsen's growth factor of `lambda` after a rejected step."""
    iteration: jax.Array
    """Iterations done."""
    status: jax.Array
    """A `Status` value: RUNNING until a stopping rule fires."""


class _Starts(NamedTuple):
    """What `_lm_multistart` returns, one row per start."""

    z: jax.Array
    """`[S, p]` final coordinates."""
    cost: jax.Array
    """`[S]` final cost (inf for a start whose residuals were not finite)."""
    iterations: jax.Array
    """`[S]` iterations run."""
    status: jax.Array
    """`[S]` `Status` values (CONVERGED, MAX_ITERATIONS, STALLED or DIVERGED)."""


def _lm_step(carry: _LMCarry, mask: jax.Array, tiny: jax.Array) -> tuple[jax.Array, ...]:
    """The damped Gauss-Newton step `h`, its scaling diagonal `d` and the gradient `J^T r`."""
    A = carry.J.T @ carry.J
    g = carry.J.T @ carry.r
    d = jnp.diag(A)
    d = jnp.maximum(d, 1e-12 * jnp.max(d) + tiny) * mask + (1.0 - mask)
    h = -jnp.linalg.solve(A + carry.lam * jnp.diag(d), g) * mask
    return h, d, g


@functools.partial(jax.jit, static_argnames=("residual_fn", "names", "positive"))
def _lm_multistart(residual_fn, names, positive, z0s, free, args, tols, max_iterations) -> _Starts:
    """Levenberg-Marquardt from each row of `z0s` `[S, p]`; fixed entries (free == 0) stay."""
    ftol, xtol, gtol, lam0 = tols[0], tols[1], tols[2], tols[3]
    mask = free.astype(z0s.dtype)
    tiny = jnp.finfo(z0s.dtype).tiny

    def res(z):
        return residual_fn(_as_dict(names, _theta(z, positive)), *args)

    def linearise(z):
        return res(z), jax.jacfwd(res)(z) * mask

    def finite(cost, J):
        return jnp.isfinite(cost) & jnp.all(jnp.isfinite(J))

    def init(z0):
        r, J = linearise(z0)
        cost = 0.5 * jnp.sum(r**2)
        lam = lam0 * jnp.max(jnp.diag(J.T @ J))
        status = jnp.where(finite(cost, J), Status.RUNNING, Status.DIVERGED)
        two = jnp.asarray(2.0, z0.dtype)
        return _LMCarry(z0, r, J, cost, lam, two, jnp.asarray(0), status)

    def running(c: _LMCarry):
        return (c.status == Status.RUNNING) & (c.iteration < max_iterations)

    def iterate(c: _LMCarry) -> _LMCarry:
        # trial step and the gain ratio of actual to predicted reduction (MNT 2004, eq. 2.18)
        h, d, g = _lm_step(c, mask, tiny)
        r_new, J_new = linearise(c.z + h)
        cost_new = 0.5 * jnp.sum(r_new**2)
        predicted = 0.5 * jnp.dot(h, c.lam * d * h - g)
        rho = (c.cost - cost_new) / jnp.maximum(predicted, tiny)
        ok = finite(cost_new, J_new) & (rho > 0)
        # stopping rules, MINPACK-style: the actual or the predicted relative reduction is
        # below ftol, the step is short, or the gradient is small
        small_step = jnp.linalg.norm(h) <= xtol * (jnp.linalg.norm(c.z) + xtol)
        conv = (ok & (c.cost - cost_new <= ftol * c.cost)) | (predicted <= ftol * c.cost)
        conv = conv | small_step | (jnp.max(jnp.abs(g)) <= gtol * jnp.maximum(c.cost, tiny))
        # accept or reject; Nielsen's damping update (MNT 2004, eq. 3.16)
        lam_ok = c.lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
        lam = jnp.where(ok, lam_ok, c.lam * c.nu)
        stalled = ~jnp.isfinite(lam) | (lam > 1e30)
        return _LMCarry(
            z=jnp.where(ok, c.z + h, c.z),
            r=jnp.where(ok, r_new, c.r),
            J=jnp.where(ok, J_new, c.J),
            cost=jnp.where(ok, cost_new, c.cost),
            lam=lam,
            nu=jnp.where(ok, 2.0, 2.0 * c.nu),
            iteration=c.iteration + 1,
            status=jnp.where(
                conv, Status.CONVERGED, jnp.where(stalled, Status.STALLED, Status.RUNNING)
            ),
        )

    def solve_one(z0) -> _Starts:
        c = jax.lax.while_loop(running, iterate, init(z0))
        status = jnp.where(c.status == Status.RUNNING, Status.MAX_ITERATIONS, c.status)
        cost = jnp.where(status == Status.DIVERGED, jnp.inf, c.cost)
        return _Starts(c.z, cost, c.iteration, status)

    return jax.vmap(solve_one)(z0s)


@functools.partial(jax.jit, static_argnames=("residual_fn", "names", "positive"))
def _linearise(residual_fn, names, positive, z, args):
    def res(z):
        return residual_fn(_as_dict(names, _theta(z, positive)), *args)

    return res(z), jax.jacfwd(res)(z)


@functools.partial(jax.jit, static_argnames=("fns", "names", "positive"))
def _combination_grads(fns, names, positive, z):
    def one(fn):
        def c(z):
            return jnp.asarray(fn(_as_dict(names, _theta(z, positive))), z.dtype)

        return c(z), jax.grad(c)(z)

    vals, grads = zip(*(one(fn) for fn in fns), strict=True) if fns else ((), ())
    return jnp.stack(vals) if vals else jnp.zeros(0), (
        jnp.stack(grads) if grads else jnp.zeros((0, z.shape[0]))
    )


# ====================================================================== report helpers
def _rref(M: np.ndarray, tol: float = 1e-9) -> tuple[np.ndarray, list[int]]:
    """Reduced row-echelon form of `M` (rows) and the pivot columns."""
    A = np.array(M, dtype=np.float64)
    rows, cols = A.shape
    pivots: list[int] = []
    r = 0
    for c in range(cols):
        if r == rows:
            break
        i = r + int(np.argmax(np.abs(A[r:, c])))
        if abs(A[i, c]) <= tol:
            continue
        A[[r, i]] = A[[i, r]]
        A[r] /= A[r, c]
        for k in range(rows):
            if k != r:
                A[k] -= A[k, c] * A[r]
        pivots.append(c)
        r += 1
    A[np.abs(A) < tol] = 0.0
    return A[:r], pivots


def _power_product(names: Sequence[str], v: np.ndarray) -> str:
    terms = []
    for n, p in zip(names, v, strict=True):
        if abs(p) < 1e-6:
            continue
        f = Fraction(float(p)).limit_denominator(12)
        if abs(float(f) - p) > 1e-3 * max(1.0, abs(p)):
            s = f"{p:.3g}"
        else:
            s = str(f)
        terms.append(n if s == "1" else f"{n}^{s}" if "/" not in s else f"{n}^({s})")
    return " * ".join(terms) if terms else "1"


def _check_names_values(what: str, values: Mapping[str, Any], names: Sequence[str]) -> None:
    for k, v in values.items():
        if k not in names:
            raise unknown_name(f"parameter in {what}", k, names)
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{what}[{k!r}] must be a number, got {v!r}.") from None
        if not math.isfinite(x):
            raise ValueError(f"{what}[{k!r}] must be finite, got {x!r}.")


# ====================================================================== public: generic
def _check_residual_shape(residual_fn: Callable, start: dict, args: tuple) -> None:
    """The residuals must be one vector of real numbers (checked abstractly: a matrix of
    per-sample errors, a scalar sum of squares or a tuple failed deep in the solver's matmuls
    and `diag`, naming nothing of the user's)."""
    params = {k: jnp.asarray(v) for k, v in start.items()}
    try:
        out = jax.eval_shape(residual_fn, params, *args)
    except Exception:
        return  # (its own error comes from the solve, with the user's traceback)
    shape = getattr(out, "shape", None)
    dtype = getattr(out, "dtype", None)
    if shape is None or len(shape) != 1 or dtype is None or np.dtype(dtype).kind != "f":
        got = f"shape {tuple(shape)}" if shape is not None else type(out).__name__
        raise ValueError(
            f"residual_fn must return one vector of float residuals [m], got {got}"
            + (
                f" of dtype {np.dtype(dtype).name}"
                if dtype is not None and shape is not None
                else ""
            )
            + "; ravel per-sample errors (errors.ravel()), and return residuals, not their sum "
            "of squares."
        )


def least_squares(
    residual_fn: Callable[..., jax.Array],
    init: Mapping[str, float],
    *,
    args: tuple = (),
    fix: Mapping[str, float] | None = None,
    positive: bool = True,
    combinations: Mapping[str, Callable[[dict[str, jax.Array]], jax.Array]] | None = None,
    keep_start: Sequence[str] = (),
    num_residuals: int | None = None,
    config: SysIdConfig = SysIdConfig(),
) -> FitResult:
    """Minimise `0.5 * |residual_fn(params, *args)|^2` over named parameters.

    Levenberg-Marquardt (Madsen, Nielsen & Tingleff 2004, sec. 3.2) from `config.num_starts`
    initial guesses in one jitted, vmapped float64 program; the best final cost wins. The
    report (module docstring) comes from the SVD of the column-scaled Jacobian at the fit.

    Args:
      residual_fn: `(params: dict[str, scalar], *args) -> residuals [m]`, traceable by JAX.
        Pass the same function object across calls to reuse the compiled solver.
      init: initial value of every parameter, by name (also the values of fixed ones that
        `fix` does not override); the order of `init` is the parameter order.
      args: arrays passed to `residual_fn` after the parameters (the data).
      fix: parameters held at given values (a gauge), e.g. `{"gravity": 9.8}`.
      positive: all parameters are > 0 and are fitted as `log theta` (the default).
      combinations: named scalar functions of the parameters to report with standard
        errors and whether the data determine them, e.g. `{"F/M": lambda p: ...}`.
      keep_start: parameters that every start begins at their `init` value (not drawn at
        random), e.g. a bound that acts only when the data reach it: a random start below
        the largest input would pin it to the data's range.
      num_residuals: how many residuals are real, when `residual_fn` pads its output with
        zeros (e.g. to reuse one compiled program for several data sizes); default all.
      config: solver and report knobs (`SysIdConfig`).

    Returns:
      A `FitResult`.

    Raises:
      ValueError / TypeError: bad `init`, `fix` or `config` values (non-positive values in
        positive mode, unknown names, non-finite numbers).
      DivergenceError: the residuals are not finite at any start.
    """
    if not callable(residual_fn):
        raise TypeError(f"residual_fn must be callable, got {type(residual_fn).__name__}.")
    if not isinstance(config, SysIdConfig):
        raise TypeError(f"config must be a SysIdConfig, got {type(config).__name__}.")
    if not isinstance(init, Mapping) or not init:
        raise TypeError(
            f"init must be a non-empty mapping name -> value, got {init!r}; "
            "e.g. {'gravity': 9.8, 'length': 0.5}."
        )
    names = tuple(str(n) for n in init)
    _check_names_values("init", init, names)
    fix = dict(fix or {})
    _check_names_values("fix", fix, names)
    start = {n: float(fix.get(n, init[n])) for n in names}
    if positive:
        bad = [n for n, v in start.items() if v <= 0]
        if bad:
            raise ValueError(
                f"parameters {bad} have non-positive values {[start[n] for n in bad]}, but "
                "positive=True fits log(theta); give positive values or pass positive=False."
            )
    combos = dict(combinations or {})
    for k, fn in combos.items():
        if not callable(fn):
            raise TypeError(f"combinations[{k!r}] must be callable, got {fn!r}.")
    for k in keep_start:
        if k not in names:
            raise unknown_name("parameter in keep_start", k, names)
    free_names = tuple(n for n in names if n not in fix)
    if not free_names:
        raise ValueError(f"every parameter is fixed ({sorted(fix)}); leave at least one free.")

    free = np.array([n not in fix for n in names])
    theta0 = np.array([start[n] for n in names], dtype=np.float64)
    keep = np.array([n in keep_start for n in names])
    with jax.enable_x64(True):
        z0s = _initial_guesses(theta0, free & ~keep, positive, config)
        args64 = jax.tree.map(_to_float64, tuple(args))
        _check_residual_shape(residual_fn, start, args64)
        tols = jnp.array([config.ftol, config.xtol, config.gtol, config.lambda_init])
        starts = _lm_multistart(
            residual_fn,
            names,
            bool(positive),
            jnp.asarray(z0s),
            jnp.asarray(free),
            args64,
            tols,
            jnp.asarray(config.max_iterations),
        )
        starts = _Starts(*(np.asarray(a) for a in starts))
        costs = starts.cost.astype(np.float64)
        if not np.any(np.isfinite(costs)):
            raise DivergenceError(
                f"the residuals are not finite at any of the {config.num_starts} starts (first "
                f"start: {dict(zip(names, theta0.tolist(), strict=True))}); check the data for "
                "NaN/inf and the initial values, or the model for divisions by zero."
            )
        best = int(np.nanargmin(np.where(np.isfinite(costs), costs, np.inf)))
        at_best = _linearise_best(residual_fn, names, positive, starts.z[best], args64, combos)
    return _report(
        names,
        fix,
        at_best,
        starts._replace(cost=costs),
        best,
        combo_names=tuple(combos),
        rank_rtol=config.rank_rtol,
        num_residuals=num_residuals,
    )


def _initial_guesses(
    theta0: np.ndarray, perturb: np.ndarray, positive: bool, config: SysIdConfig
) -> np.ndarray:
    """`[num_starts, p]` starts in fitted coordinates: `theta0`, then random ones around it.

    Only the entries where `perturb` is true vary (free parameters not in `keep_start`).
    """
    z_init = np.log(theta0) if positive else theta0
    z0s = np.tile(z_init, (config.num_starts, 1))
    if config.num_starts > 1:
        rng = np.random.default_rng(config.seed)
        shape = (config.num_starts - 1, theta0.size)
        if positive:
            width = math.log(max(config.spread, 1.0))
            noise = rng.uniform(-width, width, shape)
        else:
            scale = config.spread * np.maximum(np.abs(theta0), 1.0)
            noise = rng.uniform(-1.0, 1.0, shape) * scale
        z0s[1:] += noise * perturb
    return z0s


class _AtBest(NamedTuple):
    """The best start, linearised: what the identifiability report reads (numpy)."""

    theta: np.ndarray
    """`[p]` fitted parameters in natural units."""
    r: np.ndarray
    """`[m]` residuals."""
    J: np.ndarray
    """`[m, p]` their Jacobian in fitted coordinates."""
    positive: bool
    """Whether the fitted coordinates are `log(theta)`."""
    combo_values: np.ndarray
    """`[c]` values of the named combinations."""
    combo_grads: np.ndarray
    """`[c, p]` their gradients in fitted coordinates."""


def _linearise_best(residual_fn, names, positive, z, args64, combos) -> _AtBest:
    """Residuals, Jacobian and the combinations' values and gradients at `z` (float64)."""
    positive = bool(positive)
    zj = jnp.asarray(z)
    r, J = _linearise(residual_fn, names, positive, zj, args64)
    cvals, cgrads = _combination_grads(tuple(combos.values()), names, positive, zj)
    z = np.asarray(z)
    theta = np.exp(z) if positive else z
    r, J, cvals, cgrads = (np.asarray(a) for a in (r, J, cvals, cgrads))
    return _AtBest(theta, r, J, positive, cvals, cgrads)


def _to_float64(x: Any) -> Any:
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.floating):
        return jnp.asarray(a, dtype=jnp.float64)
    return jnp.asarray(a)


def _report(
    names: tuple[str, ...],
    fix: dict[str, float],
    at_best: _AtBest,
    starts: _Starts,
    best: int,
    *,
    combo_names: tuple[str, ...],
    rank_rtol: float,
    num_residuals: int | None = None,
) -> FitResult:
    """The identifiability report from residuals `r` and the Jacobian `J` in fitted coords."""
    theta, r, J, positive = at_best.theta, at_best.r, at_best.J, at_best.positive
    m = r.shape[0] if num_residuals is None else int(num_residuals)
    idx = np.flatnonzero([n not in fix for n in names])
    free_names = tuple(names[i] for i in idx)
    # column scaling: log coordinates already are relative; otherwise scale by |theta|
    scale = np.ones(len(names)) if positive else np.where(np.abs(theta) > 0, np.abs(theta), 1.0)
    Js = J[:, idx] * scale[idx]
    # all p right singular vectors; U only as wide as needed (m may be large)
    _, s, Vt = np.linalg.svd(Js, full_matrices=Js.shape[0] < Js.shape[1])
    s_full = np.zeros(len(idx))
    s_full[: s.size] = s
    tol = rank_rtol * (s_full[0] if s_full.size else 0.0)
    rank = int(np.sum(s_full > tol)) if s_full[0] > 0 else 0
    null = Vt[rank:]
    rss = float(r @ r)
    dof = max(m - rank, 1)
    sigma2 = rss / dof
    # covariance of the scaled coordinates (pseudo-inverse on the determined subspace)
    if rank:
        cov_s = sigma2 * (Vt[:rank].T / s_full[:rank] ** 2) @ Vt[:rank]
        cov_s = 0.5 * (cov_s + cov_s.T)  # exactly symmetric (the product is only up to rounding)
    else:
        cov_s = np.zeros((len(idx), len(idx)))

    # natural units: theta = exp(z) -> d theta = theta dz; linear: d theta = scale * d(z/scale)
    jac_nat = theta[idx] if positive else scale[idx]
    cov = np.zeros((len(names), len(names)))
    cov[np.ix_(idx, idx)] = cov_s * np.outer(jac_nat, jac_nat)

    def determined(grad_scaled: np.ndarray) -> bool:
        nrm = np.linalg.norm(grad_scaled)
        if nrm == 0.0:
            return True  # does not depend on the free parameters at all
        return bool(np.linalg.norm(null @ grad_scaled) <= 1e-6 * nrm)

    stderr: dict[str, float] = {}
    identifiable: list[str] = []
    unidentifiable: list[str] = []
    for k, i in enumerate(idx):
        e = np.zeros(len(idx))
        e[k] = 1.0
        if determined(e):
            stderr[names[i]] = float(math.sqrt(max(cov[i, i], 0.0)))
            identifiable.append(names[i])
        else:
            stderr[names[i]] = math.inf
            unidentifiable.append(names[i])
    for n in fix:
        stderr[n] = 0.0
    combinations: dict[str, float] = {}
    combination_stderr: dict[str, float] = {}
    for j, cname in enumerate(combo_names):
        g = at_best.combo_grads[j][idx] * scale[idx]  # gradient in the scaled coordinates
        combinations[cname] = float(at_best.combo_values[j])
        if determined(g):
            combination_stderr[cname] = float(math.sqrt(max(g @ cov_s @ g, 0.0)))
            identifiable.append(cname)
        else:
            combination_stderr[cname] = math.inf
            unidentifiable.append(cname)

    if null.shape[0]:
        null_rref, pivots = _rref(null)
        null_strings = tuple(_power_product(free_names, v) for v in null_rref)
        gauge = tuple(free_names[c] for c in pivots)
    else:
        null_rref, null_strings, gauge = np.zeros((0, len(idx))), (), ()
    if not positive:
        null_strings = tuple(f"linear direction: {s}" for s in null_strings)

    return FitResult(
        names=tuple(names),
        params={n: float(theta[i]) for i, n in enumerate(names)},
        stderr={n: stderr[n] for n in names},
        covariance=cov,
        fixed={n: float(v) for n, v in fix.items()},
        free=free_names,
        singular_values=s_full,
        rank=rank,
        null_directions=null_strings,
        null_vectors=null_rref,
        suggested_gauge=gauge,
        identifiable=tuple(identifiable),
        unidentifiable=tuple(unidentifiable),
        combinations=combinations,
        combination_stderr=combination_stderr,
        residual_rms=float(math.sqrt(rss / max(m, 1))),
        cost=0.5 * rss,
        status=Status(int(starts.status[best])),
        iterations=int(starts.iterations[best]),
        start_costs=starts.cost,
        start_status=tuple(Status(int(c)) for c in starts.status),
        num_residuals=int(m),
    )


# ====================================================================== system identification
def _wrap(a: jax.Array) -> jax.Array:
    return (a + jnp.pi) % (2 * jnp.pi) - jnp.pi


#: `identify` pads the data to a multiple of this many rows (zero weight) to share compiles.
_PAD_ROWS = 512


@functools.cache
def _model_residual(model: Any) -> Callable[..., jax.Array]:
    """One residual function object per model, so its compiled solver is reused."""
    angle = np.zeros(len(model.state_names), dtype=bool)
    angle[list(model.angle_dims)] = True
    angle_mask = tuple(bool(a) for a in angle)

    def residual(params, X, U, Xn, w, row_mask):
        theta = jnp.stack([params[n] for n in model.param_names])
        pred = jax.vmap(model.predict, in_axes=(None, 0, 0))(theta, X, U)
        d = pred - Xn
        d = jnp.where(jnp.asarray(angle_mask), _wrap(d), d)
        return (d * w * row_mask[:, None]).reshape(-1)

    return residual


def identify(
    model: Any,
    transitions: Any,
    *,
    fix: Mapping[str, float] | None = None,
    init: Mapping[str, float] | None = None,
    config: SysIdConfig = SysIdConfig(),
    min_transitions: int | None = None,
) -> FitResult:
    """Fit a parametric model's physical parameters to transitions `(x, u, x')`.

    The residual of transition `i` and state component `j` is
    `(predict(theta, x_i, u_i) - x'_i)_j / s_j` (angles wrapped to `[-pi, pi)`), where `s_j`
    is the standard deviation of `x'_j - x_j` over the data, so every component weighs alike.
    See `least_squares` for the solver and the identifiability report (Ljung 1999, sec. 4.6).

    Args:
      model: a `ParametricModel` or its registered name (`"cartpole"`, `"pendulum"`).
      transitions: a `bellmax.models.data.Transitions` (observations and actions as the
        environment gives them; the model maps them to its state and input).
      fix: the gauge, parameters held at known values, e.g. `{"masscart": 1.0}`.
      init: initial guesses (the model's nominal values where not given).
      config: solver and report knobs.
      min_transitions: the fewest transitions accepted; default `max(10, 2 * free params)`.

    Returns:
      A `FitResult` with `model` and `num_transitions` set and the model's named
      combinations (e.g. `force_mag/total_mass`) reported.

    Raises:
      UnknownNameError: an unknown model name or parameter name.
      ValueError: too few transitions, non-finite data, shapes the model does not accept.
    """
    if isinstance(model, str):
        model = parametric.get_model(model)
    if not isinstance(model, parametric.ParametricModel):
        raise TypeError(
            f"model must be a ParametricModel or a registered name {parametric.model_names()}, "
            f"got {type(model).__name__}."
        )
    if not isinstance(transitions, Transitions):
        raise TypeError(
            f"transitions must be a bellmax.models.data.Transitions, got "
            f"{type(transitions).__name__}; build one with collect_transitions(...) or "
            "make_transitions(x, u, x_next)."
        )
    fix = dict(fix or {})
    init_vals = dict(model.nominal)
    for what, d in (("init", dict(init or {})), ("fix", fix)):
        _check_names_values(what, d, model.param_names)
    init_vals.update(dict(init or {}))
    num_free = len(model.param_names) - len(fix)
    need = max(10, 2 * num_free) if min_transitions is None else int(min_transitions)
    n = transitions.num_transitions
    if n < need:
        raise ValueError(
            f"too few transitions: {n}, but identifying {num_free} free parameters of "
            f"{model.name!r} needs at least {need}; collect more (collect_transitions(env_id, "
            f"{max(need, 200)})) or fix parameters with fix=."
        )
    X, U, Xn = model.to_model(transitions)
    d = Xn - X
    d[:, list(model.angle_dims)] = (d[:, list(model.angle_dims)] + np.pi) % (2 * np.pi) - np.pi
    s = d.std(axis=0)
    w = 1.0 / np.where(s > 1e-12, s, 1.0)
    # pad to a multiple of _PAD_ROWS with zero-weight rows: one compiled solver per bucket
    padded = -(-n // _PAD_ROWS) * _PAD_ROWS
    row_mask = np.zeros(padded)
    row_mask[:n] = 1.0
    X, U, Xn = (np.concatenate([a, np.repeat(a[:1], padded - n, axis=0)]) for a in (X, U, Xn))
    result = least_squares(
        _model_residual(model),
        {k: init_vals[k] for k in model.param_names},
        args=(X, U, Xn, w, row_mask),
        num_residuals=n * X.shape[1],
        fix=fix,
        positive=True,
        combinations=dict(model.combinations),
        keep_start=model.keep_start,
        config=config,
    )
    return dataclasses.replace(result, model=model.name, num_transitions=n)


def prediction_error(model: Any, params: Mapping[str, float], transitions: Any) -> np.ndarray:
    """Root-mean-square one-step prediction error per state component.

    Args:
      model: a `ParametricModel` or its registered name.
      params: parameter values by name (e.g. `FitResult.params`).
      transitions: held-out `Transitions`.

    Returns:
      `[state_dim]` RMS of `predict(theta, x, u) - x'` (angles wrapped), in state units.
    """
    if isinstance(model, str):
        model = parametric.get_model(model)
    missing = [n for n in model.param_names if n not in params]
    if missing:
        raise ValueError(f"params lacks {missing}; pass every parameter of {model.name!r}.")
    X, U, Xn = model.to_model(transitions)
    with jax.enable_x64(True):
        theta = jnp.asarray([float(params[n]) for n in model.param_names], dtype=jnp.float64)
        pred = np.asarray(_predict_batch(model, theta, jnp.asarray(X), jnp.asarray(U)))
    d = pred - Xn
    d[:, list(model.angle_dims)] = (d[:, list(model.angle_dims)] + np.pi) % (2 * np.pi) - np.pi
    return np.sqrt(np.mean(d**2, axis=0))


@functools.partial(jax.jit, static_argnums=0)
def _predict_batch(model, theta, X, U):
    return jax.vmap(model.predict, in_axes=(None, 0, 0))(theta, X, U)
