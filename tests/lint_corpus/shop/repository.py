"""Repository classes: a sessionmaker kept on self, a connection behind a property."""
import sqlite3

from sqlalchemy.orm import sessionmaker

from .database import engine


class OrderRepository:
    def __init__(self, bind=engine):
        self._session_factory = sessionmaker(bind=bind)

    def count(self):
        session = self._session_factory()  # expect: PD203
        return session.execute("SELECT count(*) FROM orders").scalar()

    def add(self, order):
        with self._session_factory() as session:
            session.add(order)
            session.commit()

    def add_and_commit(self, order):
        session = self._session_factory()  # holds no connection after commit(): silent
        session.add(order)
        session.commit()


class LocalCache:
    def __init__(self, path):
        self._connection = sqlite3.connect(path)

    @property
    def connection(self):
        return self._connection

    def close(self):
        self.connection.close()  # closes self._connection through the property


class LeakyCache:
    def __init__(self, path):
        self._connection = sqlite3.connect(path)  # expect: PD201

    @property
    def connection(self):
        return self._connection
