"""`pooldoctor advise [URL]`: is this pool configuration safe for this server and program?"""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from ..advise import inputs
from ..advise.arithmetic import HEADROOM
from ..advise.model import PoolConfig, ServerLimits
from ..advise.render import render_advice, to_report
from ..advise.server_settings import read_limits
from ..advise.source import find_engine_calls
from ..advise.verdicts import evaluate
from ..dbconnect import ServerError, connect, describe_db_error
from ..reports import use_color
from .common import EXIT_FINDINGS, EXIT_OK, EXIT_UNAVAILABLE, FORMAT_OPTION, fail

_NONNEG = click.IntRange(min=0)
_POS = click.IntRange(min=1)


@click.command()
@click.argument("url", required=False)
@click.option("--workers", type=_POS, help="Processes per instance, each with its own engine.")
@click.option("--threads", type=_POS,
              help="Threads (or asyncio tasks) per worker that use the database at once.")
@click.option("--instances", type=_POS, help="Hosts or containers running the workers.")
@click.option("--pool-size", type=_NONNEG, help="create_engine(pool_size=...).")
@click.option("--max-overflow", type=click.IntRange(min=-1), help="create_engine(max_overflow=...)"
              "; -1 is unbounded.")
@click.option("--pool-timeout", type=click.FloatRange(min=0), help="Seconds a checkout waits.")
@click.option("--pool-recycle", type=float, help="create_engine(pool_recycle=...) in seconds; "
              "-1 never recycles.")
@click.option("--pre-ping/--no-pre-ping", default=None, help="create_engine(pool_pre_ping=...).")
@click.option("--pool-class", type=click.Choice(["QueuePool", "AsyncAdaptedQueuePool", "NullPool",
                                                  "SingletonThreadPool", "StaticPool"]),
              help="The pool class (QueuePool by default).")
@click.option("--from-report", "report_path", type=click.Path(dir_okay=False),
              help="A guarded program's report (pooldoctor run --report): its pool's "
                   "settings and measured figures.")
@click.option("--pool", "pool_pick", help="With --from-report: the pool whose url or name "
              "contains this text.")
@click.option("--from-source", "source_path", metavar="PATH[:LINE]",
              help="Read the create_engine(...) keyword arguments in a file or directory.")
@click.option("--max-connections", type=_POS, help="The server's limit, without a URL "
              "(or to override what the server says).")
@click.option("--reserved", type=_NONNEG, help="Slots reserved for administrators.")
@click.option("--used-by-others", type=_NONNEG, help="Connections other programs hold.")
@click.option("--wait-timeout", type=click.FloatRange(min=0), help="The server's idle timeout "
              "in seconds (MySQL wait_timeout, PostgreSQL idle_session_timeout); 0 is none.")
@click.option("--headroom", type=click.FloatRange(min=1.0), default=HEADROOM, show_default=True,
              help="Pool size = measured mean concurrency x headroom.")
@click.option("--timeout", "--connect-timeout", "connect_timeout",
              type=click.FloatRange(min=0.5), default=5.0, show_default=True,
              help="Seconds to wait for the server (connect and each query).")
@FORMAT_OPTION
def advise(url: str | None, workers: int | None, threads: int | None, instances: int | None,
           pool_size: int | None, max_overflow: int | None, pool_timeout: float | None,
           pool_recycle: float | None, pre_ping: bool | None, pool_class: str | None,
           report_path: str | None, pool_pick: str | None, source_path: str | None,
           max_connections: int | None, reserved: int | None, used_by_others: int | None,
           wait_timeout: float | None, headroom: float, connect_timeout: float,
           fmt: str) -> None:
    """Check pool settings against a server's limits and recommend a configuration.

    URL is the database server (its limits are read from it; use the application's own user).
    Without URL give --max-connections and --wait-timeout by hand. The application's settings
    come from --from-source, then --from-report, then the options, later ones winning.
    Exit 0 when safe, 1 with findings (PD401-PD404), 2 for usage, 3 when the server is
    unavailable.
    """
    given = (url, workers, threads, instances, pool_size, max_overflow, pool_timeout,
             pool_recycle, pre_ping, pool_class, report_path, pool_pick, source_path,
             max_connections, reserved, used_by_others, wait_timeout)
    if all(v is None for v in given):
        fail("advise needs something to check: a server URL, --from-report FILE, "
             "--from-source PATH or pool settings (see pooldoctor advise --help)")
    config = PoolConfig()
    measured = None
    notes: list[str] = []
    try:
        if source_path:
            notes += _from_source(config, source_path)
        if report_path:
            report = inputs.load_report(report_path)
            measured = inputs.apply_pool(config, inputs.choose_pool(report, report_path,
                                                                    pool_pick))
        elif pool_pick:
            fail("--pool needs --from-report")
        inputs.apply(config, {
            "workers": workers, "threads": threads, "instances": instances,
            "pool_size": pool_size, "max_overflow": max_overflow,
            "pool_timeout": pool_timeout, "pool_recycle": pool_recycle, "pre_ping": pre_ping,
            "pool_class": pool_class}, "given")
        inputs.validate(config)
    except inputs.InputError as e:
        fail(str(e))

    limits = _override(_limits(url, connect_timeout), max_connections, reserved,
                       used_by_others, wait_timeout)
    advice = evaluate(config, limits, measured, headroom)
    advice.notes += notes
    if fmt == "json":
        click.echo(to_report(advice).to_json())
    else:
        click.echo(render_advice(advice, color=use_color(sys.stdout)), nl=False)
    sys.exit(EXIT_FINDINGS if advice.findings else EXIT_OK)


_PATH_LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+)$")


def _from_source(config: PoolConfig, spec: str) -> list[str]:
    """Apply the chosen create_engine(...) call; notes say what could not be read."""
    import os

    line: int | None = None
    path = spec
    m = _PATH_LINE.match(spec)
    if m and not os.path.exists(spec):
        path, line = m.group("path"), int(m.group("line"))
    if not os.path.exists(path):
        fail(f"no such file or directory: {path}")
    calls, notes = find_engine_calls(path)
    call = inputs.choose_call(calls, path, line)
    inputs.apply_call(config, call)
    for kw in call.skipped:
        if kw.startswith("**"):
            notes.append(f"keyword arguments from {kw} at {call.site.short()} were not read")
        else:
            notes.append(f"{kw} at {call.site.short()} is not a literal: give it with "
                         f"--{kw.replace('_', '-').replace('pool-pre-ping', 'pre-ping')}")
    return notes


def _limits(url: str | None, timeout: float) -> ServerLimits | None:
    """The server's limits, or None without a URL; server trouble is exit code 3."""
    if not url:
        return None
    try:
        with connect(url, timeout=timeout) as sc:
            try:
                return read_limits(sc)
            except ServerError:
                raise
            except sc.errors as e:
                raise ServerError(f"cannot read the limits of {sc.url}: "
                                  f"{describe_db_error(e)}") from None
    except ServerError as e:
        fail(str(e), EXIT_UNAVAILABLE)


def _override(limits: ServerLimits | None, max_connections: int | None, reserved: int | None,
              used_by_others: int | None, wait_timeout: float | None) -> ServerLimits | None:
    """Apply limits given by hand; without a server they are the only limits."""
    given: dict[str, Any] = {"max_connections": max_connections, "reserved": reserved,
                             "used_by_others": used_by_others, "idle_timeout_s": wait_timeout}
    given = {k: v for k, v in given.items() if v is not None}
    if limits is None:
        if not given:
            return None
        limits = ServerLimits(backend="unknown", source="given",
                              idle_timeout_name="wait_timeout")
    for name, value in given.items():
        old = getattr(limits, name)
        if limits.source == "server" and old != value:
            limits.notes.append(f"{name} {value:g} given by hand instead of the server's "
                                f"{'none' if old is None else format(old, 'g')}")
        if name == "idle_timeout_s" and not value:
            value = None  # 0: the server has no idle timeout
        setattr(limits, name, value)
    _check_given(limits, given)
    return limits


def _check_given(limits: ServerLimits, given: dict[str, Any]) -> None:
    """Numbers given by hand that contradict each other are a usage error (exit 2)."""
    if not {"max_connections", "reserved", "used_by_others"} & set(given):
        return
    top = limits.max_connections
    if top is None:
        return
    if limits.reserved is not None and limits.reserved >= top:
        fail(f"reserved {limits.reserved} must be less than max_connections {top}")
    if limits.used_by_others is not None and limits.used_by_others > top:
        fail(f"used by others {limits.used_by_others} cannot exceed max_connections {top}")
