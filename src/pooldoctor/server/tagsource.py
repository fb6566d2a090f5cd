"""Attribution from what the server itself shows: statement tags and connection tags.

Sources, best first (see docs/server.md, "A fleet"):

- the statement's tags (``pg_stat_activity.query``: the running or last statement, idle ones
  included; MySQL/MariaDB ``PROCESSLIST.INFO``: the running statement only): pooldoctor's own
  ``pd_host``, ``pd_pid``, ``pd_pool``, ``pd_site``; Rails' query log tags (``pid``,
  ``source_location``, ``application``, ``controller``, ``action``, ``job``); Django's and
  OpenTelemetry's sqlcommenter (``controller``, ``route``, ``action``, ``framework``,
  ``app_name``, ``traceparent``);
- the connection's tag (``application_name``, MySQL ``program_name``):
  ``pooldoctor:<pid>@<host>:<program>``, which names host and pid but no site.

Nothing here needs a file from the application's host.
"""

from __future__ import annotations

import re
from typing import Any

from ..findings import Site
from ..runtime.tags import parse_process_tag
from .model import ACTIVE, IDLE_TXN, IDLE_TXN_ABORTED, ServerConn

# keys of other tools that say where a statement comes from, shown when no site is known
_CONTEXT_KEYS = ("application", "app_name", "framework", "controller", "action", "route", "job")
_RAILS_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::in [`'](?P<func>.*?)'?)?$")


def site_from_tags(tags: dict[str, str]) -> Site | None:
    """The site a statement's tags name: ``pd_site`` (``file:line:function``) or Rails'
    ``source_location`` (``file:line:in `method'``)."""
    text = tags.get("pd_site")
    if text:
        head, _, func = text.rpartition(":")
        file, _, line = head.rpartition(":")
        if file and line.isdigit():
            return Site(file, int(line), func or None)
    text = tags.get("source_location")
    if text:
        m = _RAILS_LOCATION.match(text.strip())
        if m:
            return Site(m.group("file"), int(m.group("line")), m.group("func") or None)
    return None


def _pid(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def holder_from_server(c: ServerConn) -> dict[str, Any] | None:
    """A holder for ``c`` from its statement and connection tags, or None if it has neither."""
    tags = c.tags or {}
    conn_tag = parse_process_tag(c.application)
    pid = _pid(tags.get("pd_pid")) or _pid(tags.get("pid"))
    host = tags.get("pd_host") or None
    program = None
    if conn_tag is not None:
        t_pid, t_host, program = conn_tag
        if pid is None or (pid == t_pid and (host is None or t_host is None
                                             or host.startswith(t_host))):
            pid, host = t_pid, host or t_host
    site = site_from_tags(tags)
    context = {k: tags[k] for k in _CONTEXT_KEYS if tags.get(k)}
    if pid is None and site is None and not context:
        return None
    # a connection in a transaction or running a statement is still held by the checkout
    # whose statement it shows; an idle one may be back in its pool, or leaked at that site
    held = True if c.state in (ACTIVE, IDLE_TXN, IDLE_TXN_ABORTED) and site else None
    who = f"pid {pid}" if pid is not None else ""
    if host:
        who += f"@{host}" if who else f"host {host}"
    if site is not None:
        where = site.short() + ("" if held else " (last statement)")
    elif context:
        where = " ".join(f"{k}={v}" for k, v in context.items())
    else:
        where = "no statement tag"
    text = f"{where} ({who})" if who else where
    d: dict[str, Any] = {
        "pid": pid, "program": program or tags.get("application") or tags.get("app_name"),
        "hostname": host, "site": site.to_dict() if site else None,
        "stack": [site.to_dict()] if site else [], "held_s": None,
        "pool": tags.get("pd_pool"), "source": "statement" if tags else "connection",
        "held": held, "verified": False, "text": text,
    }
    if context:
        d["context"] = context
    if tags.get("traceparent"):
        d["traceparent"] = tags["traceparent"]
    return d
