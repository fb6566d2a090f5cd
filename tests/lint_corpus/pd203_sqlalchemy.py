"""PD203: SQLAlchemy connections and sessions not closed on every path."""
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

engine = create_engine("postgresql+psycopg://app@db/app")
SessionLocal = sessionmaker(bind=engine, autoflush=False)
async_engine = create_async_engine("postgresql+asyncpg://app@db/app")
AsyncSessionLocal = async_sessionmaker(async_engine)


# ---------------------------------------------------------------- bad


def count_rows():
    conn = engine.connect()  # expect: PD203
    return conn.execute(text("SELECT count(*) FROM t")).scalar()


def load_user(user_id):
    session = SessionLocal()  # expect: PD203
    user = session.get(dict, user_id)
    if user is None:
        return None
    session.close()
    return user


def save(obj):
    session = Session(engine)  # expect: PD203
    session.add(obj)
    session.commit()
    session.close()


def raw(engine_):
    dbapi_conn = engine_.raw_connection()  # expect: PD203
    cur = dbapi_conn.cursor()
    cur.execute("SELECT 1")


def factory_call():
    s = sessionmaker(bind=engine)()  # expect: PD203
    s.execute(text("SELECT 1"))


async def async_leak():
    conn = await async_engine.connect()  # expect: PD203
    await conn.execute(text("SELECT 1"))


async def async_session_leak():
    session = AsyncSessionLocal()  # expect: PD203
    await session.execute(text("SELECT 1"))


def unnamed():
    return engine.connect().execute(text("SELECT 1")).all()  # expect: PD203


class Service:
    def __init__(self):
        self.session = SessionLocal()  # expect: PD203

    def run(self):
        return self.session.execute(text("SELECT 1")).all()


# ---------------------------------------------------------------- good


def with_connect():
    with engine.connect() as conn:
        return conn.execute(text("SELECT 1")).scalar()


def with_begin():
    with engine.begin() as conn:
        conn.execute(text("UPDATE t SET x = 1"))


def with_session():
    with Session(engine) as session, session.begin():
        session.add(object())


def try_finally_session():
    session = SessionLocal()
    try:
        session.execute(text("SELECT 1"))
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def get_db():
    """FastAPI's generator dependency."""
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


@contextmanager
def session_scope():
    """The 'session scope' recipe from SQLAlchemy's documentation."""
    session = SessionLocal()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def returned_connection():
    conn = engine.connect()
    return conn


async def async_ok():
    async with async_engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    async with AsyncSessionLocal() as session:
        await session.execute(text("SELECT 1"))


async def async_close():
    session = AsyncSession(async_engine)
    try:
        await session.execute(text("SELECT 1"))
    finally:
        await session.close()


class Worker:
    def __init__(self):
        self.session = SessionLocal()

    def __exit__(self, *exc):
        self.session.close()


def connection_closed_after_options():
    conn = engine.connect()
    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn.execute(text("VACUUM"))
    finally:
        conn.close()
