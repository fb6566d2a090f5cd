"""The DB-API drivers the checker knows, by the dotted name of their connect function."""

from __future__ import annotations

# DB-API drivers: dotted origin -> does `with conn:` close the connection?
DRIVERS: dict[str, bool] = {
    "pymysql.connect": True, "pymysql.Connect": True, "pymysql.connections.Connection": True,
    "MySQLdb.connect": True, "MySQLdb.Connect": True, "MySQLdb.Connection": True,
    "mysql.connector.connect": True, "mariadb.connect": True,
    "psycopg.connect": True, "psycopg.Connection.connect": True,
    "psycopg.AsyncConnection.connect": True,
    "psycopg2.connect": False, "sqlite3.connect": False, "sqlite3.dbapi2.connect": False,
    "pyodbc.connect": False,
    "aiosqlite.connect": True, "aiomysql.connect": True, "asyncpg.connect": True,
    "oracledb.connect": True, "cx_Oracle.connect": True, "pymssql.connect": True,
}
