"""`pooldoctor snapshot|top URL`: the server's connections now, once or live (PostgreSQL,
MySQL/MariaDB); `watch` and `kill` are in their own modules."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..reports import Report, use_color
from .common import FORMAT_OPTION, fail
from .serveropts import (
    DURATION,
    parse_filter,
    probing,
    server_args,
    shown_conns,
    take_snapshot,
    view_options,
)

if TYPE_CHECKING:
    from ..server.model import Snapshot

# ----------------------------------------------------------------------------- snapshot


@click.command()
@server_args
@view_options
@FORMAT_OPTION
@click.option("--no-groups", is_flag=True, help="Text: leave out the group tables.")
def snapshot(url: str, timeout: float, runtime_dir: str | None, no_attribution: bool,
             filters: tuple[str, ...], sort: str, query_width: int, fmt: str,
             no_groups: bool) -> None:
    """One look at every connection the server at URL holds (idle ones included).

    Totals against the limit, counts by state, groups by user, database, client and
    application, and each connection with its ages, last statement and, for guarded
    processes on this machine, the site that holds it. Findings PD301, PD302 and PD304 use
    the `watch` defaults.
    """
    from ..server.render import render_snapshot
    from ..server.watch import Watcher

    flt = parse_filter(filters)
    with probing(url, timeout) as probe:
        snap = take_snapshot(probe, runtime_dir, not no_attribution)
    shown = shown_conns(snap, flt, sort)
    findings = Watcher().observe(snap)
    if fmt == "json":
        data = snap.to_dict()
        data["connections"] = [snap.conn_dict(c) for c in shown]
        data["shown"] = len(shown)
        click.echo(Report(findings, extra={"snapshot": data}).to_json())
        return
    click.echo(render_snapshot(snap, shown, query_width=query_width, groups=not no_groups),
               nl=False)
    if findings:
        click.echo("")
        click.echo(Report(findings).render_text(color=use_color(sys.stdout), stacks=False),
                   nl=False)


# ----------------------------------------------------------------------------- top


@click.command()
@server_args
@view_options
@click.option("--interval", type=DURATION, default=2.0, show_default=True,
              help="Seconds between refreshes.")
@click.option("--iterations", type=click.IntRange(min=1),
              help="Stop after N refreshes and print plainly (for scripts and tests).")
@click.option("--rows", type=click.IntRange(min=1),
              help="Connections shown (default: what fits the terminal).")
def top(url: str, timeout: float, runtime_dir: str | None, no_attribution: bool,
        filters: tuple[str, ...], sort: str, query_width: int, interval: float,
        iterations: int | None, rows: int | None) -> None:
    """A live view of the server at URL, refreshed every --interval seconds.

    Sort with --sort, narrow with --filter. In a terminal, keys change the view while it
    runs: s cycles the sort order, i shows/hides idle connections, q quits. With
    --iterations N (or when the output is not a terminal) it prints N plain views.
    """
    try:
        from ..server import top as topview
    except ImportError as e:
        fail(f"`top` needs rich: pip install 'pooldoctor[top]' ({e})")
    flt = parse_filter(filters)
    with probing(url, timeout) as probe:
        def take() -> Snapshot:
            return take_snapshot(probe, runtime_dir, not no_attribution)

        live = iterations is None and sys.stdout.isatty()
        ctx = click.get_current_context()
        if ctx.get_parameter_source("query_width") == click.core.ParameterSource.DEFAULT:
            query_width = 10_000  # the statement takes the width that is left
        topview.run(take, flt, sort, interval=interval, iterations=iterations or 1,
                    rows=rows, query_width=query_width, live=live)

