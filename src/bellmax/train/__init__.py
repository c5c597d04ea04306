"""Training infrastructure: atomic file output, run locks and the report writer.

- `io`: atomic writes (`atomic_write_json`, `atomic_savefig`, ...), strict JSON, `FileLock`.
- `report`: `Report`, a self-contained HTML/JSON report.

The scan-driven training driver (`bellmax.train.driver`) and checkpoints
(`bellmax.train.checkpoint`) load on first use: they import the deep-RL algorithms.
"""

# Each module's whole public API (its `__all__`), re-exported as one list kept in one place.
from bellmax.train import io, report
from bellmax.train.io import *  # noqa: F403
from bellmax.train.report import *  # noqa: F403

__all__ = []
__all__ += io.__all__
__all__ += report.__all__

# Submodules load on first use as attributes too (`bellmax.train.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
