"""Pool and leak metrics: a plain dict (:func:`stats`), Prometheus and OpenTelemetry exporters.

``prometheus`` and ``otel`` import their libraries only when used (extras ``prometheus`` and
``otel``). Call :func:`enable` at start-up so timings cover the whole run; the exporters and
:func:`stats` call it too.
"""

from __future__ import annotations

from .recorder import disable, enable
from .stats import pop_stats, stats

__all__ = ["disable", "enable", "pop_stats", "stats"]
