"""Atomic file writes for the lower layers (core, algorithms) that may not import `train`.

`check_output_path` refuses an output path that cannot be written, and `check_run_dir` a
directory that holds another bellmax command's output (or the same command's earlier output,
unless the user passes --overwrite, or --resume where the command continues its run), before
any work starts; `clear_outputs` removes a command's earlier output that --overwrite replaces.

`atomic_open(path)` yields a temporary file in the target's directory; when the `with` block
succeeds it is flushed, fsynced and renamed over `path` (`os.replace`, atomic on one file
system), so a reader sees the old file or the new one, never half of one. On an exception
the temporary file is removed and `path` is left as it was. `bellmax.train.io` builds its
JSON, text and figure writers on it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = [
    "CHECKPOINT",
    "CONTROLLER_NPZ",
    "DATASET_NPZ",
    "EXPLOITATION_PNG",
    "GUARD_PNG",
    "HUMAN_LABELS_NPZ",
    "IMITATION_JSON",
    "LEARNING_CURVE_PNG",
    "METRICS_CSV",
    "METRICS_JSON",
    "NEURAL_POLICY_MSGPACK",
    "POLICY_MSGPACK",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "RESULT_JSON",
    "RETURNS_PNG",
    "RETURN_VS_LABELS_PNG",
    "ROLLOUTS_PNG",
    "RUN_JSON",
    "RUN_MARKERS",
    "RUN_OUTPUTS",
    "SWEEP_GROUPS",
    "SWEEP_JSON",
    "SWEEP_PLOT",
    "SWEEP_RAY",
    "atomic_open",
    "check_output_path",
    "check_run_dir",
    "clear_outputs",
    "neural_policy_how",
    "switch_name",
]


_SYSTEM_ROOTS = ("/proc", "/sys", "/dev")

# The names of the files a command writes in its output directory, spelled once: the commands
# that write them (`bellmax.train.driver`, `bellmax.train.sweep`, `bellmax.cli.imitate`, `.gps`,
# `.mbrl`) import them from here (core may not import them), and `RUN_MARKERS` and
# `RUN_OUTPUTS` are built from them, so a renamed file cannot leave `check_run_dir` looking for
# the old name, or `clear_outputs` leaving it behind.
RUN_JSON = "run.json"
"""A `bellmax train` run's record: its settings, status and run id (`bellmax.train.driver`)."""
CHECKPOINT = "checkpoint.msgpack"
"""A training state checkpoint: a `bellmax train` run's, and each sweep group's (in its own
folder under the sweep's, never at the sweep's top)."""
METRICS_JSON = "metrics.json"
"""A `bellmax train` run's metrics, every update of every seed."""
METRICS_CSV = "metrics.csv"
"""The same metrics as a table, one row per seed and update."""
LEARNING_CURVE_PNG = "learning_curve.png"
"""A `bellmax train` run's training return against environment steps."""
POLICY_MSGPACK = "policy.msgpack"
"""The trained policies of a `bellmax train` or `bellmax imitate` run (`bellmax.policy`'s
`POLICY_FILE`)."""
SWEEP_JSON = "sweep.json"
"""Marks a directory as one sweep's: its settings' digest (a rerun of the same sweep resumes
there; another sweep is refused unless it overwrites) (`bellmax.train.sweep`)."""
RESULTS_JSON = "results.json"
"""A sweep's results, one record per trial."""
RESULTS_CSV = "results.csv"
"""A sweep's results as a table, one row per trial."""
SWEEP_PLOT = "return_vs_{field}.png"
"""A sweep's plot of the final return against one swept field (`SWEEP_PLOT.format(field=...)`)."""
SWEEP_GROUPS = "groups"
"""The folder of a sweep's group checkpoints (`groups/<g>/`, `groups/ray-<g>/`)."""
SWEEP_RAY = "ray"
"""The folder of a sweep's Ray Tune records."""
IMITATION_JSON = "imitation.json"
"""`bellmax imitate`'s summary (`bellmax.cli.imitate`)."""
DATASET_NPZ = "dataset.npz"
"""`bellmax imitate`'s labels, written as they are gathered."""
HUMAN_LABELS_NPZ = "human_labels.npz"
"""`bellmax imitate --expert human`'s labels, written the moment the person gives each."""
RETURN_VS_LABELS_PNG = "return_vs_labels.png"
"""`bellmax imitate`'s return against the labels used."""
RESULT_JSON = "result.json"
"""`bellmax gps`'s and `bellmax mbrl`'s summary."""
CONTROLLER_NPZ = "controller.npz"
"""`bellmax gps`'s final controller (`bellmax.cli.gps`)."""
NEURAL_POLICY_MSGPACK = "neural_policy.msgpack"
"""`bellmax gps --policy mdgps`'s global neural policy."""


def neural_policy_how(path: str | os.PathLike) -> str:
    """How Python reads the `NEURAL_POLICY_MSGPACK` file at `path`, said where a `Policy`
    is expected and that file (or the run holding it) is given: it acts on the state
    vector, not on observations."""
    return (
        "bellmax.models.through_model.neural_policy_from_bytes(open("
        f"{str(path)!r}, 'rb').read()) gives (policy, params), and policy(params, state) acts"
    )


RETURNS_PNG = "returns.png"
"""`bellmax mbrl`'s return against trials (`bellmax.cli.mbrl`)."""
ROLLOUTS_PNG = "rollouts.png"
"""`bellmax mbrl`'s predicted against real rollouts."""
EXPLOITATION_PNG = "exploitation.png"
"""`bellmax mbrl`'s promised against real returns over the planning horizon."""
GUARD_PNG = "guard.png"
"""`bellmax mbrl --compare-guard`'s guarded against unguarded run."""


#: The files that mark a directory as the output of a bellmax command (any one of them):
#: `check_run_dir` refuses to let another command write there. No file of one command's set
#: is written by another command into its output directory.
RUN_MARKERS: dict[str, tuple[str, ...]] = {
    "train": (RUN_JSON, CHECKPOINT),
    "sweep": (SWEEP_JSON, RESULTS_JSON, RESULTS_CSV),
    "imitate": (IMITATION_JSON, DATASET_NPZ, HUMAN_LABELS_NPZ),
    "gps": (CONTROLLER_NPZ,),
    "mbrl": (RETURNS_PNG, ROLLOUTS_PNG),
}

#: Everything each command writes into its output directory (its markers and the rest): file
#: names, glob patterns (a sweep's plots) and folders (ending in `/`). A run that finds any of
#: them would replace that run's output (`check_run_dir`), and what `clear_outputs` removes
#: when --overwrite lets it. (`bellmax train --log`'s tracker folders are the trackers' own:
#: `bellmax.train.tracking.make_tracker` replaces them.)
RUN_OUTPUTS: dict[str, tuple[str, ...]] = {
    "train": (RUN_JSON, CHECKPOINT, METRICS_JSON, METRICS_CSV, LEARNING_CURVE_PNG, POLICY_MSGPACK),
    "sweep": (
        SWEEP_JSON,
        RESULTS_JSON,
        RESULTS_CSV,
        SWEEP_PLOT.format(field="*"),
        f"{SWEEP_GROUPS}/",
        f"{SWEEP_RAY}/",
    ),
    "imitate": (
        IMITATION_JSON,
        DATASET_NPZ,
        HUMAN_LABELS_NPZ,
        POLICY_MSGPACK,
        RETURN_VS_LABELS_PNG,
    ),
    "gps": (RESULT_JSON, CONTROLLER_NPZ, NEURAL_POLICY_MSGPACK),
    "mbrl": (RESULT_JSON, RETURNS_PNG, ROLLOUTS_PNG, EXPLOITATION_PNG, GUARD_PNG, POLICY_MSGPACK),
}


def switch_name(name: str, option: str) -> str:
    """How a message names the switch `name` (`"overwrite"`, `"resume"`) to a caller who
    names the output directory `option`: the command-line flag (`--overwrite`) after an
    option (`--out`), the keyword argument (`overwrite=True`) after a parameter (`out_dir`)."""
    return f"--{name}" if option.startswith("--") else f"{name}=True"


def check_output_path(
    path: str | os.PathLike, *, kind: str = "file", option: str = "--out"
) -> Path:
    """Refuse an output path before any work starts, with a message that names the fix.

    Checks that the path is not under /proc, /sys or /dev, that it is of the right kind (an
    existing directory where a file is wanted, or an existing file where a directory is
    wanted, is refused), and that its nearest existing ancestor directory is writable. Nothing
    is created.

    Args:
      path: the output file or directory.
      kind: `"file"` or `"dir"`.
      option: the option or argument name used in the message (e.g. `"--out"`).

    Returns:
      The path as a `Path`.

    Raises:
      ValueError: the path cannot be written as a `kind`.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"check_output_path kind must be 'file' or 'dir', got {kind!r}.")
    raw = os.fspath(path)
    if not str(raw).strip():  # Path("") would silently become "." (the current folder)
        raise ValueError(f"{option} is empty: give a path to write to.")
    p = Path(os.path.expanduser(raw))
    try:
        return _check_output_path(p, kind, option)
    except (OSError, RuntimeError) as e:  # a name too long, a symlink loop (RuntimeError)...
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(
            f"{option} {str(p)!r} cannot be used: {reason}. Choose another path."
        ) from e


def _check_output_path(p: Path, kind: str, option: str) -> Path:
    resolved = p.resolve()
    for root in _SYSTEM_ROOTS:
        if resolved == Path(root) or Path(root) in resolved.parents:
            raise ValueError(
                f"{option} {str(p)!r} is under {root}, a system folder: choose a path in your "
                "own directories."
            )
    if kind == "dir" and p.exists() and not p.is_dir():
        raise ValueError(
            f"{option} {str(p)!r} is a file, not a directory: give a directory path "
            "(or remove the file)."
        )
    if kind == "file" and p.is_dir():
        raise ValueError(f"{option} {str(p)!r} is a directory: give a file path inside it.")
    ancestor = p if (kind == "dir" and p.is_dir()) else p.parent
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise ValueError(
            f"{option} {str(p)!r} cannot be created: {str(ancestor)!r} is a file, not a directory."
        )
    if ancestor.exists() and not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(
            f"{option} {str(p)!r} is not writable (no write permission on {str(ancestor)!r}): "
            "choose another path or fix the permissions."
        )
    if kind == "file" and p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{option} {str(p)!r} is read-only: choose another path.")
    return p


def check_run_dir(
    path: str | os.PathLike | None,
    command: str,
    *,
    option: str = "--out",
    overwrite: bool = False,
    resume: bool | None = None,
) -> None:
    """Refuse an output directory whose files `bellmax COMMAND` would replace or mix with.

    A directory where another command left its output (a `bellmax train` run, a sweep, ...:
    `RUN_MARKERS`) is always refused. One that holds the same command's earlier output
    (`RUN_OUTPUTS`) is refused too unless `overwrite` (the new run's files replace the old
    ones: `clear_outputs`) or `resume` (the command continues that run, and checks its
    settings itself). Nothing is created or changed.

    Args:
      path: the output directory (it need not exist); None: the command writes no directory
        (then `overwrite` is refused: there is nothing to overwrite).
      command: the command about to write there (a key of `RUN_MARKERS`, e.g. `"imitate"`).
      option: how the caller names the directory: a command-line option (`"--out"`: the
        messages name the flags, `--overwrite`) or a parameter (`"out_dir"`: they name the
        keyword arguments, `overwrite=True`; `switch_name`).
      overwrite: whether the caller may replace the command's own earlier output.
      resume: whether the caller continues the command's own earlier run there (`bellmax
        train --resume`; a sweep, which resumes the same sweep and refuses another itself);
        None: the command cannot continue a run, so the refusal does not offer it.

    Raises:
      ValueError: the directory holds another command's output, or this command's own
        without `overwrite` or `resume` (the message names the command and its files, and
        the fixes: another directory, `resume` where the command has it, `overwrite`), or
        `overwrite` without a directory.
    """
    if command not in RUN_MARKERS:
        raise ValueError(
            f"check_run_dir command must be one of {sorted(RUN_MARKERS)}, got {command!r}."
        )
    replace = switch_name("overwrite", option)
    if path is None:
        if overwrite:
            raise ValueError(
                f"{replace} replaces the output of an earlier `bellmax {command}` run in "
                f"{option}: give {option} DIR (or drop {replace})."
            )
        return
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.is_dir():
        return
    for other, names in RUN_MARKERS.items():
        found = _present(p, names)
        if other != command and found:
            raise ValueError(
                f"{option} {str(p)!r} holds a `bellmax {other}` run ({', '.join(found)}); "
                f"`bellmax {command}` would write its files among it: pick another {option}."
            )
    own = _present(p, RUN_OUTPUTS[command])
    if own and not overwrite and not resume:
        cont = "" if resume is None else f"{switch_name('resume', option)} to continue it, "
        raise ValueError(
            f"{option} {str(p)!r} holds an earlier `bellmax {command}` run ({', '.join(own)}), "
            f"which this run would replace: give another {option}, {cont}or {replace} to "
            "replace it."
        )


def clear_outputs(path: str | os.PathLike, command: str) -> list[str]:
    """Remove what an earlier `bellmax COMMAND` run wrote in `path` (`RUN_OUTPUTS[command]`),
    so that a run allowed to overwrite it (`check_run_dir(..., overwrite=True)`) leaves no
    file of the run it replaces beside its own. Call it once the run is about to write.
    Nothing else in the directory is touched; a missing directory is fine.

    Returns:
      The names removed.
    """
    if command not in RUN_OUTPUTS:
        raise ValueError(
            f"clear_outputs command must be one of {sorted(RUN_OUTPUTS)}, got {command!r}."
        )
    p = Path(os.path.expanduser(os.fspath(path)))
    if not p.is_dir():
        return []
    removed = _present(p, RUN_OUTPUTS[command])
    for name in removed:
        target = p / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    return removed


def _present(directory: Path, entries: tuple[str, ...]) -> list[str]:
    """The names in `directory` that `entries` (names, glob patterns, folders ending in `/`)
    match, in the entries' order."""
    found: list[str] = []
    for entry in entries:
        if entry.endswith("/"):
            if (directory / entry[:-1]).is_dir():
                found.append(entry[:-1])
        elif any(c in entry for c in "*?["):
            found.extend(sorted(m.name for m in directory.glob(entry)))
        elif (directory / entry).exists():
            found.append(entry)
    return found


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort; not every platform can open a dir)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None
) -> Iterator[IO]:
    """Open a temporary file that replaces `path` only when the `with` block succeeds.

    Args:
      path: the file to (re)write; missing parent directories are created.
      mode: `"wb"` (binary) or `"w"` (text).
      encoding: text encoding for mode `"w"` (default UTF-8).

    Returns:
      A context manager yielding the open temporary file. On an exception inside the block
      the temporary file is deleted, `path` is untouched and the exception propagates.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}.")
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write file {str(target)!r}: it is a directory.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 applies the umask, unlike tempfile (which always uses 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if mode == "wb":
            f = os.fdopen(fd, "wb")
        else:
            f = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline="")
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
