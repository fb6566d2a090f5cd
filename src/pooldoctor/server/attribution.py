"""Tie server connections to hosts, processes and code sites.

First from what the server shows (``server/tagsource.py``: statement tags, connection tags), from
any host. Then, as a second source on the application's host, the holds guarded processes
publish (``runtime/publish.py``): a server connection is attributed to a hold when the server
connection id matches the hold's and, where the server shows it, the connection's tag
(``pooldoctor:<pid>@<host>:<prog>``) names the publishing pid and host. A tagged connection with
no matching hold belongs to that process's pool (checked in).
"""

from __future__ import annotations

import glob
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..findings import Site
from ..runtime.publish import HEARTBEAT_S, SCHEMA, file_name, parse_file_name, runtime_dir
from ..runtime.tags import parse_process_tag
from .model import Snapshot
from .tagsource import holder_from_server

_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
STALE_S = 3 * HEARTBEAT_S  # a collected file from another host older than this is ignored


@dataclass
class Published:
    """The holds one guarded process published."""

    pid: int
    hostname: str
    program: str
    updated: float
    holds: list[dict[str, Any]] = field(default_factory=list)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load(directory: str | None = None, clean: bool = True) -> dict[tuple[str, int], Published]:
    """Published holds by (hostname, pid), from ``directory/*.json`` and ``directory/*/*.json``
    (one sub-directory per host when files are collected from several machines).

    Local files of dead processes are skipped (and removed when ``clean``); files from other
    hosts are skipped when their heartbeat (``updated``) is older than :data:`STALE_S`.
    """
    try:
        directory = directory or runtime_dir(create=False)
    except OSError:
        return {}
    here = socket.gethostname()
    now = time.time()
    out: dict[tuple[str, int], Published] = {}
    paths = glob.glob(os.path.join(directory, "*.json"))
    paths += glob.glob(os.path.join(directory, "*", "*.json"))
    if clean:
        _clean_temporaries(directory)
    for path in paths:
        named = parse_file_name(os.path.basename(path))  # <pid>@<host>.json, or <pid>.json
        if named is None:
            continue
        pid, named_host = named
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue  # being replaced, or not ours
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or doc.get("pid") != pid:
            continue
        host = str(doc.get("hostname", ""))
        if named_host and file_name(pid, host) != os.path.basename(path):
            continue  # the name's host is not the writer's
        updated = float(doc.get("updated", 0.0))
        if (host, pid) in out and out[(host, pid)].updated >= updated:
            continue  # an old-style <pid>.json beside the new name: the newer one wins
        if host == here:
            if not pid_alive(pid):
                if clean:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
                continue
        elif now - updated > STALE_S:
            continue
        out[(host, pid)] = Published(pid, host, str(doc.get("program", "")), updated,
                                     list(doc.get("holds") or ()))
    return out


def _clean_temporaries(directory: str) -> None:
    """Remove ``<pid>@<host>.json.tmp`` files (and old ``<pid>.json.tmp``) left by this
    host's processes killed while writing."""
    here = file_name(0, socket.gethostname())
    for path in glob.glob(os.path.join(directory, "*.json.tmp")):
        named = parse_file_name(os.path.basename(path))
        if named is None or (named[1] and file_name(0, named[1]) != here):
            continue  # another host's (another PID namespace's) file: its pid means nothing here
        if not pid_alive(named[0]):
            try:
                os.unlink(path)
            except OSError:
                pass


def _same_server(hold_server: str | None, snap_url: str) -> bool:
    """False only when both sides name a host:port and they clearly differ."""
    if not hold_server:
        return True
    from ..runtime.publish import server_of

    mine = server_of(snap_url)
    if not mine:
        return True
    h_host, _, h_port = hold_server.partition(":")
    m_host, _, m_port = mine.partition(":")
    if h_port and m_port and h_port != m_port:
        return False
    return h_host == m_host or (h_host in _LOCAL and m_host in _LOCAL)


def attribute(snap: Snapshot, published: dict[tuple[str, int], Published] | None = None) -> int:
    """Set ``holder`` on the snapshot's connections; returns how many were attributed to a
    site (from the server's tags, or a published hold)."""
    for c in snap.conns:
        if c.holder is None and not c.own:
            c.holder = holder_from_server(c)
    if published is None:
        published = load()
    if published:
        _from_holds(snap, published)
    return sum(1 for c in snap.conns if c.holder and c.holder.get("site"))


def _from_holds(snap: Snapshot, published: dict[tuple[str, int], Published]) -> None:
    by_id: dict[int, list[tuple[Published, dict[str, Any]]]] = {}
    for p in published.values():
        for h in p.holds:
            sid = h.get("server_id")
            if isinstance(sid, int) and _same_server(h.get("server"), snap.url):
                by_id.setdefault(sid, []).append((p, h))
    now = time.time()
    for c in snap.conns:
        tag = parse_process_tag(c.application)
        server = c.holder
        tag_pid = tag[0] if tag else (server or {}).get("pid")
        tag_host = tag[1] if tag else (server or {}).get("hostname")
        candidates = by_id.get(c.id, [])
        if tag_pid is not None:
            candidates = [(p, h) for p, h in candidates
                          if p.pid == tag_pid and _same_host(p.hostname, tag_host)]
        if candidates:
            p, h = candidates[0]
            c.holder = _holder(p, h, now, verified=tag_pid is not None)
        elif tag_pid is not None and (owner := _by_pid(published, tag_pid, tag_host)) is not None:
            last = (server or {}).get("site")
            text = f"pid {owner.pid} {owner.program}: in its pool"
            if last:
                text += f" (last statement at {Site.from_dict(last).short()})"
            c.holder = {"pid": owner.pid, "program": owner.program, "hostname": owner.hostname,
                        "site": None, "text": text, "source": "holds", "held": False}


def _same_host(published_host: str, tag_host: str | None) -> bool:
    """The tag carries the host name cut to a few dozen bytes; None: an older tag, no host."""
    return tag_host is None or published_host.startswith(tag_host)


def _by_pid(published: dict[tuple[str, int], Published], pid: int,
            host: str | None) -> Published | None:
    return next((p for p in published.values()
                 if p.pid == pid and _same_host(p.hostname, host)), None)


def _holder(p: Published, h: dict[str, Any], now: float, verified: bool) -> dict[str, Any]:
    site = h.get("site")
    since = h.get("since")
    age = None if since is None else max(now - float(since), 0.0)
    where = Site.from_dict(site).short() if site else "an unknown site"
    thread = h.get("task") or h.get("thread")
    text = f"{where} (pid {p.pid}{', ' + str(thread) if thread else ''})"
    d: dict[str, Any] = {
        "pid": p.pid, "program": p.program, "hostname": p.hostname, "site": site,
        "stack": h.get("stack") or [], "held_s": None if age is None else round(age, 3),
        "thread": h.get("thread"), "task": h.get("task"), "kind": h.get("kind"),
        "verified": verified, "text": text, "source": "holds", "held": True,
    }
    if h.get("txn_since") is not None:
        d["transaction_s"] = round(max(now - float(h["txn_since"]), 0.0), 3)
    return d
