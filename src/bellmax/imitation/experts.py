"""Experts: anything that maps observations to actions, checked every time it labels.

An expert is a callable `expert(obs [N, *obs_shape]) -> actions [N, *act_shape]` on NumPy
arrays (a batch); `as_expert(fn)` also accepts a function of one observation, found out by
calling it. The imitation loops call an expert only to label states; every labelled
observation counts as one label (Ross, Gordon & Bagnell 2011, "A reduction of imitation
learning and structured prediction to no-regret online learning", count expert queries).

An expert may abstain on some states (a person who skips one): it returns a
`numpy.ma.MaskedArray` whose masked rows are not labels (and are not counted).

An expert with memory (MPC warm-starts each plan from the last) says so with
`stateful = True`: it is then called on the current observations of `N` parallel episodes
at every step, in order, and `reset(done [N])` restarts the rows whose episode ended.
`peek(obs, rows)` labels nearby states (perturbed copies of row `rows`' states) from the
same memory without advancing it (the three-cameras labels).

Built in:

- `lqr_expert(problem, action_space)`: infinite-horizon LQR about the problem's goal
  (`bellmax.control.make_lqr_controller`), controls mapped onto the action space
  (`bellmax.control.control_to_action`: CartPole-v1's push left/right is the sign).
- `mpc_expert(problem, action_space)`: iLQR MPC re-planned at every step, warm-started
  (`bellmax.control.make_mpc`); stateful. With `initial_plan=` every solve starts from a
  plan that depends on the state alone (`bellmax.imitation.nominal`): stateless.
- `policy_expert(path)`: a trained bellmax policy (`bellmax.load_policy`), greedy.
- `perfect_expert()`: tic-tac-toe's exact solution (`bellmax.games.solver.solve`): the first
  optimal cell of the position, from the mover's point of view (`TicTacToe-v0`'s observation).
- `human_expert(...)` (`bellmax.imitation.human`): a person at the terminal.
- `import_expert("module:function")`: a user's own callable.

`label(expert, obs, action_space)` calls an expert and checks what comes back: an exception,
a wrong shape, a NaN or an action outside the action space raise `ExpertError`, which says
what was wrong and on which observation.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from bellmax.core.errors import BellmaxError
from bellmax.core.xla import bucket_size
from bellmax.envs import spaces

__all__ = [
    "Expert",
    "ExpertError",
    "FunctionExpert",
    "as_expert",
    "import_expert",
    "label",
    "lqr_expert",
    "mpc_expert",
    "perfect_expert",
    "policy_expert",
]


class ExpertError(BellmaxError, ValueError):
    """An expert raised, or returned actions that are not valid labels (the message says how)."""


@runtime_checkable
class Expert(Protocol):
    """`expert(obs [N, *obs_shape]) -> actions [N, *act_shape]` on NumPy arrays."""

    def __call__(self, obs: np.ndarray) -> Any: ...


class FunctionExpert:
    """A user's function as an expert: batched (`fn(obs [N, ...])`) or of one observation.

    With `batched=None` the first call tries the batch and falls back to one call per row
    when the batch call raises, returns the wrong number of actions, or returns actions that
    are not the function's own for each row alone (a function of one observation can return
    N values for a batch of N: `lambda o: (o[2] > 0) * 1` given 4 CartPole observations
    returns the signs of row 2's 4 features); the mode found is kept. That first call also
    calls the function on each row alone (until it refuses one): give `batched` to skip it
    for a function that counts its calls or is costly.
    """

    stateful = False

    def __init__(self, fn: Callable[[Any], Any], *, batched: bool | None = None, name: str = ""):
        if not callable(fn):
            raise TypeError(f"an expert must be callable (obs -> actions), got {fn!r}.")
        self.fn = fn
        self.batched = batched
        self.name = name or getattr(fn, "__name__", repr(fn))

    def __repr__(self) -> str:
        return f"FunctionExpert({self.name})"

    def _rows(self, obs: np.ndarray) -> np.ndarray:
        return np.stack([np.asarray(self.fn(o)) for o in obs])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if self.batched is True:
            return np.asarray(self.fn(obs))
        if self.batched is False:
            return self._rows(obs)
        try:
            out = np.asarray(self.fn(obs))
            fits = out.ndim >= 1 and out.shape[0] == len(obs)
        except Exception:
            fits = False
        if fits and self._agrees_row_by_row(obs, out):
            self.batched = True
            return out
        out = self._rows(obs)
        self.batched = False
        return out

    def _agrees_row_by_row(self, obs: np.ndarray, out: np.ndarray) -> bool:
        """Whether the batch call's actions are the function's for each observation alone
        (once, at the first call). A function that refuses one observation, or returns no
        action of the batch's shape for it (`np.ones(len(obs))`), is batched."""
        for o, action in zip(obs, out, strict=True):
            try:
                one = np.asarray(self.fn(o))
            except Exception:
                return True
            if one.shape != action.shape:
                return True
            if not np.array_equal(one, action):
                return False
        return True


def as_expert(expert: Any) -> Any:
    """`expert` itself if it is a built-in expert object, else a `FunctionExpert` around it."""
    if isinstance(expert, FunctionExpert) or hasattr(expert, "stateful"):
        return expert
    return FunctionExpert(expert)


def import_expert(spec: str) -> FunctionExpert:
    """The callable `module:function` (dotted attributes allowed) as an expert.

    Raises:
      ValueError: `spec` is not `module:function`; the module cannot be imported; the name
        is not found or not callable.
    """
    module, sep, attr = str(spec).partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"expert {spec!r}: a function expert is written module:function.")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ValueError(
            f"expert {spec!r}: cannot import module {module!r} ({e}); is it on PYTHONPATH?"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"expert {spec!r}: module {module!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"expert {spec!r}: {attr!r} is not callable (obs -> action).")
    return FunctionExpert(obj, name=spec)


def _expected_shape(space: spaces.Space, n: int) -> tuple[int, ...]:
    return (n, *tuple(space.shape))


def _describe(obs: np.ndarray, i: int) -> str:
    row = np.asarray(obs[i]).reshape(-1)
    shown = ", ".join(f"{v:.4g}" for v in row[:9]) + (", ..." if row.size > 9 else "")
    return f"observation {i} [{shown}]"


def label(
    expert: Any, obs: np.ndarray, action_space: spaces.Space
) -> tuple[np.ndarray, np.ndarray]:
    """Call `expert` on a batch of observations and check its actions.

    Args:
      expert: an expert (see the module docstring).
      obs: `[N, *obs_shape]` NumPy observations.
      action_space: the environment's action space (the labels must lie in it).

    Returns:
      `(actions [N, *act_shape], given [N] bool)`: `given` is False where the expert
      abstained (masked rows); those actions are placeholders.

    Raises:
      ExpertError: the expert raised, or returned a wrong shape, a NaN or infinity, a
        non-integer or out-of-range discrete action, or a continuous action outside the
        action space's bounds.
    """
    obs = np.asarray(obs)
    n = len(obs)
    name = getattr(expert, "name", None) or type(expert).__name__
    try:
        raw = expert(obs)
    except (KeyboardInterrupt, ExpertError):
        raise
    except Exception as e:
        raise ExpertError(
            f"the expert {name} raised {type(e).__name__}: {e} (labelling {n} observations, "
            f"the first {_describe(obs, 0) if n else 'none'}). Fix the expert; the labels "
            "gathered before this call are kept."
        ) from e
    given = np.ones(n, bool)
    if isinstance(raw, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(raw)
        given = ~mask.reshape(n, -1).any(-1) if mask.size else given
        raw = raw.filled(0)
    a = np.asarray(raw)
    want = _expected_shape(action_space, n)
    if isinstance(action_space, spaces.Box) and a.shape == (n,) and want == (n, 1):
        a = a[:, None]  # one continuous dimension given as a flat vector
    if a.shape != want:
        raise ExpertError(
            f"the expert {name} returned actions of shape {a.shape} for {n} observations; "
            f"the action space {action_space!r} needs shape {want} (one action per row)."
        )
    if isinstance(action_space, spaces.Discrete):
        if a.dtype.kind == "f":
            bad = ~np.isfinite(a) | (a != np.round(a))
            if bad[given].any():
                i = int(np.flatnonzero(bad & given)[0])
                raise ExpertError(
                    f"the expert {name} returned {a[i].tolist()!r} at {_describe(obs, i)}: a "
                    f"{action_space!r} action is an integer in 0..{action_space.n - 1}."
                )
        elif a.dtype.kind not in "iub":
            raise ExpertError(
                f"the expert {name} returned actions of dtype {a.dtype}; a {action_space!r} "
                f"action is an integer in 0..{action_space.n - 1}."
            )
        a = a.astype(np.int64)
        bad = (a < 0) | (a >= action_space.n)
        if bad[given].any():
            i = int(np.flatnonzero(bad & given)[0])
            raise ExpertError(
                f"the expert {name} returned action {a[i]} at {_describe(obs, i)}, out of "
                f"range: {action_space!r} actions are 0..{action_space.n - 1}."
            )
        return a.astype(np.int32), given
    if a.dtype.kind not in "fiub":
        raise ExpertError(f"the expert {name} returned non-numeric actions (dtype {a.dtype}).")
    a = a.astype(np.float32)
    rows = a.reshape(n, -1)
    nonfinite = ~np.isfinite(rows).all(-1) & given
    if nonfinite.any():
        i = int(np.flatnonzero(nonfinite)[0])
        raise ExpertError(
            f"the expert {name} returned a non-finite action {a[i].tolist()} at "
            f"{_describe(obs, i)}."
        )
    if isinstance(action_space, spaces.Box):
        low = np.broadcast_to(np.asarray(action_space.low, np.float32), a.shape[1:]).reshape(-1)
        high = np.broadcast_to(np.asarray(action_space.high, np.float32), a.shape[1:]).reshape(-1)
        tol = 1e-5 * (1 + np.maximum(np.abs(low), np.abs(high)))
        out = (((rows < low - tol) | (rows > high + tol)).any(-1)) & given
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise ExpertError(
                f"the expert {name} returned action {a[i].tolist()} at {_describe(obs, i)}, "
                f"outside the action space [{low.tolist()}, {high.tolist()}]."
            )
        a = np.clip(rows, low, high).reshape(a.shape)
    return a, given


# ---------------------------------------------------------------------- control experts


def _static_space(space: spaces.Space) -> spaces.Space:
    """The space with NumPy bounds (so jitted closures over it see constants)."""
    if isinstance(space, spaces.Box):
        return spaces.Box(
            np.asarray(space.low, np.float32), np.asarray(space.high, np.float32), space.shape
        )
    return space


class _ControlExpert:
    """An LQR or MPC controller labelling observations (vmapped over the batch)."""

    def __init__(
        self, controller: Any, action_space: spaces.Space, params: Any, observe, name, initial=None
    ):
        from bellmax.control.mpc import control_to_action

        self.controller = controller
        self.action_space = _static_space(action_space)
        self.params = params
        self.observe = observe
        self.name = name
        self.stateful = controller.method != "lqr" and initial is None
        self._states = None
        space = self.action_space

        def solve(s, xx):
            if initial is not None:  # each solve from the state's own first guess
                s = controller.init(U=initial(xx))
            return controller.step(s, xx, params)

        def act(states, x):
            u, new = jax.vmap(solve)(states, x)
            a = jax.vmap(
                lambda uu: control_to_action(uu, space, controller.u_lower, controller.u_upper)
            )(u)
            return a, new

        self._act = jax.jit(act)

    def __repr__(self) -> str:
        return f"Expert({self.name})"

    def _x(self, obs: np.ndarray) -> np.ndarray:
        x = obs if self.observe is None else self.observe(obs)
        return np.asarray(x, np.float32).reshape(len(obs), -1)

    def _solve_rows(self, states: Any, obs: np.ndarray) -> tuple[np.ndarray, Any]:
        """`self._act` on the rows of `obs`, padded to the next power of two with copies of
        the first row: a batch of each new size compiled the whole vmapped controller again
        (1.1-2.0 s each for the swing-up MPC; a DAgger run labels batches of many sizes)."""
        x = self._x(obs)
        n = len(x)
        rows = bucket_size(n)

        def pad(a: Any) -> np.ndarray:  # NumPy either way: the same program for both
            a = np.asarray(a)
            return np.concatenate([a, np.repeat(a[:1], rows - n, axis=0)]) if rows > n else a

        a, new = self._act(jax.tree.map(pad, states), pad(x))
        return np.asarray(a)[:n], jax.tree.map(lambda v: np.asarray(v)[:n], new)

    def _fresh(self, n: int):
        init = self.controller.init()
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), init)

    def reset(self, done: Any = None) -> None:
        """Restart the plans of the rows whose episode ended (all rows when `done` is None)."""
        if self._states is None or done is None:
            self._states = None
            return
        done = jnp.asarray(np.asarray(done, bool))
        fresh = self._fresh(int(done.shape[0]))
        self._states = jax.tree.map(
            lambda s, f: jnp.where(jnp.reshape(done, (-1,) + (1,) * (s.ndim - 1)), f, s),
            self._states,
            fresh,
        )

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        n = len(obs)
        states = self._states
        if states is None or jax.tree.leaves(states)[0].shape[0] != n:
            states = self._fresh(n)
        a, new = self._solve_rows(states, obs)
        if self.stateful:
            self._states = new
        return np.asarray(a)

    def peek(self, obs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Labels of `obs` (states near rows `rows`' current ones) from those rows' memory,
        which is left as it was."""
        rows = np.asarray(rows, np.int64)
        states = self._states
        if states is None or not self.stateful:
            states = self._fresh(int(np.max(rows)) + 1 if len(rows) else 1)
        picked = jax.tree.map(lambda s: s[rows], states)
        a, _ = self._solve_rows(picked, np.asarray(obs))
        return np.asarray(a)


def lqr_expert(
    problem: Any,
    action_space: spaces.Space,
    *,
    params: Any = None,
    observe: Callable[[np.ndarray], Any] | None = None,
) -> _ControlExpert:
    """LQR about `problem.goal` as an expert (stateless).

    Args:
      problem: a `bellmax.control.Problem` (e.g. `cartpole_balance(params)`), on the true
        or an identified model.
      action_space: the environment's; controls are mapped onto it by `control_to_action`.
      params: model parameters (default `problem.params`).
      observe: `obs [N, ...] -> x [N, n]`, the controller's state (default the observation).
    """
    from bellmax.control.mpc import make_lqr_controller

    ctrl = make_lqr_controller(problem, params)
    return _ControlExpert(ctrl, action_space, params, observe, "lqr")


def mpc_expert(
    problem: Any,
    action_space: spaces.Space,
    *,
    params: Any = None,
    observe: Callable[[np.ndarray], Any] | None = None,
    iterations: int = 3,
    method: str = "ilqr",
    initial_plan: Callable[[jax.Array], jax.Array] | None = None,
) -> _ControlExpert:
    """MPC (iLQR or DDP re-planned each step) as an expert.

    Without `initial_plan` each solve is warm-started from the last plan (stateful: a label
    depends on the episode so far). With it, each solve starts from `initial_plan(x)`, so
    the label is a function of the observation alone (stateless; e.g. the rollout of a
    nominal controller, `bellmax.imitation.nominal.rollout_plan`).

    Args:
      problem: a `bellmax.control.Problem` (its horizon is the planning horizon).
      action_space: the environment's.
      params: model parameters (default `problem.params`).
      observe: `obs [N, ...] -> x [N, n]` (default the observation).
      iterations: iLQR/DDP iterations per step.
      method: `"ilqr"` or `"ddp"`.
      initial_plan: `x [n] -> U [H, m]`, jittable: the first guess of every solve.
    """
    from bellmax.control.mpc import make_mpc

    if initial_plan is not None and not callable(initial_plan):
        raise TypeError(f"initial_plan must be a function x -> U [H, m], got {initial_plan!r}.")
    mpc = make_mpc(problem, iterations=iterations, method=method)
    p = problem.params if params is None else params
    name = f"mpc ({method}{', from a nominal plan' if initial_plan is not None else ''})"
    return _ControlExpert(mpc, action_space, p, observe, name, initial=initial_plan)


# ---------------------------------------------------------------------- policies and games


class _PolicyExpert:
    stateful = False

    def __init__(self, policy: Any, name: str):
        self.policy = policy
        self.name = name

    def __repr__(self) -> str:
        return f"Expert({self.name})"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.policy.predict(np.asarray(obs), deterministic=True))


def policy_expert(path: Any, *, seed: int | None = None) -> _PolicyExpert:
    """A trained bellmax policy (a run directory or policy file) acting greedily."""
    from bellmax.policy import load_policy

    return _PolicyExpert(load_policy(path, seed=seed), f"checkpoint:{path}")


class _PerfectExpert:
    stateful = False
    name = "perfect"

    def __init__(self):
        from bellmax.games.solver import positions, solve

        pos, sol = positions(), solve()
        self._lookup = pos.lookup
        # the first optimal cell of each position (deterministic labels); -1 at terminal ones
        self._move = np.where(sol.optimal.any(-1), np.argmax(sol.optimal, -1), -1)

    def __repr__(self) -> str:
        return "Expert(perfect)"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        from bellmax.games.solver import board_code

        o = np.rint(np.asarray(obs, np.float64)).astype(np.int64).reshape(len(obs), 9)
        mover = np.where(o.sum(-1) == 0, 1, -1)  # X moves when the marks are equal
        boards = o * mover[:, None]
        idx = self._lookup[board_code(boards)]
        if (idx < 0).any():
            i = int(np.flatnonzero(idx < 0)[0])
            raise ValueError(f"board {boards[i].tolist()} is not a reachable tic-tac-toe position")
        move = self._move[idx]
        if (move < 0).any():
            i = int(np.flatnonzero(move < 0)[0])
            raise ValueError(f"board {boards[i].tolist()} is finished: there is no move to label")
        return move.astype(np.int32)


def perfect_expert() -> _PerfectExpert:
    """Tic-tac-toe's perfect player on `TicTacToe-v0` observations (the board times the
    player to move): the first optimal cell of the exact solution; never loses."""
    return _PerfectExpert()
