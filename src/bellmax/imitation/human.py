"""A person at the terminal as the expert, for discrete actions.

For each state to label the expert shows it (a tic-tac-toe board, the cart-pole's numbers
with a small text picture, a grid map's cell, or the raw numbers) and reads one line: an
action number, `s` to skip the state (no label, not counted) or `q` to stop (raises
`KeyboardInterrupt`, as Ctrl-C does). Every label is saved the moment it is given
(`save_to`, an `.npz` rewritten atomically), so an interrupt loses nothing. Input and output
are streams (`stdin`, `stdout`), so a script can drive it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from bellmax.envs import spaces
from bellmax.imitation.dataset import Dataset, save_dataset

__all__ = ["HumanExpert", "cartpole_picture", "human_expert"]


def cartpole_picture(obs: np.ndarray, *, width: int = 41, x_limit: float = 2.4) -> str:
    """The cart-pole's numbers and a one-line picture of the track, cart and pole."""
    x, x_dot, theta, theta_dot = (float(v) for v in np.asarray(obs).reshape(-1)[:4])
    pos = round(float(np.clip(x, -x_limit, x_limit) + x_limit) / (2 * x_limit) * (width - 1))
    pole = "|" if abs(theta) < 0.02 else ("/" if theta > 0 else "\\")
    top = [" "] * width
    top[pos] = pole
    track = ["-"] * width
    track[pos] = "#"
    numbers = (
        f"x {x:+.3f} m   x_dot {x_dot:+.3f} m/s   theta {theta:+.3f} rad   "
        f"theta_dot {theta_dot:+.3f} rad/s"
    )
    return f"{numbers}\n  {''.join(top)}\n  {''.join(track)}"


def _tictactoe(obs: np.ndarray) -> str:
    from bellmax.envs.tictactoe import render_text

    o = np.rint(np.asarray(obs, np.float64)).astype(int).reshape(9)
    mover = 1 if o.sum() == 0 else -1
    cells = " ".join(str(i) for i in range(9) if o[i] == 0)
    return f"{render_text(o * mover)}\nyou play {'X' if mover == 1 else 'O'}; empty cells: {cells}"


def _numbers(obs: np.ndarray) -> str:
    return "observation: " + ", ".join(f"{v:.4g}" for v in np.asarray(obs).reshape(-1))


def _renderer(env_id: str) -> Callable[[np.ndarray], str]:
    base = env_id.rpartition(":")[2]
    if base.startswith("TicTacToe"):
        return _tictactoe
    if base.startswith("CartPole") and "SwingUp" not in base:
        return cartpole_picture
    return _numbers


class HumanExpert:
    """A person labelling states one by one (see the module docstring)."""

    stateful = False
    name = "human"

    def __init__(
        self,
        action_space: spaces.Space,
        *,
        render: Callable[[np.ndarray], str] = _numbers,
        action_names: tuple[str, ...] | None = None,
        stdin: IO[str] | None = None,
        stdout: IO[str] | None = None,
        save_to: str | os.PathLike | None = None,
    ):
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(
                f"the human expert labels discrete actions; this environment's actions are "
                f"{action_space!r}. Use another expert (lqr, mpc, module:function)."
            )
        self.n = int(action_space.n)
        self.render = render
        self.action_names = action_names
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.save_to = save_to
        self.labels: Dataset | None = None
        """Every label given so far (also in `save_to`)."""

    def _prompt(self) -> str:
        names = self.action_names or ()
        choices = ", ".join(f"{i} {names[i]}" if i < len(names) else str(i) for i in range(self.n))
        return f"action ({choices}; s skip, q quit): "

    def _read(self) -> str | None:
        """One answer: a valid action number as text, 's', or None for quit."""
        while True:
            self.stdout.write(self._prompt())
            self.stdout.flush()
            line = self.stdin.readline()
            if line == "":  # end of input: nobody is left to answer
                return None
            answer = line.strip().lower()
            if answer in ("q", "quit"):
                return None
            if answer in ("s", "skip"):
                return "s"
            if answer.lstrip("-").isdigit() and 0 <= int(answer) < self.n:
                return answer
            self.stdout.write(
                f"  '{line.strip()}' is not an action: type 0..{self.n - 1}, s or q\n"
            )

    def _keep(self, obs: np.ndarray, action: int) -> None:
        if self.labels is None:
            self.labels = Dataset.empty(obs.shape, (), discrete=True)
        self.labels = self.labels.append(obs[None], [action], round_=0)
        if self.save_to is not None:
            save_dataset(self.save_to, self.labels, expert="human")

    def __call__(self, obs: np.ndarray) -> np.ma.MaskedArray:
        obs = np.asarray(obs)
        out = np.zeros(len(obs), np.int64)
        skipped = np.zeros(len(obs), bool)
        for i, o in enumerate(obs):
            self.stdout.write(f"\n{self.render(o)}\n")
            answer = self._read()
            if answer is None:
                raise KeyboardInterrupt("the human expert stopped labelling")
            if answer == "s":
                skipped[i] = True
                continue
            out[i] = int(answer)
            self._keep(o, out[i])
        return np.ma.masked_array(out, skipped)


def human_expert(
    action_space: spaces.Space,
    *,
    env_id: str = "",
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    save_to: str | os.PathLike | None = None,
    **options: Any,
) -> HumanExpert:
    """A `HumanExpert` that shows states the way `env_id`'s are best read (tic-tac-toe's
    board, the cart-pole's picture, else the numbers)."""
    options.setdefault("render", _renderer(env_id))
    if env_id.rpartition(":")[2] == "CartPole-v1":
        options.setdefault("action_names", ("push left", "push right"))
    return HumanExpert(action_space, stdin=stdin, stdout=stdout, save_to=save_to, **options)
