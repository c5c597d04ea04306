"""Cassandra's `.pomdp` text format, read and written.

The format of pomdp-solve, used by SARSOP/APPL, the R package pomdp and POMDPs.jl
(A. R. Cassandra, "POMDP file format", pomdp.org; SARSOP ships a copy under doc/).
A file is a preamble followed by `T:`, `O:` and `R:` entries::

    discount: 0.95
    values: reward                      # or cost (rewards negated)
    states: tiger-left tiger-right      # or a count: states: 2
    actions: listen open-left open-right
    observations: 2
    start: 0.5 0.5                      # or: start: uniform | start: <state>
                                        #     start include: <states> | start exclude: <states>
    T: listen identity                  # T: <a> <matrix | identity | uniform>
    T: open-left : * uniform            # T: <a> : <s> <row | uniform>
    T: * : 0 : 1 0.0                    # T: <a> : <s> : <s'> <prob>
    O: listen : tiger-left 0.85 0.15    # O: <a> : <s'> <row | uniform>, O: <a> <matrix | uniform>
    O: * : * : 0 0.5                    # O: <a> : <s'> : <o> <prob>
    R: listen : * : * : * -1            # R: <a> : <s> : <s'> : <o> <value>,
                                        # R: <a> : <s> : <s'> <row over o>,
                                        # R: <a> : <s> <matrix s' x o>

`*` is a wildcard in any position, states/actions/observations are named or 0-based
indices, numbers may continue over lines, `#` starts a comment, and a later entry
overrides an earlier one where they overlap. Rewards that depend on `(s', o)` are reduced
to expected rewards `R[s, a]` (`bellmax.pomdp.model.expected_rewards`), which is all an
optimal policy needs; `save_pomdp` writes those. A malformed file raises
`PomdpFormatError` naming the line; a transition or observation row that does not sum to
one names the last line that wrote it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from bellmax.core.errors import BellmaxError
from bellmax.core.io import atomic_open
from bellmax.core.mdp import ROW_SUM_TOL
from bellmax.pomdp.model import TabularPOMDP, expected_rewards

__all__ = ["PomdpFormatError", "format_pomdp", "load_pomdp", "parse_pomdp", "save_pomdp"]

_TOKEN = re.compile(r"[^\s:]+|:")
_KEYWORDS = ("discount", "values", "states", "actions", "observations", "start", "T", "O", "R")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_\-]*\Z")


class PomdpFormatError(BellmaxError, ValueError):
    """A `.pomdp` file that does not follow the format; the message names the line."""


class _Tokens:
    """The file's tokens with their line numbers, and a cursor."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.toks: list[tuple[str, int]] = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            line = line.split("#", 1)[0]
            self.toks.extend((t, lineno) for t in _TOKEN.findall(line))
        self.i = 0
        self.last_line = len(text.splitlines())

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.toks[j][0] if j < len(self.toks) else None

    def line(self) -> int:
        return self.toks[self.i][1] if self.i < len(self.toks) else self.last_line

    def error(self, msg: str, line: int | None = None) -> PomdpFormatError:
        return PomdpFormatError(
            f"{self.source}, line {self.line() if line is None else line}: {msg}"
        )

    def next(self, what: str) -> str:
        if self.i >= len(self.toks):
            raise self.error(f"the file ends where {what} was expected.")
        tok = self.toks[self.i][0]
        self.i += 1
        return tok

    def colon(self, after: str) -> None:
        tok = self.peek()
        if tok != ":":
            raise self.error(f"expected ':' after {after!r}, found {tok!r}.")
        self.i += 1

    def at_section(self) -> bool:
        """Whether the cursor is at a keyword that starts a new section (or at the end)."""
        tok = self.peek()
        if tok is None:
            return True
        if tok not in _KEYWORDS:
            return False
        nxt = self.peek(1)
        return nxt == ":" or (tok == "start" and nxt in ("include", "exclude"))

    def number(self, what: str) -> float:
        line = self.line()
        tok = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            hint = (
                " 'reset' is an extension of some parsers, not part of Cassandra's format: "
                "write the transitions that reset the problem as rows of T."
                if tok == "reset"
                else ""
            )
            raise self.error(f"expected {what}, found {tok!r}.{hint}", line) from None
        if not np.isfinite(value):
            raise self.error(f"{what} must be finite, found {tok!r}.", line)
        return value

    def numbers(self, n: int, what: str) -> np.ndarray:
        out = np.empty(n)
        for k in range(n):
            if self.at_section():
                raise self.error(
                    f"{what} needs {n} numbers, found {k} before {self.peek() or 'the end of the file'!r}."
                )
            out[k] = self.number(f"a number ({what}, {k + 1} of {n})")
        return out


class _Space:
    """States, actions or observations: a count (`names` None: "0".."n-1", made when the
    model is built, so a huge declared count costs nothing before its size is checked) or a
    list of names."""

    def __init__(self, kind: str, names: list[str] | None, count: int | None = None):
        self.kind = kind
        self._names = names
        self.n = len(names) if names is not None else int(count or 0)
        self.index = {n: i for i, n in enumerate(names)} if names is not None else {}

    @property
    def names(self) -> list[str]:
        if self._names is None:
            self._names = [str(i) for i in range(self.n)]
        return self._names

    def __len__(self) -> int:
        return self.n

    def lookup(self, tok: str, toks: _Tokens, line: int) -> int:
        if tok in self.index:
            return self.index[tok]
        if re.fullmatch(r"\d+", tok):
            k = int(tok)
            if k < self.n:
                return k
            raise toks.error(
                f"{self.kind[:-1]} index {k} is out of range: there are {self.n} {self.kind} (0-based).",
                line,
            )
        shown = self.names[:20] if self._names is not None else map(str, range(min(self.n, 20)))
        raise toks.error(
            f"unknown {self.kind[:-1]} {tok!r}; declared {self.kind}: {' '.join(shown)}"
            + (" ..." if self.n > 20 else "")
            + ".",
            line,
        )

    def ref(self, toks: _Tokens, what: str) -> Any:
        """One reference: a name, an index, or `*` (all, as a slice)."""
        line = toks.line()
        tok = toks.next(what)
        if tok == "*":
            return slice(None)
        if tok == ":":
            raise toks.error(f"expected {what}, found ':'.", line)
        return self.lookup(tok, toks, line)


def _space(toks: _Tokens, kind: str) -> _Space:
    line = toks.line()
    items = []
    while not toks.at_section():
        items.append(toks.next(kind))
    if not items:
        raise toks.error(f"'{kind}:' needs a count or a list of names.", line)
    if len(items) == 1 and re.fullmatch(r"\d+", items[0]):
        n = int(items[0])
        if n < 1:
            raise toks.error(f"'{kind}:' count must be at least 1, got {n}.", line)
        return _Space(kind, None, n)
    seen: set[str] = set()
    for name in items:  # (one pass: a long list stays quick)
        if name in seen:
            raise toks.error(f"{kind} name {name!r} is declared twice.", line)
        seen.add(name)
    return _Space(kind, items)


def parse_pomdp(text: str, *, source: str = "<string>") -> TabularPOMDP:
    """Read a POMDP from `.pomdp` text.

    Args:
      text: the file's contents.
      source: the name used in error messages (a path).

    Returns:
      A `TabularPOMDP` with expected rewards (costs negated under `values: cost`) and the
      file's names.

    Raises:
      PomdpFormatError: a malformed file, with its line number.
      TypeError: `text` is not a `str` (bytes, a path).
    """
    if not isinstance(text, str):
        raise TypeError(
            f"parse_pomdp takes the file's text (str), got {type(text).__name__}; decode the "
            "bytes first (data.decode()), or use load_pomdp(path) to read a file."
        )
    toks = _Tokens(text, source)
    pre: dict[str, Any] = {}
    lines: dict[str, int] = {}
    start: np.ndarray | None = None
    entries: list[tuple[str, int, tuple, Any]] = []
    while toks.peek() is not None:
        line = toks.line()
        key = toks.next("a section")
        if key not in _KEYWORDS or not (
            toks.peek() == ":" or (key == "start" and toks.peek() in ("include", "exclude"))
        ):
            raise toks.error(
                f"expected one of {', '.join(k + ':' for k in _KEYWORDS)} here, found {key!r}.",
                line,
            )
        if key in ("T", "O", "R"):
            missing = [k for k in ("discount", "states", "actions", "observations") if k not in pre]
            if missing:
                raise toks.error(
                    f"'{key}:' before the preamble declared {', '.join(missing)}; put "
                    "discount:, states:, actions: and observations: first.",
                    line,
                )
            toks.colon(key)
            entries.append(_entry(toks, key, line, pre))
            continue
        if key == "start":
            if "states" not in pre:
                raise toks.error("'start' must come after 'states:'.", line)
            start = _start(toks, pre["states"], line)
            continue
        toks.colon(key)
        if key in pre:
            raise toks.error(f"'{key}:' is declared twice (first on line {lines[key]}).", line)
        lines[key] = line
        if key == "discount":
            pre[key] = toks.number("the discount factor")
            if not 0.0 <= pre[key] <= 1.0:
                raise toks.error(f"discount must be in [0, 1], got {pre[key]:g}.", line)
        elif key == "values":
            tok = toks.next("reward or cost")
            if tok not in ("reward", "cost"):
                raise toks.error(f"'values:' must be 'reward' or 'cost', found {tok!r}.", line)
            pre[key] = tok
        else:
            pre[key] = _space(toks, key)
            _check_dense_size(toks, pre, line)
        if not toks.at_section():
            raise toks.error(f"unexpected {toks.peek()!r} after '{key}:'.")
    missing = [k for k in ("discount", "states", "actions", "observations") if k not in pre]
    if missing:
        raise toks.error(
            f"the file never declares {', '.join(k + ':' for k in missing)}.", toks.last_line
        )
    return _build(toks, pre, start, entries)


def _memory_bytes() -> int:
    """This machine's physical memory (64 GiB where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # (Windows has no sysconf)
        return 64 * 2**30


def _check_dense_size(toks: _Tokens, pre: dict, line: int) -> None:
    """Once states, actions and observations are declared: refuse a model whose dense
    arrays (T `[A, S, S]` and O `[A, S, Z]`, float64) exceed this machine's memory, before
    anything of that size is allocated (it was a MemoryError, or the machine swapping)."""
    if not all(k in pre for k in ("states", "actions", "observations")):
        return
    S, A, Z = len(pre["states"]), len(pre["actions"]), len(pre["observations"])
    need, have = 8 * A * S * (S + Z), _memory_bytes()
    if need > have:
        raise toks.error(
            f"the model declares {S} states, {A} actions and {Z} observations: its dense "
            f"transition and observation arrays (float64) need {need / 2**30:.3g} GiB, more "
            f"than this machine's {have / 2**30:.3g} GiB of memory. bellmax's tabular POMDPs "
            "hold the whole model in memory, densely: it must fit.",
            line,
        )


def _start(toks: _Tokens, states: _Space, line: int) -> np.ndarray:
    S = len(states)
    mode = toks.next("start")
    if mode in ("include", "exclude"):
        toks.colon(f"start {mode}")
        chosen = np.zeros(S, dtype=bool)
        while not toks.at_section():
            ln = toks.line()
            chosen[states.lookup(toks.next("a state"), toks, ln)] = True
        if not chosen.any():
            raise toks.error(f"'start {mode}:' needs a list of states.", line)
        mask = chosen if mode == "include" else ~chosen
        if not mask.any():
            raise toks.error("'start exclude:' excludes every state.", line)
        return mask / mask.sum()
    if mode != ":":
        raise toks.error(f"expected ':' after 'start', found {mode!r}.", line)
    first = toks.peek()
    if first == "uniform":
        toks.next("uniform")
        return np.full(S, 1.0 / S)
    single = _section_at(toks, toks.i + 1)
    if (
        first is not None
        and single
        and (first in states.index or (S > 1 and re.fullmatch(r"\d+", first)))
    ):
        b = np.zeros(S)
        b[states.lookup(toks.next("a state"), toks, line)] = 1.0
        return b
    b = toks.numbers(S, "the start distribution")
    if np.any(b < 0) or abs(b.sum() - 1.0) > ROW_SUM_TOL * max(1, S) ** 0.5:
        raise toks.error(
            f"the start distribution sums to {b.sum():.10g} (and must be >= 0); it must sum to 1.",
            line,
        )
    return b


def _section_at(toks: _Tokens, j: int) -> bool:
    i, toks.i = toks.i, j
    try:
        return toks.at_section()
    finally:
        toks.i = i


def _entry(toks: _Tokens, key: str, line: int, pre: dict) -> tuple[str, int, tuple, Any]:
    """One T/O/R entry: (kind, line, references, values or a keyword)."""
    S, A, Z = len(pre["states"]), pre["actions"], len(pre["observations"])
    second = pre["observations"] if key == "O" else pre["states"]
    refs = [A.ref(toks, "an action")]
    # positions after the action: T: s, s'; O: s', o; R: s, s', o
    spaces = {
        "T": [pre["states"], pre["states"]],
        "O": [pre["states"], pre["observations"]],
        "R": [pre["states"], pre["states"], pre["observations"]],
    }[key]
    while len(refs) <= len(spaces) and toks.peek() == ":":
        toks.next(":")
        refs.append(spaces[len(refs) - 1].ref(toks, f"a {spaces[len(refs) - 1].kind[:-1]}"))
    full = len(refs) == len(spaces) + 1
    # The shape of the numbers that follow.
    rest = [len(s) for s in spaces[len(refs) - 1 :]]
    if full:
        return key, line, tuple(refs), toks.number(f"the {key} value")
    word = toks.peek()
    if word in ("uniform", "identity") and key != "R":
        toks.next(word)
        if word == "identity" and not (key == "T" and len(refs) == 1):
            raise toks.error(
                "'identity' is only allowed for a whole transition matrix ('T: <action> identity').",
                line,
            )
        return key, line, tuple(refs), word
    del second, S, Z
    n = int(np.prod(rest))
    values = toks.numbers(n, f"this {key} {'row' if len(rest) == 1 else 'matrix'}")
    return key, line, tuple(refs), values.reshape(rest)


def _build(toks: _Tokens, pre: dict, start: np.ndarray | None, entries: list) -> TabularPOMDP:
    states, actions, obs = pre["states"], pre["actions"], pre["observations"]
    S, A, Z = len(states), len(actions), len(obs)
    T = np.zeros((A, S, S))
    Ob = np.zeros((A, S, Z))
    t_line = np.zeros((A, S), dtype=np.int64)
    o_line = np.zeros((A, S), dtype=np.int64)
    r_entries = []
    for key, line, refs, value in entries:
        if key == "R":
            r_entries.append((line, refs, value))
            continue
        arr, lines, width = (T, t_line, S) if key == "T" else (Ob, o_line, Z)
        if isinstance(value, str):
            block = np.eye(S) if value == "identity" else np.full(width, 1.0 / width)
        else:
            block = value
        if isinstance(block, float) or np.ndim(block) == 0:
            if not 0.0 <= float(block) <= 1.0:
                raise toks.error(f"a probability must be in [0, 1], got {float(block):g}.", line)
        elif np.any(block < 0):
            raise toks.error(f"probabilities must be >= 0, found {block.min():g}.", line)
        if len(refs) == 1 and np.ndim(block) == 1:  # uniform for a whole matrix: every row
            block = np.broadcast_to(block, (S, width))
        arr[refs] = block
        lines[refs[:2]] = line
    for key, arr, lines, what in (
        ("T", T, t_line, "next states"),
        ("O", Ob, o_line, "observations"),
    ):
        sums = arr.sum(axis=2)
        off = np.argwhere(np.abs(sums - 1.0) > ROW_SUM_TOL * max(1, arr.shape[2]) ** 0.5)
        if off.size:
            a, s = off[0]
            where = f"last set on line {lines[a, s]}" if lines[a, s] else "never set in the file"
            s_kind = "state" if key == "T" else "next state"
            raise toks.error(
                f"{key} for action {actions.names[a]!r}, {s_kind} {states.names[s]!r} sums to "
                f"{sums[a, s]:.10g} over the {what}, not 1 ({where}); each row must be a "
                "probability distribution.",
                int(lines[a, s]) or toks.last_line,
            )
    # Rewards: keep the s' and o axes only where some entry tells them apart.
    need_sp = any(len(refs) < 3 or not isinstance(refs[2], slice) for _, refs, _ in r_entries)
    need_o = any(len(refs) < 4 or not isinstance(refs[3], slice) for _, refs, _ in r_entries)
    R4 = np.zeros((A, S, S if need_sp else 1, Z if need_o else 1))
    for _line, refs, value in r_entries:
        R4[refs] = value
    R = expected_rewards(T, Ob, R4)
    if pre.get("values") == "cost":
        R = -R
    return TabularPOMDP(
        T,
        Ob,
        R,
        gamma=pre["discount"],
        b0=start,
        states=states.names,
        actions=actions.names,
        observations=obs.names,
        name=Path(toks.source).stem if toks.source != "<string>" else "",
    )


def load_pomdp(path: str | os.PathLike) -> TabularPOMDP:
    """Read a `.pomdp` file (see `parse_pomdp`).

    Raises:
      FileNotFoundError: no such file.
      PomdpFormatError: a malformed file, with its line number.
    """
    p = Path(path)
    if p.is_dir():
        raise FileNotFoundError(f"{str(p)!r} is a directory: give the path of a .pomdp file.")
    if not p.is_file():
        raise FileNotFoundError(f"no POMDP file {str(p)!r}: give the path of a .pomdp file.")
    try:
        text = p.read_text(encoding="utf-8-sig")  # (a BOM, as Windows editors may write)
    except UnicodeDecodeError as e:
        raise PomdpFormatError(
            f"{str(p)!r} is not a text .pomdp file (byte {e.start} is not UTF-8 text); give "
            "the path of a .pomdp file in Cassandra's format."
        ) from None
    return parse_pomdp(text, source=str(p))


def _fmt(x: float) -> str:
    return repr(float(x)) if x != int(x) else str(int(x))


def _ids(names: tuple[str, ...]) -> str:
    """The declaration: the names when they are all valid identifiers, else the count."""
    if all(_NAME.match(n) for n in names) and names != tuple(str(i) for i in range(len(names))):
        return " ".join(names)
    return str(len(names))


def format_pomdp(pomdp: TabularPOMDP) -> str:
    """The `.pomdp` text of a POMDP (expected rewards as `R: a : s : * : *`; round-trips exactly).

    Dense matrices are written whole, sparse ones (under a quarter non-zero) entry by entry;
    numbers use Python's shortest exact representation.
    """
    T = np.asarray(pomdp.T, np.float64)
    Ob = np.asarray(pomdp.O, np.float64)
    R = np.asarray(pomdp.R, np.float64)
    A, S, Z = T.shape[0], T.shape[1], Ob.shape[2]
    snames = pomdp.states if _ids(pomdp.states) != str(S) else tuple(map(str, range(S)))
    anames = pomdp.actions if _ids(pomdp.actions) != str(A) else tuple(map(str, range(A)))
    onames = pomdp.observations if _ids(pomdp.observations) != str(Z) else tuple(map(str, range(Z)))
    out = [
        f"# {pomdp.name or 'POMDP'}: written by bellmax ({S} states, {A} actions, {Z} observations)",
        f"discount: {_fmt(pomdp.gamma)}",
        "values: reward",
        f"states: {_ids(pomdp.states)}",
        f"actions: {_ids(pomdp.actions)}",
        f"observations: {_ids(pomdp.observations)}",
        "start: " + " ".join(_fmt(x) for x in np.asarray(pomdp.b0, np.float64)),
        "",
    ]
    for key, arr, cols in (("T", T, snames), ("O", Ob, onames)):
        for a in range(A):
            m = arr[a]
            if key == "T" and np.array_equal(m, np.eye(S)):
                out.append(f"T: {anames[a]} identity")
            elif np.count_nonzero(m) * 4 < m.size:
                for s, c in zip(*np.nonzero(m), strict=True):
                    out.append(f"{key}: {anames[a]} : {snames[s]} : {cols[c]} {_fmt(m[s, c])}")
            else:
                out.append(f"{key}: {anames[a]}")
                out.extend(" ".join(_fmt(x) for x in row) for row in m)
        out.append("")
    for s, a in zip(*np.nonzero(R), strict=True):
        out.append(f"R: {anames[a]} : {snames[s]} : * : * {_fmt(R[s, a])}")
    return "\n".join(out) + "\n"


def save_pomdp(pomdp: TabularPOMDP, path: str | os.PathLike) -> Path:
    """Write `format_pomdp(pomdp)` to `path` atomically; returns the path.

    Raises:
      TypeError: `pomdp` is not a `TabularPOMDP` (the arguments the other way round, as
        `save_mdp(path, mdp)` takes them, are named).
    """
    if not isinstance(pomdp, TabularPOMDP):
        swapped = isinstance(path, TabularPOMDP) and isinstance(pomdp, str | os.PathLike)
        raise TypeError(
            "save_pomdp takes (pomdp, path): the model first; write save_pomdp(pomdp, "
            f"{str(pomdp)!r})."
            if swapped
            else f"save_pomdp needs a TabularPOMDP first, got {type(pomdp).__name__}."
        )
    with atomic_open(path, "w") as f:
        f.write(format_pomdp(pomdp))
    return Path(path)
