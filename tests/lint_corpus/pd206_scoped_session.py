"""PD206: a scoped_session registry that is never removed."""
from sqlalchemy import create_engine
from sqlalchemy.orm import scoped_session, sessionmaker

engine = create_engine("sqlite:///app.db")

# never removed anywhere in the checked files
db_session = scoped_session(sessionmaker(bind=engine))  # expect: PD206

# removed after each request (the Flask pattern from SQLAlchemy's documentation)
web_session = scoped_session(sessionmaker(bind=engine))


def shutdown_session(exception=None):
    web_session.remove()


# removed by a teardown hook in another module (pd206_teardown.py)
Session = scoped_session(sessionmaker(bind=engine))


def handler():
    return db_session.query(object).all()
