"""Service classes that keep a connection of another module's class on self."""

from .rawapi_db import Database, Store


def get_db_connection_params():
    return {"host": "localhost", "dbname": "raw"}


class Users:
    """The leak: one connection per instance, no method closes it (auth = Users() at import)."""

    def __init__(self):
        self.d_b = Database(get_db_connection_params())
        self.con, self.cur = self.d_b.connect()  # expect: PD201

    def read_user(self, osm_id):
        self.cur.execute("SELECT * FROM users WHERE osm_id = %s", (osm_id,))
        result = self.cur.fetchall()
        if result:
            return dict(result[0])
        return {"osm_id": osm_id, "role": 3}

    def create_user(self, osm_id, role):
        self.cur.execute("INSERT INTO users (osm_id, role) VALUES (%s, %s)", (osm_id, role))
        self.con.commit()
        return {"osm_id": osm_id}


class UsersFixed:
    """The fix of 65b9e53: every method closes through the Database it holds."""

    def __init__(self):
        self.d_b = Database(get_db_connection_params())
        self.con, self.cur = self.d_b.connect()

    def read_user(self, osm_id):
        self.cur.execute("SELECT * FROM users WHERE osm_id = %s", (osm_id,))
        result = self.cur.fetchall()
        self.d_b.close_conn()
        return dict(result[0]) if result else {"osm_id": osm_id, "role": 3}


class RawData:
    """Closed by a static helper that closes its argument, as raw-data-api's RawData does."""

    def __init__(self, dbdict=None):
        self.d_b = Database(dict(dbdict or get_db_connection_params()))
        self.con, self.cur = self.d_b.connect()

    @staticmethod
    def close_con(con):
        if con:
            con.close()

    def extract(self, query):
        self.cur.execute(query)
        rows = self.cur.fetchall()
        RawData.close_con(self.con)
        return rows


class Session:
    """Used as a context manager: __exit__ closes the connection."""

    def __init__(self):
        self.d_b = Database(get_db_connection_params())
        self.con, self.cur = self.d_b.connect()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.con.close()


class Mailer:
    """Keeps a fresh connection from Store.open() and never closes it."""

    def __init__(self, dsn):
        self.store = Store(dsn)
        self.conn = self.store.open()  # expect: PD201

    def queue(self, to):
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO outbox (rcpt) VALUES (%s)", (to,))
        self.conn.commit()


class Outbox:
    """The same, closed in close()."""

    def __init__(self, dsn):
        self.store = Store(dsn)
        self.conn = self.store.open()

    def close(self):
        self.conn.close()


class Reader:
    """Owns the Database and closes it in its own close()."""

    def __init__(self):
        self.db = Database(get_db_connection_params())
        self.con, self.cur = self.db.connect()

    def close(self):
        self.db.close_conn()
