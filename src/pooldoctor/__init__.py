"""pooldoctor: find, explain and stop database connection leaks.

Public API::

    import pooldoctor
    pooldoctor.instrument()            # guard every engine and driver of this process
    ...
    print(pooldoctor.report().to_json())

PYTEST_DONT_REWRITE: `pooldoctor run -- pytest` imports this package before pytest starts, and
pytest would warn that it cannot rewrite its plugin's package (an error under
``filterwarnings = error``); pooldoctor has no assertions for pytest to rewrite.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported at run time (start-up: docs/benchmarks.md)

__version__ = "0.1.0"

__all__ = [
    "Finding",
    "Report",
    "Site",
    "__version__",
    "holds",
    "instrument",
    "pop_stats",
    "report",
    "stats",
    "uninstrument",
]

if TYPE_CHECKING:
    from typing import Any

    from .api import holds, instrument, report, uninstrument
    from .findings import Finding, Site
    from .metrics.stats import pop_stats, stats
    from .reports import Report

_LAZY = {
    "instrument": "api",
    "uninstrument": "api",
    "report": "api",
    "holds": "api",
    "Finding": "findings",
    "Site": "findings",
    "Report": "reports",
    "stats": "metrics",
    "pop_stats": "metrics",
}


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'pooldoctor' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value
