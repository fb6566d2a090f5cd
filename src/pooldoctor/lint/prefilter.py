"""Which files need no parse at all: a bytes scan for the words every finding depends on.

Every rule starts from something a file spells out: a driver, SQLAlchemy or SQLModel import
(``sqlite3``, ``psycopg``, ``pymysql``...), a call or attribute named like a database object
(``connect``/``connection``, ``cursor``, ``session``/``Session``/``sessionmaker``, ``engine``,
``pool``, ``begin``, ``transaction``, ``max_overflow``), a URL scheme of a database (PD209), a
``next()`` of a generator (PD211), or a ``close``/``dispose``/``terminate`` that makes a function
a closer of its parameter for the other modules. A file with none of these words (any case)
cannot produce a finding, nor offer a factory, closer, generator or engine to another module:
it is counted as checked and never parsed.

What such a file can still do is *use* something of another module: ``from .db import
get_conn`` then ``get_conn()``, a re-export, a wrapper (``def default(): return get_conn()``),
or ``Session.remove()`` for a ``scoped_session`` defined elsewhere (PD206). ``names()`` lists
what the checked modules offer (factories, closers, generators, engine builders, classes with
factory methods, their aliases, the functions they pass a factory to, and the
``scoped_session`` names PD206 looks for); a skipped file that mentions one of
them as a whole word, or holds a star import, is checked after all, and again until no new name
appears (``lint_paths``).

Not seen by the scan, so not followed in a skipped file: a word spelled with escapes inside a
string (``"\\x70ostgres://..."``) or split by implicit concatenation (``"postg" "res://..."``).
A syntax error in a skipped file is not reported (nothing of ours was in it to miss).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .index import Summary

# substrings of the lowered source, the most frequent first (a relevant file stops early)
WORDS = (b"connect", b"session", b"cursor", b"engine", b"close", b"transaction", b"begin",
         b"pool", b"sqlalchemy", b"sqlite", b"psycopg", b"mysql", b"postgres", b"dispose",
         b"terminate", b"overflow", b"sqlmodel", b"mariadb", b"pyodbc", b"asyncpg", b"oracle",
         b"mssql", b"pgsql", b"psql", b"cockroachdb", b"redshift", b"snowflake", b"db2",
         b"sybase", b"firebird", b"clickhouse", b"timescale", b"mongodb", b"redis",
         b"sqlserver")
# patterns with a literal start (re scans for it fast): next(gen()), get_db-like names, star
# imports; compiled at the first file without any of WORDS (a one-file run rarely needs them)
_PATTERNS = (rb"next\s*\(", rb"get_\w*(?:db|conn|database)\b", rb"import\s+\*")
_compiled: list[re.Pattern[bytes]] = []


def relevant(data: bytes) -> bool:
    """Can this source hold a finding or offer something to another module?"""
    low = data.lower()
    for word in WORDS:
        if word in low:
            return True
    if not _compiled:
        _compiled.extend(re.compile(p) for p in _PATTERNS)
    return any(p.search(low) is not None for p in _compiled)


def names(summaries: Iterable[Summary], scoped: Iterable[str] = (),
          callees: Iterable[str] = ()) -> set[str]:
    """What the checked modules offer by name, with the names they are re-exported under
    (summaries joined by ``Project``, which turns resolved wrappers into factories)."""
    found: set[str] = set(scoped) | set(callees)  # callees: functions given a factory
    all_aliases: list[tuple[str, str]] = []
    for s in summaries:
        found.update(s.factories, s.closers, s.generators, s.engines, s.classes)
        all_aliases.extend(s.aliases.items())
    while True:  # `from .db import get_conn as open_db`: open_db is offered too
        more = {local for local, origin in all_aliases
                if local not in found and origin.rsplit(".", 1)[-1] in found}
        if not more:
            return found
        found |= more


def pattern(offered: set[str]) -> re.Pattern[bytes] | None:
    """A bytes pattern matching any of ``offered`` as a whole word."""
    words = sorted(n for n in offered if n.isidentifier())
    if not words:
        return None
    alternatives = b"|".join(re.escape(w.encode()) for w in words)
    return re.compile(rb"(?<![\w])(?:" + alternatives + rb")(?![\w])")
