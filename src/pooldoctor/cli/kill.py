"""`pooldoctor kill URL`: terminate the server's connections that match a filter (a dry run
unless --yes)."""

from __future__ import annotations

import click

from .common import EXIT_UNAVAILABLE, FORMAT_OPTION, fail
from .serveropts import DURATION, probing, server_args, take_snapshot

# ----------------------------------------------------------------------------- kill


@click.command()
@server_args
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
    with probing(url, timeout) as probe:
        snap = take_snapshot(probe, runtime_dir, not no_attribution)
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
