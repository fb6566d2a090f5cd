"""PD211: generator dependencies consumed with next() and never closed."""
import contextlib

from app.database import SessionLocal
from app.deps import get_db as imported_get_db


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


def counter():
    n = 0
    while True:
        yield n
        n += 1


# ---------------------------------------------------------------- bad


def background_job():
    db = next(get_db())  # expect: PD211
    db.execute("SELECT 1")


def script():
    gen = get_db()
    db = next(gen)  # expect: PD211
    return db.execute("SELECT 1")


def uses_imported():
    db = next(imported_get_db())  # expect: PD211
    return db


# ---------------------------------------------------------------- good


def with_contextmanager():
    with contextlib.contextmanager(get_db)() as db:
        db.execute("SELECT 1")


def closes_generator():
    gen = get_db()
    db = next(gen)
    try:
        db.execute("SELECT 1")
    finally:
        gen.close()


def exhausts_generator():
    gen = get_db()
    db = next(gen)
    db.execute("SELECT 1")
    next(gen, None)


def plain_iterators(items):
    first = next(iter(items))
    ids = counter()
    return first, next(ids)
