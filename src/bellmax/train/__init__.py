"""Training infrastructure: atomic file output and the report writer.

Later: the scan-driven training driver, seed vmap, checkpoints, logging and plots.
"""

from bellmax.train.io import (
    atomic_open,
    atomic_savefig,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    to_jsonable,
    to_strict_json,
)
from bellmax.train.report import Report

__all__ = [
    "Report",
    "atomic_open",
    "atomic_savefig",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "to_jsonable",
    "to_strict_json",
]
