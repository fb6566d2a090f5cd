"""`pooldoctor top`: a refreshing rich view of a server's connections.

Keys while live (a terminal): ``s`` next sort order, ``i`` show/hide idle connections,
``q`` quit. Without a terminal, or with ``--iterations``, it prints plain views.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .columns import RIGHT, layout
from .filters import SORT_KEYS, ConnFilter, sort_conns
from .model import ACTIVE, IDLE, IDLE_TXN, IDLE_TXN_ABORTED, ServerConn, Snapshot
from .render import COLUMNS, conn_rows, header
from .sql import truncate

_STYLE = {ACTIVE: "green", IDLE: "dim", IDLE_TXN: "yellow", IDLE_TXN_ABORTED: "red"}


class View:
    """What is shown: filter, sort order, idle shown or not."""

    def __init__(self, flt: ConnFilter, sort: str, rows: int | None, query_width: int) -> None:
        self.flt = flt
        self.sort = sort
        self.rows = rows
        self.query_width = query_width
        self.show_idle = True
        self.live = False  # keys work (shown in the footer)

    def conns(self, snap: Snapshot) -> list[ServerConn]:
        shown = (c for c in snap.conns if self.flt(c) and (self.show_idle or c.state != IDLE))
        return sort_conns(shown, self.sort)

    def key(self, ch: str) -> bool:
        """Apply a key; False to quit."""
        if ch in ("q", "Q", "\x03"):
            return False
        if ch == "s":
            keys = list(SORT_KEYS)
            self.sort = keys[(keys.index(self.sort) + 1) % len(keys)]
        elif ch == "i":
            self.show_idle = not self.show_idle
        return True

    def build(self, snap: Snapshot, height: int | None = None, width: int = 160) -> Group:
        conns = self.conns(snap)
        limit = self.rows or (max(height - 8 - len(snap.notes), 5) if height else None)
        rows = conn_rows(conns[:limit])
        widths = layout(rows, width, self.query_width)
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold",
                      expand=False)
        for name, w in widths.items():
            table.add_column(name, justify="right" if name in RIGHT else "left",
                             no_wrap=True, overflow="ellipsis", width=w)
        keep = [i for i, name in enumerate(COLUMNS) if name in widths]
        for c, row in zip(conns[:limit], rows):
            cells = [truncate(row[i], widths[COLUMNS[i]]) for i in keep]
            table.add_row(*cells, style=_STYLE.get(c.state))
        more = len(conns) - len(conns[:limit])
        foot = (f"{len(conns)} of {snap.total} shown, sort {self.sort}, "
                f"idle {'shown' if self.show_idle else 'hidden'}"
                + (f", {more} more below" if more > 0 else "")
                + ("  [s] sort  [i] idle  [q] quit" if self.live else ""))
        return Group(Text("\n".join(header(snap))), table, Text(foot, style="dim"))


def run(take: Callable[[], Snapshot], flt: ConnFilter, sort: str, *, interval: float,
        iterations: int, rows: int | None, query_width: int, live: bool) -> None:
    view = View(flt, sort, rows, query_width)
    if not live:
        # a terminal's own width; a file or a pipe gets wide lines
        console = (Console(highlight=False) if sys.stdout.isatty()
                   else Console(highlight=False, width=max(Console().width, 160)))
        for i in range(iterations):
            if i:
                time.sleep(interval)
            console.print(view.build(take(), width=console.width))
        return
    view.live = True
    _run_live(take, view, interval)


def _run_live(take: Callable[[], Snapshot], view: View, interval: float) -> None:
    from rich.live import Live

    console = Console()
    with _cbreak() as keys, Live(console=console, screen=True, auto_refresh=False) as live:
        while True:
            snap = take()
            live.update(view.build(snap, console.height, console.width), refresh=True)
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                ch = keys(left)
                if ch is None:
                    continue
                if not view.key(ch):
                    return
                live.update(view.build(snap, console.height, console.width), refresh=True)


@contextmanager
def _cbreak() -> Iterator[Callable[[float], str | None]]:
    """Read single keys from the terminal without echo; restored on exit."""
    fd = sys.stdin.fileno()
    try:
        import termios
        import tty

        old: Any = termios.tcgetattr(fd)
        tty.setcbreak(fd)
    except Exception:
        old = None

    def read(timeout: float) -> str | None:
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            return None
        data = os.read(fd, 1)
        return data.decode(errors="ignore") or None

    try:
        yield read
    finally:
        if old is not None:
            import termios

            termios.tcsetattr(fd, termios.TCSADRAIN, old)
