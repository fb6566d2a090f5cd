"""Pool libraries and async drivers, one small module each, over one protocol (``protocol``).

Each module has ``LABEL`` (its name), ``MODULE`` (the module whose import makes it patchable:
the module is loaded only then, see :mod:`pooldoctor.runtime.registry`) and ``patch(patcher)``.
"""

ADAPTERS: tuple[str, ...] = ("psycopg_pool", "psycopg_async", "asyncpg", "aiomysql", "aiosqlite",
                             "psycopg2_pool", "dbutils_pooled", "dbutils_persistent")
