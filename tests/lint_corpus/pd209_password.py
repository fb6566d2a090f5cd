"""PD209: passwords written in database URLs and connect() calls."""
import os

import psycopg2
import pymysql
from sqlalchemy import create_engine
from sqlalchemy.engine import URL

DATABASE_URL = "postgresql://app:s3cr3t@db.internal:5432/app"  # expect: PD209
DB_URL = os.environ.get("DB_URL", "mysql://u:secret@localhost/app")  # expect: PD209
engine = create_engine(f"mysql+pymysql://app:hunter2@{os.environ['DB_HOST']}/app")  # expect: PD209, PD208


def connect_mysql():
    return pymysql.connect(host="db", user="app", password="hunter2")  # expect: PD209


def connect_pg():
    return psycopg2.connect(host="db", user="app", password="hunter2")  # expect: PD209


url = URL.create("postgresql+psycopg", username="app", password="hunter2", host="db")  # expect: PD209
engine2 = create_engine(
    "postgresql+psycopg://app@db/app",
    connect_args={"password": "hunter2"},  # expect: PD209
)

# ---------------------------------------------------------------- good

FROM_ENV = os.environ["DATABASE_URL"]
TEMPLATE = "postgresql://{user}:{password}@{host}/{db}"
FSTRING = f"postgresql://app:{os.environ['DB_PASSWORD']}@db/app"
PERCENT = "mysql://%(user)s:%(password)s@%(host)s/app"
SHELLVAR = "postgresql://app:${DB_PASSWORD}@db/app"
MASKED = "postgresql://app:***@db/app"
NO_PASSWORD = "postgresql://app@db/app"
EMPTY = pymysql.connect(host="127.0.0.1", user="root", password="")
ENV_PW = pymysql.connect(host="db", user="app", password=os.environ["DB_PASSWORD"])
HTTP = "https://user:token@example.com/repo.git"
SQLITE = "sqlite:///app.db"


def docs():
    """Connect with ``postgresql://user:password@host/db`` (a docstring, not code)."""
