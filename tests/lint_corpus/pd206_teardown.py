"""The teardown hook of pd206_scoped_session.Session, in another module."""
from pd206_scoped_session import Session


def remove_session(*args):
    Session.remove()
