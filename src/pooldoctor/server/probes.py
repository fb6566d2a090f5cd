"""Open the probe that fits a URL: the registry of the concrete probes above :mod:`.probe`."""

from __future__ import annotations

import importlib

from ..dbconnect import connect
from ..urls import BadURL, parse_url
from .probe import Probe

# server family (dbconnect's backend) -> "module:class", imported only when used
PROBES = {"postgresql": "pooldoctor.server.postgres:PostgresProbe",
          "mysql": "pooldoctor.server.mysql:MySQLProbe"}
_FAMILIES = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}


def probe_class(backend: str) -> type[Probe]:
    """The probe class for a server family; KeyError when there is none."""
    module, _, name = PROBES[backend].partition(":")
    cls: type[Probe] = getattr(importlib.import_module(module), name)
    return cls


def open_probe(url: str, *, timeout: float = 5.0) -> Probe:
    """Connect to ``url`` and return the probe for its server family.

    Every network step (connect, each query) gives up after ``timeout`` seconds. Raises
    :class:`BadURL` (not a PostgreSQL/MySQL url) or :class:`ServerError`.
    """
    u = parse_url(url)
    backend = u.get_backend_name()
    if backend not in _FAMILIES:
        raise BadURL(f"the server watch needs a postgresql or mysql/mariadb url, "
                     f"got {backend!r}")
    if backend == "postgresql" and u.database == "pgbouncer":  # PgBouncer's admin console
        from .pgbouncer import PgBouncerProbe

        return PgBouncerProbe.open(url, timeout)
    cls = probe_class(_FAMILIES[backend])
    server = connect(url, timeout=timeout)
    try:
        return cls(server)
    except BaseException:
        server.close()
        raise
