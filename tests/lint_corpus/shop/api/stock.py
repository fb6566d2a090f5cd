"""Stock views: a Database instance of another module, a factory kept in a variable, a factory
passed as an argument or as a default."""
from .. import storage
from ..database import get_dbconn
from ..storage import Database

db = Database("dbname=shop")


def stock_level(item):
    conn = db.connect()  # expect: PD201
    cur = conn.cursor()
    cur.execute("SELECT level FROM stock WHERE item = %s", (item,))
    return cur.fetchone()


def restock(item, n):
    local_db = Database("dbname=shop")
    conn = local_db.connect()  # expect: PD201
    conn.cursor().execute("UPDATE stock SET level = level + %s WHERE item = %s", (n, item))
    conn.commit()


def audit():
    conn = Database.open("dbname=shop")  # expect: PD201
    return conn.cursor().execute("SELECT 1").fetchall()


def reorder(item):
    factory = get_dbconn
    conn = factory()  # expect: PD201
    conn.execute("INSERT INTO orders (item) VALUES (?)", (item,))


def export(path, opener=get_dbconn):
    conn = opener(path)  # expect: PD201
    rows = conn.execute("SELECT * FROM stock").fetchall()
    return rows


def stock_report():
    return storage.run_query(get_dbconn, "SELECT * FROM stock")


# ---------------------------------------------------------------- good


def stock_level_closed(item):
    conn = db.connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT level FROM stock WHERE item = %s", (item,))
        return cur.fetchone()
    finally:
        conn.close()


def stock_total():
    return storage.with_connection(get_dbconn, "SELECT sum(level) FROM stock")


def cached_level():
    conn = db.cached()  # kept on the instance: Database.close() closes it
    return conn.cursor().execute("SELECT 1").fetchall()


def magnitudes(values):
    return [storage.apply(abs, v) for v in values]


def reorder_closed(item):
    factory = get_dbconn
    conn = factory()
    try:
        conn.execute("INSERT INTO orders (item) VALUES (?)", (item,))
    finally:
        conn.close()


def new_database():
    return Database("dbname=shop")  # the object, not a connection: nothing opened here
