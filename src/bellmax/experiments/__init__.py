"""Reproductions of published experiments, each writing PNG figures and JSON data.

`bellmax reproduce sutton-barto NAME --out DIR` runs one; `--list` names them. This package
sits beside `train/`: it uses the algorithm families and the report/io helpers, and only the
CLI imports it.
"""

from bellmax.experiments.base import Experiment, ExperimentContext, run_experiment

__all__ = ["Experiment", "ExperimentContext", "run_experiment"]

# Submodules load on first use as attributes too (`bellmax.experiments.<module>` after `import bellmax`).
from bellmax.core.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {})
