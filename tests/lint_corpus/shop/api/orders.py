"""Views importing the helpers every way a project does."""
import contextlib

from .. import database
from ..database import close_quietly, get_conn_and_cursor, get_dbconn
from shop import database as db_module

open_conn = database.get_dbconn


def list_orders():
    conn = get_dbconn()  # expect: PD201
    return conn.cursor().execute("SELECT * FROM orders").fetchall()


def count_orders():
    conn = database.get_dbconn()  # expect: PD201
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM orders")
    return cur.fetchone()


def order_total(order_id):
    conn = db_module.get_dbconn()  # expect: PD201
    try:
        return conn.execute("SELECT total FROM orders WHERE id = ?", (order_id,)).fetchone()
    except Exception:
        return None


def archive(order_id):
    conn = open_conn()  # expect: PD201
    conn.execute("UPDATE orders SET archived = 1 WHERE id = ?", (order_id,))
    conn.commit()


def refund(order_id):
    conn, cur = get_conn_and_cursor()  # expect: PD201
    cur.execute("UPDATE orders SET refunded = 1 WHERE id = %s", (order_id,))
    cur.close()


# ---------------------------------------------------------------- good


def list_orders_closed():
    with contextlib.closing(get_dbconn()) as conn:
        return conn.execute("SELECT * FROM orders").fetchall()


def refund_closed(order_id):
    conn, cur = get_conn_and_cursor()
    try:
        cur.execute("UPDATE orders SET refunded = 1 WHERE id = %s", (order_id,))
        conn.commit()
    finally:
        close_quietly(cur, conn)


def archive_closed(order_id):
    conn = open_conn()
    try:
        conn.execute("UPDATE orders SET archived = 1 WHERE id = ?", (order_id,))
    finally:
        conn.close()
