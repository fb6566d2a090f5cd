"""Who holds a pool's connections, grouped by site: the heart of every PD103 message."""

from __future__ import annotations

import time
from typing import Any

from ..guard import GUARD, fmt_s
from ..ledger import Hold
from ..sites import site_of


def holders_of(pool_info: Any) -> list[Hold]:
    """The live holds of one pool (``Hold.pool`` is the pool's info object)."""
    return [h for h in GUARD.ledger.holds() if h.pool is pool_info and not h.ended]


def holders_summary(holds: list[Hold], limit: int = 10) -> list[dict[str, Any]]:
    """Group holds by site: count, oldest age, threads — oldest group first."""
    now = time.monotonic()
    groups: dict[Any, list[Hold]] = {}
    for h in holds:
        groups.setdefault(h.key, []).append(h)
    out: list[dict[str, Any]] = []
    for hs in sorted(groups.values(), key=lambda g: min(h.since for h in g)):
        site = site_of(hs[0].frames)
        oldest = max(now - h.since for h in hs)
        threads = sorted({h.task or h.thread_name for h in hs})
        where = site.short() if site else "an unknown site"
        more = f" (+{len(threads) - 5} more)" if len(threads) > 5 else ""
        shown = ", ".join(threads[:5]) + more
        out.append({
            "site": site.to_dict() if site else None,
            "count": len(hs),
            "oldest_s": round(oldest, 3),
            "threads": threads[:20],
            "text": f"{len(hs)} x {where} (oldest {fmt_s(oldest)}; {shown})",
        })
    return out[:limit]




def holders_lines(head: str, holders: list[dict[str, Any]], n_holds: int) -> list[str]:
    """The lines added to a pool's error: ``head``, then one line per group of holders."""
    lines = [head + (" ; held by:" if holders else "")]
    lines += [f"  {g['text']}" for g in holders]
    if n_holds and not holders:
        lines.append("  (holders unknown)")
    return lines


def add_to_error(e: BaseException, lines: list[str]) -> None:
    """Append ``lines`` to the message of ``e`` in place (its type, and so the caller's
    ``except`` clauses, stay); once only, and a message that is not a string is left alone.
    Used by every pool library's adapter (``adapters/``) and by SQLAlchemy's wiring."""
    original = e.args[0] if e.args else ""
    if isinstance(original, str) and "exhausted:" not in original:
        text = "\n".join(lines)
        e.args = ((original + "\n" + text) if original else text, *e.args[1:])
