"""`pooldoctor snapshot|top|watch|kill URL`: the server watch (PostgreSQL, MySQL/MariaDB)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..dbconnect import ServerError
from ..findings import Finding
from ..reports import Report, use_color
from .common import EXIT_FINDINGS, EXIT_UNAVAILABLE, FORMAT_OPTION, CliError, fail

if TYPE_CHECKING:  # the server package is imported only when a command runs
    from ..server.filters import ConnFilter
    from ..server.model import ServerConn, Snapshot
    from ..server.probe import Probe


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, or a number with a unit: ``90``, ``1.5s``, ``10m``, ``2h``."""

    name = "duration"
    _RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
    _UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        m = self._RE.match(str(value))
        if not m or float(m.group(1)) <= 0:
            self.fail(f"{value!r} is not a positive duration (e.g. 30, 90s, 10m, 2h)",
                      param, ctx)
        return float(m.group(1)) * self._UNITS[m.group(2)]


DURATION = Duration()


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0,
                      show_default=True, help="Seconds to wait for the server to answer.")(fn)
    fn = click.option("--runtime-dir", type=click.Path(file_okay=False),
                      help="Where guarded processes publish their holds (attribution); "
                           "default: $POOLDOCTOR_RUNTIME_DIR or the per-user runtime dir.")(fn)
    fn = click.option("--no-attribution", is_flag=True,
                      help="Do not look up the holding sites of guarded processes.")(fn)
    return click.argument("url")(fn)


def _view_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    from ..server.filters import SORT_KEYS

    fn = click.option("--filter", "filters", multiple=True, metavar="KEY=GLOB",
                      help="Show only matching connections; keys: state, user, database, "
                           "application, client, id, holder (repeatable).")(fn)
    fn = click.option("--sort", "sort", type=click.Choice(sorted(SORT_KEYS)),
                      default="state-age", show_default=True,
                      help="Order of the connection list (ages: oldest first).")(fn)
    return click.option("--query-width", type=click.IntRange(min=10), default=60,
                        show_default=True, help="Characters of each statement shown.")(fn)


@contextmanager
def _probe(url: str, timeout: float) -> Iterator[Probe]:
    from ..server.probes import open_probe

    try:
        probe = open_probe(url, timeout=timeout)
    except ServerError as e:
        raise CliError(str(e), EXIT_UNAVAILABLE) from None
    try:
        yield probe
    except ServerError as e:
        raise CliError(str(e), EXIT_UNAVAILABLE) from None
    finally:
        probe.close()


def _take(probe: Probe, runtime_dir: str | None, attribution: bool) -> Snapshot:
    snap = probe.snapshot()
    if attribution:
        from ..server.attribution import attribute, load

        attribute(snap, load(runtime_dir))
    return snap


def _filter(specs: tuple[str, ...]) -> ConnFilter:
    from ..server.filters import ConnFilter

    try:
        return ConnFilter().parse(specs)
    except ValueError as e:
        fail(str(e))


def _shown(snap: Snapshot, flt: ConnFilter, sort: str) -> list[ServerConn]:
    from ..server.filters import sort_conns

    return sort_conns((c for c in snap.conns if flt(c)), sort)


# ----------------------------------------------------------------------------- snapshot


@click.command()
@_common
@_view_options
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

    flt = _filter(filters)
    with _probe(url, timeout) as probe:
        snap = _take(probe, runtime_dir, not no_attribution)
    shown = _shown(snap, flt, sort)
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
@_common
@_view_options
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
    flt = _filter(filters)
    with _probe(url, timeout) as probe:
        def take() -> Snapshot:
            return _take(probe, runtime_dir, not no_attribution)

        live = iterations is None and sys.stdout.isatty()
        ctx = click.get_current_context()
        if ctx.get_parameter_source("query_width") == click.core.ParameterSource.DEFAULT:
            query_width = 10_000  # the statement takes the width that is left
        topview.run(take, flt, sort, interval=interval, iterations=iterations or 1,
                    rows=rows, query_width=query_width, live=live)


# ----------------------------------------------------------------------------- watch


@click.command()
@_common
@click.option("--interval", type=DURATION, default=10.0, show_default=True,
              help="Seconds between samples.")
@click.option("--once", is_flag=True, help="Take one sample and exit (PD303 and PD305 compare "
                                           "samples: add --state FILE).")
@click.option("--iterations", type=click.IntRange(min=1), help="Stop after N samples.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write the JSON report (pooldoctor.report/1) to this file after each sample.")
@click.option("--state", "state_path", type=click.Path(dir_okay=False),
              help="Keep the samples between runs in this file, so `--once` from cron can "
                   "see growth (PD303) and rejections (PD305).")
@click.option("--near", type=click.FloatRange(0, 100, min_open=True), default=80.0,
              show_default=True, help="PD301: percent of the limit in use.")
@click.option("--idle-in-transaction", "idle_txn", type=DURATION, default=60.0,
              show_default=True, help="PD302: seconds idle in transaction.")
@click.option("--idle", type=DURATION, default=1800.0, show_default=True,
              help="PD304: seconds idle.")
@click.option("--growth-samples", type=click.IntRange(min=3), default=5, show_default=True,
              help="PD303: samples in the growth window.")
@click.option("--growth-min", type=click.IntRange(min=1), default=3, show_default=True,
              help="PD303: connections a group must gain over the window.")
@FORMAT_OPTION
def watch(url: str, timeout: float, runtime_dir: str | None, no_attribution: bool,
          interval: float, once: bool, iterations: int | None, report_path: str | None,
          state_path: str | None, near: float, idle_txn: float, idle: float,
          growth_samples: int, growth_min: int, fmt: str) -> None:
    """Poll the server at URL and report PD301-PD305; exit 1 when anything was found.

    PD301 near the limit, PD302 idle in transaction, PD303 a group's connections growing
    while its active ones stay flat, PD304 idle too long, PD305 connections rejected for the
    limit. For cron and CI: `watch URL --once --state FILE --report FILE`.
    """
    import os

    from ..server.watch import Thresholds, Watcher

    for option, path in (("--report", report_path), ("--state", state_path)):
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if path and not os.path.isdir(folder):  # before connecting, not after a sample
            fail(f"{option} {path!r}: folder {folder!r} does not exist")
    try:
        watcher = Watcher(Thresholds(near=near / 100, idle_in_transaction_s=idle_txn,
                                     idle_s=idle, growth_samples=growth_samples,
                                     growth_min=growth_min))
    except ValueError as e:
        fail(str(e))
    samples = 1 if once else iterations
    found: list[Finding] = []
    seen: set[tuple[Any, ...]] = set()  # alarms raised at the previous sample
    color = use_color(sys.stdout)
    n = 0
    with _probe(url, timeout) as first:
        probe = first
        if state_path:
            _load_state(watcher, state_path, probe.url)
        try:
            while True:
                snap, probe = _sample(probe, url, timeout, watcher, runtime_dir,
                                      not no_attribution)
                n += 1
                new = watcher.observe(snap)
                found.extend(new)
                if fmt == "text":
                    fresh = [f for f in new if alarm_key(f) not in seen]
                    seen = {alarm_key(f) for f in new}
                    click.echo(f"{time.strftime('%H:%M:%S')} {snap.total}/{snap.limit} "
                               f"connections, {len(new)} finding{'s' if len(new) != 1 else ''}")
                    if fresh:
                        click.echo(Report(fresh).render_text(color=color, stacks=False),
                                   nl=False)
                if report_path:
                    _write(Report(found, extra={"samples": n}), report_path)
                if state_path:
                    _save_state(watcher, state_path, probe.url)
                if samples is not None and n >= samples:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
        finally:
            if probe is not first:  # reconnected: `first` is closed by _probe
                probe.close()
    report = Report(found, extra={"samples": n})
    if fmt == "json":
        click.echo(report.to_json())
    elif not found:
        click.echo("pooldoctor: no findings")
    if found:
        raise SystemExit(EXIT_FINDINGS)


def _load_state(watcher: Any, path: str, server: str) -> None:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        fail(f"cannot read the watch state {path!r}: {e}")
    try:
        watcher.restore(state, server)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        fail(f"the watch state {path!r} is damaged ({type(e).__name__}: {e}); remove it")


def _save_state(watcher: Any, path: str, server: str) -> None:
    import json
    import os

    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(watcher.state(server), fh)
        os.replace(tmp, path)
    except OSError as e:
        fail(f"cannot write the watch state {path!r}: {e.strerror}")


def alarm_key(f: Finding) -> tuple[Any, ...]:
    """What makes an alarm the same one from sample to sample (printed once while it lasts)."""
    d = f.details
    if f.code == "PD301":
        return (f.code,)
    if f.code == "PD303":
        return (f.code, tuple(sorted((d.get("group") or {}).items(), key=str)))
    if f.code in ("PD302", "PD304"):
        ids = tuple(sorted(c.get("id", 0) for c in d.get("connections") or ()))
        return (f.code, f.key(), ids)
    return (f.code, f.message)


def _sample(probe: Probe, url: str, timeout: float, watcher: Any, runtime_dir: str | None,
            attribution: bool) -> tuple[Snapshot, Probe]:
    """One snapshot; on a lost connection, reconnect (a refusal for the limit is PD305)."""
    from ..server.probes import open_probe

    try:
        return _take(probe, runtime_dir, attribution), probe
    except ServerError:
        probe.close()
    deadline = time.monotonic() + max(timeout, 1.0) * 3
    while True:
        try:
            probe = open_probe(url, timeout=timeout)
            return _take(probe, runtime_dir, attribution), probe
        except ServerError as e:
            if not refused_for_limit(str(e)) or time.monotonic() > deadline:
                raise CliError(str(e), EXIT_UNAVAILABLE) from None
            watcher.refused_connects += 1
            time.sleep(0.5)


_REFUSED = ("too many clients", "remaining connection slots are reserved",
            "(1040)", "too many connections")


def refused_for_limit(message: str) -> bool:
    """True when a connect error says the server's connection limit was reached."""
    text = message.lower()
    if "for role" in text or "for database" in text or "max_user_connections" in text:
        return False
    return any(s in text for s in _REFUSED)


def _write(report: Report, path: str) -> None:
    try:
        report.write(path)
    except OSError as e:
        fail(f"cannot write the report to {path!r}: {e.strerror}")


# ----------------------------------------------------------------------------- kill


@click.command()
@_common
@click.option("--state", "states", multiple=True,
              type=click.Choice(["idle", "idle-in-transaction", "active", "aborted",
                                 "any-idle"]),
              help="Only connections in this state (repeatable).")
@click.option("--idle-over", type=DURATION,
              help="Only connections idle (in any idle state) for at least this long.")
@click.option("--user", "users", multiple=True, metavar="GLOB", help="Only this user.")
@click.option("--application", "applications", multiple=True, metavar="GLOB",
              help="Only this application_name / program_name.")
@click.option("--database", "databases", multiple=True, metavar="GLOB",
              help="Only this database.")
@click.option("--client", "clients", multiple=True, metavar="GLOB",
              help="Only this client address.")
@click.option("--holder", "holders", multiple=True, metavar="GLOB",
              help="Only connections a guarded process holds at this site (file:line glob, "
                   "e.g. '*app/db.py:22').")
@click.option("--pid", "--id", "ids", multiple=True, type=int,
              help="Only this backend pid / thread id (repeatable).")
@click.option("--all", "all_", is_flag=True, help="Allow an empty filter (every connection "
                                                  "but the watcher's own).")
@click.option("--yes", is_flag=True, help="Terminate for real (the default is a dry run).")
@FORMAT_OPTION
def kill(url: str, timeout: float, runtime_dir: str | None, no_attribution: bool,
         states: tuple[str, ...], idle_over: float | None, users: tuple[str, ...],
         applications: tuple[str, ...], databases: tuple[str, ...], clients: tuple[str, ...],
         holders: tuple[str, ...], ids: tuple[int, ...], all_: bool, yes: bool,
         fmt: str) -> None:
    """Terminate the connections of the server at URL that match the filter.

    A dry run unless --yes: it lists what would be terminated. Never the watcher's own
    connection. PostgreSQL: pg_terminate_backend (checked against the backend's start time);
    MySQL/MariaDB: KILL CONNECTION.
    """
    import json

    from ..server.filters import ConnFilter
    from ..server.kill import targets, terminate
    from ..server.render import conn_table

    flt = ConnFilter(users=list(users), databases=list(databases),
                     applications=list(applications), clients=list(clients), ids=set(ids),
                     holders=list(holders), idle_over_s=idle_over)
    for s in states:
        flt.add("state", s)
    if all_ and not flt.empty():
        fail("--all means every connection: it cannot be combined with a filter "
             "(--state, --idle-over, --user, --application, --database, --client, --holder, "
             "--pid)")
    if flt.empty() and not all_:
        fail("kill needs a filter (--state, --idle-over, --user, --application, --database, "
             "--client, --holder, --pid) or --all")
    with _probe(url, timeout) as probe:
        snap = _take(probe, runtime_dir, not no_attribution)
        chosen = targets(snap, flt)
        results = terminate(probe, chosen) if yes and chosen else []
    failed = [r for r in results if r.error and r.error != "already gone"]
    if fmt == "json":
        click.echo(json.dumps({
            "dry_run": not yes, "server": snap.url,
            "connections": [c.to_dict() for c in chosen],
            "results": [{"id": r.conn.id, "terminated": r.error is None, "error": r.error}
                        for r in results]}, indent=2, default=str))
    elif not chosen:
        click.echo(f"no connection on {snap.url} matches (of {snap.total}; the watcher's own "
                   "is never chosen)")
    elif not yes:
        click.echo(f"dry run: would terminate {len(chosen)} of {snap.total} "
                   f"connection{'' if snap.total == 1 else 's'} on "
                   f"{snap.url}:")
        click.echo("\n".join(conn_table(chosen)))
        click.echo("run again with --yes to terminate them")
    else:
        done = sum(r.error is None for r in results)
        click.echo(f"terminated {done} of {len(chosen)} matching "
                   f"connection{'' if len(chosen) == 1 else 's'} on {snap.url}")
        for r in results:
            if r.error:
                click.echo(f"  id {r.conn.id}: not terminated: {r.error}")
    if failed:
        raise SystemExit(EXIT_UNAVAILABLE)
