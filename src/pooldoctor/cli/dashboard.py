"""`pooldoctor dashboard`: a live web page of pools, holds, findings and server connections."""

from __future__ import annotations

import click

from .common import EXIT_UNAVAILABLE, EXIT_USAGE, fail


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but 127.0.0.1/::1/localhost needs --token.")
@click.option("--token", envvar="POOLDOCTOR_DASHBOARD_TOKEN", show_envvar=True,
              help="Require this token (open the page with ?token=...; API clients send "
                   "'Authorization: Bearer ...'). At least 8 characters.")
@click.option("--server", "server_url", metavar="URL",
              help="Also watch this PostgreSQL or MySQL/MariaDB server (password masked).")
@click.option("--runtime-dir", type=click.Path(file_okay=False),
              help="Where guarded processes publish their holds (default: the per-user "
                   "runtime directory).")
@click.option("--interval", type=click.FloatRange(0.2, 60), default=1.0, show_default=True,
              help="Seconds between samples (charts and server snapshots).")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=5.0, show_default=True,
              help="Seconds to wait for the server.")
def dashboard(port: int, host: str, token: str | None, server_url: str | None,
              runtime_dir: str | None, interval: float, timeout: float) -> None:
    """Serve a live dashboard on http://HOST:PORT/ until Ctrl-C.

    Standalone, it shows the holds that guarded processes on this machine publish and, with
    --server, the server's connections by state and application against the limit, attributed
    to the code sites that hold them. Inside a guarded program use `pooldoctor run --dashboard
    PORT -- CMD` to see its pools, holds and findings as well.
    """
    try:
        from ..dashboard import check_bind, create_app
        from ..dashboard.auth import LOOPBACK
        from ..dashboard.data import Dashboard
        from ..dashboard.serve import bind, serve
    except ModuleNotFoundError as e:
        fail(f"the dashboard needs {e.name}: pip install 'pooldoctor[dashboard]'")
    try:
        check_bind(host, token)
    except ValueError as e:
        fail(str(e), EXIT_USAGE)
    probe = None
    if server_url:
        from ..dbconnect import ServerError
        from ..server.probes import open_probe

        try:
            probe = open_probe(server_url, timeout=timeout)
        except ServerError as e:
            fail(str(e), EXIT_UNAVAILABLE)
    try:
        sock = bind(host, port)
    except OSError as e:
        if probe is not None:
            probe.close()
        fail(f"cannot listen on {host}:{port}: {e.strerror or e}", EXIT_UNAVAILABLE)
    dash = Dashboard(local=False, server_url=server_url, probe=probe, runtime_dir=runtime_dir,
                     interval=interval, timeout=timeout)
    app = create_app(dash, token=token, loopback=host in LOOPBACK)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"pooldoctor: dashboard on http://{shown}:{bound}/"
               f"{'?token=...' if token else ''} (Ctrl-C stops)", err=True)
    try:
        serve(app, sock)
    finally:
        dash.close()
