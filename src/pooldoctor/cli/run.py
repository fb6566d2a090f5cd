"""`pooldoctor run [OPTIONS] -- CMD [ARGS]...`: run a program under the guard."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..reports import use_color
from .common import EXIT_UNAVAILABLE, fail

FINDINGS_EXIT = 99


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.option("--leak-threshold", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds a connection may be held before PD101.")
@click.option("--transaction-threshold", type=click.FloatRange(min=0, min_open=True),
              default=10.0, show_default=True, help="Seconds a transaction may stay open (PD107).")
@click.option("--wait-threshold", type=click.FloatRange(min=0, min_open=True), default=0.1,
              show_default=True, help="Seconds a checkout may wait before PD109.")
@click.option("--many-threshold", type=click.IntRange(min=1), default=10, show_default=True,
              help="Connections one site may hold at once before PD108.")
@click.option("--engine-threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Engines for one URL before PD104.")
@click.option("--fork-safety", type=click.Choice(["warn", "repair"]), default="warn",
              show_default=True, help="repair: replace connections inherited across fork().")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the JSON report (pooldoctor.report/1) to this file.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Format of the summary written to stderr.")
@click.option("--fail-on-findings", is_flag=True,
              help=f"Exit with {FINDINGS_EXIT} when there are findings (and the program "
                   "itself succeeded).")
@click.option("--quiet", "-q", is_flag=True, help="No live log lines; only the summary.")
@click.option("--metrics-port", type=click.IntRange(1, 65535),
              help="Serve Prometheus metrics on 127.0.0.1:PORT.")
@click.option("--audit-log", type=click.Path(dir_okay=False),
              help="Write a redacted SQL audit log (JSON lines) to this file.")
@click.option("--audit-params", is_flag=True, help="Also log bound parameters (off by default).")
@click.option("--audit-sample", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Fraction of statements written to the audit log (failed ones always are).")
@click.option("--audit-slow-ms", type=click.FloatRange(min=0),
              help="Write statements slower than this (with failed ones), beside the sample.")
@click.option("--dashboard", "dashboard_port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve the live dashboard on 127.0.0.1:PORT (see `pooldoctor dashboard`).")
@click.option("--tag-sql", is_flag=True,
              help="Append a sqlcommenter tag (host, pid, pool, site) to every statement, so "
                   "the server watch attributes connections from any host.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def run(command: tuple[str, ...], report_path: str | None, fmt: str, fail_on_findings: bool,
        quiet: bool, metrics_port: int | None, audit_log: str | None, audit_params: bool,
        audit_sample: float, audit_slow_ms: float | None, dashboard_port: int | None,
        tag_sql: bool, **thresholds: Any) -> None:
    """Run CMD (a script, `python -m ...`, gunicorn, pytest...) under the guard.

    The program's exit code is passed through; a summary of the findings goes to stderr.
    """
    from ..runtime.runner import run_guarded

    for option, path in (("--report", report_path), ("--audit-log", audit_log)):
        folder = os.path.dirname(os.path.abspath(path)) if path else ""
        if path and not os.path.isdir(folder):  # before the program runs, not after
            fail(f"{option} {path!r}: folder {folder!r} does not exist")
    _check_ports(metrics_port, dashboard_port)
    options: dict[str, Any] = dict(thresholds)
    options["log"] = not quiet
    if tag_sql:
        options["tag_sql"] = True
    extra: dict[str, str] = {}
    if metrics_port:
        extra["POOLDOCTOR_METRICS_PORT"] = str(metrics_port)
    if dashboard_port:
        extra["POOLDOCTOR_DASHBOARD_PORT"] = str(dashboard_port)
    if audit_log:
        extra["POOLDOCTOR_AUDIT_LOG"] = audit_log
        if audit_params:
            extra["POOLDOCTOR_AUDIT_PARAMS"] = "1"
        extra["POOLDOCTOR_AUDIT_SAMPLE"] = repr(audit_sample)
        if audit_slow_ms is not None:
            extra["POOLDOCTOR_AUDIT_SLOW_MS"] = repr(audit_slow_ms)
    try:
        result, _ = run_guarded(list(command), options, extra)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    except PermissionError as e:
        fail(f"cannot run {command[0]!r}: {e.strerror}")
    report = result.report
    if report_path:
        try:
            report.write(report_path)
        except OSError as e:
            fail(f"cannot write the report to {report_path!r}: {e.strerror}")
    if fmt == "json":
        click.echo(report.to_json(), err=True)
    else:
        click.echo(report.render_text(color=use_color(sys.stderr)), err=True, nl=False)
    if result.internal_errors:
        click.echo(f"pooldoctor: {result.internal_errors} internal error(s) in the guard; "
                   "the program was not affected", err=True)
    code = result.exit_code
    if code < 0:  # killed by a signal: report it the way a shell does
        code = 128 - code
    if fail_on_findings and report.findings and code == 0:
        code = FINDINGS_EXIT
    sys.exit(code)


def _check_ports(metrics_port: int | None, dashboard_port: int | None) -> None:
    """Refuse up front (the program would otherwise run unobserved): one port for two
    servers is a usage error (2), a port already taken leaves the server unavailable (3)."""
    if metrics_port and metrics_port == dashboard_port:
        fail(f"--dashboard and --metrics-port cannot both use port {metrics_port}")
    for option, port in (("--metrics-port", metrics_port), ("--dashboard", dashboard_port)):
        if port:
            reason = _taken(port)
            if reason:
                fail(f"{option} {port}: cannot listen on 127.0.0.1:{port}: {reason}",
                     EXIT_UNAVAILABLE)


def _taken(port: int) -> str | None:
    """Why 127.0.0.1:``port`` cannot be listened on, or None when it can (checked by binding
    it a moment, the way the program's server will)."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            return str(e.strerror or e).lower()
    return None
