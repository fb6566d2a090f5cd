"""Server watch: what PostgreSQL and MySQL/MariaDB hold, and who opened it.

``probes.open_probe(url)`` gives a probe whose ``snapshot()`` returns one :class:`Snapshot`
model for either server; ``watch`` turns snapshots into findings PD301-PD305, ``kill``
terminates connections, ``attribution`` ties server connections to the code sites of guarded
processes on this machine.
"""

from .model import ServerConn, Snapshot

__all__ = ["ServerConn", "Snapshot"]
