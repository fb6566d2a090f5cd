"""A short memory of pool figures, sampled at most once per interval, for the charts."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

FIELDS = ("used", "idle", "overflow", "waiting")


class History:
    """Per pool key: ``(t, used, idle, overflow, waiting)`` samples, the newest ``maxlen``."""

    def __init__(self, interval: float = 1.0, maxlen: int = 3600) -> None:
        self.interval = interval
        self.maxlen = maxlen
        self._series: dict[str, deque[tuple[float, ...]]] = {}
        self._last = 0.0
        self._lock = threading.Lock()

    def due(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return now - self._last >= self.interval

    def add(self, rows: list[dict[str, Any]], now: float | None = None) -> bool:
        """Record one sample of every row (``key`` and :data:`FIELDS`), if one is due."""
        now = time.time() if now is None else now
        with self._lock:
            if now - self._last < self.interval:
                return False
            self._last = now
            for r in rows:
                s = self._series.get(r["key"])
                if s is None:
                    s = self._series[r["key"]] = deque(maxlen=self.maxlen)
                s.append((round(now, 3), *(int(r.get(f) or 0) for f in FIELDS)))
        return True

    def series(self, key: str, last: int | None = None) -> dict[str, list[float]]:
        """Columns ``t``, ``used``, ``idle``, ``overflow``, ``waiting`` for one pool (the
        newest ``last`` samples, or all)."""
        with self._lock:
            rows = list(self._series.get(key, ()))
        if last is not None:
            rows = rows[-last:] if last > 0 else []
        cols: dict[str, list[float]] = {"t": [r[0] for r in rows]}
        for i, f in enumerate(FIELDS, start=1):
            cols[f] = [r[i] for r in rows]
        return cols
