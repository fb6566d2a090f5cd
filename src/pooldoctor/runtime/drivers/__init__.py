"""Wrappers for raw DB-API drivers, one module per driver; see :mod:`pooldoctor.runtime.dbapi`.

Each driver module has ``LABEL`` (the driver's name in holds), ``MODULE`` (the module whose
import makes the driver patchable) and ``patch(patcher)``.
"""

DRIVERS: tuple[str, ...] = ("sqlite", "pymysql", "psycopg3", "psycopg2", "mysqldb",
                            "mysqlconnector",
                            "djangodb")  # not a driver: marks the connections Django keeps
