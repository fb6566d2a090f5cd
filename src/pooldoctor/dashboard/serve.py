"""Serving the dashboard: in the foreground (the CLI) or from a daemon thread (guarded run)."""

from __future__ import annotations

import errno
import os
import socket
import sys
import threading
from typing import Any

from .auth import LOOPBACK, check_bind

PORT_ENV = "POOLDOCTOR_DASHBOARD_PORT"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (OSError when taken or not allowed)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(64)
        sock.set_inheritable(False)
    except BaseException:
        sock.close()
        raise
    return sock


def server_for(app: Any, *, in_process: bool = False) -> Any:
    """A uvicorn Server for ``app`` (quiet: warnings only, no access log). ``in_process``:
    inside the user's program, so leave its logging configuration and event loop alone."""
    import uvicorn

    extra: dict[str, Any] = {"log_config": None, "loop": "asyncio"} if in_process else {}
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            server_header=False, **extra)
    return uvicorn.Server(config)


def serve(app: Any, sock: socket.socket) -> None:
    """Serve until interrupted (Ctrl-C); the socket is closed after."""
    server = server_for(app)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def start_in_thread(port: int, host: str = "127.0.0.1") -> threading.Thread | None:
    """Serve this process's dashboard from a daemon thread; None (quietly) when the port is
    taken (another process of the same run serves it). Never raises."""
    try:
        check_bind(host, None)
        try:
            sock = bind(host, port)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                sys.stderr.write(f"pooldoctor: dashboard not served on {host}:{port}: "
                                 f"{e.strerror}\n")
            return None
        from . import create_app
        from .data import Dashboard

        app = create_app(Dashboard(local=True), loopback=host in LOOPBACK)
        server = server_for(app, in_process=True)
        t = threading.Thread(target=_run, args=(server, sock), name="pooldoctor-dashboard",
                             daemon=True)
        t.start()
        shown = f"[{host}]" if ":" in host else host
        sys.stderr.write(f"pooldoctor: dashboard on http://{shown}:{sock.getsockname()[1]}/ "
                         f"(pid {os.getpid()})\n")
        return t
    except Exception as e:
        sys.stderr.write(f"pooldoctor: dashboard not served on port {port}: "
                         f"{type(e).__name__}: {e}\n")
        return None


def _run(server: Any, sock: socket.socket) -> None:
    try:
        server.run(sockets=[sock])
    except Exception as e:
        sys.stderr.write(f"pooldoctor: the dashboard stopped: {type(e).__name__}: {e}\n")
    finally:
        sock.close()
