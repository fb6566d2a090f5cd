"""PD208: MySQL/MariaDB engines without pool_recycle or pool_pre_ping."""
import os

from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

MYSQL_URL = "mysql+pymysql://app@db/app"

engine = create_engine("mysql+pymysql://app@db/app")  # expect: PD208
engine2 = create_engine(MYSQL_URL, pool_size=10)  # expect: PD208
engine3 = create_engine(os.environ.get("DB_URL", "mariadb+mariadbconnector://app@db/app"))  # expect: PD208
engine4 = create_engine(URL.create("mysql+mysqldb", username="app", host="db"))  # expect: PD208

ok_recycle = create_engine(MYSQL_URL, pool_recycle=3600)
ok_ping = create_engine("mysql+pymysql://app@db/app", pool_pre_ping=True)
ok_postgres = create_engine("postgresql+psycopg://app@db/app")
ok_nullpool = create_engine(MYSQL_URL, poolclass=NullPool)
ok_unknown = create_engine(os.environ["DB_URL"])
OPTIONS = {"pool_recycle": 280}
ok_splat = create_engine(MYSQL_URL, **OPTIONS)
