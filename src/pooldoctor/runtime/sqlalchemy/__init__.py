"""The runtime guard's wiring into SQLAlchemy: pools, engines, transactions.

- ``pools``: checkouts and checkins, through a subclass of the pool's class swapped in as
  ``pool.__class__`` (no pool event: SQLAlchemy keeps its checkout fast path); the common case
  is runtime/hotpath.py (in C when ``pooldoctor._speedups`` is built). Garbage-collected
  proxies: the hold is a weak reference to the proxy (see ledger.py). ``detach()`` and new
  connections: the pool's ``detach`` and ``connect`` events.
- ``waits``: waits (PD109) and timeouts (PD103, the holders added to the error's message).
- ``transactions``: the dialect's ``do_begin``/``do_commit``/``do_rollback`` (PD107).
- ``engines``: ``Engine.__init__`` is wrapped while the guard is global (PD104).
- ``install``: every engine (``install_global``) or one (``install_engine``), and back.
- ``info``: ``PoolInfo``, what the guard counts about each pool, and the registry of them.
"""

from __future__ import annotations

from ..holders import holders_summary
from .info import PoolInfo, all_infos, idle_server_ids, pool_infos, reset_stats, stats_for
from .install import (
                      ensure_global_listeners,
                      install_engine,
                      install_global,
                      set_repair_mode,
                      uninstall,
)
from .pools import adopt_pool

__all__ = ["PoolInfo", "adopt_pool", "all_infos", "ensure_global_listeners", "holders_summary",
           "idle_server_ids", "install_engine", "install_global", "pool_infos", "reset_stats",
           "set_repair_mode", "stats_for", "uninstall"]
