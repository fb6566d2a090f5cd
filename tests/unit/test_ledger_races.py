"""A hold described from the watchdog's thread while its own thread changes it."""

from __future__ import annotations

import time
from typing import Any

from pooldoctor.ledger import Hold


class _Owner:
    pass


class _EndingHold(Hold):
    """A hold whose transaction ends (another thread sets ``txn_since = None``) between two
    reads of the attribute: the first read sees it open, every later one sees it closed."""

    __slots__ = ("reads",)

    @property  # type: ignore[override]
    def txn_since(self) -> float | None:
        self.reads += 1
        return time.monotonic() - 2.0 if self.reads == 1 else None


def test_describe_reads_the_transaction_start_once() -> None:
    owner = _Owner()
    h = _EndingHold(owner)
    h.reads = 0
    h.id, h.pool, h.frames, h.since = 1, "pool", (), time.monotonic()
    h.thread_id, h.thread, h.pid, h.server_id = 0, None, 0, None
    d: dict[str, Any] = h.describe()  # raised TypeError (float - None) before
    assert h.reads == 1
    assert 1.9 < d["transaction_age_s"] < 60
