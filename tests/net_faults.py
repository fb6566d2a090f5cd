"""Network faults for the timeout tests: listeners that are not database servers, and a proxy
in front of a real server that stops forwarding at a chosen statement.

Everything listens on 127.0.0.1, on a free port, in threads of the test process, and is
closed by its context manager.
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
import time
from collections.abc import Iterator


class Listener:
    """Accepts connections and never answers (``greeting=None``) or sends ``greeting``
    (garbage for a database driver) and then says nothing more; reads are discarded."""

    def __init__(self, greeting: bytes | None = None) -> None:
        self.greeting = greeting
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            self.accepted.set()
            if self.greeting is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(self.greeting)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self.sock.close()


class StallingProxy:
    """Forwards to a real server until the client sends ``trigger``; from then on nothing
    goes either way and the sockets stay open (a server or network that went silent)."""

    def __init__(self, host: str, port: int, trigger: bytes) -> None:
        self.target = (host, port)
        self.trigger = trigger
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.stalled = threading.Event()
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> StallingProxy:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            server = socket.create_connection(self.target, timeout=5)
            self._socks += [client, server]
            t = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        seen = b""
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([client, server], [], [], 0.1)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is client:
                        seen = (seen + data)[-4096:]
                        if self.trigger in seen:
                            self.stalled.set()
                    if self.stalled.is_set():
                        continue  # swallowed: the other side never hears of it
                    (server if s is client else client).sendall(data)
            except OSError:
                return

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for s in self._socks:
            s.close()
        self.sock.close()


@contextlib.contextmanager
def free_port() -> Iterator[int]:
    """A port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    yield port


def wait_listening(port: int, proc: subprocess.Popen[str] | subprocess.Popen[bytes],
                   seconds: float = 20) -> bool:
    """Poll until something accepts on 127.0.0.1:``port``; False when ``proc`` ended first or
    ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
