"""Which columns of the connection list fit a terminal, and how wide each is.

Id, state, the ages and the holding site are what a person acts on: they are never cut.
The other columns are shown whole while they fit and dropped, least useful first, when the
terminal is narrow (the application is cut before it is dropped); the statement takes the
width that is left.
"""

from __future__ import annotations

from collections.abc import Sequence

from .render import COLUMNS

WHOLE = ("id", "state", "connected", "in state", "xact", "held at")
# dropped first to last when the width is short (the query before the last two ages)
DROP_ORDER = ("database", "user", "client", "application", "query", "connected", "xact")
MIN_QUERY = 12
SHRINK = {"application": 12}  # may be cut down to this width before it is dropped
RIGHT = ("id", "connected", "in state", "xact")


def layout(rows: Sequence[Sequence[str]], width: int, query_width: int) -> dict[str, int]:
    """Column name -> width for the columns kept (in :data:`COLUMNS` order), for a table
    whose columns are separated by one space and whose rows are ``rows`` (COLUMNS order)."""
    natural = {name: max([len(name), *(len(r[i]) for r in rows)])
               for i, name in enumerate(COLUMNS)}
    natural["query"] = max(len("query"), min(query_width, natural["query"]))
    kept = list(COLUMNS)

    def used(names: Sequence[str]) -> int:
        return sum(natural[n] for n in names) + len(names) - 1

    def others() -> list[str]:
        return [n for n in kept if n != "query"]

    def excess() -> int:
        query = 1 + min(MIN_QUERY, natural["query"]) if "query" in kept else 0
        return used(others()) + query - width

    for name in DROP_ORDER:
        over = excess()
        if over <= 0:
            break
        if name in SHRINK and natural[name] - over >= SHRINK[name]:
            natural[name] -= over  # cut (with an ellipsis) rather than dropped
            break
        kept.remove(name)
    widths = {n: natural[n] for n in kept}
    if "query" in widths:
        widths["query"] = max(min(natural["query"], width - used(others()) - 1), 1)
    return widths
