"""The guarded process's side of attribution: publish the live holds for the server watch.

Each guarded process writes its holds (server connection id, site, stack, since, thread) to
``<runtime dir>/<pid>@<host>.json`` (see :func:`file_name`), atomically, from the watchdog's
tick and only when the set of holds changed; the file is removed at exit. ``pooldoctor
snapshot`` reads these files to show, for a server connection, the site that holds it. The
runtime directory is per user and private (0700): ``$POOLDOCTOR_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/pooldoctor``, else ``/tmp/pooldoctor-<uid>``. ``POOLDOCTOR_NO_PUBLISH=1``
turns publishing off.

Nothing here may raise into the user's program: the guard counts and logs failures.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import stat
import sys
import tempfile
import threading
import time
from typing import Any

from .tags import process_tag

SCHEMA = "pooldoctor.holds/1"
DIR_ENV = "POOLDOCTOR_RUNTIME_DIR"
OFF_ENV = "POOLDOCTOR_NO_PUBLISH"
HEARTBEAT_S = 60.0  # rewrite at least this often, so readers can tell a live file
MIN_INTERVAL_S = 0.5  # never write more often than this, however fast the watchdog ticks


def runtime_dir(create: bool = True) -> str:
    """The per-user directory of published holds (created 0700 and checked when asked)."""
    path = os.environ.get(DIR_ENV)
    if not path:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and os.path.isdir(xdg):
            path = os.path.join(xdg, "pooldoctor")
        else:
            path = os.path.join(tempfile.gettempdir(), f"pooldoctor-{os.getuid()}")
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise PermissionError(f"runtime directory {path} is not a directory owned by uid "
                                  f"{os.getuid()}")
        if st.st_mode & 0o077:
            os.chmod(path, 0o700)
    return path


def file_name(pid: int, host: str) -> str:
    """The holds file's name: ``<pid>@<host>.json``. The host name is part of it because
    processes in different PID namespaces (containers) that share a runtime directory may
    have the same pid; each has its own host name (UTS namespace). Characters outside
    ``[A-Za-z0-9._-]`` become ``_``. Readers take the older ``<pid>.json`` too."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in host)
    return f"{pid}@{safe[:64]}.json" if safe else f"{pid}.json"


def parse_file_name(name: str) -> tuple[int, str] | None:
    """(pid, host as written in the name, "" for the old form) of a holds file's base name
    (``.json`` or ``.json.tmp``), or None when it is not one."""
    for suffix in (".json", ".json.tmp"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            break
    else:
        return None
    pid, _, host = stem.partition("@")
    if not pid.isdigit() or "@" in host:
        return None
    return int(pid), host


def server_of(url: Any) -> str | None:
    """``host:port`` of a pool's (masked) URL, for cross-checks by the reader."""
    if not isinstance(url, str) or "://" not in url:
        return None
    try:
        from ..urls import parse_url  # here: urls.py may import SQLAlchemy

        u = parse_url(url)
    except Exception:
        return None
    if not u.host:
        return None
    return f"{u.host}:{u.port}" if u.port else u.host


class Publisher:
    """Writes this process's holds when they change; one per process (see :func:`install`)."""

    def __init__(self, guard: Any, directory: str | None = None) -> None:
        self.guard = guard
        self.directory = directory
        self._last: tuple[Any, ...] | None = None
        self._written_at = 0.0
        self._pid = 0
        self.writes = 0
        self._lock = threading.Lock()
        self._closed_pid = -1
        # (pid, path) of the file written last (a host name may change; a child forks off)
        self._written: tuple[int, str] | None = None

    def path(self) -> str:
        return os.path.join(self.directory or runtime_dir(),
                            file_name(os.getpid(), socket.gethostname()))

    def tick(self) -> None:
        """Called by the watchdog: write the file if the holds changed (or for a heartbeat)."""
        if not self._lock.acquire(blocking=False):
            return  # remove() is running (exit), or another tick: skip this one
        try:
            if self._closed_pid != os.getpid():
                self._tick()
        finally:
            self._lock.release()

    def _tick(self) -> None:
        now = time.monotonic()
        pid = os.getpid()
        if pid == self._pid and now - self._written_at < MIN_INTERVAL_S:
            return
        holds = [h for h in self.guard.ledger.holds() if not h.ended]
        sig = tuple((h.id, h.server_id, h.txn_since is None) for h in holds)
        if sig == self._last and pid == self._pid and now - self._written_at < HEARTBEAT_S:
            return
        self.write(holds)
        self._last, self._pid, self._written_at = sig, pid, now

    def write(self, holds: list[Any]) -> None:
        doc = {
            "schema": SCHEMA,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "tag": process_tag(),
            "program": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python",
            "updated": time.time(),
            "holds": [_hold(h) for h in holds],
        }
        path = self.path()
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, default=str)
        os.replace(tmp, path)
        pid = os.getpid()
        if self._written is not None and self._written[0] == pid and self._written[1] != path:
            try:
                os.unlink(self._written[1])  # the host name changed (a new UTS namespace)
            except OSError:
                pass
        self._written = (pid, path)
        self.writes += 1

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's may have been held mid-write)."""
        self._lock = threading.Lock()

    def remove(self) -> None:
        """Remove this process's file (at exit) and write no more; never raises.

        The watchdog thread still runs during ``atexit``: the lock waits for a write in
        progress, and the closed mark stops the next one from bringing the file back.
        """
        locked = self._lock.acquire(timeout=2.0)  # a fork may have copied a held lock
        try:
            self._closed_pid = os.getpid()
            if self._pid == os.getpid():
                written = self._written
                os.unlink(written[1] if written and written[0] == self._pid else self.path())
        except OSError:
            pass
        finally:
            if locked:
                self._lock.release()


def _hold(h: Any) -> dict[str, Any]:
    d = h.describe()
    wall_now = time.time()
    out: dict[str, Any] = {
        "server_id": d.get("server_id"),
        "kind": d.get("kind"),
        "pool": d.get("pool"),
        "server": server_of(getattr(h.pool, "url", None)),
        "site": d.get("site"),
        "stack": d.get("stack"),
        "since": d.get("since"),
        "thread": d.get("thread"),
        "task": d.get("task"),
    }
    if d.get("transaction_age_s") is not None:
        out["txn_since"] = wall_now - d["transaction_age_s"]
    return out


_publisher: Publisher | None = None


def install(guard: Any) -> Publisher | None:
    """Publish ``guard``'s holds from its watchdog tick; idempotent; None when turned off."""
    global _publisher
    if os.environ.get(OFF_ENV):
        return None
    # Resolve the temporary directory here, in the caller's thread: tempfile computes it
    # once under a module lock, and a fork while the watchdog held that lock would leave
    # the child's watchdog blocked on it forever.
    tempfile.gettempdir()
    if _publisher is None:
        _publisher = Publisher(guard)
        atexit.register(_publisher.remove)
        os.register_at_fork(after_in_child=_publisher.after_fork)
    if _publisher.tick not in guard.tick_hooks:
        guard.tick_hooks.append(_publisher.tick)
    return _publisher
